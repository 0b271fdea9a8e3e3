#pragma once
/// Raft's safety properties (Raft paper, figure 3, and the thesis), checked on the observable
/// state of every node after every simulation step. Each property is one member function of
/// InvariantChecker that returns the first violation it sees with a message naming the nodes,
/// terms and indices involved.
///
/// The checker keeps history forever (which node led which term, which entries were committed
/// and applied), because most violations are only visible by comparing against the past: two
/// leaders of one term are rarely alive at the same instant.

#include <algorithm>
#include <concepts>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/raft/ready.hpp"

namespace dengine::sim {

/// A broken invariant: which one, and the evidence.
struct Violation {
  std::string invariant;
  std::string detail;
};

/// What the checker needs to see of a node (raft::Core provides exactly this).
template <class N>
concept ObservedNode = requires(const N& n, LogIndex i) {
  { n.id() } -> std::convertible_to<NodeId>;
  { n.role() } -> std::convertible_to<raft::Role>;
  { n.term() } -> std::convertible_to<Term>;
  { n.commit_index() } -> std::convertible_to<LogIndex>;
  { n.first_index() } -> std::convertible_to<LogIndex>;
  { n.last_index() } -> std::convertible_to<LogIndex>;
  { n.hard_state() } -> std::convertible_to<HardState>;
  { n.term_at(i) } -> std::same_as<result<Term>>;
  { n.entry_at(i) } -> std::same_as<const Entry*>;
};

/// A 64-bit fingerprint of an entry's type and payload (FNV-1a). Comparing fingerprints instead
/// of payloads keeps the history small; a collision could only hide a violation, never invent one.
[[nodiscard]] inline std::uint64_t fingerprint(const Entry& e) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  auto mix = [&h](unsigned char c) { h = (h ^ c) * 0x100000001b3ULL; };
  mix(static_cast<unsigned char>(e.type));
  for (char c : e.data) mix(static_cast<unsigned char>(c));
  return h;
}

/// Checks the safety invariants. Call `check_step` after every step with each node the step touched
/// (and `check_log_matching` over the entries it changed), call
/// `on_restart` when a node's process restarts from durable state, and `check_applied` for each
/// entry a node's state machine applies.
class InvariantChecker {
 public:
  /// A node restarted (a new incarnation): per-incarnation state (commit index, apply cursor)
  /// starts over; durable facts (its votes) and global history stay.
  void on_restart(NodeId node) {
    ++restarts_[node];
    commit_seen_.erase(node);
    applied_upto_.erase(node);
  }

  /// A node installed a snapshot into its state machine: its next applied entry follows `index`.
  void on_snapshot_restored(NodeId node, LogIndex index) { applied_upto_[node] = index; }

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

  /// Election safety: at most one leader per term, ever.
  template <ObservedNode N>
  [[nodiscard]] std::optional<Violation> check_election_safety(const N& n) {
    if (n.role() != raft::Role::leader) return std::nullopt;
    auto [it, inserted] = leaders_.emplace(n.term(), n.id());
    if (!inserted && it->second != n.id())
      return violation("election safety", "nodes " + str(it->second) + " and " + str(n.id()) +
                                              " were both leader in term " + str(n.term()));
    return std::nullopt;
  }

  /// A node's term never decreases, across restarts too (the term is in the durable hard state).
  template <ObservedNode N>
  [[nodiscard]] std::optional<Violation> check_term_monotonic(const N& n) {
    Term& last = terms_[n.id()];
    if (n.term() < last)
      return violation("term monotonic", "node " + str(n.id()) + " went from term " + str(last) +
                                             " back to term " + str(n.term()));
    last = n.term();
    return std::nullopt;
  }

  /// A node votes for at most one candidate per term, across restarts (the vote is durable).
  template <ObservedNode N>
  [[nodiscard]] std::optional<Violation> check_vote_once(const N& n) {
    const HardState hs = n.hard_state();
    if (hs.vote == no_node) return std::nullopt;
    auto [it, inserted] = votes_.emplace(std::make_pair(n.id(), hs.term), hs.vote);
    if (!inserted && it->second != hs.vote)
      return violation("vote once", "node " + str(n.id()) + " voted for " + str(it->second) +
                                        " and then for " + str(hs.vote) + " in term " +
                                        str(hs.term));
    return std::nullopt;
  }

  /// Log matching: if two logs hold an entry with the same index and term, the logs are identical
  /// up to that index. Checked inductively over all nodes and all time: an (index, term) pair
  /// always has the same content and is always preceded by the same term, so two logs that agree
  /// at (i, t) agree at i - 1, and so on down.
  template <ObservedNode N>
  [[nodiscard]] std::optional<Violation> check_log_matching(const N& n) {
    return check_log_matching(n, n.first_index(), n.last_index());
  }

