// vigil-control's REST/JSON API: status, breaches, search, models, responses, packet captures,
// metrics. The same
// handlers serve the HTTP server (control/api/http_server.h) and `vigilctl --data-dir` on a stopped
// store.
//
// Thread: one Api per thread; it reads through its own read-only store connection.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "control/api/http_server.h"
#include "control/config/config_push.h"
#include "control/model/model.h"
#include "control/respond/respond.h"
#include "control/store/store.h"

namespace vigil::ctl::api {

// "2017-10-20T18:43:22Z", "2017-10-20T18:43:22.5+0000", "2017-10-20" (UTC) or Unix seconds.
std::optional<int64_t> ParseTimeArg(const std::string& s);
// "60d", "24h", "30m", "45s" (a positive integer and a unit).
std::optional<int64_t> ParseDurationArg(const std::string& s);
// Packet-time nanoseconds as "2017-10-20T18:43:22.992213Z".
std::string FormatTime(int64_t ns);
// A packet-history window bound: RFC 3339 ("2026-11-26T10:00:00Z", "...10:00:00.25+01:00"),
// "2026-11-26" (UTC midnight) or Unix seconds with an optional fraction ("1795000000.5").
// Nanoseconds since the epoch; nothing before 1970.
std::optional<int64_t> ParseWindowTime(const std::string& s);
// Nanoseconds as RFC 3339 UTC with only the fraction digits needed: "2026-11-26T10:00:00Z",
// "2026-11-26T10:00:00.5Z", "2026-11-26T10:00:00.000000001Z".
std::string FormatTimeNs(int64_t ns);

// Packet capture export (docs/evidence.md, "Packet capture export").
inline constexpr uint64_t kMaxPcapBytes = uint64_t{1} << 30;  // larger exports: 413
inline constexpr int kPcapExportTimeoutMs = 30000;            // the dataplane's history.export

// A breach as the API shows it. With `events`: its event log, the stored references (triggers
// and the same flows' events in the window before the firing) followed by, marked "after", the
// same flows' events from the firing to one model interval later (at most kMaxAfterEvents).
inline constexpr size_t kMaxAfterEvents = 100;
nlohmann::json BreachJson(const store::Breach& b, store::Store* events);

// Applies a breach update on the store's writer (control's main thread, or vigilctl's own
// writer on a stopped store). Returns status 200 when done, else an error response.
using BreachUpdater = std::function<Response(int64_t id, const store::Store::BreachUpdate&)>;

// Applies a response operation on control's main thread (respond::Responder::Apply) and returns
// its result; the API thread waits for it (bounded, as for breach updates).
using RespondFn = std::function<respond::OpResult(const respond::Operation&)>;

// Largest comment accepted (bytes).
inline constexpr size_t kMaxCommentBytes = 4096;

class Api {
 public:
  // `store`: a read-only connection owned by the caller. `models`: may be null (no /models).
  // `status`: live counters of the running control (null for a stopped store).
  // `update` and `token`: the changing calls (POST); without an updater the API is read-only, and
  // without a token every change is refused (403). A change needs `Authorization: Bearer TOKEN`.
  Api(store::Store* store, const model::ModelSet* models,
      std::function<nlohmann::json()> status = nullptr,
      std::function<std::string()> metrics = nullptr, BreachUpdater update = nullptr,
      std::string token = "");

  Response Handle(const Request& req);

  // The handlers, also called by vigilctl --data-dir.
  Response Status();
  Response Breaches(const std::string& model, const std::string& since, const std::string& limit);
  Response Breach(int64_t id);
  Response Search(const std::string& q, const std::string& from, const std::string& to,
                  const std::string& last, const std::string& limit, const std::string& count_by);
  Response Models();
  // GET /api/v1/files: a search restricted to fileinfo events (as Search).
  Response Files(const std::string& q, const std::string& from, const std::string& to,
                 const std::string& last, const std::string& limit);
  // GET /api/v1/files/{sha256}: the stored content (application/octet-stream) from the files
  // directory. `sha256` must be 64 hex digits; 404 when not stored or no directory is set.
  Response File(const std::string& sha256);
  // The dataplane's file store on this host (outputs.files.dir); "" serves no content.
  void set_files_dir(std::string dir) { files_dir_ = std::move(dir); }
  // POST /api/v1/breaches/{id}/{acknowledge|unacknowledge|comment}, body {"comment": "..."}
  // (optional for acknowledge, required for comment). Returns the breach as it is afterwards.
  Response UpdateBreach(int64_t id, const std::string& action, const std::string& body);
  Response Metrics();

