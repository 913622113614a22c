// The dataplane's command socket: control (and tests) send requests, one JSON object per line,
// and get one JSON response line each (docs/respond.md gives the protocol, version 1).
//
// Served by the main thread's loop through Poll(): non-blocking accept, read and write, so a slow
// or stuck client can never hold up event export or housekeeping. Requests are bounded (16 MiB per
// line, for pushed configurations with inline rules; a longer line closes the connection after an
// error response) and so are clients (16).
//
// Threads: everything on the main thread. The handler runs there too and may allocate.
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace vigil::dp {

inline constexpr int kCommandProtocolVersion = 1;

class CommandServer {
 public:
  // Handles one request `op` with its parsed JSON `req`. Appends the result members (JSON, without
  // braces, e.g. `"generation":3,"entries":2`) to *result and returns true, or sets *error.
  using Handler = std::function<bool(const std::string& op, const YAML::Node& req,
                                     std::string* result, std::string* error)>;

  explicit CommandServer(Handler handler) : handler_(std::move(handler)) {}
  ~CommandServer();
  CommandServer(const CommandServer&) = delete;
  CommandServer& operator=(const CommandServer&) = delete;

  // Binds `path` (a stale socket file there is replaced; the directory must exist) with mode
  // 0660. Returns "" or an error.
  std::string Listen(const std::string& path);
  // Accepts, reads and answers whatever is ready; never blocks. Returns the requests handled.
  uint32_t Poll();
  void Close();

  uint64_t requests() const noexcept { return requests_; }
  uint64_t errors() const noexcept { return errors_; }

  // Exposed for tests: the response line (with its '\n') for one request line.
  std::string HandleLine(const std::string& line);

 private:
  struct Client {
    int fd = -1;
    std::string in;
    std::string out;
    bool closing = false;  // close once `out` is written
  };
  void ReadFrom(Client* c);
  void WriteTo(Client* c);

  Handler handler_;
  std::string path_;
  int listen_fd_ = -1;
  std::vector<Client> clients_;
  uint64_t requests_ = 0;
  uint64_t errors_ = 0;
};

}  // namespace vigil::dp