  /// Log matching over the node's entries in [lo, hi] (clamped to its in-memory log).
  template <ObservedNode N>
  [[nodiscard]] std::optional<Violation> check_log_matching(const N& n, LogIndex lo, LogIndex hi) {
    const LogIndex first = std::max(lo, n.first_index());
    const LogIndex last = std::min(hi, n.last_index());
    std::optional<Term> prev;
    if (first > 1) {
      auto t = n.term_at(first - 1);
      if (t) prev = t.value();
    } else {
      prev = Term{0};
    }
    for (LogIndex i = first; i <= last; ++i) {
      const Entry* e = n.entry_at(i);
      if (e == nullptr) {
        prev.reset();
        continue;
      }
      if (e->index != i)
        return violation("log matching", "node " + str(n.id()) + " holds an entry numbered " +
                                             str(e->index) + " at index " + str(i));
      const std::uint64_t fp = fingerprint(*e);
      auto [it, inserted] = log_.emplace(std::make_pair(i, e->term), LogRecord{fp, prev, n.id()});
      LogRecord& rec = it->second;
      if (!inserted) {
        if (rec.fingerprint != fp)
          return violation("log matching", "nodes " + str(rec.node) + " and " + str(n.id()) +
                                               " hold different entries at index " + str(i) +
                                               " with the same term " + str(e->term));
        if (prev && rec.prev_term && *rec.prev_term != *prev)
          return violation("log matching", "nodes " + str(rec.node) + " and " + str(n.id()) +
                                               " agree on (index " + str(i) + ", term " +
                                               str(e->term) + ") but differ at index " +
                                               str(i - 1) + " (terms " + str(*rec.prev_term) +
                                               " and " + str(*prev) + ")");
        if (!rec.prev_term) rec.prev_term = prev;
      }
      prev = e->term;
    }
    return std::nullopt;
  }

  /// A node never claims to have committed entries it does not hold.
  template <ObservedNode N>
  [[nodiscard]] std::optional<Violation> check_commit_within_log(const N& n) {
    if (n.commit_index() > n.last_index())
      return violation("commit within log", "node " + str(n.id()) + " has commit index " +
                                                str(n.commit_index()) + " beyond its last index " +
                                                str(n.last_index()));
    return std::nullopt;
  }

  /// Within one incarnation a node's commit index never decreases. (A restart may resume from a
  /// lower durable commit index; committed entries themselves never change — see
  /// check_committed_stable.)
  template <ObservedNode N>
  [[nodiscard]] std::optional<Violation> check_commit_monotonic(const N& n) {
    auto it = monotonic_commit_.find(n.id());
    if (it != monotonic_commit_.end() && it->second.incarnation_key == incarnation_key(n.id()) &&
        n.commit_index() < it->second.commit)
      return violation("commit monotonic", "node " + str(n.id()) +
                                               " moved its commit index back from " +
                                               str(it->second.commit) + " to " +
                                               str(n.commit_index()) + " without restarting");
    monotonic_commit_[n.id()] = {incarnation_key(n.id()), n.commit_index()};
    return std::nullopt;
  }

  /// Committed entries never change: whenever any node considers index i committed, the entry it
  /// holds there is the one every other node committed there. Also records each committed entry
  /// with the lowest term at which it was known committed (for leader completeness).
  template <ObservedNode N>
  [[nodiscard]] std::optional<Violation> check_committed_stable(const N& n) {
    LogIndex& seen = commit_seen_[n.id()];
    const LogIndex commit = n.commit_index();
    for (LogIndex i = std::max(seen + 1, n.first_index()); i <= commit; ++i) {
      const Entry* e = n.entry_at(i);
      if (e == nullptr) continue;
      const std::uint64_t fp = fingerprint(*e);
      auto it = committed_.find(i);
      if (it == committed_.end()) {
        committed_.emplace(i, CommitRecord{e->term, fp, n.term(), n.id()});
        committed_order_.push_back(i);
        continue;
      }
      CommitRecord& rec = it->second;
      if (rec.term != e->term || rec.fingerprint != fp)
        return violation("committed entries stable",
                         "index " + str(i) + " was committed by node " + str(rec.node) +
                             " with term " + str(rec.term) + " but node " + str(n.id()) +
                             " committed a different entry (term " + str(e->term) + ") there");
      if (n.term() < rec.known_in_term) {
        rec.known_in_term = n.term();
        // An earlier "known committed" term widens the set of leaders that must hold it.
        committed_order_.push_back(i);
      }
    }
    seen = std::max(seen, commit);
    return std::nullopt;
  }

