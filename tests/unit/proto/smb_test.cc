// SmbParser on crafted SMB1/SMB2 conversations: transactions and their EVE fields, named pipes
// with DCE-RPC, the file seam, compound and async messages, framing under any split, gaps.
#include "dataplane/proto/smb.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/unit/proto/collect_sink.h"

namespace vigil::proto {
namespace {

using Bytes = std::vector<uint8_t>;
using testing::CollectSink;

void Put8(Bytes& b, uint8_t v) { b.push_back(v); }
void Put16(Bytes& b, uint16_t v) {
  b.push_back(v & 0xFF);
  b.push_back(v >> 8);
}
void Put32(Bytes& b, uint32_t v) {
  Put16(b, v & 0xFFFF);
  Put16(b, v >> 16);
}
void Put64(Bytes& b, uint64_t v) {
  Put32(b, static_cast<uint32_t>(v));
  Put32(b, static_cast<uint32_t>(v >> 32));
}
void PutZeros(Bytes& b, size_t n) { b.insert(b.end(), n, 0); }
void Append(Bytes& b, const Bytes& x) { b.insert(b.end(), x.begin(), x.end()); }
Bytes Utf16(const std::string& s) {
  Bytes b;
  for (char c : s) Put16(b, static_cast<uint8_t>(c));
  return b;
}
void Set16(Bytes& b, size_t at, uint16_t v) {
  b[at] = v & 0xFF;
  b[at + 1] = v >> 8;
}
void Set32(Bytes& b, size_t at, uint32_t v) {
  Set16(b, at, v & 0xFFFF);
  Set16(b, at + 2, v >> 16);
}

Bytes Nbss(const Bytes& payload) {
  Bytes b = {0x00, static_cast<uint8_t>(payload.size() >> 16),
             static_cast<uint8_t>(payload.size() >> 8), static_cast<uint8_t>(payload.size())};
  Append(b, payload);
  return b;
}

constexpr uint64_t kFiletime2017 = 131570589990000000ull;  // 2017-12-06T18:36:39Z
constexpr uint64_t kSession = 0x0000400000000011ull;
constexpr uint32_t kTree = 5;

struct Hdr {
  uint16_t cmd = 0;
  uint64_t msg_id = 0;
  bool response = false;
  uint32_t status = 0;
  uint32_t tree = kTree;
  uint64_t session = kSession;
  uint32_t flags = 0;
  bool async = false;
};

Bytes Smb2(const Hdr& h, const Bytes& body) {
  Bytes b = {0xFE, 'S', 'M', 'B'};
  Put16(b, 64);
  Put16(b, 1);  // credit charge
  Put32(b, h.response ? h.status : 0);
  Put16(b, h.cmd);
  Put16(b, 1);
  Put32(b, (h.response ? 1u : 0u) | (h.async ? 2u : 0u) | h.flags);
  Put32(b, 0);  // next command
  Put64(b, h.msg_id);
  if (h.async) {
    Put64(b, 0x77);  // async id
  } else {
    Put32(b, 0);
    Put32(b, h.tree);
  }
  Put64(b, h.session);
  PutZeros(b, 16);
  Append(b, body);
  return b;
}

// Compound: each record 8-aligned, NextCommand set.
Bytes Compound(std::vector<Bytes> recs) {
  Bytes out;
  for (size_t i = 0; i < recs.size(); ++i) {
    Bytes r = recs[i];
    if (i + 1 < recs.size()) {
      while (r.size() % 8) r.push_back(0);
      Set32(r, 20, static_cast<uint32_t>(r.size()));
    }
    Append(out, r);
  }
  return out;
}

const uint8_t kFid[16] = {0x49, 0, 0, 0, 0, 0, 0, 0, 0x01, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF};
const uint8_t kPipeFid[16] = {0x4d, 0, 0, 0, 0, 0, 0, 0, 0x05, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF};
Bytes Fid(const uint8_t* f) { return Bytes(f, f + 16); }

Bytes NegotiateReq(uint64_t id) {
  Bytes body;
  Put16(body, 36);
  Put16(body, 2);  // dialect count
  Put16(body, 1);
  Put16(body, 0);
  Put32(body, 0);
  for (int i = 0; i < 16; ++i) Put8(body, static_cast<uint8_t>(i));  // client guid
  Put64(body, 0);
  Put16(body, 0x0202);
  Put16(body, 0x0311);
  return Smb2({.cmd = 0, .msg_id = id, .tree = 0, .session = 0}, body);
}
Bytes NegotiateResp(uint64_t id, uint16_t dialect) {
  Bytes body;
  Put16(body, 65);
  Put16(body, 1);
  Put16(body, dialect);
  Put16(body, 0);
  for (int i = 0; i < 16; ++i) Put8(body, static_cast<uint8_t>(0xA0 + i));  // server guid
  Put32(body, 0);
  Put32(body, 0x800000);
  Put32(body, 0x100000);  // max read
  Put32(body, 0x200000);  // max write
  PutZeros(body, 16);
  Put16(body, 0);
  Put16(body, 0);
  Put32(body, 0);
  return Smb2({.cmd = 0, .msg_id = id, .response = true, .tree = 0, .session = 0}, body);
}

// NTLMSSP AUTHENTICATE with domain/user/workstation and a version.
Bytes NtlmAuth(const std::string& domain, const std::string& user, const std::string& host) {
  const Bytes d = Utf16(domain), u = Utf16(user), w = Utf16(host);
  const Bytes nt(48, 0x11), lm(24, 0);
  Bytes b = {'N', 'T', 'L', 'M', 'S', 'S', 'P', 0};
  Put32(b, 3);
  uint32_t off = 72;
  auto field = [&](const Bytes& x) {
    Put16(b, static_cast<uint16_t>(x.size()));
    Put16(b, static_cast<uint16_t>(x.size()));
    Put32(b, off);
    off += static_cast<uint32_t>(x.size());
  };
  field(lm);
  field(nt);
  field(d);
  field(u);
  field(w);
  field(Bytes());        // session key
  Put32(b, 0x02000001);  // unicode | version
  Put8(b, 10);
  Put8(b, 0);
  Put16(b, 19041);
  PutZeros(b, 3);
  Put8(b, 15);
  Append(b, lm);
  Append(b, nt);
  Append(b, d);
  Append(b, u);
  Append(b, w);
  return b;
}

// NTLMSSP NEGOTIATE (no names, no version) and a CHALLENGE whose TargetInfo names the server.
Bytes NtlmNegotiate() {
  Bytes b = {'N', 'T', 'L', 'M', 'S', 'S', 'P', 0};
  Put32(b, 1);
  Put32(b, 0x00000001);
  PutZeros(b, 16);
  return b;
}
Bytes NtlmChallenge(const std::string& target, const std::string& nb_computer,
                    const std::string& dns_computer) {
  const Bytes t = Utf16(target);
  Bytes info;
  auto pair = [&info](uint16_t id, const Bytes& v) {
    Put16(info, id);
    Put16(info, static_cast<uint16_t>(v.size()));
    Append(info, v);
  };
  pair(2, t);
  pair(1, Utf16(nb_computer));
  pair(3, Utf16(dns_computer));
  Bytes ts;
  Put64(ts, kFiletime2017 + 1234567);  // 2017-12-06T18:36:39.1234567
  pair(7, ts);
  pair(0, {});
  Bytes b = {'N', 'T', 'L', 'M', 'S', 'S', 'P', 0};
  Put32(b, 2);
  Put16(b, static_cast<uint16_t>(t.size()));
  Put16(b, static_cast<uint16_t>(t.size()));
  Put32(b, 48);
  Put32(b, 0x00800001);  // unicode, target info
  PutZeros(b, 16);       // server challenge, reserved
  Put16(b, static_cast<uint16_t>(info.size()));
  Put16(b, static_cast<uint16_t>(info.size()));
  Put32(b, static_cast<uint32_t>(48 + t.size()));
  Append(b, t);
  Append(b, info);
  return b;
}
// DER element with a short or one-byte long length.
Bytes Der(uint8_t tag, const Bytes& content) {
  Bytes b = {tag};
  if (content.size() >= 128) Put8(b, 0x81);
  Put8(b, static_cast<uint8_t>(content.size()));
  Append(b, content);
  return b;
}
// SPNEGO negTokenResp { negState accept-incomplete, responseToken }.
Bytes SpnegoResp(const Bytes& token) {
  Bytes seq = Der(0xa0, Bytes{0x0a, 0x01, 0x01});
  Append(seq, Der(0xa2, Der(0x04, token)));
  return Der(0xa1, Der(0x30, seq));
}

Bytes SessionSetupReq(uint64_t id, const Bytes& blob) {
  Bytes body;
  Put16(body, 25);
  Put8(body, 0);
  Put8(body, 1);
  Put32(body, 0);
  Put32(body, 0);
  Put16(body, 64 + 24);
  Put16(body, static_cast<uint16_t>(blob.size()));
  Put64(body, 0);
  Append(body, blob);
  return Smb2({.cmd = 1, .msg_id = id, .tree = 0}, body);
}
Bytes SimpleResp(uint16_t cmd, uint64_t id, uint32_t status, const Bytes& body,
                 uint32_t tree = kTree, bool async = false) {
  return Smb2(
      {.cmd = cmd, .msg_id = id, .response = true, .status = status, .tree = tree, .async = async},
      body);
}
Bytes ErrorBody() {
  Bytes b;
  Put16(b, 9);
  PutZeros(b, 7);
  return b;
}
Bytes SessionSetupResp(uint64_t id, uint32_t status, const Bytes& blob = {}) {
  Bytes body;
  Put16(body, 9);
  Put16(body, 0);
  Put16(body, 72);
  Put16(body, static_cast<uint16_t>(blob.size()));
  Append(body, blob);
  return SimpleResp(1, id, status, body, 0);
}

Bytes TreeConnectReq(uint64_t id, const std::string& path) {
  const Bytes p = Utf16(path);
  Bytes body;
  Put16(body, 9);
  Put16(body, 0);
  Put16(body, 72);
  Put16(body, static_cast<uint16_t>(p.size()));
  Append(body, p);
  return Smb2({.cmd = 3, .msg_id = id, .tree = 0}, body);
}
Bytes TreeConnectResp(uint64_t id, uint8_t share_type, uint32_t tree = kTree) {
  Bytes body;
  Put16(body, 16);
  Put8(body, share_type);
  Put8(body, 0);
  Put32(body, 0);
  Put32(body, 0);
  Put32(body, 0x1F01FF);
  return SimpleResp(3, id, 0, body, tree);
}

Bytes CreateReq(uint64_t id, const std::string& name, uint32_t options = 0, uint32_t flags = 0) {
  const Bytes n = Utf16(name);
  Bytes body;
  Put16(body, 57);
  Put8(body, 0);
  Put8(body, 0);
  Put32(body, 2);
  Put64(body, 0);
  Put64(body, 0);
  Put32(body, 0x120089);  // access
  Put32(body, 0);
  Put32(body, 7);
  Put32(body, 1);  // FILE_OPEN
  Put32(body, options);
  Put16(body, 120);
  Put16(body, static_cast<uint16_t>(n.size()));
  Put32(body, 0);
  Put32(body, 0);
  Append(body, n);
  if (n.empty()) Put8(body, 0);
  return Smb2({.cmd = 5, .msg_id = id, .flags = flags}, body);
}
Bytes CreateResp(uint64_t id, const uint8_t* fid, uint64_t size) {
  Bytes body;
  Put16(body, 89);
  Put8(body, 0);
  Put8(body, 0);
  Put32(body, 1);  // opened
  for (int i = 0; i < 4; ++i) Put64(body, kFiletime2017);
  Put64(body, size);
  Put64(body, size);
  Put32(body, 0x20);
  Put32(body, 0);
  Append(body, Fid(fid));
  Put32(body, 0);
  Put32(body, 0);
  return SimpleResp(5, id, 0, body);
}
Bytes CloseReq(uint64_t id, const uint8_t* fid, uint32_t flags = 0) {
  Bytes body;
  Put16(body, 24);
  Put16(body, 0);
  Put32(body, 0);
  Append(body, Fid(fid));
  return Smb2({.cmd = 6, .msg_id = id, .flags = flags}, body);
}
Bytes CloseResp(uint64_t id) {
  Bytes body;
  Put16(body, 60);
  PutZeros(body, 58);
  return SimpleResp(6, id, 0, body);
}
Bytes ReadReq(uint64_t id, const uint8_t* fid, uint32_t len, uint64_t offset) {
  Bytes body;
  Put16(body, 49);
  Put8(body, 0);
  Put8(body, 0);
  Put32(body, len);
  Put64(body, offset);
  Append(body, Fid(fid));
  Put32(body, 0);
  Put32(body, 0);
  Put32(body, 0);
  Put16(body, 0);
  Put16(body, 0);
  Put8(body, 0);
  return Smb2({.cmd = 8, .msg_id = id}, body);
}
Bytes ReadResp(uint64_t id, const Bytes& data, uint32_t status = 0) {
  Bytes body;
  Put16(body, 17);
  Put8(body, 80);
  Put8(body, 0);
  Put32(body, static_cast<uint32_t>(data.size()));
  Put32(body, 0);
  Put32(body, 0);
  Append(body, data);
  return SimpleResp(8, id, status, body);
}
Bytes WriteReq(uint64_t id, const uint8_t* fid, const Bytes& data, uint64_t offset = 0) {
  Bytes body;
  Put16(body, 49);
  Put16(body, 112);
  Put32(body, static_cast<uint32_t>(data.size()));
  Put64(body, offset);
  Append(body, Fid(fid));
  Put32(body, 0);
  Put32(body, 0);
  Put16(body, 0);
  Put16(body, 0);
  Put32(body, 0);
  Append(body, data);
  return Smb2({.cmd = 9, .msg_id = id}, body);
}
Bytes WriteResp(uint64_t id, uint32_t count) {
  Bytes body;
  Put16(body, 17);
  Put16(body, 0);
  Put32(body, count);
  Put32(body, 0);
  Put16(body, 0);
  Put16(body, 0);
  return SimpleResp(9, id, 0, body);
}
Bytes IoctlReq(uint64_t id, uint32_t ctl, const uint8_t* fid, const Bytes& in) {
  Bytes body;
  Put16(body, 57);
  Put16(body, 0);
  Put32(body, ctl);
  Append(body, Fid(fid));
  Put32(body, 120);
  Put32(body, static_cast<uint32_t>(in.size()));
  Put32(body, 0);
  Put32(body, 0);
  Put32(body, 0);
  Put32(body, 4280);
  Put32(body, 1);
  Put32(body, 0);
  Append(body, in);
  return Smb2({.cmd = 11, .msg_id = id}, body);
}
Bytes IoctlResp(uint64_t id, uint32_t ctl, const uint8_t* fid, const Bytes& out) {
  Bytes body;
  Put16(body, 49);
  Put16(body, 0);
  Put32(body, ctl);
  Append(body, Fid(fid));
  Put32(body, 112);
  Put32(body, 0);
  Put32(body, 112);
  Put32(body, static_cast<uint32_t>(out.size()));
  Put32(body, 0);
  Put32(body, 0);
  Append(body, out);
  return SimpleResp(11, id, 0, body, 0, true);
}
Bytes SetInfoReq(uint64_t id, const uint8_t* fid, uint8_t cls, const Bytes& buf,
                 uint32_t flags = 0) {
  Bytes body;
  Put16(body, 33);
  Put8(body, 1);
  Put8(body, cls);
  Put32(body, static_cast<uint32_t>(buf.size()));
  Put16(body, 96);
  Put16(body, 0);
  Put32(body, 0);
  Append(body, Fid(fid));
  Append(body, buf);
  return Smb2({.cmd = 17, .msg_id = id, .flags = flags}, body);
}
Bytes Empty(uint16_t cmd, uint64_t id, bool response, uint32_t status = 0) {
  Bytes body;
  Put16(body, 4);
  Put16(body, 0);
  return response ? SimpleResp(cmd, id, status, body) : Smb2({.cmd = cmd, .msg_id = id}, body);
}

// DCE-RPC PDUs.
const uint8_t kAtsvc[16] = {0x82, 0x06, 0xf7, 0x1f, 0x51, 0x0a, 0xe8, 0x30,
                            0x07, 0x6d, 0x74, 0x0b, 0xe8, 0xce, 0xe9, 0x8b};
const uint8_t kNdr[16] = {0x04, 0x5d, 0x88, 0x8a, 0xeb, 0x1c, 0xc9, 0x11,
                          0x9f, 0xe8, 0x08, 0x00, 0x2b, 0x10, 0x48, 0x60};
Bytes DceHdr(uint8_t type, uint32_t call_id) {
  Bytes b = {5, 0, type, 3, 0x10, 0, 0, 0};
  Put16(b, 0);  // frag_len, set later
  Put16(b, 0);
  Put32(b, call_id);
  return b;
}
Bytes DceDone(Bytes b) {
  Set16(b, 8, static_cast<uint16_t>(b.size()));
  return b;
}
Bytes Bind(uint32_t call_id) {
  Bytes b = DceHdr(11, call_id);
  Put16(b, 4280);
  Put16(b, 4280);
  Put32(b, 0);
  Put8(b, 1);
  PutZeros(b, 3);
  Put16(b, 0);  // context id
  Put8(b, 1);
  Put8(b, 0);
  b.insert(b.end(), kAtsvc, kAtsvc + 16);
  Put16(b, 1);
  Put16(b, 0);
  b.insert(b.end(), kNdr, kNdr + 16);
  Put32(b, 2);
  return DceDone(b);
}
Bytes BindAck(uint32_t call_id) {
  Bytes b = DceHdr(12, call_id);
  Put16(b, 4280);
  Put16(b, 4280);
  Put32(b, 0x1234);
  const std::string addr = "\\PIPE\\atsvc";
  Put16(b, static_cast<uint16_t>(addr.size() + 1));
  b.insert(b.end(), addr.begin(), addr.end());
  Put8(b, 0);
  while (b.size() % 4) Put8(b, 0);
  Put8(b, 1);
  PutZeros(b, 3);
  Put16(b, 0);  // accepted
  Put16(b, 0);
  b.insert(b.end(), kNdr, kNdr + 16);
  Put32(b, 2);
  return DceDone(b);
}
Bytes DceRequest(uint32_t call_id, uint16_t opnum, size_t stub) {
  Bytes b = DceHdr(0, call_id);
  Put32(b, static_cast<uint32_t>(stub));
  Put16(b, 0);
  Put16(b, opnum);
  PutZeros(b, stub);
  return DceDone(b);
}
Bytes DceResponse(uint32_t call_id, size_t stub) {
  Bytes b = DceHdr(2, call_id);
  Put32(b, static_cast<uint32_t>(stub));
  Put16(b, 0);
  Put8(b, 0);
  Put8(b, 0);
  PutZeros(b, stub);
  return DceDone(b);
}

struct Step {
  Direction dir;
  Bytes bytes;
};
Step C(const Bytes& smb) { return {Direction::kToServer, Nbss(smb)}; }
Step S(const Bytes& smb) { return {Direction::kToClient, Nbss(smb)}; }

// Feeds the steps in chunks of `chunk` bytes (0: whole) and ends the flow.
void Replay(const std::vector<Step>& steps, CollectSink& sink, size_t chunk = 0,
            SmbParser* parser = nullptr) {
  SmbParser local;
  SmbParser& p = parser != nullptr ? *parser : local;
  for (const Step& s : steps) {
    if (chunk == 0) {
      p.OnData(s.dir, s.bytes, sink);
      continue;
    }
    for (size_t i = 0; i < s.bytes.size(); i += chunk) {
      const size_t n = std::min(chunk, s.bytes.size() - i);
      p.OnData(s.dir, std::span<const uint8_t>(s.bytes.data() + i, n), sink);
    }
  }
  p.OnEnd(sink);
}

size_t CountType(const CollectSink& s, const std::string& type) {
  size_t n = 0;
  for (const auto& t : s.types) n += t == type;
  return n;
}
std::string Find(const CollectSink& s, const std::string& needle) {
  for (const auto& e : s.events) {
    if (e.find(needle) != std::string::npos) return e;
  }
  return "";
}

// A whole SMB2 session: negotiate, NTLM session setup, a disk tree with a file read and written,
// an IPC$ tree with a DCE-RPC pipe (write/read bind, transceive request), delete, logoff.
std::vector<Step> Conversation() {
  std::vector<Step> v;
  v.push_back(C(NegotiateReq(0)));
  v.push_back(S(NegotiateResp(0, 0x0311)));
  v.push_back(C(SessionSetupReq(1, NtlmAuth("CORP", "appadmin", "AVMGMT01"))));
  v.push_back(S(SessionSetupResp(1, 0)));
  v.push_back(C(TreeConnectReq(2, "\\\\10.0.0.5\\C$")));
  v.push_back(S(TreeConnectResp(2, 1)));
  v.push_back(C(CreateReq(3, "Windows\\Tasks\\AV.job")));
  v.push_back(S(CreateResp(3, kFid, 1092)));
  v.push_back(C(ReadReq(4, kFid, 4096, 0)));
  v.push_back(S(ReadResp(4, Bytes(1092, 'A'))));
  v.push_back(C(WriteReq(5, kFid, Bytes(100, 'B'), 1092)));
  v.push_back(S(WriteResp(5, 100)));
  v.push_back(C(CloseReq(6, kFid)));
  v.push_back(S(CloseResp(6)));
  v.push_back(C(TreeConnectReq(7, "\\\\10.0.0.5\\IPC$")));
  v.push_back(S(TreeConnectResp(7, 2, 6)));
  return v;
}

Bytes WithTree(Bytes smb, uint32_t tree) {
  Set32(smb, 36, tree);
  return smb;
}

std::vector<Step> PipeConversation() {
  std::vector<Step> v = Conversation();
  v.push_back(C(WithTree(CreateReq(8, "atsvc"), 6)));
  v.push_back(S(WithTree(CreateResp(8, kPipeFid, 0), 6)));
  v.push_back(C(WithTree(WriteReq(9, kPipeFid, Bind(2)), 6)));
  v.push_back(S(WithTree(WriteResp(9, 72), 6)));
  v.push_back(C(WithTree(ReadReq(10, kPipeFid, 1024, 0), 6)));
  v.push_back(S(WithTree(ReadResp(10, BindAck(2)), 6)));
  v.push_back(C(WithTree(IoctlReq(11, 0x0011C017, kPipeFid, DceRequest(3, 0, 136)), 6)));
  // Async: STATUS_PENDING first, then the answer.
  v.push_back(S(Smb2({.cmd = 11, .msg_id = 11, .response = true, .status = 0x103, .async = true},
                     ErrorBody())));
  v.push_back(S(IoctlResp(11, 0x0011C017, kPipeFid, DceResponse(3, 8))));
  v.push_back(C(WithTree(CloseReq(12, kPipeFid), 6)));
  v.push_back(S(WithTree(CloseResp(12), 6)));
  v.push_back(C(WithTree(Empty(4, 13, false), 6)));
  v.push_back(S(WithTree(Empty(4, 13, true), 6)));
  v.push_back(C(Empty(2, 14, false)));
  v.push_back(S(Empty(2, 14, true)));
  return v;
}

TEST(SmbProbe, RecognisesNbssAndSmb) {
  const Bytes smb2 = Nbss(NegotiateReq(0));
  EXPECT_EQ(SmbParser::Probe(Direction::kToServer, smb2), ProbeResult::kYes);
  EXPECT_EQ(SmbParser::Probe(Direction::kToServer, std::span(smb2).first(6)), ProbeResult::kMaybe);
  const Bytes http = {'G', 'E', 'T', ' ', '/', ' ', 'H', 'T'};
  EXPECT_EQ(SmbParser::Probe(Direction::kToServer, http), ProbeResult::kNo);
  Bytes transform = {0, 0, 0, 60, 0xFD, 'S', 'M', 'B'};
  EXPECT_EQ(SmbParser::Probe(Direction::kToServer, transform), ProbeResult::kYes);
  Bytes sreq = {0x81, 0, 0, 68, 0x20};
  sreq.insert(sreq.end(), 32, 'E');
  EXPECT_EQ(SmbParser::Probe(Direction::kToServer, sreq), ProbeResult::kYes);
  const Bytes notsmb = {0, 0, 0, 60, 0xFE, 'X', 'M', 'B'};
  EXPECT_EQ(SmbParser::Probe(Direction::kToServer, notsmb), ProbeResult::kNo);
}

TEST(SmbNames, Tables) {
  EXPECT_STREQ(SmbNtStatusName(0), "STATUS_SUCCESS");
  EXPECT_STREQ(SmbNtStatusName(0xC0000022), "STATUS_ACCESS_DENIED");
  EXPECT_STREQ(SmbNtStatusName(0x80000006), "STATUS_NO_MORE_FILES");
  EXPECT_EQ(SmbNtStatusName(0xC0FFEE00), nullptr);
  EXPECT_STREQ(Smb2CommandName(14), "SMB2_COMMAND_FIND");
  EXPECT_STREQ(Smb2CommandName(2), "SMB2_COMMAND_SESSION_LOGOFF");
  EXPECT_STREQ(Smb1CommandName(0xA2), "SMB1_COMMAND_NT_CREATE_ANDX");
  EXPECT_STREQ(Smb1CommandName(0x72), "SMB1_COMMAND_NEGOTIATE_PROTOCOL");
  EXPECT_STREQ(Smb2DialectName(0x0300), "3.00");
  EXPECT_STREQ(Smb2DialectName(0x02FF), "2.??");
  EXPECT_STREQ(SmbFsctlName(0x0011C017), "FSCTL_PIPE_TRANSCEIVE");
  char out[37];
  const uint8_t fid[16] = {0x65, 0, 0, 0, 0x30, 0, 0, 0, 0x25, 0, 0x20, 0, 0xff, 0xff, 0xff, 0xff};
  EXPECT_EQ(FormatSmbFuid(fid, out), 36u);
  EXPECT_STREQ(out, "00000065-0030-0000-0025-0020ffffffff");
  const uint8_t fid1[2] = {0x01, 0x40};
  EXPECT_EQ(FormatSmbFuid(fid1, out), 4u);
  EXPECT_STREQ(out, "4001");
}

// The committed table is what the generator makes of the Zeek consts file.
TEST(SmbNames, GeneratedFileIsCurrent) {
  const std::string root = VIGIL_SOURCE_DIR;
  const std::string zeek = root + "/../shared/data/ref/zeek-smb-consts.zeek";
  if (!std::ifstream(zeek).good()) {
    GTEST_SKIP() << "Zeek SMB consts not found at " << zeek << ": cannot check smb_names.inc";
  }
  if (!std::ifstream("/usr/bin/python3").good()) GTEST_SKIP() << "/usr/bin/python3 missing";
  const std::string cmd =
      "/usr/bin/python3 " + root + "/scripts/gen-smb-names.py " + zeek + " -o -";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string generated;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) generated.append(buf, n);
  ASSERT_EQ(pclose(p), 0);
  std::ifstream in(root + "/dataplane/proto/smb_names.inc");
  std::stringstream committed;
  committed << in.rdbuf();
  EXPECT_EQ(generated, committed.str())
      << "dataplane/proto/smb_names.inc is stale: regenerate with scripts/gen-smb-names.py";
}

TEST(Smb2, NegotiateSessionTreeCreateReadWriteClose) {
  CollectSink sink;
  Replay(Conversation(), sink);
  EXPECT_FALSE(sink.unbalanced);
  EXPECT_EQ(CountType(sink, "anomaly"), 0u) << sink.events[0];

  const std::string neg = Find(sink, "NEGOTIATE_PROTOCOL");
  EXPECT_NE(neg.find("\"dialect\":\"3.11\""), std::string::npos) << neg;
  EXPECT_NE(neg.find("\"client_dialects\":[\"2.02\",\"3.11\"]"), std::string::npos) << neg;
  EXPECT_NE(neg.find("\"client_guid\":\"03020100-0504-0706-0908-0b0a0f0e0d0c\""), std::string::npos)
      << neg;
  EXPECT_NE(neg.find("\"max_read_size\":1048576"), std::string::npos) << neg;

  const std::string ss = Find(sink, "SESSION_SETUP");
  EXPECT_NE(ss.find("\"ntlmssp\":{\"domain\":\"CORP\",\"user\":\"appadmin\",\"host\":\"AVMGMT01\""),
            std::string::npos)
      << ss;
  EXPECT_NE(ss.find("\"version\":\"10.0 build 19041 rev 15\""), std::string::npos) << ss;
  EXPECT_NE(ss.find("SMB2 SESSION_SETUP success NTLM AUTH CORP\\\\appadmin from AVMGMT01"),
            std::string::npos)
      << ss;

  const std::string tc = Find(sink, "TREE_CONNECT\",\"status\":\"STATUS_SUCCESS\"");
  EXPECT_NE(tc.find("\"share\":\"\\\\\\\\10.0.0.5\\\\C$\",\"share_type\":\"FILE\""),
            std::string::npos)
      << tc;
  const std::string ipc = Find(sink, "\"named_pipe\"");
  EXPECT_NE(ipc.find("\"named_pipe\":\"\\\\\\\\10.0.0.5\\\\IPC$\",\"share_type\":\"PIPE\""),
            std::string::npos)
      << ipc;
  EXPECT_NE(ipc.find("\"tree_id\":6"), std::string::npos) << ipc;

  const std::string cr = Find(sink, "SMB2_COMMAND_CREATE");
  EXPECT_NE(cr.find("\"filename\":\"Windows\\\\Tasks\\\\AV.job\",\"disposition\":\"FILE_OPEN\","
                    "\"access\":\"normal\",\"created\":1512585399,\"accessed\":1512585399,"
                    "\"modified\":1512585399,\"changed\":1512585399,\"size\":1092,"
                    "\"fuid\":\"00000049-0000-0000-0001-0000ffffffff\""),
            std::string::npos)
      << cr;
  EXPECT_NE(cr.find("\"times\":{\"created\":\"2017-12-06T18:36:39.0000000\","
                    "\"accessed\":\"2017-12-06T18:36:39.0000000\","
                    "\"modified\":\"2017-12-06T18:36:39.0000000\","
                    "\"changed\":\"2017-12-06T18:36:39.0000000\"}"),
            std::string::npos)
      << cr;
  EXPECT_NE(cr.find("\"session_id\":70368744177681,\"tree_id\":5"), std::string::npos) << cr;
  // The session setup of an AUTHENTICATE has no challenge.
  EXPECT_EQ(ss.find("ntlmssp_challenge"), std::string::npos) << ss;

  // One event per file and direction, at close, with the data size in the message.
  const std::string rd = Find(sink, "SMB2_COMMAND_READ");
  EXPECT_NE(rd.find("\"status\":\"STATUS_SUCCESS\""), std::string::npos) << rd;
  EXPECT_NE(rd.find("\"filename\":\"Windows\\\\Tasks\\\\AV.job\",\"share\":\"\\\\\\\\10.0.0.5"
                    "\\\\C$\",\"fuid\":\"00000049-0000-0000-0001-0000ffffffff\""),
            std::string::npos)
      << rd;
  EXPECT_NE(rd.find("SMB2 READ success \\\\\\\\10.0.0.5\\\\C$ Windows\\\\Tasks\\\\AV.job 1092 "
                    "bytes"),
            std::string::npos)
      << rd;
  EXPECT_EQ(sink.CountContaining("SMB2_COMMAND_WRITE"), 1u);
  EXPECT_EQ(sink.CountContaining("SMB2_COMMAND_CLOSE"), 1u);
  // READ/WRITE requests and responses make no event of their own.
  EXPECT_EQ(CountType(sink, "smb"), 8u);
}

// The NEGOTIATE/CHALLENGE round of an SMB2 session setup: the server's names from the
// CHALLENGE go to smb.ntlmssp_challenge (smb.ntlmssp stays Suricata's AUTHENTICATE-only object).
TEST(Smb2, SessionSetupChallengeNames) {
  std::vector<Step> v;
  v.push_back(C(NegotiateReq(0)));
  v.push_back(S(NegotiateResp(0, 0x0311)));
  v.push_back(C(SessionSetupReq(1, NtlmNegotiate())));
  v.push_back(S(SessionSetupResp(1, 0xC0000016,
                                 SpnegoResp(NtlmChallenge("CORP", "FS01", "fs01.corp.test")))));
  v.push_back(C(SessionSetupReq(2, NtlmAuth("CORP", "appadmin", "AVMGMT01"))));
  v.push_back(S(SessionSetupResp(2, 0)));
  CollectSink sink;
  Replay(v, sink);
  EXPECT_FALSE(sink.unbalanced);
  const std::string chal = Find(sink, "STATUS_MORE_PROCESSING_REQUIRED");
  EXPECT_NE(chal.find("\"ntlmssp_challenge\":{\"target_name\":\"CORP\","
                      "\"server_nb_computer_name\":\"FS01\",\"server_nb_domain_name\":\"CORP\","
                      "\"server_dns_computer_name\":\"fs01.corp.test\","
                      "\"server_time\":\"2017-12-06T18:36:39.1234567\"}"),
            std::string::npos)
      << chal;
  EXPECT_EQ(chal.find("\"ntlmssp\":"), std::string::npos) << chal;
  const std::string auth = Find(sink, "\"user\":\"appadmin\"");
  EXPECT_NE(auth.find("\"ntlmssp\":{\"domain\":\"CORP\""), std::string::npos) << auth;
  EXPECT_EQ(auth.find("ntlmssp_challenge"), std::string::npos) << auth;
  // A raw (not SPNEGO-wrapped) CHALLENGE and an error response without a blob.
  v[3] = S(SessionSetupResp(1, 0xC0000016, NtlmChallenge("W", "PC", "pc.w")));
  v[5] = S(SessionSetupResp(2, 0xC000006D, ErrorBody()));
  CollectSink sink2;
  Replay(v, sink2);
  EXPECT_EQ(sink2.CountContaining("\"server_nb_computer_name\":\"PC\""), 1u);
  EXPECT_EQ(sink2.CountContaining("ntlmssp_challenge"), 1u);
}

// CREATE response times below one second: the integers stay Suricata's whole seconds, smb.times
// has the 100 ns FILETIME values.
TEST(Smb2, CreateTimesKeepSubSecondPrecision) {
  std::vector<Step> v = Conversation();
  Step s = S(CreateResp(3, kFid, 1092));
  size_t at = 4 + 64 + 8;  // NBSS header, SMB2 header, CREATE response fields before the times
  for (const uint64_t ft : {kFiletime2017 + 9393330, kFiletime2017 + 9513320, kFiletime2017 + 1,
                            kFiletime2017 + 9999999}) {
    for (int k = 0; k < 8; ++k) s.bytes[at++] = static_cast<uint8_t>(ft >> (8 * k));
  }
  v[7] = s;
  CollectSink sink;
  Replay(v, sink);
  const std::string cr = Find(sink, "SMB2_COMMAND_CREATE");
  EXPECT_NE(cr.find("\"created\":1512585399,\"accessed\":1512585399,\"modified\":1512585399,"
                    "\"changed\":1512585399"),
            std::string::npos)
      << cr;
  EXPECT_NE(cr.find("\"times\":{\"created\":\"2017-12-06T18:36:39.9393330\","
                    "\"accessed\":\"2017-12-06T18:36:39.9513320\","
                    "\"modified\":\"2017-12-06T18:36:39.0000001\","
                    "\"changed\":\"2017-12-06T18:36:39.9999999\"}"),
            std::string::npos)
      << cr;
  // A failed CREATE has no times.
  v[7] = S(SimpleResp(5, 3, 0xC0000034, ErrorBody()));
  CollectSink failed;
  Replay(v, failed);
  const std::string fc = Find(failed, "SMB2_COMMAND_CREATE");
  EXPECT_NE(fc.find("\"created\":0"), std::string::npos) << fc;
  EXPECT_EQ(fc.find("\"times\""), std::string::npos) << fc;
}

TEST(Smb2, NamedPipeDcerpcAndAsync) {
  CollectSink sink;
  Replay(PipeConversation(), sink);
  EXPECT_FALSE(sink.unbalanced);
  const std::string cr = Find(sink, "\"filename\":\"atsvc\"");
  EXPECT_NE(cr.find("SMB2 CREATE success \\\\\\\\10.0.0.5\\\\IPC$ atsvc (pipe)"), std::string::npos)
      << cr;
  const std::string bind = Find(sink, "\"request\":\"BIND\"");
  EXPECT_NE(bind.find("\"command\":\"SMB2_COMMAND_WRITE\",\"status\":\"STATUS_SUCCESS\""),
            std::string::npos)
      << bind;
  EXPECT_NE(bind.find("\"response\":\"BINDACK\""), std::string::npos) << bind;
  EXPECT_NE(bind.find("\"uuid\":\"1ff70682-0a51-30e8-076d-740be8cee98b\""), std::string::npos)
      << bind;
  EXPECT_NE(bind.find("\"ack_reason\":0"), std::string::npos) << bind;
  const std::string req = Find(sink, "\"request\":\"REQUEST\"");
  EXPECT_NE(req.find("\"command\":\"SMB2_COMMAND_IOCTL\",\"status\":\"STATUS_SUCCESS\""),
            std::string::npos)
      << req;
  EXPECT_NE(req.find("\"response\":\"RESPONSE\""), std::string::npos) << req;
  EXPECT_NE(req.find("\"opnum\":0"), std::string::npos) << req;
  EXPECT_EQ(sink.CountContaining("STATUS_PENDING"), 0u);
  EXPECT_EQ(sink.CountContaining("SMB2_COMMAND_TREE_DISCONNECT"), 1u);
  EXPECT_EQ(sink.CountContaining("SMB2_COMMAND_SESSION_LOGOFF\",\"status\":\"STATUS_SUCCESS"), 1u);
  // Pipe writes/reads/transceives are DCE-RPC calls, not file transfers.
  EXPECT_EQ(sink.CountContaining("\"filename\":\"atsvc\",\"share\""), 0u);
  EXPECT_EQ(CountType(sink, "smb"), 8u + 6u);
}

TEST(Smb2, EveryByteSplitGivesTheSameEvents) {
  CollectSink whole, bytewise, odd;
  Replay(PipeConversation(), whole);
  Replay(PipeConversation(), bytewise, 1);
  Replay(PipeConversation(), odd, 7);
  EXPECT_EQ(whole.events, bytewise.events);
  EXPECT_EQ(whole.events, odd.events);
}

// What the signature engine is given (EventSink::Inspect): the tree connects (smb.share, or
// smb.named_pipe for IPC$), the file's first piece with its name (file_data, file.name; the
// write at offset 1092 is not inspected), and the DCE-RPC request on the pipe with its bound
// interface (atsvc 1ff70682-0a51-30e8-076d-740be8cee98b) and opnum; nothing when not inspecting.
TEST(Smb2, MessagesForTheSignatureEngine) {
  using rules::Buffer;
  CollectSink sink;
  sink.inspect = true;
  Replay(PipeConversation(), sink);
  std::vector<std::string> shares, pipes, files, names;
  int requests = 0;
  for (size_t i = 0; i < sink.inspected.size(); ++i) {
    const auto& [dir, b] = sink.inspected[i];
    if (b.count(Buffer::kSmbShare)) shares.push_back(b.at(Buffer::kSmbShare));
    if (b.count(Buffer::kSmbNamedPipe)) pipes.push_back(b.at(Buffer::kSmbNamedPipe));
    if (b.count(Buffer::kFileData)) {
      files.push_back(b.at(Buffer::kFileData));
      names.push_back(b.count(Buffer::kFileName) ? b.at(Buffer::kFileName) : "");
      EXPECT_EQ(dir, Direction::kToClient);  // a read: the data comes from the server
    }
    if (b.count(Buffer::kDcerpcStubData)) {
      ++requests;
      EXPECT_EQ(dir, Direction::kToServer);
      const rules::DcerpcInfo& d = sink.dcerpc[i];
      EXPECT_TRUE(d.has_iface);
      EXPECT_EQ(d.uuid[0], 0x82);  // 1ff70682 little-endian on the wire
      EXPECT_EQ(d.uuid[3], 0x1f);
      EXPECT_EQ(d.version, 1);
      EXPECT_EQ(d.opnum, 0);
    }
  }
  EXPECT_EQ(shares, (std::vector<std::string>{"\\\\10.0.0.5\\C$"}));
  EXPECT_EQ(pipes, (std::vector<std::string>{"\\\\10.0.0.5\\IPC$"}));
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].front(), 'A');  // the read's first piece, not the write's 'B's
  EXPECT_EQ(names[0], "Windows\\Tasks\\AV.job");
  EXPECT_EQ(requests, 1);

  CollectSink quiet;
  Replay(PipeConversation(), quiet);
  EXPECT_TRUE(quiet.inspected.empty());
  EXPECT_EQ(quiet.events, sink.events);  // inspection changes no event
}

