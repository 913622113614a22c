// TLS parser on crafted handshakes: record layer, reassembly across records and calls (split at
// every byte), ClientHello / ServerHello fields, JA3 / JA3S / JA4, the leaf certificate, and
// malformed input. Expected fingerprints were computed independently (Python hashlib over the
// same lists, the FoxIO JA4 example, tshark's JA3 for hellos rebuilt from suricata-verify
// captures); expected certificate fields were checked with `openssl x509` on the same DER.
#include "dataplane/proto/tls.h"

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dataplane/proto/hash.h"
#include "tests/unit/proto/collect_sink.h"

namespace vigil::proto {
namespace {

using testing::CollectSink;
using Bytes = std::vector<uint8_t>;

// ---------------------------------------------------------------------------------------------
// Builders

void Put8(Bytes& b, uint8_t v) { b.push_back(v); }
void Put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
void Put24(Bytes& b, uint32_t v) {
  b.push_back(static_cast<uint8_t>(v >> 16));
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}
void Cat(Bytes& b, const Bytes& x) { b.insert(b.end(), x.begin(), x.end()); }
Bytes Text(std::string_view s) { return Bytes(s.begin(), s.end()); }
Bytes Join(std::initializer_list<Bytes> parts) {
  Bytes b;
  for (const Bytes& p : parts) Cat(b, p);
  return b;
}

Bytes Ext(uint16_t type, const Bytes& body = {}) {
  Bytes b;
  Put16(b, type);
  Put16(b, static_cast<uint16_t>(body.size()));
  Cat(b, body);
  return b;
}
Bytes U16List(std::initializer_list<uint16_t> v) {
  Bytes b;
  Put16(b, static_cast<uint16_t>(2 * v.size()));
  for (uint16_t x : v) Put16(b, x);
  return b;
}
Bytes SniExt(std::string_view host) {
  Bytes b;
  Put16(b, static_cast<uint16_t>(host.size() + 3));
  Put8(b, 0);
  Put16(b, static_cast<uint16_t>(host.size()));
  Cat(b, Text(host));
  return Ext(0, b);
}
Bytes AlpnExt(std::initializer_list<std::string_view> protos) {
  Bytes list;
  for (auto p : protos) {
    Put8(list, static_cast<uint8_t>(p.size()));
    Cat(list, Text(p));
  }
  Bytes b;
  Put16(b, static_cast<uint16_t>(list.size()));
  Cat(b, list);
  return Ext(16, b);
}
Bytes GroupsExt(std::initializer_list<uint16_t> v) { return Ext(10, U16List(v)); }
Bytes SigAlgsExt(std::initializer_list<uint16_t> v) { return Ext(13, U16List(v)); }
Bytes EcpfExt(std::initializer_list<uint8_t> v) {
  Bytes b;
  Put8(b, static_cast<uint8_t>(v.size()));
  for (uint8_t x : v) Put8(b, x);
  return Ext(11, b);
}
Bytes SupportedVersionsExt(std::initializer_list<uint16_t> v) {
  Bytes b;
  Put8(b, static_cast<uint8_t>(2 * v.size()));
  for (uint16_t x : v) Put16(b, x);
  return Ext(43, b);
}

Bytes Handshake(uint8_t type, const Bytes& body) {
  Bytes b;
  Put8(b, type);
  Put24(b, static_cast<uint32_t>(body.size()));
  Cat(b, body);
  return b;
}

Bytes ClientHello(uint16_t version, std::initializer_list<uint16_t> ciphers,
                  std::initializer_list<Bytes> exts, const Bytes& session_id = {}) {
  Bytes b;
  Put16(b, version);
  for (int i = 0; i < 32; ++i) Put8(b, static_cast<uint8_t>(i));
  Put8(b, static_cast<uint8_t>(session_id.size()));
  Cat(b, session_id);
  Put16(b, static_cast<uint16_t>(2 * ciphers.size()));
  for (uint16_t c : ciphers) Put16(b, c);
  Put8(b, 1);
  Put8(b, 0);
  Bytes e;
  for (const Bytes& x : exts) Cat(e, x);
  Put16(b, static_cast<uint16_t>(e.size()));
  Cat(b, e);
  return Handshake(1, b);
}

constexpr uint8_t kHrr[32] = {0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C,
                              0x02, 0x1E, 0x65, 0xB8, 0x91, 0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB,
                              0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C};

Bytes ServerHello(uint16_t version, uint16_t cipher, std::initializer_list<Bytes> exts,
                  const Bytes& session_id = {}, bool hrr = false) {
  Bytes b;
  Put16(b, version);
  for (int i = 0; i < 32; ++i) Put8(b, hrr ? kHrr[i] : static_cast<uint8_t>(0x40 + i));
  Put8(b, static_cast<uint8_t>(session_id.size()));
  Cat(b, session_id);
  Put16(b, cipher);
  Put8(b, 0);
  Bytes e;
  for (const Bytes& x : exts) Cat(e, x);
  if (exts.size() != 0) {
    Put16(b, static_cast<uint16_t>(e.size()));
    Cat(b, e);
  }
  return Handshake(2, b);
}

// `payload` as records of `type`, at most `fragment` bytes each.
Bytes Records(uint8_t type, const Bytes& payload, size_t fragment = 16384,
              uint16_t version = 0x0303) {
  Bytes b;
  size_t off = 0;
  do {
    const size_t n = std::min(fragment, payload.size() - off);
    Put8(b, type);
    Put16(b, version);
    Put16(b, static_cast<uint16_t>(n));
    b.insert(b.end(), payload.begin() + static_cast<long>(off),
             payload.begin() + static_cast<long>(off + n));
    off += n;
  } while (off < payload.size());
  return b;
}
Bytes Ccs() { return Records(20, {1}); }
Bytes AppData(size_t n) { return Records(23, Bytes(n, 0xAB)); }

// DER
Bytes Der(uint8_t tag, const Bytes& content) {
  Bytes b;
  Put8(b, tag);
  const size_t n = content.size();
  if (n < 0x80) {
    Put8(b, static_cast<uint8_t>(n));
  } else if (n < 0x100) {
    Put8(b, 0x81);
    Put8(b, static_cast<uint8_t>(n));
  } else if (n < 0x10000) {
    Put8(b, 0x82);
    Put16(b, static_cast<uint16_t>(n));
  } else {
    Put8(b, 0x83);
    Put24(b, static_cast<uint32_t>(n));
  }
  Cat(b, content);
  return b;
}
Bytes Seq(std::initializer_list<Bytes> parts) { return Der(0x30, Join(parts)); }
Bytes AttrOid(uint8_t x) { return Der(0x06, {0x55, 0x04, x}); }
Bytes Rdn(uint8_t attr, std::string_view value, uint8_t string_tag = 0x13) {
  return Der(0x31, Seq({AttrOid(attr), Der(string_tag, Text(value))}));
}

Bytes MakeCert(const Bytes& serial, const Bytes& issuer, const Bytes& subject,
               const Bytes& validity, const Bytes& extensions) {
  const Bytes alg =
      Seq({Der(0x06, {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b}), Der(0x05, {})});
  const Bytes spki = Seq({Seq({Der(0x06, {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01})}),
                          Der(0x03, {0x00, 0x04, 0x01, 0x02, 0x03, 0x04})});
  Bytes tbs_parts =
      Join({Der(0xa0, Der(0x02, {0x02})), Der(0x02, serial), alg, issuer, validity, subject, spki});
  if (!extensions.empty()) Cat(tbs_parts, Der(0xa3, Seq({extensions})));
  return Seq({Der(0x30, tbs_parts), alg, Der(0x03, {0x00, 0xde, 0xad, 0xbe, 0xef})});
}

Bytes SanExtension(std::initializer_list<Bytes> names) {
  return Seq({Der(0x06, {0x55, 0x1d, 0x11}), Der(0x04, Der(0x30, Join(names)))});
}

// The certificate used by most tests: subject and issuer with several RDNs, a serial with a
// leading zero byte, UTCTime / GeneralizedTime validity and DNS + IP subject alternative names.
Bytes LeafCert(size_t padding = 0) {
  const Bytes issuer = Seq({Rdn(6, "US"), Rdn(10, "Example CA Inc"), Rdn(3, "Example Issuing CA")});
  const Bytes subject = Seq({Rdn(6, "US"), Rdn(8, "California"), Rdn(10, "Example Org", 0x0c),
                             Rdn(3, "www.example.com")});
  const Bytes validity =
      Seq({Der(0x17, Text("160101000000Z")), Der(0x18, Text("20351231235959Z"))});
  Bytes exts = SanExtension({Der(0x82, Text("www.example.com")), Der(0x82, Text("example.com")),
                             Der(0x87, {192, 0, 2, 1})});
  if (padding != 0) {
    // An unknown non-critical extension that makes the certificate large.
    Cat(exts, Seq({Der(0x06, {0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x7f}),
                   Der(0x04, Bytes(padding, 0x5a))}));
  }
  return MakeCert({0x00, 0x9a, 0x01, 0x02, 0x03}, issuer, subject, validity, exts);
}

Bytes IntermediateCert() {
  const Bytes name = Seq({Rdn(3, "Example Root")});
  return MakeCert({0x01}, name, Seq({Rdn(3, "Example Issuing CA")}),
                  Seq({Der(0x17, Text("150101000000Z")), Der(0x17, Text("300101000000Z"))}), {});
}

Bytes CertificateMsg(std::initializer_list<Bytes> certs) {
  Bytes list;
  for (const Bytes& c : certs) {
    Put24(list, static_cast<uint32_t>(c.size()));
    Cat(list, c);
  }
  Bytes body;
  Put24(body, static_cast<uint32_t>(list.size()));
  Cat(body, list);
  return Handshake(11, body);
}

std::string HexColon(std::span<const uint8_t> d) {
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (uint8_t b : d) {
    if (!s.empty()) s += ':';
    s += kHex[b >> 4];
    s += kHex[b & 15];
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// A TLS 1.2 full handshake.

Bytes Tls12ClientHello() {
  return ClientHello(0x0303, {0x1a1a, 0xc02b, 0xc02f, 0x009c, 0x002f},
                     {Ext(0x2a2a), SniExt("www.example.com"), Ext(23), Ext(0xff01, {0}),
                      GroupsExt({0x3a3a, 0x001d, 0x0017}), EcpfExt({0}), Ext(35),
                      AlpnExt({"h2", "http/1.1"}), SigAlgsExt({0x0403, 0x0804, 0x0401})});
}
Bytes Tls12ServerHello() {
  return ServerHello(0x0303, 0xc02f, {Ext(0xff01, {0}), EcpfExt({0}), AlpnExt({"h2"}), Ext(23)});
}

struct Flow {
  Bytes client;
  Bytes server;
};

Flow Tls12Flow(size_t cert_padding = 0) {
  Flow f;
  f.client = Records(22, Tls12ClientHello(), 16384, 0x0301);
  Cat(f.client, Records(22, Handshake(16, Bytes(66, 0x33))));  // ClientKeyExchange
  Cat(f.client, Ccs());
  Cat(f.client, Records(22, Bytes(40, 0x66)));  // encrypted Finished
  Cat(f.client, AppData(80));
  f.server = Records(
      22, Join({Tls12ServerHello(), CertificateMsg({LeafCert(cert_padding), IntermediateCert()}),
                Handshake(12, Bytes(100, 0x11)), Handshake(14, {})}));
  Cat(f.server, Ccs());
  Cat(f.server, Records(22, Bytes(40, 0x77)));  // encrypted Finished
  Cat(f.server, AppData(50));
  return f;
}

// Client bytes first (as on the wire: the ClientHello precedes the server's flight), then the
// server's, in pieces of `chunk` bytes.
void Feed(TlsParser& p, CollectSink& sink, const Flow& f, size_t chunk = SIZE_MAX) {
  for (const auto& [dir, bytes] :
       {std::pair{Direction::kToServer, &f.client}, std::pair{Direction::kToClient, &f.server}}) {
    for (size_t off = 0; off < bytes->size(); off += chunk) {
      const size_t n = std::min(chunk, bytes->size() - off);
      p.OnData(dir, std::span<const uint8_t>(bytes->data() + off, n), sink);
    }
  }
  p.OnEnd(sink);
}

std::vector<std::string> Events(const Flow& f, size_t chunk = SIZE_MAX) {
  CollectSink sink;
  TlsParser p;
  Feed(p, sink, f, chunk);
  EXPECT_FALSE(sink.unbalanced);
  return sink.events;
}

constexpr std::string_view kLeafFingerprint =
    "b9:7e:ed:a5:80:67:60:59:37:bb:95:6c:33:9d:5c:a0:96:92:83:71";

// The JA3 string of Tls12ClientHello; its MD5 and the JA4 were computed with Python.
constexpr std::string_view kTls12Ja3 = "771,49195-49199-156-47,0-23-65281-10-11-35-16-13,29-23,0";

TEST(TlsTest, FullTls12Handshake) {
  CollectSink sink;
  TlsParser p;
  Feed(p, sink, Tls12Flow());
  ASSERT_EQ(sink.events.size(), 1u) << ::testing::PrintToString(sink.events);
  // The certificate fields and fingerprint as `openssl x509` reports them for LeafCert().
  EXPECT_EQ(HexColon(Sha1::Hash(LeafCert())), kLeafFingerprint);
  const std::string expected =
      std::string(R"({"event_type":"tls","direction":"to_server","tls":{)"
                  R"("subject":"C=US, ST=California, O=Example Org, CN=www.example.com",)"
                  R"("issuerdn":"C=US, O=Example CA Inc, CN=Example Issuing CA",)"
                  R"("subjectaltname":["www.example.com","example.com","192.0.2.1"],)"
                  R"("serial":"00:9A:01:02:03","fingerprint":")") +
      std::string(kLeafFingerprint) +
      R"(","sni":"www.example.com","version":"TLS 1.2",)"
      R"("notbefore":"2016-01-01T00:00:00","notafter":"2035-12-31T23:59:59",)"
      R"("ja3":{"hash":"d8b7fded1f40f4b44500e16b3fc62f7b","string":")" +
      std::string(kTls12Ja3) +
      R"("},"ja3s":{"hash":"27eabd2e03c903c0e38682b67d24b578","string":"771,49199,65281-11-16-23"},)"
      R"("ja4":"t12d0408h2_ec7724f63c6c_909ab965658b","client_alpns":["h2","http/1.1"],)"
      R"("server_alpns":["h2"]},)"
      R"("message":"TLS 1.2 www.example.com JA3 d8b7fded1f40f4b44500e16b3fc62f7b CN=www.example.com"})";
  EXPECT_EQ(sink.events[0], expected);
  EXPECT_TRUE(p.logged());
  EXPECT_EQ(p.encrypted_records(Direction::kToClient), 2u);
  EXPECT_EQ(p.encrypted_records(Direction::kToServer), 2u);
}

