// The signature engine in the dataplane (rules/engine, docs/rules.md "In the dataplane"):
// start-up loading of the configured rule set, and each worker's Inspector, which runs the
// Detector over the payload of every TCP/UDP packet of a tracked flow and puts one EVE `alert`
// record (kEventApp, event_type "alert") on the worker's event ring per alert.
//
// Threads: LoadDetector runs on the main thread at start-up (reads files, compiles Hyperscan
// databases: may take seconds). An Inspector belongs to one worker: OnPacket never blocks and
// never allocates; its scratch and per-flow FlowBits are allocated when it is built.
//
// DPDK-free, so it is unit-tested with plain packets.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "dataplane/app/config.h"
#include "dataplane/export/event_ring.h"
#include "dataplane/flow/flow_table.h"
#include "dataplane/packet/decoder.h"
#include "dataplane/proto/json_writer.h"
#include "rules/engine/detect.h"

namespace vigil::dp {

struct DetectLoad {
  std::shared_ptr<const rules::Detector> detector;  // nullptr when `error` is set
  std::string summary;                              // "N loaded, M rejected: ..." (loader.h)
  rules::DetectorStats stats;
  std::string error;  // unreadable file, bad vars/classification, database build failure
};

// Loads config.rules (with config.vars, else the built-in defaults, and config.classification)
// and builds the Detector (cached in config.cache_dir when set). Main thread, start-up.
DetectLoad LoadDetector(const DetectConfig& config);

// Maps the session layer's protocol (proto::AppProto) to the rule language's.
rules::Protocol RuleProtocol(uint8_t app_proto) noexcept;

struct InspectorCounters {
  uint64_t inspected = 0;    // packets given to the Detector
  uint64_t alerts = 0;       // alerts raised
  uint64_t alerts_lost = 0;  // alert records the event ring had no room for
};

class Inspector {
 public:
  // At most this many alerts per packet (Suricata's packet_alert_max is 15); further matches
  // of the same packet are not reported.
  static constexpr size_t kMaxAlertsPerPacket = 16;

  // `scratch`: from detector->NewScratch(). `flow_capacity`: the worker's flow table capacity
  // (one FlowBits per entry, 32 bytes, mapped untouched so the worker's first touch places it).
  // `ring` may be nullptr (alerts are counted as lost). Start-up; allocates.
  Inspector(std::shared_ptr<const rules::Detector> detector,
            std::unique_ptr<rules::Scratch> scratch, uint32_t flow_capacity, uint16_t worker,
            EventRing* ring);
  ~Inspector();
  Inspector(const Inspector&) = delete;
  Inspector& operator=(const Inspector&) = delete;

  // Flow entry `flow_index` starts a new flow: its flowbits are cleared. Worker thread.
  void ResetFlow(uint32_t flow_index) noexcept { bits_[flow_index].bits.reset(); }

  // A tracked TCP/UDP packet of `flow` (table entry `flow_index`) travelling in `dir`, after the
  // session layer has run for it (so flow.app_proto is current). `frame` is the whole frame the
  // decoder saw. Packets without L4 payload are not inspected. Returns the number of alerts.
  // Worker thread; never blocks or allocates.
  uint32_t OnPacket(Flow& flow, uint32_t flow_index, FlowDir dir, const PacketMeta& meta,
                    std::span<const uint8_t> frame, uint64_t now_ns) noexcept;

  // Replay: the 1-based number of the packet being processed (the alert's pcap_cnt).
  void set_packet_number(uint64_t n) noexcept { pcap_cnt_ = n; }

  const InspectorCounters& counters() const noexcept { return counters_; }
  const rules::Detector& detector() const noexcept { return *detector_; }

 private:
  void Emit(const Flow& flow, FlowDir dir, const PacketMeta& meta, const rules::Rule& rule,
            uint64_t now_ns) noexcept;

  // Reload (not part of this slice): the detector will be read from an atomic pointer published
  // by the loading thread (RCU, freed after a QSBR grace period), with a scratch prepared for it
  // before publication; this shared_ptr is the snapshot held until then.
  std::shared_ptr<const rules::Detector> detector_;
  std::unique_ptr<rules::Scratch> scratch_;
  rules::FlowBits* bits_ = nullptr;  // flow_capacity entries, by FlowTable::IndexOf
  size_t bits_bytes_ = 0;
  uint16_t worker_;
  EventRing* ring_;
  uint64_t pcap_cnt_ = 0;
  InspectorCounters counters_;
  rules::Buffers buffers_;
  uint32_t alerts_[kMaxAlertsPerPacket];
  char body_[2048];
  proto::JsonWriter writer_{body_, sizeof body_};
  proto::TextBuilder message_;
};

}  // namespace vigil::dp
