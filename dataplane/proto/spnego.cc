// SPNEGO (RFC 4178, RFC 2743 3.1) unwrapping down to the mechanism token.
#include "dataplane/proto/spnego.h"

#include "dataplane/proto/asn1.h"

namespace vigil::proto {
namespace {

// OID content octets.
constexpr uint8_t kOidSpnego[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x02};  // 1.3.6.1.5.5.2
constexpr uint8_t kOidKrb5[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02};
constexpr uint8_t kOidMsKrb5[] = {0x2a, 0x86, 0x48, 0x82, 0xf7, 0x12, 0x01, 0x02, 0x02};
constexpr uint8_t kOidNtlmssp[] = {0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a};

constexpr uint8_t kNtlmsspSignature[8] = {'N', 'T', 'L', 'M', 'S', 'S', 'P', 0};

bool StartsWithNtlmssp(std::span<const uint8_t> d) noexcept {
  if (d.size() < 8) return false;
  for (int i = 0; i < 8; ++i) {
    if (d[i] != kNtlmsspSignature[i]) return false;
  }
  return true;
}

SpnegoMech MechOfOid(const Asn1Element& oid) noexcept {
  if (Asn1OidIs(oid, kOidKrb5) || Asn1OidIs(oid, kOidMsKrb5)) return SpnegoMech::kKrb5;
  if (Asn1OidIs(oid, kOidNtlmssp)) return SpnegoMech::kNtlmssp;
  return SpnegoMech::kUnknown;
}

// The mechanism of a token by its content: an NTLMSSP message, a GSS-API Kerberos token
// (0x60 + Kerberos OID) or a raw Kerberos message ([APPLICATION 10..30], as some clients send).
SpnegoMech MechOfToken(std::span<const uint8_t> t) noexcept {
  if (StartsWithNtlmssp(t)) return SpnegoMech::kNtlmssp;
  Asn1Element e;
  if (Asn1ReadHeader(t, false, &e) != Asn1Status::kOk || !e.constructed) {
    return SpnegoMech::kUnknown;
  }
  if (e.Is(Asn1Class::kApplication, 0)) {
    Asn1Element oid;
    if (Asn1ReadHeader(e.content, false, &oid) == Asn1Status::kOk) return MechOfOid(oid);
    return SpnegoMech::kUnknown;
  }
  if (e.cls == Asn1Class::kApplication && e.tag >= 10 && e.tag <= 30) return SpnegoMech::kKrb5;
  return SpnegoMech::kUnknown;
}

// The OCTET STRING inside an explicit [n] tag.
bool OctetsIn(const Asn1Element& tagged, std::span<const uint8_t>* out) noexcept {
  Asn1Element os;
  if (Asn1Inner(tagged, &os) != Asn1Status::kOk || !os.IsUniversal(kAsn1OctetString) ||
      os.constructed) {
    return false;
  }
  *out = os.content;
  return true;
}

void SetToken(std::span<const uint8_t> token, SpnegoMech fallback, SpnegoToken* out) noexcept {
  out->mech_token = token;
  if (token.empty()) return;
  const SpnegoMech m = MechOfToken(token);
  out->mech = m != SpnegoMech::kUnknown ? m : fallback;
}

// NegTokenInit ::= SEQUENCE { mechTypes [0], reqFlags [1], mechToken [2], mechListMIC [3] }
// (and Microsoft's NegTokenInit2, whose [3] is negHints and [4] the MIC).
bool ParseInit(const Asn1Element& tagged, SpnegoToken* out) noexcept {
  Asn1Element seq;
  if (Asn1Inner(tagged, &seq) != Asn1Status::kOk || !seq.IsUniversal(kAsn1Sequence)) return false;
  Asn1Reader r(seq.content);
  Asn1Element f;
  std::span<const uint8_t> token;
  Asn1Status s;
  while ((s = r.Next(&f)) == Asn1Status::kOk) {
    if (f.cls != Asn1Class::kContext) return false;
    if (f.tag == 0) {
      Asn1Element list;
      if (Asn1Inner(f, &list) != Asn1Status::kOk || !list.IsUniversal(kAsn1Sequence)) {
        return false;
      }
      Asn1Reader lr(list.content);
      Asn1Element oid;
      if (lr.Next(&oid) == Asn1Status::kOk) out->first_mech = MechOfOid(oid);
    } else if (f.tag == 2) {
      if (!OctetsIn(f, &token)) return false;
    } else if (f.tag == 4 || (f.tag == 3 && !f.content.empty() && f.content[0] == 0x04)) {
      // RFC 4178 puts the MIC at [3]; Microsoft's NegTokenInit2 has negHints (a SEQUENCE) there
      // and the MIC (an OCTET STRING) at [4].
      out->has_mech_list_mic = true;
    }
  }
  if (s != Asn1Status::kEnd) return false;
  SetToken(token, out->first_mech, out);
  return true;
}

// NegTokenResp ::= SEQUENCE { negState [0] ENUMERATED, supportedMech [1], responseToken [2],
// mechListMIC [3] }
bool ParseResp(const Asn1Element& tagged, SpnegoToken* out) noexcept {
  Asn1Element seq;
  if (Asn1Inner(tagged, &seq) != Asn1Status::kOk || !seq.IsUniversal(kAsn1Sequence)) return false;
  Asn1Reader r(seq.content);
  Asn1Element f;
  std::span<const uint8_t> token;
  Asn1Status s;
  while ((s = r.Next(&f)) == Asn1Status::kOk) {
    if (f.cls != Asn1Class::kContext) return false;
    if (f.tag == 0) {
      Asn1Element e;
      int64_t v = 0;
      if (Asn1Inner(f, &e) != Asn1Status::kOk || !e.IsUniversal(kAsn1Enumerated) ||
          !Asn1ToInt64(e.content, &v) || v < 0 || v > 255) {
        return false;
      }
      out->neg_state = static_cast<int>(v);
    } else if (f.tag == 1) {
      Asn1Element oid;
      if (Asn1Inner(f, &oid) != Asn1Status::kOk) return false;
      out->supported_mech = MechOfOid(oid);
    } else if (f.tag == 2) {
      if (!OctetsIn(f, &token)) return false;
    } else if (f.tag == 3) {
      out->has_mech_list_mic = true;
    }
  }
  if (s != Asn1Status::kEnd) return false;
  SetToken(token, out->supported_mech, out);
  return true;
}

// NegotiationToken ::= CHOICE { negTokenInit [0], negTokenResp [1] }
bool ParseNegotiationToken(std::span<const uint8_t> d, SpnegoToken* out) noexcept {
  Asn1Element t;
  if (Asn1ReadHeader(d, false, &t) != Asn1Status::kOk || t.cls != Asn1Class::kContext ||
      !t.constructed) {
    return false;
  }
  if (t.tag == 0) return ParseInit(t, out);
  if (t.tag == 1) return ParseResp(t, out);
  return false;
}

}  // namespace

bool ParseSpnego(std::span<const uint8_t> data, SpnegoToken* out) noexcept {
  *out = SpnegoToken{};
  if (StartsWithNtlmssp(data)) {
    out->mech = SpnegoMech::kNtlmssp;
    out->mech_token = data;
    return true;
  }
  Asn1Element top;
  if (Asn1ReadHeader(data, false, &top) != Asn1Status::kOk) return false;
  bool ok = false;
  if (top.Is(Asn1Class::kApplication, 0) && top.constructed) {
    // InitialContextToken ::= [APPLICATION 0] IMPLICIT SEQUENCE { thisMech OID, inner ANY }
    Asn1Reader r(top.content);
    Asn1Element oid;
    if (r.Next(&oid) == Asn1Status::kOk) {
      if (Asn1OidIs(oid, kOidSpnego)) {
        ok = ParseNegotiationToken(top.content.subspan(r.pos()), out);
      } else if (MechOfOid(oid) == SpnegoMech::kKrb5) {
        // A bare Kerberos GSS token (no SPNEGO around it): the token is the whole thing.
        out->mech = SpnegoMech::kKrb5;
        out->mech_token = data.first(top.header_len + top.content.size());
        ok = true;
      } else if (MechOfOid(oid) == SpnegoMech::kNtlmssp) {
        out->mech_token = top.content.subspan(r.pos());
        out->mech = SpnegoMech::kNtlmssp;
        ok = true;
      }
    }
  } else {
    ok = ParseNegotiationToken(data, out);
  }
  if (!ok) *out = SpnegoToken{};
  return ok;
}

const char* SpnegoNegStateName(int neg_state) noexcept {
  switch (neg_state) {
    case 0:
      return "accept-completed";
    case 1:
      return "accept-incomplete";
    case 2:
      return "reject";
    case 3:
      return "request-mic";
    default:
      return nullptr;
  }
}

}  // namespace vigil::proto
