// vigil-history: the packet history without DPDK (docs/evidence.md, "Packet history").
//
//   vigil-history export --dir D --host IP [--peer IP] [--port N] [--proto tcp|udp]
//                        --from T --to T -o FILE
//       Writes the matching packets of the segments under D (read-only: safe beside a running
//       dataplane) to FILE, and prints one line: what was written and what part of the window
//       was no longer retained. T is RFC 3339 (2026-11-26T10:00:00Z) or unix seconds.
//   vigil-history import --dir D --pcap IN [--memory-mb N | --memory-kb N] [--segment-mb N]
//                        [--disk-mb N] [--snaplen N] [--spool-every N]
//       Feeds a capture through one PacketHistory ring and the spooler, as a worker and the
//       main thread do (the spooler runs every N packets; by default whenever half the ring
//       is new).
//   vigil-history bench [--packets N]
//       Append cost per 64- and 1500-byte frame.
//
// Exit status: 0 done, 1 error, 2 usage. Single-threaded.
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "dataplane/capture/history_filter.h"
#include "dataplane/capture/history_spool.h"
#include "dataplane/capture/packet_history.h"
#include "dataplane/capture/pcap_file.h"

namespace vigil::dp {
namespace {

int Usage() {
  std::fprintf(stderr,
               "usage: vigil-history export --dir D --host IP [--peer IP] [--port N] "
               "[--proto tcp|udp] --from T --to T -o FILE\n"
               "       vigil-history import --dir D --pcap IN [--memory-mb N | --memory-kb N] "
               "[--segment-mb N] [--disk-mb N] [--snaplen N] [--spool-every N]\n"
               "       vigil-history bench [--packets N]\n"
               "T: RFC 3339 (2026-11-26T10:00:00Z) or unix seconds\n");
  return 2;
}

// --name value pairs; false on a stray argument or a missing value.
bool ParseArgs(int argc, char** argv, std::map<std::string, std::string>* args) {
  for (int i = 2; i < argc; ++i) {
    std::string key = argv[i];
    if (key == "-o") key = "--out";
    if (key.rfind("--", 0) != 0 || i + 1 >= argc) {
      std::fprintf(stderr, "vigil-history: unexpected argument %s\n", argv[i]);
      return false;
    }
    (*args)[key.substr(2)] = argv[++i];
  }
  return true;
}

bool Number(const std::map<std::string, std::string>& args, const char* key, uint64_t* out) {
  auto it = args.find(key);
  if (it == args.end()) return true;
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(it->second.c_str(), &end, 10);
  if (errno != 0 || end == it->second.c_str() || *end != '\0') {
    std::fprintf(stderr, "vigil-history: --%s: not a number: %s\n", key, it->second.c_str());
    return false;
  }
  *out = v;
  return true;
}

int Export(const std::map<std::string, std::string>& args) {
  for (const char* k : {"dir", "host", "from", "to", "out"}) {
    if (!args.count(k)) {
      std::fprintf(stderr, "vigil-history export: --%s is required\n", k);
      return 2;
    }
  }
  HistoryFilter f;
  if (!ParseHistoryAddress(args.at("host"), f.host)) {
    std::fprintf(stderr, "vigil-history: --host: not an IP address: %s\n", args.at("host").c_str());
    return 2;
  }
  if (args.count("peer")) {
    f.has_peer = true;
    if (!ParseHistoryAddress(args.at("peer"), f.peer)) {
      std::fprintf(stderr, "vigil-history: --peer: not an IP address: %s\n",
                   args.at("peer").c_str());
      return 2;
    }
  }
  uint64_t port = 0;
  if (!Number(args, "port", &port) || port > 65535) return 2;
  f.port = static_cast<uint16_t>(port);
  if (args.count("proto") && !ParseHistoryProto(args.at("proto"), &f.proto)) {
    std::fprintf(stderr, "vigil-history: --proto: tcp, udp or a number: %s\n",
                 args.at("proto").c_str());
    return 2;
  }
  uint64_t from, to;
  if (!ParseHistoryTime(args.at("from"), &from) || !ParseHistoryTime(args.at("to"), &to)) {
    std::fprintf(stderr, "vigil-history: --from/--to: RFC 3339 or unix seconds\n");
    return 2;
  }
  SpoolOptions o;
  o.spool = true;
  o.read_only = true;
  o.dir = args.at("dir");
  HistorySpool spool(o, {});
  const std::string err = spool.Open();
  if (!err.empty()) {
    std::fprintf(stderr, "vigil-history: %s\n", err.c_str());
    return 1;
  }
  for (const std::string& e : spool.open_errors()) {
    std::fprintf(stderr, "vigil-history: %s\n", e.c_str());
  }
  ExportResult r;
  const bool ok = spool.Export(f, from, to, args.at("out"), &r);
  std::printf("%s: %s: %s\n", ok ? "wrote" : "failed", args.at("out").c_str(),
              r.Summary(from, to).c_str());
  for (const std::string& e : r.errors) std::fprintf(stderr, "vigil-history: %s\n", e.c_str());
  return ok ? 0 : 1;
}

int Import(const std::map<std::string, std::string>& args) {
  for (const char* k : {"dir", "pcap"}) {
    if (!args.count(k)) {
      std::fprintf(stderr, "vigil-history import: --%s is required\n", k);
      return 2;
    }
  }
  HistoryConfig c;
  c.spool = true;
  c.dir = args.at("dir");
  uint64_t memory_mb = c.memory_mb_per_worker, memory_kb = 0, segment_mb = c.segment_mb,
           disk_mb = c.disk_mb, snaplen = c.snaplen, every = 0;
  if (!Number(args, "memory-mb", &memory_mb) || !Number(args, "memory-kb", &memory_kb) ||
      !Number(args, "segment-mb", &segment_mb) || !Number(args, "disk-mb", &disk_mb) ||
      !Number(args, "snaplen", &snaplen) || !Number(args, "spool-every", &every))
    return 2;
  c.segment_mb = static_cast<uint32_t>(segment_mb);
  c.disk_mb = static_cast<uint32_t>(disk_mb);
  const size_t ring_bytes = memory_kb != 0 ? memory_kb << 10 : memory_mb << 20;
  PacketHistory ring(PacketHistory::MemoryBytes(ring_bytes), static_cast<uint32_t>(snaplen));
  HistorySpool spool(SpoolOptions::FromConfig(c), {&ring});
  std::string err = spool.Open();
  if (!err.empty()) {
    std::fprintf(stderr, "vigil-history: %s\n", err.c_str());
    return 1;
  }
  for (const std::string& e : spool.open_errors()) {
    std::fprintf(stderr, "vigil-history: %s\n", e.c_str());
  }
  PcapReader in;
  err = in.Open(args.at("pcap"));
  if (err.empty() && in.linktype() != kPcapLinkEthernet) {
    err = args.at("pcap") + ": link type " + std::to_string(in.linktype()) + " is not Ethernet";
  }
  if (!err.empty()) {
    std::fprintf(stderr, "vigil-history: %s\n", err.c_str());
    return 1;
  }
  std::vector<uint8_t> frame(kPcapMaxRecordBytes);
  uint64_t ts, n = 0, spooled_at = 0;
  uint32_t cap, wire;
  PcapReader::Result res;
  while ((res = in.Next(&ts, &cap, &wire, frame)) == PcapReader::Result::kOk) {
    ring.Append(ts, std::span<const uint8_t>(frame.data(), cap), wire);
    ++n;
    // As the main thread should: often enough that the ring never laps the spooler.
    if (every != 0 ? n % every == 0 : ring.NewestPosition() - spooled_at > ring.capacity() / 2) {
      spool.Spool();
      spooled_at = ring.NewestPosition();
    }
  }
  if (res != PcapReader::Result::kEnd) {
    std::fprintf(stderr, "vigil-history: %s: %s at byte %llu; imported what came before\n",
                 args.at("pcap").c_str(),
                 res == PcapReader::Result::kTruncated ? "cut short" : "corrupt record",
                 static_cast<unsigned long long>(in.offset()));
  }
  spool.Close();
  const HistorySpoolCounters sc = spool.counters();
  const PacketHistoryCounters rc = ring.counters();
  std::printf(
      "imported %llu packets from %s: ring %zu bytes (overwritten %llu), spooled %llu, lost "
      "before spooling %llu, write errors %llu, segments %llu (%llu bytes, %llu deleted)\n",
      static_cast<unsigned long long>(n), args.at("pcap").c_str(), ring.capacity(),
      static_cast<unsigned long long>(rc.overwritten),
      static_cast<unsigned long long>(sc.spooled_packets), static_cast<unsigned long long>(sc.lost),
      static_cast<unsigned long long>(sc.write_errors),
      static_cast<unsigned long long>(sc.segments), static_cast<unsigned long long>(sc.disk_bytes),
      static_cast<unsigned long long>(sc.segments_deleted));
  if (sc.write_errors != 0) {
    std::fprintf(stderr, "vigil-history: %s\n", spool.last_error().c_str());
    return 1;
  }
  return 0;
}

int Bench(const std::map<std::string, std::string>& args) {
  uint64_t packets = 20'000'000;
  if (!Number(args, "packets", &packets)) return 2;
  PacketHistory ring(64u << 20, kHistoryMaxSnaplen);
  std::vector<uint8_t> frame(1514, 0x5a);
  for (size_t size : {64, 1500}) {
    const std::span<const uint8_t> f(frame.data(), size);
    // One lap first: the steady state overwrites.
    const uint64_t lap = ring.capacity() / size + 1;
    for (uint64_t i = 0; i < lap; ++i) ring.Append(i, f, static_cast<uint32_t>(size));
    const uint64_t n = size == 64 ? packets : packets / 4;
    const auto t0 = std::chrono::steady_clock::now();
    for (uint64_t i = 0; i < n; ++i) ring.Append(i, f, static_cast<uint32_t>(size));
    const double ns =
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
    std::printf("append %4zu-byte frames: %.1f ns/packet (%.1f Mpps, %.1f Gbit/s of frames)\n",
                size, ns / n, n / ns * 1e3, n * size * 8 / ns);
  }
  return 0;
}

}  // namespace
}  // namespace vigil::dp

int main(int argc, char** argv) {
  if (argc < 2) return vigil::dp::Usage();
  std::map<std::string, std::string> args;
  if (!vigil::dp::ParseArgs(argc, argv, &args)) return vigil::dp::Usage();
  const std::string cmd = argv[1];
  if (cmd == "export") return vigil::dp::Export(args);
  if (cmd == "import") return vigil::dp::Import(args);
  if (cmd == "bench") return vigil::dp::Bench(args);
  return vigil::dp::Usage();
}
