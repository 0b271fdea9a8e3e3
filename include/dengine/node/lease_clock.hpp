#pragma once
/// The leader lease on a monotonic clock.
///
/// raft::Core counts its lease in ticks: it holds until lease_ticks ticks after the tick in
/// which the confirming heartbeat round was sent. Followers keep their side of the bargain on
/// their own clocks, so a tick count is only as good as the ticks are punctual: when the event
/// loop stalls (a VM pause, SIGSTOP, CPU starvation) the missed ticks are never replayed, and a
/// count that says "3 ticks left" after the stall may describe a lease that ran out long ago
/// while the followers elected someone else.
///
/// LeaseClock remembers when each recent tick began and turns the core's lease into a deadline:
///   deadline = (time the anchor tick began) + lease_ticks × tick_period.
/// The round left no earlier than its tick began, and the followers' promise starts when it
/// arrives, so a stall anywhere — before the round is sent, while it travels, before the
/// acknowledgements are counted — can only shorten the lease, never lengthen it. What a lease
/// still assumes is bounded clock-*rate* drift (RaftConfig::clock_drift_percent), and that a
/// node's ticks never come closer together than tick_period on its own clock (both runtimes
/// re-arm the tick timer after each tick: a late tick is followed by a full period).
///
/// Invariant: starts_ holds the begin times of the last lease_ticks + 1 ticks, in tick order;
/// a lease anchored at an older tick has ended by the core's own count.

#include <cstdint>
#include <deque>
#include <optional>
#include <utility>

namespace dengine::node {

/// Maps the core's ticks to clock times for the lease (see the file comment).
template <class TimePoint, class Duration>
class LeaseClock {
 public:
  /// `start` is a time no later than the first round the core can send (tick 0).
  LeaseClock(Duration tick_period, std::uint32_t lease_ticks, TimePoint start)
      : lease_length_(tick_period * lease_ticks), keep_(std::size_t{lease_ticks} + 1) {
    starts_.emplace_back(0, start);
  }

  /// Tick number `tick` (the core's tick count after it) began at `began`, read before the
  /// core ticked.
  void on_tick(std::uint64_t tick, TimePoint began) {
    starts_.emplace_back(tick, began);
    while (starts_.size() > keep_) starts_.pop_front();
  }

  /// The deadline of a lease anchored at `anchor_tick` (raft::Core::lease_anchor_tick()), or
  /// nullopt when that tick is no longer remembered (the lease ended by the tick count).
  [[nodiscard]] std::optional<TimePoint> deadline(std::uint64_t anchor_tick) const {
    for (auto it = starts_.rbegin(); it != starts_.rend(); ++it) {
      if (it->first == anchor_tick) return it->second + lease_length_;
      if (it->first < anchor_tick) break;
    }
    return std::nullopt;
  }

 private:
  Duration lease_length_;
  std::size_t keep_;
  std::deque<std::pair<std::uint64_t, TimePoint>> starts_;
};

}  // namespace dengine::node
