#include "dataplane/flow/flow_table.h"

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <new>

namespace vigil::dp {
namespace {

constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;
constexpr uint8_t kProtoIcmp = 1;
constexpr uint8_t kProtoIcmpv6 = 58;
constexpr uint64_t kNsPerSec = 1000000000ull;

// Index of each timeout in FlowTable::timeouts_ns_[e][...].
enum TimeoutIndex {
  kTcpNew,
  kTcpEst,
  kTcpClosed,
  kUdpNew,
  kUdpEst,
  kIcmpNew,
  kIcmpEst,
  kOtherNew,
  kOtherEst,
};

uint32_t NextPow2(uint32_t v) noexcept {
  uint32_t p = 1;
  while (p < v) p <<= 1;
  return p;
}

size_t BucketCount(uint32_t capacity) noexcept { return NextPow2(capacity); }

void FillTimeouts(const FlowTimeouts& t, uint64_t* out) noexcept {
  out[kTcpNew] = t.tcp_new * kNsPerSec;
  out[kTcpEst] = t.tcp_established * kNsPerSec;
  out[kTcpClosed] = t.tcp_closed * kNsPerSec;
  out[kUdpNew] = t.udp_new * kNsPerSec;
  out[kUdpEst] = t.udp_established * kNsPerSec;
  out[kIcmpNew] = t.icmp_new * kNsPerSec;
  out[kIcmpEst] = t.icmp_established * kNsPerSec;
  out[kOtherNew] = t.other_new * kNsPerSec;
  out[kOtherEst] = t.other_established * kNsPerSec;
}

// Five 64-bit compares, branch-free: cheaper than a memcmp call for 40 bytes.
inline bool KeyEquals(const FlowKey& a, const FlowKey& b) noexcept {
  uint64_t x[5], y[5];
  std::memcpy(x, &a, sizeof(x));
  std::memcpy(y, &b, sizeof(y));
  return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (x[4] ^ y[4])) == 0;
}

uint8_t KeyProto(const FlowKey& key) noexcept { return static_cast<uint8_t>(key.vlan_proto >> 24); }

}  // namespace

const char* FlowEndReasonName(FlowEndReason r) noexcept {
  switch (r) {
    case FlowEndReason::kTimeout:
      return "timeout";
    case FlowEndReason::kForced:
      return "forced";
    case FlowEndReason::kShutdown:
      return "shutdown";
    case FlowEndReason::kTcpReuse:
      return "tcp_reuse";
  }
  return "unknown";
}

const char* FlowStateName(FlowState s) noexcept {
  switch (s) {
    case FlowState::kNew:
      return "new";
    case FlowState::kEstablished:
      return "established";
    case FlowState::kClosed:
      return "closed";
  }
  return "unknown";
}

const char* TcpStateName(TcpState s) noexcept {
  switch (s) {
    case TcpState::kNone:
      return "none";
    case TcpState::kSynSent:
      return "syn_sent";
    case TcpState::kSynRecv:
      return "syn_recv";
    case TcpState::kEstablished:
      return "established";
    case TcpState::kFinWait:
      return "fin_wait";
    case TcpState::kClosing:
      return "closing";
    case TcpState::kClosed:
      return "closed";
  }
  return "unknown";
}

