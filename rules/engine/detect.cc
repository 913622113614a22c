#include "rules/engine/detect.h"

#include <hs/hs.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <tuple>
#include <unordered_map>
#include <utility>

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
  return std::get<Pcre>(*m).relative;
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

  const Pcre& p = std::get<Pcre>(*ms[i]);
  if (pcre == nullptr) return false;
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
  uint64_t needs = 0;  // buffers the rule looks at
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
  uint32_t generation = 0;
  std::vector<uint32_t> candidates;
  std::vector<ThresholdSlot> thresholds;
};

Scratch::Scratch() : impl_(std::make_unique<Impl>()) {}
Scratch::~Scratch() = default;

struct Detector::Impl {
  struct Mpm {
    hs_database_t* db = nullptr;
    std::vector<std::vector<uint32_t>> rules_of_pattern;
  };
  std::array<Mpm, kBufferCount> mpm;
  std::vector<uint32_t> always;
  std::vector<RuleInfo> info;
  std::unordered_map<const Pcre*, hs_database_t*> pcre_db;

  ~Impl() {
    for (Mpm& m : mpm) {
      if (m.db != nullptr) hs_free_database(m.db);
    }
    for (auto& [p, db] : pcre_db) hs_free_database(db);
  }
};

namespace {

struct ScanCtx {
  const std::vector<std::vector<uint32_t>>* rules_of_pattern;
  Scratch::Impl* scratch;
};

int OnPattern(unsigned int id, unsigned long long, unsigned long long, unsigned int, void* ctx) {
  auto* c = static_cast<ScanCtx*>(ctx);
  for (const uint32_t r : (*c->rules_of_pattern)[id]) {
    if (c->scratch->mark[r] != c->scratch->generation) {
      c->scratch->mark[r] = c->scratch->generation;
      c->scratch->candidates.push_back(r);  // capacity reserved: every rule at most once
    }
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
      return p.app == Protocol::kDcerpc || p.app == Protocol::kSmb;
    default:
      return p.app == r;
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
    return AddressMatches(r.source, p, s) && AddressMatches(r.destination, p, d) &&
           (!ports || (r.source_ports.Contains(sp) && r.destination_ports.Contains(dp)));
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
    // No DCE/RPC transaction reaches Inspect yet: a rule conditioned on the interface or opnum
    // would otherwise alert on every packet its other conditions allow.
    if (r.dcerpc_iface || !r.dcerpc_opnums.empty()) {
      st.dropped.emplace_back(r.sid, "dcerpc.iface/dcerpc.opnum: not evaluated yet");
      continue;
    }
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

  // Per buffer: distinct (bytes, nocase) fast patterns and the rules that use each.
  struct PatternKey {
    std::string bytes;
    bool nocase;
    bool operator<(const PatternKey& o) const {
      return std::tie(bytes, nocase) < std::tie(o.bytes, o.nocase);
    }
  };
  std::array<std::map<PatternKey, std::vector<uint32_t>>, kBufferCount> patterns;
  im.info.resize(d->rules_.size());
  for (uint32_t i = 0; i < d->rules_.size(); ++i) {
    const Rule& r = d->rules_[i];
    RuleInfo& info = im.info[i];
    const Content* fast = nullptr;
    for (const Match& m : r.matches) {
      const Buffer b = std::holds_alternative<Content>(m) ? std::get<Content>(m).buffer
                                                          : std::get<Pcre>(m).buffer;
      info.needs |= uint64_t{1} << static_cast<size_t>(b);
      auto g = std::find_if(info.groups.begin(), info.groups.end(),
                            [b](const Group& x) { return x.buffer == b; });
      if (g == info.groups.end()) g = info.groups.insert(info.groups.end(), Group{b, {}});
      g->matches.push_back(&m);
      if (const auto* c = std::get_if<Content>(&m); c && !c->negated && !c->bytes.empty()) {
        if (c->fast_pattern) {
          if (fast == nullptr || !fast->fast_pattern) fast = c;
        } else if (fast == nullptr ||
                   (!fast->fast_pattern && c->bytes.size() > fast->bytes.size())) {
          fast = c;
        }
      }
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
    if (fast == nullptr) {
      im.always.push_back(i);
      continue;
    }
    std::string bytes = fast->bytes;
    if (fast->fast_pattern_chop) {
      const auto [off, len] = *fast->fast_pattern_chop;
      if (off < bytes.size()) bytes = bytes.substr(off, len);
    }
    patterns[static_cast<size_t>(fast->buffer)][{bytes, fast->nocase}].push_back(i);
    ++st.prefiltered;
  }
  st.always = im.always.size();

  // Every database's inputs, in a fixed order: the fast patterns of each buffer, then each pcre.
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
  for (size_t b = 0; b < kBufferCount; ++b) {
    feed(std::to_string(b) + ":" + std::to_string(patterns[b].size()));
    for (const auto& [key, rule_ids] : patterns[b]) {
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

  // Databases in that order (nullptr: none for that buffer / a pcre Hyperscan refused).
  std::vector<hs_database_t*> dbs(kBufferCount + pcres.size(), nullptr);
  auto free_dbs = [&dbs] {
    for (hs_database_t*& db : dbs) {
      if (db != nullptr) hs_free_database(db);
      db = nullptr;
    }
  };
  st.from_cache = !cache_path.empty() && LoadCache(cache_path, &dbs);
  if (!st.from_cache) {
    free_dbs();
    for (size_t b = 0; b < kBufferCount; ++b) {
      if (patterns[b].empty()) continue;
      std::vector<const char*> exprs;
      std::vector<size_t> lens;
      std::vector<unsigned> flags, ids;
      for (const auto& [key, rule_ids] : patterns[b]) {
        ids.push_back(static_cast<unsigned>(exprs.size()));
        exprs.push_back(key.bytes.data());
        lens.push_back(key.bytes.size());
        flags.push_back(HS_FLAG_SINGLEMATCH | (key.nocase ? HS_FLAG_CASELESS : 0u));
      }
      hs_compile_error_t* ce = nullptr;
      if (hs_compile_lit_multi(exprs.data(), flags.data(), ids.data(), lens.data(),
                               static_cast<unsigned>(exprs.size()), HS_MODE_BLOCK, nullptr, &dbs[b],
                               &ce) != HS_SUCCESS) {
        *error = std::string("fast patterns of ") + BufferName(static_cast<Buffer>(b)) + ": " +
                 (ce != nullptr ? ce->message : "compile failed");
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
                     &dbs[kBufferCount + k], &ce) != HS_SUCCESS) {
        hs_free_compile_error(ce);
        dbs[kBufferCount + k] = nullptr;
      }
    }
    if (!cache_path.empty()) SaveCache(cache_path, dbs);
  }
  for (size_t b = 0; b < kBufferCount; ++b) {
    Impl::Mpm& m = im.mpm[b];
    m.db = dbs[b];
    if (m.db == nullptr) continue;
    for (const auto& [key, rule_ids] : patterns[b]) m.rules_of_pattern.push_back(rule_ids);
    st.patterns += patterns[b].size();
    ++st.databases;
    size_t bytes = 0;
    if (hs_database_size(m.db, &bytes) == HS_SUCCESS) st.database_bytes += bytes;
  }
  for (size_t k = 0; k < pcres.size(); ++k) {
    hs_database_t* db = dbs[kBufferCount + k];
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
  for (const auto& [p, db] : impl_->pcre_db) {
    if (!grow(db)) return nullptr;
  }
  s->mark.assign(rules_.size(), 0);
  s->candidates.reserve(rules_.size());
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
  for (size_t i = 0; i < kBufferCount; ++i) {
    const Impl::Mpm& m = im.mpm[i];
    if (m.db == nullptr || !b.Has(static_cast<Buffer>(i))) continue;
    const std::span<const uint8_t> data = b.Get(static_cast<Buffer>(i));
    ScanCtx ctx{&m.rules_of_pattern, &s};
    hs_scan(m.db, reinterpret_cast<const char*>(data.data()), static_cast<unsigned>(data.size()), 0,
            s.hs, OnPattern, &ctx);
  }
  for (const uint32_t r : im.always) {
    if ((im.info[r].needs & ~b.mask()) == 0) s.candidates.push_back(r);
  }
  std::sort(s.candidates.begin(), s.candidates.end());

  size_t n = 0;
  HsPcre pcre(im, s.hs);
  for (const uint32_t r : s.candidates) {
    const Rule& rule = rules_[r];
    const RuleInfo& info = im.info[r];
    if ((info.needs & ~b.mask()) != 0) continue;
    if (!HeaderMatches(rule, p) || !FlowMatches(rule.flow, p)) continue;
    if (rule.dsize && !rule.dsize->Matches(p.payload_size)) continue;
    if (!BitsTest(info, bits)) continue;
    bool ok = true;
    for (const Group& g : info.groups) {
      int budget = kVerifyBudget;
      if (!VerifyBuffer(g.matches, b.Get(g.buffer), &pcre, &budget)) {
        ok = false;
        break;
      }
    }
    if (!ok) continue;
    BitsApply(info, bits);
    if (!ThresholdAllows(rule, r, p, s)) continue;
    if (!rule.noalert && n < alerts.size()) alerts[n++] = r;
  }
  return n;
}

}  // namespace vigil::rules
