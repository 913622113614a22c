// Packet capture export, control's half (docs/evidence.md, "Packet capture export"): GET
// /api/v1/pcaps and `vigilctl pcap` against a FAKE dataplane command server (a real Unix socket
// speaking docs/respond.md's protocol v1) that answers `history.export` by writing a small valid
// pcap into its export directory, as the dataplane does. Real HTTP over loopback; the vigilctl
// binary end to end when it is built.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "control/api/api.h"
#include "control/api/http_server.h"
#include "control/cli/http_client.h"
#include "control/cli/pcap_client.h"
#include "control/store/store.h"

namespace vigil::ctl {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr int64_t kSec = 1'000'000'000;
const std::string kToken = "0123456789abcdef0123456789abcdef";

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/vigil-pcap-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A small valid pcap (nanosecond variant, Ethernet): one TCP SYN 10.0.0.9:49722 -> 10.0.0.5:445
// per time given.
std::string MakePcap(const std::vector<int64_t>& times_ns) {
  std::string out;
  auto u32 = [&](uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); };
  auto u16 = [&](uint16_t v) { out.append(reinterpret_cast<const char*>(&v), 2); };
  u32(0xa1b23c4d);
  u16(2);
  u16(4);
  u32(0);
  u32(0);
  u32(65535);
  u32(1);
  for (int64_t t : times_ns) {
    const unsigned char frame[54] = {0,    1,    2,    3,    4,    5, 0,    1, 2,  3,
                                     4,    6,    0x08, 0x00,  // Ethernet
                                     0x45, 0,    0,    40,   0,    1, 0x40, 0, 64, 6,
                                     0,    0,    10,   0,    0,    9, 10,   0, 0,  5,  // IPv4
                                     0xc2, 0x3a, 0x01, 0xbd, 0,    0, 0,    1, 0,  0,
                                     0,    0,    0x50, 0x02, 0x20, 0, 0,    0, 0,  0};  // TCP
    u32(static_cast<uint32_t>(t / kSec));
    u32(static_cast<uint32_t>(t % kSec));
    u32(sizeof frame);
    u32(sizeof frame);
    out.append(reinterpret_cast<const char*>(frame), sizeof frame);
  }
  return out;
}

// The dataplane's command socket in a thread of its own, several clients at once; `handler`
// answers each request (null: never answers).
class FakeDataplane {
 public:
  using Handler = std::function<json(const json&)>;
  FakeDataplane(std::string path, Handler handler)
      : path_(std::move(path)), handler_(std::move(handler)) {
    listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un u{};
    u.sun_family = AF_UNIX;
    std::strcpy(u.sun_path, path_.c_str());
    unlink(path_.c_str());
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&u), sizeof u) != 0 ||
        listen(listen_fd_, 16) != 0) {
      ADD_FAILURE() << "fake dataplane cannot listen on " << path_;
    }
    thread_ = std::thread([this] { Loop(); });
  }
  ~FakeDataplane() {
    stop_ = true;
    thread_.join();
    for (int fd : clients_) close(fd);
    close(listen_fd_);
    unlink(path_.c_str());
  }
  std::vector<json> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  size_t connections() const { return connections_; }

 private:
  void Loop() {
    std::map<int, std::string> buffers;
    while (!stop_) {
      std::vector<pollfd> fds{{listen_fd_, POLLIN, 0}};
      for (int fd : clients_) fds.push_back({fd, POLLIN, 0});
      if (poll(fds.data(), fds.size(), 10) <= 0) continue;
      if (fds[0].revents & POLLIN) {
        const int c = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) {
          clients_.push_back(c);
          ++connections_;
        }
      }
      for (size_t i = 1; i < fds.size(); ++i) {
        if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        const int fd = fds[i].fd;
        char buf[65536];
        const ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) {
          close(fd);
          clients_.erase(std::find(clients_.begin(), clients_.end(), fd));
          buffers.erase(fd);
          continue;
        }
        std::string& in = buffers[fd];
        in.append(buf, static_cast<size_t>(n));
        size_t nl;
        while ((nl = in.find('\n')) != std::string::npos) {
          const json req = json::parse(in.substr(0, nl), nullptr, false);
          in.erase(0, nl + 1);
          {
            std::lock_guard<std::mutex> lock(mu_);
            requests_.push_back(req);
          }
          json answer = handler_(req);
          if (answer.is_null()) continue;  // hangs
          answer["v"] = 1;
          answer["id"] = req.value("id", json());
          const std::string line = answer.dump() + "\n";
          if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) break;
        }
      }
    }
  }

  std::string path_;
  Handler handler_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> connections_{0};
  int listen_fd_ = -1;
  std::vector<int> clients_;
  std::mutex mu_;
  std::vector<json> requests_;
};

