// Publishes immutable snapshots to the workers (read-copy-update with DPDK's QSBR): the block
// table (verdict/block_table.h) and the rule set (detect/inspector.h) are published this way.
//
// The main thread builds a snapshot off the workers and Publish()es it: one atomic pointer
// store. Each worker reads the pointer once per loop pass (Current()) and reports a quiescent
// state at the end of the pass (Quiescent()), after which it holds no reference to any snapshot it
// read before. A replaced snapshot is retired with a QSBR token and freed by Reclaim() once every
// online worker has passed a quiescent point: the main thread never waits for the workers and the
// workers never wait for anyone.
//
// Threads: Publish(), Reclaim(), snapshot(), generation(), retired() on the main thread only.
// Online()/Offline()/Current()/Quiescent() on worker `id`'s own lcore.
#pragma once

#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

namespace vigil::dp {

template <class T>
class RcuPublisher {
 public:
  explicit RcuPublisher(unsigned max_workers) {
    const unsigned n = max_workers == 0 ? 1 : max_workers;
    const size_t size = rte_rcu_qsbr_get_memsize(n);
    qsbr_ = static_cast<rte_rcu_qsbr*>(rte_zmalloc("vigil_qsbr", size, RTE_CACHE_LINE_SIZE));
    if (qsbr_ == nullptr || rte_rcu_qsbr_init(qsbr_, n) != 0) {
      std::fprintf(stderr, "vigil: cannot allocate RCU state\n");
      std::abort();  // start-up only: without it the workers cannot be given snapshots safely
    }
    for (unsigned id = 0; id < n; ++id) rte_rcu_qsbr_thread_register(qsbr_, id);
  }
  ~RcuPublisher() {
    current_.store(nullptr, std::memory_order_release);
    rte_free(qsbr_);
  }
  RcuPublisher(const RcuPublisher&) = delete;
  RcuPublisher& operator=(const RcuPublisher&) = delete;

  // Worker side. Online() before the worker's loop, Offline() after it (an offline worker does
  // not hold up reclamation).
  void Online(unsigned id) noexcept { rte_rcu_qsbr_thread_online(qsbr_, id); }
  void Offline(unsigned id) noexcept { rte_rcu_qsbr_thread_offline(qsbr_, id); }
  // The snapshot in force (nullptr: none). Valid until the caller's next Quiescent().
  const T* Current() const noexcept { return current_.load(std::memory_order_acquire); }
  void Quiescent(unsigned id) noexcept { rte_rcu_qsbr_quiescent(qsbr_, id); }

  // Main thread. Swaps in `snapshot` (nullptr clears), remembering `generation` (the publisher's
  // number for it); the previous snapshot is retired.
  void Publish(std::shared_ptr<const T> snapshot, uint64_t generation) {
    current_.store(snapshot.get(), std::memory_order_release);
    if (snapshot_ != nullptr) {
      retired_.push_back({std::move(snapshot_), rte_rcu_qsbr_start(qsbr_)});
    }
    snapshot_ = std::move(snapshot);
    generation_ = generation;
    ++publishes_;
    Reclaim();
  }
  // Frees retired snapshots whose grace period is over; returns how many. Non-blocking; call it
  // from the main loop.
  size_t Reclaim() {
    // wait=false: 1 once every online worker has reported a quiescent state since the token.
    return std::erase_if(
        retired_, [&](const Retired& r) { return rte_rcu_qsbr_check(qsbr_, r.token, false) == 1; });
  }
  const std::shared_ptr<const T>& snapshot() const noexcept { return snapshot_; }
  uint64_t generation() const noexcept { return generation_; }
  size_t retired() const noexcept { return retired_.size(); }
  uint64_t publishes() const noexcept { return publishes_; }

 private:
  struct Retired {
    std::shared_ptr<const T> snapshot;
    uint64_t token;
  };
  rte_rcu_qsbr* qsbr_ = nullptr;
  std::atomic<const T*> current_{nullptr};
  std::shared_ptr<const T> snapshot_;  // keeps current_ alive
  uint64_t generation_ = 0;
  uint64_t publishes_ = 0;
  std::vector<Retired> retired_;
};

}  // namespace vigil::dp
