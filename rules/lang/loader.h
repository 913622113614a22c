// Loads rule files: joins continuation lines, skips comments (counting commented-out rules as
// disabled), parses each rule, rejects duplicate gid:sid, and summarises the rejections by reason.
// Also reads the variables (Suricata's `vars:` YAML). Loading thread only; reads files (blocking).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "rules/lang/address.h"
#include "rules/lang/classification.h"
#include "rules/lang/rule.h"
#include "rules/lang/rule_parser.h"

namespace vigil::rules {

struct LoadResult {
  std::vector<Rule> rules;
  std::vector<Rejection> rejections;
  size_t disabled = 0;               // commented-out rules ('# alert ...'), not rejections
  std::vector<std::string> errors;   // files that could not be read
  std::unordered_set<uint64_t> ids;  // gid << 32 | sid of the loaded rules

  // Rejection counts by Rejection::Category(), most frequent first (ties by name).
  std::vector<std::pair<std::string, size_t>> CountsByReason() const;
};

// Parses rule text as if read from `file`, appending to *result.
void LoadRulesText(std::string_view text, const std::string& file, const Vars& vars,
                   const Classification* classification, LoadResult* result);

// Reads and loads each file in order; an unreadable file is added to errors.
LoadResult LoadRules(const std::vector<std::string>& files, const Vars& vars,
                     const Classification* classification);

// "N loaded, M rejected: K by keyword byte_test, J by keyword isdataat, ...".
std::string Summary(const LoadResult& result);

// Suricata's default variables (the same values as the shipped rules/vars.yaml).
Vars DefaultVars();

// `vars: {address-groups: {NAME: "..."}, port-groups: {...}}` (the `vars:` level is optional).
// Variables found are added to *vars (overriding). False with "file:line: reason" on error.
bool ParseVarsYaml(std::string_view text, const std::string& file, Vars* vars, std::string* error);
bool LoadVarsYaml(const std::string& path, Vars* vars, std::string* error);

}  // namespace vigil::rules
