// The dataplane's counters (its `counters` command, docs/dataplane.md "What it prints") in the
// Prometheus text format, for control's /metrics: every number becomes a metric named
// vigil_dataplane_<path>, a counter (`_total`) unless it is a level (active flows, bytes in use,
// the table generation...), with the port, worker lcore and the keys of per-kind maps (drop
// reason, anomaly, protocol, flow end reason, decode class) as labels. HELP and TYPE once per
// metric; strings are left out.
//
// Threads: any (pure function).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace vigil::ctl::api {

// `counters`: the object the dataplane's `counters` command returns. `up`: false when the
// dataplane could not be asked (then only vigil_dataplane_up 0 is written).
std::string DataplaneMetrics(const nlohmann::json& counters, bool up);

}  // namespace vigil::ctl::api
