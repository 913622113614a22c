// Tests for the vigil.yaml loader: values, defaults, the shipped config, every class of error
// with its exact position, and the EAL argv derived from a config.
//
// YAML documents are written as raw strings starting on their first line, so the line and column
// asserted for an error can be read off the literal (both 1-based).

#include "dataplane/app/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <ostream>
#include <string>
#include <vector>

#include "dataplane/proto/registry.h"

#ifndef VIGIL_SOURCE_DIR
#error "VIGIL_SOURCE_DIR must be defined to the source root (the meson test target sets it)"
#endif

namespace vigil::dp {

// Failure messages show errors as the user would see them.
void PrintTo(const ConfigError& e, std::ostream* os) { *os << "{" << e.ToString() << "}"; }

namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::Eq;
using ::testing::Field;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Matcher;
using ::testing::StartsWith;

Matcher<const ConfigError&> Err(int line, int column, const std::string& field,
                                const Matcher<const std::string&>& message,
                                const std::string& file = "<string>") {
  return AllOf(Field("file", &ConfigError::file, Eq(file)),
               Field("line", &ConfigError::line, Eq(line)),
               Field("column", &ConfigError::column, Eq(column)),
               Field("field", &ConfigError::field, Eq(field)),
               Field("message", &ConfigError::message, message));
}

std::vector<uint32_t> AsVector(const FlowTimeouts& t) {
  return {t.tcp_new,  t.tcp_established,  t.udp_new,   t.udp_established,  t.tcp_closed,
          t.icmp_new, t.icmp_established, t.other_new, t.other_established};
}

// Every setting except source_file, ports and bridges.
void ExpectSameSettings(const Config& got, const Config& want) {
  EXPECT_EQ(got.sensor_name, want.sensor_name);
  EXPECT_EQ(got.file_prefix, want.file_prefix);
  EXPECT_EQ(got.hugepages, want.hugepages);
  EXPECT_EQ(got.memory_mb, want.memory_mb);
  EXPECT_EQ(got.main_lcore, want.main_lcore);
  EXPECT_EQ(got.log_level, want.log_level);
  EXPECT_EQ(got.worker_lcores, want.worker_lcores);
  EXPECT_EQ(got.mbufs_per_worker, want.mbufs_per_worker);
  EXPECT_EQ(got.tx_flush_us, want.tx_flush_us);
  EXPECT_EQ(got.stats_interval_s, want.stats_interval_s);
  EXPECT_EQ(got.flow.capacity, want.flow.capacity);
  EXPECT_EQ(got.flow.hash_seed, want.flow.hash_seed);
  EXPECT_EQ(got.flow.emergency_enter_percent, want.flow.emergency_enter_percent);
  EXPECT_EQ(got.flow.emergency_exit_percent, want.flow.emergency_exit_percent);
  EXPECT_EQ(AsVector(got.flow.timeouts), AsVector(want.flow.timeouts));
  EXPECT_EQ(AsVector(got.flow.emergency_timeouts), AsVector(want.flow.emergency_timeouts));
  EXPECT_EQ(got.exception_policy.flow_table_full, want.exception_policy.flow_table_full);
  EXPECT_EQ(got.eve_enabled, want.eve_enabled);
  EXPECT_EQ(got.eve_path, want.eve_path);
  EXPECT_EQ(got.event_ring_mb, want.event_ring_mb);
  EXPECT_EQ(got.app_layer.enabled, want.app_layer.enabled);
  EXPECT_EQ(got.app_layer.midstream, want.app_layer.midstream);
  EXPECT_EQ(got.app_layer.sessions, want.app_layer.sessions);
  EXPECT_EQ(got.app_layer.segment_slots, want.app_layer.segment_slots);
  EXPECT_EQ(got.app_layer.reassembly.policy, want.app_layer.reassembly.policy);
  EXPECT_EQ(got.app_layer.reassembly.depth, want.app_layer.reassembly.depth);
  EXPECT_EQ(got.app_layer.reassembly.max_segments, want.app_layer.reassembly.max_segments);
  EXPECT_EQ(got.app_layer.reassembly.max_bytes, want.app_layer.reassembly.max_bytes);
  EXPECT_EQ(got.app_layer.reassembly.max_ahead, want.app_layer.reassembly.max_ahead);
  // Parser pools: compare the effective size of every registered parser (an explicit entry equal to
  // the built-in size is the same configuration).
  auto effective = [](const Config& c, const proto::ParserKind& k) {
    uint32_t n = k.default_pool;
    for (const auto& [name, count] : c.app_layer.parser_pools) {
      if (name == k.name) n = count;
    }
    return n;
  };
  for (const proto::ParserKind& k : proto::ParserKinds()) {
    EXPECT_EQ(effective(got, k), effective(want, k)) << k.name;
  }
  EXPECT_EQ(got.app_layer.stream_memcap, want.app_layer.stream_memcap);
}

// Loads `yaml` and expects exactly the errors matched, in this order, and no config.
template <typename... M>
void ExpectErrors(const std::string& yaml, M... matchers) {
  const ConfigResult r = LoadConfigString(yaml);
  EXPECT_FALSE(r.config.has_value());
  EXPECT_THAT(r.errors, ElementsAre(matchers...)) << yaml;
}

// Loads `yaml`, expecting no errors; a default Config (after a test failure) when there are any.
Config LoadOk(const std::string& yaml) {
  ConfigResult r = LoadConfigString(yaml);
  EXPECT_THAT(r.errors, IsEmpty()) << yaml;
  EXPECT_TRUE(r.config.has_value());
  return r.config.value_or(Config{});
}

// Two bridged vdev ports: the smallest valid document (5 lines).
constexpr char kMinimal[] = R"(ports:
  - {name: a, device: net_null0}
  - {name: b, device: net_null1}
bridges:
  - [a, b]
)";

constexpr char kFull[] = R"(sensor:
  name: lab-1
eal:
  file_prefix: vg2
  main_lcore: 2
  log_level: debug
  memory:
    hugepages: true
    size_mb: 512
ports:
  - name: wan
    device: "0000:03:00.0"
    rx_desc: 2048
    tx_desc: 512
  - name: lan
    device: 03:00.1
    rx_desc: 64
    tx_desc: 8192
  - name: tap_1
    device: net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap
  - name: tap-2
    device: net_null0
