// Model engine: every model's components evaluated together per event. One Hyperscan database
// holds every component's literal fragments (Query::RequiredFragments); one scan of the event's
// index text tells which components can possibly match, so Query::Matches runs only for those
// (and for components that require no literal). Matches feed per-component sliding windows
// grouped by address; a window holding more than `count` events fires, subject to the model's
// throttle per device.

#include <hs/hs.h>

#include <algorithm>
#include <deque>
#include <list>
#include <unordered_map>
#include <utility>

#include "control/model/model.h"

namespace vigil::ctl::model {

namespace {

struct Entry {
  int64_t ts_ns;
  int64_t event_id;
  uint64_t flow_id;
};

struct Group {
  std::deque<Entry> entries;  // sorted by ts_ns
  std::list<std::string>::iterator lru;
  int64_t last_ts_ns = 0;  // newest entry
};

// One component of one model, flattened.
struct Comp {
  size_t model = 0;
  size_t index = 0;  // in the model's components
  const Component* spec = nullptr;
  // Alternatives of conjunctive fragment ids; empty when the component requires no literal
  // (then it is evaluated whenever its event type fits).
  std::vector<std::vector<uint32_t>> alternatives;
  // Window state.
  std::unordered_map<std::string, Group> groups;
  std::list<std::string> lru;  // front: most recently updated group
  size_t entries = 0;
};

const std::string* StringAt(const nlohmann::json& event, const char* key) {
  auto it = event.find(key);
  if (it == event.end() || !it->is_string()) return nullptr;
  return it->get_ptr<const std::string*>();
}

uint64_t FlowId(const nlohmann::json& event) {
  auto it = event.find("flow_id");
  if (it == event.end()) return 0;
  if (it->is_number_unsigned()) return it->get<uint64_t>();
  if (it->is_number_integer()) return static_cast<uint64_t>(it->get<int64_t>());
  return 0;
}

}  // namespace

struct Engine::Impl {
  std::vector<Comp> comps;
  // Component ids (ascending) wanting each event type; `any_type` for types no component names.
  std::unordered_map<std::string, std::vector<uint32_t>> by_type;
  std::vector<uint32_t> any_type;
  std::vector<std::string> fragments;
  hs_database_t* db = nullptr;
  hs_scratch_t* scratch = nullptr;
  // Per-scan matched marks: fragment id -> generation of the scan that saw it.
  std::vector<uint64_t> seen;
  uint64_t generation = 0;
  // Throttle: model index and device -> packet time of the last firing that was kept.
  std::unordered_map<std::string, std::pair<size_t, int64_t>> throttle;
  bool warming = false;  // inside Warm(): firings empty their window but are not returned

  ~Impl() {
    if (scratch != nullptr) hs_free_scratch(scratch);
    if (db != nullptr) hs_free_database(db);
  }

  static int OnMatch(unsigned int id, unsigned long long /*from*/, unsigned long long /*to*/,
                     unsigned int /*flags*/, void* ctx) {
    auto* self = static_cast<Impl*>(ctx);
    if (id < self->seen.size()) self->seen[id] = self->generation;
    return 0;  // continue: every fragment matters
  }

