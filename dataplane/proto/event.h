// The interface between application-layer parsers and whatever carries their events: the worker's
// event ring in the dataplane, a collecting sink in tests and fuzz targets.
//
// Parsers see byte spans (never mbufs) and emit EVE-shaped events: the parser writes the members
// particular to its protocol (e.g. `"smb":{...}`) and a one-line `message`; the carrier adds the
// common members (timestamp, flow_id, addresses, ports, proto, app_proto, event_type).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "dataplane/proto/json_writer.h"
#include "rules/engine/detect.h"

namespace vigil::proto {

// Direction of the bytes relative to the flow's client (the side that opened it).
enum class Direction : uint8_t { kToServer = 0, kToClient = 1 };
inline const char* DirectionName(Direction d) noexcept {
  return d == Direction::kToServer ? "to_server" : "to_client";
}

// EVE `app_proto` values.
enum class AppProto : uint8_t {
  kUnknown = 0,  // not identified yet
  kSmb,
  kDcerpc,
  kKrb5,
  kDns,
  kHttp,
  kTls,
  kFailed,  // identification gave up: nothing recognised the first bytes
  kCount,
};
const char* AppProtoName(AppProto p) noexcept;  // "smb", "dcerpc", ..., "failed", "unknown"

class EventSink {
 public:
  // Starts an event of `event_type` ("smb", "dcerpc", "krb5", "dns", "http", "tls", "anomaly")
  // for the bytes travelling in `dir`, and returns the writer for its protocol members. A begun
  // event that is not committed is discarded by the next Begin.
  virtual JsonWriter& Begin(std::string_view event_type, Direction dir) noexcept = 0;
  // The begun event's one-line message (cleared by Begin).
  virtual TextBuilder& message() noexcept = 0;
  // Publishes the begun event. Never blocks: a full carrier counts the loss.
  virtual void Commit() noexcept = 0;
  // Packet time of the bytes being parsed, nanoseconds since the Unix epoch.
  virtual uint64_t now_ns() const noexcept = 0;

  // The signature engine's seam (docs/rules.md "App-layer buffers"). Whether the flow's messages
  // are inspected: parsers assemble their sticky buffers (http.uri, dns.query, ...) only then.
  virtual bool inspecting() const noexcept { return false; }
  // One message's sticky buffers, travelling in `dir`, inspected at once: the spans need to stay
  // valid during the call only. Call only when inspecting().
  virtual void Inspect(Direction dir, const rules::Buffers& buffers) noexcept {
    (void)dir;
    (void)buffers;
  }

 protected:
  ~EventSink() = default;
};

// An `anomaly` event in Suricata's shape:
// {"anomaly":{"app_proto":"smb","type":"applayer","event":"X","layer":"proto_parser"}}
// with message "ANOMALY smb X".
void EmitAnomaly(EventSink& sink, Direction dir, AppProto proto, std::string_view event) noexcept;

enum class ProbeResult : uint8_t {
  kNo,     // these bytes are not this protocol
  kMaybe,  // not enough bytes to tell: ask again with more
  kYes,    // this protocol
};

// One flow's application-layer parser (both directions). Implementations are fixed-size classes
// (no heap: they live in per-worker pools preallocated at start-up), never throw and never block.
// Each also provides a static
//   ProbeResult Probe(Direction dir, std::span<const uint8_t> first_bytes) noexcept;
// that recognises the protocol by content (ports are only a hint to the caller).
class AppParser {
 public:
  virtual ~AppParser() = default;
  // In-order stream bytes of one direction (TCP), in pieces of any size: a message may span many
  // calls and one call may hold many messages. The span is valid during the call only.
  virtual void OnData(Direction dir, std::span<const uint8_t> data, EventSink& sink) noexcept = 0;
  // `missing_bytes` of `dir` were lost; the next OnData continues after them. Resynchronise where
  // the protocol allows, otherwise stop parsing that direction (and say so with an anomaly).
  virtual void OnGap(Direction dir, uint32_t missing_bytes, EventSink& sink) noexcept = 0;
  // One whole datagram (UDP). The default treats it as stream data.
  virtual void OnDatagram(Direction dir, std::span<const uint8_t> data, EventSink& sink) noexcept {
    OnData(dir, data, sink);
  }
  // The flow ended: emit what is still pending (requests without responses).
  virtual void OnEnd(EventSink& sink) noexcept { (void)sink; }
};

}  // namespace vigil::proto
