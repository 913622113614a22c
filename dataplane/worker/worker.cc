#include "dataplane/worker/worker.h"

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_prefetch.h>

#include <algorithm>
#include <cstring>
#include <ctime>

namespace vigil::dp {

namespace {
constexpr size_t kEthHeader = 14;
constexpr size_t kDefragOut = kEthHeader + kMaxDatagram + 64;
}  // namespace

class Worker::DefragEvents final : public DefragSink {
 public:
  void OnEvent(DefragEvent) noexcept override {}  // counted by the defragmenter
};

const char* DropReasonName(DropReason r) noexcept {
  switch (r) {
    case DropReason::kTxFull:
      return "tx_full";
    case DropReason::kFlowTableFull:
      return "flow_table_full";
    case DropReason::kFlowAction:
      return "flow_action";
    case DropReason::kStreamPolicy:
      return "stream_policy";
    case DropReason::kDefragPolicy:
      return "defrag_policy";
    case DropReason::kBlocked:
      return "blocked";
    case DropReason::kRule:
      return "rule";
    case DropReason::kCount:
      break;
  }
  return "unknown";
}

Worker::Worker(const WorkerOptions& options, const FlowConfig& flow_config,
               const AppLayerConfig& app_config, const std::optional<DefragConfig>& defrag,
               void* defrag_memory, uint64_t hash_seed, void* flow_memory,
               std::vector<WorkerQueue> queues, uint16_t nb_ports, EventRing* event_ring,
               const std::atomic<bool>* stop)
    : options_(options),
      flows_(flow_config, hash_seed, options.worker_id, flow_memory),
      event_ring_(event_ring),
      sessions_(std::make_unique<SessionManager>(app_config, options.worker_id, event_ring)),
      queues_(std::move(queues)),
      port_counters_(nb_ports),
      stop_(stop) {
  if (defrag.has_value()) {
    DefragConfig dc = *defrag;
    dc.hash_seed = hash_seed ^ 0x6a09e667f3bcc909ull;  // its own secret, derived from the worker's
    defrag_ = std::make_unique<Defragmenter>(dc, defrag_memory);
    defrag_out_ = std::make_unique<uint8_t[]>(kDefragOut);
  }
  tx_.resize(queues_.size());
  for (size_t i = 0; i < queues_.size(); ++i) {
    tx_[i].port_id = queues_[i].tx_port_id;
    tx_[i].queue = queues_[i].tx_queue;
    tx_[i].rx_port_index = queues_[i].rx_port_index;
    tx_[i].count = 0;
  }
  // A packet received on queue i leaves on i's TX port; an RST toward its sender leaves on the
  // port it came in on: the queue entry whose TX port is i's RX port (itself when a port is
  // bridged to itself, as in replay).
  reverse_tx_.assign(queues_.size(), UINT16_MAX);
  for (size_t i = 0; i < queues_.size(); ++i) {
    for (size_t j = 0; j < queues_.size(); ++j) {
      if (queues_[j].tx_port_index == queues_[i].rx_port_index) {
        reverse_tx_[i] = static_cast<uint16_t>(j);
        break;
      }
    }
  }
  reset_cache_ = std::make_unique<uint64_t[]>(kResetCache);
  tsc_hz_ = rte_get_tsc_hz();
  flush_cycles_ = tsc_hz_ * options.tx_flush_us / 1000000;
  if (flush_cycles_ == 0) flush_cycles_ = 1;
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  wall_base_ns_ = static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + ts.tv_nsec;
  tsc_base_ = rte_rdtsc();
  // Visit the whole table about once a second of housekeeping ticks, more in emergency mode.
  const uint64_t ticks_per_s = 1000000 / (options.tx_flush_us ? options.tx_flush_us : 1);
  expire_budget_ =
      static_cast<uint32_t>(flow_config.capacity / (ticks_per_s ? ticks_per_s : 1)) + 8;
}

void Worker::EnableDetect(RcuPublisher<DetectSnapshot>* detects) {
  detects_ = detects;
  inspector_ = std::make_unique<Inspector>(flows_.capacity(), options_.worker_id, event_ring_);
  sessions_->set_tx_inspector(inspector_.get());
}

void Worker::BeginInspect(const FlowLookup& fl, const PacketMeta& meta,
                          std::span<const uint8_t> frame) noexcept {
  const uint32_t index = flows_.IndexOf(*fl.flow);
  if (fl.created) inspector_->ResetFlow(index);
  inspector_->BeginPacket(*fl.flow, index, fl.dir, meta, frame, now_ns_);
}

bool Worker::Inspect(const FlowLookup& fl, const PacketMeta& meta, std::span<const uint8_t> frame,
                     uint16_t tx_index, rte_mbuf* m) noexcept {
  inspector_->InspectPayload();
  inspector_->EndPacket();
  const RuleVerdict v = inspector_->verdict();
  if (v == RuleVerdict::kPass) [[likely]] {
    return false;
  }
  fl.flow->action = FlowAction::kDrop;  // the rest of the flow, both directions
  if (v == RuleVerdict::kReject && tx_index != UINT16_MAX) {
    // Whatever is staged goes first: a reply must not overtake the packets before it.
    FlushTx(tx_index);
    const uint16_t back = reverse_tx_[tx_index];
    if (meta.ip_proto == 6 && (meta.tcp_flags & kTcpRst) == 0) {
      SendRst(tx_index, m, frame, meta, false);
      if (back != UINT16_MAX) {
        FlushTx(back);
        SendRst(back, m, frame, meta, true);
      }
    } else if (meta.ip_proto == 17 && back != UINT16_MAX) {
      uint8_t buf[kIcmpUnreachableMaxBytes];
      const size_t n = BuildIcmpUnreachable(frame, meta, buf);
      if (n > 0) {
        FlushTx(back);
        SendFrame(back, m, {buf, n});
      }
    }
  }
  return true;
}

uint64_t Worker::WallNs(uint64_t tsc) const noexcept {
  if (tsc < tsc_base_) return wall_base_ns_;  // read before the latest re-anchoring
  const uint64_t d = tsc - tsc_base_;
  // Split to avoid overflowing d * 1e9 for uptimes beyond a few seconds.
  return wall_base_ns_ + (d / tsc_hz_) * 1000000000ull + (d % tsc_hz_) * 1000000000ull / tsc_hz_;
}

void Worker::Drop(uint16_t rx_port_index, rte_mbuf* m, DropReason reason) noexcept {
  port_counters_[rx_port_index].drops[static_cast<int>(reason)].Add(1);
  rte_pktmbuf_free(m);
}

void Worker::FlushTx(uint16_t i) noexcept {
  TxBuffer& b = tx_[i];
  if (b.count == 0) return;
  uint64_t bytes = 0;
  for (uint16_t k = 0; k < b.count; ++k) bytes += rte_pktmbuf_pkt_len(b.pkts[k]);
  const uint16_t sent = rte_eth_tx_burst(b.port_id, b.queue, b.pkts, b.count);
  PortCounters& pc = port_counters_[b.rx_port_index];
  if (sent < b.count) {
    for (uint16_t k = sent; k < b.count; ++k) {
      bytes -= rte_pktmbuf_pkt_len(b.pkts[k]);
      rte_pktmbuf_free(b.pkts[k]);
    }
    pc.drops[static_cast<int>(DropReason::kTxFull)].Add(b.count - sent);
  }
  pc.fwd_pkts.Add(sent);
  pc.fwd_bytes.Add(bytes);
  b.count = 0;
}

void Worker::FlushAll() noexcept {
  for (size_t i = 0; i < tx_.size(); ++i) FlushTx(static_cast<uint16_t>(i));
}

void Worker::Stage(uint16_t i, rte_mbuf* m) noexcept {
  if (history_ != nullptr) {
    // The first segment holds every frame but jumbo ones, whose tail the history then lacks.
    history_->Append(now_ns_, {rte_pktmbuf_mtod(m, const uint8_t*), rte_pktmbuf_data_len(m)},
                     rte_pktmbuf_pkt_len(m));
  }
  TxBuffer& b = tx_[i];
  b.pkts[b.count++] = m;
  if (b.count == kBurst) FlushTx(i);
}

void Worker::OnFlowEnd(const Flow& flow, FlowEndReason reason) noexcept {
  // The session's last events (flushed streams, pending transactions) precede the flow record.
  sessions_->OnFlowEnd(flow, now_ns_);
  if (event_ring_ == nullptr) return;
  FlowRecord rec;
  MakeFlowRecord(flow, reason, options_.worker_id, &rec);
  if (event_ring_->Push(kEventFlowEnd, {reinterpret_cast<const uint8_t*>(&rec), sizeof rec})) {
    counters_.events_enqueued.Add(1);
  } else {
    counters_.events_ring_full.Add(1);
  }
}

// The burst goes through one stage at a time (VPP/YANET style): decode every packet and build
// its flow key and hash, prefetching its hash bucket; then prefetch each bucket's first flow;
// then look up and update flows, whose memory is by then in cache; then stage TX. On the
// benchmark mix (10.7k live flows) the flow stage's cache misses are what this hides.
void Worker::ProcessBurst(const WorkerQueue& q, rte_mbuf** pkts, uint16_t n) noexcept {
  PortCounters& pc = port_counters_[q.rx_port_index];
  const uint16_t tx_index = static_cast<uint16_t>(&q - queues_.data());
  uint64_t bytes = 0;

  // Stage 1: decode, key, hash, prefetch bucket.
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
    const uint32_t len = rte_pktmbuf_pkt_len(m);
    bytes += len;
    uint64_t ts = 0;
    if (options_.timestamp_offset >= 0 && (m->ol_flags & options_.timestamp_flag)) {
      ts = *RTE_MBUF_DYNFIELD(m, options_.timestamp_offset, uint64_t*) * options_.timestamp_scale;
    }
    burst_[i].ts = ts;
    PacketMeta& meta = burst_[i].meta;
    // Contiguous frames (all but jumbo ones) are decoded in place; a multi-segment frame is
    // linearised into the worker's scratch buffer so its IP length checks see the whole datagram.
    const uint32_t span_len = len < sizeof(scratch_) ? len : sizeof(scratch_);
    const auto* data = static_cast<const uint8_t*>(rte_pktmbuf_read(m, 0, span_len, scratch_));
    const DecodeClass cls = Decode(std::span<const uint8_t>(data, span_len), &meta);
    ++decode_counts_[static_cast<int>(cls)];
    if (meta.anomalies != 0) [[unlikely]] {
      for (int b = 0; b < kAnomalyBits; ++b) {
        if (meta.anomalies & (1u << b)) ++anomaly_counts_[b];
      }
    }
    bool track = cls == DecodeClass::kL3 || cls == DecodeClass::kL4;
    burst_[i].defrag = false;
    if (track && meta.fragment) [[unlikely]] {
      if (defrag_ != nullptr) {
        // Only the reassembled datagram is inspected; the fragments are forwarded as they are.
        burst_[i].defrag = true;
        track = false;
      } else if (!meta.first_fragment || meta.l4_offset == 0) {
        // Without reassembly a later fragment (or a first one too short for its L4 header) has
        // no ports: keying it would split the flow.
        counters_.fragments_untracked.Add(1);
        track = false;
      }
    }
    burst_[i].track = track;
    if (track) {
      burst_[i].hash = flows_.MakeKeyHash(meta, &burst_[i].key, &burst_[i].sender_is_lo);
      flows_.PrefetchBucket(burst_[i].hash);
    }
  }
  // Stage 2: the buckets are (being) loaded; prefetch the first flow of each chain.
  for (uint16_t i = 0; i < n; ++i) {
    if (burst_[i].track) flows_.PrefetchFlow(burst_[i].hash);
  }
  // Stage 3: flow lookup/update and verdict, then TX staging.
  for (uint16_t i = 0; i < n; ++i) {
    rte_mbuf* m = pkts[i];
    BurstSlot& b = burst_[i];
    if (b.ts > now_ns_) now_ns_ = b.ts;
    ++rx_seq_;
    if (options_.replay) {
      sessions_->set_packet_number(rx_seq_);
      if (inspector_ != nullptr) inspector_->set_packet_number(rx_seq_);
    }
    if (block_table_ != nullptr && b.meta.ip_version != 0) [[unlikely]] {
      if (Blocked(q, tx_index, m, b)) continue;
    }
    if (b.defrag) [[unlikely]] {
      DropReason reason = DropReason::kDefragPolicy;
      if (!Defragment(m, b.meta, &reason)) {
        Drop(q.rx_port_index, m, reason);
        continue;
      }
    } else if (b.track) {
      const FlowLookup fl = flows_.Process(b.key, b.hash, b.sender_is_lo, b.meta,
                                           rte_pktmbuf_pkt_len(m), now_ns_, *this);
      if (fl.flow == nullptr) [[unlikely]] {
        const ExceptionPolicy p = options_.flow_table_full;
        if (p == ExceptionPolicy::kDropPacket || p == ExceptionPolicy::kDropFlow) {
          Drop(q.rx_port_index, m, DropReason::kFlowTableFull);
          continue;
        }
        counters_.passed_untracked.Add(1);
      } else if (fl.flow->action == FlowAction::kDrop) [[unlikely]] {
        Drop(q.rx_port_index, m, DropReason::kFlowAction);
        continue;
      } else if (b.meta.ip_proto == 6 || b.meta.ip_proto == 17) {
        const uint32_t len = rte_pktmbuf_pkt_len(m);
        const uint32_t span_len = len < sizeof(scratch_) ? len : sizeof(scratch_);
        const auto* data = static_cast<const uint8_t*>(rte_pktmbuf_read(m, 0, span_len, scratch_));
        // The rules see the messages the parsers complete on this packet, then its payload.
        if (inspect_) BeginInspect(fl, b.meta, {data, span_len});
        if (sessions_->OnPacket(*fl.flow, fl.dir, b.meta, {data, span_len}, now_ns_) ==
            SessionManager::Verdict::kDrop) [[unlikely]] {
          if (inspect_) inspector_->EndPacket();
          Drop(q.rx_port_index, m, DropReason::kStreamPolicy);
          continue;
        }
        if (inspect_ && Inspect(fl, b.meta, {data, span_len}, tx_index, m)) [[unlikely]] {
          Drop(q.rx_port_index, m, DropReason::kRule);
          continue;
        }
      }
    }
    Stage(tx_index, m);
  }
  pc.rx_pkts.Add(n);
  pc.rx_bytes.Add(bytes);
}

