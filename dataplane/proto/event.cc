#include "dataplane/proto/event.h"

namespace vigil::proto {

const char* AppProtoName(AppProto p) noexcept {
  switch (p) {
    case AppProto::kSmb:
      return "smb";
    case AppProto::kDcerpc:
      return "dcerpc";
    case AppProto::kKrb5:
      return "krb5";
    case AppProto::kDns:
      return "dns";
    case AppProto::kHttp:
      return "http";
    case AppProto::kTls:
      return "tls";
    case AppProto::kFailed:
      return "failed";
    case AppProto::kUnknown:
    case AppProto::kCount:
      break;
  }
  return "unknown";
}

void EmitAnomaly(EventSink& sink, Direction dir, AppProto proto, std::string_view event) noexcept {
  JsonWriter& w = sink.Begin("anomaly", dir);
  w.ObjectBegin("anomaly");
  w.Str("app_proto", AppProtoName(proto));
  w.Str("type", "applayer");
  w.Str("event", event);
  w.Str("layer", "proto_parser");
  w.ObjectEnd();
  sink.message().Append("ANOMALY ").Append(AppProtoName(proto)).Append(' ').Append(event);
  sink.Commit();
}

}  // namespace vigil::proto
