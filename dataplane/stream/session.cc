#include "dataplane/stream/session.h"

#include <sys/mman.h>

#include <cstring>
#include <new>

#include "dataplane/export/event_record.h"
#include "dataplane/proto/smb.h"

namespace vigil::dp {

using proto::AppProto;
using proto::Direction;
using proto::ProbeResult;

// The EventSink the parsers see: builds an AppEventHeader for the current flow and copies the
// event onto the worker's ring.
class SessionManager::EventCarrier final : public proto::EventSink, public FileTap::Context {
 public:
  EventCarrier(EventRing* ring, uint16_t worker, SessionCounters* counters)
      : ring_(ring), worker_(worker), counters_(counters) {}

  void set_packet_number(uint64_t n) noexcept { pcap_cnt_ = n; }

  void Bind(const Flow* flow, bool reversed, uint64_t now_ns) noexcept {
    flow_ = flow;
    reversed_ = reversed;
    now_ = now_ns;
  }

  proto::JsonWriter& Begin(std::string_view event_type, Direction dir) noexcept override {
    writer_.Reset();
    message_.Clear();
    type_len_ = event_type.size() < sizeof type_ ? event_type.size() : sizeof type_;
    std::memcpy(type_, event_type.data(), type_len_);
    dir_ = dir;
    return writer_;
  }
  proto::TextBuilder& message() noexcept override { return message_; }
  uint64_t now_ns() const noexcept override { return now_; }

  void set_tx_inspector(TxInspector* t) noexcept { tx_ = t; }
  bool inspecting() const noexcept override {
    return tx_ != nullptr && flow_ != nullptr && tx_->active();
  }
  void Inspect(Direction dir, const rules::Buffers& buffers) noexcept override {
    if (!inspecting()) return;
    // The parser's client is the flow's server after a reversed midstream pickup.
    const auto flow_dir = static_cast<FlowDir>(static_cast<uint8_t>(dir) ^ (reversed_ ? 1 : 0));
    tx_->OnTransaction(*flow_, flow_dir, buffers);
  }

  void Commit() noexcept override {
    ++counters_->events;
    if (writer_.depth() != 0) {
      // A parser left containers open: close them so that the record is valid JSON.
      while (writer_.depth() != 0) writer_.ObjectEnd();
    }
    const bool truncated = writer_.truncated() || message_.truncated();
    if (truncated) ++counters_->events_truncated;
    if (ring_ == nullptr || flow_ == nullptr) {
      ++counters_->events_lost;
      return;
    }
    const std::string_view body = writer_.view();
    const std::string_view msg = message_.view();
    const uint32_t size =
        static_cast<uint32_t>(sizeof(AppEventHeader) + type_len_ + body.size() + msg.size());
    uint8_t* p = ring_->Reserve(size);
    if (p == nullptr) {
      ++counters_->events_lost;
      return;
    }
    AppEventHeader h;
    FileIdentity(&h);
    h.direction = static_cast<uint8_t>(dir_);
    h.flags = truncated ? kAppEventTruncated : 0;
    h.worker = worker_;
    h.type_len = static_cast<uint16_t>(type_len_);
    h.message_len = static_cast<uint16_t>(msg.size());
    h.body_len = static_cast<uint32_t>(body.size());
    h.pcap_cnt = pcap_cnt_;
    std::memcpy(p, &h, sizeof h);
    uint8_t* q = p + sizeof h;
    std::memcpy(q, type_, type_len_);
    q += type_len_;
    if (!body.empty()) std::memcpy(q, body.data(), body.size());
    q += body.size();
    if (!msg.empty()) std::memcpy(q, msg.data(), msg.size());
    ring_->Commit(kEventApp, size);
  }

