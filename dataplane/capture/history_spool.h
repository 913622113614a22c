// Packet history beyond memory, and export. A HistorySpool owns the on-disk part of the packet
// history and serves exports over both parts:
//
//  - Spool() moves the records every worker appended to its PacketHistory ring since the last
//    call into per-worker segment files `<dir>/seg-RRRRRR-wWWW-NNNNNN.pcap` (RRRRRR: the spooler
//    run, WWW: the worker, NNNNNN: the segment number in that run). Each segment is a valid pcap
//    (nanosecond variant, Ethernet) of at most segment_bytes, with a sidecar `.idx` written when
//    it is closed: first/last packet time, packets, first/last ring sequence, records lost
//    before it, and the sorted set of its IP addresses (up to kMaxIndexAddrs, else "any"), so an
//    export skips the segments that cannot hold its host. All segments together stay within
//    disk_bytes: the oldest are deleted first. Records overwritten in a ring before Spool()
//    reached them are counted as lost (sequence gaps), per segment and in total.
//  - Open() finds the segments of earlier runs (restart): a missing, stale or corrupt index is
//    rebuilt from the pcap; a pcap cut short (crash) is truncated to its last whole record; a
//    file that is not a pcap is reported and deleted first when space is needed.
//  - Export() writes the packets of one host (and optionally peer, port, protocol) in a time
//    window, from disk and from the memory rings, in time order and without duplicates (a record
//    both spooled and still in its ring is taken once, by its sequence number), to a pcap file
//    (temp file + rename), and reports which part of the window was no longer retained.
//
// Threads: the main thread (not a worker) calls Open, Spool and Close; Export may run on any
// non-worker thread at the same time (a mutex serialises it with Spool for the snapshot and the
// copy from the rings; the disk part runs unlocked, with deletions deferred). Every call may
// block on file I/O and allocates. Workers never call anything here; they only Append to their
// ring. A read-only spool (an export tool beside a running dataplane) never writes or deletes.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "dataplane/capture/history_config.h"
#include "dataplane/capture/history_filter.h"
#include "dataplane/capture/packet_history.h"
#include "dataplane/capture/pcap_file.h"

namespace vigil::dp {

inline constexpr size_t kMaxIndexAddrs = 4096;

struct SpoolOptions {
  bool spool = false;  // false: memory rings only (dir unused)
  std::string dir;
  uint64_t segment_bytes = 64ull << 20;  // clipped to disk_bytes / (2 * workers), min 1 MiB
  uint64_t disk_bytes = 10240ull << 20;
  bool read_only = false;  // never create, write, truncate or delete (export beside a writer)

  static SpoolOptions FromConfig(const HistoryConfig& config);
};

struct HistorySpoolCounters {
  uint64_t spooled_packets = 0;   // records written to segments
  uint64_t spooled_bytes = 0;     // their captured bytes
  uint64_t lost = 0;              // overwritten in a ring before they could be spooled
  uint64_t write_errors = 0;      // records not written (I/O error; see last_error())
  uint64_t segments_opened = 0;   // segment files created by this run
  uint64_t segments_deleted = 0;  // removed to stay within disk_bytes
  uint64_t indexes_rebuilt = 0;   // at Open: sidecar missing, stale or corrupt
  uint64_t corrupt_segments = 0;  // at Open: unreadable or cut short (see open_errors())
  uint64_t disk_bytes = 0;        // segments and indexes now on disk
  uint64_t segments = 0;          // segments now on disk
};

struct ExportResult {
  uint64_t packets = 0;             // written to the output
  uint64_t bytes = 0;               // captured bytes written
  uint64_t memory_packets = 0;      // of which taken from the memory rings
  uint64_t disk_packets = 0;        // of which taken from disk segments
  uint64_t oldest_retained_ns = 0;  // oldest packet still held (memory or disk); 0: none
  bool start_not_retained = false;  // [not_retained_from_ns, not_retained_to_ns) is gone
  uint64_t not_retained_from_ns = 0;
  uint64_t not_retained_to_ns = 0;
  uint64_t lost_records = 0;        // records lost before spooling in segments touching the window
  uint64_t segments_read = 0;       // segments opened for the window
  uint64_t segments_skipped = 0;    // segments in the window skipped by their address index
  std::vector<std::string> errors;  // unreadable or corrupt segments (skipped), output errors

  // One line for people: what was written and what part of the window was not retained.
  std::string Summary(uint64_t from_ns, uint64_t to_ns) const;
};

class HistorySpool {
 public:
  // `rings`: one per worker, index = worker id (may be empty: disk only). They must outlive the
  // spool. Start-up only.
  HistorySpool(SpoolOptions options, std::vector<PacketHistory*> rings);
  ~HistorySpool();  // Close()
  HistorySpool(const HistorySpool&) = delete;
  HistorySpool& operator=(const HistorySpool&) = delete;

  // Main thread, start-up: creates the directory, finds earlier segments (see above) and applies
  // the disk bound. "" or an error naming the directory. Problems with single files do not fail
  // Open: they are listed in open_errors() and counted.
  std::string Open();
  // Main thread, periodically (often enough that no ring laps between calls: a ring of R bytes
  // filled at B bytes/s laps in R/B seconds). Returns the records written.
  uint64_t Spool();
  // Main thread, shutdown: spools what is left, closes the active segments and writes their
  // indexes. Spool() may not be called afterwards.
  void Close();

  // Any non-worker thread. Packets matching `filter` with from_ns <= time <= to_ns, in time
  // order, into a new pcap at `out_path`. False (and r->errors says why) when the output could
  // not be written; unreadable segments are reported in r->errors but do not fail the export.
  bool Export(const HistoryFilter& filter, uint64_t from_ns, uint64_t to_ns,
              const std::string& out_path, ExportResult* r);

  HistorySpoolCounters counters() const;
  std::vector<std::string> open_errors() const;
  std::string last_error() const;
  uint64_t segment_bytes() const noexcept { return segment_bytes_; }

 private:
  using Addr = std::array<uint8_t, 16>;
  struct Segment;
  struct WorkerState;
  struct Candidate;

  std::string SegmentBase(uint32_t run, uint32_t worker, uint32_t number) const;
  void LoadSegment(const std::string& pcap_path, uint32_t run, uint32_t worker, uint32_t number);
  bool ReadIndex(Segment* seg) const;
  bool WriteIndex(Segment* seg);
  void RebuildIndex(Segment* seg);
  void SpoolRecord(size_t w, const HistoryRecordInfo& info, std::span<const uint8_t> frame,
                   uint64_t lost);
  bool OpenSegment(size_t w);
  void CloseSegment(size_t w);
  void EnforceDiskBound(uint64_t extra);
  static bool MayContain(const Segment& seg, const uint8_t addr[16]);

  SpoolOptions options_;
  std::vector<PacketHistory*> rings_;
  uint64_t segment_bytes_;
  uint32_t run_ = 1;
  bool closed_ = false;

  mutable std::mutex mu_;  // guards everything below; never held by a worker
  std::vector<std::unique_ptr<Segment>> segments_;
  std::vector<std::unique_ptr<WorkerState>> workers_;
  HistorySpoolCounters counters_;
  std::vector<std::string> open_errors_;
  std::string last_error_;
  int pins_ = 0;  // exports reading segment files: no deletion meanwhile (the bound may be
                  // exceeded by what is written during an export)
  bool open_failed_ = false;  // a segment could not be created during this Spool() call
  std::vector<uint8_t> frame_buf_;
};

}  // namespace vigil::dp
