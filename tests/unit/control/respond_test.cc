// Responses, control's side (control/respond): actions from breaches, operations, the audit log,
// and the pusher against a FAKE dataplane command server (a real Unix socket in a temporary
// directory speaking docs/respond.md's protocol v1, recording every table it receives, able to
// restart with a new boot_id, refuse an entry, or hang). Also the `respond` config section, the
// model's response actions, the store's version-1 upgrade and the API routes over real HTTP.
#include "control/respond/respond.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "control/api/api.h"
#include "control/api/http_server.h"
#include "control/app/control_config.h"
#include "control/cli/http_client.h"
#include "control/model/model.h"
#include "control/respond/cidr.h"
#include "control/respond/command_client.h"
#include "control/store/store.h"

namespace vigil::ctl::respond {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

constexpr int64_t kSec = 1'000'000'000;
constexpr int64_t kMin = 60 * kSec;
constexpr int64_t kWallStart = 1'795'000'000 * kSec;  // 2026-11-18

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/vigil-respond-XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The dataplane's command socket, as docs/respond.md specifies it, in a thread of its own.
class FakeDataplane {
 public:
  struct Table {
    uint64_t generation = 0;
    json entries, allow, never_block;
  };

  explicit FakeDataplane(std::string path) : path_(std::move(path)) {}
  ~FakeDataplane() { Stop(); }

  void Start() {
    std::lock_guard<std::mutex> lock(mu_);
    ++boots_;
    boot_id_ = "00000000000000" + std::to_string(10 + boots_);
    generation_ = 0;
    table_ = Table{};
    listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un u{};
    u.sun_family = AF_UNIX;
    std::strcpy(u.sun_path, path_.c_str());
    unlink(path_.c_str());
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&u), sizeof u) != 0 ||
        listen(listen_fd_, 16) != 0) {
      ADD_FAILURE() << "fake dataplane cannot listen on " << path_;
    }
    stop_ = false;
    thread_ = std::thread([this] { Loop(); });
  }
  void Stop() {
    if (!thread_.joinable()) return;
    stop_ = true;
    thread_.join();
    for (int fd : clients_) close(fd);
    clients_.clear();
    buffers_.clear();
    close(listen_fd_);
    unlink(path_.c_str());
  }
  // A dataplane restart: connections gone, new boot_id, empty table, generation 0.
  void Restart() {
    Stop();
    Start();
  }

  std::vector<Table> tables() {
    std::lock_guard<std::mutex> lock(mu_);
    return tables_;
  }
  Table current() {
    std::lock_guard<std::mutex> lock(mu_);
    return table_;
  }
  size_t requests(const std::string& op) {
    std::lock_guard<std::mutex> lock(mu_);
    return ops_[op];
  }
  std::string boot_id() {
    std::lock_guard<std::mutex> lock(mu_);
    return boot_id_;
  }
  void set_generation(uint64_t g) {
    std::lock_guard<std::mutex> lock(mu_);
    generation_ = g;
  }
  void set_hang(bool h) { hang_ = h; }
  void set_refuse_id(int64_t id) { refuse_id_ = id; }
  void set_counters(int64_t id, uint64_t drops, uint64_t resets, int64_t first_ns) {
    std::lock_guard<std::mutex> lock(mu_);
    counters_[id] = {drops, resets, first_ns};
  }

 private:
  struct Counter {
    uint64_t drops, resets;
    int64_t first;
  };

  json Answer(const json& req) {
    std::lock_guard<std::mutex> lock(mu_);
    json out{{"v", 1}, {"id", req.value("id", json())}, {"ok", true}};
    if (req.value("v", 0) != 1) {
      return {{"v", 1}, {"id", req.value("id", json())}, {"ok", false}, {"error", "version"}};
    }
    const std::string op = req.value("op", "");
    ++ops_[op];
    if (op == "hello") {
      out["boot_id"] = boot_id_;
      out["sensor"] = "fake";
      out["pid"] = getpid();
      out["block_generation"] = generation_;
      out["block_entries"] = table_.entries.is_array() ? table_.entries.size() : 0;
    } else if (op == "block.set") {
      std::map<int64_t, bool> ids;
      for (const json& e : req["entries"]) {
        const int64_t id = e.value("id", int64_t{0});
        if (id == 0 || ids[id]) {
          return {{"v", 1},
                  {"id", req["id"]},
                  {"ok", false},
                  {"error", "block entry " + std::to_string(id) + ": the id must be unique"}};
        }
        ids[id] = true;
        if (id == refuse_id_) {
          return {{"v", 1},
                  {"id", req["id"]},
                  {"ok", false},
                  {"error", "block entry " + std::to_string(id) +
                                ": covers an address that is never blocked"}};
        }
      }
      Table t;
      t.generation = req.value("generation", uint64_t{0});
      t.entries = req["entries"];
      t.allow = req.value("allow", json());
      t.never_block = req.value("never_block", json());
      tables_.push_back(t);
      table_ = t;
      generation_ = t.generation;
      out["generation"] = t.generation;
      out["entries"] = t.entries.size();
    } else if (op == "block.get") {
      json entries = json::array();
      for (json e : table_.entries.is_array() ? table_.entries : json::array()) {
        const auto it = counters_.find(e["id"].get<int64_t>());
        e["drops"] = it == counters_.end() ? 0 : it->second.drops;
        e["resets"] = it == counters_.end() ? 0 : it->second.resets;
        e["first_drop_ns"] = it == counters_.end() ? 0 : it->second.first;
        entries.push_back(e);
      }
      out["generation"] = generation_;
      out["entries"] = entries;
    } else {
      return {{"v", 1}, {"id", req["id"]}, {"ok", false}, {"error", "unknown op " + op}};
    }
    return out;
  }

  void Loop() {
    while (!stop_) {
      std::vector<pollfd> fds{{listen_fd_, POLLIN, 0}};
      for (int fd : clients_) fds.push_back({fd, POLLIN, 0});
      if (poll(fds.data(), fds.size(), 10) <= 0) continue;
      if (fds[0].revents & POLLIN) {
        const int c = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) clients_.push_back(c);
      }
      for (size_t i = 1; i < fds.size(); ++i) {
        if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        const int fd = fds[i].fd;
        char buf[65536];
        const ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) {
          close(fd);
          clients_.erase(std::find(clients_.begin(), clients_.end(), fd));
          buffers_.erase(fd);
          continue;
        }
        std::string& in = buffers_[fd];
        in.append(buf, static_cast<size_t>(n));
        size_t nl;
        while ((nl = in.find('\n')) != std::string::npos) {
          const json req = json::parse(in.substr(0, nl), nullptr, false);
          in.erase(0, nl + 1);
          if (hang_) continue;  // never answers
          const std::string line = Answer(req).dump() + "\n";
          if (write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) break;
        }
      }
    }
  }

  std::string path_;
  std::thread thread_;
  std::atomic<bool> stop_{false}, hang_{false};
  std::atomic<int64_t> refuse_id_{0};
  int listen_fd_ = -1;
  std::vector<int> clients_;
  std::map<int, std::string> buffers_;
  std::mutex mu_;
  int boots_ = 0;
  std::string boot_id_;
  uint64_t generation_ = 0;
  Table table_;
  std::vector<Table> tables_;
  std::map<std::string, size_t> ops_;
  std::map<int64_t, Counter> counters_;
};

