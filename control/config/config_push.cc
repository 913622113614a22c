#include "control/config/config_push.h"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <chrono>
#include <thread>
#include <utility>

#include "dataplane/proto/hash.h"

namespace vigil::ctl::config {
namespace {

int64_t WallNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string HexOf(const proto::Sha256::Digest& d) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : d) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

bool ValidVersion(const std::string& v) {
  if (v.empty() || v.size() > 128) return false;
  for (char c : v) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_' &&
        c != ':' && c != '+') {
      return false;
    }
  }
  return true;
}

// The line and column of the top-level key `key` of `section` in the document, for errors about
// a whole setting.
void Locate(const YAML::Node& section, const std::string& field, PushError* e) {
  const std::string key = field.substr(0, field.find('.'));
  if (section.IsMap() && section[key]) {
    const YAML::Mark m = section[key].Mark();
    e->line = m.line + 1;
    e->column = m.column + 1;
  }
}

nlohmann::json ErrorsJson(const std::vector<PushError>& errors) {
  nlohmann::json a = nlohmann::json::array();
  for (const PushError& e : errors) a.push_back(e.ToJson());
  return a;
}

}  // namespace

nlohmann::json PushError::ToJson() const {
  return {
      {"file", file}, {"line", line}, {"column", column}, {"field", field}, {"message", message}};
}

std::string PushError::ToString() const {
  std::string s = file;
  if (line > 0) s += ":" + std::to_string(line) + ":" + std::to_string(column);
  s += ": ";
  if (!field.empty()) s += field + ": ";
  return s + message;
}

std::shared_ptr<const model::ModelSet> LoadModels(const ControlConfig& config,
                                                  std::vector<PushError>* errors) {
  std::vector<model::LoadError> le;
  std::vector<model::Model> all;
  bool ok = true;
  if (!config.models_dir.empty()) {
    auto set = model::ModelSet::LoadDir(config.models_dir, &le);
    if (set) {
      all.assign(set->models().begin(), set->models().end());
    } else {
      ok = false;
    }
  }
  for (const ControlConfig::InlineModel& m : config.models) {
    auto parsed = model::ModelSet::ParseModel(m.text, config.source_file, &le);
    if (parsed) {
      all.push_back(std::move(*parsed));
    } else {
      ok = false;
    }
  }
  std::optional<model::ModelSet> set;
  if (ok) set = model::ModelSet::FromModels(std::move(all), &le);
  for (const model::LoadError& e : le) {
    errors->push_back({e.file, e.line, e.column, e.field, e.message});
  }
  if (!set) return nullptr;
  return std::make_shared<const model::ModelSet>(std::move(*set));
}

Document ParseDocument(std::string text, std::string name, const ControlConfig& running) {
  Document d;
  d.text = std::move(text);
  d.name = std::move(name);
  d.hash = HexOf(proto::Sha256Of(d.text));
  d.version = "sha256:" + d.hash.substr(0, 16);
  YAML::Node root;
  try {
    root = YAML::Load(d.text);
  } catch (const YAML::Exception& e) {
    d.errors.push_back({d.name, e.mark.line + 1, e.mark.column + 1, "", e.msg});
    return d;
  }
  if (!root.IsMap()) {
    d.errors.push_back({d.name, 1, 1, "",
                        "expected a map with version, dataplane and control (docs/operations.md)"});
    return d;
  }
  d.parsed = true;
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>();
    if (key != "version" && key != "dataplane" && key != "control") {
      const YAML::Mark m = kv.first.Mark();
      d.errors.push_back({d.name, m.line + 1, m.column + 1, key,
                          "unknown key (expected one of: version, dataplane, control)"});
    }
  }
  if (const YAML::Node v = root["version"]) {
    const YAML::Mark m = v.Mark();
    if (!v.IsScalar() || !ValidVersion(v.Scalar())) {
      d.errors.push_back({d.name, m.line + 1, m.column + 1, "version",
                          "expected 1 to 128 characters of letters, digits and . - _ : +"});
    } else {
      d.version = v.Scalar();
      d.version_given = true;
    }
  }
  d.has_dataplane = static_cast<bool>(root["dataplane"]);
  d.has_control = static_cast<bool>(root["control"]);
  if (!d.has_dataplane && !d.has_control) {
    d.errors.push_back({d.name, 1, 1, "", "nothing to push: no dataplane and no control section"});
  }
  if (d.has_control) {
    ControlConfigResult r = LoadControlConfigSection(d.text, d.name, "control");
    for (const ControlConfigError& e : r.errors) {
      d.errors.push_back({e.file, e.line, e.column, e.field, e.message});
    }
    if (r.config) {
      r.config->source_file = d.name;
      for (const std::string& field : ControlRestartOnlyChanges(running, *r.config)) {
        PushError e{d.name, 0, 0, "control." + field,
                    "differs from the running configuration and can only change with a restart "
                    "of vigil-control; refused at runtime (models, models_dir, retention and "
                    "respond's enabled, never_block and allow change live)"};
        Locate(root["control"], field, &e);
        d.errors.push_back(std::move(e));
      }
      d.models = LoadModels(*r.config, &d.errors);
      if (d.models != nullptr && d.errors.empty()) d.control = std::move(r.config);
    }
  }
  return d;
}

