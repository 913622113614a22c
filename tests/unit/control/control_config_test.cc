#include "control/app/control_config.h"

#include <gtest/gtest.h>

namespace vigil::ctl {
namespace {

TEST(ControlConfigTest, ShippedConfigLoads) {
  const auto r = LoadControlConfigFile(std::string(VIGIL_SOURCE_DIR) + "/config/control.yaml");
  ASSERT_TRUE(r.errors.empty()) << r.errors[0].ToString();
  EXPECT_EQ(r.config->retention_days, 60u);
  EXPECT_EQ(r.config->api_listen, "127.0.0.1:8642");
}

TEST(ControlConfigTest, EveryErrorWithPosition) {
  const auto r = LoadControlConfigString(
      "data_dir: /x\nbogus: 1\nretention:\n  days: 0\n  max_mb: -3\napi:\n  listen: 0.0.0.0:80\n",
      "c.yaml");
  ASSERT_EQ(r.errors.size(), 4u);
  EXPECT_EQ(r.errors[0].ToString().rfind("c.yaml:2:1: bogus: unknown key", 0), 0u)
      << r.errors[0].ToString();
  EXPECT_EQ(r.errors[1].ToString(), "c.yaml:4:9: retention.days: must be in 1..36500, got 0");
  EXPECT_EQ(r.errors[2].ToString(),
            "c.yaml:5:11: retention.max_mb: expected an unsigned integer, got -3");
  EXPECT_EQ(r.errors[3].field, "api.listen");
  EXPECT_FALSE(r.config.has_value());
}

TEST(ControlConfigTest, SyntaxErrorAndMissingFile) {
  auto r = LoadControlConfigString("a: [1, 2\n", "s.yaml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].file, "s.yaml");
  EXPECT_GT(r.errors[0].line, 0);
  r = LoadControlConfigFile("/nonexistent/control.yaml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].message.find("cannot read"), std::string::npos);
}

}  // namespace
}  // namespace vigil::ctl