model::Model MakeModel(model::ResponseAction action, model::ResponseMode mode,
                       int64_t duration_ns) {
  model::Model m;
  m.name = "Device / Test Model";
  m.priority = 3;
  m.response = model::Response{action, duration_ns, mode};
  return m;
}

class RespondTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string err;
    store_ = store::Store::Open({.dir = dir_.path()}, &err);
    ASSERT_NE(store_, nullptr) << err;
    socket_ = dir_.path() + "/commands.sock";
    fake_ = std::make_unique<FakeDataplane>(socket_);
  }

  // A responder with clocks the test moves; its log lines are kept.
  std::unique_ptr<Responder> Make(Options o = {}) {
    o.socket_path = socket_;
    Clocks c;
    c.wall = [this] { return wall_.load(); };
    c.mono = [this] { return mono_.load(); };
    return std::make_unique<Responder>(store_.get(), o, c, [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(log_mu_);
      log_.push_back(line);
    });
  }

  // An event (stored) and the breach it made, as control's ingest writes them.
  store::Breach Breach(const std::string& src, const std::string& dst, int dport,
                       const std::string& proto) {
    const json ev{{"timestamp", "2024-03-04T02:13:57.653898+0000"},
                  {"event_type", "smb"},
                  {"src_ip", src},
                  {"src_port", 49722},
                  {"dest_ip", dst},
                  {"dest_port", dport},
                  {"proto", proto},
                  {"message", "SMB2 CREATE success \\\\10.0.0.5\\IPC$ atsvc"}};
    std::vector<store::EventIn> in{{"s1", ++seq_, ev.dump()}};
    std::vector<int64_t> ids;
    std::string err;
    EXPECT_TRUE(store_->InsertEvents(in, &ids, &err)) << err;
    store::Breach b;
    b.model = "Device / Test Model";
    b.device = src;
    b.ts_ns = 1'709'518'437'653'898'000;  // packet time: years before the wall clock
    b.events.push_back({ids[0], true});
    b.id = store_->InsertBreach(b, &err);
    EXPECT_GT(b.id, 0) << err;
    return b;
  }

  // The audit operations about one action, oldest first.
  std::vector<std::string> AuditOps(int64_t action_id) {
    std::vector<std::string> ops;
    for (const store::AuditEntry& e : store_->Audit(action_id, 100)) ops.insert(ops.begin(), e.op);
    return ops;
  }
  // The audit operations about no action (push failures, restarts), oldest first.
  std::vector<std::string> SystemOps() {
    std::vector<std::string> ops;
    for (const store::AuditEntry& e : store_->Audit(0, 1000)) {
      if (e.action_id == 0) ops.insert(ops.begin(), e.op);
    }
    return ops;
  }

  bool Logged(const std::string& needle) {
    std::lock_guard<std::mutex> lock(log_mu_);
    for (const std::string& l : log_) {
      if (l.find(needle) != std::string::npos) return true;
    }
    return false;
  }

  TempDir dir_;
  std::unique_ptr<store::Store> store_;
  std::string socket_;
  std::unique_ptr<FakeDataplane> fake_;
  std::atomic<int64_t> wall_{kWallStart}, mono_{1000 * kSec};
  uint64_t seq_ = 0;
  std::mutex log_mu_;
  std::vector<std::string> log_;
};

TEST(RespondModel, EveryActionNameAndPreciseErrors) {
  const char* names[] = {"block_connection", "quarantine_device", "quarantine_outgoing",
                         "quarantine_incoming"};
  for (size_t i = 0; i < 4; ++i) {
    const std::string yaml = std::string("name: \"Device / X\"\npriority: 1\ncomponents:\n") +
                             "  - filter: atsvc\nresponse: {action: " + names[i] +
                             ", duration: 30m, mode: autonomous}\n";
    std::vector<model::LoadError> errors;
    const auto m = model::ModelSet::ParseModel(yaml, "m.yaml", &errors);
    ASSERT_TRUE(m.has_value()) << (errors.empty() ? "" : errors[0].ToString());
    EXPECT_EQ(static_cast<size_t>(m->response->action), i);
    EXPECT_STREQ(model::ResponseActionName(m->response->action), names[i]);
    EXPECT_EQ(model::ParseResponseAction(names[i]), m->response->action);
    EXPECT_EQ(m->response->mode, model::ResponseMode::kAutonomous);
    EXPECT_EQ(m->response->duration_ns, 30 * kMin);
  }
  EXPECT_FALSE(model::ParseResponseAction("quarantine"));
  std::vector<model::LoadError> errors;
  EXPECT_FALSE(model::ModelSet::ParseModel(
      "name: \"Device / X\"\npriority: 1\ncomponents:\n  - filter: atsvc\n"
      "response: {action: quarantine_incomming}\n",
      "m.yaml", &errors));
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].ToString(),
            "m.yaml:5:20: response.action: must be one of block_connection, quarantine_device, "
            "quarantine_outgoing, quarantine_incoming, got \"quarantine_incomming\" (did you mean "
            "\"quarantine_incoming\"?)");
}

