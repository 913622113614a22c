#include "control/api/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <vector>

namespace vigil::ctl::api {
namespace {

constexpr size_t kMaxHeaderBytes = 16 * 1024;
constexpr size_t kMaxBodyBytes = 4 * 1024 * 1024;
constexpr int kIoTimeoutMs = 5000;

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return s;
}

std::string Trim(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && (s[a] == ' ' || s[a] == '\t')) ++a;
  while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t' || s[b - 1] == '\r')) --b;
  return s.substr(a, b - a);
}

bool WriteAll(int fd, std::string_view data) {
  size_t off = 0;
  while (off < data.size()) {
    pollfd p{fd, POLLOUT, 0};
    if (poll(&p, 1, kIoTimeoutMs) <= 0) return false;
    const ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return true;
}

// Streams `size` bytes of `fd` from its start. False on a read error, a short file or a client
// that stops reading.
bool WriteFile(int fd, int file_fd, uint64_t size) {
  std::vector<char> buf(size_t{1} << 18);
  uint64_t off = 0;
  while (off < size) {
    const size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - off));
    const ssize_t n = pread(file_fd, buf.data(), want, static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    if (!WriteAll(fd, std::string_view(buf.data(), static_cast<size_t>(n)))) return false;
    off += static_cast<uint64_t>(n);
  }
  return true;
}

std::string HeaderValue(std::string v) {
  for (char& c : v) {
    if (c == '\r' || c == '\n' || c == '\0') c = ' ';
  }
  return v;
}

}  // namespace

FileBody::~FileBody() {
  if (fd >= 0) close(fd);
}

