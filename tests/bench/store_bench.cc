// Store benchmark: ingest rate of realistic EVE events in batches of 1000, then search latency
// over 60 days of history for `*.JOB AND SMB` and `AV.job AND SMB`, a count by day, and the cost
// of a durable breach insert and of a retention pass. Prints numbers; never fails on timing.
//
// Templates are real EVE lines from the dataplane replaying captures, e.g.
//   for f in $(find ../shared/data/pcaps -name '*.pcap'); do
//     build/dataplane/vigil-dataplane --config config/vigil.yaml --pcap-in $f --eve /tmp/e1.json
//     cat /tmp/e1.json >> /tmp/templates.json; done
//   store_bench --templates /tmp/templates.json [--events 2000000] [--days 60] [--dir DIR] [--keep]
// Each generated event is a template with a new timestamp (office-hours weighted over the days),
// source and destination addresses from a /16 of `--hosts` devices, ports and flow id; the mix
// of event types is fixed (below) whatever the captures' mix. Every day one device also reads a
// few `Windows\Tasks\AV.job` files over SMB, the pattern the searches look for.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "control/query/query.h"
#include "control/store/store.h"

namespace {

using vigil::ctl::query::Query;
namespace store = vigil::ctl::store;
using Clock = std::chrono::steady_clock;

constexpr int64_t kSec = 1'000'000'000;
constexpr int64_t kDay = 86'400 * kSec;
constexpr int64_t kStart = 1'704'067'200 * kSec;  // 2024-01-01T00:00:00Z

// This thread's CPU time (user + system): on a shared machine the wall clock also measures the
// neighbours, so both are printed.
double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

std::string Timestamp(int64_t ns) {
  const time_t secs = static_cast<time_t>(ns / kSec);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06lld+0000", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>((ns % kSec) / 1000));
  return buf;
}

// Replaces the value of top-level-looking `"key":` (first occurrence) with `value` (already JSON
// text). Raw text surgery keeps the generator far faster than the store it measures.
void SetValue(std::string* line, const char* key, const std::string& value) {
  const std::string k = std::string("\"") + key + "\":";
  const size_t p = line->find(k);
  if (p == std::string::npos) return;
  const size_t v = p + k.size();
  size_t e = v;
  if (e < line->size() && (*line)[e] == '"') {
    ++e;
    while (e < line->size() && (*line)[e] != '"') e += (*line)[e] == '\\' ? 2 : 1;
    ++e;
  } else {
    while (e < line->size() && (*line)[e] != ',' && (*line)[e] != '}') ++e;
  }
  line->replace(v, e - v, value);
}

struct Args {
  std::vector<std::string> templates;
  uint64_t events = 2'000'000;
  int days = 60;
  int hosts = 500;
  std::string dir;
  bool keep = false;
};

bool ParseArgs(int argc, char** argv, Args* a) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (arg == "--keep") {
      a->keep = true;
    } else if ((arg == "--templates" || arg == "--events" || arg == "--days" || arg == "--dir" ||
                arg == "--hosts") &&
               (v = next()) != nullptr) {
      if (arg == "--templates") a->templates.push_back(v);
      if (arg == "--events") a->events = std::strtoull(v, nullptr, 10);
      if (arg == "--days") a->days = std::atoi(v);
      if (arg == "--hosts") a->hosts = std::atoi(v);
      if (arg == "--dir") a->dir = v;
    } else {
      std::fprintf(stderr,
                   "usage: store_bench --templates EVE.json [--templates ...] [--events N] "
                   "[--days D] [--hosts H] [--dir DIR] [--keep]\n");
      return false;
    }
  }
  return !a->templates.empty() && a->days > 0 && a->hosts > 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  if (!ParseArgs(argc, argv, &args)) return 2;

  // Templates by event type.
  std::map<std::string, std::vector<std::string>> by_type;
  size_t template_bytes = 0, template_count = 0;
  for (const std::string& path : args.templates) {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
      const auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.contains("event_type")) continue;
      template_bytes += line.size();
      ++template_count;
      by_type[j["event_type"].get<std::string>()].push_back(std::move(line));
    }
  }
  if (template_count == 0) {
    std::fprintf(stderr, "no EVE templates read\n");
    return 2;
  }
  // An office network's metadata: mostly DNS and flows, a steady share of SMB and DCE-RPC,
  // some HTTP/TLS/Kerberos and the odd anomaly (types missing from the templates are skipped).
  const std::vector<std::pair<std::string, double>> mix = {
      {"dns", 0.35}, {"flow", 0.25}, {"smb", 0.20},  {"dcerpc", 0.04},
      {"tls", 0.07}, {"http", 0.05}, {"krb5", 0.03}, {"anomaly", 0.01}};
  std::vector<const std::vector<std::string>*> pools;
  std::vector<double> weights;
  for (const auto& [type, w] : mix) {
    if (by_type.count(type)) {
      pools.push_back(&by_type[type]);
      weights.push_back(w);
    }
  }
  std::discrete_distribution<size_t> pick_pool(weights.begin(), weights.end());
  // AV.job reads: an SMB event with the file name and message rewritten.
  std::string job_template;
  for (const std::string& t : by_type["smb"]) {
    if (t.find("\"filename\":") != std::string::npos) {
      job_template = t;
      break;
    }
  }
  if (!job_template.empty()) {
    SetValue(&job_template, "filename", "\"Windows\\\\Tasks\\\\AV.job\"");
    SetValue(&job_template, "message",
             "\"SMB2 READ success \\\\\\\\10.0.0.5\\\\C$ Windows\\\\Tasks\\\\AV.job\"");
  }

  std::string dir = args.dir;
  if (dir.empty()) {
    char tmpl[] = "/tmp/vigil_store_bench_XXXXXX";
    dir = mkdtemp(tmpl);
  }
  std::string err;
  auto st = store::Store::Open({.dir = dir}, &err);
  if (!st) {
    std::fprintf(stderr, "%s\n", err.c_str());
    return 1;
  }

  std::mt19937_64 rng(20240101);
  const int64_t span = static_cast<int64_t>(args.days) * kDay;
  // Events arrive in packet-time order, as from a live sensor: each day's timestamps are drawn
  // (80% between 08:00 and 18:00 UTC) and sorted, then handed out in order.
  const uint64_t per_day = args.events / static_cast<uint64_t>(args.days) + 1;
  std::vector<int64_t> day_ts;
  size_t day_pos = 0;
  int64_t day_no = -1;
  auto random_ts = [&]() {
    if (day_pos == day_ts.size()) {
      ++day_no;
      day_ts.clear();
      day_pos = 0;
      for (uint64_t i = 0; i < per_day; ++i) {
        const bool office = rng() % 10 < 8;
        const int64_t sec = office ? 8 * 3600 + static_cast<int64_t>(rng() % (10 * 3600))
                                   : static_cast<int64_t>(rng() % 86400);
        day_ts.push_back(kStart + day_no * kDay + sec * kSec + static_cast<int64_t>(rng() % kSec));
      }
      std::sort(day_ts.begin(), day_ts.end());
    }
    return day_ts[day_pos++];
  };
  auto host = [&](uint64_t h) {
    return "\"10.20." + std::to_string(h / 250) + "." + std::to_string(1 + h % 250) + "\"";
  };
  std::printf("templates: %zu EVE lines, %zu types, mean %zu bytes\n", template_count,
              by_type.size(), template_bytes / template_count);
  std::printf("volume: %llu events over %d days (%.0f events/day), %d devices\n",
              static_cast<unsigned long long>(args.events), args.days,
              static_cast<double>(args.events) / args.days, args.hosts);

  // Ingest. Timestamps within a batch are random across the 60 days (the store must not rely on
  // arrival order); generation is excluded from the timing.
  constexpr size_t kBatch = 1000;
  std::vector<store::EventIn> batch;
  std::vector<int64_t> ids;
  uint64_t seq = 0, generated_bytes = 0;
  double ingest_s = 0, last_tenth_s = 0, ingest_cpu_s = 0;
  uint64_t last_tenth_events = 0;
  int job_day = 0;
  // --dir with a store of the wanted size already in it: measure the queries again without
  // the (long) ingest.
  const bool reuse = !args.dir.empty() && st->LastSeq("bench") >= args.events;
  if (reuse) {
    seq = st->LastSeq("bench");
    std::printf("reusing %llu stored events in %s\n", static_cast<unsigned long long>(seq),
                dir.c_str());
  }
  while (seq < args.events) {
    batch.clear();
    while (batch.size() < kBatch && seq < args.events) {
      std::string line;
      int64_t ts;
      if (!job_template.empty() && job_day <= day_no && job_day < args.days &&
          day_pos < day_ts.size() && day_ts[day_pos] >= kStart + job_day * kDay + 9 * 3600 * kSec) {
        // Three AV.job reads a day at 09:00 from one admin workstation.
        line = job_template;
        ts = kStart + job_day * kDay + 9 * 3600 * kSec + static_cast<int64_t>(rng() % 60) * kSec;
        SetValue(&line, "src_ip", "\"10.20.0.9\"");
        for (int k = 0; k < 3 && seq < args.events; ++k) {
          std::string l = line;
          SetValue(&l, "timestamp", "\"" + Timestamp(ts + k * kSec) + "\"");
          generated_bytes += l.size();
          batch.push_back({"bench", ++seq, std::move(l)});
        }
        ++job_day;
        continue;
      }
      const auto& pool = *pools[pick_pool(rng)];
      line = pool[rng() % pool.size()];
      ts = random_ts();
      SetValue(&line, "timestamp", "\"" + Timestamp(ts) + "\"");
      SetValue(&line, "src_ip", host(rng() % static_cast<uint64_t>(args.hosts)));
      SetValue(&line, "dest_ip", host(rng() % 40));  // servers
      SetValue(&line, "src_port", std::to_string(1024 + rng() % 64000));
      SetValue(&line, "flow_id", std::to_string(rng() % (uint64_t{1} << 50)));
      generated_bytes += line.size();
      batch.push_back({"bench", ++seq, std::move(line)});
    }
    const auto t0 = Clock::now();
    const double c0 = CpuSeconds();
    if (!st->InsertEvents(batch, &ids, &err)) {
      std::fprintf(stderr, "insert: %s\n", err.c_str());
      return 1;
    }
    const double dt = Seconds(t0, Clock::now());
    ingest_s += dt;
    ingest_cpu_s += CpuSeconds() - c0;
    if (seq > args.events - args.events / 10) {
      last_tenth_s += dt;
      last_tenth_events += batch.size();
    }
    if (seq % 200000 < kBatch) {
      std::fprintf(stderr, "  %llu events, %.0f events/s so far\n",
                   static_cast<unsigned long long>(seq), static_cast<double>(seq) / ingest_s);
    }
  }
  const auto stats = st->GetStats();
  if (!reuse) {
    std::printf(
        "ingest: %llu events in %.1f s = %.0f events/s (batches of %zu); last 10%%: %.0f "
        "events/s\n",
        static_cast<unsigned long long>(seq), ingest_s, static_cast<double>(seq) / ingest_s, kBatch,
        static_cast<double>(last_tenth_events) / last_tenth_s);
    std::printf(
        "ingest CPU: %.1f s = %.0f events per CPU-second (wall rate is lower on a busy host)\n",
        ingest_cpu_s, static_cast<double>(seq) / ingest_cpu_s);
    std::printf("size: %.1f MB on disk (%.0f bytes/event; EVE JSON %.0f bytes/event)\n",
                static_cast<double>(stats.bytes) / 1e6,
                static_cast<double>(stats.used_bytes) / static_cast<double>(stats.events),
                static_cast<double>(generated_bytes) / static_cast<double>(seq));
  }

  // Searches over the whole history, then in a one-day breach window.
  auto timed_search = [&](const std::string& text, int64_t from, int64_t to, const char* label) {
    const auto q = Query::Parse(text, nullptr);
    if (!q) return;
    for (int run = 0; run < 3; ++run) {
      uint64_t total = 0;
      const auto t0 = Clock::now();
      const double c0 = CpuSeconds();
      const auto r = st->Search(*q, {.from_ns = from, .to_ns = to, .limit = 100}, &total);
      const double ms = Seconds(t0, Clock::now()) * 1e3;
      const double cpu_ms = (CpuSeconds() - c0) * 1e3;
      std::printf(
          "search %-16s %-8s run %d: %8.1f ms (cpu %7.1f ms), %llu matches (%zu "
          "returned), fts '%s'\n",
          text.c_str(), label, run + 1, ms, cpu_ms, static_cast<unsigned long long>(total),
          r.size(), q->Fts5Prefilter().c_str());
    }
  };
  const int64_t end = kStart + span;
  timed_search("*.JOB AND SMB", kStart, end, "60 days");
  timed_search("AV.job AND SMB", kStart, end, "60 days");
  timed_search("*.JOB AND SMB", kStart + 30 * kDay, kStart + 31 * kDay, "1 day");
  timed_search("atsvc AND \"IPC$\"", kStart, end, "60 days");
  timed_search("src_ip:10.20.0.0/24 AND dest_port:445", kStart + 30 * kDay, kStart + 31 * kDay,
               "1 day");

  {
    const auto q = Query::Parse("AV.job AND SMB", nullptr);
    const auto t0 = Clock::now();
    const auto days = st->Count(*q, {.from_ns = kStart, .to_ns = end}, store::CountBy::kDay);
    const double ms = Seconds(t0, Clock::now()) * 1e3;
    uint64_t sum = 0;
    for (const auto& [d, n] : days) sum += n;
    std::printf("count-by day 'AV.job AND SMB' 60 days: %.1f ms, %zu days, %llu events", ms,
                days.size(), static_cast<unsigned long long>(sum));
    if (!days.empty()) {
      std::printf(" (%s: %llu ... %s: %llu)", days.front().first.c_str(),
                  static_cast<unsigned long long>(days.front().second), days.back().first.c_str(),
                  static_cast<unsigned long long>(days.back().second));
    }
    std::printf("\n");
  }
  {
    const auto q = Query::Parse("dns", nullptr);
    const auto t0 = Clock::now();
    const auto days = st->Count(*q, {.from_ns = kStart, .to_ns = end}, store::CountBy::kDay);
    std::printf("count-by day 'dns' 60 days: %.1f ms, %zu days\n", Seconds(t0, Clock::now()) * 1e3,
                days.size());
  }

  // Durable breach inserts (synchronous=FULL: an fsync each).
  {
    constexpr int kN = 50;
    const auto t0 = Clock::now();
    for (int i = 0; i < kN; ++i) {
      store::Breach b;
      b.model = "Device / AT Service Scheduled Task";
      b.device = "10.20.0.9";
      b.ts_ns = kStart + i;
      b.events = {{1, true}, {2, false}};
      if (st->InsertBreach(b, &err) == 0) std::fprintf(stderr, "breach: %s\n", err.c_str());
    }
    std::printf("breach insert (durable): %.2f ms each\n", Seconds(t0, Clock::now()) * 1e3 / kN);
  }

  // Retention: one day ages out.
  {
    const auto t0 = Clock::now();
    // Retention is 60 days: `now` 61 days after the start ages out the first day.
    const uint64_t n = st->ApplyRetention(kStart + 61 * kDay);
    const double s = Seconds(t0, Clock::now());
    std::printf("retention (one day ages out): %llu events deleted in %.2f s (%.0f events/s)\n",
                static_cast<unsigned long long>(n), s, static_cast<double>(n) / s);
  }
  st.reset();
  if (!args.keep && args.dir.empty()) std::filesystem::remove_all(dir);
  return 0;
}
