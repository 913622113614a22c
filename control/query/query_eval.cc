// Evaluation of a query AST against one EVE event (nlohmann::json), and the value helpers
// (wildcards, numbers, IP addresses). Nothing here allocates on the common paths; nothing throws.
#include <arpa/inet.h>

#include <cmath>
#include <cstring>

#include "control/query/query_internal.h"

namespace vigil::ctl::query {
namespace {

using Json = nlohmann::json;

// Events come from our own dataplane, but a hostile or corrupt JSON must not blow the stack.
constexpr int kMaxEventDepth = 64;

size_t NextChar(std::string_view s, size_t i) {
  ++i;
  while (i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) ++i;
  return i;
}

template <typename F>
bool AnyString(const Json& j, int depth, const F& f) {
  if (j.is_string()) return f(j.get_ref<const std::string&>());
  if (depth >= kMaxEventDepth) return false;
  if (j.is_object() || j.is_array()) {
    for (const auto& v : j) {
      if (AnyString(v, depth + 1, f)) return true;
    }
  }
  return false;
}

bool HasNtlmssp(const Json& j, int depth) {
  if (depth >= kMaxEventDepth) return false;
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.value().is_object() && it.key().rfind("ntlmssp", 0) == 0) return true;
      if (HasNtlmssp(it.value(), depth + 1)) return true;
    }
  } else if (j.is_array()) {
    for (const auto& v : j) {
      if (HasNtlmssp(v, depth + 1)) return true;
    }
  }
  return false;
}

// Do the token patterns match consecutive tokens of `s`?
bool MatchTokens(const std::vector<Pattern>& pats, std::string_view s) {
  std::string_view tok;
  if (pats.size() == 1) {  // the common case: one pass over the tokens
    TokenIter it(s);
    while (it.Next(&tok)) {
      if (PatternMatch(pats[0], tok)) return true;
    }
    return false;
  }
  TokenIter start(s);
  for (;;) {
    TokenIter probe = start;
    if (!start.Next(&tok)) return false;
    size_t k = 0;
    for (; k < pats.size(); ++k) {
      if (!probe.Next(&tok) || !PatternMatch(pats[k], tok)) break;
    }
    if (k == pats.size()) return true;
  }
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (LowerAscii(a[i]) != LowerAscii(b[i])) return false;
  }
  return true;
}

bool EvalText(const Node& n, const Json& event) {
  if (AnyString(event, 0, [&](const std::string& s) { return MatchTokens(n.tokens, s); })) {
    return true;
  }
  // Protocol names: event_type / app_proto are string values, so `smb` already matched above
  // when the event is an SMB one; only `ntlm` needs its own rule.
  return n.ntlm && HasNtlmssp(event, 0);
}

// Visits the values at `path` (arrays at any level: every element).
template <typename F>
bool AnyAtPath(const Json& j, const std::vector<std::string>& path, size_t i, int depth,
               const F& f) {
  if (depth >= kMaxEventDepth) return false;
  if (j.is_array()) {
    for (const auto& v : j) {
      if (AnyAtPath(v, path, i, depth + 1, f)) return true;
    }
    return false;
  }
  if (i == path.size()) return f(j);
  if (!j.is_object()) return false;
  auto it = j.find(path[i]);
  if (it != j.end()) return AnyAtPath(*it, path, i + 1, depth + 1, f);
  // Field names are case-insensitive for users (`SMB.Filename`); EVE keys are lower case.
  for (auto kv = j.begin(); kv != j.end(); ++kv) {
    if (EqualsIgnoreCase(kv.key(), path[i]))
      return AnyAtPath(kv.value(), path, i + 1, depth + 1, f);
  }
  return false;
}

