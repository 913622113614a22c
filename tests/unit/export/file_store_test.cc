// The exporter's file store on hand-made file records (in order, out of order, overlaps, gaps,
// truncation, dedup, the total limit, flow end, .job task fields), and the worker's FileTap on a
// real SMB2 read through the session layer.
#include "dataplane/export/file_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dataplane/export/eve_writer.h"
#include "dataplane/export/event_record.h"
#include "dataplane/proto/hash.h"
#include "dataplane/stream/file_tap.h"
#include "dataplane/stream/session.h"

namespace vigil::dp {
namespace {

using Bytes = std::vector<uint8_t>;
namespace fs = std::filesystem;

std::string Sha(const Bytes& b) {
  const proto::Sha256::Digest d = proto::Sha256::Hash(b);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (uint8_t c : d) {
    s.push_back(kHex[c >> 4]);
    s.push_back(kHex[c & 15]);
  }
  return s;
}

Bytes Pattern(size_t n, uint8_t seed = 1) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(i * 7 + seed + i / 251);
  return b;
}

Bytes ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), {});
}

class FileStoreTest : public ::testing::Test {
 protected:
  FileStoreTest() {
    dir_ = fs::temp_directory_path() /
           ("vigil-file-store-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  ~FileStoreTest() override { fs::remove_all(dir_); }

  void Make(uint64_t max_file = 1 << 20, uint64_t max_total = 8 << 20) {
    FileStoreOptions o;
    o.dir = dir_.string();
    o.max_file_bytes = max_file;
    o.max_total_bytes = max_total;
    o.idle_timeout_ns = 60'000'000'000;
    store_ = std::make_unique<FileStore>(o, [this](std::span<const uint8_t> rec) {
      std::string line;
      ASSERT_TRUE(AppendAppEve(rec, "t", &line));
      events_.push_back(nlohmann::json::parse(line));
    });
    ASSERT_EQ(store_->Open(), "");
  }

  static FileKey Key(uint64_t flow, uint8_t fid, proto::Direction dir) {
    FileKey k{};
    k.flow_id = flow;
    k.session_id = 9;
    k.fuid[0] = fid;
    k.fuid_len = 16;
    k.direction = static_cast<uint8_t>(dir);
    k.tree_id = 1;
    return k;
  }

  void Meta(uint32_t kind, const FileKey& k, const std::string& name, uint32_t flags,
            uint64_t seen_end, uint64_t file_size = 0, const std::string& context = "") {
    FileMetaRecord m{};
    m.key = k;
    m.event.flow_id = k.flow_id;
    m.event.ts_ns = ts_ += 1'000'000'000;
    m.event.proto = 6;
    m.event.ip_version = 4;
    m.event.app_proto = static_cast<uint8_t>(proto::AppProto::kSmb);
    m.event.src_addr[10] = m.event.src_addr[11] = 0xff;
    m.event.src_addr[12] = 10;
    m.event.src_addr[15] = 9;
    m.tx_id = 7;
    m.seen_end = seen_end;
    m.file_size = file_size;
    m.flags = flags;
    const std::string share = "\\\\10.0.0.5\\C$";
    m.name_len = static_cast<uint16_t>(name.size());
    m.share_len = static_cast<uint16_t>(share.size());
    m.context_len = static_cast<uint16_t>(context.size());
    Bytes rec(sizeof m);
    std::memcpy(rec.data(), &m, sizeof m);
    rec.insert(rec.end(), name.begin(), name.end());
    rec.insert(rec.end(), share.begin(), share.end());
    rec.insert(rec.end(), context.begin(), context.end());
    ASSERT_TRUE(store_->OnRecord(kind, rec));
  }

  void Data(const FileKey& k, uint64_t offset, const Bytes& all, size_t len) {
    FileDataRecord r{};
    r.key = k;
    r.offset = offset;
    r.length = static_cast<uint32_t>(len);
    Bytes rec(sizeof r);
    std::memcpy(rec.data(), &r, sizeof r);
    rec.insert(rec.end(), all.begin() + static_cast<long>(offset),
               all.begin() + static_cast<long>(offset + len));
    ASSERT_TRUE(store_->OnRecord(kEventFileData, rec));
  }

  const nlohmann::json& Last() { return events_.back(); }

  fs::path dir_;
  uint64_t ts_ = 1'700'000'000'000'000'000ull;
  std::unique_ptr<FileStore> store_;
  std::vector<nlohmann::json> events_;
};

constexpr auto kRead = proto::Direction::kToClient;
constexpr auto kWrite = proto::Direction::kToServer;

TEST_F(FileStoreTest, InOrderReadIsStoredByContent) {
  Make();
  const Bytes body = Pattern(40000);
  const FileKey k = Key(1, 1, kRead);
  Meta(kEventFileOpen, k, "Docs\\a.bin", kFileSizeKnown, 0, body.size());
  for (size_t off = 0; off < body.size(); off += 16384) {
    Data(k, off, body, std::min<size_t>(16384, body.size() - off));
  }
  Meta(kEventFileClose, k, "Docs\\a.bin", kFileClosed | kFileSizeKnown, body.size(), body.size(),
       "\"smb\":{\"id\":7,\"command\":\"SMB2_COMMAND_READ\"}");
  ASSERT_EQ(events_.size(), 1u);
  const nlohmann::json& e = Last();
  EXPECT_EQ(e["event_type"], "fileinfo");
  EXPECT_EQ(e["app_proto"], "smb");
  EXPECT_EQ(e["src_ip"], "10.0.0.9");
  EXPECT_EQ(e["smb"]["command"], "SMB2_COMMAND_READ");
  const nlohmann::json& f = e["fileinfo"];
  EXPECT_EQ(f["filename"], "Docs\\a.bin");
  EXPECT_EQ(f["state"], "CLOSED");
  EXPECT_EQ(f["gaps"], false);
  EXPECT_EQ(f["stored"], true);
  EXPECT_EQ(f["complete"], true);
  EXPECT_EQ(f["size"], 40000);
  EXPECT_EQ(f["tx_id"], 7);
  EXPECT_EQ(f["share"], "\\\\10.0.0.5\\C$");
  EXPECT_EQ(f["sha256"], Sha(body));
  EXPECT_EQ(e["message"],
            "FILE READ \\\\10.0.0.5\\C$ Docs\\a.bin 40000 bytes complete sha256 " + Sha(body));
  EXPECT_EQ(ReadFile(store_->PathFor(Sha(body))), body);
  EXPECT_EQ(store_->used_bytes(), body.size());
  EXPECT_EQ(store_->open_files(), 0u);
  EXPECT_TRUE(fs::is_empty(dir_ / "tmp"));
}

TEST_F(FileStoreTest, OutOfOrderAndOverlappingPiecesAssemble) {
  Make();
  const Bytes body = Pattern(10000, 3);
  const FileKey k = Key(1, 2, kWrite);
  Data(k, 6000, body, 4000);  // no open record: it was lost, the close brings the names
  Data(k, 0, body, 3000);
  Data(k, 2000, body, 5000);  // overlaps both
  Data(k, 2500, body, 100);   // inside
  Meta(kEventFileClose, k, "out.bin", kFileClosed, body.size());
  ASSERT_EQ(events_.size(), 1u);
  const nlohmann::json& f = Last()["fileinfo"];
  EXPECT_EQ(f["gaps"], false);
  EXPECT_EQ(f["state"], "CLOSED");
  EXPECT_EQ(f["complete"], true);  // a write's size is what was written
  EXPECT_EQ(f["operation"], "write");
  EXPECT_EQ(f["sha256"], Sha(body));
  EXPECT_EQ(ReadFile(store_->PathFor(Sha(body))), body);
}

TEST_F(FileStoreTest, HolesAreGapsAndReadBackAsZeros) {
  Make();
  Bytes body = Pattern(9000, 5);
  const FileKey k = Key(1, 3, kRead);
  Data(k, 0, body, 3000);
  Data(k, 5000, body, 2000);
  // The tail (7000..9000) was lost too: the parser saw it (seen_end), nothing arrived.
  Meta(kEventFileClose, k, "x.dat", kFileClosed | kFileSizeKnown | kFileRingLoss, 9000, 9000);
  const nlohmann::json& f = Last()["fileinfo"];
  EXPECT_EQ(f["gaps"], true);
  EXPECT_EQ(f["state"], "CLOSED");
  EXPECT_EQ(f["complete"], false);
  EXPECT_EQ(f["size"], 9000);
  std::fill(body.begin() + 3000, body.begin() + 5000, 0);
  std::fill(body.begin() + 7000, body.end(), 0);
  EXPECT_EQ(f["sha256"], Sha(body));
  EXPECT_NE(Last()["message"].get<std::string>().find("9000 bytes gaps"), std::string::npos);
  EXPECT_EQ(store_->counters().with_gaps, 1u);
}

TEST_F(FileStoreTest, PartialReadIsClosedButNotComplete) {
  Make();
  const Bytes body = Pattern(4096);
  const FileKey k = Key(1, 4, kRead);
  Data(k, 0, body, 4096);
  Meta(kEventFileClose, k, "big.exe", kFileClosed | kFileSizeKnown, 4096, 804352);
  const nlohmann::json& f = Last()["fileinfo"];
  EXPECT_EQ(f["state"], "CLOSED");
  EXPECT_EQ(f["gaps"], false);
  EXPECT_EQ(f["complete"], false);
  EXPECT_NE(Last()["message"].get<std::string>().find("4096 bytes partial"), std::string::npos);
}

TEST_F(FileStoreTest, TruncatedAtMaxFileBytes) {
  Make(/*max_file=*/5000);
  const Bytes body = Pattern(8000);
  const FileKey k = Key(1, 5, kRead);
  Data(k, 0, body, 4000);
  Data(k, 4000, body, 4000);  // the tap clips; the store clips again
  Meta(kEventFileClose, k, "t.bin", kFileClosed | kFileTruncated | kFileSizeKnown, 8000, 8000);
  const nlohmann::json& f = Last()["fileinfo"];
  EXPECT_EQ(f["state"], "TRUNCATED");
  EXPECT_EQ(f["size"], 5000);
  EXPECT_EQ(f["gaps"], false);
  EXPECT_EQ(f["complete"], false);
  const Bytes prefix(body.begin(), body.begin() + 5000);
  EXPECT_EQ(f["sha256"], Sha(prefix));
  EXPECT_EQ(ReadFile(store_->PathFor(Sha(prefix))), prefix);
}

TEST_F(FileStoreTest, SameContentIsStoredOnce) {
  Make();
  const Bytes body = Pattern(3000);
  for (uint8_t fid = 1; fid <= 3; ++fid) {
    const FileKey k = Key(2, fid, kRead);
    Data(k, 0, body, body.size());
    Meta(kEventFileClose, k, "same.txt", kFileClosed, body.size());
  }
  ASSERT_EQ(events_.size(), 3u);
  for (const auto& e : events_) {
    EXPECT_EQ(e["fileinfo"]["stored"], true);
    EXPECT_EQ(e["fileinfo"]["sha256"], Sha(body));
  }
  EXPECT_EQ(store_->counters().stored, 1u);
  EXPECT_EQ(store_->counters().deduplicated, 2u);
  EXPECT_EQ(store_->used_bytes(), body.size());
  size_t files = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir_)) files += e.is_regular_file();
  EXPECT_EQ(files, 1u);
}

