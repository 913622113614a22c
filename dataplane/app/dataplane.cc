#include "dataplane/app/dataplane.h"

#include <malloc.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mbuf_dyn.h>
#include <sys/random.h>
#include <unistd.h>

#include <chrono>
#include <cinttypes>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

#include "dataplane/app/config_push.h"
#include "dataplane/app/privileges.h"
#include "dataplane/capture/history_filter.h"
#include "dataplane/verdict/block_json.h"

// jemalloc's control call, when the binary runs on jemalloc (vigil-dataplane links it; the test
// binaries and the sanitizer build do not): weak, so it is null otherwise.
extern "C" int mallctl(const char* name, void* oldp, size_t* oldlenp, void* newp, size_t newlen)
    __attribute__((weak));

namespace vigil::dp {
namespace {

// A retired rule set is tens of MiB. The allocator would keep its freed pages (jemalloc for about
// ten seconds, glibc until the heap top is freed), so a box reloading often would stay at two sets'
// resident size and a single reload would leave one set's worth for a while. Return them now: on
// the main thread, after the grace period, never on a worker (workers do not allocate).
void ReturnFreedPages() {
  if (mallctl != nullptr) {
    mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0);  // 4096: MALLCTL_ARENAS_ALL
  } else {
    malloc_trim(0);
  }
}

struct LaunchArg {
  Worker* worker;
  std::atomic<unsigned>* done;
};

int WorkerMain(void* p) {
  auto* arg = static_cast<LaunchArg*>(p);
  // A worker needs no capability: its queues and rings are set up. Capabilities are per thread.
  if (const std::string err = DropThreadCapabilities(); !err.empty()) {
    std::fprintf(stderr, "vigil: worker lcore %u: dropping capabilities: %s\n",
                 arg->worker->lcore(), err.c_str());
  }
  arg->worker->Run();
  // Release: the main thread reads the worker's final counters after seeing the count rise.
  arg->done->fetch_add(1, std::memory_order_release);
  delete arg;
  return 0;
}

uint64_t SecretSeed() {
  uint64_t seed = 0;
  if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed)) {
    seed = rte_rdtsc() ^ (static_cast<uint64_t>(getpid()) << 32);
  }
  return seed;
}

void AppendKV(std::string* out, const char* key, uint64_t v, bool comma = true) {
  char buf[96];
  std::snprintf(buf, sizeof(buf), "%s\"%s\":%" PRIu64, comma ? "," : "", key, v);
  out->append(buf);
}

}  // namespace

uint64_t Dataplane::PortTotals::dropped() const {
  uint64_t d = 0;
  for (uint64_t v : drops) d += v;
  return d;
}

Dataplane::Dataplane() = default;

Dataplane::~Dataplane() {
  commands_.reset();
  spool_.reset();
  StopPorts(ports_);
  workers_.clear();
  histories_.clear();
  for (void* m : history_memory_) rte_free(m);
  for (void* m : flow_memory_) rte_free(m);
  for (void* m : defrag_memory_) rte_free(m);
  rings_.clear();
  for (void* m : ring_memory_) rte_free(m);
  for (rte_mempool* p : pools_) rte_mempool_free(p);
}

