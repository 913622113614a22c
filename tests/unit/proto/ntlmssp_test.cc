// NTLMSSP decoding and wording: the three messages of an SMB2 session setup from
// suricata-verify (smb2-ntlmssp-order, smb2-ntlmssp-negotiateflags) and crafted messages.
#include "dataplane/proto/ntlmssp.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace vigil::proto {
namespace {

using Bytes = std::vector<uint8_t>;

// SPNEGO-wrapped security blobs as captured; the tests cut them at "NTLMSSP\0".
const Bytes kOrderNegotiateBlob = {
    0x60, 0x48, 0x06, 0x06, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x02, 0xa0, 0x3e, 0x30, 0x3c, 0xa0,
    0x0e, 0x30, 0x0c, 0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a,
    0xa2, 0x2a, 0x04, 0x28, 0x4e, 0x54, 0x4c, 0x4d, 0x53, 0x53, 0x50, 0x00, 0x01, 0x00, 0x00,
    0x00, 0x97, 0x82, 0x08, 0xa2, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06, 0x00, 0x71, 0x17, 0x00, 0x00, 0x00, 0x0f,
};

const Bytes kOrderChallengeBlob = {
    0xa1, 0x81, 0xfc, 0x30, 0x81, 0xf9, 0xa0, 0x03, 0x0a, 0x01, 0x01, 0xa1, 0x0c, 0x06, 0x0a, 0x2b,
    0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a, 0xa2, 0x81, 0xe3, 0x04, 0x81, 0xe0, 0x4e,
    0x54, 0x4c, 0x4d, 0x53, 0x53, 0x50, 0x00, 0x02, 0x00, 0x00, 0x00, 0x0e, 0x00, 0x0e, 0x00, 0x38,
    0x00, 0x00, 0x00, 0x15, 0x82, 0x89, 0xa2, 0xf3, 0xd5, 0xab, 0x7a, 0x0d, 0xab, 0x57, 0xc4, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x9a, 0x00, 0x9a, 0x00, 0x46, 0x00, 0x00, 0x00, 0x06,
    0x00, 0x71, 0x17, 0x00, 0x00, 0x00, 0x0f, 0x43, 0x00, 0x4f, 0x00, 0x4e, 0x00, 0x54, 0x00, 0x4f,
    0x00, 0x53, 0x00, 0x4f, 0x00, 0x02, 0x00, 0x0e, 0x00, 0x43, 0x00, 0x4f, 0x00, 0x4e, 0x00, 0x54,
    0x00, 0x4f, 0x00, 0x53, 0x00, 0x4f, 0x00, 0x01, 0x00, 0x12, 0x00, 0x53, 0x00, 0x45, 0x00, 0x52,
    0x00, 0x56, 0x00, 0x45, 0x00, 0x52, 0x00, 0x30, 0x00, 0x30, 0x00, 0x32, 0x00, 0x04, 0x00, 0x16,
    0x00, 0x63, 0x00, 0x6f, 0x00, 0x6e, 0x00, 0x74, 0x00, 0x6f, 0x00, 0x73, 0x00, 0x6f, 0x00, 0x2e,
    0x00, 0x63, 0x00, 0x6f, 0x00, 0x6d, 0x00, 0x03, 0x00, 0x2a, 0x00, 0x53, 0x00, 0x45, 0x00, 0x52,
    0x00, 0x56, 0x00, 0x45, 0x00, 0x52, 0x00, 0x30, 0x00, 0x30, 0x00, 0x32, 0x00, 0x2e, 0x00, 0x63,
    0x00, 0x6f, 0x00, 0x6e, 0x00, 0x74, 0x00, 0x6f, 0x00, 0x73, 0x00, 0x6f, 0x00, 0x2e, 0x00, 0x63,
    0x00, 0x6f, 0x00, 0x6d, 0x00, 0x05, 0x00, 0x16, 0x00, 0x63, 0x00, 0x6f, 0x00, 0x6e, 0x00, 0x74,
    0x00, 0x6f, 0x00, 0x73, 0x00, 0x6f, 0x00, 0x2e, 0x00, 0x63, 0x00, 0x6f, 0x00, 0x6d, 0x00, 0x07,
    0x00, 0x08, 0x00, 0x58, 0xdf, 0x7b, 0x2f, 0x54, 0xb4, 0xcc, 0x01, 0x00, 0x00, 0x00, 0x00,
};

const Bytes kOrderAuthBlob = {
    0xa1, 0x82, 0x01, 0xe7, 0x30, 0x82, 0x01, 0xe3, 0xa0, 0x03, 0x0a, 0x01, 0x01, 0xa2, 0x82, 0x01,
    0xc6, 0x04, 0x82, 0x01, 0xc2, 0x4e, 0x54, 0x4c, 0x4d, 0x53, 0x53, 0x50, 0x00, 0x03, 0x00, 0x00,
    0x00, 0x18, 0x00, 0x18, 0x00, 0x90, 0x00, 0x00, 0x00, 0x0a, 0x01, 0x0a, 0x01, 0xa8, 0x00, 0x00,
    0x00, 0x0e, 0x00, 0x0e, 0x00, 0x58, 0x00, 0x00, 0x00, 0x10, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00,
    0x00, 0x1a, 0x00, 0x1a, 0x00, 0x66, 0x00, 0x00, 0x00, 0x10, 0x00, 0x10, 0x00, 0xb2, 0x01, 0x00,
    0x00, 0x15, 0x82, 0x88, 0xa2, 0x06, 0x00, 0x71, 0x17, 0x00, 0x00, 0x00, 0x0f, 0xec, 0xac, 0xe0,
    0x1b, 0x09, 0x1d, 0xd7, 0x87, 0x58, 0xe4, 0x9f, 0xd8, 0x85, 0x62, 0x80, 0x44, 0x43, 0x00, 0x4f,
    0x00, 0x4e, 0x00, 0x54, 0x00, 0x4f, 0x00, 0x53, 0x00, 0x4f, 0x00, 0x41, 0x00, 0x64, 0x00, 0x6d,
    0x00, 0x69, 0x00, 0x6e, 0x00, 0x69, 0x00, 0x73, 0x00, 0x74, 0x00, 0x72, 0x00, 0x61, 0x00, 0x74,
    0x00, 0x6f, 0x00, 0x72, 0x00, 0x53, 0x00, 0x45, 0x00, 0x52, 0x00, 0x56, 0x00, 0x45, 0x00, 0x52,
    0x00, 0x30, 0x00, 0x31, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0f, 0x84, 0x2a,
    0x7e, 0x66, 0xfa, 0x9a, 0x6b, 0x76, 0xee, 0x3f, 0xc9, 0x6a, 0x2f, 0xa7, 0xf6, 0x01, 0x01, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x58, 0xdf, 0x7b, 0x2f, 0x54, 0xb4, 0xcc, 0x01, 0x98, 0x93, 0xfd,
    0x6e, 0xaa, 0xcc, 0xc5, 0x74, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x0e, 0x00, 0x43, 0x00, 0x4f,
    0x00, 0x4e, 0x00, 0x54, 0x00, 0x4f, 0x00, 0x53, 0x00, 0x4f, 0x00, 0x01, 0x00, 0x12, 0x00, 0x53,
    0x00, 0x45, 0x00, 0x52, 0x00, 0x56, 0x00, 0x45, 0x00, 0x52, 0x00, 0x30, 0x00, 0x30, 0x00, 0x32,
    0x00, 0x04, 0x00, 0x16, 0x00, 0x63, 0x00, 0x6f, 0x00, 0x6e, 0x00, 0x74, 0x00, 0x6f, 0x00, 0x73,
    0x00, 0x6f, 0x00, 0x2e, 0x00, 0x63, 0x00, 0x6f, 0x00, 0x6d, 0x00, 0x03, 0x00, 0x2a, 0x00, 0x53,
    0x00, 0x45, 0x00, 0x52, 0x00, 0x56, 0x00, 0x45, 0x00, 0x52, 0x00, 0x30, 0x00, 0x30, 0x00, 0x32,
    0x00, 0x2e, 0x00, 0x63, 0x00, 0x6f, 0x00, 0x6e, 0x00, 0x74, 0x00, 0x6f, 0x00, 0x73, 0x00, 0x6f,
    0x00, 0x2e, 0x00, 0x63, 0x00, 0x6f, 0x00, 0x6d, 0x00, 0x05, 0x00, 0x16, 0x00, 0x63, 0x00, 0x6f,
    0x00, 0x6e, 0x00, 0x74, 0x00, 0x6f, 0x00, 0x73, 0x00, 0x6f, 0x00, 0x2e, 0x00, 0x63, 0x00, 0x6f,
    0x00, 0x6d, 0x00, 0x07, 0x00, 0x08, 0x00, 0x58, 0xdf, 0x7b, 0x2f, 0x54, 0xb4, 0xcc, 0x01, 0x06,
    0x00, 0x04, 0x00, 0x02, 0x00, 0x00, 0x00, 0x08, 0x00, 0x30, 0x00, 0x30, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x30, 0x00, 0x00, 0xa7, 0x4a, 0xaf, 0xec, 0xff,
    0x55, 0xa2, 0xe6, 0xa2, 0x32, 0x9b, 0xd6, 0x58, 0x8c, 0x79, 0x64, 0xed, 0xac, 0x73, 0x78, 0xe2,
    0xeb, 0x62, 0x89, 0xc1, 0xb6, 0x79, 0xae, 0xf6, 0xb8, 0x0f, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x52, 0xf6, 0x55, 0xe3, 0xbe, 0x2e, 0x92, 0x8d, 0xa1,
    0x58, 0x06, 0xd7, 0xd5, 0x28, 0xaf, 0x4f, 0xa3, 0x12, 0x04, 0x10, 0x01, 0x00, 0x00, 0x00, 0x65,
    0x98, 0x3b, 0x70, 0xa7, 0x09, 0x7b, 0x93, 0x00, 0x00, 0x00, 0x00,
};

const Bytes kAnonymousAuthBlob = {
    0xa1, 0x81, 0xa9, 0x30, 0x81, 0xa6, 0xa0, 0x03, 0x0a, 0x01, 0x01, 0xa2, 0x81, 0x8a, 0x04, 0x81,
    0x87, 0x4e, 0x54, 0x4c, 0x4d, 0x53, 0x53, 0x50, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01,
    0x00, 0x76, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x77, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x58, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x58, 0x00, 0x00, 0x00, 0x1e, 0x00, 0x1e,
    0x00, 0x58, 0x00, 0x00, 0x00, 0x10, 0x00, 0x10, 0x00, 0x77, 0x00, 0x00, 0x00, 0x15, 0x8a, 0x88,
    0xe2, 0x0a, 0x00, 0x5a, 0x29, 0x00, 0x00, 0x00, 0x0f, 0x4e, 0x2c, 0x41, 0xe3, 0x36, 0xa1, 0x4d,
    0x9d, 0x71, 0xc5, 0x12, 0x92, 0xa4, 0xc8, 0xc9, 0xf2, 0x44, 0x00, 0x45, 0x00, 0x53, 0x00, 0x4b,
    0x00, 0x54, 0x00, 0x4f, 0x00, 0x50, 0x00, 0x2d, 0x00, 0x56, 0x00, 0x31, 0x00, 0x46, 0x00, 0x41,
    0x00, 0x30, 0x00, 0x55, 0x00, 0x51, 0x00, 0x00, 0x2f, 0x09, 0x13, 0x2b, 0x81, 0xa6, 0x15, 0x14,
    0xb9, 0x11, 0x8b, 0xe0, 0x00, 0x88, 0xd7, 0x1f, 0xa3, 0x12, 0x04, 0x10, 0x01, 0x00, 0x00, 0x00,
    0xb5, 0xef, 0x9d, 0xa6, 0x9d, 0x6d, 0x12, 0x68, 0x00, 0x00, 0x00, 0x00,
};

std::span<const uint8_t> Ntlm(const Bytes& blob) {
  static const uint8_t kSig[8] = {'N', 'T', 'L', 'M', 'S', 'S', 'P', 0};
  const auto it = std::search(blob.begin(), blob.end(), kSig, kSig + 8);
  return {blob.data() + (it - blob.begin()), static_cast<size_t>(blob.end() - it)};
}

Bytes Utf16(const std::string& s) {
  Bytes out;
  for (const char c : s) out.insert(out.end(), {static_cast<uint8_t>(c), 0});
  return out;
}

void PutU16(Bytes& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v);
  b[at + 1] = static_cast<uint8_t>(v >> 8);
}
void PutU32(Bytes& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<uint8_t>(v >> (8 * i));
}

