#include "rules/lang/address.h"

#include <arpa/inet.h>

#include <algorithm>
#include <limits>

#include "rules/lang/text.h"

namespace vigil::rules {
namespace {

template <typename T>
void Normalize(Ranges<T>* r) {
  std::sort(r->begin(), r->end());
  Ranges<T> out;
  for (const auto& x : *r) {
    // Merge overlapping and adjacent ranges; the +1 is guarded against wrapping at the maximum.
    if (!out.empty() &&
        (x.first <= out.back().second || (out.back().second != std::numeric_limits<T>::max() &&
                                          x.first == static_cast<T>(out.back().second + 1)))) {
      out.back().second = std::max(out.back().second, x.second);
    } else {
      out.push_back(x);
    }
  }
  *r = std::move(out);
}

template <typename T>
Ranges<T> Subtract(const Ranges<T>& a, const Ranges<T>& b) {
  Ranges<T> out;
  for (const auto& [lo, hi] : a) {
    T cur = lo;
    bool done = false;
    for (const auto& [blo, bhi] : b) {
      if (bhi < cur) continue;
      if (blo > hi) break;
      if (blo > cur) out.emplace_back(cur, static_cast<T>(blo - 1));
      if (bhi >= hi) {
        done = true;
        break;
      }
      cur = static_cast<T>(bhi + 1);
    }
    if (!done) out.emplace_back(cur, hi);
  }
  return out;
}

template <typename T>
bool Contains(const Ranges<T>& r, T v) {
  auto it = std::upper_bound(r.begin(), r.end(), v,
                             [](T value, const std::pair<T, T>& x) { return value < x.first; });
  if (it == r.begin()) return false;
  --it;
  return v >= it->first && v <= it->second;
}

template <typename T>
Ranges<T> Full() {
  return {{std::numeric_limits<T>::min(), std::numeric_limits<T>::max()}};
}

// r == Full<T>() without building it: IsAny runs per candidate rule on the workers.
template <typename T>
bool IsFull(const Ranges<T>& r) noexcept {
  return r.size() == 1 && r[0].first == std::numeric_limits<T>::min() &&
         r[0].second == std::numeric_limits<T>::max();
}

struct AddrValue {
  Ranges<uint32_t> v4;
  Ranges<Uint128> v6;

  static AddrValue Any() { return {Full<uint32_t>(), Full<Uint128>()}; }
  void Add(const AddrValue& o) {
    v4.insert(v4.end(), o.v4.begin(), o.v4.end());
    v6.insert(v6.end(), o.v6.begin(), o.v6.end());
    Normalize(&v4);
    Normalize(&v6);
  }
  AddrValue Minus(const AddrValue& o) const { return {Subtract(v4, o.v4), Subtract(v6, o.v6)}; }
  bool Empty() const { return v4.empty() && v6.empty(); }
};

struct PortValue {
  Ranges<uint16_t> p;