bridges:
  - [wan, lan]
  - {a: tap_1, b: tap-2}
workers:
  lcores: [4, 3, 5]
  mbufs_per_worker: 65535
  tx_flush_us: 250
  stats_interval_s: 10
flow:
  capacity: 1048576
  hash_seed: 0x0123456789abcdef
  emergency:
    enter_percent: 90
    exit_percent: 70
  timeouts:
    tcp: {new: 61, established: 601, closed: 62}
    udp: {new: 31, established: 301}
    icmp: {new: 32, established: 302}
    other: {new: 33, established: 303}
  emergency_timeouts:
    tcp: {new: 11, established: 101, closed: 6}
    udp: {new: 12, established: 102}
    icmp: {new: 13, established: 103}
    other: {new: 0, established: 604800}
stream:
  midstream: false
  sessions: 1000
  reassembly:
    policy: windows
    depth_kb: 2048
    max_segments: 100
    max_buffered_kb: 512
    max_ahead_kb: 8192
    segment_slots: 4096
app_layer:
  enabled: true
  parsers:
    smb: 10
    tls: 0
exception_policy:
  flow_table_full: drop-flow
  stream_memcap: drop-packet
outputs:
  eve:
    enabled: false
    path: /var/log/vigil/eve.json
  event_ring_mb: 1
)";

TEST(ConfigTest, FullConfigRoundTrips) {
  const ConfigResult r = LoadConfigString(kFull, "full.yaml");
  ASSERT_THAT(r.errors, IsEmpty());
  ASSERT_TRUE(r.config.has_value());
  const Config& c = *r.config;
  EXPECT_EQ(c.source_file, "full.yaml");
  EXPECT_EQ(c.sensor_name, "lab-1");
  EXPECT_EQ(c.file_prefix, "vg2");
  EXPECT_EQ(c.main_lcore, 2u);
  EXPECT_EQ(c.log_level, "debug");
  EXPECT_TRUE(c.hugepages);
  EXPECT_EQ(c.memory_mb, 512u);

  ASSERT_EQ(c.ports.size(), 4u);
  EXPECT_EQ(c.ports[0].name, "wan");
  EXPECT_EQ(c.ports[0].device, "0000:03:00.0");
  EXPECT_TRUE(c.ports[0].is_pci);
  EXPECT_EQ(c.ports[0].rx_desc, 2048);
  EXPECT_EQ(c.ports[0].tx_desc, 512);
  EXPECT_EQ(c.ports[1].name, "lan");
  EXPECT_EQ(c.ports[1].device, "03:00.1");
  EXPECT_TRUE(c.ports[1].is_pci);
  EXPECT_EQ(c.ports[1].rx_desc, 64);
  EXPECT_EQ(c.ports[1].tx_desc, 8192);
  EXPECT_EQ(c.ports[2].name, "tap_1");
  EXPECT_EQ(c.ports[2].device, "net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap");
  EXPECT_FALSE(c.ports[2].is_pci);
  EXPECT_EQ(c.ports[2].rx_desc, 1024);
  EXPECT_EQ(c.ports[2].tx_desc, 1024);
  EXPECT_EQ(c.ports[3].name, "tap-2");
  EXPECT_EQ(c.ports[3].device, "net_null0");
  EXPECT_FALSE(c.ports[3].is_pci);

  ASSERT_EQ(c.bridges.size(), 2u);
  EXPECT_EQ(c.bridges[0].a, "wan");
  EXPECT_EQ(c.bridges[0].b, "lan");
  EXPECT_EQ(c.bridges[1].a, "tap_1");
  EXPECT_EQ(c.bridges[1].b, "tap-2");

  EXPECT_EQ(c.worker_lcores, (std::vector<uint32_t>{4, 3, 5}));
  EXPECT_EQ(c.mbufs_per_worker, 65535u);
  EXPECT_EQ(c.tx_flush_us, 250u);
  EXPECT_EQ(c.stats_interval_s, 10u);

  EXPECT_EQ(c.flow.capacity, 1048576u);
  EXPECT_EQ(c.flow.hash_seed, std::optional<uint64_t>(0x0123456789abcdefULL));
  EXPECT_EQ(c.flow.emergency_enter_percent, 90u);
  EXPECT_EQ(c.flow.emergency_exit_percent, 70u);
  // Order: tcp new/established, udp new/established, tcp closed, icmp, other (see AsVector).
  EXPECT_EQ(AsVector(c.flow.timeouts),
            (std::vector<uint32_t>{61, 601, 31, 301, 62, 32, 302, 33, 303}));
  EXPECT_EQ(AsVector(c.flow.emergency_timeouts),
            (std::vector<uint32_t>{11, 101, 12, 102, 6, 13, 103, 0, 604800}));

  EXPECT_EQ(c.exception_policy.flow_table_full, ExceptionPolicy::kDropFlow);
  EXPECT_FALSE(c.eve_enabled);
  EXPECT_EQ(c.eve_path, "/var/log/vigil/eve.json");
  EXPECT_EQ(c.event_ring_mb, 1u);
  EXPECT_FALSE(c.app_layer.midstream);
  EXPECT_EQ(c.app_layer.sessions, 1000u);
  EXPECT_EQ(c.app_layer.reassembly.policy, OverlapPolicy::kWindows);
  EXPECT_EQ(c.app_layer.reassembly.depth, 2048u * 1024);
  EXPECT_EQ(c.app_layer.reassembly.max_segments, 100u);
  EXPECT_EQ(c.app_layer.reassembly.max_bytes, 512u * 1024);
  EXPECT_EQ(c.app_layer.reassembly.max_ahead, 8192u * 1024);
  EXPECT_EQ(c.app_layer.segment_slots, 4096u);
  EXPECT_EQ(c.app_layer.parser_pools,
            (std::vector<std::pair<std::string, uint32_t>>{{"smb", 10}, {"tls", 0}}));
  EXPECT_EQ(c.app_layer.stream_memcap, ExceptionPolicy::kDropPacket);
}

