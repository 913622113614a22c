// libFuzzer target for the SMB parser: the input is cut into to-server/to-client pieces and gaps,
// each piece fed in chunks whose size the first byte picks; every event must be balanced JSON.
//
// Input: byte 0 = chunk size (0: whole pieces), then segments of
//   [control: bit 0 direction (1 = to client), bit 1 gap][length: u16 little-endian][bytes]
// (a gap segment carries no bytes: its length is the number of missing bytes).
// Built and run by scripts/fuzz.sh (clang, -fsanitize=fuzzer,address,undefined).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "dataplane/proto/smb.h"
#include "tests/unit/proto/collect_sink.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using vigil::proto::Direction;
  if (size < 1) return 0;
  const size_t chunk = data[0];
  vigil::proto::testing::CollectSink sink;
  sink.inspect = true;  // the signature engine's buffers are assembled too
  vigil::proto::SmbParser parser;
  size_t pos = 1;
  while (pos + 3 <= size) {
    const uint8_t ctl = data[pos];
    const size_t len = data[pos + 1] | (size_t{data[pos + 2]} << 8);
    pos += 3;
    const Direction dir = (ctl & 1) ? Direction::kToClient : Direction::kToServer;
    if (ctl & 2) {
      parser.OnGap(dir, static_cast<uint32_t>(len), sink);
      continue;
    }
    const size_t n = len < size - pos ? len : size - pos;
    const std::span<const uint8_t> piece(data + pos, n);
    pos += n;
    if (chunk == 0) {
      parser.OnData(dir, piece, sink);
    } else {
      for (size_t i = 0; i < piece.size(); i += chunk) {
        parser.OnData(dir, piece.subspan(i, chunk < piece.size() - i ? chunk : piece.size() - i),
                      sink);
      }
    }
  }
  if (pos < size) parser.OnData(Direction::kToServer, std::span(data + pos, size - pos), sink);
  parser.OnEnd(sink);
  Check(!sink.unbalanced);
  for (const auto& e : sink.events) Check(!e.empty() && e.front() == '{' && e.back() == '}');
  return 0;
}
