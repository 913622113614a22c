// SMB1 and SMB2/3 over NBSS (TCP 445 and 139): the `smb` application parser.
//
// One EVE `smb` event per transaction, at Suricata 8's granularity: a request and its response
// (negotiate, session setup with NTLMSSP/Kerberos, tree connect, create, close, find, ioctl,
// set-info rename/delete, logoff, ...), one event per file and direction for reads/writes of a
// file (emitted when the file is closed), and one per DCE-RPC call carried on a named pipe
// (write/read, FSCTL_PIPE_TRANSCEIVE, SMB1 TransactNmPipe) with the call in `smb.dcerpc`.
// SMB2 READ/WRITE/GET_INFO and SMB1 READ_ANDX/WRITE_ANDX/TRANS/TRANS2 get no event of their own,
// as in Suricata. SMB3 encrypted (transform header) and compressed messages are not decoded; the
// first one of a session is reported by an `smb` event with "encrypted"/"compressed": true.
//
// Thread: one owner (the worker that owns the flow). Nothing blocks, allocates or throws.
// Limits (all fixed): per direction the first kSmbHeadBytes of an NBSS message are buffered (the
// headers, names and security blobs); READ/WRITE data beyond them is routed or skipped
// incrementally, never buffered. At most kSmbMaxPending requests wait for their responses (the
// oldest is reported without a response when more arrive), kSmbMaxTrees tree ids and
// kSmbMaxFiles file ids are remembered (least recently used evicted), names are cut at
// kSmbNameBytes, and kSmbMaxPipes named pipes carry a DcerpcConnection at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "dataplane/proto/bytes.h"
#include "dataplane/proto/dcerpc.h"
#include "dataplane/proto/event.h"
#include "dataplane/proto/json_writer.h"
#include "dataplane/proto/krb5.h"
#include "dataplane/proto/ntlmssp.h"

namespace vigil::proto {

inline constexpr size_t kSmbHeadBytes = 4096;  // buffered head of one NBSS message, per direction
inline constexpr int kSmbMaxPending = 32;      // requests waiting for their response
inline constexpr int kSmbMaxTrees = 16;
inline constexpr int kSmbMaxFiles = 64;
inline constexpr size_t kSmbNameBytes = 256;   // file and rename target names (UTF-8)
inline constexpr size_t kSmbShareBytes = 128;  // \\server\share
inline constexpr int kSmbMaxPipes = 4;         // named pipes with a live DcerpcConnection
inline constexpr int kSmbNameSlots = 8;        // pending creates/tree connects/renames with a name
inline constexpr int kSmbAuthSlots = 2;        // pending session setups with auth details
inline constexpr int kSmbNegotiateSlots = 2;   // pending negotiates with their dialect lists
inline constexpr int kSmbMaxDialects = 12;     // client dialects kept per negotiate
inline constexpr int kSmbMaxAnomalies = 32;    // anomaly events per flow; later ones are counted

// Names from smb_names.inc (Zeek consts + MS-ERREF), Suricata's spellings; nullptr when unknown.
const char* SmbNtStatusName(uint32_t status) noexcept;       // "STATUS_ACCESS_DENIED"
const char* Smb1CommandName(uint8_t command) noexcept;       // "SMB1_COMMAND_NT_CREATE_ANDX"
const char* Smb2CommandName(uint16_t command) noexcept;      // "SMB2_COMMAND_CREATE"
const char* Smb2DialectName(uint16_t dialect) noexcept;      // "3.00"
const char* SmbFsctlName(uint32_t ctl_code) noexcept;        // "FSCTL_PIPE_TRANSCEIVE"
const char* Smb1TransSubcommandName(uint16_t sub) noexcept;  // "TRANSACT_NMPIPE"

// A file id as Suricata prints it: SMB2 16-byte FileId in its (unusual) GUID byte order
// "00000065-0030-0000-0025-0020ffffffff", SMB1 2-byte FID as 4 hex digits. Returns the length
// written (36 or 4; 0 for other lengths); `out` gets a NUL after it.
size_t FormatSmbFuid(std::span<const uint8_t> fuid, char out[37]) noexcept;

// The seam for file extraction (implemented by stream/file_tap.h): a reader of file contents gets
// the bytes of non-pipe reads (to_client) and writes (to_server) as they stream by, without the
// parser buffering them.
struct SmbFileRef {
  const uint8_t* fuid;  // 16 bytes (SMB2) or 2 (SMB1)
  uint8_t fuid_len;
  uint64_t session_id;
  uint32_t tree_id;
  Direction dir;          // kToClient: read, kToServer: write
  std::string_view name;  // as in the events ("" when the open was not seen)
  std::string_view share;
  // The transfer (Suricata's file transaction) and its SMB context, for the `fileinfo` event.
  uint64_t tx_id;      // EVE smb.id of this transfer's `smb` event
  uint64_t file_size;  // EndOfFile of the CREATE response (size_known)
  bool size_known;
  bool closed;  // OnFileClose: the client closed the file (else forgotten or the flow ended)
  bool status_set;
  uint8_t version;  // 1 or 2
  uint16_t command;
  uint16_t dialect;               // SMB2 dialect, 0 when none
  std::string_view smb1_dialect;  // SMB1 dialect name, "" when none
  uint32_t status;
};
class SmbFileObserver {
 public:
  // `data` are the bytes at `offset` of the file; one READ/WRITE may come in several pieces.
  virtual void OnFileData(const SmbFileRef& file, uint64_t offset,
                          std::span<const uint8_t> data) noexcept = 0;
  // `n` bytes at `offset` were lost to a capture gap.
  virtual void OnFileGap(const SmbFileRef& file, uint64_t offset, uint32_t n) noexcept {
    (void)file, (void)offset, (void)n;
  }
  // The file was closed, forgotten (table full) or the flow ended.
  virtual void OnFileClose(const SmbFileRef& file) noexcept = 0;