constexpr int64_t kFrom = 1'795'000'000 * kSec;  // 2026-11-18T11:06:40Z
constexpr int64_t kTo = kFrom + 300 * kSec;
constexpr int64_t kOldest = kFrom + 60 * kSec + 250'000'000;

class PcapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string err;
    store_ = store::Store::Open({.dir = dir_.path()}, &err);
    ASSERT_NE(store_, nullptr) << err;
    socket_ = dir_.path() + "/commands.sock";
    export_dir_ = dir_.path() + "/exports";
    fs::create_directories(export_dir_);
    pcap_ = MakePcap({kOldest, kOldest + kSec, kOldest + 2 * kSec});
  }
  void TearDown() override { StopServer(); }

  // As the dataplane: the pcap written into its export directory, the facts in the answer.
  json Export(const json& req) {
    if (req.value("op", "") != "history.export") {
      return {{"ok", false}, {"error", "unknown op " + req.value("op", "")}};
    }
    const std::string path = export_dir_ + "/export-" + std::to_string(++exports_) + ".pcap";
    std::ofstream(path, std::ios::binary) << pcap_;
    last_path_ = path;
    return {{"ok", true},
            {"path", path},
            {"packets", 3},
            {"bytes", 162},
            {"memory_packets", 1},
            {"disk_packets", 2},
            {"oldest_retained_ns", kOldest},
            {"start_not_retained", not_retained_},
            {"not_retained_from_ns", not_retained_ ? req["from_ns"].get<int64_t>() : 0},
            {"not_retained_to_ns", not_retained_ ? kOldest : 0},
            {"lost_records", 0},
            {"summary", "wrote: 3 packets (162 bytes; 1 from memory, 2 from disk)"}};
  }

  void StartFake(FakeDataplane::Handler h = nullptr) {
    if (!h) h = [this](const json& r) { return Export(r); };
    fake_ = std::make_unique<FakeDataplane>(socket_, std::move(h));
  }

  void StartServer(const std::string& token = kToken) {
    api_ = std::make_unique<api::Api>(store_.get(), nullptr, nullptr, nullptr, nullptr, token);
    api_->set_dataplane_socket(socket_);
    ASSERT_EQ(server_.Listen("127.0.0.1:0", ""), "");
    thread_ = std::thread(
        [this] { server_.Serve([this](const api::Request& q) { return api_->Handle(q); }); });
    ep_ = "127.0.0.1:" + std::to_string(server_.tcp_port());
  }
  void StopServer() {
    if (!thread_.joinable()) return;
    server_.Stop();
    thread_.join();
  }

  cli::HttpResult Get(const std::string& target, const std::string& token = kToken) {
    cli::HttpResult res;
    const std::string hdr = token.empty() ? "" : "Authorization: Bearer " + token + "\r\n";
    EXPECT_EQ(cli::HttpRequest(ep_, "GET", target, "", &res, hdr), "");
    return res;
  }
  static std::string ErrorOf(const cli::HttpResult& r) {
    const json j = json::parse(r.body, nullptr, false);
    return j.is_object() ? j.value("error", "") : r.body;
  }

  TempDir dir_;
  std::unique_ptr<store::Store> store_;
  std::string socket_, export_dir_, pcap_, last_path_, ep_;
  int exports_ = 0;
  bool not_retained_ = true;
  std::unique_ptr<FakeDataplane> fake_;
  std::unique_ptr<api::Api> api_;
  api::HttpServer server_;
  std::thread thread_;
};

const std::string kQuery =
    "/api/v1/pcaps?host=10.0.0.9&peer=10.0.0.5&port=445&proto=tcp&from=2026-11-18T11:06:40Z"
    "&to=1795000300";

