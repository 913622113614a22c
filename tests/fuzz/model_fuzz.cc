// libFuzzer target for the model loader: any text handed to ModelSet::ParseModel must give a
// model or errors, never a crash, a hang or an exception. Every error must name the file and a
// position inside the text (or 0 when there is none). A model that loads is compiled into an
// Engine (one Hyperscan database) and run over a few fixed events, so that whatever the loader
// accepts the engine can evaluate.
//
// Built and run by scripts/fuzz.sh (clang, -fsanitize=fuzzer,address,undefined).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "control/model/model.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

int Lines(std::string_view text) {
  int n = 1;
  for (char c : text) n += c == '\n';
  return n;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using vigil::ctl::model::Engine;
  using vigil::ctl::model::LoadError;
  using vigil::ctl::model::ModelSet;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<LoadError> errors;
  auto model = ModelSet::ParseModel(text, "fuzz.yaml", &errors);
  Check(model.has_value() == errors.empty());
  for (const LoadError& e : errors) {
    Check(e.file == "fuzz.yaml");
    Check(e.line >= 0 && e.line <= Lines(text) + 1);
    Check(e.column >= 0);
    Check(!e.message.empty());
    Check(!e.ToString().empty());
  }
  if (!model) return 0;
  Check(!model->name.empty() && !model->components.empty());
  for (const auto& c : model->components) Check(c.query.has_value());
  std::vector<vigil::ctl::model::Model> models{std::move(*model)};
  auto set = ModelSet::FromModels(std::move(models), nullptr);
  Check(set.has_value());
  Engine engine(*set);
  const nlohmann::json events[] = {
      {{"event_type", "smb"},
       {"src_ip", "10.0.0.1"},
       {"dest_ip", "10.0.0.5"},
       {"flow_id", 1},
       {"smb", {{"command", "SMB2_COMMAND_CREATE"}, {"filename", "atsvc"}}},
       {"message", "SMB2 CREATE success \\\\10.0.0.5\\IPC$ atsvc (pipe)"}},
      {{"event_type", "dns"},
       {"src_ip", "10.0.0.1"},
       {"dest_ip", "10.0.0.53"},
       {"flow_id", 2},
       {"dns", {{"type", "request"}, {"queries", {{{"rrname", "a.example.top"}}}}}},
       {"message", "DNS QUERY A a.example.top"}},
      {{"event_type", "krb5"},
       {"src_ip", "fe80::1"},
       {"dest_ip", "fe80::2"},
       {"message", "KRB5 TGS-REP u@R for MSSQLSvc/db rc4-hmac (weak)"}},
  };
  int64_t ts = 1500000000LL * 1000000000LL;
  for (int round = 0; round < 3; ++round) {
    for (const auto& e : events) {
      ++ts;
      for (const auto& f : engine.OnEvent(e, ts, ts)) {
        Check(!f.trigger_event_ids.empty());
        Check(f.window_from_ns <= f.window_to_ns);
      }
    }
  }
  return 0;
}
