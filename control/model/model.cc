// Model loader: YAML text -> Model, with every problem reported as file:line:column: field:
// message. yaml-cpp builds the node tree; every check after that (types, ranges, unknown keys,
// the filter's syntax) is done here and collected rather than thrown, so one run shows every
// mistake of every file.

#include "control/model/model.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <map>
#include <sstream>
#include <utility>

namespace vigil::ctl::model {
namespace {

constexpr std::string_view kGroupByNames[] = {"source", "destination", "pair"};
constexpr std::string_view kActionNames[] = {"block_connection", "quarantine_device",
                                             "quarantine_outgoing", "quarantine_incoming"};
constexpr std::string_view kModeNames[] = {"alert", "confirm", "autonomous"};
// The event types the dataplane writes (docs/events.md); a typo in `event_types` would silently
// make a component dead, so unknown names are errors.
constexpr std::string_view kEventTypes[] = {"smb",  "dcerpc", "krb5",    "dns",      "http", "tls",
                                            "flow", "ntlm",   "anomaly", "fileinfo", "alert"};
// The top-level members of the events (docs/events.md): a filter on another field can never
// match, so it is an error (the member's own fields are not checked: they vary by protocol).
constexpr std::string_view kEventFields[] = {
    "timestamp", "flow_id",  "pcap_cnt",  "event_type", "src_ip",    "src_port",  "dest_ip",
    "dest_port", "proto",    "app_proto", "vlan",       "direction", "truncated", "message",
    "sensor",    "in_iface", "tx_id",     "smb",        "dcerpc",    "krb5",      "dns",
    "http",      "tls",      "flow",      "ntlm",       "ntlmssp",   "anomaly",   "fileinfo",
    "alert",     "files",    "tcp",       "icmp_type",  "icmp_code"};
// Flow-style brackets nested deeper than this are refused before yaml-cpp sees them: its parser
// recurses per level, and a fuzzer's "[[[[..." must be an error, not a stack overflow.
constexpr int kMaxNesting = 64;

struct Loc {
  int line = 0;
  int column = 0;
};

Loc LocOf(const YAML::Mark& m) {
  if (m.is_null() || m.line < 0 || m.column < 0) return {};
  return {m.line + 1, m.column + 1};
}

struct Item {
  YAML::Node node;
  std::string path;
  Loc loc;
};

std::string Join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string Quote(const std::string& s) {
  constexpr size_t kMax = 40;
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < kMax; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += {'\\', 'x', kHex[c >> 4], kHex[c & 0xf]};
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + (s.size() > kMax ? "...\"" : "\"");
}

std::string Describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Sequence:
      return "a sequence";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Scalar:
      return Quote(n.Scalar());
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

std::string JoinNames(std::span<const std::string_view> names) {
  std::string out;
  for (std::string_view n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

// Levenshtein distance, for "did you mean" on unknown keys and names.
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string Suggest(std::string_view got, std::span<const std::string_view> names) {
  std::string_view best;
  size_t best_d = 3;  // more than two edits away is no suggestion
  for (std::string_view n : names) {
    const size_t d = EditDistance(got, n);
    if (d < best_d) {
      best_d = d;
      best = n;
    }
  }
  return best.empty() ? std::string() : " (did you mean \"" + std::string(best) + "\"?)";
}

// "60m" -> ns. Returns false with *why on a bad form.
bool ParseDuration(const std::string& s, int64_t* ns, std::string* why) {
  if (s == "0") {
    *ns = 0;
    return true;
  }
  size_t i = 0;
  uint64_t n = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    n = n * 10 + static_cast<uint64_t>(s[i] - '0');
    if (n > uint64_t{1} << 40) {
      *why = "number too large";
      return false;
    }
    ++i;
  }
  const std::string unit = s.substr(i);
  if (i == 0 || unit.empty()) {
    *why = "expected a duration such as 30s, 60m, 1h or 7d";
    return false;
  }
  uint64_t mult = 0;
  if (unit == "ms") {
    mult = 1000000;
  } else if (unit == "s") {
    mult = 1000000000;
  } else if (unit == "m") {
    mult = uint64_t{60} * 1000000000;
  } else if (unit == "h") {
    mult = uint64_t{3600} * 1000000000;
  } else if (unit == "d") {
    mult = uint64_t{86400} * 1000000000;
  } else {
    *why = "unknown unit \"" + unit + "\"; expected ms, s, m, h or d";
    return false;
  }
  const long double v = static_cast<long double>(n) * static_cast<long double>(mult);
  if (v > static_cast<long double>(kMaxDurationNs)) {
    *why = "longer than 366d";
    return false;
  }
  *ns = static_cast<int64_t>(n * mult);
  return true;
}

bool ValidMitre(const std::string& s) {
  // T1234 or T1234.567
  auto digits = [&](size_t from, size_t n) {
    if (from + n > s.size()) return false;
    for (size_t i = from; i < from + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
    }
    return true;
  };
  if (s.size() != 5 && s.size() != 9) return false;
  if (s[0] != 'T' || !digits(1, 4)) return false;
  return s.size() == 5 || (s[5] == '.' && digits(6, 3));
}

// Deepest flow-bracket nesting outside quotes and comments, and the deepest block indentation:
// cheap bounds checked before handing the text to yaml-cpp (see kMaxNesting).
bool NestingTooDeep(std::string_view text, Loc* where) {
  int depth = 0;
  int line = 1, col = 0;
  bool at_line_start = true;
  int indent = 0;
  char quote = 0;
  bool comment = false;
  for (char c : text) {
    ++col;
    if (c == '\n') {
      ++line;
      col = 0;
      at_line_start = true;
      indent = 0;
      comment = false;
      if (quote == '\'') quote = 0;  // single-quoted scalars may span lines; be lenient
      continue;
    }
    if (at_line_start) {
      if (c == ' ' || c == '-' || c == '?' || c == ':') {
        ++indent;
        if (indent > 4 * kMaxNesting) {
          *where = {line, col};
          return true;
        }
        continue;
      }
      at_line_start = false;
    }
    if (comment) continue;
    if (quote != 0) {
      if (c == quote) quote = 0;
      continue;
    }
    if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '#') {
      comment = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxNesting) {
        *where = {line, col};
        return true;
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return false;
}

// A second YAML document: `---` at the start of a line after content, or content after a `...`
// document end marker.
bool SecondDocument(std::string_view text, Loc* where) {
  bool content = false, ended = false;
  int line = 1;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view l = text.substr(pos, end - pos);
    const bool marker = l.size() >= 3 && (l.substr(0, 3) == "---" || l.substr(0, 3) == "...") &&
                        (l.size() == 3 || l[3] == ' ' || l[3] == '\t' || l[3] == '\r');
    const size_t first = l.find_first_not_of(" \t\r");
    const bool is_content = !marker && first != std::string_view::npos && l[first] != '#' &&
                            !(first == 0 && l[0] == '%');
    if ((marker && l[0] == '-' && content) || (is_content && ended)) {
      *where = {line, 1};
      return true;
    }
    if (marker && l[0] == '.') ended = content;
    content = content || is_content || (marker && l[0] == '-' && l.size() > 4);
    pos = end + 1;
    ++line;
  }
  return false;
}

class Parser {
 public:
  explicit Parser(std::string file) : file_(std::move(file)) {}

  void Error(Loc loc, const std::string& field, const std::string& message) {
    errors_.push_back(LoadError{file_, loc.line, loc.column, field, message});
  }
  bool HasErrors() const { return !errors_.empty(); }
  std::vector<LoadError> TakeErrors() {
    std::stable_sort(errors_.begin(), errors_.end(), [](const LoadError& x, const LoadError& y) {
      const int xl = x.line ? x.line : 1 << 30, yl = y.line ? y.line : 1 << 30;
      if (xl != yl) return xl < yl;
      return x.column < y.column;
    });
    return std::move(errors_);
  }
  const std::string& file() const { return file_; }

  struct KeySpec {
    std::string_view name;
    std::function<void(const Item&)> parse;
  };

  // Walks a map in document order; unknown, duplicate and missing required keys are errors.
  bool Map(const Item& item, std::initializer_list<KeySpec> keys,
           std::initializer_list<std::string_view> required = {}) {
    if (!item.node.IsMap()) {
      Error(item.loc, item.path, "expected a map, got " + Describe(item.node));
      return false;
    }
    std::vector<std::string_view> names;
    for (const KeySpec& k : keys) names.push_back(k.name);
    std::map<std::string, Loc> seen;
    for (auto it = item.node.begin(); it != item.node.end(); ++it) {
      const YAML::Node key = it->first;
      const Loc key_loc = LocOf(key.Mark());
      if (!key.IsScalar()) {
        Error(key_loc, item.path, "map keys must be strings, got " + Describe(key));
        continue;
      }
      const std::string& name = key.Scalar();
      const std::string path = Join(item.path, name);
      if (auto [prev, inserted] = seen.emplace(name, key_loc); !inserted) {
        Error(key_loc, path,
              "duplicate key (first at line " + std::to_string(prev->second.line) + ")");
        continue;
      }
      const KeySpec* spec = nullptr;
      for (const KeySpec& k : keys) {
        if (k.name == name) spec = &k;
      }
      if (spec == nullptr) {
        Error(key_loc, path,
              "unknown key" + Suggest(name, names) + "; expected one of: " + JoinNames(names));
        continue;
      }
      // An empty value's mark points at the next token; the key's position is the useful one.
      const YAML::Node value = it->second;
      const Loc value_loc = value.IsNull() ? key_loc : LocOf(value.Mark());
      spec->parse(Item{value, path, value_loc.line ? value_loc : key_loc});
    }
    for (std::string_view key : required) {
      if (seen.count(std::string(key)) == 0) {
        Error(item.loc, Join(item.path, key), "required key missing");
      }
    }
    return true;
  }

  std::optional<std::vector<Item>> Seq(const Item& item) {
    if (!item.node.IsSequence()) {
      Error(item.loc, item.path, "expected a sequence, got " + Describe(item.node));
      return std::nullopt;
    }
    std::vector<Item> out;
    size_t i = 0;
    for (const YAML::Node& e : item.node) {
      const Loc loc = LocOf(e.Mark());
      out.push_back(
          Item{e, item.path + "[" + std::to_string(i++) + "]", loc.line ? loc : item.loc});
    }
    return out;
  }

  std::optional<std::string> String(const Item& item, bool allow_empty = false) {
    if (!item.node.IsScalar()) {
      Error(item.loc, item.path, "expected a string, got " + Describe(item.node));
      return std::nullopt;
    }
    if (!allow_empty && item.node.Scalar().empty()) {
      Error(item.loc, item.path, "must not be empty");
      return std::nullopt;
    }
    return item.node.Scalar();
  }

  std::optional<std::vector<std::string>> Strings(const Item& item) {
    // A single scalar is accepted as a one-element list: `tags: lateral-movement`.
    if (item.node.IsScalar()) {
      auto s = String(item);
      if (!s) return std::nullopt;
      return std::vector<std::string>{*s};
    }
    auto seq = Seq(item);
    if (!seq) return std::nullopt;
    std::vector<std::string> out;
    bool ok = true;
    for (const Item& e : *seq) {
      if (auto s = String(e)) {
        out.push_back(*s);
      } else {
        ok = false;
      }
    }
    if (!ok) return std::nullopt;
    return out;
  }

  std::optional<uint64_t> Uint(const Item& item, uint64_t lo, uint64_t hi) {
    const bool plain = item.node.IsScalar() &&
                       (item.node.Tag() == "?" || item.node.Tag() == "tag:yaml.org,2002:int");
    uint64_t v = 0;
    bool ok = plain && !item.node.Scalar().empty();
    if (ok) {
      for (char c : item.node.Scalar()) {
        if (c < '0' || c > '9' || v > (uint64_t{1} << 60)) {
          ok = false;
          break;
        }
        v = v * 10 + static_cast<uint64_t>(c - '0');
      }
    }
    if (!ok) {
      Error(item.loc, item.path, "expected an unsigned integer, got " + Describe(item.node));
      return std::nullopt;
    }
    if (v < lo || v > hi) {
      Error(item.loc, item.path,
            "must be in " + std::to_string(lo) + ".." + std::to_string(hi) + ", got " +
                item.node.Scalar());
      return std::nullopt;
    }
    return v;
  }

  std::optional<bool> Bool(const Item& item) {
    if (item.node.IsScalar() &&
        (item.node.Tag() == "?" || item.node.Tag() == "tag:yaml.org,2002:bool")) {
      const std::string& s = item.node.Scalar();
      if (s == "true" || s == "True" || s == "TRUE") return true;
      if (s == "false" || s == "False" || s == "FALSE") return false;
    }
    Error(item.loc, item.path, "expected a boolean (true or false), got " + Describe(item.node));
    return std::nullopt;
  }

  std::optional<int64_t> Duration(const Item& item) {
    // yaml-cpp gives `0` and `60m` alike as scalars; a quoted "60m" is accepted too.
    if (!item.node.IsScalar()) {
      Error(item.loc, item.path, "expected a duration such as 60m, got " + Describe(item.node));
      return std::nullopt;
    }
    int64_t ns = 0;
    std::string why;
    if (!ParseDuration(item.node.Scalar(), &ns, &why)) {
      Error(item.loc, item.path, why + ", got " + Describe(item.node));
      return std::nullopt;
    }
    return ns;
  }

  std::optional<size_t> Enum(const Item& item, std::span<const std::string_view> names) {
    auto s = String(item, /*allow_empty=*/true);
    if (!s) return std::nullopt;
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == *s) return i;
    }
    Error(
        item.loc, item.path,
        "must be one of " + JoinNames(names) + ", got " + Describe(item.node) + Suggest(*s, names));
    return std::nullopt;
  }

