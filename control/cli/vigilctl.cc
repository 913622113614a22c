// vigilctl: the command-line client of vigil-control.
//
//   vigilctl [--socket PATH | --api HOST:PORT | --data-dir DIR] [--json] COMMAND ...
//     status
//     breaches [--model M] [--since T] [--limit N]
//     breach ID
//     search QUERY [--from T --to T | --last 60d] [--count-by day|hour|FIELD] [--limit N]
//     models
//     ack ID [--comment TEXT] | unack ID | comment ID TEXT
//     files [--query Q] [--from T --to T | --last 60d] [--limit N]
//     file get SHA256 -o FILE   (--files-dir DIR with --data-dir: the dataplane's file store)
//     respond list [--state S] [--limit N] | respond show ID | respond audit [--action ID]
//     respond confirm ID [--reason T] | respond extend ID DURATION [--reason T]
//     respond clear ID [--reason T]
//     respond block (--device IP [--direction both|outgoing|incoming] |
//                    --client IP --server IP --port N [--proto tcp|udp]) --duration D [--reason T]
//     pcap --host IP [--peer IP] [--port N] [--proto tcp|udp] --from T --to T -o FILE
//     config push FILE [--force] | config validate FILE | config get | config history |
//     config rollback
//
// Talks to a running control over its API (Unix socket by default), or with --data-dir reads a
// stopped (or running) store directly, read-only (ack/unack/comment open a stopped store for
// writing). --json prints the API's JSON unchanged. Changes over the API send the token from
// --token-file FILE or $VIGIL_API_TOKEN; response changes also send "who": $USER (the audit log
// records it as "USER via API"). Response changes need a running control (it tells the
// dataplane); with --data-dir, respond list/show/audit read the store. `pcap` exports the
// dataplane's packet history through a running control and needs the token too (packets are
// evidence); --from/--to also take "now", "-5m", "now-2h" (resolved here, sent as Unix seconds).
#include <pwd.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "control/api/api.h"
#include "control/cli/config_client.h"
#include "control/cli/http_client.h"
#include "control/cli/pcap_client.h"
#include "control/model/model.h"
#include "control/store/store.h"

namespace {

using nlohmann::json;
using vigil::ctl::api::Response;

int Usage(const char* why) {
  if (why != nullptr) std::fprintf(stderr, "vigilctl: %s\n", why);
  std::fprintf(stderr,
               "usage: vigilctl [--socket PATH | --api HOST:PORT | --data-dir DIR] [--json] "
               "[--models-dir DIR] COMMAND\n"
               "  status\n"
               "  breaches [--model M] [--since T] [--limit N]\n"
               "  breach ID\n"
               "  search QUERY [--from T --to T | --last 60d] [--count-by day|hour|FIELD] "
               "[--limit N]\n"
               "  models\n"
               "  ack ID [--comment TEXT] | unack ID | comment ID TEXT\n"
               "  files [--query Q] [--from T --to T | --last 60d] [--limit N]\n"
               "  file get SHA256 -o FILE   (with --data-dir: --files-dir DIR)\n"
               "  respond list [--state pending|active|expired|cleared|refused|suppressed] "
               "[--limit N]\n"
               "  respond show ID | respond audit [--action ID] [--limit N]\n"
               "  respond confirm ID [--reason T] | respond clear ID [--reason T]\n"
               "  respond extend ID DURATION [--reason T]\n"
               "  respond block (--device IP [--direction both|outgoing|incoming] |\n"
               "                 --client IP --server IP --port N [--proto tcp|udp]) "
               "--duration D [--reason T]\n"
               "  pcap --host IP [--peer IP] [--port N] [--proto tcp|udp] --from T --to T -o FILE\n"
               "       (-o -: stdout; T also now, -5m, now-2h; needs a running control and the "
               "token)\n"
               "  config push FILE [--force] | config validate FILE | config get | config history"
               " | config rollback\n"
               "       (a running control and the token; docs/operations.md)\n"
               "D: 30m, 2h, 1d (block: 0 = until cleared)\n"
               "Changes over the API need the token: --token-file FILE or $VIGIL_API_TOKEN.\n"
               "T: 2017-10-20T18:43:22Z, 2017-10-20 or Unix seconds (packet time, UTC)\n");
  return 2;
}

std::string Str(const json& j, const char* k) {
  auto it = j.find(k);
  if (it == j.end() || it->is_null()) return "";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

int64_t WallNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// 3725 s -> "1h02m"; 90000 s -> "1d01h"; 42 s -> "42s".
std::string Span(int64_t secs) {
  if (secs < 0) secs = -secs;
  char buf[32];
  if (secs >= 86400) {
    std::snprintf(buf, sizeof buf, "%lldd%02lldh", static_cast<long long>(secs / 86400),
                  static_cast<long long>(secs % 86400 / 3600));
  } else if (secs >= 3600) {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(secs / 3600),
                  static_cast<long long>(secs % 3600 / 60));
  } else if (secs >= 60) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(secs / 60),
                  static_cast<long long>(secs % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(secs));
  }
  return buf;
}

