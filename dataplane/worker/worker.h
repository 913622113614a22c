// The worker: one pinned lcore running RX burst → decode → flow → verdict → staged TX, forever.
// Never blocks, never allocates after construction, shares nothing writable with other threads
// except its own counters (single writer, relaxed atomics) and its event ring (single producer).
#pragma once

#include <rte_mbuf.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "dataplane/app/config.h"
#include "dataplane/capture/packet_history.h"
#include "dataplane/detect/inspector.h"
#include "dataplane/export/event_record.h"
#include "dataplane/export/event_ring.h"
#include "dataplane/flow/flow_table.h"
#include "dataplane/packet/decoder.h"
#include "dataplane/stream/session.h"
#include "dataplane/verdict/block_publisher.h"

namespace vigil::dp {

inline constexpr uint16_t kBurst = 32;
inline constexpr int kAnomalyBits = 18;
inline constexpr uint16_t kMaxPorts = 32;

// A counter with one writer (its worker) and any number of readers. Relaxed ordering: readers
// want a recent value, not a synchronised one, and x86 stores are not torn.
class Counter {
 public:
  void Add(uint64_t n) noexcept {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  void Set(uint64_t n) noexcept { v_.store(n, std::memory_order_relaxed); }
  uint64_t Get() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

// Drop reasons. Every received packet is forwarded, dropped for exactly one of these, or still
// staged for TX (in flight, at most a burst per port).
enum class DropReason : uint8_t {
  kTxFull,         // the NIC did not take it: freed and counted
  kFlowTableFull,  // exception policy drop-packet/drop-flow on a full flow table
  kFlowAction,     // its flow is marked drop (e.g. the stream_memcap policy drop-flow)
  kStreamPolicy,   // the stream_memcap exception policy dropped it (drop-packet, drop-flow)
  kDefragPolicy,   // the defrag_memcap exception policy dropped this fragment
  kBlocked,        // an entry of the block table (respond) matched it
  kRule,           // a drop or reject rule matched it (its flow's later packets: kFlowAction)
  kCount,
};
const char* DropReasonName(DropReason r) noexcept;

// Per worker, per RX port. A packet received on port P is forwarded to P's peer; drops at TX on
// the peer are charged to P, so rx = forwarded + dropped + in flight for each P.
struct alignas(64) PortCounters {
  Counter rx_pkts;
  Counter rx_bytes;
  Counter fwd_pkts;
  Counter fwd_bytes;
  Counter drops[static_cast<int>(DropReason::kCount)];
};

struct alignas(64) WorkerCounters {
  Counter iterations;  // loop passes: a watchdog sees a stalled worker when this stops moving
  Counter rx_bursts;   // non-empty bursts
  Counter decode[4];   // by DecodeClass
  Counter anomalies[kAnomalyBits];
  Counter fragments_untracked;  // IP fragments with defrag off: forwarded, later ones untracked
  Counter defrag_fragments;     // fragments given to the defragmenter (all are forwarded as is)
  Counter defrag_datagrams;     // datagrams reassembled and inspected
  Counter defrag_overlaps;
  Counter defrag_overlap_differs;
  Counter defrag_timeouts;
  Counter defrag_memcap;   // no tracker or pool slot (exception policy defrag_memcap)
  Counter defrag_dropped;  // datagrams given up: too many fragments, too large, malformed
  Counter defrag_trackers_in_use;
  Counter passed_untracked;  // flow table full, policy pass/bypass: forwarded uninspected
  Counter flows_active;
  Counter flows_created;
  Counter flows_ended[4];  // by FlowEndReason
  Counter flow_table_full;
  Counter emergency;  // 1 while in emergency mode
  Counter emergency_entered;
  Counter max_chain;
  Counter events_enqueued;
  Counter events_ring_full;  // flow records lost because the exporter fell behind
  // Session layer (published from SessionManager's counters at housekeeping).
  Counter sessions_active;
  Counter sessions_created;
  Counter sessions_exhausted;
  Counter app_identified[static_cast<int>(proto::AppProto::kCount)];
  Counter app_parser_exhausted;
  Counter app_failed;
  Counter app_events;
  Counter app_events_lost;
  Counter app_events_truncated;
  // File extraction (FileTap, when outputs.files is enabled).
  Counter files_seen;
  Counter files_not_wanted;
  Counter files_truncated;
  Counter files_gaps;
  Counter files_chunks;
  Counter files_bytes;
  Counter files_chunks_dropped;
  Counter files_records_dropped;
  Counter files_evicted;
  Counter stream_memcap;
  Counter stream_midstream;
  Counter stream_in_order;
  Counter stream_out_of_order;
  Counter stream_overlaps;
  Counter stream_overlap_differs;
  Counter stream_retransmissions;
  Counter stream_gaps;
  Counter stream_gap_bytes;
  Counter stream_window_exceeded;
  Counter stream_bytes;
  Counter stream_segments_in_use;
  // Signature engine (published from the Inspector's counters at housekeeping).
  Counter detect_inspected;
  Counter detect_stream_continued;      // TCP payloads inspected with their stream prefix
  Counter detect_transactions;          // app-layer messages inspected (their sticky buffers)
  Counter detect_transactions_skipped;  // messages completed with no packet of theirs (flow end)
  Counter detect_alerts;
  Counter detect_alerts_lost;  // alert records lost because the event ring was full
  Counter detect_drops;        // packets a drop or reject rule dropped (DropReason::kRule)
  Counter detect_rejects;      // of those, by a reject rule (an RST pair or ICMP sent back)
  // Respond: the block table.
  Counter blocked;         // packets dropped by a block entry (also DropReason::kBlocked per port)
  Counter resets_sent;     // TCP RSTs injected (two per reset flow: one toward each end), and
                           // ICMP port unreachables of reject rules
  Counter resets_failed;   // an RST or ICMP not sent: no mbuf, or the TX queue was full
  Counter block_reloads;   // block tables this worker has picked up
  Counter detect_reloads;  // rule sets this worker has switched to
};

struct WorkerQueue {
  uint16_t rx_port_index;  // index into the dataplane's port table
  uint16_t rx_port_id;     // DPDK ids
  uint16_t rx_queue;
  uint16_t tx_port_index;
  uint16_t tx_port_id;
  uint16_t tx_queue;
};

struct WorkerOptions {
  uint16_t worker_id = 0;
  unsigned lcore = 0;
  bool replay = false;           // packet time from mbuf timestamps; stop at end of input
  int timestamp_offset = -1;     // mbuf dynfield offset of the RX timestamp (-1: none)
  uint64_t timestamp_flag = 0;   // its ol_flags bit
  uint64_t timestamp_scale = 1;  // multiplier to nanoseconds
  ExceptionPolicy flow_table_full = ExceptionPolicy::kPassPacket;
  ExceptionPolicy defrag_memcap = ExceptionPolicy::kPassPacket;
  uint32_t tx_flush_us = 100;
  uint64_t replay_pps = 0;  // replay: at most this many packets per second (0: as fast as possible)
};

class Worker final : public FlowEndSink {
 public:
  // `flow_memory`: FlowTable::MemoryBytes() bytes on the worker's NUMA node.
  // `defrag`: nullopt turns defragmentation off (later fragments then go untracked);
  // `defrag_memory`: Defragmenter::MemoryBytes() bytes on the worker's node (nullptr: allocated).
  Worker(const WorkerOptions& options, const FlowConfig& flow_config,
         const AppLayerConfig& app_config, const std::optional<DefragConfig>& defrag,
         void* defrag_memory, uint64_t hash_seed, void* flow_memory,
         std::vector<WorkerQueue> queues, uint16_t nb_ports, EventRing* event_ring,
         const std::atomic<bool>* stop);

  // Gives the worker the signature engine: while `detects` publishes a rule set, every TCP/UDP
  // packet with payload of a tracked flow is inspected with it (detect/inspector.h). The worker
  // reads the snapshot once per loop pass and reports a quiescent state after it (RCU), so a
  // pushed rule set takes effect between two bursts. Start-up only, before Run(); allocates the
  // per-flow FlowBits.
  void EnableDetect(RcuPublisher<DetectSnapshot>* detects);

  // Turns on the per-packet block check against the tables `blocks` publishes (RCU: the worker
  // reads the table once per loop pass and reports a quiescent state after it). Start-up only.
  void EnableBlocking(BlockPublisher* blocks) noexcept { blocks_ = blocks; }
  // Every forwarded frame is also appended to `history` (this worker's ring). Start-up only.
  void EnableHistory(PacketHistory* history) noexcept { history_ = history; }

  // Runs until *stop (or, in replay, until every queue is drained); then flushes TX and ends
  // every flow (kShutdown). Call on the worker's lcore.
  void Run() noexcept;

  // One loop pass: RX and process one burst from each queue, flush TX and expire flows when due.
  // Returns the number of packets received.
  uint32_t PollOnce() noexcept;
  // Transmits everything staged, then ends every flow and publishes counters.
  void Finish() noexcept;

  const WorkerCounters& counters() const noexcept { return counters_; }
  const PortCounters& port_counters(uint16_t port_index) const noexcept {
    return port_counters_[port_index];
  }
  uint16_t id() const noexcept { return options_.worker_id; }
  unsigned lcore() const noexcept { return options_.lcore; }

  void OnFlowEnd(const Flow& flow, FlowEndReason reason) noexcept override;

 private:
  struct TxBuffer {
    uint16_t port_id;
    uint16_t queue;
    uint16_t rx_port_index;  // whose packets these are (for drop accounting)
    uint16_t count;
    rte_mbuf* pkts[kBurst];
  };

  // Per-packet state carried between the stages of ProcessBurst.
  struct BurstSlot {
    PacketMeta meta;
    FlowKey key;
    uint64_t ts;
    uint32_t hash;
    bool sender_is_lo;
    bool track;
    bool defrag;  // an IP fragment for the defragmenter
  };

  class DefragEvents;

  void ProcessBurst(const WorkerQueue& q, rte_mbuf** pkts, uint16_t n) noexcept;
  void Stage(uint16_t tx_index, rte_mbuf* m) noexcept;
  // A fragment: hands it to the defragmenter; a completed datagram is decoded and inspected like
  // any packet. Returns false when the fragment is to be dropped.
  // *reason: why, when it is dropped (kDefragPolicy unless a rule dropped the datagram).
  bool Defragment(rte_mbuf* m, const PacketMeta& meta, DropReason* reason) noexcept;
  void PublishDefragCounters() noexcept;
  void FlushTx(uint16_t tx_index) noexcept;
  void FlushAll() noexcept;
  void Housekeeping(uint64_t tsc) noexcept;
  void Drop(uint16_t rx_port_index, rte_mbuf* m, DropReason reason) noexcept;
  void PublishFlowCounters() noexcept;
  void PublishSessionCounters() noexcept;
  // Before the session layer: the signature engine starts on a tracked TCP/UDP packet (the
  // messages its parsers complete are inspected with it).
  void BeginInspect(const FlowLookup& fl, const PacketMeta& meta,
                    std::span<const uint8_t> frame) noexcept;
  // After the session layer: the signature engine on the packet's payload, and the verdict.
  // True when a drop or reject rule dropped the packet (its flow is then marked drop, and for a
  // reject the RSTs or the ICMP port unreachable are sent on `tx_index` and its reverse; none
  // when it is UINT16_MAX).
  bool Inspect(const FlowLookup& fl, const PacketMeta& meta, std::span<const uint8_t> frame,
               uint16_t tx_index, rte_mbuf* m) noexcept;
  uint64_t WallNs(uint64_t tsc) const noexcept;
  // The block check on a packet whose table is non-empty: true when it was dropped (and, for a
  // TCP flow not reset yet, an RST sent to each end).
  bool Blocked(const WorkerQueue& q, uint16_t tx_index, rte_mbuf* m, const BurstSlot& b) noexcept;
  void SendRst(uint16_t tx_index, rte_mbuf* like, std::span<const uint8_t> frame,
               const PacketMeta& meta, bool toward_sender) noexcept;
  // Sends `frame` (built by BuildTcpRst or BuildIcmpUnreachable) on TX buffer `tx_index`.
  void SendFrame(uint16_t tx_index, rte_mbuf* like, std::span<const uint8_t> frame) noexcept;

  WorkerOptions options_;
  FlowTable flows_;
  EventRing* event_ring_;
  std::unique_ptr<SessionManager> sessions_;
  std::unique_ptr<Inspector> inspector_;  // null when the dataplane has no signature engine
  RcuPublisher<DetectSnapshot>* detects_ = nullptr;
  bool inspect_ = false;  // this loop pass: inspector_ has a rule set
  std::unique_ptr<Defragmenter> defrag_;
  std::unique_ptr<uint8_t[]>
      defrag_out_;  // a reassembled datagram behind a synthetic Ethernet header
  std::vector<WorkerQueue> queues_;
  std::vector<TxBuffer> tx_;  // one per queue entry, indexed like queues_
  std::vector<PortCounters> port_counters_;
  WorkerCounters counters_;
  const std::atomic<bool>* stop_;
  uint64_t anomaly_counts_[kAnomalyBits] = {};
  uint64_t decode_counts_[4] = {};
  uint64_t now_ns_ = 0;  // packet time in replay, wall time otherwise
  uint64_t tsc_hz_;
  uint64_t flush_cycles_;
  uint64_t last_flush_tsc_ = 0;
  uint64_t wall_base_ns_;
  uint64_t tsc_base_;
  uint32_t expire_budget_;
  uint32_t idle_polls_ = 0;
  uint64_t rx_seq_ = 0;
  uint64_t last_expire_ns_ = 0;  // packet time of the previous expiry pass  // packets received by
                                 // this worker (replay: the capture's packet number)
  PacketHistory* history_ = nullptr;
  BlockPublisher* blocks_ = nullptr;
  const BlockTable* block_table_ = nullptr;  // this loop pass's table (nullptr: none or empty)
  const BlockTable* last_block_table_ = nullptr;
  uint64_t block_wall_ns_ = 0;                 // wall clock for entry expiry, read once per pass
  std::vector<uint16_t> reverse_tx_;           // per queue: the TX buffer toward the sender
  static constexpr size_t kResetCache = 4096;  // flows recently reset (direct-mapped, by hash)
  std::unique_ptr<uint64_t[]> reset_cache_;
  uint64_t replay_start_tsc_ = 0;
  uint64_t replay_received_ = 0;
  BurstSlot burst_[kBurst];
  alignas(64) uint8_t scratch_[65535];
};

}  // namespace vigil::dp
