// The client of the dataplane's command socket (docs/respond.md, "The command channel"): one JSON
// object per line, protocol v1, requests answered in order on one kept-open connection.
//
// It is called from control's main thread, between event batches, so it must never hold ingest
// up for long: every call is bounded by `timeout_ms` (connect, write and answer together; 100 ms
// by default), a connect to an absent or refused socket fails at once (a non-blocking connect of
// a Unix socket never waits, so it is retried after `backoff_min_ms`), and after a timeout or a
// broken connection the next connect waits for an exponential backoff (100 ms doubling to 5 s)
// unless the caller asks to try now.
//
// Thread: one owner thread (control's main loop); not thread-safe. Calls block at most
// `timeout_ms`.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace vigil::ctl::respond {

inline constexpr int kProtocolVersion = 1;
inline constexpr size_t kMaxLineBytes = size_t{16} << 20;  // the protocol's line limit

struct ClientOptions {
  std::string socket_path = "/run/vigil/commands.sock";
  int timeout_ms = 100;  // one request, connect to answer
  int backoff_min_ms = 100;
  int backoff_max_ms = 5000;
};

class CommandClient {
 public:
  using Clock = std::function<int64_t()>;  // monotonic ns; default steady_clock
  explicit CommandClient(ClientOptions o, Clock clock = nullptr);
  ~CommandClient();
  CommandClient(const CommandClient&) = delete;
  CommandClient& operator=(const CommandClient&) = delete;

  // Sends {"v":1,"id":N,"op":op, ...fields} and returns the answer object, whether `ok` is true or
  // false (the caller reads `ok` and `error`). nullopt with *error on a transport failure: not
  // connected (and the backoff not over, unless `ignore_backoff`), connect refused, timeout, a
  // closed connection, an answer that is not a JSON object with our `v` and `id`. A transport
  // failure closes the connection and starts the backoff.
  std::optional<nlohmann::json> Call(const std::string& op, const nlohmann::json& fields,
                                     std::string* error, bool ignore_backoff = false);

  bool connected() const { return fd_ >= 0; }
  // True when a connect attempt would be made now (connected, or the backoff is over).
  bool due() const;
  void Close();
  const std::string& socket_path() const { return options_.socket_path; }

 private:
  bool Connect(std::string* error);
  void Fail(bool cheap);
  int64_t Now() const;

  ClientOptions options_;
  Clock clock_;
  int fd_ = -1;
  uint64_t next_id_ = 1;
  std::string in_;  // bytes read past the last answer (none expected: one request at a time)
  int64_t retry_at_ns_ = 0;
  int64_t backoff_ns_ = 0;
};

}  // namespace vigil::ctl::respond
