#include "control/cli/pcap_client.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>

#include "control/api/api.h"
#include "control/cli/http_client.h"

namespace vigil::ctl::cli {

std::string ResolveClientTime(const std::string& s, int64_t now_ns) {
  std::string rel;
  if (s == "now") {
    rel = "";
  } else if (s.rfind("now-", 0) == 0) {
    rel = s.substr(4);
  } else if (s.size() > 1 && s[0] == '-') {
    rel = s.substr(1);
  } else {
    return s;
  }
  int64_t ago = 0;
  if (!rel.empty()) {
    const std::optional<int64_t> d = api::ParseDurationArg(rel);  // 30s, 5m, 2h, 1d
    if (!d) return s;  // not ours: the server names the parameter
    ago = *d;
  }
  const int64_t t = now_ns - ago;
  if (t < 0) return s;
  char buf[48];
  std::snprintf(buf, sizeof buf, "%lld.%09lld", static_cast<long long>(t / 1'000'000'000),
                static_cast<long long>(t % 1'000'000'000));
  return buf;
}

std::string PcapTarget(const PcapQuery& q, int64_t now_ns) {
  std::string t = "/api/v1/pcaps?host=" + UrlEncode(q.host);
  if (!q.peer.empty()) t += "&peer=" + UrlEncode(q.peer);
  if (!q.port.empty()) t += "&port=" + UrlEncode(q.port);
  if (!q.proto.empty()) t += "&proto=" + UrlEncode(q.proto);
  t += "&from=" + UrlEncode(ResolveClientTime(q.from, now_ns));
  t += "&to=" + UrlEncode(ResolveClientTime(q.to, now_ns));
  return t;
}

std::string FetchPcap(const std::string& endpoint, const std::string& token, const PcapQuery& q,
                      const std::string& output, int64_t now_ns, nlohmann::json* facts) {
  const bool to_stdout = output == "-";
  const std::string tmp = output + ".tmp." + std::to_string(getpid());
  int fd = STDOUT_FILENO;
  if (!to_stdout) {
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return "cannot create " + tmp + ": " + std::strerror(errno);
    ::fchmod(fd, 0600);
  }
  HttpResult res;
  const std::string headers = token.empty() ? "" : "Authorization: Bearer " + token + "\r\n";
  std::string err = HttpRequestToFd(endpoint, "GET", PcapTarget(q, now_ns), "", fd, &res, headers);
  if (err.empty() && res.status != 200) {
    const nlohmann::json j = nlohmann::json::parse(res.body, nullptr, false);
    err = "HTTP " + std::to_string(res.status) + ": " +
          (j.is_object() && j.contains("error") && j["error"].is_string()
               ? j["error"].get<std::string>()
               : res.body);
  }
  if (err.empty()) {
    const auto it = res.headers.find("x-vigil-export");
    *facts = it == res.headers.end() ? nlohmann::json()
                                     : nlohmann::json::parse(it->second, nullptr, false);
    if (!facts->is_object()) err = "the answer has no X-Vigil-Export header (not vigil-control?)";
  }
  if (!to_stdout) {
    if (err.empty() && ::fsync(fd) != 0) err = "cannot write " + tmp + ": " + std::strerror(errno);
    if (::close(fd) != 0 && err.empty()) err = "cannot write " + tmp + ": " + std::strerror(errno);
    if (err.empty() && ::rename(tmp.c_str(), output.c_str()) != 0) {
      err = "cannot rename " + tmp + " to " + output + ": " + std::strerror(errno);
    }
    if (!err.empty()) ::unlink(tmp.c_str());
  }
  if (err.empty()) (*facts)["file"] = output;
  return err;
}

std::string PcapLine(const std::string& output, const nlohmann::json& f) {
  auto u = [&](const char* k) {
    return f.contains(k) && f[k].is_number() ? std::to_string(f[k].get<uint64_t>()) : "0";
  };
  auto s = [&](const char* k) {
    return f.contains(k) && f[k].is_string() ? f[k].get<std::string>() : "?";
  };
  std::string line = "wrote " + (output == "-" ? std::string("(stdout)") : output) + ": " +
                     u("packets") + " packets (" + u("memory_packets") + " from memory, " +
                     u("disk_packets") + " from disk); ";
  if (f.value("start_not_retained", false)) {
    line += "window start not retained: " + s("not_retained_from") + " to " + s("not_retained_to");
  } else {
    line += "whole window retained";
  }
  if (u("lost_records") != "0") line += "; " + u("lost_records") + " records lost before spooling";
  return line;
}

}  // namespace vigil::ctl::cli