 private:
  std::string file_;
  std::vector<LoadError> errors_;
};

// Where a query error's column lands in the file: exact for a scalar on one line (plain or
// quoted without escapes before the error), else the scalar's own position.
Loc FilterErrorLoc(const Item& item, int query_column) {
  Loc loc = item.loc;
  const YAML::Node& n = item.node;
  if (loc.line == 0 || query_column <= 0) return loc;
  const std::string& s = n.Scalar();
  if (s.find('\n') != std::string::npos) return loc;
  // Quoted scalars (tag "!") start one character after their mark.
  const int quote = n.Tag() == "!" ? 1 : 0;
  loc.column += quote + (query_column - 1);
  return loc;
}

class ModelParser {
 public:
  explicit ModelParser(std::string file) : p_(std::move(file)) {}

  std::optional<Model> Parse(std::string_view yaml, std::vector<LoadError>* errors) {
    model_.file = p_.file();
    if (yaml.size() > kMaxModelFileBytes) {
      p_.Error({}, "", "file larger than " + std::to_string(kMaxModelFileBytes) + " bytes");
    } else if (Loc where; NestingTooDeep(yaml, &where)) {
      p_.Error(where, "", "nested deeper than " + std::to_string(kMaxNesting) + " levels");
    } else {
      try {
        // YAML::Load, not LoadAll: yaml-cpp 0.7's LoadAll can loop forever on some malformed
        // input (upstream PR #1319); a second document is found by its marker instead.
        if (Loc second; SecondDocument(yaml, &second)) {
          p_.Error(second, "", "more than one YAML document; one model per file");
        }
        const YAML::Node root = YAML::Load(std::string(yaml));
        if (root.IsNull()) {
          p_.Error({1, 1}, "",
                   "empty model file (or no YAML in it); expected a map with name, priority, "
                   "components");
        } else {
          Root(Item{root, "", LocOf(root.Mark())});
        }
      } catch (const YAML::Exception& e) {
        p_.Error(LocOf(e.mark), "", e.msg.empty() ? std::string(e.what()) : e.msg);
      } catch (const std::exception& e) {
        p_.Error({}, "", std::string("internal error: ") + e.what());
      }
    }
    const bool ok = !p_.HasErrors();
    std::vector<LoadError> errs = p_.TakeErrors();
    if (errors != nullptr) {
      errors->insert(errors->end(), std::make_move_iterator(errs.begin()),
                     std::make_move_iterator(errs.end()));
    }
    if (!ok) return std::nullopt;
    return std::move(model_);
  }

