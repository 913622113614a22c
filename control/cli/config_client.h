// `vigilctl config push|validate|get|history|rollback`: configuration push through vigil-control's
// API (docs/operations.md "Configuration push").
#pragma once

#include <string>
#include <vector>

namespace vigil::ctl::cli {

struct ConfigCommandOptions {
  std::string endpoint;  // API Unix socket path or HOST:PORT
  std::string token;
  std::string who;       // recorded in the audit log
  bool force = false;    // push: accept an older version
  bool as_json = false;  // print the API's JSON unchanged
};

// `args`: {"push", FILE} | {"validate", FILE} | {"get"} | {"history"} | {"rollback"}. Prints the
// result (errors one per line as file:line:column: field: message, on stderr) and returns the
// exit status: 0 done (or unchanged, or valid), 1 refused or failed, 2 usage.
int RunConfigCommand(const std::vector<std::string>& args, const ConfigCommandOptions& options);

}  // namespace vigil::ctl::cli
