// Packet history (dataplane/capture): the per-worker ring (wrap, overwrite, a concurrent reader
// never sees a torn record), the disk spool (rotation, disk bound, restart, index rebuild and
// skipping, corrupt files), export (memory + disk merge without duplicates, window not retained,
// IPv6, VLAN, fragments, filters), the parameter parsers, the comparison with tshark on a shared
// capture, and the Append cost (printed, never a failure).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/capture/history_filter.h"
#include "dataplane/capture/history_spool.h"
#include "dataplane/capture/packet_history.h"
#include "dataplane/capture/pcap_file.h"

namespace vigil::dp {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

constexpr uint64_t kSec = 1'000'000'000;
constexpr uint64_t kT0 = 1'764'151'200 * kSec;  // 2025-11-26T10:00:00Z

struct FrameSpec {
  std::string src = "10.0.0.1";
  std::string dst = "10.0.0.2";
  uint8_t proto = 6;
  uint16_t sport = 40000;
  uint16_t dport = 445;
  size_t payload = 32;
  std::vector<uint16_t> vlans;
  uint16_t frag_offset = 0;  // in 8-byte units; non-zero: no L4 header
  bool more_fragments = false;
  uint8_t fill = 0;
};

void Put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}

Bytes Frame(const FrameSpec& s) {
  Bytes b = {0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1};
  for (uint16_t v : s.vlans) {
    Put16(b, 0x8100);
    Put16(b, v);
  }
  const bool v6 = s.src.find(':') != std::string::npos;
  Put16(b, v6 ? 0x86dd : 0x0800);
  Bytes l4;
  if (s.frag_offset == 0) {
    if (s.proto == 6) {
      Put16(l4, s.sport);
      Put16(l4, s.dport);
      l4.insert(l4.end(), {0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0});
    } else if (s.proto == 17) {
      Put16(l4, s.sport);
      Put16(l4, s.dport);
      Put16(l4, static_cast<uint16_t>(8 + s.payload));
      Put16(l4, 0);
    }
  }
  for (size_t i = 0; i < s.payload; ++i) l4.push_back(static_cast<uint8_t>(s.fill + i));
  uint8_t src[16], dst[16];
  EXPECT_TRUE(ParseHistoryAddress(s.src, src));
  EXPECT_TRUE(ParseHistoryAddress(s.dst, dst));
  if (v6) {
    b.insert(b.end(), {0x60, 0, 0, 0});
    Put16(b, static_cast<uint16_t>(l4.size()));
    b.push_back(s.proto);
    b.push_back(64);
    b.insert(b.end(), src, src + 16);
    b.insert(b.end(), dst, dst + 16);
  } else {
    b.push_back(0x45);
    b.push_back(0);
    Put16(b, static_cast<uint16_t>(20 + l4.size()));
    Put16(b, 1234);
    Put16(b, static_cast<uint16_t>((s.more_fragments ? 0x2000 : 0) | s.frag_offset));
    b.push_back(64);
    b.push_back(s.proto);
    Put16(b, 0);
    b.insert(b.end(), src + 12, src + 16);
    b.insert(b.end(), dst + 12, dst + 16);
  }
  b.insert(b.end(), l4.begin(), l4.end());
  return b;
}

struct Packet {
  uint64_t ts;
  uint32_t wire_len;
  Bytes data;
};

std::vector<Packet> ReadPcap(const std::string& path, std::string* err = nullptr) {
  PcapReader r;
  std::vector<Packet> out;
  const std::string e = r.Open(path);
  if (err != nullptr) *err = e;
  if (!e.empty()) return out;
  Bytes buf(kPcapMaxRecordBytes);
  Packet p;
  uint32_t cap;
  while (r.Next(&p.ts, &cap, &p.wire_len, buf) == PcapReader::Result::kOk) {
    p.data.assign(buf.begin(), buf.begin() + cap);
    out.push_back(p);
  }
  return out;
}

HistoryFilter HostFilter(const std::string& host) {
  HistoryFilter f;
  EXPECT_TRUE(ParseHistoryAddress(host, f.host));
  return f;
}

class HistoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/vigil-history-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }
  SpoolOptions Options(uint64_t segment_bytes = 1 << 20, uint64_t disk_bytes = 64 << 20) {
    SpoolOptions o;
    o.spool = true;
    o.dir = dir_ + "/spool";
    o.segment_bytes = segment_bytes;
    o.disk_bytes = disk_bytes;
    return o;
  }
  std::vector<fs::path> Files(const std::string& ext) {
    std::vector<fs::path> v;
    for (const auto& e : fs::directory_iterator(dir_ + "/spool")) {
      if (e.path().extension() == ext) v.push_back(e.path());
    }
    std::sort(v.begin(), v.end());
    return v;
  }
  std::string dir_;
};

// ---------------------------------------------------------------------------------------------
// The ring.

TEST(PacketHistoryTest, MemoryBytesRoundsDown) {
  EXPECT_EQ(PacketHistory::MemoryBytes(0), PacketHistory::kMinBytes);
  EXPECT_EQ(PacketHistory::MemoryBytes(100 << 20), size_t{64} << 20);
  EXPECT_EQ(PacketHistory::MemoryBytes(64 << 20), size_t{64} << 20);
}