 private:
  void Root(const Item& root) {
    if (!root.node.IsMap()) {
      p_.Error(root.loc, "",
               "expected a map with name, priority, components; got " + Describe(root.node));
      return;
    }
    p_.Map(root,
           {
               {"name", [&](const Item& i) { Name(i); }},
               {"description",
                [&](const Item& i) {
                  if (auto s = p_.String(i, true)) model_.description = *s;
                }},
               {"priority",
                [&](const Item& i) {
                  if (auto v = p_.Uint(i, 0, 5)) model_.priority = static_cast<int>(*v);
                }},
               {"tags",
                [&](const Item& i) {
                  if (auto v = p_.Strings(i)) model_.tags = std::move(*v);
                }},
               {"mitre", [&](const Item& i) { Mitre(i); }},
               {"enabled",
                [&](const Item& i) {
                  if (auto v = p_.Bool(i)) model_.enabled = *v;
                }},
               {"components", [&](const Item& i) { Components(i); }},
               {"throttle",
                [&](const Item& i) {
                  if (auto v = p_.Duration(i)) model_.throttle_ns = *v;
                }},
               {"response", [&](const Item& i) { ResponseBlock(i); }},
           },
           {"name", "priority", "components"});
  }

  void Name(const Item& i) {
    auto s = p_.String(i);
    if (!s) return;
    model_.line = i.loc.line;
    const size_t sep = s->find(" / ");
    const bool blank_edges = s->front() == ' ' || s->back() == ' ';
    if (sep == std::string::npos || sep == 0 || sep + 3 >= s->size() || blank_edges) {
      p_.Error(i.loc, i.path,
               "expected \"Category / Name\" (two non-empty parts around \" / \"), got " +
                   Describe(i.node));
      return;
    }
    for (char c : *s) {
      if (static_cast<unsigned char>(c) < 0x20) {
        p_.Error(i.loc, i.path, "must not contain control characters");
        return;
      }
    }
    model_.name = *s;
  }

