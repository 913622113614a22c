// Connection-oriented DCE-RPC (C706 chapter 12, MS-RPCE 2.2.2): the PDU layer shared by DCE-RPC
// over TCP (port 135 and the dynamic ports the endpoint mapper hands out) and over SMB named pipes,
// plus the `dcerpc` application parser for the TCP case.
//
// Thread: one owner (the worker that owns the flow). Nothing blocks, allocates or throws.
// Limits: per direction only the PDU header, the bodies of bind-type PDUs (bind, bind_ack,
// alter_context(_resp), bind_nak, fault, auth3), the endpoint-mapper map response stub and the
// auth trailer are buffered, together at most kDcerpcBufferBytes; request/response stub bytes
// are counted and skipped incrementally. At most kDcerpcMaxPendingCalls calls wait for their
// response, kDcerpcMaxInterfaces context items are kept per bind and kDcerpcMaxContexts contexts
// per connection; more are counted, not stored.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "dataplane/proto/bytes.h"
#include "dataplane/proto/event.h"
#include "dataplane/proto/json_writer.h"
#include "dataplane/proto/ntlmssp.h"

namespace vigil::proto {

inline constexpr int kDcerpcMaxInterfaces = 16;  // context items kept per bind / alter_context
inline constexpr int kDcerpcMaxContexts = 16;    // accepted contexts kept per connection
inline constexpr int kDcerpcMaxPendingCalls = 8;
inline constexpr int kDcerpcMaxEndpoints = 4;  // towers kept from one ept_map response
// Buffered bytes of one PDU, per direction: the header, a bind's context items and an auth
// verifier such as an NTLMSSP AUTHENTICATE (500-900 bytes in practice) fit.
inline constexpr size_t kDcerpcBufferBytes = 1536;

// PDU types (C706 12.6.4.1).
enum DcerpcPduType : uint8_t {
  kDcerpcRequest = 0,
  kDcerpcPing = 1,
  kDcerpcResponse = 2,
  kDcerpcFault = 3,
  kDcerpcWorking = 4,
  kDcerpcNocall = 5,
  kDcerpcReject = 6,
  kDcerpcAck = 7,
  kDcerpcClCancel = 8,
  kDcerpcFack = 9,
  kDcerpcCancelAck = 10,
  kDcerpcBind = 11,
  kDcerpcBindAck = 12,
  kDcerpcBindNak = 13,
  kDcerpcAlterContext = 14,
  kDcerpcAlterContextResp = 15,
  kDcerpcAuth3 = 16,
  kDcerpcShutdown = 17,
  kDcerpcCoCancel = 18,
  kDcerpcOrphaned = 19,
  kDcerpcRts = 20,  // RPC over HTTP control PDU
  kDcerpcNone = 0xff,
};
// Suricata's spelling of a PDU type: "REQUEST", "BIND", "BINDACK", "ALTER_CONTEXT", ...;
// "UNKNOWN" for others.
const char* DcerpcPduTypeName(uint8_t ptype) noexcept;

struct DcerpcInterface {
  uint8_t uuid[16];  // wire layout of a little-endian GUID (FormatGuidLe), whatever the PDU's drep
  uint16_t ver_major, ver_minor, context_id;
  uint16_t ack_result, ack_reason;  // from the bind_ack / alter_context_resp
  bool acked;
};

// A TCP endpoint learned from an endpoint-mapper (epm) ept_map response tower.
struct DcerpcEndpoint {
  uint8_t uuid[16] = {};  // interface of the tower's first floor (GUID wire layout)
  uint16_t ver_major = 0;
  uint8_t ip[4] = {};  // IPv4 in network order; 0.0.0.0 means "the address you asked"
  bool has_ip = false;
  uint16_t port = 0;  // TCP port, host order
};

// One call: a request PDU (or bind/alter_context/auth3) and its response, as seen so far.
struct DcerpcCall {
  // PDU type of the request: 0 REQUEST, 11 BIND, 14 ALTER_CONTEXT, 16 AUTH3...; 0xff none.
  uint8_t request_type = 0xff;
  // 2 RESPONSE, 3 FAULT, 12 BIND_ACK, 13 BIND_NAK, 15 ALTER_CONTEXT_RESP; 0xff none.
  uint8_t response_type = 0xff;
  uint32_t call_id = 0;
  uint16_t opnum = 0, context_id = 0;
  uint32_t req_stub_size = 0, resp_stub_size = 0;
  uint16_t req_frags = 0, resp_frags = 0;
  uint8_t num_interfaces = 0;
  DcerpcInterface interfaces[kDcerpcMaxInterfaces];
  bool has_ntlmssp = false;
  // From an auth verifier: the response's message when it has one, else the request's.
  NtlmsspMessage ntlmssp;
  uint32_t fault_status = 0;

