// vigil.yaml loader and validator. yaml-cpp builds the node tree; everything after that (type
// checks, ranges, cross-references) is done here, so every error carries the file, the 1-based
// line/column of the offending node and its dotted field path. Errors are collected, not thrown,
// and sorted into document order at the end.

#include "dataplane/app/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <map>
#include <string_view>
#include <utility>

#include "dataplane/verdict/block_table.h"

namespace vigil::dp {
namespace {

constexpr uint64_t kMaxTimeoutS = uint64_t{7} * 86400;
constexpr uint64_t kMaxLcore = 1023;           // lcore ids must be < 1024
constexpr uint64_t kMinMemoryNoHugeMb = 1024;  // DPDK fails with less under --no-huge
constexpr uint64_t kMinMemoryHugeMb = 64;

constexpr std::string_view kLogLevels[] = {"emerg",   "alert",  "crit", "err",
                                           "warning", "notice", "info", "debug"};

constexpr std::pair<std::string_view, ExceptionPolicy> kPolicies[] = {
    {"drop-flow", ExceptionPolicy::kDropFlow}, {"drop-packet", ExceptionPolicy::kDropPacket},
    {"pass-flow", ExceptionPolicy::kPassFlow}, {"pass-packet", ExceptionPolicy::kPassPacket},
    {"bypass", ExceptionPolicy::kBypass},
};

// 1-based position; 0 when unknown.
struct Loc {
  int line = 0;
  int column = 0;
};

Loc LocOf(const YAML::Mark& m) {
  if (m.is_null() || m.line < 0 || m.column < 0) return {};
  return {m.line + 1, m.column + 1};
}

// A node with the dotted path that reached it and where to point errors about it.
struct Item {
  YAML::Node node;
  std::string path;
  Loc loc;
};

std::string Join(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string Index(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

// Plain scalars (no quotes, no tag) and scalars explicitly tagged `tag` count as that type;
// a quoted "123" is a string, not a number.
bool IsPlainOrTagged(const YAML::Node& n, std::string_view tag) {
  const std::string& t = n.Tag();
  return t == "?" || t == tag;
}

// A value as shown in a message: quoted, control characters escaped (so a message stays one
// line), long values cut.
std::string Quote(const std::string& s) {
  constexpr size_t kMax = 40;
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < kMax; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '\n') {
      out += "\\n";
    } else if (c < 0x20 || c == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += {'\\', 'x', kHex[c >> 4], kHex[c & 0xf]};
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + (s.size() > kMax ? "...\"" : "\"");
}

// "got ..." text for error messages.
std::string Describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
      return "null";
    case YAML::NodeType::Sequence:
      return "a sequence";
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Scalar:
      if (n.Tag() == "!") return "the quoted string " + Quote(n.Scalar());
      return Quote(n.Scalar());
    case YAML::NodeType::Undefined:
      break;
  }
  return "nothing";
}

std::string Range(uint64_t lo, uint64_t hi) {
  return std::to_string(lo) + ".." + std::to_string(hi);
}

std::string JoinNames(const std::string_view* names, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out += ", ";
    out += names[i];
  }
  return out;
}

bool IsHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// Decimal, or hexadecimal with a 0x prefix. Returns false when `s` is not an unsigned integer at
// all; sets *overflow (and returns true) when it is one but does not fit 64 bits.
bool ParseUint(const std::string& s, uint64_t* value, bool* overflow) {
  *overflow = false;
  *value = 0;
  size_t i = 0;
  unsigned base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    i = 2;
  }
  if (i == s.size()) return false;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    unsigned digit;
    if (c >= '0' && c <= '9') {
      digit = static_cast<unsigned>(c - '0');
    } else if (base == 16 && IsHex(c)) {
      digit = static_cast<unsigned>((c | 0x20) - 'a' + 10);
    } else {
      return false;
    }
    if (*value > (UINT64_MAX - digit) / base) *overflow = true;
    *value = *value * base + digit;
  }
  return true;
}

bool IsPowerOfTwo(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

bool IsValidPortName(const std::string& s) {
  if (s.empty()) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

// "DDDD:BB:DD.F" or "BB:DD.F" (hex; function 0-7). Returns the full lower-case form, which is
// also the name DPDK gives the device.
std::optional<std::string> ParsePciAddress(std::string_view s) {
  std::string domain = "0000";
  if (s.size() == 12) {
    if (s[4] != ':') return std::nullopt;
    for (size_t i = 0; i < 4; ++i) {
      if (!IsHex(s[i])) return std::nullopt;
    }
    domain = std::string(s.substr(0, 4));
    s.remove_prefix(5);
  } else if (s.size() != 7) {
    return std::nullopt;
  }
  if (!IsHex(s[0]) || !IsHex(s[1]) || s[2] != ':' || !IsHex(s[3]) || !IsHex(s[4]) || s[5] != '.' ||
      s[6] < '0' || s[6] > '7') {
    return std::nullopt;
  }
  std::string out = domain + ":" + std::string(s);
  for (char& c : out) c = static_cast<char>(c >= 'A' && c <= 'F' ? c | 0x20 : c);
  return out;
}

// The DPDK device name of a vdev string ("net_pcap0" of "net_pcap0,iface=x"), or nullopt when the
// driver is not a net_* one.
std::optional<std::string> VdevName(std::string_view s) {
  const std::string_view name = s.substr(0, s.find(','));
  constexpr std::string_view kPrefix = "net_";
  if (name.size() <= kPrefix.size() || name.substr(0, kPrefix.size()) != kPrefix) {
    return std::nullopt;
  }
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) {
      return std::nullopt;
    }
  }
  return std::string(name);
}

struct KeySpec {
  std::string_view name;
  std::function<void(const Item&)> parse;
};

// Per-document parse state, kept for the cross-field checks that run after the tree walk.
struct PortSeen {
  std::string name;  // empty when the entry had no usable name
  std::string path;  // "ports[i]"
  Loc loc;           // of the entry
};

struct BridgeEnd {
  std::string name;
  std::string path;  // "bridges[0][1]" or "bridges[0].b"
  Loc loc;
  size_t bridge;  // index into bridges
};

