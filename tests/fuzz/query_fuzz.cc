// libFuzzer target for the query language: any text must parse or fail with an error inside the
// text, without a memory error or a stack overflow. A query that parses is evaluated against a
// few fixed events, and its canonical form must parse back to the same query (same canonical
// form, same verdicts); its fragments must be a necessary condition on those events.
//
// Built and run by scripts/fuzz.sh (clang, -fsanitize=fuzzer,address,undefined):
//   control/query/query.cc control/query/query_eval.cc control/query/query_prefilter.cc
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "control/query/query.h"

namespace {

using vigil::ctl::query::Query;

void Check(bool ok) {
  if (!ok) std::abort();
}

const std::vector<nlohmann::json>& Events() {
  static const std::vector<nlohmann::json> events = [] {
    std::vector<nlohmann::json> v;
    for (
        const char* s :
        {R"ev({"timestamp":"2017-12-20T09:00:01.123456+0000","flow_id":1099511627790,"event_type":"smb","src_ip":"10.0.0.9","src_port":49301,"dest_ip":"10.0.0.5","dest_port":445,"proto":"TCP","app_proto":"smb","smb":{"id":7,"command":"SMB2_COMMAND_READ","status":"STATUS_SUCCESS","filename":"Windows\\Tasks\\AV.job","share":"\\\\10.0.0.5\\C$"},"message":"SMB2 READ success \\\\10.0.0.5\\C$ Windows\\Tasks\\AV.job 896 bytes"})ev",
         R"ev({"timestamp":"2017-10-20T18:43:22.993206+0000","flow_id":1099511627777,"event_type":"smb","src_ip":"fd00::9","dest_ip":"fd00::5","dest_port":445,"app_proto":"smb","smb":{"command":"SMB2_COMMAND_WRITE","dcerpc":{"request":"BIND","interfaces":[{"uuid":"1ff70682-0a51-30e8-076d-740be8cee98b","version":"1.0","ack_result":0,"service":"atsvc"}],"secondary_address":"\\PIPE\\atsvc"},"ntlmssp":{"user":"appadmin","domain":"CORP"}},"message":"SMB2 WRITE success atsvc DCERPC BIND atsvc v1.0 accepted"})ev",
         R"ev({"timestamp":"2017-04-20T21:15:58.732859+0000","event_type":"dns","src_ip":"10.16.1.1","dest_port":41805,"dns":{"rd":true,"ttl":null,"answers":[{"rrname":"www.suricata-ids.org","rrtype":"CNAME","ttl":3544},{"rdata":"192.0.78.24"}],"x":[[1.5,"école"]]},"message":"DNS RESPONSE NOERROR A www.suricata-ids.org"})ev"}) {
      v.push_back(nlohmann::json::parse(s));
    }
    return v;
  }();
  return events;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  vigil::ctl::query::Error error;
  const auto q = Query::Parse(text, &error);
  if (!q) {
    Check(error.column >= 1 && static_cast<size_t>(error.column) <= size + 1);
    Check(!error.message.empty());
    return 0;
  }
  Check(q->text() == text);
  const std::string canonical = q->ToString();
  (void)q->Fts5Prefilter();
  const auto fragments = q->RequiredFragments();
  for (const auto& alt : fragments) Check(!alt.empty());

  // Canonical forms can be longer than the input (implicit AND, field groups spelled out).
  std::optional<Query> again;
  if (canonical.size() <= vigil::ctl::query::kMaxQueryBytes) {
    again = Query::Parse(canonical, nullptr);
    Check(again.has_value());
    Check(again->ToString() == canonical);
    Check(again->Fts5Prefilter() == q->Fts5Prefilter());
  }
  for (const auto& ev : Events()) {
    const bool m = q->Matches(ev);
    if (again) Check(again->Matches(ev) == m);
    if (m && !fragments.empty()) {
      const std::string index = vigil::ctl::query::IndexText(ev);
      bool some = false;
      for (const auto& alt : fragments) {
        bool all = true;
        for (const auto& f : alt) all = all && index.find(f) != std::string::npos;
        some = some || all;
      }
      Check(some);
    }
  }
  return 0;
}
