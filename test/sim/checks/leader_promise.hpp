#pragma once
/// Leader promise: a node that acknowledged a heartbeat round of a leader that serves lease
/// reads grants no vote or pre-vote to anyone else until election_ticks of its own ticks have
/// passed since that round *arrived* — a vote request the leader asked for (a transfer)
/// excepted. Stated without trusting the core's bookkeeping: the harness reports every message
/// as it arrives at and leaves a node, with the node's tick count then (across restarts).

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "common.hpp"
#include "dengine/raft/message.hpp"

namespace dengine::sim::checks {

class LeaderPromise {
 public:
  /// `m` arrived at `node`, whose ticks (over every incarnation) are `ticks`; `current_term` is
  /// the node's term.
  void on_arrived(NodeId node, const raft::Message& m, Term current_term, std::uint64_t ticks) {
    State& s = nodes_[node];
    if (m.type == raft::MessageType::heartbeat && m.term >= current_term) {
      s.heartbeats_in[{m.from, m.context}] = ticks;
      // Rounds that were never acknowledged (the acknowledgement still waited for a sync when
      // the next arrived) need not be kept for long.
      while (s.heartbeats_in.size() > 64) s.heartbeats_in.erase(s.heartbeats_in.begin());
    }
    if (m.type == raft::MessageType::vote && m.context == raft::vote_context_transfer)
      s.transfer_requests.insert({m.from, m.term});
  }

  /// `m` left `node` (`ticks` as above). `leader_serves_leases`: the recipient counts on a
  /// heartbeat acknowledgement as a promise (it serves lease reads); `election_ticks`: how long
  /// a promise lasts, in the sender's ticks.
  [[nodiscard]] std::optional<Violation> on_sent(NodeId node, const raft::Message& m,
                                                 std::uint64_t ticks, bool leader_serves_leases,
                                                 std::uint32_t election_ticks) {
    State& s = nodes_[node];
    if (m.type == raft::MessageType::heartbeat_response) {
      auto it = s.heartbeats_in.find({m.to, m.context});
      if (it == s.heartbeats_in.end()) return std::nullopt;
      if (leader_serves_leases) {
        if (s.promised_to != m.to) s.promised_at_tick = 0;
        s.promised_to = m.to;
        s.promised_at_tick = std::max(s.promised_at_tick, it->second);
      }
      s.heartbeats_in.erase(it);
      return std::nullopt;
    }
    const bool grant = (m.type == raft::MessageType::vote_response ||
                        m.type == raft::MessageType::pre_vote_response) &&
                       !m.reject;
    if (!grant || s.promised_to == no_node || m.to == s.promised_to) return std::nullopt;
    // The leader asked for this election (transfer); a pre-vote to the same candidate for the
    // same term (a late one) repeats that vote.
    if (s.transfer_requests.contains({m.to, m.term})) return std::nullopt;
    const std::uint64_t since = ticks - s.promised_at_tick;
    if (since >= election_ticks) return std::nullopt;
    return violation("leader promise",
                     "n" + str(node) + " granted a " +
                         (m.type == raft::MessageType::vote_response ? "vote" : "pre-vote") +
                         " to n" + str(m.to) + " (term " + str(m.term) + ") " + str(since) +
                         " of its ticks after a heartbeat round of n" + str(s.promised_to) +
                         " that it acknowledged arrived; its promise lasts " + str(election_ticks) +
                         " ticks");
  }

  /// `node` became leader: it owes nothing to the one it followed (winning took an expired
  /// promise or that leader's own transfer).
  void on_leading(NodeId node) { nodes_[node].promised_to = no_node; }

  /// `node` crashed: the rounds it had not acknowledged are gone with it (its promise stays).
  void on_crash(NodeId node) { nodes_[node].heartbeats_in.clear(); }

 private:
  struct State {
    /// Heartbeats delivered, by (leader, round): the tick count at arrival, until acknowledged.
    std::map<std::pair<NodeId, std::uint64_t>, std::uint64_t> heartbeats_in;
    /// The latest acknowledged round of a lease-serving leader: whom, and the tick count when
    /// that round arrived.
    NodeId promised_to = no_node;
    std::uint64_t promised_at_tick = 0;
    /// Vote requests that came as part of a leader transfer: (candidate, term).
    std::set<std::pair<NodeId, Term>> transfer_requests;
  };
  std::map<NodeId, State> nodes_;
};

}  // namespace dengine::sim::checks