class Parser {
 public:
  const std::string& file() const { return file_; }
  explicit Parser(std::string file) : file_(std::move(file)) {}

  void Error(Loc loc, const std::string& field, std::string message) {
    errors_.push_back(ConfigError{file_, loc.line, loc.column, field, std::move(message)});
  }

  bool HasErrors() const { return !errors_.empty(); }

  // Errors in document order; those without a position come last.
  std::vector<ConfigError> TakeErrors() {
    std::stable_sort(errors_.begin(), errors_.end(),
                     [](const ConfigError& x, const ConfigError& y) {
                       const int xl = x.line == 0 ? INT_MAX : x.line;
                       const int yl = y.line == 0 ? INT_MAX : y.line;
                       if (xl != yl) return xl < yl;
                       return x.column < y.column;
                     });
    return std::move(errors_);
  }

  // Walks a map in document order, handing each known key's value to its parser. Unknown and
  // duplicate keys are errors, as are `required` keys that are absent. A null value (`key:` with
  // nothing under it) counts as an empty map when `null_is_empty`. Returns false when the node is
  // not a map.
  bool Map(const Item& item, std::initializer_list<KeySpec> keys,
           std::initializer_list<std::string_view> required = {}, bool null_is_empty = true) {
    if (item.node.IsNull() && null_is_empty) {
      ReportMissing(item, required, {});
      return true;
    }
    if (!item.node.IsMap()) {
      Error(item.loc, item.path, "expected a map, got " + Describe(item.node));
      return false;
    }
    std::map<std::string, Loc> seen;
    for (auto it = item.node.begin(); it != item.node.end(); ++it) {
      const YAML::Node key = it->first;
      const Loc key_loc = LocOf(key.Mark());
      if (!key.IsScalar()) {
        Error(key_loc, item.path, "map keys must be strings, got " + Describe(key));
        continue;
      }
      const std::string& name = key.Scalar();
      const std::string path = Join(item.path, name);
      if (auto [prev, inserted] = seen.emplace(name, key_loc); !inserted) {
        Error(key_loc, path,
              "duplicate key (first at line " + std::to_string(prev->second.line) + ")");
        continue;
      }
      const KeySpec* spec = nullptr;
      for (const KeySpec& k : keys) {
        if (k.name == name) spec = &k;
      }
      if (spec == nullptr) {
        std::string expected;
        for (const KeySpec& k : keys) {
          expected += expected.empty() ? "" : ", ";
          expected += k.name;
        }
        Error(key_loc, path, "unknown key; expected one of: " + expected);
        continue;
      }
      // An empty value's mark points at the next token; the key's line is the useful one.
      const YAML::Node value = it->second;
      const Loc value_loc = value.IsNull() ? key_loc : LocOf(value.Mark());
      spec->parse(Item{value, path, value_loc.line ? value_loc : key_loc});
    }
    ReportMissing(item, required, seen);
    return true;
  }

  // The elements of a sequence, or nullopt (and an error) when the node is not one.
  std::optional<std::vector<Item>> Seq(const Item& item) {
    if (!item.node.IsSequence()) {
      Error(item.loc, item.path, "expected a sequence, got " + Describe(item.node));
      return std::nullopt;
    }
    std::vector<Item> out;
    size_t i = 0;
    for (const YAML::Node& e : item.node) {
      const Loc loc = LocOf(e.Mark());
      out.push_back(Item{e, Index(item.path, i++), loc.line ? loc : item.loc});
    }
    return out;
  }

  std::optional<uint64_t> Uint(const Item& item, uint64_t lo, uint64_t hi) {
    uint64_t v;
    bool overflow;
    if (!item.node.IsScalar() || !IsPlainOrTagged(item.node, "tag:yaml.org,2002:int") ||
        !ParseUint(item.node.Scalar(), &v, &overflow)) {
      Error(item.loc, item.path, "expected an unsigned integer, got " + Describe(item.node));
      return std::nullopt;
    }
    if (overflow || v < lo || v > hi) {
      Error(item.loc, item.path, "must be in " + Range(lo, hi) + ", got " + item.node.Scalar());
      return std::nullopt;
    }
    return v;
  }

  template <typename T>
  void UintInto(const Item& item, uint64_t lo, uint64_t hi, T* out) {
    if (auto v = Uint(item, lo, hi)) *out = static_cast<T>(*v);
  }

  std::optional<uint64_t> PowerOfTwo(const Item& item, uint64_t lo, uint64_t hi) {
    auto v = Uint(item, lo, hi);
    if (v && !IsPowerOfTwo(*v)) {
      Error(item.loc, item.path,
            "must be a power of two in " + Range(lo, hi) + ", got " + std::to_string(*v));
      return std::nullopt;
    }
    return v;
  }

  std::optional<bool> Bool(const Item& item) {
    if (item.node.IsScalar() && IsPlainOrTagged(item.node, "tag:yaml.org,2002:bool")) {
      const std::string& s = item.node.Scalar();
      if (s == "true" || s == "True" || s == "TRUE") return true;
      if (s == "false" || s == "False" || s == "FALSE") return false;
    }
    Error(item.loc, item.path, "expected a boolean (true or false), got " + Describe(item.node));
    return std::nullopt;
  }

  std::optional<std::string> String(const Item& item, bool allow_empty = false) {
    if (!item.node.IsScalar()) {
      Error(item.loc, item.path, "expected a string, got " + Describe(item.node));
      return std::nullopt;
    }
    if (!allow_empty && item.node.Scalar().empty()) {
      Error(item.loc, item.path, "must not be empty");
      return std::nullopt;
    }
    return item.node.Scalar();
  }

  // Index into `names` of the value, or nullopt (and an error listing the choices).
  std::optional<size_t> Enum(const Item& item, const std::string_view* names, size_t n) {
    auto s = String(item, /*allow_empty=*/true);
    if (!s) return std::nullopt;
    for (size_t i = 0; i < n; ++i) {
      if (names[i] == *s) return i;
    }
    Error(item.loc, item.path,
          "must be one of " + JoinNames(names, n) + ", got " + Describe(item.node));
    return std::nullopt;
  }

