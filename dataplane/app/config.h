// vigil.yaml: the dataplane's configuration, loaded with yaml-cpp and validated before anything
// uses it. Every error names the file, line, column and dotted field; all errors of a document are
// reported, not only the first.
//
// Thread: start-up (main thread) only; may allocate and read files.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/capture/history_config.h"
#include "dataplane/stream/defrag.h"
#include "dataplane/stream/reassembly.h"

namespace vigil::dp {

// RELIABILITY.md exception policies (Suricata 7 `exception-policy` semantics).
enum class ExceptionPolicy : uint8_t {
  kDropFlow,    // drop this packet and every later packet of the flow
  kDropPacket,  // drop this packet only
  kPassFlow,    // forward this packet and the rest of the flow without inspection
  kPassPacket,  // forward this packet without inspection
  kBypass,      // as pass-flow, and mark the flow bypassed
};
const char* ExceptionPolicyName(ExceptionPolicy p) noexcept;

struct PortConfig {
  std::string name;     // referenced by bridges
  std::string device;   // PCI address ("0000:03:00.0") or DPDK vdev string ("net_pcap0,rx_pcap=f")
  bool is_pci = false;  // derived from `device`
  uint16_t rx_desc = 1024;
  uint16_t tx_desc = 1024;

  bool operator==(const PortConfig&) const = default;
};

struct BridgeConfig {
  std::string a;  // port names
  std::string b;

  bool operator==(const BridgeConfig&) const = default;
};

// Seconds of inactivity before a flow is ended. `new`: only the initiator has sent;
// `established`: both sides have sent; `closed`: TCP FIN both ways or RST.
struct FlowTimeouts {
  uint32_t tcp_new = 60;
  uint32_t tcp_established = 600;
  uint32_t tcp_closed = 60;
  uint32_t udp_new = 30;
  uint32_t udp_established = 300;
  uint32_t icmp_new = 30;
  uint32_t icmp_established = 300;
  uint32_t other_new = 30;
  uint32_t other_established = 300;

  bool operator==(const FlowTimeouts&) const = default;
};

struct FlowConfig {
  uint32_t capacity = 262144;  // flows per worker, preallocated
  // Secret for the flow hash. Absent: read from getrandom() at start (the production default;
  // a fixed value is for reproducible tests only).
  std::optional<uint64_t> hash_seed;
  uint32_t emergency_enter_percent = 95;  // table occupancy that enters emergency mode
  uint32_t emergency_exit_percent = 80;   // occupancy at which emergency mode ends
  FlowTimeouts timeouts;
  FlowTimeouts emergency_timeouts{.tcp_new = 10,
                                  .tcp_established = 100,
                                  .tcp_closed = 5,
                                  .udp_new = 10,
                                  .udp_established = 100,
                                  .icmp_new = 10,
                                  .icmp_established = 100,
                                  .other_new = 10,
                                  .other_established = 100};

  bool operator==(const FlowConfig&) const = default;
};

// outputs.files: extraction of files carried by SMB reads and writes. The workers tap the SMB
// parsers (stream/session.h) and the exporter assembles and stores the files
// (export/file_store.h).
struct FilesConfig {
  bool enabled = false;
  std::string dir = "/var/lib/vigil/files";  // content-addressed store: <dir>/<sha[0:2]>/<sha>
  uint32_t max_file_mb = 100;     // per file: data beyond is not extracted (state TRUNCATED)
  uint32_t max_total_mb = 10240;  // the store: a file that does not fit is not stored
  // Name endings to extract, lower case without the leading dot ("exe", "job", "tar.gz"); empty:
  // every file. Other files get a `fileinfo` event but no data leaves the worker.
  std::vector<std::string> extensions;

  bool operator==(const FilesConfig&) const = default;
};

// The session layer: TCP reassembly and application-layer parsing (stream/session.h).
struct AppLayerConfig {
  bool enabled = true;             // app_layer.enabled: reassemble and parse at all
  bool midstream = true;           // stream.midstream: pick up TCP flows whose SYN was not seen
  uint32_t sessions = 65536;       // stream.sessions: flows with a session (TCP, or parsed UDP)
  uint32_t segment_slots = 16384;  // stream.reassembly.segment_slots (2 KiB each)
  ReassemblyConfig reassembly{.policy = OverlapPolicy::kBsd,
                              .max_segments = 256,
                              .max_bytes = 1u << 20,
                              .max_ahead = 1u << 22,
                              .depth = 0};
  // app_layer.parsers.<name>: parsers of that kind per worker (0 disables it). Unlisted kinds
  // keep their built-in pool size.
  std::vector<std::pair<std::string, uint32_t>> parser_pools;
  ExceptionPolicy stream_memcap = ExceptionPolicy::kPassFlow;
  FilesConfig files;  // outputs.files (here because the workers apply its limits)

  bool operator==(const AppLayerConfig&) const = default;
};

// IP defragmentation (stream/defrag.h). The hash seed is derived from flow.hash_seed per worker.
struct DefragSettings {
  bool enabled = true;
  DefragConfig defrag{.policy = FragPolicy::kBsd,
                      .max_trackers = 4096,
                      .pool_slots = 16384,
                      .max_fragments = 64,
                      .timeout_ns = 60'000'000'000ull,
                      .hash_seed = 0};