TEST(RespondConfig, SectionDefaultsValuesAndErrors) {
  auto r = LoadControlConfigString("data_dir: /x\n", "c.yaml");
  ASSERT_TRUE(r.config) << r.errors[0].ToString();
  EXPECT_TRUE(r.config->respond.enabled);
  EXPECT_EQ(r.config->respond.dataplane_socket, "/run/vigil/commands.sock");
  EXPECT_TRUE(r.config->respond.never_block.empty());
  r = LoadControlConfigString(
      "respond:\n  enabled: false\n  dataplane_socket: /tmp/c.sock\n"
      "  never_block: [10.0.0.1, 192.168.0.0/16, 'fd00::/8']\n  allow: [10.0.0.53/32]\n",
      "c.yaml");
  ASSERT_TRUE(r.config) << r.errors[0].ToString();
  EXPECT_FALSE(r.config->respond.enabled);
  EXPECT_EQ(r.config->respond.dataplane_socket, "/tmp/c.sock");
  EXPECT_EQ(r.config->respond.never_block,
            (std::vector<std::string>{"10.0.0.1", "192.168.0.0/16", "fd00::/8"}));
  EXPECT_EQ(r.config->respond.allow, std::vector<std::string>{"10.0.0.53/32"});
  r = LoadControlConfigString(
      "respond:\n"                                            // 1
      "  enabled: maybe\n"                                    // 2
      "  never_block: [10.0.0.1, 10.0.0.300, 10.0.0.0/33]\n"  // 3
      "  allow: 10.0.0.53\n"                                  // 4
      "  dataplane_sock: /x\n",                               // 5
      "c.yaml");
  EXPECT_FALSE(r.config);
  ASSERT_EQ(r.errors.size(), 5u);
  EXPECT_EQ(r.errors[0].ToString(),
            "c.yaml:2:12: respond.enabled: expected true or false, got maybe");
  EXPECT_EQ(r.errors[1].ToString(),
            "c.yaml:3:27: respond.never_block[1]: not an IPv4 or IPv6 address: \"10.0.0.300\"");
  EXPECT_EQ(r.errors[2].ToString(),
            "c.yaml:3:39: respond.never_block[2]: prefix length must be 0..32, got \"33\"");
  EXPECT_EQ(r.errors[3].field, "respond.allow");
  EXPECT_NE(r.errors[3].message.find("expected a list of CIDRs"), std::string::npos);
  EXPECT_EQ(r.errors[4].ToString().rfind("c.yaml:5:3: respond.dataplane_sock: unknown key", 0), 0u)
      << r.errors[4].ToString();
}

TEST(RespondCidr, ContainsBothFamilies) {
  std::string err;
  const auto net = ParseCidr("10.1.0.0/16", &err);
  ASSERT_TRUE(net) << err;
  EXPECT_TRUE(net->Contains(*ParseAddr("10.1.200.3")));
  EXPECT_FALSE(net->Contains(*ParseAddr("10.2.0.1")));
  EXPECT_FALSE(net->Contains(*ParseAddr("fd00::1")));
  const auto host = ParseCidr("10.0.0.1", &err);
  EXPECT_TRUE(host->Contains(*ParseAddr("10.0.0.1")));
  EXPECT_FALSE(host->Contains(*ParseAddr("10.0.0.2")));
  const auto v6 = ParseCidr("fd00::/8", &err);
  EXPECT_TRUE(v6->Contains(*ParseAddr("fdab::9")));
  EXPECT_FALSE(v6->Contains(*ParseAddr("10.0.0.1")));
  EXPECT_TRUE(ParseCidr("0.0.0.0/0", &err)->Contains(*ParseAddr("8.8.8.8")));
  EXPECT_FALSE(ParseCidr("10.0.0.0/", &err));
  EXPECT_FALSE(ParseCidr("host", &err));
  EXPECT_FALSE(ParseAddr("10.0.0.1 "));
}

// A store of schema version 1 (before responses) is upgraded by the writer; a reader of a
// version-1 store still works and sees no actions.
TEST(RespondStore, UpgradesVersion1) {
  TempDir dir;
  std::string err;
  ASSERT_TRUE(store::Store::Open({.dir = dir.path()}, &err)) << err;
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open((dir.path() + "/vigil.db").c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "DROP TABLE respond_actions; DROP TABLE respond_audit; "
                           "DROP TABLE config_versions; "
                           "UPDATE meta SET value='1' WHERE key='schema_version'",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  {
    auto reader = store::Store::Open({.dir = dir.path(), .read_only = true}, &err);
    ASSERT_NE(reader, nullptr) << err;
    EXPECT_TRUE(reader->Actions("", 10).empty());
  }
  auto w = store::Store::Open({.dir = dir.path()}, &err);
  ASSERT_NE(w, nullptr) << err;
  store::Action a;
  a.kind = "quarantine_device";
  a.addr = "10.0.0.9";
  a.mode = "manual";
  a.state = "active";
  a.created_ns = a.changed_ns = kWallStart;
  const int64_t id = w->SaveAction(a, {.ts_ns = kWallStart, .who = "t", .op = "block"}, &err);
  ASSERT_GT(id, 0) << err;
  EXPECT_EQ(w->GetAction(id)->addr, "10.0.0.9");
  EXPECT_EQ(w->GetAction(id)->breach_id, 0);
  ASSERT_EQ(w->Audit(id, 10).size(), 1u);
  EXPECT_EQ(w->Audit(id, 10)[0].action_id, id);
  // An update of an action that does not exist fails and writes no audit row.
  a.id = 999;
  EXPECT_EQ(w->SaveAction(a, {.ts_ns = kWallStart, .who = "t", .op = "clear"}, &err), 0);
  EXPECT_NE(err.find("no action with id 999"), std::string::npos) << err;
  EXPECT_EQ(w->Audit(0, 10).size(), 1u);
}

TEST_F(RespondTest, AutonomousBreachPushesTheEntryAtOnce) {
  fake_->Start();
  auto r = Make();
  const store::Breach b = Breach("10.0.0.9", "10.0.0.5", 445, "TCP");
  const model::Model m = MakeModel(model::ResponseAction::kQuarantineDevice,
                                   model::ResponseMode::kAutonomous, 60 * kMin);
  std::string err;
  const int64_t id = r->OnBreach(b, m, &err);
  ASSERT_GT(id, 0) << err;
  const auto a = store_->GetAction(id);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->state, "active");
  EXPECT_EQ(a->mode, "autonomous");
  EXPECT_EQ(a->breach_id, b.id);
  EXPECT_EQ(a->model, "Device / Test Model");
  EXPECT_EQ(a->created_ns, kWallStart);  // wall clock, not the breach's packet time
  EXPECT_EQ(a->expires_ns, kWallStart + 60 * kMin);
  EXPECT_EQ(fake_->tables().size(), 0u);  // nothing before the batch is committed
  ASSERT_TRUE(r->PushIfChanged());
  const auto tables = fake_->tables();
  ASSERT_EQ(tables.size(), 1u);
  ASSERT_EQ(tables[0].entries.size(), 1u);
  const json& e = tables[0].entries[0];
  EXPECT_EQ(e["id"], id);
  EXPECT_EQ(e["kind"], "quarantine_device");
  EXPECT_EQ(e["addr"], "10.0.0.9");
  EXPECT_EQ(e["expires_ns"], kWallStart + 60 * kMin);
  EXPECT_FALSE(e.contains("peer"));
  EXPECT_EQ(tables[0].generation, r->generation());
  EXPECT_EQ(r->pushed_generation(), r->generation());
  EXPECT_TRUE(
      Logged("pushed generation " + std::to_string(r->generation()) + " (1 entry) to " + socket_));
  EXPECT_EQ(r->counters().created_active.load(), 1u);
  EXPECT_EQ(r->counters().pushes.load(), 1u);
  EXPECT_TRUE(r->PushIfChanged());  // nothing changed: nothing sent
  EXPECT_EQ(fake_->tables().size(), 1u);
  EXPECT_EQ(AuditOps(id), std::vector<std::string>{"create"});
  EXPECT_EQ(store_->Audit(id, 1)[0].who, "vigil-control");
}

