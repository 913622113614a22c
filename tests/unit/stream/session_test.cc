// The session layer with a recording test parser: identification by content, in-order delivery
// through reassembly, midstream reversal, gaps, UDP, and events onto the ring.
#include "dataplane/stream/session.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "dataplane/export/eve_writer.h"
#include "dataplane/export/event_record.h"

namespace vigil::dp {
namespace {

using proto::AppProto;
using proto::Direction;
using proto::ProbeResult;

std::vector<std::string> g_log;  // what every test parser saw, in order

// Claims streams that start with "HELLO" (client → server), wants more on a prefix of it.
class EchoParser final : public proto::AppParser {
 public:
  void OnData(Direction dir, std::span<const uint8_t> data,
              proto::EventSink& sink) noexcept override {
    const std::string s(reinterpret_cast<const char*>(data.data()), data.size());
    g_log.push_back(std::string(proto::DirectionName(dir)) + ":" + s);
    proto::JsonWriter& w = sink.Begin("echo", dir);
    w.ObjectBegin("echo");
    w.Str("data", s);
    w.ObjectEnd();
    sink.message().Append("ECHO ").Append(s);
    sink.Commit();
  }
  void OnGap(Direction dir, uint32_t missing, proto::EventSink&) noexcept override {
    g_log.push_back(std::string(proto::DirectionName(dir)) + ":gap" + std::to_string(missing));
  }
  void OnEnd(proto::EventSink&) noexcept override { g_log.push_back("end"); }
  ~EchoParser() override { g_log.push_back("destroyed"); }

  static ProbeResult Probe(Direction dir, std::span<const uint8_t> d) noexcept {
    static constexpr char kMagic[] = "HELLO";
    if (dir != Direction::kToServer) return ProbeResult::kNo;
    const size_t n = d.size() < 5 ? d.size() : 5;
    if (std::memcmp(d.data(), kMagic, n) != 0) return ProbeResult::kNo;
    return n == 5 ? ProbeResult::kYes : ProbeResult::kMaybe;
  }
};

proto::AppParser* MakeEcho(void* m) noexcept { return new (m) EchoParser(); }

const proto::ParserKind kKinds[] = {
    {AppProto::kHttp,
     "http",
     &EchoParser::Probe,
     &EchoParser::Probe,
     {8080, 0, 0, 0},
     sizeof(EchoParser),
     alignof(EchoParser),
     &MakeEcho,
     2},
};

constexpr uint8_t kSyn = 0x02, kAck = 0x10, kFin = 0x01;

class SessionTest : public ::testing::Test {
 protected:
  SessionTest() : ring_(1 << 16) {
    g_log.clear();
    config_.sessions = 4;
    config_.segment_slots = 64;
    mgr_ = std::make_unique<SessionManager>(config_, 0, &ring_, kKinds);
    std::memset(static_cast<void*>(&flow_), 0, sizeof flow_);
    flow_.in_use = 1;
    flow_.flow_id = 77;
    flow_.ip_version = 4;
    flow_.client_is_lo = 1;
    flow_.key.port_lo = 40000;
    flow_.key.port_hi = 8080;
    flow_.key.vlan_proto = 6u << 24;
    flow_.key.addr_lo[10] = flow_.key.addr_lo[11] = 0xff;
    flow_.key.addr_lo[12] = 10;
    flow_.key.addr_lo[15] = 1;
    flow_.key.addr_hi[10] = flow_.key.addr_hi[11] = 0xff;
    flow_.key.addr_hi[12] = 10;
    flow_.key.addr_hi[15] = 2;
  }

  SessionManager::Verdict Tcp(FlowDir dir, uint8_t flags, uint32_t seq, std::string payload,
                              uint32_t ack = 0) {
    PacketMeta m{};
    m.ip_proto = 6;
    m.tcp_flags = flags;
    m.tcp_seq = seq;
    m.tcp_ack = ack;
    frame_.assign(1, 0);
    frame_.insert(frame_.end(), payload.begin(), payload.end());
    m.payload_offset = 1;
    m.payload_len = static_cast<uint16_t>(payload.size());
    return mgr_->OnPacket(flow_, dir, m, frame_, ++now_);
  }

