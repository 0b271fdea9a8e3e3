#pragma once
/// The queue between the event loop and a worker thread (log writer, applier) in the threaded
/// arrangement: many producers, one consumer that takes everything queued at once (so a worker
/// handles a group per wake-up: group commit for the log writer, batching for the applier).
///
/// Bounded by construction, not by blocking: the event loop must never block, so push() never
/// waits. The event loop admits work only within its flow-control limits (NodeConfig::
/// max_inflight_persist / max_inflight_apply, and the pending-request bounds for completions),
/// which bounds what can be queued here.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace dengine::node {

template <class T>
class WorkQueue {
 public:
  /// Appends items (moved out of `items`, which is left empty) and wakes the consumer.
  /// Returns false, leaving `items` untouched, once the queue is closed.
  bool push(std::vector<T>& items) {
    if (items.empty()) return true;
    {
      std::lock_guard lock(mutex_);
      if (closed_) return false;
      if (items_.empty()) {
        items_.swap(items);
      } else {
        for (T& item : items) items_.push_back(std::move(item));
        items.clear();
      }
      ready_.store(true, std::memory_order_release);
    }
    cv_.notify_one();
    return true;
  }

  /// Waits until items are queued or the queue is closed, then takes every queued item into
  /// `out` (which should be empty). Returns false once the queue is closed and drained.
  /// With a positive `spin`, first polls for up to that long before sleeping: waking a sleeping
  /// thread costs tens of microseconds on a VM, more than a whole request's work, so a worker
  /// that was just busy looks briefly before it sleeps (NodeConfig::idle_spin).
  bool pop_all(std::vector<T>& out, std::chrono::microseconds spin = {}) {
    if (spin.count() > 0 && !ready_.load(std::memory_order_acquire)) {
      const auto until = std::chrono::steady_clock::now() + spin;
      while (!ready_.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < until) {
        std::this_thread::yield();  // let the thread doing the work have this core
      }
    }
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return !items_.empty() || closed_; });
    if (items_.empty()) return false;
    out.swap(items_);
    ready_.store(false, std::memory_order_relaxed);
    return true;
  }

  /// True when nothing is queued (a worker uses it to decide to sync while idle).
  [[nodiscard]] bool empty() const {
    std::lock_guard lock(mutex_);
    return items_.empty();
  }

  /// No more pushes; the consumer drains what is queued, then pop_all returns false.
  void close() {
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
      ready_.store(true, std::memory_order_release);
    }
    cv_.notify_all();
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<T> items_;
  bool closed_ = false;
  /// Set (under the mutex) when items are queued or the queue closes, cleared when taken: what
  /// the spin polls without the lock.
  std::atomic<bool> ready_{false};
};

}  // namespace dengine::node
