// The control plane's embedded store: events, their full-text index, sensors' sequence numbers,
// breaches, and response actions with their audit log, in one SQLite database `<dir>/vigil.db` in
// WAL mode.
//
// Durability: event batches commit with synchronous=NORMAL (a process crash loses nothing
// committed; a power loss may lose the last commits since the previous checkpoint, which the
// dataplane's journal resends because (sensor, seq) dedup makes replays harmless); breaches and
// acknowledgements commit with synchronous=FULL (durable when the call returns).
//
// Search: a time-bounded SQL scan narrowed by the query's FTS5 prefilter (a necessary condition)
// and its required literal fragments, then the exact query::Query::Matches on each candidate;
// results are therefore exactly the events Matches accepts.
//
// Thread rules: a Store is used by one thread at a time (the control main loop owns the writer).
// Other threads or processes (API, `vigilctl --data-dir`) open their own Store with
// `read_only = true`; WAL lets any number of them read while the writer writes. Only one writer
// may have a directory open (an flock on `<dir>/vigil.lock`); a second one fails with an error.
// Calls block on disk I/O; Search/Count/ApplyRetention may take seconds on large stores.
// Errors are values: no call throws.
#ifndef VIGIL_CONTROL_STORE_STORE_H_
#define VIGIL_CONTROL_STORE_STORE_H_

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "control/query/query.h"

namespace vigil::ctl::store {

struct Options {
  std::string dir;          // created (mode 0750) when missing, unless read_only
  int retention_days = 60;  // ApplyRetention deletes events (and breaches) older than this
  uint64_t max_bytes = 0;   // 0: no cap; else ApplyRetention deletes oldest events until under
  bool read_only = false;   // reader of a running or stopped store: never writes, never locks
};

struct EventIn {
  std::string sensor;
  uint64_t seq = 0;  // per sensor, from 1, increasing
  std::string json;  // one EVE object
};

struct StoredEvent {
  int64_t id = 0;  // never reused (AUTOINCREMENT), so breach references stay unambiguous
  std::string sensor;
  uint64_t seq = 0;
  int64_t ts_ns = 0;  // packet time from `timestamp`; 0 when absent or unparsable
  std::string event_type;
  uint64_t flow_id = 0;
  std::string message;
  std::string json;
};

struct SearchOptions {
  int64_t from_ns = std::numeric_limits<int64_t>::min();  // inclusive
  int64_t to_ns = std::numeric_limits<int64_t>::max();    // inclusive
  size_t limit = 100;  // Search: events returned; Count by field: values returned
  bool newest_first = true;
};

enum class CountBy { kDay, kHour, kField };

struct BreachEventRef {
  int64_t event_id = 0;
  bool trigger = false;  // made the model fire (else: same flow, in the window)
};

struct Breach {
  int64_t id = 0;
  std::string model;
  int priority = 0;
  std::string device;
  int64_t ts_ns = 0;
  double score = 0;
  int component = 0;
  std::string filter;
  std::string details_json;
  std::vector<BreachEventRef> events;
  bool acknowledged = false;
  std::string comment;
};

// A response action (control/respond): what control asked, or will ask, the dataplane to block.
// Times are wall clock (CLOCK_REALTIME ns), not packet time.
struct Action {
  int64_t id = 0;
  int64_t breach_id = 0;  // 0: a manual block (NULL in the table)
  std::string model;      // the breach's model; "" for a manual block
  std::string kind;       // block_connection, quarantine_device, quarantine_outgoing/_incoming
  std::string addr;       // the device (quarantine) or the connection's client
  std::string peer;       // the connection's server; "" for a quarantine
  uint16_t client_port = 0, server_port = 0;
  uint8_t proto = 0;  // IP protocol; 0 = any
  std::string mode;   // confirm, autonomous, manual; alert when respond.enabled is false
  std::string state;  // pending, active, expired, cleared, refused, suppressed
  int64_t created_ns = 0;
  int64_t expires_ns = 0;   // 0: none (pending, or until cleared)
  int64_t duration_ns = 0;  // from activation; 0: until cleared
  int64_t changed_ns = 0;   // last state or expiry change
  std::string reason;       // why it was created, refused or last changed
  // Last read back from the dataplane (block.get): drops, RST pairs, first drop (wall ns).
  uint64_t drops = 0, resets = 0;
  int64_t first_drop_ns = 0, counters_ns = 0;  // counters_ns: when they were read
};

// One row of the response audit log: who did what to which action, when (wall clock).
struct AuditEntry {
  int64_t id = 0;
  int64_t ts_ns = 0;
  std::string who;        // "alice via API", "vigil-control"
  int64_t action_id = 0;  // 0: none (a push failure, a dataplane restart)
  std::string op;         // create, confirm, extend, clear, expire, block, refuse, ...
  std::string detail;     // reason and particulars
};

// One accepted configuration push (control/config, docs/operations.md "Configuration push").
struct ConfigVersion {
  int64_t seq = 0;  // order of acceptance
  std::string version;
  std::string hash;  // sha256 of the document, hex
  int64_t pushed_ns = 0;
  std::string who;
  std::string state;    // active, superseded, rolled_back
  std::string summary;  // what it changed (rule and model counts)
  std::string document;
};

// Counters of one action as the dataplane reported them.
struct ActionCounters {
  int64_t id = 0;
  uint64_t drops = 0, resets = 0;
  int64_t first_drop_ns = 0;
};

class Store {
 public:
  // Opens (creating when missing, unless read_only) `o.dir/vigil.db`. Returns nullptr and sets
  // *error (naming the path) when the directory or database cannot be opened, is not a vigil
  // store, has a newer schema, or another writer holds it.
  static std::unique_ptr<Store> Open(const Options& o, std::string* error);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // A batch: one transaction around the InsertEvents and InsertBreach calls between BeginBatch
  // and CommitBatch, so that events and the breaches they caused are stored together or not at
  // all (control's ingest: a crash between the two cannot leave stored events whose breaches
  // are missing). CommitBatch makes the batch durable (synchronous=FULL) when it holds a breach.
  // After a failed call inside the batch, RollbackBatch (or CommitBatch of what succeeded).
  bool BeginBatch(std::string* error);
  bool CommitBatch(std::string* error);
  void RollbackBatch();  // no-op without an open batch

