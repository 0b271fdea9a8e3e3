#pragma once
/// PeriodicTask: a task run every interval on a thread of its own (EmbeddedEngine raises its
/// data dir's marker with one).

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>

namespace dengine::engine {

/// Runs `task` every `interval` on a thread of its own until stop() (or destruction).
class PeriodicTask {
 public:
  PeriodicTask() = default;
  PeriodicTask(const PeriodicTask&) = delete;
  PeriodicTask& operator=(const PeriodicTask&) = delete;
  ~PeriodicTask() { stop(); }

  /// Starts the thread (once).
  void start(std::chrono::milliseconds interval, std::function<void()> task) {
    thread_ = std::thread([this, interval, t = std::move(task)] {
      std::unique_lock lock(mutex_);
      while (!stopped_) {
        cv_.wait_for(lock, interval, [this] { return stopped_; });
        if (stopped_) break;
        lock.unlock();
        t();
        lock.lock();
      }
    });
  }
  /// Stops and joins the thread (idempotent); a task running now finishes first.
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopped_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopped_ = false;
  std::thread thread_;
};

}  // namespace dengine::engine