constexpr uint32_t kUnicode = 0x00000001;
constexpr uint32_t kVersionFlag = 0x02000000;

// An AUTHENTICATE message: fixed part, optional Version, then payloads in the order domain, user,
// host, LM, NT.
Bytes Auth(uint32_t flags, const Bytes& domain, const Bytes& user, const Bytes& host, size_t lm_len,
           size_t nt_len, bool version) {
  Bytes b(64 + (version ? 8 : 0), 0);
  const char* sig = "NTLMSSP";
  std::copy(sig, sig + 8, b.begin());
  b[8] = 3;
  PutU32(b, 60, flags);
  if (version) {
    b[64] = 6;
    b[65] = 1;
    PutU16(b, 66, 7601);
    b[71] = 15;
  }
  auto add = [&b](size_t desc, const Bytes& v) {
    PutU16(b, desc, static_cast<uint16_t>(v.size()));
    PutU16(b, desc + 2, static_cast<uint16_t>(v.size()));
    PutU32(b, desc + 4, static_cast<uint32_t>(b.size()));
    b.insert(b.end(), v.begin(), v.end());
  };
  add(28, domain);
  add(36, user);
  add(44, host);
  add(12, Bytes(lm_len, 0x11));
  add(20, Bytes(nt_len, 0x22));
  return b;
}