TEST(Smb2, SetInfoDeleteAndRenameInCompound) {
  std::vector<Step> v = Conversation();
  // CREATE "old.txt" + SET_INFO disposition (related, all-ones FileId) + CLOSE, as one message.
  const uint8_t ones[16] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                            0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
  v.push_back(C(Compound(
      {CreateReq(20, "old.txt"), SetInfoReq(21, ones, 13, Bytes{1}, 4), CloseReq(22, ones, 4)})));
  Bytes setinfo_resp;
  Put16(setinfo_resp, 2);
  v.push_back(
      S(Compound({CreateResp(20, kFid, 5), SimpleResp(17, 21, 0, setinfo_resp), CloseResp(22)})));
  // Rename of an open file.
  v.push_back(C(CreateReq(23, "a.txt")));
  v.push_back(S(CreateResp(23, kPipeFid, 5)));
  Bytes ren;
  PutZeros(ren, 16);
  const Bytes to = Utf16("b.txt");
  Put32(ren, static_cast<uint32_t>(to.size()));
  Append(ren, to);
  v.push_back(C(SetInfoReq(24, kPipeFid, 10, ren)));
  v.push_back(S(SimpleResp(17, 24, 0, setinfo_resp)));
  CollectSink sink;
  Replay(v, sink);
  const std::string del = Find(sink, "delete on close");
  EXPECT_NE(del.find("\"command\":\"SMB2_COMMAND_SET_INFO\""), std::string::npos) << del;
  EXPECT_NE(del.find("\"filename\":\"old.txt\""), std::string::npos) << del;
  EXPECT_NE(del.find("SMB2 SET_INFO success delete old.txt"), std::string::npos) << del;
  EXPECT_EQ(sink.CountContaining("delete on close"), 1u);
  const std::string rn = Find(sink, "\"rename\"");
  EXPECT_NE(
      rn.find("\"set_info\":{\"class\":\"FILE_INFO\",\"info_level\":\"SMB2_FILE_RENAME_INFO\"}"
              ",\"rename\":{\"from\":\"a.txt\",\"to\":\"b.txt\"}"),
      std::string::npos)
      << rn;
}

