// The control store: schema, reopen and dedup, search and count against a brute-force
// query::Query::Matches over every event, retention by age and size, breaches, durability after
// kill -9, read-only readers beside a writer, and error paths.
#include "control/store/store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>

namespace vigil::ctl::store {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr int64_t kSec = 1'000'000'000;
constexpr int64_t kDay = 86'400 * kSec;
// 2024-01-01T00:00:00Z
constexpr int64_t kBase = 1'704'067'200 * kSec;

std::string Timestamp(int64_t ns) {
  const time_t secs = static_cast<time_t>(ns / kSec);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lld+0000", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>((ns % kSec) / 1000));
  return buf;
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/vigil_store_test_XXXXXX";
    path_ = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A deterministic mix of the EVE shapes the dataplane writes, with the awkward bits the query
// language must survive: paths with backslashes, `$` shares, dotted names, `+` and `%` inside
// tokens, upper/lower case, arrays of objects, IPv6, unicode, events without message.
json MakeEvent(std::mt19937_64& rng, int64_t ts) {
  auto pick = [&](std::initializer_list<const char*> l) {
    return std::string(*(l.begin() + rng() % l.size()));
  };
  json e;
  e["timestamp"] = Timestamp(ts);
  e["flow_id"] = 1000 + rng() % 200;
  e["src_ip"] =
      pick({"10.0.0.9", "10.1.2.3", "192.168.10.31", "172.16.5.4", "2001:db8::5", "fe80::1"});
  e["dest_ip"] = pick({"10.0.0.5", "192.168.10.30", "8.8.8.8", "2001:db8::53"});
  e["src_port"] = 1024 + rng() % 60000;
  e["proto"] = "TCP";
  e["host"] = "vigil";
  switch (rng() % 9) {
    case 0:
    case 1:
    case 2: {
      const std::string file =
          pick({"atsvc", "Windows\\Tasks\\AV.job", "Windows\\Tasks\\At1.JOB", "svcctl", "winreg",
                "samr", "evil.exe", "readme.txt", "100%_done.txt", "a+b.dat", "Ünïcode_Fïlé.txt"});
      const std::string share = pick({"IPC$", "C$", "ADMIN$"});
      e["event_type"] = "smb";
      e["app_proto"] = "smb";
      e["dest_port"] = rng() % 4 == 0 ? 139 : 445;
      const std::string cmd =
          pick({"SMB2_COMMAND_CREATE", "SMB2_COMMAND_READ", "SMB2_COMMAND_CLOSE"});
      e["smb"] = {{"command", cmd},       {"status", "STATUS_SUCCESS"},
                  {"filename", file},     {"share", "\\\\10.0.0.5\\" + share},
                  {"tree_id", rng() % 5}, {"id", rng() % 100}};
      if (rng() % 3 == 0) {
        const std::string svc = pick({"atsvc", "svcctl", "samr", "drsuapi"});
        e["smb"]["dcerpc"] = {
            {"request", "REQUEST"},
            {"opnum", rng() % 40},
            {"interfaces", json::array({{{"uuid", "1ff70682-0a51-30e8-076d-740be8cee98b"},
                                         {"service", svc},
                                         {"ack_result", 0}}})}};
      }
      if (rng() % 5 == 0) {
        e["smb"]["ntlmssp"] = {{"user", pick({"appadmin", "Administrator"})},
                               {"domain", "CORP"},
                               {"host", "AVMGMT01"}};
      }
      e["message"] = "SMB2 " + cmd.substr(13) + " success \\\\10.0.0.5\\" + share + " " + file;
      break;
    }
    case 3: {
      const std::string name =
          pick({"www.example.com", "evil.EXAMPLE.org", "host.corp.local", "café.example.fr"});
      const std::string type = pick({"A", "AAAA", "TXT"});
      e["event_type"] = "dns";
      e["app_proto"] = "dns";
      e["proto"] = "UDP";
      e["dest_port"] = 53;
      e["dns"] = {{"type", "query"}, {"rrname", name}, {"rrtype", type}, {"id", rng() % 65536}};
      e["message"] = "DNS QUERY " + type + " " + name;
      break;
    }
    case 4: {
      const std::string host = pick({"www.example.com", "update.vendor.net", "10.0.0.5:8080"});
      const std::string url = pick({"/index.html", "/search?q=a+b&x=1", "/admin/login.php"});
      e["event_type"] = "http";
      e["app_proto"] = "http";
      e["dest_port"] = rng() % 2 ? 80 : 5000;
      e["http"] = {{"hostname", host},
                   {"url", url},
                   {"http_user_agent", "Mozilla/5.0 (X11; Linux x86_64)"},
                   {"status", rng() % 2 ? 200 : 404},
                   {"length", rng() % 100000}};
      e["message"] = "HTTP GET " + host + url;
      break;
    }
    case 5: {
      e["event_type"] = "tls";
      e["app_proto"] = "tls";
      e["dest_port"] = 443;
      e["tls"] = {{"sni", pick({"login.microsoftonline.com", "www.example.com"})},
                  {"version", pick({"TLS 1.2", "TLS 1.3"})}};
      e["message"] = "TLS " + e["tls"]["version"].get<std::string>() + " " +
                     e["tls"]["sni"].get<std::string>();
      break;
    }
    case 6: {
      e["event_type"] = "krb5";
      e["app_proto"] = "krb5";
      e["dest_port"] = 88;
      const std::string sname =
          pick({"MSSQLSvc/db01.corp.local:1433", "krbtgt/CORP.LOCAL", "HTTP/web.corp.local"});
      e["krb5"] = {{"msg_type", "KRB_TGS_REQ"},
                   {"sname", sname},
                   {"cname", "appadmin"},
                   {"encryption", "rc4-hmac"}};
      e["message"] = "KRB5 TGS-REQ appadmin " + sname;
      break;
    }
    case 7: {
      e["event_type"] = "flow";
      e["app_proto"] = pick({"smb", "dns", "failed"});
      e["dest_port"] = 445;
      e["flow"] = {{"pkts_toserver", rng() % 100},
                   {"bytes_toserver", rng() % 100000},
                   {"state", "closed"},
                   {"reason", "timeout"}};
      break;  // flow records carry no message
    }
    default: {
      e["event_type"] = "anomaly";
      e["app_proto"] = "smb";
      e["dest_port"] = 445;
      e["anomaly"] = {{"type", "applayer"},
                      {"event", "INVALID_NBSS_LENGTH"},
                      {"app_proto", "smb"},
                      {"layer", "proto_parser"}};
      e["message"] = "anomaly applayer smb INVALID_NBSS_LENGTH";
      break;
    }
  }
  return e;
}

std::vector<EventIn> MakeBatch(std::mt19937_64& rng, const std::string& sensor, uint64_t first_seq,
                               size_t n, int64_t from_ns, int64_t span_ns) {
  std::vector<EventIn> out;
  for (size_t i = 0; i < n; ++i) {
    const int64_t ts = from_ns + static_cast<int64_t>(rng() % static_cast<uint64_t>(span_ns));
    out.push_back({sensor, first_seq + i, MakeEvent(rng, ts).dump()});
  }
  return out;
}

std::unique_ptr<Store> OpenOrDie(const Options& o) {
  std::string err;
  auto s = Store::Open(o, &err);
  EXPECT_NE(s, nullptr) << err;
  return s;
}

query::Query Q(const std::string& text) {
  query::Error e;
  auto q = query::Query::Parse(text, &e);
  EXPECT_TRUE(q.has_value()) << text << ": column " << e.column << ": " << e.message;
  if (!q) return *query::Query::Parse("*", &e);
  return *q;
}

std::map<std::string, uint64_t> CountMap(const std::vector<std::pair<std::string, uint64_t>>& v) {
  return {v.begin(), v.end()};
}

Breach MakeBreach(const std::string& model, const std::string& device, int64_t ts,
                  std::vector<BreachEventRef> events = {}) {
  Breach b;
  b.model = model;
  b.device = device;
  b.ts_ns = ts;
  b.priority = 1;
  b.events = std::move(events);
  return b;
}

struct Truth {
  int64_t id;
  int64_t ts;
  json event;
};

// Every stored event, read back through Event(id), for brute-force comparisons.
std::vector<Truth> AllEvents(Store* s, int64_t max_id) {
  std::vector<Truth> out;
  for (int64_t id = 1; id <= max_id; ++id) {
    if (auto e = s->Event(id)) out.push_back({e->id, e->ts_ns, json::parse(e->json)});
  }
  return out;
}

const std::vector<std::string>& TestQueries() {
  static const std::vector<std::string> q = {
      "*.JOB AND SMB",
      "AV.job AND SMB",
      "av.JOB",
      "AV.j?b",
      "*.job",
      "at?.job",
      "atsvc",
      "\"IPC$ atsvc\"",
      "\"windows tasks av.job\"",
      "IPC$",
      "C$",
      "ADMIN$",
      "smb",
      "dns",
      "NTLM",
      "ntlm AND appadmin",
      "http OR tls",
      "NOT smb",
      "smb AND NOT atsvc",
      "NOT (smb OR dns OR flow)",
      "(atsvc OR samr) AND NOT \"C$\"",
      "smb.filename:*.job",
      "smb.filename:*TASKS*",
      "smb.dcerpc.interfaces.service:atsvc",
      "smb.dcerpc.opnum:[0 TO 10]",
      "smb.dcerpc:*",
      "smb.ntlmssp.user:appadmin",
      "event_type:dns",
      "event_type:d*",
      "dns.rrname:*.example.com",
      "dns.rrname:*.EXAMPLE.*",
      "dns.rrtype:AAAA OR dns.rrtype:TXT",
      "src_ip:10.0.0.0/8",
      "src_ip:192.168.0.0/16 AND dest_port:445",
      "src_ip:\"2001:db8::/32\"",
      "NOT src_ip:10.0.0.0/8",
      "dest_port:[1 TO 1024]",
      "dest_port:{139 TO 445}",
      "dest_port:[444 TO *]",
      "dest_port:445",
      "http.status:404",
      "http.length:{50000 TO *]",
      "http.url:*a+b*",
      "a+b",
      "a+b.dat",
      "100%_done.txt",
      "search",
      "x86_64",
      "krb5.sname:MSSQLSvc*",
      "MSSQLSvc*",
      "krbtgt",
      "rc4-hmac",
      "\"tls 1.3\"",
      "tls.version:\"TLS 1.3\"",
      "café.example.fr",
      "Ünïcode_Fïlé.txt",
      "flow.state:closed AND app_proto:failed",
      "message:*NBSS*",
      "message:*",
      "anomaly",
      "invalid_nbss_length",
      "windows AND tasks",
      "tasks",
      "10.0.0.5",
      "\\\\10.0.0.5\\IPC$",
      "smb.share:*IPC$",
      "STATUS_SUCCESS AND NOT smb.command:SMB2_COMMAND_CLOSE",
      "evil*",
      "*vendor*",
      "nosuchtoken",
      "corp",
      "avmgmt01",
  };
  return q;
}

TEST(StoreTimeTest, ParsesEveTimestamps) {
  EXPECT_EQ(ParseEveTimestamp("1970-01-01T00:00:00+0000"), 0);
  EXPECT_EQ(ParseEveTimestamp("2017-10-20T18:43:22.992213+0000"),
            int64_t{1508525002} * kSec + 992213000);
  EXPECT_EQ(ParseEveTimestamp("2017-10-20T18:43:22.992213Z"),
            int64_t{1508525002} * kSec + 992213000);
  EXPECT_EQ(ParseEveTimestamp("2017-10-20T20:43:22+02:00"), int64_t{1508525002} * kSec);
  EXPECT_EQ(ParseEveTimestamp("2017-10-20T18:43:22.123456789123+0000"),
            int64_t{1508525002} * kSec + 123456789);
  EXPECT_EQ(ParseEveTimestamp("1969-12-31T23:59:59+0000"), -kSec);
  EXPECT_FALSE(ParseEveTimestamp("2017-10-20"));
  EXPECT_FALSE(ParseEveTimestamp("2017-13-20T18:43:22+0000"));
  EXPECT_FALSE(ParseEveTimestamp("2017-10-20T18:43:22.+0000"));
  EXPECT_FALSE(ParseEveTimestamp("2017-10-20T18:43:22+00"));
  EXPECT_FALSE(ParseEveTimestamp("2017-10-20T18:43:22 junk"));
  EXPECT_EQ(DayKey(int64_t{1508525002} * kSec), "2017-10-20");
  EXPECT_EQ(HourKey(int64_t{1508525002} * kSec), "2017-10-20T18");
  EXPECT_EQ(DayKey(-1), "1969-12-31");
  EXPECT_EQ(HourKey(-1), "1969-12-31T23");
  EXPECT_EQ(Timestamp(kBase), "2024-01-01T00:00:00.000000+0000");
  EXPECT_EQ(ParseEveTimestamp(Timestamp(kBase + 5 * kDay + 1234000)), kBase + 5 * kDay + 1234000);
}

TEST(StoreTest, CreatesSchemaInWalModeAndReopens) {
  TempDir dir;
  {
    auto s = OpenOrDie({.dir = dir.path()});
    ASSERT_TRUE(s);
    std::mt19937_64 rng(1);
    auto batch = MakeBatch(rng, "s1", 1, 10, kBase, kDay);
    std::vector<int64_t> ids;
    std::string err;
    ASSERT_TRUE(s->InsertEvents(batch, &ids, &err)) << err;
    EXPECT_EQ(ids.size(), 10u);
    for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(ids[i], static_cast<int64_t>(i + 1));
    EXPECT_TRUE(s->CheckIntegrity(&err)) << err;
  }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir.path() + "/vigil.db").c_str(), &db), SQLITE_OK);
  auto text = [&](const char* sql) {
    sqlite3_stmt* st = nullptr;
    std::string out;
    if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
      out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return out;
  };
  EXPECT_EQ(text("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(text("PRAGMA auto_vacuum"), "2");  // incremental
  for (const char* idx : {"events_sensor_seq", "events_ts", "events_src", "events_dest",
                          "events_type", "events_flow"}) {
    EXPECT_EQ(
        text((std::string("SELECT name FROM sqlite_master WHERE name='") + idx + "'").c_str()),
        idx);
  }
  EXPECT_EQ(text("SELECT count(*) FROM events"), "10");
  EXPECT_EQ(text("SELECT src_ip IS NOT NULL AND event_type IS NOT NULL FROM events LIMIT 1"), "1");
  sqlite3_close(db);

  // A stopped store (clean close: no WAL left) opens read-only, also for a user who may not
  // write the directory (vigilctl --data-dir as another user): a child drops to `nobody`.
  EXPECT_FALSE(fs::exists(dir.path() + "/vigil.db-wal"));
  {
    auto r = OpenOrDie({.dir = dir.path(), .read_only = true});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->GetStats().events, 10u);
    EXPECT_EQ(r->LastSeq("s1"), 10u);
  }
  fs::remove(dir.path() + "/vigil.db-wal");
  fs::remove(dir.path() + "/vigil.db-shm");
  chmod(dir.path().c_str(), 0755);
  if (getuid() == 0) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      if (setgid(65534) != 0 || setuid(65534) != 0) _exit(10);
      std::string e;
      auto r = Store::Open({.dir = dir.path(), .read_only = true}, &e);
      if (!r) {
        std::fprintf(stderr, "read-only as nobody: %s\n", e.c_str());
        _exit(11);
      }
      uint64_t total = 0;
      r->Search(*query::Query::Parse("*", nullptr), {}, &total);
      _exit(total == 10 ? 0 : 12);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }

  auto s = OpenOrDie({.dir = dir.path()});
  ASSERT_TRUE(s);
  EXPECT_EQ(s->GetStats().events, 10u);
  EXPECT_EQ(s->LastSeq("s1"), 10u);
  const auto e = s->Event(3);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->sensor, "s1");
  EXPECT_EQ(e->seq, 3u);
  const json j = json::parse(e->json);
  EXPECT_EQ(e->ts_ns, ParseEveTimestamp(j["timestamp"].get<std::string>()));
  EXPECT_EQ(e->event_type, j["event_type"].get<std::string>());
  EXPECT_EQ(e->flow_id, j["flow_id"].get<uint64_t>());
  EXPECT_EQ(e->message, j.value("message", ""));
  EXPECT_FALSE(s->Event(11));
}