  bool AlternativeMatched(const Comp& c) const {
    for (const auto& alt : c.alternatives) {
      bool all = true;
      for (uint32_t f : alt) {
        if (seen[f] != generation) {
          all = false;
          break;
        }
      }
      if (all) return true;
    }
    return false;
  }
};

Engine::Engine(const ModelSet& set, const EngineOptions& options)
    : set_(set), options_(options), impl_(std::make_unique<Impl>()) {
  Impl& im = *impl_;
  std::unordered_map<std::string, uint32_t> frag_ids;
  const auto models = set_.models();
  for (size_t m = 0; m < models.size(); ++m) {
    if (!models[m].enabled) continue;
    for (size_t i = 0; i < models[m].components.size(); ++i) {
      const Component& spec = models[m].components[i];
      if (!spec.query) continue;
      Comp c;
      c.model = m;
      c.index = i;
      c.spec = &spec;
      bool unconditional = false;
      for (const auto& alt : spec.query->RequiredFragments()) {
        std::vector<uint32_t> ids;
        for (const std::string& f : alt) {
          if (f.empty()) continue;  // trivially present
          auto [it, inserted] = frag_ids.emplace(f, static_cast<uint32_t>(im.fragments.size()));
          if (inserted) im.fragments.push_back(f);
          if (std::find(ids.begin(), ids.end(), it->second) == ids.end()) ids.push_back(it->second);
        }
        // An alternative with nothing to look for can match any text.
        if (ids.empty()) unconditional = true;
        c.alternatives.push_back(std::move(ids));
      }
      if (unconditional) c.alternatives.clear();
      im.comps.push_back(std::move(c));
    }
  }
  // Event type index.
  for (uint32_t id = 0; id < im.comps.size(); ++id) {
    const auto& types = im.comps[id].spec->event_types;
    if (types.empty()) {
      im.any_type.push_back(id);
      continue;
    }
    for (const std::string& t : types) im.by_type[t];
  }
  for (auto& [type, ids] : im.by_type) {
    for (uint32_t id = 0; id < im.comps.size(); ++id) {
      const auto& types = im.comps[id].spec->event_types;
      if (types.empty() || std::find(types.begin(), types.end(), type) != types.end()) {
        ids.push_back(id);
      }
    }
  }
  im.seen.assign(im.fragments.size(), 0);
  if (!options_.prefilter || im.fragments.empty()) return;

  std::vector<const char*> exprs;
  std::vector<size_t> lens;
  std::vector<unsigned> flags, ids;
  for (uint32_t i = 0; i < im.fragments.size(); ++i) {
    exprs.push_back(im.fragments[i].data());
    lens.push_back(im.fragments[i].size());
    flags.push_back(HS_FLAG_CASELESS | HS_FLAG_SINGLEMATCH);
    ids.push_back(i);
  }
  hs_compile_error_t* err = nullptr;
  if (hs_compile_lit_multi(exprs.data(), flags.data(), ids.data(), lens.data(),
                           static_cast<unsigned>(exprs.size()), HS_MODE_BLOCK, nullptr, &im.db,
                           &err) != HS_SUCCESS) {
    prefilter_error_ = std::string("hyperscan compile: ") +
                       (err != nullptr && err->message != nullptr ? err->message : "error");
    if (err != nullptr) hs_free_compile_error(err);
    im.db = nullptr;
    return;
  }
  if (hs_alloc_scratch(im.db, &im.scratch) != HS_SUCCESS) {
    prefilter_error_ = "hyperscan: cannot allocate scratch";
    hs_free_database(im.db);
    im.db = nullptr;
    im.scratch = nullptr;
  }
}

Engine::~Engine() = default;

namespace {

std::string ThrottleKey(size_t model, std::string_view device) {
  std::string k = std::to_string(model);
  k += '\0';
  k += device;
  return k;
}

}  // namespace

void Engine::Warm(const nlohmann::json& event, int64_t event_id, int64_t ts_ns,
                  std::string_view index_text) {
  // The same evaluation (so windows and their emptying on a firing evolve exactly as they did),
  // without firings and without the evaluation counters of live events.
  const Stats before = stats_;
  impl_->warming = true;
  OnEvent(event, event_id, ts_ns, index_text);  // returns nothing while warming
  impl_->warming = false;
  const uint64_t warm_firings = stats_.firings - before.firings;
  stats_ = before;
  ++stats_.warmed;
  stats_.warm_firings += warm_firings;
}

void Engine::RestoreThrottle(std::string_view model_name, std::string_view device, int64_t ts_ns) {
  const auto models = set_.models();
  for (size_t i = 0; i < models.size(); ++i) {
    if (models[i].name != model_name || models[i].throttle_ns <= 0) continue;
    auto [it, added] = impl_->throttle.try_emplace(ThrottleKey(i, device), i, ts_ns);
    if (!added) {
      it->second.second = std::max(it->second.second, ts_ns);
    } else if (impl_->throttle.size() > std::max<size_t>(options_.max_throttle_entries, 1)) {
      impl_->throttle.erase(it);
      ++stats_.throttle_evicted;
    }
    return;
  }
}

int64_t Engine::WarmUpSpanNs() const {
  int64_t span = 0;
  for (const Model& m : set_.models()) {
    if (!m.enabled) continue;
    for (const Component& c : m.components) span = std::max(span, c.frequency.interval_ns);
  }
  return span > kMaxDurationNs / 2 ? kMaxDurationNs : 2 * span;
}

size_t Engine::fragment_count() const { return impl_->fragments.size(); }
size_t Engine::component_count() const { return impl_->comps.size(); }

std::vector<Firing> Engine::OnEvent(const nlohmann::json& event, int64_t event_id, int64_t ts_ns,
                                    std::string_view index_text) {
  Impl& im = *impl_;
  std::vector<Firing> out;
  ++stats_.events;
  if (!event.is_object()) return out;

  const std::vector<uint32_t>* candidates = &im.any_type;
  if (const std::string* type = StringAt(event, "event_type")) {
    auto it = im.by_type.find(*type);
    if (it != im.by_type.end()) candidates = &it->second;
  }
  stats_.type_skipped += im.comps.size() - candidates->size();
  if (candidates->empty()) return out;

  // One scan serves every candidate; skipped when none of them needs it.
  bool scanned = false;
  if (im.db != nullptr) {
    bool needs_scan = false;
    for (uint32_t id : *candidates) needs_scan |= !im.comps[id].alternatives.empty();
    if (needs_scan) {
      std::string owned;
      if (index_text.empty()) {
        owned = query::IndexText(event);
        index_text = owned;
      }
      ++im.generation;
      ++stats_.scans;
      if (hs_scan(im.db, index_text.data(), static_cast<unsigned>(index_text.size()), 0, im.scratch,
                  &Impl::OnMatch, &im) == HS_SUCCESS) {
        scanned = true;
      } else {
        ++stats_.scan_errors;
      }
    }
  }

  const auto models = set_.models();
  for (uint32_t id : *candidates) {
    Comp& c = im.comps[id];
    if (c.alternatives.empty()) {
      ++stats_.unfiltered;
    } else if (scanned && !im.AlternativeMatched(c)) {
      ++stats_.prefiltered_out;
      continue;
    }
    ++stats_.evaluated;
    if (!c.spec->query->Matches(event)) continue;
    ++stats_.matched;

    const Frequency& freq = c.spec->frequency;
    const std::string* src = StringAt(event, "src_ip");
    const std::string* dst = StringAt(event, "dest_ip");
    std::string key;
    const std::string* device = nullptr;
    switch (freq.group_by) {
      case GroupBy::kSource:
        device = src;
        if (src != nullptr) key = *src;
        break;
      case GroupBy::kDestination:
        device = dst;
        if (dst != nullptr) key = *dst;
        break;
      case GroupBy::kPair:
        device = src;
        if (src != nullptr && dst != nullptr) key = *src + " -> " + *dst;
        break;
    }
    if (key.empty() || device == nullptr || device->empty()) {
      ++stats_.ungrouped;
      continue;
    }

    // Groups whose newest event left the interval hold nothing countable: drop them (the LRU
    // tail is the least recently updated).
    const int64_t horizon = ts_ns - freq.interval_ns;
    while (!c.lru.empty()) {
      auto git = c.groups.find(c.lru.back());
      if (git->second.last_ts_ns > horizon) break;
      c.entries -= git->second.entries.size();
      c.lru.pop_back();
      c.groups.erase(git);
    }

    auto git = c.groups.find(key);
    if (git == c.groups.end()) {
      if (c.groups.size() >= std::max<size_t>(options_.max_groups_per_component, 1)) {
        auto victim = c.groups.find(c.lru.back());
        c.entries -= victim->second.entries.size();
        c.groups.erase(victim);
        c.lru.pop_back();
        ++stats_.groups_evicted;
      }
      c.lru.push_front(key);
      git = c.groups.emplace(key, Group{}).first;
      git->second.lru = c.lru.begin();
    } else if (git->second.lru != c.lru.begin()) {
      c.lru.splice(c.lru.begin(), c.lru, git->second.lru);
    }
    Group& g = git->second;

    // Packet time is nearly ordered; an older event is placed where it belongs.
    const Entry e{ts_ns, event_id, FlowId(event)};
    auto pos = g.entries.end();
    while (pos != g.entries.begin() && std::prev(pos)->ts_ns > ts_ns) --pos;
    g.entries.insert(pos, e);
    ++c.entries;
    g.last_ts_ns = g.entries.back().ts_ns;
    const int64_t group_horizon = g.last_ts_ns - freq.interval_ns;
    while (!g.entries.empty() &&
           (g.entries.front().ts_ns <= group_horizon || g.entries.size() > freq.count + 1)) {
      g.entries.pop_front();
      --c.entries;
    }
    // Keep the component's entry budget: drop whole least recently updated groups, then (when
    // this group alone is over budget) this group's oldest entries.
    while (c.entries > std::max<size_t>(options_.max_entries_per_component, 1)) {
      if (c.lru.back() != key) {
        auto victim = c.groups.find(c.lru.back());
        c.entries -= victim->second.entries.size();
        c.groups.erase(victim);
        c.lru.pop_back();
        ++stats_.groups_evicted;
      } else {
        g.entries.pop_front();
        --c.entries;
      }
    }
    if (g.entries.size() <= freq.count) continue;

    // Fires. The window's events become the firing's evidence and the group starts afresh.
    const Model& model = models[c.model];
    Firing f;
    f.model = model.name;
    f.priority = model.priority;
    f.device = *device;
    f.ts_ns = ts_ns;
    f.component = static_cast<int>(c.index);
    f.filter = c.spec->filter;
    const uint64_t count = g.entries.size();
    f.score = Score(model.priority, count);
    // Oldest first, the firing event last (it may be older than others when out of order).
    for (const Entry& en : g.entries) {
      if (en.event_id != event_id) f.trigger_event_ids.push_back(en.event_id);
    }
    const size_t cap = std::max<size_t>(options_.max_trigger_events, 1) - 1;
    if (f.trigger_event_ids.size() > cap) {
      f.trigger_event_ids.erase(f.trigger_event_ids.begin(),
                                f.trigger_event_ids.end() - static_cast<ptrdiff_t>(cap));
    }
    f.trigger_event_ids.push_back(event_id);
    for (const Entry& en : g.entries) {
      if (en.flow_id != 0 &&
          std::find(f.flow_ids.begin(), f.flow_ids.end(), en.flow_id) == f.flow_ids.end()) {
        f.flow_ids.push_back(en.flow_id);
      }
    }
    f.window_from_ns = ts_ns - freq.interval_ns;
    f.window_to_ns = ts_ns;
    f.details = {{"group_by", GroupByName(freq.group_by)},
                 {"group", key},
                 {"count", count},
                 {"threshold", freq.count},
                 {"interval_ns", freq.interval_ns},
                 {"first_ts_ns", g.entries.front().ts_ns},
                 {"event_types", c.spec->event_types},
                 {"mitre", model.mitre},
                 {"tags", model.tags}};
    if (src != nullptr) f.details["src_ip"] = *src;
    if (dst != nullptr) f.details["dest_ip"] = *dst;
    if (model.response) {
      f.details["response"] = {{"action", ResponseActionName(model.response->action)},
                               {"duration_ns", model.response->duration_ns},
                               {"mode", ResponseModeName(model.response->mode)}};
    }
    c.entries -= g.entries.size();
    c.lru.erase(g.lru);
    c.groups.erase(git);

    if (im.warming) {  // counted by Warm(); the restored throttle state stands as it is
      ++stats_.firings;
      continue;
    }
    // Throttle per model and device.
    std::string tkey = ThrottleKey(c.model, *device);
    auto tit = im.throttle.find(tkey);
    if (tit != im.throttle.end() && model.throttle_ns > 0 &&
        ts_ns - tit->second.second < model.throttle_ns) {
      ++stats_.throttled;
      continue;
    }
    if (tit != im.throttle.end()) {
      tit->second.second = ts_ns;
    } else if (model.throttle_ns > 0) {
      if (im.throttle.size() >= std::max<size_t>(options_.max_throttle_entries, 1)) {
        // Expired entries first; then, if every entry is live, the oldest one.
        for (auto it = im.throttle.begin(); it != im.throttle.end();) {
          const int64_t t = models[it->second.first].throttle_ns;
          it = ts_ns - it->second.second >= t ? im.throttle.erase(it) : std::next(it);
        }
        if (im.throttle.size() >= std::max<size_t>(options_.max_throttle_entries, 1)) {
          auto oldest = std::min_element(
              im.throttle.begin(), im.throttle.end(),
              [](const auto& a, const auto& b) { return a.second.second < b.second.second; });
          im.throttle.erase(oldest);
          ++stats_.throttle_evicted;
        }
      }
      im.throttle.emplace(std::move(tkey), std::make_pair(c.model, ts_ns));
    }
    ++stats_.firings;
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace vigil::ctl::model
