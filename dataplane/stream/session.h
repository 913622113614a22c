// The session layer: per-flow TCP reassembly (both directions), application-protocol
// identification by content, and the parser of each identified flow, whose events go onto the
// worker's event ring.
//
// Thread: one worker owns one SessionManager; nothing is shared except the event ring (this side
// is its single producer). Never blocks. Everything is preallocated at construction: sessions,
// reassembly slots and one pool per parser kind. A pool that runs dry is counted and the flow
// goes uninspected (or the stream exception policy applies), never an allocation.
//
// DPDK-free, so it is unit-tested and fuzzed with plain packets.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "dataplane/app/config.h"
#include "dataplane/export/event_ring.h"
#include "dataplane/flow/flow_table.h"
#include "dataplane/proto/event.h"
#include "dataplane/proto/registry.h"
#include "dataplane/stream/file_tap.h"
#include "dataplane/stream/reassembly.h"
#include "rules/engine/detect.h"

namespace vigil::dp {

struct SessionCounters {
  uint64_t sessions_created = 0;
  uint64_t sessions_active = 0;
  uint64_t sessions_exhausted = 0;  // no free session: the flow went uninspected
  uint64_t midstream = 0;           // TCP sessions picked up without a SYN
  uint64_t reversed = 0;            // midstream sessions whose first bytes came from the server
  uint64_t identified[static_cast<int>(proto::AppProto::kCount)] = {};
  uint64_t parser_exhausted[static_cast<int>(proto::AppProto::kCount)] = {};
  uint64_t identification_failed = 0;
  uint64_t stream_memcap = 0;  // segments refused because the slot pool was empty
  uint64_t events = 0;
  uint64_t events_lost = 0;       // event ring full
  uint64_t events_truncated = 0;  // members or message cut to fit
};

// The signature engine's side of the app-layer seam (detect/inspector.h implements it): the
// sticky buffers of each message the parsers complete, on the worker thread, synchronously.
class TxInspector {
 public:
  // Whether a rule set is in use (parsers then assemble their buffers).
  virtual bool active() const noexcept = 0;
  // One message of `flow` travelling in `dir` (relative to the flow's client).
  virtual void OnTransaction(const Flow& flow, FlowDir dir,
                             const rules::Buffers& buffers) noexcept = 0;

 protected:
  ~TxInspector() = default;
};

class SessionManager {
 public:
  // `ring`: the worker's event ring (may be nullptr: events are counted and dropped). `kinds`:
  // the parsers to identify and run (tests pass their own).
  SessionManager(const AppLayerConfig& config, uint16_t worker, EventRing* ring,
                 std::span<const proto::ParserKind> kinds = proto::ParserKinds());
  ~SessionManager();
  SessionManager(const SessionManager&) = delete;
  SessionManager& operator=(const SessionManager&) = delete;

  enum class Verdict : uint8_t { kForward, kDrop };

  // A tracked TCP or UDP packet of `flow` (after the flow table has processed it), travelling in
  // `dir`. `frame` is the whole frame the decoder saw.
  Verdict OnPacket(Flow& flow, FlowDir dir, const PacketMeta& meta, std::span<const uint8_t> frame,
                   uint64_t now_ns) noexcept;
  // The flow ends: delivers what reassembly still holds (reporting gaps), lets the parser emit
  // what is pending, and frees the session.
  void OnFlowEnd(const Flow& flow, uint64_t now_ns) noexcept;

  // Replay: the 1-based number of the packet being processed, written into its events (pcap_cnt).
  void set_packet_number(uint64_t n) noexcept;

  // The signature engine that inspects the parsers' messages (nullptr: none). Start-up.
  void set_tx_inspector(TxInspector* inspector) noexcept;

  const SessionCounters& counters() const noexcept { return counters_; }
  const ReassemblyCounters& reassembly_counters() const noexcept { return reassembler_.counters(); }
  const SegmentPool& segment_pool() const noexcept { return segments_; }
  bool enabled() const noexcept { return config_.enabled; }
  // File extraction (config.files.enabled): the tap's counters, or nullptr when it is off.
  const FileTapCounters* file_counters() const noexcept {
    return file_tap_ != nullptr ? &file_tap_->counters() : nullptr;
  }

 private:
  static constexpr uint32_t kProbeBytes = 96;
  enum class State : uint8_t { kProbing, kParsing, kFailed };

  struct Session {
    StreamDirection stream[2];  // by FlowDir
    proto::AppParser* parser;
    uint32_t next_free;
    uint32_t parser_slot;
    uint8_t kind;  // index into proto::ParserKinds()
    State state;
    uint8_t reversed;  // the parser's client is the flow's server (midstream pickup)
    uint8_t midstream;
    uint8_t first_dir;  // FlowDir of the first payload byte; 0xff: none yet
    uint8_t said_no;    // bit per FlowDir: every probe said no on that direction's bytes
    uint8_t memcap_reported;
    uint8_t probe_len[2];
    uint8_t probe[2][kProbeBytes];
  };

  struct ParserPool {
    uint8_t* memory = nullptr;
    size_t slot_size = 0;
    uint32_t capacity = 0;
    std::vector<uint32_t> free;  // sized at construction, never grows
  };

  class EventCarrier;
  class DirectionSink;

  Session* Get(const Flow& flow) noexcept;
  Session* Create(Flow& flow) noexcept;
  void Free(Flow& flow, Session* s) noexcept;
  Verdict OnTcp(Flow& flow, FlowDir dir, const PacketMeta& meta, std::span<const uint8_t> payload,
                uint64_t now_ns) noexcept;
  void OnUdp(Flow& flow, FlowDir dir, std::span<const uint8_t> payload) noexcept;
  // In-order stream bytes from reassembly.
  void Deliver(Flow& flow, Session* s, FlowDir dir, std::span<const uint8_t> data) noexcept;
  void Gap(Flow& flow, Session* s, FlowDir dir, uint32_t missing) noexcept;
  void StreamEventSeen(Flow& flow, Session* s, FlowDir dir, StreamEvent e) noexcept;
  // Tries every kind on `data` (this direction's first bytes). Returns the kind index, or -1;
  // sets *maybe when some kind wants more bytes and *reversed when it matched the other way.
  int Probe(const Flow& flow, const Session* s, FlowDir dir, std::span<const uint8_t> data,
            bool udp, bool* maybe, bool* reversed) const noexcept;
  bool StartParser(Flow& flow, Session* s, int kind, bool reversed) noexcept;
  void StopInspecting(Flow& flow, Session* s) noexcept;
  void ReleaseIfStopped(Session* s) noexcept;
  proto::Direction ParserDir(const Session* s, FlowDir dir) const noexcept {
    return static_cast<proto::Direction>(static_cast<uint8_t>(dir) ^ s->reversed);
  }

  AppLayerConfig config_;
  uint16_t worker_;
  std::span<const proto::ParserKind> kinds_;
  std::vector<ParserPool> pools_;  // by kind
  SegmentPool segments_;
  Reassembler reassembler_;
  std::unique_ptr<Session[]> sessions_;
  uint32_t free_head_ = 0;
  std::unique_ptr<EventCarrier> carrier_;
  std::unique_ptr<FileTap> file_tap_;  // SMB parsers' file observer; null when files are off
  SessionCounters counters_;
};

}  // namespace vigil::dp
