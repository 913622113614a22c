// EAL tests: the real dataplane (ports, workers, flow tables, exporter) on net_ring ports, with
// --no-huge --no-pci. Frames are injected into the RX ring of one port and read back from the TX
// ring of its peer.
#include <gtest/gtest.h>
#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <rte_thash.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/app/dataplane.h"
#include "dataplane/port/port.h"

namespace vigil::dp {
namespace {

rte_mempool* g_pool = nullptr;
int g_seq = 0;

std::vector<uint8_t> Frame(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport,
                           uint8_t proto, uint8_t tcp_flags, size_t payload, uint16_t vlan = 0) {
  std::vector<uint8_t> f;
  const uint8_t dmac[6] = {0x02, 0, 0, 0, 0, 2};
  const uint8_t smac[6] = {0x02, 0, 0, 0, 0, 1};
  f.insert(f.end(), dmac, dmac + 6);
  f.insert(f.end(), smac, smac + 6);
  if (vlan != 0) {
    f.insert(f.end(), {0x81, 0x00, static_cast<uint8_t>(vlan >> 8), static_cast<uint8_t>(vlan)});
  }
  f.insert(f.end(), {0x08, 0x00});
  const size_t l4 = proto == 6 ? 20 : 8;
  const size_t total = 20 + l4 + payload;
  const uint8_t ip[20] = {0x45,
                          0,
                          static_cast<uint8_t>(total >> 8),
                          static_cast<uint8_t>(total),
                          0,
                          1,
                          0x40,
                          0,
                          64,
                          proto,
                          0,
                          0,
                          static_cast<uint8_t>(src >> 24),
                          static_cast<uint8_t>(src >> 16),
                          static_cast<uint8_t>(src >> 8),
                          static_cast<uint8_t>(src),
                          static_cast<uint8_t>(dst >> 24),
                          static_cast<uint8_t>(dst >> 16),
                          static_cast<uint8_t>(dst >> 8),
                          static_cast<uint8_t>(dst)};
  f.insert(f.end(), ip, ip + 20);
  f.insert(f.end(), {static_cast<uint8_t>(sport >> 8), static_cast<uint8_t>(sport),
                     static_cast<uint8_t>(dport >> 8), static_cast<uint8_t>(dport)});
  if (proto == 6) {
    f.insert(f.end(), {0, 0, 0, 1, 0, 0, 0, 0, 0x50, tcp_flags, 0xff, 0xff, 0, 0, 0, 0});
  } else {
    const size_t ulen = 8 + payload;
    f.insert(f.end(), {static_cast<uint8_t>(ulen >> 8), static_cast<uint8_t>(ulen), 0, 0});
  }
  for (size_t i = 0; i < payload; ++i) f.push_back(static_cast<uint8_t>(i * 31 + 7));
  return f;
}

rte_mbuf* ToMbuf(const std::vector<uint8_t>& bytes) {
  rte_mbuf* m = rte_pktmbuf_alloc(g_pool);
  if (m == nullptr) return nullptr;
  char* p = rte_pktmbuf_append(m, static_cast<uint16_t>(bytes.size()));
  std::memcpy(p, bytes.data(), bytes.size());
  return m;
}

std::vector<uint8_t> FromMbuf(rte_mbuf* m) {
  std::vector<uint8_t> out(rte_pktmbuf_pkt_len(m));
  const void* p = rte_pktmbuf_read(m, 0, out.size(), out.data());
  if (p != out.data()) std::memcpy(out.data(), p, out.size());
  return out;
}

// A bridge of two net_ring ports run by a real Dataplane on worker lcore 1.
class RingBridge {
 public:
  explicit RingBridge(Config config, uint32_t tx_ring_size = 4096) {
    const int id = ++g_seq;
    for (int i = 0; i < 4; ++i) {
      const std::string n = "t" + std::to_string(id) + "_" + std::to_string(i);
      rings_[i] = rte_ring_create(n.c_str(), i % 2 == 1 ? tx_ring_size : 4096, SOCKET_ID_ANY,
                                  RING_F_SP_ENQ | RING_F_SC_DEQ);
    }
    name_a_ = "ring_a" + std::to_string(id);
    name_b_ = "ring_b" + std::to_string(id);
    port_a_ = rte_eth_from_rings(name_a_.c_str(), &rings_[0], 1, &rings_[1], 1, SOCKET_ID_ANY);
    port_b_ = rte_eth_from_rings(name_b_.c_str(), &rings_[2], 1, &rings_[3], 1, SOCKET_ID_ANY);
    // The ring PMD names its ethdevs itself ("net_ring_<name>"): use what it registered.
    char dev_name[RTE_ETH_NAME_MAX_LEN];
    if (port_a_ >= 0 && rte_eth_dev_get_name_by_port(port_a_, dev_name) == 0) name_a_ = dev_name;
    if (port_b_ >= 0 && rte_eth_dev_get_name_by_port(port_b_, dev_name) == 0) name_b_ = dev_name;
    eve_path_ =
        "/tmp/vigil-eal-test-" + std::to_string(getpid()) + "-" + std::to_string(id) + ".json";
    std::remove(eve_path_.c_str());
    config.ports = {PortConfig{.name = "a", .device = name_a_},
                    PortConfig{.name = "b", .device = name_b_}};
    config.bridges = {BridgeConfig{"a", "b"}};
    if (config.worker_lcores.empty()) config.worker_lcores = {1};
    config.eve_path = eve_path_;
    config.mbufs_per_worker = 2047;
    config_ = config;
  }
  ~RingBridge() {
    Stop();
    std::remove(eve_path_.c_str());
  }

