// The API's HTTP layer: request parsing and a real server/client round trip on loopback and a Unix
// socket.
#include <gtest/gtest.h>
#include <unistd.h>

#include <thread>

#include "control/api/http_server.h"
#include "control/cli/http_client.h"

namespace vigil::ctl {
namespace {

TEST(HttpTest, ParsesRequestLineQueryHeadersAndBody) {
  api::Request r;
  std::string err;
  const std::string raw =
      "POST /api/v1/search?q=%2A.JOB+AND+SMB&limit=5 HTTP/1.1\r\nHost: x\r\n"
      "Content-Length: 4\r\nX-Token:  abc \r\n\r\nbody";
  ASSERT_EQ(api::ParseRequest(raw, &r, &err), 1) << err;
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.path, "/api/v1/search");
  EXPECT_EQ(r.query["q"], "*.JOB AND SMB");
  EXPECT_EQ(r.query["limit"], "5");
  EXPECT_EQ(r.headers["x-token"], "abc");
  EXPECT_EQ(r.body, "body");
  // Incomplete: headers, then body.
  EXPECT_EQ(api::ParseRequest("GET / HTTP/1.1\r\nHost: x\r\n", &r, &err), 0);
  EXPECT_EQ(api::ParseRequest(raw.substr(0, raw.size() - 2), &r, &err), 0);
  // Malformed.
  EXPECT_EQ(api::ParseRequest("GARBAGE\r\n\r\n", &r, &err), -1);
  EXPECT_EQ(api::ParseRequest("GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", &r, &err), -1);
  EXPECT_EQ(api::ParseRequest("GET / HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n", &r, &err),
            -1);
  EXPECT_EQ(api::ParseRequest(std::string(20000, 'a'), &r, &err), -1);
}

TEST(HttpTest, ServesOverTcpAndUnixSocket) {
  api::HttpServer server;
  const std::string sock = "/tmp/vigil-http-test-" + std::to_string(getpid()) + ".sock";
  ASSERT_EQ(server.Listen("127.0.0.1:0", sock), "");
  std::thread t([&] {
    server.Serve([](const api::Request& r) {
      api::Response resp;
      resp.body = "{\"path\":\"" + r.path + "\",\"q\":\"" + r.query.at("q") + "\"}";
      return resp;
    });
  });
  cli::HttpResult res;
  ASSERT_EQ(cli::HttpRequest("127.0.0.1:" + std::to_string(server.tcp_port()), "GET",
                             "/a?q=" + cli::UrlEncode("AV.job AND SMB"), "", &res),
            "");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.body, "{\"path\":\"/a\",\"q\":\"AV.job AND SMB\"}");
  ASSERT_EQ(cli::HttpRequest(sock, "GET", "/b?q=x", "", &res), "");
  EXPECT_EQ(res.body, "{\"path\":\"/b\",\"q\":\"x\"}");
  server.Stop();
  t.join();
  EXPECT_NE(cli::HttpRequest(sock, "GET", "/", "", &res), "");  // gone
}

}  // namespace
}  // namespace vigil::ctl