  // Extras beyond the contract.
  uint8_t rpc_vers_minor = 0;    // 0 or 1 ("5.0" / "5.1")
  bool little_endian = true;     // integer representation of the request (else the response)
  bool has_object_uuid = false;  // request carried an object UUID (PFC_OBJECT_UUID)
  uint8_t object_uuid[16] = {};
  uint8_t auth_type = 0;  // sec_trailer auth_type of the request (0 none, 9 SPNEGO, 10 NTLMSSP...)
  uint8_t auth_level = 0;
  uint8_t resp_auth_type = 0;
  uint16_t bind_nak_reason = 0;                   // provider_reject_reason of a bind_nak
  uint16_t max_xmit_frag = 0, max_recv_frag = 0;  // bind / bind_ack
  uint32_t assoc_group_id = 0;
  FixedString<32> secondary_address;  // bind_ack sec_addr port_spec ("49155", "\PIPE\atsvc")
  uint8_t total_interfaces = 0;       // context items in the bind, stored or not
  uint8_t num_endpoints = 0;          // epm ept_map response towers
  DcerpcEndpoint endpoints[kDcerpcMaxEndpoints];
  bool req_truncated = false;  // a PDU body did not fit the buffer or was cut by a gap
  bool resp_truncated = false;
};

enum class DcerpcJsonStyle : uint8_t { kDcerpc, kSmb };

// A request as the signature engine sees it (dcerpc.iface, dcerpc.opnum, dcerpc.stub_data), when
// its last fragment arrives.
struct DcerpcRequestView {
  const DcerpcInterface* iface = nullptr;  // the context's interface; nullptr when not bound here
  uint16_t opnum = 0;
  // The stub as kept (the start of a single-fragment request's; empty for a fragmented one,
  // whose stub is only counted).
  std::span<const uint8_t> stub;
};

class DcerpcObserver {
 public:
  // A call completed (its response's last fragment arrived, or a request that has no response).
  virtual void OnCall(const DcerpcCall& call) noexcept = 0;
  // A request's last fragment arrived (before its response).
  virtual void OnRequest(const DcerpcRequestView& request) noexcept { (void)request; }
  // A malformed PDU etc. `event` is a short snake_case name ("unsupported_version", ...).
  virtual void OnAnomaly(Direction dir, const char* event) noexcept { (void)dir, (void)event; }

 protected:
  ~DcerpcObserver() = default;
};

// Connection-oriented DCE-RPC (MS-RPCE/C706) for one connection: a TCP connection or one SMB
// named pipe. Fixed size. Keeps the context table (context id -> interface) from binds.
class DcerpcConnection {
 public:
  DcerpcConnection() noexcept { Reset(); }
  void Reset() noexcept;
  // Bytes of one direction, split anywhere. Fragments are counted and reassembled per call (the
  // stub is not buffered beyond a small bound; sizes are counted).
  void Feed(Direction dir, std::span<const uint8_t> data, DcerpcObserver& obs) noexcept;
  // `n` bytes of `dir` were lost. Inside a stub the PDU framing survives; otherwise the direction
  // resynchronises on the next plausible PDU header.
  void Gap(Direction dir, uint32_t n, DcerpcObserver& obs) noexcept;
  // Reports every call still waiting for its response (end of the flow or pipe), then forgets them.
  void Flush(DcerpcObserver& obs) noexcept;
  // Writes Suricata's `dcerpc` members for `call` into the open object (request, response,
  // interfaces[]/interface, opnum, req{frag_cnt,stub_data_size}, res{...}, call_id, rpc_version).
  // The two-argument form writes the superset of both of Suricata's shapes (the `smb.dcerpc`
  // one has `opnum` beside `req`, the `dcerpc` one inside it); kDcerpc writes the `dcerpc`
  // event's shape only. Both add vigil's extras (interface/operation names, ntlmssp, ...).
  void WriteCallJson(const DcerpcCall& call, JsonWriter& w) const noexcept {
    WriteCallJson(call, w, DcerpcJsonStyle::kSmb);
  }
  void WriteCallJson(const DcerpcCall& call, JsonWriter& w, DcerpcJsonStyle style) const noexcept;
  // "BIND sasec v1.0 accepted", "REQUEST atsvc NetrJobAdd opnum 0 ok", ... (no "DCERPC " prefix).
  void AppendCallMessage(const DcerpcCall& call, TextBuilder& t) const noexcept;
  // The interface a context id maps to, or nullptr.
  const DcerpcInterface* InterfaceFor(uint16_t context_id) const noexcept;