  void SetWorkers(std::vector<uint32_t> lcores) { config_.worker_lcores = std::move(lcores); }
  std::string Start() {
    std::string err = dp_.Init(config_, RunOptions{});
    if (!err.empty()) return err;
    thread_ = std::thread([this] { dp_.Run(&stop_); });
    return "";
  }
  void Stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  // side 0: into port a (leaves on b); side 1: into port b.
  void Inject(int side, const std::vector<uint8_t>& frame) {
    rte_mbuf* m = ToMbuf(frame);
    ASSERT_NE(m, nullptr);
    ASSERT_EQ(rte_ring_enqueue(rings_[side == 0 ? 0 : 2], m), 0);
  }
  // Frames that left on port b (side 0's traffic) or a (side 1's).
  // Waits up to `wait_ms` for `want` frames (a check that expects none waits briefly).
  std::vector<std::vector<uint8_t>> Collect(int side, size_t want, int wait_ms = 10000) {
    std::vector<std::vector<uint8_t>> out;
    rte_ring* r = rings_[side == 0 ? 3 : 1];
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
    while (out.size() < want && std::chrono::steady_clock::now() < deadline) {
      void* m = nullptr;
      if (rte_ring_dequeue(r, &m) == 0) {
        out.push_back(FromMbuf(static_cast<rte_mbuf*>(m)));
        rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
      } else {
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    }
    return out;
  }
  bool WaitRx(uint64_t total, int seconds = 10) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < deadline) {
      if (dp_.Totals(0).rx_pkts + dp_.Totals(1).rx_pkts >= total) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
  }
  std::vector<std::string> EveLines() {
    std::ifstream in(eve_path_);
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    return lines;
  }
  Dataplane& dp() { return dp_; }