int CompareVersions(std::string_view a, std::string_view b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    const bool da = std::isdigit(static_cast<unsigned char>(a[i])) != 0;
    const bool db = std::isdigit(static_cast<unsigned char>(b[j])) != 0;
    if (da && db) {
      size_t ie = i, je = j;
      while (ie < a.size() && std::isdigit(static_cast<unsigned char>(a[ie]))) ++ie;
      while (je < b.size() && std::isdigit(static_cast<unsigned char>(b[je]))) ++je;
      std::string_view na = a.substr(i, ie - i), nb = b.substr(j, je - j);
      while (na.size() > 1 && na.front() == '0') na.remove_prefix(1);
      while (nb.size() > 1 && nb.front() == '0') nb.remove_prefix(1);
      if (na.size() != nb.size()) return na.size() < nb.size() ? -1 : 1;
      if (const int c = na.compare(nb); c != 0) return c < 0 ? -1 : 1;
      i = ie;
      j = je;
      continue;
    }
    if (a[i] != b[j])
      return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[j]) ? -1 : 1;
    ++i;
    ++j;
  }
  if (i < a.size()) return 1;
  if (j < b.size()) return -1;
  return 0;
}

Pusher::Pusher(store::Store* reader, ControlConfig running, std::string dataplane_socket,
               Apply apply, Audit audit)
    : reader_(reader),
      running_(std::move(running)),
      dataplane_socket_(std::move(dataplane_socket)),
      apply_(std::move(apply)),
      audit_(std::move(audit)) {}

Outcome Pusher::Refuse(int status, const std::string& version, const std::string& who,
                       const std::string& reason, const std::vector<PushError>& errors,
                       bool audit) {
  store::AuditEntry a;
  a.ts_ns = WallNs();
  a.who = who;
  a.op = "config.refuse";
  a.detail = "version " + version + ": " + reason;
  if (!errors.empty()) {
    a.detail += " (" + std::to_string(errors.size()) +
                " error(s); first: " + errors.front().ToString() + ")";
  }
  if (audit && audit_) audit_(a);
  return {status,
          {{"result", "refused"},
           {"version", version},
           {"error", reason},
           {"errors", ErrorsJson(errors)},
           {"running", reader_->ActiveConfig() ? reader_->ActiveConfig()->version : ""}}};
}

Outcome Pusher::Push(const std::string& text, const std::string& name, const PushOptions& options) {
  std::lock_guard<std::mutex> lock(mu_);
  Document doc = ParseDocument(text, name, running_);
  if (!doc.errors.empty()) {
    // Every error of the document, not the first section's only: the dataplane checks its
    // section too (staged, never committed).
    if (doc.parsed && doc.has_dataplane) {
      nlohmann::json ignored;
      StageDataplane(doc, &doc.errors, &ignored);
    }
    return Refuse(422, doc.version, options.who, "the document is not valid; nothing changed",
                  doc.errors, !options.dry_run);
  }
  if (options.dry_run) return Apply_(std::move(doc), options, "config.validate", "");
  const std::optional<store::ConfigVersion> active = reader_->ActiveConfig();
  if (active && active->version == doc.version) {
    if (active->hash == doc.hash) {
      return {200, {{"result", "unchanged"}, {"version", doc.version}, {"seq", active->seq}}};
    }
    return Refuse(409, doc.version, options.who,
                  "version " + doc.version +
                      " is running with a different document; push it under a new version",
                  {});
  }
  if (const std::optional<store::ConfigVersion> prior = reader_->FindConfig(doc.version)) {
    if (prior->hash != doc.hash) {
      return Refuse(409, doc.version, options.who,
                    "version " + doc.version + " was used before for a different document", {});
    }
    if (!options.force && active && prior->seq < active->seq) {
      return Refuse(409, doc.version, options.who,
                    "version " + doc.version + " is older than the running version " +
                        active->version + " (it was replaced by it); force to apply it anyway",
                    {});
    }
  }
  if (!options.force && active && doc.version_given && active->version.rfind("sha256:", 0) != 0 &&
      CompareVersions(doc.version, active->version) < 0) {
    return Refuse(409, doc.version, options.who,
                  "version " + doc.version + " sorts before the running version " +
                      active->version + "; force to apply it anyway",
                  {});
  }
  return Apply_(std::move(doc), options, "config.push", "superseded");
}

