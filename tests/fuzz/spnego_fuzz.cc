// libFuzzer target for SPNEGO unwrapping, followed into the NTLMSSP and Kerberos decoders: any
// input must decode without a memory error, the mechanism token must lie inside the input, and
// the JSON written for what is found must be balanced.
//
// Built and run by scripts/fuzz.sh (clang, -fsanitize=fuzzer,address,undefined).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "dataplane/proto/krb5.h"
#include "dataplane/proto/ntlmssp.h"
#include "dataplane/proto/spnego.h"
#include "tests/unit/proto/collect_sink.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using vigil::proto::Direction;
  using vigil::proto::SpnegoMech;
  using vigil::proto::SpnegoToken;

  SpnegoToken t;
  if (!vigil::proto::ParseSpnego(std::span<const uint8_t>(data, size), &t)) {
    Check(t.mech_token.empty() && t.mech == SpnegoMech::kUnknown);
    return 0;
  }
  if (!t.mech_token.empty()) {
    Check(t.mech_token.data() >= data && t.mech_token.data() + t.mech_token.size() <= data + size);
  }
  Check(t.neg_state >= -1 && t.neg_state <= 255);
  vigil::proto::testing::CollectSink sink;
  auto& w = sink.Begin("smb", Direction::kToServer);
  if (t.mech == SpnegoMech::kNtlmssp) {
    vigil::proto::NtlmsspMessage m;
    if (vigil::proto::ParseNtlmssp(t.mech_token, &m)) {
      w.ObjectBegin("ntlmssp");
      vigil::proto::WriteNtlmsspJson(m, w);
      w.ObjectEnd();
      vigil::proto::AppendNtlmsspMessage(m, sink.message());
    }
  } else if (t.mech == SpnegoMech::kKrb5) {
    vigil::proto::Krb5Message m;
    if (vigil::proto::ParseKrb5(t.mech_token, &m)) {
      w.ObjectBegin("kerberos");
      vigil::proto::WriteKrb5SmbJson(m, w);
      w.ObjectEnd();
      vigil::proto::AppendKrb5Message(m, sink.message());
    }
  }
  sink.Commit();
  Check(!sink.unbalanced);
  return 0;
}
