#include "control/cli/http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "control/api/http_server.h"

namespace vigil::ctl::cli {

std::string UrlEncode(const std::string& s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

namespace {

bool WriteFd(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

std::string Request(const std::string& endpoint, const std::string& method,
                    const std::string& target, const std::string& body, int out_fd,
                    HttpResult* result, const std::string& headers) {
  int fd;
  if (endpoint.find('/') != std::string::npos) {
    sockaddr_un u{};
    u.sun_family = AF_UNIX;
    if (endpoint.size() >= sizeof u.sun_path) return "socket path too long: " + endpoint;
    std::memcpy(u.sun_path, endpoint.c_str(), endpoint.size() + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(fd, reinterpret_cast<sockaddr*>(&u), sizeof u) != 0) {
      const std::string e = "cannot connect to " + endpoint + ": " + strerror(errno);
      close(fd);
      return e;
    }
  } else {
    const size_t colon = endpoint.rfind(':');
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(std::atoi(endpoint.c_str() + colon + 1)));
    if (colon == std::string::npos ||
        inet_pton(AF_INET, endpoint.substr(0, colon).c_str(), &a.sin_addr) != 1) {
      return "expected HOST:PORT or a socket path, got " + endpoint;
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      const std::string e = "cannot connect to " + endpoint + ": " + strerror(errno);
      close(fd);
      return e;
    }
  }
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: vigil\r\nConnection: close\r\n";
  req += headers;
  if (!body.empty()) req += "Content-Type: application/json\r\n";
  req += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  size_t off = 0;
  while (off < req.size()) {
    const ssize_t n = send(fd, req.data() + off, req.size() - off, MSG_NOSIGNAL);
    if (n <= 0) {
      close(fd);
      return std::string("send: ") + strerror(errno);
    }
    off += static_cast<size_t>(n);
  }
  // The head, then the body: kept in memory, or streamed to out_fd for a 200.
  std::string raw;
  bool have_head = false, stream = false;
  long long content_length = -1;
  result->body.clear();
  result->headers.clear();
  result->body_bytes = 0;
  auto take_body = [&](const char* data, size_t n) -> bool {
    result->body_bytes += n;
    if (stream) return WriteFd(out_fd, data, n);
    result->body.append(data, n);
    return true;
  };
  char buf[65536];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 60000) <= 0) {
      close(fd);
      return "timed out waiting for " + endpoint;
    }
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (have_head) {
      if (!take_body(buf, static_cast<size_t>(n))) {
        close(fd);
        return std::string("write: ") + strerror(errno);
      }
      continue;
    }
    raw.append(buf, static_cast<size_t>(n));
    const size_t hdr_end = raw.find("\r\n\r\n");
    if (hdr_end == std::string::npos) {
      if (raw.size() > 65536) break;  // reported as malformed below
      continue;
    }
    const size_t sp = raw.find(' ');
    if (raw.compare(0, 5, "HTTP/") != 0 || sp == std::string::npos || sp > hdr_end) break;
    result->status = std::atoi(raw.c_str() + sp + 1);
    size_t pos = raw.find("\r\n") + 2;
    while (pos < hdr_end) {
      size_t eol = raw.find("\r\n", pos);
      if (eol == std::string::npos || eol > hdr_end) eol = hdr_end;
      const std::string h = raw.substr(pos, eol - pos);
      std::string name, value;
      if (api::SplitHeaderLine(h, &name, &value)) result->headers[name] = value;
      pos = eol + 2;
    }
    if (auto it = result->headers.find("content-length"); it != result->headers.end()) {
      content_length = std::atoll(it->second.c_str());
    }
    have_head = true;
    stream = out_fd >= 0 && result->status == 200;
    const std::string rest = raw.substr(hdr_end + 4);
    raw.clear();
    if (!take_body(rest.data(), rest.size())) {
      close(fd);
      return std::string("write: ") + strerror(errno);
    }
  }
  close(fd);
  if (!have_head) return "malformed response from " + endpoint;
  if (content_length >= 0 && result->body_bytes != static_cast<uint64_t>(content_length)) {
    return "the answer from " + endpoint + " was cut off: " + std::to_string(result->body_bytes) +
           " of " + std::to_string(content_length) + " bytes";
  }
  return "";
}

}  // namespace

std::string HttpRequest(const std::string& endpoint, const std::string& method,
                        const std::string& target, const std::string& body, HttpResult* result,
                        const std::string& headers) {
  return Request(endpoint, method, target, body, -1, result, headers);
}

std::string HttpRequestToFd(const std::string& endpoint, const std::string& method,
                            const std::string& target, const std::string& body, int out_fd,
                            HttpResult* result, const std::string& headers) {
  return Request(endpoint, method, target, body, out_fd, result, headers);
}

}  // namespace vigil::ctl::cli
