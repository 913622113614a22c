// libFuzzer target for the frame decoder: any input must decode without a memory error, and every
// offset/length the decoder reports must lie inside the input.
//
// Built and run by scripts/fuzz.sh (clang, -fsanitize=fuzzer,address,undefined).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>

#include "dataplane/packet/decoder.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using vigil::dp::DecodeClass;
  using vigil::dp::PacketMeta;

  PacketMeta m;
  std::memset(&m, 0xA5, sizeof(m));  // Decode must overwrite everything
  const DecodeClass cls = vigil::dp::Decode(std::span<const uint8_t>(data, size), &m);

  Check(m.l3_offset <= size);
  Check(m.l4_offset <= size);
  Check(static_cast<size_t>(m.payload_offset) + m.payload_len <= size);
  Check(static_cast<size_t>(m.l3_offset) + m.ip_len <= size);
  Check(m.vlan_count <= vigil::dp::kMaxVlans);
  for (int i = 0; i < m.vlan_count; ++i) Check(m.vlan[i] <= 0x0FFF);
  Check(!m.first_fragment || m.fragment);

  constexpr uint32_t kErrors = ~(static_cast<uint32_t>(vigil::dp::kAnomEthPadding) |
                                 static_cast<uint32_t>(vigil::dp::kAnomVlanTooDeep));
  switch (cls) {
    case DecodeClass::kL2:
      Check(m.ip_version == 0 && m.ip_len == 0 && m.l4_offset == 0);
      Check((m.anomalies & kErrors) == 0);
      break;
    case DecodeClass::kL3:
    case DecodeClass::kL4: {
      Check(m.ip_version == 4 || m.ip_version == 6);
      Check((m.anomalies & kErrors) == 0);
      // Everything decoded lies within the IP datagram.
      const size_t ip_end = static_cast<size_t>(m.l3_offset) + m.ip_len;
      Check(m.payload_offset >= m.l3_offset);
      Check(static_cast<size_t>(m.payload_offset) + m.payload_len <= ip_end);
      if (cls == DecodeClass::kL3) {
        Check(m.l4_offset == 0 && m.src_port == 0 && m.dst_port == 0);
      } else {
        Check(m.l4_offset >= m.l3_offset + (m.ip_version == 4 ? 20 : 40));
        Check(m.l4_offset <= m.payload_offset);
      }
      break;
    }
    case DecodeClass::kMalformed:
      Check((m.anomalies & kErrors) != 0);
      break;
    default:
      std::abort();
  }

  // Deterministic and independent of what *meta held before.
  PacketMeta again;
  std::memset(&again, 0x5A, sizeof(again));
  Check(vigil::dp::Decode(std::span<const uint8_t>(data, size), &again) == cls);
  // Decode memsets the whole struct, padding included, so bytes compare.
  Check(std::memcmp(&again, &m, sizeof(m)) == 0);  // NOLINT(bugprone-suspicious-memory-comparison)
  return 0;
}
