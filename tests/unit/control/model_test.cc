// Model loader and engine tests. The loader and the window/throttle machinery run on inline YAML
// and crafted events; the shipped models and the Hyperscan prefilter run on the real events the
// dataplane writes for the public captures in ../shared/data/pcaps (401trg and a few from
// suricata-verify and Zeek). Those tests replay the captures through vigil-dataplane once (found
// through $VIGIL_DATAPLANE, else <build>/dataplane/vigil-dataplane) and skip when either is absent.
#include "control/model/model.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#ifndef VIGIL_SOURCE_DIR
#define VIGIL_SOURCE_DIR "."
#endif

namespace vigil::ctl::model {
namespace {

namespace fs = std::filesystem;
constexpr int64_t kSec = 1000000000;
constexpr int64_t kMin = 60 * kSec;

// ------------------------------------------------------------------------------------------------
// Helpers

std::vector<LoadError> ParseErrors(const std::string& yaml) {
  std::vector<LoadError> errors;
  auto m = ModelSet::ParseModel(yaml, "m.yaml", &errors);
  EXPECT_FALSE(m.has_value()) << yaml;
  return errors;
}

std::string JoinErrors(const std::vector<LoadError>& errors) {
  std::string out;
  for (const LoadError& e : errors) out += e.ToString() + "\n";
  return out;
}

bool HasError(const std::vector<LoadError>& errors, const std::string& text) {
  for (const LoadError& e : errors) {
    if (e.ToString().find(text) != std::string::npos) return true;
  }
  return false;
}

Model MustParse(const std::string& yaml) {
  std::vector<LoadError> errors;
  auto m = ModelSet::ParseModel(yaml, "m.yaml", &errors);
  EXPECT_TRUE(m.has_value()) << JoinErrors(errors);
  return m ? std::move(*m) : Model{};
}

ModelSet SetOf(std::vector<Model> models) {
  std::vector<LoadError> errors;
  auto set = ModelSet::FromModels(std::move(models), &errors);
  EXPECT_TRUE(set.has_value()) << JoinErrors(errors);
  return set ? std::move(*set) : ModelSet{};
}

// A one-component model with the given filter and frequency.
Model Simple(const std::string& name, const std::string& filter, int count,
             const std::string& interval, const std::string& group_by,
             const std::string& throttle = "0", const std::string& types = "[smb]") {
  return MustParse(
      "name: \"" + name + "\"\npriority: 3\ncomponents:\n  - event_types: " + types +
      "\n    filter: '" + filter + "'\n    frequency: {count: " + std::to_string(count) +
      ", interval: " + interval + ", group_by: " + group_by + "}\nthrottle: " + throttle + "\n");
}

nlohmann::json Ev(const std::string& src, const std::string& dst, const std::string& message,
                  uint64_t flow = 1, const std::string& type = "smb") {
  return {{"event_type", type},
          {"src_ip", src},
          {"dest_ip", dst},
          {"flow_id", flow},
          {"message", message}};
}

int64_t ParseEveTime(const std::string& s) {
  // "2017-10-20T18:43:22.992213+0000"
  std::tm tm{};
  int us = 0;
  if (std::sscanf(s.c_str(), "%d-%d-%dT%d:%d:%d.%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &us) < 6) {
    return 0;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&tm)) * kSec + int64_t{us} * 1000;
}

std::string ModelsDir() { return std::string(VIGIL_SOURCE_DIR) + "/rules/models"; }

// ------------------------------------------------------------------------------------------------
// Loader

constexpr char kAtModel[] = R"(name: "Device / AT Service Scheduled Task"
description: "at"
priority: 3
tags: [lateral-movement]
mitre: [T1053.002]
components:
  - event_types: [smb]
    filter: 'atsvc AND "IPC$"'
    frequency: {count: 0, interval: 60m, group_by: source}
throttle: 1h
response: {action: quarantine_device, duration: 1h, mode: confirm}
)";

TEST(ModelLoader, ParsesEveryField) {
  Model m = MustParse(kAtModel);
  EXPECT_EQ(m.name, "Device / AT Service Scheduled Task");
  EXPECT_EQ(m.description, "at");
  EXPECT_EQ(m.priority, 3);
  EXPECT_EQ(m.tags, std::vector<std::string>{"lateral-movement"});
  EXPECT_EQ(m.mitre, std::vector<std::string>{"T1053.002"});
  ASSERT_EQ(m.components.size(), 1u);
  const Component& c = m.components[0];
  EXPECT_EQ(c.event_types, std::vector<std::string>{"smb"});
  EXPECT_EQ(c.filter, "atsvc AND \"IPC$\"");
  ASSERT_TRUE(c.query.has_value());
  EXPECT_EQ(c.frequency.count, 0u);
  EXPECT_EQ(c.frequency.interval_ns, 60 * kMin);
  EXPECT_EQ(c.frequency.group_by, GroupBy::kSource);
  EXPECT_EQ(m.throttle_ns, 60 * kMin);
  ASSERT_TRUE(m.response.has_value());
  EXPECT_EQ(m.response->action, ResponseAction::kQuarantineDevice);
  EXPECT_EQ(m.response->duration_ns, 60 * kMin);
  EXPECT_EQ(m.response->mode, ResponseMode::kConfirm);
  EXPECT_TRUE(m.enabled);
  EXPECT_EQ(m.line, 1);
  EXPECT_EQ(m.ToJson()["components"][0]["frequency"]["group_by"], "source");
}

TEST(ModelLoader, Durations) {
  struct Case {
    const char* text;
    int64_t ns;
  } cases[] = {{"30s", 30 * kSec},      {"60m", 60 * kMin},  {"1h", 60 * kMin},
               {"7d", 7 * 1440 * kMin}, {"500ms", kSec / 2}, {"0", 0}};
  for (const Case& c : cases) {
    Model m = MustParse(std::string("name: \"A / B\"\npriority: 1\ncomponents: [{filter: x}]\n"
                                    "throttle: ") +
                        c.text + "\n");
    EXPECT_EQ(m.throttle_ns, c.ns) << c.text;
  }
  for (const char* bad : {"60x", "m", "-5m", "1.5h", "367d", "\"\""}) {
    auto errors = ParseErrors(std::string("name: \"A / B\"\npriority: 1\ncomponents: [{filter: "
                                          "x}]\nthrottle: ") +
                              bad + "\n");
    ASSERT_EQ(errors.size(), 1u) << bad << "\n" << JoinErrors(errors);
    EXPECT_EQ(errors[0].line, 4) << bad;
    EXPECT_EQ(errors[0].column, 11) << bad;
    EXPECT_EQ(errors[0].field, "throttle") << bad;
  }
}

TEST(ModelLoader, UnknownKeyWithPositionAndSuggestion) {
  auto errors = ParseErrors(
      "name: \"A / B\"\npriority: 1\ncomponents:\n  - filter: x\n    frequncy: {count: 1}\n");
  ASSERT_EQ(errors.size(), 1u) << JoinErrors(errors);
  EXPECT_EQ(errors[0].ToString(),
            "m.yaml:5:5: components[0].frequncy: unknown key (did you mean \"frequency\"?); "
            "expected one of: event_types, filter, frequency");
}

TEST(ModelLoader, EveryErrorIsReported) {
  const std::string yaml =
      "name: \"NoCategory\"\n"                                         // 1
      "priority: 9\n"                                                  // 2
      "mitre: [T10, T1021]\n"                                          // 3
      "colour: red\n"                                                  // 4
      "components:\n"                                                  // 5
      "  - event_types: [smb, smbb]\n"                                 // 6
      "    filter: 'atsvc AND (IPC$'\n"                                // 7
      "    frequency: {count: -1, interval: 0, group_by: everyone}\n"  // 8
      "throttle: 1y\n"                                                 // 9
      "response: {duration: 1h, mode: maybe}\n";                       // 10
  auto errors = ParseErrors(yaml);
  const std::string all = JoinErrors(errors);
  EXPECT_TRUE(HasError(errors, "m.yaml:1:7: name: expected \"Category / Name\"")) << all;
  EXPECT_TRUE(HasError(errors, "m.yaml:2:11: priority: must be in 0..5, got 9")) << all;
  EXPECT_TRUE(HasError(errors, "m.yaml:3:9: mitre[0]: expected a MITRE ATT&CK technique id"))
      << all;
  EXPECT_TRUE(HasError(errors, "m.yaml:4:1: colour: unknown key")) << all;
  EXPECT_TRUE(HasError(errors,
                       "m.yaml:6:24: components[0].event_types[1]: unknown event type "
                       "\"smbb\" (did you mean \"smb\"?)"))
      << all;
  // The query error's column is mapped into the file: the query starts after the quote at
  // column 13, so its end (query column 16) is file column 14 + 15.
  EXPECT_TRUE(HasError(errors, "m.yaml:7:29: components[0].filter: query column 16:")) << all;
  EXPECT_TRUE(HasError(errors,
                       "m.yaml:8:24: components[0].frequency.count: expected an unsigned "
                       "integer, got \"-1\""))
      << all;
  EXPECT_TRUE(HasError(errors,
                       "m.yaml:8:38: components[0].frequency.interval: must be longer "
                       "than 0"))
      << all;
  EXPECT_TRUE(HasError(errors,
                       "m.yaml:8:51: components[0].frequency.group_by: must be one of "
                       "source, destination, pair, got \"everyone\""))
      << all;
  EXPECT_TRUE(HasError(errors, "m.yaml:9:11: throttle: unknown unit \"y\"")) << all;
  EXPECT_TRUE(HasError(errors, "m.yaml:10:11: response.action: required key missing")) << all;
  EXPECT_TRUE(HasError(errors,
                       "m.yaml:10:32: response.mode: must be one of alert, confirm, "
                       "autonomous"))
      << all;
  EXPECT_EQ(errors.size(), 12u) << all;
  // Document order.
  for (size_t i = 1; i < errors.size(); ++i) {
    EXPECT_LE(errors[i - 1].line, errors[i].line) << all;
  }
}

TEST(ModelLoader, RequiredKeysAndShapes) {
  auto errors = ParseErrors("description: x\n");
  EXPECT_TRUE(HasError(errors, "m.yaml:1:1: name: required key missing")) << JoinErrors(errors);
  EXPECT_TRUE(HasError(errors, "m.yaml:1:1: priority: required key missing"));
  EXPECT_TRUE(HasError(errors, "m.yaml:1:1: components: required key missing"));

  errors = ParseErrors("name: \"A / B\"\npriority: 1\ncomponents: []\n");
  EXPECT_TRUE(HasError(errors, "m.yaml:3:13: components: at least one component is required"))
      << JoinErrors(errors);

  errors = ParseErrors("name: \"A / B\"\npriority: 1\ncomponents:\n  - event_types: [smb]\n");
  EXPECT_TRUE(HasError(errors, "m.yaml:4:5: components[0].filter: required key missing"))
      << JoinErrors(errors);

  errors = ParseErrors("- just\n- a list\n");
  EXPECT_TRUE(HasError(errors, "m.yaml:1:1: expected a map")) << JoinErrors(errors);

  errors = ParseErrors("");
  EXPECT_TRUE(HasError(errors, "m.yaml:1:1: empty model file")) << JoinErrors(errors);

  errors =
      ParseErrors("name: \"A / B\"\nname: \"C / D\"\npriority: 1\ncomponents: [{filter: x}]\n");
  EXPECT_TRUE(HasError(errors, "m.yaml:2:1: name: duplicate key (first at line 1)"))
      << JoinErrors(errors);

  errors = ParseErrors("name: \"A / B\"\npriority: 1\ncomponents: [{filter: x}]\n---\nname: x\n");
  EXPECT_TRUE(HasError(errors, "m.yaml:4:1: more than one YAML document")) << JoinErrors(errors);
  errors = ParseErrors("name: \"A / B\"\npriority: 1\ncomponents: [{filter: x}]\n...\nx: 1\n");
  EXPECT_TRUE(HasError(errors, "m.yaml:5:1: more than one YAML document")) << JoinErrors(errors);
  // A leading document marker and directives are one document.
  MustParse("%YAML 1.2\n---\n# comment\nname: \"A / B\"\npriority: 1\ncomponents: [{filter: x}]\n");
  // Input on which yaml-cpp 0.7's LoadAll loops forever (found by the fuzzer) is an error.
  errors = ParseErrors(",\n");
  EXPECT_FALSE(errors.empty());

  errors = ParseErrors("name: \"A / B\"\npriority: one\ncomponents: [{filter: x}]\n");
  EXPECT_TRUE(HasError(errors, "m.yaml:2:11: priority: expected an unsigned integer, got \"one\""))
      << JoinErrors(errors);

  errors =
      ParseErrors("name: \"A / B\"\npriority: 1\nenabled: perhaps\ncomponents: [{filter: x}]\n");
  EXPECT_TRUE(HasError(errors, "m.yaml:3:10: enabled: expected a boolean")) << JoinErrors(errors);
}

TEST(ModelLoader, YamlSyntaxErrorHasPosition) {
  auto errors = ParseErrors("name: \"A / B\"\npriority: 1\ncomponents: [{filter: x}\n");
  ASSERT_EQ(errors.size(), 1u) << JoinErrors(errors);
  EXPECT_EQ(errors[0].line, 4) << JoinErrors(errors);
  EXPECT_GT(errors[0].column, 0);
  EXPECT_TRUE(errors[0].field.empty());
}

TEST(ModelLoader, FilterErrorColumnPlainAndBlock) {
  // Plain scalar: the scalar starts at column 13; the error is at query column 7.
  auto errors = ParseErrors("name: \"A / B\"\npriority: 1\ncomponents:\n  - filter: atsvc AND\n");
  ASSERT_EQ(errors.size(), 1u) << JoinErrors(errors);
  EXPECT_EQ(errors[0].line, 4);
  EXPECT_GE(errors[0].column, 13);
  EXPECT_EQ(errors[0].field, "components[0].filter");
  // A folded block scalar spans lines: the error points at the scalar.
  errors = ParseErrors(
      "name: \"A / B\"\npriority: 1\ncomponents:\n  - filter: >-\n      atsvc AND\n      (x\n");
  ASSERT_EQ(errors.size(), 1u) << JoinErrors(errors);
  EXPECT_EQ(errors[0].line, 4);
  EXPECT_NE(errors[0].message.find("query column"), std::string::npos);
}

TEST(ModelLoader, DeepNestingIsAnError) {
  std::string deep = "name: " + std::string(200, '[') + std::string(200, ']') + "\n";
  auto errors = ParseErrors(deep);
  EXPECT_TRUE(HasError(errors, "nested deeper than")) << JoinErrors(errors);
  std::string big(kMaxModelFileBytes + 1, '#');
  errors = ParseErrors(big);
  EXPECT_TRUE(HasError(errors, "file larger than")) << JoinErrors(errors);
}

TEST(ModelLoader, LoadDirReportsEveryFileAndDuplicateNames) {
  char tmpl[] = "/tmp/vigil-model-test-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir + "/" + name) << text;
  };
  write("a.yaml", kAtModel);
  write("b.yml", kAtModel);  // same name
  write("c.yaml", "name: \"X / Y\"\npriority: 7\ncomponents: [{filter: x}]\n");
  write("ignored.txt", "not a model");
  std::vector<LoadError> errors;
  EXPECT_FALSE(ModelSet::LoadDir(dir, &errors).has_value());
  const std::string all = JoinErrors(errors);
  EXPECT_TRUE(HasError(errors, dir + "/c.yaml:2:11: priority: must be in 0..5")) << all;
  EXPECT_EQ(errors.size(), 1u) << all;  // per-file errors first; names checked once files parse
  write("c.yaml", "name: \"X / Y\"\npriority: 2\ncomponents: [{filter: x}]\n");
  errors.clear();
  EXPECT_FALSE(ModelSet::LoadDir(dir, &errors).has_value());
  EXPECT_TRUE(HasError(errors, dir + "/b.yml:1: name: duplicate model name")) << JoinErrors(errors);
  EXPECT_TRUE(HasError(errors,
                       "duplicate model name \"Device / AT Service Scheduled Task\" (also "
                       "in " +
                           dir + "/a.yaml:1)"))
      << JoinErrors(errors);
  fs::remove(dir + "/b.yml");
  errors.clear();
  auto set = ModelSet::LoadDir(dir, &errors);
  ASSERT_TRUE(set.has_value()) << JoinErrors(errors);
  EXPECT_EQ(set->models().size(), 2u);
  EXPECT_NE(set->Find("X / Y"), nullptr);
  fs::remove_all(dir);

