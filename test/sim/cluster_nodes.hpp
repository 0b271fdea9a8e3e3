#pragma once
/// Cluster members: node lifecycle (start, crash, stop), message delivery, and the handling of
/// each node's Ready in the order raft/ready.hpp prescribes. Part of Cluster (cluster.hpp).

#include <cstdint>
#include <limits>
#include <string>
#include <utility>

#include "cluster.hpp"

namespace dengine::sim {

inline RaftConfig Cluster::config_for(const SimNode& n) const {
  RaftConfig c;
  c.id = n.id;
  c.election_ticks = 10;
  c.heartbeat_ticks = 2;
  c.pre_vote = pre_vote_;
  // Injected bug: every other node keeps no promise to the leaders it acknowledges.
  c.check_quorum = check_quorum_ && !(opt_.inject == Injection::no_stickiness && n.id % 2 == 0);
  c.lease_reads = c.check_quorum;  // lease reads need check-quorum (config validation)
  // Small windows so that batching limits and flow control are exercised.
  c.max_append_entries = 16;
  c.max_inflight_messages = 8;
  // Each incarnation gets its own election-timeout stream, derived from the run's seed.
  c.random_seed = mix_seed(opt_.seed, n.id * 1'000'003ULL + n.incarnation) | 1;
  return c;
}

inline void Cluster::fail(std::string invariant, std::string detail) {
  if (violation_) return;
  trace_.note(clock_.now(), TraceKind::violation, no_node, invariant + ": " + detail);
  violation_ = Violation{std::move(invariant), std::move(detail)};
}

inline void Cluster::start_node(SimNode& n) {
  ++n.incarnation;
  auto recovered = n.engine.load();
  if (!recovered) return fail("harness", "load failed on node " + std::to_string(n.id));
  const LogIndex first = n.engine.first_index();
  const LogIndex last = n.engine.last_index();
  std::vector<Entry> entries;
  if (last >= first) {
    auto got = n.engine.entries(first, last + 1, std::numeric_limits<std::size_t>::max());
    if (!got) return fail("harness", "reading the log failed: " + got.error().message());
    entries = std::move(got).value();
  }
  // The state machine is volatile: it restarts from the durable image and the log replays the
  // rest (the core hands out committed entries after `applied` again).
  n.sm = KvMachine{};
  if (n.durable_image) {
    StringSnapshotSource src(n.durable_image->data);
    if (auto r = n.sm.restore(src); !r) return fail("harness", "restore: " + r.error().message());
  }
  const SnapshotMeta meta = recovered.value().snapshot;
  if (n.sm.applied_index() != meta.index)
    return fail("harness", "node " + std::to_string(n.id) + ": image at " +
                               std::to_string(n.sm.applied_index()) + ", compaction point at " +
                               std::to_string(meta.index));
  raft::CoreState state{recovered.value().hard_state, meta, std::move(entries),
                        n.sm.applied_index(), n.durable_image};
  auto core = raft::Core::create(config_for(n), std::move(state));
  if (!core)
    return fail("restart", "node " + std::to_string(n.id) +
                               " cannot start from its durable state: " + core.error().message());
  n.core.emplace(std::move(core).value());
  n.lease_clock.emplace(nominal_tick, n.core->config().effective_lease_ticks(), local_now(n));
  n.status = SimNode::Status::up;
  n.pending_image.reset();
  n.persist_queue.clear();
  n.sync_scheduled = false;
  n.last_role = raft::Role::follower;
  n.last_leader = no_node;
  n.last_commit = n.core->commit_index();
  n.last_snapshot = meta.index;
  n.reads.clear();
  n.waiting_writes.clear();
  inv_.on_restart(n.id);
  inv_.on_snapshot_restored(n.id, n.sm.applied_index());
  const HardState hs = n.core->hard_state();
  trace_.note(clock_.now(), TraceKind::restart, n.id,
              "incarnation " + std::to_string(n.incarnation) + " term " + std::to_string(hs.term) +
                  " vote " + std::to_string(hs.vote) + " commit " + std::to_string(hs.commit) +
                  " log [" + std::to_string(first) + ", " + std::to_string(last) + "]");
  schedule(rng_.below(n.tick_period), Event{Event::Kind::tick, n.id, n.incarnation});
  if (auto v = inv_.check_log_matching(*n.core)) return fail(v->invariant, v->detail);
  touched(n);
}

inline void Cluster::crash_node(SimNode& n, std::string why) {
  if (n.status != SimNode::Status::up) return;
  const bool lost = n.engine.has_unsynced();
  trace_.note(clock_.now(), TraceKind::crash, n.id,
              why + (lost ? " (unsynced data lost, durable last index " +
                                std::to_string(n.engine.durable_last_index()) + ")"
                          : ""));
  ++stats_.crashes;
  n.core.reset();
  n.engine.crash();
  n.pending_image.reset();
  n.persist_queue.clear();
  n.sync_scheduled = false;
  n.reads.clear();
  n.waiting_writes.clear();
  n.paused_until = 0;
  n.held_messages.clear();
  n.tick_held = false;
  n.sync_held = false;
  n.heartbeats_in.clear();
  n.status = SimNode::Status::down;
}

inline void Cluster::stop_node(SimNode& n) {
  if (n.status == SimNode::Status::up) crash_node(n, "stopped: no longer a member");
  n.status = SimNode::Status::removed;
}

inline void Cluster::deliver(Arrival<raft::Message>& a) {
  auto& env = a.envelope;
  TraceEvent ev;
  ev.time = clock_.now();
  describe_message(ev, env.message);
  if (!a.deliver) {
    ev.kind = TraceKind::drop;
    ev.note = "link cut while in flight";
    trace_.add(std::move(ev));
    return;
  }
  SimNode& n = node(env.to);
  if (n.status != SimNode::Status::up) {
    ev.kind = TraceKind::drop;
    ev.note = "recipient down";
    trace_.add(std::move(ev));
    return;
  }
  if (paused(n) || !n.held_messages.empty()) {
    // The event loop is frozen: the message waits in its socket buffer (behind any earlier).
    n.held_messages.push_back(std::move(a));
    return;
  }
  ev.kind = TraceKind::deliver;
  if (env.duplicate) ev.note = "duplicate";
  trace_.add(std::move(ev));
  note_delivered(n, env.message);
  if (auto r = n.core->step(std::move(env.message)); !r)
    return fail("step",
                "node " + std::to_string(n.id) + " rejected a message: " + r.error().message());
  touched(n);
}

inline void Cluster::touched(SimNode& n) {
  process_ready(n);
  check_node(n);
}

inline void Cluster::check_node(SimNode& n) {
  if (violation_ || n.status != SimNode::Status::up) return;
  const raft::Core& c = *n.core;
  if (c.role() != n.last_role || c.leader() != n.last_leader) {
    // Winning an election took either an expired promise or the leader's own transfer: a
    // leader owes nothing to the one it followed.
    if (c.role() == raft::Role::leader) n.promised_to = no_node;
    trace_.note(clock_.now(), TraceKind::role, n.id,
                std::string(raft::to_string(c.role())) + " term " + std::to_string(c.term()) +
                    " leader " + std::to_string(c.leader()) + " last " +
                    std::to_string(c.last_index()));
    n.last_role = c.role();
    n.last_leader = c.leader();
  }
  if (c.commit_index() != n.last_commit) {
    trace_.note(clock_.now(), TraceKind::commit, n.id,
                std::to_string(n.last_commit) + " -> " + std::to_string(c.commit_index()) +
                    " (term " + std::to_string(c.term()) + ")");
    n.last_commit = c.commit_index();
    stats_.max_commit = std::max(stats_.max_commit, c.commit_index());
  }
  if (auto v = inv_.check_step(c)) return fail(v->invariant, v->detail);
  check_lease_overlap();
}

inline void Cluster::tick_node(SimNode& n) {
  // The time this tick began on the node's clock: every round the core sends in it leaves
  // later (what node::Driver records for its lease).
  const sim_time began = local_now(n);
  n.core->tick();
  ++n.ticks;
  n.lease_clock->on_tick(n.core->ticks(), began);
  if (n.core->has_ready()) trace_.note(clock_.now(), TraceKind::tick, n.id, "");
  touched(n);
  // Re-armed after the tick, like both runtimes' timers: a late tick is followed by a full
  // period, never by a burst of catch-up ticks.
  schedule(n.tick_period, Event{Event::Kind::tick, n.id, n.incarnation});
}

inline void Cluster::resume_node(SimNode& n) {
  trace_.note(
      clock_.now(), TraceKind::fault, n.id,
      "event loop resumes (" + std::to_string(n.held_messages.size()) + " messages waited)");
  std::deque<Arrival<raft::Message>> held = std::move(n.held_messages);
  n.held_messages.clear();
  for (Arrival<raft::Message>& a : held) {
    if (violation_ || n.status != SimNode::Status::up) return;
    deliver(a);
  }
  if (n.sync_held && !violation_ && n.status == SimNode::Status::up) {
    n.sync_held = false;
    on_sync(n);
    touched(n);
  }
  if (n.tick_held && !violation_ && n.status == SimNode::Status::up) {
    n.tick_held = false;
    tick_node(n);  // the timer expired long ago: it fires once, now
  }
}

inline void Cluster::process_ready(SimNode& n) {
  while (!violation_ && n.status == SimNode::Status::up && n.core->has_ready()) {
    raft::Ready rd = n.core->ready();
    // 1. Messages that need nothing durable go out now, in parallel with persisting.
    for (raft::Message& m : rd.messages) send_message(n, std::move(m));
    const LogIndex lo = rd.entries.empty() ? 0 : rd.entries.front().index;
    const LogIndex hi = rd.entries.empty() ? 0 : rd.entries.back().index;
    // 2-4. Persist; acknowledgements wait for the sync.
    persist_ready(n, rd);
    if (violation_) return;
    // 5. Apply committed entries, then serve reads whose index is reached.
    for (const Entry& e : rd.committed_entries) {
      apply_entry(n, e);
      if (violation_) return;
    }
    if (!rd.committed_entries.empty()) maybe_snapshot(n);
    for (const raft::ReadState& rs : rd.read_states) {
      for (ReadWait& w : n.reads)
        if (w.request == rs.id && !w.index_known) {
          w.index_known = true;
          w.index = rs.index;
        }
    }
    for (const raft::DroppedRead& dr : rd.dropped_reads) {
      for (auto it = n.reads.begin(); it != n.reads.end(); ++it) {
        if (it->request != dr.id) continue;
        respond(n.id, it->op_id, it->attempt, std::nullopt, dr.reason.leader_hint);
        n.reads.erase(it);
        break;
      }
    }
    serve_reads(n);
    if (lo != 0)
      if (auto v = inv_.check_log_matching(*n.core, lo, hi)) return fail(v->invariant, v->detail);
  }
}

inline void Cluster::send_message(SimNode& from, raft::Message m) {
  note_sent(from, m);
  TraceEvent ev;
  ev.time = clock_.now();
  describe_message(ev, m);
  const NodeId to = m.to;
  sim_duration extra = 0;
  if (opt_.mix.election_delay_max > 0 &&
      (m.type == raft::MessageType::vote || m.type == raft::MessageType::pre_vote ||
       m.type == raft::MessageType::vote_response ||
       m.type == raft::MessageType::pre_vote_response))
    extra = lease_rng_.between(0, opt_.mix.election_delay_max);
  const SendReport rep = net_.send(from.id, to, std::move(m), extra);
  if (rep.fate == SendFate::queued) {
    ev.kind = TraceKind::send;
    if (rep.copies == 2) ev.note = "duplicated";
  } else {
    ev.kind = TraceKind::drop;
    ev.note = rep.fate == SendFate::dropped_blocked ? "partitioned" : "lost";
  }
  trace_.add(std::move(ev));
}

inline void Cluster::persist_ready(SimNode& n, raft::Ready& rd) {
  PersistBatch b;
  if (rd.snapshot) {
    const SnapshotMeta& meta = rd.snapshot->meta;
    if (auto r = n.engine.reset(meta); !r) return fail("harness", "reset: " + r.error().message());
    StringSnapshotSource src(rd.snapshot->data);
    if (auto r = n.sm.restore(src); !r) return fail("harness", "restore: " + r.error().message());
    if (n.sm.applied_index() != meta.index)
      return fail("harness", "snapshot image does not match its meta");
    n.pending_image = rd.snapshot;
    n.last_snapshot = meta.index;
    b.snapshot_index = meta.index;
    inv_.on_snapshot_restored(n.id, meta.index);
    ++stats_.snapshots_installed;
    trace_.note(clock_.now(), TraceKind::snapshot, n.id,
                "installing snapshot at " + std::to_string(meta.index) + " term " +
                    std::to_string(meta.term));
  }
  if (!rd.entries.empty()) {
    if (auto r = n.engine.append(rd.entries); !r)
      return fail("storage", "node " + std::to_string(n.id) + ": " + r.error().message());
    b.last_entry = std::make_pair(rd.entries.back().index, rd.entries.back().term);
  }
  const bool early_acks = opt_.inject == Injection::ack_before_persist;
  if (rd.hard_state) {
    if (early_acks) {
      b.deferred_hard_state = *rd.hard_state;  // injected bug: the vote is not durable yet
    } else if (auto r = n.engine.save_hard_state(*rd.hard_state); !r) {
      return fail("storage", r.error().message());
    }
  }
  const bool needs_sync = b.last_entry || b.snapshot_index || b.deferred_hard_state;
  if (early_acks) {
    for (raft::Message& m : rd.messages_after_persist) send_message(n, std::move(m));
  } else {
    b.after = std::move(rd.messages_after_persist);
  }
  if (!needs_sync && n.persist_queue.empty()) {
    for (raft::Message& m : b.after) send_message(n, std::move(m));
    return;
  }
  // Acknowledgements leave in order: a later one may vouch for an earlier batch's entries.
  n.persist_queue.push_back(std::move(b));
  if (!n.sync_scheduled) {
    n.sync_scheduled = true;
    schedule(rng_.between(0, opt_.mix.sync_delay_max),
             Event{Event::Kind::sync, n.id, n.incarnation});
  }
}

inline void Cluster::on_sync(SimNode& n) {
  n.sync_scheduled = false;
  if (auto r = n.engine.sync(); !r) return fail("storage", r.error().message());
  if (n.pending_image) n.durable_image = std::move(n.pending_image);
  n.pending_image.reset();
  std::deque<PersistBatch> done = std::move(n.persist_queue);
  n.persist_queue.clear();
  LogIndex last = 0;
  for (PersistBatch& b : done) {
    if (b.deferred_hard_state) (void)n.engine.save_hard_state(*b.deferred_hard_state);
    if (b.snapshot_index) n.core->on_snapshot_persisted(*b.snapshot_index);
    if (b.last_entry) {
      n.core->on_persisted(b.last_entry->first, b.last_entry->second);
      last = b.last_entry->first;
    }
    for (raft::Message& m : b.after) send_message(n, std::move(m));
  }
  if (trace_.verbose() || last != 0)
    trace_.note(clock_.now(), TraceKind::sync, n.id,
                "durable through " + std::to_string(n.engine.durable_last_index()));
}

inline void Cluster::apply_entry(SimNode& n, const Entry& e) {
  if (auto v = inv_.check_applied(n.id, e)) return fail(v->invariant, v->detail);
  if (e.index != n.sm.applied_index() + 1)
    return fail("harness", "node " + std::to_string(n.id) + " handed entry " +
                               std::to_string(e.index) + " with the state machine at " +
                               std::to_string(n.sm.applied_index()));
  const ApplyResult r = n.sm.apply_one(e);
  if (r.op_id != 0) {
    first_applied_.try_emplace(r.op_id, clock_.now(), r.ok);
    if (auto it = n.waiting_writes.find(r.op_id); it != n.waiting_writes.end()) {
      const std::uint64_t attempt = it->second;
      n.waiting_writes.erase(it);
      respond(n.id, r.op_id, attempt, lin::RegisterOutput{r.ok, {}}, n.id);
    }
  } else if (e.type == EntryType::normal && probe_index_ == 0) {
    if (auto c = decode(e.data); c && c->key == probe_key) {
      probe_index_ = e.index;
      trace_.note(clock_.now(), TraceKind::fault, n.id,
                  "liveness probe " + c->value + " committed at index " + std::to_string(e.index));
    }
  }
}

inline void Cluster::maybe_snapshot(SimNode& n) {
  const LogIndex idx = n.sm.applied_index();
  if (idx < n.last_snapshot + n.snapshot_every) return;
  auto t = n.core->term_at(idx);
  if (!t) return;
  Snapshot s;
  s.meta = SnapshotMeta{idx, t.value(), n.core->membership_at(idx)};
  s.data = n.sm.image_text();
  auto snap = std::make_shared<const Snapshot>(std::move(s));
  // The engine makes a pending reset durable before compacting; so does the image.
  if (n.pending_image) n.durable_image = std::move(n.pending_image);
  n.pending_image.reset();
  if (auto r = n.engine.compact(snap->meta); !r)
    return fail("harness",
                "engine compact on node " + std::to_string(n.id) + ": " + r.error().message());
  n.durable_image = snap;
  if (auto r = n.core->compact(snap); !r)
    return fail("compact", "node " + std::to_string(n.id) + ": " + r.error().message());
  n.last_snapshot = idx;
  trace_.note(clock_.now(), TraceKind::snapshot, n.id,
              "compacted through " + std::to_string(idx) + " term " + std::to_string(t.value()));
}

}  // namespace dengine::sim
