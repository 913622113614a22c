// A single-producer, single-consumer ring of variable-length binary records: a worker produces
// (flow ends, protocol events), the exporter consumes.
//
// Thread: exactly one producer thread and one consumer thread. Lock-free, never blocks: a record
// that does not fit is refused (the producer counts the loss). No allocation after construction.
//
// Layout: a power-of-two byte array. Each record is an 8-byte header (size, kind) followed by
// its payload, padded to 8 bytes. A record never wraps: when it does not fit before the end of the
// array, a padding record fills the tail and the record starts at offset 0.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace vigil::dp {

class EventRing {
 public:
  static constexpr uint32_t kPadKind = 0xffff;
  struct Header {
    uint32_t size;  // payload bytes (not padded)
    uint32_t kind;  // record type; kPadKind: skip to the start of the array
  };

  // `bytes`: a power of two >= 4096. `memory`: `bytes` bytes aligned to 64 owned by the caller, or
  // nullptr to allocate (start-up only).
  explicit EventRing(size_t bytes, void* memory = nullptr);
  ~EventRing();
  EventRing(const EventRing&) = delete;
  EventRing& operator=(const EventRing&) = delete;

  // Producer: space for a record of `size` payload bytes, or nullptr when the ring is full (or
  // the record is larger than a quarter of the ring). Fill it, then Commit with the same size.
  uint8_t* Reserve(uint32_t size) noexcept;
  void Commit(uint32_t kind, uint32_t size) noexcept;
  // Producer: Reserve + copy + Commit. False when full.
  bool Push(uint32_t kind, std::span<const uint8_t> payload) noexcept {
    uint8_t* p = Reserve(static_cast<uint32_t>(payload.size()));
    if (p == nullptr) return false;
    if (!payload.empty()) std::memcpy(p, payload.data(), payload.size());
    Commit(kind, static_cast<uint32_t>(payload.size()));
    return true;
  }

  // Consumer: the oldest record, or false when empty. The payload stays valid until Pop.
  bool Peek(uint32_t* kind, std::span<const uint8_t>* payload) noexcept;
  void Pop() noexcept;

  size_t capacity() const noexcept { return mask_ + 1; }
  // Bytes in use (approximate from the consumer's side).
  size_t used() const noexcept {
    return head_.load(std::memory_order_acquire) - tail_.load(std::memory_order_acquire);
  }

 private:
  static uint64_t Padded(uint32_t size) noexcept { return (uint64_t{size} + 8 + 7) & ~uint64_t{7}; }

  uint8_t* buf_;
  uint64_t mask_;
  bool owns_;
  // Positions are byte counters that only grow; offset = position & mask_.
  alignas(64) std::atomic<uint64_t> head_{0};  // producer: next write position
  uint64_t reserved_at_ = 0;                   // producer: position of the reserved record
  alignas(64) std::atomic<uint64_t> tail_{0};  // consumer: next read position
  uint64_t peeked_size_ = 0;                   // consumer: padded size of the peeked record
};

}  // namespace vigil::dp