TEST(ConfigTest, DefaultsWhenKeysAbsent) {
  const ConfigResult r = LoadConfigString(kMinimal);
  ASSERT_THAT(r.errors, IsEmpty());
  ASSERT_TRUE(r.config.has_value());
  const Config& c = *r.config;
  EXPECT_EQ(c.source_file, "<string>");
  ExpectSameSettings(c, Config{});
  // The documented defaults, spelled out so a change to config.h is a visible decision.
  EXPECT_EQ(c.sensor_name, "vigil");
  EXPECT_FALSE(c.hugepages);
  EXPECT_EQ(c.memory_mb, 1024u);
  EXPECT_EQ(c.worker_lcores, (std::vector<uint32_t>{1}));
  EXPECT_EQ(c.flow.capacity, 262144u);
  EXPECT_FALSE(c.flow.hash_seed.has_value());
  EXPECT_EQ(c.exception_policy.flow_table_full, ExceptionPolicy::kPassPacket);
  ASSERT_EQ(c.ports.size(), 2u);
  EXPECT_EQ(c.ports[0].rx_desc, 1024);
  EXPECT_EQ(c.ports[0].tx_desc, 1024);
}

TEST(ConfigTest, PartialSectionsKeepOtherDefaults) {
  const Config c = LoadOk(std::string(kMinimal) + R"(flow:
  timeouts:
    tcp: {established: 3600}
  emergency_timeouts:
exception_policy:
outputs:
  eve: {path: x.json}
)");
  Config want;
  want.flow.timeouts.tcp_established = 3600;
  want.eve_path = "x.json";
  ExpectSameSettings(c, want);
}

TEST(ConfigTest, ShippedConfigLoadsWithTheBuiltInDefaults) {
  const std::string path = std::string(VIGIL_SOURCE_DIR) + "/config/vigil.yaml";
  const ConfigResult r = LoadConfigFile(path);
  ASSERT_THAT(r.errors, IsEmpty());
  ASSERT_TRUE(r.config.has_value());
  const Config& c = *r.config;
  EXPECT_EQ(c.source_file, path);
  Config want;
  want.eve_path = "/tmp/vigil/eve.json";  // the one lab-specific setting
  ExpectSameSettings(c, want);
  ASSERT_EQ(c.ports.size(), 2u);
  EXPECT_EQ(c.ports[0].name, "a");
  EXPECT_EQ(c.ports[0].device, "net_af_packet0,iface=vg-a,qpairs=1");
  EXPECT_FALSE(c.ports[0].is_pci);
  EXPECT_EQ(c.ports[1].name, "b");
  EXPECT_EQ(c.ports[1].device, "net_af_packet1,iface=vg-b,qpairs=1");
  ASSERT_EQ(c.bridges.size(), 1u);
  EXPECT_EQ(c.bridges[0].a, "a");
  EXPECT_EQ(c.bridges[0].b, "b");
}

TEST(ConfigTest, LoadConfigFileNamesTheFileInErrors) {
  const std::string path = ::testing::TempDir() + "/vigil_config_test.yaml";
  std::FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("ports: []\nbridges: []\n", f);
  std::fclose(f);
  const ConfigResult r = LoadConfigFile(path);
  std::remove(path.c_str());
  EXPECT_FALSE(r.config.has_value());
  EXPECT_THAT(r.errors, ElementsAre(Err(1, 8, "ports", Eq("at least one port is required"), path)));
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].ToString(), path + ":1:8: ports: at least one port is required");
}

TEST(ConfigTest, DetectSectionDefaultsValuesAndErrors) {
  EXPECT_FALSE(LoadOk(kMinimal).detect.enabled);
  const Config c = LoadOk(std::string(kMinimal) + R"(detect:
  enabled: true
  rules: [a.rules, /abs/b.rules]
  vars: vars.yaml
  classification: classification.config
  cache_dir: cache
  inline_actions: false
)");
  EXPECT_TRUE(c.detect.enabled);
  EXPECT_FALSE(c.detect.inline_actions);
  EXPECT_TRUE(LoadOk(kMinimal).detect.inline_actions);  // IPS unless turned off
  // LoadConfigString leaves paths as written; LoadConfigFile resolves them (below).
  EXPECT_THAT(c.detect.rules, ElementsAre("a.rules", "/abs/b.rules"));
  EXPECT_EQ(c.detect.vars, "vars.yaml");
  EXPECT_EQ(c.detect.classification, "classification.config");
  EXPECT_EQ(c.detect.cache_dir, "cache");
  ExpectErrors(std::string(kMinimal) + R"(detect:
  enabled: yes please
  rules: x.rules
  cache: d
)",
               Err(7, 12, "detect.enabled", HasSubstr("expected a boolean")),
               Err(8, 10, "detect.rules", HasSubstr("expected a sequence")),
               Err(9, 3, "detect.cache",
                   HasSubstr("unknown key; expected one of: enabled, rules, inline, vars, "
                             "classification, cache_dir, inline_actions, invalid_rules")));
  ExpectErrors(std::string(kMinimal) + "detect:\n  enabled: true\n",
               Err(7, 12, "detect.rules", Eq("detect is enabled but lists no rule files")));
}

TEST(ConfigTest, CommandsRespondAndHistorySections) {
  const Config d = LoadOk(kMinimal);
  EXPECT_FALSE(d.commands_enabled);
  EXPECT_TRUE(d.history.enabled);
  EXPECT_EQ(d.history.memory_mb_per_worker, 32u);
  EXPECT_FALSE(d.history.spool);
  const Config c = LoadOk(std::string(kMinimal) + R"(commands: {enabled: true, socket: /tmp/c.sock}
respond: {never_block: [10.0.0.1, "192.168.0.0/16", "fd00::/8"]}
history:
  memory_mb: 8
  snaplen: 128
  dir: /tmp/h
  spool: {enabled: true, segment_mb: 2, disk_mb: 20}
)");
  EXPECT_TRUE(c.commands_enabled);
  EXPECT_EQ(c.commands_socket, "/tmp/c.sock");
  EXPECT_THAT(c.never_block, ElementsAre("10.0.0.1", "192.168.0.0/16", "fd00::/8"));
  EXPECT_EQ(c.history.memory_mb_per_worker, 8u);
  EXPECT_EQ(c.history.snaplen, 128u);
  EXPECT_EQ(c.history.dir, "/tmp/h");
  EXPECT_TRUE(c.history.spool);
  EXPECT_EQ(c.history.segment_mb, 2u);
  EXPECT_EQ(c.history.disk_mb, 20u);
  ExpectErrors(std::string(kMinimal) + R"(respond: {never_block: [10.0.0.300]}
history: {snaplen: 10, spool: {disk_mb: 1}}
)",
               Err(6, 25, "respond.never_block[0]", HasSubstr("not an IPv4 or IPv6 address")),
               Err(7, 20, "history.snaplen", HasSubstr("64")),
               Err(7, 41, "history.spool.disk_mb", HasSubstr("2")));
}

