#include "rules/lang/rule_parser.h"

#include <gtest/gtest.h>
#include <hs/hs.h>

#include <string>

#include "rules/lang/loader.h"

namespace vigil::rules {
namespace {

class RuleParserTest : public ::testing::Test {
 protected:
  RuleParserTest() : vars_(DefaultVars()) {
    classification_.Add({"trojan-activity", "A Network Trojan was Detected", 1});
    classification_.Add({"misc-activity", "Misc activity", 3});
    context_.vars = &vars_;
    context_.classification = &classification_;
    context_.file = "t.rules";
    context_.line = 7;
  }

  std::optional<Rule> Parse(const std::string& options,
                            const std::string& header = "alert tcp any any -> any any") {
    rejection_ = Rejection{};
    return ParseRule(header + " (" + options + ")", context_, &rejection_);
  }

  // Parses with sid:1 appended; fails the test if rejected.
  Rule Ok(const std::string& options) {
    auto r = Parse(options + " sid:1;");
    EXPECT_TRUE(r.has_value()) << rejection_.ToString();
    return r ? *r : Rule{};
  }

  // Expects a rejection naming `keyword`, with `reason_part` in the reason.
  void Bad(const std::string& options, const std::string& keyword,
           const std::string& reason_part = "") {
    auto r = Parse(options + " sid:99;");
    ASSERT_FALSE(r.has_value()) << options;
    EXPECT_EQ(rejection_.keyword, keyword) << options << " -> " << rejection_.ToString();
    EXPECT_NE(rejection_.reason.find(reason_part), std::string::npos)
        << options << " -> " << rejection_.reason;
    EXPECT_EQ(rejection_.file, "t.rules");
    EXPECT_EQ(rejection_.line, 7);
  }

  const Content& C(const Rule& r, size_t i) { return std::get<Content>(r.matches.at(i)); }
  const Pcre& P(const Rule& r, size_t i) { return std::get<Pcre>(r.matches.at(i)); }

