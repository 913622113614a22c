// SMB2/3 message decoding (MS-SMB2 2.2) for SmbParser: requests create transactions, responses
// complete them; READ/WRITE/IOCTL data goes to named pipes (DCE-RPC) or the file seam.
#include <cstdio>
#include <cstring>

#include "dataplane/proto/smb.h"
#include "dataplane/proto/spnego.h"

namespace vigil::proto {

namespace {

using smb_detail::Utf16Field;

constexpr uint32_t kSmb2HeaderSize = 64;
constexpr uint32_t kFlagResponse = 0x1;
constexpr uint32_t kFlagAsync = 0x2;
constexpr uint32_t kFlagRelated = 0x4;
constexpr uint32_t kStatusSuccess = 0;
constexpr uint32_t kStatusPending = 0x00000103;
constexpr uint32_t kStatusBufferOverflow = 0x80000005;
constexpr uint32_t kStatusEndOfFile = 0xC0000011;
constexpr uint32_t kStatusMoreProcessingRequired = 0xC0000016;
constexpr uint32_t kFsctlPipeTransceive = 0x0011C017;

enum : uint16_t {
  kNegotiate = 0,
  kSessionSetup = 1,
  kLogoff = 2,
  kTreeConnect = 3,
  kTreeDisconnect = 4,
  kCreate = 5,
  kClose = 6,
  kRead = 8,
  kWrite = 9,
  kIoctl = 11,
  kQueryInfo = 16,
  kSetInfo = 17,
  kMaxCommand = 18,
};

// Bounds-checked little-endian reads of a record (header and body); out of range reads give 0
// and set `bad`.
struct Fields {
  std::span<const uint8_t> rec;
  bool bad = false;
  uint8_t U8(size_t o) noexcept {
    if (o + 1 > rec.size()) return Bad();
    return rec[o];
  }
  uint16_t U16(size_t o) noexcept {
    if (o + 2 > rec.size()) return Bad();
    return LoadU16le(rec.data() + o);
  }
  uint32_t U32(size_t o) noexcept {
    if (o + 4 > rec.size()) return Bad();
    return LoadU32le(rec.data() + o);
  }
  uint64_t U64(size_t o) noexcept {
    if (o + 8 > rec.size()) return Bad();
    return uint64_t{LoadU32le(rec.data() + o)} | uint64_t{LoadU32le(rec.data() + o + 4)} << 32;
  }
  std::span<const uint8_t> Bytes(size_t o, size_t n) noexcept {
    if (o + n > rec.size()) {
      bad = true;
      return {};
    }
    return rec.subspan(o, n);
  }
  // rec[o, o+n) cut to what the record holds.
  std::span<const uint8_t> Avail(size_t o, size_t n) const noexcept {
    if (o >= rec.size()) return {};
    return rec.subspan(o, n < rec.size() - o ? n : rec.size() - o);
  }
  uint8_t Bad() noexcept {
    bad = true;
    return 0;
  }
};

bool AllOnes(std::span<const uint8_t> b) noexcept {
  for (uint8_t x : b) {
    if (x != 0xFF) return false;
  }
  return !b.empty();
}

}  // namespace

void SmbParser::ParseSecurityBlob(std::span<const uint8_t> blob, AuthInfo* a) noexcept {
  if (blob.empty()) return;
  SpnegoToken tok;
  std::span<const uint8_t> inner = blob;
  SpnegoMech mech = SpnegoMech::kUnknown;
  if (ParseSpnego(blob, &tok)) {
    inner = tok.mech_token;
    mech = tok.mech;
  }
  // Only the client's credentials are logged: NTLMSSP AUTHENTICATE, Kerberos AP-REQ.
  if (mech != SpnegoMech::kKrb5 && inner.size() >= 8 &&
      std::memcmp(inner.data(), "NTLMSSP", 8) == 0) {
    NtlmsspMessage m;
    if (ParseNtlmssp(inner, &m)) {
      a->ntlmssp = m;
      a->has_ntlmssp = m.type == NtlmsspType::kAuthenticate;
    }
    return;
  }
  if (mech == SpnegoMech::kKrb5 || mech == SpnegoMech::kUnknown) {
    Krb5Message k;
    if (!inner.empty() && ParseKrb5(inner, &k) && k.msg_type == 14) {
      a->krb5 = k;
      a->has_krb5 = true;
    }
  }
}

void SmbParser::ParseResponseBlob(std::span<const uint8_t> blob, AuthInfo* a) noexcept {
  if (blob.empty() || a->has_ntlmssp) return;
  SpnegoToken tok;
  if (!ParseSpnego(blob, &tok) || tok.mech != SpnegoMech::kNtlmssp) return;
  NtlmsspMessage m;
  if (ParseNtlmssp(tok.mech_token, &m) && m.type == NtlmsspType::kChallenge) {
    a->ntlmssp = m;
    a->has_challenge = true;
  }
}

void SmbParser::Smb2Message(Direction dir, std::span<const uint8_t> head,
                            uint32_t msg_len) noexcept {
  uint32_t off = 0;
  uint64_t chain_create = ~0ull;  // MessageId of the CREATE earlier in this compound request
  // A compound holds a handful of commands; the bound keeps a hostile chain of tiny records cheap.
  for (int i = 0; i < 64; ++i) {
    if (head.size() - off < kSmb2HeaderSize) {
      if (off == 0 || msg_len - off >= kSmb2HeaderSize) {
        // The head buffer holds at least one header; a short record is malformed.
        if (msg_len - off < kSmb2HeaderSize) Anomaly(dir, "malformed_data");
      }
      return;
    }
    const uint8_t* h = head.data() + off;
    if (h[0] != 0xFE || h[1] != 'S' || h[2] != 'M' || h[3] != 'B' || LoadU16le(h + 4) != 64) {
      Anomaly(dir, "malformed_data");
      return;
    }
    uint32_t next = LoadU32le(h + 20);
    if (next != 0 && (next < kSmb2HeaderSize || next > msg_len - off || (next & 7) != 0)) {
      Anomaly(dir, "malformed_data");
      next = 0;
    }
    const uint32_t rec_len = next != 0 ? next : msg_len - off;
    const size_t avail = rec_len < head.size() - off ? rec_len : head.size() - off;
    const std::span<const uint8_t> rec = head.subspan(off, avail);
    const bool response = (LoadU32le(h + 16) & kFlagResponse) != 0;
    if (dir == Direction::kToServer) {
      if (response) {
        Anomaly(dir, "response_to_server");
      } else {
        Smb2Request(rec, rec_len, off, &chain_create);
      }
    } else if (!response) {
      Anomaly(dir, "request_to_client");
    } else {
      Smb2Response(rec, rec_len, off);
    }
    if (next == 0) return;
    off += next;
    if (off >= head.size()) return;  // the rest of the compound was not buffered
  }
}

void SmbParser::Smb2Transform(Direction dir, std::span<const uint8_t> head,
                              bool compressed) noexcept {
  if (compressed) {
    if (!compressed_reported_) {
      compressed_reported_ = true;
      EmitEncrypted(dir, 0, true);
    }
    return;
  }
  if (head.size() < 52) return;
  const uint64_t session =
      uint64_t{LoadU32le(head.data() + 44)} | uint64_t{LoadU32le(head.data() + 48)} << 32;
  if (session != encrypted_session_) {
    encrypted_session_ = session;
    EmitEncrypted(dir, session, false);
  }
}

void SmbParser::Smb2Request(std::span<const uint8_t> rec, uint32_t rec_len, uint32_t msg_base,
                            uint64_t* chain_create) noexcept {
  const Direction dir = Direction::kToServer;
  Fields f{rec};
  const uint16_t cmd = f.U16(12);
  const uint32_t flags = f.U32(16);
  const uint64_t msg_id = f.U64(24);
  const bool async = (flags & kFlagAsync) != 0;
  const uint32_t tree_id = async ? 0 : f.U32(36);
  const uint64_t session = f.U64(40);
  const bool related = (flags & kFlagRelated) != 0;
  constexpr size_t B = kSmb2HeaderSize;  // body offset

  auto new_tx = [&](TxKind kind) {
    Tx* tx = NewTx(2, cmd, kind, msg_id);
    tx->session_id = session;
    tx->tree_id = tree_id;
    tx->related = related;
    return tx;
  };
  // The file a request names: its FileId, or with an all-ones FileId in a compound, the CREATE
  // before it (its open is not answered yet: the name comes from the pending CREATE).
  auto chained_name = [&](std::span<const uint8_t> fid, FixedString<kSmbNameBytes>* out) {
    const int fi = FindFile(fid, session);
    if (fi >= 0) {
      out->Assign(files_[fi].name.view());
      return;
    }
    if (related && AllOnes(fid) && *chain_create != ~0ull) {
      Tx* c = FindTx(2, *chain_create, kCreate);
      if (c != nullptr && c->name_slot >= 0) {
        out->Assign(names_[c->name_slot].view());
        return;
      }
    }
    out->Assign("<unknown>");
  };

  switch (cmd) {
    case kNegotiate: {
      const uint16_t count = f.U16(B + 2);
      Tx* tx = new_tx(TxKind::kNegotiate);
      const int slot = TakeNegotiateSlot();
      if (slot < 0) break;
      tx->aux_slot = static_cast<int8_t>(slot);
      NegotiateInfo& n = negotiate_[slot];
      const std::span<const uint8_t> guid = f.Bytes(B + 12, 16);
      if (guid.size() == 16) {
        std::memcpy(n.client_guid, guid.data(), 16);
        n.has_client_guid = true;
      }
      for (uint32_t i = 0; i < count && n.count < kSmbMaxDialects; ++i) {
        const uint16_t d = f.U16(B + 36 + size_t{2} * i);
        if (f.bad) break;
        const char* name = Smb2DialectName(d);
        char buf[8];
        if (name == nullptr) {
          const int len = std::snprintf(buf, sizeof buf, "%u", d);
          n.dialects[n.count++].Assign(std::string_view(buf, len > 0 ? len : 0));
        } else {
          n.dialects[n.count++].Assign(name);
        }
      }
      if (f.bad) Anomaly(dir, "negotiate_malformed_dialects");
      break;
    }
    case kSessionSetup: {
      Tx* tx = new_tx(TxKind::kSessionSetup);
      const int slot = TakeAuthSlot();
      if (slot < 0) break;
      tx->aux_slot = static_cast<int8_t>(slot);
      const uint16_t boff = f.U16(B + 12);
      const uint16_t blen = f.U16(B + 14);
      if (!f.bad) ParseSecurityBlob(f.Avail(boff, blen), &auth_[slot]);
      break;
    }
    case kTreeConnect: {
      Tx* tx = new_tx(TxKind::kTreeConnect);
      const uint16_t poff = f.U16(B + 4);
      const uint16_t plen = f.U16(B + 6);
      const int slot = TakeNameSlot();
      if (slot >= 0) {
        tx->name_slot = static_cast<int8_t>(slot);
        if (!f.bad) Utf16Field(rec, poff, plen, &names_[slot], false);
      }
      if (f.bad) Anomaly(dir, "malformed_data");
      break;
    }
    case kTreeDisconnect:
      RemoveTree(session, tree_id);
      new_tx(TxKind::kGeneric);
      break;
    case kCreate: {
      Tx* tx = new_tx(TxKind::kCreate);
      tx->disposition = f.U32(B + 36);
      const uint32_t options = f.U32(B + 40);
      tx->directory = (options & 0x1) != 0;
      tx->delete_on_close = (options & 0x1000) != 0;
      const uint16_t noff = f.U16(B + 44);
      const uint16_t nlen = f.U16(B + 46);
      if (f.bad) {
        Anomaly(dir, "malformed_data");
        break;
      }
      const int slot = TakeNameSlot();
      if (slot >= 0) {
        tx->name_slot = static_cast<int8_t>(slot);
        Utf16Field(rec, noff, nlen, &names_[slot], false);
      }
      if (const Tree* t = FindTree(session, tree_id)) tx->is_pipe = t->is_pipe;
      *chain_create = msg_id;
      break;
    }
    case kClose: {
      const std::span<const uint8_t> fid = f.Bytes(B + 8, 16);
      Tx* tx = new_tx(TxKind::kGeneric);
      if (fid.size() != 16) break;
      std::memcpy(tx->fuid, fid.data(), 16);
      tx->fuid_len = 16;
      const int fi = FindFile(fid, session);
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
    case kRead: {
      const std::span<const uint8_t> fid = f.Bytes(B + 16, 16);
      if (fid.size() != 16) {
        Anomaly(dir, "malformed_data");
        break;
      }
      Tx* tx = new_tx(TxKind::kRead);
      tx->offset = f.U64(B + 8);
      std::memcpy(tx->fuid, fid.data(), 16);
      tx->fuid_len = 16;
      break;
    }
    case kWrite: {
      const uint16_t doff = f.U16(B + 2);
      const uint32_t dlen = f.U32(B + 4);
      const uint64_t offset = f.U64(B + 8);
      const std::span<const uint8_t> fid = f.Bytes(B + 16, 16);
      if (fid.size() != 16 || doff < B) {
        Anomaly(dir, "malformed_data");
        break;
      }
      if (uint64_t{doff} + dlen > rec_len) Anomaly(dir, "malformed_data");
      int fi = FindFile(fid, session);
      if (fi < 0) fi = AddFile(fid, session, tree_id);
      if (fi < 0) break;
      const std::span<const uint8_t> first = f.Avail(doff, dlen);
      if (PipeWants(fi, first)) {
        PipeCtx ctx{};
        ctx.version = 2;
        ctx.command = kWrite;
        ctx.session_id = session;
        ctx.tree_id = tree_id;
        pipes_[files_[fi].pipe].ctx[0] = ctx;
      } else if (!files_[fi].is_pipe) {
        FileData(fi, dir, 2, kWrite, session, tree_id);
        files_[fi].xfer[0].bytes += dlen;
      }
      SetRoute(dir, fi, doff, dlen, offset, msg_base);
      break;
    }
    case kIoctl: {
      const uint32_t ctl = f.U32(B + 4);
      const std::span<const uint8_t> fid = f.Bytes(B + 8, 16);
      const uint32_t in_off = f.U32(B + 24);
      const uint32_t in_len = f.U32(B + 28);
      if (f.bad) {
        Anomaly(dir, "malformed_data");
        new_tx(TxKind::kGeneric);
        break;
      }
      if (ctl == kFsctlPipeTransceive) {
        int fi = FindFile(fid, session);
        if (fi < 0) fi = AddFile(fid, session, tree_id);
        if (PipeWants(fi, f.Avail(in_off, in_len))) {
          PipeCtx ctx{};
          ctx.version = 2;
          ctx.command = kIoctl;
          ctx.session_id = session;
          ctx.tree_id = tree_id;
          pipes_[files_[fi].pipe].ctx[0] = ctx;
          SetRoute(dir, fi, in_off, in_len, 0, msg_base);
          break;  // the DCE-RPC call is the transaction
        }
      }
      Tx* tx = new_tx(TxKind::kIoctl);
      tx->ctl_code = ctl;
      std::memcpy(tx->fuid, fid.data(), 16);
      tx->fuid_len = 16;
      break;
    }
    case kQueryInfo:
      break;  // no transaction (Suricata's granularity)
    case kSetInfo: {
      const uint8_t info_type = f.U8(B + 2);
      const uint8_t info_class = f.U8(B + 3);
      const uint32_t blen = f.U32(B + 4);
      const uint16_t boff = f.U16(B + 8);
      const std::span<const uint8_t> fid = f.Bytes(B + 16, 16);
      if (f.bad) {
        Anomaly(dir, "malformed_data");
        break;
      }
      if (info_type != 1 || (info_class != 10 && info_class != 13)) break;
      const std::span<const uint8_t> buf = f.Avail(boff, blen);
      if (info_class == 13) {  // FileDispositionInformation
        if (buf.empty()) {
          Anomaly(dir, "malformed_data");
          break;
        }
        Tx* tx = new_tx(TxKind::kDisposition);
        tx->delete_on_close = buf[0] != 0;
        tx->info_level = info_class;
        std::memcpy(tx->fuid, fid.data(), 16);
        tx->fuid_len = 16;
        const int slot = TakeNameSlot();
        if (slot >= 0) {
          tx->name_slot = static_cast<int8_t>(slot);
          chained_name(fid, &names_[slot]);
        }
      } else {  // FileRenameInformation (SMB2 layout: 20-byte header, then the name)
        if (buf.size() < 20) {
          Anomaly(dir, "malformed_data");
          break;
        }
        Tx* tx = new_tx(TxKind::kRename);
        tx->info_level = info_class;
        std::memcpy(tx->fuid, fid.data(), 16);
        tx->fuid_len = 16;
        const int to = TakeNameSlot();
        if (to >= 0) {
          tx->name_slot = static_cast<int8_t>(to);
          Utf16Field(buf, 20, LoadU32le(buf.data() + 16), &names_[to], false);
        }
        const int from = TakeNameSlot();
        if (from >= 0) {
          tx->aux_slot = static_cast<int8_t>(from);
          chained_name(fid, &names_[from]);
        }
      }
      break;
    }
    default:
      if (cmd > kMaxCommand) Anomaly(dir, "unknown_command");
      new_tx(TxKind::kGeneric);
      break;
  }
}

void SmbParser::Smb2Response(std::span<const uint8_t> rec, uint32_t rec_len,
                             uint32_t msg_base) noexcept {
  const Direction dir = Direction::kToClient;
  Fields f{rec};
  const uint32_t status = f.U32(8);
  const uint16_t cmd = f.U16(12);
  const uint32_t flags = f.U32(16);
  const uint64_t msg_id = f.U64(24);
  const bool async = (flags & kFlagAsync) != 0;
  const uint32_t tree_id = async ? 0 : f.U32(36);
  const uint64_t session = f.U64(40);
  constexpr size_t B = kSmb2HeaderSize;
  // An error response has the 9-byte ERROR body whatever the command.
  const bool error_body = f.U16(B) == 9 && status != kStatusSuccess;
  (void)rec_len;

  if (cmd == kNegotiate && !error_body) {
    // The dialect holds for the flow even when the request was not seen.
    const uint16_t d = f.U16(B + 4);
    if (!f.bad && status == kStatusSuccess) {
      dialect_ = d;
      max_read_size_ = f.U32(B + 32);
      max_write_size_ = f.U32(B + 36);
    }
  }

  Tx* tx = FindTx(2, msg_id, cmd);
  if (tx == nullptr && cmd == kNegotiate) {
    // A multi-protocol SMB1 NEGOTIATE answered in SMB2.
    tx = FindTxAnyVersion(1, TxKind::kNegotiate);
  }

  switch (cmd) {
    case kRead: {
      if (tx == nullptr) return;  // no request: Suricata skips the data as well
      if (status == kStatusPending) return;
      int fi = FindFile({tx->fuid, tx->fuid_len}, tx->session_id);
      if (fi < 0) fi = AddFile({tx->fuid, tx->fuid_len}, tx->session_id, tx->tree_id);
      const uint64_t offset = tx->offset;
      const uint64_t rsession = tx->session_id;
      const uint32_t rtree = tx->tree_id;
      FreeTx(*tx);
      if (fi < 0) return;
      if (status == kStatusEndOfFile) {
        Xfer& x = files_[fi].xfer[1];
        if (x.active) {
          x.status_set = true;
          x.status = status;
        }
        return;
      }
      if ((status != kStatusSuccess && status != kStatusBufferOverflow) || error_body) return;
      const uint8_t doff = f.U8(B + 2);
      const uint32_t dlen = f.U32(B + 4);
      if (f.bad || (dlen != 0 && doff < B)) {
        Anomaly(dir, "malformed_data");
        return;
      }
      const std::span<const uint8_t> first = f.Avail(doff, dlen);
      if (PipeWants(fi, first)) {
        PipeCtx ctx{};
        ctx.version = 2;
        ctx.command = kRead;
        ctx.session_id = rsession;
        ctx.tree_id = rtree;
        ctx.status_set = true;
        ctx.status = status;
        pipes_[files_[fi].pipe].ctx[1] = ctx;
      } else if (!files_[fi].is_pipe) {
        FileData(fi, dir, 2, kRead, rsession, rtree);
        files_[fi].xfer[1].bytes += dlen;
      }
      SetRoute(dir, fi, doff, dlen, offset, msg_base);
      return;
    }
    case kIoctl: {
      if (!error_body && f.U16(B) == 49 && f.U32(B + 4) == kFsctlPipeTransceive &&
          (tx == nullptr || tx->kind != TxKind::kIoctl)) {
        const std::span<const uint8_t> fid = f.Bytes(B + 8, 16);
        const uint32_t out_off = f.U32(B + 32);
        const uint32_t out_len = f.U32(B + 36);
        const int fi = f.bad ? -1 : FindFile(fid, session);
        if (fi >= 0 && files_[fi].pipe >= 0 &&
            (status == kStatusSuccess || status == kStatusBufferOverflow)) {
          PipeCtx ctx = pipes_[files_[fi].pipe].ctx[0];
          ctx.status_set = true;
          ctx.status = status;
          pipes_[files_[fi].pipe].ctx[1] = ctx;
          SetRoute(dir, fi, out_off, out_len, 0, msg_base);
        }
        return;
      }
      break;
    }
    default:
      break;
  }

  if (tx == nullptr) return;  // midstream: the request was not seen
  tx->status_set = true;
  tx->status = status;
  tx->dos_error = false;
  if (status == kStatusPending && async) return;  // the final answer follows

  switch (tx->kind) {
    case TxKind::kNegotiate:
      if (tx->aux_slot >= 0 && !error_body) {
        const std::span<const uint8_t> g = f.Bytes(B + 8, 16);
        if (g.size() == 16) {
          std::memcpy(negotiate_[tx->aux_slot].server_guid, g.data(), 16);
          negotiate_[tx->aux_slot].has_server_guid = true;
        }
      }
      break;
    case TxKind::kSessionSetup:
      tx->session_id = session;
      tx->tree_id = tree_id;
      // The CHALLENGE comes with MORE_PROCESSING_REQUIRED, in a body whose StructureSize (9) is
      // that of an ERROR response, so error_body cannot tell them apart here.
      if (tx->aux_slot >= 0 &&
          (status == kStatusSuccess || status == kStatusMoreProcessingRequired)) {
        const uint16_t boff = f.U16(B + 4);
        const uint16_t blen = f.U16(B + 6);
        if (!f.bad) ParseResponseBlob(f.Avail(boff, blen), &auth_[tx->aux_slot]);
      }
      break;
    case TxKind::kTreeConnect: {
      tx->session_id = session;
      tx->tree_id = tree_id;
      if (status != kStatusSuccess || error_body) break;
      tx->share_type = f.U8(B + 2);
      tx->is_pipe = tx->share_type == 2;
      Tree* t = AddTree(session, tree_id);
      t->share_type = tx->share_type;
      t->is_pipe = tx->is_pipe;
      if (tx->name_slot >= 0) t->share.Assign(names_[tx->name_slot].view());
      break;
    }
    case TxKind::kCreate: {
      if (status != kStatusSuccess || error_body) break;
      const std::span<const uint8_t> fid = f.Bytes(B + 64, 16);
      if (fid.size() != 16) {
        Anomaly(dir, "malformed_data");
        break;
      }
      tx->created = f.U64(B + 8);
      tx->accessed = f.U64(B + 16);
      tx->modified = f.U64(B + 24);
      tx->changed = f.U64(B + 32);
      tx->size = f.U64(B + 48);
      std::memcpy(tx->fuid, fid.data(), 16);
      tx->fuid_len = 16;
      const int fi = AddFile(fid, tx->session_id, tx->tree_id);
      if (fi >= 0) {
        if (tx->name_slot >= 0) files_[fi].name.Assign(names_[tx->name_slot].view());
        files_[fi].size_known = true;
        files_[fi].end_of_file = tx->size;
        tx->is_pipe = files_[fi].is_pipe;
      }
      break;
    }
    default:
      break;
  }
  FinishTx(*tx, dir);
}

}  // namespace vigil::proto
