#include "rules/lang/rule_parser.h"

#include <hs/hs.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>
#include <exception>
#include <utility>
#include <vector>

#include "rules/lang/krb5_etype.h"
#include "rules/lang/text.h"

namespace vigil::rules {
namespace {

struct NamedBuffer {
  std::string_view name;
  Buffer buffer;
};

// Sticky buffers: every following content/pcre inspects this buffer. Suricata 5+ dotted names
// and the older underscore names that were already sticky in Suricata 4.
constexpr std::array kStickyBuffers = {
    NamedBuffer{"pkt_data", Buffer::kPacket},
    NamedBuffer{"file_data", Buffer::kFileData},
    NamedBuffer{"file.data", Buffer::kFileData},
    NamedBuffer{"http.uri", Buffer::kHttpUri},
    NamedBuffer{"http.uri.raw", Buffer::kHttpRawUri},
    NamedBuffer{"http.method", Buffer::kHttpMethod},
    NamedBuffer{"http.protocol", Buffer::kHttpProtocol},
    NamedBuffer{"http_protocol", Buffer::kHttpProtocol},
    NamedBuffer{"http.request_line", Buffer::kHttpRequestLine},
    NamedBuffer{"http_request_line", Buffer::kHttpRequestLine},
    NamedBuffer{"http.response_line", Buffer::kHttpResponseLine},
    NamedBuffer{"http_response_line", Buffer::kHttpResponseLine},
    NamedBuffer{"http.start", Buffer::kHttpStart},
    NamedBuffer{"http_start", Buffer::kHttpStart},
    NamedBuffer{"http.header", Buffer::kHttpHeader},
    NamedBuffer{"http.header.raw", Buffer::kHttpRawHeader},
    NamedBuffer{"http.header_names", Buffer::kHttpHeaderNames},
    NamedBuffer{"http_header_names", Buffer::kHttpHeaderNames},
    NamedBuffer{"http.host", Buffer::kHttpHost},
    NamedBuffer{"http.host.raw", Buffer::kHttpRawHost},
    NamedBuffer{"http.user_agent", Buffer::kHttpUserAgent},
    NamedBuffer{"http.cookie", Buffer::kHttpCookie},
    NamedBuffer{"http.accept", Buffer::kHttpAccept},
    NamedBuffer{"http_accept", Buffer::kHttpAccept},
    NamedBuffer{"http.accept_enc", Buffer::kHttpAcceptEnc},
    NamedBuffer{"http_accept_enc", Buffer::kHttpAcceptEnc},
    NamedBuffer{"http.accept_lang", Buffer::kHttpAcceptLang},
    NamedBuffer{"http_accept_lang", Buffer::kHttpAcceptLang},
    NamedBuffer{"http.connection", Buffer::kHttpConnection},
    NamedBuffer{"http_connection", Buffer::kHttpConnection},
    NamedBuffer{"http.content_type", Buffer::kHttpContentType},
    NamedBuffer{"http_content_type", Buffer::kHttpContentType},
    NamedBuffer{"http.content_len", Buffer::kHttpContentLen},
    NamedBuffer{"http_content_len", Buffer::kHttpContentLen},
    NamedBuffer{"http.referer", Buffer::kHttpReferer},
    NamedBuffer{"http_referer", Buffer::kHttpReferer},
    NamedBuffer{"http.server", Buffer::kHttpServer},
    NamedBuffer{"http.location", Buffer::kHttpLocation},
    NamedBuffer{"http.request_body", Buffer::kHttpRequestBody},
    NamedBuffer{"http.response_body", Buffer::kFileData},
    NamedBuffer{"http.stat_code", Buffer::kHttpStatCode},
    NamedBuffer{"http.stat_msg", Buffer::kHttpStatMsg},
    NamedBuffer{"dns.query", Buffer::kDnsQuery},
    NamedBuffer{"dns_query", Buffer::kDnsQuery},
    NamedBuffer{"tls.sni", Buffer::kTlsSni},
    NamedBuffer{"tls_sni", Buffer::kTlsSni},
    NamedBuffer{"tls.cert_subject", Buffer::kTlsCertSubject},
    NamedBuffer{"tls_cert_subject", Buffer::kTlsCertSubject},
    NamedBuffer{"tls.cert_issuer", Buffer::kTlsCertIssuer},
    NamedBuffer{"tls_cert_issuer", Buffer::kTlsCertIssuer},
    NamedBuffer{"tls.cert_serial", Buffer::kTlsCertSerial},
    NamedBuffer{"tls_cert_serial", Buffer::kTlsCertSerial},
    NamedBuffer{"tls.cert_fingerprint", Buffer::kTlsCertFingerprint},
    NamedBuffer{"tls_cert_fingerprint", Buffer::kTlsCertFingerprint},
    NamedBuffer{"ja3.hash", Buffer::kJa3Hash},
    NamedBuffer{"ja3_hash", Buffer::kJa3Hash},
    NamedBuffer{"ja3.string", Buffer::kJa3String},
    NamedBuffer{"ja3_string", Buffer::kJa3String},
    NamedBuffer{"ja3s.hash", Buffer::kJa3sHash},
    NamedBuffer{"ja3s.string", Buffer::kJa3sString},
    NamedBuffer{"smb.share", Buffer::kSmbShare},
    NamedBuffer{"smb_share", Buffer::kSmbShare},
    NamedBuffer{"smb.named_pipe", Buffer::kSmbNamedPipe},
    NamedBuffer{"smb_named_pipe", Buffer::kSmbNamedPipe},
    NamedBuffer{"dcerpc.stub_data", Buffer::kDcerpcStubData},
    NamedBuffer{"dce_stub_data", Buffer::kDcerpcStubData},
    NamedBuffer{"file.name", Buffer::kFileName},
    NamedBuffer{"ssh.proto", Buffer::kSshProto},
    NamedBuffer{"ssh_proto", Buffer::kSshProto},
    NamedBuffer{"ssh.software", Buffer::kSshSoftware},
    NamedBuffer{"ssh_software", Buffer::kSshSoftware},
    NamedBuffer{"krb5.cname", Buffer::kKrb5Cname},
    NamedBuffer{"krb5_cname", Buffer::kKrb5Cname},
    NamedBuffer{"krb5.sname", Buffer::kKrb5Sname},
    NamedBuffer{"krb5_sname", Buffer::kKrb5Sname},
    NamedBuffer{"http.request_header", Buffer::kHttpRequestHeader},
    NamedBuffer{"http.response_header", Buffer::kHttpResponseHeader},
    NamedBuffer{"tls.certs", Buffer::kTlsCerts},
};

// Legacy content modifiers: they move the content just before them into the buffer.
constexpr std::array kContentModifiers = {
    NamedBuffer{"http_uri", Buffer::kHttpUri},
    NamedBuffer{"http_raw_uri", Buffer::kHttpRawUri},
    NamedBuffer{"http_method", Buffer::kHttpMethod},
    NamedBuffer{"http_header", Buffer::kHttpHeader},
    NamedBuffer{"http_raw_header", Buffer::kHttpRawHeader},
    NamedBuffer{"http_host", Buffer::kHttpHost},
    NamedBuffer{"http_raw_host", Buffer::kHttpRawHost},
    NamedBuffer{"http_user_agent", Buffer::kHttpUserAgent},
    NamedBuffer{"http_cookie", Buffer::kHttpCookie},
    NamedBuffer{"http_client_body", Buffer::kHttpRequestBody},
    // Suricata inspects the HTTP response body as file_data: one buffer, one relative chain.
    NamedBuffer{"http_server_body", Buffer::kFileData},
    NamedBuffer{"http_stat_code", Buffer::kHttpStatCode},
    NamedBuffer{"http_stat_msg", Buffer::kHttpStatMsg},
};

// pcre's buffer flags (Suricata's list).
constexpr std::array<std::pair<char, Buffer>, 13> kPcreBufferFlags = {{
    {'U', Buffer::kHttpUri},
    {'I', Buffer::kHttpRawUri},
    {'P', Buffer::kHttpRequestBody},
    {'Q', Buffer::kFileData},
    {'H', Buffer::kHttpHeader},
    {'D', Buffer::kHttpRawHeader},
    {'M', Buffer::kHttpMethod},
    {'C', Buffer::kHttpCookie},
    {'S', Buffer::kHttpStatCode},
    {'Y', Buffer::kHttpStatMsg},
    {'V', Buffer::kHttpUserAgent},
    {'W', Buffer::kHttpHost},
    {'Z', Buffer::kHttpRawHost},
}};

struct NamedProtocol {
  std::string_view name;
  Protocol protocol;
};

constexpr std::array kProtocols = {
    NamedProtocol{"ip", Protocol::kIp},
    NamedProtocol{"pkthdr", Protocol::kIp},
    NamedProtocol{"tcp", Protocol::kTcp},
    NamedProtocol{"udp", Protocol::kUdp},
    NamedProtocol{"icmp", Protocol::kIcmp},
    NamedProtocol{"tcp-pkt", Protocol::kTcpPkt},
    NamedProtocol{"tcp-stream", Protocol::kTcpStream},
    NamedProtocol{"http", Protocol::kHttp},
    NamedProtocol{"http2", Protocol::kHttp2},
    NamedProtocol{"ftp", Protocol::kFtp},
    NamedProtocol{"ftp-data", Protocol::kFtpData},
    NamedProtocol{"smtp", Protocol::kSmtp},
    NamedProtocol{"imap", Protocol::kImap},
    NamedProtocol{"pop3", Protocol::kPop3},
    NamedProtocol{"tls", Protocol::kTls},
    NamedProtocol{"ssl", Protocol::kTls},
    NamedProtocol{"ssh", Protocol::kSsh},
    NamedProtocol{"dns", Protocol::kDns},
    NamedProtocol{"smb", Protocol::kSmb},
    NamedProtocol{"dcerpc", Protocol::kDcerpc},
    NamedProtocol{"krb5", Protocol::kKrb5},
    NamedProtocol{"ntp", Protocol::kNtp},
    NamedProtocol{"dhcp", Protocol::kDhcp},
    NamedProtocol{"snmp", Protocol::kSnmp},
    NamedProtocol{"sip", Protocol::kSip},
    NamedProtocol{"rdp", Protocol::kRdp},
    NamedProtocol{"nfs", Protocol::kNfs},
    NamedProtocol{"tftp", Protocol::kTftp},
    NamedProtocol{"ikev2", Protocol::kIkev2},
    NamedProtocol{"modbus", Protocol::kModbus},
    NamedProtocol{"dnp3", Protocol::kDnp3},
    NamedProtocol{"enip", Protocol::kEnip},
    NamedProtocol{"mqtt", Protocol::kMqtt},
    NamedProtocol{"rfb", Protocol::kRfb},
};

// Keywords of the Suricata/Snort language that vigil knows but does not implement: a rule that
// uses one is rejected as "keyword X" rather than "unknown keyword X".
constexpr std::array<std::string_view, 71> kUnsupportedKeywords = {
    "byte_extract",
    "byte_math",
    "flags",
    "flowint",
    "xbits",
    "hostbits",
    "itype",
    "icode",
    "icmp_id",
    "icmp_seq",
    "stream_size",
    "asn1",
    "tag",
    "ssl_state",
    "ssl_version",
    "ip_proto",
    "id",
    "ttl",
    "tos",
    "ipopts",
    "fragbits",
    "fragoffset",
    "seq",
    "ack",
    "window",
    "sameip",
    "lua",
    "luajit",
    "base64_decode",
    "base64_data",
    "app-layer-event",
    "app-layer-protocol",
    "decode-event",
    "stream-event",
    "tls.version",
    "tls.subject",
    "tls.issuerdn",
    "tls.store",
    "tls_cert_notbefore",
    "tls_cert_notafter",
    "tls_cert_expired",
    "tls_cert_valid",
    "filemagic",
    "filemd5",
    "filesha1",
    "filesha256",
    "filesize",
    "filestore",
    "filename",
    "fileext",
    "dns_opcode",
    "target",
    "bsize",
    "startswith",
    "endswith",
    "replace",
    "config",
    "prefilter",
    "ftpbounce",
    "dataset",
    "datarep",
    "iprep",
    "geoip",
    "rpc",
    "icmpv6.mtu",
    "tcp.mss",
    "to_sha256",
    "pcrexform",
    "url_decode",
    "dotprefix",
};

bool ParseInt(std::string_view s, int64_t limit, int64_t* out) {
  s = Trim(s);
  const bool neg = !s.empty() && s.front() == '-';
  if (neg) s.remove_prefix(1);
  uint64_t v = 0;
  if (!ParseUint(s, static_cast<uint64_t>(limit), &v)) return false;
  *out = neg ? -static_cast<int64_t>(v) : static_cast<int64_t>(v);
  return true;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  while (true) {
    const size_t p = s.find(sep);
    out.push_back(Trim(s.substr(0, p)));
    if (p == std::string_view::npos) break;
    s = s.substr(p + 1);
  }
  return out;
}

struct Option {
  std::string_view name;
  std::string_view value;
  bool has_value = false;
};

struct Failure {
  std::string keyword;
  std::string reason;
  RejectKind kind = RejectKind::kInvalid;
};

class Parser {
 public:
  Parser(const ParseContext& context, Rejection* rejection)
      : context_(context), rejection_(rejection) {}

