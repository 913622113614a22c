// The configuration a push is staging in the dataplane (config_push.cc): validated on the main
// thread, its rule set built by a loading thread, committed by the main thread.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/app/config.h"
#include "dataplane/app/dataplane.h"
#include "dataplane/detect/inspector.h"
#include "dataplane/export/eve_writer.h"
#include "dataplane/verdict/block_table.h"

namespace vigil::dp {

enum class StageState : int { kBuilding, kReady, kFailed };

struct Dataplane::StagedConfig {
  std::string version;
  std::string name;
  Config config;
  std::vector<Cidr> never_block;
  std::atomic<StageState> state{StageState::kFailed};
  // Written by the loading thread until state leaves kBuilding, read by the main thread after.
  std::string errors;  // JSON objects, comma-separated
  size_t error_count = 0;
  std::string summary;
  rules::DetectorStats stats;
  std::shared_ptr<const DetectSnapshot> snapshot;  // nullptr: detect off
  double build_ms = 0;
  std::thread builder;

  ~StagedConfig() {
    if (builder.joinable()) builder.join();
  }

  void AddError(const std::string& file, int line, int column, const std::string& field,
                const std::string& message) {
    if (!errors.empty()) errors += ",";
    errors += "{\"file\":";
    AppendJsonString(&errors, file);
    errors += ",\"line\":" + std::to_string(line) + ",\"column\":" + std::to_string(column) +
              ",\"field\":";
    AppendJsonString(&errors, field);
    errors += ",\"message\":";
    AppendJsonString(&errors, message);
    errors += "}";
    ++error_count;
  }
};

// A rule reload (SIGHUP) in progress: built by a loading thread, published by the main thread.
struct Dataplane::RuleReload {
  DetectConfig config;      // the running detect configuration when the reload started
  uint64_t generation = 0;  // config_generation_ then: a push committed since makes it stale
  std::atomic<bool> done{false};
  // Written by the loading thread until done, read by the main thread after.
  std::shared_ptr<const DetectSnapshot> snapshot;  // nullptr: failed
  std::string summary;
  std::string error;
  rules::DetectorStats stats;
  double build_ms = 0;
  std::thread builder;

  ~RuleReload() {
    if (builder.joinable()) builder.join();
  }
};

}  // namespace vigil::dp