TEST(PcapTime, ParsesAndFormatsWindowBounds) {
  EXPECT_EQ(api::ParseWindowTime("2026-11-18T11:06:40Z"), kFrom);
  EXPECT_EQ(api::ParseWindowTime("2026-11-18T12:06:40.25+01:00"), kFrom + 250'000'000);
  EXPECT_EQ(api::ParseWindowTime("1795000000"), kFrom);
  EXPECT_EQ(api::ParseWindowTime("1795000000.5"), kFrom + 500'000'000);
  EXPECT_EQ(api::ParseWindowTime("1795000000.000000001"), kFrom + 1);
  EXPECT_EQ(api::ParseWindowTime("2026-11-18"), 1'794'960'000 * kSec);
  for (const char* bad : {"", "-5", "now", "1795000000.", ".5", "1795000000.1234567891",
                          "2026-13-01T00:00:00Z", "17950000x"}) {
    EXPECT_FALSE(api::ParseWindowTime(bad)) << bad;
  }
  EXPECT_EQ(api::FormatTimeNs(kFrom), "2026-11-18T11:06:40Z");
  EXPECT_EQ(api::FormatTimeNs(kOldest), "2026-11-18T11:07:40.25Z");
  EXPECT_EQ(api::FormatTimeNs(kFrom + 1), "2026-11-18T11:06:40.000000001Z");
  // Relative forms on the client.
  EXPECT_EQ(cli::ResolveClientTime("now", kFrom + 5), "1795000000.000000005");
  EXPECT_EQ(cli::ResolveClientTime("-5m", kFrom), "1794999700.000000000");
  EXPECT_EQ(cli::ResolveClientTime("now-2h", kFrom), "1794992800.000000000");
  EXPECT_EQ(cli::ResolveClientTime("-1d", kFrom), "1794913600.000000000");
  EXPECT_EQ(cli::ResolveClientTime("2026-11-18T11:06:40Z", kFrom), "2026-11-18T11:06:40Z");
  EXPECT_EQ(cli::ResolveClientTime("-5x", kFrom), "-5x");  // left for the server to refuse
}

// The whole path: parameters to the dataplane's request, the exact bytes back with the facts in
// headers, and the export file deleted afterwards.
TEST_F(PcapTest, ReturnsTheDataplanesPcapWithItsFactsAndDeletesIt) {
  StartFake();
  StartServer();
  cli::HttpResult r = Get(kQuery);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, pcap_);
  EXPECT_EQ(r.headers["content-type"], "application/vnd.tcpdump.pcap");
  EXPECT_EQ(r.headers["content-length"], std::to_string(pcap_.size()));
  EXPECT_EQ(r.headers["x-vigil-packets"], "3");
  EXPECT_EQ(r.headers["x-vigil-bytes"], "162");
  EXPECT_EQ(r.headers["x-vigil-memory-packets"], "1");
  EXPECT_EQ(r.headers["x-vigil-disk-packets"], "2");
  EXPECT_EQ(r.headers["x-vigil-lost-records"], "0");
  EXPECT_EQ(r.headers["x-vigil-window"], "2026-11-18T11:06:40Z..2026-11-18T11:11:40Z");
  EXPECT_EQ(r.headers["x-vigil-oldest-retained"], "2026-11-18T11:07:40.25Z");
  EXPECT_EQ(r.headers["x-vigil-not-retained"], "2026-11-18T11:06:40Z..2026-11-18T11:07:40.25Z");
  EXPECT_EQ(r.headers["x-vigil-summary"],
            "wrote: 3 packets (162 bytes; 1 from memory, 2 from disk)");
  EXPECT_EQ(r.headers["content-disposition"],
            "attachment; filename=\"vigil-10.0.0.9-1795000000.pcap\"");
  const json facts = json::parse(r.headers["x-vigil-export"]);
  EXPECT_EQ(facts["packets"], 3);
  EXPECT_EQ(facts["start_not_retained"], true);
  EXPECT_EQ(facts["not_retained_to_ns"], kOldest);
  EXPECT_EQ(facts["file_bytes"], pcap_.size());
  // What the dataplane was asked.
  const std::vector<json> reqs = fake_->requests();
  ASSERT_EQ(reqs.size(), 1u);
  EXPECT_EQ(reqs[0]["v"], 1);
  EXPECT_EQ(reqs[0]["op"], "history.export");
  EXPECT_EQ(reqs[0]["host"], "10.0.0.9");
  EXPECT_EQ(reqs[0]["peer"], "10.0.0.5");
  EXPECT_EQ(reqs[0]["port"], 445);
  EXPECT_EQ(reqs[0]["proto"], 6);
  EXPECT_EQ(reqs[0]["from_ns"], kFrom);
  EXPECT_EQ(reqs[0]["to_ns"], kTo);
  // The dataplane's file is gone; nothing else is left in its directory.
  EXPECT_FALSE(fs::exists(last_path_));
  EXPECT_TRUE(fs::is_empty(export_dir_));
  // Only the required parameters; IPv6 canonicalised; a window wholly retained.
  not_retained_ = false;
  r = Get("/api/v1/pcaps?host=FD00:0:0::9&from=1795000000.5&to=1795000000.5");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, pcap_);
  EXPECT_EQ(r.headers.count("x-vigil-not-retained"), 0u);
  EXPECT_EQ(json::parse(r.headers["x-vigil-export"])["start_not_retained"], false);
  const json req = fake_->requests().back();
  EXPECT_EQ(req["host"], "fd00::9");
  EXPECT_FALSE(req.contains("peer"));
  EXPECT_FALSE(req.contains("port"));
  EXPECT_FALSE(req.contains("proto"));
  EXPECT_EQ(req["from_ns"], kFrom + 500'000'000);
  EXPECT_EQ(req["to_ns"], kFrom + 500'000'000);
  EXPECT_TRUE(fs::is_empty(export_dir_));
  // One short-lived connection per export.
  EXPECT_EQ(fake_->connections(), 2u);
}