TEST(Smb2, ErrorsAndUnansweredRequests) {
  std::vector<Step> v;
  v.push_back(C(CreateReq(1, "secret.txt")));
  v.push_back(S(SimpleResp(5, 1, 0xC0000022, ErrorBody())));
  v.push_back(C(Empty(14, 2, false)));  // FIND, never answered
  CollectSink sink;
  Replay(v, sink);
  const std::string cr = Find(sink, "secret.txt");
  EXPECT_NE(cr.find("\"status\":\"STATUS_ACCESS_DENIED\",\"status_code\":\"0xc0000022\""),
            std::string::npos)
      << cr;
  EXPECT_NE(cr.find("\"dialect\":\"unknown\""), std::string::npos) << cr;
  EXPECT_NE(cr.find("SMB2 CREATE STATUS_ACCESS_DENIED"), std::string::npos) << cr;
  const std::string find = Find(sink, "SMB2_COMMAND_FIND");
  EXPECT_EQ(find.find("\"status\""), std::string::npos) << find;
  EXPECT_NE(find.find("SMB2 FIND no-response"), std::string::npos) << find;
}

class RecordingFiles final : public SmbFileObserver {
 public:
  void OnFileData(const SmbFileRef& f, uint64_t offset,
                  std::span<const uint8_t> data) noexcept override {
    log += std::string(f.dir == Direction::kToClient ? "R " : "W ") + std::string(f.name) + "@" +
           std::to_string(offset) + "+" + std::to_string(data.size()) + ";";
    bytes += data.size();
  }
  void OnFileGap(const SmbFileRef& f, uint64_t offset, uint32_t n) noexcept override {
    log +=
        "gap " + std::string(f.name) + "@" + std::to_string(offset) + "+" + std::to_string(n) + ";";
  }
  void OnFileClose(const SmbFileRef& f) noexcept override {
    log += "close " + std::string(f.name) + ";";
  }
  std::string log;
  size_t bytes = 0;
};

