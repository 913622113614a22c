// The dataplane's use of the signature engine (detect/inspector.h): a payload rule alerts once
// per matching packet with its sid, alerts are EVE `alert` events oriented as the packet
// travels, flowbits carry across the packets of one flow but not across flows or a reused entry,
// and a rule for another port does not fire.
#include "dataplane/detect/inspector.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "dataplane/export/eve_writer.h"
#include "dataplane/export/event_record.h"
#include "dataplane/proto/event.h"
#include "rules/lang/loader.h"

namespace vigil::dp {
namespace {

constexpr uint8_t kSyn = 0x02, kAck = 0x10, kPsh = 0x08;

struct NullSink : FlowEndSink {
  void OnFlowEnd(const Flow&, FlowEndReason) noexcept override {}
};

void SetV4(uint8_t* out, uint32_t host_order) {
  std::memset(out, 0, 16);
  out[10] = out[11] = 0xff;
  out[12] = static_cast<uint8_t>(host_order >> 24);
  out[13] = static_cast<uint8_t>(host_order >> 16);
  out[14] = static_cast<uint8_t>(host_order >> 8);
  out[15] = static_cast<uint8_t>(host_order);
}

constexpr char kRules[] =
    "alert tcp any any -> any 9999 (msg:\"to 9999\"; flow:to_server,established; "
    "content:\"VIGILTEST\"; flowbits:set,seen; classtype:trojan-activity; sid:1001; rev:3;)\n"
    "alert tcp any 9999 -> any any (msg:\"reply after\"; flow:to_client; content:\"REPLY\"; "
    "flowbits:isset,seen; sid:1002; rev:1;)\n"
    "alert tcp any any -> any 7777 (msg:\"other port\"; content:\"VIGILTEST\"; sid:1003;)\n"
    "alert udp any any -> any any (msg:\"udp only\"; content:\"VIGILTEST\"; sid:1004;)\n";

class InspectorTest : public ::testing::Test {
 protected:
  InspectorTest() : ring_(1 << 20) {
    rules::LoadResult loaded;
    rules::LoadRulesText(kRules, "t.rules", rules::DefaultVars(), nullptr, &loaded);
    EXPECT_TRUE(loaded.rejections.empty());
    std::string err;
    auto det = rules::Detector::Build(std::move(loaded.rules), &err);
    EXPECT_NE(det, nullptr) << err;
    auto scratch = det->NewScratch(&err);
    EXPECT_NE(scratch, nullptr) << err;
    FlowConfig fc;
    fc.capacity = 64;
    flows_ = std::make_unique<FlowTable>(fc, 1, 0);
    inspector_ =
        std::make_unique<Inspector>(std::move(det), std::move(scratch), fc.capacity, 0, &ring_);
  }

  // One packet from client (10.0.0.1:cport) to server (10.0.0.2:sport) or back; returns the
  // number of alerts. Runs the flow table first, as the worker does.
  size_t Packet(uint16_t cport, uint16_t sport, bool to_server, uint8_t flags,
                const std::string& payload, uint32_t seq = 0) {
    PacketMeta m;
    std::memset(&m, 0, sizeof m);
    SetV4(to_server ? m.src_addr : m.dst_addr, 0x0a000001);
    SetV4(to_server ? m.dst_addr : m.src_addr, 0x0a000002);
    m.src_port = to_server ? cport : sport;
    m.dst_port = to_server ? sport : cport;
    m.ip_version = 4;
    m.ip_proto = 6;
    m.tcp_flags = flags;
    m.tcp_seq = seq;
    frame_.assign(54, 0);
    frame_.insert(frame_.end(), payload.begin(), payload.end());
    m.payload_offset = 54;
    m.payload_len = static_cast<uint16_t>(payload.size());
    now_ += 1000;
    const FlowLookup fl = flows_->Process(m, static_cast<uint32_t>(frame_.size()), now_, sink_);
    EXPECT_NE(fl.flow, nullptr);
    last_index_ = flows_->IndexOf(*fl.flow);
    if (fl.created) inspector_->ResetFlow(last_index_);
    return inspector_->OnPacket(*fl.flow, last_index_, fl.dir, m, frame_, now_);
  }