std::string Dataplane::Init(const Config& config, const RunOptions& options) {
  config_ = config;
  options_ = options;
  const size_t nb_workers = config.worker_lcores.size();
  for (unsigned lcore : config.worker_lcores) {
    if (!rte_lcore_is_enabled(lcore) || lcore == rte_get_main_lcore()) {
      return "workers.lcores: lcore " + std::to_string(lcore) +
             " is not an enabled worker lcore of this EAL instance";
    }
  }

  // The signature engine, before anything else is set up: a rule set that does not build is a
  // start-up error, and compiling it can take seconds.
  std::shared_ptr<const DetectSnapshot> rule_set;
  if (config.detect.enabled) {
    DetectLoad load = LoadDetector(config.detect);
    std::fprintf(stderr, "vigil-dataplane: detect: %s\n", load.summary.c_str());
    if (load.detector == nullptr) return load.error;
    PrintDetectStats(load.stats);
    detect_stats_ = load.stats;
    detect_summary_ = load.summary;
    std::string serr;
    rule_set = MakeDetectSnapshot(std::move(load.detector), nb_workers, "",
                                  config.detect.inline_actions, &serr);
    if (rule_set == nullptr) return serr;
  }
  // Every worker can inspect: a pushed configuration may turn detect on (or change its rules)
  // at runtime through this publisher.
  detects_ = std::make_unique<RcuPublisher<DetectSnapshot>>(static_cast<unsigned>(nb_workers));
  if (rule_set != nullptr) detects_->Publish(std::move(rule_set), 0);

  // Per worker, on the worker's NUMA node: mempool, event ring, flow table memory.
  for (size_t w = 0; w < nb_workers; ++w) {
    const int socket = static_cast<int>(rte_lcore_to_socket_id(config.worker_lcores[w]));
    const std::string pool_name = "vigil_mp" + std::to_string(w);
    rte_mempool* pool = rte_pktmbuf_pool_create(pool_name.c_str(), config.mbufs_per_worker, 256, 0,
                                                RTE_MBUF_DEFAULT_BUF_SIZE, socket);
    if (pool == nullptr) {
      return "workers.mbufs_per_worker: cannot create mempool of " +
             std::to_string(config.mbufs_per_worker) + " mbufs on node " + std::to_string(socket) +
             ": " + rte_strerror(rte_errno) +
             " (raise eal.memory.size_mb or lower mbufs_per_worker)";
    }
    pools_.push_back(pool);
    const size_t ring_bytes = size_t{config.event_ring_mb} << 20;
    void* ring_mem = rte_malloc_socket("vigil_events", ring_bytes, 64, socket);
    if (ring_mem == nullptr) {
      return "outputs.event_ring_mb: cannot allocate " + std::to_string(config.event_ring_mb) +
             " MiB for the event ring on node " + std::to_string(socket) +
             " (raise eal.memory.size_mb or lower event_ring_mb)";
    }
    ring_memory_.push_back(ring_mem);
    rings_.push_back(std::make_unique<EventRing>(ring_bytes, ring_mem));
    void* mem =
        rte_zmalloc_socket("vigil_flows", FlowTable::MemoryBytes(config.flow.capacity), 64, socket);
    if (mem == nullptr) {
      return "flow.capacity: cannot allocate " +
             std::to_string(FlowTable::MemoryBytes(config.flow.capacity) >> 20) +
             " MiB for the flow table on node " + std::to_string(socket) +
             " (raise eal.memory.size_mb or lower flow.capacity)";
    }
    flow_memory_.push_back(mem);
    void* dmem = nullptr;
    if (config.defrag.enabled) {
      const size_t bytes = Defragmenter::MemoryBytes(config.defrag.defrag);
      dmem = rte_malloc_socket("vigil_defrag", bytes, 64, socket);
      if (dmem == nullptr) {
        return "defrag: cannot allocate " + std::to_string(bytes >> 20) +
               " MiB for the defragmenter on node " + std::to_string(socket) +
               " (raise eal.memory.size_mb or lower defrag.trackers/pool_slots)";
      }
    }
    defrag_memory_.push_back(dmem);
  }

  // Ports: from the config, each bridged to its peer.
  for (const PortConfig& pc : config.ports) {
    Port p;
    p.name = pc.name;
    p.device = pc.device;
    p.rx_desc = pc.rx_desc;
    p.tx_desc = pc.tx_desc;
    ports_.push_back(p);
  }
  auto index_of = [&](const std::string& name) -> int {
    for (size_t i = 0; i < ports_.size(); ++i) {
      if (ports_[i].name == name) return static_cast<int>(i);
    }
    return -1;
  };
  for (Port& p : ports_) p.peer = static_cast<uint16_t>(&p - ports_.data());  // replay: itself
  for (const BridgeConfig& b : config.bridges) {
    const int a = index_of(b.a);
    const int c = index_of(b.b);
    if (a < 0 || c < 0) return "bridges: unknown port in " + b.a + " <-> " + b.b;
    ports_[a].peer = static_cast<uint16_t>(c);
    ports_[c].peer = static_cast<uint16_t>(a);
  }
  if (ports_.size() > kMaxPorts) return "ports: at most " + std::to_string(kMaxPorts);
  std::vector<unsigned> lcores(config.worker_lcores.begin(), config.worker_lcores.end());
  std::string err = SetupPorts(ports_, lcores, pools_, options.replay);
  if (!err.empty()) return err;

  WorkerOptions wo;
  wo.replay = options.replay;
  wo.replay_pps = options.replay_pps;
  wo.flow_table_full = config.exception_policy.flow_table_full;
  wo.defrag_memcap = config.exception_policy.defrag_memcap;
  wo.tx_flush_us = config.tx_flush_us;
  if (options.replay) {
    int offset = -1;
    uint64_t flag = 0;
    if (rte_mbuf_dyn_rx_timestamp_register(&offset, &flag) == 0) {
      wo.timestamp_offset = offset;
      wo.timestamp_flag = flag;
      // net_pcap (DPDK 22.11) stores the capture's timestamp in microseconds since the epoch.
      wo.timestamp_scale = 1000;
    }
  }
  const uint64_t seed = config.flow.hash_seed.has_value() ? *config.flow.hash_seed : SecretSeed();
  for (size_t w = 0; w < nb_workers; ++w) {
    std::vector<WorkerQueue> queues;
    for (size_t i = 0; i < ports_.size(); ++i) {
      const Port& p = ports_[i];
      if (w >= p.nb_queues) continue;  // this port has fewer queues than workers
      const Port& peer = ports_[p.peer];
      queues.push_back(WorkerQueue{static_cast<uint16_t>(i), p.port_id, static_cast<uint16_t>(w),
                                   p.peer, peer.port_id, static_cast<uint16_t>(w)});
    }
    if (queues.empty()) {
      std::fprintf(stderr,
                   "vigil: worker lcore %u has no queue to serve (ports have fewer "
                   "queues than workers): it idles\n",
                   config.worker_lcores[w]);
    }
    wo.worker_id = static_cast<uint16_t>(w);
    wo.lcore = config.worker_lcores[w];
    // Each worker keys its table with its own secret derived from the seed.
    workers_.push_back(std::make_unique<Worker>(
        wo, config.flow, config.app_layer,
        config.defrag.enabled ? std::optional<DefragConfig>(config.defrag.defrag) : std::nullopt,
        defrag_memory_[w], seed + 0x9e3779b97f4a7c15ull * w, flow_memory_[w], std::move(queues),
        static_cast<uint16_t>(ports_.size()), rings_[w].get(), &worker_stop_));
    workers_.back()->EnableDetect(detects_.get());
  }
  if (config.history.enabled) {
    const HistoryConfig& hc = config.history;
    std::vector<PacketHistory*> rings;
    for (size_t w = 0; w < workers_.size(); ++w) {
      const size_t bytes = PacketHistory::MemoryBytes(size_t{hc.memory_mb_per_worker} << 20);
      const int socket = static_cast<int>(rte_lcore_to_socket_id(config.worker_lcores[w]));
      void* mem = rte_malloc_socket("vigil_history", bytes, 64, socket);
      if (mem == nullptr) {
        return "history: cannot allocate " + std::to_string(bytes >> 20) + " MiB for worker " +
               std::to_string(w) + " (history.memory_mb, eal memory)";
      }
      history_memory_.push_back(mem);
      histories_.push_back(std::make_unique<PacketHistory>(bytes, hc.snaplen, mem));
      rings.push_back(histories_.back().get());
      workers_[w]->EnableHistory(histories_.back().get());
    }
    spool_ = std::make_unique<HistorySpool>(SpoolOptions::FromConfig(hc), std::move(rings));
    err = spool_->Open();
    if (!err.empty()) return "history: " + err;
    for (const std::string& e : spool_->open_errors()) {
      std::fprintf(stderr, "vigil: history: %s\n", e.c_str());
    }
  }
  if (config.commands_enabled) {
    for (const std::string& text : config.never_block) {
      Cidr c;
      std::string cerr;
      if (!ParseCidr(text, &c, &cerr)) return "respond.never_block: " + cerr;
      never_block_.push_back(c);
    }
    blocks_ = std::make_unique<BlockPublisher>(static_cast<unsigned>(workers_.size()));
    for (auto& w : workers_) w->EnableBlocking(blocks_.get());
    uint8_t id[8];
    if (getrandom(id, sizeof id, 0) != static_cast<ssize_t>(sizeof id)) {
      return "cannot read random bytes for the boot id";
    }
    char hex[17];
    for (int i = 0; i < 8; ++i) std::snprintf(hex + 2 * i, 3, "%02x", id[i]);
    boot_id_ = hex;
    commands_ = std::make_unique<CommandServer>(
        [this](const std::string& op, const YAML::Node& req, std::string* result,
               std::string* error) { return HandleCommand(op, req, result, error); });
    err = commands_->Listen(config.commands_socket);
    if (!err.empty()) return err;
    std::fprintf(stderr, "vigil: commands on %s (boot id %s)\n", config.commands_socket.c_str(),
                 boot_id_.c_str());
  }

  if (config.eve_enabled) {
    err = eve_.Open(config.eve_path, config.sensor_name);
    if (!err.empty()) return err;
  }
  if (config.control_enabled) {
    ChannelClientOptions co;
    co.socket_path = config.control_socket;
    co.sensor = config.sensor_name;
    co.journal_dir = config.control_journal_dir;
    co.journal_max_bytes = uint64_t{config.control_journal_mb} << 20;
    std::string cerr;
    channel_ = ChannelClient::Open(co, &cerr);
    if (channel_ == nullptr) return "outputs.control: " + cerr;
    // Every EVE line also goes to control, journalled until it is acknowledged.
    eve_.set_line_hook([this](std::string_view line) { channel_->Submit(line); });
  }
  if (config.app_layer.enabled && config.app_layer.files.enabled) {
    const FilesConfig& fc = config.app_layer.files;
    FileStoreOptions fo;
    fo.dir = fc.dir;
    fo.max_file_bytes = uint64_t{fc.max_file_mb} << 20;
    fo.max_total_bytes = uint64_t{fc.max_total_mb} << 20;
    // fileinfo events take the same path as every other event (EVE file and control).
    files_ = std::make_unique<FileStore>(
        fo, [this](std::span<const uint8_t> record) { eve_.WriteApp(record); });
    err = files_->Open();
    if (!err.empty()) return err;
  }
  return "";
}

