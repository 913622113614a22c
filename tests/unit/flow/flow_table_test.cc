#include "dataplane/flow/flow_table.h"

#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <vector>

namespace vigil::dp {
namespace {

constexpr uint64_t kSec = 1000000000ull;

struct RecordingSink : FlowEndSink {
  struct Ended {
    FlowRecord rec;
    FlowEndReason reason;
  };
  std::vector<Ended> ended;
  void OnFlowEnd(const Flow& flow, FlowEndReason reason) noexcept override {
    FlowRecord r;
    MakeFlowRecord(flow, reason, 0, &r);
    ended.push_back({r, reason});
  }
};

void SetV4(uint8_t* out, uint32_t host_order) {
  std::memset(out, 0, 16);
  out[10] = 0xff;
  out[11] = 0xff;
  out[12] = static_cast<uint8_t>(host_order >> 24);
  out[13] = static_cast<uint8_t>(host_order >> 16);
  out[14] = static_cast<uint8_t>(host_order >> 8);
  out[15] = static_cast<uint8_t>(host_order);
}

PacketMeta Pkt(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport, uint8_t proto = 6,
               uint8_t flags = kTcpAck) {
  PacketMeta m;
  std::memset(&m, 0, sizeof(m));
  SetV4(m.src_addr, src);
  SetV4(m.dst_addr, dst);
  m.src_port = sport;
  m.dst_port = dport;
  m.ip_proto = proto;
  m.ip_version = 4;
  m.tcp_flags = proto == 6 ? flags : 0;
  return m;
}

PacketMeta Reverse(const PacketMeta& m, uint8_t flags) {
  PacketMeta r = m;
  std::memcpy(r.src_addr, m.dst_addr, 16);
  std::memcpy(r.dst_addr, m.src_addr, 16);
  r.src_port = m.dst_port;
  r.dst_port = m.src_port;
  r.tcp_flags = flags;
  return r;
}

FlowConfig SmallConfig(uint32_t capacity = 1024) {
  FlowConfig c;
  c.capacity = capacity;
  return c;
}

constexpr uint32_t kClient = 0x0a000001;  // 10.0.0.1
constexpr uint32_t kServer = 0x0a000002;  // 10.0.0.2

TEST(FlowTableTest, BothDirectionsFindTheSameFlow) {
  FlowTable t(SmallConfig(), 42, 0);
  RecordingSink sink;
  const PacketMeta syn = Pkt(kClient, 40000, kServer, 445, 6, kTcpSyn);
  FlowLookup a = t.Process(syn, 74, 1 * kSec, sink);
  ASSERT_NE(a.flow, nullptr);
  EXPECT_TRUE(a.created);
  EXPECT_EQ(a.dir, kToServer);
  FlowLookup b = t.Process(Reverse(syn, kTcpSyn | kTcpAck), 74, 1 * kSec, sink);
  EXPECT_EQ(b.flow, a.flow);
  EXPECT_FALSE(b.created);
  EXPECT_EQ(b.dir, kToClient);
  FlowLookup c = t.Process(Pkt(kClient, 40000, kServer, 445, 6, kTcpAck), 66, 2 * kSec, sink);
  EXPECT_EQ(c.flow, a.flow);
  EXPECT_EQ(c.dir, kToServer);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(a.flow->pkts[kToServer], 2u);
  EXPECT_EQ(a.flow->pkts[kToClient], 1u);
  EXPECT_EQ(a.flow->bytes[kToServer], 140u);
  EXPECT_EQ(a.flow->tcp_state, TcpState::kEstablished);
  EXPECT_EQ(a.flow->state, FlowState::kEstablished);
  EXPECT_TRUE(sink.ended.empty());
}

TEST(FlowTableTest, DifferentPortsProtocolsAndVlansAreDifferentFlows) {
  FlowTable t(SmallConfig(), 42, 0);
  RecordingSink sink;
  PacketMeta base = Pkt(kClient, 40000, kServer, 53, 17);
  t.Process(base, 60, kSec, sink);
  PacketMeta other_port = Pkt(kClient, 40001, kServer, 53, 17);
  t.Process(other_port, 60, kSec, sink);
  PacketMeta tcp = Pkt(kClient, 40000, kServer, 53, 6);
  t.Process(tcp, 60, kSec, sink);
  PacketMeta vlan = base;
  vlan.vlan_count = 1;
  vlan.vlan[0] = 100;
  t.Process(vlan, 64, kSec, sink);
  EXPECT_EQ(t.size(), 4u);
  EXPECT_EQ(t.counters().created, 4u);
}

TEST(FlowTableTest, Ipv6FlowsKeyOnFullAddresses) {
  FlowTable t(SmallConfig(), 7, 0);
  RecordingSink sink;
  PacketMeta a = Pkt(0, 1000, 0, 80);
  a.ip_version = 6;
  std::memset(a.src_addr, 0x20, 16);
  std::memset(a.dst_addr, 0x30, 16);
  PacketMeta b = a;
  b.dst_addr[15] = 0x31;  // differs only in the last byte
  EXPECT_TRUE(t.Process(a, 80, kSec, sink).created);
  EXPECT_TRUE(t.Process(b, 80, kSec, sink).created);
  EXPECT_FALSE(t.Process(Reverse(a, kTcpAck), 80, kSec, sink).created);
  EXPECT_EQ(t.size(), 2u);
}

TEST(FlowTableTest, SynAckFirstMakesTheReceiverTheClient) {
  FlowTable t(SmallConfig(), 1, 0);
  RecordingSink sink;
  // The capture starts with the server's SYN+ACK: the client is its destination.
  PacketMeta synack = Pkt(kServer, 445, kClient, 40000, 6, kTcpSyn | kTcpAck);
  FlowLookup l = t.Process(synack, 74, kSec, sink);
  EXPECT_EQ(l.dir, kToClient);
  t.EndAll(FlowEndReason::kShutdown, sink);
  ASSERT_EQ(sink.ended.size(), 1u);
  const FlowRecord& r = sink.ended[0].rec;
  EXPECT_EQ(r.src_port, 40000);
  EXPECT_EQ(r.dst_port, 445);
  EXPECT_EQ(r.pkts_toclient, 1u);
  EXPECT_EQ(r.reason, FlowEndReason::kShutdown);
}

TEST(FlowTableTest, TcpStateMachineThroughCloseAndReuse) {
  FlowTable t(SmallConfig(), 1, 0);
  RecordingSink sink;
  const PacketMeta c = Pkt(kClient, 40000, kServer, 80, 6, kTcpSyn);
  Flow* f = t.Process(c, 74, kSec, sink).flow;
  EXPECT_EQ(f->tcp_state, TcpState::kSynSent);
  EXPECT_EQ(f->state, FlowState::kNew);
  t.Process(Reverse(c, kTcpSyn | kTcpAck), 74, kSec, sink);
  EXPECT_EQ(f->tcp_state, TcpState::kSynRecv);
  t.Process(Pkt(kClient, 40000, kServer, 80, 6, kTcpAck), 66, kSec, sink);
  EXPECT_EQ(f->tcp_state, TcpState::kEstablished);
  t.Process(Pkt(kClient, 40000, kServer, 80, 6, kTcpFin | kTcpAck), 66, kSec, sink);
  EXPECT_EQ(f->tcp_state, TcpState::kFinWait);
  EXPECT_EQ(f->state, FlowState::kEstablished);
  t.Process(Reverse(c, kTcpFin | kTcpAck), 66, kSec, sink);
  EXPECT_EQ(f->tcp_state, TcpState::kClosing);
  EXPECT_EQ(f->state, FlowState::kClosed);
  t.Process(Pkt(kClient, 40000, kServer, 80, 6, kTcpAck), 66, kSec, sink);
  EXPECT_EQ(f->tcp_state, TcpState::kClosed);
  // A new SYN on the same 5-tuple is a new connection.
  FlowLookup again = t.Process(c, 74, 2 * kSec, sink);
  EXPECT_TRUE(again.created);
  ASSERT_EQ(sink.ended.size(), 1u);
  EXPECT_EQ(sink.ended[0].reason, FlowEndReason::kTcpReuse);
  EXPECT_EQ(sink.ended[0].rec.pkts_toserver, 4u);
  EXPECT_EQ(sink.ended[0].rec.pkts_toclient, 2u);
  EXPECT_EQ(sink.ended[0].rec.tcp_flags_ts, kTcpSyn | kTcpAck | kTcpFin);
  EXPECT_EQ(t.size(), 1u);
}

TEST(FlowTableTest, RstClosesAndMidstreamBecomesEstablished) {
  FlowTable t(SmallConfig(), 1, 0);
  RecordingSink sink;
  const PacketMeta data = Pkt(kClient, 40000, kServer, 80, 6, kTcpAck | kTcpPsh);
  Flow* f = t.Process(data, 200, kSec, sink).flow;
  EXPECT_EQ(f->state, FlowState::kNew);
  t.Process(Reverse(data, kTcpAck), 66, kSec, sink);
  EXPECT_EQ(f->state, FlowState::kEstablished);
  EXPECT_EQ(f->tcp_state, TcpState::kEstablished);
  t.Process(Reverse(data, kTcpRst), 60, kSec, sink);
  EXPECT_EQ(f->tcp_state, TcpState::kClosed);
  EXPECT_EQ(f->state, FlowState::kClosed);
}

TEST(FlowTableTest, TimeoutsPerStateWithInjectedClock) {
  FlowConfig cfg = SmallConfig();
  cfg.timeouts.udp_new = 30;
  cfg.timeouts.udp_established = 300;
  cfg.timeouts.tcp_closed = 10;
  FlowTable t(cfg, 3, 0);
  RecordingSink sink;
  const PacketMeta one_way = Pkt(kClient, 5000, kServer, 53, 17);
  const PacketMeta two_way = Pkt(kClient, 5001, kServer, 53, 17);
  t.Process(one_way, 60, 100 * kSec, sink);
  t.Process(two_way, 60, 100 * kSec, sink);
  t.Process(Reverse(two_way, 0), 60, 100 * kSec, sink);
  PacketMeta rst = Pkt(kClient, 6000, kServer, 80, 6, kTcpRst);
  t.Process(rst, 60, 100 * kSec, sink);
  EXPECT_EQ(t.size(), 3u);

  EXPECT_EQ(t.ExpireSome(109 * kSec, 1024, sink), 0u);  // nothing idle long enough
  EXPECT_EQ(t.ExpireSome(111 * kSec, 1024, sink), 1u);  // closed TCP after 10 s
  EXPECT_EQ(t.ExpireSome(131 * kSec, 1024, sink), 1u);  // one-way UDP after 30 s
  EXPECT_EQ(t.ExpireSome(399 * kSec, 1024, sink), 0u);
  EXPECT_EQ(t.ExpireSome(401 * kSec, 1024, sink), 1u);  // established UDP after 300 s
  EXPECT_EQ(t.size(), 0u);
  ASSERT_EQ(sink.ended.size(), 3u);
  for (const auto& e : sink.ended) EXPECT_EQ(e.reason, FlowEndReason::kTimeout);
  EXPECT_EQ(sink.ended[0].rec.proto, 6);
  EXPECT_EQ(sink.ended[1].rec.pkts_toclient, 0u);
  EXPECT_EQ(sink.ended[2].rec.pkts_toclient, 1u);
  EXPECT_EQ(sink.ended[2].rec.start_ns, 100 * kSec);
}

TEST(FlowTableTest, IdleFlowFoundOnLookupEndsAndRestarts) {
  FlowConfig cfg = SmallConfig();
  cfg.timeouts.udp_new = 30;
  FlowTable t(cfg, 3, 0);
  RecordingSink sink;
  const PacketMeta p = Pkt(kClient, 5000, kServer, 53, 17);
  Flow* first = t.Process(p, 60, 0, sink).flow;
  const uint64_t id = first->flow_id;
  FlowLookup again = t.Process(p, 60, 31 * kSec, sink);  // no scan ran: the lookup notices
  EXPECT_TRUE(again.created);
  EXPECT_NE(again.flow->flow_id, id);
  ASSERT_EQ(sink.ended.size(), 1u);
  EXPECT_EQ(sink.ended[0].reason, FlowEndReason::kTimeout);
  EXPECT_EQ(sink.ended[0].rec.flow_id, id);
  // Timestamps going backwards (reordered capture) do not expire anything.
  EXPECT_FALSE(t.Process(p, 60, 5 * kSec, sink).created);
}

TEST(FlowTableTest, CapacityEmergencyModeAndRecovery) {
  FlowConfig cfg = SmallConfig(1024);
  cfg.emergency_enter_percent = 90;
  cfg.emergency_exit_percent = 50;
  cfg.timeouts.udp_new = 300;
  cfg.emergency_timeouts.udp_new = 5;
  FlowTable t(cfg, 9, 0);
  RecordingSink sink;
  for (uint32_t i = 0; i < 1024; ++i) {
    ASSERT_NE(t.Process(Pkt(kClient + i, 1000, kServer, 53, 17), 60, 0, sink).flow, nullptr);
    EXPECT_EQ(t.emergency(), i + 1 >= 921) << i;  // 90% of 1024 = 921
  }
  EXPECT_EQ(t.size(), 1024u);
  EXPECT_EQ(t.counters().emergency_entered, 1u);
  // Full, and every flow is fresh: the new flow is refused (the exception policy applies)
  // and no existing flow is evicted.
  EXPECT_EQ(t.Process(Pkt(0x0b000001, 1000, kServer, 53, 17), 60, 1 * kSec, sink).flow, nullptr);
  EXPECT_EQ(t.counters().full, 1u);
  EXPECT_TRUE(sink.ended.empty());
  // Existing flows are still found.
  EXPECT_FALSE(t.Process(Pkt(kClient + 7, 1000, kServer, 53, 17), 60, 1 * kSec, sink).created);
  // Past the emergency timeout (5 s, not the normal 300 s) a new flow can take an idle slot.
  FlowLookup l = t.Process(Pkt(0x0b000001, 1000, kServer, 53, 17), 60, 7 * kSec, sink);
  ASSERT_NE(l.flow, nullptr);
  ASSERT_FALSE(sink.ended.empty());
  EXPECT_EQ(sink.ended[0].reason, FlowEndReason::kForced);
  // The scan expires the rest under emergency timeouts, and the table leaves emergency mode.
  while (t.ExpireSome(8 * kSec, 4096, sink) > 0) {
  }
  EXPECT_EQ(t.size(), 512u);  // hysteresis: expiry under emergency timeouts stops at exit_percent
  EXPECT_FALSE(t.emergency());
  EXPECT_EQ(t.counters().emergency_exited, 1u);
}

TEST(FlowTableTest, FloodToTwiceCapacityKeepsExistingFlows) {
  FlowConfig cfg = SmallConfig(1024);
  FlowTable t(cfg, 11, 0);
  RecordingSink sink;
  const PacketMeta victim = Pkt(kClient, 40000, kServer, 445, 6, kTcpSyn);
  Flow* vf = t.Process(victim, 74, 0, sink).flow;
  for (uint32_t i = 0; i < 2048; ++i) {
    t.Process(Pkt(0x0c000000 + i, static_cast<uint16_t>(i), kServer, 80, 6, kTcpSyn), 60, kSec,
              sink);
  }
  EXPECT_EQ(t.size(), 1024u);
  EXPECT_EQ(t.counters().full, 2048u - 1023u);
  FlowLookup l = t.Process(Reverse(victim, kTcpSyn | kTcpAck), 74, kSec, sink);
  EXPECT_EQ(l.flow, vf);
  EXPECT_FALSE(l.created);
}

TEST(FlowTableTest, EndAllReportsEveryFlowOnce) {
  FlowTable t(SmallConfig(), 5, 0);
  RecordingSink sink;
  for (uint32_t i = 0; i < 100; ++i) t.Process(Pkt(kClient, 1000 + i, kServer, 80), 60, 0, sink);
  t.EndAll(FlowEndReason::kShutdown, sink);
  EXPECT_EQ(sink.ended.size(), 100u);
  std::set<uint64_t> ids;
  for (const auto& e : sink.ended) ids.insert(e.rec.flow_id);
  EXPECT_EQ(ids.size(), 100u);
  EXPECT_EQ(t.size(), 0u);
  // The table is fully reusable afterwards.
  for (uint32_t i = 0; i < 1024; ++i) {
    ASSERT_NE(t.Process(Pkt(kClient, 1000 + i, kServer, 81), 60, 0, sink).flow, nullptr);
  }
}

TEST(FlowTableTest, HashIsSymmetricAndSeeded) {
  FlowKey k1, k2;
  const PacketMeta fwd = Pkt(kClient, 1234, kServer, 80);
  const bool lo1 = FlowTable::MakeKey(fwd, &k1);
  const bool lo2 = FlowTable::MakeKey(Reverse(fwd, 0), &k2);
  EXPECT_NE(lo1, lo2);
  EXPECT_EQ(std::memcmp(&k1, &k2, sizeof(k1)), 0);
  FlowTable a(SmallConfig(), 1, 0);
  FlowTable b(SmallConfig(), 2, 0);
  FlowTable a2(SmallConfig(), 1, 0);
  EXPECT_EQ(a.Hash(k1), a2.Hash(k1));
  // Different seeds must give different hash functions: over many keys the bucket choices
  // disagree almost everywhere.
  int same = 0;
  for (uint32_t i = 0; i < 1000; ++i) {
    FlowKey k;
    FlowTable::MakeKey(Pkt(kClient + i, 1234, kServer, 80), &k);
    if ((a.Hash(k) & 1023) == (b.Hash(k) & 1023)) ++same;
  }
  EXPECT_LT(same, 20);
}

TEST(FlowTableTest, FusedKeyHashMatchesKeyThenHash) {
  FlowTable t(SmallConfig(), 77, 0);
  for (uint32_t i = 0; i < 500; ++i) {
    PacketMeta m =
        Pkt(kClient + i * 13, static_cast<uint16_t>(i), kServer - i, 443, i % 2 ? 6 : 17);
    m.vlan_count = static_cast<uint8_t>(i % 3);
    m.vlan[0] = static_cast<uint16_t>(i & 0xfff);
    m.vlan[1] = static_cast<uint16_t>((i * 7) & 0xfff);
    for (const PacketMeta& p : {m, Reverse(m, 0)}) {
      FlowKey a, b;
      bool lo_fused;
      const uint32_t h = t.MakeKeyHash(p, &a, &lo_fused);
      const bool lo = FlowTable::MakeKey(p, &b);
      ASSERT_EQ(std::memcmp(&a, &b, sizeof(a)), 0);
      ASSERT_EQ(lo_fused, lo);
      ASSERT_EQ(h, t.Hash(b));
    }
  }
}

TEST(FlowTableTest, HashSpreadsSequentialAddresses) {
  FlowTable t(SmallConfig(65536), 99, 0);
  std::vector<int> buckets(4096, 0);
  for (uint32_t i = 0; i < 65536; ++i) {
    FlowKey k;
    FlowTable::MakeKey(Pkt(kClient + i, static_cast<uint16_t>(i * 7), kServer, 443), &k);
    ++buckets[t.Hash(k) & 4095];
  }
  // 16 keys per bucket on average; a decent hash keeps the worst bucket far below 16x that.
  int worst = 0;
  for (int b : buckets) worst = std::max(worst, b);
  EXPECT_LT(worst, 48);
}

}  // namespace
}  // namespace vigil::dp

namespace vigil::dp {
namespace {

TEST(KeyedHashTest, BytesDependOnSecretContentAndLength) {
  const KeyedHash a(1), a2(1), b(2);
  uint8_t key[44];
  for (int i = 0; i < 44; ++i) key[i] = static_cast<uint8_t>(i * 7);
  EXPECT_EQ(a.Bytes(key, sizeof(key)), a2.Bytes(key, sizeof(key)));
  EXPECT_NE(a.Bytes(key, sizeof(key)), b.Bytes(key, sizeof(key)));
  // Every byte position matters, including the partial last chunk.
  for (size_t i = 0; i < sizeof(key); ++i) {
    uint8_t other[44];
    std::memcpy(other, key, sizeof(key));
    other[i] ^= 1;
    EXPECT_NE(a.Bytes(key, sizeof(key)), a.Bytes(other, sizeof(other))) << i;
  }
  // Zero bytes appended change the hash (the length is mixed in).
  uint8_t longer[48] = {};
  std::memcpy(longer, key, sizeof(key));
  EXPECT_NE(a.Bytes(key, sizeof(key)), a.Bytes(longer, sizeof(longer)));
}

}  // namespace
}  // namespace vigil::dp
