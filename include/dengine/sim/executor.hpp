#pragma once
/// The deterministic arrangement's executor: one event queue in virtual time (sim::EventQueue
/// ordered by (time, sequence)) and the virtual clock it advances. Every role of every node in
/// a simulated cluster runs as events here, on the thread that calls run_*(), so a run is a pure
/// function of its inputs and seeds.
///
/// SimClock is the Clock of the deterministic runtime (sim::Deterministic, deterministic.hpp);
/// it reads the executor's virtual time.

#include <chrono>
#include <cstdint>
#include <utility>

#include "dengine/node/clock.hpp"
#include "dengine/node/unique_function.hpp"
#include "dengine/sim/clock.hpp"

namespace dengine::sim {

/// A single-threaded executor in virtual time. Not thread-safe: one thread drives it.
class SimExecutor {
 public:
  using task = node::unique_function<void()>;

  /// The virtual time now, in microseconds.
  [[nodiscard]] sim_time now() const noexcept { return clock_.now(); }
  /// The virtual clock (e.g. for a sim::Network).
  [[nodiscard]] const sim::VirtualClock& clock() const noexcept { return clock_; }

  /// Runs `t` at the current time, after everything already scheduled for it.
  void post(task t) { queue_.push(clock_.now(), std::move(t)); }
  /// Runs `t` after `d` of virtual time.
  void post_after(std::chrono::microseconds d, task t) {
    queue_.push(clock_.now() + static_cast<sim::sim_duration>(d.count() < 0 ? 0 : d.count()),
                std::move(t));
  }
  /// Runs `t` at virtual time `at` (now, if `at` is in the past).
  void post_at(sim::sim_time at, task t) {
    queue_.push(at < clock_.now() ? clock_.now() : at, std::move(t));
  }

  /// Runs the next event (advancing the clock to its time), then the after-each hook. False
  /// when none is scheduled.
  bool run_one() {
    if (queue_.empty()) return false;
    auto ev = queue_.pop();
    clock_.advance_to(ev.time);
    ++executed_;
    ev.value();
    if (after_each_) after_each_();
    return true;
  }
  /// Runs `hook` after every event from now on (a simulator's invariant checks); empty: none.
  void after_each(node::unique_function<void()> hook) { after_each_ = std::move(hook); }
  /// Runs every event scheduled up to `t`, then moves the clock to `t`.
  void run_until(sim::sim_time t) {
    while (!queue_.empty() && queue_.next_time() <= t) run_one();
    if (t > clock_.now()) clock_.advance_to(t);
  }
  /// Runs for `d` of virtual time.
  void run_for(std::chrono::microseconds d) {
    run_until(clock_.now() + static_cast<sim::sim_duration>(d.count() < 0 ? 0 : d.count()));
  }
  /// Runs events until `done()` holds (checked before each event) or virtual time would pass
  /// `deadline`; returns done().
  template <class Pred>
  bool run_until(Pred done, sim::sim_time deadline) {
    while (!done()) {
      if (queue_.empty() || queue_.next_time() > deadline) {
        if (deadline > clock_.now()) clock_.advance_to(deadline);
        return done();
      }
      run_one();
    }
    return true;
  }

  /// Events run so far.
  [[nodiscard]] std::uint64_t executed() const noexcept { return executed_; }
  /// When the next event is due (sim_never when none is scheduled).
  [[nodiscard]] sim::sim_time next_time() const noexcept { return queue_.next_time(); }
  /// Events scheduled and not yet run.
  [[nodiscard]] std::size_t pending() const noexcept { return queue_.size(); }

 private:
  sim::VirtualClock clock_;
  sim::EventQueue<task> queue_;
  std::uint64_t executed_ = 0;
  node::unique_function<void()> after_each_;
};

/// One node's own view of time, for simulations whose nodes do not share a perfect clock: its
/// clock runs at its own rate (drift) and may jump forward; it never goes back. Local time is
/// `offset + virtual * nominal_tick / actual_tick`: a tick period of `nominal_tick` on the
/// node's clock lasts `actual_tick` of virtual time. The simulator owns it and may raise
/// `offset` (a forward jump) between events.
struct LocalTime {
  sim_duration offset = 0;
  sim_duration nominal_tick = 1;
  sim_duration actual_tick = 1;

  /// The local time at virtual time `t`.
  [[nodiscard]] sim_time at(sim_time t) const noexcept {
    return offset + t * nominal_tick / actual_tick;
  }
  /// How much virtual time passes while `d` passes on the local clock.
  [[nodiscard]] sim_duration to_virtual(sim_duration d) const noexcept {
    return d * actual_tick / nominal_tick;
  }
};

/// The virtual-time Clock: reads a SimExecutor's time, through a node's LocalTime when it has
/// one (timers armed through to_virtual() then run at the node's rate too).
struct SimClock {
  using duration = std::chrono::microseconds;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<SimClock, duration>;
  static constexpr bool is_steady = true;

  /// The executor whose time this clock reads (must outlive the clock's users).
  SimExecutor* executor = nullptr;
  /// The node's own time (must outlive the clock's users); null: the executor's time.
  const LocalTime* local = nullptr;

  [[nodiscard]] time_point now() const noexcept {
    const sim_time t = local != nullptr ? local->at(executor->now()) : executor->now();
    return time_point(duration(static_cast<rep>(t)));
  }
  /// The virtual time a timer of `d` on this clock waits.
  [[nodiscard]] std::chrono::microseconds to_virtual(std::chrono::microseconds d) const noexcept {
    if (local == nullptr || d.count() <= 0) return d;
    return std::chrono::microseconds(
        static_cast<rep>(local->to_virtual(static_cast<sim_duration>(d.count()))));
  }
};

/// **DeterministicClock** — a Clock that also names the SimExecutor every role runs on.
template <class C>
concept DeterministicClock = node::Clock<C> && requires(const C& c, std::chrono::microseconds d) {
  { c.executor } -> std::convertible_to<SimExecutor*>;
  { c.to_virtual(d) } -> std::same_as<std::chrono::microseconds>;
};

static_assert(DeterministicClock<SimClock>);
static_assert(!DeterministicClock<node::SteadyClock>);

}  // namespace dengine::sim
