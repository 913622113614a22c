// Port bring-up: finds each configured port's DPDK port id, sizes its queues to the workers that
// serve it, turns on symmetric RSS where the device has it, and starts it in promiscuous mode
// (a transparent bridge must take every frame, whatever its destination MAC).
//
// Thread: main thread at start-up and shutdown; may block.
#pragma once

#include <rte_mempool.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace vigil::dp {

struct Port {
  std::string name;        // from the config
  std::string device;      // PCI address or vdev string
  uint16_t port_id = 0;    // DPDK port id
  uint16_t peer = 0;       // index (into the ports vector) of the bridge peer; itself in replay
  uint16_t nb_queues = 1;  // RX queues = TX queues = workers serving this port
  int socket = -1;         // NUMA node of the device (-1: unknown / virtual)
  bool rss = false;        // symmetric RSS configured
  uint16_t rx_desc = 1024;
  uint16_t tx_desc = 1024;
  bool started = false;
};

// Symmetric Toeplitz key: the 16-bit pattern 0x6d5a repeated makes hash(src,dst) ==
// hash(dst,src) for IP addresses and ports, so both directions of a flow reach one queue
// (Woo & Park, "Scalable TCP Session Monitoring with Symmetric Receive-side Scaling", 2012).
inline void BuildSymmetricRssKey(uint8_t* key, size_t len) {
  for (size_t i = 0; i < len; ++i) key[i] = (i % 2 == 0) ? 0x6d : 0x5a;
}

// Resolves and configures every port of `ports` for `nb_workers` workers; `pools[w]` feeds RX
// queue w. Queue counts of bridge peers are equalised (min of the two). Returns "" or an error.
// Warnings (NUMA crossings, no RSS) are printed to stderr.
std::string SetupPorts(std::vector<Port>& ports, const std::vector<unsigned>& worker_lcores,
                       const std::vector<rte_mempool*>& pools, bool want_rx_timestamp);

void StopPorts(std::vector<Port>& ports);

}  // namespace vigil::dp
