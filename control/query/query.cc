// The query parser (scannerless recursive descent with column tracking), Tokenize/IndexText and
// the canonical form. Evaluation is in query_eval.cc, prefilters in query_prefilter.cc.
#include "control/query/query.h"

#include <arpa/inet.h>

#include <cstring>
#include <utility>

#include "control/query/query_internal.h"

namespace vigil::ctl::query {
namespace {

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

bool IsFieldChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-' || c == '@';
}

// `smb.filename`, `dns.queries.rrname`, `@timestamp`: starts with a letter, `_` or `@`.
bool IsFieldName(std::string_view s) {
  if (s.empty()) return false;
  const char c = s[0];
  if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '@')) return false;
  for (char ch : s) {
    if (!IsFieldChar(ch)) return false;
  }
  return true;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = LowerAscii(c);
  return out;
}

bool HasWildcard(std::string_view s) {
  return s.find('*') != std::string_view::npos || s.find('?') != std::string_view::npos;
}

// Quotes `s` so that ReadQuoted() gives it back.
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

std::string FormatIp(const IpNet& net, bool with_prefix) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(net.family == 4 ? AF_INET : AF_INET6, net.addr, buf, sizeof(buf));
  std::string out = buf;
  if (with_prefix) out += "/" + std::to_string(net.prefix);
  return out;
}

class Parser {
 public:
  Parser(std::string_view text, Error* error) : s_(text), error_(error) {}

  std::unique_ptr<Node> Run() {
    if (s_.size() > kMaxQueryBytes) {
      return Fail(kMaxQueryBytes, "query longer than " + std::to_string(kMaxQueryBytes) + " bytes");
    }
    SkipSpace();
    if (pos_ >= s_.size()) return Fail(pos_, "empty query");
    auto root = ParseOr(nullptr);
    if (!root) return nullptr;
    SkipSpace();
    if (pos_ < s_.size()) {
      // ParseAnd stops only at ')' or the end.
      return Fail(pos_, "unexpected ')'");
    }
    return root;
  }

 private:
  // A field group `field:( ... )` makes its terms values of that field.
  struct FieldCtx {
    std::vector<std::string> path;
    std::string name;
  };

  std::unique_ptr<Node> Fail(size_t at, std::string message) {
    if (!failed_ && error_ != nullptr) {
      error_->column = static_cast<int>(at) + 1;
      error_->message = std::move(message) + " at column " + std::to_string(at + 1);
    }
    failed_ = true;
    return nullptr;
  }

  void SkipSpace() {
    while (pos_ < s_.size() && IsSpace(s_[pos_])) ++pos_;
  }

  // The unquoted word at pos_ (not consumed): up to whitespace, parentheses or a quote.
  std::string_view PeekWord(bool in_range = false) const {
    size_t e = pos_;
    while (e < s_.size()) {
      const char c = s_[e];
      if (IsSpace(c) || c == '(' || c == ')' || c == '"') break;
      if (in_range && (c == ']' || c == '}')) break;
      ++e;
    }
    return s_.substr(pos_, e - pos_);
  }

  bool AtKeyword(std::string_view kw) const {
    return pos_ < s_.size() && s_[pos_] != '"' && PeekWord() == kw;
  }

  // A quoted string at pos_ (which is '"'): `\"` and `\\` are escapes, any other backslash is
  // literal (so Windows paths need no doubling).
  bool ReadQuoted(std::string* out) {
    const size_t open = pos_;
    ++pos_;
    out->clear();
    while (pos_ < s_.size()) {
      const char c = s_[pos_];
      if (c == '\\' && pos_ + 1 < s_.size() && (s_[pos_ + 1] == '"' || s_[pos_ + 1] == '\\')) {
        *out += s_[pos_ + 1];
        pos_ += 2;
        continue;
      }
      if (c == '"') {
        ++pos_;
        return true;
      }
      *out += c;
      ++pos_;
    }
    Fail(open, "unterminated quoted phrase starting");
    return false;
  }

  bool Enter(size_t at) {
    if (++depth_ > kMaxDepth) {
      Fail(at, "query nested deeper than " + std::to_string(kMaxDepth));
      return false;
    }
    return true;
  }

