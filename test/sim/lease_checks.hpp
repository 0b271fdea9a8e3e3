#pragma once
/// Leases and the promises they stand on, checked directly rather than only through a client
/// read that happens to land in a bad window. Part of Cluster (cluster.hpp).
///
/// Two invariants, each stated without trusting the core's own bookkeeping:
///
///  - **leader promise**: a node that acknowledged a heartbeat round of a leader that serves
///    lease reads grants no vote or pre-vote to anyone else until election_ticks of its own
///    ticks have passed since that round *arrived* — leader transfer (a vote request the leader
///    asked for) excepted. The harness counts the ticks and records arrivals and
///    acknowledgements itself, across restarts.
///  - **lease overlap**: no leader's lease is valid (it would serve a lease read now: held by the
///    core and, unless the tick-lease bug is injected, by its own clock) while a leader of a
///    higher term exists.

#include <string>

#include "cluster.hpp"

namespace dengine::sim {

inline bool Cluster::lease_valid(const SimNode& n) const {
  if (n.status != SimNode::Status::up || n.core().role() != raft::Role::leader) return false;
  // What the node's Driver published for lease reads, against the node's clock now.
  return n.node->lease_read_index().has_value();
}

inline void Cluster::note_delivered(SimNode& n, const raft::Message& m) {
  if (m.type == raft::MessageType::heartbeat && m.term >= n.core().term()) {
    n.heartbeats_in[{m.from, m.context}] = n.ticks;
    // Rounds that were never acknowledged (their acknowledgement was still waiting for a sync
    // when the next arrived) need not be kept for long.
    while (n.heartbeats_in.size() > 64) n.heartbeats_in.erase(n.heartbeats_in.begin());
  }
  if (m.type == raft::MessageType::vote && m.context == raft::vote_context_transfer)
    n.transfer_requests.insert({m.from, m.term});
}

inline void Cluster::note_sent(SimNode& n, const raft::Message& m) {
  if (m.type == raft::MessageType::heartbeat_response) {
    auto it = n.heartbeats_in.find({m.to, m.context});
    if (it == n.heartbeats_in.end()) return;
    // Only a leader that serves lease reads counts on the acknowledgement as a promise.
    if (config_for(node(m.to)).raft.lease_reads) {
      if (n.promised_to != m.to) n.promised_at_tick = 0;
      n.promised_to = m.to;
      n.promised_at_tick = std::max(n.promised_at_tick, it->second);
    }
    n.heartbeats_in.erase(it);
    return;
  }
  if (m.type == raft::MessageType::vote_response && !m.reject)
    if (auto v = inv_.check_vote_granted(n.id, m.term, m.to)) return fail(v->invariant, v->detail);
  const bool grant = (m.type == raft::MessageType::vote_response ||
                      m.type == raft::MessageType::pre_vote_response) &&
                     !m.reject;
  if (!grant || n.promised_to == no_node || m.to == n.promised_to) return;
  // The leader asked for this election (transfer); a pre-vote to the same candidate for the
  // same term (a late one) repeats that vote.
  if (n.transfer_requests.contains({m.to, m.term})) return;
  const std::uint64_t since = n.ticks - n.promised_at_tick;
  const std::uint32_t timeout = config_for(n).raft.election_ticks;
  if (since < timeout)
    fail("leader promise",
         "n" + std::to_string(n.id) + " granted a " +
             (m.type == raft::MessageType::vote_response ? "vote" : "pre-vote") + " to n" +
             std::to_string(m.to) + " (term " + std::to_string(m.term) + ") " +
             std::to_string(since) + " of its ticks after a heartbeat round of n" +
             std::to_string(n.promised_to) + " that it acknowledged arrived; its promise lasts " +
             std::to_string(timeout) + " ticks");
}

inline void Cluster::check_lease_overlap() {
  if (violation_) return;
  const SimNode* newest = nullptr;
  for (const auto& n : nodes_)
    if (n->status == SimNode::Status::up && n->core().role() == raft::Role::leader &&
        (newest == nullptr || n->core().term() > newest->core().term()))
      newest = n.get();
  if (newest == nullptr) return;
  for (const auto& n : nodes_) {
    if (n.get() == newest || n->status != SimNode::Status::up ||
        n->core().term() >= newest->core().term() || !lease_valid(*n))
      continue;
    return fail("lease overlap",
                "n" + std::to_string(n->id) + " (leader of term " +
                    std::to_string(n->core().term()) + ") holds a lease (" +
                    std::to_string(n->core().lease_ticks_left()) + " ticks left, commit " +
                    std::to_string(n->core().commit_index()) + ") while n" +
                    std::to_string(newest->id) + " leads term " +
                    std::to_string(newest->core().term()) + (paused(*n) ? "; n" : "") +
                    (paused(*n) ? std::to_string(n->id) + "'s event loop is frozen" : ""));
  }
}

}  // namespace dengine::sim
