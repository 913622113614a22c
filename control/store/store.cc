// Store: opening and schema, event ingest with (sensor, seq) dedup, retention, statistics.
// Search lives in store_search.cc, breaches in store_breach.cc.
#include "control/store/store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>

#include "control/store/store_internal.h"

namespace vigil::ctl::store {
namespace {

// Version 2 added the response tables (kRespondSchema), version 3 the pushed configurations
// (kConfigSchema); an older store is upgraded in place by the writer when it opens it.
constexpr int kSchemaVersion = 3;
constexpr int64_t kNsPerSec = 1'000'000'000;
constexpr int64_t kNsPerDay = 86'400 * kNsPerSec;
// Rows per retention transaction: small enough that the writer lock (and the ingest it delays)
// is held for tens of milliseconds, large enough to amortise the commit.
constexpr int kRetentionChunk = 2000;

// The FTS5 table is contentless: the indexed text (query::IndexText of the event) is derived
// from the JSON we already store, so keeping a copy would add ~40% to every event for nothing
// but the ability to delete, and deletes can recompute it (see DeleteEvents). Tokenizer settings
// are the ones query.h prescribes so that Fts5Prefilter() agrees with the index.
constexpr const char* kSchema = R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE sensors(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
                     last_seq INTEGER NOT NULL DEFAULT 0);
CREATE TABLE events(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  sensor_id INTEGER NOT NULL,
  seq INTEGER NOT NULL,
  ts_ns INTEGER NOT NULL,
  event_type TEXT,
  src_ip TEXT,
  dest_ip TEXT,
  src_port INTEGER,
  dest_port INTEGER,
  proto TEXT,
  app_proto TEXT,
  flow_id INTEGER,
  message TEXT,
  json TEXT NOT NULL);
CREATE UNIQUE INDEX events_sensor_seq ON events(sensor_id, seq);
CREATE INDEX events_ts ON events(ts_ns);
CREATE INDEX events_src ON events(src_ip, ts_ns);
CREATE INDEX events_dest ON events(dest_ip, ts_ns);
CREATE INDEX events_type ON events(event_type, ts_ns);
CREATE INDEX events_flow ON events(flow_id);
CREATE VIRTUAL TABLE events_fts USING fts5(text, content='', columnsize=0,
    tokenize="unicode61 remove_diacritics 0 tokenchars '.$-_'");
CREATE TABLE breaches(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  model TEXT NOT NULL,
  priority INTEGER NOT NULL,
  device TEXT NOT NULL,
  ts_ns INTEGER NOT NULL,
  score REAL NOT NULL,
  component INTEGER NOT NULL,
  filter TEXT NOT NULL,
  details TEXT NOT NULL,
  acknowledged INTEGER NOT NULL DEFAULT 0,
  comment TEXT NOT NULL DEFAULT '');
CREATE INDEX breaches_ts ON breaches(ts_ns);
CREATE INDEX breaches_model ON breaches(model, ts_ns);
CREATE TABLE breach_events(
  breach_id INTEGER NOT NULL,
  event_id INTEGER NOT NULL,
  is_trigger INTEGER NOT NULL,
  PRIMARY KEY(breach_id, event_id)) WITHOUT ROWID;
)sql";

// Responses (control/respond): the actions control decided or an operator asked for, and the
// audit log of every operation on them. Action times are wall clock (CLOCK_REALTIME ns), unlike
// events and breaches, whose times are packet time.
// Pushed configurations (control/config): every accepted version with its document. `state`:
// active (exactly one, once anything was pushed), superseded, rolled_back.
constexpr const char* kConfigSchema = R"sql(
CREATE TABLE config_versions(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  version TEXT NOT NULL UNIQUE,
  hash TEXT NOT NULL,
  pushed_ns INTEGER NOT NULL,
  who TEXT NOT NULL,
  state TEXT NOT NULL,
  summary TEXT NOT NULL DEFAULT '',
  document TEXT NOT NULL
);
)sql";

constexpr const char* kRespondSchema = R"sql(
CREATE TABLE respond_actions(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  breach_id INTEGER,
  model TEXT NOT NULL DEFAULT '',
  kind TEXT NOT NULL,
  addr TEXT NOT NULL,
  peer TEXT NOT NULL DEFAULT '',
  client_port INTEGER NOT NULL DEFAULT 0,
  server_port INTEGER NOT NULL DEFAULT 0,
  proto INTEGER NOT NULL DEFAULT 0,
  mode TEXT NOT NULL,
  state TEXT NOT NULL,
  created_ns INTEGER NOT NULL,
  expires_ns INTEGER NOT NULL DEFAULT 0,
  duration_ns INTEGER NOT NULL DEFAULT 0,
  changed_ns INTEGER NOT NULL,
  reason TEXT NOT NULL DEFAULT '',
  drops INTEGER NOT NULL DEFAULT 0,
  resets INTEGER NOT NULL DEFAULT 0,
  first_drop_ns INTEGER NOT NULL DEFAULT 0,
  counters_ns INTEGER NOT NULL DEFAULT 0);