Outcome Pusher::Rollback(const std::string& who) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::optional<store::ConfigVersion> active = reader_->ActiveConfig();
  const std::optional<store::ConfigVersion> previous = reader_->PreviousConfig();
  if (!active || !previous) {
    return Refuse(409, active ? active->version : "", who,
                  "no previous configuration version to roll back to", {});
  }
  Document doc = ParseDocument(previous->document, "version " + previous->version, running_);
  if (!doc.errors.empty()) {
    return Refuse(422, previous->version, who,
                  "the previous version no longer validates (its rule or model files changed?)",
                  doc.errors);
  }
  doc.version = previous->version;  // a hash version is recomputed alike; a given one is read
  PushOptions o;
  o.force = true;
  o.who = who;
  Outcome out = Apply_(std::move(doc), o, "config.rollback", "rolled_back");
  if (out.status == 200) out.body["rolled_back"] = active->version;
  return out;
}

std::optional<nlohmann::json> Pusher::CallDataplane(const std::string& op,
                                                    const nlohmann::json& fields, int timeout_ms,
                                                    std::string* error) {
  respond::ClientOptions co;
  co.socket_path = dataplane_socket_;
  co.timeout_ms = timeout_ms;
  respond::CommandClient client(co);
  return client.Call(op, fields, error, /*ignore_backoff=*/true);
}

