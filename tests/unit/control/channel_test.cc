// Event channel: wire format, client journal, server, and the two together over real Unix sockets
// in a temporary directory (and real processes for the kill -9 test).
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "control/channel/channel_server.h"
#include "dataplane/export/channel_client.h"
#include "dataplane/export/channel_proto.h"

namespace vigil {
namespace {

namespace ch = vigil::channel;
using ctl::channel::ChannelServer;
using ctl::channel::Record;
using ctl::channel::ServerOptions;
using dp::ChannelClient;
using dp::ChannelClientOptions;

using Clock = std::chrono::steady_clock;

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/vigil_channel_XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Records every committed (sensor, seq, payload); an insert at or below the sensor's last seq is
// a duplicate, which the store would skip: counted so tests can assert there are none.
struct FakeStore {
  std::map<std::string, std::vector<uint64_t>> seqs;
  std::map<std::string, std::vector<std::string>> payloads;
  uint64_t duplicates = 0;
  bool fail_next = false;
  bool keep_payloads = true;
  std::mutex mu;  // the throughput test reads from another thread

  bool Insert(std::string_view sensor, std::span<const Record> records) {
    std::lock_guard<std::mutex> l(mu);
    if (fail_next) {
      fail_next = false;
      return false;
    }
    auto& s = seqs[std::string(sensor)];
    auto& p = payloads[std::string(sensor)];
    for (const Record& r : records) {
      if (!s.empty() && r.seq <= s.back()) {
        ++duplicates;
        continue;
      }
      s.push_back(r.seq);
      if (keep_payloads) p.emplace_back(r.payload);
    }
    return true;
  }
  uint64_t LastSeq(std::string_view sensor) {
    std::lock_guard<std::mutex> l(mu);
    auto it = seqs.find(std::string(sensor));
    return it == seqs.end() || it->second.empty() ? 0 : it->second.back();
  }
};

std::unique_ptr<ChannelServer> MakeServer(const std::string& sock, FakeStore* store,
                                          ServerOptions o = {}) {
  o.socket_path = sock;
  auto s = std::make_unique<ChannelServer>(
      o, [store](std::string_view n, std::span<const Record> r) { return store->Insert(n, r); },
      [store](std::string_view n) { return store->LastSeq(n); });
  const std::string err = s->Listen();
  EXPECT_EQ(err, "");
  return s;
}

ChannelClientOptions ClientOptions(const TempDir& dir, const std::string& sensor = "sensor-a") {
  ChannelClientOptions o;
  o.socket_path = dir.path() + "/control.sock";
  o.sensor = sensor;
  o.journal_dir = dir.path() + "/journal-" + sensor;
  o.backoff_min_ms = 5;
  o.backoff_max_ms = 50;
  o.state_interval_ms = 0;
  return o;
}

std::unique_ptr<ChannelClient> OpenClient(const ChannelClientOptions& o) {
  std::string err;
  auto c = ChannelClient::Open(o, &err);
  if (c == nullptr) {
    ADD_FAILURE() << err;
    std::abort();
  }
  return c;
}

std::string Payload(uint64_t i, size_t size = 64) {
  std::string p = "{\"event_type\":\"flow\",\"n\":" + std::to_string(i) + ",\"pad\":\"";
  while (p.size() + 2 < size) p.push_back('x');
  return p + "\"}";
}

// Polls the server and clients until `done` or the deadline.
template <typename Done>
bool Pump(ChannelServer* server, const std::vector<ChannelClient*>& clients, Done done,
          int timeout_ms = 10000) {
  const auto until = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Clock::now() < until) {
    for (ChannelClient* c : clients) c->Poll();
    if (server != nullptr) server->Poll(1);
    if (done()) return true;
    if (server == nullptr) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

bool AllAcked(const ChannelClient& c) {
  return c.counters().acked_seq + 1 == c.counters().next_seq;
}

void ExpectExactly(const std::vector<uint64_t>& seqs, uint64_t first, uint64_t last) {
  ASSERT_EQ(seqs.size(), last - first + 1);
  for (uint64_t i = 0; i < seqs.size(); ++i) ASSERT_EQ(seqs[i], first + i) << "at " << i;
}

size_t SegmentFiles(const std::string& dir) {
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".vcj") ++n;
  }
  return n;
}

int RawConnect(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof(a.sun_path) - 1);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return fd;
}

// ---------------------------------------------------------------- wire format

