#include "control/cli/config_client.h"

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "control/cli/http_client.h"

namespace vigil::ctl::cli {
namespace {

using json = nlohmann::json;

std::string ErrorLine(const json& e) {
  std::string s = e.value("file", "");
  if (e.value("line", 0) > 0) {
    s += ":" + std::to_string(e.value("line", 0)) + ":" + std::to_string(e.value("column", 0));
  }
  s += ": ";
  if (!e.value("field", std::string()).empty()) s += e.value("field", std::string()) + ": ";
  return s + e.value("message", "");
}

std::string Basename(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

int RunConfigCommand(const std::vector<std::string>& args, const ConfigCommandOptions& o) {
  if (args.empty()) {
    std::fprintf(stderr, "vigilctl: config needs push, validate, get, history or rollback\n");
    return 2;
  }
  const std::string& sub = args[0];
  std::string method = "GET", target, body;
  if (sub == "push" || sub == "validate") {
    if (args.size() != 2) {
      std::fprintf(stderr, "vigilctl: config %s needs a FILE\n", sub.c_str());
      return 2;
    }
    std::ifstream in(args[1], std::ios::binary);
    if (!in) {
      std::fprintf(stderr, "vigilctl: cannot read %s\n", args[1].c_str());
      return 1;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    body = ss.str();
    const std::string query = "?name=" + UrlEncode(Basename(args[1])) + "&who=" + UrlEncode(o.who);
    if (sub == "push") {
      method = "PUT";
      target = "/api/v1/config" + query + (o.force ? "&force=1" : "");
    } else {
      method = "POST";
      target = "/api/v1/config/validate" + query;
    }
  } else if (sub == "rollback" && args.size() == 1) {
    method = "POST";
    target = "/api/v1/config/rollback?who=" + UrlEncode(o.who);
  } else if (sub == "get" && args.size() == 1) {
    target = "/api/v1/config";
  } else if (sub == "history" && args.size() == 1) {
    target = "/api/v1/config/history";
  } else {
    std::fprintf(stderr, "vigilctl: config push FILE | validate FILE | get | history | rollback\n");
    return 2;
  }
  HttpResult r;
  const std::string headers = o.token.empty() ? "" : "Authorization: Bearer " + o.token + "\r\n";
  const std::string err = HttpRequest(o.endpoint, method, target, body, &r, headers);
  if (!err.empty()) {
    std::fprintf(stderr, "vigilctl: config %s: %s\n", sub.c_str(), err.c_str());
    return 1;
  }
  const json j = json::parse(r.body, nullptr, false);
  if (o.as_json || !j.is_object()) {
    std::printf("%s\n", j.is_discarded() ? r.body.c_str() : j.dump(2).c_str());
    return r.status == 200 ? 0 : 1;
  }
  if (r.status != 200) {
    std::fprintf(stderr, "vigilctl: config %s: %s (HTTP %d)\n", sub.c_str(),
                 j.value("error", std::string("failed")).c_str(), r.status);
    for (const json& e : j.value("errors", json::array())) {
      std::fprintf(stderr, "%s\n", ErrorLine(e).c_str());
    }
    if (!j.value("running", std::string()).empty()) {
      std::fprintf(stderr, "running version: %s\n", j.value("running", std::string()).c_str());
    }
    return 1;
  }
  if (sub == "push" || sub == "validate" || sub == "rollback") {
    std::printf("%s version %s", j.value("result", std::string()).c_str(),
                j.value("version", std::string()).c_str());
    if (j.contains("rolled_back")) {
      std::printf(" (rolled back from %s)", j.value("rolled_back", std::string()).c_str());
    }
    std::printf("\n");
    if (j.contains("dataplane")) {
      const json& d = j["dataplane"];
      std::printf("  dataplane: %s (%d rules, built in %d ms)\n",
                  d.value("summary", std::string()).c_str(), d.value("rules", 0),
                  d.value("build_ms", 0));
    }
    if (j.contains("control")) {
      std::printf("  control: %d models\n", j["control"].value("models", 0));
    }
  } else if (sub == "get") {
    if (j["version"].is_null()) {
      std::printf("no configuration pushed: both processes run their files\n");
    } else {
      std::printf("version %s (seq %lld, by %s): %s\n", j.value("version", std::string()).c_str(),
                  static_cast<long long>(j.value("seq", int64_t{0})),
                  j.value("who", std::string()).c_str(), j.value("summary", std::string()).c_str());
    }
    if (j.contains("dataplane")) {
      const json& d = j["dataplane"];
      if (d.contains("error")) {
        std::printf("dataplane: not reachable (%s)\n", d.value("error", std::string()).c_str());
      } else {
        const std::string v = d.value("version", std::string());
        std::printf("dataplane: running version %s, %d rules\n",
                    v.empty() ? "(its file)" : v.c_str(),
                    d.contains("detect") ? d["detect"].value("rules", 0) : 0);
      }
    }
    if (j.contains("document")) std::printf("---\n%s", j.value("document", std::string()).c_str());
  } else if (sub == "history") {
    for (const json& v : j.value("versions", json::array())) {
      std::printf(
          "%-6lld %-12s %-28s %-16s %s\n", static_cast<long long>(v.value("seq", int64_t{0})),
          v.value("state", std::string()).c_str(), v.value("version", std::string()).c_str(),
          v.value("who", std::string()).c_str(), v.value("summary", std::string()).c_str());
    }
  }
  return 0;
}

}  // namespace vigil::ctl::cli