TEST_F(PcapTest, BadParametersAre400sNamingTheParameter) {
  StartFake();
  StartServer();
  const std::string w = "&from=1795000000&to=1795000300";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/api/v1/pcaps?from=1795000000&to=1795000300", "host: required"},
      {"/api/v1/pcaps?host=" + w, "host: required"},
      {"/api/v1/pcaps?host=10.0.0.300" + w, "host: expected an IPv4 or IPv6 address"},
      {"/api/v1/pcaps?host=example.com" + w, "host: expected"},
      {"/api/v1/pcaps?host=10.0.0.9&peer=10.0.0" + w, "peer: expected"},
      {"/api/v1/pcaps?host=10.0.0.9&port=0" + w, "port: expected an integer in 1..65535"},
      {"/api/v1/pcaps?host=10.0.0.9&port=65536" + w, "port: expected"},
      {"/api/v1/pcaps?host=10.0.0.9&port=-1" + w, "port: expected"},
      {"/api/v1/pcaps?host=10.0.0.9&port=smb" + w, "port: expected"},
      {"/api/v1/pcaps?host=10.0.0.9&proto=sctpx" + w, "proto: expected"},
      {"/api/v1/pcaps?host=10.0.0.9&proto=256" + w, "proto: expected"},
      {"/api/v1/pcaps?host=10.0.0.9&to=1795000300", "from: required"},
      {"/api/v1/pcaps?host=10.0.0.9&from=yesterday&to=1795000300", "from: expected RFC 3339"},
      {"/api/v1/pcaps?host=10.0.0.9&from=1795000000", "to: required"},
      {"/api/v1/pcaps?host=10.0.0.9&from=1795000000&to=2026-11-18T25:00:00Z", "to: expected"},
      {"/api/v1/pcaps?host=10.0.0.9&from=1795000300&to=1795000000", "from: after to"},
      {"/api/v1/pcaps?host=10.0.0.9&hots=1" + w, "unknown parameter 'hots'"},
  };
  for (const auto& [target, message] : cases) {
    const cli::HttpResult r = Get(target);
    EXPECT_EQ(r.status, 400) << target << ": " << r.body;
    EXPECT_NE(ErrorOf(r).find(message), std::string::npos) << target << ": " << r.body;
  }
  EXPECT_TRUE(fake_->requests().empty());  // nothing reached the dataplane
}

TEST_F(PcapTest, NeedsTheToken) {
  StartFake();
  StartServer();
  EXPECT_EQ(Get(kQuery, "").status, 401);
  EXPECT_EQ(Get(kQuery, "0123456789abcdef0123456789abcdeX").status, 401);
  EXPECT_EQ(Get("/api/v1/pcaps?host=nonsense", "").status, 401);  // before any validation
  EXPECT_TRUE(fake_->requests().empty());
  StopServer();
  // No token configured: refused for everyone.
  api::Api no_token(store_.get(), nullptr, nullptr, nullptr, nullptr, "");
  no_token.set_dataplane_socket(socket_);
  api::Request q;
  q.method = "GET";
  q.path = "/api/v1/pcaps";
  q.query = {{"host", "10.0.0.9"}, {"from", "1795000000"}, {"to", "1795000300"}};
  EXPECT_EQ(no_token.Handle(q).status, 403);
  EXPECT_TRUE(fake_->requests().empty());
}