uint32_t Dataplane::DrainEvents() {
  uint32_t total = 0;
  for (auto& ring : rings_) {
    uint32_t kind;
    std::span<const uint8_t> rec;
    // A bounded batch per ring per pass, so that one busy worker cannot starve the others.
    for (int n = 0; n < 4096 && ring->Peek(&kind, &rec); ++n) {
      if (kind == kEventFlowEnd && rec.size() == sizeof(FlowRecord)) {
        FlowRecord r;
        std::memcpy(&r, rec.data(), sizeof r);
        // The flow's files not closed by now never will be: their fileinfo precedes the flow.
        if (files_ != nullptr) files_->OnFlowEnd(r.flow_id);
        eve_.Write(r);
        if (r.end_ns > latest_packet_ns_) latest_packet_ns_ = r.end_ns;
      } else if (kind == kEventApp) {
        eve_.WriteApp(rec);
        if (rec.size() >= sizeof(AppEventHeader)) {
          uint64_t ts;
          std::memcpy(&ts, rec.data() + offsetof(AppEventHeader, ts_ns), sizeof ts);
          if (ts > latest_packet_ns_) latest_packet_ns_ = ts;
        }
      } else if (kind >= kEventFileOpen && kind <= kEventFileClose) {
        if (files_ != nullptr) {
          files_->OnRecord(kind, rec);
        } else {
          ++bad_records_;
        }
      } else {
        ++bad_records_;
      }
      ring->Pop();
      ++total;
    }
  }
  return total;
}

