#include "control/api/dataplane_metrics.h"

#include <map>
#include <set>
#include <string_view>
#include <vector>

namespace vigil::ctl::api {
namespace {

using nlohmann::json;

// Maps whose keys are kinds of one thing: the key becomes a label, not part of the name.
const std::map<std::string, std::string, std::less<>>& LabelMaps() {
  static const std::map<std::string, std::string, std::less<>> m = {{"anomalies", "anomaly"},
                                                                    {"identified", "proto"},
                                                                    {"ended", "reason"},
                                                                    {"decode", "class"},
                                                                    {"dropped", "reason"}};
  return m;
}

// Levels rather than running totals.
bool IsGauge(std::string_view key) {
  static const std::set<std::string, std::less<>> g = {"active",
                                                       "in_flight",
                                                       "sessions_active",
                                                       "segments_in_use",
                                                       "trackers_in_use",
                                                       "emergency",
                                                       "max_chain",
                                                       "journal_bytes",
                                                       "journal_events",
                                                       "connected",
                                                       "used_bytes",
                                                       "open",
                                                       "segments",
                                                       "disk_bytes",
                                                       "memory_bytes",
                                                       "block_generation",
                                                       "block_entries",
                                                       "queues",
                                                       "rss",
                                                       "elapsed_s",
                                                       "rx_pps",
                                                       "port_id",
                                                       "rules_loaded",
                                                       "rules_dropped",
                                                       "tables_retired_pending"};
  return g.count(key) != 0;
}

std::string Sanitize(std::string_view s) {
  std::string o;
  for (char c : s) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    o += ok ? c : '_';
  }
  return o;
}

std::string LabelValue(std::string_view s) {
  std::string o;
  for (char c : s) {
    if (c == '\\' || c == '"') o += '\\';
    if (c == '\n') {
      o += "\\n";
      continue;
    }
    o += c;
  }
  return o;
}

struct Sample {
  std::string labels;  // {a="b",...} or ""
  std::string value;
};

struct Family {
  bool gauge = false;
  std::string help;
  std::vector<Sample> samples;
};

class Writer {
 public:
  void Add(const std::string& name, bool gauge, const std::string& help, const std::string& labels,
           const json& v) {
    std::string value;
    if (v.is_boolean()) {
      value = v.get<bool>() ? "1" : "0";
    } else if (v.is_number_unsigned()) {
      value = std::to_string(v.get<uint64_t>());
    } else if (v.is_number_integer()) {
      value = std::to_string(v.get<int64_t>());
    } else if (v.is_number_float()) {
      value = json(v.get<double>()).dump();
    } else {
      return;
    }
    const std::string full = gauge ? name : name + "_total";
    Family& f = families_[full];
    f.gauge = gauge;
    if (f.help.empty()) f.help = help;
    f.samples.push_back({labels, value});
  }
  std::string Text() const {
    std::string o;
    for (const auto& [name, f] : families_) {
      o += "# HELP " + name + " " + f.help + "\n# TYPE " + name +
           (f.gauge ? " gauge\n" : " counter\n");
      for (const Sample& s : f.samples) o += name + s.labels + " " + s.value + "\n";
    }
    return o;
  }

 private:
  std::map<std::string, Family> families_;
};

std::string Labels(const std::vector<std::pair<std::string, std::string>>& l) {
  if (l.empty()) return "";
  std::string o = "{";
  for (size_t i = 0; i < l.size(); ++i) {
    if (i) o += ",";
    o += l[i].first + "=\"" + LabelValue(l[i].second) + "\"";
  }
  return o + "}";
}

// Walks `v` (an object) under metric name `prefix` and its JSON path `path` (for HELP).
void Walk(Writer* w, const std::string& prefix, const std::string& path, const json& v,
          std::vector<std::pair<std::string, std::string>> labels) {
  for (const auto& [key, child] : v.items()) {
    // A key already ending in _total is a sum of labelled samples (dropped_total): left out.
    if (key.size() > 6 && key.compare(key.size() - 6, 6, "_total") == 0) continue;
    // Prometheus spells units out (promtool's lint): elapsed_s is elapsed_seconds.
    const std::string base = key == "elapsed_s" ? "elapsed_seconds" : Sanitize(key);
    const std::string name = prefix + "_" + base;
    const std::string p = path + "." + key;
    if (child.is_object()) {
      auto lm = LabelMaps().find(key);
      if (lm != LabelMaps().end()) {
        // {reason: n, ...}: one metric, the key as a label (nested objects inside are walked).
        for (const auto& [k, n] : child.items()) {
          auto l = labels;
          l.emplace_back(lm->second, k);
          if (n.is_object()) {
            Walk(w, name, p, n, l);
          } else {
            w->Add(name, IsGauge(key), "Dataplane counter " + p + " by " + lm->second + ".",
                   Labels(l), n);
          }
        }
      } else {
        Walk(w, name, p, child, labels);
      }
    } else if (!child.is_array()) {
      w->Add(name, IsGauge(key), "Dataplane counter " + p + ".", Labels(labels), child);
    }
  }
}

}  // namespace

std::string DataplaneMetrics(const json& counters, bool up) {
  std::string o =
      "# HELP vigil_dataplane_up 1 when control could read the dataplane's counters.\n"
      "# TYPE vigil_dataplane_up gauge\nvigil_dataplane_up " +
      std::string(up ? "1" : "0") + "\n";
  if (!up || !counters.is_object()) return o;
  Writer w;
  const std::string sensor = counters.value("sensor", "");
  json top = counters;
  for (const char* list : {"ports", "workers"}) top.erase(list);
  Walk(&w, "vigil_dataplane", "", top, {{"sensor", sensor}});
  if (counters.contains("ports") && counters["ports"].is_array()) {
    for (const json& p : counters["ports"]) {
      if (!p.is_object()) continue;
      Walk(&w, "vigil_dataplane_port", "ports[]", p,
           {{"sensor", sensor}, {"port", p.value("name", "")}});
    }
  }
  if (counters.contains("workers") && counters["workers"].is_array()) {
    for (const json& x : counters["workers"]) {
      if (!x.is_object()) continue;
      json worker = x;
      const std::string lcore = worker.contains("lcore") ? worker["lcore"].dump() : "";
      worker.erase("lcore");
      Walk(&w, "vigil_dataplane_worker", "workers[]", worker,
           {{"sensor", sensor}, {"lcore", lcore}});
    }
  }
  return o + w.Text();
}

}  // namespace vigil::ctl::api
