// Kerberos encryption types (RFC 3961 section 8, and the Windows values): their names in
// Suricata's spelling and the weak test, shared by the rule language (krb5.ticket_encryption)
// and the Kerberos parser's events (dataplane/proto/krb5.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>

namespace vigil::rules {

// Names from string literals: data() is NUL-terminated.
inline constexpr std::pair<int32_t, std::string_view> kKrb5Etypes[] = {
    {1, "des-cbc-crc"},
    {2, "des-cbc-md4"},
    {3, "des-cbc-md5"},
    {5, "des3-cbc-md5"},
    {7, "des3-cbc-sha1"},
    {9, "dsaWithSHA1-CmsOID"},
    {10, "md5WithRSAEncryption-CmsOID"},
    {11, "sha1WithRSAEncryption-CmsOID"},
    {12, "rc2CBC-EnvOID"},
    {13, "rsaEncryption-EnvOID"},
    {14, "rsaES-OAEP-ENV-OID"},
    {15, "des-ede3-cbc-Env-OID"},
    {16, "des3-cbc-sha1-kd"},
    {17, "aes128-cts-hmac-sha1-96"},
    {18, "aes256-cts-hmac-sha1-96"},
    {19, "aes128-cts-hmac-sha256-128"},
    {20, "aes256-cts-hmac-sha384-192"},
    {23, "rc4-hmac"},
    {24, "rc4-hmac-exp"},
    {25, "camellia128-cts-cmac"},
    {26, "camellia256-cts-cmac"},
    {65, "subkey-keymaterial"},
    {-128, "rc4-md4"},
    {-129, "rc4-plain2"},
    {-130, "rc4-lm"},
    {-131, "rc4-sha"},
    {-132, "des-plain"},
    {-133, "rc4-hmac-OLD"},
    {-134, "rc4-plain-OLD"},
    {-135, "rc4-hmac-OLD-exp"},
    {-136, "rc4-plain-OLD-exp"},
    {-140, "rc4-plain"},
    {-141, "rc4-plain-exp"},
};

// The etype's name, nullptr when it has none.
inline const char* Krb5EtypeName(int32_t etype) noexcept {
  for (const auto& [v, name] : kKrb5Etypes) {
    if (v == etype) return name.data();
  }
  return nullptr;
}

// The etype a name stands for (exact spelling, as Suricata prints it).
inline std::optional<int32_t> Krb5EtypeByName(std::string_view name) noexcept {
  for (const auto& [v, n] : kKrb5Etypes) {
    if (n == name) return v;
  }
  return std::nullopt;
}

// Everything but the AES and Camellia etypes: Suricata's weak-encryption test.
inline bool Krb5EtypeIsWeak(int32_t etype) noexcept {
  switch (etype) {
    case 17:
    case 18:
    case 19:
    case 20:
    case 25:
    case 26:
      return false;
    default:
      return true;
  }
}

}  // namespace vigil::rules
