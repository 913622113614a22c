// Store: search, count, flows' events and single events.
//
// Every query runs the same pipeline: SQL picks events in the time range (narrowed by the
// query's FTS5 prefilter when it has one), a substring check of the query's required fragments
// against the raw JSON drops most non-matching candidates without parsing them, and
// query::Query::Matches decides on the parsed event. The first two stages are necessary
// conditions only, so results are exactly what Matches accepts.
#include <sqlite3.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "control/store/store.h"
#include "control/store/store_internal.h"

namespace vigil::ctl::store {
namespace {

// Checks RequiredFragments() on raw, ASCII-lower-cased JSON. A fragment is a substring of the
// event's Tokenize() text; a piece of it between spaces lies inside one token, hence inside one
// string value, hence verbatim in the JSON as long as nothing in it is escaped there. So only
// printable ASCII pieces without '"', '\\' and '/' (which JSON escapes or may escape) are kept,
// and events whose JSON escapes printable ASCII (\u00XX, \/) skip the check.
class FragmentFilter {
 public:
  explicit FragmentFilter(const query::Query& q) {
    for (const auto& alt : q.RequiredFragments()) {
      std::vector<std::string> pieces;
      for (const std::string& f : alt) {
        size_t i = 0;
        while (i < f.size()) {
          size_t j = f.find(' ', i);
          if (j == std::string::npos) j = f.size();
          std::string piece = f.substr(i, j - i);
          i = j + 1;
          bool usable = !piece.empty();
          for (char& c : piece) {
            const auto u = static_cast<unsigned char>(c);
            if (u < 0x21 || u > 0x7e || c == '"' || c == '\\' || c == '/') usable = false;
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
          }
          if (usable) pieces.push_back(std::move(piece));
        }
      }
      // An alternative with nothing checkable admits every event: no filtering possible.
      if (pieces.empty()) {
        alts_.clear();
        return;
      }
      alts_.push_back(std::move(pieces));
    }
  }

  bool active() const { return !alts_.empty(); }

  // False only when the event certainly does not match.
  bool MayMatch(std::string_view json) {
    if (alts_.empty()) return true;
    if (Contains(json, "\\u00") || Contains(json, "\\/")) return true;
    lower_.assign(json);
    for (char& c : lower_) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    for (const auto& alt : alts_) {
      bool all = true;
      for (const std::string& p : alt) {
        if (!Contains(lower_, p)) {
          all = false;
          break;
        }
      }
      if (all) return true;
    }
    return false;
  }

