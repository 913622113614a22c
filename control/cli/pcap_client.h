// `vigilctl pcap`: fetches a packet capture export from vigil-control's API
// (GET /api/v1/pcaps, docs/evidence.md "Packet capture export") into a file.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace vigil::ctl::cli {

struct PcapQuery {
  std::string host, peer, port, proto, from, to;  // as typed; "" when not given
};

// A window bound as typed on the command line: "now", "-5m", "now-5m", "-90s", "-2h", "-1d"
// become absolute Unix seconds ("1795000000.250000000") against `now_ns` (wall clock); anything
// else is passed on unchanged for the server to parse (RFC 3339 or Unix seconds).
std::string ResolveClientTime(const std::string& s, int64_t now_ns);

// "/api/v1/pcaps?host=...&from=...&to=..." (relative times resolved against `now_ns`).
std::string PcapTarget(const PcapQuery& q, int64_t now_ns);

// Fetches the export into `output` ("-": standard output). The body goes to OUTPUT.tmp.PID (mode
// 0600) and is renamed to OUTPUT when complete, so a failed transfer leaves no partial file.
// Returns "" with the export's facts (the X-Vigil-Export header) in *facts, or the error (the
// server's message for an HTTP error).
std::string FetchPcap(const std::string& endpoint, const std::string& token, const PcapQuery& q,
                      const std::string& output, int64_t now_ns, nlohmann::json* facts);

// "wrote FILE: P packets (M from memory, D from disk); window start not retained: A to B"
// (or "; whole window retained"), plus the records lost before spooling when there were any.
std::string PcapLine(const std::string& output, const nlohmann::json& facts);

}  // namespace vigil::ctl::cli
