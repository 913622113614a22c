// The worker's side of file extraction: an SmbFileObserver that turns the file bytes an SMB
// parser sees (non-pipe READ responses and WRITE requests) into file records on the worker's
// event ring (export/event_record.h: kEventFileOpen, kEventFileData, kEventFileGap,
// kEventFileClose). The exporter assembles and stores them (export/file_store.h).
//
// Thread: the worker that owns the SessionManager (one FileTap per worker). Never blocks, never
// allocates after construction, never does file I/O. Limits are applied here, so the ring only
// carries what will be stored: data at or past `max_file_mb` is not sent (the file is marked
// truncated), files whose name does not end in an allowed extension send only their open and
// close records. A full ring loses the chunk (counted; the file is marked kFileRingLoss and the
// exporter reports the range as a gap), never stalls the worker.
//
// Open files are remembered in a fixed table (kFileTapSlots, probed over kFileTapProbe slots
// from the key's hash); a file that finds no room evicts the least recently used entry of its
// probe window, whose flags (truncated, gaps) are then lost for its close record (counted).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "dataplane/app/config.h"
#include "dataplane/export/event_record.h"
#include "dataplane/export/event_ring.h"
#include "dataplane/proto/smb.h"

namespace vigil::dp {

inline constexpr uint32_t kFileTapSlots = 512;  // open files tracked per worker
inline constexpr uint32_t kFileTapProbe = 16;
inline constexpr uint32_t kFileChunkBytes = 16384;  // data bytes per ring record at most

struct FileTapCounters {
  uint64_t files = 0;           // files seen (open records, or closes of files never seen)
  uint64_t not_wanted = 0;      // files skipped by the extension list
  uint64_t truncated = 0;       // files that reached max_file_mb
  uint64_t gaps = 0;            // capture gaps inside file data
  uint64_t chunks = 0;          // data records enqueued
  uint64_t bytes = 0;           // file bytes enqueued
  uint64_t chunks_dropped = 0;  // data records lost to a full ring
  uint64_t meta_dropped = 0;    // open/close/gap records lost to a full ring
  uint64_t evicted = 0;         // table entries evicted while their file was open
};

class FileTap final : public proto::SmbFileObserver {
 public:
  // Supplies the identity of the flow whose bytes are being parsed (the session layer's event
  // carrier): false when no flow is bound.
  class Context {
   public:
    virtual bool FileIdentity(AppEventHeader* h) const noexcept = 0;

   protected:
    ~Context() = default;
  };

  // `ring` may be nullptr (records are counted as dropped). Start-up only (allocates).
  FileTap(const FilesConfig& config, uint16_t worker, EventRing* ring, const Context* ctx);

  void OnFileData(const proto::SmbFileRef& file, uint64_t offset,
                  std::span<const uint8_t> data) noexcept override;
  void OnFileGap(const proto::SmbFileRef& file, uint64_t offset, uint32_t n) noexcept override;
  void OnFileClose(const proto::SmbFileRef& file) noexcept override;

  const FileTapCounters& counters() const noexcept { return counters_; }
  // True when a file with this name is extracted (the extension list allows it).
  bool Wanted(std::string_view name) const noexcept;

 private:
  struct Entry {
    FileKey key;
    uint64_t seen_end;
    uint32_t flags;  // kFileTruncated, kFileGapSeen, kFileRingLoss, kFileNotStored
    uint32_t age;
    bool used;
  };

  bool MakeKey(const proto::SmbFileRef& file, FileKey* key) const noexcept;
  Entry* Find(const FileKey& key) noexcept;
  Entry* Open(const proto::SmbFileRef& file, const FileKey& key) noexcept;
  // kEventFileOpen / kEventFileClose. Returns false when the ring refused it.
  bool PushMeta(uint32_t kind, const proto::SmbFileRef& file, const FileKey& key,
                const Entry* e) noexcept;
  void PushGap(const FileKey& key, uint64_t offset, uint64_t n) noexcept;
  // The `"smb":{...}` members of a close record, into context_.
  std::string_view SmbContext(const proto::SmbFileRef& file) noexcept;

  uint16_t worker_;
  uint64_t max_file_bytes_;
  std::vector<std::string> extensions_;  // ".exe", lower case
  EventRing* ring_;
  const Context* ctx_;
  std::vector<Entry> table_;  // kFileTapSlots, sized at construction
  uint32_t clock_ = 0;
  FileTapCounters counters_;
  char context_[2048];
};

}  // namespace vigil::dp
