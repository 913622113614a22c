// The dataplane end of the event channel: numbers each EVE event with a per-sensor sequence,
// keeps it in a bounded on-disk journal until vigil-control acknowledges it, and streams the
// journal to control's Unix socket (wire format: export/channel_proto.h).
//
// Thread: one thread owns a ChannelClient (the exporter on the main lcore). Submit() and Poll()
// never wait for control: the socket and connect are non-blocking, a full journal drops and
// counts, and each Poll() does a bounded amount of work (one connect attempt, at most
// `max_send_bytes_per_poll` written, one socket read, one journal write). They do touch local
// files (write, pread, unlink); Open(), Drain() and Close() may block (start-up and shutdown).
//
// Journal (`journal_dir`, one directory per sensor):
//   seg-<first seq, 20 digits>.vcj  EVENT frames in seq order, rolled at `segment_bytes`;
//                                   deleted when every frame in it is acknowledged
//   state                           two checksummed slots {next seq, acked seq}, written in turn
//   sensor                          the sensor name the journal belongs to
// Durability: writes go to the page cache, which survives a crash of control or of the
// dataplane process; fdatasync runs only at Close() and, when `sync_interval_ms` > 0, from Poll()
// at that interval (it can stall the exporter for milliseconds, hence off by default). A host
// crash may lose the unsynced tail; Open() then truncates a torn frame and continues.
// Limits: `journal_max_bytes` counts whole segment files, acked parts included, so up to one
// segment of that is unusable; a payload above `max_payload` is dropped (counted in `lost` and
// `oversize`).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vigil::dp {

struct ChannelClientOptions {
  std::string socket_path;  // control's Unix socket
  std::string sensor;       // channel::ValidSensorName
  std::string journal_dir;  // created if missing
  uint64_t journal_max_bytes = 256ull << 20;
  uint64_t segment_bytes = 4ull << 20;
  uint32_t max_payload = 64u << 10;  // bytes of one EVE line
  uint32_t backoff_min_ms = 100;     // first retry after a failed connect or a lost connection
  uint32_t backoff_max_ms = 5000;    // doubling with jitter up to this
  uint32_t sync_interval_ms = 0;     // 0: fdatasync only at Close()
  uint32_t state_interval_ms = 100;  // how often the state file follows acks
  size_t max_send_bytes_per_poll = 1u << 20;
  size_t write_buffer_bytes = 256u << 10;  // Submit() batches journal writes up to this
  // Injected clock (milliseconds, monotonic) for tests; steady_clock when empty.
  std::function<uint64_t()> now_ms;
  uint64_t jitter_seed = 0;  // 0: derived from the sensor name
};

struct ChannelClientCounters {
  uint64_t submitted = 0;       // Submit() calls
  uint64_t sent = 0;            // EVENT frames written to the socket (resends included)
  uint64_t acked = 0;           // events acknowledged by control in this process's lifetime
  uint64_t resent = 0;          // EVENT frames sent again (after a reconnect)
  uint64_t lost = 0;            // events dropped: journal full, oversize, journal I/O error
  uint64_t oversize = 0;        // of lost: payload above max_payload
  uint64_t journal_bytes = 0;   // gauge: bytes of segment files
  uint64_t journal_events = 0;  // gauge: events journalled and not yet acknowledged
  uint64_t connected = 0;       // gauge: 1 after WELCOME, 0 otherwise
  uint64_t reconnects = 0;      // connections established after the first
  uint64_t connect_failures = 0;
  uint64_t protocol_errors = 0;  // bad frames from the server (connection dropped)
  uint64_t journal_errors = 0;   // failed journal writes/reads/unlinks
  uint64_t segments_trimmed = 0;
  uint64_t next_seq = 1;   // the seq the next Submit() gets
  uint64_t acked_seq = 0;  // everything up to it is committed by control
};