 private:
  rte_ring* rings_[4] = {};  // a_rx, a_tx, b_rx, b_tx
  std::string name_a_, name_b_, eve_path_;
  int port_a_ = -1, port_b_ = -1;
  Config config_;
  Dataplane dp_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

constexpr uint32_t kHostA = 0x0a4d0001;
constexpr uint32_t kHostB = 0x0a4d0002;

TEST(BridgeEalTest, ForwardsBothWaysByteForByteAndTracksTheFlow) {
  RingBridge br(Config{});
  ASSERT_EQ(br.Start(), "");
  std::vector<std::vector<uint8_t>> sent_ab, sent_ba;
  sent_ab.push_back(Frame(kHostA, 40000, kHostB, 445, 6, 0x02, 0));
  sent_ba.push_back(Frame(kHostB, 445, kHostA, 40000, 6, 0x12, 0));
  sent_ab.push_back(Frame(kHostA, 40000, kHostB, 445, 6, 0x10, 0));
  for (int i = 0; i < 50; ++i)
    sent_ab.push_back(Frame(kHostA, 40000, kHostB, 445, 6, 0x18, 100 + i));
  sent_ab.push_back(Frame(kHostA, 40000, kHostB, 445, 6, 0x11, 0));
  sent_ba.push_back(Frame(kHostB, 445, kHostA, 40000, 6, 0x11, 0));
  // Not IP: forwarded untouched, not tracked.
  std::vector<uint8_t> arp(60, 0xab);
  arp[12] = 0x08;
  arp[13] = 0x06;
  sent_ab.push_back(arp);
  for (const auto& f : sent_ab) br.Inject(0, f);
  for (const auto& f : sent_ba) br.Inject(1, f);
  const auto got_ab = br.Collect(0, sent_ab.size());
  const auto got_ba = br.Collect(1, sent_ba.size());
  EXPECT_EQ(got_ab, sent_ab);
  EXPECT_EQ(got_ba, sent_ba);
  br.Stop();

  const auto a = br.dp().Totals(0);
  const auto b = br.dp().Totals(1);
  EXPECT_EQ(a.rx_pkts, sent_ab.size());
  EXPECT_EQ(a.fwd_pkts, sent_ab.size());
  EXPECT_EQ(b.rx_pkts, sent_ba.size());
  EXPECT_EQ(a.dropped(), 0u);
  EXPECT_EQ(a.in_flight(), 0u);
  EXPECT_EQ(br.dp().flows_created(), 1u);
  const auto lines = br.EveLines();
  ASSERT_EQ(lines.size(), 1u);
  const std::string& l = lines[0];
  EXPECT_NE(l.find("\"event_type\":\"flow\""), std::string::npos) << l;
  EXPECT_NE(l.find("\"src_ip\":\"10.77.0.1\",\"src_port\":40000"), std::string::npos) << l;
  EXPECT_NE(l.find("\"dest_ip\":\"10.77.0.2\",\"dest_port\":445"), std::string::npos) << l;
  EXPECT_NE(l.find("\"pkts_toserver\":53,\"pkts_toclient\":2"), std::string::npos) << l;
  EXPECT_NE(l.find("\"state\":\"closed\",\"reason\":\"shutdown\""), std::string::npos) << l;
  const std::string json = br.dp().CountersJson();
  EXPECT_NE(json.find("\"l2\":1"), std::string::npos) << json;
}

TEST(BridgeEalTest, UnsentFramesAreFreedAndCountedAsTxFull) {
  // Port b's TX ring holds 63 frames and nobody drains it.
  RingBridge br(Config{}, 64);
  ASSERT_EQ(br.Start(), "");
  constexpr int kSent = 300;
  for (int i = 0; i < kSent; ++i) br.Inject(0, Frame(kHostA, 1000, kHostB, 53, 17, 0, 20));
  ASSERT_TRUE(br.WaitRx(kSent));
  br.Stop();
  const auto a = br.dp().Totals(0);
  EXPECT_EQ(a.rx_pkts, static_cast<uint64_t>(kSent));
  EXPECT_EQ(a.fwd_pkts, 63u);
  EXPECT_EQ(a.drops[static_cast<int>(DropReason::kTxFull)], kSent - 63u);
  EXPECT_EQ(a.in_flight(), 0u);
}

TEST(BridgeEalTest, FlowTableFullDropPolicyDropsNewFlowsOnly) {
  Config cfg;
  cfg.flow.capacity = 1024;
  cfg.exception_policy.flow_table_full = ExceptionPolicy::kDropPacket;
  RingBridge br(cfg);
  ASSERT_EQ(br.Start(), "");
  constexpr int kFlows = 1100;
  for (int i = 0; i < kFlows; ++i) {
    br.Inject(0, Frame(kHostA, static_cast<uint16_t>(2000 + i), kHostB, 53, 17, 0, 10));
    if (i % 512 == 511) {
      ASSERT_TRUE(br.WaitRx(i + 1));
    }
  }
  // An existing flow still passes.
  br.Inject(0, Frame(kHostA, 2000, kHostB, 53, 17, 0, 10));
  ASSERT_TRUE(br.WaitRx(kFlows + 1));
  const auto got = br.Collect(0, 1024 + 1);
  EXPECT_EQ(got.size(), 1025u);
  br.Stop();
  const auto a = br.dp().Totals(0);
  EXPECT_EQ(a.drops[static_cast<int>(DropReason::kFlowTableFull)], kFlows - 1024u);
  EXPECT_EQ(a.fwd_pkts, 1025u);
  EXPECT_EQ(a.rx_pkts, a.fwd_pkts + a.dropped());
  EXPECT_EQ(br.EveLines().size(), 1024u);
}

TEST(BridgeEalTest, VlanTaggedFramesKeepTheirTagsAndSeparateFlows) {
  RingBridge br(Config{});
  ASSERT_EQ(br.Start(), "");
  const auto v10 = Frame(kHostA, 5000, kHostB, 53, 17, 0, 30, 10);
  const auto v20 = Frame(kHostA, 5000, kHostB, 53, 17, 0, 30, 20);
  br.Inject(0, v10);
  br.Inject(0, v20);
  const auto got = br.Collect(0, 2);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], v10);
  EXPECT_EQ(got[1], v20);
  br.Stop();
  EXPECT_EQ(br.dp().flows_created(), 2u);
  const auto lines = br.EveLines();
  ASSERT_EQ(lines.size(), 2u);
  const std::string both = lines[0] + lines[1];
  EXPECT_NE(both.find("\"vlan\":[10]"), std::string::npos);
  EXPECT_NE(both.find("\"vlan\":[20]"), std::string::npos);
}

TEST(BridgeEalTest, TwoWorkersOnPortsWithoutRssFallBackToOneQueue) {
  Config cfg;
  RingBridge br(cfg);
  br.SetWorkers({1, 2});
  ASSERT_EQ(br.Start(), "");
  std::vector<std::vector<uint8_t>> sent;
  sent.reserve(64);
  for (int i = 0; i < 64; ++i) {
    sent.push_back(Frame(kHostA + static_cast<uint32_t>(i), 1000, kHostB, 80, 6, 0x02, 0));
  }
  for (const auto& f : sent) br.Inject(0, f);
  EXPECT_EQ(br.Collect(0, sent.size()), sent);
  br.Stop();
  // Without RSS each port gets one queue, served by the first worker; the second idles.
  for (const Port& p : br.dp().ports()) EXPECT_EQ(p.nb_queues, 1);
  EXPECT_EQ(br.dp().flows_created(), 64u);
  const std::string json = br.dp().CountersJson();
  EXPECT_NE(json.find("\"lcore\":2,"), std::string::npos) << json;
  EXPECT_EQ(br.dp().Totals(0).fwd_pkts, 64u);
}

// A client of the dataplane's command socket: one request line, one response line.
class CommandClient {
 public:
  explicit CommandClient(const std::string& path) {
    fd_ = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    if (connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      close(fd_);
      fd_ = -1;
    }
    timeval tv{10, 0};
    if (fd_ >= 0) setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~CommandClient() {
    if (fd_ >= 0) close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  std::string Call(const std::string& request) {
    const std::string line = request + "\n";
    if (write(fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) return "";
    std::string out;
    char c;
    while (read(fd_, &c, 1) == 1 && c != '\n') out += c;
    return out;
  }

 private:
  int fd_ = -1;
};

// A TCP segment with explicit sequence and acknowledgement numbers.
std::vector<uint8_t> Tcp(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport, uint8_t flags,
                         uint32_t seq, uint32_t ack, size_t payload) {
  std::vector<uint8_t> f = Frame(src, sport, dst, dport, 6, flags, payload);
  for (int i = 0; i < 4; ++i) {
    f[38 + i] = static_cast<uint8_t>(seq >> (24 - 8 * i));
    f[42 + i] = static_cast<uint8_t>(ack >> (24 - 8 * i));
  }
  return f;
}

uint64_t JsonUint(const std::string& json, const std::string& key) {
  const size_t at = json.find("\"" + key + "\":");
  if (at == std::string::npos) return UINT64_MAX;
  return std::strtoull(json.c_str() + at + key.size() + 3, nullptr, 10);
}

TEST(BridgeEalTest, BlockTableDropsTheConnectionAndResetsBothEndsOnce) {
  const std::string sock = "/tmp/vigil-eal-cmd-" + std::to_string(getpid()) + ".sock";
  Config cfg;
  cfg.commands_enabled = true;
  cfg.commands_socket = sock;
  cfg.never_block = {"10.77.0.250/32"};
  RingBridge br(cfg);
  ASSERT_EQ(br.Start(), "");
  CommandClient cmd(sock);
  ASSERT_TRUE(cmd.ok());
  const std::string hello = cmd.Call(R"({"v":1,"id":1,"op":"hello"})");
  EXPECT_NE(hello.find("\"ok\":true"), std::string::npos) << hello;
  EXPECT_EQ(JsonUint(hello, "block_generation"), 0u) << hello;
  EXPECT_NE(hello.find("\"boot_id\":\""), std::string::npos) << hello;

  // The connection is established and carries data before the block.
  br.Inject(0, Tcp(kHostA, 40000, kHostB, 445, 0x02, 1000, 0, 0));
  br.Inject(1, Tcp(kHostB, 445, kHostA, 40000, 0x12, 5000, 1001, 0));
  br.Inject(0, Tcp(kHostA, 40000, kHostB, 445, 0x18, 1001, 5001, 100));
  ASSERT_EQ(br.Collect(0, 2).size(), 2u);
  ASSERT_EQ(br.Collect(1, 1).size(), 1u);

  const std::string set = cmd.Call(
      R"({"v":1,"id":2,"op":"block.set","generation":1,"entries":[{"id":7,)"
      R"("kind":"block_connection","addr":"10.77.0.1","peer":"10.77.0.2","server_port":445,)"
      R"("proto":6,"expires_ns":0}]})");
  ASSERT_NE(set.find("\"ok\":true"), std::string::npos) << set;
  EXPECT_EQ(JsonUint(set, "id"), 2u);
  EXPECT_EQ(JsonUint(set, "entries"), 1u);
  // The worker picks the table up at its next loop pass (microseconds).
  std::this_thread::sleep_for(std::chrono::milliseconds(50));

  // The next data segment is dropped; each end gets one RST, in sequence.
  br.Inject(0, Tcp(kHostA, 40000, kHostB, 445, 0x18, 1101, 5001, 50));
  const auto to_server = br.Collect(0, 1);
  const auto to_client = br.Collect(1, 1);
  ASSERT_EQ(to_server.size(), 1u);
  ASSERT_EQ(to_client.size(), 1u);
  PacketMeta m;
  ASSERT_EQ(Decode(to_server[0], &m), DecodeClass::kL4);
  EXPECT_EQ(m.tcp_flags & 0x04, 0x04);
  EXPECT_EQ(m.tcp_seq, 1101u);  // where the server expects the dropped segment
  EXPECT_EQ(m.dst_port, 445);
  ASSERT_EQ(Decode(to_client[0], &m), DecodeClass::kL4);
  EXPECT_EQ(m.tcp_flags, 0x14);  // RST|ACK
  EXPECT_EQ(m.tcp_seq, 5001u);   // the client's ack: in its window
  EXPECT_EQ(m.dst_port, 40000);

  // Later packets of the flow, both ways, are dropped without more resets; other connections
  // between the same hosts pass.
  br.Inject(0, Tcp(kHostA, 40000, kHostB, 445, 0x18, 1101, 5001, 50));
  br.Inject(1, Tcp(kHostB, 445, kHostA, 40000, 0x18, 5001, 1101, 20));
  const auto other = Tcp(kHostA, 40001, kHostB, 139, 0x02, 1, 0, 0);
  br.Inject(0, other);
  const auto passed = br.Collect(0, 2, 300);
  ASSERT_EQ(passed.size(), 1u);
  EXPECT_EQ(passed[0], other);
  EXPECT_TRUE(br.Collect(1, 1, 300).empty());

  const std::string get = cmd.Call(R"({"v":1,"id":3,"op":"block.get"})");
  EXPECT_EQ(JsonUint(get, "generation"), 1u) << get;
  EXPECT_EQ(JsonUint(get, "drops"), 3u) << get;
  EXPECT_EQ(JsonUint(get, "resets"), 1u) << get;
  EXPECT_GT(JsonUint(get, "first_drop_ns"), 0u) << get;

  // Refused tables leave the running one in force: a bad version, an entry covering a never-block
  // address, an unknown field.
  EXPECT_NE(cmd.Call(R"({"v":2,"id":4,"op":"hello"})").find("unsupported protocol version 2"),
            std::string::npos);
  const std::string never =
      cmd.Call(R"({"v":1,"id":5,"op":"block.set","generation":9,"entries":[{"id":1,)"
               R"("kind":"quarantine_device","addr":"10.77.0.250"}]})");
  EXPECT_NE(never.find("never blocked"), std::string::npos) << never;
  const std::string typo =
      cmd.Call(R"({"v":1,"id":6,"op":"block.set","generation":9,"entries":[{"id":1,)"
               R"("kind":"quarantine_device","adr":"10.77.0.3"}]})");
  EXPECT_NE(typo.find(R"(unknown field \"adr\")"), std::string::npos) << typo;
  EXPECT_EQ(JsonUint(cmd.Call(R"({"v":1,"id":7,"op":"hello"})"), "block_generation"), 1u);

  // Quarantine the client instead: new connections both ways are dropped; an empty table then
  // lets traffic through again.
  ASSERT_NE(cmd.Call(R"({"v":1,"id":8,"op":"block.set","generation":2,"entries":[{"id":8,)"
                     R"("kind":"quarantine_device","addr":"10.77.0.1"}]})")
                .find("\"ok\":true"),
            std::string::npos);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  br.Inject(0, Frame(kHostA, 5353, kHostB, 53, 17, 0, 10));
  br.Inject(1, Frame(kHostB, 53, kHostA, 5353, 17, 0, 10));
  EXPECT_TRUE(br.Collect(0, 1, 300).empty());
  EXPECT_TRUE(br.Collect(1, 1, 300).empty());
  ASSERT_NE(cmd.Call(R"({"v":1,"id":9,"op":"block.set","generation":3,"entries":[]})")
                .find("\"ok\":true"),
            std::string::npos);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto again = Frame(kHostA, 5353, kHostB, 53, 17, 0, 10);
  br.Inject(0, again);
  const auto through = br.Collect(0, 1);
  ASSERT_EQ(through.size(), 1u);
  EXPECT_EQ(through[0], again);
  const std::string all = cmd.Call(R"({"v":1,"id":10,"op":"counters"})");
  const std::string counters = all.substr(all.find("\"respond\":{\"block_generation\""));
  EXPECT_EQ(JsonUint(counters, "resets_sent"), 2u) << all;
  EXPECT_EQ(JsonUint(counters, "blocked"), 5u) << all;
  EXPECT_EQ(JsonUint(counters, "block_generation"), 3u) << all;
  br.Stop();
  const auto a = br.dp().Totals(0);
  const auto b = br.dp().Totals(1);
  EXPECT_EQ(a.drops[static_cast<int>(DropReason::kBlocked)], 3u);
  EXPECT_EQ(b.drops[static_cast<int>(DropReason::kBlocked)], 2u);
  EXPECT_EQ(a.rx_pkts, a.fwd_pkts + a.dropped());  // the RSTs are not counted as forwarded
  EXPECT_EQ(b.rx_pkts, b.fwd_pkts + b.dropped());
}

// Frames of a classic pcap file (any timestamp resolution), in order.
std::vector<std::vector<uint8_t>> ReadPcap(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::vector<uint8_t>> frames;
  char header[24];
  if (!in.read(header, 24)) return frames;
  char rec[16];
  while (in.read(rec, 16)) {
    uint32_t caplen;
    std::memcpy(&caplen, rec + 8, 4);
    std::vector<uint8_t> f(caplen);
    if (!in.read(reinterpret_cast<char*>(f.data()), caplen)) break;
    frames.push_back(std::move(f));
  }
  return frames;
}

TEST(BridgeEalTest, HistoryExportWritesTheHostsForwardedFramesInOrder) {
  const std::string sock = "/tmp/vigil-eal-hist-" + std::to_string(getpid()) + ".sock";
  const std::string dir = "/tmp/vigil-eal-hist-" + std::to_string(getpid());
  Config cfg;
  cfg.commands_enabled = true;
  cfg.commands_socket = sock;
  cfg.history.dir = dir;
  cfg.history.memory_mb_per_worker = 4;
  cfg.history.spool = true;  // the main thread spools every 10 ms: the export merges both
  cfg.history.segment_mb = 1;
  cfg.history.disk_mb = 8;
  RingBridge br(cfg);
  ASSERT_EQ(br.Start(), "");
  std::vector<std::vector<uint8_t>> of_a;
  for (int i = 0; i < 40; ++i) {
    const auto f = Frame(kHostA, 7000, kHostB, 53, 17, 0, 20 + i);
    const auto other = Frame(kHostB + 5, 7001, kHostB, 53, 17, 0, 30);
    br.Inject(0, f);
    br.Inject(0, other);
    of_a.push_back(f);
    if (i % 4 == 3) {
      const auto reply = Frame(kHostB, 53, kHostA, 7000, 17, 0, 60 + i);
      br.Inject(1, reply);
      of_a.push_back(reply);
    }
  }
  ASSERT_TRUE(br.WaitRx(90));
  ASSERT_EQ(br.Collect(0, 80).size(), 80u);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // a few spool passes
  CommandClient cmd(sock);
  ASSERT_TRUE(cmd.ok());
  const std::string r =
      cmd.Call(R"({"v":1,"id":1,"op":"history.export","host":"10.77.0.1","from_ns":0,)"
               R"("to_ns":9000000000000000000})");
  ASSERT_NE(r.find("\"ok\":true"), std::string::npos) << r;
  EXPECT_EQ(JsonUint(r, "packets"), of_a.size()) << r;
  // Spooled records come from disk, once: none is taken again from memory.
  EXPECT_EQ(JsonUint(r, "disk_packets"), of_a.size()) << r;
  EXPECT_EQ(JsonUint(r, "memory_packets"), 0u) << r;
  const size_t at = r.find("\"path\":\"");
  ASSERT_NE(at, std::string::npos) << r;
  const std::string path = r.substr(at + 8, r.find('"', at + 8) - (at + 8));
  // Order across the two ports' directions follows the worker's processing order; compare sets
  // of frames and the order within each direction.
  const auto got = ReadPcap(path);
  EXPECT_EQ(got.size(), of_a.size());
  std::vector<std::vector<uint8_t>> want_sorted = of_a, got_sorted = got;
  std::sort(want_sorted.begin(), want_sorted.end());
  std::sort(got_sorted.begin(), got_sorted.end());
  EXPECT_EQ(got_sorted, want_sorted);
  // A peer and port filter, and an error for a bad address.
  const std::string r2 =
      cmd.Call(R"({"v":1,"id":2,"op":"history.export","host":"10.77.0.2","peer":"10.77.0.7",)"
               R"("port":53,"proto":"udp","from_ns":0,"to_ns":9000000000000000000})");
  EXPECT_EQ(JsonUint(r2, "packets"), 40u) << r2;
  const std::string bad =
      cmd.Call(R"({"v":1,"id":3,"op":"history.export","host":"10.77.0","from_ns":0,"to_ns":1})");
  EXPECT_NE(bad.find("host:"), std::string::npos) << bad;
  br.Stop();
  std::filesystem::remove_all(dir);
}

TEST(RssKeyTest, SymmetricKeyHashesBothDirectionsOfAFlowAlike) {
  // The Toeplitz hash a NIC computes, in software (rte_softrss), over IPv4 and IPv6 5-tuples in
  // both directions: equal hashes put both directions on one queue, hence one worker.
  uint8_t key[40];
  BuildSymmetricRssKey(key, sizeof(key));
  uint32_t state = 12345;
  auto next = [&state] { return state = state * 1103515245u + 12345u; };
  int distinct = 0;
  uint32_t first = 0;
  for (int i = 0; i < 1000; ++i) {
    rte_ipv4_tuple fwd{}, rev{};
    fwd.src_addr = next();
    fwd.dst_addr = next();
    fwd.sport = static_cast<uint16_t>(next());
    fwd.dport = static_cast<uint16_t>(next());
    rev.src_addr = fwd.dst_addr;
    rev.dst_addr = fwd.src_addr;
    rev.sport = fwd.dport;
    rev.dport = fwd.sport;
    const uint32_t a = rte_softrss(reinterpret_cast<uint32_t*>(&fwd), RTE_THASH_V4_L4_LEN, key);
    const uint32_t b = rte_softrss(reinterpret_cast<uint32_t*>(&rev), RTE_THASH_V4_L4_LEN, key);
    ASSERT_EQ(a, b) << i;
    if (i == 0) first = a;
    if (a != first) ++distinct;

    rte_ipv6_tuple f6{}, r6{};
    for (int k = 0; k < 16; ++k) {
      f6.src_addr[k] = static_cast<uint8_t>(next());
      f6.dst_addr[k] = static_cast<uint8_t>(next());
    }
    f6.sport = static_cast<uint16_t>(next());
    f6.dport = static_cast<uint16_t>(next());
    std::memcpy(r6.src_addr, f6.dst_addr, 16);
    std::memcpy(r6.dst_addr, f6.src_addr, 16);
    r6.sport = f6.dport;
    r6.dport = f6.sport;
    ASSERT_EQ(rte_softrss(reinterpret_cast<uint32_t*>(&f6), RTE_THASH_V6_L4_LEN, key),
              rte_softrss(reinterpret_cast<uint32_t*>(&r6), RTE_THASH_V6_L4_LEN, key))
        << i;
  }
  EXPECT_GT(distinct, 900);  // still a hash: flows spread over queues
}

}  // namespace
}  // namespace vigil::dp

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
    std::printf("SKIP: EAL tests need 2 cores (main + one worker lcore)\n");
    return 0;
  }
  // lcores 1 and 2 share CPU 1, so a two-worker dataplane can run on this 2-core machine.
  const char* eal[] = {"eal-test",    "--lcores",    "0@0,1@1,2@1", "--no-huge",
                       "-m",          "1024",        "--no-pci",    "--no-shconf",
                       "--log-level", "lib.*:error", "--log-level", "pmd.*:error"};
  if (rte_eal_init(static_cast<int>(sizeof(eal) / sizeof(eal[0])), const_cast<char**>(eal)) < 0) {
    std::fprintf(stderr, "EAL init failed\n");
    return 1;
  }
  vigil::dp::g_pool =
      rte_pktmbuf_pool_create("test_pool", 8191, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
  if (vigil::dp::g_pool == nullptr) return 1;
  const int rc = RUN_ALL_TESTS();
  rte_eal_cleanup();
  return rc;
}
