#pragma once
// kv-node's background writer: puts PREFIX0, PREFIX1, ... one after the other, each as soon as
// the previous one was answered, and counts what was acknowledged and what failed, per second.
// It shows what a client sees while the cluster changes under it (a member joining, a leader
// moving): how many writes failed, and whether the rate dipped.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/core.h>
#include <fmt/format.h>

#include "dengine/core/error.hpp"
#include "replies.hpp"

namespace kv_node {

/// What the writer did so far. Seconds count from the loop's start.
struct WriteStats {
  std::uint64_t ok = 0;
  std::uint64_t failed = 0;
  std::string last_error;               ///< the last failure: ERRC MESSAGE ("" when none)
  std::vector<std::uint64_t> ok_per_s;  ///< [t] = writes acknowledged during second t
  std::vector<std::uint64_t> failed_per_s;

  /// `writes ok=N failed=N rate=0:n0,1:n1,... failed_at=t:n,... last_error=TEXT`: failed_at
  /// lists only the seconds with failures; last_error (free text) comes last.
  [[nodiscard]] std::string line() const {
    std::vector<std::string> rate;
    std::vector<std::string> failed_at;
    for (std::size_t t = 0; t < ok_per_s.size(); ++t) {
      rate.push_back(fmt::format("{}:{}", t, ok_per_s[t]));
      if (failed_per_s[t] != 0) failed_at.push_back(fmt::format("{}:{}", t, failed_per_s[t]));
    }
    return fmt::format("writes ok={} failed={} rate={} failed_at={} last_error={}", ok, failed,
                       fmt::join(rate, ","), fmt::join(failed_at, ","),
                       last_error.empty() ? "none" : last_error);
  }
};

/// One background writer over a client (a LocalKvClient: its blocking put is safe from any
/// thread). Invariant: at most one writer thread runs; stop() joins it.
template <class Client>
class WriteLoop {
 public:
  WriteLoop() = default;
  WriteLoop(const WriteLoop&) = delete;
  WriteLoop& operator=(const WriteLoop&) = delete;
  ~WriteLoop() { stop(); }

  [[nodiscard]] bool running() const { return thread_.joinable(); }

  /// Starts writing PREFIX<n> = n for n = 0, 1, ... (the stats start afresh).
  void start(Client kv, std::string prefix) {
    stop();
    {
      std::lock_guard lock(mutex_);
      stats_ = WriteStats{};
      stopping_ = false;
    }
    thread_ = std::thread([this, kv, prefix = std::move(prefix)]() mutable {
      const auto start = std::chrono::steady_clock::now();
      for (std::uint64_t n = 0; !stopping(); ++n) {
        auto put = kv.put(prefix + std::to_string(n), std::to_string(n));
        const auto second =
            static_cast<std::size_t>(std::chrono::duration_cast<std::chrono::seconds>(
                                         std::chrono::steady_clock::now() - start)
                                         .count());
        count(second, put ? nullptr : &put.error());
      }
    });
  }

  /// Stops the writer after its current put (which may wait up to the request timeout).
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    if (thread_.joinable()) thread_.join();
  }

  [[nodiscard]] WriteStats stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
  }

 private:
  [[nodiscard]] bool stopping() const {
    std::lock_guard lock(mutex_);
    return stopping_;
  }

  void count(std::size_t second, const dengine::error* failure) {
    std::lock_guard lock(mutex_);
    if (stats_.ok_per_s.size() <= second) {
      stats_.ok_per_s.resize(second + 1, 0);
      stats_.failed_per_s.resize(second + 1, 0);
    }
    if (failure == nullptr) {
      ++stats_.ok;
      ++stats_.ok_per_s[second];
    } else {
      ++stats_.failed;
      ++stats_.failed_per_s[second];
      stats_.last_error = error_line(*failure).substr(4);  // without "err "
    }
  }

  mutable std::mutex mutex_;
  bool stopping_ = false;  // guarded by mutex_
  WriteStats stats_;       // guarded by mutex_
  std::thread thread_;
};

}  // namespace kv_node