void MakeFlowRecord(const Flow& flow, FlowEndReason reason, uint16_t worker,
                    FlowRecord* out) noexcept {
  std::memset(out, 0, sizeof(*out));
  const FlowKey& k = flow.key;
  const bool lo = flow.client_is_lo != 0;
  std::memcpy(out->src_addr, lo ? k.addr_lo : k.addr_hi, 16);
  std::memcpy(out->dst_addr, lo ? k.addr_hi : k.addr_lo, 16);
  out->src_port = lo ? k.port_lo : k.port_hi;
  out->dst_port = lo ? k.port_hi : k.port_lo;
  out->vlan[0] = k.vlan_proto & 0xfff;
  out->vlan[1] = (k.vlan_proto >> 12) & 0xfff;
  out->vlan_count = flow.vlan_count;
  out->proto = KeyProto(k);
  out->state = flow.state;
  out->tcp_state = flow.tcp_state;
  out->reason = reason;
  out->tcp_flags_ts = flow.tcp_flags[kToServer];
  out->tcp_flags_tc = flow.tcp_flags[kToClient];
  out->action = static_cast<uint8_t>(flow.action);
  out->worker = worker;
  out->ip_version = flow.ip_version;
  out->app_proto = flow.app_proto;
  out->alerted = flow.alerted;
  out->flow_id = flow.flow_id;
  out->start_ns = flow.start_ns;
  out->end_ns = flow.last_ns;
  out->pkts_toserver = flow.pkts[kToServer];
  out->pkts_toclient = flow.pkts[kToClient];
  out->bytes_toserver = flow.bytes[kToServer];
  out->bytes_toclient = flow.bytes[kToClient];
}

size_t FlowTable::MemoryBytes(uint32_t capacity) noexcept {
  return size_t{capacity} * sizeof(Flow) + BucketCount(capacity) * sizeof(uint32_t);
}

FlowTable::FlowTable(const FlowConfig& config, uint64_t seed, uint16_t worker_id, void* memory)
    : hash_(seed), capacity_(config.capacity), worker_id_(worker_id) {
  FillTimeouts(config.timeouts, timeouts_ns_[0]);
  FillTimeouts(config.emergency_timeouts, timeouts_ns_[1]);
  const uint32_t nbuckets = static_cast<uint32_t>(BucketCount(capacity_));
  bucket_mask_ = nbuckets - 1;
  enter_emergency_at_ =
      static_cast<uint32_t>(uint64_t{capacity_} * config.emergency_enter_percent / 100);
  exit_emergency_at_ =
      static_cast<uint32_t>(uint64_t{capacity_} * config.emergency_exit_percent / 100);
  owns_memory_ = memory == nullptr;
  if (owns_memory_) {
    memory = ::operator new (MemoryBytes(capacity_), std::align_val_t{64});
  }
  flows_ = static_cast<Flow*>(memory);
  buckets_ =
      reinterpret_cast<uint32_t*>(static_cast<uint8_t*>(memory) + size_t{capacity_} * sizeof(Flow));
  std::memset(flows_, 0, size_t{capacity_} * sizeof(Flow));
  for (uint32_t i = 0; i < capacity_; ++i) flows_[i].next = i + 1 < capacity_ ? i + 1 : kNil;
  free_head_ = 0;
  std::fill(buckets_, buckets_ + nbuckets, kNil);
}

FlowTable::~FlowTable() {
  if (owns_memory_) ::operator delete (flows_, std::align_val_t{64});
}