  errors.clear();
  EXPECT_FALSE(ModelSet::LoadDir("/nonexistent/models", &errors).has_value());
  EXPECT_TRUE(HasError(errors, "/nonexistent/models: cannot read model directory"))
      << JoinErrors(errors);
}

TEST(ModelLoader, ShippedModelsLoad) {
  std::vector<LoadError> errors;
  auto set = ModelSet::LoadDir(ModelsDir(), &errors);
  ASSERT_TRUE(set.has_value()) << JoinErrors(errors);
  EXPECT_GE(set->models().size(), 16u);
  ASSERT_NE(set->Find("Device / AT Service Scheduled Task"), nullptr);
  for (const Model& m : set->models()) {
    EXPECT_FALSE(m.description.empty()) << m.name;
    EXPECT_FALSE(m.mitre.empty()) << m.name;
    EXPECT_FALSE(m.tags.empty()) << m.name;
    for (const Component& c : m.components) EXPECT_FALSE(c.event_types.empty()) << m.name;
  }
}

TEST(ModelScore, PriorityAndCount) {
  EXPECT_DOUBLE_EQ(Score(0, 1), 15.0);
  EXPECT_DOUBLE_EQ(Score(3, 1), 57.0);
  EXPECT_DOUBLE_EQ(Score(5, 1), 85.0);
  EXPECT_DOUBLE_EQ(Score(5, 1000), 100.0);
  EXPECT_DOUBLE_EQ(Score(5, 100000), 100.0);
  EXPECT_DOUBLE_EQ(Score(3, 10), 62.0);
  EXPECT_LT(Score(2, 5), Score(3, 1));  // priority dominates
}