  std::optional<Rule> Run(std::string_view text) {
    rule_.file = context_.file;
    rule_.line = context_.line;
    if (!Parse(text)) {
      rejection_->file = context_.file;
      rejection_->line = context_.line;
      rejection_->sid = seen_sid_;
      rejection_->keyword = std::move(failure_.keyword);
      rejection_->reason = std::move(failure_.reason);
      rejection_->kind = failure_.kind;
      return std::nullopt;
    }
    rule_.text = std::string(text);
    return std::move(rule_);
  }

 private:
  bool Fail(std::string_view keyword, std::string reason, RejectKind kind = RejectKind::kInvalid) {
    failure_.keyword = std::string(keyword.substr(0, 64));
    failure_.reason = std::move(reason);
    failure_.kind = kind;
    return false;
  }

  bool Parse(std::string_view text) {
    if (text.size() > kMaxRuleText) return Fail("rule", "rule longer than 256 KiB");
    text = Trim(text);
    const size_t open = text.find('(');
    if (open == std::string_view::npos) return Fail("rule", "no '(' starting the options");
    if (text.back() != ')') return Fail("rule", "rule does not end with ')'");
    std::vector<Option> options;
    if (!Tokenize(text.substr(open + 1, text.size() - open - 2), &options)) return false;
    // sid and gid first, so that every later rejection can name the rule.
    for (const auto& o : options) {
      if (o.name == "sid") {
        uint64_t v = 0;
        if (ParseUint(o.value, UINT32_MAX, &v) && v > 0) seen_sid_ = static_cast<uint32_t>(v);
      }
    }
    for (char c : text) {
      if (static_cast<unsigned char>(c) < 0x20 && c != '\t') {
        return Fail("rule", "control character in rule text");
      }
    }
    if (!ParseHeader(text.substr(0, open))) return false;
    for (const auto& o : options) {
      if (!ParseOption(o)) return false;
    }
    return Finish();
  }

