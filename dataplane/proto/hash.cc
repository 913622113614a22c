#include "dataplane/proto/hash.h"

#include <atomic>
#include <cstddef>
#include <cstring>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#endif

namespace vigil::proto {
namespace {

inline uint32_t Rotl(uint32_t x, int n) noexcept { return (x << n) | (x >> (32 - n)); }
inline uint32_t Rotr(uint32_t x, int n) noexcept { return (x >> n) | (x << (32 - n)); }

inline uint32_t LoadLe32(const uint8_t* p) noexcept {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}
inline uint32_t LoadBe32(const uint8_t* p) noexcept {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
}
inline void StoreLe32(uint8_t* p, uint32_t v) noexcept {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
  p[2] = static_cast<uint8_t>(v >> 16);
  p[3] = static_cast<uint8_t>(v >> 24);
}
inline void StoreBe32(uint8_t* p, uint32_t v) noexcept {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

// The block buffering shared by the three hashes: whole blocks go straight from the caller's
// bytes to the block function; only a partial block is copied.
template <typename BlockFn>
void Absorb(uint8_t* block, uint32_t* block_len, uint64_t* total, std::span<const uint8_t> data,
            BlockFn&& blocks_fn) noexcept {
  const uint8_t* p = data.data();
  size_t n = data.size();
  *total += n;
  if (*block_len != 0) {
    const size_t take = n < 64 - *block_len ? n : 64 - *block_len;
    std::memcpy(block + *block_len, p, take);
    *block_len += static_cast<uint32_t>(take);
    p += take;
    n -= take;
    if (*block_len < 64) return;
    blocks_fn(block, 1);
    *block_len = 0;
  }
  if (n >= 64) {
    blocks_fn(p, n / 64);
    p += n / 64 * 64;
    n %= 64;
  }
  if (n != 0) {
    std::memcpy(block, p, n);
    *block_len = static_cast<uint32_t>(n);
  }
}

// Appends 0x80, zeros and the 64-bit bit count (little- or big-endian) and runs the last block(s).
template <typename BlockFn>
void Pad(uint8_t* block, uint32_t block_len, uint64_t total, bool big_endian,
         BlockFn&& blocks_fn) noexcept {
  block[block_len++] = 0x80;
  if (block_len > 56) {
    std::memset(block + block_len, 0, 64 - block_len);
    blocks_fn(block, 1);
    block_len = 0;
  }
  std::memset(block + block_len, 0, 56 - block_len);
  const uint64_t bits = total * 8;
  for (int i = 0; i < 8; ++i) {
    block[56 + i] = static_cast<uint8_t>(big_endian ? bits >> (56 - 8 * i) : bits >> (8 * i));
  }
  blocks_fn(block, 1);
}

// ---------------------------------------------------------------------------------------------
// MD5 (RFC 1321)

constexpr uint32_t kMd5K[64] = {
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
};
constexpr int kMd5S[4][4] = {{7, 12, 17, 22}, {5, 9, 14, 20}, {4, 11, 16, 23}, {6, 10, 15, 21}};

void Md5Blocks(uint32_t s[4], const uint8_t* p, size_t blocks) noexcept {
  for (; blocks != 0; --blocks, p += 64) {
    uint32_t m[16];
    for (int i = 0; i < 16; ++i) m[i] = LoadLe32(p + ptrdiff_t{4} * i);
    uint32_t a = s[0], b = s[1], c = s[2], d = s[3];
    for (int i = 0; i < 64; ++i) {
      uint32_t f;
      int g;
      switch (i >> 4) {
        case 0:
          f = (b & c) | (~b & d);
          g = i;
          break;
        case 1:
          f = (d & b) | (~d & c);
          g = (5 * i + 1) & 15;
          break;
        case 2:
          f = b ^ c ^ d;
          g = (3 * i + 5) & 15;
          break;
        default:
          f = c ^ (b | ~d);
          g = (7 * i) & 15;
          break;
      }
      const uint32_t t = d;
      d = c;
      c = b;
      b = b + Rotl(a + f + kMd5K[i] + m[g], kMd5S[i >> 4][i & 3]);
      a = t;
    }
    s[0] += a;
    s[1] += b;
    s[2] += c;
    s[3] += d;
  }
}

// ---------------------------------------------------------------------------------------------
// SHA-1 (FIPS 180-4 section 6.1)

void Sha1Blocks(uint32_t s[5], const uint8_t* p, size_t blocks) noexcept {
  for (; blocks != 0; --blocks, p += 64) {
    uint32_t w[80];
    for (int i = 0; i < 16; ++i) w[i] = LoadBe32(p + ptrdiff_t{4} * i);
    for (int i = 16; i < 80; ++i) w[i] = Rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = s[0], b = s[1], c = s[2], d = s[3], e = s[4];
    for (int i = 0; i < 80; ++i) {
      uint32_t f, k;
      if (i < 20) {
        f = (b & c) | (~b & d);
        k = 0x5a827999;
      } else if (i < 40) {
        f = b ^ c ^ d;
        k = 0x6ed9eba1;
      } else if (i < 60) {
        f = (b & c) | (b & d) | (c & d);
        k = 0x8f1bbcdc;
      } else {
        f = b ^ c ^ d;
        k = 0xca62c1d6;
      }
      const uint32_t t = Rotl(a, 5) + f + e + k + w[i];
      e = d;
      d = c;
      c = Rotl(b, 30);
      b = a;
      a = t;
    }
    s[0] += a;
    s[1] += b;
    s[2] += c;
    s[3] += d;
    s[4] += e;
  }
}

// ---------------------------------------------------------------------------------------------
// SHA-256 (FIPS 180-4 section 6.2)

alignas(64) constexpr uint32_t kSha256K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

// Portable: the 16-word schedule is kept as a ring so it stays in registers/L1, and the round
// function is written so the compiler can fully unroll it.
void Sha256BlocksPortable(uint32_t s[8], const uint8_t* p, size_t blocks) noexcept {
  for (; blocks != 0; --blocks, p += 64) {
    uint32_t w[16];
    for (int i = 0; i < 16; ++i) w[i] = LoadBe32(p + ptrdiff_t{4} * i);
    uint32_t a = s[0], b = s[1], c = s[2], d = s[3], e = s[4], f = s[5], g = s[6], h = s[7];
#pragma GCC unroll 64
    for (int i = 0; i < 64; ++i) {
      uint32_t wi;
      if (i < 16) {
        wi = w[i];
      } else {
        const uint32_t w15 = w[(i - 15) & 15];
        const uint32_t w2 = w[(i - 2) & 15];
        const uint32_t s0 = Rotr(w15, 7) ^ Rotr(w15, 18) ^ (w15 >> 3);
        const uint32_t s1 = Rotr(w2, 17) ^ Rotr(w2, 19) ^ (w2 >> 10);
        wi = w[i & 15] = w[i & 15] + s0 + w[(i - 7) & 15] + s1;
      }
      const uint32_t t1 =
          h + (Rotr(e, 6) ^ Rotr(e, 11) ^ Rotr(e, 25)) + ((e & f) ^ (~e & g)) + kSha256K[i] + wi;
      const uint32_t t2 = (Rotr(a, 2) ^ Rotr(a, 13) ^ Rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    s[0] += a;
    s[1] += b;
    s[2] += c;
    s[3] += d;
    s[4] += e;
    s[5] += f;
    s[6] += g;
    s[7] += h;
  }
}

using Sha256BlocksFn = void (*)(uint32_t*, const uint8_t*, size_t) noexcept;

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define VIGIL_HAVE_SHANI 1

// The x86 SHA extensions: sha256rnds2 runs two rounds on the state split as ABEF/CDGH, and
// sha256msg1/msg2 extend the message schedule four words at a time. Several times faster than
// the portable code on CPUs that have them.
__attribute__((target("sha,sse4.1,ssse3"))) void Sha256BlocksShani(uint32_t s[8], const uint8_t* p,
                                                                   size_t blocks) noexcept {
  // Byte swap of each 32-bit word (the message is big-endian).
  const __m128i kBswap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
  // From a,b,c,d / e,f,g,h to the ABEF / CDGH lane order the instructions expect.
  __m128i t = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s)), 0xB1);
  __m128i cdgh = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 4)), 0x1B);
  __m128i abef = _mm_alignr_epi8(t, cdgh, 8);
  cdgh = _mm_blend_epi16(cdgh, t, 0xF0);

  for (; blocks != 0; --blocks, p += 64) {
    const __m128i abef_in = abef;
    const __m128i cdgh_in = cdgh;
    __m128i m[4];
    for (int i = 0; i < 4; ++i) {
      m[i] = _mm_shuffle_epi8(
          _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + ptrdiff_t{16} * i)), kBswap);
    }