 private:
  static bool Contains(std::string_view hay, std::string_view needle) {
    return memmem(hay.data(), hay.size(), needle.data(), needle.size()) != nullptr;
  }
  std::vector<std::vector<std::string>> alts_;
  std::string lower_;
};

// Values of the dotted path `field` in `j`, as count keys (each element of an array).
void FieldValues(const nlohmann::json& j, std::string_view field, std::vector<std::string>* out) {
  const nlohmann::json* cur = &j;
  std::vector<const nlohmann::json*> level{cur};
  size_t pos = 0;
  while (pos <= field.size()) {
    size_t dot = field.find('.', pos);
    if (dot == std::string_view::npos) dot = field.size();
    const std::string key(field.substr(pos, dot - pos));
    std::vector<const nlohmann::json*> next;
    for (const nlohmann::json* v : level) {
      // Arrays of objects on the way (smb.dcerpc.interfaces.service): descend into each element.
      auto visit = [&](const nlohmann::json& o) {
        if (!o.is_object()) return;
        const auto it = o.find(key);
        if (it != o.end()) next.push_back(&*it);
      };
      if (v->is_array()) {
        for (const auto& e : *v) visit(e);
      } else {
        visit(*v);
      }
    }
    level = std::move(next);
    if (level.empty()) return;
    pos = dot + 1;
  }
  auto add = [&](const nlohmann::json& v) {
    if (v.is_string()) {
      out->push_back(v.get_ref<const std::string&>());
    } else if (v.is_null()) {
      out->push_back("null");
    } else {
      out->push_back(v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    }
  };
  for (const nlohmann::json* v : level) {
    if (v->is_array()) {
      for (const auto& e : *v) add(e);
    } else {
      add(*v);
    }
  }
}

}  // namespace

// Windows with fewer events than this are scanned rather than FTS-prefiltered (see Scan).
constexpr int64_t kSmallWindow = 50'000;

// Runs the candidate pipeline, calling `on_match(stmt, parsed event)` for each matching event
// in order; on_match returns false to stop. Columns: kEventColumns. Returns false on an SQL
// error (last_error set).
// Candidates of the FTS path arrive in id order, unsorted: sorting them in SQL would sort every
// candidate row with its JSON before the cheap checks (a 400 000-row temporary B-tree for
// `*.JOB AND SMB` over 60 days); *ordered tells the caller whether rows came in time order.
template <typename F>
static bool Scan(Store::Impl& m, const query::Query& q, const SearchOptions& o, bool* ordered,
                 F&& on_match) {
  const std::string prefilter = q.Fts5Prefilter();
  FragmentFilter fragments(q);
  const std::string order =
      o.newest_first ? " ORDER BY ts_ns DESC, id DESC" : " ORDER BY ts_ns ASC, id ASC";
  const std::string base =
      std::string("SELECT ") + kEventColumns + " FROM events WHERE ts_ns >= ?1 AND ts_ns <= ?2";
  // SQLite materialises the FTS candidates of the whole history before applying the time
  // range, so a broad prefilter ("smb") costs the same for one day as for sixty. When the window
  // itself holds few events, scanning it is cheaper: the fragment check still spares most
  // parses.
  bool window_small = false;
  if (!prefilter.empty() && (o.from_ns != std::numeric_limits<int64_t>::min() ||
                             o.to_ns != std::numeric_limits<int64_t>::max())) {
    Stmt* c = m.Prepare(
        "SELECT count(*) FROM (SELECT 1 FROM events WHERE ts_ns >= ?1 AND ts_ns <= ?2 LIMIT ?3)");
    if (c) {
      StmtScope scope(c);
      c->Bind(1, o.from_ns);
      c->Bind(2, o.to_ns);
      c->Bind(3, kSmallWindow);
      window_small = c->Step() == SQLITE_ROW && c->Int(0) < kSmallWindow;
    }
  }
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool use_fts = attempt == 0 && !prefilter.empty() && !window_small;
    if (attempt == 1 && window_small) break;
    if (attempt == 1 && prefilter.empty()) break;
    const std::string sql =
        use_fts ? base + " AND id IN (SELECT rowid FROM events_fts WHERE events_fts MATCH ?3)"
                : base + order;
    *ordered = !use_fts;
    Stmt* s = m.Prepare(sql);
    if (!s) return false;
    StmtScope scope(s);
    s->Bind(1, o.from_ns);
    s->Bind(2, o.to_ns);
    if (use_fts) s->Bind(3, std::string_view(prefilter));
    int rc;
    bool any_row = false;
    while ((rc = s->Step()) == SQLITE_ROW) {
      any_row = true;
      const std::string_view json = s->View(7);
      if (!fragments.MayMatch(json)) continue;
      const auto j = nlohmann::json::parse(json, nullptr, false);
      if (j.is_discarded() || !q.Matches(j)) continue;
      if (!on_match(*s, j)) return true;
    }
    if (rc == SQLITE_DONE) return true;
    m.last_error = m.ErrorText(use_fts ? "search (fts prefilter '" + prefilter + "')" : "search");
    // A prefilter FTS5 rejects (a bug in its derivation) must not lose results: it is only an
    // optimisation, so retry with the plain scan, unless rows were already delivered.
    if (!use_fts || any_row) return false;
  }
  return false;
}

std::vector<StoredEvent> Store::Search(const query::Query& q, const SearchOptions& o,
                                       uint64_t* total, std::string* error) {
  Impl& m = *impl_;
  m.last_error.clear();
  std::vector<StoredEvent> out;
  // (ts, id) of every match: 16 bytes each, sorted afterwards when the scan was unordered; only
  // the `limit` events returned are read whole.
  std::vector<std::pair<int64_t, int64_t>> hits;
  bool ordered = false;
  const bool ok = Scan(m, q, o, &ordered, [&](const Stmt& s, const nlohmann::json&) {
    hits.emplace_back(s.Int(3), s.Int(0));
    // In order and nobody wants the total: the first `limit` are the answer.
    return !(ordered && !total && hits.size() >= o.limit);
  });
  if (!ordered) {
    if (o.newest_first) {
      std::sort(hits.begin(), hits.end(), std::greater<>());
    } else {
      std::sort(hits.begin(), hits.end());
    }
  }
  if (total) *total = hits.size();
  if (!ok && error) *error = m.last_error;
  const size_t n = std::min(hits.size(), o.limit);
  Stmt* s = m.Prepare(std::string("SELECT ") + kEventColumns + " FROM events WHERE id = ?1");
  if (!s) return out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    StmtScope scope(s);
    s->Bind(1, hits[i].second);
    if (s->Step() == SQLITE_ROW) {
      out.emplace_back();
      m.ReadEvent(*s, &out.back());
    }
  }
  return out;
}