 protected:
  ~SmbFileObserver() = default;
};

class SmbParser final : public AppParser {
 public:
  // NBSS session message (type 0) whose payload starts with \xFFSMB, \xFESMB, \xFDSMB (SMB3
  // transform: encrypted) or \xFCSMB (compressed); an NBSS session request (0x81, port 139) with
  // an encoded NetBIOS name.
  static ProbeResult Probe(Direction dir, std::span<const uint8_t> data) noexcept;

  SmbParser() noexcept;
  void OnData(Direction dir, std::span<const uint8_t> data, EventSink& sink) noexcept override;
  void OnGap(Direction dir, uint32_t missing_bytes, EventSink& sink) noexcept override;
  void OnEnd(EventSink& sink) noexcept override;

  // Optional; the observer must outlive the parser or be reset to nullptr.
  void set_file_observer(SmbFileObserver* obs) noexcept { file_obs_ = obs; }
  // Anomalies beyond kSmbMaxAnomalies that were not reported.
  uint32_t anomalies_suppressed() const noexcept { return anomalies_suppressed_; }

 private:
  enum class TxKind : uint8_t {
    kGeneric,
    kNegotiate,
    kSessionSetup,
    kTreeConnect,
    kCreate,
    kIoctl,
    kRename,
    kDisposition,
    kRead,   // bookkeeping only (offset/fid of a read), never reported
    kTrans,  // bookkeeping only (SMB1 TRANS to a pipe: its fid), never reported
  };
  struct Tx {
    bool used;
    bool silent;       // bookkeeping entry: no event
    bool no_response;  // reported as soon as it is seen (SMB1 LOCKING_ANDX, NT_CANCEL...)
    bool status_set, dos_error;
    uint8_t version;  // 1 or 2
    TxKind kind;
    uint8_t err_class;
    uint8_t fuid_len;
    uint8_t share_type;  // SMB2 tree connect response
    bool is_pipe, directory, delete_on_close, related;
    int8_t name_slot, aux_slot;
    uint16_t command;
    uint32_t tree_id;
    uint32_t status;
    uint32_t disposition, ctl_code, info_level;
    uint64_t created, accessed, modified, changed;  // CREATE response FILETIMEs (100 ns, 1601)
    uint64_t id;                                    // EVE "id": per-flow transaction counter
    uint64_t key;                                   // SMB2 MessageId; SMB1 MID | PID << 16
    uint64_t session_id;
    uint64_t size, offset;
    uint32_t age;
    uint8_t fuid[16];
    FixedString<12> service_req, service_resp;  // SMB1 tree connect
    FixedString<16> native_fs;                  // SMB1 tree connect response NativeFileSystem
  };
  struct AuthInfo {
    bool used, has_ntlmssp, has_krb5, has_req_host, has_resp_host;
    // `ntlmssp` holds the request's AUTHENTICATE (has_ntlmssp) or else the response's CHALLENGE
    // (has_challenge): a session setup round carries one or the other, never both.
    bool has_challenge;
    NtlmsspMessage ntlmssp;
    Krb5Message krb5;
    FixedString<64> req_os, req_lm, resp_os, resp_lm;
  };
  struct NegotiateInfo {
    bool used, has_client_guid, has_server_guid;
    uint8_t count;
    uint8_t client_guid[16], server_guid[16];
    FixedString<24> dialects[kSmbMaxDialects];
  };
  struct Tree {
    bool used, is_pipe;
    uint8_t share_type;
    uint32_t tree_id;
    uint64_t session_id;
    uint32_t age;
    FixedString<kSmbShareBytes> share;
  };
  // A read or write stream of one file in one direction: Suricata's file transaction.
  struct Xfer {
    bool active, status_set;
    uint8_t version;
    uint16_t command;
    uint32_t tree_id, status;
    uint64_t id, session_id, bytes;
  };
  struct File {
    bool used, is_pipe, pipe_checked, not_dcerpc;
    uint8_t fuid_len;
    int8_t pipe;  // index into pipes_, -1 none
    uint32_t tree_id;
    uint64_t session_id;
    uint32_t age;
    uint8_t fuid[16];
    Xfer xfer[2];          // [kToServer] writes, [kToClient] reads
    bool size_known;       // end_of_file is from the CREATE response
    uint64_t end_of_file;  // for file extraction (SmbFileRef::file_size)
    FixedString<kSmbNameBytes> name;
  };
  // The SMB context of the data last fed to a pipe, per direction, for the events of the calls
  // that data completes.
  struct PipeCtx {
    bool status_set;
    uint8_t version;
    uint16_t command;
    uint32_t tree_id, status;
    uint64_t session_id;
  };
  struct Pipe {
    bool used;
    int8_t file;  // owning File index
    PipeCtx ctx[2];
    DcerpcConnection conn;
  };
  // Where the rest of a message's data goes once the head is processed.
  enum class Route : uint8_t { kNone, kPipe, kFile };
  struct Stream {
    enum class State : uint8_t { kHeader, kHead, kBody, kResync };
    State state;
    uint8_t hdr_len, window_len;
    bool smb_message;  // NBSS type 0 (else skipped whole)
    Route route;
    int8_t route_file;
    uint8_t hdr[4];
    uint8_t window[8];
    uint32_t msg_len, msg_got, head_len;
    uint32_t route_begin, route_end;  // message offsets of the routed data
    uint64_t route_offset;            // file offset of route_begin
    uint8_t head[kSmbHeadBytes];
  };
  struct PipeObserver;
  friend struct PipeObserver;