  // Splits "name:value; name; ..." at unescaped ';' (a backslash escapes the next character, as
  // in Suricata: content:"a\;b" and pcre:"/a\;b/").
  bool Tokenize(std::string_view s, std::vector<Option>* out) {
    size_t i = 0;
    while (true) {
      while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
      if (i >= s.size()) return true;
      const size_t name_start = i;
      while (i < s.size() && s[i] != ':' && s[i] != ';') ++i;
      Option o;
      o.name = Trim(s.substr(name_start, i - name_start));
      if (o.name.empty()) return Fail("options", "empty option name");
      if (i >= s.size()) {
        return Fail(o.name, "option not terminated by ';'");
      }
      if (s[i] == ':') {
        ++i;
        const size_t value_start = i;
        while (i < s.size() && s[i] != ';') {
          if (s[i] == '\\') ++i;
          ++i;
        }
        if (i >= s.size()) return Fail(o.name, "option not terminated by ';'");
        o.value = Trim(s.substr(value_start, i - value_start));
        o.has_value = true;
      }
      ++i;  // the ';'
      if (out->size() >= 4096) return Fail("options", "too many options");
      out->push_back(o);
    }
  }

  bool ParseHeader(std::string_view h) {
    std::vector<std::string_view> tokens;
    int level = 0;
    size_t start = std::string_view::npos;
    for (size_t i = 0; i <= h.size(); ++i) {
      const char c = i < h.size() ? h[i] : ' ';
      if (c == '[') ++level;
      if (c == ']') --level;
      const bool space = (c == ' ' || c == '\t') && level <= 0;
      if (!space && start == std::string_view::npos) start = i;
      if (space && start != std::string_view::npos) {
        tokens.push_back(h.substr(start, i - start));
        start = std::string_view::npos;
      }
    }
    if (level != 0) return Fail("header", "unbalanced '[' in the header");
    if (tokens.size() != 7) {
      return Fail("header", "expected 'action protocol src sport -> dst dport', got " +
                                std::to_string(tokens.size()) + " fields");
    }
    const std::string_view action = tokens[0];
    if (action == "alert") {
      rule_.action = Action::kAlert;
    } else if (action == "drop") {
      rule_.action = Action::kDrop;
    } else if (action == "reject" || action == "rejectsrc" || action == "rejectdst" ||
               action == "rejectboth") {
      rule_.action = Action::kReject;
    } else if (action == "pass") {
      rule_.action = Action::kPass;
    } else {
      return Fail("action", "unknown action '" + std::string(action.substr(0, 32)) + "'");
    }
    const auto proto = std::find_if(kProtocols.begin(), kProtocols.end(),
                                    [&](const NamedProtocol& p) { return p.name == tokens[1]; });
    if (proto == kProtocols.end()) {
      return Fail("protocol", "unknown protocol '" + std::string(tokens[1].substr(0, 32)) + "'");
    }
    rule_.protocol = proto->protocol;
    if (tokens[4] == "->") {
      rule_.bidirectional = false;
    } else if (tokens[4] == "<>") {
      rule_.bidirectional = true;
    } else {
      return Fail("direction", "expected '->' or '<>'");
    }
    std::string error;
    if (!ParseAddressGroup(tokens[2], *context_.vars, &rule_.source, &error) ||
        !ParseAddressGroup(tokens[5], *context_.vars, &rule_.destination, &error)) {
      return Fail("address", error);
    }
    if (!ParsePortGroup(tokens[3], *context_.vars, &rule_.source_ports, &error) ||
        !ParsePortGroup(tokens[6], *context_.vars, &rule_.destination_ports, &error)) {
      return Fail("port", error);
    }
    return true;
  }

  bool ParseOption(const Option& o) {
    const std::string_view n = o.name;
    auto needs_value = [&] {
      if (!o.has_value || o.value.empty()) return Fail(n, "needs a value");
      return true;
    };
    auto no_value = [&] {
      if (o.has_value) return Fail(n, "takes no value");
      return true;
    };
    if (n == "msg") return needs_value() && ParseMsg(o.value);
    if (n == "sid" || n == "gid" || n == "rev") return needs_value() && ParseId(n, o.value);
    if (n == "classtype") {
      if (!needs_value()) return false;
      if (!rule_.classtype.empty()) return Fail(n, "specified twice");
      rule_.classtype = std::string(o.value);
      return true;
    }
    if (n == "priority") {
      uint64_t v = 0;
      if (!needs_value()) return false;
      if (!ParseUint(o.value, 255, &v) || v < 1) return Fail(n, "expected 1..255");
      explicit_priority_ = static_cast<int>(v);
      return true;
    }
    if (n == "reference") {
      if (!needs_value()) return false;
      const size_t comma = o.value.find(',');
      if (comma == std::string_view::npos) return Fail(n, "expected 'system,id'");
      rule_.references.push_back({std::string(Trim(o.value.substr(0, comma))),
                                  std::string(Trim(o.value.substr(comma + 1)))});
      return true;
    }
    if (n == "metadata") {
      if (!needs_value()) return false;
      for (std::string_view item : Split(o.value, ',')) {
        if (item.empty()) continue;
        const size_t sp = item.find(' ');
        rule_.metadata.emplace_back(
            std::string(item.substr(0, sp)),
            sp == std::string_view::npos ? std::string() : std::string(Trim(item.substr(sp + 1))));
      }
      return true;
    }
    if (n == "content" || n == "uricontent") return needs_value() && ParseContent(n, o.value);
    if (n == "nocase" || n == "rawbytes") return no_value() && ParseFlagModifier(n);
    if (n == "offset" || n == "depth" || n == "distance" || n == "within") {
      return needs_value() && ParseNumericModifier(n, o.value);
    }
    if (n == "fast_pattern") return ParseFastPattern(o);
    if (auto b = ContentModifierBuffer(n)) return no_value() && ApplyModifier(n, *b);
    if (auto b = StickyBuffer(n)) {
      if (!no_value()) return false;
      sticky_ = *b;
      sticky_set_ = true;
      return true;
    }
    if (n == "pcre") return needs_value() && ParsePcre(o.value);
    if (n == "flow") return needs_value() && ParseFlow(o.value);
    if (n == "flowbits") return needs_value() && ParseFlowbits(o.value);
    if (n == "noalert") {
      if (!no_value()) return false;
      rule_.noalert = true;
      return true;
    }
    if (n == "dsize") return needs_value() && ParseDsize(o.value);
    if (n == "urilen") return needs_value() && ParseUrilen(o.value);
    if (n == "isdataat") return needs_value() && ParseIsDataAt(o.value);
    if (n == "byte_test") return needs_value() && ParseByteTest(o.value);
    if (n == "byte_jump") return needs_value() && ParseByteJump(o.value);
    if (n == "threshold" || n == "detection_filter") {
      return needs_value() && ParseThreshold(n, o.value);
    }
    if (n == "tls.fingerprint") return needs_value() && ParseTlsFingerprint(o.value);
    if (n == "krb5.ticket_encryption") return needs_value() && ParseKrb5Encryption(n, o.value);
    if (n == "krb5_msg_type" || n == "krb5.msg_type") {
      return needs_value() &&
             ParseOnce(n, o.value, 255, &rule_.krb5_msg_type, "expected a message type (0..255)");
    }
    if (n == "krb5_err_code" || n == "krb5.err_code") {
      return needs_value() &&
             ParseOnce(n, o.value, INT32_MAX, &rule_.krb5_err_code, "expected an error code");
    }
    if (n == "dcerpc.iface" || n == "dce_iface") return needs_value() && ParseIface(n, o.value);
    if (n == "dcerpc.opnum" || n == "dce_opnum") return needs_value() && ParseOpnum(n, o.value);
    if (std::find(kUnsupportedKeywords.begin(), kUnsupportedKeywords.end(), n) !=
        kUnsupportedKeywords.end()) {
      return Fail(n, "not supported", RejectKind::kUnsupported);
    }
    return Fail(n, "unknown keyword", RejectKind::kUnknown);
  }