TEST(ConfigTest, DetectPathsAreRelativeToTheConfigFile) {
  const std::string path = ::testing::TempDir() + "/vigil_detect_test.yaml";
  std::FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs((std::string(kMinimal) +
              "detect: {enabled: true, rules: [r/a.rules, /abs/b.rules], vars: v.yaml}\n")
                 .c_str(),
             f);
  std::fclose(f);
  const ConfigResult r = LoadConfigFile(path);
  std::remove(path.c_str());
  ASSERT_TRUE(r.config.has_value());
  const std::string dir = path.substr(0, path.rfind('/') + 1);
  EXPECT_THAT(r.config->detect.rules, ElementsAre(dir + "r/a.rules", "/abs/b.rules"));
  EXPECT_EQ(r.config->detect.vars, dir + "v.yaml");
  EXPECT_EQ(r.config->detect.classification, "");
}

TEST(ConfigTest, MissingFile) {
  const std::string path = "/nonexistent/vigil/vigil.yaml";
  const ConfigResult r = LoadConfigFile(path);
  EXPECT_FALSE(r.config.has_value());
  EXPECT_THAT(r.errors, ElementsAre(Err(0, 0, "", HasSubstr("No such file or directory"), path)));
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].ToString(), path + ": cannot read file: No such file or directory");
}

TEST(ConfigTest, DirectoryInsteadOfFile) {
  const std::string path = std::string(VIGIL_SOURCE_DIR) + "/config";
  const ConfigResult r = LoadConfigFile(path);
  EXPECT_FALSE(r.config.has_value());
  EXPECT_THAT(r.errors, ElementsAre(Err(0, 0, "", HasSubstr("Is a directory"), path)));
}

TEST(ConfigTest, EmptyDocument) {
  for (const char* yaml : {"", "# only a comment\n", "---\n", "~\n"}) {
    SCOPED_TRACE(yaml);
    ExpectErrors(yaml, Err(0, 0, "", Eq("empty configuration")));
  }
}

TEST(ConfigTest, TopLevelMustBeAMap) {
  ExpectErrors("- a\n- b\n", Err(1, 1, "", Eq("expected a map of sections, got a sequence")));
}

TEST(ConfigTest, MoreThanOneDocument) {
  ExpectErrors(std::string(kMinimal) + "---\nsensor: {name: x}\n",
               Err(7, 1, "", HasSubstr("more than one YAML document")));
}

TEST(ConfigTest, PortsAndBridgesAreRequired) {
  const ConfigResult r = LoadConfigString("sensor: {name: x}\n");
  EXPECT_FALSE(r.config.has_value());
  EXPECT_THAT(r.errors, ElementsAre(Err(0, 0, "ports", Eq("required key missing")),
                                    Err(0, 0, "bridges", Eq("required key missing"))));
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_EQ(r.errors[0].ToString(), "<string>: ports: required key missing");
}

TEST(ConfigTest, YamlSyntaxErrorReportsItsPosition) {
  // Line 8 is indented by one space: neither inside `flow` nor at the top level.
  ExpectErrors(R"(ports:
  - {name: a, device: net_null0}
  - {name: b, device: net_null1}
bridges:
  - [a, b]
flow:
  capacity: 1024
 timeouts: {}
)",
               Err(8, 2, "", HasSubstr("end of map not found")));
  // A tab before a sequence entry: the entry after the tab (column 2) is rejected.
  ExpectErrors("ports:\n\t- {name: a, device: net_null0}\n",
               Err(2, 2, "", HasSubstr("illegal block entry")));
}

TEST(ConfigTest, UnknownKeyAtDepth) {
  const ConfigResult r = LoadConfigString(R"(ports:
  - {name: a, device: net_null0}
  - {name: b, device: net_null1}
bridges:
  - [a, b]
flow:
  timeouts:
    tcp:
      neww: 5
)");
  EXPECT_FALSE(r.config.has_value());
  EXPECT_THAT(r.errors,
              ElementsAre(Err(9, 7, "flow.timeouts.tcp.neww", StartsWith("unknown key"))));
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].ToString(),
            "<string>:9:7: flow.timeouts.tcp.neww: unknown key; expected one of: new, "
            "established, closed");
}

TEST(ConfigTest, UnknownKeysInPortsAndAtTopLevel) {
  ExpectErrors(R"(ports:
  - {name: a, device: net_null0, speed: 10}
  - {name: b, device: net_null1}
bridges:
  - [a, b]
output:
  eve: {}
)",
               Err(2, 34, "ports[0].speed", StartsWith("unknown key")),
               Err(6, 1, "output", HasSubstr("expected one of: sensor, eal, ports")));
}

TEST(ConfigTest, DuplicateKey) {
  ExpectErrors(std::string(kMinimal) + R"(sensor:
  name: x
  name: y
)",
               Err(8, 3, "sensor.name", Eq("duplicate key (first at line 7)")));
}

TEST(ConfigTest, WrongTypes) {
  ExpectErrors(
      R"(ports:
  - {name: a, device: net_null0, rx_desc: abc}
  - {name: b, device: net_null1, tx_desc: -512}
bridges:
  - [a, b]
workers:
  tx_flush_us: "100"
  lcores: 1
  stats_interval_s: 1.5
eal:
  memory:
    hugepages: yes
outputs:
  eve:
    path: {file: x}
)",
      Err(2, 43, "ports[0].rx_desc", Eq("expected an unsigned integer, got \"abc\"")),
      Err(3, 43, "ports[1].tx_desc", Eq("expected an unsigned integer, got \"-512\"")),
      Err(7, 16, "workers.tx_flush_us",
          Eq("expected an unsigned integer, got the quoted string \"100\"")),
      Err(8, 11, "workers.lcores", Eq("expected a sequence, got \"1\"")),
      Err(9, 21, "workers.stats_interval_s", Eq("expected an unsigned integer, got \"1.5\"")),
      Err(12, 16, "eal.memory.hugepages", Eq("expected a boolean (true or false), got \"yes\"")),
      Err(15, 11, "outputs.eve.path", Eq("expected a string, got a map")));
}