  std::vector<std::string> Events() {
    std::vector<std::string> out;
    uint32_t kind;
    std::span<const uint8_t> rec;
    while (ring_.Peek(&kind, &rec)) {
      std::string line;
      if (kind == kEventApp && AppendAppEve(rec, "t", &line)) out.push_back(line);
      ring_.Pop();
    }
    return out;
  }

  AppLayerConfig config_;
  EventRing ring_;
  std::unique_ptr<SessionManager> mgr_;
  Flow flow_;
  std::vector<uint8_t> frame_;
  uint64_t now_ = 1'600'000'000'000'000'000ULL;
};

TEST_F(SessionTest, IdentifiesByContentAndDeliversInOrder) {
  Tcp(kToServer, kSyn, 1000, "");
  Tcp(kToClient, kSyn | kAck, 5000, "");
  // Out of order: the second segment first; then "HEL", "LO" split across the probe.
  Tcp(kToServer, kAck, 1006, " world");
  Tcp(kToServer, kAck, 1001, "HEL");
  Tcp(kToServer, kAck, 1004, "LO");
  Tcp(kToClient, kAck, 5001, "hi");
  EXPECT_EQ(flow_.app_proto, static_cast<uint8_t>(AppProto::kHttp));
  ASSERT_GE(g_log.size(), 3u);
  std::string server;
  for (const auto& l : g_log) {
    if (l.rfind("to_server:", 0) == 0) server += l.substr(10);
  }
  EXPECT_EQ(server, "HELLO world");
  EXPECT_EQ(g_log.back(), "to_client:hi");
  mgr_->OnFlowEnd(flow_, ++now_);
  EXPECT_EQ(g_log[g_log.size() - 2], "end");
  EXPECT_EQ(g_log.back(), "destroyed");
  EXPECT_EQ(flow_.session, 0u);
  EXPECT_EQ(mgr_->counters().sessions_active, 0u);
  const auto ev = Events();
  ASSERT_FALSE(ev.empty());
  EXPECT_NE(ev[0].find("\"event_type\":\"echo\""), std::string::npos) << ev[0];
  EXPECT_NE(ev[0].find("\"src_ip\":\"10.0.0.1\",\"src_port\":40000"), std::string::npos) << ev[0];
  EXPECT_NE(ev[0].find("\"app_proto\":\"http\""), std::string::npos) << ev[0];
  EXPECT_NE(ev[0].find("\"message\":\"ECHO HEL"), std::string::npos) << ev[0];
}

TEST_F(SessionTest, UnrecognisedStreamFailsAndStopsBuffering) {
  Tcp(kToServer, kSyn, 1, "");
  Tcp(kToServer, kAck, 2, "GARBAGE");
  EXPECT_EQ(flow_.app_proto, static_cast<uint8_t>(AppProto::kFailed));
  EXPECT_EQ(mgr_->counters().identification_failed, 1u);
  Tcp(kToServer, kAck, 100, "far ahead");  // would be buffered if still inspected
  EXPECT_EQ(mgr_->segment_pool().in_use(), 0u);
  EXPECT_TRUE(g_log.empty());
  mgr_->OnFlowEnd(flow_, ++now_);
  EXPECT_EQ(mgr_->counters().sessions_active, 0u);
}

TEST_F(SessionTest, MidstreamPickupFromTheServerSideIsReversed) {
  // The first packet seen comes from the real client but the flow table thinks it is the
  // server's (client_is_lo says otherwise): the probe matches only reversed.
  flow_.client_is_lo = 0;
  Tcp(kToClient, kAck, 700, "HELLO");
  EXPECT_EQ(mgr_->counters().midstream, 1u);
  EXPECT_EQ(mgr_->counters().reversed, 1u);
  ASSERT_EQ(g_log.size(), 1u);
  EXPECT_EQ(g_log[0], "to_server:HELLO");
  const auto ev = Events();
  ASSERT_EQ(ev.size(), 1u);
  // Oriented as the parser sees it: the sender of HELLO is the source.
  EXPECT_NE(ev[0].find("\"src_ip\":\"10.0.0.1\""), std::string::npos) << ev[0];
}

TEST_F(SessionTest, AckedHoleIsReportedAsGap) {
  Tcp(kToServer, kSyn, 0, "");
  Tcp(kToClient, kSyn | kAck, 0, "");
  Tcp(kToServer, kAck, 1, "HELLO");
  Tcp(kToServer, kAck, 16, "after");  // bytes 6..15 never seen
  EXPECT_EQ(g_log.size(), 1u);
  Tcp(kToClient, kAck, 1, "", 21);  // the server acknowledges everything
  ASSERT_EQ(g_log.size(), 3u);
  EXPECT_EQ(g_log[1], "to_server:gap10");
  EXPECT_EQ(g_log[2], "to_server:after");
}

TEST_F(SessionTest, FlushAtEndDeliversBufferedDataAfterGap) {
  Tcp(kToServer, kSyn, 0, "");
  Tcp(kToServer, kAck, 1, "HELLO");
  Tcp(kToServer, kAck | kFin, 10, "tail");
  mgr_->OnFlowEnd(flow_, ++now_);
  ASSERT_GE(g_log.size(), 4u);
  EXPECT_EQ(g_log[1], "to_server:gap4");  // bytes 6..9
  EXPECT_EQ(g_log[2], "to_server:tail");
  EXPECT_EQ(g_log[3], "end");
}

TEST_F(SessionTest, SessionAndParserPoolsRunDryWithoutAllocating) {
  // Parser pool of 2, sessions 4: the third identified flow is counted, not parsed.
  Flow flows[4];
  for (int i = 0; i < 4; ++i) {
    flows[i] = flow_;
    flows[i].flow_id = 100 + i;
    PacketMeta m{};
    m.ip_proto = 6;
    m.tcp_flags = kAck;
    m.tcp_seq = 1;
    frame_ = {0, 'H', 'E', 'L', 'L', 'O'};
    m.payload_offset = 1;
    m.payload_len = 5;
    mgr_->OnPacket(flows[i], kToServer, m, frame_, ++now_);
  }
  EXPECT_EQ(mgr_->counters().parser_exhausted[static_cast<int>(AppProto::kHttp)], 2u);
  Flow extra = flow_;
  PacketMeta m{};
  m.ip_proto = 6;
  m.tcp_flags = kSyn;
  mgr_->OnPacket(extra, kToServer, m, frame_, ++now_);
  EXPECT_EQ(mgr_->counters().sessions_exhausted, 1u);
  for (auto& f : flows) mgr_->OnFlowEnd(f, ++now_);
  EXPECT_EQ(mgr_->counters().sessions_active, 0u);
}

TEST_F(SessionTest, UdpDatagramsAreProbedThenParsed) {
  flow_.key.vlan_proto = 17u << 24;
  PacketMeta m{};
  m.ip_proto = 17;
  frame_ = {0, 'x'};
  m.payload_offset = 1;
  m.payload_len = 1;
  mgr_->OnPacket(flow_, kToServer, m, frame_, ++now_);
  EXPECT_EQ(flow_.app_proto, 0u);  // one miss: not given up yet
  frame_ = {0, 'H', 'E', 'L', 'L', 'O', '!'};
  m.payload_len = 6;
  mgr_->OnPacket(flow_, kToServer, m, frame_, ++now_);
  EXPECT_EQ(flow_.app_proto, static_cast<uint8_t>(AppProto::kHttp));
  ASSERT_EQ(g_log.size(), 1u);
  EXPECT_EQ(g_log[0], "to_server:HELLO!");
  mgr_->OnFlowEnd(flow_, ++now_);
}

TEST(EventRingTest, WrapsWithPaddingAndRefusesWhenFull) {
  EventRing ring(4096);
  std::vector<uint8_t> rec(700);
  int pushed = 0;
  while (ring.Push(2, rec)) ++pushed;
  EXPECT_EQ(pushed, 5);  // 5 x 712 bytes fit in 4096
  uint32_t kind;
  std::span<const uint8_t> p;
  for (int round = 0; round < 20; ++round) {
    ASSERT_TRUE(ring.Peek(&kind, &p));
    EXPECT_EQ(kind, 2u);
    EXPECT_EQ(p.size(), 700u);
    ring.Pop();
    rec[0] = static_cast<uint8_t>(round);
    ASSERT_TRUE(ring.Push(2, rec)) << round;
  }
  int drained = 0;
  while (ring.Peek(&kind, &p)) {
    ring.Pop();
    ++drained;
  }
  EXPECT_EQ(drained, 5);
  EXPECT_FALSE(ring.Push(2, std::vector<uint8_t>(2000)));  // over a quarter of the ring
}

}  // namespace
}  // namespace vigil::dp
