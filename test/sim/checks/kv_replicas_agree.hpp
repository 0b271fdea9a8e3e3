#pragma once
/// Replicas agree: at the end of a run every replica has the same revision, the same leases and
/// the same event at every revision. Reports the first revision where two histories differ.

#include <span>
#include <string>
#include <vector>

#include "kv_history.hpp"

namespace dengine::sim::checks {

/// One replica as the run left it.
struct ReplicaEnd {
  NodeId id = no_node;
  kv::Revision revision = 0;
  std::vector<kv::LeaseStatus> leases;
  const KvHistory* history = nullptr;  ///< never null
};

[[nodiscard]] inline std::vector<Violation> check_replicas_agree(
    std::span<const ReplicaEnd> replicas) {
  std::vector<Violation> out;
  if (replicas.empty()) return out;
  const ReplicaEnd& first = replicas.front();
  for (const ReplicaEnd& r : replicas.subspan(1)) {
    const std::string who = "n" + str(first.id) + " and n" + str(r.id);
    if (r.revision != first.revision) {
      out.push_back({"replicas agree", who + " end at revisions " + std::to_string(first.revision) +
                                           " and " + std::to_string(r.revision)});
      continue;
    }
    if (r.leases != first.leases) out.push_back({"replicas agree", who + " hold different leases"});
    if (*r.history == *first.history) continue;
    for (kv::Revision rev = 1; rev <= first.revision; ++rev) {
      const std::vector<kv::Event> none;
      auto a = first.history->find(rev);
      auto b = r.history->find(rev);
      const auto& ea = a == first.history->end() ? none : a->second;
      const auto& eb = b == r.history->end() ? none : b->second;
      if (ea == eb) continue;
      std::string d = who + " differ at revision " + std::to_string(rev) + ":";
      for (const auto& e : ea) d += "\n      n" + str(first.id) + ": " + describe_event(e);
      for (const auto& e : eb) d += "\n      n" + str(r.id) + ": " + describe_event(e);
      out.push_back({"replicas agree", std::move(d)});
      break;
    }
  }
  return out;
}

}  // namespace dengine::sim::checks
