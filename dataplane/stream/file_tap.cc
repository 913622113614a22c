#include "dataplane/stream/file_tap.h"

#include <cstdio>
#include <cstring>

namespace vigil::dp {
namespace {

uint64_t Mix(uint64_t h) noexcept {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

uint64_t KeyHash(const FileKey& k) noexcept {
  uint64_t h = Mix(k.flow_id) ^ Mix(k.session_id + k.direction);
  uint64_t a = 0, b = 0;
  std::memcpy(&a, k.fuid, 8);
  std::memcpy(&b, k.fuid + 8, 8);
  return Mix(h ^ Mix(a) ^ (b * 0x9e3779b97f4a7c15ull));
}

char Lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

}  // namespace

FileTap::FileTap(const FilesConfig& config, uint16_t worker, EventRing* ring, const Context* ctx)
    : worker_(worker),
      max_file_bytes_(uint64_t{config.max_file_mb} << 20),
      ring_(ring),
      ctx_(ctx),
      table_(kFileTapSlots) {
  for (const std::string& e : config.extensions) extensions_.push_back("." + e);
  for (Entry& e : table_) e.used = false;
}

bool FileTap::Wanted(std::string_view name) const noexcept {
  if (extensions_.empty()) return true;
  for (const std::string& ext : extensions_) {
    if (name.size() < ext.size()) continue;
    const std::string_view tail = name.substr(name.size() - ext.size());
    bool eq = true;
    for (size_t i = 0; i < ext.size() && eq; ++i) eq = Lower(tail[i]) == ext[i];
    if (eq) return true;
  }
  return false;
}

bool FileTap::MakeKey(const proto::SmbFileRef& file, FileKey* key) const noexcept {
  AppEventHeader h;
  // Only the flow id is needed per chunk; the identity call is a few stores.
  if (ctx_ == nullptr || !ctx_->FileIdentity(&h)) return false;
  std::memset(key, 0, sizeof *key);
  key->flow_id = h.flow_id;
  key->session_id = file.session_id;
  const size_t n = file.fuid_len <= 16 ? file.fuid_len : 16;
  std::memcpy(key->fuid, file.fuid, n);
  key->fuid_len = static_cast<uint8_t>(n);
  key->direction = static_cast<uint8_t>(file.dir);
  key->worker = worker_;
  key->tree_id = file.tree_id;
  return true;
}

FileTap::Entry* FileTap::Find(const FileKey& key) noexcept {
  const uint64_t h = KeyHash(key);
  for (uint32_t i = 0; i < kFileTapProbe; ++i) {
    Entry& e = table_[(h + i) & (kFileTapSlots - 1)];
    if (e.used && e.key == key) {
      e.age = ++clock_;
      return &e;
    }
  }
  return nullptr;
}

FileTap::Entry* FileTap::Open(const proto::SmbFileRef& file, const FileKey& key) noexcept {
  const uint64_t h = KeyHash(key);
  Entry* slot = nullptr;
  for (uint32_t i = 0; i < kFileTapProbe; ++i) {
    Entry& e = table_[(h + i) & (kFileTapSlots - 1)];
    if (!e.used) {
      slot = &e;
      break;
    }
    if (slot == nullptr || e.age < slot->age) slot = &e;
  }
  if (slot->used) ++counters_.evicted;
  slot->key = key;
  slot->seen_end = 0;
  slot->flags = Wanted(file.name) ? 0 : kFileNotStored;
  slot->age = ++clock_;
  slot->used = true;
  ++counters_.files;
  if ((slot->flags & kFileNotStored) != 0) ++counters_.not_wanted;
  if (!PushMeta(kEventFileOpen, file, key, slot)) ++counters_.meta_dropped;
  return slot;
}

bool FileTap::PushMeta(uint32_t kind, const proto::SmbFileRef& file, const FileKey& key,
                       const Entry* e) noexcept {
  if (ring_ == nullptr) return false;
  const std::string_view name = file.name.size() <= 0xffff ? file.name : std::string_view();
  const std::string_view share = file.share.size() <= 0xffff ? file.share : std::string_view();
  const std::string_view context = kind == kEventFileClose ? SmbContext(file) : std::string_view();
  const uint32_t size =
      static_cast<uint32_t>(sizeof(FileMetaRecord) + name.size() + share.size() + context.size());
  uint8_t* p = ring_->Reserve(size);
  if (p == nullptr) return false;
  FileMetaRecord r;
  std::memset(&r, 0, sizeof r);
  r.key = key;
  ctx_->FileIdentity(&r.event);
  r.event.direction = static_cast<uint8_t>(file.dir);
  r.tx_id = file.tx_id;
  r.seen_end = e != nullptr ? e->seen_end : 0;
  r.file_size = file.file_size;
  r.flags = e != nullptr ? e->flags : (Wanted(file.name) ? 0 : kFileNotStored);
  if (file.closed) r.flags |= kFileClosed;
  if (file.size_known) r.flags |= kFileSizeKnown;
  r.name_len = static_cast<uint16_t>(name.size());
  r.share_len = static_cast<uint16_t>(share.size());
  r.context_len = static_cast<uint16_t>(context.size());
  std::memcpy(p, &r, sizeof r);
  uint8_t* q = p + sizeof r;
  if (!name.empty()) std::memcpy(q, name.data(), name.size());
  q += name.size();
  if (!share.empty()) std::memcpy(q, share.data(), share.size());
  q += share.size();
  if (!context.empty()) std::memcpy(q, context.data(), context.size());
  ring_->Commit(kind, size);
  return true;
}

void FileTap::PushGap(const FileKey& key, uint64_t offset, uint64_t n) noexcept {
  FileDataRecord r;
  std::memset(&r, 0, sizeof r);
  r.key = key;
  r.offset = offset;
  r.length = n > UINT32_MAX ? UINT32_MAX : static_cast<uint32_t>(n);
  if (ring_ == nullptr ||
      !ring_->Push(kEventFileGap, {reinterpret_cast<const uint8_t*>(&r), sizeof r})) {
    ++counters_.meta_dropped;
  }
}

void FileTap::OnFileData(const proto::SmbFileRef& file, uint64_t offset,
                         std::span<const uint8_t> data) noexcept {
  FileKey key;
  if (data.empty() || !MakeKey(file, &key)) return;
  Entry* e = Find(key);
  if (e == nullptr) e = Open(file, key);
  const uint64_t end = offset + data.size();
  if (end > e->seen_end) e->seen_end = end;
  if ((e->flags & kFileNotStored) != 0) return;
  if (end > max_file_bytes_) {
    if ((e->flags & kFileTruncated) == 0) ++counters_.truncated;
    e->flags |= kFileTruncated;
    if (offset >= max_file_bytes_) return;
    data = data.first(max_file_bytes_ - offset);
  }
  while (!data.empty()) {
    const uint32_t n =
        data.size() < kFileChunkBytes ? static_cast<uint32_t>(data.size()) : kFileChunkBytes;
    uint8_t* p = ring_ != nullptr ? ring_->Reserve(sizeof(FileDataRecord) + n) : nullptr;
    if (p == nullptr) {
      // The range becomes a gap: the exporter sees it uncovered and the close says why.
      ++counters_.chunks_dropped;
      e->flags |= kFileRingLoss;
    } else {
      FileDataRecord r;
      std::memset(&r, 0, sizeof r);
      r.key = key;
      r.offset = offset;
      r.length = n;
      std::memcpy(p, &r, sizeof r);
      std::memcpy(p + sizeof r, data.data(), n);
      ring_->Commit(kEventFileData, sizeof(FileDataRecord) + n);
      ++counters_.chunks;
      counters_.bytes += n;
    }
    offset += n;
    data = data.subspan(n);
  }
}

void FileTap::OnFileGap(const proto::SmbFileRef& file, uint64_t offset, uint32_t n) noexcept {
  FileKey key;
  if (n == 0 || !MakeKey(file, &key)) return;
  Entry* e = Find(key);
  if (e == nullptr) e = Open(file, key);
  ++counters_.gaps;
  e->flags |= kFileGapSeen;
  const uint64_t end = offset + n;
  if (end > e->seen_end) e->seen_end = end;
  if ((e->flags & kFileNotStored) != 0 || offset >= max_file_bytes_) return;
  PushGap(key, offset, (end < max_file_bytes_ ? end : max_file_bytes_) - offset);
}

void FileTap::OnFileClose(const proto::SmbFileRef& file) noexcept {
  FileKey key;
  if (!MakeKey(file, &key)) return;
  Entry* e = Find(key);
  if (e == nullptr) ++counters_.files;  // no data was seen (an empty read or write)
  if (!PushMeta(kEventFileClose, file, key, e)) ++counters_.meta_dropped;
  if (e != nullptr) e->used = false;
}

std::string_view FileTap::SmbContext(const proto::SmbFileRef& file) noexcept {
  proto::JsonWriter w(context_, sizeof context_);
  char buf[48];
  w.ObjectBegin("smb");
  w.Uint("id", file.tx_id);
  if (file.dialect != 0) {
    const char* d = proto::Smb2DialectName(file.dialect);
    if (d == nullptr) {
      std::snprintf(buf, sizeof buf, "%u", file.dialect);
      d = buf;
    }
    w.Str("dialect", d);
  } else {
    w.Str("dialect", file.smb1_dialect.empty() ? std::string_view("unknown") : file.smb1_dialect);
  }
  if (file.version == 1 || file.version == 2) {
    const char* c = file.version == 1 ? proto::Smb1CommandName(static_cast<uint8_t>(file.command))
                                      : proto::Smb2CommandName(file.command);
    if (c == nullptr) {
      std::snprintf(buf, sizeof buf, "%u", file.command);
      c = buf;
    }
    w.Str("command", c);
  }
  if (file.status_set) {
    const char* s = proto::SmbNtStatusName(file.status);
    if (s == nullptr) {
      std::snprintf(buf, sizeof buf, "%u", file.status);
      s = buf;
    }
    w.Str("status", s);
    std::snprintf(buf, sizeof buf, "0x%x", file.status);
    w.Str("status_code", buf);
  }
  w.Uint("session_id", file.session_id);
  w.Uint("tree_id", file.tree_id);
  // As the parser's own transfer event: a read of a file whose open was missed is "<unknown>".
  w.Str("filename", file.name.empty() && file.dir == proto::Direction::kToClient
                        ? std::string_view("<unknown>")
                        : file.name);
  w.Str("share", file.share);
  char fuid[37];
  proto::FormatSmbFuid({file.fuid, file.fuid_len}, fuid);
  w.Str("fuid", fuid);
  w.ObjectEnd();
  return w.view();
}

}  // namespace vigil::dp
