#pragma once
/// KvCluster: replica lifecycle (open, crash, restart), the fault scheduler, and the watchers the
/// harness keeps on every replica. Part of KvCluster (kv_cluster.hpp).

#include <algorithm>
#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "checks/member_addresses.hpp"
#include "kv_cluster.hpp"
#include "net_faults.hpp"

namespace dengine::sim::kvsim {

inline KvCluster::KvCluster(const KvSimOptions& options)
    : opt_(options),
      net_(executor_, mix_seed(options.seed, 1)),
      fault_rng_(mix_seed(options.seed, 2)),
      trace_(400, options.verbose) {
  for (NodeId id = 1; id <= opt_.nodes; ++id) {
    auto m = std::make_unique<Member>();
    m->id = id;
    members_.push_back(std::move(m));
    config_.voters.push_back(id);
  }
  for (std::size_t i = 0; i < opt_.clients; ++i) {
    auto c = std::make_unique<ClientState>();
    c->id = i + 1;
    c->rng = Rng(mix_seed(opt_.seed, 100 + i));
    clients_.push_back(std::move(c));
  }
  // Only to hear of codec failures: this harness traces its own events, not the messages.
  NetworkTap tap;
  // The first one only: a broken codec fails most frames, and this harness runs on after a
  // violation.
  tap.codec_failure = [this](const std::string& what) {
    if (net_.stats().codec_failures == 1) violation("wire codec", what);
  };
  net_.set_tap(std::move(tap));
  // Members are reached at the addresses their configuration gives (checks/member_addresses.hpp).
  net_.require_addresses(true);
}

inline KvCluster::~KvCluster() {  // NOLINT(bugprone-exception-escape): see the declaration
  stopping_ = true;
  for (auto& m : members_) {
    m->watch.reset();
    if (m->replica) (void)m->replica->stop();
    m->replica.reset();
  }
}

inline engine::EngineConfig KvCluster::config_for(const Member& m) {
  std::vector<NodeId> founders;
  for (NodeId id = 1; id <= opt_.nodes; ++id) founders.push_back(id);
  engine::EngineConfig c = engine::EngineConfig::cluster_member({}, m.id, founders);
  for (NodeId id : founders) c.node.initial_addresses[id] = checks::sim_peer_address(id);
  c.node.raft.election_ticks = 10;
  c.node.raft.heartbeat_ticks = 2;
  c.node.raft.random_seed = mix_seed(opt_.seed, m.id * 1000 + m.incarnation) | 1;
  c.node.tick_period = std::chrono::milliseconds(5);
  c.node.request_timeout = std::chrono::seconds(1);
  c.node.persistence = opt_.persistence;
  c.node.snapshot_threshold_bytes = opt_.snapshot_threshold_bytes;
  c.node.sim_sync_latency = opt_.sync_latency;
  c.node.sim_apply_latency = opt_.apply_latency;
  c.kv.watch.max_history_events = opt_.watch_history;
  c.kv.watch.max_pending_events = opt_.watch_pending;
  // Short leases and retries so that a run of a few virtual seconds sees many expire. The
  // extension on promotion (etcd passes its election timeout) stays well above the election
  // timeout (50-100 ms), as etcd's rule needs.
  c.lessor.min_ttl = std::chrono::seconds(1);
  c.lessor.promote_extend = std::chrono::milliseconds(500);
  c.lessor.revoke_retry = std::chrono::milliseconds(700);
  c.housekeeping_interval = std::chrono::milliseconds(50);
  c.callbacks.on_leader_change = [this, id = m.id](const node::LeaderChange& change) {
    on_role(id, change);
  };
  c.callbacks.on_membership_change = [this, id = m.id](const node::MembershipChange& change) {
    on_membership(id, change);
  };
  return c;
}

inline void KvCluster::open(Member& m) {
  ++m.incarnation;
  m.disk.on_revoke = [this, id = m.id](LogIndex index, Term term, kv::LeaseId lease) {
    Member& mm = member(id);
    bool by_leader = false;
    if (mm.replica) {
      const node::NodeStatus s = mm.replica->node().status();
      by_leader = s.role == raft::Role::leader && s.term == term;
    }
    revokes_.push_back(RevokeAppend{id, index, term, lease, now(), by_leader});
    if (by_leader)
      note(TraceKind::commit, id,
           "revoke of lease " + std::to_string(lease) + " appended at " + std::to_string(index) +
               " (term " + std::to_string(term) + ")");
  };
  auto opened = Replica::open(config_for(m), m.disk, *m.store, m.snapshots,
                              sim::SimTransport(net_, m.id), sim::SimClock{&executor_});
  if (!opened) {
    violation("restart",
              "n" + std::to_string(m.id) + " could not open: " + opened.error().message());
    return;
  }
  m.replica = std::move(opened).value();
  note(TraceKind::restart, m.id,
       "replica opened (incarnation " + std::to_string(m.incarnation) + ", applied " +
           std::to_string(m.replica->machine().applied_index()) + ", revision " +
           std::to_string(m.replica->machine().current_revision()) + ")");
  start_watch(m, 0);
}

inline void KvCluster::take_down(Member& m, Down how) {
  if (!m.replica) return;
  auto r = how == Down::stop ? m.replica->stop() : m.replica->halt();
  if (!r)
    violation("restart", "n" + std::to_string(m.id) + " stop/halt failed: " + r.error().message());
  // Everything the replica applied was published to its watchers before it went down.
  drain_watch(m, false);
  end_watch(m, m.replica->machine().watch_hub().current_revision());
  m.watch.reset();
  result_.forwarded += m.replica->node().node_metrics().proposals_forwarded.value();
  m.replica.reset();
  switch (how) {
    case Down::stop: ++result_.stops; break;
    case Down::crash: ++result_.crashes; break;
    case Down::power_loss:
      // The machine lost power: unsynced log data is gone, and so is the KV store (the memory
      // KvStore does not model its own durability: recovery restores the snapshot image and
      // replays the log, node/recovery.hpp).
      m.disk.crash();
      m.store = std::make_unique<memory::KvStore>();
      ++result_.crashes;
      ++result_.power_losses;
      break;
  }
  note(TraceKind::crash, m.id,
       how == Down::stop    ? "graceful stop"
       : how == Down::crash ? "process crash"
                            : "power loss");
}

inline std::size_t KvCluster::down_count() const {
  std::size_t n = 0;
  for (const auto& m : members_) n += m->up() || m->removed ? 0 : 1;
  return n;
}

inline Member* KvCluster::leader() {
  Member* best = nullptr;
  Term best_term = 0;
  for (auto& m : members_) {
    if (!m->up()) continue;
    const node::NodeStatus s = m->replica->node().status();
    if (s.role == raft::Role::leader && (best == nullptr || s.term > best_term)) {
      best = m.get();
      best_term = s.term;
    }
  }
  return best;
}

inline void KvCluster::on_role(NodeId id, const node::LeaderChange& change) {
  const bool leading = change.role == raft::Role::leader;
  roles_.push_back(RoleChange{now(), id, change.term, leading});
  note(TraceKind::role, id,
       std::string(raft::to_string(change.role)) + " term " + std::to_string(change.term) +
           " leader n" + std::to_string(change.leader));
}

// ---- faults ----

inline void KvCluster::fault_event() {
  if (!faults_on_ || stopping_) return;
  reconcile();
  run_weighted(fault_rng_, {{opt_.w_net, [this] { fault_net(); }},
                            {opt_.w_partition, [this] { fault_partition(); }},
                            {opt_.w_heal, [this] { heal_partitions(); }},
                            {opt_.w_crash, [this] { fault_crash(); }},
                            {opt_.w_transfer, [this] { fault_transfer(); }},
                            {opt_.w_member, [this] { fault_membership(); }}});
  executor_.post_after(
      std::chrono::microseconds(fault_rng_.between(opt_.fault_every / 2, opt_.fault_every * 3 / 2)),
      [this] { fault_event(); });
}

inline void KvCluster::heal_partitions() {
  if (!net_.net().partitioned()) return;
  net_.net().heal();
  note(TraceKind::fault, no_node, "partitions healed");
}

inline void KvCluster::fault_net() {
  NetworkFaults f;
  f.drop = fault_rng_.unit() * opt_.drop_max;
  f.duplicate = fault_rng_.unit() * opt_.duplicate_max;
  f.min_delay = sim_us(100);
  f.max_delay = fault_rng_.between(sim_ms(1), std::max(sim_ms(1), opt_.delay_max));
  // Drawn only for seeds that damage frames, so the others replay what they did before.
  if (opt_.corrupt_max > 0) f.corrupt = fault_rng_.unit() * opt_.corrupt_max;
  net_.net().set_faults(f);
  note(TraceKind::fault, no_node,
       "network: drop " + std::to_string(static_cast<int>(f.drop * 100)) + "% dup " +
           std::to_string(static_cast<int>(f.duplicate * 100)) +
           "% delay <= " + std::to_string(f.max_delay / 1000) + "ms" + damage_note(f.corrupt));
}

inline void KvCluster::fault_partition() {
  std::vector<NodeId> ids;
  for (const auto& m : members_) ids.push_back(m->id);
  const SplitNote split = split_network(fault_rng_, net_.net(), std::move(ids), false);
  note(TraceKind::fault, split.node, split.text);
}

inline void KvCluster::fault_crash() {
  if (down_count() >= opt_.max_down) return;
  std::vector<NodeId> up;
  for (auto& m : members_)
    if (m->up()) up.push_back(m->id);
  if (up.empty()) return;
  Member& m = member(fault_rng_.pick(std::span<const NodeId>(up)));
  Down how = fault_rng_.chance(0.5) ? Down::crash : Down::stop;
  if (fault_rng_.chance(opt_.power_loss)) how = Down::power_loss;
  take_down(m, how);
  const std::uint64_t incarnation = m.incarnation;
  executor_.post_after(std::chrono::microseconds(fault_rng_.between(sim_ms(20), sim_ms(600))),
                       [this, id = m.id, incarnation] {
                         Member& mm = member(id);
                         if (!stopping_ && !mm.up() && !mm.removed && mm.incarnation == incarnation)
                           open(mm);
                       });
}

inline void KvCluster::fault_transfer() {
  Member* l = leader();
  if (l == nullptr) return;
  std::vector<NodeId> others;
  for (auto& m : members_)
    if (m->up() && m.get() != l) others.push_back(m->id);
  if (others.empty()) return;
  const NodeId target = fault_rng_.pick(std::span<const NodeId>(others));
  ++result_.transfers;
  note(TraceKind::fault, l->id, "leader transfer to n" + std::to_string(target));
  l->replica->node().transfer_leadership(target, [this, from = l->id](result<void> r) {
    if (!r) note(TraceKind::fault, from, "leader transfer refused: " + r.error().message());
  });
}

inline void KvCluster::fault_membership() {
  Member* l = leader();
  if (l == nullptr || change_in_flight_) return;
  std::vector<raft::ConfigChange> options;
  using Kind = raft::ConfigChange::Kind;
  // A new replica (one beyond the founders), or a removed one back with its old disk.
  if (members_.size() == opt_.nodes)
    options.push_back(
        {Kind::add_learner, opt_.nodes + 1, checks::sim_peer_address(opt_.nodes + 1)});
  for (const auto& m : members_) {
    if (!config_.contains(m->id))
      options.push_back({Kind::add_learner, m->id, checks::sim_peer_address(m->id)});
    if (config_.is_learner(m->id)) {
      options.push_back({Kind::add_voter, m->id, {}});
      options.push_back({Kind::remove, m->id, {}});
    }
    // Never below the founding size: the fault scheduler's bound on replicas down assumes it.
    if (config_.is_voter(m->id) && config_.voters.size() > opt_.nodes && m.get() != l)
      options.push_back({Kind::remove, m->id, {}});
  }
  if (options.empty()) return;
  const raft::ConfigChange change = options[fault_rng_.below(options.size())];
  if (change.kind == Kind::add_learner) {
    if (change.node > members_.size()) {
      auto m = std::make_unique<Member>();
      m->id = change.node;
      members_.push_back(std::move(m));
    }
    Member& m = member(change.node);
    // The operator starts the new member's process first; it waits to be added.
    m.removed = false;
    m.joining = true;
    if (!m.up()) open(m);
    if (!m.up()) return;
  }
  propose_change(*l, change, "fault");
}

inline void KvCluster::propose_change(Member& l, const raft::ConfigChange& change,
                                      const char* why) {
  using Kind = raft::ConfigChange::Kind;
  const char* kind = change.kind == Kind::add_learner ? "add learner"
                     : change.kind == Kind::add_voter ? "promote"
                                                      : "remove";
  note(TraceKind::fault, l.id,
       std::string(why) + ": " + kind + " n" + std::to_string(change.node) + " proposed");
  change_in_flight_ = true;
  l.replica->node().change_membership(
      change, [this, from = l.id, node = change.node, kind](result<Membership> r) {
        change_in_flight_ = false;
        if (!r) {
          note(TraceKind::fault, from,
               std::string(kind) + " n" + std::to_string(node) + ": " + r.error().message());
        }
      });
}

inline void KvCluster::on_membership(NodeId id, const node::MembershipChange& change) {
  if (change.index <= config_index_) return;
  config_index_ = change.index;
  config_ = change.membership;
  if (auto v = checks::check_member_addresses(id, config_)) violation(v->invariant, v->detail);
  std::string text = "configuration at " + std::to_string(change.index) + ": voters";
  for (NodeId v : config_.voters) text += " n" + std::to_string(v);
  if (!config_.learners.empty()) text += ", learners";
  for (NodeId v : config_.learners) text += " n" + std::to_string(v);
  note(TraceKind::commit, id, text);
  for (auto& m : members_)
    if (config_.contains(m->id)) m->joining = false;
  // Not from inside a replica's callback: a replica must not stop itself from its applier.
  executor_.post([this] { reconcile(); });
}

inline void KvCluster::reconcile() {
  if (stopping_) return;
  for (auto& m : members_) {
    if (config_.contains(m->id) || m->joining || m->removed) continue;
    // Its removal committed: the operator stops its process (its disk stays).
    m->removed = true;
    if (m->up()) {
      note(TraceKind::fault, m->id, "removed from the configuration: stopping it");
      take_down(*m, Down::stop);
    }
  }
}

inline bool KvCluster::all_in_config() const {
  for (const auto& m : members_)
    if (!config_.contains(m->id)) return false;
  return true;
}

inline void KvCluster::readd_tick() {
  if (stopping_) return;
  // Runs until the end: a removal proposed before the heal may still commit after it.
  Member* l = leader();
  if (l != nullptr && !change_in_flight_ && !all_in_config()) {
    for (auto& m : members_) {
      if (config_.contains(m->id)) continue;
      m->removed = false;
      m->joining = true;
      if (!m->up()) open(*m);
      if (m->up())
        propose_change(
            *l, {raft::ConfigChange::Kind::add_learner, m->id, checks::sim_peer_address(m->id)},
            "heal");
      break;
    }
  }
  executor_.post_after(std::chrono::milliseconds(50), [this] { readd_tick(); });
}

inline void KvCluster::heal() {
  faults_on_ = false;
  net_.net().heal();
  net_.net().set_faults(NetworkFaults{});
  note(TraceKind::fault, no_node, "heal: network whole, every replica restarted");
  for (auto& m : members_)
    if (!m->up() && !m->removed) open(*m);
  // Every replica the run started ends as a member again, so that the end checks compare
  // them all.
  readd_tick();
}

// ---- watchers ----

inline void KvCluster::start_watch(Member& m, kv::Revision from) {
  kv::WatchCreateRequest req;
  req.key = std::string(1, '\0');
  req.range_end = std::string(1, '\0');
  req.start_revision = from;
  auto w = Client(*m.replica).watch(req);
  if (!w) {
    violation("watch", "n" + std::to_string(m.id) + ": watch refused: " + w.error().message());
    return;
  }
  WatchSegment seg;
  seg.node = m.id;
  seg.incarnation = m.incarnation;
  seg.watch_id = w.value().id();
  seg.requested = from;
  segments_.push_back(std::move(seg));
  m.segment = segments_.size() - 1;
  m.watch.emplace(std::move(w).value());
}

inline void KvCluster::drain_watch(Member& m, bool rewatch) {
  if (!m.watch) return;
  WatchSegment& seg = segments_[m.segment];
  for (kv::WatchResponse& resp : m.watch->take()) {
    if (resp.watch_id != seg.watch_id)
      seg.problems.push_back("response for watch " + std::to_string(resp.watch_id));
    if (seg.canceled) {
      seg.problems.push_back("a response after the cancellation");
      continue;
    }
    if (resp.created) {
      if (seg.created) seg.problems.push_back("a second created response");
      seg.created = true;
      seg.start = seg.requested > 0 ? seg.requested : resp.header_revision + 1;
    } else if (!seg.created) {
      seg.problems.push_back("a response before the created one");
    }
    result_.watch_events += resp.events.size();
    for (kv::Event& e : resp.events) seg.events.push_back(std::move(e));
    if (resp.canceled) {
      seg.canceled = true;
      seg.compact_revision = resp.compact_revision;
      seg.cancel_reason = resp.cancel_reason;
      ++result_.watch_cancels;
    }
  }
  // Cancelled by the hub (a snapshot replaced the state, the watcher fell behind, or its start
  // revision left the history): watch again from where the cancellation says, or from the next
  // revision not yet seen. A new watch may be cancelled at once (its start already left the
  // history): take that at once too, and follow it, a few times.
  for (int tries = 0; rewatch && m.replica && !stopping_ && tries < 4; ++tries) {
    const WatchSegment& old = segments_[m.segment];
    if (!old.canceled) break;
    kv::Revision from = old.compact_revision;
    if (from == 0) from = old.events.empty() ? old.start : old.events.back().kv.mod_revision + 1;
    note(TraceKind::client, m.id,
         "watch " + std::to_string(old.watch_id) + " canceled (" + old.cancel_reason +
             ", compact_revision " + std::to_string(old.compact_revision) +
             "): watching again from " + std::to_string(from));
    m.watch.reset();
    start_watch(m, from);
    drain_watch(m, false);
  }
}

inline void KvCluster::drain_watches() {
  for (auto& m : members_)
    if (m->up()) drain_watch(*m);
}

inline void KvCluster::end_watch(Member& m, kv::Revision end) {
  if (!m.watch) return;
  WatchSegment& seg = segments_[m.segment];
  if (!seg.canceled) seg.end = end;
}

inline void KvCluster::violation(std::string invariant, std::string detail) {
  note(TraceKind::violation, no_node, invariant + ": " + detail);
  result_.violations.push_back(Violation{std::move(invariant), std::move(detail)});
}

}  // namespace dengine::sim::kvsim
