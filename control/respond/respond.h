// Autonomous response, control's side (docs/control.md, "Responses"): turns breaches of models
// with a `response` block into actions, keeps them in the store with an audit log, applies the
// operators' operations (confirm, extend, clear, manual block), expires them, and keeps the
// dataplane's block table equal to the active ones through the command socket (CommandClient).
//
// Action life: a breach of a `confirm` model makes a `pending` action (nothing is pushed until an
// operator confirms it); `autonomous` makes it `active` at once with expiry = wall now +
// duration. confirm: pending -> active (expiry = now + duration). extend: a later expiry.
// clear: pending/active -> cleared. The sweep: active past its expiry -> expired. An action whose
// target a `never_block` CIDR covers is `refused`; with `enabled: false` actions are recorded as
// `suppressed` with mode `alert` (what would have been done) and nothing is ever pushed. Action
// times are wall clock (CLOCK_REALTIME); breaches may carry old packet time from a replay.
//
// The pusher: the desired table is every active, unexpired action (+ allow and never_block from
// the config), tagged with a generation that grows on every change. It is pushed right after the
// change (the batch commit that made the breach, or the operation), bypassing the reconnect
// backoff, and again whenever `hello` (about once a second) shows a new boot_id (the dataplane
// restarted) or a generation other than the one last pushed. `block.get` every 2 s brings the
// per-action drops, resets and first drop time back into the store.
//
// Thread: control's main thread only (it owns the store's writer). Every call that talks to the
// dataplane blocks at most ClientOptions::timeout_ms per request (Push: one request; Poll: at
// most a hello, a block.set and a block.get). counters() may be read from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "control/model/model.h"
#include "control/respond/cidr.h"
#include "control/respond/command_client.h"
#include "control/store/store.h"

namespace vigil::ctl::respond {

struct Options {
  bool enabled = true;  // false: actions recorded as suppressed, nothing pushed
  std::string socket_path = "/run/vigil/commands.sock";
  std::vector<std::string> never_block;  // CIDRs no action may cover (checked by the config)
  std::vector<std::string> allow;        // CIDRs a quarantined device may still reach
  int timeout_ms = 100;
  int backoff_min_ms = 100, backoff_max_ms = 5000;
  int64_t check_interval_ns = 1'000'000'000;     // hello, expiry sweep, retry of a failed push
  int64_t counters_interval_ns = 2'000'000'000;  // block.get
};

// Injected clocks (tests): wall = CLOCK_REALTIME ns (action times), mono = steady ns (timers).
struct Clocks {
  std::function<int64_t()> wall, mono;
};

// An operator's request (the API, vigilctl).
struct Operation {
  enum class Type { kConfirm, kExtend, kClear, kBlock };
  Type type = Type::kConfirm;
  int64_t id = 0;   // confirm, extend, clear
  std::string who;  // recorded in the audit log ("alice via API")
  std::string reason;
  int64_t duration_ns = 0;  // extend: by how much (> 0); block: how long (0: until cleared)
  // block: the target (kind names as in the protocol; peer/ports/proto for block_connection)
  std::string kind, addr, peer;
  uint16_t client_port = 0, server_port = 0;
  uint8_t proto = 0;
};

struct OpResult {
  int status = 200;  // 200; 400 bad request, 404 no such action, 409 not in a state for it
  std::string error;
  int64_t id = 0;  // the action
  // The push that followed (when the operation changed the table).
  bool push_attempted = false, pushed = false;
  std::string push_error;
  uint64_t generation = 0;
};

// The action as the API shows it; `now_ns` (wall) for "expires_in_s".
nlohmann::json ActionJson(const store::Action& a, int64_t now_ns);
nlohmann::json AuditJson(const store::AuditEntry& e);
// "10.0.0.9" / "10.0.0.9 -> 10.0.0.5:445/tcp" / "10.0.0.9 (outgoing)".
std::string TargetText(const store::Action& a);
// Wall ns as "2026-11-26T15:51:26.123Z"; 0 as "".
std::string FormatWall(int64_t ns);
// "tcp" -> 6, "udp" -> 17, "icmp" -> 1, "ipv6-icmp" -> 58, digits 0..255; nullopt otherwise.
std::optional<uint8_t> ParseProto(std::string_view s);
std::string ProtoName(uint8_t p);

class Responder {
 public:
  using LogFn = std::function<void(const std::string&)>;  // default: stderr, with a prefix
  // `store`: the writer (owned by the caller, outlives this). Bad CIDRs in `o` are logged and
  // ignored (the config loader has refused them already).
  Responder(store::Store* store, Options o, Clocks clocks = {}, LogFn log = nullptr);
  ~Responder();
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;