CREATE INDEX respond_actions_state ON respond_actions(state, id);
CREATE INDEX respond_actions_breach ON respond_actions(breach_id);
CREATE TABLE respond_audit(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  ts_ns INTEGER NOT NULL,
  who TEXT NOT NULL,
  action_id INTEGER,
  op TEXT NOT NULL,
  detail TEXT NOT NULL DEFAULT '');
CREATE INDEX respond_audit_action ON respond_audit(action_id, id);
)sql";

// An event whose text exercises every tokenisation rule. Its IndexText is kept in meta: if a
// new build tokenises differently, the contentless FTS index (whose deletes must repeat the
// exact indexed text) is rebuilt on open instead of silently diverging.
constexpr const char* kCanaryEvent =
    R"({"message":"SMB2 READ \\10.0.0.5\C$ Windows\Tasks\AV.job a+b,c;d:e=f(g)[h]{i}|j<k>l@m",)"
    R"("event_type":"smb","x":["Ünïcode ÉTÉ","tab\there"],"n":1})";

std::string CanaryText() {
  const auto j = nlohmann::json::parse(kCanaryEvent, nullptr, false);
  return query::IndexText(j);
}

int64_t ToSigned(uint64_t v) {
  int64_t s;
  std::memcpy(&s, &v, sizeof s);
  return s;
}

const nlohmann::json* Member(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  return it == j.end() ? nullptr : &*it;
}

void BindString(Stmt* s, int i, const nlohmann::json& j, const char* key) {
  const nlohmann::json* v = Member(j, key);
  if (v && v->is_string()) {
    s->Bind(i, std::string_view(v->get_ref<const std::string&>()));
  } else {
    s->BindNull(i);
  }
}

void BindInt(Stmt* s, int i, const nlohmann::json& j, const char* key) {
  const nlohmann::json* v = Member(j, key);
  if (v && v->is_number_unsigned()) {
    s->Bind(i, ToSigned(v->get<uint64_t>()));
  } else if (v && v->is_number_integer()) {
    s->Bind(i, v->get<int64_t>());
  } else {
    s->BindNull(i);
  }
}

// Howard Hinnant's days_from_civil / civil_from_days (proleptic Gregorian, UTC).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void CivilFromDays(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2);
}

bool Digits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

}  // namespace

std::optional<int64_t> ParseEveTimestamp(std::string_view ts) {
  int y, mo, d, h, mi, s;
  if (!Digits(ts, 0, 4, &y) || ts.size() < 19 || ts[4] != '-' || !Digits(ts, 5, 2, &mo) ||
      ts[7] != '-' || !Digits(ts, 8, 2, &d) || (ts[10] != 'T' && ts[10] != ' ') ||
      !Digits(ts, 11, 2, &h) || ts[13] != ':' || !Digits(ts, 14, 2, &mi) || ts[16] != ':' ||
      !Digits(ts, 17, 2, &s)) {
    return std::nullopt;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return std::nullopt;
  size_t pos = 19;
  int64_t frac = 0;
  if (pos < ts.size() && ts[pos] == '.') {
    ++pos;
    int64_t scale = 100'000'000;
    const size_t start = pos;
    while (pos < ts.size() && ts[pos] >= '0' && ts[pos] <= '9') {
      if (scale > 0) frac += (ts[pos] - '0') * scale;  // digits beyond ns are truncated
      scale /= 10;
      ++pos;
    }
    if (pos == start) return std::nullopt;
  }
  int64_t offset_s = 0;
  if (pos < ts.size()) {
    if (ts[pos] == 'Z' && pos + 1 == ts.size()) {
      ++pos;
    } else if (ts[pos] == '+' || ts[pos] == '-') {
      const int sign = ts[pos] == '-' ? -1 : 1;
      int oh, om;
      size_t p = pos + 1;
      if (!Digits(ts, p, 2, &oh)) return std::nullopt;
      p += 2;
      if (p < ts.size() && ts[p] == ':') ++p;
      if (!Digits(ts, p, 2, &om)) return std::nullopt;
      p += 2;
      if (p != ts.size() || oh > 23 || om > 59) return std::nullopt;
      offset_s = sign * (oh * 3600 + om * 60);
      pos = p;
    } else {
      return std::nullopt;
    }
  }
  if (pos != ts.size()) return std::nullopt;
  const int64_t days = DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  const int64_t secs = days * 86400 + h * 3600 + mi * 60 + s - offset_s;
  return secs * kNsPerSec + frac;
}

std::string DayKey(int64_t ts_ns) {
  int64_t y;
  unsigned m, d;
  CivilFromDays(FloorDiv(ts_ns, kNsPerDay), &y, &m, &d);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02u", static_cast<long long>(y), m, d);
  return buf;
}

std::string HourKey(int64_t ts_ns) {
  const int64_t hours = FloorDiv(ts_ns, 3600 * kNsPerSec);
  char buf[24];
  std::snprintf(buf, sizeof buf, "T%02lld",
                static_cast<long long>(hours - FloorDiv(hours, 24) * 24));
  return DayKey(ts_ns) + buf;
}

// ---------------------------------------------------------------------------------------------
// Impl

Store::Impl::~Impl() {
  for (auto& [sql, s] : stmts) sqlite3_finalize(s->get());
  stmts.clear();
  if (db) sqlite3_close_v2(db);
  if (lock_fd >= 0) close(lock_fd);  // releases the flock
}

std::string Store::Impl::ErrorText(std::string_view what) const {
  std::string e = path + ": ";
  e += what;
  if (db) {
    e += ": ";
    e += sqlite3_errmsg(db);
  }
  return e;
}

Stmt* Store::Impl::Prepare(std::string_view sql) {
  const auto it = stmts.find(sql);
  if (it != stmts.end()) return it->second.get();
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                         &s, nullptr) != SQLITE_OK) {
    last_error = ErrorText("prepare");
    sqlite3_finalize(s);
    return nullptr;
  }
  return stmts.emplace(std::string(sql), std::make_unique<Stmt>(s)).first->second.get();
}

