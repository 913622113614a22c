#include "dataplane/proto/http.h"

#include <array>
#include <cstring>
#include <iterator>
#include <optional>
#include <string_view>

#include "dataplane/proto/spnego.h"
#include "rules/lang/text.h"

namespace vigil::proto {

// Suricata's HTTP app-layer event names (app-layer-htp.c), plus REQUEST_DATA_GAP /
// RESPONSE_DATA_GAP (vigil: a gap broke the framing and the direction resynchronises).
enum HttpParser::Anomaly : uint8_t {
  kRequestLineInvalid,
  kRequestLineLeadingWhitespace,
  kMissingHostHeader,
  kRequestFieldMissingColon,
  kResponseFieldMissingColon,
  kRequestHeaderInvalid,
  kResponseHeaderInvalid,
  kRequestFieldTooLong,
  kResponseFieldTooLong,
  kInvalidRequestChunkLen,
  kInvalidResponseChunkLen,
  kInvalidTeInRequest,
  kInvalidTeInResponse,
  kInvalidClInRequest,
  kInvalidClInResponse,
  kDuplicateClInRequest,
  kDuplicateClInResponse,
  kUnableToMatchResponse,
  kResponseInvalidProtocol,
  kResponseInvalidStatus,
  kRequestTooManyHeaders,
  kResponseTooManyHeaders,
  kRequestDataGap,
  kResponseDataGap,
  kAnomalyCount,
};

namespace {

constexpr const char* kAnomalyNames[] = {
    "REQUEST_LINE_INVALID",
    "REQUEST_LINE_LEADING_WHITESPACE",
    "MISSING_HOST_HEADER",
    "REQUEST_FIELD_MISSING_COLON",
    "RESPONSE_FIELD_MISSING_COLON",
    "REQUEST_HEADER_INVALID",
    "RESPONSE_HEADER_INVALID",
    "REQUEST_FIELD_TOO_LONG",
    "RESPONSE_FIELD_TOO_LONG",
    "INVALID_REQUEST_CHUNK_LEN",
    "INVALID_RESPONSE_CHUNK_LEN",
    "INVALID_TRANSFER_ENCODING_VALUE_IN_REQUEST",
    "INVALID_TRANSFER_ENCODING_VALUE_IN_RESPONSE",
    "INVALID_CONTENT_LENGTH_FIELD_IN_REQUEST",
    "INVALID_CONTENT_LENGTH_FIELD_IN_RESPONSE",
    "DUPLICATE_CONTENT_LENGTH_FIELD_IN_REQUEST",
    "DUPLICATE_CONTENT_LENGTH_FIELD_IN_RESPONSE",
    "UNABLE_TO_MATCH_RESPONSE_TO_REQUEST",
    "RESPONSE_INVALID_PROTOCOL",
    "RESPONSE_INVALID_STATUS",
    "REQUEST_TOO_MANY_HEADERS",
    "RESPONSE_TOO_MANY_HEADERS",
    "REQUEST_DATA_GAP",
    "RESPONSE_DATA_GAP",
};

// Request methods recognised by Probe and by resynchronisation: RFC 9110, PATCH (RFC 5789) and
// the WebDAV / DeltaV / CalDAV ones.
constexpr std::string_view kMethods[] = {
    "GET",
    "POST",
    "HEAD",
    "PUT",
    "DELETE",
    "OPTIONS",
    "CONNECT",
    "TRACE",
    "PATCH",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
    "SEARCH",
    "REPORT",
    "MKACTIVITY",
    "CHECKOUT",
    "CHECKIN",
    "UNCHECKOUT",
    "MERGE",
    "UPDATE",
    "LABEL",
    "MKWORKSPACE",
    "VERSION-CONTROL",
    "BASELINE-CONTROL",
    "MKCALENDAR",
    "ACL",
    "BIND",
    "UNBIND",
    "REBIND",
    "ORDERPATCH",
};

// Field caps: how much of each string a transaction keeps (within its arena).
constexpr size_t kMethodMax = 32;
constexpr size_t kProtocolMax = 16;
constexpr size_t kUrlMax = 512;
constexpr size_t kHostMax = 128;
constexpr size_t kUserAgentMax = 256;
constexpr size_t kRefererMax = 256;
constexpr size_t kXffMax = 128;
constexpr size_t kContentTypeMax = 128;
constexpr size_t kLocationMax = 256;
constexpr size_t kContentRangeMax = 64;
constexpr size_t kStatusTextMax = 32;

using Bytes = std::span<const uint8_t>;

bool IsSpace(uint8_t c) { return c == ' ' || c == '\t'; }

// RFC 9110 tchar.
bool IsTchar(uint8_t c) {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return c != 0 &&
         std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

uint8_t Lower(uint8_t c) { return (c >= 'A' && c <= 'Z') ? static_cast<uint8_t>(c + 32) : c; }

Bytes Trim(Bytes b) {
  size_t i = 0, j = b.size();
  while (i < j && IsSpace(b[i])) ++i;
  while (j > i && IsSpace(b[j - 1])) --j;
  return b.subspan(i, j - i);
}

bool EqualsNoCase(Bytes b, std::string_view s) {
  if (b.size() != s.size()) return false;
  for (size_t i = 0; i < b.size(); ++i) {
    if (Lower(b[i]) != Lower(static_cast<uint8_t>(s[i]))) return false;
  }
  return true;
}

bool StartsWithNoCase(Bytes b, std::string_view s) {
  return b.size() >= s.size() && EqualsNoCase(b.first(s.size()), s);
}

bool Equals(Bytes b, std::string_view s) {
  return b.size() == s.size() && std::memcmp(b.data(), s.data(), s.size()) == 0;
}

std::string_view View(Bytes b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

// A known method followed by a space or tab.
bool LooksLikeRequestLine(Bytes b) {
  for (std::string_view m : kMethods) {
    if (b.size() > m.size() && Equals(b.first(m.size()), m) && IsSpace(b[m.size()])) return true;
  }
  return false;
}

// Decimal digits only (surrounding whitespace already trimmed); false when empty, not a number
// or beyond 2^62 (no real body is that long; the bound keeps sums from overflowing).
bool ParseDecimal(Bytes b, uint64_t* out) {
  if (b.empty()) return false;
  uint64_t v = 0;
  for (uint8_t c : b) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
    if (v > (uint64_t{1} << 62)) return false;
  }
  *out = v;
  return true;
}

// A signed decimal for Content-Range parts; -1 when absent or not a number.
int64_t ParseRangeNumber(Bytes b) {
  uint64_t v = 0;
  return ParseDecimal(b, &v) ? static_cast<int64_t>(v) : -1;
}

// Standard base64 (RFC 4648), stopping at padding or at the first byte outside the alphabet;
// whitespace is skipped. Returns the bytes written (at most `cap`).
size_t Base64Decode(Bytes in, uint8_t* out, size_t cap) {
  uint32_t acc = 0;
  int bits = 0;
  size_t n = 0;
  for (uint8_t c : in) {
    int v;
    if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      v = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      v = c - '0' + 52;
    } else if (c == '+') {
      v = 62;
    } else if (c == '/') {
      v = 63;
    } else if (IsSpace(c)) {
      continue;
    } else {
      break;
    }
    acc = ((acc << 6) | static_cast<uint32_t>(v)) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      if (n == cap) break;
      out[n++] = static_cast<uint8_t>(acc >> bits);
    }
  }
  return n;
}

// Splits "host[:port]" / "[v6]:port" (an authority without userinfo). port is -1 when absent or
// not a valid port number.
void SplitHostPort(Bytes a, Bytes* host, int32_t* port) {
  a = Trim(a);
  *port = -1;
  Bytes port_part;
  if (!a.empty() && a[0] == '[') {
    size_t close = 0;
    while (close < a.size() && a[close] != ']') ++close;
    if (close == a.size()) {
      *host = a;
      return;
    }
    *host = a.first(close + 1);
    if (close + 1 < a.size() && a[close + 1] == ':') port_part = a.subspan(close + 2);
  } else {
    size_t colon = a.size();
    for (size_t i = 0; i < a.size(); ++i) {
      if (a[i] == ':') colon = i;
    }
    *host = a.first(colon);
    if (colon < a.size()) port_part = a.subspan(colon + 1);
  }
  uint64_t p = 0;
  if (ParseDecimal(port_part, &p) && p >= 1 && p <= 65535) *port = static_cast<int32_t>(p);
}

// The authority of an absolute URI ("http://user@host:port/path"), without userinfo; empty when
// `uri` is not absolute.
Bytes UriAuthority(Bytes uri) {
  size_t i = 0;
  while (i < uri.size() && ((Lower(uri[i]) >= 'a' && Lower(uri[i]) <= 'z') ||
                            (i > 0 && ((uri[i] >= '0' && uri[i] <= '9') || uri[i] == '+' ||
                                       uri[i] == '-' || uri[i] == '.')))) {
    ++i;
  }
  if (i == 0 || i + 3 > uri.size() || uri[i] != ':' || uri[i + 1] != '/' || uri[i + 2] != '/') {
    return {};
  }
  Bytes rest = uri.subspan(i + 3);
  size_t end = 0;
  while (end < rest.size() && rest[end] != '/' && rest[end] != '?' && rest[end] != '#') ++end;
  Bytes auth = rest.first(end);
  for (size_t k = auth.size(); k > 0; --k) {
    if (auth[k - 1] == '@') return auth.subspan(k);
  }
  return auth;
}

// Whether a comma-separated Transfer-Encoding list names "chunked".
bool HasChunked(Bytes v) {
  size_t start = 0;
  for (size_t i = 0; i <= v.size(); ++i) {
    if (i == v.size() || v[i] == ',') {
      Bytes tok = Trim(v.subspan(start, i - start));
      // Parameters (";q=...") do not apply to chunked, but tolerate them.
      size_t semi = 0;
      while (semi < tok.size() && tok[semi] != ';') ++semi;
      if (EqualsNoCase(Trim(tok.first(semi)), "chunked")) return true;
      start = i + 1;
    }
  }
  return false;
}

// Appends `b` to a region of `cap` bytes holding *len; false when it did not all fit.
bool Put(uint8_t* region, size_t cap, uint16_t* len, Bytes b) {
  const size_t n = b.size() < cap - *len ? b.size() : cap - *len;
  if (n != 0) std::memcpy(region + *len, b.data(), n);
  *len = static_cast<uint16_t>(*len + n);
  return n == b.size();
}

Bytes Lit(std::string_view s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

// Removes "." and ".." segments from the path p[0, n) in place (RFC 3986 5.2.4); returns the
// new length.
size_t RemoveDotSegments(uint8_t* p, size_t n) {
  size_t out = 0, i = 0;
  while (i < n) {
    size_t j = p[i] == '/' ? i + 1 : i;
    while (j < n && p[j] != '/') ++j;
    const size_t seg = p[i] == '/' ? i + 1 : i;
    const size_t seg_len = j - seg;
    if ((seg_len == 1 && p[seg] == '.') || (seg_len == 2 && p[seg] == '.' && p[seg + 1] == '.')) {
      if (seg_len == 2) {  // drop the previous segment
        while (out > 0 && p[out - 1] != '/') --out;
        if (out > 0) --out;
      }
      if (j == n) p[out++] = '/';  // a trailing "." or ".." leaves the directory
      i = j;
      continue;
    }
    std::memmove(p + out, p + i, j - i);
    out += j - i;
    i = j;
  }
  return out;
}

// http.uri: the request target as libhtp normalises it for Suricata, approximately: an absolute
// URI loses its scheme and authority, the path's %XX escapes are decoded and its "." and ".."
// segments removed; the query is kept as sent. Writes at most `cap` bytes; returns the length.
size_t NormalizeUri(Bytes uri, uint8_t* out, size_t cap) {
  if (!UriAuthority(uri).empty()) {
    size_t i = 0;
    while (i + 2 < uri.size() && !(uri[i] == ':' && uri[i + 1] == '/' && uri[i + 2] == '/')) ++i;
    i += 3;
    while (i < uri.size() && uri[i] != '/' && uri[i] != '?') ++i;
    uri = uri.subspan(i < uri.size() ? i : uri.size());
  }
  size_t q = 0;
  while (q < uri.size() && uri[q] != '?') ++q;
  size_t n = 0;
  for (size_t i = 0; i < q && n < cap; ++i) {
    int hi, lo;
    if (uri[i] == '%' && i + 2 < q && (hi = rules::HexDigitValue(uri[i + 1])) >= 0 &&
        (lo = rules::HexDigitValue(uri[i + 2])) >= 0) {
      out[n++] = static_cast<uint8_t>(hi << 4 | lo);
      i += 2;
    } else {
      out[n++] = uri[i];
    }
  }
  n = RemoveDotSegments(out, n);
  for (size_t i = q; i < uri.size() && n < cap; ++i) out[n++] = uri[i];
  return n;
}

// The buffer a request (`req`) or response header's value is also inspected as, if any.
std::optional<rules::Buffer> HeaderBuffer(Bytes name, bool req) {
  using rules::Buffer;
  struct Named {
    std::string_view name;
    Buffer buffer;
    int side;  // 0 both, 1 request, 2 response
  };
  static constexpr Named kNamed[] = {
      {"user-agent", Buffer::kHttpUserAgent, 1},
      {"host", Buffer::kHttpRawHost, 1},
      {"cookie", Buffer::kHttpCookie, 1},
      {"set-cookie", Buffer::kHttpCookie, 2},
      {"referer", Buffer::kHttpReferer, 1},
      {"accept", Buffer::kHttpAccept, 1},
      {"accept-encoding", Buffer::kHttpAcceptEnc, 1},
      {"accept-language", Buffer::kHttpAcceptLang, 1},
      {"connection", Buffer::kHttpConnection, 0},
      {"content-type", Buffer::kHttpContentType, 0},
      {"content-length", Buffer::kHttpContentLen, 0},
      {"server", Buffer::kHttpServer, 2},
      {"location", Buffer::kHttpLocation, 2},
  };
  for (const Named& n : kNamed) {
    if ((n.side == 0 || (n.side == 1) == req) && EqualsNoCase(name, n.name)) return n.buffer;
  }
  return std::nullopt;
}

}  // namespace

HttpParser::HttpParser() noexcept {
  Side& rq = sides_[static_cast<int>(Direction::kToServer)];
  rq.line_off = 0;
  rq.line_cap = static_cast<uint16_t>(kRequestLineMax);
  Side& rs = sides_[static_cast<int>(Direction::kToClient)];
  rs.line_off = static_cast<uint16_t>(kRequestLineMax);
  rs.line_cap = static_cast<uint16_t>(kResponseLineMax);
}

ProbeResult HttpParser::Probe(Direction dir, std::span<const uint8_t> data) noexcept {
  if (dir == Direction::kToClient) {
    constexpr std::string_view kVersion = "HTTP/1.";
    const size_t n = data.size() < kVersion.size() ? data.size() : kVersion.size();
    if (!Equals(data.first(n), kVersion.substr(0, n))) return ProbeResult::kNo;
    return n == kVersion.size() ? ProbeResult::kYes : ProbeResult::kMaybe;
  }
  bool maybe = false;
  for (std::string_view m : kMethods) {
    if (data.size() > m.size()) {
      if (Equals(data.first(m.size()), m) && data[m.size()] == ' ') return ProbeResult::kYes;
    } else if (Equals(data, m.substr(0, data.size()))) {
      maybe = true;
    }
  }
  return maybe ? ProbeResult::kMaybe : ProbeResult::kNo;
}

void HttpParser::Raise(Direction dir, Anomaly a, EventSink& sink) noexcept {
  static_assert(std::size(kAnomalyNames) == kAnomalyCount && kAnomalyCount <= 64);
  Side& s = side(dir);
  const uint64_t bit = uint64_t{1} << a;
  if ((s.seen & bit) != 0 || s.anomalies >= kMaxAnomalies) return;
  s.seen |= bit;
  // Hostile traffic could otherwise turn every message into an anomaly event: past the cap, one
  // last TOO_MANY_WARNINGS (Suricata's name for the same limit) and silence.
  if (++s.anomalies == kMaxAnomalies) {
    EmitAnomaly(sink, dir, AppProto::kHttp, "TOO_MANY_WARNINGS");
    return;
  }
  EmitAnomaly(sink, dir, AppProto::kHttp, kAnomalyNames[a]);
}

void HttpParser::ClearLine(Side& s) noexcept {
  s.line_len = 0;
  s.line_total = 0;
  s.line_cut = false;
  s.long_noted = false;
  s.hold = false;
  s.skip_ws = false;
}

void HttpParser::ResetFraming(Side& s) noexcept {
  s.chunked = false;
  s.has_cl = false;
  s.cl = 0;
  s.remaining = 0;
  s.header_count = 0;
}

bool HttpParser::TakeLine(Direction dir, std::span<const uint8_t> data, size_t* pos,
                          EventSink& sink, uint64_t* counted) noexcept {
  Side& s = side(dir);
  const size_t n = data.size();
  size_t p = *pos;
  if (s.skip_ws) {
    while (p < n && IsSpace(data[p])) ++p;
    if (counted != nullptr) *counted += p - *pos;
    *pos = p;
    if (p == n) return false;
    s.skip_ws = false;
  }
  const uint8_t* base = data.data() + p;
  const auto* lf = static_cast<const uint8_t*>(std::memchr(base, '\n', n - p));
  const size_t seg = lf != nullptr ? static_cast<size_t>(lf - base) : n - p;
  const size_t room = s.line_cap - s.line_len;
  const size_t keep = seg < room ? seg : room;
  if (keep != 0) std::memcpy(line(s) + s.line_len, base, keep);
  s.line_len = static_cast<uint16_t>(s.line_len + keep);
  if (keep < seg) s.line_cut = true;
  const uint64_t total = uint64_t{s.line_total} + seg;
  s.line_total = total > kFieldLimit ? kFieldLimit + 1 : static_cast<uint32_t>(total);
  if (s.line_total > kFieldLimit && !s.long_noted && !s.resync) {
    s.long_noted = true;
    Raise(dir, dir == Direction::kToServer ? kRequestFieldTooLong : kResponseFieldTooLong, sink);
  }
  const size_t used = lf != nullptr ? seg + 1 : seg;
  *pos = p + used;
  if (counted != nullptr) *counted += used;
  if (lf == nullptr) return false;
  if (!s.line_cut && s.line_len > 0 && line(s)[s.line_len - 1] == '\r') --s.line_len;
  return true;
}

HttpParser::Tx* HttpParser::HeadTx() noexcept { return count_ > 0 ? &pending_[head_] : nullptr; }

HttpParser::Tx* HttpParser::RequestTx() noexcept {
  if (req_seq_ == 0 || count_ == 0) return nullptr;
  Tx* tail = &pending_[(head_ + count_ - 1) % kMaxPending];
  return tail->seq == req_seq_ ? tail : nullptr;
}

HttpParser::Tx* HttpParser::ResponseTx() noexcept {
  Tx* h = HeadTx();
  return (resp_.bound && h != nullptr && h->seq == resp_.tx_seq) ? h : nullptr;
}

void HttpParser::PopHead() noexcept {
  if (count_ == 0) return;
  const uint32_t seq = pending_[head_].seq;
  if (req_ntlm_seq_ == seq) req_ntlm_seq_ = 0;
  // A request still being parsed loses its transaction: the rest of it is parsed for framing only.
  if (req_seq_ == seq) req_seq_ = 0;
  head_ = static_cast<uint8_t>((head_ + 1) % kMaxPending);
  --count_;
}

HttpParser::Tx* HttpParser::NewTx(EventSink& sink) noexcept {
  if (count_ == kMaxPending) {
    // The oldest request waited too long: report it now, without (or with part of) its response,
    // and remember that one more response belongs to an already reported transaction.
    Tx* h = HeadTx();
    if (resp_.active && ResponseTx() == h) {
      Emit(h, &resp_, sink);
      resp_.detached = true;
      resp_.bound = false;
    } else {
      Emit(h, nullptr, sink);
      if (skip_responses_ < UINT32_MAX) ++skip_responses_;
    }
    PopHead();
  }
  Tx* tx = &pending_[(head_ + count_) % kMaxPending];
  ++count_;
  tx->seq = next_seq_++;
  if (next_seq_ == 0) next_seq_ = 1;  // 0 means "none"
  tx->used = 0;
  tx->method = tx->url = tx->protocol = tx->hostname = Field{};
  tx->user_agent = tx->xff = tx->referer = Field{};
  tx->port = -1;
  tx->has_host = tx->is_head = tx->is_connect = tx->http09 = false;
  return tx;
}

namespace {

// Appends up to `max` bytes of `v` to an object's arena; the field keeps what fits.
template <class T, class F>
void Store(T* obj, F* field, Bytes v, size_t max) {
  size_t n = v.size() < max ? v.size() : max;
  const size_t room = sizeof(obj->arena) - obj->used;
  if (n > room) n = room;
  if (n != 0) std::memcpy(obj->arena + obj->used, v.data(), n);
  field->off = obj->used;
  field->len = static_cast<uint16_t>(n);
  obj->used = static_cast<uint16_t>(obj->used + n);
}

// The host part, lower-cased and without trailing dots (libhtp's normalisation).
template <class T, class F>
void StoreHost(T* obj, F* field, Bytes host) {
  Store(obj, field, host, kHostMax);
  char* h = obj->arena + field->off;
  for (uint16_t i = 0; i < field->len; ++i) {
    h[i] = static_cast<char>(Lower(static_cast<uint8_t>(h[i])));
  }
  while (field->len > 0 && h[field->len - 1] == '.') --field->len;
}

}  // namespace

void HttpParser::OnRequestLine(std::span<const uint8_t> ln, EventSink& sink) noexcept {
  Side& s = side(Direction::kToServer);
  const bool cut = s.line_cut;
  if (ln.empty() && !cut) return;  // CRLF between messages (RFC 9112 2.2 allows them)
  size_t i = 0;
  while (i < ln.size() && IsSpace(ln[i])) ++i;
  const bool leading_ws = i > 0;
  if (s.resync) {
    if (!LooksLikeRequestLine(ln.subspan(i))) return;
    s.resync = false;
  }
  s.seen = 0;

  const size_t m0 = i;
  while (i < ln.size() && IsTchar(ln[i])) ++i;
  const size_t m1 = i;
  bool valid = m1 > m0 && m1 - m0 <= kMethodMax && i < ln.size() && IsSpace(ln[i]);
  while (i < ln.size() && IsSpace(ln[i])) ++i;
  valid = valid && i < ln.size();
  Bytes uri, protocol;
  bool http09 = false;
  if (valid) {
    size_t end = ln.size();
    while (end > i && IsSpace(ln[end - 1])) --end;
    size_t p0 = end;
    while (p0 > i && !IsSpace(ln[p0 - 1])) --p0;
    if (p0 > i && StartsWithNoCase(ln.subspan(p0, end - p0), "HTTP/")) {
      protocol = ln.subspan(p0, end - p0);
      size_t u1 = p0;
      while (u1 > i && IsSpace(ln[u1 - 1])) --u1;
      uri = ln.subspan(i, u1 - i);
    } else {
      uri = ln.subspan(i, end - i);
      // A cut line lost its protocol: assume HTTP/1.x rather than 0.9.
      http09 = !cut;
    }
    for (uint8_t c : uri) {
      if ((c < 0x20 && c != '\t') || c == 0x7f) valid = false;
    }
  }
  if (!valid) {
    Raise(Direction::kToServer, kRequestLineInvalid, sink);
    s.resync = true;
    return;
  }
  if (leading_ws) Raise(Direction::kToServer, kRequestLineLeadingWhitespace, sink);

  Tx* tx = NewTx(sink);
  const Bytes method = ln.subspan(m0, m1 - m0);
  Store(tx, &tx->method, method, kMethodMax);
  Store(tx, &tx->url, uri, kUrlMax);
  Store(tx, &tx->protocol, protocol, kProtocolMax);
  tx->is_head = Equals(method, "HEAD");
  tx->is_connect = Equals(method, "CONNECT");
  tx->http09 = http09;
  // The URI's authority names the host when present (absolute-form, or CONNECT's
  // authority-form); the Host header is used otherwise.
  Bytes authority = tx->is_connect ? uri : UriAuthority(uri);
  if (!authority.empty()) {
    Bytes host;
    SplitHostPort(authority, &host, &tx->port);
    StoreHost(tx, &tx->hostname, host);
  }
  ResetFraming(s);
  DetectStartLine(Direction::kToServer, ln, method, uri, protocol, sink);
  det_[static_cast<int>(Direction::kToServer)].tx_seq = tx->seq;
  if (http09) {
    req_seq_ = 0;  // no headers, no body: the request is complete
    s.state = State::kStartLine;
    DetectHeadersEnd(Direction::kToServer, false, sink);
    if (inspector_ != nullptr) inspector_->OnMessageEnd(Direction::kToServer);
  } else {
    req_seq_ = tx->seq;
    s.state = State::kHeaders;
  }
}

void HttpParser::BeginResponse(EventSink& sink) noexcept {
  const bool interim = resp_.active;  // a final response after 1xx: same transaction
  resp_.has_status_line = false;
  resp_.status_valid = false;
  resp_.has_range = false;
  resp_.status = 0;
  resp_.range_start = resp_.range_end = resp_.range_size = -1;
  resp_.used = 0;
  resp_.status_text = resp_.content_type = resp_.location = resp_.content_range = Field{};
  if (interim) return;
  resp_.active = true;
  resp_.detached = false;
  resp_.bound = false;
  resp_.length = 0;
  resp_.has_ntlm = false;
  if (skip_responses_ > 0) {
    --skip_responses_;
    resp_.detached = true;
  } else if (Tx* h = HeadTx()) {
    resp_.bound = true;
    resp_.tx_seq = h->seq;
  } else {
    Raise(Direction::kToClient, kUnableToMatchResponse, sink);
  }
}

void HttpParser::OnStatusLine(std::span<const uint8_t> ln, EventSink& sink) noexcept {
  Side& s = side(Direction::kToClient);
  if (ln.empty() && !s.line_cut) return;
  size_t i = 0;
  while (i < ln.size() && IsSpace(ln[i])) ++i;
  const bool looks = StartsWithNoCase(ln.subspan(i), "HTTP/");
  if (s.resync) {
    if (!looks) return;
    s.resync = false;
  }
  s.seen = 0;
  if (!looks) {
    Raise(Direction::kToClient, kResponseInvalidProtocol, sink);
    s.resync = true;
    return;
  }
  BeginResponse(sink);
  resp_.has_status_line = true;
  const size_t p0 = i;
  while (i < ln.size() && !IsSpace(ln[i])) ++i;
  const Bytes version = ln.subspan(p0, i - p0);
  while (i < ln.size() && IsSpace(ln[i])) ++i;
  const size_t c0 = i;
  while (i < ln.size() && !IsSpace(ln[i])) ++i;
  const Bytes code = ln.subspan(c0, i - c0);
  DetectStartLine(Direction::kToClient, ln, version, code, Trim(ln.subspan(i)), sink);
  bool digits = code.size() == 3;
  for (uint8_t c : code) digits = digits && c >= '0' && c <= '9';
  if (digits) {
    resp_.status =
        static_cast<uint16_t>((code[0] - '0') * 100 + (code[1] - '0') * 10 + (code[2] - '0'));
    resp_.status_valid = resp_.status >= 100;
  }
  if (!resp_.status_valid) {
    Raise(Direction::kToClient, kResponseInvalidStatus, sink);
    Store(&resp_, &resp_.status_text, code, kStatusTextMax);
  }
  ResetFraming(s);
  s.state = State::kHeaders;
}

void HttpParser::OnHeader(Direction dir, std::span<const uint8_t> ln, EventSink& sink) noexcept {
  Side& s = side(dir);
  const bool req = dir == Direction::kToServer;
  if (s.header_count >= kMaxHeaders) {
    if (s.header_count == kMaxHeaders) {
      Raise(dir, req ? kRequestTooManyHeaders : kResponseTooManyHeaders, sink);
      ++s.header_count;
    }
    return;
  }
  ++s.header_count;
  size_t colon = 0;
  while (colon < ln.size() && ln[colon] != ':') ++colon;
  if (colon == ln.size()) {
    Raise(dir, req ? kRequestFieldMissingColon : kResponseFieldMissingColon, sink);
    return;
  }
  Bytes name = ln.first(colon);
  const Bytes trimmed = Trim(name);
  bool valid = !trimmed.empty() && trimmed.size() == name.size();
  for (uint8_t c : trimmed) valid = valid && IsTchar(c);
  if (!valid) {
    Raise(dir, req ? kRequestHeaderInvalid : kResponseHeaderInvalid, sink);
    if (trimmed.empty()) return;
  }
  name = trimmed;
  const Bytes value = Trim(ln.subspan(colon + 1));
  if (inspector_ != nullptr) inspector_->OnHeader(dir, name, value);
  DetectHeader(dir, ln, name, value);
  OnFraming(dir, name, value, sink);
  if (req) {
    OnRequestHeader(name, value, sink);
  } else {
    OnResponseHeader(name, value, sink);
  }
}

void HttpParser::OnFraming(Direction dir, std::span<const uint8_t> name,
                           std::span<const uint8_t> value, EventSink& sink) noexcept {
  Side& s = side(dir);
  const bool req = dir == Direction::kToServer;
  if (EqualsNoCase(name, "content-length")) {
    uint64_t v = 0;
    if (!ParseDecimal(value, &v)) {
      Raise(dir, req ? kInvalidClInRequest : kInvalidClInResponse, sink);
    } else if (s.has_cl) {
      if (v != s.cl) Raise(dir, req ? kDuplicateClInRequest : kDuplicateClInResponse, sink);
    } else {
      s.has_cl = true;
      s.cl = v;
    }
  } else if (EqualsNoCase(name, "transfer-encoding")) {
    if (HasChunked(value)) {
      s.chunked = true;
    } else if (!EqualsNoCase(value, "identity")) {
      Raise(dir, req ? kInvalidTeInRequest : kInvalidTeInResponse, sink);
    }
  }
}

void HttpParser::OnRequestHeader(std::span<const uint8_t> name, std::span<const uint8_t> value,
                                 EventSink& sink) noexcept {
  (void)sink;
  Tx* tx = RequestTx();
  if (tx == nullptr) return;
  if (EqualsNoCase(name, "host")) {
    if (tx->has_host) return;
    tx->has_host = true;
    if (tx->hostname.len == 0) {
      Bytes host;
      SplitHostPort(value, &host, &tx->port);
      StoreHost(tx, &tx->hostname, host);
    }
  } else if (EqualsNoCase(name, "user-agent")) {
    if (tx->user_agent.len == 0) Store(tx, &tx->user_agent, value, kUserAgentMax);
  } else if (EqualsNoCase(name, "referer")) {
    if (tx->referer.len == 0) Store(tx, &tx->referer, value, kRefererMax);
  } else if (EqualsNoCase(name, "x-forwarded-for")) {
    if (tx->xff.len == 0) Store(tx, &tx->xff, value, kXffMax);
  } else if (EqualsNoCase(name, "authorization") || EqualsNoCase(name, "proxy-authorization")) {
    OnAuth(Direction::kToServer, value);
  }
}

void HttpParser::OnResponseHeader(std::span<const uint8_t> name, std::span<const uint8_t> value,
                                  EventSink& sink) noexcept {
  (void)sink;
  if (!resp_.active) return;
  if (EqualsNoCase(name, "content-type")) {
    if (resp_.content_type.len != 0) return;
    // Suricata logs the media type without its parameters: everything before ';'.
    size_t semi = 0;
    while (semi < value.size() && value[semi] != ';') ++semi;
    Store(&resp_, &resp_.content_type, value.first(semi), kContentTypeMax);
  } else if (EqualsNoCase(name, "location")) {
    if (resp_.location.len == 0) Store(&resp_, &resp_.location, value, kLocationMax);
  } else if (EqualsNoCase(name, "content-range")) {
    if (resp_.has_range) return;
    resp_.has_range = true;
    Store(&resp_, &resp_.content_range, value, kContentRangeMax);
    // "bytes 0-99/1234", "bytes */1234", "bytes 0-99/*" (RFC 9110 14.4).
    Bytes v = value;
    if (StartsWithNoCase(v, "bytes")) v = Trim(v.subspan(5));
    size_t slash = 0;
    while (slash < v.size() && v[slash] != '/') ++slash;
    if (slash == v.size()) return;
    const Bytes range = Trim(v.first(slash));
    resp_.range_size = ParseRangeNumber(Trim(v.subspan(slash + 1)));
    size_t dash = 0;
    while (dash < range.size() && range[dash] != '-') ++dash;
    if (dash < range.size()) {
      resp_.range_start = ParseRangeNumber(Trim(range.first(dash)));
      resp_.range_end = ParseRangeNumber(Trim(range.subspan(dash + 1)));
    }
  } else if (EqualsNoCase(name, "www-authenticate") || EqualsNoCase(name, "proxy-authenticate")) {
    OnAuth(Direction::kToClient, value);
  }
}

void HttpParser::OnAuth(Direction dir, std::span<const uint8_t> value) noexcept {
  // "NTLM <base64>" or "Negotiate <base64>" (SPNEGO, possibly wrapping NTLMSSP).
  bool negotiate = false;
  size_t skip = 0;
  if (StartsWithNoCase(value, "NTLM") && value.size() > 4 && IsSpace(value[4])) {
    skip = 4;
  } else if (StartsWithNoCase(value, "Negotiate") && value.size() > 9 && IsSpace(value[9])) {
    skip = 9;
    negotiate = true;
  } else {
    return;
  }
  NtlmsspMessage* slot;
  if (dir == Direction::kToServer) {
    Tx* tx = RequestTx();
    if (tx == nullptr || req_ntlm_seq_ != 0) return;
    slot = &req_ntlm_;
  } else {
    if (!resp_.active || resp_.has_ntlm) return;
    slot = &resp_.ntlm;
  }
  // The header value is at most one line buffer long, so this holds all of it decoded.
  uint8_t decoded[kRequestLineMax * 3 / 4 + 4];
  const size_t n = Base64Decode(value.subspan(skip), decoded, sizeof decoded);
  Bytes blob(decoded, n);
  if (negotiate) {
    SpnegoToken token;
    if (!ParseSpnego(blob, &token) || token.mech != SpnegoMech::kNtlmssp) return;
    blob = token.mech_token;
  }
  *slot = NtlmsspMessage{};
  if (!ParseNtlmssp(blob, slot)) return;
  if (dir == Direction::kToServer) {
    req_ntlm_seq_ = RequestTx()->seq;
  } else {
    resp_.has_ntlm = true;
  }
}

void HttpParser::OnHeadersEnd(Direction dir, EventSink& sink) noexcept {
  Side& s = side(dir);
  if (dir == Direction::kToServer) {
    DetectHeadersEnd(dir, s.chunked || (s.has_cl && s.cl > 0), sink);
    const Tx* tx = RequestTx();
    if (tx != nullptr && !tx->has_host &&
        EqualsNoCase(
            Bytes(reinterpret_cast<const uint8_t*>(tx->arena) + tx->protocol.off, tx->protocol.len),
            "HTTP/1.1")) {
      Raise(dir, kMissingHostHeader, sink);
    }
    if (s.chunked) {
      s.state = State::kChunkSize;
    } else if (s.has_cl && s.cl > 0) {
      s.remaining = s.cl;
      s.state = State::kBodyLength;
    } else {
      MessageDone(dir, sink);
    }
    return;
  }
  const uint16_t status = resp_.status_valid ? resp_.status : 0;
  if (status >= 100 && status < 200 && status != 101) {
    // Interim response (100 Continue, 103 Early Hints): the final one follows for the same
    // transaction (and is the one inspected).
    det_[static_cast<int>(dir)].active = false;
    ResetFraming(s);
    s.state = State::kStartLine;
    return;
  }
  // The response is inspected once its body ends (or fills the window, or at once without one).
  DetectHeadersEnd(dir, true, sink);
  const Tx* tx = ResponseTx();
  if (status == 101 || (tx != nullptr && tx->is_connect && status >= 200 && status < 300)) {
    ResponseDone(sink);
    EnterTunnel();
    return;
  }
  if ((tx != nullptr && tx->is_head) || status == 204 || status == 304) {
    MessageDone(dir, sink);
  } else if (s.chunked) {
    s.state = State::kChunkSize;
  } else if (s.has_cl) {
    if (s.cl == 0) {
      MessageDone(dir, sink);
    } else {
      s.remaining = s.cl;
      s.state = State::kBodyLength;
    }
  } else {
    s.state = State::kBodyClose;
  }
}

void HttpParser::OnChunkSize(Direction dir, std::span<const uint8_t> ln, EventSink& sink) noexcept {
  Side& s = side(dir);
  const Bytes v = Trim(ln);
  if (v.empty() && !s.line_cut) return;  // stray empty line: tolerated, as libhtp does
  uint64_t size = 0;
  size_t digits = 0, i = 0;
  for (; i < v.size(); ++i) {
    const uint8_t c = Lower(v[i]);
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else {
      break;
    }
    size = size << 4 | static_cast<uint64_t>(d);
    ++digits;
  }
  // After the digits only a chunk extension (";...") or whitespace before it may follow.
  while (i < v.size() && IsSpace(v[i])) ++i;
  const bool valid = digits > 0 && digits <= 15 && (i == v.size() || v[i] == ';');
  if (!valid) {
    if (dir == Direction::kToServer) {
      Raise(dir, kInvalidRequestChunkLen, sink);
      MessageDone(dir, sink);
      side(dir).resync = true;
    } else {
      // As libhtp: the rest of the response is taken as body up to the end of the connection.
      Raise(dir, kInvalidResponseChunkLen, sink);
      s.state = State::kBodyClose;
    }
    return;
  }
  if (size == 0) {
    s.state = State::kTrailers;
  } else {
    s.remaining = size;
    s.state = State::kChunkData;
  }
}

void HttpParser::MessageDone(Direction dir, EventSink& sink) noexcept {
  DetectInspect(dir, sink);
  Side& s = side(dir);
  ResetFraming(s);
  s.state = State::kStartLine;
  if (dir == Direction::kToServer) {
    req_seq_ = 0;
    if (inspector_ != nullptr) inspector_->OnMessageEnd(dir);
  } else {
    ResponseDone(sink);
  }
}

void HttpParser::ResponseDone(EventSink& sink) noexcept {
  DetectInspect(Direction::kToClient, sink);
  if (!resp_.active) return;
  if (inspector_ != nullptr) inspector_->OnMessageEnd(Direction::kToClient);
  if (!resp_.detached) {
    Tx* tx = ResponseTx();
    Emit(tx, &resp_, sink);
    if (tx != nullptr) PopHead();
  }
  resp_.active = false;
  resp_.bound = false;
  resp_.detached = false;
  resp_.has_ntlm = false;
}

void HttpParser::EnterTunnel() noexcept {
  for (Side& s : sides_) {
    ClearLine(s);
    ResetFraming(s);
    s.state = State::kTunnel;
  }
  req_seq_ = 0;
}

void HttpParser::Emit(const Tx* tx, const Response* r, EventSink& sink) noexcept {
  auto field = [](const char* arena, Field f) {
    return Bytes(reinterpret_cast<const uint8_t*>(arena) + f.off, f.len);
  };
  const NtlmsspMessage* req_ntlm =
      (tx != nullptr && req_ntlm_seq_ == tx->seq) ? &req_ntlm_ : nullptr;
  const NtlmsspMessage* resp_ntlm = (r != nullptr && r->has_ntlm) ? &r->ntlm : nullptr;

  JsonWriter& w = sink.Begin("http", Direction::kToServer);
  w.ObjectBegin("http");
  if (tx != nullptr) {
    if (tx->hostname.len != 0) w.Bytes("hostname", field(tx->arena, tx->hostname));
    if (tx->port >= 0) w.Uint("http_port", static_cast<uint64_t>(tx->port));
    if (tx->url.len != 0) w.Bytes("url", field(tx->arena, tx->url));
    if (tx->user_agent.len != 0) w.Bytes("http_user_agent", field(tx->arena, tx->user_agent));
    if (tx->xff.len != 0) w.Bytes("xff", field(tx->arena, tx->xff));
  }
  if (r != nullptr) {
    if (r->content_type.len != 0) {
      w.Bytes("http_content_type", field(r->arena, r->content_type));
    }
    if (r->has_range) {
      w.ObjectBegin("content_range");
      w.Bytes("raw", field(r->arena, r->content_range));
      if (r->range_start >= 0) w.Uint("start", static_cast<uint64_t>(r->range_start));
      if (r->range_end >= 0) w.Uint("end", static_cast<uint64_t>(r->range_end));
      if (r->range_size >= 0) w.Uint("size", static_cast<uint64_t>(r->range_size));
      w.ObjectEnd();
    }
  }
  if (tx != nullptr) {
    if (tx->referer.len != 0) w.Bytes("http_refer", field(tx->arena, tx->referer));
    w.Bytes("http_method", field(tx->arena, tx->method));
    if (tx->protocol.len != 0) w.Bytes("protocol", field(tx->arena, tx->protocol));
  }
  if (r != nullptr && r->has_status_line) {
    if (r->status_valid) {
      w.Uint("status", r->status);
    } else {
      w.Bytes("status_string", field(r->arena, r->status_text));
    }
  }
  if (r != nullptr && r->location.len != 0) w.Bytes("redirect", field(r->arena, r->location));
  w.Uint("length", r != nullptr ? r->length : 0);
  // `ntlmssp` is the client's AUTHENTICATE (user, domain, host, version).
  const NtlmsspMessage* auth = nullptr;
  if (req_ntlm != nullptr && req_ntlm->type == NtlmsspType::kAuthenticate) auth = req_ntlm;
  if (auth == nullptr && resp_ntlm != nullptr && resp_ntlm->type == NtlmsspType::kAuthenticate) {
    auth = resp_ntlm;
  }
  if (auth != nullptr) {
    w.ObjectBegin("ntlmssp");
    WriteNtlmsspJson(*auth, w);
    w.ObjectEnd();
  }
  // The server's CHALLENGE (WWW-Authenticate): its names, under their own key as in smb.
  if (resp_ntlm != nullptr && resp_ntlm->type == NtlmsspType::kChallenge) {
    w.ObjectBegin("ntlmssp_challenge");
    WriteNtlmsspJson(*resp_ntlm, w);
    w.ObjectEnd();
  }
  w.ObjectEnd();

  // "HTTP GET example.com/index.html 200 text/html 1234"
  TextBuilder& t = sink.message();
  t.Append("HTTP ");
  if (tx != nullptr) {
    t.Append(View(field(tx->arena, tx->method))).Append(' ');
    const Bytes url = field(tx->arena, tx->url);
    if (tx->hostname.len != 0 && !url.empty() && url[0] == '/') {
      t.Append(View(field(tx->arena, tx->hostname)));
    }
    t.Append(View(url));
  } else {
    t.Append("(no request)");
  }
  if (r == nullptr) {
    t.Append(" (no response)");
  } else {
    t.Append(' ');
    if (r->has_status_line && r->status_valid) {
      t.AppendUint(r->status);
    } else if (r->has_status_line && r->status_text.len != 0) {
      t.Append(View(field(r->arena, r->status_text)));
    } else {
      t.Append('-');
    }
    t.Append(' ');
    if (r->content_type.len != 0) {
      t.Append(View(field(r->arena, r->content_type)));
    } else {
      t.Append('-');
    }
    t.Append(' ').AppendUint(r->length);
  }
  if (req_ntlm != nullptr) {
    t.Append(' ');
    AppendNtlmsspMessage(*req_ntlm, t);
  }
  if (resp_ntlm != nullptr) {
    t.Append(' ');
    AppendNtlmsspMessage(*resp_ntlm, t);
  }
  sink.Commit();
}

void HttpParser::Feed(Direction dir, std::span<const uint8_t> data, EventSink& sink) noexcept {
  Side& s = side(dir);
  const bool req = dir == Direction::kToServer;
  const size_t n = data.size();
  size_t pos = 0;
  // Every pass consumes bytes or changes state towards one that does.
  while (pos < n) {
    switch (s.state) {
      case State::kTunnel:
        return;

      case State::kStartLine: {
        if (!req && !resp_.active && !s.resync && s.line_len == 0 && skip_responses_ == 0) {
          const Tx* h = HeadTx();
          if (h != nullptr && h->http09) {
            // An HTTP/0.9 response is the body alone, up to the end of the connection.
            BeginResponse(sink);
            s.state = State::kBodyClose;
            break;
          }
        }
        if (!TakeLine(dir, data, &pos, sink, nullptr)) return;
        const Bytes ln(line(s), s.line_len);
        if (req) {
          OnRequestLine(ln, sink);
        } else {
          OnStatusLine(ln, sink);
        }
        ClearLine(s);
        break;
      }

      case State::kHeaders:
      case State::kTrailers: {
        if (s.hold) {
          const uint8_t c = data[pos];
          if (IsSpace(c) && s.state == State::kHeaders) {
            // obs-fold (RFC 9112 5.2): the held line continues; its parts join with one space.
            s.hold = false;
            s.skip_ws = true;
            if (s.line_len < s.line_cap) {
              line(s)[s.line_len++] = ' ';
            } else {
              s.line_cut = true;
            }
            break;
          }
          OnHeader(dir, Bytes(line(s), s.line_len), sink);
          ClearLine(s);
          break;
        }
        if (!TakeLine(dir, data, &pos, sink, nullptr)) return;
        if (s.line_len == 0 && !s.line_cut) {
          ClearLine(s);
          if (s.state == State::kHeaders) {
            OnHeadersEnd(dir, sink);
          } else {
            MessageDone(dir, sink);
          }
          break;
        }
        if (s.state == State::kTrailers) {
          ClearLine(s);  // trailer fields are not reported
          break;
        }
        s.hold = true;  // complete only once the next line does not continue it
        break;
      }

      case State::kBodyLength:
      case State::kChunkData: {
        const uint64_t avail = n - pos;
        const uint64_t take = s.remaining < avail ? s.remaining : avail;
        if (inspector_ != nullptr && take != 0) {
          inspector_->OnBody(dir, data.subspan(pos, static_cast<size_t>(take)));
        }
        if (take != 0) DetectBody(dir, data.subspan(pos, static_cast<size_t>(take)), sink);
        pos += static_cast<size_t>(take);
        s.remaining -= take;
        if (!req) resp_.length += take;
        if (s.remaining == 0) {
          if (s.state == State::kChunkData) {
            s.state = State::kChunkDataEnd;
          } else {
            MessageDone(dir, sink);
          }
        }
        break;
      }

      case State::kBodyClose:
        if (inspector_ != nullptr) inspector_->OnBody(dir, data.subspan(pos));
        // A body that lasts until the connection closes is inspected with its first bytes:
        // waiting for the close would leave no packet to act on.
        DetectBody(dir, data.subspan(pos), sink);
        DetectInspect(dir, sink);
        if (!req) resp_.length += n - pos;
        pos = n;
        break;

      case State::kChunkSize: {
        uint64_t counted = 0;
        const bool got = TakeLine(dir, data, &pos, sink, &counted);
        if (!req) resp_.length += counted;
        if (!got) return;
        OnChunkSize(dir, Bytes(line(s), s.line_len), sink);
        ClearLine(s);
        break;
      }

      case State::kChunkDataEnd: {
        // Up to and including the LF (anything before it is tolerated, as libhtp does).
        const auto* base = data.data() + pos;
        const auto* lf = static_cast<const uint8_t*>(std::memchr(base, '\n', n - pos));
        const size_t used = lf != nullptr ? static_cast<size_t>(lf - base) + 1 : n - pos;
        pos += used;
        if (!req) resp_.length += used;
        if (lf != nullptr) s.state = State::kChunkSize;
        break;
      }
    }
  }
  // A held header line that is the last byte of this call stays held: the next call decides.
}

void HttpParser::DetectStartLine(Direction dir, Bytes line, Bytes first, Bytes second, Bytes third,
                                 EventSink& sink) noexcept {
  using rules::Buffer;
  const int d = static_cast<int>(dir);
  DetectMsg& m = det_[d];
  m = DetectMsg{};
  if (!sink.inspecting()) return;
  m.active = true;
  uint8_t* raw = det_raw_[d];
  Put(raw, kDetectHead, &m.raw_len, line);
  // The parts are spans of `line`; in the raw region they sit at the same offsets.
  auto at = [&](Bytes part) -> Bytes {
    if (part.empty()) return {};
    const size_t off = static_cast<size_t>(part.data() - line.data());
    if (off >= m.raw_len) return {};
    const size_t n = part.size() < m.raw_len - off ? part.size() : m.raw_len - off;
    return {raw + off, n};
  };
  const Bytes start(raw, m.raw_len);
  Put(raw, kDetectHead, &m.raw_len, Lit("\r\n"));
  m.headers_at = m.raw_len;
  Put(det_names_[d], kDetectNames, &m.names_len, Lit("\r\n"));
  if (dir == Direction::kToServer) {
    m.buffers.Set(Buffer::kHttpRequestLine, start);
    m.buffers.Set(Buffer::kHttpMethod, at(first));
    m.buffers.Set(Buffer::kHttpRawUri, at(second));
    if (!third.empty()) m.buffers.Set(Buffer::kHttpProtocol, at(third));
    m.norm_len = static_cast<uint16_t>(NormalizeUri(at(second), det_norm_, kDetectNorm));
    m.buffers.Set(Buffer::kHttpUri, Bytes(det_norm_, m.norm_len));
  } else {
    m.buffers.Set(Buffer::kHttpResponseLine, start);
    m.buffers.Set(Buffer::kHttpProtocol, at(first));
    m.buffers.Set(Buffer::kHttpStatCode, at(second));
    m.buffers.Set(Buffer::kHttpStatMsg, at(third));
  }
}

void HttpParser::DetectHeader(Direction dir, Bytes line, Bytes name, Bytes value) noexcept {
  const int d = static_cast<int>(dir);
  DetectMsg& m = det_[d];
  if (!m.active || m.has_body) return;
  // Raw header lines keep their bytes (after unfolding); the normalised ones are
  // "Name: value\r\n" with the value trimmed.
  uint16_t raw_len = m.raw_len;
  if (Put(det_raw_[d], kDetectHead, &raw_len, line) &&
      Put(det_raw_[d], kDetectHead, &raw_len, Lit("\r\n"))) {
    m.raw_len = raw_len;
  }
  uint8_t* hdr = det_hdr_[d];
  uint16_t len = m.hdr_len;
  const uint16_t value_at = static_cast<uint16_t>(len + name.size() + 2);
  if (Put(hdr, kDetectHead, &len, name) && Put(hdr, kDetectHead, &len, Lit(": ")) &&
      Put(hdr, kDetectHead, &len, value) && Put(hdr, kDetectHead, &len, Lit("\r\n"))) {
    m.hdr_len = len;  // a header that does not fit whole is left out
    const std::optional<rules::Buffer> b = HeaderBuffer(name, dir == Direction::kToServer);
    if (b && !m.buffers.Has(*b)) m.buffers.Set(*b, Bytes(hdr + value_at, value.size()));
  }
  uint16_t names_len = m.names_len;
  if (Put(det_names_[d], kDetectNames, &names_len, name) &&
      Put(det_names_[d], kDetectNames, &names_len, Lit("\r\n"))) {
    m.names_len = names_len;
  }
}

void HttpParser::DetectHeadersEnd(Direction dir, bool body, EventSink& sink) noexcept {
  using rules::Buffer;
  const int d = static_cast<int>(dir);
  DetectMsg& m = det_[d];
  if (!m.active || m.has_body) return;
  Put(det_raw_[d], kDetectHead, &m.raw_len, Lit("\r\n"));
  Put(det_names_[d], kDetectNames, &m.names_len, Lit("\r\n"));
  m.buffers.Set(Buffer::kHttpStart, Bytes(det_raw_[d], m.raw_len));
  m.buffers.Set(Buffer::kHttpRawHeader,
                Bytes(det_raw_[d] + m.headers_at, static_cast<size_t>(m.raw_len - m.headers_at)));
  if (m.hdr_len > 0) m.buffers.Set(Buffer::kHttpHeader, Bytes(det_hdr_[d], m.hdr_len));
  m.buffers.Set(Buffer::kHttpHeaderNames, Bytes(det_names_[d], m.names_len));
  if (dir == Direction::kToServer) {
    // The host as libhtp normalises it: from the URI's authority, else the Host header;
    // lower-cased, without port and trailing dots.
    if (const Tx* tx = RequestTx(); tx != nullptr && tx->hostname.len > 0) {
      const Bytes host(reinterpret_cast<const uint8_t*>(tx->arena) + tx->hostname.off,
                       tx->hostname.len);
      const size_t room = kDetectNorm - m.norm_len;
      const size_t n = host.size() < room ? host.size() : room;
      std::memcpy(det_norm_ + m.norm_len, host.data(), n);
      m.buffers.Set(Buffer::kHttpHost, Bytes(det_norm_ + m.norm_len, n));
      m.norm_len = static_cast<uint16_t>(m.norm_len + n);
    }
  }
  if (body) {
    m.has_body = true;  // inspected with its first body bytes
  } else {
    DetectInspect(dir, sink);
  }
}

void HttpParser::DetectBody(Direction dir, Bytes data, EventSink& sink) noexcept {
  const int d = static_cast<int>(dir);
  DetectMsg& m = det_[d];
  if (!m.active || !m.has_body) return;
  Put(det_body_[d], kDetectBody, &m.body_len, data);
  if (m.body_len == kDetectBody) DetectInspect(dir, sink);
}

void HttpParser::DetectInspect(Direction dir, EventSink& sink) noexcept {
  using rules::Buffer;
  const int d = static_cast<int>(dir);
  DetectMsg& m = det_[d];
  if (!m.active) return;
  m.active = false;
  if (!sink.inspecting()) return;
  if (m.body_len > 0) {
    // file_data is the response body, and (as Suricata 7) the request body to the server too.
    const Bytes body(det_body_[d], m.body_len);
    m.buffers.Set(Buffer::kFileData, body);
    if (dir == Direction::kToServer) m.buffers.Set(Buffer::kHttpRequestBody, body);
  }
  rules::Buffers b = m.buffers;
  // http.request_header / http.response_header: each line of http.header ("Name: value"), the
  // first kMaxHeaderItems of them.
  constexpr size_t kMaxHeaderItems = 64;
  std::array<Bytes, kMaxHeaderItems> items;
  if (m.buffers.Has(Buffer::kHttpHeader)) {
    size_t n = 0;
    const Bytes hdr = m.buffers.Get(Buffer::kHttpHeader);
    for (size_t at = 0; at + 1 < hdr.size() && n < kMaxHeaderItems;) {
      size_t end = at;
      while (end + 1 < hdr.size() && !(hdr[end] == '\r' && hdr[end + 1] == '\n')) ++end;
      if (end + 1 >= hdr.size()) break;  // every line ends in CRLF (a cut one is left out)
      items[n++] = hdr.subspan(at, end - at);
      at = end + 2;
    }
    b.SetItems(
        dir == Direction::kToServer ? Buffer::kHttpRequestHeader : Buffer::kHttpResponseHeader,
        std::span<const Bytes>(items.data(), n), hdr);
  }
  // A response comes with its request's buffers as context (a rule on http.uri and
  // http.stat_code matches the transaction), when the request kept in det_[kToServer] is the one
  // this response answers (with pipelining, a later request may have replaced it) and is
  // complete.
  const DetectMsg& req = det_[static_cast<int>(Direction::kToServer)];
  if (dir == Direction::kToClient && resp_.bound && req.tx_seq == resp_.tx_seq && !req.active &&
      req.inspected) {
    for (const Buffer x :
         {Buffer::kHttpMethod, Buffer::kHttpUri, Buffer::kHttpRawUri, Buffer::kHttpRequestLine,
          Buffer::kHttpHost, Buffer::kHttpRawHost, Buffer::kHttpUserAgent, Buffer::kHttpReferer,
          Buffer::kHttpAccept, Buffer::kHttpAcceptEnc, Buffer::kHttpAcceptLang,
          Buffer::kHttpRequestBody}) {
      if (req.buffers.Has(x)) b.SetContext(x, req.buffers.Get(x));
    }
  }
  m.inspected = true;
  sink.Inspect(dir, b);
}

void HttpParser::OnData(Direction dir, std::span<const uint8_t> data, EventSink& sink) noexcept {
  if (ended_ || data.empty()) return;
  Feed(dir, data, sink);
}

void HttpParser::OnGap(Direction dir, uint32_t missing_bytes, EventSink& sink) noexcept {
  if (ended_ || missing_bytes == 0) return;
  Side& s = side(dir);
  const bool req = dir == Direction::kToServer;
  switch (s.state) {
    case State::kTunnel:
      return;
    case State::kBodyClose:
      resp_.length += missing_bytes;
      return;
    case State::kBodyLength:
    case State::kChunkData:
      // Lost body bytes are only counted: framing survives when the gap ends inside the body.
      if (missing_bytes <= s.remaining) {
        s.remaining -= missing_bytes;
        if (!req) resp_.length += missing_bytes;
        if (s.remaining == 0) {
          if (s.state == State::kChunkData) {
            s.state = State::kChunkDataEnd;
          } else {
            MessageDone(dir, sink);
          }
        }
        return;
      }
      if (!req) resp_.length += s.remaining;
      break;
    default:
      break;
  }
  // Framing is lost: finish the message in progress with what it has, then drop bytes until a
  // line that starts a message.
  if (s.state == State::kHeaders && s.hold) OnHeader(dir, Bytes(line(s), s.line_len), sink);
  Raise(dir, req ? kRequestDataGap : kResponseDataGap, sink);
  if (req && s.state != State::kStartLine && inspector_ != nullptr) inspector_->OnMessageEnd(dir);
  if (req) DetectInspect(dir, sink);  // what arrived before the gap
  ClearLine(s);
  ResetFraming(s);
  s.state = State::kStartLine;
  s.resync = true;
  if (req) {
    req_seq_ = 0;
  } else {
    ResponseDone(sink);
  }
}

void HttpParser::OnEnd(EventSink& sink) noexcept {
  if (ended_) return;
  ended_ = true;
  for (int d = 0; d < 2; ++d) {
    const auto dir = static_cast<Direction>(d);
    Side& s = side(dir);
    if (s.state == State::kHeaders && s.hold) {
      OnHeader(dir, Bytes(line(s), s.line_len), sink);
      ClearLine(s);
    }
  }
  const State rq = side(Direction::kToServer).state;
  if (rq != State::kStartLine && rq != State::kTunnel && inspector_ != nullptr) {
    inspector_->OnMessageEnd(Direction::kToServer);
  }
  ResponseDone(sink);
  while (count_ > 0) {
    Emit(HeadTx(), nullptr, sink);
    PopHead();
  }
  EnterTunnel();
}

}  // namespace vigil::proto
