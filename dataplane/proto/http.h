// HTTP/1.x (RFC 9112) parser for one TCP connection: requests and responses, incremental at any
// byte boundary, pipelined requests matched with responses in order. Emits one Suricata-shaped
// `http` event per transaction once its response is complete (or, for requests that get no
// response, at the end of the flow or when the pending queue overflows), and `anomaly` events
// named as Suricata's HTTP app-layer events (REQUEST_LINE_INVALID, INVALID_RESPONSE_CHUNK_LEN,
// ...). NTLMSSP carried in `Authorization: NTLM|Negotiate <base64>` and `WWW-Authenticate: ...` is
// decoded and reported inside the `http` object.
//
// Thread: one owner (the worker that owns the flow). Never allocates, never blocks, never throws.
// Limits: start and header lines are buffered up to kRequestLineMax / kResponseLineMax bytes (the
// rest of a longer line is skipped; lines over kFieldLimit raise *_FIELD_TOO_LONG); at most
// kMaxPending requests wait for their responses; bodies are never buffered, only counted; strings
// kept per transaction are cut to fixed sizes (see http.cc) and share kTxArena bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "dataplane/proto/event.h"
#include "dataplane/proto/ntlmssp.h"

namespace vigil::proto {

// Optional observer of the pieces a detection engine inspects (Suricata's http.request_header /
// http.response_header and file_data buffers). Called synchronously from OnData on the worker
// thread, so it must not block. Header values are trimmed and unfolded but may be cut to the line
// buffer; body bytes are de-chunked and never buffered by the parser.
class HttpInspector {
 public:
  virtual void OnHeader(Direction dir, std::span<const uint8_t> name,
                        std::span<const uint8_t> value) noexcept = 0;
  virtual void OnBody(Direction dir, std::span<const uint8_t> data) noexcept = 0;
  // A request or response ended (its body, if any, is complete or was cut by a gap / the end).
  virtual void OnMessageEnd(Direction dir) noexcept = 0;

 protected:
  ~HttpInspector() = default;
};

class HttpParser final : public AppParser {
 public:
  static constexpr size_t kRequestLineMax = 4096;   // buffered bytes of one request-side line
  static constexpr size_t kResponseLineMax = 1024;  // buffered bytes of one response-side line
  static constexpr uint32_t kFieldLimit = 18000;    // longer lines are an anomaly (libhtp's limit)
  static constexpr size_t kMaxPending = 8;          // requests awaiting their responses
  static constexpr size_t kTxArena = 1024;          // request strings of one transaction
  static constexpr size_t kRespArena = 512;         // response strings of the current response
  static constexpr uint32_t kMaxHeaders = 1024;     // header lines per message before an anomaly
  static constexpr uint8_t kMaxAnomalies = 32;      // anomaly events per direction and flow
  // The signature engine's buffers (assembled only while the sink is inspecting), per direction:
  // start line and raw header lines, normalised header lines, header names, the first body
  // bytes; and for requests the normalised URI and host. Longer content is cut.
  static constexpr size_t kDetectHead = 2048;
  static constexpr size_t kDetectNames = 512;
  static constexpr size_t kDetectNorm = 2048;
  static constexpr size_t kDetectBody = 4096;

  HttpParser() noexcept;

  // kYes for a request method followed by a space (to_server) or "HTTP/1." (to_client).
  static ProbeResult Probe(Direction dir, std::span<const uint8_t> data) noexcept;

  // nullptr (the default) for none. The inspector must outlive the parser.
  void set_inspector(HttpInspector* inspector) noexcept { inspector_ = inspector; }

  void OnData(Direction dir, std::span<const uint8_t> data, EventSink& sink) noexcept override;
  void OnGap(Direction dir, uint32_t missing_bytes, EventSink& sink) noexcept override;
  void OnEnd(EventSink& sink) noexcept override;