// The flow hash: the dataplane's keyed hash (flow/keyed_hash.h) over the five 64-bit words of
// the canonical key, computed from registers while the key is built (no reload of the
// just-stored key).
namespace {
inline uint64_t Load64(const uint8_t* p) noexcept {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
}  // namespace

uint32_t FlowTable::Hash(const FlowKey& key) const noexcept {
  uint64_t w4;
  std::memcpy(&w4, &key.port_lo, 8);
  return hash_.Words5(Load64(key.addr_lo), Load64(key.addr_lo + 8), Load64(key.addr_hi),
                      Load64(key.addr_hi + 8), w4);
}

namespace {
static_assert(
    std::endian::native == std::endian::little,
    "the key's word layout (port_lo, port_hi, vlan_proto in word 4) assumes little-endian");

// Builds the canonical key of `meta` and returns its five 64-bit words, as they lie in the key.
inline void CanonicalWords(const PacketMeta& meta, FlowKey* key, bool* sender_is_lo,
                           uint64_t w[5]) noexcept {
  const uint64_t s0 = Load64(meta.src_addr), s1 = Load64(meta.src_addr + 8);
  const uint64_t d0 = Load64(meta.dst_addr), d1 = Load64(meta.dst_addr + 8);
  // Any total order makes the key canonical; native integer order is the cheapest. Computed
  // without branches: which side is lower is a coin flip per packet, and a mispredicted branch
  // here cost more than the whole hash.
  const bool lo =
      (s0 < d0) | ((s0 == d0) & ((s1 < d1) | ((s1 == d1) & (meta.src_port <= meta.dst_port))));
  // Branch-free selection by mask.
  const uint64_t mask = 0 - static_cast<uint64_t>(lo);
  w[0] = (s0 & mask) | (d0 & ~mask);
  w[1] = (s1 & mask) | (d1 & ~mask);
  w[2] = (d0 & mask) | (s0 & ~mask);
  w[3] = (d1 & mask) | (s1 & ~mask);
  const uint32_t ports = (uint32_t{meta.src_port} << 16) | meta.dst_port;
  const uint32_t swapped = (ports >> 16) | (ports << 16);
  const uint32_t pm = static_cast<uint32_t>(mask);
  const uint32_t hi_lo = (swapped & pm) | (ports & ~pm);  // port_lo in bits 0-15
  const uint32_t vlan_proto = (meta.vlan_count > 0 ? (meta.vlan[0] & 0xfffu) : 0u) |
                              (meta.vlan_count > 1 ? (meta.vlan[1] & 0xfffu) << 12 : 0u) |
                              uint32_t{meta.ip_proto} << 24;
  // Word 4 as it lies in memory: port_lo, port_hi (16 bits each), vlan_proto (32 bits).
  w[4] = uint64_t{hi_lo} | uint64_t{vlan_proto} << 32;
  std::memcpy(key, w, sizeof(*key));
  *sender_is_lo = lo;
}
}  // namespace

void FlowTable::CanonicalKey(const PacketMeta& meta, FlowKey* key, bool* sender_is_lo) noexcept {
  uint64_t w[5];
  CanonicalWords(meta, key, sender_is_lo, w);
}

uint32_t FlowTable::MakeKeyHash(const PacketMeta& meta, FlowKey* key,
                                bool* sender_is_lo) const noexcept {
  uint64_t w[5];
  CanonicalWords(meta, key, sender_is_lo, w);
  return hash_.Words5(w[0], w[1], w[2], w[3], w[4]);
}

bool FlowTable::MakeKey(const PacketMeta& meta, FlowKey* key) noexcept {
  bool lo;
  CanonicalKey(meta, key, &lo);
  return lo;
}

uint64_t FlowTable::TimeoutNs(const Flow& flow) const noexcept {
  const uint64_t* t = timeouts_ns_[emergency_ ? 1 : 0];
  const bool est = flow.state != FlowState::kNew;
  switch (KeyProto(flow.key)) {
    case kProtoTcp:
      if (flow.state == FlowState::kClosed) return t[kTcpClosed];
      return est ? t[kTcpEst] : t[kTcpNew];
    case kProtoUdp:
      return est ? t[kUdpEst] : t[kUdpNew];
    case kProtoIcmp:
    case kProtoIcmpv6:
      return est ? t[kIcmpEst] : t[kIcmpNew];
    default:
      return est ? t[kOtherEst] : t[kOtherNew];
  }
}

void FlowTable::UpdateEmergency() noexcept {
  if (!emergency_ && size_ >= enter_emergency_at_) {
    emergency_ = true;
    ++counters_.emergency_entered;
  } else if (emergency_ && size_ <= exit_emergency_at_) {
    emergency_ = false;
    ++counters_.emergency_exited;
  }
}

void FlowTable::Unlink(Flow* flow) noexcept {
  const uint32_t idx = static_cast<uint32_t>(flow - flows_);
  uint32_t* link = &buckets_[flow->hash & bucket_mask_];
  while (*link != kNil) {
    if (*link == idx) {
      *link = flow->next;
      return;
    }
    link = &flows_[*link].next;
  }
}

void FlowTable::End(Flow* flow, FlowEndReason reason, FlowEndSink& sink) noexcept {
  sink.OnFlowEnd(*flow, reason);
  ++counters_.ended[static_cast<int>(reason)];
  Unlink(flow);
  flow->in_use = 0;
  flow->next = free_head_;
  free_head_ = static_cast<uint32_t>(flow - flows_);
  --size_;
  UpdateEmergency();
}

Flow* FlowTable::Allocate(uint64_t now_ns, FlowEndSink& sink) noexcept {
  if (free_head_ == kNil) {
    // Full: the table is in emergency mode (enter_percent <= 100). Look a bounded distance ahead
    // of the scan cursor for a flow already idle past its emergency timeout and reuse it.
    // Established flows are never evicted early: they stay inspected and new flows get the
    // exception policy (RELIABILITY.md, flow table flood).
    UpdateEmergency();
    constexpr uint32_t kEvictScan = 256;
    for (uint32_t i = 0; i < kEvictScan && free_head_ == kNil; ++i) {
      Flow* f = &flows_[scan_cursor_];
      if (++scan_cursor_ == capacity_) scan_cursor_ = 0;
      if (f->in_use && now_ns > f->last_ns && now_ns - f->last_ns > TimeoutNs(*f)) {
        End(f, FlowEndReason::kForced, sink);
      }
    }
    if (free_head_ == kNil) return nullptr;
  }
  Flow* f = &flows_[free_head_];
  free_head_ = f->next;
  ++size_;
  UpdateEmergency();
  return f;
}

void FlowTable::Init(Flow* flow, const FlowKey& key, uint32_t hash, bool sender_is_lo,
                     const PacketMeta& meta, uint64_t now_ns) noexcept {
  std::memset(static_cast<void*>(flow), 0, sizeof(*flow));
  flow->key = key;
  flow->hash = hash;
  // Unique per run and below 2^53 so JSON consumers keep it exact.
  flow->flow_id = (uint64_t{worker_id_ + 1u} << 40) | (next_flow_seq_++ & ((1ull << 40) - 1));
  flow->start_ns = now_ns;
  flow->last_ns = now_ns;
  flow->in_use = 1;
  flow->vlan_count = meta.vlan_count;
  flow->ip_version = meta.ip_version;
  flow->state = FlowState::kNew;
  flow->tcp_state = TcpState::kNone;
  flow->action = FlowAction::kInspect;
  // The client is the sender of the first packet, except when that packet is a SYN+ACK (the
  // server's answer, the SYN was missed): then the receiver is the client.
  bool sender_is_client = true;
  if (meta.ip_proto == kProtoTcp && (meta.tcp_flags & (kTcpSyn | kTcpAck)) == (kTcpSyn | kTcpAck)) {
    sender_is_client = false;
  }
  flow->client_is_lo = (sender_is_lo == sender_is_client) ? 1 : 0;
}

void FlowTable::Update(Flow* flow, FlowDir dir, const PacketMeta& meta, uint32_t frame_len,
                       uint64_t now_ns) noexcept {
  ++flow->pkts[dir];
  flow->bytes[dir] += frame_len;
  if (now_ns > flow->last_ns) flow->last_ns = now_ns;  // capture timestamps may go backwards
  const bool both_sides = flow->pkts[kToServer] != 0 && flow->pkts[kToClient] != 0;

  if (KeyProto(flow->key) != kProtoTcp) {
    if (both_sides) flow->state = FlowState::kEstablished;
    return;
  }
  const uint8_t flags = meta.tcp_flags;
  flow->tcp_flags[dir] |= flags;
  TcpState s = flow->tcp_state;
  if (flags & kTcpRst) {
    s = TcpState::kClosed;
  } else if (flags & kTcpFin) {
    flow->tcp_fin_seen |= static_cast<uint8_t>(1u << dir);
    s = flow->tcp_fin_seen == 3 ? TcpState::kClosing : TcpState::kFinWait;
  } else if ((flags & (kTcpSyn | kTcpAck)) == kTcpSyn) {
    if (s == TcpState::kNone && dir == kToServer) s = TcpState::kSynSent;
  } else if ((flags & (kTcpSyn | kTcpAck)) == (kTcpSyn | kTcpAck)) {
    if ((s == TcpState::kNone || s == TcpState::kSynSent) && dir == kToClient) {
      s = TcpState::kSynRecv;
    }
  } else if (flags & kTcpAck) {
    // The handshake's last ACK, or a flow picked up midstream with both sides talking.
    if ((s == TcpState::kSynRecv && dir == kToServer) || (s == TcpState::kNone && both_sides)) {
      s = TcpState::kEstablished;
    } else if (s == TcpState::kClosing) {
      s = TcpState::kClosed;  // the last FIN acknowledged
    }
  }
  flow->tcp_state = s;
  if (s == TcpState::kClosing || s == TcpState::kClosed) {
    flow->state = FlowState::kClosed;
  } else if (both_sides || s == TcpState::kEstablished) {
    flow->state = FlowState::kEstablished;
  }
}

FlowLookup FlowTable::Process(const PacketMeta& meta, uint32_t frame_len, uint64_t now_ns,
                              FlowEndSink& sink) noexcept {
  FlowKey key;
  bool sender_is_lo;
  const uint32_t hash = MakeKeyHash(meta, &key, &sender_is_lo);
  return Process(key, hash, sender_is_lo, meta, frame_len, now_ns, sink);
}

FlowLookup FlowTable::Process(const FlowKey& key, uint32_t hash, bool sender_is_lo,
                              const PacketMeta& meta, uint32_t frame_len, uint64_t now_ns,
                              FlowEndSink& sink) noexcept {
  uint32_t idx = buckets_[hash & bucket_mask_];
  uint32_t chain = 0;
  Flow* found = nullptr;
  while (idx != kNil) {
    Flow* f = &flows_[idx];
    ++chain;
    if (f->hash == hash && KeyEquals(f->key, key)) {
      found = f;
      break;
    }
    idx = f->next;
  }
  if (chain > counters_.max_chain) counters_.max_chain = chain;

  if (found != nullptr) {
    const bool idle = now_ns > found->last_ns && now_ns - found->last_ns > TimeoutNs(*found);
    const bool reuse =
        meta.ip_proto == kProtoTcp && (meta.tcp_flags & (kTcpSyn | kTcpAck | kTcpRst)) == kTcpSyn &&
        (found->tcp_state == TcpState::kClosed || found->tcp_state == TcpState::kClosing);
    if (idle) {
      End(found, FlowEndReason::kTimeout, sink);
      found = nullptr;
    } else if (reuse) {
      End(found, FlowEndReason::kTcpReuse, sink);
      found = nullptr;
    }
  }

  bool created = false;
  if (found == nullptr) {
    found = Allocate(now_ns, sink);
    if (found == nullptr) {
      ++counters_.full;
      return {nullptr, kToServer, false};
    }
    Init(found, key, hash, sender_is_lo, meta, now_ns);
    uint32_t* head = &buckets_[hash & bucket_mask_];
    found->next = *head;
    *head = static_cast<uint32_t>(found - flows_);
    ++counters_.created;
    created = true;
  }
  const FlowDir dir = (sender_is_lo == (found->client_is_lo != 0)) ? kToServer : kToClient;
  Update(found, dir, meta, frame_len, now_ns);
  return {found, dir, created};
}

uint32_t FlowTable::ExpireSome(uint64_t now_ns, uint32_t budget, FlowEndSink& sink) noexcept {
  uint32_t ended = 0;
  if (size_ == 0) return 0;
  for (uint32_t i = 0; i < budget; ++i) {
    Flow* f = &flows_[scan_cursor_];
    if (++scan_cursor_ == capacity_) scan_cursor_ = 0;
    if (f->in_use && now_ns > f->last_ns && now_ns - f->last_ns > TimeoutNs(*f)) {
      End(f, FlowEndReason::kTimeout, sink);
      ++ended;
    }
  }
  return ended;
}

void FlowTable::EndAll(FlowEndReason reason, FlowEndSink& sink) noexcept {
  for (uint32_t i = 0; i < capacity_ && size_ > 0; ++i) {
    if (flows_[i].in_use) End(&flows_[i], reason, sink);
  }
}

}  // namespace vigil::dp
