// Decoder tests on hand-built frames. Every frame is assembled byte by byte by the helpers below
// so each test states exactly what is on the wire.
#include "dataplane/packet/decoder.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace vigil::dp {
namespace {

using Bytes = std::vector<uint8_t>;
using Addr4 = std::array<uint8_t, 4>;
using Addr6 = std::array<uint8_t, 16>;

constexpr Addr4 kSrc4 = {192, 0, 2, 1};
constexpr Addr4 kDst4 = {198, 51, 100, 7};
constexpr Addr6 kSrc6 = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01};
constexpr Addr6 kDst6 = {0x20, 0x01, 0x0d, 0xb8, 0xff, 0xee, 0, 0, 0, 0, 0, 0, 0xaa, 0xbb, 0, 0x02};

constexpr uint32_t kErrorBits = ~(static_cast<uint32_t>(kAnomEthPadding) | kAnomVlanTooDeep);

// ---- frame builders ------------------------------------------------------------------------

void Put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}

void Put32(Bytes& b, uint32_t v) {
  Put16(b, static_cast<uint16_t>(v >> 16));
  Put16(b, static_cast<uint16_t>(v));
}

void Set16(Bytes& b, size_t off, uint16_t v) {
  b[off] = static_cast<uint8_t>(v >> 8);
  b[off + 1] = static_cast<uint8_t>(v);
}

Bytes Cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Bytes Payload(size_t n, uint8_t seed = 0x40) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + i);
  return b;
}

struct Tag {
  uint16_t tpid;
  uint16_t tci;  // PCP/DEI in the top 4 bits, VID in the low 12
};

// Ethernet II header plus VLAN tags; `ether_type` is the innermost type.
Bytes Eth(uint16_t ether_type, std::initializer_list<Tag> tags = {}) {
  Bytes b = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
  for (const Tag& t : tags) {
    Put16(b, t.tpid);
    Put16(b, t.tci);
  }
  Put16(b, ether_type);
  return b;
}

struct Ipv4Opts {
  uint16_t frag = 0;      // flags + fragment offset field as on the wire
  uint8_t ihl_words = 5;  // header length; options (zeros) are appended when > 5
  int total_delta = 0;    // added to the computed total length
  Addr4 src = kSrc4;
  Addr4 dst = kDst4;
};