std::string Json(const NtlmsspMessage& m) {
  char buf[1024];
  JsonWriter w(buf, sizeof buf);
  WriteNtlmsspJson(m, w);
  return std::string(w.view());
}
std::string Text(const NtlmsspMessage& m) {
  TextBuilder t;
  AppendNtlmsspMessage(m, t);
  return std::string(t.view());
}

TEST(Ntlmssp, RealNegotiate) {
  NtlmsspMessage m;
  ASSERT_TRUE(ParseNtlmssp(Ntlm(kOrderNegotiateBlob), &m));
  EXPECT_EQ(m.type, NtlmsspType::kNegotiate);
  EXPECT_EQ(m.flags, 0xa2088297u);
  ASSERT_TRUE(m.has_version);
  EXPECT_EQ(m.version_major, 6);
  EXPECT_EQ(m.version_minor, 0);
  EXPECT_EQ(m.version_build, 6001);
  EXPECT_EQ(m.ntlm_revision, 15);
  EXPECT_EQ(Json(m), "");  // Suricata logs AUTHENTICATE data only
  EXPECT_EQ(Text(m), "NTLM NEGOTIATE");
}

TEST(Ntlmssp, RealChallenge) {
  NtlmsspMessage m;
  ASSERT_TRUE(ParseNtlmssp(Ntlm(kOrderChallengeBlob), &m));
  EXPECT_EQ(m.type, NtlmsspType::kChallenge);
  EXPECT_TRUE(m.unicode);
  EXPECT_EQ(m.target_name.view(), "CONTOSO");
  const uint8_t want[8] = {0xf3, 0xd5, 0xab, 0x7a, 0x0d, 0xab, 0x57, 0xc4};
  EXPECT_TRUE(std::equal(want, want + 8, m.server_challenge));
  EXPECT_TRUE(m.has_version);
  EXPECT_EQ(m.version_build, 6001);
  EXPECT_EQ(Text(m), "NTLM CHALLENGE CONTOSO");
  // TargetInfo: NbDomain, NbComputer, DnsDomain, DnsComputer, DnsTree, Timestamp, EOL.
  EXPECT_TRUE(m.has_target_info);
  EXPECT_FALSE(m.target_info_truncated);
  EXPECT_EQ(m.nb_domain_name.view(), "CONTOSO");
  EXPECT_EQ(m.nb_computer_name.view(), "SERVER002");
  EXPECT_EQ(m.dns_domain_name.view(), "contoso.com");
  EXPECT_EQ(m.dns_computer_name.view(), "SERVER002.contoso.com");
  EXPECT_EQ(m.dns_tree_name.view(), "contoso.com");
  EXPECT_EQ(m.server_time, 0x01ccb4542f7bdf58u);
  EXPECT_EQ(Json(m),
            R"("target_name":"CONTOSO","server_nb_computer_name":"SERVER002",)"
            R"("server_nb_domain_name":"CONTOSO",)"
            R"("server_dns_computer_name":"SERVER002.contoso.com",)"
            R"("server_dns_domain_name":"contoso.com","server_dns_tree_name":"contoso.com",)"
            R"("server_time":"2011-12-06T20:18:15.3801560",)"
            R"("version":"6.0 build 6001 rev 15")");
}

