// libFuzzer target for IPv4/IPv6 defragmentation: any sequence of fragments (ids, offsets,
// lengths, flags, bytes, overlap policy), raw garbage packets and clock jumps, on a small table
// and pool, must not crash, and:
//   - a completed datagram fits `out`; IPv4: total length field = length, MF/offset clear, header
//     checksum valid; IPv6: payload length field = length - 40;
//   - trackers and slots in use never exceed capacity, and are all freed by a final expiry.
//
// Input: 1 header byte (policy = b % 7, bit 7: IPv6), then 7-byte ops:
//   [kind][id][off lo][off hi][len lo][len hi][fill]
//   kind & 0x80: raw op: the next (len lo) input bytes are fed as a packet as is;
//   kind & 0x40: advance the clock by 20 s and ExpireSome(budget 2); kind & 1: more fragments.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "dataplane/stream/defrag.h"

namespace {

using vigil::dp::DefragConfig;
using vigil::dp::DefragEvent;
using vigil::dp::Defragmenter;
using vigil::dp::DefragSink;
using vigil::dp::FragPolicy;

void Check(bool ok) {
  if (!ok) std::abort();
}

struct NullSink : DefragSink {
  void OnEvent(DefragEvent) noexcept override { ++events; }
  uint64_t events = 0;
};

uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }

uint16_t Csum(const uint8_t* p, size_t len) {
  uint32_t s = 0;
  for (size_t i = 0; i + 1 < len; i += 2) s += Be16(p + i);
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s);
}

std::vector<uint8_t> BuildFrag(bool v6, uint8_t id, uint32_t off, uint32_t len, bool more,
                               uint8_t fill) {
  std::vector<uint8_t> p;
  if (!v6) {
    p.assign(20 + len, fill);
    p[0] = 0x45;
    p[1] = 0;
    uint32_t tl = 20 + len;
    p[2] = static_cast<uint8_t>(tl >> 8), p[3] = static_cast<uint8_t>(tl);
    p[4] = 0, p[5] = id;
    uint32_t fo = (more ? 0x2000u : 0) | ((off / 8) & 0x1fff);
    p[6] = static_cast<uint8_t>(fo >> 8), p[7] = static_cast<uint8_t>(fo);
    p[8] = 64, p[9] = 17, p[10] = p[11] = 0;
    std::memset(&p[12], 10, 8);
  } else {
    p.assign(48 + len, fill);
    std::memset(p.data(), 0, 48);
    p[0] = 0x60;
    uint32_t pl = 8 + len;
    p[4] = static_cast<uint8_t>(pl >> 8), p[5] = static_cast<uint8_t>(pl);
    p[6] = 44, p[7] = 64;
    p[8] = 0x20, p[24] = 0x20;
    p[40] = 17;
    uint32_t fo = (off & 0xfff8) | (more ? 1u : 0);
    p[42] = static_cast<uint8_t>(fo >> 8), p[43] = static_cast<uint8_t>(fo);
    p[47] = id;
  }
  return p;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  DefragConfig cfg;
  cfg.policy = static_cast<FragPolicy>(data[0] % 7);
  cfg.max_trackers = 4;
  cfg.pool_slots = 24;
  cfg.max_fragments = 16;
  cfg.timeout_ns = 30'000'000'000ull;
  const bool v6 = (data[0] & 0x80) != 0;
  Defragmenter d(cfg);
  NullSink sink;
  static std::vector<uint8_t> out(65535 + 64);
  uint64_t now = 0;
  size_t i = 1;
  while (i + 7 <= size) {
    const uint8_t* op = data + i;
    i += 7;
    uint32_t len = op[4] | uint32_t{op[5]} << 8;
    uint32_t off = op[2] | uint32_t{op[3]} << 8;
    if (op[0] & 0x40) {
      now += 20'000'000'000ull;
      d.ExpireSome(now, 2, sink);
    }
    uint32_t out_len = 0;
    Defragmenter::Result r;
    if (op[0] & 0x80) {
      size_t n = std::min<size_t>(op[4], size - i);
      std::vector<uint8_t> raw(data + i, data + i + n);  // exact size: ASan sees overreads
      i += n;
      r = d.Add(raw, v6 ? 6 : 4, now, out, &out_len, sink);
    } else {
      len %= 3000;
      std::vector<uint8_t> p = BuildFrag(v6, op[1] & 3, off, len, op[0] & 1, op[6]);
      r = d.Add(p, v6 ? 6 : 4, now, out, &out_len, sink);
    }
    if (r == Defragmenter::Result::kComplete) {
      Check(out_len <= out.size() && out_len >= (v6 ? 40u : 20u));
      if (!v6) {
        uint32_t ihl = (out[0] & 0xfu) * 4u;
        Check(Be16(&out[2]) == out_len);
        Check((Be16(&out[6]) & 0x3fffu) == 0);
        Check(Csum(out.data(), ihl) == 0);
      } else {
        Check(Be16(&out[4]) + 40u == out_len);
      }
    } else {
      Check(out_len == 0);
    }
    Check(d.trackers_in_use() <= d.tracker_capacity());
    Check(d.slots_in_use() <= d.slot_capacity());
  }
  d.ExpireSome(now + 31'000'000'000ull, 1000, sink);
  Check(d.trackers_in_use() == 0);
  Check(d.slots_in_use() == 0);
  return 0;
}
