// Unit tests for the DNS parser on crafted messages (UDP datagrams and TCP streams).
#include "dataplane/proto/dns.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tests/unit/proto/collect_sink.h"

namespace vigil::proto {
namespace {

using testing::CollectSink;
using Bytes = std::vector<uint8_t>;

constexpr Direction kToServer = Direction::kToServer;
constexpr Direction kToClient = Direction::kToClient;

// Wire encoding of a dotted name ("" is the root).
Bytes Name(const std::string& dotted) {
  Bytes out;
  size_t start = 0;
  while (start < dotted.size()) {
    size_t dot = dotted.find('.', start);
    if (dot == std::string::npos) dot = dotted.size();
    out.push_back(static_cast<uint8_t>(dot - start));
    out.insert(out.end(), dotted.begin() + start, dotted.begin() + dot);
    start = dot + 1;
  }
  out.push_back(0);
  return out;
}

// Labels followed by a compression pointer.
Bytes NamePtr(const std::string& dotted_prefix, uint16_t offset) {
  Bytes out = dotted_prefix.empty() ? Bytes{} : Name(dotted_prefix);
  if (!out.empty()) out.pop_back();
  out.push_back(static_cast<uint8_t>(0xC0 | (offset >> 8)));
  out.push_back(static_cast<uint8_t>(offset & 0xFF));
  return out;
}

Bytes Ptr(uint16_t offset) { return NamePtr("", offset); }

Bytes Cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

Bytes U16(uint16_t v) { return {static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)}; }
Bytes U32(uint32_t v) {
  return {static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16),
          static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
}
Bytes Str(const std::string& s) { return Bytes(s.begin(), s.end()); }

// A message under construction; offsets of what was added are known to the test writer.
struct Msg {
  Bytes b;
  Msg(uint16_t id, uint16_t flags, uint16_t qd, uint16_t an, uint16_t ns, uint16_t ar) {
    b = Cat({U16(id), U16(flags), U16(qd), U16(an), U16(ns), U16(ar)});
  }
  Msg& Raw(const Bytes& x) {
    b.insert(b.end(), x.begin(), x.end());
    return *this;
  }
  Msg& Question(const Bytes& name, uint16_t type) { return Raw(Cat({name, U16(type), U16(1)})); }
  Msg& Rr(const Bytes& name, uint16_t type, uint32_t ttl, const Bytes& rdata) {
    return Raw(
        Cat({name, U16(type), U16(1), U32(ttl), U16(static_cast<uint16_t>(rdata.size())), rdata}));
  }
};

Bytes Tcp(const Bytes& msg) { return Cat({U16(static_cast<uint16_t>(msg.size())), msg}); }

constexpr uint16_t kQuery = 0x0100;     // RD
constexpr uint16_t kResponse = 0x8180;  // QR RD RA

Bytes ExampleQuery(uint16_t id = 0x1234) {
  return Msg(id, kQuery, 1, 0, 0, 0).Question(Name("example.com"), 1).b;
}

Bytes ExampleResponse(uint16_t id = 0x1234) {
  return Msg(id, kResponse, 1, 1, 0, 0)
      .Question(Name("example.com"), 1)
      .Rr(Ptr(12), 1, 300, {93, 184, 216, 34})
      .b;
}

struct Harness {
  std::unique_ptr<DnsParser> parser = std::make_unique<DnsParser>();
  CollectSink sink;
  void Udp(Direction d, const Bytes& b) { parser->OnDatagram(d, b, sink); }
  void Stream(Direction d, const Bytes& b) { parser->OnData(d, b, sink); }
  size_t Count(const std::string& needle) const { return sink.CountContaining(needle); }
  size_t Anomalies(const std::string& name) const {
    return sink.CountContaining("\"event\":\"" + name + "\"");
  }
  size_t DnsEvents() const {
    size_t n = 0;
    for (const auto& t : sink.types) n += t == "dns";
    return n;
  }
};

// ---- Queries and responses ----

TEST(DnsTest, QueryEventShape) {
  Harness r;
  r.Udp(kToServer, ExampleQuery());
  ASSERT_EQ(r.sink.events.size(), 1u);
  EXPECT_EQ(r.sink.events[0],
            "{\"event_type\":\"dns\",\"direction\":\"to_server\",\"dns\":{\"version\":3,"
            "\"type\":\"request\",\"tx_id\":0,\"id\":4660,\"flags\":\"100\",\"rd\":true,"
            "\"opcode\":0,\"rcode\":\"NOERROR\",\"queries\":[{\"rrname\":\"example.com\","
            "\"rrtype\":\"A\"}]},\"message\":\"DNS QUERY A example.com\"}");
}

TEST(DnsTest, ResponseEventShape) {
  Harness r;
  r.Udp(kToServer, ExampleQuery());
  r.Udp(kToClient, ExampleResponse());
  ASSERT_EQ(r.sink.events.size(), 2u);
  EXPECT_EQ(r.sink.events[1],
            "{\"event_type\":\"dns\",\"direction\":\"to_client\",\"dns\":{\"version\":3,"
            "\"type\":\"response\",\"tx_id\":1,\"id\":4660,\"flags\":\"8180\",\"qr\":true,"
            "\"rd\":true,\"ra\":true,\"opcode\":0,\"rcode\":\"NOERROR\",\"queries\":[{"
            "\"rrname\":\"example.com\",\"rrtype\":\"A\"}],\"answers\":[{\"rrname\":"
            "\"example.com\",\"rrtype\":\"A\",\"ttl\":300,\"rdata\":\"93.184.216.34\"}],"
            "\"grouped\":{\"A\":[\"93.184.216.34\"]}},\"message\":"
            "\"DNS RESPONSE NOERROR A example.com 93.184.216.34\"}");
}

// The dig exchange of suricata-verify dns-udp-eve-dig (bytes as in its capture).
TEST(DnsTest, SuricataVerifyDigExchange) {
  const Bytes query = {
      0x8d, 0x32, 0x01, 0x20, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03,
      0x77, 0x77, 0x77, 0x0c, 0x73, 0x75, 0x72, 0x69, 0x63, 0x61, 0x74, 0x61, 0x2d,
      0x69, 0x64, 0x73, 0x03, 0x6f, 0x72, 0x67, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00,
      0x00, 0x29, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
  };
  const Bytes response = {
      0x8d, 0x32, 0x81, 0xa0, 0x00, 0x01, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x03, 0x77, 0x77,
      0x77, 0x0c, 0x73, 0x75, 0x72, 0x69, 0x63, 0x61, 0x74, 0x61, 0x2d, 0x69, 0x64, 0x73, 0x03,
      0x6f, 0x72, 0x67, 0x00, 0x00, 0x01, 0x00, 0x01, 0xc0, 0x0c, 0x00, 0x05, 0x00, 0x01, 0x00,
      0x00, 0x0d, 0xd8, 0x00, 0x12, 0x0c, 0x73, 0x75, 0x72, 0x69, 0x63, 0x61, 0x74, 0x61, 0x2d,
      0x69, 0x64, 0x73, 0x03, 0x6f, 0x72, 0x67, 0x00, 0xc0, 0x32, 0x00, 0x01, 0x00, 0x01, 0x00,
      0x00, 0x00, 0xf4, 0x00, 0x04, 0xc0, 0x00, 0x4e, 0x18, 0xc0, 0x32, 0x00, 0x01, 0x00, 0x01,
      0x00, 0x00, 0x00, 0xf4, 0x00, 0x04, 0xc0, 0x00, 0x4e, 0x19,
  };
  Harness r;
  r.Udp(kToServer, query);
  r.Udp(kToClient, response);
  ASSERT_EQ(r.sink.events.size(), 2u) << r.sink.events.back();
  const std::string& req = r.sink.events[0];
  EXPECT_NE(req.find("\"type\":\"request\",\"tx_id\":0,\"id\":36146,\"flags\":\"120\""),
            std::string::npos)
      << req;
  EXPECT_NE(req.find("\"queries\":[{\"rrname\":\"www.suricata-ids.org\",\"rrtype\":\"A\"}]"),
            std::string::npos);
  EXPECT_EQ(req.find("additionals"), std::string::npos);  // an OPT without options is left out
  const std::string& resp = r.sink.events[1];
  EXPECT_NE(resp.find("\"version\":3,\"type\":\"response\",\"tx_id\":1,\"id\":36146,"
                      "\"flags\":\"81a0\",\"qr\":true,\"rd\":true,\"ra\":true,\"opcode\":0,"
                      "\"rcode\":\"NOERROR\""),
            std::string::npos)
      << resp;
  EXPECT_NE(resp.find("\"answers\":[{\"rrname\":\"www.suricata-ids.org\",\"rrtype\":\"CNAME\","
                      "\"ttl\":3544,\"rdata\":\"suricata-ids.org\"},{\"rrname\":"
                      "\"suricata-ids.org\",\"rrtype\":\"A\",\"ttl\":244,\"rdata\":"
                      "\"192.0.78.24\"},{\"rrname\":\"suricata-ids.org\",\"rrtype\":\"A\","
                      "\"ttl\":244,\"rdata\":\"192.0.78.25\"}]"),
            std::string::npos);
  EXPECT_NE(resp.find("\"grouped\":{\"CNAME\":[\"suricata-ids.org\"],\"A\":[\"192.0.78.24\","
                      "\"192.0.78.25\"]}"),
            std::string::npos);
  EXPECT_EQ(r.sink.messages[1],
            "DNS RESPONSE NOERROR A www.suricata-ids.org CNAME suricata-ids.org 192.0.78.24 "
            "192.0.78.25");
}

TEST(DnsTest, AaaaCnamePtrNsMx) {
  Bytes v6 = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  const Bytes msg = Msg(7, kResponse, 1, 5, 0, 0)
                        .Question(Name("example.com"), 28)
                        .Rr(Ptr(12), 28, 60, v6)
                        .Rr(Ptr(12), 5, 60, NamePtr("alias", 12))
                        .Rr(Name("1.0.0.127.in-addr.arpa"), 12, 60, Name("localhost"))
                        .Rr(Ptr(12), 2, 60, NamePtr("ns1", 12))
                        .Rr(Ptr(12), 15, 60, Cat({U16(10), NamePtr("mail", 12)}))
                        .b;
  Harness r;
  r.Udp(kToClient, msg);
  ASSERT_EQ(r.sink.events.size(), 1u);
  const std::string& e = r.sink.events[0];
  EXPECT_NE(e.find("\"rrtype\":\"AAAA\",\"ttl\":60,\"rdata\":"
                   "\"2001:0db8:0000:0000:0000:0000:0000:0001\""),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("\"rrtype\":\"CNAME\",\"ttl\":60,\"rdata\":\"alias.example.com\""),
            std::string::npos);
  EXPECT_NE(e.find("{\"rrname\":\"1.0.0.127.in-addr.arpa\",\"rrtype\":\"PTR\",\"ttl\":60,"
                   "\"rdata\":\"localhost\"}"),
            std::string::npos);
  EXPECT_NE(e.find("\"rrtype\":\"NS\",\"ttl\":60,\"rdata\":\"ns1.example.com\""),
            std::string::npos);
  // Suricata logs the exchange only (no preference).
  EXPECT_NE(e.find("\"rrtype\":\"MX\",\"ttl\":60,\"rdata\":\"mail.example.com\""),
            std::string::npos);
  EXPECT_NE(e.find("\"grouped\":{\"AAAA\":[\"2001:0db8:0000:0000:0000:0000:0000:0001\"],"
                   "\"CNAME\":[\"alias.example.com\"],\"PTR\":[\"localhost\"],\"NS\":["
                   "\"ns1.example.com\"],\"MX\":[\"mail.example.com\"]}"),
            std::string::npos);
  EXPECT_EQ(r.sink.messages[0],
            "DNS RESPONSE NOERROR AAAA example.com 2001:0db8:0000:0000:0000:0000:0000:0001 CNAME "
            "alias.example.com PTR localhost NS ns1.example.com (+1 answers)");
}

TEST(DnsTest, TxtOneEntryPerString) {
  const Bytes msg = Msg(7, kResponse, 1, 1, 0, 0)
                        .Question(Name("example.com"), 16)
                        .Rr(Ptr(12), 16, 30, Cat({{5}, Str("v=spf"), {3}, Str("abc")}))
                        .b;
  Harness r;
  r.Udp(kToClient, msg);
  ASSERT_EQ(r.sink.events.size(), 1u);
  const std::string& e = r.sink.events[0];
  EXPECT_NE(e.find("\"answers\":[{\"rrname\":\"example.com\",\"rrtype\":\"TXT\",\"ttl\":30,"
                   "\"rdata\":\"v=spf\"},{\"rrname\":\"example.com\",\"rrtype\":\"TXT\","
                   "\"ttl\":30,\"rdata\":\"abc\"}]"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("\"grouped\":{\"TXT\":[\"v=spf\",\"abc\"]}"), std::string::npos);
  EXPECT_EQ(r.sink.messages[0], "DNS RESPONSE NOERROR TXT example.com \"v=spf\"");
}

TEST(DnsTest, SoaInAuthoritiesNxdomain) {
  const Bytes soa = Cat({NamePtr("ns", 17), NamePtr("hostmaster", 17), U32(2024010101), U32(7200),
                         U32(3600), U32(1209600), U32(300)});
  const Bytes msg =
      Msg(9, 0x8183, 1, 0, 1, 0).Question(Name("nope.example.com"), 1).Rr(Ptr(17), 6, 900, soa).b;
  Harness r;
  r.Udp(kToClient, msg);
  ASSERT_EQ(r.sink.events.size(), 1u);
  const std::string& e = r.sink.events[0];
  EXPECT_NE(e.find("\"rcode\":\"NXDOMAIN\""), std::string::npos) << e;
  EXPECT_EQ(e.find("\"answers\""), std::string::npos);
  EXPECT_NE(e.find("\"authorities\":[{\"rrname\":\"example.com\",\"rrtype\":\"SOA\",\"ttl\":900,"
                   "\"soa\":{\"mname\":\"ns.example.com\",\"rname\":"
                   "\"hostmaster.example.com\",\"serial\":2024010101,\"refresh\":7200,"
                   "\"retry\":3600,\"expire\":1209600,\"minimum\":300}}]"),
            std::string::npos);
  EXPECT_EQ(r.sink.messages[0], "DNS RESPONSE NXDOMAIN A nope.example.com");
}

TEST(DnsTest, SrvSshfpNullUnknownAndOpt) {
  const Bytes msg =
      Msg(9, kResponse, 1, 4, 0, 1)
          .Question(Name("_ldap._tcp.corp.local"), 33)
          .Rr(Ptr(12), 33, 600, Cat({U16(0), U16(100), U16(389), Name("dc1.corp.local")}))
          .Rr(Ptr(12), 44, 600, {1, 2, 0xab, 0xcd, 0xef})
          .Rr(Ptr(12), 10, 600, Str("raw"))
          .Rr(Ptr(12), 64, 600, {1, 2, 3})
          .Rr(Name(""), 41, 0x8000, Cat({U16(10), U16(2), {0xbe, 0xef}}))
          .b;
  Harness r;
  r.Udp(kToClient, msg);
  ASSERT_EQ(r.sink.events.size(), 1u);
  const std::string& e = r.sink.events[0];
  EXPECT_NE(e.find("\"rrtype\":\"SRV\",\"ttl\":600,\"srv\":{\"priority\":0,\"weight\":100,"
                   "\"port\":389,\"name\":\"dc1.corp.local\"}"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("\"rrtype\":\"SSHFP\",\"ttl\":600,\"sshfp\":{\"fingerprint\":\"ab:cd:ef\","
                   "\"algo\":1,\"type\":2}"),
            std::string::npos);
  EXPECT_NE(e.find("\"rrtype\":\"NULL\",\"ttl\":600,\"rdata\":\"raw\""), std::string::npos);
  EXPECT_NE(e.find("{\"rrname\":\"_ldap._tcp.corp.local\",\"rrtype\":\"64\",\"ttl\":600}"),
            std::string::npos);
  EXPECT_NE(e.find("\"additionals\":[{\"rrname\":\"\",\"rrtype\":\"OPT\",\"ttl\":32768,"
                   "\"opt\":[{\"code\":10,\"data\":\"beef\"}]}]"),
            std::string::npos);
  EXPECT_NE(e.find("\"grouped\":{\"SRV\":[{\"priority\":0,\"weight\":100,\"port\":389,"
                   "\"name\":\"dc1.corp.local\"}],\"SSHFP\":[{\"fingerprint\":\"ab:cd:ef\","
                   "\"algo\":1,\"type\":2}],\"NULL\":[\"raw\"]}"),
            std::string::npos);
  EXPECT_EQ(r.sink.messages[0],
            "DNS RESPONSE NOERROR SRV _ldap._tcp.corp.local dc1.corp.local:389 SSHFP 5 bytes "
            "NULL 3 bytes 64 3 bytes");
}

TEST(DnsTest, QueryTypesByNameOrNumber) {
  Harness r;
  r.Udp(kToServer, Msg(1, 0, 3, 0, 0, 0)
                       .Question(Name("a.example"), 255)
                       .Question(Name(""), 2)
                       .Question(Name("b.example"), 65280)
                       .b);
  ASSERT_EQ(r.sink.events.size(), 1u);
  EXPECT_NE(r.sink.events[0].find("\"flags\":\"0\",\"opcode\":0,\"rcode\":\"NOERROR\","
                                  "\"queries\":[{\"rrname\":\"a.example\",\"rrtype\":\"ANY\"},"
                                  "{\"rrname\":\"\",\"rrtype\":\"NS\"},{\"rrname\":"
                                  "\"b.example\",\"rrtype\":\"65280\"}]"),
            std::string::npos)
      << r.sink.events[0];
  EXPECT_EQ(r.sink.messages[0], "DNS QUERY ANY a.example (+2 queries)");
}

TEST(DnsTest, HeaderFlagsAndRcodeNumbers) {
  // QR AA TC RD RA, opcode 5 (UPDATE), rcode 11 (unassigned: logged as a number).
  Harness r;
  r.Udp(kToClient, Msg(2, 0x8000 | (5 << 11) | 0x0400 | 0x0200 | 0x0100 | 0x0080 | 11, 1, 0, 0, 0)
                       .Question(Name("example.com"), 6)
                       .b);
  ASSERT_EQ(r.sink.events.size(), 1u);
  EXPECT_NE(r.sink.events[0].find("\"flags\":\"af8b\",\"qr\":true,\"aa\":true,\"tc\":true,"
                                  "\"rd\":true,\"ra\":true,\"opcode\":5,\"rcode\":\"11\""),
            std::string::npos)
      << r.sink.events[0];
  EXPECT_EQ(r.sink.messages[0], "DNS UPDATE RESPONSE 11 SOA example.com");
}

TEST(DnsTest, TxIdCountsMessagesOfTheFlow) {
  Harness r;
  for (int i = 0; i < 3; ++i) {
    r.Udp(kToServer, ExampleQuery(static_cast<uint16_t>(i)));
    r.Udp(kToClient, ExampleResponse(static_cast<uint16_t>(i)));
  }
  ASSERT_EQ(r.sink.events.size(), 6u);
  for (int i = 0; i < 6; ++i) {
    EXPECT_NE(r.sink.events[i].find("\"tx_id\":" + std::to_string(i) + ","), std::string::npos);
  }
}

// ---- Names ----

TEST(DnsTest, CompressionChains) {
  // Answer owner: "www" + pointer to a CNAME target that is itself "cdn" + pointer to the
  // question's "example.com".
  Msg m(3, kResponse, 1, 2, 0, 0);
  m.Question(Name("example.com"), 1);  // name at 12
  const uint16_t cname_rr = static_cast<uint16_t>(m.b.size());
  m.Rr(NamePtr("www", 12), 5, 10, NamePtr("cdn", 12));  // rdata name at cname_rr + 6 + 10
  const uint16_t target = static_cast<uint16_t>(cname_rr + 6 + 10);
  m.Rr(Ptr(target), 1, 10, {10, 0, 0, 1});
  Harness r;
  r.Udp(kToClient, m.b);
  ASSERT_EQ(r.sink.events.size(), 1u);
  const std::string& e = r.sink.events[0];
  EXPECT_NE(e.find("{\"rrname\":\"www.example.com\",\"rrtype\":\"CNAME\",\"ttl\":10,\"rdata\":"
                   "\"cdn.example.com\"},{\"rrname\":\"cdn.example.com\",\"rrtype\":\"A\","
                   "\"ttl\":10,\"rdata\":\"10.0.0.1\"}"),
            std::string::npos)
      << e;
  EXPECT_EQ(r.sink.types.size(), 1u);  // no anomaly
}

TEST(DnsTest, CompressionLoopIsAnAnomalyNotAHang) {
  // Answer owner points at offset X; at X a pointer leads back to the owner's pointer.
  Msg m(4, kResponse, 1, 1, 0, 0);
  m.Question(Name("example.com"), 1);  // 12..28
  const uint16_t owner = static_cast<uint16_t>(m.b.size());
  // owner: "a" + pointer to rdata start; rdata: "b" + pointer back to owner.
  const uint16_t rdata = static_cast<uint16_t>(owner + 4 + 10);
  m.Rr(NamePtr("a", rdata), 5, 1, NamePtr("b", owner));
  Harness r;
  r.Udp(kToClient, m.b);
  EXPECT_EQ(r.DnsEvents(), 1u);
  EXPECT_EQ(r.Anomalies("INFINITE_LOOP"), 1u);
  EXPECT_NE(r.sink.events[0].find("\"rrname\":\"a.b.a"), std::string::npos) << r.sink.events[0];
}

TEST(DnsTest, SelfPointerIsMalformed) {
  // The question's name is a pointer to itself: Suricata rejects the message.
  Harness r;
  r.Udp(kToServer, Msg(5, kQuery, 1, 0, 0, 0).Raw(Ptr(12)).Raw(Cat({U16(1), U16(1)})).b);
  EXPECT_EQ(r.DnsEvents(), 0u);
  EXPECT_EQ(r.Anomalies("MALFORMED_DATA"), 1u);
}

TEST(DnsTest, PointerPastTheEndIsMalformed) {
  Harness r;
  r.Udp(kToServer, Msg(5, kQuery, 1, 0, 0, 0).Raw(Ptr(0x3000)).Raw(Cat({U16(1), U16(1)})).b);
  EXPECT_EQ(r.DnsEvents(), 0u);
  EXPECT_EQ(r.Anomalies("MALFORMED_DATA"), 1u);
}

TEST(DnsTest, ReservedLabelTypeIsMalformed) {
  Harness r;
  r.Udp(kToServer, Msg(5, kQuery, 1, 0, 0, 0).Raw({0x41, 'x', 0, 0, 1, 0, 1}).b);
  EXPECT_EQ(r.Anomalies("MALFORMED_DATA"), 1u);
}

TEST(DnsTest, LongNameIsCutAt1025) {
  std::string name;
  for (int i = 0; i < 20; ++i) name += (i ? "." : "") + std::string(63, static_cast<char>('a' + i));
  Harness r;
  r.Udp(kToServer, Msg(6, kQuery, 1, 0, 0, 0).Question(Name(name), 1).b);
  ASSERT_EQ(r.DnsEvents(), 1u);
  EXPECT_EQ(r.Anomalies("NAME_TOO_LONG"), 1u);
  const std::string& e = r.sink.events[0];
  const std::string logged = "\"rrname\":\"" + name.substr(0, 1025) + "\"";
  EXPECT_NE(e.find(logged + ",\"rrtype\":\"A\",\"rrname_truncated\":true"), std::string::npos);
}

TEST(DnsTest, TooManyLabels) {
  // 300 one-character labels without a pointer: the end is unknown, the message is malformed.
  Bytes name;
  for (int i = 0; i < 300; ++i) name.insert(name.end(), {1, 'x'});
  name.push_back(0);
  Harness r;
  r.Udp(kToServer, Msg(6, kQuery, 1, 0, 0, 0).Question(name, 1).b);
  EXPECT_EQ(r.DnsEvents(), 0u);
  EXPECT_EQ(r.Anomalies("MALFORMED_DATA"), 1u);

  // The same labels reached through a pointer: the name is cut and flagged.
  Msg m(7, kResponse, 1, 1, 0, 0);
  m.Question(name, 1);
  m.Rr(Ptr(12), 1, 1, {1, 2, 3, 4});
  Harness r2;
  r2.Udp(kToClient, m.b);
  // The question itself has too many labels: still malformed.
  EXPECT_EQ(r2.DnsEvents(), 0u);

  Msg m3(8, kResponse, 1, 1, 0, 0);
  m3.Question(Name("x"), 1);  // 12..14, type/class to 18
  // A CNAME whose rdata points at the labels placed after the last record.
  const uint16_t labels = static_cast<uint16_t>(m3.b.size() + 2 + 10 + 2);
  m3.Rr(Ptr(12), 5, 1, Ptr(labels));
  m3.Raw(name);  // trailing bytes after the last record are ignored
  Harness r3;
  r3.Udp(kToClient, m3.b);
  EXPECT_EQ(r3.DnsEvents(), 1u);
  EXPECT_EQ(r3.Anomalies("TOO_MANY_LABELS"), 1u);
  EXPECT_EQ(r3.Anomalies("NAME_TOO_LONG"), 1u);
  EXPECT_NE(r3.sink.events[0].find("\"rdata_truncated\":true"), std::string::npos);
}

// ---- Malformed and unexpected messages ----

TEST(DnsTest, EveryTruncationOfAResponseIsMalformedAndSafe) {
  const Bytes full = Msg(0x4242, kResponse, 1, 2, 1, 1)
                         .Question(Name("www.example.com"), 1)
                         .Rr(Ptr(12), 5, 60, NamePtr("cdn", 16))
                         .Rr(Ptr(33 + 12), 1, 60, {1, 2, 3, 4})
                         .Rr(Ptr(16), 2, 60, NamePtr("ns", 16))
                         .Rr(Name(""), 41, 0, Cat({U16(8), U16(0)}))
                         .b;
  {
    Harness r;
    r.Udp(kToClient, full);
    ASSERT_EQ(r.sink.events.size(), 1u) << r.sink.events[0];
  }
  for (size_t len = 0; len < full.size(); ++len) {
    Harness r;
    r.Udp(kToClient, Bytes(full.begin(), full.begin() + len));
    // A cut in the answers makes the message malformed; a cut in the authority or additional
    // sections keeps it (flagged), as in Suricata.
    const size_t dns = r.DnsEvents();
    if (dns == 0) {
      EXPECT_EQ(r.sink.events.size(), 1u) << len;
      EXPECT_EQ(r.Anomalies("MALFORMED_DATA"), 1u) << len;
    } else {
      EXPECT_EQ(r.Anomalies("INVALID_AUTHORITIES") + r.Anomalies("INVALID_ADDITIONALS"), 1u) << len;
    }
    EXPECT_FALSE(r.sink.unbalanced);
  }
}

TEST(DnsTest, HeaderValidation) {
  Harness r;
  r.Udp(kToServer, Bytes(11, 0));                                   // shorter than a header
  r.Udp(kToServer, Msg(1, kQuery, 0, 0, 0, 0).b);                   // request without questions
  r.Udp(kToServer, Msg(1, kQuery, 400, 0, 0, 0).Raw(Name("a")).b);  // counts cannot fit
  EXPECT_EQ(r.DnsEvents(), 0u);
  EXPECT_EQ(r.Anomalies("MALFORMED_DATA"), 3u);
  // A bare header response (FORMERR) is fine.
  r.Udp(kToClient, Msg(1, 0x8001, 0, 0, 0, 0).b);
  EXPECT_EQ(r.DnsEvents(), 1u);
  EXPECT_NE(r.sink.events.back().find("\"rcode\":\"FORMERR\""), std::string::npos);
}

TEST(DnsTest, MalformedAnomaliesAreCapped) {
  Harness r;
  for (int i = 0; i < 50; ++i) r.Udp(kToServer, Str("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(r.Anomalies("MALFORMED_DATA"), DnsParser::kMaxMalformedRun);
  r.Udp(kToServer, ExampleQuery());  // a good message re-arms the anomaly
  r.Udp(kToServer, Str("garbage garbage"));
  EXPECT_EQ(r.Anomalies("MALFORMED_DATA"), DnsParser::kMaxMalformedRun + 1u);
}

TEST(DnsTest, NotARequestAndNotAResponse) {
  Harness r;
  r.Udp(kToServer, ExampleResponse());
  EXPECT_EQ(r.DnsEvents(), 0u);
  EXPECT_EQ(r.Anomalies("NOT_A_REQUEST"), 1u);
  r.Udp(kToClient, ExampleQuery());
  EXPECT_EQ(r.DnsEvents(), 1u);
  EXPECT_NE(r.sink.events[1].find("\"type\":\"response\",\"tx_id\":0"), std::string::npos);
  EXPECT_EQ(r.Anomalies("NOT_A_RESPONSE"), 1u);
}

TEST(DnsTest, ZFlagAndInvalidOpcode) {
  Harness r;
  r.Udp(kToServer, Msg(1, kQuery | 0x0040 | (9 << 11), 1, 0, 0, 0).Question(Name("a.b"), 1).b);
  ASSERT_EQ(r.DnsEvents(), 1u);
  EXPECT_NE(r.sink.events[0].find("\"z\":true,\"opcode\":9"), std::string::npos);
  EXPECT_EQ(r.sink.messages[0], "DNS OPCODE9 REQUEST A a.b");
  EXPECT_EQ(r.Anomalies("Z_FLAG_SET"), 1u);
  EXPECT_EQ(r.Anomalies("INVALID_OPCODE"), 1u);
}

TEST(DnsTest, InvalidAuthoritiesKeepsAnswers) {
  const Bytes msg = Msg(1, kResponse, 1, 1, 1, 1)
                        .Question(Name("example.com"), 1)
                        .Rr(Ptr(12), 1, 5, {1, 1, 1, 1})
                        .Rr(Ptr(12), 6, 5, {1, 'x'})  // SOA rdata that ends inside a name
                        .Rr(Ptr(12), 1, 5, {2, 2, 2, 2})
                        .b;
  Harness r;
  r.Udp(kToClient, msg);
  ASSERT_EQ(r.DnsEvents(), 1u);
  EXPECT_NE(r.sink.events[0].find("\"rdata\":\"1.1.1.1\""), std::string::npos);
  EXPECT_EQ(r.sink.events[0].find("authorities"), std::string::npos);
  EXPECT_EQ(r.sink.events[0].find("additionals"), std::string::npos);
  EXPECT_EQ(r.Anomalies("INVALID_AUTHORITIES"), 1u);
}

TEST(DnsTest, InvalidAdditionals) {
  const Bytes msg = Msg(1, kResponse, 1, 1, 0, 1)
                        .Question(Name("example.com"), 1)
                        .Rr(Ptr(12), 1, 5, {1, 1, 1, 1})
                        .Rr(Ptr(12), 16, 5, {9, 'x'})  // TXT string longer than its rdata
                        .b;
  Harness r;
  r.Udp(kToClient, msg);
  EXPECT_EQ(r.DnsEvents(), 1u);
  EXPECT_EQ(r.Anomalies("INVALID_ADDITIONALS"), 1u);
}

TEST(DnsTest, EmptyRdataRecordsAreNotLogged) {
  const Bytes msg =
      Msg(1, kResponse, 1, 1, 0, 0).Question(Name("example.com"), 1).Rr(Ptr(12), 1, 5, {}).b;
  Harness r;
  r.Udp(kToClient, msg);
  ASSERT_EQ(r.DnsEvents(), 1u);
  EXPECT_EQ(r.sink.events[0].find("answers"), std::string::npos);
  EXPECT_EQ(r.sink.events[0].find("grouped"), std::string::npos);
}

TEST(DnsTest, BadAddressLengthLogsEmptyRdata) {
  const Bytes msg =
      Msg(1, kResponse, 1, 1, 0, 0).Question(Name("example.com"), 1).Rr(Ptr(12), 1, 5, {1, 2, 3}).b;
  Harness r;
  r.Udp(kToClient, msg);
  EXPECT_NE(r.sink.events[0].find("\"rdata\":\"\""), std::string::npos);
}

TEST(DnsTest, ManyAnswersAreCappedInTheLog) {
  Msg m(1, kResponse, 1, 300, 0, 0);
  m.Question(Name("example.com"), 1);
  for (int i = 0; i < 300; ++i)
    m.Rr(Ptr(12), 1, 5, {10, 0, static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)});
  Harness r;
  r.Udp(kToClient, m.b);
  ASSERT_EQ(r.DnsEvents(), 1u);
  EXPECT_NE(r.sink.events[0].find("\"10.0.0.99\""), std::string::npos);
  EXPECT_EQ(r.sink.events[0].find("\"10.0.0.100\""), std::string::npos);
  EXPECT_NE(r.sink.messages[0].find("(+296 answers)"), std::string::npos);
  EXPECT_FALSE(r.sink.unbalanced);
}

// ---- TCP framing ----

std::vector<std::string> FeedInPieces(const Bytes& to_server, const Bytes& to_client,
                                      size_t piece) {
  Harness r;
  for (size_t i = 0; i < to_server.size(); i += piece) {
    const size_t n = std::min(piece, to_server.size() - i);
    r.Stream(kToServer, Bytes(to_server.begin() + i, to_server.begin() + i + n));
  }
  for (size_t i = 0; i < to_client.size(); i += piece) {
    const size_t n = std::min(piece, to_client.size() - i);
    r.Stream(kToClient, Bytes(to_client.begin() + i, to_client.begin() + i + n));
  }
  return r.sink.events;
}

TEST(DnsTest, TcpTwoMessagesInOneSegment) {
  Harness r;
  r.Stream(kToServer, Cat({Tcp(ExampleQuery(1)), Tcp(ExampleQuery(2))}));
  EXPECT_EQ(r.DnsEvents(), 2u);
  EXPECT_NE(r.sink.events[0].find("\"id\":1,"), std::string::npos);
  EXPECT_NE(r.sink.events[1].find("\"id\":2,"), std::string::npos);
}

TEST(DnsTest, TcpSplitAtEveryByte) {
  const Bytes cs = Cat({Tcp(ExampleQuery(1)), U16(0), Tcp(ExampleQuery(2))});
  const Bytes sc = Cat({Tcp(ExampleResponse(1)), Tcp(ExampleResponse(2))});
  const auto whole = FeedInPieces(cs, sc, cs.size() + sc.size());
  ASSERT_EQ(whole.size(), 4u);
  EXPECT_EQ(FeedInPieces(cs, sc, 1), whole);
  for (size_t cut = 1; cut < sc.size(); ++cut) {
    Harness r;
    r.Stream(kToServer, cs);
    r.Stream(kToClient, Bytes(sc.begin(), sc.begin() + cut));
    r.Stream(kToClient, Bytes(sc.begin() + cut, sc.end()));
    EXPECT_EQ(r.sink.events, whole) << cut;
  }
}

TEST(DnsTest, TcpLongMessageKeepsItsPrefixWhateverTheSplit) {
  Msg m(1, kResponse, 1, 600, 0, 0);
  m.Question(Name("example.com"), 1);
  for (int i = 0; i < 600; ++i)
    m.Rr(Ptr(12), 1, 5, {10, 1, static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)});
  ASSERT_GT(m.b.size(), DnsParser::kResponseBufferSize);
  const Bytes sc = Cat({Tcp(m.b), Tcp(ExampleResponse(2))});
  const auto whole = FeedInPieces({}, sc, sc.size());
  ASSERT_EQ(whole.size(), 2u);
  EXPECT_NE(whole[0].find("\"10.1.0.99\""), std::string::npos);
  EXPECT_EQ(FeedInPieces({}, sc, 1), whole);
  EXPECT_EQ(FeedInPieces({}, sc, 1460), whole);
  EXPECT_EQ(FeedInPieces({}, sc, 777), whole);
}

TEST(DnsTest, TcpGapInsideAMessageDropsOnlyThatMessage) {
  const Bytes first = Tcp(ExampleQuery(1));
  Harness r;
  r.Stream(kToServer, Bytes(first.begin(), first.begin() + 10));
  r.parser->OnGap(kToServer, 5, r.sink);
  r.Stream(kToServer, Bytes(first.begin() + 15, first.end()));
  r.Stream(kToServer, Tcp(ExampleQuery(2)));
  ASSERT_EQ(r.sink.events.size(), 1u);
  EXPECT_NE(r.sink.events[0].find("\"id\":2,"), std::string::npos);
}

TEST(DnsTest, TcpGapAcrossFramingResynchronises) {
  const Bytes first = Tcp(ExampleQuery(1));
  Harness r;
  r.Stream(kToServer, Bytes(first.begin(), first.begin() + 10));
  r.parser->OnGap(kToServer, 100, r.sink);  // past the end of the message
  EXPECT_EQ(r.Anomalies("GAP_LOST_SYNC"), 1u);
  r.Stream(kToServer, Str("trailing junk of an unknown message"));  // ignored
  r.Stream(kToServer, Tcp(ExampleQuery(3)));                        // a message start: resume
  r.Stream(kToServer, Tcp(ExampleQuery(4)));
  EXPECT_EQ(r.DnsEvents(), 2u);
  EXPECT_EQ(r.sink.events.size(), 3u);
}

TEST(DnsTest, UdpDatagramIsOneMessageWithoutPrefix) {
  Harness r;
  r.Udp(kToServer, Tcp(ExampleQuery()));  // a length prefix in UDP makes the header wrong
  EXPECT_EQ(r.DnsEvents(), 0u);
}

// ---- Probes ----

TEST(DnsTest, Probes) {
  EXPECT_EQ(DnsParser::Probe(kToServer, ExampleQuery()), ProbeResult::kYes);
  EXPECT_EQ(DnsParser::ProbeUdp(kToClient, ExampleResponse()), ProbeResult::kYes);
  EXPECT_EQ(DnsParser::ProbeUdp(kToServer, Str("GET / HTTP/1.1\r\n\r\n")), ProbeResult::kNo);
  EXPECT_EQ(DnsParser::ProbeUdp(kToServer, Bytes(5, 0)), ProbeResult::kNo);

  const Bytes tcp = Tcp(ExampleQuery());
  EXPECT_EQ(DnsParser::ProbeTcp(kToServer, tcp), ProbeResult::kYes);
  EXPECT_EQ(DnsParser::ProbeTcp(kToServer, Bytes(tcp.begin(), tcp.begin() + 1)),
            ProbeResult::kMaybe);
  EXPECT_EQ(DnsParser::ProbeTcp(kToServer, Bytes(tcp.begin(), tcp.begin() + 20)),
            ProbeResult::kMaybe);
  EXPECT_EQ(DnsParser::ProbeTcp(kToServer, Str("GET / HTTP/1.1\r\n\r\n")), ProbeResult::kNo);
  EXPECT_EQ(DnsParser::ProbeTcp(kToServer, Cat({{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}, Bytes(30)})),
            ProbeResult::kNo);
  // A long response whose questions arrived is recognised before its end.
  Msg m(1, kResponse, 1, 200, 0, 0);
  m.Question(Name("example.com"), 1);
  for (int i = 0; i < 200; ++i) m.Rr(Ptr(12), 1, 5, {1, 2, 3, 4});
  const Bytes big = Tcp(m.b);
  EXPECT_EQ(DnsParser::ProbeTcp(kToClient, Bytes(big.begin(), big.begin() + 100)),
            ProbeResult::kYes);
}

TEST(DnsTest, SizeIsModest) { EXPECT_LE(sizeof(DnsParser), 5300u); }

}  // namespace
}  // namespace vigil::proto
