#include "control/channel/channel_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace vigil::ctl::channel {
namespace {

namespace ch = vigil::channel;

constexpr size_t kReadChunk = 256u << 10;
constexpr size_t kMaxOutput = 64u << 10;
constexpr int kMaxAcceptsPerPoll = 64;

}  // namespace

ChannelServer::ChannelServer(ServerOptions options, CommitFn commit, LastSeqFn last_seq)
    : options_(std::move(options)), commit_(std::move(commit)), last_seq_(std::move(last_seq)) {}

ChannelServer::~ChannelServer() { Close(); }

uint64_t ChannelServer::NowMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

std::string ChannelServer::Listen() {
  const std::string& path = options_.socket_path;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return "channel: socket path '" + path + "' is empty or longer than " +
           std::to_string(sizeof(addr.sun_path) - 1) + " bytes";
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return "channel: " + path + " exists and is not a socket";
    // A live control answers a connect: never steal its socket. Otherwise a previous control
    // left the file behind (after a crash) and it is replaced.
    const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const bool live =
        probe >= 0 && ::connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    if (probe >= 0) ::close(probe);
    if (live) return "channel: " + path + " is in use by another server";
    ::unlink(path.c_str());
  }
  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return std::string("channel: socket: ") + std::strerror(errno);
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::string err = "channel: bind " + path + ": " + std::strerror(errno);
    ::close(listen_fd_);
    listen_fd_ = -1;
    return err;
  }
  bound_ = true;
  // Before listen(): until then a connect is refused, so no client sees the umask's mode.
  if (::chmod(path.c_str(), options_.socket_mode) != 0 || ::listen(listen_fd_, 128) != 0) {
    std::string err = "channel: chmod/listen " + path + ": " + std::strerror(errno);
    Close();
    return err;
  }
  return "";
}

void ChannelServer::Adopt(int fd) {
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  auto c = std::make_unique<Conn>();
  c->fd = fd;
  c->id = next_id_++;
  c->opened_ms = NowMs();
  conns_.push_back(std::move(c));
  ++stats_.accepted;
  stats_.active = conns_.size();
}

void ChannelServer::Accept() {
  for (int i = 0; i < kMaxAcceptsPerPoll; ++i) {
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or a transient error: the next Poll retries
    if (conns_.size() >= options_.max_clients) {
      ++stats_.rejected;
      ::close(fd);
      continue;
    }
    Adopt(fd);
  }
}

size_t ChannelServer::Poll(int timeout_ms) {
  std::vector<pollfd> fds;
  fds.reserve(conns_.size() + 1);
  if (listen_fd_ >= 0) fds.push_back(pollfd{listen_fd_, POLLIN, 0});
  const size_t base = fds.size();
  for (const auto& c : conns_) {
    fds.push_back(
        pollfd{c->fd, static_cast<short>(POLLIN | (c->wbuf.size() > c->woff ? POLLOUT : 0)), 0});
  }
  const int n = ::poll(fds.data(), fds.size(), timeout_ms);
  const uint64_t before = stats_.records;
  if (n > 0) {
    // Connections accepted below are served from the next Poll() on.
    const size_t served = conns_.size();
    for (size_t i = 0; i < served; ++i) {
      Conn& c = *conns_[i];
      const short re = fds[base + i].revents;
      if (c.dead || re == 0) continue;
      if (re & POLLOUT) Flush(c);
      if (!c.dead && (re & (POLLIN | POLLHUP | POLLERR))) Serve(c);
    }
    if (base == 1 && (fds[0].revents & POLLIN)) Accept();
  }
  const uint64_t now = NowMs();
  for (auto& c : conns_) {
    if (!c->dead && !c->hello && now - c->opened_ms > options_.hello_timeout_ms) {
      ++stats_.hello_timeouts;
      Kill(*c);
    }
  }
  Sweep();
  return static_cast<size_t>(stats_.records - before);
}

