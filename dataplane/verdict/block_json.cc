#include "dataplane/verdict/block_json.h"

#include <arpa/inet.h>

#include <cstring>
#include <exception>
#include <set>

#include "dataplane/export/eve_writer.h"

namespace vigil::dp {
namespace {

bool ParseKind(const std::string& s, BlockKind* k) {
  for (BlockKind c : {BlockKind::kConnection, BlockKind::kQuarantine,
                      BlockKind::kQuarantineOutgoing, BlockKind::kQuarantineIncoming}) {
    if (s == BlockKindName(c)) {
      *k = c;
      return true;
    }
  }
  return false;
}

template <typename T>
bool Number(const YAML::Node& n, const char* field, uint64_t max, T* out, std::string* error) {
  if (!n[field]) return true;
  uint64_t v = 0;
  try {
    v = n[field].as<uint64_t>();
  } catch (const std::exception&) {
    *error = std::string(field) + ": not an unsigned integer";
    return false;
  }
  if (v > max) {
    *error = std::string(field) + ": " + std::to_string(v) + " is out of range";
    return false;
  }
  *out = static_cast<T>(v);
  return true;
}

bool CidrList(const YAML::Node& req, const char* field, std::vector<Cidr>* out,
              std::string* error) {
  const YAML::Node list = req[field];
  if (!list) return true;
  if (!list.IsSequence()) {
    *error = std::string(field) + ": not a list";
    return false;
  }
  for (size_t i = 0; i < list.size(); ++i) {
    Cidr c;
    std::string e;
    if (!list[i].IsScalar() || !ParseCidr(list[i].Scalar(), &c, &e)) {
      *error = std::string(field) + "[" + std::to_string(i) +
               "]: " + (e.empty() ? "not an address or network" : e);
      return false;
    }
    out->push_back(c);
  }
  return true;
}

bool ParseEntry(const YAML::Node& n, BlockEntry* e, std::string* error) {
  static const std::set<std::string> kFields = {
      "id", "kind", "addr", "peer", "client_port", "server_port", "proto", "expires_ns"};
  if (!n.IsMap()) {
    *error = "not an object";
    return false;
  }
  for (const auto& kv : n) {
    const std::string k = kv.first.as<std::string>();
    if (kFields.count(k) == 0) {
      *error = "unknown field \"" + k + "\"";
      return false;
    }
  }
  if (!n["id"] || !n["kind"] || !n["addr"]) {
    *error = "id, kind and addr are required";
    return false;
  }
  if (!Number(n, "id", UINT64_MAX, &e->id, error)) return false;
  if (!ParseKind(n["kind"].as<std::string>(), &e->kind)) {
    *error = "unknown kind \"" + n["kind"].as<std::string>() +
             "\" (block_connection, quarantine_device, quarantine_outgoing, "
             "quarantine_incoming)";
    return false;
  }
  if (!ParseAddr(n["addr"].as<std::string>(), &e->addr)) {
    *error = "addr: not an IPv4 or IPv6 address: " + n["addr"].as<std::string>();
    return false;
  }
  if (e->kind == BlockKind::kConnection) {
    if (!n["peer"] || !ParseAddr(n["peer"].as<std::string>(), &e->peer)) {
      *error = "peer: a connection needs the server's address";
      return false;
    }
  } else if (n["peer"] || n["client_port"] || n["server_port"] || n["proto"]) {
    *error = "peer, ports and proto apply to block_connection only";
    return false;
  }
  return Number(n, "client_port", 65535, &e->client_port, error) &&
         Number(n, "server_port", 65535, &e->server_port, error) &&
         Number(n, "proto", 255, &e->proto, error) &&
         Number(n, "expires_ns", UINT64_MAX, &e->expires_ns, error);
}

}  // namespace

std::string AddrText(const Addr16& a) {
  static constexpr uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  char buf[INET6_ADDRSTRLEN] = {};
  if (std::memcmp(a.data(), kPrefix, 12) == 0) {
    inet_ntop(AF_INET, a.data() + 12, buf, sizeof buf);
  } else {
    inet_ntop(AF_INET6, a.data(), buf, sizeof buf);
  }
  return buf;
}

bool ParseBlockSet(const YAML::Node& req, BlockSetRequest* out, std::string* error) {
  if (!Number(req, "generation", UINT64_MAX, &out->generation, error)) return false;
  const YAML::Node entries = req["entries"];
  if (!entries || !entries.IsSequence()) {
    *error = "entries: a list is required (empty to clear the table)";
    return false;
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    BlockEntry e;
    std::string why;
    if (!ParseEntry(entries[i], &e, &why)) {
      *error = "entries[" + std::to_string(i) + "]" +
               (e.id != 0 ? " (id " + std::to_string(e.id) + ")" : "") + ": " + why;
      return false;
    }
    out->entries.push_back(e);
  }
  return CidrList(req, "allow", &out->allow, error) &&
         CidrList(req, "never_block", &out->never_block, error);
}

std::string BlockTableJson(const BlockTable* table, uint64_t generation) {
  std::string o = "\"generation\":" + std::to_string(generation) + ",\"entries\":[";
  if (table != nullptr) {
    const auto entries = table->entries();
    for (size_t i = 0; i < entries.size(); ++i) {
      const BlockEntry& e = entries[i];
      if (i > 0) o += ",";
      o += "{\"id\":" + std::to_string(e.id) + ",\"kind\":\"" + BlockKindName(e.kind) +
           "\",\"addr\":";
      AppendJsonString(&o, AddrText(e.addr));
      if (e.kind == BlockKind::kConnection) {
        o += ",\"peer\":";
        AppendJsonString(&o, AddrText(e.peer));
        o += ",\"client_port\":" + std::to_string(e.client_port) +
             ",\"server_port\":" + std::to_string(e.server_port) +
             ",\"proto\":" + std::to_string(e.proto);
      }
      o += ",\"expires_ns\":" + std::to_string(e.expires_ns) +
           ",\"drops\":" + std::to_string(table->drops(i)) +
           ",\"resets\":" + std::to_string(table->resets(i)) +
           ",\"first_drop_ns\":" + std::to_string(table->first_drop_ns(i)) + "}";
    }
  }
  o += "]";
  return o;
}

}  // namespace vigil::dp
