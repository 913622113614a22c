#include "dataplane/verdict/block_publisher.h"

#include <rte_malloc.h>

#include <cstdio>
#include <cstdlib>

namespace vigil::dp {

BlockPublisher::BlockPublisher(unsigned max_workers) {
  const unsigned n = max_workers == 0 ? 1 : max_workers;
  const size_t size = rte_rcu_qsbr_get_memsize(n);
  qsbr_ = static_cast<rte_rcu_qsbr*>(rte_zmalloc("vigil_block_qsbr", size, RTE_CACHE_LINE_SIZE));
  if (qsbr_ == nullptr || rte_rcu_qsbr_init(qsbr_, n) != 0) {
    std::fprintf(stderr, "vigil: cannot allocate the block table's RCU state\n");
    std::abort();  // start-up only: without it the workers cannot be given a table safely
  }
  for (unsigned id = 0; id < n; ++id) rte_rcu_qsbr_thread_register(qsbr_, id);
}

BlockPublisher::~BlockPublisher() {
  current_.store(nullptr, std::memory_order_release);
  rte_free(qsbr_);
}

void BlockPublisher::Online(unsigned id) noexcept { rte_rcu_qsbr_thread_online(qsbr_, id); }

void BlockPublisher::Offline(unsigned id) noexcept { rte_rcu_qsbr_thread_offline(qsbr_, id); }

void BlockPublisher::Publish(std::shared_ptr<const BlockTable> table, uint64_t generation) {
  current_.store(table.get(), std::memory_order_release);
  if (table_ != nullptr) retired_.push_back({std::move(table_), rte_rcu_qsbr_start(qsbr_)});
  table_ = std::move(table);
  generation_ = generation;
  ++publishes_;
  Reclaim();
}

void BlockPublisher::Reclaim() {
  // wait=false: 1 once every online worker has reported a quiescent state since the token.
  std::erase_if(retired_,
                [&](const Retired& r) { return rte_rcu_qsbr_check(qsbr_, r.token, false) == 1; });
}

}  // namespace vigil::dp
