// Detection models: the YAML loader (rules/models/*.yaml, one model per file) and the Engine that
// evaluates every loaded model against each stored event and raises firings (breaches to be).
//
// Model format (docs/models.md is the user reference):
//   name: "Device / AT Service Scheduled Task"   # "Category / Name", unique in the set
//   description: "..."
//   priority: 3                                   # 0..5
//   tags: [lateral-movement]
//   mitre: [T1053.002]                            # T1234 or T1234.567
//   enabled: true                                 # optional, default true
//   components:                                   # one or more
//     - event_types: [smb]                        # optional; absent = every event type
//       filter: 'atsvc AND "IPC$"'                # query language (control/query/query.h)
//       frequency: {count: 0, interval: 60m, group_by: source}   # count > `count` in interval
//   throttle: 1h                                  # per model and device; 0 = none
//   response: {action: quarantine_device, duration: 1h, mode: confirm}   # optional
// Durations: an integer and a unit, `ms`, `s`, `m`, `h` or `d` (`30s`, `60m`, `7d`), or `0`.
//
// Engine evaluation of one event (OnEvent):
//   1. components whose `event_types` do not list the event's type are skipped;
//   2. one Hyperscan block-mode scan (one database of every component's literal fragments,
//      caseless, single-match) of the event's index text; a component with required fragments is
//      evaluated only when every fragment of at least one of its alternatives matched;
//   3. Query::Matches on the remaining candidates;
//   4. a match enters the component's sliding window for its group (source, destination or
//      pair); when the window holds more than `count` events the component fires, the group's
//      window is emptied (the next firing needs count + 1 new events), and the firing is kept
//      unless the model fired for the same device within `throttle`.
// All times are packet time (ns since the epoch) taken from the caller, never the wall clock.
//
// Thread rules: ModelSet is immutable after loading and may be shared by threads. Engine is not
// thread-safe: one owner thread (the control main loop) calls OnEvent; it never blocks and does
// no I/O. To change models, build a new Engine (window and throttle state start empty; see
// Warm() for carrying them over a restart).
// Limits (EngineOptions): groups and window entries per component, trigger events per firing,
// throttle entries; evictions are counted in Stats. Loader: files up to kMaxModelFileBytes,
// frequency count up to kMaxFrequencyCount, durations up to 366 days.
#ifndef VIGIL_CONTROL_MODEL_MODEL_H_
#define VIGIL_CONTROL_MODEL_MODEL_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "control/query/query.h"

namespace vigil::ctl::model {

inline constexpr size_t kMaxModelFileBytes = 256 * 1024;
inline constexpr uint64_t kMaxFrequencyCount = 100000;
inline constexpr int64_t kMaxDurationNs = int64_t{366} * 86400 * 1000000000;

// One problem in a model file. line/column are 1-based, 0 when unknown; `field` is the dotted
// path of the offending key (`components[0].frequency.interval`), empty for the document.
struct LoadError {
  std::string file;
  int line = 0, column = 0;
  std::string field, message;
  std::string ToString() const;  // "file:line:column: field: message"
};

enum class GroupBy { kSource, kDestination, kPair };
// The names are the block kinds of the dataplane's command protocol (docs/respond.md).
enum class ResponseAction {
  kBlockConnection,
  kQuarantineDevice,
  kQuarantineOutgoing,
  kQuarantineIncoming
};
enum class ResponseMode { kAlert, kConfirm, kAutonomous };

const char* GroupByName(GroupBy g);
const char* ResponseActionName(ResponseAction a);
// "block_connection", ... back to the enum; nullopt for another name.
std::optional<ResponseAction> ParseResponseAction(std::string_view name);
const char* ResponseModeName(ResponseMode m);

struct Frequency {
  uint64_t count = 0;                                // fires when more than `count` events ...
  int64_t interval_ns = int64_t{3600} * 1000000000;  // ... fall within this interval
  GroupBy group_by = GroupBy::kSource;
};

struct Component {
  std::vector<std::string> event_types;  // empty: every event type
  std::string filter;                    // the query text as written
  std::optional<query::Query> query;     // always set in a loaded ModelSet
  Frequency frequency;
};

struct Response {
  ResponseAction action = ResponseAction::kQuarantineDevice;
  int64_t duration_ns = 0;  // 0: until cleared
  ResponseMode mode = ResponseMode::kAlert;
};

struct Model {
  std::string name;  // "Category / Name"
  std::string description;
  int priority = 0;  // 0..5
  std::vector<std::string> tags;
  std::vector<std::string> mitre;
  bool enabled = true;
  std::vector<Component> components;
  int64_t throttle_ns = int64_t{3600} * 1000000000;
  std::optional<Response> response;
  std::string file;  // where it was loaded from
  int line = 0;      // line of its `name`

  nlohmann::json ToJson() const;  // for the API's /models and `vigilctl models`
};

class ModelSet {
 public:
  ModelSet() = default;

