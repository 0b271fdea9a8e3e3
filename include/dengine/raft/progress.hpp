#pragma once
/// The leader's view of one follower: how far its log matches, what to send next, and how much
/// may be in flight (etcd-raft's tracker, reduced to what dengine uses).

#include <cstddef>
#include <cstdint>
#include <deque>

#include "dengine/core/types.hpp"

namespace dengine::raft {

/// Bounded window of append messages sent but not acknowledged (count and bytes).
class Inflights {
 public:
  Inflights(std::size_t max_count, std::size_t max_bytes)
      : max_count_(max_count), max_bytes_(max_bytes) {}

  [[nodiscard]] bool full() const noexcept {
    return window_.size() >= max_count_ || bytes_ >= max_bytes_;
  }
  [[nodiscard]] std::size_t count() const noexcept { return window_.size(); }
  /// Records a message whose last entry is `last`. Invariant: `last` increases.
  void add(LogIndex last, std::size_t bytes) {
    window_.push_back({last, bytes});
    bytes_ += bytes;
  }
  /// Frees every message whose last entry is at or below `index` (acknowledged).
  void free_up_to(LogIndex index) {
    while (!window_.empty() && window_.front().last <= index) {
      bytes_ -= window_.front().bytes;
      window_.pop_front();
    }
  }
  /// Frees the oldest slot (a heartbeat answer proves the follower is reachable, while its
  /// appends may all have been lost: one slot lets one append through to resynchronize).
  void free_first_one() {
    if (window_.empty()) return;
    bytes_ -= window_.front().bytes;
    window_.pop_front();
  }
  void reset() {
    window_.clear();
    bytes_ = 0;
  }

 private:
  struct Slot {
    LogIndex last;
    std::size_t bytes;
  };
  std::deque<Slot> window_;
  std::size_t bytes_ = 0;
  std::size_t max_count_;
  std::size_t max_bytes_;
};

/// Per-follower replication state.
///  - probe: the leader does not know where the logs match; one append at a time, backing off
///    on rejection.
///  - replicate: logs match up to `match`; appends are pipelined up to the in-flight window.
///  - snapshot: the follower needs the snapshot at `pending_snapshot`; appends wait.
/// Invariant: match < next.
struct Progress {
  enum class State : std::uint8_t { probe, replicate, snapshot };

  Progress(LogIndex next_index, std::size_t max_inflight, std::size_t max_inflight_bytes)
      : next(next_index), inflights(max_inflight, max_inflight_bytes) {}

  LogIndex match = 0;
  LogIndex next = 1;
  State state = State::probe;
  /// probe: an append was sent and no answer came yet (resumed by a heartbeat response).
  bool probe_sent = false;
  LogIndex pending_snapshot = 0;
  /// Tick at which the snapshot was sent; a lost snapshot is retried after a timeout.
  std::uint64_t snapshot_sent_at = 0;
  /// Heard from since the last check-quorum round.
  bool recent_active = false;
  /// Commit index last sent to this follower (to decide whether a commit-only append is needed).
  LogIndex sent_commit = 0;
  Inflights inflights;

  [[nodiscard]] bool paused() const noexcept {
    switch (state) {
      case State::probe: return probe_sent;
      case State::replicate: return inflights.full();
      case State::snapshot: return true;
    }
    return true;
  }

  void become_probe() {
    // After a snapshot, resume right after it; otherwise right after the known match.
    next = state == State::snapshot ? std::max(match + 1, pending_snapshot + 1) : match + 1;
    state = State::probe;
    probe_sent = false;
    pending_snapshot = 0;
    inflights.reset();
  }
  void become_replicate() {
    state = State::replicate;
    next = match + 1;
    probe_sent = false;
    inflights.reset();
  }
  void become_snapshot(LogIndex snapshot_index, std::uint64_t now) {
    state = State::snapshot;
    pending_snapshot = snapshot_index;
    snapshot_sent_at = now;
    probe_sent = false;
    inflights.reset();
  }

  /// An acknowledgement that the follower matches up to `index`. Returns true if it was news.
  bool maybe_update(LogIndex index) {
    bool updated = false;
    if (match < index) {
      match = index;
      updated = true;
      probe_sent = false;
    }
    next = std::max(next, index + 1);
    return updated;
  }

  /// A rejection of the append at `rejected`; `hint` is the highest index the leader may try
  /// next (from fast backtracking). Returns false if the rejection is stale.
  bool maybe_decrease_to(LogIndex rejected, LogIndex hint) {
    if (state == State::replicate) {
      // Stale: an append at or below match was acknowledged already.
      if (rejected <= match) return false;
      next = match + 1;
      return true;
    }
    // probe: only the rejection of the append we sent last matters.
    if (next == 0 || next - 1 != rejected) return false;
    next = std::max<LogIndex>(std::min(rejected, hint + 1), 1);
    next = std::max(next, match + 1);
    probe_sent = false;
    return true;
  }
};

}  // namespace dengine::raft