// Byte-wise append (GCC 12 gives false -Wstringop-overflow warnings on vector range inserts).
void Append(Bytes& b, const Bytes& x) {
  for (const uint8_t v : x) b.push_back(v);
}

// A CHALLENGE: fixed 48 bytes (no Version), target name, then `info` as TargetInfo whose
// declared length is `info_len` (the real length when 0xffff).
Bytes Challenge(uint32_t flags, const Bytes& target, const Bytes& info,
                uint32_t info_len = 0xffff) {
  Bytes b(48, 0);
  const char* sig = "NTLMSSP";
  std::copy(sig, sig + 8, b.begin());
  b[8] = 2;
  PutU32(b, 20, flags);
  PutU16(b, 12, static_cast<uint16_t>(target.size()));
  PutU16(b, 14, static_cast<uint16_t>(target.size()));
  PutU32(b, 16, 48);
  Append(b, target);
  const uint16_t len = static_cast<uint16_t>(info_len == 0xffff ? info.size() : info_len);
  PutU16(b, 40, len);
  PutU16(b, 42, len);
  PutU32(b, 44, static_cast<uint32_t>(b.size()));
  Append(b, info);
  return b;
}

Bytes AvPair(uint16_t id, const Bytes& value) {
  Bytes b = {static_cast<uint8_t>(id), static_cast<uint8_t>(id >> 8),
             static_cast<uint8_t>(value.size()), static_cast<uint8_t>(value.size() >> 8)};
  Append(b, value);
  return b;
}

Bytes Cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const Bytes& p : parts) Append(out, p);
  return out;
}

