#include "dataplane/export/channel_client.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <thread>

#include "dataplane/export/channel_proto.h"

namespace vigil::dp {
namespace {

namespace ch = vigil::channel;

constexpr uint32_t kStateMagic = 0x534A4356;  // "VCJS"
constexpr size_t kStateSlot = 32;
constexpr size_t kReadChunk = 256u << 10;
constexpr size_t kSocketReadChunk = 64u << 10;
// Server frames are WELCOME, ACK and short ERROR texts.
constexpr uint32_t kMaxServerBody = 4096;

std::string SegmentPath(const std::string& dir, uint64_t first_seq) {
  char name[48];
  std::snprintf(name, sizeof(name), "/seg-%020" PRIu64 ".vcj", first_seq);
  return dir + name;
}

bool ParseSegmentName(const char* name, uint64_t* first_seq) {
  // seg-<20 digits>.vcj
  if (std::strlen(name) != 28 || std::strncmp(name, "seg-", 4) != 0 ||
      std::strcmp(name + 24, ".vcj") != 0) {
    return false;
  }
  uint64_t v = 0;
  for (int i = 4; i < 24; ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
    v = v * 10 + static_cast<uint64_t>(name[i] - '0');
  }
  *first_seq = v;
  return true;
}

bool WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool ReadWholeFile(const std::string& path, std::vector<uint8_t>* out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return false;
  }
  out->resize(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < out->size()) {
    const ssize_t r = ::pread(fd, out->data() + got, out->size() - got, static_cast<off_t>(got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += static_cast<size_t>(r);
  }
  out->resize(got);
  ::close(fd);
  return true;
}

std::string Errno(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

}  // namespace

ChannelClient::ChannelClient(const ChannelClientOptions& options) : options_(options) {
  uint64_t seed = options.jitter_seed;
  if (seed == 0) {
    seed = 1469598103934665603ull;  // FNV-1a of the sensor: sensors spread their retries
    for (char c : options.sensor) seed = (seed ^ static_cast<uint8_t>(c)) * 1099511628211ull;
  }
  rng_ = seed | 1;
}

std::unique_ptr<ChannelClient> ChannelClient::Open(const ChannelClientOptions& options,
                                                   std::string* error) {
  if (!ch::ValidSensorName(options.sensor)) {
    *error = "channel: sensor name '" + options.sensor +
             "' must be 1..255 printable characters without spaces or '/'";
    return nullptr;
  }
  if (options.max_payload + ch::kEventFixed > ch::kMaxFrameBody) {
    *error = "channel: max_payload above the frame limit " + std::to_string(ch::kMaxFrameBody);
    return nullptr;
  }
  if (options.segment_bytes < ch::kHeaderBytes + ch::kEventFixed + options.max_payload ||
      options.journal_max_bytes < 2 * options.segment_bytes) {
    *error =
        "channel: segment_bytes must hold the largest event and journal_max_bytes two segments";
    return nullptr;
  }
  std::unique_ptr<ChannelClient> c(new ChannelClient(options));
  *error = c->Recover();
  if (!error->empty()) return nullptr;
  return c;
}

ChannelClient::~ChannelClient() { Close(); }

uint64_t ChannelClient::Now() const {
  if (options_.now_ms) return options_.now_ms();
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

std::string ChannelClient::Recover() {
  const std::string& dir = options_.journal_dir;
  // mkdir -p
  for (size_t i = 1; i <= dir.size(); ++i) {
    if (i == dir.size() || dir[i] == '/') {
      const std::string part = dir.substr(0, i);
      if (::mkdir(part.c_str(), 0750) != 0 && errno != EEXIST) return Errno("mkdir", part);
    }
  }
  // The journal belongs to one sensor: replaying another sensor's seqs would corrupt both.
  const std::string sensor_path = dir + "/sensor";
  std::vector<uint8_t> name;
  if (ReadWholeFile(sensor_path, &name)) {
    const std::string have(name.begin(), name.end());
    if (have != options_.sensor) {
      return "channel: journal " + dir + " belongs to sensor '" + have + "', not '" +
             options_.sensor + "'";
    }
  } else {
    const int fd = ::open(sensor_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) return Errno("create", sensor_path);
    const bool ok = WriteAll(fd, options_.sensor.data(), options_.sensor.size());
    ::fsync(fd);
    ::close(fd);
    if (!ok) return Errno("write", sensor_path);
  }

  // State: the valid slot with the higher generation.
  uint64_t state_next = 1;
  uint64_t state_acked = 0;
  bool have_state = false;
  const std::string state_path = dir + "/state";
  state_fd_ = ::open(state_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (state_fd_ < 0) return Errno("open", state_path);
  uint8_t slots[2 * kStateSlot] = {};
  const ssize_t got = ::pread(state_fd_, slots, sizeof slots, 0);
  for (int k = 0; k < 2 && got > 0; ++k) {
    const uint8_t* s = slots + k * kStateSlot;
    if (static_cast<size_t>(got) < (k + 1) * kStateSlot || ch::GetU32(s) != kStateMagic) continue;
    if (ch::Crc32c(0, s + 8, kStateSlot - 8) != ch::GetU32(s + 4)) continue;
    const uint64_t gen = ch::GetU64(s + 8);
    if (have_state && gen <= state_generation_) continue;
    have_state = true;
    state_generation_ = gen;
    state_next = ch::GetU64(s + 16);
    state_acked = ch::GetU64(s + 24);
  }

  // Segments, oldest first; each is walked frame by frame and cut at the first bad frame (a
  // torn write after a host crash).
  std::vector<uint64_t> firsts;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return Errno("opendir", dir);
  while (dirent* e = ::readdir(d)) {
    uint64_t first = 0;
    if (ParseSegmentName(e->d_name, &first)) firsts.push_back(first);
  }
  ::closedir(d);
  std::sort(firsts.begin(), firsts.end());
  uint64_t last_seq = 0;
  std::vector<uint8_t> data;
  for (uint64_t first : firsts) {
    Segment seg;
    seg.first_seq = first;
    seg.path = SegmentPath(dir, first);
    if (!ReadWholeFile(seg.path, &data)) return Errno("read", seg.path);
    size_t off = 0;
    while (off < data.size()) {
      ch::Frame f;
      const auto st =
          ch::DecodeFrame(std::span<const uint8_t>(data).subspan(off), ch::kMaxFrameBody, &f);
      if (st != ch::DecodeStatus::kFrame || f.type != ch::FrameType::kEvent || f.seq <= last_seq ||
          f.seq < first) {
        break;
      }
      last_seq = f.seq;
      seg.last_seq = f.seq;
      off += f.size;
    }
    if (off < data.size()) {
      ++counters_.journal_errors;
      std::fprintf(stderr, "vigil: channel journal %s: dropping %zu bytes of torn tail\n",
                   seg.path.c_str(), data.size() - off);
      if (::truncate(seg.path.c_str(), static_cast<off_t>(off)) != 0) {
        return Errno("truncate", seg.path);
      }
    }
    seg.bytes = off;
    segments_.push_back(seg);
  }
  uint64_t next = std::max<uint64_t>(last_seq + 1, state_next);
  // An empty newest segment still tells the seq it was started for.
  if (!segments_.empty()) next = std::max(next, segments_.back().first_seq);
  counters_.next_seq = std::max<uint64_t>(next, 1);
  uint64_t acked = have_state ? state_acked : 0;
  if (!have_state && !segments_.empty()) {
    for (const Segment& s : segments_) {
      if (s.last_seq != 0) {
        acked = s.first_seq - 1;
        break;
      }
    }
  }
  counters_.acked_seq = std::min(acked, counters_.next_seq - 1);
  for (const Segment& s : segments_) counters_.journal_bytes += s.bytes;
  Trim();

  if (segments_.empty() || segments_.back().bytes >= options_.segment_bytes) {
    if (!StartSegment(counters_.next_seq))
      return Errno("create", SegmentPath(dir, counters_.next_seq));
  } else {
    append_fd_ = ::open(segments_.back().path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (append_fd_ < 0) return Errno("open", segments_.back().path);
  }
  counters_.journal_events = counters_.next_seq - 1 - counters_.acked_seq;
  send_seq_ = counters_.acked_seq;
  WriteState(true);
  return "";
}

bool ChannelClient::StartSegment(uint64_t first_seq) {
  if (append_fd_ >= 0) ::close(append_fd_);
  append_fd_ = -1;
  // An empty newest segment (nothing written since it was started) is reused or replaced.
  if (!segments_.empty() && segments_.back().bytes == 0) {
    ::unlink(segments_.back().path.c_str());
    segments_.pop_back();
    if (send_segment_ >= segments_.size()) {
      send_segment_ = segments_.empty() ? 0 : segments_.size() - 1;
      send_offset_ = segments_.empty() ? 0 : segments_.back().bytes;
    }
  }
  Segment seg;
  seg.first_seq = first_seq;
  seg.path = SegmentPath(options_.journal_dir, first_seq);
  append_fd_ = ::open(seg.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0640);
  if (append_fd_ < 0) {
    ++counters_.journal_errors;
    return false;
  }
  segments_.push_back(seg);
  state_dirty_ = true;
  return true;
}

bool ChannelClient::Submit(std::string_view json) {
  ++counters_.submitted;
  if (closed_) {
    ++counters_.lost;
    return false;
  }
  if (json.size() > options_.max_payload) {
    ++counters_.lost;
    ++counters_.oversize;
    return false;
  }
  const uint64_t frame = ch::kHeaderBytes + ch::kEventFixed + json.size();
  if (counters_.journal_bytes + frame > options_.journal_max_bytes) {
    ++counters_.lost;
    return false;
  }
  if (append_fd_ < 0 || (segments_.back().bytes + wbuf_.size() > 0 &&
                         segments_.back().bytes + wbuf_.size() + frame > options_.segment_bytes)) {
    // Roll (or retry after a failed create). The journal_bytes check above already counts
    // the new frame, so rolling never exceeds the bound.
    if (!wbuf_.empty() && !FlushWriteBuffer()) {
      ++counters_.lost;
      return false;
    }
    if (!StartSegment(counters_.next_seq)) {
      ++counters_.lost;
      return false;
    }
  }
  if (wbuf_.empty()) {
    wbuf_first_seq_ = counters_.next_seq;
    wbuf_events_ = 0;
  }
  ch::AppendEvent(&wbuf_, counters_.next_seq, json);
  ++counters_.next_seq;
  ++wbuf_events_;
  ++counters_.journal_events;
  counters_.journal_bytes += frame;
  if (wbuf_.size() >= options_.write_buffer_bytes) FlushWriteBuffer();
  return true;
}

bool ChannelClient::FlushWriteBuffer() {
  if (wbuf_.empty()) return true;
  Segment& seg = segments_.back();
  if (append_fd_ < 0 || !WriteAll(append_fd_, wbuf_.data(), wbuf_.size())) {
    // Undo: cut a partial write and give the seqs back, so the journal stays contiguous.
    ++counters_.journal_errors;
    if (append_fd_ >= 0 && ::ftruncate(append_fd_, static_cast<off_t>(seg.bytes)) != 0) {
      // The segment now ends in a torn frame; recovery cuts it. Start a fresh one.
      ::close(append_fd_);
      append_fd_ = -1;
    }
    counters_.lost += wbuf_events_;
    counters_.journal_events -= wbuf_events_;
    counters_.journal_bytes -= wbuf_.size();
    counters_.next_seq = wbuf_first_seq_;
    wbuf_.clear();
    wbuf_events_ = 0;
    return false;
  }
  seg.bytes += wbuf_.size();
  seg.last_seq = counters_.next_seq - 1;
  wbuf_.clear();
  wbuf_events_ = 0;
  return true;
}

void ChannelClient::WriteState(bool force) {
  const uint64_t now = Now();
  if (!force && (!state_dirty_ || now - last_state_ms_ < options_.state_interval_ms)) return;
  if (state_fd_ < 0) return;
  uint8_t s[kStateSlot];
  ++state_generation_;
  ch::PutU32(s, kStateMagic);
  ch::PutU64(s + 8, state_generation_);
  // next_seq counts only what reached the journal file: unflushed events are not journalled.
  ch::PutU64(s + 16, counters_.next_seq - wbuf_events_);
  ch::PutU64(s + 24, counters_.acked_seq);
  ch::PutU32(s + 4, ch::Crc32c(0, s + 8, kStateSlot - 8));
  // Alternate slots so that a torn write leaves the other one intact.
  const off_t at = static_cast<off_t>((state_generation_ & 1) * kStateSlot);
  if (::pwrite(state_fd_, s, sizeof s, at) != static_cast<ssize_t>(sizeof s)) {
    ++counters_.journal_errors;
  }
  last_state_ms_ = now;
  state_dirty_ = false;
}

void ChannelClient::Trim() {
  size_t removed = 0;
  while (segments_.size() > 1) {
    const Segment& s = segments_.front();
    if (s.last_seq != 0 && s.last_seq > counters_.acked_seq) break;
    if (::unlink(s.path.c_str()) != 0 && errno != ENOENT) ++counters_.journal_errors;
    if (s.path == send_fd_path_ && send_fd_ >= 0) {
      ::close(send_fd_);
      send_fd_ = -1;
      send_fd_path_.clear();
    }
    counters_.journal_bytes -= s.bytes;
    ++counters_.segments_trimmed;
    segments_.pop_front();
    ++removed;
  }
  if (removed == 0) return;
  state_dirty_ = true;
  if (send_segment_ >= removed) {
    send_segment_ -= removed;
  } else {
    send_segment_ = 0;
    send_offset_ = 0;
  }
}

uint64_t ChannelClient::NextBackoff() {
  backoff_ms_ = backoff_ms_ == 0 ? options_.backoff_min_ms
                                 : std::min<uint64_t>(backoff_ms_ * 2, options_.backoff_max_ms);
  // xorshift64: jitter in [backoff/2, backoff] so that many sensors do not retry in lockstep.
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  const uint64_t half = backoff_ms_ / 2;
  return half + (half == 0 ? 0 : rng_ % (half + 1));
}

void ChannelClient::TryConnect(uint64_t now) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (options_.socket_path.size() >= sizeof(addr.sun_path)) {
    ++counters_.connect_failures;
    retry_at_ms_ = now + options_.backoff_max_ms;
    return;
  }
  std::memcpy(addr.sun_path, options_.socket_path.data(), options_.socket_path.size());
  sock_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (sock_ < 0) {
    ++counters_.connect_failures;
    retry_at_ms_ = now + NextBackoff();
    return;
  }
  if (::connect(sock_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    conn_ = Conn::kHandshake;
  } else if (errno == EINPROGRESS) {
    conn_ = Conn::kConnecting;  // completes when writable (stream sockets other than AF_UNIX)
  } else {
    // ENOENT/ECONNREFUSED: control is not there; EAGAIN: its backlog is full.
    ::close(sock_);
    sock_ = -1;
    ++counters_.connect_failures;
    retry_at_ms_ = now + NextBackoff();
    return;
  }
  rbuf_.clear();
  sbuf_.clear();
  sbuf_off_ = 0;
  sbuf_first_seq_ = sbuf_last_seq_ = 0;
  sbuf_frames_.clear();
  sbuf_counted_ = 0;
  ch::AppendHello(&sbuf_, options_.sensor, counters_.next_seq);
}

void ChannelClient::Disconnect(bool failed) {
  if (sock_ >= 0) ::close(sock_);
  sock_ = -1;
  conn_ = Conn::kIdle;
  counters_.connected = 0;
  rbuf_.clear();
  sbuf_.clear();
  sbuf_off_ = 0;
  sbuf_first_seq_ = sbuf_last_seq_ = 0;
  sbuf_frames_.clear();
  sbuf_counted_ = 0;
  if (failed) ++counters_.protocol_errors;
  retry_at_ms_ = Now() + NextBackoff();
}

bool ChannelClient::ReadSocket() {
  char buf[kSocketReadChunk];
  const ssize_t r = ::recv(sock_, buf, sizeof buf, 0);
  if (r > 0) {
    rbuf_.append(buf, static_cast<size_t>(r));
    return HandleFrames();
  }
  if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
    Disconnect(false);
    return false;
  }
  return true;
}

bool ChannelClient::HandleFrames() {
  size_t off = 0;
  while (off < rbuf_.size()) {
    ch::Frame f;
    const auto st = ch::DecodeFrame(
        std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(rbuf_.data()) + off,
                                 rbuf_.size() - off),
        kMaxServerBody, &f);
    if (st == ch::DecodeStatus::kNeedMore) break;
    if (st != ch::DecodeStatus::kFrame) {
      Disconnect(true);
      return false;
    }
    off += f.size;
    if (f.type == ch::FrameType::kWelcome && conn_ == Conn::kHandshake) {
      OnWelcome(f.seq);
    } else if (f.type == ch::FrameType::kAck && conn_ == Conn::kStreaming) {
      if (f.seq >= counters_.next_seq) {  // acks what we never numbered
        Disconnect(true);
        return false;
      }
      if (f.seq > counters_.acked_seq) {
        counters_.acked += f.seq - counters_.acked_seq;
        counters_.acked_seq = f.seq;
        counters_.journal_events = counters_.next_seq - 1 - counters_.acked_seq;
        state_dirty_ = true;
        Trim();
      }
      backoff_ms_ = 0;  // progress: the next failure retries quickly again
    } else if (f.type == ch::FrameType::kError) {
      std::fprintf(stderr, "vigil: channel: control closed the connection: %.*s\n",
                   static_cast<int>(std::min<size_t>(f.text.size(), 200)), f.text.data());
      Disconnect(true);
      return false;
    } else {
      Disconnect(true);
      return false;
    }
  }
  rbuf_.erase(0, off);
  return true;
}

void ChannelClient::OnWelcome(uint64_t committed) {
  conn_ = Conn::kStreaming;
  counters_.connected = 1;
  if (ever_connected_) ++counters_.reconnects;
  ever_connected_ = true;
  const uint64_t last = counters_.next_seq - 1;
  if (committed > last) {
    // Control holds seqs this journal never numbered: the journal was lost (wiped, or a host
    // crash ate its unsynced tail). New events must continue above them, or control would
    // drop them as duplicates. Unacknowledged journal events cannot be told apart from what
    // control holds, so they count as lost.
    FlushWriteBuffer();
    counters_.lost += counters_.next_seq - 1 - counters_.acked_seq;
    counters_.acked_seq = committed;
    counters_.next_seq = committed + 1;
    StartSegment(counters_.next_seq);
    Trim();
    WriteState(true);
  } else if (committed > counters_.acked_seq) {
    counters_.acked += committed - counters_.acked_seq;
    counters_.acked_seq = committed;
    state_dirty_ = true;
    Trim();
  }
  counters_.journal_events = counters_.next_seq - 1 - counters_.acked_seq;
  // Resend from what control has, even below our acked seq (a restored store).
  send_seq_ = committed;
  send_segment_ = 0;
  send_offset_ = 0;
  for (size_t i = 0; i < segments_.size(); ++i) {
    if (segments_[i].first_seq <= committed + 1) send_segment_ = i;
  }
}

bool ChannelClient::FillSendBuffer() {
  sbuf_.clear();
  sbuf_off_ = 0;
  sbuf_first_seq_ = sbuf_last_seq_ = 0;
  sbuf_frames_.clear();
  sbuf_counted_ = 0;
  while (sbuf_.size() < kReadChunk && send_segment_ < segments_.size()) {
    const Segment& seg = segments_[send_segment_];
    if (send_offset_ >= seg.bytes) {
      if (send_segment_ + 1 >= segments_.size()) break;  // caught up with the append end
      ++send_segment_;
      send_offset_ = 0;
      continue;
    }
    if (send_fd_path_ != seg.path) {
      if (send_fd_ >= 0) ::close(send_fd_);
      send_fd_ = ::open(seg.path.c_str(), O_RDONLY | O_CLOEXEC);
      send_fd_path_ = seg.path;
      if (send_fd_ < 0) {
        ++counters_.journal_errors;
        send_fd_path_.clear();
        send_offset_ = seg.bytes;  // skip an unreadable segment rather than stall on it
        continue;
      }
    }
    size_t want = static_cast<size_t>(std::min<uint64_t>(kReadChunk, seg.bytes - send_offset_));
    scratch_.resize(want);
    ssize_t r = ::pread(send_fd_, scratch_.data(), want, static_cast<off_t>(send_offset_));
    if (r >= static_cast<ssize_t>(ch::kHeaderBytes)) {
      // A frame larger than the chunk: read exactly that frame.
      const uint64_t need = ch::kHeaderBytes + ch::GetU32(scratch_.data() + 8);
      if (need > static_cast<uint64_t>(r) && need <= seg.bytes - send_offset_ &&
          need <= ch::kHeaderBytes + ch::kMaxFrameBody) {
        want = static_cast<size_t>(need);
        scratch_.resize(want);
        r = ::pread(send_fd_, scratch_.data(), want, static_cast<off_t>(send_offset_));
      }
    }
    if (r <= 0) {
      ++counters_.journal_errors;
      send_offset_ = seg.bytes;
      continue;
    }
    size_t off = 0;
    bool bad = false;
    while (off < static_cast<size_t>(r)) {
      ch::Frame f;
      const auto st = ch::DecodeFrame(
          std::span<const uint8_t>(scratch_.data() + off, static_cast<size_t>(r) - off),
          ch::kMaxFrameBody, &f);
      if (st == ch::DecodeStatus::kNeedMore) break;
      if (st != ch::DecodeStatus::kFrame || f.type != ch::FrameType::kEvent) {
        bad = true;
        break;
      }
      if (f.seq > send_seq_) {
        sbuf_.append(reinterpret_cast<const char*>(scratch_.data() + off), f.size);
        if (sbuf_first_seq_ == 0) sbuf_first_seq_ = f.seq;
        sbuf_last_seq_ = f.seq;
        send_seq_ = f.seq;
        sbuf_frames_.emplace_back(sbuf_.size(), f.seq);
      }
      off += f.size;
    }
    if (bad) {
      // Corrupted after recovery (disk error): skip the rest of this segment.
      ++counters_.journal_errors;
      send_offset_ = seg.bytes;
      continue;
    }
    if (off == 0) break;  // cannot happen for a recovered journal; never spin
    send_offset_ += off;
  }
  return !sbuf_.empty();
}

bool ChannelClient::WriteSocket() {
  bool ok = true;
  while (sbuf_off_ < sbuf_.size()) {
    const ssize_t w =
        ::send(sock_, sbuf_.data() + sbuf_off_, sbuf_.size() - sbuf_off_, MSG_NOSIGNAL);
    if (w > 0) {
      sbuf_off_ += static_cast<size_t>(w);
      poll_sent_ += static_cast<size_t>(w);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    ok = false;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    Disconnect(false);  // clears sbuf_ and its frames: nothing more to count
    return false;
  }
  for (; sbuf_counted_ < sbuf_frames_.size() && sbuf_frames_[sbuf_counted_].first <= sbuf_off_;
       ++sbuf_counted_) {
    const uint64_t seq = sbuf_frames_[sbuf_counted_].second;
    ++counters_.sent;
    if (seq <= max_sent_seq_) ++counters_.resent;
    max_sent_seq_ = std::max(max_sent_seq_, seq);
  }
  if (!ok) return false;
  sbuf_.clear();
  sbuf_off_ = 0;
  sbuf_frames_.clear();
  sbuf_counted_ = 0;
  sbuf_first_seq_ = sbuf_last_seq_ = 0;
  return true;
}

void ChannelClient::Poll() {
  if (closed_) return;
  const uint64_t now = Now();
  FlushWriteBuffer();
  if (conn_ == Conn::kIdle && now >= retry_at_ms_) TryConnect(now);
  if (conn_ == Conn::kConnecting) {
    pollfd p{sock_, POLLOUT, 0};
    if (::poll(&p, 1, 0) > 0) {
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(sock_, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        ++counters_.connect_failures;
        Disconnect(false);
      } else {
        conn_ = Conn::kHandshake;
      }
    }
  }
  if (conn_ == Conn::kHandshake || conn_ == Conn::kStreaming) {
    poll_sent_ = 0;
    WriteSocket();  // HELLO, or the rest of a partially written batch
    if (sock_ >= 0) ReadSocket();
    while (conn_ == Conn::kStreaming && sbuf_off_ == sbuf_.size() &&
           poll_sent_ < options_.max_send_bytes_per_poll && FillSendBuffer()) {
      if (!WriteSocket()) break;
    }
  }
  WriteState(false);
  if (options_.sync_interval_ms > 0 && now - last_sync_ms_ >= options_.sync_interval_ms) {
    if (append_fd_ >= 0) ::fdatasync(append_fd_);
    if (state_fd_ >= 0) ::fdatasync(state_fd_);
    last_sync_ms_ = now;
  }
}

bool ChannelClient::Drain(uint64_t timeout_ms) {
  // Wall time even with an injected clock: this is the one call that waits for real.
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    Poll();
    if (counters_.acked_seq + 1 >= counters_.next_seq) return true;
    if (std::chrono::steady_clock::now() >= until || closed_) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void ChannelClient::Close() {
  if (closed_) return;
  closed_ = true;
  FlushWriteBuffer();
  WriteState(true);
  if (append_fd_ >= 0) {
    ::fdatasync(append_fd_);
    ::close(append_fd_);
    append_fd_ = -1;
  }
  if (state_fd_ >= 0) {
    ::fdatasync(state_fd_);
    ::close(state_fd_);
    state_fd_ = -1;
  }
  // New and deleted segment names are directory entries: sync them too.
  const int dfd = ::open(options_.journal_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  if (send_fd_ >= 0) ::close(send_fd_);
  send_fd_ = -1;
  if (sock_ >= 0) ::close(sock_);
  sock_ = -1;
  conn_ = Conn::kIdle;
  counters_.connected = 0;
}

}  // namespace vigil::dp
