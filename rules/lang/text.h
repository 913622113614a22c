// Small text helpers shared by the rule-language readers (rules, groups, classification).
#pragma once

#include <cstdint>
#include <string_view>

namespace vigil::rules {

// Without leading and trailing spaces, tabs, CR and LF.
inline std::string_view Trim(std::string_view s) {
  auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && blank(s.back())) s.remove_suffix(1);
  return s;
}

// The value of one hexadecimal digit (either case), -1 for any other byte.
inline int HexDigitValue(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A decimal number (blanks around it allowed) no larger than `max`; false otherwise.
inline bool ParseUint(std::string_view s, uint64_t max, uint64_t* out) {
  s = Trim(s);
  if (s.empty() || s.size() > 20) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
    if (v > max) return false;
  }
  *out = v;
  return true;
}

}  // namespace vigil::rules