void Worker::PublishFlowCounters() noexcept {
  const FlowTableCounters& c = flows_.counters();
  counters_.flows_active.Set(flows_.size());
  counters_.flows_created.Set(c.created);
  for (int r = 0; r < 4; ++r) counters_.flows_ended[r].Set(c.ended[r]);
  counters_.flow_table_full.Set(c.full);
  counters_.emergency.Set(flows_.emergency() ? 1 : 0);
  counters_.emergency_entered.Set(c.emergency_entered);
  counters_.max_chain.Set(c.max_chain);
  for (int i = 0; i < 4; ++i) counters_.decode[i].Set(decode_counts_[i]);
  for (int b = 0; b < kAnomalyBits; ++b) counters_.anomalies[b].Set(anomaly_counts_[b]);
}

bool Worker::Defragment(rte_mbuf* m, const PacketMeta& meta, DropReason* reason) noexcept {
  const uint32_t len = rte_pktmbuf_pkt_len(m);
  const uint32_t span_len = len < sizeof(scratch_) ? len : sizeof(scratch_);
  const auto* frame = static_cast<const uint8_t*>(rte_pktmbuf_read(m, 0, span_len, scratch_));
  if (meta.l3_offset >= span_len) return true;
  counters_.defrag_fragments.Add(1);
  defrag_->set_vlans(meta.vlan, meta.vlan_count);
  uint8_t* out = defrag_out_.get();
  uint32_t out_len = 0;
  DefragEvents events;
  const Defragmenter::Result r = defrag_->Add(
      std::span<const uint8_t>(frame + meta.l3_offset, span_len - meta.l3_offset), meta.ip_version,
      now_ns_, std::span<uint8_t>(out + kEthHeader, kDefragOut - kEthHeader), &out_len, events);
  switch (r) {
    case Defragmenter::Result::kComplete:
      break;
    case Defragmenter::Result::kPoolExhausted:
    case Defragmenter::Result::kTableFull:
      return options_.defrag_memcap != ExceptionPolicy::kDropPacket &&
             options_.defrag_memcap != ExceptionPolicy::kDropFlow;
    default:
      return true;
  }
  // A synthetic untagged Ethernet header: the datagram decodes like a frame; its VLANs (part of
  // the flow key) come from the fragment that completed it.
  std::memcpy(out, frame, 12);
  out[12] = meta.ip_version == 4 ? 0x08 : 0x86;
  out[13] = meta.ip_version == 4 ? 0x00 : 0xdd;
  const std::span<const uint8_t> dgram(out, kEthHeader + out_len);
  PacketMeta dm;
  const DecodeClass cls = Decode(dgram, &dm);
  if (cls != DecodeClass::kL3 && cls != DecodeClass::kL4) return true;
  dm.vlan_count = meta.vlan_count;
  dm.vlan[0] = meta.vlan[0];
  dm.vlan[1] = meta.vlan[1];
  FlowKey key;
  bool sender_is_lo;
  const uint32_t hash = flows_.MakeKeyHash(dm, &key, &sender_is_lo);
  const FlowLookup fl = flows_.Process(key, hash, sender_is_lo, dm,
                                       static_cast<uint32_t>(dgram.size()), now_ns_, *this);
  if (fl.flow == nullptr) return true;
  if (fl.flow->action == FlowAction::kDrop) {
    *reason = DropReason::kFlowAction;
    return false;
  }
  if (dm.ip_proto == 6 || dm.ip_proto == 17) {
    if (inspect_) BeginInspect(fl, dm, dgram);
    if (sessions_->OnPacket(*fl.flow, fl.dir, dm, dgram, now_ns_) !=
        SessionManager::Verdict::kForward) {
      if (inspect_) inspector_->EndPacket();
      return false;
    }
    // A drop or reject rule drops the fragment that completed the datagram (no reply is sent
    // for a reassembled datagram).
    if (inspect_ && Inspect(fl, dm, dgram, UINT16_MAX, m)) {
      *reason = DropReason::kRule;
      return false;
    }
  }
  return true;
}