bool Pusher::StageDataplane(const Document& doc, std::vector<PushError>* errors,
                            nlohmann::json* status) {
  respond::ClientOptions co;
  co.socket_path = dataplane_socket_;
  co.timeout_ms = 10'000;  // parsing a large document; the build itself is polled
  respond::CommandClient client(co);
  std::string err;
  auto fail = [&](const std::string& message) {
    errors->push_back({doc.name, 0, 0, "dataplane", message});
    return false;
  };
  if (dataplane_socket_.empty()) return fail("no dataplane command socket is configured");
  std::optional<nlohmann::json> r = client.Call(
      "config.stage", {{"version", doc.version}, {"name", doc.name}, {"document", doc.text}}, &err,
      true);
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(stage_timeout_ms_);
  while (r && r->value("ok", false) && r->value("state", "") == "building") {
    if (std::chrono::steady_clock::now() > deadline) {
      return fail("the dataplane did not finish building the rule set in " +
                  std::to_string(stage_timeout_ms_ / 1000) + " s; nothing changed");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    r = client.Call("config.status", nlohmann::json::object(), &err, true);
  }
  if (!r) return fail("dataplane not reachable on " + dataplane_socket_ + ": " + err);
  if (!r->value("ok", false)) return fail("dataplane: " + r->value("error", "refused"));
  *status = *r;
  if (r->value("state", "") == "ready") return true;
  for (const auto& e : r->value("errors", nlohmann::json::array())) {
    errors->push_back({e.value("file", doc.name), e.value("line", 0), e.value("column", 0),
                       e.value("field", ""), e.value("message", "")});
  }
  if (errors->empty()) fail("the dataplane refused the configuration");
  return false;
}

Outcome Pusher::Apply_(Document doc, const PushOptions& options, const std::string& op,
                       const std::string& previous_state) {
  nlohmann::json dp_status;
  nlohmann::json body = {{"version", doc.version}};
  if (doc.has_dataplane) {
    std::vector<PushError> errors;
    if (!StageDataplane(doc, &errors, &dp_status)) {
      const bool unreachable = dp_status.is_null();
      return Refuse(unreachable ? 503 : 422, doc.version, options.who,
                    unreachable ? "the dataplane could not stage it; nothing changed"
                                : "the dataplane refused it; nothing changed",
                    errors, !options.dry_run);
    }
    body["dataplane"] = {{"rules", dp_status.value("rules", 0)},
                         {"summary", dp_status.value("summary", "")},
                         {"build_ms", dp_status.value("build_ms", 0)}};
  }
  if (doc.models != nullptr) body["control"] = {{"models", doc.models->models().size()}};
  if (options.dry_run) {
    body["result"] = "valid";
    return {200, body};
  }
  if (doc.has_dataplane) {
    std::string err;
    const std::optional<nlohmann::json> r =
        CallDataplane("config.commit", {{"version", doc.version}}, 5'000, &err);
    if (!r || !r->value("ok", false)) {
      return Refuse(503, doc.version, options.who,
                    "the dataplane did not commit it (" +
                        (r ? r->value("error", std::string("refused")) : err) +
                        "); nothing changed",
                    {});
    }
  }
  std::string summary;
  if (body.contains("dataplane")) {
    summary += "dataplane: " + body["dataplane"].value("summary", std::string());
  }
  if (doc.models != nullptr) {
    summary += std::string(summary.empty() ? "" : "; ") +
               "control: " + std::to_string(doc.models->models().size()) + " models";
  }
  store::AuditEntry a;
  a.ts_ns = WallNs();
  a.who = options.who;
  a.op = op;
  a.detail = "version " + doc.version + " (sha256 " + doc.hash.substr(0, 16) + ")" +
             (options.force ? ", forced" : "") + ": " + summary;
  const std::string err = apply_(doc, previous_state, a);
  if (!err.empty()) {
    // The dataplane already runs it: say so rather than pretend nothing changed.
    return {500,
            {{"result", "partial"},
             {"version", doc.version},
             {"error", "the dataplane runs version " + doc.version +
                           " but control could not apply or record it: " + err}}};
  }
  if (doc.control) running_ = *doc.control;
  body["result"] = "applied";
  return {200, body};
}

Outcome Pusher::Get() {
  std::lock_guard<std::mutex> lock(mu_);
  nlohmann::json body = nlohmann::json::object();
  if (const auto active = reader_->ActiveConfig()) {
    body = {{"version", active->version},     {"seq", active->seq}, {"hash", active->hash},
            {"pushed_ns", active->pushed_ns}, {"who", active->who}, {"summary", active->summary},
            {"document", active->document}};
  } else {
    body["version"] = nullptr;  // nothing pushed: both processes run their files
  }
  if (!dataplane_socket_.empty()) {
    std::string err;
    const std::optional<nlohmann::json> r =
        CallDataplane("config.get", nlohmann::json::object(), 1'000, &err);
    if (r && r->value("ok", false)) {
      nlohmann::json dp = *r;
      for (const char* k : {"v", "id", "ok"}) dp.erase(k);
      body["dataplane"] = dp;
    } else {
      body["dataplane"] = {{"error", r ? r->value("error", std::string()) : err}};
    }
  }
  return {200, body};
}

std::string Pusher::Resync() {
  std::lock_guard<std::mutex> lock(mu_);
  if (dataplane_socket_.empty() || std::chrono::steady_clock::now() < resync_retry_at_) return "";
  const std::optional<store::ConfigVersion> active = reader_->ActiveConfig();
  if (!active) return "";
  Document doc = ParseDocument(active->document, "version " + active->version, running_);
  if (!doc.has_dataplane) return "";
  std::string err;
  const std::optional<nlohmann::json> r =
      CallDataplane("config.get", nlohmann::json::object(), 1'000, &err);
  if (!r || !r->value("ok", false)) return "";  // not there: tried again later
  const std::string running = r->value("version", std::string());
  if (running == active->version) return "";
  doc.version = active->version;
  store::AuditEntry a;
  a.ts_ns = WallNs();
  a.who = "vigil-control";
  a.op = "config.resync";
  std::vector<PushError> errors;
  nlohmann::json status;
  if (!doc.errors.empty() || !StageDataplane(doc, &errors, &status)) {
    if (errors.empty()) errors = doc.errors;
    a.detail = "the dataplane runs " + (running.empty() ? "its file" : "version " + running) +
               "; version " + active->version + " could not be staged again: " +
               (errors.empty() ? std::string("?") : errors.front().ToString()) +
               " (tried again in a minute)";
    if (audit_) audit_(a);
    resync_retry_at_ = std::chrono::steady_clock::now() + std::chrono::minutes(1);
    return a.detail;
  }
  const std::optional<nlohmann::json> c =
      CallDataplane("config.commit", {{"version", doc.version}}, 5'000, &err);
  a.detail = "the dataplane ran " + (running.empty() ? "its file" : "version " + running) +
             "; version " + active->version +
             (c && c->value("ok", false) ? " pushed again" : " not committed: " + err);
  if (audit_) audit_(a);
  return a.detail;
}

Outcome Pusher::History(size_t limit) {
  std::lock_guard<std::mutex> lock(mu_);
  nlohmann::json a = nlohmann::json::array();
  for (const store::ConfigVersion& v : reader_->ConfigHistory(limit)) {
    a.push_back({{"seq", v.seq},
                 {"version", v.version},
                 {"hash", v.hash},
                 {"pushed_ns", v.pushed_ns},
                 {"who", v.who},
                 {"state", v.state},
                 {"summary", v.summary}});
  }
  return {200, {{"versions", a}}};
}

}  // namespace vigil::ctl::config