TEST(ChannelProto, RoundTripsEveryFrameType) {
  std::string buf;
  ch::AppendHello(&buf, "sensor-1", 42);
  ch::AppendWelcome(&buf, 41);
  ch::AppendEvent(&buf, 7, "{\"a\":1}");
  ch::AppendAck(&buf, 7);
  ch::AppendError(&buf, ch::ErrorCode::kCommitFailed, "nope");
  auto bytes = std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(buf.data()), buf.size());
  ch::Frame f;
  ASSERT_EQ(ch::DecodeFrame(bytes, ch::kMaxFrameBody, &f), ch::DecodeStatus::kFrame);
  EXPECT_EQ(f.type, ch::FrameType::kHello);
  EXPECT_EQ(f.text, "sensor-1");
  EXPECT_EQ(f.seq, 42u);
  EXPECT_EQ(f.version, ch::kProtocolVersion);
  bytes = bytes.subspan(f.size);
  ASSERT_EQ(ch::DecodeFrame(bytes, ch::kMaxFrameBody, &f), ch::DecodeStatus::kFrame);
  EXPECT_EQ(f.type, ch::FrameType::kWelcome);
  EXPECT_EQ(f.seq, 41u);
  bytes = bytes.subspan(f.size);
  ASSERT_EQ(ch::DecodeFrame(bytes, ch::kMaxFrameBody, &f), ch::DecodeStatus::kFrame);
  EXPECT_EQ(f.type, ch::FrameType::kEvent);
  EXPECT_EQ(f.seq, 7u);
  EXPECT_EQ(f.text, "{\"a\":1}");
  EXPECT_EQ(f.size, ch::kHeaderBytes + 8 + 7);
  bytes = bytes.subspan(f.size);
  ASSERT_EQ(ch::DecodeFrame(bytes, ch::kMaxFrameBody, &f), ch::DecodeStatus::kFrame);
  EXPECT_EQ(f.type, ch::FrameType::kAck);
  bytes = bytes.subspan(f.size);
  ASSERT_EQ(ch::DecodeFrame(bytes, ch::kMaxFrameBody, &f), ch::DecodeStatus::kFrame);
  EXPECT_EQ(f.type, ch::FrameType::kError);
  EXPECT_EQ(f.code, static_cast<uint32_t>(ch::ErrorCode::kCommitFailed));
  EXPECT_EQ(f.text, "nope");
  EXPECT_EQ(bytes.size(), f.size);
}

TEST(ChannelProto, EveryPrefixNeedsMoreAndCorruptionIsCaught) {
  std::string buf;
  ch::AppendEvent(&buf, 1, "hello");
  const auto* p = reinterpret_cast<const uint8_t*>(buf.data());
  ch::Frame f;
  for (size_t n = 0; n < buf.size(); ++n) {
    EXPECT_EQ(ch::DecodeFrame({p, n}, ch::kMaxFrameBody, &f), ch::DecodeStatus::kNeedMore) << n;
  }
  // Every single-bit flip anywhere is rejected (never decoded as a different frame).
  for (size_t i = 0; i < buf.size(); ++i) {
    for (int b = 0; b < 8; ++b) {
      std::string c = buf;
      c[i] = static_cast<char>(c[i] ^ (1 << b));
      const auto st = ch::DecodeFrame({reinterpret_cast<const uint8_t*>(c.data()), c.size()},
                                      ch::kMaxFrameBody, &f);
      EXPECT_NE(st, ch::DecodeStatus::kFrame) << i << "/" << b;
    }
  }
  EXPECT_EQ(ch::DecodeFrame({reinterpret_cast<const uint8_t*>("GET "), 4}, 100, &f),
            ch::DecodeStatus::kBadMagic);
  EXPECT_EQ(ch::DecodeFrame({reinterpret_cast<const uint8_t*>("V"), 1}, 100, &f),
            ch::DecodeStatus::kNeedMore);
  EXPECT_EQ(ch::DecodeFrame({p, buf.size()}, 12, &f), ch::DecodeStatus::kTooLarge);
  EXPECT_EQ(ch::DecodeFrame({p, ch::kHeaderBytes}, 12, &f), ch::DecodeStatus::kTooLarge);
  // An EVENT body shorter than its seq, seq 0, an ACK of the wrong size.
  std::string bad;
  ch::AppendFrame(&bad, ch::FrameType::kEvent, {}, "abc");
  EXPECT_EQ(ch::DecodeFrame({reinterpret_cast<const uint8_t*>(bad.data()), bad.size()}, 100, &f),
            ch::DecodeStatus::kBadBody);
  bad.clear();
  ch::AppendEvent(&bad, 0, "x");
  EXPECT_EQ(ch::DecodeFrame({reinterpret_cast<const uint8_t*>(bad.data()), bad.size()}, 100, &f),
            ch::DecodeStatus::kBadBody);
  bad.clear();
  ch::AppendFrame(&bad, ch::FrameType::kAck, {}, "1234567");
  EXPECT_EQ(ch::DecodeFrame({reinterpret_cast<const uint8_t*>(bad.data()), bad.size()}, 100, &f),
            ch::DecodeStatus::kBadBody);
}

TEST(ChannelProto, Crc32cKnownValue) {
  // RFC 3720 B.4: 32 bytes of zeros.
  uint8_t z[32] = {};
  EXPECT_EQ(ch::Crc32c(0, z, sizeof z), 0x8A9136AAu);
  const char* s = "123456789";
  EXPECT_EQ(ch::Crc32c(0, reinterpret_cast<const uint8_t*>(s), 9), 0xE3069283u);
  // Incremental equals one-shot.
  EXPECT_EQ(ch::Crc32c(ch::Crc32c(0, reinterpret_cast<const uint8_t*>(s), 4),
                       reinterpret_cast<const uint8_t*>(s) + 4, 5),
            0xE3069283u);
}

// ---------------------------------------------------------------- client + server

TEST(Channel, DeliversInOrderAndAcks) {
  TempDir dir;
  FakeStore store;
  auto server = MakeServer(dir.path() + "/control.sock", &store);
  auto client = OpenClient(ClientOptions(dir));
  for (uint64_t i = 1; i <= 1000; ++i) ASSERT_TRUE(client->Submit(Payload(i)));
  ASSERT_TRUE(Pump(server.get(), {client.get()}, [&] { return AllAcked(*client); }));
  ExpectExactly(store.seqs["sensor-a"], 1, 1000);
  for (uint64_t i = 1; i <= 1000; ++i) ASSERT_EQ(store.payloads["sensor-a"][i - 1], Payload(i));
  const auto& c = client->counters();
  EXPECT_EQ(c.submitted, 1000u);
  EXPECT_EQ(c.sent, 1000u);
  EXPECT_EQ(c.acked, 1000u);
  EXPECT_EQ(c.resent, 0u);
  EXPECT_EQ(c.lost, 0u);
  EXPECT_EQ(c.connected, 1u);
  EXPECT_EQ(c.reconnects, 0u);
  EXPECT_EQ(c.journal_events, 0u);
  EXPECT_EQ(store.duplicates, 0u);
  EXPECT_EQ(server->stats().records, 1000u);
  EXPECT_EQ(server->committed("sensor-a"), 1000u);
}