bool JsonNumber(const Json& j, Number* out) {
  if (j.is_number_unsigned()) {
    out->is_int = true;
    out->i = j.get<uint64_t>();
    out->d = static_cast<double>(j.get<uint64_t>());
    return true;
  }
  if (j.is_number_integer()) {
    out->is_int = true;
    out->i = j.get<int64_t>();
    out->d = static_cast<double>(j.get<int64_t>());
    return true;
  }
  if (j.is_number_float()) {
    out->is_int = false;
    out->d = j.get<double>();
    return !std::isnan(out->d);
  }
  return false;
}

// The text form of a non-string scalar, for wildcard matching (`dest_port:44*`).
std::string ScalarText(const Json& j) {
  if (j.is_boolean()) return j.get<bool>() ? "true" : "false";
  if (j.is_null()) return "null";
  if (j.is_number_unsigned()) return std::to_string(j.get<uint64_t>());
  if (j.is_number_integer()) return std::to_string(j.get<int64_t>());
  if (j.is_number_float()) return j.dump();  // numbers never fail to dump
  return std::string();
}

bool InRange(const Node& n, const Number& v) {
  if (!n.lo.open) {
    const int c = CompareNumbers(v, n.lo.num);
    if (c < 0 || (c == 0 && !n.lo.inclusive)) return false;
  }
  if (!n.hi.open) {
    const int c = CompareNumbers(v, n.hi.num);
    if (c > 0 || (c == 0 && !n.hi.inclusive)) return false;
  }
  return true;
}

int CompareLower(std::string_view a, std::string_view b) {
  const size_t m = std::min(a.size(), b.size());
  for (size_t i = 0; i < m; ++i) {
    const unsigned char x = static_cast<unsigned char>(LowerAscii(a[i]));
    const unsigned char y = static_cast<unsigned char>(b[i]);
    if (x != y) return x < y ? -1 : 1;
  }
  return a.size() < b.size() ? -1 : (a.size() > b.size() ? 1 : 0);
}

bool InTextRange(const Node& n, std::string_view v) {
  if (!n.lo.open) {
    const int c = CompareLower(v, n.lo.text);
    if (c < 0 || (c == 0 && !n.lo.inclusive)) return false;
  }
  if (!n.hi.open) {
    const int c = CompareLower(v, n.hi.text);
    if (c > 0 || (c == 0 && !n.hi.inclusive)) return false;
  }
  return true;
}

bool MatchValue(const Node& n, const Json& v) {
  switch (n.op) {
    case FieldOp::kExists:
      return !v.is_null();
    case FieldOp::kValue: {
      if (v.is_string()) return PatternMatch(n.value, v.get_ref<const std::string&>());
      if (v.is_object()) return false;
      Number num;
      if (n.numeric && JsonNumber(v, &num)) return CompareNumbers(num, n.num) == 0;
      return PatternMatch(n.value, ScalarText(v));
    }
    case FieldOp::kPhrase:
      if (v.is_string()) return MatchTokens(n.tokens, v.get_ref<const std::string&>());
      if (v.is_object()) return false;
      return PatternMatch(n.value, ScalarText(v));
    case FieldOp::kIp: {
      if (!v.is_string()) return false;
      const std::string& s = v.get_ref<const std::string&>();
      IpNet ip;
      return ParseIp(s, &ip) && IpInNet(ip, n.net);
    }
    case FieldOp::kRange: {
      if (n.numeric_range) {
        Number num;
        if (JsonNumber(v, &num)) return InRange(n, num);
        if (v.is_string() && ParseNumber(v.get_ref<const std::string&>(), &num)) {
          return InRange(n, num);
        }
        return false;
      }
      return v.is_string() && InTextRange(n, v.get_ref<const std::string&>());
    }
  }
  return false;
}

}  // namespace

