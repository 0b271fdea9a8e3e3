#pragma once
// What the benchmarks share: a latency sample, one client calling back to back, many clients
// each issuing its next request from the completion of the last (async_puts: puts through a
// LocalKvClient), the disk's raw write + fdatasync latency, the loopback TCP round trip, a
// target's verdict line, and which malloc was linked.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "dengine/core/error.hpp"
#include "dengine/statemachines/kv/requests.hpp"

namespace dengine::bench {

using Clock = std::chrono::steady_clock;

// The malloc this program is linked with (bench/meson.build, option allocator): it changes the
// multi-client figures by up to 2x, so every line says which one was measured.
#ifdef DENGINE_BENCH_ALLOCATOR
inline constexpr const char* allocator = DENGINE_BENCH_ALLOCATOR;
#else
inline constexpr const char* allocator = "system";
#endif

/// Latencies of one measurement, in microseconds.
struct Sample {
  std::vector<double> us;
  double wall_seconds = 0;
  std::size_t errors = 0;
  std::string first_error;

  [[nodiscard]] double percentile(double q) {
    if (us.empty()) return 0;
    std::sort(us.begin(), us.end());
    const auto i = static_cast<std::size_t>(q * static_cast<double>(us.size() - 1));
    return us[i];
  }
  [[nodiscard]] double rate() const {
    return wall_seconds > 0 ? static_cast<double>(us.size()) / wall_seconds : 0;
  }
};

inline double micros(Clock::duration d) {
  return std::chrono::duration<double, std::micro>(d).count();
}

inline std::string key_of(std::size_t i) { return fmt::format("bench/key/{:08}", i); }

/// One client, blocking calls back to back for `seconds`.
template <class Op>
Sample run_serial(double seconds, Op op) {
  Sample s;
  const auto start = Clock::now();
  const auto end =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  for (std::size_t i = 0;; ++i) {
    const auto t0 = Clock::now();
    if (t0 >= end) break;
    auto r = op(i);
    const auto t1 = Clock::now();
    if (r) {
      s.us.push_back(micros(t1 - t0));
    } else if (s.errors++ == 0) {
      s.first_error = r.error().message();
    }
  }
  s.wall_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return s;
}

/// `clients` concurrent clients for `seconds`: each issues `start(i, done)` and, from `done`,
/// its next request. `start` must call done(ok, error-text) exactly once per request.
template <class Start>
Sample run_concurrent(double seconds, std::size_t clients, Start start) {
  struct Shared {
    std::mutex mutex;
    Sample sample;
    std::atomic<std::size_t> next{0};
    std::atomic<std::size_t> running{0};
    std::promise<void> all_done;
    Clock::time_point end;
  };
  auto shared = std::make_shared<Shared>();
  const auto t_start = Clock::now();
  shared->end =
      t_start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  shared->running = clients;
  // Each client is a recursive chain: issue → completion → issue ... until the end time.
  struct Client {
    std::shared_ptr<Shared> shared;
    Start* start;
    // A request may complete inline (a serializable read runs on the calling thread), and its
    // completion issues the next one: a trampoline per thread turns that recursion into a loop.
    void issue() {
      thread_local bool issuing = false;
      thread_local std::vector<Client> queued;
      if (issuing) {
        queued.push_back(*this);
        return;
      }
      issuing = true;
      issue_one();
      while (!queued.empty()) {
        Client next = queued.back();
        queued.pop_back();
        next.issue_one();
      }
      issuing = false;
    }
    void issue_one() {
      const std::size_t i = shared->next.fetch_add(1);
      const auto t0 = Clock::now();
      (*start)(i, [c = *this, t0](bool ok, const std::string& err) mutable {
        const auto t1 = Clock::now();
        {
          std::lock_guard lock(c.shared->mutex);
          if (ok) {
            c.shared->sample.us.push_back(micros(t1 - t0));
          } else if (c.shared->sample.errors++ == 0) {
            c.shared->sample.first_error = err;
          }
        }
        // A failed request ends its client (a refusal completes inline: re-issuing at once
        // would recurse until the end time).
        if (ok && t1 < c.shared->end) {
          c.issue();
        } else if (c.shared->running.fetch_sub(1) == 1) {
          c.shared->all_done.set_value();
        }
      });
    }
  };
  auto done = shared->all_done.get_future();
  for (std::size_t c = 0; c < clients; ++c) Client{shared, &start}.issue();
  done.wait();
  shared->sample.wall_seconds = std::chrono::duration<double>(Clock::now() - t_start).count();
  return std::move(shared->sample);
}

/// run_concurrent's `start` for puts through `kv` (a LocalKvClient): request i puts `value` at
/// key_of(i % keys). `kv` and `value` must outlive the run.
template <class Client>
auto async_puts(Client& kv, const std::string& value, std::size_t keys) {
  return [&kv, &value, keys](std::size_t i, auto done) {
    kv::PutRequest req;
    req.key = key_of(i % keys);
    req.value = value;
    kv.async_put(std::move(req), [d = std::move(done)](result<kv::PutResponse> r) mutable {
      d(r.has_value(), r ? std::string() : r.error().message());
    });
  };
}

/// This disk's latency for one small write + fdatasync (what one DiskFirst commit costs at
/// least), measured with a plain file in `dir`.
inline Sample raw_fdatasync(const std::filesystem::path& dir, double seconds, std::size_t bytes) {
  const auto path = dir / "raw-fdatasync.bench";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    Sample s;
    s.errors = 1;
    s.first_error = std::string("open: ") + std::strerror(errno);
    return s;
  }
  const std::string block(bytes, 'r');
  auto s = run_serial(seconds, [&](std::size_t) -> result<void> {
    if (::write(fd, block.data(), block.size()) != static_cast<ssize_t>(block.size()))
      return error(errc::io_error, std::strerror(errno));
    if (::fdatasync(fd) != 0) return error(errc::io_error, std::strerror(errno));
    return success();
  });
  ::close(fd);
  std::filesystem::remove(path);
  return s;
}