TEST(Channel, AckTrimsWholeSegments) {
  TempDir dir;
  FakeStore store;
  auto o = ClientOptions(dir);
  o.segment_bytes = 8192;
  o.journal_max_bytes = 1 << 20;
  o.max_payload = 1024;
  auto client = OpenClient(o);
  for (uint64_t i = 1; i <= 2000; ++i) ASSERT_TRUE(client->Submit(Payload(i, 200)));
  client->Poll();  // flushes to the journal; no server yet
  const size_t before = SegmentFiles(o.journal_dir);
  EXPECT_GT(before, 40u);
  EXPECT_GT(client->counters().journal_bytes, 2000u * 200);
  auto server = MakeServer(o.socket_path, &store);
  ASSERT_TRUE(Pump(server.get(), {client.get()}, [&] { return AllAcked(*client); }));
  // Only the append segment stays, and it is within one segment.
  EXPECT_EQ(SegmentFiles(o.journal_dir), 1u);
  EXPECT_EQ(client->counters().segments_trimmed, before - 1);
  EXPECT_LE(client->counters().journal_bytes, o.segment_bytes);
  ExpectExactly(store.seqs["sensor-a"], 1, 2000);
}

TEST(Channel, ServerRestartMidStreamIsExactlyOnce) {
  TempDir dir;
  FakeStore store;  // outlives the server instances: it is the durable store
  const std::string sock = dir.path() + "/control.sock";
  auto client = OpenClient(ClientOptions(dir));
  uint64_t next = 1;
  for (int round = 0; round < 5; ++round) {
    auto server = MakeServer(sock, &store);
    // Some events, some progress, then the server disappears with events in flight.
    for (int i = 0; i < 3000; ++i) client->Submit(Payload(next++));
    Pump(server.get(), {client.get()}, [&] { return client->counters().acked_seq > next - 2000; });
    for (int i = 0; i < 500; ++i) client->Submit(Payload(next++));
    client->Poll();
    server->Poll(0);
    server.reset();
  }
  auto server = MakeServer(sock, &store);
  ASSERT_TRUE(Pump(server.get(), {client.get()}, [&] { return AllAcked(*client); }));
  ExpectExactly(store.seqs["sensor-a"], 1, next - 1);
  EXPECT_EQ(store.duplicates, 0u);
  // The last restart may find everything acknowledged already (the old server's ACK was in the
  // socket buffer), so the client need not reconnect to it.
  EXPECT_GE(client->counters().reconnects, 4u);
  EXPECT_EQ(client->counters().sent - client->counters().resent, next - 1);
  EXPECT_EQ(client->counters().lost, 0u);
  for (uint64_t i = 1; i < next; i += 997) EXPECT_EQ(store.payloads["sensor-a"][i - 1], Payload(i));
}

TEST(Channel, ClientRestartReplaysJournal) {
  TempDir dir;
  FakeStore store;
  auto o = ClientOptions(dir);
  o.segment_bytes = 16384;
  o.max_payload = 1024;
  {
    auto client = OpenClient(o);
    for (uint64_t i = 1; i <= 500; ++i) ASSERT_TRUE(client->Submit(Payload(i)));
    // Part of it acknowledged, then the server goes away.
    auto server = MakeServer(o.socket_path, &store);
    ASSERT_TRUE(Pump(server.get(), {client.get()}, [&] { return AllAcked(*client); }));
    server.reset();
    for (uint64_t i = 501; i <= 800; ++i) ASSERT_TRUE(client->Submit(Payload(i)));
    client->Poll();
  }  // dataplane stops (Close) with 300 unacknowledged events
  {
    auto client = OpenClient(o);
    EXPECT_EQ(client->counters().next_seq, 801u);
    EXPECT_EQ(client->counters().acked_seq, 500u);
    EXPECT_EQ(client->counters().journal_events, 300u);
    for (uint64_t i = 801; i <= 1000; ++i) ASSERT_TRUE(client->Submit(Payload(i)));
    auto server = MakeServer(o.socket_path, &store);
    ASSERT_TRUE(Pump(server.get(), {client.get()}, [&] { return AllAcked(*client); }));
    EXPECT_EQ(client->counters().sent, 500u);  // 501..1000: nothing acked is sent again
  }
  ExpectExactly(store.seqs["sensor-a"], 1, 1000);
  for (uint64_t i = 1; i <= 1000; ++i) ASSERT_EQ(store.payloads["sensor-a"][i - 1], Payload(i));
  EXPECT_EQ(store.duplicates, 0u);
}

