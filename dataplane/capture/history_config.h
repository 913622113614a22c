// Packet history settings (the `history:` section of vigil.yaml, docs/evidence.md "Packet
// history"). Plain data: the config loader fills it, the dataplane sizes one PacketHistory ring
// per worker from it and, when `spool` is set, runs a HistorySpool on the main thread.
//
// Thread: start-up only (read-only afterwards). Never blocks.
#pragma once

#include <cstdint>
#include <string>

namespace vigil::dp {

// Largest number of bytes kept of one frame (and the pcap snaplen written in exports).
inline constexpr uint32_t kHistoryMaxSnaplen = 65535;

struct HistoryConfig {
  bool enabled = true;                    // every worker keeps a memory ring of what it forwards
  uint32_t memory_mb_per_worker = 64;     // ring size (rounded down to a power of two; min 1)
  uint32_t snaplen = kHistoryMaxSnaplen;  // bytes kept per frame (64..65535)
  bool spool = false;                     // also move the rings' records to disk segments
  std::string dir = "/var/lib/vigil/history";  // segment directory (created when missing)
  uint32_t segment_mb = 64;  // one pcap segment file per worker rotates at this size
  uint32_t disk_mb = 10240;  // all segments together; the oldest are deleted first

  bool operator==(const HistoryConfig&) const = default;
};

// "" or what is wrong, naming the field (for the config loader, which adds file and line).
// Segments larger than disk_mb / (2 x workers) are made smaller, not refused.
inline std::string ValidateHistoryConfig(const HistoryConfig& c) {
  if (!c.enabled) return "";
  if (c.memory_mb_per_worker == 0) return "history.memory_mb_per_worker: must be at least 1";
  if (c.snaplen < 64 || c.snaplen > kHistoryMaxSnaplen)
    return "history.snaplen: must be between 64 and 65535";
  if (!c.spool) return "";
  if (c.dir.empty()) return "history.dir: required when history.spool is true";
  if (c.segment_mb == 0) return "history.segment_mb: must be at least 1";
  if (c.disk_mb < 2) return "history.disk_mb: must be at least 2";
  return "";
}

}  // namespace vigil::dp
