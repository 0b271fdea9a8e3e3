#pragma once
/// Watcher: one watch's queue of responses, as the hub (watch_hub.hpp) fills it and its consumer
/// drains it; WatchControl: what a consumer may ask of the hub about its watch. Both without
/// the hub itself, so that a client (engine/watch_stream.hpp) compiles without it.

#include <algorithm>
#include <cstddef>
#include <deque>
#include <functional>
#include <iterator>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "dengine/statemachines/kv/key_range.hpp"
#include "dengine/statemachines/kv/types.hpp"
#include "dengine/statemachines/kv/watch_types.hpp"

namespace dengine::kv {

class WatchHub;

/// What the consumer of a watch may ask of the hub that made it (the WatchHub implements it).
class WatchControl {
 public:
  /// Ends watch `id` at its consumer's request (a final canceled response is queued). False
  /// when no such watch is active (WatchHub::cancel).
  virtual bool cancel_watch(WatchId id) = 0;
  /// Queues a progress notification for watch `id` after what is queued. False when it has
  /// ended (WatchHub::request_progress).
  virtual bool request_watch_progress(WatchId id) = 0;

 protected:
  WatchControl() = default;
  WatchControl(const WatchControl&) = default;
  WatchControl& operator=(const WatchControl&) = default;
  ~WatchControl() = default;
};

/// One watch. The consumer drains it with take().
class Watcher {
 public:
  /// The hub-wide id of this watch.
  [[nodiscard]] WatchId id() const noexcept { return id_; }

  /// Every queued response, oldest first (consumer thread).
  std::vector<WatchResponse> take() {
    std::lock_guard lock(mutex_);
    std::vector<WatchResponse> out(std::make_move_iterator(queue_.begin()),
                                   std::make_move_iterator(queue_.end()));
    queue_.clear();
    pending_events_ = 0;
    pending_bytes_ = 0;
    return out;
  }

  /// Whether the watch has ended (its last queued response says canceled).
  [[nodiscard]] bool canceled() const {
    std::lock_guard lock(mutex_);
    return canceled_;
  }

  /// Events queued and not yet taken.
  [[nodiscard]] std::size_t pending_events() const {
    std::lock_guard lock(mutex_);
    return pending_events_;
  }

 private:
  friend class WatchHub;

  // Matching (immutable after creation).
  WatchId id_ = 0;
  std::string key_{};
  std::string range_end_{};
  bool prev_kv_ = false;
  bool no_put_ = false;
  bool no_delete_ = false;
  bool progress_notify_ = false;
  std::function<void()> notify_;

  // Hub-side delivery state, guarded by the hub's mutex.
  Revision next_revision_ = 0;  ///< the lowest revision not yet delivered
  bool events_since_progress_ = false;

  // The queue, guarded by mutex_.
  mutable std::mutex mutex_;
  std::deque<WatchResponse> queue_;
  std::size_t pending_events_ = 0;
  std::size_t pending_bytes_ = 0;
  bool canceled_ = false;

  [[nodiscard]] bool matches(const Event& e) const {
    if (e.type == EventType::put && no_put_) return false;
    if (e.type == EventType::del && no_delete_) return false;
    return in_key_range(e.kv.key, key_, range_end_);
  }

  [[nodiscard]] Event shape(const Event& e) const {
    if (prev_kv_ || !e.prev_kv) return e;
    return Event{e.type, e.kv, std::nullopt};
  }
};

}  // namespace dengine::kv