bool GlobMatch(std::string_view p, std::string_view s) {
  size_t pi = 0, si = 0;
  size_t star_p = std::string_view::npos, star_s = 0;
  while (si < s.size()) {
    if (pi < p.size() && p[pi] == '*') {
      star_p = ++pi;  // consecutive stars collapse: the next iteration sees the next '*'
      star_s = si;
      continue;
    }
    if (pi < p.size() && p[pi] == '?') {
      ++pi;
      si = NextChar(s, si);
      continue;
    }
    if (pi < p.size() && LowerAscii(s[si]) == p[pi]) {
      ++pi;
      ++si;
      continue;
    }
    if (star_p == std::string_view::npos) return false;
    // Let the last star absorb one more character and retry; earlier stars never need to
    // move, which keeps this O(|p|*|s|).
    pi = star_p;
    star_s = NextChar(s, star_s);
    si = star_s;
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

bool ParseNumber(std::string_view s, Number* out) {
  size_t i = 0;
  bool neg = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
  const size_t int_start = i;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
  const size_t int_digits = i - int_start;
  bool is_int = true;
  size_t frac_digits = 0;
  if (i < s.size() && s[i] == '.') {
    is_int = false;
    ++i;
    const size_t f = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    frac_digits = i - f;
  }
  if (int_digits + frac_digits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    is_int = false;
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    const size_t e = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    if (i == e) return false;
  }
  if (i != s.size()) return false;
  char buf[128];
  if (s.size() >= sizeof(buf)) return false;
  std::memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';
  out->d = std::strtod(buf, nullptr);
  out->is_int = is_int && int_digits <= 20;
  if (out->is_int) {
    __int128 v = 0;
    for (size_t k = int_start; k < int_start + int_digits; ++k) v = v * 10 + (s[k] - '0');
    out->i = neg ? -v : v;
  }
  return true;
}

int CompareNumbers(const Number& a, const Number& b) {
  if (a.is_int && b.is_int) return a.i < b.i ? -1 : (a.i > b.i ? 1 : 0);
  const long double x = a.is_int ? static_cast<long double>(a.i) : a.d;
  const long double y = b.is_int ? static_cast<long double>(b.i) : b.d;
  return x < y ? -1 : (x > y ? 1 : 0);
}

bool ParseIp(std::string_view s, IpNet* out) {
  char buf[INET6_ADDRSTRLEN + 1];
  if (s.empty() || s.size() >= sizeof(buf)) return false;
  std::memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';
  *out = IpNet{};
  if (inet_pton(AF_INET, buf, out->addr) == 1) {
    out->family = 4;
    out->prefix = 32;
    return true;
  }
  if (inet_pton(AF_INET6, buf, out->addr) == 1) {
    static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(out->addr, kMapped, 12) == 0) {
      std::memmove(out->addr, out->addr + 12, 4);
      std::memset(out->addr + 4, 0, 12);
      out->family = 4;
      out->prefix = 32;
      return true;
    }
    out->family = 6;
    out->prefix = 128;
    return true;
  }
  return false;
}

bool IpInNet(const IpNet& ip, const IpNet& net) {
  if (ip.family != net.family) return false;
  const int full = net.prefix / 8;
  if (std::memcmp(ip.addr, net.addr, full) != 0) return false;
  const int rest = net.prefix % 8;
  if (rest == 0) return true;
  const uint8_t mask = static_cast<uint8_t>(0xff << (8 - rest));
  return (ip.addr[full] & mask) == (net.addr[full] & mask);
}

bool Evaluate(const Node& n, const Json& event) {
  switch (n.kind) {
    case Kind::kAnd:
      for (const auto& c : n.children) {
        if (!Evaluate(*c, event)) return false;
      }
      return true;
    case Kind::kOr:
      for (const auto& c : n.children) {
        if (Evaluate(*c, event)) return true;
      }
      return false;
    case Kind::kNot:
      return !Evaluate(*n.children[0], event);
    case Kind::kText:
      return EvalText(n, event);
    case Kind::kField:
      return AnyAtPath(event, n.path, 0, 0, [&](const Json& v) { return MatchValue(n, v); });
  }
  return false;
}

}  // namespace vigil::ctl::query
