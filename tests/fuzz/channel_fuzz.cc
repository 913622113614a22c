// libFuzzer target for control's event channel server: arbitrary bytes from a connected client
// must never crash the server, its buffered input/output stays within the documented bound,
// everything it commits is in increasing seq order above what it committed before, and every
// byte it writes back is a valid WELCOME, ACK or ERROR frame.
//
// Input: byte 0 picks the write chunk size (bits 0-2), CRC fixing (bit 6) and failing commits
// (bit 7); the rest is the stream
// the "client" writes over a socketpair (Adopt), in chunks, with a server Poll() after each.
// The frame decoder is also run over the raw input directly.
// Built and run by scripts/fuzz.sh (clang, -fsanitize=fuzzer,address,undefined).
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <span>
#include <string>

#include "control/channel/channel_server.h"
#include "dataplane/export/channel_proto.h"

namespace {

namespace ch = vigil::channel;
using vigil::ctl::channel::ChannelServer;
using vigil::ctl::channel::Record;
using vigil::ctl::channel::ServerOptions;

constexpr uint32_t kMaxBody = 4096;
constexpr size_t kRound = 8192;
// rbuf: one partial frame plus a round's bytes; wbuf: the 64 KiB output cap plus one frame.
constexpr size_t kBound = ch::kHeaderBytes + kMaxBody + kRound + (64u << 10) + 512;

void Check(bool ok) {
  if (!ok) std::abort();
}

struct Harness {
  std::map<std::string, uint64_t, std::less<>> committed;
  bool fail_commits = false;
  uint64_t commits = 0;
  ChannelServer server;

  Harness()
      : server(
            [] {
              ServerOptions o;
              o.max_frame_body = kMaxBody;
              o.read_bytes_per_round = kRound;
              o.max_batch = 16;
              return o;
            }(),
            [this](std::string_view sensor, std::span<const Record> recs) {
              Check(!recs.empty());
              auto it = committed.try_emplace(std::string(sensor), 0).first;
              for (const Record& r : recs) {
                Check(r.seq > it->second);  // dedup and ordering hold for any input
                it->second = r.seq;
              }
              ++commits;
              return !(fail_commits && commits % 2 == 0);
            },
            [this](std::string_view sensor) {
              auto it = committed.find(sensor);
              return it == committed.end() ? 0 : it->second;
            }) {}
};

// Everything the server sends must be whole, valid server frames.
void CheckOutput(std::string* out) {
  size_t off = 0;
  while (off < out->size()) {
    ch::Frame f;
    const auto st = ch::DecodeFrame(
        {reinterpret_cast<const uint8_t*>(out->data()) + off, out->size() - off}, kMaxBody, &f);
    if (st == ch::DecodeStatus::kNeedMore) break;
    Check(st == ch::DecodeStatus::kFrame);
    Check(f.type == ch::FrameType::kWelcome || f.type == ch::FrameType::kAck ||
          f.type == ch::FrameType::kError);
    off += f.size;
  }
  out->erase(0, off);
}

void ReadOutput(int fd, std::string* out) {
  char buf[4096];
  ssize_t r;
  while ((r = ::read(fd, buf, sizeof buf)) > 0) out->append(buf, static_cast<size_t>(r));
  CheckOutput(out);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The decoder alone: every reported size lies inside the input.
  for (size_t off = 0; off < size;) {
    ch::Frame f;
    const auto st = ch::DecodeFrame({data + off, size - off}, kMaxBody, &f);
    if (st != ch::DecodeStatus::kFrame) break;
    Check(f.size >= ch::kHeaderBytes && f.size <= size - off);
    Check(f.body.data() >= data + off && f.body.data() + f.body.size() <= data + off + f.size);
    Check(f.text.size() <= f.body.size());
    off += f.size;
  }

  if (size == 0) return 0;
  static Harness* h = new Harness();  // reused: state across inputs is part of what is tested
  const uint8_t ctl = data[0];
  h->fail_commits = (ctl & 0x80) != 0;
  if (h->committed.size() > 4096) h->committed.clear();  // the fake store's own growth
  static const size_t kChunks[8] = {1, 3, 16, 17, 64, 500, 4096, 1 << 20};
  const size_t chunk = kChunks[ctl & 7];
  data += 1;
  size -= 1;
  // With bit 6 set, every frame-looking header gets its CRC fixed, so that mutations reach the
  // frame bodies and the server's state machine instead of stopping at the checksum.
  std::string fixed;
  if ((ctl & 0x40) != 0) {
    fixed.assign(reinterpret_cast<const char*>(data), size);
    auto* p = reinterpret_cast<uint8_t*>(fixed.data());
    for (size_t at = 0; at + ch::kHeaderBytes <= size;) {
      const uint32_t len = ch::GetU32(p + at + 8);
      if (ch::GetU32(p + at) != ch::kFrameMagic || len > size - at - ch::kHeaderBytes) break;
      uint32_t crc = ch::Crc32c(0, p + at + 4, 8);
      ch::PutU32(p + at + 12, ch::Crc32c(crc, p + at + ch::kHeaderBytes, len));
      at += ch::kHeaderBytes + len;
    }
    data = p;
  }

  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return 0;
  ::fcntl(sv[1], F_SETFL, O_NONBLOCK);
  h->server.Adopt(sv[0]);
  std::string out;
  size_t off = 0;
  int idle = 0;
  while (off < size && idle < 64) {
    const size_t n = std::min(chunk, size - off);
    const ssize_t w = ::send(sv[1], data + off, n, MSG_NOSIGNAL);
    if (w > 0) {
      off += static_cast<size_t>(w);
      idle = 0;
    } else {
      ++idle;  // the server closed (EPIPE) or its buffer is full: let it read
      if (h->server.stats().active == 0) break;
    }
    h->server.Poll(0);
    Check(h->server.buffered_bytes() <= kBound);
    ReadOutput(sv[1], &out);
  }
  ::close(sv[1]);
  for (int i = 0; i < 8 && h->server.stats().active > 0; ++i) h->server.Poll(0);
  Check(h->server.stats().active == 0);  // EOF closes the connection
  Check(h->server.buffered_bytes() == 0);
  return 0;
}
