// Per-worker flow table: preallocated, bidirectional, keyed by the canonical 5-tuple + VLANs,
// hashed with a keyed (secret) hash, with per-state timeouts in packet time, TCP state tracking
// and an emergency mode when it fills up.
//
// Thread: one worker owns one table; nothing here is shared or locked. No allocation after
// construction; every call is bounded in time (chains are short under a secret hash, and the
// expiry scan has a budget).
#pragma once

#include <cstddef>
#include <cstdint>

#include "dataplane/app/config.h"
#include "dataplane/flow/keyed_hash.h"
#include "dataplane/packet/decoder.h"

namespace vigil::dp {

// Canonical key: the (address, port) pair that compares lower is stored first, so both
// directions of a flow build the same key. IPv4 addresses are IPv4-mapped.
struct FlowKey {
  uint8_t addr_lo[16];
  uint8_t addr_hi[16];
  uint16_t port_lo;
  uint16_t port_hi;
  uint32_t vlan_proto;  // bits 0-11 outer VLAN id, 12-23 inner VLAN id, 24-31 IP protocol
};
static_assert(sizeof(FlowKey) == 40);

enum class FlowState : uint8_t {
  kNew,          // only the initiator has sent
  kEstablished,  // both sides have sent (TCP: handshake completed, or midstream both ways)
  kClosed,       // TCP: FIN both ways or RST
};

enum class TcpState : uint8_t {
  kNone,         // not TCP, or midstream with one side seen
  kSynSent,      // SYN from the client
  kSynRecv,      // SYN+ACK from the server
  kEstablished,  //
  kFinWait,      // FIN from one side
  kClosing,      // FIN from both sides
  kClosed,       // RST, or the last FIN acknowledged
};

enum class FlowEndReason : uint8_t {
  kTimeout,   // idle for its state's timeout
  kForced,    // evicted to make room in emergency mode (expired under emergency timeouts)
  kShutdown,  // still open at exit (end of a replayed capture)
  kTcpReuse,  // a new SYN on a closed TCP 5-tuple started a new flow
};
const char* FlowEndReasonName(FlowEndReason r) noexcept;
const char* FlowStateName(FlowState s) noexcept;
const char* TcpStateName(TcpState s) noexcept;

// What the worker does with the rest of a flow. Nothing sets kPass or kDrop yet: the signature
// engine (drop/reject) and the app-layer and stream exception policies will; the worker already
// honours kDrop.
enum class FlowAction : uint8_t { kInspect, kPass, kDrop };

// Direction of a packet relative to its flow.
enum FlowDir : uint8_t { kToServer = 0, kToClient = 1 };

struct alignas(64) Flow {
  FlowKey key;
  uint32_t next;  // hash chain; kNil at the end
  uint32_t hash;
  uint64_t flow_id;
  uint64_t start_ns;     // packet time of the first packet
  uint64_t last_ns;      // packet time of the latest packet
  uint64_t pkts[2];      // indexed by FlowDir
  uint64_t bytes[2];     // frame bytes, indexed by FlowDir
  uint8_t client_is_lo;  // 1: the client is key.addr_lo/port_lo
  uint8_t in_use;
  uint8_t vlan_count;
  uint8_t ip_version;
  FlowState state;
  TcpState tcp_state;
  uint8_t tcp_flags[2];  // union of flags seen, per direction
  uint8_t tcp_fin_seen;  // bit per FlowDir
  FlowAction action;
  uint8_t app_proto;   // proto::AppProto, set by the session layer
  uint8_t app_probes;  // session layer: datagrams probed without a match (UDP), 0xff: gave up
  uint8_t alerted;     // the signature engine raised an alert on one of its packets
  uint32_t session;    // session layer: 1 + index of the flow's session; 0: none
};
static_assert(sizeof(Flow) == 128);

// An ended flow, oriented client → server. Fixed layout: this is what crosses the event ring.
struct FlowRecord {
  uint8_t src_addr[16];  // client
  uint8_t dst_addr[16];  // server
  uint16_t src_port;
  uint16_t dst_port;
  uint16_t vlan[2];
  uint8_t vlan_count;
  uint8_t proto;
  FlowState state;
  TcpState tcp_state;
  FlowEndReason reason;
  uint8_t tcp_flags_ts;
  uint8_t tcp_flags_tc;
  uint8_t action;  // FlowAction
  uint16_t worker;
  uint8_t ip_version;  // 4 or 6
  uint8_t app_proto;   // proto::AppProto
  uint8_t alerted;     // Flow::alerted
  uint64_t flow_id;
  uint64_t start_ns;
  uint64_t end_ns;
  uint64_t pkts_toserver;
  uint64_t pkts_toclient;
  uint64_t bytes_toserver;
  uint64_t bytes_toclient;
};

void MakeFlowRecord(const Flow& flow, FlowEndReason reason, uint16_t worker,
                    FlowRecord* out) noexcept;

// Receives each flow as it ends, before its entry is reused. Must not block.
class FlowEndSink {
 public:
  virtual void OnFlowEnd(const Flow& flow, FlowEndReason reason) noexcept = 0;