  bool CountClause(size_t at) {
    if (++clauses_ > kMaxClauses) {
      Fail(at, "more than " + std::to_string(kMaxClauses) + " clauses");
      return false;
    }
    return true;
  }

  static std::unique_ptr<Node> Combine(Kind kind, std::vector<std::unique_ptr<Node>> parts) {
    if (parts.size() == 1) return std::move(parts[0]);
    auto n = std::make_unique<Node>();
    n->kind = kind;
    for (auto& p : parts) {
      // Flatten (a AND b) AND c: n-ary nodes keep evaluation iterative and ToString canonical.
      if (p->kind == kind) {
        for (auto& c : p->children) n->children.push_back(std::move(c));
      } else {
        n->children.push_back(std::move(p));
      }
    }
    return n;
  }

  std::unique_ptr<Node> ParseOr(const FieldCtx* field) {
    std::vector<std::unique_ptr<Node>> parts;
    auto first = ParseAnd(field);
    if (!first) return nullptr;
    parts.push_back(std::move(first));
    for (;;) {
      SkipSpace();
      if (!AtKeyword("OR")) break;
      pos_ += 2;
      SkipSpace();
      if (pos_ >= s_.size() || s_[pos_] == ')' || AtKeyword("OR") || AtKeyword("AND")) {
        return Fail(pos_, "expected a term after OR");
      }
      auto next = ParseAnd(field);
      if (!next) return nullptr;
      parts.push_back(std::move(next));
    }
    return Combine(Kind::kOr, std::move(parts));
  }

  std::unique_ptr<Node> ParseAnd(const FieldCtx* field) {
    std::vector<std::unique_ptr<Node>> parts;
    auto first = ParseUnary(field);
    if (!first) return nullptr;
    parts.push_back(std::move(first));
    for (;;) {
      SkipSpace();
      if (pos_ >= s_.size() || s_[pos_] == ')' || AtKeyword("OR")) break;
      if (AtKeyword("AND")) {
        pos_ += 3;
        SkipSpace();
        if (pos_ >= s_.size() || s_[pos_] == ')' || AtKeyword("OR") || AtKeyword("AND")) {
          return Fail(pos_, "expected a term after AND");
        }
      }
      auto next = ParseUnary(field);  // implicit AND between adjacent clauses
      if (!next) return nullptr;
      parts.push_back(std::move(next));
    }
    return Combine(Kind::kAnd, std::move(parts));
  }

  std::unique_ptr<Node> ParseUnary(const FieldCtx* field) {
    SkipSpace();
    if (!AtKeyword("NOT")) return ParsePrimary(field);
    const size_t at = pos_;
    if (!Enter(at)) return nullptr;
    pos_ += 3;
    SkipSpace();
    if (pos_ >= s_.size() || s_[pos_] == ')' || AtKeyword("OR") || AtKeyword("AND")) {
      return Fail(pos_, "expected a term after NOT");
    }
    auto child = ParseUnary(field);
    --depth_;
    if (!child) return nullptr;
    auto n = std::make_unique<Node>();
    n->kind = Kind::kNot;
    n->children.push_back(std::move(child));
    return n;
  }

  std::unique_ptr<Node> ParsePrimary(const FieldCtx* field) {
    SkipSpace();
    if (pos_ >= s_.size()) return Fail(pos_, "unexpected end of query, expected a term");
    const char c = s_[pos_];
    if (c == ')') return Fail(pos_, "unexpected ')'");
    if (AtKeyword("AND") || AtKeyword("OR")) {
      return Fail(pos_, "unexpected " + std::string(PeekWord()) + ", expected a term");
    }
    if (c == '(') return ParseGroup(field);
    if (field != nullptr) return ParseFieldValue(*field);
    if (c == '"') return ParsePhrase();
    const std::string_view word = PeekWord();
    const size_t colon = word.find(':');
    if (colon != std::string_view::npos && IsFieldName(word.substr(0, colon))) {
      return ParseField(word.substr(0, colon));
    }
    return ParseBareTerm();
  }

