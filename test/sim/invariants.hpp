#pragma once
/// Raft's safety properties (Raft paper, figure 3, and the thesis), checked on the observable
/// state of every node after every simulation step: InvariantChecker runs the checks of
/// test/sim/checks/, one invariant per file, each returning the first violation it sees with a
/// message naming the nodes, terms and indices involved.
///
/// The checks keep history forever (which node led which term, which entries were committed
/// and applied), because most violations are only visible by comparing against the past: two
/// leaders of one term are rarely alive at the same instant.

#include <cstddef>
#include <optional>

#include "checks/commit_monotonic.hpp"
#include "checks/commit_within_log.hpp"
#include "checks/committed_stable.hpp"
#include "checks/common.hpp"
#include "checks/election_safety.hpp"
#include "checks/leader_completeness.hpp"
#include "checks/log_matching.hpp"
#include "checks/state_machine_safety.hpp"
#include "checks/term_monotonic.hpp"
#include "checks/vote_once.hpp"

namespace dengine::sim {

/// Runs the safety checks. Call `check_step` after every step with each node the step touched
/// (and `check_log_matching` over the entries it changed), call `on_restart` when a node's
/// process restarts from durable state, and `check_applied` for each entry a node's state
/// machine applies.
class InvariantChecker {
 public:
  /// A node restarted (a new incarnation): per-incarnation state (commit index, apply cursor)
  /// starts over; durable facts (its votes) and global history stay.
  void on_restart(NodeId node) {
    commit_monotonic_.on_restart(node);
    committed_stable_.on_restart(node);
    state_machine_safety_.on_restart(node);
  }
  /// The same, for a node whose durable hard state lags what it ran with (node::Node saves it
  /// on the log writer, after the core adopted it): the term and the vote it had not saved are
  /// lost with the process, and may come out differently in the next incarnation.
  void on_restart(NodeId node, const HardState& durable) {
    on_restart(node);
    term_monotonic_.on_restart(node, durable.term);
    vote_once_.on_restart(node, durable);
  }

  /// A granted vote left `voter` for `candidate` in `term` (a harness that sees the messages
  /// calls this for every vote response that grants; pre-votes promise nothing).
  [[nodiscard]] std::optional<Violation> check_vote_granted(NodeId voter, Term term,
                                                            NodeId candidate) {
    return vote_once_.check_grant(voter, term, candidate);
  }

  /// A node installed a snapshot into its state machine: its next applied entry follows `index`.
  void on_snapshot_restored(NodeId node, LogIndex index) {
    state_machine_safety_.on_snapshot_restored(node, index);
  }

  /// Runs every per-step invariant on one node; the first violation wins. Log matching is not
  /// among them: it costs O(log length), so a harness checks the entries each step changed
  /// (check_log_matching with a range) and sweeps whole logs now and then.
  template <ObservedNode N>
  [[nodiscard]] std::optional<Violation> check_step(const N& n) {
    if (auto v = check_election_safety(n)) return v;
    if (auto v = check_term_monotonic(n)) return v;
    if (auto v = check_vote_once(n)) return v;
    if (auto v = check_commit_within_log(n)) return v;
    if (auto v = check_commit_monotonic(n)) return v;
    if (auto v = check_committed_stable(n)) return v;
    if (auto v = check_leader_completeness(n)) return v;
    return std::nullopt;
  }

  /// Every invariant including a full log-matching sweep.
  template <ObservedNode N>
  [[nodiscard]] std::optional<Violation> check_all(const N& n) {
    if (auto v = check_step(n)) return v;
    return check_log_matching(n);
  }

  // One invariant each (checks/<name>.hpp says what it states).
  template <ObservedNode N>
  [[nodiscard]] std::optional<Violation> check_election_safety(const N& n) {
    return election_safety_.check(n);
  }
  template <ObservedNode N>
  [[nodiscard]] std::optional<Violation> check_term_monotonic(const N& n) {
    return term_monotonic_.check(n);
  }
  template <ObservedNode N>
  [[nodiscard]] std::optional<Violation> check_vote_once(const N& n) {
    return vote_once_.check(n);
  }
  template <ObservedNode N>
  [[nodiscard]] std::optional<Violation> check_log_matching(const N& n) {
    return log_matching_.check(n);
  }
  template <ObservedNode N>
  [[nodiscard]] std::optional<Violation> check_log_matching(const N& n, LogIndex lo, LogIndex hi) {
    return log_matching_.check(n, lo, hi);
  }
  template <ObservedNode N>
  [[nodiscard]] std::optional<Violation> check_commit_within_log(const N& n) {
    return checks::CommitWithinLog{}.check(n);
  }
  template <ObservedNode N>
  [[nodiscard]] std::optional<Violation> check_commit_monotonic(const N& n) {
    return commit_monotonic_.check(n);
  }
  template <ObservedNode N>
  [[nodiscard]] std::optional<Violation> check_committed_stable(const N& n) {
    return committed_stable_.check(n);
  }
  template <ObservedNode N>
  [[nodiscard]] std::optional<Violation> check_leader_completeness(const N& n) {
    return leader_completeness_.check(n, committed_stable_);
  }
  [[nodiscard]] std::optional<Violation> check_applied(NodeId node, const Entry& e) {
    return state_machine_safety_.check_applied(node, e);
  }

  /// The leader recorded for `term`, if any (for traces and liveness checks).
  [[nodiscard]] std::optional<NodeId> leader_of(Term term) const {
    return election_safety_.leader_of(term);
  }
  /// The highest index known committed anywhere.
  [[nodiscard]] LogIndex max_committed() const { return committed_stable_.max_committed(); }
  /// How many distinct indices some node applied.
  [[nodiscard]] std::size_t applied_count() const noexcept {
    return state_machine_safety_.applied_count();
  }

 private:
  checks::ElectionSafety election_safety_;
  checks::TermMonotonic term_monotonic_;
  checks::VoteOnce vote_once_;
  checks::LogMatching log_matching_;
  checks::CommitMonotonic commit_monotonic_;
  checks::CommittedStable committed_stable_;
  checks::LeaderCompleteness leader_completeness_;
  checks::StateMachineSafety state_machine_safety_;
};

}  // namespace dengine::sim
