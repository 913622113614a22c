// The dataplane application after EAL init: mempools, ports, flow tables and event rings on each
// worker's NUMA node, the workers on their lcores, and the exporter/housekeeping loop on the main
// lcore (which is never a worker).
//
// Thread: main thread. Init() and Run() may block and allocate.
#pragma once

#include <rte_mempool.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dataplane/app/command_server.h"
#include "dataplane/app/config.h"
#include "dataplane/capture/history_spool.h"
#include "dataplane/capture/packet_history.h"
#include "dataplane/export/channel_client.h"
#include "dataplane/export/eve_writer.h"
#include "dataplane/export/event_ring.h"
#include "dataplane/export/file_store.h"
#include "dataplane/port/port.h"
#include "dataplane/verdict/block_publisher.h"
#include "dataplane/worker/worker.h"

namespace vigil::dp {

struct RunOptions {
  bool replay = false;      // stop at the end of input; packet time from RX timestamps
  uint64_t replay_pps = 0;  // replay: packets per second at most (0: as fast as possible)
};

class Dataplane {
 public:
  Dataplane();
  ~Dataplane();

  // The configuration as its file says, before command-line overrides, and the directory
  // relative paths in it are resolved against: a pushed configuration (docs/operations.md) may
  // differ from it only in what can change at runtime. Without it, Init's config is the base.
  void SetBaseConfig(const Config& file_config, std::string base_dir);

  // `ports` must already be probed by EAL (vdevs from --vdev, PCI devices, or ethdevs a test
  // created); they are matched by the device name in each PortConfig. Returns "" or an error.
  std::string Init(const Config& config, const RunOptions& options);

  // Launches the workers and runs the exporter until they stop: at the end of input in replay,
  // or when *stop becomes true. Then drains every event, flushes the EVE file and stops ports.
  // `reload` (may be nullptr; SIGHUP sets it): the rule files are read again and the new rule set
  // replaces the running one without stopping the workers (docs/rules.md, "Reload").
  void Run(std::atomic<bool>* stop, std::atomic<bool>* reload = nullptr);

  // Counters as one JSON object (see docs/dataplane.md for the fields).
  std::string CountersJson() const;

  // Sum over workers of one port's counters.
  struct PortTotals {
    uint64_t rx_pkts = 0, rx_bytes = 0, fwd_pkts = 0, fwd_bytes = 0;
    uint64_t drops[static_cast<int>(DropReason::kCount)] = {};
    uint64_t dropped() const;
    uint64_t in_flight() const { return rx_pkts - fwd_pkts - dropped(); }
  };
  PortTotals Totals(uint16_t port_index) const;
  const std::vector<Port>& ports() const { return ports_; }
  const EveWriter& eve() const { return eve_; }
  uint64_t flows_created() const;

 private:
  uint32_t DrainEvents();
  // The command socket's requests (docs/respond.md).
  bool HandleCommand(const std::string& op, const YAML::Node& req, std::string* result,
                     std::string* error);
  void PrintStats(double elapsed_s) const;
  static void PrintDetectStats(const rules::DetectorStats& st);
  // Configuration push (config_push.cc): config.get, config.stage, config.status, config.commit.
  struct StagedConfig;
  bool ConfigCommand(const std::string& op, const YAML::Node& req, std::string* result,
                     std::string* error);
  void StagedStatusJson(std::string* result) const;
  // Joins a finished loading thread (main loop; never waits for one still building).
  void ReapStagedConfig();
  // Rule reload (SIGHUP; config_push.cc): the running detect configuration's rule files are read
  // and compiled again on a loading thread, then published as a push's rule set is. A failure
  // keeps the running rules and says why; a request during a reload runs after it.
  struct RuleReload;
  void StartRuleReload();
  void PollRuleReload();  // main loop: publishes a finished reload

  Config config_;
  RunOptions options_;
  std::vector<Port> ports_;
  std::vector<rte_mempool*> pools_;
  std::vector<void*> ring_memory_;
  std::vector<std::unique_ptr<EventRing>> rings_;
  std::vector<void*> flow_memory_;
  std::vector<void*> defrag_memory_;  // per worker; nullptr when defrag is off
  std::vector<std::unique_ptr<Worker>> workers_;
  EveWriter eve_;
  std::unique_ptr<ChannelClient> channel_;  // events to vigil-control, when outputs.control is on
  std::unique_ptr<FileStore> files_;        // outputs.files: extracted files and fileinfo events
  // detect: the rule set the workers inspect with (a Detector and one scratch per worker),
  // published through RCU; a pushed configuration replaces it without stopping them.
  std::unique_ptr<RcuPublisher<DetectSnapshot>> detects_;
  rules::DetectorStats detect_stats_;  // of the rule set in force
  std::string detect_summary_;
  // Configuration push: the base (file) configuration, the running version and the one being
  // staged by a loading thread.
  std::optional<Config> base_config_;
  std::string base_dir_;
  std::string config_version_;  // "" until a configuration is pushed
  uint64_t config_generation_ = 0;
  std::unique_ptr<StagedConfig> staged_;
  std::unique_ptr<RuleReload> reload_;
  bool reload_again_ = false;  // SIGHUP during a reload: one more after it
  uint64_t rule_reloads_ = 0, rule_reloads_failed_ = 0;
  // Respond: the block table the workers check (RCU) and the command socket that replaces it.
  std::unique_ptr<BlockPublisher> blocks_;
  std::unique_ptr<CommandServer> commands_;
  std::vector<Cidr> never_block_;    // respond.never_block: applies to every pushed table
  std::string boot_id_;              // new at every start: control re-pushes when it changes
  uint64_t block_published_ns_ = 0;  // wall clock of the latest block.set (block.get reports it)
  // Packet history: one ring per worker (memory on its node) and the spool/export over them.
  std::vector<void*> history_memory_;
  std::vector<std::unique_ptr<PacketHistory>> histories_;
  std::unique_ptr<HistorySpool> spool_;
  uint64_t exports_ = 0;
  bool HistoryExport(const YAML::Node& req, std::string* result, std::string* error);
  uint64_t latest_packet_ns_ = 0;  // newest packet time seen on the rings (file timeouts)
  std::atomic<bool> worker_stop_{false};
  std::atomic<unsigned> workers_done_{0};
  double elapsed_s_ = 0;
  uint64_t stalls_ = 0;
  uint64_t bad_records_ = 0;  // ring records of unknown kind or size (a bug, counted)
};

}  // namespace vigil::dp
