// Frame decoder. See decoder.h.
//
// Cost model (per packet, hot path): one 80-byte memset, then a straight walk over the headers
// with at most a handful of 16/32-bit loads each. Every length comparison is done in uint32_t
// against `end` (the last byte the current layer may read), so no read can go past the span and
// no arithmetic can wrap. Error exits are marked [[unlikely]] so the common path is fall-through.
//
// Conventions, beyond what decoder.h states:
//  - The decoder looks at no more than the first 65535 bytes of a frame (an rte_mbuf segment's
//    data_len is 16 bits), so every offset and length fits the uint16_t fields of PacketMeta.
//    The whole frame must be contiguous: an IP length larger than the span is kMalformed.
//  - l3_offset is the first byte after the innermost ethertype, for every frame that has a
//    complete L2 header (kL2 included: for ARP it is where the ARP header starts).
//  - For kL3 frames (non-first fragment, or a protocol without ports) payload_offset and
//    payload_len describe the opaque bytes after the last IP header, inside the datagram.
//  - On kMalformed, fields decoded before the failing check keep their values; the rest are 0.
//  - UDP in a fragment that has more fragments: the UDP length covers the reassembled datagram,
//    so it is only checked against 8; payload_len is what this fragment carries.
#include "dataplane/packet/decoder.h"

#include <bit>
#include <cstddef>
#include <cstring>

#if defined(__AVX__)
#include <immintrin.h>
#endif