TEST(PacketHistoryTest, WrapAndOverwriteKeepTheNewestInOrder) {
  PacketHistory ring(64 * 1024, kHistoryMaxSnaplen);
  constexpr uint64_t kN = 5000;
  for (uint64_t i = 0; i < kN; ++i) {
    FrameSpec s;
    s.payload = 20 + i % 300;  // varied sizes: pad records at the end of the array
    s.fill = static_cast<uint8_t>(i);
    const Bytes f = Frame(s);
    ring.Append(kT0 + i, f, static_cast<uint32_t>(f.size()));
  }
  Bytes buf(kHistoryMaxSnaplen);
  HistoryRecordInfo info;
  uint64_t pos = ring.OldestPosition();
  std::vector<uint64_t> seqs;
  while (ring.Read(&pos, &info, buf) == PacketHistory::ReadResult::kOk) {
    FrameSpec s;
    s.payload = 20 + info.seq % 300;
    s.fill = static_cast<uint8_t>(info.seq);
    const Bytes want = Frame(s);
    ASSERT_EQ(info.cap_len, want.size());
    ASSERT_EQ(info.wire_len, want.size());
    ASSERT_EQ(info.ts_ns, kT0 + info.seq);
    ASSERT_TRUE(std::equal(want.begin(), want.end(), buf.begin()));
    seqs.push_back(info.seq);
  }
  ASSERT_FALSE(seqs.empty());
  EXPECT_EQ(seqs.back(), kN - 1);
  for (size_t i = 1; i < seqs.size(); ++i) ASSERT_EQ(seqs[i], seqs[i - 1] + 1);
  const PacketHistoryCounters c = ring.counters();
  EXPECT_EQ(c.packets, kN);
  EXPECT_EQ(c.overwritten, kN - seqs.size());
  EXPECT_GT(c.overwritten, 0u);
  EXPECT_EQ(c.torn, 0u);
  // A reader left behind is told so and resumes at the oldest record.
  uint64_t stale = 0;
  EXPECT_EQ(ring.Read(&stale, &info, buf), PacketHistory::ReadResult::kOverrun);
  EXPECT_EQ(stale, ring.OldestPosition());
  uint64_t end = ring.NewestPosition();
  EXPECT_EQ(ring.Read(&end, &info, buf), PacketHistory::ReadResult::kEnd);
}

TEST(PacketHistoryTest, SnaplenClipsAndKeepsWireLength) {
  PacketHistory ring(1 << 20, 128);
  EXPECT_EQ(ring.snaplen(), 128u);
  FrameSpec s;
  s.payload = 1400;
  const Bytes f = Frame(s);
  ring.Append(kT0, f, static_cast<uint32_t>(f.size()));
  Bytes buf(kHistoryMaxSnaplen);
  HistoryRecordInfo info;
  uint64_t pos = 0;
  ASSERT_EQ(ring.Read(&pos, &info, buf), PacketHistory::ReadResult::kOk);
  EXPECT_EQ(info.cap_len, 128u);
  EXPECT_EQ(info.wire_len, f.size());
  // The cut frame still matches on addresses and ports.
  HistoryFilter h = HostFilter("10.0.0.2");
  h.port = 445;
  h.proto = 6;
  EXPECT_TRUE(h.MatchesFrame(std::span<const uint8_t>(buf.data(), info.cap_len), info.wire_len));
}

