#pragma once
/// A token bucket over bytes: how the transport keeps snapshot streams to a configured rate
/// (TransportConfig::snapshot_rate_bytes_per_second), so that a large transfer leaves bandwidth
/// to appends and to other peers. One bucket per transport, shared by every snapshot lane: the
/// limit is the node's outgoing snapshot rate, however many followers need one. Not
/// thread-safe: the transport's I/O thread owns it.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace dengine::net {

class RateLimiter {
 public:
  using clock = std::chrono::steady_clock;

  /// `bytes_per_second` 0: unlimited. `burst`: the most bytes taken at once after an idle
  /// spell (a chunk's size does).
  RateLimiter(std::uint64_t bytes_per_second, std::uint64_t burst)
      : rate_(bytes_per_second), burst_(static_cast<double>(burst)), tokens_(burst_) {}

  /// Asks to send `n` bytes at `now`. Zero: taken, send them (the bucket may go into debt by
  /// up to n, which later requests wait off, so the average stays at the rate). Otherwise
  /// nothing was taken: ask again after the returned wait.
  clock::duration take(std::size_t n, clock::time_point now) {
    if (rate_ == 0) return clock::duration::zero();
    refill(now);
    if (tokens_ < 0) {
      const double seconds = -tokens_ / static_cast<double>(rate_);
      return std::max<clock::duration>(
          std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(seconds)),
          clock::duration(1));
    }
    tokens_ -= static_cast<double>(n);
    return clock::duration::zero();
  }

 private:
  void refill(clock::time_point now) {
    if (!started_) {
      started_ = true;
      last_ = now;
      return;
    }
    const std::chrono::duration<double> elapsed = now - last_;
    last_ = now;
    tokens_ = std::min(burst_, tokens_ + elapsed.count() * static_cast<double>(rate_));
  }

  const std::uint64_t rate_;
  const double burst_;
  double tokens_;
  clock::time_point last_{};
  bool started_ = false;
};

}  // namespace dengine::net
