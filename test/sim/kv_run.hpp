#pragma once
/// KvCluster::run: the phases of one run. Faults and clients for opt_.fault_phase of virtual
/// time; then the heal (network whole, every replica restarted) and the liveness checks, each
/// bounded in virtual time: a write commits, every client request completes, every lease
/// expires, the replicas converge; then the checks (kv_checks.hpp). Part of KvCluster.

#include <chrono>
#include <string>

#include "kv_checks.hpp"
#include "kv_clients.hpp"
#include "kv_cluster.hpp"
#include "kv_cluster_nodes.hpp"

namespace dengine::sim::kvsim {

inline void KvCluster::drain_tick() {
  if (stopping_) return;
  drain_watches();
  executor_.post_after(std::chrono::microseconds(opt_.watch_drain_every), [this] { drain_tick(); });
}

inline KvRunResult KvCluster::run() {
  executor_.after_each([this] { check_lease_overlap(); });
  for (auto& m : members_) open(*m);
  executor_.post_after(std::chrono::microseconds(opt_.fault_every), [this] { fault_event(); });
  for (auto& c : clients_) {
    client_later(*c, c->rng.between(sim_ms(1), sim_ms(20)));
    ClientState* cp = c.get();
    executor_.post_after(std::chrono::milliseconds(50), [this, cp] { keep_alive_tick(*cp); });
  }
  executor_.post_after(std::chrono::microseconds(opt_.watch_drain_every), [this] { drain_tick(); });

  executor_.run_until(opt_.fault_phase);

  // Heal. Clients stop issuing (their requests in flight complete) and stop keeping leases
  // alive, so that every lease must expire.
  clients_on_ = false;
  heal();
  heal_at_ = now();
  if (!live_write(heal_at_ + sim_s(10)))
    violation("liveness", "no write committed within 10 s (virtual) after the heal");

  auto idle = [this] {
    for (const auto& c : clients_)
      if (c->in_flight != 0) return false;
    return true;
  };
  if (!executor_.run_until(idle, now() + sim_s(5)))
    violation("liveness", "client requests still pending 5 s after the heal");

  auto no_leases = [this] {
    for (auto& m : members_)
      if (!m->up() || !m->replica->machine().lease_leases().leases.empty()) return false;
    return true;
  };
  if (!executor_.run_until(no_leases, heal_at_ + sim_s(20))) {
    std::string left;
    for (auto& m : members_)
      if (m->up())
        for (const kv::LeaseStatus& l : m->replica->machine().lease_leases().leases)
          left += " n" + std::to_string(m->id) + ":" + std::to_string(l.id);
    violation("lease expiry", "leases left 20 s (virtual) after the heal:" + left);
  }

  // Converged: one leader every replica knows, everything committed applied everywhere.
  auto converged = [this] {
    Member* l = leader();
    if (l == nullptr || !all_in_config()) return false;
    const node::NodeStatus ls = l->replica->node().status();
    for (auto& m : members_) {
      if (!m->up()) return false;
      const node::NodeStatus s = m->replica->node().status();
      if (s.leader != l->id || s.applied != ls.commit || s.commit != ls.commit) return false;
    }
    return true;
  };
  if (!executor_.run_until(converged, now() + sim_s(10)))
    violation("liveness", "replicas did not converge within 10 s (virtual)");
  drain_watches();
  for (auto& m : members_)
    if (m->up()) end_watch(*m, m->replica->machine().watch_hub().current_revision());

  check_all();

  result_.events = executor_.executed();
  result_.frames = net_.stats().frames;
  result_.frames_damaged = net_.net().stats().damaged;
  result_.frames_refused = net_.stats().refused;
  result_.end_time = now();
  stopping_ = true;
  for (auto& m : members_) {
    m->watch.reset();
    if (m->replica) {
      if (auto r = m->replica->stop(); !r)
        violation("stop", "n" + std::to_string(m->id) + ": " + r.error().message());
      result_.forwarded += m->replica->node().node_metrics().proposals_forwarded.value();
    }
  }
  executor_.after_each({});
  result_.trace = trace_.lines();
  return result_;
}

}  // namespace dengine::sim::kvsim