// Zeek's ntlm-unterminated-av-sequence.pcap, frame 5 (a DCE-RPC bind_ack auth verifier): the
// TargetInfo field says 36 bytes at offset 60, the message ends 32 bytes in, before MsvAvEOL.
// Zeek logs server_nb_computer_name SATURN (and an "AV Pair loop underflow"); Wireshark shows
// both pairs.
TEST(Ntlmssp, UnterminatedTargetInfoIsDecodedAndFlagged) {
  const Bytes msg = {
      0x4e, 0x54, 0x4c, 0x4d, 0x53, 0x53, 0x50, 0x00, 0x02, 0x00, 0x00, 0x00, 0x0c, 0x00,
      0x0c, 0x00, 0x30, 0x00, 0x00, 0x00, 0x05, 0x82, 0x89, 0x20, 0xb0, 0x6a, 0x30, 0x6d,
      0x9f, 0xc9, 0xdb, 0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x24, 0x00,
      0x24, 0x00, 0x3c, 0x00, 0x00, 0x00, 0x43, 0x00, 0x4e, 0x00, 0x41, 0x00, 0x4d, 0x00,
      0x49, 0x00, 0x53, 0x00, 0x02, 0x00, 0x0c, 0x00, 0x43, 0x00, 0x4e, 0x00, 0x41, 0x00,
      0x4d, 0x00, 0x49, 0x00, 0x53, 0x00, 0x01, 0x00, 0x0c, 0x00, 0x53, 0x00, 0x41, 0x00,
      0x54, 0x00, 0x55, 0x00, 0x52, 0x00, 0x4e, 0x00,
  };
  NtlmsspMessage m;
  ASSERT_TRUE(ParseNtlmssp(msg, &m));
  EXPECT_EQ(m.type, NtlmsspType::kChallenge);
  EXPECT_EQ(m.target_name.view(), "CNAMIS");
  EXPECT_EQ(m.nb_domain_name.view(), "CNAMIS");
  EXPECT_EQ(m.nb_computer_name.view(), "SATURN");
  EXPECT_TRUE(m.target_info_truncated);
  EXPECT_EQ(Json(m), R"("target_name":"CNAMIS","server_nb_computer_name":"SATURN",)"
                     R"("server_nb_domain_name":"CNAMIS","target_info_truncated":true)");
  EXPECT_EQ(Text(m), "NTLM CHALLENGE CNAMIS");
}

TEST(Ntlmssp, TargetInfoEdgeCases) {
  NtlmsspMessage m;
  const Bytes eol = AvPair(0, {});
  // Terminated list; the values are UTF-16LE even when the message negotiated OEM strings.
  ASSERT_TRUE(
      ParseNtlmssp(Challenge(0x2, Bytes{'W', 'G'},
                             Cat({AvPair(1, Utf16("PC1")), AvPair(5, Utf16("f.test")), eol})),
                   &m));
  EXPECT_EQ(m.target_name.view(), "WG");
  EXPECT_EQ(m.nb_computer_name.view(), "PC1");
  EXPECT_EQ(m.dns_tree_name.view(), "f.test");
  EXPECT_FALSE(m.target_info_truncated);
  // Only EOL (Zeek's ntlm-empty-av-sequence): nothing to log, not truncated.
  ASSERT_TRUE(ParseNtlmssp(Challenge(kUnicode, Utf16("D"), eol), &m));
  EXPECT_TRUE(m.has_target_info);
  EXPECT_FALSE(m.target_info_truncated);
  EXPECT_EQ(Json(m), R"("target_name":"D")");
  // No TargetInfo at all.
  ASSERT_TRUE(ParseNtlmssp(Challenge(kUnicode, Utf16("D"), {}), &m));
  EXPECT_FALSE(m.has_target_info);
  EXPECT_FALSE(m.target_info_truncated);
  // A list without EOL that fills its field exactly.
  ASSERT_TRUE(ParseNtlmssp(Challenge(kUnicode, Utf16("D"), AvPair(3, Utf16("h.d"))), &m));
  EXPECT_EQ(m.dns_computer_name.view(), "h.d");
  EXPECT_TRUE(m.target_info_truncated);
  // A pair whose length runs past the field (which ends inside the message): cut there.
  ASSERT_TRUE(
      ParseNtlmssp(Challenge(kUnicode, Utf16("D"),
                             Cat({AvPair(2, Utf16("DOM")), AvPair(1, Utf16("PC")), eol}), 14),
                   &m));
  EXPECT_EQ(m.nb_domain_name.view(), "DOM");
  EXPECT_TRUE(m.nb_computer_name.empty());
  EXPECT_TRUE(m.target_info_truncated);
  // Field offset past the end, and a half pair header.
  Bytes b = Challenge(kUnicode, Utf16("D"), Cat({AvPair(2, Utf16("DOM")), eol}));
  PutU32(b, 44, 0xfffffff0);
  ASSERT_TRUE(ParseNtlmssp(b, &m));
  EXPECT_TRUE(m.target_info_truncated);
  EXPECT_TRUE(m.nb_domain_name.empty());
  ASSERT_TRUE(ParseNtlmssp(Challenge(kUnicode, Utf16("D"), Bytes{7, 0}), &m));
  EXPECT_TRUE(m.target_info_truncated);
  // A timestamp of the wrong size is ignored; unknown ids are skipped.
  ASSERT_TRUE(ParseNtlmssp(Challenge(kUnicode, Utf16("D"),
                                     Cat({AvPair(7, Bytes(4, 1)), AvPair(0x99, Bytes(3, 1)),
                                          AvPair(4, Utf16("d")), eol})),
                           &m));
  EXPECT_EQ(m.server_time, 0u);
  EXPECT_EQ(m.dns_domain_name.view(), "d");
  EXPECT_FALSE(m.target_info_truncated);
  // Long names are cut and flagged like the other strings.
  std::string long_name(200, 'n');
  ASSERT_TRUE(
      ParseNtlmssp(Challenge(kUnicode, Utf16("D"),
                             Cat({AvPair(1, Utf16(long_name)), AvPair(3, Utf16(long_name)), eol})),
                   &m));
  EXPECT_EQ(m.nb_computer_name.len, 64);
  EXPECT_TRUE(m.nb_computer_name.truncated);
  EXPECT_EQ(m.dns_computer_name.len, 128);
  EXPECT_TRUE(m.dns_computer_name.truncated);
}