  std::unique_ptr<Node> ParseGroup(const FieldCtx* field) {
    const size_t open = pos_;
    if (!Enter(open)) return nullptr;
    ++pos_;
    SkipSpace();
    if (pos_ < s_.size() && s_[pos_] == ')') return Fail(pos_, "empty parentheses");
    auto inner = ParseOr(field);
    if (!inner) return nullptr;
    SkipSpace();
    if (pos_ >= s_.size() || s_[pos_] != ')') {
      return Fail(pos_,
                  "expected ')' to close the '(' at column " + std::to_string(open + 1) + ",");
    }
    ++pos_;
    --depth_;
    return inner;
  }

  std::unique_ptr<Node> ParsePhrase() {
    const size_t at = pos_;
    if (!CountClause(at)) return nullptr;
    std::string text;
    if (!ReadQuoted(&text)) return nullptr;
    auto n = std::make_unique<Node>();
    n->kind = Kind::kText;
    n->quoted = true;
    for (auto& t : Tokenize(text)) n->tokens.push_back(Pattern{std::move(t), false});
    if (n->tokens.empty()) return Fail(at, "phrase has no searchable characters");
    std::string joined;
    for (const auto& t : n->tokens) joined += (joined.empty() ? "" : " ") + t.text;
    n->display = Quote(joined);
    return n;
  }

  std::unique_ptr<Node> ParseBareTerm() {
    const size_t at = pos_;
    if (!CountClause(at)) return nullptr;
    const std::string_view word = PeekWord();
    pos_ += word.size();
    auto n = std::make_unique<Node>();
    n->kind = Kind::kText;
    n->display = Lower(word);
    // A term with separators (`Windows\Tasks\AV.job`) is the phrase of its tokens; wildcards
    // apply within one token.
    TokenIter it(n->display);
    std::string_view tok;
    while (it.Next(&tok)) n->tokens.push_back(Pattern{std::string(tok), HasWildcard(tok)});
    if (n->tokens.empty())
      return Fail(at, "term '" + std::string(word) + "' has no searchable characters");
    n->ntlm = n->display == "ntlm";
    return n;
  }

  std::unique_ptr<Node> ParseField(std::string_view name) {
    const size_t at = pos_;
    FieldCtx ctx;
    ctx.name = std::string(name);
    size_t start = 0;
    for (;;) {
      const size_t dot = name.find('.', start);
      const std::string_view seg =
          name.substr(start, dot == std::string_view::npos ? dot : dot - start);
      if (seg.empty()) return Fail(at + start, "empty segment in field name '" + ctx.name + "'");
      ctx.path.emplace_back(seg);
      if (dot == std::string_view::npos) break;
      start = dot + 1;
    }
    pos_ += name.size() + 1;  // the name and ':'
    if (pos_ >= s_.size() || IsSpace(s_[pos_]) || s_[pos_] == ')') {
      return Fail(pos_, "expected a value after '" + ctx.name + ":'");
    }
    if (s_[pos_] == '(') return ParseGroup(&ctx);
    return ParseFieldValue(ctx);
  }

  std::unique_ptr<Node> NewField(const FieldCtx& f, FieldOp op) {
    auto n = std::make_unique<Node>();
    n->kind = Kind::kField;
    n->path = f.path;
    n->op = op;
    n->display = f.name + ":";
    return n;
  }

