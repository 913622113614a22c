// TLS (SSLv3 .. TLS 1.3 over TCP) handshake parser: the record layer, handshake messages
// reassembled across records, ClientHello / ServerHello fields with their JA3, JA3S and JA4
// fingerprints, and the server's leaf certificate (subject, issuer, serial, validity, subject
// alternative names, SHA-1 fingerprint). Emits one Suricata-shaped `tls` event per session.
//
// Thread: one owner (the worker that owns the flow). Never allocates, blocks or throws.
//
// Limits: the first ClientHello is kept whole up to kClientHelloCap bytes (a longer one is parsed
// as far as it goes, without fingerprints, and flagged); of the server's first Certificate message
// the first kServerMessageCap bytes are kept, so the leaf certificate's fields are read from what
// fits (flagged when it is cut) while its SHA-1 fingerprint is computed over all of it as it goes
// by. Later certificates of the chain, client certificates and renegotiations are skipped.
// After a ChangeCipherSpec, application data or a TLS 1.3 ServerHello, a direction's records
// are only counted. SSLv2-format hellos and DTLS are not recognised.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "dataplane/proto/event.h"
#include "dataplane/proto/hash.h"

namespace vigil::proto {

class TlsParser final : public AppParser {
 public:
  static constexpr size_t kClientHelloCap = 4096;
  static constexpr size_t kServerMessageCap = 8192;

  // A TLS handshake record carrying a ClientHello (to the server) or a ServerHello (to the
  // client, for flows picked up from the server's side).
  static ProbeResult Probe(Direction dir, std::span<const uint8_t> first_bytes) noexcept;

  // User-provided (not `= default`): the parser pools construct with `new (memory) T()`, which
  // for an implicit constructor would first zero the whole 12.5 KiB object. Only the members
  // with initialisers are set; the two buffers are read only below their sides' buf_len.
  TlsParser() noexcept {}
  void OnData(Direction dir, std::span<const uint8_t> data, EventSink& sink) noexcept override;
  void OnGap(Direction dir, uint32_t missing_bytes, EventSink& sink) noexcept override;
  void OnEnd(EventSink& sink) noexcept override;

  // Records seen after the direction switched to encrypted traffic (flow statistics).
  uint32_t encrypted_records(Direction dir) const noexcept { return side(dir).encrypted_records; }
  // True once the session's `tls` event has been emitted.
  bool logged() const noexcept { return logged_; }

 private:
  // Record layer and handshake reassembly state of one direction.
  struct Side {
    uint8_t rec_hdr[5] = {};
    uint8_t rec_hdr_len = 0;
    bool in_record = false;
    uint8_t rec_type = 0;
    uint32_t rec_left = 0;  // body bytes of the current record still to come

    uint8_t hs_hdr[4] = {};
    uint8_t hs_hdr_len = 0;
    bool in_hs_body = false;
    uint8_t hs_type = 0;
    uint32_t hs_len = 0;
    uint32_t hs_got = 0;   // body bytes of the current handshake message seen
    bool hs_keep = false;  // the current message is being kept in this side's buffer
    bool hs_cut = false;   // ... and did not fit
    uint32_t buf_len = 0;  // bytes kept in this side's buffer

    bool encrypted = false;  // handshake parsing is over: records are only counted
    bool stopped = false;    // malformed input or a gap: the rest of the direction is ignored
    uint32_t encrypted_records = 0;
  };

  Side& side(Direction d) noexcept { return d == Direction::kToServer ? client_ : server_; }
  const Side& side(Direction d) const noexcept {
    return d == Direction::kToServer ? client_ : server_;
  }
  std::span<uint8_t> buffer(Direction d) noexcept {
    return d == Direction::kToServer ? std::span<uint8_t>(client_buf_)
                                     : std::span<uint8_t>(server_buf_);
  }

  void Stop(Direction dir, const char* anomaly, EventSink& sink) noexcept;
  bool StartRecord(Direction dir, EventSink& sink) noexcept;
  void RecordBytes(Direction dir, std::span<const uint8_t> data, EventSink& sink) noexcept;
  void HandshakeBytes(Direction dir, std::span<const uint8_t> data, EventSink& sink) noexcept;
  bool StartMessage(Direction dir, EventSink& sink) noexcept;
  void MessageBody(Direction dir, std::span<const uint8_t> data) noexcept;
  void EndMessage(Direction dir, EventSink& sink) noexcept;
  void OnClientHello(EventSink& sink) noexcept;
  void OnServerHello(EventSink& sink) noexcept;
  void Emit(EventSink& sink) noexcept;

  Side client_;
  Side server_;

  // First ClientHello (body of the handshake message).
  bool have_client_hello_ = false;
  bool client_hello_cut_ = false;
  uint8_t client_session_id_len_ = 0;
  uint8_t client_session_id_[32] = {};

  // ServerHello.
  bool have_server_hello_ = false;
  bool session_resumed_ = false;
  uint16_t server_version_ = 0;  // negotiated: supported_versions, else the legacy field
  uint16_t server_alpn_len_ = 0;
  char server_alpn_[64] = {};
  uint16_t ja3s_len_ = 0;
  char ja3s_[160] = {};
  uint8_t ja3s_md5_[Md5::kDigestSize] = {};

  // Server's first Certificate message: kept in server_buf_ from its first body byte.
  bool have_certificate_ = false;  // the message is complete, or cut short by the end of data
  bool cert_in_buffer_ = false;
  uint32_t leaf_len_ = 0;  // DER length of the leaf certificate (0: not known yet)
  uint32_t leaf_hashed_ = 0;
  Sha1 leaf_sha1_;

  bool logged_ = false;

  uint8_t client_buf_[kClientHelloCap];
  uint8_t server_buf_[kServerMessageCap];
};

// Suricata's spelling of a TLS version ("TLS 1.2", "TLSv1", "SSLv3", "UNDETERMINED", "0x7f1c").
// `out` must hold 20 bytes; returns the length written.
size_t TlsVersionName(uint16_t version, char out[20]) noexcept;

}  // namespace vigil::proto
