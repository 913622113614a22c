// vigil-control's configuration (config/control.yaml), loaded with yaml-cpp and validated before
// anything starts: every error names file, line, column and dotted field; all errors are listed.
//
// Thread: start-up only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace vigil::ctl {

struct ControlConfig {
  std::string source_file;
  std::string data_dir = "/var/lib/vigil";              // the store (vigil.db) and its WAL
  std::string event_socket = "/run/vigil/events.sock";  // dataplanes connect here
  std::string models_dir = "rules/models";              // "": none (only `models`, when given)
  // models: models written in the configuration itself (a pushed configuration may carry them),
  // loaded after those of models_dir. Each holds its YAML text padded so that its lines and
  // columns are those of the document (errors point into it).
  struct InlineModel {
    std::string text;
    bool operator==(const InlineModel&) const = default;
  };
  std::vector<InlineModel> models;
  std::string api_listen = "127.0.0.1:8642";       // "" turns the TCP listener off
  std::string api_socket = "/run/vigil/api.sock";  // "" turns the Unix socket off
  // Token that changing API calls must present; "" = <data_dir>/api.token, created (0600, random)
  // on first start when missing.
  std::string api_token_file;
  uint32_t retention_days = 60;
  uint64_t retention_max_mb = 0;  // 0: no size cap
  // The dataplane's file store (outputs.files.dir) on this host, served by /api/v1/files/{sha256};
  // "" = none.
  std::string files_dir;
  // Autonomous response (control/respond, docs/control.md "Responses").
  struct Respond {
    // false: actions are still recorded (state suppressed, mode alert: what would have been
    // done) but nothing is ever pushed to the dataplane.
    bool enabled = true;
    std::string dataplane_socket = "/run/vigil/commands.sock";  // its commands.socket
    std::vector<std::string> never_block;  // CIDRs no action may cover (refused, audited)
    std::vector<std::string> allow;        // CIDRs a quarantined device may still reach
    bool operator==(const Respond&) const = default;
  } respond;

  bool operator==(const ControlConfig&) const = default;
};

struct ControlConfigError {
  std::string file;
  int line = 0;
  int column = 0;
  std::string field;
  std::string message;
  std::string ToString() const;
};

struct ControlConfigResult {
  std::optional<ControlConfig> config;
  std::vector<ControlConfigError> errors;
};

ControlConfigResult LoadControlConfigFile(const std::string& path);
ControlConfigResult LoadControlConfigString(const std::string& yaml,
                                            const std::string& name = "<string>");
// The value of the top-level key `key` of a larger document (a pushed configuration), read as a
// whole control.yaml: errors carry the document's lines and fields prefixed with `key`.
ControlConfigResult LoadControlConfigSection(const std::string& yaml, const std::string& name,
                                             const std::string& key);

// Settings that differ and can only change with a restart of vigil-control (all but models_dir,
// models, retention and respond's enabled, never_block and allow), as dotted names.
std::vector<std::string> ControlRestartOnlyChanges(const ControlConfig& running,
                                                   const ControlConfig& next);

}  // namespace vigil::ctl
