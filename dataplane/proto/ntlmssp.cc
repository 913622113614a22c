// NTLMSSP message decoding (MS-NLMP 2.2.1) and the shared EVE/message wording.
#include "dataplane/proto/ntlmssp.h"

#include <string_view>

namespace vigil::proto {
namespace {

constexpr uint8_t kSignature[8] = {'N', 'T', 'L', 'M', 'S', 'S', 'P', 0};

// Fixed header sizes (signature + type + fields + flags), before the optional Version.
constexpr size_t kNegotiateFixed = 32;     // .. DomainNameFields, WorkstationFields
constexpr size_t kNegotiateMinimum = 16;   // signature, type, flags: old clients stop there
constexpr size_t kChallengeFixed = 48;     // .. TargetInfoFields
constexpr size_t kChallengeMinimum = 32;   // .. ServerChallenge (no Reserved/TargetInfo)
constexpr size_t kAuthenticateFixed = 64;  // .. EncryptedRandomSessionKeyFields, NegotiateFlags
constexpr size_t kVersionLen = 8;

// A payload field descriptor: Len, MaxLen, BufferOffset (MS-NLMP 2.2.1).
struct Field {
  uint16_t len = 0;
  uint32_t offset = 0;
  bool present = false;  // the descriptor lies inside the message
};

Field ReadField(std::span<const uint8_t> d, size_t at) noexcept {
  Field f;
  if (at + 8 > d.size()) return f;
  f.len = LoadU16le(&d[at]);
  f.offset = LoadU32le(&d[at + 4]);
  f.present = true;
  return f;
}

// An empty field never points anywhere (its offset is often 0 or garbage), so it is always fine.
bool FieldInRange(const Field& f, size_t size) noexcept {
  return f.len == 0 || (f.offset <= size && f.len <= size - f.offset);
}

std::span<const uint8_t> FieldBytes(std::span<const uint8_t> d, const Field& f) noexcept {
  if (f.len == 0) return {};
  return d.subspan(f.offset, f.len);
}

template <size_t N>
void AssignUnicode(std::span<const uint8_t> in, FixedString<N>* out) noexcept {
  // Convert into a larger scratch buffer so that a cut at N bytes is detected and lands on a
  // character boundary.
  char buf[N + 8];
  size_t n = Utf16LeToUtf8(in, buf, sizeof buf);
  bool cut = false;
  if (n > N) {
    n = N;
    while (n > 0 && (static_cast<uint8_t>(buf[n]) & 0xC0) == 0x80) --n;  // back to a lead byte
    cut = true;
  }
  out->Assign(std::string_view(buf, n));
  out->truncated = cut;
}

template <size_t N>
void AssignOem(std::span<const uint8_t> in, FixedString<N>* out) noexcept {
  char buf[N];
  const size_t n = CopyCString(in, buf, N);
  out->Assign(std::string_view(buf, n));
  // Cut when bytes beyond N were there and the string had not ended at a NUL before N.
  out->truncated = n == N && in.size() > N && in[N] != 0;
}

template <size_t N>
void AssignString(std::span<const uint8_t> in, bool unicode, FixedString<N>* out) noexcept {
  if (unicode) {
    AssignUnicode(in, out);
  } else {
    AssignOem(in, out);
  }
}

// Reads the Version structure at `at` when the flag asks for it and the payload fields leave
// room for it: some clients set NEGOTIATE_VERSION without sending the structure, and their first
// payload then starts where the Version would be.
void ReadVersion(std::span<const uint8_t> d, size_t at, const Field* fields, size_t nfields,
                 NtlmsspMessage* m) noexcept {
  if ((m->flags & kNtlmsspNegotiateVersion) == 0) return;
  if (at + kVersionLen > d.size()) return;
  for (size_t i = 0; i < nfields; ++i) {
    if (fields[i].len != 0 && fields[i].offset < at + kVersionLen) return;
  }
  m->has_version = true;
  m->version_major = d[at];
  m->version_minor = d[at + 1];
  m->version_build = LoadU16le(&d[at + 2]);
  m->ntlm_revision = d[at + 7];
}

bool ParseNegotiate(std::span<const uint8_t> d, NtlmsspMessage* m) noexcept {
  if (d.size() < kNegotiateMinimum) return false;
  m->flags = LoadU32le(&d[12]);
  // Negotiate strings are always OEM (MS-NLMP 2.2.1.1).
  Field fields[2] = {ReadField(d, 16), ReadField(d, 24)};
  for (const Field& f : fields) {
    if (f.present && !FieldInRange(f, d.size())) return false;
  }
  if (fields[0].present) AssignOem(FieldBytes(d, fields[0]), &m->domain);
  if (fields[1].present) AssignOem(FieldBytes(d, fields[1]), &m->host);
  if (d.size() >= kNegotiateFixed) ReadVersion(d, kNegotiateFixed, fields, 2, m);
  return true;
}

// MS-NLMP 2.2.2.1: AV_PAIRs (AvId, AvLen, value) ended by MsvAvEOL. Some servers send a list
// whose field runs past the message, or one without the MsvAvEOL: the pairs that are wholly
// there are decoded and the list is flagged, as Zeek ("NTLM AV Pair loop underflow", names still
// logged) and Wireshark do.
void ReadTargetInfo(std::span<const uint8_t> d, const Field& f, NtlmsspMessage* m) noexcept {
  m->has_target_info = true;
  if (f.offset >= d.size()) {
    m->target_info_truncated = true;
    return;
  }
  const size_t end = f.len <= d.size() - f.offset ? f.offset + f.len : d.size();
  bool ended = false;
  size_t p = f.offset;
  while (end - p >= 4) {  // each pair takes at least 4 bytes: at most 16384 rounds
    const uint16_t id = LoadU16le(&d[p]);
    const uint16_t len = LoadU16le(&d[p + 2]);
    p += 4;
    if (id == 0) {  // MsvAvEOL
      ended = true;
      break;
    }
    if (len > end - p) break;
    const std::span<const uint8_t> value = d.subspan(p, len);
    p += len;
    switch (id) {
      case 1:
        AssignUnicode(value, &m->nb_computer_name);
        break;
      case 2:
        AssignUnicode(value, &m->nb_domain_name);
        break;
      case 3:
        AssignUnicode(value, &m->dns_computer_name);
        break;
      case 4:
        AssignUnicode(value, &m->dns_domain_name);
        break;
      case 5:
        AssignUnicode(value, &m->dns_tree_name);
        break;
      case 7:
        if (len == 8) m->server_time = uint64_t{LoadU32le(&value[4])} << 32 | LoadU32le(&value[0]);
        break;
      default:  // flags, single host, target name, channel bindings: not logged
        break;
    }
  }
  m->target_info_truncated = !ended;
}

bool ParseChallenge(std::span<const uint8_t> d, NtlmsspMessage* m) noexcept {
  if (d.size() < kChallengeMinimum) return false;
  const Field target = ReadField(d, 12);
  m->flags = LoadU32le(&d[20]);
  m->unicode = (m->flags & kNtlmsspNegotiateUnicode) != 0;
  for (int i = 0; i < 8; ++i) m->server_challenge[i] = d[24 + i];
  const Field info = ReadField(d, 40);  // absent in the oldest 32-byte form
  if (!FieldInRange(target, d.size())) return false;
  AssignString(FieldBytes(d, target), m->unicode, &m->target_name);
  if (info.present && info.len != 0) ReadTargetInfo(d, info, m);
  if (d.size() >= kChallengeFixed) {
    const Field fields[2] = {target, info};
    ReadVersion(d, kChallengeFixed, fields, 2, m);
  }
  return true;
}

bool ParseAuthenticate(std::span<const uint8_t> d, NtlmsspMessage* m) noexcept {
  if (d.size() < kAuthenticateFixed) return false;
  const Field lm = ReadField(d, 12);
  const Field nt = ReadField(d, 20);
  const Field domain = ReadField(d, 28);
  const Field user = ReadField(d, 36);
  const Field host = ReadField(d, 44);
  const Field key = ReadField(d, 52);
  m->flags = LoadU32le(&d[60]);
  m->unicode = (m->flags & kNtlmsspNegotiateUnicode) != 0;
  const Field fields[6] = {lm, nt, domain, user, host, key};
  for (const Field& f : fields) {
    if (!FieldInRange(f, d.size())) return false;
  }
  m->lm_response_len = lm.len;
  m->nt_response_len = nt.len;
  AssignString(FieldBytes(d, domain), m->unicode, &m->domain);
  AssignString(FieldBytes(d, user), m->unicode, &m->user);
  AssignString(FieldBytes(d, host), m->unicode, &m->host);
  ReadVersion(d, kAuthenticateFixed, fields, 6, m);
  // MS-NLMP 3.2.5.1.2: anonymous is an empty user with an empty NT response and an empty (or
  // single zero byte) LM response; the ANONYMOUS flag says so too.
  m->anonymous =
      (m->flags & kNtlmsspNegotiateAnonymous) != 0 || (user.len == 0 && nt.len == 0 && lm.len <= 1);
  // Same test as Suricata's (the payload order is normally domain, user, host).
  m->unusual_order = (user.offset > 0 && user.offset < uint64_t{domain.offset} + domain.len) ||
                     (host.offset > 0 && host.offset < uint64_t{user.offset} + user.len);
  return true;
}

}  // namespace

bool ParseNtlmssp(std::span<const uint8_t> data, NtlmsspMessage* out) noexcept {
  *out = NtlmsspMessage{};
  if (data.size() < 12) return false;
  for (int i = 0; i < 8; ++i) {
    if (data[i] != kSignature[i]) return false;
  }
  bool ok = false;
  switch (LoadU32le(&data[8])) {
    case 1:
      out->type = NtlmsspType::kNegotiate;
      ok = ParseNegotiate(data, out);
      break;
    case 2:
      out->type = NtlmsspType::kChallenge;
      ok = ParseChallenge(data, out);
      break;
    case 3:
      out->type = NtlmsspType::kAuthenticate;
      ok = ParseAuthenticate(data, out);
      break;
    default:
      break;
  }
  if (!ok) *out = NtlmsspMessage{};
  return ok;
}

namespace {

void WriteChallengeJson(const NtlmsspMessage& m, JsonWriter& w) noexcept {
  auto str = [&w](const char* key, std::string_view v) {
    if (!v.empty()) w.Str(key, v);
  };
  str("target_name", m.target_name.view());
  str("server_nb_computer_name", m.nb_computer_name.view());
  str("server_nb_domain_name", m.nb_domain_name.view());
  str("server_dns_computer_name", m.dns_computer_name.view());
  str("server_dns_domain_name", m.dns_domain_name.view());
  str("server_dns_tree_name", m.dns_tree_name.view());
  char ts[kFiletimeTextLen + 1];
  if (m.server_time != 0 && FormatFiletime(m.server_time, ts) != 0) w.Str("server_time", ts);
}

}  // namespace

void WriteNtlmsspJson(const NtlmsspMessage& m, JsonWriter& w) noexcept {
  if (m.type == NtlmsspType::kChallenge) {
    WriteChallengeJson(m, w);
  } else if (m.type == NtlmsspType::kAuthenticate) {
    w.Str("domain", m.domain.view());
    w.Str("user", m.user.view());
    w.Str("host", m.host.view());
  } else {
    return;
  }
  if (m.has_version) {
    // "6.0 build 6001 rev 15"
    TextBuilder t;
    t.AppendUint(m.version_major).Append('.').AppendUint(m.version_minor);
    t.Append(" build ").AppendUint(m.version_build).Append(" rev ").AppendUint(m.ntlm_revision);
    w.Str("version", t.view());
  }
  if (m.target_info_truncated) w.Bool("target_info_truncated", true);
}

const char* NtlmsspTypeName(NtlmsspType t) noexcept {
  switch (t) {
    case NtlmsspType::kNegotiate:
      return "NEGOTIATE";
    case NtlmsspType::kChallenge:
      return "CHALLENGE";
    case NtlmsspType::kAuthenticate:
      return "AUTHENTICATE";
    default:
      return "NONE";
  }
}

void AppendNtlmsspMessage(const NtlmsspMessage& m, TextBuilder& t) noexcept {
  switch (m.type) {
    case NtlmsspType::kNegotiate:
      t.Append("NTLM NEGOTIATE");
      if (!m.domain.empty()) t.Append(' ').Append(m.domain.view());
      if (!m.host.empty()) t.Append(" from ").Append(m.host.view());
      break;
    case NtlmsspType::kChallenge:
      t.Append("NTLM CHALLENGE");
      if (!m.target_name.empty()) t.Append(' ').Append(m.target_name.view());
      break;
    case NtlmsspType::kAuthenticate:
      t.Append("NTLM AUTH ");
      if (!m.domain.empty()) t.Append(m.domain.view()).Append('\\');
      // An empty user name is a null session whatever the responses say.
      t.Append(m.user.empty() ? std::string_view("anonymous") : m.user.view());
      if (!m.host.empty()) t.Append(" from ").Append(m.host.view());
      if (m.nt_response_len == 24) t.Append(" NTLMv1");
      break;
    default:
      t.Append("NTLM");
      break;
  }
}

}  // namespace vigil::proto
