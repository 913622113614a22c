// TCP stream reassembly for one direction of a flow, and the per-worker segment pool it buffers
// out-of-order data in.
//
// Thread: one worker owns one SegmentPool and one Reassembler; nothing here is shared or locked.
// Never blocks. No allocation after construction: buffered data lives in fixed-size slots of a
// pool preallocated at start-up. Every limit has a counter and, per segment, an event.
//
// Overlap resolution (RELIABILITY.md promise 3). Buffered data is kept as a sorted list of
// disjoint slots; each slot remembers the sequence range [orig_seq, orig_end) of the TCP segment
// that first put its bytes there (its "original segment"). When a new segment N = [ns, ne) (its
// sequence range as sent, before any trimming) overlaps buffered bytes, the policy decides, for
// each overlapping region, byte-exactly, whether N's bytes replace the original's:
//
//   kFirst, kWindows  never: the original bytes stay.
//   kLast             always: the new bytes replace the original ones.
//   kBsd              iff ns < orig_seq (N starts before the original segment).
//   kLinux            iff ns < orig_seq, or ns == orig_seq and ne > orig_end (N starts at the same
//                     sequence number and ends after the original segment).
//
// This is the target-based model of Novak, "Target-Based Fragmentation Reassembly" (Sourcefire,
// 2005) and Shankar & Paxson, "Active Mapping: Resisting NIDS Evasion Without Altering Traffic"
// (IEEE S&P 2003), in the form Suricata applies it to TCP (stream-tcp-list.c): for TCP segments
// Windows behaves as "first". As in Suricata, a replaced region keeps the metadata of the slot it
// was written into: the original segment of a byte is the first segment that buffered it, and later
// overwrites do not change that. Bytes in a hole (not buffered yet) are always taken.
//
// Data already delivered cannot be compared or replaced: its bytes are gone (delivered zero-copy
// from the packet). A segment overlapping delivered data is trimmed at the left edge and counted
// as a retransmission (event kRetransmission), whatever its content. When the bytes of an overlap
// with buffered data differ, kOverlapDiffers is raised once per segment: the evasion signal.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace vigil::dp {

enum class OverlapPolicy : uint8_t { kFirst, kLast, kLinux, kWindows, kBsd };

// The yaml spelling: "first", "last", "linux", "windows", "bsd".
const char* OverlapPolicyName(OverlapPolicy p) noexcept;
// Parses the yaml spelling (exact, lower case). Returns false (and leaves *out) when unknown.
bool ParseOverlapPolicy(std::string_view name, OverlapPolicy* out) noexcept;

// Sequence-number comparisons modulo 2^32 (RFC 793 / RFC 1982): valid while the two numbers are
// less than 2^31 apart.
inline constexpr bool SeqLt(uint32_t a, uint32_t b) noexcept {
  return static_cast<int32_t>(a - b) < 0;
}
inline constexpr bool SeqLe(uint32_t a, uint32_t b) noexcept {
  return static_cast<int32_t>(a - b) <= 0;
}
inline constexpr bool SeqGt(uint32_t a, uint32_t b) noexcept { return SeqLt(b, a); }
inline constexpr bool SeqGe(uint32_t a, uint32_t b) noexcept { return SeqLe(b, a); }

inline constexpr uint32_t kSegmentBytes = 2048;  // data bytes per slot
inline constexpr uint32_t kSegmentNil = 0xffffffffu;
inline constexpr uint32_t kMaxSegmentPayload = 65535;  // larger payloads are truncated (counted)

// One pool slot: up to kSegmentBytes contiguous stream bytes, data[off, off + len), starting at
// sequence `seq`. A TCP payload larger than one slot is split across several.
struct alignas(64) SegmentSlot {
  uint32_t seq;       // sequence number of data[off]
  uint32_t orig_seq;  // the original TCP segment of these bytes: [orig_seq, orig_end)
  uint32_t orig_end;
  uint32_t next;  // next slot in the direction's list, or the pool's free list; kSegmentNil ends
  uint16_t len;
  uint16_t off;
  uint8_t data[kSegmentBytes];
};

// Per-worker pool of segment slots, preallocated. Thread: the owning worker only.
class SegmentPool {
 public:
  // Bytes of memory a pool of `capacity` slots needs (for a NUMA-local allocation).
  static size_t MemoryBytes(uint32_t capacity) noexcept {
    return size_t{capacity} * sizeof(SegmentSlot);
  }

