#pragma once
/// Set-up, the run, and the final history check. Part of Cluster (cluster.hpp).
///
/// Everything — the nodes' roles, the network, clients, faults — is an event on one
/// SimExecutor, ordered by (time, sequence): a run is a pure function of its options. The
/// checks run after every event.

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
      net_(executor_, mix_seed(opt_.seed, 4)),
      trace_(200, opt_.verbose) {
  pre_vote_ = rng_.chance(opt_.mix.pre_vote);
  check_quorum_ = !lease_rng_.chance(opt_.mix.no_check_quorum);
  for (NodeId id = 1; id <= opt_.nodes; ++id) founding_.voters.push_back(id);
  // Two spare nodes for membership changes, started only when added.
  const std::size_t total = opt_.nodes + 2;
  for (NodeId id = 1; id <= total; ++id) {
    auto n = std::make_unique<SimNode>();
    n->id = id;
    // Clock drift: each node's tick period is 10 ms ± 3% of virtual time.
    n->local_time = LocalTime{0, nominal_tick, sim_us(10'000 - 300 + rng_.below(601))};
    n->snapshot_every = static_cast<std::uint32_t>(rng_.between(
        opt_.mix.snapshot_min, std::max(opt_.mix.snapshot_min, opt_.mix.snapshot_max)));
    nodes_.push_back(std::move(n));
  }
  clients_.resize(3);
  // Members are reached at the addresses their configuration gives (checks/member_addresses.hpp).
  net_.require_addresses(true);
  net_.set_tap(
      NetworkTap{[this](const raft::Message& m) { return before_send(m); },
                 [this](const SendReport& r) { after_send(r); },
                 [this](const raft::Message& m, std::string_view dropped) { arrived(m, dropped); },
                 [this](const std::string& what) { fail("wire codec", what); }});
  fault_net();
}

inline RunResult Cluster::run() {
  for (NodeId id = 1; id <= opt_.nodes; ++id) start_node(node(id));
  for (std::size_t c = 0; c < clients_.size(); ++c)
    schedule(client_rng_.between(0, sim_ms(50)), [this, c] { client_wake(c); });
  schedule(opt_.mix.fault_every, [this] { fault_event(); });
  executor_.after_each([this] {
    after_event();
    if (faults_on_ && executor_.executed() >= opt_.steps) {
      faults_on_ = false;
      schedule(0, [this] { heal_all(); });
    }
  });
  while (!violation_ && executor_.next_time() < end_at_) executor_.run_one();
  executor_.after_each({});

  RunResult out = stats_;
  if (!violation_) {
    for (auto& n : nodes_)
      if (!violation_ && n->status == SimNode::Status::up)
        if (auto v = inv_.check_all(n->core())) fail(v->invariant, v->detail);
  }
  if (violation_) out.violations.push_back(*violation_);
  // A liveness failure does not make the history uncheckable (only less resolvable).
  if (!violation_ || violation_->invariant == "liveness") {
    violation_.reset();
    check_history(out);
    if (violation_) out.violations.push_back(*violation_);
  }
  out.events = executor_.executed();
  out.end_time = executor_.now();
  out.frames = net_.stats().frames;
  out.frames_damaged = net_.net().stats().damaged;
  out.frames_refused = net_.stats().refused;
  if (!out.violations.empty()) out.trace = trace_.lines();
  // The nodes go before the network and executor they use.
  for (auto& n : nodes_) n->node.reset();
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