// An action's expiry relative to now: "expires in 59m58s", "until cleared", "expired 3m ago".
std::string ExpiryText(const json& a) {
  const std::string state = Str(a, "state");
  const int64_t exp = a.value("expires_ns", int64_t{0});
  const int64_t dur = a.value("duration_ns", int64_t{0});
  const int64_t now = WallNowNs();
  if (state == "pending") {
    return dur == 0 ? "until cleared once confirmed" : Span(dur / 1000000000) + " once confirmed";
  }
  if (state == "active") {
    return exp == 0 ? "until cleared" : "expires in " + Span((exp - now) / 1000000000);
  }
  if (state == "expired") return "expired " + Span((now - exp) / 1000000000) + " ago";
  const int64_t changed = a.value("changed_ns", int64_t{0});
  return state + " " + Span((now - changed) / 1000000000) + " ago";
}

void PrintAction(const json& a) {
  const json& breach = a["breach_id"];
  std::printf("#%-4s %-10s %-19s %-36s %-26s %-12s drops %s resets %s\n", Str(a, "id").c_str(),
              Str(a, "state").c_str(), Str(a, "kind").c_str(), Str(a, "target").c_str(),
              ExpiryText(a).c_str(),
              breach.is_null() ? "manual" : ("breach #" + breach.dump()).c_str(),
              Str(a, "drops").c_str(), Str(a, "resets").c_str());
}

void PrintAudit(const json& e) {
  const json& id = e["action_id"];
  std::printf("%s  %-6s %-17s %-24s %s\n", Str(e, "time").c_str(),
              id.is_null() ? "-" : ("#" + id.dump()).c_str(), Str(e, "op").c_str(),
              Str(e, "who").c_str(), Str(e, "detail").c_str());
}

