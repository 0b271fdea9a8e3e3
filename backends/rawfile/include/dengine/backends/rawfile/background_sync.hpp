#pragma once
/// The MemFirst background flusher: sync() hands it the current segment and returns at once; a
/// thread fdatasyncs that segment once `interval` has passed since the first unflushed hand-over,
/// or as soon as `bytes` are waiting — so data given to sync() reaches the disk within about
/// interval + one fdatasync, and the loss window of a power failure is bounded by that.
///
/// A failed fdatasync is sticky (`failure()`): after one, the page cache may have dropped the
/// dirty pages, so the engine must stop rather than pretend later syncs cover them.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "dengine/backends/rawfile/file_io.hpp"
#include "dengine/core/error.hpp"

namespace dengine::rawfile {

/// Flushes one file (the log's current segment) in the background, at bounded delay.
class BackgroundSyncer {
 public:
  /// Starts the thread.
  BackgroundSyncer(std::chrono::milliseconds interval, std::size_t bytes)
      : interval_(interval), bytes_threshold_(bytes), thread_([this] { run(); }) {}
  BackgroundSyncer(const BackgroundSyncer&) = delete;
  BackgroundSyncer& operator=(const BackgroundSyncer&) = delete;
  /// Flushes what is pending, then stops the thread.
  ~BackgroundSyncer() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  /// Records that `bytes` more bytes of `file` (kept open by the shared pointer even if the
  /// engine closes it meanwhile) await an fdatasync.
  void submit(std::shared_ptr<io::Fd> fd, const std::filesystem::path& file, std::size_t bytes) {
    {
      std::lock_guard lock(mu_);
      if (!dirty_) dirty_since_ = std::chrono::steady_clock::now();
      // A new target (after a segment roll) replaces the old one: the engine fdatasyncs a segment
      // itself before it moves on to the next.
      fd_ = std::move(fd);
      path_ = file;
      dirty_ = true;
      pending_bytes_ += bytes;
    }
    cv_.notify_all();
  }

  /// The first fdatasync failure, if any.
  [[nodiscard]] std::optional<error> failure() const {
    std::lock_guard lock(mu_);
    return failure_;
  }

 private:
  void run() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || dirty_; });
      if (!dirty_) return;  // stopping with nothing pending
      if (!stop_) {
        cv_.wait_until(lock, dirty_since_ + interval_,
                       [&] { return stop_ || pending_bytes_ >= bytes_threshold_; });
      }
      auto fd = fd_;
      auto path = path_;
      dirty_ = false;
      pending_bytes_ = 0;
      lock.unlock();
      auto synced = io::datasync(fd->get(), path);
      lock.lock();
      if (!synced && !failure_) failure_ = synced.error();
    }
  }

  const std::chrono::milliseconds interval_;
  const std::size_t bytes_threshold_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::shared_ptr<io::Fd> fd_;
  std::filesystem::path path_;
  bool dirty_ = false;
  bool stop_ = false;
  std::size_t pending_bytes_ = 0;
  std::chrono::steady_clock::time_point dirty_since_{};
  std::optional<error> failure_;
  std::thread thread_;  // last: starts after every other member is initialized
};

}  // namespace dengine::rawfile
