#include "rules/engine/detect.h"

#include <hs/hs.h>

#include <algorithm>
#include <bitset>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include "rules/lang/krb5_etype.h"
#include "rules/lang/text.h"

namespace vigil::rules {

// ---------------------------------------------------------------------------------------------
// Verification of contents and pcres in one buffer

namespace {

constexpr size_t kNpos = SIZE_MAX;

uint8_t Lower(uint8_t c) noexcept { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

// First occurrence of c.bytes starting in [lo, hi - len] with its end <= hi.
size_t Find(std::span<const uint8_t> buf, size_t lo, size_t hi, const Content& c) noexcept {
  const size_t n = c.bytes.size();
  hi = std::min(hi, buf.size());
  if (lo > hi || hi - lo < n) return kNpos;
  const auto* pat = reinterpret_cast<const uint8_t*>(c.bytes.data());
  if (n == 0) return lo;
  if (!c.nocase) {
    const void* at = memmem(buf.data() + lo, hi - lo, pat, n);
    return at == nullptr ? kNpos
                         : static_cast<size_t>(static_cast<const uint8_t*>(at) - buf.data());
  }
  const uint8_t first = Lower(pat[0]);
  for (size_t i = lo; i + n <= hi; ++i) {
    if (Lower(buf[i]) != first) continue;
    size_t k = 1;
    while (k < n && Lower(buf[i + k]) == Lower(pat[k])) ++k;
    if (k == n) return i;
  }
  return kNpos;
}

bool IsRelative(const Match* m) noexcept {
  if (const auto* c = std::get_if<Content>(m)) return c->relative();
  if (const auto* p = std::get_if<Pcre>(m)) return p->relative;
  if (const auto* d = std::get_if<IsDataAt>(m)) return d->relative;
  if (const auto* t = std::get_if<ByteTest>(m)) return t->read.relative;
  if (const auto* j = std::get_if<ByteJump>(m)) return j->read.relative;
  return false;
}

// "12345678-1234-abcd-ef00-0123456789ab" (as the parser checked it) in the GUID's wire layout.
std::array<uint8_t, 16> UuidWire(const std::string& text) noexcept {
  std::array<uint8_t, 16> hex{};
  size_t n = 0;
  for (size_t i = 0; i + 1 < text.size() && n < 16;) {
    if (text[i] == '-') {
      ++i;
      continue;
    }
    auto v = [](char c) {
      return c >= '0' && c <= '9' ? c - '0' : (c >= 'a' && c <= 'f' ? c - 'a' + 10 : 0);
    };
    hex[n++] = static_cast<uint8_t>(v(text[i]) << 4 | v(text[i + 1]));
    i += 2;
  }
  // Data1 (4 bytes), Data2 and Data3 (2 each) are little-endian on the wire; Data4 as written.
  std::array<uint8_t, 16> w = hex;
  w[0] = hex[3], w[1] = hex[2], w[2] = hex[1], w[3] = hex[0];
  w[4] = hex[5], w[5] = hex[4], w[6] = hex[7], w[7] = hex[6];
  return w;
}

// Reads byte_test's / byte_jump's number; *at is where its bytes start. False when they are not
// all inside the buffer or a text number has no digit.
bool ReadNumber(const ByteRead& r, std::span<const uint8_t> buf, int64_t cursor, uint64_t* out,
                int64_t* at) noexcept {
  const int64_t pos = (r.relative ? cursor : 0) + r.offset;
  if (pos < 0 || pos + r.nbytes > static_cast<int64_t>(buf.size())) return false;
  *at = pos;
  const uint8_t* p = buf.data() + pos;
  uint64_t v = 0;
  if (r.base == NumberBase::kBinary) {
    for (size_t i = 0; i < r.nbytes; ++i) {
      const uint8_t b = r.little_endian ? p[r.nbytes - 1 - i] : p[i];
      v = v << 8 | b;
    }
  } else {
    // As strtoull over the bytes: leading digits of the base count, at least one.
    const unsigned base = r.base == NumberBase::kHex ? 16 : (r.base == NumberBase::kOctal ? 8 : 10);
    size_t i = 0, digits = 0;
    while (i < r.nbytes && (p[i] == ' ' || p[i] == '\t')) ++i;
    for (; i < r.nbytes; ++i) {
      const int d = HexDigitValue(p[i]);
      if (d < 0 || static_cast<unsigned>(d) >= base) break;
      v = v * base + static_cast<unsigned>(d);
      ++digits;
    }
    if (digits == 0) return false;
  }
  if (r.bitmask != 0) {
    v &= r.bitmask;
    v >>= __builtin_ctzll(r.bitmask);
  }
  *out = v;
  return true;
}

bool ByteTestMatches(const ByteTest& t, std::span<const uint8_t> buf, int64_t cursor) noexcept {
  uint64_t v = 0;
  int64_t at = 0;
  if (!ReadNumber(t.read, buf, cursor, &v, &at)) return false;
  bool m = false;
  switch (t.op) {
    case ByteOp::kLt:
      m = v < t.value;
      break;
    case ByteOp::kGt:
      m = v > t.value;
      break;
    case ByteOp::kEq:
      m = v == t.value;
      break;
    case ByteOp::kLe:
      m = v <= t.value;
      break;
    case ByteOp::kGe:
      m = v >= t.value;
      break;
    case ByteOp::kAnd:
      m = (v & t.value) != 0;
      break;
    case ByteOp::kXor:
      m = (v ^ t.value) != 0;
      break;
  }
  return m != t.negated;
}

// The cursor after byte_jump `j`, or -1 when the number cannot be read or the jump leaves the
// buffer (its end is a valid place to land).
int64_t ByteJumpTarget(const ByteJump& j, std::span<const uint8_t> buf, int64_t cursor) noexcept {
  uint64_t v = 0;
  int64_t at = 0;
  if (!ReadNumber(j.read, buf, cursor, &v, &at)) return -1;
  if (v > (uint64_t{1} << 32)) return -1;  // far beyond any buffer
  v *= j.multiplier;
  if (j.align && v % 4 != 0) v += 4 - v % 4;
  const auto size = static_cast<int64_t>(buf.size());
  int64_t target;
  if (j.from_beginning) {
    target = static_cast<int64_t>(v);
  } else if (j.from_end) {
    target = size + static_cast<int64_t>(v);
  } else {
    target = at + j.read.nbytes + static_cast<int64_t>(v);
  }
  target += j.post_offset;
  return target < 0 || target > size ? -1 : target;
}

bool MatchFrom(std::span<const Match* const> ms, size_t i, std::span<const uint8_t> buf,
               int64_t prev_end, PcreRunner* pcre, int* budget) noexcept {
  if (i == ms.size()) return true;
  if (--*budget < 0) return false;
  // Whether a later match depends on where this one matched (else the first occurrence will do).
  bool later_relative = false;
  for (size_t j = i + 1; j < ms.size() && !later_relative; ++j) later_relative = IsRelative(ms[j]);
  const auto size = static_cast<int64_t>(buf.size());

  if (const auto* c = std::get_if<Content>(ms[i])) {
    int64_t lo = 0, hi = size;
    if (c->relative()) {
      const int64_t dist = c->distance.value_or(0);
      lo = std::max<int64_t>(0, prev_end + dist);
      if (c->within) hi = std::min(hi, prev_end + dist + static_cast<int64_t>(*c->within));
    } else {
      lo = c->offset.value_or(0);
      if (c->depth) hi = std::min(hi, lo + static_cast<int64_t>(*c->depth));
    }
    if (c->negated) {
      const bool found =
          lo <= hi && Find(buf, static_cast<size_t>(lo), static_cast<size_t>(hi), *c) != kNpos;
      return !found && MatchFrom(ms, i + 1, buf, prev_end, pcre, budget);
    }
    if (lo > hi) return false;
    size_t from = static_cast<size_t>(lo);
    for (;;) {
      const size_t at = Find(buf, from, static_cast<size_t>(hi), *c);
      if (at == kNpos) return false;
      if (MatchFrom(ms, i + 1, buf, static_cast<int64_t>(at + c->bytes.size()), pcre, budget)) {
        return true;
      }
      if (!later_relative || *budget < 0) return false;
      from = at + 1;
    }
  }

  if (const auto* d = std::get_if<IsDataAt>(ms[i])) {
    const bool there = d->relative ? std::max<int64_t>(prev_end, 0) + d->size <= size
                                   : static_cast<int64_t>(d->size) < size;
    return there != d->negated && MatchFrom(ms, i + 1, buf, prev_end, pcre, budget);
  }
  if (const auto* t = std::get_if<ByteTest>(ms[i])) {
    return ByteTestMatches(*t, buf, std::max<int64_t>(prev_end, 0)) &&
           MatchFrom(ms, i + 1, buf, prev_end, pcre, budget);
  }
  if (const auto* j = std::get_if<ByteJump>(ms[i])) {
    const int64_t to = ByteJumpTarget(*j, buf, std::max<int64_t>(prev_end, 0));
    return to >= 0 && MatchFrom(ms, i + 1, buf, to, pcre, budget);
  }
  const auto* pp = std::get_if<Pcre>(ms[i]);
  if (pp == nullptr || pcre == nullptr) return false;
  const Pcre& p = *pp;
  const int64_t start = p.relative ? std::min(std::max<int64_t>(prev_end, 0), size) : 0;
  uint32_t ends[64];
  const size_t n = pcre->Ends(p, buf.subspan(static_cast<size_t>(start)), ends);
  if (n == kNpos) return false;
  if (p.negated) return n == 0 && MatchFrom(ms, i + 1, buf, prev_end, pcre, budget);
  for (size_t k = 0; k < n; ++k) {
    if (MatchFrom(ms, i + 1, buf, start + ends[k], pcre, budget)) return true;
    if (!later_relative || *budget < 0) return false;
  }
  return false;
}

}  // namespace

bool VerifyBuffer(std::span<const Match* const> matches, std::span<const uint8_t> buffer,
                  PcreRunner* pcre, int* budget) noexcept {
  return MatchFrom(matches, 0, buffer, 0, pcre, budget);
}

// ---------------------------------------------------------------------------------------------
// The compiled set

namespace {

// Verification work per rule and inspection (recursive steps); a rule that needs more fails.
constexpr int kVerifyBudget = 4096;
constexpr size_t kThresholdSlots = 1 << 16;  // per Scratch
constexpr size_t kThresholdProbe = 8;

struct Group {
  Buffer buffer;
  std::vector<const Match*> matches;
};

struct RuleInfo {
  uint64_t needs = 0;   // buffers the rule looks at
  bool stream = false;  // a stream rule: also verified over stream prefix + payload (Inspect)
  std::array<uint8_t, 16> dcerpc_uuid{};  // dcerpc.iface's UUID in the GUID's wire layout
  bool pass = false;  // a `pass` rule: checked before the others, and ends the packet's inspection
  std::vector<Group> groups;
  struct BitTest {
    std::vector<uint16_t> bits;
    bool any_of = false;
    bool negated = false;  // isnotset
  };
  std::vector<BitTest> tests;
  struct BitAction {
    FlowbitsCommand command;
    std::vector<uint16_t> bits;
  };
  std::vector<BitAction> actions;
};

struct ThresholdSlot {
  uint64_t key = 0;  // 0: free
  int64_t window_start = 0;
  uint32_t count = 0;
  bool alerted = false;
};

uint64_t Mix(uint64_t h, uint64_t v) noexcept {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h * 0xff51afd7ed558ccdull;
}

uint64_t AddrKey(const std::array<uint8_t, 16>& a) noexcept {
  uint64_t x = 0, y = 0;
  std::memcpy(&x, a.data(), 8);
  std::memcpy(&y, a.data() + 8, 8);
  return Mix(x, y);
}

}  // namespace

struct Scratch::Impl {
  ~Impl() {
    if (hs != nullptr) hs_free_scratch(hs);
  }
  hs_scratch_t* hs = nullptr;
  std::vector<uint32_t> mark;  // rule -> generation that made it a candidate
  std::vector<uint8_t> how;    // rule -> kFromBuffers | kFromSeam, for this generation's candidates
  uint32_t generation = 0;
  std::vector<uint32_t> candidates;
  uint32_t seam_candidates = 0;                      // candidates with kFromSeam
  std::array<uint8_t, 2 * kMaxStreamPrefix> seam{};  // prefix + the payload's first bytes
  std::vector<uint8_t> window;  // prefix + payload, for the seam candidates (sized at start-up)
  std::vector<ThresholdSlot> thresholds;
};

Scratch::Scratch() : impl_(std::make_unique<Impl>()) {}
Scratch::~Scratch() = default;

struct Detector::Impl {
  struct Mpm {
    hs_database_t* db = nullptr;
    std::vector<std::vector<uint32_t>> rules_of_pattern;
  };
  // App-layer buffers: one database each, over every rule whose fast pattern is there
  // (mpm[kPacket] stays empty: pkt_data patterns live in the header groups).
  std::array<Mpm, kBufferCount> mpm;
  uint64_t mpm_mask = 0;  // the buffers whose database is not empty
  // Header groups (Suricata's signature group heads): the rules that can apply to a packet of
  // one transport and direction, with one server-side port range. `packet` holds the pkt_data
  // fast patterns of its rules, `always` its rules without a usable fast pattern. Index 0 is the
  // empty group. Groups with the same rules are one group.
  struct HeaderGroup {
    Mpm packet;
    std::vector<uint32_t> always;
  };
  std::vector<HeaderGroup> groups;
  // The fast patterns of the stream rules (no single-match flag: every occurrence is reported,
  // over at most 2 x kMaxStreamPrefix bytes) and their lengths, by pattern id.
  Mpm seam;
  std::vector<uint16_t> seam_len;
  // Per header class (a transport: tcp, udp, other; or an application protocol) and direction
  // (to server, to client): the group of rules that do not depend on the ports, and per
  // destination and per source port the group of rules indexed by that port (65,536 entries,
  // or empty when no rule is).
  struct Slot {
    uint32_t any = 0;
    std::vector<uint32_t> by_dst, by_src;
  };
  // By header class, direction and address class (GroupRules): bit 0 set when the packet's
  // source is in `home`, bit 1 when its destination is.
  std::vector<std::array<std::array<Slot, 4>, 2>> slots;
  // The address set rules name most often (in practice $HOME_NET): rules from it to elsewhere
  // are not consulted for traffic inside it, and so on.
  AddressSet home;
  std::vector<RuleInfo> info;
  bool has_pass = false;  // the set has `pass` rules
  std::unordered_map<const Pcre*, hs_database_t*> pcre_db;

