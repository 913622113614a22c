// libFuzzer target for the Task Scheduler decoders: the input as a .JOB file, as UTF-16LE task XML
// and as UTF-8 task XML. Every parse must end without a memory error, keep its strings within
// their bounds and its counts consistent, and give balanced JSON.
//
// Built and run by scripts/fuzz.sh (clang, -fsanitize=fuzzer,address,undefined).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "dataplane/proto/tsch.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

void CheckTrigger(const vigil::proto::TaskTrigger& t) {
  Check(t.start.len <= 40 && t.end.len <= 40);
  Check(t.weekdays < 0x80 && t.months < 0x1000 && t.weeks < 0x20);
}

void WriteAndCheck(const auto& info) {
  static char buf[65536];
  vigil::proto::JsonWriter w(buf, sizeof buf);
  vigil::proto::WriteTaskJson(w, info);
  Check(w.depth() == 0);
  Check(w.view().starts_with("\"task\":{") && w.view().ends_with("}"));
  // A small buffer drops members but keeps the document balanced.
  char small[200];
  vigil::proto::JsonWriter s(small, sizeof small);
  vigil::proto::WriteTaskJson(s, info);
  Check(s.depth() == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using vigil::proto::TaskParseStatus;
  const std::span<const uint8_t> in(data, size);

  static vigil::proto::JobInfo job;
  vigil::proto::ParseJobFile(in, &job);
  if (size < 68) Check(job.status == TaskParseStatus::kInvalid && !job.fixed_complete);
  if (job.status != TaskParseStatus::kOk) Check(job.reason != nullptr);
  Check(job.application.len <= 512 && job.parameters.len <= 1024 &&
        job.working_directory.len <= 256 && job.author.len <= 256 && job.comment.len <= 512);
  Check(job.triggers_read <= vigil::proto::kTaskMaxTriggers &&
        job.triggers_read <= job.trigger_count);
  // Every trigger read took 48 bytes of the input.
  Check(size_t{job.triggers_read} * 48 <= size);
  for (size_t i = 0; i < job.triggers_read; ++i) CheckTrigger(job.triggers[i]);
  WriteAndCheck(job);

  static vigil::proto::TaskXmlInfo xml;
  for (bool utf16 : {true, false}) {
    vigil::proto::ParseTaskXml(in, utf16, &xml);
    if (xml.status != TaskParseStatus::kOk) Check(xml.reason != nullptr);
    Check(xml.triggers_read <= vigil::proto::kTaskMaxTriggers &&
          xml.triggers_read <= xml.trigger_count);
    Check(xml.execs_read <= vigil::proto::kTaskMaxExecActions && xml.execs_read <= xml.exec_count &&
          xml.exec_count <= xml.actions_count);
    Check(xml.author.len <= 256 && xml.description.len <= 512 && xml.user_id.len <= 256);
    for (size_t i = 0; i < xml.execs_read; ++i) {
      Check(xml.execs[i].command.len <= 512 && xml.execs[i].arguments.len <= 1024);
    }
    for (size_t i = 0; i < xml.triggers_read; ++i) CheckTrigger(xml.triggers[i]);
    WriteAndCheck(xml);
  }
  return 0;
}