TEST(Channel, StaleStateOnlyCausesResendsThatAreSkipped) {
  TempDir dir;
  FakeStore store;
  auto o = ClientOptions(dir);
  {
    auto client = OpenClient(o);
    for (uint64_t i = 1; i <= 100; ++i) client->Submit(Payload(i));
    auto server = MakeServer(o.socket_path, &store);
    ASSERT_TRUE(Pump(server.get(), {client.get()}, [&] { return AllAcked(*client); }));
  }
  // A state file from before the acks (as after a host crash): the journal is resent from its
  // start and the server skips what it has.
  std::filesystem::remove(o.journal_dir + "/state");
  auto client = OpenClient(o);
  EXPECT_EQ(client->counters().next_seq, 101u);
  EXPECT_EQ(client->counters().acked_seq, 0u);
  auto server = MakeServer(o.socket_path, &store);
  ASSERT_TRUE(Pump(server.get(), {client.get()}, [&] { return AllAcked(*client); }));
  EXPECT_EQ(client->counters().sent, 0u);  // WELCOME said 100: nothing to send
  for (uint64_t i = 101; i <= 150; ++i) client->Submit(Payload(i));
  ASSERT_TRUE(Pump(server.get(), {client.get()}, [&] { return AllAcked(*client); }));
  ExpectExactly(store.seqs["sensor-a"], 1, 150);
}

TEST(Channel, StateFileSurvivesATornSlot) {
  TempDir dir;
  FakeStore store;
  auto o = ClientOptions(dir);
  {
    auto client = OpenClient(o);
    for (uint64_t i = 1; i <= 30; ++i) client->Submit(Payload(i));
    auto server = MakeServer(o.socket_path, &store);
    ASSERT_TRUE(Pump(server.get(), {client.get()}, [&] { return AllAcked(*client); }));
  }
  // Corrupt the newest slot (the one with the higher generation): the other one is used, which
  // is at most one state write older.
  const std::string path = o.journal_dir + "/state";
  const int fd = ::open(path.c_str(), O_RDWR);
  uint8_t slots[64];
  ASSERT_EQ(::pread(fd, slots, 64, 0), 64);
  const int newest = ch::GetU64(slots + 8) > ch::GetU64(slots + 32 + 8) ? 0 : 1;
  slots[newest * 32 + 20] ^= 0xFF;
  ASSERT_EQ(::pwrite(fd, slots, 64, 0), 64);
  ::close(fd);
  auto client = OpenClient(o);
  EXPECT_EQ(client->counters().next_seq, 31u);
  EXPECT_LE(client->counters().acked_seq, 30u);
  auto server = MakeServer(o.socket_path, &store);
  for (uint64_t i = 31; i <= 40; ++i) client->Submit(Payload(i));
  ASSERT_TRUE(Pump(server.get(), {client.get()}, [&] { return AllAcked(*client); }));
  ExpectExactly(store.seqs["sensor-a"], 1, 40);
  EXPECT_EQ(store.duplicates, 0u);
}

TEST(Channel, TornJournalTailIsCutOnOpen) {
  TempDir dir;
  auto o = ClientOptions(dir);
  {
    auto client = OpenClient(o);
    for (uint64_t i = 1; i <= 10; ++i) client->Submit(Payload(i));
  }
  // Cut the last frame in half, as a host crash can.
  std::string seg;
  for (const auto& e : std::filesystem::directory_iterator(o.journal_dir)) {
    if (e.path().extension() == ".vcj") seg = e.path();
  }
  const auto size = std::filesystem::file_size(seg);
  std::filesystem::resize_file(seg, size - 20);
  std::filesystem::remove(o.journal_dir + "/state");
  auto client = OpenClient(o);
  EXPECT_EQ(client->counters().next_seq, 10u);  // seq 10 was torn
  EXPECT_EQ(client->counters().journal_errors, 1u);
  client->Submit(Payload(10));
  FakeStore store;
  auto server = MakeServer(o.socket_path, &store);
  ASSERT_TRUE(Pump(server.get(), {client.get()}, [&] { return AllAcked(*client); }));
  ExpectExactly(store.seqs["sensor-a"], 1, 10);
  EXPECT_EQ(store.payloads["sensor-a"][9], Payload(10));
}

TEST(Channel, JournalFullCountsLostAndNeverBlocks) {
  TempDir dir;
  auto o = ClientOptions(dir);
  o.segment_bytes = 16384;
  o.journal_max_bytes = 65536;
  o.max_payload = 4096;
  auto client = OpenClient(o);
  uint64_t accepted = 0;
  auto worst = std::chrono::nanoseconds(0);
  for (uint64_t i = 1; i <= 5000; ++i) {
    const auto t0 = Clock::now();
    if (client->Submit(Payload(i, 300))) ++accepted;
    if (i % 50 == 0) client->Poll();  // control is down: connect fails, backs off
    worst = std::max(worst, Clock::now() - t0);
  }
  const auto& c = client->counters();
  EXPECT_EQ(c.submitted, 5000u);
  EXPECT_EQ(c.submitted, accepted + c.lost);
  EXPECT_GT(c.lost, 4000u);
  EXPECT_LE(c.journal_bytes, o.journal_max_bytes);
  EXPECT_EQ(c.next_seq, accepted + 1);  // dropped events take no seq
  EXPECT_GT(c.connect_failures, 0u);
  // Generous for loaded CI machines: a Submit that waited for control would take the whole
  // backoff or forever, not milliseconds.
  EXPECT_LT(worst, std::chrono::seconds(1));
  // Control comes back: what was journalled is delivered, and the journal takes events again.
  FakeStore store;
  auto server = MakeServer(o.socket_path, &store);
  ASSERT_TRUE(Pump(server.get(), {client.get()}, [&] { return AllAcked(*client); }));
  ExpectExactly(store.seqs["sensor-a"], 1, accepted);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(client->Submit(Payload(i, 300)));
  ASSERT_TRUE(Pump(server.get(), {client.get()}, [&] { return AllAcked(*client); }));
  ExpectExactly(store.seqs["sensor-a"], 1, accepted + 100);
}

