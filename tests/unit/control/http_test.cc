// The API's HTTP layer: request parsing and a real server/client round trip on loopback and a Unix
// socket.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "control/api/api.h"
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

// Changing calls: POST /api/v1/breaches/{id}/{action}, with the token, through a real socket.
TEST(ApiTest, BreachChangesNeedTheTokenAndApply) {
  char tmpl[] = "/tmp/vigil-api-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  std::string err;
  auto store = store::Store::Open({.dir = dir}, &err);
  ASSERT_NE(store, nullptr) << err;
  store::Breach b;
  b.model = "Device / AT Service Scheduled Task";
  b.device = "10.0.0.9";
  b.ts_ns = 1'700'000'000'000'000'000;
  const int64_t id = store->InsertBreach(b, &err);
  ASSERT_GT(id, 0) << err;
  int updates = 0;
  auto updater = [&](int64_t bid, const store::Store::BreachUpdate& u) {
    ++updates;
    std::string e;
    if (store->UpdateBreach(bid, u, &e)) return api::Response{};
    return api::Response{404, "application/json", nlohmann::json{{"error", e}}.dump()};
  };
  const std::string token = "0123456789abcdef0123456789abcdef";
  api::Api a(store.get(), nullptr, nullptr, nullptr, updater, token);
  api::HttpServer server;
  ASSERT_EQ(server.Listen("127.0.0.1:0", ""), "");
  std::thread t([&] { server.Serve([&](const api::Request& r) { return a.Handle(r); }); });
  const std::string ep = "127.0.0.1:" + std::to_string(server.tcp_port());
  const std::string auth = "Authorization: Bearer " + token + "\r\n";
  const std::string path = "/api/v1/breaches/" + std::to_string(id);
  auto post = [&](const std::string& target, const std::string& body, const std::string& hdr) {
    cli::HttpResult res;
    EXPECT_EQ(cli::HttpRequest(ep, "POST", target, body, &res, hdr), "");
    return res;
  };
  // Refused without the token, with a wrong one, or one that only starts like it.
  EXPECT_EQ(post(path + "/acknowledge", "", "").status, 401);
  EXPECT_EQ(post(path + "/acknowledge", "", "Authorization: Bearer nope\r\n").status, 401);
  EXPECT_EQ(post(path + "/acknowledge", "", "Authorization: Bearer " + token + "x\r\n").status,
            401);
  EXPECT_EQ(updates, 0);
  EXPECT_FALSE(store->GetBreach(id)->acknowledged);
  // Bad requests name what is wrong.
  EXPECT_EQ(post(path + "/acknowledge", "[1]", auth).status, 400);
  EXPECT_EQ(post(path + "/acknowledge", R"({"note":"x"})", auth).status, 400);
  EXPECT_EQ(post(path + "/comment", "", auth).status, 400);
  EXPECT_EQ(post(path + "/comment", R"({"comment":5})", auth).status, 400);
  EXPECT_EQ(
      post(path + "/comment",
           nlohmann::json{{"comment", std::string(api::kMaxCommentBytes + 1, 'x')}}.dump(), auth)
          .status,
      400);
  EXPECT_EQ(post(path + "/unacknowledge", R"({"comment":"x"})", auth).status, 400);
  EXPECT_EQ(post(path + "/delete", "", auth).status, 404);
  EXPECT_EQ(post("/api/v1/breaches/x/acknowledge", "", auth).status, 400);
  EXPECT_EQ(post("/api/v1/search", "", auth).status, 405);
  EXPECT_EQ(post("/api/v1/breaches/999/acknowledge", "", auth).status, 404);
  // With the token: applied, and the breach as it is now comes back.
  cli::HttpResult r = post(path + "/acknowledge", R"({"comment":"known admin job"})", auth);
  EXPECT_EQ(r.status, 200) << r.body;
  auto j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["acknowledged"], true);
  EXPECT_EQ(j["comment"], "known admin job");
  r = post(path + "/comment", R"({"comment":"checked with IT"})", auth);
  EXPECT_EQ(nlohmann::json::parse(r.body)["acknowledged"], true);  // kept
  r = post(path + "/unacknowledge", "", auth);
  j = nlohmann::json::parse(r.body);
  EXPECT_EQ(j["acknowledged"], false);
  EXPECT_EQ(j["comment"], "checked with IT");
  EXPECT_EQ(store->GetBreach(id)->comment, "checked with IT");
  server.Stop();
  t.join();

  // No token configured: every change refused; no updater: read-only.
  api::Api no_token(store.get(), nullptr, nullptr, nullptr, updater, "");
  api::Request req;
  req.method = "POST";
  req.path = path + "/acknowledge";
  req.headers["authorization"] = "Bearer ";
  EXPECT_EQ(no_token.Handle(req).status, 403);
  api::Api read_only(store.get(), nullptr);
  EXPECT_EQ(read_only.Handle(req).status, 405);
  req.method = "DELETE";
  EXPECT_EQ(read_only.Handle(req).status, 405);
  store.reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace vigil::ctl