// The signature engine gets the server's side with tls.certs: each certificate of the chain on
// its own, in order; inspecting changes no event.
TEST(TlsTest, CertificatesForTheSignatureEngine) {
  CollectSink plain, sink;
  sink.inspect = true;
  TlsParser p, q;
  Feed(p, plain, Tls12Flow());
  Feed(q, sink, Tls12Flow());
  EXPECT_EQ(sink.events, plain.events);
  bool found = false;
  for (size_t i = 0; i < sink.inspected.size(); ++i) {
    if (!sink.inspected[i].second.count(rules::Buffer::kTlsCertFingerprint)) continue;
    found = true;
    EXPECT_EQ(sink.inspected[i].first, Direction::kToClient);
    const Bytes leaf = LeafCert(), inter = IntermediateCert();
    EXPECT_EQ(sink.items[i].at(rules::Buffer::kTlsCerts),
              (std::vector<std::string>{std::string(leaf.begin(), leaf.end()),
                                        std::string(inter.begin(), inter.end())}));
  }
  EXPECT_TRUE(found);
}

// Every split of either direction's bytes into two OnData calls, and one byte per call, gives the
// same events as whole-stream delivery.
TEST(TlsTest, SplitAnywhereGivesSameEvents) {
  const Flow f = Tls12Flow();
  const std::vector<std::string> whole = Events(f);
  ASSERT_EQ(whole.size(), 1u);
  EXPECT_EQ(Events(f, 1), whole);
  for (const bool server_side : {false, true}) {
    const Bytes& bytes = server_side ? f.server : f.client;
    for (size_t cut = 1; cut < bytes.size(); ++cut) {
      CollectSink sink;
      TlsParser p;
      const std::span<const uint8_t> all(bytes);
      if (server_side) {
        p.OnData(Direction::kToServer, f.client, sink);
        p.OnData(Direction::kToClient, all.first(cut), sink);
        p.OnData(Direction::kToClient, all.subspan(cut), sink);
      } else {
        p.OnData(Direction::kToServer, all.first(cut), sink);
        p.OnData(Direction::kToServer, all.subspan(cut), sink);
        p.OnData(Direction::kToClient, f.server, sink);
      }
      p.OnEnd(sink);
      ASSERT_EQ(sink.events, whole) << (server_side ? "server" : "client") << " cut " << cut;
    }
  }
}