void Worker::PublishDefragCounters() noexcept {
  if (defrag_ == nullptr) return;
  const DefragCounters& c = defrag_->counters();
  counters_.defrag_datagrams.Set(c.datagrams_completed);
  counters_.defrag_overlaps.Set(c.overlaps);
  counters_.defrag_overlap_differs.Set(c.overlap_differs);
  counters_.defrag_timeouts.Set(c.timeouts);
  counters_.defrag_memcap.Set(c.pool_exhausted + c.table_full);
  counters_.defrag_dropped.Set(c.too_many + c.too_large + c.malformed + c.out_too_small);
  counters_.defrag_trackers_in_use.Set(defrag_->trackers_in_use());
}

void Worker::PublishSessionCounters() noexcept {
  const SessionCounters& c = sessions_->counters();
  WorkerCounters& w = counters_;
  w.sessions_active.Set(c.sessions_active);
  w.sessions_created.Set(c.sessions_created);
  w.sessions_exhausted.Set(c.sessions_exhausted);
  uint64_t parser_exhausted = 0;
  for (int p = 0; p < static_cast<int>(proto::AppProto::kCount); ++p) {
    w.app_identified[p].Set(c.identified[p]);
    parser_exhausted += c.parser_exhausted[p];
  }
  w.app_parser_exhausted.Set(parser_exhausted);
  w.app_failed.Set(c.identification_failed);
  w.app_events.Set(c.events);
  w.app_events_lost.Set(c.events_lost);
  w.app_events_truncated.Set(c.events_truncated);
  if (const FileTapCounters* f = sessions_->file_counters()) {
    w.files_seen.Set(f->files);
    w.files_not_wanted.Set(f->not_wanted);
    w.files_truncated.Set(f->truncated);
    w.files_gaps.Set(f->gaps);
    w.files_chunks.Set(f->chunks);
    w.files_bytes.Set(f->bytes);
    w.files_chunks_dropped.Set(f->chunks_dropped);
    w.files_records_dropped.Set(f->meta_dropped);
    w.files_evicted.Set(f->evicted);
  }
  w.stream_memcap.Set(c.stream_memcap);
  w.stream_midstream.Set(c.midstream);
  const ReassemblyCounters& r = sessions_->reassembly_counters();
  w.stream_in_order.Set(r.segments_in_order);
  w.stream_out_of_order.Set(r.segments_out_of_order);
  w.stream_overlaps.Set(r.overlaps);
  w.stream_overlap_differs.Set(r.overlap_differs);
  w.stream_retransmissions.Set(r.retransmissions);
  w.stream_gaps.Set(r.gaps);
  w.stream_gap_bytes.Set(r.gap_bytes);
  w.stream_window_exceeded.Set(r.window_exceeded);
  w.stream_bytes.Set(r.bytes_delivered);
  w.stream_segments_in_use.Set(sessions_->segment_pool().in_use());
  if (inspector_ != nullptr) {
    const InspectorCounters& d = inspector_->counters();
    w.detect_inspected.Set(d.inspected);
    w.detect_stream_continued.Set(d.stream_continued);
    w.detect_transactions.Set(d.transactions);
    w.detect_transactions_skipped.Set(d.transactions_skipped);
    w.detect_alerts.Set(d.alerts);
    w.detect_alerts_lost.Set(d.alerts_lost);
    w.detect_drops.Set(d.drops);
    w.detect_rejects.Set(d.rejects);
  }
}