void Dataplane::Run(std::atomic<bool>* stop, std::atomic<bool>* reload) {
  const auto t0 = std::chrono::steady_clock::now();
  for (auto& w : workers_) {
    auto* arg = new LaunchArg{w.get(), &workers_done_};
    rte_eal_remote_launch(WorkerMain, arg, w->lcore());
  }
  std::vector<uint64_t> last_iter(workers_.size(), 0);
  auto last_check = t0;
  auto last_stats = t0;
  auto last_flush = t0;
  auto last_spool = t0;
  while (workers_done_.load(std::memory_order_acquire) < workers_.size()) {
    if (stop->load(std::memory_order_relaxed)) worker_stop_.store(true, std::memory_order_relaxed);
    uint32_t n = DrainEvents();
    if (channel_ != nullptr) channel_->Poll();
    if (commands_ != nullptr) {
      n += commands_->Poll();
      blocks_->Reclaim();
      ReapStagedConfig();
    }
    if (reload != nullptr && reload->exchange(false, std::memory_order_relaxed)) {
      StartRuleReload();
    }
    PollRuleReload();
    if (detects_->Reclaim() > 0) ReturnFreedPages();
    const auto now = std::chrono::steady_clock::now();
    if (spool_ != nullptr && now - last_spool > std::chrono::milliseconds(10)) {
      spool_->Spool();
      last_spool = now;
    }
    if (now - last_flush > std::chrono::milliseconds(200)) {
      if (files_ != nullptr) files_->Expire(latest_packet_ns_);
      eve_.Flush();
      last_flush = now;
    }
    // Watchdog: a worker whose loop counter stops moving is stalled (it never blocks by design,
    // so this means a bug or a starved core).
    if (now - last_check > std::chrono::seconds(2)) {
      for (size_t i = 0; i < workers_.size(); ++i) {
        const uint64_t it = workers_[i]->counters().iterations.Get();
        if (it == last_iter[i] && !worker_stop_.load(std::memory_order_relaxed)) {
          ++stalls_;
          std::fprintf(stderr, "vigil: watchdog: worker lcore %u made no progress in 2 s\n",
                       workers_[i]->lcore());
        }
        last_iter[i] = it;
      }
      last_check = now;
    }
    if (config_.stats_interval_s > 0 &&
        now - last_stats > std::chrono::seconds(config_.stats_interval_s)) {
      PrintStats(std::chrono::duration<double>(now - t0).count());
      last_stats = now;
    }
    if (n == 0) std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  rte_eal_mp_wait_lcore();
  elapsed_s_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  while (DrainEvents() > 0) {
  }
  if (files_ != nullptr) files_->CloseAll();
  if (spool_ != nullptr) spool_->Spool();  // the rings stay readable for exports until exit
  eve_.Close();
  if (channel_ != nullptr) {
    // Replay ends when control has everything (it may be slower than the capture); live, a
    // shutdown waits a little and leaves the rest in the journal for the next start.
    const uint64_t wait_ms = options_.replay ? 600'000 : 5'000;
    if (!channel_->Drain(wait_ms)) {
      std::fprintf(stderr, "vigil: %llu events not yet acknowledged by control stay journalled\n",
                   static_cast<unsigned long long>(channel_->counters().journal_events));
    }
    channel_->Close();
  }
  // Ports stay configured until destruction so the final counters can still read device stats.
}

bool Dataplane::HandleCommand(const std::string& op, const YAML::Node& req, std::string* result,
                              std::string* error) {
  if (op == "hello") {
    const std::shared_ptr<const BlockTable>& t = blocks_->snapshot();
    *result = "\"boot_id\":\"" + boot_id_ + "\",\"sensor\":";
    AppendJsonString(result, config_.sensor_name);
    *result += ",\"pid\":" + std::to_string(getpid()) +
               ",\"block_generation\":" + std::to_string(blocks_->generation()) +
               ",\"block_entries\":" + std::to_string(t ? t->entries().size() : 0) +
               ",\"config_version\":";
    AppendJsonString(result, config_version_);
    return true;
  }
  if (op == "block.set") {
    BlockSetRequest r;
    if (!ParseBlockSet(req, &r, error)) return false;
    std::vector<Cidr> never = never_block_;
    never.insert(never.end(), r.never_block.begin(), r.never_block.end());
    const size_t n = r.entries.size();
    std::shared_ptr<const BlockTable> t =
        BlockTable::Build(std::move(r.entries), std::move(r.allow), never, error);
    if (t == nullptr) return false;
    // Drops counted by a worker still on the old table after this copy are lost to the count
    // (the packet is dropped all the same); the window is one worker loop pass.
    if (blocks_->snapshot() != nullptr) t->InheritCounters(*blocks_->snapshot());
    blocks_->Publish(std::move(t), r.generation);
    timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    block_published_ns_ = static_cast<uint64_t>(now.tv_sec) * 1000000000ull + now.tv_nsec;
    std::fprintf(stderr, "vigil: block table generation %" PRIu64 ": %zu entries\n", r.generation,
                 n);
    *result =
        "\"generation\":" + std::to_string(r.generation) + ",\"entries\":" + std::to_string(n);
    return true;
  }
  if (op == "block.get") {
    *result = BlockTableJson(blocks_->snapshot().get(), blocks_->generation()) +
              ",\"published_ns\":" + std::to_string(block_published_ns_);
    return true;
  }
  if (op == "history.export") return HistoryExport(req, result, error);
  if (op.rfind("config.", 0) == 0) return ConfigCommand(op, req, result, error);
  if (op == "counters") {
    *result = "\"counters\":" + CountersJson();
    return true;
  }
  *error = "unknown op \"" + op +
           "\" (hello, block.set, block.get, history.export, counters, config.get, "
           "config.stage, config.status, config.commit)";
  return false;
}

bool Dataplane::HistoryExport(const YAML::Node& req, std::string* result, std::string* error) {
  if (spool_ == nullptr) {
    *error = "packet history is off (history.enabled)";
    return false;
  }
  HistoryFilter f;
  if (!req["host"] || !ParseHistoryAddress(req["host"].as<std::string>(), f.host)) {
    *error = "host: an IPv4 or IPv6 address is required";
    return false;
  }
  if (req["peer"]) {
    if (!ParseHistoryAddress(req["peer"].as<std::string>(), f.peer)) {
      *error = "peer: not an IPv4 or IPv6 address";
      return false;
    }
    f.has_peer = true;
  }
  if (req["port"]) {
    const uint64_t port = req["port"].as<uint64_t>();
    if (port == 0 || port > 65535) {
      *error = "port: 1 to 65535";
      return false;
    }
    f.port = static_cast<uint16_t>(port);
  }
  if (req["proto"] && !ParseHistoryProto(req["proto"].as<std::string>(), &f.proto)) {
    *error = "proto: tcp, udp or an IP protocol number";
    return false;
  }
  if (!req["from_ns"] || !req["to_ns"]) {
    *error = "from_ns and to_ns are required";
    return false;
  }
  const uint64_t from = req["from_ns"].as<uint64_t>(), to = req["to_ns"].as<uint64_t>();
  if (from > to) {
    *error = "from_ns is after to_ns";
    return false;
  }
  const std::string dir = config_.history.dir + "/exports";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    *error = "cannot create " + dir + ": " + ec.message();
    return false;
  }
  const std::string path =
      dir + "/export-" + std::to_string(getpid()) + "-" + std::to_string(++exports_) + ".pcap";
  ExportResult r;
  if (!spool_->Export(f, from, to, path, &r)) {
    *error = r.errors.empty() ? "export failed" : r.errors.back();
    return false;
  }
  *result = "\"path\":";
  AppendJsonString(result, path);
  *result += ",\"packets\":" + std::to_string(r.packets) + ",\"bytes\":" + std::to_string(r.bytes) +
             ",\"memory_packets\":" + std::to_string(r.memory_packets) +
             ",\"disk_packets\":" + std::to_string(r.disk_packets) +
             ",\"oldest_retained_ns\":" + std::to_string(r.oldest_retained_ns) +
             ",\"start_not_retained\":" + (r.start_not_retained ? "true" : "false") +
             ",\"not_retained_from_ns\":" + std::to_string(r.not_retained_from_ns) +
             ",\"not_retained_to_ns\":" + std::to_string(r.not_retained_to_ns) +
             ",\"lost_records\":" + std::to_string(r.lost_records) + ",\"summary\":";
  AppendJsonString(result, r.Summary(from, to));
  return true;
}