  void Mitre(const Item& i) {
    auto items = i.node.IsScalar() ? std::optional<std::vector<Item>>({i}) : p_.Seq(i);
    if (!items) return;
    for (const Item& e : *items) {
      auto s = p_.String(e);
      if (!s) continue;
      if (!ValidMitre(*s)) {
        p_.Error(e.loc, e.path,
                 "expected a MITRE ATT&CK technique id such as T1021 or "
                 "T1053.002, got " +
                     Describe(e.node));
        continue;
      }
      model_.mitre.push_back(*s);
    }
  }

  void Components(const Item& i) {
    auto items = p_.Seq(i);
    if (!items) return;
    if (items->empty()) {
      p_.Error(i.loc, i.path, "at least one component is required");
      return;
    }
    for (const Item& e : *items) {
      Component c;
      bool filter_ok = false;
      if (!p_.Map(e,
                  {
                      {"event_types", [&](const Item& t) { EventTypes(t, &c); }},
                      {"filter", [&](const Item& f) { filter_ok = Filter(f, &c); }},
                      {"frequency", [&](const Item& f) { FrequencyBlock(f, &c.frequency); }},
                  },
                  {"filter"})) {
        continue;
      }
      if (filter_ok) model_.components.push_back(std::move(c));
    }
  }

