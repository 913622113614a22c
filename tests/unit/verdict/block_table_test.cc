// The block table (dataplane/verdict/block_table.h): each entry kind in both directions, wildcards,
// the allow list and exclusions, expiry, counters, and TCP RST frames that the decoder reads
// back with valid checksums.
#include "dataplane/verdict/block_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace vigil::dp {
namespace {

Addr16 A(const char* text) {
  Addr16 a{};
  EXPECT_TRUE(ParseAddr(text, &a)) << text;
  return a;
}

Cidr C(const char* text) {
  Cidr c;
  std::string err;
  EXPECT_TRUE(ParseCidr(text, &c, &err)) << err;
  return c;
}

BlockEntry Conn(uint64_t id, const char* client, const char* server, uint16_t sport,
                uint16_t cport = 0, uint8_t proto = 6) {
  BlockEntry e;
  e.id = id;
  e.kind = BlockKind::kConnection;
  e.addr = A(client);
  e.peer = A(server);
  e.server_port = sport;
  e.client_port = cport;
  e.proto = proto;
  return e;
}

BlockEntry Dev(uint64_t id, BlockKind k, const char* addr, uint64_t expires = 0) {
  BlockEntry e;
  e.id = id;
  e.kind = k;
  e.addr = A(addr);
  e.expires_ns = expires;
  return e;
}

// The id of the entry that blocks src:sp -> dst:dp, or 0.
uint64_t Hit(const BlockTable& t, const char* src, const char* dst, uint16_t sp, uint16_t dp,
             uint8_t proto = 6, uint64_t now = 1000) {
  const Addr16 s = A(src), d = A(dst);
  const BlockEntry* e = t.Match(s.data(), d.data(), proto, sp, dp, now);
  return e == nullptr ? 0 : e->id;
}

TEST(BlockTable, ConnectionBothDirectionsAndWildcards) {
  std::string err;
  auto t = BlockTable::Build(
      {Conn(1, "10.0.0.9", "10.0.0.5", 445), Conn(2, "10.0.0.9", "10.0.0.6", 135, 50000, 0),
       Conn(3, "fd00::9", "fd00::5", 443, 0, 6)},
      {}, {}, &err);
  ASSERT_NE(t, nullptr) << err;
  EXPECT_EQ(Hit(*t, "10.0.0.9", "10.0.0.5", 51000, 445), 1u);      // client -> server, any port
  EXPECT_EQ(Hit(*t, "10.0.0.5", "10.0.0.9", 445, 51000), 1u);      // server -> client
  EXPECT_EQ(Hit(*t, "10.0.0.9", "10.0.0.5", 51000, 139), 0u);      // another service
  EXPECT_EQ(Hit(*t, "10.0.0.9", "10.0.0.5", 51000, 445, 17), 0u);  // UDP: proto 6 only
  EXPECT_EQ(Hit(*t, "10.0.0.8", "10.0.0.5", 51000, 445), 0u);      // another client
  EXPECT_EQ(Hit(*t, "10.0.0.9", "10.0.0.6", 50000, 135, 17), 2u);  // proto 0: any
  EXPECT_EQ(Hit(*t, "10.0.0.9", "10.0.0.6", 50001, 135), 0u);      // client port pinned
  EXPECT_EQ(Hit(*t, "fd00::5", "fd00::9", 443, 40000), 3u);
  EXPECT_EQ(Hit(*t, "10.0.0.5", "10.0.0.9", 51000, 445), 0u);  // roles reversed: not it
}

TEST(BlockTable, QuarantineKindsAllowListAndExpiry) {
  std::string err;
  auto t = BlockTable::Build({Dev(10, BlockKind::kQuarantine, "10.0.0.66"),
                              Dev(11, BlockKind::kQuarantineOutgoing, "10.0.0.67"),
                              Dev(12, BlockKind::kQuarantineIncoming, "10.0.0.68"),
                              Dev(13, BlockKind::kQuarantine, "10.0.0.69", /*expires=*/5000)},
                             {C("10.0.0.2"), C("10.0.1.0/24")}, {}, &err);
  ASSERT_NE(t, nullptr) << err;
  EXPECT_EQ(Hit(*t, "10.0.0.66", "10.0.0.5", 1, 445), 10u);
  EXPECT_EQ(Hit(*t, "10.0.0.5", "10.0.0.66", 445, 1), 10u);
  EXPECT_EQ(Hit(*t, "10.0.0.66", "10.0.0.2", 1, 53, 17), 0u);  // allow-listed DNS server
  EXPECT_EQ(Hit(*t, "10.0.1.7", "10.0.0.66", 1, 22), 0u);      // allow-listed network
  EXPECT_EQ(Hit(*t, "10.0.0.67", "10.0.0.5", 1, 445), 11u);    // outgoing only
  EXPECT_EQ(Hit(*t, "10.0.0.5", "10.0.0.67", 445, 1), 0u);
  EXPECT_EQ(Hit(*t, "10.0.0.5", "10.0.0.68", 1, 22), 12u);  // incoming only
  EXPECT_EQ(Hit(*t, "10.0.0.68", "10.0.0.5", 22, 1), 0u);
  EXPECT_EQ(Hit(*t, "10.0.0.69", "10.0.0.5", 1, 80, 6, 4999), 13u);
  EXPECT_EQ(Hit(*t, "10.0.0.69", "10.0.0.5", 1, 80, 6, 5000), 0u);  // expired
  EXPECT_EQ(Hit(*t, "10.0.0.70", "10.0.0.5", 1, 80), 0u);
}

TEST(BlockTable, BuildRefusesBadEntriesWithTheirId) {
  std::string err;
  EXPECT_EQ(BlockTable::Build({Dev(0, BlockKind::kQuarantine, "10.0.0.1")}, {}, {}, &err), nullptr);
  EXPECT_NE(err.find("entry 0"), std::string::npos);
  EXPECT_EQ(BlockTable::Build({Dev(4, BlockKind::kQuarantine, "10.0.0.1"),
                               Dev(4, BlockKind::kQuarantine, "10.0.0.2")},
                              {}, {}, &err),
            nullptr);
  EXPECT_EQ(BlockTable::Build({Conn(5, "10.0.0.1", "10.0.0.2", 0)}, {}, {}, &err), nullptr);
  EXPECT_NE(err.find("server port"), std::string::npos);
  EXPECT_EQ(
      BlockTable::Build({Dev(6, BlockKind::kQuarantine, "10.0.0.1")}, {}, {C("10.0.0.0/30")}, &err),
      nullptr);
  EXPECT_NE(err.find("never blocked"), std::string::npos);
  EXPECT_EQ(
      BlockTable::Build({Conn(7, "10.0.0.9", "192.168.1.1", 80)}, {}, {C("192.168.1.1")}, &err),
      nullptr);
  auto empty = BlockTable::Build({}, {}, {}, &err);
  ASSERT_NE(empty, nullptr);
  EXPECT_EQ(Hit(*empty, "10.0.0.1", "10.0.0.2", 1, 2), 0u);
  Cidr c;
  EXPECT_FALSE(ParseCidr("10.0.0.0/33", &c, &err));
  EXPECT_FALSE(ParseCidr("10.0.0.x", &c, &err));
  EXPECT_TRUE(ParseCidr("fd00::/8", &c, &err));
  EXPECT_TRUE(c.Contains(A("fd12::1").data()));
  EXPECT_FALSE(c.Contains(A("fe80::1").data()));
}

TEST(BlockTable, ManyEntriesAndConcurrentCounters) {
  std::vector<BlockEntry> v;
  for (uint32_t i = 1; i <= 5000; ++i) {
    const std::string ip = "10." + std::to_string(i / 250) + "." + std::to_string(i % 250) + ".1";
    v.push_back(Dev(i, BlockKind::kQuarantine, ip.c_str()));
    v.push_back(Conn(100000 + i, ip.c_str(), "172.16.0.1", static_cast<uint16_t>(i)));
  }
  std::string err;
  auto t = BlockTable::Build(v, {}, {}, &err);
  ASSERT_NE(t, nullptr) << err;
  EXPECT_EQ(Hit(*t, "10.4.0.1", "8.8.8.8", 1, 53, 17), 1000u);
  EXPECT_EQ(Hit(*t, "172.16.0.1", "10.0.1.2", 7, 1), 0u);
  const Addr16 s = A("10.0.7.1"), d = A("9.9.9.9");
  const BlockEntry* e = t->Match(s.data(), d.data(), 6, 1, 2, 0);
  ASSERT_NE(e, nullptr);
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) t->CountDrop(e, 1000 + i);
      t->CountReset(e);
    });
  }
  for (auto& w : workers) w.join();
  const size_t index = static_cast<size_t>(e - t->entries().data());
  EXPECT_EQ(t->drops(index), 40000u);
  EXPECT_EQ(t->resets(index), 4u);
  EXPECT_EQ(t->first_drop_ns(index), 1000u);  // each worker's first drop is at 1000
}

