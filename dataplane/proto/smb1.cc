// SMB1 (MS-CIFS 2.2, MS-SMB 2.2) message decoding for SmbParser: AndX chains, negotiate,
// session setup, tree connect, NT create, close, read/write AndX, transactions on named pipes.
#include <algorithm>
#include <cstring>

#include "dataplane/proto/smb.h"

namespace vigil::proto {

namespace {

using smb_detail::SmbString;
using smb_detail::Utf16Field;

constexpr uint32_t kHeader = 32;
constexpr uint16_t kFlags2Unicode = 0x8000;
constexpr uint16_t kFlags2NtStatus = 0x4000;
constexpr uint32_t kStatusSuccess = 0;
constexpr uint32_t kStatusBufferOverflow = 0x80000005;

enum : uint8_t {
  kClose = 0x04,
  kWrite = 0x0B,
  kLockingAndx = 0x24,
  kTrans = 0x25,
  kReadAndx = 0x2E,
  kWriteAndx = 0x2F,
  kTrans2 = 0x32,
  kTrans2Secondary = 0x33,
  kTreeDisconnect = 0x71,
  kNegotiate = 0x72,
  kSessionSetupAndx = 0x73,
  kLogoffAndx = 0x74,
  kTreeConnectAndx = 0x75,
  kNtCreateAndx = 0xA2,
  kNtCancel = 0xA4,
  kNoCommand = 0xFF,
};

bool IsAndx(uint8_t c) noexcept {
  switch (c) {
    case kLockingAndx:
    case 0x2D:  // OPEN_ANDX
    case kReadAndx:
    case kWriteAndx:
    case kSessionSetupAndx:
    case kLogoffAndx:
    case kTreeConnectAndx:
    case kNtCreateAndx:
      return true;
    default:
      return false;
  }
}

// One command of an SMB1 message: its words and bytes, with offsets from the SMB header.
struct Cmd {
  uint8_t command;
  uint8_t wc;
  std::span<const uint8_t> words;
  std::span<const uint8_t> bytes;  // cut to what the head holds
  uint32_t bytes_off;              // offset of `bytes` from the SMB header
  bool ok;                         // the word block and byte count are present
};

Cmd ParseCmd(std::span<const uint8_t> msg, uint8_t command, uint32_t off) noexcept {
  Cmd c{command, 0, {}, {}, 0, false};
  if (off >= msg.size()) return c;
  c.wc = msg[off];
  const size_t wend = off + 1 + 2 * size_t{c.wc};
  if (wend + 2 > msg.size()) return c;
  c.words = msg.subspan(off + 1, 2 * size_t{c.wc});
  const uint16_t bc = LoadU16le(msg.data() + wend);
  c.bytes_off = static_cast<uint32_t>(wend + 2);
  const size_t avail = msg.size() - c.bytes_off;
  c.bytes = msg.subspan(c.bytes_off, bc < avail ? bc : avail);
  c.ok = true;
  return c;
}

uint16_t W16(const Cmd& c, size_t o) noexcept {
  return o + 2 <= c.words.size() ? LoadU16le(c.words.data() + o) : 0;
}
uint32_t W32(const Cmd& c, size_t o) noexcept {
  return o + 4 <= c.words.size() ? LoadU32le(c.words.data() + o) : 0;
}
uint64_t W64(const Cmd& c, size_t o) noexcept {
  return o + 8 <= c.words.size() ? uint64_t{LoadU32le(c.words.data() + o)} |
                                       uint64_t{LoadU32le(c.words.data() + o + 4)} << 32
                                 : 0;
}

template <size_t N>
void TakeString(std::span<const uint8_t> data, size_t* off, bool unicode, size_t base,
                FixedString<N>* out) noexcept {
  char buf[N];
  size_t n = 0;
  *off = SmbString(data, *off, unicode, base, buf, N, &n);
  out->Assign(std::string_view(buf, n));
}

}  // namespace

void SmbParser::Smb1Message(Direction dir, std::span<const uint8_t> head,
                            uint32_t msg_len) noexcept {
  if (head.size() < kHeader + 1) {
    Anomaly(dir, "malformed_data");
    return;
  }
  const bool reply = (head[9] & 0x80) != 0;
  if (dir == Direction::kToServer) {
    if (reply) {
      Anomaly(dir, "response_to_server");
    } else {
      Smb1Request(head, msg_len);
    }
  } else if (!reply) {
    Anomaly(dir, "request_to_client");
  } else {
    Smb1Response(head, msg_len);
  }
}

void SmbParser::Smb1Request(std::span<const uint8_t> msg, uint32_t msg_len) noexcept {
  const Direction dir = Direction::kToServer;
  const uint8_t* h = msg.data();
  const uint16_t flags2 = LoadU16le(h + 10);
  const bool unicode = (flags2 & kFlags2Unicode) != 0;
  const uint32_t pid = uint32_t{LoadU16le(h + 12)} << 16 | LoadU16le(h + 26);
  const uint16_t tid = LoadU16le(h + 24);
  const uint16_t uid = LoadU16le(h + 28);
  const uint16_t mid = LoadU16le(h + 30);
  const uint64_t key = uint64_t{mid} | uint64_t{pid} << 16;

  uint8_t command = h[4];
  uint32_t off = kHeader;
  // AndX chains are short in practice; the offsets must grow, which bounds the walk too.
  for (int i = 0; i < 16; ++i) {
    const Cmd c = ParseCmd(msg, command, off);
    if (!c.ok) {
      if (off < msg.size() || msg_len <= kSmbHeadBytes) Anomaly(dir, "malformed_data");
      return;
    }
    auto new_tx = [&](TxKind kind) {
      Tx* tx = NewTx(1, command, kind, key);
      tx->session_id = uid;
      tx->tree_id = tid;
      return tx;
    };
    switch (command) {
      case kNegotiate: {
        Tx* tx = new_tx(TxKind::kNegotiate);
        const int slot = TakeNegotiateSlot();
        if (slot < 0) break;
        tx->aux_slot = static_cast<int8_t>(slot);
        NegotiateInfo& n = negotiate_[slot];
        size_t p = 0;
        bool bad = false;
        while (p < c.bytes.size()) {
          if (c.bytes[p] != 0x02) {  // each dialect is a buffer-format byte then a C string
            bad = true;
            break;
          }
          FixedString<24> d;
          size_t q = p + 1;
          TakeString(c.bytes, &q, false, 0, &d);
          // Every dialect counts for the server's index, even those not kept.
          if (n.count < kSmbMaxDialects) n.dialects[n.count] = d;
          if (n.count < 255) ++n.count;
          p = q;
        }
        if (n.count > kSmbMaxDialects) n.count = kSmbMaxDialects;
        if (bad) Anomaly(dir, "negotiate_malformed_dialects");
        break;
      }
      case kSessionSetupAndx: {
        Tx* tx = new_tx(TxKind::kSessionSetup);
        const int slot = TakeAuthSlot();
        if (slot < 0) break;
        tx->aux_slot = static_cast<int8_t>(slot);
        AuthInfo& a = auth_[slot];
        size_t p = 0;
        if (c.wc == 12) {  // extended security: a security blob
          const uint16_t blen = W16(c, 14);
          ParseSecurityBlob(c.bytes.subspan(0, blen < c.bytes.size() ? blen : c.bytes.size()), &a);
          p = blen;
        } else if (c.wc == 13) {  // NT LM 0.12 without extended security: two passwords
          p = size_t{W16(c, 14)} + W16(c, 16);
          FixedString<64> account, domain;
          TakeString(c.bytes, &p, unicode, c.bytes_off, &account);
          TakeString(c.bytes, &p, unicode, c.bytes_off, &domain);
        } else {
          break;
        }
        if (p < c.bytes.size()) {
          TakeString(c.bytes, &p, unicode, c.bytes_off, &a.req_os);
          TakeString(c.bytes, &p, unicode, c.bytes_off, &a.req_lm);
          a.has_req_host = true;
        }
        break;
      }
      case kTreeConnectAndx: {
        Tx* tx = new_tx(TxKind::kTreeConnect);
        size_t p = W16(c, 6);  // password length
        const int slot = TakeNameSlot();
        FixedString<kSmbNameBytes> path;
        TakeString(c.bytes, &p, unicode, c.bytes_off, &path);
        if (slot >= 0) {
          tx->name_slot = static_cast<int8_t>(slot);
          names_[slot] = path;
        }
        TakeString(c.bytes, &p, false, c.bytes_off, &tx->service_req);
        break;
      }
      case kNtCreateAndx: {
        Tx* tx = new_tx(TxKind::kCreate);
        const uint16_t nlen = W16(c, 5);
        tx->disposition = W32(c, 35);
        const uint32_t options = W32(c, 39);
        tx->directory = (options & 0x1) != 0;
        tx->delete_on_close = (options & 0x1000) != 0;
        const int slot = TakeNameSlot();
        if (slot >= 0) {
          tx->name_slot = static_cast<int8_t>(slot);
          if (unicode) {
            const size_t start = (c.bytes_off & 1) ? 1 : 0;
            Utf16Field(c.bytes, start, nlen, &names_[slot], false);
          } else {
            size_t p = 0;
            TakeString(c.bytes, &p, false, c.bytes_off, &names_[slot]);
          }
        }
        if (const Tree* t = FindTree(uid, tid)) tx->is_pipe = t->is_pipe;
        break;
      }
      case kClose: {
        Tx* tx = new_tx(TxKind::kGeneric);
        if (c.words.size() < 2) break;
        std::memcpy(tx->fuid, c.words.data(), 2);
        tx->fuid_len = 2;
        const int fi = FindFile({tx->fuid, 2}, uid);
        if (fi >= 0) {
          const int slot = TakeNameSlot();
          if (slot >= 0) {
            tx->name_slot = static_cast<int8_t>(slot);
            names_[slot].Assign(files_[fi].name.view());
          }
          CloseFile(fi, dir, true);
        }
        break;
      }
      case kReadAndx: {
        if (c.words.size() < 20) {
          Anomaly(dir, "malformed_data");
          break;
        }
        Tx* tx = NewTx(1, command, TxKind::kRead, key);
        tx->session_id = uid;
        tx->tree_id = tid;
        std::memcpy(tx->fuid, c.words.data() + 4, 2);
        tx->fuid_len = 2;
        tx->offset = W32(c, 6) | (c.wc >= 12 ? uint64_t{W32(c, 20)} << 32 : 0);
        break;
      }
      case kWriteAndx:
      case kWrite: {
        uint32_t doff = 0, dlen = 0;
        uint64_t offset = 0;
        uint8_t fid[2];
        if (command == kWriteAndx) {
          if (c.words.size() < 24) {
            Anomaly(dir, "malformed_data");
            break;
          }
          std::memcpy(fid, c.words.data() + 4, 2);
          offset = W32(c, 6) | (c.wc >= 14 ? uint64_t{W32(c, 24)} << 32 : 0);
          dlen = uint32_t{W16(c, 18)} << 16 | W16(c, 20);
          doff = W16(c, 22);
        } else {
          if (c.words.size() < 8) {
            Anomaly(dir, "malformed_data");
            break;
          }
          std::memcpy(fid, c.words.data(), 2);
          offset = W32(c, 4);
          dlen = W16(c, 2);
          doff = c.bytes_off + 3;  // buffer format byte and data length
        }
        int fi = FindFile({fid, 2}, uid);
        if (fi < 0) fi = AddFile({fid, 2}, uid, tid);
        if (fi < 0) break;
        const std::span<const uint8_t> first =
            doff < msg.size()
                ? msg.subspan(doff, dlen < msg.size() - doff ? dlen : msg.size() - doff)
                : std::span<const uint8_t>();
        if (PipeWants(fi, first)) {
          PipeCtx ctx{};
          ctx.version = 1;
          ctx.command = command;
          ctx.session_id = uid;
          ctx.tree_id = tid;
          pipes_[files_[fi].pipe].ctx[0] = ctx;
        } else if (!files_[fi].is_pipe) {
          FileData(fi, dir, 1, kWriteAndx, uid, tid);
          files_[fi].xfer[0].bytes += dlen;
        }
        SetRoute(dir, fi, doff, dlen, offset, 0);
        break;
      }
      case kTrans: {
        // Named pipe transactions: Setup[0] is the subcommand, Setup[1] the FID.
        const uint8_t setup_count = c.words.size() > 26 ? c.words[26] : 0;
        const uint16_t dcount = W16(c, 22);
        const uint16_t doff = W16(c, 24);
        if (setup_count < 2 || c.words.size() < 32) break;  // e.g. \PIPE\LANMAN: no event
        const uint16_t sub = W16(c, 28);
        uint8_t fid[2];
        std::memcpy(fid, c.words.data() + 30, 2);
        if (sub != 0x26 && sub != 0x37 && sub != 0x36) break;  // transact/write/read nmpipe
        int fi = FindFile({fid, 2}, uid);
        if (fi < 0) fi = AddFile({fid, 2}, uid, tid);
        if (fi < 0) break;
        Tx* tx = NewTx(1, command, TxKind::kTrans, key);
        tx->session_id = uid;
        tx->tree_id = tid;
        std::memcpy(tx->fuid, fid, 2);
        tx->fuid_len = 2;
        const std::span<const uint8_t> first =
            doff < msg.size()
                ? msg.subspan(doff, dcount < msg.size() - doff ? dcount : msg.size() - doff)
                : std::span<const uint8_t>();
        if (PipeWants(fi, first)) {
          PipeCtx ctx{};
          ctx.version = 1;
          ctx.command = command;
          ctx.session_id = uid;
          ctx.tree_id = tid;
          pipes_[files_[fi].pipe].ctx[0] = ctx;
          SetRoute(dir, fi, doff, dcount, 0, 0);
        }
        break;
      }
      case kTrans2: {
        // SET_PATH_INFORMATION (6) / SET_FILE_INFORMATION (8) with the disposition level (1013):
        // a delete. Other TRANS2 subcommands get no event (Suricata's granularity).
        const uint8_t setup_count = c.words.size() > 26 ? c.words[26] : 0;
        if (setup_count < 1 || c.words.size() < 30) break;
        const uint16_t sub = W16(c, 28);
        const uint16_t pcount = W16(c, 18), poff = W16(c, 20);
        const uint16_t dcount = W16(c, 22), doff = W16(c, 24);
        if ((sub != 6 && sub != 8) || uint64_t{poff} + pcount > msg.size() ||
            uint64_t{doff} + dcount > msg.size()) {
          break;
        }
        const std::span<const uint8_t> params = msg.subspan(poff, pcount);
        const std::span<const uint8_t> data = msg.subspan(doff, dcount);
        if (params.size() < 4 || data.empty()) break;
        const uint16_t level = sub == 8 ? LoadU16le(params.data() + 2) : LoadU16le(params.data());
        if (level != 1013) break;
        Tx* tx = new_tx(TxKind::kDisposition);
        tx->delete_on_close = data[0] != 0;
        tx->info_level = sub;
        const int slot = TakeNameSlot();
        if (sub == 8) {
          std::memcpy(tx->fuid, params.data(), 2);
          tx->fuid_len = 2;
          const int fi = FindFile({tx->fuid, 2}, uid);
          if (slot >= 0) {
            tx->name_slot = static_cast<int8_t>(slot);
            names_[slot].Assign(fi >= 0 ? files_[fi].name.view() : std::string_view("<unknown>"));
          }
        } else if (slot >= 0) {
          tx->name_slot = static_cast<int8_t>(slot);
          size_t p = 6;  // InformationLevel(2) Reserved(4) FileName
          TakeString(params, &p, unicode, poff, &names_[slot]);
        }
        break;
      }
      case kTreeDisconnect:
        RemoveTree(uid, tid);
        new_tx(TxKind::kGeneric);
        break;
      case kLockingAndx:
      case kNtCancel:
      case kTrans2Secondary: {
        // No response follows: reported at once.
        Tx* tx = new_tx(TxKind::kGeneric);
        FinishTx(*tx, dir);
        break;
      }
      default:
        if (Smb1CommandName(command) == nullptr) Anomaly(dir, "unknown_command");
        new_tx(TxKind::kGeneric);
        break;
    }
    if (!IsAndx(command) || c.words.size() < 4) return;
    const uint8_t next = c.words[0];
    const uint16_t next_off = W16(c, 2);
    if (next == kNoCommand || next_off <= off || next_off >= msg_len) return;
    command = next;
    off = next_off;
  }
}

void SmbParser::Smb1Response(std::span<const uint8_t> msg, uint32_t msg_len) noexcept {
  const Direction dir = Direction::kToClient;
  const uint8_t* h = msg.data();
  const uint16_t flags2 = LoadU16le(h + 10);
  const bool unicode = (flags2 & kFlags2Unicode) != 0;
  const bool nt_status = (flags2 & kFlags2NtStatus) != 0;
  const uint32_t status = nt_status ? LoadU32le(h + 5) : LoadU16le(h + 7);
  const uint8_t err_class = nt_status ? 0 : h[5];
  const bool success = nt_status ? status == kStatusSuccess : (err_class == 0 && status == 0);
  const uint32_t pid = uint32_t{LoadU16le(h + 12)} << 16 | LoadU16le(h + 26);
  const uint16_t tid = LoadU16le(h + 24);
  const uint16_t uid = LoadU16le(h + 28);
  const uint16_t mid = LoadU16le(h + 30);
  const uint64_t key = uint64_t{mid} | uint64_t{pid} << 16;

  uint8_t command = h[4];
  uint32_t off = kHeader;
  for (int i = 0; i < 16; ++i) {
    const Cmd c = ParseCmd(msg, command, off);
    Tx* tx = FindTx(1, key, command);
    if (tx != nullptr) {
      tx->status_set = true;
      tx->status = status;
      tx->dos_error = !nt_status;
      tx->err_class = err_class;
    }
    switch (command) {
      case kNegotiate: {
        if (tx == nullptr || !c.ok || !success) break;
        const uint16_t idx = W16(c, 0);
        if (tx->aux_slot >= 0) {
          NegotiateInfo& n = negotiate_[tx->aux_slot];
          if (idx < n.count) {
            smb1_dialect_.Assign(n.dialects[idx].view());
          } else {
            Anomaly(dir, "negotiate_malformed_dialects");
          }
          // NT LM 0.12 with extended security: the server GUID opens the byte block.
          if (c.wc == 17 && (W32(c, 19) & 0x80000000u) != 0 && c.bytes.size() >= 16) {
            std::memcpy(n.server_guid, c.bytes.data(), 16);
            n.has_server_guid = true;
          }
        }
        break;
      }
      case kSessionSetupAndx: {
        if (tx == nullptr) break;
        tx->session_id = uid;
        if (!c.ok || tx->aux_slot < 0) break;
        AuthInfo& a = auth_[tx->aux_slot];
        size_t p = c.wc == 4 ? W16(c, 6) : 0;  // skip the security blob
        if (c.wc == 4) ParseResponseBlob(c.bytes.first(std::min(p, c.bytes.size())), &a);
        if ((c.wc == 4 || c.wc == 3) && p < c.bytes.size()) {
          TakeString(c.bytes, &p, unicode, c.bytes_off, &a.resp_os);
          TakeString(c.bytes, &p, unicode, c.bytes_off, &a.resp_lm);
          a.has_resp_host = true;
        }
        break;
      }
      case kTreeConnectAndx: {
        if (tx == nullptr) break;
        tx->tree_id = tid;
        if (!c.ok || !success) break;
        size_t p = 0;
        TakeString(c.bytes, &p, false, c.bytes_off, &tx->service_resp);
        tx->is_pipe = tx->service_resp.view() == "IPC";
        if (p < c.bytes.size()) TakeString(c.bytes, &p, unicode, c.bytes_off, &tx->native_fs);
        Tree* t = AddTree(uid, tid);
        t->is_pipe = tx->is_pipe;
        if (tx->name_slot >= 0) t->share.Assign(names_[tx->name_slot].view());
        break;
      }
      case kNtCreateAndx: {
        if (tx == nullptr || !c.ok || !success || c.words.size() < 63) break;
        std::memcpy(tx->fuid, c.words.data() + 5, 2);
        tx->fuid_len = 2;
        tx->created = W64(c, 11);
        tx->accessed = W64(c, 19);
        tx->modified = W64(c, 27);
        tx->changed = W64(c, 35);
        tx->size = W64(c, 55);
        const int fi = AddFile({tx->fuid, 2}, uid, tx->tree_id);
        if (fi >= 0) {
          if (tx->name_slot >= 0) files_[fi].name.Assign(names_[tx->name_slot].view());
          files_[fi].size_known = true;
          files_[fi].end_of_file = tx->size;
          tx->is_pipe = files_[fi].is_pipe;
        }
        break;
      }
      case kReadAndx: {
        if (tx == nullptr) break;
        const uint8_t fid[2] = {tx->fuid[0], tx->fuid[1]};
        const uint64_t offset = tx->offset;
        const uint32_t rtree = tx->tree_id;
        FreeTx(*tx);
        tx = nullptr;
        if (!success || !c.ok || c.words.size() < 16) break;
        const uint32_t dlen = uint32_t{W16(c, 14)} << 16 | W16(c, 10);
        const uint16_t doff = W16(c, 12);
        int fi = FindFile({fid, 2}, uid);
        if (fi < 0) fi = AddFile({fid, 2}, uid, rtree);
        if (fi < 0) break;
        const std::span<const uint8_t> first =
            doff < msg.size()
                ? msg.subspan(doff, dlen < msg.size() - doff ? dlen : msg.size() - doff)
                : std::span<const uint8_t>();
        if (PipeWants(fi, first)) {
          PipeCtx ctx{};
          ctx.version = 1;
          ctx.command = kReadAndx;
          ctx.session_id = uid;
          ctx.tree_id = rtree;
          ctx.status_set = true;
          ctx.status = status;
          pipes_[files_[fi].pipe].ctx[1] = ctx;
        } else if (!files_[fi].is_pipe) {
          FileData(fi, dir, 1, kReadAndx, uid, rtree);
          files_[fi].xfer[1].bytes += dlen;
        }
        SetRoute(dir, fi, doff, dlen, offset, 0);
        break;
      }
      case kTrans: {
        if (tx == nullptr) break;
        const uint8_t fid[2] = {tx->fuid[0], tx->fuid[1]};
        FreeTx(*tx);
        tx = nullptr;
        if (!nt_status || (status != kStatusSuccess && status != kStatusBufferOverflow) || !c.ok ||
            c.words.size() < 16) {
          break;
        }
        const uint16_t dcount = W16(c, 12);
        const uint16_t doff = W16(c, 14);
        const int fi = FindFile({fid, 2}, uid);
        if (fi < 0 || files_[fi].pipe < 0) break;
        PipeCtx ctx = pipes_[files_[fi].pipe].ctx[0];
        ctx.status_set = true;
        ctx.status = status;
        pipes_[files_[fi].pipe].ctx[1] = ctx;
        SetRoute(dir, fi, doff, dcount, 0, 0);
        break;
      }
      default:
        break;
    }
    if (tx != nullptr) FinishTx(*tx, dir);
    if (!c.ok || !IsAndx(command) || c.words.size() < 4) return;
    const uint8_t next = c.words[0];
    const uint16_t next_off = W16(c, 2);
    if (next == kNoCommand || next_off <= off || next_off >= msg_len) return;
    command = next;
    off = next_off;
  }
}

}  // namespace vigil::proto