  // A breach just written (inside the ingest batch, before CommitBatch): creates its action when
  // the model has a response with mode confirm or autonomous. Returns the action id, 0 when the
  // model asks for none, -1 with *error when the store failed (the caller fails the batch).
  // Nothing is pushed here: call PushIfChanged() once the batch is committed.
  int64_t OnBreach(const store::Breach& b, const model::Model& m, std::string* error);

  // An operator's operation; changes are committed (with their audit row) and pushed before it
  // returns.
  OpResult Apply(const Operation& op);

  // Pushes the table now when something changed since the last successful push (ignoring the
  // reconnect backoff: a change is worth a connect attempt, which costs microseconds when the
  // socket is absent). Returns true when nothing needed pushing or the push succeeded.
  bool PushIfChanged();
  // Pushes the table now, changed or not (ignores the backoff). True when the dataplane took it.
  bool Push();
  // A pushed configuration's respond settings (control/config): enabled, never_block, allow.
  // A change re-pushes the table, built under the new lists. Main thread.
  void SetPolicy(bool enabled, std::vector<std::string> never_block,
                 std::vector<std::string> allow);
  // Active actions past their expiry -> expired (audited); pushes when any changed.
  void Sweep();
  // Once per main-loop pass: sweep, retry a failed push, hello and block.get, on their timers.
  void Poll();

  // Monotonic counters for /metrics (relaxed: statistics, read by the API thread).
  struct Counters {
    std::atomic<uint64_t> created_pending{0}, created_active{0}, created_refused{0},
        created_suppressed{0};
    std::atomic<uint64_t> confirmed{0}, extended{0}, cleared{0}, expired{0}, blocks{0};
    std::atomic<uint64_t> pushes{0}, push_failures{0}, dataplane_restarts{0}, counter_reads{0};
    std::atomic<uint64_t> generation{0}, pushed_generation{0};
    std::atomic<bool> connected{false};
  };
  const Counters& counters() const { return counters_; }
  // For /api/v1/status (main thread).
  nlohmann::json StatusJson() const;

  bool enabled() const { return options_.enabled; }
  uint64_t generation() const { return generation_; }
  uint64_t pushed_generation() const { return pushed_generation_; }
  const std::string& boot_id() const { return boot_id_; }
  // The entries a push sends now (for tests and the status).
  nlohmann::json DesiredEntries();

 private:
  void ParsePolicy();  // options_.never_block and allow -> never_block_ and allow_
  int64_t WallNow() const;
  int64_t MonoNow() const;
  void MarkChanged();
  // The never_block CIDR covering the action's addr or peer, or nullptr.
  const Cidr* NeverBlock(const store::Action& a) const;
  // Validates a target; "" when fine.
  std::string CheckTarget(const store::Action& a) const;
  bool Save(store::Action* a, const std::string& who, const std::string& op,
            const std::string& detail, std::string* error);
  bool PushNow(bool ignore_backoff);
  void Hello();
  void ReadCounters();
  void PushFailed(const std::string& error);
  OpResult Finish(OpResult r, bool changed);

  store::Store* store_;
  Options options_;
  Clocks clocks_;
  LogFn log_;
  std::vector<Cidr> never_block_, allow_;
  std::unique_ptr<CommandClient> client_;
  Counters counters_;
  uint64_t generation_ = 0;         // of the desired table; grows on every change
  uint64_t pushed_generation_ = 0;  // the dataplane took this one (0: nothing yet)
  std::string boot_id_;             // the dataplane's, from the last hello
  bool failing_ = false;            // the last push failed (log and audit transitions only)
  std::string last_error_;
  int64_t next_check_ns_ = 0, next_counters_ns_ = 0;
  // Counters per action id across dataplane restarts and table rebuilds: what is stored is
  // base + reported, and a reported value that goes down (a fresh counter) moves into base.
  struct Seen {
    uint64_t base_drops = 0, base_resets = 0, last_drops = 0, last_resets = 0;
    int64_t first_drop_ns = 0;
    bool stored = false;
  };
  std::map<int64_t, Seen> seen_;
};

}  // namespace vigil::ctl::respond