TEST(BlockTable, ARePushKeepsTheCountersOfEntriesItKeeps) {
  std::string err;
  auto old = BlockTable::Build(
      {Dev(1, BlockKind::kQuarantine, "10.0.0.9"), Dev(2, BlockKind::kQuarantine, "10.0.0.8")}, {},
      {}, &err);
  ASSERT_NE(old, nullptr) << err;
  old->CountDrop(&old->entries()[0], 500);
  old->CountDrop(&old->entries()[0], 600);
  old->CountReset(&old->entries()[0]);
  old->CountDrop(&old->entries()[1], 700);
  auto next = BlockTable::Build(
      {Dev(3, BlockKind::kQuarantine, "10.0.0.7"), Dev(1, BlockKind::kQuarantine, "10.0.0.9")}, {},
      {}, &err);
  ASSERT_NE(next, nullptr) << err;
  next->InheritCounters(*old);
  EXPECT_EQ(next->drops(0), 0u);  // id 3 is new
  EXPECT_EQ(next->drops(1), 2u);  // id 1 kept its counters
  EXPECT_EQ(next->resets(1), 1u);
  EXPECT_EQ(next->first_drop_ns(1), 500u);
}

// A TCP segment 10.0.0.9:51000 -> 10.0.0.5:445 (or IPv6) with `payload` bytes, ACK|PSH.
std::vector<uint8_t> TcpFrame(bool v6, size_t payload, bool vlan = false) {
  std::vector<uint8_t> f = {0x02, 0, 0, 0, 0, 0xbb, 0x02, 0, 0, 0, 0, 0xaa};
  if (vlan) f.insert(f.end(), {0x81, 0x00, 0x00, 0x07});
  const size_t ip_len = v6 ? 40 : 20;
  f.insert(f.end(), {static_cast<uint8_t>(v6 ? 0x86 : 0x08), static_cast<uint8_t>(v6 ? 0xdd : 0)});
  const size_t l3 = f.size();
  f.resize(l3 + ip_len + 20 + payload, 0x41);
  uint8_t* ip = f.data() + l3;
  std::fill(ip, ip + ip_len + 20, 0);
  const uint16_t tot = static_cast<uint16_t>((v6 ? 0 : ip_len) + 20 + payload);
  if (!v6) {
    ip[0] = 0x45;
    ip[2] = static_cast<uint8_t>(tot >> 8);
    ip[3] = static_cast<uint8_t>(tot);
    ip[8] = 64;
    ip[9] = 6;
    const uint8_t s[4] = {10, 0, 0, 9}, d[4] = {10, 0, 0, 5};
    std::copy(s, s + 4, ip + 12);
    std::copy(d, d + 4, ip + 16);
    uint32_t acc = 0;
    for (int i = 0; i < 20; i += 2) acc += (ip[i] << 8) | ip[i + 1];
    while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
    const uint16_t c = static_cast<uint16_t>(~acc);
    ip[10] = static_cast<uint8_t>(c >> 8);
    ip[11] = static_cast<uint8_t>(c);
  } else {
    ip[0] = 0x60;
    ip[4] = static_cast<uint8_t>(tot >> 8);
    ip[5] = static_cast<uint8_t>(tot);
    ip[6] = 6;
    ip[7] = 64;
    ip[8] = 0xfd;
    ip[23] = 9;
    ip[24] = 0xfd;
    ip[39] = 5;
  }
  uint8_t* tcp = ip + ip_len;
  tcp[0] = 51000 >> 8;
  tcp[1] = 51000 & 0xff;
  tcp[2] = 445 >> 8;
  tcp[3] = 445 & 0xff;
  tcp[4] = 0x10;  // seq 0x10000000
  tcp[8] = 0x20;  // ack 0x20000000
  tcp[12] = 5 << 4;
  tcp[13] = kTcpAck | kTcpPsh;
  return f;
}