TEST(StoreTest, DedupsBySensorAndSeqAcrossReopen) {
  TempDir dir;
  std::mt19937_64 rng(2);
  auto first = MakeBatch(rng, "s1", 1, 100, kBase, kDay);
  auto again = MakeBatch(rng, "s1", 50, 101, kBase, kDay);  // 50..150
  auto other = MakeBatch(rng, "s2", 1, 20, kBase, kDay);
  std::string err;
  std::vector<int64_t> ids;
  {
    auto s = OpenOrDie({.dir = dir.path()});
    ASSERT_TRUE(s->InsertEvents(first, &ids, &err)) << err;
    // Resent within the same process: all skipped.
    ASSERT_TRUE(s->InsertEvents(std::span(first).subspan(90), &ids, &err)) << err;
    for (int64_t id : ids) EXPECT_EQ(id, 0);
  }
  auto s = OpenOrDie({.dir = dir.path()});
  EXPECT_EQ(s->LastSeq("s1"), 100u);
  EXPECT_EQ(s->LastSeq("s2"), 0u);
  ASSERT_TRUE(s->InsertEvents(again, &ids, &err)) << err;
  for (size_t i = 0; i < again.size(); ++i) {
    if (again[i].seq <= 100) {
      EXPECT_EQ(ids[i], 0) << again[i].seq;
    } else {
      EXPECT_GT(ids[i], 0) << again[i].seq;
    }
  }
  ASSERT_TRUE(s->InsertEvents(other, &ids, &err)) << err;
  EXPECT_EQ(s->LastSeq("s1"), 150u);
  EXPECT_EQ(s->LastSeq("s2"), 20u);
  EXPECT_EQ(s->GetStats().events, 170u);
  const auto sensors = s->Sensors();
  ASSERT_EQ(sensors.size(), 2u);
  EXPECT_EQ(sensors[0], std::make_pair(std::string("s1"), uint64_t{150}));

  // Unparsable JSON consumes its seq (so a resend cannot loop) but stores nothing.
  std::vector<EventIn> bad = {{"s2", 21, "{not json"}, {"s2", 22, "[1,2]"}, {"s2", 23, "{}"}};
  ASSERT_TRUE(s->InsertEvents(bad, &ids, &err)) << err;
  EXPECT_EQ(ids[0], 0);
  EXPECT_EQ(ids[1], 0);
  EXPECT_GT(ids[2], 0);  // an empty object is an event without fields (ts 0)
  EXPECT_EQ(s->LastSeq("s2"), 23u);
  EXPECT_EQ(s->GetStats().rejected, 2u);
  EXPECT_EQ(s->Event(ids[2])->ts_ns, 0);
}

class StoreSearchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = OpenOrDie({.dir = dir_.path()});
    std::mt19937_64 rng(42);
    uint64_t seq = 1;
    // 1500 events over 90 days from two sensors, in batches as the channel delivers them.
    for (int b = 0; b < 15; ++b) {
      auto batch = MakeBatch(rng, b % 2 ? "s2" : "s1", seq, 100, kBase, 90 * kDay);
      if (b % 2 == 0) seq += 100;
      std::vector<int64_t> ids;
      std::string err;
      ASSERT_TRUE(store_->InsertEvents(batch, &ids, &err)) << err;
      max_id_ = std::max(max_id_, *std::max_element(ids.begin(), ids.end()));
    }
    truth_ = AllEvents(store_.get(), max_id_);
    ASSERT_EQ(truth_.size(), 1500u);
  }

  // Brute force: ids of matching events in [from, to], newest first (ties: larger id first).
  std::vector<int64_t> Expected(const query::Query& q, int64_t from, int64_t to) const {
    std::vector<const Truth*> m;
    for (const Truth& t : truth_) {
      if (t.ts >= from && t.ts <= to && q.Matches(t.event)) m.push_back(&t);
    }
    std::sort(m.begin(), m.end(), [](const Truth* a, const Truth* b) {
      return a->ts != b->ts ? a->ts > b->ts : a->id > b->id;
    });
    std::vector<int64_t> ids;
    for (const Truth* t : m) ids.push_back(t->id);
    return ids;
  }

  TempDir dir_;
  std::unique_ptr<Store> store_;
  std::vector<Truth> truth_;
  int64_t max_id_ = 0;
};

