// Addresses and CIDR blocks of the response side (control/respond): `respond.never_block` and
// `respond.allow` of the control config, and the targets of actions. IPv4 is kept in its
// IPv4-mapped IPv6 form (::ffff:a.b.c.d), as the dataplane's block table does, so one CIDR type
// covers both families.
//
// Thread: pure functions and values; any thread.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vigil::ctl::respond {

using Addr16 = std::array<uint8_t, 16>;

// "10.0.0.5" or "fd00::5"; nullopt for anything else.
std::optional<Addr16> ParseAddr(std::string_view text);

struct Cidr {
  Addr16 base{};
  int prefix = 128;  // of the 16-byte form: an IPv4 /24 is 96 + 24
  std::string text;  // as written in the config
  bool Contains(const Addr16& a) const;
};

// "10.0.0.0/8", "10.0.0.5" (a /32), "fd00::/8". nullopt with *error ("not an IPv4 or IPv6
// address", "prefix length must be 0..32") otherwise. Host bits are ignored (10.0.0.5/8 is
// 10.0.0.0/8).
std::optional<Cidr> ParseCidr(std::string_view text, std::string* error);

}  // namespace vigil::ctl::respond
