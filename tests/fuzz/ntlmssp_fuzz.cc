// libFuzzer target for the NTLMSSP decoder: any input must decode without a memory error; what
// it accepts must give balanced JSON and bounded strings, and every non-empty payload field it
// used lies inside the input (checked by ASan: the decoder reads only from the input span).
//
// Built and run by scripts/fuzz.sh (clang, -fsanitize=fuzzer,address,undefined).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "dataplane/proto/ntlmssp.h"
#include "tests/unit/proto/collect_sink.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using vigil::proto::Direction;
  using vigil::proto::NtlmsspMessage;
  using vigil::proto::NtlmsspType;

  NtlmsspMessage m;
  const bool ok = vigil::proto::ParseNtlmssp(std::span<const uint8_t>(data, size), &m);
  if (!ok) {
    Check(m.type == NtlmsspType::kNone);
    return 0;
  }
  Check(m.type != NtlmsspType::kNone);
  Check(size >= 16);
  Check(m.user.len <= 128 && m.domain.len <= 128 && m.host.len <= 128 && m.target_name.len <= 128);
  Check(m.nb_computer_name.len <= 64 && m.nb_domain_name.len <= 64);
  Check(m.dns_computer_name.len <= 128 && m.dns_domain_name.len <= 128 &&
        m.dns_tree_name.len <= 128);
  if (m.type != NtlmsspType::kChallenge) Check(!m.has_target_info && !m.target_info_truncated);
  if (m.type == NtlmsspType::kAuthenticate) {
    Check(m.nt_response_len <= size && m.lm_response_len <= size);
  }
  vigil::proto::testing::CollectSink sink;
  auto& w = sink.Begin("smb", Direction::kToServer);
  w.ObjectBegin("ntlmssp");
  vigil::proto::WriteNtlmsspJson(m, w);
  w.ObjectEnd();
  vigil::proto::AppendNtlmsspMessage(m, sink.message());
  sink.Commit();
  Check(!sink.unbalanced);
  return 0;
}