  // Framing (smb.cc).
  void Feed(Direction dir, std::span<const uint8_t> data) noexcept;
  void StartMessage(Stream& s, Direction dir) noexcept;
  void ProcessHead(Stream& s, Direction dir) noexcept;
  void RouteData(Direction dir, Stream& s, uint32_t msg_offset,
                 std::span<const uint8_t> data) noexcept;
  void ResyncByte(Stream& s, Direction dir, uint8_t b) noexcept;
  void EnterResync(Stream& s) noexcept;
  // Data of a READ response / WRITE request (or pipe transact) at message offset `begin`.
  void SetRoute(Direction dir, int file, uint32_t begin, uint32_t len, uint64_t file_offset,
                uint32_t msg_base) noexcept;

  // SMB2 (smb2.cc).
  void Smb2Message(Direction dir, std::span<const uint8_t> head, uint32_t msg_len) noexcept;
  void Smb2Request(std::span<const uint8_t> rec, uint32_t rec_len, uint32_t msg_base,
                   uint64_t* chain_create_key) noexcept;
  void Smb2Response(std::span<const uint8_t> rec, uint32_t rec_len, uint32_t msg_base) noexcept;
  void Smb2Transform(Direction dir, std::span<const uint8_t> head, bool compressed) noexcept;

  // SMB1 (smb1.cc).
  void Smb1Message(Direction dir, std::span<const uint8_t> head, uint32_t msg_len) noexcept;
  void Smb1Request(std::span<const uint8_t> msg, uint32_t msg_len) noexcept;
  void Smb1Response(std::span<const uint8_t> msg, uint32_t msg_len) noexcept;

