// A small HTTP/1.1 server for vigil-control's API: loopback TCP and a Unix socket, one request per
// connection (Connection: close), GET and POST with bodies up to a bound. A response may carry
// extra headers and, instead of an in-memory body, an open file streamed from disk (packet
// captures: see Response::file).
//
// Thread: Serve() runs on its own thread and calls the handler there, one request at a time; Stop()
// from any thread. No TLS: it listens on loopback and a 0660 Unix socket only (RELIABILITY.md 7).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace vigil::ctl::api {

struct Request {
  std::string method;                          // "GET", "POST", ...
  std::string path;                            // without the query string, percent-decoded
  std::map<std::string, std::string> query;    // percent-decoded parameters
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

// A body streamed from an open file (the descriptor is closed with the last reference). The file
// may already be unlinked: its bytes stay readable through the descriptor.
struct FileBody {
  FileBody(int fd, uint64_t size) : fd(fd), size(size) {}
  ~FileBody();
  FileBody(const FileBody&) = delete;
  FileBody& operator=(const FileBody&) = delete;
  int fd;
  uint64_t size;  // bytes sent from the file's start (Content-Length)
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  // Extra header lines (name, value); CR and LF in values are replaced by spaces when sent.
  std::vector<std::pair<std::string, std::string>> headers = {};
  // When set, the body is this file's first `size` bytes and `body` is ignored.
  std::shared_ptr<const FileBody> file = nullptr;
};

using Handler = std::function<Response(const Request&)>;

// Parses one request from `raw` (the bytes received so far). Returns 1 when complete (fills *req),
// 0 when more bytes are needed, -1 (with *error) when malformed or over the limits.
int ParseRequest(const std::string& raw, Request* req, std::string* error);
std::string PercentDecode(const std::string& s, bool plus_is_space);
const char* StatusText(int status);

class HttpServer {
 public:
  HttpServer() = default;
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // "127.0.0.1:8642" (port 0: any free port, see tcp_port()) and/or a Unix socket path ("" for
  // none). Returns "" or an error.
  std::string Listen(const std::string& tcp_address, const std::string& unix_path);
  // Serves until Stop(). Call on the server's thread.
  void Serve(const Handler& handler);
  void Stop();
  int tcp_port() const { return tcp_port_; }

 private:
  void HandleConnection(int fd, const Handler& handler);

  int tcp_fd_ = -1;
  int unix_fd_ = -1;
  int tcp_port_ = 0;
  int wake_[2] = {-1, -1};  // self-pipe: Stop() wakes poll()
  std::string unix_path_;
  std::atomic<bool> stop_{false};
};

// One "Name: value" header line: the name lower-cased and both trimmed of spaces and tabs (the
// value of CR too). False when the line has no colon. Shared by the server and vigilctl's client.
bool SplitHeaderLine(const std::string& line, std::string* name, std::string* value);

}  // namespace vigil::ctl::api