TEST(Channel, OversizePayloadIsLost) {
  TempDir dir;
  auto o = ClientOptions(dir);
  o.max_payload = 1000;
  auto client = OpenClient(o);
  EXPECT_FALSE(client->Submit(std::string(1001, 'x')));
  EXPECT_TRUE(client->Submit(std::string(1000, 'x')));
  EXPECT_EQ(client->counters().lost, 1u);
  EXPECT_EQ(client->counters().oversize, 1u);
  EXPECT_EQ(client->counters().next_seq, 2u);
}

TEST(Channel, BacksOffWithInjectedClock) {
  TempDir dir;
  auto o = ClientOptions(dir);
  o.backoff_min_ms = 100;
  o.backoff_max_ms = 1600;
  uint64_t now = 1000000;
  o.now_ms = [&now] { return now; };
  auto client = OpenClient(o);
  std::vector<uint64_t> attempts;  // times of failed attempts
  for (int ms = 0; ms < 10000; ++ms, ++now) {
    const uint64_t before = client->counters().connect_failures;
    client->Poll();
    if (client->counters().connect_failures != before) attempts.push_back(now);
  }
  ASSERT_GE(attempts.size(), 7u);
  // Delays in [b/2, b] for b = 100, 200, 400, 800, 1600, 1600...
  uint64_t b = 100;
  for (size_t i = 1; i < attempts.size(); ++i) {
    const uint64_t d = attempts[i] - attempts[i - 1];
    EXPECT_GE(d, b / 2) << i;
    EXPECT_LE(d, b + 1) << i;
    b = std::min<uint64_t>(b * 2, 1600);
  }
  EXPECT_LT(attempts.size(), 20u);
}

TEST(Channel, ServerIsAheadOfAWipedJournal) {
  TempDir dir;
  FakeStore store;
  for (uint64_t i = 1; i <= 1000; ++i) store.seqs["sensor-a"].push_back(i);
  auto o = ClientOptions(dir);
  auto client = OpenClient(o);
  for (int i = 0; i < 10; ++i) client->Submit(Payload(i));  // numbered 1..10 before connecting
  auto server = MakeServer(o.socket_path, &store);
  ASSERT_TRUE(Pump(server.get(), {client.get()}, [&] { return AllAcked(*client); }));
  EXPECT_EQ(client->counters().next_seq, 1001u);
  EXPECT_EQ(client->counters().lost, 10u);  // cannot be told apart from what control holds
  for (int i = 0; i < 10; ++i) client->Submit(Payload(i));
  ASSERT_TRUE(Pump(server.get(), {client.get()}, [&] { return AllAcked(*client); }));
  ExpectExactly(store.seqs["sensor-a"], 1, 1010);
  EXPECT_EQ(store.duplicates, 0u);
}

TEST(Channel, CommitFailureClosesAndResends) {
  TempDir dir;
  FakeStore store;
  auto o = ClientOptions(dir);
  auto server = MakeServer(o.socket_path, &store);
  auto client = OpenClient(o);
  for (uint64_t i = 1; i <= 100; ++i) client->Submit(Payload(i));
  ASSERT_TRUE(Pump(server.get(), {client.get()}, [&] { return AllAcked(*client); }));
  store.fail_next = true;
  for (uint64_t i = 101; i <= 200; ++i) client->Submit(Payload(i));
  ASSERT_TRUE(Pump(server.get(), {client.get()}, [&] { return AllAcked(*client); }));
  EXPECT_EQ(server->stats().commit_failures, 1u);
  EXPECT_GE(client->counters().resent, 1u);
  EXPECT_EQ(client->counters().reconnects, 1u);
  ExpectExactly(store.seqs["sensor-a"], 1, 200);
}

