// libFuzzer target for the HTTP/1.x parser: any sequence of stream pieces and gaps in both
// directions must parse without a memory error or a hang, every event's JSON must be balanced,
// and the same sequence with every piece cut into single bytes must give identical events.
//
// Input layout: records of a 2-byte big-endian header and a body: header bit 15 = direction
// (1 = to_client), bit 14 = gap (OnGap of the 14-bit length, no body), bits 0-13 = body length
// (cut to what is left). OnEnd follows the last record.
//
// Built and run by scripts/fuzz.sh (clang, -fsanitize=fuzzer,address,undefined).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>
#include <vector>

#include "dataplane/proto/http.h"
#include "tests/unit/proto/collect_sink.h"

namespace {

using vigil::proto::Direction;
using vigil::proto::HttpParser;
using vigil::proto::testing::CollectSink;

void Check(bool ok) {
  if (!ok) std::abort();
}

struct Record {
  Direction dir;
  bool gap;
  uint32_t gap_len;
  std::span<const uint8_t> body;
};

// Collects what the inspector hook sees, per direction, to compare runs.
struct Inspector final : vigil::proto::HttpInspector {
  std::vector<uint8_t> seen[2];
  void OnHeader(Direction dir, std::span<const uint8_t> name,
                std::span<const uint8_t> value) noexcept override {
    auto& v = seen[static_cast<int>(dir)];
    v.push_back('H');
    v.insert(v.end(), name.begin(), name.end());
    v.push_back(':');
    v.insert(v.end(), value.begin(), value.end());
  }
  void OnBody(Direction dir, std::span<const uint8_t> data) noexcept override {
    Check(!data.empty());
    auto& v = seen[static_cast<int>(dir)];
    v.insert(v.end(), data.begin(), data.end());  // body bytes concatenate however split
  }
  void OnMessageEnd(Direction dir) noexcept override { seen[static_cast<int>(dir)].push_back('E'); }
};

// Runs the records through a fresh parser; `bytewise` feeds each body one byte per call.
void Run(const std::vector<Record>& records, bool bytewise, CollectSink* sink,
         Inspector* inspector) {
  auto parser = std::make_unique<HttpParser>();
  parser->set_inspector(inspector);
  for (const Record& r : records) {
    if (r.gap) {
      parser->OnGap(r.dir, r.gap_len, *sink);
    } else if (bytewise) {
      for (size_t i = 0; i < r.body.size(); ++i) parser->OnData(r.dir, r.body.subspan(i, 1), *sink);
    } else {
      parser->OnData(r.dir, r.body, *sink);
    }
  }
  parser->OnEnd(*sink);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> in(data, size);
  std::vector<Record> records;
  size_t pos = 0;
  while (pos + 2 <= in.size()) {
    const uint16_t header = static_cast<uint16_t>((in[pos] << 8) | in[pos + 1]);
    pos += 2;
    Record r{(header & 0x8000) ? Direction::kToClient : Direction::kToServer, false, 0, {}};
    const size_t len = header & 0x3FFF;
    if ((header & 0x4000) != 0) {
      r.gap = true;
      r.gap_len = static_cast<uint32_t>(len);
    } else {
      r.body = in.subspan(pos, len < in.size() - pos ? len : in.size() - pos);
      pos += r.body.size();
      (void)HttpParser::Probe(r.dir, r.body);
    }
    records.push_back(r);
  }

  CollectSink whole;
  whole.inspect = true;
  Inspector whole_seen;
  Run(records, false, &whole, &whole_seen);
  Check(!whole.unbalanced);
  for (const auto& e : whole.events) Check(!e.empty() && e.front() == '{' && e.back() == '}');

  CollectSink bytewise;
  bytewise.inspect = true;
  Inspector bytewise_seen;
  Run(records, true, &bytewise, &bytewise_seen);
  Check(bytewise.events == whole.events);
  // The signature engine sees the same messages with the same header buffers however the bytes
  // were cut (a body that lasts until the close is inspected with its first bytes, so the body
  // buffers may differ).
  Check(bytewise.inspected.size() == whole.inspected.size());
  for (size_t i = 0; i < whole.inspected.size() && i < bytewise.inspected.size(); ++i) {
    auto a = whole.inspected[i].second, b = bytewise.inspected[i].second;
    for (auto* m : {&a, &b}) {
      m->erase(vigil::rules::Buffer::kFileData);
      m->erase(vigil::rules::Buffer::kHttpRequestBody);
    }
    Check(whole.inspected[i].first == bytewise.inspected[i].first && a == b);
  }
  Check(bytewise_seen.seen[0] == whole_seen.seen[0] && bytewise_seen.seen[1] == whole_seen.seen[1]);
  return 0;
}