 private:
  void ReportMissing(const Item& item, std::initializer_list<std::string_view> required,
                     const std::map<std::string, Loc>& seen) {
    for (std::string_view key : required) {
      if (seen.count(std::string(key)) == 0) {
        // Nothing in the document to point at for a missing top-level section.
        Error(item.path.empty() ? Loc{} : item.loc, Join(item.path, key), "required key missing");
      }
    }
  }

  std::string file_;
  std::vector<ConfigError> errors_;
};

class ConfigLoader {
 public:
  explicit ConfigLoader(const std::string& file) : p_(file) { config_.source_file = file; }

  // `key` non-empty: the configuration is the value of that top-level key of the document.
  ConfigResult Load(const std::string& yaml, const std::string& key = "") {
    try {
      std::vector<YAML::Node> docs = YAML::LoadAll(yaml);
      if (docs.empty() || docs[0].IsNull()) {
        p_.Error({}, "", "empty configuration");
      } else if (!key.empty() && (!docs[0].IsMap() || !docs[0][key])) {
        p_.Error(LocOf(docs[0].Mark()), key, "required key missing");
      } else {
        if (docs.size() > 1) {
          p_.Error(LocOf(docs[1].Mark()), "", "more than one YAML document; expected one");
        }
        const YAML::Node node = key.empty() ? docs[0] : docs[0][key];
        const Item root{node, key, LocOf(node.Mark())};
        if (!root.node.IsMap()) {
          p_.Error(root.loc, "", "expected a map of sections, got " + Describe(root.node));
        } else {
          Root(root);
          CrossCheck();
        }
      }
    } catch (const YAML::Exception& e) {
      // ParserException for syntax errors; anything else yaml-cpp throws carries a mark too.
      p_.Error(LocOf(e.mark), "", e.msg.empty() ? std::string(e.what()) : e.msg);
    } catch (const std::exception& e) {
      p_.Error({}, "", std::string("internal error: ") + e.what());
    }
    ConfigResult result;
    if (!p_.HasErrors()) result.config = std::move(config_);
    result.errors = p_.TakeErrors();
    return result;
  }

 private:
  void Root(const Item& root) {
    p_.Map(root,
           {
               {"sensor", [&](const Item& i) { Sensor(i); }},
               {"eal", [&](const Item& i) { Eal(i); }},
               {"ports", [&](const Item& i) { Ports(i); }},
               {"bridges", [&](const Item& i) { Bridges(i); }},
               {"workers", [&](const Item& i) { Workers(i); }},
               {"flow", [&](const Item& i) { Flow(i); }},
               {"stream", [&](const Item& i) { Stream(i); }},
               {"app_layer", [&](const Item& i) { AppLayer(i); }},
               {"defrag", [&](const Item& i) { Defrag(i); }},
               {"exception_policy", [&](const Item& i) { Policies(i); }},
               {"outputs", [&](const Item& i) { Outputs(i); }},
               {"detect", [&](const Item& i) { Detect(i); }},
               {"commands", [&](const Item& i) { Commands(i); }},
               {"respond", [&](const Item& i) { Respond(i); }},
               {"history", [&](const Item& i) { History(i); }},
           },
           {"ports", "bridges"});
  }

  void Sensor(const Item& item) {
    p_.Map(item, {{"name", [&](const Item& i) {
                     if (auto s = p_.String(i)) config_.sensor_name = *s;
                   }}});
  }

  void Eal(const Item& item) {
    p_.Map(item, {
                     {"file_prefix",
                      [&](const Item& i) {
                        auto s = p_.String(i);
                        if (s && s->find('/') != std::string::npos) {
                          p_.Error(i.loc, i.path, "must not contain '/', got " + Quote(*s));
                        } else if (s) {
                          config_.file_prefix = *s;
                        }
                      }},
                     {"main_lcore",
                      [&](const Item& i) {
                        main_lcore_loc_ = i.loc;
                        if (auto v = p_.Uint(i, 0, kMaxLcore)) {
                          config_.main_lcore = static_cast<uint32_t>(*v);
                        } else {
                          main_lcore_ok_ = false;
                        }
                      }},
                     {"log_level",
                      [&](const Item& i) {
                        if (auto k = p_.Enum(i, kLogLevels, std::size(kLogLevels))) {
                          config_.log_level = std::string(kLogLevels[*k]);
                        }
                      }},
                     {"memory", [&](const Item& i) { Memory(i); }},
                 });
  }

  void Memory(const Item& item) {
    p_.Map(item, {
                     {"hugepages",
                      [&](const Item& i) {
                        if (auto b = p_.Bool(i)) {
                          config_.hugepages = *b;
                        } else {
                          hugepages_ok_ = false;
                        }
                      }},
                     {"size_mb",
                      [&](const Item& i) {
                        // The hugepage-dependent minimum is checked once both keys are known.
                        size_mb_ = p_.Uint(i, 0, UINT32_MAX);
                        size_mb_item_ = i;
                      }},
                 });
  }

  void Ports(const Item& item) {
    auto entries = p_.Seq(item);
    if (!entries) return;
    ports_ok_ = true;
    if (entries->empty()) p_.Error(item.loc, item.path, "at least one port is required");
    for (const Item& e : *entries) {
      PortConfig port;
      PortSeen seen{"", e.path, e.loc};
      p_.Map(e,
             {
                 {"name",
                  [&](const Item& i) {
                    auto s = p_.String(i);
                    if (!s) return;
                    seen.name = *s;
                    if (!IsValidPortName(*s)) {
                      p_.Error(i.loc, i.path, "must match [a-zA-Z0-9_-]+, got " + Quote(*s));
                      return;
                    }
                    for (const PortSeen& other : ports_seen_) {
                      if (other.name == *s) {
                        p_.Error(i.loc, i.path,
                                 "duplicate port name " + Quote(*s) + " (first defined at " +
                                     other.path + ")");
                        return;
                      }
                    }
                    port.name = *s;
                  }},
                 {"device", [&](const Item& i) { Device(i, &port); }},
                 {"rx_desc",
                  [&](const Item& i) {
                    if (auto v = p_.PowerOfTwo(i, 64, 8192))
                      port.rx_desc = static_cast<uint16_t>(*v);
                  }},
                 {"tx_desc",
                  [&](const Item& i) {
                    if (auto v = p_.PowerOfTwo(i, 64, 8192))
                      port.tx_desc = static_cast<uint16_t>(*v);
                  }},
             },
             {"name", "device"}, /*null_is_empty=*/false);
      ports_seen_.push_back(std::move(seen));
      config_.ports.push_back(std::move(port));
    }
  }

