// One worker's packet history: a byte ring of the frames it forwarded, newest overwriting oldest.
//
// Threads: exactly one writer, the worker that owns the ring (Append: never allocates, never
// blocks, O(frame bytes)). Any number of readers on other threads (the main thread's spooler,
// an export) copy records out concurrently with the writer, seqlock style: a reader copies a
// record, then re-reads the writer's `tail` (the oldest record the writer has not begun to
// overwrite); when the tail has passed the record, the copy may be torn and is discarded and
// counted, never returned. Readers never write to the ring and never slow the writer.
//
// Memory: the ring's bytes are supplied by the caller (on the worker's NUMA node), sized by
// MemoryBytes(). The control words live in the object (each on its own cache line).
//
// Layout: records are a 32-byte header (size, cap_len, wire_len, kind, seq, ts) followed by the
// frame's first cap_len bytes, padded to 8 bytes. A record never wraps: when it does not fit
// before the end of the array, a pad record fills the tail and the record starts at offset 0.
// Positions are byte counters that only grow; offset = position & mask.
//
// The copy a reader makes races with the writer by design (the seqlock validates it afterwards);
// a thread sanitizer reports it as a data race.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>

#include "dataplane/capture/history_config.h"

namespace vigil::dp {

struct HistoryRecordInfo {
  uint64_t seq = 0;    // per ring, 0, 1, 2, ... in Append order
  uint64_t ts_ns = 0;  // packet time, ns since the epoch
  uint32_t wire_len = 0;
  uint32_t cap_len = 0;  // bytes kept: min(frame bytes, snaplen)
};

struct PacketHistoryCounters {
  uint64_t packets = 0;      // appended
  uint64_t bytes = 0;        // captured bytes appended
  uint64_t overwritten = 0;  // records overwritten by newer ones (normal once the ring is full)
  uint64_t torn = 0;         // reader copies discarded because the writer overwrote them
};

class PacketHistory {
 public:
  static constexpr uint32_t kHeaderBytes = 32;
  static constexpr size_t kMinBytes = 64 * 1024;

  // The ring size actually used for a wish of `ring_bytes`: the largest power of two <= it
  // (at least kMinBytes). The caller allocates this many bytes, 64-byte aligned.
  static size_t MemoryBytes(size_t ring_bytes) noexcept;

  // `memory`: MemoryBytes(bytes) bytes aligned to 64 owned by the caller (it must outlive the
  // ring), or nullptr to allocate (start-up only, tests and tools). `snaplen` is clipped to
  // [64, kHistoryMaxSnaplen] and to a quarter of the ring. Start-up only.
  PacketHistory(size_t bytes, uint32_t snaplen, void* memory = nullptr);
  ~PacketHistory();
  PacketHistory(const PacketHistory&) = delete;
  PacketHistory& operator=(const PacketHistory&) = delete;

  // Writer (the owning worker only): copies the first min(frame.size(), snaplen) bytes of a frame
  // of `wire_len` bytes on the wire (for a multi-segment mbuf pass the first segment's data and
  // the packet length), overwriting the oldest records as needed. Never fails.
  void Append(uint64_t ts_ns, std::span<const uint8_t> frame, uint32_t wire_len) noexcept;

  enum class ReadResult {
    kOk,       // *info and the first info->cap_len bytes of `out` hold the record at the old *pos
    kEnd,      // no record at *pos yet
    kOverrun,  // the record at *pos was (or was being) overwritten: *pos now is the oldest
               // record; call again (the sequence numbers tell how many records were missed)
  };
  // Reader (any thread but the writer's; several at once): copies the record at position *pos
  // (from OldestPosition(), NewestPosition() or a previous call) and advances *pos. `out` must
  // hold snaplen() bytes. Never blocks, never allocates.
  ReadResult Read(uint64_t* pos, HistoryRecordInfo* info, std::span<uint8_t> out) const noexcept;
  // Position of the oldest record not yet being overwritten, and the position after the newest.
  uint64_t OldestPosition() const noexcept { return tail_.load(std::memory_order_acquire); }
  uint64_t NewestPosition() const noexcept { return head_.load(std::memory_order_acquire); }

  // Any thread: the counters (each exact, read without tearing; not a consistent snapshot).
  PacketHistoryCounters counters() const noexcept;
  uint32_t snaplen() const noexcept { return snaplen_; }
  size_t capacity() const noexcept { return mask_ + 1; }

 private:
  static constexpr uint32_t kKindPacket = 1;
  static constexpr uint32_t kKindPad = 2;
  struct Header {
    uint32_t size;  // whole record, header included, padded to 8
    uint32_t cap_len;
    uint32_t wire_len;
    uint32_t kind;
    uint64_t seq;
    uint64_t ts_ns;
  };
  static_assert(sizeof(Header) == kHeaderBytes);

  uint8_t* buf_;
  uint64_t mask_;
  uint32_t snaplen_;
  bool owns_;

  // Writer's cache line. head_: position after the newest complete record; stored with release
  // after the record's bytes so a reader that acquires it sees the whole record. tail_: oldest
  // record the writer has not started to overwrite; stored before overwriting (followed by a
  // release fence) so that a reader that saw overwritten bytes also sees the advanced tail.
  alignas(64) std::atomic<uint64_t> head_{0};
  std::atomic<uint64_t> tail_{0};
  // Counters: written by the writer only (load + store, no locked instruction); relaxed, since
  // they order nothing.
  std::atomic<uint64_t> packets_{0};
  std::atomic<uint64_t> bytes_{0};
  std::atomic<uint64_t> overwritten_{0};
  uint64_t next_seq_ = 0;  // writer only
  // Readers' cache line: several readers may count at once.
  alignas(64) mutable std::atomic<uint64_t> torn_{0};
};

}  // namespace vigil::dp
