// The dataplane's counters as Prometheus text (control/api/dataplane_metrics.h): names, labels,
// types, one HELP/TYPE per family; checked by promtool when it is installed.
#include "control/api/dataplane_metrics.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

namespace vigil::ctl::api {
namespace {

const char* kCounters = R"({"sensor":"lab","mode":"live","elapsed_s":1.5,
 "ports":[{"name":"a","port_id":0,"peer":"b","queues":1,"rss":false,"rx_packets":7,
   "rx_bytes":574,"forwarded":4,"forwarded_bytes":314,
   "dropped":{"tx_full":0,"flow_table_full":0,"blocked":3},"dropped_total":3,"in_flight":0,
   "device":{"ipackets":7,"opackets":2}},
  {"name":"b","port_id":1,"peer":"a","queues":1,"rss":false,"rx_packets":3,"rx_bytes":180,
   "forwarded":1,"forwarded_bytes":54,"dropped":{"tx_full":0,"flow_table_full":0,"blocked":2},
   "dropped_total":2,"in_flight":0}],
 "workers":[{"lcore":1,"iterations":99,"decode":{"l2":0,"l3":0,"l4":10,"malformed":0},
   "anomalies":{"ipv4.bad_total_len":2},"flows":{"active":3,"created":3,
   "ended":{"timeout":1,"shutdown":0}},"app_layer":{"identified":{"smb":4,"http":1},"events":9},
   "respond":{"blocked":5,"resets_sent":2}}],
 "eve":{"records":12,"path":"/tmp/eve.json"},
 "respond":{"block_generation":3,"block_entries":1,"blocked":5},"watchdog_stalls":0})";

// metric name (with labels) -> value, and family -> type.
struct Parsed {
  std::map<std::string, std::string> values;
  std::map<std::string, std::string> types;
  std::map<std::string, int> helps;
};

Parsed Parse(const std::string& text) {
  Parsed p;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# HELP ", 0) == 0) {
      ++p.helps[line.substr(7, line.find(' ', 7) - 7)];
    } else if (line.rfind("# TYPE ", 0) == 0) {
      const size_t sp = line.find(' ', 7);
      p.types[line.substr(7, sp - 7)] = line.substr(sp + 1);
    } else if (!line.empty()) {
      const size_t sp = line.rfind(' ');
      p.values[line.substr(0, sp)] = line.substr(sp + 1);
    }
  }
  return p;
}

TEST(DataplaneMetrics, NamesLabelsAndTypes) {
  const std::string text = DataplaneMetrics(nlohmann::json::parse(kCounters), true);
  const Parsed p = Parse(text);
  EXPECT_EQ(p.values.at("vigil_dataplane_up"), "1");
  EXPECT_EQ(p.values.at(R"(vigil_dataplane_port_rx_packets_total{sensor="lab",port="a"})"), "7");
  EXPECT_EQ(p.values.at(R"(vigil_dataplane_port_rx_bytes_total{sensor="lab",port="b"})"), "180");
  EXPECT_EQ(
      p.values.at(R"(vigil_dataplane_port_dropped_total{sensor="lab",port="a",reason="blocked"})"),
      "3");
  EXPECT_EQ(p.values.at(R"(vigil_dataplane_port_in_flight{sensor="lab",port="a"})"), "0");
  EXPECT_EQ(p.types.at("vigil_dataplane_port_in_flight"), "gauge");
  EXPECT_EQ(p.types.at("vigil_dataplane_port_rx_packets_total"), "counter");
  EXPECT_EQ(
      p.values.at(
          R"(vigil_dataplane_worker_anomalies_total{sensor="lab",lcore="1",anomaly="ipv4.bad_total_len"})"),
      "2");
  EXPECT_EQ(
      p.values.at(
          R"(vigil_dataplane_worker_flows_ended_total{sensor="lab",lcore="1",reason="timeout"})"),
      "1");
  EXPECT_EQ(p.values.at(R"(vigil_dataplane_worker_flows_active{sensor="lab",lcore="1"})"), "3");
  EXPECT_EQ(
      p.values.at(
          R"(vigil_dataplane_worker_app_layer_identified_total{sensor="lab",lcore="1",proto="smb"})"),
      "4");
  EXPECT_EQ(p.values.at(R"(vigil_dataplane_worker_respond_blocked_total{sensor="lab",lcore="1"})"),
            "5");
  EXPECT_EQ(p.values.at(R"(vigil_dataplane_respond_block_generation{sensor="lab"})"), "3");
  EXPECT_EQ(p.types.at("vigil_dataplane_respond_block_generation"), "gauge");
  EXPECT_EQ(p.values.at(R"(vigil_dataplane_elapsed_seconds{sensor="lab"})"), "1.5");
  EXPECT_EQ(p.values.count(R"(vigil_dataplane_port_rss{sensor="lab",port="a"})"), 1u);
  // Strings and derived sums are left out; every family has exactly one HELP and one TYPE.
  EXPECT_EQ(text.find("path"), std::string::npos);
  EXPECT_EQ(text.find("_total_total"), std::string::npos);
  EXPECT_EQ(text.find("mode"), std::string::npos);
  for (const auto& [family, n] : p.helps) {
    EXPECT_EQ(n, 1) << family;
    EXPECT_EQ(p.types.count(family), 1u) << family;
  }
}

TEST(DataplaneMetrics, DownWritesOnlyUp) {
  EXPECT_EQ(DataplaneMetrics(nlohmann::json(), false),
            "# HELP vigil_dataplane_up 1 when control could read the dataplane's counters.\n"
            "# TYPE vigil_dataplane_up gauge\nvigil_dataplane_up 0\n");
}

TEST(DataplaneMetrics, PromtoolAcceptsTheText) {
  if (access("/usr/bin/promtool", X_OK) != 0) GTEST_SKIP() << "promtool not installed";
  const std::string path = ::testing::TempDir() + "/vigil_metrics.txt";
  std::ofstream(path) << DataplaneMetrics(nlohmann::json::parse(kCounters), true);
  const std::string cmd = "/usr/bin/promtool check metrics < " + path + " 2>&1";
  FILE* f = popen(cmd.c_str(), "r");
  ASSERT_NE(f, nullptr);
  std::string out;
  char buf[512];
  while (fgets(buf, sizeof buf, f) != nullptr) out += buf;
  const int rc = pclose(f);
  EXPECT_EQ(rc, 0) << out;  // parse errors and lint remarks (naming, units) both fail
  EXPECT_EQ(out, "");
}

}  // namespace
}  // namespace vigil::ctl::api
