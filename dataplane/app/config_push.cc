// Configuration push, dataplane side (docs/operations.md "Configuration push"): control sends
// the pushed document over the command socket; its `dataplane` section is validated against the
// running configuration, its rule set is built by a loading thread off the workers, and a commit
// publishes it with one pointer swap (RCU).
//
//   config.stage  {version, name, document} -> state "building", "ready" or "failed" (+ errors)
//   config.status                           -> the staged configuration's state
//   config.commit {version}                 -> the staged configuration is in force
//   config.get                              -> the running version and rule set
//
// Only detect and respond.never_block change at runtime; a document that changes anything else
// is refused whole, naming each such setting, so nothing is ever half applied.
#include "dataplane/app/config_push.h"

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/app/dataplane.h"
#include "dataplane/detect/inspector.h"
#include "dataplane/export/eve_writer.h"

namespace vigil::dp {

void Dataplane::SetBaseConfig(const Config& file_config, std::string base_dir) {
  base_config_ = file_config;
  base_dir_ = std::move(base_dir);
}

void Dataplane::ReapStagedConfig() {
  if (staged_ != nullptr && staged_->builder.joinable() &&
      staged_->state.load(std::memory_order_acquire) != StageState::kBuilding) {
    staged_->builder.join();
  }
}

void Dataplane::StagedStatusJson(std::string* result) const {
  if (staged_ == nullptr) {
    *result = "\"state\":\"none\"";
    return;
  }
  const StagedConfig& s = *staged_;
  const StageState state = s.state.load(std::memory_order_acquire);
  *result = "\"state\":\"";
  *result += state == StageState::kBuilding ? "building"
             : state == StageState::kReady  ? "ready"
                                            : "failed";
  *result += "\",\"version\":";
  AppendJsonString(result, s.version);
  if (state == StageState::kBuilding) return;
  *result += ",\"errors\":[" + s.errors + "],\"summary\":";
  AppendJsonString(result, s.summary);
  *result += ",\"rules\":" + std::to_string(s.stats.rules) +
             ",\"build_ms\":" + std::to_string(static_cast<uint64_t>(s.build_ms));
}

bool Dataplane::ConfigCommand(const std::string& op, const YAML::Node& req, std::string* result,
                              std::string* error) {
  if (op == "config.get") {
    const auto& rule_set = detects_->snapshot();
    *result = "\"version\":";
    AppendJsonString(result, config_version_);
    *result += ",\"generation\":" + std::to_string(config_generation_) + ",\"config_file\":";
    AppendJsonString(result, config_.source_file);
    *result += ",\"detect\":{\"enabled\":";
    *result += rule_set != nullptr ? "true" : "false";
    *result +=
        ",\"rules\":" + std::to_string(rule_set != nullptr ? rule_set->detector->size() : 0) +
        ",\"summary\":";
    AppendJsonString(result, detect_summary_);
    *result += "},\"never_block\":" + std::to_string(never_block_.size());
    return true;
  }
  if (op == "config.status") {
    StagedStatusJson(result);
    return true;
  }
  if (op == "config.stage") {
    ReapStagedConfig();
    if (staged_ != nullptr && staged_->state.load() == StageState::kBuilding) {
      *error = "configuration version " + staged_->version + " is still being staged";
      return false;
    }
    if (!req["version"] || !req["document"]) {
      *error = "config.stage needs \"version\" and \"document\"";
      return false;
    }
    auto st = std::make_unique<StagedConfig>();
    st->version = req["version"].as<std::string>();
    st->name = req["name"] ? req["name"].as<std::string>() : std::string("<pushed>");
    const std::string document = req["document"].as<std::string>();
    ConfigResult loaded = LoadConfigSection(document, st->name, "dataplane", base_dir_);
    for (const ConfigError& e : loaded.errors) {
      st->AddError(e.file, e.line, e.column, e.field, e.message);
    }
    if (loaded.config) {
      st->config = std::move(*loaded.config);
      const Config& base = base_config_ ? *base_config_ : config_;
      const std::vector<std::string> fixed = RestartOnlyChanges(base, st->config);
      if (!fixed.empty()) {
        // Point at each section in the document (it parsed, so this cannot throw).
        const YAML::Node section = YAML::Load(document)["dataplane"];
        for (const std::string& field : fixed) {
          const std::string key = field.substr(0, field.find('.'));
          int line = 0, column = 0;
          if (section.IsMap() && section[key]) {
            const YAML::Mark m = section[key].Mark();
            line = m.line + 1;
            column = m.column + 1;
          }
          st->AddError(st->name, line, column, "dataplane." + field,
                       "differs from the running configuration and can only change with a "
                       "restart of vigil-dataplane; refused at runtime (only detect and "
                       "respond.never_block change live)");
        }
      }
      for (size_t i = 0; i < st->config.never_block.size(); ++i) {
        Cidr c;
        std::string cerr;
        if (ParseCidr(st->config.never_block[i], &c, &cerr)) {
          st->never_block.push_back(c);
        } else {
          st->AddError(st->name, 0, 0, "dataplane.respond.never_block[" + std::to_string(i) + "]",
                       cerr);
        }
      }
    }
    if (st->error_count > 0) {
      st->state.store(StageState::kFailed, std::memory_order_release);
    } else if (!st->config.detect.enabled) {
      st->summary = "detect off";
      st->state.store(StageState::kReady, std::memory_order_release);
    } else {
      // Compiling a large rule set takes seconds: a thread of its own, which inherits the main
      // thread's CPU set (never a worker's core). The main loop goes on serving.
      st->state.store(StageState::kBuilding, std::memory_order_release);
      StagedConfig* s = st.get();
      const size_t workers = workers_.size();
      s->builder = std::thread([s, workers] {
        const auto t0 = std::chrono::steady_clock::now();
        DetectLoad load = LoadDetector(s->config.detect);
        s->summary = load.summary;
        s->stats = load.stats;
        if (load.detector == nullptr) {
          s->AddError(s->name, 0, 0, "dataplane.detect", load.error);
        }
        if (s->config.detect.refuse_invalid_rules) {
          for (const rules::Rejection* r : RejectsForPush(load)) {
            s->AddError(r->file, r->line, 0, "dataplane.detect",
                        r->ToString() + " (detect.invalid_rules: refuse)");
          }
        }
        if (s->error_count == 0) {
          std::string e;
          s->snapshot = MakeDetectSnapshot(std::move(load.detector), workers, s->version,
                                           s->config.detect.inline_actions, &e);
          if (s->snapshot == nullptr) s->AddError(s->name, 0, 0, "dataplane.detect", e);
        }
        s->build_ms =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                .count();
        s->state.store(s->error_count == 0 ? StageState::kReady : StageState::kFailed,
                       std::memory_order_release);
      });
    }
    staged_ = std::move(st);
    StagedStatusJson(result);
    return true;
  }
  if (op == "config.commit") {
    ReapStagedConfig();
    const std::string version = req["version"] ? req["version"].as<std::string>() : "";
    if (staged_ == nullptr || staged_->version != version) {
      *error = "no configuration version " + version + " is staged";
      return false;
    }
    const StageState state = staged_->state.load(std::memory_order_acquire);
    if (state != StageState::kReady) {
      *error = std::string("configuration version ") + version +
               (state == StageState::kBuilding ? " is still being staged" : " failed validation");
      return false;
    }
    StagedConfig& s = *staged_;
    ++config_generation_;
    // One pointer store: each worker switches between two bursts; the previous rule set is
    // freed once every worker has passed a quiescent point.
    if (s.snapshot != nullptr || detects_->snapshot() != nullptr) {
      detects_->Publish(s.snapshot, config_generation_);
    }
    if (s.snapshot != nullptr) {
      detect_stats_ = s.stats;
      detect_summary_ = s.summary;
      PrintDetectStats(s.stats);
    } else {
      detect_stats_ = {};
      detect_summary_ = "detect off";
    }
    // Applies to block tables published from now on (control re-pushes its table after a
    // commit, so the one in force is rebuilt with it).
    never_block_ = s.never_block;
    config_.detect = s.config.detect;
    config_.never_block = s.config.never_block;
    config_version_ = s.version;
    std::fprintf(stderr, "vigil: configuration version %s in force (generation %" PRIu64 "): %s\n",
                 config_version_.c_str(), config_generation_, detect_summary_.c_str());
    *result = "\"version\":";
    AppendJsonString(result, config_version_);
    *result += ",\"generation\":" + std::to_string(config_generation_) +
               ",\"rules\":" + std::to_string(s.stats.rules);
    staged_.reset();
    return true;
  }
  *error = "unknown op \"" + op + "\" (config.get, config.stage, config.status, config.commit)";
  return false;
}

void Dataplane::StartRuleReload() {
  if (!config_.detect.enabled || detects_ == nullptr) {
    std::fprintf(stderr, "vigil: rule reload (SIGHUP): detect is off, no rules to reload\n");
    return;
  }
  if (reload_ != nullptr) {
    reload_again_ = true;  // the files may have changed again since this one read them
    return;
  }
  auto r = std::make_unique<RuleReload>();
  r->config = config_.detect;
  r->generation = config_generation_;
  RuleReload* rr = r.get();
  const size_t workers = workers_.size();
  const std::string version = config_version_;
  std::fprintf(stderr, "vigil: rule reload (SIGHUP): reading %zu rule file(s)\n",
               rr->config.rules.size());
  // As a push's build: a thread of its own on the main thread's CPUs, never a worker's core.
  rr->builder = std::thread([rr, workers, version] {
    const auto t0 = std::chrono::steady_clock::now();
    DetectLoad load = LoadDetector(rr->config);
    rr->summary = load.summary;
    rr->stats = load.stats;
    if (load.detector == nullptr) {
      rr->error = load.error;
    } else if (rr->config.refuse_invalid_rules && !RejectsForPush(load).empty()) {
      rr->error = RejectsForPush(load).front()->ToString() + " (detect.invalid_rules: refuse)";
    } else {
      rr->snapshot = MakeDetectSnapshot(std::move(load.detector), workers, version,
                                        rr->config.inline_actions, &rr->error);
    }
    rr->build_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    rr->done.store(true, std::memory_order_release);
  });
  reload_ = std::move(r);
}

void Dataplane::PollRuleReload() {
  if (reload_ == nullptr || !reload_->done.load(std::memory_order_acquire)) return;
  reload_->builder.join();
  RuleReload& r = *reload_;
  if (r.generation != config_generation_) {
    // A configuration push was committed meanwhile: its rule set is the newer one.
    std::fprintf(stderr,
                 "vigil: rule reload (SIGHUP) discarded: configuration generation %" PRIu64
                 " was committed while it was built\n",
                 config_generation_);
  } else if (r.snapshot == nullptr) {
    ++rule_reloads_failed_;
    std::fprintf(stderr, "vigil: rule reload (SIGHUP) failed, the running rules stay: %s\n",
                 r.error.c_str());
  } else {
    ++rule_reloads_;
    ++config_generation_;
    // The push's swap: one pointer store, each worker switches between two bursts, the old set
    // is freed after every worker's quiescent point.
    detects_->Publish(r.snapshot, config_generation_);
    detect_stats_ = r.stats;
    detect_summary_ = r.summary;
    std::fprintf(stderr, "vigil: rules reloaded (SIGHUP) in %.0f ms: %s\n", r.build_ms,
                 r.summary.c_str());
    PrintDetectStats(r.stats);
  }
  reload_.reset();
  if (reload_again_) {
    reload_again_ = false;
    StartRuleReload();
  }
}

}  // namespace vigil::dp
