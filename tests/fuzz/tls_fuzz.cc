// libFuzzer target for the TLS parser: any bytes in either direction, in any pieces, with gaps,
// must not crash, must leave every event's JSON balanced, must log at most one tls event, and
// must give the same events whether a direction arrives whole or in small pieces.
//
// Input: 4 header bytes, then the client's bytes and the server's bytes:
//   [client length lo][client length hi][piece size][flags]
//   piece size: 1 + byte % 64. flags & 1: a gap in the server direction halfway;
//   flags & 2: a gap in the client direction halfway; flags & 4: server bytes go first.
// Built and run by scripts/fuzz.sh (clang, -fsanitize=fuzzer,address,undefined).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/proto/tls.h"
#include "tests/unit/proto/collect_sink.h"

namespace {

using vigil::proto::Direction;
using vigil::proto::TlsParser;
using vigil::proto::testing::CollectSink;

void Check(bool ok) {
  if (!ok) std::abort();
}

void CheckEvents(const CollectSink& sink) {
  Check(!sink.unbalanced);
  Check(sink.CountContaining(R"("event_type":"tls")") <= 1);
  for (const std::string& e : sink.events) Check(e.front() == '{' && e.back() == '}');
}

// Each direction whole, or in pieces of `piece` bytes; client first.
std::vector<std::string> Sequential(std::span<const uint8_t> client,
                                    std::span<const uint8_t> server, size_t piece) {
  CollectSink sink;
  sink.inspect = true;  // the signature engine's buffers are assembled too
  TlsParser p;
  for (const auto& [dir, bytes] :
       {std::pair{Direction::kToServer, client}, std::pair{Direction::kToClient, server}}) {
    for (size_t off = 0; off < bytes.size(); off += piece) {
      p.OnData(dir, bytes.subspan(off, std::min(piece, bytes.size() - off)), sink);
    }
  }
  p.OnEnd(sink);
  CheckEvents(sink);
  return sink.events;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  const std::span<const uint8_t> in(data, size);
  const size_t client_len = std::min<size_t>(in[0] | in[1] << 8, size - 4);
  const size_t piece = 1 + in[2] % 64;
  const uint8_t flags = in[3];
  const std::span<const uint8_t> client = in.subspan(4, client_len);
  const std::span<const uint8_t> server = in.subspan(4 + client_len);

  (void)TlsParser::Probe(Direction::kToServer, client);
  (void)TlsParser::Probe(Direction::kToClient, server);

  // Interleaved pieces with optional gaps.
  {
    CollectSink sink;
    TlsParser p;
    size_t c = 0, s = 0;
    bool server_turn = (flags & 4) != 0;
    bool client_gap = (flags & 2) != 0, server_gap = (flags & 1) != 0;
    while (c < client.size() || s < server.size()) {
      if (server_turn && s < server.size()) {
        const size_t n = std::min(piece, server.size() - s);
        p.OnData(Direction::kToClient, server.subspan(s, n), sink);
        s += n;
        if (server_gap && s >= server.size() / 2) {
          p.OnGap(Direction::kToClient, 10, sink);
          server_gap = false;
        }
      } else if (c < client.size()) {
        const size_t n = std::min(piece, client.size() - c);
        p.OnData(Direction::kToServer, client.subspan(c, n), sink);
        c += n;
        if (client_gap && c >= client.size() / 2) {
          p.OnGap(Direction::kToServer, 10, sink);
          client_gap = false;
        }
      }
      server_turn = !server_turn;
    }
    p.OnEnd(sink);
    CheckEvents(sink);
  }

  // Split invariance.
  Check(Sequential(client, server, SIZE_MAX) == Sequential(client, server, piece));
  return 0;
}
