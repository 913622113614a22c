// The bounded BER/DER reader: headers, lengths, partial mode, integers, OIDs.
#include "dataplane/proto/asn1.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace vigil::proto {
namespace {

using Bytes = std::vector<uint8_t>;

Asn1Status Read(const Bytes& b, Asn1Element* e, bool partial = false) {
  return Asn1ReadHeader(std::span<const uint8_t>(b.data(), b.size()), partial, e);
}

TEST(Asn1, ShortAndLongLengths) {
  Asn1Element e;
  ASSERT_EQ(Read({0x30, 0x02, 0x05, 0x00}, &e), Asn1Status::kOk);
  EXPECT_TRUE(e.IsUniversal(kAsn1Sequence));
  EXPECT_TRUE(e.constructed);
  EXPECT_EQ(e.header_len, 2u);
  EXPECT_EQ(e.length, 2u);
  EXPECT_TRUE(e.complete);

  Bytes b = {0x04, 0x81, 0x80};
  b.resize(3 + 0x80, 0xee);
  ASSERT_EQ(Read(b, &e), Asn1Status::kOk);
  EXPECT_EQ(e.header_len, 3u);
  EXPECT_EQ(e.content.size(), 0x80u);

  b = {0x04, 0x82, 0x01, 0x00};
  b.resize(4 + 256);
  ASSERT_EQ(Read(b, &e), Asn1Status::kOk);
  EXPECT_EQ(e.length, 256u);
}

TEST(Asn1, RejectsIndefiniteOverlongAndHugeLengths) {
  Asn1Element e;
  EXPECT_EQ(Read({0x30, 0x80, 0x00, 0x00}, &e), Asn1Status::kBad);           // indefinite
  EXPECT_EQ(Read({0x04, 0x81, 0x05, 1, 2, 3, 4, 5}, &e), Asn1Status::kBad);  // long form < 128
  EXPECT_EQ(Read({0x04, 0x82, 0x00, 0x90}, &e), Asn1Status::kBad);           // leading zero octet
  EXPECT_EQ(Read({0x04, 0x85, 1, 0, 0, 0, 0}, &e), Asn1Status::kBad);        // 5 length octets
  EXPECT_EQ(Read({0x04, 0xff}, &e), Asn1Status::kBad);                       // 127 length octets
  // A 4-octet length far beyond the input: truncated, or partial content in partial mode.
  const Bytes huge = {0x04, 0x84, 0xff, 0xff, 0xff, 0xff, 1, 2, 3};
  EXPECT_EQ(Read(huge, &e), Asn1Status::kTruncated);
  ASSERT_EQ(Read(huge, &e, true), Asn1Status::kOk);
  EXPECT_FALSE(e.complete);
  EXPECT_EQ(e.length, 0xffffffffu);
  EXPECT_EQ(e.content.size(), 3u);
}

TEST(Asn1, HighTagNumbers) {
  Asn1Element e;
  ASSERT_EQ(Read({0x9f, 0x81, 0x00, 0x00}, &e), Asn1Status::kOk);  // [128] primitive
  EXPECT_EQ(e.cls, Asn1Class::kContext);
  EXPECT_EQ(e.tag, 128u);
  EXPECT_FALSE(e.constructed);
  ASSERT_EQ(Read({0x7f, 0x1f, 0x00}, &e), Asn1Status::kOk);  // [APPLICATION 31] constructed
  EXPECT_EQ(e.cls, Asn1Class::kApplication);
  EXPECT_EQ(e.tag, 31u);
  ASSERT_EQ(Read({0xdf, 0xff, 0xff, 0xff, 0x7f, 0x00}, &e), Asn1Status::kOk);  // 28 bits
  EXPECT_EQ(e.cls, Asn1Class::kPrivate);
  EXPECT_EQ(e.tag, 0x0fffffffu);
  EXPECT_EQ(Read({0x1f, 0x80, 0x01, 0x00}, &e), Asn1Status::kBad);  // leading zero septet
  EXPECT_EQ(Read({0x1f, 0x81, 0x81, 0x81, 0x81, 0x01, 0x00}, &e), Asn1Status::kBad);  // > 4
  EXPECT_EQ(Read({0x1f, 0x81}, &e), Asn1Status::kTruncated);
  EXPECT_EQ(Read({0x1f}, &e), Asn1Status::kTruncated);
}

TEST(Asn1, TruncatedAtEveryLength) {
  // SEQUENCE { INTEGER 300, OCTET STRING (200 bytes), [5] { NULL } }
  Bytes b = {0x30, 0x81, 0xd3, 0x02, 0x02, 0x01, 0x2c, 0x04, 0x81, 0xc8};
  b.resize(b.size() + 200, 0x41);
  b.insert(b.end(), {0xa5, 0x02, 0x05, 0x00});
  ASSERT_EQ(b.size(), 3u + 0xd3);
  for (size_t n = 0; n <= b.size(); ++n) {
    const std::span<const uint8_t> in(b.data(), n);
    Asn1Element e;
    const Asn1Status s = Asn1ReadHeader(in, false, &e);
    if (n == 0) {
      EXPECT_EQ(s, Asn1Status::kEnd);
    } else if (n < b.size()) {
      EXPECT_EQ(s, Asn1Status::kTruncated) << n;
    } else {
      ASSERT_EQ(s, Asn1Status::kOk);
    }
    // Partial mode walks whatever is there without reading past it.
    if (Asn1ReadHeader(in, true, &e) != Asn1Status::kOk) continue;
    Asn1Reader r = Asn1Children(e);
    Asn1Element c;
    int count = 0;
    while (r.Next(&c) == Asn1Status::kOk) {
      EXPECT_LE(c.content.data() + c.content.size(), b.data() + n);
      ++count;
    }
    EXPECT_LE(count, 3);
  }
}

TEST(Asn1, ReaderStopsAtFirstError) {
  const Bytes b = {0x02, 0x01, 0x05, 0x30, 0x80, 0x02, 0x01, 0x06};
  Asn1Reader r(std::span<const uint8_t>(b.data(), b.size()));
  Asn1Element e;
  ASSERT_EQ(r.Next(&e), Asn1Status::kOk);
  EXPECT_EQ(r.Next(&e), Asn1Status::kBad);
  EXPECT_EQ(r.Next(&e), Asn1Status::kBad);  // sticky
  Asn1Reader empty(std::span<const uint8_t>{});
  EXPECT_TRUE(empty.AtEnd());
  EXPECT_EQ(empty.Next(&e), Asn1Status::kEnd);
}

TEST(Asn1, InnerOfCompleteElementMustFit) {
  // [0] { OCTET STRING claiming 10 bytes } where [0] holds 4 bytes: malformed, even in partial
  // mode, because [0] itself is complete.
  const Bytes b = {0xa0, 0x04, 0x04, 0x0a, 0x01, 0x02, 0x07, 0x07};
  Asn1Element outer, inner;
  ASSERT_EQ(Read(b, &outer, true), Asn1Status::kOk);
  EXPECT_TRUE(outer.complete);
  EXPECT_EQ(Asn1Inner(outer, &inner), Asn1Status::kTruncated);
  // When [0] is itself cut (it claims 12 bytes), the inner element may be cut too.
  const Bytes cut = {0xa0, 0x0c, 0x04, 0x0a, 0x01, 0x02};
  ASSERT_EQ(Read(cut, &outer, true), Asn1Status::kOk);
  EXPECT_FALSE(outer.complete);
  ASSERT_EQ(Asn1Inner(outer, &inner), Asn1Status::kOk);
  EXPECT_FALSE(inner.complete);
  EXPECT_EQ(inner.content.size(), 2u);
}

TEST(Asn1, Integers) {
  int64_t v = 0;
  const uint8_t m1[] = {0xff};
  ASSERT_TRUE(Asn1ToInt64(m1, &v));
  EXPECT_EQ(v, -1);
  const uint8_t p128[] = {0x00, 0x80};
  ASSERT_TRUE(Asn1ToInt64(p128, &v));
  EXPECT_EQ(v, 128);
  const uint8_t neg[] = {0xff, 0x80};
  ASSERT_TRUE(Asn1ToInt64(neg, &v));
  EXPECT_EQ(v, -128);
  const uint8_t nine[9] = {1};
  EXPECT_FALSE(Asn1ToInt64(nine, &v));
  EXPECT_FALSE(Asn1ToInt64({}, &v));
  int32_t w = 0;
  const uint8_t big[] = {0x01, 0x00, 0x00, 0x00, 0x00};
  EXPECT_FALSE(Asn1ToInt32(big, &w));
  const uint8_t min32[] = {0x80, 0x00, 0x00, 0x00};
  ASSERT_TRUE(Asn1ToInt32(min32, &w));
  EXPECT_EQ(w, INT32_MIN);
}

TEST(Asn1, Oids) {
  const Bytes b = {0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x02};
  Asn1Element e;
  ASSERT_EQ(Read(b, &e), Asn1Status::kOk);
  const uint8_t spnego[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x02};
  const uint8_t other[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x03};
  EXPECT_TRUE(Asn1OidIs(e, spnego));
  EXPECT_FALSE(Asn1OidIs(e, other));
  EXPECT_FALSE(Asn1OidIs(e, std::span<const uint8_t>(spnego, 5)));
}

TEST(Asn1, DeepNestingIsWalkedIteratively) {
  // 100000 nested SEQUENCEs, each with a long-form length where needed: descending level by
  // level takes no stack.
  Bytes b;
  std::vector<size_t> sizes;
  size_t inner = 0;
  for (int i = 0; i < 100000; ++i) {
    sizes.push_back(inner);
    inner += 2 + (inner < 0x80 ? 0 : inner < 0x100 ? 1 : inner < 0x10000 ? 2 : 3);
  }
  for (int i = 99999; i >= 0; --i) {
    const size_t n = sizes[static_cast<size_t>(i)];
    b.push_back(0x30);
    if (n < 0x80) {
      b.push_back(static_cast<uint8_t>(n));
    } else if (n < 0x100) {
      b.insert(b.end(), {0x81, static_cast<uint8_t>(n)});
    } else if (n < 0x10000) {
      b.insert(b.end(), {0x82, static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)});
    } else {
      b.insert(b.end(), {0x83, static_cast<uint8_t>(n >> 16), static_cast<uint8_t>(n >> 8),
                         static_cast<uint8_t>(n)});
    }
  }
  Asn1Element e;
  std::span<const uint8_t> cur(b.data(), b.size());
  int depth = 0;
  while (Asn1ReadHeader(cur, false, &e) == Asn1Status::kOk) {
    cur = e.content;
    ++depth;
  }
  EXPECT_EQ(depth, 100000);
}

}  // namespace
}  // namespace vigil::proto
