#pragma once
/// No early expiry: a lease may expire only after a full TTL without a successful keep-alive at
/// the lessor that decided it (etcd's rule).
///
/// The decision is the revoke entry the leader's housekeeping proposed (seen when appended, at
/// t ≥ the decision). The lessor that made it was promoted at T_p (its last leader notification
/// of a term ≤ the entry's): it then gave every lease T_p + TTL + promote_extend, and a
/// keep-alive on it at k set k + TTL. So a keep-alive k with k + TTL > t is a violation when it
/// was made (a) on that lessor in that term, (b) anywhere before T_p, or (c) on a leader of a
/// later term than that lessor's (up to the entry's term: a stale lessor decided). Exempt, as in
/// etcd: keep-alives at a deposed leader that did not know it yet (an older term, after T_p),
/// and those at a newer leader after the decision (the revoke was in flight).

#include <algorithm>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "../kv_records.hpp"
#include "common.hpp"

namespace dengine::sim::checks {

/// What the run recorded that the rule needs.
struct LeaseTimeline {
  std::span<const kvsim::RevokeAppend> revokes;
  std::span<const kvsim::RoleChange> roles;
  std::span<const kvsim::KeepAlive> keep_alives;
  const std::map<kv::LeaseId, kvsim::LeaseRecord>* leases = nullptr;  ///< never null
};

[[nodiscard]] inline std::vector<Violation> check_keep_alives(const LeaseTimeline& t) {
  std::vector<Violation> out;
  // Earliest append of each revoke entry, and who proposed it.
  struct Decision {
    kv::LeaseId lease = kv::no_lease;
    sim_time at = 0;
    NodeId proposer = no_node;
  };
  std::map<std::pair<LogIndex, Term>, Decision> decisions;
  for (const kvsim::RevokeAppend& r : t.revokes) {
    auto [it, fresh] = decisions.emplace(std::pair{r.index, r.term}, Decision{r.lease, r.at, 0});
    if (!fresh) it->second.at = std::min(it->second.at, r.at);
    if (r.by_leader) it->second.proposer = r.node;
  }
  for (const auto& [entry, d] : decisions) {
    auto l = t.leases->find(d.lease);
    if (l == t.leases->end() || l->second.plan != kvsim::LeasePlan::keep) continue;
    const Term entry_term = entry.second;
    NodeId proposer = d.proposer;
    if (proposer == no_node) {
      for (const kvsim::RoleChange& rc : t.roles)
        if (rc.leader && rc.term == entry_term) proposer = rc.node;
    }
    if (proposer == no_node) continue;  // its leader crashed before anything was recorded
    const kvsim::RoleChange* promoted = nullptr;
    for (const kvsim::RoleChange& rc : t.roles)
      if (rc.node == proposer && rc.leader && rc.term <= entry_term && rc.at <= d.at)
        promoted = &rc;
    if (promoted == nullptr) {
      out.push_back({"lease expiry", "lease " + std::to_string(d.lease) + ": revoke at index " +
                                         str(entry.first) + " proposed by n" + str(proposer) +
                                         ", whose lessor was never promoted"});
      continue;
    }
    const sim_time ttl = sim_s(static_cast<std::uint64_t>(l->second.ttl));
    for (const kvsim::KeepAlive& k : t.keep_alives) {
      if (k.lease != d.lease || k.at >= d.at) continue;
      const bool same_lessor = k.node == proposer && k.lessor_term == promoted->term;
      const bool before_promotion = k.at < promoted->at;
      const bool newer_leader = k.lessor_term > promoted->term && k.lessor_term <= entry_term;
      if (!(same_lessor || before_promotion || newer_leader) || k.at + ttl <= d.at) continue;
      out.push_back({"lease expiry",
                     "lease " + std::to_string(d.lease) + " (TTL " + std::to_string(l->second.ttl) +
                         " s) was decided expired by n" + str(proposer) + " (lessor of term " +
                         str(promoted->term) + ", promoted at " + str(promoted->at) + " us) by " +
                         str(d.at) + " us (revoke at index " + str(entry.first) + ", term " +
                         str(entry_term) + "), but a keep-alive at n" + str(k.node) +
                         " (lessor term " + str(k.lessor_term) + ") succeeded at " + str(k.at) +
                         " us"});
      break;
    }
  }
  return out;
}

}  // namespace dengine::sim::checks