TEST(Ntlmssp, FiletimeText) {
  char out[kFiletimeTextLen + 1];
  EXPECT_EQ(FormatFiletime(0, out), kFiletimeTextLen);
  EXPECT_STREQ(out, "1601-01-01T00:00:00.0000000");
  EXPECT_EQ(FormatFiletime(116444736000000000ull, out), kFiletimeTextLen);
  EXPECT_STREQ(out, "1970-01-01T00:00:00.0000000");
  EXPECT_EQ(FormatFiletime(0x01ccb4542f7bdf58ull, out), kFiletimeTextLen);
  EXPECT_STREQ(out, "2011-12-06T20:18:15.3801560");
  // 2000-02-29 (a leap day of a century year divisible by 400) and the last moment of 9999.
  EXPECT_EQ(FormatFiletime(125962560000000001ull, out), kFiletimeTextLen);
  EXPECT_STREQ(out, "2000-02-29T00:00:00.0000001");
  EXPECT_EQ(FormatFiletime(2650467743999999999ull, out), kFiletimeTextLen);
  EXPECT_STREQ(out, "9999-12-31T23:59:59.9999999");
  EXPECT_EQ(FormatFiletime(2650467744000000000ull, out), 0u);
  EXPECT_EQ(FormatFiletime(~0ull, out), 0u);
}

// smb2-ntlmssp-order: the capture was edited to swap the user and host offsets, so the user
// field points at "SERVER01" and the host field at "Administrator". Fields are read by their
// offsets, as Suricata >= 7 does; its test expects exactly this (and flags the odd order).
TEST(Ntlmssp, RealAuthenticateWithSwappedOffsets) {
  NtlmsspMessage m;
  ASSERT_TRUE(ParseNtlmssp(Ntlm(kOrderAuthBlob), &m));
  EXPECT_EQ(m.type, NtlmsspType::kAuthenticate);
  EXPECT_EQ(m.domain.view(), "CONTOSO");
  EXPECT_EQ(m.user.view(), "SERVER01");
  EXPECT_EQ(m.host.view(), "Administrator");
  EXPECT_TRUE(m.unusual_order);
  EXPECT_EQ(m.nt_response_len, 266);
  EXPECT_EQ(m.lm_response_len, 24);
  EXPECT_FALSE(m.anonymous);
  EXPECT_EQ(Json(m), R"("domain":"CONTOSO","user":"SERVER01","host":"Administrator",)"
                     R"("version":"6.0 build 6001 rev 15")");
  EXPECT_EQ(Text(m), "NTLM AUTH CONTOSO\\SERVER01 from Administrator");
}

// smb2-ntlmssp-negotiateflags: an anonymous SMB1 session setup whose flags (0xe2888a15) carry
// NEGOTIATE_VERSION in the top byte.
TEST(Ntlmssp, RealAnonymousAuthenticate) {
  NtlmsspMessage m;
  ASSERT_TRUE(ParseNtlmssp(Ntlm(kAnonymousAuthBlob), &m));
  EXPECT_EQ(m.flags, 0xe2888a15u);
  EXPECT_TRUE(m.anonymous);
  EXPECT_TRUE(m.user.empty());
  EXPECT_EQ(m.host.view(), "DESKTOP-V1FA0UQ");
  EXPECT_FALSE(m.unusual_order);
  EXPECT_EQ(Json(m), R"("domain":"","user":"","host":"DESKTOP-V1FA0UQ",)"
                     R"("version":"10.0 build 10586 rev 15")");
  EXPECT_EQ(Text(m), "NTLM AUTH anonymous from DESKTOP-V1FA0UQ");
}