  ~Impl() {
    for (Mpm& m : mpm) {
      if (m.db != nullptr) hs_free_database(m.db);
    }
    for (HeaderGroup& g : groups) {
      if (g.packet.db != nullptr) hs_free_database(g.packet.db);
    }
    if (seam.db != nullptr) hs_free_database(seam.db);
    for (auto& [p, db] : pcre_db) hs_free_database(db);
  }
};

namespace {

struct ScanCtx {
  const std::vector<std::vector<uint32_t>>* rules_of_pattern;
  Scratch::Impl* scratch;
  // Scanning a context buffer: only rules that need one of `own` (the message's own buffers).
  const std::vector<RuleInfo>* info = nullptr;
  uint64_t own = 0;
};

// How a rule became a candidate: its fast pattern in the buffers given (or none needed), or its
// fast pattern across the stream prefix's end (verified over prefix + payload).
constexpr uint8_t kFromBuffers = 1;
constexpr uint8_t kFromSeam = 2;

void AddCandidate(Scratch::Impl& s, uint32_t r, uint8_t how = kFromBuffers) noexcept {
  if (s.mark[r] != s.generation) {
    s.mark[r] = s.generation;
    s.how[r] = 0;
    s.candidates.push_back(r);  // capacity reserved: every rule at most once
  }
  if ((how & kFromSeam) != 0 && (s.how[r] & kFromSeam) == 0) ++s.seam_candidates;
  s.how[r] |= how;
}

int OnPattern(unsigned int id, unsigned long long, unsigned long long, unsigned int, void* ctx) {
  auto* c = static_cast<ScanCtx*>(ctx);
  for (const uint32_t r : (*c->rules_of_pattern)[id]) {
    if (c->info == nullptr || ((*c->info)[r].needs & c->own) != 0) AddCandidate(*c->scratch, r);
  }
  return 0;
}

struct SeamCtx {
  const Detector::Impl* impl;
  Scratch::Impl* scratch;
  size_t prefix;  // bytes of the seam buffer before the payload
};

// A seam match counts when it straddles the prefix's end: one that ends in the prefix was seen
// with an earlier packet, one that starts in the payload is the payload scan's.
int OnSeam(unsigned int id, unsigned long long, unsigned long long to, unsigned int, void* ctx) {
  auto* c = static_cast<SeamCtx*>(ctx);
  const size_t len = c->impl->seam_len[id];
  if (to <= c->prefix || to - len >= c->prefix) return 0;
  for (const uint32_t r : c->impl->seam.rules_of_pattern[id]) {
    AddCandidate(*c->scratch, r, kFromSeam);
  }
  return 0;
}

struct EndsCtx {
  std::span<uint32_t> ends;
  size_t n = 0;
};

int OnPcre(unsigned int, unsigned long long, unsigned long long to, unsigned int, void* ctx) {
  auto* c = static_cast<EndsCtx*>(ctx);
  if (c->n < c->ends.size()) c->ends[c->n++] = static_cast<uint32_t>(to);
  return c->n < c->ends.size() ? 0 : 1;  // enough candidates: stop
}

class HsPcre final : public PcreRunner {
 public:
  HsPcre(const Detector::Impl& impl, hs_scratch_t* scratch) : impl_(impl), scratch_(scratch) {}
  size_t Ends(const Pcre& p, std::span<const uint8_t> data,
              std::span<uint32_t> ends) noexcept override {
    auto it = impl_.pcre_db.find(&p);
    if (it == impl_.pcre_db.end()) return kNpos;  // not compiled: the rule cannot match
    EndsCtx ctx{ends, 0};
    hs_scan(it->second, reinterpret_cast<const char*>(data.data()),
            static_cast<unsigned>(data.size()), 0, scratch_, OnPcre, &ctx);
    std::sort(ends.begin(), ends.begin() + static_cast<ptrdiff_t>(ctx.n));
    return ctx.n;
  }

