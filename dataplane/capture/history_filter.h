// Which packets a packet-history export selects (the parameters of Darktrace's /pcaps and of
// `vigilctl pcap`): a host (required), optionally the peer it talks to, a port on either side,
// and the IP protocol. Plus the parsers for the textual forms of those parameters and of times,
// shared by the standalone tool, the command protocol and vigilctl.
//
// Thread: any. Matching never allocates or blocks; the parsers allocate nothing either.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "dataplane/packet/decoder.h"

namespace vigil::dp {

struct HistoryFilter {
  uint8_t host[16] = {};  // IPv4 as ::ffff:a.b.c.d (as PacketMeta)
  bool has_peer = false;
  uint8_t peer[16] = {};
  uint16_t port = 0;  // 0: any; otherwise the TCP or UDP port on either side
  uint8_t proto = 0;  // 0: any; 6 TCP, 17 UDP (any IP protocol number works)

  // True when the frame is IP, one of its addresses is `host` and the other is `peer` (when
  // given), and the protocol and port match. A frame without ports (a non-first fragment, a
  // protocol without ports, headers cut by the snaplen) matches only when no port is asked for.
  bool Matches(const PacketMeta& meta, DecodeClass cls) const noexcept;
  // Decodes (DecodeCaptured) and matches.
  bool MatchesFrame(std::span<const uint8_t> frame, uint32_t wire_len) const noexcept;
  std::string ToString() const;  // "host 10.0.0.1 peer 10.0.0.2 port 445 proto 6"
};

// Decode() for a frame that may have been cut at the snaplen (`frame.size() < wire_len`): the
// IP and UDP length fields are clipped to the bytes present (in a copy of the headers) so that
// addresses, protocol and ports still decode. Same as Decode() when nothing was cut.
DecodeClass DecodeCaptured(std::span<const uint8_t> frame, uint32_t wire_len,
                           PacketMeta* meta) noexcept;

// "10.0.0.1" or "2001:db8::1" into 16 bytes (IPv4 mapped). False when not an address.
bool ParseHistoryAddress(std::string_view text, uint8_t out[16]) noexcept;
// The textual form of a 16-byte address (dotted quad for IPv4-mapped).
std::string FormatHistoryAddress(const uint8_t addr[16]);
// "tcp", "udp", "icmp", "icmpv6" or a number 0..255.
bool ParseHistoryProto(std::string_view text, uint8_t* out) noexcept;
// RFC 3339 ("2026-11-26T10:00:00Z", "2026-11-26T10:00:00.25+01:00", a space instead of the T)
// or unix seconds with an optional fraction ("1764151200", "1764151200.5") into ns since the
// epoch. False when neither.
bool ParseHistoryTime(std::string_view text, uint64_t* ns) noexcept;
// RFC 3339 in UTC with nanoseconds: "2026-11-26T10:00:00.000000000Z".
std::string FormatHistoryTime(uint64_t ns);

}  // namespace vigil::dp
