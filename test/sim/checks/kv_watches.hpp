#pragma once
/// Watches: each watcher's events come in revision order without duplicates, and are exactly the
/// history's events from its start revision to the last revision it must have seen (its
/// replica's revision at a crash, or the final one); a watcher the hub cancelled says so (and
/// why), and the events before the cancellation are still complete.

#include <algorithm>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "../kv_records.hpp"
#include "kv_history.hpp"

namespace dengine::sim::checks {

[[nodiscard]] inline std::vector<Violation> check_watches(
    std::span<const kvsim::WatchSegment> segments, const KvHistory& history) {
  std::vector<Violation> out;
  for (const kvsim::WatchSegment& seg : segments) {
    const std::string who = "watch " + std::to_string(seg.watch_id) + " on n" + str(seg.node) +
                            " (incarnation " + str(seg.incarnation) + ", from " +
                            std::to_string(seg.start) + ")";
    for (const std::string& p : seg.problems) out.push_back({"watch", who + ": " += p});
    if (!seg.created) {
      out.push_back({"watch", who + ": never said created"});
      continue;
    }
    // Order: revisions never go back; no (revision, key) twice.
    std::set<std::pair<kv::Revision, std::string>> seen;
    kv::Revision last = 0;
    bool ordered = true;
    for (const kv::Event& e : seg.events) {
      if (e.kv.mod_revision < last || e.kv.mod_revision < seg.start ||
          !seen.emplace(e.kv.mod_revision, e.kv.key).second) {
        out.push_back({"watch", who + ": out of order or duplicate: " + describe_event(e) +
                                    " after revision " + std::to_string(last)});
        ordered = false;
        break;
      }
      last = e.kv.mod_revision;
    }
    if (!ordered) continue;
    if (seg.canceled && seg.cancel_reason.empty() && seg.compact_revision == 0)
      out.push_back({"watch", who + ": canceled without saying why"});
    if (!seg.canceled && !seg.end) {
      out.push_back({"watch", who + ": no end revision (harness)"});
      continue;
    }
    // Completeness: exactly the history's events in [start, hi].
    const kv::Revision hi = seg.canceled ? last : *seg.end;
    std::vector<kv::Event> want;
    for (auto it = history.lower_bound(seg.start); it != history.end() && it->first <= hi; ++it)
      want.insert(want.end(), it->second.begin(), it->second.end());
    std::vector<kv::Event> got = seg.events;
    std::stable_sort(got.begin(), got.end(), by_revision_key);
    if (got == want) continue;
    std::size_t i = 0;
    while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
    std::string d = who + ", complete through " + std::to_string(hi) + ": event " + str(i) + " is ";
    d += i < got.size() ? describe_event(got[i]) : std::string("missing");
    d += ", the history has ";
    d += i < want.size() ? describe_event(want[i]) : std::string("nothing more");
    out.push_back({"watch", std::move(d)});
  }
  return out;
}

}  // namespace dengine::sim::checks
