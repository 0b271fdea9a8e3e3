#pragma once
/// Reconnect back-off: exponential, bounded, with jitter. After the n-th failure in a row the
/// wait is drawn uniformly from [d/2, d], d = min(initial * 2^n, max): waits grow while a peer
/// stays down, never past `max`, and peers that lost the same node do not retry in lockstep.
/// The random source is a seeded engine, so a test fixes the sequence by fixing the seed.

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>
#include <string>

#include "dengine/core/error.hpp"

namespace dengine::net {

struct BackoffConfig {
  /// The wait bound after the first failure.
  std::chrono::milliseconds initial{50};
  /// The largest wait, however long the peer stays down.
  std::chrono::milliseconds max{2000};

  [[nodiscard]] result<void> validate() const {
    if (initial.count() <= 0 || max < initial)
      return error(errc::invalid_argument, "transport back-off: need 0 < initial (" +
                                               std::to_string(initial.count()) + " ms) <= max (" +
                                               std::to_string(max.count()) + " ms)");
    return success();
  }
};

/// One connection's back-off state. Invariant: every next() is in [1 ms, config.max].
class Backoff {
 public:
  Backoff(BackoffConfig config, std::uint64_t seed) : config_(config), rng_(seed) {}

  /// The wait before the next attempt; each call (a failure) doubles the bound up to max.
  [[nodiscard]] std::chrono::milliseconds next() {
    const auto bound = current_bound();
    if (failures_ < 63) ++failures_;
    const std::int64_t hi = bound.count();
    const std::int64_t lo = std::max<std::int64_t>(1, hi / 2);
    return std::chrono::milliseconds(std::uniform_int_distribution<std::int64_t>(lo, hi)(rng_));
  }
  /// A connection got through (the peer answered the hello): start again from `initial`.
  void reset() noexcept { failures_ = 0; }
  /// Failures in a row since the last reset().
  [[nodiscard]] unsigned failures() const noexcept { return failures_; }

 private:
  [[nodiscard]] std::chrono::milliseconds current_bound() const {
    // initial * 2^failures without overflow: stop doubling once past max.
    auto d = config_.initial;
    for (unsigned k = 0; k < failures_ && d < config_.max; ++k) d *= 2;
    return std::min(d, config_.max);
  }

  BackoffConfig config_;
  std::mt19937_64 rng_;
  unsigned failures_ = 0;
};

}  // namespace dengine::net
