// Internals of the query language shared by its parser (query.cc), evaluator (query_eval.cc) and
// prefilter derivation (query_prefilter.cc). Not for use outside control/query/.
//
// Thread rules: a Node tree is immutable once built; everything here is pure functions.
#ifndef VIGIL_CONTROL_QUERY_QUERY_INTERNAL_H_
#define VIGIL_CONTROL_QUERY_QUERY_INTERNAL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "control/query/query.h"

namespace vigil::ctl::query {

// Token separators: whitespace/control bytes and the ASCII punctuation listed in docs/search.md.
// `.`, `$`, `-`, `_` (and every other byte) stay inside tokens. A table: tokenising is the hot loop
// of evaluation.
struct SeparatorTable {
  bool sep[256] = {};
  constexpr SeparatorTable() {
    for (int c = 0; c <= 0x20; ++c) sep[c] = true;
    sep[0x7f] = true;
    for (char c : std::string_view("\\/,;:=()[]{}\"'|<>@"))
      sep[static_cast<unsigned char>(c)] = true;
  }
};
inline constexpr SeparatorTable kSeparators;
inline bool IsSeparator(unsigned char c) { return kSeparators.sep[c]; }

inline char LowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

// Walks the tokens of one string without allocating.
class TokenIter {
 public:
  explicit TokenIter(std::string_view s) : s_(s) {}
  bool Next(std::string_view* token) {
    while (pos_ < s_.size() && IsSeparator(static_cast<unsigned char>(s_[pos_]))) ++pos_;
    if (pos_ >= s_.size()) return false;
    const size_t start = pos_;
    while (pos_ < s_.size() && !IsSeparator(static_cast<unsigned char>(s_[pos_]))) ++pos_;
    *token = s_.substr(start, pos_ - start);
    return true;
  }

 private:
  std::string_view s_;
  size_t pos_ = 0;
};

// A lower-cased pattern; `*` (any run, possibly empty) and `?` (one UTF-8 character) are wildcards
// when `wild` is set, else every byte is literal. The common shapes (`lit`, `lit*`, `*lit`,
// `*lit*`) are recognised once so that matching them needs no glob.
struct Pattern {
  enum class Shape : uint8_t { kExact, kPrefix, kSuffix, kContains, kGlob };
  std::string text;
  bool wild = false;
  Shape shape = Shape::kExact;
  std::string lit;  // the literal part for kPrefix/kSuffix/kContains

  Pattern() = default;
  Pattern(std::string t, bool w) : text(std::move(t)), wild(w) {
    if (!wild) return;
    shape = Shape::kGlob;
    const size_t n = text.size();
    auto literal = [](std::string_view v) {
      return v.find_first_of("*?") == std::string_view::npos;
    };
    if (n >= 2 && text[0] == '*' && text[n - 1] == '*' &&
        literal(std::string_view(text).substr(1, n - 2))) {
      shape = Shape::kContains;
      lit = text.substr(1, n - 2);
    } else if (n >= 1 && text[n - 1] == '*' && literal(std::string_view(text).substr(0, n - 1))) {
      shape = Shape::kPrefix;
      lit = text.substr(0, n - 1);
    } else if (n >= 1 && text[0] == '*' && literal(std::string_view(text).substr(1))) {
      shape = Shape::kSuffix;
      lit = text.substr(1);
    }
  }
};

// Case-insensitive (ASCII) match of the whole of `s` against `p`. O(|p|*|s|) worst case, no
// recursion: the classic greedy algorithm that only backtracks to the last `*`.
bool GlobMatch(std::string_view p, std::string_view s);

// `lower` is already lower case.
inline bool EqualsLower(std::string_view s, std::string_view lower) {
  if (s.size() != lower.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (LowerAscii(s[i]) != lower[i]) return false;
  }
  return true;
}

inline bool PatternMatch(const Pattern& p, std::string_view s) {
  switch (p.shape) {
    case Pattern::Shape::kExact:
      return EqualsLower(s, p.text);
    case Pattern::Shape::kPrefix:
      return s.size() >= p.lit.size() && EqualsLower(s.substr(0, p.lit.size()), p.lit);
    case Pattern::Shape::kSuffix:
      return s.size() >= p.lit.size() && EqualsLower(s.substr(s.size() - p.lit.size()), p.lit);
    case Pattern::Shape::kContains:
      for (size_t i = 0; i + p.lit.size() <= s.size(); ++i) {
        if (EqualsLower(s.substr(i, p.lit.size()), p.lit)) return true;
      }
      return false;
    case Pattern::Shape::kGlob:
      break;
  }
  return GlobMatch(p.text, s);
}

// A number from the query or an event. Integers are kept exact (flow ids exceed 2^53).
struct Number {
  bool is_int = false;
  __int128 i = 0;
  double d = 0;
};
// Strict decimal syntax: [+-]digits[.digits][(e|E)[+-]digits]; no inf/nan/hex.
bool ParseNumber(std::string_view s, Number* out);
int CompareNumbers(const Number& a, const Number& b);

struct IpNet {
  int family = 0;  // 4 or 6
  uint8_t addr[16] = {};
  int prefix = 0;  // bits
};
// "a.b.c.d" or an IPv6 address (no prefix). IPv4-mapped IPv6 addresses become IPv4.
bool ParseIp(std::string_view s, IpNet* out);
bool IpInNet(const IpNet& ip, const IpNet& net);

struct Bound {
  bool open = true;  // `*`
  bool inclusive = true;
  Number num;        // when the range is numeric
  std::string text;  // lower-cased, when the range is textual
};

enum class Kind { kAnd, kOr, kNot, kText, kField };
enum class FieldOp { kExists, kValue, kPhrase, kIp, kRange };

struct Node {
  Kind kind = Kind::kText;
  std::vector<std::unique_ptr<Node>> children;  // kAnd, kOr (2+), kNot (1)

  // kText: consecutive token patterns (a bare term split at separators, or a quoted phrase).
  std::vector<Pattern> tokens;
  bool quoted = false;
  bool ntlm = false;  // the bare term `ntlm`: also matches events with an ntlmssp object

  // kField
  std::vector<std::string> path;  // dotted path split at '.'
  FieldOp op = FieldOp::kExists;
  Pattern value;         // kValue: whole-value pattern; kPhrase: lower-cased phrase text
  bool numeric = false;  // kValue without wildcards that parses as a number
  Number num;
  IpNet net;  // kIp (prefix = full length for a single address)
  bool numeric_range = false;
  Bound lo, hi;  // kRange

  std::string display;  // canonical text of a leaf clause
};

bool Evaluate(const Node& n, const nlohmann::json& event);

// Prefilters (query_prefilter.cc).
std::string BuildFts5(const Node& n);
std::vector<std::vector<std::string>> BuildFragments(const Node& n);

}  // namespace vigil::ctl::query

#endif  // VIGIL_CONTROL_QUERY_QUERY_INTERNAL_H_