// ------------------------------------------------------------------------------------------------
// Engine: frequency, grouping, throttle, limits

TEST(ModelEngine, SourceGroupingCountsWithinInterval) {
  Engine engine(SetOf({Simple("T / Src", "atsvc", 2, "10m", "source")}));
  int64_t t = 1000 * kSec;
  EXPECT_TRUE(engine.OnEvent(Ev("10.0.0.1", "10.0.0.9", "atsvc"), 1, t).empty());
  EXPECT_TRUE(engine.OnEvent(Ev("10.0.0.2", "10.0.0.9", "atsvc"), 2, t + kSec).empty());
  EXPECT_TRUE(engine.OnEvent(Ev("10.0.0.1", "10.0.0.8", "atsvc"), 3, t + 2 * kSec).empty());
  EXPECT_TRUE(engine.OnEvent(Ev("10.0.0.1", "10.0.0.8", "other"), 4, t + 3 * kSec).empty());
  auto f = engine.OnEvent(Ev("10.0.0.1", "10.0.0.7", "atsvc", 7), 5, t + 4 * kSec);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].model, "T / Src");
  EXPECT_EQ(f[0].device, "10.0.0.1");
  EXPECT_EQ(f[0].trigger_event_ids, (std::vector<int64_t>{1, 3, 5}));
  EXPECT_EQ(f[0].flow_ids, (std::vector<uint64_t>{1, 7}));
  EXPECT_EQ(f[0].ts_ns, t + 4 * kSec);
  EXPECT_EQ(f[0].window_from_ns, t + 4 * kSec - 10 * kMin);
  EXPECT_EQ(f[0].window_to_ns, t + 4 * kSec);
  EXPECT_EQ(f[0].details["group_by"], "source");
  EXPECT_EQ(f[0].details["group"], "10.0.0.1");
  EXPECT_EQ(f[0].details["count"], 3);
  EXPECT_EQ(f[0].details["threshold"], 2);
  EXPECT_EQ(f[0].details["first_ts_ns"], t);
  EXPECT_EQ(f[0].filter, "atsvc");
  EXPECT_EQ(f[0].component, 0);
  EXPECT_DOUBLE_EQ(f[0].score, Score(3, 3));
  // The window started afresh: two more are not enough, a third is.
  EXPECT_TRUE(engine.OnEvent(Ev("10.0.0.1", "x", "atsvc"), 6, t + 5 * kSec).empty());
  EXPECT_TRUE(engine.OnEvent(Ev("10.0.0.1", "x", "atsvc"), 7, t + 6 * kSec).empty());
  EXPECT_EQ(engine.OnEvent(Ev("10.0.0.1", "x", "atsvc"), 8, t + 7 * kSec).size(), 1u);
  EXPECT_EQ(engine.stats().firings, 2u);
  EXPECT_EQ(engine.stats().matched, 7u);
}