  void EventTypes(const Item& i, Component* c) {
    auto items = i.node.IsScalar() ? std::optional<std::vector<Item>>({i}) : p_.Seq(i);
    if (!items) return;
    for (const Item& e : *items) {
      auto s = p_.String(e);
      if (!s) continue;
      if (std::find(std::begin(kEventTypes), std::end(kEventTypes), *s) == std::end(kEventTypes)) {
        p_.Error(e.loc, e.path,
                 "unknown event type " + Describe(e.node) + Suggest(*s, kEventTypes) +
                     "; expected one of: " + JoinNames(kEventTypes));
        continue;
      }
      if (std::find(c->event_types.begin(), c->event_types.end(), *s) == c->event_types.end()) {
        c->event_types.push_back(*s);
      }
    }
  }

  bool Filter(const Item& i, Component* c) {
    auto s = p_.String(i);
    if (!s) return false;
    query::Error qe;
    auto q = query::Query::Parse(*s, &qe);
    if (!q) {
      p_.Error(FilterErrorLoc(i, qe.column), i.path,
               "query column " + std::to_string(qe.column) + ": " + qe.message);
      return false;
    }
    bool fields_ok = true;
    for (const std::string& path : q->FieldPaths()) {
      const std::string top = path.substr(0, path.find('.'));
      if (top.find_first_of("*?") != std::string::npos) continue;  // a wildcard: any member
      if (std::find(std::begin(kEventFields), std::end(kEventFields), top) ==
          std::end(kEventFields)) {
        p_.Error(i.loc, i.path,
                 "unknown field " + path + ": events have no member " + top +
                     " (docs/events.md lists the fields)" + Suggest(top, kEventFields));
        fields_ok = false;
      }
    }
    if (!fields_ok) return false;
    c->filter = *s;
    c->query = std::move(*q);
    return true;
  }