 private:
  enum class State : uint8_t {
    kStartLine,     // request line / status line (blank lines between messages are skipped)
    kHeaders,       // header lines up to the blank line
    kBodyLength,    // Content-Length body: `remaining` bytes
    kBodyClose,     // response body delimited by the end of the connection
    kChunkSize,     // chunk-size line
    kChunkData,     // `remaining` bytes of chunk data
    kChunkDataEnd,  // the CRLF after chunk data
    kTrailers,      // trailer lines after the last chunk, up to the blank line
    kTunnel,        // CONNECT / 101 Switching Protocols: no longer HTTP, bytes ignored
  };

  // A string kept in an arena: offset and length.
  struct Field {
    uint16_t off = 0;
    uint16_t len = 0;
  };

  // One transaction's request side (the response side lives in Response: only one response is
  // ever in progress, and its transaction is emitted when it completes).
  struct Tx {
    uint32_t seq = 0;
    uint16_t used = 0;  // arena bytes in use
    Field method, url, protocol, hostname, user_agent, xff, referer;
    int32_t port = -1;  // from the URI authority or Host header, -1 when absent
    bool has_host = false;
    bool is_head = false;
    bool is_connect = false;
    bool http09 = false;  // request line without protocol: the response has no status line
    char arena[kTxArena];
  };

  struct Response {
    bool active = false;    // a response has started and is not complete
    bool detached = false;  // its transaction was already emitted (queue overflow): don't emit
    bool bound = false;     // matched to the transaction with seq tx_seq (else: no request)
    bool has_status_line = false;
    bool status_valid = false;
    bool has_range = false;
    uint16_t status = 0;
    uint32_t tx_seq = 0;
    uint64_t length = 0;  // message body bytes on the wire (chunk framing included, as libhtp)
    int64_t range_start = -1, range_end = -1, range_size = -1;
    uint16_t used = 0;
    Field status_text, content_type, location, content_range;
    bool has_ntlm = false;
    NtlmsspMessage ntlm;
    char arena[kRespArena];
  };

  // Parse state of one direction.
  struct Side {
    State state = State::kStartLine;
    uint16_t line_off = 0;  // this side's line buffer in lines_
    uint16_t line_cap = 0;
    uint16_t line_len = 0;
    uint32_t line_total = 0;  // bytes of the current line, kept or not
    bool hold = false;        // a header line waits for the next byte (obs-fold check)
    bool skip_ws = false;     // skipping the leading whitespace of a folded line
    bool resync = false;      // dropping lines until one looks like a start line
    bool line_cut = false;    // bytes of the current line did not fit and were dropped
    bool long_noted = false;  // *_FIELD_TOO_LONG raised for the current line
    bool chunked = false;
    bool has_cl = false;
    uint64_t cl = 0;
    uint64_t remaining = 0;
    uint32_t header_count = 0;
    uint64_t seen = 0;  // anomalies raised for the current message (one of each per message)
    uint8_t anomalies = 0;
  };

  enum Anomaly : uint8_t;

  // One direction's message as the signature engine sees it (docs/rules.md "App-layer
  // buffers"): `buffers` point into the regions below, and the message is inspected once, when
  // it ends or its body window is full.
  struct DetectMsg {
    rules::Buffers buffers;
    uint16_t raw_len = 0, hdr_len = 0, names_len = 0, norm_len = 0;
    uint16_t headers_at = 0;  // raw offset of the first header line (after the start line)
    uint16_t body_len = 0;
    bool active = false;     // a message is being assembled
    bool has_body = false;   // its headers ended and a body follows
    bool inspected = false;  // given to the engine already
    uint32_t tx_seq = 0;     // a request: its transaction's seq (a response's context must match)
  };

  Side& side(Direction dir) noexcept { return sides_[static_cast<int>(dir)]; }
  uint8_t* line(Side& s) noexcept { return lines_ + s.line_off; }