 private:
  const Detector::Impl& impl_;
  hs_scratch_t* scratch_;
};

bool ProtocolMatches(Protocol r, const PacketMeta& p) noexcept {
  switch (r) {
    case Protocol::kIp:
      return true;
    case Protocol::kTcp:
    case Protocol::kTcpPkt:
    case Protocol::kTcpStream:
      return p.transport == Protocol::kTcp;
    case Protocol::kUdp:
      return p.transport == Protocol::kUdp;
    case Protocol::kIcmp:
      return p.transport == Protocol::kIcmp;
    case Protocol::kDcerpc:  // DCE-RPC over TCP and over SMB named pipes
      return (p.app == Protocol::kDcerpc || p.app == Protocol::kSmb) &&
             (p.transport == Protocol::kTcp || p.transport == Protocol::kUdp);
    default:  // application protocols run over TCP or UDP
      return p.app == r && (p.transport == Protocol::kTcp || p.transport == Protocol::kUdp);
  }
}

bool AddressMatches(const AddressSet& set, const PacketMeta& p,
                    const std::array<uint8_t, 16>& a) noexcept {
  if (set.IsAny()) return true;
  if (!p.ipv6) {
    const uint32_t host =
        (uint32_t{a[0]} << 24) | (uint32_t{a[1]} << 16) | (uint32_t{a[2]} << 8) | uint32_t{a[3]};
    return set.ContainsV4(host);
  }
  return set.ContainsV6(a);
}

bool HeaderMatches(const Rule& r, const PacketMeta& p) noexcept {
  if (!ProtocolMatches(r.protocol, p)) return false;
  auto oriented = [&](bool swap) {
    const auto& s = swap ? p.dst : p.src;
    const auto& d = swap ? p.src : p.dst;
    const uint16_t sp = swap ? p.dst_port : p.src_port;
    const uint16_t dp = swap ? p.src_port : p.dst_port;
    const bool ports = p.transport == Protocol::kTcp || p.transport == Protocol::kUdp;
    return (!ports || (r.source_ports.Contains(sp) && r.destination_ports.Contains(dp))) &&
           AddressMatches(r.source, p, s) && AddressMatches(r.destination, p, d);
  };
  return oriented(false) || (r.bidirectional && oriented(true));
}

bool FlowMatches(const Flow& f, const PacketMeta& p) noexcept {
  if (f.direction == FlowDirection::kToServer && !p.to_server) return false;
  if (f.direction == FlowDirection::kToClient && p.to_server) return false;
  if (f.state == FlowState::kEstablished && !p.established) return false;
  if (f.state == FlowState::kNotEstablished && p.established) return false;
  return true;
}

bool BitsTest(const RuleInfo& info, const FlowBits* bits) noexcept {
  for (const RuleInfo::BitTest& t : info.tests) {
    if (bits == nullptr) return false;
    bool all = true, any = false;
    for (const uint16_t b : t.bits) {
      const bool set = bits->bits.test(b);
      all &= set;
      any |= set;
    }
    const bool isset = t.any_of ? any : all;
    // isnotset with several names: none of them set (&) / not all of them set (|).
    const bool ok = t.negated ? (t.any_of ? !all : !any) : isset;
    if (!ok) return false;
  }
  return true;
}

void BitsApply(const RuleInfo& info, FlowBits* bits) noexcept {
  if (bits == nullptr) return;
  for (const RuleInfo::BitAction& a : info.actions) {
    for (const uint16_t b : a.bits) {
      switch (a.command) {
        case FlowbitsCommand::kSet:
          bits->bits.set(b);
          break;
        case FlowbitsCommand::kUnset:
          bits->bits.reset(b);
          break;
        case FlowbitsCommand::kToggle:
          bits->bits.flip(b);
          break;
        default:
          break;
      }
    }
  }
}

// Thresholds and detection filters, tracked per worker (a flow's packets all reach one worker;
// a source spread over workers by RSS is counted per worker).
bool ThresholdAllows(const Rule& r, uint32_t index, const PacketMeta& p,
                     Scratch::Impl& s) noexcept {
  if (!r.threshold && !r.detection_filter) return true;
  const Track track = r.threshold ? r.threshold->track : r.detection_filter->track;
  const uint32_t count = r.threshold ? r.threshold->count : r.detection_filter->count;
  const int64_t window =
      int64_t{r.threshold ? r.threshold->seconds : r.detection_filter->seconds} * 1000000000;
  uint64_t key = Mix(index + 1, static_cast<uint64_t>(track));
  if (track == Track::kBySrc || track == Track::kByBoth) key = Mix(key, AddrKey(p.src));
  if (track == Track::kByDst || track == Track::kByBoth) key = Mix(key, AddrKey(p.dst));
  key |= 1;  // never 0 (free)
  ThresholdSlot* slot = nullptr;
  const size_t base = key & (kThresholdSlots - 1);
  for (size_t k = 0; k < kThresholdProbe && slot == nullptr; ++k) {
    ThresholdSlot& t = s.thresholds[(base + k) & (kThresholdSlots - 1)];
    if (t.key == key || t.key == 0 || p.ts_ns - t.window_start > window) {
      if (t.key != key) t = ThresholdSlot{key, p.ts_ns, 0, false};
      slot = &t;
    }
  }
  if (slot == nullptr) {  // all probed slots live: take the first (its history is lost)
    slot = &s.thresholds[base];
    *slot = ThresholdSlot{key, p.ts_ns, 0, false};
  }
  if (p.ts_ns - slot->window_start > window) *slot = ThresholdSlot{key, p.ts_ns, 0, false};
  ++slot->count;
  if (r.detection_filter) return slot->count > count;
  switch (r.threshold->type) {
    case ThresholdType::kLimit:
      return slot->count <= count;
    case ThresholdType::kThreshold:
      if (slot->count >= count) {
        slot->count = 0;
        return true;
      }
      return false;
    case ThresholdType::kBoth:
      if (slot->count >= count && !slot->alerted) {
        slot->alerted = true;
        return true;
      }
      return false;
  }
  return true;
}

}  // namespace

namespace {

// The database cache file: "VIGILHS1", the number of databases (u32), then for each one its
// serialised length (u64, 0: none) and bytes. Written to a temporary name and renamed.
constexpr char kCacheMagic[8] = {'V', 'I', 'G', 'I', 'L', 'H', 'S', '1'};

bool LoadCache(const std::string& path, std::vector<hs_database_t*>* dbs) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  bool ok = true;
  char magic[8];
  uint32_t count = 0;
  ok = std::fread(magic, 1, 8, f) == 8 && std::memcmp(magic, kCacheMagic, 8) == 0 &&
       std::fread(&count, 4, 1, f) == 1 && count == dbs->size();
  std::string bytes;
  for (size_t i = 0; ok && i < dbs->size(); ++i) {
    uint64_t len = 0;
    ok = std::fread(&len, 8, 1, f) == 1 && len < (uint64_t{1} << 32);
    if (!ok || len == 0) continue;
    bytes.resize(len);
    ok = std::fread(bytes.data(), 1, len, f) == len &&
         hs_deserialize_database(bytes.data(), len, &(*dbs)[i]) == HS_SUCCESS;
  }
  std::fclose(f);
  if (!ok) {
    for (hs_database_t*& db : *dbs) {
      if (db != nullptr) hs_free_database(db);
      db = nullptr;
    }
  }
  return ok;
}

void SaveCache(const std::string& path, const std::vector<hs_database_t*>& dbs) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return;  // the cache is an optimisation: no cache, no error
  const auto count = static_cast<uint32_t>(dbs.size());
  bool ok = std::fwrite(kCacheMagic, 1, 8, f) == 8 && std::fwrite(&count, 4, 1, f) == 1;
  for (const hs_database_t* db : dbs) {
    char* bytes = nullptr;
    size_t len = 0;
    if (db != nullptr && hs_serialize_database(db, &bytes, &len) != HS_SUCCESS) ok = false;
    const uint64_t len64 = len;
    ok = ok && std::fwrite(&len64, 8, 1, f) == 1 &&
         (len == 0 || std::fwrite(bytes, 1, len, f) == len);  // no database: length 0 only
    std::free(bytes);
  }
  ok = std::fclose(f) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) std::remove(tmp.c_str());
}