TEST(ConfigTest, ValuesInMessagesAreEscapedAndCut) {
  ExpectErrors(std::string(kMinimal) + R"(workers:
  tx_flush_us: "a\nb\tc"
  stats_interval_s: abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz
)",
               Err(7, 16, "workers.tx_flush_us",
                   Eq(R"(expected an unsigned integer, got the quoted string "a\nb\x09c")")),
               Err(8, 21, "workers.stats_interval_s",
                   Eq("expected an unsigned integer, got "
                      "\"abcdefghijklmnopqrstuvwxyzabcdefghijklmn...\"")));
}

TEST(ConfigTest, EmptyValueIsNullAndReportedAtItsKey) {
  ExpectErrors(std::string(kMinimal) + R"(workers:
  mbufs_per_worker:
  tx_flush_us: 5
)",
               Err(7, 3, "workers.mbufs_per_worker", Eq("expected an unsigned integer, got null")));
}

TEST(ConfigTest, OutOfRange) {
  ExpectErrors(
      R"(ports:
  - {name: a, device: net_null0, rx_desc: 100}
  - {name: b, device: net_null1, tx_desc: 16384}
bridges:
  - [a, b]
flow:
  capacity: 1000
  timeouts:
    udp: {new: 604801}
outputs:
  event_ring_mb: 3000
workers:
  mbufs_per_worker: 99999999999999999999999
  stats_interval_s: 86401
)",
      Err(2, 43, "ports[0].rx_desc", Eq("must be a power of two in 64..8192, got 100")),
      Err(3, 43, "ports[1].tx_desc", Eq("must be in 64..8192, got 16384")),
      Err(7, 13, "flow.capacity", Eq("must be in 1024..67108864, got 1000")),
      Err(9, 16, "flow.timeouts.udp.new", Eq("must be in 0..604800, got 604801")),
      Err(11, 18, "outputs.event_ring_mb", Eq("must be a power of two in 1..4096, got 3000")),
      Err(13, 21, "workers.mbufs_per_worker",
          Eq("must be in 1024..4194304, got 99999999999999999999999")),
      Err(14, 21, "workers.stats_interval_s", Eq("must be in 0..86400, got 86401")));
}

TEST(ConfigTest, RangeBoundsAreInclusive) {
  const Config c = LoadOk(R"(ports:
  - {name: a, device: net_null0, rx_desc: 64, tx_desc: 8192}
  - {name: b, device: net_null1}
bridges:
  - [a, b]
workers:
  lcores: [1023]
  mbufs_per_worker: 4194304
  tx_flush_us: 1
  stats_interval_s: 86400
flow:
  capacity: 67108864
  emergency: {enter_percent: 100, exit_percent: 99}
outputs:
  event_ring_mb: 4096
)");
  EXPECT_EQ(c.ports[0].rx_desc, 64);
  EXPECT_EQ(c.ports[0].tx_desc, 8192);
  EXPECT_EQ(c.worker_lcores, (std::vector<uint32_t>{1023}));
  EXPECT_EQ(c.mbufs_per_worker, 4194304u);
  EXPECT_EQ(c.tx_flush_us, 1u);
  EXPECT_EQ(c.stats_interval_s, 86400u);
  EXPECT_EQ(c.flow.capacity, 67108864u);
  EXPECT_EQ(c.flow.emergency_enter_percent, 100u);
  EXPECT_EQ(c.flow.emergency_exit_percent, 99u);
  EXPECT_EQ(c.event_ring_mb, 4096u);
}

TEST(ConfigTest, BadEnums) {
  ExpectErrors(std::string(kMinimal) + R"(eal:
  log_level: verbose
exception_policy:
  flow_table_full: drop
)",
               Err(7, 14, "eal.log_level",
                   Eq("must be one of emerg, alert, crit, err, warning, notice, info, debug, "
                      "got \"verbose\"")),
               Err(9, 20, "exception_policy.flow_table_full",
                   Eq("must be one of drop-flow, drop-packet, pass-flow, pass-packet, bypass, "
                      "got \"drop\"")));
}

TEST(ConfigTest, EveryLogLevelAndPolicyIsAccepted) {
  for (const char* level :
       {"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}) {
    EXPECT_EQ(LoadOk(std::string(kMinimal) + "eal: {log_level: " + level + "}\n").log_level, level);
  }
  const ExceptionPolicy policies[] = {ExceptionPolicy::kDropFlow, ExceptionPolicy::kDropPacket,
                                      ExceptionPolicy::kPassFlow, ExceptionPolicy::kPassPacket,
                                      ExceptionPolicy::kBypass};
  for (ExceptionPolicy p : policies) {
    const std::string name = ExceptionPolicyName(p);
    SCOPED_TRACE(name);
    const Config c =
        LoadOk(std::string(kMinimal) + "exception_policy: {flow_table_full: " + name + "}\n");
    EXPECT_EQ(c.exception_policy.flow_table_full, p);
  }
}

TEST(ConfigTest, ExceptionPolicyNames) {
  EXPECT_STREQ(ExceptionPolicyName(ExceptionPolicy::kDropFlow), "drop-flow");
  EXPECT_STREQ(ExceptionPolicyName(ExceptionPolicy::kDropPacket), "drop-packet");
  EXPECT_STREQ(ExceptionPolicyName(ExceptionPolicy::kPassFlow), "pass-flow");
  EXPECT_STREQ(ExceptionPolicyName(ExceptionPolicy::kPassPacket), "pass-packet");
  EXPECT_STREQ(ExceptionPolicyName(ExceptionPolicy::kBypass), "bypass");
}

TEST(ConfigTest, StringChecks) {
  ExpectErrors(std::string(kMinimal) + R"(sensor:
  name: ""
eal:
  file_prefix: a/b
)",
               Err(7, 9, "sensor.name", Eq("must not be empty")),
               Err(9, 16, "eal.file_prefix", Eq("must not contain '/', got \"a/b\"")));
}

TEST(ConfigTest, InvalidPortName) {
  ExpectErrors(R"(ports:
  - {name: "a b", device: net_null0}
  - {name: b, device: net_null1}
bridges:
  - ["a b", b]
)",
               Err(2, 12, "ports[0].name", Eq("must match [a-zA-Z0-9_-]+, got \"a b\"")));
}