  Vars vars_;
  Classification classification_;
  ParseContext context_;
  Rejection rejection_;
};

TEST_F(RuleParserTest, HeaderFields) {
  auto r = Parse("msg:\"x\"; sid:5;", "drop udp $HOME_NET 53 <> $EXTERNAL_NET [1024:,!2000]");
  ASSERT_TRUE(r) << rejection_.ToString();
  EXPECT_EQ(r->action, Action::kDrop);
  EXPECT_EQ(r->protocol, Protocol::kUdp);
  EXPECT_TRUE(r->bidirectional);
  EXPECT_TRUE(r->source.ContainsV4(0x0a000001));
  EXPECT_FALSE(r->destination.ContainsV4(0x0a000001));
  EXPECT_TRUE(r->destination.ContainsV4(0x08080808));
  EXPECT_TRUE(r->source_ports.Contains(53));
  EXPECT_FALSE(r->source_ports.Contains(54));
  EXPECT_TRUE(r->destination_ports.Contains(1024));
  EXPECT_FALSE(r->destination_ports.Contains(2000));
  EXPECT_FALSE(r->destination_ports.Contains(80));
  for (const char* action : {"alert", "drop", "reject", "pass"}) {
    EXPECT_TRUE(Parse("sid:1;", std::string(action) + " ip any any -> any any")) << action;
  }
  for (const char* proto : {"ip", "tcp", "udp", "icmp", "http", "dns", "tls", "smb", "dcerpc",
                            "krb5", "ftp", "smtp", "ssh", "tcp-pkt"}) {
    EXPECT_TRUE(Parse("sid:1;", std::string("alert ") + proto + " any any -> any any")) << proto;
  }
  EXPECT_EQ(Parse("sid:1;", "alert http any any -> any any")->protocol, Protocol::kHttp);
}

TEST_F(RuleParserTest, HeaderErrors) {
  EXPECT_FALSE(Parse("sid:1;", "log tcp any any -> any any"));
  EXPECT_EQ(rejection_.keyword, "action");
  EXPECT_FALSE(Parse("sid:1;", "alert foo any any -> any any"));
  EXPECT_EQ(rejection_.keyword, "protocol");
  EXPECT_FALSE(Parse("sid:1;", "alert tcp any any <- any any"));
  EXPECT_EQ(rejection_.keyword, "direction");
  EXPECT_FALSE(Parse("sid:1;", "alert tcp any any -> any"));
  EXPECT_EQ(rejection_.keyword, "header");
  EXPECT_FALSE(Parse("sid:1;", "alert tcp $NOPE any -> any any"));
  EXPECT_EQ(rejection_.keyword, "address");
  EXPECT_NE(rejection_.reason.find("unknown variable $NOPE"), std::string::npos);
  EXPECT_EQ(rejection_.sid, 1u);
  EXPECT_FALSE(Parse("sid:1;", "alert tcp 1.2.3.999 any -> any any"));
  EXPECT_EQ(rejection_.keyword, "address");
  EXPECT_FALSE(Parse("sid:1;", "alert tcp any 70000 -> any any"));
  EXPECT_EQ(rejection_.keyword, "port");
  EXPECT_FALSE(Parse("sid:1;", "alert tcp any $HTTP_PORTX -> any any"));
  EXPECT_EQ(rejection_.keyword, "port");
  EXPECT_FALSE(Parse("sid:1;", "alert tcp !any any -> any any"));
  EXPECT_EQ(rejection_.keyword, "address");
  EXPECT_FALSE(ParseRule("alert tcp any any -> any any sid:1;", context_, &rejection_));
  EXPECT_EQ(rejection_.keyword, "rule");
  EXPECT_FALSE(ParseRule("alert tcp any any -> any any (sid:1;", context_, &rejection_));
  EXPECT_EQ(rejection_.keyword, "rule");
}

TEST_F(RuleParserTest, Identity) {
  auto r =
      Ok("msg:\"a \\\"quoted\\\" \\; msg\"; rev:3; gid:2; classtype:trojan-activity; "
         "reference:url,example.com/a; reference:cve,2019-0001; "
         "metadata:created_at 2010_07_30, former_category TROJAN, flag;");
  EXPECT_EQ(r.msg, "a \"quoted\" ; msg");
  EXPECT_EQ(r.sid, 1u);
  EXPECT_EQ(r.rev, 3u);
  EXPECT_EQ(r.gid, 2u);
  EXPECT_EQ(r.classtype, "trojan-activity");
  EXPECT_EQ(r.category, "A Network Trojan was Detected");
  EXPECT_EQ(r.priority, 1);
  ASSERT_EQ(r.references.size(), 2u);
  EXPECT_EQ(r.references[1].system, "cve");
  EXPECT_EQ(r.references[1].id, "2019-0001");
  ASSERT_EQ(r.metadata.size(), 3u);
  EXPECT_EQ(r.metadata[1].first, "former_category");
  EXPECT_EQ(r.metadata[1].second, "TROJAN");
  EXPECT_EQ(r.metadata[2].second, "");
  EXPECT_EQ(Ok("classtype:Trojan-Activity; priority:4;").priority, 4);
  EXPECT_EQ(Ok("msg:\"x\";").priority, 3);
  EXPECT_FALSE(r.text.empty());
  EXPECT_EQ(r.line, 7);
}

TEST_F(RuleParserTest, IdentityErrors) {
  EXPECT_FALSE(Parse("msg:\"no sid\";"));
  EXPECT_EQ(rejection_.keyword, "sid");
  EXPECT_EQ(rejection_.reason, "missing sid");
  EXPECT_FALSE(rejection_.sid.has_value());
  Bad("sid:2;", "sid", "twice");
  EXPECT_FALSE(Parse("sid:0;"));
  EXPECT_FALSE(Parse("sid:4294967296;"));
  EXPECT_FALSE(Parse("sid:12a;"));
  Bad("classtype:nope;", "classtype", "unknown classtype");
  Bad("classtype:misc-activity; classtype:misc-activity;", "classtype", "twice");
  Bad("priority:0;", "priority");
  Bad("priority:256;", "priority");
  Bad("reference:nocomma;", "reference");
  Bad("msg:unquoted;", "msg");
  Bad("msg:\"a\"b\";", "msg");
  Bad("msg;", "msg", "needs a value");
  Bad("nocase:1;", "nocase");
  // Without a classification, classtypes stay unresolved.
  context_.classification = nullptr;
  auto r = Ok("classtype:whatever;");
  EXPECT_EQ(r.classtype, "whatever");
  EXPECT_EQ(r.category, "");
}

TEST_F(RuleParserTest, ContentDecoding) {
  auto r =
      Ok("content:\"GET |20 2f|a\\\"b\\;c\\\\d\\:\"; content:!\"|00 01 FF|\"; content:\"a|7C|b\";");
  ASSERT_EQ(r.matches.size(), 3u);
  EXPECT_EQ(C(r, 0).bytes, std::string("GET  /a\"b;c\\d:"));
  EXPECT_FALSE(C(r, 0).negated);
  EXPECT_EQ(C(r, 1).bytes, std::string("\x00\x01\xff", 3));
  EXPECT_TRUE(C(r, 1).negated);
  EXPECT_EQ(C(r, 2).bytes, "a|b");
  EXPECT_EQ(C(r, 0).buffer, Buffer::kPacket);
  EXPECT_EQ(Ok("content: ! \"x\";").matches.size(), 1u);
}

TEST_F(RuleParserTest, ContentErrors) {
  Bad("content:\"|4|\";", "content", "odd number");
  Bad("content:\"|4g|\";", "content", "bad hex");
  Bad("content:\"|41\";", "content", "unterminated");
  Bad("content:\"a\\xb\";", "content", "bad escape");
  Bad("content:\"\";", "content", "empty");
  Bad("content:abc;", "content", "quoted");
  Bad("content:\"a\"b\";", "content", "unescaped");
  Bad("content:\"abc\\\";", "content");
  Bad("content:\"abc", "content");
}

TEST_F(RuleParserTest, ContentModifiers) {
  auto r =
      Ok("content:\"abcd\"; nocase; offset:2; depth:10; fast_pattern; rawbytes; "
         "content:\"ef\"; distance:-3; within:5; content:\"gh\"; distance:0;");
  const Content& a = C(r, 0);
  EXPECT_TRUE(a.nocase);
  EXPECT_TRUE(a.rawbytes);
  EXPECT_EQ(a.offset, 2u);
  EXPECT_EQ(a.depth, 10u);
  EXPECT_TRUE(a.fast_pattern);
  EXPECT_FALSE(a.relative());
  EXPECT_EQ(C(r, 1).distance, -3);
  EXPECT_EQ(C(r, 1).within, 5u);
  EXPECT_TRUE(C(r, 1).relative());
  EXPECT_EQ(C(r, 2).distance, 0);
  EXPECT_FALSE(C(r, 2).within.has_value());

  auto only = Ok("content:\"abcdef\"; fast_pattern:only;");
  EXPECT_TRUE(C(only, 0).fast_pattern_only);
  auto chop = Ok("content:\"abcdef\"; fast_pattern:2,3;");
  ASSERT_TRUE(C(chop, 0).fast_pattern_chop.has_value());
  EXPECT_EQ(C(chop, 0).fast_pattern_chop->first, 2);
  EXPECT_EQ(C(chop, 0).fast_pattern_chop->second, 3);
  // The first content of a buffer may be relative: it is relative to the buffer's start.
  EXPECT_EQ(C(Ok("content:\"ab\"; within:10;"), 0).within, 10u);
}

TEST_F(RuleParserTest, ContentModifierErrors) {
  Bad("nocase; content:\"a\";", "nocase", "no preceding content");
  Bad("distance:0; content:\"a\";", "distance", "no preceding content");
  Bad("within:4; content:\"a\";", "within", "no preceding content");
  Bad("content:\"abcd\"; depth:3;", "depth", "smaller than");
  Bad("content:\"a\"; content:\"abcd\"; within:3;", "within", "smaller than");
  Bad("content:\"a\"; nocase; nocase;", "nocase", "twice");
  Bad("content:\"a\"; rawbytes; rawbytes;", "rawbytes", "twice");
  Bad("content:\"a\"; offset:1; offset:2;", "offset", "twice");
  Bad("content:\"a\"; content:\"b\"; offset:1; distance:2;", "distance", "conflicting");
  Bad("content:\"a\"; content:\"b\"; within:2; depth:2;", "depth", "conflicting");
  Bad("content:\"a\"; depth:0;", "depth", "at least 1");
  Bad("content:\"a\"; offset:-1;", "offset");
  Bad("content:\"a\"; offset:65536;", "offset");
  Bad("content:\"a\"; distance:70000;", "distance");
  Bad("content:\"a\"; offset:x;", "offset", "byte_extract");
  Bad("content:\"a\"; fast_pattern; content:\"b\"; fast_pattern;", "fast_pattern", "only one");
  Bad("content:!\"abc\"; fast_pattern:only;", "fast_pattern", "negated");
  Bad("content:\"a\"; content:\"abc\"; distance:0; fast_pattern:only;", "fast_pattern");
  Bad("content:\"abc\"; fast_pattern:2,5;", "fast_pattern", "beyond");
  Bad("content:\"abc\"; fast_pattern:x;", "fast_pattern");
}

TEST_F(RuleParserTest, LegacyModifiersAndStickyBuffers) {
  auto r = Ok(
      "content:\"GET\"; http_method; content:\"/a\"; http_uri; content:\"/b\"; http_uri; "
      "distance:0; uricontent:\"/c\"; content:\"raw\"; http_raw_uri; content:\"h\"; http_header; "
      "content:\"k\"; http_cookie; content:\"b\"; http_client_body; content:\"u\"; "
      "http_user_agent; content:\"e.com\"; http_host; content:\"200\"; http_stat_code; "
      "content:\"OK\"; http_stat_msg; content:\"s\"; http_server_body; content:\"rh\"; "
      "http_raw_header;");
  const Buffer want[] = {Buffer::kHttpMethod, Buffer::kHttpUri,         Buffer::kHttpUri,
                         Buffer::kHttpUri,    Buffer::kHttpRawUri,      Buffer::kHttpHeader,
                         Buffer::kHttpCookie, Buffer::kHttpRequestBody, Buffer::kHttpUserAgent,
                         Buffer::kHttpHost,   Buffer::kHttpStatCode,    Buffer::kHttpStatMsg,
                         Buffer::kFileData,   Buffer::kHttpRawHeader};
  ASSERT_EQ(r.matches.size(), std::size(want));
  for (size_t i = 0; i < std::size(want); ++i) {
    EXPECT_EQ(C(r, i).buffer, want[i]) << i << " " << BufferName(C(r, i).buffer);
  }

  // Sticky: applies to every following content, until the next sticky keyword.
  auto s = Ok(
      "content:\"p\"; http.uri; content:\"u1\"; content:\"u2\"; distance:0; dns_query; "
      "content:\"q\"; tls.sni; content:\"t\"; tls_sni; content:\"t2\"; file_data; content:\"f\"; "
      "http.user_agent; content:\"ua\"; http.host; content:\"h\"; http.method; content:\"m\"; "
      "http.header; content:\"hd\"; http.request_body; content:\"rb\"; dns.query; content:\"d\"; "
      "ja3.hash; content:\"0123\"; smb.share; content:\"IPC$\"; smb.named_pipe; content:\"p\"; "
      "file.name; content:\"n\"; http_header_names; content:\"Host\"; pkt_data; content:\"z\";");
  const Buffer want_s[] = {
      Buffer::kPacket,   Buffer::kHttpUri,         Buffer::kHttpUri,    Buffer::kDnsQuery,
      Buffer::kTlsSni,   Buffer::kTlsSni,          Buffer::kFileData,   Buffer::kHttpUserAgent,
      Buffer::kHttpHost, Buffer::kHttpMethod,      Buffer::kHttpHeader, Buffer::kHttpRequestBody,
      Buffer::kDnsQuery, Buffer::kJa3Hash,         Buffer::kSmbShare,   Buffer::kSmbNamedPipe,
      Buffer::kFileName, Buffer::kHttpHeaderNames, Buffer::kPacket};
  ASSERT_EQ(s.matches.size(), std::size(want_s));
  for (size_t i = 0; i < std::size(want_s); ++i) {
    EXPECT_EQ(C(s, i).buffer, want_s[i]) << i << " " << BufferName(C(s, i).buffer);
  }
  // A legacy modifier naming the sticky buffer it is already in is fine.
  EXPECT_EQ(C(Ok("http.uri; content:\"a\"; http_uri;"), 0).buffer, Buffer::kHttpUri);
  EXPECT_EQ(StickyBuffer("http.uri"), Buffer::kHttpUri);
  EXPECT_EQ(StickyBuffer("http_uri"), std::nullopt);
  EXPECT_EQ(ContentModifierBuffer("http_uri"), Buffer::kHttpUri);
  EXPECT_STREQ(BufferName(Buffer::kHttpUri), "http.uri");
}

TEST_F(RuleParserTest, BufferErrors) {
  Bad("http_uri; content:\"a\";", "http_uri", "no preceding content");
  Bad("content:\"a\"; http_uri; http_header;", "http_header", "conflicting buffers");
  Bad("http.uri; content:\"a\"; http_header;", "http_header", "conflicting buffers");
  Bad("dns_query; uricontent:\"a\";", "uricontent", "conflicts");
  Bad("http.uri; pcre:\"/a/H\";", "pcre", "conflicts");
  Bad("file_data:1; content:\"a\";", "file_data", "takes no value");
  // Relative chains are per buffer: the uri content has no predecessor in http.uri (fine, from
  // the start), but a relative pcre outside a sticky buffer needs one.
  EXPECT_TRUE(Parse("content:\"a\"; content:\"b\"; http_uri; distance:0; sid:1;"));
  Bad("content:\"a\"; pcre:\"/b/UR\";", "pcre", "no preceding match in http.uri");
  EXPECT_TRUE(Parse("file_data; pcre:\"/b/R\"; sid:1;")) << rejection_.ToString();
}

TEST_F(RuleParserTest, Pcre) {
  auto r =
      Ok("content:\"x\"; pcre:\"/a.b/smiR\"; pcre:\"!/^c\\x3b/U\"; pcre:!\"/d/H\"; "
         "pcre:\"/e/A\"; pcre:\"/f # comment/x\"; pcre:\"/g\\;h/GBO\";");
  const Pcre& a = P(r, 1);
  EXPECT_EQ(a.source, "a.b");
  EXPECT_EQ(a.expression, "a.b");
  EXPECT_EQ(a.hs_flags, unsigned{HS_FLAG_DOTALL | HS_FLAG_MULTILINE | HS_FLAG_CASELESS});
  EXPECT_TRUE(a.relative);
  EXPECT_FALSE(a.negated);
  EXPECT_EQ(a.buffer, Buffer::kPacket);
  EXPECT_TRUE(P(r, 2).negated);
  EXPECT_EQ(P(r, 2).buffer, Buffer::kHttpUri);
  EXPECT_EQ(P(r, 2).source, "^c\\x3b");
  EXPECT_TRUE(P(r, 3).negated);
  EXPECT_EQ(P(r, 3).buffer, Buffer::kHttpHeader);
  EXPECT_EQ(P(r, 4).expression, "\\A(?:e)");
  EXPECT_EQ(P(r, 5).expression, "(?x:f # comment\n)");
  EXPECT_EQ(P(r, 6).source, "g\\;h");
  // Each buffer flag.
  const std::pair<char, Buffer> flags[] = {
      {'U', Buffer::kHttpUri},     {'I', Buffer::kHttpRawUri},    {'P', Buffer::kHttpRequestBody},
      {'Q', Buffer::kFileData},    {'H', Buffer::kHttpHeader},    {'D', Buffer::kHttpRawHeader},
      {'M', Buffer::kHttpMethod},  {'C', Buffer::kHttpCookie},    {'S', Buffer::kHttpStatCode},
      {'Y', Buffer::kHttpStatMsg}, {'V', Buffer::kHttpUserAgent}, {'W', Buffer::kHttpHost},
      {'Z', Buffer::kHttpRawHost}};
  for (const auto& [flag, buffer] : flags) {
    auto f = Ok(std::string("pcre:\"/x/") + flag + "\";");
    ASSERT_EQ(f.matches.size(), 1u) << flag;
    EXPECT_EQ(P(f, 0).buffer, buffer) << flag;
  }
  // After a sticky buffer, a pcre without a buffer flag inspects it.
  EXPECT_EQ(P(Ok("dns.query; pcre:\"/x/\";"), 0).buffer, Buffer::kDnsQuery);
  // An expression that can match empty gets HS_FLAG_ALLOWEMPTY.
  EXPECT_TRUE(P(Ok("pcre:\"/a*/\";"), 0).hs_flags & HS_FLAG_ALLOWEMPTY);
}

TEST_F(RuleParserTest, PcreErrors) {
  Bad("pcre:\"/(a)\\1/\";", "pcre", "Back-references");
  Bad("pcre:\"/a(?=b)/\";", "pcre", "Hyperscan");
  EXPECT_EQ(rejection_.kind, RejectKind::kHyperscan);
  EXPECT_EQ(rejection_.Category(), "pcre rejected by Hyperscan");
  Bad("pcre:\"/a(/\";", "pcre", "Hyperscan");
  Bad("pcre:\"/a/q\";", "pcre", "unknown flag");
  Bad("pcre:\"/a/UH\";", "pcre", "conflicting buffer flags");
  Bad("pcre:\"/a/E\";", "pcre", "not supported");
  Bad("pcre:\"a\";", "pcre", "/regex/flags");
  Bad("pcre:\"//\";", "pcre", "empty");
  Bad("pcre:/a/;", "pcre", "quoted");
  Bad("pcre:!\"!/a/\";", "pcre", "twice");
  Bad("pcre:\"/a/R\";", "pcre", "no preceding match");
}

TEST_F(RuleParserTest, Flow) {
  auto r = Ok("flow:established,to_server;");
  EXPECT_EQ(r.flow.direction, FlowDirection::kToServer);
  EXPECT_EQ(r.flow.state, FlowState::kEstablished);
  r = Ok("flow: from_server , not_established, only_stream;");
  EXPECT_EQ(r.flow.direction, FlowDirection::kToClient);
  EXPECT_EQ(r.flow.state, FlowState::kNotEstablished);
  EXPECT_EQ(r.flow.stream, FlowStream::kOnlyStream);
  r = Ok("flow:stateless,from_client,no_stream;");
  EXPECT_EQ(r.flow.state, FlowState::kStateless);
  EXPECT_EQ(r.flow.direction, FlowDirection::kToServer);
  EXPECT_EQ(r.flow.stream, FlowStream::kNoStream);
  EXPECT_EQ(Ok("flow:to_client;").flow.state, FlowState::kAny);
  Bad("flow:to_server,to_client;", "flow", "conflicting directions");
  Bad("flow:established,stateless;", "flow", "conflicting states");
  Bad("flow:only_stream,no_stream;", "flow", "conflicting stream");
  Bad("flow:sideways;", "flow", "unknown option");
  Bad("flow:only_frag;", "flow", "not supported");
  Bad("flow:established; flow:to_server;", "flow", "twice");
}

TEST_F(RuleParserTest, Flowbits) {
  auto r =
      Ok("flowbits:set,a.b; flowbits:isset,x|y; flowbits:isnotset,n; flowbits:unset,a&b; "
         "flowbits:toggle,t; flowbits:noalert;");
  ASSERT_EQ(r.flowbits.size(), 5u);
  EXPECT_EQ(r.flowbits[0].command, FlowbitsCommand::kSet);
  EXPECT_EQ(r.flowbits[0].names, std::vector<std::string>{"a.b"});
  EXPECT_EQ(r.flowbits[1].command, FlowbitsCommand::kIsSet);
  EXPECT_TRUE(r.flowbits[1].any_of);
  EXPECT_EQ(r.flowbits[1].names, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(r.flowbits[2].command, FlowbitsCommand::kIsNotSet);
  EXPECT_EQ(r.flowbits[3].command, FlowbitsCommand::kUnset);
  EXPECT_FALSE(r.flowbits[3].any_of);
  EXPECT_EQ(r.flowbits[3].names.size(), 2u);
  EXPECT_EQ(r.flowbits[4].command, FlowbitsCommand::kToggle);
  EXPECT_TRUE(r.noalert);
  EXPECT_TRUE(Ok("noalert;").noalert);
  EXPECT_TRUE(Ok("flowbits: set, spaced;").flowbits.size() == 1);
  Bad("flowbits:set;", "flowbits");
  Bad("flowbits:flip,a;", "flowbits", "unknown command");
  Bad("flowbits:set,a|b;", "flowbits", "only allowed");
  Bad("flowbits:isset,a|b&c;", "flowbits", "mix");
  Bad("flowbits:set,a b;", "flowbits", "bad character");
  Bad("flowbits:set,a&;", "flowbits", "empty");
}

TEST_F(RuleParserTest, Dsize) {
  auto eq = *Ok("dsize:10;").dsize;
  EXPECT_TRUE(eq.Matches(10));
  EXPECT_FALSE(eq.Matches(11));
  auto lt = *Ok("dsize:<5;").dsize;
  EXPECT_TRUE(lt.Matches(4));
  EXPECT_FALSE(lt.Matches(5));
  auto gt = *Ok("dsize: >11;").dsize;
  EXPECT_TRUE(gt.Matches(12));
  EXPECT_FALSE(gt.Matches(11));
  auto range = *Ok("dsize:10<>20;").dsize;
  EXPECT_EQ(range.op, DsizeOp::kRange);
  EXPECT_FALSE(range.Matches(10));
  EXPECT_TRUE(range.Matches(11));
  EXPECT_TRUE(range.Matches(19));
  EXPECT_FALSE(range.Matches(20));
  Bad("dsize:20<>10;", "dsize");
  Bad("dsize:<0;", "dsize");
  Bad("dsize:x;", "dsize");
  Bad("dsize:70000;", "dsize");
  Bad("dsize:1; dsize:2;", "dsize", "twice");
}

TEST_F(RuleParserTest, ThresholdAndDetectionFilter) {
  auto t = *Ok("threshold: type limit, count 2, track by_src, seconds 300;").threshold;
  EXPECT_EQ(t.type, ThresholdType::kLimit);
  EXPECT_EQ(t.track, Track::kBySrc);
  EXPECT_EQ(t.count, 2u);
  EXPECT_EQ(t.seconds, 300u);
  EXPECT_EQ(Ok("threshold:type both,track by_dst,count 1,seconds 60;").threshold->type,
            ThresholdType::kBoth);
  EXPECT_EQ(Ok("threshold:type threshold,track by_rule,count 1,seconds 60;").threshold->track,
            Track::kByRule);
  auto d = *Ok("detection_filter:track by_dst, count 4, seconds 20;").detection_filter;
  EXPECT_EQ(d.track, Track::kByDst);
  EXPECT_EQ(d.count, 4u);
  EXPECT_EQ(d.seconds, 20u);
  Bad("threshold:type limit,track by_src,count 1;", "threshold", "needs");
  Bad("threshold:type sometimes,track by_src,count 1,seconds 1;", "threshold", "type");
  Bad("threshold:type limit,track by_foo,count 1,seconds 1;", "threshold", "track");
  Bad("threshold:type limit,track by_src,count 0,seconds 1;", "threshold", "positive");
  Bad("threshold:type limit,type limit,track by_src,count 1,seconds 1;", "threshold", "twice");
  Bad("threshold:type limit,track by_src,count 1,seconds 1,color red;", "threshold", "unknown");
  Bad("threshold:limit;", "threshold", "key value");
  Bad("detection_filter:type limit,track by_src,count 1,seconds 1;", "detection_filter");
  Bad("threshold:type limit,track by_src,count 1,seconds 1; "
      "detection_filter:track by_src,count 1,seconds 1;",
      "detection_filter", "only one");
}

TEST_F(RuleParserTest, Dcerpc) {
  auto r =
      Ok("dcerpc.iface:4B324FC8-1670-01D3-1278-5A47BF6EE188,>2,any_frag; "
         "dcerpc.opnum:1,3-5;");
  ASSERT_TRUE(r.dcerpc_iface);
  EXPECT_EQ(r.dcerpc_iface->uuid, "4b324fc8-1670-01d3-1278-5a47bf6ee188");
  EXPECT_EQ(r.dcerpc_iface->op, DcerpcIface::VersionOp::kGt);
  EXPECT_EQ(r.dcerpc_iface->version, 2);
  EXPECT_TRUE(r.dcerpc_iface->any_frag);
  ASSERT_EQ(r.dcerpc_opnums.size(), 2u);
  EXPECT_EQ(r.dcerpc_opnums[1], (std::pair<uint16_t, uint16_t>{3, 5}));
  EXPECT_TRUE(Ok("dce_iface:12345678-1234-1234-1234-123456789abc; dce_opnum:0;").dcerpc_iface);
  EXPECT_EQ(C(Ok("dce_stub_data; content:\"x\";"), 0).buffer, Buffer::kDcerpcStubData);
  Bad("dcerpc.iface:1234;", "dcerpc.iface", "UUID");
  Bad("dcerpc.iface:12345678-1234-1234-1234-123456789abc,~2;", "dcerpc.iface");
  Bad("dcerpc.opnum:5-3;", "dcerpc.opnum");
  Bad("dcerpc.opnum:a;", "dcerpc.opnum");
}

// tls.fingerprint becomes its meaning on tls.cert_fingerprint (the string, nocase, exactly);
// the Kerberos keywords keep their values.
TEST_F(RuleParserTest, TlsFingerprintAndKerberos) {
  auto r = Ok("tls.fingerprint:\"90:86:A4:3b\";");
  ASSERT_EQ(r.matches.size(), 2u);
  EXPECT_EQ(C(r, 0).bytes, "90:86:A4:3b");
  EXPECT_TRUE(C(r, 0).nocase);
  EXPECT_EQ(C(r, 0).buffer, Buffer::kTlsCertFingerprint);
  EXPECT_EQ(C(r, 0).depth, 11u);
  const auto& end = std::get<IsDataAt>(r.matches[1]);
  EXPECT_TRUE(end.relative && end.negated && end.size == 1);
  EXPECT_EQ(end.buffer, Buffer::kTlsCertFingerprint);
  Bad("tls.fingerprint:!\"90:86\";", "tls.fingerprint", "negation");
  Bad("tls.fingerprint:90:86;", "tls.fingerprint", "quoted");
  Bad("tls.fingerprint:\"90:8\";", "tls.fingerprint", "hex pairs");
  Bad("tls.fingerprint:\"90-86\";", "tls.fingerprint", "hex pairs");

  auto weak = Ok("krb5.ticket_encryption: weak;");
  ASSERT_TRUE(weak.krb5_ticket_encryption);
  EXPECT_TRUE(weak.krb5_ticket_encryption->weak);
  EXPECT_FALSE(weak.krb5_ticket_encryption->negated);
  EXPECT_TRUE(Ok("krb5.ticket_encryption:!weak;").krb5_ticket_encryption->negated);
  auto list = Ok("krb5.ticket_encryption: 23, rc4-hmac-exp des-cbc-md5;");
  EXPECT_EQ(list.krb5_ticket_encryption->etypes, (std::vector<int32_t>{23, 24, 3}));
  EXPECT_EQ(Ok("krb5.ticket_encryption: -133;").krb5_ticket_encryption->etypes,
            (std::vector<int32_t>{-133}));
  Bad("krb5.ticket_encryption: rc5;", "krb5.ticket_encryption", "'rc5'");
  Bad("krb5.ticket_encryption: ;", "krb5.ticket_encryption");
  Bad("krb5.ticket_encryption:weak; krb5.ticket_encryption:23;", "krb5.ticket_encryption", "twice");
  auto k = Ok("krb5_msg_type:13; krb5_err_code:6;");
  EXPECT_EQ(k.krb5_msg_type, 13);
  EXPECT_EQ(k.krb5_err_code, 6);
  Bad("krb5_msg_type:300;", "krb5_msg_type");
  Bad("krb5_err_code:x;", "krb5_err_code");
}

// isdataat, byte_test, byte_jump and urilen: every option, the buffer they apply to, and errors.
TEST_F(RuleParserTest, ByteChecksAndUrilen) {
  auto r = Parse("content:\"a\"; http_uri; isdataat:!1,relative; isdataat:10,rawbytes; sid:1;");
  ASSERT_TRUE(r) << rejection_.ToString();
  ASSERT_EQ(r->matches.size(), 3u);
  const auto& d1 = std::get<IsDataAt>(r->matches[1]);
  EXPECT_TRUE(d1.negated && d1.relative);
  EXPECT_EQ(d1.size, 1u);
  EXPECT_EQ(d1.buffer, Buffer::kHttpUri);  // relative: the previous match's buffer
  const auto& d2 = std::get<IsDataAt>(r->matches[2]);
  EXPECT_FALSE(d2.relative || d2.negated);
  EXPECT_EQ(d2.buffer, Buffer::kPacket);  // absolute: the sticky buffer (none: pkt_data)

  r = Parse(
      "file_data; byte_test:2,!&,0x0F00,-3,relative,little,bitmask 0x3f0; "
      "byte_test:4,>=,100,0,string,hex; byte_test:1,!,5,2,dce; sid:2;");
  ASSERT_TRUE(r) << rejection_.ToString();
  const auto& t = std::get<ByteTest>(r->matches[0]);
  EXPECT_EQ(t.read.nbytes, 2);
  EXPECT_EQ(t.op, ByteOp::kAnd);
  EXPECT_TRUE(t.negated);
  EXPECT_EQ(t.value, 0x0F00u);
  EXPECT_EQ(t.read.offset, -3);
  EXPECT_TRUE(t.read.relative && t.read.little_endian);
  EXPECT_EQ(t.read.bitmask, 0x3f0u);
  EXPECT_EQ(t.buffer, Buffer::kFileData);
  const auto& t2 = std::get<ByteTest>(r->matches[1]);
  EXPECT_EQ(t2.op, ByteOp::kGe);
  EXPECT_EQ(t2.read.base, NumberBase::kHex);
  const auto& t3 = std::get<ByteTest>(r->matches[2]);
  EXPECT_TRUE(t3.negated && t3.op == ByteOp::kEq && t3.read.little_endian);

  r = Parse(
      "content:\"x\"; byte_jump:4,1,relative,multiplier 2,align,post_offset -4,"
      "string,dec,from_beginning; sid:3;");
  ASSERT_TRUE(r) << rejection_.ToString();
  const auto& j = std::get<ByteJump>(r->matches[1]);
  EXPECT_EQ(j.read.nbytes, 4);
  EXPECT_EQ(j.read.offset, 1);
  EXPECT_EQ(j.multiplier, 2u);
  EXPECT_TRUE(j.align && j.from_beginning && !j.from_end);
  EXPECT_EQ(j.post_offset, -4);
  EXPECT_EQ(j.read.base, NumberBase::kDecimal);

  r = Parse("urilen:5<>10,raw; sid:4;");
  ASSERT_TRUE(r) << rejection_.ToString();
  ASSERT_TRUE(r->urilen);
  EXPECT_EQ(r->urilen->op, DsizeOp::kRange);
  EXPECT_TRUE(r->urilen_raw);

  Bad("byte_test:4,>,1;", "byte_test", "expected");
  Bad("byte_test:9,>,1,0;", "byte_test", "1 to 8");
  Bad("byte_test:4,~,1,0;", "byte_test", "operator");
  Bad("byte_test:4,>,1,0,hex;", "byte_test", "string");
  Bad("byte_test:4,>,1,0,sideways;", "byte_test", "unknown option");
  Bad("byte_jump:4;", "byte_jump", "expected");
  Bad("byte_jump:4,0,from_end,from_beginning;", "byte_jump", "from_beginning");
  Bad("byte_jump:4,0,multiplier 0;", "byte_jump", "multiplier");
  Bad("isdataat:x1;", "isdataat", "byte_extract");
  Bad("isdataat:1,sometimes;", "isdataat", "unknown option");
  Bad("urilen:5,cooked;", "urilen", "raw or norm");
  Bad("urilen:5; urilen:6;", "urilen", "twice");
  auto v = Parse("content:\"a\"; byte_test:4,>,count,0; sid:5;");
  EXPECT_FALSE(v);
  EXPECT_EQ(rejection_.kind, RejectKind::kUnsupported);  // a byte_extract variable
}

TEST_F(RuleParserTest, UnsupportedAndUnknownKeywords) {
  for (const char* kw : {"byte_math:bytes 1,offset 0,oper +,rvalue 1,result x", "lua:x.lua",
                         "ssl_state:client_hello", "flags:S", "byte_extract:4,0,x"}) {
    auto r = Parse(std::string("content:\"a\"; ") + kw + "; sid:42;");
    ASSERT_FALSE(r) << kw;
    EXPECT_EQ(rejection_.kind, RejectKind::kUnsupported) << kw;
    EXPECT_EQ(rejection_.sid, 42u);
    const std::string name = std::string(kw).substr(0, std::string(kw).find(':'));
    EXPECT_EQ(rejection_.keyword, name);
    EXPECT_EQ(rejection_.Category(), "keyword " + name);
    EXPECT_EQ(rejection_.ToString(), "t.rules:7: sid 42: " + name + ": not supported");
  }
  Bad("frobnicate:1;", "frobnicate", "unknown keyword");
  EXPECT_EQ(rejection_.Category(), "unknown keyword frobnicate");
  Bad("msg:\"x\" sid:1;", "msg");
}

TEST_F(RuleParserTest, Tokenizing) {
  EXPECT_TRUE(Parse("msg:\"x\"; sid:1;  "));
  EXPECT_FALSE(Parse("msg:\"x\"; sid:1"));
  EXPECT_EQ(rejection_.reason, "option not terminated by ';'");
  EXPECT_FALSE(Parse(":x; sid:1;"));
  EXPECT_FALSE(
      ParseRule(std::string("alert tcp any any -> any any (sid:1;\x01)"), context_, &rejection_));
  EXPECT_FALSE(ParseRule(std::string(kMaxRuleText + 1, 'a'), context_, &rejection_));
  ParseContext no_vars;
  EXPECT_FALSE(ParseRule("alert tcp any any -> any any (sid:1;)", no_vars, &rejection_));
}

}  // namespace
}  // namespace vigil::rules