TEST(ModelEngine, EventsOutsideTheIntervalDoNotCount) {
  Engine engine(SetOf({Simple("T / Slide", "atsvc", 2, "10m", "source")}));
  const int64_t t = 1000 * kSec;
  EXPECT_TRUE(engine.OnEvent(Ev("a", "b", "atsvc"), 1, t).empty());
  EXPECT_TRUE(engine.OnEvent(Ev("a", "b", "atsvc"), 2, t + 6 * kMin).empty());
  // 10 minutes after the first: the first has left the (t+10m-10m, t+10m] window.
  EXPECT_TRUE(engine.OnEvent(Ev("a", "b", "atsvc"), 3, t + 10 * kMin).empty());
  auto f = engine.OnEvent(Ev("a", "b", "atsvc"), 4, t + 11 * kMin);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].trigger_event_ids, (std::vector<int64_t>{2, 3, 4}));
}

TEST(ModelEngine, OutOfOrderEventsTakeTheirPlace) {
  Engine engine(SetOf({Simple("T / Order", "atsvc", 1, "10m", "source")}));
  const int64_t t = 1000 * kSec;
  EXPECT_TRUE(engine.OnEvent(Ev("a", "b", "atsvc"), 1, t + 5 * kSec).empty());
  auto f = engine.OnEvent(Ev("a", "b", "atsvc"), 2, t);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].trigger_event_ids, (std::vector<int64_t>{1, 2}));  // the firing event last
  EXPECT_EQ(f[0].details["first_ts_ns"], t);
}

TEST(ModelEngine, DestinationAndPairGrouping) {
  Engine engine(SetOf({Simple("T / Dst", "logon", 1, "1h", "destination"),
                       Simple("T / Pair", "logon", 1, "1h", "pair")}));
  const int64_t t = 1000 * kSec;
  EXPECT_TRUE(engine.OnEvent(Ev("10.0.0.1", "10.0.0.9", "logon"), 1, t).empty());
  auto f = engine.OnEvent(Ev("10.0.0.2", "10.0.0.9", "logon"), 2, t + 1);
  ASSERT_EQ(f.size(), 1u);  // destination: two sources, one server
  EXPECT_EQ(f[0].model, "T / Dst");
  EXPECT_EQ(f[0].device, "10.0.0.9");
  EXPECT_EQ(f[0].details["group"], "10.0.0.9");
  f = engine.OnEvent(Ev("10.0.0.1", "10.0.0.9", "logon"), 3, t + 2);
  ASSERT_EQ(f.size(), 1u);  // pair: 10.0.0.1 -> 10.0.0.9 twice
  EXPECT_EQ(f[0].model, "T / Pair");
  EXPECT_EQ(f[0].device, "10.0.0.1");
  EXPECT_EQ(f[0].details["group"], "10.0.0.1 -> 10.0.0.9");
  EXPECT_EQ(f[0].details["src_ip"], "10.0.0.1");
  EXPECT_EQ(f[0].details["dest_ip"], "10.0.0.9");
  EXPECT_EQ(f[0].trigger_event_ids, (std::vector<int64_t>{1, 3}));
  // Without the address the group needs, a match is counted as ungrouped.
  nlohmann::json no_dst = {{"event_type", "smb"}, {"src_ip", "10.0.0.1"}, {"message", "logon"}};
  EXPECT_TRUE(engine.OnEvent(no_dst, 4, t + 3).empty());
  EXPECT_EQ(engine.stats().ungrouped, 2u);
}