Dataplane::PortTotals Dataplane::Totals(uint16_t port_index) const {
  PortTotals t;
  for (const auto& w : workers_) {
    const PortCounters& c = w->port_counters(port_index);
    t.rx_pkts += c.rx_pkts.Get();
    t.rx_bytes += c.rx_bytes.Get();
    t.fwd_pkts += c.fwd_pkts.Get();
    t.fwd_bytes += c.fwd_bytes.Get();
    for (int r = 0; r < static_cast<int>(DropReason::kCount); ++r) t.drops[r] += c.drops[r].Get();
  }
  return t;
}

uint64_t Dataplane::flows_created() const {
  uint64_t n = 0;
  for (const auto& w : workers_) n += w->counters().flows_created.Get();
  return n;
}

void Dataplane::PrintDetectStats(const rules::DetectorStats& st) {
  std::fprintf(
      stderr,
      "vigil-dataplane: detect: %zu rules (%zu prefiltered, %zu always checked), %zu "
      "fast patterns in %zu databases (%zu header groups), %zu stream rules, %zu dropped, %s "
      "in %.0f ms\n",
      st.rules, st.prefiltered, st.always, st.patterns, st.databases, st.header_groups,
      st.stream_rules, st.dropped.size(), st.from_cache ? "loaded from cache" : "compiled",
      st.build_ms);
}