  // The bound flow's identity (client → server as the parser sees it) and the packet time.
  bool FileIdentity(AppEventHeader* h) const noexcept override {
    std::memset(h, 0, sizeof *h);
    if (flow_ == nullptr) return false;
    const Flow& f = *flow_;
    const bool client_lo = (f.client_is_lo != 0) != reversed_;
    std::memcpy(h->src_addr, client_lo ? f.key.addr_lo : f.key.addr_hi, 16);
    std::memcpy(h->dst_addr, client_lo ? f.key.addr_hi : f.key.addr_lo, 16);
    h->src_port = client_lo ? f.key.port_lo : f.key.port_hi;
    h->dst_port = client_lo ? f.key.port_hi : f.key.port_lo;
    h->ts_ns = now_;
    h->flow_id = f.flow_id;
    h->vlan[0] = static_cast<uint16_t>(f.key.vlan_proto & 0xfff);
    h->vlan[1] = static_cast<uint16_t>((f.key.vlan_proto >> 12) & 0xfff);
    h->vlan_count = f.vlan_count;
    h->proto = static_cast<uint8_t>(f.key.vlan_proto >> 24);
    h->ip_version = f.ip_version;
    h->app_proto = f.app_proto;
    h->worker = worker_;
    h->pcap_cnt = pcap_cnt_;
    return true;
  }

 private:
  EventRing* ring_;
  uint16_t worker_;
  SessionCounters* counters_;
  TxInspector* tx_ = nullptr;
  const Flow* flow_ = nullptr;
  bool reversed_ = false;
  uint64_t now_ = 0;
  uint64_t pcap_cnt_ = 0;
  char type_[16];
  size_t type_len_ = 0;
  Direction dir_ = Direction::kToServer;
  char buf_[8192];
  proto::JsonWriter writer_{buf_, sizeof buf_};
  proto::TextBuilder message_;
};

// Reassembly's sink for one direction of one session, built on the stack per call.
class SessionManager::DirectionSink final : public StreamSink {
 public:
  DirectionSink(SessionManager* m, Flow* flow, Session* s, FlowDir dir)
      : m_(m), flow_(flow), s_(s), dir_(dir) {}
  void OnData(std::span<const uint8_t> data) noexcept override {
    m_->Deliver(*flow_, s_, dir_, data);
  }
  void OnGap(uint32_t missing) noexcept override { m_->Gap(*flow_, s_, dir_, missing); }
  void OnEvent(StreamEvent e) noexcept override { m_->StreamEventSeen(*flow_, s_, dir_, e); }

