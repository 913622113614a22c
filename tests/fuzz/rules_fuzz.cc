// libFuzzer target for the signature language: any text, read as a rule file, as one rule and as
// an address or port group, must load or be rejected with a reason, without a memory error, a
// hang or an escaping exception. A rule that loads keeps its invariants (sid set, relative and
// absolute modifiers exclusive, contents non-empty, depth/within not below the content length).
// The rules that load are compiled into a Detector (rules/engine) that inspects the same bytes in
// every buffer: verification is bounded and never reads outside a buffer.
//
// Built and run by scripts/fuzz.sh (clang, -fsanitize=fuzzer,address,undefined):
//   rules/lang/*.cc rules/engine/*.cc tests/fuzz/rules_fuzz.cc -lhs -lyaml-cpp
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include "rules/engine/detect.h"
#include "rules/lang/loader.h"
#include "rules/lang/rule_parser.h"

namespace {

using vigil::rules::Content;
using vigil::rules::Rule;

void Check(bool ok) {
  if (!ok) std::abort();
}

const vigil::rules::Vars& TestVars() {
  static const vigil::rules::Vars vars = [] {
    vigil::rules::Vars v = vigil::rules::DefaultVars();
    v.address_groups["SELF"] = "[1.2.3.4,$SELF]";
    v.port_groups["PORTS"] = "[80,$HTTP_PORTS,!81]";
    return v;
  }();
  return vars;
}

const vigil::rules::Classification& TestClassification() {
  static const vigil::rules::Classification c = vigil::rules::Classification::Parse(
      "config classification: trojan-activity,A Network Trojan was Detected,1\n"
      "config classification: misc-activity,Misc activity,3\n",
      nullptr);
  return c;
}

void CheckRule(const Rule& r) {
  Check(r.sid != 0);
  Check(r.priority >= 1 && r.priority <= 255);
  Check(!r.source.v4.empty() || !r.source.v6.empty());
  Check(!r.destination_ports.ranges.empty());
  for (const auto& m : r.matches) {
    if (const Content* c = std::get_if<Content>(&m)) {
      Check(!c->bytes.empty());
      Check(!(c->relative() && (c->offset || c->depth)));
      Check(!c->depth || *c->depth >= c->bytes.size());
      Check(!c->within || *c->within >= c->bytes.size());
    } else if (const auto* p = std::get_if<vigil::rules::Pcre>(&m)) {
      Check(!p->expression.empty());
    } else if (const auto* t = std::get_if<vigil::rules::ByteTest>(&m)) {
      Check(t->read.nbytes >= 1 && t->read.nbytes <= 20);
    } else if (const auto* j = std::get_if<vigil::rules::ByteJump>(&m)) {
      Check(j->read.nbytes >= 1 && j->read.nbytes <= 20 && j->multiplier >= 1);
      Check(!(j->from_beginning && j->from_end));
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  vigil::rules::LoadResult result;
  vigil::rules::LoadRulesText(text, "fuzz.rules", TestVars(), &TestClassification(), &result);
  for (const auto& r : result.rules) CheckRule(r);
  for (const auto& r : result.rejections) {
    Check(!r.keyword.empty() && !r.reason.empty() && r.line >= 1);
    Check(!r.Category().empty());
  }
  (void)vigil::rules::Summary(result);
  if (!result.rules.empty() && result.rules.size() <= 16) {
    std::string error;
    auto det = vigil::rules::Detector::Build(result.rules, &error);
    if (det != nullptr) {
      auto scratch = det->NewScratch(&error);
      Check(scratch != nullptr);
      vigil::rules::Buffers b;
      for (size_t i = 0; i < vigil::rules::kBufferCount; ++i) {
        b.Set(static_cast<vigil::rules::Buffer>(i), {data, size});
      }
      vigil::rules::PacketMeta p;
      p.payload_size = static_cast<uint32_t>(size);
      vigil::rules::FlowBits bits;
      uint32_t alerts[16];
      Check(det->Inspect(p, b, &bits, *scratch, alerts) <= 16);
      // The same bytes cut in two as a TCP stream: the first part (its last kMaxStreamPrefix
      // bytes) as the stream prefix of the rest, through the seam.
      const size_t cut = size / 2;
      const size_t keep = std::min(cut, vigil::rules::kMaxStreamPrefix);
      b.SetStreamPrefix({data + cut - keep, keep});
      b.Set(vigil::rules::Buffer::kPacket, {data + cut, size - cut});
      p.payload_size = static_cast<uint32_t>(size - cut);
      Check(det->Inspect(p, b, &bits, *scratch, alerts) <= 16);
    }
  }

  vigil::rules::ParseContext context;
  context.vars = &TestVars();
  context.file = "fuzz.rules";
  context.line = 1;
  vigil::rules::Rejection rejection;
  if (auto rule = vigil::rules::ParseRule(text, context, &rejection)) {
    CheckRule(*rule);
  } else {
    Check(!rejection.reason.empty());
  }

  if (size <= 4096) {
    std::string error;
    vigil::rules::AddressSet a;
    if (!vigil::rules::ParseAddressGroup(text, TestVars(), &a, &error)) Check(!error.empty());
    vigil::rules::PortSet p;
    if (!vigil::rules::ParsePortGroup(text, TestVars(), &p, &error)) Check(!error.empty());
  }
  return 0;
}