TEST(ConfigTest, DuplicatePortName) {
  // The second `a` is rejected, so `b` names no port.
  ExpectErrors(
      R"(ports:
  - name: a
    device: net_null0
  - name: a
    device: net_null1
bridges:
  - [a, b]
)",
      Err(4, 11, "ports[1].name", Eq("duplicate port name \"a\" (first defined at ports[0])")),
      Err(7, 9, "bridges[0][1]", HasSubstr("unknown port \"b\"")));
}

TEST(ConfigTest, PortEntryMissingKeysOrNotAMap) {
  ExpectErrors(R"(ports:
  - {name: a}
  - net_null1
bridges:
  - [a, b]
)",
               Err(2, 5, "ports[0].device", Eq("required key missing")),
               Err(3, 5, "ports[1]", Eq("expected a map, got \"net_null1\"")),
               Err(5, 9, "bridges[0][1]", HasSubstr("unknown port \"b\"")));
}

TEST(ConfigTest, BridgeMapFormAndMissingPort) {
  // `b` is then in no bridge: reported at its port entry, which comes first in the document.
  ExpectErrors(
      R"(ports:
  - {name: a, device: net_null0}
  - {name: b, device: net_null1}
bridges:
  - {a: a, b: c}
)",
      Err(3, 5, "ports[1]", Eq("port \"b\" is not in any bridge; its traffic would be dropped")),
      Err(5, 15, "bridges[0].b", Eq("unknown port \"c\"; not defined in ports")));
}

TEST(ConfigTest, PortInTwoBridges) {
  ExpectErrors(R"(ports:
  - {name: a, device: net_null0}
  - {name: b, device: net_null1}
  - {name: c, device: net_null2}
bridges:
  - [a, b]
  - [c, a]
)",
               Err(7, 9, "bridges[1][1]",
                   Eq("port \"a\" is already in bridges[0]; a port may be in one bridge only")));
}

TEST(ConfigTest, UnbridgedPort) {
  ExpectErrors(
      R"(ports:
  - {name: a, device: net_null0}
  - {name: b, device: net_null1}
  - name: c
    device: net_null2
bridges:
  - [a, b]
)",
      Err(4, 5, "ports[2]", Eq("port \"c\" is not in any bridge; its traffic would be dropped")));
}

TEST(ConfigTest, BridgeToItself) {
  ExpectErrors(R"(ports:
  - {name: a, device: net_null0}
bridges:
  - [a, a]
)",
               Err(4, 9, "bridges[0][1]", Eq("bridge joins port \"a\" to itself")));
}

TEST(ConfigTest, MalformedBridges) {
  // Malformed entries do not also produce "not in any bridge" errors.
  ExpectErrors(
      R"(ports:
  - {name: a, device: net_null0}
  - {name: b, device: net_null1}
bridges:
  - [a]
  - a
  - {a: a}
  - [a, b, a]
)",
      Err(5, 5, "bridges[0]", Eq("a bridge joins exactly 2 ports, got 1")),
      Err(6, 5, "bridges[1]", Eq("expected [portA, portB] or {a: portA, b: portB}, got \"a\"")),
      Err(7, 5, "bridges[2].b", Eq("required key missing")),
      Err(8, 5, "bridges[3]", Eq("a bridge joins exactly 2 ports, got 3")));
}

TEST(ConfigTest, WorkerLcoreEqualToMainLcore) {
  ExpectErrors(std::string(kMinimal) + R"(eal:
  main_lcore: 2
workers:
  lcores: [1, 2]
)",
               Err(9, 15, "workers.lcores[1]",
                   Eq("lcore 2 is eal.main_lcore; the main lcore cannot run a worker")));
}

TEST(ConfigTest, MainLcoreEqualToDefaultWorkerLcore) {
  ExpectErrors(std::string(kMinimal) + "eal: {main_lcore: 1}\n",
               Err(6, 19, "eal.main_lcore", HasSubstr("is also a worker lcore")));
}

TEST(ConfigTest, WorkerLcoreList) {
  ExpectErrors(std::string(kMinimal) + R"(workers:
  lcores: [3, 1024, 3]
)",
               Err(7, 15, "workers.lcores[1]", Eq("must be in 0..1023, got 1024")),
               Err(7, 21, "workers.lcores[2]", Eq("duplicate lcore 3 (also workers.lcores[0])")));
  ExpectErrors(std::string(kMinimal) + "workers: {lcores: []}\n",
               Err(6, 19, "workers.lcores", Eq("at least one worker lcore is required")));
}

TEST(ConfigTest, EmergencyExitMustBeBelowEnter) {
  ExpectErrors(std::string(kMinimal) + R"(flow:
  emergency:
    enter_percent: 80
    exit_percent: 80
)",
               Err(9, 19, "flow.emergency.exit_percent",
                   Eq("must be less than enter_percent (80), got 80")));
  // Only enter given: it is compared with the default exit (80).
  ExpectErrors(std::string(kMinimal) + "flow: {emergency: {enter_percent: 50}}\n",
               Err(6, 35, "flow.emergency.enter_percent",
                   Eq("must be greater than exit_percent (80, the default), got 50")));
  // An out-of-range value is reported once, without a comparison error.
  ExpectErrors(std::string(kMinimal) + "flow: {emergency: {exit_percent: 100}}\n",
               Err(6, 34, "flow.emergency.exit_percent", Eq("must be in 0..99, got 100")));
}

TEST(ConfigTest, MemoryMinimumDependsOnHugepages) {
  // size_mb comes before hugepages: the check waits for both.
  ExpectErrors(std::string(kMinimal) + R"(eal:
  memory:
    size_mb: 512
    hugepages: false
)",
               Err(8, 14, "eal.memory.size_mb",
                   HasSubstr("must be in 1024..4294967295 when hugepages is false")));
  EXPECT_EQ(
      LoadOk(std::string(kMinimal) + "eal: {memory: {size_mb: 512, hugepages: true}}\n").memory_mb,
      512u);
  ExpectErrors(std::string(kMinimal) + "eal: {memory: {size_mb: 32, hugepages: true}}\n",
               Err(6, 25, "eal.memory.size_mb",
                   Eq("must be in 64..4294967295 when hugepages is true, got 32")));
}