  void FrequencyBlock(const Item& i, Frequency* f) {
    p_.Map(i, {
                  {"count",
                   [&](const Item& v) {
                     if (auto n = p_.Uint(v, 0, kMaxFrequencyCount)) f->count = *n;
                   }},
                  {"interval",
                   [&](const Item& v) {
                     auto d = p_.Duration(v);
                     if (d && *d == 0) {
                       p_.Error(v.loc, v.path, "must be longer than 0");
                     } else if (d) {
                       f->interval_ns = *d;
                     }
                   }},
                  {"group_by",
                   [&](const Item& v) {
                     if (auto g = p_.Enum(v, kGroupByNames)) f->group_by = static_cast<GroupBy>(*g);
                   }},
              });
  }

  void ResponseBlock(const Item& i) {
    Response r;
    if (!p_.Map(i,
                {
                    {"action",
                     [&](const Item& v) {
                       if (auto a = p_.Enum(v, kActionNames)) {
                         r.action = static_cast<ResponseAction>(*a);
                       }
                     }},
                    {"duration",
                     [&](const Item& v) {
                       if (auto d = p_.Duration(v)) r.duration_ns = *d;
                     }},
                    {"mode",
                     [&](const Item& v) {
                       if (auto m = p_.Enum(v, kModeNames)) r.mode = static_cast<ResponseMode>(*m);
                     }},
                },
                {"action"})) {
      return;
    }
    model_.response = r;
  }

  Parser p_;
  Model model_;
};

std::optional<ModelSet> Build(std::vector<Model> models, std::vector<LoadError>* errors) {
  std::map<std::string, const Model*> names;
  bool ok = true;
  for (const Model& m : models) {
    auto [it, inserted] = names.emplace(m.name, &m);
    if (!inserted) {
      ok = false;
      if (errors != nullptr) {
        errors->push_back(LoadError{m.file, m.line, 0, "name",
                                    "duplicate model name \"" + m.name + "\" (also in " +
                                        it->second->file + ":" + std::to_string(it->second->line) +
                                        ")"});
      }
    }
  }
  if (!ok) return std::nullopt;
  return ModelSet::FromModels(std::move(models), nullptr);
}

}  // namespace

std::string LoadError::ToString() const {
  std::string out = file;
  if (line > 0) {
    out += ":" + std::to_string(line);
    if (column > 0) out += ":" + std::to_string(column);
  }
  if (!out.empty()) out += ": ";
  if (!field.empty()) out += field + ": ";
  return out + message;
}

const char* GroupByName(GroupBy g) { return kGroupByNames[static_cast<size_t>(g)].data(); }
const char* ResponseActionName(ResponseAction a) {
  return kActionNames[static_cast<size_t>(a)].data();
}
std::optional<ResponseAction> ParseResponseAction(std::string_view name) {
  for (size_t i = 0; i < std::size(kActionNames); ++i) {
    if (kActionNames[i] == name) return static_cast<ResponseAction>(i);
  }
  return std::nullopt;
}
const char* ResponseModeName(ResponseMode m) { return kModeNames[static_cast<size_t>(m)].data(); }

