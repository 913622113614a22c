#include "dataplane/stream/reassembly.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace vigil::dp {
namespace {

constexpr OverlapPolicy kPolicies[] = {OverlapPolicy::kFirst, OverlapPolicy::kLast,
                                       OverlapPolicy::kLinux, OverlapPolicy::kWindows,
                                       OverlapPolicy::kBsd};

struct RecordingSink : StreamSink {
  struct Chunk {
    const uint8_t* ptr;
    size_t len;
  };
  std::string data;           // everything delivered, gaps as nothing
  std::string log;            // data with "<gap N>" markers, for order checks
  std::vector<Chunk> chunks;  // the spans as handed over
  std::vector<uint32_t> gaps;
  std::vector<StreamEvent> events;

  void OnData(std::span<const uint8_t> d) noexcept override {
    chunks.push_back({d.data(), d.size()});
    data.append(reinterpret_cast<const char*>(d.data()), d.size());
    log.append(reinterpret_cast<const char*>(d.data()), d.size());
  }
  void OnGap(uint32_t missing) noexcept override {
    gaps.push_back(missing);
    log += "<gap " + std::to_string(missing) + ">";
  }
  void OnEvent(StreamEvent e) noexcept override { events.push_back(e); }
  int Count(StreamEvent e) const {
    return static_cast<int>(std::count(events.begin(), events.end(), e));
  }
};

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// One reassembler over its own pool, with a fresh direction started after a SYN at `isn`.
struct Harness {
  explicit Harness(ReassemblyConfig cfg = {}, uint32_t pool_slots = 1024, uint32_t isn = 1000)
      : pool(pool_slots), reasm(&pool, cfg) {
    reasm.Init(&dir, isn);
  }
  uint32_t Base() const { return dir.isn + 1; }
  Reassembler::Result Add(uint32_t rel, const std::string& s, bool fin = false) {
    return reasm.Add(&dir, Base() + rel, Bytes(s), fin, sink);
  }
  SegmentPool pool;
  Reassembler reasm;
  StreamDirection dir{};
  RecordingSink sink;
};

TEST(OverlapPolicyTest, NamesRoundTrip) {
  for (OverlapPolicy p : kPolicies) {
    OverlapPolicy parsed = OverlapPolicy::kFirst;
    ASSERT_TRUE(ParseOverlapPolicy(OverlapPolicyName(p), &parsed));
    EXPECT_EQ(parsed, p);
  }
  EXPECT_STREQ(OverlapPolicyName(OverlapPolicy::kLinux), "linux");
  EXPECT_STREQ(OverlapPolicyName(OverlapPolicy::kWindows), "windows");
  OverlapPolicy out = OverlapPolicy::kLast;
  EXPECT_FALSE(ParseOverlapPolicy("Linux", &out));
  EXPECT_FALSE(ParseOverlapPolicy("", &out));
  EXPECT_FALSE(ParseOverlapPolicy("solaris", &out));
  EXPECT_EQ(out, OverlapPolicy::kLast);
}

TEST(SeqTest, WraparoundComparisons) {
  EXPECT_TRUE(SeqLt(0xfffffff0u, 0x10u));
  EXPECT_TRUE(SeqGt(0x10u, 0xfffffff0u));
  EXPECT_TRUE(SeqLe(5u, 5u));
  EXPECT_TRUE(SeqGe(5u, 5u));
  EXPECT_FALSE(SeqLt(5u, 5u));
  EXPECT_TRUE(SeqLt(0x7fffffffu, 0x80000000u));
}

TEST(SegmentPoolTest, AllocFreeCountersAndCallerMemory) {
  alignas(64) static uint8_t memory[3 * sizeof(SegmentSlot)];
  ASSERT_EQ(SegmentPool::MemoryBytes(3), sizeof(memory));
  SegmentPool pool(3, memory);
  EXPECT_EQ(pool.capacity(), 3u);
  uint32_t a = pool.Alloc(), b = pool.Alloc(), c = pool.Alloc();
  EXPECT_NE(a, kSegmentNil);
  EXPECT_NE(b, kSegmentNil);
  EXPECT_NE(c, kSegmentNil);
  EXPECT_NE(a, b);
  EXPECT_NE(b, c);
  EXPECT_EQ(&pool.slot(a), reinterpret_cast<SegmentSlot*>(memory) + a);
  EXPECT_EQ(pool.Alloc(), kSegmentNil);
  EXPECT_EQ(pool.alloc_failures(), 1u);
  EXPECT_EQ(pool.in_use(), 3u);
  pool.Free(b);
  EXPECT_EQ(pool.in_use(), 2u);
  EXPECT_EQ(pool.Alloc(), b);
  pool.Free(a);
  pool.Free(b);
  pool.Free(c);
  EXPECT_EQ(pool.in_use(), 0u);
  EXPECT_EQ(pool.high_water(), 3u);
  pool.Free(7);  // out of range: counted, ignored
  EXPECT_EQ(pool.bad_frees(), 1u);
  EXPECT_EQ(pool.in_use(), 0u);
}

TEST(ReassemblyTest, InOrderIsZeroCopy) {
  Harness h;
  const std::string a = "hello ", b = "world";
  EXPECT_EQ(h.Add(0, a), Reassembler::Result::kDelivered);
  EXPECT_EQ(h.Add(6, b), Reassembler::Result::kDelivered);
  ASSERT_EQ(h.sink.chunks.size(), 2u);
  EXPECT_EQ(h.sink.chunks[0].ptr, reinterpret_cast<const uint8_t*>(a.data()));
  EXPECT_EQ(h.sink.chunks[0].len, a.size());
  EXPECT_EQ(h.sink.chunks[1].ptr, reinterpret_cast<const uint8_t*>(b.data()));
  EXPECT_EQ(h.sink.data, "hello world");
  EXPECT_EQ(h.dir.next_seq, h.Base() + 11);
  EXPECT_EQ(h.dir.delivered, 11u);
  EXPECT_EQ(h.pool.in_use(), 0u);
  EXPECT_EQ(h.reasm.counters().segments_in_order, 2u);
  EXPECT_EQ(h.reasm.counters().bytes_delivered, 11u);
  EXPECT_TRUE(h.sink.events.empty());
}

TEST(ReassemblyTest, OutOfOrderThenFill) {
  Harness h;
  EXPECT_EQ(h.Add(10, "KLMNO"), Reassembler::Result::kBuffered);
  EXPECT_EQ(h.Add(5, "FGHIJ"), Reassembler::Result::kBuffered);
  EXPECT_TRUE(h.sink.data.empty());
  EXPECT_EQ(h.dir.buffered_segments, 2u);
  EXPECT_EQ(h.dir.buffered_bytes, 10u);
  EXPECT_EQ(h.pool.in_use(), 2u);
  const std::string first = "ABCDE";
  EXPECT_EQ(h.Add(0, first), Reassembler::Result::kDelivered);
  EXPECT_EQ(h.sink.data, "ABCDEFGHIJKLMNO");
  ASSERT_EQ(h.sink.chunks.size(), 3u);
  EXPECT_EQ(h.sink.chunks[0].ptr, reinterpret_cast<const uint8_t*>(first.data()));
  EXPECT_EQ(h.pool.in_use(), 0u);
  EXPECT_EQ(h.dir.buffered_segments, 0u);
  EXPECT_EQ(h.dir.buffered_bytes, 0u);
  EXPECT_EQ(h.dir.head, kSegmentNil);
  EXPECT_EQ(h.reasm.counters().segments_out_of_order, 2u);
  EXPECT_EQ(h.reasm.counters().segments_in_order, 1u);
  EXPECT_TRUE(h.sink.events.empty());
}

TEST(ReassemblyTest, RetransmissionOfDeliveredDataIsTrimmed) {
  Harness h;
  h.Add(0, "abcdef");
  EXPECT_EQ(h.Add(0, "XXXX"), Reassembler::Result::kDuplicate);
  // Overlaps delivered data (different bytes: cannot be compared) and extends it.
  EXPECT_EQ(h.Add(4, "YYghi"), Reassembler::Result::kDelivered);
  EXPECT_EQ(h.sink.data, "abcdefghi");
  EXPECT_EQ(h.reasm.counters().retransmissions, 2u);
  EXPECT_EQ(h.sink.Count(StreamEvent::kRetransmission), 2);
  EXPECT_EQ(h.sink.Count(StreamEvent::kOverlapDiffers), 0);
}

// Splits a 5000-byte pseudo-random message into segments of random sizes with random overlaps
// (identical bytes), shuffles them, feeds them: every policy must rebuild the message exactly.
TEST(ReassemblyTest, RandomPermutationsRebuildTheMessage) {
  std::mt19937 rng(20240611);
  std::vector<uint8_t> msg(5000);
  for (uint8_t& b : msg) b = static_cast<uint8_t>(rng());
  struct Seg {
    uint32_t off;
    uint32_t len;
  };
  for (int tc = 0; tc < 500; ++tc) {
    std::vector<Seg> segs;
    uint32_t pos = 0;
    while (pos < msg.size()) {
      const uint32_t back = (rng() % 3 == 0) ? std::min<uint32_t>(pos, rng() % 300) : 0;
      const uint32_t max_len = (rng() % 10 == 0) ? 4500 : 400;
      const uint32_t start = pos - back;
      const uint32_t len =
          std::min<uint32_t>(static_cast<uint32_t>(msg.size()) - start, 1 + rng() % max_len);
      segs.push_back({start, len});
      pos = std::max(pos, start + len);
    }
    std::shuffle(segs.begin(), segs.end(), rng);
    // Half the cases start just below the wrap of the sequence space.
    const uint32_t isn =
        (tc % 2 == 0) ? 0xffffffffu - (rng() % 6000) : static_cast<uint32_t>(rng());
    for (OverlapPolicy p : kPolicies) {
      ReassemblyConfig cfg;
      cfg.policy = p;
      Harness h(cfg, 512, isn);
      for (const Seg& s : segs) {
        const auto r =
            h.reasm.Add(&h.dir, h.Base() + s.off,
                        std::span<const uint8_t>(msg.data() + s.off, s.len), false, h.sink);
        ASSERT_NE(r, Reassembler::Result::kPoolExhausted);
        ASSERT_NE(r, Reassembler::Result::kWindowExceeded);
      }
      h.reasm.Flush(&h.dir, h.sink);
      ASSERT_EQ(h.sink.data.size(), msg.size()) << "case " << tc << " " << OverlapPolicyName(p);
      ASSERT_EQ(0, std::memcmp(h.sink.data.data(), msg.data(), msg.size()))
          << "case " << tc << " " << OverlapPolicyName(p);
      ASSERT_TRUE(h.sink.gaps.empty());
      ASSERT_EQ(h.sink.Count(StreamEvent::kOverlapDiffers), 0);
      ASSERT_EQ(h.pool.in_use(), 0u);
      ASSERT_EQ(h.dir.next_seq, h.Base() + 5000);
      ASSERT_EQ(h.reasm.counters().bytes_delivered, 5000u);
    }
  }
}

// Novak-style overlap pattern, one byte per sequence number. Originals (upper case) are sent
// first, then overlapping segments (lower case) with different bytes, each hitting one case:
//   a [1,4)   starts before A [2,6), ends inside          b [8,14)  same start as B [8,12), ends
//   after c [15,17) inside C [14,18)                            d [20,24) exactly D e [28,31)
//   starts inside E [26,30), ends after         f [31,37) covers F [32,36) g [37,44) spans G
//   [38,40) and H [41,43)               i [46,48) same start as I [46,50), ends before j [54,56)
//   starts inside J [52,56), ends with it
// then fillers "_" for the holes, then "Z" at 0.
struct Piece {
  uint32_t off;
  const char* bytes;
};
constexpr Piece kOriginals[] = {{2, "AAAA"},  {8, "BBBB"},  {14, "CCCC"}, {20, "DDDD"},
                                {26, "EEEE"}, {32, "FFFF"}, {38, "GG"},   {41, "HH"},
                                {46, "IIII"}, {52, "JJJJ"}};
constexpr Piece kOverlaps[] = {{1, "aaa"},      {8, "bbbbbb"}, {15, "cc"},
                               {20, "dddd"},    {28, "eee"},   {31, "ffffff"},
                               {37, "ggggggg"}, {46, "ii"},    {54, "jj"}};
constexpr Piece kFillers[] = {{6, "__"}, {18, "__"}, {24, "__"}, {44, "__"}, {50, "__"}};

struct NovakCase {
  OverlapPolicy policy;
  const char* expected;
};
//                                       0         1         2         3         4         5
//                                       01234567890123456789012345678901234567890123456789012345
constexpr NovakCase kNovak[] = {
    {OverlapPolicy::kFirst, /*       */ "ZaAAAA__BBBBbbCCCC__DDDD__EEEEefFFFFfgGGgHHg__IIII__JJJJ"},
    {OverlapPolicy::kWindows, /*     */ "ZaAAAA__BBBBbbCCCC__DDDD__EEEEefFFFFfgGGgHHg__IIII__JJJJ"},
    {OverlapPolicy::kLast, /*        */ "ZaaaAA__bbbbbbCccC__dddd__EEeeeffffffggggggg__iiII__JJjj"},
    {OverlapPolicy::kBsd, /*         */ "ZaaaAA__BBBBbbCCCC__DDDD__EEEEeffffffggggggg__IIII__JJJJ"},
    {OverlapPolicy::kLinux, /*       */ "ZaaaAA__bbbbbbCCCC__DDDD__EEEEeffffffggggggg__IIII__JJJJ"},
};

void FeedPieces(Harness& h, std::span<const Piece> pieces) {
  for (const Piece& p : pieces) h.Add(p.off, p.bytes);
}

TEST(ReassemblyTest, NovakPatternAllBuffered) {
  for (const NovakCase& nc : kNovak) {
    SCOPED_TRACE(OverlapPolicyName(nc.policy));
    ReassemblyConfig cfg;
    cfg.policy = nc.policy;
    Harness h(cfg);
    FeedPieces(h, kOriginals);
    EXPECT_EQ(h.sink.Count(StreamEvent::kOverlapDiffers), 0);
    FeedPieces(h, kOverlaps);
    EXPECT_EQ(h.sink.Count(StreamEvent::kOverlapDiffers), 9);  // one per overlapping segment
    EXPECT_EQ(h.reasm.counters().overlap_differs, 9u);
    EXPECT_EQ(h.reasm.counters().overlaps, 9u);
    FeedPieces(h, kFillers);
    EXPECT_TRUE(h.sink.data.empty());
    EXPECT_EQ(h.Add(0, "Z"), Reassembler::Result::kDelivered);
    EXPECT_EQ(h.sink.data, nc.expected);
    EXPECT_EQ(h.pool.in_use(), 0u);
    EXPECT_EQ(h.dir.next_seq, h.Base() + 56);
  }
}

// The same pattern with the stream start sent right after the originals: the first overlap (a,
// starting in the hole at 1) now resolves on the in-order path against buffered A, the others
// while buffered; the bytes must be the same.
TEST(ReassemblyTest, NovakPatternInOrderPath) {
  for (const NovakCase& nc : kNovak) {
    SCOPED_TRACE(OverlapPolicyName(nc.policy));
    ReassemblyConfig cfg;
    cfg.policy = nc.policy;
    Harness h(cfg);
    FeedPieces(h, kOriginals);
    h.Add(0, "Z");
    EXPECT_EQ(h.sink.data, "Z");
    FeedPieces(h, kOverlaps);
    EXPECT_EQ(h.sink.data, std::string(nc.expected, 6));  // a resolved in order, then A's tail
    EXPECT_EQ(h.sink.Count(StreamEvent::kOverlapDiffers), 9);
    FeedPieces(h, kFillers);
    EXPECT_EQ(h.sink.data, nc.expected);
    EXPECT_TRUE(h.sink.gaps.empty());
    EXPECT_EQ(h.pool.in_use(), 0u);
  }
}

// An in-order segment spanning several buffered segments and the holes between them.
TEST(ReassemblyTest, InOrderSegmentSpanningSeveralBuffered) {
  for (OverlapPolicy p : kPolicies) {
    SCOPED_TRACE(OverlapPolicyName(p));
    ReassemblyConfig cfg;
    cfg.policy = p;
    Harness h(cfg);
    h.Add(2, "BB");
    h.Add(6, "CC");
    h.Add(12, "DD");
    const std::string seg = "nnnnnnnnnn";
    EXPECT_EQ(h.Add(0, seg), Reassembler::Result::kDelivered);
    const bool keeps_original = p == OverlapPolicy::kFirst || p == OverlapPolicy::kWindows;
    EXPECT_EQ(h.sink.data, keeps_original ? "nnBBnnCCnn" : "nnnnnnnnnn");
    EXPECT_EQ(h.sink.chunks[0].ptr, reinterpret_cast<const uint8_t*>(seg.data()));  // zero-copy
    EXPECT_EQ(h.sink.Count(StreamEvent::kOverlapDiffers), 1);
    EXPECT_EQ(h.dir.buffered_segments, 1u);  // DD is still waiting for [10,12)
    h.Add(10, "xx");
    EXPECT_EQ(h.sink.data.substr(10), "xxDD");
    EXPECT_EQ(h.pool.in_use(), 0u);
  }
}

TEST(ReassemblyTest, InOrderSegmentOverlappingBufferedData) {
  struct Case {
    OverlapPolicy policy;
    const char* expected;
  };
  // Buffered [5,10) "BBBBB"; then in-order [0,8) "aaaaaaaa", which starts before it.
  for (const Case& c :
       {Case{OverlapPolicy::kFirst, "aaaaaBBBBB"}, Case{OverlapPolicy::kWindows, "aaaaaBBBBB"},
        Case{OverlapPolicy::kLast, "aaaaaaaaBB"}, Case{OverlapPolicy::kBsd, "aaaaaaaaBB"},
        Case{OverlapPolicy::kLinux, "aaaaaaaaBB"}}) {
    SCOPED_TRACE(OverlapPolicyName(c.policy));
    ReassemblyConfig cfg;
    cfg.policy = c.policy;
    Harness h(cfg);
    h.Add(5, "BBBBB");
    EXPECT_EQ(h.Add(0, "aaaaaaaa"), Reassembler::Result::kDelivered);
    EXPECT_EQ(h.sink.data, c.expected);
    EXPECT_EQ(h.sink.Count(StreamEvent::kOverlapDiffers), 1);
    EXPECT_EQ(h.pool.in_use(), 0u);
    EXPECT_EQ(h.dir.next_seq, h.Base() + 10);
  }
}

TEST(ReassemblyTest, LinuxSameStartEndsAfterOnInOrderPath) {
  // Buffered original [0,4) cannot exist in order, so use a later start: original [3,6),
  // then [3,8) same start, ends after; then fill [0,3).
  for (OverlapPolicy p : kPolicies) {
    SCOPED_TRACE(OverlapPolicyName(p));
    ReassemblyConfig cfg;
    cfg.policy = p;
    Harness h(cfg);
    h.Add(3, "OOO");
    h.Add(3, "nnnnn");
    h.Add(0, "---");
    const bool new_wins = p == OverlapPolicy::kLast || p == OverlapPolicy::kLinux;
    EXPECT_EQ(h.sink.data, new_wins ? "---nnnnn" : "---OOOnn");
  }
}

TEST(ReassemblyTest, SequenceWraparound) {
  Harness h({}, 64, 0xfffffff0u);  // first byte at 0xfffffff1
  std::string msg;
  for (int i = 0; i < 40; ++i) msg += static_cast<char>('a' + i % 26);
  // Out of order across the wrap: [20,40) lands at 0x5..., [10,20) straddles 0.
  h.Add(20, msg.substr(20));
  h.Add(10, msg.substr(10, 10));
  EXPECT_EQ(h.dir.buffered_segments, 2u);
  EXPECT_TRUE(h.sink.data.empty());
  h.Add(0, msg.substr(0, 12));  // overlaps the straddling segment by 2 identical bytes
  EXPECT_EQ(h.sink.data, msg);
  EXPECT_EQ(h.dir.next_seq, 0xfffffff1u + 40u);
  EXPECT_EQ(h.dir.next_seq, 0x19u);
  EXPECT_EQ(h.pool.in_use(), 0u);
  EXPECT_EQ(h.sink.Count(StreamEvent::kOverlapDiffers), 0);
  // A retransmission from before the wrap is recognised as old.
  EXPECT_EQ(h.Add(0, "abc"), Reassembler::Result::kDuplicate);
}

TEST(ReassemblyTest, FlushReportsGapsThenLaterData) {
  Harness h;
  h.Add(0, "abc");
  h.Add(10, "klm");
  h.Add(20, "uvw", /*fin=*/true);
  EXPECT_EQ(h.sink.data, "abc");
  h.reasm.Flush(&h.dir, h.sink);
  EXPECT_EQ(h.sink.log, "abc<gap 7>klm<gap 7>uvw");
  ASSERT_EQ(h.sink.gaps.size(), 2u);
  EXPECT_EQ(h.reasm.counters().gaps, 2u);
  EXPECT_EQ(h.reasm.counters().gap_bytes, 14u);
  EXPECT_NE(h.dir.flags & kStreamGapSeen, 0);
  EXPECT_EQ(h.pool.in_use(), 0u);
  EXPECT_EQ(h.dir.next_seq, h.Base() + 23);
  // The direction stays usable: the next segment is in order.
  const std::string more = "xyz";
  EXPECT_EQ(h.Add(23, more), Reassembler::Result::kAfterFin);
}

TEST(ReassemblyTest, FlushReportsGapBeforeFin) {
  Harness h;
  h.Add(0, "ab");
  h.Add(10, "", /*fin=*/true);  // FIN at 10, bytes 2..9 never came
  h.reasm.Flush(&h.dir, h.sink);
  EXPECT_EQ(h.sink.log, "ab<gap 8>");
}

TEST(ReassemblyTest, DataAfterFinIsTrimmed) {
  Harness h;
  h.Add(0, "abcd", /*fin=*/true);
  EXPECT_EQ(h.Add(2, "cdEF"), Reassembler::Result::kDuplicate);  // trimmed to [2,4): delivered
  EXPECT_EQ(h.Add(4, "EF"), Reassembler::Result::kAfterFin);
  EXPECT_EQ(h.sink.data, "abcd");
  EXPECT_EQ(h.reasm.counters().data_after_fin, 2u);
  EXPECT_EQ(h.sink.Count(StreamEvent::kDataAfterFin), 2);
}

TEST(ReassemblyTest, WindowLimitOnSegments) {
  ReassemblyConfig cfg;
  cfg.max_segments = 3;
  Harness h(cfg);
  EXPECT_EQ(h.Add(10, "a"), Reassembler::Result::kBuffered);
  EXPECT_EQ(h.Add(20, "b"), Reassembler::Result::kBuffered);
  EXPECT_EQ(h.Add(30, "c"), Reassembler::Result::kBuffered);
  EXPECT_EQ(h.Add(40, "d"), Reassembler::Result::kWindowExceeded);
  // A segment that only overlaps buffered data needs no slot: still accepted.
  EXPECT_EQ(h.Add(20, "b"), Reassembler::Result::kBuffered);
  EXPECT_EQ(h.reasm.counters().window_exceeded, 1u);
  EXPECT_EQ(h.sink.Count(StreamEvent::kWindowExceeded), 1);
  EXPECT_EQ(h.dir.buffered_segments, 3u);
  EXPECT_EQ(h.pool.in_use(), 3u);
  // In-order data needs no slot either.
  h.Add(0, "0123456789");
  EXPECT_EQ(h.sink.data, "0123456789a");
}

TEST(ReassemblyTest, WindowLimitOnBytesAndDistance) {
  ReassemblyConfig cfg;
  cfg.max_bytes = 100;
  cfg.max_ahead = 1000;
  Harness h(cfg);
  EXPECT_EQ(h.Add(10, std::string(90, 'x')), Reassembler::Result::kBuffered);
  EXPECT_EQ(h.Add(100, std::string(11, 'y')), Reassembler::Result::kWindowExceeded);
  EXPECT_EQ(h.Add(100, std::string(10, 'y')), Reassembler::Result::kBuffered);
  EXPECT_EQ(h.dir.buffered_bytes, 100u);
  Harness far(cfg);
  EXPECT_EQ(far.Add(995, "abcde"), Reassembler::Result::kBuffered);  // ends at 1000
  EXPECT_EQ(far.Add(996, "abcde"), Reassembler::Result::kWindowExceeded);
  EXPECT_EQ(far.Add(0x40000000u, "x"), Reassembler::Result::kWindowExceeded);
  EXPECT_EQ(far.reasm.counters().window_exceeded, 2u);
  // Anything the window refused left the direction untouched.
  EXPECT_EQ(far.dir.buffered_bytes, 5u);
}

TEST(ReassemblyTest, PoolExhaustionRaisesEventAndRecoversAfterRelease) {
  SegmentPool pool(4);
  Reassembler reasm(&pool, ReassemblyConfig{});
  StreamDirection a{}, b{};
  RecordingSink sink;
  reasm.Init(&a, 0);
  reasm.Init(&b, 5000);
  for (uint32_t i = 0; i < 3; ++i) {
    EXPECT_EQ(reasm.Add(&a, 1 + 10 + 10 * i, Bytes("aa"), false, sink),
              Reassembler::Result::kBuffered);
  }
  // Needs two slots ([5001+10, +2048+10) spans two), only one is left: refused whole.
  const std::string big(2100, 'b');
  EXPECT_EQ(reasm.Add(&b, 5001 + 10, Bytes(big), false, sink), Reassembler::Result::kPoolExhausted);
  EXPECT_EQ(pool.in_use(), 3u);
  EXPECT_EQ(b.buffered_segments, 0u);
  EXPECT_EQ(reasm.counters().pool_exhausted, 1u);
  EXPECT_EQ(pool.alloc_failures(), 1u);
  EXPECT_EQ(sink.Count(StreamEvent::kPoolExhausted), 1);
  EXPECT_EQ(reasm.Add(&b, 5001 + 10, Bytes("b"), false, sink), Reassembler::Result::kBuffered);
  EXPECT_EQ(reasm.Add(&b, 5001 + 20, Bytes("b"), false, sink), Reassembler::Result::kPoolExhausted);
  EXPECT_EQ(pool.in_use(), 4u);
  EXPECT_EQ(pool.high_water(), 4u);
  // In-order data still flows with the pool empty.
  EXPECT_EQ(reasm.Add(&b, 5001, Bytes("0123456789"), false, sink), Reassembler::Result::kDelivered);
  EXPECT_EQ(sink.data, "0123456789b");
  EXPECT_EQ(pool.in_use(), 3u);
  reasm.Release(&a);
  EXPECT_EQ(pool.in_use(), 0u);
  EXPECT_EQ(a.head, kSegmentNil);
  EXPECT_EQ(a.buffered_segments, 0u);
  EXPECT_EQ(a.buffered_bytes, 0u);
  EXPECT_EQ(reasm.Add(&b, 5001 + 20, Bytes(big), false, sink), Reassembler::Result::kBuffered);
  EXPECT_EQ(pool.in_use(), 2u);
  reasm.Release(&b);
  EXPECT_EQ(pool.in_use(), 0u);
}

TEST(ReassemblyTest, DepthLimit) {
  ReassemblyConfig cfg;
  cfg.depth = 10;
  Harness h(cfg);
  h.Add(9, "9ab");  // buffered, crosses the depth
  h.Add(0, "0123");
  EXPECT_EQ(h.Add(4, "4567"), Reassembler::Result::kDelivered);
  EXPECT_EQ(h.sink.data, "01234567");
  EXPECT_EQ(h.Add(12, "cd"), Reassembler::Result::kBuffered);
  EXPECT_EQ(h.pool.in_use(), 2u);
  // Filling the hole delivers the buffered data up to the depth and releases the rest.
  EXPECT_EQ(h.Add(8, "8"), Reassembler::Result::kDepthReached);
  EXPECT_EQ(h.sink.data, "0123456789");
  EXPECT_EQ(h.dir.delivered, 10u);
  EXPECT_EQ(h.sink.Count(StreamEvent::kDepthReached), 1);
  EXPECT_EQ(h.reasm.counters().depth_reached, 1u);
  EXPECT_EQ(h.pool.in_use(), 0u);
  EXPECT_EQ(h.Add(14, "ef"), Reassembler::Result::kDepthReached);
  h.reasm.Flush(&h.dir, h.sink);
  EXPECT_EQ(h.sink.data, "0123456789");
  EXPECT_EQ(h.sink.Count(StreamEvent::kDepthReached), 1);  // once
}

TEST(ReassemblyTest, PayloadsLargerThanOneSlot) {
  std::mt19937 rng(7);
  std::string msg(9000, '\0');
  for (char& c : msg) c = static_cast<char>(rng());
  Harness h;
  // 5000 bytes out of order: three slots.
  EXPECT_EQ(h.Add(4000, msg.substr(4000)), Reassembler::Result::kBuffered);
  EXPECT_EQ(h.dir.buffered_segments, 3u);
  EXPECT_EQ(h.dir.buffered_bytes, 5000u);
  // 3000 bytes overlapping the front slot by 1000 (same bytes), also out of order.
  EXPECT_EQ(h.Add(2000, msg.substr(2000, 3000)), Reassembler::Result::kBuffered);
  EXPECT_EQ(h.dir.buffered_segments, 4u);  // the 2000-byte hole fits one slot
  EXPECT_EQ(h.pool.high_water(), 4u);
  const std::string head = msg.substr(0, 2500);  // overlaps by 500 on the in-order path
  EXPECT_EQ(h.Add(0, head), Reassembler::Result::kDelivered);
  EXPECT_EQ(h.sink.data, msg);
  EXPECT_EQ(h.sink.chunks[0].ptr, reinterpret_cast<const uint8_t*>(head.data()));
  EXPECT_EQ(h.pool.in_use(), 0u);
  EXPECT_EQ(h.sink.Count(StreamEvent::kOverlapDiffers), 0);
}

TEST(ReassemblyTest, MidstreamStartFromFirstDataSegment) {
  SegmentPool pool(8);
  Reassembler reasm(&pool, ReassemblyConfig{});
  StreamDirection d{};
  RecordingSink sink;
  EXPECT_EQ(reasm.Add(&d, 777, {}, false, sink), Reassembler::Result::kEmpty);
  EXPECT_EQ(d.flags, 0);
  EXPECT_EQ(reasm.Add(&d, 777, Bytes("mid"), false, sink), Reassembler::Result::kDelivered);
  EXPECT_NE(d.flags & kStreamMidstream, 0);
  EXPECT_EQ(d.next_seq, 780u);
  EXPECT_EQ(sink.data, "mid");
  EXPECT_EQ(reasm.counters().midstream_starts, 1u);
}

TEST(ReassemblyTest, InitReleasesPreviousSegments) {
  Harness h;
  h.Add(10, "x");
  EXPECT_EQ(h.pool.in_use(), 1u);
  h.reasm.Init(&h.dir, 42);
  EXPECT_EQ(h.pool.in_use(), 0u);
  EXPECT_EQ(h.dir.next_seq, 43u);
}

}  // namespace
}  // namespace vigil::dp
