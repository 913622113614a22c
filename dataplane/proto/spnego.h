// SPNEGO (RFC 4178) token unwrapping: finds the mechanism token (NTLMSSP or Kerberos) inside a
// GSS-API InitialContextToken / negTokenInit / negTokenResp, as carried by SMB session setup,
// DCE-RPC auth verifiers and HTTP `Authorization: Negotiate`.
//
// Thread: any; pure function on caller-owned data. Never allocates, never throws. The returned
// span points into the input. DER nesting is depth-limited (see asn1.h).
#pragma once

#include <cstdint>
#include <span>

namespace vigil::proto {

enum class SpnegoMech : uint8_t { kUnknown = 0, kNtlmssp, kKrb5 };

struct SpnegoToken {
  SpnegoMech mech = SpnegoMech::kUnknown;  // the mechanism of mech_token
  std::span<const uint8_t> mech_token;     // inner token: NTLMSSP message or Kerberos GSS token
  int neg_state = -1;                      // negTokenResp negState, -1 when absent
  // Additions beyond the contract.
  SpnegoMech first_mech = SpnegoMech::kUnknown;      // first entry of negTokenInit mechTypes
  SpnegoMech supported_mech = SpnegoMech::kUnknown;  // negTokenResp supportedMech
  bool has_mech_list_mic = false;
};

// Accepts a GSS-API InitialContextToken (0x60, SPNEGO OID) with negTokenInit, a bare negTokenInit
// [0] or negTokenResp [1], and a raw "NTLMSSP\0" message (mech kNtlmssp, token = data).
// A negTokenResp without responseToken is accepted with an empty mech_token. The mech of a token
// is recognised by its content ("NTLMSSP\0" or a Kerberos GSS token / raw Kerberos message) and,
// failing that, by the (supported) mechanism OID.
bool ParseSpnego(std::span<const uint8_t> data, SpnegoToken* out) noexcept;

// "accept-completed" (0), "accept-incomplete" (1), "reject" (2), "request-mic" (3) or nullptr.
const char* SpnegoNegStateName(int neg_state) noexcept;

}  // namespace vigil::proto
