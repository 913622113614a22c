// The data model of one parsed Suricata/Snort signature: the header resolved to address and port
// sets, and the options with fixed semantics, ready for the Hyperscan compiler and the verifier.
// Plain values: built by the parser on the loading thread, read-only afterwards (any thread).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "rules/lang/address.h"

namespace vigil::rules {

enum class Action : uint8_t { kAlert, kDrop, kReject, kPass };

// Packet protocols first, then the application-layer protocols Suricata names in rule headers.
enum class Protocol : uint8_t {
  kIp,
  kTcp,
  kUdp,
  kIcmp,
  kTcpPkt,
  kTcpStream,
  kHttp,
  kHttp2,
  kFtp,
  kFtpData,
  kSmtp,
  kImap,
  kPop3,
  kTls,
  kSsh,
  kDns,
  kSmb,
  kDcerpc,
  kKrb5,
  kNtp,
  kDhcp,
  kSnmp,
  kSip,
  kRdp,
  kNfs,
  kTftp,
  kIkev2,
  kModbus,
  kDnp3,
  kEnip,
  kMqtt,
  kRfb,
};

// Where a content or pcre looks. Legacy content modifiers (http_uri), pcre buffer flags (/U),
// old sticky keywords (dns_query) and dotted sticky buffers (http.uri) all map here. Some are
// parsed but not matched yet: later stages decide (see docs/rules.md).
enum class Buffer : uint8_t {
  kPacket,    // the packet payload or reassembled stream (no sticky buffer, pkt_data)
  kFileData,  // file_data, file.data, http_server_body, http.response_body: the HTTP response body
  kHttpUri,
  kHttpRawUri,
  kHttpMethod,
  kHttpProtocol,
  kHttpRequestLine,
  kHttpResponseLine,
  kHttpStart,
  kHttpHeader,
  kHttpRawHeader,
  kHttpHeaderNames,
  kHttpHost,
  kHttpRawHost,
  kHttpUserAgent,
  kHttpCookie,
  kHttpAccept,
  kHttpAcceptEnc,
  kHttpAcceptLang,
  kHttpConnection,
  kHttpContentType,
  kHttpContentLen,
  kHttpReferer,
  kHttpServer,
  kHttpLocation,
  kHttpRequestBody,
  kHttpStatCode,
  kHttpStatMsg,
  kDnsQuery,
  kTlsSni,
  kTlsCertSubject,
  kTlsCertIssuer,
  kTlsCertSerial,
  kTlsCertFingerprint,
  kJa3Hash,
  kJa3String,
  kJa3sHash,
  kJa3sString,
  kSmbShare,
  kSmbNamedPipe,
  kDcerpcStubData,
  kFileName,
  kSshProto,
  kSshSoftware,
  kKrb5Cname,
  kKrb5Sname,
  // Multi-buffers: a message gives several instances, a rule matches when one instance does.
  kHttpRequestHeader,   // each request header as "Name: value"
  kHttpResponseHeader,  // each response header as "Name: value"
  kTlsCerts,            // each certificate of the server's chain (DER)
};

// The canonical (dotted) name, e.g. "http.uri"; "pkt_data" for kPacket.
const char* BufferName(Buffer b);
const char* ProtocolName(Protocol p);
const char* ActionName(Action a);

struct Content {
  std::string bytes;  // decoded: hex and escapes resolved
  bool negated = false;
  bool nocase = false;
  bool rawbytes = false;  // accepted for Snort compatibility, no effect
  Buffer buffer = Buffer::kPacket;
  // Absolute (offset/depth) and relative (distance/within) are exclusive (the parser checks).
  std::optional<uint32_t> offset;
  std::optional<uint32_t> depth;
  std::optional<int32_t> distance;
  std::optional<uint32_t> within;
  bool fast_pattern = false;
  bool fast_pattern_only = false;
  // fast_pattern:offset,length: the part of bytes used as the fast pattern.
  std::optional<std::pair<uint16_t, uint16_t>> fast_pattern_chop;

