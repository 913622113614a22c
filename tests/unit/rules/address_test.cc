#include "rules/lang/address.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <string>

namespace vigil::rules {
namespace {

uint32_t Ip(const char* s) {
  in_addr a{};
  EXPECT_EQ(inet_pton(AF_INET, s, &a), 1) << s;
  return ntohl(a.s_addr);
}

std::array<uint8_t, 16> Ip6(const char* s) {
  std::array<uint8_t, 16> b{};
  EXPECT_EQ(inet_pton(AF_INET6, s, b.data()), 1) << s;
  return b;
}

class AddressTest : public ::testing::Test {
 protected:
  AddressTest() {
    vars_.address_groups = {{"HOME_NET", "[10.0.0.0/8,192.168.0.0/16,fd00::/8]"},
                            {"EXTERNAL_NET", "!$HOME_NET"},
                            {"SERVERS", "[$HOME_NET,!10.9.0.0/16]"},
                            {"LOOP_A", "$LOOP_B"},
                            {"LOOP_B", "[1.2.3.4,$LOOP_A]"}};
    vars_.port_groups = {
        {"HTTP_PORTS", "[80,8080:8090]"}, {"WEB", "[$HTTP_PORTS,443]"}, {"NOT_WEB", "!$WEB"}};
  }

  AddressSet Addr(const std::string& text) {
    AddressSet a;
    EXPECT_TRUE(ParseAddressGroup(text, vars_, &a, &error_)) << text << ": " << error_;
    return a;
  }
  PortSet Ports(const std::string& text) {
    PortSet p;
    EXPECT_TRUE(ParsePortGroup(text, vars_, &p, &error_)) << text << ": " << error_;
    return p;
  }
  bool AddrFails(const std::string& text) {
    AddressSet a;
    return !ParseAddressGroup(text, vars_, &a, &error_);
  }
  bool PortFails(const std::string& text) {
    PortSet p;
    return !ParsePortGroup(text, vars_, &p, &error_);
  }

