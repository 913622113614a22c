// The signature engine (rules/engine/detect.h): content verification with every modifier and
// their chains, pcre, the fast-pattern prefilter, header, flow, dsize, flowbits, thresholds, and a
// build of the whole ET Open set when the shared data is present.
#include "rules/engine/detect.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "rules/lang/loader.h"
#include "rules/lang/rule_parser.h"

namespace vigil::rules {
namespace {

Rule Parse(const std::string& text) {
  static const Vars vars = [] {
    Vars v = DefaultVars();
    v.address_groups["HOME_NET"] = "[10.0.0.0/8]";
    v.address_groups["EXTERNAL_NET"] = "!$HOME_NET";
    return v;
  }();
  ParseContext ctx;
  ctx.vars = &vars;
  ctx.file = "t.rules";
  ctx.line = 1;
  Rejection rej;
  auto r = ParseRule(text, ctx, &rej);
  EXPECT_TRUE(r.has_value()) << rej.ToString();
  return r ? *r : Rule{};
}

std::span<const uint8_t> Bytes(std::string_view s) {  // a view: the bytes must outlive it
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// A one-rule detector over a payload (to_server TCP 10.0.0.1:1234 -> 10.0.0.2:80, established).
struct One {
  explicit One(const std::string& rule_text) {
    std::vector<Rule> rules{Parse(rule_text)};
    std::string err;
    det = Detector::Build(std::move(rules), &err);
    EXPECT_NE(det, nullptr) << err;
    scratch = det->NewScratch(&err);
    EXPECT_NE(scratch, nullptr) << err;
  }
  bool Matches(const std::string& payload, Buffer buffer = Buffer::kPacket) {
    Buffers b;
    b.Set(buffer, Bytes(payload));
    PacketMeta p = Meta();
    p.payload_size = static_cast<uint32_t>(payload.size());
    uint32_t out[4];
    return det->Inspect(p, b, &bits, *scratch, out) == 1;
  }
  static PacketMeta Meta() {
    PacketMeta p;
    p.src = {10, 0, 0, 1};
    p.dst = {10, 0, 0, 2};
    p.src_port = 1234;
    p.dst_port = 80;
    p.established = true;
    return p;
  }
  std::shared_ptr<const Detector> det;
  std::unique_ptr<Scratch> scratch;
  FlowBits bits;
};

// A detector over several rules, and the sids one packet or message makes alert (rule order).
struct Many {
  explicit Many(std::vector<Rule> rules) {
    std::string err;
    det = Detector::Build(std::move(rules), &err, &stats);
    EXPECT_NE(det, nullptr) << err;
    if (det != nullptr) scratch = det->NewScratch(&err);
    EXPECT_NE(scratch, nullptr) << err;
  }
  std::vector<uint32_t> Sids(const PacketMeta& p, const Buffers& b) {
    uint32_t out[16];
    std::vector<uint32_t> v;
    if (det == nullptr || scratch == nullptr) return v;
    const size_t n = det->Inspect(p, b, nullptr, *scratch, out);
    for (size_t i = 0; i < n; ++i) v.push_back(det->rule(out[i]).sid);
    return v;
  }
  DetectorStats stats;
  std::shared_ptr<const Detector> det;
  std::unique_ptr<Scratch> scratch;
};

std::string R(const std::string& options) {
  return "alert tcp any any -> any any (msg:\"t\"; " + options + " sid:1;)";
}

TEST(DetectVerify, OffsetAndDepth) {
  One r(R("content:\"def\"; offset:3; depth:3;"));
  EXPECT_TRUE(r.Matches("abcdef"));
  EXPECT_FALSE(r.Matches("abcxdef"));  // ends after offset + depth
  EXPECT_FALSE(r.Matches("defabc"));   // before the offset
  One d(R("content:\"abc\"; depth:3;"));
  EXPECT_TRUE(d.Matches("abcxx"));
  EXPECT_FALSE(d.Matches("xabc"));
}

TEST(DetectVerify, DistanceWithinChains) {
  One r(R("content:\"GET\"; content:\"/x\"; distance:1; within:3;"));
  EXPECT_TRUE(r.Matches("GET /x"));     // anchor 3, window [4, 7): "/x" at 4
  EXPECT_TRUE(r.Matches("GET  /x"));    // "/x" at 5..7
  EXPECT_FALSE(r.Matches("GET   /x"));  // ends at 8 > 3 + 1 + 3
  EXPECT_FALSE(r.Matches("GET/x"));     // starts at 3 < 3 + 1
  // Negative distance reaches back.
  One back(R("content:\"BB\"; content:\"AB\"; distance:-3; within:4;"));
  EXPECT_TRUE(back.Matches("xABB"));
  // Backtracking: the first "a=" is not followed within 2 bytes by "1"; the second is.
  One bt(R("content:\"a=\"; content:\"1\"; distance:0; within:1;"));
  EXPECT_TRUE(bt.Matches("a=2&a=1"));
  EXPECT_FALSE(bt.Matches("a=2&a=3 1"));
  // Three-step chain, each relative to the previous match.
  One chain(R("content:\"A\"; content:\"B\"; distance:0; within:2; content:\"C\"; distance:1;"));
  EXPECT_TRUE(chain.Matches("A.B..C"));
  EXPECT_FALSE(chain.Matches("A..B.C"));
  EXPECT_FALSE(chain.Matches("A.BC"));
  // A relative content with no earlier match in its buffer counts from the buffer start.
  One first(R("http.uri; content:\"/a\"; distance:0; within:2;"));
  EXPECT_TRUE(first.Matches("/a/b", Buffer::kHttpUri));
  EXPECT_FALSE(first.Matches("x/a", Buffer::kHttpUri));
}

TEST(DetectVerify, NegatedAndNocase) {
  One neg(R("content:\"user\"; content:!\"admin\"; distance:0; within:10;"));
  EXPECT_TRUE(neg.Matches("user=bob"));
  EXPECT_FALSE(neg.Matches("user=admin"));
  EXPECT_TRUE(neg.Matches("user=bob.......... admin"));  // outside the window
  One only_neg(R("content:!\"x\";"));                    // no fast pattern: always checked
  EXPECT_TRUE(only_neg.Matches("abc"));
  EXPECT_FALSE(only_neg.Matches("abxc"));
  One nc(R("content:\"SeLeCt\"; nocase;"));
  EXPECT_TRUE(nc.Matches("xx select yy"));
  EXPECT_TRUE(nc.Matches("SELECT"));
  One cs(R("content:\"SeLeCt\";"));
  EXPECT_FALSE(cs.Matches("select"));
  EXPECT_TRUE(cs.Matches("SeLeCt"));
  One hex(R("content:\"|00 01|A|ff|\";"));
  EXPECT_TRUE(
      hex.Matches(std::string("\x00\x01"
                              "A\xff",
                              4)));
  EXPECT_FALSE(
      hex.Matches(std::string("\x00\x01"
                              "a\xff",
                              4)));
}

// isdataat, byte_test and byte_jump as Suricata runs them, relative to the cursor (the end of the
// previous match in the buffer) or to the buffer's start.
TEST(DetectVerify, IsDataAt) {
  // ETERNALBLUE's "nothing after the match": relative, negated.
  One end(R("content:\"END\"; isdataat:!1,relative;"));
  EXPECT_TRUE(end.Matches("xxEND"));
  EXPECT_FALSE(end.Matches("xxEND!"));
  One rel(R("content:\"AB\"; isdataat:3,relative;"));
  EXPECT_TRUE(rel.Matches("AB123"));  // cursor 2 + 3 <= 5
  EXPECT_FALSE(rel.Matches("AB12"));
  EXPECT_TRUE(end.Matches("END!END"));  // the second occurrence is the last bytes
  One abs(R("content:\"A\"; isdataat:4;"));
  EXPECT_TRUE(abs.Matches("A1234"));  // a byte at offset 4
  EXPECT_FALSE(abs.Matches("A123"));
}

TEST(DetectVerify, ByteTest) {
  One be(R("content:\"LEN\"; byte_test:2,>,0x100,0,relative;"));
  EXPECT_TRUE(be.Matches(std::string("LEN\x01\x01", 5)));
  EXPECT_FALSE(be.Matches(std::string("LEN\x01\x00", 5)));
  EXPECT_FALSE(be.Matches("LEN\x01"));  // the bytes run past the end
  One le(R("content:\"LEN\"; byte_test:2,=,0x0102,0,relative,little;"));
  EXPECT_TRUE(le.Matches(std::string("LEN\x02\x01", 5)));
  One neg(R("content:\"A\"; byte_test:1,!=,7,1;"));
  EXPECT_TRUE(neg.Matches("A\x08"));
  EXPECT_FALSE(neg.Matches("A\x07"));
  One text(R("content:\"n=\"; byte_test:3,>=,255,0,relative,string,hex;"));
  EXPECT_TRUE(text.Matches("n=fF0"));
  EXPECT_FALSE(text.Matches("n=0fe"));
  EXPECT_FALSE(text.Matches("n=zz1"));  // no digit
  One mask(R("content:\"M\"; byte_test:1,=,3,0,relative,bitmask 0x30;"));
  EXPECT_TRUE(mask.Matches("M\x3f"));  // (0x3f & 0x30) >> 4 == 3
  EXPECT_FALSE(mask.Matches("M\x2f"));
  One bits(R("content:\"F\"; byte_test:1,&,0x80,0,relative;"));
  EXPECT_TRUE(bits.Matches("F\x81"));
  EXPECT_FALSE(bits.Matches("F\x7f"));
}

TEST(DetectVerify, ByteJump) {
  // A length-prefixed field skipped, then a content right after it.
  One skip(R("content:\"H\"; byte_jump:1,0,relative; content:\"NEXT\"; within:4;"));
  EXPECT_TRUE(skip.Matches("H\x03xyzNEXT"));
  EXPECT_FALSE(skip.Matches("H\x02xyzNEXT"));
  EXPECT_FALSE(skip.Matches("H\x09xyzNEXT"));  // jumps past the end
  One mult(
      R("content:\"H\"; byte_jump:1,0,relative,multiplier 2,post_offset -1; "
        "content:\"Z\"; within:1;"));
  EXPECT_TRUE(
      mult.Matches("H\x02"
                   "abcZ"));  // 2 + 2*2 - 1 = 5
  One align(R("content:\"H\"; byte_jump:1,0,relative,align; content:\"Z\"; within:1;"));
  EXPECT_TRUE(
      align.Matches("H\x03"
                    "abc_Z"));  // 3 rounded up to 4: from offset 2 to 6
  EXPECT_FALSE(
      align.Matches("H\x03"
                    "abcZ"));
  One begin(R("byte_jump:1,0,from_beginning; content:\"Z\"; within:1;"));
  EXPECT_TRUE(
      begin.Matches("\x03"
                    "abZ"));
  One end(R("byte_jump:1,0,from_end,post_offset -2; content:\"YZ\"; within:2;"));
  EXPECT_TRUE(
      end.Matches(std::string("\x00"
                              "abcYZ",
                              6)));
  // After a jump, a later relative content that fails makes the earlier content retry.
  One retry(R("content:\"H\"; byte_jump:1,0,relative; content:\"OK\"; within:2;"));
  EXPECT_TRUE(retry.Matches("H\x01xNO..H\x01xOK"));
}

TEST(DetectVerify, Urilen) {
  One range(R("urilen:3<>6;"));
  EXPECT_TRUE(range.Matches("/abc", Buffer::kHttpUri));
  EXPECT_FALSE(range.Matches("/a", Buffer::kHttpUri));
  EXPECT_FALSE(range.Matches("/abcdef", Buffer::kHttpUri));
  EXPECT_FALSE(range.Matches("/abc"));  // a packet has no http.uri
  One raw(R("urilen:>2,raw;"));
  EXPECT_TRUE(raw.Matches("/abc", Buffer::kHttpRawUri));
  EXPECT_FALSE(raw.Matches("/abc", Buffer::kHttpUri));
}

TEST(DetectVerify, Pcre) {
  One p(R("content:\"id=\"; pcre:\"/id=[0-9]{3}\\b/\";"));
  EXPECT_TRUE(p.Matches("?id=123&"));
  EXPECT_FALSE(p.Matches("?id=12&"));
  One rel(R("content:\"id=\"; pcre:\"/^[0-9]+$/R\";"));
  EXPECT_TRUE(rel.Matches("?id=123"));  // relative: the pcre starts after "id="
  EXPECT_FALSE(rel.Matches("?id=12a"));
  One ci(R("content:\"x\"; pcre:\"/ABC/i\";"));
  EXPECT_TRUE(ci.Matches("x abc"));
  One neg(R("content:\"id=\"; pcre:!\"/id=[0-9]/\";"));
  EXPECT_TRUE(neg.Matches("id=a"));
  EXPECT_FALSE(neg.Matches("id=1"));
  // A content relative to a pcre's end.
  One after(R("pcre:\"/k[0-9]/\"; content:\"!\"; distance:0; within:1;"));
  EXPECT_TRUE(after.Matches("k1k2!"));
  EXPECT_FALSE(after.Matches("k1 k2 !"));
}

TEST(DetectHeader, AddressesPortsDirectionProtocol) {
  One home("alert tcp $EXTERNAL_NET any -> $HOME_NET 80 (msg:\"t\"; content:\"x\"; sid:1;)");
  Buffers b;
  const std::string x = "x";
  b.Set(Buffer::kPacket, Bytes(x));
  uint32_t out[2];
  PacketMeta p = One::Meta();
  EXPECT_EQ(home.det->Inspect(p, b, nullptr, *home.scratch, out), 0u);  // source is home
  p.src = {192, 0, 2, 1};
  EXPECT_EQ(home.det->Inspect(p, b, nullptr, *home.scratch, out), 1u);
  p.dst_port = 81;
  EXPECT_EQ(home.det->Inspect(p, b, nullptr, *home.scratch, out), 0u);
  p.dst_port = 80;
  p.transport = Protocol::kUdp;
  EXPECT_EQ(home.det->Inspect(p, b, nullptr, *home.scratch, out), 0u);
  // Bidirectional: either orientation.
  One bi("alert tcp 10.0.0.1 any <> 10.0.0.2 80 (msg:\"t\"; content:\"x\"; sid:1;)");
  PacketMeta q = One::Meta();
  std::swap(q.src, q.dst);
  std::swap(q.src_port, q.dst_port);
  EXPECT_EQ(bi.det->Inspect(q, b, nullptr, *bi.scratch, out), 1u);
  // Application protocol: only on flows identified as it.
  One smb("alert smb any any -> any any (msg:\"t\"; content:\"x\"; sid:1;)");
  PacketMeta s = One::Meta();
  EXPECT_EQ(smb.det->Inspect(s, b, nullptr, *smb.scratch, out), 0u);
  s.app = Protocol::kSmb;
  EXPECT_EQ(smb.det->Inspect(s, b, nullptr, *smb.scratch, out), 1u);
}

TEST(DetectHeader, FlowAndDsize) {
  One f(R("flow:to_client,established; content:\"x\";"));
  EXPECT_FALSE(f.Matches("x"));  // Meta() is to_server
  One d(R("dsize:<5; content:\"x\";"));
  EXPECT_TRUE(d.Matches("xx"));
  EXPECT_FALSE(d.Matches("xxxxxx"));
  // Buffers the rule needs must be present.
  One uri(R("http.uri; content:\"/a\";"));
  EXPECT_FALSE(uri.Matches("/a"));  // in the packet buffer, not http.uri
  EXPECT_TRUE(uri.Matches("/a", Buffer::kHttpUri));
}

TEST(DetectState, FlowbitsSetIsSetNoalert) {
  std::vector<Rule> rules{Parse(R("content:\"login\"; flowbits:set,seen_login; flowbits:noalert;")),
                          Parse("alert tcp any any -> any any (msg:\"t\"; content:\"secret\"; "
                                "flowbits:isset,seen_login; sid:2;)"),
                          Parse("alert tcp any any -> any any (msg:\"t\"; content:\"secret\"; "
                                "flowbits:isnotset,seen_login; sid:3;)")};
  std::string err;
  auto det = Detector::Build(std::move(rules), &err);
  ASSERT_NE(det, nullptr) << err;
  auto scratch = det->NewScratch(&err);
  FlowBits bits;
  Buffers b;
  uint32_t out[4];
  const std::string secret = "secret", login = "login";
  b.Set(Buffer::kPacket, Bytes(secret));
  ASSERT_EQ(det->Inspect(One::Meta(), b, &bits, *scratch, out), 1u);
  EXPECT_EQ(det->rule(out[0]).sid, 3u);
  b.Set(Buffer::kPacket, Bytes(login));
  EXPECT_EQ(det->Inspect(One::Meta(), b, &bits, *scratch, out), 0u);  // noalert, sets the bit
  b.Set(Buffer::kPacket, Bytes(secret));
  ASSERT_EQ(det->Inspect(One::Meta(), b, &bits, *scratch, out), 1u);
  EXPECT_EQ(det->rule(out[0]).sid, 2u);
  FlowBits other;  // another flow
  ASSERT_EQ(det->Inspect(One::Meta(), b, &other, *scratch, out), 1u);
  EXPECT_EQ(det->rule(out[0]).sid, 3u);
  EXPECT_EQ(det->stats().flowbits, 1u);
}

// dcerpc.iface / dcerpc.opnum are conditions on a DCE/RPC request (a message with
// dcerpc.stub_data and its DcerpcInfo): never on a packet, the UUID compared in the GUID's wire
// layout, the version operators and opnum ranges as Suricata reads them.
TEST(DetectState, DcerpcInterfaceAndOpnum) {
  std::vector<Rule> rules{
      Parse("alert tcp any any -> any any (msg:\"t\"; flow:to_server; "
            "dcerpc.iface:367abb81-9844-35f1-ad32-98f038001003; dcerpc.opnum:12-15,20; sid:1;)"),
      Parse("alert smb any any -> any any (msg:\"t\"; dce_iface:367abb81-9844-35f1-ad32-"
            "98f038001003,>1; sid:2;)"),
      Parse("alert tcp any any -> any any (msg:\"t\"; dce_opnum:15; dce_stub_data; "
            "content:\"STUB\"; sid:3;)"),
      Parse(R("content:\"x\";"))};
  Many m(std::move(rules));
  EXPECT_TRUE(m.stats.dropped.empty());
  PacketMeta p = One::Meta();
  p.app = Protocol::kSmb;
  auto sids = [&](const Buffers& b) { return m.Sids(p, b); };
  // A packet never satisfies them: only the content rule alerts (R() numbers it 1 too).
  Buffers packet;
  const std::string x = "x STUB";
  packet.Set(Buffer::kPacket, Bytes(x));
  EXPECT_EQ(sids(packet), (std::vector<uint32_t>{1}));
  // svcctl (367abb81-9844-35f1-ad32-98f038001003) v2, opnum 15, as the parser gives it.
  DcerpcInfo info;
  info.has_iface = true;
  info.uuid = {0x81, 0xbb, 0x7a, 0x36, 0x44, 0x98, 0xf1, 0x35,
               0xad, 0x32, 0x98, 0xf0, 0x38, 0x00, 0x10, 0x03};
  info.version = 2;
  info.opnum = 15;
  const std::string stub = "..STUB..";
  Buffers call;
  call.Set(Buffer::kDcerpcStubData, Bytes(stub));
  call.SetDcerpc(&info);
  EXPECT_EQ(sids(call), (std::vector<uint32_t>{1, 2, 3}));
  info.version = 1;  // >1 fails
  info.opnum = 20;   // in the list; sid 3 wants 15
  EXPECT_EQ(sids(call), (std::vector<uint32_t>{1}));
  info.opnum = 16;
  EXPECT_TRUE(sids(call).empty());
  info.opnum = 15;
  info.uuid[0] ^= 1;  // another interface
  EXPECT_EQ(sids(call), (std::vector<uint32_t>{3}));
  info.has_iface = false;  // the bind was not seen
  EXPECT_EQ(sids(call), (std::vector<uint32_t>{3}));
  Buffers no_info;  // the stub buffer alone: the rules need the request
  no_info.Set(Buffer::kDcerpcStubData, Bytes(stub));
  EXPECT_TRUE(sids(no_info).empty());
}

// The Kerberos keywords are conditions on a Kerberos message (given with krb5.sname): the
// ticket's etype (weak, !weak, a list), the message type, the error code.
TEST(DetectState, KerberosKeywords) {
  Many m(
      {Parse("alert krb5 any any -> any any (msg:\"w\"; krb5.ticket_encryption: weak; sid:1;)"),
       Parse("alert krb5 any any -> any any (msg:\"s\"; krb5.ticket_encryption:!weak; sid:2;)"),
       Parse("alert krb5 any any -> any any (msg:\"l\"; krb5.ticket_encryption: 23,rc4-hmac-exp; "
             "sid:3;)"),
       Parse("alert krb5 any any -> any any (msg:\"t\"; krb5_msg_type:13; krb5_sname; "
             "content:\"MSSQLSvc/\"; sid:4;)"),
       Parse("alert krb5 any any -> any any (msg:\"e\"; krb5_err_code:6; sid:5;)")});
  PacketMeta p = One::Meta();
  p.app = Protocol::kKrb5;
  p.to_server = false;
  auto sids = [&](uint8_t type, int32_t etype, int32_t error, const std::string& sname) {
    Krb5Info k{type, etype, error};
    Buffers b;
    b.Set(Buffer::kKrb5Sname, Bytes(sname));
    b.SetKrb5(&k);
    return m.Sids(p, b);
  };
  using V = std::vector<uint32_t>;
  EXPECT_EQ(sids(13, 23, -1, "MSSQLSvc/db01"), V({1, 3, 4}));
  EXPECT_EQ(sids(13, 24, -1, "host/x"), V({1, 3}));
  EXPECT_EQ(sids(11, 18, -1, "krbtgt/R"), V({2}));
  EXPECT_EQ(sids(12, -1, -1, "MSSQLSvc/db01"), V());  // a request has no ticket etype here
  EXPECT_EQ(sids(30, -1, 6, "krbtgt/R"), V({5}));
  // Without the message's Kerberos facts (another protocol's inspection) nothing matches.
  Buffers none;
  none.Set(Buffer::kKrb5Sname, Bytes("MSSQLSvc/db01"));
  EXPECT_EQ(m.Sids(p, none), V());
}

// A multi-buffer (http.request_header, http.response_header, tls.certs): a rule's conditions on it
// must hold in one instance; the fast-pattern scan runs over the whole.
TEST(DetectState, MultiBufferInstances) {
  Many m({Parse("alert http any any -> any any (msg:\"c\"; http.request_header; "
                "content:\"Connection|3a 20|\"; content:\"close\"; distance:0; sid:1;)"),
          Parse("alert http any any -> any any (msg:\"h\"; http.request_header; "
                "content:\"Host|3a 20|\"; depth:6; http.uri; content:\"/x\"; sid:2;)")});
  PacketMeta p = One::Meta();
  p.app = Protocol::kHttp;
  auto sids = [&](std::vector<std::string> lines) {
    std::string whole;
    for (const auto& l : lines) whole += l + "\r\n";
    std::vector<std::span<const uint8_t>> items;
    size_t at = 0;
    for (const auto& l : lines) {
      items.push_back(Bytes(whole).subspan(at, l.size()));
      at += l.size() + 2;
    }
    Buffers b;
    const std::string uri = "/x";
    b.Set(Buffer::kHttpUri, Bytes(uri));
    b.SetItems(Buffer::kHttpRequestHeader, items, Bytes(whole));
    return m.Sids(p, b);
  };
  using V = std::vector<uint32_t>;
  EXPECT_EQ(sids({"Host: a", "Connection: close"}), V({1, 2}));
  // "Connection: " and "close" both in the block, in two headers: not one instance.
  EXPECT_EQ(sids({"Connection: keep-alive", "X-Y: close"}), V());
  // depth:6 from each instance's start: "Host: " at the second header's start matches.
  EXPECT_EQ(sids({"X: 1", "Host: b"}), V({2}));
  EXPECT_EQ(sids({"X-Host: b"}), V());
}

TEST(DetectState, ThresholdAndDetectionFilter) {
  auto count = [](const std::string& opts, int packets, int64_t step_s) {
    One r(R(opts));
    int alerts = 0;
    Buffers b;
    const std::string x = "x";
    b.Set(Buffer::kPacket, Bytes(x));
    PacketMeta p = One::Meta();
    uint32_t out[2];
    for (int i = 0; i < packets; ++i) {
      p.ts_ns = int64_t{1000} * 1000000000 + i * step_s * 1000000000;
      alerts += static_cast<int>(r.det->Inspect(p, b, nullptr, *r.scratch, out));
    }
    return alerts;
  };
  EXPECT_EQ(count("content:\"x\"; threshold:type limit, track by_src, count 2, seconds 60;", 10, 1),
            2);
  EXPECT_EQ(
      count("content:\"x\"; threshold:type threshold, track by_src, count 3, seconds 60;", 10, 1),
      3);  // every 3rd
  EXPECT_EQ(count("content:\"x\"; threshold:type both, track by_dst, count 3, seconds 60;", 10, 1),
            1);
  EXPECT_EQ(count("content:\"x\"; detection_filter:track by_src, count 4, seconds 60;", 10, 1), 6);
  // The window restarts: a limit of 1 per 5 s over 10 packets 1 s apart gives one per window.
  EXPECT_EQ(count("content:\"x\"; threshold:type limit, track by_src, count 1, seconds 5;", 12, 1),
            2);
}

TEST(DetectPrefilter, FastPatternSelectsCandidates) {
  std::vector<Rule> rules;
  for (int i = 0; i < 200; ++i) {
    rules.push_back(Parse("alert tcp any any -> any any (msg:\"t\"; content:\"tok" +
                          std::to_string(i) + "x\"; sid:" + std::to_string(i + 1) + ";)"));
  }
  rules.push_back(
      Parse("alert tcp any any -> any any (msg:\"t\"; content:\"a\"; content:\"LONGER\"; "
            "content:\"b\"; fast_pattern; sid:999;)"));
  std::string err;
  auto det = Detector::Build(std::move(rules), &err);
  ASSERT_NE(det, nullptr) << err;
  EXPECT_EQ(det->stats().prefiltered, 201u);
  EXPECT_EQ(det->stats().always, 0u);
  EXPECT_EQ(det->stats().patterns, 201u);
  auto scratch = det->NewScratch(&err);
  Buffers b;
  const std::string payload = "..tok7x..tok150x..aLONGERb";
  b.Set(Buffer::kPacket, Bytes(payload));
  uint32_t out[8];
  const size_t n = det->Inspect(One::Meta(), b, nullptr, *scratch, out);
  ASSERT_EQ(n, 3u);
  EXPECT_EQ(det->rule(out[0]).sid, 8u);
  EXPECT_EQ(det->rule(out[1]).sid, 151u);
  EXPECT_EQ(det->rule(out[2]).sid, 999u);
  // A scratch of another detector is refused rather than misused.
  auto small = Detector::Build({Parse(R("content:\"q\";"))}, &err);
  EXPECT_EQ(small->Inspect(One::Meta(), b, nullptr, *scratch, out), 0u);
}

// A packet and an app-layer message (no pkt_data) consult different rules: a rule with no
// content condition and a pkt_data rule are packet rules, a rule on a sticky buffer (through its
// buffer's database, or without a fast pattern) is a message rule, and a rule mixing pkt_data
// with a sticky buffer matches neither.
TEST(DetectPrefilter, PacketsAndMessagesConsultTheirOwnRules) {
  std::vector<Rule> rules{
      Parse("alert tcp any any -> any any (msg:\"t\"; flow:established; sid:1;)"),
      Parse("alert tcp any any -> any any (msg:\"t\"; content:\"GET /x\"; sid:2;)"),
      Parse("alert http any any -> any any (msg:\"t\"; http.uri; content:\"/x\"; sid:3;)"),
      Parse("alert http any any -> any any (msg:\"t\"; http.method; content:\"GE\"; sid:4;)"),
      Parse("alert http any any -> any any (msg:\"t\"; content:\"GET\"; http.uri; "
            "content:\"/x\"; sid:5;)"),
      Parse("alert http any any -> any any (msg:\"t\"; http.uri; content:\"/x\"; "
            "http.host; content:\"other\"; sid:6;)"),
  };
  Many m(std::move(rules));
  ASSERT_NE(m.det, nullptr);
  const Detector* det = m.det.get();
  Scratch* scratch = m.scratch.get();
  PacketMeta p = One::Meta();
  p.app = Protocol::kHttp;
  auto sids = [&](const Buffers& b) { return m.Sids(p, b); };
  const std::string payload = "GET /x HTTP/1.1\r\n\r\n", uri = "/x", method = "GET", host = "h";
  Buffers packet;
  packet.Set(Buffer::kPacket, Bytes(payload));
  EXPECT_EQ(sids(packet), (std::vector<uint32_t>{1, 2}));
  Buffers message;
  message.Set(Buffer::kHttpUri, Bytes(uri));
  message.Set(Buffer::kHttpMethod, Bytes(method));
  message.Set(Buffer::kHttpHost, Bytes(host));
  EXPECT_EQ(sids(message), (std::vector<uint32_t>{3, 4}));
  // Each rule agrees with Matches (no prefilter) on both.
  for (uint32_t r = 0; r < det->size(); ++r) {
    const uint32_t sid = det->rule(r).sid;
    EXPECT_EQ(det->Matches(r, p, packet, nullptr, *scratch), sid == 1 || sid == 2) << sid;
    EXPECT_EQ(det->Matches(r, p, message, nullptr, *scratch), sid == 1 || sid == 3 || sid == 4)
        << sid;  // Matches checks conditions only: sid 1 has none on buffers
  }
}

// Fast pattern choice: a short explicit fast_pattern gives way to a longer content, the most
// selective content wins over the longest, runs of zero bytes are left out of the pattern, and a
// rule whose contents are all shorter than 3 bytes is checked on every packet of its group.
TEST(DetectPrefilter, FastPatternChoice) {
  std::string err;
  auto det =
      Detector::Build({Parse(R("content:\"ab\"; fast_pattern; content:\"LONGER\";")),
                       Parse(R("content:\"|00 00 00 00 00 00 00 00|\"; content:\"Xq\"; "
                               "content:\"|00 00|k7!|00 00 00|\";")),
                       Parse(R("content:\"|00 00 00 00 00 00 00 00 00 00 00|\"; content:\"q{\";")),
                       Parse(R("content:\"zz\";"))},
                      &err);
  ASSERT_NE(det, nullptr) << err;
  EXPECT_EQ(det->stats().prefiltered, 3u);  // LONGER, k7!|00| (a piece), and the zero run itself
  EXPECT_EQ(det->stats().always, 1u);       // zz
  auto scratch = det->NewScratch(&err);
  auto sids = [&](const std::string& payload) {
    Buffers b;
    b.Set(Buffer::kPacket, Bytes(payload));
    PacketMeta p = One::Meta();
    uint32_t out[8];
    std::vector<uint32_t> got;
    const size_t n = det->Inspect(p, b, nullptr, *scratch, out);
    for (size_t i = 0; i < n; ++i) got.push_back(out[i] + 1);  // rule numbers (all are sid 1)
    return got;
  };
  EXPECT_EQ(sids("..abLONGER"), std::vector<uint32_t>({1}));
  EXPECT_EQ(sids("..LONGER"), std::vector<uint32_t>());  // ab is still required
  const std::string z8(8, '\0');
  EXPECT_EQ(sids(z8 + "Xq" + std::string("\0\0k7!\0\0\0", 8)), std::vector<uint32_t>({2}));
  EXPECT_EQ(sids(z8 + "Xq" + std::string("\0k7!\0\0\0", 7)), std::vector<uint32_t>());
  EXPECT_EQ(sids(std::string(11, '\0') + "q{"), std::vector<uint32_t>({3}));
  EXPECT_EQ(sids("..zz.."), std::vector<uint32_t>({4}));
}

// Header groups (by transport or application protocol, direction, which side of the most named
// address set each end is on, and port) only decide which rules are verified: Inspect must alert
// on exactly the rules that match when each is checked on its own (Detector::Matches, no
// prefilter). Rules and packets are drawn at random from headers that exercise every grouping
// decision.
// Context buffers (an HTTP response's request URI): a rule that mixes them with the message's own
// buffers matches; a rule on context buffers alone is not consulted (it was on the request),
// whether its fast pattern is there or it has none.
TEST(DetectPrefilter, ContextBuffersDoNotMakeCandidates) {
  Many m({Parse("alert http any any -> any any (msg:\"u\"; http.uri; content:\"/admin\"; sid:1;)"),
          Parse("alert http any any -> any any (msg:\"us\"; http.uri; content:\"/admin\"; "
                "http.stat_code; content:\"200\"; sid:2;)"),
          Parse("alert http any any -> any any (msg:\"s\"; http.stat_code; content:\"200\"; "
                "http.uri; content:\"/admin\"; fast_pattern; sid:3;)"),
          Parse("alert http any any -> any any (msg:\"m\"; http.method; content:\"GE\"; sid:4;)")});
  PacketMeta p = One::Meta();
  p.app = Protocol::kHttp;
  p.to_server = false;
  const std::string code = "200", uri = "/admin/x", method = "GET";  // Bytes() keeps no copy
  Buffers response;
  response.Set(Buffer::kHttpStatCode, Bytes(code));
  response.SetContext(Buffer::kHttpUri, Bytes(uri));
  response.SetContext(Buffer::kHttpMethod, Bytes(method));
  EXPECT_EQ(m.Sids(p, response), std::vector<uint32_t>({2, 3}));
  Buffers request;
  request.Set(Buffer::kHttpUri, Bytes(uri));
  request.Set(Buffer::kHttpMethod, Bytes(method));
  p.to_server = true;
  EXPECT_EQ(m.Sids(p, request), std::vector<uint32_t>({1, 4}));
}

TEST(DetectPrefilter, HeaderGroupsLoseNoRule) {
  const char* protos[] = {"tcp", "udp", "ip", "icmp", "http", "smb", "dcerpc", "dns", "tls"};
  const char* addrs[] = {
      "any", "$HOME_NET", "$EXTERNAL_NET", "10.1.0.0/16", "[192.0.2.1,10.0.0.1]", "!10.0.0.1"};
  const char* ports[] = {
      "any", "80", "445", "[139,445]", "1024:", "!80", "1:1023", "53", "8000:8100"};
  const char* flows[] = {"", "flow:to_server; ", "flow:to_client; ", "flow:established; "};
  const char* tokens[] = {"alpha", "beta", "|00 00|gam|00 00|", "de", "epsil"};
  const char* token_bytes[] = {"alpha", "beta", "\0\0gam\0\0", "de", "epsil"};
  const size_t token_len[] = {5, 4, 7, 2, 5};
  uint64_t seed = 0x2545f4914f6cdd1dull;
  auto next = [&seed](size_t n) {
    seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
    return static_cast<size_t>(seed % n);
  };
  std::vector<std::string> texts;
  for (int i = 0; i < 400; ++i) {
    texts.push_back(std::string("alert ") + protos[next(9)] + " " + addrs[next(6)] + " " +
                    ports[next(9)] + (next(5) == 0 ? " <> " : " -> ") + addrs[next(6)] + " " +
                    ports[next(9)] + " (msg:\"r\"; " + flows[next(4)] + "content:\"" +
                    tokens[next(5)] + "\"; sid:" + std::to_string(i + 1) + ";)");
  }
  std::vector<Rule> all;
  for (const std::string& t : texts) all.push_back(Parse(t));
  std::string err;
  auto det = Detector::Build(std::move(all), &err);
  ASSERT_NE(det, nullptr) << err;
  EXPECT_GT(det->stats().header_groups, 20u);
  auto scratch = det->NewScratch(&err);
  const std::array<uint8_t, 16> hosts[] = {
      {10, 0, 0, 1}, {10, 1, 2, 3}, {192, 0, 2, 1}, {8, 8, 8, 8}};
  const uint16_t pports[] = {80, 445, 139, 53, 1234, 50000, 8050, 22};
  const Protocol apps[] = {Protocol::kIp, Protocol::kHttp, Protocol::kSmb, Protocol::kDcerpc,
                           Protocol::kDns};
  const Protocol transports[] = {Protocol::kTcp, Protocol::kUdp, Protocol::kIcmp};
  size_t alerts = 0;
  for (int k = 0; k < 5000; ++k) {
    PacketMeta p;
    p.transport = transports[next(3)];
    p.app = p.transport == Protocol::kIcmp ? Protocol::kIp : apps[next(5)];
    p.src = hosts[next(4)];
    p.dst = hosts[next(4)];
    p.src_port = pports[next(8)];
    p.dst_port = pports[next(8)];
    p.to_server = next(2) == 0;
    p.established = next(2) == 0;
    std::string payload = "..";
    for (int t = 0; t < 3; ++t) {
      const size_t tok = next(5);
      payload += std::string(token_bytes[tok], token_len[tok]) + ".";
    }
    p.payload_size = static_cast<uint32_t>(payload.size());
    Buffers b;
    b.Set(Buffer::kPacket, Bytes(payload));
    uint32_t out[512];
    std::vector<uint32_t> got, want;
    const size_t n = det->Inspect(p, b, nullptr, *scratch, out);
    for (size_t i = 0; i < n; ++i) got.push_back(det->rule(out[i]).sid);
    for (uint32_t r = 0; r < det->size(); ++r) {
      if (det->Matches(r, p, b, nullptr, *scratch)) want.push_back(det->rule(r).sid);
    }
    ASSERT_EQ(got, want) << "packet " << k;
    alerts += got.size();
  }
  EXPECT_GT(alerts, 2000u);  // the draw exercises matches, not only misses
}

// `pass` (Suricata's default action order: pass first): a matching pass rule ends the packet's
// inspection wherever it is in the file, so no other rule alerts on that packet; it does not
// alert itself, and its flowbits apply. A pass rule that does not match changes nothing.
TEST(DetectState, PassRuleEndsThePacketsInspection) {
  std::string err;
  auto det = Detector::Build(
      {Parse("alert tcp any any -> any any (msg:\"a\"; content:\"evil\"; sid:1;)"),
       Parse("drop tcp any any -> any any (msg:\"d\"; content:\"evil\"; sid:2;)"),
       Parse("pass tcp any any -> any 80 (msg:\"p\"; content:\"trusted\"; flowbits:set,ok; "
             "sid:3;)"),
       Parse("alert tcp any any -> any any (msg:\"b\"; flowbits:isset,ok; content:\"later\"; "
             "sid:4;)")},
      &err);
  ASSERT_NE(det, nullptr) << err;
  auto scratch = det->NewScratch(&err);
  auto sids = [&](const std::string& payload, uint16_t dport, FlowBits* bits) {
    Buffers b;
    b.Set(Buffer::kPacket, Bytes(payload));
    PacketMeta p = One::Meta();
    p.dst_port = dport;
    uint32_t out[8];
    std::vector<uint32_t> got;
    const size_t n = det->Inspect(p, b, bits, *scratch, out);
    for (size_t i = 0; i < n; ++i) got.push_back(det->rule(out[i]).sid);
    return got;
  };
  FlowBits bits;
  EXPECT_EQ(sids("evil", 80, &bits), std::vector<uint32_t>({1, 2}));
  EXPECT_EQ(sids("trusted evil", 80, &bits), std::vector<uint32_t>());        // passed
  EXPECT_EQ(sids("trusted evil", 81, &bits), std::vector<uint32_t>({1, 2}));  // pass is for 80
  EXPECT_EQ(sids("later", 80, &bits), std::vector<uint32_t>({4}));  // the pass rule's flowbit
}

// Across TCP segments: with the bytes the direction carried before the payload (the stream
// prefix), a stream rule whose fast pattern straddles the boundary is verified over prefix +
// payload; rules tied to the packet (depth, dsize, an anchored pcre, tcp-pkt, UDP) are not; a
// pattern seen whole in the prefix does not alert again, and a payload match is unchanged.
TEST(DetectStream, PatternSplitAcrossSegments) {
  std::vector<Rule> rules;
  rules.push_back(
      Parse("alert tcp any any -> any any (msg:\"s\"; content:\"EVILPATTERN\"; sid:1;)"));
  rules.push_back(
      Parse("alert tcp any any -> any any (msg:\"d\"; content:\"EVILPATTERN\"; depth:20; sid:2;)"));
  rules.push_back(
      Parse("alert tcp any any -> any any (msg:\"c\"; content:\"WOLF\"; content:\"EVILPATTERN\"; "
            "distance:0; sid:3;)"));
  rules.push_back(
      Parse("alert udp any any -> any any (msg:\"u\"; content:\"EVILPATTERN\"; sid:4;)"));
  rules.push_back(
      Parse("alert tcp any any -> any any (msg:\"z\"; content:\"EVILPATTERN\"; dsize:>0; sid:5;)"));
  rules.push_back(
      Parse("alert tcp any any -> any any (msg:\"a\"; content:\"EVILPATTERN\"; pcre:\"/^EVIL/\"; "
            "sid:6;)"));
  rules.push_back(
      Parse("alert tcp-pkt any any -> any any (msg:\"p\"; content:\"EVILPATTERN\"; sid:7;)"));
  rules.push_back(Parse(
      "alert tcp any any -> any any (msg:\"n\"; flow:no_stream; content:\"EVILPATTERN\"; sid:8;)"));
  rules.push_back(
      Parse("alert tcp any any -> any any (msg:\"w\"; content:\"DOG\"; content:\"EVILPATTERN\"; "
            "within:20; sid:9;)"));
  Many m(std::move(rules));
  ASSERT_NE(m.det, nullptr);
  EXPECT_EQ(m.stats.stream_rules, 3u);  // sids 1, 3 and 9
  auto sids = [&](const std::string& prefix, const std::string& payload,
                  Protocol transport = Protocol::kTcp) {
    Buffers b;
    b.Set(Buffer::kPacket, Bytes(payload));
    b.SetStreamPrefix(Bytes(prefix));
    PacketMeta p = One::Meta();
    p.transport = transport;
    p.payload_size = static_cast<uint32_t>(payload.size());
    return m.Sids(p, b);
  };
  using V = std::vector<uint32_t>;
  // Split: found only with the prefix, and only by the stream rules (9: DOG too far back).
  EXPECT_EQ(sids("", "TTERN and more"), V());
  EXPECT_EQ(sids("...WOLF..EVILPA", "TTERN and more"), V({1, 3}));
  EXPECT_EQ(sids("DOG............EVILPA", "TTERN"), V({1}));
  EXPECT_EQ(sids("DOG...EVILPA", "TTERN"), V({1, 9}));
  EXPECT_EQ(sids("...WOLF..EVILPA", "TTERN", Protocol::kUdp), V());  // no stream for UDP
  // The pattern's first byte is the prefix's last one, or its first byte the prefix's first.
  EXPECT_EQ(sids("EVILPATTER", "N"), V({1}));
  EXPECT_EQ(sids(std::string(kMaxStreamPrefix - 4, 'x') + "EVIL", "PATTERN"), V({1}));
  // A prefix longer than kMaxStreamPrefix is ignored, not read past.
  EXPECT_EQ(sids(std::string(kMaxStreamPrefix - 3, 'x') + "EVIL", "PATTERN"), V());
  // Whole in the prefix: it alerted with its own packet, not again.
  EXPECT_EQ(sids("..EVILPATTERN..", "zzz"), V());
  // Whole in the payload: every rule as before, once, whatever the prefix holds.
  EXPECT_EQ(sids("EVILPATTERN.WOLF", "EVILPATTERN"), V({1, 2, 5, 6, 7, 8}));
  EXPECT_EQ(sids("", "EVILPATTERN"), V({1, 2, 5, 6, 7, 8}));
  // Matches() (no prefilter) still looks at the payload alone.
  Buffers b;
  b.Set(Buffer::kPacket, Bytes("TTERN"));
  b.SetStreamPrefix(Bytes("EVILPA"));
  EXPECT_FALSE(m.det->Matches(0, One::Meta(), b, nullptr, *m.scratch));
}

// The whole ET Open 2019 set: it compiles, and the numbers are printed.
TEST(DetectEtOpen, BuildsTheWholeSet) {
  const std::string dir = std::string(VIGIL_SOURCE_DIR) + "/../shared/data/rules/et-open-2019";
  if (!std::filesystem::is_directory(dir)) GTEST_SKIP() << dir << " absent (shared data)";
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".rules") files.push_back(e.path().string());
  }
  std::sort(files.begin(), files.end());
  Classification cls;
  std::string err;
  std::vector<std::string> cls_errors;
  ASSERT_TRUE(Classification::Load(dir + "/classification.config", &cls, &cls_errors, &err));
  LoadResult loaded = LoadRules(files, DefaultVars(), &cls);
  const size_t n = loaded.rules.size();
  char tmpl[] = "/tmp/vigil-hscache-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string cache = tmpl;
  DetectorStats st;
  auto det = Detector::Build(loaded.rules, &err, &st, cache);
  ASSERT_NE(det, nullptr) << err;
  EXPECT_FALSE(st.from_cache);
  // A restart with the same rules loads the databases from the cache.
  DetectorStats again;
  auto det2 = Detector::Build(std::move(loaded.rules), &err, &again, cache);
  ASSERT_NE(det2, nullptr) << err;
  EXPECT_TRUE(again.from_cache);
  EXPECT_EQ(again.patterns, st.patterns);
  EXPECT_EQ(again.pcres, st.pcres);
  EXPECT_EQ(again.dropped.size(), st.dropped.size());
  std::printf("ET Open 2019: compiled in %.0f ms, loaded from the cache in %.0f ms\n", st.build_ms,
              again.build_ms);
  std::filesystem::remove_all(cache);
  std::printf(
      "ET Open 2019: %zu rules, %zu prefiltered, %zu always checked, %zu fast patterns in %zu "
      "databases (%zu header groups), %zu stream rules, %zu pcre databases, %zu flowbits, %zu "
      "dropped, %.1f MB of databases, built in %.0f ms\n",
      st.rules, st.prefiltered, st.always, st.patterns, st.databases, st.header_groups,
      st.stream_rules, st.pcres, st.flowbits, st.dropped.size(), st.database_bytes / 1e6,
      st.build_ms);
  EXPECT_GT(st.stream_rules, 1000u);  // most pkt_data rules are not tied to one packet
  EXPECT_EQ(st.rules, n);             // no flowbit overflow in ET Open
  EXPECT_LE(st.dropped.size(), 5u);   // pcres Hyperscan refuses only at full compile
  EXPECT_GT(st.prefiltered, st.rules * 9 / 10);
  auto scratch = det->NewScratch(&err);
  ASSERT_NE(scratch, nullptr) << err;
  // A benign HTTP request triggers a bounded amount of work and few alerts.
  const std::string req =
      "GET /index.html HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: Mozilla/5.0\r\n\r\n";
  Buffers b;
  b.Set(Buffer::kPacket, Bytes(req));
  PacketMeta p = One::Meta();
  p.src = {192, 168, 1, 10};
  p.dst = {93, 184, 216, 34};
  p.payload_size = static_cast<uint32_t>(req.size());
  uint32_t out[64];
  const auto t0 = std::chrono::steady_clock::now();
  size_t alerts = 0;
  for (int i = 0; i < 1000; ++i) alerts = det->Inspect(p, b, nullptr, *scratch, out);
  const double us =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() /
      1000;
  std::printf("ET Open 2019: a %zu-byte HTTP request inspected in %.1f us, %zu alerts\n",
              req.size(), us, alerts);
  EXPECT_LE(alerts, 5u);
  // The cached databases find the same: an ET rule's trigger, through both detectors.
  // sid 2006420: alert http $HOME_NET any -> $EXTERNAL_NET $HTTP_PORTS, content "User-Agent|3a|
  // pcsafe", flow:established,to_server.
  const std::string ua = "GET / HTTP/1.1\r\nUser-Agent: pcsafe\r\n\r\n";
  b.Set(Buffer::kPacket, Bytes(ua));
  p.dst_port = 80;
  p.app = Protocol::kHttp;
  auto scratch2 = det2->NewScratch(&err);
  uint32_t out2[64];
  const size_t a1 = det->Inspect(p, b, nullptr, *scratch, out);
  const size_t a2 = det2->Inspect(p, b, nullptr, *scratch2, out2);
  ASSERT_EQ(a1, a2);
  bool found = false;
  for (size_t i = 0; i < a1; ++i) {
    EXPECT_EQ(det->rule(out[i]).sid, det2->rule(out2[i]).sid);
    found |= det->rule(out[i]).sid == 2006420;
  }
  EXPECT_TRUE(found) << a1 << " alerts, none sid 2006420";
  p.app = Protocol::kIp;  // not identified as HTTP: the http rule does not apply
  for (size_t i = 0, n2 = det->Inspect(p, b, nullptr, *scratch, out); i < n2; ++i) {
    EXPECT_NE(det->rule(out[i]).sid, 2006420u);
  }
}

}  // namespace
}  // namespace vigil::rules