  void Device(const Item& item, PortConfig* port) {
    auto s = p_.String(item);
    if (!s) return;
    std::optional<std::string> id = ParsePciAddress(*s);
    port->is_pci = id.has_value();
    if (!id) id = VdevName(*s);
    if (!id) {
      p_.Error(
          item.loc, item.path,
          "not a PCI address (0000:03:00.0) or a net_* vdev (net_pcap0,...), got " + Quote(*s));
      return;
    }
    const std::string here = item.path.substr(0, item.path.rfind('.'));
    if (auto [prev, inserted] = devices_.emplace(*id, here); !inserted) {
      p_.Error(item.loc, item.path, "device " + Quote(*id) + " is already used by " + prev->second);
      return;
    }
    port->device = *s;
  }

  void Bridges(const Item& item) {
    auto entries = p_.Seq(item);
    if (!entries) {
      bridges_ok_ = false;
      return;
    }
    for (size_t b = 0; b < entries->size(); ++b) {
      const Item& e = (*entries)[b];
      BridgeConfig bridge;
      bool ok = true;
      auto end = [&](const Item& i, std::string* out) {
        auto s = p_.String(i);
        if (!s) {
          ok = false;
          return;
        }
        *out = *s;
        bridge_ends_.push_back(BridgeEnd{*s, i.path, i.loc, b});
      };
      if (e.node.IsSequence()) {
        auto names = p_.Seq(e);
        if (names->size() != 2) {
          p_.Error(e.loc, e.path,
                   "a bridge joins exactly 2 ports, got " + std::to_string(names->size()));
          ok = false;
        } else {
          end((*names)[0], &bridge.a);
          end((*names)[1], &bridge.b);
        }
      } else if (e.node.IsMap()) {
        ok = p_.Map(e,
                    {
                        {"a", [&](const Item& i) { end(i, &bridge.a); }},
                        {"b", [&](const Item& i) { end(i, &bridge.b); }},
                    },
                    {"a", "b"}) &&
             ok && !bridge.a.empty() && !bridge.b.empty();
      } else {
        p_.Error(e.loc, e.path,
                 "expected [portA, portB] or {a: portA, b: portB}, got " + Describe(e.node));
        ok = false;
      }
      bridges_ok_ = bridges_ok_ && ok;
      config_.bridges.push_back(std::move(bridge));
    }
  }

  void Workers(const Item& item) {
    p_.Map(item,
           {
               {"lcores", [&](const Item& i) { Lcores(i); }},
               {"mbufs_per_worker",
                [&](const Item& i) { p_.UintInto(i, 1024, 4194304, &config_.mbufs_per_worker); }},
               {"tx_flush_us",
                [&](const Item& i) { p_.UintInto(i, 1, 100000, &config_.tx_flush_us); }},
               {"stats_interval_s",
                [&](const Item& i) { p_.UintInto(i, 0, 86400, &config_.stats_interval_s); }},
           });
  }

  void Lcores(const Item& item) {
    auto entries = p_.Seq(item);
    if (!entries) return;
    lcores_explicit_ = true;
    config_.worker_lcores.clear();
    if (entries->empty()) p_.Error(item.loc, item.path, "at least one worker lcore is required");
    std::map<uint64_t, std::string> seen;
    for (const Item& e : *entries) {
      auto v = p_.Uint(e, 0, kMaxLcore);
      if (!v) continue;
      if (auto [prev, inserted] = seen.emplace(*v, e.path); !inserted) {
        p_.Error(e.loc, e.path,
                 "duplicate lcore " + std::to_string(*v) + " (also " + prev->second + ")");
        continue;
      }
      config_.worker_lcores.push_back(static_cast<uint32_t>(*v));
      lcore_items_.push_back(e);
    }
  }

  void Flow(const Item& item) {
    FlowConfig& f = config_.flow;
    p_.Map(item,
           {
               {"capacity", [&](const Item& i) { p_.UintInto(i, 1024, 67108864, &f.capacity); }},
               {"hash_seed",
                [&](const Item& i) {
                  // null: same as absent (random seed at start).
                  if (i.node.IsNull()) return;
                  if (auto v = p_.Uint(i, 0, UINT64_MAX)) f.hash_seed = *v;
                }},
               {"emergency", [&](const Item& i) { Emergency(i); }},
               {"timeouts", [&](const Item& i) { Timeouts(i, &f.timeouts); }},
               {"emergency_timeouts", [&](const Item& i) { Timeouts(i, &f.emergency_timeouts); }},
           });
  }

  void Emergency(const Item& item) {
    FlowConfig& f = config_.flow;
    p_.Map(item, {
                     {"enter_percent",
                      [&](const Item& i) {
                        enter_item_ = i;
                        if (auto v = p_.Uint(i, 1, 100)) {
                          f.emergency_enter_percent = static_cast<uint32_t>(*v);
                        } else {
                          emergency_ok_ = false;
                        }
                      }},
                     {"exit_percent",
                      [&](const Item& i) {
                        exit_item_ = i;
                        if (auto v = p_.Uint(i, 0, 99)) {
                          f.emergency_exit_percent = static_cast<uint32_t>(*v);
                        } else {
                          emergency_ok_ = false;
                        }
                      }},
                 });
  }

  void Timeouts(const Item& item, FlowTimeouts* t) {
    auto secs = [&](uint32_t* out) {
      return [this, out](const Item& i) { p_.UintInto(i, 0, kMaxTimeoutS, out); };
    };
    p_.Map(item, {
                     {"tcp",
                      [&](const Item& i) {
                        p_.Map(i, {
                                      {"new", secs(&t->tcp_new)},
                                      {"established", secs(&t->tcp_established)},
                                      {"closed", secs(&t->tcp_closed)},
                                  });
                      }},
                     {"udp",
                      [&](const Item& i) {
                        p_.Map(i, {
                                      {"new", secs(&t->udp_new)},
                                      {"established", secs(&t->udp_established)},
                                  });
                      }},
                     {"icmp",
                      [&](const Item& i) {
                        p_.Map(i, {
                                      {"new", secs(&t->icmp_new)},
                                      {"established", secs(&t->icmp_established)},
                                  });
                      }},
                     {"other",
                      [&](const Item& i) {
                        p_.Map(i, {
                                      {"new", secs(&t->other_new)},
                                      {"established", secs(&t->other_established)},
                                  });
                      }},
                 });
  }

