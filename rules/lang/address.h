// Address and port groups of a rule header: `any`, single values, CIDR blocks, port ranges,
// `[..]` lists (nested), `!` negation and `$VARIABLES` (which may refer to other variables),
// resolved to sorted sets of disjoint inclusive ranges. Called on the loading thread; no blocking.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vigil::rules {

using Uint128 = unsigned __int128;

// Sorted, disjoint, non-adjacent inclusive ranges.
template <typename T>
using Ranges = std::vector<std::pair<T, T>>;

struct AddressSet {
  Ranges<uint32_t> v4;
  Ranges<Uint128> v6;
  std::string text;  // as written in the rule

  bool IsAny() const;
  bool ContainsV4(uint32_t host_order) const;
  bool ContainsV6(const std::array<uint8_t, 16>& bytes) const;
};

struct PortSet {
  Ranges<uint16_t> ranges;
  std::string text;

  bool IsAny() const;
  bool Contains(uint16_t port) const;
};

// Suricata's `vars: address-groups:` and `port-groups:`; names without the '$'.
struct Vars {
  std::map<std::string, std::string, std::less<>> address_groups;
  std::map<std::string, std::string, std::less<>> port_groups;
};

// Nesting of lists and variables is bounded (a cycle is an error, not a hang).
inline constexpr int kMaxGroupDepth = 32;
inline constexpr size_t kMaxGroupText = size_t{64} * 1024;

// Return false with a reason in *error for bad syntax, an unknown variable, a cycle, `!any`, or a
// group that matches nothing.
bool ParseAddressGroup(std::string_view text, const Vars& vars, AddressSet* out,
                       std::string* error);
bool ParsePortGroup(std::string_view text, const Vars& vars, PortSet* out, std::string* error);

}  // namespace vigil::rules