TEST_F(StoreSearchTest, SearchEqualsBruteForceMatches) {
  size_t nonempty = 0, with_prefilter = 0;
  for (const std::string& text : TestQueries()) {
    SCOPED_TRACE(text);
    const query::Query q = Q(text);
    if (!q.Fts5Prefilter().empty()) ++with_prefilter;
    for (const auto& [from, to] : std::vector<std::pair<int64_t, int64_t>>{
             {INT64_MIN, INT64_MAX}, {kBase + 10 * kDay, kBase + 40 * kDay}}) {
      const std::vector<int64_t> want = Expected(q, from, to);
      uint64_t total = 0;
      std::string err;
      const auto got =
          store_->Search(q, {.from_ns = from, .to_ns = to, .limit = 100000}, &total, &err);
      EXPECT_TRUE(err.empty()) << err;
      EXPECT_TRUE(store_->last_error().empty()) << store_->last_error();
      std::vector<int64_t> got_ids;
      for (const auto& e : got) got_ids.push_back(e.id);
      EXPECT_EQ(got_ids, want) << "prefilter: " << q.Fts5Prefilter();
      EXPECT_EQ(total, want.size());
      if (!want.empty()) ++nonempty;
      // Limit and order: the newest `limit`, and the oldest first on request.
      const auto top = store_->Search(q, {.from_ns = from, .to_ns = to, .limit = 7}, &total);
      EXPECT_EQ(total, want.size());
      ASSERT_EQ(top.size(), std::min<size_t>(7, want.size()));
      for (size_t i = 0; i < top.size(); ++i) EXPECT_EQ(top[i].id, want[i]);
      const auto oldest = store_->Search(
          q, {.from_ns = from, .to_ns = to, .limit = 3, .newest_first = false}, nullptr);
      ASSERT_EQ(oldest.size(), std::min<size_t>(3, want.size()));
      for (size_t i = 0; i < oldest.size(); ++i) EXPECT_EQ(oldest[i].id, want[want.size() - 1 - i]);
    }
  }
  // The corpus must exercise both paths and find things.
  EXPECT_GT(nonempty, TestQueries().size() * 3 / 2);
  EXPECT_GT(with_prefilter, 20u);
}

