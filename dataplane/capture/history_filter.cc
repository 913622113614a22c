// Packet history filter and parameter parsers. See history_filter.h.
#include "dataplane/capture/history_filter.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace vigil::dp {
namespace {

constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool SameAddr(const uint8_t* a, const uint8_t* b) noexcept { return std::memcmp(a, b, 16) == 0; }

uint16_t Load16(const uint8_t* p) noexcept { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
void Store16(uint8_t* p, uint32_t v) noexcept {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) noexcept {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void CivilFromDays(int64_t z, int64_t* y, unsigned* m, unsigned* d) noexcept {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2);
}

// Reads exactly `n` digits at `*i`.
bool Digits(std::string_view s, size_t* i, int n, unsigned* out) noexcept {
  unsigned v = 0;
  for (int k = 0; k < n; ++k) {
    if (*i >= s.size() || s[*i] < '0' || s[*i] > '9') return false;
    v = v * 10 + static_cast<unsigned>(s[(*i)++] - '0');
  }
  *out = v;
  return true;
}

// ".123456789" (1..9 digits; more are ignored) at `*i`, when present, into ns.
bool Fraction(std::string_view s, size_t* i, uint64_t* ns) noexcept {
  *ns = 0;
  if (*i >= s.size() || s[*i] != '.') return true;
  ++*i;
  int n = 0;
  uint64_t scale = 100'000'000;
  while (*i < s.size() && s[*i] >= '0' && s[*i] <= '9') {
    if (n < 9) *ns += static_cast<uint64_t>(s[*i] - '0') * scale;
    scale /= 10;
    ++n;
    ++*i;
  }
  return n > 0;
}

}  // namespace

bool HistoryFilter::Matches(const PacketMeta& meta, DecodeClass cls) const noexcept {
  // A frame cut inside L4 is kMalformed but its addresses were decoded (decoder.h): keep it.
  if (cls == DecodeClass::kL2 || meta.ip_version == 0) return false;
  const bool src_host = SameAddr(meta.src_addr, host);
  const bool dst_host = SameAddr(meta.dst_addr, host);
  if (!src_host && !dst_host) return false;
  if (has_peer &&
      !((src_host && SameAddr(meta.dst_addr, peer)) || (dst_host && SameAddr(meta.src_addr, peer))))
    return false;
  if (proto != 0 && meta.ip_proto != proto) return false;
  if (port != 0) {
    const bool has_ports = cls == DecodeClass::kL4 && (meta.ip_proto == 6 || meta.ip_proto == 17);
    if (!has_ports || (meta.src_port != port && meta.dst_port != port)) return false;
  }
  return true;
}

bool HistoryFilter::MatchesFrame(std::span<const uint8_t> frame, uint32_t wire_len) const noexcept {
  PacketMeta meta;
  const DecodeClass cls = DecodeCaptured(frame, wire_len, &meta);
  return Matches(meta, cls);
}

std::string HistoryFilter::ToString() const {
  std::string s = "host " + FormatHistoryAddress(host);
  if (has_peer) s += " peer " + FormatHistoryAddress(peer);
  if (port != 0) s += " port " + std::to_string(port);
  if (proto == 6) {
    s += " proto tcp";
  } else if (proto == 17) {
    s += " proto udp";
  } else if (proto != 0) {
    s += " proto " + std::to_string(proto);
  }
  return s;
}

DecodeClass DecodeCaptured(std::span<const uint8_t> frame, uint32_t wire_len,
                           PacketMeta* meta) noexcept {
  if (frame.size() >= wire_len) return Decode(frame, meta);
  // Only the headers matter: patch the lengths in a copy of the first bytes.
  uint8_t buf[512];
  const uint32_t n = static_cast<uint32_t>(std::min<size_t>(frame.size(), sizeof buf));
  std::memcpy(buf, frame.data(), n);
  uint32_t off = 12;
  uint16_t type = n >= 14 ? Load16(buf + 12) : 0;
  for (int tags = 0;
       tags < kMaxVlans && (type == 0x8100 || type == 0x88a8 || type == 0x9100) && off + 8 <= n;
       ++tags) {
    off += 4;
    type = Load16(buf + off);
  }
  const uint32_t l3 = off + 2;
  if (type == 0x0800 && l3 + 20 <= n) {
    uint8_t* h = buf + l3;
    const uint32_t ihl = (h[0] & 0x0f) * 4u;
    Store16(h + 2, std::min<uint32_t>(Load16(h + 2), n - l3));
    const bool later_fragment = (Load16(h + 6) & 0x1fff) != 0;
    if (h[9] == 17 && !later_fragment && ihl >= 20 && l3 + ihl + 8 <= n) {
      uint8_t* udp = h + ihl;
      Store16(udp + 4, std::max<uint32_t>(8, std::min<uint32_t>(Load16(udp + 4), n - l3 - ihl)));
    }
  } else if (type == 0x86dd && l3 + 40 <= n) {
    uint8_t* h = buf + l3;
    Store16(h + 4, std::min<uint32_t>(Load16(h + 4), n - l3 - 40));
  }
  return Decode(std::span<const uint8_t>(buf, n), meta);
}

bool ParseHistoryAddress(std::string_view text, uint8_t out[16]) noexcept {
  char s[INET6_ADDRSTRLEN + 1];
  if (text.empty() || text.size() >= sizeof s) return false;
  std::memcpy(s, text.data(), text.size());
  s[text.size()] = '\0';
  uint8_t v4[4];
  if (inet_pton(AF_INET, s, v4) == 1) {
    std::memcpy(out, kMappedPrefix, 12);
    std::memcpy(out + 12, v4, 4);
    return true;
  }
  return inet_pton(AF_INET6, s, out) == 1;
}

std::string FormatHistoryAddress(const uint8_t addr[16]) {
  char s[INET6_ADDRSTRLEN];
  if (std::memcmp(addr, kMappedPrefix, 12) == 0) {
    inet_ntop(AF_INET, addr + 12, s, sizeof s);
  } else {
    inet_ntop(AF_INET6, addr, s, sizeof s);
  }
  return s;
}

bool ParseHistoryProto(std::string_view text, uint8_t* out) noexcept {
  if (text == "tcp") {
    *out = 6;
  } else if (text == "udp") {
    *out = 17;
  } else if (text == "icmp") {
    *out = 1;
  } else if (text == "icmpv6") {
    *out = 58;
  } else {
    if (text.empty() || text.size() > 3) return false;
    unsigned v = 0;
    for (char c : text) {
      if (c < '0' || c > '9') return false;
      v = v * 10 + static_cast<unsigned>(c - '0');
    }
    if (v > 255) return false;
    *out = static_cast<uint8_t>(v);
  }
  return true;
}

bool ParseHistoryTime(std::string_view s, uint64_t* ns) noexcept {
  size_t i = 0;
  // Unix seconds: digits only, then an optional fraction.
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  if (i > 0 && i <= 11 && (i == s.size() || s[i] == '.')) {
    uint64_t sec = 0;
    for (size_t k = 0; k < i; ++k) sec = sec * 10 + static_cast<uint64_t>(s[k] - '0');
    uint64_t frac = 0;
    if (!Fraction(s, &i, &frac) || i != s.size()) return false;
    *ns = sec * 1'000'000'000 + frac;
    return true;
  }
  i = 0;
  unsigned year, mon, day, hour, min, sec;
  if (!Digits(s, &i, 4, &year) || i >= s.size() || s[i++] != '-') return false;
  if (!Digits(s, &i, 2, &mon) || i >= s.size() || s[i++] != '-') return false;
  if (!Digits(s, &i, 2, &day) || i >= s.size()) return false;
  if (s[i] != 'T' && s[i] != 't' && s[i] != ' ') return false;
  ++i;
  if (!Digits(s, &i, 2, &hour) || i >= s.size() || s[i++] != ':') return false;
  if (!Digits(s, &i, 2, &min) || i >= s.size() || s[i++] != ':') return false;
  if (!Digits(s, &i, 2, &sec)) return false;
  uint64_t frac = 0;
  if (!Fraction(s, &i, &frac) || i >= s.size()) return false;
  int64_t offset_s = 0;
  if (s[i] == 'Z' || s[i] == 'z') {
    ++i;
  } else if (s[i] == '+' || s[i] == '-') {
    const int sign = s[i++] == '+' ? 1 : -1;
    unsigned oh, om;
    if (!Digits(s, &i, 2, &oh) || i >= s.size() || s[i++] != ':' || !Digits(s, &i, 2, &om))
      return false;
    if (oh > 23 || om > 59) return false;
    offset_s = sign * static_cast<int64_t>(oh * 3600 + om * 60);
  } else {
    return false;
  }
  if (i != s.size() || year < 1970 || mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 ||
      min > 59 || sec > 60)
    return false;
  const int64_t t = DaysFromCivil(year, mon, day) * 86400 + hour * 3600 + min * 60 + sec - offset_s;
  if (t < 0) return false;
  *ns = static_cast<uint64_t>(t) * 1'000'000'000 + frac;
  return true;
}

std::string FormatHistoryTime(uint64_t ns) {
  const int64_t secs = static_cast<int64_t>(ns / 1'000'000'000);
  int64_t y;
  unsigned m, d;
  CivilFromDays(secs / 86400, &y, &m, &d);
  const int64_t rem = secs % 86400;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%09lluZ",
                static_cast<long long>(y), m, d, static_cast<long long>(rem / 3600),
                static_cast<long long>(rem / 60 % 60), static_cast<long long>(rem % 60),
                static_cast<unsigned long long>(ns % 1'000'000'000));
  return buf;
}

}  // namespace vigil::dp