  // Endpoints of the last ept_map response that returned any; `generation` grows by one with
  // each such response (0: none yet), so a caller can tell a new answer from one it has seen.
  std::span<const DcerpcEndpoint> learned_endpoints() const noexcept {
    return {endpoints_, num_endpoints_};
  }
  uint32_t endpoint_generation() const noexcept { return endpoint_generation_; }
  // PDUs with an auth verifier of a type other than NTLMSSP (counted, not decoded).
  uint32_t other_auth_count() const noexcept { return other_auth_count_; }
  // True while the direction resynchronises after a bad header or a gap over a header.
  bool lost(Direction dir) const noexcept { return dirs_[static_cast<int>(dir)].lost; }

 private:
  // A request (or a response whose request was not seen) waiting for the rest of its call.
  struct Pending {
    bool used;
    bool has_iface;  // `iface` is the context's interface when the request arrived
    bool req_done;   // the request's last fragment arrived
    bool maybe;      // PFC_MAYBE: no response will come
    bool has_object_uuid;
    bool little_endian;
    bool epm_map;        // an endpoint-mapper ept_map call: its response towers are read
    bool has_endpoints;  // the response carried towers (copied from endpoints_ when reported)
    bool req_truncated, resp_truncated;
    uint8_t request_type, response_type, rpc_vers_minor, auth_type, auth_level, resp_auth_type;
    uint16_t opnum, context_id, req_frags, resp_frags;
    uint32_t call_id, fault_status, req_stub, resp_stub, age;
    uint8_t object_uuid[16];
    DcerpcInterface iface;
  };
  struct DirState {
    uint32_t have;        // bytes of the current PDU seen (header included)
    uint32_t frag_len;    // 0 until the header is complete
    uint32_t head_keep;   // bytes from the start of the PDU kept in buf
    uint32_t body_end;    // PDU offset where the auth verifier (or the PDU) starts
    uint32_t tail_start;  // PDU range [tail_start, tail_end) is kept in buf after the head
    uint32_t tail_end;
    bool auth_ok;             // the header's auth_length fits the PDU
    bool malformed;           // the PDU is shorter than its type's fixed fields
    bool gap_head, gap_tail;  // kept bytes were lost to a gap (zero-filled)
    bool lost;                // resynchronising: looking for a plausible header
    bool dead;                // gave up on this direction
    uint8_t losses;           // times sync was lost
    uint8_t buf[kDcerpcBufferBytes];
  };

  void FeedDir(Direction dir, std::span<const uint8_t> data, DcerpcObserver& obs) noexcept;
  size_t ResyncFeed(DirState& d, std::span<const uint8_t> data) noexcept;
  void StartPdu(DirState& d, Direction dir, DcerpcObserver& obs) noexcept;
  void FinishPdu(DirState& d, Direction dir, DcerpcObserver& obs) noexcept;
  void LoseSync(DirState& d, Direction dir, const char* why, DcerpcObserver& obs) noexcept;
  void OnBind(const DirState& d, Direction dir, DcerpcObserver& obs) noexcept;
  void OnBindAck(const DirState& d, Direction dir, DcerpcObserver& obs) noexcept;
  void OnRequest(const DirState& d, DcerpcObserver& obs) noexcept;
  void OnResponse(const DirState& d, DcerpcObserver& obs) noexcept;
  void OnOther(const DirState& d, DcerpcObserver& obs) noexcept;
  // Reads the kept sec_trailer and auth value of the PDU in `d`.
  void ParseAuth(const DirState& d, uint8_t* auth_type, uint8_t* auth_level, bool* has_ntlmssp,
                 NtlmsspMessage* ntlmssp) noexcept;
  void ParseEptMapTowers(std::span<const uint8_t> stub) noexcept;
  Pending* FindPending(uint32_t call_id) noexcept;
  Pending* NewPending(uint32_t call_id, DcerpcObserver& obs) noexcept;
  void EmitPending(Pending& p, DcerpcObserver& obs) noexcept;
  void EmitBind(DcerpcObserver& obs) noexcept;
  void AddContext(const DcerpcInterface& iface) noexcept;

