#include "dataplane/proto/tls.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <string_view>

#include "dataplane/proto/bytes.h"

namespace vigil::proto {
namespace {

// Record content types (RFC 8446 section 5.1, RFC 6520).
constexpr uint8_t kChangeCipherSpec = 20;
// 21 (alert) and 24 (heartbeat) are skipped like encrypted data.
constexpr uint8_t kHandshake = 22;
constexpr uint8_t kApplicationData = 23;
constexpr uint8_t kHeartbeat = 24;

// Handshake message types.
constexpr uint8_t kClientHello = 1;
constexpr uint8_t kServerHello = 2;
constexpr uint8_t kCertificate = 11;
constexpr uint8_t kServerHelloDone = 14;

// Extensions.
constexpr uint16_t kExtServerName = 0;
constexpr uint16_t kExtSupportedGroups = 10;
constexpr uint16_t kExtEcPointFormats = 11;
constexpr uint16_t kExtSignatureAlgorithms = 13;
constexpr uint16_t kExtAlpn = 16;
constexpr uint16_t kExtSupportedVersions = 43;

// A TLSCiphertext may carry 2^14 + 2048 bytes; anything longer is not TLS.
constexpr uint32_t kMaxRecordLen = 16384 + 2048;

// Lists longer than this are not sorted for JA4 (the hash then covers the first entries only);
// a ClientHello that fits kClientHelloCap holds at most ~2000 values.
constexpr size_t kMaxJa4List = 1024;

// The HelloRetryRequest "random" (RFC 8446 section 4.1.3).
constexpr uint8_t kHrrRandom[32] = {
    0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
    0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C};

constexpr char kHexLower[] = "0123456789abcdef";
constexpr char kHexUpper[] = "0123456789ABCDEF";

bool IsGrease(uint16_t v) noexcept { return (v & 0x0f0f) == 0x0a0a && (v >> 8) == (v & 0xff); }

bool KnownHandshakeType(uint8_t t) noexcept {
  switch (t) {
    case 0:    // hello_request
    case 1:    // client_hello
    case 2:    // server_hello
    case 3:    // hello_verify_request
    case 4:    // new_session_ticket
    case 5:    // end_of_early_data
    case 6:    // hello_retry_request (drafts)
    case 8:    // encrypted_extensions
    case 11:   // certificate
    case 12:   // server_key_exchange
    case 13:   // certificate_request
    case 14:   // server_hello_done
    case 15:   // certificate_verify
    case 16:   // client_key_exchange
    case 20:   // finished
    case 21:   // certificate_url
    case 22:   // certificate_status
    case 23:   // supplemental_data
    case 24:   // key_update
    case 25:   // compressed_certificate
    case 67:   // next_protocol (NPN)
    case 254:  // message_hash
      return true;
    default:
      return false;
  }
}

uint32_t LoadU24be(const uint8_t* p) noexcept {
  return uint32_t{p[0]} << 16 | uint32_t{p[1]} << 8 | uint32_t{p[2]};
}

std::string_view AsText(std::span<const uint8_t> s) noexcept {
  return {reinterpret_cast<const char*>(s.data()), s.size()};
}

// A bounded text accumulator on the stack (event building only). With `md5` set, everything
// appended is also hashed, so a digest stays right when the kept text is cut.
template <size_t N>
struct LocalText {
  char data[N];
  size_t len = 0;
  bool cut = false;
  Md5* md5 = nullptr;

