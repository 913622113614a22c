#include "dataplane/proto/registry.h"

#include <new>

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