void ChannelServer::Serve(Conn& c) {
  // Bounded per round so that one busy sensor cannot starve the others; the input buffer holds
  // at most one partial frame plus this round's bytes.
  size_t got = 0;
  while (got < options_.read_bytes_per_round) {
    const size_t want = std::min(kReadChunk, options_.read_bytes_per_round - got);
    const size_t at = c.rbuf.size();
    c.rbuf.resize(at + want);
    const ssize_t r = ::recv(c.fd, c.rbuf.data() + at, want, 0);
    if (r > 0) {
      c.rbuf.resize(at + static_cast<size_t>(r));
      got += static_cast<size_t>(r);
      stats_.bytes_in += static_cast<uint64_t>(r);
      continue;
    }
    c.rbuf.resize(at);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    // EOF or error: commit what arrived whole, then close.
    Process(c);
    Kill(c);
    return;
  }
  Process(c);
}

void ChannelServer::Process(Conn& c) {
  pending_.clear();
  size_t off = 0;
  bool events = false;
  const auto* data = reinterpret_cast<const uint8_t*>(c.rbuf.data());
  while (!c.dead && off < c.rbuf.size()) {
    ch::Frame f;
    const auto st = ch::DecodeFrame(std::span<const uint8_t>(data + off, c.rbuf.size() - off),
                                    options_.max_frame_body, &f);
    if (st == ch::DecodeStatus::kNeedMore) break;
    if (st != ch::DecodeStatus::kFrame) {
      if (st == ch::DecodeStatus::kTooLarge) {
        ++stats_.oversize_frames;
      } else {
        ++stats_.bad_frames;
      }
      // What decoded before the bad frame is good: keep it, then drop the connection (a
      // length-prefixed stream cannot resynchronise).
      if (Commit(c, &pending_)) Fail(c, ch::ErrorCode::kProtocol, ch::DecodeStatusName(st));
      break;
    }
    off += f.size;
    if (!c.hello) {
      if (f.type != ch::FrameType::kHello) {
        ++stats_.protocol_errors;
        Fail(c, ch::ErrorCode::kProtocol, "expected HELLO");
        break;
      }
      if (!OnHello(c, f)) break;
      continue;
    }
    if (f.type != ch::FrameType::kEvent || f.seq <= c.last_seq) {
      ++stats_.protocol_errors;
      if (Commit(c, &pending_)) {
        Fail(c, ch::ErrorCode::kProtocol,
             f.type != ch::FrameType::kEvent ? "unexpected frame" : "seq not increasing");
      }
      break;
    }
    events = true;
    c.last_seq = f.seq;
    const uint64_t committed = sensors_[c.sensor].committed;
    const uint64_t top = pending_.empty() ? committed : pending_.back().seq;
    if (f.seq <= committed) {
      ++stats_.duplicates;
      continue;
    }
    if (f.seq > top + 1) ++stats_.gaps;
    pending_.push_back(Record{f.seq, f.text});
    if (pending_.size() >= options_.max_batch && !Commit(c, &pending_)) break;
  }
  if (!c.dead && Commit(c, &pending_) && events) {
    // One ACK per round, for everything committed so far (also when all were duplicates, so
    // that the sensor can trim).
    ch::AppendAck(&c.wbuf, sensors_[c.sensor].committed);
    ++stats_.acks;
    Flush(c);
  }
  if (!c.dead) c.rbuf.erase(0, off);
}

