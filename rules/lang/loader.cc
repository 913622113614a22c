#include "rules/lang/loader.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace vigil::rules {
namespace {

std::string_view TrimSpace(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

bool LooksLikeRule(std::string_view s) {
  for (std::string_view a : {"alert", "drop", "reject", "pass"}) {
    if (s.size() > a.size() && s.substr(0, a.size()) == a &&
        (s[a.size()] == ' ' || s[a.size()] == '\t')) {
      return true;
    }
  }
  return false;
}

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return !in.bad();
}

void AddGroups(const YAML::Node& node, std::map<std::string, std::string, std::less<>>* out) {
  if (!node) return;
  if (!node.IsMap()) {
    throw YAML::ParserException(node.Mark(), "expected a map of NAME: value");
  }
  for (const auto& kv : node) {
    (*out)[kv.first.as<std::string>()] = kv.second.as<std::string>();
  }
}

}  // namespace

std::vector<std::pair<std::string, size_t>> LoadResult::CountsByReason() const {
  std::map<std::string, size_t> counts;
  for (const auto& r : rejections) ++counts[r.Category()];
  std::vector<std::pair<std::string, size_t>> out(counts.begin(), counts.end());
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  return out;
}

void LoadRulesText(std::string_view text, const std::string& file, const Vars& vars,
                   const Classification* classification, LoadResult* result) {
  ParseContext context;
  context.vars = &vars;
  context.classification = classification;
  context.file = file;
  int line_no = 0;
  std::string joined;
  int first_line = 0;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (joined.empty()) first_line = line_no;
    const std::string_view trimmed = TrimSpace(line);
    // A trailing backslash continues the rule on the next line.
    if (!trimmed.empty() && trimmed.back() == '\\') {
      joined.append(trimmed.substr(0, trimmed.size() - 1));
      if (!text.empty()) continue;
    } else {
      joined.append(trimmed);
    }
    const std::string_view rule_text = TrimSpace(joined);
    if (rule_text.empty()) {
      joined.clear();
      continue;
    }
    if (rule_text.front() == '#') {
      std::string_view rest = rule_text;
      while (!rest.empty() && (rest.front() == '#' || rest.front() == ' ')) rest.remove_prefix(1);
      if (LooksLikeRule(rest)) ++result->disabled;
      joined.clear();
      continue;
    }
    context.line = first_line;
    Rejection rejection;
    std::optional<Rule> rule = ParseRule(rule_text, context, &rejection);
    joined.clear();
    if (!rule) {
      result->rejections.push_back(std::move(rejection));
      continue;
    }
    const uint64_t id = (uint64_t{rule->gid} << 32) | rule->sid;
    if (!result->ids.insert(id).second) {
      rejection = Rejection{
          file,
          first_line,
          rule->sid,
          "sid",
          "duplicate gid:sid " + std::to_string(rule->gid) + ":" + std::to_string(rule->sid),
          RejectKind::kDuplicate};
      result->rejections.push_back(std::move(rejection));
      continue;
    }
    result->rules.push_back(std::move(*rule));
  }
}

LoadResult LoadRules(const std::vector<std::string>& files, const Vars& vars,
                     const Classification* classification) {
  LoadResult result;
  for (const auto& f : files) {
    std::string text;
    if (!ReadFile(f, &text)) {
      result.errors.push_back("cannot read " + f);
      continue;
    }
    LoadRulesText(text, f, vars, classification, &result);
  }
  return result;
}

std::string Summary(const LoadResult& result) {
  std::string s = std::to_string(result.rules.size()) + " loaded, " +
                  std::to_string(result.rejections.size()) + " rejected";
  const auto counts = result.CountsByReason();
  for (size_t i = 0; i < counts.size(); ++i) {
    s += i == 0 ? ": " : ", ";
    s += std::to_string(counts[i].second) + " by " + counts[i].first;
  }
  return s;
}

Vars DefaultVars() {
  Vars v;
  v.address_groups = {
      {"HOME_NET", "[192.168.0.0/16,10.0.0.0/8,172.16.0.0/12]"},
      {"EXTERNAL_NET", "!$HOME_NET"},
      {"HTTP_SERVERS", "$HOME_NET"},
      {"SMTP_SERVERS", "$HOME_NET"},
      {"SQL_SERVERS", "$HOME_NET"},
      {"DNS_SERVERS", "$HOME_NET"},
      {"TELNET_SERVERS", "$HOME_NET"},
      {"AIM_SERVERS", "$EXTERNAL_NET"},
      {"DC_SERVERS", "$HOME_NET"},
      {"DNP3_SERVER", "$HOME_NET"},
      {"DNP3_CLIENT", "$HOME_NET"},
      {"MODBUS_CLIENT", "$HOME_NET"},
      {"MODBUS_SERVER", "$HOME_NET"},
      {"ENIP_CLIENT", "$HOME_NET"},
      {"ENIP_SERVER", "$HOME_NET"},
  };
  v.port_groups = {
      {"HTTP_PORTS", "80"},
      {"SHELLCODE_PORTS", "!80"},
      {"ORACLE_PORTS", "1521"},
      {"SSH_PORTS", "22"},
      {"DNP3_PORTS", "20000"},
      {"MODBUS_PORTS", "502"},
      {"FILE_DATA_PORTS", "[$HTTP_PORTS,110,143]"},
      {"FTP_PORTS", "21"},
      {"GENEVE_PORTS", "6081"},
      {"VXLAN_PORTS", "4789"},
      {"TEREDO_PORTS", "3544"},
  };
  return v;
}

bool ParseVarsYaml(std::string_view text, const std::string& file, Vars* vars, std::string* error) {
  try {
    const YAML::Node root = YAML::Load(std::string(text));
    if (!root.IsMap()) {
      *error = file + ": expected a map with 'vars:'";
      return false;
    }
    const YAML::Node v = root["vars"] ? root["vars"] : root;
    if (!v.IsMap()) {
      *error = file + ": 'vars' must be a map";
      return false;
    }
    AddGroups(v["address-groups"], &vars->address_groups);
    AddGroups(v["port-groups"], &vars->port_groups);
    return true;
  } catch (const YAML::Exception& e) {
    *error = file + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg;
    return false;
  }
}

bool LoadVarsYaml(const std::string& path, Vars* vars, std::string* error) {
  std::string text;
  if (!ReadFile(path, &text)) {
    *error = "cannot read " + path;
    return false;
  }
  return ParseVarsYaml(text, path, vars, error);
}

}  // namespace vigil::rules