TEST(Smb2, FileSeamSeesDataWithoutBuffering) {
  std::vector<Step> v = Conversation();
  // A read larger than the head buffer: data streams through in pieces.
  v.insert(v.end() - 4, C(ReadReq(30, kFid, 10000, 4096)));
  v.insert(v.end() - 4, S(ReadResp(30, Bytes(10000, 'C'))));
  SmbParser p;
  RecordingFiles files;
  p.set_file_observer(&files);
  CollectSink sink;
  Replay(v, sink, 1000, &p);
  EXPECT_EQ(files.bytes, 1092u + 100u + 10000u);
  EXPECT_NE(files.log.find("R Windows\\Tasks\\AV.job@0+"), std::string::npos) << files.log;
  EXPECT_NE(files.log.find("W Windows\\Tasks\\AV.job@1092+100"), std::string::npos) << files.log;
  EXPECT_NE(files.log.find("close Windows\\Tasks\\AV.job"), std::string::npos) << files.log;
  EXPECT_NE(Find(sink, "SMB2_COMMAND_READ").find("11092 bytes"), std::string::npos);
}

TEST(Smb2, GapThenResync) {
  std::vector<Step> v = Conversation();
  SmbParser p;
  CollectSink sink;
  for (size_t i = 0; i < 8; ++i) p.OnData(v[i].dir, v[i].bytes, sink);  // up to the CREATE
  // The READ request is lost in a gap; the next request resynchronises mid-stream.
  p.OnGap(Direction::kToServer, static_cast<uint32_t>(v[8].bytes.size()) + 10, sink);
  const Bytes close = v[12].bytes;
  Bytes junk = {1, 2, 3, 0, 0, 0};  // the tail of something, then the CLOSE
  Append(junk, close);
  p.OnData(Direction::kToServer, junk, sink);
  p.OnData(Direction::kToClient, v[9].bytes, sink);  // READ response: request unknown, skipped
  p.OnData(Direction::kToClient, v[13].bytes, sink);
  p.OnEnd(sink);
  EXPECT_FALSE(sink.unbalanced);
  EXPECT_EQ(sink.CountContaining("SMB2_COMMAND_CLOSE\",\"status\":\"STATUS_SUCCESS\""), 1u);
  EXPECT_EQ(sink.CountContaining("SMB2_COMMAND_READ"), 0u);
}

