#include "dataplane/proto/bytes.h"

namespace vigil::proto {

size_t EncodeUtf8(uint32_t cp, char out[4]) noexcept {
  if (cp < 0x80) {
    out[0] = static_cast<char>(cp);
    return 1;
  }
  if (cp < 0x800) {
    out[0] = static_cast<char>(0xc0 | (cp >> 6));
    out[1] = static_cast<char>(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = static_cast<char>(0xe0 | (cp >> 12));
    out[1] = static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out[2] = static_cast<char>(0x80 | (cp & 0x3f));
    return 3;
  }
  out[0] = static_cast<char>(0xf0 | (cp >> 18));
  out[1] = static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
  out[2] = static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
  out[3] = static_cast<char>(0x80 | (cp & 0x3f));
  return 4;
}

size_t Utf16LeToUtf8(std::span<const uint8_t> in, char* out, size_t cap) noexcept {
  size_t n = 0;
  for (size_t i = 0; i + 1 < in.size(); i += 2) {
    uint32_t cp = LoadU16le(in.data() + i);
    if (cp == 0) break;
    if (cp >= 0xd800 && cp <= 0xdbff) {
      if (i + 3 < in.size()) {
        const uint32_t lo = LoadU16le(in.data() + i + 2);
        if (lo >= 0xdc00 && lo <= 0xdfff) {
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          i += 2;
        } else {
          cp = 0xfffd;
        }
      } else {
        cp = 0xfffd;
      }
    } else if (cp >= 0xdc00 && cp <= 0xdfff) {
      cp = 0xfffd;
    }
    char enc[4];
    const size_t len = EncodeUtf8(cp, enc);
    if (n + len > cap) break;
    for (size_t k = 0; k < len; ++k) out[n++] = enc[k];
  }
  return n;
}

size_t CopyCString(std::span<const uint8_t> in, char* out, size_t cap) noexcept {
  size_t n = 0;
  for (uint8_t c : in) {
    if (c == 0 || n == cap) break;
    out[n++] = static_cast<char>(c);
  }
  return n;
}

void FormatGuidLe(const uint8_t g[16], char out[37]) noexcept {
  static constexpr char kHex[] = "0123456789abcdef";
  // Byte order of the textual form: Data1 (LE u32), Data2 (LE u16), Data3 (LE u16), Data4[8].
  static constexpr int kOrder[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
  size_t n = 0;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out[n++] = '-';
    const uint8_t b = g[kOrder[i]];
    out[n++] = kHex[b >> 4];
    out[n++] = kHex[b & 15];
  }
  out[36] = '\0';
}

size_t FormatFiletime(uint64_t filetime, char out[kFiletimeTextLen + 1]) noexcept {
  constexpr uint64_t kTicksPerSecond = 10000000;
  constexpr uint64_t kSecondsPerDay = 86400;
  const uint64_t ticks = filetime % kTicksPerSecond;
  const uint64_t seconds = filetime / kTicksPerSecond;
  const uint64_t second_of_day = seconds % kSecondsPerDay;
  // Days since 0000-03-01 (proleptic Gregorian), so that the leap day ends a year: 1601-01-01 is
  // day 584694. Then H. Hinnant's civil_from_days; everything stays unsigned.
  const uint64_t days = seconds / kSecondsPerDay + 584694;
  const uint64_t era = days / 146097;
  const uint64_t doe = days - era * 146097;                                    // [0, 146096]
  const uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // [0, 399]
  const uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                // [0, 365]
  const uint64_t mp = (5 * doy + 2) / 153;                                     // [0, 11], March = 0
  const uint64_t day = doy - (153 * mp + 2) / 5 + 1;
  const uint64_t month = mp < 10 ? mp + 3 : mp - 9;
  const uint64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  if (year > 9999) return 0;
  auto put = [out](size_t at, uint64_t v, int digits) {
    for (int i = digits - 1; i >= 0; --i) {
      out[at + i] = static_cast<char>('0' + v % 10);
      v /= 10;
    }
  };
  put(0, year, 4);
  out[4] = '-';
  put(5, month, 2);
  out[7] = '-';
  put(8, day, 2);
  out[10] = 'T';
  put(11, second_of_day / 3600, 2);
  out[13] = ':';
  put(14, second_of_day / 60 % 60, 2);
  out[16] = ':';
  put(17, second_of_day % 60, 2);
  out[19] = '.';
  put(20, ticks, 7);
  out[kFiletimeTextLen] = '\0';
  return kFiletimeTextLen;
}

size_t FormatHex(std::span<const uint8_t> in, char* out, size_t cap) noexcept {
  static constexpr char kHex[] = "0123456789abcdef";
  size_t n = 0;
  for (uint8_t b : in) {
    if (n + 2 > cap) break;
    out[n++] = kHex[b >> 4];
    out[n++] = kHex[b & 15];
  }
  return n;
}

}  // namespace vigil::proto
