#include "dataplane/stream/defrag.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace vigil::dp {
namespace {

using Bytes = std::vector<uint8_t>;
using R = Defragmenter::Result;

constexpr uint64_t kSec = 1'000'000'000ull;

struct RecordingSink : DefragSink {
  void OnEvent(DefragEvent e) noexcept override { events.push_back(e); }
  int Count(DefragEvent e) const {
    return static_cast<int>(std::count(events.begin(), events.end(), e));
  }
  std::vector<DefragEvent> events;
};

uint16_t Be16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
void Put16(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

uint16_t Csum(const uint8_t* p, size_t len) {
  uint32_t s = 0;
  for (size_t i = 0; i + 1 < len; i += 2) s += Be16(p + i);
  if (len & 1) s += uint32_t{p[len - 1]} << 8;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s);
}

void FixV4Checksum(Bytes& b) {
  size_t ihl = size_t{b[0] & 0xfu} * 4u;
  Put16(&b[10], 0);
  Put16(&b[10], Csum(b.data(), ihl));
}

// UDP header + `n` pattern bytes.
Bytes UdpPayload(size_t n, uint8_t salt = 0) {
  Bytes u(8 + n);
  Put16(&u[0], 1234);
  Put16(&u[2], 53);
  Put16(&u[4], static_cast<uint32_t>(u.size()));
  for (size_t i = 0; i < n; ++i) u[8 + i] = static_cast<uint8_t>(i * 7 + 3 + salt);
  return u;
}

Bytes V4Datagram(const Bytes& payload, uint16_t id, uint8_t src_last = 1, uint8_t ihl_words = 5) {
  Bytes b(size_t{ihl_words} * 4u, 0);
  b[0] = static_cast<uint8_t>(0x40 | ihl_words);
  Put16(&b[2], static_cast<uint32_t>(b.size() + payload.size()));
  Put16(&b[4], id);
  b[8] = 64;
  b[9] = 17;
  b[12] = 10, b[13] = 0, b[14] = 0, b[15] = src_last;
  b[16] = 10, b[17] = 0, b[18] = 0, b[19] = 2;
  for (size_t i = 20; i < b.size(); ++i) b[i] = 1;  // NOP options
  // Byte by byte: GCC 12 under LTO warns (-Wstringop-overread, a false positive) on a range
  // insert here, and CI builds with -Werror.
  b.reserve(b.size() + payload.size());
  for (const uint8_t x : payload) b.push_back(x);
  FixV4Checksum(b);
  return b;
}

// One IPv4 fragment of `dgram`'s payload [off, off + len).
Bytes V4Frag(const Bytes& dgram, uint32_t off, uint32_t len, bool more) {
  size_t ihl = size_t{dgram[0] & 0xfu} * 4u;
  Bytes f(dgram.begin(), dgram.begin() + ihl);
  f.insert(f.end(), dgram.begin() + ihl + off, dgram.begin() + ihl + off + len);
  Put16(&f[2], static_cast<uint32_t>(f.size()));
  Put16(&f[6], (more ? 0x2000u : 0) | (off / 8));
  FixV4Checksum(f);
  return f;
}

// A raw IPv4 fragment with explicit payload bytes.
Bytes V4Raw(uint16_t id, uint32_t off, bool more, const Bytes& data, uint8_t src_last = 1) {
  Bytes f = V4Datagram(data, id, src_last);
  Put16(&f[6], (more ? 0x2000u : 0) | (off / 8));
  FixV4Checksum(f);
  return f;
}

std::vector<Bytes> SplitV4(const Bytes& dgram, uint32_t size) {
  size_t ihl = size_t{dgram[0] & 0xfu} * 4u;
  uint32_t plen = static_cast<uint32_t>(dgram.size() - ihl);
  std::vector<Bytes> out;
  for (uint32_t off = 0; off < plen; off += size) {
    uint32_t len = std::min(size, plen - off);
    out.push_back(V4Frag(dgram, off, len, off + len < plen));
  }
  return out;
}

// IPv6 datagram with a hop-by-hop header (8 bytes) when `hbh`, then UDP.
Bytes V6Datagram(const Bytes& payload, bool hbh, uint8_t src_last = 1) {
  Bytes b(40, 0);
  b[0] = 0x60;
  b[6] = hbh ? 0 : 17;
  b[7] = 64;
  b[8] = 0x20, b[9] = 0x01, b[23] = src_last;
  b[24] = 0x20, b[25] = 0x01, b[39] = 2;
  if (hbh) {
    Bytes h = {17, 0, 1, 4, 0, 0, 0, 0};  // next UDP, len 0, PadN
    b.insert(b.end(), h.begin(), h.end());
  }
  b.insert(b.end(), payload.begin(), payload.end());
  Put16(&b[4], static_cast<uint32_t>(b.size() - 40));
  return b;
}

// Splits an IPv6 datagram whose unfragmentable part is `unfrag` bytes into fragments.
std::vector<Bytes> SplitV6(const Bytes& dgram, size_t unfrag, uint32_t size, uint32_t id,
                           size_t nh_off) {
  uint8_t next = dgram[nh_off];
  uint32_t plen = static_cast<uint32_t>(dgram.size() - unfrag);
  std::vector<Bytes> out;
  for (uint32_t off = 0; off < plen; off += size) {
    uint32_t len = std::min(size, plen - off);
    Bytes f(dgram.begin(), dgram.begin() + unfrag);
    f[nh_off] = 44;
    Bytes fh = {next, 0, 0, 0, 0, 0, 0, 0};
    Put16(&fh[2], off | (off + len < plen ? 1u : 0u));
    fh[4] = static_cast<uint8_t>(id >> 24), fh[5] = static_cast<uint8_t>(id >> 16);
    fh[6] = static_cast<uint8_t>(id >> 8), fh[7] = static_cast<uint8_t>(id);
    f.insert(f.end(), fh.begin(), fh.end());
    f.insert(f.end(), dgram.begin() + unfrag + off, dgram.begin() + unfrag + off + len);
    Put16(&f[4], static_cast<uint32_t>(f.size() - 40));
    out.push_back(f);
  }
  return out;
}

DefragConfig SmallConfig() {
  DefragConfig c;
  c.max_trackers = 16;
  c.pool_slots = 512;
  c.timeout_ns = 60 * kSec;
  return c;
}

struct Harness {
  explicit Harness(const DefragConfig& c = SmallConfig()) : d(c), out(70000) {}
  R Add(const Bytes& p, uint8_t v = 4, uint64_t now = 0) {
    return d.Add(p, v, now, out, &out_len, sink);
  }
  Bytes Out() const { return Bytes(out.begin(), out.begin() + out_len); }
  Defragmenter d;
  Bytes out;
  uint32_t out_len = 0;
  RecordingSink sink;
};

// Feeds all fragments; every one but the last must be held, the last completes.
void FeedExpectComplete(Harness& h, const std::vector<Bytes>& frags, uint8_t v) {
  for (size_t i = 0; i < frags.size(); ++i) {
    R r = h.Add(frags[i], v);
    if (i + 1 < frags.size()) {
      ASSERT_EQ(r, R::kHeld) << "fragment " << i;
    } else {
      ASSERT_EQ(r, R::kComplete);
    }
  }
}

TEST(FragPolicyTest, NamesRoundTrip) {
  const char* names[] = {"first", "last", "bsd", "bsd-right", "linux", "windows", "solaris"};
  for (const char* n : names) {
    FragPolicy p{};
    ASSERT_TRUE(ParseFragPolicy(n, &p)) << n;
    EXPECT_STREQ(FragPolicyName(p), n);
  }
  FragPolicy p = FragPolicy::kLast;
  EXPECT_FALSE(ParseFragPolicy("BSD", &p));
  EXPECT_FALSE(ParseFragPolicy("bsd_right", &p));
  EXPECT_EQ(p, FragPolicy::kLast);
}

enum class Order { kInOrder, kReversed, kShuffled };

class DefragOrderTest : public ::testing::TestWithParam<Order> {
 protected:
  void Arrange(std::vector<Bytes>& frags) {
    if (GetParam() == Order::kReversed) std::reverse(frags.begin(), frags.end());
    if (GetParam() == Order::kShuffled) {
      std::mt19937 rng(12345);
      std::shuffle(frags.begin(), frags.end(), rng);
    }
  }
};

TEST_P(DefragOrderTest, Ipv4ReassemblesExactly) {
  Harness h;
  Bytes dgram = V4Datagram(UdpPayload(4000), 0x1234, 1, 6);  // with a 4-byte option
  auto frags = SplitV4(dgram, 1480);
  ASSERT_EQ(frags.size(), 3u);
  Arrange(frags);
  FeedExpectComplete(h, frags, 4);
  Bytes got = h.Out();
  EXPECT_EQ(got, dgram);
  EXPECT_EQ(Be16(&got[2]), dgram.size());
  EXPECT_EQ(Be16(&got[6]), 0);  // MF and offset clear
  EXPECT_EQ(Csum(got.data(), 24), 0);
  EXPECT_EQ(h.d.counters().datagrams_completed, 1u);
  EXPECT_EQ(h.d.counters().fragments, 3u);
  EXPECT_EQ(h.d.trackers_in_use(), 0u);
  EXPECT_EQ(h.d.slots_in_use(), 0u);
  EXPECT_TRUE(h.sink.events.empty());
}

TEST_P(DefragOrderTest, Ipv4ManySmallFragments) {
  Harness h;
  Bytes dgram = V4Datagram(UdpPayload(1000), 7);
  auto frags = SplitV4(dgram, 64);
  ASSERT_EQ(frags.size(), 16u);
  Arrange(frags);
  FeedExpectComplete(h, frags, 4);
  EXPECT_EQ(h.Out(), dgram);
}

TEST_P(DefragOrderTest, Ipv6ReassemblesExactlyWithExtensionHeader) {
  Harness h;
  Bytes dgram = V6Datagram(UdpPayload(3000), /*hbh=*/true);
  auto frags = SplitV6(dgram, 48, 1232, 0xdeadbeef, 40);
  ASSERT_EQ(frags.size(), 3u);
  Arrange(frags);
  FeedExpectComplete(h, frags, 6);
  EXPECT_EQ(h.Out(), dgram);
  EXPECT_EQ(h.d.trackers_in_use(), 0u);
  EXPECT_EQ(h.d.slots_in_use(), 0u);
}

TEST_P(DefragOrderTest, Ipv6WithoutExtensionHeader) {
  Harness h;
  Bytes dgram = V6Datagram(UdpPayload(2500), /*hbh=*/false);
  auto frags = SplitV6(dgram, 40, 512, 42, 6);
  Arrange(frags);
  FeedExpectComplete(h, frags, 6);
  EXPECT_EQ(h.Out(), dgram);
}

INSTANTIATE_TEST_SUITE_P(Orders, DefragOrderTest,
                         ::testing::Values(Order::kInOrder, Order::kReversed, Order::kShuffled));

TEST(DefragTest, NotAFragment) {
  Harness h;
  EXPECT_EQ(h.Add(V4Datagram(UdpPayload(10), 1)), R::kNotFragment);
  EXPECT_EQ(h.Add(V6Datagram(UdpPayload(10), true), 6), R::kNotFragment);
  // Atomic fragment (RFC 6946): offset 0, M clear.
  Bytes dgram = V6Datagram(UdpPayload(10), false);
  auto frags = SplitV6(dgram, 40, 4096, 9, 6);
  ASSERT_EQ(frags.size(), 1u);
  EXPECT_EQ(h.Add(frags[0], 6), R::kNotFragment);
  EXPECT_EQ(h.d.trackers_in_use(), 0u);
  EXPECT_EQ(h.d.counters().fragments, 0u);
}

TEST(DefragTest, DuplicatesRaiseOverlapNotDiffers) {
  Harness h;
  Bytes dgram = V4Datagram(UdpPayload(300), 5);
  auto frags = SplitV4(dgram, 104);
  ASSERT_EQ(frags.size(), 3u);
  EXPECT_EQ(h.Add(frags[0]), R::kHeld);
  EXPECT_EQ(h.Add(frags[0]), R::kHeld);
  EXPECT_EQ(h.Add(frags[1]), R::kHeld);
  EXPECT_EQ(h.Add(frags[1]), R::kHeld);
  EXPECT_EQ(h.Add(frags[2]), R::kComplete);
  EXPECT_EQ(h.Out(), dgram);
  EXPECT_EQ(h.d.counters().overlaps, 2u);
  EXPECT_EQ(h.d.counters().overlap_differs, 0u);
  EXPECT_EQ(h.sink.Count(DefragEvent::kOverlap), 2);
  EXPECT_EQ(h.sink.Count(DefragEvent::kOverlapDiffers), 0);
}

// Novak's overlap pattern (as in Suricata's Sturges/Novak defrag tests): 9 originals, then 8
// overlapping fragments; each letter fills its fragment. Every 8-byte block of the result shown.
struct NovakCase {
  FragPolicy policy;
  const char* blocks;  // 24 letters, one per 8-byte block
};

void RunNovak(const NovakCase& c, uint8_t version) {
  DefragConfig cfg = SmallConfig();
  cfg.policy = c.policy;
  Harness h(cfg);
  struct F {
    char letter;
    uint32_t off;
    uint32_t len;
    bool more;
  };
  const F frags[] = {
      {'A', 0, 24, true},    {'B', 32, 16, true},  {'C', 48, 24, true},  {'D', 80, 8, true},
      {'E', 104, 16, true},  {'F', 120, 24, true}, {'G', 144, 16, true}, {'H', 160, 16, true},
      {'I', 176, 8, true},   {'J', 8, 32, true},   {'K', 48, 24, true},  {'L', 72, 24, true},
      {'M', 96, 24, true},   {'N', 128, 8, true},  {'O', 152, 8, true},  {'P', 160, 8, true},
      {'Q', 176, 16, false},
  };
  Bytes v6base = V6Datagram(Bytes(192, 0), false);
  R last = R::kHeld;
  for (size_t i = 0; i < std::size(frags); ++i) {
    Bytes data(frags[i].len, static_cast<uint8_t>(frags[i].letter));
    Bytes pkt;
    if (version == 4) {
      pkt = V4Raw(77, frags[i].off, frags[i].more, data);
    } else {
      Bytes d = v6base;
      std::copy(data.begin(), data.end(), d.begin() + 40 + frags[i].off);
      auto all = SplitV6(d, 40, 8, 77, 6);  // 8-byte fragments; pick and merge ours
      Bytes f(all[frags[i].off / 8].begin(), all[frags[i].off / 8].begin() + 48);
      Put16(&f[42], frags[i].off | (frags[i].more ? 1u : 0u));
      f.insert(f.end(), data.begin(), data.end());
      Put16(&f[4], static_cast<uint32_t>(f.size() - 40));
      pkt = f;
    }
    last = h.Add(pkt, version);
    if (i + 1 < std::size(frags)) {
      ASSERT_EQ(last, R::kHeld) << frags[i].letter;
    }
  }
  ASSERT_EQ(last, R::kComplete);
  size_t hdr = version == 4 ? 20 : 40;
  ASSERT_EQ(h.out_len, hdr + 192);
  std::string got;
  for (size_t b = 0; b < 24; ++b) {
    std::string block(h.out.begin() + hdr + b * 8, h.out.begin() + hdr + b * 8 + 8);
    ASSERT_EQ(block, std::string(8, block[0])) << "block " << b << " mixed";
    got.push_back(block[0]);
  }
  EXPECT_EQ(got, c.blocks) << FragPolicyName(c.policy);
  // All nine overlaps carry different bytes.
  EXPECT_EQ(h.d.counters().overlaps, 8u);  // J overlaps two originals: one event per fragment
  EXPECT_EQ(h.d.counters().overlap_differs, 8u);
  EXPECT_EQ(h.sink.Count(DefragEvent::kOverlapDiffers), 8);
  EXPECT_EQ(h.d.slots_in_use(), 0u);
}

const NovakCase kNovakCases[] = {
    {FragPolicy::kFirst, "AAAJBBCCCLDLMEEFFFGGHHIQ"},
    {FragPolicy::kLast, "AJJJJBKKKLLLMMMFNFGOPHQQ"},
    {FragPolicy::kBsd, "AAAJJBCCCLLLMMMFFFGGHHIQ"},
    {FragPolicy::kBsdRight, "AJJJBBKKKLDLMEEFNFGOPHQQ"},
    {FragPolicy::kLinux, "AAAJJBKKKLLLMMMFFFGGHHQQ"},
    {FragPolicy::kWindows, "AAAJBBCCCLLLMEEFFFGGHHIQ"},
    {FragPolicy::kSolaris, "AAAJBBCCCLLLMMMFFFGGHHIQ"},
};

TEST(DefragNovakTest, Ipv4EveryPolicyKeepsItsBytes) {
  for (const NovakCase& c : kNovakCases) {
    SCOPED_TRACE(FragPolicyName(c.policy));
    RunNovak(c, 4);
  }
}

TEST(DefragNovakTest, Ipv6EveryPolicyKeepsItsBytes) {
  for (const NovakCase& c : kNovakCases) {
    SCOPED_TRACE(FragPolicyName(c.policy));
    RunNovak(c, 6);
  }
}

TEST(DefragTest, TimeoutFreesTrackerViaExpireSome) {
  DefragConfig cfg = SmallConfig();
  cfg.timeout_ns = 30 * kSec;
  Harness h(cfg);
  Bytes dgram = V4Datagram(UdpPayload(3000), 9);
  auto frags = SplitV4(dgram, 1480);
  uint64_t t0 = 1000 * kSec;
  ASSERT_EQ(h.Add(frags[0], 4, t0), R::kHeld);
  ASSERT_EQ(h.Add(frags[1], 4, t0 + kSec), R::kHeld);
  EXPECT_EQ(h.d.trackers_in_use(), 1u);
  EXPECT_GT(h.d.slots_in_use(), 0u);
  EXPECT_EQ(h.d.ExpireSome(t0 + 30 * kSec - 1, 10, h.sink), 0u);
  EXPECT_EQ(h.d.trackers_in_use(), 1u);
  EXPECT_EQ(h.d.ExpireSome(t0 + 30 * kSec, 10, h.sink), 1u);
  EXPECT_EQ(h.d.trackers_in_use(), 0u);
  EXPECT_EQ(h.d.slots_in_use(), 0u);
  EXPECT_EQ(h.d.counters().timeouts, 1u);
  EXPECT_EQ(h.sink.Count(DefragEvent::kTimeout), 1);
  // The late last fragment starts a new, incomplete datagram.
  EXPECT_EQ(h.Add(frags[2], 4, t0 + 31 * kSec), R::kHeld);
  EXPECT_EQ(h.d.trackers_in_use(), 1u);
}

TEST(DefragTest, ExpiredTrackerIsReplacedOnAdd) {
  DefragConfig cfg = SmallConfig();
  cfg.timeout_ns = 5 * kSec;
  Harness h(cfg);
  Bytes dgram = V4Datagram(UdpPayload(3000), 9);
  auto frags = SplitV4(dgram, 1480);
  ASSERT_EQ(h.Add(frags[0], 4, 0), R::kHeld);
  ASSERT_EQ(h.Add(frags[1], 4, 6 * kSec), R::kHeld);  // the old tracker timed out
  EXPECT_EQ(h.d.counters().timeouts, 1u);
  ASSERT_EQ(h.Add(frags[2], 4, 6 * kSec), R::kHeld);  // first fragment is gone
  ASSERT_EQ(h.Add(frags[0], 4, 7 * kSec), R::kComplete);
  EXPECT_EQ(h.Out(), dgram);
}

TEST(DefragTest, ExpireSomeRespectsBudget) {
  Harness h;
  for (uint16_t id = 0; id < 5; ++id) {
    ASSERT_EQ(h.Add(V4Raw(id, 0, true, Bytes(8, 1)), 4, id), R::kHeld);
  }
  EXPECT_EQ(h.d.ExpireSome(100 * kSec, 2, h.sink), 2u);
  EXPECT_EQ(h.d.trackers_in_use(), 3u);
  EXPECT_EQ(h.d.ExpireSome(100 * kSec, 10, h.sink), 3u);
  EXPECT_EQ(h.d.trackers_in_use(), 0u);
}

TEST(DefragTest, TooManyFragmentsDropsDatagramThenRecovers) {
  DefragConfig cfg = SmallConfig();
  cfg.max_fragments = 4;
  Harness h(cfg);
  Bytes big = V4Datagram(UdpPayload(600), 1);
  auto frags = SplitV4(big, 104);
  ASSERT_GT(frags.size(), 5u);
  for (int i = 0; i < 4; ++i) ASSERT_EQ(h.Add(frags[i]), R::kHeld);
  EXPECT_EQ(h.Add(frags[4]), R::kTooManyFragments);
  EXPECT_EQ(h.d.counters().too_many, 1u);
  EXPECT_EQ(h.sink.Count(DefragEvent::kTooManyFragments), 1);
  EXPECT_EQ(h.d.trackers_in_use(), 0u);
  EXPECT_EQ(h.d.slots_in_use(), 0u);
  // Duplicates count too.
  Bytes small = V4Datagram(UdpPayload(250), 2);
  auto sf = SplitV4(small, 104);
  ASSERT_EQ(sf.size(), 3u);
  for (int i = 0; i < 4; ++i) ASSERT_EQ(h.Add(sf[0]), R::kHeld);
  EXPECT_EQ(h.Add(sf[1]), R::kTooManyFragments);
  EXPECT_EQ(h.d.counters().too_many, 2u);
  // Recovery.
  FeedExpectComplete(h, sf, 4);
  EXPECT_EQ(h.Out(), small);
}

TEST(DefragTest, TooLargeIpv4) {
  Harness h;
  // One fragment past 65535: offset 65528 + 16 bytes.
  EXPECT_EQ(h.Add(V4Raw(3, 65528, false, Bytes(16, 1))), R::kTooLarge);
  EXPECT_EQ(h.d.counters().too_large, 1u);
  EXPECT_EQ(h.d.trackers_in_use(), 0u);
  // A datagram that grows past the limit is dropped with what it held.
  ASSERT_EQ(h.Add(V4Raw(4, 0, true, Bytes(1480, 1))), R::kHeld);
  ASSERT_EQ(h.Add(V4Raw(4, 65000, true, Bytes(512, 1))), R::kHeld);     // 20 + 65512: fits
  EXPECT_EQ(h.Add(V4Raw(4, 65512, false, Bytes(8, 1))), R::kTooLarge);  // 20 + 65520
  EXPECT_EQ(h.d.counters().too_large, 2u);
  EXPECT_EQ(h.sink.Count(DefragEvent::kTooLarge), 2);
  EXPECT_EQ(h.d.trackers_in_use(), 0u);
  EXPECT_EQ(h.d.slots_in_use(), 0u);
  Bytes ok = V4Datagram(UdpPayload(100), 4);
  FeedExpectComplete(h, SplitV4(ok, 64), 4);
  EXPECT_EQ(h.Out(), ok);
}

TEST(DefragTest, MaximumSizeIpv4Completes) {
  DefragConfig cfg = SmallConfig();
  cfg.pool_slots = 128;
  cfg.max_fragments = 64;
  Harness h(cfg);
  Bytes dgram = V4Datagram(UdpPayload(65535 - 20 - 8), 11);
  ASSERT_EQ(dgram.size(), 65535u);
  auto frags = SplitV4(dgram, 8 * 1024);
  FeedExpectComplete(h, frags, 4);
  EXPECT_EQ(h.Out(), dgram);
}

TEST(DefragTest, TooLargeIpv6) {
  Harness h;
  Bytes dgram = V6Datagram(Bytes(16, 1), false);
  auto f = SplitV6(dgram, 40, 8, 5, 6)[1];  // the last 8-byte fragment, offset 8
  Put16(&f[42], 65528);                     // offset 65528, M=0: payload end 65536
  EXPECT_EQ(h.Add(f, 6), R::kTooLarge);
  EXPECT_EQ(h.d.counters().too_large, 1u);
}

TEST(DefragTest, TinyPoolExhaustsThenRecovers) {
  DefragConfig cfg = SmallConfig();
  cfg.pool_slots = 3;
  Harness h(cfg);
  Bytes dgram = V4Datagram(UdpPayload(2960), 1);  // 2 x 1480: 2 slots each
  auto frags = SplitV4(dgram, 1480);
  ASSERT_EQ(frags.size(), 3u);
  ASSERT_EQ(h.Add(frags[0]), R::kHeld);
  EXPECT_EQ(h.d.slots_in_use(), 2u);
  EXPECT_EQ(h.Add(frags[1]), R::kPoolExhausted);
  EXPECT_EQ(h.d.counters().pool_exhausted, 1u);
  EXPECT_EQ(h.sink.Count(DefragEvent::kPoolExhausted), 1);
  EXPECT_EQ(h.d.slots_in_use(), 2u);  // nothing half-inserted
  // A new datagram that cannot get a slot leaves no empty tracker behind.
  EXPECT_EQ(h.Add(V4Raw(99, 0, true, Bytes(2048, 1))), R::kPoolExhausted);
  EXPECT_EQ(h.d.trackers_in_use(), 1u);
  EXPECT_EQ(h.d.ExpireSome(61 * kSec, 10, h.sink), 1u);
  EXPECT_EQ(h.d.slots_in_use(), 0u);
  Bytes small = V4Datagram(UdpPayload(1000), 2);
  FeedExpectComplete(h, SplitV4(small, 512), 4);
  EXPECT_EQ(h.Out(), small);
}

TEST(DefragTest, FullTableThenRecovers) {
  DefragConfig cfg = SmallConfig();
  cfg.max_trackers = 2;
  Harness h(cfg);
  std::vector<std::vector<Bytes>> d;
  std::vector<Bytes> dgrams;
  for (uint16_t id = 1; id <= 3; ++id) {
    dgrams.push_back(V4Datagram(UdpPayload(250), id));
    d.push_back(SplitV4(dgrams.back(), 104));
  }
  ASSERT_EQ(h.Add(d[0][0], 4, 0), R::kHeld);
  ASSERT_EQ(h.Add(d[1][0], 4, 0), R::kHeld);
  EXPECT_EQ(h.Add(d[2][0], 4, kSec), R::kTableFull);
  EXPECT_EQ(h.d.counters().table_full, 1u);
  EXPECT_EQ(h.sink.Count(DefragEvent::kTableFull), 1);
  // Completing one frees a tracker.
  ASSERT_EQ(h.Add(d[0][1], 4, kSec), R::kHeld);
  ASSERT_EQ(h.Add(d[0][2], 4, kSec), R::kComplete);
  EXPECT_EQ(h.Out(), dgrams[0]);
  FeedExpectComplete(h, d[2], 4);
  EXPECT_EQ(h.Out(), dgrams[2]);
  // A full table reclaims an expired tracker instead of refusing.
  ASSERT_EQ(h.Add(d[0][0], 4, 2 * kSec), R::kHeld);
  EXPECT_EQ(h.Add(d[2][0], 4, 100 * kSec), R::kHeld);
  EXPECT_EQ(h.d.counters().timeouts, 1u);
}

TEST(DefragTest, MalformedRejectedWithoutLeaks) {
  Harness h;
  auto expect_malformed = [&](const Bytes& p, uint8_t v, const char* what) {
    uint64_t before = h.d.counters().malformed;
    EXPECT_EQ(h.Add(p, v), R::kMalformed) << what;
    EXPECT_EQ(h.d.counters().malformed, before + 1) << what;
  };
  Bytes good = V4Raw(1, 8, true, Bytes(16, 1));
  Bytes b = good;
  b[0] = 0x44;  // IHL 4
  expect_malformed(b, 4, "ihl < 5");
  b = good;
  b[0] = 0x4f;  // IHL 15 = 60 bytes, longer than the packet
  expect_malformed(b, 4, "ihl past packet");
  b = good;
  Put16(&b[2], 200);
  expect_malformed(b, 4, "total length past packet");
  b = good;
  Put16(&b[2], 10);
  expect_malformed(b, 4, "total length < ihl");
  b = good;
  b[0] = 0x65;
  expect_malformed(b, 4, "version");
  expect_malformed(Bytes(good.begin(), good.begin() + 12), 4, "truncated header");
  expect_malformed(V4Raw(1, 8, true, Bytes(12, 1)), 4, "non-last length not multiple of 8");
  expect_malformed(V4Raw(1, 8, true, Bytes{}), 4, "empty fragment");
  expect_malformed(good, 5, "unknown version");
  expect_malformed(Bytes{}, 4, "empty packet");

  // Offset + length past the end a last fragment fixed; a second last with another end.
  ASSERT_EQ(h.Add(V4Raw(2, 16, false, Bytes(8, 1))), R::kHeld);
  expect_malformed(V4Raw(2, 16, true, Bytes(16, 1)), 4, "past the end");
  expect_malformed(V4Raw(2, 32, false, Bytes(8, 1)), 4, "second last, other end");
  ASSERT_EQ(h.Add(V4Raw(3, 64, true, Bytes(16, 1))), R::kHeld);
  expect_malformed(V4Raw(3, 16, false, Bytes(8, 1)), 4, "last before held data");

  // IPv6.
  Bytes v6 = V6Datagram(UdpPayload(100), true);
  Bytes f6 = SplitV6(v6, 48, 64, 1, 40)[0];
  Bytes t = Bytes(f6.begin(), f6.begin() + 52);  // Fragment header cut at 4 of 8 bytes
  Put16(&t[4], 12);
  expect_malformed(t, 6, "fragment header truncated");
  t = f6;
  Put16(&t[4], 2000);
  expect_malformed(t, 6, "payload length past packet");
  t = f6;
  t[41] = 200;  // hop-by-hop length past the packet
  expect_malformed(t, 6, "extension header truncated");
  expect_malformed(Bytes(f6.begin(), f6.begin() + 30), 6, "short ipv6 header");
  // Nine hop-by-hop-like headers in a row before the Fragment header.
  Bytes chain(40, 0);
  chain[0] = 0x60;
  chain[6] = 60;
  for (int i = 0; i < 9; ++i) {
    Bytes eh = {static_cast<uint8_t>(i == 8 ? 44 : 60), 0, 1, 4, 0, 0, 0, 0};
    chain.insert(chain.end(), eh.begin(), eh.end());
  }
  Bytes fh = {17, 0, 0, 1, 0, 0, 0, 7};
  chain.insert(chain.end(), fh.begin(), fh.end());
  chain.insert(chain.end(), 8, 0xaa);
  Put16(&chain[4], static_cast<uint32_t>(chain.size() - 40));
  expect_malformed(chain, 6, "too many extension headers");

  EXPECT_EQ(h.sink.Count(DefragEvent::kMalformed), static_cast<int>(h.d.counters().malformed));
  EXPECT_EQ(h.d.trackers_in_use(), 2u);  // only the two valid held datagrams (ids 2 and 3)
}

TEST(DefragTest, OffsetOverflowRejected) {
  Harness h;
  // Maximum offset with a maximum-size fragment: 65528 + 65515 would overflow 16 bits.
  Bytes f = V4Raw(1, 65528, true, Bytes(65512, 1));
  EXPECT_EQ(h.Add(f), R::kTooLarge);
  EXPECT_EQ(h.d.trackers_in_use(), 0u);
  EXPECT_EQ(h.d.slots_in_use(), 0u);
}

TEST(DefragTest, InterleavedDatagramsWithDifferentIds) {
  Harness h;
  Bytes a = V4Datagram(UdpPayload(1000, 1), 100);
  Bytes b = V4Datagram(UdpPayload(1000, 2), 101);
  auto fa = SplitV4(a, 256);
  auto fb = SplitV4(b, 256);
  ASSERT_EQ(fa.size(), fb.size());
  for (size_t i = 0; i + 1 < fa.size(); ++i) {
    ASSERT_EQ(h.Add(fb[i]), R::kHeld);
    ASSERT_EQ(h.Add(fa[i]), R::kHeld);
  }
  ASSERT_EQ(h.Add(fa.back()), R::kComplete);
  EXPECT_EQ(h.Out(), a);
  ASSERT_EQ(h.Add(fb.back()), R::kComplete);
  EXPECT_EQ(h.Out(), b);
  EXPECT_EQ(h.d.counters().overlaps, 0u);
}

TEST(DefragTest, SameIdDifferentSourceKeptApart) {
  Harness h;
  Bytes a = V4Datagram(UdpPayload(500, 1), 7, /*src_last=*/1);
  Bytes b = V4Datagram(UdpPayload(500, 9), 7, /*src_last=*/2);
  auto fa = SplitV4(a, 256);
  auto fb = SplitV4(b, 256);
  ASSERT_EQ(h.Add(fa[0]), R::kHeld);
  ASSERT_EQ(h.Add(fb[0]), R::kHeld);
  EXPECT_EQ(h.d.trackers_in_use(), 2u);
  ASSERT_EQ(h.Add(fb[1]), R::kComplete);
  EXPECT_EQ(h.Out(), b);
  ASSERT_EQ(h.Add(fa[1]), R::kComplete);
  EXPECT_EQ(h.Out(), a);
  EXPECT_EQ(h.d.counters().overlaps, 0u);
  // IPv6 too.
  Bytes c = V6Datagram(UdpPayload(500, 3), false, 1);
  Bytes e = V6Datagram(UdpPayload(500, 4), false, 2);
  auto fc = SplitV6(c, 40, 256, 7, 6);
  auto fe = SplitV6(e, 40, 256, 7, 6);
  ASSERT_EQ(h.Add(fc[0], 6), R::kHeld);
  ASSERT_EQ(h.Add(fe[0], 6), R::kHeld);
  ASSERT_EQ(h.Add(fc[1], 6), R::kComplete);
  EXPECT_EQ(h.Out(), c);
  ASSERT_EQ(h.Add(fe[1], 6), R::kComplete);
  EXPECT_EQ(h.Out(), e);
}

TEST(DefragTest, VlanIsPartOfTheKey) {
  Harness h;
  Bytes a = V4Datagram(UdpPayload(500), 7);
  auto fa = SplitV4(a, 256);
  uint16_t v10 = 10;
  uint16_t v20 = 20;
  h.d.set_vlans(&v10, 1);
  ASSERT_EQ(h.Add(fa[0]), R::kHeld);
  h.d.set_vlans(&v20, 1);
  ASSERT_EQ(h.Add(fa[1]), R::kHeld);  // other VLAN: another datagram
  EXPECT_EQ(h.d.trackers_in_use(), 2u);
  h.d.set_vlans(&v10, 1);
  ASSERT_EQ(h.Add(fa[1]), R::kComplete);
  EXPECT_EQ(h.Out(), a);
}

TEST(DefragTest, OutputTooSmall) {
  DefragConfig cfg = SmallConfig();
  Defragmenter d(cfg);
  RecordingSink sink;
  Bytes dgram = V4Datagram(UdpPayload(300), 1);
  auto frags = SplitV4(dgram, 160);
  Bytes out(100);
  uint32_t len = 0;
  ASSERT_EQ(d.Add(frags[0], 4, 0, out, &len, sink), R::kHeld);
  EXPECT_EQ(d.Add(frags[1], 4, 0, out, &len, sink), R::kOutTooSmall);
  EXPECT_EQ(len, 0u);
  EXPECT_EQ(d.counters().out_too_small, 1u);
  EXPECT_EQ(d.trackers_in_use(), 0u);
}

}  // namespace
}  // namespace vigil::dp