  // One transaction (a savepoint inside a batch). Events whose (sensor, seq) is not above
  // LastSeq(sensor) are skipped (dedup, id 0); so are events whose JSON does not parse as an object
  // (id 0, counted in Stats::rejected, their seq still consumed so a resend cannot loop). Returns
  // the ids assigned (one per input) or false with *error, in which case nothing of the batch is
  // stored.
  bool InsertEvents(std::span<const EventIn> batch, std::vector<int64_t>* ids, std::string* error);
  uint64_t LastSeq(const std::string& sensor);
  std::vector<std::pair<std::string, uint64_t>> Sensors();  // (name, last_seq), by name

  // Events matching `q` with from_ns <= ts_ns <= to_ns, newest (or oldest) first, at most
  // o.limit of them; *total (when non-null) = all matching events in the range.
  std::vector<StoredEvent> Search(const query::Query& q, const SearchOptions& o, uint64_t* total,
                                  std::string* error = nullptr);
  // Matching events counted per UTC day ("2017-10-20"), hour ("2017-10-20T18") or per value of
  // the dotted EVE path `field` (strings as is, numbers and booleans as JSON, each element of an
  // array; events without the field are not counted). Time buckets are chronological and
  // complete (o.limit does not apply); field values are by count, descending, at most o.limit.
  std::vector<std::pair<std::string, uint64_t>> Count(const query::Query& q, const SearchOptions& o,
                                                      CountBy by, const std::string& field = "",
                                                      std::string* error = nullptr);
  // Every event of these flows with from_ns <= ts_ns <= to_ns, oldest first.
  std::vector<StoredEvent> EventsOfFlows(std::span<const uint64_t> flow_ids, int64_t from_ns,
                                         int64_t to_ns);
  std::optional<StoredEvent> Event(int64_t id);
  // Every event with ts_ns >= from_ns, in the order they were stored (by id), streamed to `fn`
  // until it returns false (control's model warm-up after a restart). False with *error on a
  // database error.
  bool ForEachEventSince(int64_t from_ns, const std::function<bool(const StoredEvent&)>& fn,
                         std::string* error);

