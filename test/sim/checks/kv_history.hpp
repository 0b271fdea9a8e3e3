#pragma once
/// What the KV checks share: a replica's whole event history, rebuilt from its applied state (a
/// range at every revision), and how an event is described in a report. Independent of the watch
/// code the histories are compared with.

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common.hpp"
#include "dengine/statemachines/kv/requests.hpp"
#include "dengine/statemachines/kv/types.hpp"

namespace dengine::sim::checks {

/// Revision -> the events that revision made, sorted by key.
using KvHistory = std::map<kv::Revision, std::vector<kv::Event>>;

[[nodiscard]] inline std::string describe_event(const kv::Event& e) {
  std::string s = e.type == kv::EventType::put ? "put " : "delete ";
  s += e.kv.key;
  if (e.type == kv::EventType::put)
    s += "=" + e.kv.value + " (create " + std::to_string(e.kv.create_revision) + ", version " +
         std::to_string(e.kv.version) + ", lease " + std::to_string(e.kv.lease) + ")";
  s += " @" + std::to_string(e.kv.mod_revision);
  return s;
}

/// Orders events as a history lists them: by revision, then key.
[[nodiscard]] inline bool by_revision_key(const kv::Event& a, const kv::Event& b) {
  if (a.kv.mod_revision != b.kv.mod_revision) return a.kv.mod_revision < b.kv.mod_revision;
  return a.kv.key < b.kv.key;
}

/// The whole event history of a KV machine's applied state: the keys at each revision,
/// compared with the previous one (a key whose mod_revision is r was put at r; a key gone at r
/// was deleted at r).
template <class Machine>
[[nodiscard]] result<KvHistory> kv_history_of(const Machine& m) {
  KvHistory out;
  std::map<std::string, kv::KeyValue> prev;
  const kv::Revision last = m.current_revision();
  for (kv::Revision r = 1; r <= last; ++r) {
    kv::RangeRequest req;
    req.key = std::string(1, '\0');
    req.range_end = std::string(1, '\0');
    req.revision = r;
    DENGINE_TRY(resp, m.range(req));
    std::map<std::string, kv::KeyValue> cur;
    for (kv::KeyValue& kv : resp.kvs) cur.emplace(kv.key, std::move(kv));
    std::vector<kv::Event> events;
    for (const auto& [key, kv] : cur)
      if (kv.mod_revision == r) events.push_back(kv::Event{kv::EventType::put, kv, std::nullopt});
    for (const auto& [key, kv] : prev) {
      if (cur.contains(key)) continue;
      kv::Event e;
      e.type = kv::EventType::del;
      e.kv.key = key;
      e.kv.mod_revision = r;
      events.push_back(std::move(e));
    }
    std::sort(events.begin(), events.end(), by_revision_key);
    if (!events.empty()) out.emplace(r, std::move(events));
    prev = std::move(cur);
  }
  return out;
}

/// Each key's events, in revision order (pointers into `history`).
[[nodiscard]] inline std::map<std::string, std::vector<const kv::Event*>> events_by_key(
    const KvHistory& history) {
  std::map<std::string, std::vector<const kv::Event*>> by_key;
  for (const auto& [rev, events] : history)
    for (const kv::Event& e : events) by_key[e.kv.key].push_back(&e);
  return by_key;
}

}  // namespace dengine::sim::checks
