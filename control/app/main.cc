// vigil-control: receives the dataplanes' events over the event channel, stores them, runs every
// detection model over them, records breaches, and serves the API.
//
//   vigil-control --config FILE [--data-dir DIR] [--event-socket PATH] [--api-socket PATH]
//                 [--api-listen HOST:PORT] [--models-dir DIR] [--dataplane-socket PATH] [--check]
//
// Threads: the main thread owns the store's writer connection, the channel server, the model
// engine (events are stored, then evaluated, then acknowledged, in that order) and the responder
// (response actions and the dataplane's command socket: pushed right after the batch that made
// a breach, bounded to 100 ms per request); one API thread serves HTTP through its own read-only
// store connection and hands changes to the main thread. A packet capture export (GET
// /api/v1/pcaps) runs on the API thread with its own short-lived connection to the dataplane's
// command socket (up to 30 s), never on the main thread. SIGTERM/SIGINT stop it cleanly.
#include <fcntl.h>
#include <signal.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <limits>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "control/api/api.h"
#include "control/api/http_server.h"
#include "control/app/control_config.h"
#include "control/channel/channel_server.h"
#include "control/config/config_push.h"
#include "control/model/model.h"
#include "control/query/query.h"
#include "control/respond/respond.h"
#include "control/store/store.h"

