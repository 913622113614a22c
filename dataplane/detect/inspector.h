// The signature engine in the dataplane (rules/engine, docs/rules.md "In the dataplane"):
// start-up loading of the configured rule set, and each worker's Inspector, which runs the
// Detector over the payload of every TCP/UDP packet of a tracked flow and puts one EVE `alert`
// record (kEventApp, event_type "alert") on the worker's event ring per alert.
//
// Threads: LoadDetector runs on the main thread at start-up, or on a loading thread for a pushed
// configuration (reads files, compiles Hyperscan databases: may take seconds). An Inspector
// belongs to one worker: OnPacket never blocks and never allocates; its per-flow FlowBits are
// allocated when it is built, and each rule set comes as a DetectSnapshot with one scratch per
// worker, published through RCU (rcu/rcu_publisher.h) and switched to between bursts with Use().
//
// DPDK-free, so it is unit-tested with plain packets.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "dataplane/app/config.h"
#include "dataplane/export/event_ring.h"
#include "dataplane/flow/flow_table.h"
#include "dataplane/packet/decoder.h"
#include "dataplane/proto/json_writer.h"
#include "dataplane/stream/session.h"
#include "rules/engine/detect.h"
#include "rules/lang/rule_parser.h"

namespace vigil::dp {

struct DetectLoad {
  std::shared_ptr<const rules::Detector> detector;  // nullptr when `error` is set
  std::string summary;                              // "N loaded, M rejected: ..." (loader.h)
  rules::DetectorStats stats;
  std::string error;  // unreadable file, bad vars/classification, database build failure
  // Every rule that was not loaded (the summary counts them by reason). A configuration push
  // refuses a rule set with invalid or duplicate rules (RejectsForPush).
  std::vector<rules::Rejection> rejections;
};

// The rejections a configuration push refuses: rules that are invalid (bad syntax or value, a
// semantic conflict) or duplicate a gid:sid. Rules using keywords vigil does not implement, or
// a pcre Hyperscan cannot take, are valid Suricata rules: they are skipped and counted, as at
// start-up, so that feeds such as ET Open can be pushed as they are.
std::vector<const rules::Rejection*> RejectsForPush(const DetectLoad& load);

// A rule set as the workers use it: the Detector and one Hyperscan scratch per worker (indexed by
// worker id), built together off the workers and published as one immutable snapshot.
struct DetectSnapshot {
  std::shared_ptr<const rules::Detector> detector;
  std::vector<std::unique_ptr<rules::Scratch>> scratches;
  std::string version;         // the configuration version it came with ("" at start-up)
  bool inline_actions = true;  // detect.inline_actions: drop/reject rules act (else alert only)
  // Unique per snapshot built (MakeDetectSnapshot): a new snapshot at a freed one's address is
  // still told apart by the workers, which compare pointer and serial.
  uint64_t serial = 0;
};

// Builds the snapshot for `workers` workers from a loaded Detector. nullptr with *error when a
// scratch cannot be allocated.
std::shared_ptr<const DetectSnapshot> MakeDetectSnapshot(
    std::shared_ptr<const rules::Detector> detector, size_t workers, std::string version,
    bool inline_actions, std::string* error);

// Loads config.rules (with config.vars, else the built-in defaults, and config.classification)
// and builds the Detector (cached in config.cache_dir when set). Main thread, start-up.
DetectLoad LoadDetector(const DetectConfig& config);

// Maps the session layer's protocol (proto::AppProto) to the rule language's.
rules::Protocol RuleProtocol(uint8_t app_proto) noexcept;

struct InspectorCounters {
  uint64_t inspected = 0;         // packets given to the Detector
  uint64_t stream_continued = 0;  // of those, TCP payloads inspected with their stream prefix
  uint64_t transactions = 0;      // app-layer messages given to the Detector (their sticky buffers)
  uint64_t transactions_skipped = 0;  // messages completed outside their flow's packet (flow end)
  uint64_t alerts = 0;                // alerts raised
  uint64_t alerts_lost = 0;           // alert records the event ring had no room for
  uint64_t drops = 0;                 // packets a drop or reject rule dropped (inline actions on)
  uint64_t rejects = 0;               // of those, by a reject rule
};

// What the rules decided for the packet OnPacket inspected last (inline actions on).
enum class RuleVerdict : uint8_t {
  kPass,    // forward it
  kDrop,    // a `drop` rule matched: drop it and the rest of its flow
  kReject,  // a `reject` rule matched: as kDrop, and reset TCP / ICMP port unreachable for UDP
};

class Inspector final : public TxInspector {
 public:
  // At most this many alerts per packet (Suricata's packet_alert_max is 15); further matches
  // of the same packet are not reported.
  static constexpr size_t kMaxAlertsPerPacket = 16;

