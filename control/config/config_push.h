// Configuration push (docs/operations.md "Configuration push"): one YAML document, pushed by
// orchestration through `PUT /api/v1/config` or `vigilctl config push`, carries the dataplane's
// configuration (vigil.yaml, rules by reference or inline) and control's (control.yaml, models by
// reference or inline), with an optional version:
//
//   version: "2026-11-27.1"   # optional; absent: "sha256:" and the document's hash
//   dataplane: { ...vigil.yaml... , detect: {rules: [...], inline: | ...} }
//   control:   { ...control.yaml..., models: [ {name: ..., components: ...}, ... ] }
//
// A section left out keeps the running one. Guarantees: every error of the document (parse,
// schema, semantics: a rule that does not compile, a model filter on an unknown field, a
// setting that only a restart can change) is listed with file, line and field before anything
// changes; the same version twice is a no-op; an older version is refused unless forced; the
// dataplane builds its rule set off to the side and swaps it with RCU, control swaps its models;
// every push, refusal and rollback is audited; one-step rollback to the previous version.
//
// Threads: a Pusher serves the API thread and a resync thread, one operation at a time. What
// changes control's running state runs on the main thread through the `apply` hook.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/app/control_config.h"
#include "control/model/model.h"
#include "control/respond/command_client.h"
#include "control/store/store.h"

namespace vigil::ctl::config {

struct PushError {
  std::string file;
  int line = 0;
  int column = 0;
  std::string field;
  std::string message;
  nlohmann::json ToJson() const;
  std::string ToString() const;  // "file:line:column: field: message"
};

// The models of a control configuration: models_dir's files (when set), then the inline ones.
// nullptr with *errors when any model is wrong.
std::shared_ptr<const model::ModelSet> LoadModels(const ControlConfig& config,
                                                  std::vector<PushError>* errors);

// A pushed document, parsed; control's section validated (schema, models, restart-only settings
// against `running`). The dataplane's section is validated by the dataplane (config.stage).
struct Document {
  std::string text;
  std::string name;  // what errors call the document
  std::string version;
  bool version_given = false;
  std::string hash;     // sha256, hex
  bool parsed = false;  // YAML that parses into a map
  bool has_dataplane = false;
  bool has_control = false;
  std::optional<ControlConfig> control;           // when has_control and valid
  std::shared_ptr<const model::ModelSet> models;  // idem
  std::vector<PushError> errors;
};
Document ParseDocument(std::string text, std::string name, const ControlConfig& running);

// Orders versions the way `sort -V` does: digit runs compare as numbers, the rest as bytes.
// <0, 0, >0.
int CompareVersions(std::string_view a, std::string_view b);

struct PushOptions {
  bool force = false;    // accept a version older than the running one
  bool dry_run = false;  // validate only (vigilctl config validate)
  std::string who = "api";
};

struct Outcome {
  int status = 200;
  nlohmann::json body;
};

class Pusher {
 public:
  // Runs on the main thread (the caller's job queue): swaps control's part in and records the
  // version (store->ActivateConfig with `audit`). `doc.control` is set when control's section
  // changes. Returns "" or an error (then nothing was recorded).
  using Apply = std::function<std::string(const Document& doc, const std::string& previous_state,
                                          const store::AuditEntry& audit)>;
  // Records an audit row of a refused push (main thread, through the job queue).
  using Audit = std::function<void(const store::AuditEntry& audit)>;

  // `reader`: a read-only store connection of its own (version checks, history), used only
  // under the Pusher's lock. `running`: control's
  // configuration as started. `dataplane_socket`: its command socket ("" : no dataplane).
  Pusher(store::Store* reader, ControlConfig running, std::string dataplane_socket, Apply apply,
         Audit audit);

  Outcome Push(const std::string& text, const std::string& name, const PushOptions& options);
  Outcome Rollback(const std::string& who);
  Outcome Get();
  Outcome History(size_t limit);

  // Keeps the dataplane on the active version: when it reports another one (it restarted and
  // runs its file again), the active document's dataplane section is staged and committed again
  // (audited as config.resync). Returns what it did ("" when nothing was needed or possible).
  // Called every few seconds from a thread of its own.
  std::string Resync();

  // How long a staged rule set may take to build before the push gives up (nothing changes).
  void set_stage_timeout_ms(int ms) { stage_timeout_ms_ = ms; }

 private:
  Outcome Apply_(Document doc, const PushOptions& options, const std::string& op,
                 const std::string& previous_state);
  // One request on a connection of its own (the answer, ok or not; nullopt on a transport error).
  std::optional<nlohmann::json> CallDataplane(const std::string& op, const nlohmann::json& fields,
                                              int timeout_ms, std::string* error);
  // Stages doc's dataplane section and waits for the build; errors appended to *errors.
  bool StageDataplane(const Document& doc, std::vector<PushError>* errors, nlohmann::json* status);
  Outcome Refuse(int status, const std::string& version, const std::string& who,
                 const std::string& reason, const std::vector<PushError>& errors,
                 bool audit = true);

  std::mutex mu_;  // one operation at a time: the API thread's and the resync thread's
  store::Store* reader_;
  ControlConfig running_;
  std::string dataplane_socket_;
  Apply apply_;
  Audit audit_;
  int stage_timeout_ms_ = 300'000;
  std::chrono::steady_clock::time_point resync_retry_at_{};  // after a failed resync
};

}  // namespace vigil::ctl::config
