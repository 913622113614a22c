// Prefilters derived from a query: an FTS5 MATCH expression and Hyperscan literal fragments.
// Both are NECESSARY conditions (every event that Matches() satisfies them), never sufficient.
//
// Why they are sound:
// - A text term's token patterns match consecutive tokens of one string value; IndexText() holds
//   those tokens consecutively, and FTS5 tokenises the phrase we emit exactly as it tokenised the
//   same characters in the index. A wildcard token's literal prefix is a prefix of the event token
//   it matched, so it can end a phrase as an FTS5 prefix query ("windows tasks av"*). After a
//   wildcard token adjacency is no longer known (in a field pattern `*` may span separators), so
//   a new phrase starts.
// - A field clause constrains the text only when it can match nothing but strings (every string
//   value is in the text): numbers, booleans and null are not in the text.
// - NOT, ranges, CIDR, existence and the `ntlm` protocol term give no condition; OR gives one
//   only when every branch does.
#include <algorithm>

#include "control/query/query_internal.h"

namespace vigil::ctl::query {
namespace {

using Dnf = std::vector<std::vector<std::string>>;  // OR of ANDs of fragments

constexpr size_t kMaxAlternatives = 64;

bool IsWild(char c) { return c == '*' || c == '?'; }

// The pattern tokens of a whole-value pattern: maximal runs of non-separators (wildcards
// included), each flagged wild when it holds a wildcard.
std::vector<Pattern> SplitPattern(const Pattern& p) {
  std::vector<Pattern> out;
  TokenIter it(p.text);
  std::string_view tok;
  while (it.Next(&tok)) {
    const bool wild = p.wild && std::any_of(tok.begin(), tok.end(), IsWild);
    out.push_back(Pattern{std::string(tok), wild});
  }
  return out;
}

bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

// An FTS5 string gives at least one FTS5 token under any unicode61 configuration only if it
// holds an ASCII letter or digit; an empty phrase would not be a necessary condition.
bool FtsUsable(std::string_view s) {
  const bool alnum = std::any_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
  });
  return alnum && ValidUtf8(s);
}

void EmitPhrase(const std::string& text, bool prefix, std::vector<std::string>* out) {
  if (!FtsUsable(text)) return;
  std::string q = "\"";
  for (char c : text) {
    if (c == '"') q += '"';  // FTS5 doubles quotes inside strings (our tokens never hold one)
    q += c;
  }
  q += '"';
  if (prefix) q += '*';
  out->push_back(std::move(q));
}

// Necessary FTS5 phrases for consecutive token patterns.
std::vector<std::string> FtsRuns(const std::vector<Pattern>& toks) {
  std::vector<std::string> out;
  std::string cur;
  for (const Pattern& t : toks) {
    if (!t.wild) {
      if (!cur.empty()) cur += ' ';
      cur += t.text;
      continue;
    }
    const std::string_view lit = std::string_view(t.text).substr(0, t.text.find_first_of("*?"));
    if (!lit.empty()) {
      if (!cur.empty()) cur += ' ';
      cur += lit;
      EmitPhrase(cur, /*prefix=*/true, &out);
    } else if (!cur.empty()) {
      EmitPhrase(cur, false, &out);
    }
    cur.clear();
  }
  if (!cur.empty()) EmitPhrase(cur, false, &out);
  return out;
}

// Literal pieces of token patterns (each lies inside one event token), 2 bytes or more.
std::vector<std::string> Pieces(const std::vector<Pattern>& toks) {
  std::vector<std::string> out;
  for (const Pattern& t : toks) {
    if (!t.wild) {
      if (t.text.size() >= 2) out.push_back(t.text);
      continue;
    }
    size_t start = 0;
    while (start <= t.text.size()) {
      size_t end = t.text.find_first_of("*?", start);
      if (end == std::string::npos) end = t.text.size();
      if (end - start >= 2) out.push_back(t.text.substr(start, end - start));
      start = end + 1;
    }
  }
  return out;
}

// Could this field clause match a number, a boolean or null (whose text is not indexed)?
bool MayMatchNonString(const Node& n) {
  if (n.numeric) return true;
  for (const char* s : {"true", "false", "null"}) {
    if (PatternMatch(n.value, s)) return true;
  }
  // Number text is made of [0-9.eE+-]; a pattern with only such literal characters may match it.
  return std::all_of(n.value.text.begin(), n.value.text.end(), [&](char c) {
    return (n.value.wild && IsWild(c)) || (c >= '0' && c <= '9') || c == '.' || c == 'e' ||
           c == 'E' || c == '+' || c == '-';
  });
}

