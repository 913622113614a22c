#include "dataplane/app/command_server.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>

#include "dataplane/export/eve_writer.h"

namespace vigil::dp {
namespace {

constexpr size_t kMaxLine = 16 << 20;  // a pushed configuration may carry its rules inline
constexpr size_t kMaxClients = 16;
constexpr size_t kMaxOut = 8 << 20;  // a client that reads nothing is dropped past this

std::string Response(uint64_t id, bool ok, const std::string& body) {
  std::string o = "{\"v\":" + std::to_string(kCommandProtocolVersion) +
                  ",\"id\":" + std::to_string(id) + ",\"ok\":" + (ok ? "true" : "false");
  if (!body.empty()) o += "," + body;
  o += "}\n";
  return o;
}

std::string ErrorBody(const std::string& error) {
  std::string o = "\"error\":";
  AppendJsonString(&o, error);
  return o;
}

}  // namespace

CommandServer::~CommandServer() { Close(); }

std::string CommandServer::Listen(const std::string& path) {
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return "commands.socket: path empty or longer than " +
           std::to_string(sizeof(addr.sun_path) - 1) + " bytes: " + path;
  }
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return "commands.socket: socket: " + std::string(std::strerror(errno));
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  struct stat st;
  if (lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path.c_str());
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 8) != 0) {
    const std::string e = std::strerror(errno);
    close(fd);
    return "commands.socket " + path + ": " + e;
  }
  chmod(path.c_str(), 0660);
  listen_fd_ = fd;
  path_ = path;
  return "";
}

void CommandServer::Close() {
  for (Client& c : clients_) close(c.fd);
  clients_.clear();
  if (listen_fd_ >= 0) {
    close(listen_fd_);
    unlink(path_.c_str());
    listen_fd_ = -1;
  }
}

std::string CommandServer::HandleLine(const std::string& line) {
  ++requests_;
  YAML::Node req;
  try {
    req = YAML::Load(line);  // JSON is YAML flow syntax
  } catch (const std::exception& e) {
    ++errors_;
    return Response(0, false, ErrorBody(std::string("not JSON: ") + e.what()));
  }
  uint64_t id = 0;
  std::string op;
  int version = 0;
  try {
    if (!req.IsMap()) throw std::runtime_error("a request is a JSON object");
    if (req["id"]) id = req["id"].as<uint64_t>();
    if (!req["v"]) throw std::runtime_error("missing \"v\" (protocol version)");
    version = req["v"].as<int>();
    if (!req["op"]) throw std::runtime_error("missing \"op\"");
    op = req["op"].as<std::string>();
  } catch (const std::exception& e) {
    ++errors_;
    return Response(id, false, ErrorBody(e.what()));
  }
  if (version != kCommandProtocolVersion) {
    ++errors_;
    return Response(
        id, false,
        ErrorBody("unsupported protocol version " + std::to_string(version) +
                  " (this dataplane speaks " + std::to_string(kCommandProtocolVersion) + ")"));
  }
  std::string result, error;
  bool ok = false;
  try {
    ok = handler_(op, req, &result, &error);
  } catch (const std::exception& e) {  // a field of the wrong type deep in a request
    error = e.what();
  }
  if (!ok) {
    ++errors_;
    return Response(id, false, ErrorBody(error.empty() ? "failed" : error));
  }
  return Response(id, true, result);
}

void CommandServer::ReadFrom(Client* c) {
  char buf[65536];
  for (;;) {
    const ssize_t n = read(c->fd, buf, sizeof buf);
    if (n > 0) {
      c->in.append(buf, static_cast<size_t>(n));
      size_t start = 0;
      for (size_t nl; (nl = c->in.find('\n', start)) != std::string::npos; start = nl + 1) {
        c->out += HandleLine(c->in.substr(start, nl - start));
      }
      c->in.erase(0, start);
      if (c->in.size() > kMaxLine) {
        c->out += Response(0, false, ErrorBody("request line longer than 16 MiB"));
        c->in.clear();
        c->closing = true;
        return;
      }
      continue;
    }
    if (n == 0) c->closing = true;  // the client closed its side: answer what it sent, then close
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) c->closing = true;
    return;
  }
}

void CommandServer::WriteTo(Client* c) {
  while (!c->out.empty()) {
    const ssize_t n = send(c->fd, c->out.data(), c->out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c->out.erase(0, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (c->out.size() > kMaxOut) {
        c->out.clear();
        c->closing = true;
      }
      return;
    }
    c->out.clear();  // the peer is gone
    c->closing = true;
    return;
  }
}

uint32_t CommandServer::Poll() {
  if (listen_fd_ < 0) return 0;
  for (;;) {
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) break;
    if (clients_.size() >= kMaxClients) {
      const std::string busy = Response(0, false, ErrorBody("too many command clients"));
      (void)send(fd, busy.data(), busy.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      close(fd);
      continue;
    }
    clients_.push_back(Client{fd, {}, {}, false});
  }
  const uint64_t before = requests_;
  for (Client& c : clients_) {
    if (!c.closing) ReadFrom(&c);
    WriteTo(&c);
  }
  std::erase_if(clients_, [](const Client& c) {
    if (!c.closing || !c.out.empty()) return false;
    close(c.fd);
    return true;
  });
  return static_cast<uint32_t>(requests_ - before);
}

}  // namespace vigil::dp