TEST_F(RespondTest, BlockConnectionTakesTheTriggerEventsConnection) {
  fake_->Start();
  auto r = Make();
  const model::Model m = MakeModel(model::ResponseAction::kBlockConnection,
                                   model::ResponseMode::kAutonomous, 30 * kMin);
  std::string err;
  const int64_t tcp = r->OnBreach(Breach("10.0.0.9", "10.0.0.5", 445, "TCP"), m, &err);
  const int64_t udp = r->OnBreach(Breach("10.0.0.21", "10.0.0.2", 53, "UDP"), m, &err);
  ASSERT_GT(tcp, 0);
  ASSERT_GT(udp, 0);
  ASSERT_TRUE(r->PushIfChanged());
  const json entries = fake_->current().entries;
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0], (json{{"id", tcp},
                              {"kind", "block_connection"},
                              {"addr", "10.0.0.9"},
                              {"peer", "10.0.0.5"},
                              {"client_port", 0},
                              {"server_port", 445},
                              {"proto", 6},
                              {"expires_ns", kWallStart + 30 * kMin}}));
  EXPECT_EQ(entries[1]["proto"], 17);
  EXPECT_EQ(entries[1]["server_port"], 53);
  EXPECT_EQ(TargetText(*store_->GetAction(tcp)), "10.0.0.9 -> 10.0.0.5:445/tcp");
  // A trigger event without a destination port cannot make a connection block: refused.
  const json ev{{"timestamp", "2024-03-04T02:13:57Z"},
                {"event_type", "dns"},
                {"src_ip", "10.0.0.7"},
                {"dest_ip", "10.0.0.2"}};
  std::vector<int64_t> ids;
  ASSERT_TRUE(
      store_->InsertEvents(std::vector<store::EventIn>{{"s1", ++seq_, ev.dump()}}, &ids, &err));
  store::Breach b;
  b.model = m.name;
  b.device = "10.0.0.7";
  b.events.push_back({ids[0], true});
  b.id = store_->InsertBreach(b, &err);
  const int64_t bad = r->OnBreach(b, m, &err);
  ASSERT_GT(bad, 0);
  EXPECT_EQ(store_->GetAction(bad)->state, "refused");
  EXPECT_NE(store_->GetAction(bad)->reason.find("server port"), std::string::npos);
  EXPECT_EQ(AuditOps(bad), std::vector<std::string>{"refuse"});
}

TEST_F(RespondTest, ConfirmModePushesNothingUntilConfirmed) {
  fake_->Start();
  auto r = Make();
  const model::Model m =
      MakeModel(model::ResponseAction::kQuarantineDevice, model::ResponseMode::kConfirm, 60 * kMin);
  std::string err;
  const int64_t id = r->OnBreach(Breach("10.0.0.9", "10.0.0.5", 445, "TCP"), m, &err);
  ASSERT_GT(id, 0);
  EXPECT_EQ(store_->GetAction(id)->state, "pending");
  EXPECT_EQ(store_->GetAction(id)->expires_ns, 0);
  EXPECT_TRUE(r->PushIfChanged());  // nothing changed in the table
  mono_ += 2 * kSec;
  r->Poll();  // first hello: the (empty) table goes out
  for (const auto& t : fake_->tables()) EXPECT_TRUE(t.entries.empty());
  EXPECT_GE(fake_->requests("hello"), 1u);
  wall_ += 10 * kMin;  // the operator looks at it ten minutes later
  const OpResult res = r->Apply({.type = Operation::Type::kConfirm,
                                 .id = id,
                                 .who = "alice via API",
                                 .reason = "AT job from a workstation"});
  ASSERT_EQ(res.status, 200) << res.error;
  EXPECT_TRUE(res.pushed) << res.push_error;
  const auto a = store_->GetAction(id);
  EXPECT_EQ(a->state, "active");
  EXPECT_EQ(a->expires_ns, kWallStart + 10 * kMin + 60 * kMin);  // from the confirmation
  const json entries = fake_->current().entries;
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0]["id"], id);
  EXPECT_EQ(entries[0]["expires_ns"], a->expires_ns);
  EXPECT_EQ(res.generation, fake_->current().generation);
  // Only a pending action can be confirmed.
  EXPECT_EQ(r->Apply({.type = Operation::Type::kConfirm, .id = id, .who = "bob"}).status, 409);
  EXPECT_EQ(r->Apply({.type = Operation::Type::kConfirm, .id = 12345, .who = "bob"}).status, 404);
  const auto audit = store_->Audit(id, 10);
  ASSERT_EQ(audit.size(), 2u);
  EXPECT_EQ(audit[0].op, "confirm");
  EXPECT_EQ(audit[0].who, "alice via API");
  EXPECT_NE(audit[0].detail.find("AT job from a workstation"), std::string::npos);
}

