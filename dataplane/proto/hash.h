// MD5 (RFC 1321), SHA-1 and SHA-256 (FIPS 180-4): the digests the parsers need for fingerprints
// (JA3 is MD5, certificate fingerprints are SHA-1, JA4 and file hashes are SHA-256).
//
// Thread: a hasher object has one owner; the one-shot helpers are reentrant. Nothing allocates,
// blocks or throws. Each hasher is a small fixed-size object (state + one 64-byte block) that can
// live inside parser state and be fed incrementally: Init, any number of Update calls with pieces
// of any size, Final. Final leaves the object to be Init-ed again before reuse.
//
// Limits: messages up to 2^61 - 1 bytes (the bit count is kept in 64 bits). SHA-256 uses the x86
// SHA extensions when the CPU has them (checked once at run time) and portable code otherwise;
// MD5 and SHA-1 are portable only (they hash short inputs here). MD5 and SHA-1 are used for
// compatibility fingerprints, not for security.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace vigil::proto {

class Md5 {
 public:
  static constexpr size_t kDigestSize = 16;
  using Digest = std::array<uint8_t, kDigestSize>;

  Md5() noexcept { Init(); }
  void Init() noexcept;
  void Update(std::span<const uint8_t> data) noexcept;
  void Final(uint8_t out[kDigestSize]) noexcept;
  Digest Final() noexcept {
    Digest d;
    Final(d.data());
    return d;
  }
  static Digest Hash(std::span<const uint8_t> data) noexcept;

 private:
  uint32_t state_[4];
  uint64_t total_ = 0;  // bytes hashed
  uint8_t block_[64];
  uint32_t block_len_ = 0;
};

class Sha1 {
 public:
  static constexpr size_t kDigestSize = 20;
  using Digest = std::array<uint8_t, kDigestSize>;

  Sha1() noexcept { Init(); }
  void Init() noexcept;
  void Update(std::span<const uint8_t> data) noexcept;
  void Final(uint8_t out[kDigestSize]) noexcept;
  Digest Final() noexcept {
    Digest d;
    Final(d.data());
    return d;
  }
  static Digest Hash(std::span<const uint8_t> data) noexcept;

 private:
  uint32_t state_[5];
  uint64_t total_ = 0;
  uint8_t block_[64];
  uint32_t block_len_ = 0;
};

class Sha256 {
 public:
  static constexpr size_t kDigestSize = 32;
  using Digest = std::array<uint8_t, kDigestSize>;

  Sha256() noexcept { Init(); }
  void Init() noexcept;
  void Update(std::span<const uint8_t> data) noexcept;
  void Final(uint8_t out[kDigestSize]) noexcept;
  Digest Final() noexcept {
    Digest d;
    Final(d.data());
    return d;
  }
  static Digest Hash(std::span<const uint8_t> data) noexcept;

  // Which block function is in use: "shani" or "portable". For tests and start-up logs.
  static const char* Implementation() noexcept;
  // Tests only: force the portable block function (false restores the automatic choice).
  static void ForcePortableForTesting(bool portable) noexcept;

 private:
  uint32_t state_[8];
  uint64_t total_ = 0;
  uint8_t block_[64];
  uint32_t block_len_ = 0;
};

// Convenience wrappers over strings of bytes given as text (JA3 strings and the like).
inline Md5::Digest Md5Of(std::string_view s) noexcept {
  return Md5::Hash({reinterpret_cast<const uint8_t*>(s.data()), s.size()});
}
inline Sha256::Digest Sha256Of(std::string_view s) noexcept {
  return Sha256::Hash({reinterpret_cast<const uint8_t*>(s.data()), s.size()});
}

}  // namespace vigil::proto
