// Packet history spooler and export. See history_spool.h.
#include "dataplane/capture/history_spool.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <queue>
#include <system_error>
#include <tuple>

namespace vigil::dp {

namespace fs = std::filesystem;

namespace {

constexpr char kIndexMagic[8] = {'V', 'G', 'H', 'I', 'D', 'X', '1', '\0'};
constexpr uint32_t kIndexVersion = 1;
constexpr uint32_t kIndexFlagAnyAddr = 1;  // more than kMaxIndexAddrs addresses: no skipping
constexpr uint64_t kMinSegmentBytes = 1ull << 20;

struct IndexHeader {
  char magic[8];
  uint32_t version;
  uint32_t flags;
  uint32_t run;
  uint32_t worker;
  uint32_t number;
  uint32_t n_addrs;
  uint64_t pcap_bytes;  // the pcap's size when the index was written: else the index is stale
  uint64_t first_ts;
  uint64_t last_ts;
  uint64_t packets;
  uint64_t first_seq;
  uint64_t last_seq;
  uint64_t lost;
};

uint64_t Fnv1a(const uint8_t* p, size_t n, uint64_t h = 0xcbf29ce484222325ull) noexcept {
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

uint64_t FileSize(const std::string& path) {
  std::error_code ec;
  const auto n = fs::file_size(path, ec);
  return ec ? 0 : n;
}

bool RemoveFile(const std::string& path) {
  std::error_code ec;
  return fs::remove(path, ec);
}

}  // namespace

struct HistorySpool::Segment {
  std::string base;  // path without ".pcap" / ".idx"
  uint32_t run = 0;
  uint32_t worker = 0;
  uint32_t number = 0;
  uint64_t pcap_bytes = 0;  // valid bytes (closed: the file's size; active: written so far)
  uint64_t idx_bytes = 0;
  uint64_t first_ts = UINT64_MAX;
  uint64_t last_ts = 0;
  uint64_t packets = 0;
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  uint64_t lost = 0;
  std::vector<Addr> addrs;      // sorted (closed segments)
  std::set<Addr> active_addrs;  // active segments
  bool any_addr = false;
  bool active = false;
  bool corrupt = false;  // not readable at all: skipped, deleted first
  std::string error;