// ---------------------------------------------------------------------------------------------
// Fast pattern choice

// Patterns shorter than this are not worth a database entry: they occur in most payloads, so
// their rules are checked on every packet of their header group instead.
constexpr size_t kMinFastPattern = 3;

// How selective a pattern is likely to be in traffic: each distinct byte counts by how rare its
// kind is (0x00, 0xff, 0x01 and space fill padding and binary headers; letters and digits fill
// text, and case-insensitive letters match twice as often; other bytes are the rarest), a
// repeated byte adds little. Longer is better only as far as it adds distinct bytes.
int PatternScore(std::string_view bytes, bool nocase) noexcept {
  std::bitset<256> seen;
  int score = 0;
  for (const char ch : bytes) {
    auto c = static_cast<uint8_t>(ch);
    if (nocase) c = Lower(c);
    if (seen.test(c)) {
      score += 1;
      continue;
    }
    seen.set(c);
    if (c == 0x00 || c == 0xff || c == 0x01 || c == ' ') {
      score += 2;
    } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
      score += nocase ? 4 : 6;
    } else if (c > 0x20 && c < 0x7f) {
      score += 8;
    } else {
      score += 12;
    }
  }
  return score;
}

// The part of a content the database looks for: any substring of a content the rule requires
// is a valid prefilter (the verifier checks the whole rule). Runs of two or more zero bytes make
// the literal matcher confirm at every position of the zero-filled payloads common in SMB and
// DCE/RPC, so the best piece between such runs is used when it has at least 4 bytes, and zero
// bytes are trimmed from both ends while 4 bytes remain.
std::string PatternPiece(std::string bytes, bool nocase) {
  auto zero = [&bytes](size_t i) { return bytes[i] == '\0'; };
  std::string best;
  int best_score = -1;
  for (size_t i = 0; i < bytes.size();) {
    size_t j = i;
    while (j < bytes.size() && !(zero(j) && j + 1 < bytes.size() && zero(j + 1))) ++j;
    if (j - i >= 4 && j - i < bytes.size()) {
      const int score = PatternScore(std::string_view(bytes).substr(i, j - i), nocase);
      if (score > best_score) {
        best_score = score;
        best = bytes.substr(i, j - i);
      }
    }
    while (j < bytes.size() && zero(j)) ++j;
    i = j;
  }
  if (best_score >= 0) bytes = std::move(best);
  size_t lo = 0, hi = bytes.size();
  while (hi - lo > 4 && zero(lo)) ++lo;
  while (hi - lo > 4 && zero(hi - 1)) --hi;
  return bytes.substr(lo, hi - lo);
}

struct FastPattern {
  Buffer buffer = Buffer::kPacket;
  std::string bytes;
  bool nocase = false;
};

// The rule's fast pattern: its `fast_pattern` content (the `fast_pattern:o,l` part when given),
// else its most selective non-negated content (PatternScore); none when no content gives a piece
// of kMinFastPattern bytes (an explicit fast_pattern that short gives way to a longer content).
std::optional<FastPattern> ChooseFastPattern(const Rule& r) {
  std::optional<FastPattern> best;
  int best_score = -1;
  bool best_explicit = false;
  for (const Match& m : r.matches) {
    const auto* c = std::get_if<Content>(&m);
    if (c == nullptr || c->negated || c->bytes.empty()) continue;
    std::string bytes = c->bytes;
    if (c->fast_pattern && c->fast_pattern_chop) {
      const auto [off, len] = *c->fast_pattern_chop;
      if (off < bytes.size()) bytes = bytes.substr(off, len);
    }
    bytes = PatternPiece(std::move(bytes), c->nocase);
    if (bytes.size() < kMinFastPattern) continue;
    const int score = PatternScore(bytes, c->nocase);
    const bool is_explicit = c->fast_pattern;
    if (best && (best_explicit && !is_explicit)) continue;
    if (best && best_explicit == is_explicit && score <= best_score) continue;
    best = FastPattern{c->buffer, std::move(bytes), c->nocase};
    best_score = score;
    best_explicit = is_explicit;
  }
  return best;
}

