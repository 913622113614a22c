#include "dataplane/proto/dcerpc.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "dataplane/proto/spnego.h"

namespace vigil::proto {

namespace {

constexpr uint8_t kPfcFirstFrag = 0x01;
constexpr uint8_t kPfcLastFrag = 0x02;
constexpr uint8_t kPfcMaybe = 0x40;
constexpr uint8_t kPfcObjectUuid = 0x80;
constexpr uint32_t kHeaderLen = 16;
constexpr uint32_t kSecTrailerLen = 8;
constexpr uint8_t kAuthNtlmssp = 10;   // RPC_C_AUTHN_WINNT
constexpr uint8_t kAuthNegotiate = 9;  // RPC_C_AUTHN_GSS_NEGOTIATE (SPNEGO)
constexpr int kMaxLosses = 8;          // then the direction is abandoned
// An auth verifier is kept whole when it and this much of the body (or the whole body, when
// shorter) fit the buffer; a larger one (a Kerberos ticket) is reduced to its sec_trailer.
constexpr uint32_t kBodyReserve = 512;
// e1af8308-5d1f-11c9-91a4-08002b14a0fa, the endpoint mapper, in GUID wire layout.
constexpr uint8_t kEpmUuid[16] = {0x08, 0x83, 0xaf, 0xe1, 0x1f, 0x5d, 0xc9, 0x11,
                                  0x91, 0xa4, 0x08, 0x00, 0x2b, 0x14, 0xa0, 0xfa};
constexpr uint16_t kEptMapOpnum = 3;

struct DcerpcUuidName {
  uint8_t uuid[16];
  const char* name;
};
struct DcerpcOpName {
  uint16_t iface;  // index into kDcerpcUuids
  uint16_t opnum;
  const char* name;
};
#include "dataplane/proto/dcerpc_names.inc"

uint16_t Rd16(const uint8_t* p, bool le) noexcept { return le ? LoadU16le(p) : LoadU16be(p); }
uint32_t Rd32(const uint8_t* p, bool le) noexcept { return le ? LoadU32le(p) : LoadU32be(p); }

// A UUID in the PDU's integer representation, stored in the little-endian wire layout so that
// one table and FormatGuidLe serve both representations.
void ReadUuid(const uint8_t* p, bool le, uint8_t out[16]) noexcept {
  std::memcpy(out, p, 16);
  if (!le) {
    std::reverse(out, out + 4);
    std::reverse(out + 4, out + 6);
    std::reverse(out + 6, out + 8);
  }
}

bool IsCoType(uint8_t t) noexcept { return t == 0 || t == 2 || t == 3 || (t >= 11 && t <= 20); }

// Checks a full 16-byte header. nullptr when it can be framed, else the anomaly's name.
const char* CheckHeader(const uint8_t* h) noexcept {
  if (h[0] != 5 || h[1] > 1) return "unsupported_version";
  if (h[2] > 20) return "invalid_pdu_type";
  // drep[0]: integer representation in the high nibble (0 big, 1 little endian), character
  // set in the low one (0 ASCII, 1 EBCDIC); drep[1]: floating point format 0..3.
  if ((h[4] & 0xee) != 0 || h[5] > 3) return "invalid_data_representation";
  const bool le = (h[4] & 0x10) != 0;
  if (Rd16(h + 8, le) < kHeaderLen) return "frag_length_too_short";
  return nullptr;
}

// During resynchronisation a candidate must also be a connection-oriented type whose auth
// verifier fits, to make a false start inside stub bytes unlikely.
bool PlausibleHeader(const uint8_t* h) noexcept {
  if (CheckHeader(h) != nullptr || !IsCoType(h[2])) return false;
  const bool le = (h[4] & 0x10) != 0;
  const uint32_t frag = Rd16(h + 8, le);
  const uint32_t auth = Rd16(h + 10, le);
  return auth == 0 || auth + kSecTrailerLen + kHeaderLen <= frag;
}

// Whether the first `n` (< 16) bytes could start a plausible header.
bool PlausiblePrefix(const uint8_t* h, uint32_t n) noexcept {
  if (n > 0 && h[0] != 5) return false;
  if (n > 1 && h[1] > 1) return false;
  if (n > 2 && !IsCoType(h[2])) return false;
  if (n > 4 && (h[4] & 0xee) != 0) return false;
  if (n > 5 && h[5] > 3) return false;
  return true;
}

int CompareUuid(const uint8_t* a, const uint8_t* b) noexcept { return std::memcmp(a, b, 16); }

int FindUuidIndex(const uint8_t uuid[16]) noexcept {
  const auto* begin = std::begin(kDcerpcUuids);
  const auto* end = std::end(kDcerpcUuids);
  const auto* it = std::lower_bound(
      begin, end, uuid,
      [](const DcerpcUuidName& e, const uint8_t* u) { return CompareUuid(e.uuid, u) < 0; });
  if (it == end || CompareUuid(it->uuid, uuid) != 0) return -1;
  return static_cast<int>(it - begin);
}

// "1.0", "5.0".
std::string_view FormatVersion(uint32_t major, uint32_t minor, char* buf, size_t cap) noexcept {
  char* p = std::to_chars(buf, buf + cap, major).ptr;
  if (p < buf + cap) *p++ = '.';
  p = std::to_chars(p, buf + cap, minor).ptr;
  return {buf, static_cast<size_t>(p - buf)};
}

std::string_view FormatIp(const uint8_t ip[4], char* buf, size_t cap) noexcept {
  char* p = buf;
  for (int i = 0; i < 4; ++i) {
    p = std::to_chars(p, buf + cap, ip[i]).ptr;
    if (i < 3 && p < buf + cap) *p++ = '.';
  }
  return {buf, static_cast<size_t>(p - buf)};
}

const char* AuthTypeName(uint8_t t) noexcept {
  switch (t) {
    case 0:
      return "RPC_C_AUTHN_NONE";
    case 9:
      return "RPC_C_AUTHN_GSS_NEGOTIATE";
    case 10:
      return "RPC_C_AUTHN_WINNT";
    case 14:
      return "RPC_C_AUTHN_GSS_SCHANNEL";
    case 16:
      return "RPC_C_AUTHN_GSS_KERBEROS";
    case 68:
      return "RPC_C_AUTHN_NETLOGON";
    case 255:
      return "RPC_C_AUTHN_DEFAULT";
    default:
      return nullptr;
  }
}

const char* AuthLevelName(uint8_t l) noexcept {
  switch (l) {
    case 0:
      return "RPC_C_AUTHN_LEVEL_DEFAULT";
    case 1:
      return "RPC_C_AUTHN_LEVEL_NONE";
    case 2:
      return "RPC_C_AUTHN_LEVEL_CONNECT";
    case 3:
      return "RPC_C_AUTHN_LEVEL_CALL";
    case 4:
      return "RPC_C_AUTHN_LEVEL_PKT";
    case 5:
      return "RPC_C_AUTHN_LEVEL_PKT_INTEGRITY";
    case 6:
      return "RPC_C_AUTHN_LEVEL_PKT_PRIVACY";
    default:
      return nullptr;
  }
}

const char* AckResultWord(uint16_t r) noexcept {
  switch (r) {
    case 0:
      return "accepted";
    case 1:
      return "user_rejection";
    case 2:
      return "provider_rejection";
    case 3:
      return "negotiate_ack";  // bind time feature negotiation (MS-RPCE 3.3.1.5.3)
    default:
      return nullptr;
  }
}

void AppendIfaceLabel(const uint8_t uuid[16], TextBuilder& t) noexcept {
  if (const char* name = DcerpcInterfaceName(uuid)) {
    t.Append(name);
  } else {
    char g[37];
    FormatGuidLe(uuid, g);
    t.Append(std::string_view(g, 36));
  }
}

uint16_t SatInc(uint16_t v) noexcept { return v == UINT16_MAX ? v : static_cast<uint16_t>(v + 1); }
uint32_t SatAdd(uint32_t a, uint32_t b) noexcept { return a > UINT32_MAX - b ? UINT32_MAX : a + b; }

}  // namespace

const char* DcerpcPduTypeName(uint8_t ptype) noexcept {
  static constexpr const char* kNames[] = {
      "REQUEST",   "PING",     "RESPONSE",      "FAULT",
      "WORKING",   "NOCALL",   "REJECT",        "ACK",
      "CL_CANCEL", "FACK",     "CANCEL_ACK",    "BIND",
      "BINDACK",   "BINDNAK",  "ALTER_CONTEXT", "ALTER_CONTEXT_RESP",
      "AUTH3",     "SHUTDOWN", "CO_CANCEL",     "ORPHANED",
      "RTS",
  };
  return ptype < std::size(kNames) ? kNames[ptype] : "UNKNOWN";
}

const char* DcerpcInterfaceName(const uint8_t uuid[16]) noexcept {
  const int i = FindUuidIndex(uuid);
  return i < 0 ? nullptr : kDcerpcUuids[i].name;
}

const char* DcerpcOperationName(const uint8_t uuid[16], uint16_t opnum) noexcept {
  const int i = FindUuidIndex(uuid);
  if (i < 0) return nullptr;
  const DcerpcOpName key{static_cast<uint16_t>(i), opnum, nullptr};
  const auto less = [](const DcerpcOpName& a, const DcerpcOpName& b) {
    return a.iface != b.iface ? a.iface < b.iface : a.opnum < b.opnum;
  };
  const auto* it = std::lower_bound(std::begin(kDcerpcOps), std::end(kDcerpcOps), key, less);
  if (it == std::end(kDcerpcOps) || it->iface != key.iface || it->opnum != opnum) return nullptr;
  return it->name;
}

ProbeResult DcerpcProbe(std::span<const uint8_t> data) noexcept {
  const uint32_t n = static_cast<uint32_t>(std::min<size_t>(data.size(), kHeaderLen));
  if (n == 0) return ProbeResult::kMaybe;
  if (!PlausiblePrefix(data.data(), n) || (n > 1 && data[1] != 0)) return ProbeResult::kNo;
  if (n < kHeaderLen) return ProbeResult::kMaybe;
  return PlausibleHeader(data.data()) ? ProbeResult::kYes : ProbeResult::kNo;
}

// ---------------------------------------------------------------------------------------------
// DcerpcConnection

void DcerpcConnection::Reset() noexcept {
  for (DirState& d : dirs_) {
    d.have = d.frag_len = d.head_keep = d.body_end = d.tail_start = d.tail_end = 0;
    d.auth_ok = d.malformed = d.gap_head = d.gap_tail = d.lost = d.dead = false;
    d.losses = 0;
  }
  for (Pending& p : pending_) p.used = false;
  pending_age_ = 0;
  bind_pending_ = false;
  num_contexts_ = 0;
  next_context_slot_ = 0;
  num_endpoints_ = 0;
  endpoint_generation_ = 0;
  other_auth_count_ = 0;
}

const DcerpcInterface* DcerpcConnection::InterfaceFor(uint16_t context_id) const noexcept {
  for (int i = 0; i < num_contexts_; ++i) {
    if (contexts_[i].context_id == context_id) return &contexts_[i];
  }
  return nullptr;
}

void DcerpcConnection::AddContext(const DcerpcInterface& iface) noexcept {
  for (int i = 0; i < num_contexts_; ++i) {
    if (contexts_[i].context_id == iface.context_id) {
      contexts_[i] = iface;  // an alter_context may give an id a new interface
      return;
    }
  }
  if (num_contexts_ < kDcerpcMaxContexts) {
    contexts_[num_contexts_++] = iface;
    return;
  }
  contexts_[next_context_slot_] = iface;
  next_context_slot_ = static_cast<uint8_t>((next_context_slot_ + 1) % kDcerpcMaxContexts);
}

void DcerpcConnection::Feed(Direction dir, std::span<const uint8_t> data,
                            DcerpcObserver& obs) noexcept {
  FeedDir(dir, data, obs);
}

void DcerpcConnection::FeedDir(Direction dir, std::span<const uint8_t> data,
                               DcerpcObserver& obs) noexcept {
  DirState& d = dirs_[static_cast<int>(dir)];
  size_t i = 0;
  while (i < data.size() && !d.dead) {
    const uint8_t* src = data.data() + i;
    const size_t avail = data.size() - i;
    if (d.lost) {
      i += ResyncFeed(d, data.subspan(i));
      if (!d.lost) StartPdu(d, dir, obs);
      continue;
    }
    if (d.frag_len == 0) {
      const size_t n = std::min<size_t>(kHeaderLen - d.have, avail);
      std::memcpy(d.buf + d.have, src, n);
      d.have += static_cast<uint32_t>(n);
      i += n;
      if (d.have == kHeaderLen) StartPdu(d, dir, obs);
      continue;
    }
    // Inside the PDU body: copy the kept ranges, skip the rest.
    const uint32_t pos = d.have;
    size_t n;
    if (pos < d.head_keep) {
      n = std::min<size_t>(d.head_keep - pos, avail);
      std::memcpy(d.buf + pos, src, n);
    } else if (pos < d.tail_start) {
      n = std::min<size_t>(d.tail_start - pos, avail);
    } else if (pos < d.tail_end) {
      n = std::min<size_t>(d.tail_end - pos, avail);
      std::memcpy(d.buf + d.head_keep + (pos - d.tail_start), src, n);
    } else {
      n = std::min<size_t>(d.frag_len - pos, avail);
    }
    d.have += static_cast<uint32_t>(n);
    i += n;
    if (d.have == d.frag_len) FinishPdu(d, dir, obs);
  }
}

// Slides a 16-byte window over the bytes until it holds a plausible header. Byte at a time,
// so the outcome does not depend on how the stream was split.
size_t DcerpcConnection::ResyncFeed(DirState& d, std::span<const uint8_t> data) noexcept {
  size_t i = 0;
  while (i < data.size()) {
    d.buf[d.have++] = data[i++];
    // Drop leading bytes until the window is a plausible (partial) header again.
    while (d.have > 0 &&
           !(d.have < kHeaderLen ? PlausiblePrefix(d.buf, d.have) : PlausibleHeader(d.buf))) {
      std::memmove(d.buf, d.buf + 1, d.have - 1);
      --d.have;
    }
    if (d.have == kHeaderLen) {
      d.lost = false;
      return i;
    }
  }
  return i;
}

void DcerpcConnection::LoseSync(DirState& d, Direction dir, const char* why,
                                DcerpcObserver& obs) noexcept {
  obs.OnAnomaly(dir, why);
  d.frag_len = 0;
  if (++d.losses >= kMaxLosses) {
    d.dead = true;
    d.have = 0;
    return;
  }
  d.lost = true;
  // Look for the next header from the second byte of the rejected one.
  if (d.have > 0) {
    std::memmove(d.buf, d.buf + 1, d.have - 1);
    --d.have;
    while (d.have > 0 && !PlausiblePrefix(d.buf, d.have)) {
      std::memmove(d.buf, d.buf + 1, d.have - 1);
      --d.have;
    }
  }
}

void DcerpcConnection::StartPdu(DirState& d, Direction dir, DcerpcObserver& obs) noexcept {
  const uint8_t* h = d.buf;
  if (const char* bad = CheckHeader(h)) {
    LoseSync(d, dir, bad, obs);
    return;
  }
  const uint8_t ptype = h[2];
  const uint8_t flags = h[3];
  const bool le = (h[4] & 0x10) != 0;
  const uint32_t frag = Rd16(h + 8, le);
  const uint32_t auth = Rd16(h + 10, le);
  d.frag_len = frag;
  d.malformed = d.gap_head = d.gap_tail = false;
  d.auth_ok = false;
  uint32_t auth_total = 0;
  if (auth > 0) {
    if (auth + kSecTrailerLen + kHeaderLen <= frag) {
      auth_total = auth + kSecTrailerLen;
      d.auth_ok = true;
    } else {
      obs.OnAnomaly(dir, "invalid_auth_length");
    }
  }
  d.body_end = frag - auth_total;
  uint32_t fixed = kHeaderLen;  // bytes of the body the PDU type needs
  uint32_t head = kHeaderLen;   // bytes to keep from the start
  uint32_t tail = auth_total > 0 ? kSecTrailerLen : 0;
  switch (ptype) {
    case kDcerpcRequest:
      fixed = 24 + ((flags & kPfcObjectUuid) ? 16 : 0);
      head = fixed;
      break;
    case kDcerpcResponse: {
      fixed = 24;
      head = fixed;
      // The endpoint mapper's answer is the one stub worth reading: it names the port the
      // client is about to connect to. Only its first fragment is kept.
      const Pending* p = FindPending(Rd32(h + 12, le));
      if (p != nullptr && p->epm_map && (flags & kPfcFirstFrag) && p->resp_frags == 0) {
        head = std::min<uint32_t>(d.body_end, kDcerpcBufferBytes - tail);
      }
      break;
    }
    case kDcerpcFault:
      fixed = 28;  // through the status; the reserved word after it is often absent
      head = 32;
      break;
    case kDcerpcBind:
    case kDcerpcAlterContext:
      fixed = 28;
      head = d.body_end;
      break;
    case kDcerpcBindAck:
    case kDcerpcAlterContextResp:
      fixed = 26;
      head = d.body_end;
      break;
    case kDcerpcBindNak:
      fixed = 18;
      head = d.body_end;
      break;
    case kDcerpcAuth3:
      fixed = 20;
      head = d.body_end;
      break;
    case kDcerpcShutdown:
    case kDcerpcCoCancel:
    case kDcerpcOrphaned:
    case kDcerpcRts:
      break;
    default:
      // Connectionless types have no place on a connection; the framing still holds.
      obs.OnAnomaly(dir, "unexpected_pdu_type");
      break;
  }
  if (IsCoType(ptype) && ptype != kDcerpcRequest && ptype != kDcerpcResponse &&
      ptype != kDcerpcFault && auth_total > 0) {
    const uint32_t body = std::min(d.body_end, kBodyReserve);
    tail = auth_total + body <= kDcerpcBufferBytes ? auth_total : kSecTrailerLen;
  }
  if (d.body_end < fixed) {
    obs.OnAnomaly(dir, "frag_length_too_short");
    d.malformed = true;
  }
  head = std::min(head, d.body_end);
  head = std::min<uint32_t>(head, kDcerpcBufferBytes - tail);
  head = std::max(head, kHeaderLen);
  d.head_keep = head;
  d.tail_start = d.body_end;
  d.tail_end = d.body_end + tail;
  if (d.have == d.frag_len) FinishPdu(d, dir, obs);  // a bare 16-byte PDU
}

void DcerpcConnection::FinishPdu(DirState& d, Direction dir, DcerpcObserver& obs) noexcept {
  switch (d.buf[2]) {
    case kDcerpcRequest:
      OnRequest(d, obs);
      break;
    case kDcerpcResponse:
    case kDcerpcFault:
      OnResponse(d, obs);
      break;
    case kDcerpcBind:
    case kDcerpcAlterContext:
      OnBind(d, dir, obs);
      break;
    case kDcerpcBindAck:
    case kDcerpcAlterContextResp:
    case kDcerpcBindNak:
      OnBindAck(d, dir, obs);
      break;
    default:
      OnOther(d, obs);
      break;
  }
  d.have = 0;
  d.frag_len = 0;
}

void DcerpcConnection::ParseAuth(const DirState& d, uint8_t* auth_type, uint8_t* auth_level,
                                 bool* has_ntlmssp, NtlmsspMessage* ntlmssp) noexcept {
  if (!d.auth_ok || d.gap_tail) return;
  const uint8_t* t = d.buf + d.head_keep;
  const uint32_t kept = d.tail_end - d.tail_start;
  *auth_type = t[0];
  *auth_level = t[1];
  const std::span<const uint8_t> value(t + kSecTrailerLen, kept - kSecTrailerLen);
  bool ntlm = false;
  if (t[0] == kAuthNtlmssp) {
    ntlm = true;
    if (!value.empty() && ntlmssp != nullptr) {
      NtlmsspMessage m;
      if (ParseNtlmssp(value, &m)) {
        *ntlmssp = m;
        *has_ntlmssp = true;
      }
    }
  } else if (t[0] == kAuthNegotiate && !value.empty()) {
    SpnegoToken tok;
    if (ParseSpnego(value, &tok) && tok.mech == SpnegoMech::kNtlmssp) {
      ntlm = true;
      NtlmsspMessage m;
      if (ntlmssp != nullptr && ParseNtlmssp(tok.mech_token, &m)) {
        *ntlmssp = m;
        *has_ntlmssp = true;
      }
    }
  }
  // Only the verifiers of bind-type PDUs (the callers that pass `ntlmssp`) carry tokens;
  // request/response ones are signatures, whose type is recorded and not counted.
  if (!ntlm && ntlmssp != nullptr) ++other_auth_count_;
}

DcerpcConnection::Pending* DcerpcConnection::FindPending(uint32_t call_id) noexcept {
  for (Pending& p : pending_) {
    if (p.used && p.call_id == call_id) return &p;
  }
  return nullptr;
}

DcerpcConnection::Pending* DcerpcConnection::NewPending(uint32_t call_id,
                                                        DcerpcObserver& obs) noexcept {
  Pending* slot = nullptr;
  for (Pending& p : pending_) {
    if (!p.used) {
      slot = &p;
      break;
    }
  }
  if (slot == nullptr) {
    // Full: the oldest call is reported as it stands.
    slot = &pending_[0];
    for (Pending& p : pending_) {
      if (p.age < slot->age) slot = &p;
    }
    EmitPending(*slot, obs);
  }
  std::memset(static_cast<void*>(slot), 0, sizeof *slot);
  slot->used = true;
  slot->call_id = call_id;
  slot->request_type = kDcerpcNone;
  slot->response_type = kDcerpcNone;
  slot->little_endian = true;
  slot->age = ++pending_age_;
  return slot;
}

void DcerpcConnection::EmitPending(Pending& p, DcerpcObserver& obs) noexcept {
  DcerpcCall c{};
  c.request_type = p.request_type;
  c.response_type = p.response_type;
  c.call_id = p.call_id;
  c.opnum = p.opnum;
  c.context_id = p.context_id;
  c.req_stub_size = p.req_stub;
  c.resp_stub_size = p.resp_stub;
  c.req_frags = p.req_frags;
  c.resp_frags = p.resp_frags;
  if (p.has_iface) {
    c.interfaces[0] = p.iface;
    c.num_interfaces = 1;
    c.total_interfaces = 1;
  }
  c.fault_status = p.fault_status;
  c.rpc_vers_minor = p.rpc_vers_minor;
  c.little_endian = p.little_endian;
  c.has_object_uuid = p.has_object_uuid;
  std::memcpy(c.object_uuid, p.object_uuid, 16);
  c.auth_type = p.auth_type;
  c.auth_level = p.auth_level;
  c.resp_auth_type = p.resp_auth_type;
  c.req_truncated = p.req_truncated;
  c.resp_truncated = p.resp_truncated;
  if (p.has_endpoints) {
    c.num_endpoints = num_endpoints_;
    std::copy_n(endpoints_, num_endpoints_, c.endpoints);
  }
  p.used = false;
  obs.OnCall(c);
}

void DcerpcConnection::EmitBind(DcerpcObserver& obs) noexcept {
  bind_pending_ = false;
  obs.OnCall(bind_);
}

void DcerpcConnection::OnRequest(const DirState& d, DcerpcObserver& obs) noexcept {
  const uint8_t* h = d.buf;
  const uint8_t flags = h[3];
  const bool le = (h[4] & 0x10) != 0;
  const uint32_t call_id = Rd32(h + 12, le);
  const bool body_ok = !d.malformed && !d.gap_head;
  Pending* p = FindPending(call_id);
  const bool first = (flags & kPfcFirstFrag) != 0;
  if (p != nullptr && first && p->req_frags > 0) {
    EmitPending(*p, obs);  // the call id was reused before a response came
    p = nullptr;
  }
  if (p == nullptr) p = NewPending(call_id, obs);
  if (p->request_type == kDcerpcNone) {
    p->request_type = kDcerpcRequest;
    p->rpc_vers_minor = h[1];
    p->little_endian = le;
    p->maybe = (flags & kPfcMaybe) != 0;
    if (body_ok) {
      p->context_id = Rd16(h + 20, le);
      p->opnum = Rd16(h + 22, le);
      if (flags & kPfcObjectUuid) {
        p->has_object_uuid = true;
        ReadUuid(h + 24, le, p->object_uuid);
      }
      if (const DcerpcInterface* iface = InterfaceFor(p->context_id)) {
        p->iface = *iface;
        p->has_iface = true;
        p->epm_map = CompareUuid(iface->uuid, kEpmUuid) == 0 && p->opnum == kEptMapOpnum;
      }
    }
    bool unused = false;
    ParseAuth(d, &p->auth_type, &p->auth_level, &unused, nullptr);
  }
  if (!body_ok) p->req_truncated = true;
  uint32_t stub = 0;
  const uint32_t fixed = 24 + ((flags & kPfcObjectUuid) ? 16 : 0);
  if (d.body_end > fixed) {
    stub = d.body_end - fixed;
    // The stub is padded so the sec_trailer is 16-byte aligned; the pad is not stub data.
    if (d.auth_ok && !d.gap_tail) stub -= std::min<uint32_t>(d.buf[d.head_keep + 2], stub);
  }
  p->req_frags = SatInc(p->req_frags);
  p->req_stub = SatAdd(p->req_stub, stub);
  if (flags & kPfcLastFrag) {
    p->req_done = true;
    DcerpcRequestView view;
    view.iface = p->has_iface ? &p->iface : nullptr;
    view.opnum = p->opnum;
    if (first && body_ok && d.head_keep > fixed) {
      view.stub = {d.buf + fixed, std::min<uint32_t>(stub, d.head_keep - fixed)};
    }
    obs.OnRequest(view);
    if (p->maybe) EmitPending(*p, obs);
  }
}

void DcerpcConnection::OnResponse(const DirState& d, DcerpcObserver& obs) noexcept {
  const uint8_t* h = d.buf;
  const uint8_t ptype = h[2];
  const uint8_t flags = h[3];
  const bool le = (h[4] & 0x10) != 0;
  const uint32_t call_id = Rd32(h + 12, le);
  Pending* p = FindPending(call_id);
  if (p == nullptr) {
    p = NewPending(call_id, obs);
    p->rpc_vers_minor = h[1];
    p->little_endian = le;
  }
  if (p->response_type == kDcerpcNone) {
    uint8_t unused_level = 0;
    bool unused = false;
    ParseAuth(d, &p->resp_auth_type, &unused_level, &unused, nullptr);
  }
  p->response_type = ptype;
  p->resp_frags = SatInc(p->resp_frags);
  if (d.malformed || d.gap_head) p->resp_truncated = true;
  if (ptype == kDcerpcFault) {
    if (!d.malformed && !d.gap_head) p->fault_status = Rd32(h + 24, le);
    EmitPending(*p, obs);
    return;
  }
  uint32_t stub = 0;
  if (d.body_end > 24) {
    stub = d.body_end - 24;
    if (d.auth_ok && !d.gap_tail) stub -= std::min<uint32_t>(d.buf[d.head_keep + 2], stub);
  }
  p->resp_stub = SatAdd(p->resp_stub, stub);
  if (p->epm_map && d.head_keep > 24 && !d.gap_head && !d.malformed) {
    const uint32_t end = std::min(d.head_keep, 24 + stub);
    const uint32_t before = endpoint_generation_;
    ParseEptMapTowers(std::span<const uint8_t>(h + 24, end - 24));
    if (endpoint_generation_ != before) p->has_endpoints = true;
  }
  if (flags & kPfcLastFrag) EmitPending(*p, obs);
}

void DcerpcConnection::OnBind(const DirState& d, Direction dir, DcerpcObserver& obs) noexcept {
  if (bind_pending_) EmitBind(obs);  // its ack never came
  const uint8_t* h = d.buf;
  const bool le = (h[4] & 0x10) != 0;
  bind_ = DcerpcCall{};
  DcerpcCall& c = bind_;
  c.request_type = h[2];
  c.call_id = Rd32(h + 12, le);
  c.rpc_vers_minor = h[1];
  c.little_endian = le;
  c.req_frags = 1;
  bind_pending_ = true;
  ParseAuth(d, &c.auth_type, &c.auth_level, &c.has_ntlmssp, &c.ntlmssp);
  if (d.malformed || d.gap_head) {
    c.req_truncated = true;
    return;
  }
  c.max_xmit_frag = Rd16(h + 16, le);
  c.max_recv_frag = Rd16(h + 18, le);
  c.assoc_group_id = Rd32(h + 20, le);
  const uint8_t n = h[24];
  c.total_interfaces = n;
  uint32_t off = 28;
  for (int i = 0; i < n; ++i) {
    if (off + 24 > d.body_end) {
      obs.OnAnomaly(dir, "malformed_pdu");  // items overrun the PDU
      c.req_truncated = true;
      c.total_interfaces = static_cast<uint8_t>(i);  // the ones really there
      break;
    }
    if (off + 24 > d.head_keep) {
      c.req_truncated = true;  // beyond the buffer bound
      break;
    }
    const uint8_t* item = h + off;
    if (c.num_interfaces < kDcerpcMaxInterfaces) {
      DcerpcInterface& iface = c.interfaces[c.num_interfaces++];
      iface = DcerpcInterface{};
      iface.context_id = Rd16(item, le);
      ReadUuid(item + 4, le, iface.uuid);
      iface.ver_major = Rd16(item + 20, le);
      iface.ver_minor = Rd16(item + 22, le);
    }
    off += 24 + 20u * item[2];
  }
}

void DcerpcConnection::OnBindAck(const DirState& d, Direction dir, DcerpcObserver& obs) noexcept {
  const uint8_t* h = d.buf;
  const uint8_t ptype = h[2];
  const bool le = (h[4] & 0x10) != 0;
  DcerpcCall lone{};  // an ack whose bind was not seen
  DcerpcCall* c = &bind_;
  if (!bind_pending_) {
    c = &lone;
    c->call_id = Rd32(h + 12, le);
    c->rpc_vers_minor = h[1];
    c->little_endian = le;
  }
  c->response_type = ptype;
  c->resp_frags = 1;
  {
    uint8_t unused_level = 0;
    bool has = false;
    NtlmsspMessage m;
    ParseAuth(d, &c->resp_auth_type, &unused_level, &has, &m);
    if (has) {  // the server's CHALLENGE says more than the client's NEGOTIATE
      c->ntlmssp = m;
      c->has_ntlmssp = true;
    }
  }
  if (d.malformed || d.gap_head) {
    c->resp_truncated = true;
  } else if (ptype == kDcerpcBindNak) {
    c->bind_nak_reason = Rd16(h + 16, le);
  } else {
    if (c->max_xmit_frag == 0) {
      c->max_xmit_frag = Rd16(h + 16, le);
      c->max_recv_frag = Rd16(h + 18, le);
    }
    c->assoc_group_id = Rd32(h + 20, le);
    const uint32_t sec_len = Rd16(h + 24, le);
    uint32_t off = 26 + sec_len;
    if (off > d.head_keep) {
      obs.OnAnomaly(dir, "malformed_pdu");
      c->resp_truncated = true;
    } else {
      c->secondary_address.Clear();
      char tmp[32];
      const size_t n = CopyCString(std::span<const uint8_t>(h + 26, sec_len), tmp, sizeof tmp);
      c->secondary_address.Assign(std::string_view(tmp, n));
      off = (off + 3) & ~3u;
      if (off + 4 > d.head_keep) {
        obs.OnAnomaly(dir, "malformed_pdu");
        c->resp_truncated = true;
      } else {
        const uint8_t nres = h[off];
        off += 4;
        for (int i = 0; i < nres; ++i, off += 24) {
          if (off + 24 > d.head_keep) {
            if (off + 24 > d.body_end) obs.OnAnomaly(dir, "malformed_pdu");
            c->resp_truncated = true;
            break;
          }
          if (i >= c->num_interfaces) continue;
          DcerpcInterface& iface = c->interfaces[i];
          iface.acked = true;
          iface.ack_result = Rd16(h + off, le);
          iface.ack_reason = Rd16(h + off + 2, le);
          if (iface.ack_result == 0) AddContext(iface);
        }
      }
    }
  }
  if (c == &bind_) {
    EmitBind(obs);
  } else {
    obs.OnCall(*c);
  }
}

void DcerpcConnection::OnOther(const DirState& d, DcerpcObserver& obs) noexcept {
  const uint8_t* h = d.buf;
  const bool le = (h[4] & 0x10) != 0;
  const uint32_t call_id = Rd32(h + 12, le);
  switch (h[2]) {
    case kDcerpcAuth3: {
      // The third leg of an NTLM bind: it carries the AUTHENTICATE message (who logged on).
      DcerpcCall c{};
      c.request_type = kDcerpcAuth3;
      c.call_id = call_id;
      c.rpc_vers_minor = h[1];
      c.little_endian = le;
      c.req_frags = 1;
      c.req_truncated = d.malformed || d.gap_head;
      ParseAuth(d, &c.auth_type, &c.auth_level, &c.has_ntlmssp, &c.ntlmssp);
      obs.OnCall(c);
      break;
    }
    case kDcerpcOrphaned:
      // The client abandoned the call: no response will come.
      if (Pending* p = FindPending(call_id)) EmitPending(*p, obs);
      break;
    default:
      break;
  }
}

// Reads the TCP/IP endpoints out of an ept_map response. The towers sit in NDR (or NDR64)
// conformant arrays; rather than decode both transfer syntaxes, the stub is searched for a
// tower octet string: a little-endian floor count followed by floors whose first is the
// interface (lhs 0x0d + UUID + version) and one of which is TCP (0x07, big-endian port).
void DcerpcConnection::ParseEptMapTowers(std::span<const uint8_t> s) noexcept {
  DcerpcEndpoint found[kDcerpcMaxEndpoints];
  int nfound = 0;
  const size_t n = s.size();
  for (size_t i = 0; i + 2 + 25 <= n && nfound < kDcerpcMaxEndpoints; ++i) {
    const uint16_t floors = LoadU16le(&s[i]);
    if (floors < 3 || floors > 8 || LoadU16le(&s[i + 2]) != 19 || s[i + 4] != 0x0d) continue;
    DcerpcEndpoint e;
    bool has_port = false;
    size_t q = i + 2;
    bool ok = true;
    for (int f = 0; f < floors; ++f) {
      if (q + 2 > n) {
        ok = false;
        break;
      }
      const uint16_t lhs_len = LoadU16le(&s[q]);
      if (lhs_len == 0 || q + 2 + lhs_len + 2 > n) {
        ok = false;
        break;
      }
      const uint8_t* lhs = &s[q + 2];
      const uint16_t rhs_len = LoadU16le(&s[q + 2 + lhs_len]);
      if (q + 4 + lhs_len + rhs_len > n) {
        ok = false;
        break;
      }
      const uint8_t* rhs = &s[q + 4 + lhs_len];
      if (f == 0) {
        if (lhs_len != 19 || rhs_len != 2) {
          ok = false;
          break;
        }
        std::memcpy(e.uuid, lhs + 1, 16);
        e.ver_major = LoadU16le(lhs + 17);
      } else if (lhs[0] == 0x07 && rhs_len == 2) {
        e.port = LoadU16be(rhs);
        has_port = true;
      } else if (lhs[0] == 0x09 && rhs_len == 4) {
        std::memcpy(e.ip, rhs, 4);
        e.has_ip = true;
      }
      q += 4 + lhs_len + rhs_len;
    }
    if (!ok || !has_port) continue;
    found[nfound++] = e;
    i = q - 1;
  }
  if (nfound == 0) return;
  std::copy_n(found, nfound, endpoints_);
  num_endpoints_ = static_cast<uint8_t>(nfound);
  ++endpoint_generation_;
}

void DcerpcConnection::Gap(Direction dir, uint32_t n, DcerpcObserver& obs) noexcept {
  DirState& d = dirs_[static_cast<int>(dir)];
  if (d.dead || n == 0) return;
  if (d.lost) {
    d.have = 0;  // the window's bytes are no longer contiguous with what follows
    return;
  }
  if (d.frag_len == 0) {
    // Between PDUs or inside a header: the next header's position is unknown.
    d.have = 0;
    obs.OnAnomaly(dir, "gap");
    d.lost = true;
    return;
  }
  const uint32_t remaining = d.frag_len - d.have;
  const uint32_t step = std::min(n, remaining);
  // Lost bytes of a kept range are zero-filled and the range marked.
  const uint32_t from = d.have, to = d.have + step;
  if (from < d.head_keep) {
    d.gap_head = true;
    std::memset(d.buf + from, 0, std::min(to, d.head_keep) - from);
  }
  if (from < d.tail_end && to > d.tail_start) d.gap_tail = true;
  d.have = to;
  if (d.have == d.frag_len) FinishPdu(d, dir, obs);
  if (n > remaining) {
    obs.OnAnomaly(dir, "gap");
    d.have = 0;
    d.lost = true;
  }
}

void DcerpcConnection::Flush(DcerpcObserver& obs) noexcept {
  if (bind_pending_) EmitBind(obs);
  // Oldest first.
  for (;;) {
    Pending* oldest = nullptr;
    for (Pending& p : pending_) {
      if (p.used && (oldest == nullptr || p.age < oldest->age)) oldest = &p;
    }
    if (oldest == nullptr) break;
    EmitPending(*oldest, obs);
  }
}

// ---------------------------------------------------------------------------------------------
// Output

void DcerpcConnection::WriteCallJson(const DcerpcCall& c, JsonWriter& w,
                                     DcerpcJsonStyle style) const noexcept {
  char tmp[48];
  const bool is_bind = c.request_type == kDcerpcBind || c.request_type == kDcerpcAlterContext;
  w.Str("request",
        c.request_type != kDcerpcNone ? DcerpcPduTypeName(c.request_type) : "REQUEST_LOST");
  if (c.response_type != kDcerpcNone) {
    w.Str("response", DcerpcPduTypeName(c.response_type));
  } else if (c.request_type != kDcerpcAuth3) {  // AUTH3 has no response by design
    w.Str("response", "UNREPLIED");
  }
  const char* op_name = nullptr;
  const char* if_name = nullptr;
  if (c.request_type == kDcerpcRequest) {
    if (style == DcerpcJsonStyle::kSmb) w.Uint("opnum", c.opnum);
    w.ObjectBegin("req");
    w.Uint("opnum", c.opnum);
    w.Uint("frag_cnt", c.req_frags);
    w.Uint("stub_data_size", c.req_stub_size);
    w.ObjectEnd();
  }
  if (c.num_interfaces > 0 && (is_bind || c.request_type == kDcerpcRequest)) {
    w.ArrayBegin("interfaces");
    for (int i = 0; i < c.num_interfaces; ++i) {
      const DcerpcInterface& f = c.interfaces[i];
      w.ObjectBegin("");
      char g[37];
      FormatGuidLe(f.uuid, g);
      w.Str("uuid", std::string_view(g, 36));
      w.Str("version", FormatVersion(f.ver_major, f.ver_minor, tmp, sizeof tmp));
      if (f.acked) {
        w.Uint("ack_result", f.ack_result);
        w.Uint("ack_reason", f.ack_reason);
      }
      // Suricata 9 names these `service` / `procedure`; the names come from Zeek's table.
      if (const char* name = DcerpcInterfaceName(f.uuid)) {
        w.Str("service", name);
        if (c.request_type == kDcerpcRequest) {
          if_name = name;
          op_name = DcerpcOperationName(f.uuid, c.opnum);
          if (op_name != nullptr) w.Str("procedure", op_name);
        }
      }
      w.ObjectEnd();
    }
    w.ArrayEnd();
  }
  if (c.response_type == kDcerpcResponse) {
    w.ObjectBegin("res");
    w.Uint("frag_cnt", c.resp_frags);
    w.Uint("stub_data_size", c.resp_stub_size);
    w.ObjectEnd();
  }
  w.Uint("call_id", c.call_id);
  w.Str("rpc_version", FormatVersion(5, c.rpc_vers_minor, tmp, sizeof tmp));
  // vigil's extras.
  if (if_name != nullptr) w.Str("interface", if_name);
  if (op_name != nullptr) w.Str("operation", op_name);
  if (c.request_type == kDcerpcRequest) w.Uint("context_id", c.context_id);
  if (c.has_object_uuid) {
    char g[37];
    FormatGuidLe(c.object_uuid, g);
    w.Str("object_uuid", std::string_view(g, 36));
  }
  if (c.response_type == kDcerpcFault) {
    TextBuilder hex;
    hex.AppendHex32(c.fault_status);
    w.Str("fault_status", hex.view());
  }
  if (c.response_type == kDcerpcBindNak) w.Uint("reject_reason", c.bind_nak_reason);
  if (!c.secondary_address.empty()) w.Str("secondary_address", c.secondary_address.view());
  if (c.auth_type != 0 || c.resp_auth_type != 0) {
    const uint8_t t = c.auth_type != 0 ? c.auth_type : c.resp_auth_type;
    if (const char* name = AuthTypeName(t)) {
      w.Str("auth_type", name);
    } else {
      w.Uint("auth_type", t);
    }
    if (c.auth_type != 0) {
      if (const char* name = AuthLevelName(c.auth_level)) {
        w.Str("auth_level", name);
      } else {
        w.Uint("auth_level", c.auth_level);
      }
    }
  }
  if (c.num_endpoints > 0) {
    w.ArrayBegin("endpoints");
    for (int i = 0; i < c.num_endpoints; ++i) {
      const DcerpcEndpoint& e = c.endpoints[i];
      w.ObjectBegin("");
      if (e.has_ip) w.Str("ip", FormatIp(e.ip, tmp, sizeof tmp));
      w.Uint("port", e.port);
      char g[37];
      FormatGuidLe(e.uuid, g);
      w.Str("uuid", std::string_view(g, 36));
      if (const char* name = DcerpcInterfaceName(e.uuid)) w.Str("service", name);
      w.ObjectEnd();
    }
    w.ArrayEnd();
  }
  if (c.has_ntlmssp) {
    w.ObjectBegin("ntlmssp");
    w.Str("type", NtlmsspTypeName(c.ntlmssp.type));
    WriteNtlmsspJson(c.ntlmssp, w);  // a CHALLENGE: target_name and the server's AV names
    w.ObjectEnd();
  }
  if (c.req_truncated || c.resp_truncated) w.Bool("truncated", true);
}

void DcerpcConnection::AppendCallMessage(const DcerpcCall& c, TextBuilder& t) const noexcept {
  if (c.request_type == kDcerpcNone) {
    t.Append(DcerpcPduTypeName(c.response_type)).Append(" call_id ").AppendUint(c.call_id);
    t.Append(", request not seen");
    return;
  }
  t.Append(DcerpcPduTypeName(c.request_type));
  switch (c.request_type) {
    case kDcerpcRequest: {
      t.Append(' ');
      const char* op = nullptr;
      if (c.num_interfaces > 0) {
        AppendIfaceLabel(c.interfaces[0].uuid, t);
        op = DcerpcOperationName(c.interfaces[0].uuid, c.opnum);
      } else {
        t.Append("context ").AppendUint(c.context_id);
      }
      if (op != nullptr) t.Append(' ').Append(op);
      t.Append(" opnum ").AppendUint(c.opnum);
      if (c.response_type == kDcerpcResponse) {
        t.Append(" ok");
      } else if (c.response_type == kDcerpcFault) {
        t.Append(" fault ").AppendHex32(c.fault_status);
      } else {
        t.Append(" unreplied");
      }
      for (int i = 0; i < c.num_endpoints; ++i) {
        char tmp[24];
        t.Append(i == 0 ? " -> " : ", ");
        const DcerpcEndpoint& e = c.endpoints[i];
        if (e.has_ip) t.Append(FormatIp(e.ip, tmp, sizeof tmp));
        t.Append(':').AppendUint(e.port);
      }
      return;
    }
    case kDcerpcBind:
    case kDcerpcAlterContext: {
      constexpr int kShown = 4;
      for (int i = 0; i < c.num_interfaces && i < kShown; ++i) {
        const DcerpcInterface& f = c.interfaces[i];
        t.Append(i == 0 ? " " : ", ");
        AppendIfaceLabel(f.uuid, t);
        t.Append(" v").AppendUint(f.ver_major).Append('.').AppendUint(f.ver_minor);
        if (f.acked) {
          if (const char* word = AckResultWord(f.ack_result)) {
            t.Append(' ').Append(word);
          } else {
            t.Append(" result ").AppendUint(f.ack_result);
          }
        } else if (c.response_type == kDcerpcBindAck ||
                   c.response_type == kDcerpcAlterContextResp) {
          t.Append(" no result");  // the ack listed fewer results than the bind had items
        }
      }
      const int shown = std::min<int>(c.num_interfaces, kShown);
      if (c.total_interfaces > shown) {
        t.Append(", ").AppendUint(c.total_interfaces - shown).Append(" more");
      }
      if (c.response_type == kDcerpcBindNak) {
        t.Append(" rejected (bind_nak reason ").AppendUint(c.bind_nak_reason).Append(')');
      } else if (c.response_type == kDcerpcNone) {
        t.Append(" unreplied");
      }
      break;
    }
    default:
      break;
  }
  if (c.has_ntlmssp && c.ntlmssp.type == NtlmsspType::kAuthenticate) {
    t.Append(' ');
    AppendNtlmsspMessage(c.ntlmssp, t);
  }
}

// ---------------------------------------------------------------------------------------------
// DcerpcParser

ProbeResult DcerpcParser::Probe(Direction dir, std::span<const uint8_t> first_bytes) noexcept {
  (void)dir;  // either side may speak first after a midstream pickup
  return DcerpcProbe(first_bytes);
}

void DcerpcParser::OnData(Direction dir, std::span<const uint8_t> data, EventSink& sink) noexcept {
  sink_ = &sink;
  conn_.Feed(dir, data, *this);
  sink_ = nullptr;
}

void DcerpcParser::OnGap(Direction dir, uint32_t missing_bytes, EventSink& sink) noexcept {
  sink_ = &sink;
  conn_.Gap(dir, missing_bytes, *this);
  sink_ = nullptr;
}

void DcerpcParser::OnEnd(EventSink& sink) noexcept {
  sink_ = &sink;
  conn_.Flush(*this);
  sink_ = nullptr;
}

void DcerpcParser::OnRequest(const DcerpcRequestView& request) noexcept {
  if (sink_ == nullptr || !sink_->inspecting()) return;
  InspectDcerpcRequest(request, Direction::kToServer, *sink_);
}

void InspectDcerpcRequest(const DcerpcRequestView& request, Direction dir,
                          EventSink& sink) noexcept {
  rules::DcerpcInfo info;
  if (request.iface != nullptr) {
    info.has_iface = true;
    std::memcpy(info.uuid.data(), request.iface->uuid, 16);
    info.version = request.iface->ver_major;
  }
  info.opnum = request.opnum;
  rules::Buffers b;
  b.Set(rules::Buffer::kDcerpcStubData, request.stub);
  b.SetDcerpc(&info);
  sink.Inspect(dir, b);
}

void DcerpcParser::OnCall(const DcerpcCall& call) noexcept {
  if (sink_ == nullptr) return;
  const Direction dir =
      call.request_type != kDcerpcNone ? Direction::kToServer : Direction::kToClient;
  JsonWriter& w = sink_->Begin("dcerpc", dir);
  w.ObjectBegin("dcerpc");
  conn_.WriteCallJson(call, w, DcerpcJsonStyle::kDcerpc);
  w.ObjectEnd();
  TextBuilder& t = sink_->message();
  t.Append("DCERPC ");
  conn_.AppendCallMessage(call, t);
  sink_->Commit();
}

void DcerpcParser::OnAnomaly(Direction dir, const char* event) noexcept {
  if (sink_ == nullptr) return;
  if (anomalies_ >= kMaxAnomalies) {
    ++anomalies_suppressed_;
    return;
  }
  ++anomalies_;
  EmitAnomaly(*sink_, dir, AppProto::kDcerpc, event);
}

}  // namespace vigil::proto