  void Handshake(uint16_t cport, uint16_t sport) {
    Packet(cport, sport, true, kSyn, "");
    Packet(cport, sport, false, kSyn | kAck, "");
    Packet(cport, sport, true, kAck, "");
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

  EventRing ring_;
  std::unique_ptr<FlowTable> flows_;
  std::unique_ptr<Inspector> inspector_;
  NullSink sink_;
  std::vector<uint8_t> frame_;
  uint32_t last_index_ = 0;
  uint64_t now_ = 1'700'000'000'000'000'000ULL;
};

bool Has(const std::string& line, const std::string& part) {
  return line.find(part) != std::string::npos;
}

TEST_F(InspectorTest, PayloadRuleAlertsOncePerMatchingPacket) {
  Handshake(40000, 9999);
  EXPECT_EQ(Packet(40000, 9999, true, kPsh | kAck, "xx VIGILTEST yy"), 1u);
  EXPECT_EQ(Packet(40000, 9999, true, kPsh | kAck, "nothing here"), 0u);
  EXPECT_EQ(Packet(40000, 9999, true, kPsh | kAck, "VIGILTEST VIGILTEST"), 1u);
  const auto events = Events();
  ASSERT_EQ(events.size(), 2u);
  for (const std::string& e : events) {
    EXPECT_TRUE(Has(e, "\"event_type\":\"alert\"")) << e;
    EXPECT_TRUE(Has(e, "\"src_ip\":\"10.0.0.1\",\"src_port\":40000")) << e;
    EXPECT_TRUE(Has(e, "\"dest_ip\":\"10.0.0.2\",\"dest_port\":9999")) << e;
    EXPECT_TRUE(Has(e,
                    "\"alert\":{\"action\":\"allowed\",\"gid\":1,\"signature_id\":1001,"
                    "\"rev\":3,\"signature\":\"to 9999\",\"category\":\"\",\"severity\":3}"))
        << e;
    EXPECT_TRUE(Has(e, "\"message\":\"ALERT [1:1001:3] to 9999 (trojan-activity)\"")) << e;
  }
  EXPECT_EQ(inspector_->counters().alerts, 2u);
  EXPECT_EQ(inspector_->counters().inspected, 3u);  // packets without payload are not inspected
  EXPECT_EQ(inspector_->counters().alerts_lost, 0u);
}

TEST_F(InspectorTest, HandshakeDataIsNotEstablishedAndOtherPortsAndProtocolsDoNotFire) {
  // A payload on the SYN: flow:established does not hold yet.
  EXPECT_EQ(Packet(40001, 9999, true, kSyn, "VIGILTEST"), 0u);
  // Port 7777: only the rule for 7777 fires (not the 9999 one, nor the UDP one).
  Handshake(40002, 7777);
  EXPECT_EQ(Packet(40002, 7777, true, kPsh | kAck, "VIGILTEST"), 1u);
  const auto events = Events();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(Has(events[0], "\"signature_id\":1003")) << events[0];
}

TEST_F(InspectorTest, FlowbitsCarryWithinAFlowButNotAcrossFlows) {
  Handshake(40000, 9999);
  Handshake(40001, 9999);
  // Flow B's server reply before anything set the bit on flow B: nothing.
  EXPECT_EQ(Packet(40001, 9999, false, kPsh | kAck, "REPLY"), 0u);
  // Flow A sets the bit; its reply alerts, oriented server → client.
  EXPECT_EQ(Packet(40000, 9999, true, kPsh | kAck, "VIGILTEST"), 1u);
  EXPECT_EQ(Packet(40000, 9999, false, kPsh | kAck, "REPLY"), 1u);
  const uint32_t flow_a = last_index_;
  // Flow A's bit is not flow B's.
  EXPECT_EQ(Packet(40001, 9999, false, kPsh | kAck, "REPLY"), 0u);
  const auto events = Events();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_TRUE(Has(events[1], "\"signature_id\":1002")) << events[1];
  EXPECT_TRUE(Has(events[1], "\"src_ip\":\"10.0.0.2\",\"src_port\":9999")) << events[1];
  EXPECT_TRUE(Has(events[1], "\"dest_ip\":\"10.0.0.1\",\"dest_port\":40000")) << events[1];
  EXPECT_TRUE(Has(events[1], "\"direction\":\"to_client\"")) << events[1];
  // A reused entry starts with no bits.
  inspector_->ResetFlow(flow_a);
  EXPECT_EQ(Packet(40000, 9999, false, kPsh | kAck, "REPLY"), 0u);
}

TEST_F(InspectorTest, UseSwitchesRuleSetsAndDropsTheOldSetsFlowbits) {
  Handshake(40000, 9999);
  EXPECT_EQ(Packet(40000, 9999, true, kPsh | kAck, "VIGILTEST"), 1u);  // sets "seen"
  // The same rules again as a published snapshot (as a configuration push builds it).
  rules::LoadResult loaded;
  rules::LoadRulesText(kRules, "t2.rules", rules::DefaultVars(), nullptr, &loaded);
  std::string err;
  auto det = rules::Detector::Build(std::move(loaded.rules), &err);
  ASSERT_NE(det, nullptr) << err;
  auto snapshot = MakeDetectSnapshot(std::move(det), 1, "v2", true, &err);
  ASSERT_NE(snapshot, nullptr) << err;
  const uint64_t switches = inspector_->switches();
  EXPECT_TRUE(inspector_->Follow(snapshot.get()));
  EXPECT_FALSE(inspector_->Follow(snapshot.get()));  // the one in use: nothing to do
  EXPECT_EQ(inspector_->snapshot(), snapshot.get());
  EXPECT_EQ(inspector_->switches(), switches + 1);
  // Same address, another snapshot (as when a freed one's memory is reused): switched.
  const_cast<DetectSnapshot*>(snapshot.get())->serial += 1000;
  EXPECT_TRUE(inspector_->Follow(snapshot.get()));
  EXPECT_EQ(inspector_->switches(), switches + 2);
  // The bit was set under the previous rule set: the reply does not alert now.
  EXPECT_EQ(Packet(40000, 9999, false, kPsh | kAck, "REPLY"), 0u);
  // Under the new set the flow sets it again and the reply alerts.
  EXPECT_EQ(Packet(40000, 9999, true, kPsh | kAck, "VIGILTEST"), 1u);
  EXPECT_EQ(Packet(40000, 9999, false, kPsh | kAck, "REPLY"), 1u);
  // No rule set: nothing is inspected.
  const uint64_t inspected = inspector_->counters().inspected;
  inspector_->Use(nullptr);
  EXPECT_FALSE(inspector_->active());
  EXPECT_EQ(Packet(40000, 9999, true, kPsh | kAck, "VIGILTEST"), 0u);
  EXPECT_EQ(inspector_->counters().inspected, inspected);
  // A snapshot without a scratch for this worker is not used.
  auto other = MakeDetectSnapshot(snapshot->detector, 0, "v3", true, &err);
  ASSERT_NE(other, nullptr);
  inspector_->Use(other.get());
  EXPECT_FALSE(inspector_->active());
}

// Inline actions: a drop rule's verdict drops the packet (the worker then drops the flow), a
// reject rule's asks for the reset, alerts say "blocked"; with inline actions off (IDS), the
// same rules only alert, "allowed".
TEST_F(InspectorTest, DropAndRejectRulesGiveVerdictsUnlessInlineActionsAreOff) {
  constexpr char kActions[] =
      "drop tcp any any -> any 9999 (msg:\"drop it\"; content:\"BAD\"; sid:2001;)\n"
      "reject tcp any any -> any 9999 (msg:\"reject it\"; content:\"WORSE\"; sid:2002;)\n"
      "alert tcp any any -> any 9999 (msg:\"note it\"; content:\"BAD\"; sid:2003;)\n";
  for (const bool inline_actions : {true, false}) {
    rules::LoadResult loaded;
    rules::LoadRulesText(kActions, "a.rules", rules::DefaultVars(), nullptr, &loaded);
    ASSERT_TRUE(loaded.rejections.empty());
    std::string err;
    auto det = rules::Detector::Build(std::move(loaded.rules), &err);
    ASSERT_NE(det, nullptr) << err;
    auto snapshot = MakeDetectSnapshot(std::move(det), 1, "", inline_actions, &err);
    ASSERT_NE(snapshot, nullptr) << err;
    inspector_->Use(snapshot.get());
    Handshake(41000, 9999);
    EXPECT_EQ(Packet(41000, 9999, true, kPsh | kAck, "fine"), 0u);
    EXPECT_EQ(inspector_->verdict(), RuleVerdict::kPass);
    EXPECT_EQ(Packet(41000, 9999, true, kPsh | kAck, "BAD"), 2u);
    EXPECT_EQ(inspector_->verdict(), inline_actions ? RuleVerdict::kDrop : RuleVerdict::kPass);
    EXPECT_EQ(Packet(41000, 9999, true, kPsh | kAck, "BAD WORSE"), 3u);
    EXPECT_EQ(inspector_->verdict(), inline_actions ? RuleVerdict::kReject : RuleVerdict::kPass);
    const auto events = Events();
    ASSERT_EQ(events.size(), 5u);
    const std::string acted = inline_actions ? "\"action\":\"blocked\"" : "\"action\":\"allowed\"";
    for (const std::string& e : events) {
      const bool is_alert_rule = Has(e, "\"signature_id\":2003");
      EXPECT_TRUE(Has(e, is_alert_rule ? "\"action\":\"allowed\"" : acted)) << e;
    }
    EXPECT_EQ(inspector_->counters().drops, inline_actions ? 2u : 0u);
    EXPECT_EQ(inspector_->counters().rejects, inline_actions ? 1u : 0u);
    inspector_->Use(nullptr);
    inspector_ = std::make_unique<Inspector>(64, 0, &ring_);  // fresh counters for the next pass
  }
}

TEST_F(InspectorTest, AlertsThatDoNotFitTheRingAreCountedLost) {
  EventRing small(4096);
  rules::LoadResult loaded;
  rules::LoadRulesText(kRules, "t.rules", rules::DefaultVars(), nullptr, &loaded);
  std::string err;
  auto det = rules::Detector::Build(std::move(loaded.rules), &err);
  ASSERT_NE(det, nullptr) << err;
  auto scratch = det->NewScratch(&err);
  inspector_ = std::make_unique<Inspector>(std::move(det), std::move(scratch), 64, 0, &small);
  Handshake(40000, 7777);
  for (int i = 0; i < 40; ++i) Packet(40000, 7777, true, kPsh | kAck, "VIGILTEST");
  const InspectorCounters& c = inspector_->counters();
  EXPECT_EQ(c.alerts, 40u);
  EXPECT_GT(c.alerts_lost, 0u);
  EXPECT_LT(c.alerts_lost, 40u);
}

// A pattern split across two TCP segments alerts on the second when it continues the stream in
// order (its sequence number is where the first ended), as one alert of the rule; not on a
// retransmission of the second, nor after a gap, nor across the two directions.
TEST_F(InspectorTest, PatternSplitAcrossInOrderSegments) {
  Handshake(40010, 9999);
  EXPECT_EQ(Packet(40010, 9999, true, kPsh | kAck, "aaaa VIGI", 1001), 0u);
  EXPECT_EQ(Packet(40010, 9999, true, kPsh | kAck, "LTEST bb", 1010), 1u);
  EXPECT_EQ(Packet(40010, 9999, true, kPsh | kAck, "LTEST bb", 1010), 0u);  // retransmitted
  EXPECT_EQ(Packet(40010, 9999, true, kPsh | kAck, "VIG", 1018), 0u);
  EXPECT_EQ(Packet(40010, 9999, true, kPsh | kAck, "IL", 1021), 0u);
  EXPECT_EQ(Packet(40010, 9999, true, kPsh | kAck, "TEST", 1023), 1u);  // over three segments
  std::vector<std::string> events = Events();
  ASSERT_EQ(events.size(), 2u);
  for (const std::string& e : events) EXPECT_TRUE(Has(e, "\"signature_id\":1001")) << e;
  EXPECT_EQ(inspector_->counters().stream_continued, 4u);  // all but the first and the resend
  // A gap (1100 is not where the stream was) gives no prefix; the stream goes on from there.
  EXPECT_EQ(Packet(40010, 9999, true, kPsh | kAck, "VIGIL", 1100), 0u);
  EXPECT_EQ(Packet(40010, 9999, true, kPsh | kAck, "TEST", 1200), 0u);
  EXPECT_EQ(Packet(40010, 9999, true, kPsh | kAck, "VIGIL", 1204), 0u);
  // The other direction has a stream of its own: the reply's bytes do not continue this one.
  EXPECT_EQ(Packet(40010, 9999, false, kPsh | kAck, "xxTEST", 5000), 0u);
  EXPECT_EQ(Packet(40010, 9999, true, kPsh | kAck, "TEST", 1209), 1u);
  EXPECT_EQ(Events().size(), 1u);
}

TEST(DetectLoadTest, ReportsSummaryAndUnreadableFiles) {
  DetectConfig dc;
  dc.enabled = true;
  dc.rules = {"/nonexistent/vigil.rules"};
  const DetectLoad bad = LoadDetector(dc);
  EXPECT_EQ(bad.detector, nullptr);
  EXPECT_NE(bad.error.find("detect.rules"), std::string::npos) << bad.error;
  dc.rules = {};
  dc.vars = "/nonexistent/vars.yaml";
  EXPECT_NE(LoadDetector(dc).error.find("detect.vars"), std::string::npos);
}

TEST(RuleProtocolTest, MapsTheSessionLayersProtocols) {
  EXPECT_EQ(RuleProtocol(static_cast<uint8_t>(proto::AppProto::kSmb)), rules::Protocol::kSmb);
  EXPECT_EQ(RuleProtocol(static_cast<uint8_t>(proto::AppProto::kDcerpc)), rules::Protocol::kDcerpc);
  EXPECT_EQ(RuleProtocol(static_cast<uint8_t>(proto::AppProto::kKrb5)), rules::Protocol::kKrb5);
  EXPECT_EQ(RuleProtocol(static_cast<uint8_t>(proto::AppProto::kDns)), rules::Protocol::kDns);
  EXPECT_EQ(RuleProtocol(static_cast<uint8_t>(proto::AppProto::kHttp)), rules::Protocol::kHttp);
  EXPECT_EQ(RuleProtocol(static_cast<uint8_t>(proto::AppProto::kTls)), rules::Protocol::kTls);
  EXPECT_EQ(RuleProtocol(static_cast<uint8_t>(proto::AppProto::kFailed)), rules::Protocol::kIp);
  EXPECT_EQ(RuleProtocol(0), rules::Protocol::kIp);
}

}  // namespace
}  // namespace vigil::dp