TEST_F(RespondTest, ExtendMovesTheExpiryAndClearRemovesTheEntry) {
  fake_->Start();
  auto r = Make();
  const OpResult blocked = r->Apply({.type = Operation::Type::kBlock,
                                     .who = "carol",
                                     .reason = "ransomware note seen",
                                     .duration_ns = 60 * kMin,
                                     .kind = "quarantine_outgoing",
                                     .addr = "10.0.0.66"});
  ASSERT_EQ(blocked.status, 200) << blocked.error;
  ASSERT_TRUE(blocked.pushed) << blocked.push_error;
  const int64_t id = blocked.id;
  EXPECT_EQ(store_->GetAction(id)->mode, "manual");
  EXPECT_EQ(store_->GetAction(id)->breach_id, 0);
  EXPECT_EQ(fake_->current().entries[0]["expires_ns"], kWallStart + 60 * kMin);
  EXPECT_EQ(fake_->current().entries[0]["kind"], "quarantine_outgoing");
  const uint64_t g1 = fake_->current().generation;

  OpResult ext = r->Apply(
      {.type = Operation::Type::kExtend, .id = id, .who = "carol", .duration_ns = 30 * kMin});
  ASSERT_EQ(ext.status, 200) << ext.error;
  EXPECT_EQ(store_->GetAction(id)->expires_ns, kWallStart + 90 * kMin);
  EXPECT_EQ(fake_->current().entries[0]["expires_ns"], kWallStart + 90 * kMin);
  const uint64_t g2 = fake_->current().generation;
  EXPECT_GT(g2, g1);
  EXPECT_EQ(r->Apply({.type = Operation::Type::kExtend, .id = id, .who = "carol"}).status, 400);

  const OpResult cleared =
      r->Apply({.type = Operation::Type::kClear, .id = id, .who = "dave", .reason = "reimaged"});
  ASSERT_EQ(cleared.status, 200) << cleared.error;
  EXPECT_TRUE(cleared.pushed);
  EXPECT_EQ(store_->GetAction(id)->state, "cleared");
  EXPECT_TRUE(fake_->current().entries.empty());
  EXPECT_GT(fake_->current().generation, g2);
  EXPECT_EQ(fake_->tables().size(), 3u);
  // A cleared action cannot be extended or cleared again.
  EXPECT_EQ(r->Apply({.type = Operation::Type::kExtend, .id = id, .duration_ns = kMin}).status,
            409);
  EXPECT_EQ(r->Apply({.type = Operation::Type::kClear, .id = id}).status, 409);
  EXPECT_EQ(AuditOps(id), (std::vector<std::string>{"block", "extend", "clear"}));
  EXPECT_EQ(store_->Audit(id, 1)[0].who, "dave");
}

TEST_F(RespondTest, ExpirySweep) {
  fake_->Start();
  auto r = Make();
  const OpResult a = r->Apply({.type = Operation::Type::kBlock,
                               .who = "carol",
                               .duration_ns = 5 * kMin,
                               .kind = "quarantine_incoming",
                               .addr = "10.0.0.66"});
  const OpResult forever = r->Apply({.type = Operation::Type::kBlock,
                                     .who = "carol",
                                     .duration_ns = 0,
                                     .kind = "quarantine_device",
                                     .addr = "10.0.0.67"});
  ASSERT_EQ(a.status, 200);
  ASSERT_EQ(forever.status, 200);
  EXPECT_EQ(fake_->current().entries.size(), 2u);
  wall_ += 5 * kMin - 1;
  r->Sweep();
  EXPECT_EQ(store_->GetAction(a.id)->state, "active");
  wall_ += 1;
  r->Sweep();
  EXPECT_EQ(store_->GetAction(a.id)->state, "expired");
  EXPECT_EQ(store_->GetAction(forever.id)->state, "active");  // no expiry
  ASSERT_EQ(fake_->current().entries.size(), 1u);
  EXPECT_EQ(fake_->current().entries[0]["id"], forever.id);
  EXPECT_EQ(fake_->current().entries[0]["expires_ns"], 0);
  EXPECT_EQ(AuditOps(a.id), (std::vector<std::string>{"block", "expire"}));
  EXPECT_EQ(r->counters().expired.load(), 1u);
  // The main loop's Poll sweeps too (once a second).
  const OpResult b = r->Apply({.type = Operation::Type::kBlock,
                               .duration_ns = kMin,
                               .kind = "quarantine_device",
                               .addr = "10.0.0.68"});
  wall_ += 2 * kMin;
  mono_ += 2 * kSec;
  r->Poll();
  EXPECT_EQ(store_->GetAction(b.id)->state, "expired");
  EXPECT_EQ(fake_->current().entries.size(), 1u);
}

TEST_F(RespondTest, RepushAfterDataplaneRestartAndGenerationDrift) {
  fake_->Start();
  auto r = Make();
  const OpResult a = r->Apply({.type = Operation::Type::kBlock,
                               .who = "carol",
                               .duration_ns = 60 * kMin,
                               .kind = "quarantine_device",
                               .addr = "10.0.0.66"});
  ASSERT_TRUE(a.pushed);
  mono_ += 2 * kSec;
  r->Poll();  // first hello: learns the boot id (and pushes from above its generation)
  const std::string first_boot = r->boot_id();
  EXPECT_EQ(first_boot, fake_->boot_id());
  const size_t before = fake_->tables().size();
  mono_ += 2 * kSec;
  r->Poll();  // same boot, same generation: nothing to do
  EXPECT_EQ(fake_->tables().size(), before);

  fake_->Restart();
  EXPECT_TRUE(fake_->current().entries.is_null());  // the restarted dataplane has no table
  mono_ += 2 * kSec;
  r->Poll();  // hello fails on the dead connection; the backoff starts
  mono_ += 10 * kSec;
  r->Poll();  // reconnects: new boot id -> the table again
  EXPECT_NE(r->boot_id(), first_boot);
  ASSERT_EQ(fake_->current().entries.size(), 1u);
  EXPECT_EQ(fake_->current().entries[0]["id"], a.id);
  EXPECT_EQ(r->counters().dataplane_restarts.load(), 1u);
  EXPECT_EQ(SystemOps(), std::vector<std::string>{"dataplane-restart"});
  EXPECT_TRUE(Logged("dataplane restarted"));

  // Somebody else changed the dataplane's generation: pushed again.
  fake_->set_generation(999);
  const size_t n = fake_->tables().size();
  mono_ += 2 * kSec;
  r->Poll();
  EXPECT_EQ(fake_->tables().size(), n + 1);
  EXPECT_EQ(fake_->current().generation, r->pushed_generation());
}