 private:
  SessionManager* m_;
  Flow* flow_;
  Session* s_;
  FlowDir dir_;
};

namespace {

// Start-up allocation that the owning worker touches first (first-touch NUMA placement).
uint8_t* MapUntouched(size_t bytes) {
  if (bytes == 0) return nullptr;
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  return static_cast<uint8_t*>(p);
}

size_t RoundUp(size_t n, size_t a) { return (n + a - 1) / a * a; }

}  // namespace

SessionManager::SessionManager(const AppLayerConfig& config, uint16_t worker, EventRing* ring,
                               std::span<const proto::ParserKind> kinds)
    : config_(config),
      worker_(worker),
      kinds_(kinds),
      segments_(config.enabled ? config.segment_slots : 1),
      reassembler_(&segments_, config.reassembly),
      carrier_(std::make_unique<EventCarrier>(ring, worker, &counters_)) {
  if (config_.enabled && config_.files.enabled) {
    file_tap_ = std::make_unique<FileTap>(config_.files, worker, ring, carrier_.get());
  }
  const uint32_t n = config_.enabled ? config_.sessions : 0;
  sessions_ = std::make_unique<Session[]>(n);
  for (uint32_t i = 0; i < n; ++i) sessions_[i].next_free = i + 1 < n ? i + 1 : kSegmentNil;
  free_head_ = n > 0 ? 0 : kSegmentNil;
  pools_.resize(kinds_.size());
  for (size_t k = 0; k < kinds_.size(); ++k) {
    ParserPool& p = pools_[k];
    p.capacity = config_.enabled ? kinds_[k].default_pool : 0;
    for (const auto& [name, count] : config_.parser_pools) {
      if (name == kinds_[k].name) p.capacity = config_.enabled ? count : 0;
    }
    p.slot_size = RoundUp(kinds_[k].size, kinds_[k].align < 64 ? 64 : kinds_[k].align);
    p.memory = MapUntouched(p.slot_size * p.capacity);
    p.free.reserve(p.capacity);
    for (uint32_t i = p.capacity; i > 0; --i) p.free.push_back(i - 1);
  }
}

SessionManager::~SessionManager() {
  for (uint32_t i = 0; i < (config_.enabled ? config_.sessions : 0); ++i) {
    if (sessions_[i].parser != nullptr && sessions_[i].state == State::kParsing) {
      sessions_[i].parser->~AppParser();
    }
  }
  for (ParserPool& p : pools_) {
    if (p.memory != nullptr) munmap(p.memory, p.slot_size * p.capacity);
  }
}

void SessionManager::set_packet_number(uint64_t n) noexcept { carrier_->set_packet_number(n); }

void SessionManager::set_tx_inspector(TxInspector* inspector) noexcept {
  carrier_->set_tx_inspector(inspector);
}

SessionManager::Session* SessionManager::Get(const Flow& flow) noexcept {
  if (flow.session == 0) return nullptr;
  return &sessions_[flow.session - 1];
}

SessionManager::Session* SessionManager::Create(Flow& flow) noexcept {
  if (free_head_ == kSegmentNil) {
    ++counters_.sessions_exhausted;
    flow.app_probes = 0xff;  // do not try again for this flow
    return nullptr;
  }
  const uint32_t idx = free_head_;
  Session* s = &sessions_[idx];
  free_head_ = s->next_free;
  std::memset(static_cast<void*>(s), 0, offsetof(Session, probe));
  s->first_dir = 0xff;
  s->parser = nullptr;
  s->state = State::kProbing;
  flow.session = idx + 1;
  ++counters_.sessions_created;
  ++counters_.sessions_active;
  return s;
}

void SessionManager::Free(Flow& flow, Session* s) noexcept {
  reassembler_.Release(&s->stream[0]);
  reassembler_.Release(&s->stream[1]);
  if (s->parser != nullptr) {
    s->parser->~AppParser();
    pools_[s->kind].free.push_back(s->parser_slot);
    s->parser = nullptr;
  }
  const uint32_t idx = flow.session - 1;
  s->next_free = free_head_;
  free_head_ = idx;
  flow.session = 0;
  --counters_.sessions_active;
}

SessionManager::Verdict SessionManager::OnPacket(Flow& flow, FlowDir dir, const PacketMeta& meta,
                                                 std::span<const uint8_t> frame,
                                                 uint64_t now_ns) noexcept {
  if (!config_.enabled || flow.app_probes == 0xff) return Verdict::kForward;
  std::span<const uint8_t> payload;
  if (meta.payload_offset != 0 && size_t{meta.payload_offset} + meta.payload_len <= frame.size()) {
    payload = frame.subspan(meta.payload_offset, meta.payload_len);
  }
  if (meta.ip_proto == 6) return OnTcp(flow, dir, meta, payload, now_ns);
  if (meta.ip_proto == 17 && !payload.empty()) {
    Session* s = Get(flow);
    carrier_->Bind(&flow, s != nullptr && s->reversed, now_ns);
    OnUdp(flow, dir, payload);
  }
  return Verdict::kForward;
}

SessionManager::Verdict SessionManager::OnTcp(Flow& flow, FlowDir dir, const PacketMeta& meta,
                                              std::span<const uint8_t> payload,
                                              uint64_t now_ns) noexcept {
  constexpr uint8_t kFin = 0x01, kSyn = 0x02, kRst = 0x04, kAck = 0x10;
  const uint8_t flags = meta.tcp_flags;
  const bool fin = (flags & kFin) != 0;
  Session* s = Get(flow);
  if (s == nullptr) {
    // A session for every TCP flow from its SYN, or from its first data when picked up midstream.
    if ((flags & kSyn) == 0 && payload.empty()) return Verdict::kForward;
    if ((flags & kSyn) == 0 && !config_.midstream) {
      flow.app_probes = 0xff;
      return Verdict::kForward;
    }
    s = Create(flow);
    if (s == nullptr) return Verdict::kForward;
    if ((flags & kSyn) == 0) {
      s->midstream = 1;
      ++counters_.midstream;
    }
  }
  if (s->state == State::kFailed) return Verdict::kForward;
  carrier_->Bind(&flow, s->reversed != 0, now_ns);
  StreamDirection* sd = &s->stream[dir];
  uint32_t seq = meta.tcp_seq;
  if ((flags & kSyn) != 0) {
    if ((sd->flags & kStreamInitialised) == 0) reassembler_.Init(sd, seq);
    ++seq;  // data on a SYN (TCP Fast Open) starts after it
  }
  if ((flags & kRst) != 0) return Verdict::kForward;
  if (!payload.empty() || fin) {
    DirectionSink sink(this, &flow, s, dir);
    const Reassembler::Result r = reassembler_.Add(sd, seq, payload, fin, sink);
    ReleaseIfStopped(s);
    if (r == Reassembler::Result::kPoolExhausted) {
      ++counters_.stream_memcap;
      switch (config_.stream_memcap) {
        case ExceptionPolicy::kDropFlow:
          flow.action = FlowAction::kDrop;
          return Verdict::kDrop;
        case ExceptionPolicy::kDropPacket:
          return Verdict::kDrop;
        case ExceptionPolicy::kPassFlow:
        case ExceptionPolicy::kBypass:
          StopInspecting(flow, s);
          ReleaseIfStopped(s);
          return Verdict::kForward;
        case ExceptionPolicy::kPassPacket:
          return Verdict::kForward;
      }
    }
    if (s->state == State::kFailed) return Verdict::kForward;
  }
  // An ACK past a hole in the other direction: the receiver got bytes we never saw.
  if ((flags & kAck) != 0) {
    const FlowDir other = dir == kToServer ? kToClient : kToServer;
    StreamDirection* od = &s->stream[other];
    if (od->head != kSegmentNil) {
      DirectionSink sink(this, &flow, s, other);
      reassembler_.SkipAckedGap(od, meta.tcp_ack, sink);
      ReleaseIfStopped(s);
    }
  }
  return Verdict::kForward;
}

void SessionManager::OnUdp(Flow& flow, FlowDir dir, std::span<const uint8_t> payload) noexcept {
  Session* s = Get(flow);
  if (s == nullptr) {
    bool maybe = false, reversed = false;
    const int kind = Probe(flow, nullptr, dir, payload, true, &maybe, &reversed);
    if (kind < 0) {
      // Two datagrams (either way) that nothing recognises: give up on the flow.
      if (++flow.app_probes >= 2) {
        flow.app_probes = 0xff;
        flow.app_proto = static_cast<uint8_t>(AppProto::kFailed);
        ++counters_.identification_failed;
      }
      return;
    }
    s = Create(flow);
    if (s == nullptr) return;
    if (!StartParser(flow, s, kind, reversed)) return;
    carrier_->Bind(&flow, s->reversed != 0, carrier_->now_ns());
  }
  if (s->state != State::kParsing) return;
  s->parser->OnDatagram(ParserDir(s, dir), payload, *carrier_);
}

int SessionManager::Probe(const Flow& flow, const Session* s, FlowDir dir,
                          std::span<const uint8_t> data, bool udp, bool* maybe,
                          bool* reversed) const noexcept {
  const uint16_t server_port = flow.client_is_lo ? flow.key.port_hi : flow.key.port_lo;
  const bool may_reverse = udp || (s != nullptr && s->midstream != 0);
  // Pass 0: kinds whose well-known port is the server port; pass 1: every other kind. Within a
  // pass, first as oriented, then (midstream only) as if client and server were swapped.
  for (int pass = 0; pass < 2; ++pass) {
    for (int flip = 0; flip < (may_reverse ? 2 : 1); ++flip) {
      for (size_t k = 0; k < kinds_.size(); ++k) {
        const proto::ParserKind& kind = kinds_[k];
        const proto::ProbeFn fn = udp ? kind.probe_udp : kind.probe_tcp;
        if (fn == nullptr || pools_[k].capacity == 0) continue;
        bool port_match = false;
        for (uint16_t p : kind.ports) port_match |= p != 0 && p == server_port;
        if (port_match != (pass == 0)) continue;
        const auto d = static_cast<Direction>(static_cast<uint8_t>(dir) ^ flip);
        const ProbeResult r = fn(d, data);
        if (r == ProbeResult::kYes) {
          *reversed = flip != 0;
          return static_cast<int>(k);
        }
        if (r == ProbeResult::kMaybe) *maybe = true;
      }
    }
  }
  return -1;
}

bool SessionManager::StartParser(Flow& flow, Session* s, int kind, bool reversed) noexcept {
  ParserPool& pool = pools_[static_cast<size_t>(kind)];
  const AppProto proto = kinds_[static_cast<size_t>(kind)].proto;
  flow.app_proto = static_cast<uint8_t>(proto);
  ++counters_.identified[static_cast<int>(proto)];
  if (pool.free.empty()) {
    ++counters_.parser_exhausted[static_cast<int>(proto)];
    StopInspecting(flow, s);
    return false;
  }
  const uint32_t slot = pool.free.back();
  pool.free.pop_back();
  s->parser =
      kinds_[static_cast<size_t>(kind)].construct(pool.memory + size_t{slot} * pool.slot_size);
  s->parser_slot = slot;
  s->kind = static_cast<uint8_t>(kind);
  s->state = State::kParsing;
  s->reversed = reversed ? 1 : 0;
  if (file_tap_ != nullptr && proto == AppProto::kSmb) {
    // Tests may register their own kinds: only the real SMB parser has the file seam.
    if (auto* smb = dynamic_cast<proto::SmbParser*>(s->parser)) {
      smb->set_file_observer(file_tap_.get());
    }
  }
  if (reversed) ++counters_.reversed;
  return true;
}

// May run inside a reassembly callback, which must not re-enter the reassembler: buffered slots
// are released by the caller once the reassembler has returned (ReleaseIfStopped).
void SessionManager::StopInspecting(Flow& flow, Session* s) noexcept {
  s->state = State::kFailed;
  flow.app_probes = 0xff;
}

void SessionManager::ReleaseIfStopped(Session* s) noexcept {
  if (s->state != State::kFailed) return;
  reassembler_.Release(&s->stream[0]);
  reassembler_.Release(&s->stream[1]);
}

void SessionManager::Deliver(Flow& flow, Session* s, FlowDir dir,
                             std::span<const uint8_t> data) noexcept {
  if (data.empty()) return;
  if (s->state == State::kParsing) {
    s->parser->OnData(ParserDir(s, dir), data, *carrier_);
    return;
  }
  if (s->state != State::kProbing) return;
  if (s->first_dir == 0xff) s->first_dir = dir;
  // Collect this direction's first bytes and probe them.
  const size_t room = kProbeBytes - s->probe_len[dir];
  const size_t copied = data.size() < room ? data.size() : room;
  std::memcpy(s->probe[dir] + s->probe_len[dir], data.data(), copied);
  s->probe_len[dir] = static_cast<uint8_t>(s->probe_len[dir] + copied);
  bool maybe = false, reversed = false;
  const int kind =
      Probe(flow, s, dir, {s->probe[dir], s->probe_len[dir]}, false, &maybe, &reversed);
  if (kind < 0) {
    if (maybe && s->probe_len[dir] < kProbeBytes) return;  // wait for more bytes
    s->said_no |= static_cast<uint8_t>(1u << dir);
    // Client-first protocols only: the first direction's bytes decide. (A midstream pickup
    // already tried the reversed reading.)
    flow.app_proto = static_cast<uint8_t>(AppProto::kFailed);
    ++counters_.identification_failed;
    StopInspecting(flow, s);
    return;
  }
  if (!StartParser(flow, s, kind, reversed)) return;
  carrier_->Bind(&flow, s->reversed != 0, carrier_->now_ns());
  // Replay what was collected: the other direction's bytes first when they came first.
  const FlowDir other = dir == kToServer ? kToClient : kToServer;
  if (s->first_dir == other && s->probe_len[other] > 0) {
    s->parser->OnData(ParserDir(s, other), {s->probe[other], s->probe_len[other]}, *carrier_);
  }
  s->parser->OnData(ParserDir(s, dir), {s->probe[dir], s->probe_len[dir]}, *carrier_);
  if (s->first_dir != other && s->probe_len[other] > 0) {
    s->parser->OnData(ParserDir(s, other), {s->probe[other], s->probe_len[other]}, *carrier_);
  }
  if (copied < data.size()) s->parser->OnData(ParserDir(s, dir), data.subspan(copied), *carrier_);
}

void SessionManager::Gap(Flow& flow, Session* s, FlowDir dir, uint32_t missing) noexcept {
  if (s->state == State::kParsing) {
    s->parser->OnGap(ParserDir(s, dir), missing, *carrier_);
  } else if (s->state == State::kProbing) {
    // The first bytes are lost: nothing to identify the protocol with.
    flow.app_proto = static_cast<uint8_t>(AppProto::kFailed);
    ++counters_.identification_failed;
    StopInspecting(flow, s);
  }
}

void SessionManager::StreamEventSeen(Flow& flow, Session* s, FlowDir dir, StreamEvent e) noexcept {
  (void)flow;
  const char* name = nullptr;
  switch (e) {
    case StreamEvent::kOverlapDiffers:
      name = "REASSEMBLY_OVERLAP_DIFFERENT_DATA";
      break;
    case StreamEvent::kDataAfterFin:
      name = "DATA_AFTER_FIN";
      break;
    case StreamEvent::kWindowExceeded:
      name = "REASSEMBLY_WINDOW_EXCEEDED";
      break;
    case StreamEvent::kPoolExhausted:
      if (s->memcap_reported) return;
      s->memcap_reported = 1;
      name = "REASSEMBLY_MEMCAP";
      break;
    case StreamEvent::kRetransmission:
    case StreamEvent::kDepthReached:
      return;  // routine: counted by the reassembler, not worth an event each
  }
  proto::JsonWriter& w = carrier_->Begin("anomaly", ParserDir(s, dir));
  w.ObjectBegin("anomaly");
  w.Str("type", "stream");
  w.Str("event", name);
  w.ObjectEnd();
  carrier_->message().Append("ANOMALY stream ").Append(name);
  carrier_->Commit();
}

void SessionManager::OnFlowEnd(const Flow& flow_in, uint64_t now_ns) noexcept {
  if (flow_in.session == 0) return;
  // The flow table hands ended flows out read-only; the session fields are this layer's own.
  Flow& flow = const_cast<Flow&>(flow_in);
  Session* s = Get(flow);
  carrier_->Bind(&flow, s->reversed != 0, now_ns);
  for (int d = 0; d < 2 && s->state != State::kFailed; ++d) {
    DirectionSink sink(this, &flow, s, static_cast<FlowDir>(d));
    reassembler_.Flush(&s->stream[d], sink);
  }
  if (s->state == State::kParsing) s->parser->OnEnd(*carrier_);
  Free(flow, s);
}

}  // namespace vigil::dp