  static PortValue Any() { return {Full<uint16_t>()}; }
  void Add(const PortValue& o) {
    p.insert(p.end(), o.p.begin(), o.p.end());
    Normalize(&p);
  }
  PortValue Minus(const PortValue& o) const { return {Subtract(p, o.p)}; }
  bool Empty() const { return p.empty(); }
};

Uint128 FromBytes(const uint8_t* b) {
  Uint128 v = 0;
  for (int i = 0; i < 16; ++i) v = (v << 8) | b[i];
  return v;
}

// One IP, CIDR block or 'a-b' range.
bool ParseAddressLeaf(std::string_view s, AddrValue* out, std::string* error) {
  auto bad = [&] {
    *error = "bad address '" + std::string(s.substr(0, 64)) + "'";
    return false;
  };
  if (s.size() > 100) return bad();
  // Each side parsed into (is_v6, value).
  auto parse_ip = [](std::string_view t, bool* v6, Uint128* value) {
    const std::string z(t);
    uint8_t buf[16];
    if (inet_pton(AF_INET, z.c_str(), buf) == 1) {
      *v6 = false;
      *value = (uint32_t{buf[0]} << 24) | (uint32_t{buf[1]} << 16) | (uint32_t{buf[2]} << 8) |
               uint32_t{buf[3]};
      return true;
    }
    if (inet_pton(AF_INET6, z.c_str(), buf) == 1) {
      *v6 = true;
      *value = FromBytes(buf);
      return true;
    }
    return false;
  };
  bool v6 = false;
  Uint128 lo = 0;
  Uint128 hi = 0;
  if (const size_t slash = s.find('/'); slash != std::string_view::npos) {
    uint64_t prefix = 0;
    if (!parse_ip(s.substr(0, slash), &v6, &lo)) return bad();
    if (!ParseUint(s.substr(slash + 1), v6 ? 128 : 32, &prefix)) return bad();
    const int bits = v6 ? 128 : 32;
    const int host_bits = bits - static_cast<int>(prefix);
    // Host bits set in the block (10.1.2.3/8) are cleared, as Suricata does.
    Uint128 host_mask = ~Uint128{0};  // a shift by the full width would be undefined
    if (host_bits < 128) host_mask = (Uint128{1} << host_bits) - 1;
    hi = lo | host_mask;
    lo = lo & ~host_mask;
    if (!v6) hi &= 0xffffffffU;
  } else if (const size_t dash = s.find('-'); dash != std::string_view::npos) {
    bool v6b = false;
    if (!parse_ip(s.substr(0, dash), &v6, &lo) || !parse_ip(s.substr(dash + 1), &v6b, &hi) ||
        v6 != v6b || lo > hi) {
      return bad();
    }
  } else {
    if (!parse_ip(s, &v6, &lo)) return bad();
    hi = lo;
  }
  if (v6) {
    out->v6.emplace_back(lo, hi);
  } else {
    out->v4.emplace_back(static_cast<uint32_t>(lo), static_cast<uint32_t>(hi));
  }
  return true;
}

// One port or range: N, N:, :N, N:M.
bool ParsePortLeaf(std::string_view s, PortValue* out, std::string* error) {
  auto bad = [&] {
    *error = "bad port '" + std::string(s.substr(0, 64)) + "'";
    return false;
  };
  uint64_t lo = 0;
  uint64_t hi = 65535;
  if (const size_t colon = s.find(':'); colon != std::string_view::npos) {
    const std::string_view a = Trim(s.substr(0, colon));
    const std::string_view b = Trim(s.substr(colon + 1));
    if (a.empty() && b.empty()) return bad();
    if (!a.empty() && !ParseUint(a, 65535, &lo)) return bad();
    if (!b.empty() && !ParseUint(b, 65535, &hi)) return bad();
    if (lo > hi) return bad();
  } else {
    if (!ParseUint(s, 65535, &lo)) return bad();
    hi = lo;
  }
  out->p.emplace_back(static_cast<uint16_t>(lo), static_cast<uint16_t>(hi));
  return true;
}

template <typename V>
class GroupParser {
 public:
  using Leaf = bool (*)(std::string_view, V*, std::string*);
  GroupParser(const std::map<std::string, std::string, std::less<>>& vars, Leaf leaf)
      : vars_(vars), leaf_(leaf) {}

  bool Eval(std::string_view s, int depth, V* out, std::string* error) {
    s = Trim(s);
    // The step budget bounds variables that expand to each other many times over.
    if (++steps_ > 100000) {
      *error = "group too complex";
      return false;
    }
    if (depth > kMaxGroupDepth) {
      *error = "group nested too deeply (a variable that refers to itself?)";
      return false;
    }
    if (s.empty()) {
      *error = "empty group element";
      return false;
    }
    // A bare top-level list (Suricata accepts "!5800,!445" as well as "[!5800,!445]").
    if (HasTopLevelComma(s)) return EvalList(s, depth, out, error);
    if (s.front() == '!') {
      V inner;
      if (!Eval(s.substr(1), depth + 1, &inner, error)) return false;
      *out = V::Any().Minus(inner);
      return true;
    }
    if (s.front() == '[') {
      if (s.back() != ']') {
        *error = "unbalanced '['";
        return false;
      }
      return EvalList(s.substr(1, s.size() - 2), depth, out, error);
    }
    if (s.front() == '$') {
      const std::string_view name = s.substr(1);
      auto it = vars_.find(name);
      if (it == vars_.end()) {
        *error = "unknown variable $" + std::string(name.substr(0, 64));
        return false;
      }
      return Eval(it->second, depth + 1, out, error);
    }
    if (s == "any") {
      *out = V::Any();
      return true;
    }
    if (s.find_first_of("[],!$") != std::string_view::npos) {
      *error = "bad group element '" + std::string(s.substr(0, 64)) + "'";
      return false;
    }
    V leaf;
    if (!leaf_(s, &leaf, error)) return false;
    out->Add(leaf);
    return true;
  }