  std::unique_ptr<Node> ParseFieldValue(const FieldCtx& f) {
    const size_t at = pos_;
    if (!CountClause(at)) return nullptr;
    const char c = s_[pos_];
    if (c == '[' || c == '{') return ParseRange(f);
    if (c == '"') {
      std::string text;
      if (!ReadQuoted(&text)) return nullptr;
      auto n = NewField(f, FieldOp::kPhrase);
      for (auto& t : Tokenize(text)) n->tokens.push_back(Pattern{std::move(t), false});
      if (n->tokens.empty()) return Fail(at, "phrase has no searchable characters");
      std::string joined;
      for (const auto& t : n->tokens) joined += (joined.empty() ? "" : " ") + t.text;
      n->value = Pattern{joined, false};
      n->display += Quote(joined);
      return n;
    }
    const std::string_view word = PeekWord();
    pos_ += word.size();
    if (word == "*") {
      auto n = NewField(f, FieldOp::kExists);
      n->display += "*";
      return n;
    }
    if (!HasWildcard(word)) {
      const size_t slash = word.find('/');
      IpNet net;
      if (ParseIp(word.substr(0, slash), &net)) {
        const int max_bits = net.family == 4 ? 32 : 128;
        net.prefix = max_bits;
        if (slash != std::string_view::npos) {
          const std::string_view bits = word.substr(slash + 1);
          int v = 0;
          bool ok = !bits.empty() && bits.size() <= 3;
          for (char ch : bits) {
            if (ch < '0' || ch > '9') {
              ok = false;
              break;
            }
            v = v * 10 + (ch - '0');
          }
          if (!ok || v > max_bits) {
            return Fail(at + slash + 1, "invalid CIDR prefix length '" + std::string(bits) +
                                            "' (0-" + std::to_string(max_bits) + ")");
          }
          net.prefix = v;
          // 10.1.2.3/8 means 10.0.0.0/8: clear the host bits so ToString is canonical.
          for (int b = v; b < max_bits; ++b)
            net.addr[b / 8] &= static_cast<uint8_t>(~(0x80 >> (b % 8)));
        }
        auto n = NewField(f, FieldOp::kIp);
        n->net = net;
        n->value = Pattern{Lower(word), false};
        n->display += FormatIp(net, slash != std::string_view::npos);
        return n;
      }
    }
    auto n = NewField(f, FieldOp::kValue);
    n->value = Pattern{Lower(word), HasWildcard(word)};
    n->numeric = !n->value.wild && ParseNumber(word, &n->num);
    n->display += n->value.text;
    return n;
  }

  bool ReadBound(Bound* b, bool* numeric) {
    SkipSpace();
    if (pos_ >= s_.size() || s_[pos_] == ']' || s_[pos_] == '}') {
      Fail(pos_, "expected a range bound");
      return false;
    }
    std::string text;
    bool quoted = false;
    if (s_[pos_] == '"') {
      if (!ReadQuoted(&text)) return false;
      quoted = true;
    } else {
      const std::string_view w = PeekWord(/*in_range=*/true);
      if (w.empty()) {
        Fail(pos_, "expected a range bound");
        return false;
      }
      text = std::string(w);
      pos_ += w.size();
    }
    if (!quoted && text == "TO") {
      Fail(pos_ - 2, "expected a range bound before TO");
      return false;
    }
    if (!quoted && text == "*") {
      b->open = true;
      return true;
    }
    b->open = false;
    b->text = Lower(text);
    if (!ParseNumber(text, &b->num)) *numeric = false;
    return true;
  }

  static std::string BoundText(const Bound& b, bool numeric) {
    if (b.open) return "*";
    if (numeric) return b.text;
    return Quote(b.text);
  }

  std::unique_ptr<Node> ParseRange(const FieldCtx& f) {
    const size_t open = pos_;
    auto n = NewField(f, FieldOp::kRange);
    const bool lo_incl = s_[pos_] == '[';
    ++pos_;
    bool numeric = true;
    if (!ReadBound(&n->lo, &numeric)) return nullptr;
    SkipSpace();
    if (PeekWord(true) != "TO") return Fail(pos_, "expected TO in range");
    pos_ += 2;
    if (!ReadBound(&n->hi, &numeric)) return nullptr;
    SkipSpace();
    if (pos_ >= s_.size() || (s_[pos_] != ']' && s_[pos_] != '}')) {
      return Fail(pos_, "expected ']' or '}' to close the range at column " +
                            std::to_string(open + 1) + ",");
    }
    const bool hi_incl = s_[pos_] == ']';
    ++pos_;
    n->lo.inclusive = lo_incl;
    n->hi.inclusive = hi_incl;
    n->numeric_range = numeric;
    n->display += std::string(lo_incl ? "[" : "{") + BoundText(n->lo, numeric) + " TO " +
                  BoundText(n->hi, numeric) + (hi_incl ? "]" : "}");
    return n;
  }

  std::string_view s_;
  Error* error_;
  size_t pos_ = 0;
  int depth_ = 0;
  int clauses_ = 0;
  bool failed_ = false;
};