  void Policies(const Item& item) {
    std::string_view names[std::size(kPolicies)];
    for (size_t k = 0; k < std::size(kPolicies); ++k) names[k] = kPolicies[k].first;
    p_.Map(item, {{"flow_table_full",
                   [&](const Item& i) {
                     if (auto k = p_.Enum(i, names, std::size(names))) {
                       config_.exception_policy.flow_table_full = kPolicies[*k].second;
                     }
                   }},
                  {"stream_memcap",
                   [&](const Item& i) {
                     if (auto k = p_.Enum(i, names, std::size(names))) {
                       config_.app_layer.stream_memcap = kPolicies[*k].second;
                     }
                   }},
                  {"defrag_memcap", [&](const Item& i) {
                     if (auto k = p_.Enum(i, names, std::size(names))) {
                       config_.exception_policy.defrag_memcap = kPolicies[*k].second;
                     }
                   }}});
  }

  void Defrag(const Item& item) {
    DefragSettings& d = config_.defrag;
    p_.Map(item, {
                     {"enabled",
                      [&](const Item& i) {
                        if (auto b = p_.Bool(i)) d.enabled = *b;
                      }},
                     {"policy",
                      [&](const Item& i) {
                        static constexpr std::string_view kNames[] = {
                            "first", "last", "bsd", "bsd-right", "linux", "windows", "solaris"};
                        if (auto k = p_.Enum(i, kNames, std::size(kNames))) {
                          ParseFragPolicy(kNames[*k], &d.defrag.policy);
                        }
                      }},
                     {"trackers",
                      [&](const Item& i) { p_.UintInto(i, 1, 16777216, &d.defrag.max_trackers); }},
                     {"pool_slots",
                      [&](const Item& i) { p_.UintInto(i, 64, 16777216, &d.defrag.pool_slots); }},
                     {"max_fragments",
                      [&](const Item& i) { p_.UintInto(i, 1, 65535, &d.defrag.max_fragments); }},
                     {"timeout_s",
                      [&](const Item& i) {
                        if (auto v = p_.Uint(i, 1, 3600))
                          d.defrag.timeout_ns = *v * 1'000'000'000ull;
                      }},
                 });
  }

  void Stream(const Item& item) {
    AppLayerConfig& a = config_.app_layer;
    p_.Map(item,
           {
               {"midstream",
                [&](const Item& i) {
                  if (auto b = p_.Bool(i)) a.midstream = *b;
                }},
               {"sessions", [&](const Item& i) { p_.UintInto(i, 16, 67108864, &a.sessions); }},
               {"reassembly",
                [&](const Item& i) {
                  p_.Map(
                      i,
                      {
                          {"policy",
                           [&](const Item& j) {
                             static constexpr std::string_view kNames[] = {"first", "last", "linux",
                                                                           "windows", "bsd"};
                             if (auto k = p_.Enum(j, kNames, std::size(kNames))) {
                               ParseOverlapPolicy(kNames[*k], &a.reassembly.policy);
                             }
                           }},
                          {"depth_kb",
                           [&](const Item& j) {
                             if (auto v = p_.Uint(j, 0, 1u << 30)) {
                               a.reassembly.depth = *v * 1024;
                             }
                           }},
                          {"max_segments",
                           [&](const Item& j) {
                             p_.UintInto(j, 1, 65535, &a.reassembly.max_segments);
                           }},
                          {"max_buffered_kb",
                           [&](const Item& j) {
                             if (auto v = p_.Uint(j, 4, 1u << 20)) {
                               a.reassembly.max_bytes = static_cast<uint32_t>(*v * 1024);
                             }
                           }},
                          {"max_ahead_kb",
                           [&](const Item& j) {
                             if (auto v = p_.Uint(j, 4, 1u << 20)) {
                               a.reassembly.max_ahead = static_cast<uint32_t>(*v * 1024);
                             }
                           }},
                          {"segment_slots",
                           [&](const Item& j) { p_.UintInto(j, 16, 16777216, &a.segment_slots); }},
                      });
                }},
           });
  }

  void AppLayer(const Item& item) {
    AppLayerConfig& a = config_.app_layer;
    auto pool = [&](const char* name) {
      return [&a, this, name](const Item& i) {
        if (auto v = p_.Uint(i, 0, 16777216)) {
          a.parser_pools.emplace_back(name, static_cast<uint32_t>(*v));
        }
      };
    };
    p_.Map(item, {
                     {"enabled",
                      [&](const Item& i) {
                        if (auto b = p_.Bool(i)) a.enabled = *b;
                      }},
                     {"parsers",
                      [&](const Item& i) {
                        p_.Map(i, {
                                      {"smb", pool("smb")},
                                      {"dcerpc", pool("dcerpc")},
                                      {"krb5", pool("krb5")},
                                      {"dns", pool("dns")},
                                      {"http", pool("http")},
                                      {"tls", pool("tls")},
                                  });
                      }},
                 });
  }

  void Outputs(const Item& item) {
    p_.Map(item, {
                     {"eve",
                      [&](const Item& i) {
                        p_.Map(i, {
                                      {"enabled",
                                       [&](const Item& j) {
                                         if (auto b = p_.Bool(j)) config_.eve_enabled = *b;
                                       }},
                                      {"path",
                                       [&](const Item& j) {
                                         if (auto s = p_.String(j)) config_.eve_path = *s;
                                       }},
                                  });
                      }},
                     {"control",
                      [&](const Item& i) {
                        p_.Map(i, {
                                      {"enabled",
                                       [&](const Item& j) {
                                         if (auto b = p_.Bool(j)) config_.control_enabled = *b;
                                       }},
                                      {"socket",
                                       [&](const Item& j) {
                                         if (auto v = p_.String(j)) config_.control_socket = *v;
                                       }},
                                      {"journal_dir",
                                       [&](const Item& j) {
                                         if (auto v = p_.String(j)) {
                                           config_.control_journal_dir = *v;
                                         }
                                       }},
                                      {"journal_mb",
                                       [&](const Item& j) {
                                         p_.UintInto(j, 1, 1u << 20, &config_.control_journal_mb);
                                       }},
                                  });
                      }},
                     {"files", [&](const Item& i) { Files(i); }},
                     {"event_ring_mb",
                      [&](const Item& i) {
                        if (auto v = p_.PowerOfTwo(i, 1, 4096)) {
                          config_.event_ring_mb = static_cast<uint32_t>(*v);
                        }
                      }},
                 });
  }