TEST(ConfigTest, HashSeed) {
  EXPECT_EQ(
      LoadOk(std::string(kMinimal) + "flow: {hash_seed: 18446744073709551615}\n").flow.hash_seed,
      std::optional<uint64_t>(UINT64_MAX));
  EXPECT_EQ(LoadOk(std::string(kMinimal) + "flow: {hash_seed: 0xFFff}\n").flow.hash_seed,
            std::optional<uint64_t>(0xffff));
  EXPECT_FALSE(LoadOk(std::string(kMinimal) + "flow: {hash_seed: null}\n").flow.hash_seed);
  ExpectErrors(std::string(kMinimal) + "flow: {hash_seed: 18446744073709551616}\n",
               Err(6, 19, "flow.hash_seed",
                   Eq("must be in 0..18446744073709551615, got 18446744073709551616")));
  ExpectErrors(std::string(kMinimal) + "flow: {hash_seed: 0x}\n",
               Err(6, 19, "flow.hash_seed", Eq("expected an unsigned integer, got \"0x\"")));
}

TEST(ConfigTest, DeviceKinds) {
  struct Case {
    const char* device;
    bool is_pci;
  };
  const Case cases[] = {
      {"0000:03:00.0", true},          {"03:00.1", true},
      {"0000:aF:1f.7", true},          {"net_pcap0", false},
      {"net_pcap0,iface=eth1", false}, {"net_af_packet0,iface=vg-a,qpairs=1", false},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.device);
    const Config c = LoadOk(std::string("ports:\n  - name: a\n    device: \"") + k.device +
                            "\"\n  - {name: b, device: net_null9}\nbridges: [[a, b]]\n");
    ASSERT_EQ(c.ports.size(), 2u);
    EXPECT_EQ(c.ports[0].device, k.device);
    EXPECT_EQ(c.ports[0].is_pci, k.is_pci);
  }
}

TEST(ConfigTest, BadDeviceStrings) {
  for (const char* device : {"eth0", "net_", "pcap0,iface=x", "0000:03:00.8", "0000:3:00.0",
                             "00:03:00.0", "net_af packet0", ",net_null0"}) {
    SCOPED_TRACE(device);
    ExpectErrors(std::string(R"(ports:
  - name: a
    device: ")") + device +
                     R"("
  - {name: b, device: net_null1}
bridges:
  - [a, b]
)",
                 Err(3, 13, "ports[0].device",
                     Eq(std::string("not a PCI address (0000:03:00.0) or a net_* vdev "
                                    "(net_pcap0,...), got \"") +
                        device + "\"")));
  }
  ExpectErrors(R"(ports:
  - name: a
    device: ""
  - {name: b, device: net_null1}
bridges:
  - [a, b]
)",
               Err(3, 13, "ports[0].device", Eq("must not be empty")));
}

TEST(ConfigTest, DuplicateDevice) {
  ExpectErrors(
      R"(ports:
  - {name: a, device: "0000:03:00.0"}
  - {name: b, device: "03:00.0"}
  - {name: c, device: net_null0}
  - {name: d, device: "net_null0,size=64"}
bridges:
  - [a, b]
  - [c, d]
)",
      Err(3, 23, "ports[1].device", Eq("device \"0000:03:00.0\" is already used by ports[0]")),
      Err(5, 23, "ports[3].device", Eq("device \"net_null0\" is already used by ports[2]")));
}

TEST(ConfigTest, NullSectionMeansDefaults) {
  ExpectSameSettings(LoadOk(std::string(kMinimal) + "flow:\nworkers:\neal:\n  memory:\n"),
                     Config{});
}

TEST(ConfigTest, MultipleErrorsAllReportedInDocumentOrder) {
  // Cross-field errors (main lcore, unbridged port) are found last but reported in place.
  const ConfigResult r = LoadConfigString(R"(eal:
  main_lcore: 1
ports:
  - {name: a, device: eth0}
  - {name: b, device: net_null1, rx_desc: 0}
bridges:
  - [a, x]
flow:
  neww: 1
)",
                                          "lab.yaml");
  EXPECT_FALSE(r.config.has_value());
  EXPECT_THAT(
      r.errors,
      ElementsAre(Err(2, 15, "eal.main_lcore", HasSubstr("is also a worker lcore"), "lab.yaml"),
                  Err(4, 23, "ports[0].device", HasSubstr("not a PCI address"), "lab.yaml"),
                  Err(5, 5, "ports[1]", HasSubstr("not in any bridge"), "lab.yaml"),
                  Err(5, 43, "ports[1].rx_desc", Eq("must be in 64..8192, got 0"), "lab.yaml"),
                  Err(7, 9, "bridges[0][1]", HasSubstr("unknown port \"x\""), "lab.yaml"),
                  Err(9, 3, "flow.neww", StartsWith("unknown key"), "lab.yaml")));
}

TEST(ConfigTest, ErrorToString) {
  EXPECT_EQ((ConfigError{"v.yaml", 3, 7, "ports[1].device", "bad"}).ToString(),
            "v.yaml:3:7: ports[1].device: bad");
  EXPECT_EQ((ConfigError{"v.yaml", 3, 0, "x", "bad"}).ToString(), "v.yaml:3: x: bad");
  EXPECT_EQ((ConfigError{"v.yaml", 0, 0, "x", "bad"}).ToString(), "v.yaml: x: bad");
  EXPECT_EQ((ConfigError{"v.yaml", 2, 1, "", "bad"}).ToString(), "v.yaml:2:1: bad");
}

TEST(ConfigTest, EalArgsVdevOnly) {
  const ConfigResult r = LoadConfigFile(std::string(VIGIL_SOURCE_DIR) + "/config/vigil.yaml");
  ASSERT_TRUE(r.config.has_value());
  EXPECT_THAT(BuildEalArgs(*r.config, "vigil-dataplane", {}),
              ElementsAreArray<std::string>({
                  "vigil-dataplane",
                  "-l",
                  "0,1",
                  "--main-lcore",
                  "0",
                  "--no-huge",
                  "-m",
                  "1024",
                  "--file-prefix",
                  "vigil",
                  "--no-telemetry",
                  "--no-pci",
                  "--vdev",
                  "net_af_packet0,iface=vg-a,qpairs=1",
                  "--vdev",
                  "net_af_packet1,iface=vg-b,qpairs=1",
                  "--log-level",
                  "lib.*:notice",
                  "--log-level",
                  "pmd.*:notice",
              }));
}