void Canonical(const Node& n, std::string* out) {
  switch (n.kind) {
    case Kind::kText:
    case Kind::kField:
      *out += n.display;
      return;
    case Kind::kNot: {
      *out += "NOT ";
      const Node& c = *n.children[0];
      const bool paren = c.kind == Kind::kAnd || c.kind == Kind::kOr;
      if (paren) *out += '(';
      Canonical(c, out);
      if (paren) *out += ')';
      return;
    }
    case Kind::kAnd:
    case Kind::kOr: {
      bool first = true;
      for (const auto& c : n.children) {
        if (!first) *out += n.kind == Kind::kAnd ? " AND " : " OR ";
        first = false;
        const bool paren = n.kind == Kind::kAnd && c->kind == Kind::kOr;
        if (paren) *out += '(';
        Canonical(*c, out);
        if (paren) *out += ')';
      }
      return;
    }
  }
}

}  // namespace

std::optional<Query> Query::Parse(std::string_view text, Error* error) {
  Parser p(text, error);
  std::unique_ptr<Node> root = p.Run();
  if (!root) return std::nullopt;
  Query q;
  q.text_ = std::string(text);
  q.root_ = std::shared_ptr<const Node>(std::move(root));
  return q;
}

bool Query::Matches(const nlohmann::json& event) const { return Evaluate(*root_, event); }

std::string Query::Fts5Prefilter() const { return BuildFts5(*root_); }

std::vector<std::string> Query::FieldPaths() const {
  std::vector<std::string> out;
  std::vector<const Node*> todo = {root_.get()};
  while (!todo.empty()) {
    const Node* n = todo.back();
    todo.pop_back();
    if (n->kind == Kind::kField) {
      std::string p;
      for (const std::string& part : n->path) p += (p.empty() ? "" : ".") + part;
      out.push_back(std::move(p));
    }
    for (auto it = n->children.rbegin(); it != n->children.rend(); ++it) todo.push_back(it->get());
  }
  return out;
}

std::vector<std::vector<std::string>> Query::RequiredFragments() const {
  return BuildFragments(*root_);
}

std::string Query::ToString() const {
  std::string out;
  Canonical(*root_, &out);
  return out;
}

std::vector<std::string> Tokenize(std::string_view text) {
  std::vector<std::string> out;
  TokenIter it(text);
  std::string_view tok;
  while (it.Next(&tok)) {
    std::string t(tok);
    for (char& c : t) c = LowerAscii(c);
    out.push_back(std::move(t));
  }
  return out;
}

namespace {

void AppendTokens(std::string_view s, std::string* out) {
  TokenIter it(s);
  std::string_view tok;
  while (it.Next(&tok)) {
    if (!out->empty()) *out += ' ';
    for (char c : tok) *out += LowerAscii(c);
  }
}

// Iterative so that a deeply nested event cannot overflow the stack.
void AppendStrings(const nlohmann::json& root, bool skip_top_message, std::string* out) {
  std::vector<const nlohmann::json*> stack{&root};
  while (!stack.empty()) {
    const nlohmann::json* j = stack.back();
    stack.pop_back();
    if (j->is_string()) {
      AppendTokens(j->get_ref<const std::string&>(), out);
    } else if (j->is_object()) {
      // Reverse so that values come out in document (key) order.
      std::vector<const nlohmann::json*> kids;
      for (auto it = j->begin(); it != j->end(); ++it) {
        if (skip_top_message && j == &root && it.key() == "message") continue;
        kids.push_back(&it.value());
      }
      for (auto k = kids.rbegin(); k != kids.rend(); ++k) stack.push_back(*k);
    } else if (j->is_array()) {
      for (auto k = j->rbegin(); k != j->rend(); ++k) stack.push_back(&*k);
    }
  }
}

}  // namespace

std::string IndexText(const nlohmann::json& event) {
  std::string out;
  // The message first: it is what a human reads, and FTS5 snippets then start with it.
  if (event.is_object()) {
    auto m = event.find("message");
    if (m != event.end() && m->is_string()) AppendTokens(m->get_ref<const std::string&>(), &out);
  }
  AppendStrings(event, /*skip_top_message=*/true, &out);
  return out;
}

}  // namespace vigil::ctl::query
