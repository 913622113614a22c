// SMB parser: NBSS framing, resynchronisation, the transaction/tree/file/pipe tables and the EVE
// events. The SMB1 and SMB2 message decoders are in smb1.cc and smb2.cc.
#include "dataplane/proto/smb.h"

#include <cstdio>
#include <cstring>

namespace vigil::proto {

namespace {

#include "dataplane/proto/smb_names.inc"

template <size_t N>
const char* LookupSorted(const SmbCodeName (&table)[N], uint32_t code) noexcept {
  size_t lo = 0, hi = N;
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    if (table[mid].code == code) return table[mid].name;
    if (table[mid].code < code) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return nullptr;
}

struct FsctlName {
  uint32_t code;
  const char* name;
};
// MS-FSCC 2.3 / MS-SMB2 2.2.31: the control codes SMB2 IOCTL commonly carries.
constexpr FsctlName kFsctlNames[] = {
    {0x00060194, "FSCTL_DFS_GET_REFERRALS"},
    {0x000601B0, "FSCTL_DFS_GET_REFERRALS_EX"},
    {0x0009009C, "FSCTL_GET_OBJECT_ID"},
    {0x000900A4, "FSCTL_SET_REPARSE_POINT"},
    {0x000900A8, "FSCTL_GET_REPARSE_POINT"},
    {0x000900C0, "FSCTL_CREATE_OR_GET_OBJECT_ID"},
    {0x000900C4, "FSCTL_SET_SPARSE"},
    {0x000940CF, "FSCTL_QUERY_ALLOCATED_RANGES"},
    {0x000980C8, "FSCTL_SET_ZERO_DATA"},
    {0x00110018, "FSCTL_PIPE_WAIT"},
    {0x0011400C, "FSCTL_PIPE_PEEK"},
    {0x0011C017, "FSCTL_PIPE_TRANSCEIVE"},
    {0x00140078, "FSCTL_SRV_REQUEST_RESUME_KEY"},
    {0x001401D4, "FSCTL_LMR_REQUEST_RESILIENCY"},
    {0x001401FC, "FSCTL_QUERY_NETWORK_INTERFACE_INFO"},
    {0x00140204, "FSCTL_VALIDATE_NEGOTIATE_INFO"},
    {0x00144064, "FSCTL_SRV_ENUMERATE_SNAPSHOTS"},
    {0x001440F2, "FSCTL_SRV_COPYCHUNK"},
    {0x001441BB, "FSCTL_SRV_READ_HASH"},
    {0x001480F2, "FSCTL_SRV_COPYCHUNK_WRITE"},
};

constexpr int Idx(Direction d) noexcept { return d == Direction::kToServer ? 0 : 1; }

bool IsSmbMagic(const uint8_t* p) noexcept {
  return (p[0] == 0xFF || p[0] == 0xFE || p[0] == 0xFD || p[0] == 0xFC) && p[1] == 'S' &&
         p[2] == 'M' && p[3] == 'B';
}

// Smallest NBSS payload for each kind of SMB message: the SMB1 header and word count, the SMB2
// header, the transform and compression headers.
uint32_t MinMessage(uint8_t magic) noexcept {
  switch (magic) {
    case 0xFF:
      return 33;
    case 0xFE:
      return 64;
    case 0xFD:
      return 52;
    default:
      return 16;
  }
}

const char* DosErrorName(uint16_t code) noexcept {
  switch (code) {
    case 0:
      return "DOS_SUCCESS";
    case 1:
      return "DOS_BAD_FUNC";
    case 2:
      return "DOS_BAD_FILE";
    case 3:
      return "DOS_BAD_PATH";
    case 4:
      return "DOS_TOO_MANY_OPEN_FILES";
    case 5:
      return "DOS_ACCESS_DENIED";
    default:
      return nullptr;
  }
}

const char* SrvErrorName(uint16_t code) noexcept {
  switch (code) {
    case 1:
      return "SRV_ERROR";
    case 2:
      return "SRV_BADPW";
    case 3:
      return "SRV_BADTYPE";
    case 4:
      return "SRV_ACCESS";
    case 91:
      return "SRV_BADUID";
    default:
      return nullptr;
  }
}

const char* DispositionName(uint32_t d) noexcept {
  switch (d) {
    case 0:
      return "FILE_SUPERSEDE";
    case 1:
      return "FILE_OPEN";
    case 2:
      return "FILE_CREATE";
    case 3:
      return "FILE_OPEN_IF";
    case 4:
      return "FILE_OVERWRITE";
    case 5:
      return "FILE_OVERWRITE_IF";
    default:
      return "UNKNOWN";
  }
}

// Command name without its "SMBn_COMMAND_" prefix, for messages.
std::string_view ShortCommand(const char* full) noexcept {
  std::string_view s(full);
  const size_t p = s.find("_COMMAND_");
  return p == std::string_view::npos ? s : s.substr(p + 9);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Names.

const char* SmbNtStatusName(uint32_t status) noexcept {
  return LookupSorted(kSmbNtStatusNames, status);
}
const char* Smb1CommandName(uint8_t command) noexcept {
  return LookupSorted(kSmb1CommandNames, command);
}
const char* Smb2CommandName(uint16_t command) noexcept {
  constexpr size_t n = sizeof(kSmb2CommandNames) / sizeof(kSmb2CommandNames[0]);
  return command < n ? kSmb2CommandNames[command] : nullptr;
}
const char* Smb2DialectName(uint16_t dialect) noexcept {
  return LookupSorted(kSmb2DialectNames, dialect);
}
const char* Smb1TransSubcommandName(uint16_t sub) noexcept {
  return LookupSorted(kSmb1TransNames, sub);
}
const char* SmbFsctlName(uint32_t ctl_code) noexcept {
  for (const FsctlName& f : kFsctlNames) {
    if (f.code == ctl_code) return f.name;
  }
  return nullptr;
}

size_t FormatSmbFuid(std::span<const uint8_t> f, char out[37]) noexcept {
  static constexpr char kHex[] = "0123456789abcdef";
  size_t n = 0;
  auto put = [&](uint8_t b) {
    out[n++] = kHex[b >> 4];
    out[n++] = kHex[b & 15];
  };
  if (f.size() == 16) {
    // Suricata's order: the GUID's first three fields little-endian, then bytes 9,8 and
    // 11,10 and the last four reversed.
    static constexpr uint8_t kOrder[16] = {3, 2, 1, 0, 5, 4, 7, 6, 9, 8, 11, 10, 15, 14, 13, 12};
    for (int i = 0; i < 16; ++i) {
      if (i == 4 || i == 6 || i == 8 || i == 10) out[n++] = '-';
      put(f[kOrder[i]]);
    }
  } else if (f.size() == 2) {
    put(f[1]);
    put(f[0]);
  }
  out[n] = '\0';
  return n;
}

namespace smb_detail {

void Utf16Field(std::span<const uint8_t> rec, size_t off, size_t len,
                FixedString<kSmbNameBytes>* out, bool strip_leading_nul) noexcept {
  out->Clear();
  if (off >= rec.size()) {
    out->truncated = len > 0;
    return;
  }
  size_t avail = rec.size() - off;
  const bool cut = len > avail;
  if (len > avail) len = avail;
  std::span<const uint8_t> in = rec.subspan(off, len);
  if (strip_leading_nul) {
    while (in.size() >= 2 && in[0] == 0 && in[1] == 0) in = in.subspan(2);
  }
  char buf[kSmbNameBytes + 8];
  const size_t n = Utf16LeToUtf8(in, buf, kSmbNameBytes);
  out->Assign(std::string_view(buf, n));
  // Utf16LeToUtf8 stops at a full buffer: the name did not fit.
  if (n + 4 > kSmbNameBytes && in.size() / 2 > n / 3) out->truncated = true;
  if (cut) out->truncated = true;
}

size_t SmbString(std::span<const uint8_t> data, size_t off, bool unicode, size_t base, char* out,
                 size_t cap, size_t* written) noexcept {
  *written = 0;
  if (unicode && ((base + off) & 1)) ++off;  // UTF-16 strings are 2-byte aligned in the message
  if (off >= data.size()) return data.size();
  size_t end = off;
  if (unicode) {
    while (end + 1 < data.size() && (data[end] != 0 || data[end + 1] != 0)) end += 2;
    *written = Utf16LeToUtf8(data.subspan(off, end - off), out, cap);
    return end + 2 <= data.size() ? end + 2 : data.size();
  }
  while (end < data.size() && data[end] != 0) ++end;
  *written = CopyCString(data.subspan(off, end - off), out, cap);
  return end + 1 <= data.size() ? end + 1 : data.size();
}

}  // namespace smb_detail

// ---------------------------------------------------------------------------------------------
// Probe and framing.

ProbeResult SmbParser::Probe(Direction dir, std::span<const uint8_t> data) noexcept {
  (void)dir;
  if (data.empty()) return ProbeResult::kMaybe;
  if (data[0] == 0x00) {
    // NBSS session message: 3 length bytes then the SMB magic.
    if (data.size() < 8) {
      static constexpr uint8_t kTail[3] = {'S', 'M', 'B'};
      if (data.size() > 4 && data[4] != 0xFF && data[4] != 0xFE && data[4] != 0xFD &&
          data[4] != 0xFC) {
        return ProbeResult::kNo;
      }
      for (size_t i = 5; i < data.size(); ++i) {
        if (data[i] != kTail[i - 5]) return ProbeResult::kNo;
      }
      return ProbeResult::kMaybe;
    }
    if (!IsSmbMagic(data.data() + 4)) return ProbeResult::kNo;
    const uint32_t len = uint32_t{data[1]} << 16 | uint32_t{data[2]} << 8 | data[3];
    return len >= MinMessage(data[4]) ? ProbeResult::kYes : ProbeResult::kNo;
  }
  if (data[0] == 0x81) {
    // NBSS session request (port 139): two encoded NetBIOS names, each 0x20 then 32 characters
    // 'A'..'P'.
    if (data.size() > 1 && data[1] != 0) return ProbeResult::kNo;
    if (data.size() >= 4) {
      const uint32_t len = LoadU16be(data.data() + 2);
      if (len < 34 || len > 512) return ProbeResult::kNo;
    }
    if (data.size() > 4 && data[4] != 0x20) return ProbeResult::kNo;
    const size_t end = data.size() < 37 ? data.size() : 37;
    for (size_t i = 5; i < end; ++i) {
      if (data[i] < 'A' || data[i] > 'P') return ProbeResult::kNo;
    }
    return data.size() >= 37 ? ProbeResult::kYes : ProbeResult::kMaybe;
  }
  return ProbeResult::kNo;
}

SmbParser::SmbParser() noexcept {
  for (Stream& s : streams_) {
    s.state = Stream::State::kHeader;
    s.hdr_len = 0;
    s.window_len = 0;
    s.smb_message = false;
    s.route = Route::kNone;
    s.route_file = -1;
    s.msg_len = s.msg_got = s.head_len = 0;
    s.route_begin = s.route_end = 0;
    s.route_offset = 0;
  }
  for (Tx& t : txs_) t.used = false;
  for (bool& b : name_used_) b = false;
  for (AuthInfo& a : auth_) a.used = false;
  for (NegotiateInfo& n : negotiate_) n.used = false;
  for (Tree& t : trees_) t.used = false;
  for (File& f : files_) f.used = false;
  for (Pipe& p : pipes_) p.used = false;
}

void SmbParser::OnData(Direction dir, std::span<const uint8_t> data, EventSink& sink) noexcept {
  sink_ = &sink;
  Feed(dir, data);
  sink_ = nullptr;
}

void SmbParser::Feed(Direction dir, std::span<const uint8_t> data) noexcept {
  Stream& s = streams_[Idx(dir)];
  size_t pos = 0;
  while (pos < data.size()) {
    const size_t left = data.size() - pos;
    switch (s.state) {
      case Stream::State::kHeader: {
        const size_t n = left < size_t{4} - s.hdr_len ? left : size_t{4} - s.hdr_len;
        std::memcpy(s.hdr + s.hdr_len, data.data() + pos, n);
        s.hdr_len = static_cast<uint8_t>(s.hdr_len + n);
        pos += n;
        if (s.hdr_len == 4) StartMessage(s, dir);
        break;
      }
      case Stream::State::kHead: {
        const uint32_t want = s.msg_len < kSmbHeadBytes ? s.msg_len : uint32_t{kSmbHeadBytes};
        const size_t n = left < want - s.head_len ? left : want - s.head_len;
        std::memcpy(s.head + s.head_len, data.data() + pos, n);
        const uint32_t before = s.head_len;
        s.head_len += static_cast<uint32_t>(n);
        s.msg_got += static_cast<uint32_t>(n);
        pos += n;
        if (before < 4 && s.head_len >= 4 &&
            (!IsSmbMagic(s.head) || s.msg_len < MinMessage(s.head[0]))) {
          Anomaly(dir, "malformed_data");
          EnterResync(s);
          break;
        }
        if (s.head_len == want) ProcessHead(s, dir);
        break;
      }
      case Stream::State::kBody: {
        const uint32_t rest = s.msg_len - s.msg_got;
        const size_t n = left < rest ? left : rest;
        if (s.route != Route::kNone) RouteData(dir, s, s.msg_got, data.subspan(pos, n));
        s.msg_got += static_cast<uint32_t>(n);
        pos += n;
        if (s.msg_got == s.msg_len) {
          s.state = Stream::State::kHeader;
          s.hdr_len = 0;
          s.route = Route::kNone;
        }
        break;
      }
      case Stream::State::kResync:
        ResyncByte(s, dir, data[pos++]);
        break;
    }
  }
}

void SmbParser::StartMessage(Stream& s, Direction dir) noexcept {
  const uint8_t type = s.hdr[0];
  const uint32_t len = uint32_t{s.hdr[1]} << 16 | uint32_t{s.hdr[2]} << 8 | s.hdr[3];
  s.hdr_len = 0;
  s.route = Route::kNone;
  s.msg_len = len;
  s.msg_got = 0;
  s.head_len = 0;
  if (type == 0x00) {
    s.smb_message = true;
    if (len == 0) return;  // an empty session message: nothing to parse
    s.state = Stream::State::kHead;
    return;
  }
  // Session request/response/retarget/keepalive (RFC 1002 4.3): nothing for the events.
  if (type >= 0x81 && type <= 0x85) {
    s.smb_message = false;
    if (len > 0x1FFFF) {  // these carry names, never more than the RFC 1002 length field
      Anomaly(dir, "malformed_nbss");
      EnterResync(s);
      return;
    }
    if (len != 0) s.state = Stream::State::kBody;
    return;
  }
  Anomaly(dir, "malformed_nbss");
  EnterResync(s);
}

void SmbParser::EnterResync(Stream& s) noexcept {
  s.state = Stream::State::kResync;
  s.window_len = 0;
  s.hdr_len = 0;
  s.route = Route::kNone;
}

void SmbParser::ResyncByte(Stream& s, Direction dir, uint8_t b) noexcept {
  if (s.window_len == 8) {
    std::memmove(s.window, s.window + 1, 7);
    s.window_len = 7;
  }
  s.window[s.window_len++] = b;
  if (s.window_len < 8 || s.window[0] != 0x00 || !IsSmbMagic(s.window + 4)) return;
  const uint32_t len = uint32_t{s.window[1]} << 16 | uint32_t{s.window[2]} << 8 | s.window[3];
  if (len < MinMessage(s.window[4])) return;
  s.smb_message = true;
  s.msg_len = len;
  std::memcpy(s.head, s.window + 4, 4);
  s.head_len = 4;
  s.msg_got = 4;
  s.window_len = 0;
  s.route = Route::kNone;
  s.state = Stream::State::kHead;
  (void)dir;
}

void SmbParser::ProcessHead(Stream& s, Direction dir) noexcept {
  cur_dir_ = dir;
  s.route = Route::kNone;
  // Handlers may route the data part of the message; they set s.route via SetRoute.
  const std::span<const uint8_t> head(s.head, s.head_len);
  switch (s.head[0]) {
    case 0xFF:
      Smb1Message(dir, head, s.msg_len);
      break;
    case 0xFE:
      Smb2Message(dir, head, s.msg_len);
      break;
    case 0xFD:
      Smb2Transform(dir, head, false);
      break;
    case 0xFC:
      Smb2Transform(dir, head, true);
      break;
    default:
      break;
  }
  if (s.msg_got >= s.msg_len) {
    s.state = Stream::State::kHeader;
    s.hdr_len = 0;
    s.route = Route::kNone;
  } else {
    s.state = Stream::State::kBody;
  }
}

void SmbParser::SetRoute(Direction dir, int file, uint32_t begin, uint32_t len,
                         uint64_t file_offset, uint32_t msg_base) noexcept {
  Stream& s = streams_[Idx(dir)];
  if (file < 0) return;
  const uint64_t abs_begin = uint64_t{msg_base} + begin;
  uint64_t end = abs_begin + len;
  if (end > s.msg_len) end = s.msg_len;
  if (abs_begin >= end) return;
  const File& f = files_[file];
  const Route kind = f.pipe >= 0 ? Route::kPipe : (f.is_pipe ? Route::kNone : Route::kFile);
  if (kind == Route::kNone) return;
  s.route = kind;
  s.route_file = static_cast<int8_t>(file);
  s.route_begin = static_cast<uint32_t>(abs_begin);
  s.route_end = static_cast<uint32_t>(end);
  s.route_offset = file_offset;
  // The part already in the buffered head goes now; the rest as it streams by.
  if (abs_begin < s.head_len) {
    const uint32_t stop = end < s.head_len ? static_cast<uint32_t>(end) : s.head_len;
    RouteData(dir, s, static_cast<uint32_t>(abs_begin),
              std::span<const uint8_t>(s.head + abs_begin, stop - abs_begin));
  }
  if (end <= s.head_len) s.route = Route::kNone;
}

void SmbParser::RouteData(Direction dir, Stream& s, uint32_t msg_offset,
                          std::span<const uint8_t> data) noexcept {
  uint64_t b = msg_offset, e = uint64_t{msg_offset} + data.size();
  if (b < s.route_begin) b = s.route_begin;
  if (e > s.route_end) e = s.route_end;
  if (b >= e) return;
  const std::span<const uint8_t> part = data.subspan(b - msg_offset, e - b);
  const int file = s.route_file;  // NOLINT(bugprone-signed-char-misuse): -1 means none
  if (file < 0 || !files_[file].used) return;
  if (s.route == Route::kPipe) {
    if (files_[file].pipe >= 0) PipeFeed(file, dir, pipes_[files_[file].pipe].ctx[Idx(dir)], part);
  } else if (s.route == Route::kFile) {
    File& f = files_[file];
    const uint64_t offset = s.route_offset + (b - s.route_begin);
    if (file_obs_ != nullptr) file_obs_->OnFileData(FileRef(f, dir), offset, part);
    // The signature engine: file_data and file.name on the piece that starts the file (what a
    // read or write at offset 0 carries in this segment; later pieces are not inspected).
    if (offset == 0 && sink_ != nullptr && sink_->inspecting()) {
      rules::Buffers buffers;
      buffers.Set(rules::Buffer::kFileData, part);
      const std::string_view name = f.name.view();
      if (!name.empty()) {
        buffers.Set(rules::Buffer::kFileName,
                    {reinterpret_cast<const uint8_t*>(name.data()), name.size()});
      }
      sink_->Inspect(dir, buffers);
    }
  }
}

void SmbParser::OnGap(Direction dir, uint32_t missing_bytes, EventSink& sink) noexcept {
  sink_ = &sink;
  cur_dir_ = dir;
  Stream& s = streams_[Idx(dir)];
  if (s.state == Stream::State::kBody && missing_bytes <= s.msg_len - s.msg_got) {
    // Inside a message's data the framing survives: only the routed bytes are lost.
    if (s.route != Route::kNone && s.route_file >= 0 && files_[s.route_file].used) {
      uint64_t b = s.msg_got, e = uint64_t{s.msg_got} + missing_bytes;
      if (b < s.route_begin) b = s.route_begin;
      if (e > s.route_end) e = s.route_end;
      if (b < e) {
        File& f = files_[s.route_file];
        if (s.route == Route::kPipe) {
          PipeGap(s.route_file, dir, static_cast<uint32_t>(e - b));
        } else if (file_obs_ != nullptr) {
          const SmbFileRef ref = FileRef(f, dir);
          file_obs_->OnFileGap(ref, s.route_offset + (b - s.route_begin),
                               static_cast<uint32_t>(e - b));
        }
      }
    }
    s.msg_got += missing_bytes;
    if (s.msg_got == s.msg_len) {
      s.state = Stream::State::kHeader;
      s.hdr_len = 0;
      s.route = Route::kNone;
    }
  } else if (missing_bytes > 0) {
    // The next header is somewhere in or after the lost bytes: hunt for it.
    EnterResync(s);
  }
  sink_ = nullptr;
}

void SmbParser::OnEnd(EventSink& sink) noexcept {
  sink_ = &sink;
  // Requests still waiting, in the order they were made.
  for (;;) {
    Tx* oldest = nullptr;
    for (Tx& t : txs_) {
      if (t.used && (oldest == nullptr || t.id < oldest->id)) oldest = &t;
    }
    if (oldest == nullptr) break;
    FinishTx(*oldest, Direction::kToServer);
  }
  for (int i = 0; i < kSmbMaxFiles; ++i) {
    if (files_[i].used) CloseFile(i, Direction::kToServer, false);
  }
  sink_ = nullptr;
}

// ---------------------------------------------------------------------------------------------
// Transactions.

SmbParser::Tx* SmbParser::NewTx(uint8_t version, uint16_t command, TxKind kind,
                                uint64_t key) noexcept {
  Tx* slot = nullptr;
  for (Tx& t : txs_) {
    if (!t.used) {
      slot = &t;
      break;
    }
  }
  if (slot == nullptr) {
    // Full: the oldest request is reported without its response.
    slot = &txs_[0];
    for (Tx& t : txs_) {
      if (t.age < slot->age) slot = &t;
    }
    Anomaly(cur_dir_, "too_many_pending_requests");
    FinishTx(*slot, cur_dir_);
  }
  *slot = Tx{};
  slot->used = true;
  slot->silent = kind == TxKind::kRead || kind == TxKind::kTrans;
  slot->version = version;
  slot->command = command;
  slot->kind = kind;
  slot->key = key;
  slot->name_slot = -1;
  slot->aux_slot = -1;
  slot->age = ++clock_;
  if (!slot->silent) slot->id = next_tx_id_++;
  return slot;
}

SmbParser::Tx* SmbParser::FindTx(uint8_t version, uint64_t key, uint16_t command) noexcept {
  for (Tx& t : txs_) {
    if (t.used && t.version == version && t.key == key && t.command == command) return &t;
  }
  return nullptr;
}

SmbParser::Tx* SmbParser::FindTxAnyVersion(uint8_t version, TxKind kind) noexcept {
  for (Tx& t : txs_) {
    if (t.used && t.version == version && t.kind == kind) return &t;
  }
  return nullptr;
}

void SmbParser::FreeTx(Tx& tx) noexcept {
  if (tx.name_slot >= 0) name_used_[tx.name_slot] = false;
  if (tx.aux_slot >= 0) {
    if (tx.kind == TxKind::kSessionSetup) {
      auth_[tx.aux_slot].used = false;
    } else if (tx.kind == TxKind::kNegotiate) {
      negotiate_[tx.aux_slot].used = false;
    } else if (tx.kind == TxKind::kRename) {
      name_used_[tx.aux_slot] = false;
    }
  }
  tx.used = false;
}

void SmbParser::FinishTx(Tx& tx, Direction dir) noexcept {
  if (!tx.silent) EmitTx(tx, dir);
  FreeTx(tx);
}

int SmbParser::TakeNameSlot() noexcept {
  for (int i = 0; i < kSmbNameSlots; ++i) {
    if (!name_used_[i]) {
      name_used_[i] = true;
      names_[i].Clear();
      return i;
    }
  }
  return -1;
}

int SmbParser::TakeAuthSlot() noexcept {
  for (int i = 0; i < kSmbAuthSlots; ++i) {
    if (!auth_[i].used) {
      AuthInfo& a = auth_[i];
      a.used = true;
      a.has_ntlmssp = a.has_challenge = a.has_krb5 = a.has_req_host = a.has_resp_host = false;
      a.ntlmssp = NtlmsspMessage{};
      a.krb5 = Krb5Message{};
      a.req_os.Clear();
      a.req_lm.Clear();
      a.resp_os.Clear();
      a.resp_lm.Clear();
      return i;
    }
  }
  return -1;
}

int SmbParser::TakeNegotiateSlot() noexcept {
  for (int i = 0; i < kSmbNegotiateSlots; ++i) {
    if (!negotiate_[i].used) {
      NegotiateInfo& n = negotiate_[i];
      n.used = true;
      n.has_client_guid = n.has_server_guid = false;
      n.count = 0;
      return i;
    }
  }
  return -1;
}

FixedString<kSmbNameBytes>* SmbParser::TxName(Tx& tx) noexcept {
  return tx.name_slot >= 0 ? &names_[tx.name_slot] : nullptr;
}

// ---------------------------------------------------------------------------------------------
// Trees and files.

SmbParser::Tree* SmbParser::FindTree(uint64_t session_id, uint32_t tree_id) noexcept {
  for (Tree& t : trees_) {
    if (t.used && t.tree_id == tree_id && t.session_id == session_id) return &t;
  }
  return nullptr;
}

SmbParser::Tree* SmbParser::AddTree(uint64_t session_id, uint32_t tree_id) noexcept {
  Tree* slot = FindTree(session_id, tree_id);
  if (slot == nullptr) {
    for (Tree& t : trees_) {
      if (!t.used) {
        slot = &t;
        break;
      }
    }
  }
  if (slot == nullptr) {
    slot = &trees_[0];
    for (Tree& t : trees_) {
      if (t.age < slot->age) slot = &t;
    }
  }
  slot->used = true;
  slot->is_pipe = false;
  slot->share_type = 0;
  slot->tree_id = tree_id;
  slot->session_id = session_id;
  slot->age = ++clock_;
  slot->share.Clear();
  return slot;
}

void SmbParser::RemoveTree(uint64_t session_id, uint32_t tree_id) noexcept {
  Tree* t = FindTree(session_id, tree_id);
  if (t != nullptr) t->used = false;
}

int SmbParser::FindFile(std::span<const uint8_t> fuid, uint64_t session_id) noexcept {
  for (int i = 0; i < kSmbMaxFiles; ++i) {
    File& f = files_[i];
    if (!f.used || f.fuid_len != fuid.size()) continue;
    // SMB1 FIDs are only unique within a session (Suricata keys them with the UID too).
    if (fuid.size() == 2 && f.session_id != session_id) continue;
    if (std::memcmp(f.fuid, fuid.data(), fuid.size()) == 0) {
      f.age = ++clock_;
      return i;
    }
  }
  return -1;
}

int SmbParser::AddFile(std::span<const uint8_t> fuid, uint64_t session_id,
                       uint32_t tree_id) noexcept {
  if (fuid.size() != 16 && fuid.size() != 2) return -1;
  int slot = FindFile(fuid, session_id);
  if (slot >= 0) {
    // Reopened (SMB1 FIDs are reused): the old transfer ends here.
    CloseFile(slot, cur_dir_, false);
  }
  if (slot < 0 || files_[slot].used) {
    slot = -1;
    for (int i = 0; i < kSmbMaxFiles; ++i) {
      if (!files_[i].used) {
        slot = i;
        break;
      }
    }
  }
  if (slot < 0) {
    slot = 0;
    for (int i = 1; i < kSmbMaxFiles; ++i) {
      if (files_[i].age < files_[slot].age) slot = i;
    }
    CloseFile(slot, cur_dir_, false);
  }
  File& f = files_[slot];
  f.used = true;
  f.is_pipe = f.pipe_checked = f.not_dcerpc = false;
  f.fuid_len = static_cast<uint8_t>(fuid.size());
  std::memcpy(f.fuid, fuid.data(), fuid.size());
  f.pipe = -1;
  f.tree_id = tree_id;
  f.session_id = session_id;
  f.age = ++clock_;
  f.xfer[0] = Xfer{};
  f.xfer[1] = Xfer{};
  f.size_known = false;
  f.end_of_file = 0;
  f.name.Clear();
  if (const Tree* t = FindTree(session_id, tree_id)) f.is_pipe = t->is_pipe;
  return slot;
}

std::string_view SmbParser::FileShare(const File& f) noexcept {
  const Tree* t = FindTree(f.session_id, f.tree_id);
  return t != nullptr ? t->share.view() : std::string_view();
}

SmbFileRef SmbParser::FileRef(const File& f, Direction dir) noexcept {
  const Xfer& x = f.xfer[Idx(dir)];
  return SmbFileRef{f.fuid,        f.fuid_len,    f.session_id, f.tree_id,
                    dir,           f.name.view(), FileShare(f), x.id,
                    f.end_of_file, f.size_known,  false,        x.status_set,
                    x.version,     x.command,     dialect_,     smb1_dialect_.view(),
                    x.status};
}

void SmbParser::FinishXfer(File& f, int xdir, Direction dir) noexcept {
  Xfer& x = f.xfer[xdir];
  if (!x.active) return;
  x.active = false;
  JsonWriter& w = sink_->Begin("smb", dir);
  w.ObjectBegin("smb");
  WriteCommon(w, x.id, x.version, x.command, x.status_set, x.status, false, 0, x.session_id,
              x.tree_id);
  char fuid[37];
  FormatSmbFuid({f.fuid, f.fuid_len}, fuid);
  // Suricata names a read of a file whose open it missed "<unknown>" (writes stay empty).
  w.Str("filename", f.name.empty() && xdir == 1 ? std::string_view("<unknown>") : f.name.view());
  const std::string_view share = FileShare(f);
  w.Str("share", share);
  w.Str("fuid", fuid);
  w.ObjectEnd();
  TextBuilder& t = sink_->message();
  AppendPrefix(t, x.version, x.command, x.status_set, x.status, false, 0);
  if (!share.empty()) t.Append(' ').Append(share);
  t.Append(' ').Append(f.name.empty() ? std::string_view("<unknown>") : f.name.view());
  t.Append(' ').AppendUint(x.bytes).Append(" bytes");
  sink_->Commit();
}

void SmbParser::CloseFile(int index, Direction dir, bool forget) noexcept {
  File& f = files_[index];
  if (!f.used) return;
  for (int x = 0; x < 2; ++x) {
    if (forget && f.xfer[x].active) {
      // Suricata marks a file's transfers successful when the client closes it.
      f.xfer[x].status_set = true;
      f.xfer[x].status = 0;
    }
    const bool was_active = f.xfer[x].active;
    FinishXfer(f, x, dir);
    if (was_active && file_obs_ != nullptr) {
      SmbFileRef ref = FileRef(f, x == 0 ? Direction::kToServer : Direction::kToClient);
      ref.closed = forget;
      file_obs_->OnFileClose(ref);
    }
  }
  ReleasePipe(index);
  f.used = false;
}

void SmbParser::FileData(int index, Direction dir, uint8_t version, uint16_t command,
                         uint64_t session_id, uint32_t tree_id) noexcept {
  Xfer& x = files_[index].xfer[Idx(dir)];
  if (x.active) return;
  x = Xfer{};
  x.active = true;
  x.version = version;
  x.command = command;
  x.session_id = session_id;
  x.tree_id = tree_id;
  x.id = next_tx_id_++;
}

// ---------------------------------------------------------------------------------------------
// Named pipes.

struct SmbParser::PipeObserver final : public DcerpcObserver {
  PipeObserver(SmbParser* p, int i) noexcept : parser(p), pipe(i) {}
  void OnCall(const DcerpcCall& call) noexcept override { parser->OnPipeCall(pipe, call); }
  // The signature engine sees each request on a pipe (dcerpc.iface / dcerpc.opnum over SMB).
  void OnRequest(const DcerpcRequestView& request) noexcept override {
    if (parser->sink_ != nullptr && parser->sink_->inspecting()) {
      InspectDcerpcRequest(request, Direction::kToServer, *parser->sink_);
    }
  }
  void OnAnomaly(Direction dir, const char* event) noexcept override {
    char buf[64];
    const int n = std::snprintf(buf, sizeof buf, "dcerpc_%s", event);
    if (n > 0) parser->Anomaly(dir, buf);
  }
  SmbParser* parser;
  int pipe;
};

bool SmbParser::PipeWants(int file, std::span<const uint8_t> first_data) noexcept {
  if (file < 0) return false;
  File& f = files_[file];
  if (f.pipe >= 0) return true;
  if (f.not_dcerpc) return false;
  // A file on a disk share never carries DCE-RPC; with the tree unknown (midstream) the data
  // decides, as in Suricata.
  const Tree* t = FindTree(f.session_id, f.tree_id);
  if (!f.is_pipe && t != nullptr && !t->is_pipe) return false;
  if (first_data.empty()) return false;
  if (DcerpcProbe(first_data) == ProbeResult::kNo) {
    if (f.is_pipe) f.not_dcerpc = true;
    return false;
  }
  int slot = -1;
  for (int i = 0; i < kSmbMaxPipes; ++i) {
    if (!pipes_[i].used) {
      slot = i;
      break;
    }
  }
  if (slot < 0) {
    // All pipes busy: the one whose file was used least recently gives way.
    slot = 0;
    for (int i = 1; i < kSmbMaxPipes; ++i) {
      if (files_[pipes_[i].file].age < files_[pipes_[slot].file].age) slot = i;
    }
    ReleasePipe(pipes_[slot].file);
  }
  Pipe& p = pipes_[slot];
  p.used = true;
  p.file = static_cast<int8_t>(file);
  p.ctx[0] = PipeCtx{};
  p.ctx[1] = PipeCtx{};
  p.conn.Reset();
  f.pipe = static_cast<int8_t>(slot);
  f.is_pipe = true;
  return true;
}

void SmbParser::PipeFeed(int file, Direction dir, const PipeCtx& ctx,
                         std::span<const uint8_t> data) noexcept {
  const int pi = files_[file].pipe;  // NOLINT(bugprone-signed-char-misuse): -1 means none
  if (pi < 0) return;
  pipes_[pi].ctx[Idx(dir)] = ctx;
  PipeObserver obs(this, pi);
  pipes_[pi].conn.Feed(dir, data, obs);
}

void SmbParser::PipeGap(int file, Direction dir, uint32_t n) noexcept {
  const int pi = files_[file].pipe;  // NOLINT(bugprone-signed-char-misuse): -1 means none
  if (pi < 0) return;
  PipeObserver obs(this, pi);
  pipes_[pi].conn.Gap(dir, n, obs);
}

void SmbParser::ReleasePipe(int file) noexcept {
  File& f = files_[file];
  if (f.pipe < 0) return;
  Pipe& p = pipes_[f.pipe];
  PipeObserver obs(this, f.pipe);
  p.conn.Flush(obs);
  p.used = false;
  f.pipe = -1;
}

void SmbParser::OnPipeCall(int pipe, const DcerpcCall& call) noexcept {
  const Pipe& p = pipes_[pipe];
  const bool have_req = call.request_type != 0xff && p.ctx[0].command != 0;
  const PipeCtx& ctx = have_req ? p.ctx[0] : p.ctx[1];
  const bool status_set = call.response_type != 0xff && p.ctx[1].status_set;
  const uint32_t status = p.ctx[1].status;
  const Direction dir = call.response_type != 0xff ? Direction::kToClient : Direction::kToServer;
  File& f = files_[p.file];
  JsonWriter& w = sink_->Begin("smb", dir);
  w.ObjectBegin("smb");
  WriteCommon(w, next_tx_id_++, ctx.version, ctx.command, status_set, status, false, 0,
              ctx.session_id, ctx.tree_id);
  w.ObjectBegin("dcerpc");
  // Suricata's SMB layer keeps the bind_ack result of each context but never its reason (it
  // logs 0); the DCE-RPC over TCP parser does log it. Match the SMB behaviour.
  DcerpcCall copy = call;
  for (DcerpcInterface& i : copy.interfaces) i.ack_reason = 0;
  p.conn.WriteCallJson(copy, w);
  w.ObjectEnd();
  w.ObjectEnd();
  TextBuilder& t = sink_->message();
  AppendPrefix(t, ctx.version, ctx.command, status_set, status, false, 0);
  const std::string_view share = FileShare(f);
  if (!share.empty()) t.Append(' ').Append(share);
  if (!f.name.empty()) t.Append(' ').Append(f.name.view());
  t.Append(" DCERPC ");
  p.conn.AppendCallMessage(call, t);
  sink_->Commit();
}

// ---------------------------------------------------------------------------------------------
// Events.

void SmbParser::Anomaly(Direction dir, const char* event) noexcept {
  if (sink_ == nullptr) return;
  if (anomalies_ >= kSmbMaxAnomalies) {
    ++anomalies_suppressed_;
    return;
  }
  ++anomalies_;
  EmitAnomaly(*sink_, dir, AppProto::kSmb, event);
}

void SmbParser::WriteCommon(JsonWriter& w, uint64_t id, uint8_t version, uint16_t command,
                            bool status_set, uint32_t status, bool dos_error, uint8_t err_class,
                            uint64_t session_id, uint32_t tree_id) noexcept {
  char buf[48];
  w.Uint("id", id);
  if (dialect_ != 0) {
    const char* d = Smb2DialectName(dialect_);
    if (d != nullptr) {
      w.Str("dialect", d);
    } else {
      std::snprintf(buf, sizeof buf, "%u", dialect_);
      w.Str("dialect", buf);
    }
  } else if (!smb1_dialect_.empty()) {
    w.Str("dialect", smb1_dialect_.view());
  } else {
    w.Str("dialect", "unknown");
  }
  if (version == 1 || version == 2) {
    const char* c =
        version == 1 ? Smb1CommandName(static_cast<uint8_t>(command)) : Smb2CommandName(command);
    if (c != nullptr) {
      w.Str("command", c);
    } else {
      std::snprintf(buf, sizeof buf, "%u", command);
      w.Str("command", buf);
    }
  }
  if (status_set) {
    if (!dos_error) {
      const char* s = SmbNtStatusName(status);
      if (s != nullptr) {
        w.Str("status", s);
      } else {
        std::snprintf(buf, sizeof buf, "%u", status);
        w.Str("status", buf);
      }
      std::snprintf(buf, sizeof buf, "0x%x", status);
      w.Str("status_code", buf);
    } else {
      const uint16_t code = static_cast<uint16_t>(status);
      const char* s = err_class == 1   ? DosErrorName(code)
                      : err_class == 2 ? SrvErrorName(code)
                                       : nullptr;
      if (s != nullptr) {
        w.Str("status", s);
      } else if (err_class == 1 || err_class == 2) {
        std::snprintf(buf, sizeof buf, "%u", code);
        w.Str("status", buf);
      } else {
        std::snprintf(buf, sizeof buf, "UNKNOWN_%02x_%04x", err_class, code);
        w.Str("status", buf);
      }
      std::snprintf(buf, sizeof buf, "0x%04x", code);
      w.Str("status_code", buf);
    }
  }
  w.Uint("session_id", session_id);
  w.Uint("tree_id", tree_id);
}

void SmbParser::AppendPrefix(TextBuilder& t, uint8_t version, uint16_t command, bool status_set,
                             uint32_t status, bool dos_error, uint8_t err_class) noexcept {
  t.Append(version == 1 ? "SMB1 " : "SMB2 ");
  const char* c =
      version == 1 ? Smb1CommandName(static_cast<uint8_t>(command)) : Smb2CommandName(command);
  if (c != nullptr) {
    t.Append(ShortCommand(c));
  } else {
    t.Append("command ").AppendUint(command);
  }
  t.Append(' ');
  if (!status_set) {
    t.Append("no-response");
  } else if (dos_error) {
    if (err_class == 0 && status == 0) {
      t.Append("success");
    } else {
      t.Append("error class ").AppendUint(err_class).Append(" code ").AppendUint(status & 0xFFFF);
    }
  } else if (status == 0) {
    t.Append("success");
  } else if (const char* s = SmbNtStatusName(status)) {
    t.Append(s);
  } else {
    t.Append("status ").AppendHex32(status);
  }
}

void SmbParser::AppendTreePath(TextBuilder& t, uint64_t session_id, uint32_t tree_id) noexcept {
  if (const Tree* tr = FindTree(session_id, tree_id)) {
    if (!tr->share.empty()) t.Append(' ').Append(tr->share.view());
  }
}

void SmbParser::EmitEncrypted(Direction dir, uint64_t session_id, bool compressed) noexcept {
  JsonWriter& w = sink_->Begin("smb", dir);
  w.ObjectBegin("smb");
  WriteCommon(w, next_tx_id_++, 0, 0, false, 0, false, 0, session_id, 0);
  w.Bool(compressed ? "compressed" : "encrypted", true);
  w.ObjectEnd();
  TextBuilder& t = sink_->message();
  if (compressed) {
    t.Append("SMB3 COMPRESSED messages (not decompressed)");
  } else {
    t.Append("SMB3 ENCRYPTED session ").AppendUint(session_id).Append(" (not decrypted)");
  }
  sink_->Commit();
}

void SmbParser::EmitTx(const Tx& tx, Direction dir) noexcept {
  JsonWriter& w = sink_->Begin("smb", dir);
  w.ObjectBegin("smb");
  WriteCommon(w, tx.id, tx.version, tx.command, tx.status_set, tx.status, tx.dos_error,
              tx.err_class, tx.session_id, tx.tree_id);
  TextBuilder& t = sink_->message();
  AppendPrefix(t, tx.version, tx.command, tx.status_set, tx.status, tx.dos_error, tx.err_class);
  const std::string_view name =
      tx.name_slot >= 0 ? names_[tx.name_slot].view() : std::string_view();
  char fuid[37];
  FormatSmbFuid({tx.fuid, tx.fuid_len}, fuid);
  switch (tx.kind) {
    case TxKind::kNegotiate: {
      const NegotiateInfo* n = tx.aux_slot >= 0 ? &negotiate_[tx.aux_slot] : nullptr;
      w.ArrayBegin("client_dialects");
      if (n != nullptr) {
        for (int i = 0; i < n->count; ++i) w.Str("", n->dialects[i].view());
      }
      w.ArrayEnd();
      char guid[37];
      if (n != nullptr && n->has_client_guid) {
        FormatSmbFuid({n->client_guid, 16}, guid);
        w.Str("client_guid", guid);
      }
      if (n != nullptr && n->has_server_guid) {
        FormatSmbFuid({n->server_guid, 16}, guid);
        w.Str("server_guid", guid);
      } else {
        w.Str("server_guid", "");
      }
      if (max_read_size_ > 0) w.Uint("max_read_size", max_read_size_);
      if (max_write_size_ > 0) w.Uint("max_write_size", max_write_size_);
      if (dialect_ != 0 && Smb2DialectName(dialect_) != nullptr) {
        t.Append(" dialect ").Append(Smb2DialectName(dialect_));
      } else if (!smb1_dialect_.empty()) {
        t.Append(" dialect ").Append(smb1_dialect_.view());
      }
      break;
    }
    case TxKind::kSessionSetup: {
      const AuthInfo* a = tx.aux_slot >= 0 ? &auth_[tx.aux_slot] : nullptr;
      if (a != nullptr) {
        if (a->has_ntlmssp) {
          w.ObjectBegin("ntlmssp");
          WriteNtlmsspJson(a->ntlmssp, w);
          w.ObjectEnd();
          t.Append(' ');
          AppendNtlmsspMessage(a->ntlmssp, t);
        }
        if (a->has_challenge) {
          // Not under `ntlmssp`: Suricata's smb.ntlmssp is the client's AUTHENTICATE only.
          w.ObjectBegin("ntlmssp_challenge");
          WriteNtlmsspJson(a->ntlmssp, w);
          w.ObjectEnd();
        }
        if (a->has_krb5) {
          w.ObjectBegin("kerberos");
          w.Str("realm", a->krb5.realm.view());
          w.ArrayBegin("snames");
          std::string_view s = a->krb5.sname.view();
          while (!s.empty()) {
            const size_t slash = s.find('/');
            w.Str("", s.substr(0, slash));
            if (slash == std::string_view::npos) break;
            s.remove_prefix(slash + 1);
          }
          w.ArrayEnd();
          w.ObjectEnd();
          t.Append(' ');
          AppendKrb5Message(a->krb5, t);
        }
        if (a->has_req_host) {
          w.ObjectBegin("request");
          w.Str("native_os", a->req_os.view());
          w.Str("native_lm", a->req_lm.view());
          w.ObjectEnd();
        }
        if (a->has_resp_host) {
          w.ObjectBegin("response");
          w.Str("native_os", a->resp_os.view());
          w.Str("native_lm", a->resp_lm.view());
          w.ObjectEnd();
        }
      }
      break;
    }
    case TxKind::kTreeConnect: {
      w.Str(tx.is_pipe ? "named_pipe" : "share", name);
      if (tx.version == 1) {
        w.ObjectBegin("service");
        if (!tx.service_req.empty()) w.Str("request", tx.service_req.view());
        if (!tx.service_resp.empty()) w.Str("response", tx.service_resp.view());
        w.ObjectEnd();
        if (!tx.native_fs.empty()) w.Str("native_file_system", tx.native_fs.view());
      } else {
        static constexpr const char* kTypes[] = {"UNKNOWN", "FILE", "PIPE", "PRINT"};
        w.Str("share_type", kTypes[tx.share_type <= 3 ? tx.share_type : 0]);
      }
      if (!name.empty()) t.Append(' ').Append(name);
      if (tx.is_pipe) t.Append(" (IPC)");
      break;
    }
    case TxKind::kCreate: {
      if (name.empty()) {
        w.Str("filename", "<share_root>");  // Zeek's name for the share's root
      } else {
        w.Str(tx.directory ? "directory" : "filename", name);
      }
      w.Str("disposition", DispositionName(tx.disposition));
      w.Str("access", tx.delete_on_close ? "delete on close" : "normal");
      w.Uint("created", smb_detail::FiletimeToUnix(tx.created));
      w.Uint("accessed", smb_detail::FiletimeToUnix(tx.accessed));
      w.Uint("modified", smb_detail::FiletimeToUnix(tx.modified));
      w.Uint("changed", smb_detail::FiletimeToUnix(tx.changed));
      w.Uint("size", tx.size);
      w.Str("fuid", fuid);
      if ((tx.created | tx.accessed | tx.modified | tx.changed) != 0) {
        // The same times at full FILETIME precision (the integers above are Suricata's).
        w.ObjectBegin("times");
        char ts[kFiletimeTextLen + 1];
        if (FormatFiletime(tx.created, ts) != 0) w.Str("created", ts);
        if (FormatFiletime(tx.accessed, ts) != 0) w.Str("accessed", ts);
        if (FormatFiletime(tx.modified, ts) != 0) w.Str("modified", ts);
        if (FormatFiletime(tx.changed, ts) != 0) w.Str("changed", ts);
        w.ObjectEnd();
      }
      AppendTreePath(t, tx.session_id, tx.tree_id);
      t.Append(' ').Append(name.empty() ? std::string_view("<share_root>") : name);
      if (tx.is_pipe) t.Append(" (pipe)");
      if (tx.directory) t.Append(" (directory)");
      if (tx.delete_on_close) t.Append(" (delete on close)");
      break;
    }
    case TxKind::kIoctl: {
      const char* f = SmbFsctlName(tx.ctl_code);
      char buf[16];
      if (f == nullptr) {
        std::snprintf(buf, sizeof buf, "%u", tx.ctl_code);
        f = buf;
      }
      w.Str("function", f);
      t.Append(' ').Append(f);
      break;
    }
    case TxKind::kRename: {
      const std::string_view from =
          tx.aux_slot >= 0 ? names_[tx.aux_slot].view() : std::string_view("<unknown>");
      if (tx.version == 2) {
        w.ObjectBegin("set_info");
        w.Str("class", "FILE_INFO");
        w.Str("info_level", "SMB2_FILE_RENAME_INFO");
        w.ObjectEnd();
      }
      w.ObjectBegin("rename");
      w.Str("from", from);
      w.Str("to", name);
      w.ObjectEnd();
      w.Str("fuid", fuid);
      t.Append(" rename ").Append(from).Append(" to ").Append(name);
      break;
    }
    case TxKind::kDisposition: {
      w.Str("filename", name.empty() ? std::string_view("<share_root>") : name);
      w.Str("access", tx.delete_on_close ? "delete on close" : "normal");
      if (tx.version == 1) {
        w.Str("subcmd",
              tx.command == 0x32 && tx.info_level == 6 ? "SET_PATH_INFO" : "SET_FILE_INFO");
        w.Str("level_of_interest", "Set Disposition Information");
      }
      w.Str("fuid", fuid);
      t.Append(tx.delete_on_close ? " delete " : " undelete ").Append(name);
      break;
    }
    case TxKind::kGeneric:
    case TxKind::kRead:
    case TxKind::kTrans:
      if (!name.empty()) {
        AppendTreePath(t, tx.session_id, tx.tree_id);
        t.Append(' ').Append(name);
      }
      break;
  }
  w.ObjectEnd();
  sink_->Commit();
  // The signature engine: smb.share / smb.named_pipe, the tree a client connects to (as the
  // event's share or named_pipe).
  if (tx.kind == TxKind::kTreeConnect && !name.empty() && sink_->inspecting()) {
    rules::Buffers b;
    b.Set(tx.is_pipe ? rules::Buffer::kSmbNamedPipe : rules::Buffer::kSmbShare,
          {reinterpret_cast<const uint8_t*>(name.data()), name.size()});
    sink_->Inspect(Direction::kToServer, b);
  }
}

}  // namespace vigil::proto