/// Prints one target of an issue with its verdict, as a JSON line of benchmark `bench`:
/// `measured` against `limit`, which it must not pass (`at_most`) or must reach.
inline void verdict(std::string_view bench, const std::string& target, double measured,
                    double limit, bool at_most, const std::string& unit) {
  const bool met = at_most ? measured <= limit : measured >= limit;
  fmt::print(
      "{{\"bench\":\"{}\",\"target\":\"{}\",\"measured\":{:.2f},\"limit\":{:.2f},"
      "\"unit\":\"{}\",\"met\":{}}}\n",
      bench, target, measured, limit, unit, met ? "true" : "false");
}

/// The loopback TCP round trip: `count` exchanges of `bytes` bytes with an echo thread in this
/// process, over one connection with TCP_NODELAY at both ends (what a peer message and its
/// answer pay at least on 127.0.0.1).
inline Sample loopback_round_trip(std::size_t count, std::size_t bytes = 64) {
  Sample s;
  auto fail = [&](const char* what) {
    s.errors = 1;
    s.first_error = std::string(what) + ": " + std::strerror(errno);
    return s;
  };
  const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener < 0) return fail("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener, 1) != 0 ||
      ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(listener);
    return fail("bind");
  }
  auto exchange = [bytes](int fd, bool first_write) {
    std::vector<char> buf(bytes, 'e');
    auto full = [&](auto op) {
      for (std::size_t done = 0; done < bytes;) {
        const auto n = op(fd, buf.data() + done, bytes - done);
        if (n <= 0) return false;
        done += static_cast<std::size_t>(n);
      }
      return true;
    };
    auto rd = [](int f, char* p, std::size_t n) { return ::recv(f, p, n, 0); };
    auto wr = [](int f, char* p, std::size_t n) { return ::send(f, p, n, MSG_NOSIGNAL); };
    return first_write ? full(wr) && full(rd) : full(rd) && full(wr);
  };
  const int one = 1;
  std::thread echo([&] {
    const int fd = ::accept(listener, nullptr, nullptr);
    if (fd < 0) return;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    while (exchange(fd, false)) {
    }
    ::close(fd);
  });
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const auto start = Clock::now();
    for (std::size_t i = 0; i < count; ++i) {
      const auto t0 = Clock::now();
      if (!exchange(fd, true)) {
        fail("exchange");
        break;
      }
      s.us.push_back(micros(Clock::now() - t0));
    }
    s.wall_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  } else {
    fail("connect");
  }
  if (fd >= 0) ::close(fd);  // the echo thread reads end of stream and ends
  ::shutdown(listener, SHUT_RDWR);
  ::close(listener);
  echo.join();
  return s;
}

}  // namespace dengine::bench
