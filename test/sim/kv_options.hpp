#pragma once
/// What one run of `dengine-sim --machine kv` does: the cluster size and a fault mix, workload
/// and timing drawn from the seed, so that `dengine-sim --machine kv --seed S` replays exactly
/// what a batch run did.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "dengine/core/config.hpp"
#include "dengine/sim/clock.hpp"
#include "dengine/sim/random.hpp"

namespace dengine::sim::kvsim {

/// A bug the harness injects (without touching the engine) to prove that a check catches it.
enum class KvInjection : std::uint8_t {
  none,
  /// Every replica serves linearizable and lease reads from its own state (node::Driver::read
  /// hook; clients then read at any replica): caught by the linearizability check.
  stale_reads,
  /// The watch hub loses the events of some revisions (kv::WatchHub hook): caught by the watch
  /// check.
  skip_watch_event,
  /// The lessor answers some keep-alives and leaves the lease expiring at once, so the leader
  /// revokes a lease it has just kept alive (kv::Lessor::keep_alive hook): caught by the lease
  /// expiry check.
  early_revoke,
  /// The leader appends every copy of a forwarded proposal (raft::Core::handle_propose hook),
  /// so a write the network duplicated on its way from a follower is applied twice: caught by
  /// the KV history checks.
  forward_without_dedup,
  /// A follower answers keep-alives itself, as if the leader's lessor had refreshed the lease
  /// (engine::KvReplica::async_keep_alive hook): caught by the lease expiry check.
  keep_alive_unforwarded,
};

[[nodiscard]] constexpr const char* to_string(KvInjection i) noexcept {
  switch (i) {
    case KvInjection::none: return "none";
    case KvInjection::stale_reads: return "stale-reads";
    case KvInjection::skip_watch_event: return "skip-watch-event";
    case KvInjection::early_revoke: return "early-revoke";
    case KvInjection::forward_without_dedup: return "forward-without-dedup";
    case KvInjection::keep_alive_unforwarded: return "keep-alive-unforwarded";
  }
  return "?";
}

/// One run's parameters. Everything but `seed`, `nodes`, `verbose` and `inject` is drawn from
/// the seed.
struct KvSimOptions {
  std::uint64_t seed = 1;
  /// Founding voters (3 or 5).
  std::size_t nodes = 3;
  bool verbose = false;
  KvInjection inject = KvInjection::none;

  PersistenceMode persistence = PersistenceMode::disk_first;
  // Network faults, re-drawn within these bounds by "net" fault events.
  double drop_max = 0.0;
  double duplicate_max = 0.0;
  sim_duration delay_max = sim_ms(2);
  /// Damage in transit: the probability that a frame has a bit flipped, re-drawn in
  /// [0, corrupt_max) by "net" fault events (0: no draw).
  double corrupt_max = 0.0;
  // Relative weights of the fault scheduler's actions (0 disables one).
  unsigned w_net = 1;
  unsigned w_partition = 0;
  unsigned w_heal = 1;
  unsigned w_crash = 0;
  unsigned w_transfer = 0;
  /// Membership changes (--membership): add a new replica or a removed one back as a learner,
  /// promote a learner, remove a voter (never below `nodes` voters) or a learner.
  unsigned w_member = 0;
  /// Probability that a crash is a power loss (unsynced log data and the KV store are lost)
  /// rather than a process crash (the OS keeps both). Always 0 with MemFirst, which does not
  /// promise to survive a power loss of a majority.
  double power_loss = 0.0;
  /// Most replicas down at once: a minority, or (some seeds) every one — DiskFirst keeps what
  /// it acknowledged through a power loss of all; MemFirst through process crashes of all.
  std::size_t max_down = 1;
  /// Mean gap between fault events.
  sim_duration fault_every = sim_ms(200);
  /// Length of the fault phase (clients run, faults fire); healing and settling follow.
  sim_duration fault_phase = sim_s(6);
  /// Node snapshot threshold (0: never snapshot), so that some runs compact and install.
  std::size_t snapshot_threshold_bytes = 0;
  /// Watch hub bounds: small ones make watchers fall behind and re-watch.
  std::size_t watch_history = 10000;
  std::size_t watch_pending = 10000;
  /// How often the harness drains each watcher.
  sim_duration watch_drain_every = sim_ms(5);
  /// Virtual time of one log-writer batch.
  std::chrono::microseconds sync_latency{200};
  /// Virtual time of one applier pass: a slow applier delays completions, watch events and the
  /// leader-change notifications the lessor follows, behind the core's view of who leads.
  std::chrono::microseconds apply_latency{20};
  std::size_t clients = 4;
  std::size_t keys = 5;
};

/// The options seed `seed` runs with (`nodes` 0: 3 for even seeds, 5 for odd ones).
[[nodiscard]] inline KvSimOptions options_for_seed(std::uint64_t seed, std::size_t nodes = 0) {
  KvSimOptions o;
  o.seed = seed;
  o.nodes = nodes != 0 ? nodes : (seed % 2 == 0 ? 3 : 5);
  Rng r(mix_seed(seed, 0x6b76));  // "kv"
  o.persistence = r.chance(0.25) ? PersistenceMode::mem_first : PersistenceMode::disk_first;
  o.drop_max = r.unit() * 0.2;
  o.duplicate_max = r.unit() * 0.1;
  o.delay_max = r.between(sim_ms(1), sim_ms(20));
  o.w_net = 1 + static_cast<unsigned>(r.below(3));
  o.w_partition = static_cast<unsigned>(r.below(4));
  o.w_heal = 1 + static_cast<unsigned>(r.below(2));
  o.w_crash = static_cast<unsigned>(r.below(4));
  o.w_transfer = static_cast<unsigned>(r.below(3));
  o.power_loss = o.persistence == PersistenceMode::disk_first ? r.unit() : 0.0;
  o.max_down = r.chance(0.3) ? o.nodes : (o.nodes - 1) / 2;
  // A quarter of the seeds are harsh: faults every 30-100 ms.
  o.fault_every =
      r.chance(0.25) ? r.between(sim_ms(30), sim_ms(100)) : r.between(sim_ms(80), sim_ms(400));
  switch (r.below(4)) {
    case 0: o.snapshot_threshold_bytes = 0; break;
    case 1: o.snapshot_threshold_bytes = 512; break;
    case 2: o.snapshot_threshold_bytes = 2048; break;
    default: o.snapshot_threshold_bytes = 16384; break;
  }
  if (r.chance(0.3)) {
    o.watch_history = r.between(8, 64);
    o.watch_pending = o.watch_history + r.below(16);
    o.watch_drain_every = r.between(sim_ms(5), sim_ms(60));
  }
  o.sync_latency = std::chrono::microseconds(r.between(50, 3000));
  o.apply_latency = std::chrono::microseconds(r.chance(0.5) ? 20 : r.between(100, 8000));
  o.clients = 3 + r.below(3);
  o.keys = 3 + r.below(4);
  // Last, so that the draws above stay what they were before frames could be damaged.
  o.corrupt_max = r.chance(0.5) ? r.unit() * 0.02 : 0.0;
  return o;
}

}  // namespace dengine::sim::kvsim