TEST_F(RespondTest, DisabledRecordsButNeverPushes) {
  fake_->Start();
  Options o;
  o.enabled = false;
  auto r = Make(o);
  const model::Model m = MakeModel(model::ResponseAction::kQuarantineDevice,
                                   model::ResponseMode::kAutonomous, 60 * kMin);
  std::string err;
  const int64_t id = r->OnBreach(Breach("10.0.0.9", "10.0.0.5", 445, "TCP"), m, &err);
  ASSERT_GT(id, 0);
  const auto a = store_->GetAction(id);
  EXPECT_EQ(a->state, "suppressed");
  EXPECT_EQ(a->mode, "alert");
  EXPECT_NE(a->reason.find("asks for autonomous"), std::string::npos) << a->reason;
  EXPECT_TRUE(r->PushIfChanged());
  EXPECT_FALSE(r->Push());
  const OpResult manual = r->Apply({.type = Operation::Type::kBlock,
                                    .who = "carol",
                                    .duration_ns = kMin,
                                    .kind = "quarantine_device",
                                    .addr = "10.0.0.66"});
  EXPECT_EQ(manual.status, 200);
  EXPECT_FALSE(manual.push_attempted);
  EXPECT_EQ(store_->GetAction(manual.id)->state, "suppressed");
  const model::Model c =
      MakeModel(model::ResponseAction::kQuarantineDevice, model::ResponseMode::kConfirm, 60 * kMin);
  const int64_t pending = r->OnBreach(Breach("10.0.0.10", "10.0.0.5", 445, "TCP"), c, &err);
  EXPECT_EQ(store_->GetAction(pending)->state, "suppressed");
  for (int i = 0; i < 5; ++i) {
    mono_ += 2 * kSec;
    r->Poll();
  }
  EXPECT_EQ(fake_->requests("hello") + fake_->requests("block.set"), 0u);
  EXPECT_TRUE(fake_->tables().empty());
  EXPECT_EQ(r->counters().created_suppressed.load(), 3u);
  // A suppressed action can be cleared (recorded), never activated.
  EXPECT_EQ(r->Apply({.type = Operation::Type::kConfirm, .id = id}).status, 409);
  EXPECT_EQ(r->Apply({.type = Operation::Type::kClear, .id = id, .who = "x"}).status, 200);
}

TEST_F(RespondTest, NeverBlockRefusesAndAudits) {
  fake_->Start();
  Options o;
  o.never_block = {"10.0.0.0/30", "fd00::1"};
  o.allow = {"10.0.0.53"};
  auto r = Make(o);
  const model::Model m = MakeModel(model::ResponseAction::kQuarantineDevice,
                                   model::ResponseMode::kAutonomous, 60 * kMin);
  std::string err;
  const int64_t id = r->OnBreach(Breach("10.0.0.2", "10.0.0.5", 445, "TCP"), m, &err);
  ASSERT_GT(id, 0);
  EXPECT_EQ(store_->GetAction(id)->state, "refused");
  EXPECT_EQ(store_->GetAction(id)->reason, "covered by respond.never_block 10.0.0.0/30");
  const auto audit = store_->Audit(id, 10);
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0].op, "refuse");
  EXPECT_NE(audit[0].detail.find("never_block 10.0.0.0/30"), std::string::npos);
  // A connection whose server is protected is refused too (manual: 409 and audited).
  const OpResult conn = r->Apply({.type = Operation::Type::kBlock,
                                  .who = "carol via API",
                                  .duration_ns = kMin,
                                  .kind = "block_connection",
                                  .addr = "10.0.0.9",
                                  .peer = "10.0.0.1",
                                  .server_port = 53,
                                  .proto = 17});
  EXPECT_EQ(conn.status, 409);
  EXPECT_NE(conn.error.find("never_block"), std::string::npos);
  EXPECT_EQ(store_->GetAction(conn.id)->state, "refused");
  EXPECT_EQ(AuditOps(conn.id), std::vector<std::string>{"refuse"});
  EXPECT_EQ(r->counters().created_refused.load(), 2u);
  // An allowed one goes out with the config's lists.
  const OpResult ok = r->Apply({.type = Operation::Type::kBlock,
                                .who = "carol",
                                .duration_ns = kMin,
                                .kind = "quarantine_device",
                                .addr = "10.0.0.9"});
  ASSERT_TRUE(ok.pushed);
  const auto t = fake_->current();
  ASSERT_EQ(t.entries.size(), 1u);
  EXPECT_EQ(t.entries[0]["id"], ok.id);
  EXPECT_EQ(t.never_block, (json{"10.0.0.0/30", "fd00::1"}));
  EXPECT_EQ(t.allow, json{"10.0.0.53"});
  // Bad targets are 400s and leave nothing behind.
  const size_t actions = store_->Actions("", 100).size();
  EXPECT_EQ(
      r->Apply({.type = Operation::Type::kBlock, .kind = "quarantine", .addr = "10.0.0.9"}).status,
      400);
  EXPECT_EQ(
      r->Apply({.type = Operation::Type::kBlock, .kind = "quarantine_device", .addr = "x"}).status,
      400);
  EXPECT_EQ(r->Apply({.type = Operation::Type::kBlock,
                      .kind = "block_connection",
                      .addr = "10.0.0.9",
                      .peer = "10.0.0.5"})
                .status,
            400);  // no server port
  EXPECT_EQ(store_->Actions("", 100).size(), actions);
}