  void Feed(Direction dir, std::span<const uint8_t> data, EventSink& sink) noexcept;
  bool TakeLine(Direction dir, std::span<const uint8_t> data, size_t* pos, EventSink& sink,
                uint64_t* counted) noexcept;
  void ClearLine(Side& s) noexcept;
  void Raise(Direction dir, Anomaly a, EventSink& sink) noexcept;

  void OnRequestLine(std::span<const uint8_t> ln, EventSink& sink) noexcept;
  void OnStatusLine(std::span<const uint8_t> ln, EventSink& sink) noexcept;
  void OnHeader(Direction dir, std::span<const uint8_t> ln, EventSink& sink) noexcept;
  void OnRequestHeader(std::span<const uint8_t> name, std::span<const uint8_t> value,
                       EventSink& sink) noexcept;
  void OnResponseHeader(std::span<const uint8_t> name, std::span<const uint8_t> value,
                        EventSink& sink) noexcept;
  void OnFraming(Direction dir, std::span<const uint8_t> name, std::span<const uint8_t> value,
                 EventSink& sink) noexcept;
  void OnAuth(Direction dir, std::span<const uint8_t> value) noexcept;
  void OnHeadersEnd(Direction dir, EventSink& sink) noexcept;
  void OnChunkSize(Direction dir, std::span<const uint8_t> ln, EventSink& sink) noexcept;
  void MessageDone(Direction dir, EventSink& sink) noexcept;
  void ResetFraming(Side& s) noexcept;

  Tx* NewTx(EventSink& sink) noexcept;
  Tx* RequestTx() noexcept;   // the transaction whose request is being parsed, or nullptr
  Tx* HeadTx() noexcept;      // the oldest pending transaction, or nullptr
  Tx* ResponseTx() noexcept;  // the transaction the current response belongs to, or nullptr
  void BeginResponse(EventSink& sink) noexcept;
  void ResponseDone(EventSink& sink) noexcept;
  void PopHead() noexcept;
  void Emit(const Tx* tx, const Response* r, EventSink& sink) noexcept;
  void EnterTunnel() noexcept;

  // Signature-engine buffers (no-ops unless the sink is inspecting).
  void DetectStartLine(Direction dir, std::span<const uint8_t> line, std::span<const uint8_t> first,
                       std::span<const uint8_t> second, std::span<const uint8_t> third,
                       EventSink& sink) noexcept;
  void DetectHeader(Direction dir, std::span<const uint8_t> line, std::span<const uint8_t> name,
                    std::span<const uint8_t> value) noexcept;
  void DetectHeadersEnd(Direction dir, bool body, EventSink& sink) noexcept;
  void DetectBody(Direction dir, std::span<const uint8_t> data, EventSink& sink) noexcept;
  void DetectInspect(Direction dir, EventSink& sink) noexcept;

  Side sides_[2];
  Tx pending_[kMaxPending];
  uint8_t head_ = 0;   // index of the oldest pending transaction
  uint8_t count_ = 0;  // pending transactions
  uint32_t next_seq_ = 1;
  uint32_t req_seq_ = 0;         // transaction of the request being parsed (0: none)
  uint32_t skip_responses_ = 0;  // responses still to come for transactions already emitted
  bool ended_ = false;
  // NTLMSSP from the request headers of transaction req_ntlm_seq_ (0: none). One slot: NTLM
  // authentication is a lock-step handshake, so two pending requests carrying it do not happen in
  // practice (the second one is then ignored).
  uint32_t req_ntlm_seq_ = 0;
  NtlmsspMessage req_ntlm_;
  Response resp_;
  HttpInspector* inspector_ = nullptr;
  uint8_t lines_[kRequestLineMax + kResponseLineMax];
  DetectMsg det_[2];  // by Direction
  uint8_t det_raw_[2][kDetectHead];
  uint8_t det_hdr_[2][kDetectHead];
  uint8_t det_names_[2][kDetectNames];
  uint8_t det_norm_[kDetectNorm];  // the request's normalised URI and host
  uint8_t det_body_[2][kDetectBody];
};

}  // namespace vigil::proto
