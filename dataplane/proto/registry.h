// The application-layer parsers the dataplane knows, with how to recognise and construct each.
// The session layer (stream/session.h) probes them on a flow's first bytes and places the chosen
// parser in a per-worker pool slot of `size` bytes.
#pragma once

#include <cstddef>
#include <span>

#include "dataplane/proto/event.h"

namespace vigil::proto {

using ProbeFn = ProbeResult (*)(Direction dir, std::span<const uint8_t> data) noexcept;

struct ParserKind {
  AppProto proto;
  const char* name;   // config key under app_layer.parsers
  ProbeFn probe_tcp;  // nullptr: not carried over TCP
  ProbeFn probe_udp;  // nullptr: not carried over UDP
  uint16_t ports[4];  // well-known server ports (0 = unused): probed first, never required
  size_t size;        // sizeof the parser class
  size_t align;
  // Constructs the parser in `memory` (size bytes, aligned to `align`).
  AppParser* (*construct)(void* memory) noexcept;
  uint32_t default_pool;  // parsers of this kind per worker, unless configured
};

std::span<const ParserKind> ParserKinds() noexcept;
// The kind of `proto`, or nullptr.
const ParserKind* FindParserKind(AppProto proto) noexcept;

}  // namespace vigil::proto