// Handshake messages fragmented over many small records, and several messages in one record.
TEST(TlsTest, HandshakeFragmentedAcrossRecords) {
  const std::vector<std::string> reference = Events(Tls12Flow());
  for (size_t fragment : {1, 2, 3, 7, 100, 1000}) {
    Flow f;
    f.client = Records(22, Tls12ClientHello(), fragment);
    f.server = Records(22,
                       Join({Tls12ServerHello(), CertificateMsg({LeafCert(), IntermediateCert()}),
                             Handshake(12, Bytes(100, 0x11)), Handshake(14, {})}),
                       fragment);
    Cat(f.server, Ccs());
    EXPECT_EQ(Events(f), reference) << fragment;
    EXPECT_EQ(Events(f, 5), reference) << fragment;
  }
}

// The example of FoxIO's JA4 specification, in a Chrome-like TLS 1.3 ClientHello with GREASE.
Bytes Ja4SpecClientHello() {
  Bytes key_share;
  Put16(key_share, 36);
  Put16(key_share, 0x001d);
  Put16(key_share, 32);
  Cat(key_share, Bytes(32, 0x42));
  return ClientHello(
      0x0303,
      {0x0a0a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013,
       0xc014, 0x009c, 0x009d, 0x002f, 0x0035},
      {Ext(0x0a0a), Ext(0x001b, {0x02, 0x00, 0x02}), SniExt("example.net"), Ext(0x0033, key_share),
       AlpnExt({"h2", "http/1.1"}), Ext(0x4469, {0x00, 0x03, 0x02, 0x68, 0x32}), Ext(0x0017),
       Ext(0x002d, {0x01, 0x01}),
       SigAlgsExt({0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601}),
       Ext(0x0005, {0x01, 0x00, 0x00, 0x00, 0x00}), Ext(0x0023), Ext(0x0012),
       SupportedVersionsExt({0x7a7a, 0x0304, 0x0303}), Ext(0xff01, {0}), EcpfExt({0}),
       GroupsExt({0x4a4a, 0x001d, 0x0017, 0x0018}), Ext(0x0015, Bytes(20, 0)), Ext(0x1a1a, {0})});
}