// Whether a rule with a pkt_data fast pattern may also be matched over the stream (prefix +
// payload): it can apply to TCP, is not bound to single packets (tcp-pkt, flow:no_stream, dsize),
// looks at pkt_data only, and places nothing at an absolute position (offset, depth, absolute
// isdataat / byte_test / byte_jump, a pcre anchored at the start), which over a window that starts
// somewhere in the stream would mean something else.
bool StreamRule(const Rule& r) {
  if (r.protocol == Protocol::kUdp || r.protocol == Protocol::kIcmp ||
      r.protocol == Protocol::kTcpPkt || r.flow.stream == FlowStream::kNoStream || r.dsize) {
    return false;
  }
  for (const Match& m : r.matches) {
    const bool ok = std::visit(
        [](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          if (x.buffer != Buffer::kPacket) return false;
          if constexpr (std::is_same_v<T, Content>) {
            return x.relative() || (!x.offset && !x.depth);
          } else if constexpr (std::is_same_v<T, Pcre>) {
            return x.relative ||
                   (!x.expression.starts_with('^') && !x.expression.starts_with("\\A"));
          } else if constexpr (std::is_same_v<T, IsDataAt>) {
            return x.relative;
          } else if constexpr (std::is_same_v<T, ByteTest>) {
            return x.read.relative;
          } else {
            return x.read.relative && !x.from_beginning;
          }
        },
        m);
    if (!ok) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Header groups

// Header classes: 0 TCP, 1 UDP, 2 any other transport, then one per application protocol
// (kAppClass + the protocol's value). A rule on a transport (or `ip`: all three) is in its
// transport classes; a rule on an application protocol only in that protocol's class, which a
// packet consults only once its flow is identified as that protocol.
constexpr size_t kAppClass = 3;
constexpr size_t kClassCount = kAppClass + static_cast<size_t>(Protocol::kRfb) + 1;

// The classes of a rule, as a list of at most 3.
size_t RuleClasses(Protocol p, size_t out[3]) noexcept {
  switch (p) {
    case Protocol::kIp:
      out[0] = 0, out[1] = 1, out[2] = 2;
      return 3;
    case Protocol::kTcp:
    case Protocol::kTcpPkt:
    case Protocol::kTcpStream:
      out[0] = 0;
      return 1;
    case Protocol::kUdp:
      out[0] = 1;
      return 1;
    case Protocol::kIcmp:
      out[0] = 2;
      return 1;
    default:
      out[0] = kAppClass + static_cast<size_t>(p);
      return 1;
  }
}

size_t TransportClass(Protocol transport) noexcept {
  return transport == Protocol::kTcp ? 0 : transport == Protocol::kUdp ? 1 : 2;
}

// A port set worth indexing by: not `any` and at most a sixteenth of the port space (a rule on
// `1024:` or `!80` is indexed as port-independent).
constexpr uint32_t kIndexedPortsMax = 4096;
bool Narrow(const PortSet& set) {
  if (set.IsAny()) return false;
  uint32_t n = 0;
  for (const auto& [lo, hi] : set.ranges) n += uint32_t{hi} - lo + 1;
  return n <= kIndexedPortsMax;
}

// Whether two sets of ranges share a value.
template <typename T>
bool Intersects(const Ranges<T>& a, const Ranges<T>& b) noexcept {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (a[i].second < b[j].first) {
      ++i;
    } else if (b[j].second < a[i].first) {
      ++j;
    } else {
      return true;
    }
  }
  return false;
}

// Whether `a` has a value outside `b`.
template <typename T>
bool Escapes(const Ranges<T>& a, const Ranges<T>& b) noexcept {
  for (const auto& [lo, hi] : a) {
    // [lo, hi] must lie within one range of b (b's ranges are disjoint and not adjacent).
    auto it = std::upper_bound(b.begin(), b.end(), lo,
                               [](T v, const std::pair<T, T>& x) { return v < x.first; });
    if (it == b.begin()) return true;
    --it;
    if (lo < it->first || hi > it->second) return true;
  }
  return false;
}

// Which address classes a rule's address set can match: bit 0 outside `home`, bit 1 inside.
unsigned AddressSides(const AddressSet& set, const AddressSet& home) noexcept {
  unsigned sides = 0;
  if (Intersects(set.v4, home.v4) || Intersects(set.v6, home.v6)) sides |= 2;
  if (Escapes(set.v4, home.v4) || Escapes(set.v6, home.v6)) sides |= 1;
  return sides;
}

// The non-`any` address set rules name most often.
AddressSet MostNamedAddressSet(const std::vector<Rule>& rules) {
  std::map<std::pair<Ranges<uint32_t>, Ranges<Uint128>>, size_t> count;
  for (const Rule& r : rules) {
    for (const AddressSet* a : {&r.source, &r.destination}) {
      if (!a->IsAny()) ++count[{a->v4, a->v6}];
    }
  }
  AddressSet home;
  size_t best = 0;
  for (const auto& [ranges, n] : count) {
    if (n > best) {
      best = n;
      home.v4 = ranges.first;
      home.v6 = ranges.second;
    }
  }
  return home;
}

// Builds the header groups: `rules` by slot, side and port into distinct rule lists (ascending
// rule indexes), `slots` pointing at them by index into `lists` (0: the empty list).
void GroupRules(const std::vector<Rule>& rules, const AddressSet& home,
                std::vector<std::vector<uint32_t>>* lists,
                std::vector<std::array<std::array<Detector::Impl::Slot, 4>, 2>>* slots) {
  std::map<std::vector<uint32_t>, uint32_t> index_of;
  lists->assign(1, {});
  index_of.emplace(std::vector<uint32_t>{}, 0);
  auto intern = [&](std::vector<uint32_t> list) {
    auto [it, fresh] = index_of.emplace(std::move(list), static_cast<uint32_t>(lists->size()));
    if (fresh) lists->push_back(it->first);
    return it->second;
  };
  // Rules indexed by one side's ports: the port space cut at every range boundary, each piece
  // mapped to the list of rules whose set holds it.
  auto port_map = [&](const std::vector<std::pair<uint32_t, const PortSet*>>& members) {
    std::vector<uint32_t> map;
    if (members.empty()) return map;
    std::vector<uint32_t> cuts{0, 65536};
    for (const auto& [r, set] : members) {
      for (const auto& [lo, hi] : set->ranges) {
        cuts.push_back(lo);
        cuts.push_back(uint32_t{hi} + 1);
      }
    }
    std::sort(cuts.begin(), cuts.end());
    cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
    map.assign(65536, 0);
    for (size_t k = 0; k + 1 < cuts.size(); ++k) {
      const auto port = static_cast<uint16_t>(cuts[k]);
      std::vector<uint32_t> list;
      for (const auto& [r, set] : members) {
        if (set->Contains(port)) list.push_back(r);
      }
      const uint32_t g = intern(std::move(list));
      std::fill(map.begin() + cuts[k], map.begin() + cuts[k + 1], g);
    }
    return map;
  };
  // Rules by class, in rule order, and the address classes each can match (bit n: address
  // class n; `<>` either way round).
  std::vector<std::vector<uint32_t>> of_class(kClassCount);
  std::vector<unsigned> address_classes(rules.size());
  for (uint32_t i = 0; i < rules.size(); ++i) {
    const Rule& r = rules[i];
    size_t classes[3];
    const size_t n = RuleClasses(r.protocol, classes);
    for (size_t k = 0; k < n; ++k) of_class[classes[k]].push_back(i);
    const unsigned src = AddressSides(r.source, home), dst = AddressSides(r.destination, home);
    for (unsigned ac = 0; ac < 4; ++ac) {
      const unsigned s_side = (ac & 1) != 0 ? 2 : 1, d_side = (ac & 2) != 0 ? 2 : 1;
      if (((src & s_side) != 0 && (dst & d_side) != 0) ||
          (r.bidirectional && (dst & s_side) != 0 && (src & d_side) != 0)) {
        address_classes[i] |= 1u << ac;
      }
    }
  }
  slots->assign(kClassCount, {});
  for (size_t t = 0; t < kClassCount; ++t) {
    for (size_t d = 0; d < 2; ++d) {
      for (size_t ac = 0; ac < 4; ++ac) {
        std::vector<uint32_t> any;
        std::vector<std::pair<uint32_t, const PortSet*>> by_dst, by_src;
        for (const uint32_t i : of_class[t]) {
          const Rule& r = rules[i];
          if (r.flow.direction == FlowDirection::kToServer && d != 0) continue;
          if (r.flow.direction == FlowDirection::kToClient && d != 1) continue;
          if ((address_classes[i] & (1u << ac)) == 0) continue;
          // Ports only count for TCP and UDP (HeaderMatches: an application protocol's packets
          // are TCP or UDP), and `<>` may match either way.
          const bool by_port = t != 2 && !r.bidirectional;
          if (by_port && Narrow(r.destination_ports)) {
            by_dst.emplace_back(i, &r.destination_ports);
          } else if (by_port && Narrow(r.source_ports)) {
            by_src.emplace_back(i, &r.source_ports);
          } else {
            any.push_back(i);
          }
        }
        Detector::Impl::Slot& slot = (*slots)[t][d][ac];
        slot.any = intern(std::move(any));
        slot.by_dst = port_map(by_dst);
        slot.by_src = port_map(by_src);
      }
    }
  }
}

}  // namespace

