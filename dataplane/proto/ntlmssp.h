// NTLMSSP (MS-NLMP) message decoding: NEGOTIATE, CHALLENGE and AUTHENTICATE, as carried by SMB
// session setup, DCE-RPC auth verifiers and HTTP `Authorization: NTLM`. Also the shared EVE
// `ntlmssp` members and message wording, so every carrier words NTLM the same way.
//
// Thread: any; pure functions on caller-owned data. Never allocate, never throw.
// Limits: names are cut to 128 UTF-8 bytes (FixedString flags the cut); payload fields are read
// only when offset + length lie inside `data`.
#pragma once

#include <cstdint>
#include <span>

#include "dataplane/proto/bytes.h"
#include "dataplane/proto/json_writer.h"

namespace vigil::proto {

enum class NtlmsspType : uint8_t { kNone = 0, kNegotiate = 1, kChallenge = 2, kAuthenticate = 3 };

// NegotiateFlags bits used by the decoder (MS-NLMP 2.2.2.5).
inline constexpr uint32_t kNtlmsspNegotiateUnicode = 0x00000001;
inline constexpr uint32_t kNtlmsspNegotiateOem = 0x00000002;
inline constexpr uint32_t kNtlmsspNegotiateAnonymous = 0x00000800;
inline constexpr uint32_t kNtlmsspNegotiateVersion = 0x02000000;

struct NtlmsspMessage {
  NtlmsspType type = NtlmsspType::kNone;
  uint32_t flags = 0;                   // NegotiateFlags
  FixedString<128> user, domain, host;  // UTF-8 (host = workstation); authenticate
  FixedString<128> target_name;         // challenge
  bool has_version = false;
  uint8_t version_major = 0, version_minor = 0, ntlm_revision = 0;
  uint16_t version_build = 0;
  uint8_t server_challenge[8] = {};  // challenge
  uint16_t nt_response_len = 0;      // authenticate: 24 = NTLMv1, > 24 = NTLMv2
  bool anonymous = false;            // authenticate with empty user and responses
  // Additions beyond the contract.
  uint16_t lm_response_len = 0;  // authenticate
  bool unicode = false;          // strings were decoded as UTF-16LE (else OEM, 8-bit)
  // Authenticate: the user or host payload starts inside the previous field (domain, user), the
  // layout Suricata flags as its `unusual_ntlmssp_order` SMB event. The names are still read by
  // their own offsets.
  bool unusual_order = false;
  // Challenge: the server's TargetInfo AV pairs (MS-NLMP 2.2.2.1), UTF-8 (the values are always
  // UTF-16LE). NetBIOS names are at most 15 characters; DNS names are cut at 128 bytes.
  FixedString<64> nb_computer_name, nb_domain_name;                    // MsvAvNb* (1, 2)
  FixedString<128> dns_computer_name, dns_domain_name, dns_tree_name;  // MsvAvDns* (3, 4, 5)
  uint64_t server_time = 0;      // MsvAvTimestamp (7): FILETIME, 0 when absent
  bool has_target_info = false;  // the TargetInfo field is not empty
  // The AV list runs past the message (or past its TargetInfo field) or has no MsvAvEOL: the
  // pairs that fit were decoded, as Zeek and Wireshark do.
  bool target_info_truncated = false;
};

// `data` starts at "NTLMSSP\0". False when it is not a well-formed NTLMSSP message: too short for
// its type's fixed header, an unknown type, or a non-empty payload field (offset + length) that
// lies outside `data` -- except a CHALLENGE's TargetInfo, whose AV pairs are decoded as far as
// `data` holds them (target_info_truncated says when the list was cut). Strings are UTF-16LE when
// NTLMSSP_NEGOTIATE_UNICODE is set, else 8-bit OEM (kept as bytes; JsonWriter escapes non-UTF-8).
// The Version structure is read when the NEGOTIATE_VERSION flag is set and the payloads leave room
// for it before the first of them.
bool ParseNtlmssp(std::span<const uint8_t> data, NtlmsspMessage* out) noexcept;

// Writes Suricata's `ntlmssp` members (domain, user, host, version "6.0 build 6001 rev 15", ...)
// of an AUTHENTICATE into the object the caller has open. For a CHALLENGE it writes the server's
// names instead (vigil's, named like Zeek's ntlm.log): target_name, server_nb_computer_name,
// server_nb_domain_name, server_dns_computer_name, server_dns_domain_name, server_dns_tree_name
// (each when not empty), server_time (MsvAvTimestamp, "2022-07-15T19:46:29.9513320"), version,
// and target_info_truncated: true when the AV list was cut. Nothing for a NEGOTIATE.
void WriteNtlmsspJson(const NtlmsspMessage& m, JsonWriter& w) noexcept;

// "NEGOTIATE", "CHALLENGE", "AUTHENTICATE" (or "NONE").
const char* NtlmsspTypeName(NtlmsspType t) noexcept;

// One message fragment, without a trailing space, e.g.
//   "NTLM AUTH CORP\appadmin from AVMGMT01" (" NTLMv1" appended for 24-byte NT responses; an
//   empty user reads "anonymous": "NTLM AUTH anonymous from HOST", "NTLM AUTH CORP\anonymous"),
//   "NTLM NEGOTIATE [DOMAIN] [from HOST]", "NTLM CHALLENGE CORP".
// Carriers append their own status ("success", "failed") after it.
void AppendNtlmsspMessage(const NtlmsspMessage& m, TextBuilder& t) noexcept;

}  // namespace vigil::proto