// The dataplane's own never_block refuses an entry: that action is refused, the rest go out.
TEST_F(RespondTest, EntryRefusedByTheDataplane) {
  fake_->Start();
  auto r = Make();
  const OpResult a =
      r->Apply({.type = Operation::Type::kBlock, .kind = "quarantine_device", .addr = "10.0.0.66"});
  ASSERT_TRUE(a.pushed);
  fake_->set_refuse_id(a.id + 1);
  const OpResult b =
      r->Apply({.type = Operation::Type::kBlock, .kind = "quarantine_device", .addr = "10.9.9.9"});
  EXPECT_EQ(b.status, 200);
  EXPECT_TRUE(b.pushed) << b.push_error;
  EXPECT_EQ(b.id, a.id + 1);
  EXPECT_EQ(store_->GetAction(b.id)->state, "refused");
  EXPECT_NE(store_->GetAction(b.id)->reason.find("never blocked"), std::string::npos);
  ASSERT_EQ(fake_->current().entries.size(), 1u);
  EXPECT_EQ(fake_->current().entries[0]["id"], a.id);
  EXPECT_EQ(AuditOps(b.id), (std::vector<std::string>{"block", "refuse"}));
}

TEST_F(RespondTest, AbsentSocketFailsFastThenPushesWhenItAppears) {
  auto r = Make();
  const auto t0 = std::chrono::steady_clock::now();
  const OpResult a = r->Apply({.type = Operation::Type::kBlock,
                               .who = "carol",
                               .duration_ns = kMin,
                               .kind = "quarantine_device",
                               .addr = "10.0.0.66"});
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, std::chrono::milliseconds(100));
  EXPECT_EQ(a.status, 200);  // recorded; the push is retried
  EXPECT_TRUE(a.push_attempted);
  EXPECT_FALSE(a.pushed);
  EXPECT_NE(a.push_error.find("cannot connect to " + socket_), std::string::npos) << a.push_error;
  EXPECT_EQ(r->counters().push_failures.load(), 1u);
  EXPECT_EQ(SystemOps(), std::vector<std::string>{"push-failed"});
  // Polls while it is absent: bounded, and logged/audited once.
  for (int i = 0; i < 3; ++i) {
    mono_ += 2 * kSec;
    const auto p0 = std::chrono::steady_clock::now();
    r->Poll();
    EXPECT_LT(std::chrono::steady_clock::now() - p0, std::chrono::milliseconds(100));
  }
  EXPECT_EQ(SystemOps().size(), 1u);
  EXPECT_FALSE(r->PushIfChanged());  // a forced attempt, still failing fast
  fake_->Start();
  EXPECT_TRUE(r->PushIfChanged());
  ASSERT_EQ(fake_->current().entries.size(), 1u);
  EXPECT_EQ(fake_->current().entries[0]["id"], a.id);
  EXPECT_TRUE(Logged("push works again"));
}

TEST_F(RespondTest, HungDataplaneIsBoundedByTheTimeout) {
  fake_->Start();
  fake_->set_hang(true);
  auto r = Make();
  const auto t0 = std::chrono::steady_clock::now();
  const OpResult a =
      r->Apply({.type = Operation::Type::kBlock, .kind = "quarantine_device", .addr = "10.0.0.66"});
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_FALSE(a.pushed);
  EXPECT_NE(a.push_error.find("no answer within 100 ms"), std::string::npos) << a.push_error;
  EXPECT_GE(took, std::chrono::milliseconds(90));
  EXPECT_LT(took, std::chrono::milliseconds(300));
  fake_->set_hang(false);
  mono_ += 10 * kSec;
  r->Poll();  // hello after the backoff: pushes the pending change
  ASSERT_EQ(fake_->current().entries.size(), 1u);
  EXPECT_EQ(r->pushed_generation(), r->generation());
}

TEST_F(RespondTest, CountersAreReadBackAndNeverGoBackwards) {
  fake_->Start();
  auto r = Make();
  const OpResult a =
      r->Apply({.type = Operation::Type::kBlock, .kind = "quarantine_device", .addr = "10.0.0.66"});
  ASSERT_TRUE(a.pushed);
  const int64_t first = kWallStart + 1234;
  fake_->set_counters(a.id, 17, 2, first);
  mono_ += 3 * kSec;
  r->Poll();
  auto s = store_->GetAction(a.id);
  EXPECT_EQ(s->drops, 17u);
  EXPECT_EQ(s->resets, 2u);
  EXPECT_EQ(s->first_drop_ns, first);
  EXPECT_EQ(s->counters_ns, kWallStart);
  // The dataplane restarts: its counters start again; what is stored keeps growing.
  fake_->Restart();
  fake_->set_counters(a.id, 5, 0, first + 999);
  mono_ += 3 * kSec;
  r->Poll();
  mono_ += 10 * kSec;
  r->Poll();  // reconnect, restart seen, table pushed again
  mono_ += 3 * kSec;
  r->Poll();
  s = store_->GetAction(a.id);
  EXPECT_EQ(s->drops, 22u);
  EXPECT_EQ(s->resets, 2u);
  EXPECT_EQ(s->first_drop_ns, first);  // the earliest is kept
  EXPECT_GE(fake_->requests("block.get"), 2u);
}

TEST_F(RespondTest, CommandClientChecksTheAnswer) {
  fake_->Start();
  CommandClient c({.socket_path = socket_});
  std::string err;
  auto hello = c.Call("hello", json::object(), &err);
  ASSERT_TRUE(hello) << err;
  EXPECT_EQ((*hello)["ok"], true);
  EXPECT_EQ((*hello)["boot_id"], fake_->boot_id());
  auto unknown = c.Call("rules.load", json::object(), &err);
  ASSERT_TRUE(unknown);  // a refusal is an answer, not a transport failure
  EXPECT_EQ((*unknown)["ok"], false);
  EXPECT_TRUE(c.connected());
  CommandClient absent({.socket_path = dir_.path() + "/none.sock"});
  EXPECT_FALSE(absent.Call("hello", json::object(), &err));
  EXPECT_FALSE(absent.due());  // backing off
  EXPECT_NE(err.find("none.sock"), std::string::npos);
  EXPECT_FALSE(absent.Call("hello", json::object(), &err));
  EXPECT_NE(err.find("waiting to reconnect"), std::string::npos) << err;
}