Detector::Detector() : impl_(std::make_unique<Impl>()) {}
Detector::~Detector() = default;

std::shared_ptr<const Detector> Detector::Build(std::vector<Rule> rules, std::string* error,
                                                DetectorStats* stats_out,
                                                const std::string& cache_dir) {
  const auto started = std::chrono::steady_clock::now();
  std::shared_ptr<Detector> d(new Detector());
  DetectorStats& st = d->stats_;
  Impl& im = *d->impl_;

  // Flowbit names to bit numbers; rules beyond the limit are dropped.
  std::map<std::string, uint16_t, std::less<>> bit_of;
  std::vector<Rule> kept;
  kept.reserve(rules.size());
  for (Rule& r : rules) {
    bool ok = true;
    for (const Flowbits& f : r.flowbits) {
      for (const std::string& n : f.names) {
        if (bit_of.count(n) == 0 && bit_of.size() >= kMaxFlowbits) ok = false;
        if (ok && bit_of.count(n) == 0) bit_of.emplace(n, static_cast<uint16_t>(bit_of.size()));
      }
    }
    if (!ok) {
      st.dropped.emplace_back(
          r.sid, "flowbits: more than " + std::to_string(kMaxFlowbits) + " names in the set");
      continue;
    }
    kept.push_back(std::move(r));
  }
  d->rules_ = std::move(kept);
  st.flowbits = bit_of.size();

  // Fast patterns: app-layer buffers get one database each; pkt_data patterns go to the header
  // groups. Each database input is its distinct (bytes, nocase) patterns and the rules of each.
  struct PatternKey {
    std::string bytes;
    bool nocase;
    bool operator<(const PatternKey& o) const {
      return std::tie(bytes, nocase) < std::tie(o.bytes, o.nocase);
    }
  };
  using PatternMap = std::map<PatternKey, std::vector<uint32_t>>;
  std::vector<std::optional<FastPattern>> fast(d->rules_.size());
  std::array<PatternMap, kBufferCount> patterns;
  PatternMap seam_patterns;
  im.info.resize(d->rules_.size());
  for (uint32_t i = 0; i < d->rules_.size(); ++i) {
    const Rule& r = d->rules_[i];
    RuleInfo& info = im.info[i];
    info.pass = r.action == Action::kPass;
    im.has_pass |= info.pass;
    for (const Match& m : r.matches) {
      const Buffer b = std::visit([](const auto& x) { return x.buffer; }, m);
      info.needs |= uint64_t{1} << static_cast<size_t>(b);
      auto g = std::find_if(info.groups.begin(), info.groups.end(),
                            [b](const Group& x) { return x.buffer == b; });
      if (g == info.groups.end()) g = info.groups.insert(info.groups.end(), Group{b, {}});
      g->matches.push_back(&m);
    }
    for (const Flowbits& f : r.flowbits) {
      std::vector<uint16_t> bits;
      for (const std::string& n : f.names) bits.push_back(bit_of.at(n));
      if (f.command == FlowbitsCommand::kIsSet || f.command == FlowbitsCommand::kIsNotSet) {
        info.tests.push_back({bits, f.any_of, f.command == FlowbitsCommand::kIsNotSet});
      } else {
        info.actions.push_back({f.command, bits});
      }
    }
    // dcerpc.iface / dcerpc.opnum are conditions on a DCE/RPC request, which comes with the
    // dcerpc.stub_data buffer: the rule is a message rule.
    if (r.dcerpc_iface || !r.dcerpc_opnums.empty()) {
      info.needs |= uint64_t{1} << static_cast<size_t>(Buffer::kDcerpcStubData);
    }
    if (r.dcerpc_iface) info.dcerpc_uuid = UuidWire(r.dcerpc_iface->uuid);
    // The Kerberos keywords are conditions on a message, which comes with krb5.sname.
    if (r.krb5_ticket_encryption || r.krb5_msg_type || r.krb5_err_code) {
      info.needs |= uint64_t{1} << static_cast<size_t>(Buffer::kKrb5Sname);
    }
    if (r.urilen) {
      info.needs |=
          uint64_t{1} << static_cast<size_t>(r.urilen_raw ? Buffer::kHttpRawUri : Buffer::kHttpUri);
    }
    fast[i] = ChooseFastPattern(r);
    if (!fast[i]) {
      ++st.always;
      continue;
    }
    ++st.prefiltered;
    if (fast[i]->buffer != Buffer::kPacket) {
      patterns[static_cast<size_t>(fast[i]->buffer)][{fast[i]->bytes, fast[i]->nocase}].push_back(
          i);
    } else if (info.needs == uint64_t{1} << static_cast<size_t>(Buffer::kPacket) && StreamRule(r)) {
      info.stream = true;
      seam_patterns[{fast[i]->bytes, fast[i]->nocase}].push_back(i);
      ++st.stream_rules;
    }
  }
  // The header groups: rules with an app-layer fast pattern are found through that buffer's
  // database, so a group keeps the others (pkt_data patterns, and the rules with none).
  std::vector<std::vector<uint32_t>> lists;
  im.home = MostNamedAddressSet(d->rules_);
  GroupRules(d->rules_, im.home, &lists, &im.slots);
  std::vector<PatternMap> group_patterns(lists.size());
  im.groups.resize(lists.size());
  for (size_t g = 0; g < lists.size(); ++g) {
    for (const uint32_t i : lists[g]) {
      if (!fast[i]) {
        im.groups[g].always.push_back(i);
      } else if (fast[i]->buffer == Buffer::kPacket) {
        group_patterns[g][{fast[i]->bytes, fast[i]->nocase}].push_back(i);
      }
    }
  }
  st.header_groups = lists.size() - 1;

  // Every database's inputs, in a fixed order: the fast patterns of each buffer, of each header
  // group, the seam's, then each pcre.
  std::vector<const PatternMap*> inputs;
  inputs.reserve(patterns.size() + group_patterns.size() + 1);
  for (const PatternMap& m : patterns) inputs.push_back(&m);
  for (const PatternMap& m : group_patterns) inputs.push_back(&m);
  const size_t seam_input = inputs.size();
  inputs.push_back(&seam_patterns);
  std::vector<const Pcre*> pcres;
  std::vector<uint32_t> pcre_rule;
  for (uint32_t i = 0; i < d->rules_.size(); ++i) {
    for (const Match& m : d->rules_[i].matches) {
      if (const auto* p = std::get_if<Pcre>(&m)) {
        pcres.push_back(p);
        pcre_rule.push_back(i);
      }
    }
  }
  // The cache key: the Hyperscan version and every input (two independent 64-bit hashes).
  uint64_t h1 = 0xcbf29ce484222325ull, h2 = 0x84222325cbf29ce4ull;
  auto feed = [&](std::string_view bytes) {
    h2 = Mix(h2, bytes.size());
    for (const char c : bytes) {
      h1 = (h1 ^ static_cast<uint8_t>(c)) * 0x100000001b3ull;
      h2 = Mix(h2, static_cast<uint8_t>(c));
    }
    h1 = (h1 ^ 0xff) * 0x100000001b3ull;
  };
  feed(hs_version());
  for (size_t k = 0; k < inputs.size(); ++k) {
    feed(std::to_string(k) + (k == seam_input ? "s:" : ":") + std::to_string(inputs[k]->size()));
    for (const auto& [key, rule_ids] : *inputs[k]) {
      feed(key.bytes);
      feed(key.nocase ? "i" : "c");
    }
  }
  for (const Pcre* p : pcres) {
    feed(p->expression);
    feed(std::to_string(p->hs_flags));
  }
  char key_hex[40];
  std::snprintf(key_hex, sizeof key_hex, "%016llx%016llx", static_cast<unsigned long long>(h1),
                static_cast<unsigned long long>(h2));
  const std::string cache_path = cache_dir.empty() ? "" : cache_dir + "/rules-" + key_hex + ".hsdb";

  // Databases in that order (nullptr: no patterns there / a pcre Hyperscan refused).
  std::vector<hs_database_t*> dbs(inputs.size() + pcres.size(), nullptr);
  auto free_dbs = [&dbs] {
    for (hs_database_t*& db : dbs) {
      if (db != nullptr) hs_free_database(db);
      db = nullptr;
    }
  };
  st.from_cache = !cache_path.empty() && LoadCache(cache_path, &dbs);
  if (!st.from_cache && !cache_path.empty()) {
    // A cache directory that does not exist yet is made (a failure only costs the next start
    // its compile time, as a file that cannot be written does).
    std::error_code ec;
    std::filesystem::create_directories(cache_dir, ec);
  }
  if (!st.from_cache) {
    free_dbs();
    for (size_t k = 0; k < inputs.size(); ++k) {
      if (inputs[k]->empty()) continue;
      std::vector<const char*> exprs;
      std::vector<size_t> lens;
      std::vector<unsigned> flags, ids;
      for (const auto& [key, rule_ids] : *inputs[k]) {
        ids.push_back(static_cast<unsigned>(exprs.size()));
        exprs.push_back(key.bytes.data());
        lens.push_back(key.bytes.size());
        // The seam reports every occurrence: the first may end inside the prefix.
        flags.push_back((k == seam_input ? 0u : HS_FLAG_SINGLEMATCH) |
                        (key.nocase ? HS_FLAG_CASELESS : 0u));
      }
      hs_compile_error_t* ce = nullptr;
      if (hs_compile_lit_multi(exprs.data(), flags.data(), ids.data(), lens.data(),
                               static_cast<unsigned>(exprs.size()), HS_MODE_BLOCK, nullptr, &dbs[k],
                               &ce) != HS_SUCCESS) {
        *error = std::string("fast patterns of ") +
                 (k < kBufferCount ? BufferName(static_cast<Buffer>(k))
                  : k == seam_input
                      ? "pkt_data (the stream seam)"
                      : "pkt_data (header group " + std::to_string(k - kBufferCount) + ")") +
                 ": " + (ce != nullptr ? ce->message : "compile failed");
        hs_free_compile_error(ce);
        free_dbs();
        return nullptr;
      }
    }
    // One block-mode database per pcre, for verification (a rule whose pcre Hyperscan refuses
    // here, e.g. over its size limits, never matches and is listed).
    for (size_t k = 0; k < pcres.size(); ++k) {
      hs_compile_error_t* ce = nullptr;
      if (hs_compile(pcres[k]->expression.c_str(), pcres[k]->hs_flags, HS_MODE_BLOCK, nullptr,
                     &dbs[inputs.size() + k], &ce) != HS_SUCCESS) {
        hs_free_compile_error(ce);
        dbs[inputs.size() + k] = nullptr;
      }
    }
    if (!cache_path.empty()) SaveCache(cache_path, dbs);
  }
  std::set<PatternKey> distinct;
  for (size_t k = 0; k < inputs.size(); ++k) {
    Impl::Mpm& m = k < kBufferCount  ? im.mpm[k]
                   : k == seam_input ? im.seam
                                     : im.groups[k - kBufferCount].packet;
    m.db = dbs[k];
    if (m.db == nullptr) continue;
    if (k < kBufferCount) im.mpm_mask |= uint64_t{1} << k;
    for (const auto& [key, rule_ids] : *inputs[k]) {
      m.rules_of_pattern.push_back(rule_ids);
      distinct.insert(key);
      if (k == seam_input) im.seam_len.push_back(static_cast<uint16_t>(key.bytes.size()));
    }
    ++st.databases;
    size_t bytes = 0;
    if (hs_database_size(m.db, &bytes) == HS_SUCCESS) st.database_bytes += bytes;
  }
  st.patterns = distinct.size();
  for (size_t k = 0; k < pcres.size(); ++k) {
    hs_database_t* db = dbs[inputs.size() + k];
    if (db == nullptr) {
      st.dropped.emplace_back(d->rules_[pcre_rule[k]].sid,
                              "pcre refused by Hyperscan at compile: " + pcres[k]->source);
      continue;
    }
    im.pcre_db.emplace(pcres[k], db);
    size_t bytes = 0;
    if (hs_database_size(db, &bytes) == HS_SUCCESS) st.database_bytes += bytes;
  }
  st.pcres = im.pcre_db.size();
  st.rules = d->rules_.size();
  st.build_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  if (stats_out != nullptr) *stats_out = st;
  return d;
}

