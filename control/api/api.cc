#include "control/api/api.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <vector>

#include "control/api/dataplane_metrics.h"
#include "control/respond/command_client.h"

namespace vigil::ctl::api {
namespace {

Response Json(int status, const nlohmann::json& j) {
  Response r;
  r.status = status;
  r.body = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

Response Error(int status, const std::string& message) {
  return Json(status, nlohmann::json{{"error", message}});
}

std::optional<uint64_t> ParseCount(const std::string& s, uint64_t dflt, uint64_t max) {
  if (s.empty()) return dflt;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (s[0] == '-' || *end != '\0' || v > max) return std::nullopt;
  return v;
}

// "Bearer TOKEN" against the token, in time independent of where they differ.
bool TokenMatches(const std::string& header, const std::string& token) {
  const std::string want = "Bearer " + token;
  unsigned diff = header.size() != want.size() ? 1u : 0u;
  for (size_t i = 0; i < want.size(); ++i) {
    diff |= static_cast<unsigned char>(want[i]) ^
            static_cast<unsigned char>(i < header.size() ? header[i] : 0);
  }
  return diff == 0;
}

int64_t WallNowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

constexpr const char* kActionStates[] = {"pending", "active",  "expired",
                                         "cleared", "refused", "suppressed"};

// The breach's response action (the newest when there are several), or nothing.
void AddAction(nlohmann::json* j, store::Store* store, int64_t breach_id) {
  const std::vector<store::Action> actions = store->ActionsOfBreach(breach_id);
  if (actions.empty()) return;
  (*j)["action"] = respond::ActionJson(actions.back(), WallNowNs());
}

nlohmann::json EventJson(const store::StoredEvent& e) {
  nlohmann::json j = nlohmann::json::parse(e.json, nullptr, false);
  if (j.is_discarded()) j = nlohmann::json{{"message", e.message}};
  return nlohmann::json{{"id", e.id}, {"sensor", e.sensor}, {"seq", e.seq}, {"event", j}};
}

// An unsigned integer field of a dataplane answer (0 when absent or of another type).
uint64_t U64(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return 0;
  if (it->is_number_unsigned()) return it->get<uint64_t>();
  if (it->is_number_integer())
    return static_cast<uint64_t>(std::max<int64_t>(0, it->get<int64_t>()));
  return 0;
}

// The canonical text of an IPv4 or IPv6 address, or nothing.
std::optional<std::string> CanonicalAddress(const std::string& s) {
  unsigned char raw[16];
  char text[INET6_ADDRSTRLEN];
  if (inet_pton(AF_INET, s.c_str(), raw) == 1) {
    return std::string(inet_ntop(AF_INET, raw, text, sizeof text));
  }
  if (inet_pton(AF_INET6, s.c_str(), raw) == 1) {
    return std::string(inet_ntop(AF_INET6, raw, text, sizeof text));
  }
  return std::nullopt;
}

// Opens the pcap the dataplane wrote, checks that it is one (absolute path, a regular file that
// is not a symbolic link, a pcap magic number), and unlinks it: its bytes stay readable through
// the returned descriptor. A path that fails a check is left alone (a confused or compromised
// dataplane cannot make control read or delete anything but a pcap).
int OpenExport(const std::string& path, uint64_t* size, std::string* error) {
  if (path.empty() || path[0] != '/' || path.find("/../") != std::string::npos ||
      path.find('\0') != std::string::npos) {
    *error = "the dataplane answered with a bad path \"" + path + "\"";
    return -1;
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    *error = "cannot open the dataplane's export " + path + ": " + std::strerror(errno);
    return -1;
  }
  struct stat st;
  uint32_t magic = 0;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    *error = "the dataplane's export " + path + " is not a regular file";
  } else if (pread(fd, &magic, sizeof magic, 0) != static_cast<ssize_t>(sizeof magic) ||
             (magic != 0xa1b2c3d4 && magic != 0xd4c3b2a1 && magic != 0xa1b23c4d &&
              magic != 0x4d3cb2a1)) {
    *error = "the dataplane's export " + path + " is not a pcap file";
  } else {
    if (::unlink(path.c_str()) != 0) {
      std::fprintf(stderr, "vigil-control: pcap export: cannot delete %s: %s\n", path.c_str(),
                   std::strerror(errno));
    }
    *size = static_cast<uint64_t>(st.st_size);
    return fd;
  }
  ::close(fd);
  return -1;
}

}  // namespace

std::optional<int64_t> ParseWindowTime(const std::string& s) {
  // Unix seconds, with an optional fraction of at most 9 digits.
  const size_t dot = s.find('.');
  const std::string secs = s.substr(0, dot);
  const std::string frac = dot == std::string::npos ? "" : s.substr(dot + 1);
  auto all_digits = [](const std::string& t) {
    return !t.empty() &&
           std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  if (all_digits(secs) && (dot == std::string::npos || all_digits(frac))) {
    if (secs.size() > 11 || frac.size() > 9) return std::nullopt;
    int64_t ns = std::stoll(secs) * 1'000'000'000;
    if (!frac.empty()) ns += std::stoll(frac + std::string(9 - frac.size(), '0'));
    return ns;
  }
  if (s.empty() || !(s[0] >= '0' && s[0] <= '9')) return std::nullopt;
  const auto t = ParseTimeArg(s);
  if (!t || *t < 0) return std::nullopt;
  return t;
}

std::string FormatTimeNs(int64_t ns) {
  const int64_t secs_part = ns >= 0 ? ns / 1'000'000'000 : (ns - 999'999'999) / 1'000'000'000;
  const int64_t frac = ns - secs_part * 1'000'000'000;
  const time_t secs = static_cast<time_t>(secs_part);
  tm t;
  gmtime_r(&secs, &t);
  char buf[64];
  const size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
  std::string out(buf, n);
  if (frac != 0) {
    std::snprintf(buf, sizeof buf, ".%09lld", static_cast<long long>(frac));
    std::string f = buf;
    while (f.back() == '0') f.pop_back();
    out += f;
  }
  return out + "Z";
}

std::optional<int64_t> ParseDurationArg(const std::string& s) {
  if (s.size() < 2) return std::nullopt;
  const char unit = s.back();
  const std::string num = s.substr(0, s.size() - 1);
  char* end = nullptr;
  const long long v = std::strtoll(num.c_str(), &end, 10);
  if (num.empty() || *end != '\0' || v <= 0 || v > 36500LL * 86400) return std::nullopt;
  int64_t mult;
  switch (unit) {
    case 's':
      mult = 1;
      break;
    case 'm':
      mult = 60;
      break;
    case 'h':
      mult = 3600;
      break;
    case 'd':
      mult = 86400;
      break;
    default:
      return std::nullopt;
  }
  return static_cast<int64_t>(v) * mult * 1'000'000'000;
}

std::optional<int64_t> ParseTimeArg(const std::string& s) {
  if (s.empty()) return std::nullopt;
  bool digits = true;
  for (char c : s) digits &= c >= '0' && c <= '9';
  if (digits && s.size() <= 12) return static_cast<int64_t>(std::stoll(s)) * 1'000'000'000;
  std::string t = s;
  if (t.size() == 10) t += "T00:00:00Z";
  if (auto v = store::ParseEveTimestamp(t)) return v;
  // ParseEveTimestamp knows EVE's "+0000"; accept a trailing Z too.
  if (!t.empty() && t.back() == 'Z') {
    t.pop_back();
    if (t.find('.') == std::string::npos) t += ".000000";
    return store::ParseEveTimestamp(t + "+0000");
  }
  return std::nullopt;
}

std::string FormatTime(int64_t ns) {
  const time_t secs = static_cast<time_t>(ns / 1'000'000'000);
  tm t;
  gmtime_r(&secs, &t);
  char buf[64];
  const size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
  std::snprintf(buf + n, sizeof buf - n, ".%06lldZ",
                static_cast<long long>((ns % 1'000'000'000) / 1000));
  return buf;
}

nlohmann::json BreachJson(const store::Breach& b, store::Store* events) {
  nlohmann::json details = nlohmann::json::parse(b.details_json, nullptr, false);
  if (details.is_discarded()) details = nullptr;
  nlohmann::json j{{"id", b.id},
                   {"model", b.model},
                   {"priority", b.priority},
                   {"device", b.device},
                   {"time", FormatTime(b.ts_ns)},
                   {"ts_ns", b.ts_ns},
                   {"score", b.score},
                   {"component", b.component},
                   {"filter", b.filter},
                   {"details", details},
                   {"acknowledged", b.acknowledged},
                   {"comment", b.comment},
                   {"event_count", b.events.size()}};
  if (events != nullptr) {
    nlohmann::json log = nlohmann::json::array();
    std::vector<uint64_t> flows;
    std::vector<int64_t> listed;
    for (const store::BreachEventRef& ref : b.events) {
      nlohmann::json e{{"id", ref.event_id}, {"trigger", ref.trigger}};
      const auto ev = events->Event(ref.event_id);
      if (ev) {
        e["time"] = FormatTime(ev->ts_ns);
        e["event_type"] = ev->event_type;
        e["message"] = ev->message;
        e["event"] = EventJson(*ev)["event"];
      } else {
        e["missing"] = true;  // removed by retention since
      }
      if (ev && ev->flow_id != 0 &&
          std::find(flows.begin(), flows.end(), ev->flow_id) == flows.end()) {
        flows.push_back(ev->flow_id);
      }
      listed.push_back(ref.event_id);
      log.push_back(std::move(e));
    }
    // What the same flows did next, read now: the events after the firing within one model
    // interval (stored after the breach was written, e.g. the job file read that followed the
    // atsvc bind), marked "after".
    int64_t interval = int64_t{3600} * 1000000000;
    if (details.is_object() && details.contains("interval_ns") &&
        details["interval_ns"].is_number_integer()) {
      interval = details["interval_ns"].get<int64_t>();
    }
    size_t added = 0;
    for (const store::StoredEvent& ev :
         events->EventsOfFlows(flows, b.ts_ns, b.ts_ns + std::max<int64_t>(interval, 0))) {
      if (added >= kMaxAfterEvents) break;
      if (std::find(listed.begin(), listed.end(), ev.id) != listed.end()) continue;
      log.push_back({{"id", ev.id},
                     {"trigger", false},
                     {"after", true},
                     {"time", FormatTime(ev.ts_ns)},
                     {"event_type", ev.event_type},
                     {"message", ev.message},
                     {"event", EventJson(ev)["event"]}});
      ++added;
    }
    j["event_log"] = std::move(log);
  }
  return j;
}

Api::Api(store::Store* store, const model::ModelSet* models, std::function<nlohmann::json()> status,
         std::function<std::string()> metrics, BreachUpdater update, std::string token)
    : store_(store),
      models_(models),
      status_(std::move(status)),
      metrics_(std::move(metrics)),
      update_(std::move(update)),
      token_(std::move(token)) {}

Response Api::UpdateBreach(int64_t id, const std::string& action, const std::string& body) {
  if (!update_) return Error(405, "this API is read-only");
  std::optional<std::string> comment;
  if (!body.empty()) {
    const nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return Error(400, "body: expected a JSON object");
    for (const auto& [k, v] : j.items()) {
      if (k != "comment") return Error(400, "body: unknown key '" + k + "' (expected comment)");
      if (!v.is_string()) return Error(400, "body: comment must be a string");
      comment = v.get<std::string>();
      if (comment->size() > kMaxCommentBytes) {
        return Error(400,
                     "body: comment longer than " + std::to_string(kMaxCommentBytes) + " bytes");
      }
    }
  }
  store::Store::BreachUpdate u;
  if (action == "acknowledge") {
    u.acknowledged = true;
    u.comment = comment;
  } else if (action == "unacknowledge") {
    if (comment) return Error(400, "unacknowledge takes no comment");
    u.acknowledged = false;
  } else if (action == "comment") {
    if (!comment) return Error(400, "body: {\"comment\": \"...\"} is required");
    u.comment = comment;
  } else {
    return Error(404,
                 "no such breach action: " + action + " (acknowledge, unacknowledge or comment)");
  }
  const Response r = update_(id, u);
  if (r.status != 200) return r;
  return Breach(id);
}

Response Api::Status() {
  const store::Store::Stats s = store_->GetStats();
  nlohmann::json j{{"store",
                    {{"events", s.events},
                     {"breaches", s.breaches},
                     {"bytes", s.bytes},
                     {"oldest", s.oldest_ts_ns ? FormatTime(s.oldest_ts_ns) : ""},
                     {"newest", s.newest_ts_ns ? FormatTime(s.newest_ts_ns) : ""}}}};
  nlohmann::json sensors = nlohmann::json::array();
  for (const auto& [name, seq] : store_->Sensors()) {
    sensors.push_back({{"sensor", name}, {"last_seq", seq}});
  }
  j["sensors"] = std::move(sensors);
  const std::shared_ptr<const model::ModelSet> current = models_fn_ ? models_fn_() : nullptr;
  if (const model::ModelSet* ms = current ? current.get() : models_) {
    j["models"] = ms->models().size();
  }
  j["running"] = static_cast<bool>(status_);
  if (status_) j["control"] = status_();
  return Json(200, j);
}

Response Api::Breaches(const std::string& model, const std::string& since,
                       const std::string& limit) {
  int64_t since_ns = std::numeric_limits<int64_t>::min();
  if (!since.empty()) {
    const auto t = ParseTimeArg(since);
    if (!t) return Error(400, "since: expected a time (2017-10-20T18:43:22Z or Unix seconds)");
    since_ns = *t;
  }
  const auto n = ParseCount(limit, 100, 100000);
  if (!n) return Error(400, "limit: expected an integer in 0..100000");
  nlohmann::json list = nlohmann::json::array();
  for (const store::Breach& b : store_->Breaches(model, since_ns, *n)) {
    nlohmann::json j = BreachJson(b, nullptr);
    AddAction(&j, store_, b.id);
    list.push_back(std::move(j));
  }
  return Json(200, nlohmann::json{{"breaches", list}});
}

Response Api::Breach(int64_t id) {
  const auto b = store_->GetBreach(id);
  if (!b) return Error(404, "no breach " + std::to_string(id));
  nlohmann::json j = BreachJson(*b, store_);
  AddAction(&j, store_, b->id);
  return Json(200, j);
}

Response Api::Search(const std::string& q, const std::string& from, const std::string& to,
                     const std::string& last, const std::string& limit,
                     const std::string& count_by) {
  query::Error qe;
  const auto query = query::Query::Parse(q, &qe);
  if (!query) {
    return Json(400, nlohmann::json{{"error", qe.message}, {"column", qe.column}, {"query", q}});
  }
  store::SearchOptions o;
  if (!last.empty()) {
    if (!from.empty() || !to.empty()) return Error(400, "last: not together with from/to");
    const auto d = ParseDurationArg(last);
    if (!d) return Error(400, "last: expected a duration such as 60d, 24h, 30m");
    // Packet time: "the last 60 days" of the stored history, which for a replayed capture is
    // the capture's time, not the wall clock's.
    const int64_t newest = store_->GetStats().newest_ts_ns;
    o.to_ns = newest;
    o.from_ns = newest - *d;
  }
  if (!from.empty()) {
    const auto t = ParseTimeArg(from);
    if (!t) return Error(400, "from: expected a time (2017-10-20T18:43:22Z or Unix seconds)");
    o.from_ns = *t;
  }
  if (!to.empty()) {
    const auto t = ParseTimeArg(to);
    if (!t) return Error(400, "to: expected a time (2017-10-20T18:43:22Z or Unix seconds)");
    o.to_ns = *t;
  }
  const auto n = ParseCount(limit, 100, 100000);
  if (!n) return Error(400, "limit: expected an integer in 0..100000");
  o.limit = *n;
  nlohmann::json j{{"query", query->ToString()}};
  if (o.from_ns != std::numeric_limits<int64_t>::min()) j["from"] = FormatTime(o.from_ns);
  if (o.to_ns != std::numeric_limits<int64_t>::max()) j["to"] = FormatTime(o.to_ns);
  std::string err;
  if (!count_by.empty()) {
    store::CountBy by = store::CountBy::kField;
    std::string field;
    if (count_by == "day") {
      by = store::CountBy::kDay;
    } else if (count_by == "hour") {
      by = store::CountBy::kHour;
    } else {
      field = count_by;
    }
    nlohmann::json counts = nlohmann::json::array();
    for (const auto& [key, count] : store_->Count(*query, o, by, field, &err)) {
      counts.push_back({{"key", key}, {"count", count}});
    }
    if (!err.empty()) return Error(500, err);
    j["count_by"] = count_by;
    j["counts"] = std::move(counts);
    return Json(200, j);
  }
  uint64_t total = 0;
  nlohmann::json events = nlohmann::json::array();
  for (const store::StoredEvent& e : store_->Search(*query, o, &total, &err)) {
    events.push_back(EventJson(e));
  }
  if (!err.empty()) return Error(500, err);
  j["total"] = total;
  j["events"] = std::move(events);
  return Json(200, j);
}

Response Api::Files(const std::string& q, const std::string& from, const std::string& to,
                    const std::string& last, const std::string& limit) {
  const std::string query =
      q.empty() ? "event_type:fileinfo" : "event_type:fileinfo AND (" + q + ")";
  return Search(query, from, to, last, limit, "");
}

Response Api::File(const std::string& sha256) {
  if (sha256.size() != 64) return Error(400, "sha256: expected 64 hex digits");
  std::string sha = sha256;
  for (char& c : sha) {
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c + 32);
    // Only hex digits: nothing in the name can leave the files directory.
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return Error(400, "sha256: expected 64 hex digits");
    }
  }
  if (files_dir_.empty()) return Error(404, "no files directory is configured (files_dir)");
  std::ifstream in(files_dir_ + "/" + sha.substr(0, 2) + "/" + sha, std::ios::binary);
  if (!in) return Error(404, "file " + sha + " is not in the store");
  Response r;
  r.content_type = "application/octet-stream";
  r.body.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return r;
}

Response Api::Models() {
  nlohmann::json list = nlohmann::json::array();
  const std::shared_ptr<const model::ModelSet> current = models_fn_ ? models_fn_() : nullptr;
  if (const model::ModelSet* ms = current ? current.get() : models_) {
    for (const model::Model& m : ms->models()) list.push_back(m.ToJson());
  }
  return Json(200, nlohmann::json{{"models", list}});
}

Response Api::Metrics() {
  Response r;
  r.content_type = "text/plain; version=0.0.4";
  const store::Store::Stats s = store_->GetStats();
  r.body =
      "# HELP vigil_store_events Events in the store.\n# TYPE vigil_store_events gauge\n"
      "vigil_store_events " +
      std::to_string(s.events) +
      "\n# HELP vigil_store_breaches Breaches in the store.\n# TYPE vigil_store_breaches gauge\n"
      "vigil_store_breaches " +
      std::to_string(s.breaches) +
      "\n# HELP vigil_store_bytes Size of the store on disk.\n# TYPE vigil_store_bytes gauge\n"
      "vigil_store_bytes " +
      std::to_string(s.bytes) + "\n";
  if (metrics_) r.body += metrics_();
  if (!dataplane_socket_.empty()) {
    // The dataplane's counters, read now over its command socket (one short request; a dataplane
    // that is down or slow only costs vigil_dataplane_up 0).
    respond::CommandClient client({.socket_path = dataplane_socket_, .timeout_ms = 1000});
    std::string err;
    const auto answer = client.Call("counters", nlohmann::json::object(), &err, true);
    const bool up = answer && answer->value("ok", false) && answer->contains("counters");
    r.body += DataplaneMetrics(up ? (*answer)["counters"] : nlohmann::json(), up);
  }
  return r;
}

Response Api::RespondActions(const std::string& state, const std::string& limit) {
  if (!state.empty() && std::find(std::begin(kActionStates), std::end(kActionStates), state) ==
                            std::end(kActionStates)) {
    return Error(
        400,
        "state: expected pending, active, expired, cleared, refused or suppressed, got " + state);
  }
  const auto n = ParseCount(limit, 100, 100000);
  if (!n) return Error(400, "limit: expected an integer in 0..100000");
  const int64_t now = WallNowNs();
  nlohmann::json list = nlohmann::json::array();
  for (const store::Action& a : store_->Actions(state, *n)) {
    list.push_back(respond::ActionJson(a, now));
  }
  return Json(200, nlohmann::json{{"actions", list}});
}

Response Api::RespondAction(int64_t id) {
  const auto a = store_->GetAction(id);
  if (!a) return Error(404, "no action " + std::to_string(id));
  nlohmann::json j = respond::ActionJson(*a, WallNowNs());
  nlohmann::json audit = nlohmann::json::array();
  for (const store::AuditEntry& e : store_->Audit(id, 1000)) audit.push_back(respond::AuditJson(e));
  j["audit"] = std::move(audit);
  return Json(200, j);
}

Response Api::RespondAudit(const std::string& action, const std::string& limit) {
  const auto id = ParseCount(action, 0, INT64_MAX);
  if (!id) return Error(400, "action: expected an action id");
  const auto n = ParseCount(limit, 100, 100000);
  if (!n) return Error(400, "limit: expected an integer in 0..100000");
  nlohmann::json list = nlohmann::json::array();
  for (const store::AuditEntry& e : store_->Audit(static_cast<int64_t>(*id), *n)) {
    list.push_back(respond::AuditJson(e));
  }
  return Json(200, nlohmann::json{{"audit", list}});
}

Response Api::RespondChange(int64_t id, const std::string& op_name, const std::string& body) {
  if (!respond_) return Error(405, "this API is read-only (responses need a running control)");
  respond::Operation op;
  std::vector<std::string> keys = {"who", "reason"};
  if (op_name == "confirm") {
    op.type = respond::Operation::Type::kConfirm;
  } else if (op_name == "clear") {
    op.type = respond::Operation::Type::kClear;
  } else if (op_name == "extend") {
    op.type = respond::Operation::Type::kExtend;
    keys.push_back("duration");
  } else if (op_name == "block") {
    op.type = respond::Operation::Type::kBlock;
    keys.insert(keys.end(),
                {"duration", "kind", "addr", "peer", "client_port", "server_port", "proto"});
  } else {
    return Error(404, "no such action operation: " + op_name + " (confirm, extend or clear)");
  }
  op.id = id;
  nlohmann::json j = nlohmann::json::object();
  if (!body.empty()) {
    j = nlohmann::json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return Error(400, "body: expected a JSON object");
  }
  std::string who, duration;
  bool has_duration = false;
  for (const auto& [k, v] : j.items()) {
    if (std::find(keys.begin(), keys.end(), k) == keys.end()) {
      std::string list;
      for (const std::string& key : keys) list += (list.empty() ? "" : ", ") + key;
      return Error(400,
                   "body: unknown key '" + k + "' for " + op_name + " (expected " + list + ")");
    }
    if (k == "client_port" || k == "server_port") {
      if (!v.is_number_unsigned() || v.get<uint64_t>() > 65535) {
        return Error(400, "body: " + k + " must be an integer in 0..65535");
      }
      (k == "client_port" ? op.client_port : op.server_port) =
          static_cast<uint16_t>(v.get<uint64_t>());
      continue;
    }
    if (k == "proto") {
      std::optional<uint8_t> p;
      if (v.is_number_unsigned() && v.get<uint64_t>() <= 255) {
        p = static_cast<uint8_t>(v.get<uint64_t>());
      } else if (v.is_string()) {
        p = respond::ParseProto(v.get<std::string>());
      }
      if (!p) return Error(400, "body: proto must be tcp, udp, any or a number 0..255");
      op.proto = *p;
      continue;
    }
    if (!v.is_string()) return Error(400, "body: " + k + " must be a string");
    const std::string sv = v.get<std::string>();
    if (sv.size() > kMaxCommentBytes) {
      return Error(400,
                   "body: " + k + " longer than " + std::to_string(kMaxCommentBytes) + " bytes");
    }
    if (k == "who") who = sv;
    if (k == "reason") op.reason = sv;
    if (k == "kind") op.kind = sv;
    if (k == "addr") op.addr = sv;
    if (k == "peer") op.peer = sv;
    if (k == "duration") {
      duration = sv;
      has_duration = true;
    }
  }
  if (op.type == respond::Operation::Type::kExtend || op.type == respond::Operation::Type::kBlock) {
    if (!has_duration) {
      return Error(
          400, "body: \"duration\" is required (30m, 2h, 1d" +
                   std::string(op.type == respond::Operation::Type::kBlock ? "; 0: until cleared)"
                                                                           : ")"));
    }
    if (duration == "0" && op.type == respond::Operation::Type::kBlock) {
      op.duration_ns = 0;
    } else {
      const auto d = ParseDurationArg(duration);
      if (!d) return Error(400, "body: duration: expected a duration such as 30m, 2h, 1d");
      op.duration_ns = *d;
    }
  }
  if (op.type == respond::Operation::Type::kBlock && op.kind.empty()) {
    return Error(400,
                 "body: \"kind\" is required (block_connection, quarantine_device, "
                 "quarantine_outgoing, quarantine_incoming)");
  }
  // Who claimed it: the token proves access, not identity; the audit says so.
  op.who = (who.empty() ? std::string("unknown") : who) + " via API";
  const respond::OpResult r = respond_(op);
  if (r.status != 200 && r.id == 0) return Error(r.status, r.error);
  const auto a = store_->GetAction(r.id);
  nlohmann::json out = a ? respond::ActionJson(*a, WallNowNs()) : nlohmann::json{{"id", r.id}};
  if (r.status != 200) out["error"] = r.error;
  out["push"] = {{"attempted", r.push_attempted},
                 {"pushed", r.pushed},
                 {"error", r.push_error},
                 {"generation", r.generation}};
  return Json(r.status, out);
}

Response Api::Pcaps(const std::map<std::string, std::string>& query) {
  static const char* kKeys[] = {"host", "peer", "port", "proto", "from", "to"};
  for (const auto& [k, v] : query) {
    if (std::find_if(std::begin(kKeys), std::end(kKeys),
                     [&](const char* key) { return k == key; }) == std::end(kKeys)) {
      return Error(400,
                   "unknown parameter '" + k + "' (expected host, peer, port, proto, from, to)");
    }
  }
  auto arg = [&](const char* k) {
    auto it = query.find(k);
    return it == query.end() ? std::string() : it->second;
  };
  nlohmann::json fields = nlohmann::json::object();
  nlohmann::json facts = nlohmann::json::object();
  if (arg("host").empty()) return Error(400, "host: required (an IPv4 or IPv6 address)");
  const auto host = CanonicalAddress(arg("host"));
  if (!host)
    return Error(400, "host: expected an IPv4 or IPv6 address, got \"" + arg("host") + "\"");
  fields["host"] = facts["host"] = *host;
  if (!arg("peer").empty()) {
    const auto peer = CanonicalAddress(arg("peer"));
    if (!peer) {
      return Error(400, "peer: expected an IPv4 or IPv6 address, got \"" + arg("peer") + "\"");
    }
    fields["peer"] = facts["peer"] = *peer;
  }
  if (!arg("port").empty()) {
    const auto port = ParseCount(arg("port"), 0, 65535);
    if (!port || *port == 0) return Error(400, "port: expected an integer in 1..65535");
    fields["port"] = facts["port"] = *port;
  }
  if (!arg("proto").empty()) {
    const auto proto = respond::ParseProto(arg("proto"));
    if (!proto) return Error(400, "proto: expected tcp, udp, icmp, any or a number 0..255");
    if (*proto != 0) fields["proto"] = facts["proto"] = *proto;
  }
  int64_t window[2];
  for (int i = 0; i < 2; ++i) {
    const char* k = i == 0 ? "from" : "to";
    if (arg(k).empty()) {
      return Error(400, std::string(k) +
                            ": required (RFC 3339 such as 2026-11-26T10:00:00Z, or Unix seconds)");
    }
    const auto t = ParseWindowTime(arg(k));
    if (!t) {
      return Error(400, std::string(k) +
                            ": expected RFC 3339 (2026-11-26T10:00:00Z) or Unix seconds "
                            "(1795000000.5), got \"" +
                            arg(k) + "\"");
    }
    window[i] = *t;
  }
  if (window[0] > window[1]) {
    return Error(
        400, "from: after to (" + FormatTimeNs(window[0]) + " > " + FormatTimeNs(window[1]) + ")");
  }
  fields["from_ns"] = facts["from_ns"] = static_cast<uint64_t>(window[0]);
  fields["to_ns"] = facts["to_ns"] = static_cast<uint64_t>(window[1]);
  facts["from"] = FormatTimeNs(window[0]);
  facts["to"] = FormatTimeNs(window[1]);
  if (dataplane_socket_.empty()) {
    return Error(503, "no dataplane command socket is configured (respond.dataplane_socket)");
  }
  // Its own connection on this thread: the main thread's client serves ingest-time pushes and
  // must never wait for an export.
  respond::CommandClient client({.socket_path = dataplane_socket_, .timeout_ms = pcap_timeout_ms_});
  std::string err;
  const auto answer = client.Call("history.export", fields, &err, /*ignore_backoff=*/true);
  client.Close();
  if (!answer) {
    if (err.rfind("history.export on ", 0) != 0) {
      return Error(503, "the dataplane is not reachable: " + err);
    }
    const bool timeout = err.find("no answer within") != std::string::npos ||
                         err.find("timed out") != std::string::npos;
    return Error(timeout ? 504 : 502, err);
  }
  const nlohmann::json& a = *answer;
  if (!a.value("ok", false)) {
    const auto e = a.find("error");
    return Error(502,
                 "dataplane: " + (e != a.end() && e->is_string() ? e->get<std::string>()
                                                                 : std::string("export failed")));
  }
  const auto path_it = a.find("path");
  if (path_it == a.end() || !path_it->is_string()) {
    return Error(502, "the dataplane's history.export answer has no path");
  }
  uint64_t size = 0;
  const int fd = OpenExport(path_it->get<std::string>(), &size, &err);
  if (fd < 0) return Error(502, err);
  auto file = std::make_shared<const FileBody>(fd, size);
  if (size > max_pcap_bytes_) {
    return Error(413, "the export is " + std::to_string(size) + " bytes, above the limit of " +
                          std::to_string(max_pcap_bytes_) +
                          ": narrow the window or add peer, port or proto");
  }
  for (const char* k : {"packets", "bytes", "memory_packets", "disk_packets", "lost_records",
                        "oldest_retained_ns", "not_retained_from_ns", "not_retained_to_ns"}) {
    facts[k] = U64(a, k);
  }
  facts["file_bytes"] = size;
  const bool not_retained = a.value("start_not_retained", false);
  facts["start_not_retained"] = not_retained;
  const uint64_t oldest = U64(a, "oldest_retained_ns");
  if (oldest != 0) facts["oldest_retained"] = FormatTimeNs(static_cast<int64_t>(oldest));
  std::string not_retained_text;
  if (not_retained) {
    facts["not_retained_from"] = FormatTimeNs(static_cast<int64_t>(U64(a, "not_retained_from_ns")));
    facts["not_retained_to"] = FormatTimeNs(static_cast<int64_t>(U64(a, "not_retained_to_ns")));
    not_retained_text = facts["not_retained_from"].get<std::string>() + ".." +
                        facts["not_retained_to"].get<std::string>();
  }
  const auto summary = a.find("summary");
  facts["summary"] = summary != a.end() && summary->is_string() ? summary->get<std::string>() : "";
  Response r;
  r.content_type = "application/vnd.tcpdump.pcap";
  r.file = std::move(file);
  std::string name = *host;
  std::replace(name.begin(), name.end(), ':', '_');
  r.headers = {
      {"Content-Disposition", "attachment; filename=\"vigil-" + name + "-" +
                                  std::to_string(window[0] / 1'000'000'000) + ".pcap\""},
      {"X-Vigil-Packets", std::to_string(U64(a, "packets"))},
      {"X-Vigil-Bytes", std::to_string(U64(a, "bytes"))},
      {"X-Vigil-Memory-Packets", std::to_string(U64(a, "memory_packets"))},
      {"X-Vigil-Disk-Packets", std::to_string(U64(a, "disk_packets"))},
      {"X-Vigil-Lost-Records", std::to_string(U64(a, "lost_records"))},
      {"X-Vigil-Window", facts["from"].get<std::string>() + ".." + facts["to"].get<std::string>()},
  };
  if (oldest != 0)
    r.headers.emplace_back("X-Vigil-Oldest-Retained", facts["oldest_retained"].get<std::string>());
  if (not_retained) r.headers.emplace_back("X-Vigil-Not-Retained", not_retained_text);
  r.headers.emplace_back("X-Vigil-Summary", facts["summary"].get<std::string>());
  // All the facts in one header, as JSON (ASCII: non-ASCII is escaped).
  r.headers.emplace_back("X-Vigil-Export",
                         facts.dump(-1, ' ', true, nlohmann::json::error_handler_t::replace));
  std::fprintf(stderr, "vigil-control: pcap export %s %s..%s: %llu packets, %llu bytes%s\n",
               fields.dump().c_str(), facts["from"].get<std::string>().c_str(),
               facts["to"].get<std::string>().c_str(),
               static_cast<unsigned long long>(U64(a, "packets")),
               static_cast<unsigned long long>(size),
               not_retained ? (", not retained " + not_retained_text).c_str() : "");
  return r;
}

Response Api::Config(const Request& req) {
  if (pusher_ == nullptr) return Error(405, "configuration push is not available here");
  // Every route needs the token: the document names rule files, networks and sockets.
  if (token_.empty()) return Error(403, "refused: no API token is configured");
  auto auth = req.headers.find("authorization");
  if (auth == req.headers.end() || !TokenMatches(auth->second, token_)) {
    return Error(401, "missing or wrong API token (send Authorization: Bearer TOKEN)");
  }
  auto arg = [&](const char* k) {
    auto it = req.query.find(k);
    return it == req.query.end() ? std::string() : it->second;
  };
  const std::string who = arg("who").empty() ? "api" : arg("who").substr(0, 64) + " via API";
  auto reply = [](const config::Outcome& o) {
    return Response{o.status, "application/json", o.body.dump(2) + "\n"};
  };
  const std::string& p = req.path;
  const std::string name = arg("name").empty() ? "pushed" : arg("name").substr(0, 256);
  if (p == "/api/v1/config" && req.method == "PUT") {
    config::PushOptions o;
    o.force = arg("force") == "1" || arg("force") == "true";
    o.who = who;
    return reply(pusher_->Push(req.body, name, o));
  }
  if (p == "/api/v1/config/validate" && req.method == "POST") {
    config::PushOptions o;
    o.dry_run = true;  // whether it is valid, whatever its version
    o.who = who;
    return reply(pusher_->Push(req.body, name, o));
  }
  if (p == "/api/v1/config/rollback" && req.method == "POST") {
    return reply(pusher_->Rollback(who));
  }
  if (p == "/api/v1/config" && req.method == "GET") return reply(pusher_->Get());
  if (p == "/api/v1/config/history" && req.method == "GET") {
    const auto limit = ParseCount(arg("limit"), 50, 10000);
    if (!limit || *limit == 0) return Error(400, "limit: expected 1..10000");
    return reply(pusher_->History(static_cast<size_t>(*limit)));
  }
  return Error(405,
               "configuration routes: PUT /api/v1/config, GET /api/v1/config, POST "
               "/api/v1/config/validate, POST /api/v1/config/rollback, GET "
               "/api/v1/config/history");
}

Response Api::Handle(const Request& req) {
  const std::string& p = req.path;
  auto arg = [&](const char* k) {
    auto it = req.query.find(k);
    return it == req.query.end() ? std::string() : it->second;
  };
  if (p == "/metrics" || p == "/api/v1/metrics") return Metrics();
  if (p == "/api/v1/config" || p.rfind("/api/v1/config/", 0) == 0) return Config(req);
  if (req.method == "POST") {
    // /api/v1/breaches/{id}/{action}, /api/v1/respond/actions/{id}/{op}, /api/v1/respond/block
    const std::string prefix = "/api/v1/breaches/";
    const std::string actions = "/api/v1/respond/actions/";
    const bool breach = p.rfind(prefix, 0) == 0 && p.find('/', prefix.size()) != std::string::npos;
    const bool action =
        p.rfind(actions, 0) == 0 && p.find('/', actions.size()) != std::string::npos;
    const bool block = p == "/api/v1/respond/block";
    if (!breach && !action && !block) {
      return Error(405,
                   "POST is served on /api/v1/breaches/{id}/{action}, "
                   "/api/v1/respond/actions/{id}/{op} and /api/v1/respond/block only");
    }
    if (breach ? !update_ : !respond_) return Error(405, "this API is read-only");
    if (token_.empty()) return Error(403, "changes are refused: no API token is configured");
    auto auth = req.headers.find("authorization");
    if (auth == req.headers.end() || !TokenMatches(auth->second, token_)) {
      return Error(401, "missing or wrong API token (send Authorization: Bearer TOKEN)");
    }
    if (block) return RespondChange(0, "block", req.body);
    const std::string& base = breach ? prefix : actions;
    const size_t slash = p.find('/', base.size());
    const auto n = ParseCount(p.substr(base.size(), slash - base.size()), 0, INT64_MAX);
    if (!n || slash == base.size() || (action && *n == 0)) {
      return Error(400, std::string(breach ? "breach" : "action") + " id: expected an integer");
    }
    if (action) return RespondChange(static_cast<int64_t>(*n), p.substr(slash + 1), req.body);
    return UpdateBreach(static_cast<int64_t>(*n), p.substr(slash + 1), req.body);
  }
  if (req.method != "GET") return Error(405, "only GET and POST are served");
  if (p == "/api/v1/pcaps") {
    // Packets are evidence (payloads, credentials): reading them needs the token too.
    if (token_.empty())
      return Error(403, "packet captures are refused: no API token is configured");
    auto auth = req.headers.find("authorization");
    if (auth == req.headers.end() || !TokenMatches(auth->second, token_)) {
      return Error(401, "missing or wrong API token (send Authorization: Bearer TOKEN)");
    }
    return Pcaps(req.query);
  }
  if (p == "/api/v1/status") return Status();
  if (p == "/api/v1/models") return Models();
  if (p == "/api/v1/breaches") return Breaches(arg("model"), arg("since"), arg("limit"));
  if (p.rfind("/api/v1/breaches/", 0) == 0) {
    const std::string id = p.substr(17);
    const auto n = ParseCount(id, 0, INT64_MAX);
    if (id.empty() || !n) return Error(400, "breach id: expected an integer");
    return Breach(static_cast<int64_t>(*n));
  }
  if (p == "/api/v1/respond/actions") return RespondActions(arg("state"), arg("limit"));
  if (p.rfind("/api/v1/respond/actions/", 0) == 0) {
    const std::string id = p.substr(24);
    const auto n = ParseCount(id, 0, INT64_MAX);
    if (id.empty() || !n) return Error(400, "action id: expected an integer");
    return RespondAction(static_cast<int64_t>(*n));
  }
  if (p == "/api/v1/respond/audit") return RespondAudit(arg("action"), arg("limit"));
  if (p == "/api/v1/files") {
    return Files(arg("q"), arg("from"), arg("to"), arg("last"), arg("limit"));
  }
  if (p.rfind("/api/v1/files/", 0) == 0) return File(p.substr(14));
  if (p == "/api/v1/search") {
    return Search(arg("q"), arg("from"), arg("to"), arg("last"), arg("limit"), arg("count_by"));
  }
  return Error(404, "no such endpoint: " + p);
}

}  // namespace vigil::ctl::api
