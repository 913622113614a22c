// HttpParser on crafted byte streams: framing (Content-Length, chunked, close, HEAD, 1xx/204/304),
// pipelining, splitting at every byte, gaps, malformed input and NTLMSSP in auth headers.
#include "dataplane/proto/http.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tests/unit/proto/collect_sink.h"

namespace vigil::proto {
namespace {

using testing::CollectSink;

std::span<const uint8_t> B(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

// One flow: a parser and the sink collecting its events.
struct Flow {
  std::unique_ptr<HttpParser> p = std::make_unique<HttpParser>();
  CollectSink sink;
  void Req(std::string_view s) { p->OnData(Direction::kToServer, B(s), sink); }
  void Resp(std::string_view s) { p->OnData(Direction::kToClient, B(s), sink); }
  void End() { p->OnEnd(sink); }
  std::vector<std::string> Of(std::string_view type) const {
    std::vector<std::string> out;
    for (size_t i = 0; i < sink.events.size(); ++i) {
      if (sink.types[i] == type) out.push_back(sink.events[i]);
    }
    return out;
  }
  std::vector<std::string> Http() const { return Of("http"); }
  std::vector<std::string> Anomalies() const { return Of("anomaly"); }
  bool HasAnomaly(std::string_view name) const {
    return sink.CountContaining("\"event\":\"" + std::string(name) + "\"") > 0;
  }
};

bool Contains(const std::string& hay, std::string_view needle) {
  return hay.find(needle) != std::string::npos;
}

std::string Base64(const std::vector<uint8_t>& in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < in.size(); i += 3) {
    const uint32_t b0 = in[i];
    const uint32_t b1 = i + 1 < in.size() ? in[i + 1] : 0;
    const uint32_t b2 = i + 2 < in.size() ? in[i + 2] : 0;
    const uint32_t v = b0 << 16 | b1 << 8 | b2;
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += i + 1 < in.size() ? kAlphabet[v >> 6 & 63] : '=';
    out += i + 2 < in.size() ? kAlphabet[v & 63] : '=';
  }
  return out;
}

void Put16(std::vector<uint8_t>& v, size_t at, uint16_t x) {
  v[at] = static_cast<uint8_t>(x);
  v[at + 1] = static_cast<uint8_t>(x >> 8);
}
void Put32(std::vector<uint8_t>& v, size_t at, uint32_t x) {
  for (int i = 0; i < 4; ++i) v[at + i] = static_cast<uint8_t>(x >> (8 * i));
}
std::vector<uint8_t> Utf16(std::string_view s) {
  std::vector<uint8_t> out;
  for (char c : s) {
    out.push_back(static_cast<uint8_t>(c));
    out.push_back(0);
  }
  return out;
}

// An NTLMSSP AUTHENTICATE message (MS-NLMP 2.2.1.3), Unicode, with Version 6.1 build 7601 rev 15.
std::vector<uint8_t> NtlmAuthenticate(std::string_view domain, std::string_view user,
                                      std::string_view host) {
  std::vector<uint8_t> m(72, 0);
  const char sig[8] = {'N', 'T', 'L', 'M', 'S', 'S', 'P', 0};
  for (int i = 0; i < 8; ++i) m[i] = static_cast<uint8_t>(sig[i]);
  Put32(m, 8, 3);
  auto add = [&m](size_t desc, const std::vector<uint8_t>& payload) {
    Put16(m, desc, static_cast<uint16_t>(payload.size()));
    Put16(m, desc + 2, static_cast<uint16_t>(payload.size()));
    Put32(m, desc + 4, static_cast<uint32_t>(m.size()));
    m.insert(m.end(), payload.begin(), payload.end());
  };
  add(28, Utf16(domain));
  add(36, Utf16(user));
  add(44, Utf16(host));
  add(12, std::vector<uint8_t>(24, 0));                // LM response
  add(20, std::vector<uint8_t>(48, 0x11));             // NTLMv2 response
  add(52, {});                                         // session key
  Put32(m, 60, 0x00000001 | 0x00000200 | 0x02000000);  // UNICODE | NTLM | VERSION
  m[64] = 6;
  m[65] = 1;
  Put16(m, 66, 7601);
  m[71] = 15;
  return m;
}

// An NTLMSSP CHALLENGE message with a Unicode target name.
// With `computer` (MsvAvNbComputerName) in TargetInfo when not empty.
std::vector<uint8_t> NtlmChallenge(std::string_view target, std::string_view computer = "") {
  std::vector<uint8_t> m(48, 0);
  const char sig[8] = {'N', 'T', 'L', 'M', 'S', 'S', 'P', 0};
  for (int i = 0; i < 8; ++i) m[i] = static_cast<uint8_t>(sig[i]);
  Put32(m, 8, 2);
  const std::vector<uint8_t> t = Utf16(target);
  Put16(m, 12, static_cast<uint16_t>(t.size()));
  Put16(m, 14, static_cast<uint16_t>(t.size()));
  Put32(m, 16, 48);
  Put32(m, 20, 0x00000001 | 0x00000200);
  for (int i = 0; i < 8; ++i) m[24 + i] = static_cast<uint8_t>(i + 1);
  m.insert(m.end(), t.begin(), t.end());
  if (!computer.empty()) {
    const std::vector<uint8_t> c = Utf16(computer);
    const uint16_t len = static_cast<uint16_t>(4 + c.size() + 4);
    Put16(m, 40, len);
    Put16(m, 42, len);
    Put32(m, 44, static_cast<uint32_t>(m.size()));
    m.insert(m.end(), {1, 0, static_cast<uint8_t>(c.size()), 0});
    m.insert(m.end(), c.begin(), c.end());
    m.insert(m.end(), {0, 0, 0, 0});
  }
  return m;
}

constexpr std::string_view kGet =
    "GET /index.html HTTP/1.1\r\n"
    "Host: example.com\r\n"
    "User-Agent: curl/8.0\r\n"
    "Accept: */*\r\n"
    "\r\n";
constexpr std::string_view kOk =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/html; charset=utf-8\r\n"
    "Content-Length: 5\r\n"
    "\r\n"
    "hello";

TEST(HttpProbe, RequestsAndResponses) {
  EXPECT_EQ(HttpParser::Probe(Direction::kToServer, B("GET / HTTP/1.1\r\n")), ProbeResult::kYes);
  EXPECT_EQ(HttpParser::Probe(Direction::kToServer, B("POST /x")), ProbeResult::kYes);
  EXPECT_EQ(HttpParser::Probe(Direction::kToServer, B("PROPFIND /dav")), ProbeResult::kYes);
  EXPECT_EQ(HttpParser::Probe(Direction::kToServer, B("OPTIONS * HTTP/1.1")), ProbeResult::kYes);
  EXPECT_EQ(HttpParser::Probe(Direction::kToServer, B("GE")), ProbeResult::kMaybe);
  EXPECT_EQ(HttpParser::Probe(Direction::kToServer, B("GET")), ProbeResult::kMaybe);
  EXPECT_EQ(HttpParser::Probe(Direction::kToServer, B("")), ProbeResult::kMaybe);
  EXPECT_EQ(HttpParser::Probe(Direction::kToServer, B("GETX /")), ProbeResult::kNo);
  EXPECT_EQ(HttpParser::Probe(Direction::kToServer, B("get / HTTP/1.1")), ProbeResult::kNo);
  EXPECT_EQ(HttpParser::Probe(Direction::kToServer, B("SSH-2.0-OpenSSH")), ProbeResult::kNo);
  EXPECT_EQ(HttpParser::Probe(Direction::kToServer, B("\x16\x03\x01")), ProbeResult::kNo);
  EXPECT_EQ(HttpParser::Probe(Direction::kToServer, B("HTTP/1.1 200 OK")), ProbeResult::kNo);
  EXPECT_EQ(HttpParser::Probe(Direction::kToClient, B("HTTP/1.1 200 OK")), ProbeResult::kYes);
  EXPECT_EQ(HttpParser::Probe(Direction::kToClient, B("HTTP/1.0 404")), ProbeResult::kYes);
  EXPECT_EQ(HttpParser::Probe(Direction::kToClient, B("HTT")), ProbeResult::kMaybe);
  EXPECT_EQ(HttpParser::Probe(Direction::kToClient, B("HTTP/2.0 200")), ProbeResult::kNo);
  EXPECT_EQ(HttpParser::Probe(Direction::kToClient, B("GET / HTTP/1.1")), ProbeResult::kNo);
}

TEST(Http, SimpleGet) {
  Flow f;
  f.Req(kGet);
  EXPECT_TRUE(f.Http().empty());  // reported when the response completes
  f.Resp(kOk);
  ASSERT_EQ(f.sink.events.size(), 1u);
  EXPECT_EQ(f.sink.events[0],
            "{\"event_type\":\"http\",\"direction\":\"to_server\",\"http\":{"
            "\"hostname\":\"example.com\",\"url\":\"/index.html\",\"http_user_agent\":\"curl/8.0\","
            "\"http_content_type\":\"text/html\",\"http_method\":\"GET\",\"protocol\":\"HTTP/1.1\","
            "\"status\":200,\"length\":5},"
            "\"message\":\"HTTP GET example.com/index.html 200 text/html 5\"}");
  f.End();
  EXPECT_EQ(f.sink.events.size(), 1u);
  EXPECT_FALSE(f.sink.unbalanced);
}

TEST(Http, PostWithBodyThenGet) {
  Flow f;
  f.Req(
      "POST /api/v4/users/login HTTP/1.1\r\n"
      "Host: localhost:8065\r\n"
      "User-Agent: Go-http-client/1.1\r\n"
      "Content-Length: 39\r\n"
      "If-None-Match: \r\n"
      "\r\n"
      "{\"login_id\":\"toto\",\"password\":\"tototo\"}"
      "GET /next HTTP/1.1\r\nHost: localhost:8065\r\n\r\n");
  f.Resp(
      "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
      "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
  const auto ev = f.Http();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_TRUE(Contains(ev[0], "\"hostname\":\"localhost\",\"http_port\":8065"));
  EXPECT_TRUE(Contains(ev[0], "\"url\":\"/api/v4/users/login\""));
  EXPECT_TRUE(Contains(ev[0], "\"http_method\":\"POST\""));
  EXPECT_TRUE(Contains(ev[0], "\"status\":201,\"length\":2"));
  EXPECT_TRUE(Contains(ev[1], "\"url\":\"/next\""));
  EXPECT_TRUE(Contains(ev[1], "\"status\":404,\"length\":0"));
  EXPECT_EQ(f.sink.messages[1], "HTTP GET localhost/next 404 - 0");
  EXPECT_TRUE(f.Anomalies().empty());
}

TEST(Http, ChunkedResponse) {
  Flow f;
  f.Req(kGet);
  f.Req(kGet);
  const std::string body =
      "5\r\nhello\r\n"
      "1A;name=value\r\nabcdefghijklmnopqrstuvwxyz\r\n"
      "0\r\n";
  f.Resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n" +
         body +
         "X-Trailer: 1\r\n\r\n"
         "HTTP/1.1 204 No Content\r\n\r\n");
  const auto ev = f.Http();
  ASSERT_EQ(ev.size(), 2u);
  // libhtp's response_message_len: chunk-size lines and CRLFs count, trailers do not.
  EXPECT_TRUE(Contains(ev[0], "\"status\":200,\"length\":" + std::to_string(body.size()))) << ev[0];
  EXPECT_TRUE(Contains(ev[1], "\"status\":204,\"length\":0"));
  EXPECT_TRUE(f.Anomalies().empty());
}

TEST(Http, ChunkedRequest) {
  Flow f;
  f.Req(
      "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
      "3\r\nGET\r\n4\r\n /x \r\n0\r\n\r\n"
      "GET /after HTTP/1.1\r\nHost: h\r\n\r\n");
  f.Resp(
      "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  const auto ev = f.Http();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_TRUE(Contains(ev[0], "\"url\":\"/up\""));
  EXPECT_TRUE(Contains(ev[1], "\"url\":\"/after\""));
  EXPECT_TRUE(f.Anomalies().empty());
}

TEST(Http, PipeliningThreeRequests) {
  Flow f;
  f.Req(
      "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
      "GET /b HTTP/1.1\r\nHost: h\r\n\r\n"
      "GET /c HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_TRUE(f.Http().empty());
  f.Resp(
      "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA"
      "HTTP/1.1 301 Moved\r\nLocation: /b/\r\nContent-Length: 2\r\n\r\nBB"
      "HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nCCC");
  const auto ev = f.Http();
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_TRUE(Contains(ev[0], "\"url\":\"/a\"") && Contains(ev[0], "\"status\":200,\"length\":1"));
  EXPECT_TRUE(Contains(ev[1], "\"url\":\"/b\"") &&
              Contains(ev[1], "\"status\":301,\"redirect\":\"/b/\",\"length\":2"));
  EXPECT_TRUE(Contains(ev[2], "\"url\":\"/c\"") && Contains(ev[2], "\"status\":404,\"length\":3"));
}

TEST(Http, HeadResponseHasNoBody) {
  Flow f;
  f.Req("HEAD /big HTTP/1.1\r\nHost: h\r\n\r\nGET /small HTTP/1.1\r\nHost: h\r\n\r\n");
  f.Resp(
      "HTTP/1.1 200 OK\r\nContent-Length: 123456\r\nContent-Type: application/zip\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  const auto ev = f.Http();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_TRUE(Contains(ev[0], "\"http_method\":\"HEAD\"") && Contains(ev[0], "\"length\":0"));
  EXPECT_TRUE(Contains(ev[1], "\"url\":\"/small\"") && Contains(ev[1], "\"length\":2"));
}

TEST(Http, NotModifiedAndNoContentHaveNoBody) {
  Flow f;
  f.Req("GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n");
  f.Resp(
      "HTTP/1.1 304 Not Modified\r\nContent-Length: 999\r\nETag: \"x\"\r\n\r\n"
      "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc");
  const auto ev = f.Http();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_TRUE(Contains(ev[0], "\"status\":304,\"length\":0"));
  EXPECT_TRUE(Contains(ev[1], "\"status\":200,\"length\":3"));
}

TEST(Http, ContinueThenFinalResponse) {
  Flow f;
  f.Req("PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
  f.Resp("HTTP/1.1 100 Continue\r\n\r\n");
  f.Req("data");
  f.Resp("HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
  const auto ev = f.Http();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_TRUE(Contains(ev[0], "\"status\":201"));
}

TEST(Http, BodyUntilClose) {
  Flow f;
  f.Req("GET /old HTTP/1.0\r\n\r\n");
  f.Resp("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n0123456789");
  f.Resp("abcdef");
  EXPECT_TRUE(f.Http().empty());
  f.End();
  const auto ev = f.Http();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_TRUE(Contains(ev[0], "\"protocol\":\"HTTP/1.0\",\"status\":200,\"length\":16"));
  EXPECT_FALSE(f.HasAnomaly("MISSING_HOST_HEADER"));  // not required in HTTP/1.0
}

TEST(Http, Http09) {
  Flow f;
  f.Req("GET /\r\n");
  f.Resp("<html>hi</html>");
  f.End();
  const auto ev = f.Http();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_TRUE(Contains(ev[0], "\"url\":\"/\",\"http_method\":\"GET\",\"length\":15")) << ev[0];
  EXPECT_FALSE(Contains(ev[0], "protocol"));
  EXPECT_FALSE(Contains(ev[0], "status"));
}

TEST(Http, MissingResponseReportedAtEnd) {
  Flow f;
  f.Req("GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n");
  f.Resp("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  ASSERT_EQ(f.Http().size(), 1u);
  f.End();
  const auto ev = f.Http();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_TRUE(Contains(ev[1], "\"url\":\"/b\""));
  EXPECT_TRUE(Contains(ev[1], "\"length\":0"));
  EXPECT_FALSE(Contains(ev[1], "status"));
  EXPECT_EQ(f.sink.messages.back(), "HTTP GET h/b (no response)");
  f.End();  // idempotent
  EXPECT_EQ(f.Http().size(), 2u);
}

TEST(Http, QueueOverflowKeepsResponsesAligned) {
  Flow f;
  const size_t n = HttpParser::kMaxPending + 2;
  for (size_t i = 0; i < n; ++i)
    f.Req("GET /" + std::to_string(i) + " HTTP/1.1\r\nHost: h\r\n\r\n");
  // The two oldest were reported without their responses to make room.
  auto ev = f.Http();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_TRUE(Contains(ev[0], "\"url\":\"/0\"") && !Contains(ev[0], "status"));
  EXPECT_TRUE(Contains(ev[1], "\"url\":\"/1\""));
  for (size_t i = 0; i < n; ++i) {
    f.Resp("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(i) + "\r\n\r\n" +
           std::string(i, 'x'));
  }
  ev = f.Http();
  ASSERT_EQ(ev.size(), n);
  for (size_t i = 2; i < n; ++i) {
    EXPECT_TRUE(Contains(ev[i], "\"url\":\"/" + std::to_string(i) + "\"")) << ev[i];
    EXPECT_TRUE(Contains(ev[i], "\"length\":" + std::to_string(i))) << ev[i];
  }
  EXPECT_FALSE(f.HasAnomaly("UNABLE_TO_MATCH_RESPONSE_TO_REQUEST"));
}

TEST(Http, ResponseWithoutRequest) {
  Flow f;
  f.Resp("HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 4\r\n\r\n\x89PNG");
  ASSERT_EQ(f.Http().size(), 1u);
  EXPECT_TRUE(f.HasAnomaly("UNABLE_TO_MATCH_RESPONSE_TO_REQUEST"));
  EXPECT_EQ(f.sink.messages.back(), "HTTP (no request) 200 image/png 4");
  EXPECT_TRUE(
      Contains(f.Http()[0], "\"http\":{\"http_content_type\":\"image/png\",\"status\":200"));
}

TEST(Http, HostUriPortAndHeaderFields) {
  Flow f;
  f.Req(
      "GET http://user@WWW.Example.COM.:8080/p?q=1 HTTP/1.1\r\n"
      "Host: ignored.example\r\n"
      "Referer: http://ref.example/\r\n"
      "X-Forwarded-For: 10.1.2.3\r\n"
      "User-Agent: Mozilla/5.0\r\n"
      "  (folded)\r\n"
      "\r\n");
  f.Resp(
      "HTTP/1.1 206 Partial Content\r\n"
      "Content-Range: bytes 100-199/1000\r\n"
      "Content-Length: 0\r\n\r\n");
  const auto ev = f.Http();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_TRUE(Contains(ev[0],
                       "\"hostname\":\"www.example.com\",\"http_port\":8080,"
                       "\"url\":\"http://user@WWW.Example.COM.:8080/p?q=1\","
                       "\"http_user_agent\":\"Mozilla/5.0 (folded)\",\"xff\":\"10.1.2.3\","
                       "\"content_range\":{\"raw\":\"bytes 100-199/1000\",\"start\":100,"
                       "\"end\":199,\"size\":1000},\"http_refer\":\"http://ref.example/\""))
      << ev[0];
  EXPECT_EQ(f.sink.messages[0], "HTTP GET http://user@WWW.Example.COM.:8080/p?q=1 206 - 0");
}

TEST(Http, ConnectTunnelStopsParsing) {
  Flow f;
  f.Req("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
  f.Resp("HTTP/1.1 200 Connection established\r\n\r\n");
  f.Req("\x16\x03\x01\x02\x00 not http at all\r\n\r\n");
  f.Resp("\x16\x03\x03 neither\r\n");
  f.End();
  const auto ev = f.Http();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_TRUE(Contains(ev[0], "\"hostname\":\"example.com\",\"http_port\":443"));
  EXPECT_TRUE(f.Anomalies().empty());
}

TEST(Http, SwitchingProtocolsStopsParsing) {
  Flow f;
  f.Req("GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n");
  f.Resp("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello");
  f.Req("\x81\x85garbage");
  f.End();
  ASSERT_EQ(f.Http().size(), 1u);
  EXPECT_TRUE(Contains(f.Http()[0], "\"status\":101"));
  EXPECT_TRUE(f.Anomalies().empty());
}

TEST(Http, MalformedRequestLineResyncs) {
  Flow f;
  f.Req("GET /a HTTP/1.1\r\nHost: h\r\n\r\n");
  f.Req("\x01\x02garbage here\r\nmore: junk\r\n\r\n");
  f.Req("GET /b HTTP/1.1\r\nHost: h\r\n\r\n");
  f.Resp(
      "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  EXPECT_TRUE(f.HasAnomaly("REQUEST_LINE_INVALID"));
  EXPECT_EQ(f.Anomalies().size(), 1u);
  const auto ev = f.Http();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_TRUE(Contains(ev[1], "\"url\":\"/b\""));
  EXPECT_EQ(f.sink.messages[0], "ANOMALY http REQUEST_LINE_INVALID");
}

TEST(Http, MalformedStatusLines) {
  Flow f;
  f.Req("GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n");
  f.Resp("SPDY/3 200 OK\r\n");
  EXPECT_TRUE(f.HasAnomaly("RESPONSE_INVALID_PROTOCOL"));
  f.Resp("HTTP/1.1 2x0 Weird\r\nContent-Length: 0\r\n\r\n");
  EXPECT_TRUE(f.HasAnomaly("RESPONSE_INVALID_STATUS"));
  f.Resp("HTTP/1.1 200 OK\r\nBad Header Line\r\nContent-Length: 0\r\n\r\n");
  EXPECT_TRUE(f.HasAnomaly("RESPONSE_FIELD_MISSING_COLON"));
  const auto ev = f.Http();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_TRUE(Contains(ev[0], "\"status_string\":\"2x0\"")) << ev[0];
  EXPECT_TRUE(Contains(ev[1], "\"status\":200"));
}

TEST(Http, BadChunkSizeTakesRestAsBody) {
  Flow f;
  f.Req(kGet);
  f.Resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nrest");
  EXPECT_TRUE(f.HasAnomaly("INVALID_RESPONSE_CHUNK_LEN"));
  f.End();
  const auto ev = f.Http();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_TRUE(Contains(ev[0], "\"length\":18")) << ev[0];  // 3+5+2 + "zz\r\n" + "rest"
}

TEST(Http, BadRequestChunkSizeResyncs) {
  Flow f;
  f.Req("POST /a HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nnothex\r\nxx\r\n");
  f.Req("GET /b HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_TRUE(f.HasAnomaly("INVALID_REQUEST_CHUNK_LEN"));
  f.End();
  const auto ev = f.Http();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_TRUE(Contains(ev[1], "\"url\":\"/b\""));
}

TEST(Http, HeaderAnomalies) {
  Flow f;
  f.Req(
      "GET /a HTTP/1.1\r\n"
      "NoColonHere\r\n"
      "Bad Name: x\r\n"
      "Content-Length: abc\r\n"
      "\r\n");
  EXPECT_TRUE(f.HasAnomaly("REQUEST_FIELD_MISSING_COLON"));
  EXPECT_TRUE(f.HasAnomaly("REQUEST_HEADER_INVALID"));
  EXPECT_TRUE(f.HasAnomaly("INVALID_CONTENT_LENGTH_FIELD_IN_REQUEST"));
  EXPECT_TRUE(f.HasAnomaly("MISSING_HOST_HEADER"));
  f.Req("POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc");
  EXPECT_TRUE(f.HasAnomaly("DUPLICATE_CONTENT_LENGTH_FIELD_IN_REQUEST"));
  f.Req("GET /c HTTP/1.1\r\nHost: h\r\n\r\n");
  f.End();
  const auto ev = f.Http();
  ASSERT_EQ(ev.size(), 3u);
  EXPECT_TRUE(Contains(ev[2], "\"url\":\"/c\""));  // the first Content-Length framed /b
}

TEST(Http, OverlongHeaderIsCutAndFlagged) {
  Flow f;
  const std::string cookie(HttpParser::kFieldLimit + 10, 'c');
  f.Req("GET /a HTTP/1.1\r\nHost: h\r\nCookie: " + cookie + "\r\nUser-Agent: ua\r\n\r\n");
  f.Resp("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  EXPECT_TRUE(f.HasAnomaly("REQUEST_FIELD_TOO_LONG"));
  const auto ev = f.Http();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_TRUE(Contains(ev[0], "\"http_user_agent\":\"ua\""));
  // A long line under the limit is cut silently (only the kept prefix matters).
  Flow g;
  g.Req("GET /" + std::string(HttpParser::kRequestLineMax * 2, 'u') +
        " HTTP/1.1\r\nHost: h\r\n\r\n");
  g.End();
  ASSERT_EQ(g.Http().size(), 1u);
  EXPECT_TRUE(g.Anomalies().empty());
  EXPECT_TRUE(Contains(g.Http()[0], "\"protocol\"") == false);  // lost with the cut
  EXPECT_TRUE(Contains(g.Http()[0], "\"url\":\"/uuuu"));
}

TEST(Http, GapInsideBodyKeepsFraming) {
  Flow f;
  f.Req(kGet);
  f.Resp("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nabc");
  f.p->OnGap(Direction::kToClient, 990, f.sink);
  f.Resp("1234567");
  f.Req(kGet);
  f.Resp("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n");
  f.p->OnGap(Direction::kToClient, 16, f.sink);
  f.Resp("\r\n0\r\n\r\n");
  const auto ev = f.Http();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_TRUE(Contains(ev[0], "\"length\":1000"));
  EXPECT_TRUE(Contains(ev[1], "\"length\":" + std::to_string(4 + 16 + 2 + 3)));
  EXPECT_TRUE(f.Anomalies().empty());
}

TEST(Http, GapInHeadersResyncs) {
  Flow f;
  f.Req("GET /a HTTP/1.1\r\nHost: h\r\nUser-Ag");
  f.p->OnGap(Direction::kToServer, 50, f.sink);
  f.Req("ding stuff\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_TRUE(f.HasAnomaly("REQUEST_DATA_GAP"));
  f.Resp("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n");
  f.p->OnGap(Direction::kToClient, 10, f.sink);
  EXPECT_TRUE(f.HasAnomaly("RESPONSE_DATA_GAP"));
  f.Resp("ty: x\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  const auto ev = f.Http();
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_TRUE(Contains(ev[0], "\"url\":\"/a\"") && Contains(ev[0], "\"status\":200"));
  EXPECT_TRUE(Contains(ev[1], "\"url\":\"/b\"") && Contains(ev[1], "\"status\":200"));
}

TEST(Http, NtlmAuthorization) {
  Flow f;
  const std::string auth = Base64(NtlmAuthenticate("CORP", "appadmin", "AVMGMT01"));
  const std::string chal = Base64(NtlmChallenge("CORP", "MAIL01"));
  f.Req(
      "GET /ews HTTP/1.1\r\nHost: mail\r\nAuthorization: NTLM "
      "TlRMTVNTUAABAAAAB4IIogAAAAAAAAAAAAAAAAAAAAAGAbEdAAAADw==\r\n\r\n");
  f.Resp("HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: NTLM " + chal +
         "\r\nContent-Length: 0\r\n\r\n");
  f.Req("GET /ews HTTP/1.1\r\nHost: mail\r\nAuthorization: NTLM " + auth + "\r\n\r\n");
  f.Resp("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  const auto ev = f.Http();
  ASSERT_EQ(ev.size(), 2u);
  // NEGOTIATE: message only; the CHALLENGE's server names under their own key.
  EXPECT_FALSE(Contains(ev[0], "\"ntlmssp\""));
  EXPECT_TRUE(Contains(ev[0],
                       "\"ntlmssp_challenge\":{\"target_name\":\"CORP\","
                       "\"server_nb_computer_name\":\"MAIL01\"}"))
      << ev[0];
  EXPECT_FALSE(Contains(ev[1], "ntlmssp_challenge"));
  EXPECT_EQ(f.sink.messages[0], "HTTP GET mail/ews 401 - 0 NTLM NEGOTIATE NTLM CHALLENGE CORP");
  EXPECT_TRUE(Contains(ev[1],
                       "\"ntlmssp\":{\"domain\":\"CORP\",\"user\":\"appadmin\",\"host\":"
                       "\"AVMGMT01\",\"version\":\"6.1 build 7601 rev 15\"}"))
      << ev[1];
  EXPECT_TRUE(Contains(f.sink.messages[1], "NTLM AUTH CORP\\appadmin from AVMGMT01"))
      << f.sink.messages[1];
  EXPECT_TRUE(f.Anomalies().empty());
}

TEST(Http, NegotiateWithRawNtlmssp) {
  Flow f;
  f.Req("GET / HTTP/1.1\r\nHost: h\r\nAuthorization: Negotiate " +
        Base64(NtlmAuthenticate("D", "u", "w")) + "\r\n\r\n");
  f.End();
  ASSERT_EQ(f.Http().size(), 1u);
  EXPECT_TRUE(Contains(f.Http()[0], "\"ntlmssp\":{\"domain\":\"D\",\"user\":\"u\",\"host\":\"w\""));
}

TEST(Http, AnomaliesAreCapped) {
  Flow f;
  for (int i = 0; i < 200; ++i) {
    f.Req("GET /a HTTP/1.1\r\nHost: h\r\n\r\n");
    f.Req("\x01junk\r\n");
  }
  EXPECT_EQ(f.Anomalies().size(), HttpParser::kMaxAnomalies);
  EXPECT_TRUE(f.HasAnomaly("TOO_MANY_WARNINGS"));
}

struct RecordingInspector final : HttpInspector {
  std::string log;
  void OnHeader(Direction dir, std::span<const uint8_t> name,
                std::span<const uint8_t> value) noexcept override {
    log += std::string(DirectionName(dir)) + " H " +
           std::string(reinterpret_cast<const char*>(name.data()), name.size()) + "=" +
           std::string(reinterpret_cast<const char*>(value.data()), value.size()) + "\n";
  }
  void OnBody(Direction dir, std::span<const uint8_t> data) noexcept override {
    log += std::string(DirectionName(dir)) + " B " +
           std::string(reinterpret_cast<const char*>(data.data()), data.size()) + "\n";
  }
  void OnMessageEnd(Direction dir) noexcept override {
    log += std::string(DirectionName(dir)) + " END\n";
  }
};

TEST(Http, InspectorSeesHeadersAndDechunkedBodies) {
  Flow f;
  RecordingInspector insp;
  f.p->set_inspector(&insp);
  f.Req(
      "POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: "
      "chunked\r\n\r\n3\r\nX5O\r\n2\r\n!P\r\n0\r\n\r\n");
  f.Resp("HTTP/1.1 200 OK\r\nDate: today\r\nContent-Length: 2\r\n\r\nok");
  EXPECT_EQ(insp.log,
            "to_server H Host=h\n"
            "to_server H Transfer-Encoding=chunked\n"
            "to_server B X5O\n"
            "to_server B !P\n"
            "to_server END\n"
            "to_client H Date=today\n"
            "to_client H Content-Length=2\n"
            "to_client B ok\n"
            "to_client END\n");
}

// A conversation exercising most states; split anywhere it must give the same events.
std::string ConversationRequests() {
  return std::string(
             "GET /a HTTP/1.1\r\nHost: Example.com\r\nUser-Agent: x\r\n  y\r\n\r\n"
             "POST /b HTTP/1.1\r\nHost: h:81\r\nContent-Length: 5\r\n\r\nhello"
             "PUT /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
             "3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n"
             "HEAD /d HTTP/1.1\r\nHost: h\r\n\r\n"
             "GET /e HTTP/1.1\r\nHost: h\r\nAuthorization: NTLM ") +
         Base64(NtlmAuthenticate("CORP", "bob", "PC1")) + "\r\n\r\n" +
         "GET /f HTTP/1.1\r\nHost: h\r\n\r\n";
}
std::string ConversationResponses() {
  return std::string(
             "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 3\r\n\r\nabc"
             "HTTP/1.1 100 Continue\r\n\r\n"
             "HTTP/1.1 302 Found\r\nLocation: /x\r\nTransfer-Encoding: chunked\r\n\r\n"
             "4\r\nwxyz\r\n0\r\n\r\n"
             "HTTP/1.1 204 No Content\r\n\r\n"
             "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
             "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: NTLM ") +
         Base64(NtlmChallenge("CORP")) + "\r\nContent-Length: 0\r\n\r\n" +
         "HTTP/1.0 200 OK\r\n\r\nuntil close";
}

std::vector<std::string> RunSplit(size_t req_step, size_t resp_step) {
  Flow f;
  const std::string rq = ConversationRequests();
  const std::string rs = ConversationResponses();
  size_t i = 0, j = 0;
  while (i < rq.size() || j < rs.size()) {
    // Requests run ahead of their responses, as on the wire.
    if (i < rq.size()) {
      const size_t k = std::min(req_step, rq.size() - i);
      f.Req(std::string_view(rq).substr(i, k));
      i += k;
    }
    if (j < rs.size() && (i == rq.size() || j + resp_step < i / 3)) {
      const size_t k = std::min(resp_step, rs.size() - j);
      f.Resp(std::string_view(rs).substr(j, k));
      j += k;
    }
  }
  f.End();
  EXPECT_FALSE(f.sink.unbalanced);
  std::vector<std::string> all = f.sink.events;
  all.insert(all.end(), f.sink.messages.begin(), f.sink.messages.end());
  return all;
}

TEST(Http, SplitAtEveryByteGivesSameEvents) {
  const std::vector<std::string> whole = RunSplit(1 << 20, 1 << 20);
  ASSERT_EQ(whole.size(), 2 * 6u);
  EXPECT_TRUE(Contains(whole[0], "\"hostname\":\"example.com\""));
  EXPECT_TRUE(Contains(whole[0], "\"http_user_agent\":\"x y\""));
  EXPECT_TRUE(Contains(whole[1], "\"http_port\":81"));
  EXPECT_TRUE(Contains(whole[1], "\"status\":302,\"redirect\":\"/x\",\"length\":12"));
  EXPECT_TRUE(Contains(whole[2], "\"status\":204"));
  EXPECT_TRUE(Contains(whole[3], "\"http_method\":\"HEAD\"") &&
              Contains(whole[3], "\"status\":200,\"length\":0"));
  EXPECT_TRUE(Contains(whole[4], "\"status\":401"));
  EXPECT_TRUE(Contains(whole[4], "\"ntlmssp\":{\"domain\":\"CORP\",\"user\":\"bob\""));
  EXPECT_TRUE(Contains(whole[5], "\"status\":200,\"length\":11"));
  EXPECT_EQ(whole[10], "HTTP GET h/e 401 - 0 NTLM AUTH CORP\\bob from PC1 NTLM CHALLENGE CORP");
  EXPECT_EQ(RunSplit(1, 1), whole);
  for (size_t a = 2; a < 40; a += 3) {
    EXPECT_EQ(RunSplit(a, a + 1), whole) << a;
  }
}

TEST(Http, SplitIntoTwoAtEveryOffset) {
  const std::string rq = ConversationRequests();
  const std::string rs = ConversationResponses();
  Flow whole;
  whole.Req(rq);
  whole.Resp(rs);
  whole.End();
  for (size_t cut = 0; cut <= rs.size(); ++cut) {
    Flow f;
    f.Req(std::string_view(rq).substr(0, cut % (rq.size() + 1)));
    f.Req(std::string_view(rq).substr(cut % (rq.size() + 1)));
    f.Resp(std::string_view(rs).substr(0, cut));
    f.Resp(std::string_view(rs).substr(cut));
    f.End();
    ASSERT_EQ(f.sink.events, whole.sink.events) << cut;
  }
}

// The signature engine's buffers (EventSink::Inspect): one inspection per message, with the
// sticky buffers Suricata fills for it.
using rules::Buffer;

TEST(HttpDetect, RequestBuffersAreNormalisedAndSplitProof) {
  const std::string req =
      "GET http://WWW.Example.COM.:8080/a/./b/../c%2Ed/%41x?q=%41&r=1 HTTP/1.1\r\n"
      "Host: ignored.example\r\n"
      "User-Agent:   Mozilla/5.0 (X)  \r\n"
      "Cookie: sid=1\r\n"
      "X-Folded: one\r\n two\r\n"
      "\r\n";
  std::vector<std::pair<Direction, std::map<Buffer, std::string>>> first;
  for (size_t cut = 0; cut <= req.size(); cut += req.size() / 7 + 1) {
    Flow f;
    f.sink.inspect = true;
    f.Req(req.substr(0, cut));
    f.Req(req.substr(cut));
    ASSERT_EQ(f.sink.inspected.size(), 1u) << "cut at " << cut;
    const auto& [dir, b] = f.sink.inspected[0];
    EXPECT_EQ(dir, Direction::kToServer);
    EXPECT_EQ(b.at(Buffer::kHttpMethod), "GET");
    EXPECT_EQ(b.at(Buffer::kHttpRawUri),
              "http://WWW.Example.COM.:8080/a/./b/../c%2Ed/%41x?q=%41&r=1");
    // Scheme and authority gone, %XX decoded and dot segments removed in the path only.
    EXPECT_EQ(b.at(Buffer::kHttpUri), "/a/c.d/Ax?q=%41&r=1");
    EXPECT_EQ(b.at(Buffer::kHttpProtocol), "HTTP/1.1");
    EXPECT_EQ(b.at(Buffer::kHttpHost), "www.example.com");  // from the URI, normalised
    EXPECT_EQ(b.at(Buffer::kHttpRawHost), "ignored.example");
    EXPECT_EQ(b.at(Buffer::kHttpUserAgent), "Mozilla/5.0 (X)");
    EXPECT_EQ(b.at(Buffer::kHttpCookie), "sid=1");
    EXPECT_EQ(b.at(Buffer::kHttpHeader),
              "Host: ignored.example\r\nUser-Agent: Mozilla/5.0 (X)\r\nCookie: sid=1\r\n"
              "X-Folded: one two\r\n");
    EXPECT_EQ(b.at(Buffer::kHttpHeaderNames),
              "\r\nHost\r\nUser-Agent\r\nCookie\r\nX-Folded\r\n\r\n");
    EXPECT_EQ(b.at(Buffer::kHttpRequestLine),
              "GET http://WWW.Example.COM.:8080/a/./b/../c%2Ed/%41x?q=%41&r=1 HTTP/1.1");
    EXPECT_TRUE(b.at(Buffer::kHttpStart).starts_with(b.at(Buffer::kHttpRequestLine) + "\r\nHost:"));
    EXPECT_TRUE(b.at(Buffer::kHttpStart).ends_with("\r\n\r\n"));
    EXPECT_EQ(b.count(Buffer::kFileData), 0u);
    EXPECT_EQ(b.count(Buffer::kPacket), 0u);
    // http.request_header: each line of http.header, on its own.
    EXPECT_EQ(f.sink.items[0].at(Buffer::kHttpRequestHeader),
              (std::vector<std::string>{"Host: ignored.example", "User-Agent: Mozilla/5.0 (X)",
                                        "Cookie: sid=1", "X-Folded: one two"}));
    EXPECT_EQ(b.at(Buffer::kHttpRequestHeader), b.at(Buffer::kHttpHeader));  // the scan's input
    EXPECT_EQ(f.sink.items[0].count(Buffer::kHttpResponseHeader), 0u);
    if (first.empty()) {
      first = f.sink.inspected;
    } else {
      EXPECT_EQ(f.sink.inspected, first) << "cut at " << cut;
    }
  }
}

TEST(HttpDetect, BodiesAndResponses) {
  Flow f;
  f.sink.inspect = true;
  f.Req("POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n");
  EXPECT_TRUE(f.sink.inspected.empty());  // waits for its body
  f.Req("hello ");
  f.Req("world");
  ASSERT_EQ(f.sink.inspected.size(), 1u);
  EXPECT_EQ(f.sink.inspected[0].second.at(Buffer::kHttpRequestBody), "hello world");
  EXPECT_EQ(f.sink.inspected[0].second.at(Buffer::kFileData), "hello world");
  EXPECT_EQ(f.sink.inspected[0].second.at(Buffer::kHttpContentLen), "11");
  f.Resp("HTTP/1.1 100 Continue\r\n\r\n");
  f.Resp("HTTP/1.1 404 Not  Found\r\nServer: nginx\r\nTransfer-Encoding: chunked\r\n\r\n");
  const char chunks[] = "5\r\nMZ\x90\x00\x03\r\n3\r\nabc\r\n0\r\n\r\n";
  f.Resp(std::string_view(chunks, sizeof chunks - 1));  // with its NUL byte
  ASSERT_EQ(f.sink.inspected.size(), 2u);               // the interim response is not inspected
  const auto& [dir, b] = f.sink.inspected[1];
  EXPECT_EQ(dir, Direction::kToClient);
  EXPECT_EQ(b.at(Buffer::kHttpStatCode), "404");
  EXPECT_EQ(b.at(Buffer::kHttpStatMsg), "Not  Found");
  EXPECT_EQ(b.at(Buffer::kHttpResponseLine), "HTTP/1.1 404 Not  Found");
  EXPECT_EQ(b.at(Buffer::kHttpServer), "nginx");
  EXPECT_EQ(b.at(Buffer::kFileData), std::string("MZ\x90\x00\x03"
                                                 "abc",
                                                 8));  // de-chunked
  // The response carries its request's buffers as context (a rule on http.uri and
  // http.stat_code matches the transaction); the request carries none.
  EXPECT_EQ(b.at(Buffer::kHttpUri), "/up");
  EXPECT_EQ(b.at(Buffer::kHttpMethod), "POST");
  EXPECT_EQ(b.at(Buffer::kHttpRequestBody), "hello world");
  const auto bit = [](Buffer x) { return uint64_t{1} << static_cast<size_t>(x); };
  EXPECT_NE(f.sink.context[1] & bit(Buffer::kHttpUri), 0u);
  EXPECT_EQ(f.sink.context[1] & bit(Buffer::kHttpStatCode), 0u);
  EXPECT_EQ(f.sink.context[0], 0u);
  EXPECT_EQ(f.sink.items[1].at(Buffer::kHttpResponseHeader),
            (std::vector<std::string>{"Server: nginx", "Transfer-Encoding: chunked"}));
  EXPECT_EQ(f.sink.items[1].count(Buffer::kHttpRequestHeader), 0u);

  // A body longer than the window is inspected once, with the window's bytes.
  const std::string big(HttpParser::kDetectBody + 100, 'x');
  f.Req("PUT /big HTTP/1.1\r\nContent-Length: " + std::to_string(big.size()) + "\r\n\r\n" + big);
  ASSERT_EQ(f.sink.inspected.size(), 3u);
  EXPECT_EQ(f.sink.inspected[2].second.at(Buffer::kFileData).size(), HttpParser::kDetectBody);
  // A response delimited by the close is inspected with its first bytes.
  f.Resp("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  f.Resp("HTTP/1.0 200 OK\r\n\r\nfirst");
  f.Resp("second");
  ASSERT_EQ(f.sink.inspected.size(), 5u);
  EXPECT_EQ(f.sink.inspected[4].second.at(Buffer::kFileData), "first");
}

// With pipelining the request kept for the engine is the latest one: a response to an earlier
// request is inspected without request buffers rather than with another request's.
TEST(HttpDetect, PipelinedResponsesGetNoOtherRequestsBuffers) {
  Flow f;
  f.sink.inspect = true;
  f.Req("GET /one HTTP/1.1\r\nHost: h\r\n\r\nGET /two HTTP/1.1\r\nHost: h\r\n\r\n");
  f.Resp("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
  f.Resp("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
  ASSERT_EQ(f.sink.inspected.size(), 4u);
  EXPECT_EQ(f.sink.inspected[2].second.count(Buffer::kHttpUri), 0u);  // answers /one
  EXPECT_EQ(f.sink.inspected[3].second.at(Buffer::kHttpUri), "/two");
  EXPECT_EQ(f.sink.inspected[3].second.at(Buffer::kHttpStatCode), "404");
}

TEST(HttpDetect, NothingAssembledWhenNotInspecting) {
  Flow f;
  f.Req("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  f.Resp("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  EXPECT_TRUE(f.sink.inspected.empty());
  EXPECT_EQ(f.Http().size(), 1u);
}

}  // namespace
}  // namespace vigil::proto