  Vars vars_;
  std::string error_;
};

TEST_F(AddressTest, AnySingleAndCidr) {
  EXPECT_TRUE(Addr("any").IsAny());
  auto one = Addr("1.2.3.4");
  EXPECT_TRUE(one.ContainsV4(Ip("1.2.3.4")));
  EXPECT_FALSE(one.ContainsV4(Ip("1.2.3.5")));
  EXPECT_FALSE(one.IsAny());
  EXPECT_EQ(one.text, "1.2.3.4");
  auto cidr = Addr("10.1.2.3/8");  // host bits are cleared
  EXPECT_TRUE(cidr.ContainsV4(Ip("10.0.0.0")));
  EXPECT_TRUE(cidr.ContainsV4(Ip("10.255.255.255")));
  EXPECT_FALSE(cidr.ContainsV4(Ip("11.0.0.0")));
  EXPECT_TRUE(Addr("0.0.0.0/0").ContainsV4(Ip("255.255.255.255")));
  auto v6 = Addr("2001:db8::/32");
  EXPECT_TRUE(v6.ContainsV6(Ip6("2001:db8::1")));
  EXPECT_FALSE(v6.ContainsV6(Ip6("2001:db9::1")));
  EXPECT_FALSE(v6.ContainsV4(Ip("1.2.3.4")));
  EXPECT_TRUE(Addr("::/0").ContainsV6(Ip6("ffff::1")));
  auto range = Addr("1.2.3.4-1.2.3.6");
  EXPECT_TRUE(range.ContainsV4(Ip("1.2.3.6")));
  EXPECT_FALSE(range.ContainsV4(Ip("1.2.3.7")));
}

TEST_F(AddressTest, ListsNegationAndVariables) {
  auto ext = Addr("$EXTERNAL_NET");
  EXPECT_FALSE(ext.ContainsV4(Ip("10.1.1.1")));
  EXPECT_TRUE(ext.ContainsV4(Ip("8.8.8.8")));
  EXPECT_FALSE(ext.ContainsV6(Ip6("fd00::1")));
  EXPECT_TRUE(ext.ContainsV6(Ip6("2001::1")));
  auto servers = Addr("$SERVERS");
  EXPECT_TRUE(servers.ContainsV4(Ip("10.8.0.1")));
  EXPECT_FALSE(servers.ContainsV4(Ip("10.9.0.1")));
  auto nested = Addr("[1.0.0.0/8,![1.2.0.0/16,![1.2.3.0/24]]]");
  EXPECT_TRUE(nested.ContainsV4(Ip("1.1.1.1")));
  EXPECT_FALSE(nested.ContainsV4(Ip("1.2.1.1")));
  EXPECT_TRUE(nested.ContainsV4(Ip("1.2.3.1")));  // !(A minus B) re-admits B
  auto only_neg = Addr("[!1.2.3.4, !5.6.7.8]");
  EXPECT_FALSE(only_neg.ContainsV4(Ip("1.2.3.4")));
  EXPECT_TRUE(only_neg.ContainsV4(Ip("1.2.3.5")));
  EXPECT_TRUE(Addr("!1.2.3.4,!5.6.7.8").ContainsV4(Ip("9.9.9.9")));
  EXPECT_TRUE(Addr("![$HOME_NET]").ContainsV4(Ip("8.8.8.8")));
  EXPECT_TRUE(Addr("!!1.2.3.4").ContainsV4(Ip("1.2.3.4")));
  // Adjacent blocks merge into one range.
  EXPECT_EQ(Addr("[10.0.0.0/9,10.128.0.0/9]").v4.size(), 1u);
}

TEST_F(AddressTest, AddressErrors) {
  EXPECT_TRUE(AddrFails("$NOPE"));
  EXPECT_NE(error_.find("unknown variable $NOPE"), std::string::npos);
  EXPECT_TRUE(AddrFails("$LOOP_A"));
  EXPECT_NE(error_.find("nested too deeply"), std::string::npos);
  EXPECT_TRUE(AddrFails("!any"));
  EXPECT_NE(error_.find("matches nothing"), std::string::npos);
  EXPECT_TRUE(AddrFails("[1.2.3.4,!1.2.3.4]"));
  for (const char* bad : {"", "[", "]", "[1.2.3.4", "1.2.3.4]", "[]", "[1.2.3.4,]", "1.2.3.256",
                          "1.2.3.4/33", "::/129", "1.2.3.4/x", "1.2.3.9-1.2.3.4", "1.2.3.4-::1",
                          "host", "1.2.3.4$", "[[1.2.3.4]]]"}) {
    EXPECT_TRUE(AddrFails(bad)) << bad;
  }
  EXPECT_TRUE(AddrFails(std::string(70000, '[')));
  EXPECT_NE(error_.find("too long"), std::string::npos);
  std::string deep;
  for (int i = 0; i < 40; ++i) deep += "[";
  deep += "1.2.3.4";
  for (int i = 0; i < 40; ++i) deep += "]";
  EXPECT_TRUE(AddrFails(deep));
}

TEST_F(AddressTest, Ports) {
  EXPECT_TRUE(Ports("any").IsAny());
  auto p = Ports("80");
  EXPECT_TRUE(p.Contains(80));
  EXPECT_FALSE(p.Contains(81));
  auto from = Ports("1024:");
  EXPECT_TRUE(from.Contains(65535));
  EXPECT_FALSE(from.Contains(1023));
  auto to = Ports(":1023");
  EXPECT_TRUE(to.Contains(0));
  EXPECT_FALSE(to.Contains(1024));
  auto ab = Ports("6666:7000");
  EXPECT_TRUE(ab.Contains(6666) && ab.Contains(7000));
  EXPECT_FALSE(ab.Contains(7001));
  auto web = Ports("$WEB");
  EXPECT_TRUE(web.Contains(8085) && web.Contains(443) && web.Contains(80));
  EXPECT_FALSE(web.Contains(8091));
  auto not_web = Ports("$NOT_WEB");
  EXPECT_FALSE(not_web.Contains(443));
  EXPECT_TRUE(not_web.Contains(22));
  auto mixed = Ports("[1:100,!50:60,![70,80]]");
  EXPECT_TRUE(mixed.Contains(1) && mixed.Contains(49) && mixed.Contains(61));
  EXPECT_FALSE(mixed.Contains(55) || mixed.Contains(70) || mixed.Contains(80));
  EXPECT_TRUE(Ports("!5800,!445").Contains(80));
  EXPECT_FALSE(Ports("!5800,!445").Contains(445));
  EXPECT_TRUE(Ports("0:65535").IsAny());
}

TEST_F(AddressTest, PortErrors) {
  for (const char* bad : {"", "65536", "-1", "a", "10:5", ":", "[80", "[80,]", "!any",
                          "[1:10,!1:10]", "$NOPE", "80:90:100"}) {
    EXPECT_TRUE(PortFails(bad)) << bad;
  }
}

}  // namespace
}  // namespace vigil::rules