// The token patterns a leaf requires in the text, or false when it requires none we can use.
bool LeafTokens(const Node& n, std::vector<Pattern>* toks) {
  if (n.kind == Kind::kText) {
    if (n.ntlm) return false;
    *toks = n.tokens;
    return true;
  }
  if (n.op == FieldOp::kValue) {
    if (MayMatchNonString(n)) return false;
    *toks = SplitPattern(n.value);
    return true;
  }
  if (n.op == FieldOp::kPhrase) {
    if (MayMatchNonString(n)) return false;
    *toks = n.tokens;
    return true;
  }
  return false;
}

struct Fts {
  bool any = true;  // no condition
  std::string expr;
  bool compound = false;
};

Fts FtsOf(const Node& n) {
  Fts out;
  switch (n.kind) {
    case Kind::kNot:
      return out;
    case Kind::kText:
    case Kind::kField: {
      std::vector<Pattern> toks;
      if (!LeafTokens(n, &toks)) return out;
      const std::vector<std::string> runs = FtsRuns(toks);
      if (runs.empty()) return out;
      out.any = false;
      for (size_t i = 0; i < runs.size(); ++i) out.expr += (i ? " AND " : "") + runs[i];
      out.compound = runs.size() > 1;
      return out;
    }
    case Kind::kAnd:
    case Kind::kOr: {
      const bool is_and = n.kind == Kind::kAnd;
      std::vector<Fts> parts;
      for (const auto& c : n.children) {
        Fts f = FtsOf(*c);
        if (f.any) {
          if (!is_and) return out;  // one unconstrained branch frees the whole OR
          continue;
        }
        parts.push_back(std::move(f));
      }
      if (parts.empty()) return out;
      if (parts.size() == 1) return parts[0];
      out.any = false;
      out.compound = true;
      for (size_t i = 0; i < parts.size(); ++i) {
        if (i) out.expr += is_and ? " AND " : " OR ";
        out.expr += parts[i].compound ? "(" + parts[i].expr + ")" : parts[i].expr;
      }
      return out;
    }
  }
  return out;
}

// nullopt-like: an empty Dnf means "no condition"; a Dnf never holds an empty alternative.
Dnf FragmentsOf(const Node& n) {
  switch (n.kind) {
    case Kind::kNot:
      return {};
    case Kind::kText:
    case Kind::kField: {
      std::vector<Pattern> toks;
      if (!LeafTokens(n, &toks)) return {};
      std::vector<std::string> p = Pieces(toks);
      if (p.empty()) return {};
      return {std::move(p)};
    }
    case Kind::kOr: {
      Dnf out;
      for (const auto& c : n.children) {
        Dnf d = FragmentsOf(*c);
        if (d.empty()) return {};
        for (auto& alt : d) out.push_back(std::move(alt));
        if (out.size() > kMaxAlternatives) return {};  // too broad to be worth it
      }
      return out;
    }
    case Kind::kAnd: {
      Dnf out;  // empty: nothing required yet
      for (const auto& c : n.children) {
        Dnf d = FragmentsOf(*c);
        if (d.empty()) continue;
        if (out.empty()) {
          out = std::move(d);
          continue;
        }
        // Dropping a conjunct keeps the condition necessary, so cap the cross product.
        if (out.size() * d.size() > kMaxAlternatives) continue;
        Dnf prod;
        for (const auto& a : out) {
          for (const auto& b : d) {
            std::vector<std::string> alt = a;
            alt.insert(alt.end(), b.begin(), b.end());
            prod.push_back(std::move(alt));
          }
        }
        out = std::move(prod);
      }
      return out;
    }
  }
  return {};
}

// Sorted, without duplicates and without fragments contained in another of the alternative.
void Normalize(std::vector<std::string>* alt) {
  std::sort(alt->begin(), alt->end());
  alt->erase(std::unique(alt->begin(), alt->end()), alt->end());
  std::vector<std::string> kept;
  for (const auto& f : *alt) {
    const bool inside = std::any_of(alt->begin(), alt->end(), [&](const std::string& g) {
      return g.size() > f.size() && g.find(f) != std::string::npos;
    });
    if (!inside) kept.push_back(f);
  }
  *alt = std::move(kept);
}

}  // namespace

std::string BuildFts5(const Node& n) {
  Fts f = FtsOf(n);
  return f.any ? std::string() : f.expr;
}

std::vector<std::vector<std::string>> BuildFragments(const Node& n) {
  Dnf d = FragmentsOf(n);
  for (auto& alt : d) Normalize(&alt);
  std::sort(d.begin(), d.end());
  d.erase(std::unique(d.begin(), d.end()), d.end());
  return d;
}

}  // namespace vigil::ctl::query
