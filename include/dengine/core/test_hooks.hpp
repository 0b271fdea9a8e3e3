#pragma once
/// Deliberate bugs, for proving that the simulator's checks can fail (`dengine-sim --inject`).
/// They exist only in test builds: with DENGINE_TEST_HOOKS defined (the simulator's compile
/// flags), the code at each hook reads this process-wide switch; without it — every production
/// build — the hooks are not compiled at all (`#if defined(DENGINE_TEST_HOOKS)` around each).
/// Single-threaded use only: the simulator sets them before a run.

#if defined(DENGINE_TEST_HOOKS)

namespace dengine::test_hooks {

/// Which bugs are on. Each names the code it breaks and the check that must catch it.
struct Switches {
  /// raft/core_election.hpp: a voter that already voted for another candidate in this term
  /// grants later vote requests of the term too (its recorded vote stays the first): election
  /// safety.
  bool vote_twice = false;
  /// raft/core.hpp (Core::send): a leader tells each follower that everything it sends it (or
  /// the follower holds) is committed: a safety invariant or linearizability.
  bool commit_uncommitted = false;
  /// node/driver.hpp (Driver::read): a node that believes it leads serves every read from its
  /// state machine at once, without confirming its leadership (ReadIndex) or a lease:
  /// linearizability (a deposed leader answers stale values).
  bool read_without_confirmation = false;
  /// node/driver.hpp (Driver::handle): acknowledgements (append and vote responses) leave with
  /// the Ready's other messages, before the log writer made what they promise durable: a crash
  /// then loses acknowledged entries or votes (safety invariants, linearizability).
  bool ack_before_persist = false;
  /// node/driver.hpp (Driver::lease_deadline): the lease is judged by the core's tick count
  /// alone, not anchored to the clock, so a frozen event loop stretches it: lease overlap.
  bool tick_lease = false;
  /// node/driver.hpp (Driver::read): every node, follower or leader, serves linearizable and
  /// lease reads from its own state machine at once (stale reads): linearizability (KV runs).
  bool stale_reads = false;
  /// statemachines/kv/watch_hub.hpp (WatchHub::deliver_to_watchers): watchers lose the events of
  /// some revisions (mod_revision % 37 == 5): the watch check (KV runs).
  bool skip_watch_event = false;
  /// statemachines/kv/lessor.hpp (Lessor::keep_alive): one keep-alive in 20 answers the full TTL
  /// but leaves the lease expiring now, so the leader revokes a lease it has just kept alive:
  /// the lease expiry check (KV runs).
  bool early_revoke = false;
  /// raft/core_forwarding.hpp (Core::handle_propose): the leader appends every copy of a
  /// forwarded proposal, so a message the network duplicated is applied twice: the KV history
  /// checks (KV runs).
  bool forward_without_dedup = false;
  /// engine/kv_replica.hpp (KvReplica::async_keep_alive): a follower answers a keep-alive as if
  /// the leader's lessor had refreshed the lease, without asking it: the lease expiry check.
  bool keep_alive_unforwarded = false;
};

/// The process-wide switches.
inline Switches& switches() noexcept {
  static Switches s;
  return s;
}

}  // namespace dengine::test_hooks

#endif