#pragma GCC unroll 16
    for (int g = 0; g < 16; ++g) {
      __m128i wk = _mm_add_epi32(
          m[g & 3], _mm_load_si128(reinterpret_cast<const __m128i*>(kSha256K + ptrdiff_t{4} * g)));
      cdgh = _mm_sha256rnds2_epu32(cdgh, abef, wk);
      wk = _mm_shuffle_epi32(wk, 0x0E);
      // After two rounds the old ABEF is the new CDGH, so the roles alternate in place.
      abef = _mm_sha256rnds2_epu32(abef, cdgh, wk);
      if (g < 12) {
        // W[4g+16..4g+19] = W[4g..] + s0(W[4g+1..]) + W[4g+9..] + s1(W[4g+14..]).
        __m128i x = _mm_sha256msg1_epu32(m[g & 3], m[(g + 1) & 3]);
        x = _mm_add_epi32(x, _mm_alignr_epi8(m[(g + 3) & 3], m[(g + 2) & 3], 4));
        m[g & 3] = _mm_sha256msg2_epu32(x, m[(g + 3) & 3]);
      }
    }
    abef = _mm_add_epi32(abef, abef_in);
    cdgh = _mm_add_epi32(cdgh, cdgh_in);
  }

  t = _mm_shuffle_epi32(abef, 0x1B);
  cdgh = _mm_shuffle_epi32(cdgh, 0xB1);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(s), _mm_blend_epi16(t, cdgh, 0xF0));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(s + 4), _mm_alignr_epi8(cdgh, t, 8));
}
#endif