  // `memory`: MemoryBytes(capacity) bytes aligned to 64, owned by the caller; nullptr: the pool
  // allocates (and frees) its own. Construction touches every slot (first-touch placement).
  explicit SegmentPool(uint32_t capacity, void* memory = nullptr);
  ~SegmentPool();
  SegmentPool(const SegmentPool&) = delete;
  SegmentPool& operator=(const SegmentPool&) = delete;

  // A free slot's index, or kSegmentNil when none is left (counted in alloc_failures).
  uint32_t Alloc() noexcept;
  // Returns a slot. An index out of range is ignored and counted (bad_frees): a bug, not a crash.
  void Free(uint32_t idx) noexcept;
  // Counts an allocation refused up front (the caller checked available() first).
  void CountFailure() noexcept { ++alloc_failures_; }

  SegmentSlot& slot(uint32_t idx) noexcept { return slots_[idx]; }
  const SegmentSlot& slot(uint32_t idx) const noexcept { return slots_[idx]; }

  uint32_t capacity() const noexcept { return capacity_; }
  uint32_t in_use() const noexcept { return in_use_; }
  uint32_t available() const noexcept { return capacity_ - in_use_; }
  uint32_t high_water() const noexcept { return high_water_; }
  uint64_t alloc_failures() const noexcept { return alloc_failures_; }
  uint64_t bad_frees() const noexcept { return bad_frees_; }

 private:
  SegmentSlot* slots_;
  uint32_t capacity_;
  uint32_t free_head_;
  uint32_t in_use_ = 0;
  uint32_t high_water_ = 0;
  uint64_t alloc_failures_ = 0;
  uint64_t bad_frees_ = 0;
  bool owns_memory_;
};

enum StreamFlag : uint8_t {
  kStreamInitialised = 1u << 0,
  kStreamGapSeen = 1u << 1,       // Flush skipped missing bytes
  kStreamDepthReached = 1u << 2,  // depth bytes delivered: nothing more is
  kStreamFinSeen = 1u << 3,       // fin_seq is valid
  kStreamMidstream = 1u << 4,     // started without a SYN, from a data segment
};

// One direction's reassembly state; lives inside a flow. All-zero is the valid "not started"
// state (the flow table zeroes its flows); head and the counts mean something only once
// kStreamInitialised is set.
struct StreamDirection {
  uint64_t delivered;          // bytes handed to the sink
  uint32_t isn;                // initial sequence number (the SYN's; seq - 1 when midstream)
  uint32_t next_seq;           // sequence of the next byte to deliver
  uint32_t fin_seq;            // sequence just past the last byte, when kStreamFinSeen
  uint32_t head;               // first buffered (out-of-order) slot, lowest sequence first
  uint32_t buffered_bytes;     //
  uint16_t buffered_segments;  // slots held
  uint8_t flags;               // StreamFlag bits
  uint8_t reserved;
};
static_assert(sizeof(StreamDirection) == 32);

enum class StreamEvent : uint8_t {
  kOverlapDiffers,  // overlap with buffered data carrying different bytes (evasion signal)
  kRetransmission,  // overlap with already-delivered data: trimmed, cannot be compared
  kWindowExceeded,  // beyond the out-of-order window (segments, bytes or distance): dropped
  kPoolExhausted,   // no free slots in the worker's pool: dropped (exception policy applies)
  kDepthReached,    // depth bytes delivered; nothing more is, once per direction
  kDataAfterFin,    // bytes beyond the FIN's sequence: trimmed
};
const char* StreamEventName(StreamEvent e) noexcept;

// Receives one direction's stream. Called synchronously from Add/Flush; must not block and must
// not call back into the Reassembler for the same direction.
class StreamSink {
 public:
  // In-order bytes: a view into the packet (zero-copy) or into a pool slot; valid during the call.
  virtual void OnData(std::span<const uint8_t> data) noexcept = 0;
  // `missing_bytes` were never received (Flush only); data that follows comes next.
  virtual void OnGap(uint32_t missing_bytes) noexcept = 0;
  virtual void OnEvent(StreamEvent event) noexcept = 0;

 protected:
  ~StreamSink() = default;
};

struct ReassemblyConfig {
  OverlapPolicy policy = OverlapPolicy::kBsd;
  uint32_t max_segments = 256;    // slots buffered per direction (clamped to 65535)
  uint32_t max_bytes = 1u << 20;  // bytes buffered per direction
  uint32_t max_ahead = 1u << 22;  // an out-of-order segment must end within this of next_seq
                                  // (clamped to 2^30: sequence comparisons need < 2^31)
  uint64_t depth = 0;             // bytes delivered per direction; 0: unlimited

  bool operator==(const ReassemblyConfig&) const = default;
};