TEST(Smb2, GapInsideReadDataKeepsFraming) {
  std::vector<Step> v = Conversation();
  v[9] = S(ReadResp(4, Bytes(10000, 'A')));  // larger than the buffered head
  SmbParser p;
  RecordingFiles files;
  p.set_file_observer(&files);
  CollectSink sink;
  for (size_t i = 0; i < 9; ++i) p.OnData(v[i].dir, v[i].bytes, sink);
  const Bytes& rd = v[9].bytes;
  p.OnData(Direction::kToClient, std::span(rd).first(5000), sink);
  p.OnGap(Direction::kToClient, 500, sink);
  p.OnData(Direction::kToClient, std::span(rd).subspan(5500), sink);
  for (size_t i = 10; i < v.size(); ++i) p.OnData(v[i].dir, v[i].bytes, sink);
  p.OnEnd(sink);
  EXPECT_EQ(CountType(sink, "anomaly"), 0u);
  EXPECT_EQ(CountType(sink, "smb"), 8u);
  EXPECT_EQ(files.bytes, 10000u - 500u + 100u);
  EXPECT_NE(files.log.find("gap"), std::string::npos) << files.log;
}

TEST(Smb3, TransformMarkedEncrypted) {
  Bytes t = {0xFD, 'S', 'M', 'B'};
  PutZeros(t, 32);
  Put32(t, 100);
  Put16(t, 0);
  Put16(t, 1);
  Put64(t, kSession);
  PutZeros(t, 100);  // ciphertext
  std::vector<Step> v = {C(NegotiateReq(0)), S(NegotiateResp(0, 0x0300)), C(t), S(t), C(t)};
  CollectSink sink;
  Replay(v, sink);
  EXPECT_EQ(sink.CountContaining("\"encrypted\":true"), 1u);
  const std::string e = Find(sink, "\"encrypted\":true");
  EXPECT_NE(e.find("\"dialect\":\"3.00\""), std::string::npos) << e;
  EXPECT_NE(e.find("\"session_id\":70368744177681"), std::string::npos) << e;
  EXPECT_EQ(CountType(sink, "anomaly"), 0u);
}

