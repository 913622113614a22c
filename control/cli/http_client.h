// A blocking HTTP/1.1 client for vigilctl: one request per connection, to a Unix socket path or to
// HOST:PORT on loopback.
#pragma once

#include <string>

namespace vigil::ctl::cli {

struct HttpResult {
  int status = 0;
  std::string body;
};

// `endpoint`: a path containing '/' (Unix socket) or "HOST:PORT"; `headers`: extra header lines,
// each ending in "\r\n". Returns "" or an error.
std::string HttpRequest(const std::string& endpoint, const std::string& method,
                        const std::string& target, const std::string& body, HttpResult* result,
                        const std::string& headers = "");

// Percent-encodes a query parameter value.
std::string UrlEncode(const std::string& s);

}  // namespace vigil::ctl::cli