  bool ParseMsg(std::string_view v) {
    if (v.size() < 2 || v.front() != '"' || v.back() != '"') {
      return Fail("msg", "expected a quoted string");
    }
    v = v.substr(1, v.size() - 2);
    std::string out;
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i] == '\\' && i + 1 < v.size()) {
        out.push_back(v[++i]);
      } else if (v[i] == '"') {
        return Fail("msg", "unescaped '\"' inside the string");
      } else {
        out.push_back(v[i]);
      }
    }
    rule_.msg = std::move(out);
    return true;
  }

  bool ParseId(std::string_view n, std::string_view v) {
    uint64_t x = 0;
    if (!ParseUint(v, UINT32_MAX, &x)) return Fail(n, "expected a number 0..4294967295");
    if (n == "sid") {
      if (x == 0) return Fail(n, "sid 0 is not allowed");
      if (has_sid_) return Fail(n, "specified twice");
      has_sid_ = true;
      rule_.sid = static_cast<uint32_t>(x);
    } else if (n == "gid") {
      rule_.gid = static_cast<uint32_t>(x);
    } else {
      rule_.rev = static_cast<uint32_t>(x);
    }
    return true;
  }

  // content:[!]"text|41 42|text"; with \" \; \\ (and \:) escapes outside the hex parts.
  bool ParseContent(std::string_view n, std::string_view v) {
    Content c;
    if (!v.empty() && v.front() == '!') {
      c.negated = true;
      v = Trim(v.substr(1));
    }
    if (v.size() < 2 || v.front() != '"' || v.back() != '"') {
      return Fail(n, "expected a quoted string");
    }
    v = v.substr(1, v.size() - 2);
    bool hex = false;
    int pending = -1;
    for (size_t i = 0; i < v.size(); ++i) {
      const char ch = v[i];
      if (ch == '|') {
        if (hex && pending >= 0) return Fail(n, "odd number of hex digits");
        hex = !hex;
        continue;
      }
      if (hex) {
        if (ch == ' ' || ch == '\t') continue;
        const int d = HexDigitValue(ch);
        if (d < 0) return Fail(n, std::string("bad hex digit '") + ch + "'");
        if (pending < 0) {
          pending = d;
        } else {
          c.bytes.push_back(static_cast<char>(pending * 16 + d));
          pending = -1;
        }
        continue;
      }
      if (ch == '\\') {
        if (i + 1 >= v.size()) return Fail(n, "trailing '\\'");
        const char e = v[++i];
        if (e != '"' && e != ';' && e != '\\' && e != ':') {
          return Fail(n, std::string("bad escape '\\") + e + "'");
        }
        c.bytes.push_back(e);
        continue;
      }
      if (ch == '"') return Fail(n, "unescaped '\"' inside the string");
      if (ch == ';') return Fail(n, "unescaped ';' inside the string");
      c.bytes.push_back(ch);
    }
    if (hex) return Fail(n, "unterminated '|' hex part");
    if (c.bytes.empty()) return Fail(n, "empty content");
    if (c.bytes.size() > kMaxContentBytes) return Fail(n, "content longer than 65535 bytes");
    c.buffer = sticky_;
    if (n == "uricontent") {
      if (sticky_ != Buffer::kPacket && sticky_ != Buffer::kHttpUri) {
        return Fail(n, std::string("conflicts with sticky buffer ") + BufferName(sticky_));
      }
      c.buffer = Buffer::kHttpUri;
    }
    rule_.matches.emplace_back(std::move(c));
    explicit_buffer_.push_back(sticky_set_ || n == "uricontent");
    from_sticky_.push_back(sticky_set_);
    last_content_ = rule_.matches.size() - 1;
    return true;
  }

  Content* LastContent(std::string_view n) {
    if (!last_content_) {
      Fail(n, "no preceding content");
      return nullptr;
    }
    return &std::get<Content>(rule_.matches[*last_content_]);
  }

  bool ParseFlagModifier(std::string_view n) {
    Content* c = LastContent(n);
    if (c == nullptr) return false;
    bool& flag = n == "nocase" ? c->nocase : c->rawbytes;
    if (flag) return Fail(n, "specified twice for one content");
    flag = true;
    return true;
  }

  bool ParseNumericModifier(std::string_view n, std::string_view v) {
    Content* c = LastContent(n);
    if (c == nullptr) return false;
    if (!v.empty() && (std::isalpha(static_cast<unsigned char>(v.front())) != 0 || v[0] == '_')) {
      return Fail(n, "byte_extract variables are not supported", RejectKind::kUnsupported);
    }
    if (n == "distance") {
      int64_t x = 0;
      if (!ParseInt(v, 65535, &x)) return Fail(n, "expected -65535..65535");
      if (c->distance) return Fail(n, "specified twice for one content");
      c->distance = static_cast<int32_t>(x);
    } else {
      uint64_t x = 0;
      if (!ParseUint(v, 65535, &x)) return Fail(n, "expected 0..65535");
      std::optional<uint32_t>& slot =
          n == "offset" ? c->offset : (n == "depth" ? c->depth : c->within);
      if (slot) return Fail(n, "specified twice for one content");
      if ((n == "depth" || n == "within") && x == 0) return Fail(n, "must be at least 1");
      slot = static_cast<uint32_t>(x);
    }
    if ((c->offset || c->depth) && c->relative()) {
      return Fail(n,
                  "conflicting modifiers: offset/depth (absolute) with distance/within "
                  "(relative) on one content");
    }
    return true;
  }

  bool ParseFastPattern(const Option& o) {
    const std::string_view n = o.name;
    Content* c = LastContent(n);
    if (c == nullptr) return false;
    if (has_fast_pattern_) return Fail(n, "only one content per rule can be the fast_pattern");
    has_fast_pattern_ = true;
    c->fast_pattern = true;
    if (!o.has_value) return true;
    if (o.value == "only") {
      c->fast_pattern_only = true;
      return true;
    }
    const size_t comma = o.value.find(',');
    uint64_t off = 0;
    uint64_t len = 0;
    if (comma == std::string_view::npos || !ParseUint(o.value.substr(0, comma), 65535, &off) ||
        !ParseUint(o.value.substr(comma + 1), 65535, &len) || len == 0) {
      return Fail(n, "expected nothing, 'only' or 'offset,length'");
    }
    c->fast_pattern_chop = std::make_pair(static_cast<uint16_t>(off), static_cast<uint16_t>(len));
    return true;
  }

  bool ApplyModifier(std::string_view n, Buffer b) {
    Content* c = LastContent(n);
    if (c == nullptr) return false;
    if (explicit_buffer_[*last_content_] && c->buffer != b) {
      return Fail(n,
                  std::string("conflicting buffers: content already in ") + BufferName(c->buffer));
    }
    c->buffer = b;
    explicit_buffer_[*last_content_] = true;
    return true;
  }

  bool ParsePcre(std::string_view v) {
    constexpr std::string_view n = "pcre";
    Pcre p;
    if (v.empty()) return Fail(n, "needs a value");
    // Both pcre:"!/re/" and pcre:!"/re/" are negations.
    if (v.front() == '!') {
      p.negated = true;
      v = Trim(v.substr(1));
    }
    if (v.size() < 2 || v.front() != '"' || v.back() != '"') {
      return Fail(n, "expected a quoted \"/regex/flags\"");
    }
    v = v.substr(1, v.size() - 2);
    if (!v.empty() && v.front() == '!') {
      if (p.negated) return Fail(n, "negated twice");
      p.negated = true;
      v.remove_prefix(1);
    }
    const size_t last = v.rfind('/');
    if (v.empty() || v.front() != '/' || last == 0 || last == std::string_view::npos) {
      return Fail(n, "expected /regex/flags");
    }
    p.source = std::string(v.substr(1, last - 1));
    if (p.source.empty()) return Fail(n, "empty regex");
    bool anchored = false;
    bool extended = false;
    std::optional<Buffer> flag_buffer;
    for (char f : v.substr(last + 1)) {
      switch (f) {
        case 'i':
          p.hs_flags |= HS_FLAG_CASELESS;
          break;
        case 's':
          p.hs_flags |= HS_FLAG_DOTALL;
          break;
        case 'm':
          p.hs_flags |= HS_FLAG_MULTILINE;
          break;
        case 'x':
          extended = true;
          break;
        case 'A':
          anchored = true;
          break;
        case 'R':
          p.relative = true;
          break;
        // G (ungreedy): Hyperscan reports every match end, so greediness is moot. B (rawbytes)
        // and O (override the match limit) have nothing to act on.
        case 'G':
        case 'B':
        case 'O':
          break;
        case 'E':
          return Fail(n, "flag E (dollar matches only at the end) is not supported",
                      RejectKind::kUnsupported);
        default: {
          const auto it =
              std::find_if(kPcreBufferFlags.begin(), kPcreBufferFlags.end(),
                           [f](const std::pair<char, Buffer>& x) { return x.first == f; });
          if (it == kPcreBufferFlags.end()) {
            return Fail(n, std::string("unknown flag '") + f + "'");
          }
          if (flag_buffer && *flag_buffer != it->second) {
            return Fail(n, "conflicting buffer flags");
          }
          flag_buffer = it->second;
        }
      }
    }
    p.buffer = sticky_;
    if (flag_buffer) {
      if (sticky_ != Buffer::kPacket && sticky_ != *flag_buffer) {
        return Fail(n,
                    std::string("buffer flag conflicts with sticky buffer ") + BufferName(sticky_));
      }
      p.buffer = *flag_buffer;
    }
    // Fold the flags Hyperscan has no bit for into the expression. The newline ends a trailing
    // '#' comment that the x flag allows.
    p.expression = p.source;
    if (extended) p.expression = "(?x:" + p.expression + "\n)";
    if (anchored) p.expression = "\\A(?:" + p.expression + ")";
    hs_expr_info_t* info = nullptr;
    hs_compile_error_t* error = nullptr;
    if (hs_expression_info(p.expression.c_str(), p.hs_flags, &info, &error) != HS_SUCCESS) {
      std::string why = error != nullptr && error->message != nullptr ? error->message : "error";
      hs_free_compile_error(error);
      return Fail(n, "Hyperscan cannot compile it: " + why, RejectKind::kHyperscan);
    }
    // An expression that can match the empty string needs the flag to compile.
    if (info->min_width == 0) p.hs_flags |= HS_FLAG_ALLOWEMPTY;
    std::free(info);  // NOLINT: allocated by Hyperscan's default (malloc) allocator
    rule_.matches.emplace_back(std::move(p));
    explicit_buffer_.push_back(true);
    from_sticky_.push_back(sticky_set_ && !flag_buffer);
    return true;
  }

  bool ParseFlow(std::string_view v) {
    constexpr std::string_view n = "flow";
    if (flow_seen_) return Fail(n, "specified twice");
    flow_seen_ = true;
    Flow& f = rule_.flow;
    for (std::string_view item : Split(v, ',')) {
      auto set_dir = [&](FlowDirection d) {
        if (f.direction != FlowDirection::kAny && f.direction != d) {
          return Fail(n, "conflicting directions");
        }
        f.direction = d;
        return true;
      };
      auto set_state = [&](FlowState s) {
        if (f.state != FlowState::kAny && f.state != s) return Fail(n, "conflicting states");
        f.state = s;
        return true;
      };
      auto set_stream = [&](FlowStream s) {
        if (f.stream != FlowStream::kAny && f.stream != s) {
          return Fail(n, "conflicting stream options");
        }
        f.stream = s;
        return true;
      };
      bool ok = false;
      if (item == "to_server" || item == "from_client") {
        ok = set_dir(FlowDirection::kToServer);
      } else if (item == "to_client" || item == "from_server") {
        ok = set_dir(FlowDirection::kToClient);
      } else if (item == "established") {
        ok = set_state(FlowState::kEstablished);
      } else if (item == "not_established") {
        ok = set_state(FlowState::kNotEstablished);
      } else if (item == "stateless") {
        ok = set_state(FlowState::kStateless);
      } else if (item == "only_stream") {
        ok = set_stream(FlowStream::kOnlyStream);
      } else if (item == "no_stream") {
        ok = set_stream(FlowStream::kNoStream);
      } else if (item == "only_frag" || item == "no_frag") {
        return Fail(n, "option '" + std::string(item) + "' is not supported",
                    RejectKind::kUnsupported);
      } else {
        return Fail(n, "unknown option '" + std::string(item.substr(0, 32)) + "'");
      }
      if (!ok) return false;
    }
    return true;
  }

  bool ParseFlowbits(std::string_view v) {
    constexpr std::string_view n = "flowbits";
    if (v == "noalert") {
      rule_.noalert = true;
      return true;
    }
    const size_t comma = v.find(',');
    if (comma == std::string_view::npos) return Fail(n, "expected 'command,name' or 'noalert'");
    const std::string_view cmd = Trim(v.substr(0, comma));
    const std::string_view names = Trim(v.substr(comma + 1));
    Flowbits fb;
    if (cmd == "set") {
      fb.command = FlowbitsCommand::kSet;
    } else if (cmd == "isset") {
      fb.command = FlowbitsCommand::kIsSet;
    } else if (cmd == "isnotset") {
      fb.command = FlowbitsCommand::kIsNotSet;
    } else if (cmd == "unset") {
      fb.command = FlowbitsCommand::kUnset;
    } else if (cmd == "toggle") {
      fb.command = FlowbitsCommand::kToggle;
    } else {
      return Fail(n, "unknown command '" + std::string(cmd.substr(0, 32)) + "'");
    }
    const bool has_and = names.find('&') != std::string_view::npos;
    const bool has_or = names.find('|') != std::string_view::npos;
    if (has_and && has_or) return Fail(n, "cannot mix '&' and '|'");
    if (has_or && fb.command != FlowbitsCommand::kIsSet &&
        fb.command != FlowbitsCommand::kIsNotSet) {
      return Fail(n, "'|' is only allowed with isset and isnotset");
    }
    fb.any_of = has_or;
    for (std::string_view name : Split(names, has_or ? '|' : '&')) {
      if (name.empty() || name.size() > 256) return Fail(n, "empty or overlong flowbit name");
      for (char ch : name) {
        if (std::isalnum(static_cast<unsigned char>(ch)) == 0 && ch != '_' && ch != '.' &&
            ch != '-') {
          return Fail(n, "bad character in flowbit name");
        }
      }
      fb.names.emplace_back(name);
    }
    rule_.flowbits.push_back(std::move(fb));
    return true;
  }

  bool ParseDsize(std::string_view v) {
    constexpr std::string_view n = "dsize";
    if (rule_.dsize) return Fail(n, "specified twice");
    return ParseSize(n, v, &rule_.dsize);
  }

  // urilen:N|<N|>N|N<>M[,raw|norm]
  bool ParseUrilen(std::string_view v) {
    constexpr std::string_view n = "urilen";
    if (rule_.urilen) return Fail(n, "specified twice");
    std::vector<std::string_view> parts = Split(v, ',');
    if (parts.size() > 2) return Fail(n, "expected N, <N, >N or N<>M, then optionally raw or norm");
    if (parts.size() == 2) {
      if (parts[1] != "raw" && parts[1] != "norm") return Fail(n, "expected raw or norm");
      rule_.urilen_raw = parts[1] == "raw";
    }
    return ParseSize(n, parts[0], &rule_.urilen);
  }

  // tls.fingerprint:"aa:bb:...": the server certificate's SHA-1 fingerprint equals the string,
  // case-insensitively (Suricata's legacy keyword). Kept as what it means on the
  // tls.cert_fingerprint buffer: the string, nocase, at its start (depth = its length), and no
  // byte after it (isdataat:!1,relative). The negated form is not supported.
  bool ParseTlsFingerprint(std::string_view v) {
    constexpr std::string_view n = "tls.fingerprint";
    v = Trim(v);
    if (!v.empty() && v.front() == '!') {
      return Fail(n, "negation not supported", RejectKind::kUnsupported);
    }
    if (v.size() < 3 || v.front() != '"' || v.back() != '"') {
      return Fail(n, "expected a quoted fingerprint (hex pairs separated by ':')");
    }
    const std::string_view fp = v.substr(1, v.size() - 2);
    for (size_t i = 0; i < fp.size(); ++i) {
      const bool colon = i % 3 == 2;
      if (colon ? fp[i] != ':' : HexDigitValue(fp[i]) < 0) {
        return Fail(n, "expected hex pairs separated by ':'");
      }
    }
    if (fp.size() % 3 != 2) return Fail(n, "expected hex pairs separated by ':'");
    Content c;
    c.bytes = std::string(fp);
    c.nocase = true;
    c.buffer = Buffer::kTlsCertFingerprint;
    c.depth = static_cast<uint32_t>(fp.size());
    AddCheck(std::move(c));
    IsDataAt end;
    end.size = 1;
    end.relative = true;
    end.negated = true;
    end.buffer = Buffer::kTlsCertFingerprint;
    AddCheck(end);
    return true;
  }

  // The buffer a byte check applies to: with `relative`, that of the match before it (so that it
  // follows a content moved by a legacy modifier); else the sticky buffer.
  Buffer CheckBuffer(bool relative) const {
    if (relative && !rule_.matches.empty()) {
      return std::visit([](const auto& x) { return x.buffer; }, rule_.matches.back());
    }
    return sticky_;
  }
  void AddCheck(Match m) {
    rule_.matches.push_back(std::move(m));
    explicit_buffer_.push_back(true);
    from_sticky_.push_back(sticky_set_);
  }

  // isdataat:[!]N[,relative][,rawbytes]
  bool ParseIsDataAt(std::string_view v) {
    constexpr std::string_view n = "isdataat";
    IsDataAt d;
    const std::vector<std::string_view> parts = Split(v, ',');
    std::string_view num = parts[0];
    if (!num.empty() && num.front() == '!') {
      d.negated = true;
      num = Trim(num.substr(1));
    }
    if (IsVariableName(num)) {
      return Fail(n, "byte_extract variables are not supported", RejectKind::kUnsupported);
    }
    uint64_t x = 0;
    if (!ParseUint(num, 65535, &x)) return Fail(n, "expected [!]N with N 0..65535");
    d.size = static_cast<uint32_t>(x);
    for (size_t i = 1; i < parts.size(); ++i) {
      if (parts[i] == "relative") {
        d.relative = true;
      } else if (parts[i] != "rawbytes") {
        return Fail(n, "unknown option '" + std::string(parts[i]) + "'");
      }
    }
    d.buffer = CheckBuffer(d.relative);
    AddCheck(d);
    return true;
  }

  static bool IsVariableName(std::string_view v) {
    return !v.empty() && (std::isalpha(static_cast<unsigned char>(v.front())) != 0 || v[0] == '_');
  }

  // The options byte_test and byte_jump share; false (after Fail) on a bad one, *known = false
  // when `opt` is not one of them.
  bool ParseReadOption(std::string_view n, std::string_view opt, ByteRead* r, bool* known,
                       bool* string_seen) {
    *known = true;
    if (opt == "relative") {
      r->relative = true;
    } else if (opt == "big") {
      r->little_endian = false;
    } else if (opt == "little" || opt == "dce") {
      r->little_endian = true;
    } else if (opt == "string") {
      *string_seen = true;
      if (r->base == NumberBase::kBinary) r->base = NumberBase::kDecimal;
    } else if (opt == "hex" || opt == "dec" || opt == "oct") {
      r->base = opt == "hex" ? NumberBase::kHex
                             : (opt == "dec" ? NumberBase::kDecimal : NumberBase::kOctal);
    } else if (opt.starts_with("bitmask")) {
      std::string_view m = Trim(opt.substr(7));
      uint64_t x = 0;
      const bool hex = m.starts_with("0x") || m.starts_with("0X");
      if (hex) m.remove_prefix(2);
      bool ok = !m.empty();
      for (const char c : m) {
        const int d = hex ? HexDigitValue(c) : (c >= '0' && c <= '9' ? c - '0' : -1);
        ok = ok && d >= 0 && x <= (UINT64_MAX >> 4);
        x = x * (hex ? 16 : 10) + static_cast<uint64_t>(d < 0 ? 0 : d);
      }
      if (!ok || x == 0 || x > 0xffffffffull) return Fail(n, "bad bitmask");
      r->bitmask = x;
    } else {
      *known = false;
    }
    return true;
  }

  bool CheckRead(std::string_view n, const ByteRead& r, bool string_seen) {
    if (!string_seen && r.base != NumberBase::kBinary) {
      return Fail(n, "hex, dec or oct needs 'string'");
    }
    if (r.base == NumberBase::kBinary && (r.nbytes < 1 || r.nbytes > 8)) {
      return Fail(n, "a binary number is 1 to 8 bytes");
    }
    if (r.base != NumberBase::kBinary && (r.nbytes < 1 || r.nbytes > 20)) {
      return Fail(n, "a string number is 1 to 20 bytes");
    }
    return true;
  }

  // Number of bytes and offset, the first and `offset_at`-th items of byte_test / byte_jump.
  bool ParseCountAndOffset(std::string_view n, std::string_view count, std::string_view offset,
                           ByteRead* r) {
    if (IsVariableName(count) || IsVariableName(offset)) {
      return Fail(n, "byte_extract variables are not supported", RejectKind::kUnsupported);
    }
    uint64_t c = 0;
    int64_t off = 0;
    if (count == "0") {
      return Fail(n, "a byte count of 0 (a string up to the first non-digit) is not supported",
                  RejectKind::kUnsupported);
    }
    if (!ParseUint(count, 20, &c) || c == 0) return Fail(n, "expected a byte count 1..20");
    if (!ParseInt(offset, 65535, &off)) return Fail(n, "expected an offset -65535..65535");
    r->nbytes = static_cast<uint8_t>(c);
    r->offset = static_cast<int32_t>(off);
    return true;
  }

  // byte_test:N,[!]op,value,offset[,relative][,big|little][,string,hex|dec|oct][,dce]
  //   [,bitmask M]
  bool ParseByteTest(std::string_view v) {
    constexpr std::string_view n = "byte_test";
    const std::vector<std::string_view> parts = Split(v, ',');
    if (parts.size() < 4) return Fail(n, "expected 'bytes, operator, value, offset[, ...]'");
    ByteTest t;
    if (!ParseCountAndOffset(n, parts[0], parts[3], &t.read)) return false;
    std::string_view op = parts[1];
    if (!op.empty() && op.front() == '!') {
      t.negated = true;
      op = Trim(op.substr(1));
    }
    if (op == "<") {
      t.op = ByteOp::kLt;
    } else if (op == ">") {
      t.op = ByteOp::kGt;
    } else if (op == "=" || (t.negated && op.empty())) {
      t.op = ByteOp::kEq;  // "!" alone is "not equal"
    } else if (op == "<=") {
      t.op = ByteOp::kLe;
    } else if (op == ">=") {
      t.op = ByteOp::kGe;
    } else if (op == "&") {
      t.op = ByteOp::kAnd;
    } else if (op == "^") {
      t.op = ByteOp::kXor;
    } else {
      return Fail(n, "unknown operator '" + std::string(parts[1]) + "'");
    }
    std::string_view value = parts[2];
    if (IsVariableName(value)) {
      return Fail(n, "byte_extract variables are not supported", RejectKind::kUnsupported);
    }
    const bool hex = value.starts_with("0x") || value.starts_with("0X");
    if (hex) {
      uint64_t x = 0;
      value.remove_prefix(2);
      bool ok = !value.empty() && value.size() <= 16;
      for (const char c : value) {
        ok = ok && HexDigitValue(c) >= 0;
        x = x << 4 | static_cast<uint64_t>(HexDigitValue(c) < 0 ? 0 : HexDigitValue(c));
      }
      if (!ok) return Fail(n, "bad value");
      t.value = x;
    } else if (!ParseUint(value, UINT64_MAX, &t.value)) {
      return Fail(n, "bad value");
    }
    bool string_seen = false;
    for (size_t i = 4; i < parts.size(); ++i) {
      bool known = false;
      if (!ParseReadOption(n, parts[i], &t.read, &known, &string_seen)) return false;
      if (!known) return Fail(n, "unknown option '" + std::string(parts[i]) + "'");
    }
    if (!CheckRead(n, t.read, string_seen)) return false;
    t.buffer = CheckBuffer(t.read.relative);
    AddCheck(t);
    return true;
  }

  // byte_jump:N,offset[,relative][,multiplier M][,big|little][,string,hex|dec|oct][,align]
  //   [,from_beginning|from_end][,post_offset P][,dce][,bitmask M]
  bool ParseByteJump(std::string_view v) {
    constexpr std::string_view n = "byte_jump";
    const std::vector<std::string_view> parts = Split(v, ',');
    if (parts.size() < 2) return Fail(n, "expected 'bytes, offset[, ...]'");
    ByteJump j;
    if (!ParseCountAndOffset(n, parts[0], parts[1], &j.read)) return false;
    bool string_seen = false;
    for (size_t i = 2; i < parts.size(); ++i) {
      const std::string_view opt = parts[i];
      bool known = false;
      if (!ParseReadOption(n, opt, &j.read, &known, &string_seen)) return false;
      if (known) continue;
      if (opt == "align") {
        j.align = true;
      } else if (opt == "from_beginning") {
        j.from_beginning = true;
      } else if (opt == "from_end") {
        j.from_end = true;
      } else if (opt.starts_with("multiplier")) {
        uint64_t x = 0;
        if (!ParseUint(Trim(opt.substr(10)), 65535, &x) || x == 0) {
          return Fail(n, "expected multiplier 1..65535");
        }
        j.multiplier = static_cast<uint32_t>(x);
      } else if (opt.starts_with("post_offset")) {
        int64_t x = 0;
        if (!ParseInt(opt.substr(11), 65535, &x)) {
          return Fail(n, "expected post_offset -65535..65535");
        }
        j.post_offset = static_cast<int32_t>(x);
      } else {
        return Fail(n, "unknown option '" + std::string(opt) + "'");
      }
    }
    if (j.from_beginning && j.from_end) return Fail(n, "from_beginning with from_end");
    if (!CheckRead(n, j.read, string_seen)) return false;
    j.buffer = CheckBuffer(j.read.relative);
    AddCheck(j);
    return true;
  }

  bool ParseSize(std::string_view n, std::string_view v, std::optional<Dsize>* out) {
    Dsize d;
    uint64_t a = 0;
    uint64_t b = 0;
    if (const size_t r = v.find("<>"); r != std::string_view::npos) {
      if (!ParseUint(v.substr(0, r), 65535, &a) || !ParseUint(v.substr(r + 2), 65535, &b) ||
          a >= b) {
        return Fail(n, "expected 'min<>max' with min < max");
      }
      d.op = DsizeOp::kRange;
    } else if (!v.empty() && (v.front() == '<' || v.front() == '>')) {
      d.op = v.front() == '<' ? DsizeOp::kLt : DsizeOp::kGt;
      if (!ParseUint(v.substr(1), 65535, &a)) return Fail(n, "expected a size 0..65535");
      if (d.op == DsizeOp::kLt && a == 0) return Fail(n, "'<0' never matches");
    } else if (!ParseUint(v, 65535, &a)) {
      return Fail(n, "expected N, <N, >N or N<>M");
    }
    d.lo = static_cast<uint32_t>(a);
    d.hi = static_cast<uint32_t>(b);
    *out = d;
    return true;
  }

  bool ParseThreshold(std::string_view n, std::string_view v) {
    const bool is_threshold = n == "threshold";
    if (rule_.threshold || rule_.detection_filter) {
      return Fail(n, "only one threshold or detection_filter per rule");
    }
    std::optional<ThresholdType> type;
    std::optional<Track> track;
    std::optional<uint32_t> count;
    std::optional<uint32_t> seconds;
    for (std::string_view item : Split(v, ',')) {
      const size_t sp = item.find_first_of(" \t");
      if (sp == std::string_view::npos) return Fail(n, "expected 'key value' pairs");
      const std::string_view key = item.substr(0, sp);
      const std::string_view val = Trim(item.substr(sp + 1));
      auto dup = [&] { return Fail(n, "'" + std::string(key) + "' specified twice"); };
      if (key == "type" && is_threshold) {
        if (type) return dup();
        if (val == "limit") {
          type = ThresholdType::kLimit;
        } else if (val == "threshold") {
          type = ThresholdType::kThreshold;
        } else if (val == "both") {
          type = ThresholdType::kBoth;
        } else {
          return Fail(n, "type must be limit, threshold or both");
        }
      } else if (key == "track") {
        if (track) return dup();
        if (val == "by_src") {
          track = Track::kBySrc;
        } else if (val == "by_dst") {
          track = Track::kByDst;
        } else if (val == "by_rule") {
          track = Track::kByRule;
        } else if (val == "by_both" && is_threshold) {
          track = Track::kByBoth;
        } else {
          return Fail(n, "bad track '" + std::string(val.substr(0, 32)) + "'");
        }
      } else if (key == "count" || key == "seconds") {
        std::optional<uint32_t>& slot = key == "count" ? count : seconds;
        uint64_t x = 0;
        if (slot) return dup();
        if (!ParseUint(val, UINT32_MAX, &x) || x == 0) {
          return Fail(n, std::string(key) + " must be a positive number");
        }
        slot = static_cast<uint32_t>(x);
      } else {
        return Fail(n, "unknown key '" + std::string(key.substr(0, 32)) + "'");
      }
    }
    if ((is_threshold && !type) || !track || !count || !seconds) {
      return Fail(n, is_threshold ? "needs type, track, count and seconds"
                                  : "needs track, count and seconds");
    }
    if (is_threshold) {
      rule_.threshold = Threshold{*type, *track, *count, *seconds};
    } else {
      rule_.detection_filter = DetectionFilter{*track, *count, *seconds};
    }
    return true;
  }

  bool ParseIface(std::string_view n, std::string_view v) {
    if (rule_.dcerpc_iface) return Fail(n, "specified twice");
    const std::vector<std::string_view> parts = Split(v, ',');
    DcerpcIface iface;
    const std::string_view uuid = parts[0];
    bool ok = uuid.size() == 36;
    for (size_t i = 0; ok && i < uuid.size(); ++i) {
      ok = (i == 8 || i == 13 || i == 18 || i == 23) ? uuid[i] == '-' : HexDigitValue(uuid[i]) >= 0;
    }
    if (!ok) return Fail(n, "expected a UUID 12345678-1234-1234-1234-123456789abc");
    for (char ch : uuid) {
      iface.uuid.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(ch))));
    }
    for (size_t i = 1; i < parts.size(); ++i) {
      const std::string_view p = parts[i];
      if (p == "any_frag") {
        iface.any_frag = true;
        continue;
      }
      uint64_t ver = 0;
      if (p.empty() || iface.op != DcerpcIface::VersionOp::kNone ||
          !ParseUint(p.substr(1), 65535, &ver)) {
        return Fail(n, "expected '<N', '>N', '=N', '!N' or any_frag after the UUID");
      }
      switch (p[0]) {
        case '<':
          iface.op = DcerpcIface::VersionOp::kLt;
          break;
        case '>':
          iface.op = DcerpcIface::VersionOp::kGt;
          break;
        case '=':
          iface.op = DcerpcIface::VersionOp::kEq;
          break;
        case '!':
          iface.op = DcerpcIface::VersionOp::kNe;
          break;
        default:
          return Fail(n, "bad version operator");
      }
      iface.version = static_cast<uint16_t>(ver);
    }
    rule_.dcerpc_iface = std::move(iface);
    return true;
  }

  // A keyword with one unsigned value no larger than `max`, allowed once per rule.
  template <class T>
  bool ParseOnce(std::string_view n, std::string_view v, uint64_t max, std::optional<T>* out,
                 std::string_view expected) {
    uint64_t x = 0;
    if (out->has_value()) return Fail(n, "specified twice");
    if (!ParseUint(v, max, &x)) return Fail(n, std::string(expected));
    *out = static_cast<T>(x);
    return true;
  }

  // krb5.ticket_encryption: [!]weak, or a list (commas or spaces) of etype numbers and names.
  bool ParseKrb5Encryption(std::string_view n, std::string_view v) {
    if (rule_.krb5_ticket_encryption) return Fail(n, "specified twice");
    Krb5TicketEncryption e;
    v = Trim(v);
    if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = Trim(v.substr(1, v.size() - 2));
    if (v == "weak" || v == "!weak") {
      e.weak = true;
      e.negated = v.front() == '!';
      rule_.krb5_ticket_encryption = std::move(e);
      return true;
    }
    for (std::string_view item : Split(v, ',')) {
      for (std::string_view word : Split(item, ' ')) {
        word = Trim(word);
        if (word.empty()) continue;
        uint64_t num = 0;
        const bool minus = word.front() == '-';
        if (ParseUint(minus ? word.substr(1) : word, INT32_MAX, &num)) {
          e.etypes.push_back(minus ? -static_cast<int32_t>(num) : static_cast<int32_t>(num));
        } else if (auto etype = Krb5EtypeByName(word)) {
          e.etypes.push_back(*etype);
        } else {
          return Fail(n,
                      "expected weak, !weak or encryption types (numbers or names such as "
                      "rc4-hmac), not '" +
                          std::string(word) + "'");
        }
      }
    }
    if (e.etypes.empty()) return Fail(n, "expected weak, !weak or encryption types");
    rule_.krb5_ticket_encryption = std::move(e);
    return true;
  }

  bool ParseOpnum(std::string_view n, std::string_view v) {
    if (!rule_.dcerpc_opnums.empty()) return Fail(n, "specified twice");
    for (std::string_view item : Split(v, ',')) {
      const size_t dash = item.find('-');
      uint64_t lo = 0;
      uint64_t hi = 0;
      if (dash == std::string_view::npos) {
        if (!ParseUint(item, 65535, &lo)) return Fail(n, "expected N or N-M items");
        hi = lo;
      } else if (!ParseUint(item.substr(0, dash), 65535, &lo) ||
                 !ParseUint(item.substr(dash + 1), 65535, &hi) || lo > hi) {
        return Fail(n, "expected N or N-M items");
      }
      rule_.dcerpc_opnums.emplace_back(static_cast<uint16_t>(lo), static_cast<uint16_t>(hi));
    }
    return true;
  }

  // The checks that need the whole rule: the buffer of a content is only final after its legacy
  // modifier, so relative chains are checked here.
  bool Finish() {
    if (!has_sid_) return Fail("sid", "missing sid");
    for (size_t i = 0; i < rule_.matches.size(); ++i) {
      const Match& m = rule_.matches[i];
      const Buffer buffer = std::visit([](const auto& x) { return x.buffer; }, m);
      bool has_previous = false;
      for (size_t j = 0; j < i && !has_previous; ++j) {
        has_previous =
            std::visit([](const auto& x) { return x.buffer; }, rule_.matches[j]) == buffer;
      }
      // With no earlier match in its buffer, a relative content starts at the buffer's start (as
      // in Suricata); so does a relative pcre in a sticky buffer, but elsewhere it is an error.
      if (const Pcre* p = std::get_if<Pcre>(&m)) {
        if (p->relative && !has_previous && !from_sticky_[i]) {
          return Fail("pcre",
                      std::string("relative (R) with no preceding match in ") + BufferName(buffer));
        }
        continue;
      }
      const Content* cp = std::get_if<Content>(&m);
      if (cp == nullptr) continue;  // isdataat, byte_test, byte_jump: checked when parsed
      const Content& c = *cp;
      const size_t len = c.bytes.size();
      if (c.depth && *c.depth < len) {
        return Fail("depth", "depth " + std::to_string(*c.depth) + " is smaller than the " +
                                 std::to_string(len) + "-byte content");
      }
      if (c.within && *c.within < len) {
        return Fail("within", "within " + std::to_string(*c.within) + " is smaller than the " +
                                  std::to_string(len) + "-byte content");
      }
      if (c.fast_pattern_only && (c.negated || c.relative() || c.offset || c.depth)) {
        return Fail("fast_pattern",
                    "fast_pattern:only cannot be used on a negated content or with "
                    "offset/depth/distance/within");
      }
      if (c.fast_pattern_chop &&
          size_t{c.fast_pattern_chop->first} + c.fast_pattern_chop->second > len) {
        return Fail("fast_pattern", "offset,length beyond the content");
      }
    }
    if (!rule_.classtype.empty() && context_.classification != nullptr) {
      const ClassType* ct = context_.classification->Find(rule_.classtype);
      if (ct == nullptr) return Fail("classtype", "unknown classtype '" + rule_.classtype + "'");
      rule_.category = ct->description;
      rule_.priority = ct->priority;
    }
    if (explicit_priority_) rule_.priority = *explicit_priority_;
    return true;
  }

  const ParseContext& context_;
  Rejection* rejection_;
  Rule rule_;
  Failure failure_;
  std::optional<uint32_t> seen_sid_;
  bool has_sid_ = false;
  bool has_fast_pattern_ = false;
  bool flow_seen_ = false;
  std::optional<int> explicit_priority_;
  Buffer sticky_ = Buffer::kPacket;
  std::optional<size_t> last_content_;
  bool sticky_set_ = false;            // a sticky keyword (pkt_data included) was seen
  std::vector<bool> explicit_buffer_;  // per match: buffer chosen by a sticky keyword or modifier
  std::vector<bool> from_sticky_;      // per match: buffer chosen by a sticky keyword
};

}  // namespace

