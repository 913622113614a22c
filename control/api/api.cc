#include "control/api/api.h"

#include <algorithm>
#include <ctime>
#include <fstream>
#include <iterator>
#include <vector>

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

nlohmann::json EventJson(const store::StoredEvent& e) {
  nlohmann::json j = nlohmann::json::parse(e.json, nullptr, false);
  if (j.is_discarded()) j = nlohmann::json{{"message", e.message}};
  return nlohmann::json{{"id", e.id}, {"sensor", e.sensor}, {"seq", e.seq}, {"event", j}};
}

}  // namespace

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
  if (models_ != nullptr) j["models"] = models_->models().size();
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
    list.push_back(BreachJson(b, nullptr));
  }
  return Json(200, nlohmann::json{{"breaches", list}});
}

Response Api::Breach(int64_t id) {
  const auto b = store_->GetBreach(id);
  if (!b) return Error(404, "no breach " + std::to_string(id));
  return Json(200, BreachJson(*b, store_));
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
  if (models_ != nullptr) {
    for (const model::Model& m : models_->models()) list.push_back(m.ToJson());
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
  return r;
}

Response Api::Handle(const Request& req) {
  const std::string& p = req.path;
  auto arg = [&](const char* k) {
    auto it = req.query.find(k);
    return it == req.query.end() ? std::string() : it->second;
  };
  if (p == "/metrics" || p == "/api/v1/metrics") return Metrics();
  if (req.method == "POST") {
    // /api/v1/breaches/{id}/{action}
    const std::string prefix = "/api/v1/breaches/";
    const size_t slash = p.find('/', prefix.size());
    if (p.rfind(prefix, 0) != 0 || slash == std::string::npos) {
      return Error(405, "POST is served on /api/v1/breaches/{id}/{action} only");
    }
    if (!update_) return Error(405, "this API is read-only");
    if (token_.empty()) return Error(403, "changes are refused: no API token is configured");
    auto auth = req.headers.find("authorization");
    if (auth == req.headers.end() || !TokenMatches(auth->second, token_)) {
      return Error(401, "missing or wrong API token (send Authorization: Bearer TOKEN)");
    }
    const auto n = ParseCount(p.substr(prefix.size(), slash - prefix.size()), 0, INT64_MAX);
    if (!n || slash == prefix.size()) return Error(400, "breach id: expected an integer");
    return UpdateBreach(static_cast<int64_t>(*n), p.substr(slash + 1), req.body);
  }
  if (req.method != "GET") return Error(405, "only GET and POST are served");
  if (p == "/api/v1/status") return Status();
  if (p == "/api/v1/models") return Models();
  if (p == "/api/v1/breaches") return Breaches(arg("model"), arg("since"), arg("limit"));
  if (p.rfind("/api/v1/breaches/", 0) == 0) {
    const std::string id = p.substr(17);
    const auto n = ParseCount(id, 0, INT64_MAX);
    if (id.empty() || !n) return Error(400, "breach id: expected an integer");
    return Breach(static_cast<int64_t>(*n));
  }
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