  // A relative content with no earlier match in its buffer is relative to the buffer's start.
  bool relative() const { return distance.has_value() || within.has_value(); }
};

struct Pcre {
  std::string source;      // the text between the delimiters, as written
  std::string expression;  // Hyperscan-ready (A and x flags folded in), validated
  unsigned hs_flags = 0;  // HS_FLAG_CASELESS, HS_FLAG_DOTALL, HS_FLAG_MULTILINE, HS_FLAG_ALLOWEMPTY
  bool negated = false;
  bool relative = false;  // R: starts where the previous match in the same buffer ended
  Buffer buffer = Buffer::kPacket;
};

// isdataat:[!]N[,relative]: absolute, the buffer has a byte at offset N (N < length); relative,
// at least N bytes follow the end of the previous match (cursor + N <= length). `!` inverts.
struct IsDataAt {
  uint32_t size = 0;
  bool relative = false;
  bool negated = false;
  Buffer buffer = Buffer::kPacket;
};

// How byte_test and byte_jump read a number: `nbytes` bytes at `offset` from the buffer's start
// (relative: from the end of the previous match), as a big- or little-endian integer or as text
// in a base; then masked with `bitmask` (when not 0) and shifted right by its trailing zeros.
enum class NumberBase : uint8_t { kBinary, kDecimal, kHex, kOctal };
struct ByteRead {
  uint8_t nbytes = 1;  // 1..8 binary, 1..20 as text
  int32_t offset = 0;
  bool relative = false;
  bool little_endian = false;  // `little`, or `dce` (DCE/RPC's usual little-endian data rep)
  NumberBase base = NumberBase::kBinary;
  uint64_t bitmask = 0;
};

// byte_test: the number read compared with `value` (& and ^: a nonzero result matches).
enum class ByteOp : uint8_t { kLt, kGt, kEq, kLe, kGe, kAnd, kXor };
struct ByteTest {
  ByteRead read;
  ByteOp op = ByteOp::kEq;
  bool negated = false;
  uint64_t value = 0;
  Buffer buffer = Buffer::kPacket;
};

// byte_jump: moves the cursor (where the next relative match starts) by the number read, times
// `multiplier`, rounded up to 4 with `align`, from the end of the bytes read (or from the buffer's
// start / end), plus `post_offset`. A jump outside the buffer fails.
struct ByteJump {
  ByteRead read;
  uint32_t multiplier = 1;
  bool align = false;
  bool from_beginning = false;
  bool from_end = false;
  int32_t post_offset = 0;
  Buffer buffer = Buffer::kPacket;
};

// A content, a pcre or a byte check, in rule order (relative modifiers refer to the previous one
// in a buffer).
using Match = std::variant<Content, Pcre, IsDataAt, ByteTest, ByteJump>;

enum class FlowDirection : uint8_t { kAny, kToServer, kToClient };
enum class FlowState : uint8_t { kAny, kEstablished, kNotEstablished, kStateless };
enum class FlowStream : uint8_t { kAny, kOnlyStream, kNoStream };

struct Flow {
  FlowDirection direction = FlowDirection::kAny;
  FlowState state = FlowState::kAny;
  FlowStream stream = FlowStream::kAny;
};

enum class FlowbitsCommand : uint8_t { kSet, kIsSet, kIsNotSet, kUnset, kToggle };

struct Flowbits {
  FlowbitsCommand command = FlowbitsCommand::kSet;
  std::vector<std::string> names;  // one or more
  bool any_of = false;             // names joined by '|' (isset/isnotset only), else '&' (all)
};

enum class DsizeOp : uint8_t { kEq, kLt, kGt, kRange };

// kRange is exclusive at both ends, as in Suricata: lo < dsize < hi.
struct Dsize {
  DsizeOp op = DsizeOp::kEq;
  uint32_t lo = 0;
  uint32_t hi = 0;
  bool Matches(uint32_t size) const;
};

enum class ThresholdType : uint8_t { kLimit, kThreshold, kBoth };
enum class Track : uint8_t { kBySrc, kByDst, kByRule, kByBoth };

struct Threshold {
  ThresholdType type = ThresholdType::kLimit;
  Track track = Track::kBySrc;
  uint32_t count = 0;
  uint32_t seconds = 0;
};

struct DetectionFilter {
  Track track = Track::kBySrc;
  uint32_t count = 0;
  uint32_t seconds = 0;
};

// krb5.ticket_encryption: the ticket's etype is weak (`weak`), not weak (`!weak`), or one of
// `etypes` (numbers or Suricata's names).
struct Krb5TicketEncryption {
  bool weak = false;
  bool negated = false;  // with weak only
  std::vector<int32_t> etypes;
};

struct DcerpcIface {
  std::string uuid;  // lower case, 8-4-4-4-12
  enum class VersionOp : uint8_t { kNone, kLt, kGt, kEq, kNe } op = VersionOp::kNone;
  uint16_t version = 0;
  bool any_frag = false;
};

struct Reference {
  std::string system;  // url, cve, bugtraq, ...
  std::string id;
};

struct Rule {
  // Header.
  Action action = Action::kAlert;
  Protocol protocol = Protocol::kIp;
  AddressSet source;
  PortSet source_ports;
  AddressSet destination;
  PortSet destination_ports;
  bool bidirectional = false;  // '<>'

  // Identity and description.
  uint32_t gid = 1;
  uint32_t sid = 0;
  uint32_t rev = 0;
  std::string msg;
  std::string classtype;  // empty when none
  std::string category;   // classtype's description from classification.config
  int priority = 3;       // explicit priority, else the classtype's, else 3
  std::vector<Reference> references;
  std::vector<std::pair<std::string, std::string>> metadata;

  // Detection.
  std::vector<Match> matches;
  Flow flow;
  std::vector<Flowbits> flowbits;
  bool noalert = false;
  std::optional<Dsize> dsize;
  // urilen: the length of http.uri (or http.uri.raw with `,raw`), compared as dsize is.
  std::optional<Dsize> urilen;
  bool urilen_raw = false;
  std::optional<Threshold> threshold;
  std::optional<DetectionFilter> detection_filter;
  std::optional<DcerpcIface> dcerpc_iface;
  std::vector<std::pair<uint16_t, uint16_t>> dcerpc_opnums;  // inclusive ranges
  // Kerberos messages (krb5.ticket_encryption, krb5_msg_type, krb5_err_code).
  std::optional<Krb5TicketEncryption> krb5_ticket_encryption;
  std::optional<uint8_t> krb5_msg_type;
  std::optional<int32_t> krb5_err_code;

  // Where it came from.
  std::string file;
  int line = 0;
  std::string text;
};

}  // namespace vigil::rules