namespace vigil::dp {
namespace {

// Four address bytes as they lie in memory (no byte swap).
inline uint32_t Load32Raw(const uint8_t* p) noexcept {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Writes ::ffff:src then ::ffff:dst (32 bytes) to `out` in one store.
inline void StoreMappedV4Pair(uint8_t* out, uint32_t src, uint32_t dst) noexcept {
  static_assert(std::endian::native == std::endian::little, "word layout below is little-endian");
  // Bytes 8..15 of an IPv4-mapped address: 00 00 ff ff a b c d (little-endian word).
  const uint64_t s = 0xFFFF0000ull | uint64_t{src} << 32;
  const uint64_t d = 0xFFFF0000ull | uint64_t{dst} << 32;
#if defined(__AVX__)
  const __m256i v = _mm256_set_epi64x(static_cast<long long>(d), 0, static_cast<long long>(s), 0);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), v);
#else
  const uint64_t words[4] = {0, s, 0, d};
  std::memcpy(out, words, sizeof(words));
#endif
}

constexpr uint32_t kMaxFrameLen = 0xFFFF;
constexpr uint32_t kEthHdrLen = 14;
constexpr uint32_t kVlanTagLen = 4;
constexpr uint32_t kIpv4MinHdrLen = 20;
constexpr uint32_t kIpv6HdrLen = 40;
constexpr uint32_t kIpv6MinExtLen = 8;
constexpr uint32_t kTcpMinHdrLen = 20;
constexpr uint32_t kUdpHdrLen = 8;
constexpr uint32_t kIcmpMinHdrLen = 4;
constexpr uint32_t kIcmpEchoHdrLen = 8;

constexpr uint16_t kEtherTypeIpv4 = 0x0800;
constexpr uint16_t kEtherTypeIpv6 = 0x86DD;
constexpr uint16_t kEtherTypeVlan = 0x8100;
constexpr uint16_t kEtherTypeQinQ = 0x88A8;
constexpr uint16_t kEtherTypeQinQOld = 0x9100;

constexpr uint8_t kProtoHopByHop = 0;
constexpr uint8_t kProtoIcmp = 1;
constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;
constexpr uint8_t kProtoRouting = 43;
constexpr uint8_t kProtoFragment = 44;
constexpr uint8_t kProtoAh = 51;
constexpr uint8_t kProtoIcmpv6 = 58;
constexpr uint8_t kProtoNoNext = 59;
constexpr uint8_t kProtoDstOpts = 60;
constexpr uint8_t kProtoMobility = 135;
constexpr uint8_t kProtoHip = 139;
constexpr uint8_t kProtoShim6 = 140;

constexpr uint8_t kIcmpEchoReply = 0;
constexpr uint8_t kIcmpEchoRequest = 8;
constexpr uint8_t kIcmpv6EchoRequest = 128;
constexpr uint8_t kIcmpv6EchoReply = 129;

// Big-endian loads: memcpy (one unaligned mov) + bswap (one instruction); never a pointer cast.
inline uint16_t Load16(const uint8_t* p) noexcept {
  uint16_t v;
  std::memcpy(&v, p, sizeof(v));
  if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap16(v);
  return v;
}

inline uint32_t Load32(const uint8_t* p) noexcept {
  uint32_t v;
  std::memcpy(&v, p, sizeof(v));
  if constexpr (std::endian::native == std::endian::little) v = __builtin_bswap32(v);
  return v;
}

inline bool IsVlanTpid(uint16_t et) noexcept {
  return et == kEtherTypeVlan || et == kEtherTypeQinQ || et == kEtherTypeQinQOld;
}

inline DecodeClass Malformed(PacketMeta& m, uint32_t anomaly) noexcept {
  m.anomalies |= anomaly;
  return DecodeClass::kMalformed;
}

// No usable L4 key: the bytes in [off, end) are opaque payload.
inline DecodeClass Opaque(PacketMeta& m, uint32_t off, uint32_t end) noexcept {
  m.payload_offset = static_cast<uint16_t>(off);
  m.payload_len = static_cast<uint16_t>(end - off);
  return DecodeClass::kL3;
}

// Decodes the upper-layer header at p[l4, end). `partial`: this is a first fragment with more
// fragments to come, so the L4 length fields describe more than is present.
DecodeClass DecodeL4(const uint8_t* p, uint32_t l4, uint32_t end, bool partial,
                     PacketMeta& m) noexcept {
  const uint32_t avail = end - l4;
  const uint8_t* h = p + l4;
  switch (m.ip_proto) {
    case kProtoTcp: {
      // A first fragment may legally end inside the TCP header (RFC 1858's "tiny fragment"):
      // opaque here, the defragmenter puts the header together.
      if (avail < kTcpMinHdrLen) [[unlikely]]
        return partial ? Opaque(m, l4, end) : Malformed(m, kAnomTcpTruncated);
      const uint32_t doff = static_cast<uint32_t>(h[12] >> 4) * 4;
      if (doff < kTcpMinHdrLen) [[unlikely]]
        return Malformed(m, kAnomTcpBadOffset);
      if (doff > avail) [[unlikely]]
        return partial ? Opaque(m, l4, end) : Malformed(m, kAnomTcpTruncated);
      m.src_port = Load16(h);
      m.dst_port = Load16(h + 2);
      m.tcp_seq = Load32(h + 4);
      m.tcp_ack = Load32(h + 8);
      m.tcp_flags = h[13];
      m.tcp_window = Load16(h + 14);
      m.l4_offset = static_cast<uint16_t>(l4);
      m.payload_offset = static_cast<uint16_t>(l4 + doff);
      m.payload_len = static_cast<uint16_t>(avail - doff);
      return DecodeClass::kL4;
    }
    case kProtoUdp: {
      if (avail < kUdpHdrLen) [[unlikely]]
        return partial ? Opaque(m, l4, end) : Malformed(m, kAnomUdpTruncated);
      const uint32_t ulen = Load16(h + 4);
      if (ulen < kUdpHdrLen || (!partial && ulen > avail)) [[unlikely]]
        return Malformed(m, kAnomUdpBadLen);
      m.src_port = Load16(h);
      m.dst_port = Load16(h + 2);
      m.l4_offset = static_cast<uint16_t>(l4);
      m.payload_offset = static_cast<uint16_t>(l4 + kUdpHdrLen);
      m.payload_len = static_cast<uint16_t>((partial ? avail : ulen) - kUdpHdrLen);
      return DecodeClass::kL4;
    }
    case kProtoIcmp:
    case kProtoIcmpv6: {
      // ICMP belongs to IPv4 and ICMPv6 to IPv6; the crossed cases are opaque.
      if ((m.ip_proto == kProtoIcmp) != (m.ip_version == 4)) [[unlikely]]
        return Opaque(m, l4, end);
      if (avail < kIcmpMinHdrLen) [[unlikely]]
        return partial ? Opaque(m, l4, end) : Malformed(m, kAnomIcmpTruncated);
      const uint8_t type = h[0];
      const bool echo = m.ip_version == 4
                            ? (type == kIcmpEchoRequest || type == kIcmpEchoReply)
                            : (type == kIcmpv6EchoRequest || type == kIcmpv6EchoReply);
      if (echo) {
        if (avail < kIcmpEchoHdrLen) [[unlikely]]
          return partial ? Opaque(m, l4, end) : Malformed(m, kAnomIcmpTruncated);
        const uint16_t id = Load16(h + 4);
        m.src_port = id;
        m.dst_port = id;
      }
      m.icmp_type = type;
      m.icmp_code = h[1];
      m.l4_offset = static_cast<uint16_t>(l4);
      // Every ICMP/ICMPv6 header is 8 bytes (type, code, checksum, 4 type-specific bytes); a
      // non-echo message with only 4..7 bytes has an empty payload at its end.
      const uint32_t hdr = avail < kIcmpEchoHdrLen ? avail : kIcmpEchoHdrLen;
      m.payload_offset = static_cast<uint16_t>(l4 + hdr);
      m.payload_len = static_cast<uint16_t>(avail - hdr);
      return DecodeClass::kL4;
    }
    default:
      return Opaque(m, l4, end);
  }
}

DecodeClass DecodeIpv4(const uint8_t* p, uint32_t l3, uint32_t len, PacketMeta& m) noexcept {
  const uint32_t avail = len - l3;
  const uint8_t* h = p + l3;
  if (avail < kIpv4MinHdrLen) [[unlikely]]
    return Malformed(m, kAnomIpv4Truncated);
  if ((h[0] >> 4) != 4) [[unlikely]]
    return Malformed(m, kAnomIpv4BadVersion);
  const uint32_t ihl = static_cast<uint32_t>(h[0] & 0x0F) * 4;
  if (ihl < kIpv4MinHdrLen) [[unlikely]]
    return Malformed(m, kAnomIpv4BadIhl);
  if (ihl > avail) [[unlikely]]
    return Malformed(m, kAnomIpv4Truncated);
  const uint32_t total = Load16(h + 2);
  if (total < ihl || total > avail) [[unlikely]]
    return Malformed(m, kAnomIpv4BadTotalLen);
  if (total < avail) m.anomalies |= kAnomEthPadding;

  m.ip_version = 4;
  m.ip_proto = h[9];
  m.ip_len = static_cast<uint16_t>(total);
  // IPv4-mapped: ::ffff:a.b.c.d. Source and destination (adjacent in PacketMeta) are built in a
  // register and written with one 32-byte store: the flow key reads them right away with one
  // 32-byte load, and a load that spans several smaller recent stores cannot be forwarded from
  // the store buffer (a ~15-cycle stall per packet, seen in the benchmark profile).
  StoreMappedV4Pair(m.src_addr, Load32Raw(h + 12), Load32Raw(h + 16));

  const uint16_t frag = Load16(h + 6);
  const bool more = (frag & 0x2000) != 0;
  const uint16_t frag_off = frag & 0x1FFF;
  m.fragment = more || frag_off != 0;
  m.first_fragment = m.fragment && frag_off == 0;

  const uint32_t l4 = l3 + ihl;
  const uint32_t end = l3 + total;
  if (frag_off != 0) return Opaque(m, l4, end);  // non-first fragment: no L4 header
  return DecodeL4(p, l4, end, more, m);
}

DecodeClass DecodeIpv6(const uint8_t* p, uint32_t l3, uint32_t len, PacketMeta& m) noexcept {
  const uint32_t avail = len - l3;
  const uint8_t* h = p + l3;
  if (avail < kIpv6HdrLen) [[unlikely]]
    return Malformed(m, kAnomIpv6Truncated);
  if ((h[0] >> 4) != 6) [[unlikely]]
    return Malformed(m, kAnomIpv6BadVersion);
  const uint32_t plen = Load16(h + 4);
  uint8_t nh = h[6];
  // Jumbograms (payload length 0 + hop-by-hop jumbo option) are not supported: a zero payload
  // length is only valid with "no next header".
  if (plen > avail - kIpv6HdrLen || (plen == 0 && nh != kProtoNoNext)) [[unlikely]]
    return Malformed(m, kAnomIpv6BadPayloadLen);
  if (plen < avail - kIpv6HdrLen) m.anomalies |= kAnomEthPadding;

  m.ip_version = 6;
  m.ip_len = static_cast<uint16_t>(kIpv6HdrLen + plen);
  std::memcpy(m.src_addr, h + 8, 32);  // source and destination in one store (see IPv4)

  const uint32_t end = l3 + kIpv6HdrLen + plen;
  uint32_t off = l3 + kIpv6HdrLen;
  bool partial = false;
  // At most kMaxIpv6Ext + 1 iterations; each is a switch on nh plus two bounds checks.
  for (int n_ext = 0;; ++n_ext) {
    switch (nh) {
      case kProtoHopByHop:
      case kProtoRouting:
      case kProtoFragment:
      case kProtoAh:
      case kProtoDstOpts:
      case kProtoMobility:
      case kProtoHip:
      case kProtoShim6:
        break;
      default:  // upper layer (or ESP / no next header, which are opaque)
        m.ip_proto = nh;
        return DecodeL4(p, off, end, partial, m);
    }
    if (n_ext == kMaxIpv6Ext) [[unlikely]]
      return Malformed(m, kAnomIpv6TooManyExt);
    // Every extension header is at least 8 bytes (AH's minimum is 12 but 8 covers its fields).
    if (end - off < kIpv6MinExtLen) [[unlikely]]
      return Malformed(m, kAnomIpv6ExtTruncated);
    const uint8_t* e = p + off;
    uint32_t elen;
    if (nh == kProtoFragment) {
      elen = 8;
      const uint16_t fo = Load16(e + 2);
      const uint16_t frag_off = fo >> 3;
      m.fragment = true;
      m.first_fragment = frag_off == 0;
      if (frag_off != 0) {  // non-first fragment: no L4 header
        m.ip_proto = e[0];
        return Opaque(m, off + elen, end);
      }
      partial = (fo & 1) != 0;
    } else if (nh == kProtoAh) {
      elen = (static_cast<uint32_t>(e[1]) + 2) * 4;
    } else {
      elen = (static_cast<uint32_t>(e[1]) + 1) * 8;
    }
    if (elen > end - off) [[unlikely]]
      return Malformed(m, kAnomIpv6ExtTruncated);
    nh = e[0];
    off += elen;
  }
}

}  // namespace