  /// Leader completeness: an entry known committed in term T is in the log of every leader of
  /// every term after T. Each leader (node, term) is checked against every committed entry once:
  /// leaders never remove entries from their own log while they lead.
  template <ObservedNode N>
  [[nodiscard]] std::optional<Violation> check_leader_completeness(const N& n) {
    if (n.role() != raft::Role::leader) return std::nullopt;
    LeaderCursor& cur = leader_cursor_[n.id()];
    if (cur.term != n.term()) cur = {n.term(), 0};
    for (; cur.next < committed_order_.size(); ++cur.next) {
      const LogIndex i = committed_order_[cur.next];
      const CommitRecord& rec = committed_.at(i);
      if (rec.known_in_term >= n.term()) continue;
      if (i < n.first_index()) continue;  // compacted into the leader's snapshot
      auto t = n.term_at(i);
      if (!t || t.value() != rec.term)
        return violation(
            "leader completeness",
            "entry (index " + str(i) + ", term " + str(rec.term) + ") was committed by term " +
                str(rec.known_in_term) + " but leader " + str(n.id()) + " of term " +
                str(n.term()) +
                (t ? " holds term " + str(t.value()) + " there" : " does not hold it"));
    }
    return std::nullopt;
  }

  /// State machine safety: no two nodes apply different entries at one index; and each node
  /// applies indices in order without gaps (per incarnation; a snapshot restore moves the cursor).
  [[nodiscard]] std::optional<Violation> check_applied(NodeId node, const Entry& e) {
    auto cursor = applied_upto_.find(node);
    if (cursor != applied_upto_.end() && e.index != cursor->second + 1)
      return violation("state machine safety", "node " + str(node) + " applied index " +
                                                   str(e.index) + " right after index " +
                                                   str(cursor->second));
    applied_upto_[node] = e.index;
    const std::uint64_t fp = fingerprint(e);
    auto [it, inserted] = applied_.emplace(e.index, AppliedRecord{e.term, fp, node});
    if (!inserted && (it->second.term != e.term || it->second.fingerprint != fp))
      return violation("state machine safety",
                       "nodes " + str(it->second.node) + " and " + str(node) +
                           " applied different entries at index " + str(e.index) + " (terms " +
                           str(it->second.term) + " and " + str(e.term) + ")");
    return std::nullopt;
  }

  /// The leader recorded for `term`, if any (for traces and liveness checks).
  [[nodiscard]] std::optional<NodeId> leader_of(Term term) const {
    auto it = leaders_.find(term);
    if (it == leaders_.end()) return std::nullopt;
    return it->second;
  }
  /// The highest index known committed anywhere.
  [[nodiscard]] LogIndex max_committed() const {
    return committed_.empty() ? 0 : committed_.rbegin()->first;
  }
  /// How many distinct indices some node applied.
  [[nodiscard]] std::size_t applied_count() const noexcept { return applied_.size(); }

 private:
  struct LogRecord {
    std::uint64_t fingerprint = 0;
    std::optional<Term> prev_term;  // unknown when the first holder had compacted index - 1
    NodeId node = no_node;
  };
  struct CommitRecord {
    Term term = 0;
    std::uint64_t fingerprint = 0;
    Term known_in_term = 0;
    NodeId node = no_node;
  };
  struct AppliedRecord {
    Term term = 0;
    std::uint64_t fingerprint = 0;
    NodeId node = no_node;
  };
  struct LeaderCursor {
    Term term = 0;
    std::size_t next = 0;
  };
  struct CommitWatermark {
    std::uint64_t incarnation_key = 0;
    LogIndex commit = 0;
  };

  static std::string str(std::uint64_t v) { return std::to_string(v); }
  static std::optional<Violation> violation(std::string name, std::string detail) {
    return Violation{std::move(name), std::move(detail)};
  }
  // Which incarnation of `node` is running: the number of on_restart calls so far.
  std::uint64_t incarnation_key(NodeId node) { return restarts_[node]; }

  std::map<Term, NodeId> leaders_;
  std::map<NodeId, Term> terms_;
  std::map<std::pair<NodeId, Term>, NodeId> votes_;
  std::map<std::pair<LogIndex, Term>, LogRecord> log_;
  std::map<NodeId, CommitWatermark> monotonic_commit_;
  std::map<NodeId, LogIndex> commit_seen_;
  std::map<LogIndex, CommitRecord> committed_;
  std::vector<LogIndex> committed_order_;
  std::map<NodeId, LeaderCursor> leader_cursor_;
  std::map<NodeId, LogIndex> applied_upto_;
  std::map<LogIndex, AppliedRecord> applied_;
  std::map<NodeId, std::uint64_t> restarts_;
};

}  // namespace dengine::sim
