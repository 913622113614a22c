#include "dataplane/stream/defrag.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

namespace vigil::dp {

const char* FragPolicyName(FragPolicy p) noexcept {
  switch (p) {
    case FragPolicy::kFirst:
      return "first";
    case FragPolicy::kLast:
      return "last";
    case FragPolicy::kBsd:
      return "bsd";
    case FragPolicy::kBsdRight:
      return "bsd-right";
    case FragPolicy::kLinux:
      return "linux";
    case FragPolicy::kWindows:
      return "windows";
    case FragPolicy::kSolaris:
      return "solaris";
  }
  return "unknown";
}

bool ParseFragPolicy(std::string_view name, FragPolicy* out) noexcept {
  static constexpr FragPolicy kAll[] = {
      FragPolicy::kFirst, FragPolicy::kLast,    FragPolicy::kBsd,    FragPolicy::kBsdRight,
      FragPolicy::kLinux, FragPolicy::kWindows, FragPolicy::kSolaris};
  for (FragPolicy p : kAll) {
    if (name == FragPolicyName(p)) {
      *out = p;
      return true;
    }
  }
  return false;
}

const char* DefragEventName(DefragEvent e) noexcept {
  switch (e) {
    case DefragEvent::kOverlap:
      return "defrag.overlap";
    case DefragEvent::kOverlapDiffers:
      return "defrag.overlap_differs";
    case DefragEvent::kTimeout:
      return "defrag.timeout";
    case DefragEvent::kTooManyFragments:
      return "defrag.too_many_fragments";
    case DefragEvent::kTooLarge:
      return "defrag.too_large";
    case DefragEvent::kPoolExhausted:
      return "defrag.pool_exhausted";
    case DefragEvent::kTableFull:
      return "defrag.table_full";
    case DefragEvent::kMalformed:
      return "defrag.malformed";
  }
  return "unknown";
}

const char* DefragResultName(Defragmenter::Result r) noexcept {
  using R = Defragmenter::Result;
  switch (r) {
    case R::kComplete:
      return "complete";
    case R::kHeld:
      return "held";
    case R::kNotFragment:
      return "not_fragment";
    case R::kMalformed:
      return "malformed";
    case R::kTooLarge:
      return "too_large";
    case R::kTooManyFragments:
      return "too_many_fragments";
    case R::kPoolExhausted:
      return "pool_exhausted";
    case R::kTableFull:
      return "table_full";
    case R::kOutTooSmall:
      return "out_too_small";
  }
  return "unknown";
}

// One run of held datagram payload: data[0, len) are bytes [start, start + len).
struct alignas(64) Defragmenter::Slot {
  uint32_t next;  // next run of the datagram (sorted by start), or the free list
  uint32_t start;
  uint32_t len;
  uint32_t os;  // original fragment of these bytes: [os, oe)
  uint32_t oe;
  uint8_t data[kFragSlotBytes];
};

struct Defragmenter::Tracker {
  Key key;
  uint64_t hash;
  uint64_t deadline;
  uint32_t hnext;  // hash chain, or the free list
  uint32_t lprev;  // age list
  uint32_t lnext;
  uint32_t head;  // first run
  uint32_t end;   // payload end, once have_last
  uint16_t frags;
  uint16_t hdr_len;
  uint16_t nh_off;  // IPv6: offset in hdr of the next-header byte naming the Fragment header
  uint8_t v6_next;  // IPv6: the Fragment header's next header
  bool have_first;
  bool have_last;
  bool in_use;
  uint8_t hdr[kMaxDefragHeader];
};

struct Defragmenter::Frag {
  Key key;
  uint32_t start;
  bool more;
  uint16_t hdr_len;
  uint16_t nh_off;
  uint8_t v6_next;
  std::span<const uint8_t> hdr;
  std::span<const uint8_t> data;
};

namespace {

inline uint16_t Be16(const uint8_t* p) noexcept { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t Be32(const uint8_t* p) noexcept {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
inline void PutBe16(uint8_t* p, uint32_t v) noexcept {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

uint16_t Checksum(const uint8_t* p, uint32_t len) noexcept {
  uint32_t sum = 0;
  for (uint32_t i = 0; i + 1 < len; i += 2) sum += Be16(p + i);
  if (len & 1) sum += uint32_t{p[len - 1]} << 8;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

uint32_t NextPow2(uint32_t v) noexcept {
  uint32_t p = 1;
  while (p < v && p < (1u << 30)) p <<= 1;
  return p;
}

}  // namespace

namespace {

struct DefragLayout {
  uint32_t capacity, pool, buckets;
  size_t trackers_off, buckets_off, slots_off, total;
};

size_t Align64(size_t n) { return (n + 63) & ~size_t{63}; }

// One block: trackers, then hash buckets, then fragment slots, each 64-byte aligned.
DefragLayout Layout(const DefragConfig& c, size_t tracker_size, size_t slot_size) {
  DefragLayout l;
  l.capacity = std::clamp<uint32_t>(c.max_trackers, 1, 1u << 24);
  l.pool = std::min<uint32_t>(c.pool_slots, 1u << 24);
  l.buckets = NextPow2(l.capacity);
  l.trackers_off = 0;
  l.buckets_off = Align64(size_t{l.capacity} * tracker_size);
  l.slots_off = l.buckets_off + Align64(size_t{l.buckets} * sizeof(uint32_t));
  l.total = l.slots_off + size_t{l.pool} * slot_size;
  return l;
}

}  // namespace

size_t Defragmenter::MemoryBytes(const DefragConfig& config) noexcept {
  return Layout(config, sizeof(Tracker), sizeof(Slot)).total;
}

Defragmenter::Defragmenter(const DefragConfig& config, void* memory)
    : policy_(config.policy),
      capacity_(std::clamp<uint32_t>(config.max_trackers, 1, 1u << 24)),
      pool_capacity_(std::min<uint32_t>(config.pool_slots, 1u << 24)),
      max_fragments_(std::clamp<uint32_t>(config.max_fragments, 1, 65535)),
      timeout_ns_(config.timeout_ns),
      hash_(config.hash_seed) {
  const DefragLayout l = Layout(config, sizeof(Tracker), sizeof(Slot));
  const uint32_t nb = l.buckets;
  bucket_mask_ = nb - 1;
  if (memory == nullptr) {
    owned_ = std::aligned_alloc(64, Align64(l.total));
    if (owned_ == nullptr) throw std::bad_alloc();
    memory = owned_;
  }
  auto* base = static_cast<uint8_t*>(memory);
  trackers_ = reinterpret_cast<Tracker*>(base + l.trackers_off);
  buckets_ = reinterpret_cast<uint32_t*>(base + l.buckets_off);
  slots_ = reinterpret_cast<Slot*>(base + l.slots_off);
  for (uint32_t i = 0; i < nb; ++i) buckets_[i] = kFragNil;
  for (uint32_t i = capacity_; i-- > 0;) {
    std::memset(&trackers_[i], 0, sizeof(Tracker));
    trackers_[i].hnext = free_tracker_;
    free_tracker_ = i;
  }
  for (uint32_t i = pool_capacity_; i-- > 0;) {
    std::memset(&slots_[i], 0, sizeof(Slot));  // first touch
    slots_[i].next = free_slot_;
    free_slot_ = i;
  }
}

Defragmenter::~Defragmenter() { std::free(owned_); }

void Defragmenter::set_vlans(const uint16_t* vlans, uint8_t count) noexcept {
  vlan_count_ = std::min<uint8_t>(count, 2);
  vlans_[0] = vlan_count_ > 0 ? vlans[0] : 0;
  vlans_[1] = vlan_count_ > 1 ? vlans[1] : 0;
}

bool Defragmenter::ParseV4(std::span<const uint8_t> p, Frag* f) noexcept {
  if (p.size() < 20 || (p[0] >> 4) != 4) return false;
  uint32_t ihl = (p[0] & 0xfu) * 4u;
  if (ihl < 20 || ihl > p.size()) return false;
  uint32_t tl = Be16(&p[2]);
  if (tl < ihl || tl > p.size()) return false;
  uint32_t fo = Be16(&p[6]);
  f->more = (fo & 0x2000u) != 0;
  f->start = (fo & 0x1fffu) * 8u;
  f->key.version = 4;
  f->key.proto = p[9];
  f->key.id = Be16(&p[4]);
  f->key.src[10] = f->key.src[11] = 0xff;
  f->key.dst[10] = f->key.dst[11] = 0xff;
  std::memcpy(&f->key.src[12], &p[12], 4);
  std::memcpy(&f->key.dst[12], &p[16], 4);
  f->hdr_len = static_cast<uint16_t>(ihl);
  f->nh_off = 0;
  f->v6_next = 0;
  f->hdr = p.first(ihl);
  f->data = p.subspan(ihl, tl - ihl);
  return true;
}

bool Defragmenter::ParseV6(std::span<const uint8_t> p, Frag* f, bool* not_fragment) noexcept {
  *not_fragment = false;
  if (p.size() < 40 || (p[0] >> 4) != 6) return false;
  uint32_t total = 40u + Be16(&p[4]);
  if (total > p.size()) return false;
  p = p.first(total);
  uint8_t nh = p[6];
  uint32_t nh_off = 6;
  uint32_t off = 40;
  bool found = false;
  for (int i = 0; i <= 8; ++i) {  // up to 8 extension headers before the Fragment header
    if (nh == 44) {
      found = true;
      break;
    }
    if (nh != 0 && nh != 43 && nh != 60) {
      *not_fragment = true;
      return false;
    }
    if (off + 8 > total) return false;
    uint32_t len = (uint32_t{p[off + 1]} + 1) * 8;
    if (off + len > total) return false;
    nh_off = off;
    nh = p[off];
    off += len;
  }
  if (!found) return false;
  if (off + 8 > total || off > kMaxDefragHeader) return false;
  uint32_t fo = Be16(&p[off + 2]);
  f->start = fo & 0xfff8u;
  f->more = (fo & 1u) != 0;
  if (f->start == 0 && !f->more) {  // atomic fragment (RFC 6946)
    *not_fragment = true;
    return false;
  }
  f->key.version = 6;
  f->key.proto = p[off];
  f->key.id = Be32(&p[off + 4]);
  std::memcpy(f->key.src, &p[8], 16);
  std::memcpy(f->key.dst, &p[24], 16);
  f->hdr_len = static_cast<uint16_t>(off);
  f->nh_off = static_cast<uint16_t>(nh_off);
  f->v6_next = p[off];
  f->hdr = p.first(off);
  f->data = p.subspan(off + 8);
  return true;
}

uint64_t Defragmenter::Hash(const Key& k) const noexcept {
  // Fragments are attacker-controlled like flows: the same keyed hash as the flow table.
  return hash_.Bytes(&k, sizeof(k));
}

uint32_t Defragmenter::Find(const Key& k, uint64_t h) const noexcept {
  for (uint32_t t = buckets_[h & bucket_mask_]; t != kFragNil; t = trackers_[t].hnext) {
    if (trackers_[t].hash == h && std::memcmp(&trackers_[t].key, &k, sizeof(Key)) == 0) return t;
  }
  return kFragNil;
}

uint32_t Defragmenter::NewTracker(const Key& k, uint64_t h, uint64_t now_ns) noexcept {
  uint32_t t = free_tracker_;
  if (t == kFragNil) return kFragNil;
  Tracker& tr = trackers_[t];
  free_tracker_ = tr.hnext;
  tr.key = k;
  tr.hash = h;
  tr.deadline = now_ns + timeout_ns_;
  tr.head = kFragNil;
  tr.end = 0;
  tr.frags = 0;
  tr.hdr_len = 0;
  tr.nh_off = 0;
  tr.v6_next = 0;
  tr.have_first = tr.have_last = false;
  tr.in_use = true;
  uint32_t b = static_cast<uint32_t>(h & bucket_mask_);
  tr.hnext = buckets_[b];
  buckets_[b] = t;
  tr.lnext = kFragNil;
  tr.lprev = lru_tail_;
  if (lru_tail_ != kFragNil) {
    trackers_[lru_tail_].lnext = t;
  } else {
    lru_head_ = t;
  }
  lru_tail_ = t;
  ++trackers_in_use_;
  return t;
}

void Defragmenter::FreeTracker(uint32_t t) noexcept {
  Tracker& tr = trackers_[t];
  if (!tr.in_use) return;
  for (uint32_t s = tr.head; s != kFragNil;) {
    uint32_t next = slots_[s].next;
    slots_[s].next = free_slot_;
    free_slot_ = s;
    --slots_in_use_;
    s = next;
  }
  tr.head = kFragNil;
  uint32_t* link = &buckets_[tr.hash & bucket_mask_];
  while (*link != kFragNil && *link != t) link = &trackers_[*link].hnext;
  if (*link == t) *link = tr.hnext;
  if (tr.lprev != kFragNil) {
    trackers_[tr.lprev].lnext = tr.lnext;
  } else {
    lru_head_ = tr.lnext;
  }
  if (tr.lnext != kFragNil) {
    trackers_[tr.lnext].lprev = tr.lprev;
  } else {
    lru_tail_ = tr.lprev;
  }
  tr.in_use = false;
  tr.hnext = free_tracker_;
  free_tracker_ = t;
  --trackers_in_use_;
}

bool Defragmenter::NewWins(uint32_t ns, uint32_t ne, const Slot& s) const noexcept {
  switch (policy_) {
    case FragPolicy::kFirst:
      return false;
    case FragPolicy::kLast:
      return true;
    case FragPolicy::kBsd:
      return ns < s.os;
    case FragPolicy::kBsdRight:
      return ns >= s.os;
    case FragPolicy::kLinux:
      return ns < s.os || (ns == s.os && ne >= s.oe);
    case FragPolicy::kWindows:
      return ns < s.os && ne > s.oe;
    case FragPolicy::kSolaris:
      return ns < s.os && ne >= s.oe;
  }
  return false;
}

uint32_t Defragmenter::Merge(Tracker& tr, uint32_t ns, std::span<const uint8_t> data, bool dry_run,
                             bool* overlap, bool* differs) noexcept {
  const uint32_t ne = ns + static_cast<uint32_t>(data.size());
  uint32_t needed = 0;
  uint32_t pos = ns;
  uint32_t prev = kFragNil;
  uint32_t r = tr.head;
  while (pos < ne) {
    while (r != kFragNil && slots_[r].start + slots_[r].len <= pos) {
      prev = r;
      r = slots_[r].next;
    }
    if (r != kFragNil && slots_[r].start <= pos) {  // overlap with a held run
      Slot& s = slots_[r];
      uint32_t oend = std::min(s.start + s.len, ne);
      uint32_t n = oend - pos;
      const uint8_t* a = data.data() + (pos - ns);
      uint8_t* b = s.data + (pos - s.start);
      *overlap = true;
      if (std::memcmp(a, b, n) != 0) *differs = true;
      if (!dry_run && NewWins(ns, ne, s)) std::memcpy(b, a, n);
      pos = oend;
      continue;
    }
    uint32_t hole_end = (r != kFragNil && slots_[r].start < ne) ? slots_[r].start : ne;
    while (pos < hole_end) {
      uint32_t n = std::min(hole_end - pos, kFragSlotBytes);
      ++needed;
      if (!dry_run) {
        uint32_t idx = free_slot_;  // the dry run checked there are enough
        Slot& s = slots_[idx];
        free_slot_ = s.next;
        ++slots_in_use_;
        s.start = pos;
        s.len = n;
        s.os = ns;
        s.oe = ne;
        std::memcpy(s.data, data.data() + (pos - ns), n);
        s.next = r;
        if (prev == kFragNil) {
          tr.head = idx;
        } else {
          slots_[prev].next = idx;
        }
        prev = idx;
      }
      pos += n;
    }
  }
  return needed;
}

bool Defragmenter::IsComplete(const Tracker& tr) const noexcept {
  if (!tr.have_first || !tr.have_last) return false;
  uint32_t expect = 0;
  for (uint32_t s = tr.head; s != kFragNil; s = slots_[s].next) {
    if (slots_[s].start != expect) return false;
    expect += slots_[s].len;
  }
  return expect == tr.end;
}

Defragmenter::Result Defragmenter::Emit(Tracker& tr, std::span<uint8_t> out,
                                        uint32_t* out_len) noexcept {
  uint32_t total = tr.hdr_len + tr.end;
  uint32_t limit = tr.key.version == 4 ? kMaxDatagram : kMaxDatagram + 40;
  if (total > limit) return Result::kTooLarge;
  if (total > out.size()) return Result::kOutTooSmall;
  uint8_t* o = out.data();
  std::memcpy(o, tr.hdr, tr.hdr_len);
  uint32_t pos = tr.hdr_len;
  for (uint32_t s = tr.head; s != kFragNil; s = slots_[s].next) {
    std::memcpy(o + pos, slots_[s].data, slots_[s].len);
    pos += slots_[s].len;
  }
  if (tr.key.version == 4) {
    PutBe16(o + 2, total);
    PutBe16(o + 6, Be16(o + 6) & 0x4000u);  // keep DF; MF and offset cleared
    PutBe16(o + 10, 0);
    PutBe16(o + 10, Checksum(o, tr.hdr_len));
  } else {
    PutBe16(o + 4, total - 40);
    o[tr.nh_off] = tr.v6_next;
  }
  *out_len = total;
  return Result::kComplete;
}

Defragmenter::Result Defragmenter::Drop(Result r, DefragEvent e, uint64_t* counter,
                                        DefragSink& sink) noexcept {
  ++*counter;
  sink.OnEvent(e);
  return r;
}

Defragmenter::Result Defragmenter::Add(std::span<const uint8_t> ip_packet, uint8_t ip_version,
                                       uint64_t now_ns, std::span<uint8_t> out, uint32_t* out_len,
                                       DefragSink& sink) noexcept {
  *out_len = 0;
  Frag f;
  std::memset(&f.key, 0, sizeof(f.key));
  bool ok = false;
  bool not_fragment = false;
  if (ip_version == 4) {
    ok = ParseV4(ip_packet, &f);
    if (ok && !f.more && f.start == 0) return Result::kNotFragment;
  } else if (ip_version == 6) {
    ok = ParseV6(ip_packet, &f, &not_fragment);
    if (not_fragment) return Result::kNotFragment;
  }
  if (!ok) return Drop(Result::kMalformed, DefragEvent::kMalformed, &counters_.malformed, sink);
  f.key.vlan_count = vlan_count_;
  f.key.vlan[0] = vlans_[0];
  f.key.vlan[1] = vlans_[1];
  const uint32_t len = static_cast<uint32_t>(f.data.size());
  const uint32_t end = f.start + len;
  if (len == 0 || (f.more && (len & 7u) != 0)) {
    return Drop(Result::kMalformed, DefragEvent::kMalformed, &counters_.malformed, sink);
  }

  const uint64_t h = Hash(f.key);
  uint32_t t = Find(f.key, h);
  if (t != kFragNil && trackers_[t].deadline <= now_ns) {
    FreeTracker(t);
    Drop(Result::kHeld, DefragEvent::kTimeout, &counters_.timeouts, sink);
    t = kFragNil;
  }

  // Too large: the header this fragment carries plus its end past the datagram limit.
  uint32_t size = f.key.version == 4 ? f.hdr_len + end : f.hdr_len - 40u + end;
  if (size > kMaxDatagram) {
    if (t != kFragNil) FreeTracker(t);
    return Drop(Result::kTooLarge, DefragEvent::kTooLarge, &counters_.too_large, sink);
  }

  if (t == kFragNil) {
    if (free_tracker_ == kFragNil) ExpireSome(now_ns, 1, sink);
    t = NewTracker(f.key, h, now_ns);
    if (t == kFragNil) {
      return Drop(Result::kTableFull, DefragEvent::kTableFull, &counters_.table_full, sink);
    }
  }
  Tracker& tr = trackers_[t];
  auto drop_fragment = [&](Result r, DefragEvent e, uint64_t* counter) noexcept {
    if (tr.frags == 0) FreeTracker(t);  // nothing held: do not keep an empty tracker
    return Drop(r, e, counter, sink);
  };

  if (tr.frags >= max_fragments_) {
    FreeTracker(t);
    return Drop(Result::kTooManyFragments, DefragEvent::kTooManyFragments, &counters_.too_many,
                sink);
  }
  if (tr.have_last && (end > tr.end || (!f.more && end != tr.end))) {
    return drop_fragment(Result::kMalformed, DefragEvent::kMalformed, &counters_.malformed);
  }
  if (!tr.have_last && !f.more) {
    uint32_t held_end = 0;
    for (uint32_t s = tr.head; s != kFragNil; s = slots_[s].next) {
      held_end = slots_[s].start + slots_[s].len;
    }
    if (held_end > end) {
      return drop_fragment(Result::kMalformed, DefragEvent::kMalformed, &counters_.malformed);
    }
  }

  bool overlap = false;
  bool differs = false;
  uint32_t needed = Merge(tr, f.start, f.data, /*dry_run=*/true, &overlap, &differs);
  if (needed > pool_capacity_ - slots_in_use_) {
    return drop_fragment(Result::kPoolExhausted, DefragEvent::kPoolExhausted,
                         &counters_.pool_exhausted);
  }
  bool unused_overlap = false;
  bool unused_differs = false;
  Merge(tr, f.start, f.data, /*dry_run=*/false, &unused_overlap, &unused_differs);
  ++tr.frags;
  ++counters_.fragments;
  if (overlap) {
    ++counters_.overlaps;
    if (differs) {
      ++counters_.overlap_differs;
      sink.OnEvent(DefragEvent::kOverlapDiffers);
    } else {
      sink.OnEvent(DefragEvent::kOverlap);
    }
  }
  if (!f.more) {
    tr.have_last = true;
    tr.end = end;
  }
  if (f.start == 0 && !tr.have_first) {
    tr.have_first = true;
    tr.hdr_len = f.hdr_len;
    tr.nh_off = f.nh_off;
    tr.v6_next = f.v6_next;
    std::memcpy(tr.hdr, f.hdr.data(), f.hdr_len);
  }
  if (!IsComplete(tr)) return Result::kHeld;

  Result r = Emit(tr, out, out_len);
  FreeTracker(t);
  switch (r) {
    case Result::kComplete:
      ++counters_.datagrams_completed;
      return r;
    case Result::kTooLarge:
      return Drop(r, DefragEvent::kTooLarge, &counters_.too_large, sink);
    default:
      ++counters_.out_too_small;
      return r;
  }
}

uint32_t Defragmenter::ExpireSome(uint64_t now_ns, uint32_t budget, DefragSink& sink) noexcept {
  uint32_t n = 0;
  while (n < budget && lru_head_ != kFragNil && trackers_[lru_head_].deadline <= now_ns) {
    FreeTracker(lru_head_);
    ++counters_.timeouts;
    sink.OnEvent(DefragEvent::kTimeout);
    ++n;
  }
  return n;
}

}  // namespace vigil::dp
