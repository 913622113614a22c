#include "dataplane/port/port.h"

#include <rte_ethdev.h>
#include <rte_lcore.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace vigil::dp {
namespace {

std::string DeviceName(const std::string& device) {
  const size_t comma = device.find(',');
  return comma == std::string::npos ? device : device.substr(0, comma);
}

bool HasNoRss(const rte_eth_dev_info& info) { return info.flow_type_rss_offloads == 0; }

std::string Err(const Port& p, const char* what, int rc) {
  return "port " + p.name + " (" + p.device + "): " + what + ": " + rte_strerror(-rc);
}

}  // namespace

std::string SetupPorts(std::vector<Port>& ports, const std::vector<unsigned>& worker_lcores,
                       const std::vector<rte_mempool*>& pools, bool want_rx_timestamp) {
  const auto nb_workers = static_cast<uint16_t>(worker_lcores.size());
  // Resolve port ids and queue counts first, so bridge peers can be equalised.
  std::vector<rte_eth_dev_info> infos(ports.size());
  for (size_t i = 0; i < ports.size(); ++i) {
    Port& p = ports[i];
    int rc = rte_eth_dev_get_port_by_name(DeviceName(p.device).c_str(), &p.port_id);
    if (rc != 0) {
      return "port " + p.name + ": no DPDK device named '" + DeviceName(p.device) +
             "' (not probed: check the device string and that its driver is available)";
    }
    rc = rte_eth_dev_info_get(p.port_id, &infos[i]);
    if (rc != 0) return Err(p, "rte_eth_dev_info_get", rc);
    p.nb_queues = std::min<uint16_t>({nb_workers, infos[i].max_rx_queues, infos[i].max_tx_queues});
    if (p.nb_queues == 0) return "port " + p.name + ": device has no RX or TX queue";
    // Without RSS the device would put everything on queue 0 anyway (and af_packet's kernel
    // fanout rolls over under load, which breaks flow affinity): one queue, one worker.
    if (HasNoRss(infos[i])) p.nb_queues = 1;
    p.socket = rte_eth_dev_socket_id(p.port_id);
  }
  for (Port& p : ports) {
    Port& q = ports[p.peer];
    const uint16_t n = std::min(p.nb_queues, q.nb_queues);
    p.nb_queues = n;
    q.nb_queues = n;
  }

  for (size_t i = 0; i < ports.size(); ++i) {
    Port& p = ports[i];
    const rte_eth_dev_info& info = infos[i];
    rte_eth_conf conf;
    std::memset(&conf, 0, sizeof(conf));
    uint8_t key[64];
    p.rss = p.nb_queues > 1 && info.flow_type_rss_offloads != 0;
    if (p.rss) {
      const uint8_t key_len = info.hash_key_size != 0 ? info.hash_key_size : 40;
      BuildSymmetricRssKey(key, std::min<size_t>(key_len, sizeof(key)));
      conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
      conf.rx_adv_conf.rss_conf.rss_key = key;
      conf.rx_adv_conf.rss_conf.rss_key_len = std::min<uint8_t>(key_len, sizeof(key));
      conf.rx_adv_conf.rss_conf.rss_hf =
          (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
    } else if (nb_workers > 1) {
      std::fprintf(stderr,
                   "vigil: port %s: %u queue(s), no RSS on this device: only worker lcore %u "
                   "serves it (both directions of every flow stay on one worker)\n",
                   p.name.c_str(), p.nb_queues, worker_lcores[0]);
    }
    if (want_rx_timestamp && (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_TIMESTAMP)) {
      conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_TIMESTAMP;
    }
    if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS) {
      conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
    }
    int rc = rte_eth_dev_configure(p.port_id, p.nb_queues, p.nb_queues, &conf);
    if (rc != 0) return Err(p, "rte_eth_dev_configure", rc);
    uint16_t rx_desc = p.rx_desc;
    uint16_t tx_desc = p.tx_desc;
    rc = rte_eth_dev_adjust_nb_rx_tx_desc(p.port_id, &rx_desc, &tx_desc);
    if (rc != 0) return Err(p, "rte_eth_dev_adjust_nb_rx_tx_desc", rc);
    for (uint16_t q = 0; q < p.nb_queues; ++q) {
      const unsigned lcore = worker_lcores[q];
      const int wsock = static_cast<int>(rte_lcore_to_socket_id(lcore));
      if (p.socket >= 0 && p.socket != wsock) {
        std::fprintf(stderr,
                     "vigil: warning: worker lcore %u (NUMA node %d) serves port %s on node %d: "
                     "every packet crosses the interconnect; give this port a worker on its "
                     "node\n",
                     lcore, wsock, p.name.c_str(), p.socket);
      }
      rte_eth_rxconf rxconf = info.default_rxconf;
      rxconf.offloads = conf.rxmode.offloads;
      rc = rte_eth_rx_queue_setup(p.port_id, q, rx_desc, wsock, &rxconf, pools[q]);
      if (rc != 0) return Err(p, "rte_eth_rx_queue_setup", rc);
      rte_eth_txconf txconf = info.default_txconf;
      txconf.offloads = conf.txmode.offloads;
      rc = rte_eth_tx_queue_setup(p.port_id, q, tx_desc, wsock, &txconf);
      if (rc != 0) return Err(p, "rte_eth_tx_queue_setup", rc);
    }
    rc = rte_eth_dev_start(p.port_id);
    if (rc != 0) return Err(p, "rte_eth_dev_start", rc);
    p.started = true;
    rc = rte_eth_promiscuous_enable(p.port_id);
    if (rc != 0 && rc != -ENOTSUP) return Err(p, "rte_eth_promiscuous_enable", rc);
    rte_eth_stats_reset(p.port_id);
  }
  return "";
}

void StopPorts(std::vector<Port>& ports) {
  for (Port& p : ports) {
    if (!p.started) continue;
    rte_eth_dev_stop(p.port_id);
    rte_eth_dev_close(p.port_id);
    p.started = false;
  }
}

}  // namespace vigil::dp