bool Store::Impl::Exec(const char* sql) {
  char* msg = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &msg) != SQLITE_OK) {
    last_error =
        path + ": " + (msg ? msg : "error") + " (in: " + std::string(sql).substr(0, 60) + ")";
    sqlite3_free(msg);
    return false;
  }
  return true;
}

bool Store::Impl::Begin(const char* name) {
  return in_batch ? Exec((std::string("SAVEPOINT ") + name).c_str()) : Exec("BEGIN IMMEDIATE");
}

bool Store::Impl::Commit(const char* name) {
  return in_batch ? Exec((std::string("RELEASE ") + name).c_str()) : Exec("COMMIT");
}

void Store::Impl::Rollback(const char* name) {
  if (in_batch) {
    const std::string n(name);
    Exec(("ROLLBACK TO " + n + "; RELEASE " + n).c_str());
  } else {
    Exec("ROLLBACK");
  }
}

bool Store::Impl::DurableBarrier() {
  const bool ok = Exec("PRAGMA synchronous=FULL") &&
                  Exec(
                      "BEGIN IMMEDIATE; INSERT INTO meta(key, value) VALUES('durable_barrier', "
                      "'0') ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1; "
                      "COMMIT");
  if (!ok) Exec("ROLLBACK");
  Exec("PRAGMA synchronous=NORMAL");
  return ok;
}

bool Store::BeginBatch(std::string* error) {
  Impl& m = *impl_;
  if (m.options.read_only || m.in_batch) {
    *error = m.path + (m.in_batch ? ": a batch is already open" : ": store is open read-only");
    return false;
  }
  if (!m.Exec("BEGIN IMMEDIATE")) {
    *error = m.last_error;
    return false;
  }
  m.in_batch = true;
  m.batch_durable = false;
  return true;
}

bool Store::CommitBatch(std::string* error) {
  Impl& m = *impl_;
  if (!m.in_batch) {
    *error = m.path + ": no batch is open";
    return false;
  }
  m.in_batch = false;
  if (!m.Exec("COMMIT")) {
    *error = m.last_error;
    m.Exec("ROLLBACK");
    m.LoadSensors();
    return false;
  }
  if (m.batch_durable && !m.DurableBarrier()) {
    // Committed, and durable across a process crash; only a power loss could still lose it.
    *error = m.last_error;
    return false;
  }
  return true;
}

void Store::RollbackBatch() {
  Impl& m = *impl_;
  if (!m.in_batch) return;
  m.in_batch = false;
  m.Exec("ROLLBACK");
  m.LoadSensors();  // undo the batch's in-memory last_seq updates
}

bool Store::Impl::LoadSensors() {
  Stmt* s = Prepare("SELECT id, name, last_seq FROM sensors");
  if (!s) return false;
  StmtScope scope(s);
  sensors.clear();
  sensor_names.clear();
  int rc;
  while ((rc = s->Step()) == SQLITE_ROW) {
    const std::string name = s->Text(1);
    sensors[name] = {s->Int(0), static_cast<uint64_t>(s->Int(2))};
    sensor_names[s->Int(0)] = name;
  }
  if (rc != SQLITE_DONE) {
    last_error = ErrorText("reading sensors");
    return false;
  }
  return true;
}

