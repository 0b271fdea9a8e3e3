#pragma once
/// A simulated network for any message type: per-message loss, delay (which also reorders),
/// duplication, damage in transit, partitions (symmetric and one-way, as sets of blocked
/// directed links) and node isolation — all driven by seeded generators, so a run is a pure
/// function of its seed.
///
/// The network owns the messages in flight. A driver loop merges `next_delivery_time()` with its
/// own events, advances the shared VirtualClock, and calls `pop_due()` to receive what arrived.

#include <algorithm>
#include <cstdint>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "dengine/core/types.hpp"
#include "dengine/sim/clock.hpp"
#include "dengine/sim/random.hpp"

namespace dengine::sim {

/// What the network does to each message. Probabilities are per message and independent.
struct NetworkFaults {
  /// Probability that a message is lost.
  double drop = 0.0;
  /// Probability that a message is delivered twice (the copy gets its own delay, so it may
  /// arrive first).
  double duplicate = 0.0;
  /// Each copy's delay is uniform in [min_delay, max_delay]; messages overtake each other when
  /// their delays differ, which is how reordering happens.
  sim_duration min_delay = sim_us(100);
  sim_duration max_delay = sim_ms(2);
  /// Probability of a long delay instead, uniform in (max_delay, spike_delay] (a stalled
  /// connection, a GC pause on the path). Ignored when spike_delay <= max_delay.
  double spike = 0.0;
  sim_duration spike_delay = 0;
  /// Probability that a copy is damaged in transit. The network only marks the copy
  /// (Envelope::damage); what damage means is the receiver's business (SimNetwork flips one bit
  /// of the frame). Drawn from a generator of its own, so turning it on leaves every other draw
  /// of a seed where it was.
  double corrupt = 0.0;
};

/// What happened to a message at send time.
enum class SendFate : std::uint8_t {
  queued,           ///< in flight (one or two copies)
  dropped_random,   ///< lost by the drop probability
  dropped_blocked,  ///< the link from -> to is blocked (partition or isolation)
};

/// A message in flight, with its routing and timing.
template <class M>
struct Envelope {
  /// Unique per send() (a duplicate copy shares its original's id).
  std::uint64_t id = 0;
  NodeId from = no_node;
  NodeId to = no_node;
  sim_time sent_at = 0;
  sim_time deliver_at = 0;
  /// True for the extra copy made by duplication.
  bool duplicate = false;
  M message;
  /// Set when this copy is damaged in transit: a random value the receiver turns into the
  /// damage (each copy draws its own, so a duplicate may arrive intact).
  std::optional<std::uint64_t> damage{};
};

/// What send() did, for tracing.
struct SendReport {
  std::uint64_t id = 0;
  SendFate fate = SendFate::queued;
  /// Copies put in flight: 0, 1 or 2.
  unsigned copies = 0;
  /// Arrival time of the first copy (sim_never when none).
  sim_time first_arrival = sim_never;
  /// Copies damaged in transit (<= copies).
  unsigned damaged = 0;
};

/// A message whose arrival time came. `deliver` is false when its link was cut while it was in
/// flight (a partition started): the driver must treat it as lost.
template <class M>
struct Arrival {
  Envelope<M> envelope;
  bool deliver = true;
};

/// Counters over the network's lifetime.
struct NetworkStats {
  std::uint64_t sent = 0;
  std::uint64_t delivered = 0;
  std::uint64_t dropped_random = 0;
  std::uint64_t dropped_blocked = 0;
  std::uint64_t duplicated = 0;
  /// Copies damaged in transit (each counts, whether or not it arrives).
  std::uint64_t damaged = 0;
};

/// The simulated network. M must be copyable (duplication copies it).
/// Invariant: every message put in flight is returned by pop_due() exactly once per copy, at
/// its deliver_at time, in (deliver_at, send order) order.
template <class M>
class Network {
 public:
  /// A network reading time from `clock` (which must outlive it), randomized by `seed`.
  Network(const VirtualClock& clock, std::uint64_t seed, NetworkFaults faults = {})
      : clock_(&clock), rng_(seed), damage_rng_(mix_seed(seed, 0x64616d)), faults_(faults) {}

  /// Replaces the fault settings (affects messages sent from now on).
  void set_faults(const NetworkFaults& faults) noexcept { faults_ = faults; }
  /// The current fault settings.
  [[nodiscard]] const NetworkFaults& faults() const noexcept { return faults_; }

  /// Sends `message` from `from` to `to` at the clock's current time. `extra_delay` is added
  /// to the drawn delay (e.g. to slow down one kind of message).
  SendReport send(NodeId from, NodeId to, M message, sim_duration extra_delay = 0) {
    SendReport report;
    report.id = next_id_++;
    ++stats_.sent;
    if (blocked(from, to)) {
      ++stats_.dropped_blocked;
      report.fate = SendFate::dropped_blocked;
      return report;
    }
    if (rng_.chance(faults_.drop)) {
      ++stats_.dropped_random;
      report.fate = SendFate::dropped_random;
      return report;
    }
    const bool twice = rng_.chance(faults_.duplicate);
    const sim_time now = clock_->now();
    Envelope<M> env{report.id, from, to, now, now + draw_delay() + extra_delay, false, {}, {}};
    report.first_arrival = env.deliver_at;
    report.copies = 1;
    if (twice) {
      Envelope<M> copy = env;
      copy.message = message;
      copy.duplicate = true;
      copy.deliver_at = now + draw_delay() + extra_delay;
      report.first_arrival = std::min(report.first_arrival, copy.deliver_at);
      report.copies = 2;
      ++stats_.duplicated;
      draw_damage(copy, report);
      const sim_time at = copy.deliver_at;
      in_flight_.push(at, std::move(copy));
    }
    env.message = std::move(message);
    draw_damage(env, report);
    const sim_time at = env.deliver_at;
    in_flight_.push(at, std::move(env));
    return report;
  }