 private:
  static bool HasTopLevelComma(std::string_view s) {
    int level = 0;
    for (char c : s) {
      if (c == '[') ++level;
      if (c == ']') --level;
      if (c == ',' && level == 0) return true;
    }
    return false;
  }

  bool EvalList(std::string_view s, int depth, V* out, std::string* error) {
    V pos;
    V neg;
    bool any_positive = false;
    bool any_element = false;
    int level = 0;
    size_t start = 0;
    for (size_t i = 0; i <= s.size(); ++i) {
      const char c = i < s.size() ? s[i] : ',';
      if (c == '[') ++level;
      if (c == ']' && --level < 0) {
        *error = "unbalanced ']'";
        return false;
      }
      if (c != ',' || level != 0) continue;
      const std::string_view elem = Trim(s.substr(start, i - start));
      start = i + 1;
      any_element = true;
      V v;
      if (!elem.empty() && elem.front() == '!') {
        if (!Eval(elem.substr(1), depth + 1, &v, error)) return false;
        neg.Add(v);
      } else {
        if (!Eval(elem, depth + 1, &v, error)) return false;
        pos.Add(v);
        any_positive = true;
      }
    }
    if (level != 0) {
      *error = "unbalanced '['";
      return false;
    }
    if (!any_element) {
      *error = "empty list";
      return false;
    }
    // A list of only negations means "anything but these".
    *out = (any_positive ? pos : V::Any()).Minus(neg);
    return true;
  }

  const std::map<std::string, std::string, std::less<>>& vars_;
  Leaf leaf_;
  int steps_ = 0;
};

}  // namespace

bool AddressSet::IsAny() const { return IsFull(v4) && IsFull(v6); }

bool AddressSet::ContainsV4(uint32_t host_order) const { return Contains(v4, host_order); }

bool AddressSet::ContainsV6(const std::array<uint8_t, 16>& bytes) const {
  return Contains(v6, FromBytes(bytes.data()));
}

bool PortSet::IsAny() const { return IsFull(ranges); }

bool PortSet::Contains(uint16_t port) const { return vigil::rules::Contains(ranges, port); }

bool ParseAddressGroup(std::string_view text, const Vars& vars, AddressSet* out,
                       std::string* error) {
  if (text.size() > kMaxGroupText) {
    *error = "address group too long";
    return false;
  }
  GroupParser<AddrValue> parser(vars.address_groups, &ParseAddressLeaf);
  AddrValue v;
  if (!parser.Eval(text, 0, &v, error)) return false;
  if (v.Empty()) {
    *error = "address group '" + std::string(text.substr(0, 64)) + "' matches nothing";
    return false;
  }
  out->v4 = std::move(v.v4);
  out->v6 = std::move(v.v6);
  out->text = std::string(text);
  return true;
}

bool ParsePortGroup(std::string_view text, const Vars& vars, PortSet* out, std::string* error) {
  if (text.size() > kMaxGroupText) {
    *error = "port group too long";
    return false;
  }
  GroupParser<PortValue> parser(vars.port_groups, &ParsePortLeaf);
  PortValue v;
  if (!parser.Eval(text, 0, &v, error)) return false;
  if (v.Empty()) {
    *error = "port group '" + std::string(text.substr(0, 64)) + "' matches nothing";
    return false;
  }
  out->ranges = std::move(v.p);
  out->text = std::string(text);
  return true;
}

}  // namespace vigil::rules