TEST_F(FileStoreTest, TotalLimitStopsStoring) {
  Make(/*max_file=*/1 << 20, /*max_total=*/5000);
  const Bytes a = Pattern(3000, 1), b = Pattern(3000, 2);
  Data(Key(3, 1, kRead), 0, a, a.size());
  Meta(kEventFileClose, Key(3, 1, kRead), "a", kFileClosed, a.size());
  Data(Key(3, 2, kRead), 0, b, b.size());
  Meta(kEventFileClose, Key(3, 2, kRead), "b", kFileClosed, b.size());
  ASSERT_EQ(events_.size(), 2u);
  EXPECT_EQ(events_[0]["fileinfo"]["stored"], true);
  EXPECT_EQ(events_[1]["fileinfo"]["stored"], false);
  EXPECT_EQ(events_[1]["fileinfo"]["sha256"], Sha(b));  // still hashed and reported
  EXPECT_EQ(store_->counters().store_full, 1u);
  EXPECT_FALSE(fs::exists(store_->PathFor(Sha(b))));
  EXPECT_TRUE(fs::is_empty(dir_ / "tmp"));
  // A restart counts what is there.
  store_.reset();
  Make(1 << 20, 5000);
  EXPECT_EQ(store_->used_bytes(), 3000u);
}

