// A blocking HTTP/1.1 client for vigilctl: one request per connection, to a Unix socket path or to
// HOST:PORT on loopback.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace vigil::ctl::cli {

struct HttpResult {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
  uint64_t body_bytes = 0;                     // bytes of body received (also when streamed)
};

// `endpoint`: a path containing '/' (Unix socket) or "HOST:PORT"; `headers`: extra header lines,
// each ending in "\r\n". Returns "" or an error.
std::string HttpRequest(const std::string& endpoint, const std::string& method,
                        const std::string& target, const std::string& body, HttpResult* result,
                        const std::string& headers = "");

// As HttpRequest, but a 200 answer's body is written to `out_fd` as it arrives (result->body stays
// empty); any other status's body is kept in result->body. An answer shorter than its
// Content-Length is an error (a cut-off transfer), as is a write error on `out_fd`.
std::string HttpRequestToFd(const std::string& endpoint, const std::string& method,
                            const std::string& target, const std::string& body, int out_fd,
                            HttpResult* result, const std::string& headers = "");

// Percent-encodes a query parameter value.
std::string UrlEncode(const std::string& s);

}  // namespace vigil::ctl::cli
