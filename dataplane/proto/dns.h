// DNS (RFC 1035 and its extensions) over UDP and TCP: one parser per flow, emitting one `dns`
// event per message in Suricata 8's EVE "version 3" shape, plus `anomaly` events.
//
// Transport is chosen by the entry point, not by a flag:
//  - OnDatagram(): one UDP datagram = one DNS message (parsed whole, up to 64 KiB).
//  - OnData()/OnGap(): a TCP byte stream of messages each preceded by a 2-byte big-endian length
//    (RFC 1035 4.2.2 / RFC 7766), split anywhere and possibly several per call.
// Probing likewise: ProbeUdp() takes one datagram, ProbeTcp() the first bytes of a TCP stream;
// Probe() is ProbeUdp() (the usual case) and TCP callers must call ProbeTcp().
//
// Thread: a parser belongs to one worker; every function is noexcept, never blocks, never
// allocates. Work per message is bounded by its size (name decoding is bounded by a label count,
// a pointer-hop count and an output length).
//
// Limits (see docs/events-parts/dns.md):
//  - TCP reassembly keeps at most kRequestBufferSize bytes of a to_server message and
//    kResponseBufferSize bytes of a to_client message; the rest of a longer message is skipped
//    and the event carries the records that lie wholly in the kept prefix (the same result
//    whatever the segmentation: whole messages in one call are cut the same way).
//  - Names are cut at kMaxNameLen characters (NAME_TOO_LONG), like Suricata.
//  - At most kMaxLoggedQueries queries and kMaxLoggedRecords records per section are logged;
//    the rest are still parsed and checked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "dataplane/proto/event.h"

namespace vigil::proto {

class DnsParser final : public AppParser {
 public:
  static constexpr size_t kRequestBufferSize = 1024;   // TCP to_server message prefix kept
  static constexpr size_t kResponseBufferSize = 4096;  // TCP to_client message prefix kept
  static constexpr size_t kMaxNameLen = 1025;          // Suricata's (and dnsmasq's) limit
  static constexpr int kMaxLoggedQueries = 32;
  static constexpr int kMaxLoggedRecords = 100;
  // Consecutive malformed messages in one direction after which MALFORMED_DATA anomalies stop
  // (until a well-formed message arrives): garbage on port 53 must not flood the event ring.
  static constexpr uint8_t kMaxMalformedRun = 8;

  DnsParser() noexcept = default;

  // One UDP datagram's payload.
  static ProbeResult ProbeUdp(Direction dir, std::span<const uint8_t> datagram) noexcept;
  // The first bytes of a TCP stream (length prefix included). kMaybe while the first message's
  // header and questions have not all arrived.
  static ProbeResult ProbeTcp(Direction dir, std::span<const uint8_t> first_bytes) noexcept;
  static ProbeResult Probe(Direction dir, std::span<const uint8_t> datagram) noexcept {
    return ProbeUdp(dir, datagram);
  }

  void OnData(Direction dir, std::span<const uint8_t> data, EventSink& sink) noexcept override;
  void OnGap(Direction dir, uint32_t missing_bytes, EventSink& sink) noexcept override;
  void OnDatagram(Direction dir, std::span<const uint8_t> data, EventSink& sink) noexcept override;

 private:
  // TCP framing state of one direction.
  struct TcpDir {
    uint8_t prefix[2] = {};
    uint8_t prefix_len = 0;  // bytes of the length prefix seen (0..2)
    bool damaged = false;    // a gap fell inside the current message: drop it when it ends
    bool lost_sync = false;  // a gap broke framing: wait for data that probes as a message
    uint16_t msg_len = 0;    // declared length of the current message (valid when prefix_len 2)
    uint16_t received = 0;   // bytes of the current message seen so far
    uint16_t kept = 0;       // bytes of it copied into the buffer
  };

  // Parses one whole message (or the kept prefix of a longer TCP one: `declared_len` is the
  // length on the wire) and emits its events.
  void HandleMessage(Direction dir, std::span<const uint8_t> msg, size_t declared_len,
                     EventSink& sink) noexcept;
  void Malformed(Direction dir, EventSink& sink) noexcept;
  uint8_t* Buffer(Direction dir) noexcept;
  static size_t BufferSize(Direction dir) noexcept;

  TcpDir tcp_[2];
  uint64_t tx_id_ = 0;  // Suricata's per-flow transaction counter (one per message)
  uint8_t malformed_run_[2] = {};
  uint8_t request_buf_[kRequestBufferSize];
  uint8_t response_buf_[kResponseBufferSize];
};

}  // namespace vigil::proto
