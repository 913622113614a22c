#include "dataplane/export/file_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>

#include "dataplane/proto/event.h"
#include "dataplane/proto/hash.h"
#include "dataplane/proto/json_writer.h"
#include "dataplane/proto/tsch.h"

namespace vigil::dp {

struct FileStore::OpenFile {
  FileKey key{};
  bool have_meta = false;
  FileMetaRecord meta{};
  std::string name, share, context;
  int fd = -1;
  std::string tmp_path;
  std::map<uint64_t, uint64_t> ranges;  // covered [begin, end), disjoint and not touching
  bool gap_record = false;              // a kEventFileGap arrived
  bool error = false;
  uint64_t last_ns = 0;   // packet time of the last record (for the idle timeout)
  uint64_t activity = 0;  // order of the last record (for max_open)
};

namespace {

constexpr size_t kIoBlock = size_t{64} * 1024;

bool EndsWithNoCase(std::string_view s, std::string_view suffix) {
  if (s.size() < suffix.size()) return false;
  for (size_t i = 0; i < suffix.size(); ++i) {
    char c = s[s.size() - suffix.size() + i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
    if (c != suffix[i]) return false;
  }
  return true;
}

std::string Hex(const uint8_t* p, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    s[2 * i] = kHex[p[i] >> 4];
    s[2 * i + 1] = kHex[p[i] & 15];
  }
  return s;
}

bool WriteAll(int fd, const uint8_t* p, size_t n, uint64_t off) {
  while (n > 0) {
    const ssize_t w = pwrite(fd, p, n, static_cast<off_t>(off));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
    off += static_cast<uint64_t>(w);
  }
  return true;
}

}  // namespace

bool FileStore::KeyLess::operator()(const FileKey& a, const FileKey& b) const {
  return std::memcmp(&a, &b, sizeof a) < 0;
}

FileStore::FileStore(FileStoreOptions options, EventFn emit)
    : options_(std::move(options)), emit_(std::move(emit)) {}

FileStore::~FileStore() { CloseAll(); }

std::string FileStore::PathFor(const std::string& sha256_hex) const {
  return options_.dir + "/" + sha256_hex.substr(0, 2) + "/" + sha256_hex;
}

std::string FileStore::Open() {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path tmp = fs::path(options_.dir) / "tmp";
  fs::create_directories(tmp, ec);
  if (ec) return "outputs.files.dir: cannot create " + tmp.string() + ": " + ec.message();
  // Leftovers of a previous run that stopped mid-file: never reported, not worth keeping.
  for (const fs::directory_entry& e : fs::directory_iterator(tmp, ec)) fs::remove(e.path(), ec);
  used_bytes_ = 0;
  for (const fs::directory_entry& d : fs::directory_iterator(options_.dir, ec)) {
    const std::string n = d.path().filename().string();
    if (n.size() != 2 || !d.is_directory(ec)) continue;
    for (const fs::directory_entry& f : fs::directory_iterator(d.path(), ec)) {
      if (f.is_regular_file(ec)) used_bytes_ += f.file_size(ec);
    }
  }
  if (access(options_.dir.c_str(), W_OK) != 0) {
    return "outputs.files.dir: cannot write to " + options_.dir + ": " + std::strerror(errno);
  }
  return "";
}

FileStore::OpenFile* FileStore::Get(const FileKey& key, bool create) {
  auto it = files_.find(key);
  if (it != files_.end()) return it->second.get();
  if (!create) return nullptr;
  if (files_.size() >= options_.max_open) {
    // Too many at once: the least recently active one is finished now.
    auto oldest = files_.begin();
    for (auto i = files_.begin(); i != files_.end(); ++i) {
      if (i->second->activity < oldest->second->activity) oldest = i;
    }
    ++counters_.idle_closed;
    Finish(oldest->first, false);
  }
  auto f = std::make_unique<OpenFile>();
  f->key = key;
  f->last_ns = latest_ns_;
  ++counters_.opened;
  return files_.emplace(key, std::move(f)).first->second.get();
}

void FileStore::ApplyMeta(OpenFile* f, const FileMetaRecord& m, std::span<const uint8_t> tail) {
  const char* p = reinterpret_cast<const char*>(tail.data());
  f->have_meta = true;
  f->meta = m;
  if (m.name_len > 0 || f->name.empty()) f->name.assign(p, m.name_len);
  if (m.share_len > 0 || f->share.empty()) f->share.assign(p + m.name_len, m.share_len);
  if (m.context_len > 0) f->context.assign(p + m.name_len + m.share_len, m.context_len);
  if (m.event.ts_ns > latest_ns_) latest_ns_ = m.event.ts_ns;
}

bool FileStore::OnRecord(uint32_t kind, std::span<const uint8_t> payload) {
  if (kind == kEventFileData || kind == kEventFileGap) {
    FileDataRecord r;
    if (payload.size() < sizeof r) {
      ++counters_.bad_records;
      return false;
    }
    std::memcpy(&r, payload.data(), sizeof r);
    if (kind == kEventFileData && payload.size() != sizeof r + r.length) {
      ++counters_.bad_records;
      return false;
    }
    if (finished_.count(r.key) != 0) {
      ++counters_.late_records;
      return true;
    }
    OpenFile* f = Get(r.key, true);
    f->last_ns = latest_ns_;
    f->activity = ++activity_;
    if (kind == kEventFileGap) {
      f->gap_record = true;
      return true;
    }
    uint64_t len = r.length;
    if (r.offset >= options_.max_file_bytes) return true;
    if (len > options_.max_file_bytes - r.offset) len = options_.max_file_bytes - r.offset;
    if (len == 0 || f->error) return true;
    if (f->fd < 0) {
      f->tmp_path =
          options_.dir + "/tmp/" + std::to_string(getpid()) + "." + std::to_string(++tmp_seq_);
      f->fd = ::open(f->tmp_path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      if (f->fd < 0) {
        f->error = true;
        return true;
      }
    }
    if (!WriteAll(f->fd, payload.data() + sizeof r, len, r.offset)) {
      f->error = true;
      return true;
    }
    // Merge [b, e) into the covered ranges.
    uint64_t b = r.offset, e = r.offset + len;
    auto it = f->ranges.upper_bound(b);
    if (it != f->ranges.begin() && std::prev(it)->second >= b) --it;
    while (it != f->ranges.end() && it->first <= e) {
      b = std::min(b, it->first);
      e = std::max(e, it->second);
      it = f->ranges.erase(it);
    }
    f->ranges.emplace(b, e);
    return true;
  }
  if (kind == kEventFileOpen || kind == kEventFileClose) {
    FileMetaRecord m;
    if (payload.size() < sizeof m) {
      ++counters_.bad_records;
      return false;
    }
    std::memcpy(&m, payload.data(), sizeof m);
    if (payload.size() != sizeof m + size_t{m.name_len} + m.share_len + m.context_len) {
      ++counters_.bad_records;
      return false;
    }
    if (finished_.count(m.key) != 0) {
      ++counters_.late_records;
      if (kind == kEventFileClose) finished_.erase(m.key);  // the key may be used again
      return true;
    }
    OpenFile* f = Get(m.key, true);
    ApplyMeta(f, m, payload.subspan(sizeof m));
    f->last_ns = latest_ns_;
    f->activity = ++activity_;
    if (kind == kEventFileClose) Finish(m.key, true);
    return true;
  }
  ++counters_.bad_records;
  return false;
}

void FileStore::OnFlowEnd(uint64_t flow_id) {
  std::vector<FileKey> keys;
  for (const auto& [k, f] : files_) {
    if (k.flow_id == flow_id) keys.push_back(k);
  }
  for (const FileKey& k : keys) Finish(k, false);
  // A flow id is never reused within a run: its finished keys can go.
  for (auto it = finished_.begin(); it != finished_.end();) {
    it = it->flow_id == flow_id ? finished_.erase(it) : std::next(it);
  }
}

void FileStore::Expire(uint64_t now_ns) {
  if (now_ns > latest_ns_) latest_ns_ = now_ns;
  std::vector<FileKey> keys;
  for (const auto& [k, f] : files_) {
    if (latest_ns_ > f->last_ns && latest_ns_ - f->last_ns > options_.idle_timeout_ns) {
      keys.push_back(k);
    }
  }
  for (const FileKey& k : keys) {
    ++counters_.idle_closed;
    Finish(k, false);
  }
}

void FileStore::CloseAll() {
  std::vector<FileKey> keys;
  for (const auto& [k, f] : files_) keys.push_back(k);
  for (const FileKey& k : keys) Finish(k, false);
}

void FileStore::Finish(const FileKey& key, bool closed_now) {
  auto it = files_.find(key);
  if (it == files_.end()) return;
  std::unique_ptr<OpenFile> owned = std::move(it->second);
  files_.erase(it);
  OpenFile& f = *owned;
  const uint32_t flags = f.have_meta ? f.meta.flags : 0;
  const bool not_wanted = (flags & kFileNotStored) != 0;
  const uint64_t covered_end = f.ranges.empty() ? 0 : f.ranges.rbegin()->second;
  const uint64_t seen_end = f.have_meta ? f.meta.seen_end : 0;
  uint64_t expected_end = covered_end;
  if (!not_wanted) {
    const uint64_t seen = std::min(seen_end, options_.max_file_bytes);
    if (seen > expected_end) expected_end = seen;
  }
  const bool truncated =
      (flags & kFileTruncated) != 0 || (!not_wanted && seen_end > options_.max_file_bytes);
  bool gaps = (flags & (kFileGapSeen | kFileRingLoss)) != 0 || f.gap_record;
  if (!not_wanted) {
    uint64_t pos = 0;
    for (const auto& [b, e] : f.ranges) {
      if (b > pos) gaps = true;
      pos = e;
    }
    if (pos < expected_end) gaps = true;
  }
  const bool closed = (flags & kFileClosed) != 0;

  std::string sha, task_json;
  bool stored = false;
  bool error = f.error;
  const uint64_t size = not_wanted ? seen_end : expected_end;
  if (!not_wanted && !error) {
    proto::Sha256 hasher;
    std::vector<uint8_t> job;
    const bool is_job = EndsWithNoCase(f.name, ".job") && size <= kJobParseMaxBytes && size > 0;
    if (f.fd >= 0) {
      // Holes (gaps) read back as zeros, up to the size the parser saw.
      if (ftruncate(f.fd, static_cast<off_t>(size)) != 0) error = true;
      std::vector<uint8_t> buf(kIoBlock);
      for (uint64_t off = 0; off < size && !error;) {
        const ssize_t n = pread(f.fd, buf.data(), buf.size(), static_cast<off_t>(off));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
          error = true;
          break;
        }
        hasher.Update({buf.data(), static_cast<size_t>(n)});
        if (is_job) job.insert(job.end(), buf.begin(), buf.begin() + n);
        off += static_cast<uint64_t>(n);
      }
    }
    if (!error) {
      const proto::Sha256::Digest d = hasher.Final();
      sha = Hex(d.data(), d.size());
      if (is_job) {
        auto info = std::make_unique<proto::JobInfo>();
        proto::ParseJobFile(job, info.get());
        char buf[16384];
        proto::JsonWriter w(buf, sizeof buf);
        proto::WriteTaskJson(w, *info);
        task_json.assign(w.view());
        ++counters_.tasks;
      }
      if (f.fd >= 0 && size > 0) {
        const std::string target = PathFor(sha);
        std::error_code ec;
        struct stat st;
        if (::stat(target.c_str(), &st) == 0) {
          stored = true;  // the same content is there already
          ++counters_.deduplicated;
        } else if (used_bytes_ + size > options_.max_total_bytes) {
          ++counters_.store_full;
        } else {
          std::filesystem::create_directories(options_.dir + "/" + sha.substr(0, 2), ec);
          if (!ec && ::rename(f.tmp_path.c_str(), target.c_str()) == 0) {
            stored = true;
            used_bytes_ += size;
            ++counters_.stored;
            f.tmp_path.clear();
          } else {
            error = true;
          }
        }
      }
    }
  }
  if (f.fd >= 0) ::close(f.fd);
  if (!f.tmp_path.empty()) ::unlink(f.tmp_path.c_str());
  if (error) sha.clear();

  const std::string state = error ? "ERROR" : (truncated || !closed) ? "TRUNCATED" : "CLOSED";
  const bool read = key.direction == static_cast<uint8_t>(proto::Direction::kToClient);
  // A read is complete when it covered the whole file as the open reported it; a write when it
  // was closed without holes (its size is what was written).
  const bool complete = state == "CLOSED" && !gaps && !not_wanted &&
                        (!read || ((flags & kFileSizeKnown) != 0 && f.meta.file_size == size));
  if (not_wanted) ++counters_.not_wanted;
  if (state == "TRUNCATED") ++counters_.truncated;
  if (error) ++counters_.errors;
  if (gaps) ++counters_.with_gaps;
  Emit(f, state, gaps, stored, size, sha, complete, task_json);

  if (!closed_now) {
    // Its close may still come (the idle timeout, max_open): ignore it then.
    finished_.insert(key);
    finished_order_.push_back(key);
    while (finished_order_.size() > 4096) {
      finished_.erase(finished_order_.front());
      finished_order_.pop_front();
    }
  }
}

void FileStore::Emit(const OpenFile& f, const std::string& state, bool gaps, bool stored,
                     uint64_t size, const std::string& sha, bool complete,
                     const std::string& task_json) {
  const bool read = f.key.direction == static_cast<uint8_t>(proto::Direction::kToClient);
  const std::string name = f.name.empty() && read ? std::string("<unknown>") : f.name;
  char buf[8192];
  proto::JsonWriter w(buf, sizeof buf);
  w.ObjectBegin("fileinfo");
  w.Str("filename", name);
  w.Bool("gaps", gaps);
  w.Str("state", state);
  if (!sha.empty()) w.Str("sha256", sha);
  w.Bool("stored", stored);
  w.Uint("size", size);
  w.Uint("tx_id", f.have_meta ? f.meta.tx_id : 0);
  w.Uint("file_id", next_file_id_++);
  w.Str("direction", proto::DirectionName(static_cast<proto::Direction>(f.key.direction & 1)));
  w.Str("operation", read ? "read" : "write");
  w.Str("share", f.share);
  w.Bool("complete", complete);
  w.ObjectEnd();

  std::string body = f.context;
  if (!body.empty()) body.push_back(',');
  body.append(w.view());
  if (!task_json.empty()) body.append(",").append(task_json);

  std::string msg = read ? "FILE READ" : "FILE WRITE";
  if (!f.share.empty()) msg.append(" ").append(f.share);
  msg.append(" ").append(f.name.empty() ? "<unknown>" : f.name);
  msg.append(" ").append(std::to_string(size)).append(" bytes ");
  msg.append(complete               ? "complete"
             : state == "ERROR"     ? "error"
             : state == "TRUNCATED" ? "truncated"
             : gaps                 ? "gaps"
                                    : "partial");
  if (!sha.empty()) msg.append(" sha256 ").append(sha);
  if (!task_json.empty()) {
    // The task's command line, so that text search finds it in the message too.
    const size_t a = task_json.find("\"application\":\"");
    if (a != std::string::npos) {
      const size_t b = a + 15;
      size_t e = b;
      while (e < task_json.size() && task_json[e] != '"') e += task_json[e] == '\\' ? 2 : 1;
      std::string app = task_json.substr(b, std::min(e, task_json.size()) - b);
      std::string unescaped;
      for (size_t i = 0; i < app.size(); ++i) {
        if (app[i] == '\\' && i + 1 < app.size()) ++i;
        unescaped.push_back(app[i]);
      }
      msg.append(" task ").append(unescaped);
    }
  }
  if (msg.size() > 1024) msg.resize(1024);

  AppEventHeader h{};
  if (f.have_meta) {
    h = f.meta.event;
  } else {
    h.flow_id = f.key.flow_id;
    h.worker = f.key.worker;
    h.ts_ns = latest_ns_;
  }
  constexpr std::string_view kType = "fileinfo";
  h.direction = f.key.direction;
  h.flags = w.truncated() ? kAppEventTruncated : 0;
  h.type_len = static_cast<uint16_t>(kType.size());
  h.body_len = static_cast<uint32_t>(body.size());
  h.message_len = static_cast<uint16_t>(msg.size());
  std::vector<uint8_t> rec(sizeof h);
  std::memcpy(rec.data(), &h, sizeof h);
  rec.insert(rec.end(), kType.begin(), kType.end());
  rec.insert(rec.end(), body.begin(), body.end());
  rec.insert(rec.end(), msg.begin(), msg.end());
  ++counters_.events;
  if (emit_) emit_(rec);
}

}  // namespace vigil::dp