TEST(TlsTest, Ja4SpecificationExample) {
  Flow f;
  f.client = Records(22, Ja4SpecClientHello(), 16384, 0x0301);
  CollectSink sink;
  TlsParser p;
  Feed(p, sink, f);
  ASSERT_EQ(sink.events.size(), 1u);
  const std::string& e = sink.events[0];
  EXPECT_NE(e.find(R"("ja4":"t13d1516h2_8daaf6152771_e5627efa2ab1")"), std::string::npos) << e;
  EXPECT_NE(e.find(R"("ja3":{"hash":"c000e2caf3a25423f9de6c8a4b12a975","string":"771,4865-4866-)"
                   R"(4867-49195-49199-49196-49200-52393-52392-49171-49172-156-157-47-53,27-0-51-)"
                   R"(16-17513-23-45-13-5-35-18-43-65281-11-10-21,29-23-24,0"})"),
            std::string::npos)
      << e;
  // No ServerHello: the version is not known (Suricata's spelling).
  EXPECT_NE(e.find(R"("version":"UNDETERMINED")"), std::string::npos) << e;
  EXPECT_NE(e.find(R"("sni":"example.net")"), std::string::npos) << e;
}

// Hellos rebuilt from the suricata-verify captures (ja4-tls, tls-fingerprint-alert): JA3 as tshark
// computes it, JA4 as the suricata-verify test expects (and as FoxIO's algorithm gives).
TEST(TlsTest, SuricataVerifyHellos) {
  {
    Flow f;
    f.client = Records(
        22,
        ClientHello(0x0303,
                    {49195, 49199, 158, 49162, 49161, 49171, 49172, 49159, 49169, 51, 50, 57, 156,
                     47, 53, 10, 5, 4},
                    {Ext(65281, {0}), GroupsExt({23, 24, 25}), EcpfExt({0}), Ext(35), Ext(13172),
                     AlpnExt({"spdy/3.1", "http/1.1"}), Ext(30032),
                     Ext(5, {0x01, 0x00, 0x00, 0x00, 0x00}), Ext(18),
                     SigAlgsExt({0x0401, 0x0501, 0x0201, 0x0403, 0x0503, 0x0203, 0x0402, 0x0202})}),
        16384, 0x0301);
    const std::vector<std::string> ev = Events(f);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_NE(ev[0].find(R"("ja4":"t12i1810s1_27d4652c4487_06a4338d0495")"), std::string::npos)
        << ev[0];
    EXPECT_NE(ev[0].find(R"("hash":"308b0bd904abbef5e0034a1ff7a78920")"), std::string::npos);
    EXPECT_NE(ev[0].find(R"("client_alpns":["spdy/3.1","http/1.1"])"), std::string::npos);
    EXPECT_EQ(ev[0].find(R"("sni")"), std::string::npos);
  }
  {
    Flow f;
    f.client = Records(
        22,
        ClientHello(0x0303, {49195, 49199, 52393, 52392, 49162, 49161, 49171, 49187, 49191, 49172,
                             49160, 49170, 158,   52394, 51,    50,    103,   57,    56,    107,
                             22,    19,    156,   47,    60,    53,    61,    10,    5,     4},
                    {SniExt("www.google.com"), Ext(65281, {0}), GroupsExt({23, 24, 25}),
                     EcpfExt({0}), Ext(13172), AlpnExt({"http/1.1", "h2"}),
                     SigAlgsExt({0x0401, 0x0501, 0x0601, 0x0201, 0x0403, 0x0503, 0x0603, 0x0203,
                                 0x0502, 0x0402, 0x0202})}),
        16384, 0x0301);
    const std::vector<std::string> ev = Events(f);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_NE(ev[0].find(R"("hash":"39d8c2cad4b5f346d621cbcca5b6189b")"), std::string::npos)
        << ev[0];
    EXPECT_NE(ev[0].find(R"("ja4":"t12d3007h1_5f39c7d2d762_01e94b487c91")"), std::string::npos)
        << ev[0];
  }
}

