// Per-worker packet history ring. See packet_history.h.
//
// Cost model (Append): one 32-byte header store and one memcpy of the frame; once the ring is
// full, one header load per overwritten record (a line the writer is about to overwrite anyway).
// Measured (HistoryBench.AppendCost, `vigil-history bench`; 64 MiB ring, full, debugoptimized,
// shared 2-core build machine): ~11 ns per 64-byte frame, 90-220 ns per 1500-byte frame (the
// copy streams to a ring far larger than the cache: memory bandwidth bound).
#include "dataplane/capture/packet_history.h"

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <new>

namespace vigil::dp {
namespace {
// Records are padded to the header size so that the room left before the end of the array always
// holds a whole pad header.
constexpr uint64_t kAlign = PacketHistory::kHeaderBytes;
uint64_t Padded(uint64_t n) noexcept { return (n + kAlign - 1) & ~(kAlign - 1); }
}  // namespace

size_t PacketHistory::MemoryBytes(size_t ring_bytes) noexcept {
  if (ring_bytes < kMinBytes) return kMinBytes;
  return std::bit_floor(ring_bytes);
}

PacketHistory::PacketHistory(size_t bytes, uint32_t snaplen, void* memory)
    : owns_(memory == nullptr) {
  bytes = MemoryBytes(bytes);
  mask_ = bytes - 1;
  snaplen_ = std::clamp<uint32_t>(snaplen, 64, kHistoryMaxSnaplen);
  snaplen_ = std::min<uint64_t>(snaplen_, bytes / 4 - kHeaderBytes);
  buf_ = static_cast<uint8_t*>(memory != nullptr ? memory : std::aligned_alloc(64, bytes));
  if (buf_ == nullptr) throw std::bad_alloc();
}

PacketHistory::~PacketHistory() {
  if (owns_) std::free(buf_);
}

void PacketHistory::Append(uint64_t ts_ns, std::span<const uint8_t> frame,
                           uint32_t wire_len) noexcept {
  const uint32_t cap = static_cast<uint32_t>(std::min<size_t>(frame.size(), snaplen_));
  const uint64_t need = Padded(kHeaderBytes + cap);
  const uint64_t capacity = mask_ + 1;
  uint64_t head = head_.load(std::memory_order_relaxed);  // only this thread stores it
  const uint64_t room = capacity - (head & mask_);
  const uint64_t end = head + (need <= room ? need : room + need);
  uint64_t tail = tail_.load(std::memory_order_relaxed);
  if (end - tail > capacity) [[likely]] {
    // Give up the oldest records the new one will cover (whole records: readers resynchronise
    // on tail). The headers there were written by this thread.
    uint64_t dropped = 0;
    do {
      Header old;
      std::memcpy(&old, buf_ + (tail & mask_), sizeof old);
      dropped += old.kind == kKindPacket;
      tail += old.size;
    } while (end - tail > capacity);
    tail_.store(tail, std::memory_order_relaxed);
    // Orders the tail store before the overwriting stores below: a reader that copied any of
    // those bytes sees this tail after its acquire fence (the seqlock's "begin write").
    std::atomic_thread_fence(std::memory_order_release);
    overwritten_.store(overwritten_.load(std::memory_order_relaxed) + dropped,
                       std::memory_order_relaxed);
  }
  if (need > room) {
    const Header pad{static_cast<uint32_t>(room), 0, 0, kKindPad, 0, 0};
    std::memcpy(buf_ + (head & mask_), &pad, sizeof pad);
    head += room;
  }
  uint8_t* rec = buf_ + (head & mask_);
  const Header h{static_cast<uint32_t>(need), cap, wire_len, kKindPacket, next_seq_++, ts_ns};
  std::memcpy(rec, &h, sizeof h);
  std::memcpy(rec + kHeaderBytes, frame.data(), cap);
  // Release: the record's bytes before the position that makes them readable.
  head_.store(head + need, std::memory_order_release);
  packets_.store(packets_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  bytes_.store(bytes_.load(std::memory_order_relaxed) + cap, std::memory_order_relaxed);
}

PacketHistory::ReadResult PacketHistory::Read(uint64_t* pos, HistoryRecordInfo* info,
                                              std::span<uint8_t> out) const noexcept {
  const uint64_t capacity = mask_ + 1;
  for (;;) {
    const uint64_t p = *pos;
    // Acquire: every record before head is completely written.
    const uint64_t head = head_.load(std::memory_order_acquire);
    if (p >= head) return ReadResult::kEnd;
    const uint64_t tail = tail_.load(std::memory_order_acquire);
    if (p < tail) {
      *pos = tail;
      return ReadResult::kOverrun;
    }
    const uint64_t off = p & mask_;
    Header h;
    std::memcpy(&h, buf_ + off, sizeof h);
    // A torn header may hold anything: check before using it to copy.
    bool sane = h.size >= kHeaderBytes && h.size % kAlign == 0 && off + h.size <= capacity &&
                p + h.size <= head;
    if (sane && h.kind == kKindPacket) {
      sane = h.cap_len <= snaplen_ && h.cap_len <= out.size() && kHeaderBytes + h.cap_len <= h.size;
      if (sane) std::memcpy(out.data(), buf_ + off + kHeaderBytes, h.cap_len);
    } else if (sane) {
      sane = h.kind == kKindPad;
    }
    // Acquire fence, then the tail: if the writer began to overwrite this record while it was
    // copied, the tail it stored before doing so is visible now (the seqlock's "validate").
    std::atomic_thread_fence(std::memory_order_acquire);
    const uint64_t tail2 = tail_.load(std::memory_order_relaxed);
    if (tail2 > p) {
      torn_.fetch_add(1, std::memory_order_relaxed);
      *pos = tail2;
      return ReadResult::kOverrun;
    }
    if (!sane) [[unlikely]] {
      // Not overwritten yet inconsistent: cannot happen with one writer. Skip to the newest.
      torn_.fetch_add(1, std::memory_order_relaxed);
      *pos = head;
      return ReadResult::kOverrun;
    }
    *pos = p + h.size;
    if (h.kind == kKindPad) continue;
    info->seq = h.seq;
    info->ts_ns = h.ts_ns;
    info->wire_len = h.wire_len;
    info->cap_len = h.cap_len;
    return ReadResult::kOk;
  }
}

PacketHistoryCounters PacketHistory::counters() const noexcept {
  PacketHistoryCounters c;
  c.packets = packets_.load(std::memory_order_relaxed);
  c.bytes = bytes_.load(std::memory_order_relaxed);
  c.overwritten = overwritten_.load(std::memory_order_relaxed);
  c.torn = torn_.load(std::memory_order_relaxed);
  return c;
}

}  // namespace vigil::dp