// The FTS5 index and Fts5Prefilter() agree: every event Matches accepts is an FTS candidate
// (checked directly, without the search's fallback path).
TEST_F(StoreSearchTest, Fts5PrefilterIsNecessaryUnderTheIndex) {
  sqlite3* db = nullptr;
  ASSERT_EQ(
      sqlite3_open_v2((dir_.path() + "/vigil.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr),
      SQLITE_OK);
  size_t checked = 0;
  for (const std::string& text : TestQueries()) {
    const query::Query q = Q(text);
    const std::string pf = q.Fts5Prefilter();
    if (pf.empty()) continue;
    SCOPED_TRACE(text + "  =>  " + pf);
    sqlite3_stmt* st = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT rowid FROM events_fts WHERE events_fts MATCH ?1", -1,
                                 &st, nullptr),
              SQLITE_OK);
    sqlite3_bind_text(st, 1, pf.c_str(), -1, SQLITE_STATIC);
    std::set<int64_t> cand;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) cand.insert(sqlite3_column_int64(st, 0));
    EXPECT_EQ(rc, SQLITE_DONE) << sqlite3_errmsg(db);
    sqlite3_finalize(st);
    for (int64_t id : Expected(q, INT64_MIN, INT64_MAX)) EXPECT_TRUE(cand.count(id)) << id;
    ++checked;
  }
  sqlite3_close(db);
  EXPECT_GT(checked, 20u);
}

TEST_F(StoreSearchTest, CountByDayHourAndField) {
  for (const std::string text : {"*.JOB AND SMB", "AV.job AND SMB", "dns", "NOT smb"}) {
    SCOPED_TRACE(text);
    const query::Query q = Q(text);
    std::map<std::string, uint64_t> day, hour, command, service;
    for (const Truth& t : truth_) {
      if (!q.Matches(t.event)) continue;
      ++day[DayKey(t.ts)];
      ++hour[HourKey(t.ts)];
      if (t.event.contains("smb")) ++command[t.event["smb"]["command"].get<std::string>()];
      if (t.event.contains("smb") && t.event["smb"].contains("dcerpc")) {
        for (const auto& i : t.event["smb"]["dcerpc"]["interfaces"]) {
          ++service[i["service"].get<std::string>()];
        }
      }
    }
    const auto d = store_->Count(q, {}, CountBy::kDay);
    EXPECT_EQ(CountMap(d), day);
    EXPECT_TRUE(std::is_sorted(d.begin(), d.end()));
    const auto h = store_->Count(q, {.limit = 1}, CountBy::kHour);  // limit ignored for time
    EXPECT_EQ(CountMap(h), hour);
    const auto c = store_->Count(q, {}, CountBy::kField, "smb.command");
    EXPECT_EQ(CountMap(c), command);
    for (size_t i = 1; i < c.size(); ++i) EXPECT_GE(c[i - 1].second, c[i].second);
    const auto sv = store_->Count(q, {}, CountBy::kField, "smb.dcerpc.interfaces.service");
    EXPECT_EQ(CountMap(sv), service);
  }
  // Numbers count by their JSON text; limit keeps the most frequent.
  const auto ports = store_->Count(Q("*"), {.limit = 2}, CountBy::kField, "dest_port");
  ASSERT_EQ(ports.size(), 2u);
  EXPECT_EQ(ports[0].first, "445");
  std::string err;
  EXPECT_TRUE(store_->Count(Q("smb"), {}, CountBy::kField, "", &err).empty());
  EXPECT_NE(err.find("field"), std::string::npos);
}

TEST_F(StoreSearchTest, EventsOfFlows) {
  const std::vector<uint64_t> flows = {1000, 1007, 1007, 99999};
  const int64_t from = kBase + 5 * kDay, to = kBase + 50 * kDay;
  const auto got = store_->EventsOfFlows(flows, from, to);
  std::vector<int64_t> want;
  std::vector<const Truth*> m;
  for (const Truth& t : truth_) {
    const uint64_t f = t.event["flow_id"].get<uint64_t>();
    if ((f == 1000 || f == 1007) && t.ts >= from && t.ts <= to) m.push_back(&t);
  }
  std::sort(m.begin(), m.end(), [](const Truth* a, const Truth* b) {
    return a->ts != b->ts ? a->ts < b->ts : a->id < b->id;
  });
  for (const Truth* t : m) want.push_back(t->id);
  std::vector<int64_t> got_ids;
  for (const auto& e : got) got_ids.push_back(e.id);
  EXPECT_EQ(got_ids, want);
  EXPECT_FALSE(want.empty());
}

TEST(StoreRetentionTest, ByAgeRelativeToNewestEventOrGivenNow) {
  TempDir dir;
  auto s = OpenOrDie({.dir = dir.path(), .retention_days = 30});
  std::mt19937_64 rng(7);
  std::string err;
  std::vector<int64_t> ids;
  // Days 0..89, 20 events a day; a unique token on day 3 only.
  uint64_t seq = 1;
  for (int d = 0; d < 90; ++d) {
    auto batch = MakeBatch(rng, "s1", seq, 20, kBase + d * kDay, kDay);
    seq += 20;
    if (d == 3) {
      json e = json::parse(batch[0].json);
      e["message"] = "SMB2 READ uniqueoldtoken";
      batch[0].json = e.dump();
    }
    ASSERT_TRUE(s->InsertEvents(batch, &ids, &err)) << err;
  }
  Breach old = MakeBreach("M", "10.0.0.9", kBase + kDay, {{1, true}});
  Breach recent = old;
  recent.ts_ns = kBase + 80 * kDay;
  ASSERT_GT(s->InsertBreach(old, &err), 0) << err;
  ASSERT_GT(s->InsertBreach(recent, &err), 0) << err;
  EXPECT_EQ(s->Search(Q("uniqueoldtoken"), {}, nullptr).size(), 1u);

  const int64_t newest = s->GetStats().newest_ts_ns;
  const uint64_t deleted = s->ApplyRetention(0);
  EXPECT_TRUE(s->last_error().empty()) << s->last_error();
  const auto st = s->GetStats();
  EXPECT_EQ(deleted + st.events, 1800u);
  EXPECT_GE(st.oldest_ts_ns, newest - 30 * kDay);
  EXPECT_NEAR(static_cast<double>(st.events), 30 * 20, 25);
  EXPECT_EQ(st.breaches, 1u);
  EXPECT_TRUE(s->Search(Q("uniqueoldtoken"), {}, nullptr).empty());
  EXPECT_TRUE(s->CheckIntegrity(&err)) << err;
  // Search stays exact after deletes (contentless FTS deletes recomputed the indexed text).
  for (const char* text : {"*.JOB AND SMB", "atsvc", "\"IPC$ atsvc\"", "dns"}) {
    const query::Query q = Q(text);
    uint64_t total = 0;
    s->Search(q, {.limit = 0}, &total);
    uint64_t want = 0;
    for (const Truth& t : AllEvents(s.get(), 1800)) want += q.Matches(t.event);
    EXPECT_EQ(total, want) << text;
  }
  // A given `now` far ahead deletes everything.
  EXPECT_EQ(s->ApplyRetention(kBase + 1000 * kDay), st.events);
  EXPECT_EQ(s->GetStats().events, 0u);
  EXPECT_EQ(s->GetStats().breaches, 0u);
  // Ids are never reused after deletion.
  ASSERT_TRUE(s->InsertEvents(MakeBatch(rng, "s1", seq, 1, kBase, kDay), &ids, &err)) << err;
  EXPECT_EQ(ids[0], 1801);
}