TEST(Smb2, MalformedAndUnknown) {
  std::vector<Step> v;
  Bytes bad = NegotiateReq(0);
  bad[4] = 32;  // header StructureSize
  v.push_back(C(bad));
  v.push_back(C(Empty(77, 1, false)));
  v.push_back({Direction::kToServer, Bytes{0x42, 0, 0, 4, 1, 2, 3, 4}});  // NBSS type 0x42
  v.push_back(C(Empty(13, 2, false)));  // found again after resync
  v.push_back(S(Empty(13, 2, true)));
  v.push_back(S(NegotiateReq(9)));  // a request travelling to the client
  CollectSink sink;
  Replay(v, sink);
  EXPECT_EQ(sink.CountContaining("\"event\":\"malformed_data\""), 1u);
  EXPECT_EQ(sink.CountContaining("\"event\":\"unknown_command\""), 1u);
  EXPECT_EQ(sink.CountContaining("\"event\":\"malformed_nbss\""), 1u);
  EXPECT_EQ(sink.CountContaining("\"event\":\"request_to_client\""), 1u);
  EXPECT_EQ(sink.CountContaining("SMB2_COMMAND_KEEPALIVE\",\"status\":\"STATUS_SUCCESS\""), 1u);
  EXPECT_FALSE(sink.unbalanced);
}

