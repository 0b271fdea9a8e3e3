#pragma once
/// The Clock a Node reads time from: request deadlines, latency metrics, tick scheduling.
/// SteadyClock (std::chrono::steady_clock) selects the threaded arrangement; a clock that also
/// models DeterministicClock (sim_executor.hpp: virtual time driving one event queue) selects the
/// deterministic arrangement, so the whole runtime runs reproducibly under a simulator.

#include <chrono>
#include <concepts>

namespace dengine::node {

/// **Clock** — monotonic time: now() never decreases. Durations are std::chrono durations, so
/// a NodeConfig's timeouts (std::chrono::microseconds) add to a time_point of any clock.
template <class C>
concept Clock = std::copy_constructible<C> && requires(const C& c) {
  typename C::time_point;
  typename C::duration;
  { c.now() } -> std::same_as<typename C::time_point>;
  requires requires(typename C::time_point t, typename C::time_point u,
                    std::chrono::microseconds d) {
    { t + d } -> std::convertible_to<typename C::time_point>;
    { t - u } -> std::convertible_to<typename C::duration>;
    { t < u } -> std::convertible_to<bool>;
  };
};

/// The production clock: std::chrono::steady_clock (monotonic, unaffected by wall-clock changes).
struct SteadyClock {
  using time_point = std::chrono::steady_clock::time_point;
  using duration = std::chrono::steady_clock::duration;
  /// The current steady time (any thread).
  [[nodiscard]] time_point now() const noexcept { return std::chrono::steady_clock::now(); }
};

static_assert(Clock<SteadyClock>);

}  // namespace dengine::node
