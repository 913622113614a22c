// Bounds-checked reading of wire bytes and the text conversions every parser needs.
// Header-only, no allocation, no exceptions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <span>
#include <string_view>
#include <type_traits>

namespace vigil::proto {

// A cursor over a byte span. Every read checks the bounds; a failed read returns false (or 0),
// leaves the cursor where it was and sets failed() so a sequence of reads can be checked once.
class ByteReader {
 public:
  explicit ByteReader(std::span<const uint8_t> data) noexcept : data_(data) {}

  size_t pos() const noexcept { return pos_; }
  size_t remaining() const noexcept { return data_.size() - pos_; }
  bool failed() const noexcept { return failed_; }
  std::span<const uint8_t> data() const noexcept { return data_; }
  std::span<const uint8_t> rest() const noexcept { return data_.subspan(pos_); }

  bool Seek(size_t pos) noexcept {
    if (pos > data_.size()) return Fail();
    pos_ = pos;
    return true;
  }
  bool Skip(size_t n) noexcept {
    if (n > remaining()) return Fail();
    pos_ += n;
    return true;
  }
  bool Bytes(size_t n, std::span<const uint8_t>* out) noexcept {
    if (n > remaining()) return Fail();
    *out = data_.subspan(pos_, n);
    pos_ += n;
    return true;
  }
  uint8_t U8() noexcept { return static_cast<uint8_t>(Read(1, false)); }
  uint16_t U16le() noexcept { return static_cast<uint16_t>(Read(2, false)); }
  uint32_t U32le() noexcept { return static_cast<uint32_t>(Read(4, false)); }
  uint64_t U64le() noexcept { return Read(8, false); }
  uint16_t U16be() noexcept { return static_cast<uint16_t>(Read(2, true)); }
  uint32_t U32be() noexcept { return static_cast<uint32_t>(Read(4, true)); }
  uint64_t U64be() noexcept { return Read(8, true); }

 private:
  bool Fail() noexcept {
    failed_ = true;
    return false;
  }
  uint64_t Read(size_t n, bool big_endian) noexcept {
    if (n > remaining()) {
      Fail();
      return 0;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i) {
      const uint64_t b = data_[pos_ + i];
      v |= big_endian ? b << (8 * (n - 1 - i)) : b << (8 * i);
    }
    pos_ += n;
    return v;
  }

  std::span<const uint8_t> data_;
  size_t pos_ = 0;
  bool failed_ = false;
};

inline uint16_t LoadU16le(const uint8_t* p) noexcept {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}
inline uint32_t LoadU32le(const uint8_t* p) noexcept {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}
inline uint16_t LoadU16be(const uint8_t* p) noexcept {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}
inline uint32_t LoadU32be(const uint8_t* p) noexcept {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | uint32_t{p[3]};
}

// The UTF-8 bytes of code point `cp` (at most U+10FFFF) in `out`; returns how many (1 to 4).
size_t EncodeUtf8(uint32_t cp, char out[4]) noexcept;

// UTF-16LE (Windows wire strings) to UTF-8 in `out`, stopping at a NUL code unit, at the end of
// the input (an odd trailing byte is ignored) or when `out` is full (whole characters only).
// Unpaired surrogates become U+FFFD. Returns the bytes written; `out` is not NUL-terminated.
size_t Utf16LeToUtf8(std::span<const uint8_t> in, char* out, size_t cap) noexcept;

// Copies at most `cap` bytes of an 8-bit string (stopping at NUL). Returns the bytes written.
size_t CopyCString(std::span<const uint8_t> in, char* out, size_t cap) noexcept;

// A DCE/RPC or Windows GUID in its wire layout (first three fields little-endian) as
// "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (36 characters, lower case, NUL at out[36]).
void FormatGuidLe(const uint8_t guid[16], char out[37]) noexcept;

// Lower-case hex of `in` into out (2 * in.size() characters, no NUL). Returns characters written,
// stopping when `cap` is reached.
size_t FormatHex(std::span<const uint8_t> in, char* out, size_t cap) noexcept;

// A Windows FILETIME (100 ns intervals since 1601-01-01 UTC) as ISO 8601 UTC with all seven
// fractional digits, "2022-07-15T19:46:29.9513320" (27 characters, NUL at out[27]). Returns 27,
// or 0 (nothing written) for times after year 9999.
inline constexpr size_t kFiletimeTextLen = 27;
size_t FormatFiletime(uint64_t filetime, char out[kFiletimeTextLen + 1]) noexcept;

// A fixed-capacity string held inside parser state (no heap).
template <size_t N>
struct FixedString {
  char data[N];
  uint16_t len = 0;
  bool truncated = false;

  void Clear() noexcept {
    len = 0;
    truncated = false;
  }
  void Assign(std::string_view s) noexcept {
    len = static_cast<uint16_t>(s.size() < N ? s.size() : N);
    truncated = s.size() > N;
    for (size_t i = 0; i < len; ++i) data[i] = s[i];
  }
  std::string_view view() const noexcept { return {data, len}; }
  bool empty() const noexcept { return len == 0; }
};

// A table of N entries inside parser state whose entries are not constructed: the storage is left
// as it is (no default member initialisers run, nothing is zeroed), so setting up a parser does
// not write every entry of its tables. For tables whose owner marks each entry free when it is
// constructed (a `used` flag) and initialises an entry in full when it takes it: nothing else may
// be read from an entry that was never taken. T must be an implicit-lifetime type (an aggregate
// such as a struct of plain members) with a trivial destructor.
template <class T, size_t N>
class UninitArray {
 public:
  static_assert(std::is_trivially_destructible_v<T>);
  // User-provided (not `= default`), so that value-initialising the owner does not zero storage_.
  UninitArray() noexcept {}

  T& operator[](size_t i) noexcept { return data()[i]; }
  const T& operator[](size_t i) const noexcept { return data()[i]; }
  T* begin() noexcept { return data(); }
  T* end() noexcept { return data() + N; }
  const T* begin() const noexcept { return data(); }
  const T* end() const noexcept { return data() + N; }
  static constexpr size_t size() noexcept { return N; }

 private:
  T* data() noexcept { return std::launder(reinterpret_cast<T*>(storage_)); }
  const T* data() const noexcept { return std::launder(reinterpret_cast<const T*>(storage_)); }

  alignas(T) unsigned char storage_[N * sizeof(T)];
};

}  // namespace vigil::proto