  // Transactions (smb.cc).
  Tx* NewTx(uint8_t version, uint16_t command, TxKind kind, uint64_t key) noexcept;
  Tx* FindTx(uint8_t version, uint64_t key, uint16_t command) noexcept;
  Tx* FindTxAnyVersion(uint8_t version, TxKind kind) noexcept;
  void FinishTx(Tx& tx, Direction dir) noexcept;  // emits (unless silent) and frees
  void FreeTx(Tx& tx) noexcept;
  int TakeNameSlot() noexcept;
  int TakeAuthSlot() noexcept;
  int TakeNegotiateSlot() noexcept;
  FixedString<kSmbNameBytes>* TxName(Tx& tx) noexcept;
  // The share of a file's tree ("" once the tree is gone or when it was never seen).
  std::string_view FileShare(const File& f) noexcept;
  SmbFileRef FileRef(const File& f, Direction dir) noexcept;

  // Trees and files (smb.cc).
  Tree* FindTree(uint64_t session_id, uint32_t tree_id) noexcept;
  Tree* AddTree(uint64_t session_id, uint32_t tree_id) noexcept;
  void RemoveTree(uint64_t session_id, uint32_t tree_id) noexcept;
  int FindFile(std::span<const uint8_t> fuid, uint64_t session_id) noexcept;
  int AddFile(std::span<const uint8_t> fuid, uint64_t session_id, uint32_t tree_id) noexcept;
  void CloseFile(int index, Direction dir, bool forget) noexcept;
  void FinishXfer(File& f, int xdir, Direction dir) noexcept;
  void FileData(int index, Direction dir, uint8_t version, uint16_t command, uint64_t session_id,
                uint32_t tree_id) noexcept;
  // Pipes.
  bool PipeWants(int file, std::span<const uint8_t> first_data) noexcept;
  void PipeFeed(int file, Direction dir, const PipeCtx& ctx,
                std::span<const uint8_t> data) noexcept;
  void PipeGap(int file, Direction dir, uint32_t n) noexcept;
  void ReleasePipe(int file) noexcept;
  void OnPipeCall(int pipe, const DcerpcCall& call) noexcept;