// The checksum over a TCP segment with its pseudo-header is 0 when correct.
bool TcpChecksumOk(const std::vector<uint8_t>& f, const PacketMeta& m) {
  uint32_t acc = 0;
  auto add = [&](const uint8_t* p, size_t n) {
    for (size_t i = 0; i + 1 < n; i += 2) acc += (p[i] << 8) | p[i + 1];
  };
  if (m.ip_version == 4) {
    add(m.src_addr + 12, 4);
    add(m.dst_addr + 12, 4);
  } else {
    add(m.src_addr, 16);
    add(m.dst_addr, 16);
  }
  acc += 6 + 20;
  add(f.data() + m.l4_offset, 20);
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return acc == 0xffff;
}

TEST(BlockRst, BothDirectionsDecodeWithValidChecksums) {
  for (const bool v6 : {false, true}) {
    for (const bool vlan : {false, true}) {
      const std::vector<uint8_t> in = TcpFrame(v6, 100, vlan);
      PacketMeta m{};
      ASSERT_EQ(Decode(in, &m), DecodeClass::kL4) << v6;
      for (const bool toward_sender : {false, true}) {
        std::vector<uint8_t> out(kRstMaxBytes);
        const size_t n = BuildTcpRst(in, m, toward_sender, out);
        ASSERT_GT(n, 0u);
        out.resize(n);
        PacketMeta r{};
        ASSERT_EQ(Decode(out, &r), DecodeClass::kL4) << v6 << toward_sender;
        EXPECT_EQ(r.anomalies & ~uint32_t{kAnomEthPadding}, 0u);  // padded to 60 bytes: legal
        EXPECT_TRUE(r.tcp_flags & kTcpRst);
        EXPECT_EQ(r.payload_len, 0u);
        EXPECT_EQ(r.vlan_count, vlan ? 1 : 0);
        EXPECT_TRUE(TcpChecksumOk(out, r));
        if (toward_sender) {  // from the server to the client, at the client's expected seq
          EXPECT_EQ(std::memcmp(r.src_addr, m.dst_addr, 16), 0);
          EXPECT_EQ(r.src_port, 445);
          EXPECT_EQ(r.dst_port, 51000);
          EXPECT_EQ(r.tcp_seq, 0x20000000u);
          EXPECT_EQ(r.tcp_ack, 0x10000000u + 100);
          EXPECT_EQ(std::memcmp(out.data(), in.data() + 6, 6), 0);  // MACs swapped
        } else {  // in place of the client's dropped segment, to the server
          EXPECT_EQ(std::memcmp(r.src_addr, m.src_addr, 16), 0);
          EXPECT_EQ(r.src_port, 51000);
          EXPECT_EQ(r.tcp_seq, 0x10000000u);
          EXPECT_EQ(std::memcmp(out.data(), in.data(), 12), 0);
        }
      }
    }
  }
  // Not TCP, or no room: nothing.
  PacketMeta m{};
  std::vector<uint8_t> in = TcpFrame(false, 0);
  ASSERT_EQ(Decode(in, &m), DecodeClass::kL4);
  std::vector<uint8_t> small(20);
  EXPECT_EQ(BuildTcpRst(in, m, true, small), 0u);
  m.ip_proto = 17;
  std::vector<uint8_t> out(kRstMaxBytes);
  EXPECT_EQ(BuildTcpRst(in, m, true, out), 0u);
}

