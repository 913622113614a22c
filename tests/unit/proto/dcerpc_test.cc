// Tests for the connection-oriented DCE-RPC layer and the `dcerpc` parser: crafted PDUs in both
// integer representations, binds with several contexts, multi-fragment calls, faults, auth
// verifiers, endpoint-mapper answers, malformed input and splits at every byte.
#include "dataplane/proto/dcerpc.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/unit/proto/collect_sink.h"

namespace vigil::proto {
namespace {

using testing::CollectSink;
using Bytes = std::vector<uint8_t>;

constexpr const char* kAtsvc = "1ff70682-0a51-30e8-076d-740be8cee98b";
constexpr const char* kSvcctl = "367abb81-9844-35f1-ad32-98f038001003";
constexpr const char* kSamr = "12345778-1234-abcd-ef00-0123456789ac";
constexpr const char* kNdr = "8a885d04-1ceb-11c9-9fe8-08002b104860";
constexpr const char* kNdr64 = "71710533-beba-4937-8319-b5dbef9ccc36";
constexpr const char* kBtfn = "6cb71c2c-9812-4540-0300-000000000000";

// A little builder for PDU bytes in either integer representation.
class W {
 public:
  explicit W(bool le) : le_(le) {}
  W& U8(uint8_t v) {
    b_.push_back(v);
    return *this;
  }
  W& U16(uint16_t v) {
    if (le_) {
      b_.push_back(v & 0xff), b_.push_back(v >> 8);
    } else {
      b_.push_back(v >> 8), b_.push_back(v & 0xff);
    }
    return *this;
  }
  W& U32(uint32_t v) {
    if (le_) {
      U16(v & 0xffff), U16(v >> 16);
    } else {
      U16(v >> 16), U16(v & 0xffff);
    }
    return *this;
  }
  // A GUID in the PDU's representation: the first three fields in its byte order.
  W& Uuid(const std::string& s) {
    unsigned a, b, c, d[8];
    std::sscanf(s.c_str(), "%8x-%4x-%4x-%2x%2x-%2x%2x%2x%2x%2x%2x", &a, &b, &c, &d[0], &d[1], &d[2],
                &d[3], &d[4], &d[5], &d[6], &d[7]);
    U32(a), U16(static_cast<uint16_t>(b)), U16(static_cast<uint16_t>(c));
    for (unsigned x : d) U8(static_cast<uint8_t>(x));
    return *this;
  }
  W& Raw(const Bytes& v) {
    b_.insert(b_.end(), v.begin(), v.end());
    return *this;
  }
  W& Zeros(size_t n) {
    b_.insert(b_.end(), n, 0);
    return *this;
  }
  const Bytes& bytes() const { return b_; }
  size_t size() const { return b_.size(); }

