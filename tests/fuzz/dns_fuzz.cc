// libFuzzer target for the DNS parser: any sequence of datagrams, stream pieces and gaps in both
// directions must parse without a memory error, every event's JSON must be balanced, and a TCP
// stream must give the same events however it is split.
//
// Input layout: byte 0 picks the transport (bit 0: TCP, else UDP). Then records of a 2-byte
// header and a body: header bit 15 = direction (1 = to_client), bit 14 = gap (TCP: OnGap of the
// 14-bit length, no body), bits 0-13 = body length (cut to what is left).
//
// Built and run by scripts/fuzz.sh (clang, -fsanitize=fuzzer,address,undefined).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "dataplane/proto/dns.h"
#include "tests/unit/proto/collect_sink.h"

namespace {

using vigil::proto::Direction;
using vigil::proto::DnsParser;
using vigil::proto::testing::CollectSink;

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool tcp = (data[0] & 1) != 0;
  const std::span<const uint8_t> in(data + 1, size - 1);

  auto parser = std::make_unique<DnsParser>();
  CollectSink sink;
  sink.inspect = true;  // the signature engine's buffers are assembled too
  // For the split check: every to_server piece of a gap-free TCP input, concatenated.
  std::vector<uint8_t> to_server;
  bool had_gap = false;

  size_t pos = 0;
  while (pos + 2 <= in.size()) {
    const uint16_t header = static_cast<uint16_t>((in[pos] << 8) | in[pos + 1]);
    pos += 2;
    const Direction dir = (header & 0x8000) ? Direction::kToClient : Direction::kToServer;
    size_t len = header & 0x3FFF;
    if ((header & 0x4000) != 0) {
      if (tcp) {
        parser->OnGap(dir, static_cast<uint32_t>(len), sink);
        had_gap = true;
      }
      continue;
    }
    if (len > in.size() - pos) len = in.size() - pos;
    const std::span<const uint8_t> piece = in.subspan(pos, len);
    pos += len;
    if (tcp) {
      parser->OnData(dir, piece, sink);
      if (dir == Direction::kToServer)
        to_server.insert(to_server.end(), piece.begin(), piece.end());
    } else {
      parser->OnDatagram(dir, piece, sink);
    }
    (void)DnsParser::ProbeUdp(dir, piece);
    (void)DnsParser::ProbeTcp(dir, piece);
  }
  Check(!sink.unbalanced);
  for (const auto& e : sink.events) Check(!e.empty() && e.front() == '{' && e.back() == '}');

  if (tcp && !had_gap && !to_server.empty()) {
    // The to_server stream alone, whole and one byte at a time, gives identical events.
    auto whole = std::make_unique<DnsParser>();
    CollectSink whole_sink;
    whole->OnData(Direction::kToServer, to_server, whole_sink);
    auto bytewise = std::make_unique<DnsParser>();
    CollectSink bytewise_sink;
    for (size_t i = 0; i < to_server.size(); ++i) {
      bytewise->OnData(Direction::kToServer, std::span<const uint8_t>(&to_server[i], 1),
                       bytewise_sink);
    }
    Check(whole_sink.events == bytewise_sink.events);
    Check(!whole_sink.unbalanced);
  }
  return 0;
}
