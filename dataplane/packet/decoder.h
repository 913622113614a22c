// Frame decoder: Ethernet, 802.1Q/802.1ad (QinQ), IPv4, IPv6 with extension headers, TCP, UDP,
// ICMP and ICMPv6. Works on a byte span (never an rte_mbuf) so it is unit-tested and fuzzed
// without DPDK. Every read is bounds-checked; no length field is trusted.
//
// Thread: any. Never blocks, never allocates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace vigil::dp {

// What the decoder could make of a frame. Only kL4 and kL3 frames are flow-tracked; every frame,
// whatever its class, is forwarded byte-for-byte unless a verdict drops it.
enum class DecodeClass : uint8_t {
  kL2,         // not IP (ARP, LLDP, STP, MPLS, ...): forwarded untouched, not tracked.
  kL3,         // IP with no usable L4 key: non-first fragment, or a protocol without ports
               // (GRE, ESP, SCTP, ...). Tracked with ports 0.
  kL4,         // IP with TCP, UDP, ICMP or ICMPv6 decoded.
  kMalformed,  // header inconsistent or truncated; see anomalies. Forwarded, counted, not tracked.
};

// Anomaly bits: set on the way through; several can be set on one frame.
enum DecodeAnomaly : uint32_t {
  kAnomEthTruncated = 1u << 0,       // frame shorter than an Ethernet header
  kAnomVlanTruncated = 1u << 1,      // VLAN tag cut off
  kAnomVlanTooDeep = 1u << 2,        // more than kMaxVlans tags: the rest is left undecoded
  kAnomIpv4Truncated = 1u << 3,      // fewer than 20 bytes, or fewer than IHL*4
  kAnomIpv4BadVersion = 1u << 4,     // ethertype says IPv4, version nibble does not
  kAnomIpv4BadIhl = 1u << 5,         // IHL < 5
  kAnomIpv4BadTotalLen = 1u << 6,    // total length < header length or > bytes present
  kAnomIpv6Truncated = 1u << 7,      // fewer than 40 bytes
  kAnomIpv6BadVersion = 1u << 8,     //
  kAnomIpv6BadPayloadLen = 1u << 9,  // payload length > bytes present
  kAnomIpv6ExtTruncated = 1u << 10,  // an extension header runs past the packet
  kAnomIpv6TooManyExt = 1u << 11,    // more than kMaxIpv6Ext extension headers
  kAnomTcpTruncated = 1u << 12,      // fewer than 20 bytes, or fewer than data offset*4
  kAnomTcpBadOffset = 1u << 13,      // data offset < 5
  kAnomUdpTruncated = 1u << 14,      // fewer than 8 bytes
  kAnomUdpBadLen = 1u << 15,         // UDP length < 8 or > bytes present
  kAnomIcmpTruncated = 1u << 16,     // fewer than 4 bytes (8 for echo)
  kAnomEthPadding = 1u << 17,        // bytes after the IP datagram (Ethernet padding): not an
                                     // error by itself, reported for statistics
};

inline constexpr int kMaxVlans = 2;
inline constexpr int kMaxIpv6Ext = 8;

// TCP flag bits as on the wire.
enum TcpFlag : uint8_t {
  kTcpFin = 0x01,
  kTcpSyn = 0x02,
  kTcpRst = 0x04,
  kTcpPsh = 0x08,
  kTcpAck = 0x10,
  kTcpUrg = 0x20,
  kTcpEce = 0x40,
  kTcpCwr = 0x80,
};

// The decoded view of one frame. Offsets are from the start of the frame. Addresses are 16 bytes;
// IPv4 addresses are stored IPv4-mapped (::ffff:a.b.c.d) so flow keys have one shape.
struct PacketMeta {
  uint8_t src_addr[16];  // dst_addr must follow src_addr directly: the decoder writes both at once
  uint8_t dst_addr[16];
  uint16_t src_port;         // TCP/UDP port; ICMP echo identifier for echo request/reply; else 0
  uint16_t dst_port;         // as src_port
  uint16_t vlan[kMaxVlans];  // VLAN ids (12 bits), outermost first
  uint8_t vlan_count;
  uint8_t ip_version;  // 4 or 6; 0 for kL2
  uint8_t ip_proto;    // final upper-layer protocol (after IPv6 extension headers)
  uint8_t tcp_flags;
  uint8_t icmp_type;
  uint8_t icmp_code;
  bool fragment;        // IPv4 MF/offset or an IPv6 fragment header
  bool first_fragment;  // fragment with offset 0 (has the L4 header)
  uint16_t ether_type;  // innermost ethertype
  uint16_t l3_offset;
  uint16_t l4_offset;       // 0 when no L4 header was decoded
  uint16_t payload_offset;  // first byte of L4 payload (TCP/UDP/ICMP data)
  uint16_t payload_len;     // L4 payload bytes inside the IP datagram (padding excluded)
  uint16_t ip_len;          // IP datagram length as declared and validated
  uint32_t tcp_seq;
  uint32_t tcp_ack;
  uint16_t tcp_window;
  uint32_t anomalies;  // DecodeAnomaly bits
};

static_assert(offsetof(PacketMeta, dst_addr) == offsetof(PacketMeta, src_addr) + 16);

// Decodes `frame` into `*meta` and returns its class. `*meta` is fully (re)initialised.
DecodeClass Decode(std::span<const uint8_t> frame, PacketMeta* meta) noexcept;

// Human name of one anomaly bit ("ipv4.bad_total_len"); "unknown" for anything else.
const char* DecodeAnomalyName(uint32_t bit) noexcept;

}  // namespace vigil::dp
