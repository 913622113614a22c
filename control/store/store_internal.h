// Internals shared by the store's translation units (store.cc, store_search.cc,
// store_breach.cc): the SQLite statement wrapper and Store::Impl. Not a public interface.
// Thread rules: as Store (one thread at a time per Impl).
#ifndef VIGIL_CONTROL_STORE_STORE_INTERNAL_H_
#define VIGIL_CONTROL_STORE_STORE_INTERNAL_H_

#include <sqlite3.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "control/store/store.h"

namespace vigil::ctl::store {

// A prepared statement, reset (not finalized) between uses: the Impl caches them by SQL text.
class Stmt {
 public:
  Stmt() = default;
  explicit Stmt(sqlite3_stmt* s) : s_(s) {}
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  sqlite3_stmt* get() const { return s_; }
  explicit operator bool() const { return s_ != nullptr; }

  void Bind(int i, int64_t v) { sqlite3_bind_int64(s_, i, v); }
  void Bind(int i, double v) { sqlite3_bind_double(s_, i, v); }
  // SQLITE_TRANSIENT would copy; callers keep the text alive until the step, so STATIC is safe.
  void Bind(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
  }
  void BindNull(int i) { sqlite3_bind_null(s_, i); }
  int Step() { return sqlite3_step(s_); }
  void Reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  int64_t Int(int c) const { return sqlite3_column_int64(s_, c); }
  double Double(int c) const { return sqlite3_column_double(s_, c); }
  bool IsNull(int c) const { return sqlite3_column_type(s_, c) == SQLITE_NULL; }
  std::string Text(int c) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, c));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s_, c))) : std::string();
  }
  std::string_view View(int c) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s_, c));
    return p ? std::string_view(p, static_cast<size_t>(sqlite3_column_bytes(s_, c)))
             : std::string_view();
  }

 private:
  sqlite3_stmt* s_ = nullptr;
};

// Resets a cached statement when a scope ends, whatever path it leaves by.
class StmtScope {
 public:
  explicit StmtScope(Stmt* s) : s_(s) {}
  ~StmtScope() {
    if (s_ && *s_) s_->Reset();
  }
  StmtScope(const StmtScope&) = delete;
  StmtScope& operator=(const StmtScope&) = delete;

 private:
  Stmt* s_;
};

struct Store::Impl {
  Options options;
  std::string path;
  sqlite3* db = nullptr;
  int lock_fd = -1;
  std::string last_error;
  uint64_t rejected = 0;
  // Writer: sensor name -> (id, last_seq), authoritative while the lock is held. Readers reload
  // on a miss because the writer may add sensors.
  struct SensorRow {
    int64_t id;
    uint64_t last_seq;
  };
  std::map<std::string, SensorRow> sensors;
  std::unordered_map<int64_t, std::string> sensor_names;
  std::map<std::string, std::unique_ptr<Stmt>, std::less<>> stmts;
  // Inside BeginBatch .. CommitBatch/RollbackBatch: the writes below become savepoints of the
  // batch's transaction. `batch_durable`: a durable write (breach) happened in the batch.
  bool in_batch = false;
  bool batch_durable = false;

  ~Impl();
  // The cached prepared statement for `sql`; an empty Stmt (and last_error set) on failure.
  Stmt* Prepare(std::string_view sql);
  // Runs SQL without results; false with last_error set on failure.
  bool Exec(const char* sql);
  // A write transaction of its own, or a savepoint `name` when a batch is open.
  bool Begin(const char* name);
  bool Commit(const char* name);
  void Rollback(const char* name);
  // Makes every commit so far durable (an fsync of the WAL): a tiny synchronous=FULL transaction;
  // the WAL is append-only, so its fsync covers the earlier synchronous=NORMAL commits too.
  bool DurableBarrier();
  std::string ErrorText(std::string_view what) const;
  bool LoadSensors();
  const std::string& SensorName(int64_t id);
  // Fills `e` from a row of kEventColumns starting at column 0.
  void ReadEvent(const Stmt& s, StoredEvent* e);
};

// One row of respond_audit (store_respond.cc), inside the caller's transaction.
bool InsertAuditRow(Store::Impl& m, const AuditEntry& e, int64_t action_id);

// Commits the transaction `body` runs in with a full fsync of the WAL, whatever happens (a
// savepoint of the caller's batch when one is open, made durable by CommitBatch).
template <typename F>
bool DurableTransaction(Store::Impl& m, F&& body, std::string* error) {
  if (m.options.read_only) {
    *error = m.path + ": store is open read-only";
    return false;
  }
  if (m.in_batch) {  // part of the caller's batch, made durable by CommitBatch
    if (!m.Begin("durable")) {
      *error = m.last_error;
      return false;
    }
    bool ok = body() && m.Commit("durable");
    if (!ok) {
      if (m.last_error.empty()) m.last_error = m.ErrorText("breach");
      *error = m.last_error;
      m.Rollback("durable");
    } else {
      m.batch_durable = true;
    }
    return ok;
  }
  // synchronous cannot change inside a transaction; set it for this one and restore it after.
  if (!m.Exec("PRAGMA synchronous=FULL") || !m.Exec("BEGIN IMMEDIATE")) {
    *error = m.last_error;
    m.Exec("PRAGMA synchronous=NORMAL");
    return false;
  }
  bool ok = body();
  if (ok) ok = m.Exec("COMMIT");
  if (!ok) {
    if (m.last_error.empty()) m.last_error = m.ErrorText("breach");
    *error = m.last_error;
    m.Exec("ROLLBACK");
  }
  m.Exec("PRAGMA synchronous=NORMAL");
  return ok;
}

// Columns every event SELECT returns, in the order ReadEvent expects.
inline constexpr const char* kEventColumns =
    "id, sensor_id, seq, ts_ns, event_type, flow_id, message, json";

}  // namespace vigil::ctl::store

#endif  // VIGIL_CONTROL_STORE_STORE_INTERNAL_H_
