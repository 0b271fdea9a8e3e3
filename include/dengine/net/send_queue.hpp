#pragma once
/// The outbound queue of one lane to one peer: bounded in messages and in bytes, so a peer that
/// is down or slow cannot grow a node's memory. A message that does not fit is dropped (Raft
/// resends what matters: the next heartbeat, a retried append) and the caller counts it.
/// Thread-safe: the node's event loop pushes, the transport's I/O thread takes.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dengine/core/error.hpp"
#include "dengine/raft/message.hpp"
#include "dengine/wire/message_codec.hpp"

namespace dengine::net {

/// Which lane a message travels on. Each lane is its own TCP connection (docs/network.md,
/// Lanes), so a control message never waits behind the bytes of a large append, and an append
/// never waits behind a snapshot stream.
enum class Lane : std::uint8_t {
  control = 0,   ///< heartbeats, votes, pre-votes, timeout_now, read_index, most responses
  bulk = 1,      ///< appends that carry entries, forwarded proposals and their answers
  snapshot = 2,  ///< snapshots, streamed in chunks (snapshot_sender.hpp)
};
inline constexpr std::size_t lane_count = 3;

[[nodiscard]] constexpr std::string_view to_string(Lane l) noexcept {
  switch (l) {
    case Lane::control: return "control";
    case Lane::bulk: return "bulk";
    case Lane::snapshot: return "snapshot";
  }
  return "unknown";
}

/// The lane of `m`: snapshot for snapshots, bulk for what carries log data, control for the
/// rest (an empty append is a probe or a commit update: small, and as urgent as a heartbeat). A
/// forwarded proposal's answer shares the lane of the append that carries its entry, so the
/// follower learns the entry's index before it can apply it.
[[nodiscard]] inline Lane lane_of(const raft::Message& m) noexcept {
  if (m.type == raft::MessageType::snapshot) return Lane::snapshot;
  if (m.type == raft::MessageType::propose || m.type == raft::MessageType::propose_response)
    return Lane::bulk;
  if (m.type == raft::MessageType::append && !m.entries.empty()) return Lane::bulk;
  return Lane::control;
}

/// A queue's bounds. Both hold at all times; a message larger than max_bytes never fits.
struct QueueLimits {
  std::size_t max_messages = 1024;
  std::size_t max_bytes = 16U << 20U;

  [[nodiscard]] result<void> validate(std::string_view lane) const {
    if (max_messages == 0 || max_bytes == 0)
      return error(errc::invalid_argument,
                   "transport " + std::string(lane) + " queue: limits must be above 0");
    return success();
  }
};

/// What SendQueue::push did with a message.
enum class Pushed : std::uint8_t {
  queued,  ///< it is in the queue (moved from)
  full,    ///< it does not fit the bounds: the caller drops and counts it
  closed,  ///< the queue was closed (its peer left the list): the message is untouched
};

/// Messages waiting for a write, with their encoded sizes summed.
/// Invariant: size() <= limits.max_messages and bytes() <= limits.max_bytes; once closed it is
/// empty and stays so.
class SendQueue {
 public:
  explicit SendQueue(QueueLimits limits) : limits_(limits) {}

  /// Queues `m` (moved from only when queued).
  Pushed push(raft::Message& m) {
    const std::size_t size = wire::encoded_size(m);
    std::lock_guard lock(mutex_);
    if (closed_) return Pushed::closed;
    if (items_.size() >= limits_.max_messages || size > limits_.max_bytes - bytes_)
      return Pushed::full;
    bytes_ += size;
    items_.push_back({std::move(m), size});
    return Pushed::queued;
  }

  /// Drops every queued message and refuses pushes from now on; returns how many it dropped.
  /// Under the same mutex as push(), so every message is either dropped here or refused.
  std::size_t close() {
    std::lock_guard lock(mutex_);
    closed_ = true;
    const std::size_t dropped = items_.size();
    items_.clear();
    bytes_ = 0;
    return dropped;
  }

  /// Moves the oldest messages into `out` while their encoded sizes total at most `budget`, and
  /// always at least one (a message over the budget goes alone). Returns the bytes taken.
  std::size_t take(std::vector<raft::Message>& out, std::size_t budget) {
    std::lock_guard lock(mutex_);
    std::size_t taken = 0;
    while (!items_.empty()) {
      auto& front = items_.front();
      if (taken > 0 && taken + front.size > budget) break;
      taken += front.size;
      bytes_ -= front.size;
      out.push_back(std::move(front.message));
      items_.pop_front();
    }
    return taken;
  }

  [[nodiscard]] bool empty() const {
    std::lock_guard lock(mutex_);
    return items_.empty();
  }
  /// {messages, bytes} queued now.
  [[nodiscard]] std::pair<std::size_t, std::size_t> depth() const {
    std::lock_guard lock(mutex_);
    return {items_.size(), bytes_};
  }
  [[nodiscard]] const QueueLimits& limits() const noexcept { return limits_; }

 private:
  struct Item {
    raft::Message message;
    std::size_t size = 0;
  };
  const QueueLimits limits_;
  mutable std::mutex mutex_;
  std::deque<Item> items_;
  std::size_t bytes_ = 0;
  bool closed_ = false;
};

}  // namespace dengine::net