std::unique_ptr<Scratch> Detector::NewScratch(std::string* error) const {
  auto scratch = std::make_unique<Scratch>();
  Scratch::Impl* s = scratch->impl_.get();
  auto grow = [&](const hs_database_t* db) {
    if (hs_alloc_scratch(db, &s->hs) != HS_SUCCESS) {
      *error = "hs_alloc_scratch failed";
      return false;
    }
    return true;
  };
  for (const Impl::Mpm& m : impl_->mpm) {
    if (m.db != nullptr && !grow(m.db)) return nullptr;
  }
  for (const Impl::HeaderGroup& g : impl_->groups) {
    if (g.packet.db != nullptr && !grow(g.packet.db)) return nullptr;
  }
  if (impl_->seam.db != nullptr && !grow(impl_->seam.db)) return nullptr;
  for (const auto& [p, db] : impl_->pcre_db) {
    if (!grow(db)) return nullptr;
  }
  s->mark.assign(rules_.size(), 0);
  s->how.assign(rules_.size(), 0);
  s->candidates.reserve(rules_.size());
  if (impl_->seam.db != nullptr) s->window.resize(kMaxStreamPrefix + 65535);
  s->thresholds.assign(kThresholdSlots, ThresholdSlot{});
  return scratch;
}

size_t Detector::Inspect(const PacketMeta& p, const Buffers& b, FlowBits* bits, Scratch& scratch,
                         std::span<uint32_t> alerts) const noexcept {
  const Impl& im = *impl_;
  Scratch::Impl& s = *scratch.impl_;
  if (s.mark.size() != rules_.size()) return 0;  // a scratch of another detector
  if (++s.generation == 0) {                     // wrapped: forget every mark
    std::fill(s.mark.begin(), s.mark.end(), 0);
    s.generation = 1;
  }
  s.candidates.clear();
  s.seam_candidates = 0;
  // The header groups that can hold rules for this packet: of its transport's class and, once
  // the flow's protocol is known, of that protocol's (and DCE/RPC's over SMB), the
  // port-independent group and those of its destination and source ports.
  const bool has_packet = b.Has(Buffer::kPacket);
  const std::span<const uint8_t> packet = b.Get(Buffer::kPacket);
  const uint64_t own = b.mask() & ~b.context_mask();  // the message's own buffers
  size_t classes[3];
  size_t nclasses = 0;
  classes[nclasses++] = TransportClass(p.transport);
  if (p.app != Protocol::kIp && classes[0] != 2 &&
      static_cast<size_t>(p.app) + kAppClass < kClassCount) {
    classes[nclasses++] = kAppClass + static_cast<size_t>(p.app);
    if (p.app == Protocol::kSmb)
      classes[nclasses++] = kAppClass + static_cast<size_t>(Protocol::kDcerpc);
  }
  const size_t address_class =
      (AddressMatches(im.home, p, p.src) ? 1 : 0) | (AddressMatches(im.home, p, p.dst) ? 2 : 0);
  for (size_t c = 0; c < nclasses; ++c) {
    const Impl::Slot& slot = im.slots[classes[c]][p.to_server ? 0 : 1][address_class];
    const uint32_t heads[3] = {slot.any, slot.by_dst.empty() ? 0 : slot.by_dst[p.dst_port],
                               slot.by_src.empty() ? 0 : slot.by_src[p.src_port]};
    for (const uint32_t head : heads) {
      if (head == 0) continue;
      const Impl::HeaderGroup& g = im.groups[head];
      if (g.packet.db != nullptr && has_packet) {
        ScanCtx ctx{&g.packet.rules_of_pattern, &s};
        hs_scan(g.packet.db, reinterpret_cast<const char*>(packet.data()),
                static_cast<unsigned>(packet.size()), 0, s.hs, OnPattern, &ctx);
      }
      // A transaction (no packet payload given) consults only rules that name one of its
      // buffers: the others were, or will be, inspected on the packets themselves.
      for (const uint32_t r : g.always) {
        const uint64_t needs = im.info[r].needs;
        if ((needs & ~b.mask()) == 0 && (has_packet || (needs & own) != 0)) AddCandidate(s, r);
      }
    }
  }
  // App-layer buffers: one database each, for the buffers present that have one.
  for (uint64_t todo = b.mask() & im.mpm_mask; todo != 0; todo &= todo - 1) {
    const auto i = static_cast<size_t>(__builtin_ctzll(todo));
    const Impl::Mpm& m = im.mpm[i];
    const std::span<const uint8_t> data = b.Get(static_cast<Buffer>(i));
    ScanCtx ctx{&m.rules_of_pattern, &s};
    if ((b.context_mask() >> i) & 1) {
      ctx.info = &im.info;
      ctx.own = own;
    }
    hs_scan(m.db, reinterpret_cast<const char*>(data.data()), static_cast<unsigned>(data.size()), 0,
            s.hs, OnPattern, &ctx);
  }
  // Across the segment boundary: the stream rules' fast patterns over the prefix and the payload's
  // first bytes (every pattern that fits in the prefix's length + 1 is found when it straddles).
  const std::span<const uint8_t> prefix = b.stream_prefix();
  std::optional<Buffers> stream_buffers;  // not built (800 bytes) unless needed
  if (has_packet && p.transport == Protocol::kTcp && !prefix.empty() &&
      prefix.size() <= kMaxStreamPrefix && im.seam.db != nullptr && !s.window.empty() &&
      prefix.size() + packet.size() <= s.window.size()) {
    const size_t head = std::min(packet.size(), kMaxStreamPrefix);
    std::memcpy(s.seam.data(), prefix.data(), prefix.size());
    std::memcpy(s.seam.data() + prefix.size(), packet.data(), head);
    SeamCtx ctx{&im, &s, prefix.size()};
    hs_scan(im.seam.db, reinterpret_cast<const char*>(s.seam.data()),
            static_cast<unsigned>(prefix.size() + head), 0, s.hs, OnSeam, &ctx);
    if (s.seam_candidates > 0) {
      std::memcpy(s.window.data(), prefix.data(), prefix.size());
      std::memcpy(s.window.data() + prefix.size(), packet.data(), packet.size());
      stream_buffers.emplace(b);
      stream_buffers->Set(Buffer::kPacket,
                          std::span<const uint8_t>(s.window.data(), prefix.size() + packet.size()));
    }
  }
  std::sort(s.candidates.begin(), s.candidates.end());
  // A candidate through the buffers is verified on them; one through the seam over prefix +
  // payload (a rule that is both and matches the payload alone is not verified twice).
  auto verify = [&](uint32_t r) {
    return ((s.how[r] & kFromBuffers) != 0 && Verify(r, p, b, bits, s)) ||
           ((s.how[r] & kFromSeam) != 0 && Verify(r, p, *stream_buffers, bits, s));
  };

  // Suricata's action order (pass, then drop, reject and alert in rule order): a `pass` rule
  // that matches ends the packet's inspection, with no alert (its flowbit actions still apply).
  if (im.has_pass) {
    for (const uint32_t r : s.candidates) {
      if (!im.info[r].pass || !verify(r)) continue;
      BitsApply(im.info[r], bits);
      if (ThresholdAllows(rules_[r], r, p, s)) return 0;
    }
  }
  size_t n = 0;
  for (const uint32_t r : s.candidates) {
    const Rule& rule = rules_[r];
    if (im.info[r].pass || !verify(r)) continue;
    BitsApply(im.info[r], bits);
    if (!ThresholdAllows(rule, r, p, s)) continue;
    if (!rule.noalert && n < alerts.size()) alerts[n++] = r;
  }
  return n;
}

