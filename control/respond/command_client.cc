#include "control/respond/command_client.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace vigil::ctl::respond {

CommandClient::CommandClient(ClientOptions o, Clock clock)
    : options_(std::move(o)), clock_(std::move(clock)) {}

CommandClient::~CommandClient() { Close(); }

int64_t CommandClient::Now() const {
  if (clock_) return clock_();
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void CommandClient::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  in_.clear();
}

bool CommandClient::due() const { return fd_ >= 0 || Now() >= retry_at_ns_; }

void CommandClient::Fail(bool cheap) {
  Close();
  const int64_t min = int64_t{options_.backoff_min_ms} * 1000000;
  const int64_t max = int64_t{options_.backoff_max_ms} * 1000000;
  if (cheap) {
    // A refused or absent socket costs microseconds to try again: no growth, so that a
    // dataplane that comes up is found by the next check (about a second).
    retry_at_ns_ = Now() + min;
    return;
  }
  // A timeout or a broken connection costs up to timeout_ms per attempt: back off.
  backoff_ns_ = backoff_ns_ == 0 ? min : std::min(backoff_ns_ * 2, max);
  retry_at_ns_ = Now() + backoff_ns_;
}

bool CommandClient::Connect(std::string* error) {
  sockaddr_un u{};
  u.sun_family = AF_UNIX;
  if (options_.socket_path.empty() || options_.socket_path.size() >= sizeof u.sun_path) {
    *error = "bad command socket path \"" + options_.socket_path + "\"";
    return false;
  }
  std::memcpy(u.sun_path, options_.socket_path.c_str(), options_.socket_path.size() + 1);
  // Non-blocking: a Unix stream connect either completes or fails at once (EAGAIN when the
  // server's backlog is full, which we treat as a failure rather than wait).
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  if (::connect(fd, reinterpret_cast<sockaddr*>(&u), sizeof u) != 0) {
    *error = "cannot connect to " + options_.socket_path + ": " + std::strerror(errno);
    ::close(fd);
    return false;
  }
  fd_ = fd;
  return true;
}

std::optional<nlohmann::json> CommandClient::Call(const std::string& op,
                                                  const nlohmann::json& fields, std::string* error,
                                                  bool ignore_backoff) {
  const int64_t start = Now();
  const int64_t deadline = start + int64_t{options_.timeout_ms} * 1000000;
  if (fd_ < 0) {
    if (!ignore_backoff && start < retry_at_ns_) {
      *error = "not connected to " + options_.socket_path + " (waiting to reconnect)";
      return std::nullopt;
    }
    if (!Connect(error)) {
      Fail(/*cheap=*/true);
      return std::nullopt;
    }
  }
  const uint64_t id = next_id_++;
  nlohmann::json req = fields.is_object() ? fields : nlohmann::json::object();
  req["v"] = kProtocolVersion;
  req["id"] = id;
  req["op"] = op;
  std::string line = req.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line += '\n';
  if (line.size() > kMaxLineBytes) {
    *error = op + ": request of " + std::to_string(line.size()) + " bytes is above the " +
             std::to_string(kMaxLineBytes) + "-byte line limit";
    return std::nullopt;  // the connection is fine; the request is not
  }
  auto wait = [&](short events) {
    const int64_t left_ms = (deadline - Now() + 999999) / 1000000;
    if (left_ms <= 0) return false;
    pollfd p{fd_, events, 0};
    const int rc = ::poll(&p, 1, static_cast<int>(left_ms));
    return rc > 0;
  };
  auto fail = [&](const std::string& what) -> std::optional<nlohmann::json> {
    *error = op + " on " + options_.socket_path + ": " + what;
    Fail(/*cheap=*/false);
    return std::nullopt;
  };
  size_t sent = 0;
  while (sent < line.size()) {
    const ssize_t n = ::send(fd_, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!wait(POLLOUT)) {
        return fail("timed out after " + std::to_string(options_.timeout_ms) + " ms (sending)");
      }
    } else {
      return fail(std::string("send: ") + std::strerror(errno));
    }
  }
  for (;;) {
    const size_t nl = in_.find('\n');
    if (nl != std::string::npos) {
      const std::string answer = in_.substr(0, nl);
      in_.erase(0, nl + 1);
      nlohmann::json j = nlohmann::json::parse(answer, nullptr, false);
      if (j.is_discarded() || !j.is_object()) return fail("answer is not a JSON object");
      // A version error comes back with our id and ok:false; anything else must echo both.
      if (!j.contains("id") || j["id"] != id) {
        return fail("answer for id " + (j.contains("id") ? j["id"].dump() : "(none)") +
                    ", expected " + std::to_string(id));
      }
      if (!j.contains("ok") || !j["ok"].is_boolean()) return fail("answer without \"ok\"");
      backoff_ns_ = 0;
      retry_at_ns_ = 0;
      return j;
    }
    if (in_.size() > kMaxLineBytes) return fail("answer line above the line limit");
    char buf[65536];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n > 0) {
      in_.append(buf, static_cast<size_t>(n));
    } else if (n == 0) {
      return fail("connection closed by the dataplane");
    } else if (errno == EAGAIN || errno == EINTR) {
      if (!wait(POLLIN)) {
        return fail("no answer within " + std::to_string(options_.timeout_ms) + " ms");
      }
    } else {
      return fail(std::string("recv: ") + std::strerror(errno));
    }
  }
}

}  // namespace vigil::ctl::respond
