#include "dataplane/export/event_ring.h"

#include <cstdlib>
#include <new>

namespace vigil::dp {

EventRing::EventRing(size_t bytes, void* memory) : owns_(memory == nullptr) {
  if (bytes < 4096 || (bytes & (bytes - 1)) != 0) bytes = 4096;
  mask_ = bytes - 1;
  buf_ = static_cast<uint8_t*>(memory != nullptr ? memory : std::aligned_alloc(64, bytes));
  if (buf_ == nullptr) throw std::bad_alloc();
}

EventRing::~EventRing() {
  if (owns_) std::free(buf_);
}

uint8_t* EventRing::Reserve(uint32_t size) noexcept {
  const uint64_t need = Padded(size);
  const uint64_t cap = mask_ + 1;
  if (need > cap / 4) return nullptr;
  uint64_t head = head_.load(std::memory_order_relaxed);
  const uint64_t tail = tail_.load(std::memory_order_acquire);
  const uint64_t off = head & mask_;
  const uint64_t tail_room = cap - off;
  // Room at the end for this record, or a pad record plus the record at offset 0.
  const uint64_t total = need <= tail_room ? need : tail_room + need;
  if (head + total - tail > cap) return nullptr;
  if (need > tail_room) {
    // The pad record's header always fits: positions are 8-aligned and tail_room >= 8.
    Header pad{static_cast<uint32_t>(tail_room - 8), kPadKind};
    std::memcpy(buf_ + off, &pad, sizeof pad);
    head += tail_room;
    // Publish the pad now so that the consumer can skip it even before Commit.
    head_.store(head, std::memory_order_release);
  }
  reserved_at_ = head;
  return buf_ + (head & mask_) + sizeof(Header);
}

void EventRing::Commit(uint32_t kind, uint32_t size) noexcept {
  Header h{size, kind};
  std::memcpy(buf_ + (reserved_at_ & mask_), &h, sizeof h);
  head_.store(reserved_at_ + Padded(size), std::memory_order_release);
}

bool EventRing::Peek(uint32_t* kind, std::span<const uint8_t>* payload) noexcept {
  for (;;) {
    const uint64_t tail = tail_.load(std::memory_order_relaxed);
    const uint64_t head = head_.load(std::memory_order_acquire);
    if (tail == head) return false;
    Header h;
    std::memcpy(&h, buf_ + (tail & mask_), sizeof h);
    if (h.kind == kPadKind) {
      tail_.store(tail + h.size + 8, std::memory_order_release);
      continue;
    }
    *kind = h.kind;
    *payload = std::span<const uint8_t>(buf_ + (tail & mask_) + sizeof(Header), h.size);
    peeked_size_ = Padded(h.size);
    return true;
  }
}

void EventRing::Pop() noexcept {
  tail_.store(tail_.load(std::memory_order_relaxed) + peeked_size_, std::memory_order_release);
  peeked_size_ = 0;
}

}  // namespace vigil::dp