  void Append(std::string_view s) noexcept {
    if (md5 != nullptr) md5->Update({reinterpret_cast<const uint8_t*>(s.data()), s.size()});
    const size_t take = std::min(s.size(), N - len);
    std::memcpy(data + len, s.data(), take);
    len += take;
    cut |= take < s.size();
  }
  void Append(std::span<const uint8_t> s) noexcept { Append(AsText(s)); }
  void Append(char c) noexcept { Append(std::string_view(&c, 1)); }
  void AppendUint(uint64_t v) noexcept {
    char tmp[20];
    size_t n = 0;
    do {
      tmp[sizeof tmp - 1 - n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    Append(std::string_view(tmp + sizeof tmp - n, n));
  }
  std::string_view view() const noexcept { return {data, len}; }
  std::span<const uint8_t> bytes() const noexcept {
    return {reinterpret_cast<const uint8_t*>(data), len};
  }
};

// ---------------------------------------------------------------------------------------------
// Hello messages

struct Hello {
  uint16_t version = 0;
  std::span<const uint8_t> random;
  std::span<const uint8_t> session_id;
  std::span<const uint8_t> ciphers;  // ClientHello: the list; ServerHello: the chosen one
  std::span<const uint8_t> extensions;
  bool extensions_cut = false;  // the extension block runs past the bytes we have
};

// The fixed part of a ClientHello or ServerHello. False when it does not fit. The extension block
// may be missing (old clients) or longer than `body` (a message cut at the buffer's end).
bool ParseHello(std::span<const uint8_t> body, bool server, Hello* h) noexcept {
  ByteReader r(body);
  h->version = r.U16be();
  if (!r.Bytes(32, &h->random)) return false;
  const uint8_t sid_len = r.U8();
  if (r.failed() || sid_len > 32 || !r.Bytes(sid_len, &h->session_id)) return false;
  if (server) {
    if (!r.Bytes(2, &h->ciphers)) return false;
    r.U8();  // compression method
  } else {
    const uint16_t cs_len = r.U16be();
    if (r.failed() || cs_len % 2 != 0 || !r.Bytes(cs_len, &h->ciphers)) return false;
    const uint8_t comp_len = r.U8();
    if (r.failed() || comp_len == 0 || !r.Skip(comp_len)) return false;
  }
  if (r.failed()) return false;
  if (r.remaining() == 0) return true;  // no extensions
  const uint16_t ext_len = r.U16be();
  if (r.failed()) return false;
  if (ext_len > r.remaining()) {
    h->extensions = r.rest();
    h->extensions_cut = true;
  } else {
    r.Bytes(ext_len, &h->extensions);
  }
  return true;
}

// Calls fn(type, body) for each whole extension; false when the block is malformed (a cut block
// ends quietly at its last whole extension).
template <typename Fn>
bool ForEachExtension(const Hello& h, Fn&& fn) noexcept {
  ByteReader r(h.extensions);
  while (r.remaining() != 0) {
    const uint16_t type = r.U16be();
    const uint16_t len = r.U16be();
    std::span<const uint8_t> body;
    if (r.failed() || !r.Bytes(len, &body)) return h.extensions_cut;
    fn(type, body);
  }
  return true;
}

// The u16 values of a list with a 2-byte length prefix (supported_groups, signature_algorithms).
std::span<const uint8_t> U16List(std::span<const uint8_t> body) noexcept {
  ByteReader r(body);
  const uint16_t n = r.U16be();
  std::span<const uint8_t> out;
  if (r.failed() || n % 2 != 0 || !r.Bytes(n, &out)) return {};
  return out;
}

// The first protocol of an ALPN extension body; `all` receives the whole list.
std::span<const uint8_t> AlpnList(std::span<const uint8_t> body) noexcept {
  ByteReader r(body);
  const uint16_t n = r.U16be();
  std::span<const uint8_t> out;
  if (r.failed() || !r.Bytes(n, &out)) return {};
  return out;
}

template <typename Fn>
void ForEachAlpn(std::span<const uint8_t> list, Fn&& fn) noexcept {
  ByteReader r(list);
  while (r.remaining() != 0) {
    const uint8_t n = r.U8();
    std::span<const uint8_t> proto;
    if (r.failed() || !r.Bytes(n, &proto)) return;
    fn(proto);
  }
}

enum class SniResult { kNone, kOk, kBadType, kBadLength };

// The host_name of a server_name extension body.
SniResult ParseSni(std::span<const uint8_t> body, std::span<const uint8_t>* host) noexcept {
  ByteReader r(body);
  const uint16_t list_len = r.U16be();
  if (r.failed() || list_len > r.remaining() || list_len < 3) return SniResult::kBadLength;
  const uint8_t type = r.U8();
  if (type != 0) return SniResult::kBadType;
  const uint16_t n = r.U16be();
  if (r.failed() || n == 0 || n > 255 || !r.Bytes(n, host)) return SniResult::kBadLength;
  return SniResult::kOk;
}

// Everything taken from a ClientHello.
struct ClientInfo {
  Hello hello;
  bool ok = false;
  bool extensions_ok = true;
  std::span<const uint8_t> sni;
  int sni_count = 0;
  SniResult sni_error = SniResult::kNone;
  std::span<const uint8_t> alpn_list;
  bool has_alpn = false;
  std::span<const uint8_t> groups;
  std::span<const uint8_t> point_formats;
  bool has_point_formats = false;
  std::span<const uint8_t> sig_algs;
  uint16_t max_supported_version = 0;  // 0: no supported_versions extension
};

ClientInfo ReadClientHello(std::span<const uint8_t> body) noexcept {
  ClientInfo c;
  c.ok = ParseHello(body, false, &c.hello);
  if (!c.ok) return c;
  c.extensions_ok = ForEachExtension(c.hello, [&c](uint16_t type, std::span<const uint8_t> ext) {
    switch (type) {
      case kExtServerName: {
        ++c.sni_count;
        if (c.sni_count > 1) break;
        std::span<const uint8_t> host;
        const SniResult res = ParseSni(ext, &host);
        if (res == SniResult::kOk) {
          c.sni = host;
        } else {
          c.sni_error = res;
        }
        break;
      }
      case kExtAlpn:
        c.has_alpn = true;
        c.alpn_list = AlpnList(ext);
        break;
      case kExtSupportedGroups:
        c.groups = U16List(ext);
        break;
      case kExtEcPointFormats: {
        c.has_point_formats = true;
        ByteReader r(ext);
        const uint8_t n = r.U8();
        if (!r.failed()) r.Bytes(n, &c.point_formats);
        break;
      }
      case kExtSignatureAlgorithms:
        c.sig_algs = U16List(ext);
        break;
      case kExtSupportedVersions: {
        ByteReader r(ext);
        const uint8_t n = r.U8();
        std::span<const uint8_t> list;
        if (r.failed() || !r.Bytes(n, &list)) break;
        for (size_t i = 0; i + 1 < list.size(); i += 2) {
          const uint16_t v = LoadU16be(&list[i]);
          if (!IsGrease(v) && v > c.max_supported_version) c.max_supported_version = v;
        }
        break;
      }
      default:
        break;
    }
  });
  return c;
}

// A "-"-joined decimal list as JA3 writes it, GREASE left out.
template <size_t N>
void Ja3U16List(LocalText<N>* t, std::span<const uint8_t> list) noexcept {
  bool first = true;
  for (size_t i = 0; i + 1 < list.size(); i += 2) {
    const uint16_t v = LoadU16be(&list[i]);
    if (IsGrease(v)) continue;
    if (!first) t->Append('-');
    t->AppendUint(v);
    first = false;
  }
}

// JA3: SSLVersion,Ciphers,Extensions,EllipticCurves,EllipticCurvePointFormats (decimal).
template <size_t N>
void BuildJa3(const ClientInfo& c, LocalText<N>* t) noexcept {
  t->AppendUint(c.hello.version);
  t->Append(',');
  Ja3U16List(t, c.hello.ciphers);
  t->Append(',');
  bool first = true;
  ForEachExtension(c.hello, [&](uint16_t type, std::span<const uint8_t>) {
    if (IsGrease(type)) return;
    if (!first) t->Append('-');
    t->AppendUint(type);
    first = false;
  });
  t->Append(',');
  Ja3U16List(t, c.groups);
  t->Append(',');
  for (size_t i = 0; i < c.point_formats.size(); ++i) {
    if (i != 0) t->Append('-');
    t->AppendUint(c.point_formats[i]);
  }
}

const char* Ja4Version(uint16_t v) noexcept {
  switch (v) {
    case 0x0304:
      return "13";
    case 0x0303:
      return "12";
    case 0x0302:
      return "11";
    case 0x0301:
      return "10";
    case 0x0300:
      return "s3";
    case 0x0002:
      return "s2";
    case 0xfeff:
      return "d1";
    case 0xfefd:
      return "d2";
    case 0xfefc:
      return "d3";
    default:
      return "00";
  }
}

bool IsAlnum(uint8_t c) noexcept {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

// Feeds "xxxx,yyyy,..." (lower-case 4-digit hex) of `values` into `h`.
void HashHexList(Sha256* h, const uint16_t* values, size_t n) noexcept {
  for (size_t i = 0; i < n; ++i) {
    const uint8_t item[5] = {static_cast<uint8_t>(','),
                             static_cast<uint8_t>(kHexLower[values[i] >> 12]),
                             static_cast<uint8_t>(kHexLower[(values[i] >> 8) & 15]),
                             static_cast<uint8_t>(kHexLower[(values[i] >> 4) & 15]),
                             static_cast<uint8_t>(kHexLower[values[i] & 15])};
    h->Update(i == 0 ? std::span<const uint8_t>(item + 1, 4) : std::span<const uint8_t>(item, 5));
  }
}

void Trunc12(Sha256* h, char out[12]) noexcept {
  const Sha256::Digest d = h->Final();
  FormatHex(std::span<const uint8_t>(d.data(), 6), out, 12);
}

// JA4 (FoxIO): t<version><d|i><ciphers 2><extensions 2><alpn 2>_<ciphers>_<extensions_sigalgs>.
void BuildJa4(const ClientInfo& c, char out[36]) noexcept {
  uint16_t ciphers[kMaxJa4List];
  size_t n_ciphers = 0;
  size_t cipher_count = 0;
  for (size_t i = 0; i + 1 < c.hello.ciphers.size(); i += 2) {
    const uint16_t v = LoadU16be(&c.hello.ciphers[i]);
    if (IsGrease(v)) continue;
    ++cipher_count;
    if (n_ciphers < kMaxJa4List) ciphers[n_ciphers++] = v;
  }
  uint16_t exts[kMaxJa4List];
  size_t n_exts = 0;
  size_t ext_count = 0;
  ForEachExtension(c.hello, [&](uint16_t type, std::span<const uint8_t>) {
    if (IsGrease(type)) return;
    ++ext_count;
    if (type == kExtServerName || type == kExtAlpn) return;
    if (n_exts < kMaxJa4List) exts[n_exts++] = type;
  });

  const uint16_t version = c.max_supported_version != 0 ? c.max_supported_version : c.hello.version;
  out[0] = 't';
  std::memcpy(out + 1, Ja4Version(version), 2);
  out[3] = c.sni_count > 0 ? 'd' : 'i';
  cipher_count = std::min<size_t>(cipher_count, 99);
  ext_count = std::min<size_t>(ext_count, 99);
  out[4] = static_cast<char>('0' + cipher_count / 10);
  out[5] = static_cast<char>('0' + cipher_count % 10);
  out[6] = static_cast<char>('0' + ext_count / 10);
  out[7] = static_cast<char>('0' + ext_count % 10);
  out[8] = '0';
  out[9] = '0';
  std::span<const uint8_t> first_alpn;
  bool have_alpn = false;
  ForEachAlpn(c.alpn_list, [&](std::span<const uint8_t> proto) {
    if (!have_alpn) first_alpn = proto;
    have_alpn = true;
  });
  if (!first_alpn.empty()) {
    const uint8_t a = first_alpn.front();
    const uint8_t z = first_alpn.back();
    if (IsAlnum(a) && IsAlnum(z)) {
      out[8] = static_cast<char>(a);
      out[9] = static_cast<char>(z);
    } else {
      // First and last characters of the value's hex form.
      out[8] = kHexLower[a >> 4];
      out[9] = kHexLower[z & 15];
    }
  }
  out[10] = '_';
  if (n_ciphers == 0) {
    std::memset(out + 11, '0', 12);
  } else {
    std::sort(ciphers, ciphers + n_ciphers);
    Sha256 h;
    HashHexList(&h, ciphers, n_ciphers);
    Trunc12(&h, out + 11);
  }
  out[23] = '_';
  if (n_exts == 0) {
    std::memset(out + 24, '0', 12);
  } else {
    std::sort(exts, exts + n_exts);
    Sha256 h;
    HashHexList(&h, exts, n_exts);
    uint16_t sig[kMaxJa4List];
    size_t n_sig = 0;
    for (size_t i = 0; i + 1 < c.sig_algs.size() && n_sig < kMaxJa4List; i += 2) {
      const uint16_t v = LoadU16be(&c.sig_algs[i]);
      if (!IsGrease(v)) sig[n_sig++] = v;
    }
    if (n_sig != 0) {
      const uint8_t us = '_';
      h.Update({&us, 1});
      HashHexList(&h, sig, n_sig);
    }
    Trunc12(&h, out + 24);
  }
}

// ---------------------------------------------------------------------------------------------
// X.509 (DER) leaf certificate

struct Tlv {
  uint8_t tag = 0;
  std::span<const uint8_t> content;
  bool cut = false;  // content runs past the available bytes (allowed for outer containers)
};

bool DerRead(ByteReader& r, Tlv* t, bool allow_cut = false) noexcept {
  if (r.remaining() < 2) return false;
  const uint8_t tag = r.U8();
  if ((tag & 0x1f) == 0x1f) return false;  // multi-byte tags do not occur in certificates
  const uint8_t l = r.U8();
  size_t len = l;
  if (l & 0x80) {
    const int n = l & 0x7f;
    if (n == 0 || n > 4 || r.remaining() < static_cast<size_t>(n)) return false;
    len = 0;
    for (int i = 0; i < n; ++i) len = len << 8 | r.U8();
  }
  t->tag = tag;
  t->cut = len > r.remaining();
  if (t->cut) {
    if (!allow_cut) return false;
    len = r.remaining();
  }
  r.Bytes(len, &t->content);
  return true;
}

struct CertView {
  std::span<const uint8_t> serial;
  std::span<const uint8_t> issuer;  // Name content
  std::span<const uint8_t> subject;
  Tlv not_before;
  Tlv not_after;
  std::span<const uint8_t> extensions;  // Extensions SEQUENCE content
  bool has_serial = false;
  bool has_issuer = false;
  bool has_subject = false;
  bool has_validity = false;
  bool has_extensions = false;
  bool complete = false;  // parsed through the subject public key info without error
};

// Reads what it can of a (possibly cut) certificate; returns false when something present is
// malformed (a cut at the end is not an error).
bool ParseCertificate(std::span<const uint8_t> der, CertView* v) noexcept {
  ByteReader r(der);
  Tlv cert, tbs, x;
  if (!DerRead(r, &cert, true) || cert.tag != 0x30) return false;
  ByteReader cr(cert.content);
  if (!DerRead(cr, &tbs, true) || tbs.tag != 0x30) return cert.cut;
  ByteReader t(tbs.content);
  const bool cut = tbs.cut;
  // A cut certificate stops quietly at the first element that does not fit.
  if (!DerRead(t, &x)) return cut;
  if (x.tag == 0xa0 && !DerRead(t, &x)) return cut;  // [0] version
  if (x.tag != 0x02) return false;
  v->serial = x.content;
  v->has_serial = true;
  if (!DerRead(t, &x)) return cut;  // signature algorithm
  if (x.tag != 0x30) return false;
  if (!DerRead(t, &x)) return cut;
  if (x.tag != 0x30) return false;
  v->issuer = x.content;
  v->has_issuer = true;
  if (!DerRead(t, &x)) return cut;
  if (x.tag != 0x30) return false;
  ByteReader vr(x.content);
  if (!DerRead(vr, &v->not_before) || !DerRead(vr, &v->not_after)) return false;
  v->has_validity = true;
  if (!DerRead(t, &x)) return cut;
  if (x.tag != 0x30) return false;
  v->subject = x.content;
  v->has_subject = true;
  if (!DerRead(t, &x)) return cut;  // subject public key info
  if (x.tag != 0x30) return false;
  v->complete = !cut;
  while (t.remaining() != 0) {
    if (!DerRead(t, &x)) return cut;
    if (x.tag == 0xa3) {  // [3] EXPLICIT Extensions
      ByteReader er(x.content);
      Tlv seq;
      if (!DerRead(er, &seq) || seq.tag != 0x30) return false;
      v->extensions = seq.content;
      v->has_extensions = true;
    }
  }
  return true;
}

// Dotted form of an OID's content bytes.
template <size_t N>
void AppendOid(LocalText<N>* t, std::span<const uint8_t> oid) noexcept {
  uint64_t v = 0;
  bool first = true;
  for (size_t i = 0; i < oid.size(); ++i) {
    v = v << 7 | (oid[i] & 0x7f);
    if (oid[i] & 0x80) {
      if (v > (uint64_t{1} << 56)) return;  // absurd arc: stop rather than overflow
      continue;
    }
    if (first) {
      const uint64_t top = v < 80 ? v / 40 : 2;
      t->AppendUint(top);
      t->Append('.');
      t->AppendUint(v - top * 40);
      first = false;
    } else {
      t->Append('.');
      t->AppendUint(v);
    }
    v = 0;
  }
}

// Attribute names as Suricata (x509-parser) prints them.
const char* AttributeName(std::span<const uint8_t> oid) noexcept {
  static constexpr uint8_t kDc[] = {0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19};
  static constexpr uint8_t kUid[] = {0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01};
  static constexpr uint8_t kEmail[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01};
  auto is = [&oid](std::span<const uint8_t> want) {
    return oid.size() == want.size() && std::equal(oid.begin(), oid.end(), want.begin());
  };
  if (oid.size() == 3 && oid[0] == 0x55 && oid[1] == 0x04) {  // 2.5.4.x
    switch (oid[2]) {
      case 3:
        return "CN";
      case 4:
        return "surname";
      case 5:
        return "serialNumber";
      case 6:
        return "C";
      case 7:
        return "L";
      case 8:
        return "ST";
      case 9:
        return "street";
      case 10:
        return "O";
      case 11:
        return "OU";
      case 12:
        return "title";
      case 13:
        return "description";
      case 15:
        return "businessCategory";
      case 17:
        return "postalCode";
      case 42:
        return "givenName";
      case 43:
        return "initials";
      case 44:
        return "generationQualifier";
      case 46:
        return "dnQualifier";
      case 65:
        return "pseudonym";
      default:
        return nullptr;
    }
  }
  if (is(kDc)) return "DC";
  if (is(kUid)) return "UID";
  if (is(kEmail)) return "Email";
  return nullptr;
}

// An attribute value as text: string types as their bytes (BMPString converted from UTF-16),
// anything else as upper-case hex of its content.
template <size_t N>
void AppendAttributeValue(LocalText<N>* t, const Tlv& v) noexcept {
  switch (v.tag) {
    case 0x07:  // ObjectDescriptor
    case 0x0c:  // UTF8String
    case 0x12:  // NumericString
    case 0x13:  // PrintableString
    case 0x14:  // T61String
    case 0x15:  // VideotexString
    case 0x16:  // IA5String
    case 0x19:  // GraphicString
    case 0x1a:  // VisibleString
    case 0x1b:  // GeneralString
      t->Append(v.content);
      return;
    case 0x1e: {  // BMPString: UTF-16BE
      uint8_t le[256];
      const size_t n = std::min(v.content.size() & ~size_t{1}, sizeof le);
      for (size_t i = 0; i + 1 < n; i += 2) {
        le[i] = v.content[i + 1];
        le[i + 1] = v.content[i];
      }
      char utf8[384];
      t->Append(std::string_view(utf8, Utf16LeToUtf8({le, n}, utf8, sizeof utf8)));
      return;
    }
    default:
      for (uint8_t b : v.content) {
        t->Append(kHexUpper[b >> 4]);
        t->Append(kHexUpper[b & 15]);
      }
      return;
  }
}

// "C=US, ST=California, O=Example, CN=example.com" (RDNs in order, ", " between them, " + "
// inside a multi-valued one). `cn` receives the last CN value. False when malformed.
template <size_t N>
bool RenderName(std::span<const uint8_t> name, LocalText<N>* t,
                std::span<const uint8_t>* cn) noexcept {
  ByteReader r(name);
  bool first_rdn = true;
  while (r.remaining() != 0) {
    Tlv rdn;
    if (!DerRead(r, &rdn) || rdn.tag != 0x31) return false;
    if (!first_rdn) t->Append(", ");
    first_rdn = false;
    ByteReader ar(rdn.content);
    bool first_attr = true;
    while (ar.remaining() != 0) {
      Tlv atv, oid, value;
      if (!DerRead(ar, &atv) || atv.tag != 0x30) return false;
      ByteReader vr(atv.content);
      if (!DerRead(vr, &oid) || oid.tag != 0x06 || !DerRead(vr, &value)) return false;
      if (!first_attr) t->Append(" + ");
      first_attr = false;
      const char* abbrev = AttributeName(oid.content);
      if (abbrev != nullptr) {
        t->Append(abbrev);
      } else {
        AppendOid(t, oid.content);
      }
      t->Append('=');
      const size_t value_start = t->len;
      AppendAttributeValue(t, value);
      if (abbrev != nullptr && abbrev[0] == 'C' && abbrev[1] == 'N' && abbrev[2] == '\0') {
        *cn = {reinterpret_cast<const uint8_t*>(t->data) + value_start, t->len - value_start};
      }
    }
  }
  return true;
}

bool AllDigits(std::span<const uint8_t> s) noexcept {
  for (uint8_t c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// UTCTime / GeneralizedTime to "YYYY-MM-DDTHH:MM:SS" (UTC, as Suricata logs it). False when the
// value is not a time in the forms DER certificates use.
bool FormatCertTime(const Tlv& t, char out[19]) noexcept {
  std::span<const uint8_t> s = t.content;
  char year[4];
  if (t.tag == 0x17) {  // YYMMDDHHMM[SS]Z
    if (s.size() < 11 || !AllDigits(s.first(2))) return false;
    const bool y19 = (s[0] - '0') * 10 + (s[1] - '0') >= 50;
    year[0] = y19 ? '1' : '2';
    year[1] = y19 ? '9' : '0';
    year[2] = static_cast<char>(s[0]);
    year[3] = static_cast<char>(s[1]);
    s = s.subspan(2);
  } else if (t.tag == 0x18) {  // YYYYMMDDHH[MM[SS]][.f]Z
    if (s.size() < 13 || !AllDigits(s.first(4))) return false;
    std::memcpy(year, s.data(), 4);
    s = s.subspan(4);
  } else {
    return false;
  }
  // MMDDHHMM then optional SS.
  if (!AllDigits(s.first(8))) return false;
  const bool has_seconds = s.size() >= 10 && AllDigits(s.subspan(8, 2));
  std::memcpy(out, year, 4);
  out[4] = '-';
  out[5] = static_cast<char>(s[0]);
  out[6] = static_cast<char>(s[1]);
  out[7] = '-';
  out[8] = static_cast<char>(s[2]);
  out[9] = static_cast<char>(s[3]);
  out[10] = 'T';
  out[11] = static_cast<char>(s[4]);
  out[12] = static_cast<char>(s[5]);
  out[13] = ':';
  out[14] = static_cast<char>(s[6]);
  out[15] = static_cast<char>(s[7]);
  out[16] = ':';
  out[17] = has_seconds ? static_cast<char>(s[8]) : '0';
  out[18] = has_seconds ? static_cast<char>(s[9]) : '0';
  return true;
}

// subjectAltName entries (DNS names, e-mail addresses, URIs, IP addresses) as an array.
void WriteSubjectAltNames(JsonWriter& w, std::span<const uint8_t> extensions) noexcept {
  static constexpr uint8_t kSanOid[] = {0x55, 0x1d, 0x11};
  ByteReader r(extensions);
  while (r.remaining() != 0) {
    Tlv ext, oid, x;
    if (!DerRead(r, &ext) || ext.tag != 0x30) return;
    ByteReader er(ext.content);
    if (!DerRead(er, &oid) || oid.tag != 0x06) return;
    if (oid.content.size() != 3 || !std::equal(oid.content.begin(), oid.content.end(), kSanOid)) {
      continue;
    }
    if (!DerRead(er, &x)) return;
    if (x.tag == 0x01 && !DerRead(er, &x)) return;  // critical flag
    if (x.tag != 0x04) return;
    ByteReader sr(x.content);
    Tlv names;
    if (!DerRead(sr, &names) || names.tag != 0x30) return;
    ByteReader nr(names.content);
    bool open = false;
    while (nr.remaining() != 0) {
      Tlv gn;
      if (!DerRead(nr, &gn)) break;
      LocalText<64> ip;
      std::span<const uint8_t> value;
      switch (gn.tag) {
        case 0x81:  // rfc822Name
        case 0x82:  // dNSName
        case 0x86:  // uniformResourceIdentifier
          value = gn.content;
          break;
        case 0x87:  // iPAddress
          if (gn.content.size() == 4) {
            for (size_t i = 0; i < 4; ++i) {
              if (i != 0) ip.Append('.');
              ip.AppendUint(gn.content[i]);
            }
          } else if (gn.content.size() == 16) {
            for (size_t i = 0; i < 16; i += 2) {
              if (i != 0) ip.Append(':');
              const uint16_t v = LoadU16be(&gn.content[i]);
              // Full groups without zero compression: unambiguous and easy to search.
              for (int sh = 12; sh >= 0; sh -= 4) ip.Append(kHexLower[(v >> sh) & 15]);
            }
          } else {
            continue;
          }
          value = ip.bytes();
          break;
        default:
          continue;
      }
      if (!open) {
        w.ArrayBegin("subjectaltname");
        open = true;
      }
      w.Bytes("", value);
    }
    if (open) w.ArrayEnd();
    return;
  }
}

}  // namespace

size_t TlsVersionName(uint16_t v, char out[20]) noexcept {
  const char* name = nullptr;
  switch (v) {
    case 0x0000:
      name = "UNDETERMINED";
      break;
    case 0x0002:
      name = "SSLv2";
      break;
    case 0x0300:
      name = "SSLv3";
      break;
    case 0x0301:
      name = "TLSv1";
      break;
    case 0x0302:
      name = "TLS 1.1";
      break;
    case 0x0303:
      name = "TLS 1.2";
      break;
    case 0x0304:
      name = "TLS 1.3";
      break;
    case 0xfb14:
      name = "TLS 1.3 draft-20-fb";
      break;
    case 0xfb15:
      name = "TLS 1.3 draft-21-fb";
      break;
    case 0xfb16:
      name = "TLS 1.3 draft-22-fb";
      break;
    case 0xfb17:
      name = "TLS 1.3 draft-23-fb";
      break;
    case 0xfb1a:
      name = "TLS 1.3 draft-26-fb";
      break;
    default:
      break;
  }
  if (name == nullptr && (v >> 8) == 0x7f) {
    const unsigned draft = v & 0xff;
    if (draft < 16) {
      name = "TLS 1.3 draft-<16";
    } else if (draft <= 28) {
      std::memcpy(out, "TLS 1.3 draft-", 14);  // NOLINT: length-delimited, not a C string
      out[14] = static_cast<char>('0' + draft / 10);
      out[15] = static_cast<char>('0' + draft % 10);
      return 16;
    }
  }
  if (name != nullptr) {
    const size_t n = std::strlen(name);
    std::memcpy(out, name, n);  // NOLINT: length-delimited, not a C string
    return n;
  }
  out[0] = '0';
  out[1] = 'x';
  for (int i = 0; i < 4; ++i) out[2 + i] = kHexLower[(v >> (12 - 4 * i)) & 15];
  return 6;
}

ProbeResult TlsParser::Probe(Direction dir, std::span<const uint8_t> b) noexcept {
  if (b.empty()) return ProbeResult::kMaybe;
  if (b[0] != kHandshake) return ProbeResult::kNo;
  if (b.size() >= 2 && b[1] != 3) return ProbeResult::kNo;
  if (b.size() >= 3 && b[2] > 4) return ProbeResult::kNo;
  if (b.size() >= 5) {
    const uint16_t len = LoadU16be(&b[3]);
    if (len < 4 || len > kMaxRecordLen) return ProbeResult::kNo;
  }
  const uint8_t want = dir == Direction::kToServer ? kClientHello : kServerHello;
  if (b.size() >= 6 && b[5] != want) return ProbeResult::kNo;
  if (b.size() >= 9) {
    // Version, random, session id length and the smallest lists: 38 bytes at least.
    const uint32_t hs_len = LoadU24be(&b[6]);
    if (hs_len < 38) return ProbeResult::kNo;
  }
  if (b.size() >= 10 && b[9] != 3) return ProbeResult::kNo;  // hello version major
  if (b.size() >= 11 && b[10] > 4) return ProbeResult::kNo;
  return b.size() >= 11 ? ProbeResult::kYes : ProbeResult::kMaybe;
}

void TlsParser::Stop(Direction dir, const char* anomaly, EventSink& sink) noexcept {
  Side& s = side(dir);
  if (s.stopped) return;
  s.stopped = true;
  if (anomaly != nullptr) EmitAnomaly(sink, dir, AppProto::kTls, anomaly);
  // Nothing more will come from the server's side: log what the handshake gave.
  if (dir == Direction::kToClient) Emit(sink);
}

void TlsParser::OnData(Direction dir, std::span<const uint8_t> data, EventSink& sink) noexcept {
  Side& s = side(dir);
  while (!data.empty() && !s.stopped) {
    if (!s.in_record) {
      const size_t take = std::min<size_t>(5 - s.rec_hdr_len, data.size());
      std::memcpy(s.rec_hdr + s.rec_hdr_len, data.data(), take);
      s.rec_hdr_len = static_cast<uint8_t>(s.rec_hdr_len + take);
      data = data.subspan(take);
      if (s.rec_hdr_len < 5) return;
      s.rec_hdr_len = 0;
      if (!StartRecord(dir, sink)) return;
      continue;
    }
    const size_t take = std::min<size_t>(s.rec_left, data.size());
    RecordBytes(dir, data.first(take), sink);
    s.rec_left -= static_cast<uint32_t>(take);
    data = data.subspan(take);
    if (s.rec_left == 0) s.in_record = false;
  }
}

bool TlsParser::StartRecord(Direction dir, EventSink& sink) noexcept {
  Side& s = side(dir);
  const uint8_t type = s.rec_hdr[0];
  const uint16_t len = LoadU16be(&s.rec_hdr[3]);
  if (type < kChangeCipherSpec || type > kHeartbeat) {
    Stop(dir, "INVALID_RECORD_TYPE", sink);
    return false;
  }
  if (s.rec_hdr[1] != 3 || s.rec_hdr[2] > 4) {
    Stop(dir, "INVALID_RECORD_VERSION", sink);
    return false;
  }
  if (len > kMaxRecordLen || (len == 0 && type != kApplicationData)) {
    Stop(dir, "INVALID_RECORD_LENGTH", sink);
    return false;
  }
  s.rec_type = type;
  s.rec_left = len;
  s.in_record = len != 0;
  if (type == kChangeCipherSpec || type == kApplicationData) {
    // From here this direction is encrypted. The server's switch also ends the cleartext
    // handshake as far as logging goes (abbreviated handshakes have no certificate).
    s.encrypted = true;
    if (dir == Direction::kToClient) Emit(sink);
  }
  if (s.encrypted && type != kChangeCipherSpec) ++s.encrypted_records;
  return true;
}

void TlsParser::RecordBytes(Direction dir, std::span<const uint8_t> data,
                            EventSink& sink) noexcept {
  Side& s = side(dir);
  if (s.rec_type == kHandshake && !s.encrypted) HandshakeBytes(dir, data, sink);
  // Alerts, heartbeats, ChangeCipherSpec bodies and encrypted data are skipped.
}

void TlsParser::HandshakeBytes(Direction dir, std::span<const uint8_t> data,
                               EventSink& sink) noexcept {
  Side& s = side(dir);
  while (!data.empty() && !s.stopped && !s.encrypted) {
    if (!s.in_hs_body) {
      const size_t take = std::min<size_t>(4 - s.hs_hdr_len, data.size());
      std::memcpy(s.hs_hdr + s.hs_hdr_len, data.data(), take);
      s.hs_hdr_len = static_cast<uint8_t>(s.hs_hdr_len + take);
      data = data.subspan(take);
      if (s.hs_hdr_len < 4) return;
      s.hs_hdr_len = 0;
      if (!StartMessage(dir, sink)) return;
      if (s.hs_len == 0) EndMessage(dir, sink);
      continue;
    }
    const size_t take = std::min<size_t>(s.hs_len - s.hs_got, data.size());
    MessageBody(dir, data.first(take));
    s.hs_got += static_cast<uint32_t>(take);
    data = data.subspan(take);
    if (s.hs_got == s.hs_len) EndMessage(dir, sink);
  }
}

bool TlsParser::StartMessage(Direction dir, EventSink& sink) noexcept {
  Side& s = side(dir);
  s.hs_type = s.hs_hdr[0];
  s.hs_len = LoadU24be(&s.hs_hdr[1]);
  s.hs_got = 0;
  s.hs_cut = false;
  if (!KnownHandshakeType(s.hs_type)) {
    Stop(dir, "INVALID_HANDSHAKE_MESSAGE", sink);
    return false;
  }
  s.in_hs_body = s.hs_len != 0;
  // Only the messages the event needs are kept: the first ClientHello, the ServerHello and the
  // server's first Certificate (which then keeps the server buffer for the rest of the flow).
  if (dir == Direction::kToServer) {
    s.hs_keep = s.hs_type == kClientHello && !have_client_hello_;
  } else {
    s.hs_keep = (s.hs_type == kServerHello || s.hs_type == kCertificate) && !cert_in_buffer_;
    if (s.hs_type == kCertificate && s.hs_keep) {
      cert_in_buffer_ = true;
      leaf_len_ = 0;
      leaf_hashed_ = 0;
      leaf_sha1_.Init();
    }
  }
  if (s.hs_keep) s.buf_len = 0;
  return true;
}

void TlsParser::MessageBody(Direction dir, std::span<const uint8_t> data) noexcept {
  Side& s = side(dir);
  if (!s.hs_keep) return;
  const std::span<uint8_t> buf = buffer(dir);
  const size_t room = buf.size() - s.buf_len;
  const size_t take = std::min(room, data.size());
  std::memcpy(buf.data() + s.buf_len, data.data(), take);
  s.buf_len += static_cast<uint32_t>(take);
  s.hs_cut |= take < data.size();

  if (dir != Direction::kToClient || s.hs_type != kCertificate) return;
  // The leaf certificate's fingerprint covers all of it, kept in the buffer or not.
  if (leaf_len_ == 0 && s.buf_len >= 6) {
    const uint32_t list_len = LoadU24be(&buf[0]);
    const uint32_t leaf = LoadU24be(&buf[3]);
    if (leaf != 0 && uint64_t{leaf} + 3 <= list_len && uint64_t{list_len} + 3 <= s.hs_len) {
      leaf_len_ = leaf;
    } else {
      leaf_len_ = UINT32_MAX;  // invalid: reported when the event is built
    }
  }
  if (leaf_len_ == 0 || leaf_len_ == UINT32_MAX) return;
  const uint64_t off = s.hs_got;
  const uint64_t lo = std::max<uint64_t>(off, 6);
  const uint64_t hi = std::min<uint64_t>(off + data.size(), uint64_t{6} + leaf_len_);
  if (lo < hi) {
    leaf_sha1_.Update(data.subspan(lo - off, hi - lo));
    leaf_hashed_ += static_cast<uint32_t>(hi - lo);
  }
}

void TlsParser::EndMessage(Direction dir, EventSink& sink) noexcept {
  Side& s = side(dir);
  s.in_hs_body = false;
  if (dir == Direction::kToServer) {
    if (s.hs_type == kClientHello && s.hs_keep) {
      client_hello_cut_ = s.hs_cut;
      OnClientHello(sink);
    }
    return;
  }
  switch (s.hs_type) {
    case kServerHello:
      if (s.hs_keep) OnServerHello(sink);
      break;
    case kCertificate:
      if (s.hs_keep) {
        have_certificate_ = true;
        Emit(sink);
      }
      break;
    case kServerHelloDone:
      Emit(sink);
      break;
    default:
      break;
  }
}

void TlsParser::OnClientHello(EventSink& sink) noexcept {
  have_client_hello_ = true;
  const ClientInfo c = ReadClientHello({client_buf_, client_.buf_len});
  if (!c.ok || !c.extensions_ok) {
    EmitAnomaly(sink, Direction::kToServer, AppProto::kTls, "HANDSHAKE_INVALID_LENGTH");
  }
  if (client_hello_cut_) {
    EmitAnomaly(sink, Direction::kToServer, AppProto::kTls, "HANDSHAKE_MESSAGE_TRUNCATED");
  }
  if (c.sni_count > 1) {
    EmitAnomaly(sink, Direction::kToServer, AppProto::kTls, "MULTIPLE_SNI_EXTENSIONS");
  }
  if (c.sni_error == SniResult::kBadType) {
    EmitAnomaly(sink, Direction::kToServer, AppProto::kTls, "INVALID_SNI_TYPE");
  } else if (c.sni_error == SniResult::kBadLength) {
    EmitAnomaly(sink, Direction::kToServer, AppProto::kTls, "INVALID_SNI_LENGTH");
  }
  if (c.ok) {
    client_session_id_len_ = static_cast<uint8_t>(c.hello.session_id.size());
    std::memcpy(client_session_id_, c.hello.session_id.data(), c.hello.session_id.size());
  }
  // The signature engine: the ClientHello's tls.sni and ja3.hash / ja3.string, on the packet
  // that completed it.
  if (c.ok && sink.inspecting()) {
    rules::Buffers b;
    if (!c.sni.empty()) b.Set(rules::Buffer::kTlsSni, c.sni);
    Md5 md5;
    LocalText<4096> ja3;
    char hash[32];
    if (c.extensions_ok && !client_hello_cut_) {
      ja3.md5 = &md5;
      BuildJa3(c, &ja3);
      FormatHex(md5.Final(), hash, sizeof hash);
      b.Set(rules::Buffer::kJa3String, ja3.bytes());
      b.Set(rules::Buffer::kJa3Hash, {reinterpret_cast<const uint8_t*>(hash), sizeof hash});
    }
    if (b.mask() != 0) sink.Inspect(Direction::kToServer, b);
  }
}

void TlsParser::OnServerHello(EventSink& sink) noexcept {
  Hello h;
  if (!ParseHello({server_buf_, server_.buf_len}, true, &h) || server_.hs_cut) {
    EmitAnomaly(sink, Direction::kToClient, AppProto::kTls, "HANDSHAKE_INVALID_LENGTH");
    return;
  }
  const bool hrr = std::equal(h.random.begin(), h.random.end(), kHrrRandom);
  uint16_t selected = 0;
  LocalText<sizeof ja3s_> ja3s;
  ja3s.AppendUint(h.version);
  ja3s.Append(',');
  ja3s.AppendUint(LoadU16be(h.ciphers.data()));
  ja3s.Append(',');
  bool first = true;
  server_alpn_len_ = 0;
  const bool ext_ok = ForEachExtension(h, [&](uint16_t type, std::span<const uint8_t> ext) {
    if (type == kExtSupportedVersions && ext.size() == 2) selected = LoadU16be(ext.data());
    if (type == kExtAlpn) {
      ForEachAlpn(AlpnList(ext), [&](std::span<const uint8_t> proto) {
        if (server_alpn_len_ == 0 && !proto.empty()) {
          server_alpn_len_ = static_cast<uint16_t>(std::min(proto.size(), sizeof server_alpn_));
          std::memcpy(server_alpn_, proto.data(), server_alpn_len_);
        }
      });
    }
    if (IsGrease(type)) return;
    if (!first) ja3s.Append('-');
    ja3s.AppendUint(type);
    first = false;
  });
  if (!ext_ok) EmitAnomaly(sink, Direction::kToClient, AppProto::kTls, "HANDSHAKE_INVALID_LENGTH");
  if (hrr) return;  // the real ServerHello follows the client's second hello

  have_server_hello_ = true;
  server_version_ = selected != 0 ? selected : h.version;
  ja3s_len_ = static_cast<uint16_t>(ja3s.len);
  std::memcpy(ja3s_, ja3s.data, ja3s.len);
  const Md5::Digest d = Md5Of(ja3s.view());
  std::memcpy(ja3s_md5_, d.data(), d.size());
  const bool tls13 =
      server_version_ == 0x0304 || (server_version_ >> 8) == 0x7f || (server_version_ >> 8) == 0xfb;
  // Up to TLS 1.2 a ServerHello that echoes the client's session id resumes that session. TLS 1.3
  // always echoes it (legacy_session_id_echo, RFC 8446 4.1.3) and resumes through PSK instead, so
  // the echo says nothing there.
  session_resumed_ = !tls13 && client_session_id_len_ != 0 &&
                     h.session_id.size() == client_session_id_len_ &&
                     std::equal(h.session_id.begin(), h.session_id.end(), client_session_id_);
  if (tls13) {
    // Everything after a TLS 1.3 ServerHello is encrypted, certificate included.
    server_.encrypted = true;
    Emit(sink);
  }
}

void TlsParser::Emit(EventSink& sink) noexcept {
  if (logged_ || (!have_client_hello_ && !have_server_hello_ && !cert_in_buffer_)) return;
  logged_ = true;

  // Certificate first: its anomalies must be committed before the tls event is begun.
  CertView cert;
  bool have_cert = false;
  bool fingerprint_ok = false;
  if (cert_in_buffer_) {
    const uint32_t kept = server_.buf_len;
    if (leaf_len_ == UINT32_MAX) {
      EmitAnomaly(sink, Direction::kToClient, AppProto::kTls, "CERTIFICATE_INVALID_LENGTH");
    } else if (leaf_len_ != 0) {
      const bool cut = uint64_t{leaf_len_} + 6 > kept;
      const std::span<const uint8_t> der(server_buf_ + 6, cut ? kept - 6 : leaf_len_);
      have_cert = ParseCertificate(der, &cert);
      if (cut && have_certificate_) {
        EmitAnomaly(sink, Direction::kToClient, AppProto::kTls, "CERTIFICATE_TRUNCATED");
      }
      if (!have_cert && !cut) {
        EmitAnomaly(sink, Direction::kToClient, AppProto::kTls, "INVALID_CERTIFICATE");
      }
      have_cert |= cert.has_serial;  // a cut certificate still gives what fitted
      fingerprint_ok = leaf_hashed_ == leaf_len_;
    }
  }

  ClientInfo client;
  if (have_client_hello_) client = ReadClientHello({client_buf_, client_.buf_len});

  JsonWriter& w = sink.Begin("tls", Direction::kToServer);
  w.ObjectBegin("tls");

  std::span<const uint8_t> cn;  // points into `subject`, used by the message
  LocalText<1024> subject;
  bool have_subject = false;
  if (have_cert && cert.has_subject) {
    if (RenderName(cert.subject, &subject, &cn)) {
      have_subject = true;
      w.Bytes("subject", subject.bytes());
    } else {
      cn = {};
    }
  }
  LocalText<1024> issuer;
  bool have_issuer = false;
  if (have_cert && cert.has_issuer) {
    std::span<const uint8_t> unused;
    have_issuer = RenderName(cert.issuer, &issuer, &unused);
    if (have_issuer) w.Bytes("issuerdn", issuer.bytes());
  }
  if (have_cert && cert.has_extensions) WriteSubjectAltNames(w, cert.extensions);
  if (session_resumed_ && !cert_in_buffer_) w.Bool("session_resumed", true);
  LocalText<200> serial;
  if (have_cert && cert.has_serial) {
    for (size_t i = 0; i < cert.serial.size() && i < 64; ++i) {
      if (i != 0) serial.Append(':');
      serial.Append(kHexUpper[cert.serial[i] >> 4]);
      serial.Append(kHexUpper[cert.serial[i] & 15]);
    }
    w.Str("serial", serial.view());
  }
  char fp[3 * Sha1::kDigestSize];
  if (fingerprint_ok) {
    uint8_t digest[Sha1::kDigestSize];
    leaf_sha1_.Final(digest);
    leaf_sha1_.Init();
    for (size_t i = 0; i < sizeof digest; ++i) {
      fp[3 * i] = kHexLower[digest[i] >> 4];
      fp[3 * i + 1] = kHexLower[digest[i] & 15];
      fp[3 * i + 2] = ':';
    }
    w.Str("fingerprint", std::string_view(fp, sizeof fp - 1));
  }
  if (client.ok && !client.sni.empty()) w.Bytes("sni", client.sni);
  char version[20];
  const size_t version_len = TlsVersionName(server_version_, version);
  w.Str("version", std::string_view(version, version_len));
  if (have_cert && cert.has_validity) {
    char ts[19];
    if (FormatCertTime(cert.not_before, ts)) w.Str("notbefore", std::string_view(ts, 19));
    if (FormatCertTime(cert.not_after, ts)) w.Str("notafter", std::string_view(ts, 19));
  }
  char ja3_hash[32];
  // Fingerprints of a ClientHello we only have part of would be wrong: left out.
  const bool fingerprints = client.ok && client.extensions_ok && !client_hello_cut_;
  if (fingerprints) {
    // The hash covers the whole string even if the logged copy had to be cut.
    Md5 md5;
    LocalText<4096> ja3;
    ja3.md5 = &md5;
    BuildJa3(client, &ja3);
    FormatHex(md5.Final(), ja3_hash, sizeof ja3_hash);
    w.ObjectBegin("ja3");
    w.Str("hash", std::string_view(ja3_hash, 32));
    w.Str("string", ja3.view());
    w.ObjectEnd();
  }
  if (have_server_hello_) {
    char hash[32];
    FormatHex(ja3s_md5_, hash, sizeof hash);
    w.ObjectBegin("ja3s");
    w.Str("hash", std::string_view(hash, 32));
    w.Str("string", std::string_view(ja3s_, ja3s_len_));
    w.ObjectEnd();
  }
  if (fingerprints) {
    char ja4[36];
    BuildJa4(client, ja4);
    w.Str("ja4", std::string_view(ja4, sizeof ja4));
  }
  if (client.ok) {
    bool open = false;
    ForEachAlpn(client.alpn_list, [&](std::span<const uint8_t> proto) {
      if (proto.empty()) return;
      if (!open) w.ArrayBegin("client_alpns");
      open = true;
      w.Bytes("", proto);
    });
    if (open) w.ArrayEnd();
  }
  if (server_alpn_len_ != 0) {
    w.ArrayBegin("server_alpns");
    w.Bytes("", {reinterpret_cast<const uint8_t*>(server_alpn_), server_alpn_len_});
    w.ArrayEnd();
  }
  w.ObjectEnd();

  // TLS 1.2 example.com JA3 <hash> CN=example.com
  TextBuilder& m = sink.message();
  m.Append(std::string_view(version, version_len));
  if (client.ok && !client.sni.empty()) m.Append(' ').Append(AsText(client.sni));
  if (fingerprints) m.Append(" JA3 ").Append(std::string_view(ja3_hash, 32));
  if (!cn.empty()) m.Append(" CN=").Append(AsText(cn));
  if (session_resumed_ && !cert_in_buffer_) m.Append(" resumed");
  sink.Commit();

  // The signature engine: the server's side (certificate fields and ja3s), to the client.
  if (sink.inspecting()) {
    using rules::Buffer;
    rules::Buffers b;
    if (have_subject) b.Set(Buffer::kTlsCertSubject, subject.bytes());
    if (have_issuer) b.Set(Buffer::kTlsCertIssuer, issuer.bytes());
    if (!serial.bytes().empty()) b.Set(Buffer::kTlsCertSerial, serial.bytes());
    if (fingerprint_ok) {
      b.Set(Buffer::kTlsCertFingerprint, {reinterpret_cast<const uint8_t*>(fp), sizeof fp - 1});
    }
    // tls.certs: each complete certificate of the chain as far as the server buffer kept it
    // (certificate_list<3> { cert<3> DER }).
    constexpr size_t kMaxCerts = 10;
    std::array<std::span<const uint8_t>, kMaxCerts> certs;
    size_t ncerts = 0;
    if (cert_in_buffer_) {
      const std::span<const uint8_t> kept(server_buf_, server_.buf_len);
      size_t at = 3;
      while (ncerts < kMaxCerts && at + 3 <= kept.size()) {
        const size_t len = size_t{kept[at]} << 16 | size_t{kept[at + 1]} << 8 | kept[at + 2];
        if (len == 0 || at + 3 + len > kept.size()) break;
        certs[ncerts++] = kept.subspan(at + 3, len);
        at += 3 + len;
      }
      if (ncerts > 0) {
        b.SetItems(Buffer::kTlsCerts,
                   std::span<const std::span<const uint8_t>>(certs.data(), ncerts),
                   kept.subspan(6, at - 6));
      }
    }
    char ja3s_hash[32];
    if (have_server_hello_) {
      FormatHex(ja3s_md5_, ja3s_hash, sizeof ja3s_hash);
      b.Set(Buffer::kJa3sHash, {reinterpret_cast<const uint8_t*>(ja3s_hash), sizeof ja3s_hash});
      b.Set(Buffer::kJa3sString, {reinterpret_cast<const uint8_t*>(ja3s_), ja3s_len_});
    }
    if (b.mask() != 0) sink.Inspect(Direction::kToClient, b);
  }
}

void TlsParser::OnGap(Direction dir, uint32_t missing_bytes, EventSink& sink) noexcept {
  (void)missing_bytes;
  Side& s = side(dir);
  if (s.stopped) return;
  // Records cannot be found again after a gap. Once the direction is encrypted that costs only
  // the record count, so it passes without an anomaly.
  if (s.encrypted) {
    s.stopped = true;
    return;
  }
  Stop(dir, "HANDSHAKE_GAP", sink);
}

void TlsParser::OnEnd(EventSink& sink) noexcept {
  // A ClientHello cut short by the end of the flow still gives its SNI.
  if (!have_client_hello_ && client_.in_hs_body && client_.hs_keep && client_.buf_len != 0) {
    client_hello_cut_ = true;
    OnClientHello(sink);
  }
  Emit(sink);
}

}  // namespace vigil::proto
