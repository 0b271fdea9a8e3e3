#pragma once
/// Set-up, the event loop, and the final history check. Part of Cluster (cluster.hpp).
///
/// The loop merges two time-ordered sources — the network's deliveries and the harness's own
/// events (ticks, syncs, restarts, clients, faults) — taking the network first on a tie, so a
/// run is a pure function of its options.

#include <algorithm>
#include <string>
#include <vector>

#include "cluster.hpp"

namespace dengine::sim {

inline Cluster::Cluster(SimOptions options)
    : opt_(std::move(options)),
      rng_(mix_seed(opt_.seed, 1)),
      fault_rng_(mix_seed(opt_.seed, 2)),
      client_rng_(mix_seed(opt_.seed, 3)),
      lease_rng_(mix_seed(opt_.seed, 5)),
      net_(clock_, mix_seed(opt_.seed, 4)),
      trace_(200, opt_.verbose) {
  pre_vote_ = rng_.chance(opt_.mix.pre_vote);
  check_quorum_ = !lease_rng_.chance(opt_.mix.no_check_quorum);
  for (NodeId id = 1; id <= opt_.nodes; ++id) founding_.voters.push_back(id);
  // Two spare nodes for membership changes, started only when added.
  const std::size_t total = opt_.nodes + 2;
  for (NodeId id = 1; id <= total; ++id) {
    auto n = std::make_unique<SimNode>();
    n->id = id;
    // Clock drift: each node's tick period is 10 ms ± 3%.
    n->tick_period = sim_us(10'000 - 300 + rng_.below(601));
    n->snapshot_every = static_cast<std::uint32_t>(rng_.between(
        opt_.mix.snapshot_min, std::max(opt_.mix.snapshot_min, opt_.mix.snapshot_max)));
    // Every node, founding or joining, starts from the cluster's founding configuration at
    // index 0; a joiner learns the rest from the log or a snapshot.
    (void)n->engine.reset(SnapshotMeta{0, 0, founding_});
    (void)n->engine.sync();
    nodes_.push_back(std::move(n));
  }
  clients_.resize(3);
  fault_net();
}

inline void Cluster::dispatch(Event& ev) {
  switch (ev.kind) {
    case Event::Kind::tick: {
      SimNode& n = node(ev.node);
      if (n.status != SimNode::Status::up || n.incarnation != ev.a) return;
      if (paused(n)) {
        n.tick_held = true;
        return;
      }
      tick_node(n);
      return;
    }
    case Event::Kind::sync: {
      SimNode& n = node(ev.node);
      if (n.status != SimNode::Status::up || n.incarnation != ev.a) return;
      if (paused(n)) {
        n.sync_held = true;  // the disk finished; the event loop hears of it when it runs
        return;
      }
      on_sync(n);
      touched(n);
      return;
    }
    case Event::Kind::resume: {
      SimNode& n = node(ev.node);
      if (n.status == SimNode::Status::up && n.incarnation == ev.a) resume_node(n);
      return;
    }
    case Event::Kind::restart: {
      SimNode& n = node(ev.node);
      if (n.status == SimNode::Status::down && n.incarnation == ev.a) start_node(n);
      return;
    }
    case Event::Kind::client_wake: client_wake(static_cast<std::size_t>(ev.a)); return;
    case Event::Kind::client_arrive: client_arrive(ev); return;
    case Event::Kind::client_response: client_response(ev); return;
    case Event::Kind::client_timeout: client_timeout(ev); return;
    case Event::Kind::fault: fault_event(); return;
    case Event::Kind::heal: heal_all(); return;
    case Event::Kind::probe: probe_event(); return;
  }
}

inline RunResult Cluster::run() {
  for (NodeId id = 1; id <= opt_.nodes; ++id) start_node(node(id));
  for (std::size_t c = 0; c < clients_.size(); ++c)
    schedule(client_rng_.between(0, sim_ms(50)), Event{Event::Kind::client_wake, no_node, c});
  schedule(opt_.mix.fault_every, Event{Event::Kind::fault, no_node});

  while (!violation_) {
    const sim_time tn = net_.next_delivery_time();
    const sim_time te = events_.next_time();
    if (tn == sim_never && te == sim_never) break;
    if (std::min(tn, te) >= end_at_) break;
    if (tn <= te) {
      clock_.advance_to(tn);
      auto a = net_.pop_due();
      deliver(*a);
    } else {
      clock_.advance_to(te);
      Scheduled<Event> s = events_.pop();
      dispatch(s.value);
    }
    ++event_count_;
    if (faults_on_ && event_count_ >= opt_.steps) {
      faults_on_ = false;
      schedule(0, Event{Event::Kind::heal, no_node});
    }
    // A full log-matching sweep now and then, beyond the per-step checks of changed entries.
    if (event_count_ % 1024 == 0) {
      for (auto& n : nodes_) {
        if (violation_) break;
        if (n->status == SimNode::Status::up)
          if (auto v = inv_.check_log_matching(*n->core)) fail(v->invariant, v->detail);
      }
    }
  }

  RunResult out = stats_;
  if (!violation_) {
    for (auto& n : nodes_)
      if (!violation_ && n->status == SimNode::Status::up)
        if (auto v = inv_.check_all(*n->core)) fail(v->invariant, v->detail);
  }
  if (violation_) out.violations.push_back(*violation_);
  // A liveness failure does not make the history uncheckable (only less resolvable).
  if (!violation_ || violation_->invariant == "liveness") {
    violation_.reset();
    check_history(out);
    if (violation_) out.violations.push_back(*violation_);
  }
  out.events = event_count_;
  out.end_time = clock_.now();
  if (!out.violations.empty()) out.trace = trace_.lines();
  return out;
}

inline std::vector<std::string> Cluster::explain(const lin::KvCheckResult& res) {
  // The search linearized a prefix and then found no operation that could come next. Show the
  // end of that prefix, and the operations around the earliest return it could not get past.
  const auto& ops = res.key_history;
  const auto& prefix = res.key_result.longest_prefix;
  std::vector<bool> linearized(ops.size(), false);
  for (std::size_t i : prefix) linearized[i] = true;
  sim_time stuck = sim_never;
  for (std::size_t i = 0; i < ops.size(); ++i)
    if (!linearized[i] && ops[i].output) stuck = std::min(stuck, ops[i].ret);
  std::vector<std::string> lines;
  lines.push_back("linearized " + std::to_string(prefix.size()) + " of " +
                  std::to_string(ops.size()) + " operations; the order found ends with:");
  for (std::size_t k = prefix.size() > 8 ? prefix.size() - 8 : 0; k < prefix.size(); ++k)
    lines.push_back("  " + lin::describe(ops[prefix[k]]));
  lines.push_back("no operation can follow; operations live around t=" + std::to_string(stuck) +
                  " (* = not linearized):");
  std::vector<std::size_t> around;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const sim_time ret = ops[i].output ? ops[i].ret : sim_never;
    if (ops[i].call <= stuck && ret + sim_ms(50) >= stuck) around.push_back(i);
  }
  std::sort(around.begin(), around.end(),
            [&](std::size_t a, std::size_t b) { return ops[a].call < ops[b].call; });
  if (around.size() > 40) around.erase(around.begin(), around.end() - 40);
  for (std::size_t i : around)
    lines.push_back((linearized[i] ? "  " : "* ") + lin::describe(ops[i]));
  return lines;
}

inline void Cluster::check_history(RunResult& out) {
  using Kind = lin::RegisterInput::Kind;
  std::vector<lin::KvOp> history;
  for (const ClientOp& op : ops_) {
    lin::RegisterOp r;
    r.client = op.client;
    r.call = op.call;
    r.ret = op.ret;
    r.output = op.output;
    switch (op.kind) {
      case ClientOp::Kind::write: r.input = {Kind::write, op.value, {}}; break;
      case ClientOp::Kind::cas: r.input = {Kind::cas, op.value, op.expected}; break;
      default: r.input = {Kind::read, {}, {}}; break;
    }
    if (!r.output) {
      // A read without an answer had no effect; neither had a write that was never appended.
      if (r.input.kind == Kind::read || !op.proposed) continue;
      // The simulator sees the replicated log: an operation some node applied did take effect,
      // with the result the state machine computed, no later than that apply.
      if (auto it = first_applied_.find(op.id); it != first_applied_.end()) {
        r.output = lin::RegisterOutput{it->second.second, {}};
        r.ret = std::max(it->second.first, op.call);
      } else if (liveness_ok_) {
        // After the heal a new proposal committed and was applied, and clients had stopped:
        // an entry not applied by then is not in the committed log and never will be.
        continue;
      } else {
        ++out.ops_unknown;
      }
    }
    if (r.output) ++out.ops_ok;
    history.push_back({op.key, std::move(r)});
  }
  const lin::KvCheckResult res = lin::check_kv(std::span<const lin::KvOp>(history), lin_budget_);
  out.lin_steps = res.steps;
  if (res.verdict == lin::Verdict::not_linearizable) {
    out.details = explain(res);
    fail("linearizability", "the history of key \"" + res.key + "\" (" +
                                std::to_string(res.key_history.size()) +
                                " operations) is not linearizable");
  } else if (res.verdict == lin::Verdict::unknown) {
    out.lin_unknown = true;
  }
}

}  // namespace dengine::sim