bool ChannelServer::OnHello(Conn& c, const ch::Frame& f) {
  if (f.version != ch::kProtocolVersion) {
    ++stats_.protocol_errors;
    Fail(c, ch::ErrorCode::kVersion,
         "protocol version " + std::to_string(f.version) + " unsupported, want " +
             std::to_string(ch::kProtocolVersion));
    return false;
  }
  if (!ch::ValidSensorName(f.text)) {
    ++stats_.protocol_errors;
    Fail(c, ch::ErrorCode::kProtocol, "bad sensor name");
    return false;
  }
  c.hello = true;
  c.sensor.assign(f.text);
  if (auto it = sensors_.find(c.sensor); it != sensors_.end()) {
    const uint64_t old_id = it->second.conn_id;
    for (auto& other : conns_) {
      if (other->id == old_id && !other->dead) {
        ++stats_.replaced;
        Fail(*other, ch::ErrorCode::kReplaced, "replaced by a newer connection of the sensor");
      }
    }
  }
  Sensor& s = sensors_[c.sensor];  // after Fail(), which erases the old connection's entry
  s.conn_id = c.id;
  // The store is the truth (it may have been restored or compacted since we last looked).
  s.committed = last_seq_(c.sensor);
  ch::AppendWelcome(&c.wbuf, s.committed);
  Flush(c);
  return !c.dead;
}

bool ChannelServer::Commit(Conn& c, std::vector<Record>* pending) {
  if (pending->empty()) return true;
  const bool ok = commit_(c.sensor, std::span<const Record>(*pending));
  if (!ok) {
    ++stats_.commit_failures;
    pending->clear();
    Fail(c, ch::ErrorCode::kCommitFailed, "commit failed");
    return false;
  }
  ++stats_.batches;
  stats_.records += pending->size();
  sensors_[c.sensor].committed = pending->back().seq;
  pending->clear();
  return true;
}

void ChannelServer::Flush(Conn& c) {
  while (c.woff < c.wbuf.size()) {
    const ssize_t w = ::send(c.fd, c.wbuf.data() + c.woff, c.wbuf.size() - c.woff, MSG_NOSIGNAL);
    if (w > 0) {
      c.woff += static_cast<size_t>(w);
      continue;
    }
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    Kill(c);
    return;
  }
  if (c.woff == c.wbuf.size()) {
    c.wbuf.clear();
    c.woff = 0;
  } else if (c.wbuf.size() - c.woff > kMaxOutput) {
    ++stats_.slow_readers;
    Kill(c);
  }
}

void ChannelServer::Fail(Conn& c, ch::ErrorCode code, std::string_view why) {
  // Best effort: tell the peer why, then close.
  ch::AppendError(&c.wbuf, code, why);
  if (c.wbuf.size() - c.woff <= kMaxOutput) Flush(c);
  Kill(c);
}

void ChannelServer::Kill(Conn& c) {
  if (c.dead) return;
  c.dead = true;
  ::close(c.fd);
  c.fd = -1;
  ++stats_.closed;
  if (c.hello) {
    // Entries live only as long as their connection: HELLO reads the committed seq from the
    // store again, and a client cycling through names cannot grow the map.
    auto it = sensors_.find(c.sensor);
    if (it != sensors_.end() && it->second.conn_id == c.id) sensors_.erase(it);
  }
}

void ChannelServer::Sweep() {
  size_t j = 0;
  uint64_t sensors = 0;
  for (size_t i = 0; i < conns_.size(); ++i) {
    if (conns_[i]->dead) continue;
    if (conns_[i]->hello) ++sensors;
    conns_[j++] = std::move(conns_[i]);
  }
  conns_.resize(j);
  stats_.active = conns_.size();
  stats_.sensors = sensors;
}

void ChannelServer::Close() {
  for (auto& c : conns_) Kill(*c);
  Sweep();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
  if (bound_) ::unlink(options_.socket_path.c_str());
  bound_ = false;
}

size_t ChannelServer::buffered_bytes() const {
  size_t n = 0;
  for (const auto& c : conns_) n += c->rbuf.size() + c->wbuf.size();
  return n;
}

uint64_t ChannelServer::committed(std::string_view sensor) const {
  auto it = sensors_.find(std::string(sensor));
  return it == sensors_.end() ? 0 : it->second.committed;
}

}  // namespace vigil::ctl::channel