std::optional<Buffer> StickyBuffer(std::string_view keyword) {
  for (const auto& b : kStickyBuffers) {
    if (b.name == keyword) return b.buffer;
  }
  return std::nullopt;
}

std::optional<Buffer> ContentModifierBuffer(std::string_view keyword) {
  for (const auto& b : kContentModifiers) {
    if (b.name == keyword) return b.buffer;
  }
  return std::nullopt;
}

std::string Rejection::Category() const {
  switch (kind) {
    case RejectKind::kUnsupported:
      return "keyword " + keyword;
    case RejectKind::kUnknown:
      return "unknown keyword " + keyword;
    case RejectKind::kHyperscan:
      return "pcre rejected by Hyperscan";
    case RejectKind::kDuplicate:
      return "duplicate sid";
    case RejectKind::kInvalid:
      break;
  }
  return "invalid " + keyword;
}

std::string Rejection::ToString() const {
  std::string s = file + ":" + std::to_string(line) + ": ";
  if (sid) s += "sid " + std::to_string(*sid) + ": ";
  return s + keyword + ": " + reason;
}

std::optional<Rule> ParseRule(std::string_view text, const ParseContext& context,
                              Rejection* rejection) noexcept {
  try {
    if (context.vars == nullptr) {
      *rejection = Rejection{context.file, context.line, std::nullopt, "rule", "no variables"};
      return std::nullopt;
    }
    Parser parser(context, rejection);
    return parser.Run(text);
  } catch (const std::exception& e) {
    // Only allocation failure can get here; the rule is rejected, the load goes on.
    rejection->file = context.file;
    rejection->line = context.line;
    rejection->keyword = "rule";
    rejection->reason = std::string("internal error: ") + e.what();
    rejection->kind = RejectKind::kInvalid;
    return std::nullopt;
  }
}

}  // namespace vigil::rules
