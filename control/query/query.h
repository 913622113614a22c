// The vigil query language: parser, evaluator over EVE JSON events, and the prefilters derived
// from a query (an SQLite FTS5 MATCH expression and literal fragments for Hyperscan).
//
// Language (docs/search.md is the user reference):
//   bare terms `atsvc`, wildcard terms `*.JOB` `AV.j?b`, phrases `"IPC$ atsvc"`, protocol names
//   as terms (`smb` also matches events whose event_type or app_proto is smb), `field:value` on
//   dotted EVE paths with wildcards, CIDR (`src_ip:10.0.0.0/8`), ranges (`dest_port:[1 TO 1024]`,
//   `{a TO b}`, `*` open end), existence (`field:*`), phrases (`field:"a b"`), AND / OR / NOT
//   (upper case), parentheses, implicit AND; precedence NOT > AND > OR.
//
// Text of an event = every string value anywhere in it (the `message` included), each value
// tokenised by Tokenize(). THE STORE'S FTS5 INDEX MUST INDEX EXACTLY IndexText(event) (those tokens
// joined with single spaces). Any FTS5 tokenizer that tokenises the index and the MATCH expression
// alike keeps Fts5Prefilter() sound; for selectivity use
//   CREATE VIRTUAL TABLE fts USING fts5(text,
//       tokenize="unicode61 remove_diacritics 0 tokenchars '.$-_'", prefix='2 3');
// so that FTS5 tokens equal our tokens (`av.job`, `ipc$`). Fts5Prefilter() is only a NECESSARY
// condition under that indexing; Matches() is the authority.
//
// Thread rules: a Query is immutable after Parse(); all const methods may be called concurrently
// from any number of threads. Copies share the immutable AST.
// Limits: query text up to kMaxQueryBytes, nesting (parentheses and NOT) up to kMaxDepth,
// at most kMaxClauses leaf clauses; beyond them Parse() fails with an error.
#ifndef VIGIL_CONTROL_QUERY_QUERY_H_
#define VIGIL_CONTROL_QUERY_QUERY_H_

#include <cstddef>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::ctl::query {

inline constexpr size_t kMaxQueryBytes = size_t{16} * 1024;
inline constexpr int kMaxDepth = 64;
inline constexpr int kMaxClauses = 1024;

struct Error {
  int column = 0;  // 1-based column (byte offset + 1) in the query text
  std::string message;
};

struct Node;  // AST (opaque to users)

class Query {
 public:
  // Parses `text`. On failure returns nullopt and, when `error` is non-null, fills it with the
  // column of the offending character and a message such as "expected ')' at column 17".
  static std::optional<Query> Parse(std::string_view text, Error* error);

  // Does `event` (a parsed EVE object) match?
  bool Matches(const nlohmann::json& event) const;

  // An FTS5 MATCH expression that every matching event's text satisfies (a necessary condition,
  // used to prefilter in SQLite), or "" when none can be derived (then scan with Matches).
  std::string Fts5Prefilter() const;

  // The dotted paths of its field clauses (`smb.filename:*.exe` gives "smb.filename"), in query
  // order, for checks against the event schema.
  std::vector<std::string> FieldPaths() const;

  // Literal text fragments (lower case) the query's positive text terms require, for a Hyperscan
  // prefilter across many queries: each inner vector is one alternative (OR) of conjunctive
  // fragments; empty when the query has no text term that must appear. Every fragment is a
  // substring of a single token, so for every matching event some alternative has all its
  // fragments inside IndexText(event) (and inside the ASCII-lower-cased string values).
  std::vector<std::vector<std::string>> RequiredFragments() const;

  const std::string& text() const { return text_; }
  std::string ToString() const;  // canonical form, for tests and logs

 private:
  Query() = default;
  std::string text_;
  std::shared_ptr<const Node> root_;
};

// Tokenisation of text used by bare terms and by the store's FTS5 index (must agree):
// lower-cased (ASCII) tokens, split on whitespace and on \ / , ; : = ( ) [ ] { } " ' | < > @.
std::vector<std::string> Tokenize(std::string_view text);

// The event's text (message, then every string value in document order) as Tokenize() tokens
// joined with single spaces: exactly what the store indexes in FTS5.
std::string IndexText(const nlohmann::json& event);

}  // namespace vigil::ctl::query

#endif  // VIGIL_CONTROL_QUERY_QUERY_H_