  // Without a rule set until Use(). `flow_capacity`: the worker's flow table capacity (one
  // FlowBits per entry, 32 bytes, and a 4-byte generation, mapped untouched so that the worker's
  // first touch places them). `worker` also picks the scratch in each snapshot. `ring` may be
  // nullptr (alerts are counted as lost). Start-up; allocates.
  Inspector(uint32_t flow_capacity, uint16_t worker, EventRing* ring);
  // With one fixed rule set (tests, tools): `scratch` from detector->NewScratch().
  Inspector(std::shared_ptr<const rules::Detector> detector,
            std::unique_ptr<rules::Scratch> scratch, uint32_t flow_capacity, uint16_t worker,
            EventRing* ring);
  ~Inspector();
  Inspector(const Inspector&) = delete;
  Inspector& operator=(const Inspector&) = delete;

  // Switches to another rule set (nullptr: none, OnPacket inspects nothing). The snapshot must
  // stay alive until the worker's next quiescent point after it stops using it (RCU). Flowbits
  // set under the previous rule set are dropped lazily: a flow's bits count only when their
  // generation is the current one. Worker thread; never blocks or allocates.
  void Use(const DetectSnapshot* snapshot) noexcept;
  // Use(snapshot) unless it is the one in use (same address and serial). True when it switched.
  bool Follow(const DetectSnapshot* snapshot) noexcept {
    if (snapshot == snapshot_ && (snapshot == nullptr || snapshot->serial == serial_)) {
      return false;
    }
    Use(snapshot);
    return true;
  }
  const DetectSnapshot* snapshot() const noexcept { return snapshot_; }
  uint64_t switches() const noexcept { return switches_; }

  // Flow entry `flow_index` starts a new flow: its flowbits and stream tails are cleared.
  // Worker thread.
  void ResetFlow(uint32_t flow_index) noexcept {
    bits_[flow_index].bits.reset();
    bits_gen_[flow_index] = gen_;
    tails_[size_t{flow_index} * 2].valid = 0;
    tails_[size_t{flow_index} * 2 + 1].valid = 0;
  }

  // Per TCP flow direction: the last bytes its payloads carried in stream order, given to the
  // Detector as the next in-order payload's stream prefix (a pattern split across segments).
  static constexpr size_t kTailBytes = 58;
  struct StreamTail {
    uint32_t next_seq;  // the sequence number that continues the stream
    uint8_t len;        // bytes held (<= kTailBytes)
    uint8_t valid;
    uint8_t bytes[kTailBytes];
  };
  static_assert(sizeof(StreamTail) == 64 && kTailBytes <= rules::kMaxStreamPrefix);

