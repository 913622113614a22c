#include "dataplane/stream/reassembly.h"

#include <algorithm>
#include <cstring>
#include <new>

namespace vigil::dp {

const char* OverlapPolicyName(OverlapPolicy p) noexcept {
  switch (p) {
    case OverlapPolicy::kFirst:
      return "first";
    case OverlapPolicy::kLast:
      return "last";
    case OverlapPolicy::kLinux:
      return "linux";
    case OverlapPolicy::kWindows:
      return "windows";
    case OverlapPolicy::kBsd:
      return "bsd";
  }
  return "unknown";
}

bool ParseOverlapPolicy(std::string_view name, OverlapPolicy* out) noexcept {
  static constexpr OverlapPolicy kAll[] = {OverlapPolicy::kFirst, OverlapPolicy::kLast,
                                           OverlapPolicy::kLinux, OverlapPolicy::kWindows,
                                           OverlapPolicy::kBsd};
  for (OverlapPolicy p : kAll) {
    if (name == OverlapPolicyName(p)) {
      *out = p;
      return true;
    }
  }
  return false;
}

const char* StreamEventName(StreamEvent e) noexcept {
  switch (e) {
    case StreamEvent::kOverlapDiffers:
      return "stream.overlap_differs";
    case StreamEvent::kRetransmission:
      return "stream.retransmission";
    case StreamEvent::kWindowExceeded:
      return "stream.window_exceeded";
    case StreamEvent::kPoolExhausted:
      return "stream.pool_exhausted";
    case StreamEvent::kDepthReached:
      return "stream.depth_reached";
    case StreamEvent::kDataAfterFin:
      return "stream.data_after_fin";
  }
  return "unknown";
}

// ---- SegmentPool ----

SegmentPool::SegmentPool(uint32_t capacity, void* memory)
    : capacity_(capacity == kSegmentNil ? capacity - 1 : capacity),
      free_head_(kSegmentNil),
      owns_memory_(memory == nullptr) {
  if (owns_memory_) {
    memory = ::operator new (std::max<size_t>(MemoryBytes(capacity_), 64), std::align_val_t{64});
  }
  slots_ = static_cast<SegmentSlot*>(memory);
  std::memset(static_cast<void*>(slots_), 0, MemoryBytes(capacity_));
  for (uint32_t i = capacity_; i-- > 0;) {
    slots_[i].next = free_head_;
    free_head_ = i;
  }
}

SegmentPool::~SegmentPool() {
  if (owns_memory_) ::operator delete (slots_, std::align_val_t{64});
}

uint32_t SegmentPool::Alloc() noexcept {
  const uint32_t idx = free_head_;
  if (idx == kSegmentNil) {
    ++alloc_failures_;
    return kSegmentNil;
  }
  free_head_ = slots_[idx].next;
  slots_[idx].next = kSegmentNil;
  if (++in_use_ > high_water_) high_water_ = in_use_;
  return idx;
}

void SegmentPool::Free(uint32_t idx) noexcept {
  if (idx >= capacity_ || in_use_ == 0) {
    ++bad_frees_;
    return;
  }
  slots_[idx].next = free_head_;
  free_head_ = idx;
  --in_use_;
}

// ---- Reassembler ----

Reassembler::Reassembler(SegmentPool* pool, const ReassemblyConfig& config) noexcept
    : pool_(pool),
      policy_(config.policy),
      max_segments_(std::min<uint32_t>(config.max_segments, 0xffff)),
      max_bytes_(config.max_bytes),
      max_ahead_(std::min<uint32_t>(config.max_ahead, 1u << 30)),
      depth_(config.depth) {}

void Reassembler::Init(StreamDirection* dir, uint32_t isn) noexcept {
  Release(dir);
  *dir = StreamDirection{};
  dir->isn = isn;
  dir->next_seq = isn + 1;
  dir->head = kSegmentNil;
  dir->flags = kStreamInitialised;
}

void Reassembler::InitMidstream(StreamDirection* dir, uint32_t seq) noexcept {
  Init(dir, seq - 1);
  dir->flags |= kStreamMidstream;
  ++counters_.midstream_starts;
}

bool Reassembler::NewWins(uint32_t ns, uint32_t ne, const SegmentSlot& s) const noexcept {
  switch (policy_) {
    case OverlapPolicy::kFirst:
    case OverlapPolicy::kWindows:
      return false;
    case OverlapPolicy::kLast:
      return true;
    case OverlapPolicy::kBsd:
      return SeqLt(ns, s.orig_seq);
    case OverlapPolicy::kLinux:
      return SeqLt(ns, s.orig_seq) || (ns == s.orig_seq && SeqGt(ne, s.orig_end));
  }
  return false;
}

void Reassembler::Emit(StreamDirection* dir, std::span<const uint8_t> data,
                       StreamSink& sink) noexcept {
  if (data.empty() || (dir->flags & kStreamDepthReached) != 0) return;
  size_t n = data.size();
  const bool truncated = depth_ != 0 && dir->delivered + n > depth_;
  if (truncated) n = static_cast<size_t>(depth_ - dir->delivered);
  if (n != 0) {
    sink.OnData(data.first(n));
    dir->delivered += n;
    counters_.bytes_delivered += n;
  }
  if (truncated) {
    dir->flags |= kStreamDepthReached;
    ++counters_.depth_reached;
    sink.OnEvent(StreamEvent::kDepthReached);
  }
}

void Reassembler::FreeHead(StreamDirection* dir) noexcept {
  const uint32_t idx = dir->head;
  const SegmentSlot& s = pool_->slot(idx);
  dir->head = s.next;
  dir->buffered_bytes -= s.len;
  --dir->buffered_segments;
  pool_->Free(idx);
}

void Reassembler::DrainContiguous(StreamDirection* dir, StreamSink& sink) noexcept {
  while (dir->head != kSegmentNil) {
    const SegmentSlot& s = pool_->slot(dir->head);
    if (s.seq != dir->next_seq) break;
    Emit(dir, std::span<const uint8_t>(s.data + s.off, s.len), sink);
    dir->next_seq += s.len;
    FreeHead(dir);
  }
}

// The segment [seq, end), trimmed to [ns, ne), starts at ns == next_seq. Delivers its bytes from
// the packet, except where buffered slots already hold bytes the policy keeps. Slots are consumed
// from the head as the stream passes them; the head always starts after next_seq, so no allocation.
bool Reassembler::InOrder(StreamDirection* dir, uint32_t seq, uint32_t end, uint32_t ns,
                          uint32_t ne, std::span<const uint8_t> payload,
                          StreamSink& sink) noexcept {
  bool differs = false;
  bool overlapped = false;
  uint32_t c = ns;
  while (c != ne) {
    const uint32_t h = dir->head;
    if (h == kSegmentNil || SeqGe(pool_->slot(h).seq, ne)) {
      Emit(dir, payload.subspan(c - seq, ne - c), sink);
      c = ne;
      break;
    }
    SegmentSlot& s = pool_->slot(h);
    if (SeqLt(c, s.seq)) {
      Emit(dir, payload.subspan(c - seq, s.seq - c), sink);
      c = s.seq;
      continue;
    }
    // s.seq == c: the head never starts before next_seq.
    overlapped = true;
    const uint32_t slot_end = s.seq + s.len;
    const uint32_t stop = SeqLt(ne, slot_end) ? ne : slot_end;
    const uint32_t n = stop - c;
    std::span<const uint8_t> fresh = payload.subspan(c - seq, n);
    std::span<const uint8_t> old(s.data + s.off, n);
    if (std::memcmp(fresh.data(), old.data(), n) != 0) differs = true;
    Emit(dir, NewWins(seq, end, s) ? fresh : old, sink);
    s.seq += n;
    s.off = static_cast<uint16_t>(s.off + n);
    s.len = static_cast<uint16_t>(s.len - n);
    dir->buffered_bytes -= n;
    if (s.len == 0) FreeHead(dir);
    c = stop;
  }
  dir->next_seq = ne;
  if (overlapped) ++counters_.overlaps;
  DrainContiguous(dir, sink);
  return differs;
}

// Links new slots holding payload bytes [from, to) between `prev` and `before`; returns the last
// slot linked (the new `prev`). Slots were reserved by the caller's availability check.
uint32_t Reassembler::InsertRange(StreamDirection* dir, uint32_t prev, uint32_t before,
                                  uint32_t from, uint32_t to, uint32_t seq, uint32_t end,
                                  std::span<const uint8_t> payload) noexcept {
  while (from != to) {
    const uint32_t idx = pool_->Alloc();
    if (idx == kSegmentNil) return prev;  // unreachable: availability was checked
    const uint32_t n = std::min<uint32_t>(to - from, kSegmentBytes);
    SegmentSlot& s = pool_->slot(idx);
    s.seq = from;
    s.orig_seq = seq;
    s.orig_end = end;
    s.len = static_cast<uint16_t>(n);
    s.off = 0;
    std::span<const uint8_t> src = payload.subspan(from - seq, n);
    std::memcpy(s.data, src.data(), n);
    s.next = before;
    if (prev == kSegmentNil) {
      dir->head = idx;
    } else {
      pool_->slot(prev).next = idx;
    }
    ++dir->buffered_segments;
    dir->buffered_bytes += n;
    prev = idx;
    from += n;
  }
  return prev;
}

// The segment [seq, end), trimmed to [ns, ne), starts after next_seq. First pass: how many slots
// and bytes its holes need, so a refusal leaves the direction untouched. Second pass: resolve each
// overlap per the policy in place and fill each hole.
Reassembler::Result Reassembler::OutOfOrder(StreamDirection* dir, uint32_t seq, uint32_t end,
                                            uint32_t ns, uint32_t ne,
                                            std::span<const uint8_t> payload, bool* differs,
                                            StreamSink& sink) noexcept {
  ++counters_.segments_out_of_order;
  if (static_cast<uint64_t>(ns - dir->next_seq) + (ne - ns) > max_ahead_) {
    ++counters_.window_exceeded;
    sink.OnEvent(StreamEvent::kWindowExceeded);
    return Result::kWindowExceeded;
  }
  uint32_t need_slots = 0;
  uint32_t need_bytes = 0;
  bool overlapped = false;
  auto hole = [&](uint32_t from, uint32_t to) {
    need_bytes += to - from;
    need_slots += (to - from + kSegmentBytes - 1) / kSegmentBytes;
  };
  uint32_t c = ns;
  for (uint32_t i = dir->head; i != kSegmentNil && c != ne; i = pool_->slot(i).next) {
    const SegmentSlot& s = pool_->slot(i);
    const uint32_t slot_end = s.seq + s.len;
    if (SeqLe(slot_end, c)) continue;
    if (SeqGe(s.seq, ne)) break;
    if (SeqLt(c, s.seq)) hole(c, s.seq);
    overlapped = true;
    c = SeqLt(slot_end, ne) ? slot_end : ne;
  }
  if (c != ne) hole(c, ne);
  if (uint64_t{dir->buffered_segments} + need_slots > max_segments_ ||
      uint64_t{dir->buffered_bytes} + need_bytes > max_bytes_) {
    ++counters_.window_exceeded;
    sink.OnEvent(StreamEvent::kWindowExceeded);
    return Result::kWindowExceeded;
  }
  if (need_slots > pool_->available()) {
    pool_->CountFailure();
    ++counters_.pool_exhausted;
    sink.OnEvent(StreamEvent::kPoolExhausted);
    return Result::kPoolExhausted;
  }
  if (overlapped) ++counters_.overlaps;

  uint32_t prev = kSegmentNil;
  uint32_t i = dir->head;
  c = ns;
  while (c != ne) {
    if (i != kSegmentNil) {
      SegmentSlot& s = pool_->slot(i);
      const uint32_t slot_end = s.seq + s.len;
      if (SeqLe(slot_end, c)) {
        prev = i;
        i = s.next;
        continue;
      }
      if (SeqLt(s.seq, ne)) {
        if (SeqLt(c, s.seq)) {
          prev = InsertRange(dir, prev, i, c, s.seq, seq, end, payload);
          c = s.seq;
        }
        const uint32_t stop = SeqLt(slot_end, ne) ? slot_end : ne;
        const uint32_t n = stop - c;
        std::span<const uint8_t> fresh = payload.subspan(c - seq, n);
        uint8_t* old = s.data + s.off + (c - s.seq);
        if (std::memcmp(fresh.data(), old, n) != 0) {
          *differs = true;
          if (NewWins(seq, end, s)) std::memcpy(old, fresh.data(), n);
        }
        c = stop;
        prev = i;
        i = s.next;
        continue;
      }
    }
    prev = InsertRange(dir, prev, i, c, ne, seq, end, payload);
    c = ne;
  }
  return Result::kBuffered;
}

Reassembler::Result Reassembler::Add(StreamDirection* dir, uint32_t seq,
                                     std::span<const uint8_t> payload, bool fin,
                                     StreamSink& sink) noexcept {
  if (payload.size() > kMaxSegmentPayload) {
    ++counters_.oversized;
    payload = payload.first(kMaxSegmentPayload);
  }
  if ((dir->flags & kStreamInitialised) == 0) {
    if (payload.empty()) return Result::kEmpty;  // nothing to start from yet
    InitMidstream(dir, seq);
  }
  if ((dir->flags & kStreamDepthReached) != 0) return Result::kDepthReached;

  const uint32_t end = seq + static_cast<uint32_t>(payload.size());
  uint32_t ns = seq;
  uint32_t ne = end;
  if ((dir->flags & kStreamFinSeen) != 0) {
    if (SeqGt(ne, dir->fin_seq)) {
      ++counters_.data_after_fin;
      sink.OnEvent(StreamEvent::kDataAfterFin);
      if (SeqGe(ns, dir->fin_seq)) return Result::kAfterFin;
      ne = dir->fin_seq;
    }
  } else if (fin) {
    dir->flags |= kStreamFinSeen;
    dir->fin_seq = end;
  }
  if (ns == ne) return Result::kEmpty;

  if (SeqLt(ns, dir->next_seq)) {
    ++counters_.retransmissions;
    sink.OnEvent(StreamEvent::kRetransmission);
    if (SeqLe(ne, dir->next_seq)) return Result::kDuplicate;
    ns = dir->next_seq;
  }

  bool differs = false;
  Result result;
  if (ns == dir->next_seq) {
    ++counters_.segments_in_order;
    differs = InOrder(dir, seq, end, ns, ne, payload, sink);
    result = Result::kDelivered;
  } else {
    result = OutOfOrder(dir, seq, end, ns, ne, payload, &differs, sink);
  }
  if (differs) {
    ++counters_.overlap_differs;
    sink.OnEvent(StreamEvent::kOverlapDiffers);
  }
  if ((dir->flags & kStreamDepthReached) != 0) {
    Release(dir);
    return Result::kDepthReached;
  }
  return result;
}

void Reassembler::Flush(StreamDirection* dir, StreamSink& sink) noexcept {
  if ((dir->flags & kStreamInitialised) == 0) return;
  auto gap_to = [&](uint32_t seq) {
    if (!SeqLt(dir->next_seq, seq)) return;
    const uint32_t missing = seq - dir->next_seq;
    ++counters_.gaps;
    counters_.gap_bytes += missing;
    dir->flags |= kStreamGapSeen;
    if ((dir->flags & kStreamDepthReached) == 0) sink.OnGap(missing);
    dir->next_seq = seq;
  };
  while (dir->head != kSegmentNil) {
    const SegmentSlot& s = pool_->slot(dir->head);
    gap_to(s.seq);
    Emit(dir, std::span<const uint8_t>(s.data + s.off, s.len), sink);
    dir->next_seq += s.len;
    FreeHead(dir);
  }
  if ((dir->flags & kStreamFinSeen) != 0) gap_to(dir->fin_seq);
}

void Reassembler::Release(StreamDirection* dir) noexcept {
  if ((dir->flags & kStreamInitialised) == 0) return;
  while (dir->head != kSegmentNil) FreeHead(dir);
}

bool Reassembler::SkipAckedGap(StreamDirection* dir, uint32_t acked, StreamSink& sink) noexcept {
  if ((dir->flags & kStreamInitialised) == 0 || dir->head == kSegmentNil) return false;
  const uint32_t first = pool_->slot(dir->head).seq;
  // Only a hole the receiver has acknowledged past, with data waiting after it.
  if (!SeqLt(dir->next_seq, first) || SeqLt(acked, first)) return false;
  const uint32_t missing = first - dir->next_seq;
  ++counters_.gaps;
  counters_.gap_bytes += missing;
  dir->flags |= kStreamGapSeen;
  if ((dir->flags & kStreamDepthReached) == 0) sink.OnGap(missing);
  dir->next_seq = first;
  DrainContiguous(dir, sink);
  return true;
}

}  // namespace vigil::dp
