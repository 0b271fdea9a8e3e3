#pragma once
/// Clients: a few concurrent clients doing writes and CAS (proposals) and linearizable reads
/// (ReadIndex, possibly through a follower, and lease reads) on a few keys. Every operation is
/// recorded with its invoke and return times; a timeout leaves its outcome unknown.
/// Part of Cluster (cluster.hpp).

#include <string>
#include <utility>

#include "cluster.hpp"

namespace dengine::sim {

inline NodeId Cluster::pick_target(Client& c) {
  if (c.leader_guess != no_node) return c.leader_guess;
  // A client knows the members' addresses, not who is up.
  std::vector<NodeId> known;
  for (const auto& n : nodes_)
    if (n->status == SimNode::Status::up || n->status == SimNode::Status::down)
      known.push_back(n->id);
  return known[client_rng_.below(known.size())];
}

inline void Cluster::client_wake(std::size_t c) {
  if (!clients_on_) return;
  Client& cl = clients_[c];
  ClientOp op;
  op.id = ops_.size() + 1;
  op.client = c;
  op.call = clock_.now();
  op.key = keys_[client_rng_.below(keys_.size())];
  const std::uint64_t roll = client_rng_.below(100);
  if (roll < 35) {
    op.kind = ClientOp::Kind::write;
  } else if (roll < 60) {
    op.kind = ClientOp::Kind::cas;
  } else if (roll < 85) {
    op.kind = ClientOp::Kind::read_index;
  } else {
    op.kind = ClientOp::Kind::lease_read;
  }
  op.value = "c" + std::to_string(c) + "." + std::to_string(++cl.seq);
  if (op.kind == ClientOp::Kind::cas) {
    // Usually the last value this client saw for the key, so that swaps often succeed.
    auto it = last_seen_.find(op.key);
    op.expected = it != last_seen_.end() && client_rng_.chance(0.8) ? it->second : "";
  }
  cl.current = op.id;
  ops_.push_back(std::move(op));
  ClientOp& o = ops_.back();
  const NodeId target = pick_target(cl);
  trace_.note(
      clock_.now(), TraceKind::client, target,
      "op " + std::to_string(o.id) + " from c" + std::to_string(c) + ": " +
          (o.kind == ClientOp::Kind::write ? "write " + o.key + "=" + o.value
           : o.kind == ClientOp::Kind::cas ? "cas " + o.key + " " + o.expected + "->" + o.value
           : o.kind == ClientOp::Kind::read_index ? "read(index) " + o.key
                                                  : "read(lease) " + o.key));
  schedule(op_timeout_, Event{Event::Kind::client_timeout, no_node, o.id});
  schedule(client_rng_.between(sim_us(100), sim_ms(1)),
           Event{Event::Kind::client_arrive, target, o.id, o.attempt});
}

inline void Cluster::retry(ClientOp& op, NodeId hint) {
  ++op.attempt;
  Client& cl = clients_[op.client];
  cl.leader_guess = hint;
  const NodeId target = pick_target(cl);
  schedule(client_rng_.between(sim_ms(2), sim_ms(10)),
           Event{Event::Kind::client_arrive, target, op.id, op.attempt});
}

inline void Cluster::client_arrive(Event& ev) {
  ClientOp& op = ops_[ev.a - 1];
  if (!op.open || ev.b != op.attempt) return;
  if (!clients_on_) {
    finish(op);  // not submitted: the run is healing; nothing took effect
    return;
  }
  SimNode& n = node(ev.node);
  if (n.status != SimNode::Status::up) return retry(op, no_node);
  if (paused(n)) {
    // The request waits for the frozen event loop (the resume event, scheduled earlier for
    // the same time, runs first).
    schedule(n.paused_until - clock_.now(), ev);
    return;
  }
  raft::Core& core = *n.core;
  const bool is_read =
      op.kind == ClientOp::Kind::read_index || op.kind == ClientOp::Kind::lease_read;
  if (is_read && opt_.inject == Injection::read_without_confirmation &&
      core.role() == raft::Role::leader) {
    // Injected bug: a "leader" answers from local state without confirming it still leads.
    respond(n.id, op.id, op.attempt, lin::RegisterOutput{true, n.sm.get(op.key)}, n.id);
    return;
  }
  switch (op.kind) {
    case ClientOp::Kind::write:
    case ClientOp::Kind::cas: {
      Command c{op.id, op.kind == ClientOp::Kind::write ? Command::Kind::put : Command::Kind::cas,
                op.key, op.value, op.expected};
      auto r = core.propose(encode(c));
      if (!r) return retry(op, r.error().leader_hint);
      op.proposed = true;
      n.waiting_writes[op.id] = op.attempt;
      trace_.note(
          clock_.now(), TraceKind::client, n.id,
          "op " + std::to_string(op.id) + " proposed at index " + std::to_string(r.value()));
      break;
    }
    case ClientOp::Kind::read_index: {
      const std::uint64_t request = next_request_++;
      if (auto r = core.read_index(request); !r) return retry(op, r.error().leader_hint);
      n.reads.push_back(ReadWait{request, op.id, op.attempt, false, 0});
      break;
    }
    case ClientOp::Kind::lease_read: {
      // As node::Driver does: a lease read is served locally only while the lease holds by
      // the core's tick count and on the node's clock; a leader without one (or with lease
      // reads off) confirms by ReadIndex instead.
      auto r = core.lease_read();
      if (r && lease_valid(n)) {
        n.reads.push_back(ReadWait{0, op.id, op.attempt, true, r.value()});
        break;
      }
      if (core.role() != raft::Role::leader) return retry(op, core.leader());
      const std::uint64_t request = next_request_++;
      if (auto ri = core.read_index(request); !ri) return retry(op, ri.error().leader_hint);
      n.reads.push_back(ReadWait{request, op.id, op.attempt, false, 0});
      break;
    }
  }
  touched(n);
  serve_reads(n);
}

inline void Cluster::serve_reads(SimNode& n) {
  if (n.status != SimNode::Status::up) return;
  for (std::size_t i = 0; i < n.reads.size();) {
    const ReadWait& w = n.reads[i];
    if (w.index_known && n.sm.applied_index() >= w.index) {
      respond(n.id, w.op_id, w.attempt, lin::RegisterOutput{true, n.sm.get(ops_[w.op_id - 1].key)},
              n.id);
      n.reads.erase(n.reads.begin() + static_cast<std::ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
}

inline void Cluster::respond(NodeId from, std::uint64_t op_id, std::uint64_t attempt,
                             std::optional<lin::RegisterOutput> out, NodeId hint) {
  Event ev{Event::Kind::client_response, from, op_id, attempt};
  ev.ok = out.has_value();
  if (out) {
    ev.swapped = out->ok;
    ev.value = std::move(out->value);
  }
  ev.hint = hint;
  schedule(client_rng_.between(sim_us(100), sim_ms(1)), std::move(ev));
}

inline void Cluster::client_response(Event& ev) {
  ClientOp& op = ops_[ev.a - 1];
  if (!op.open || ev.b != op.attempt) return;
  if (!ev.ok) return retry(op, ev.hint);
  op.output = lin::RegisterOutput{ev.swapped, ev.value};
  op.ret = clock_.now();
  clients_[op.client].leader_guess = ev.hint;
  if (op.kind == ClientOp::Kind::read_index || op.kind == ClientOp::Kind::lease_read) {
    last_seen_[op.key] = ev.value;
  } else if (op.kind == ClientOp::Kind::write || ev.swapped) {
    last_seen_[op.key] = op.value;
  }
  trace_.note(clock_.now(), TraceKind::client, ev.node,
              "op " + std::to_string(op.id) + " done" +
                  (op.kind == ClientOp::Kind::cas     ? (ev.swapped ? ": swapped" : ": not swapped")
                   : op.kind == ClientOp::Kind::write ? ""
                                                      : ": read \"" + ev.value + "\""));
  finish(op);
}

inline void Cluster::client_timeout(Event& ev) {
  ClientOp& op = ops_[ev.a - 1];
  if (!op.open) return;
  trace_.note(
      clock_.now(), TraceKind::client, no_node,
      "op " + std::to_string(op.id) + " timed out" + (op.proposed ? " (outcome unknown)" : ""));
  finish(op);
}

inline void Cluster::finish(ClientOp& op) {
  op.open = false;
  Client& cl = clients_[op.client];
  cl.current.reset();
  if (clients_on_)
    schedule(client_rng_.between(0, sim_ms(15)),
             Event{Event::Kind::client_wake, no_node, op.client});
}

}  // namespace dengine::sim