  void Commands(const Item& item) {
    p_.Map(item, {
                     {"enabled",
                      [&](const Item& i) {
                        if (auto b = p_.Bool(i)) config_.commands_enabled = *b;
                      }},
                     {"socket",
                      [&](const Item& i) {
                        if (auto v = p_.String(i)) config_.commands_socket = *v;
                      }},
                 });
  }

  void Respond(const Item& item) {
    p_.Map(item, {{"never_block", [&](const Item& i) {
                     auto entries = p_.Seq(i);
                     if (!entries) return;
                     for (const Item& e : *entries) {
                       auto v = p_.String(e);
                       if (!v) continue;
                       Cidr c;
                       std::string error;
                       if (!ParseCidr(*v, &c, &error)) {
                         p_.Error(e.loc, e.path, error);
                       } else {
                         config_.never_block.push_back(*v);
                       }
                     }
                   }}});
  }

  void History(const Item& item) {
    HistoryConfig& h = config_.history;
    p_.Map(
        item,
        {
            {"enabled",
             [&](const Item& i) {
               if (auto b = p_.Bool(i)) h.enabled = *b;
             }},
            {"memory_mb",
             [&](const Item& i) { p_.UintInto(i, 1, 65536, &h.memory_mb_per_worker); }},
            {"snaplen", [&](const Item& i) { p_.UintInto(i, 64, kHistoryMaxSnaplen, &h.snaplen); }},
            {"dir",
             [&](const Item& i) {
               if (auto v = p_.String(i)) h.dir = *v;
             }},
            {"spool",
             [&](const Item& i) {
               p_.Map(i, {
                             {"enabled",
                              [&](const Item& j) {
                                if (auto b = p_.Bool(j)) h.spool = *b;
                              }},
                             {"segment_mb",
                              [&](const Item& j) { p_.UintInto(j, 1, 1u << 20, &h.segment_mb); }},
                             {"disk_mb",
                              [&](const Item& j) { p_.UintInto(j, 2, 1u << 30, &h.disk_mb); }},
                         });
             }},
        });
  }

  void Detect(const Item& item) {
    DetectConfig& d = config_.detect;
    auto path = [&](std::string* out) {
      return [this, out](const Item& i) {
        if (auto v = p_.String(i)) *out = *v;
      };
    };
    p_.Map(item, {
                     {"enabled",
                      [&](const Item& i) {
                        detect_enabled_item_ = i;
                        if (auto b = p_.Bool(i)) d.enabled = *b;
                      }},
                     {"rules",
                      [&](const Item& i) {
                        if (i.node.IsNull()) return;
                        auto entries = p_.Seq(i);
                        if (!entries) return;
                        for (const Item& e : *entries) {
                          if (auto v = p_.String(e)) d.rules.push_back(*v);
                        }
                      }},
                     {"inline",
                      [&](const Item& i) {
                        if (auto v = p_.String(i)) {
                          d.inline_rules = *v;
                          d.inline_file = p_.file();
                          // A block scalar (`inline: |`) starts on the line after its key.
                          d.inline_line = i.loc.line + (v->find('\n') != std::string::npos);
                        }
                      }},
                     {"vars", path(&d.vars)},
                     {"classification", path(&d.classification)},
                     {"cache_dir", path(&d.cache_dir)},
                     {"inline_actions",
                      [&](const Item& i) {
                        if (auto b = p_.Bool(i)) d.inline_actions = *b;
                      }},
                     {"invalid_rules",
                      [&](const Item& i) {
                        auto v = p_.String(i);
                        if (v && (*v == "refuse" || *v == "skip")) {
                          d.refuse_invalid_rules = *v == "refuse";
                        } else if (v) {
                          p_.Error(i.loc, i.path, "expected refuse or skip, got " + Quote(*v));
                        }
                      }},
                 });
  }

  void Files(const Item& item) {
    FilesConfig& f = config_.app_layer.files;
    p_.Map(item, {
                     {"enabled",
                      [&](const Item& i) {
                        if (auto b = p_.Bool(i)) f.enabled = *b;
                      }},
                     {"dir",
                      [&](const Item& i) {
                        if (auto v = p_.String(i)) f.dir = *v;
                      }},
                     {"max_file_mb",
                      [&](const Item& i) {
                        max_file_item_ = i;
                        if (auto v = p_.Uint(i, 1, 1u << 20)) {
                          f.max_file_mb = static_cast<uint32_t>(*v);
                        } else {
                          files_limits_ok_ = false;
                        }
                      }},
                     {"max_total_mb",
                      [&](const Item& i) {
                        max_total_item_ = i;
                        if (auto v = p_.Uint(i, 1, 1u << 30)) {
                          f.max_total_mb = static_cast<uint32_t>(*v);
                        } else {
                          files_limits_ok_ = false;
                        }
                      }},
                     {"extensions",
                      [&](const Item& i) {
                        if (i.node.IsNull()) return;
                        auto entries = p_.Seq(i);
                        if (!entries) return;
                        for (const Item& e : *entries) {
                          auto v = p_.String(e);
                          if (!v) continue;
                          std::string ext = v->front() == '.' ? v->substr(1) : *v;
                          bool ok = !ext.empty() && ext.size() <= 32 && ext.back() != '.';
                          for (char& c : ext) {
                            const unsigned char u = static_cast<unsigned char>(c);
                            ok &= std::isalnum(u) != 0 || c == '.' || c == '_' || c == '-';
                            c = static_cast<char>(std::tolower(u));
                          }
                          if (!ok) {
                            p_.Error(e.loc, e.path,
                                     "expected a file name ending such as \"exe\" or "
                                     "\".tar.gz\" (letters, digits, '.', '_', '-'; at most 32), "
                                     "got " +
                                         Describe(e.node));
                            continue;
                          }
                          f.extensions.push_back(ext);
                        }
                      }},
                 });
  }

