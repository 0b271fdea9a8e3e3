#pragma once
// What the KV examples share and that is not about dengine: how main() reports, a timestamped
// log for several threads, and the error an example's own check returns.

#include <chrono>
#include <cstdio>
#include <exception>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include <fmt/core.h>

#include "dengine/core/error.hpp"
#include "dengine/engine/config.hpp"
#include "dengine/engine/local_kv_client.hpp"

namespace example {

// The names every KV example uses; an example says `using namespace example;`.
using dengine::errc;
using dengine::error;
using dengine::result;
using dengine::engine::EngineConfig;
using dengine::engine::ReadConsistency;
using Clock = std::chrono::steady_clock;
namespace kv = dengine::kv;

/// One of the example's own checks failed: the engine did not do what docs/embedded.md says.
inline dengine::error unexpected(std::string what) {
  return {std::make_error_code(std::errc::protocol_error), std::move(what)};
}

/// Prints a line with the time since the start and who says it (several threads print).
class TimedLog {
 public:
  explicit TimedLog(int who_width) : who_width_(who_width) {}

  template <class... Args>
  void say(const std::string& who, fmt::format_string<Args...> format, Args&&... args) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - start_)
                        .count();
    const std::string line = fmt::format(format, std::forward<Args>(args)...);
    std::lock_guard lock(mutex_);
    fmt::print("{:>6} ms  {:<{}} {}\n", ms, who, who_width_, line);
  }

 private:
  int who_width_;
  std::mutex mutex_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

/// An example's main(): prints `title`, runs `body` (a callable returning dengine::result<void>)
/// and then `done`, or what failed; returns the exit status (0 when everything held). dengine
/// reports errors as results; fmt and std may throw, so exceptions are reported too.
template <class Body>
int run_example(std::string_view name, std::string_view title, Body&& body,
                std::string_view done = "done") noexcept {
  try {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);  // line by line, also into a pipe or a test log
    fmt::print("{}\n\n", title);
    auto outcome = std::forward<Body>(body)();
    if (!outcome) {
      fmt::print(stderr, "{} failed: {}\n", name, outcome.error().message());
      return 1;
    }
    fmt::print("\n{}\n", done);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%.*s failed: %s\n", static_cast<int>(name.size()), name.data(), e.what());
  } catch (...) {
    std::fprintf(stderr, "%.*s failed: unknown exception\n", static_cast<int>(name.size()),
                 name.data());
  }
  return 1;
}

}  // namespace example