// The routes over a real HTTP server: changes need the token (401 without), the operation
// reaches the responder with "who via API", and the breach shows its action.
TEST_F(RespondTest, ApiRoutesNeedTheTokenAndWork) {
  fake_->Start();
  auto r = Make();
  const model::Model m =
      MakeModel(model::ResponseAction::kQuarantineDevice, model::ResponseMode::kConfirm, 60 * kMin);
  std::string err;
  const store::Breach b = Breach("10.0.0.9", "10.0.0.5", 445, "TCP");
  const int64_t id = r->OnBreach(b, m, &err);
  ASSERT_GT(id, 0);
  auto reader = store::Store::Open({.dir = dir_.path(), .read_only = true}, &err);
  ASSERT_NE(reader, nullptr) << err;
  std::mutex mu;  // the responder is single-threaded: the HTTP thread is its only caller here
  int ops = 0;
  const std::string token = "0123456789abcdef0123456789abcdef";
  api::Api a(reader.get(), nullptr, nullptr, nullptr, nullptr, token);
  a.set_respond([&](const Operation& op) {
    std::lock_guard<std::mutex> lock(mu);
    ++ops;
    return r->Apply(op);
  });
  api::HttpServer server;
  ASSERT_EQ(server.Listen("127.0.0.1:0", ""), "");
  std::thread t([&] { server.Serve([&](const api::Request& q) { return a.Handle(q); }); });
  const std::string ep = "127.0.0.1:" + std::to_string(server.tcp_port());
  const std::string auth = "Authorization: Bearer " + token + "\r\n";
  auto call = [&](const std::string& method, const std::string& target, const std::string& body,
                  const std::string& hdr) {
    cli::HttpResult res;
    EXPECT_EQ(cli::HttpRequest(ep, method, target, body, &res, hdr), "");
    return res;
  };
  const std::string path = "/api/v1/respond/actions/" + std::to_string(id);
  const std::string block =
      R"({"kind":"block_connection","addr":"10.0.0.9","peer":"10.0.0.5","server_port":445,)"
      R"("proto":"tcp","duration":"30m","who":"alice","reason":"lateral movement"})";
  for (const std::string& target : {path + "/confirm", path + "/clear", path + "/extend",
                                    std::string("/api/v1/respond/block")}) {
    EXPECT_EQ(call("POST", target, R"({"who":"mallory"})", "").status, 401) << target;
    EXPECT_EQ(call("POST", target, block, "Authorization: Bearer nope\r\n").status, 401) << target;
  }
  EXPECT_EQ(ops, 0);
  EXPECT_EQ(store_->GetAction(id)->state, "pending");
  // Reads need no token.
  cli::HttpResult res = call("GET", "/api/v1/respond/actions?state=pending", "", "");
  ASSERT_EQ(res.status, 200) << res.body;
  json j = json::parse(res.body);
  ASSERT_EQ(j["actions"].size(), 1u);
  EXPECT_EQ(j["actions"][0]["id"], id);
  EXPECT_EQ(call("GET", "/api/v1/respond/actions?state=bogus", "", "").status, 400);
  j = json::parse(call("GET", "/api/v1/breaches/" + std::to_string(b.id), "", "").body);
  EXPECT_EQ(j["action"]["id"], id);
  EXPECT_EQ(j["action"]["state"], "pending");
  // Bad bodies.
  EXPECT_EQ(call("POST", path + "/confirm", R"({"whom":"x"})", auth).status, 400);
  EXPECT_EQ(call("POST", path + "/extend", R"({"who":"x"})", auth).status, 400);
  EXPECT_EQ(call("POST", path + "/extend", R"({"duration":"soon"})", auth).status, 400);
  EXPECT_EQ(call("POST", path + "/explode", "", auth).status, 404);
  EXPECT_EQ(call("POST", "/api/v1/respond/actions/999/confirm", "", auth).status, 404);
  // With the token.
  res = call("POST", path + "/confirm", R"({"who":"alice","reason":"confirmed with IT"})", auth);
  ASSERT_EQ(res.status, 200) << res.body;
  j = json::parse(res.body);
  EXPECT_EQ(j["state"], "active");
  EXPECT_EQ(j["push"]["pushed"], true);
  EXPECT_EQ(j["expires_ns"], kWallStart + 60 * kMin);
  EXPECT_EQ(fake_->current().entries.size(), 1u);
  res = call("POST", path + "/extend", R"({"who":"alice","duration":"30m"})", auth);
  ASSERT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(json::parse(res.body)["expires_ns"], kWallStart + 90 * kMin);
  res = call("POST", "/api/v1/respond/block", block, auth);
  ASSERT_EQ(res.status, 200) << res.body;
  j = json::parse(res.body);
  EXPECT_EQ(j["kind"], "block_connection");
  EXPECT_EQ(j["target"], "10.0.0.9 -> 10.0.0.5:445/tcp");
  EXPECT_EQ(fake_->current().entries.size(), 2u);
  EXPECT_EQ(call("POST", "/api/v1/respond/block", R"({"kind":"quarantine_device"})", auth).status,
            400);  // no duration
  res = call("POST", path + "/clear", R"({"who":"bob"})", auth);
  ASSERT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(fake_->current().entries.size(), 1u);
  EXPECT_EQ(call("POST", path + "/clear", R"({"who":"bob"})", auth).status, 409);
  // The action with its audit trail; the audit log.
  j = json::parse(call("GET", path, "", "").body);
  EXPECT_EQ(j["state"], "cleared");
  ASSERT_EQ(j["audit"].size(), 4u);
  EXPECT_EQ(j["audit"][0]["op"], "clear");
  EXPECT_EQ(j["audit"][0]["who"], "bob via API");
  EXPECT_EQ(j["audit"][2]["who"], "alice via API");
  EXPECT_EQ(j["audit"][3]["op"], "create");
  j = json::parse(call("GET", "/api/v1/respond/audit", "", "").body);
  EXPECT_EQ(j["audit"].size(), 5u);  // + the manual block
  EXPECT_EQ(call("GET", "/api/v1/respond/actions/x", "", "").status, 400);
  EXPECT_EQ(call("GET", "/api/v1/respond/actions/4242", "", "").status, 404);
  server.Stop();
  t.join();
  // Without a responder (vigilctl --data-dir) changes are refused.
  api::Api ro(reader.get(), nullptr, nullptr, nullptr, nullptr, token);
  api::Request q;
  q.method = "POST";
  q.path = path + "/clear";
  q.headers["authorization"] = "Bearer " + token;
  EXPECT_EQ(ro.Handle(q).status, 405);
}

}  // namespace
}  // namespace vigil::ctl::respond