TEST(Ntlmssp, UnicodeAndOem) {
  NtlmsspMessage m;
  Bytes b = Auth(kUnicode | kVersionFlag, Utf16("CORP"), Utf16("appadmin"), Utf16("AVMGMT01"), 24,
                 200, true);
  ASSERT_TRUE(ParseNtlmssp(b, &m));
  EXPECT_TRUE(m.unicode);
  EXPECT_EQ(Text(m), "NTLM AUTH CORP\\appadmin from AVMGMT01");
  EXPECT_EQ(Json(m), R"("domain":"CORP","user":"appadmin","host":"AVMGMT01",)"
                     R"("version":"6.1 build 7601 rev 15")");
  // OEM: the same names as 8-bit strings, one of them not ASCII.
  b = Auth(0x2, Bytes{'C', 'O', 'R', 'P'}, Bytes{'j', 0xf6, 'r', 'g'}, Bytes{'P', 'C'}, 24, 24,
           false);
  ASSERT_TRUE(ParseNtlmssp(b, &m));
  EXPECT_FALSE(m.unicode);
  EXPECT_FALSE(m.has_version);
  EXPECT_EQ(m.user.view(), std::string("j\xf6rg"));
  EXPECT_EQ(Text(m), "NTLM AUTH CORP\\j\xf6rg from PC NTLMv1");
  EXPECT_EQ(Json(m), R"("domain":"CORP","user":"j\u00f6rg","host":"PC")");
  // Non-ASCII UTF-16 becomes UTF-8.
  const Bytes u = {'J', 0, 0xf6, 0, 0xac, 0x20};  // "Jö€"
  b = Auth(kUnicode, Bytes{}, u, Bytes{}, 0, 24, false);
  ASSERT_TRUE(ParseNtlmssp(b, &m));
  EXPECT_EQ(m.user.view(), "J\xc3\xb6\xe2\x82\xac");
  EXPECT_EQ(Text(m), "NTLM AUTH J\xc3\xb6\xe2\x82\xac NTLMv1");
}

TEST(Ntlmssp, VersionFlagWithoutRoomIsIgnored) {
  // NEGOTIATE_VERSION set, but the first payload starts at 64 where the Version would be.
  NtlmsspMessage m;
  const Bytes b = Auth(kUnicode | kVersionFlag, Utf16("D"), Utf16("U"), Utf16("H"), 0, 30, false);
  ASSERT_TRUE(ParseNtlmssp(b, &m));
  EXPECT_FALSE(m.has_version);
  EXPECT_EQ(m.user.view(), "U");
  EXPECT_EQ(Json(m), R"("domain":"D","user":"U","host":"H")");
}

TEST(Ntlmssp, LongNamesAreCutOnCharacterBoundaries) {
  std::string big;
  Bytes u;
  for (int i = 0; i < 100; ++i) u.insert(u.end(), {0xac, 0x20});  // 100 x U+20AC (3 bytes each)
  NtlmsspMessage m;
  ASSERT_TRUE(ParseNtlmssp(Auth(kUnicode, Bytes{}, u, Bytes{}, 0, 24, false), &m));
  EXPECT_EQ(m.user.len, 126);  // 42 whole characters
  EXPECT_TRUE(m.user.truncated);
  ASSERT_TRUE(ParseNtlmssp(Auth(0, Bytes{}, Bytes(300, 'a'), Bytes{}, 0, 24, false), &m));
  EXPECT_EQ(m.user.len, 128);
  EXPECT_TRUE(m.user.truncated);
}

TEST(Ntlmssp, OutOfRangeFieldsAreRejected) {
  const Bytes good = Auth(kUnicode, Utf16("D"), Utf16("U"), Utf16("H"), 24, 24, false);
  NtlmsspMessage m;
  ASSERT_TRUE(ParseNtlmssp(good, &m));
  for (size_t desc : {12, 20, 28, 36, 44, 52}) {
    Bytes b = good;
    if (desc == 52) PutU16(b, 52, 16);                     // a session key that is not there
    PutU32(b, desc + 4, static_cast<uint32_t>(b.size()));  // starts at the end
    if (desc != 52) PutU16(b, desc, 2);
    EXPECT_FALSE(ParseNtlmssp(b, &m)) << desc;
    EXPECT_EQ(m.type, NtlmsspType::kNone);
    b = good;
    PutU16(b, desc, 4);
    PutU32(b, desc + 4, 0xfffffffe);  // offset + length wraps 32 bits
    EXPECT_FALSE(ParseNtlmssp(b, &m)) << desc;
    b = good;
    PutU16(b, desc, 0xffff);
    EXPECT_FALSE(ParseNtlmssp(b, &m)) << desc;
  }
  // An empty field may carry any offset.
  Bytes b = good;
  PutU16(b, 52, 0);
  PutU32(b, 56, 0xffffffff);
  EXPECT_TRUE(ParseNtlmssp(b, &m));
}