  bool operator==(const DefragSettings&) const = default;
};

// detect: the signature engine (rules/, docs/rules.md). Paths are resolved against the config
// file's directory when relative (LoadConfigFile; LoadConfigString leaves them as written).
struct DetectConfig {
  bool enabled = false;
  std::vector<std::string> rules;  // rule files, loaded in order
  std::string vars;                // Suricata-style vars YAML; empty: the built-in defaults
  std::string classification;      // classification.config; empty: none (category stays empty)
  std::string cache_dir;           // compiled-database cache; empty: compile at every start
  // detect.invalid_rules: what a configuration push does with rules that do not parse (bad
  // syntax or value, duplicate sid): true ("refuse") fails the push and lists each; false
  // ("skip") loads the rest, as the start-up always does. Feeds such as ET Open carry a few.
  bool refuse_invalid_rules = true;
  // detect.inline_actions: true (IPS) makes `drop` rules drop the packet and the rest of its flow
  // and `reject` rules also reset TCP (RST to both ends) or answer UDP with ICMP port
  // unreachable; false (IDS) makes them alert like `alert` rules.
  bool inline_actions = true;
  // detect.inline: rules written in the configuration itself (a pushed configuration carries
  // its rules this way), loaded after the files. `inline_file` and `inline_line` (1-based line
  // of the first rule line) place rejections in the document.
  std::string inline_rules;
  std::string inline_file;
  int inline_line = 0;

  bool operator==(const DetectConfig&) const = default;
};

struct ExceptionPolicies {
  ExceptionPolicy flow_table_full = ExceptionPolicy::kPassPacket;
  // A fragment that cannot be held (no tracker or pool slot): drop-* drops it, pass-* forwards it
  // uninspected.
  ExceptionPolicy defrag_memcap = ExceptionPolicy::kPassPacket;

  bool operator==(const ExceptionPolicies&) const = default;
};

struct Config {
  std::string source_file;  // path the config was loaded from ("<string>" for LoadConfigString)

  std::string sensor_name = "vigil";

  // EAL
  std::string file_prefix = "vigil";  // EAL --file-prefix: isolates instances on one host
  bool hugepages = false;             // false: --no-huge with `memory_mb` of anonymous memory
  uint32_t memory_mb = 1024;          // EAL -m
  uint32_t main_lcore = 0;            // runs the exporter and housekeeping, never a worker
  std::string log_level = "notice";   // EAL --log-level for lib.*, pmd.*

  std::vector<PortConfig> ports;
  std::vector<BridgeConfig> bridges;

  // Workers
  std::vector<uint32_t> worker_lcores = {1};
  uint32_t mbufs_per_worker = 16383;  // mempool size per worker (2^n - 1 is optimal)
  uint32_t tx_flush_us = 100;         // staged TX is flushed at least this often
  uint32_t stats_interval_s = 0;      // 0: no periodic counter lines on stderr

  FlowConfig flow;
  AppLayerConfig app_layer;
  DefragSettings defrag;
  ExceptionPolicies exception_policy;
  DetectConfig detect;

  // Outputs
  bool eve_enabled = true;
  std::string eve_path = "eve.json";
  uint32_t event_ring_mb = 16;  // MiB per worker event ring (workers -> exporter)
  // The event channel to vigil-control (outputs.control): off unless enabled.
  bool control_enabled = false;
  std::string control_socket = "/run/vigil/events.sock";
  std::string control_journal_dir = "/var/lib/vigil/journal";
  uint32_t control_journal_mb = 256;

  // The command socket (control -> dataplane: block tables, counters; docs/respond.md): off
  // unless enabled.
  bool commands_enabled = false;
  std::string commands_socket = "/run/vigil/commands.sock";
  // respond.never_block: addresses no block entry may cover, whatever control pushes (the
  // gateway, the management network). CIDR text, validated at load.
  std::vector<std::string> never_block;

  // Packet history (docs/evidence.md): what every worker forwarded, in a memory ring per worker
  // and optionally spooled to disk; exported as pcap through the command socket.
  HistoryConfig history{.enabled = true, .memory_mb_per_worker = 32};

  bool operator==(const Config&) const = default;
};

struct ConfigError {
  std::string file;
  int line = 0;       // 1-based; 0 when unknown
  int column = 0;     // 1-based; 0 when unknown
  std::string field;  // dotted path, e.g. "flow.timeouts.tcp.new" or "ports[1].device"
  std::string message;
  std::string ToString() const;  // "file:line:column: field: message"
};

struct ConfigResult {
  std::optional<Config> config;     // set when errors is empty
  std::vector<ConfigError> errors;  // every problem found, in document order
};

ConfigResult LoadConfigFile(const std::string& path);
ConfigResult LoadConfigString(const std::string& yaml, const std::string& name = "<string>");

// The dataplane section of a larger document (a configuration pushed by control,
// docs/operations.md "Configuration push"): `yaml`'s top-level map key `key` is read as a whole
// vigil.yaml. Errors carry the document's own lines and fields prefixed with `key`. Relative
// detect paths are resolved against `base_dir` (the directory of the running config file).
ConfigResult LoadConfigSection(const std::string& yaml, const std::string& name,
                               const std::string& key, const std::string& base_dir);

// The settings that differ between `running` and `next` and can only change with a restart
// (everything but detect and respond.never_block), as dotted field names in document order.
std::vector<std::string> RestartOnlyChanges(const Config& running, const Config& next);

// EAL argv derived from a validated config (argv[0] included), followed by `extra` verbatim.
std::vector<std::string> BuildEalArgs(const Config& config, const std::string& argv0,
                                      const std::vector<std::string>& extra);

}  // namespace vigil::dp