TEST_F(PcapTest, NoDataplaneIs503) {
  StartServer();  // nothing listens on socket_
  cli::HttpResult r = Get(kQuery);
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_NE(ErrorOf(r).find("not reachable"), std::string::npos) << r.body;
  EXPECT_NE(ErrorOf(r).find(socket_), std::string::npos) << r.body;
  // Not configured at all.
  api_->set_dataplane_socket("");
  r = Get(kQuery);
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_NE(ErrorOf(r).find("no dataplane command socket is configured"), std::string::npos);
}

TEST_F(PcapTest, DataplaneErrorsAre502WithTheirMessage) {
  std::string bad_path;
  int mode = 0;
  StartFake([&](const json& req) -> json {
    if (mode == 0) return {{"ok", false}, {"error", "packet history is disabled"}};
    if (mode == 1) return {{"ok", true}, {"packets", 0}};  // no path
    if (mode == 2) return {{"ok", true}, {"path", bad_path}};
    if (mode == 3) return {{"ok", true}, {"path", "relative.pcap"}};
    return Export(req);
  });
  StartServer();
  cli::HttpResult r = Get(kQuery);
  EXPECT_EQ(r.status, 502);
  EXPECT_EQ(ErrorOf(r), "dataplane: packet history is disabled");
  mode = 1;
  r = Get(kQuery);
  EXPECT_EQ(r.status, 502);
  EXPECT_NE(ErrorOf(r).find("no path"), std::string::npos) << r.body;
  // A file that is not a pcap is neither served nor deleted.
  mode = 2;
  bad_path = dir_.path() + "/notes.txt";
  std::ofstream(bad_path) << "not a capture, must stay";
  r = Get(kQuery);
  EXPECT_EQ(r.status, 502);
  EXPECT_NE(ErrorOf(r).find("is not a pcap file"), std::string::npos) << r.body;
  EXPECT_TRUE(fs::exists(bad_path));
  // Nor a symbolic link to one.
  const std::string real = dir_.path() + "/real.pcap";
  std::ofstream(real, std::ios::binary) << pcap_;
  bad_path = dir_.path() + "/link.pcap";
  fs::create_symlink(real, bad_path);
  r = Get(kQuery);
  EXPECT_EQ(r.status, 502) << r.body;
  EXPECT_TRUE(fs::exists(real));
  EXPECT_TRUE(fs::is_symlink(bad_path));
  mode = 3;
  EXPECT_EQ(Get(kQuery).status, 502);
  mode = 4;
  EXPECT_EQ(Get(kQuery).status, 200);
}

TEST_F(PcapTest, HungDataplaneIs504AndOversizeIs413) {
  bool hang = true;
  StartFake([&](const json& req) -> json { return hang ? json() : Export(req); });
  StartServer();
  api_->set_pcap_limits(api::kMaxPcapBytes, 200);
  const auto start = std::chrono::steady_clock::now();
  cli::HttpResult r = Get(kQuery);
  EXPECT_EQ(r.status, 504) << r.body;
  EXPECT_NE(ErrorOf(r).find("no answer within 200 ms"), std::string::npos) << r.body;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  hang = false;
  api_->set_pcap_limits(pcap_.size() - 1, 2000);
  r = Get(kQuery);
  EXPECT_EQ(r.status, 413) << r.body;
  EXPECT_NE(ErrorOf(r).find("above the limit"), std::string::npos) << r.body;
  EXPECT_TRUE(fs::is_empty(export_dir_));  // deleted all the same
  api_->set_pcap_limits(pcap_.size(), 2000);
  EXPECT_EQ(Get(kQuery).status, 200);
}

