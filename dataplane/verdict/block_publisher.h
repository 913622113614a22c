// Publishes block tables to the workers (read-copy-update with DPDK's QSBR).
//
// The main thread builds a BlockTable off the workers and Publish()es it: one atomic pointer
// store. Each worker reads the pointer once per loop pass (Current()) and reports a quiescent
// state at the end of the pass (Quiescent()), after which it holds no reference to any table it
// read before. A replaced table is retired with a QSBR token and freed by Reclaim() once every
// online worker has passed a quiescent point: the main thread never waits for the workers and the
// workers never wait for anyone.
//
// Threads: Publish(), Reclaim(), table(), generation(), retired() on the main thread only.
// Online()/Offline()/Current()/Quiescent() on worker `id`'s own lcore.
#pragma once

#include <rte_rcu_qsbr.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "dataplane/verdict/block_table.h"

namespace vigil::dp {

class BlockPublisher {
 public:
  explicit BlockPublisher(unsigned max_workers);
  ~BlockPublisher();
  BlockPublisher(const BlockPublisher&) = delete;
  BlockPublisher& operator=(const BlockPublisher&) = delete;

  // Worker side. Online() before the worker's loop, Offline() after it (an offline worker does
  // not hold up reclamation).
  void Online(unsigned id) noexcept;
  void Offline(unsigned id) noexcept;
  // The table in force (nullptr: none). Valid until the caller's next Quiescent().
  const BlockTable* Current() const noexcept { return current_.load(std::memory_order_acquire); }
  void Quiescent(unsigned id) noexcept { rte_rcu_qsbr_quiescent(qsbr_, id); }

  // Main thread. Swaps in `table` (nullptr clears), remembering `generation` (control's number
  // for it); the previous table is retired.
  void Publish(std::shared_ptr<const BlockTable> table, uint64_t generation);
  // Frees retired tables whose grace period is over. Non-blocking; call it from the main loop.
  void Reclaim();
  const std::shared_ptr<const BlockTable>& table() const noexcept { return table_; }
  uint64_t generation() const noexcept { return generation_; }
  size_t retired() const noexcept { return retired_.size(); }
  uint64_t publishes() const noexcept { return publishes_; }

 private:
  struct Retired {
    std::shared_ptr<const BlockTable> table;
    uint64_t token;
  };
  rte_rcu_qsbr* qsbr_ = nullptr;
  std::atomic<const BlockTable*> current_{nullptr};
  std::shared_ptr<const BlockTable> table_;  // keeps current_ alive
  uint64_t generation_ = 0;
  uint64_t publishes_ = 0;
  std::vector<Retired> retired_;
};

}  // namespace vigil::dp