void PrintHuman(const std::string& command, const json& j) {
  if (j.contains("error") && !j.contains("state")) {
    std::printf("error: %s", Str(j, "error").c_str());
    if (j.contains("column")) std::printf(" (column %s)", Str(j, "column").c_str());
    std::printf("\n");
    return;
  }
  if (command == "status") {
    const json& s = j["store"];
    std::printf("store: %s events, %s breaches, %s bytes, %s .. %s\n", Str(s, "events").c_str(),
                Str(s, "breaches").c_str(), Str(s, "bytes").c_str(), Str(s, "oldest").c_str(),
                Str(s, "newest").c_str());
    for (const json& x : j["sensors"]) {
      std::printf("sensor %s: last seq %s\n", Str(x, "sensor").c_str(), Str(x, "last_seq").c_str());
    }
    if (j.contains("models")) std::printf("models: %s\n", Str(j, "models").c_str());
    std::printf("control: %s\n",
                j.value("running", false) ? "running" : "not running (store only)");
    if (j.contains("control")) std::printf("%s\n", j["control"].dump(2).c_str());
  } else if (command == "breaches") {
    for (const json& b : j["breaches"]) {
      std::printf("#%-5s %s  %-15s score %5.1f  %s%s\n", Str(b, "id").c_str(),
                  Str(b, "time").c_str(), Str(b, "device").c_str(), b.value("score", 0.0),
                  Str(b, "model").c_str(),
                  b.value("acknowledged", false) ? "  (acknowledged)" : "");
    }
    std::printf("%zu breach(es)\n", j["breaches"].size());
  } else if (command == "breach" || command == "ack" || command == "unack" ||
             command == "comment") {
    std::printf("breach #%s: %s\n  device %s at %s, score %.1f, priority %s\n  filter: %s\n",
                Str(j, "id").c_str(), Str(j, "model").c_str(), Str(j, "device").c_str(),
                Str(j, "time").c_str(), j.value("score", 0.0), Str(j, "priority").c_str(),
                Str(j, "filter").c_str());
    std::printf("  %s%s%s\n", j.value("acknowledged", false) ? "acknowledged" : "not acknowledged",
                Str(j, "comment").empty() ? "" : ", comment: ", Str(j, "comment").c_str());
    if (j.contains("action")) {
      const json& a = j["action"];
      std::printf("  response #%s: %s %s, %s, %s\n", Str(a, "id").c_str(), Str(a, "kind").c_str(),
                  Str(a, "target").c_str(), Str(a, "state").c_str(), ExpiryText(a).c_str());
    }
    if (command != "breach") return;
    std::printf("  event log (%zu):\n", j["event_log"].size());
    for (const json& e : j["event_log"]) {
      std::printf("  %s %s %-7s %s\n",
                  e.value("trigger", false) ? "*"
                  : e.value("after", false) ? ">"
                                            : " ",
                  Str(e, "time").c_str(), Str(e, "event_type").c_str(), Str(e, "message").c_str());
    }
  } else if (command == "search") {
    if (j.contains("counts")) {
      for (const json& c : j["counts"]) {
        std::printf("%-30s %s\n", Str(c, "key").c_str(), Str(c, "count").c_str());
      }
      return;
    }
    for (const json& e : j["events"]) {
      const json& ev = e["event"];
      std::printf("%s %-7s %s -> %s  %s\n", Str(ev, "timestamp").c_str(),
                  Str(ev, "event_type").c_str(), Str(ev, "src_ip").c_str(),
                  Str(ev, "dest_ip").c_str(), Str(ev, "message").c_str());
    }
    std::printf("%zu of %s event(s) matching %s\n", j["events"].size(), Str(j, "total").c_str(),
                Str(j, "query").c_str());
  } else if (command == "files") {
    for (const json& e : j["events"]) {
      const json& ev = e["event"];
      const json f = ev.value("fileinfo", json::object());
      std::printf("%s %s -> %s  %-9s %10s  %s  %s%s\n", Str(ev, "timestamp").c_str(),
                  Str(ev, "src_ip").c_str(), Str(ev, "dest_ip").c_str(), Str(f, "state").c_str(),
                  Str(f, "size").c_str(), Str(f, "sha256").empty() ? "-" : Str(f, "sha256").c_str(),
                  Str(f, "filename").c_str(), f.value("stored", false) ? "" : "  (not stored)");
    }
    std::printf("%zu of %s file(s)\n", j["events"].size(), Str(j, "total").c_str());
  } else if (command == "respond list") {
    for (const json& a : j["actions"]) PrintAction(a);
    std::printf("%zu action(s)\n", j["actions"].size());
  } else if (command == "respond audit") {
    for (const json& e : j["audit"]) PrintAudit(e);
  } else if (command.rfind("respond ", 0) == 0) {
    // show, or the action after confirm / extend / clear / block
    if (j.contains("error")) std::printf("error: %s\n", Str(j, "error").c_str());
    PrintAction(j);
    std::printf("  %s; mode %s; created %s; expires %s\n",
                Str(j, "model").empty() ? "manual block" : ("model " + Str(j, "model")).c_str(),
                Str(j, "mode").c_str(), Str(j, "created").c_str(),
                Str(j, "expires").empty() ? "-" : Str(j, "expires").c_str());
    if (!Str(j, "reason").empty()) std::printf("  reason: %s\n", Str(j, "reason").c_str());
    if (!Str(j, "first_drop").empty()) {
      std::printf("  first drop %s\n", Str(j, "first_drop").c_str());
    }
    if (j.contains("push")) {
      const json& p = j["push"];
      if (!p.value("attempted", false)) {
        std::printf("  nothing to push\n");
      } else if (p.value("pushed", false)) {
        std::printf("  pushed to the dataplane (generation %s)\n", Str(p, "generation").c_str());
      } else {
        std::printf("  NOT pushed yet (retried every second): %s\n", Str(p, "error").c_str());
      }
    }
    if (j.contains("audit")) {
      std::printf("  audit:\n");
      for (const json& e : j["audit"]) {
        std::printf("  ");
        PrintAudit(e);
      }
    }
  } else if (command == "models") {
    for (const json& m : j["models"]) {
      std::printf("%-50s priority %s\n", Str(m, "name").c_str(), Str(m, "priority").c_str());
    }
  } else {
    std::printf("%s\n", j.dump(2).c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string socket = "/run/vigil/api.sock", api_addr, data_dir, models_dir = "rules/models";
  std::string token_file, files_dir, output;
  bool as_json = false, force = false;
  std::vector<std::string> args;
  std::map<std::string, std::string> opts;
  static const char* kValued[] = {
      "--model",  "--since", "--limit", "--from",     "--to",     "--count-by",  "--comment",
      "--last",   "--query", "--state", "--reason",   "--device", "--direction", "--client",
      "--server", "--port",  "--proto", "--duration", "--action", "--host",      "--peer"};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    if (a == "--json") {
      as_json = true;
    } else if (a == "--force") {
      force = true;
    } else if (a == "--socket" || a == "--api" || a == "--data-dir" || a == "--models-dir" ||
               a == "--token-file") {
      const char* v = value();
      if (v == nullptr) return Usage((a + " needs a value").c_str());
      (a == "--socket"       ? socket
       : a == "--api"        ? api_addr
       : a == "--data-dir"   ? data_dir
       : a == "--token-file" ? token_file
                             : models_dir) = v;
    } else if (a == "--files-dir" || a == "-o" || a == "--output") {
      const char* v = value();
      if (v == nullptr) return Usage((a + " needs a value").c_str());
      (a == "--files-dir" ? files_dir : output) = v;
    } else if (a == "-h" || a == "--help") {
      return Usage(nullptr);
    } else if (a.rfind("--", 0) == 0) {
      bool known = false;
      for (const char* k : kValued) known |= a == k;
      if (!known) return Usage(("unknown option " + a).c_str());
      const char* v = value();
      if (v == nullptr) return Usage((a + " needs a value").c_str());
      opts[a.substr(2)] = v;
    } else {
      args.push_back(a);
    }
  }
  if (args.empty()) return Usage("no command");
  std::string command = args[0];
  auto opt = [&](const char* k) { return opts.count(k) ? opts[k] : std::string(); };
  // The API token: $VIGIL_API_TOKEN, else --token-file. False when the file cannot be read.
  auto read_token = [&](std::string* token) {
    if (const char* env = std::getenv("VIGIL_API_TOKEN"); env != nullptr && *env != '\0') {
      *token = env;
    } else if (!token_file.empty()) {
      std::ifstream in(token_file);
      if (!in || !(in >> *token)) {
        std::fprintf(stderr, "vigilctl: cannot read a token from %s\n", token_file.c_str());
        return false;
      }
    }
    return true;
  };
  if (command == "config") {
    // config push FILE [--force] | validate FILE | get | history | rollback (docs/operations.md)
    if (!data_dir.empty()) {
      std::fprintf(stderr, "vigilctl: config needs a running vigil-control; not --data-dir\n");
      return 1;
    }
    vigil::ctl::cli::ConfigCommandOptions co;
    co.endpoint = api_addr.empty() ? socket : api_addr;
    if (!read_token(&co.token)) return 1;
    const char* user = std::getenv("USER");
    if (user == nullptr || *user == '\0') {
      const passwd* pw = getpwuid(getuid());
      user = pw != nullptr ? pw->pw_name : nullptr;
    }
    co.who = user != nullptr && *user != '\0' ? user : "unknown";
    co.force = force;
    co.as_json = as_json;
    return vigil::ctl::cli::RunConfigCommand({args.begin() + 1, args.end()}, co);
  }
  if (command == "pcap") {
    // pcap --host IP [--peer IP] [--port N] [--proto P] --from T --to T -o FILE
    if (args.size() != 1) return Usage("pcap takes options only");
    if (!opts.count("host")) return Usage("pcap needs --host IP");
    if (!opts.count("from") || !opts.count("to")) return Usage("pcap needs --from T and --to T");
    if (output.empty()) return Usage("pcap needs -o FILE (-o -: standard output)");
    for (const char* k :
         {"model", "since", "limit", "count-by", "comment", "last", "query", "state", "reason",
          "device", "direction", "client", "server", "duration", "action"}) {
      if (opts.count(k)) return Usage(("pcap takes no --" + std::string(k)).c_str());
    }
    if (!data_dir.empty()) {
      std::fprintf(stderr,
                   "vigilctl: pcap needs a running vigil-control (it asks the dataplane); "
                   "not --data-dir\n");
      return 1;
    }
    std::string token;
    if (!read_token(&token)) return 1;
    const vigil::ctl::cli::PcapQuery q{opt("host"),  opt("peer"), opt("port"),
                                       opt("proto"), opt("from"), opt("to")};
    json facts;
    const std::string err = vigil::ctl::cli::FetchPcap(api_addr.empty() ? socket : api_addr, token,
                                                       q, output, WallNowNs(), &facts);
    if (!err.empty()) {
      std::fprintf(stderr, "vigilctl: pcap: %s\n", err.c_str());
      return 1;
    }
    // With -o - the pcap is on stdout: the facts go to stderr.
    std::FILE* info = output == "-" ? stderr : stdout;
    if (as_json) {
      std::fprintf(info, "%s\n", facts.dump().c_str());
    } else {
      std::fprintf(info, "%s\n", vigil::ctl::cli::PcapLine(output, facts).c_str());
    }
    return 0;
  }
  // respond SUB ...: the route, and for changes the JSON body (Api::RespondChange).
  std::string respond_target, respond_body;
  bool respond_change = false;
  int64_t respond_id = 0;
  if (command == "respond") {
    if (args.size() < 2)
      return Usage("respond needs list, show, confirm, extend, clear, block or audit");
    const std::string sub = args[1];
    command = "respond " + sub;
    auto id_arg = [&]() -> bool {
      if (args.size() < 3) return false;
      char* end = nullptr;
      respond_id = std::strtoll(args[2].c_str(), &end, 10);
      return !args[2].empty() && *end == '\0' && respond_id > 0;
    };
    json body = json::object();
    // Who: $USER, else the account's name (the audit log records it as "NAME via API").
    const char* user = std::getenv("USER");
    if (user == nullptr || *user == '\0') {
      const passwd* pw = getpwuid(getuid());
      user = pw != nullptr ? pw->pw_name : nullptr;
    }
    body["who"] = user != nullptr && *user != '\0' ? user : "unknown";
    if (opts.count("reason")) body["reason"] = opt("reason");
    if (sub == "list") {
      if (args.size() != 2) return Usage("respond list takes no argument (--state S)");
      respond_target = "/api/v1/respond/actions?state=" + vigil::ctl::cli::UrlEncode(opt("state")) +
                       "&limit=" + vigil::ctl::cli::UrlEncode(opt("limit"));
    } else if (sub == "show") {
      if (args.size() != 3 || !id_arg()) return Usage("respond show needs an action ID");
      respond_target = "/api/v1/respond/actions/" + std::to_string(respond_id);
    } else if (sub == "audit") {
      if (args.size() != 2) return Usage("respond audit takes no argument (--action ID)");
      respond_target = "/api/v1/respond/audit?action=" + vigil::ctl::cli::UrlEncode(opt("action")) +
                       "&limit=" + vigil::ctl::cli::UrlEncode(opt("limit"));
    } else if (sub == "confirm" || sub == "clear" || sub == "extend") {
      const size_t want = sub == "extend" ? 4 : 3;
      if (args.size() != want || !id_arg()) {
        return Usage(sub == "extend" ? "respond extend needs an action ID and a DURATION (30m)"
                                     : ("respond " + sub + " needs an action ID").c_str());
      }
      if (sub == "extend") body["duration"] = args[3];
      respond_change = true;
      respond_target = "/api/v1/respond/actions/" + std::to_string(respond_id) + "/" + sub;
    } else if (sub == "block") {
      if (args.size() != 2) return Usage("respond block takes options only");
      if (!opts.count("duration"))
        return Usage("respond block needs --duration D (0: until cleared)");
      body["duration"] = opt("duration");
      if (opts.count("device")) {
        if (opts.count("client") || opts.count("server") || opts.count("port") ||
            opts.count("proto")) {
          return Usage("respond block: --device or --client/--server/--port, not both");
        }
        const std::string dir = opts.count("direction") ? opt("direction") : "both";
        if (dir != "both" && dir != "outgoing" && dir != "incoming") {
          return Usage("--direction: expected both, outgoing or incoming");
        }
        body["kind"] = dir == "both" ? "quarantine_device" : "quarantine_" + dir;
        body["addr"] = opt("device");
      } else if (opts.count("client") && opts.count("server") && opts.count("port")) {
        if (opts.count("direction")) return Usage("--direction goes with --device");
        char* end = nullptr;
        const long port = std::strtol(opt("port").c_str(), &end, 10);
        if (opt("port").empty() || *end != '\0' || port < 1 || port > 65535) {
          return Usage("--port: expected 1..65535");
        }
        body["kind"] = "block_connection";
        body["addr"] = opt("client");
        body["peer"] = opt("server");
        body["server_port"] = port;
        body["proto"] = opts.count("proto") ? opt("proto") : "tcp";
      } else {
        return Usage("respond block needs --device IP, or --client IP --server IP --port N");
      }
      respond_change = true;
      respond_target = "/api/v1/respond/block";
    } else {
      return Usage(("unknown respond command " + sub).c_str());
    }
    if (respond_change) respond_body = body.dump();
  }
  // ack / unack / comment: the action and its JSON body (Api::UpdateBreach).
  const bool is_update = command == "ack" || command == "unack" || command == "comment";
  std::string action, update_body;
  int64_t update_id = 0;
  if (is_update) {
    const size_t want = command == "comment" ? 3 : 2;
    if (args.size() != want) {
      return Usage(command == "comment" ? "comment needs an ID and the TEXT (quote it)"
                                        : (command + " needs an ID").c_str());
    }
    char* end = nullptr;
    update_id = std::strtoll(args[1].c_str(), &end, 10);
    if (args[1].empty() || *end != '\0' || update_id <= 0) return Usage("ID: expected a number");
    action = command == "ack" ? "acknowledge" : command == "unack" ? "unacknowledge" : "comment";
    if (command == "comment") {
      update_body = json{{"comment", args[2]}}.dump();
    } else if (opts.count("comment")) {
      if (command == "unack") return Usage("unack takes no --comment");
      update_body = json{{"comment", opt("comment")}}.dump();
    }
  }
  // file get SHA256 -o FILE: the content, written to FILE ("-": stdout).
  const bool is_file_get = command == "file";
  if (is_file_get) {
    if (args.size() != 3 || args[1] != "get") return Usage("file get needs a SHA256");
    if (output.empty()) return Usage("file get needs -o FILE");
  }
  int status = 0;
  std::string body;
  if (!data_dir.empty()) {
    // A stopped (or running) store, read-only, through the same handlers as the API.
    std::string err;
    vigil::ctl::store::Options o;
    o.dir = data_dir;
    o.read_only = !is_update;  // a change needs the writer (fails while control runs)
    if (respond_change) {
      std::fprintf(stderr,
                   "vigilctl: %s needs a running vigil-control (it tells the dataplane); "
                   "--data-dir reads actions only\n",
                   command.c_str());
      return 1;
    }
    if (is_update && !std::filesystem::exists(data_dir + "/vigil.db")) {
      std::fprintf(stderr, "vigilctl: %s/vigil.db: no store there\n", data_dir.c_str());
      return 1;
    }
    auto store = vigil::ctl::store::Store::Open(o, &err);
    if (!store) {
      std::fprintf(stderr, "vigilctl: %s\n", err.c_str());
      return 1;
    }
    std::optional<vigil::ctl::model::ModelSet> models;
    if (command == "models") {
      std::vector<vigil::ctl::model::LoadError> errors;
      models = vigil::ctl::model::ModelSet::LoadDir(models_dir, &errors);
      if (!models) {
        for (const auto& e : errors) std::fprintf(stderr, "%s\n", e.ToString().c_str());
        return 1;
      }
    }
    vigil::ctl::api::Api api(store.get(), models ? &*models : nullptr, nullptr, nullptr,
                             [&](int64_t id, const vigil::ctl::store::Store::BreachUpdate& u) {
                               std::string e;
                               if (store->UpdateBreach(id, u, &e)) return Response{};
                               return Response{e.rfind("no breach", 0) == 0 ? 404 : 500,
                                               "application/json", json{{"error", e}}.dump()};
                             });
    Response r;
    if (is_update) {
      r = api.UpdateBreach(update_id, action, update_body);
    } else if (command == "status") {
      r = api.Status();
    } else if (command == "breaches") {
      r = api.Breaches(opt("model"), opt("since"), opt("limit"));
    } else if (command == "breach") {
      if (args.size() != 2) return Usage("breach needs an ID");
      r = api.Breach(std::atoll(args[1].c_str()));
    } else if (command == "search") {
      if (args.size() != 2) return Usage("search needs one QUERY argument (quote it)");
      r = api.Search(args[1], opt("from"), opt("to"), opt("last"), opt("limit"), opt("count-by"));
    } else if (command == "models") {
      r = api.Models();
    } else if (command == "files") {
      if (args.size() != 1) return Usage("files takes no argument (use --query Q)");
      r = api.Files(opt("query"), opt("from"), opt("to"), opt("last"), opt("limit"));
    } else if (is_file_get) {
      api.set_files_dir(files_dir);
      r = api.File(args[2]);
    } else if (command == "respond list") {
      r = api.RespondActions(opt("state"), opt("limit"));
    } else if (command == "respond show") {
      r = api.RespondAction(respond_id);
    } else if (command == "respond audit") {
      r = api.RespondAudit(opt("action"), opt("limit"));
    } else {
      return Usage(("unknown command " + command).c_str());
    }
    status = r.status;
    body = r.body;
  } else {
    using vigil::ctl::cli::UrlEncode;
    std::string target, method = "GET", headers;
    if (is_update || respond_change) {
      method = "POST";
      target = respond_change ? respond_target
                              : "/api/v1/breaches/" + std::to_string(update_id) + "/" + action;
      if (respond_change) update_body = respond_body;
      std::string token;
      if (!read_token(&token)) return 1;
      if (!token.empty()) headers = "Authorization: Bearer " + token + "\r\n";
    } else if (command == "status") {
      target = "/api/v1/status";
    } else if (command == "breaches") {
      target = "/api/v1/breaches?model=" + UrlEncode(opt("model")) +
               "&since=" + UrlEncode(opt("since")) + "&limit=" + UrlEncode(opt("limit"));
    } else if (command == "breach") {
      if (args.size() != 2) return Usage("breach needs an ID");
      target = "/api/v1/breaches/" + UrlEncode(args[1]);
    } else if (command == "search") {
      if (args.size() != 2) return Usage("search needs one QUERY argument (quote it)");
      target = "/api/v1/search?q=" + UrlEncode(args[1]) + "&from=" + UrlEncode(opt("from")) +
               "&to=" + UrlEncode(opt("to")) + "&last=" + UrlEncode(opt("last")) +
               "&limit=" + UrlEncode(opt("limit")) + "&count_by=" + UrlEncode(opt("count-by"));
    } else if (command == "models") {
      target = "/api/v1/models";
    } else if (command == "files") {
      if (args.size() != 1) return Usage("files takes no argument (use --query Q)");
      target = "/api/v1/files?q=" + UrlEncode(opt("query")) + "&from=" + UrlEncode(opt("from")) +
               "&to=" + UrlEncode(opt("to")) + "&last=" + UrlEncode(opt("last")) +
               "&limit=" + UrlEncode(opt("limit"));
    } else if (is_file_get) {
      target = "/api/v1/files/" + UrlEncode(args[2]);
    } else if (!respond_target.empty()) {
      target = respond_target;
    } else {
      return Usage(("unknown command " + command).c_str());
    }
    vigil::ctl::cli::HttpResult res;
    const std::string err = vigil::ctl::cli::HttpRequest(
        api_addr.empty() ? socket : api_addr, method, target, update_body, &res, headers);
    if (!err.empty()) {
      std::fprintf(stderr, "vigilctl: %s (is vigil-control running? --data-dir reads a store)\n",
                   err.c_str());
      return 1;
    }
    status = res.status;
    body = res.body;
  }
  if (is_file_get && status == 200) {
    if (output == "-") {
      std::fwrite(body.data(), 1, body.size(), stdout);
      return 0;
    }
    std::ofstream out(output, std::ios::binary | std::ios::trunc);
    out.write(body.data(), static_cast<std::streamsize>(body.size()));
    out.close();
    if (!out) {
      std::fprintf(stderr, "vigilctl: cannot write %s\n", output.c_str());
      return 1;
    }
    std::fprintf(stderr, "%zu bytes written to %s\n", body.size(), output.c_str());
    return 0;
  }
  if (as_json) {
    std::printf("%s\n", body.c_str());
  } else {
    const json j = json::parse(body, nullptr, false);
    if (j.is_discarded()) {
      std::printf("%s\n", body.c_str());
    } else {
      PrintHuman(command, j);
    }
  }
  return status >= 200 && status < 300 ? 0 : 1;
}