  // Every *.yaml / *.yml file of `dir` (sorted by name), one model per file. Returns nullopt when
  // there is any error; *errors (when non-null) then holds every error of every file, in file
  // and document order. An empty directory is an empty set.
  static std::optional<ModelSet> LoadDir(const std::string& dir, std::vector<LoadError>* errors);
  // The given files, in order (same rules).
  static std::optional<ModelSet> LoadFiles(std::span<const std::string> files,
                                           std::vector<LoadError>* errors);
  // One model from YAML text; `file` names it in errors. For tests, the fuzzer and the API.
  static std::optional<Model> ParseModel(std::string_view yaml, const std::string& file,
                                         std::vector<LoadError>* errors);
  // A set from models already parsed (names must be unique; false and *errors otherwise).
  static std::optional<ModelSet> FromModels(std::vector<Model> models,
                                            std::vector<LoadError>* errors);

  std::span<const Model> models() const { return models_; }
  const Model* Find(std::string_view name) const;

 private:
  std::vector<Model> models_;
};

struct Firing {
  std::string model;
  int priority = 0;
  std::string device;  // the group's device: src_ip (source, pair) or dest_ip (destination)
  int64_t ts_ns = 0;   // packet time of the event that made it fire
  double score = 0;    // 0..100, see Score()
  int component = 0;   // index in the model's components
  std::string filter;
  // The events in the window that made it fire (stored event ids, oldest first, the firing
  // event last; at most EngineOptions::max_trigger_events, the newest kept) and their distinct
  // flow ids (0 is left out).
  std::vector<int64_t> trigger_event_ids;
  std::vector<uint64_t> flow_ids;
  // The frequency interval ending at the firing event: [ts_ns - interval, ts_ns]. The breach's
  // event log is the triggers plus their flows' other events in this window.
  int64_t window_from_ns = 0, window_to_ns = 0;
  // {"group_by","group","src_ip","dest_ip","count","threshold","interval_ns","first_ts_ns",
  //  "event_types","mitre","tags","response"?}
  nlohmann::json details;
};

// Score of a firing, 0..100: priority dominates, the number of events that made it fire adds a
// little. score = 100 * (0.15 + 0.70 * priority / 5 + 0.15 * min(1, log10(count) / 3)).
// Priority 0 with one event scores 15, priority 3 with one event 57, priority 5 with 1000 or
// more events 100.
double Score(int priority, uint64_t count);

struct EngineOptions {
  bool prefilter = true;  // false: evaluate every type-matching component
  size_t max_groups_per_component = 16384;
  size_t max_entries_per_component = size_t{1} << 20;  // window entries over all groups
  size_t max_trigger_events = 100;
  size_t max_throttle_entries = 65536;
};

class Engine {
 public:
  // Compiles one Hyperscan database of every enabled model's text fragments. A compile failure
  // (not expected for literals) leaves the engine working without the prefilter, with the reason
  // in prefilter_error(). The engine keeps its own copy of the set.
  explicit Engine(const ModelSet& set, const EngineOptions& options = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // One event (its stored id and packet time): every model evaluated together; returns the
  // firings, already throttled per model and device. `index_text` is query::IndexText(event)
  // when the caller has it (the store computes it for FTS5); empty: computed here.
  std::vector<Firing> OnEvent(const nlohmann::json& event, int64_t event_id, int64_t ts_ns,
                              std::string_view index_text = {});

  // Restart warm-up (control after a restart, models reloaded): the stored events of the last
  // WarmUpSpanNs() before the newest one, in stored order, through Warm(), and each (model,
  // device)'s newest breach through RestoreThrottle(), so that frequency windows and throttles
  // continue where the previous process left them. Warm() evaluates like OnEvent (windows fill
  // and a firing empties its window) but returns nothing and leaves the throttle table alone.
  void Warm(const nlohmann::json& event, int64_t event_id, int64_t ts_ns,
            std::string_view index_text = {});
  void RestoreThrottle(std::string_view model, std::string_view device, int64_t ts_ns);
  // Twice the longest frequency interval of the enabled models: a window's content at any time
  // depends on the events of one interval and, through the emptying on a firing, on the one
  // before (in practice).
  int64_t WarmUpSpanNs() const;

  struct Stats {
    uint64_t warmed = 0;            // Warm calls (not counted in the fields below)
    uint64_t warm_firings = 0;      // firings during warm-up (already breaches, or throttled)
    uint64_t events = 0;            // OnEvent calls
    uint64_t type_skipped = 0;      // component evaluations avoided by event_types
    uint64_t scans = 0;             // Hyperscan scans (events some component wanted)
    uint64_t prefiltered_out = 0;   // component evaluations avoided by the prefilter
    uint64_t evaluated = 0;         // Query::Matches calls
    uint64_t unfiltered = 0;        // of those: components without required fragments
    uint64_t matched = 0;           // Query::Matches true
    uint64_t ungrouped = 0;         // matches without the address the group needs
    uint64_t firings = 0;           // returned
    uint64_t throttled = 0;         // suppressed by throttle
    uint64_t groups_evicted = 0;    // live groups dropped to respect the caps
    uint64_t throttle_evicted = 0;  // live throttle entries dropped to respect the cap
    uint64_t scan_errors = 0;       // Hyperscan errors (the event was then fully evaluated)
  };
  Stats stats() const { return stats_; }

  size_t fragment_count() const;  // distinct literal fragments in the database
  size_t component_count() const;
  const std::string& prefilter_error() const { return prefilter_error_; }
  const ModelSet& models() const { return set_; }

 private:
  struct Impl;
  ModelSet set_;
  EngineOptions options_;
  Stats stats_;
  std::string prefilter_error_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vigil::ctl::model

#endif  // VIGIL_CONTROL_MODEL_MODEL_H_