TEST(ModelEngine, ThrottlePerModelAndDevice) {
  Engine engine(SetOf({Simple("T / Thr", "atsvc", 0, "1h", "source", "30m"),
                       Simple("T / Other", "atsvc", 0, "1h", "source", "30m")}));
  const int64_t t = 1000 * kSec;
  EXPECT_EQ(engine.OnEvent(Ev("a", "b", "atsvc"), 1, t).size(), 2u);
  EXPECT_EQ(engine.OnEvent(Ev("a", "b", "atsvc"), 2, t + 29 * kMin).size(), 0u);
  EXPECT_EQ(engine.OnEvent(Ev("c", "b", "atsvc"), 3, t + 29 * kMin).size(), 2u);  // other device
  EXPECT_EQ(engine.stats().throttled, 2u);
  // Throttle runs from the last kept firing: 30 minutes after t, `a` fires again.
  auto f = engine.OnEvent(Ev("a", "b", "atsvc"), 4, t + 30 * kMin);
  ASSERT_EQ(f.size(), 2u);
  // The throttled event is not evidence of the next firing (its window was consumed).
  EXPECT_EQ(f[0].trigger_event_ids, std::vector<int64_t>{4});
  EXPECT_EQ(engine.stats().firings, 6u);

  Engine no_throttle(SetOf({Simple("T / None", "atsvc", 0, "1h", "source", "0")}));
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(no_throttle.OnEvent(Ev("a", "b", "atsvc"), i, t + i).size(), 1u);
  }
}

// A restart: engine B sees the first part of a stream through Warm() (plus the throttle state
// restored from A's breaches) and must then fire exactly as A, which saw it all, does on the rest.
TEST(ModelEngine, WarmUpCarriesWindowsAndThrottlesOverARestart) {
  auto set = [] {
    return SetOf({Simple("T / Count", "atsvc", 2, "10m", "source", "0"),
                  Simple("T / Thr", "atsvc", 0, "1h", "source", "30m")});
  };
  const int64_t t = 1000 * kSec;
  std::vector<std::pair<nlohmann::json, int64_t>> stream;
  for (int i = 0; i < 40; ++i) {
    stream.push_back(
        {Ev(i % 3 == 0 ? "10.0.0.1" : "10.0.0.2", "10.0.0.9", "atsvc"), t + int64_t{i} * 2 * kMin});
  }
  Engine a(set());
  Engine b(set());
  std::vector<std::pair<std::string, std::string>> last;  // (model, device) kept before the cut
  std::map<std::pair<std::string, std::string>, int64_t> last_ts;
  const size_t cut = 23;
  std::vector<std::string> fired_a, fired_b;
  for (size_t i = 0; i < stream.size(); ++i) {
    for (const Firing& f :
         a.OnEvent(stream[i].first, static_cast<int64_t>(i) + 1, stream[i].second)) {
      if (i < cut)
        last_ts[{f.model, f.device}] = f.ts_ns;
      else
        fired_a.push_back(f.model + "@" + std::to_string(i) + " " + f.device);
    }
  }
  EXPECT_EQ(b.WarmUpSpanNs(), 120 * kMin);
  for (size_t i = 0; i < cut; ++i) {
    b.Warm(stream[i].first, static_cast<int64_t>(i) + 1, stream[i].second);
  }
  for (const auto& [k, ts] : last_ts) b.RestoreThrottle(k.first, k.second, ts);
  EXPECT_EQ(b.stats().warmed, cut);
  EXPECT_EQ(b.stats().events, 0u);
  EXPECT_GT(b.stats().warm_firings, 0u);
  for (size_t i = cut; i < stream.size(); ++i) {
    for (const Firing& f :
         b.OnEvent(stream[i].first, static_cast<int64_t>(i) + 1, stream[i].second)) {
      fired_b.push_back(f.model + "@" + std::to_string(i) + " " + f.device);
    }
  }
  EXPECT_FALSE(fired_a.empty());
  EXPECT_EQ(fired_a, fired_b);

  // Without the warm-up the same engine behaves differently (the test can tell them apart).
  Engine cold(set());
  std::vector<std::string> fired_cold;
  for (size_t i = cut; i < stream.size(); ++i) {
    for (const Firing& f :
         cold.OnEvent(stream[i].first, static_cast<int64_t>(i) + 1, stream[i].second)) {
      fired_cold.push_back(f.model + "@" + std::to_string(i) + " " + f.device);
    }
  }
  EXPECT_NE(fired_a, fired_cold);
  // Unknown models and zero throttles are ignored.
  b.RestoreThrottle("No / Such", "10.0.0.1", t);
  b.RestoreThrottle("T / Count", "10.0.0.1", t);
}

TEST(ModelEngine, ThrottleEntriesAreBounded) {
  EngineOptions o;
  o.max_throttle_entries = 4;
  Engine engine(SetOf({Simple("T / Many", "atsvc", 0, "1h", "source", "1h")}), o);
  const int64_t t = 1000 * kSec;
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(engine.OnEvent(Ev("10.0.0." + std::to_string(i), "b", "atsvc"), i, t + i).size(), 1u);
  }
  EXPECT_EQ(engine.stats().throttle_evicted, 6u);
  // 10.0.0.9 is still remembered.
  EXPECT_TRUE(engine.OnEvent(Ev("10.0.0.9", "b", "atsvc"), 11, t + 20).empty());
}

TEST(ModelEngine, GroupsAndEntriesAreBounded) {
  EngineOptions o;
  o.max_groups_per_component = 3;
  Engine engine(SetOf({Simple("T / Cap", "atsvc", 1, "1h", "source")}), o);
  const int64_t t = 1000 * kSec;
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(engine.OnEvent(Ev("10.0.0." + std::to_string(i), "b", "atsvc"), i, t + i).empty());
  }
  EXPECT_EQ(engine.stats().groups_evicted, 2u);  // 10.0.0.0 and 10.0.0.1, least recently updated
  EXPECT_TRUE(engine.OnEvent(Ev("10.0.0.0", "b", "atsvc"), 10, t + 10).empty());   // forgotten
  EXPECT_EQ(engine.OnEvent(Ev("10.0.0.4", "b", "atsvc"), 11, t + 11).size(), 1u);  // kept

  // Entry budget: one group of a high-threshold component keeps only the newest entries.
  EngineOptions e;
  e.max_entries_per_component = 4;
  Engine small(SetOf({Simple("T / Budget", "atsvc", 5, "1h", "source")}), e);
  for (int i = 0; i < 20; ++i) {
    EXPECT_TRUE(small.OnEvent(Ev("a", "b", "atsvc"), i, t + i).empty());
  }
  EXPECT_EQ(small.stats().groups_evicted, 0u);  // over budget alone: its oldest entries go
  // A second group needs room: the least recently updated group goes whole.
  EXPECT_TRUE(small.OnEvent(Ev("c", "b", "atsvc"), 30, t + 30).empty());
  EXPECT_EQ(small.stats().groups_evicted, 1u);
  for (int i = 0; i < 4; ++i) small.OnEvent(Ev("c", "b", "atsvc"), 31 + i, t + 31 + i);
  EXPECT_EQ(small.stats().groups_evicted, 1u);
}