TEST(Ntlmssp, TruncatedAtEveryLength) {
  // The NTLMSSP lengths inside the blobs (the auth blobs end with the SPNEGO mechListMIC).
  const struct {
    const Bytes* blob;
    size_t len;
  } cases[] = {{&kOrderNegotiateBlob, 40},
               {&kOrderChallengeBlob, 224},
               {&kOrderAuthBlob, 450},
               {&kAnonymousAuthBlob, 135}};
  for (const auto& c : cases) {
    const std::span<const uint8_t> full = Ntlm(*c.blob).first(c.len);
    NtlmsspMessage m;
    ASSERT_TRUE(ParseNtlmssp(full, &m));
    size_t accepted = 0;
    for (size_t n = 0; n < full.size(); ++n) accepted += ParseNtlmssp(full.first(n), &m);
    if (c.blob == &kOrderNegotiateBlob) {
      EXPECT_EQ(accepted, full.size() - 16);  // no payloads: parses from 16 bytes on
    } else if (c.blob == &kOrderChallengeBlob) {
      // The TargetInfo (offset 70) is decoded as far as it goes; the target name must be whole.
      EXPECT_EQ(accepted, full.size() - 70);
      ASSERT_TRUE(ParseNtlmssp(full.first(full.size() - 1), &m));  // EOL cut
      EXPECT_TRUE(m.target_info_truncated);
      EXPECT_EQ(m.server_time, 0x01ccb4542f7bdf58u);
      ASSERT_TRUE(ParseNtlmssp(full.first(full.size() - 5), &m));  // and the timestamp's last byte
      EXPECT_TRUE(m.target_info_truncated);
      EXPECT_EQ(m.dns_tree_name.view(), "contoso.com");
      EXPECT_EQ(m.server_time, 0u);
    } else {
      EXPECT_EQ(accepted, 0u);  // a payload runs past the end
    }
  }
}

TEST(Ntlmssp, NotNtlmssp) {
  NtlmsspMessage m;
  EXPECT_FALSE(ParseNtlmssp({}, &m));
  Bytes b = Auth(kUnicode, Utf16("D"), Utf16("U"), Utf16("H"), 24, 24, false);
  b[0] = 'X';
  EXPECT_FALSE(ParseNtlmssp(b, &m));
  b[0] = 'N';
  b[8] = 4;  // unknown type
  EXPECT_FALSE(ParseNtlmssp(b, &m));
  EXPECT_STREQ(NtlmsspTypeName(NtlmsspType::kAuthenticate), "AUTHENTICATE");
}

TEST(Ntlmssp, OldShortNegotiateAndChallenge) {
  // A 16-byte NEGOTIATE (signature, type, flags) and a 32-byte CHALLENGE without TargetInfo.
  Bytes n = {'N', 'T', 'L', 'M', 'S', 'S', 'P', 0, 1, 0, 0, 0, 0x07, 0x32, 0, 0};
  NtlmsspMessage m;
  ASSERT_TRUE(ParseNtlmssp(n, &m));
  EXPECT_EQ(m.flags, 0x3207u);
  EXPECT_FALSE(m.has_version);
  Bytes c(32, 0);
  std::copy(n.begin(), n.begin() + 8, c.begin());
  c[8] = 2;
  PutU32(c, 20, 0x2);  // OEM
  c.insert(c.end(), {'W', 'G'});
  PutU16(c, 12, 2);
  PutU32(c, 16, 32);
  ASSERT_TRUE(ParseNtlmssp(c, &m));
  EXPECT_EQ(m.target_name.view(), "WG");
  // A NEGOTIATE with OEM domain and workstation.
  Bytes d(40, 0);
  std::copy(n.begin(), n.begin() + 8, d.begin());
  d[8] = 1;
  PutU32(d, 12, 0x3000);
  d.insert(d.end(), {'D', 'O', 'M', 'W', 'S'});
  PutU16(d, 16, 3);
  PutU32(d, 20, 40);
  PutU16(d, 24, 2);
  PutU32(d, 28, 43);
  ASSERT_TRUE(ParseNtlmssp(d, &m));
  EXPECT_EQ(Text(m), "NTLM NEGOTIATE DOM from WS");
}

}  // namespace
}  // namespace vigil::proto