  // Checks that need more than one key; positions keep the final list in document order.
  void CrossCheck() {
    if (config_.detect.enabled && config_.detect.rules.empty() &&
        config_.detect.inline_rules.empty()) {
      p_.Error(detect_enabled_item_.loc, "detect.rules",
               "detect is enabled but lists no rule files");
    }
    {
      const FilesConfig& f = config_.app_layer.files;
      if (files_limits_ok_ && f.max_file_mb > f.max_total_mb) {
        if (!max_file_item_.path.empty()) {
          p_.Error(max_file_item_.loc, max_file_item_.path,
                   "must not exceed max_total_mb (" + std::to_string(f.max_total_mb) + "), got " +
                       std::to_string(f.max_file_mb));
        } else {
          p_.Error(max_total_item_.loc, max_total_item_.path,
                   "must be at least max_file_mb (" + std::to_string(f.max_file_mb) +
                       ", the default), got " + std::to_string(f.max_total_mb));
        }
      }
    }

    if (size_mb_ && hugepages_ok_) {
      const uint64_t min = config_.hugepages ? kMinMemoryHugeMb : kMinMemoryNoHugeMb;
      if (*size_mb_ < min) {
        p_.Error(size_mb_item_.loc, size_mb_item_.path,
                 "must be in " + Range(min, UINT32_MAX) + " when hugepages is " +
                     (config_.hugepages ? "true" : "false (DPDK fails with less under --no-huge)") +
                     ", got " + std::to_string(*size_mb_));
      } else {
        config_.memory_mb = static_cast<uint32_t>(*size_mb_);
      }
    }

    // The main lcore runs housekeeping only.
    if (!main_lcore_ok_) {
      // Already reported; comparing against a value that was not set would mislead.
    } else if (lcores_explicit_) {
      for (size_t k = 0; k < config_.worker_lcores.size(); ++k) {
        if (config_.worker_lcores[k] == config_.main_lcore) {
          p_.Error(lcore_items_[k].loc, lcore_items_[k].path,
                   "lcore " + std::to_string(config_.main_lcore) +
                       " is eal.main_lcore; the main lcore cannot run a worker");
        }
      }
    } else if (std::find(config_.worker_lcores.begin(), config_.worker_lcores.end(),
                         config_.main_lcore) != config_.worker_lcores.end()) {
      p_.Error(main_lcore_loc_, "eal.main_lcore",
               "lcore " + std::to_string(config_.main_lcore) +
                   " is also a worker lcore (workers.lcores defaults to [1]); set workers.lcores");
    }

    if (emergency_ok_ &&
        config_.flow.emergency_exit_percent >= config_.flow.emergency_enter_percent) {
      const uint32_t enter = config_.flow.emergency_enter_percent;
      const uint32_t exit = config_.flow.emergency_exit_percent;
      if (!exit_item_.path.empty()) {
        p_.Error(exit_item_.loc, exit_item_.path,
                 "must be less than enter_percent (" + std::to_string(enter) + "), got " +
                     std::to_string(exit));
      } else {
        p_.Error(enter_item_.loc, enter_item_.path,
                 "must be greater than exit_percent (" + std::to_string(exit) +
                     ", the default), got " + std::to_string(enter));
      }
    }

    // Bridges reference ports; every port is in exactly one bridge. Skipped when `ports` itself
    // is unusable, so one mistake does not cascade into an error per reference.
    if (!ports_ok_) return;
    std::map<std::string, size_t> port_index;
    for (size_t k = 0; k < ports_seen_.size(); ++k) {
      if (!ports_seen_[k].name.empty()) port_index.emplace(ports_seen_[k].name, k);
    }
    std::map<std::string, size_t> bridged;  // port name -> bridge index
    for (const BridgeEnd& end : bridge_ends_) {
      if (port_index.count(end.name) == 0) {
        p_.Error(end.loc, end.path, "unknown port " + Quote(end.name) + "; not defined in ports");
        continue;
      }
      auto [prev, inserted] = bridged.emplace(end.name, end.bridge);
      if (inserted) continue;
      if (prev->second == end.bridge) {
        p_.Error(end.loc, end.path, "bridge joins port " + Quote(end.name) + " to itself");
      } else {
        p_.Error(end.loc, end.path,
                 "port " + Quote(end.name) + " is already in bridges[" +
                     std::to_string(prev->second) + "]; a port may be in one bridge only");
      }
    }
    if (!bridges_ok_) return;
    for (const PortSeen& port : ports_seen_) {
      if (!port.name.empty() && bridged.count(port.name) == 0) {
        p_.Error(
            port.loc, port.path,
            "port " + Quote(port.name) + " is not in any bridge; its traffic would be dropped");
      }
    }
  }

  Parser p_;
  Config config_;

  std::optional<uint64_t> size_mb_;
  Item size_mb_item_;
  bool hugepages_ok_ = true;
  Loc main_lcore_loc_;
  bool main_lcore_ok_ = true;
  bool lcores_explicit_ = false;
  std::vector<Item> lcore_items_;  // parallel to config_.worker_lcores when explicit
  bool emergency_ok_ = true;
  Item enter_item_;
  Item exit_item_;
  Item max_file_item_, max_total_item_;  // outputs.files, for the cross check
  Item detect_enabled_item_;             // detect.enabled, for the cross check
  bool files_limits_ok_ = true;
  bool ports_ok_ = false;
  bool bridges_ok_ = true;
  std::vector<PortSeen> ports_seen_;
  std::map<std::string, std::string> devices_;  // DPDK device name -> "ports[i]"
  std::vector<BridgeEnd> bridge_ends_;
};

}  // namespace

const char* ExceptionPolicyName(ExceptionPolicy p) noexcept {
  for (const auto& [name, policy] : kPolicies) {
    if (policy == p) return name.data();
  }
  return "unknown";
}

