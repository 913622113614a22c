// The dataplane's keyed hash for tables an attacker can fill (flows, IP fragment trackers):
// wyhash's multiply-fold ("mum") over 64-bit words, each mixed with a secret drawn at start. A
// per-instance random secret is how Go's runtime map defends the same construction against
// flooding; without it an attacker cannot aim packets at one chain (Suricata CVE-2024-47187 was
// an unseeded hash). One implementation, so every table gets the same protection.
//
// Thread: any; immutable after construction. Never allocates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace vigil::dp {

class KeyedHash {
 public:
  // Derives the secrets from `seed` (SplitMix64).
  explicit KeyedHash(uint64_t seed) noexcept {
    for (uint64_t& k : keys_) {
      uint64_t z = (seed += 0x9e3779b97f4a7c15ull);
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      k = z ^ (z >> 31);
    }
  }

  static uint64_t Mum(uint64_t a, uint64_t b) noexcept {
    const __uint128_t r = static_cast<__uint128_t>(a) * b;
    return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
  }

  // Five words already in registers (the flow key's hot path): three 64x64->128 multiplies.
  uint32_t Words5(uint64_t w0, uint64_t w1, uint64_t w2, uint64_t w3, uint64_t w4) const noexcept {
    uint64_t h = Mum(w0 ^ keys_[0], w1 ^ keys_[1]) ^ Mum(w2 ^ keys_[2], w3 ^ keys_[3]);
    h = Mum(h ^ keys_[4], w4 ^ keys_[5]);
    return static_cast<uint32_t>(h ^ (h >> 32));
  }

  // Any byte string: 16 bytes per multiply, chained, the length mixed in.
  uint64_t Bytes(const void* data, size_t len) const noexcept {
    const auto* p = static_cast<const uint8_t*>(data);
    uint64_t h = keys_[6] ^ len;
    for (size_t off = 0, i = 0; off < len; off += 16, i = (i + 2) % 6) {
      uint64_t w[2] = {0, 0};
      std::memcpy(w, p + off, len - off < 16 ? len - off : 16);
      h = Mum(w[0] ^ keys_[i] ^ h, w[1] ^ keys_[i + 1]);
    }
    return Mum(h ^ keys_[7], keys_[6]);
  }

 private:
  uint64_t keys_[8];
};

}  // namespace vigil::dp
