#pragma once
/// Leases end: after the heal every lease expired or was revoked — no replica still holds a lease
/// or a key of one — and every key put under a lease was deleted exactly once, last, all of one
/// lease's keys in one revision (one revoke).

#include <cstdint>
#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "../kv_records.hpp"
#include "kv_history.hpp"

namespace dengine::sim::checks {

/// What one replica still holds of leases at the end.
struct LeasesLeft {
  NodeId id = no_node;
  std::vector<kv::LeaseStatus> leases;
  /// A key put under a lease (the workload's "lease/" prefix) still present, or the error that
  /// reading them gave; empty when none is left.
  std::string key_left;
};

[[nodiscard]] inline std::vector<Violation> check_leases_gone(std::span<const LeasesLeft> ends) {
  std::vector<Violation> out;
  for (const LeasesLeft& r : ends) {
    if (!r.leases.empty())
      out.push_back({"lease expiry", "n" + str(r.id) + " still holds " + str(r.leases.size()) +
                                         " leases (first " + std::to_string(r.leases.front().id) +
                                         ") at the end"});
    if (!r.key_left.empty())
      out.push_back(
          {"lease expiry", "n" + str(r.id) + " still holds keys of leases (" + r.key_left + ")"});
  }
  return out;
}

struct LeaseKeysVerdict {
  std::vector<Violation> violations;
  std::uint64_t expiries = 0;  ///< leases (not revoked by their client) whose keys were deleted
};

[[nodiscard]] inline LeaseKeysVerdict check_lease_keys(
    const std::map<kv::LeaseId, kvsim::LeaseRecord>& leases, const KvHistory& history) {
  LeaseKeysVerdict out;
  std::map<std::string, std::vector<const kv::Event*>> by_key;
  for (const auto& [rev, events] : history)
    for (const kv::Event& e : events)
      if (e.kv.key.starts_with("lease/")) by_key[e.kv.key].push_back(&e);
  for (const auto& [id, l] : leases) {
    std::set<kv::Revision> deleted_at;
    for (const std::string& key : l.keys) {
      auto it = by_key.find(key);
      if (it == by_key.end()) continue;  // the put never took effect
      std::size_t deletes = 0;
      for (const kv::Event* e : it->second) deletes += e->type == kv::EventType::del ? 1 : 0;
      if (deletes != 1 || it->second.back()->type != kv::EventType::del) {
        out.violations.push_back({"lease expiry", "key " + key + " of lease " + std::to_string(id) +
                                                      ": " + str(deletes) +
                                                      " deletes, last event " +
                                                      describe_event(*it->second.back())});
        continue;
      }
      deleted_at.insert(it->second.back()->kv.mod_revision);
    }
    if (deleted_at.size() > 1)
      out.violations.push_back({"lease expiry", "the keys of lease " + std::to_string(id) +
                                                    " were deleted at " + str(deleted_at.size()) +
                                                    " different revisions (more than one revoke)"});
    if (!deleted_at.empty() && l.plan != kvsim::LeasePlan::revoke) ++out.expiries;
  }
  return out;
}

}  // namespace dengine::sim::checks