  std::string pcap() const { return base + ".pcap"; }
  std::string idx() const { return base + ".idx"; }
  void AddAddrs(const PacketMeta& m, DecodeClass cls) {
    if (any_addr || cls == DecodeClass::kL2 || m.ip_version == 0) return;
    for (const uint8_t* a : {m.src_addr, m.dst_addr}) {
      Addr x;
      std::memcpy(x.data(), a, 16);
      if (active) {
        active_addrs.insert(x);
        if (active_addrs.size() > kMaxIndexAddrs) {
          any_addr = true;
          active_addrs.clear();
        }
      } else {
        addrs.push_back(x);
      }
    }
    // Rebuilding from a pcap: keep the list near its final size.
    if (!active && addrs.size() >= 8 * kMaxIndexAddrs) {
      std::sort(addrs.begin(), addrs.end());
      addrs.erase(std::unique(addrs.begin(), addrs.end()), addrs.end());
      if (addrs.size() > kMaxIndexAddrs) {
        any_addr = true;
        addrs.clear();
      }
    }
  }
  void AddRecord(uint64_t ts) {
    first_ts = std::min(first_ts, ts);
    last_ts = std::max(last_ts, ts);
    ++packets;
  }
};

struct HistorySpool::WorkerState {
  uint64_t pos = 0;          // read position in the ring
  uint64_t spooled_end = 0;  // every record with seq < spooled_end is on disk or lost
  PcapWriter writer;
  Segment* active = nullptr;
  uint32_t next_number = 1;
};

// One segment an export reads (copied out under the lock: the spooler keeps going).
struct HistorySpool::Candidate {
  std::string path;
  uint32_t run;
  uint32_t worker;
  uint32_t number;
  uint64_t limit;
};

SpoolOptions SpoolOptions::FromConfig(const HistoryConfig& c) {
  SpoolOptions o;
  o.spool = c.enabled && c.spool;
  o.dir = c.dir;
  o.segment_bytes = uint64_t{c.segment_mb} << 20;
  o.disk_bytes = uint64_t{c.disk_mb} << 20;
  return o;
}

std::string ExportResult::Summary(uint64_t from_ns, uint64_t to_ns) const {
  std::string s = std::to_string(packets) + " packets (" + std::to_string(bytes) + " bytes; " +
                  std::to_string(memory_packets) + " from memory, " + std::to_string(disk_packets) +
                  " from disk) in " + FormatHistoryTime(from_ns) + " .. " +
                  FormatHistoryTime(to_ns);
  if (oldest_retained_ns == 0) {
    s += "; nothing is retained: the whole window is not retained";
  } else if (start_not_retained) {
    s += "; not retained: " + FormatHistoryTime(not_retained_from_ns) + " .. " +
         FormatHistoryTime(not_retained_to_ns) +
         (not_retained_to_ns >= to_ns ? " (the whole window)" : "") + " (oldest retained " +
         FormatHistoryTime(oldest_retained_ns) + ")";
  } else {
    s += "; the whole window is retained";
  }
  if (lost_records != 0) {
    s += "; " + std::to_string(lost_records) +
         " packets near the window were lost before spooling (spooler fell behind)";
  }
  s += "; segments read " + std::to_string(segments_read) + ", skipped by index " +
       std::to_string(segments_skipped);
  if (!errors.empty()) {
    s += "; " + std::to_string(errors.size()) + " error(s): " + errors.front();
    if (errors.size() > 1) s += " ...";
  }
  return s;
}

HistorySpool::HistorySpool(SpoolOptions options, std::vector<PacketHistory*> rings)
    : options_(std::move(options)), rings_(std::move(rings)) {
  const uint64_t workers = std::max<uint64_t>(1, rings_.size());
  segment_bytes_ = std::min(options_.segment_bytes, options_.disk_bytes / (2 * workers));
  segment_bytes_ = std::max(segment_bytes_, kMinSegmentBytes);
  for (size_t w = 0; w < rings_.size(); ++w) {
    workers_.push_back(std::make_unique<WorkerState>());
    workers_.back()->pos = rings_[w]->OldestPosition();
  }
  frame_buf_.resize(kPcapMaxRecordBytes);
}

HistorySpool::~HistorySpool() { Close(); }

std::string HistorySpool::SegmentBase(uint32_t run, uint32_t worker, uint32_t number) const {
  char name[64];
  std::snprintf(name, sizeof name, "seg-%06u-w%03u-%06u", run, worker, number);
  return options_.dir + "/" + name;
}

std::string HistorySpool::Open() {
  std::lock_guard lock(mu_);
  if (!options_.spool) return "";
  std::error_code ec;
  if (!options_.read_only) {
    fs::create_directories(options_.dir, ec);
    if (ec) return "cannot create history directory " + options_.dir + ": " + ec.message();
  }
  if (!fs::is_directory(options_.dir, ec)) return "no history directory " + options_.dir;
  std::vector<std::tuple<uint32_t, uint32_t, uint32_t, std::string>> found;
  for (const auto& entry : fs::directory_iterator(options_.dir, ec)) {
    const std::string name = entry.path().filename().string();
    unsigned run, worker, number;
    char tail[8] = {};
    if (std::sscanf(name.c_str(), "seg-%6u-w%3u-%6u.%7s", &run, &worker, &number, tail) != 4)
      continue;
    const std::string ext = tail;
    if (SegmentBase(run, worker, number) + "." + ext != entry.path().string()) continue;
    if (ext == "pcap") {
      found.emplace_back(run, worker, number, entry.path().string());
    } else if (ext == "idx" && !options_.read_only &&
               !fs::exists(SegmentBase(run, worker, number) + ".pcap")) {
      RemoveFile(entry.path().string());  // the index of a segment deleted by a crash
    } else if (ext != "idx" && !options_.read_only) {
      RemoveFile(entry.path().string());  // ".tmp" leftovers of an index write
    }
  }
  if (ec) return "cannot list history directory " + options_.dir + ": " + ec.message();
  std::sort(found.begin(), found.end());
  for (const auto& [run, worker, number, path] : found) {
    LoadSegment(path, run, worker, number);
    run_ = std::max(run_, run + 1);
  }
  if (!options_.read_only) EnforceDiskBound(0);
  return "";
}

void HistorySpool::LoadSegment(const std::string& pcap_path, uint32_t run, uint32_t worker,
                               uint32_t number) {
  auto seg = std::make_unique<Segment>();
  seg->base = pcap_path.substr(0, pcap_path.size() - 5);
  seg->run = run;
  seg->worker = worker;
  seg->number = number;
  seg->pcap_bytes = FileSize(pcap_path);
  if (!ReadIndex(seg.get())) {
    RebuildIndex(seg.get());
    ++counters_.indexes_rebuilt;
    if (!seg->corrupt && !options_.read_only) WriteIndex(seg.get());
  }
  if (!seg->error.empty()) {
    open_errors_.push_back(seg->error);
    ++counters_.corrupt_segments;
  }
  counters_.disk_bytes += FileSize(seg->pcap()) + seg->idx_bytes;
  ++counters_.segments;
  segments_.push_back(std::move(seg));
}

bool HistorySpool::ReadIndex(Segment* seg) const {
  std::FILE* f = std::fopen(seg->idx().c_str(), "rb");
  if (f == nullptr) return false;
  std::vector<uint8_t> data;
  uint8_t chunk[65536];
  size_t n;
  while ((n = std::fread(chunk, 1, sizeof chunk, f)) > 0) {
    data.insert(data.end(), chunk, chunk + n);
    if (data.size() > sizeof(IndexHeader) + (kMaxIndexAddrs + 1) * 16 + 8) break;
  }
  std::fclose(f);
  IndexHeader h;
  if (data.size() < sizeof h + 8) return false;
  std::memcpy(&h, data.data(), sizeof h);
  if (std::memcmp(h.magic, kIndexMagic, 8) != 0 || h.version != kIndexVersion ||
      h.n_addrs > kMaxIndexAddrs || data.size() != sizeof h + h.n_addrs * 16ull + 8)
    return false;
  uint64_t sum;
  std::memcpy(&sum, data.data() + data.size() - 8, 8);
  if (sum != Fnv1a(data.data(), data.size() - 8)) return false;
  if (h.pcap_bytes != seg->pcap_bytes || h.run != seg->run || h.worker != seg->worker ||
      h.number != seg->number)
    return false;
  seg->first_ts = h.first_ts;
  seg->last_ts = h.last_ts;
  seg->packets = h.packets;
  seg->first_seq = h.first_seq;
  seg->last_seq = h.last_seq;
  seg->lost = h.lost;
  seg->any_addr = (h.flags & kIndexFlagAnyAddr) != 0;
  seg->addrs.resize(h.n_addrs);
  if (h.n_addrs != 0) std::memcpy(seg->addrs.data(), data.data() + sizeof h, h.n_addrs * 16ull);
  seg->idx_bytes = data.size();
  return true;
}

bool HistorySpool::WriteIndex(Segment* seg) {
  IndexHeader h{};
  std::memcpy(h.magic, kIndexMagic, 8);
  h.version = kIndexVersion;
  h.flags = seg->any_addr ? kIndexFlagAnyAddr : 0;
  h.run = seg->run;
  h.worker = seg->worker;
  h.number = seg->number;
  h.n_addrs = static_cast<uint32_t>(seg->addrs.size());
  h.pcap_bytes = seg->pcap_bytes;
  h.first_ts = seg->first_ts;
  h.last_ts = seg->last_ts;
  h.packets = seg->packets;
  h.first_seq = seg->first_seq;
  h.last_seq = seg->last_seq;
  h.lost = seg->lost;
  std::vector<uint8_t> data(sizeof h + seg->addrs.size() * 16);
  std::memcpy(data.data(), &h, sizeof h);
  if (!seg->addrs.empty())
    std::memcpy(data.data() + sizeof h, seg->addrs.data(), data.size() - sizeof h);
  const uint64_t sum = Fnv1a(data.data(), data.size());
  const uint8_t* sp = reinterpret_cast<const uint8_t*>(&sum);
  data.insert(data.end(), sp, sp + 8);
  const std::string tmp = seg->idx() + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  bool ok = f != nullptr && std::fwrite(data.data(), data.size(), 1, f) == 1;
  if (f != nullptr && std::fclose(f) != 0) ok = false;
  if (ok && std::rename(tmp.c_str(), seg->idx().c_str()) != 0) ok = false;
  if (!ok) {
    last_error_ = "cannot write index " + seg->idx() + ": " + std::strerror(errno);
    RemoveFile(tmp);
    return false;
  }
  counters_.disk_bytes += data.size();
  counters_.disk_bytes -= std::min(counters_.disk_bytes, seg->idx_bytes);
  seg->idx_bytes = data.size();
  return true;
}

void HistorySpool::RebuildIndex(Segment* seg) {
  seg->first_ts = UINT64_MAX;
  seg->last_ts = 0;
  seg->packets = 0;
  seg->first_seq = seg->last_seq = seg->lost = 0;
  seg->addrs.clear();
  seg->any_addr = false;
  seg->idx_bytes = FileSize(seg->idx());
  PcapReader reader;
  const std::string err = reader.Open(seg->pcap());
  if (!err.empty()) {
    seg->corrupt = true;
    seg->first_ts = 0;
    seg->error = "segment skipped: " + err;
    return;
  }
  if (reader.linktype() != kPcapLinkEthernet) {
    seg->corrupt = true;
    seg->first_ts = 0;
    seg->error = "segment skipped: " + seg->pcap() + ": link type " +
                 std::to_string(reader.linktype()) + " is not Ethernet";
    return;
  }
  uint64_t ts;
  uint32_t cap, wire;
  PcapReader::Result res;
  while ((res = reader.Next(&ts, &cap, &wire, frame_buf_)) == PcapReader::Result::kOk) {
    seg->AddRecord(ts);
    PacketMeta meta;
    const DecodeClass cls =
        DecodeCaptured(std::span<const uint8_t>(frame_buf_.data(), cap), wire, &meta);
    seg->AddAddrs(meta, cls);
  }
  std::sort(seg->addrs.begin(), seg->addrs.end());
  seg->addrs.erase(std::unique(seg->addrs.begin(), seg->addrs.end()), seg->addrs.end());
  if (seg->addrs.size() > kMaxIndexAddrs) {
    seg->addrs.clear();
    seg->any_addr = true;
  }
  if (res != PcapReader::Result::kEnd) {
    const uint64_t cut = seg->pcap_bytes - reader.offset();
    seg->error = seg->pcap() + ": " +
                 (res == PcapReader::Result::kTruncated ? "cut short" : "corrupt record") +
                 " at byte " + std::to_string(reader.offset()) + "; " +
                 std::to_string(seg->packets) + " packets before it kept, " + std::to_string(cut) +
                 " bytes after it " + (options_.read_only ? "ignored" : "removed");
    if (!options_.read_only) {
      std::error_code ec;
      fs::resize_file(seg->pcap(), reader.offset(), ec);
    }
    seg->pcap_bytes = reader.offset();
  }
  if (seg->packets == 0) seg->first_ts = seg->last_ts = 0;
}

bool HistorySpool::MayContain(const Segment& seg, const uint8_t addr[16]) {
  if (seg.any_addr) return true;
  Addr a;
  std::memcpy(a.data(), addr, 16);
  if (seg.active) return seg.active_addrs.count(a) != 0;
  return std::binary_search(seg.addrs.begin(), seg.addrs.end(), a);
}

uint64_t HistorySpool::Spool() {
  std::lock_guard lock(mu_);
  if (!options_.spool || options_.read_only || closed_) return 0;
  uint64_t written = 0;
  open_failed_ = false;
  HistoryRecordInfo info;
  for (size_t w = 0; w < rings_.size(); ++w) {
    WorkerState& ws = *workers_[w];
    PacketHistory& ring = *rings_[w];
    // At most one ring's worth per call, so that a writer faster than the disk cannot keep the
    // main thread here forever.
    const uint64_t budget = ring.capacity() / PacketHistory::kHeaderBytes;
    for (uint64_t i = 0; i < budget; ++i) {
      const auto res = ring.Read(&ws.pos, &info, frame_buf_);
      if (res == PacketHistory::ReadResult::kEnd) break;
      if (res == PacketHistory::ReadResult::kOverrun) continue;
      if (info.seq < ws.spooled_end) continue;
      const uint64_t lost = info.seq - ws.spooled_end;
      counters_.lost += lost;
      SpoolRecord(w, info, std::span<const uint8_t>(frame_buf_.data(), info.cap_len), lost);
      ws.spooled_end = info.seq + 1;
      ++written;
    }
    if (ws.active != nullptr && !ws.writer.Flush()) {
      ++counters_.write_errors;
      last_error_ = "cannot write " + ws.active->pcap() + ": " + std::strerror(errno);
      CloseSegment(w);
    }
  }
  return written;
}

void HistorySpool::SpoolRecord(size_t w, const HistoryRecordInfo& info,
                               std::span<const uint8_t> frame, uint64_t lost) {
  WorkerState& ws = *workers_[w];
  const uint64_t rec_bytes = kPcapRecordHeaderBytes + frame.size();
  if (ws.active != nullptr && ws.active->packets != 0 &&
      ws.active->pcap_bytes + rec_bytes > segment_bytes_)
    CloseSegment(w);
  // After a failed create, the rest of this Spool() call is not retried file by file.
  if (ws.active == nullptr && (open_failed_ || !OpenSegment(w))) {
    open_failed_ = true;
    ++counters_.write_errors;
    return;
  }
  Segment& seg = *ws.active;
  if (!ws.writer.Write(info.ts_ns, frame, info.wire_len)) {
    ++counters_.write_errors;
    last_error_ = "cannot write " + seg.pcap() + ": " + std::strerror(errno);
    CloseSegment(w);
    return;
  }
  if (seg.packets == 0) seg.first_seq = info.seq;
  seg.last_seq = info.seq;
  seg.lost += lost;
  seg.AddRecord(info.ts_ns);
  PacketMeta meta;
  seg.AddAddrs(meta, DecodeCaptured(frame, info.wire_len, &meta));
  counters_.disk_bytes += ws.writer.bytes() - seg.pcap_bytes;
  seg.pcap_bytes = ws.writer.bytes();
  ++counters_.spooled_packets;
  counters_.spooled_bytes += frame.size();
}

bool HistorySpool::OpenSegment(size_t w) {
  WorkerState& ws = *workers_[w];
  // Room for the segment and, later, its index.
  EnforceDiskBound(segment_bytes_ + sizeof(IndexHeader) + kMaxIndexAddrs * 16 + 8);
  auto seg = std::make_unique<Segment>();
  seg->run = run_;
  seg->worker = static_cast<uint32_t>(w);
  seg->number = ws.next_number++;
  seg->base = SegmentBase(seg->run, seg->worker, seg->number);
  seg->active = true;
  const std::string err = ws.writer.Open(seg->pcap(), kHistoryMaxSnaplen);
  if (!err.empty()) {
    last_error_ = err;
    return false;
  }
  seg->pcap_bytes = ws.writer.bytes();
  counters_.disk_bytes += seg->pcap_bytes;
  ++counters_.segments;
  ++counters_.segments_opened;
  ws.active = seg.get();
  segments_.push_back(std::move(seg));
  return true;
}

void HistorySpool::CloseSegment(size_t w) {
  WorkerState& ws = *workers_[w];
  Segment* seg = ws.active;
  if (seg == nullptr) return;
  if (!ws.writer.Close()) {
    ++counters_.write_errors;
    last_error_ = "cannot write " + seg->pcap() + ": " + std::strerror(errno);
  }
  seg->addrs.assign(seg->active_addrs.begin(), seg->active_addrs.end());
  seg->active_addrs.clear();
  seg->active = false;
  seg->pcap_bytes = FileSize(seg->pcap());
  if (seg->packets == 0) seg->first_ts = seg->last_ts = 0;
  WriteIndex(seg);
  ws.active = nullptr;
}

void HistorySpool::EnforceDiskBound(uint64_t extra) {
  while (counters_.disk_bytes + extra > options_.disk_bytes && pins_ == 0) {
    // The oldest closed segment: corrupt ones (first_ts 0) first, then by time.
    auto oldest = segments_.end();
    for (auto it = segments_.begin(); it != segments_.end(); ++it) {
      if ((*it)->active) continue;
      if (oldest == segments_.end() ||
          std::tie((*it)->first_ts, (*it)->run, (*it)->number) <
              std::tie((*oldest)->first_ts, (*oldest)->run, (*oldest)->number))
        oldest = it;
    }
    if (oldest == segments_.end()) return;
    const Segment& seg = **oldest;
    const uint64_t freed = FileSize(seg.pcap()) + FileSize(seg.idx());
    RemoveFile(seg.pcap());
    RemoveFile(seg.idx());
    counters_.disk_bytes -= std::min(counters_.disk_bytes, freed);
    --counters_.segments;
    ++counters_.segments_deleted;
    segments_.erase(oldest);
  }
}

void HistorySpool::Close() {
  if (closed_) return;
  Spool();
  std::lock_guard lock(mu_);
  for (size_t w = 0; w < workers_.size(); ++w) CloseSegment(w);
  closed_ = true;
}

bool HistorySpool::Export(const HistoryFilter& filter, uint64_t from_ns, uint64_t to_ns,
                          const std::string& out_path, ExportResult* r) {
  *r = ExportResult{};
  if (from_ns > to_ns) {
    r->errors.push_back("the window ends before it starts");
    return false;
  }
  struct MemRecord {
    uint64_t ts;
    uint64_t seq;
    uint32_t wire_len;
    uint32_t cap_len;
    size_t offset;  // in the stream's bytes
  };
  struct MemStream {
    std::vector<MemRecord> records;
    std::vector<uint8_t> bytes;
  };
  std::vector<Candidate> candidates;
  std::vector<MemStream> memory(rings_.size());
  uint64_t oldest = UINT64_MAX;
  {
    std::lock_guard lock(mu_);
    for (const auto& seg : segments_) {
      if (seg->corrupt) {
        r->errors.push_back(seg->error);
        continue;
      }
      if (seg->packets == 0) continue;
      oldest = std::min(oldest, seg->first_ts);
      if (seg->last_ts < from_ns || seg->first_ts > to_ns) continue;
      if (!MayContain(*seg, filter.host) || (filter.has_peer && !MayContain(*seg, filter.peer))) {
        ++r->segments_skipped;
        r->lost_records += seg->lost;
        continue;
      }
      r->lost_records += seg->lost;
      candidates.push_back({seg->pcap(), seg->run, seg->worker, seg->number, seg->pcap_bytes});
    }
    // The records still in the rings that are not on disk yet (or all of them without a spool).
    std::vector<uint8_t> buf(kHistoryMaxSnaplen);
    HistoryRecordInfo info;
    for (size_t w = 0; w < rings_.size(); ++w) {
      const uint64_t min_seq = options_.spool && !options_.read_only ? workers_[w]->spooled_end : 0;
      uint64_t pos = rings_[w]->OldestPosition();
      const uint64_t end = rings_[w]->NewestPosition();
      bool first = true;
      while (pos < end) {
        const auto res = rings_[w]->Read(&pos, &info, buf);
        if (res == PacketHistory::ReadResult::kEnd) break;
        if (res == PacketHistory::ReadResult::kOverrun) continue;
        if (first) oldest = std::min(oldest, info.ts_ns);
        first = false;
        if (info.seq < min_seq || info.ts_ns < from_ns || info.ts_ns > to_ns) continue;
        if (!filter.MatchesFrame(std::span<const uint8_t>(buf.data(), info.cap_len), info.wire_len))
          continue;
        MemStream& ms = memory[w];
        ms.records.push_back({info.ts_ns, info.seq, info.wire_len, info.cap_len, ms.bytes.size()});
        ms.bytes.insert(ms.bytes.end(), buf.begin(), buf.begin() + info.cap_len);
      }
    }
    ++pins_;
  }
  struct Unpin {
    HistorySpool* s;
    ~Unpin() {
      std::lock_guard lock(s->mu_);
      --s->pins_;
    }
  } unpin{this};

  if (oldest != UINT64_MAX) r->oldest_retained_ns = oldest;
  if (oldest == UINT64_MAX || from_ns < oldest) {
    r->start_not_retained = true;
    r->not_retained_from_ns = from_ns;
    r->not_retained_to_ns = oldest == UINT64_MAX ? to_ns : std::min(to_ns, oldest);
  }

  // Streams: one per chain of segments (a spooler run's segments of one worker, in order) and one
  // per ring; each is in time order (a worker appends in arrival order), so a k-way merge on
  // time gives the output's order.
  std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    return std::tie(a.run, a.worker, a.number) < std::tie(b.run, b.worker, b.number);
  });
  struct Stream {
    // Disk chain.
    std::vector<const Candidate*> segments;
    size_t next_segment = 0;
    PcapReader reader;
    bool reading = false;
    std::vector<uint8_t> frame;
    // Ring.
    MemStream* mem = nullptr;
    size_t next_record = 0;
    // The current record.
    uint64_t ts = 0;
    uint32_t cap_len = 0;
    uint32_t wire_len = 0;
    const uint8_t* data = nullptr;
  };
  std::vector<std::unique_ptr<Stream>> streams;
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (i == 0 || candidates[i].run != candidates[i - 1].run ||
        candidates[i].worker != candidates[i - 1].worker) {
      streams.push_back(std::make_unique<Stream>());
      streams.back()->frame.resize(kPcapMaxRecordBytes);
    }
    streams.back()->segments.push_back(&candidates[i]);
  }
  for (MemStream& ms : memory) {
    if (ms.records.empty()) continue;
    // Usually already in order; a replayed capture may not be.
    std::stable_sort(ms.records.begin(), ms.records.end(),
                     [](const MemRecord& a, const MemRecord& b) { return a.ts < b.ts; });
    streams.push_back(std::make_unique<Stream>());
    streams.back()->mem = &ms;
  }

  // Advances a stream to its next matching record in the window; false at its end.
  auto advance = [&](Stream& s) -> bool {
    if (s.mem != nullptr) {
      if (s.next_record >= s.mem->records.size()) return false;
      const MemRecord& m = s.mem->records[s.next_record++];
      s.ts = m.ts;
      s.cap_len = m.cap_len;
      s.wire_len = m.wire_len;
      s.data = s.mem->bytes.data() + m.offset;
      return true;
    }
    for (;;) {
      if (!s.reading) {
        if (s.next_segment >= s.segments.size()) return false;
        const Candidate& c = *s.segments[s.next_segment++];
        const std::string err = s.reader.Open(c.path);
        if (!err.empty()) {
          r->errors.push_back("segment skipped: " + err);
          continue;
        }
        s.reader.set_limit(c.limit);
        s.reading = true;
        ++r->segments_read;
      }
      uint64_t ts;
      uint32_t cap, wire;
      const auto res = s.reader.Next(&ts, &cap, &wire, s.frame);
      if (res == PcapReader::Result::kOk) {
        if (ts < from_ns || ts > to_ns) continue;
        if (!filter.MatchesFrame(std::span<const uint8_t>(s.frame.data(), cap), wire)) continue;
        s.ts = ts;
        s.cap_len = cap;
        s.wire_len = wire;
        s.data = s.frame.data();
        return true;
      }
      if (res != PcapReader::Result::kEnd) {
        r->errors.push_back(
            "segment " + s.segments[s.next_segment - 1]->path + ": " +
            (res == PcapReader::Result::kTruncated ? "cut short" : "corrupt record") + " at byte " +
            std::to_string(s.reader.offset()) + "; the rest of it is skipped");
      }
      s.reader.Close();
      s.reading = false;
    }
  };

  const std::string tmp = out_path + ".tmp." + std::to_string(::getpid());
  PcapWriter out;
  std::string err = out.Open(tmp, kHistoryMaxSnaplen);
  if (!err.empty()) {
    r->errors.push_back(err);
    return false;
  }
  using HeapItem = std::pair<uint64_t, size_t>;  // (time, stream): ties go to the lower stream
  std::priority_queue<HeapItem, std::vector<HeapItem>, std::greater<>> heap;
  for (size_t i = 0; i < streams.size(); ++i) {
    if (advance(*streams[i])) heap.push({streams[i]->ts, i});
  }
  bool ok = true;
  while (!heap.empty()) {
    const size_t i = heap.top().second;
    heap.pop();
    Stream& s = *streams[i];
    if (!out.Write(s.ts, std::span<const uint8_t>(s.data, s.cap_len), s.wire_len)) {
      ok = false;
      break;
    }
    ++r->packets;
    r->bytes += s.cap_len;
    ++(s.mem != nullptr ? r->memory_packets : r->disk_packets);
    if (advance(s)) heap.push({s.ts, i});
  }
  if (!out.Close()) ok = false;
  if (ok && std::rename(tmp.c_str(), out_path.c_str()) != 0) ok = false;
  if (!ok) {
    r->errors.push_back("cannot write " + out_path + ": " + std::strerror(errno));
    RemoveFile(tmp);
    return false;
  }
  return true;
}

HistorySpoolCounters HistorySpool::counters() const {
  std::lock_guard lock(mu_);
  return counters_;
}

std::vector<std::string> HistorySpool::open_errors() const {
  std::lock_guard lock(mu_);
  return open_errors_;
}

std::string HistorySpool::last_error() const {
  std::lock_guard lock(mu_);
  return last_error_;
}

}  // namespace vigil::dp