TEST(StoreRetentionTest, BySize) {
  TempDir dir;
  std::mt19937_64 rng(8);
  std::string err;
  std::vector<int64_t> ids;
  uint64_t used = 0;
  {
    auto s = OpenOrDie({.dir = dir.path()});
    for (int b = 0; b < 40; ++b) {
      ASSERT_TRUE(s->InsertEvents(
          MakeBatch(rng, "s1", 1 + b * 100, 100, kBase + b * kDay / 4, kDay / 4), &ids, &err))
          << err;
    }
    used = s->GetStats().used_bytes;
  }
  const uint64_t cap = used / 2;
  auto s = OpenOrDie({.dir = dir.path(), .max_bytes = cap});
  const int64_t newest = s->GetStats().newest_ts_ns;
  const uint64_t deleted = s->ApplyRetention(0);  // age: nothing is 60 days old
  const auto st = s->GetStats();
  EXPECT_LE(st.used_bytes, cap);
  EXPECT_EQ(st.events + deleted, 4000u);
  // Not grossly over-deleted: at least a third of the events remain.
  EXPECT_GT(st.events, 4000u / 3) << "used " << used << " cap " << cap;
  EXPECT_EQ(st.newest_ts_ns, newest);
  // The oldest went first.
  for (const auto& e : s->Search(Q("*"), {.limit = 100, .newest_first = false}, nullptr)) {
    EXPECT_GE(e.ts_ns, st.oldest_ts_ns);
  }
  EXPECT_TRUE(s->CheckIntegrity(&err)) << err;
  EXPECT_LE(st.bytes, used + used / 4);  // the file shrank back too (incremental vacuum)
  std::printf("size retention: used %llu -> %llu (cap %llu), deleted %llu of 4000, file %llu\n",
              static_cast<unsigned long long>(used), static_cast<unsigned long long>(st.used_bytes),
              static_cast<unsigned long long>(cap), static_cast<unsigned long long>(deleted),
              static_cast<unsigned long long>(st.bytes));
}

TEST(StoreBreachTest, RoundTripAcknowledgeAndList) {
  TempDir dir;
  auto s = OpenOrDie({.dir = dir.path()});
  std::string err;
  Breach b = MakeBreach("Device / AT Service Scheduled Task", "10.0.0.9", kBase + 100,
                        {{5, true}, {3, false}, {9, false}, {3, true}});
  b.priority = 3;
  b.score = 0.75;
  b.component = 1;
  b.filter = "atsvc AND \"IPC$\"";
  b.details_json = R"({"count":2})";
  const int64_t id = s->InsertBreach(b, &err);
  ASSERT_GT(id, 0) << err;
  Breach other = b;
  other.model = "Device / Other";
  other.ts_ns = kBase + 200;
  other.events.clear();
  const int64_t id2 = s->InsertBreach(other, &err);
  ASSERT_GT(id2, id);

  const auto g = s->GetBreach(id);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->model, b.model);
  EXPECT_EQ(g->priority, 3);
  EXPECT_EQ(g->device, "10.0.0.9");
  EXPECT_EQ(g->ts_ns, kBase + 100);
  EXPECT_DOUBLE_EQ(g->score, 0.75);
  EXPECT_EQ(g->component, 1);
  EXPECT_EQ(g->filter, b.filter);
  EXPECT_EQ(g->details_json, b.details_json);
  EXPECT_FALSE(g->acknowledged);
  ASSERT_EQ(g->events.size(), 3u);  // 3 listed twice: once, as a trigger
  EXPECT_EQ(g->events[0].event_id, 3);
  EXPECT_TRUE(g->events[0].trigger);
  EXPECT_EQ(g->events[1].event_id, 5);
  EXPECT_TRUE(g->events[1].trigger);
  EXPECT_FALSE(g->events[2].trigger);

  ASSERT_TRUE(s->AcknowledgeBreach(id, "known admin job", &err)) << err;
  EXPECT_TRUE(s->GetBreach(id)->acknowledged);
  EXPECT_EQ(s->GetBreach(id)->comment, "known admin job");
  EXPECT_FALSE(s->AcknowledgeBreach(999, "x", &err));
  EXPECT_NE(err.find("999"), std::string::npos);
  EXPECT_FALSE(s->GetBreach(999));

  auto all = s->Breaches("", INT64_MIN, 10);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].id, id2);  // newest first
  EXPECT_EQ(all[1].events.size(), 3u);
  EXPECT_EQ(s->Breaches(b.model, INT64_MIN, 10).size(), 1u);
  EXPECT_EQ(s->Breaches("", kBase + 150, 10).size(), 1u);
  EXPECT_EQ(s->Breaches("", INT64_MIN, 1).size(), 1u);
  EXPECT_EQ(s->GetStats().breaches, 2u);
}