// A hello without extensions (old clients): empty JA3 fields, JA4's empty-list markers.
TEST(TlsTest, HelloWithoutExtensions) {
  Bytes body;
  Put16(body, 0x0301);
  Cat(body, Bytes(32, 1));
  Put8(body, 0);
  Put16(body, 4);
  Put16(body, 47);
  Put16(body, 53);
  Put8(body, 1);
  Put8(body, 0);
  Flow f;
  f.client = Records(22, Handshake(1, body), 16384, 0x0301);
  f.server = Records(22, ServerHello(0x0301, 47, {}), 16384, 0x0301);
  Cat(f.server, Ccs());
  const std::vector<std::string> ev = Events(f);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_NE(
      ev[0].find(R"("ja3":{"hash":"dac4920d4335e769327dbf4e1b759e15","string":"769,47-53,,,"})"),
      std::string::npos)
      << ev[0];
  EXPECT_NE(ev[0].find(R"("ja4":"t10i020000_)"), std::string::npos) << ev[0];
  EXPECT_NE(ev[0].find(R"(_000000000000")"), std::string::npos) << ev[0];
  EXPECT_NE(ev[0].find(R"("ja3s":{"hash":")"), std::string::npos) << ev[0];
  EXPECT_NE(ev[0].find(R"("string":"769,47,"})"), std::string::npos) << ev[0];
  EXPECT_NE(ev[0].find(R"("version":"TLSv1")"), std::string::npos) << ev[0];
}

// TLS 1.3: the version comes from supported_versions and the event is emitted at the ServerHello
// (everything after it is encrypted); later records are only counted.
TEST(TlsTest, Tls13LoggedAtServerHello) {
  Flow f;
  f.client = Records(22, Ja4SpecClientHello(), 16384, 0x0301);
  Cat(f.client, Ccs());
  Cat(f.client, AppData(60));
  CollectSink sink;
  TlsParser p;
  p.OnData(Direction::kToServer, f.client, sink);
  EXPECT_TRUE(sink.events.empty());
  Bytes key_share;
  Put16(key_share, 0x001d);
  Put16(key_share, 32);
  Cat(key_share, Bytes(32, 0x24));
  const Bytes sh =
      Records(22, ServerHello(0x0303, 0x1301, {SupportedVersionsExt({}), Ext(0x0033, key_share)}));
  // supported_versions in a ServerHello is a bare version, not a list.
  Bytes sh2 =
      Records(22, ServerHello(0x0303, 0x1301, {Ext(43, {0x03, 0x04}), Ext(0x0033, key_share)}));
  (void)sh;
  p.OnData(Direction::kToClient, sh2, sink);
  ASSERT_EQ(sink.events.size(), 1u);
  EXPECT_NE(sink.events[0].find(R"("version":"TLS 1.3")"), std::string::npos) << sink.events[0];
  EXPECT_NE(sink.events[0].find(R"("ja3s":{"hash":")"), std::string::npos);
  EXPECT_NE(sink.events[0].find(R"("string":"771,4865,43-51"})"), std::string::npos);
  EXPECT_EQ(sink.messages[0], "TLS 1.3 example.net JA3 c000e2caf3a25423f9de6c8a4b12a975");
  Bytes rest = Ccs();
  Cat(rest, AppData(1000));
  Cat(rest, AppData(300));
  p.OnData(Direction::kToClient, rest, sink);
  p.OnEnd(sink);
  EXPECT_EQ(sink.events.size(), 1u);
  EXPECT_EQ(p.encrypted_records(Direction::kToClient), 2u);
  EXPECT_EQ(p.encrypted_records(Direction::kToServer), 1u);
}

// A HelloRetryRequest is not the negotiated ServerHello: the event waits for the real one.
TEST(TlsTest, HelloRetryRequest) {
  CollectSink sink;
  TlsParser p;
  p.OnData(Direction::kToServer, Records(22, Ja4SpecClientHello()), sink);
  p.OnData(Direction::kToClient,
           Records(22, ServerHello(0x0303, 0x1301, {Ext(43, {0x03, 0x04})}, {}, true)), sink);
  EXPECT_TRUE(sink.events.empty());
  // The client's compatibility ChangeCipherSpec and second ClientHello, then the real ServerHello.
  Bytes second = Ccs();
  Cat(second, Records(22, Ja4SpecClientHello()));
  p.OnData(Direction::kToServer, second, sink);
  p.OnData(Direction::kToClient, Records(22, ServerHello(0x0303, 0x1302, {Ext(43, {0x03, 0x04})})),
           sink);
  ASSERT_EQ(sink.events.size(), 1u);
  EXPECT_NE(sink.events[0].find(R"("string":"771,4866,43"})"), std::string::npos) << sink.events[0];
  EXPECT_NE(sink.events[0].find(R"("version":"TLS 1.3")"), std::string::npos);
}

// Session resumption by session id: no certificate, logged at the server's ChangeCipherSpec.
TEST(TlsTest, SessionResumed) {
  const Bytes sid(32, 0x5c);
  Flow f;
  f.client = Records(22, ClientHello(0x0303, {0xc02f}, {SniExt("a.example")}, sid));
  f.server = Records(22, ServerHello(0x0303, 0xc02f, {Ext(0xff01, {0})}, sid));
  CollectSink sink;
  TlsParser p;
  p.OnData(Direction::kToServer, f.client, sink);
  p.OnData(Direction::kToClient, f.server, sink);
  EXPECT_TRUE(sink.events.empty());  // a Certificate could still follow
  p.OnData(Direction::kToClient, Ccs(), sink);
  ASSERT_EQ(sink.events.size(), 1u);
  EXPECT_NE(sink.events[0].find(R"("session_resumed":true)"), std::string::npos) << sink.events[0];
  EXPECT_EQ(sink.events[0].find(R"("subject")"), std::string::npos);
  EXPECT_NE(sink.messages[0].find(" resumed"), std::string::npos);
  p.OnEnd(sink);
  EXPECT_EQ(sink.events.size(), 1u);
}

// TLS 1.3 always echoes the client's session id (RFC 8446 4.1.3): that is not a resumption.
TEST(TlsTest, Tls13SessionIdEchoIsNotResumption) {
  const Bytes sid(32, 0x5c);
  CollectSink sink;
  TlsParser p;
  p.OnData(Direction::kToServer,
           Records(22, ClientHello(0x0303, {0x1301}, {SniExt("a.example")}, sid)), sink);
  p.OnData(Direction::kToClient,
           Records(22, ServerHello(0x0303, 0x1301, {Ext(43, {0x03, 0x04})}, sid)), sink);
  ASSERT_EQ(sink.events.size(), 1u);
  EXPECT_NE(sink.events[0].find(R"("version":"TLS 1.3")"), std::string::npos) << sink.events[0];
  EXPECT_EQ(sink.events[0].find(R"("session_resumed")"), std::string::npos) << sink.events[0];
  EXPECT_EQ(sink.messages[0].find(" resumed"), std::string::npos);
}

// A server without a certificate (anonymous or PSK suites): logged at ServerHelloDone.
TEST(TlsTest, NoCertificateLoggedAtServerHelloDone) {
  CollectSink sink;
  TlsParser p;
  p.OnData(Direction::kToServer, Records(22, Tls12ClientHello()), sink);
  p.OnData(Direction::kToClient,
           Records(22, Join({Tls12ServerHello(), Handshake(12, Bytes(10, 1)), Handshake(14, {})})),
           sink);
  ASSERT_EQ(sink.events.size(), 1u);
  EXPECT_EQ(sink.events[0].find(R"("session_resumed")"), std::string::npos);
  EXPECT_NE(sink.events[0].find(R"("version":"TLS 1.2")"), std::string::npos);
}

TEST(TlsTest, ClientHelloOnlyLoggedAtEnd) {
  CollectSink sink;
  TlsParser p;
  p.OnData(Direction::kToServer, Records(22, Tls12ClientHello()), sink);
  EXPECT_TRUE(sink.events.empty());
  p.OnEnd(sink);
  ASSERT_EQ(sink.events.size(), 1u);
  EXPECT_EQ(sink.messages[0], "UNDETERMINED www.example.com JA3 d8b7fded1f40f4b44500e16b3fc62f7b");
  p.OnEnd(sink);
  EXPECT_EQ(sink.events.size(), 1u);
}

// A leaf certificate larger than the buffer: the fields at its start are reported, the
// fingerprint still covers all of it, and the cut is flagged.
TEST(TlsTest, LargeCertificateKeepsWhatFits) {
  const Bytes leaf = LeafCert(TlsParser::kServerMessageCap + 3000);
  const std::vector<std::string> ev = Events(Tls12Flow(TlsParser::kServerMessageCap + 3000), 1000);
  ASSERT_EQ(ev.size(), 2u) << ::testing::PrintToString(ev);
  EXPECT_NE(ev[0].find(R"("event":"CERTIFICATE_TRUNCATED")"), std::string::npos) << ev[0];
  const std::string& e = ev[1];
  EXPECT_NE(e.find(R"("subject":"C=US, ST=California, O=Example Org, CN=www.example.com")"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find(R"("serial":"00:9A:01:02:03")"), std::string::npos);
  EXPECT_NE(e.find(R"("notafter":"2035-12-31T23:59:59")"), std::string::npos);
  EXPECT_NE(e.find("\"fingerprint\":\"" + HexColon(Sha1::Hash(leaf)) + "\""), std::string::npos)
      << e;
  // The SAN extension precedes the padding, but the extensions block as a whole did not fit.
  EXPECT_EQ(e.find("subjectaltname"), std::string::npos);
  // Byte by byte gives the same.
  EXPECT_EQ(Events(Tls12Flow(TlsParser::kServerMessageCap + 3000), 1), ev);
}

TEST(TlsTest, Probe) {
  const Bytes ch = Records(22, Tls12ClientHello(), 16384, 0x0301);
  const Bytes sh = Records(22, Tls12ServerHello());
  const std::span<const uint8_t> c(ch);
  EXPECT_EQ(TlsParser::Probe(Direction::kToServer, c), ProbeResult::kYes);
  EXPECT_EQ(TlsParser::Probe(Direction::kToServer, c.first(11)), ProbeResult::kYes);
  for (size_t n = 0; n < 11; ++n) {
    EXPECT_EQ(TlsParser::Probe(Direction::kToServer, c.first(n)), ProbeResult::kMaybe) << n;
  }
  EXPECT_EQ(TlsParser::Probe(Direction::kToClient, sh), ProbeResult::kYes);
  EXPECT_EQ(TlsParser::Probe(Direction::kToServer, sh), ProbeResult::kNo);
  EXPECT_EQ(TlsParser::Probe(Direction::kToClient, ch), ProbeResult::kNo);
  const Bytes http = Text("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(TlsParser::Probe(Direction::kToServer, http), ProbeResult::kNo);
  Bytes bad = ch;
  bad[1] = 2;  // SSL 2 record version
  EXPECT_EQ(TlsParser::Probe(Direction::kToServer, bad), ProbeResult::kNo);
  bad = ch;
  bad[3] = 0x80;  // record longer than TLS allows
  EXPECT_EQ(TlsParser::Probe(Direction::kToServer, bad), ProbeResult::kNo);
  bad = ch;
  bad[0] = 23;  // application data first
  EXPECT_EQ(TlsParser::Probe(Direction::kToServer, bad), ProbeResult::kNo);
  const Bytes sslv2 = {0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10};
  EXPECT_EQ(TlsParser::Probe(Direction::kToServer, sslv2), ProbeResult::kNo);
}

TEST(TlsTest, VersionNames) {
  char buf[20];
  auto name = [&buf](uint16_t v) { return std::string(buf, TlsVersionName(v, buf)); };
  EXPECT_EQ(name(0), "UNDETERMINED");
  EXPECT_EQ(name(0x0300), "SSLv3");
  EXPECT_EQ(name(0x0301), "TLSv1");
  EXPECT_EQ(name(0x0302), "TLS 1.1");
  EXPECT_EQ(name(0x0303), "TLS 1.2");
  EXPECT_EQ(name(0x0304), "TLS 1.3");
  EXPECT_EQ(name(0x7f1c), "TLS 1.3 draft-28");
  EXPECT_EQ(name(0x7f0e), "TLS 1.3 draft-<16");
  EXPECT_EQ(name(0xfb17), "TLS 1.3 draft-23-fb");
  EXPECT_EQ(name(0x1234), "0x1234");
}

// ---------------------------------------------------------------------------------------------
// Malformed input

std::vector<std::string> Anomalies(const std::vector<std::string>& events) {
  std::vector<std::string> out;
  for (const std::string& e : events) {
    const size_t at = e.find(R"("event":")");
    if (at == std::string::npos) continue;
    const size_t start = at + 9;
    out.push_back(e.substr(start, e.find('"', start) - start));
  }
  return out;
}

TEST(TlsTest, BadRecordHeaders) {
  struct Case {
    Bytes bytes;
    const char* anomaly;
  };
  const Case cases[] = {
      {{0x63, 0x03, 0x03, 0x00, 0x01, 0x00}, "INVALID_RECORD_TYPE"},
      {{0x16, 0x02, 0x00, 0x00, 0x01, 0x00}, "INVALID_RECORD_VERSION"},
      {{0x16, 0x03, 0x09, 0x00, 0x01, 0x00}, "INVALID_RECORD_VERSION"},
      {{0x16, 0x03, 0x03, 0x48, 0x01, 0x00}, "INVALID_RECORD_LENGTH"},
      {{0x16, 0x03, 0x03, 0x00, 0x00}, "INVALID_RECORD_LENGTH"},
      {{0x16, 0x03, 0x03, 0x00, 0x04, 0x63, 0x00, 0x00, 0x00}, "INVALID_HANDSHAKE_MESSAGE"},
  };
  for (const Case& c : cases) {
    CollectSink sink;
    TlsParser p;
    p.OnData(Direction::kToServer, c.bytes, sink);
    p.OnData(Direction::kToServer, Records(22, Tls12ClientHello()), sink);  // ignored: stopped
    p.OnEnd(sink);
    EXPECT_EQ(Anomalies(sink.events), std::vector<std::string>{c.anomaly}) << c.anomaly;
    EXPECT_EQ(sink.CountContaining(R"("event_type":"tls")"), 0u) << c.anomaly;
  }
}

TEST(TlsTest, BadClientHelloLengths) {
  Bytes ch = Tls12ClientHello();
  // Cipher suites length running past the message.
  Bytes bad = ch;
  bad[4 + 2 + 32 + 1] = 0x7f;
  CollectSink sink;
  TlsParser p;
  p.OnData(Direction::kToServer, Records(22, bad), sink);
  p.OnEnd(sink);
  EXPECT_EQ(Anomalies(sink.events), std::vector<std::string>{"HANDSHAKE_INVALID_LENGTH"});
  // The event is still emitted, without fingerprints or SNI.
  ASSERT_EQ(sink.CountContaining(R"("event_type":"tls")"), 1u);
  EXPECT_EQ(sink.CountContaining("ja3"), 0u);
}

TEST(TlsTest, BadSni) {
  struct Case {
    Bytes ext;
    std::vector<std::string> anomalies;
  };
  Bytes bad_type = SniExt("x.example");
  bad_type[6] = 1;
  Bytes bad_len = SniExt("x.example");
  bad_len[8] = 0x40;
  const Case cases[] = {
      {bad_type, {"INVALID_SNI_TYPE"}},
      {bad_len, {"INVALID_SNI_LENGTH"}},
      {Join({SniExt("a.example"), SniExt("b.example")}), {"MULTIPLE_SNI_EXTENSIONS"}},
  };
  for (const Case& c : cases) {
    CollectSink sink;
    TlsParser p;
    p.OnData(Direction::kToServer, Records(22, ClientHello(0x0303, {47}, {c.ext})), sink);
    p.OnEnd(sink);
    EXPECT_EQ(Anomalies(sink.events), c.anomalies);
    EXPECT_EQ(sink.CountContaining(R"("event_type":"tls")"), 1u);
  }
}

TEST(TlsTest, BadCertificates) {
  // Leaf length larger than the list.
  Bytes msg = CertificateMsg({LeafCert()});
  msg[4 + 3] = 0x7f;
  // Not DER at all.
  const Bytes garbage = CertificateMsg({Bytes(50, 0x41)});
  // A serial that is not an INTEGER.
  Bytes leaf = LeafCert();
  leaf[4 + 4 + 5] = 0x05;  // cert SEQ(4) + tbs SEQ(4) + [0] version(5) -> serial tag
  const Bytes wrong_tag = CertificateMsg({leaf});
  const std::pair<Bytes, const char*> cases[] = {
      {msg, "CERTIFICATE_INVALID_LENGTH"},
      {garbage, "INVALID_CERTIFICATE"},
      {wrong_tag, "INVALID_CERTIFICATE"},
  };
  for (const auto& [cert_msg, anomaly] : cases) {
    CollectSink sink;
    TlsParser p;
    p.OnData(Direction::kToServer, Records(22, Tls12ClientHello()), sink);
    p.OnData(Direction::kToClient, Records(22, Join({Tls12ServerHello(), cert_msg})), sink);
    p.OnEnd(sink);
    EXPECT_EQ(Anomalies(sink.events), std::vector<std::string>{anomaly}) << anomaly;
    ASSERT_EQ(sink.CountContaining(R"("event_type":"tls")"), 1u) << anomaly;
    EXPECT_EQ(sink.CountContaining("fingerprint"), anomaly[0] == 'I' ? 1u : 0u) << anomaly;
    EXPECT_EQ(sink.CountContaining("subject"), 0u) << anomaly;
  }
}

// A gap before the handshake is complete stops that side (anomaly) and logs what is known; a gap
// in encrypted data is harmless.
TEST(TlsTest, Gaps) {
  const Flow f = Tls12Flow();
  {
    CollectSink sink;
    TlsParser p;
    p.OnData(Direction::kToServer, f.client, sink);
    p.OnData(Direction::kToClient, std::span<const uint8_t>(f.server).first(200), sink);
    p.OnGap(Direction::kToClient, 100, sink);
    ASSERT_EQ(sink.events.size(), 2u);
    EXPECT_EQ(Anomalies(sink.events), std::vector<std::string>{"HANDSHAKE_GAP"});
    EXPECT_NE(sink.events[1].find(R"("sni":"www.example.com")"), std::string::npos);
    EXPECT_EQ(sink.events[1].find("fingerprint"), std::string::npos);
    p.OnData(Direction::kToClient, std::span<const uint8_t>(f.server).subspan(300), sink);
    p.OnEnd(sink);
    EXPECT_EQ(sink.events.size(), 2u);
  }
  {
    CollectSink sink;
    TlsParser p;
    Feed(p, sink, f);
    p.OnGap(Direction::kToClient, 100, sink);
    p.OnGap(Direction::kToServer, 100, sink);
    EXPECT_EQ(sink.events.size(), 1u);
  }
}

// Corrupting any single byte of a full handshake never crashes, never leaves JSON unbalanced, and
// emits at most one tls event.
TEST(TlsTest, EveryByteCorrupted) {
  const Flow f = Tls12Flow();
  for (const bool server_side : {false, true}) {
    const size_t n = server_side ? f.server.size() : f.client.size();
    for (size_t i = 0; i < n; ++i) {
      for (uint8_t v : {uint8_t{0x00}, uint8_t{0xff}, uint8_t{0x80}}) {
        Flow g = f;
        (server_side ? g.server : g.client)[i] = v;
        CollectSink sink;
        TlsParser p;
        Feed(p, sink, g, 97);
        ASSERT_FALSE(sink.unbalanced);
        ASSERT_LE(sink.CountContaining(R"("event_type":"tls")"), 1u);
      }
    }
  }
}

TEST(TlsTest, ParserSizeIsBounded) { EXPECT_LE(sizeof(TlsParser), 13000u); }

}  // namespace
}  // namespace vigil::proto