namespace {

bool DcerpcMatches(const Rule& rule, const RuleInfo& info, const DcerpcInfo* d) noexcept {
  if (!rule.dcerpc_iface && rule.dcerpc_opnums.empty()) return true;
  if (d == nullptr) return false;
  if (const auto& i = rule.dcerpc_iface) {
    if (!d->has_iface || d->uuid != info.dcerpc_uuid) return false;
    switch (i->op) {
      case DcerpcIface::VersionOp::kNone:
        break;
      case DcerpcIface::VersionOp::kLt:
        if (!(d->version < i->version)) return false;
        break;
      case DcerpcIface::VersionOp::kGt:
        if (!(d->version > i->version)) return false;
        break;
      case DcerpcIface::VersionOp::kEq:
        if (d->version != i->version) return false;
        break;
      case DcerpcIface::VersionOp::kNe:
        if (d->version == i->version) return false;
        break;
    }
  }
  if (!rule.dcerpc_opnums.empty()) {
    bool in = false;
    for (const auto& [lo, hi] : rule.dcerpc_opnums) in |= d->opnum >= lo && d->opnum <= hi;
    if (!in) return false;
  }
  return true;
}

bool Krb5Matches(const Rule& rule, const Krb5Info* k) noexcept {
  if (!rule.krb5_ticket_encryption && !rule.krb5_msg_type && !rule.krb5_err_code) return true;
  if (k == nullptr) return false;
  if (rule.krb5_msg_type && k->msg_type != *rule.krb5_msg_type) return false;
  if (rule.krb5_err_code && k->error_code != *rule.krb5_err_code) return false;
  if (const auto& e = rule.krb5_ticket_encryption) {
    if (k->ticket_etype == -1) return false;
    if (e->weak) {
      if (Krb5EtypeIsWeak(k->ticket_etype) == e->negated) return false;
    } else if (std::find(e->etypes.begin(), e->etypes.end(), k->ticket_etype) == e->etypes.end()) {
      return false;
    }
  }
  return true;
}

}  // namespace

bool Detector::Verify(uint32_t r, const PacketMeta& p, const Buffers& b, const FlowBits* bits,
                      Scratch::Impl& s) const noexcept {
  const Impl& im = *impl_;
  const Rule& rule = rules_[r];
  const RuleInfo& info = im.info[r];
  if ((info.needs & ~b.mask()) != 0) return false;
  if (!FlowMatches(rule.flow, p)) return false;
  if (rule.dsize && !rule.dsize->Matches(p.payload_size)) return false;
  if (rule.urilen && !rule.urilen->Matches(static_cast<uint32_t>(
                         b.Get(rule.urilen_raw ? Buffer::kHttpRawUri : Buffer::kHttpUri).size()))) {
    return false;
  }
  if (!HeaderMatches(rule, p)) return false;
  if (!DcerpcMatches(rule, info, b.dcerpc())) return false;
  if (!Krb5Matches(rule, b.krb5())) return false;
  if (!BitsTest(info, bits)) return false;
  HsPcre pcre(im, s.hs);
  for (const Group& g : info.groups) {
    int budget = kVerifyBudget;
    const std::span<const std::span<const uint8_t>> items = b.Items(g.buffer);
    if (items.empty()) {
      if (!VerifyBuffer(g.matches, b.Get(g.buffer), &pcre, &budget)) return false;
      continue;
    }
    bool any = false;  // a multi-buffer: one instance must hold the group (budget shared)
    for (size_t i = 0; i < items.size() && !any; ++i) {
      any = VerifyBuffer(g.matches, items[i], &pcre, &budget);
    }
    if (!any) return false;
  }
  return true;
}

bool Detector::Matches(uint32_t rule, const PacketMeta& p, const Buffers& b, const FlowBits* bits,
                       Scratch& scratch) const noexcept {
  if (rule >= rules_.size() || scratch.impl_->mark.size() != rules_.size()) return false;
  return Verify(rule, p, b, bits, *scratch.impl_);
}

}  // namespace vigil::rules