TEST(Smb2, PendingTableIsBounded) {
  std::vector<Step> v;
  for (uint64_t i = 0; i < 100; ++i) v.push_back(C(Empty(13, i, false)));
  CollectSink sink;
  Replay(v, sink);
  EXPECT_EQ(sink.CountContaining("SMB2_COMMAND_KEEPALIVE"), 100u);
  EXPECT_LE(sizeof(SmbParser), 80u * 1024u);
}

// ---------------------------------------------------------------------------------------------
// SMB1.

struct Smb1Hdr {
  uint8_t cmd;
  bool reply = false;
  uint16_t tid = 0, uid = 0, mid = 1;
  uint32_t status = 0;
};
Bytes Smb1(const Smb1Hdr& h, const Bytes& words, const Bytes& bytes) {
  Bytes b = {0xFF, 'S', 'M', 'B', h.cmd};
  Put32(b, h.status);
  Put8(b, h.reply ? 0x98 : 0x18);
  Put16(b, 0xC807);  // unicode, NT status, extended security
  Put16(b, 0);
  PutZeros(b, 8);
  Put16(b, 0);
  Put16(b, h.tid);
  Put16(b, 0x1234);  // pid
  Put16(b, h.uid);
  Put16(b, h.mid);
  Put8(b, static_cast<uint8_t>(words.size() / 2));
  Append(b, words);
  Put16(b, static_cast<uint16_t>(bytes.size()));
  Append(b, bytes);
  return b;
}
Bytes AndxWords(uint8_t next, uint16_t off, const Bytes& rest) {
  Bytes w = {next, 0};
  Put16(w, off);
  Append(w, rest);
  return w;
}
Bytes Utf16z(const std::string& s) {
  Bytes b = Utf16(s);
  Put16(b, 0);
  return b;
}

std::vector<Step> Smb1Conversation() {
  std::vector<Step> v;
  Bytes dialects;
  for (const char* d : {"PC NETWORK PROGRAM 1.0", "LANMAN1.0", "NT LM 0.12"}) {
    Put8(dialects, 2);
    dialects.insert(dialects.end(), d, d + strlen(d) + 1);
  }
  v.push_back(C(Smb1({.cmd = 0x72}, {}, dialects)));
  Bytes nw;
  Put16(nw, 2);  // dialect index
  PutZeros(nw, 32);
  v.push_back(S(Smb1({.cmd = 0x72, .reply = true}, nw, {})));

  // SESSION_SETUP_ANDX (wc 12, raw NTLMSSP blob) chained with TREE_CONNECT_ANDX.
  const Bytes blob = NtlmAuth("WORKGROUP", "bob", "HOST1");
  Bytes ssw;
  Put16(ssw, 4356);
  Put16(ssw, 50);
  Put16(ssw, 0);
  Put32(ssw, 0);
  Put16(ssw, static_cast<uint16_t>(blob.size()));
  Put32(ssw, 0);
  Put32(ssw, 0x800000D4);
  Bytes ssb = blob;
  if ((32 + 1 + 24 + 2 + ssb.size()) % 2) ssb.push_back(0);  // align the strings
  Append(ssb, Utf16z("Unix"));
  Append(ssb, Utf16z("Samba"));
  Bytes req = Smb1({.cmd = 0x73}, AndxWords(0xFF, 0, ssw), ssb);
  // Chain the tree connect behind it.
  const size_t tc_off = req.size();
  Bytes tcw = {0xFF, 0};
  Put16(tcw, 0);
  Put16(tcw, 0);
  Put16(tcw, 1);  // password length
  Bytes tcb = {0};
  Append(tcb, Utf16z("\\\\SRV\\IPC$"));
  for (char c : std::string("?????")) tcb.push_back(c);
  tcb.push_back(0);
  Put8(req, static_cast<uint8_t>(tcw.size() / 2));
  Append(req, tcw);
  Put16(req, static_cast<uint16_t>(tcb.size()));
  Append(req, tcb);
  req[32 + 1] = 0x75;  // AndXCommand of the session setup
  Set16(req, 32 + 1 + 2, static_cast<uint16_t>(tc_off));
  v.push_back(C(req));

  Bytes srw;
  Put16(srw, 0);  // action
  Put16(srw, 0);  // blob length
  Bytes srb = {0};
  Append(srb, Utf16z("Windows 10"));
  Append(srb, Utf16z("Windows 10 LM"));
  Bytes resp =
      Smb1({.cmd = 0x73, .reply = true, .tid = 7, .uid = 0x800}, AndxWords(0xFF, 0, srw), srb);
  const size_t tr_off = resp.size();
  Bytes trw = {0xFF, 0};
  Put16(trw, 0);
  Put16(trw, 1);
  Bytes trb;
  for (char c : std::string("IPC")) trb.push_back(c);
  trb.push_back(0);
  // NativeFileSystem, UTF-16 aligned to the SMB header: "IPC\0" ends at an odd offset.
  if ((tr_off + 1 + trw.size() + 2 + trb.size()) % 2) trb.push_back(0);
  Append(trb, Utf16z("NTFS"));
  Put8(resp, static_cast<uint8_t>(trw.size() / 2));
  Append(resp, trw);
  Put16(resp, static_cast<uint16_t>(trb.size()));
  Append(resp, trb);
  resp[32 + 1] = 0x75;
  Set16(resp, 32 + 1 + 2, static_cast<uint16_t>(tr_off));
  v.push_back(S(resp));

  // NT_CREATE_ANDX of the pipe "\srvsvc".
  const Bytes name = Utf16("\\srvsvc");
  Bytes cw;
  Put8(cw, 0);
  Put16(cw, static_cast<uint16_t>(name.size()));
  Put32(cw, 0);
  Put32(cw, 0);
  Put32(cw, 0x2019F);
  Put64(cw, 0);
  Put32(cw, 0);
  Put32(cw, 3);
  Put32(cw, 1);  // FILE_OPEN
  Put32(cw, 0);
  Put32(cw, 2);
  Put8(cw, 0);
  Bytes cb = {0};
  Append(cb, name);
  v.push_back(C(Smb1({.cmd = 0xA2, .tid = 7, .uid = 0x800, .mid = 3}, AndxWords(0xFF, 0, cw), cb)));
  Bytes crw;
  Put8(crw, 0);
  Put16(crw, 0x4000);  // fid
  Put32(crw, 1);
  for (int i = 0; i < 4; ++i) Put64(crw, kFiletime2017);
  Put32(crw, 0x80);
  Put64(crw, 4096);
  Put64(crw, 0);
  Put16(crw, 2);
  Put16(crw, 0x5FF);
  Put8(crw, 0);
  v.push_back(S(Smb1({.cmd = 0xA2, .reply = true, .tid = 7, .uid = 0x800, .mid = 3},
                     AndxWords(0xFF, 0, crw), {})));

  // TRANS TransactNmPipe carrying a DCE-RPC bind; the response carries the bind_ack.
  auto trans = [&](bool reply, const Bytes& pdu, uint16_t mid) {
    Bytes w;
    const uint16_t wc = reply ? 10 : 16;
    const uint16_t data_off = static_cast<uint16_t>(32 + 1 + 2 * wc + 2 + (reply ? 1 : 14));
    if (!reply) {
      Put16(w, 0);
      Put16(w, static_cast<uint16_t>(pdu.size()));
      Put16(w, 0);
      Put16(w, 4280);
      Put8(w, 0);
      Put8(w, 0);
      Put16(w, 0);
      Put32(w, 0);
      Put16(w, 0);
      Put16(w, 0);
      Put16(w, data_off);
      Put16(w, static_cast<uint16_t>(pdu.size()));
      Put16(w, data_off);
      Put8(w, 2);
      Put8(w, 0);
      Put16(w, 0x26);
      Put16(w, 0x4000);
    } else {
      Put16(w, 0);
      Put16(w, static_cast<uint16_t>(pdu.size()));
      Put16(w, 0);
      Put16(w, 0);
      Put16(w, data_off);
      Put16(w, 0);
      Put16(w, static_cast<uint16_t>(pdu.size()));
      Put16(w, data_off);
      Put16(w, 0);
      Put8(w, 0);
      Put8(w, 0);
    }
    Bytes b;
    if (reply) {
      b.push_back(0);
    } else {
      Append(b, Utf16z("\\PIPE\\"));
    }
    Append(b, pdu);
    return Smb1({.cmd = 0x25, .reply = reply, .tid = 7, .uid = 0x800, .mid = mid}, w, b);
  };
  v.push_back(C(trans(false, Bind(2), 4)));
  v.push_back(S(trans(true, BindAck(2), 4)));
  // CLOSE, LOGOFF_ANDX.
  Bytes clw;
  Put16(clw, 0x4000);
  Put32(clw, 0);
  v.push_back(C(Smb1({.cmd = 0x04, .tid = 7, .uid = 0x800, .mid = 5}, clw, {})));
  v.push_back(S(Smb1({.cmd = 0x04, .reply = true, .tid = 7, .uid = 0x800, .mid = 5}, {}, {})));
  v.push_back(C(Smb1({.cmd = 0x74, .uid = 0x800, .mid = 6}, AndxWords(0xFF, 0, {}), {})));
  v.push_back(
      S(Smb1({.cmd = 0x74, .reply = true, .uid = 0x800, .mid = 6}, AndxWords(0xFF, 0, {}), {})));
  return v;
}