 protected:
  ~FlowEndSink() = default;
};

struct FlowTableCounters {
  uint64_t created = 0;
  uint64_t ended[4] = {};  // by FlowEndReason
  uint64_t full = 0;       // lookups that found no room (the exception policy applied)
  uint64_t emergency_entered = 0;
  uint64_t emergency_exited = 0;
  uint64_t max_chain = 0;  // longest chain walked (a collision flood shows here)
};

struct FlowLookup {
  Flow* flow;  // nullptr: table full, nothing evictable
  FlowDir dir;
  bool created;
};

class FlowTable {
 public:
  static constexpr uint32_t kNil = 0xffffffffu;

  // Bytes of memory a table of `capacity` flows needs (for a NUMA-local allocation).
  static size_t MemoryBytes(uint32_t capacity) noexcept;

  // `memory`: MemoryBytes(capacity) bytes aligned to 64, owned by the caller; nullptr: the table
  // allocates (and frees) its own. `seed` keys the hash.
  FlowTable(const FlowConfig& config, uint64_t seed, uint16_t worker_id, void* memory = nullptr);
  ~FlowTable();
  FlowTable(const FlowTable&) = delete;
  FlowTable& operator=(const FlowTable&) = delete;

  // Finds the flow of a kL3/kL4 packet or creates it; updates its counters and TCP state with this
  // packet (`frame_len` bytes, packet time `now_ns`). A flow found idle past its timeout is ended
  // (kTimeout) and a new one begins; a SYN on a closed TCP flow ends it (kTcpReuse).
  FlowLookup Process(const PacketMeta& meta, uint32_t frame_len, uint64_t now_ns,
                     FlowEndSink& sink) noexcept;
  // The same, in stages for a burst: the caller builds every packet's key and hash first and
  // prefetches (PrefetchBucket, then PrefetchFlow) so the lookups below hit the cache.
  FlowLookup Process(const FlowKey& key, uint32_t hash, bool sender_is_lo, const PacketMeta& meta,
                     uint32_t frame_len, uint64_t now_ns, FlowEndSink& sink) noexcept;
  void PrefetchBucket(uint32_t hash) const noexcept {
    __builtin_prefetch(&buckets_[hash & bucket_mask_]);
  }
  void PrefetchFlow(uint32_t hash) const noexcept {
    const uint32_t idx = buckets_[hash & bucket_mask_];
    if (idx != kNil) {
      // Both cache lines: the key is in the first, the per-packet counters in the second.
      __builtin_prefetch(&flows_[idx]);
      __builtin_prefetch(reinterpret_cast<const char*>(&flows_[idx]) + 64);
    }
  }

  // Looks at up to `budget` entries from the scan cursor and ends those idle past their timeout.
  // Returns the number ended.
  uint32_t ExpireSome(uint64_t now_ns, uint32_t budget, FlowEndSink& sink) noexcept;

  // Ends every flow with `reason` (kShutdown at exit).
  void EndAll(FlowEndReason reason, FlowEndSink& sink) noexcept;

  uint32_t size() const noexcept { return size_; }
  uint32_t capacity() const noexcept { return capacity_; }
  // The entry number of one of this table's flows, 0..capacity()-1 (per-flow side arrays).
  uint32_t IndexOf(const Flow& flow) const noexcept {
    return static_cast<uint32_t>(&flow - flows_);
  }
  bool emergency() const noexcept { return emergency_; }
  const FlowTableCounters& counters() const noexcept { return counters_; }

  // The keyed hash of a canonical key.
  uint32_t Hash(const FlowKey& key) const noexcept;
  // Builds the canonical key of a packet; returns true when the sender is the lo side.
  static bool MakeKey(const PacketMeta& meta, FlowKey* key) noexcept;
  // MakeKey and Hash in one pass over registers (the hot path); returns the hash.
  uint32_t MakeKeyHash(const PacketMeta& meta, FlowKey* key, bool* sender_is_lo) const noexcept;

 private:
  static void CanonicalKey(const PacketMeta& meta, FlowKey* key, bool* sender_is_lo) noexcept;
  uint64_t TimeoutNs(const Flow& flow) const noexcept;
  Flow* Allocate(uint64_t now_ns, FlowEndSink& sink) noexcept;
  void Unlink(Flow* flow) noexcept;
  void End(Flow* flow, FlowEndReason reason, FlowEndSink& sink) noexcept;
  void Init(Flow* flow, const FlowKey& key, uint32_t hash, bool sender_is_lo,
            const PacketMeta& meta, uint64_t now_ns) noexcept;
  void Update(Flow* flow, FlowDir dir, const PacketMeta& meta, uint32_t frame_len,
              uint64_t now_ns) noexcept;
  void UpdateEmergency() noexcept;

  uint64_t timeouts_ns_[2][9];  // [emergency][class*state], see TimeoutNs
  KeyedHash hash_;
  uint32_t capacity_;
  uint32_t bucket_mask_;
  uint32_t enter_emergency_at_;
  uint32_t exit_emergency_at_;
  uint32_t size_ = 0;
  uint32_t free_head_;
  uint32_t scan_cursor_ = 0;
  uint16_t worker_id_;
  bool emergency_ = false;
  bool owns_memory_;
  uint64_t next_flow_seq_ = 1;
  Flow* flows_;
  uint32_t* buckets_;
  FlowTableCounters counters_;
};

}  // namespace vigil::dp