void Dataplane::PrintStats(double elapsed_s) const {
  char t[32];
  std::snprintf(t, sizeof(t), "stats t=%.3fs", elapsed_s);
  std::string line = t;
  for (size_t i = 0; i < ports_.size(); ++i) {
    const PortTotals t = Totals(static_cast<uint16_t>(i));
    line += " | " + ports_[i].name + " rx=" + std::to_string(t.rx_pkts) +
            " fwd=" + std::to_string(t.fwd_pkts) + " drop=" + std::to_string(t.dropped());
  }
  uint64_t active = 0;
  for (const auto& w : workers_) active += w->counters().flows_active.Get();
  line += " | flows active=" + std::to_string(active) +
          " created=" + std::to_string(flows_created()) + " eve=" + std::to_string(eve_.records());
  std::fprintf(stdout, "%s\n", line.c_str());
  std::fflush(stdout);
}

std::string Dataplane::CountersJson() const {
  std::string o = "{\"sensor\":";
  AppendJsonString(&o, config_.sensor_name);
  o += ",\"mode\":\"" + std::string(options_.replay ? "replay" : "live") + "\"";
  char buf[64];
  std::snprintf(buf, sizeof(buf), ",\"elapsed_s\":%.6f", elapsed_s_);
  o += buf;
  o += ",\"ports\":[";
  uint64_t total_rx = 0;
  for (size_t i = 0; i < ports_.size(); ++i) {
    const Port& p = ports_[i];
    const PortTotals t = Totals(static_cast<uint16_t>(i));
    total_rx += t.rx_pkts;
    if (i) o += ",";
    o += "{\"name\":";
    AppendJsonString(&o, p.name);
    o += ",\"port_id\":" + std::to_string(p.port_id);
    o += ",\"peer\":\"" + ports_[p.peer].name + "\"";
    AppendKV(&o, "queues", p.nb_queues);
    o += std::string(",\"rss\":") + (p.rss ? "true" : "false");
    AppendKV(&o, "rx_packets", t.rx_pkts);
    AppendKV(&o, "rx_bytes", t.rx_bytes);
    AppendKV(&o, "forwarded", t.fwd_pkts);
    AppendKV(&o, "forwarded_bytes", t.fwd_bytes);
    o += ",\"dropped\":{";
    for (int r = 0; r < static_cast<int>(DropReason::kCount); ++r) {
      AppendKV(&o, DropReasonName(static_cast<DropReason>(r)), t.drops[r], r != 0);
    }
    o += "}";
    AppendKV(&o, "dropped_total", t.dropped());
    AppendKV(&o, "in_flight", t.in_flight());
    rte_eth_stats st;
    if (rte_eth_stats_get(p.port_id, &st) == 0) {
      o += ",\"device\":{";
      AppendKV(&o, "ipackets", st.ipackets, false);
      AppendKV(&o, "opackets", st.opackets);
      AppendKV(&o, "imissed", st.imissed);
      AppendKV(&o, "ierrors", st.ierrors);
      AppendKV(&o, "oerrors", st.oerrors);
      AppendKV(&o, "rx_nombuf", st.rx_nombuf);
      o += "}";
    }
    o += "}";
  }
  o += "],\"workers\":[";
  for (size_t i = 0; i < workers_.size(); ++i) {
    const WorkerCounters& c = workers_[i]->counters();
    if (i) o += ",";
    o += "{";
    AppendKV(&o, "lcore", workers_[i]->lcore(), false);
    AppendKV(&o, "iterations", c.iterations.Get());
    AppendKV(&o, "rx_bursts", c.rx_bursts.Get());
    o += ",\"decode\":{";
    AppendKV(&o, "l2", c.decode[0].Get(), false);
    AppendKV(&o, "l3", c.decode[1].Get());
    AppendKV(&o, "l4", c.decode[2].Get());
    AppendKV(&o, "malformed", c.decode[3].Get());
    o += "},\"anomalies\":{";
    bool first = true;
    for (int b = 0; b < kAnomalyBits; ++b) {
      const uint64_t v = c.anomalies[b].Get();
      if (v == 0) continue;
      AppendKV(&o, DecodeAnomalyName(1u << b), v, !first);
      first = false;
    }
    o += "}";
    AppendKV(&o, "fragments_untracked", c.fragments_untracked.Get());
    o += ",\"defrag\":{";
    AppendKV(&o, "fragments", c.defrag_fragments.Get(), false);
    AppendKV(&o, "datagrams", c.defrag_datagrams.Get());
    AppendKV(&o, "overlaps", c.defrag_overlaps.Get());
    AppendKV(&o, "overlap_differs", c.defrag_overlap_differs.Get());
    AppendKV(&o, "timeouts", c.defrag_timeouts.Get());
    AppendKV(&o, "memcap", c.defrag_memcap.Get());
    AppendKV(&o, "dropped", c.defrag_dropped.Get());
    AppendKV(&o, "trackers_in_use", c.defrag_trackers_in_use.Get());
    o += "}";
    AppendKV(&o, "passed_untracked", c.passed_untracked.Get());
    o += ",\"flows\":{";
    AppendKV(&o, "active", c.flows_active.Get(), false);
    AppendKV(&o, "created", c.flows_created.Get());
    o += ",\"ended\":{";
    for (int r = 0; r < 4; ++r) {
      AppendKV(&o, FlowEndReasonName(static_cast<FlowEndReason>(r)), c.flows_ended[r].Get(),
               r != 0);
    }
    o += "}";
    AppendKV(&o, "table_full", c.flow_table_full.Get());
    AppendKV(&o, "emergency", c.emergency.Get());
    AppendKV(&o, "emergency_entered", c.emergency_entered.Get());
    AppendKV(&o, "max_chain", c.max_chain.Get());
    o += "},\"stream\":{";
    AppendKV(&o, "sessions_active", c.sessions_active.Get(), false);
    AppendKV(&o, "sessions_created", c.sessions_created.Get());
    AppendKV(&o, "sessions_exhausted", c.sessions_exhausted.Get());
    AppendKV(&o, "midstream", c.stream_midstream.Get());
    AppendKV(&o, "segments_in_order", c.stream_in_order.Get());
    AppendKV(&o, "segments_out_of_order", c.stream_out_of_order.Get());
    AppendKV(&o, "overlaps", c.stream_overlaps.Get());
    AppendKV(&o, "overlap_differs", c.stream_overlap_differs.Get());
    AppendKV(&o, "retransmissions", c.stream_retransmissions.Get());
    AppendKV(&o, "gaps", c.stream_gaps.Get());
    AppendKV(&o, "gap_bytes", c.stream_gap_bytes.Get());
    AppendKV(&o, "window_exceeded", c.stream_window_exceeded.Get());
    AppendKV(&o, "memcap", c.stream_memcap.Get());
    AppendKV(&o, "bytes", c.stream_bytes.Get());
    AppendKV(&o, "segments_in_use", c.stream_segments_in_use.Get());
    o += "},\"app_layer\":{\"identified\":{";
    first = true;
    for (int p = 1; p < static_cast<int>(proto::AppProto::kCount); ++p) {
      if (p == static_cast<int>(proto::AppProto::kFailed)) continue;
      AppendKV(&o, proto::AppProtoName(static_cast<proto::AppProto>(p)), c.app_identified[p].Get(),
               !first);
      first = false;
    }
    o += "}";
    AppendKV(&o, "failed", c.app_failed.Get());
    AppendKV(&o, "parser_exhausted", c.app_parser_exhausted.Get());
    AppendKV(&o, "events", c.app_events.Get());
    AppendKV(&o, "events_lost", c.app_events_lost.Get());
    AppendKV(&o, "events_truncated", c.app_events_truncated.Get());
    if (config_.app_layer.files.enabled) {
      o += "},\"files\":{";
      AppendKV(&o, "seen", c.files_seen.Get(), false);
      AppendKV(&o, "not_wanted", c.files_not_wanted.Get());
      AppendKV(&o, "truncated", c.files_truncated.Get());
      AppendKV(&o, "gaps", c.files_gaps.Get());
      AppendKV(&o, "chunks", c.files_chunks.Get());
      AppendKV(&o, "bytes", c.files_bytes.Get());
      AppendKV(&o, "chunks_dropped", c.files_chunks_dropped.Get());
      AppendKV(&o, "records_dropped", c.files_records_dropped.Get());
      AppendKV(&o, "evicted", c.files_evicted.Get());
    }
    if (detects_ != nullptr && detects_->publishes() > 0) {
      o += "},\"detect\":{";
      AppendKV(&o, "rule_set_switches", c.detect_reloads.Get(), false);
      AppendKV(&o, "inspected", c.detect_inspected.Get());
      AppendKV(&o, "stream_continued", c.detect_stream_continued.Get());
      AppendKV(&o, "transactions", c.detect_transactions.Get());
      AppendKV(&o, "transactions_skipped", c.detect_transactions_skipped.Get());
      AppendKV(&o, "alerts", c.detect_alerts.Get());
      AppendKV(&o, "alerts_lost", c.detect_alerts_lost.Get());
      AppendKV(&o, "drops", c.detect_drops.Get());
      AppendKV(&o, "rejects", c.detect_rejects.Get());
    }
    if (blocks_ != nullptr) {
      o += "},\"respond\":{";
      AppendKV(&o, "blocked", c.blocked.Get(), false);
      AppendKV(&o, "resets_sent", c.resets_sent.Get());
      AppendKV(&o, "resets_failed", c.resets_failed.Get());
      AppendKV(&o, "table_reloads", c.block_reloads.Get());
    }
    o += "},\"events\":{";
    AppendKV(&o, "enqueued", c.events_enqueued.Get(), false);
    AppendKV(&o, "ring_full", c.events_ring_full.Get());
    o += "}}";
  }
  o += "],\"eve\":{";
  AppendKV(&o, "records", eve_.records(), false);
  AppendKV(&o, "write_errors", eve_.write_errors());
  AppendKV(&o, "bad_records", eve_.bad_records() + bad_records_);
  o += ",\"path\":";
  AppendJsonString(&o, eve_.path());
  o += "}";
  if (files_ != nullptr) {
    const FileStoreCounters& c = files_->counters();
    o += ",\"files\":{";
    AppendKV(&o, "opened", c.opened, false);
    AppendKV(&o, "events", c.events);
    AppendKV(&o, "stored", c.stored);
    AppendKV(&o, "deduplicated", c.deduplicated);
    AppendKV(&o, "store_full", c.store_full);
    AppendKV(&o, "not_wanted", c.not_wanted);
    AppendKV(&o, "truncated", c.truncated);
    AppendKV(&o, "with_gaps", c.with_gaps);
    AppendKV(&o, "errors", c.errors);
    AppendKV(&o, "idle_closed", c.idle_closed);
    AppendKV(&o, "late_records", c.late_records);
    AppendKV(&o, "bad_records", c.bad_records);
    AppendKV(&o, "tasks", c.tasks);
    AppendKV(&o, "used_bytes", files_->used_bytes());
    AppendKV(&o, "open", files_->open_files());
    o += ",\"dir\":";
    AppendJsonString(&o, files_->dir());
    o += "}";
  }
  if (channel_ != nullptr) {
    const ChannelClientCounters& c = channel_->counters();
    o += ",\"control\":{";
    AppendKV(&o, "submitted", c.submitted, false);
    AppendKV(&o, "sent", c.sent);
    AppendKV(&o, "acked", c.acked);
    AppendKV(&o, "resent", c.resent);
    AppendKV(&o, "lost", c.lost);
    AppendKV(&o, "journal_bytes", c.journal_bytes);
    AppendKV(&o, "journal_events", c.journal_events);
    AppendKV(&o, "connected", c.connected);
    AppendKV(&o, "reconnects", c.reconnects);
    o += "}";
  }
  if (detects_ != nullptr && detects_->snapshot() != nullptr) {
    const auto& rule_set = detects_->snapshot();
    uint64_t inspected = 0, stream = 0, transactions = 0, alerts = 0, lost = 0, drops = 0,
             rejects = 0;
    for (const auto& w : workers_) {
      inspected += w->counters().detect_inspected.Get();
      stream += w->counters().detect_stream_continued.Get();
      transactions += w->counters().detect_transactions.Get();
      alerts += w->counters().detect_alerts.Get();
      lost += w->counters().detect_alerts_lost.Get();
      drops += w->counters().detect_drops.Get();
      rejects += w->counters().detect_rejects.Get();
    }
    o += ",\"detect\":{";
    AppendKV(&o, "rules_loaded", rule_set->detector->size(), false);
    AppendKV(&o, "rules_dropped", detect_stats_.dropped.size());
    AppendKV(&o, "stream_rules", rule_set->detector->stats().stream_rules);
    AppendKV(&o, "rule_sets_published", detects_->publishes());
    AppendKV(&o, "rule_sets_retired_pending", detects_->retired());
    AppendKV(&o, "rule_reloads", rule_reloads_);
    AppendKV(&o, "rule_reloads_failed", rule_reloads_failed_);
    AppendKV(&o, "inspected", inspected);
    AppendKV(&o, "stream_continued", stream);
    AppendKV(&o, "transactions", transactions);
    AppendKV(&o, "alerts", alerts);
    AppendKV(&o, "alerts_lost", lost);
    AppendKV(&o, "drops", drops);
    AppendKV(&o, "rejects", rejects);
    o += "}";
  }
  if (blocks_ != nullptr) {
    uint64_t blocked = 0, resets = 0, failed = 0;
    for (const auto& w : workers_) {
      blocked += w->counters().blocked.Get();
      resets += w->counters().resets_sent.Get();
      failed += w->counters().resets_failed.Get();
    }
    const std::shared_ptr<const BlockTable>& t = blocks_->snapshot();
    o += ",\"respond\":{";
    AppendKV(&o, "block_generation", blocks_->generation(), false);
    AppendKV(&o, "block_entries", t ? t->entries().size() : 0);
    AppendKV(&o, "tables_published", blocks_->publishes());
    AppendKV(&o, "tables_retired_pending", blocks_->retired());
    AppendKV(&o, "blocked", blocked);
    AppendKV(&o, "resets_sent", resets);
    AppendKV(&o, "resets_failed", failed);
    AppendKV(&o, "commands", commands_->requests());
    AppendKV(&o, "command_errors", commands_->errors());
    o += "}";
  }
  if (spool_ != nullptr) {
    PacketHistoryCounters h;
    for (const auto& r : histories_) {
      const PacketHistoryCounters c = r->counters();
      h.packets += c.packets;
      h.bytes += c.bytes;
      h.overwritten += c.overwritten;
      h.torn += c.torn;
    }
    const HistorySpoolCounters sc = spool_->counters();
    o += ",\"history\":{";
    AppendKV(&o, "packets", h.packets, false);
    AppendKV(&o, "bytes", h.bytes);
    AppendKV(&o, "overwritten", h.overwritten);
    AppendKV(&o, "torn_reads", h.torn);
    AppendKV(&o, "memory_bytes",
             histories_.size() * (size_t{config_.history.memory_mb_per_worker} << 20));
    AppendKV(&o, "spooled_packets", sc.spooled_packets);
    AppendKV(&o, "spool_lost", sc.lost);
    AppendKV(&o, "spool_write_errors", sc.write_errors);
    AppendKV(&o, "segments", sc.segments);
    AppendKV(&o, "disk_bytes", sc.disk_bytes);
    AppendKV(&o, "exports", exports_);
    o += "}";
  }
  AppendKV(&o, "watchdog_stalls", stalls_);
  std::snprintf(buf, sizeof(buf), ",\"rx_pps\":%.0f",
                elapsed_s_ > 0 ? static_cast<double>(total_rx) / elapsed_s_ : 0.0);
  o += buf;
  o += "}";
  return o;
}

}  // namespace vigil::dp