  // Synchronous commit: durable when it returns a non-zero id (inside a batch: once CommitBatch
  // returns true). Returns 0 with *error on failure.
  int64_t InsertBreach(const Breach& b, std::string* error);
  // Newest first; `model` empty = every model; ts_ns >= since_ns.
  std::vector<Breach> Breaches(const std::string& model, int64_t since_ns, size_t limit);
  std::optional<Breach> GetBreach(int64_t id);
  // The newest breach time of each (model, device) with ts_ns >= since_ns: the model engine's
  // throttle state, restored after a restart.
  struct LastBreach {
    std::string model, device;
    int64_t ts_ns = 0;
  };
  std::vector<LastBreach> LastBreaches(int64_t since_ns);
  // Marks acknowledged and sets the comment (synchronous commit). False when no such breach.
  bool AcknowledgeBreach(int64_t id, const std::string& comment, std::string* error);
  // Sets what the update holds and keeps the rest (synchronous commit). False with *error when
  // there is no such breach or the write failed.
  struct BreachUpdate {
    std::optional<bool> acknowledged;
    std::optional<std::string> comment;
  };
  bool UpdateBreach(int64_t id, const BreachUpdate& u, std::string* error);

  // Responses. SaveAction writes the action (inserted when a.id is 0, else every column but the
  // counters replaced) and the audit row about it (its action_id set to the action's) in one
  // synchronous transaction (part of the batch when one is open). Returns the action's id, or 0
  // with *error (also when a.id names no action).
  int64_t SaveAction(const Action& a, const AuditEntry& audit, std::string* error);
  // An audit row about no particular action (or an existing one). Returns its id or 0.
  int64_t InsertAudit(const AuditEntry& e, std::string* error);

  // Configuration versions (store_config.cc). ActivateConfig makes `v` the active version in one
  // transaction with its audit row: inserted when new (seq assigned), or re-activated when the
  // version is already stored (a rollback); the previously active one becomes `previous_state`
  // (superseded or rolled_back). Returns the seq, 0 on error.
  int64_t ActivateConfig(const ConfigVersion& v, const std::string& previous_state,
                         const AuditEntry& audit, std::string* error);
  std::optional<ConfigVersion> ActiveConfig();
  std::optional<ConfigVersion> FindConfig(const std::string& version);
  // The version that was active before the active one (the rollback target): the newest
  // superseded version older than the active one.
  std::optional<ConfigVersion> PreviousConfig();
  // Newest first, documents left out.
  std::vector<ConfigVersion> ConfigHistory(size_t limit);
  std::optional<Action> GetAction(int64_t id);
  // Newest first; `state` empty = every state.
  std::vector<Action> Actions(const std::string& state, size_t limit);
  std::vector<Action> ActionsOfBreach(int64_t breach_id);
  // Newest first; action_id 0 = every row.
  std::vector<AuditEntry> Audit(int64_t action_id, size_t limit);
  // Stores the counters read back from the dataplane (ordinary commit: statistics) for the
  // actions that exist; `read_ns` is when they were read.
  bool UpdateActionCounters(std::span<const ActionCounters> counters, int64_t read_ns,
                            std::string* error);

  // A pushed configuration's retention (takes effect at the next ApplyRetention).
  void SetRetention(int days, uint64_t max_bytes);
  // Deletes events and breaches older than retention_days before `now_ns` (0: the newest stored
  // event's packet time, so replayed old captures are not wiped by the wall clock), then, when
  // max_bytes is set, the oldest events until the database's used pages fit, and returns freed
  // pages to the file system (incremental vacuum). Returns the events deleted.
  uint64_t ApplyRetention(int64_t now_ns);

  struct Stats {
    uint64_t events = 0, breaches = 0;
    uint64_t bytes = 0;       // database file + WAL on disk
    uint64_t used_bytes = 0;  // pages in use (what max_bytes caps)
    uint64_t rejected = 0;    // unparsable events skipped by this process
    int64_t oldest_ts_ns = 0, newest_ts_ns = 0;
  };
  Stats GetStats();

  // PRAGMA quick_check plus the FTS5 index's own integrity check. True when both pass.
  bool CheckIntegrity(std::string* error);

  // The query that failed last (Search/Count/EventsOfFlows/...); empty when the last call worked.
  const std::string& last_error() const;

  struct Impl;

 private:
  explicit Store(std::unique_ptr<Impl> impl);
  bool EnsureIndexText(std::string* error);
  int64_t DeleteEvents(const char* select, int64_t arg, int64_t limit);
  std::unique_ptr<Impl> impl_;
};

// Packet time of an EVE `timestamp` ("2017-10-20T18:43:22.992213+0000", also "Z" or "+00:00",
// with 0..9 fraction digits). nullopt when malformed.
std::optional<int64_t> ParseEveTimestamp(std::string_view ts);
// "2017-10-20" / "2017-10-20T18" (UTC) of a packet time.
std::string DayKey(int64_t ts_ns);
std::string HourKey(int64_t ts_ns);

}  // namespace vigil::ctl::store

#endif  // VIGIL_CONTROL_STORE_STORE_H_