TEST(Channel, GarbageFromAClientClosesOnlyThatClient) {
  TempDir dir;
  FakeStore store;
  auto o = ClientOptions(dir);
  auto server = MakeServer(o.socket_path, &store);
  auto client = OpenClient(o);
  const int bad = RawConnect(o.socket_path);
  const char junk[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  ASSERT_EQ(::write(bad, junk, sizeof junk), static_cast<ssize_t>(sizeof junk));
  // A valid HELLO followed by a corrupted EVENT from a second raw client.
  const int bad2 = RawConnect(o.socket_path);
  std::string s;
  ch::AppendHello(&s, "sensor-z", 1);
  ch::AppendEvent(&s, 1, "{}");
  ch::AppendEvent(&s, 2, "{}");
  s[s.size() - 1] ^= 1;  // body of seq 2 corrupted
  ASSERT_EQ(::write(bad2, s.data(), s.size()), static_cast<ssize_t>(s.size()));
  for (uint64_t i = 1; i <= 100; ++i) client->Submit(Payload(i));
  ASSERT_TRUE(Pump(server.get(), {client.get()},
                   [&] { return AllAcked(*client) && server->stats().bad_frames == 2; }));
  // Both bad connections were closed: reading gives EOF (after the server's ERROR frame).
  char buf[4096];
  ssize_t r;
  while ((r = ::read(bad, buf, sizeof buf)) > 0) {
  }
  EXPECT_EQ(r, 0);
  ExpectExactly(store.seqs["sensor-a"], 1, 100);
  ExpectExactly(store.seqs["sensor-z"], 1, 1);  // what preceded the corruption is kept
  EXPECT_EQ(server->stats().active, 1u);
  ::close(bad);
  ::close(bad2);
}

TEST(Channel, OversizeFrameIsRejectedFromItsHeader) {
  TempDir dir;
  FakeStore store;
  ServerOptions so;
  so.max_frame_body = 4096;
  auto server = MakeServer(dir.path() + "/control.sock", &store, so);
  const int fd = RawConnect(dir.path() + "/control.sock");
  std::string s;
  ch::AppendHello(&s, "big", 1);
  // A header announcing 1 GiB: rejected before any body is buffered.
  uint8_t h[ch::kHeaderBytes] = {};
  ch::PutU32(h, ch::kFrameMagic);
  h[4] = static_cast<uint8_t>(ch::FrameType::kEvent);
  ch::PutU32(h + 8, 1u << 30);
  s.append(reinterpret_cast<char*>(h), sizeof h);
  s.append(100000, 'A');
  ::fcntl(fd, F_SETFL, O_NONBLOCK);
  ssize_t w = ::write(fd, s.data(), s.size());
  EXPECT_GT(w, 0);
  const auto until = Clock::now() + std::chrono::seconds(5);
  while (server->stats().oversize_frames == 0 && Clock::now() < until) server->Poll(1);
  EXPECT_EQ(server->stats().oversize_frames, 1u);
  EXPECT_EQ(server->stats().active, 0u);
  EXPECT_EQ(server->buffered_bytes(), 0u);
  // A frame at the limit is fine.
  auto o = ClientOptions(dir, "big");
  o.max_payload = 4096 - 8;
  o.segment_bytes = 65536;
  o.journal_max_bytes = 1 << 20;
  auto client = OpenClient(o);
  ASSERT_TRUE(client->Submit(std::string(4096 - 8, 'y')));
  ASSERT_TRUE(Pump(server.get(), {client.get()}, [&] { return AllAcked(*client); }));
  EXPECT_EQ(store.seqs["big"].size(), 1u);
  ::close(fd);
}

TEST(Channel, ServerReassemblesOneByteWrites) {
  TempDir dir;
  FakeStore store;
  auto server = MakeServer(dir.path() + "/control.sock", &store);
  const int fd = RawConnect(dir.path() + "/control.sock");
  std::string s;
  ch::AppendHello(&s, "slow", 1);
  for (uint64_t i = 1; i <= 20; ++i) ch::AppendEvent(&s, i, Payload(i));
  for (char c : s) {
    ASSERT_EQ(::write(fd, &c, 1), 1);
    server->Poll(0);
  }
  Pump(
      server.get(), {}, [&] { return store.LastSeq("slow") == 20; }, 2000);
  ExpectExactly(store.seqs["slow"], 1, 20);
  for (uint64_t i = 1; i <= 20; ++i) EXPECT_EQ(store.payloads["slow"][i - 1], Payload(i));
  ::close(fd);
}

TEST(Channel, ProtocolViolationsClose) {
  TempDir dir;
  FakeStore store;
  auto server = MakeServer(dir.path() + "/control.sock", &store);
  auto send = [&](const std::string& bytes) {
    const int fd = RawConnect(dir.path() + "/control.sock");
    EXPECT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    return fd;
  };
  std::string ev_first, bad_name, backwards;
  ch::AppendEvent(&ev_first, 1, "{}");  // EVENT before HELLO
  ch::AppendHello(&bad_name, "has space", 1);
  ch::AppendHello(&backwards, "s", 1);
  ch::AppendEvent(&backwards, 5, "{}");
  ch::AppendEvent(&backwards, 5, "{}");  // seq not increasing on one connection
  const int a = send(ev_first), b = send(bad_name), c = send(backwards);
  Pump(
      server.get(), {}, [&] { return server->stats().protocol_errors == 3; }, 3000);
  EXPECT_EQ(server->stats().protocol_errors, 3u);
  EXPECT_EQ(server->stats().active, 0u);
  EXPECT_EQ(store.seqs["s"].size(), 1u);
  ::close(a);
  ::close(b);
  ::close(c);
}

TEST(Channel, NewConnectionOfASensorReplacesTheOld) {
  TempDir dir;
  FakeStore store;
  auto o = ClientOptions(dir);
  auto server = MakeServer(o.socket_path, &store);
  const int old = RawConnect(o.socket_path);
  std::string s;
  ch::AppendHello(&s, "sensor-a", 1);
  ASSERT_EQ(::write(old, s.data(), s.size()), static_cast<ssize_t>(s.size()));
  Pump(
      server.get(), {}, [&] { return server->stats().sensors == 1; }, 2000);
  auto client = OpenClient(o);
  client->Submit(Payload(1));
  ASSERT_TRUE(Pump(server.get(), {client.get()}, [&] { return AllAcked(*client); }));
  EXPECT_EQ(server->stats().replaced, 1u);
  EXPECT_EQ(server->stats().active, 1u);
  ::close(old);
}

TEST(Channel, ManyClients) {
  TempDir dir;
  FakeStore store;
  auto server = MakeServer(dir.path() + "/control.sock", &store);
  std::vector<std::unique_ptr<ChannelClient>> clients;
  std::vector<ChannelClient*> raw;
  constexpr int kClients = 64;
  constexpr uint64_t kEach = 500;
  for (int i = 0; i < kClients; ++i) {
    auto o = ClientOptions(dir, "sensor-" + std::to_string(i));
    o.segment_bytes = 65536;
    o.journal_max_bytes = 1 << 20;
    o.max_payload = 1024;
    clients.push_back(OpenClient(o));
    raw.push_back(clients.back().get());
  }
  for (uint64_t n = 1; n <= kEach; ++n) {
    for (auto& c : clients) ASSERT_TRUE(c->Submit(Payload(n)));
  }
  ASSERT_TRUE(Pump(server.get(), raw, [&] {
    for (auto* c : raw) {
      if (!AllAcked(*c)) return false;
    }
    return true;
  }));
  for (int i = 0; i < kClients; ++i)
    ExpectExactly(store.seqs["sensor-" + std::to_string(i)], 1, kEach);
  EXPECT_EQ(server->stats().active, static_cast<uint64_t>(kClients));
  EXPECT_EQ(server->stats().records, kClients * kEach);
}

TEST(Channel, MaxClientsRejectsExtraConnections) {
  TempDir dir;
  FakeStore store;
  ServerOptions so;
  so.max_clients = 2;
  auto server = MakeServer(dir.path() + "/control.sock", &store, so);
  int fds[3];
  for (int& fd : fds) fd = RawConnect(dir.path() + "/control.sock");
  Pump(
      server.get(), {}, [&] { return server->stats().rejected == 1; }, 2000);
  EXPECT_EQ(server->stats().active, 2u);
  EXPECT_EQ(server->stats().rejected, 1u);
  for (int fd : fds) ::close(fd);
}

TEST(Channel, ListenRefusesALiveSocketAndReplacesAStaleOne) {
  TempDir dir;
  FakeStore store;
  const std::string sock = dir.path() + "/control.sock";
  auto server = MakeServer(sock, &store);
  struct stat st;
  ASSERT_EQ(::stat(sock.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  ServerOptions o;
  o.socket_path = sock;
  ChannelServer second(o, nullptr, nullptr);
  EXPECT_NE(second.Listen(), "");
  // A file that is not a socket is never removed.
  ChannelServer third(ServerOptions{.socket_path = dir.path() + "/plain"}, nullptr, nullptr);
  {
    std::FILE* f = std::fopen((dir.path() + "/plain").c_str(), "w");
    std::fclose(f);
  }
  EXPECT_NE(third.Listen(), "");
  EXPECT_TRUE(std::filesystem::exists(dir.path() + "/plain"));
}

TEST(Channel, JournalBelongsToOneSensor) {
  TempDir dir;
  auto o = ClientOptions(dir);
  { auto c = OpenClient(o); }
  o.sensor = "other";
  std::string err;
  EXPECT_EQ(ChannelClient::Open(o, &err), nullptr);
  EXPECT_NE(err.find("belongs to sensor 'sensor-a'"), std::string::npos) << err;
}

// ---------------------------------------------------------------- kill -9 of control

// The child's durable "store": batches appended as [u32 count][count x u64 seq]; a batch cut by
// the kill is ignored (and truncated) on recovery, and was never acknowledged.
std::vector<uint64_t> ReadLog(const std::string& path, bool truncate) {
  std::vector<uint64_t> seqs;
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT, 0640);
  std::vector<uint8_t> data;
  uint8_t buf[65536];
  ssize_t r;
  while ((r = ::read(fd, buf, sizeof buf)) > 0) data.insert(data.end(), buf, buf + r);
  size_t off = 0;
  while (off + 4 <= data.size()) {
    const uint32_t n = ch::GetU32(data.data() + off);
    if (off + 4 + 8ull * n > data.size()) break;
    for (uint32_t i = 0; i < n; ++i)
      seqs.push_back(ch::GetU64(data.data() + off + 4 + size_t{8} * i));
    off += 4 + 8ull * n;
  }
  if (truncate && off != data.size()) {
    EXPECT_EQ(::ftruncate(fd, static_cast<off_t>(off)), 0);
  }
  ::close(fd);
  return seqs;
}

[[noreturn]] void ServerChild(const std::string& sock, const std::string& log) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  std::vector<uint64_t> have = ReadLog(log, true);
  uint64_t last = have.empty() ? 0 : have.back();
  const int fd = ::open(log.c_str(), O_WRONLY | O_APPEND);
  ServerOptions o;
  o.socket_path = sock;
  ChannelServer server(
      o,
      [&](std::string_view, std::span<const Record> recs) {
        std::string b(4 + 8 * recs.size(), '\0');
        auto* p = reinterpret_cast<uint8_t*>(b.data());
        ch::PutU32(p, static_cast<uint32_t>(recs.size()));
        for (size_t i = 0; i < recs.size(); ++i) {
          if (recs[i].seq <= last) ::_exit(3);  // a duplicate insert: the test fails
          last = recs[i].seq;
          ch::PutU64(p + 4 + 8 * i, recs[i].seq);
        }
        return ::write(fd, b.data(), b.size()) == static_cast<ssize_t>(b.size());
      },
      [&](std::string_view) { return last; });
  if (!server.Listen().empty()) ::_exit(2);
  while (true) server.Poll(50);
}

pid_t StartServerChild(const std::string& sock, const std::string& log) {
  const pid_t pid = ::fork();
  if (pid == 0) ServerChild(sock, log);
  return pid;
}

TEST(Channel, KillDashNineOfControlLosesNothingAndDuplicatesNothing) {
  TempDir dir;
  const std::string log = dir.path() + "/store.log";
  auto o = ClientOptions(dir);
  o.backoff_min_ms = 10;
  o.backoff_max_ms = 100;
  auto client = OpenClient(o);
  constexpr uint64_t kN = 100000;
  pid_t child = StartServerChild(o.socket_path, log);
  int kills = 0;
  const uint64_t kill_at[] = {20000, 50000, 80000};
  uint64_t submitted = 0;
  uint64_t in_flight = 0;
  const auto t0 = Clock::now();
  // On a fast machine the whole stream can be submitted before the first ACK arrives: keep
  // polling (bounded in time) until the three kills have happened, so that the test never depends
  // on the race.
  while (submitted < kN || (kills < 3 && Clock::now() - t0 < std::chrono::seconds(60))) {
    for (int i = 0; i < 200 && submitted < kN; ++i) client->Submit(Payload(++submitted, 300));
    client->Poll();
    // Kill once the acks pass a mark while events are in flight (sent, not yet acknowledged), or,
    // once everything is submitted, as soon as the acks pass the mark.
    const auto& k = client->counters();
    if (submitted == kN && kills < 3 && k.acked_seq < kill_at[kills]) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (kills < 3 && k.acked_seq >= kill_at[kills] &&
        (k.sent > k.acked_seq + 200 || submitted == kN)) {
      in_flight += k.sent - k.resent - k.acked_seq;
      ::kill(child, SIGKILL);
      int st = 0;
      ::waitpid(child, &st, 0);
      ASSERT_TRUE(WIFSIGNALED(st)) << "child exited " << WEXITSTATUS(st);
      ++kills;
      // Control stays down for a moment while the dataplane keeps submitting.
      for (int i = 0; i < 5000 && submitted < kN; ++i) client->Submit(Payload(++submitted, 300));
      client->Poll();
      child = StartServerChild(o.socket_path, log);
    }
  }
  ASSERT_TRUE(client->Drain(60000)) << "acked " << client->counters().acked_seq;
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  ::kill(child, SIGKILL);
  int st = 0;
  ::waitpid(child, &st, 0);
  ASSERT_TRUE(WIFSIGNALED(st)) << "child exited " << WEXITSTATUS(st);
  EXPECT_EQ(kills, 3);
  const std::vector<uint64_t> seqs = ReadLog(log, false);
  std::vector<int> seen(kN + 1, 0);
  for (uint64_t s : seqs) {
    ASSERT_GE(s, 1u);
    ASSERT_LE(s, kN);
    ++seen[s];
  }
  for (uint64_t s = 1; s <= kN; ++s) ASSERT_EQ(seen[s], 1) << "seq " << s;
  EXPECT_EQ(seqs.size(), kN);
  const auto& c = client->counters();
  EXPECT_EQ(c.lost, 0u);
  EXPECT_EQ(c.acked, kN);
  EXPECT_EQ(c.sent - c.resent, kN);  // every event left at least once; resends are the rest
  // At least the first kill forces a reconnection (events were still unacknowledged). More is a
  // matter of timing: when one connection's acks pass two kill marks at once, the next kills come
  // back to back before the client has reconnected, and the last new child may find nothing to
  // do when the killed one had committed everything and its final ACK was still in the socket
  // buffer (seen on a loaded CI machine: 3 kills, 1 reconnect, every event exactly once).
  EXPECT_GE(c.reconnects, 1u);
  std::printf("kill -9 x3: %" PRIu64 " events exactly once in %.2f s; %" PRIu64
              " in flight at the kills; sent %" PRIu64 " (resent %" PRIu64 "), reconnects %" PRIu64
              "\n",
              kN, secs, in_flight, c.sent, c.resent, c.reconnects);
}

// ---------------------------------------------------------------- throughput

TEST(Channel, Throughput) {
  TempDir dir;
  FakeStore store;
  store.keep_payloads = false;
  auto o = ClientOptions(dir);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> bytes{0};
  std::thread server_thread([&] {
    ServerOptions so;
    so.socket_path = o.socket_path;
    ChannelServer server(
        so,
        [&](std::string_view n, std::span<const Record> r) {
          for (const Record& x : r) bytes.fetch_add(x.payload.size(), std::memory_order_relaxed);
          return store.Insert(n, r);
        },
        [&](std::string_view n) { return store.LastSeq(n); });
    ASSERT_EQ(server.Listen(), "");
    while (!stop.load(std::memory_order_relaxed)) server.Poll(5);
  });
  auto client = OpenClient(o);
  constexpr uint64_t kN = 300000;
  const std::string body = Payload(0, 300);
  const auto t0 = Clock::now();
  for (uint64_t i = 0; i < kN; ++i) {
    client->Submit(body);
    if (i % 256 == 255) client->Poll();  // the exporter polls once per drained burst
  }
  const auto t1 = Clock::now();
  ASSERT_TRUE(client->Drain(60000));
  const auto t2 = Clock::now();
  stop = true;
  server_thread.join();
  ASSERT_EQ(store.LastSeq("sensor-a"), kN);
  EXPECT_EQ(client->counters().lost, 0u);
  const double submit_s = std::chrono::duration<double>(t1 - t0).count();
  const double total_s = std::chrono::duration<double>(t2 - t0).count();
  std::printf(
      "channel throughput: %" PRIu64
      " x %zu-byte events: %.0f records/s end to end "
      "(journal + socket + commit + ack), %.2f MB/s; exporter-side submit+poll %.2f us/record\n",
      kN, body.size(), kN / total_s, bytes.load() / total_s / 1e6, submit_s * 1e6 / kN);
}

}  // namespace
}  // namespace vigil