namespace {

std::atomic<bool> g_stop{false};
void OnSignal(int) { g_stop.store(true); }

int Usage(const std::string& why) {
  if (!why.empty()) std::fprintf(stderr, "vigil-control: %s\n", why.c_str());
  std::fprintf(stderr,
               "usage: vigil-control --config FILE [--data-dir DIR] [--event-socket PATH] "
               "[--api-socket PATH] [--api-listen HOST:PORT] [--models-dir DIR] "
               "[--dataplane-socket PATH] [--check]\n"
               "       vigil-control [--config FILE] --check-push DOCUMENT\n"
               "  --check: validate the configuration and the models, then exit\n"
               "  --check-push: validate a pushed configuration's control section offline\n"
               "    (against --config's restart-only settings when given; docs/operations.md)\n");
  return 2;
}

// Live counters the API thread reads.
struct Live {
  std::atomic<uint64_t> events_received{0}, events_stored{0}, duplicates{0}, unparsable{0};
  std::atomic<uint64_t> breaches{0}, store_errors{0}, batches{0};
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

void MakeParent(const std::string& path) {
  const auto parent = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
}

// The API token: read from `path`, or created there (mode 0600, 32 random bytes as hex) when the
// file does not exist. Returns "" with *error on failure.
std::string LoadOrCreateToken(const std::string& path, std::string* error) {
  std::FILE* f = std::fopen(path.c_str(), "r");
  if (f == nullptr && errno == ENOENT) {
    unsigned char raw[32];
    if (getrandom(raw, sizeof raw, 0) != static_cast<ssize_t>(sizeof raw)) {
      *error = "getrandom failed";
      return "";
    }
    std::string hex;
    for (unsigned char c : raw) {
      static const char kHex[] = "0123456789abcdef";
      hex += kHex[c >> 4];
      hex += kHex[c & 15];
    }
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0) {
      const std::string line = hex + "\n";
      const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
      ::close(fd);
      if (ok) return hex;
    }
    f = std::fopen(path.c_str(), "r");  // lost a race with another creator, or cannot create
  }
  if (f == nullptr) {
    *error = path + ": " + std::strerror(errno);
    return "";
  }
  char buf[512] = {};
  const size_t n = std::fread(buf, 1, sizeof buf - 1, f);
  std::fclose(f);
  std::string token(buf, n);
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  if (token.size() < 16 || token.find_first_of(" \t\r\n") != std::string::npos) {
    *error = path + ": a token of at least 16 characters without spaces is expected";
    return "";
  }
  return token;
}

// A change handed from the API thread to the main thread (the store's writer): a breach update
// or a response operation. `run` is called on the main thread; `stopping` answers 503 instead.
struct Job {
  std::function<vigil::ctl::api::Response()> run;
  std::promise<vigil::ctl::api::Response> done;
};

// Carries the models' frequency windows and throttles over a restart (Engine::Warm): the stored
// events of the warm-up span before the newest one, in stored order, and each (model, device)'s
// newest breach. Logs what it did; a store error leaves the engine as far as it got.
void WarmUp(vigil::ctl::store::Store& store, vigil::ctl::model::Engine& engine) {
  using namespace vigil::ctl;
  const auto started = std::chrono::steady_clock::now();
  const int64_t newest = store.GetStats().newest_ts_ns;
  if (newest == 0) return;  // an empty store
  int64_t max_throttle = 0;
  for (const model::Model& m : engine.models().models()) {
    max_throttle = std::max(max_throttle, m.throttle_ns);
  }
  const auto since = [newest](int64_t span) {
    return span >= newest ? std::numeric_limits<int64_t>::min() : newest - span;
  };
  size_t throttles = 0;
  for (const store::Store::LastBreach& b : store.LastBreaches(since(max_throttle))) {
    engine.RestoreThrottle(b.model, b.device, b.ts_ns);
    ++throttles;
  }
  std::string err;
  const bool ok = store.ForEachEventSince(
      since(engine.WarmUpSpanNs()),
      [&](const store::StoredEvent& e) {
        const nlohmann::json ev = nlohmann::json::parse(e.json, nullptr, false);
        if (ev.is_object()) engine.Warm(ev, e.id, e.ts_ns);
        return !g_stop.load();
      },
      &err);
  if (!ok) std::fprintf(stderr, "vigil-control: model warm-up: %s\n", err.c_str());
  const model::Engine::Stats st = engine.stats();
  std::fprintf(stderr,
               "vigil-control: models warmed up with %llu stored events (the last %lld s of packet "
               "time), %zu throttles restored, in %.2f s\n",
               static_cast<unsigned long long>(st.warmed),
               static_cast<long long>(engine.WarmUpSpanNs() / 1000000000), throttles,
               std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
}

// --check-push DOCUMENT: the control section of a configuration push, checked as a push would
// (schema, models, restart-only settings against `config_path` when given). The dataplane
// section needs the dataplane (its rules are compiled there): `vigilctl config validate`.
int CheckPush(const std::string& path, const std::string& config_path) {
  using namespace vigil::ctl;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "vigil-control: cannot read %s\n", path.c_str());
    return 1;
  }
  std::stringstream text;
  text << in.rdbuf();
  ControlConfig running;
  bool compare = false;
  if (!config_path.empty()) {
    const ControlConfigResult base = LoadControlConfigFile(config_path);
    for (const auto& e : base.errors) std::fprintf(stderr, "%s\n", e.ToString().c_str());
    if (!base.config) return 1;
    running = *base.config;
    compare = true;
  }
  config::Document doc = config::ParseDocument(text.str(), path, running);
  if (!compare) {  // nothing to compare restart-only settings with
    std::erase_if(doc.errors, [](const config::PushError& e) {
      return e.message.find("can only change with a restart") != std::string::npos;
    });
  }
  for (const auto& e : doc.errors) std::fprintf(stderr, "%s\n", e.ToString().c_str());
  if (!doc.errors.empty()) {
    std::fprintf(stderr, "vigil-control: %zu error(s) in %s\n", doc.errors.size(), path.c_str());
    return 1;
  }
  std::printf(
      "push document ok: %s, version %s; control section: %s; dataplane section: %s\n",
      path.c_str(), doc.version.c_str(),
      doc.has_control
          ? (std::to_string(doc.models ? doc.models->models().size() : 0) + " models").c_str()
          : "none",
      doc.has_dataplane ? "present (checked by the dataplane: vigilctl config validate)" : "none");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace vigil::ctl;
  std::string config_path, data_dir, event_socket, api_socket, api_listen, models_dir;
  std::string dataplane_socket;
  std::string check_push;
  bool check = false, api_socket_set = false, api_listen_set = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    bool ok = true;
    if (a == "--config") {
      ok = value(&config_path);
    } else if (a == "--data-dir") {
      ok = value(&data_dir);
    } else if (a == "--event-socket") {
      ok = value(&event_socket);
    } else if (a == "--api-socket") {
      ok = value(&api_socket);
      api_socket_set = true;
    } else if (a == "--api-listen") {
      ok = value(&api_listen);
      api_listen_set = true;
    } else if (a == "--models-dir") {
      ok = value(&models_dir);
    } else if (a == "--dataplane-socket") {
      ok = value(&dataplane_socket);
    } else if (a == "--check") {
      check = true;
    } else if (a == "--check-push") {
      ok = value(&check_push);
    } else if (a == "-h" || a == "--help") {
      return Usage("");
    } else {
      return Usage("unknown argument " + a);
    }
    if (!ok) return Usage(a + " needs a value");
  }
  if (!check_push.empty()) return CheckPush(check_push, config_path);
  if (config_path.empty()) return Usage("--config is required");
  const ControlConfigResult loaded = LoadControlConfigFile(config_path);
  for (const auto& e : loaded.errors) std::fprintf(stderr, "%s\n", e.ToString().c_str());
  if (!loaded.config) return 1;
  ControlConfig cfg = *loaded.config;
  if (!data_dir.empty()) cfg.data_dir = data_dir;
  if (!event_socket.empty()) cfg.event_socket = event_socket;
  if (api_socket_set) cfg.api_socket = api_socket;
  if (api_listen_set) cfg.api_listen = api_listen;
  if (!models_dir.empty()) cfg.models_dir = models_dir;
  if (!dataplane_socket.empty()) cfg.respond.dataplane_socket = dataplane_socket;

  std::vector<config::PushError> model_errors;
  // Replaced as a whole by a configuration push (main thread); the API thread reads api_models.
  std::shared_ptr<const model::ModelSet> models = config::LoadModels(cfg, &model_errors);
  for (const auto& e : model_errors) std::fprintf(stderr, "%s\n", e.ToString().c_str());
  if (!models) return 1;
  if (check) {
    std::printf("config ok: %s; %zu models (models_dir %s, %zu inline)\n", config_path.c_str(),
                models->models().size(), cfg.models_dir.empty() ? "none" : cfg.models_dir.c_str(),
                cfg.models.size());
    return 0;
  }

  std::string err;
  store::Options so;
  so.dir = cfg.data_dir;
  so.retention_days = static_cast<int>(cfg.retention_days);
  so.max_bytes = cfg.retention_max_mb << 20;
  auto store = store::Store::Open(so, &err);
  if (!store) {
    std::fprintf(stderr, "vigil-control: store: %s\n", err.c_str());
    return 1;
  }
  auto engine = std::make_unique<model::Engine>(*models);
  if (!engine->prefilter_error().empty()) {
    std::fprintf(stderr, "vigil-control: model prefilter off: %s\n",
                 engine->prefilter_error().c_str());
  }
  WarmUp(*store, *engine);
  Live live;
  respond::Options ro_respond;
  ro_respond.enabled = cfg.respond.enabled;
  ro_respond.socket_path = cfg.respond.dataplane_socket;
  ro_respond.never_block = cfg.respond.never_block;
  ro_respond.allow = cfg.respond.allow;
  respond::Responder responder(store.get(), ro_respond);

  // Store, then evaluate, then acknowledge (the server acks when this returns true): an event is
  // acknowledged only once it is durable and every model has seen it. The events and the
  // breaches they cause commit in one transaction, so a crash cannot leave stored events whose
  // breaches are missing (their resend would be skipped as duplicates and never evaluated).
  auto commit = [&](std::string_view sensor, std::span<const channel::Record> records) -> bool {
    std::vector<store::EventIn> batch;
    batch.reserve(records.size());
    for (const channel::Record& r : records) {
      batch.push_back({std::string(sensor), r.seq, std::string(r.payload)});
    }
    live.events_received += records.size();
    std::vector<int64_t> ids;
    std::string e;
    bool evaluated = false;
    // A failed batch is rolled back and resent by the dataplane. The engine may have seen some of
    // its events: rebuild it from the store so that the resend is not counted twice.
    auto fail = [&](const char* what) {
      store->RollbackBatch();
      ++live.store_errors;
      std::fprintf(stderr, "vigil-control: %s: %s\n", what, e.c_str());
      if (evaluated) {
        engine = std::make_unique<model::Engine>(*models);
        WarmUp(*store, *engine);
      }
      return false;
    };
    if (!store->BeginBatch(&e)) return fail("store");
    if (!store->InsertEvents(batch, &ids, &e)) return fail("store");
    uint64_t stored = 0, duplicates = 0, unparsable = 0;
    std::vector<store::Breach> breaches;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (i >= ids.size() || ids[i] == 0) {
        ++duplicates;
        continue;
      }
      ++stored;
      const nlohmann::json ev = nlohmann::json::parse(batch[i].json, nullptr, false);
      if (ev.is_discarded() || !ev.is_object()) {
        ++unparsable;
        continue;
      }
      int64_t ts = 0;
      if (auto t = ev.find("timestamp"); t != ev.end() && t->is_string()) {
        ts = store::ParseEveTimestamp(t->get<std::string>()).value_or(0);
      }
      evaluated = true;
      for (const model::Firing& f : engine->OnEvent(ev, ids[i], ts)) {
        store::Breach b;
        b.model = f.model;
        b.priority = f.priority;
        b.device = f.device;
        b.ts_ns = f.ts_ns;
        b.score = f.score;
        b.component = f.component;
        b.filter = f.filter;
        b.details_json = f.details.dump();
        // The breach's event log: what made it fire, then the same flows' other events in the
        // window.
        for (int64_t id : f.trigger_event_ids) b.events.push_back({id, true});
        for (const store::StoredEvent& other :
             store->EventsOfFlows(f.flow_ids, f.window_from_ns, f.window_to_ns)) {
          bool seen = false;
          for (const auto& ref : b.events) seen |= ref.event_id == other.id;
          if (!seen) b.events.push_back({other.id, false});
        }
        b.id = store->InsertBreach(b, &e);
        if (b.id <= 0) return fail("breach not stored");
        // Its response action, in the same transaction as the breach.
        if (const model::Model* m = models->Find(f.model);
            m != nullptr && responder.OnBreach(b, *m, &e) < 0) {
          return fail("response action not stored");
        }
        breaches.push_back(std::move(b));
      }
    }
    if (!store->CommitBatch(&e)) return fail("store");
    ++live.batches;
    live.events_stored += stored;
    live.duplicates += duplicates;
    live.unparsable += unparsable;
    live.breaches += breaches.size();
    for (const store::Breach& b : breaches) {
      std::fprintf(stderr, "vigil-control: breach #%lld %s device %s score %.0f (%zu events)\n",
                   static_cast<long long>(b.id), b.model.c_str(), b.device.c_str(), b.score,
                   b.events.size());
    }
    // An autonomous action goes to the dataplane now, before the acknowledgement: the time from
    // the trigger packet to the first drop counts.
    if (!breaches.empty()) responder.PushIfChanged();
    return true;
  };
  channel::ServerOptions co;
  co.socket_path = cfg.event_socket;
  MakeParent(cfg.event_socket);
  channel::ChannelServer server(co, commit,
                                [&](std::string_view s) { return store->LastSeq(std::string(s)); });
  err = server.Listen();
  if (!err.empty()) {
    std::fprintf(stderr, "vigil-control: event_socket: %s\n", err.c_str());
    return 1;
  }

  // The API thread, with its own read-only connection.
  store::Options ro = so;
  ro.read_only = true;
  auto reader = store::Store::Open(ro, &err);
  // The configuration pusher's own: it runs on the API thread and on the resync thread, and a
  // Store (its statement cache) belongs to one thread at a time.
  auto config_reader = reader ? store::Store::Open(ro, &err) : nullptr;
  if (!reader || !config_reader) {
    std::fprintf(stderr, "vigil-control: store reader: %s\n", err.c_str());
    return 1;
  }
  api::HttpServer http;
  if (!cfg.api_socket.empty()) MakeParent(cfg.api_socket);
  err = http.Listen(cfg.api_listen, cfg.api_socket);
  if (!err.empty()) {
    std::fprintf(stderr, "vigil-control: %s\n", err.c_str());
    return 1;
  }
  // The main thread snapshots its counters; the API thread only reads the snapshot.
  std::mutex snapshot_mu;
  nlohmann::json snapshot;
  auto take_snapshot = [&]() {
    const auto& s = server.stats();
    const model::Engine::Stats m = engine->stats();
    return nlohmann::json{{"uptime_s", std::chrono::duration_cast<std::chrono::seconds>(
                                           std::chrono::steady_clock::now() - live.started)
                                           .count()},
                          {"events_received", live.events_received.load()},
                          {"events_stored", live.events_stored.load()},
                          {"duplicates", live.duplicates.load()},
                          {"unparsable", live.unparsable.load()},
                          {"breaches", live.breaches.load()},
                          {"store_errors", live.store_errors.load()},
                          {"channel",
                           {{"connections", s.active},
                            {"sensors", s.sensors},
                            {"records", s.records},
                            {"bad_frames", s.bad_frames},
                            {"gaps", s.gaps}}},
                          {"models",
                           {{"events", m.events},
                            {"evaluated", m.evaluated},
                            {"prefiltered_out", m.prefiltered_out},
                            {"firings", m.firings},
                            {"throttled", m.throttled}}},
                          {"respond", responder.StatusJson()}};
  };
  auto status = [&]() {
    std::lock_guard<std::mutex> lock(snapshot_mu);
    return snapshot;
  };
  auto metrics = [&]() {
    std::string o;
    auto counter = [&](const char* name, const char* help, uint64_t v) {
      o += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n" + name +
           " " + std::to_string(v) + "\n";
    };
    counter("vigil_control_events_received_total", "Events received from dataplanes.",
            live.events_received.load());
    counter("vigil_control_events_stored_total", "Events stored.", live.events_stored.load());
    counter("vigil_control_events_duplicate_total", "Resent events skipped.",
            live.duplicates.load());
    counter("vigil_control_breaches_total", "Breaches recorded.", live.breaches.load());
    counter("vigil_control_store_errors_total", "Store failures.", live.store_errors.load());
    // Responses (relaxed reads: statistics the main thread keeps).
    const respond::Responder::Counters& rc = responder.counters();
    auto labelled = [&](const char* name, const char* help, const char* label,
                        std::initializer_list<std::pair<const char*, uint64_t>> values) {
      o += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n";
      for (const auto& [value, n] : values) {
        o += std::string(name) + "{" + label + "=\"" + value + "\"} " + std::to_string(n) + "\n";
      }
    };
    labelled("vigil_control_respond_actions_created_total",
             "Response actions created, by the state they started in.", "state",
             {{"pending", rc.created_pending.load(std::memory_order_relaxed)},
              {"active", rc.created_active.load(std::memory_order_relaxed)},
              {"refused", rc.created_refused.load(std::memory_order_relaxed)},
              {"suppressed", rc.created_suppressed.load(std::memory_order_relaxed)}});
    labelled("vigil_control_respond_operations_total", "Operations on response actions.", "op",
             {{"confirm", rc.confirmed.load(std::memory_order_relaxed)},
              {"extend", rc.extended.load(std::memory_order_relaxed)},
              {"clear", rc.cleared.load(std::memory_order_relaxed)},
              {"expire", rc.expired.load(std::memory_order_relaxed)},
              {"block", rc.blocks.load(std::memory_order_relaxed)}});
    counter("vigil_control_respond_pushes_total", "Block tables the dataplane accepted.",
            rc.pushes.load(std::memory_order_relaxed));
    counter("vigil_control_respond_push_failures_total",
            "Block table pushes that failed (no dataplane, timeout, refused).",
            rc.push_failures.load(std::memory_order_relaxed));
    counter("vigil_control_respond_dataplane_restarts_total",
            "Dataplane restarts seen (a new boot_id in hello).",
            rc.dataplane_restarts.load(std::memory_order_relaxed));
    return o;
  };
  {
    nlohmann::json first = take_snapshot();
    std::lock_guard<std::mutex> lock(snapshot_mu);
    snapshot = std::move(first);
  }
  const std::string token_file =
      cfg.api_token_file.empty() ? cfg.data_dir + "/api.token" : cfg.api_token_file;
  const std::string token = LoadOrCreateToken(token_file, &err);
  if (token.empty()) {
    std::fprintf(stderr, "vigil-control: api.token_file: %s (changing API calls refused)\n",
                 err.c_str());
  }
  // Changes go to the main thread, which owns the writer; the API thread waits (bounded).
  std::mutex jobs_mu;
  std::deque<std::shared_ptr<Job>> jobs;
  bool jobs_closed = false;  // under jobs_mu: stopping, no more jobs
  auto submit = [&](std::function<api::Response()> run) -> api::Response {
    auto job = std::make_shared<Job>();
    job->run = std::move(run);
    auto done = job->done.get_future();
    {
      std::lock_guard<std::mutex> lock(jobs_mu);
      if (jobs_closed) {
        return api::Response{503, "application/json", R"({"error":"vigil-control is stopping"})"};
      }
      jobs.push_back(job);
    }
    if (done.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
      return api::Response{503, "application/json", R"({"error":"store busy, try again"})"};
    }
    return done.get();
  };
  auto update = [&](int64_t id, const store::Store::BreachUpdate& u) -> api::Response {
    return submit([&store, id, u]() -> api::Response {
      std::string e;
      if (store->UpdateBreach(id, u, &e)) return {};
      const bool missing = e.rfind("no breach", 0) == 0;
      return {missing ? 404 : 500, "application/json", nlohmann::json{{"error", e}}.dump()};
    });
  };
  // A response operation: applied (and pushed) on the main thread; the result travels back in
  // the Response's body so that the API thread can rebuild it.
  auto respond_op = [&](const respond::Operation& op) -> respond::OpResult {
    const api::Response r = submit([&responder, op]() -> api::Response {
      const respond::OpResult res = responder.Apply(op);
      return {res.status, "application/json",
              nlohmann::json{{"id", res.id},
                             {"error", res.error},
                             {"push_attempted", res.push_attempted},
                             {"pushed", res.pushed},
                             {"push_error", res.push_error},
                             {"generation", res.generation}}
                  .dump()};
    });
    respond::OpResult out;
    out.status = r.status;
    const nlohmann::json j = nlohmann::json::parse(r.body, nullptr, false);
    if (!j.is_object()) return out;
    out.id = j.value("id", int64_t{0});
    out.error = j.value("error", std::string());
    out.push_attempted = j.value("push_attempted", false);
    out.pushed = j.value("pushed", false);
    out.push_error = j.value("push_error", std::string());
    out.generation = j.value("generation", uint64_t{0});
    return out;
  };
  auto run_jobs = [&](bool stopping) {
    std::deque<std::shared_ptr<Job>> todo;
    {
      std::lock_guard<std::mutex> lock(jobs_mu);
      todo.swap(jobs);
      jobs_closed = stopping;
    }
    for (const auto& job : todo) {
      api::Response r;
      if (stopping) {
        r = {503, "application/json", R"({"error":"vigil-control is stopping"})"};
      } else {
        r = job->run();
      }
      job->done.set_value(std::move(r));
    }
  };
  api::Api api(reader.get(), nullptr, status, metrics, update, token);
  api.set_files_dir(cfg.files_dir);
  api.set_respond(respond_op);
  api.set_dataplane_socket(cfg.respond.dataplane_socket);
  std::mutex models_mu;
  std::shared_ptr<const model::ModelSet> api_models = models;
  api.set_models_source([&]() {
    std::lock_guard<std::mutex> lock(models_mu);
    return api_models;
  });
  // Configuration push: validated and staged on the API thread; control's part is swapped in and
  // the version recorded on the main thread (the job runs after the dataplane has committed).
  // Pushed settings are compared with the file's, not with command-line overrides.
  config::Pusher pusher(
      config_reader.get(), *loaded.config, cfg.respond.dataplane_socket,
      [&](const config::Document& doc, const std::string& previous_state,
          const store::AuditEntry& audit) -> std::string {
        const api::Response r = submit([&, doc, previous_state, audit]() -> api::Response {
          std::string e;
          store::ConfigVersion v;
          v.version = doc.version;
          v.hash = doc.hash;
          v.pushed_ns = audit.ts_ns;
          v.who = audit.who;
          v.summary = audit.detail;
          v.document = doc.text;
          if (store->ActivateConfig(v, previous_state, audit, &e) == 0) {
            return {500, "text/plain", "recording the version: " + e};
          }
          if (doc.control) {
            const ControlConfig& c = *doc.control;
            models = doc.models;
            engine = std::make_unique<model::Engine>(*models);
            WarmUp(*store, *engine);
            {
              std::lock_guard<std::mutex> lock(models_mu);
              api_models = models;
            }
            responder.SetPolicy(c.respond.enabled, c.respond.never_block, c.respond.allow);
            store->SetRetention(static_cast<int>(c.retention_days), c.retention_max_mb << 20);
          }
          // The dataplane's never_block may have changed: its table is rebuilt under it.
          if (doc.has_dataplane && responder.enabled()) responder.Push();
          std::fprintf(stderr, "vigil-control: configuration %s\n", audit.detail.c_str());
          return {200, "text/plain", ""};
        });
        return r.status == 200 ? "" : r.body;
      },
      [&](const store::AuditEntry& a) {
        submit([&, a]() -> api::Response {
          std::string e;
          if (store->InsertAudit(a, &e) == 0) {
            std::fprintf(stderr, "vigil-control: audit: %s\n", e.c_str());
          }
          return {};
        });
      });
  api.set_config(&pusher);
  // A dataplane that restarted runs its file: the active version goes back to it.
  std::atomic<bool> resync_stop{false};
  std::thread resync_thread([&] {
    while (!resync_stop.load()) {
      for (int i = 0; i < 20 && !resync_stop.load(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      if (resync_stop.load()) break;
      const std::string did = pusher.Resync();
      if (!did.empty()) std::fprintf(stderr, "vigil-control: configuration: %s\n", did.c_str());
    }
  });
  std::thread api_thread([&] { http.Serve([&](const api::Request& r) { return api.Handle(r); }); });

  signal(SIGTERM, OnSignal);
  signal(SIGINT, OnSignal);
  std::fprintf(stderr, "vigil-control: %zu models, store %s, events on %s, API on %s%s%s\n",
               models->models().size(), cfg.data_dir.c_str(), cfg.event_socket.c_str(),
               cfg.api_listen.c_str(), cfg.api_socket.empty() ? "" : " and ",
               cfg.api_socket.c_str());
  std::fprintf(stderr, "vigil-control: respond: %s, dataplane commands on %s\n",
               cfg.respond.enabled ? "enabled" : "disabled (actions recorded, never pushed)",
               cfg.respond.dataplane_socket.c_str());
  auto last_retention = std::chrono::steady_clock::now();
  while (!g_stop.load()) {
    server.Poll(50);
    run_jobs(false);
    responder.Poll();
    {
      nlohmann::json next = take_snapshot();
      std::lock_guard<std::mutex> lock(snapshot_mu);
      snapshot = std::move(next);
    }
    const auto now = std::chrono::steady_clock::now();
    if (now - last_retention > std::chrono::minutes(10)) {
      store->ApplyRetention(store->GetStats().newest_ts_ns);
      last_retention = now;
    }
  }
  resync_stop.store(true);
  run_jobs(true);  // refuses what is queued and what comes, so that the API thread can end
  server.Close();
  http.Stop();
  api_thread.join();
  resync_thread.join();
  std::fprintf(stderr, "vigil-control: stopped: %llu events stored, %llu breaches\n",
               static_cast<unsigned long long>(live.events_stored.load()),
               static_cast<unsigned long long>(live.breaches.load()));
  return 0;
}
