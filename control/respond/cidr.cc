#include "control/respond/cidr.h"

#include <arpa/inet.h>

#include <cstring>

namespace vigil::ctl::respond {

std::optional<Addr16> ParseAddr(std::string_view text) {
  if (text.empty() || text.size() > 64) return std::nullopt;
  const std::string s(text);
  Addr16 a{};
  in_addr v4{};
  if (inet_pton(AF_INET, s.c_str(), &v4) == 1) {
    a[10] = 0xff;
    a[11] = 0xff;
    std::memcpy(a.data() + 12, &v4, 4);
    return a;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
    std::memcpy(a.data(), &v6, 16);
    return a;
  }
  return std::nullopt;
}

bool Cidr::Contains(const Addr16& a) const {
  int bits = prefix;
  for (size_t i = 0; i < 16 && bits > 0; ++i, bits -= 8) {
    const uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
    if ((a[i] & mask) != (base[i] & mask)) return false;
  }
  return true;
}

std::optional<Cidr> ParseCidr(std::string_view text, std::string* error) {
  const size_t slash = text.find('/');
  const std::string_view host = text.substr(0, slash);
  const auto addr = ParseAddr(host);
  if (!addr) {
    *error = "not an IPv4 or IPv6 address: \"" + std::string(host) + "\"";
    return std::nullopt;
  }
  const bool v4 = host.find(':') == std::string_view::npos;
  const int max = v4 ? 32 : 128;
  int len = max;
  if (slash != std::string_view::npos) {
    const std::string_view p = text.substr(slash + 1);
    len = 0;
    bool ok = !p.empty() && p.size() <= 3;
    for (char c : p) {
      ok &= c >= '0' && c <= '9';
      len = len * 10 + (c - '0');
    }
    if (!ok || len > max) {
      *error =
          "prefix length must be 0.." + std::to_string(max) + ", got \"" + std::string(p) + "\"";
      return std::nullopt;
    }
  }
  Cidr c;
  c.base = *addr;
  c.prefix = v4 ? 96 + len : len;
  c.text = std::string(text);
  return c;
}

}  // namespace vigil::ctl::respond
