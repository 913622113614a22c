// libFuzzer target for TCP stream reassembly: any sequence of segments (offsets, lengths, bytes,
// overlap policy), flushes and releases on one direction with a small pool must not crash, and:
//   - every delivered byte sits at a stream position some added segment covered, with that
//     segment's byte (nothing invented, nothing misplaced);
//   - bytes delivered never exceed bytes added; the sink's position tracks next_seq;
//   - the pool's in_use equals the direction's buffered segments, and is 0 after Release.
//
// Input: 6 header bytes (isn: 4, depth: 1, limits: 1), then 6-byte ops:
//   [kind/policy][offset lo][offset hi][length lo][length hi][fill]
//   kind = byte0 >> 4 & 3: 0-2 add (policy = byte0 & 7 % 5, fin = byte0 & 8), 3: flush
//   (byte0 & 0x40) or release. Offsets are relative to isn + 1, minus 256 (retransmissions).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "dataplane/stream/reassembly.h"

namespace {

using vigil::dp::OverlapPolicy;
using vigil::dp::Reassembler;
using vigil::dp::ReassemblyConfig;
using vigil::dp::SegmentPool;
using vigil::dp::StreamDirection;
using vigil::dp::StreamEvent;

void Check(bool ok) {
  if (!ok) std::abort();
}

struct Op {
  int64_t from;  // stream position (relative to isn + 1)
  int64_t to;
  uint8_t fill;
};

struct CheckingSink : vigil::dp::StreamSink {
  const std::vector<Op>* ops = nullptr;
  int64_t pos = 0;  // stream position of the next byte the sink expects
  uint64_t delivered = 0;
  void OnData(std::span<const uint8_t> data) noexcept override {
    Check(!data.empty());
    for (uint8_t b : data) {
      bool found = false;
      for (const Op& op : *ops) {
        if (op.from <= pos && pos < op.to && op.fill == b) {
          found = true;
          break;
        }
      }
      Check(found);
      ++pos;
    }
    delivered += data.size();
  }
  void OnGap(uint32_t missing) noexcept override {
    Check(missing > 0);
    pos += missing;
  }
  void OnEvent(StreamEvent) noexcept override {}
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 6) return 0;
  const uint32_t isn =
      data[0] | (uint32_t{data[1]} << 8) | (uint32_t{data[2]} << 16) | (uint32_t{data[3]} << 24);
  ReassemblyConfig cfg;
  cfg.depth = data[4] < 128 ? 0 : uint64_t{data[4]} * 40;
  cfg.max_segments = 2 + (data[5] & 15);
  cfg.max_bytes = 1000u + (data[5] >> 4) * 1000u;
  cfg.max_ahead = 20000;
  SegmentPool pool(12);
  Reassembler reasm(&pool, cfg);
  StreamDirection dir{};
  reasm.Init(&dir, isn);
  const uint32_t base = isn + 1;

  std::vector<Op> ops;
  std::vector<uint8_t> buf;
  CheckingSink sink;
  sink.ops = &ops;
  uint64_t added = 0;
  for (size_t i = 6; i + 6 <= size && ops.size() < 64; i += 6) {
    const uint8_t* op = data + i;
    const int kind = (op[0] >> 4) & 3;
    if (kind == 3) {
      if (op[0] & 0x40) {
        reasm.Flush(&dir, sink);
      } else {
        reasm.Release(&dir);
      }
      Check(dir.buffered_segments == 0 && dir.buffered_bytes == 0);
    } else {
      static constexpr OverlapPolicy kPolicies[] = {OverlapPolicy::kFirst, OverlapPolicy::kLast,
                                                    OverlapPolicy::kLinux, OverlapPolicy::kWindows,
                                                    OverlapPolicy::kBsd};
      reasm.set_policy(kPolicies[(op[0] & 7) % 5]);
      const int64_t from = int64_t{op[1] | (op[2] << 8)} - 256;
      const uint32_t len = (op[3] | (op[4] << 8)) % 4500;
      ops.push_back({from, from + len, op[5]});
      buf.assign(len, op[5]);
      added += len;
      reasm.Add(&dir, base + static_cast<uint32_t>(from), buf, (op[0] & 8) != 0, sink);
    }
    Check(pool.in_use() == dir.buffered_segments);
    Check(sink.delivered <= added);
    Check(sink.delivered == dir.delivered);
    Check(reasm.counters().bytes_delivered == sink.delivered);
    if (cfg.depth != 0) Check(dir.delivered <= cfg.depth);
    if ((dir.flags & vigil::dp::kStreamDepthReached) == 0) {
      Check(static_cast<uint32_t>(sink.pos) == dir.next_seq - base);
    }
    Check(dir.buffered_segments <= cfg.max_segments);
    Check(dir.buffered_bytes <= cfg.max_bytes);
    // The buffered list is sorted, disjoint, after next_seq, and its totals match.
    uint32_t n = 0, bytes = 0, prev_end = dir.next_seq;
    for (uint32_t s = dir.head; s != vigil::dp::kSegmentNil; s = pool.slot(s).next) {
      const auto& slot = pool.slot(s);
      Check(slot.len > 0 && slot.len <= vigil::dp::kSegmentBytes);
      Check(vigil::dp::SeqGe(slot.seq, prev_end));
      Check(n > 0 || slot.seq != dir.next_seq);
      prev_end = slot.seq + slot.len;
      ++n;
      bytes += slot.len;
      Check(n <= pool.capacity());
    }
    Check(n == dir.buffered_segments && bytes == dir.buffered_bytes);
  }
  reasm.Release(&dir);
  Check(pool.in_use() == 0);
  Check(pool.bad_frees() == 0);
  return 0;
}
