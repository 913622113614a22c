// vigil-control's end of the event channel: accepts dataplane sensors on a Unix socket, decodes
// their EVENT frames (dataplane/export/channel_proto.h), hands them in batches to a commit
// callback (the store) and acknowledges each sensor's highest committed seq once the callback
// says the batch is durable. Exactly-once: the server skips seqs at or below what is committed
// for the sensor (a resend after a reconnect) and the store dedups again by (sensor, seq).
//
// Thread: single-threaded. The owner calls Poll() from its loop; callbacks run inside Poll() on
// that thread, so they may use the store directly. Poll() blocks for at most its timeout plus
// the callbacks' time; sockets are non-blocking.
// Limits: frames above `max_frame_body` close the connection (counted in `oversize_frames`);
// a connection buffers at most max_frame_body + 16 + read_bytes_per_round bytes of input and
// 64 KiB of output; at most `max_clients` connections (more are accepted and closed at once);
// a connection that sends no HELLO within `hello_timeout_ms` is closed. A second connection
// HELLOing with a sensor name already connected replaces the older one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "dataplane/export/channel_proto.h"

namespace vigil::ctl::channel {

struct Record {
  uint64_t seq;
  std::string_view payload;  // one EVE JSON object; valid only during the callback
};

// Commits `records` (seqs increasing, all above the sensor's last committed seq) and returns
// true once they are durable. False: nothing is acknowledged and the connection is closed, so
// the sensor resends from the last committed seq after its backoff.
using CommitFn = std::function<bool(std::string_view sensor, std::span<const Record> records)>;
// The last seq committed for `sensor` (0 when none): the store's LastSeq.
using LastSeqFn = std::function<uint64_t(std::string_view sensor)>;

struct ServerOptions {
  std::string socket_path;
  uint32_t socket_mode = 0660;
  uint32_t max_frame_body = vigil::channel::kMaxFrameBody;
  size_t max_clients = 1024;
  size_t max_batch = 8192;                 // records per commit callback
  size_t read_bytes_per_round = 1u << 20;  // per connection per Poll()
  uint32_t hello_timeout_ms = 10000;
};

struct ServerStats {
  uint64_t accepted = 0;
  uint64_t active = 0;    // gauge: open connections
  uint64_t sensors = 0;   // gauge: connections past HELLO
  uint64_t rejected = 0;  // over max_clients
  uint64_t closed = 0;
  uint64_t bad_frames = 0;  // bad magic/header/crc/body (connection closed)
  uint64_t oversize_frames = 0;
  uint64_t protocol_errors = 0;  // valid frames in the wrong place (connection closed)
  uint64_t hello_timeouts = 0;
  uint64_t replaced = 0;      // older connection of a sensor closed by a newer one
  uint64_t slow_readers = 0;  // closed because they do not read their ACKs
  uint64_t commit_failures = 0;
  uint64_t batches = 0;
  uint64_t records = 0;     // committed
  uint64_t duplicates = 0;  // skipped: at or below the sensor's committed seq
  uint64_t gaps = 0;        // a seq above committed + 1 (the sensor lost events)
  uint64_t acks = 0;
  uint64_t bytes_in = 0;
};

class ChannelServer {
 public:
  ChannelServer(ServerOptions options, CommitFn commit, LastSeqFn last_seq);
  ~ChannelServer();
  ChannelServer(const ChannelServer&) = delete;
  ChannelServer& operator=(const ChannelServer&) = delete;

  // Binds and listens on options.socket_path (replacing a stale socket file, never another kind
  // of file), mode socket_mode. Returns "" or an error naming the path.
  std::string Listen();
  // Serves an already connected stream socket (tests, fuzzing, a socket handed over by a
  // supervisor). Takes ownership; makes it non-blocking.
  void Adopt(int fd);
  // Waits up to timeout_ms (0: not at all) for activity, then accepts, reads at most
  // read_bytes_per_round per connection, commits and acknowledges. Returns records committed.
  size_t Poll(int timeout_ms);
  // Closes every connection and the listening socket, and removes the socket file.
  void Close();

  const ServerStats& stats() const { return stats_; }
  // Input and output bytes buffered over all connections (tests check the bound).
  size_t buffered_bytes() const;
  // The committed seq the server knows for a connected `sensor` (0 when not connected).
  uint64_t committed(std::string_view sensor) const;

 private:
  struct Conn {
    int fd = -1;
    uint64_t id = 0;
    uint64_t opened_ms = 0;
    bool hello = false;
    bool dead = false;
    bool want_ack = false;
    std::string sensor;
    uint64_t last_seq = 0;  // highest EVENT seq on this connection (must increase)
    std::string rbuf;
    std::string wbuf;
    size_t woff = 0;
  };
  struct Sensor {
    uint64_t committed = 0;
    uint64_t conn_id = 0;  // the connection that owns the sensor, 0 none
  };

  void Accept();
  void Serve(Conn& c);
  void Process(Conn& c);
  bool OnHello(Conn& c, const vigil::channel::Frame& f);
  bool Commit(Conn& c, std::vector<Record>* pending);
  void Flush(Conn& c);
  void Fail(Conn& c, vigil::channel::ErrorCode code, std::string_view why);
  void Kill(Conn& c);
  void Sweep();
  static uint64_t NowMs();

  ServerOptions options_;
  CommitFn commit_;
  LastSeqFn last_seq_;
  int listen_fd_ = -1;
  bool bound_ = false;
  uint64_t next_id_ = 1;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::unordered_map<std::string, Sensor> sensors_;
  std::vector<Record> pending_;
  ServerStats stats_;
};

}  // namespace vigil::ctl::channel