TEST(ModelEngine, ExpiredGroupsAreDroppedNotEvicted) {
  EngineOptions o;
  o.max_groups_per_component = 2;
  Engine engine(SetOf({Simple("T / Exp", "atsvc", 1, "1m", "source")}), o);
  const int64_t t = 1000 * kSec;
  for (int i = 0; i < 100; ++i) {
    engine.OnEvent(Ev("10.0.0." + std::to_string(i), "b", "atsvc"), i, t + i * 2 * kMin);
  }
  EXPECT_EQ(engine.stats().groups_evicted, 0u);
}

TEST(ModelEngine, TriggerEventsAreCapped) {
  EngineOptions o;
  o.max_trigger_events = 100;
  Engine engine(SetOf({Simple("T / Big", "atsvc", 150, "1h", "source")}), o);
  const int64_t t = 1000 * kSec;
  std::vector<Firing> f;
  for (int i = 0; i < 151; ++i) {
    f = engine.OnEvent(Ev("a", "b", "atsvc", 100 + i % 3), i, t + i);
    if (i < 150) {
      EXPECT_TRUE(f.empty());
    }
  }
  ASSERT_EQ(f.size(), 1u);
  ASSERT_EQ(f[0].trigger_event_ids.size(), 100u);
  EXPECT_EQ(f[0].trigger_event_ids.front(), 51);
  EXPECT_EQ(f[0].trigger_event_ids.back(), 150);
  EXPECT_EQ(f[0].details["count"], 151);
  EXPECT_EQ(f[0].flow_ids.size(), 3u);
}

TEST(ModelEngine, EventTypesAndPrefilterStats) {
  Model a = Simple("T / Smb", "atsvc AND \"IPC$\"", 0, "1h", "source", "0", "[smb]");
  Model b = Simple("T / Dns", "evil.example", 0, "1h", "source", "0", "[dns]");
  Model c = Simple("T / NoText", "dest_port:[1 TO 1024]", 0, "1h", "source", "0", "[smb]");
  Model d = Simple("T / Disabled", "atsvc", 0, "1h", "source", "0", "[smb]");
  d.enabled = false;
  Engine engine(SetOf({a, b, c, d}));
  EXPECT_EQ(engine.component_count(), 3u);
  EXPECT_GE(engine.fragment_count(), 2u);
  EXPECT_TRUE(engine.prefilter_error().empty());
  const int64_t t = 1000 * kSec;
  // An smb event without the fragments: a prefiltered out, c evaluated without a prefilter.
  EXPECT_TRUE(engine.OnEvent(Ev("x", "y", "SMB2 CLOSE success"), 1, t).empty());
  Engine::Stats s = engine.stats();
  EXPECT_EQ(s.type_skipped, 1u);
  EXPECT_EQ(s.prefiltered_out, 1u);
  EXPECT_EQ(s.evaluated, 1u);
  EXPECT_EQ(s.unfiltered, 1u);
  // An event type no component wants: nothing scanned.
  EXPECT_TRUE(engine.OnEvent(Ev("x", "y", "flow", 1, "flow"), 2, t).empty());
  EXPECT_EQ(engine.stats().scans, 1u);
  EXPECT_EQ(engine.stats().type_skipped, 4u);
  // The fragments present (case differs): a is evaluated and fires.
  auto f = engine.OnEvent(Ev("x", "y", "SMB2 CREATE success \\\\h\\ipc$ ATSVC (pipe)"), 3, t);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].model, "T / Smb");
  // The caller's index text is used when given.
  f = engine.OnEvent(Ev("x", "y", "SMB2 CREATE success \\\\h\\ipc$ ATSVC (pipe)"), 4, t,
                     "nothing here");
  EXPECT_TRUE(f.empty());
  EXPECT_EQ(engine.stats().events, 4u);
}

// ------------------------------------------------------------------------------------------------
// Real events

struct Capture {
  std::string name;  // key used by the tests
  std::string path;  // relative to ../shared/data/pcaps
};

const std::vector<Capture>& Captures() {
  static const std::vector<Capture> kCaptures = {
      {"at_schedule", "401trg/20171220_smb_at_schedule.pcap"},
      {"metasploit_psexec", "401trg/20171220_smb_metasploit_psexec_pth_download_meterpreter.pcap"},
      {"mimikatz_copy", "401trg/20171220_smb_mimikatz_copy.pcap"},
      {"mimikatz_copy_to_host", "401trg/20171220_smb_mimikatz_copy_to_host.pcap"},
      {"net_user", "401trg/20171220_smb_net_user.pcap"},
      {"psexec_add_user", "401trg/20171220_smb_psexec_add_user.pcap"},
      {"psexec_ticket_dump", "401trg/20171220_smb_psexec_mimikatz_ticket_dump.pcap"},
      {"kerberoast", "suricata-verify/krb5-kerberoasting/kerberoast.pcap"},
      {"tls_selfsigned_no_sni", "suricata-verify/ja4-tls/input.pcap"},
      {"tls_sni", "suricata-verify/tls/tls-certs-alert/input.pcap"},
      {"smb_filename", "suricata-verify/smb-filename/input.pcap"},
      {"smb_filecontainer", "suricata-verify/filestore-filecontainer-smb/filecontainer-smb.pcap"},
      {"dcerpc_ctxids", "suricata-verify/dcerpc/dcerpc-ctxids/input.pcap"},
      {"smb2_ntlm_failures", "suricata-verify/smb2-ntlmssp-negotiateflags/input.pcap"},
      {"drsuapi_join", "zeek/Traces/dce-rpc/cs_window7-join_stream092.pcap"},
  };
  return kCaptures;
}

struct RealEvent {
  nlohmann::json json;
  int64_t id;
  int64_t ts_ns;
};

