// Store: response actions and their audit log (control/respond decides them; see store.h). An
// action and the audit row saying why it changed commit together with synchronous=FULL, like
// breaches: an operator's "cleared" or "confirmed" must not be lost to a power cut. The counters
// read back from the dataplane are statistics and commit with the ordinary NORMAL sync.
#include <sqlite3.h>

#include <algorithm>

#include "control/store/store.h"
#include "control/store/store_internal.h"

namespace vigil::ctl::store {
namespace {

constexpr const char* kActionColumns =
    "id, breach_id, model, kind, addr, peer, client_port, server_port, proto, mode, state, "
    "created_ns, expires_ns, duration_ns, changed_ns, reason, drops, resets, first_drop_ns, "
    "counters_ns";

void ReadAction(const Stmt& s, Action* a) {
  a->id = s.Int(0);
  a->breach_id = s.IsNull(1) ? 0 : s.Int(1);
  a->model = s.Text(2);
  a->kind = s.Text(3);
  a->addr = s.Text(4);
  a->peer = s.Text(5);
  a->client_port = static_cast<uint16_t>(s.Int(6));
  a->server_port = static_cast<uint16_t>(s.Int(7));
  a->proto = static_cast<uint8_t>(s.Int(8));
  a->mode = s.Text(9);
  a->state = s.Text(10);
  a->created_ns = s.Int(11);
  a->expires_ns = s.Int(12);
  a->duration_ns = s.Int(13);
  a->changed_ns = s.Int(14);
  a->reason = s.Text(15);
  a->drops = static_cast<uint64_t>(s.Int(16));
  a->resets = static_cast<uint64_t>(s.Int(17));
  a->first_drop_ns = s.Int(18);
  a->counters_ns = s.Int(19);
}

void ReadAudit(const Stmt& s, AuditEntry* e) {
  e->id = s.Int(0);
  e->ts_ns = s.Int(1);
  e->who = s.Text(2);
  e->action_id = s.IsNull(3) ? 0 : s.Int(3);
  e->op = s.Text(4);
  e->detail = s.Text(5);
}

int64_t Limit(size_t limit) { return static_cast<int64_t>(std::min<size_t>(limit, INT64_MAX)); }

}  // namespace

bool InsertAuditRow(Store::Impl& m, const AuditEntry& e, int64_t action_id) {
  Stmt* s = m.Prepare(
      "INSERT INTO respond_audit(ts_ns, who, action_id, op, detail) VALUES(?1,?2,?3,?4,?5)");
  if (!s) return false;
  StmtScope scope(s);
  s->Bind(1, e.ts_ns);
  s->Bind(2, std::string_view(e.who));
  if (action_id != 0) {
    s->Bind(3, action_id);
  } else {
    s->BindNull(3);
  }
  s->Bind(4, std::string_view(e.op));
  s->Bind(5, std::string_view(e.detail));
  return s->Step() == SQLITE_DONE;
}

int64_t Store::SaveAction(const Action& a, const AuditEntry& audit, std::string* error) {
  Impl& m = *impl_;
  std::string dummy;
  if (!error) error = &dummy;
  m.last_error.clear();
  Stmt* ins = m.Prepare(
      "INSERT INTO respond_actions(breach_id, model, kind, addr, peer, client_port, server_port, "
      "proto, mode, state, created_ns, expires_ns, duration_ns, changed_ns, reason) "
      "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15)");
  Stmt* upd = m.Prepare(
      "UPDATE respond_actions SET breach_id=?1, model=?2, kind=?3, addr=?4, peer=?5, "
      "client_port=?6, server_port=?7, proto=?8, mode=?9, state=?10, created_ns=?11, "
      "expires_ns=?12, duration_ns=?13, changed_ns=?14, reason=?15 WHERE id=?16");
  if (!ins || !upd) {
    *error = m.last_error;
    return 0;
  }
  int64_t id = a.id;
  bool found = true;
  const bool ok = DurableTransaction(
      m,
      [&] {
        Stmt* s = a.id == 0 ? ins : upd;
        {
          StmtScope scope(s);
          if (a.breach_id != 0) {
            s->Bind(1, a.breach_id);
          } else {
            s->BindNull(1);
          }
          s->Bind(2, std::string_view(a.model));
          s->Bind(3, std::string_view(a.kind));
          s->Bind(4, std::string_view(a.addr));
          s->Bind(5, std::string_view(a.peer));
          s->Bind(6, static_cast<int64_t>(a.client_port));
          s->Bind(7, static_cast<int64_t>(a.server_port));
          s->Bind(8, static_cast<int64_t>(a.proto));
          s->Bind(9, std::string_view(a.mode));
          s->Bind(10, std::string_view(a.state));
          s->Bind(11, a.created_ns);
          s->Bind(12, a.expires_ns);
          s->Bind(13, a.duration_ns);
          s->Bind(14, a.changed_ns);
          s->Bind(15, std::string_view(a.reason));
          if (a.id != 0) s->Bind(16, a.id);
          if (s->Step() != SQLITE_DONE) return false;
        }
        if (a.id == 0) {
          id = sqlite3_last_insert_rowid(m.db);
        } else if (sqlite3_changes(m.db) == 0) {
          found = false;
          m.last_error = "no action with id " + std::to_string(a.id);
          return false;
        }
        return InsertAuditRow(m, audit, id);
      },
      error);
  if (!found) *error = "no action with id " + std::to_string(a.id);
  return ok ? id : 0;
}

int64_t Store::InsertAudit(const AuditEntry& e, std::string* error) {
  Impl& m = *impl_;
  std::string dummy;
  if (!error) error = &dummy;
  m.last_error.clear();
  int64_t id = 0;
  const bool ok = DurableTransaction(
      m,
      [&] {
        if (!InsertAuditRow(m, e, e.action_id)) return false;
        id = sqlite3_last_insert_rowid(m.db);
        return true;
      },
      error);
  return ok ? id : 0;
}

std::optional<Action> Store::GetAction(int64_t id) {
  Impl& m = *impl_;
  m.last_error.clear();
  Stmt* s =
      m.Prepare(std::string("SELECT ") + kActionColumns + " FROM respond_actions WHERE id=?1");
  if (!s) return std::nullopt;
  StmtScope scope(s);
  s->Bind(1, id);
  const int rc = s->Step();
  if (rc != SQLITE_ROW) {
    if (rc != SQLITE_DONE) m.last_error = m.ErrorText("action");
    return std::nullopt;
  }
  Action a;
  ReadAction(*s, &a);
  return a;
}

std::vector<Action> Store::Actions(const std::string& state, size_t limit) {
  Impl& m = *impl_;
  m.last_error.clear();
  std::vector<Action> out;
  Stmt* s = m.Prepare(std::string("SELECT ") + kActionColumns +
                      " FROM respond_actions WHERE (?1 = '' OR state = ?1) ORDER BY id DESC "
                      "LIMIT ?2");
  if (!s) return out;
  StmtScope scope(s);
  s->Bind(1, std::string_view(state));
  s->Bind(2, Limit(limit));
  int rc;
  while ((rc = s->Step()) == SQLITE_ROW) {
    out.emplace_back();
    ReadAction(*s, &out.back());
  }
  if (rc != SQLITE_DONE) m.last_error = m.ErrorText("actions");
  return out;
}

std::vector<Action> Store::ActionsOfBreach(int64_t breach_id) {
  Impl& m = *impl_;
  m.last_error.clear();
  std::vector<Action> out;
  Stmt* s = m.Prepare(std::string("SELECT ") + kActionColumns +
                      " FROM respond_actions WHERE breach_id = ?1 ORDER BY id");
  if (!s) return out;
  StmtScope scope(s);
  s->Bind(1, breach_id);
  int rc;
  while ((rc = s->Step()) == SQLITE_ROW) {
    out.emplace_back();
    ReadAction(*s, &out.back());
  }
  if (rc != SQLITE_DONE) m.last_error = m.ErrorText("actions of breach");
  return out;
}

std::vector<AuditEntry> Store::Audit(int64_t action_id, size_t limit) {
  Impl& m = *impl_;
  m.last_error.clear();
  std::vector<AuditEntry> out;
  Stmt* s = m.Prepare(
      "SELECT id, ts_ns, who, action_id, op, detail FROM respond_audit "
      "WHERE (?1 = 0 OR action_id = ?1) ORDER BY id DESC LIMIT ?2");
  if (!s) return out;
  StmtScope scope(s);
  s->Bind(1, action_id);
  s->Bind(2, Limit(limit));
  int rc;
  while ((rc = s->Step()) == SQLITE_ROW) {
    out.emplace_back();
    ReadAudit(*s, &out.back());
  }
  if (rc != SQLITE_DONE) m.last_error = m.ErrorText("audit");
  return out;
}

bool Store::UpdateActionCounters(std::span<const ActionCounters> counters, int64_t read_ns,
                                 std::string* error) {
  Impl& m = *impl_;
  std::string dummy;
  if (!error) error = &dummy;
  m.last_error.clear();
  if (m.options.read_only) {
    *error = m.path + ": store is open read-only";
    return false;
  }
  if (counters.empty()) return true;
  Stmt* s = m.Prepare(
      "UPDATE respond_actions SET drops=?2, resets=?3, first_drop_ns=?4, counters_ns=?5 "
      "WHERE id=?1");
  if (!s || !m.Begin("action_counters")) {
    *error = m.last_error;
    return false;
  }
  for (const ActionCounters& c : counters) {
    StmtScope scope(s);
    s->Bind(1, c.id);
    s->Bind(2, static_cast<int64_t>(c.drops));
    s->Bind(3, static_cast<int64_t>(c.resets));
    s->Bind(4, c.first_drop_ns);
    s->Bind(5, read_ns);
    if (s->Step() != SQLITE_DONE) {
      *error = m.ErrorText("action counters");
      m.Rollback("action_counters");
      return false;
    }
  }
  if (!m.Commit("action_counters")) {
    *error = m.last_error;
    m.Rollback("action_counters");
    return false;
  }
  return true;
}

}  // namespace vigil::ctl::store