// The block function in use; chosen on first use. Relaxed ordering: both candidates are valid
// for every caller, so a thread seeing the old value computes the same digest.
std::atomic<Sha256BlocksFn> g_sha256_blocks{nullptr};
std::atomic<bool> g_sha256_force_portable{false};

Sha256BlocksFn ChooseSha256() noexcept {
#ifdef VIGIL_HAVE_SHANI
  if (!g_sha256_force_portable.load(std::memory_order_relaxed)) {
    // CPUID directly: not every compiler's __builtin_cpu_supports knows "sha".
    unsigned a = 0, b = 0, c = 0, d = 0;
    const bool sse41_ssse3 = __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 19)) && (c & (1u << 9));
    const bool sha = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 29));
    if (sse41_ssse3 && sha) return Sha256BlocksShani;
  }
#endif
  return Sha256BlocksPortable;
}

inline Sha256BlocksFn Sha256Fn() noexcept {
  Sha256BlocksFn fn = g_sha256_blocks.load(std::memory_order_relaxed);
  if (fn == nullptr) {
    fn = ChooseSha256();
    g_sha256_blocks.store(fn, std::memory_order_relaxed);
  }
  return fn;
}

}  // namespace

// ---------------------------------------------------------------------------------------------

void Md5::Init() noexcept {
  state_[0] = 0x67452301;
  state_[1] = 0xefcdab89;
  state_[2] = 0x98badcfe;
  state_[3] = 0x10325476;
  total_ = 0;
  block_len_ = 0;
}

void Md5::Update(std::span<const uint8_t> data) noexcept {
  Absorb(block_, &block_len_, &total_, data,
         [this](const uint8_t* p, size_t n) { Md5Blocks(state_, p, n); });
}

void Md5::Final(uint8_t out[kDigestSize]) noexcept {
  Pad(block_, block_len_, total_, false,
      [this](const uint8_t* p, size_t n) { Md5Blocks(state_, p, n); });
  for (int i = 0; i < 4; ++i) StoreLe32(out + ptrdiff_t{4} * i, state_[i]);
}

Md5::Digest Md5::Hash(std::span<const uint8_t> data) noexcept {
  Md5 h;
  h.Update(data);
  return h.Final();
}

void Sha1::Init() noexcept {
  state_[0] = 0x67452301;
  state_[1] = 0xefcdab89;
  state_[2] = 0x98badcfe;
  state_[3] = 0x10325476;
  state_[4] = 0xc3d2e1f0;
  total_ = 0;
  block_len_ = 0;
}

void Sha1::Update(std::span<const uint8_t> data) noexcept {
  Absorb(block_, &block_len_, &total_, data,
         [this](const uint8_t* p, size_t n) { Sha1Blocks(state_, p, n); });
}

void Sha1::Final(uint8_t out[kDigestSize]) noexcept {
  Pad(block_, block_len_, total_, true,
      [this](const uint8_t* p, size_t n) { Sha1Blocks(state_, p, n); });
  for (int i = 0; i < 5; ++i) StoreBe32(out + ptrdiff_t{4} * i, state_[i]);
}

Sha1::Digest Sha1::Hash(std::span<const uint8_t> data) noexcept {
  Sha1 h;
  h.Update(data);
  return h.Final();
}

void Sha256::Init() noexcept {
  static constexpr uint32_t kInit[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                        0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  std::memcpy(state_, kInit, sizeof kInit);
  total_ = 0;
  block_len_ = 0;
}

void Sha256::Update(std::span<const uint8_t> data) noexcept {
  const Sha256BlocksFn fn = Sha256Fn();
  Absorb(block_, &block_len_, &total_, data,
         [this, fn](const uint8_t* p, size_t n) { fn(state_, p, n); });
}

void Sha256::Final(uint8_t out[kDigestSize]) noexcept {
  const Sha256BlocksFn fn = Sha256Fn();
  Pad(block_, block_len_, total_, true,
      [this, fn](const uint8_t* p, size_t n) { fn(state_, p, n); });
  for (int i = 0; i < 8; ++i) StoreBe32(out + ptrdiff_t{4} * i, state_[i]);
}

Sha256::Digest Sha256::Hash(std::span<const uint8_t> data) noexcept {
  Sha256 h;
  h.Update(data);
  return h.Final();
}

const char* Sha256::Implementation() noexcept {
#ifdef VIGIL_HAVE_SHANI
  if (Sha256Fn() == Sha256BlocksShani) return "shani";
#endif
  return "portable";
}

void Sha256::ForcePortableForTesting(bool portable) noexcept {
  g_sha256_force_portable.store(portable, std::memory_order_relaxed);
  g_sha256_blocks.store(ChooseSha256(), std::memory_order_relaxed);
}

}  // namespace vigil::proto
