// Parses one Suricata/Snort signature (already joined from continuation lines) into a Rule, or
// explains why not. Called on the loading thread (control or dataplane start-up, the vigil-rules
// tool); it does not block, allocates freely, and never throws.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "rules/lang/address.h"
#include "rules/lang/classification.h"
#include "rules/lang/rule.h"

namespace vigil::rules {

inline constexpr size_t kMaxRuleText = size_t{256} * 1024;
inline constexpr size_t kMaxContentBytes = 65535;

enum class RejectKind : uint8_t {
  kUnsupported,  // a known keyword or construct that vigil does not implement (yet)
  kUnknown,      // a keyword that is neither supported nor known
  kInvalid,      // bad syntax or value, or a semantic error (conflict, missing sid, ...)
  kHyperscan,    // a pcre that Hyperscan cannot compile
  kDuplicate,    // a gid:sid already loaded (set by the loader)
};

struct Rejection {
  std::string file;
  int line = 0;
  std::optional<uint32_t> sid;
  std::string keyword;  // the option (or header field) at fault
  std::string reason;
  RejectKind kind = RejectKind::kInvalid;

  // The summary's grouping key: "keyword byte_test", "unknown keyword foo", "invalid within",
  // "pcre rejected by Hyperscan", "duplicate sid".
  std::string Category() const;
  // "file:line: sid N: keyword: reason" (sid omitted when not seen).
  std::string ToString() const;
};

struct ParseContext {
  const Vars* vars = nullptr;                      // required
  const Classification* classification = nullptr;  // optional: classtypes unresolved without
  std::string file;
  int line = 0;
};

// The rule, or nullopt with *rejection filled in. Every input is either a rule or a rejection.
std::optional<Rule> ParseRule(std::string_view text, const ParseContext& context,
                              Rejection* rejection) noexcept;

// The buffer a sticky keyword (http.uri, file_data, dns_query, ...) or a legacy content modifier
// (http_uri, http_client_body, ...) selects; nullopt if the name is neither.
std::optional<Buffer> StickyBuffer(std::string_view keyword);
std::optional<Buffer> ContentModifierBuffer(std::string_view keyword);

}  // namespace vigil::rules