struct ReassemblyCounters {
  uint64_t segments_in_order = 0;
  uint64_t segments_out_of_order = 0;
  uint64_t overlaps = 0;         // segments overlapping buffered data
  uint64_t overlap_differs = 0;  // ... with different bytes
  uint64_t retransmissions = 0;  // segments overlapping delivered data
  uint64_t gaps = 0;             // gaps reported by Flush
  uint64_t gap_bytes = 0;
  uint64_t pool_exhausted = 0;
  uint64_t window_exceeded = 0;
  uint64_t depth_reached = 0;
  uint64_t data_after_fin = 0;
  uint64_t midstream_starts = 0;
  uint64_t oversized = 0;  // payloads over kMaxSegmentPayload, truncated
  uint64_t bytes_delivered = 0;
};

// Per worker: holds the worker's pool (not owned), the policy, the limits and the counters.
// Every call is bounded by the direction's max_segments (the list walk) and the payload size.
class Reassembler {
 public:
  enum class Result : uint8_t {
    kDelivered,       // in order: delivered (and any buffered data it made contiguous)
    kBuffered,        // out of order: buffered (or already buffered: only overlaps resolved)
    kEmpty,           // no payload (a FIN is still recorded)
    kDuplicate,       // entirely already delivered (a retransmission)
    kAfterFin,        // entirely beyond the FIN
    kDepthReached,    // the direction is past its depth: not inspected
    kWindowExceeded,  // dropped from reassembly: out-of-order window limit
    kPoolExhausted,   // dropped from reassembly: the caller applies the exception policy
  };

  Reassembler(SegmentPool* pool, const ReassemblyConfig& config) noexcept;

  // Starts a direction after its SYN: the first payload byte is isn + 1. Releases anything the
  // direction held before.
  void Init(StreamDirection* dir, uint32_t isn) noexcept;
  // Starts a direction without a SYN: the first payload byte is `seq`.
  void InitMidstream(StreamDirection* dir, uint32_t seq) noexcept;

  // Adds one segment's payload. An uninitialised direction starts midstream at `seq`. `fin`
  // marks seq + payload.size() as the end of the stream.
  Result Add(StreamDirection* dir, uint32_t seq, std::span<const uint8_t> payload, bool fin,
             StreamSink& sink) noexcept;

  // Flow end or timeout: reports each gap (OnGap) and delivers what was buffered after it
  // (OnData), up to the FIN when one was seen; frees every slot. The direction stays usable.
  void Flush(StreamDirection* dir, StreamSink& sink) noexcept;
  // Frees the direction's slots without delivering.
  void Release(StreamDirection* dir) noexcept;
  // The receiver acknowledged `acked` (the peer's ACK number): bytes before it that never reached
  // us are lost to the sensor, not in flight. When buffered data waits behind such a hole, reports
  // the hole (OnGap) and delivers what is then contiguous. Returns true when a gap was skipped.
  bool SkipAckedGap(StreamDirection* dir, uint32_t acked, StreamSink& sink) noexcept;

  OverlapPolicy policy() const noexcept { return policy_; }
  void set_policy(OverlapPolicy p) noexcept { policy_ = p; }
  const ReassemblyCounters& counters() const noexcept { return counters_; }
  SegmentPool& pool() noexcept { return *pool_; }

 private:
  bool NewWins(uint32_t ns, uint32_t ne, const SegmentSlot& s) const noexcept;
  void Emit(StreamDirection* dir, std::span<const uint8_t> data, StreamSink& sink) noexcept;
  void DrainContiguous(StreamDirection* dir, StreamSink& sink) noexcept;
  void FreeHead(StreamDirection* dir) noexcept;
  bool InOrder(StreamDirection* dir, uint32_t seq, uint32_t end, uint32_t ns, uint32_t ne,
               std::span<const uint8_t> payload, StreamSink& sink) noexcept;
  Result OutOfOrder(StreamDirection* dir, uint32_t seq, uint32_t end, uint32_t ns, uint32_t ne,
                    std::span<const uint8_t> payload, bool* differs, StreamSink& sink) noexcept;
  uint32_t InsertRange(StreamDirection* dir, uint32_t prev, uint32_t before, uint32_t from,
                       uint32_t to, uint32_t seq, uint32_t end,
                       std::span<const uint8_t> payload) noexcept;

  SegmentPool* pool_;
  OverlapPolicy policy_;
  uint32_t max_segments_;
  uint32_t max_bytes_;
  uint32_t max_ahead_;
  uint64_t depth_;
  ReassemblyCounters counters_;
};

}  // namespace vigil::dp
