#pragma once
/// WatchStream: a client's handle on one watch (kv::WatchHub, through kv::WatchControl). Responses
/// queue in the hub's Watcher (bounded: a watcher that falls too far behind is cancelled with a
/// reason); the consumer drains them with take() (non-blocking) or wait() (blocking, with a
/// timeout), or is told by a notify callback that some are queued. Destroying the stream cancels
/// the watch.
///
/// Lifetime: destroy (or cancel) every stream before the engine or replica that made it.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "dengine/statemachines/kv/watch_types.hpp"
#include "dengine/statemachines/kv/watcher.hpp"

namespace dengine::engine {

/// One watch, as its consumer sees it. Move-only; thread-safe for one consumer thread plus the
/// hub's delivering thread.
class WatchStream {
 public:
  /// Wakes waiters and forwards to the user's notify callback (shared with the hub's notify).
  struct Signal {
    std::mutex mutex;
    std::condition_variable cv;
    std::uint64_t sequence = 0;  ///< raised whenever responses were queued
    std::function<void()> user_notify;

    void notify() {
      {
        std::lock_guard lock(mutex);
        ++sequence;
      }
      cv.notify_all();
      if (user_notify) user_notify();
    }
  };

  /// An empty stream (no watch).
  WatchStream() = default;
  /// Adopts watcher `w` of `hub`, signalled through `signal` (what LocalKvClient::watch builds).
  WatchStream(std::shared_ptr<kv::Watcher> w, kv::WatchControl& hub, std::shared_ptr<Signal> signal)
      : watcher_(std::move(w)), hub_(&hub), signal_(std::move(signal)) {}
  WatchStream(WatchStream&& other) noexcept
      : watcher_(std::move(other.watcher_)),
        hub_(std::exchange(other.hub_, nullptr)),
        signal_(std::move(other.signal_)) {}
  WatchStream& operator=(WatchStream&& other) noexcept {
    if (this != &other) {
      cancel();
      watcher_ = std::move(other.watcher_);
      hub_ = std::exchange(other.hub_, nullptr);
      signal_ = std::move(other.signal_);
    }
    return *this;
  }
  WatchStream(const WatchStream&) = delete;
  WatchStream& operator=(const WatchStream&) = delete;
  /// Cancels the watch.
  ~WatchStream() { cancel(); }

  /// The watch's id (etcd's watch_id); -1 for an empty stream.
  [[nodiscard]] kv::WatchId id() const noexcept { return watcher_ ? watcher_->id() : -1; }

  /// Every response queued now, oldest first (possibly none). The first is `created`; events
  /// come in revision order without gaps or duplicates; a `canceled` one is the last.
  std::vector<kv::WatchResponse> take() {
    if (!watcher_) return {};
    return watcher_->take();
  }

  /// Like take(), but waits up to `timeout` for at least one response.
  std::vector<kv::WatchResponse> wait(std::chrono::milliseconds timeout) {
    if (!watcher_) return {};
    std::unique_lock lock(signal_->mutex);
    const std::uint64_t seen = signal_->sequence;
    lock.unlock();
    auto out = watcher_->take();
    if (!out.empty()) return out;
    lock.lock();
    signal_->cv.wait_for(lock, timeout, [&] { return signal_->sequence != seen; });
    lock.unlock();
    return watcher_->take();
  }

  /// Asks for a progress notification (etcd's WatchProgressRequest): a response with no
  /// events whose header revision says every event up to it has been delivered, queued after the
  /// events already queued. False if the watch has ended.
  bool request_progress() {
    return watcher_ && hub_ != nullptr && hub_->request_watch_progress(watcher_->id());
  }

  /// Whether the watch has ended (cancelled by the consumer or by the hub, with a reason).
  [[nodiscard]] bool canceled() const { return !watcher_ || watcher_->canceled(); }

  /// Ends the watch (a final canceled response is queued). Idempotent.
  void cancel() {
    if (watcher_ && hub_ != nullptr && !watcher_->canceled()) hub_->cancel_watch(watcher_->id());
  }

 private:
  std::shared_ptr<kv::Watcher> watcher_;
  kv::WatchControl* hub_ = nullptr;
  std::shared_ptr<Signal> signal_;
};

}  // namespace dengine::engine
