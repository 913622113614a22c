// The exporter's side of file extraction: assembles the files the workers' FileTaps send
// (export/event_record.h: kEventFileOpen/Data/Gap/Close) into a content-addressed store and
// reports each one with an EVE `fileinfo` event (docs/events.md, "Files").
//
// Each open file is assembled in `<dir>/tmp/` with pwrite at its offset (pieces may come in any
// order and overlap; the covered ranges are tracked). A file is finished when its close record
// arrives, when its flow ends (OnFlowEnd), when it has been idle for `idle_timeout_ns` of packet
// time (Expire), when more than `max_open` files are open (the least recently active one), or at
// shutdown (CloseAll). Finishing hashes the assembled bytes (SHA-256) and moves them to
// `<dir>/<sha256[0:2]>/<sha256>`: the same content is stored once. When the store holds
// `max_total_bytes` already, the file is not stored (`fileinfo.stored` false, counted). A `.job`
// file (name ending, any case) of at most kJobParseMaxBytes is decoded (proto/tsch.h) and its
// `task` object is added to the event.
//
// Thread: the exporter thread only (not a worker). Blocks on file I/O and allocates. DPDK-free.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "dataplane/export/event_record.h"

namespace vigil::dp {

inline constexpr uint64_t kJobParseMaxBytes = uint64_t{64} * 1024;

struct FileStoreOptions {
  std::string dir;                              // the store; created when missing
  uint64_t max_file_bytes = 100ull << 20;       // data past this is ignored (the tap clips too)
  uint64_t max_total_bytes = 10240ull << 20;    // bytes of stored files (the store is not pruned)
  uint64_t idle_timeout_ns = 3600'000'000'000;  // packet time without records before finishing
  size_t max_open = 1024;                       // files assembled at once (one descriptor each)
};

struct FileStoreCounters {
  uint64_t opened = 0;        // files assembled (or reported without data)
  uint64_t events = 0;        // fileinfo events emitted
  uint64_t stored = 0;        // new files moved into the store
  uint64_t deduplicated = 0;  // content already in the store
  uint64_t store_full = 0;    // not stored: max_total_bytes reached
  uint64_t not_wanted = 0;    // reported without data (extension list)
  uint64_t truncated = 0;     // state TRUNCATED
  uint64_t with_gaps = 0;     // fileinfo.gaps true
  uint64_t errors = 0;        // I/O errors (state ERROR)
  uint64_t idle_closed = 0;   // finished by the idle timeout or max_open
  uint64_t bad_records = 0;   // malformed file records (a bug if ever non-zero)
  uint64_t late_records = 0;  // records of a file already finished (idle timeout, flow end)
  uint64_t tasks = 0;         // .job files decoded into a task object
};

class FileStore {
 public:
  // Receives each fileinfo event as a kEventApp ring record (AppEventHeader, type, body,
  // message), ready for EveWriter::WriteApp.
  using EventFn = std::function<void(std::span<const uint8_t> record)>;

  FileStore(FileStoreOptions options, EventFn emit);
  ~FileStore();  // finishes open files (CloseAll)
  FileStore(const FileStore&) = delete;
  FileStore& operator=(const FileStore&) = delete;

  // Creates `<dir>` and `<dir>/tmp`, removes leftovers in tmp, and sums what the store holds.
  // Returns "" or an error naming the path.
  std::string Open();

  // One ring record of kind kEventFileOpen/Data/Gap/Close. False (and counted) when malformed.
  bool OnRecord(uint32_t kind, std::span<const uint8_t> payload);
  // The flow ended: its files still open are finished (TRUNCATED: no close was seen).
  void OnFlowEnd(uint64_t flow_id);
  // Finishes files idle for longer than the timeout, in packet time: `now_ns` is the latest
  // packet time the exporter has seen (0: use the latest record time).
  void Expire(uint64_t now_ns = 0);
  // Shutdown: finishes every open file.
  void CloseAll();

  const FileStoreCounters& counters() const { return counters_; }
  uint64_t used_bytes() const { return used_bytes_; }
  size_t open_files() const { return files_.size(); }
  const std::string& dir() const { return options_.dir; }

  // "<dir>/ab/ab12..." for a lower-case hex SHA-256.
  std::string PathFor(const std::string& sha256_hex) const;

 private:
  struct OpenFile;
  struct KeyLess {
    bool operator()(const FileKey& a, const FileKey& b) const;
  };

  OpenFile* Get(const FileKey& key, bool create);
  void ApplyMeta(OpenFile* f, const FileMetaRecord& m, std::span<const uint8_t> tail);
  void Finish(const FileKey& key, bool closed_now);
  void Emit(const OpenFile& f, const std::string& state, bool gaps, bool stored, uint64_t size,
            const std::string& sha, bool complete, const std::string& task_json);

  FileStoreOptions options_;
  EventFn emit_;
  std::map<FileKey, std::unique_ptr<OpenFile>, KeyLess> files_;
  // Keys of files finished without their close record, so a late close is not reported again.
  std::set<FileKey, KeyLess> finished_;
  std::deque<FileKey> finished_order_;
  uint64_t used_bytes_ = 0;
  uint64_t latest_ns_ = 0;
  uint64_t next_file_id_ = 1;
  uint64_t tmp_seq_ = 0;
  uint64_t activity_ = 0;
  FileStoreCounters counters_;
};

}  // namespace vigil::dp