// Events and the breaches they cause commit together (control's ingest) or not at all.
TEST(StoreBreachTest, BatchCommitsEventsAndBreachesTogetherOrNotAtAll) {
  TempDir dir;
  std::mt19937_64 rng(7);
  std::string err;
  {
    auto s = OpenOrDie({.dir = dir.path()});
    // Rolled back: neither the events, nor the breach, nor the sequence number remain.
    ASSERT_TRUE(s->BeginBatch(&err)) << err;
    EXPECT_FALSE(s->BeginBatch(&err));  // one batch at a time
    std::vector<int64_t> ids;
    ASSERT_TRUE(s->InsertEvents(MakeBatch(rng, "s1", 1, 10, kBase, kSec), &ids, &err)) << err;
    ASSERT_GT(s->InsertBreach(MakeBreach("M / A", "10.0.0.1", kBase, {{ids[0], true}}), &err), 0)
        << err;
    s->RollbackBatch();
    EXPECT_EQ(s->GetStats().events, 0u);
    EXPECT_EQ(s->GetStats().breaches, 0u);
    EXPECT_EQ(s->LastSeq("s1"), 0u);
    // Committed: both, and a resend of the same events is skipped.
    ASSERT_TRUE(s->BeginBatch(&err)) << err;
    ASSERT_TRUE(s->InsertEvents(MakeBatch(rng, "s1", 1, 10, kBase, kSec), &ids, &err)) << err;
    EXPECT_EQ(std::count(ids.begin(), ids.end(), 0), 0);
    ASSERT_GT(s->InsertBreach(MakeBreach("M / A", "10.0.0.1", kBase + 5, {{ids[0], true}}), &err),
              0);
    ASSERT_TRUE(s->CommitBatch(&err)) << err;
    EXPECT_FALSE(s->CommitBatch(&err));  // no batch open
    s->RollbackBatch();                  // no-op
    ASSERT_TRUE(s->InsertEvents(MakeBatch(rng, "s1", 1, 10, kBase, kSec), &ids, &err)) << err;
    EXPECT_EQ(std::count(ids.begin(), ids.end(), 0), 10);
    ASSERT_GT(s->InsertBreach(MakeBreach("M / A", "10.0.0.1", kBase + 9, {}), &err), 0);
    ASSERT_GT(s->InsertBreach(MakeBreach("M / B", "10.0.0.2", kBase + 7, {}), &err), 0);
    // The newest breach per (model, device), for the engine's throttle after a restart.
    auto last = s->LastBreaches(INT64_MIN);
    std::sort(last.begin(), last.end(),
              [](const auto& a, const auto& b) { return a.model < b.model; });
    ASSERT_EQ(last.size(), 2u);
    EXPECT_EQ(last[0].model, "M / A");
    EXPECT_EQ(last[0].ts_ns, kBase + 9);
    EXPECT_EQ(last[1].device, "10.0.0.2");
    EXPECT_EQ(s->LastBreaches(kBase + 8).size(), 1u);
  }
  auto s = OpenOrDie({.dir = dir.path()});
  EXPECT_EQ(s->GetStats().events, 10u);
  EXPECT_EQ(s->GetStats().breaches, 3u);
  EXPECT_EQ(s->LastSeq("s1"), 10u);
  // The warm-up scan: by id, from the first event in the time range.
  std::vector<int64_t> seen;
  ASSERT_TRUE(s->ForEachEventSince(
      INT64_MIN, [&](const StoredEvent& e) { return seen.push_back(e.id), true; }, &err));
  EXPECT_EQ(seen.size(), 10u);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
  const int64_t newest = s->GetStats().newest_ts_ns;
  size_t n = 0;
  int64_t oldest_seen = INT64_MAX;
  ASSERT_TRUE(s->ForEachEventSince(
      newest,
      [&](const StoredEvent& e) {
        oldest_seen = std::min(oldest_seen, e.ts_ns);
        return ++n, true;
      },
      &err));
  EXPECT_EQ(oldest_seen, newest);
  EXPECT_EQ(n, 1u);
  n = 0;
  ASSERT_TRUE(s->ForEachEventSince(
      INT64_MIN, [&](const StoredEvent&) { return ++n < 3; }, &err));
  EXPECT_EQ(n, 3u);  // stops when the callback says so
}

// A child stores events and breaches, reporting each breach id once InsertBreach returned, and
// is killed with SIGKILL in the middle of the burst. Every reported breach must be there.
TEST(StoreDurabilityTest, BreachesSurviveKill9) {
  TempDir dir;
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    std::string err;
    auto s = Store::Open({.dir = dir.path()}, &err);
    if (!s) _exit(2);
    std::mt19937_64 rng(9);
    for (uint64_t i = 0;; ++i) {
      std::vector<int64_t> ids;
      if (!s->InsertEvents(MakeBatch(rng, "s1", 1 + i * 50, 50, kBase, kDay), &ids, &err)) _exit(3);
      const Breach b = MakeBreach("M", "10.0.0.9", kBase, {{ids[0], true}});
      const int64_t id = s->InsertBreach(b, &err);
      if (id <= 0) _exit(4);
      if (i == 3) s->AcknowledgeBreach(id, "acked before the kill", &err);
      if (write(fds[1], &id, sizeof id) != sizeof id) _exit(5);
    }
  }
  close(fds[1]);
  std::vector<int64_t> reported;
  int64_t id;
  while (reported.size() < 40 && read(fds[0], &id, sizeof id) == sizeof id) reported.push_back(id);
  kill(pid, SIGKILL);
  while (read(fds[0], &id, sizeof id) == sizeof id) reported.push_back(id);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status)) << status;
  ASSERT_GE(reported.size(), 40u);

  // A read-only reader copes with the dead writer's WAL, then the next writer takes over.
  {
    auto r = OpenOrDie({.dir = dir.path(), .read_only = true});
    ASSERT_TRUE(r);
    for (int64_t b : reported) EXPECT_TRUE(r->GetBreach(b)) << b;
  }
  auto s = OpenOrDie({.dir = dir.path()});
  ASSERT_TRUE(s);
  std::string err;
  EXPECT_TRUE(s->CheckIntegrity(&err)) << err;
  for (int64_t b : reported) EXPECT_TRUE(s->GetBreach(b)) << b;
  EXPECT_TRUE(s->GetBreach(reported[3])->acknowledged);
  // Events: whole batches only, and the sequence continues without gaps.
  const auto st = s->GetStats();
  EXPECT_EQ(st.events % 50, 0u);
  EXPECT_EQ(s->LastSeq("s1"), st.events);
  EXPECT_GE(st.events, reported.size() * 50);
}