class ChannelClient {
 public:
  // Opens (recovering) or creates the journal. Returns nullptr and sets *error when the
  // directory cannot be used or belongs to another sensor. Blocks on disk I/O.
  static std::unique_ptr<ChannelClient> Open(const ChannelClientOptions& options,
                                             std::string* error);
  ~ChannelClient();  // Close()
  ChannelClient(const ChannelClient&) = delete;
  ChannelClient& operator=(const ChannelClient&) = delete;

  // Assigns the next seq to `json` (one EVE object) and journals it. False when it was dropped
  // (counted in lost). Sending happens in Poll().
  bool Submit(std::string_view json);
  // Connects/reconnects with backoff, flushes Submit()'s buffer to the journal, sends journal
  // frames not yet sent, reads ACKs and trims acknowledged segments. Never blocks on control.
  void Poll();
  // Shutdown helper: polls (sleeping 1 ms between rounds) until every journalled event is
  // acknowledged or `timeout_ms` passes. True when all were acknowledged.
  bool Drain(uint64_t timeout_ms);
  // Flushes, writes the state and fdatasyncs the journal, closes the socket. Idempotent.
  void Close();

  const ChannelClientCounters& counters() const { return counters_; }
  const ChannelClientOptions& options() const { return options_; }

 private:
  struct Segment {
    uint64_t first_seq = 0;
    uint64_t last_seq = 0;  // 0 when empty
    uint64_t bytes = 0;
    std::string path;
  };
  enum class Conn { kIdle, kConnecting, kHandshake, kStreaming };

  explicit ChannelClient(const ChannelClientOptions& options);
  std::string Recover();
  bool FlushWriteBuffer();
  bool StartSegment(uint64_t first_seq);
  void WriteState(bool force);
  void Trim();
  void TryConnect(uint64_t now);
  void Disconnect(bool failed);
  bool ReadSocket();
  bool HandleFrames();
  void OnWelcome(uint64_t committed);
  bool FillSendBuffer();
  bool WriteSocket();
  uint64_t Now() const;
  uint64_t NextBackoff();

  ChannelClientOptions options_;
  ChannelClientCounters counters_;
  std::deque<Segment> segments_;  // oldest first; back() is the append segment
  int append_fd_ = -1;
  int state_fd_ = -1;
  uint64_t state_generation_ = 0;
  uint64_t last_state_ms_ = 0;
  uint64_t last_sync_ms_ = 0;
  bool state_dirty_ = false;
  std::string wbuf_;  // frames submitted but not yet written to the journal
  uint64_t wbuf_first_seq_ = 0;
  uint64_t wbuf_events_ = 0;

  // Connection.
  Conn conn_ = Conn::kIdle;
  int sock_ = -1;
  bool ever_connected_ = false;
  uint64_t retry_at_ms_ = 0;
  uint64_t backoff_ms_ = 0;
  uint64_t rng_ = 0;
  std::string rbuf_;
  std::string sbuf_;  // bytes to write to the socket
  size_t sbuf_off_ = 0;
  uint64_t sbuf_first_seq_ = 0;  // EVENT frames in sbuf_: [first, last], 0 when none
  uint64_t sbuf_last_seq_ = 0;
  // EVENT frames in sbuf_ (end offset, seq) and how many of them are fully written, so that
  // `sent` and `resent` count exactly the frames that left, also across a partial write.
  std::vector<std::pair<size_t, uint64_t>> sbuf_frames_;
  size_t sbuf_counted_ = 0;
  size_t poll_sent_ = 0;       // bytes written in this Poll()
  uint64_t send_seq_ = 0;      // every EVENT up to it is queued to the socket
  uint64_t max_sent_seq_ = 0;  // highest EVENT seq ever written, to count resends
  size_t send_segment_ = 0;    // index into segments_ of the read cursor
  uint64_t send_offset_ = 0;   // byte offset in that segment
  int send_fd_ = -1;
  std::string send_fd_path_;
  std::vector<uint8_t> scratch_;
  bool closed_ = false;
};

}  // namespace vigil::dp