  // Events (smb.cc).
  void WriteCommon(JsonWriter& w, uint64_t id, uint8_t version, uint16_t command, bool status_set,
                   uint32_t status, bool dos_error, uint8_t err_class, uint64_t session_id,
                   uint32_t tree_id) noexcept;
  void AppendPrefix(TextBuilder& t, uint8_t version, uint16_t command, bool status_set,
                    uint32_t status, bool dos_error, uint8_t err_class) noexcept;
  void AppendTreePath(TextBuilder& t, uint64_t session_id, uint32_t tree_id) noexcept;
  void Anomaly(Direction dir, const char* event) noexcept;
  void EmitEncrypted(Direction dir, uint64_t session_id, bool compressed) noexcept;
  void EmitTx(const Tx& tx, Direction dir) noexcept;
  // Session setup security blob (SPNEGO, raw NTLMSSP or Kerberos) into an auth slot.
  void ParseSecurityBlob(std::span<const uint8_t> blob, AuthInfo* a) noexcept;
  // Session setup response blob: keeps an NTLMSSP CHALLENGE (the server's names).
  void ParseResponseBlob(std::span<const uint8_t> blob, AuthInfo* a) noexcept;

  // A parser is set up for every SMB flow: the tables are UninitArrays, of which the constructor
  // writes only the `used` flags (about 120 of the parser's 1,150 cache lines; default member
  // initialisers would touch 320). Taking an entry initialises it in full (NewTx, TakeNameSlot,
  // TakeAuthSlot, TakeNegotiateSlot, AddTree, AddFile, PipeWants: `conn` of a Pipe is never
  // constructed, its Reset() is what sets it up).
  Stream streams_[2];
  UninitArray<Tx, kSmbMaxPending> txs_;
  UninitArray<FixedString<kSmbNameBytes>, kSmbNameSlots> names_;
  bool name_used_[kSmbNameSlots];
  UninitArray<AuthInfo, kSmbAuthSlots> auth_;
  UninitArray<NegotiateInfo, kSmbNegotiateSlots> negotiate_;
  UninitArray<Tree, kSmbMaxTrees> trees_;
  UninitArray<File, kSmbMaxFiles> files_;
  UninitArray<Pipe, kSmbMaxPipes> pipes_;

  uint64_t next_tx_id_ = 1;
  uint32_t clock_ = 0;            // age stamps for LRU choices
  uint16_t dialect_ = 0;          // SMB2 dialect of the negotiate response; 0 none
  FixedString<32> smb1_dialect_;  // SMB1 dialect chosen by the server
  uint32_t max_read_size_ = 0, max_write_size_ = 0;
  uint64_t encrypted_session_ = ~0ull;  // last session reported as encrypted
  bool compressed_reported_ = false;
  uint32_t anomalies_ = 0, anomalies_suppressed_ = 0;
  EventSink* sink_ = nullptr;  // valid during OnData/OnGap/OnEnd
  SmbFileObserver* file_obs_ = nullptr;
  Direction cur_dir_ = Direction::kToServer;  // direction of the message being processed
};

// Helpers shared by smb.cc, smb1.cc and smb2.cc (not for other users).
namespace smb_detail {
// The UTF-16LE string at rec[off, off+len) as UTF-8, cut to what `rec` holds (flagged).
void Utf16Field(std::span<const uint8_t> rec, size_t off, size_t len,
                FixedString<kSmbNameBytes>* out, bool strip_leading_nul) noexcept;
// A NUL-terminated SMB1 string at data[off] (UTF-16LE, 2-byte aligned relative to the SMB
// header when `unicode`; `base` is data's offset from that header). Writes UTF-8 into out and
// returns the offset after the terminator (data.size() when unterminated).
size_t SmbString(std::span<const uint8_t> data, size_t off, bool unicode, size_t base, char* out,
                 size_t cap, size_t* written) noexcept;
// FILETIME (100 ns since 1601) to Unix seconds, 0 for earlier values (as Suricata).
inline uint32_t FiletimeToUnix(uint64_t ft) noexcept {
  return ft > 116444736000000000ull ? static_cast<uint32_t>(ft / 10000000 - 11644473600ull) : 0;
}
}  // namespace smb_detail

}  // namespace vigil::proto