TEST(StoreConcurrencyTest, ReadOnlyReaderWhileWriting) {
  TempDir dir;
  auto w = OpenOrDie({.dir = dir.path()});
  std::string err;
  std::vector<int64_t> ids;
  std::mt19937_64 rng(10);
  ASSERT_TRUE(w->InsertEvents(MakeBatch(rng, "s1", 1, 100, kBase, kDay), &ids, &err)) << err;
  std::atomic<bool> done{false};
  std::atomic<bool> retention{false};
  std::atomic<int> searches{0};
  std::atomic<int> failures{0};
  std::thread reader([&] {
    std::string e;
    auto r = Store::Open({.dir = dir.path(), .read_only = true}, &e);
    if (!r) {
      failures = 1000;
      return;
    }
    const query::Query q = *query::Query::Parse("smb OR dns OR http", nullptr);
    uint64_t last = 0;
    // relaxed: the flag only ends the loop; no data is published through it.
    while (!done.load(std::memory_order_relaxed)) {
      uint64_t total = 0;
      r->Search(q, {.limit = 5}, &total);
      // Totals only grow until retention starts deleting.
      const bool deleting = retention.load(std::memory_order_relaxed);
      if (!r->last_error().empty()) {
        ADD_FAILURE() << r->last_error();
        ++failures;
      }
      if (total < last && !deleting) {
        ADD_FAILURE() << total << " < " << last;
        ++failures;
      }
      last = total;
      if (r->LastSeq("s1") < 100) ++failures;
      searches.fetch_add(1, std::memory_order_relaxed);
    }
  });
  for (int b = 1; b < 40; ++b) {
    ASSERT_TRUE(w->InsertEvents(MakeBatch(rng, "s1", 1 + b * 100, 100, kBase, kDay), &ids, &err))
        << err;
    const Breach br = MakeBreach("M", "d", kBase);
    ASSERT_GT(w->InsertBreach(br, &err), 0) << err;
  }
  retention = true;
  EXPECT_EQ(w->ApplyRetention(kBase + 70 * kDay), 4000u);  // everything, while the reader reads
  done = true;
  reader.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(searches.load(), 0);
  // Read-only stores refuse writes with an error instead of failing later.
  auto r = OpenOrDie({.dir = dir.path(), .read_only = true});
  EXPECT_FALSE(r->InsertEvents(MakeBatch(rng, "s1", 9999, 1, kBase, kDay), &ids, &err));
  EXPECT_NE(err.find("read-only"), std::string::npos);
  EXPECT_EQ(r->InsertBreach({}, &err), 0);
}

TEST(StoreErrorTest, ClearErrors) {
  TempDir dir;
  std::string err;
  EXPECT_FALSE(Store::Open({.dir = ""}, &err));
  EXPECT_NE(err.find("directory"), std::string::npos);
  EXPECT_FALSE(Store::Open({.dir = dir.path() + "/nothing", .read_only = true}, &err));
  EXPECT_NE(err.find(dir.path() + "/nothing/vigil.db"), std::string::npos) << err;
  EXPECT_FALSE(Store::Open({.dir = dir.path(), .retention_days = 0}, &err));
  EXPECT_NE(err.find("retention_days"), std::string::npos);
  EXPECT_FALSE(Store::Open({.dir = "/proc/vigil-no-such/x"}, &err));
  EXPECT_NE(err.find("/proc/vigil-no-such/x"), std::string::npos) << err;
  {
    auto w = OpenOrDie({.dir = dir.path()});
    EXPECT_FALSE(Store::Open({.dir = dir.path()}, &err));
    EXPECT_NE(err.find("another process"), std::string::npos) << err;
    EXPECT_NE(err.find(std::to_string(getpid())), std::string::npos) << err;
    // ... while readers are welcome.
    EXPECT_TRUE(Store::Open({.dir = dir.path(), .read_only = true}, &err)) << err;
  }
  // Not a vigil store: an SQLite file without our schema, and a file that is not SQLite.
  TempDir other;
  {
    sqlite3* db = nullptr;
    sqlite3_open((other.path() + "/vigil.db").c_str(), &db);
    sqlite3_exec(db, "CREATE TABLE x(y)", nullptr, nullptr, nullptr);
    sqlite3_close(db);
  }
  EXPECT_FALSE(Store::Open({.dir = other.path(), .read_only = true}, &err));
  EXPECT_NE(err.find("not a vigil store"), std::string::npos) << err;
  EXPECT_FALSE(Store::Open({.dir = other.path()}, &err));
  EXPECT_NE(err.find("not a vigil store"), std::string::npos) << err;
  TempDir junk;
  std::ofstream(junk.path() + "/vigil.db") << std::string(8192, 'x');
  EXPECT_FALSE(Store::Open({.dir = junk.path()}, &err));
  EXPECT_NE(err.find(junk.path() + "/vigil.db"), std::string::npos) << err;
}

}  // namespace
}  // namespace vigil::ctl::store