TEST_F(FileStoreTest, FlowEndFinishesOpenFilesAsTruncatedAndIgnoresLateClose) {
  Make();
  const Bytes body = Pattern(2000);
  const FileKey k = Key(4, 1, kRead);
  Meta(kEventFileOpen, k, "open.txt", 0, 0);
  Data(k, 0, body, body.size());
  const FileKey other = Key(5, 1, kRead);
  Data(other, 0, body, 10);
  store_->OnFlowEnd(4);
  ASSERT_EQ(events_.size(), 1u);
  EXPECT_EQ(Last()["fileinfo"]["state"], "TRUNCATED");
  EXPECT_EQ(Last()["fileinfo"]["filename"], "open.txt");
  EXPECT_EQ(Last()["fileinfo"]["sha256"], Sha(body));
  EXPECT_EQ(store_->open_files(), 1u);
  // Idle timeout (packet time), then a late close of that file is not reported twice.
  store_->Expire(ts_ + 120'000'000'000ull);
  ASSERT_EQ(events_.size(), 2u);
  EXPECT_EQ(store_->counters().idle_closed, 1u);
  Meta(kEventFileClose, other, "late.txt", kFileClosed, 10);
  EXPECT_EQ(events_.size(), 2u);
  EXPECT_EQ(store_->counters().late_records, 1u);
}

TEST_F(FileStoreTest, NotWantedFilesAreReportedWithoutData) {
  Make();
  const FileKey k = Key(6, 1, kRead);
  Meta(kEventFileOpen, k, "movie.mkv", kFileNotStored, 0);
  Meta(kEventFileClose, k, "movie.mkv", kFileNotStored | kFileClosed, 123456);
  const nlohmann::json& f = Last()["fileinfo"];
  EXPECT_EQ(f["stored"], false);
  EXPECT_EQ(f["size"], 123456);
  EXPECT_FALSE(f.contains("sha256"));
  EXPECT_EQ(f["complete"], false);
}

TEST_F(FileStoreTest, JobFileGetsTaskFields) {
  const std::string path =
      std::string(VIGIL_SOURCE_DIR) + "/tests/unit/proto/data/smbgen_job_updater.job";
  const Bytes job = ReadFile(path);
  ASSERT_FALSE(job.empty()) << path;
  Make();
  const FileKey k = Key(7, 1, kRead);
  Data(k, 0, job, job.size());
  Meta(kEventFileClose, k, "Windows\\Tasks\\Updater.JOB", kFileClosed | kFileSizeKnown, job.size(),
       job.size());
  const nlohmann::json& e = Last();
  ASSERT_TRUE(e.contains("task")) << e.dump();
  EXPECT_EQ(e["task"]["format"], "job");
  const std::string app = e["task"]["application"];
  EXPECT_FALSE(app.empty());
  EXPECT_NE(e["message"].get<std::string>().find(" task " + app), std::string::npos)
      << e["message"];
  EXPECT_EQ(store_->counters().tasks, 1u);
  // Not a .job name: no task.
  const FileKey k2 = Key(7, 2, kRead);
  Data(k2, 0, job, job.size());
  Meta(kEventFileClose, k2, "Windows\\Tasks\\Updater.bak", kFileClosed, job.size());
  EXPECT_FALSE(Last().contains("task"));
}

TEST_F(FileStoreTest, MalformedRecordsAreCounted) {
  Make();
  EXPECT_FALSE(store_->OnRecord(kEventFileData, Bytes(10)));
  FileDataRecord r{};
  r.length = 100;
  Bytes rec(sizeof r);
  std::memcpy(rec.data(), &r, sizeof r);
  EXPECT_FALSE(store_->OnRecord(kEventFileData, rec));  // says 100 bytes, has none
  EXPECT_EQ(store_->counters().bad_records, 2u);
  EXPECT_TRUE(events_.empty());
}

// ----------------------------------------------------------------------------------------------
// The worker side: an SMB2 read through the session layer puts file records on the ring.

void Put16(Bytes& b, uint16_t v) {
  b.push_back(v & 0xFF);
  b.push_back(v >> 8);
}
void Put32(Bytes& b, uint32_t v) {
  Put16(b, v & 0xFFFF);
  Put16(b, v >> 16);
}
void Put64(Bytes& b, uint64_t v) {
  Put32(b, static_cast<uint32_t>(v));
  Put32(b, static_cast<uint32_t>(v >> 32));
}
void Append(Bytes& b, const Bytes& x) { b.insert(b.end(), x.begin(), x.end()); }
Bytes Utf16(const std::string& s) {
  Bytes b;
  for (char c : s) Put16(b, static_cast<uint8_t>(c));
  return b;
}

constexpr uint64_t kSession = 0x0000400000000011ull;
constexpr uint32_t kTree = 5;
const uint8_t kFid[16] = {0x49, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF};

Bytes Smb2(uint16_t cmd, uint64_t id, bool response, const Bytes& body, uint32_t tree = kTree) {
  Bytes b = {0xFE, 'S', 'M', 'B'};
  Put16(b, 64);
  Put16(b, 1);
  Put32(b, 0);  // status
  Put16(b, cmd);
  Put16(b, 1);
  Put32(b, response ? 1 : 0);
  Put32(b, 0);
  Put64(b, id);
  Put32(b, 0);
  Put32(b, tree);
  Put64(b, kSession);
  b.insert(b.end(), 16, 0);
  Append(b, body);
  Bytes nbss = {0, static_cast<uint8_t>(b.size() >> 16), static_cast<uint8_t>(b.size() >> 8),
                static_cast<uint8_t>(b.size())};
  Append(nbss, b);
  return nbss;
}

Bytes TreeConnectReq(uint64_t id, const std::string& path) {
  const Bytes p = Utf16(path);
  Bytes body;
  Put16(body, 9);
  Put16(body, 0);
  Put16(body, 72);
  Put16(body, static_cast<uint16_t>(p.size()));
  Append(body, p);
  return Smb2(3, id, false, body, 0);
}
Bytes TreeConnectResp(uint64_t id) {
  Bytes body;
  Put16(body, 16);
  body.push_back(1);  // disk
  body.push_back(0);
  Put32(body, 0);
  Put32(body, 0);
  Put32(body, 0x1F01FF);
  return Smb2(3, id, true, body);
}
Bytes CreateReq(uint64_t id, const std::string& name) {
  const Bytes n = Utf16(name);
  Bytes body;
  Put16(body, 57);
  body.push_back(0);
  body.push_back(0);
  Put32(body, 2);
  Put64(body, 0);
  Put64(body, 0);
  Put32(body, 0x120089);
  Put32(body, 0);
  Put32(body, 7);
  Put32(body, 1);  // FILE_OPEN
  Put32(body, 0);
  Put16(body, 120);
  Put16(body, static_cast<uint16_t>(n.size()));
  Put32(body, 0);
  Put32(body, 0);
  Append(body, n);
  return Smb2(5, id, false, body);
}
Bytes CreateResp(uint64_t id, uint64_t size) {
  Bytes body;
  Put16(body, 89);
  body.push_back(0);
  body.push_back(0);
  Put32(body, 1);
  for (int i = 0; i < 4; ++i) Put64(body, 131570589990000000ull);
  Put64(body, size);
  Put64(body, size);
  Put32(body, 0x20);
  Put32(body, 0);
  body.insert(body.end(), kFid, kFid + 16);
  Put32(body, 0);
  Put32(body, 0);
  return Smb2(5, id, true, body);
}
Bytes ReadReq(uint64_t id, uint32_t len, uint64_t offset) {
  Bytes body;
  Put16(body, 49);
  body.push_back(0);
  body.push_back(0);
  Put32(body, len);
  Put64(body, offset);
  body.insert(body.end(), kFid, kFid + 16);
  Put32(body, 0);
  Put32(body, 0);
  Put32(body, 0);
  Put16(body, 0);
  Put16(body, 0);
  body.push_back(0);
  return Smb2(8, id, false, body);
}
Bytes ReadResp(uint64_t id, const Bytes& data) {
  Bytes body;
  Put16(body, 17);
  body.push_back(80);
  body.push_back(0);
  Put32(body, static_cast<uint32_t>(data.size()));
  Put32(body, 0);
  Put32(body, 0);
  Append(body, data);
  return Smb2(8, id, true, body);
}
Bytes CloseReq(uint64_t id) {
  Bytes body;
  Put16(body, 24);
  Put16(body, 0);
  Put32(body, 0);
  body.insert(body.end(), kFid, kFid + 16);
  return Smb2(6, id, false, body);
}
Bytes CloseResp(uint64_t id) {
  Bytes body;
  Put16(body, 60);
  body.insert(body.end(), 58, 0);
  return Smb2(6, id, true, body);
}

class FileTapTest : public ::testing::Test {
 protected:
  FileTapTest() {
    config_.sessions = 4;
    config_.segment_slots = 256;
    config_.files.enabled = true;
    config_.files.max_file_mb = 1;
    std::memset(static_cast<void*>(&flow_), 0, sizeof flow_);
    flow_.in_use = 1;
    flow_.flow_id = 99;
    flow_.ip_version = 4;
    flow_.client_is_lo = 1;
    flow_.key.port_lo = 50000;
    flow_.key.port_hi = 445;
    flow_.key.vlan_proto = 6u << 24;
    flow_.key.addr_lo[10] = flow_.key.addr_lo[11] = 0xff;
    flow_.key.addr_lo[12] = 10;
    flow_.key.addr_lo[15] = 9;
    flow_.key.addr_hi[10] = flow_.key.addr_hi[11] = 0xff;
    flow_.key.addr_hi[12] = 10;
    flow_.key.addr_hi[15] = 5;
  }

  void Start(size_t ring_bytes = 1 << 20) {
    ring_ = std::make_unique<EventRing>(ring_bytes);
    mgr_ = std::make_unique<SessionManager>(config_, 0, ring_.get());
    Tcp(kToServer, 0x02, seq_[0] - 1, {});
    Tcp(kToClient, 0x12, seq_[1] - 1, {});
  }

  // Sends `b` in segments of at most 1400 bytes.
  void Tcp(FlowDir dir, uint8_t flags, uint32_t seq, const Bytes& b) {
    PacketMeta m{};
    m.ip_proto = 6;
    m.tcp_flags = flags;
    m.tcp_seq = seq;
    frame_.assign(1, 0);
    frame_.insert(frame_.end(), b.begin(), b.end());
    m.payload_offset = 1;
    m.payload_len = static_cast<uint16_t>(b.size());
    mgr_->OnPacket(flow_, dir, m, frame_, ++now_);
  }
  void Send(FlowDir dir, const Bytes& b) {
    for (size_t off = 0; off < b.size(); off += 1400) {
      const size_t n = std::min<size_t>(1400, b.size() - off);
      Tcp(dir, 0x10, seq_[dir],
          Bytes(b.begin() + static_cast<long>(off), b.begin() + static_cast<long>(off + n)));
      seq_[dir] += static_cast<uint32_t>(n);
    }
  }

  // Drains the ring into a store; returns the kinds seen in order (app events as 'A').
  std::string Drain(FileStore* store, std::vector<nlohmann::json>* events) {
    std::string kinds;
    uint32_t kind;
    std::span<const uint8_t> rec;
    while (ring_->Peek(&kind, &rec)) {
      if (kind == kEventApp) {
        kinds += 'A';
        std::string line;
        if (AppendAppEve(rec, "t", &line)) events->push_back(nlohmann::json::parse(line));
      } else {
        kinds += static_cast<char>('0' + kind);
        if (store != nullptr) store->OnRecord(kind, rec);
      }
      ring_->Pop();
    }
    return kinds;
  }

  AppLayerConfig config_;
  std::unique_ptr<EventRing> ring_;
  std::unique_ptr<SessionManager> mgr_;
  Flow flow_;
  Bytes frame_;
  uint32_t seq_[2] = {1000, 5000};
  uint64_t now_ = 1'700'000'000'000'000'000ull;
};

TEST_F(FileTapTest, Smb2ReadProducesFileRecordsAndAFileinfoEvent) {
  Start();
  const Bytes job = Pattern(6000, 9);
  Send(kToServer, TreeConnectReq(1, "\\\\10.0.0.5\\C$"));
  Send(kToClient, TreeConnectResp(1));
  Send(kToServer, CreateReq(2, "Windows\\Tasks\\AV.job"));
  Send(kToClient, CreateResp(2, job.size()));
  Send(kToServer, ReadReq(3, 65536, 0));
  Send(kToClient, ReadResp(3, job));
  Send(kToServer, CloseReq(4));
  Send(kToClient, CloseResp(4));

  const fs::path dir = fs::temp_directory_path() / ("vigil-file-tap-" + std::to_string(getpid()));
  fs::remove_all(dir);
  std::vector<nlohmann::json> events;
  {
    FileStoreOptions o;
    o.dir = dir.string();
    FileStore store(o, [&](std::span<const uint8_t> rec) {
      std::string line;
      ASSERT_TRUE(AppendAppEve(rec, "t", &line));
      events.push_back(nlohmann::json::parse(line));
    });
    ASSERT_EQ(store.Open(), "");
    const std::string kinds = Drain(&store, &events);
    // Open, data chunks, then the parser's read event, the close, and the CLOSE event.
    const std::string open(1, static_cast<char>('0' + kEventFileOpen));
    const std::string data(1, static_cast<char>('0' + kEventFileData));
    const std::string close(1, static_cast<char>('0' + kEventFileClose));
    ASSERT_NE(kinds.find(open + data), std::string::npos) << kinds;
    EXPECT_GT(kinds.find(close), kinds.rfind(data)) << kinds;
    const FileTapCounters* c = mgr_->file_counters();
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->files, 1u);
    EXPECT_EQ(c->bytes, job.size());
    EXPECT_EQ(c->chunks_dropped, 0u);
  }
  std::vector<nlohmann::json> infos;
  for (const auto& ev : events) {
    if (ev["event_type"] == "fileinfo") infos.push_back(ev);
  }
  ASSERT_EQ(infos.size(), 1u);
  const nlohmann::json& e = infos[0];
  EXPECT_EQ(e["event_type"], "fileinfo");
  EXPECT_EQ(e["src_ip"], "10.0.0.9");
  EXPECT_EQ(e["dest_port"], 445);
  EXPECT_EQ(e["flow_id"], 99);
  EXPECT_EQ(e["smb"]["command"], "SMB2_COMMAND_READ");
  EXPECT_EQ(e["smb"]["fuid"], "00000049-0000-0000-0001-0000ffffffff");
  EXPECT_EQ(e["fileinfo"]["filename"], "Windows\\Tasks\\AV.job");
  EXPECT_EQ(e["fileinfo"]["share"], "\\\\10.0.0.5\\C$");
  EXPECT_EQ(e["fileinfo"]["state"], "CLOSED");
  EXPECT_EQ(e["fileinfo"]["complete"], true);
  EXPECT_EQ(e["fileinfo"]["sha256"], Sha(job));
  EXPECT_EQ(ReadFile((dir / Sha(job).substr(0, 2) / Sha(job)).string()), job);
  fs::remove_all(dir);
  mgr_->OnFlowEnd(flow_, ++now_);
}

