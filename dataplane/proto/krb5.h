// Kerberos V5 (RFC 4120) message decoding and the `krb5` application parser (TCP and UDP port 88).
//
// ParseKrb5 decodes AS-REQ/REP, TGS-REQ/REP, AP-REQ, AP-REP and KRB-ERROR (raw, or inside a GSS-API
// Kerberos token as carried by SPNEGO). Krb5Parser frames the messages of one flow (TCP: 4-byte
// record mark; UDP: one message per datagram), pairs each request with its response and emits
// Suricata 8 EVE `krb5` events, one per AS-REQ, AS-REP, TGS-REQ, TGS-REP and KRB-ERROR (as
// Suricata does; AP-REQ/AP-REP on port 88 give no event).
//
// Thread: one owner per Krb5Parser (a worker); the free functions are pure. Never allocate, never
// throw, never block. Limits: of a TCP record, the first kKrb5PrefixBytes are buffered, plus a
// kKrb5LateWindow window at the first top-level field that did not fit (the req-body after a big
// PA-TGS-REQ, the enc-part after a big ticket), the rest is skipped as it streams by; records over
// kKrb5MaxRecordLen stop the direction. Names are cut to 128 bytes; at most 8 etypes are kept;
// ASN.1 is walked along the fixed schema (no recursion on input, see asn1.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "dataplane/proto/bytes.h"
#include "dataplane/proto/event.h"
#include "dataplane/proto/json_writer.h"

namespace vigil::proto {

inline constexpr int kKrb5MaxEtypes = 8;
inline constexpr int kKrb5MaxNameParts = 8;

struct Krb5Message {
  // 10 AS-REQ, 11 AS-REP, 12 TGS-REQ, 13 TGS-REP, 14 AP-REQ, 15 AP-REP, 30 KRB-ERROR
  uint8_t msg_type = 0;
  // cname: client name (REQ body, REP, KRB-ERROR); sname: server name (REQ body, the ticket of a
  // REP/AP-REQ, KRB-ERROR); both with name-string components joined by "/". realm: REQ body
  // realm, REP crealm, the ticket realm of an AP-REQ, KRB-ERROR crealm (empty when absent).
  FixedString<128> cname, sname, realm;
  int32_t etypes[kKrb5MaxEtypes] = {};
  uint8_t etype_count = 0;    // requested (REQ) or used (REP/ticket)
  int32_t ticket_etype = -1;  // enc-part etype of the ticket, -1 when absent
  int32_t error_code = -1;    // KRB-ERROR error-code, -1 when absent
  // Additions beyond the contract.
  int32_t enc_part_etype = -1;  // the message's own enc-part: REP enc-part, AP-REQ authenticator,
                                // AP-REP enc-part; -1 when absent
  FixedString<128> service_realm;  // KRB-ERROR realm (of the server)
  uint8_t sname_parts = 0;         // sname components (at most kKrb5MaxNameParts are indexed)
  uint8_t sname_part_end[kKrb5MaxNameParts] = {};  // end offset of each component in sname
  bool has_padata_enc_ts = false;  // AS-REQ carries PA-ENC-TIMESTAMP (pre-authenticated)
  bool etypes_truncated = false;   // the REQ listed more than kKrb5MaxEtypes etypes
};

// A raw Kerberos message (APPLICATION 10..30), or a GSS-API Kerberos token (0x60, OID
// 1.2.840.113554.1.2.2 or 1.2.840.48018.1.2.2, 2-byte TOK_ID, then the message).
// False when the DER is malformed, pvno is not 5, or msg-type disagrees with the APPLICATION tag.
bool ParseKrb5(std::span<const uint8_t> data, Krb5Message* out) noexcept;

// "KRB_AS_REQ", "KRB_TGS_REP", "KRB_ERROR", ... (nullptr when unknown): Suricata's spelling.
const char* Krb5MsgTypeName(uint8_t msg_type) noexcept;
// "AS-REQ", "TGS-REP", "AP-REQ", "KRB-ERROR", ... for messages (nullptr when unknown).
const char* Krb5MsgTypeShortName(uint8_t msg_type) noexcept;
// Suricata's etype spellings ("aes256-cts-hmac-sha1-96", "rc4-hmac", "des-cbc-md5", ...), nullptr
// when unknown (Suricata then writes "EncryptionType(<n>)", as AppendKrb5Etype does).
const char* Krb5EtypeName(int32_t etype) noexcept;
void AppendKrb5Etype(int32_t etype, TextBuilder& t) noexcept;
// Everything but the AES and Camellia etypes: Suricata's test for weak_encryption.
bool Krb5EtypeIsWeak(int32_t etype) noexcept;
// "KDC_ERR_PREAUTH_REQUIRED", ... or nullptr (Suricata then writes "ErrorCode(<n>)").
const char* Krb5ErrorName(int32_t code) noexcept;

// Suricata's EVE `krb5` members for one message: msg_type, (KRB-ERROR: failed_request =
// `request_type`'s name or "UNKNOWN" when 0, error_code), cname, realm, sname ("<empty>" when
// absent), encryption ("<none>"), weak_encryption, and for REPs ticket_encryption and
// ticket_weak_encryption.
void WriteKrb5Json(const Krb5Message& m, uint8_t request_type, JsonWriter& w) noexcept;
// Suricata's SMB session-setup `kerberos` members for an AP-REQ: realm, snames[].
void WriteKrb5SmbJson(const Krb5Message& m, JsonWriter& w) noexcept;

// "KRB5 TGS-REQ user@CORP.LOCAL for MSSQLSvc/db01 rc4-hmac (weak)": the message name, the client
// (cname@realm, or the realm alone), "for" the server name and, when known, the ticket etype
// (" (weak)" when weak); KRB-ERROR reads "KRB5 KRB-ERROR KDC_ERR_PREAUTH_REQUIRED ...". No
// trailing space. Other carriers (SMB/DCE-RPC/HTTP with a Kerberos token) use it too.
void AppendKrb5Message(const Krb5Message& m, TextBuilder& t) noexcept;

inline constexpr size_t kKrb5PrefixBytes = 2048;
inline constexpr size_t kKrb5LateWindow = 512;
inline constexpr uint32_t kKrb5MaxRecordLen = 1u << 20;

class Krb5Parser final : public AppParser {
 public:
  // TCP (first bytes of a stream): a record mark (top bit clear, length 1..16384) then a
  // Kerberos message; UDP (a datagram): the message at byte 0. The message must start with
  // [APPLICATION 10..30] { SEQUENCE { [0|1] INTEGER 5 ...: Suricata's test.
  static ProbeResult Probe(Direction dir, std::span<const uint8_t> data) noexcept;

