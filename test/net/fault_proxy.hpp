#pragma once
// A TCP proxy on 127.0.0.1 that injects one fault into the byte stream of the first connection
// that carries enough bytes: it either cuts that connection after a given number of bytes from
// client to server, or flips the byte at that position. Every other connection, and that one
// before the fault, is forwarded as is, both ways. The snapshot tests put it between two
// transports to break a stream in the middle.
//
// Plain POSIX sockets and one thread per connection (blocking forwarders with poll): it is a
// test tool, independent of the Asio code it tests.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace dengine::net::testing {

class FaultProxy {
 public:
  enum class Fault : std::uint8_t { cut, flip };

  /// Forwards to 127.0.0.1:`target`; `fault` at client→server byte `at` of the first connection
  /// that gets that far.
  FaultProxy(std::uint16_t target, Fault fault, std::uint64_t at)
      : target_(target), fault_(fault), at_(at) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (listen_fd_ < 0) throw std::runtime_error("proxy: socket");
    sockaddr_in a = loopback(0);
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::listen(listen_fd_, 16) != 0)
      throw std::runtime_error("proxy: bind/listen");
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  ~FaultProxy() {
    stopping_ = true;
    acceptor_.join();
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mutex_);
      threads.swap(threads_);
    }
    for (auto& t : threads) t.join();
    ::close(listen_fd_);
  }

  [[nodiscard]] std::uint16_t port() const noexcept { return port_; }
  /// True once the fault was injected.
  [[nodiscard]] bool fired() const noexcept { return fired_.load(); }

 private:
  static sockaddr_in loopback(std::uint16_t port) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
  }

  void accept_loop() {
    while (!stopping_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int client = ::accept(listen_fd_, nullptr, nullptr);
      if (client < 0) continue;
      const int server = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a = loopback(target_);
      if (::connect(server, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(server);
        ::close(client);
        continue;
      }
      std::lock_guard lock(mutex_);
      threads_.emplace_back([this, client, server] { forward(client, server); });
    }
  }

  /// Copies both ways until either side closes (or the fault cuts it), then closes both.
  void forward(int client, int server) {
    std::uint64_t upstream = 0;  // client→server bytes so far
    std::array<char, std::size_t{64} * 1024> buf{};
    bool open = true;
    while (open && !stopping_) {
      std::array<pollfd, 2> p{pollfd{client, POLLIN, 0}, pollfd{server, POLLIN, 0}};
      if (::poll(p.data(), p.size(), 20) <= 0) continue;
      for (std::size_t k = 0; k < 2 && open; ++k) {
        if ((p[k].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
        const int from = k == 0 ? client : server;
        const int to = k == 0 ? server : client;
        const auto n = ::recv(from, buf.data(), buf.size(), 0);
        if (n <= 0) {
          open = false;
          break;
        }
        std::size_t len = static_cast<std::size_t>(n);
        if (k == 0 && !fired_ && upstream + len > at_) {
          const std::size_t pos = static_cast<std::size_t>(at_ - upstream);
          if (fault_ == Fault::flip) {
            buf[pos] = static_cast<char>(buf[pos] ^ 0x5A);
          } else {
            len = pos;  // forward up to the cut, then close both sides
            open = false;
          }
          fired_ = true;
        }
        if (k == 0) upstream += len;
        if (!send_all(to, buf.data(), len)) open = false;
      }
    }
    ::shutdown(client, SHUT_RDWR);
    ::shutdown(server, SHUT_RDWR);
    ::close(client);
    ::close(server);
  }

  static bool send_all(int fd, const char* data, std::size_t len) {
    while (len > 0) {
      const auto n = ::send(fd, data, len, MSG_NOSIGNAL);
      if (n <= 0) return false;
      data += n;
      len -= static_cast<std::size_t>(n);
    }
    return true;
  }

  const std::uint16_t target_;
  const Fault fault_;
  const std::uint64_t at_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> fired_{false};
  std::mutex mutex_;
  std::vector<std::thread> threads_;
  std::thread acceptor_;
};

}  // namespace dengine::net::testing