TEST_F(FileTapTest, LimitsAreAppliedAtTheWorker) {
  config_.files.extensions = {"exe"};
  Start(4 << 20);
  const Bytes big = Pattern(1200000, 4);  // more than max_file_mb (1 MiB)
  Send(kToServer, CreateReq(2, "setup.EXE"));
  Send(kToClient, CreateResp(2, big.size()));
  Send(kToServer, ReadReq(3, 1200000, 0));
  Send(kToClient, ReadResp(3, big));
  Send(kToServer, CloseReq(4));
  Send(kToClient, CloseResp(4));
  std::vector<nlohmann::json> events;
  Drain(nullptr, &events);
  const FileTapCounters* c = mgr_->file_counters();
  EXPECT_EQ(c->chunks_dropped, 0u);
  EXPECT_EQ(c->bytes, 1u << 20);
  EXPECT_EQ(c->truncated, 1u);
  // Not in the extension list: open and close only, no data.
  Send(kToServer, CreateReq(5, "notes.txt"));
  Send(kToClient, CreateResp(5, 5000));
  Send(kToServer, ReadReq(6, 5000, 0));
  Send(kToClient, ReadResp(6, Pattern(5000)));
  const std::string kinds = Drain(nullptr, &events);
  EXPECT_EQ(kinds.find(static_cast<char>('0' + kEventFileData)), std::string::npos) << kinds;
  EXPECT_EQ(c->not_wanted, 1u);
  mgr_->OnFlowEnd(flow_, ++now_);
  const std::string end = Drain(nullptr, &events);
  EXPECT_NE(end.find(static_cast<char>('0' + kEventFileClose)), std::string::npos) << end;
}

TEST_F(FileTapTest, FullRingLosesChunksAndSaysSo) {
  // A small ring that nobody drains.
  Start(1 << 16);
  const Bytes data = Pattern(300000);
  Send(kToServer, CreateReq(2, "a.bin"));
  Send(kToClient, CreateResp(2, data.size()));
  Send(kToServer, ReadReq(3, 300000, 0));
  Send(kToClient, ReadResp(3, data));
  const FileTapCounters* c = mgr_->file_counters();
  EXPECT_GT(c->chunks_dropped, 0u);
  EXPECT_LT(c->bytes, data.size());
}

}  // namespace
}  // namespace vigil::dp
