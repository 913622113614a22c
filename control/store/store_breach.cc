// Store: breaches and their event logs. Writes here commit with synchronous=FULL so that a
// breach (or an analyst's acknowledgement) reported as stored survives a power loss, not only a
// process crash; the pragma is switched back to NORMAL for the event batches that follow.
#include <sqlite3.h>

#include "control/store/store.h"
#include "control/store/store_internal.h"

namespace vigil::ctl::store {

int64_t Store::InsertBreach(const Breach& b, std::string* error) {
  Impl& m = *impl_;
  std::string dummy;
  if (!error) error = &dummy;
  m.last_error.clear();
  Stmt* ins = m.Prepare(
      "INSERT INTO breaches(model, priority, device, ts_ns, score, component, filter, details) "
      "VALUES(?1,?2,?3,?4,?5,?6,?7,?8)");
  // An event listed twice (as trigger and as same-flow context) is a trigger.
  Stmt* ev = m.Prepare(
      "INSERT INTO breach_events(breach_id, event_id, is_trigger) VALUES(?1,?2,?3) "
      "ON CONFLICT(breach_id, event_id) DO UPDATE SET is_trigger = max(is_trigger, "
      "excluded.is_trigger)");
  if (!ins || !ev) {
    *error = m.last_error;
    return 0;
  }
  int64_t id = 0;
  const bool ok = DurableTransaction(
      m,
      [&] {
        {
          StmtScope scope(ins);
          ins->Bind(1, std::string_view(b.model));
          ins->Bind(2, static_cast<int64_t>(b.priority));
          ins->Bind(3, std::string_view(b.device));
          ins->Bind(4, b.ts_ns);
          ins->Bind(5, b.score);
          ins->Bind(6, static_cast<int64_t>(b.component));
          ins->Bind(7, std::string_view(b.filter));
          ins->Bind(8, b.details_json.empty() ? std::string_view("{}")
                                              : std::string_view(b.details_json));
          if (ins->Step() != SQLITE_DONE) return false;
        }
        id = sqlite3_last_insert_rowid(m.db);
        for (const BreachEventRef& r : b.events) {
          StmtScope scope(ev);
          ev->Bind(1, id);
          ev->Bind(2, r.event_id);
          ev->Bind(3, static_cast<int64_t>(r.trigger ? 1 : 0));
          if (ev->Step() != SQLITE_DONE) return false;
        }
        return true;
      },
      error);
  return ok ? id : 0;
}

namespace {

constexpr const char* kBreachColumns =
    "id, model, priority, device, ts_ns, score, component, filter, details, acknowledged, "
    "comment";

void ReadBreach(const Stmt& s, Breach* b) {
  b->id = s.Int(0);
  b->model = s.Text(1);
  b->priority = static_cast<int>(s.Int(2));
  b->device = s.Text(3);
  b->ts_ns = s.Int(4);
  b->score = s.Double(5);
  b->component = static_cast<int>(s.Int(6));
  b->filter = s.Text(7);
  b->details_json = s.Text(8);
  b->acknowledged = s.Int(9) != 0;
  b->comment = s.Text(10);
}

bool ReadRefs(Store::Impl& m, Breach* b) {
  Stmt* s =
      m.Prepare("SELECT event_id, is_trigger FROM breach_events WHERE breach_id=?1 ORDER BY 1");
  if (!s) return false;
  StmtScope scope(s);
  s->Bind(1, b->id);
  int rc;
  while ((rc = s->Step()) == SQLITE_ROW) b->events.push_back({s->Int(0), s->Int(1) != 0});
  return rc == SQLITE_DONE;
}

}  // namespace

std::vector<Breach> Store::Breaches(const std::string& model, int64_t since_ns, size_t limit) {
  Impl& m = *impl_;
  m.last_error.clear();
  std::vector<Breach> out;
  Stmt* s = m.Prepare(std::string("SELECT ") + kBreachColumns +
                      " FROM breaches WHERE (?1 = '' OR model = ?1) AND ts_ns >= ?2 "
                      "ORDER BY ts_ns DESC, id DESC LIMIT ?3");
  if (!s) return out;
  {
    StmtScope scope(s);
    s->Bind(1, std::string_view(model));
    s->Bind(2, since_ns);
    s->Bind(3, static_cast<int64_t>(std::min<size_t>(limit, INT64_MAX)));
    int rc;
    while ((rc = s->Step()) == SQLITE_ROW) {
      out.emplace_back();
      ReadBreach(*s, &out.back());
    }
    if (rc != SQLITE_DONE) m.last_error = m.ErrorText("breaches");
  }
  for (Breach& b : out) ReadRefs(m, &b);
  return out;
}

std::vector<Store::LastBreach> Store::LastBreaches(int64_t since_ns) {
  Impl& m = *impl_;
  m.last_error.clear();
  std::vector<LastBreach> out;
  Stmt* s = m.Prepare(
      "SELECT model, device, max(ts_ns) FROM breaches WHERE ts_ns >= ?1 GROUP BY model, device");
  if (!s) return out;
  StmtScope scope(s);
  s->Bind(1, since_ns);
  int rc;
  while ((rc = s->Step()) == SQLITE_ROW) out.push_back({s->Text(0), s->Text(1), s->Int(2)});
  if (rc != SQLITE_DONE) m.last_error = m.ErrorText("last breaches");
  return out;
}

std::optional<Breach> Store::GetBreach(int64_t id) {
  Impl& m = *impl_;
  m.last_error.clear();
  Stmt* s = m.Prepare(std::string("SELECT ") + kBreachColumns + " FROM breaches WHERE id=?1");
  if (!s) return std::nullopt;
  Breach b;
  {
    StmtScope scope(s);
    s->Bind(1, id);
    const int rc = s->Step();
    if (rc != SQLITE_ROW) {
      if (rc != SQLITE_DONE) m.last_error = m.ErrorText("breach");
      return std::nullopt;
    }
    ReadBreach(*s, &b);
  }
  if (!ReadRefs(m, &b)) {
    m.last_error = m.ErrorText("breach events");
    return std::nullopt;
  }
  return b;
}

bool Store::AcknowledgeBreach(int64_t id, const std::string& comment, std::string* error) {
  return UpdateBreach(id, {.acknowledged = true, .comment = comment}, error);
}

bool Store::UpdateBreach(int64_t id, const BreachUpdate& u, std::string* error) {
  Impl& m = *impl_;
  std::string dummy;
  if (!error) error = &dummy;
  m.last_error.clear();
  // ?2/?3 NULL: keep the column as it is.
  Stmt* s = m.Prepare(
      "UPDATE breaches SET acknowledged = coalesce(?2, acknowledged), "
      "comment = coalesce(?3, comment) WHERE id=?1");
  if (!s) {
    *error = m.last_error;
    return false;
  }
  bool found = false;
  const bool ok = DurableTransaction(
      m,
      [&] {
        StmtScope scope(s);
        s->Bind(1, id);
        if (u.acknowledged) s->Bind(2, static_cast<int64_t>(*u.acknowledged ? 1 : 0));
        if (u.comment) s->Bind(3, std::string_view(*u.comment));
        if (s->Step() != SQLITE_DONE) return false;
        found = sqlite3_changes(m.db) > 0;
        return true;
      },
      error);
  if (ok && !found) {
    *error = "no breach with id " + std::to_string(id);
    return false;
  }
  return ok;
}

}  // namespace vigil::ctl::store
