#pragma once
/// The fault scheduler (network faults, partitions, crashes, membership changes, leader
/// transfers), the heal that ends the fault phase, and the liveness check after it.
/// Part of Cluster (cluster.hpp).

#include <algorithm>
#include <string>
#include <vector>

#include "checks/member_addresses.hpp"
#include "cluster.hpp"
#include "net_faults.hpp"

namespace dengine::sim {

inline SimNode* Cluster::current_leader() {
  SimNode* best = nullptr;
  for (auto& n : nodes_) {
    if (n->status != SimNode::Status::up || n->core().role() != raft::Role::leader) continue;
    if (best == nullptr || n->core().term() > best->core().term()) best = n.get();
  }
  return best;
}

inline std::string Cluster::describe_nodes() const {
  std::string s;
  for (const auto& n : nodes_) {
    if (n->status == SimNode::Status::idle) continue;
    s += "\n    n" + std::to_string(n->id) + ": ";
    if (n->status != SimNode::Status::up) {
      s += n->status == SimNode::Status::down ? "down" : "removed";
      continue;
    }
    const raft::Core& c = n->core();
    s += std::string(raft::to_string(c.role())) + " term " + std::to_string(c.term()) + " leader " +
         std::to_string(c.leader()) + " commit " + std::to_string(c.commit_index()) + " last " +
         std::to_string(c.last_index()) + " persisted " + std::to_string(c.persisted_index()) +
         " applied " + std::to_string(n->sm->applied_index());
    if (paused(*n)) s += " (event loop frozen)";
    s += " voters";
    for (NodeId v : c.membership().voters) s += " " + std::to_string(v);
    if (!c.membership().learners.empty()) {
      s += " learners";
      for (NodeId v : c.membership().learners) s += " " + std::to_string(v);
    }
    // A leader's view of each follower says why one does not catch up.
    for (NodeId peer : c.membership().all()) {
      const raft::Progress* pr = c.progress(peer);
      if (pr == nullptr || peer == n->id) continue;
      const char* state = pr->state == raft::Progress::State::probe       ? "probe"
                          : pr->state == raft::Progress::State::replicate ? "replicate"
                                                                          : "snapshot";
      s += "\n      progress of n" + std::to_string(peer) + ": " + state + " match " +
           std::to_string(pr->match) + " next " + std::to_string(pr->next) + " in flight " +
           std::to_string(pr->inflights.count()) + (pr->paused() ? " (paused)" : "");
    }
  }
  return s;
}

inline void Cluster::fault_event() {
  if (!faults_on_ || violation_) return;
  reconcile_membership();
  const FaultMix& m = opt_.mix;
  run_weighted(fault_rng_, {{m.w_net, [this] { fault_net(); }},
                            {m.w_partition, [this] { fault_partition(); }},
                            {m.w_heal, [this] { heal_partitions(); }},
                            {m.w_crash, [this] { fault_crash(); }},
                            {m.w_member, [this] { fault_membership(); }},
                            {m.w_transfer, [this] { fault_transfer(); }},
                            {m.w_pause, [this] { fault_pause(); }},
                            {m.w_clock_jump, [this] { fault_clock_jump(); }}});
  schedule(fault_rng_.between(m.fault_every / 2, m.fault_every * 3 / 2), [this] { fault_event(); });
}

inline void Cluster::heal_partitions() {
  if (!net_.net().partitioned()) return;
  net_.net().heal();
  trace_.note(executor_.now(), TraceKind::fault, no_node, "partitions healed");
}

inline void Cluster::fault_net() {
  const FaultMix& m = opt_.mix;
  NetworkFaults f;
  f.drop = fault_rng_.unit() * m.drop_max;
  f.duplicate = fault_rng_.unit() * m.duplicate_max;
  f.min_delay = sim_us(100);
  f.max_delay = fault_rng_.between(sim_ms(1), std::max(sim_ms(1), m.delay_max));
  f.spike = m.spike;
  f.spike_delay = sim_ms(200);
  // Drawn only in mixes that damage frames, so the others replay what they did before.
  if (m.corrupt_max > 0) f.corrupt = fault_rng_.unit() * m.corrupt_max;
  net_.net().set_faults(f);
  trace_.note(executor_.now(), TraceKind::fault, no_node,
              "network: drop " + std::to_string(static_cast<int>(f.drop * 100)) + "% dup " +
                  std::to_string(static_cast<int>(f.duplicate * 100)) + "% delay <= " +
                  std::to_string(f.max_delay / 1000) + "ms" + damage_note(f.corrupt));
}

inline void Cluster::fault_partition() {
  std::vector<NodeId> members;
  for (const auto& n : nodes_)
    if (n->status == SimNode::Status::up || n->status == SimNode::Status::down)
      members.push_back(n->id);
  if (members.size() < 2) return;
  const SplitNote note = split_network(fault_rng_, net_.net(), std::move(members), true);
  trace_.note(executor_.now(), TraceKind::fault, note.node, note.text);
}

inline void Cluster::fault_crash() {
  std::vector<SimNode*> candidates;
  std::size_t down = 0;
  for (auto& n : nodes_) {
    if (n->status == SimNode::Status::up) candidates.push_back(n.get());
    if (n->status == SimNode::Status::down) ++down;
  }
  const std::size_t max_down = opt_.mix.max_down != 0 ? opt_.mix.max_down : (opt_.nodes - 1) / 2;
  if (candidates.empty() || down >= std::max<std::size_t>(max_down, 1)) return;
  SimNode& n = *candidates[fault_rng_.below(candidates.size())];
  crash_node(n, "crashed");
  schedule_for(n, fault_rng_.between(sim_ms(20), sim_ms(600)), [this, &n] {
    if (n.status == SimNode::Status::down) start_node(n);
  });
}

inline void Cluster::fault_membership() {
  SimNode* leader = current_leader();
  if (leader == nullptr) return;
  const Membership cur = leader->core().membership();
  std::vector<raft::ConfigChange> options;
  for (const auto& n : nodes_) {
    const NodeId id = n->id;
    if (!cur.contains(id)) {
      if (n->status != SimNode::Status::down)  // a spare, or a removed node coming back
        options.push_back(
            {raft::ConfigChange::Kind::add_learner, id, checks::sim_peer_address(id)});
    } else if (cur.is_learner(id)) {
      options.push_back({raft::ConfigChange::Kind::add_voter, id, {}});
      options.push_back({raft::ConfigChange::Kind::remove, id, {}});
    } else if (cur.voters.size() > 2) {
      options.push_back({raft::ConfigChange::Kind::remove, id, {}});
    }
  }
  if (options.empty()) return;
  const raft::ConfigChange change = options[fault_rng_.below(options.size())];
  const char* kind = change.kind == raft::ConfigChange::Kind::add_learner ? "add learner"
                     : change.kind == raft::ConfigChange::Kind::add_voter ? "promote"
                                                                          : "remove";
  const std::string what = std::string(kind) + " n" + std::to_string(change.node);
  trace_.note(executor_.now(), TraceKind::fault, leader->id, what + " asked");
  leader->node->change_membership(
      change, [this, from = leader->id, what](const result<Membership>& r) {
        trace_.note(executor_.now(), TraceKind::fault, from,
                    what + (r ? " applied" : " failed: " + r.error().message()));
      });
  ++stats_.config_changes;
  SimNode& target = node(change.node);
  // The operator starts the new member's process (a removed node keeps its old disk); if the
  // change fails, reconciliation stops it again.
  if (change.kind == raft::ConfigChange::Kind::add_learner &&
      (target.status == SimNode::Status::idle || target.status == SimNode::Status::removed))
    start_node(target);
}

inline void Cluster::fault_transfer() {
  SimNode* leader = current_leader();
  if (leader == nullptr) return;
  std::vector<NodeId> voters;
  for (NodeId v : leader->core().membership().voters)
    if (v != leader->id) voters.push_back(v);
  if (voters.empty()) return;
  const NodeId target = voters[fault_rng_.below(voters.size())];
  trace_.note(executor_.now(), TraceKind::fault, leader->id,
              "transfer leadership to n" + std::to_string(target));
  leader->node->transfer_leadership(target, [this, from = leader->id](const result<void>& r) {
    if (!r)
      trace_.note(executor_.now(), TraceKind::fault, from,
                  "transfer refused: " + r.error().message());
  });
}

inline void Cluster::fault_pause() {
  // Prefer the leader: a frozen leader whose lease outlives its leadership is the danger.
  SimNode* target = current_leader();
  if (target == nullptr || fault_rng_.chance(0.3)) {
    std::vector<SimNode*> up_nodes;
    for (auto& n : nodes_)
      if (n->status == SimNode::Status::up) up_nodes.push_back(n.get());
    if (up_nodes.empty()) return;
    target = up_nodes[fault_rng_.below(up_nodes.size())];
  }
  if (paused(*target)) return;
  const sim_duration d = fault_rng_.between(sim_ms(5), opt_.mix.pause_max);
  target->paused_until = executor_.now() + d;
  target->node->freeze_for(std::chrono::microseconds(d));
  trace_.note(executor_.now(), TraceKind::fault, target->id,
              "event loop frozen for " + std::to_string(d / 1000) + " ms");
}

inline void Cluster::fault_clock_jump() {
  std::vector<SimNode*> up_nodes;
  for (auto& n : nodes_)
    if (n->status == SimNode::Status::up) up_nodes.push_back(n.get());
  if (up_nodes.empty()) return;
  SimNode& n = *up_nodes[fault_rng_.below(up_nodes.size())];
  // A monotonic clock only moves forward; a leader's lease must shrink with it, never grow.
  // (The tick timers are re-armed on each tick and do not fire early: a follower's promise
  // rests on ticks coming no faster than the period, which a jump does not change here.)
  const sim_duration jump = fault_rng_.between(sim_ms(1), 3 * nominal_tick);
  n.local_time.offset += jump;
  trace_.note(executor_.now(), TraceKind::fault, n.id,
              "clock jumps " + std::to_string(jump / 1000) + " ms forward");
  check_lease_overlap();
}

inline void Cluster::reconcile_membership() {
  // The operator runs a process for every member in the leader's configuration and stops the
  // processes whose removal the leader has committed.
  SimNode* leader = current_leader();
  if (leader == nullptr) return;
  const Membership committed = leader->core().membership_at(leader->core().commit_index());
  const Membership latest = leader->core().membership();
  for (auto& n : nodes_) {
    if (violation_) return;
    if (n.get() == leader) continue;
    const bool member = committed.contains(n->id) || latest.contains(n->id);
    if (member && (n->status == SimNode::Status::idle || n->status == SimNode::Status::removed)) {
      trace_.note(executor_.now(), TraceKind::fault, n->id,
                  "a member without a process: starting it");
      start_node(*n);
    } else if (!member &&
               (n->status == SimNode::Status::up || n->status == SimNode::Status::down)) {
      trace_.note(executor_.now(), TraceKind::fault, n->id,
                  "removed from the cluster: stopping it");
      stop_node(*n);
    }
  }
}

inline void Cluster::heal_all() {
  faults_on_ = false;
  clients_on_ = false;
  net_.net().heal();
  net_.net().set_faults(NetworkFaults{});
  trace_.note(executor_.now(), TraceKind::fault, no_node, "all faults healed; checking liveness");
  reconcile_membership();
  for (auto& n : nodes_) {
    if (violation_) return;
    if (n->status == SimNode::Status::down) start_node(*n);
  }
  heal_at_ = executor_.now();
  liveness_deadline_ = heal_at_ + liveness_bound_;
  schedule(sim_ms(10), [this] { probe_event(); });
}

inline void Cluster::probe_event() {
  if (liveness_ok_ || violation_) return;
  // The operator keeps reconciling after the heal: a process stopped because the leader of the
  // moment lacked an uncommitted "add learner" must come back when a later leader commits it
  // (dengine-sim --seed 9300420 --nodes 5 --mix chaos --steps 80000 failed liveness without).
  reconcile_membership();
  if (violation_) return;
  SimNode* leader = current_leader();
  if (probe_index_ != 0 && leader != nullptr) {
    // Committed; now every live member must catch up to it (by entries or by a snapshot).
    std::string behind;
    for (NodeId id : leader->core().membership().all()) {
      const SimNode& n = node(id);
      if (n.status != SimNode::Status::up || n.sm->applied_index() < probe_index_)
        behind += " n" + std::to_string(id);
    }
    if (behind.empty()) {
      liveness_ok_ = true;
      end_at_ = executor_.now() + sim_ms(300);
      trace_.note(executor_.now(), TraceKind::fault, no_node, "liveness: every member caught up");
      return;
    }
    if (executor_.now() >= liveness_deadline_)
      return fail("liveness", "the probe committed at index " + std::to_string(probe_index_) +
                                  " but members" + behind + " did not apply it within " +
                                  std::to_string(liveness_bound_ / 1000) +
                                  " ms after all faults healed; nodes:" + describe_nodes());
  }
  if (executor_.now() >= liveness_deadline_)
    return fail("liveness",
                std::string(leader == nullptr ? "no leader" : "no new proposal committed") +
                    " within " + std::to_string(liveness_bound_ / 1000) +
                    " ms after all faults healed; nodes:" + describe_nodes());
  if (leader != nullptr && probe_index_ == 0) {
    const std::pair<NodeId, Term> key{leader->id, leader->core().term()};
    if (probe_ != key) {
      // Proposed once per (leader, term); a failed one is proposed again by the next leader.
      probe_ = key;
      const Command c{0, Command::Kind::put, probe_key, std::to_string(++probe_seq_), {}};
      trace_.note(executor_.now(), TraceKind::fault, leader->id,
                  "liveness probe " + c.value + " proposed");
      leader->node->propose(encode(c), [this, from = leader->id](const result<ApplyResult>& r) {
        if (r) return;
        // Refused (a transfer running, too busy, ...): the next probe event proposes again.
        trace_.note(executor_.now(), TraceKind::fault, from,
                    "liveness probe failed: " + r.error().message());
        if (r.error() != errc::outcome_unknown) probe_.reset();
      });
    }
  }
  schedule(sim_ms(20), [this] { probe_event(); });
}

}  // namespace dengine::sim