std::string ConfigError::ToString() const {
  std::string out = file;
  if (line > 0) {
    out += ":" + std::to_string(line);
    if (column > 0) out += ":" + std::to_string(column);
  }
  if (!out.empty()) out += ": ";
  if (!field.empty()) out += field + ": ";
  return out + message;
}

ConfigResult LoadConfigString(const std::string& yaml, const std::string& name) {
  return ConfigLoader(name).Load(yaml);
}

namespace {

// detect paths are relative to the config file, so a config and its rules move together.
void ResolveDetectPaths(const std::string& dir, DetectConfig* d) {
  auto resolve = [&](std::string* p) {
    if (!p->empty() && p->front() != '/') *p = dir + *p;
  };
  for (std::string& r : d->rules) resolve(&r);
  resolve(&d->vars);
  resolve(&d->classification);
  resolve(&d->cache_dir);
}

}  // namespace

ConfigResult LoadConfigFile(const std::string& path) {
  std::string text;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  int err = f == nullptr ? errno : 0;
  if (f != nullptr) {
    char buf[65536];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) text.append(buf, n);
    if (std::ferror(f)) err = errno != 0 ? errno : EIO;
    std::fclose(f);
  }
  if (err != 0) {
    ConfigResult result;
    result.errors.push_back(
        ConfigError{path, 0, 0, "", std::string("cannot read file: ") + std::strerror(err)});
    return result;
  }
  ConfigResult result = LoadConfigString(text, path);
  if (result.config) {
    const size_t slash = path.rfind('/');
    ResolveDetectPaths(slash == std::string::npos ? "" : path.substr(0, slash + 1),
                       &result.config->detect);
  }
  return result;
}

ConfigResult LoadConfigSection(const std::string& yaml, const std::string& name,
                               const std::string& key, const std::string& base_dir) {
  ConfigResult result = ConfigLoader(name).Load(yaml, key);
  if (result.config) {
    std::string dir = base_dir;
    if (!dir.empty() && dir.back() != '/') dir += '/';
    ResolveDetectPaths(dir, &result.config->detect);
  }
  return result;
}

std::vector<std::string> RestartOnlyChanges(const Config& a, const Config& b) {
  std::vector<std::string> out;
  auto check = [&](bool same, const char* field) {
    if (!same) out.emplace_back(field);
  };
  check(a.sensor_name == b.sensor_name, "sensor.name");
  check(a.file_prefix == b.file_prefix && a.hugepages == b.hugepages &&
            a.memory_mb == b.memory_mb && a.main_lcore == b.main_lcore &&
            a.log_level == b.log_level,
        "eal");
  check(a.ports == b.ports, "ports");
  check(a.bridges == b.bridges, "bridges");
  check(a.worker_lcores == b.worker_lcores && a.mbufs_per_worker == b.mbufs_per_worker &&
            a.tx_flush_us == b.tx_flush_us && a.stats_interval_s == b.stats_interval_s,
        "workers");
  check(a.flow == b.flow, "flow");
  check(a.app_layer.enabled == b.app_layer.enabled &&
            a.app_layer.parser_pools == b.app_layer.parser_pools,
        "app_layer");
  check(a.app_layer.midstream == b.app_layer.midstream &&
            a.app_layer.sessions == b.app_layer.sessions &&
            a.app_layer.segment_slots == b.app_layer.segment_slots &&
            a.app_layer.reassembly == b.app_layer.reassembly,
        "stream");
  check(a.defrag == b.defrag, "defrag");
  check(a.exception_policy == b.exception_policy &&
            a.app_layer.stream_memcap == b.app_layer.stream_memcap,
        "exception_policy");
  check(a.eve_enabled == b.eve_enabled && a.eve_path == b.eve_path &&
            a.event_ring_mb == b.event_ring_mb && a.control_enabled == b.control_enabled &&
            a.control_socket == b.control_socket &&
            a.control_journal_dir == b.control_journal_dir &&
            a.control_journal_mb == b.control_journal_mb && a.app_layer.files == b.app_layer.files,
        "outputs");
  check(a.commands_enabled == b.commands_enabled && a.commands_socket == b.commands_socket,
        "commands");
  check(a.history == b.history, "history");
  // A setting added to Config but not to the list above still counts as restart-only.
  Config hot = a;
  hot.source_file = b.source_file;
  hot.detect = b.detect;
  hot.never_block = b.never_block;
  if (out.empty() && !(hot == b)) out.emplace_back("(a setting not listed above)");
  return out;
}

// Port ids: DPDK probes every bus but the vdev bus first (PCI devices in bus-address order,
// whatever the -a order), then the vdevs, in --vdev order, which is config order. The dataplane
// must still map config ports to port ids by device name (rte_eth_dev_get_port_by_name) rather than
// by position once PCI and vdev ports are mixed.
std::vector<std::string> BuildEalArgs(const Config& config, const std::string& argv0,
                                      const std::vector<std::string>& extra) {
  std::vector<std::string> args = {argv0};
  std::string lcores = std::to_string(config.main_lcore);
  for (uint32_t l : config.worker_lcores) lcores += "," + std::to_string(l);
  args.insert(args.end(), {"-l", lcores, "--main-lcore", std::to_string(config.main_lcore)});
  if (!config.hugepages) args.push_back("--no-huge");
  args.insert(args.end(), {"-m", std::to_string(config.memory_mb)});
  args.insert(args.end(), {"--file-prefix", config.file_prefix});
  // DPDK's telemetry socket is another local input, served by a thread that keeps every
  // capability; vigil has its own counters (the command socket, control's /metrics).
  args.push_back("--no-telemetry");
  const bool any_pci = std::any_of(config.ports.begin(), config.ports.end(),
                                   [](const PortConfig& p) { return p.is_pci; });
  if (!any_pci) args.push_back("--no-pci");
  for (const PortConfig& p : config.ports) {
    if (p.is_pci) args.insert(args.end(), {"-a", p.device});
  }
  for (const PortConfig& p : config.ports) {
    if (!p.is_pci) args.insert(args.end(), {"--vdev", p.device});
  }
  args.insert(args.end(), {"--log-level", "lib.*:" + config.log_level, "--log-level",
                           "pmd.*:" + config.log_level});
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

}  // namespace vigil::dp
