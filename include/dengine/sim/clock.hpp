#pragma once
/// Virtual time for deterministic simulations: a monotonic clock that only moves when told to,
/// and an event queue ordered by (time, sequence) so that events scheduled for the same instant
/// run in the order they were scheduled — never in an order that depends on memory layout.

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

namespace dengine::sim {

/// A point in virtual time, in microseconds since the start of the simulation.
using sim_time = std::uint64_t;
/// A span of virtual time, in microseconds.
using sim_duration = std::uint64_t;

/// "Never": later than any time a simulation reaches.
inline constexpr sim_time sim_never = std::numeric_limits<sim_time>::max();

/// Convenience constructors for durations.
[[nodiscard]] constexpr sim_duration sim_us(std::uint64_t n) noexcept { return n; }
[[nodiscard]] constexpr sim_duration sim_ms(std::uint64_t n) noexcept { return n * 1000; }
[[nodiscard]] constexpr sim_duration sim_s(std::uint64_t n) noexcept { return n * 1000 * 1000; }

/// A monotonic virtual clock. Invariant: now() never decreases.
class VirtualClock {
 public:
  /// The current virtual time.
  [[nodiscard]] sim_time now() const noexcept { return now_; }

  /// Moves the clock forward to `t`. Moving backwards is a logic error in the caller (an event
  /// queue popped out of order); it is asserted, and ignored in builds without assertions.
  void advance_to(sim_time t) noexcept {
    assert(t >= now_ && "virtual time must not go backwards");
    now_ = std::max(now_, t);
  }

  /// Moves the clock forward by `d`.
  void advance_by(sim_duration d) noexcept { now_ += d; }

 private:
  sim_time now_ = 0;
};

/// A scheduled event: when it fires, a tie-breaking sequence number, and the payload.
template <class T>
struct Scheduled {
  sim_time time = 0;
  /// Unique and increasing in push order: among events at the same time, the earlier push fires
  /// first. This is what makes a run reproducible from its seed.
  std::uint64_t seq = 0;
  T value;
};

/// A priority queue of events ordered by (time, seq). Cancellation is left to the payload (e.g.
/// carry an incarnation number and ignore stale events when they fire), which keeps pop O(log n).
template <class T>
class EventQueue {
 public:
  /// Schedules `value` at `time`; returns its sequence number.
  std::uint64_t push(sim_time time, T value) {
    const std::uint64_t seq = next_seq_++;
    heap_.push_back(Scheduled<T>{time, seq, std::move(value)});
    std::push_heap(heap_.begin(), heap_.end(), later);
    return seq;
  }

  [[nodiscard]] bool empty() const noexcept { return heap_.empty(); }
  [[nodiscard]] std::size_t size() const noexcept { return heap_.size(); }

  /// Time of the next event, or sim_never when the queue is empty.
  [[nodiscard]] sim_time next_time() const noexcept {
    return heap_.empty() ? sim_never : heap_.front().time;
  }

  /// The next event. Precondition: !empty().
  [[nodiscard]] const Scheduled<T>& top() const noexcept {
    assert(!heap_.empty());
    return heap_.front();
  }

  /// Removes and returns the next event. Precondition: !empty().
  Scheduled<T> pop() {
    assert(!heap_.empty());
    std::pop_heap(heap_.begin(), heap_.end(), later);
    Scheduled<T> out = std::move(heap_.back());
    heap_.pop_back();
    return out;
  }

  /// Removes every event for which `pred(value)` is true (O(n); for rare bulk cancellation, e.g.
  /// the messages queued to a node that was wiped).
  template <class Pred>
  std::size_t erase_if(Pred pred) {
    auto it = std::remove_if(heap_.begin(), heap_.end(),
                             [&](const Scheduled<T>& s) { return pred(s.value); });
    const auto n = static_cast<std::size_t>(heap_.end() - it);
    heap_.erase(it, heap_.end());
    std::make_heap(heap_.begin(), heap_.end(), later);
    return n;
  }

  /// Drops every event (sequence numbers keep increasing).
  void clear() noexcept { heap_.clear(); }

 private:
  // std heaps put the *largest* element first; "largest" here means earliest (time, seq).
  static bool later(const Scheduled<T>& a, const Scheduled<T>& b) noexcept {
    if (a.time != b.time) return a.time > b.time;
    return a.seq > b.seq;
  }

  std::vector<Scheduled<T>> heap_;
  std::uint64_t next_seq_ = 0;
};

}  // namespace dengine::sim