std::string PercentDecode(const std::string& s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else if (c == '%' && i + 2 < s.size() && isxdigit(static_cast<unsigned char>(s[i + 1])) &&
               isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

const char* StatusText(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Status";
  }
}

int ParseRequest(const std::string& raw, Request* req, std::string* error) {
  const size_t end = raw.find("\r\n\r\n");
  if (end == std::string::npos) {
    if (raw.size() > kMaxHeaderBytes) {
      *error = "request headers over 16 KiB";
      return -1;
    }
    return 0;
  }
  const size_t line_end = raw.find("\r\n");
  const std::string line = raw.substr(0, line_end);
  const size_t sp1 = line.find(' ');
  const size_t sp2 = sp1 == std::string::npos ? std::string::npos : line.find(' ', sp1 + 1);
  if (sp1 == std::string::npos || sp2 == std::string::npos ||
      line.compare(sp2 + 1, 5, "HTTP/") != 0) {
    *error = "malformed request line";
    return -1;
  }
  req->method = line.substr(0, sp1);
  const std::string target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const size_t q = target.find('?');
  req->path = PercentDecode(target.substr(0, q), false);
  req->query.clear();
  if (q != std::string::npos) {
    const std::string qs = target.substr(q + 1);
    size_t pos = 0;
    while (pos <= qs.size()) {
      size_t amp = qs.find('&', pos);
      if (amp == std::string::npos) amp = qs.size();
      const std::string kv = qs.substr(pos, amp - pos);
      if (!kv.empty()) {
        const size_t eq = kv.find('=');
        req->query[PercentDecode(kv.substr(0, eq), true)] =
            eq == std::string::npos ? "" : PercentDecode(kv.substr(eq + 1), true);
      }
      pos = amp + 1;
    }
  }
  req->headers.clear();
  size_t pos = line_end + 2;
  while (pos < end) {
    size_t eol = raw.find("\r\n", pos);
    if (eol == std::string::npos || eol > end) eol = end;
    const std::string h = raw.substr(pos, eol - pos);
    const size_t colon = h.find(':');
    if (colon == std::string::npos) {
      *error = "malformed header line";
      return -1;
    }
    std::string name, value;
    SplitHeaderLine(h, &name, &value);
    req->headers[name] = value;
    pos = eol + 2;
  }
  size_t length = 0;
  if (auto it = req->headers.find("content-length"); it != req->headers.end()) {
    char* stop = nullptr;
    const unsigned long long v = std::strtoull(it->second.c_str(), &stop, 10);
    if (stop == it->second.c_str() || *stop != '\0' || v > kMaxBodyBytes) {
      *error = "bad or too large Content-Length";
      return -1;
    }
    length = static_cast<size_t>(v);
  }
  if (raw.size() < end + 4 + length) return 0;
  req->body = raw.substr(end + 4, length);
  return 1;
}

HttpServer::~HttpServer() {
  if (tcp_fd_ >= 0) close(tcp_fd_);
  if (unix_fd_ >= 0) {
    close(unix_fd_);
    unlink(unix_path_.c_str());
  }
  for (int fd : wake_) {
    if (fd >= 0) close(fd);
  }
}

std::string HttpServer::Listen(const std::string& tcp_address, const std::string& unix_path) {
  if (pipe2(wake_, O_CLOEXEC | O_NONBLOCK) != 0) return std::string("pipe: ") + strerror(errno);
  if (!tcp_address.empty()) {
    const size_t colon = tcp_address.rfind(':');
    if (colon == std::string::npos) return "api.listen: expected HOST:PORT, got " + tcp_address;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(std::atoi(tcp_address.c_str() + colon + 1)));
    if (inet_pton(AF_INET, tcp_address.substr(0, colon).c_str(), &a.sin_addr) != 1) {
      return "api.listen: not an IPv4 address: " + tcp_address.substr(0, colon);
    }
    tcp_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    setsockopt(tcp_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(tcp_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(tcp_fd_, 64) != 0) {
      return "api.listen: " + tcp_address + ": " + strerror(errno);
    }
    socklen_t len = sizeof a;
    getsockname(tcp_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    tcp_port_ = ntohs(a.sin_port);
  }
  if (!unix_path.empty()) {
    sockaddr_un u{};
    u.sun_family = AF_UNIX;
    if (unix_path.size() >= sizeof u.sun_path) return "api.socket: path too long: " + unix_path;
    std::memcpy(u.sun_path, unix_path.c_str(), unix_path.size() + 1);
    unlink(unix_path.c_str());
    unix_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (bind(unix_fd_, reinterpret_cast<sockaddr*>(&u), sizeof u) != 0 ||
        listen(unix_fd_, 64) != 0) {
      return "api.socket: " + unix_path + ": " + strerror(errno);
    }
    chmod(unix_path.c_str(), 0660);
    unix_path_ = unix_path;
  }
  return "";
}

void HttpServer::Stop() {
  stop_.store(true);
  if (wake_[1] >= 0) {
    const char c = 1;
    (void)!write(wake_[1], &c, 1);
  }
}

void HttpServer::Serve(const Handler& handler) {
  while (!stop_.load()) {
    pollfd fds[3];
    int n = 0;
    fds[n++] = {wake_[0], POLLIN, 0};
    if (tcp_fd_ >= 0) fds[n++] = {tcp_fd_, POLLIN, 0};
    if (unix_fd_ >= 0) fds[n++] = {unix_fd_, POLLIN, 0};
    if (poll(fds, static_cast<nfds_t>(n), 1000) <= 0) continue;
    for (int i = 1; i < n; ++i) {
      if ((fds[i].revents & POLLIN) == 0) continue;
      const int c = accept4(fds[i].fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      HandleConnection(c, handler);
      close(c);
    }
  }
  // Stop listening at once: a client must get "connection refused", not a silent backlog.
  if (tcp_fd_ >= 0) close(tcp_fd_);
  tcp_fd_ = -1;
  if (unix_fd_ >= 0) {
    close(unix_fd_);
    unlink(unix_path_.c_str());
  }
  unix_fd_ = -1;
}

void HttpServer::HandleConnection(int fd, const Handler& handler) {
  std::string raw;
  Request req;
  std::string error;
  char buf[8192];
  int state = 0;
  while (state == 0) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, kIoTimeoutMs) <= 0) return;
    const ssize_t got = recv(fd, buf, sizeof buf, 0);
    if (got <= 0) return;
    raw.append(buf, static_cast<size_t>(got));
    state = ParseRequest(raw, &req, &error);
  }
  Response resp;
  if (state < 0) {
    resp.status = 400;
    resp.body = std::string("{\"error\":\"") + error + "\"}";
  } else {
    resp = handler(req);
  }
  const uint64_t length = resp.file ? resp.file->size : resp.body.size();
  std::string out = "HTTP/1.1 " + std::to_string(resp.status) + " " + StatusText(resp.status) +
                    "\r\nContent-Type: " + resp.content_type +
                    "\r\nContent-Length: " + std::to_string(length) + "\r\n";
  for (const auto& [name, value] : resp.headers) {
    out += HeaderValue(name) + ": " + HeaderValue(value) + "\r\n";
  }
  out += "Connection: close\r\n\r\n";
  if (!resp.file) {
    out += resp.body;
    WriteAll(fd, out);
    return;
  }
  if (WriteAll(fd, out)) WriteFile(fd, resp.file->fd, resp.file->size);
}

bool SplitHeaderLine(const std::string& line, std::string* name, std::string* value) {
  const size_t colon = line.find(':');
  if (colon == std::string::npos) return false;
  *name = Lower(Trim(line.substr(0, colon)));
  *value = Trim(line.substr(colon + 1));
  return true;
}

}  // namespace vigil::ctl::api