std::vector<std::pair<std::string, uint64_t>> Store::Count(const query::Query& q,
                                                           const SearchOptions& o, CountBy by,
                                                           const std::string& field,
                                                           std::string* error) {
  Impl& m = *impl_;
  m.last_error.clear();
  std::vector<std::pair<std::string, uint64_t>> out;
  if (by == CountBy::kField && field.empty()) {
    m.last_error = "count by field: no field given";
    if (error) *error = m.last_error;
    return out;
  }
  std::map<std::string, uint64_t> buckets;
  std::vector<std::string> values;
  bool ordered = false;
  const bool ok = Scan(m, q, o, &ordered, [&](const Stmt& s, const nlohmann::json& j) {
    switch (by) {
      case CountBy::kDay:
        ++buckets[DayKey(s.Int(3))];
        break;
      case CountBy::kHour:
        ++buckets[HourKey(s.Int(3))];
        break;
      case CountBy::kField:
        values.clear();
        FieldValues(j, field, &values);
        for (const std::string& v : values) ++buckets[v];
        break;
    }
    return true;
  });
  if (!ok && error) *error = m.last_error;
  out.assign(buckets.begin(), buckets.end());
  if (by == CountBy::kField) {
    std::stable_sort(out.begin(), out.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    if (out.size() > o.limit) out.resize(o.limit);
  }
  return out;
}

std::vector<StoredEvent> Store::EventsOfFlows(std::span<const uint64_t> flow_ids, int64_t from_ns,
                                              int64_t to_ns) {
  Impl& m = *impl_;
  m.last_error.clear();
  std::vector<StoredEvent> out;
  Stmt* s = m.Prepare(std::string("SELECT ") + kEventColumns +
                      " FROM events WHERE flow_id = ?1 AND ts_ns >= ?2 AND ts_ns <= ?3");
  if (!s) return out;
  std::vector<uint64_t> ids(flow_ids.begin(), flow_ids.end());
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  for (const uint64_t f : ids) {
    StmtScope scope(s);
    int64_t signed_id;
    std::memcpy(&signed_id, &f, sizeof signed_id);
    s->Bind(1, signed_id);
    s->Bind(2, from_ns);
    s->Bind(3, to_ns);
    int rc;
    while ((rc = s->Step()) == SQLITE_ROW) {
      out.emplace_back();
      m.ReadEvent(*s, &out.back());
    }
    if (rc != SQLITE_DONE) m.last_error = m.ErrorText("events of flows");
  }
  std::sort(out.begin(), out.end(), [](const StoredEvent& a, const StoredEvent& b) {
    return a.ts_ns != b.ts_ns ? a.ts_ns < b.ts_ns : a.id < b.id;
  });
  return out;
}

bool Store::ForEachEventSince(int64_t from_ns, const std::function<bool(const StoredEvent&)>& fn,
                              std::string* error) {
  Impl& m = *impl_;
  m.last_error.clear();
  // By id (the order events were stored and evaluated in), from the first one in the range.
  Stmt* s = m.Prepare(std::string("SELECT ") + kEventColumns +
                      " FROM events WHERE id >= (SELECT min(id) FROM events WHERE ts_ns >= ?1) "
                      "AND ts_ns >= ?1 ORDER BY id");
  if (!s) {
    if (error) *error = m.last_error;
    return false;
  }
  StmtScope scope(s);
  s->Bind(1, from_ns);
  StoredEvent e;
  int rc;
  while ((rc = s->Step()) == SQLITE_ROW) {
    m.ReadEvent(*s, &e);
    if (!fn(e)) return true;
  }
  if (rc != SQLITE_DONE) {
    m.last_error = m.ErrorText("events since");
    if (error) *error = m.last_error;
    return false;
  }
  return true;
}

std::optional<StoredEvent> Store::Event(int64_t id) {
  Impl& m = *impl_;
  m.last_error.clear();
  Stmt* s = m.Prepare(std::string("SELECT ") + kEventColumns + " FROM events WHERE id = ?1");
  if (!s) return std::nullopt;
  StmtScope scope(s);
  s->Bind(1, id);
  const int rc = s->Step();
  if (rc != SQLITE_ROW) {
    if (rc != SQLITE_DONE) m.last_error = m.ErrorText("event");
    return std::nullopt;
  }
  StoredEvent e;
  m.ReadEvent(*s, &e);
  return e;
}

}  // namespace vigil::ctl::store