class RealEvents : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string src = VIGIL_SOURCE_DIR;
    const std::string pcaps = src + "/../shared/data/pcaps";
    std::string dataplane;
    if (const char* env = std::getenv("VIGIL_DATAPLANE")) dataplane = env;
#ifdef VIGIL_BUILD_DIR
    if (dataplane.empty()) dataplane = std::string(VIGIL_BUILD_DIR) + "/dataplane/vigil-dataplane";
#endif
    if (dataplane.empty()) dataplane = src + "/build/dataplane/vigil-dataplane";
    if (access(dataplane.c_str(), X_OK) != 0 || !fs::exists(pcaps + "/401trg")) {
      skip_reason_ = "needs " + dataplane + " and " + pcaps;
      return;
    }
    char tmpl[] = "/tmp/vigil-model-events-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      skip_reason_ = "mkdtemp failed";
      return;
    }
    const std::string dir = tmpl;
    // A private EAL prefix and null ports, as tests/scenarios/suricata_verify.py does, so that
    // parallel test runs do not collide.
    const std::string cfg = dir + "/vigil.yaml";
    std::ofstream(cfg) << "sensor: {name: vigil}\n"
                          "eal: {file_prefix: \"vigil-model-test-"
                       << getpid()
                       << "\"}\n"
                          "ports:\n  - {name: a, device: \"net_null0\"}\n"
                          "  - {name: b, device: \"net_null1\"}\n"
                          "bridges: [[a, b]]\nworkers: {lcores: [1]}\n"
                          "flow: {capacity: 65536, hash_seed: 12345}\n"
                          "outputs:\n  eve: {enabled: true, path: /dev/null}\n";
    int64_t next_id = 1;
    for (const Capture& c : Captures()) {
      const std::string pcap = pcaps + "/" + c.path;
      if (!fs::exists(pcap)) continue;
      const std::string eve = dir + "/" + c.name + ".json";
      const std::string cmd = dataplane + " --config " + cfg + " --pcap-in " + pcap + " --eve " +
                              eve + " >" + dir + "/log.txt 2>&1";
      if (std::system(cmd.c_str()) != 0) {
        skip_reason_ = "vigil-dataplane failed on " + pcap;
        fs::remove_all(dir);
        return;
      }
      std::ifstream in(eve);
      std::string line;
      auto& events = (*events_)[c.name];
      while (std::getline(in, line)) {
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_discarded() || !j.is_object()) continue;
        const int64_t ts = ParseEveTime(j.value("timestamp", ""));
        events.push_back(RealEvent{std::move(j), next_id++, ts});
      }
    }
    fs::remove_all(dir);
  }

  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
  }

  static const std::vector<RealEvent>& Events(const std::string& capture) {
    return (*events_)[capture];
  }

  static ModelSet Shipped() {
    std::vector<LoadError> errors;
    auto set = ModelSet::LoadDir(ModelsDir(), &errors);
    EXPECT_TRUE(set.has_value()) << JoinErrors(errors);
    return set ? std::move(*set) : ModelSet{};
  }

  static std::vector<Firing> Run(Engine& engine, const std::vector<RealEvent>& events) {
    std::vector<Firing> out;
    for (const RealEvent& e : events) {
      for (Firing& f : engine.OnEvent(e.json, e.id, e.ts_ns)) out.push_back(std::move(f));
    }
    return out;
  }

  static std::set<std::string> FiredModels(const std::string& capture) {
    Engine engine(Shipped());
    std::set<std::string> names;
    for (const Firing& f : Run(engine, Events(capture))) names.insert(f.model);
    return names;
  }

  static inline std::string skip_reason_;
  static inline std::map<std::string, std::vector<RealEvent>>* events_ =
      new std::map<std::string, std::vector<RealEvent>>();
};

// Every shipped model: which real captures make it fire and which must not.
TEST_F(RealEvents, ShippedModelsOnRealCaptures) {
  const std::map<std::string, std::set<std::string>> expected = {
      {"at_schedule", {"Device / AT Service Scheduled Task"}},
      {"metasploit_psexec", {"Device / Remote Service Creation", "Compliance / SMBv1 In Use"}},
      {"mimikatz_copy", {"Device / Executable Written to Admin Share"}},
      {"mimikatz_copy_to_host", {}},
      {"net_user", {"Device / SAMR Account Enumeration", "Device / LSARPC Account Lookups"}},
      {"psexec_add_user",
       {"Device / Remote Service Creation", "Device / Remote Execution Pipe",
        "Device / Executable Written to Admin Share"}},
      {"psexec_ticket_dump",
       {"Device / Remote Service Creation", "Device / Remote Execution Pipe",
        "Device / Executable Written to Admin Share"}},
      {"kerberoast", {"Compliance / Weak Kerberos Service Ticket"}},
      {"tls_selfsigned_no_sni", {"Anomalous Connection / TLS Without SNI"}},
      {"tls_sni", {}},
      {"dcerpc_ctxids", {"Device / DCOM or WMI Remote Activation"}},
      {"drsuapi_join", {}},
  };
  for (const auto& [capture, models] : expected) {
    if (Events(capture).empty()) continue;  // capture not in this checkout of the shared data
    EXPECT_EQ(FiredModels(capture), models) << capture;
  }
  // Captures with many unrelated events: check only the models they are evidence for.
  if (!Events("smb_filename").empty()) {
    EXPECT_TRUE(FiredModels("smb_filename").count("Device / Anonymous NTLM Logon"));
  }
  if (!Events("smb_filecontainer").empty()) {
    auto fired = FiredModels("smb_filecontainer");
    EXPECT_TRUE(fired.count("Device / Remote Registry Access"));
    EXPECT_FALSE(fired.count("Device / Remote Registry Modification"));
    EXPECT_FALSE(fired.count("Device / Remote Registry Hive Save"));
  }
  if (!Events("smb2_ntlm_failures").empty()) {
    // Five logon failures: below the brute-force threshold of ten.
    EXPECT_FALSE(FiredModels("smb2_ntlm_failures").count("Device / NTLM Brute Force"));
  }
}