  // User-provided (not `= default`): the parser pools construct with `new (memory) T()`, which
  // for an implicit constructor would first zero the whole object. Only the members with
  // initialisers are set; a stream's buf and late are read only below got and late_len.
  Krb5Parser() noexcept {}
  void OnData(Direction dir, std::span<const uint8_t> data, EventSink& sink) noexcept override;
  void OnGap(Direction dir, uint32_t missing_bytes, EventSink& sink) noexcept override;
  void OnDatagram(Direction dir, std::span<const uint8_t> data, EventSink& sink) noexcept override;
  void OnEnd(EventSink& sink) noexcept override;

 private:
  struct Stream {
    uint8_t mark[4] = {};
    uint8_t mark_len = 0;
    bool dead = false;         // framing lost (gap over a record mark, bad record mark)
    bool damaged = false;      // a gap hit bytes of this record that were needed
    bool planned = false;      // the late window's place was worked out
    uint32_t record_len = 0;   // from the record mark
    uint32_t got = 0;          // bytes of the record seen (or lost to gaps) so far
    uint32_t late_offset = 0;  // record offset of the late window; 0 = none
    uint16_t late_len = 0;     // bytes of the late window captured
    uint8_t buf[kKrb5PrefixBytes];
    uint8_t late[kKrb5LateWindow];
  };
  void Consume(Stream& s, std::span<const uint8_t> chunk) noexcept;
  void FinishRecord(Direction dir, Stream& s, EventSink& sink) noexcept;
  void OnMessage(Direction dir, const Krb5Message& m, EventSink& sink) noexcept;
  void Emit(Direction dir, const Krb5Message& m, const Krb5Message* paired,
            EventSink& sink) noexcept;
  void FlushPending(EventSink& sink) noexcept;

  Stream streams_[2];
  uint8_t last_request_ = 0;  // type of the last request seen (for failed_request); 0 = none
  bool has_pending_ = false;  // a request waits for its response
  Direction pending_dir_ = Direction::kToServer;
  Krb5Message pending_;
};

}  // namespace vigil::proto