 private:
  bool le_;
  Bytes b_;
};

struct Auth {
  uint8_t type = 10;
  uint8_t level = 2;
  Bytes value;
};

Bytes Pdu(uint8_t ptype, uint8_t flags, uint32_t call_id, bool le, Bytes body,
          const Auth* auth = nullptr, uint8_t minor = 0) {
  uint8_t pad = 0;
  if (auth != nullptr) {
    while ((16 + body.size()) % 4 != 0) body.push_back(0xaa), ++pad;
  }
  const size_t auth_len = auth ? auth->value.size() : 0;
  const size_t frag = 16 + body.size() + (auth ? 8 + auth_len : 0);
  W w(le);
  w.U8(5).U8(minor).U8(ptype).U8(flags).U8(le ? 0x10 : 0x00).U8(0).U8(0).U8(0);
  w.U16(static_cast<uint16_t>(frag)).U16(static_cast<uint16_t>(auth_len)).U32(call_id);
  w.Raw(body);
  if (auth) {
    w.U8(auth->type).U8(auth->level).U8(pad).U8(0).U32(0).Raw(auth->value);
  }
  return w.bytes();
}

struct Item {
  uint16_t ctx;
  std::string uuid;
  uint16_t major, minor;
  std::vector<std::string> transfer;
};

Bytes Bind(uint32_t call_id, bool le, const std::vector<Item>& items, const Auth* auth = nullptr,
           uint8_t ptype = kDcerpcBind) {
  W w(le);
  w.U16(4280).U16(4280).U32(0).U8(static_cast<uint8_t>(items.size())).Zeros(3);
  for (const Item& it : items) {
    w.U16(it.ctx).U8(static_cast<uint8_t>(it.transfer.size())).U8(0);
    w.Uuid(it.uuid).U16(it.major).U16(it.minor);
    for (const auto& t : it.transfer) w.Uuid(t).U32(t == kNdr ? 2 : 1);
  }
  return Pdu(ptype, 0x03, call_id, le, w.bytes(), auth);
}

Bytes BindAck(uint32_t call_id, bool le, const std::string& sec_addr,
              const std::vector<std::pair<uint16_t, uint16_t>>& results, const Auth* auth = nullptr,
              uint8_t ptype = kDcerpcBindAck) {
  W w(le);
  w.U16(4280).U16(4280).U32(0x1234);
  w.U16(static_cast<uint16_t>(sec_addr.empty() ? 0 : sec_addr.size() + 1));
  for (char ch : sec_addr) w.U8(static_cast<uint8_t>(ch));
  if (!sec_addr.empty()) w.U8(0);
  while ((16 + w.size()) % 4 != 0) w.U8(0);
  w.U8(static_cast<uint8_t>(results.size())).Zeros(3);
  for (auto [r, why] : results) w.U16(r).U16(why).Uuid(kNdr).U32(2);
  return Pdu(ptype, 0x03, call_id, le, w.bytes(), auth);
}

Bytes Request(uint32_t call_id, bool le, uint16_t ctx, uint16_t opnum, size_t stub,
              uint8_t flags = 0x03, const std::string& object = "", const Auth* auth = nullptr) {
  W w(le);
  w.U32(static_cast<uint32_t>(stub)).U16(ctx).U16(opnum);
  if (!object.empty()) w.Uuid(object);
  w.Zeros(stub);
  return Pdu(kDcerpcRequest, static_cast<uint8_t>(flags | (object.empty() ? 0 : 0x80)), call_id, le,
             w.bytes(), auth);
}

Bytes Response(uint32_t call_id, bool le, size_t stub, uint8_t flags = 0x03) {
  W w(le);
  w.U32(static_cast<uint32_t>(stub)).U16(0).U8(0).U8(0).Zeros(stub);
  return Pdu(kDcerpcResponse, flags, call_id, le, w.bytes());
}

Bytes Fault(uint32_t call_id, bool le, uint32_t status) {
  W w(le);
  w.U32(0).U16(0).U8(0).U8(0).U32(status).U32(0);
  return Pdu(kDcerpcFault, 0x23, call_id, le, w.bytes());
}

Bytes Utf16(const std::string& s) {
  Bytes b;
  for (char ch : s) b.push_back(static_cast<uint8_t>(ch)), b.push_back(0);
  return b;
}

// NTLMSSP AUTHENTICATE with a Version and an NTLMv2-sized NT response.
Bytes NtlmAuthenticate(const std::string& domain, const std::string& user,
                       const std::string& host) {
  const Bytes d = Utf16(domain), u = Utf16(user), h = Utf16(host);
  const Bytes lm(24, 0x11), nt(60, 0x22);
  W w(true);
  w.Raw({'N', 'T', 'L', 'M', 'S', 'S', 'P', 0}).U32(3);
  uint32_t off = 72;
  auto field = [&](size_t len) {
    w.U16(static_cast<uint16_t>(len)).U16(static_cast<uint16_t>(len)).U32(off);
    off += static_cast<uint32_t>(len);
  };
  field(lm.size());
  field(nt.size());
  field(d.size());
  field(u.size());
  field(h.size());
  field(0);
  w.U32(0x02000000 | 0x00080000 | 0x00000200 | 0x00000001);  // version, ext sec, NTLM, unicode
  w.U8(6).U8(1).U16(7601).Zeros(3).U8(15);
  w.Raw(lm).Raw(nt).Raw(d).Raw(u).Raw(h);
  return w.bytes();
}

Bytes NtlmNegotiate() {
  W w(true);
  w.Raw({'N', 'T', 'L', 'M', 'S', 'S', 'P', 0}).U32(1).U32(0x00000207).Zeros(16);
  return w.bytes();
}

// With TargetInfo: MsvAvNbComputerName "APP01", MsvAvDnsTreeName "corp.test", MsvAvEOL.
Bytes NtlmChallenge(const std::string& target) {
  const Bytes t = Utf16(target);
  const Bytes host = Utf16("APP01"), tree = Utf16("corp.test");
  W info(true);
  info.U16(1).U16(static_cast<uint16_t>(host.size())).Raw(host);
  info.U16(5).U16(static_cast<uint16_t>(tree.size())).Raw(tree);
  info.U16(0).U16(0);
  const Bytes ti = info.bytes();
  W w(true);
  w.Raw({'N', 'T', 'L', 'M', 'S', 'S', 'P', 0}).U32(2);
  w.U16(static_cast<uint16_t>(t.size())).U16(static_cast<uint16_t>(t.size())).U32(56);
  w.U32(0x02810205);
  w.Raw({1, 2, 3, 4, 5, 6, 7, 8}).Zeros(8);
  w.U16(static_cast<uint16_t>(ti.size())).U16(static_cast<uint16_t>(ti.size()));
  w.U32(56 + static_cast<uint32_t>(t.size()));
  w.U8(10).U8(0).U16(17763).Zeros(3).U8(15);
  w.Raw(t).Raw(ti);
  return w.bytes();
}

Bytes Hex(const char* s) {
  Bytes b;
  for (size_t i = 0; s[i] && s[i + 1]; i += 2) {
    b.push_back(static_cast<uint8_t>(std::stoi(std::string(s + i, 2), nullptr, 16)));
  }
  return b;
}

// An endpoint-mapper conversation from 401trg's 20171220_smb_psexec_add_user.pcap (TCP 135):
// bind to epm, bind_ack, ept_map request for svcctl, response naming 192.168.10.10:49163.
const char* kEpmBind =
    "05000b03100000007400000002000000d016d0160000000002000000000001000883afe11f5dc91191a408002b14"
    "a0fa03000000045d888aeb1cc9119fe808002b10486002000000010001000883afe11f5dc91191a408002b14a0fa"
    "030000002c1cb76c12984045030000000000000001000000";
const char* kEpmBindAck =
    "05000c03100000005400000002000000d016d0166f08000004003133350000000200000000000000045d888aeb1c"
    "c9119fe808002b10486002000000030003000000000000000000000000000000000000000000";
const char* kEpmMapRequest =
    "05000003100000009c0000000200000084000000000003000100000000000000000000000000000000000000020000"
    "004b0000004b000000050013000d81bb7a364498f135ad3298f03800100302000200000013000d045d888aeb1cc9"
    "119fe808002b10486002000200000001000b020000000100070200008701000904000000000000000000000000000"
    "000000000000000000000000004000000";
const char* kEpmMapResponse =
    "0500020310000000980000000200000080000000000000000000000000000000000000000000000000000000010000"
    "00"
    "040000000000000001000000030000004b0000004b000000050013000d81bb7a364498f135ad3298f0380010030200"
    "0200000013000d045d888aeb1cc9119fe808002b10486002000200000001000b020000000100070200c00b01000904"
    "00c0a80a0a0000000000";

struct Msg {
  Direction dir;
  Bytes data;
};

// Feeds a conversation in pieces of `chunk` bytes (0: whole messages).
void Feed(DcerpcParser& p, CollectSink& sink, const std::vector<Msg>& conv, size_t chunk = 0) {
  for (const Msg& m : conv) {
    const size_t step = chunk == 0 ? m.data.size() : chunk;
    for (size_t i = 0; i < m.data.size(); i += step) {
      const size_t n = std::min(step, m.data.size() - i);
      p.OnData(m.dir, std::span<const uint8_t>(m.data.data() + i, n), sink);
    }
  }
}

std::vector<std::string> Events(const std::vector<Msg>& conv, size_t chunk = 0, bool end = true) {
  DcerpcParser p;
  CollectSink sink;
  Feed(p, sink, conv, chunk);
  if (end) p.OnEnd(sink);
  EXPECT_FALSE(sink.unbalanced);
  return sink.events;
}

bool Has(const std::string& s, const std::string& needle) {
  return s.find(needle) != std::string::npos;
}

std::vector<Msg> AtsvcConversation(bool le) {
  const Auth challenge{10, 2, NtlmChallenge("CORP")};
  const Auth negotiate{10, 2, NtlmNegotiate()};
  const Auth authenticate{10, 2, NtlmAuthenticate("CORP", "appadmin", "AVMGMT01")};
  std::vector<Msg> conv;
  conv.push_back(
      {Direction::kToServer,
       Bind(2, le,
            {{0, kAtsvc, 1, 0, {kNdr}}, {1, kAtsvc, 1, 0, {kNdr64}}, {2, kAtsvc, 1, 0, {kBtfn}}},
            &negotiate)});
  conv.push_back({Direction::kToClient,
                  BindAck(2, le, "\\PIPE\\atsvc", {{0, 0}, {2, 2}, {3, 3}}, &challenge)});
  conv.push_back(
      {Direction::kToServer, Pdu(kDcerpcAuth3, 0x03, 2, le, W(le).U32(0).bytes(), &authenticate)});
  conv.push_back({Direction::kToServer, Request(3, le, 0, 0, 100)});
  conv.push_back({Direction::kToClient, Response(3, le, 8)});
  // A three-fragment request and two-fragment response.
  conv.push_back({Direction::kToServer, Request(4, le, 0, 2, 40, 0x01)});
  conv.push_back({Direction::kToServer, Request(4, le, 0, 2, 40, 0x00)});
  conv.push_back({Direction::kToServer, Request(4, le, 0, 2, 20, 0x02)});
  conv.push_back({Direction::kToClient, Response(4, le, 64, 0x01)});
  conv.push_back({Direction::kToClient, Response(4, le, 16, 0x02)});
  conv.push_back({Direction::kToServer, Request(5, le, 0, 1, 12)});
  conv.push_back({Direction::kToClient, Fault(5, le, 0x1c010002)});
  return conv;
}

// ---------------------------------------------------------------------------------------------

TEST(DcerpcNames, InterfacesAndOperations) {
  uint8_t u[16];
  const Bytes b = W(true).Uuid(kAtsvc).bytes();
  std::copy(b.begin(), b.end(), u);
  ASSERT_NE(DcerpcInterfaceName(u), nullptr);
  EXPECT_STREQ(DcerpcInterfaceName(u), "atsvc");
  EXPECT_STREQ(DcerpcOperationName(u, 0), "NetrJobAdd");
  EXPECT_STREQ(DcerpcOperationName(u, 3), "NetrJobGetInfo");
  EXPECT_EQ(DcerpcOperationName(u, 200), nullptr);
  const Bytes s = W(true).Uuid(kSvcctl).bytes();
  std::copy(s.begin(), s.end(), u);
  EXPECT_STREQ(DcerpcInterfaceName(u), "svcctl");
  EXPECT_STREQ(DcerpcOperationName(u, 15), "OpenSCManagerW");
  const Bytes x = W(true).Uuid("01234567-89ab-cdef-0123-456789abcdef").bytes();
  std::copy(x.begin(), x.end(), u);
  EXPECT_EQ(DcerpcInterfaceName(u), nullptr);
  EXPECT_EQ(DcerpcOperationName(u, 0), nullptr);
  EXPECT_STREQ(DcerpcPduTypeName(kDcerpcBindAck), "BINDACK");
  EXPECT_STREQ(DcerpcPduTypeName(kDcerpcAlterContextResp), "ALTER_CONTEXT_RESP");
  EXPECT_STREQ(DcerpcPduTypeName(99), "UNKNOWN");
}

TEST(DcerpcNames, GeneratedFileMatchesGenerator) {
  const std::string src = VIGIL_SOURCE_DIR;
  const std::string zeek = src + "/../shared/data/ref/zeek-dce-rpc-consts.zeek";
  if (!std::ifstream(zeek).good()) {
    GTEST_SKIP() << "Zeek constants not found at " << zeek << ": generator check skipped";
  }
  char tmpl[] = "/tmp/dcerpc_names_XXXXXX";
  const int fd = mkstemp(tmpl);
  ASSERT_GE(fd, 0);
  close(fd);
  const std::string cmd =
      "/usr/bin/python3 " + src + "/scripts/gen-dcerpc-names.py " + zeek + " -o " + tmpl;
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  auto slurp = [](const std::string& path) {
    std::ifstream f(path);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  };
  const std::string generated = slurp(tmpl);
  std::remove(tmpl);
  EXPECT_FALSE(generated.empty());
  EXPECT_TRUE(generated == slurp(src + "/dataplane/proto/dcerpc_names.inc"))
      << "dataplane/proto/dcerpc_names.inc is stale: rerun scripts/gen-dcerpc-names.py";
}

TEST(DcerpcProbeTest, RecognisesHeaders) {
  const Bytes bind = Bind(1, true, {{0, kAtsvc, 1, 0, {kNdr}}});
  EXPECT_EQ(DcerpcProbe(bind), ProbeResult::kYes);
  EXPECT_EQ(DcerpcParser::Probe(Direction::kToServer, bind), ProbeResult::kYes);
  EXPECT_EQ(DcerpcProbe(Bind(1, false, {{0, kAtsvc, 1, 0, {kNdr}}})), ProbeResult::kYes);
  EXPECT_EQ(DcerpcProbe(std::span<const uint8_t>(bind.data(), 6)), ProbeResult::kMaybe);
  EXPECT_EQ(DcerpcProbe({}), ProbeResult::kMaybe);
  const Bytes http = {'G', 'E', 'T', ' ', '/', ' ', 'H', 'T', 'T', 'P', '/', '1', '.', '1', 13, 10};
  EXPECT_EQ(DcerpcProbe(http), ProbeResult::kNo);
  Bytes v51 = bind;
  v51[1] = 1;
  EXPECT_EQ(DcerpcProbe(v51), ProbeResult::kNo);
  Bytes cl = bind;
  cl[2] = 4;  // connectionless "working"
  EXPECT_EQ(DcerpcProbe(cl), ProbeResult::kNo);
  Bytes drep = bind;
  drep[4] = 0x20;
  EXPECT_EQ(DcerpcProbe(drep), ProbeResult::kNo);
  Bytes short_frag = bind;
  short_frag[8] = 8, short_frag[9] = 0;
  EXPECT_EQ(DcerpcProbe(short_frag), ProbeResult::kNo);
}

TEST(DcerpcParserTest, BindWithThreeContextsAndAck) {
  for (bool le : {true, false}) {
    SCOPED_TRACE(le ? "little endian" : "big endian");
    auto conv = AtsvcConversation(le);
    conv.resize(2);
    DcerpcParser p;
    CollectSink sink;
    Feed(p, sink, conv);
    ASSERT_EQ(sink.events.size(), 1u);
    const std::string& e = sink.events[0];
    EXPECT_TRUE(Has(e, "\"event_type\":\"dcerpc\""));
    EXPECT_TRUE(Has(e, "\"request\":\"BIND\",\"response\":\"BINDACK\"")) << e;
    EXPECT_TRUE(Has(e, std::string("{\"uuid\":\"") + kAtsvc +
                           "\",\"version\":\"1.0\",\"ack_result\":0,\"ack_reason\":0,"
                           "\"service\":\"atsvc\"}"))
        << e;
    EXPECT_TRUE(Has(e, "\"ack_result\":2,\"ack_reason\":2")) << e;
    EXPECT_TRUE(Has(e, "\"ack_result\":3,\"ack_reason\":3")) << e;
    EXPECT_TRUE(Has(e, "\"call_id\":2,\"rpc_version\":\"5.0\"")) << e;
    EXPECT_TRUE(Has(e, "\"secondary_address\":\"\\\\PIPE\\\\atsvc\"")) << e;
    // The bind_ack's CHALLENGE, with the server's TargetInfo names.
    EXPECT_TRUE(Has(e,
                    "\"ntlmssp\":{\"type\":\"CHALLENGE\",\"target_name\":\"CORP\","
                    "\"server_nb_computer_name\":\"APP01\","
                    "\"server_dns_tree_name\":\"corp.test\","
                    "\"version\":\"10.0 build 17763 rev 15\"}"))
        << e;
    EXPECT_EQ(sink.messages[0],
              "DCERPC BIND atsvc v1.0 accepted, atsvc v1.0 provider_rejection, atsvc v1.0 "
              "negotiate_ack");
    const DcerpcInterface* ctx0 = p.connection().InterfaceFor(0);
    ASSERT_NE(ctx0, nullptr);
    EXPECT_STREQ(DcerpcInterfaceName(ctx0->uuid), "atsvc");
    EXPECT_EQ(ctx0->ver_major, 1);
    EXPECT_EQ(p.connection().InterfaceFor(1), nullptr);  // rejected
    EXPECT_EQ(p.connection().InterfaceFor(2), nullptr);  // negotiate ack, not a context
  }
}

TEST(DcerpcParserTest, FullConversationBothEndians) {
  std::vector<std::string> le_events;
  for (bool le : {true, false}) {
    SCOPED_TRACE(le ? "little endian" : "big endian");
    DcerpcParser p;
    CollectSink sink;
    Feed(p, sink, AtsvcConversation(le));
    p.OnEnd(sink);
    ASSERT_EQ(sink.events.size(), 5u);
    EXPECT_FALSE(sink.unbalanced);
    // AUTH3 carries who logged on.
    EXPECT_TRUE(Has(sink.events[1], "\"request\":\"AUTH3\",\"call_id\":2")) << sink.events[1];
    EXPECT_TRUE(Has(sink.events[1], "\"user\":\"appadmin\"")) << sink.events[1];
    EXPECT_TRUE(Has(sink.messages[1], "DCERPC AUTH3 NTLM AUTH CORP\\appadmin from AVMGMT01"))
        << sink.messages[1];
    // A single-fragment call.
    const std::string& r = sink.events[2];
    EXPECT_TRUE(Has(r,
                    "\"request\":\"REQUEST\",\"response\":\"RESPONSE\",\"req\":{\"opnum\":0,"
                    "\"frag_cnt\":1,\"stub_data_size\":100}"))
        << r;
    EXPECT_TRUE(Has(r, std::string("\"interfaces\":[{\"uuid\":\"") + kAtsvc +
                           "\",\"version\":\"1.0\",\"ack_result\":0,\"ack_reason\":0,"
                           "\"service\":\"atsvc\",\"procedure\":\"NetrJobAdd\"}]"))
        << r;
    EXPECT_TRUE(Has(r,
                    "\"res\":{\"frag_cnt\":1,\"stub_data_size\":8},\"call_id\":3,"
                    "\"rpc_version\":\"5.0\",\"interface\":\"atsvc\","
                    "\"operation\":\"NetrJobAdd\""))
        << r;
    EXPECT_FALSE(Has(r, ",\"opnum\":0,\"req\""));  // that is the smb.dcerpc shape
    EXPECT_EQ(sink.messages[2], "DCERPC REQUEST atsvc NetrJobAdd opnum 0 ok");
    // Multi-fragment: counted and summed.
    EXPECT_TRUE(Has(sink.events[3], "\"req\":{\"opnum\":2,\"frag_cnt\":3,\"stub_data_size\":100}"))
        << sink.events[3];
    EXPECT_TRUE(Has(sink.events[3], "\"res\":{\"frag_cnt\":2,\"stub_data_size\":80}"))
        << sink.events[3];
    EXPECT_EQ(sink.messages[3], "DCERPC REQUEST atsvc NetrJobEnum opnum 2 ok");
    // Fault.
    EXPECT_TRUE(Has(sink.events[4], "\"response\":\"FAULT\"")) << sink.events[4];
    EXPECT_TRUE(Has(sink.events[4], "\"fault_status\":\"0x1c010002\"")) << sink.events[4];
    EXPECT_FALSE(Has(sink.events[4], "\"res\":"));
    EXPECT_EQ(sink.messages[4], "DCERPC REQUEST atsvc NetrJobDel opnum 1 fault 0x1c010002");
    if (le) {
      le_events = sink.events;
    } else {
      EXPECT_EQ(sink.events, le_events);  // the representation does not show in the events
    }
  }
}

TEST(DcerpcParserTest, SplitAtEveryByteGivesSameEvents) {
  for (bool le : {true, false}) {
    const auto conv = AtsvcConversation(le);
    const auto whole = Events(conv);
    ASSERT_EQ(whole.size(), 5u);
    for (size_t chunk : {1, 2, 3, 5, 7, 16, 17, 64}) {
      EXPECT_EQ(Events(conv, chunk), whole) << "chunk " << chunk;
    }
    // Every two-piece split of every message.
    for (size_t m = 0; m < conv.size(); ++m) {
      for (size_t k = 1; k < conv[m].data.size(); ++k) {
        DcerpcParser p;
        CollectSink sink;
        for (size_t j = 0; j < conv.size(); ++j) {
          const Bytes& d = conv[j].data;
          if (j == m) {
            p.OnData(conv[j].dir, std::span<const uint8_t>(d.data(), k), sink);
            p.OnData(conv[j].dir, std::span<const uint8_t>(d.data() + k, d.size() - k), sink);
          } else {
            p.OnData(conv[j].dir, d, sink);
          }
        }
        p.OnEnd(sink);
        ASSERT_EQ(sink.events, whole) << "message " << m << " split at " << k;
      }
    }
  }
}

TEST(DcerpcParserTest, ManyPdusInOneSegment) {
  const auto conv = AtsvcConversation(true);
  Bytes ts, tc;
  for (const Msg& m : conv) {
    Bytes& out = m.dir == Direction::kToServer ? ts : tc;
    out.insert(out.end(), m.data.begin(), m.data.end());
  }
  DcerpcParser p;
  CollectSink sink;
  p.OnData(Direction::kToServer, ts, sink);
  p.OnData(Direction::kToClient, tc, sink);
  p.OnEnd(sink);
  // The bind is answered after the next bind-less PDUs of the client; all calls still match.
  EXPECT_EQ(sink.CountContaining("\"response\":\"RESPONSE\""), 2u);
  EXPECT_EQ(sink.CountContaining("\"response\":\"FAULT\""), 1u);
  EXPECT_EQ(sink.CountContaining("\"response\":\"BINDACK\""), 1u);
  EXPECT_EQ(sink.CountContaining("\"event_type\":\"anomaly\""), 0u);
}

TEST(DcerpcParserTest, ObjectUuidAndSmbStyleJson) {
  DcerpcConnection conn;
  struct Obs : DcerpcObserver {
    std::vector<DcerpcCall> calls;
    void OnCall(const DcerpcCall& c) noexcept override { calls.push_back(c); }
  } obs;
  conn.Feed(Direction::kToServer, Bind(1, true, {{7, kSamr, 1, 0, {kNdr}}}), obs);
  conn.Feed(Direction::kToClient, BindAck(1, true, "49667", {{0, 0}}), obs);
  conn.Feed(Direction::kToServer,
            Request(2, true, 7, 64, 24, 0x03, "11223344-5566-7788-99aa-bbccddeeff00"), obs);
  conn.Feed(Direction::kToClient, Response(2, true, 4), obs);
  ASSERT_EQ(obs.calls.size(), 2u);
  const DcerpcCall& c = obs.calls[1];
  EXPECT_TRUE(c.has_object_uuid);
  EXPECT_EQ(c.opnum, 64);
  EXPECT_EQ(c.context_id, 7);
  EXPECT_EQ(c.req_stub_size, 24u);
  EXPECT_EQ(std::string(obs.calls[0].secondary_address.view()), "49667");
  char buf[4096];
  JsonWriter w(buf, sizeof buf);
  conn.WriteCallJson(c, w);
  const std::string j(w.view());
  EXPECT_TRUE(Has(j, "\"opnum\":64,\"req\":{\"opnum\":64,\"frag_cnt\":1,\"stub_data_size\":24}"))
      << j;
  EXPECT_TRUE(Has(j, "\"object_uuid\":\"11223344-5566-7788-99aa-bbccddeeff00\"")) << j;
  EXPECT_TRUE(Has(j, "\"interface\":\"samr\",\"operation\":\"SamrConnect5\"")) << j;
  TextBuilder t;
  conn.AppendCallMessage(c, t);
  EXPECT_EQ(t.view(), "REQUEST samr SamrConnect5 opnum 64 ok");
}

TEST(DcerpcParserTest, AlterContextReplacesContext) {
  DcerpcParser p;
  CollectSink sink;
  Feed(p, sink,
       {{Direction::kToServer, Bind(1, true, {{0, kAtsvc, 1, 0, {kNdr}}})},
        {Direction::kToClient, BindAck(1, true, "135", {{0, 0}})},
        {Direction::kToServer,
         Bind(2, true, {{0, kSvcctl, 2, 0, {kNdr}}}, nullptr, kDcerpcAlterContext)},
        {Direction::kToClient, BindAck(2, true, "", {{0, 0}}, nullptr, kDcerpcAlterContextResp)},
        {Direction::kToServer, Request(3, true, 0, 15, 10)},
        {Direction::kToClient, Response(3, true, 20)}});
  ASSERT_EQ(sink.events.size(), 3u);
  EXPECT_TRUE(
      Has(sink.events[1], "\"request\":\"ALTER_CONTEXT\",\"response\":\"ALTER_CONTEXT_RESP\""))
      << sink.events[1];
  EXPECT_EQ(sink.messages[1], "DCERPC ALTER_CONTEXT svcctl v2.0 accepted");
  EXPECT_TRUE(Has(sink.events[2], std::string("\"interfaces\":[{\"uuid\":\"") + kSvcctl))
      << sink.events[2];
  EXPECT_EQ(sink.messages[2], "DCERPC REQUEST svcctl OpenSCManagerW opnum 15 ok");
}

TEST(DcerpcParserTest, BindNakAndUnreplied) {
  DcerpcParser p;
  CollectSink sink;
  Feed(p, sink,
       {{Direction::kToServer, Bind(1, true, {{0, kAtsvc, 1, 0, {kNdr}}})},
        {Direction::kToClient,
         Pdu(kDcerpcBindNak, 0x03, 1, true, W(true).U16(4).U8(1).U8(5).U8(0).bytes())},
        {Direction::kToServer, Bind(2, true, {{0, kAtsvc, 1, 0, {kNdr}}})},
        {Direction::kToServer, Request(3, true, 9, 1, 4)}});
  p.OnEnd(sink);
  ASSERT_EQ(sink.events.size(), 3u);
  EXPECT_TRUE(Has(sink.events[0], "\"response\":\"BINDNAK\"")) << sink.events[0];
  EXPECT_TRUE(Has(sink.events[0], "\"reject_reason\":4")) << sink.events[0];
  EXPECT_EQ(sink.messages[0], "DCERPC BIND atsvc v1.0 rejected (bind_nak reason 4)");
  EXPECT_EQ(sink.messages[1], "DCERPC BIND atsvc v1.0 unreplied");
  EXPECT_TRUE(Has(sink.events[2], "\"response\":\"UNREPLIED\"")) << sink.events[2];
  EXPECT_EQ(sink.messages[2], "DCERPC REQUEST context 9 opnum 1 unreplied");
}

TEST(DcerpcParserTest, ResponseWithoutRequest) {
  DcerpcParser p;
  CollectSink sink;
  Feed(p, sink, {{Direction::kToClient, Response(42, true, 12)}});
  ASSERT_EQ(sink.events.size(), 1u);
  EXPECT_TRUE(Has(sink.events[0], "\"request\":\"REQUEST_LOST\",\"response\":\"RESPONSE\""))
      << sink.events[0];
  EXPECT_EQ(sink.messages[0], "DCERPC RESPONSE call_id 42, request not seen");
}

TEST(DcerpcParserTest, PendingTableIsBounded) {
  DcerpcParser p;
  CollectSink sink;
  for (uint32_t id = 1; id <= 12; ++id) {
    p.OnData(Direction::kToServer, Request(id, true, 0, 0, 4), sink);
  }
  EXPECT_EQ(sink.events.size(), 12u - kDcerpcMaxPendingCalls);  // the oldest were reported
  EXPECT_TRUE(Has(sink.events[0], "\"call_id\":1,")) << sink.events[0];
  p.OnData(Direction::kToClient, Response(12, true, 4), sink);
  EXPECT_TRUE(Has(sink.events.back(), "\"response\":\"RESPONSE\",\"req\"")) << sink.events.back();
  p.OnEnd(sink);
  EXPECT_EQ(sink.events.size(), 12u);
  EXPECT_EQ(sink.CountContaining("UNREPLIED"), 11u);
}

TEST(DcerpcParserTest, MaybeAndOrphanedCallsComplete) {
  DcerpcParser p;
  CollectSink sink;
  p.OnData(Direction::kToServer, Request(1, true, 0, 0, 4, 0x43), sink);  // maybe
  EXPECT_EQ(sink.events.size(), 1u);
  p.OnData(Direction::kToServer, Request(2, true, 0, 0, 4), sink);
  p.OnData(Direction::kToServer, Pdu(kDcerpcOrphaned, 0x03, 2, true, {}), sink);
  EXPECT_EQ(sink.events.size(), 2u);
  p.OnData(Direction::kToServer, Pdu(kDcerpcShutdown, 0x03, 0, true, {}), sink);
  p.OnEnd(sink);
  EXPECT_EQ(sink.events.size(), 2u);
}

TEST(DcerpcParserTest, EndpointMapperAnswerIsLearned) {
  DcerpcParser p;
  CollectSink sink;
  Feed(p, sink,
       {{Direction::kToServer, Hex(kEpmBind)},
        {Direction::kToClient, Hex(kEpmBindAck)},
        {Direction::kToServer, Hex(kEpmMapRequest)},
        {Direction::kToClient, Hex(kEpmMapResponse)}});
  ASSERT_EQ(sink.events.size(), 2u);
  EXPECT_EQ(sink.messages[0], "DCERPC BIND epmapper v3.0 accepted, epmapper v3.0 negotiate_ack");
  EXPECT_TRUE(Has(sink.events[0], "\"secondary_address\":\"135\"")) << sink.events[0];
  EXPECT_EQ(sink.messages[1], "DCERPC REQUEST epmapper ept_map opnum 3 ok -> 192.168.10.10:49163");
  EXPECT_TRUE(Has(sink.events[1], std::string("\"endpoints\":[{\"ip\":\"192.168.10.10\","
                                              "\"port\":49163,\"uuid\":\"") +
                                      kSvcctl + "\",\"service\":\"svcctl\"}]"))
      << sink.events[1];
  ASSERT_EQ(p.endpoint_generation(), 1u);
  ASSERT_EQ(p.learned_endpoints().size(), 1u);
  const DcerpcEndpoint& e = p.learned_endpoints()[0];
  EXPECT_EQ(e.port, 49163);
  EXPECT_TRUE(e.has_ip);
  EXPECT_EQ(e.ip[0], 192);
  EXPECT_EQ(e.ip[3], 10);
  EXPECT_EQ(e.ver_major, 2);
  // Byte at a time: same result.
  DcerpcParser q;
  CollectSink sink2;
  Feed(q, sink2,
       {{Direction::kToServer, Hex(kEpmBind)},
        {Direction::kToClient, Hex(kEpmBindAck)},
        {Direction::kToServer, Hex(kEpmMapRequest)},
        {Direction::kToClient, Hex(kEpmMapResponse)}},
       1);
  EXPECT_EQ(sink2.events, sink.events);
  EXPECT_EQ(q.endpoint_generation(), 1u);
}

TEST(DcerpcParserTest, GarbageGivesOneAnomalyAndResynchronises) {
  Bytes garbage;
  for (int i = 0; i < 300; ++i) garbage.push_back(static_cast<uint8_t>(i * 37 + 11));
  Bytes stream = garbage;
  const Bytes req = Request(7, true, 0, 0, 8);
  stream.insert(stream.end(), req.begin(), req.end());
  for (size_t chunk : {0, 1, 13}) {
    DcerpcParser p;
    CollectSink sink;
    Feed(p, sink, {{Direction::kToServer, stream}, {Direction::kToClient, Response(7, true, 4)}},
         chunk);
    ASSERT_EQ(sink.events.size(), 2u) << chunk;
    EXPECT_TRUE(Has(sink.events[0], "\"event\":\"unsupported_version\"")) << sink.events[0];
    EXPECT_EQ(sink.messages[0], "ANOMALY dcerpc unsupported_version");
    EXPECT_TRUE(Has(sink.events[1], "\"call_id\":7")) << sink.events[1];
  }
}

TEST(DcerpcParserTest, MalformedHeaders) {
  {
    Bytes b = Request(1, true, 0, 0, 8);
    b[8] = 10;  // frag_length below the header's own size
    DcerpcParser p;
    CollectSink sink;
    p.OnData(Direction::kToServer, b, sink);
    ASSERT_GE(sink.events.size(), 1u);
    EXPECT_EQ(sink.messages[0], "ANOMALY dcerpc frag_length_too_short");
  }
  {
    // A request whose frag_length leaves no room for opnum: framing holds, next PDU parses.
    Bytes b = Pdu(kDcerpcRequest, 0x03, 1, true, {0, 0, 0, 0});
    const Bytes next = Request(2, true, 0, 0, 8);
    b.insert(b.end(), next.begin(), next.end());
    DcerpcParser p;
    CollectSink sink;
    p.OnData(Direction::kToServer, b, sink);
    p.OnEnd(sink);
    ASSERT_EQ(sink.events.size(), 3u);
    EXPECT_EQ(sink.messages[0], "ANOMALY dcerpc frag_length_too_short");
    EXPECT_TRUE(Has(sink.events[1], "\"truncated\":true")) << sink.events[1];
    EXPECT_TRUE(Has(sink.events[2], "\"call_id\":2")) << sink.events[2];
  }
  {
    Bytes b = Request(1, true, 0, 0, 8);
    b[10] = 0xff;  // auth_length larger than the PDU
    DcerpcParser p;
    CollectSink sink;
    p.OnData(Direction::kToServer, b, sink);
    ASSERT_EQ(sink.events.size(), 1u);
    EXPECT_EQ(sink.messages[0], "ANOMALY dcerpc invalid_auth_length");
  }
  {
    Bytes b = Bind(1, true, {{0, kAtsvc, 1, 0, {kNdr}}});
    b[24] = 9;  // nine context items announced, one present
    DcerpcParser p;
    CollectSink sink;
    p.OnData(Direction::kToServer, b, sink);
    p.OnEnd(sink);
    ASSERT_EQ(sink.events.size(), 2u);
    EXPECT_EQ(sink.messages[0], "ANOMALY dcerpc malformed_pdu");
    EXPECT_EQ(sink.messages[1], "DCERPC BIND atsvc v1.0 unreplied");
  }
  {
    Bytes b = Request(1, true, 0, 0, 8);
    b[2] = 6;  // connectionless "reject" on a connection
    DcerpcParser p;
    CollectSink sink;
    p.OnData(Direction::kToServer, b, sink);
    ASSERT_EQ(sink.events.size(), 1u);
    EXPECT_EQ(sink.messages[0], "ANOMALY dcerpc unexpected_pdu_type");
  }
}

TEST(DcerpcParserTest, DeadAfterRepeatedLosses) {
  // Headers that look right but say version 4, over and over: bounded anomalies.
  Bytes b;
  for (int i = 0; i < 50; ++i) {
    Bytes r = Request(1, true, 0, 0, 8);
    r[0] = 4;
    b.insert(b.end(), r.begin(), r.end());
  }
  DcerpcParser p;
  CollectSink sink;
  p.OnData(Direction::kToServer, b, sink);
  EXPECT_EQ(sink.events.size(), 1u);  // one loss, then silent scanning finds nothing plausible
}

TEST(DcerpcParserTest, AnomaliesAreBounded) {
  // Well-framed PDUs too short for their type: each is an anomaly, up to the cap.
  Bytes b;
  for (int i = 0; i < 100; ++i) {
    const Bytes r = Pdu(kDcerpcRequest, 0x03, 1, true, {0, 0, 0, 0});
    b.insert(b.end(), r.begin(), r.end());
  }
  DcerpcParser p;
  CollectSink sink;
  p.OnData(Direction::kToServer, b, sink);
  EXPECT_EQ(sink.CountContaining("\"event_type\":\"anomaly\""), 32u);
  EXPECT_EQ(p.anomalies_suppressed(), 68u);
}

TEST(DcerpcParserTest, GapInsideStubKeepsSync) {
  const Bytes req = Request(1, true, 0, 0, 500);
  DcerpcParser p;
  CollectSink sink;
  p.OnData(Direction::kToServer, std::span<const uint8_t>(req.data(), 100), sink);
  p.OnGap(Direction::kToServer, 300, sink);
  p.OnData(Direction::kToServer, std::span<const uint8_t>(req.data() + 400, req.size() - 400),
           sink);
  p.OnData(Direction::kToClient, Response(1, true, 4), sink);
  ASSERT_EQ(sink.events.size(), 1u);
  EXPECT_TRUE(Has(sink.events[0], "\"stub_data_size\":500")) << sink.events[0];
}

TEST(DcerpcParserTest, GapAcrossPduBoundaryResynchronises) {
  const Bytes a = Request(1, true, 0, 0, 40);
  const Bytes b = Request(2, true, 0, 0, 40);
  DcerpcParser p;
  CollectSink sink;
  p.OnData(Direction::kToServer, std::span<const uint8_t>(a.data(), 30), sink);
  p.OnGap(Direction::kToServer, static_cast<uint32_t>(a.size() - 30 + 20), sink);
  p.OnData(Direction::kToServer, std::span<const uint8_t>(b.data() + 20, b.size() - 20), sink);
  p.OnData(Direction::kToServer, Request(3, true, 0, 0, 40), sink);
  p.OnData(Direction::kToClient, Response(3, true, 4), sink);
  EXPECT_EQ(sink.CountContaining("\"event\":\"gap\""), 1u);
  EXPECT_EQ(sink.CountContaining("\"call_id\":3,"), 1u);
  p.OnEnd(sink);
  EXPECT_EQ(sink.CountContaining("\"call_id\":1,"), 1u);  // reported unreplied at the end
}

TEST(DcerpcParserTest, KerberosVerifierIsCountedNotDecoded) {
  Auth krb{16, 6, Bytes(1500, 0x6e)};
  DcerpcParser p;
  CollectSink sink;
  p.OnData(Direction::kToServer, Bind(1, true, {{0, kAtsvc, 1, 0, {kNdr}}}, &krb), sink);
  p.OnData(Direction::kToClient, BindAck(1, true, "135", {{0, 0}}), sink);
  ASSERT_EQ(sink.events.size(), 1u);
  EXPECT_TRUE(Has(sink.events[0], "\"auth_type\":\"RPC_C_AUTHN_GSS_KERBEROS\"")) << sink.events[0];
  EXPECT_EQ(p.connection().other_auth_count(), 1u);
}

TEST(DcerpcParserTest, SizeIsModest) {
  RecordProperty("sizeof_DcerpcParser", static_cast<int>(sizeof(DcerpcParser)));
  RecordProperty("sizeof_DcerpcConnection", static_cast<int>(sizeof(DcerpcConnection)));
  EXPECT_LT(sizeof(DcerpcParser), 8192u);
}

}  // namespace
}  // namespace vigil::proto