  DirState dirs_[2];
  Pending pending_[kDcerpcMaxPendingCalls];
  uint32_t pending_age_;
  bool bind_pending_;
  DcerpcCall bind_;  // the bind / alter_context waiting for its ack
  DcerpcInterface contexts_[kDcerpcMaxContexts];
  uint8_t num_contexts_;
  uint8_t next_context_slot_;  // replaced when the table is full
  DcerpcEndpoint endpoints_[kDcerpcMaxEndpoints];
  uint8_t num_endpoints_;
  uint32_t endpoint_generation_;
  uint32_t other_auth_count_;
};

// Names from the Zeek consts table: "atsvc", "sasec", "ITaskSchedulerService", ... or nullptr.
const char* DcerpcInterfaceName(const uint8_t uuid[16]) noexcept;
const char* DcerpcOperationName(const uint8_t uuid[16], uint16_t opnum) noexcept;
// Whether `data` starts like a connection-oriented DCE-RPC PDU (version 5.0, known type, valid
// drep and lengths): kMaybe until 16 bytes are there.
ProbeResult DcerpcProbe(std::span<const uint8_t> data) noexcept;

// Gives a request to the signature engine through `sink` (EventSink::Inspect): dcerpc.stub_data
// and the request's interface and opnum (rules::DcerpcInfo). Call only when sink.inspecting().
void InspectDcerpcRequest(const DcerpcRequestView& request, Direction dir,
                          EventSink& sink) noexcept;

// The `dcerpc` parser for DCE-RPC over TCP: one EVE `dcerpc` event per call (a bind and its ack,
// a request and its response), anomalies for malformed PDUs.
class DcerpcParser final : public AppParser, private DcerpcObserver {
 public:
  static ProbeResult Probe(Direction dir, std::span<const uint8_t> first_bytes) noexcept;

  void OnData(Direction dir, std::span<const uint8_t> data, EventSink& sink) noexcept override;
  void OnGap(Direction dir, uint32_t missing_bytes, EventSink& sink) noexcept override;
  void OnEnd(EventSink& sink) noexcept override;

  // Endpoint-mapper answers seen on this flow (see DcerpcConnection::learned_endpoints). The
  // integrator polls endpoint_generation() after OnData and, when it changed, hints the flow
  // table that TCP to (ip, or this flow's server address when ip is 0.0.0.0 / !has_ip):port is
  // DCE-RPC.
  std::span<const DcerpcEndpoint> learned_endpoints() const noexcept {
    return conn_.learned_endpoints();
  }
  uint32_t endpoint_generation() const noexcept { return conn_.endpoint_generation(); }
  const DcerpcConnection& connection() const noexcept { return conn_; }
  uint32_t anomalies_suppressed() const noexcept { return anomalies_suppressed_; }

 private:
  void OnCall(const DcerpcCall& call) noexcept override;
  void OnRequest(const DcerpcRequestView& request) noexcept override;
  void OnAnomaly(Direction dir, const char* event) noexcept override;

  // Anomaly events per flow; more are counted in anomalies_suppressed_ only, so that a stream
  // of small malformed PDUs cannot flood the event ring.
  static constexpr uint16_t kMaxAnomalies = 32;

  DcerpcConnection conn_;
  EventSink* sink_ = nullptr;  // valid during OnData/OnGap/OnEnd only
  uint16_t anomalies_ = 0;
  uint32_t anomalies_suppressed_ = 0;
};

}  // namespace vigil::proto