double Score(int priority, uint64_t count) {
  const double p = std::clamp(priority, 0, 5) / 5.0;
  const double c = count <= 1 ? 0.0 : std::min(1.0, std::log10(static_cast<double>(count)) / 3.0);
  const double s = 100.0 * (0.15 + 0.70 * p + 0.15 * c);
  return std::round(s * 10.0) / 10.0;  // one decimal: stable in JSON and tests
}

nlohmann::json Model::ToJson() const {
  nlohmann::json j = {
      {"name", name},   {"description", description}, {"priority", priority},       {"tags", tags},
      {"mitre", mitre}, {"enabled", enabled},         {"throttle_ns", throttle_ns}, {"file", file}};
  nlohmann::json comps = nlohmann::json::array();
  for (const Component& c : components) {
    comps.push_back({{"event_types", c.event_types},
                     {"filter", c.filter},
                     {"frequency",
                      {{"count", c.frequency.count},
                       {"interval_ns", c.frequency.interval_ns},
                       {"group_by", GroupByName(c.frequency.group_by)}}}});
  }
  j["components"] = std::move(comps);
  if (response) {
    j["response"] = {{"action", ResponseActionName(response->action)},
                     {"duration_ns", response->duration_ns},
                     {"mode", ResponseModeName(response->mode)}};
  }
  return j;
}

std::optional<Model> ModelSet::ParseModel(std::string_view yaml, const std::string& file,
                                          std::vector<LoadError>* errors) {
  return ModelParser(file).Parse(yaml, errors);
}

std::optional<ModelSet> ModelSet::FromModels(std::vector<Model> models,
                                             std::vector<LoadError>* errors) {
  if (errors != nullptr) {
    std::vector<LoadError> dup;
    auto checked = Build(models, &dup);
    if (!checked) {
      errors->insert(errors->end(), dup.begin(), dup.end());
      return std::nullopt;
    }
  }
  ModelSet set;
  set.models_ = std::move(models);
  return set;
}

std::optional<ModelSet> ModelSet::LoadFiles(std::span<const std::string> files,
                                            std::vector<LoadError>* errors) {
  std::vector<LoadError> errs;
  std::vector<Model> models;
  for (const std::string& f : files) {
    std::ifstream in(f, std::ios::binary);
    if (!in) {
      errs.push_back(LoadError{f, 0, 0, "", "cannot open: " + std::string(std::strerror(errno))});
      continue;
    }
    // Read at most one byte beyond the limit so a huge file is refused without reading it all.
    std::string text(kMaxModelFileBytes + 1, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    text.resize(static_cast<size_t>(in.gcount()));
    if (auto m = ParseModel(text, f, &errs)) models.push_back(std::move(*m));
  }
  if (errs.empty()) {
    auto set = Build(std::move(models), &errs);
    if (set) return set;
  }
  if (errors != nullptr) errors->insert(errors->end(), errs.begin(), errs.end());
  return std::nullopt;
}

std::optional<ModelSet> ModelSet::LoadDir(const std::string& dir, std::vector<LoadError>* errors) {
  std::error_code ec;
  std::vector<std::string> files;
  std::filesystem::directory_iterator it(dir, ec);
  if (ec) {
    if (errors != nullptr) {
      errors->push_back(LoadError{dir, 0, 0, "", "cannot read model directory: " + ec.message()});
    }
    return std::nullopt;
  }
  for (const auto& e : it) {
    const std::string ext = e.path().extension().string();
    if ((ext == ".yaml" || ext == ".yml") && e.is_regular_file(ec)) {
      files.push_back(e.path().string());
    }
  }
  std::sort(files.begin(), files.end());
  return LoadFiles(files, errors);
}

const Model* ModelSet::Find(std::string_view name) const {
  for (const Model& m : models_) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

}  // namespace vigil::ctl::model
