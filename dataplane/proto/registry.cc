#include "dataplane/proto/registry.h"

#include <new>

#include "dataplane/proto/dcerpc.h"
#include "dataplane/proto/dns.h"
#include "dataplane/proto/http.h"
#include "dataplane/proto/krb5.h"
#include "dataplane/proto/smb.h"
#include "dataplane/proto/tls.h"

namespace vigil::proto {
namespace {

template <class T>
AppParser* Construct(void* memory) noexcept {
  return new (memory) T();
}

template <class T>
constexpr ParserKind Kind(AppProto proto, const char* name, ProbeFn tcp, ProbeFn udp,
                          std::initializer_list<uint16_t> ports, uint32_t pool) {
  ParserKind k{proto, name, tcp, udp, {0, 0, 0, 0}, sizeof(T), alignof(T), &Construct<T>, pool};
  size_t i = 0;
  for (uint16_t p : ports) k.ports[i++] = p;
  return k;
}

// Order matters only among kinds that could claim the same bytes: the more specific first.
const ParserKind kKinds[] = {
    {AppProto::kUnknown, nullptr, nullptr, nullptr, {}, 0, 1, nullptr, 0},  // placeholder
    // Pool sizes per worker, by parser size: SMB ~72 KiB, HTTP ~37 KiB (21 KiB of it the
    // signature engine's buffers), TLS ~12.5 KiB, DCE-RPC and DNS ~5.5 KiB, Kerberos ~4 KiB
    // (configurable under app_layer.parsers).
    Kind<SmbParser>(AppProto::kSmb, "smb", &SmbParser::Probe, nullptr, {445, 139}, 256),
    Kind<DcerpcParser>(AppProto::kDcerpc, "dcerpc", &DcerpcParser::Probe, nullptr, {135}, 1024),
    Kind<DnsParser>(AppProto::kDns, "dns", &DnsParser::ProbeTcp, &DnsParser::ProbeUdp, {53}, 4096),
    Kind<HttpParser>(AppProto::kHttp, "http", &HttpParser::Probe, nullptr, {80, 8080, 8000, 3128},
                     2048),
    Kind<TlsParser>(AppProto::kTls, "tls", &TlsParser::Probe, nullptr, {443, 8443, 636, 993}, 2048),
    Kind<Krb5Parser>(AppProto::kKrb5, "krb5", &Krb5Parser::Probe, &Krb5Parser::Probe, {88}, 1024),
};

}  // namespace

std::span<const ParserKind> ParserKinds() noexcept {
  // The placeholder entry keeps the array non-empty while no parser is registered.
  return std::span<const ParserKind>(kKinds).subspan(1);
}

const ParserKind* FindParserKind(AppProto proto) noexcept {
  for (const ParserKind& k : ParserKinds()) {
    if (k.proto == proto) return &k;
  }
  return nullptr;
}

}  // namespace vigil::proto