// A reject rule's answer to UDP: an ICMP port unreachable back to the sender, quoting the
// packet's IP header and UDP header, with valid checksums (v4 and v6, with and without VLAN).
TEST(BlockIcmp, PortUnreachableTowardTheSender) {
  for (const bool v6 : {false, true}) {
    for (const bool vlan : {false, true}) {
      std::vector<uint8_t> in = TcpFrame(v6, 12, vlan);  // made UDP below
      const size_t l3 = vlan ? 18 : 14, ip_len = v6 ? 40 : 20;
      uint8_t* ip = in.data() + l3;
      if (v6) {
        ip[6] = 17;
        ip[4] = 0, ip[5] = 8 + 12;
      } else {
        ip[9] = 17;
        ip[2] = 0, ip[3] = static_cast<uint8_t>(20 + 8 + 12);
        ip[10] = ip[11] = 0;
        uint32_t acc = 0;
        for (int i = 0; i < 20; i += 2) acc += (ip[i] << 8) | ip[i + 1];
        while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
        ip[10] = static_cast<uint8_t>(~acc >> 8);
        ip[11] = static_cast<uint8_t>(~acc);
      }
      in.resize(l3 + ip_len + 8 + 12);
      uint8_t* udp = ip + ip_len;
      udp[4] = 0, udp[5] = 8 + 12, udp[6] = udp[7] = 0;
      PacketMeta m{};
      ASSERT_EQ(Decode(in, &m), DecodeClass::kL4) << v6;
      ASSERT_EQ(m.ip_proto, 17);
      std::vector<uint8_t> out(kIcmpUnreachableMaxBytes);
      const size_t n = BuildIcmpUnreachable(in, m, out);
      ASSERT_GT(n, 0u) << v6 << vlan;
      out.resize(n);
      EXPECT_EQ(std::memcmp(out.data(), in.data() + 6, 6), 0);  // MACs swapped
      EXPECT_EQ(std::memcmp(out.data() + 6, in.data(), 6), 0);
      const uint8_t* oip = out.data() + l3;
      const uint8_t* icmp = oip + ip_len;
      const size_t quoted = ip_len + 8;
      uint32_t acc = 0;
      auto add = [&](const uint8_t* p, size_t len) {
        for (size_t i = 0; i + 1 < len; i += 2) acc += (p[i] << 8) | p[i + 1];
      };
      if (v6) {
        EXPECT_EQ(oip[6], 58);
        EXPECT_EQ(std::memcmp(oip + 8, ip + 24, 16), 0);  // from the packet's destination
        EXPECT_EQ(std::memcmp(oip + 24, ip + 8, 16), 0);  // to its source
        EXPECT_EQ((oip[4] << 8) | oip[5], static_cast<int>(8 + quoted));
        EXPECT_EQ(icmp[0], 1);
        EXPECT_EQ(icmp[1], 4);
        add(oip + 8, 32);
        acc += static_cast<uint32_t>(8 + quoted) + 58;
      } else {
        EXPECT_EQ(oip[9], 1);
        EXPECT_EQ(std::memcmp(oip + 12, ip + 16, 4), 0);
        EXPECT_EQ(std::memcmp(oip + 16, ip + 12, 4), 0);
        EXPECT_EQ((oip[2] << 8) | oip[3], static_cast<int>(20 + 8 + quoted));
        uint32_t h = 0;
        for (int i = 0; i < 20; i += 2) h += (oip[i] << 8) | oip[i + 1];
        while (h >> 16) h = (h & 0xffff) + (h >> 16);
        EXPECT_EQ(h, 0xffffu);  // IP header checksum
        EXPECT_EQ(icmp[0], 3);
        EXPECT_EQ(icmp[1], 3);
      }
      EXPECT_EQ(std::memcmp(icmp + 8, ip, quoted), 0);  // the packet's IP and UDP headers
      add(icmp, 8 + quoted);
      while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
      EXPECT_EQ(acc, 0xffffu) << v6 << vlan;  // ICMP checksum
    }
  }
  // Not UDP: nothing.
  PacketMeta m{};
  std::vector<uint8_t> in = TcpFrame(false, 0);
  ASSERT_EQ(Decode(in, &m), DecodeClass::kL4);
  std::vector<uint8_t> out(kIcmpUnreachableMaxBytes);
  EXPECT_EQ(BuildIcmpUnreachable(in, m, out), 0u);
}

}  // namespace
}  // namespace vigil::dp
