// EVE JSON output: one line per event, with Suricata's field names, appended to a file.
//
// Thread: the exporter (main) thread only; blocks on file I/O, which is why workers never call it.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "dataplane/export/event_record.h"
#include "dataplane/flow/flow_table.h"

namespace vigil::dp {

// "2017-12-20T16:48:44.343469+0000" (Suricata's EVE timestamp format, UTC).
std::string FormatEveTime(uint64_t ns);
// Dotted quad for IPv4 (from its IPv4-mapped form when ip_version is 4), RFC 5952 text for IPv6.
std::string FormatAddr(const uint8_t addr[16], uint8_t ip_version);
const char* ProtoName(uint8_t proto);
// Appends `s` as a JSON string literal (quotes, backslashes and control characters escaped).
void AppendJsonString(std::string* out, const std::string& s);

// Appends one EVE `flow` event (no trailing newline) to `out`.
void AppendFlowEve(const FlowRecord& rec, const std::string& host, std::string* out);

// Appends one protocol event (smb, dns, ..., anomaly) from its ring record (AppEventHeader followed
// by its bytes). Returns false, appending nothing, when the record is malformed.
bool AppendAppEve(std::span<const uint8_t> record, const std::string& host, std::string* out);

class EveWriter {
 public:
  EveWriter() = default;
  ~EveWriter();
  EveWriter(const EveWriter&) = delete;
  EveWriter& operator=(const EveWriter&) = delete;

  // Opens `path` for appending (creating parent directories). Returns "" or an error.
  std::string Open(const std::string& path, const std::string& host);
  void Write(const FlowRecord& rec);
  // A kEventApp ring record; malformed ones are counted in bad_records.
  void WriteApp(std::span<const uint8_t> record);
  void Flush();
  void Close();
  // Also hands every line (without its newline) to `hook`, e.g. the event channel to control.
  // Lines are formatted even when no file is open.
  void set_line_hook(std::function<void(std::string_view)> hook) { hook_ = std::move(hook); }

  uint64_t records() const { return records_; }
  uint64_t write_errors() const { return write_errors_; }
  uint64_t bad_records() const { return bad_records_; }
  const std::string& path() const { return path_; }

 private:
  FILE* file_ = nullptr;
  std::string path_;
  std::string host_;
  std::string line_;
  uint64_t records_ = 0;
  uint64_t write_errors_ = 0;
  uint64_t bad_records_ = 0;
  std::function<void(std::string_view)> hook_;
  void WriteLine();
};

}  // namespace vigil::dp
