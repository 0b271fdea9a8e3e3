#pragma once
/// KvCluster: what it feeds the KV checks (test/sim/checks/kv_*.hpp, one invariant per file)
/// after the scenario — the recorded histories and the replicas' final states — and the lease
/// overlap check it runs after every event (checks/lease_overlap.hpp). Part of KvCluster
/// (kv_cluster.hpp).
///
///  1. linearizability of each key's history (kv_linearizable.hpp);
///  1b. every read answered what the history holds at its revision (kv_reads.hpp);
///  2. replicas agree (kv_replicas_agree.hpp), no acknowledged write lost (kv_acknowledged.hpp);
///  3. watches complete and in order (kv_watches.hpp);
///  4. leases: none left, each one's keys deleted once, together (kv_leases.hpp), none expired
///     before a full TTL without a keep-alive at the lessor that decided it (kv_keep_alives.hpp);
///  5. liveness (checked while running, kv_run.hpp): after the heal a write commits, every
///     lease expires and the replicas converge within bounded virtual time.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "checks/kv_acknowledged.hpp"
#include "checks/kv_history.hpp"
#include "checks/kv_keep_alives.hpp"
#include "checks/kv_leases.hpp"
#include "checks/kv_linearizable.hpp"
#include "checks/kv_reads.hpp"
#include "checks/kv_replicas_agree.hpp"
#include "checks/kv_watches.hpp"
#include "checks/lease_overlap.hpp"
#include "kv_cluster.hpp"

namespace dengine::sim::kvsim {

/// Every key and value of a replica's KV store (the MVCC keyspace: all revisions, leases, meta).
inline std::vector<std::pair<std::string, std::string>> store_image(const memory::KvStore& store) {
  std::vector<std::pair<std::string, std::string>> out;
  (void)store.scan("", "", [&](std::string_view k, std::string_view v) {
    out.emplace_back(std::string(k), std::string(v));
    return true;
  });
  return out;
}

inline void KvCluster::check_lease_overlap() {
  if (lease_overlap_seen_) return;
  std::vector<checks::LeaseView> views;
  for (const auto& m : members_) {
    if (!m->up()) continue;
    const raft::Core& c = m->replica->node().core();
    views.push_back({m->id, c.term(), c.role() == raft::Role::leader,
                     m->replica->node().lease_read_index().has_value(), c.lease_ticks_left(),
                     c.commit_index(), false});
  }
  if (auto v = checks::check_lease_overlap(views)) {
    lease_overlap_seen_ = true;
    violation(v->invariant, v->detail);
  }
}

inline void KvCluster::check_all() {
  for (auto& m : members_) {
    if (!m->up()) {
      violation("replicas agree", "n" + std::to_string(m->id) + " is down at the end");
      return;
    }
  }
  // Replicas whose stores hold the same bytes have the same history: rebuild it (a range at
  // each revision) once, and for a replica that differs, to say where.
  std::vector<checks::KvHistory> histories;
  histories.reserve(members_.size());
  std::vector<checks::ReplicaEnd> ends;
  std::vector<checks::LeasesLeft> leases_left;
  const auto image = store_image(*members_.front()->store);
  for (std::size_t i = 0; i < members_.size(); ++i) {
    const Member& m = *members_[i];
    const auto& machine = m.replica->machine();
    const checks::KvHistory* history = histories.empty() ? nullptr : &histories.front();
    if (i == 0 || store_image(*m.store) != image) {
      auto h = checks::kv_history_of(machine);
      if (!h) {
        violation("replicas agree",
                  "n" + std::to_string(m.id) + ": reading the history: " + h.error().message());
        return;
      }
      histories.push_back(std::move(h).value());  // reserved: earlier pointers stay valid
      history = &histories.back();
    }
    ends.push_back({m.id, machine.current_revision(), machine.lease_leases().leases, history});
    kv::RangeRequest req;
    req.key = "lease/";
    req.range_end = engine::prefix_range_end("lease/");
    auto left = machine.range(req);
    leases_left.push_back({m.id, machine.lease_leases().leases,
                           !left                      ? left.error().message()
                           : left.value().kvs.empty() ? std::string()
                                                      : left.value().kvs.front().key});
  }
  const checks::KvHistory& history = histories.front();
  result_.final_revision = ends.front().revision;
  auto report = [this](std::vector<Violation> found) {
    for (Violation& v : found) violation(std::move(v.invariant), std::move(v.detail));
  };
  report(checks::check_replicas_agree(ends));
  checks::KvLinearizability lin = checks::check_kv_linearizable(ops_);
  result_.lin_unknown = result_.lin_unknown || lin.unknown;
  if (lin.violation) {
    violation(lin.violation->invariant, lin.violation->detail);
    result_.details.insert(result_.details.end(), lin.details.begin(), lin.details.end());
  }
  report(checks::check_acknowledged(ops_, history));
  report(checks::check_reads(ops_, history));
  report(checks::check_watches(segments_, history));
  report(checks::check_leases_gone(leases_left));
  checks::LeaseKeysVerdict keys = checks::check_lease_keys(leases_, history);
  report(std::move(keys.violations));
  result_.lease_expiries += keys.expiries;
  report(checks::check_keep_alives({revokes_, roles_, keep_alives_, &leases_}));
}

}  // namespace dengine::sim::kvsim
