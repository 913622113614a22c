#include "control/respond/respond.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <limits>

namespace vigil::ctl::respond {
namespace {

constexpr const char* kSystem = "vigil-control";
constexpr size_t kMaxTable = 1'000'000;

bool IsConnection(const std::string& kind) { return kind == "block_connection"; }

// The first "entry N" in a dataplane error ("block entry 12: covers an address that is never
// blocked"): the action id the dataplane refused. 0 when there is none.
int64_t EntryIdIn(const std::string& error) {
  size_t pos = 0;
  while ((pos = error.find("entry ", pos)) != std::string::npos) {
    pos += 6;
    int64_t v = 0;
    size_t i = pos;
    while (i < error.size() && error[i] >= '0' && error[i] <= '9' && v < (int64_t{1} << 50)) {
      v = v * 10 + (error[i++] - '0');
    }
    if (i > pos) return v;
  }
  return 0;
}

std::string DurationText(int64_t ns) {
  if (ns == 0) return "until cleared";
  const int64_t s = ns / 1'000'000'000;
  if (s % 86400 == 0) return std::to_string(s / 86400) + "d";
  if (s % 3600 == 0) return std::to_string(s / 3600) + "h";
  if (s % 60 == 0) return std::to_string(s / 60) + "m";
  if (ns % 1'000'000'000 == 0) return std::to_string(s) + "s";
  return std::to_string(ns / 1'000'000) + "ms";
}

}  // namespace

std::string FormatWall(int64_t ns) {
  if (ns == 0) return "";
  const time_t secs = static_cast<time_t>(ns / 1'000'000'000);
  tm t;
  gmtime_r(&secs, &t);
  char buf[64];
  const size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
  std::snprintf(buf + n, sizeof buf - n, ".%03lldZ",
                static_cast<long long>((ns % 1'000'000'000) / 1'000'000));
  return buf;
}

std::optional<uint8_t> ParseProto(std::string_view s) {
  std::string l;
  for (char c : s) l += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (l == "tcp") return 6;
  if (l == "udp") return 17;
  if (l == "icmp") return 1;
  if (l == "ipv6-icmp" || l == "icmpv6") return 58;
  if (l == "any" || l.empty()) return 0;
  if (l.size() > 3) return std::nullopt;
  int v = 0;
  for (char c : l) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v > 255) return std::nullopt;
  return static_cast<uint8_t>(v);
}

std::string ProtoName(uint8_t p) {
  switch (p) {
    case 0:
      return "any";
    case 1:
      return "icmp";
    case 6:
      return "tcp";
    case 17:
      return "udp";
    case 58:
      return "ipv6-icmp";
    default:
      return std::to_string(p);
  }
}

std::string TargetText(const store::Action& a) {
  if (IsConnection(a.kind)) {
    const bool v6 = a.peer.find(':') != std::string::npos;
    std::string s = a.addr;
    if (a.client_port != 0) s += ":" + std::to_string(a.client_port);
    s += " -> " + (v6 ? "[" + a.peer + "]" : a.peer) + ":" + std::to_string(a.server_port);
    if (a.proto != 0) s += "/" + ProtoName(a.proto);
    return s;
  }
  if (a.kind == "quarantine_outgoing") return a.addr + " (outgoing)";
  if (a.kind == "quarantine_incoming") return a.addr + " (incoming)";
  return a.addr;
}

nlohmann::json ActionJson(const store::Action& a, int64_t now_ns) {
  nlohmann::json j{{"id", a.id},
                   {"breach_id", a.breach_id == 0 ? nlohmann::json() : nlohmann::json(a.breach_id)},
                   {"model", a.model},
                   {"kind", a.kind},
                   {"addr", a.addr},
                   {"target", TargetText(a)},
                   {"mode", a.mode},
                   {"state", a.state},
                   {"created", FormatWall(a.created_ns)},
                   {"created_ns", a.created_ns},
                   {"expires", FormatWall(a.expires_ns)},
                   {"expires_ns", a.expires_ns},
                   {"duration_ns", a.duration_ns},
                   {"changed", FormatWall(a.changed_ns)},
                   {"changed_ns", a.changed_ns},
                   {"reason", a.reason},
                   {"drops", a.drops},
                   {"resets", a.resets},
                   {"first_drop", FormatWall(a.first_drop_ns)},
                   {"first_drop_ns", a.first_drop_ns},
                   {"counters_ns", a.counters_ns}};
  if (IsConnection(a.kind)) {
    j["peer"] = a.peer;
    j["client_port"] = a.client_port;
    j["server_port"] = a.server_port;
    j["proto"] = a.proto;
  }
  if (a.state == "active" && a.expires_ns != 0) {
    j["expires_in_s"] = (a.expires_ns - now_ns) / 1'000'000'000;
  }
  return j;
}

nlohmann::json AuditJson(const store::AuditEntry& e) {
  return {{"id", e.id},
          {"time", FormatWall(e.ts_ns)},
          {"ts_ns", e.ts_ns},
          {"who", e.who},
          {"action_id", e.action_id == 0 ? nlohmann::json() : nlohmann::json(e.action_id)},
          {"op", e.op},
          {"detail", e.detail}};
}

void Responder::ParsePolicy() {
  never_block_.clear();
  allow_.clear();
  std::string e;
  for (const std::string& t : options_.never_block) {
    if (auto c = ParseCidr(t, &e)) {
      never_block_.push_back(*c);
    } else {
      log_("never_block " + t + " ignored: " + e);
    }
  }
  for (const std::string& t : options_.allow) {
    if (auto c = ParseCidr(t, &e)) {
      allow_.push_back(*c);
    } else {
      log_("allow " + t + " ignored: " + e);
    }
  }
}

void Responder::SetPolicy(bool enabled, std::vector<std::string> never_block,
                          std::vector<std::string> allow) {
  const bool changed =
      enabled != options_.enabled || never_block != options_.never_block || allow != options_.allow;
  options_.enabled = enabled;
  options_.never_block = std::move(never_block);
  options_.allow = std::move(allow);
  ParsePolicy();
  // The table in force was built under the old lists: the dataplane gets it again.
  if (changed && options_.enabled) {
    MarkChanged();
    PushNow(/*ignore_backoff=*/true);
  }
}

Responder::Responder(store::Store* store, Options o, Clocks clocks, LogFn log)
    : store_(store), options_(std::move(o)), clocks_(std::move(clocks)), log_(std::move(log)) {
  if (!log_) {
    log_ = [](const std::string& line) {
      std::fprintf(stderr, "vigil-control: respond: %s\n", line.c_str());
    };
  }
  ParsePolicy();
  ClientOptions co;
  co.socket_path = options_.socket_path;
  co.timeout_ms = options_.timeout_ms;
  co.backoff_min_ms = options_.backoff_min_ms;
  co.backoff_max_ms = options_.backoff_max_ms;
  client_ = std::make_unique<CommandClient>(co, clocks_.mono);
}

Responder::~Responder() = default;

int64_t Responder::WallNow() const {
  if (clocks_.wall) return clocks_.wall();
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

int64_t Responder::MonoNow() const {
  if (clocks_.mono) return clocks_.mono();
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void Responder::MarkChanged() {
  ++generation_;
  counters_.generation.store(generation_, std::memory_order_relaxed);
}

const Cidr* Responder::NeverBlock(const store::Action& a) const {
  const auto addr = ParseAddr(a.addr);
  const auto peer = IsConnection(a.kind) ? ParseAddr(a.peer) : std::nullopt;
  for (const Cidr& c : never_block_) {
    if ((addr && c.Contains(*addr)) || (peer && c.Contains(*peer))) return &c;
  }
  return nullptr;
}

std::string Responder::CheckTarget(const store::Action& a) const {
  if (!model::ParseResponseAction(a.kind)) {
    return "kind: expected block_connection, quarantine_device, quarantine_outgoing or "
           "quarantine_incoming, got \"" +
           a.kind + "\"";
  }
  if (!ParseAddr(a.addr)) return "addr: not an IPv4 or IPv6 address: \"" + a.addr + "\"";
  if (IsConnection(a.kind)) {
    if (!ParseAddr(a.peer)) return "peer: not an IPv4 or IPv6 address: \"" + a.peer + "\"";
    if (a.server_port == 0 && a.proto != 1 && a.proto != 58) {
      return "server_port: a connection needs its server port";
    }
  } else if (!a.peer.empty() || a.client_port != 0 || a.server_port != 0 || a.proto != 0) {
    return "peer, ports and proto apply to block_connection only";
  }
  return "";
}

bool Responder::Save(store::Action* a, const std::string& who, const std::string& op,
                     const std::string& detail, std::string* error) {
  store::AuditEntry e;
  e.ts_ns = WallNow();
  e.who = who;
  e.op = op;
  e.detail = detail;
  const int64_t id = store_->SaveAction(*a, e, error);
  if (id == 0) return false;
  a->id = id;
  return true;
}

int64_t Responder::OnBreach(const store::Breach& b, const model::Model& m, std::string* error) {
  if (!m.response || m.response->mode == model::ResponseMode::kAlert) return 0;
  const model::Response& r = *m.response;
  const int64_t now = WallNow();
  store::Action a;
  a.breach_id = b.id;
  a.model = b.model;
  a.kind = model::ResponseActionName(r.action);
  a.mode = model::ResponseModeName(r.mode);
  a.created_ns = a.changed_ns = now;
  a.duration_ns = r.duration_ns;
  std::string problem;
  if (r.action == model::ResponseAction::kBlockConnection) {
    // The connection of the event that made the model fire (the last trigger).
    int64_t trigger = 0;
    for (const store::BreachEventRef& ref : b.events) {
      if (ref.trigger) trigger = ref.event_id;
    }
    const auto ev = trigger != 0 ? store_->Event(trigger) : std::nullopt;
    const nlohmann::json j =
        ev ? nlohmann::json::parse(ev->json, nullptr, false) : nlohmann::json();
    auto str = [&](const char* k) {
      return j.is_object() && j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : "";
    };
    a.addr = str("src_ip");
    a.peer = str("dest_ip");
    if (j.is_object() && j.contains("dest_port") && j["dest_port"].is_number_unsigned() &&
        j["dest_port"].get<uint64_t>() <= 65535) {
      a.server_port = static_cast<uint16_t>(j["dest_port"].get<uint64_t>());
    }
    a.proto = ParseProto(str("proto")).value_or(0);
    if (!ev) {
      problem = "the breach has no stored trigger event to take the connection from";
    } else if (a.addr.empty() || a.peer.empty()) {
      problem = "the trigger event #" + std::to_string(trigger) + " has no src_ip/dest_ip";
    }
  } else {
    a.addr = b.device;
  }
  if (problem.empty()) problem = CheckTarget(a);
  std::string op = "create", detail;
  const std::string what = "breach #" + std::to_string(b.id) + " " + b.model + ": " + a.kind + " " +
                           TargetText(a) + ", " + a.mode + ", " + DurationText(a.duration_ns);
  if (!problem.empty()) {
    a.state = "refused";
    a.reason = problem;
    op = "refuse";
    detail = what + ": refused: " + problem;
  } else if (const Cidr* c = NeverBlock(a)) {
    a.state = "refused";
    a.reason = "covered by respond.never_block " + c->text;
    op = "refuse";
    detail = what + ": refused: " + a.reason;
  } else if (!options_.enabled) {
    a.state = "suppressed";
    a.reason = "respond.enabled is false: recorded only (the model asks for " + a.mode + ")";
    a.mode = "alert";
    detail = what + ": " + a.reason;
  } else if (r.mode == model::ResponseMode::kConfirm) {
    a.state = "pending";
    a.reason = "waiting for an operator's confirm";
    detail = what + ": pending confirmation";
  } else {
    a.state = "active";
    a.expires_ns = a.duration_ns == 0 ? 0 : now + a.duration_ns;
    a.reason = "autonomous response to breach #" + std::to_string(b.id);
    detail = what + ": active" +
             (a.expires_ns == 0 ? " until cleared" : " until " + FormatWall(a.expires_ns));
  }
  if (!Save(&a, kSystem, op, detail, error)) return -1;
  if (a.state == "active") {
    ++counters_.created_active;
    MarkChanged();
  } else if (a.state == "pending") {
    ++counters_.created_pending;
  } else if (a.state == "refused") {
    ++counters_.created_refused;
  } else {
    ++counters_.created_suppressed;
  }
  log_("action #" + std::to_string(a.id) + " " + a.state + ": " + detail);
  return a.id;
}

OpResult Responder::Finish(OpResult r, bool changed) {
  if (changed && options_.enabled) {
    r.push_attempted = true;
    r.pushed = PushNow(/*ignore_backoff=*/true);
    if (!r.pushed) r.push_error = last_error_;
  }
  r.generation = generation_;
  return r;
}

OpResult Responder::Apply(const Operation& op) {
  OpResult r;
  const int64_t now = WallNow();
  auto fail = [&](int status, std::string e) {
    r.status = status;
    r.error = std::move(e);
    return r;
  };
  std::string err;
  const std::string who = op.who.empty() ? "unknown" : op.who;
  const std::string why = op.reason.empty() ? "" : ": " + op.reason;
  if (op.type == Operation::Type::kBlock) {
    store::Action a;
    a.kind = op.kind;
    a.addr = op.addr;
    a.peer = op.peer;
    a.client_port = op.client_port;
    a.server_port = op.server_port;
    a.proto = op.proto;
    a.mode = "manual";
    a.created_ns = a.changed_ns = now;
    a.duration_ns = op.duration_ns;
    if (op.duration_ns < 0) return fail(400, "duration: must not be negative");
    if (std::string e = CheckTarget(a); !e.empty()) return fail(400, e);
    const std::string what = a.kind + " " + TargetText(a) + ", " + DurationText(a.duration_ns);
    std::string audit_op = "block", detail;
    if (const Cidr* c = NeverBlock(a)) {
      a.state = "refused";
      a.reason = "covered by respond.never_block " + c->text;
      audit_op = "refuse";
      detail = what + ": refused: " + a.reason + why;
    } else if (!options_.enabled) {
      a.state = "suppressed";
      a.mode = "alert";
      a.reason = "respond.enabled is false: recorded only";
      detail = what + ": " + a.reason + why;
    } else {
      a.state = "active";
      a.expires_ns = a.duration_ns == 0 ? 0 : now + a.duration_ns;
      a.reason = op.reason.empty() ? "manual block" : op.reason;
      detail = what + ": active" +
               (a.expires_ns == 0 ? " until cleared" : " until " + FormatWall(a.expires_ns)) + why;
    }
    if (!Save(&a, who, audit_op, detail, &err)) return fail(500, err);
    r.id = a.id;
    log_("action #" + std::to_string(a.id) + " " + a.state + " by " + who + ": " + detail);
    if (a.state == "refused") {
      ++counters_.created_refused;
      // Recorded and audited, but the caller asked for something that was not done.
      r.status = 409;
      r.error = "refused: " + a.reason;
      return r;
    }
    if (a.state == "suppressed") {
      ++counters_.created_suppressed;
      return Finish(r, false);
    }
    ++counters_.blocks;
    ++counters_.created_active;
    MarkChanged();
    return Finish(r, true);
  }

  auto found = store_->GetAction(op.id);
  if (!found) return fail(404, "no action " + std::to_string(op.id));
  store::Action a = *found;
  r.id = a.id;
  const std::string was = a.state;
  switch (op.type) {
    case Operation::Type::kConfirm: {
      if (a.state != "pending") {
        return fail(409, "action " + std::to_string(a.id) + " is " + a.state +
                             ", only a pending action can be confirmed");
      }
      if (!options_.enabled) {
        return fail(409, "respond.enabled is false: nothing can be activated");
      }
      if (const Cidr* c = NeverBlock(a)) {
        a.state = "refused";
        a.reason = "covered by respond.never_block " + c->text;
        a.changed_ns = now;
        if (!Save(&a, who, "refuse", "confirm refused: " + a.reason + why, &err)) {
          return fail(500, err);
        }
        return fail(409, "refused: " + a.reason);
      }
      a.state = "active";
      a.expires_ns = a.duration_ns == 0 ? 0 : now + a.duration_ns;
      a.changed_ns = now;
      a.reason = op.reason.empty() ? "confirmed by " + who : op.reason;
      if (!Save(&a, who, "confirm",
                "pending -> active" +
                    (a.expires_ns == 0 ? " until cleared" : " until " + FormatWall(a.expires_ns)) +
                    why,
                &err)) {
        return fail(500, err);
      }
      ++counters_.confirmed;
      MarkChanged();
      log_("action #" + std::to_string(a.id) + " confirmed by " + who);
      return Finish(r, true);
    }
    case Operation::Type::kExtend: {
      if (op.duration_ns <= 0) return fail(400, "duration: extend needs a positive duration");
      if (a.state != "active" && a.state != "pending") {
        return fail(409, "action " + std::to_string(a.id) + " is " + a.state +
                             ", only a pending or active action can be extended");
      }
      if (a.state == "active" && a.expires_ns == 0) {
        return fail(409, "action " + std::to_string(a.id) +
                             " has no expiry (active until cleared): nothing to extend");
      }
      std::string detail;
      if (a.state == "active") {
        const int64_t old = a.expires_ns;
        a.expires_ns = old > std::numeric_limits<int64_t>::max() - op.duration_ns
                           ? std::numeric_limits<int64_t>::max()
                           : old + op.duration_ns;
        detail = "expiry " + FormatWall(old) + " -> " + FormatWall(a.expires_ns);
      } else {
        // Pending: the duration it will run for once confirmed grows.
        detail = "duration " + DurationText(a.duration_ns) + " -> ";
      }
      a.duration_ns += op.duration_ns;
      if (a.state == "pending") detail += DurationText(a.duration_ns);
      a.changed_ns = now;
      if (!Save(&a, who, "extend", "by " + DurationText(op.duration_ns) + ": " + detail + why,
                &err)) {
        return fail(500, err);
      }
      ++counters_.extended;
      const bool changed = a.state == "active";
      if (changed) MarkChanged();
      log_("action #" + std::to_string(a.id) + " extended by " + who + ": " + detail);
      return Finish(r, changed);
    }
    case Operation::Type::kClear: {
      if (a.state != "active" && a.state != "pending" && a.state != "suppressed") {
        return fail(409, "action " + std::to_string(a.id) + " is " + a.state +
                             ", only a pending, active or suppressed action can be cleared");
      }
      a.state = "cleared";
      a.changed_ns = now;
      a.reason = op.reason.empty() ? "cleared by " + who : op.reason;
      if (!Save(&a, who, "clear", was + " -> cleared" + why, &err)) return fail(500, err);
      ++counters_.cleared;
      const bool changed = was == "active";
      if (changed) MarkChanged();
      log_("action #" + std::to_string(a.id) + " cleared by " + who);
      return Finish(r, changed);
    }
    case Operation::Type::kBlock:
      break;
  }
  return fail(400, "unknown operation");
}

void Responder::Sweep() {
  const int64_t now = WallNow();
  bool changed = false;
  for (store::Action a : store_->Actions("active", kMaxTable)) {
    if (a.expires_ns == 0 || a.expires_ns > now) continue;
    a.state = "expired";
    a.changed_ns = now;
    a.reason = "expired at " + FormatWall(a.expires_ns);
    std::string err;
    if (!Save(&a, kSystem, "expire", "active -> expired (expiry " + FormatWall(a.expires_ns) + ")",
              &err)) {
      log_("expiring action #" + std::to_string(a.id) + ": " + err);
      continue;
    }
    ++counters_.expired;
    changed = true;
    log_("action #" + std::to_string(a.id) + " expired");
  }
  if (changed) {
    MarkChanged();
    if (options_.enabled) PushNow(/*ignore_backoff=*/true);
  }
}

nlohmann::json Responder::DesiredEntries() {
  const int64_t now = WallNow();
  nlohmann::json entries = nlohmann::json::array();
  std::vector<store::Action> active = store_->Actions("active", kMaxTable);
  std::reverse(active.begin(), active.end());  // oldest first: a stable order
  for (const store::Action& a : active) {
    if (a.expires_ns != 0 && a.expires_ns <= now) continue;  // the sweep's, not ours to send
    if (NeverBlock(a) != nullptr) continue;  // the config changed since; the dataplane refuses it
    nlohmann::json e{
        {"id", a.id}, {"kind", a.kind}, {"addr", a.addr}, {"expires_ns", a.expires_ns}};
    if (IsConnection(a.kind)) {
      e["peer"] = a.peer;
      e["client_port"] = a.client_port;
      e["server_port"] = a.server_port;
      e["proto"] = a.proto;
    }
    entries.push_back(std::move(e));
  }
  return entries;
}

bool Responder::PushIfChanged() {
  if (!options_.enabled || generation_ == pushed_generation_) return true;
  return PushNow(/*ignore_backoff=*/true);
}

bool Responder::Push() { return options_.enabled && PushNow(/*ignore_backoff=*/true); }

void Responder::PushFailed(const std::string& error) {
  ++counters_.push_failures;
  counters_.connected.store(client_->connected(), std::memory_order_relaxed);
  const bool news = !failing_ || error != last_error_;
  last_error_ = error;
  if (!news) return;  // a retry failing the same way: counted, not logged again
  failing_ = true;
  log_("push of generation " + std::to_string(generation_) + " failed: " + error +
       " (retrying every second)");
  store::AuditEntry e;
  e.ts_ns = WallNow();
  e.who = kSystem;
  e.op = "push-failed";
  e.detail =
      "generation " + std::to_string(generation_) + " to " + client_->socket_path() + ": " + error;
  std::string err;
  if (store_->InsertAudit(e, &err) == 0) log_("audit: " + err);
}

bool Responder::PushNow(bool ignore_backoff) {
  if (!options_.enabled) return false;
  // A refused entry takes its action out of the table; retry with the rest (bounded: each round
  // refuses a different action).
  for (int round = 0; round < 16; ++round) {
    const uint64_t gen = generation_;
    nlohmann::json fields{{"generation", gen}, {"entries", DesiredEntries()}};
    if (!allow_.empty()) {
      nlohmann::json list = nlohmann::json::array();
      for (const Cidr& c : allow_) list.push_back(c.text);
      fields["allow"] = std::move(list);
    }
    if (!never_block_.empty()) {
      nlohmann::json list = nlohmann::json::array();
      for (const Cidr& c : never_block_) list.push_back(c.text);
      fields["never_block"] = std::move(list);
    }
    const size_t n = fields["entries"].size();
    std::string err;
    const auto answer = client_->Call("block.set", fields, &err, ignore_backoff);
    if (!answer) {
      PushFailed(err);
      return false;
    }
    if (!answer->value("ok", false)) {
      const std::string e = answer->value("error", std::string("block.set refused"));
      // The dataplane names the entry it refused by its id (our action id): refuse that action
      // (its own never_block, an address it cannot take) and push the others.
      const int64_t id = EntryIdIn(e);
      bool refused = false;
      for (const auto& entry : fields["entries"]) {
        if (id == 0 || entry["id"] != id) continue;
        if (auto a = store_->GetAction(id); a && a->state == "active") {
          a->state = "refused";
          a->changed_ns = WallNow();
          a->reason = "refused by the dataplane: " + e;
          std::string serr;
          if (Save(&*a, kSystem, "refuse", "the dataplane refused the entry: " + e, &serr)) {
            ++counters_.created_refused;
            refused = true;
            log_("action #" + std::to_string(id) + " refused by the dataplane: " + e);
          }
        }
      }
      if (refused) {
        MarkChanged();
        continue;
      }
      PushFailed("block.set refused: " + e);
      return false;
    }
    pushed_generation_ = gen;
    counters_.pushed_generation.store(gen, std::memory_order_relaxed);
    counters_.connected.store(true, std::memory_order_relaxed);
    ++counters_.pushes;
    if (failing_) log_("push works again after: " + last_error_);
    failing_ = false;
    last_error_.clear();
    log_("pushed generation " + std::to_string(gen) + " (" + std::to_string(n) +
         (n == 1 ? " entry" : " entries") + ") to " + client_->socket_path());
    return true;
  }
  PushFailed("too many entries refused by the dataplane in one push");
  return false;
}

void Responder::Hello() {
  std::string err;
  const auto answer = client_->Call("hello", nlohmann::json::object(), &err);
  counters_.connected.store(client_->connected(), std::memory_order_relaxed);
  if (!answer) return;  // absent or hung: a pending push goes out with the next hello that works
  if (!answer->value("ok", false)) {
    log_("hello refused: " + answer->value("error", std::string("?")));
    return;
  }
  const std::string boot = answer->value("boot_id", std::string());
  const uint64_t dp_gen = answer->value("block_generation", uint64_t{0});
  bool push = generation_ != pushed_generation_;
  if (boot_id_.empty()) {
    // First contact since we started: whatever the dataplane holds came from an earlier control
    // or nothing; go on from above its generation so that its log keeps increasing.
    log_("dataplane " + answer->value("sensor", std::string("?")) + " (boot " + boot +
         ", block generation " + std::to_string(dp_gen) + ") on " + client_->socket_path());
    if (dp_gen >= generation_) {
      generation_ = dp_gen + 1;
      counters_.generation.store(generation_, std::memory_order_relaxed);
    }
    push = true;
  } else if (boot != boot_id_) {
    ++counters_.dataplane_restarts;
    log_("dataplane restarted (boot " + boot_id_ + " -> " + boot + "): pushing the table again");
    store::AuditEntry e;
    e.ts_ns = WallNow();
    e.who = kSystem;
    e.op = "dataplane-restart";
    e.detail = "boot " + boot_id_ + " -> " + boot + "; table pushed again";
    std::string serr;
    store_->InsertAudit(e, &serr);
    // Its counters start again from 0: what was counted so far becomes the base.
    for (auto& [id, s] : seen_) {
      s.base_drops += s.last_drops;
      s.base_resets += s.last_resets;
      s.last_drops = s.last_resets = 0;
    }
    push = true;
  } else if (dp_gen != pushed_generation_) {
    log_("dataplane holds block generation " + std::to_string(dp_gen) + ", we pushed " +
         std::to_string(pushed_generation_) + ": pushing again");
    push = true;
  }
  boot_id_ = boot;
  if (push) PushNow(/*ignore_backoff=*/true);
}

void Responder::ReadCounters() {
  std::string err;
  const auto answer = client_->Call("block.get", nlohmann::json::object(), &err);
  if (!answer || !answer->value("ok", false) || !answer->contains("entries") ||
      !(*answer)["entries"].is_array()) {
    return;
  }
  ++counters_.counter_reads;
  std::vector<store::ActionCounters> changed;
  for (const auto& e : (*answer)["entries"]) {
    if (!e.is_object()) continue;
    const int64_t id = e.value("id", int64_t{0});
    if (id <= 0) continue;
    const uint64_t drops = e.value("drops", uint64_t{0});
    const uint64_t resets = e.value("resets", uint64_t{0});
    const int64_t first = e.value("first_drop_ns", int64_t{0});
    Seen& s = seen_[id];
    if (!s.stored) {
      // First sight in this process: continue from what the store holds.
      const auto a = store_->GetAction(id);
      if (!a) continue;
      s.base_drops = a->drops > drops ? a->drops - drops : 0;
      s.base_resets = a->resets > resets ? a->resets - resets : 0;
      s.first_drop_ns = a->first_drop_ns;
      s.last_drops = drops;
      s.last_resets = resets;
      s.stored = true;
      if (a->drops == s.base_drops + drops && a->resets == s.base_resets + resets &&
          (first == 0 || (a->first_drop_ns != 0 && a->first_drop_ns <= first))) {
        continue;
      }
    } else {
      if (drops < s.last_drops) s.base_drops += s.last_drops;  // a fresh counter
      if (resets < s.last_resets) s.base_resets += s.last_resets;
      if (drops == s.last_drops && resets == s.last_resets &&
          (first == 0 || (s.first_drop_ns != 0 && s.first_drop_ns <= first))) {
        continue;
      }
      s.last_drops = drops;
      s.last_resets = resets;
    }
    if (first != 0 && (s.first_drop_ns == 0 || first < s.first_drop_ns)) s.first_drop_ns = first;
    changed.push_back({id, s.base_drops + drops, s.base_resets + resets, s.first_drop_ns});
  }
  if (!changed.empty() && !store_->UpdateActionCounters(changed, WallNow(), &err)) {
    log_("storing counters: " + err);
  }
}

void Responder::Poll() {
  const int64_t now = MonoNow();
  if (now < next_check_ns_ && now < next_counters_ns_) return;
  if (now >= next_check_ns_) {
    next_check_ns_ = now + options_.check_interval_ns;
    Sweep();
    if (options_.enabled) Hello();
  }
  if (options_.enabled && now >= next_counters_ns_) {
    next_counters_ns_ = now + options_.counters_interval_ns;
    if (client_->connected()) ReadCounters();
  }
}

nlohmann::json Responder::StatusJson() const {
  return {{"enabled", options_.enabled},
          {"dataplane_socket", options_.socket_path},
          {"connected", client_->connected()},
          {"boot_id", boot_id_},
          {"generation", generation_},
          {"pushed_generation", pushed_generation_},
          {"last_error", last_error_},
          {"pushes", counters_.pushes.load(std::memory_order_relaxed)},
          {"push_failures", counters_.push_failures.load(std::memory_order_relaxed)},
          {"dataplane_restarts", counters_.dataplane_restarts.load(std::memory_order_relaxed)}};
}

}  // namespace vigil::ctl::respond