// Frame contents derived from the sequence number, with a checksum over the bytes.
size_t TornLen(uint64_t seq) { return 60 + (seq * 7919) % 1441; }
uint64_t Fnv(const uint8_t* p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

TEST(PacketHistoryTest, ConcurrentReaderNeverReturnsATornRecord) {
  PacketHistory ring(64 * 1024, kHistoryMaxSnaplen);  // small: the writer laps the reader often
  constexpr uint64_t kN = 400'000;
  std::atomic<bool> done{false};
  std::thread writer([&] {
    Bytes f(1600);
    for (uint64_t seq = 0; seq < kN; ++seq) {
      const size_t len = TornLen(seq);
      std::memcpy(f.data(), &seq, 8);
      for (size_t i = 16; i < len; ++i) f[i] = static_cast<uint8_t>(seq * 13 + i);
      const uint64_t sum = Fnv(f.data() + 16, len - 16) ^ seq;
      std::memcpy(f.data() + 8, &sum, 8);
      ring.Append(seq, std::span<const uint8_t>(f.data(), len), static_cast<uint32_t>(len));
    }
    done.store(true, std::memory_order_release);
  });
  Bytes buf(kHistoryMaxSnaplen);
  HistoryRecordInfo info;
  uint64_t pos = 0, got = 0, overruns = 0, last_seq = 0, max_seq = 0, bad = 0;
  bool any = false;
  for (uint64_t i = 0;; ++i) {
    const bool finished = done.load(std::memory_order_acquire);
    if (i % 16 == 0 && !finished) {
      // Now and then chase the oldest record, where the writer is overwriting.
      pos = ring.OldestPosition();
      any = false;
    }
    const auto res = ring.Read(&pos, &info, buf);
    if (res == PacketHistory::ReadResult::kOverrun) {
      ++overruns;
      continue;
    }
    if (res == PacketHistory::ReadResult::kEnd) {
      if (finished) break;
      continue;
    }
    uint64_t seq, sum;
    std::memcpy(&seq, buf.data(), 8);
    std::memcpy(&sum, buf.data() + 8, 8);
    if (seq != info.seq || info.ts_ns != seq || info.cap_len != TornLen(seq) ||
        sum != (Fnv(buf.data() + 16, info.cap_len - 16) ^ seq) || (any && seq <= last_seq))
      ++bad;
    any = true;
    last_seq = seq;
    max_seq = std::max(max_seq, seq);
    ++got;
  }
  writer.join();
  const PacketHistoryCounters c = ring.counters();
  std::printf(
      "[ info ] %llu appends: reader got %llu records, %llu overruns, %llu torn copies "
      "discarded, %llu bad\n",
      static_cast<unsigned long long>(kN), static_cast<unsigned long long>(got),
      static_cast<unsigned long long>(overruns), static_cast<unsigned long long>(c.torn),
      static_cast<unsigned long long>(bad));
  EXPECT_EQ(bad, 0u);
  EXPECT_GT(got, 0u);
  EXPECT_EQ(max_seq, kN - 1);
  EXPECT_EQ(c.packets, kN);
}

// ---------------------------------------------------------------------------------------------
// Parsers and the filter.

TEST(HistoryFilterTest, ParsesTimesAddressesAndProtocols) {
  uint64_t ns = 0;
  ASSERT_TRUE(ParseHistoryTime("2026-11-26T10:00:00Z", &ns));
  EXPECT_EQ(ns, 1795687200ull * kSec);
  ASSERT_TRUE(ParseHistoryTime("2026-11-26T11:00:00.25+01:00", &ns));
  EXPECT_EQ(ns, 1795687200ull * kSec + 250'000'000);
  ASSERT_TRUE(ParseHistoryTime("1795687200", &ns));
  EXPECT_EQ(ns, 1795687200ull * kSec);
  ASSERT_TRUE(ParseHistoryTime("1507567479.055089", &ns));
  EXPECT_EQ(ns, 1507567479'055089000ull);
  EXPECT_EQ(FormatHistoryTime(1795687200ull * kSec + 5), "2026-11-26T10:00:00.000000005Z");
  for (const char* bad : {"", "2026-13-01T00:00:00Z", "2026-11-26T10:00:00", "yesterday", "12.",
                          "2026-11-26T10:00:00+1:00"}) {
    EXPECT_FALSE(ParseHistoryTime(bad, &ns)) << bad;
  }
  uint8_t a[16];
  ASSERT_TRUE(ParseHistoryAddress("192.168.10.31", a));
  EXPECT_EQ(FormatHistoryAddress(a), "192.168.10.31");
  ASSERT_TRUE(ParseHistoryAddress("2001:db8::1", a));
  EXPECT_EQ(FormatHistoryAddress(a), "2001:db8::1");
  EXPECT_FALSE(ParseHistoryAddress("10.0.0", a));
  uint8_t p = 0;
  EXPECT_TRUE(ParseHistoryProto("udp", &p));
  EXPECT_EQ(p, 17);
  EXPECT_TRUE(ParseHistoryProto("47", &p));
  EXPECT_EQ(p, 47);
  EXPECT_FALSE(ParseHistoryProto("sctp", &p));
}

TEST(HistoryConfigTest, DefaultsAreValidAndErrorsNameTheField) {
  HistoryConfig c;
  EXPECT_EQ(ValidateHistoryConfig(c), "");
  EXPECT_TRUE(c.enabled);
  EXPECT_FALSE(c.spool);
  c.snaplen = 10;
  EXPECT_NE(ValidateHistoryConfig(c).find("history.snaplen"), std::string::npos);
  c = HistoryConfig{};
  c.spool = true;
  c.dir = "";
  EXPECT_NE(ValidateHistoryConfig(c).find("history.dir"), std::string::npos);
  c = HistoryConfig{};
  c.spool = true;
  c.segment_mb = 64;
  c.disk_mb = 100;
  const SpoolOptions o = SpoolOptions::FromConfig(c);
  EXPECT_TRUE(o.spool);
  EXPECT_EQ(o.segment_bytes, 64u << 20);
  EXPECT_EQ(o.disk_bytes, 100u << 20);
  PacketHistory a(1 << 20, 65535), b(1 << 20, 65535), d(1 << 20, 65535);
  EXPECT_EQ(HistorySpool(o, {&a, &b, &d}).segment_bytes(), (100u << 20) / 6);  // disk/(2*workers)
}

TEST(HistoryFilterTest, HostPeerPortProtoVlanIpv6AndFragments) {
  auto match = [](const HistoryFilter& f, const FrameSpec& s) {
    const Bytes b = Frame(s);
    return f.MatchesFrame(b, static_cast<uint32_t>(b.size()));
  };
  HistoryFilter f = HostFilter("10.0.0.2");
  FrameSpec s;
  EXPECT_TRUE(match(f, s));
  std::swap(s.src, s.dst);
  EXPECT_TRUE(match(f, s));  // either direction
  f.has_peer = true;
  ASSERT_TRUE(ParseHistoryAddress("10.0.0.1", f.peer));
  EXPECT_TRUE(match(f, s));
  FrameSpec other;
  other.src = "10.0.0.3";
  EXPECT_FALSE(match(f, other));  // host, but another peer
  f.port = 445;
  EXPECT_TRUE(match(f, s));
  f.port = 139;
  EXPECT_FALSE(match(f, s));
  f = HostFilter("10.0.0.2");
  f.proto = 17;
  EXPECT_FALSE(match(f, s));
  s.proto = 17;
  EXPECT_TRUE(match(f, s));
  // VLAN and QinQ.
  f = HostFilter("10.0.0.2");
  f.port = 445;
  FrameSpec tagged;
  tagged.vlans = {100};
  EXPECT_TRUE(match(f, tagged));
  tagged.vlans = {100, 200};
  EXPECT_TRUE(match(f, tagged));
  // IPv6.
  HistoryFilter f6 = HostFilter("2001:db8::1");
  FrameSpec v6;
  v6.src = "2001:db8::1";
  v6.dst = "2001:db8::2";
  EXPECT_TRUE(match(f6, v6));
  EXPECT_FALSE(match(HostFilter("10.0.0.1"), v6));
  // A non-first fragment has no ports: it matches on addresses only without a port filter.
  FrameSpec frag;
  frag.frag_offset = 100;
  EXPECT_TRUE(match(HostFilter("10.0.0.2"), frag));
  EXPECT_FALSE(match(f, frag));
  // Not IP.
  Bytes arp = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06};
  arp.resize(60);
  EXPECT_FALSE(HostFilter("10.0.0.2").MatchesFrame(arp, 60));
}

// ---------------------------------------------------------------------------------------------
// The spool.

TEST_F(HistoryTest, SpoolRotatesAndStaysWithinTheDiskBound) {
  PacketHistory ring(1 << 20, kHistoryMaxSnaplen);
  HistorySpool spool(Options(1 << 20, 4 << 20), {&ring});
  ASSERT_EQ(spool.Open(), "");
  EXPECT_EQ(spool.segment_bytes(), 1u << 20);
  FrameSpec s;
  s.payload = 1400;
  const Bytes f = Frame(s);
  constexpr uint64_t kN = 12000;  // ~17 MB: four times the disk bound
  for (uint64_t i = 0; i < kN; ++i) {
    ring.Append(kT0 + i * 1000, f, static_cast<uint32_t>(f.size()));
    if (i % 100 == 99) spool.Spool();
    uint64_t total = 0;
    if (i % 1000 == 999) {
      for (const auto& e : fs::directory_iterator(dir_ + "/spool")) total += fs::file_size(e);
      ASSERT_LE(total, 4u << 20);
    }
  }
  spool.Close();
  const HistorySpoolCounters c = spool.counters();
  EXPECT_EQ(c.spooled_packets, kN);
  EXPECT_EQ(c.lost, 0u);
  EXPECT_EQ(c.write_errors, 0u);
  EXPECT_GT(c.segments_deleted, 0u);
  EXPECT_GE(c.segments_opened, 16u);
  uint64_t total = 0, packets = 0;
  const auto pcaps = Files(".pcap");
  EXPECT_EQ(pcaps.size(), c.segments);
  EXPECT_EQ(Files(".idx").size(), pcaps.size());
  for (const auto& p : pcaps) {
    EXPECT_LE(fs::file_size(p), 1u << 20);
    std::string err;
    packets += ReadPcap(p, &err).size();
    EXPECT_EQ(err, "");
    total += fs::file_size(p) + fs::file_size(fs::path(p).replace_extension(".idx"));
  }
  EXPECT_LE(total, 4u << 20);
  EXPECT_EQ(total, c.disk_bytes);
  // The newest packets are the ones kept.
  const auto last = ReadPcap(pcaps.back());
  ASSERT_FALSE(last.empty());
  EXPECT_EQ(last.back().ts, kT0 + (kN - 1) * 1000);
  EXPECT_GT(packets, 2000u);
}

TEST_F(HistoryTest, SpoolCountsRecordsLostBeforeSpooling) {
  PacketHistory ring(64 * 1024, kHistoryMaxSnaplen);
  HistorySpool spool(Options(), {&ring});
  ASSERT_EQ(spool.Open(), "");
  FrameSpec s;
  s.payload = 200;
  const Bytes f = Frame(s);
  for (uint64_t i = 0; i < 1000; ++i) ring.Append(kT0 + i, f, static_cast<uint32_t>(f.size()));
  spool.Spool();  // the ring holds ~240 of the 1000
  const HistorySpoolCounters c = spool.counters();
  EXPECT_GT(c.lost, 0u);
  EXPECT_EQ(c.lost + c.spooled_packets, 1000u);
  ExportResult r;
  ASSERT_TRUE(spool.Export(HostFilter("10.0.0.1"), kT0, kT0 + 999, dir_ + "/out.pcap", &r));
  EXPECT_EQ(r.lost_records, c.lost);
  EXPECT_NE(r.Summary(kT0, kT0 + 999).find("lost before spooling"), std::string::npos);
  EXPECT_TRUE(r.start_not_retained);
}

TEST_F(HistoryTest, RestartFindsOldSegmentsAndRebuildsBadIndexes) {
  FrameSpec s;
  s.payload = 1000;
  const Bytes f = Frame(s);
  constexpr uint64_t kN = 3000;  // ~3 MB: three segments
  {
    PacketHistory ring(1 << 20, kHistoryMaxSnaplen);
    HistorySpool spool(Options(), {&ring});
    ASSERT_EQ(spool.Open(), "");
    for (uint64_t i = 0; i < kN; ++i) {
      ring.Append(kT0 + i * kSec, f, static_cast<uint32_t>(f.size()));
      if (i % 50 == 49) spool.Spool();
    }
    spool.Close();
  }
  auto idx = Files(".idx");
  ASSERT_GE(idx.size(), 3u);
  fs::remove(idx[0]);  // missing
  {
    std::fstream io(idx[1], std::ios::in | std::ios::out | std::ios::binary);
    io.seekp(40);
    io.put('\x7f');  // corrupt: bad checksum
  }
  PacketHistory ring2(1 << 20, kHistoryMaxSnaplen);
  HistorySpool spool2(Options(), {&ring2});
  ASSERT_EQ(spool2.Open(), "");
  EXPECT_EQ(spool2.counters().indexes_rebuilt, 2u);
  EXPECT_EQ(spool2.counters().segments, idx.size());
  EXPECT_TRUE(spool2.open_errors().empty());
  // New traffic goes to a new run's segments; the export spans both runs.
  for (uint64_t i = 0; i < 10; ++i)
    ring2.Append(kT0 + (kN + i) * kSec, f, static_cast<uint32_t>(f.size()));
  spool2.Spool();
  ExportResult r;
  ASSERT_TRUE(
      spool2.Export(HostFilter("10.0.0.1"), kT0, kT0 + (kN + 10) * kSec, dir_ + "/out.pcap", &r));
  EXPECT_EQ(r.packets, kN + 10);
  EXPECT_EQ(r.disk_packets, kN + 10);
  EXPECT_EQ(r.memory_packets, 0u);
  EXPECT_FALSE(r.start_not_retained);
  EXPECT_EQ(r.oldest_retained_ns, kT0);
  EXPECT_TRUE(r.errors.empty());
  // The rebuilt indexes were written back.
  EXPECT_TRUE(fs::exists(idx[0]));
  bool new_run = false;
  for (const auto& p : Files(".pcap"))
    new_run |= p.filename().string().rfind("seg-000002-", 0) == 0;
  EXPECT_TRUE(new_run);
}

TEST_F(HistoryTest, CrashCutSegmentIsTruncatedToItsLastWholeRecord) {
  FrameSpec s;
  s.payload = 500;
  const Bytes f = Frame(s);
  {
    PacketHistory ring(1 << 20, kHistoryMaxSnaplen);
    HistorySpool spool(Options(), {&ring});
    ASSERT_EQ(spool.Open(), "");
    for (uint64_t i = 0; i < 100; ++i) ring.Append(kT0 + i, f, static_cast<uint32_t>(f.size()));
    spool.Close();
  }
  // A crash while writing: the last record cut in the middle, no index.
  const std::string pcap = Files(".pcap").at(0);
  const uint64_t whole = kPcapFileHeaderBytes + 99 * (kPcapRecordHeaderBytes + f.size());
  fs::resize_file(pcap, whole + 50);
  fs::remove(fs::path(pcap).replace_extension(".idx"));
  PacketHistory ring2(1 << 20, kHistoryMaxSnaplen);
  HistorySpool spool2(Options(), {&ring2});
  ASSERT_EQ(spool2.Open(), "");
  ASSERT_EQ(spool2.open_errors().size(), 1u);
  EXPECT_NE(spool2.open_errors()[0].find("cut short"), std::string::npos)
      << spool2.open_errors()[0];
  EXPECT_EQ(fs::file_size(pcap), whole);
  ExportResult r;
  ASSERT_TRUE(spool2.Export(HostFilter("10.0.0.1"), kT0, kT0 + 1000, dir_ + "/out.pcap", &r));
  EXPECT_EQ(r.packets, 99u);
}

TEST_F(HistoryTest, CorruptSegmentFilesAreReportedAndSkipped) {
  FrameSpec s;
  s.payload = 100;
  const Bytes f = Frame(s);
  PacketHistory ring(1 << 20, kHistoryMaxSnaplen);
  {
    HistorySpool spool(Options(), {&ring});
    ASSERT_EQ(spool.Open(), "");
    for (uint64_t i = 0; i < 10; ++i) ring.Append(kT0 + i, f, static_cast<uint32_t>(f.size()));
    spool.Close();
  }
  const std::string d = dir_ + "/spool/";
  std::ofstream(d + "seg-000001-w001-000001.pcap") << "this is not a capture at all";
  std::ofstream(d + "seg-000001-w002-000001.pcap");  // empty
  {
    // A valid header, then a record claiming 1 GB.
    std::ofstream o(d + "seg-000001-w003-000001.pcap", std::ios::binary);
    const uint32_t hdr[6] = {kPcapMagicNs, 0x00040002, 0, 0, 65535, 1};
    const uint32_t rec[4] = {1, 0, 1u << 30, 1u << 30};
    o.write(reinterpret_cast<const char*>(hdr), sizeof hdr);
    o.write(reinterpret_cast<const char*>(rec), sizeof rec);
  }
  std::ofstream(d + "seg-000001-w004-000001.pcap") << "\x0a\x0d\x0d\x0a pcapng";
  PacketHistory ring2(1 << 20, kHistoryMaxSnaplen);
  HistorySpool spool2(Options(), {&ring2});
  ASSERT_EQ(spool2.Open(), "");
  const auto errors = spool2.open_errors();
  ASSERT_EQ(errors.size(), 4u);
  std::string all;
  for (const auto& e : errors) all += e + "\n";
  EXPECT_NE(all.find("not a pcap file"), std::string::npos) << all;
  EXPECT_NE(all.find("truncated pcap file header"), std::string::npos) << all;
  EXPECT_NE(all.find("corrupt record"), std::string::npos) << all;
  EXPECT_NE(all.find("pcapng"), std::string::npos) << all;
  ExportResult r;
  ASSERT_TRUE(spool2.Export(HostFilter("10.0.0.1"), kT0, kT0 + 100, dir_ + "/out.pcap", &r));
  EXPECT_EQ(r.packets, 10u);
  EXPECT_EQ(r.errors.size(), 3u);  // the unreadable ones; the cut one was truncated to its header
  // Corrupt files are the first to go when space is needed.
  const std::string good = Files(".pcap").at(0);
  ASSERT_EQ(fs::path(good).filename(), "seg-000001-w000-000001.pcap");
  const uint64_t keep =
      fs::file_size(good) + fs::file_size(fs::path(good).replace_extension(".idx"));
  HistorySpool spool3(Options(1 << 20, keep), {});
  ASSERT_EQ(spool3.Open(), "");
  EXPECT_EQ(Files(".pcap").size(), 1u);
  EXPECT_TRUE(fs::exists(good));
}

// ---------------------------------------------------------------------------------------------
// Export.

TEST_F(HistoryTest, IndexSkipsSegmentsWithoutTheHost) {
  PacketHistory ring(4 << 20, kHistoryMaxSnaplen);
  HistorySpool spool(Options(), {&ring});
  ASSERT_EQ(spool.Open(), "");
  FrameSpec a;
  a.payload = 1000;
  FrameSpec b = a;
  b.src = "10.9.9.9";
  b.dst = "10.9.9.8";
  const Bytes fa = Frame(a), fb = Frame(b);
  for (uint64_t i = 0; i < 3000; ++i) {
    const Bytes& f = i < 2000 ? fa : fb;  // ~2 segments of A only, then B
    ring.Append(kT0 + i, f, static_cast<uint32_t>(f.size()));
    if (i % 100 == 99) spool.Spool();
  }
  spool.Close();
  ExportResult r;
  ASSERT_TRUE(spool.Export(HostFilter("10.9.9.9"), kT0, kT0 + 3000, dir_ + "/b.pcap", &r));
  EXPECT_EQ(r.packets, 1000u);
  EXPECT_GE(r.segments_skipped, 1u);
  ExportResult ra;
  ASSERT_TRUE(spool.Export(HostFilter("10.0.0.2"), kT0, kT0 + 3000, dir_ + "/a.pcap", &ra));
  EXPECT_EQ(ra.packets, 2000u);
  EXPECT_GE(ra.segments_skipped, 1u);
  // A host nowhere reads no segment.
  ExportResult rn;
  ASSERT_TRUE(spool.Export(HostFilter("10.1.1.1"), kT0, kT0 + 3000, dir_ + "/n.pcap", &rn));
  EXPECT_EQ(rn.packets, 0u);
  EXPECT_EQ(rn.segments_read, 0u);
  EXPECT_EQ(ReadPcap(dir_ + "/n.pcap").size(), 0u);  // still a valid (empty) pcap
}

TEST_F(HistoryTest, ExportMergesMemoryAndDiskWithoutDuplicates) {
  // Two workers, interleaved in time; everything spooled but still in the rings, and a tail
  // that is only in the rings.
  PacketHistory r0(4 << 20, kHistoryMaxSnaplen), r1(4 << 20, kHistoryMaxSnaplen);
  HistorySpool spool(Options(), {&r0, &r1});
  ASSERT_EQ(spool.Open(), "");
  constexpr uint64_t kN = 2000;
  for (uint64_t i = 0; i < kN; ++i) {
    FrameSpec s;
    s.payload = 100;
    s.fill = static_cast<uint8_t>(i);
    s.sport = static_cast<uint16_t>(1000 + i);
    if (i % 2 == 1) std::swap(s.src, s.dst);
    const Bytes f = Frame(s);
    (i % 3 == 0 ? r1 : r0).Append(kT0 + i * 1000, f, static_cast<uint32_t>(f.size()));
    if (i == 1499) spool.Spool();
  }
  ExportResult r;
  ASSERT_TRUE(spool.Export(HostFilter("10.0.0.1"), kT0, kT0 + kN * 1000, dir_ + "/out.pcap", &r));
  EXPECT_EQ(r.packets, kN);
  EXPECT_EQ(r.disk_packets, 1500u);
  EXPECT_EQ(r.memory_packets, 500u);
  const auto pkts = ReadPcap(dir_ + "/out.pcap");
  ASSERT_EQ(pkts.size(), kN);
  for (uint64_t i = 0; i < kN; ++i) {
    ASSERT_EQ(pkts[i].ts, kT0 + i * 1000) << i;  // time order, each once
    ASSERT_EQ(pkts[i].data[34] << 8 | pkts[i].data[35], static_cast<int>(1000 + i));
  }
  // A sub-window, a port and a direction-independent peer.
  HistoryFilter f = HostFilter("10.0.0.2");
  f.has_peer = true;
  ASSERT_TRUE(ParseHistoryAddress("10.0.0.1", f.peer));
  f.port = 1000 + 1600;
  ASSERT_TRUE(spool.Export(f, kT0 + 1000 * 1000, kT0 + 1999 * 1000, dir_ + "/one.pcap", &r));
  EXPECT_EQ(r.packets, 1u);
  EXPECT_FALSE(r.start_not_retained);
  EXPECT_EQ(r.Summary(kT0, kT0).find("not retained:"), std::string::npos);
}

TEST_F(HistoryTest, WindowPartlyNotRetainedIsReported) {
  // Memory only: the ring keeps the newest ~250 of 2000 frames.
  PacketHistory ring(64 * 1024, kHistoryMaxSnaplen);
  SpoolOptions o;  // spool off
  HistorySpool spool(o, {&ring});
  ASSERT_EQ(spool.Open(), "");
  FrameSpec s;
  s.payload = 150;
  const Bytes f = Frame(s);
  for (uint64_t i = 0; i < 2000; ++i)
    ring.Append(kT0 + i * kSec, f, static_cast<uint32_t>(f.size()));
  ExportResult r;
  const uint64_t to = kT0 + 1999 * kSec;
  ASSERT_TRUE(spool.Export(HostFilter("10.0.0.1"), kT0, to, dir_ + "/out.pcap", &r));
  const uint64_t kept = 2000 - ring.counters().overwritten;
  EXPECT_EQ(r.packets, kept);
  EXPECT_TRUE(r.start_not_retained);
  EXPECT_EQ(r.not_retained_from_ns, kT0);
  EXPECT_EQ(r.not_retained_to_ns, kT0 + (2000 - kept) * kSec);
  EXPECT_EQ(r.oldest_retained_ns, r.not_retained_to_ns);
  const std::string line = r.Summary(kT0, to);
  EXPECT_NE(line.find("not retained: 2025-11-26T10:00:00.000000000Z .. "), std::string::npos)
      << line;
  // A window wholly before the oldest packet.
  ASSERT_TRUE(spool.Export(HostFilter("10.0.0.1"), kT0, kT0 + 10 * kSec, dir_ + "/o.pcap", &r));
  EXPECT_EQ(r.packets, 0u);
  EXPECT_EQ(r.not_retained_to_ns, kT0 + 10 * kSec);
  EXPECT_NE(r.Summary(kT0, kT0 + 10 * kSec).find("(the whole window)"), std::string::npos);
  // Nothing at all.
  PacketHistory empty(64 * 1024, kHistoryMaxSnaplen);
  HistorySpool none(o, {&empty});
  ASSERT_TRUE(none.Export(HostFilter("10.0.0.1"), kT0, to, dir_ + "/e.pcap", &r));
  EXPECT_EQ(r.oldest_retained_ns, 0u);
  EXPECT_NE(r.Summary(kT0, to).find("nothing is retained"), std::string::npos);
}

TEST_F(HistoryTest, ExportIpv6AndVlanFromMemoryAndDisk) {
  PacketHistory ring(1 << 20, kHistoryMaxSnaplen);
  HistorySpool spool(Options(), {&ring});
  ASSERT_EQ(spool.Open(), "");
  FrameSpec v6;
  v6.src = "2001:db8::1";
  v6.dst = "2001:db8::2";
  v6.proto = 17;
  v6.dport = 53;
  FrameSpec vlan;
  vlan.src = "2001:db8::2";
  vlan.dst = "2001:db8::1";
  vlan.vlans = {10, 20};
  FrameSpec v4;
  const Bytes a = Frame(v6), b = Frame(vlan), c = Frame(v4);
  for (uint64_t i = 0; i < 300; ++i) {
    const Bytes& f = i % 3 == 0 ? a : i % 3 == 1 ? b : c;
    ring.Append(kT0 + i, f, static_cast<uint32_t>(f.size()));
    if (i == 150) spool.Spool();
  }
  ExportResult r;
  ASSERT_TRUE(spool.Export(HostFilter("2001:db8::1"), kT0, kT0 + 300, dir_ + "/6.pcap", &r));
  EXPECT_EQ(r.packets, 200u);
  EXPECT_GT(r.memory_packets, 0u);
  EXPECT_GT(r.disk_packets, 0u);
  HistoryFilter udp = HostFilter("2001:db8::2");
  udp.proto = 17;
  udp.port = 53;
  ASSERT_TRUE(spool.Export(udp, kT0, kT0 + 300, dir_ + "/u.pcap", &r));
  EXPECT_EQ(r.packets, 100u);
  const auto pk = ReadPcap(dir_ + "/u.pcap");
  ASSERT_EQ(pk.size(), 100u);
  EXPECT_EQ(pk[0].data, a);
}

TEST_F(HistoryTest, OutputErrorsAreReported) {
  PacketHistory ring(1 << 20, kHistoryMaxSnaplen);
  HistorySpool spool(SpoolOptions{}, {&ring});
  ExportResult r;
  EXPECT_FALSE(
      spool.Export(HostFilter("10.0.0.1"), kT0, kT0 + 1, dir_ + "/no/such/dir/x.pcap", &r));
  ASSERT_FALSE(r.errors.empty());
  EXPECT_NE(r.errors[0].find("no/such/dir"), std::string::npos);
  EXPECT_FALSE(spool.Export(HostFilter("10.0.0.1"), kT0 + 1, kT0, dir_ + "/x.pcap", &r));
}

// ---------------------------------------------------------------------------------------------
// Against tshark on a real multi-host capture.

int RunCommand(const std::string& cmd, std::string* out) {
  out->clear();
  std::FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out->append(buf, n);
  return pclose(p);
}

std::string NsText(uint64_t ns) {
  char b[32];
  std::snprintf(b, sizeof b, "%llu.%09llu", static_cast<unsigned long long>(ns / kSec),
                static_cast<unsigned long long>(ns % kSec));
  return b;
}

TEST_F(HistoryTest, ExportMatchesTsharkFilterOnSharedCapture) {
  const std::string tshark = "/usr/bin/tshark";
  const std::string in = std::string(VIGIL_SOURCE_DIR) +
                         "/../shared/data/pcaps/401trg/20171220_smb_psexec_add_user.pcap";
  if (!fs::exists(tshark)) GTEST_SKIP() << "tshark not installed (/usr/bin/tshark)";
  if (!fs::exists(in)) GTEST_SKIP() << "capture absent: " << in << " (../shared/data)";
  // The capture through a small ring (64 KiB: most of it spooled, the tail in memory and on disk).
  PacketHistory ring(256 * 1024, kHistoryMaxSnaplen);  // snaplen 64 KiB: frames up to 40934
  HistorySpool spool(Options(), {&ring});
  ASSERT_EQ(spool.Open(), "");
  PcapReader reader;
  ASSERT_EQ(reader.Open(in), "");
  Bytes buf(kPcapMaxRecordBytes);
  uint64_t ts, first = 0, n = 0;
  uint32_t cap, wire;
  while (reader.Next(&ts, &cap, &wire, buf) == PcapReader::Result::kOk) {
    if (n++ == 0) first = ts;
    ring.Append(ts, std::span<const uint8_t>(buf.data(), cap), wire);
    // The spooler stops after 30 s: the rest is only in memory (the ring holds the whole tail).
    if (n % 8 == 0 && ts < first + 30 * kSec) spool.Spool();
  }
  ASSERT_EQ(spool.counters().lost, 0u);
  const std::string host = "192.168.10.31";
  const uint64_t from = first + 10 * kSec + 123'456'000, to = first + 40 * kSec;
  ExportResult r;
  const std::string out = dir_ + "/host.pcap";
  ASSERT_TRUE(spool.Export(HostFilter(host), from, to, out, &r));
  std::printf("[ info ] %s\n", r.Summary(from, to).c_str());
  EXPECT_GT(r.memory_packets, 0u);
  EXPECT_GT(r.disk_packets, 0u);
  const std::string fields = " -T fields -e frame.time_epoch -e frame.len -e ip.src -e ip.dst";
  const std::string filter = "ip.addr==" + host + " && frame.time_epoch >= " + NsText(from) +
                             " && frame.time_epoch <= " + NsText(to);
  std::string want, got, all;
  ASSERT_EQ(
      RunCommand(tshark + " -r " + in + " -Y '" + filter + "'" + fields + " 2>/dev/null", &want),
      0);
  ASSERT_EQ(RunCommand(tshark + " -r " + out + fields + " 2>/dev/null", &got), 0);
  ASSERT_EQ(
      RunCommand(tshark + " -r " + out + " -Y '" + filter + "'" + fields + " 2>/dev/null", &all),
      0);
  EXPECT_GT(r.packets, 50u);
  EXPECT_EQ(std::count(want.begin(), want.end(), '\n'), static_cast<long>(r.packets));
  EXPECT_EQ(got, want);  // same frames, same times, same order
  EXPECT_EQ(all, got);   // and every exported frame passes the filter
}

// The standalone tool end to end: import a capture (ring + spooler, as the dataplane does), then
// export from the directory alone, against tshark; and its one-line summary.
TEST_F(HistoryTest, ToolImportThenExportMatchesTshark) {
  const std::string tool = VIGIL_HISTORY_TOOL;
  const std::string tshark = "/usr/bin/tshark";
  const std::string in =
      std::string(VIGIL_SOURCE_DIR) +
      "/../shared/data/pcaps/401trg/20171220_smb_psexec_mimikatz_ticket_dump.pcap";
  if (!fs::exists(tshark)) GTEST_SKIP() << "tshark not installed (/usr/bin/tshark)";
  if (!fs::exists(in)) GTEST_SKIP() << "capture absent: " << in << " (../shared/data)";
  std::string out;
  ASSERT_EQ(RunCommand(tool + " import --dir " + dir_ + "/spool --pcap " + in +
                           " --memory-kb 256 --segment-mb 1 2>&1",
                       &out),
            0)
      << out;
  EXPECT_NE(out.find("imported 5305 packets"), std::string::npos) << out;
  EXPECT_NE(out.find("lost before spooling 0,"), std::string::npos) << out;
  EXPECT_GE(Files(".pcap").size(), 2u);
  // From before the capture to the middle of it, one host and its peer on port 445.
  const std::string pcap = dir_ + "/out.pcap";
  ASSERT_EQ(RunCommand(tool + " export --dir " + dir_ +
                           "/spool --host 192.168.10.31 --peer 192.168.10.30 --port 445 "
                           "--proto tcp --from 2017-10-09T16:00:00Z --to 1507565600.5 -o " +
                           pcap + " 2>&1",
                       &out),
            0)
      << out;
  EXPECT_NE(out.find("not retained: 2017-10-09T16:00:00.000000000Z .. "
                     "2017-10-09T16:13:18.084162000Z"),
            std::string::npos)
      << out;
  const std::string fields = " -T fields -e frame.time_epoch -e frame.len -e ip.src -e ip.dst";
  const std::string filter =
      "ip.addr==192.168.10.31 && ip.addr==192.168.10.30 && tcp.port==445 && frame.time_epoch >= "
      "1507564800 && frame.time_epoch <= 1507565600.5";
  std::string want, got;
  ASSERT_EQ(
      RunCommand(tshark + " -r " + in + " -Y '" + filter + "'" + fields + " 2>/dev/null", &want),
      0);
  ASSERT_EQ(RunCommand(tshark + " -r " + pcap + fields + " 2>/dev/null", &got), 0);
  EXPECT_GT(std::count(want.begin(), want.end(), '\n'), 1000);
  EXPECT_EQ(got, want);
  // Usage errors.
  EXPECT_EQ(
      WEXITSTATUS(RunCommand(tool + " export --dir x --host nope --from 1 --to 2 -o y 2>&1", &out)),
      2);
  EXPECT_NE(out.find("not an IP address"), std::string::npos) << out;
}

// ---------------------------------------------------------------------------------------------
// Cost (printed; never fails on timing).

TEST(HistoryBench, AppendCost) {
  PacketHistory ring(64u << 20, kHistoryMaxSnaplen);
  Bytes frame(1514, 0x5a);
  for (size_t size : {64, 1500}) {
    const std::span<const uint8_t> f(frame.data(), size);
    const uint64_t lap = ring.capacity() / size + 1;
    for (uint64_t i = 0; i < lap; ++i) ring.Append(i, f, static_cast<uint32_t>(size));
    const uint64_t n = size == 64 ? 4'000'000 : 1'000'000;
    const auto t0 = std::chrono::steady_clock::now();
    for (uint64_t i = 0; i < n; ++i) ring.Append(i, f, static_cast<uint32_t>(size));
    const double ns =
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
    std::printf("[ bench ] Append %zu-byte frames (ring full, overwriting): %.1f ns/packet\n", size,
                ns / n);
  }
}

}  // namespace
}  // namespace vigil::dp