const std::string& Store::Impl::SensorName(int64_t id) {
  auto it = sensor_names.find(id);
  if (it == sensor_names.end()) {
    LoadSensors();  // a reader may meet a sensor the writer added after we loaded
    it = sensor_names.find(id);
    if (it == sensor_names.end()) it = sensor_names.emplace(id, "?").first;
  }
  return it->second;
}

void Store::Impl::ReadEvent(const Stmt& s, StoredEvent* e) {
  e->id = s.Int(0);
  e->sensor = SensorName(s.Int(1));
  e->seq = static_cast<uint64_t>(s.Int(2));
  e->ts_ns = s.Int(3);
  e->event_type = s.Text(4);
  e->flow_id = static_cast<uint64_t>(s.Int(5));
  e->message = s.Text(6);
  e->json = s.Text(7);
}

// ---------------------------------------------------------------------------------------------
// Open

namespace {

bool QueryText(sqlite3* db, const char* sql, std::string* out) {
  sqlite3_stmt* s = nullptr;
  bool ok = false;
  if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW) {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
    *out = p ? p : "";
    ok = true;
  }
  sqlite3_finalize(s);
  return ok;
}

// A file name as an SQLite URI path: the characters URIs reserve are percent-encoded.
std::string UriPath(const std::string& path) {
  std::string out;
  for (const char c : path) {
    if (c == '%' || c == '?' || c == '#') {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

bool TableExists(sqlite3* db, const char* name) {
  sqlite3_stmt* s = nullptr;
  bool found = false;
  if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?1", -1, &s,
                         nullptr) == SQLITE_OK) {
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    found = sqlite3_step(s) == SQLITE_ROW;
  }
  sqlite3_finalize(s);
  return found;
}

}  // namespace

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Store::~Store() = default;

const std::string& Store::last_error() const { return impl_->last_error; }

