// MD5, SHA-1 and SHA-256 against the RFC 1321 / FIPS 180 (NIST example) vectors, incremental
// feeding split at every offset, and the SHA-NI block function against the portable one.
#include "dataplane/proto/hash.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "dataplane/proto/bytes.h"

namespace vigil::proto {
namespace {

template <size_t N>
std::string Hex(const std::array<uint8_t, N>& d) {
  char buf[2 * N];
  FormatHex(d, buf, sizeof buf);
  return std::string(buf, sizeof buf);
}

std::span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string Md5Hex(std::string_view s) { return Hex(Md5::Hash(Bytes(s))); }
std::string Sha1Hex(std::string_view s) { return Hex(Sha1::Hash(Bytes(s))); }
std::string Sha256Hex(std::string_view s) { return Hex(Sha256::Hash(Bytes(s))); }

// A deterministic non-text buffer (the expected digests below were computed independently).
std::vector<uint8_t> Pattern(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 131 + 7);
  return v;
}

constexpr std::string_view k448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
constexpr std::string_view k896 =
    "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnop"
    "qrsmnopqrstnopqrstu";

TEST(Md5Test, Rfc1321Vectors) {
  EXPECT_EQ(Md5Hex(""), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(Md5Hex("a"), "0cc175b9c0f1b6a831c399e269772661");
  EXPECT_EQ(Md5Hex("abc"), "900150983cd24fb0d6963f7d28e17f72");
  EXPECT_EQ(Md5Hex("message digest"), "f96b697d7cb7938d525a2f31aaf161d0");
  EXPECT_EQ(Md5Hex("abcdefghijklmnopqrstuvwxyz"), "c3fcd3d76192e4007dfb496cca67e13b");
  EXPECT_EQ(Md5Hex("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"),
            "d174ab98d277d9f5a5611c2c9f419d9f");
  EXPECT_EQ(
      Md5Hex("12345678901234567890123456789012345678901234567890123456789012345678901234567890"),
      "57edf4a22be3c955ac49da2e2107b67a");
}

TEST(Sha1Test, Fips180Vectors) {
  EXPECT_EQ(Sha1Hex(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  EXPECT_EQ(Sha1Hex("abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(Sha1Hex(k448), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
}

TEST(Sha256Test, Fips180Vectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex(k448), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(Sha256Hex(k896), "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

TEST(HashTest, MillionA) {
  const std::string chunk(1000, 'a');
  Md5 m;
  Sha1 s1;
  Sha256 s2;
  for (int i = 0; i < 1000; ++i) {
    m.Update(Bytes(chunk));
    s1.Update(Bytes(chunk));
    s2.Update(Bytes(chunk));
  }
  EXPECT_EQ(Hex(m.Final()), "7707d6ae4e027c70eea2a935c2296f21");
  EXPECT_EQ(Hex(s1.Final()), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
  EXPECT_EQ(Hex(s2.Final()), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

// Lengths around the padding boundaries (55/56/63/64/65 and two blocks).
TEST(HashTest, PaddingBoundaries) {
  struct Case {
    size_t n;
    const char* md5;
    const char* sha1;
    const char* sha256;
  };
  const Case cases[] = {
      {55, "852e13533f66e414bbbbb3348de4f81f", "9e5a20c2604688df0b1eecf4474b58bfe7227881",
       "16ed9c4697ca11d5f6fb25ea7900252dd4cb97215d7f6d0b2bb3e2a86ac0ec72"},
      {56, "98e8cb3457434649644b5fe9f4e5e4fa", "bd367cf3b85dc2cac8f6b4827cb850e4c83c521c",
       "939ada93b2fe1e9c596d767bb408567c83e253667f0b25e5be8e16f35f2cbac9"},
      {63, "c9803ddca3b148d91d5f214be64197d4", "a8f606c343b26fa851dfd149f7b12fc2dbf1af34",
       "6073f83b09ae82016cdbe24c18996c48f0eaa08ca675d0f6b90b807fc29e0149"},
      {64, "bc00c8534af1e5aef0ede584d8ad5bc3", "1abec92bfbde4197236cfba30b6b61c69d605d88",
       "b337ba9b0c69c391364e985fdcb23a889887e59800832c92fbfa22b8a3c40304"},
      {65, "4e114d3e0baf5ace365e0552a3273291", "362ce7bc4bc2b47979741db349c65fd550840dc3",
       "9d6a3fb113b586b4ab97bc11c993a27bd9b7bbcb756e0646083dc47a679600e6"},
      {119, "e0c0cb3cbc027ba4d5a6c983754f2dc1", "e7ceee9817914eef9ec7001a43033f16a086b7c7",
       "9773fbac8194c3d789af101b49b6a26073076895ef6e0f658432849dd477a43f"},
      {120, "3d7a96a57e721a4e2c2cbe55937e10e2", "9c9d46758300bc1f2c6953d4a2652ed72a202cf3",
       "070a538f085dd94821d4dc197c5c8b791051891d4fa2a1bf25d3c275236676f7"},
      {128, "154b8c17cfb174384edd9557e3e64e2b", "8abf03d87a20327b0a0dfbee98f04a881350d8f4",
       "485a94e53eba9717a5d8b7b4489cad92a752f1c5722e7dfd29dd164b7c438d11"},
      {1000, "0b8ae90ded6089334e353eb2669ab5e6", "425b5f2d2d344f4f6467cda9065cdc840619dc2d",
       "533b698850849b7908b20a22658f639c0b2a476f1791f85f50188287c31a9aba"},
  };
  const std::vector<uint8_t> data = Pattern(1000);
  for (const Case& c : cases) {
    const std::span<const uint8_t> in(data.data(), c.n);
    EXPECT_EQ(Hex(Md5::Hash(in)), c.md5) << c.n;
    EXPECT_EQ(Hex(Sha1::Hash(in)), c.sha1) << c.n;
    EXPECT_EQ(Hex(Sha256::Hash(in)), c.sha256) << c.n;
  }
}

// Feeding in two pieces split at every offset, and byte by byte, gives the one-shot digest.
TEST(HashTest, IncrementalSplitsMatchOneShot) {
  const std::vector<uint8_t> data = Pattern(300);
  const std::span<const uint8_t> all(data);
  const auto md5 = Md5::Hash(all);
  const auto sha1 = Sha1::Hash(all);
  const auto sha256 = Sha256::Hash(all);
  for (size_t cut = 0; cut <= data.size(); ++cut) {
    Md5 m;
    Sha1 s1;
    Sha256 s2;
    for (auto piece : {all.first(cut), all.subspan(cut)}) {
      m.Update(piece);
      s1.Update(piece);
      s2.Update(piece);
    }
    ASSERT_EQ(m.Final(), md5) << cut;
    ASSERT_EQ(s1.Final(), sha1) << cut;
    ASSERT_EQ(s2.Final(), sha256) << cut;
  }
  Sha256 s;
  for (uint8_t b : data) s.Update({&b, 1});
  EXPECT_EQ(s.Final(), sha256);
}

TEST(HashTest, ReusableAfterInit) {
  Sha256 s;
  s.Update(Bytes("junk"));
  (void)s.Final();
  s.Init();
  s.Update(Bytes("abc"));
  EXPECT_EQ(Hex(s.Final()), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Md5 m;
  m.Update(Bytes("junk"));
  m.Init();
  m.Update(Bytes("abc"));
  EXPECT_EQ(Hex(m.Final()), "900150983cd24fb0d6963f7d28e17f72");
}

TEST(Sha256Test, HardwareAndPortableAgree) {
  const std::vector<uint8_t> data = Pattern(4096 + 77);
  std::vector<Sha256::Digest> auto_digests;
  for (size_t n = 0; n <= data.size(); n += 37) {
    auto_digests.push_back(Sha256::Hash({data.data(), n}));
  }
  const std::string impl = Sha256::Implementation();
  Sha256::ForcePortableForTesting(true);
  EXPECT_STREQ(Sha256::Implementation(), "portable");
  size_t i = 0;
  for (size_t n = 0; n <= data.size(); n += 37, ++i) {
    ASSERT_EQ(Sha256::Hash({data.data(), n}), auto_digests[i]) << n;
  }
  Sha256::ForcePortableForTesting(false);
  EXPECT_EQ(Sha256::Implementation(), impl);
}

// Not a benchmark gate: prints throughput so a regression is visible in the log.
TEST(Sha256Test, ReportsThroughput) {
  std::vector<uint8_t> data(1 << 20);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i);
  for (bool portable : {false, true}) {
    Sha256::ForcePortableForTesting(portable);
    const auto t0 = std::chrono::steady_clock::now();
    Sha256 s;
    for (int i = 0; i < 16; ++i) s.Update(data);
    (void)s.Final();
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("sha256 %-8s %.0f MB/s\n", Sha256::Implementation(), 16.0 / secs);
  }
  Sha256::ForcePortableForTesting(false);
}

}  // namespace
}  // namespace vigil::proto