// The client function behind `vigilctl pcap`: the file (0600) or nothing on an error.
TEST_F(PcapTest, ClientWritesTheFileOrNothing) {
  StartFake();
  StartServer();
  const std::string out = dir_.path() + "/out.pcap";
  cli::PcapQuery q{"10.0.0.9", "10.0.0.5", "445", "tcp", "2026-11-18T11:06:40Z", "1795000300"};
  json facts;
  ASSERT_EQ(cli::FetchPcap(ep_, kToken, q, out, kTo, &facts), "");
  EXPECT_EQ(ReadFile(out), pcap_);
  struct stat st;
  ASSERT_EQ(stat(out.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(cli::PcapLine(out, facts),
            "wrote " + out +
                ": 3 packets (1 from memory, 2 from disk); window start not retained: "
                "2026-11-18T11:06:40Z to 2026-11-18T11:07:40.25Z");
  // Relative times are resolved here.
  q.from = "-5m";
  q.to = "now";
  ASSERT_EQ(cli::FetchPcap(ep_, kToken, q, out, kTo, &facts), "");
  EXPECT_EQ(fake_->requests().back()["from_ns"], kFrom);
  EXPECT_EQ(fake_->requests().back()["to_ns"], kTo);
  not_retained_ = false;
  ASSERT_EQ(cli::FetchPcap(ep_, kToken, q, out, kTo, &facts), "");
  EXPECT_EQ(cli::PcapLine(out, facts),
            "wrote " + out + ": 3 packets (1 from memory, 2 from disk); whole window retained");
  // Errors: the server's message; no file, no temporary left.
  const std::string out2 = dir_.path() + "/out2.pcap";
  q.host = "10.0.0.300";
  EXPECT_EQ(cli::FetchPcap(ep_, kToken, q, out2, kTo, &facts),
            "HTTP 400: host: expected an IPv4 or IPv6 address, got \"10.0.0.300\"");
  q.host = "10.0.0.9";
  EXPECT_EQ(cli::FetchPcap(ep_, "", q, out2, kTo, &facts),
            "HTTP 401: missing or wrong API token (send Authorization: Bearer TOKEN)");
  EXPECT_FALSE(fs::exists(out2));
  for (const auto& e : fs::directory_iterator(dir_.path())) {
    EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << e.path();
  }
}

// `vigilctl pcap` itself, when built (meson builds it with the control tests' build directory).
TEST_F(PcapTest, VigilctlPcapEndToEnd) {
  std::string vigilctl;
#ifdef VIGIL_BUILD_DIR
  vigilctl = std::string(VIGIL_BUILD_DIR) + "/control/vigilctl";
#endif
  if (vigilctl.empty() || access(vigilctl.c_str(), X_OK) != 0) {
    GTEST_SKIP() << "needs " << vigilctl << " (ninja control/vigilctl)";
  }
  StartFake();
  StartServer();
  const std::string token_file = dir_.path() + "/api.token";
  std::ofstream(token_file) << kToken << "\n";
  const std::string out = dir_.path() + "/cli.pcap";
  auto run = [&](const std::string& args, std::string* output) {
    const std::string cmd = "env -u VIGIL_API_TOKEN " + vigilctl + " --api " + ep_ +
                            " --token-file " + token_file + " " + args + " 2>&1";
    std::FILE* p = popen(cmd.c_str(), "r");
    output->clear();
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) output->append(buf, n);
    return WEXITSTATUS(pclose(p));
  };
  std::string text;
  ASSERT_EQ(run("pcap --host 10.0.0.9 --peer 10.0.0.5 --port 445 --proto tcp --from "
                "2026-11-18T11:06:40Z --to 1795000300 -o " +
                    out,
                &text),
            0)
      << text;
  EXPECT_EQ(text, "wrote " + out +
                      ": 3 packets (1 from memory, 2 from disk); window start not retained: "
                      "2026-11-18T11:06:40Z to 2026-11-18T11:07:40.25Z\n");
  EXPECT_EQ(ReadFile(out), pcap_);
  struct stat st;
  ASSERT_EQ(stat(out.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(fs::is_empty(export_dir_));
  ASSERT_EQ(run("--json pcap --host 10.0.0.9 --from 1795000000 --to 1795000300 -o " + out, &text),
            0)
      << text;
  const json j = json::parse(text);
  EXPECT_EQ(j["file"], out);
  EXPECT_EQ(j["packets"], 3);
  EXPECT_EQ(j["memory_packets"], 1);
  EXPECT_EQ(j["disk_packets"], 2);
  EXPECT_EQ(j["not_retained_from"], "2026-11-18T11:06:40Z");
  EXPECT_EQ(j["not_retained_to"], "2026-11-18T11:07:40.25Z");
  // The server's message and a non-zero exit.
  EXPECT_EQ(run("pcap --host 10.0.0.9 --from 1795000300 --to 1795000000 -o " + out, &text), 1);
  EXPECT_EQ(text,
            "vigilctl: pcap: HTTP 400: from: after to (2026-11-18T11:11:40Z > "
            "2026-11-18T11:06:40Z)\n");
  EXPECT_EQ(run("pcap --host 10.0.0.9 --from 1795000000 -o " + out, &text), 2);  // usage
  EXPECT_NE(text.find("pcap needs --from T and --to T"), std::string::npos) << text;
}

}  // namespace
}  // namespace vigil::ctl
