#pragma once
/// Cluster members: node lifecycle (start, crash, stop), the checks after every event, and the
/// network tap that traces messages and records promises. Part of Cluster (cluster.hpp).
///
/// Nothing here handles a Ready: the nodes are node::Node; the harness only opens, halts and
/// observes them.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>

#include "checks/member_addresses.hpp"
#include "cluster.hpp"

namespace dengine::sim {

inline node::NodeConfig Cluster::config_for(const SimNode& n) const {
  node::NodeConfig c;
  c.raft.id = n.id;
  c.raft.election_ticks = 10;
  c.raft.heartbeat_ticks = 2;
  c.raft.pre_vote = pre_vote_;
  // Injected bug: every other node keeps no promise to the leaders it acknowledges (a
  // configuration mistake, not code: check-quorum is what makes a follower's promise).
  c.raft.check_quorum =
      check_quorum_ && !(opt_.inject == Injection::no_stickiness && n.id % 2 == 0);
  c.raft.lease_reads = c.raft.check_quorum;  // lease reads need check-quorum (config validation)
  // Small windows so that batching limits and flow control are exercised.
  c.raft.max_append_entries = 16;
  c.raft.max_inflight_messages = 8;
  // Each incarnation gets its own election-timeout stream, derived from the run's seed.
  c.raft.random_seed = mix_seed(opt_.seed, n.id * 1'000'003ULL + n.incarnation) | 1;
  // Every node, founding or joining, starts from the founding configuration; a joiner learns
  // the rest from the log or a snapshot.
  c.initial_members = founding_.voters;
  for (NodeId id : founding_.voters) c.initial_addresses[id] = checks::sim_peer_address(id);
  c.tick_period = std::chrono::microseconds(nominal_tick);  // on the node's own clock
  c.request_timeout = std::chrono::milliseconds(300);
  // About `snapshot_every` applied register commands between snapshots.
  c.snapshot_threshold_bytes = std::size_t{n.snapshot_every} * 20;
  return c;
}

inline void Cluster::fail(std::string invariant, std::string detail) {
  if (violation_) return;
  trace_.note(executor_.now(), TraceKind::violation, no_node, invariant + ": " + detail);
  violation_ = Violation{std::move(invariant), std::move(detail)};
}

inline void Cluster::start_node(SimNode& n) {
  ++n.incarnation;
  // The state machine is volatile: the node restores it from the snapshot image and replays
  // the log (recovery.hpp).
  n.sm = std::make_unique<KvMachine>();
  inv_.on_restart(n.id, n.engine.hard_state());
  n.sm->on_restore = [this, &n](LogIndex index) {
    inv_.on_snapshot_restored(n.id, index);
    if (!n.node) return;  // recovery, inside open()
    ++stats_.snapshots_installed;
    trace_.note(executor_.now(), TraceKind::snapshot, n.id,
                "installed a snapshot at " + std::to_string(index));
  };
  n.sm->on_apply = [this, &n](const Entry& e, const ApplyResult& r) { on_applied(n, e, r); };
  // A new incarnation's disk is slower or faster than the last one's; in a quarter of them it
  // is memory that never blocks, and the node persists inline on its event loop, as the
  // threaded runtime does with the in-memory backend (node/pipeline.hpp).
  node::NodeConfig config = config_for(n);
  config.sim_sync_latency = std::chrono::microseconds(
      rng_.chance(0.25) ? 0 : rng_.between(1, std::max<sim_duration>(1, opt_.mix.sync_delay_max)));
  n.config = config;  // what the per-message checks read (lease_checks.hpp)
  auto opened =
      RegisterNode::open(std::move(config), n.engine, *n.sm, n.snapshots, SimTransport(net_, n.id),
                         SimClock{&executor_, &n.local_time}, node::NodeCallbacks{});
  if (!opened)
    return fail("restart", "node " + std::to_string(n.id) +
                               " cannot start from its durable state: " + opened.error().message());
  n.node = std::move(opened).value();
  n.status = SimNode::Status::up;
  n.paused_until = 0;
  n.core_ticks = 0;
  n.checked_tail = {0, 0};
  const raft::Core& c = n.core();
  n.last_role = c.role();
  n.last_leader = c.leader();
  n.last_commit = c.commit_index();
  trace_.note(executor_.now(), TraceKind::restart, n.id,
              "incarnation " + std::to_string(n.incarnation) + " term " + std::to_string(c.term()) +
                  " vote " + std::to_string(c.hard_state().vote) + " commit " +
                  std::to_string(c.commit_index()) + " log [" + std::to_string(c.first_index()) +
                  ", " + std::to_string(c.last_index()) + "] applied " +
                  std::to_string(n.sm->applied_index()));
  if (auto v = inv_.check_log_matching(c)) return fail(v->invariant, v->detail);
}

inline void Cluster::crash_node(SimNode& n, const std::string& why) {
  if (n.status != SimNode::Status::up) return;
  const bool lost = n.engine.has_unsynced();
  trace_.note(executor_.now(), TraceKind::crash, n.id,
              why + (lost ? " (unsynced data lost, durable last index " +
                                std::to_string(n.engine.durable_last_index()) + ")"
                          : ""));
  ++stats_.crashes;
  sync_ticks(n);
  if (auto r = n.node->halt(); !r) return fail("harness", "halt: " + r.error().message());
  n.node.reset();
  n.engine.crash();
  n.sm.reset();
  n.paused_until = 0;
  promises_.on_crash(n.id);
  n.status = SimNode::Status::down;
}

inline void Cluster::stop_node(SimNode& n) {
  if (n.status == SimNode::Status::up) crash_node(n, "stopped: no longer a member");
  n.status = SimNode::Status::removed;
}

inline void Cluster::sync_ticks(SimNode& n) {
  if (n.status != SimNode::Status::up) return;
  const std::uint64_t now = n.core().ticks();
  n.ticks += now - n.core_ticks;
  n.core_ticks = now;
}

inline void Cluster::on_applied(SimNode& n, const Entry& e, const ApplyResult& r) {
  if (auto v = inv_.check_applied(n.id, e)) return fail(v->invariant, v->detail);
  if (r.op_id != 0) {
    first_applied_.try_emplace(r.op_id, executor_.now(), r.ok);
  } else if (e.type == EntryType::normal && probe_index_ == 0) {
    if (auto c = decode(e.data); c && c->key == probe_key) {
      probe_index_ = e.index;
      trace_.note(executor_.now(), TraceKind::fault, n.id,
                  "liveness probe " + c->value + " committed at index " + std::to_string(e.index));
    }
  }
}

inline void Cluster::after_event() {
  for (auto& n : nodes_) {
    if (violation_) return;
    if (n->status != SimNode::Status::up) continue;
    sync_ticks(*n);
    check_node(*n);
  }
  check_lease_overlap();
  // A full log-matching sweep now and then, beyond the check of each log's tail.
  if (executor_.executed() % 4096 == 0) {
    for (auto& n : nodes_) {
      if (violation_) return;
      if (n->status == SimNode::Status::up)
        if (auto v = inv_.check_log_matching(n->core())) fail(v->invariant, v->detail);
    }
  }
}

inline void Cluster::check_node(SimNode& n) {
  const raft::Core& c = n.core();
  if (c.role() != n.last_role || c.leader() != n.last_leader) {
    if (c.role() == raft::Role::leader) promises_.on_leading(n.id);
    trace_.note(executor_.now(), TraceKind::role, n.id,
                std::string(raft::to_string(c.role())) + " term " + std::to_string(c.term()) +
                    " leader " + std::to_string(c.leader()) + " last " +
                    std::to_string(c.last_index()));
    n.last_role = c.role();
    n.last_leader = c.leader();
  }
  if (c.commit_index() != n.last_commit) {
    trace_.note(executor_.now(), TraceKind::commit, n.id,
                std::to_string(n.last_commit) + " -> " + std::to_string(c.commit_index()) +
                    " (term " + std::to_string(c.term()) + ")");
    n.last_commit = c.commit_index();
    stats_.max_commit = std::max(stats_.max_commit, c.commit_index());
  }
  if (auto v = inv_.check_step(c)) return fail(v->invariant, v->detail);
  if (auto v = checks::check_member_addresses(n.id, c.membership()))
    return fail(v->invariant, v->detail);
  // One event steps at most one message into a node (an append of at most
  // max_append_entries): the tail covers what it can have changed. A log whose last entry
  // (index and term) did not change was not appended to or truncated.
  const LogIndex last = c.last_index();
  const result<Term> last_term = c.term_at(last);
  const std::pair<LogIndex, Term> tail{last, last_term ? last_term.value() : Term{0}};
  if (tail == n.checked_tail) return;
  n.checked_tail = tail;
  const LogIndex first = std::max(c.first_index(), last > 32 ? last - 32 : LogIndex{1});
  if (last >= first)
    if (auto v = inv_.check_log_matching(c, first, last)) return fail(v->invariant, v->detail);
}

inline sim_duration Cluster::before_send(const raft::Message& m) {
  SimNode& from = node(m.from);
  sync_ticks(from);
  note_sent(from, m);
  sending_ = TraceEvent{};
  sending_.time = executor_.now();
  describe_message(sending_, m);
  if (opt_.mix.election_delay_max > 0 &&
      (m.type == raft::MessageType::vote || m.type == raft::MessageType::pre_vote ||
       m.type == raft::MessageType::vote_response ||
       m.type == raft::MessageType::pre_vote_response))
    return lease_rng_.between(0, opt_.mix.election_delay_max);
  return 0;
}

inline void Cluster::after_send(const SendReport& rep) {
  if (rep.fate == SendFate::queued) {
    sending_.kind = TraceKind::send;
    if (rep.copies == 2) sending_.note = "duplicated";
    if (rep.damaged > 0)
      sending_.note += std::string(sending_.note.empty() ? "" : ", ") +
                       (rep.damaged == 2 ? "both copies damaged" : "a copy damaged");
  } else {
    sending_.kind = TraceKind::drop;
    sending_.note = rep.fate == SendFate::dropped_blocked ? "partitioned" : "lost";
  }
  trace_.add(std::move(sending_));
}

inline void Cluster::arrived(const raft::Message& m, std::string_view dropped) {
  TraceEvent ev;
  ev.time = executor_.now();
  describe_message(ev, m);
  if (!dropped.empty()) {
    ev.kind = TraceKind::drop;
    ev.note = dropped;
    trace_.add(std::move(ev));
    return;
  }
  ev.kind = TraceKind::deliver;
  SimNode& n = node(m.to);
  if (paused(n)) ev.note = "waits: event loop frozen";
  trace_.add(std::move(ev));
  sync_ticks(n);
  note_delivered(n, m);
}

}  // namespace dengine::sim