  // A packet's inspection, in three steps on the worker thread (never blocking or allocating):
  // BeginPacket before the session layer runs for a tracked TCP/UDP packet of `flow` (table
  // entry `flow_index`) travelling in `dir` (`frame`: the whole frame the decoder saw; it and
  // `meta` stay valid until EndPacket); the messages the parsers complete on it come through
  // OnTransaction; then InspectPayload inspects the packet's own payload (after the session
  // layer, so flow.app_proto is current; packets without L4 payload are not inspected).
  // verdict() then covers the packet and its messages. Each returns the number of alerts.
  void BeginPacket(Flow& flow, uint32_t flow_index, FlowDir dir, const PacketMeta& meta,
                   std::span<const uint8_t> frame, uint64_t now_ns) noexcept;
  uint32_t InspectPayload() noexcept;
  void EndPacket() noexcept { ctx_.flow = nullptr; }
  // The three steps for a packet with no session layer in between (tests, tools).
  uint32_t OnPacket(Flow& flow, uint32_t flow_index, FlowDir dir, const PacketMeta& meta,
                    std::span<const uint8_t> frame, uint64_t now_ns) noexcept;

  // TxInspector: a message's sticky buffers (session layer). Inspected only while its flow's
  // packet is (between BeginPacket and EndPacket), with that packet's header.
  bool active() const noexcept override { return detector_ != nullptr; }
  void OnTransaction(const Flow& flow, FlowDir dir,
                     const rules::Buffers& buffers) noexcept override;

  // Replay: the 1-based number of the packet being processed (the alert's pcap_cnt).
  void set_packet_number(uint64_t n) noexcept { pcap_cnt_ = n; }

  // The verdict on the last packet given to OnPacket (kPass when it was not inspected).
  RuleVerdict verdict() const noexcept { return verdict_; }

  const InspectorCounters& counters() const noexcept { return counters_; }
  const rules::Detector& detector() const noexcept { return *detector_; }

 private:
  // `message`: the buffers of the app-layer message that alerted (nullptr for a packet): the
  // alert then carries its metadata (http, dns, tls, smb, files, dcerpc; docs/events.md).
  void Emit(const Flow& flow, FlowDir dir, const PacketMeta& meta, const rules::Rule& rule,
            bool enforced, uint64_t now_ns, const rules::Buffers* message) noexcept;
  void FillMeta(FlowDir dir) noexcept;
  uint32_t Run(FlowDir dir, const rules::Buffers& buffers) noexcept;  // for the packet in ctx_

  // The packet being processed (BeginPacket .. EndPacket); flow == nullptr outside.
  struct PacketContext {
    Flow* flow = nullptr;
    uint32_t flow_index = 0;
    FlowDir dir = kToServer;
    const PacketMeta* meta = nullptr;
    std::span<const uint8_t> frame;
    uint64_t now_ns = 0;
  };
  PacketContext ctx_;
  rules::PacketMeta rule_meta_;

  std::shared_ptr<const DetectSnapshot> owned_;  // the fixed rule set of the second constructor
  const DetectSnapshot* snapshot_ = nullptr;     // the rule set in use (RCU: see Use())
  uint64_t serial_ = 0;                          // snapshot_->serial when it was taken
  const rules::Detector* detector_ = nullptr;
  rules::Scratch* scratch_ = nullptr;
  rules::FlowBits* bits_ = nullptr;  // flow_capacity entries, by FlowTable::IndexOf
  uint32_t* bits_gen_ = nullptr;     // the rule-set generation each entry's bits belong to
  StreamTail* tails_ = nullptr;      // 2 x flow_capacity: entry * 2 + FlowDir
  size_t bits_bytes_ = 0;
  size_t gen_bytes_ = 0;
  size_t tails_bytes_ = 0;
  uint32_t gen_ = 1;  // bumped by Use(); entries start at 0, so unused entries read as stale
  uint64_t switches_ = 0;
  bool inline_actions_ = true;
  RuleVerdict verdict_ = RuleVerdict::kPass;
  uint16_t worker_;
  EventRing* ring_;
  uint64_t pcap_cnt_ = 0;
  InspectorCounters counters_;
  rules::Buffers buffers_;
  uint32_t alerts_[kMaxAlertsPerPacket];
  char body_[4096];
  proto::JsonWriter writer_{body_, sizeof body_};
  proto::TextBuilder message_;
};

}  // namespace vigil::dp
