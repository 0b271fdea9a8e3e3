#pragma once
/// KvCluster: the client workload. Each client has one operation in flight at a time, issued
/// through LocalKvClient's asynchronous API, mostly at the replica it used last (a not_leader
/// hint redirects it; any other failure, and now and then nothing, makes it pick again at
/// random; writes at a follower are forwarded to the leader): linearizable and lease reads
/// (and serializable ones at any replica), puts, compare-and-swaps (LocalKvClient::cas_request +
/// async_txn) and deletes of a few register keys; lease grants, puts with a lease, client revokes;
/// and, on a timer of its own, keep-alives of the leases it means to keep. Part of KvCluster
/// (kv_cluster.hpp).

#include <algorithm>
#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "kv_cluster.hpp"

namespace dengine::sim::kvsim {

inline void KvCluster::client_later(ClientState& c, sim_duration after) {
  executor_.post_after(std::chrono::microseconds(after), [this, &c] {
    if (!stopping_) client_issue(c);
  });
}

inline NodeId KvCluster::pick_target(ClientState& c) {
  // Now and then a client moves to a replica at random: there its writes are forwarded to the
  // leader (NodeConfig::forward_proposals) and its linearizable reads confirmed through it.
  if (c.guess != no_node && member(c.guess).up() && !c.rng.chance(0.3)) return c.guess;
  std::vector<NodeId> up;
  for (auto& m : members_)
    if (m->up()) up.push_back(m->id);
  if (up.empty()) return no_node;
  c.guess = c.rng.pick(std::span<const NodeId>(up));
  return c.guess;
}

inline OpRecord& KvCluster::begin_op(ClientState& c, OpKind kind, NodeId node) {
  OpRecord op;
  op.id = ops_.size() + 1;
  op.client = c.id;
  op.kind = kind;
  op.node = node;
  op.call = now();
  ops_.push_back(std::move(op));
  c.in_flight = ops_.back().id;
  // Every request completes (with its outcome, or timeout/stopped) within the request timeout
  // plus a tick: a request that is never answered is a bug of its own.
  executor_.post_after(std::chrono::seconds(3), [this, &c, id = ops_.back().id] {
    OpRecord& o = ops_[id - 1];
    if (o.outcome != OpRecord::Outcome::pending || stopping_) return;
    violation("completion", "c" + std::to_string(c.id) + " op " + std::to_string(id) + " (" +
                                to_string(o.kind) + " at n" + std::to_string(o.node) +
                                ") was never completed");
    fail_op(c, o, error(errc::timeout, "no completion (harness)"));
  });
  return ops_.back();
}

template <class Response, class More>
auto KvCluster::on_done(ClientState& c, const OpRecord& op, More more) {
  return [this, &c, oid = op.id, more = std::move(more)](result<Response> r) mutable {
    OpRecord& o = ops_[oid - 1];
    if (o.outcome != OpRecord::Outcome::pending) return;  // the harness gave up on it (timed out)
    if (!r) return fail_op(c, o, r.error());
    o.outcome = OpRecord::Outcome::ok;
    o.revision = r.value().header.revision;
    more(o, r.value());
    finish_op(c, o);
  };
}

inline void KvCluster::finish_op(ClientState& c, OpRecord& op) {
  op.ret = now();
  c.in_flight = 0;
  if (op.outcome == OpRecord::Outcome::ok) ++result_.ops_ok;
  if (op.outcome == OpRecord::Outcome::unknown) ++result_.ops_unknown;
  std::string s = "c" + std::to_string(c.id) + " " + to_string(op.kind) + " " + op.key;
  if (op.kind == OpKind::put || op.kind == OpKind::lease_put) s += "=" + op.value;
  if (op.kind == OpKind::cas)
    s += " " + op.expected.value_or("<absent>") + "->" + op.value + (op.cas_ok ? " ok" : " fail");
  if (op.kind == OpKind::read)
    s += std::string(" (") + std::string(node::to_string(op.consistency)) + ") -> \"" +
         op.read_value + "\"";
  if (op.lease != kv::no_lease) s += " lease " + std::to_string(op.lease);
  if (op.outcome == OpRecord::Outcome::ok)
    s += " rev " + std::to_string(op.revision);
  else
    s += std::string(op.outcome == OpRecord::Outcome::failed ? " FAILED " : " UNKNOWN ") + op.error;
  note(TraceKind::client, op.node, s);
  client_later(c, c.rng.between(sim_ms(1), sim_ms(25)));
}

inline void KvCluster::fail_op(ClientState& c, OpRecord& op, const error& e) {
  op.error = e.message();
  // Refused before it reached the log, or failed identically on every replica when applied:
  // no effect. `stopped` is definite too: a write whose entry may be in a log is answered
  // outcome_unknown instead (docs/embedded.md, Errors) — which the checks then hold the
  // engine to. Anything else (outcome_unknown, the harness's own timeout) may or may not have
  // taken effect.
  const bool no_effect = e == errc::not_leader || e == errc::too_busy ||
                         e == errc::proposal_dropped || e == errc::invalid_argument ||
                         e == errc::too_large || e == errc::not_found || e == errc::stopped;
  op.outcome =
      op.kind == OpKind::read || no_effect ? OpRecord::Outcome::failed : OpRecord::Outcome::unknown;
  c.guess = e == errc::not_leader ? e.leader_hint : no_node;
  finish_op(c, op);
}

inline void KvCluster::client_issue(ClientState& c) {
  if (!clients_on_ || c.in_flight != 0) return;
  const NodeId target = pick_target(c);
  if (target == no_node) return client_later(c, sim_ms(10));
  Client client(*member(target).replica);

  // A lease just granted: put a key with it.
  kv::LeaseId lease_for_put = std::exchange(c.put_next, kv::no_lease);
  const std::uint64_t roll = c.rng.below(100);
  if (lease_for_put == kv::no_lease && roll >= 85) {
    // A lease operation: revoke one planned for it, grant one, or put one more key.
    std::size_t active = 0;
    for (kv::LeaseId id : c.leases) {
      LeaseRecord& l = leases_.at(id);
      if (l.plan == LeasePlan::revoke && !l.revoke_sent && now() > l.granted_at + sim_ms(300)) {
        l.revoke_sent = true;
        OpRecord& op = begin_op(c, OpKind::lease_revoke, target);
        op.lease = id;
        client.async_lease_revoke(kv::LeaseRevokeRequest{id},
                                  on_done<kv::LeaseRevokeResponse>(c, op));
        return;
      }
      const bool live =
          !l.revoke_sent && !l.gone &&
          (l.plan == LeasePlan::keep ? now() < l.keep_until : now() < l.granted_at + sim_s(1));
      active += live ? 1 : 0;
      if (live && c.rng.chance(0.5)) lease_for_put = id;
    }
    if (lease_for_put == kv::no_lease && active < 2) {
      OpRecord& op = begin_op(c, OpKind::lease_grant, target);
      op.ttl = static_cast<std::int64_t>(c.rng.between(1, 3));
      const auto plan_roll = c.rng.below(10);
      const LeasePlan plan = plan_roll < 3   ? LeasePlan::lapse
                             : plan_roll < 8 ? LeasePlan::keep
                                             : LeasePlan::revoke;
      const sim_duration keep_for = c.rng.between(sim_ms(500), sim_s(4));
      client.async_lease_grant(
          kv::LeaseGrantRequest{op.ttl, kv::no_lease},
          on_done<kv::LeaseGrantResponse>(
              c, op, [this, &c, plan, keep_for](OpRecord& o, const kv::LeaseGrantResponse& r) {
                o.lease = r.id;
                o.ttl = r.ttl;
                LeaseRecord l;
                l.id = o.lease;
                l.client = c.id;
                l.ttl = o.ttl;
                l.plan = plan;
                l.granted_at = now();
                l.keep_until = now() + keep_for;
                if (!leases_.emplace(l.id, l).second)
                  violation("leases", "lease " + std::to_string(l.id) + " granted twice");
                ++result_.leases;
                c.leases.push_back(o.lease);
                c.put_next = o.lease;
              }));
      return;
    }
    if (lease_for_put == kv::no_lease) return client_later(c, sim_ms(5));
  }

  if (lease_for_put != kv::no_lease) {
    LeaseRecord& l = leases_.at(lease_for_put);
    OpRecord& op = begin_op(c, OpKind::lease_put, target);
    op.lease = l.id;
    op.key = "lease/" + std::to_string(l.id) + "/" + std::to_string(l.keys.size());
    op.value = "c" + std::to_string(c.id) + "." + std::to_string(++c.seq);
    l.keys.push_back(op.key);
    lease_keys_.push_back(op.key);
    kv::PutRequest req;
    req.key = op.key;
    req.value = op.value;
    req.lease = l.id;
    client.async_put(std::move(req), on_done<kv::PutResponse>(c, op));
    return;
  }

  // A register operation on one of a few keys. Values are never empty, so the register's
  // initial "" stands for an absent key and a delete writes "".
  std::string key = "reg/" + std::to_string(c.rng.below(opt_.keys));
  const std::string value = "c" + std::to_string(c.id) + "." + std::to_string(++c.seq);
  if (roll < 30) {
    // Some reads are of a key under a lease (any client's): a key whose lease expired may
    // vanish, once, and must not come back (checks/kv_linearizable.hpp models the expiry as a
    // delete).
    if (!lease_keys_.empty() && c.rng.chance(0.3))
      key = lease_keys_[c.rng.below(lease_keys_.size())];
    OpRecord& op = begin_op(c, OpKind::read, target);
    op.key = key;
    kv::RangeRequest req;
    req.key = key;
    // Lease reads (served by the leader from its state while its lease holds, on the caller's
    // thread when the state has reached the lease's index) must be linearizable too.
    auto consistency =
        c.rng.chance(0.3) ? engine::ReadConsistency::lease : engine::ReadConsistency::linearizable;
    op.consistency = consistency;
    // Some reads are serializable, at any replica: not linearizable, but each must be the
    // state of the revision it names (check_reads). With the stale-reads bug on (a hook in
    // node::Driver::read), reads go to any replica and every replica serves them from its own
    // state while they claim to be linearizable.
    const bool injected = opt_.inject == KvInjection::stale_reads;
    if (injected || c.rng.chance(0.15)) {
      if (!injected) op.consistency = consistency = engine::ReadConsistency::serializable;
      std::vector<NodeId> up;
      for (auto& m : members_)
        if (m->up()) up.push_back(m->id);
      op.node = c.rng.pick(std::span<const NodeId>(up));
      client = Client(*member(op.node).replica);
    }
    client.async_range(
        std::move(req), consistency,
        on_done<kv::RangeResponse>(c, op, [&c](OpRecord& o, const kv::RangeResponse& r) {
          o.read_value = r.kvs.empty() ? "" : r.kvs.front().value;
          c.last_seen[o.key] = o.read_value;
        }));
  } else if (roll < 55) {
    OpRecord& op = begin_op(c, OpKind::put, target);
    op.key = key;
    op.value = value;
    kv::PutRequest req;
    req.key = key;
    req.value = value;
    client.async_put(std::move(req),
                     on_done<kv::PutResponse>(c, op, [&c](OpRecord& o, const kv::PutResponse&) {
                       c.last_seen[o.key] = o.value;
                     }));
  } else if (roll < 80) {
    OpRecord& op = begin_op(c, OpKind::cas, target);
    op.key = key;
    op.value = value;
    auto seen = c.last_seen.find(key);
    if (seen != c.last_seen.end() && !seen->second.empty() && !c.rng.chance(0.2))
      op.expected = seen->second;
    client.async_txn(Client::cas_request(key, op.expected, value),
                     engine::ReadConsistency::linearizable,
                     on_done<kv::TxnResponse>(c, op, [&c](OpRecord& o, const kv::TxnResponse& r) {
                       o.cas_ok = r.succeeded;
                       if (o.cas_ok) c.last_seen[o.key] = o.value;
                     }));
  } else {
    OpRecord& op = begin_op(c, OpKind::del, target);
    op.key = key;
    kv::DeleteRangeRequest req;
    req.key = key;
    client.async_delete_range(std::move(req),
                              on_done<kv::DeleteRangeResponse>(
                                  c, op, [&c](OpRecord& o, const kv::DeleteRangeResponse& r) {
                                    o.deleted = r.deleted;
                                    c.last_seen[o.key] = "";
                                  }));
  }
}

inline void KvCluster::keep_alive_tick(ClientState& c) {
  if (stopping_) return;
  if (clients_on_) {
    for (kv::LeaseId id : c.leases) {
      LeaseRecord& l = leases_.at(id);
      if (l.plan != LeasePlan::keep || l.gone || now() >= l.keep_until) continue;
      const NodeId target = pick_target(c);
      if (target == no_node) break;
      // At a follower the keep-alive goes to the leader's lessor (a leader call). The record
      // keeps the time it was sent (the lessor refreshed the lease at or after it) and the
      // lessor that answered: the check holds that lessor to a full TTL from then.
      const sim_time sent = now();
      member(target).replica->async_keep_alive(
          id, [this, &c, id, target, sent](result<engine::KeepAliveAnswer> r) {
            if (r) {
              keep_alives_.push_back(KeepAlive{id, sent, r.value().leader, r.value().lessor_term});
              ++result_.keep_alives;
              if (r.value().leader != target) ++result_.keep_alives_forwarded;
            } else if (r.error() == errc::not_leader) {
              c.guess = r.error().leader_hint;
            } else {
              if (r.error() == errc::not_found) leases_.at(id).gone = true;
              note(TraceKind::client, target,
                   "c" + std::to_string(c.id) + " keep-alive of lease " + std::to_string(id) +
                       ": " + r.error().message());
            }
          });
    }
  }
  executor_.post_after(std::chrono::microseconds(c.rng.between(sim_ms(30), sim_ms(200))),
                       [this, &c] { keep_alive_tick(c); });
}

inline bool KvCluster::live_write(sim_time deadline) {
  std::uint64_t attempt = 0;
  ClientState& c = *clients_.front();
  while (now() < deadline) {
    const NodeId target = pick_target(c);
    if (target == no_node) {
      executor_.run_for(std::chrono::milliseconds(10));
      continue;
    }
    // Only the outcome is kept (not the response): what the handler needs to say.
    struct Outcome {
      bool done = false;
      bool ok = false;
      bool not_leader = false;
      NodeId hint = no_node;
    };
    auto out = std::make_shared<Outcome>();
    kv::PutRequest req;
    req.key = "live";
    req.value = std::to_string(++attempt);
    Client(*member(target).replica)
        .async_put(std::move(req), [out](const result<kv::PutResponse>& r) {
          out->done = true;
          out->ok = r.has_value();
          if (!r) {
            out->not_leader = r.error() == errc::not_leader;
            out->hint = r.error().leader_hint;
          }
        });
    executor_.run_until([&] { return out->done; }, std::min(deadline, now() + sim_ms(1500)));
    if (out->ok) {
      note(TraceKind::client, target, "liveness write committed");
      return true;
    }
    c.guess = out->not_leader ? out->hint : no_node;
    executor_.run_for(std::chrono::milliseconds(10));
  }
  return false;
}

}  // namespace dengine::sim::kvsim
