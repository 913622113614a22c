#include "dataplane/proto/dns.h"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <string_view>

#include "dataplane/proto/bytes.h"

namespace vigil::proto {
namespace {

constexpr size_t kHeaderLen = 12;
constexpr size_t kMaxMessageLen = 0xFFFF;  // the TCP length prefix bounds every DNS message

constexpr uint16_t kFlagQr = 0x8000;
constexpr uint16_t kFlagAa = 0x0400;
constexpr uint16_t kFlagTc = 0x0200;
constexpr uint16_t kFlagRd = 0x0100;
constexpr uint16_t kFlagRa = 0x0080;
constexpr uint16_t kFlagZ = 0x0040;

constexpr uint16_t kTypeA = 1;
constexpr uint16_t kTypeNs = 2;
constexpr uint16_t kTypeCname = 5;
constexpr uint16_t kTypeSoa = 6;
constexpr uint16_t kTypeNull = 10;
constexpr uint16_t kTypePtr = 12;
constexpr uint16_t kTypeMx = 15;
constexpr uint16_t kTypeTxt = 16;
constexpr uint16_t kTypeAaaa = 28;
constexpr uint16_t kTypeSrv = 33;
constexpr uint16_t kTypeOpt = 41;
constexpr uint16_t kTypeSshfp = 44;

// Name decoding flags (Suricata's DNSNameFlags), OR-ed over a whole message.
constexpr uint8_t kNameLoop = 0x01;
constexpr uint8_t kNameTruncated = 0x02;
constexpr uint8_t kNameLabelLimit = 0x04;

constexpr int kMaxLabels = 255;
// A well-formed name follows one pointer, and chains of a few are seen; more is a loop in all but
// name (and bounding hops keeps the visited-set check cheap).
constexpr int kMaxPointerHops = 16;
// SSHFP fingerprints longer than this are cut in the log (SHA-256 is 32 bytes).
constexpr size_t kMaxFingerprint = 64;

// kShort: the data ended before the item did. For a message cut by the TCP buffer this is the
// expected end of what can be read; for a whole message it is a malformation.
enum class Status : uint8_t { kOk, kShort, kBad };

struct Name {
  uint8_t text[DnsParser::kMaxNameLen];
  size_t len = 0;
  uint8_t flags = 0;
  std::span<const uint8_t> view() const noexcept { return {text, len}; }
};

// Decodes the name at `pos` of `msg`. Inline labels before the first pointer must end by `end`
// (the end of the rdata or the message); after a pointer the message end bounds them. `cut` says
// `msg` is the kept prefix of a longer message. *next is where the name ends at `pos`.
// Follows Suricata's reading: the end of the input ends a name, a pointer to itself is an error
// unless a pointer was already followed, names are cut at kMaxNameLen and labels counted.
Status DecodeName(std::span<const uint8_t> msg, size_t pos, size_t end, bool cut, Name* out,
                  size_t* next) noexcept {
  out->len = 0;
  out->flags = 0;
  size_t p = pos;
  size_t limit = end;
  bool jumped = false;
  size_t after = 0;
  int count = 0;
  uint32_t hops[kMaxPointerHops];
  int nhops = 0;
  for (;;) {
    if (p >= limit) {
      if (cut && limit == msg.size()) return Status::kShort;
      break;
    }
    const uint8_t len = msg[p];
    if (len == 0) {
      ++p;
      break;
    }
    if ((len & 0xC0) == 0) {
      if (p + 1 + len > limit) return limit == msg.size() ? Status::kShort : Status::kBad;
      if ((out->flags & kNameTruncated) == 0) {
        // Keep the first kMaxNameLen characters of the dotted name; flag when more would follow.
        size_t room = DnsParser::kMaxNameLen - out->len;
        if (out->len > 0 && room > 0) {
          out->text[out->len++] = '.';
          --room;
        } else if (out->len > 0) {
          out->flags |= kNameTruncated;
        }
        const size_t copy = len < room ? len : room;
        std::memcpy(out->text + out->len, &msg[p + 1], copy);
        out->len += copy;
        if (copy < len) out->flags |= kNameTruncated;
      }
      p += 1 + len;
    } else if ((len & 0xC0) == 0xC0) {
      if (p + 2 > limit) return limit == msg.size() ? Status::kShort : Status::kBad;
      const size_t target = (static_cast<size_t>(len & 0x3F) << 8) | msg[p + 1];
      if (target >= msg.size()) {
        if (cut) return Status::kShort;
        if (target > msg.size()) return Status::kBad;
      }
      bool seen = false;
      for (int i = 0; i < nhops; ++i) seen |= hops[i] == p;
      if (seen || target == p || nhops == kMaxPointerHops) {
        out->flags |= kNameLoop;
        if (!jumped) return Status::kBad;
        break;
      }
      hops[nhops++] = static_cast<uint32_t>(p);
      if (!jumped) {
        jumped = true;
        after = p + 2;
      }
      p = target;
      limit = msg.size();
    } else {
      return Status::kBad;  // 0x40 / 0x80: extended and reserved label types
    }
    if (++count > kMaxLabels) {
      out->flags |= kNameLabelLimit;
      if (!jumped) return Status::kBad;  // the name's end is unknown
      out->flags |= kNameTruncated;
      break;
    }
    // Cut and already past a pointer: the rest cannot change where the name ends.
    if ((out->flags & kNameTruncated) != 0 && jumped) break;
  }
  *next = jumped ? after : p;
  return Status::kOk;
}

struct QueryRef {
  uint32_t name_pos;
  uint16_t type;
};

struct RecordRef {
  uint32_t name_pos;
  uint32_t rdata_pos;
  uint32_t ttl;
  uint16_t type;
  uint16_t rdlen;
};

// The parts of an rdata that logging shows.
struct Rdata {
  Name name;   // CNAME/NS/PTR/MX target, SOA mname, SRV target
  Name name2;  // SOA rname
  uint32_t soa[5] = {};
  uint16_t srv[3] = {};
};

bool HasNameRdata(uint16_t type) noexcept {
  return type == kTypeCname || type == kTypeNs || type == kTypePtr || type == kTypeMx;
}

// Checks (and decodes) an rdata the way Suricata's parser reads it: a failure makes the section
// invalid. Types not listed are opaque.
Status ParseRdata(std::span<const uint8_t> msg, const RecordRef& r, bool cut, Rdata* out,
                  uint8_t* name_flags) noexcept {
  const size_t start = r.rdata_pos;
  const size_t end = start + r.rdlen;
  size_t next = 0;
  Status s = Status::kOk;
  switch (r.type) {
    case kTypeCname:
    case kTypeNs:
    case kTypePtr:
    case kTypeMx: {
      const size_t name_pos = r.type == kTypeMx ? start + 2 : start;
      if (name_pos > end) return Status::kBad;
      s = DecodeName(msg, name_pos, end, cut, &out->name, &next);
      *name_flags |= out->name.flags;
      return s;
    }
    case kTypeSoa: {
      s = DecodeName(msg, start, end, cut, &out->name, &next);
      *name_flags |= out->name.flags;
      if (s != Status::kOk) return s;
      s = DecodeName(msg, next, end, cut, &out->name2, &next);
      *name_flags |= out->name2.flags;
      if (s != Status::kOk) return s;
      if (next + 20 > end) return Status::kBad;
      for (int i = 0; i < 5; ++i) out->soa[i] = LoadU32be(&msg[next + size_t{4} * i]);
      return Status::kOk;
    }
    case kTypeSrv: {
      if (start + 6 > end) return Status::kBad;
      for (int i = 0; i < 3; ++i) out->srv[i] = LoadU16be(&msg[start + size_t{2} * i]);
      s = DecodeName(msg, start + 6, end, cut, &out->name, &next);
      *name_flags |= out->name.flags;
      return s;
    }
    case kTypeTxt:
      // At least the first character-string must be whole; later broken ones are dropped.
      if (r.rdlen == 0 || 1 + static_cast<size_t>(msg[start]) > r.rdlen) return Status::kBad;
      return Status::kOk;
    case kTypeSshfp:
      return r.rdlen >= 2 ? Status::kOk : Status::kBad;
    default:
      return Status::kOk;
  }
}

enum class ParseStatus : uint8_t { kOk, kHeaderInvalid, kMalformed };

struct Parsed {
  uint16_t id = 0, flags = 0, qdcount = 0, ancount = 0, nscount = 0, arcount = 0;
  QueryRef queries[DnsParser::kMaxLoggedQueries];
  RecordRef answers[DnsParser::kMaxLoggedRecords];
  RecordRef authorities[DnsParser::kMaxLoggedRecords];
  RecordRef additionals[DnsParser::kMaxLoggedRecords];
  int n_queries = 0, n_answers = 0, n_authorities = 0, n_additionals = 0;
  int extra_queries = 0;  // parsed but not logged
  int extra_answers = 0;
  bool queries_done = false;  // every question was read (probing a cut message)
  bool invalid_authorities = false;
  bool invalid_additionals = false;
  uint8_t name_flags = 0;
};

// Suricata's probe_header_validity: record counts that cannot fit, a header-only body that is
// not empty, and a request without questions mark non-DNS (or hopeless) data.
bool HeaderValid(uint16_t flags, uint16_t qd, uint16_t an, uint16_t ns, uint16_t ar,
                 size_t declared_len) noexcept {
  const size_t records = size_t{qd} + an + ns + ar;
  if (2 * records > declared_len) return false;
  if (records == 0 && declared_len > kHeaderLen) return false;
  if ((flags & kFlagQr) == 0 && qd == 0) return false;
  return true;
}

// Reads `count` resource records at *pos. Records with an empty rdata are skipped, as Suricata
// does (it keeps one entry per rdata item and an empty rdata has none).
Status ParseSection(std::span<const uint8_t> msg, size_t* pos, uint16_t count, bool cut,
                    RecordRef* out, int* n_out, int* n_extra, uint8_t* name_flags) noexcept {
  Name owner;
  Rdata rdata;
  for (uint32_t i = 0; i < count; ++i) {
    size_t next = 0;
    const Status s = DecodeName(msg, *pos, msg.size(), cut, &owner, &next);
    if (s != Status::kOk) return s;
    if (next + 10 > msg.size()) return Status::kShort;
    RecordRef r;
    r.name_pos = static_cast<uint32_t>(*pos);
    r.type = LoadU16be(&msg[next]);
    r.ttl = LoadU32be(&msg[next + 4]);
    r.rdlen = LoadU16be(&msg[next + 8]);
    r.rdata_pos = static_cast<uint32_t>(next + 10);
    if (size_t{r.rdata_pos} + r.rdlen > msg.size()) return Status::kShort;
    if (r.rdlen > 0) {
      uint8_t flags = owner.flags;
      const Status rs = ParseRdata(msg, r, cut, &rdata, &flags);
      if (rs != Status::kOk) return rs;
      *name_flags |= flags;
      if (*n_out < DnsParser::kMaxLoggedRecords) {
        out[(*n_out)++] = r;
      } else if (n_extra != nullptr) {
        ++*n_extra;
      }
    } else {
      *name_flags |= owner.flags;
    }
    *pos = r.rdata_pos + r.rdlen;
  }
  return Status::kOk;
}

// Parses `msg`, whose length on the wire is `declared_len` (larger when `msg` is the kept prefix
// of a long TCP message: then sections stop quietly where the kept bytes end).
ParseStatus ParseMessage(std::span<const uint8_t> msg, size_t declared_len, Parsed* p) noexcept {
  if (msg.size() < kHeaderLen || declared_len > kMaxMessageLen) return ParseStatus::kHeaderInvalid;
  const bool cut = msg.size() < declared_len;
  p->id = LoadU16be(&msg[0]);
  p->flags = LoadU16be(&msg[2]);
  p->qdcount = LoadU16be(&msg[4]);
  p->ancount = LoadU16be(&msg[6]);
  p->nscount = LoadU16be(&msg[8]);
  p->arcount = LoadU16be(&msg[10]);
  if (!HeaderValid(p->flags, p->qdcount, p->ancount, p->nscount, p->arcount, declared_len)) {
    return ParseStatus::kHeaderInvalid;
  }

  size_t pos = kHeaderLen;
  Name name;
  for (uint32_t i = 0; i < p->qdcount; ++i) {
    size_t next = 0;
    Status s = DecodeName(msg, pos, msg.size(), cut, &name, &next);
    if (s == Status::kOk && next + 4 > msg.size()) s = Status::kShort;
    if (s != Status::kOk) {
      if (s == Status::kShort && cut) return ParseStatus::kOk;
      return ParseStatus::kMalformed;
    }
    p->name_flags |= name.flags;
    if (p->n_queries < DnsParser::kMaxLoggedQueries) {
      p->queries[p->n_queries++] = {static_cast<uint32_t>(pos), LoadU16be(&msg[next])};
    } else {
      ++p->extra_queries;
    }
    pos = next + 4;
  }
  p->queries_done = true;

  Status s = ParseSection(msg, &pos, p->ancount, cut, p->answers, &p->n_answers, &p->extra_answers,
                          &p->name_flags);
  if (s != Status::kOk) {
    if (s == Status::kShort && cut) return ParseStatus::kOk;
    return ParseStatus::kMalformed;
  }
  s = ParseSection(msg, &pos, p->nscount, cut, p->authorities, &p->n_authorities, nullptr,
                   &p->name_flags);
  if (s != Status::kOk) {
    if (s == Status::kShort && cut) return ParseStatus::kOk;
    // Suricata keeps the message and drops the authority and additional sections.
    p->invalid_authorities = true;
    p->n_authorities = 0;
    return ParseStatus::kOk;
  }
  s = ParseSection(msg, &pos, p->arcount, cut, p->additionals, &p->n_additionals, nullptr,
                   &p->name_flags);
  if (s != Status::kOk) {
    if (s == Status::kShort && cut) return ParseStatus::kOk;
    p->invalid_additionals = true;
    p->n_additionals = 0;
  }
  return ParseStatus::kOk;
}

bool OpcodeProbable(uint16_t flags) noexcept {
  const int opcode = (flags >> 11) & 0xF;
  return opcode <= 6 && opcode != 3;  // QUERY IQUERY STATUS - NOTIFY UPDATE DSO
}

// ---- Text helpers ----

// Suricata's DNSRecordType names; others are logged as their number.
std::string_view TypeName(uint16_t type, char (&buf)[8]) noexcept {
  switch (type) {
    case 1:
      return "A";
    case 2:
      return "NS";
    case 3:
      return "MD";
    case 4:
      return "MF";
    case 5:
      return "CNAME";
    case 6:
      return "SOA";
    case 7:
      return "MB";
    case 8:
      return "MG";
    case 9:
      return "MR";
    case 10:
      return "NULL";
    case 11:
      return "WKS";
    case 12:
      return "PTR";
    case 13:
      return "HINFO";
    case 14:
      return "MINFO";
    case 15:
      return "MX";
    case 16:
      return "TXT";
    case 17:
      return "RP";
    case 18:
      return "AFSDB";
    case 19:
      return "X25";
    case 20:
      return "ISDN";
    case 21:
      return "RT";
    case 22:
      return "NSAP";
    case 23:
      return "NSAPPTR";
    case 24:
      return "SIG";
    case 25:
      return "KEY";
    case 26:
      return "PX";
    case 27:
      return "GPOS";
    case 28:
      return "AAAA";
    case 29:
      return "LOC";
    case 30:
      return "NXT";
    case 33:
      return "SRV";
    case 34:
      return "ATMA";
    case 35:
      return "NAPTR";
    case 36:
      return "KX";
    case 37:
      return "CERT";
    case 38:
      return "A6";
    case 39:
      return "DNAME";
    case 41:
      return "OPT";
    case 42:
      return "APL";
    case 43:
      return "DS";
    case 44:
      return "SSHFP";
    case 45:
      return "IPSECKEY";
    case 46:
      return "RRSIG";
    case 47:
      return "NSEC";
    case 48:
      return "DNSKEY";
    case 49:
      return "DHCID";
    case 50:
      return "NSEC3";
    case 51:
      return "NSEC3PARAM";
    case 52:
      return "TLSA";
    case 55:
      return "HIP";
    case 59:
      return "CDS";
    case 60:
      return "CDNSKEY";
    case 65:
      return "HTTPS";
    case 99:
      return "SPF";
    case 249:
      return "TKEY";
    case 250:
      return "TSIG";
    case 254:
      return "MAILA";
    case 255:
      return "ANY";
    case 256:
      return "URI";
    default:
      break;
  }
  char tmp[8];
  size_t n = 0;
  uint32_t v = type;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (size_t i = 0; i < n; ++i) buf[i] = tmp[n - 1 - i];
  return {buf, n};
}

std::string_view RcodeName(uint16_t flags, char (&buf)[8]) noexcept {
  static constexpr std::string_view kNames[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
                                                "NOTIMP",  "REFUSED", "YXDOMAIN", "YXRRSET",
                                                "NXRRSET", "NOTAUTH", "NOTZONE"};
  const uint16_t rcode = flags & 0xF;
  if (rcode < std::size(kNames)) return kNames[rcode];
  buf[0] = '1';
  buf[1] = static_cast<char>('0' + rcode - 10);
  return {buf, 2};
}

std::string_view OpcodeName(uint16_t flags) noexcept {
  switch ((flags >> 11) & 0xF) {
    case 0:
      return "QUERY";
    case 1:
      return "IQUERY";
    case 2:
      return "STATUS";
    case 4:
      return "NOTIFY";
    case 5:
      return "UPDATE";
    case 6:
      return "DSO";
    default:
      return "OPCODE";
  }
}

// Lower-case hex without leading zeros, like Rust's {:x}.
std::string_view HexNoPad(uint16_t v, char (&buf)[8]) noexcept {
  static constexpr char kDigits[] = "0123456789abcdef";
  size_t n = 0;
  bool started = false;
  for (int shift = 12; shift >= 0; shift -= 4) {
    const int d = (v >> shift) & 0xF;
    if (d != 0 || started || shift == 0) {
      buf[n++] = kDigits[d];
      started = true;
    }
  }
  return {buf, n};
}

// Suricata's dns_print_addr: dotted quad, or eight groups of four hex digits (not compressed);
// any other length gives "".
std::string_view FormatAddr(std::span<const uint8_t> a, char (&buf)[48]) noexcept {
  static constexpr char kDigits[] = "0123456789abcdef";
  size_t n = 0;
  if (a.size() == 4) {
    for (size_t i = 0; i < 4; ++i) {
      if (i > 0) buf[n++] = '.';
      const uint8_t b = a[i];
      if (b >= 100) buf[n++] = static_cast<char>('0' + b / 100);
      if (b >= 10) buf[n++] = static_cast<char>('0' + b / 10 % 10);
      buf[n++] = static_cast<char>('0' + b % 10);
    }
  } else if (a.size() == 16) {
    for (size_t i = 0; i < 16; ++i) {
      if (i > 0 && i % 2 == 0) buf[n++] = ':';
      buf[n++] = kDigits[a[i] >> 4];
      buf[n++] = kDigits[a[i] & 0xF];
    }
  }
  return {buf, n};
}

std::string_view AsText(std::span<const uint8_t> b) noexcept {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

// ---- JSON ----

void WriteSoa(JsonWriter& w, std::string_view key, const Rdata& rd) noexcept {
  w.ObjectBegin(key);
  w.Bytes("mname", rd.name.view());
  if (rd.name.flags & kNameTruncated) w.Bool("mname_truncated", true);
  w.Bytes("rname", rd.name2.view());
  if (rd.name2.flags & kNameTruncated) w.Bool("rname_truncated", true);
  w.Uint("serial", rd.soa[0]);
  w.Uint("refresh", rd.soa[1]);
  w.Uint("retry", rd.soa[2]);
  w.Uint("expire", rd.soa[3]);
  w.Uint("minimum", rd.soa[4]);
  w.ObjectEnd();
}

void WriteSrv(JsonWriter& w, std::string_view key, const Rdata& rd) noexcept {
  w.ObjectBegin(key);
  w.Uint("priority", rd.srv[0]);
  w.Uint("weight", rd.srv[1]);
  w.Uint("port", rd.srv[2]);
  w.Bytes("name", rd.name.view());
  w.ObjectEnd();
}

void WriteSshfp(JsonWriter& w, std::string_view key, std::span<const uint8_t> rdata) noexcept {
  static constexpr char kDigits[] = "0123456789abcdef";
  char fp[kMaxFingerprint * 3];
  size_t n = 0;
  const size_t len = rdata.size() - 2 < kMaxFingerprint ? rdata.size() - 2 : kMaxFingerprint;
  for (size_t i = 0; i < len; ++i) {
    if (i > 0) fp[n++] = ':';
    fp[n++] = kDigits[rdata[2 + i] >> 4];
    fp[n++] = kDigits[rdata[2 + i] & 0xF];
  }
  w.ObjectBegin(key);
  w.Str("fingerprint", {fp, n});
  w.Uint("algo", rdata[0]);
  w.Uint("type", rdata[1]);
  w.ObjectEnd();
}

// Calls fn(string) for each whole character-string of a TXT rdata.
template <typename Fn>
void ForEachTxt(std::span<const uint8_t> rdata, Fn&& fn) noexcept {
  size_t i = 0;
  while (i < rdata.size()) {
    const size_t len = rdata[i];
    if (i + 1 + len > rdata.size()) break;
    fn(rdata.subspan(i + 1, len));
    i += 1 + len;
  }
}

// True when an OPT rdata holds at least one option (Suricata leaves out OPT records without).
bool OptHasOptions(std::span<const uint8_t> rdata) noexcept { return rdata.size() >= 4; }

// One detailed record object (several for a TXT record: one per string, as Suricata logs them).
void WriteRecord(JsonWriter& w, std::span<const uint8_t> msg, const RecordRef& r) noexcept {
  Name owner;
  size_t next = 0;
  DecodeName(msg, r.name_pos, msg.size(), false, &owner, &next);
  Rdata rd;
  uint8_t ignored = 0;
  ParseRdata(msg, r, false, &rd, &ignored);
  const std::span<const uint8_t> rdata = msg.subspan(r.rdata_pos, r.rdlen);
  char tbuf[8];
  const std::string_view type = TypeName(r.type, tbuf);

  auto begin = [&]() {
    w.ObjectBegin("");
    w.Bytes("rrname", owner.view());
    if (owner.flags & kNameTruncated) w.Bool("rrname_truncated", true);
    w.Str("rrtype", type);
    w.Uint("ttl", r.ttl);
  };

  if (r.type == kTypeTxt) {
    ForEachTxt(rdata, [&](std::span<const uint8_t> s) {
      begin();
      w.Bytes("rdata", s);
      w.ObjectEnd();
    });
    return;
  }
  begin();
  char abuf[48];
  switch (r.type) {
    case kTypeA:
    case kTypeAaaa:
      w.Str("rdata", FormatAddr(rdata, abuf));
      break;
    case kTypeCname:
    case kTypeNs:
    case kTypePtr:
    case kTypeMx:
      w.Bytes("rdata", rd.name.view());
      if (rd.name.flags & kNameTruncated) w.Bool("rdata_truncated", true);
      break;
    case kTypeNull:
      w.Bytes("rdata", rdata);
      break;
    case kTypeSoa:
      WriteSoa(w, "soa", rd);
      break;
    case kTypeSshfp:
      WriteSshfp(w, "sshfp", rdata);
      break;
    case kTypeSrv:
      WriteSrv(w, "srv", rd);
      break;
    case kTypeOpt: {
      w.ArrayBegin("opt");
      size_t i = 0;
      while (i + 4 <= rdata.size()) {
        const uint16_t code = LoadU16be(&rdata[i]);
        const size_t len = LoadU16be(&rdata[i + 2]);
        if (i + 4 + len > rdata.size()) break;
        w.ObjectBegin("");
        w.Uint("code", code);
        w.Hex("data", rdata.subspan(i + 4, len));
        w.ObjectEnd();
        i += 4 + len;
      }
      w.ArrayEnd();
      break;
    }
    default:
      break;  // other types: no rdata member, as in Suricata
  }
  w.ObjectEnd();
}

bool IsGrouped(uint16_t type) noexcept {
  switch (type) {
    case kTypeA:
    case kTypeAaaa:
    case kTypeCname:
    case kTypeNs:
    case kTypePtr:
    case kTypeMx:
    case kTypeTxt:
    case kTypeNull:
    case kTypeSoa:
    case kTypeSshfp:
    case kTypeSrv:
      return true;
    default:
      return false;
  }
}

// Suricata's "grouped" object: answers' data by record type.
void WriteGrouped(JsonWriter& w, std::span<const uint8_t> msg, const Parsed& p) noexcept {
  uint16_t types[16];
  int n_types = 0;
  for (int i = 0; i < p.n_answers; ++i) {
    const uint16_t t = p.answers[i].type;
    if (!IsGrouped(t)) continue;
    bool seen = false;
    for (int j = 0; j < n_types; ++j) seen |= types[j] == t;
    if (!seen && n_types < 16) types[n_types++] = t;
  }
  w.ObjectBegin("grouped");
  Rdata rd;
  char tbuf[8];
  char abuf[48];
  for (int j = 0; j < n_types; ++j) {
    w.ArrayBegin(TypeName(types[j], tbuf));
    for (int i = 0; i < p.n_answers; ++i) {
      const RecordRef& r = p.answers[i];
      if (r.type != types[j]) continue;
      const std::span<const uint8_t> rdata = msg.subspan(r.rdata_pos, r.rdlen);
      uint8_t ignored = 0;
      ParseRdata(msg, r, false, &rd, &ignored);
      switch (r.type) {
        case kTypeA:
        case kTypeAaaa:
          w.Str("", FormatAddr(rdata, abuf));
          break;
        case kTypeTxt:
          ForEachTxt(rdata, [&](std::span<const uint8_t> s) { w.Bytes("", s); });
          break;
        case kTypeNull:
          w.Bytes("", rdata);
          break;
        case kTypeSoa:
          WriteSoa(w, "", rd);
          break;
        case kTypeSshfp:
          WriteSshfp(w, "", rdata);
          break;
        case kTypeSrv:
          WriteSrv(w, "", rd);
          break;
        default:  // the name types
          w.Bytes("", rd.name.view());
          break;
      }
    }
    w.ArrayEnd();
  }
  w.ObjectEnd();
}

void WriteDnsJson(JsonWriter& w, std::span<const uint8_t> msg, const Parsed& p, bool response,
                  uint64_t tx_id) noexcept {
  char buf[8];
  w.ObjectBegin("dns");
  w.Uint("version", 3);
  w.Str("type", response ? "response" : "request");
  w.Uint("tx_id", tx_id);
  w.Uint("id", p.id);
  w.Str("flags", HexNoPad(p.flags, buf));
  if (p.flags & kFlagQr) w.Bool("qr", true);
  if (p.flags & kFlagAa) w.Bool("aa", true);
  if (p.flags & kFlagTc) w.Bool("tc", true);
  if (p.flags & kFlagRd) w.Bool("rd", true);
  if (p.flags & kFlagRa) w.Bool("ra", true);
  if (p.flags & kFlagZ) w.Bool("z", true);
  w.Uint("opcode", (p.flags >> 11) & 0xF);
  w.Str("rcode", RcodeName(p.flags, buf));

  if (p.n_queries > 0) {
    Name name;
    w.ArrayBegin("queries");
    for (int i = 0; i < p.n_queries; ++i) {
      size_t next = 0;
      DecodeName(msg, p.queries[i].name_pos, msg.size(), false, &name, &next);
      w.ObjectBegin("");
      w.Bytes("rrname", name.view());
      w.Str("rrtype", TypeName(p.queries[i].type, buf));
      if (name.flags & kNameTruncated) w.Bool("rrname_truncated", true);
      w.ObjectEnd();
    }
    w.ArrayEnd();
  }
  if (p.n_answers > 0) {
    w.ArrayBegin("answers");
    for (int i = 0; i < p.n_answers; ++i) WriteRecord(w, msg, p.answers[i]);
    w.ArrayEnd();
    WriteGrouped(w, msg, p);
  }
  if (p.n_authorities > 0) {
    w.ArrayBegin("authorities");
    for (int i = 0; i < p.n_authorities; ++i) WriteRecord(w, msg, p.authorities[i]);
    w.ArrayEnd();
  }
  bool open = false;
  for (int i = 0; i < p.n_additionals; ++i) {
    const RecordRef& r = p.additionals[i];
    if (r.type == kTypeOpt && !OptHasOptions(msg.subspan(r.rdata_pos, r.rdlen))) continue;
    if (!open) {
      w.ArrayBegin("additionals");
      open = true;
    }
    WriteRecord(w, msg, r);
  }
  if (open) w.ArrayEnd();
  w.ObjectEnd();
}

// The short text of an answer for the message line: address, target name, first TXT string...
void AppendAnswerText(TextBuilder& t, std::span<const uint8_t> msg, const RecordRef& r) noexcept {
  const std::span<const uint8_t> rdata = msg.subspan(r.rdata_pos, r.rdlen);
  char abuf[48];
  switch (r.type) {
    case kTypeA:
    case kTypeAaaa:
      t.Append(FormatAddr(rdata, abuf));
      return;
    case kTypeTxt: {
      bool first = true;
      ForEachTxt(rdata, [&](std::span<const uint8_t> s) {
        if (first) t.Append('"').Append(AsText(s)).Append('"');
        first = false;
      });
      return;
    }
    default:
      break;
  }
  Rdata rd;
  uint8_t ignored = 0;
  ParseRdata(msg, r, false, &rd, &ignored);
  if (HasNameRdata(r.type) || r.type == kTypeSoa) {
    t.Append(rd.name.len > 0 ? AsText(rd.name.view()) : ".");
  } else if (r.type == kTypeSrv) {
    t.Append(rd.name.len > 0 ? AsText(rd.name.view()) : ".").Append(':').AppendUint(rd.srv[2]);
  } else {
    t.AppendUint(r.rdlen).Append(" bytes");
  }
}

// "DNS QUERY A example.com", "DNS RESPONSE NOERROR A example.com 93.184.216.34",
// "DNS RESPONSE NOERROR A www.example.com CNAME example.com 93.184.216.34".
void BuildMessage(TextBuilder& t, std::span<const uint8_t> msg, const Parsed& p,
                  bool response) noexcept {
  char buf[8];
  const int opcode = (p.flags >> 11) & 0xF;
  t.Append("DNS ");
  if (opcode != 0) {
    t.Append(OpcodeName(p.flags));
    if (OpcodeName(p.flags) == "OPCODE") t.AppendUint(opcode);
    t.Append(' ');
  }
  if (response) {
    t.Append("RESPONSE ").Append(RcodeName(p.flags, buf));
  } else if (opcode == 0) {
    t.Append("QUERY");
  } else {
    t.Append("REQUEST");
  }
  uint16_t qtype = 0;
  if (p.n_queries > 0) {
    Name name;
    size_t next = 0;
    DecodeName(msg, p.queries[0].name_pos, msg.size(), false, &name, &next);
    qtype = p.queries[0].type;
    t.Append(' ').Append(TypeName(qtype, buf)).Append(' ');
    t.Append(name.len > 0 ? AsText(name.view()) : ".");
    const int more = p.n_queries - 1 + p.extra_queries;
    if (more > 0) t.Append(" (+").AppendUint(more).Append(" queries)");
  }
  constexpr int kShown = 4;
  for (int i = 0; i < p.n_answers && i < kShown; ++i) {
    const RecordRef& r = p.answers[i];
    t.Append(' ');
    if (r.type != qtype) t.Append(TypeName(r.type, buf)).Append(' ');
    AppendAnswerText(t, msg, r);
  }
  const int hidden = p.n_answers + p.extra_answers - kShown;
  if (hidden > 0) t.Append(" (+").AppendUint(hidden).Append(" answers)");
}

}  // namespace

// ---- DnsParser ----

ProbeResult DnsParser::ProbeUdp(Direction, std::span<const uint8_t> datagram) noexcept {
  Parsed p;
  if (ParseMessage(datagram, datagram.size(), &p) != ParseStatus::kOk) return ProbeResult::kNo;
  return OpcodeProbable(p.flags) ? ProbeResult::kYes : ProbeResult::kNo;
}

ProbeResult DnsParser::ProbeTcp(Direction, std::span<const uint8_t> first_bytes) noexcept {
  if (first_bytes.size() < 2) return ProbeResult::kMaybe;
  const size_t len = LoadU16be(first_bytes.data());
  if (len < kHeaderLen) return ProbeResult::kNo;
  std::span<const uint8_t> body = first_bytes.subspan(2);
  if (body.size() > len) body = body.first(len);
  if (body.size() < kHeaderLen) return ProbeResult::kMaybe;
  Parsed p;
  if (ParseMessage(body, len, &p) != ParseStatus::kOk) return ProbeResult::kNo;
  if (!OpcodeProbable(p.flags)) return ProbeResult::kNo;
  // A cut message is recognised once its questions have all been read.
  if (body.size() < len && !p.queries_done) return ProbeResult::kMaybe;
  return ProbeResult::kYes;
}

uint8_t* DnsParser::Buffer(Direction dir) noexcept {
  return dir == Direction::kToServer ? request_buf_ : response_buf_;
}

size_t DnsParser::BufferSize(Direction dir) noexcept {
  return dir == Direction::kToServer ? kRequestBufferSize : kResponseBufferSize;
}

void DnsParser::Malformed(Direction dir, EventSink& sink) noexcept {
  uint8_t& run = malformed_run_[static_cast<int>(dir)];
  if (run >= kMaxMalformedRun) return;
  ++run;
  EmitAnomaly(sink, dir, AppProto::kDns, "MALFORMED_DATA");
}

void DnsParser::HandleMessage(Direction dir, std::span<const uint8_t> msg, size_t declared_len,
                              EventSink& sink) noexcept {
  Parsed p;
  if (ParseMessage(msg, declared_len, &p) != ParseStatus::kOk) {
    Malformed(dir, sink);
    return;
  }
  malformed_run_[static_cast<int>(dir)] = 0;
  const bool response = dir == Direction::kToClient;
  const bool qr = (p.flags & kFlagQr) != 0;
  if (!response && qr) {
    // Suricata makes no transaction of a response sent by the client.
    EmitAnomaly(sink, dir, AppProto::kDns, "NOT_A_REQUEST");
    return;
  }

  JsonWriter& w = sink.Begin("dns", dir);
  WriteDnsJson(w, msg, p, response, tx_id_);
  BuildMessage(sink.message(), msg, p, response);
  sink.Commit();
  ++tx_id_;
  // The signature engine: dns.query, each name a request asks for (Suricata inspects requests).
  if (!response && sink.inspecting()) {
    for (int i = 0; i < p.n_queries; ++i) {
      Name name;
      size_t next = 0;
      DecodeName(msg, p.queries[i].name_pos, msg.size(), false, &name, &next);
      rules::Buffers b;
      b.Set(rules::Buffer::kDnsQuery, name.view());
      sink.Inspect(dir, b);
    }
  }

  if (response && !qr) EmitAnomaly(sink, dir, AppProto::kDns, "NOT_A_RESPONSE");
  if (p.flags & kFlagZ) EmitAnomaly(sink, dir, AppProto::kDns, "Z_FLAG_SET");
  if (((p.flags >> 11) & 0xF) >= 7) EmitAnomaly(sink, dir, AppProto::kDns, "INVALID_OPCODE");
  if (p.name_flags & kNameTruncated) EmitAnomaly(sink, dir, AppProto::kDns, "NAME_TOO_LONG");
  if (p.name_flags & kNameLoop) EmitAnomaly(sink, dir, AppProto::kDns, "INFINITE_LOOP");
  if (p.name_flags & kNameLabelLimit) EmitAnomaly(sink, dir, AppProto::kDns, "TOO_MANY_LABELS");
  if (p.invalid_authorities) EmitAnomaly(sink, dir, AppProto::kDns, "INVALID_AUTHORITIES");
  if (p.invalid_additionals) EmitAnomaly(sink, dir, AppProto::kDns, "INVALID_ADDITIONALS");
}

void DnsParser::OnDatagram(Direction dir, std::span<const uint8_t> data, EventSink& sink) noexcept {
  HandleMessage(dir, data, data.size(), sink);
}

void DnsParser::OnData(Direction dir, std::span<const uint8_t> data, EventSink& sink) noexcept {
  TcpDir& t = tcp_[static_cast<int>(dir)];
  if (t.lost_sync) {
    // After a gap, resume only where a segment starts like a message (segments usually do).
    if (ProbeTcp(dir, data) != ProbeResult::kYes) return;
    t = TcpDir{};
  }
  const size_t cap = BufferSize(dir);
  size_t i = 0;
  while (i < data.size()) {
    if (t.prefix_len < 2) {
      // Whole message in this call: parse it in place (the same prefix as the buffer would keep).
      if (t.prefix_len == 0 && data.size() - i >= 2) {
        const size_t len = LoadU16be(&data[i]);
        if (data.size() - i - 2 >= len) {
          if (len > 0) HandleMessage(dir, data.subspan(i + 2, len < cap ? len : cap), len, sink);
          i += 2 + len;  // an empty message is skipped, as Suricata does
          continue;
        }
      }
      t.prefix[t.prefix_len++] = data[i++];
      if (t.prefix_len == 2) {
        t.msg_len = LoadU16be(t.prefix);
        t.received = 0;
        t.kept = 0;
        t.damaged = false;
        if (t.msg_len == 0) t.prefix_len = 0;
      }
      continue;
    }
    const size_t n = std::min<size_t>(t.msg_len - t.received, data.size() - i);
    if (!t.damaged && t.kept < cap) {
      const size_t copy = std::min<size_t>(n, cap - t.kept);
      std::memcpy(Buffer(dir) + t.kept, &data[i], copy);
      t.kept = static_cast<uint16_t>(t.kept + copy);
    }
    t.received = static_cast<uint16_t>(t.received + n);
    i += n;
    if (t.received == t.msg_len) {
      if (!t.damaged) HandleMessage(dir, {Buffer(dir), t.kept}, t.msg_len, sink);
      t.prefix_len = 0;
      t.damaged = false;
    }
  }
}

void DnsParser::OnGap(Direction dir, uint32_t missing_bytes, EventSink& sink) noexcept {
  if (missing_bytes == 0) return;
  TcpDir& t = tcp_[static_cast<int>(dir)];
  if (t.lost_sync) return;
  if (t.prefix_len == 2 && missing_bytes <= static_cast<uint32_t>(t.msg_len - t.received)) {
    // The gap lies inside the current message: framing holds, the message is lost.
    t.received = static_cast<uint16_t>(t.received + missing_bytes);
    t.damaged = true;
    if (t.received == t.msg_len) {
      t.prefix_len = 0;
      t.damaged = false;
    }
    return;
  }
  t = TcpDir{};
  t.lost_sync = true;
  EmitAnomaly(sink, dir, AppProto::kDns, "GAP_LOST_SYNC");
}

}  // namespace vigil::proto