TEST(ConfigTest, EalArgsMixedPciAndVdevWithHugepagesAndExtra) {
  const ConfigResult r = LoadConfigString(kFull);
  ASSERT_TRUE(r.config.has_value());
  EXPECT_THAT(BuildEalArgs(*r.config, "/usr/bin/vigil-dataplane", {"--huge-dir", "/mnt/huge1G"}),
              ElementsAreArray<std::string>({
                  "/usr/bin/vigil-dataplane",
                  "-l",
                  "2,4,3,5",
                  "--main-lcore",
                  "2",
                  "-m",
                  "512",
                  "--file-prefix",
                  "vg2",
                  "--no-telemetry",
                  "-a",
                  "0000:03:00.0",
                  "-a",
                  "03:00.1",
                  "--vdev",
                  "net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap",
                  "--vdev",
                  "net_null0",
                  "--log-level",
                  "lib.*:debug",
                  "--log-level",
                  "pmd.*:debug",
                  "--huge-dir",
                  "/mnt/huge1G",
              }));
}

}  // namespace
}  // namespace vigil::dp

namespace vigil::dp {
namespace {

// Every registered parser can be sized (or turned off) under app_layer.parsers.
TEST(ConfigTest, EveryParserHasAPoolKey) {
  for (const proto::ParserKind& k : proto::ParserKinds()) {
    const ConfigResult r = LoadConfigString(std::string(R"(ports:
  - {name: a, device: net_null0}
  - {name: b, device: net_null1}
bridges:
  - [a, b]
app_layer:
  parsers:
    )") + k.name + ": 0\n");
    EXPECT_TRUE(r.errors.empty()) << k.name << ": "
                                  << (r.errors.empty() ? "" : r.errors[0].ToString());
  }
}

}  // namespace
}  // namespace vigil::dp

namespace vigil::dp {
namespace {

// outputs.files: values, the extension list (normalised), and errors with their positions.
TEST(ConfigTest, OutputsFiles) {
  const std::string head = R"(ports:
  - {name: a, device: net_null0}
  - {name: b, device: net_null1}
bridges:
  - [a, b]
outputs:
  files:
)";
  ConfigResult r = LoadConfigString(head + R"(    enabled: true
    dir: /srv/files
    max_file_mb: 8
    max_total_mb: 64
    extensions: [EXE, .job, tar.gz]
)");
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].ToString();
  const FilesConfig& f = r.config->app_layer.files;
  EXPECT_TRUE(f.enabled);
  EXPECT_EQ(f.dir, "/srv/files");
  EXPECT_EQ(f.max_file_mb, 8u);
  EXPECT_EQ(f.max_total_mb, 64u);
  EXPECT_EQ(f.extensions, (std::vector<std::string>{"exe", "job", "tar.gz"}));

  r = LoadConfigString(head + R"(    max_file_mb: 0
    extensions: ["a/b"]
    bogus: 1
)");
  ASSERT_EQ(r.errors.size(), 3u);
  EXPECT_EQ(r.errors[0].ToString(),
            "<string>:8:18: outputs.files.max_file_mb: must be in "
            "1..1048576, got 0");
  EXPECT_EQ(r.errors[1].field, "outputs.files.extensions[0]");
  EXPECT_EQ(r.errors[1].line, 9);
  EXPECT_EQ(r.errors[2].field, "outputs.files.bogus");

  r = LoadConfigString(head + "    max_total_mb: 5\n");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].ToString(),
            "<string>:8:19: outputs.files.max_total_mb: must be at least "
            "max_file_mb (100, the default), got 5");
}

// A pushed document's dataplane section: the document's lines, fields prefixed, paths resolved
// against the running file's directory; and which changes need a restart.
TEST(ConfigTest, PushedSectionAndRestartOnlyChanges) {
  const std::string doc = std::string("version: \"1\"\ndataplane:\n") +
                          "  ports:\n    - {name: a, device: net_null0}\n"
                          "    - {name: b, device: net_null1}\n  bridges:\n    - [a, b]\n"
                          "  detect:\n    enabled: true\n    rules: [x.rules]\n"
                          "    inline: |\n      alert tcp any any -> any any (sid:1;)\n"
                          "  flow: {capacity: lots}\n";
  ConfigResult bad = LoadConfigSection(doc, "push.yaml", "dataplane", "/etc/vigil");
  ASSERT_EQ(bad.errors.size(), 1u);
  EXPECT_EQ(bad.errors[0].ToString().rfind("push.yaml:13:", 0), 0u) << bad.errors[0].ToString();
  EXPECT_EQ(bad.errors[0].field, "dataplane.flow.capacity");
  const std::string good = doc.substr(0, doc.find("  flow:"));
  ConfigResult ok = LoadConfigSection(good, "push.yaml", "dataplane", "/etc/vigil");
  ASSERT_TRUE(ok.config.has_value()) << ok.errors[0].ToString();
  const DetectConfig& d = ok.config->detect;
  EXPECT_EQ(d.rules, std::vector<std::string>{"/etc/vigil/x.rules"});
  EXPECT_EQ(d.inline_line, 12);  // the rule's own line in the document
  EXPECT_EQ(d.inline_file, "push.yaml");
  EXPECT_TRUE(d.refuse_invalid_rules);
  ConfigResult none = LoadConfigSection("version: \"1\"\n", "push.yaml", "dataplane", "");
  ASSERT_EQ(none.errors.size(), 1u);
  EXPECT_EQ(none.errors[0].field, "dataplane");

  ConfigResult base = LoadConfigString(kMinimal);
  ASSERT_TRUE(base.config.has_value());
  Config next = *ok.config;
  EXPECT_TRUE(RestartOnlyChanges(*base.config, next).empty());  // detect changes live
  next.never_block = {"10.0.0.1"};
  EXPECT_TRUE(RestartOnlyChanges(*base.config, next).empty());
  next.flow.capacity = 1024;
  next.ports[1].device = "net_null2";
  next.history.memory_mb_per_worker = 8;
  EXPECT_EQ(RestartOnlyChanges(*base.config, next),
            (std::vector<std::string>{"ports", "flow", "history"}));
}

}  // namespace
}  // namespace vigil::dp
