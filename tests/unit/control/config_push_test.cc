// Configuration push, control side (control/config): document parsing and validation, version
// order, and the pusher's decisions against a real store (the dataplane side and the whole flow
// are in tests/scenarios/config_push_test.sh).
#include "control/config/config_push.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace vigil::ctl::config {
namespace {

using ::testing::HasSubstr;

std::string Errors(const Document& d) {
  std::string s;
  for (const PushError& e : d.errors) s += e.ToString() + "\n";
  return s;
}

ControlConfig Running() {
  ControlConfig c;
  c.data_dir = "/var/lib/vigil";
  c.models_dir = "";
  return c;
}

TEST(ConfigPushTest, VersionsSortLikeSortV) {
  EXPECT_LT(CompareVersions("1.9", "1.10"), 0);
  EXPECT_GT(CompareVersions("2026-11-27.2", "2026-11-27.10") * -1, 0);
  EXPECT_EQ(CompareVersions("007", "7"), 0);
  EXPECT_LT(CompareVersions("1.5", "2"), 0);
  EXPECT_GT(CompareVersions("1.0a", "1.0"), 0);
  EXPECT_LT(CompareVersions("a", "b"), 0);
}

TEST(ConfigPushTest, HashVersionWhenNoneIsGiven) {
  const Document d = ParseDocument("control:\n  data_dir: /var/lib/vigil\n  models_dir: \"\"\n",
                                   "p.yaml", Running());
  ASSERT_TRUE(d.errors.empty()) << Errors(d);
  EXPECT_FALSE(d.version_given);
  EXPECT_EQ(d.version, "sha256:" + d.hash.substr(0, 16));
  EXPECT_EQ(d.hash.size(), 64u);
  EXPECT_TRUE(d.has_control);
  EXPECT_FALSE(d.has_dataplane);
  ASSERT_NE(d.models, nullptr);
  EXPECT_TRUE(d.models->models().empty());
}

TEST(ConfigPushTest, EveryErrorOfTheDocumentIsListedWithItsLine) {
  const Document d = ParseDocument(
      "version: \"bad version!\"\n"
      "bogus: 1\n"
      "control:\n"
      "  data_dir: /elsewhere\n"
      "  retention: {days: 0}\n",
      "p.yaml", Running());
  const std::string e = Errors(d);
  EXPECT_THAT(e, HasSubstr("p.yaml:2:1: bogus: unknown key"));
  EXPECT_THAT(e, HasSubstr("p.yaml:1:10: version: expected 1 to 128 characters"));
  EXPECT_THAT(e, HasSubstr("p.yaml:5:21: control.retention.days: must be in 1..36500"));
  EXPECT_EQ(d.errors.size(), 3u) << e;  // data_dir is checked once the section is valid
}

TEST(ConfigPushTest, RestartOnlySettingsAreRefusedByName) {
  const Document d =
      ParseDocument("version: \"2\"\ncontrol:\n  data_dir: /elsewhere\n  event_socket: /x.sock\n",
                    "p.yaml", Running());
  const std::string e = Errors(d);
  EXPECT_THAT(e, HasSubstr("p.yaml:3:13: control.data_dir: differs from the running"));
  EXPECT_THAT(e, HasSubstr("p.yaml:4:17: control.event_socket: differs"));
  EXPECT_FALSE(d.control.has_value());
}

TEST(ConfigPushTest, InlineModelsKeepTheirDocumentLines) {
  const std::string doc =
      "version: \"3\"\n"                                  // 1
      "control:\n"                                        // 2
      "  data_dir: /var/lib/vigil\n"                      // 3
      "  models_dir: \"\"\n"                              // 4
      "  models:\n"                                       // 5
      "    - name: A / Good\n"                            // 6
      "      priority: 2\n"                               // 7
      "      components:\n"                               // 8
      "        - event_types: [smb]\n"                    // 9
      "          filter: 'smb.command:WRITE'\n"           // 10
      "          frequency: {count: 0, interval: 1h}\n"   // 11
      "    - name: B / Bad\n"                             // 12
      "      priority: 2\n"                               // 13
      "      components:\n"                               // 14
      "        - event_types: [smb]\n"                    // 15
      "          filter: 'nosuch.field:1'\n"              // 16
      "          frequency: {count: 0, interval: 1h}\n";  // 17
  const Document bad = ParseDocument(doc, "m.yaml", Running());
  ASSERT_EQ(bad.errors.size(), 1u) << Errors(bad);
  EXPECT_EQ(bad.errors[0].line, 16);
  EXPECT_THAT(bad.errors[0].message, HasSubstr("unknown field nosuch.field"));
  const std::string good = doc.substr(0, doc.find("    - name: B / Bad"));
  const Document ok = ParseDocument(good, "m.yaml", Running());
  ASSERT_TRUE(ok.errors.empty()) << Errors(ok);
  ASSERT_NE(ok.models, nullptr);
  ASSERT_EQ(ok.models->models().size(), 1u);
  EXPECT_EQ(ok.models->models()[0].name, "A / Good");
  EXPECT_EQ(ok.models->models()[0].line, 6);
}

TEST(ConfigPushTest, YamlThatDoesNotParseAndEmptyDocuments) {
  Document d = ParseDocument("control: [\n", "p.yaml", Running());
  ASSERT_EQ(d.errors.size(), 1u);
  EXPECT_FALSE(d.parsed);
  EXPECT_GT(d.errors[0].line, 0);
  d = ParseDocument("version: \"1\"\n", "p.yaml", Running());
  EXPECT_THAT(Errors(d), HasSubstr("nothing to push"));
  d = ParseDocument("- a\n", "p.yaml", Running());
  EXPECT_THAT(Errors(d), HasSubstr("expected a map"));
}

class PusherTest : public ::testing::Test {
 protected:
  PusherTest() {
    dir_ =
        std::filesystem::temp_directory_path() / ("vigil-config-push-" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
    std::string err;
    store_ = store::Store::Open({.dir = dir_.string()}, &err);
    EXPECT_NE(store_, nullptr) << err;
    pusher_ = std::make_unique<Pusher>(
        store_.get(), Running(), "",
        [this](const Document& doc, const std::string& previous, const store::AuditEntry& a) {
          ++applied_;
          store::ConfigVersion v;
          v.version = doc.version;
          v.hash = doc.hash;
          v.who = a.who;
          v.document = doc.text;
          std::string e;
          return store_->ActivateConfig(v, previous, a, &e) > 0 ? std::string() : e;
        },
        [this](const store::AuditEntry& a) {
          std::string e;
          store_->InsertAudit(a, &e);
        });
  }
  ~PusherTest() override { std::filesystem::remove_all(dir_); }

  static std::string Doc(const std::string& version, int days = 60) {
    return "version: \"" + version +
           "\"\ncontrol:\n  data_dir: /var/lib/vigil\n  models_dir: \"\"\n  retention: {days: " +
           std::to_string(days) + "}\n";
  }

  std::filesystem::path dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Pusher> pusher_;
  int applied_ = 0;
};

TEST_F(PusherTest, VersionsNoOpsStaleRefusalsAndRollback) {
  PushOptions o;
  o.who = "alice via API";
  EXPECT_EQ(pusher_->Push(Doc("1"), "a.yaml", o).body["result"], "applied");
  EXPECT_EQ(pusher_->Push(Doc("1"), "a.yaml", o).body["result"], "unchanged");
  EXPECT_EQ(applied_, 1);
  // Same version, other content.
  Outcome r = pusher_->Push(Doc("1", 30), "a.yaml", o);
  EXPECT_EQ(r.status, 409);
  EXPECT_THAT(r.body["error"].get<std::string>(), HasSubstr("different document"));
  EXPECT_EQ(pusher_->Push(Doc("2", 30), "a.yaml", o).status, 200);
  // Older by order, and replaced: refused unless forced.
  r = pusher_->Push(Doc("1.5"), "a.yaml", o);
  EXPECT_EQ(r.status, 409);
  EXPECT_THAT(r.body["error"].get<std::string>(), HasSubstr("sorts before the running version 2"));
  r = pusher_->Push(Doc("1"), "a.yaml", o);
  EXPECT_EQ(r.status, 409);
  EXPECT_THAT(r.body["error"].get<std::string>(), HasSubstr("older than the running version 2"));
  // Validation alone changes nothing, whatever the version.
  r = pusher_->Push(Doc("1.5"), "a.yaml", {.dry_run = true});
  EXPECT_EQ(r.body["result"], "valid");
  ASSERT_TRUE(store_->ActiveConfig().has_value());
  EXPECT_EQ(store_->ActiveConfig()->version, "2");
  // Rollback: back to 1, 2 marked rolled back; no further step back.
  r = pusher_->Rollback("bob via API");
  EXPECT_EQ(r.status, 200) << r.body.dump();
  EXPECT_EQ(r.body["rolled_back"], "2");
  ASSERT_TRUE(store_->ActiveConfig().has_value());
  EXPECT_EQ(store_->ActiveConfig()->version, "1");
  ASSERT_TRUE(store_->FindConfig("2").has_value());
  EXPECT_EQ(store_->FindConfig("2")->state, "rolled_back");
  EXPECT_EQ(pusher_->Rollback("bob via API").status, 409);
  // Forced: an older version goes in.
  o.force = true;
  EXPECT_EQ(pusher_->Push(Doc("0.9"), "a.yaml", o).status, 200);
  ASSERT_TRUE(store_->ActiveConfig().has_value());
  EXPECT_EQ(store_->ActiveConfig()->version, "0.9");
  const auto history = store_->ConfigHistory(10);
  ASSERT_EQ(history.size(), 3u);
  EXPECT_EQ(history[0].version, "0.9");
  EXPECT_EQ(history[0].state, "active");
  // Every change and refusal is in the audit log.
  std::string ops;
  for (const store::AuditEntry& a : store_->Audit(0, 100)) ops += a.op + " ";
  EXPECT_THAT(ops, HasSubstr("config.push"));
  EXPECT_THAT(ops, HasSubstr("config.refuse"));
  EXPECT_THAT(ops, HasSubstr("config.rollback"));
}

TEST_F(PusherTest, ADataplaneSectionWithoutADataplaneIsRefusedAndNothingChanges) {
  const Outcome r = pusher_->Push("version: \"1\"\ndataplane: {ports: []}\n", "d.yaml", {});
  EXPECT_EQ(r.status, 503);
  EXPECT_THAT(r.body.dump(), HasSubstr("no dataplane command socket"));
  EXPECT_FALSE(store_->ActiveConfig().has_value());
  EXPECT_EQ(applied_, 0);
}

}  // namespace
}  // namespace vigil::ctl::config
