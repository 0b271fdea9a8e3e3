#pragma once
/// Leases and the promises they stand on, checked directly rather than only through a client
/// read that happens to land in a bad window: what the harness feeds the two lease invariants
/// of test/sim/checks/ (leader_promise.hpp, lease_overlap.hpp). Part of Cluster (cluster.hpp).

#include <vector>

#include "checks/lease_overlap.hpp"
#include "cluster.hpp"

namespace dengine::sim {

inline bool Cluster::lease_valid(const SimNode& n) const {
  if (n.status != SimNode::Status::up || n.core().role() != raft::Role::leader) return false;
  // What the node's Driver published for lease reads, against the node's clock now.
  return n.node->lease_read_index().has_value();
}

inline void Cluster::note_delivered(SimNode& n, const raft::Message& m) {
  promises_.on_arrived(n.id, m, n.core().term(), n.ticks);
}

inline void Cluster::note_sent(SimNode& n, const raft::Message& m) {
  if (m.type == raft::MessageType::vote_response && !m.reject)
    if (auto v = inv_.check_vote_granted(n.id, m.term, m.to)) return fail(v->invariant, v->detail);
  const bool to_lease_leader = node(m.to).config.raft.lease_reads;
  if (auto v = promises_.on_sent(n.id, m, n.ticks, to_lease_leader, n.config.raft.election_ticks))
    fail(v->invariant, v->detail);
}

inline void Cluster::check_lease_overlap() {
  if (violation_) return;
  std::vector<checks::LeaseView> views;
  for (const auto& n : nodes_) {
    if (n->status != SimNode::Status::up) continue;
    const raft::Core& c = n->core();
    views.push_back({n->id, c.term(), c.role() == raft::Role::leader, lease_valid(*n),
                     c.lease_ticks_left(), c.commit_index(), paused(*n)});
  }
  if (auto v = checks::check_lease_overlap(views)) fail(v->invariant, v->detail);
}

}  // namespace dengine::sim
