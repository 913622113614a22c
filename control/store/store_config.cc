// Store: pushed configuration versions (control/config).
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "control/store/store_internal.h"

namespace vigil::ctl::store {
namespace {

constexpr const char* kConfigColumns = "seq, version, hash, pushed_ns, who, state, summary";

void ReadConfig(const Stmt& s, bool with_document, ConfigVersion* v) {
  v->seq = s.Int(0);
  v->version = s.Text(1);
  v->hash = s.Text(2);
  v->pushed_ns = s.Int(3);
  v->who = s.Text(4);
  v->state = s.Text(5);
  v->summary = s.Text(6);
  if (with_document) v->document = s.Text(7);
}

std::optional<ConfigVersion> QueryOneConfig(Store::Impl& m, const std::string& where,
                                            const std::string* bind) {
  m.last_error.clear();
  Stmt* s = m.Prepare(std::string("SELECT ") + kConfigColumns +
                      ", document FROM config_versions WHERE " + where + " LIMIT 1");
  if (!s) return std::nullopt;
  StmtScope scope(s);
  if (bind != nullptr) s->Bind(1, std::string_view(*bind));
  const int rc = s->Step();
  if (rc != SQLITE_ROW) {
    if (rc != SQLITE_DONE) m.last_error = m.ErrorText("config_versions");
    return std::nullopt;
  }
  ConfigVersion v;
  ReadConfig(*s, true, &v);
  return v;
}

}  // namespace

int64_t Store::ActivateConfig(const ConfigVersion& v, const std::string& previous_state,
                              const AuditEntry& audit, std::string* error) {
  Impl& m = *impl_;
  std::string dummy;
  if (!error) error = &dummy;
  m.last_error.clear();
  int64_t seq = 0;
  const bool ok = DurableTransaction(
      m,
      [&] {
        Stmt* old = m.Prepare("UPDATE config_versions SET state=?1 WHERE state='active'");
        if (!old) return false;
        {
          StmtScope scope(old);
          old->Bind(1, std::string_view(previous_state));
          if (old->Step() != SQLITE_DONE) return false;
        }
        Stmt* again =
            m.Prepare("UPDATE config_versions SET state='active' WHERE version=?1 RETURNING seq");
        if (!again) return false;
        {
          StmtScope scope(again);
          again->Bind(1, std::string_view(v.version));
          const int rc = again->Step();
          if (rc == SQLITE_ROW) seq = again->Int(0);
          while (rc == SQLITE_ROW && again->Step() == SQLITE_ROW) {
          }
        }
        if (seq == 0) {
          Stmt* ins = m.Prepare(
              "INSERT INTO config_versions(version, hash, pushed_ns, who, state, summary, "
              "document) VALUES(?1,?2,?3,?4,'active',?5,?6)");
          if (!ins) return false;
          StmtScope scope(ins);
          ins->Bind(1, std::string_view(v.version));
          ins->Bind(2, std::string_view(v.hash));
          ins->Bind(3, v.pushed_ns);
          ins->Bind(4, std::string_view(v.who));
          ins->Bind(5, std::string_view(v.summary));
          ins->Bind(6, std::string_view(v.document));
          if (ins->Step() != SQLITE_DONE) return false;
          seq = sqlite3_last_insert_rowid(m.db);
        }
        return InsertAuditRow(m, audit, 0);
      },
      error);
  return ok ? seq : 0;
}

std::optional<ConfigVersion> Store::ActiveConfig() {
  return QueryOneConfig(*impl_, "state='active'", nullptr);
}

std::optional<ConfigVersion> Store::FindConfig(const std::string& version) {
  return QueryOneConfig(*impl_, "version=?1", &version);
}

std::optional<ConfigVersion> Store::PreviousConfig() {
  return QueryOneConfig(*impl_,
                        "state='superseded' AND seq < (SELECT seq FROM config_versions WHERE "
                        "state='active') ORDER BY seq DESC",
                        nullptr);
}

std::vector<ConfigVersion> Store::ConfigHistory(size_t limit) {
  Impl& m = *impl_;
  m.last_error.clear();
  std::vector<ConfigVersion> out;
  Stmt* s = m.Prepare(std::string("SELECT ") + kConfigColumns +
                      " FROM config_versions ORDER BY seq DESC LIMIT ?1");
  if (!s) return out;
  StmtScope scope(s);
  s->Bind(1, static_cast<int64_t>(std::min<size_t>(limit, INT64_MAX)));
  int rc;
  while ((rc = s->Step()) == SQLITE_ROW) {
    out.emplace_back();
    ReadConfig(*s, false, &out.back());
  }
  if (rc != SQLITE_DONE) m.last_error = m.ErrorText("config_versions");
  return out;
}

}  // namespace vigil::ctl::store
