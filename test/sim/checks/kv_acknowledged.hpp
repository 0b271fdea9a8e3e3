#pragma once
/// No acknowledged write lost: every put / lease put / swapping CAS / delete that deleted
/// something, once acknowledged, is the event at the revision its response named.

#include <span>
#include <string>
#include <vector>

#include "../kv_records.hpp"
#include "kv_history.hpp"

namespace dengine::sim::checks {

[[nodiscard]] inline std::vector<Violation> check_acknowledged(std::span<const kvsim::OpRecord> ops,
                                                               const KvHistory& history) {
  using kvsim::OpKind;
  std::vector<Violation> out;
  for (const kvsim::OpRecord& op : ops) {
    if (op.outcome != kvsim::OpRecord::Outcome::ok) continue;
    kv::EventType type = kv::EventType::put;
    if (op.kind == OpKind::del && op.deleted > 0) {
      type = kv::EventType::del;
    } else if (!(op.kind == OpKind::put || op.kind == OpKind::lease_put ||
                 (op.kind == OpKind::cas && op.cas_ok))) {
      continue;
    }
    bool found = false;
    if (auto it = history.find(op.revision); it != history.end()) {
      for (const kv::Event& e : it->second)
        found = found || (e.kv.key == op.key && e.type == type &&
                          (type == kv::EventType::del || e.kv.value == op.value));
    }
    if (!found)
      out.push_back({"acknowledged write lost",
                     "c" + str(op.client) + " " + to_string(op.kind) + " " + op.key +
                         (type == kv::EventType::put ? "=" + op.value : std::string()) +
                         " was acknowledged at revision " + std::to_string(op.revision) +
                         " but the history has no such event there"});
  }
  return out;
}

}  // namespace dengine::sim::checks
