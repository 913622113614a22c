// Kerberos V5 decoding (RFC 4120 5.4-5.9) and the krb5 app-layer parser.
#include "dataplane/proto/krb5.h"

#include <cstring>
#include <string_view>

#include "dataplane/proto/asn1.h"
#include "rules/engine/detect.h"
#include "rules/lang/krb5_etype.h"

namespace vigil::proto {
namespace {

constexpr uint8_t kOidKrb5[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02};
constexpr uint8_t kOidMsKrb5[] = {0x2a, 0x86, 0x48, 0x82, 0xf7, 0x12, 0x01, 0x02, 0x02};

constexpr uint8_t kAsReq = 10, kAsRep = 11, kTgsReq = 12, kTgsRep = 13, kApReq = 14, kApRep = 15,
                  kKrbError = 30;

// Whether a loop over children ended where it may: at the end, or (partial mode) where the
// input was cut.
bool EndedWell(Asn1Status s, const Asn1Element& parent) noexcept {
  return s == Asn1Status::kEnd || (s == Asn1Status::kTruncated && !parent.complete);
}

enum class Got : uint8_t { kOk, kCut, kBad };

// The element inside an explicit tag. kCut: the input ended inside it (partial mode only).
Got Inner(const Asn1Element& outer, Asn1Element* inner) noexcept {
  switch (Asn1Inner(outer, inner)) {
    case Asn1Status::kOk:
      return Got::kOk;
    case Asn1Status::kEnd:
    case Asn1Status::kTruncated:
      return outer.complete ? Got::kBad : Got::kCut;
    default:
      return Got::kBad;
  }
}

// [n] EXPLICIT Int32. Leaves *v alone when cut.
bool Int32In(const Asn1Element& tagged, int32_t* v) noexcept {
  Asn1Element i;
  const Got g = Inner(tagged, &i);
  if (g == Got::kCut) return true;
  if (g == Got::kBad || !i.IsUniversal(kAsn1Integer) || i.constructed) return false;
  if (!i.complete) return true;
  return Asn1ToInt32(i.content, v);
}

// [n] EXPLICIT KerberosString (GeneralString; any primitive universal string type is taken).
bool StringIn(const Asn1Element& tagged, FixedString<128>* out) noexcept {
  Asn1Element s;
  const Got g = Inner(tagged, &s);
  if (g == Got::kCut) return true;
  if (g == Got::kBad || s.cls != Asn1Class::kUniversal || s.constructed) return false;
  if (!s.complete) return true;
  out->Assign(std::string_view(reinterpret_cast<const char*>(s.content.data()), s.content.size()));
  return true;
}

// [n] EXPLICIT PrincipalName ::= SEQUENCE { name-type [0] Int32, name-string [1] SEQUENCE OF
// KerberosString }, joined with "/" (component ends recorded when `ends` is given).
bool PrincipalIn(const Asn1Element& tagged, FixedString<128>* out, uint8_t* nparts,
                 uint8_t* ends) noexcept {
  Asn1Element seq;
  Got g = Inner(tagged, &seq);
  if (g == Got::kCut) return true;
  if (g == Got::kBad || !seq.IsUniversal(kAsn1Sequence)) return false;
  Asn1Reader r = Asn1Children(seq);
  Asn1Element f;
  Asn1Status s;
  while ((s = r.Next(&f)) == Asn1Status::kOk) {
    if (f.cls != Asn1Class::kContext) return false;
    if (f.tag != 1) continue;
    Asn1Element list;
    g = Inner(f, &list);
    if (g == Got::kCut) return true;
    if (g == Got::kBad || !list.IsUniversal(kAsn1Sequence)) return false;
    TextBuilder t;
    uint8_t n = 0;
    bool cut = false;
    Asn1Reader lr = Asn1Children(list);
    Asn1Element c;
    Asn1Status ls;
    while ((ls = lr.Next(&c)) == Asn1Status::kOk) {
      if (c.cls != Asn1Class::kUniversal || c.constructed) return false;
      if (!c.complete) break;
      if (n > 0) t.Append('/');
      t.Append(std::string_view(reinterpret_cast<const char*>(c.content.data()), c.content.size()));
      if (ends != nullptr && n < kKrb5MaxNameParts) {
        const size_t end = t.view().size();
        ends[n] = static_cast<uint8_t>(end < 128 ? end : 128);
      }
      if (n < 255) ++n;
      if (t.view().size() > 128) cut = true;
    }
    if (!EndedWell(ls, list)) return false;
    out->Assign(t.view());
    out->truncated = out->truncated || cut || t.truncated();
    if (nparts != nullptr) *nparts = n;
  }
  return EndedWell(s, seq);
}

// EncryptedData ::= SEQUENCE { etype [0] Int32, kvno [1] UInt32 OPTIONAL, cipher [2] OCTET STRING }
// inside an explicit tag (or, with `tagged` false, the SEQUENCE itself).
bool EtypeOfEncryptedData(const Asn1Element& e, bool tagged, int32_t* etype) noexcept {
  Asn1Element seq = e;
  if (tagged) {
    const Got g = Inner(e, &seq);
    if (g == Got::kCut) return true;
    if (g == Got::kBad) return false;
  }
  if (!seq.IsUniversal(kAsn1Sequence)) return false;
  Asn1Reader r = Asn1Children(seq);
  Asn1Element f;
  const Asn1Status s = r.Next(&f);
  if (s != Asn1Status::kOk) return EndedWell(s, seq);
  if (!f.IsContext(0)) return false;
  return Int32In(f, etype);
}

// [n] EXPLICIT Ticket ::= [APPLICATION 1] SEQUENCE { tkt-vno [0], realm [1], sname [2],
// enc-part [3] EncryptedData }. realm/sname are written only when asked for.
bool TicketIn(const Asn1Element& tagged, Krb5Message* m, bool names) noexcept {
  Asn1Element app;
  Got g = Inner(tagged, &app);
  if (g == Got::kCut) return true;
  if (g == Got::kBad || !app.Is(Asn1Class::kApplication, 1)) return false;
  Asn1Element seq;
  g = Inner(app, &seq);
  if (g == Got::kCut) return true;
  if (g == Got::kBad || !seq.IsUniversal(kAsn1Sequence)) return false;
  Asn1Reader r = Asn1Children(seq);
  Asn1Element f;
  Asn1Status s;
  while ((s = r.Next(&f)) == Asn1Status::kOk) {
    if (f.cls != Asn1Class::kContext) return false;
    bool ok = true;
    if (f.tag == 1 && names) {
      ok = StringIn(f, &m->realm);
    } else if (f.tag == 2 && names) {
      ok = PrincipalIn(f, &m->sname, &m->sname_parts, m->sname_part_end);
    } else if (f.tag == 3) {
      ok = EtypeOfEncryptedData(f, true, &m->ticket_etype);
    }
    if (!ok) return false;
  }
  return EndedWell(s, seq);
}

// The fields of an AP-REQ ::= [APPLICATION 14] SEQUENCE { pvno [0], msg-type [1], ap-options [2],
// ticket [3], authenticator [4] EncryptedData }.
bool ApReqField(const Asn1Element& f, Krb5Message* m, bool names) noexcept {
  if (f.tag == 3) return TicketIn(f, m, names);
  if (f.tag == 4) return EtypeOfEncryptedData(f, true, &m->enc_part_etype);
  return true;
}

bool KdcReqBody(const Asn1Element& tagged, Krb5Message* m) noexcept;
bool ParseMessage(std::span<const uint8_t> d, bool partial, Krb5Message* m,
                  uint32_t* late_offset) noexcept;

// padata [n] SEQUENCE OF PA-DATA ::= SEQUENCE { padata-type [1] Int32, padata-value [2] OCTET
// STRING }. PA-TGS-REQ (1) holds an AP-REQ whose ticket gives ticket_etype; PA-ENC-TIMESTAMP (2)
// marks a pre-authenticated AS-REQ.
bool PadataIn(const Asn1Element& tagged, Krb5Message* m) noexcept {
  Asn1Element list;
  Got g = Inner(tagged, &list);
  if (g == Got::kCut) return true;
  if (g == Got::kBad || !list.IsUniversal(kAsn1Sequence)) return false;
  Asn1Reader r = Asn1Children(list);
  Asn1Element pa;
  Asn1Status s;
  while ((s = r.Next(&pa)) == Asn1Status::kOk) {
    if (!pa.IsUniversal(kAsn1Sequence)) return false;
    int32_t type = -1;
    Asn1Reader pr = Asn1Children(pa);
    Asn1Element f;
    Asn1Status ps;
    while ((ps = pr.Next(&f)) == Asn1Status::kOk) {
      if (f.cls != Asn1Class::kContext) return false;
      if (f.tag == 1) {
        if (!Int32In(f, &type)) return false;
      } else if (f.tag == 2) {
        if (type == 2) m->has_padata_enc_ts = true;
        if (type != 1) continue;
        Asn1Element os;
        g = Inner(f, &os);
        if (g == Got::kCut) continue;
        if (g == Got::kBad || !os.IsUniversal(kAsn1OctetString)) return false;
        // The AP-REQ inside: only its ticket's etype is wanted (its realm/sname are the TGT's).
        // Only an AP-REQ (0x6e) is parsed, which has no padata: no recursion on the input.
        Krb5Message ap;
        if (!os.content.empty() && os.content[0] == 0x6e &&
            ParseMessage(os.content, !os.complete, &ap, nullptr) && ap.msg_type == kApReq) {
          m->ticket_etype = ap.ticket_etype;
        }
      }
    }
    if (!EndedWell(ps, pa)) return false;
  }
  return EndedWell(s, list);
}

// KDC-REQ-BODY ::= SEQUENCE { kdc-options [0], cname [1], realm [2], sname [3], from [4],
// till [5], rtime [6], nonce [7], etype [8] SEQUENCE OF Int32, ... }
bool KdcReqBody(const Asn1Element& tagged, Krb5Message* m) noexcept {
  Asn1Element seq;
  Got g = Inner(tagged, &seq);
  if (g == Got::kCut) return true;
  if (g == Got::kBad || !seq.IsUniversal(kAsn1Sequence)) return false;
  Asn1Reader r = Asn1Children(seq);
  Asn1Element f;
  Asn1Status s;
  while ((s = r.Next(&f)) == Asn1Status::kOk) {
    if (f.cls != Asn1Class::kContext) return false;
    bool ok = true;
    if (f.tag == 1) {
      ok = PrincipalIn(f, &m->cname, nullptr, nullptr);
    } else if (f.tag == 2) {
      ok = StringIn(f, &m->realm);
    } else if (f.tag == 3) {
      m->sname_parts = 0;
      ok = PrincipalIn(f, &m->sname, &m->sname_parts, m->sname_part_end);
    } else if (f.tag == 8) {
      Asn1Element list;
      g = Inner(f, &list);
      if (g == Got::kCut) continue;
      if (g == Got::kBad || !list.IsUniversal(kAsn1Sequence)) return false;
      Asn1Reader lr = Asn1Children(list);
      Asn1Element e;
      Asn1Status ls;
      while ((ls = lr.Next(&e)) == Asn1Status::kOk) {
        int32_t v = 0;
        if (!e.IsUniversal(kAsn1Integer)) return false;
        if (!e.complete) break;
        if (!Asn1ToInt32(e.content, &v)) return false;
        if (m->etype_count < kKrb5MaxEtypes) {
          m->etypes[m->etype_count++] = v;
        } else {
          m->etypes_truncated = true;
        }
      }
      if (!EndedWell(ls, list)) return false;
    }
    if (!ok) return false;
  }
  return EndedWell(s, seq);
}

// One top-level field [tag] of a message of type `mt`.
bool TopField(uint8_t mt, const Asn1Element& f, Krb5Message* m) noexcept {
  if (f.cls != Asn1Class::kContext) return false;
  switch (mt) {
    case kAsReq:
    case kTgsReq:
      if (f.tag == 3) return PadataIn(f, m);
      if (f.tag == 4) return KdcReqBody(f, m);
      return true;
    case kAsRep:
    case kTgsRep:
      // KDC-REP: pvno [0], msg-type [1], padata [2], crealm [3], cname [4], ticket [5],
      // enc-part [6]
      if (f.tag == 3) return StringIn(f, &m->realm);
      if (f.tag == 4) return PrincipalIn(f, &m->cname, nullptr, nullptr);
      if (f.tag == 5) return TicketIn(f, m, true);
      if (f.tag == 6) return EtypeOfEncryptedData(f, true, &m->enc_part_etype);
      return true;
    case kApReq:
      return ApReqField(f, m, true);
    case kApRep:
      if (f.tag == 2) return EtypeOfEncryptedData(f, true, &m->enc_part_etype);
      return true;
    case kKrbError:
      // error-code [6], crealm [7], cname [8], realm [9], sname [10]
      if (f.tag == 6) return Int32In(f, &m->error_code);
      if (f.tag == 7) return StringIn(f, &m->realm);
      if (f.tag == 8) return PrincipalIn(f, &m->cname, nullptr, nullptr);
      if (f.tag == 9) return StringIn(f, &m->service_realm);
      if (f.tag == 10) return PrincipalIn(f, &m->sname, &m->sname_parts, m->sname_part_end);
      return true;
    default:
      return true;
  }
}

// The tag numbers of pvno and msg-type in each message's SEQUENCE.
bool HeaderTags(uint8_t mt, uint32_t* pvno_tag) noexcept {
  switch (mt) {
    case kAsReq:
    case kTgsReq:
      *pvno_tag = 1;
      return true;
    case kAsRep:
    case kTgsRep:
    case kApReq:
    case kApRep:
    case kKrbError:
    case 20:  // KRB-SAFE
    case 21:  // KRB-PRIV
    case 22:  // KRB-CRED
      *pvno_tag = 0;
      return true;
    default:
      return false;
  }
}

// After all fields: the REP/AP-REQ etype list is the one etype in use.
void Finish(Krb5Message* m) noexcept {
  if (m->msg_type == kAsRep || m->msg_type == kTgsRep || m->msg_type == kApRep) {
    if (m->enc_part_etype != -1) {
      m->etypes[0] = m->enc_part_etype;
      m->etype_count = 1;
    }
  } else if (m->msg_type == kApReq && m->ticket_etype != -1) {
    m->etypes[0] = m->ticket_etype;
    m->etype_count = 1;
  }
}

// Parses [APPLICATION n] SEQUENCE { fields }. With `partial`, `d` may be a prefix of the
// message; *late_offset (when given) receives the offset in `d` of the first top-level field not
// wholly inside `d` (its end when its header was read, else its start), 0 when all fitted.
bool ParseMessage(std::span<const uint8_t> d, bool partial, Krb5Message* m,
                  uint32_t* late_offset) noexcept {
  if (late_offset != nullptr) *late_offset = 0;
  Asn1Element app;
  if (Asn1ReadHeader(d, partial, &app) != Asn1Status::kOk) return false;
  if (app.cls != Asn1Class::kApplication || !app.constructed || app.tag > 30) return false;
  const uint8_t mt = static_cast<uint8_t>(app.tag);
  uint32_t pvno_tag = 0;
  if (!HeaderTags(mt, &pvno_tag)) return false;
  Asn1Element seq;
  if (Inner(app, &seq) != Got::kOk || !seq.IsUniversal(kAsn1Sequence) || !seq.constructed) {
    return false;
  }
  m->msg_type = mt;
  Asn1Reader r = Asn1Children(seq);
  Asn1Element f;
  Asn1Status s;
  bool pvno_ok = false, type_ok = false;
  while ((s = r.Next(&f)) == Asn1Status::kOk) {
    if (f.cls != Asn1Class::kContext) return false;
    if (f.tag == pvno_tag) {
      int32_t v = -1;
      if (!Int32In(f, &v) || v != 5) return false;
      pvno_ok = true;
    } else if (f.tag == pvno_tag + 1) {
      int32_t v = -1;
      if (!Int32In(f, &v) || v != mt) return false;
      type_ok = true;
    } else if (!TopField(mt, f, m)) {
      return false;
    }
    if (!f.complete) {
      if (late_offset != nullptr) {
        *late_offset = static_cast<uint32_t>(f.content.data() - d.data()) + f.length;
      }
      break;
    }
  }
  if (s == Asn1Status::kTruncated && late_offset != nullptr && !seq.complete) {
    *late_offset = static_cast<uint32_t>(seq.content.data() - d.data() + r.pos());
  }
  if (s != Asn1Status::kOk && !EndedWell(s, seq)) return false;
  if (!pvno_ok || !type_ok) return false;
  Finish(m);
  return true;
}

// The top-level fields of a message of type `mt` in a window that starts at a field boundary
// and may be cut at its end.
void ParseLate(uint8_t mt, std::span<const uint8_t> window, Krb5Message* m) noexcept {
  Asn1Reader r(window, true);
  Asn1Element f;
  while (r.Next(&f) == Asn1Status::kOk) {
    if (!TopField(mt, f, m)) break;
  }
  Finish(m);
}

void AppendInt(int64_t v, TextBuilder& t) noexcept {
  if (v < 0) {
    t.Append('-');
    t.AppendUint(static_cast<uint64_t>(-v));
  } else {
    t.AppendUint(static_cast<uint64_t>(v));
  }
}

}  // namespace

bool ParseKrb5(std::span<const uint8_t> data, Krb5Message* out) noexcept {
  *out = Krb5Message{};
  std::span<const uint8_t> msg = data;
  Asn1Element top;
  if (Asn1ReadHeader(data, false, &top) == Asn1Status::kOk && top.Is(Asn1Class::kApplication, 0) &&
      top.constructed) {
    // InitialContextToken: OID, then TOK_ID (2 bytes), then the message (RFC 1964 1.1, 4121 4.1).
    Asn1Reader r(top.content);
    Asn1Element oid;
    if (r.Next(&oid) != Asn1Status::kOk ||
        !(Asn1OidIs(oid, kOidKrb5) || Asn1OidIs(oid, kOidMsKrb5))) {
      return false;
    }
    const std::span<const uint8_t> rest = top.content.subspan(r.pos());
    if (rest.size() < 2) return false;
    msg = rest.subspan(2);
  }
  if (!ParseMessage(msg, false, out, nullptr)) {
    *out = Krb5Message{};
    return false;
  }
  return true;
}

const char* Krb5MsgTypeName(uint8_t t) noexcept {
  switch (t) {
    case 10:
      return "KRB_AS_REQ";
    case 11:
      return "KRB_AS_REP";
    case 12:
      return "KRB_TGS_REQ";
    case 13:
      return "KRB_TGS_REP";
    case 14:
      return "KRB_AP_REQ";
    case 15:
      return "KRB_AP_REP";
    case 16:
      return "KRB_RESERVED16";
    case 17:
      return "KRB_RESERVED17";
    case 20:
      return "KRB_SAFE";
    case 21:
      return "KRB_PRIV";
    case 22:
      return "KRB_CRED";
    case 30:
      return "KRB_ERROR";
    default:
      return nullptr;
  }
}

const char* Krb5MsgTypeShortName(uint8_t t) noexcept {
  switch (t) {
    case 10:
      return "AS-REQ";
    case 11:
      return "AS-REP";
    case 12:
      return "TGS-REQ";
    case 13:
      return "TGS-REP";
    case 14:
      return "AP-REQ";
    case 15:
      return "AP-REP";
    case 20:
      return "KRB-SAFE";
    case 21:
      return "KRB-PRIV";
    case 22:
      return "KRB-CRED";
    case 30:
      return "KRB-ERROR";
    default:
      return nullptr;
  }
}

// The spellings of Suricata's Kerberos library (IANA Kerberos parameters).
const char* Krb5EtypeName(int32_t e) noexcept { return rules::Krb5EtypeName(e); }

void AppendKrb5Etype(int32_t etype, TextBuilder& t) noexcept {
  if (const char* n = Krb5EtypeName(etype)) {
    t.Append(n);
    return;
  }
  t.Append("EncryptionType(");
  AppendInt(etype, t);
  t.Append(')');
}

bool Krb5EtypeIsWeak(int32_t e) noexcept { return rules::Krb5EtypeIsWeak(e); }

const char* Krb5ErrorName(int32_t c) noexcept {
  switch (c) {
    case 0:
      return "KDC_ERR_NONE";
    case 1:
      return "KDC_ERR_NAME_EXP";
    case 2:
      return "KDC_ERR_SERVICE_EXP";
    case 3:
      return "KDC_ERR_BAD_PVNO";
    case 4:
      return "KDC_ERR_C_OLD_MAST_KVNO";
    case 5:
      return "KDC_ERR_S_OLD_MAST_KVNO";
    case 6:
      return "KDC_ERR_C_PRINCIPAL_UNKNOWN";
    case 7:
      return "KDC_ERR_S_PRINCIPAL_UNKNOWN";
    case 8:
      return "KDC_ERR_PRINCIPAL_NOT_UNIQUE";
    case 9:
      return "KDC_ERR_NULL_KEY";
    case 10:
      return "KDC_ERR_CANNOT_POSTDATE";
    case 11:
      return "KDC_ERR_NEVER_VALID";
    case 12:
      return "KDC_ERR_POLICY";
    case 13:
      return "KDC_ERR_BADOPTION";
    case 14:
      return "KDC_ERR_ETYPE_NOSUPP";
    case 15:
      return "KDC_ERR_SUMTYPE_NOSUPP";
    case 16:
      return "KDC_ERR_PADATA_TYPE_NOSUPP";
    case 17:
      return "KDC_ERR_TRTYPE_NOSUPP";
    case 18:
      return "KDC_ERR_CLIENT_REVOKED";
    case 19:
      return "KDC_ERR_SERVICE_REVOKED";
    case 20:
      return "KDC_ERR_TGT_REVOKED";
    case 21:
      return "KDC_ERR_CLIENT_NOTYET";
    case 22:
      return "KDC_ERR_SERVICE_NOTYET";
    case 23:
      return "KDC_ERR_KEY_EXPIRED";
    case 24:
      return "KDC_ERR_PREAUTH_FAILED";
    case 25:
      return "KDC_ERR_PREAUTH_REQUIRED";
    case 26:
      return "KDC_ERR_SERVER_NOMATCH";
    case 27:
      return "KDC_ERR_MUST_USE_USER2USER";
    case 28:
      return "KDC_ERR_PATH_NOT_ACCEPTED";
    case 29:
      return "KDC_ERR_SVC_UNAVAILABLE";
    case 31:
      return "KRB_AP_ERR_BAD_INTEGRITY";
    case 32:
      return "KRB_AP_ERR_TKT_EXPIRED";
    case 33:
      return "KRB_AP_ERR_TKT_NYV";
    case 34:
      return "KRB_AP_ERR_REPEAT";
    case 35:
      return "KRB_AP_ERR_NOT_US";
    case 36:
      return "KRB_AP_ERR_BADMATCH";
    case 37:
      return "KRB_AP_ERR_SKEW";
    case 38:
      return "KRB_AP_ERR_BADADDR";
    case 39:
      return "KRB_AP_ERR_BADVERSION";
    case 40:
      return "KRB_AP_ERR_MSG_TYPE";
    case 41:
      return "KRB_AP_ERR_MODIFIED";
    case 42:
      return "KRB_AP_ERR_BADORDER";
    case 44:
      return "KRB_AP_ERR_BADKEYVER";
    case 45:
      return "KRB_AP_ERR_NOKEY";
    case 46:
      return "KRB_AP_ERR_MUT_FAIL";
    case 47:
      return "KRB_AP_ERR_BADDIRECTION";
    case 48:
      return "KRB_AP_ERR_METHOD";
    case 49:
      return "KRB_AP_ERR_BADSEQ";
    case 50:
      return "KRB_AP_ERR_INAPP_CKSUM";
    case 51:
      return "KRB_AP_PATH_NOT_ACCEPTED";
    case 52:
      return "KRB_ERR_RESPONSE_TOO_BIG";
    case 60:
      return "KRB_ERR_GENERIC";
    case 61:
      return "KRB_ERR_FIELD_TOOLONG";
    case 62:
      return "KDC_ERROR_CLIENT_NOT_TRUSTED";
    case 63:
      return "KDC_ERROR_KDC_NOT_TRUSTED";
    case 64:
      return "KDC_ERROR_INVALID_SIG";
    case 65:
      return "KDC_ERR_KEY_TOO_WEAK";
    case 66:
      return "KDC_ERR_CERTIFICATE_MISMATCH";
    case 67:
      return "KRB_AP_ERR_NO_TGT";
    case 68:
      return "KDC_ERR_WRONG_REALM";
    case 69:
      return "KRB_AP_ERR_USER_TO_USER_REQUIRED";
    case 70:
      return "KDC_ERR_CANT_VERIFY_CERTIFICATE";
    case 71:
      return "KDC_ERR_INVALID_CERTIFICATE";
    case 72:
      return "KDC_ERR_REVOKED_CERTIFICATE";
    case 73:
      return "KDC_ERR_REVOCATION_STATUS_UNKNOWN";
    case 74:
      return "KDC_ERR_REVOCATION_STATUS_UNAVAILABLE";
    case 75:
      return "KDC_ERR_CLIENT_NAME_MISMATCH";
    case 76:
      return "KDC_ERR_KDC_NAME_MISMATCH";
    default:
      return nullptr;
  }
}

namespace {

void AppendErrorName(int32_t code, TextBuilder& t) noexcept {
  if (const char* n = Krb5ErrorName(code)) {
    t.Append(n);
    return;
  }
  t.Append("ErrorCode(");
  AppendInt(code, t);
  t.Append(')');
}

std::string_view OrEmpty(const FixedString<128>& s) noexcept {
  return s.empty() ? std::string_view("<empty>") : s.view();
}

}  // namespace

void WriteKrb5Json(const Krb5Message& m, uint8_t request_type, JsonWriter& w) noexcept {
  const char* type = Krb5MsgTypeName(m.msg_type);
  TextBuilder t;
  if (type == nullptr) {
    t.Append("MessageType(").AppendUint(m.msg_type).Append(')');
    w.Str("msg_type", t.view());
  } else {
    w.Str("msg_type", type);
  }
  if (m.msg_type == kKrbError) {
    const char* req = request_type != 0 ? Krb5MsgTypeName(request_type) : nullptr;
    w.Str("failed_request", req != nullptr ? req : "UNKNOWN");
    t.Clear();
    AppendErrorName(m.error_code, t);
    w.Str("error_code", t.view());
  }
  w.Str("cname", OrEmpty(m.cname));
  w.Str("realm", OrEmpty(m.realm));
  w.Str("sname", OrEmpty(m.sname));
  // Suricata's "encryption" is the REP enc-part etype; requests and errors have none.
  const bool rep = m.msg_type == kAsRep || m.msg_type == kTgsRep;
  const int32_t enc = rep ? m.enc_part_etype : -1;
  if (enc == -1) {
    w.Str("encryption", "<none>");
    w.Bool("weak_encryption", false);
  } else {
    t.Clear();
    AppendKrb5Etype(enc, t);
    w.Str("encryption", t.view());
    w.Bool("weak_encryption", Krb5EtypeIsWeak(enc));
  }
  if (rep && m.ticket_etype != -1) {
    t.Clear();
    AppendKrb5Etype(m.ticket_etype, t);
    w.Str("ticket_encryption", t.view());
    w.Bool("ticket_weak_encryption", Krb5EtypeIsWeak(m.ticket_etype));
  }
}

void WriteKrb5SmbJson(const Krb5Message& m, JsonWriter& w) noexcept {
  w.Str("realm", m.realm.view());
  w.ArrayBegin("snames");
  const std::string_view s = m.sname.view();
  size_t start = 0;
  const int n = m.sname_parts < kKrb5MaxNameParts ? m.sname_parts : kKrb5MaxNameParts;
  for (int i = 0; i < n; ++i) {
    size_t end = m.sname_part_end[i];
    if (end > s.size()) end = s.size();
    if (end < start) break;
    w.Str("", s.substr(start, end - start));
    start = end + 1;  // past the "/"
  }
  w.ArrayEnd();
}

void AppendKrb5Message(const Krb5Message& m, TextBuilder& t) noexcept {
  t.Append("KRB5 ");
  if (const char* n = Krb5MsgTypeShortName(m.msg_type)) {
    t.Append(n);
  } else {
    t.Append("MSG ").AppendUint(m.msg_type);
  }
  if (m.msg_type == kKrbError) {
    t.Append(' ');
    AppendErrorName(m.error_code, t);
  }
  const FixedString<128>& realm = m.realm.empty() ? m.service_realm : m.realm;
  if (!m.cname.empty()) {
    t.Append(' ').Append(m.cname.view());
    if (!realm.empty()) t.Append('@').Append(realm.view());
  } else if (!realm.empty()) {
    t.Append(' ').Append(realm.view());
  }
  if (!m.sname.empty()) t.Append(" for ").Append(m.sname.view());
  if (m.ticket_etype != -1 && m.msg_type != kAsReq && m.msg_type != kTgsReq) {
    t.Append(' ');
    AppendKrb5Etype(m.ticket_etype, t);
    if (Krb5EtypeIsWeak(m.ticket_etype)) t.Append(" (weak)");
  }
}

// ---------------------------------------------------------------------------------------------
// Krb5Parser

namespace {

// [APPLICATION 10..30] { SEQUENCE { [0|1] { INTEGER 5 } ...: the first bytes of a message.
ProbeResult ProbeMessage(std::span<const uint8_t> d) noexcept {
  if (d.empty()) return ProbeResult::kMaybe;
  if (d[0] < 0x6a || d[0] > 0x7e) return ProbeResult::kNo;  // APPLICATION, constructed, 10..30
  Asn1Element app;
  Asn1Status s = Asn1ReadHeader(d, true, &app);
  if (s == Asn1Status::kTruncated) return ProbeResult::kMaybe;
  if (s != Asn1Status::kOk) return ProbeResult::kNo;
  Asn1Element seq;
  s = Asn1ReadHeader(app.content, true, &seq);
  if (s == Asn1Status::kTruncated || s == Asn1Status::kEnd) return ProbeResult::kMaybe;
  if (s != Asn1Status::kOk || !seq.IsUniversal(kAsn1Sequence) || !seq.constructed) {
    return ProbeResult::kNo;
  }
  // The pvno field: [0] (or [1] in a KDC-REQ) of length 3 holding INTEGER 5.
  static constexpr uint8_t kPvno5[4] = {0x03, 0x02, 0x01, 0x05};
  const std::span<const uint8_t> c = seq.content;
  if (c.empty()) return ProbeResult::kMaybe;
  if (c[0] != 0xa0 && c[0] != 0xa1) return ProbeResult::kNo;
  for (size_t i = 0; i < sizeof kPvno5; ++i) {
    if (1 + i >= c.size()) return ProbeResult::kMaybe;
    if (c[1 + i] != kPvno5[i]) return ProbeResult::kNo;
  }
  return ProbeResult::kYes;
}

}  // namespace

ProbeResult Krb5Parser::Probe(Direction dir, std::span<const uint8_t> data) noexcept {
  (void)dir;
  if (data.empty()) return ProbeResult::kMaybe;
  if (data[0] != 0) return ProbeMessage(data);  // a datagram (or no record mark)
  if (data.size() < 4) return ProbeResult::kMaybe;
  const uint32_t len = LoadU32be(data.data());
  if (len == 0 || len > 16384) return ProbeResult::kNo;  // Suricata's bound for a first record
  return ProbeMessage(data.subspan(4));
}

void Krb5Parser::Consume(Stream& s, std::span<const uint8_t> chunk) noexcept {
  // Prefix bytes.
  if (s.got < kKrb5PrefixBytes) {
    const size_t n =
        chunk.size() < kKrb5PrefixBytes - s.got ? chunk.size() : kKrb5PrefixBytes - s.got;
    std::memcpy(s.buf + s.got, chunk.data(), n);
    s.got += static_cast<uint32_t>(n);
    chunk = chunk.subspan(n);
    if (s.got == kKrb5PrefixBytes && s.record_len > kKrb5PrefixBytes && !s.planned) {
      // The record does not fit: find where the first field that did not fit ends (or starts),
      // and capture a window of the record there as it streams by.
      s.planned = true;
      Krb5Message scratch;
      uint32_t late = 0;
      if (!s.damaged &&
          ParseMessage(std::span<const uint8_t>(s.buf, kKrb5PrefixBytes), true, &scratch, &late) &&
          late != 0 && late < s.record_len) {
        s.late_offset = late;
        s.late_len = 0;
        if (late < kKrb5PrefixBytes) {  // a field whose header was cut starts in the prefix
          const size_t n2 = kKrb5PrefixBytes - late;
          std::memcpy(s.late, s.buf + late, n2);
          s.late_len = static_cast<uint16_t>(n2);
        }
      }
    }
  }
  if (chunk.empty()) return;
  // Late-window bytes: the part of [late_offset, late_offset + window) in this chunk.
  if (s.late_offset != 0) {
    const uint64_t want_from = uint64_t{s.late_offset} + s.late_len;
    const uint64_t want_to = uint64_t{s.late_offset} + kKrb5LateWindow;
    const uint64_t from = s.got, to = uint64_t{s.got} + chunk.size();
    if (s.late_len < kKrb5LateWindow && from <= want_from && want_from < to) {
      const uint64_t end = to < want_to ? to : want_to;
      const size_t n = static_cast<size_t>(end - want_from);
      std::memcpy(s.late + s.late_len, chunk.data() + (want_from - from), n);
      s.late_len = static_cast<uint16_t>(s.late_len + n);
    }
  }
  s.got += static_cast<uint32_t>(chunk.size());
}

void Krb5Parser::FinishRecord(Direction dir, Stream& s, EventSink& sink) noexcept {
  s.mark_len = 0;
  if (s.damaged) return;  // bytes were lost to a gap: nothing trustworthy to report
  Krb5Message m;
  bool ok = false;
  if (s.record_len <= kKrb5PrefixBytes) {
    ok = ParseKrb5(std::span<const uint8_t>(s.buf, s.record_len), &m);
  } else {
    ok = ParseMessage(std::span<const uint8_t>(s.buf, kKrb5PrefixBytes), true, &m, nullptr);
    if (ok && s.late_offset != 0) {
      ParseLate(m.msg_type, std::span<const uint8_t>(s.late, s.late_len), &m);
    }
  }
  if (!ok) {
    EmitAnomaly(sink, dir, AppProto::kKrb5, "malformed_data");
    return;
  }
  OnMessage(dir, m, sink);
}

void Krb5Parser::OnData(Direction dir, std::span<const uint8_t> data, EventSink& sink) noexcept {
  Stream& s = streams_[static_cast<int>(dir)];
  while (!data.empty() && !s.dead) {
    if (s.mark_len < 4) {
      s.mark[s.mark_len++] = data[0];
      data = data.subspan(1);
      if (s.mark_len < 4) continue;
      s.record_len = LoadU32be(s.mark);
      s.got = 0;
      s.damaged = false;
      s.planned = false;
      s.late_offset = 0;
      s.late_len = 0;
      // The top bit is reserved (RFC 4120 7.2.2) and never set by real KDCs; a zero or huge
      // length means we are not looking at a record mark.
      if ((s.record_len & 0x80000000u) != 0 || s.record_len == 0 ||
          s.record_len > kKrb5MaxRecordLen) {
        EmitAnomaly(sink, dir, AppProto::kKrb5, "malformed_data");
        s.dead = true;
        return;
      }
      continue;
    }
    const uint32_t want = s.record_len - s.got;
    const size_t n = data.size() < want ? data.size() : want;
    Consume(s, data.first(n));
    data = data.subspan(n);
    if (s.got == s.record_len) FinishRecord(dir, s, sink);
  }
}

void Krb5Parser::OnGap(Direction dir, uint32_t missing_bytes, EventSink& sink) noexcept {
  Stream& s = streams_[static_cast<int>(dir)];
  if (s.dead || missing_bytes == 0) return;
  // Inside a record body the framing survives: the lengths say where the next record mark is.
  if (s.mark_len == 4 && missing_bytes <= s.record_len - s.got) {
    const uint64_t from = s.got, to = uint64_t{s.got} + missing_bytes;
    // Lost bytes inside the prefix or the late window damage the record.
    const uint64_t late_to = uint64_t{s.late_offset} + kKrb5LateWindow;
    if (from < kKrb5PrefixBytes ||
        (s.late_offset != 0 && from < late_to && to > s.late_offset + uint64_t{s.late_len})) {
      s.damaged = true;
    }
    if (!s.planned && to > kKrb5PrefixBytes) s.planned = true;  // no plan from a holed prefix
    s.got += missing_bytes;
    if (s.got == s.record_len) FinishRecord(dir, s, sink);
    return;
  }
  // The gap covers a record mark: the next record cannot be found.
  s.dead = true;
  EmitAnomaly(sink, dir, AppProto::kKrb5, "gap_lost_sync");
}

void Krb5Parser::OnDatagram(Direction dir, std::span<const uint8_t> data,
                            EventSink& sink) noexcept {
  Krb5Message m;
  if (!ParseKrb5(data, &m)) {
    EmitAnomaly(sink, dir, AppProto::kKrb5, "malformed_data");
    return;
  }
  OnMessage(dir, m, sink);
}

void Krb5Parser::OnEnd(EventSink& sink) noexcept { FlushPending(sink); }

void Krb5Parser::FlushPending(EventSink& sink) noexcept {
  if (!has_pending_) return;
  has_pending_ = false;
  Emit(pending_dir_, pending_, nullptr, sink);
}

namespace {

// The signature engine (krb5.cname, krb5.sname, krb5.ticket_encryption, krb5_msg_type,
// krb5_err_code): AS/TGS requests and replies and errors, on the packet that completes them.
// The names are whole ("part/part"), where Suricata matches each part on its own.
void InspectKrb5(Direction dir, const Krb5Message& m, EventSink& sink) noexcept {
  auto bytes = [](std::string_view v) {
    return std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(v.data()), v.size());
  };
  rules::Buffers b;
  if (!m.cname.empty()) b.Set(rules::Buffer::kKrb5Cname, bytes(m.cname.view()));
  if (!m.sname.empty()) b.Set(rules::Buffer::kKrb5Sname, bytes(m.sname.view()));
  rules::Krb5Info info;
  info.msg_type = m.msg_type;
  // The ticket a reply issues (a TGS-REQ's ticket_etype is its TGT's, which
  // krb5.ticket_encryption does not look at: Suricata matches it on replies only).
  if (m.msg_type == kAsRep || m.msg_type == kTgsRep) info.ticket_etype = m.ticket_etype;
  info.error_code = m.error_code;
  b.SetKrb5(&info);
  if (b.mask() != 0) sink.Inspect(dir, b);
}

}  // namespace