TEST(Smb1, NegotiateAndxChainCreateTransPipe) {
  CollectSink sink;
  Replay(Smb1Conversation(), sink);
  EXPECT_FALSE(sink.unbalanced);
  EXPECT_EQ(CountType(sink, "anomaly"), 0u) << sink.events[0];
  const std::string neg = Find(sink, "SMB1_COMMAND_NEGOTIATE_PROTOCOL");
  EXPECT_NE(neg.find("\"client_dialects\":[\"PC NETWORK PROGRAM 1.0\",\"LANMAN1.0\",\"NT LM "
                     "0.12\"]"),
            std::string::npos)
      << neg;
  EXPECT_NE(neg.find("\"dialect\":\"NT LM 0.12\""), std::string::npos) << neg;
  const std::string ss = Find(sink, "SMB1_COMMAND_SESSION_SETUP_ANDX");
  EXPECT_NE(ss.find("\"ntlmssp\":{\"domain\":\"WORKGROUP\",\"user\":\"bob\",\"host\":\"HOST1\""),
            std::string::npos)
      << ss;
  EXPECT_NE(ss.find("\"request\":{\"native_os\":\"Unix\",\"native_lm\":\"Samba\"}"),
            std::string::npos)
      << ss;
  EXPECT_NE(ss.find("\"response\":{\"native_os\":\"Windows 10\",\"native_lm\":\"Windows 10 LM\"}"),
            std::string::npos)
      << ss;
  EXPECT_NE(ss.find("\"session_id\":2048"), std::string::npos) << ss;
  const std::string tc = Find(sink, "SMB1_COMMAND_TREE_CONNECT_ANDX");
  EXPECT_NE(tc.find("\"named_pipe\":\"\\\\\\\\SRV\\\\IPC$\",\"service\":{\"request\":\"?????\","
                    "\"response\":\"IPC\"},\"native_file_system\":\"NTFS\""),
            std::string::npos)
      << tc;
  EXPECT_NE(tc.find("\"tree_id\":7"), std::string::npos) << tc;
  const std::string cr = Find(sink, "SMB1_COMMAND_NT_CREATE_ANDX");
  EXPECT_NE(cr.find("\"filename\":\"\\\\srvsvc\""), std::string::npos) << cr;
  EXPECT_NE(cr.find("\"fuid\":\"4000\""), std::string::npos) << cr;
  EXPECT_NE(cr.find("\"size\":0"), std::string::npos) << cr;
  const std::string bind = Find(sink, "\"request\":\"BIND\"");
  EXPECT_NE(bind.find("\"command\":\"SMB1_COMMAND_TRANS\",\"status\":\"STATUS_SUCCESS\""),
            std::string::npos)
      << bind;
  EXPECT_NE(bind.find("\"response\":\"BINDACK\""), std::string::npos) << bind;
  EXPECT_EQ(sink.CountContaining("SMB1_COMMAND_CLOSE\",\"status\":\"STATUS_SUCCESS\""), 1u);
  EXPECT_EQ(sink.CountContaining("SMB1_COMMAND_LOGOFF_ANDX\",\"status\":\"STATUS_SUCCESS\""), 1u);
  EXPECT_EQ(CountType(sink, "smb"), 7u);
}

// SMB1 extended security: the NEGOTIATE/CHALLENGE round (the response's blob is raw NTLMSSP).
TEST(Smb1, SessionSetupChallengeNames) {
  std::vector<Step> v = Smb1Conversation();
  const Bytes neg = NtlmNegotiate();
  Bytes ssw;
  Put16(ssw, 4356);
  Put16(ssw, 50);
  Put16(ssw, 0);
  Put32(ssw, 0);
  Put16(ssw, static_cast<uint16_t>(neg.size()));
  Put32(ssw, 0);
  Put32(ssw, 0x800000D4);
  const Bytes chal = NtlmChallenge("WORKGROUP", "SRV", "srv.example");
  Bytes srw;
  Put16(srw, 0);
  Put16(srw, static_cast<uint16_t>(chal.size()));
  const std::vector<Step> round = {
      C(Smb1({.cmd = 0x73, .mid = 2}, AndxWords(0xFF, 0, ssw), neg)),
      S(Smb1({.cmd = 0x73, .reply = true, .uid = 0x800, .mid = 2, .status = 0xC0000016},
             AndxWords(0xFF, 0, srw), chal))};
  v.insert(v.begin() + 2, round.begin(), round.end());
  CollectSink sink;
  Replay(v, sink);
  EXPECT_FALSE(sink.unbalanced);
  const std::string ss = Find(sink, "STATUS_MORE_PROCESSING_REQUIRED");
  EXPECT_NE(ss.find("\"ntlmssp_challenge\":{\"target_name\":\"WORKGROUP\","
                    "\"server_nb_computer_name\":\"SRV\",\"server_nb_domain_name\":"
                    "\"WORKGROUP\",\"server_dns_computer_name\":\"srv.example\""),
            std::string::npos)
      << ss;
  EXPECT_EQ(sink.CountContaining("ntlmssp_challenge"), 1u);
  EXPECT_EQ(sink.CountContaining("\"user\":\"bob\""), 1u);
}

TEST(Smb1, EveryByteSplitGivesTheSameEvents) {
  CollectSink whole, bytewise;
  Replay(Smb1Conversation(), whole);
  Replay(Smb1Conversation(), bytewise, 1);
  EXPECT_EQ(whole.events, bytewise.events);
}

TEST(Smb1, DosErrorStatus) {
  Bytes r = Smb1({.cmd = 0x2B, .reply = true, .mid = 9}, {}, {});
  r[5] = 1;  // ERRDOS
  Set16(r, 7, 5);
  Set16(r, 10, 0x0001);  // no NT status flag
  std::vector<Step> v = {C(Smb1({.cmd = 0x2B, .mid = 9}, Bytes{1, 0}, {})), S(r)};
  CollectSink sink;
  Replay(v, sink);
  const std::string e = Find(sink, "SMB1_COMMAND_ECHO");
  EXPECT_NE(e.find("\"status\":\"DOS_ACCESS_DENIED\",\"status_code\":\"0x0005\""),
            std::string::npos)
      << e;
}

}  // namespace
}  // namespace vigil::proto
