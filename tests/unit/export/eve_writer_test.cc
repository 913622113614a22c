#include "dataplane/export/eve_writer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string>

namespace vigil::dp {
namespace {

FlowRecord V4Record() {
  FlowRecord r;
  std::memset(&r, 0, sizeof(r));
  const uint8_t src[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 168, 10, 31};
  const uint8_t dst[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 168, 10, 30};
  std::memcpy(r.src_addr, src, 16);
  std::memcpy(r.dst_addr, dst, 16);
  r.ip_version = 4;
  r.src_port = 49266;
  r.dst_port = 445;
  r.proto = 6;
  r.state = FlowState::kClosed;
  r.tcp_state = TcpState::kClosed;
  r.reason = FlowEndReason::kTimeout;
  r.tcp_flags_ts = kTcpSyn | kTcpAck | kTcpFin;
  r.tcp_flags_tc = kTcpSyn | kTcpAck | kTcpRst;
  r.flow_id = 1099511627777ull;
  r.start_ns = 1508525002992213000ull;  // 2017-10-20T18:43:22.992213Z
  r.end_ns = 1508525005005389000ull;
  r.pkts_toserver = 11;
  r.pkts_toclient = 9;
  r.bytes_toserver = 1749;
  r.bytes_toclient = 1523;
  return r;
}

TEST(EveWriterTest, TimeFormatIsSuricatas) {
  EXPECT_EQ(FormatEveTime(1508525002992213000ull), "2017-10-20T18:43:22.992213+0000");
  EXPECT_EQ(FormatEveTime(0), "1970-01-01T00:00:00.000000+0000");
  EXPECT_EQ(FormatEveTime(999), "1970-01-01T00:00:00.000000+0000");  // below a microsecond
}

TEST(EveWriterTest, AddressesKeepTheirFamily) {
  const uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1};
  EXPECT_EQ(FormatAddr(mapped, 4), "10.0.0.1");
  // The same bytes on an IPv6 flow are an IPv4-mapped IPv6 address, printed as such.
  EXPECT_EQ(FormatAddr(mapped, 6), "::ffff:10.0.0.1");
  uint8_t v6[16] = {0xfd, 0x77};
  v6[15] = 2;
  EXPECT_EQ(FormatAddr(v6, 6), "fd77::2");
}

TEST(EveWriterTest, FlowEventHasSuricataFieldsInOrder) {
  std::string out;
  AppendFlowEve(V4Record(), "sensor-1", &out);
  EXPECT_EQ(out,
            "{\"timestamp\":\"2017-10-20T18:43:25.005389+0000\",\"flow_id\":1099511627777,"
            "\"event_type\":\"flow\",\"host\":\"sensor-1\",\"src_ip\":\"192.168.10.31\","
            "\"src_port\":49266,\"dest_ip\":\"192.168.10.30\",\"dest_port\":445,\"proto\":"
            "\"TCP\",\"flow\":{\"pkts_toserver\":11,\"pkts_toclient\":9,\"bytes_toserver\":1749,"
            "\"bytes_toclient\":1523,\"start\":\"2017-10-20T18:43:22.992213+0000\",\"end\":"
            "\"2017-10-20T18:43:25.005389+0000\",\"age\":2,\"state\":\"closed\",\"reason\":"
            "\"timeout\",\"alerted\":false},\"tcp\":{\"tcp_flags\":\"17\",\"tcp_flags_ts\":"
            "\"13\",\"tcp_flags_tc\":\"16\",\"fin\":true,\"syn\":true,\"rst\":true,\"ack\":true,"
            "\"state\":\"closed\"},\"message\":\"flow TCP 192.168.10.31:49266 -> "
            "192.168.10.30:445 closed (timeout) 20 pkts 3272 bytes\"}");
}

TEST(EveWriterTest, PortlessProtocolsVlansAndEscaping) {
  FlowRecord r = V4Record();
  r.proto = 47;  // GRE: no ports, no tcp object
  r.vlan_count = 2;
  r.vlan[0] = 100;
  r.vlan[1] = 200;
  std::string out;
  AppendFlowEve(r, "a\"b\\c\n", &out);
  EXPECT_NE(out.find("\"host\":\"a\\\"b\\\\c\\u000a\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"proto\":\"GRE\""), std::string::npos);
  EXPECT_NE(out.find("\"vlan\":[100,200]"), std::string::npos);
  EXPECT_EQ(out.find("src_port"), std::string::npos);
  EXPECT_EQ(out.find("\"tcp\":"), std::string::npos);
  r.proto = 200;  // unnamed: the number
  out.clear();
  AppendFlowEve(r, "h", &out);
  EXPECT_NE(out.find("\"proto\":\"200\""), std::string::npos);
}

TEST(EveWriterTest, WritesOneLinePerRecordAndReportsOpenErrors) {
  const std::string path = "/tmp/vigil-eve-test-" + std::to_string(getpid()) + "/eve.json";
  EveWriter w;
  ASSERT_EQ(w.Open(path, "h"), "");
  w.Write(V4Record());
  w.Write(V4Record());
  w.Close();
  EXPECT_EQ(w.records(), 2u);
  std::ifstream in(path);
  int lines = 0;
  for (std::string l; std::getline(in, l);) {
    ++lines;
    EXPECT_EQ(l.front(), '{');
    EXPECT_EQ(l.back(), '}');
  }
  EXPECT_EQ(lines, 2);
  std::remove(path.c_str());
  std::remove(path.substr(0, path.rfind('/')).c_str());
  EveWriter bad;
  const std::string err = bad.Open("/proc/vigil-no-such-dir/eve.json", "h");
  EXPECT_NE(err.find("outputs.eve.path: cannot open"), std::string::npos) << err;
}

}  // namespace
}  // namespace vigil::dp