void Krb5Parser::OnMessage(Direction dir, const Krb5Message& m, EventSink& sink) noexcept {
  if (sink.inspecting() && (m.msg_type == kAsReq || m.msg_type == kTgsReq || m.msg_type == kAsRep ||
                            m.msg_type == kTgsRep || m.msg_type == kKrbError)) {
    InspectKrb5(dir, m, sink);
  }
  switch (m.msg_type) {
    case kAsReq:
    case kTgsReq:
      // Requests are held until their response so that the request's message can say how it
      // went (who got which ticket); a request without a response goes out when the next one
      // comes or the flow ends.
      FlushPending(sink);
      pending_ = m;
      pending_dir_ = dir;
      has_pending_ = true;
      last_request_ = m.msg_type;
      break;
    case kApReq:
      last_request_ = m.msg_type;
      break;
    case kAsRep:
    case kTgsRep:
    case kKrbError: {
      if (has_pending_) {
        has_pending_ = false;
        Emit(pending_dir_, pending_, &m, sink);
      }
      Emit(dir, m, nullptr, sink);
      if (m.msg_type != kKrbError && m.enc_part_etype != -1 && Krb5EtypeIsWeak(m.enc_part_etype)) {
        EmitAnomaly(sink, dir, AppProto::kKrb5, "weak_encryption");
      }
      last_request_ = 0;
      break;
    }
    case kApRep:
      last_request_ = 0;
      break;
    default:
      break;
  }
}

