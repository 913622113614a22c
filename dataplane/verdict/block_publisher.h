// Publishes block tables to the workers: an RcuPublisher (rcu/rcu_publisher.h) of BlockTable.
// The main thread builds a table and publishes it; workers read it once per loop pass.
#pragma once

#include "dataplane/rcu/rcu_publisher.h"
#include "dataplane/verdict/block_table.h"

namespace vigil::dp {

using BlockPublisher = RcuPublisher<BlockTable>;

}  // namespace vigil::dp