DecodeClass Decode(std::span<const uint8_t> frame, PacketMeta* meta) noexcept {
  // memset rather than `*meta = {}` so the struct's padding is defined too (callers may hash or
  // compare the whole struct). 80 bytes: a few vector stores.
  std::memset(meta, 0, sizeof(*meta));
  PacketMeta& m = *meta;
  const uint8_t* p = frame.data();
  const uint32_t len =
      frame.size() > kMaxFrameLen ? kMaxFrameLen : static_cast<uint32_t>(frame.size());
  if (len < kEthHdrLen) [[unlikely]]
    return Malformed(m, kAnomEthTruncated);

  uint16_t et = Load16(p + 12);
  uint32_t off = kEthHdrLen;
  while (IsVlanTpid(et)) {
    if (m.vlan_count == kMaxVlans) [[unlikely]] {
      // Too deep: forward untouched; ether_type is the TPID of the first undecoded tag.
      m.anomalies |= kAnomVlanTooDeep;
      m.ether_type = et;
      m.l3_offset = static_cast<uint16_t>(off);
      return DecodeClass::kL2;
    }
    if (len - off < kVlanTagLen) [[unlikely]] {
      m.ether_type = et;
      return Malformed(m, kAnomVlanTruncated);
    }
    m.vlan[m.vlan_count++] = Load16(p + off) & 0x0FFF;
    et = Load16(p + off + 2);
    off += kVlanTagLen;
  }
  m.ether_type = et;
  m.l3_offset = static_cast<uint16_t>(off);

  if (et == kEtherTypeIpv4) return DecodeIpv4(p, off, len, m);
  if (et == kEtherTypeIpv6) return DecodeIpv6(p, off, len, m);
  return DecodeClass::kL2;
}