void Krb5Parser::Emit(Direction dir, const Krb5Message& m, const Krb5Message* paired,
                      EventSink& sink) noexcept {
  JsonWriter& w = sink.Begin("krb5", dir);
  w.ObjectBegin("krb5");
  WriteKrb5Json(m, last_request_, w);
  w.ObjectEnd();
  TextBuilder& t = sink.message();
  if (paired == nullptr) {
    AppendKrb5Message(m, t);
    if (m.msg_type == kAsReq || m.msg_type == kTgsReq) t.Append(" (no response)");
  } else {
    // A request with its response: the client and ticket from the REP (a TGS-REQ does not show
    // its client), or the error code.
    Krb5Message shown = m;
    if (shown.cname.empty()) shown.cname = paired->cname;
    if (shown.realm.empty()) shown.realm = paired->realm;
    if (shown.sname.empty()) shown.sname = paired->sname;
    AppendKrb5Message(shown, t);
    if (paired->msg_type == kKrbError) {
      t.Append(' ');
      AppendErrorName(paired->error_code, t);
    } else if (paired->ticket_etype != -1) {
      t.Append(' ');
      AppendKrb5Etype(paired->ticket_etype, t);
      if (Krb5EtypeIsWeak(paired->ticket_etype)) t.Append(" (weak)");
    }
  }
  sink.Commit();
}

}  // namespace vigil::proto
