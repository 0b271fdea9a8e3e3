#pragma once
/// The leader calls a node made (Node::call_leader) that wait for their answer: the Driver's
/// bookkeeping, no I/O. A call is sent to the leader known (or served here when this node
/// leads); it is sent again when the leader changes (the old one may never answer) and, when
/// the leader declined it, at the next tick; it fails at its deadline. Calls may therefore be
/// served more than once: a leader call must be harmless to repeat (a lease keep-alive is).
///
/// Invariant: every call in `calls_` has exactly one entry in `deadlines_` at or before the
/// front of any later call's (one request timeout, a monotonic clock); entries of calls that
/// completed stay until they come due, then are skipped.

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dengine/node/completion.hpp"

namespace dengine::node {

template <class TimePoint>
class PendingLeaderCalls {
 public:
  struct Call {
    std::string request;
    Completion<std::string> done;
    TimePoint deadline{};
    /// Sent and not answered (or, here, not declined).
    bool in_flight = false;
    /// Sent or served at least once: its timeout means the leader did not answer, not that
    /// no leader was known.
    bool ever_sent = false;
  };

  /// Registers a call; returns its id (unique for this node's lifetime).
  std::uint64_t add(std::string request, Completion<std::string> done, TimePoint deadline) {
    const std::uint64_t id = next_id_++;
    calls_.emplace(id, Call{std::move(request), std::move(done), deadline});
    deadlines_.emplace_back(deadline, id);
    return id;
  }

  /// The call `id` still waiting, or null.
  [[nodiscard]] Call* find(std::uint64_t id) {
    auto it = calls_.find(id);
    return it == calls_.end() ? nullptr : &it->second;
  }

  /// Removes and returns call `id`, if it still waits.
  std::optional<Call> take(std::uint64_t id) {
    auto it = calls_.find(id);
    if (it == calls_.end()) return std::nullopt;
    Call c = std::move(it->second);
    calls_.erase(it);
    return c;
  }

  /// Ids of the waiting calls; only those not in flight when `unsent_only`.
  [[nodiscard]] std::vector<std::uint64_t> ids(bool unsent_only) const {
    std::vector<std::uint64_t> out;
    for (const auto& [id, c] : calls_)
      if (!unsent_only || !c.in_flight) out.push_back(id);
    return out;
  }

  /// Removes and returns the calls whose deadline is at or before `now`.
  std::vector<Call> take_expired(TimePoint now) {
    std::vector<Call> out;
    while (!deadlines_.empty() && deadlines_.front().first <= now) {
      const std::uint64_t id = deadlines_.front().second;
      deadlines_.pop_front();
      if (auto c = take(id)) out.push_back(std::move(*c));
    }
    return out;
  }

  /// Removes and returns every waiting call.
  std::vector<Call> take_all() {
    std::vector<Call> out;
    for (auto& [id, c] : calls_) out.push_back(std::move(c));
    calls_.clear();
    deadlines_.clear();
    return out;
  }

  [[nodiscard]] std::size_t size() const noexcept { return calls_.size(); }
  [[nodiscard]] bool empty() const noexcept { return calls_.empty(); }

 private:
  std::map<std::uint64_t, Call> calls_;
  std::deque<std::pair<TimePoint, std::uint64_t>> deadlines_;
  std::uint64_t next_id_ = 1;
};

}  // namespace dengine::node