TEST_F(RealEvents, AtModelBreachOnTheAtCapture) {
  Engine engine(Shipped());
  auto firings = Run(engine, Events("at_schedule"));
  ASSERT_EQ(firings.size(), 1u);
  const Firing& f = firings[0];
  EXPECT_EQ(f.model, "Device / AT Service Scheduled Task");
  EXPECT_EQ(f.device, "192.168.10.31");
  EXPECT_EQ(f.priority, 3);
  EXPECT_EQ(f.trigger_event_ids.size(), 1u);  // count 0: the first atsvc event fires
  EXPECT_EQ(f.flow_ids.size(), 1u);
  EXPECT_EQ(f.window_to_ns - f.window_from_ns, 60 * kMin);
  EXPECT_EQ(f.details["response"]["action"], "quarantine_device");
  // The other atsvc events of the capture were throttled (1h per model and device).
  EXPECT_EQ(engine.stats().throttled, 2u);
  EXPECT_TRUE(FiredModels("net_user").count("Device / AT Service Scheduled Task") == 0);
}

// Compares two engines' firings field by field.
void ExpectSameFirings(const std::vector<Firing>& a, const std::vector<Firing>& b,
                       const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].model, b[i].model) << what << " #" << i;
    EXPECT_EQ(a[i].device, b[i].device) << what << " #" << i;
    EXPECT_EQ(a[i].ts_ns, b[i].ts_ns) << what << " #" << i;
    EXPECT_EQ(a[i].component, b[i].component) << what << " #" << i;
    EXPECT_EQ(a[i].trigger_event_ids, b[i].trigger_event_ids) << what << " #" << i;
    EXPECT_EQ(a[i].flow_ids, b[i].flow_ids) << what << " #" << i;
    EXPECT_EQ(a[i].details, b[i].details) << what << " #" << i;
  }
}

// Property: the Hyperscan prefilter never changes the outcome. Run over every real event with the
// shipped models, and with the shipped models made maximally sensitive (count 0, no throttle,
// every event type), so that every single match shows up as a firing.
TEST_F(RealEvents, PrefilterGivesTheSameFiringsAsFullEvaluation) {
  ModelSet shipped = Shipped();
  std::vector<Model> sensitive(shipped.models().begin(), shipped.models().end());
  for (Model& m : sensitive) {
    m.throttle_ns = 0;
    for (Component& c : m.components) {
      c.frequency.count = 0;
      c.event_types.clear();
    }
  }
  // Plus hand-written filters with wildcards, phrases, fields and negations.
  for (const char* flt : {"*.exe", "\"IPC$ atsvc\"", "smb AND NOT success", "AV.j?b OR *.JOB",
                          "NetrJobAdd OR (samr AND Samr*User*)", "smb.filename:*.exe",
                          "DCERPC BIND", "krb5 OR dns.queries.rrname:*.local"}) {
    Model m = Simple("P / Filter " + std::to_string(sensitive.size()), "x", 0, "1h", "source", "0",
                     "[smb]");
    std::vector<LoadError> errors;
    query::Error qe;
    m.components[0].filter = flt;
    m.components[0].query = query::Query::Parse(flt, &qe);
    ASSERT_TRUE(m.components[0].query.has_value()) << flt << ": " << qe.message;
    m.components[0].event_types.clear();
    sensitive.push_back(std::move(m));
  }
  ModelSet sensitive_set = SetOf(std::move(sensitive));
  size_t total_events = 0, total_firings = 0;
  for (const ModelSet* set : {&shipped, &sensitive_set}) {
    EngineOptions without;
    without.prefilter = false;
    Engine fast(*set), full(*set, without);
    for (const Capture& c : Captures()) {
      const auto& events = Events(c.name);
      ExpectSameFirings(Run(fast, events), Run(full, events), c.name);
      total_events += events.size();
    }
    EXPECT_EQ(fast.stats().firings, full.stats().firings);
    EXPECT_EQ(fast.stats().matched, full.stats().matched);
    EXPECT_EQ(full.stats().prefiltered_out, 0u);
    total_firings += fast.stats().firings;
    if (set == &sensitive_set) {
      EXPECT_GT(fast.stats().prefiltered_out, 0u);
      EXPECT_LT(fast.stats().evaluated, full.stats().evaluated);
      std::printf("prefilter: %llu of %llu component evaluations avoided, %llu matches\n",
                  static_cast<unsigned long long>(fast.stats().prefiltered_out),
                  static_cast<unsigned long long>(full.stats().evaluated),
                  static_cast<unsigned long long>(fast.stats().matched));
    }
  }
  EXPECT_GT(total_firings, 100u);
  std::printf("prefilter property: %zu events, %zu firings compared\n", total_events,
              total_firings);
}

// Benchmark (never fails on timing): events/s through the engine with every shipped model, over
// the real events of all captures repeated, with and without the caller's index text.
TEST_F(RealEvents, Throughput) {
  std::vector<const RealEvent*> stream;
  for (const Capture& c : Captures()) {
    for (const RealEvent& e : Events(c.name)) stream.push_back(&e);
  }
  ASSERT_FALSE(stream.empty());
  std::vector<std::string> index_texts;
  for (const RealEvent* e : stream) index_texts.push_back(query::IndexText(e->json));
  const ModelSet set = Shipped();
  for (int with_text = 0; with_text < 2; ++with_text) {
    for (int prefilter = 1; prefilter >= 0; --prefilter) {
      EngineOptions o;
      o.prefilter = prefilter != 0;
      Engine engine(set, o);
      const int kRounds = 10;
      const auto start = std::chrono::steady_clock::now();
      size_t n = 0, firings = 0;
      for (int r = 0; r < kRounds; ++r) {
        // Each round a day later, so that windows and throttles see fresh time.
        const int64_t shift = int64_t{r} * 86400 * kSec;
        for (size_t i = 0; i < stream.size(); ++i) {
          firings += engine
                         .OnEvent(stream[i]->json, stream[i]->id, stream[i]->ts_ns + shift,
                                  with_text ? std::string_view(index_texts[i]) : std::string_view())
                         .size();
          ++n;
        }
      }
      const double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf(
          "engine: %zu models, %zu fragments, prefilter %s, index text %s: %zu events in "
          "%.3f s = %.0f events/s (%zu firings)\n",
          set.models().size(), engine.fragment_count(), prefilter ? "on" : "off",
          with_text ? "given" : "computed", n, secs, n / secs, firings);
    }
  }
}

}  // namespace
}  // namespace vigil::ctl::model