std::unique_ptr<Store> Store::Open(const Options& o, std::string* error) {
  std::string dummy;
  if (!error) error = &dummy;
  if (o.dir.empty()) {
    *error = "store: no data directory given";
    return nullptr;
  }
  if (o.retention_days < 1) {
    *error =
        "store: retention_days must be at least 1 (got " + std::to_string(o.retention_days) + ")";
    return nullptr;
  }
  auto impl = std::make_unique<Impl>();
  impl->options = o;
  impl->path = o.dir + "/vigil.db";
  struct stat st {};
  if (o.read_only) {
    if (stat(impl->path.c_str(), &st) != 0) {
      *error = impl->path + ": no store here (" + std::strerror(errno) + ")";
      return nullptr;
    }
  } else {
    if (mkdir(o.dir.c_str(), 0750) != 0 && errno != EEXIST) {
      *error = o.dir + ": cannot create data directory: " + std::strerror(errno);
      return nullptr;
    }
    const std::string lock_path = o.dir + "/vigil.lock";
    impl->lock_fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (impl->lock_fd < 0) {
      *error = lock_path + ": " + std::strerror(errno);
      return nullptr;
    }
    if (flock(impl->lock_fd, LOCK_EX | LOCK_NB) != 0) {
      char pid[32] = {};
      const ssize_t n = pread(impl->lock_fd, pid, sizeof pid - 1, 0);
      *error = o.dir + ": store is open for writing by another process" +
               (n > 0 ? std::string(" (pid ") + std::string(pid, static_cast<size_t>(n)) + ")"
                      : std::string()) +
               "; open it read-only instead";
      return nullptr;
    }
    const std::string me = std::to_string(getpid());
    if (ftruncate(impl->lock_fd, 0) != 0 || pwrite(impl->lock_fd, me.data(), me.size(), 0) < 0) {
      // The pid is informative only; the lock itself is what matters.
    }
  }

  const int flags =
      (o.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
      SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI;
  std::string version, tables;
  auto connect = [&](const std::string& name) {
    if (impl->db) sqlite3_close_v2(impl->db);
    impl->db = nullptr;
    if (sqlite3_open_v2(name.c_str(), &impl->db, flags, nullptr) != SQLITE_OK) return false;
    sqlite3_extended_result_codes(impl->db, 1);
    // A reader may meet the writer's checkpoint or a retention chunk; waiting is better than
    // failing a search.
    sqlite3_busy_timeout(impl->db, 5000);
    // Search reads whole rows of a large table: memory-mapped reads halve the copying.
    impl->Exec("PRAGMA mmap_size=268435456; PRAGMA cache_size=-32768; PRAGMA temp_store=MEMORY");
    return QueryText(impl->db, "SELECT count(*) FROM sqlite_master", &tables);
  };
  if (!connect("file:" + UriPath(impl->path))) {
    // A reader without write access to the directory cannot create the WAL index (-shm). When
    // no writer is running (no -wal file) the database is complete in itself and can be read
    // as immutable; with a -wal present the reader needs write access, which we say.
    const bool wal_present = stat((impl->path + "-wal").c_str(), &st) == 0;
    if (!o.read_only || wal_present || !connect("file:" + UriPath(impl->path) + "?immutable=1")) {
      *error = impl->ErrorText(o.read_only && wal_present
                                   ? "cannot read (a writer's WAL is present: reading it needs "
                                     "write access to the directory)"
                                   : "cannot read");
      return nullptr;
    }
  }
  // Only an empty database becomes a store: never add our schema to somebody else's file.
  const bool fresh = tables == "0";
  if (!fresh && !TableExists(impl->db, "meta")) {
    *error = impl->path + ": not a vigil store (no meta table)";
    return nullptr;
  }
  if (o.read_only) {
    if (fresh) {
      *error = impl->path + ": not a vigil store (empty database)";
      return nullptr;
    }
    impl->Exec("PRAGMA query_only=1");
  } else {
    // auto_vacuum must be chosen before the first table exists; INCREMENTAL lets retention hand
    // freed pages back without the full rewrite (and double disk space) of VACUUM.
    if (fresh && !impl->Exec("PRAGMA auto_vacuum=INCREMENTAL")) {
      *error = impl->last_error;
      return nullptr;
    }
    std::string mode;
    if (!QueryText(impl->db, "PRAGMA journal_mode=WAL", &mode) || mode != "wal") {
      *error = impl->ErrorText("cannot switch to WAL mode (got '" + mode + "')");
      return nullptr;
    }
    // After a burst or a retention pass the WAL is truncated back to this at checkpoints
    // instead of keeping its peak size forever.
    if (!impl->Exec("PRAGMA synchronous=NORMAL; PRAGMA journal_size_limit=67108864")) {
      *error = impl->last_error;
      return nullptr;
    }
    if (fresh) {
      const std::string init = std::string("BEGIN IMMEDIATE;") + kSchema + kRespondSchema +
                               kConfigSchema + "INSERT INTO meta VALUES('schema_version','" +
                               std::to_string(kSchemaVersion) + "');COMMIT;";
      if (!impl->Exec(init.c_str())) {
        *error = impl->last_error;
        impl->Exec("ROLLBACK");
        return nullptr;
      }
    }
  }
  if (!QueryText(impl->db, "SELECT value FROM meta WHERE key='schema_version'", &version)) {
    *error = impl->path + ": not a vigil store (no schema_version)";
    return nullptr;
  }
  if (version == "1" && !o.read_only) {
    // 1 -> 2: the response tables. One transaction: a crash leaves version 1, upgraded next time.
    const std::string up = std::string("BEGIN IMMEDIATE;") + kRespondSchema +
                           "UPDATE meta SET value='2' WHERE key='schema_version';COMMIT;";
    if (!impl->Exec(up.c_str())) {
      *error = impl->last_error;
      impl->Exec("ROLLBACK");
      return nullptr;
    }
    version = "2";
  }
  if (version == "2" && !o.read_only) {
    // 2 -> 3: the pushed configurations.
    const std::string up = std::string("BEGIN IMMEDIATE;") + kConfigSchema +
                           "UPDATE meta SET value='3' WHERE key='schema_version';COMMIT;";
    if (!impl->Exec(up.c_str())) {
      *error = impl->last_error;
      impl->Exec("ROLLBACK");
      return nullptr;
    }
    version = "3";
  }
  // A reader of an older store (not yet opened by a newer writer) reads all but the newer
  // tables, which then read as empty.
  if (version != std::to_string(kSchemaVersion) &&
      !((version == "1" || version == "2") && o.read_only)) {
    *error = impl->path + ": store schema version " + version + ", this build reads version " +
             std::to_string(kSchemaVersion);
    return nullptr;
  }
  if (!impl->LoadSensors()) {
    *error = impl->last_error;
    return nullptr;
  }
  auto store = std::unique_ptr<Store>(new Store(std::move(impl)));
  if (!o.read_only && !store->EnsureIndexText(error)) return nullptr;
  return store;
}

// ---------------------------------------------------------------------------------------------
// Ingest

bool Store::InsertEvents(std::span<const EventIn> batch, std::vector<int64_t>* ids,
                         std::string* error) {
  Impl& m = *impl_;
  std::string dummy;
  if (!error) error = &dummy;
  if (ids) ids->assign(batch.size(), 0);
  if (m.options.read_only) {
    *error = m.path + ": store is open read-only";
    return false;
  }
  if (batch.empty()) return true;
  Stmt* ins = m.Prepare(
      "INSERT OR IGNORE INTO events(sensor_id, seq, ts_ns, event_type, src_ip, dest_ip, "
      "src_port, dest_port, proto, app_proto, flow_id, message, json) "
      "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)");
  Stmt* fts = m.Prepare("INSERT INTO events_fts(rowid, text) VALUES(?1, ?2)");
  Stmt* new_sensor = m.Prepare("INSERT INTO sensors(name, last_seq) VALUES(?1, 0)");
  Stmt* upd_sensor = m.Prepare("UPDATE sensors SET last_seq=?2 WHERE id=?1");
  if (!ins || !fts || !new_sensor || !upd_sensor) {
    *error = m.last_error;
    return false;
  }
  if (!m.Begin("insert_events")) {
    *error = m.last_error;
    return false;
  }
  auto fail = [&](std::string_view what) {
    *error = m.ErrorText(what);
    m.last_error = *error;
    m.Rollback("insert_events");
    m.LoadSensors();  // undo this batch's in-memory last_seq updates
    if (ids) ids->assign(batch.size(), 0);
    return false;
  };
  std::map<int64_t, uint64_t> touched;  // sensor id -> new last_seq
  uint64_t rejected = 0;
  std::string text;
  for (size_t i = 0; i < batch.size(); ++i) {
    const EventIn& ev = batch[i];
    auto it = m.sensors.find(ev.sensor);
    if (it == m.sensors.end()) {
      StmtScope scope(new_sensor);
      new_sensor->Bind(1, std::string_view(ev.sensor));
      if (new_sensor->Step() != SQLITE_DONE) return fail("adding sensor '" + ev.sensor + "'");
      const int64_t sid = sqlite3_last_insert_rowid(m.db);
      it = m.sensors.emplace(ev.sensor, Impl::SensorRow{sid, 0}).first;
      m.sensor_names[sid] = ev.sensor;
    }
    if (ev.seq <= it->second.last_seq) continue;  // already stored: a resend after a crash
    it->second.last_seq = ev.seq;
    touched[it->second.id] = ev.seq;
    const auto j = nlohmann::json::parse(ev.json, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      ++rejected;
      continue;
    }
    int64_t ts = 0;
    if (const nlohmann::json* t = Member(j, "timestamp"); t && t->is_string()) {
      ts = ParseEveTimestamp(t->get_ref<const std::string&>()).value_or(0);
    }
    {
      StmtScope scope(ins);
      ins->Bind(1, it->second.id);
      ins->Bind(2, ToSigned(ev.seq));
      ins->Bind(3, ts);
      BindString(ins, 4, j, "event_type");
      BindString(ins, 5, j, "src_ip");
      BindString(ins, 6, j, "dest_ip");
      BindInt(ins, 7, j, "src_port");
      BindInt(ins, 8, j, "dest_port");
      BindString(ins, 9, j, "proto");
      BindString(ins, 10, j, "app_proto");
      BindInt(ins, 11, j, "flow_id");
      BindString(ins, 12, j, "message");
      ins->Bind(13, std::string_view(ev.json));
      if (ins->Step() != SQLITE_DONE) return fail("inserting event");
    }
    // OR IGNORE + no change: the unique (sensor, seq) index already had it although last_seq
    // said otherwise (sensors row lost or edited); the index is the authority.
    if (sqlite3_changes(m.db) == 0) continue;
    const int64_t id = sqlite3_last_insert_rowid(m.db);
    text = query::IndexText(j);
    {
      StmtScope scope(fts);
      fts->Bind(1, id);
      fts->Bind(2, std::string_view(text));
      if (fts->Step() != SQLITE_DONE) return fail("indexing event");
    }
    if (ids) (*ids)[i] = id;
  }
  for (const auto& [sid, seq] : touched) {
    StmtScope scope(upd_sensor);
    upd_sensor->Bind(1, sid);
    upd_sensor->Bind(2, ToSigned(seq));
    if (upd_sensor->Step() != SQLITE_DONE) return fail("updating sensor sequence");
  }
  if (!m.Commit("insert_events")) return fail("commit");
  m.rejected += rejected;
  return true;
}

uint64_t Store::LastSeq(const std::string& sensor) {
  Impl& m = *impl_;
  if (m.options.read_only) m.LoadSensors();  // the writer moves it; the cache would be stale
  const auto it = m.sensors.find(sensor);
  return it == m.sensors.end() ? 0 : it->second.last_seq;
}

std::vector<std::pair<std::string, uint64_t>> Store::Sensors() {
  Impl& m = *impl_;
  if (m.options.read_only) m.LoadSensors();
  std::vector<std::pair<std::string, uint64_t>> out;
  for (const auto& [name, row] : m.sensors) out.emplace_back(name, row.last_seq);
  return out;
}

// ---------------------------------------------------------------------------------------------
// FTS maintenance and retention

bool Store::EnsureIndexText(std::string* error) {
  Impl& m = *impl_;
  const std::string canary = CanaryText();
  std::string stored;
  const bool have = QueryText(m.db, "SELECT value FROM meta WHERE key='index_text'", &stored);
  if (have && stored == canary) return true;
  // First open, or this build tokenises differently from the one that indexed: re-derive every
  // event's text (deleting with a different text would corrupt a contentless index).
  bool ok = m.Exec("BEGIN IMMEDIATE");
  uint64_t events = 0;
  if (ok && have) {
    ok = m.Exec("INSERT INTO events_fts(events_fts) VALUES('delete-all')");
    Stmt* all = ok ? m.Prepare("SELECT id, json FROM events") : nullptr;
    Stmt* ins = ok ? m.Prepare("INSERT INTO events_fts(rowid, text) VALUES(?1, ?2)") : nullptr;
    ok = all && ins;
    if (ok) {
      StmtScope scope(all);
      int rc;
      while (ok && (rc = all->Step()) == SQLITE_ROW) {
        const auto j = nlohmann::json::parse(all->View(1), nullptr, false);
        if (j.is_discarded()) continue;
        const std::string text = query::IndexText(j);
        StmtScope s2(ins);
        ins->Bind(1, all->Int(0));
        ins->Bind(2, std::string_view(text));
        ok = ins->Step() == SQLITE_DONE;
        ++events;
      }
      ok = ok && rc == SQLITE_DONE;
    }
  }
  if (ok) {
    Stmt* put = m.Prepare("INSERT OR REPLACE INTO meta VALUES('index_text', ?1)");
    ok = put != nullptr;
    if (ok) {
      StmtScope scope(put);
      put->Bind(1, std::string_view(canary));
      ok = put->Step() == SQLITE_DONE;
    }
  }
  if (ok) ok = m.Exec("COMMIT");
  if (!ok) {
    *error = m.ErrorText("rebuilding the text index of " + std::to_string(events) + " events");
    m.Exec("ROLLBACK");
    return false;
  }
  return true;
}

// Deletes up to `limit` events selected by `select` (which yields id, json, ordered oldest first
// and binds ?1 = `arg`), with their FTS entries, in one transaction. Returns rows deleted, or -1.
int64_t Store::DeleteEvents(const char* select, int64_t arg, int64_t limit) {
  Impl& m = *impl_;
  Stmt* sel = m.Prepare(select);
  Stmt* del = m.Prepare("DELETE FROM events WHERE id=?1");
  Stmt* fts = m.Prepare("INSERT INTO events_fts(events_fts, rowid, text) VALUES('delete', ?1, ?2)");
  if (!sel || !del || !fts || !m.Exec("BEGIN IMMEDIATE")) return -1;
  int64_t n = 0;
  bool ok = true;
  {
    StmtScope scope(sel);
    sel->Bind(1, arg);
    sel->Bind(2, limit);
    int rc;
    while (ok && (rc = sel->Step()) == SQLITE_ROW) {
      const int64_t id = sel->Int(0);
      const auto j = nlohmann::json::parse(sel->View(1), nullptr, false);
      if (!j.is_discarded()) {
        const std::string text = query::IndexText(j);
        StmtScope s2(fts);
        fts->Bind(1, id);
        fts->Bind(2, std::string_view(text));
        ok = fts->Step() == SQLITE_DONE;
      }
      if (ok) {
        StmtScope s3(del);
        del->Bind(1, id);
        ok = del->Step() == SQLITE_DONE;
      }
      ++n;
    }
    ok = ok && rc == SQLITE_DONE;
  }
  if (!ok || !m.Exec("COMMIT")) {
    m.last_error = m.ErrorText("retention");
    m.Exec("ROLLBACK");
    return -1;
  }
  return n;
}

uint64_t Store::ApplyRetention(int64_t now_ns) {
  Impl& m = *impl_;
  m.last_error.clear();
  if (m.options.read_only) {
    m.last_error = m.path + ": store is open read-only";
    return 0;
  }
  uint64_t deleted = 0;
  if (now_ns <= 0) {
    std::string newest;
    if (QueryText(m.db, "SELECT max(ts_ns) FROM events", &newest) && !newest.empty()) {
      now_ns = std::stoll(newest);
    }
  }
  if (now_ns > 0) {
    const int64_t span = static_cast<int64_t>(m.options.retention_days) * kNsPerDay;
    const int64_t cutoff = now_ns > std::numeric_limits<int64_t>::min() + span
                               ? now_ns - span
                               : std::numeric_limits<int64_t>::min();
    for (;;) {
      const int64_t n =
          DeleteEvents("SELECT id, json FROM events WHERE ts_ns < ?1 ORDER BY ts_ns LIMIT ?2",
                       cutoff, kRetentionChunk);
      if (n <= 0) break;
      deleted += static_cast<uint64_t>(n);
    }
    Stmt* bev = m.Prepare(
        "DELETE FROM breach_events WHERE breach_id IN (SELECT id FROM breaches WHERE ts_ns < ?1)");
    Stmt* br = m.Prepare("DELETE FROM breaches WHERE ts_ns < ?1");
    if (bev && br && m.Exec("BEGIN IMMEDIATE")) {
      StmtScope s1(bev), s2(br);
      bev->Bind(1, cutoff);
      br->Bind(1, cutoff);
      if (bev->Step() == SQLITE_DONE && br->Step() == SQLITE_DONE) {
        m.Exec("COMMIT");
      } else {
        m.last_error = m.ErrorText("breach retention");
        m.Exec("ROLLBACK");
      }
    }
  }
  if (m.options.max_bytes > 0) {
    // Deleting from FTS5 writes tombstones that free space only when segments merge, so the used
    // size lags the deletes: estimate how many events to drop from the average event's share,
    // merge the index, measure again, and stop after a few rounds rather than over-delete.
    for (int round = 0; round < 6; ++round) {
      const Stats st = GetStats();
      if (st.used_bytes <= m.options.max_bytes || st.events == 0) break;
      const double per_event = static_cast<double>(st.used_bytes) / static_cast<double>(st.events);
      const auto want =
          static_cast<int64_t>(std::ceil(static_cast<double>(st.used_bytes - m.options.max_bytes) /
                                         per_event * 1.05)) +
          1;
      int64_t done = 0;
      while (done < want) {
        const int64_t n = DeleteEvents(
            "SELECT id, json FROM events WHERE ts_ns >= ?1 ORDER BY ts_ns LIMIT ?2",
            std::numeric_limits<int64_t>::min(), std::min<int64_t>(kRetentionChunk, want - done));
        if (n <= 0) break;
        done += n;
      }
      deleted += static_cast<uint64_t>(done);
      if (done == 0) break;
      // 'optimize' merges every segment into one, applying the tombstones; it rewrites the index
      // (seconds on millions of events), which size pressure justifies.
      m.Exec("INSERT INTO events_fts(events_fts) VALUES('optimize')");
      m.Exec("PRAGMA incremental_vacuum");
    }
  }
  if (deleted > 0) {
    m.Exec("PRAGMA incremental_vacuum");
    // The vacuumed pages leave the database file only at a checkpoint, and the WAL that carried
    // the deletes is as large as they were: checkpoint and truncate it now. This waits for
    // readers at most the busy timeout, then leaves the rest to the next automatic checkpoint.
    m.Exec("PRAGMA wal_checkpoint(TRUNCATE)");
    m.last_error.clear();  // SQLITE_BUSY from the checkpoint is not a retention failure
  }
  return deleted;
}

Store::Stats Store::GetStats() {
  Impl& m = *impl_;
  Stats st;
  st.rejected = m.rejected;
  std::string v;
  auto num = [&](const char* sql) -> int64_t {
    return QueryText(m.db, sql, &v) && !v.empty() ? std::stoll(v) : 0;
  };
  st.events = static_cast<uint64_t>(num("SELECT count(*) FROM events"));
  st.breaches = static_cast<uint64_t>(num("SELECT count(*) FROM breaches"));
  st.oldest_ts_ns = num("SELECT min(ts_ns) FROM events");
  st.newest_ts_ns = num("SELECT max(ts_ns) FROM events");
  const int64_t page = num("PRAGMA page_size");
  const int64_t pages = num("PRAGMA page_count");
  const int64_t free_pages = num("PRAGMA freelist_count");
  st.used_bytes = static_cast<uint64_t>((pages - free_pages) * page);
  struct stat fs {};
  if (stat(m.path.c_str(), &fs) == 0) st.bytes += static_cast<uint64_t>(fs.st_size);
  if (stat((m.path + "-wal").c_str(), &fs) == 0) st.bytes += static_cast<uint64_t>(fs.st_size);
  return st;
}

bool Store::CheckIntegrity(std::string* error) {
  Impl& m = *impl_;
  std::string dummy;
  if (!error) error = &dummy;
  std::string result;
  if (!QueryText(m.db, "PRAGMA quick_check", &result) || result != "ok") {
    *error = m.path + ": quick_check: " + (result.empty() ? sqlite3_errmsg(m.db) : result);
    return false;
  }
  // FTS5's check is an INSERT command, which a read-only connection may not run.
  if (!m.options.read_only &&
      !m.Exec("INSERT INTO events_fts(events_fts) VALUES('integrity-check')")) {
    *error = m.last_error;
    return false;
  }
  return true;
}

void Store::SetRetention(int days, uint64_t max_bytes) {
  impl_->options.retention_days = days;
  impl_->options.max_bytes = max_bytes;
}

}  // namespace vigil::ctl::store