Bytes Ipv4(uint8_t proto, const Bytes& payload, const Ipv4Opts& o = {}) {
  Bytes b;
  b.push_back(static_cast<uint8_t>(0x40 | (o.ihl_words & 0x0F)));
  b.push_back(0);  // DSCP/ECN
  const size_t hdr = o.ihl_words < 5 ? 20 : o.ihl_words * 4u;
  Put16(b, static_cast<uint16_t>(static_cast<int>(hdr + payload.size()) + o.total_delta));
  Put16(b, 0x1234);  // id
  Put16(b, o.frag);
  b.push_back(64);  // TTL
  b.push_back(proto);
  Put16(b, 0);  // checksum (not verified by the decoder)
  b.insert(b.end(), o.src.begin(), o.src.end());
  b.insert(b.end(), o.dst.begin(), o.dst.end());
  b.resize(hdr, 0);
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

// IPv6 header followed by `rest` (extension headers and upper layer); payload length = rest.
Bytes Ipv6(uint8_t next_header, const Bytes& rest, int plen_delta = 0) {
  Bytes b = {0x60, 0x00, 0x00, 0x00};
  Put16(b, static_cast<uint16_t>(static_cast<int>(rest.size()) + plen_delta));
  b.push_back(next_header);
  b.push_back(64);  // hop limit
  b.insert(b.end(), kSrc6.begin(), kSrc6.end());
  b.insert(b.end(), kDst6.begin(), kDst6.end());
  b.insert(b.end(), rest.begin(), rest.end());
  return b;
}

// Generic (len+1)*8 extension header: hop-by-hop, routing, destination options...
Bytes Ext(uint8_t next_header, uint8_t len_units = 0) {
  Bytes b(static_cast<size_t>(len_units + 1) * 8, 0);
  b[0] = next_header;
  b[1] = len_units;
  if (b.size() >= 4) b[2] = 1;  // a PadN-ish option byte, content is irrelevant
  return b;
}

Bytes FragExt(uint8_t next_header, uint16_t offset_units, bool more) {
  Bytes b = {next_header, 0};
  Put16(b, static_cast<uint16_t>((offset_units << 3) | (more ? 1 : 0)));
  Put32(b, 0xdeadbeef);  // identification
  return b;
}

// AH: length field in 4-byte units minus 2.
Bytes AhExt(uint8_t next_header, uint8_t len_field) {
  Bytes b((static_cast<size_t>(len_field) + 2) * 4, 0);
  b[0] = next_header;
  b[1] = len_field;
  return b;
}

struct TcpOpts {
  uint16_t sport = 40000;
  uint16_t dport = 443;
  uint32_t seq = 0x01020304;
  uint32_t ack = 0xa0b0c0d0;
  uint8_t flags = kTcpAck | kTcpPsh;
  uint16_t window = 0xfedc;
  uint8_t doff_words = 5;  // options (zeros) are appended when > 5
};

Bytes Tcp(const Bytes& payload, const TcpOpts& o = {}) {
  Bytes b;
  Put16(b, o.sport);
  Put16(b, o.dport);
  Put32(b, o.seq);
  Put32(b, o.ack);
  b.push_back(static_cast<uint8_t>(o.doff_words << 4));
  b.push_back(o.flags);
  Put16(b, o.window);
  Put16(b, 0);  // checksum
  Put16(b, 0);  // urgent pointer
  if (o.doff_words > 5) b.resize(size_t{o.doff_words} * 4u, 0);
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

Bytes Udp(uint16_t sport, uint16_t dport, const Bytes& payload, int len_delta = 0) {
  Bytes b;
  Put16(b, sport);
  Put16(b, dport);
  Put16(b, static_cast<uint16_t>(static_cast<int>(8 + payload.size()) + len_delta));
  Put16(b, 0);
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

Bytes Icmp(uint8_t type, uint8_t code, uint16_t id, uint16_t seq, const Bytes& payload) {
  Bytes b = {type, code, 0, 0};
  Put16(b, id);
  Put16(b, seq);
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

Bytes Ipv4TcpFrame(size_t payload_len = 6) {
  return Cat({Eth(0x0800), Ipv4(6, Tcp(Payload(payload_len)))});
}

struct Decoded {
  DecodeClass cls;
  PacketMeta m;
};

Decoded DecodeBytes(const Bytes& frame) {
  Decoded d;
  d.cls = Decode(std::span<const uint8_t>(frame.data(), frame.size()), &d.m);
  return d;
}

std::string Anoms(uint32_t bits) {
  std::string s;
  for (int i = 0; i < 32; ++i) {
    if (bits & (1u << i)) {
      if (!s.empty()) s += ",";
      s += DecodeAnomalyName(1u << i);
    }
  }
  return s.empty() ? "none" : s;
}

#define EXPECT_ANOMS(meta, bits) EXPECT_EQ(Anoms((meta).anomalies), Anoms(bits))

bool IsMapped(const uint8_t* a, const Addr4& v4) {
  static constexpr uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  return std::memcmp(a, kPrefix, 12) == 0 && std::memcmp(a + 12, v4.data(), 4) == 0;
}

// Structural invariants that must hold for any input, valid or not.
void CheckInvariants(const Bytes& f, DecodeClass cls, const PacketMeta& m) {
  const size_t n = f.size();
  ASSERT_LE(m.l3_offset, n);
  ASSERT_LE(m.l4_offset, n);
  ASSERT_LE(static_cast<size_t>(m.payload_offset) + m.payload_len, n);
  ASSERT_LE(m.vlan_count, kMaxVlans);
  for (int i = 0; i < m.vlan_count; ++i) ASSERT_LE(m.vlan[i], 0x0FFF);
  if (m.ip_len != 0) {
    ASSERT_LE(static_cast<size_t>(m.l3_offset) + m.ip_len, n);
    ASSERT_LE(static_cast<size_t>(m.payload_offset) + m.payload_len,
              static_cast<size_t>(m.l3_offset) + m.ip_len);
    if (cls != DecodeClass::kMalformed) {
      ASSERT_GE(m.payload_offset, m.l3_offset);
    }
  }
  if (m.first_fragment) {
    ASSERT_TRUE(m.fragment);
  }
  switch (cls) {
    case DecodeClass::kL2:
      ASSERT_EQ(m.ip_version, 0);
      ASSERT_EQ(m.ip_len, 0);
      ASSERT_EQ(m.anomalies & kErrorBits, 0u);
      break;
    case DecodeClass::kL3:
      ASSERT_TRUE(m.ip_version == 4 || m.ip_version == 6);
      ASSERT_EQ(m.l4_offset, 0);
      ASSERT_EQ(m.src_port, 0);
      ASSERT_EQ(m.dst_port, 0);
      ASSERT_EQ(m.anomalies & kErrorBits, 0u);
      break;
    case DecodeClass::kL4:
      ASSERT_TRUE(m.ip_version == 4 || m.ip_version == 6);
      ASSERT_NE(m.l4_offset, 0);
      ASSERT_GE(m.l4_offset, m.l3_offset + (m.ip_version == 4 ? 20 : 40));
      ASSERT_LE(m.l4_offset, m.payload_offset);
      ASSERT_TRUE(m.ip_proto == 6 || m.ip_proto == 17 || m.ip_proto == 1 || m.ip_proto == 58);
      ASSERT_EQ(m.anomalies & kErrorBits, 0u);
      break;
    case DecodeClass::kMalformed:
      ASSERT_NE(m.anomalies & kErrorBits, 0u);
      break;
  }
}

// ---- Ethernet / VLAN ------------------------------------------------------------------------

TEST(DecoderTest, Ipv4TcpAllFields) {
  TcpOpts t;
  t.flags = kTcpSyn | kTcpAck | kTcpEce;
  t.doff_words = 8;  // 12 bytes of options
  const Bytes f = Cat({Eth(0x0800), Ipv4(6, Tcp(Payload(10), t))});
  ASSERT_EQ(f.size(), 14u + 20 + 32 + 10);
  const Decoded d = DecodeBytes(f);
  ASSERT_EQ(d.cls, DecodeClass::kL4);
  const PacketMeta& m = d.m;
  EXPECT_ANOMS(m, 0);
  EXPECT_EQ(m.ether_type, 0x0800);
  EXPECT_EQ(m.vlan_count, 0);
  EXPECT_EQ(m.ip_version, 4);
  EXPECT_EQ(m.ip_proto, 6);
  EXPECT_TRUE(IsMapped(m.src_addr, kSrc4));
  EXPECT_TRUE(IsMapped(m.dst_addr, kDst4));
  EXPECT_EQ(m.src_port, 40000);
  EXPECT_EQ(m.dst_port, 443);
  EXPECT_EQ(m.tcp_seq, 0x01020304u);
  EXPECT_EQ(m.tcp_ack, 0xa0b0c0d0u);
  EXPECT_EQ(m.tcp_window, 0xfedc);
  EXPECT_EQ(m.tcp_flags, kTcpSyn | kTcpAck | kTcpEce);
  EXPECT_FALSE(m.fragment);
  EXPECT_FALSE(m.first_fragment);
  EXPECT_EQ(m.l3_offset, 14);
  EXPECT_EQ(m.l4_offset, 34);
  EXPECT_EQ(m.payload_offset, 34 + 32);
  EXPECT_EQ(m.payload_len, 10);
  EXPECT_EQ(m.ip_len, 20 + 32 + 10);
  EXPECT_EQ(m.icmp_type, 0);
  EXPECT_EQ(m.icmp_code, 0);
  EXPECT_EQ(f[m.payload_offset], 0x40);  // first payload byte
}

TEST(DecoderTest, Ipv4Udp) {
  const Bytes f = Cat({Eth(0x0800), Ipv4(17, Udp(5353, 53, Payload(30)))});
  const Decoded d = DecodeBytes(f);
  ASSERT_EQ(d.cls, DecodeClass::kL4);
  EXPECT_ANOMS(d.m, 0);
  EXPECT_EQ(d.m.ip_proto, 17);
  EXPECT_EQ(d.m.src_port, 5353);
  EXPECT_EQ(d.m.dst_port, 53);
  EXPECT_EQ(d.m.l4_offset, 34);
  EXPECT_EQ(d.m.payload_offset, 42);
  EXPECT_EQ(d.m.payload_len, 30);
  EXPECT_EQ(d.m.ip_len, 58);
  EXPECT_EQ(d.m.tcp_flags, 0);
  EXPECT_EQ(d.m.tcp_seq, 0u);
}

TEST(DecoderTest, UdpPayloadFollowsUdpLengthNotIpLength) {
  // UDP says 8+4 bytes but the datagram carries 10 bytes after the UDP header.
  const Bytes f = Cat({Eth(0x0800), Ipv4(17, Udp(1, 2, Payload(10), -6))});
  const Decoded d = DecodeBytes(f);
  ASSERT_EQ(d.cls, DecodeClass::kL4);
  EXPECT_EQ(d.m.payload_len, 4);
  EXPECT_EQ(d.m.ip_len, 20 + 18);
}

TEST(DecoderTest, IcmpEchoIdentifierIsBothPorts) {
  for (uint8_t type : {uint8_t{8}, uint8_t{0}}) {
    const Bytes f = Cat({Eth(0x0800), Ipv4(1, Icmp(type, 0, 0xbeef, 7, Payload(16)))});
    const Decoded d = DecodeBytes(f);
    ASSERT_EQ(d.cls, DecodeClass::kL4) << int(type);
    EXPECT_ANOMS(d.m, 0);
    EXPECT_EQ(d.m.ip_proto, 1);
    EXPECT_EQ(d.m.icmp_type, type);
    EXPECT_EQ(d.m.icmp_code, 0);
    EXPECT_EQ(d.m.src_port, 0xbeef);
    EXPECT_EQ(d.m.dst_port, 0xbeef);
    EXPECT_EQ(d.m.l4_offset, 34);
    EXPECT_EQ(d.m.payload_offset, 42);
    EXPECT_EQ(d.m.payload_len, 16);
  }
}

TEST(DecoderTest, IcmpUnreachableHasNoPorts) {
  // Port unreachable quoting an IPv4/UDP header.
  const Bytes quoted = Ipv4(17, Udp(1000, 2000, {}));
  const Bytes f = Cat({Eth(0x0800), Ipv4(1, Icmp(3, 3, 0, 0, quoted))});
  const Decoded d = DecodeBytes(f);
  ASSERT_EQ(d.cls, DecodeClass::kL4);
  EXPECT_EQ(d.m.icmp_type, 3);
  EXPECT_EQ(d.m.icmp_code, 3);
  EXPECT_EQ(d.m.src_port, 0);
  EXPECT_EQ(d.m.dst_port, 0);
  EXPECT_EQ(d.m.payload_offset, 42);
  EXPECT_EQ(d.m.payload_len, quoted.size());
}

TEST(DecoderTest, IcmpTruncation) {
  // Unreachable needs 4 bytes, echo needs 8.
  Bytes four = {3, 1, 0, 0};
  Decoded d = DecodeBytes(Cat({Eth(0x0800), Ipv4(1, four)}));
  ASSERT_EQ(d.cls, DecodeClass::kL4);
  EXPECT_EQ(d.m.icmp_type, 3);
  EXPECT_EQ(d.m.payload_len, 0);
  EXPECT_EQ(d.m.payload_offset, 38);

  d = DecodeBytes(Cat({Eth(0x0800), Ipv4(1, Bytes{3, 1, 0})}));
  EXPECT_EQ(d.cls, DecodeClass::kMalformed);
  EXPECT_ANOMS(d.m, kAnomIcmpTruncated);

  d = DecodeBytes(Cat({Eth(0x0800), Ipv4(1, Bytes{8, 0, 0, 0, 0x12, 0x34, 0})}));
  EXPECT_EQ(d.cls, DecodeClass::kMalformed);
  EXPECT_ANOMS(d.m, kAnomIcmpTruncated);
  EXPECT_EQ(d.m.src_port, 0);
}

TEST(DecoderTest, SingleVlan) {
  const Bytes f = Cat({Eth(0x0800, {{0x8100, 0xA000 | 100}}), Ipv4(6, Tcp(Payload(4)))});
  const Decoded d = DecodeBytes(f);
  ASSERT_EQ(d.cls, DecodeClass::kL4);
  EXPECT_ANOMS(d.m, 0);
  EXPECT_EQ(d.m.vlan_count, 1);
  EXPECT_EQ(d.m.vlan[0], 100);  // PCP bits stripped
  EXPECT_EQ(d.m.ether_type, 0x0800);
  EXPECT_EQ(d.m.l3_offset, 18);
  EXPECT_EQ(d.m.l4_offset, 38);
  EXPECT_EQ(d.m.payload_offset, 58);
  EXPECT_EQ(d.m.payload_len, 4);
}

TEST(DecoderTest, QinQ) {
  const Bytes f =
      Cat({Eth(0x86DD, {{0x88a8, 0x0FFF}, {0x8100, 0x3002}}), Ipv6(17, Udp(9, 10, Payload(3)))});
  const Decoded d = DecodeBytes(f);
  ASSERT_EQ(d.cls, DecodeClass::kL4);
  EXPECT_EQ(d.m.vlan_count, 2);
  EXPECT_EQ(d.m.vlan[0], 0x0FFF);  // outermost first
  EXPECT_EQ(d.m.vlan[1], 2);
  EXPECT_EQ(d.m.ether_type, 0x86DD);
  EXPECT_EQ(d.m.l3_offset, 22);
  EXPECT_EQ(d.m.l4_offset, 62);
  EXPECT_EQ(d.m.src_port, 9);
}

TEST(DecoderTest, Tpid9100IsAVlanTag) {
  const Bytes f = Cat({Eth(0x0806, {{0x9100, 55}}), Payload(28)});
  const Decoded d = DecodeBytes(f);
  EXPECT_EQ(d.cls, DecodeClass::kL2);
  EXPECT_EQ(d.m.vlan_count, 1);
  EXPECT_EQ(d.m.vlan[0], 55);
  EXPECT_EQ(d.m.ether_type, 0x0806);
}

TEST(DecoderTest, ThreeTagsTooDeepIsForwardedAsL2) {
  const Bytes f =
      Cat({Eth(0x0800, {{0x88a8, 10}, {0x8100, 20}, {0x8100, 30}}), Ipv4(6, Tcp(Payload(4)))});
  const Decoded d = DecodeBytes(f);
  EXPECT_EQ(d.cls, DecodeClass::kL2);
  EXPECT_ANOMS(d.m, kAnomVlanTooDeep);
  EXPECT_EQ(d.m.vlan_count, 2);
  EXPECT_EQ(d.m.vlan[0], 10);
  EXPECT_EQ(d.m.vlan[1], 20);
  EXPECT_EQ(d.m.ether_type, 0x8100);  // first undecoded TPID
  EXPECT_EQ(d.m.l3_offset, 22);
  EXPECT_EQ(d.m.ip_version, 0);
  EXPECT_EQ(d.m.l4_offset, 0);
}

TEST(DecoderTest, VlanTruncated) {
  const Bytes full = Cat({Eth(0x0800, {{0x8100, 7}}), Ipv4(6, Tcp({}))});
  for (size_t len = 14; len < 18; ++len) {
    const Decoded d = DecodeBytes(Bytes(full.begin(), full.begin() + static_cast<ptrdiff_t>(len)));
    EXPECT_EQ(d.cls, DecodeClass::kMalformed) << len;
    EXPECT_ANOMS(d.m, kAnomVlanTruncated);
  }
  const Decoded d = DecodeBytes(Bytes(full.begin(), full.begin() + 18));
  EXPECT_EQ(d.cls, DecodeClass::kMalformed);
  EXPECT_ANOMS(d.m, kAnomIpv4Truncated);
  EXPECT_EQ(d.m.vlan_count, 1);
}

TEST(DecoderTest, ArpIsL2) {
  const Bytes f = Cat({Eth(0x0806), Payload(28)});
  const Decoded d = DecodeBytes(f);
  EXPECT_EQ(d.cls, DecodeClass::kL2);
  EXPECT_ANOMS(d.m, 0);
  EXPECT_EQ(d.m.ether_type, 0x0806);
  EXPECT_EQ(d.m.l3_offset, 14);
  EXPECT_EQ(d.m.ip_version, 0);
  EXPECT_EQ(d.m.ip_len, 0);
}

TEST(DecoderTest, BareEthernetHeaderIsL2) {
  const Decoded d = DecodeBytes(Eth(0x88cc));  // LLDP, no body
  EXPECT_EQ(d.cls, DecodeClass::kL2);
  EXPECT_EQ(d.m.ether_type, 0x88cc);
}

// ---- truncation -------------------------------------------------------------------------------

TEST(DecoderTest, Ipv4TcpTruncatedAtEveryLength) {
  const Bytes full = Ipv4TcpFrame(6);
  ASSERT_EQ(full.size(), 60u);
  for (size_t len = 0; len <= full.size(); ++len) {
    SCOPED_TRACE(len);
    const Bytes f(full.begin(), full.begin() + static_cast<ptrdiff_t>(len));
    const Decoded d = DecodeBytes(f);
    CheckInvariants(f, d.cls, d.m);
    if (len < 14) {
      EXPECT_EQ(d.cls, DecodeClass::kMalformed);
      EXPECT_ANOMS(d.m, kAnomEthTruncated);
      EXPECT_EQ(d.m.ether_type, 0);
    } else if (len < 34) {
      EXPECT_EQ(d.cls, DecodeClass::kMalformed);
      EXPECT_ANOMS(d.m, kAnomIpv4Truncated);
      EXPECT_EQ(d.m.ether_type, 0x0800);
    } else if (len < 60) {
      // Header complete, total length (46) promises more than is present.
      EXPECT_EQ(d.cls, DecodeClass::kMalformed);
      EXPECT_ANOMS(d.m, kAnomIpv4BadTotalLen);
    } else {
      EXPECT_EQ(d.cls, DecodeClass::kL4);
      EXPECT_ANOMS(d.m, 0);
    }
  }
}

TEST(DecoderTest, Ipv6TcpTruncatedAtEveryLength) {
  const Bytes full = Cat({Eth(0x86DD), Ipv6(6, Tcp(Payload(2)))});
  ASSERT_EQ(full.size(), 14u + 40 + 22);
  for (size_t len = 0; len <= full.size(); ++len) {
    SCOPED_TRACE(len);
    const Bytes f(full.begin(), full.begin() + static_cast<ptrdiff_t>(len));
    const Decoded d = DecodeBytes(f);
    CheckInvariants(f, d.cls, d.m);
    if (len < 14) {
      EXPECT_ANOMS(d.m, kAnomEthTruncated);
    } else if (len < 54) {
      EXPECT_ANOMS(d.m, kAnomIpv6Truncated);
    } else if (len < full.size()) {
      EXPECT_ANOMS(d.m, kAnomIpv6BadPayloadLen);
    }
    EXPECT_EQ(d.cls, len == full.size() ? DecodeClass::kL4 : DecodeClass::kMalformed);
  }
}

TEST(DecoderTest, TcpHeaderCutByIpTotalLength) {
  // IP says 20 + 12: a TCP header cannot fit.
  Bytes f = Ipv4TcpFrame(0);
  Set16(f, 16, 32);
  Decoded d = DecodeBytes(f);
  EXPECT_EQ(d.cls, DecodeClass::kMalformed);
  EXPECT_ANOMS(d.m, kAnomTcpTruncated | kAnomEthPadding);
  EXPECT_EQ(d.m.src_port, 0);

  // 20 bytes present but data offset claims 24.
  TcpOpts t;
  t.doff_words = 6;
  f = Cat({Eth(0x0800), Ipv4(6, Tcp({}, t))});
  Set16(f, 16, 40);
  d = DecodeBytes(f);
  EXPECT_EQ(d.cls, DecodeClass::kMalformed);
  EXPECT_ANOMS(d.m, kAnomTcpTruncated | kAnomEthPadding);
}

TEST(DecoderTest, TcpDataOffsetBelowFive) {
  for (uint8_t doff = 0; doff < 5; ++doff) {
    Bytes f = Ipv4TcpFrame(8);
    f[34 + 12] = static_cast<uint8_t>(doff << 4);
    const Decoded d = DecodeBytes(f);
    EXPECT_EQ(d.cls, DecodeClass::kMalformed) << int(doff);
    EXPECT_ANOMS(d.m, kAnomTcpBadOffset);
  }
}

TEST(DecoderTest, UdpTruncatedAndBadLength) {
  Decoded d = DecodeBytes(Cat({Eth(0x0800), Ipv4(17, Bytes{0, 53, 0, 53, 0, 8, 0})}));
  EXPECT_EQ(d.cls, DecodeClass::kMalformed);
  EXPECT_ANOMS(d.m, kAnomUdpTruncated);

  d = DecodeBytes(Cat({Eth(0x0800), Ipv4(17, Udp(1, 2, Payload(4), +1))}));  // longer than datagram
  EXPECT_EQ(d.cls, DecodeClass::kMalformed);
  EXPECT_ANOMS(d.m, kAnomUdpBadLen);

  d = DecodeBytes(Cat({Eth(0x0800), Ipv4(17, Udp(1, 2, Payload(4), -5))}));  // 7 < 8
  EXPECT_EQ(d.cls, DecodeClass::kMalformed);
  EXPECT_ANOMS(d.m, kAnomUdpBadLen);

  d = DecodeBytes(Cat({Eth(0x0800), Ipv4(17, Udp(1, 2, {}))}));  // exactly 8: valid, empty
  EXPECT_EQ(d.cls, DecodeClass::kL4);
  EXPECT_EQ(d.m.payload_len, 0);
  EXPECT_EQ(d.m.payload_offset, 42);
}

// ---- IPv4 -------------------------------------------------------------------------------------

TEST(DecoderTest, Ipv4BadIhl) {
  for (uint8_t ihl = 0; ihl < 5; ++ihl) {
    Bytes f = Ipv4TcpFrame();
    f[14] = static_cast<uint8_t>(0x40 | ihl);
    const Decoded d = DecodeBytes(f);
    EXPECT_EQ(d.cls, DecodeClass::kMalformed) << int(ihl);
    EXPECT_ANOMS(d.m, kAnomIpv4BadIhl);
  }
}

TEST(DecoderTest, Ipv4IhlBeyondFrame) {
  // IHL 15 (60 bytes) but only 20 + 20 bytes present.
  Bytes f = Cat({Eth(0x0800), Ipv4(6, Tcp({}))});
  f[14] = 0x4F;
  const Decoded d = DecodeBytes(f);
  EXPECT_EQ(d.cls, DecodeClass::kMalformed);
  EXPECT_ANOMS(d.m, kAnomIpv4Truncated);
}

TEST(DecoderTest, Ipv4Options) {
  Ipv4Opts o;
  o.ihl_words = 7;
  const Bytes f = Cat({Eth(0x0800), Ipv4(17, Udp(7, 8, Payload(2)), o)});
  const Decoded d = DecodeBytes(f);
  ASSERT_EQ(d.cls, DecodeClass::kL4);
  EXPECT_EQ(d.m.l4_offset, 14 + 28);
  EXPECT_EQ(d.m.ip_len, 28 + 10);
}

TEST(DecoderTest, Ipv4BadVersion) {
  Bytes f = Ipv4TcpFrame();
  f[14] = 0x65;
  const Decoded d = DecodeBytes(f);
  EXPECT_EQ(d.cls, DecodeClass::kMalformed);
  EXPECT_ANOMS(d.m, kAnomIpv4BadVersion);
  EXPECT_EQ(d.m.ip_version, 0);
}

TEST(DecoderTest, Ipv4TotalLength) {
  Ipv4Opts o;
  o.total_delta = 1;  // one byte more than the frame holds
  Decoded d = DecodeBytes(Cat({Eth(0x0800), Ipv4(6, Tcp(Payload(6)), o)}));
  EXPECT_EQ(d.cls, DecodeClass::kMalformed);
  EXPECT_ANOMS(d.m, kAnomIpv4BadTotalLen);
  EXPECT_EQ(d.m.ip_len, 0);

  Bytes f = Ipv4TcpFrame();
  Set16(f, 16, 19);  // smaller than the header
  d = DecodeBytes(f);
  EXPECT_EQ(d.cls, DecodeClass::kMalformed);
  EXPECT_ANOMS(d.m, kAnomIpv4BadTotalLen);

  Set16(f, 16, 0xFFFF);
  d = DecodeBytes(f);
  EXPECT_EQ(d.cls, DecodeClass::kMalformed);
  EXPECT_ANOMS(d.m, kAnomIpv4BadTotalLen);
}

TEST(DecoderTest, EthernetPaddingOnMinimumFrame) {
  // 14 + 20 + 8 + 2 = 44 bytes, padded to the 60-byte minimum with zeros.
  Bytes f = Cat({Eth(0x0800), Ipv4(17, Udp(123, 123, Bytes{0xAB, 0xCD}))});
  ASSERT_EQ(f.size(), 44u);
  f.resize(60, 0);
  const Decoded d = DecodeBytes(f);
  ASSERT_EQ(d.cls, DecodeClass::kL4);
  EXPECT_ANOMS(d.m, kAnomEthPadding);
  EXPECT_EQ(d.m.ip_len, 30);
  EXPECT_EQ(d.m.payload_offset, 42);
  EXPECT_EQ(d.m.payload_len, 2);

  // Padding after a TCP segment must not be counted as TCP payload.
  Bytes t = Ipv4TcpFrame(0);
  t.resize(60, 0);
  const Decoded dt = DecodeBytes(t);
  ASSERT_EQ(dt.cls, DecodeClass::kL4);
  EXPECT_ANOMS(dt.m, kAnomEthPadding);
  EXPECT_EQ(dt.m.payload_len, 0);
}

TEST(DecoderTest, Ipv4FirstFragment) {
  // MF set, offset 0: UDP length covers the whole datagram (1000 bytes), only 100 are here.
  Ipv4Opts o;
  o.frag = 0x2000;
  Bytes udp = Udp(4000, 4001, Payload(92));
  Set16(udp, 4, 1000);
  const Decoded d = DecodeBytes(Cat({Eth(0x0800), Ipv4(17, udp, o)}));
  ASSERT_EQ(d.cls, DecodeClass::kL4);
  EXPECT_ANOMS(d.m, 0);
  EXPECT_TRUE(d.m.fragment);
  EXPECT_TRUE(d.m.first_fragment);
  EXPECT_EQ(d.m.src_port, 4000);
  EXPECT_EQ(d.m.dst_port, 4001);
  EXPECT_EQ(d.m.payload_len, 92);

  // A first fragment still needs a consistent UDP length field.
  Set16(udp, 4, 7);
  const Decoded bad = DecodeBytes(Cat({Eth(0x0800), Ipv4(17, udp, o)}));
  EXPECT_EQ(bad.cls, DecodeClass::kMalformed);
  EXPECT_ANOMS(bad.m, kAnomUdpBadLen);
}

TEST(DecoderTest, TinyFirstFragmentIsOpaqueNotMalformed) {
  // RFC 1858: a first fragment that ends inside the TCP header is legal; the defragmenter must
  // get it (a malformed class would keep the datagram from ever completing).
  Ipv4Opts o;
  o.frag = 0x2000;
  const Bytes eight(8, 0xab);
  const Decoded d = DecodeBytes(Cat({Eth(0x0800), Ipv4(6, eight, o)}));
  ASSERT_EQ(d.cls, DecodeClass::kL3);
  EXPECT_TRUE(d.m.fragment);
  EXPECT_TRUE(d.m.first_fragment);
  EXPECT_EQ(d.m.l4_offset, 0);  // no ports: never keyed as a flow on its own
  EXPECT_ANOMS(d.m, 0);
  // The same 8 bytes in an unfragmented packet are a truncated TCP header.
  const Decoded whole = DecodeBytes(Cat({Eth(0x0800), Ipv4(6, eight)}));
  EXPECT_EQ(whole.cls, DecodeClass::kMalformed);
  EXPECT_ANOMS(whole.m, kAnomTcpTruncated);
}

TEST(DecoderTest, Ipv4NonFirstFragment) {
  for (uint16_t frag : {uint16_t{0x2000 | 185}, uint16_t{185}}) {  // with and without MF
    Ipv4Opts o;
    o.frag = frag;
    // Bytes that would look like a TCP header must be ignored.
    const Bytes f = Cat({Eth(0x0800), Ipv4(6, Tcp(Payload(12)), o)});
    const Decoded d = DecodeBytes(f);
    ASSERT_EQ(d.cls, DecodeClass::kL3) << frag;
    EXPECT_ANOMS(d.m, 0);
    EXPECT_TRUE(d.m.fragment);
    EXPECT_FALSE(d.m.first_fragment);
    EXPECT_EQ(d.m.ip_proto, 6);
    EXPECT_EQ(d.m.src_port, 0);
    EXPECT_EQ(d.m.dst_port, 0);
    EXPECT_EQ(d.m.tcp_seq, 0u);
    EXPECT_EQ(d.m.l4_offset, 0);
    EXPECT_EQ(d.m.payload_offset, 34);
    EXPECT_EQ(d.m.payload_len, 32);
    EXPECT_TRUE(IsMapped(d.m.src_addr, kSrc4));
  }
}

TEST(DecoderTest, Ipv4DontFragmentIsNotAFragment) {
  Ipv4Opts o;
  o.frag = 0x4000;  // DF
  const Decoded d = DecodeBytes(Cat({Eth(0x0800), Ipv4(6, Tcp({}), o)}));
  ASSERT_EQ(d.cls, DecodeClass::kL4);
  EXPECT_FALSE(d.m.fragment);
  EXPECT_FALSE(d.m.first_fragment);
}

TEST(DecoderTest, UnknownIpProtocolIsL3) {
  const Bytes gre = {0x00, 0x00, 0x08, 0x00, 1, 2, 3, 4};
  const Decoded d = DecodeBytes(Cat({Eth(0x0800), Ipv4(47, gre)}));
  ASSERT_EQ(d.cls, DecodeClass::kL3);
  EXPECT_ANOMS(d.m, 0);
  EXPECT_EQ(d.m.ip_proto, 47);
  EXPECT_EQ(d.m.ip_version, 4);
  EXPECT_EQ(d.m.src_port, 0);
  EXPECT_EQ(d.m.dst_port, 0);
  EXPECT_EQ(d.m.l4_offset, 0);
  EXPECT_EQ(d.m.payload_offset, 34);
  EXPECT_EQ(d.m.payload_len, 8);
  EXPECT_TRUE(IsMapped(d.m.dst_addr, kDst4));
}

TEST(DecoderTest, Ipv4MappedAddresses) {
  Ipv4Opts o;
  o.src = {10, 255, 0, 1};
  o.dst = {255, 255, 255, 255};
  const Decoded d = DecodeBytes(Cat({Eth(0x0800), Ipv4(17, Udp(1, 2, {}), o)}));
  ASSERT_EQ(d.cls, DecodeClass::kL4);
  const uint8_t want_src[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 255, 0, 1};
  const uint8_t want_dst[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 255, 255, 255, 255};
  EXPECT_EQ(std::memcmp(d.m.src_addr, want_src, 16), 0);
  EXPECT_EQ(std::memcmp(d.m.dst_addr, want_dst, 16), 0);
}

TEST(DecoderTest, IcmpProtocolsAreTiedToTheirIpVersion) {
  // ICMPv6 inside IPv4 and ICMP inside IPv6 have no L4 key.
  Decoded d = DecodeBytes(Cat({Eth(0x0800), Ipv4(58, Icmp(128, 0, 5, 1, {}))}));
  EXPECT_EQ(d.cls, DecodeClass::kL3);
  EXPECT_EQ(d.m.src_port, 0);
  d = DecodeBytes(Cat({Eth(0x86DD), Ipv6(1, Icmp(8, 0, 5, 1, {}))}));
  EXPECT_EQ(d.cls, DecodeClass::kL3);
  EXPECT_EQ(d.m.ip_proto, 1);
}

// ---- IPv6 -------------------------------------------------------------------------------------

TEST(DecoderTest, Ipv6Tcp) {
  TcpOpts t;
  t.sport = 55555;
  t.dport = 22;
  t.flags = kTcpFin | kTcpAck;
  const Bytes f = Cat({Eth(0x86DD), Ipv6(6, Tcp(Payload(7), t))});
  const Decoded d = DecodeBytes(f);
  ASSERT_EQ(d.cls, DecodeClass::kL4);
  EXPECT_ANOMS(d.m, 0);
  EXPECT_EQ(d.m.ip_version, 6);
  EXPECT_EQ(d.m.ip_proto, 6);
  EXPECT_EQ(std::memcmp(d.m.src_addr, kSrc6.data(), 16), 0);
  EXPECT_EQ(std::memcmp(d.m.dst_addr, kDst6.data(), 16), 0);
  EXPECT_EQ(d.m.src_port, 55555);
  EXPECT_EQ(d.m.dst_port, 22);
  EXPECT_EQ(d.m.tcp_flags, kTcpFin | kTcpAck);
  EXPECT_EQ(d.m.tcp_seq, 0x01020304u);
  EXPECT_EQ(d.m.tcp_ack, 0xa0b0c0d0u);
  EXPECT_EQ(d.m.tcp_window, 0xfedc);
  EXPECT_EQ(d.m.l3_offset, 14);
  EXPECT_EQ(d.m.l4_offset, 54);
  EXPECT_EQ(d.m.payload_offset, 74);
  EXPECT_EQ(d.m.payload_len, 7);
  EXPECT_EQ(d.m.ip_len, 40 + 27);
  EXPECT_FALSE(d.m.fragment);
}

TEST(DecoderTest, Ipv6ExtensionChainThenUdp) {
  // Hop-by-hop (8) -> destination options (16) -> routing (24) -> UDP.
  const Bytes chain = Cat({Ext(60, 0), Ext(43, 1), Ext(17, 2), Udp(546, 547, Payload(5))});
  const Bytes f = Cat({Eth(0x86DD), Ipv6(0, chain)});
  const Decoded d = DecodeBytes(f);
  ASSERT_EQ(d.cls, DecodeClass::kL4);
  EXPECT_ANOMS(d.m, 0);
  EXPECT_EQ(d.m.ip_proto, 17);
  EXPECT_EQ(d.m.l4_offset, 14 + 40 + 8 + 16 + 24);
  EXPECT_EQ(d.m.src_port, 546);
  EXPECT_EQ(d.m.dst_port, 547);
  EXPECT_EQ(d.m.payload_len, 5);
  EXPECT_EQ(d.m.ip_len, 40 + chain.size());
}

TEST(DecoderTest, Ipv6AuthenticationHeaderLength) {
  // AH length 4 -> (4+2)*4 = 24 bytes.
  const Bytes f = Cat({Eth(0x86DD), Ipv6(51, Cat({AhExt(6, 4), Tcp({})}))});
  const Decoded d = DecodeBytes(f);
  ASSERT_EQ(d.cls, DecodeClass::kL4);
  EXPECT_EQ(d.m.l4_offset, 14 + 40 + 24);
  EXPECT_EQ(d.m.ip_proto, 6);
}

TEST(DecoderTest, Ipv6MobilityHipShim6AreExtensionHeaders) {
  for (uint8_t nh : {uint8_t{135}, uint8_t{139}, uint8_t{140}}) {
    const Decoded d = DecodeBytes(Cat({Eth(0x86DD), Ipv6(nh, Cat({Ext(17, 1), Udp(7, 9, {})}))}));
    ASSERT_EQ(d.cls, DecodeClass::kL4) << int(nh);
    EXPECT_EQ(d.m.ip_proto, 17);
    EXPECT_EQ(d.m.l4_offset, 14 + 40 + 16);
    EXPECT_EQ(d.m.dst_port, 9);
  }
}

TEST(DecoderTest, Ipv6EspIsOpaque) {
  const Decoded d = DecodeBytes(Cat({Eth(0x86DD), Ipv6(0, Cat({Ext(50), Payload(32)}))}));
  ASSERT_EQ(d.cls, DecodeClass::kL3);
  EXPECT_EQ(d.m.ip_proto, 50);
  EXPECT_EQ(d.m.payload_offset, 14 + 48);
  EXPECT_EQ(d.m.payload_len, 32);
}

TEST(DecoderTest, Ipv6FirstFragment) {
  Bytes udp = Udp(5000, 5001, Payload(40));
  Set16(udp, 4, 3000);  // whole datagram's UDP length
  const Bytes f = Cat({Eth(0x86DD), Ipv6(44, Cat({FragExt(17, 0, true), udp}))});
  const Decoded d = DecodeBytes(f);
  ASSERT_EQ(d.cls, DecodeClass::kL4);
  EXPECT_ANOMS(d.m, 0);
  EXPECT_TRUE(d.m.fragment);
  EXPECT_TRUE(d.m.first_fragment);
  EXPECT_EQ(d.m.ip_proto, 17);
  EXPECT_EQ(d.m.l4_offset, 14 + 40 + 8);
  EXPECT_EQ(d.m.src_port, 5000);
  EXPECT_EQ(d.m.payload_len, 40);
}

TEST(DecoderTest, Ipv6AtomicFragmentChecksUdpLength) {
  // Offset 0, M clear: a complete datagram, so the UDP length must fit.
  Bytes udp = Udp(5000, 5001, Payload(4));
  Set16(udp, 4, 100);
  const Decoded d = DecodeBytes(Cat({Eth(0x86DD), Ipv6(44, Cat({FragExt(17, 0, false), udp}))}));
  EXPECT_EQ(d.cls, DecodeClass::kMalformed);
  EXPECT_ANOMS(d.m, kAnomUdpBadLen);
  EXPECT_TRUE(d.m.fragment);
  EXPECT_TRUE(d.m.first_fragment);
}

TEST(DecoderTest, Ipv6NonFirstFragment) {
  const Bytes f =
      Cat({Eth(0x86DD), Ipv6(0, Cat({Ext(44), FragExt(6, 100, true), Tcp(Payload(3))}))});
  const Decoded d = DecodeBytes(f);
  ASSERT_EQ(d.cls, DecodeClass::kL3);
  EXPECT_ANOMS(d.m, 0);
  EXPECT_TRUE(d.m.fragment);
  EXPECT_FALSE(d.m.first_fragment);
  EXPECT_EQ(d.m.ip_proto, 6);
  EXPECT_EQ(d.m.src_port, 0);
  EXPECT_EQ(d.m.l4_offset, 0);
  EXPECT_EQ(d.m.payload_offset, 14 + 40 + 8 + 8);
  EXPECT_EQ(d.m.payload_len, 23);
}

TEST(DecoderTest, Ipv6ExtensionHeaderTruncated) {
  // Routing header claims 3*8 = 24 bytes; only 16 bytes of payload exist.
  Bytes ext = Ext(17, 2);
  ext.resize(16);
  Decoded d = DecodeBytes(Cat({Eth(0x86DD), Ipv6(43, ext)}));
  EXPECT_EQ(d.cls, DecodeClass::kMalformed);
  EXPECT_ANOMS(d.m, kAnomIpv6ExtTruncated);

  // Fewer than 8 bytes for a fragment header.
  d = DecodeBytes(Cat({Eth(0x86DD), Ipv6(44, Bytes{17, 0, 0, 0})}));
  EXPECT_EQ(d.cls, DecodeClass::kMalformed);
  EXPECT_ANOMS(d.m, kAnomIpv6ExtTruncated);

  // The extension header fits the frame but not the declared payload (rest is padding).
  Bytes f = Cat({Eth(0x86DD), Ipv6(60, Cat({Ext(17, 1), Udp(1, 2, {})}))});
  Set16(f, 14 + 4, 8);  // payload length 8: the 16-byte header runs past it
  d = DecodeBytes(f);
  EXPECT_EQ(d.cls, DecodeClass::kMalformed);
  EXPECT_ANOMS(d.m, kAnomIpv6ExtTruncated | kAnomEthPadding);
}

TEST(DecoderTest, Ipv6TooManyExtensionHeaders) {
  auto chain = [](int n) {
    Bytes rest;
    for (int i = 0; i < n; ++i) {
      const Bytes e = Ext(i + 1 == n ? 17 : 60);
      rest.insert(rest.end(), e.begin(), e.end());
    }
    const Bytes u = Udp(1, 2, {});
    rest.insert(rest.end(), u.begin(), u.end());
    return Cat({Eth(0x86DD), Ipv6(60, rest)});
  };
  Decoded d = DecodeBytes(chain(kMaxIpv6Ext));
  ASSERT_EQ(d.cls, DecodeClass::kL4);
  EXPECT_EQ(d.m.l4_offset, 14 + 40 + 8 * kMaxIpv6Ext);

  d = DecodeBytes(chain(kMaxIpv6Ext + 1));
  EXPECT_EQ(d.cls, DecodeClass::kMalformed);
  EXPECT_ANOMS(d.m, kAnomIpv6TooManyExt);
}

TEST(DecoderTest, Ipv6NoNextHeader) {
  Decoded d = DecodeBytes(Cat({Eth(0x86DD), Ipv6(59, {})}));  // payload length 0 is fine here
  ASSERT_EQ(d.cls, DecodeClass::kL3);
  EXPECT_ANOMS(d.m, 0);
  EXPECT_EQ(d.m.ip_proto, 59);
  EXPECT_EQ(d.m.ip_len, 40);
  EXPECT_EQ(d.m.payload_len, 0);

  d = DecodeBytes(Cat({Eth(0x86DD), Ipv6(60, Ext(59))}));
  ASSERT_EQ(d.cls, DecodeClass::kL3);
  EXPECT_EQ(d.m.ip_proto, 59);
  EXPECT_EQ(d.m.payload_offset, 14 + 48);
}

TEST(DecoderTest, Ipv6BadPayloadLengthAndVersion) {
  Decoded d = DecodeBytes(Cat({Eth(0x86DD), Ipv6(6, Tcp({}), +1)}));
  EXPECT_EQ(d.cls, DecodeClass::kMalformed);
  EXPECT_ANOMS(d.m, kAnomIpv6BadPayloadLen);

  d = DecodeBytes(Cat({Eth(0x86DD), Ipv6(6, Tcp({}), -20)}));  // zero, not "no next header": jumbo
  EXPECT_EQ(d.cls, DecodeClass::kMalformed);
  EXPECT_ANOMS(d.m, kAnomIpv6BadPayloadLen);

  Bytes f = Cat({Eth(0x86DD), Ipv6(6, Tcp({}))});
  f[14] = 0x45;
  d = DecodeBytes(f);
  EXPECT_EQ(d.cls, DecodeClass::kMalformed);
  EXPECT_ANOMS(d.m, kAnomIpv6BadVersion);
}

TEST(DecoderTest, Icmpv6Echo) {
  Decoded d = DecodeBytes(Cat({Eth(0x86DD), Ipv6(58, Icmp(129, 0, 0x4242, 3, Payload(8)))}));
  ASSERT_EQ(d.cls, DecodeClass::kL4);
  EXPECT_EQ(d.m.icmp_type, 129);
  EXPECT_EQ(d.m.src_port, 0x4242);
  EXPECT_EQ(d.m.dst_port, 0x4242);
  EXPECT_EQ(d.m.payload_len, 8);

  d = DecodeBytes(Cat({Eth(0x86DD), Ipv6(58, Icmp(135, 0, 0, 0, Payload(16)))}));  // neighbour sol.
  ASSERT_EQ(d.cls, DecodeClass::kL4);
  EXPECT_EQ(d.m.icmp_type, 135);
  EXPECT_EQ(d.m.src_port, 0);
}

TEST(DecoderTest, Ipv6PaddingIsReported) {
  Bytes f = Cat({Eth(0x86DD), Ipv6(17, Udp(1, 2, {}))});
  f.resize(f.size() + 6, 0);
  const Decoded d = DecodeBytes(f);
  ASSERT_EQ(d.cls, DecodeClass::kL4);
  EXPECT_ANOMS(d.m, kAnomEthPadding);
  EXPECT_EQ(d.m.ip_len, 48);
}

// ---- misc -------------------------------------------------------------------------------------

TEST(DecoderTest, MetaIsFullyReinitialised) {
  PacketMeta m;
  std::memset(&m, 0xA5, sizeof(m));
  const Bytes arp = Cat({Eth(0x0806), Payload(28)});
  ASSERT_EQ(Decode(std::span<const uint8_t>(arp), &m), DecodeClass::kL2);
  PacketMeta zero;
  std::memset(&zero, 0, sizeof(zero));
  zero.ether_type = 0x0806;
  zero.l3_offset = 14;
  // Decode memsets the whole struct, padding included, so bytes compare.
  EXPECT_EQ(std::memcmp(&m, &zero, sizeof(m)), 0);  // NOLINT(bugprone-suspicious-memory-comparison)

  // A TCP frame followed by a truncated one: nothing of the first survives.
  const Bytes tcp = Ipv4TcpFrame();
  ASSERT_EQ(Decode(std::span<const uint8_t>(tcp), &m), DecodeClass::kL4);
  ASSERT_EQ(Decode(std::span<const uint8_t>(tcp.data(), 5), &m), DecodeClass::kMalformed);
  std::memset(&zero, 0, sizeof(zero));
  zero.anomalies = kAnomEthTruncated;
  // Decode memsets the whole struct, padding included, so bytes compare.
  EXPECT_EQ(std::memcmp(&m, &zero, sizeof(m)), 0);  // NOLINT(bugprone-suspicious-memory-comparison)
}

TEST(DecoderTest, OversizedFrameKeepsOffsetsInRange) {
  // The decoder looks at the first 65535 bytes only.
  Bytes f = Cat({Eth(0x0800), Ipv4(17, Udp(1, 2, Payload(65535 - 14 - 28)))});
  ASSERT_EQ(f.size(), 65535u);
  f.resize(70000, 0);
  const Decoded d = DecodeBytes(f);
  ASSERT_EQ(d.cls, DecodeClass::kL4);
  EXPECT_EQ(d.m.ip_len, 65535 - 14);
  EXPECT_EQ(d.m.payload_offset + d.m.payload_len, 65535);
  CheckInvariants(f, d.cls, d.m);
}

TEST(DecoderTest, AnomalyNames) {
  std::set<std::string> names;
  int bits = 0;
  for (int i = 0; i < 32; ++i) {
    const std::string name = DecodeAnomalyName(1u << i);
    if (name == "unknown") continue;
    ++bits;
    names.insert(name);
  }
  EXPECT_EQ(bits, 18);
  EXPECT_EQ(names.size(), 18u);  // all distinct
  EXPECT_STREQ(DecodeAnomalyName(kAnomEthTruncated), "eth.truncated");
  EXPECT_STREQ(DecodeAnomalyName(kAnomVlanTooDeep), "vlan.too_deep");
  EXPECT_STREQ(DecodeAnomalyName(kAnomIpv4BadTotalLen), "ipv4.bad_total_len");
  EXPECT_STREQ(DecodeAnomalyName(kAnomIpv6TooManyExt), "ipv6.too_many_ext");
  EXPECT_STREQ(DecodeAnomalyName(kAnomUdpBadLen), "udp.bad_len");
  EXPECT_STREQ(DecodeAnomalyName(kAnomEthPadding), "eth.padding");
  EXPECT_STREQ(DecodeAnomalyName(0), "unknown");
  EXPECT_STREQ(DecodeAnomalyName(kAnomTcpTruncated | kAnomUdpTruncated), "unknown");
}

// ---- robustness -------------------------------------------------------------------------------

TEST(DecoderTest, RandomAndMutatedFramesStayInBounds) {
  const std::vector<Bytes> templates = {
      Ipv4TcpFrame(20),
      Cat({Eth(0x0800, {{0x8100, 5}}), Ipv4(17, Udp(53, 53, Payload(12)))}),
      Cat({Eth(0x0800), Ipv4(1, Icmp(8, 0, 1, 1, Payload(8)))}),
      Cat({Eth(0x86DD, {{0x88a8, 1}, {0x8100, 2}}), Ipv6(6, Tcp(Payload(9)))}),
      Cat({Eth(0x86DD), Ipv6(0, Cat({Ext(60), Ext(43, 1), Ext(44), FragExt(17, 0, true),
                                     Udp(1, 2, Payload(4))}))}),
      Cat({Eth(0x86DD), Ipv6(51, Cat({AhExt(58, 1), Icmp(128, 0, 9, 9, {})}))}),
      Cat({Eth(0x0800, {{0x8100, 1}, {0x8100, 2}, {0x8100, 3}}), Ipv4(6, Tcp({}))}),
      Cat({Eth(0x86DD), Ipv6(60, Cat({Ext(60), Ext(60), Ext(60), Ext(60), Ext(60), Ext(60), Ext(60),
                                      Ext(60), Ext(17), Udp(1, 2, {})}))}),
  };
  static constexpr uint16_t kTypes[] = {0x0800, 0x86DD, 0x8100, 0x88a8, 0x9100, 0x0806};
  std::mt19937 rng(0x5eed1234);
  auto rnd = [&](uint32_t n) { return static_cast<uint32_t>(rng() % n); };

  int classes[4] = {};
  std::set<uint32_t> seen_anomalies;
  PacketMeta dirty;
  for (int iter = 0; iter < 200000; ++iter) {
    Bytes f;
    if (iter % 4 == 0) {
      // Random bytes behind a plausible ethertype.
      f.resize(rnd(160));
      for (uint8_t& b : f) b = static_cast<uint8_t>(rng());
      if (f.size() >= 14) Set16(f, 12, kTypes[rnd(6)]);
      if (f.size() >= 15 && rnd(2)) f[14] = static_cast<uint8_t>((rnd(2) ? 0x40 : 0x60) | rnd(16));
    } else {
      f = templates[rnd(static_cast<uint32_t>(templates.size()))];
      const uint32_t flips = 1 + rnd(6);
      for (uint32_t i = 0; i < flips; ++i) {
        // Mostly in the headers, where the decoder looks.
        const uint32_t limit = static_cast<uint32_t>(std::min<size_t>(f.size(), 100));
        f[rnd(limit)] = static_cast<uint8_t>(rng());
      }
      switch (rnd(4)) {
        case 0:
          f.resize(rnd(static_cast<uint32_t>(f.size()) + 1));
          break;
        case 1:
          f.resize(f.size() + rnd(40), static_cast<uint8_t>(rng()));
          break;
        default:
          break;
      }
    }
    const std::span<const uint8_t> span(f.data(), f.size());
    PacketMeta clean;
    const DecodeClass cls = Decode(span, &clean);
    CheckInvariants(f, cls, clean);
    if (::testing::Test::HasFatalFailure()) {
      ADD_FAILURE() << "iteration " << iter << " size " << f.size();
      return;
    }
    // Same answer whatever *meta held before.
    std::memset(&dirty, static_cast<int>(iter & 0xFF), sizeof(dirty));
    ASSERT_EQ(Decode(span, &dirty), cls);
    // NOLINTNEXTLINE(bugprone-suspicious-memory-comparison): Decode memsets padding too.
    ASSERT_EQ(std::memcmp(&dirty, &clean, sizeof(clean)), 0) << "iteration " << iter;
    ++classes[static_cast<int>(cls)];
    for (int i = 0; i < 32; ++i)
      if (clean.anomalies & (1u << i)) seen_anomalies.insert(1u << i);
  }
  // The generator must reach every class and most anomalies, or it is testing nothing.
  for (int c = 0; c < 4; ++c) EXPECT_GT(classes[c], 100) << "class " << c;
  EXPECT_EQ(seen_anomalies.size(), 18u);
}

}  // namespace
}  // namespace vigil::dp