const char* DecodeAnomalyName(uint32_t bit) noexcept {
  switch (bit) {
    case kAnomEthTruncated:
      return "eth.truncated";
    case kAnomVlanTruncated:
      return "vlan.truncated";
    case kAnomVlanTooDeep:
      return "vlan.too_deep";
    case kAnomIpv4Truncated:
      return "ipv4.truncated";
    case kAnomIpv4BadVersion:
      return "ipv4.bad_version";
    case kAnomIpv4BadIhl:
      return "ipv4.bad_ihl";
    case kAnomIpv4BadTotalLen:
      return "ipv4.bad_total_len";
    case kAnomIpv6Truncated:
      return "ipv6.truncated";
    case kAnomIpv6BadVersion:
      return "ipv6.bad_version";
    case kAnomIpv6BadPayloadLen:
      return "ipv6.bad_payload_len";
    case kAnomIpv6ExtTruncated:
      return "ipv6.ext_truncated";
    case kAnomIpv6TooManyExt:
      return "ipv6.too_many_ext";
    case kAnomTcpTruncated:
      return "tcp.truncated";
    case kAnomTcpBadOffset:
      return "tcp.bad_offset";
    case kAnomUdpTruncated:
      return "udp.truncated";
    case kAnomUdpBadLen:
      return "udp.bad_len";
    case kAnomIcmpTruncated:
      return "icmp.truncated";
    case kAnomEthPadding:
      return "eth.padding";
    default:
      return "unknown";
  }
}

}  // namespace vigil::dp