void Worker::Housekeeping(uint64_t tsc) noexcept {
  last_flush_tsc_ = tsc;
  if (tsc - tsc_base_ > tsc_hz_) {
    // Re-anchor the TSC-derived wall clock once a second: rte_get_tsc_hz() is an estimate, and
    // its error would otherwise accumulate (milliseconds per minute) into every timestamp, block
    // expiry and packet-history time. clock_gettime on the vDSO does not block.
    timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    wall_base_ns_ = static_cast<uint64_t>(now.tv_sec) * 1000000000ull + now.tv_nsec;
    tsc_base_ = rte_rdtsc();
  }
  FlushAll();
  // Never backwards (a re-anchored clock may step back by its drift): flow ages subtract times.
  if (!options_.replay) now_ns_ = std::max(now_ns_, WallNs(tsc));
  uint64_t budget = flows_.emergency() ? expire_budget_ * 8 : expire_budget_;
  if (options_.replay && now_ns_ > last_expire_ns_) {
    // A capture replays far faster than it was recorded: visit the table in proportion to the
    // packet time that passed (the whole table per packet-second, as live), not to wall time, so
    // idle flows end (and free their sessions and parsers) as they would have on the wire.
    const uint64_t dt = std::min<uint64_t>(now_ns_ - last_expire_ns_, 1'000'000'000ull);
    // Bounded per tick: a capture that jumps days ahead catches up over several ticks instead of
    // scanning the whole table at every one.
    budget += std::min<uint64_t>(uint64_t{flows_.capacity()} * dt / 1'000'000'000ull,
                                 uint64_t{expire_budget_} * 16);
  }
  last_expire_ns_ = now_ns_;
  flows_.ExpireSome(now_ns_, static_cast<uint32_t>(std::min<uint64_t>(budget, flows_.capacity())),
                    *this);
  if (defrag_ != nullptr) {
    DefragEvents events;
    defrag_->ExpireSome(now_ns_, 64, events);
  }
  PublishFlowCounters();
  PublishSessionCounters();
  PublishDefragCounters();
}

bool Worker::Blocked(const WorkerQueue& q, uint16_t tx_index, rte_mbuf* m,
                     const BurstSlot& b) noexcept {
  const PacketMeta& meta = b.meta;
  if (block_wall_ns_ == 0) block_wall_ns_ = WallNs(rte_rdtsc());
  const BlockEntry* e = block_table_->Match(meta.src_addr, meta.dst_addr, meta.ip_proto,
                                            meta.src_port, meta.dst_port, block_wall_ns_);
  if (e == nullptr) return false;
  block_table_->CountDrop(e, block_wall_ns_);
  counters_.blocked.Add(1);
  // TCP: reset both ends once per flow (a later packet of the flow, e.g. a retransmission, is
  // only dropped). Flows are told apart by their symmetric hash and the entry: a collision in the
  // small cache costs one RST pair more or less, never a wrong drop.
  if (meta.ip_proto == 6 && b.track && (meta.tcp_flags & kTcpRst) == 0) {
    const uint64_t tag = (uint64_t{b.hash} << 32 | (e->id & 0xffffffffu)) | 1;
    uint64_t& slot = reset_cache_[(b.hash ^ e->id) & (kResetCache - 1)];
    if (slot != tag) {
      slot = tag;
      const uint32_t len = rte_pktmbuf_pkt_len(m);
      const uint32_t span_len = len < sizeof(scratch_) ? len : sizeof(scratch_);
      const auto* data = static_cast<const uint8_t*>(rte_pktmbuf_read(m, 0, span_len, scratch_));
      const std::span<const uint8_t> frame(data, span_len);
      // Whatever is staged goes first: an RST must not overtake the packets before it.
      FlushTx(tx_index);
      SendRst(tx_index, m, frame, meta, false);
      const uint16_t back = reverse_tx_[tx_index];
      if (back != UINT16_MAX) {
        FlushTx(back);
        SendRst(back, m, frame, meta, true);
      }
      block_table_->CountReset(e);
    }
  }
  Drop(q.rx_port_index, m, DropReason::kBlocked);
  return true;
}

void Worker::SendRst(uint16_t tx_index, rte_mbuf* like, std::span<const uint8_t> frame,
                     const PacketMeta& meta, bool toward_sender) noexcept {
  uint8_t buf[kRstMaxBytes];
  const size_t n = BuildTcpRst(frame, meta, toward_sender, buf);
  if (n == 0) {
    counters_.resets_failed.Add(1);
    return;
  }
  SendFrame(tx_index, like, {buf, n});
}

void Worker::SendFrame(uint16_t tx_index, rte_mbuf* like, std::span<const uint8_t> frame) noexcept {
  rte_mbuf* r = rte_pktmbuf_alloc(like->pool);
  if (r == nullptr) {
    counters_.resets_failed.Add(1);
    return;
  }
  char* p = rte_pktmbuf_append(r, static_cast<uint16_t>(frame.size()));
  if (p == nullptr) {
    rte_pktmbuf_free(r);
    counters_.resets_failed.Add(1);
    return;
  }
  std::memcpy(p, frame.data(), frame.size());
  const TxBuffer& t = tx_[tx_index];
  if (rte_eth_tx_burst(t.port_id, t.queue, &r, 1) == 1) {
    counters_.resets_sent.Add(1);
  } else {
    rte_pktmbuf_free(r);
    counters_.resets_failed.Add(1);
  }
}

uint32_t Worker::PollOnce() noexcept {
  uint32_t total = 0;
  rte_mbuf* pkts[kBurst];
  if (blocks_ != nullptr) {
    const BlockTable* t = blocks_->Current();
    if (t != last_block_table_) {
      last_block_table_ = t;
      counters_.block_reloads.Add(1);
    }
    block_table_ = t != nullptr && !t->empty() ? t : nullptr;
    block_wall_ns_ = 0;
  }
  if (detects_ != nullptr) {
    // Pointer and serial: a new rule set allocated where a freed one was is still a new one.
    if (inspector_->Follow(detects_->Current())) [[unlikely]] {
      counters_.detect_reloads.Add(1);
    }
    inspect_ = inspector_->active();
  }
  uint16_t want = kBurst;
  if (options_.replay_pps != 0) [[unlikely]] {
    // Paced replay: no more packets than the rate allows by now (lets a block pushed by control
    // take effect mid-capture, as it would on a live link).
    const uint64_t now = rte_rdtsc();
    if (replay_start_tsc_ == 0) replay_start_tsc_ = now;
    const uint64_t d = now - replay_start_tsc_;
    const uint64_t allowed =
        (d / tsc_hz_) * options_.replay_pps + (d % tsc_hz_) * options_.replay_pps / tsc_hz_ + 1;
    want = static_cast<uint16_t>(
        std::min<uint64_t>(kBurst, allowed > replay_received_ ? allowed - replay_received_ : 0));
  }
  for (const WorkerQueue& q : queues_) {
    const uint16_t n = want == 0 ? 0 : rte_eth_rx_burst(q.rx_port_id, q.rx_queue, pkts, want);
    replay_received_ += n;
    if (n == 0) continue;
    // Live: one clock read per burst gives flow times to the burst, not to the flush tick.
    if (!options_.replay) now_ns_ = std::max(now_ns_, WallNs(rte_rdtsc()));
    counters_.rx_bursts.Add(1);
    ProcessBurst(q, pkts, n);
    total += n;
  }
  counters_.iterations.Add(1);
  const uint64_t tsc = rte_rdtsc();
  if (tsc - last_flush_tsc_ >= flush_cycles_) Housekeeping(tsc);
  if (blocks_ != nullptr) {
    block_table_ = nullptr;
    blocks_->Quiescent(options_.worker_id);  // no table read in this pass is referenced any more
  }
  if (detects_ != nullptr) detects_->Quiescent(options_.worker_id);
  return total;
}

void Worker::Finish() noexcept {
  FlushAll();
  flows_.EndAll(FlowEndReason::kShutdown, *this);
  PublishFlowCounters();
  PublishSessionCounters();
  PublishDefragCounters();
}

void Worker::Run() noexcept {
  // In replay, a pcap port returns 0 only at the end of its file (reads are synchronous), but
  // an empty burst can also mean the mempool ran dry while packets sat in TX staging: flush and
  // require a run of empty polls before concluding.
  constexpr uint32_t kReplayIdleLimit = 64;
  if (blocks_ != nullptr) blocks_->Online(options_.worker_id);
  if (detects_ != nullptr) detects_->Online(options_.worker_id);
  while (!stop_->load(std::memory_order_relaxed)) {
    const uint32_t n = PollOnce();
    if (options_.replay) {
      if (n == 0 && options_.replay_pps != 0 && replay_start_tsc_ != 0) {
        // Paced: an empty poll may only mean the rate held packets back.
        const uint64_t d = rte_rdtsc() - replay_start_tsc_;
        const uint64_t allowed =
            (d / tsc_hz_) * options_.replay_pps + (d % tsc_hz_) * options_.replay_pps / tsc_hz_ + 1;
        if (allowed <= replay_received_) continue;
      }
      if (n == 0) {
        FlushAll();
        if (++idle_polls_ >= kReplayIdleLimit) break;
      } else {
        idle_polls_ = 0;
      }
    }
  }
  if (blocks_ != nullptr) blocks_->Offline(options_.worker_id);
  if (detects_ != nullptr) {
    inspector_->Use(nullptr);  // the snapshot may be freed once this worker is offline
    detects_->Offline(options_.worker_id);
  }
  Finish();
}

}  // namespace vigil::dp
