#pragma once
/// Clients: a few concurrent clients doing writes and CAS (Node::propose) and linearizable reads
/// (Node::read: ReadIndex, possibly through a follower, and lease reads) on a few keys. Every
/// operation is recorded with its invoke and return times; a timeout leaves its outcome
/// unknown. Requests and answers cross the network with a delay of their own.
/// Part of Cluster (cluster.hpp).

#include <string>
#include <utility>

#include "cluster.hpp"

namespace dengine::sim {

inline void Cluster::client_wake(std::size_t c) {
  if (!clients_on_) return;
  Client& cl = clients_[c];
  ClientOp op;
  op.id = ops_.size() + 1;
  op.client = c;
  op.call = executor_.now();
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
      executor_.now(), TraceKind::client, target,
      "op " + std::to_string(o.id) + " from c" + std::to_string(c) + ": " +
          (o.kind == ClientOp::Kind::write ? "write " + o.key + "=" + o.value
           : o.kind == ClientOp::Kind::cas ? "cas " + o.key + " " + o.expected + "->" + o.value
           : o.kind == ClientOp::Kind::read_index ? "read(index) " + o.key
                                                  : "read(lease) " + o.key));
  schedule(op_timeout_, [this, id = o.id] { client_timeout(id); });
  schedule(client_rng_.between(sim_us(100), sim_ms(1)),
           [this, id = o.id, attempt = o.attempt, target] { client_arrive(id, attempt, target); });
}

inline NodeId Cluster::pick_target(Client& c) {
  if (c.leader_guess != no_node) return c.leader_guess;
  // A client knows the members' addresses, not who is up.
  std::vector<NodeId> known;
  for (const auto& n : nodes_)
    if (n->status == SimNode::Status::up || n->status == SimNode::Status::down)
      known.push_back(n->id);
  return known[client_rng_.below(known.size())];
}

inline void Cluster::retry(ClientOp& op, NodeId hint) {
  ++op.attempt;
  Client& cl = clients_[op.client];
  cl.leader_guess = hint;
  const NodeId target = pick_target(cl);
  schedule(
      client_rng_.between(sim_ms(2), sim_ms(10)),
      [this, id = op.id, attempt = op.attempt, target] { client_arrive(id, attempt, target); });
}

inline void Cluster::client_arrive(std::uint64_t op_id, std::uint64_t attempt, NodeId target) {
  ClientOp& op = ops_[op_id - 1];
  if (violation_ || !op.open || attempt != op.attempt) return;
  if (!clients_on_) {
    finish(op);  // not submitted: the run is healing; nothing took effect
    return;
  }
  SimNode& n = node(target);
  if (n.status != SimNode::Status::up) return retry(op, no_node);
  const NodeId from = n.id;
  if (op.kind == ClientOp::Kind::write || op.kind == ClientOp::Kind::cas) {
    const Command c{op.id,
                    op.kind == ClientOp::Kind::write ? Command::Kind::put : Command::Kind::cas,
                    op.key, op.value, op.expected};
    op.proposed = true;
    n.node->propose(encode(c), [this, op_id, attempt, from](const result<ApplyResult>& r) {
      if (r) return respond(op_id, attempt, from, lin::RegisterOutput{r.value().ok, {}});
      respond(op_id, attempt, from, r.error());
    });
    return;
  }
  const auto consistency = op.kind == ClientOp::Kind::read_index
                               ? node::ReadConsistency::linearizable
                               : node::ReadConsistency::lease;
  n.node->read(
      consistency, [key = op.key](const KvMachine& sm) { return sm.get(key); },
      [this, op_id, attempt, from](const result<std::string>& r) {
        if (r) return respond(op_id, attempt, from, lin::RegisterOutput{true, r.value()});
        respond(op_id, attempt, from, r.error());
      });
}

inline void Cluster::respond(std::uint64_t op_id, std::uint64_t attempt, NodeId from,
                             result<lin::RegisterOutput> out) {
  schedule(client_rng_.between(sim_us(100), sim_ms(1)),
           [this, op_id, attempt, from, out = std::move(out)] {
             client_response(op_id, attempt, from, out);
           });
}

inline void Cluster::client_response(std::uint64_t op_id, std::uint64_t attempt, NodeId from,
                                     const result<lin::RegisterOutput>& out) {
  ClientOp& op = ops_[op_id - 1];
  if (violation_ || !op.open || attempt != op.attempt) return;
  if (!out) {
    const error& e = out.error();
    trace_.note(executor_.now(), TraceKind::client, from,
                "op " + std::to_string(op.id) + ": " + e.message());
    // An answer that leaves the outcome open: the client waits (its timeout ends the
    // operation, outcome unknown). Any other failure is definite: try again.
    if (e == errc::outcome_unknown) return;
    return retry(op, e.leader_hint);
  }
  op.output = out.value();
  op.ret = executor_.now();
  clients_[op.client].leader_guess = from;
  if (op.kind == ClientOp::Kind::read_index || op.kind == ClientOp::Kind::lease_read) {
    last_seen_[op.key] = out.value().value;
  } else if (op.kind == ClientOp::Kind::write || out.value().ok) {
    last_seen_[op.key] = op.value;
  }
  trace_.note(executor_.now(), TraceKind::client, from,
              "op " + std::to_string(op.id) + " done" +
                  (op.kind == ClientOp::Kind::cas ? (out.value().ok ? ": swapped" : ": not swapped")
                   : op.kind == ClientOp::Kind::write ? ""
                                                      : ": read \"" + out.value().value + "\""));
  finish(op);
}

inline void Cluster::client_timeout(std::uint64_t op_id) {
  ClientOp& op = ops_[op_id - 1];
  if (!op.open) return;
  trace_.note(
      executor_.now(), TraceKind::client, no_node,
      "op " + std::to_string(op.id) + " timed out" + (op.proposed ? " (outcome unknown)" : ""));
  finish(op);
}

inline void Cluster::finish(ClientOp& op) {
  op.open = false;
  Client& cl = clients_[op.client];
  cl.current.reset();
  if (clients_on_)
    schedule(client_rng_.between(0, sim_ms(15)), [this, c = op.client] { client_wake(c); });
}

}  // namespace dengine::sim