  /// True when some message is in flight.
  [[nodiscard]] bool has_in_flight() const noexcept { return !in_flight_.empty(); }
  /// Messages (copies) in flight.
  [[nodiscard]] std::size_t in_flight() const noexcept { return in_flight_.size(); }
  /// Arrival time of the next message, or sim_never.
  [[nodiscard]] sim_time next_delivery_time() const noexcept { return in_flight_.next_time(); }

  /// The next message due at or before the clock's time, or nullopt. A message whose link is
  /// blocked at arrival comes back with deliver = false (and counts as dropped_blocked).
  std::optional<Arrival<M>> pop_due() {
    if (in_flight_.empty() || in_flight_.next_time() > clock_->now()) return std::nullopt;
    Arrival<M> a{in_flight_.pop().value, true};
    if (blocked(a.envelope.from, a.envelope.to)) {
      a.deliver = false;
      ++stats_.dropped_blocked;
    } else {
      ++stats_.delivered;
    }
    return a;
  }

  /// Discards every in-flight message matching `pred(const Envelope<M>&)`; returns how many
  /// (e.g. everything addressed to a node whose process was replaced).
  template <class Pred>
  std::size_t discard_if(Pred pred) {
    return in_flight_.erase_if(pred);
  }

  // --- Partitions. A link is blocked if it is in the blocked set or either end is isolated. ---

  /// Blocks the directed link from -> to (a one-way partition).
  void block(NodeId from, NodeId to) { links_.insert({from, to}); }
  /// Unblocks the directed link from -> to.
  void unblock(NodeId from, NodeId to) { links_.erase({from, to}); }
  /// Blocks both directions between a and b.
  void block_both(NodeId a, NodeId b) {
    block(a, b);
    block(b, a);
  }
  /// Symmetric partition: blocks every link between nodes of different groups. Nodes that are in
  /// no group keep their links.
  void partition(const std::vector<std::vector<NodeId>>& groups) {
    for (std::size_t g = 0; g < groups.size(); ++g)
      for (std::size_t h = 0; h < groups.size(); ++h)
        if (g != h)
          for (NodeId a : groups[g])
            for (NodeId b : groups[h]) block(a, b);
  }
  /// One-way partition: messages from any node of `from` to any node of `to` are lost; the other
  /// direction still works.
  void partition_one_way(const std::vector<NodeId>& from, const std::vector<NodeId>& to) {
    for (NodeId a : from)
      for (NodeId b : to)
        if (a != b) block(a, b);
  }
  /// Cuts every link to and from `node`.
  void isolate(NodeId node) { isolated_.insert(node); }
  /// Undoes isolate(node) (links blocked individually stay blocked).
  void rejoin(NodeId node) { isolated_.erase(node); }
  /// Removes every partition and isolation.
  void heal() {
    links_.clear();
    isolated_.clear();
  }
  /// True when messages from -> to are lost.
  [[nodiscard]] bool blocked(NodeId from, NodeId to) const {
    return isolated_.contains(from) || isolated_.contains(to) || links_.contains({from, to});
  }
  /// True when any link is blocked or any node isolated.
  [[nodiscard]] bool partitioned() const noexcept { return !links_.empty() || !isolated_.empty(); }
  /// The blocked directed links (sorted), for traces.
  [[nodiscard]] const std::set<std::pair<NodeId, NodeId>>& blocked_links() const noexcept {
    return links_;
  }
  /// The isolated nodes (sorted), for traces.
  [[nodiscard]] const std::set<NodeId>& isolated_nodes() const noexcept { return isolated_; }

  /// Lifetime counters.
  [[nodiscard]] const NetworkStats& stats() const noexcept { return stats_; }

 private:
  sim_duration draw_delay() {
    const NetworkFaults& f = faults_;
    if (f.spike_delay > f.max_delay && rng_.chance(f.spike))
      return rng_.between(f.max_delay + 1, f.spike_delay);
    if (f.max_delay <= f.min_delay) return f.min_delay;
    return rng_.between(f.min_delay, f.max_delay);
  }

  void draw_damage(Envelope<M>& env, SendReport& report) {
    if (!damage_rng_.chance(faults_.corrupt)) return;
    env.damage = damage_rng_.next();
    ++report.damaged;
    ++stats_.damaged;
  }

  const VirtualClock* clock_;
  Rng rng_;
  /// Damage only: its draws never shift rng_'s, so a seed's drops and delays stay put.
  Rng damage_rng_;
  NetworkFaults faults_;
  EventQueue<Envelope<M>> in_flight_;
  std::set<std::pair<NodeId, NodeId>> links_;
  std::set<NodeId> isolated_;
  std::uint64_t next_id_ = 1;
  NetworkStats stats_;
};

}  // namespace dengine::sim