  // Responses. GET /api/v1/respond/actions?state=&limit=, /api/v1/respond/actions/{id} (with its
  // audit rows), /api/v1/respond/audit?action=&limit=; POST
  // /api/v1/respond/actions/{id}/{confirm|extend|clear} (body {"who","reason","duration"}) and
  // /api/v1/respond/block (body {"kind","addr","peer","client_port","server_port","proto",
  // "duration","who","reason"}). Changes need the token and a RespondFn (405 without one).
  void set_respond(RespondFn fn) { respond_ = std::move(fn); }
  Response RespondActions(const std::string& state, const std::string& limit);
  Response RespondAction(int64_t id);
  Response RespondAudit(const std::string& action, const std::string& limit);
  // `op`: confirm, extend, clear (id > 0) or block (id 0).
  Response RespondChange(int64_t id, const std::string& op, const std::string& body);

  // GET /api/v1/pcaps?host=IP&peer=IP&port=N&proto=tcp&from=T&to=T: the matching packets of the
  // dataplane's packet history as one pcap (application/vnd.tcpdump.pcap), with the export's
  // facts in X-Vigil-* headers. Needs the token (packets are evidence). Runs on the calling
  // thread (the API thread): one short-lived connection to the dataplane's command socket, one
  // `history.export` (at most kPcapExportTimeoutMs), then the pcap the dataplane wrote is opened,
  // unlinked and streamed from the open descriptor. 400: bad parameters; 503: no dataplane
  // socket configured or reachable; 502: the dataplane refused or answered badly; 504: no answer
  // in time; 413: above the size limit.
  Response Pcaps(const std::map<std::string, std::string>& query);
  // The dataplane's command socket ("" answers 503).
  void set_dataplane_socket(std::string path) { dataplane_socket_ = std::move(path); }
  void set_pcap_limits(uint64_t max_bytes, int timeout_ms) {
    max_pcap_bytes_ = max_bytes;
    pcap_timeout_ms_ = timeout_ms;
  }

  // The model set in force when it can change at runtime (a configuration push); otherwise the
  // set given to the constructor is served.
  void set_models_source(std::function<std::shared_ptr<const model::ModelSet>()> fn) {
    models_fn_ = std::move(fn);
  }

  // Configuration push (docs/operations.md "Configuration push"), every route with the token:
  // PUT /api/v1/config (body: the YAML document; ?force=1 accepts an older version; ?who=NAME),
  // POST /api/v1/config/validate (the same checks, nothing changes), POST
  // /api/v1/config/rollback, GET /api/v1/config (the running version and its document, and the
  // dataplane's view), GET /api/v1/config/history?limit=N. 405 without a Pusher.
  void set_config(config::Pusher* pusher) { pusher_ = pusher; }
  Response Config(const Request& req);

 private:
  store::Store* store_;
  const model::ModelSet* models_;
  std::function<std::shared_ptr<const model::ModelSet>()> models_fn_;
  config::Pusher* pusher_ = nullptr;
  std::function<nlohmann::json()> status_;
  std::function<std::string()> metrics_;
  BreachUpdater update_;
  std::string token_;
  std::string files_dir_;
  RespondFn respond_;
  std::string dataplane_socket_;
  uint64_t max_pcap_bytes_ = kMaxPcapBytes;
  int pcap_timeout_ms_ = kPcapExportTimeoutMs;
};

}  // namespace vigil::ctl::api
