#pragma once
// Helpers for the transport tests: configs with short back-offs and a captured log, an inbox
// that collects what a transport delivers, and a raw TCP client for sending bytes by hand.

#include <doctest/doctest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <poll.h>
#include <sys/socket.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "dengine/net/asio_transport.hpp"

namespace dengine::net::testing {

inline constexpr std::uint64_t test_cluster = 0xC1;

/// The lines a transport logged (thread-safe: the I/O thread writes, the test reads).
class LogSink {
 public:
  log_function function() {
    return [this](std::string_view line) {
      std::lock_guard lock(mutex_);
      lines_.emplace_back(line);
    };
  }
  /// True when some line contains `part`.
  [[nodiscard]] bool contains(std::string_view part) const {
    std::lock_guard lock(mutex_);
    for (const auto& l : lines_)
      if (l.find(part) != std::string::npos) return true;
    return false;
  }
  /// How many lines contain `part`.
  [[nodiscard]] std::size_t count(std::string_view part) const {
    std::lock_guard lock(mutex_);
    std::size_t n = 0;
    for (const auto& l : lines_) n += l.find(part) != std::string::npos ? 1 : 0;
    return n;
  }
  /// Every line, for a failure message.
  [[nodiscard]] std::string all() const {
    std::lock_guard lock(mutex_);
    std::string out;
    for (const auto& l : lines_) out += l + "\n";
    return out;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> lines_;
};

/// Polls `cond` every millisecond for up to `limit`: a bound that only stops a hung test; no
/// test asserts how long anything takes. Returns cond().
inline bool eventually(const std::function<bool()>& cond,
                       std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return cond();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

/// A config for member `self` of test_cluster: listen on 127.0.0.1:0, fast back-off, a fixed
/// jitter seed, the log into `log`.
inline TransportConfig config_for(NodeId self, LogSink& log) {
  TransportConfig c;
  c.self = self;
  c.cluster_id = test_cluster;
  c.backoff = {std::chrono::milliseconds(5), std::chrono::milliseconds(100)};
  c.jitter_seed = 42 + self;
  c.log = log.function();
  return c;
}

/// 127.0.0.1:port.
inline PeerAddress loopback(std::uint16_t port) { return PeerAddress{"127.0.0.1", port}; }

/// Opens a transport, failing the test with the error.
inline AsioTransport open_transport(TransportConfig c) {
  auto t = AsioTransport::open(std::move(c));
  REQUIRE_MESSAGE(t, (t ? "" : t.error().message()));
  return std::move(t).value();
}

/// What a transport delivered, in arrival order.
class Inbox {
 public:
  node::InboundHandler handler() {
    return [this](raft::Message m) {
      std::lock_guard lock(mutex_);
      messages_.push_back(std::move(m));
      cv_.notify_all();
    };
  }
  /// Waits (bounded, see eventually) until at least `n` messages arrived; true if they did.
  bool wait_for(std::size_t n) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, std::chrono::seconds(20), [&] { return messages_.size() >= n; });
  }
  [[nodiscard]] std::vector<raft::Message> messages() const {
    std::lock_guard lock(mutex_);
    return messages_;
  }
  [[nodiscard]] std::size_t size() const {
    std::lock_guard lock(mutex_);
    return messages_.size();
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<raft::Message> messages_;
};

/// A message of `type` from `from` to `to`, term `term` (which tests use as a marker).
inline raft::Message message(raft::MessageType type, NodeId from, NodeId to, Term term = 1) {
  raft::Message m;
  m.type = type;
  m.from = from;
  m.to = to;
  m.term = term;
  return m;
}

/// An append from `from` to `to` with one entry of `bytes` bytes.
inline raft::Message big_append(NodeId from, NodeId to, std::size_t bytes, LogIndex index) {
  auto m = message(raft::MessageType::append, from, to);
  m.index = index - 1;
  m.entries.push_back(Entry{1, index, EntryType::normal, std::string(bytes, 'a')});
  return m;
}

/// One transport with what it logged and received (declared first: destroyed after it).
struct Station {
  LogSink log;
  Inbox inbox;
  AsioTransport t;

  explicit Station(NodeId id) : t(open_transport(config_for(id, log))) {}
  explicit Station(const std::function<TransportConfig(LogSink&)>& make)
      : t(open_transport(make(log))) {}
  void start() { REQUIRE(t.start(inbox.handler())); }
  [[nodiscard]] TransportCounters counters() const { return t.metrics()->read(); }
  /// True once a message of term `term` arrived.
  [[nodiscard]] bool got(Term term) const {
    for (const auto& m : inbox.messages())
      if (m.term == term) return true;
    return false;
  }
};

/// A peer list: member id → 127.0.0.1:port.
inline PeerAddresses list(std::initializer_list<std::pair<NodeId, std::uint16_t>> peers) {
  PeerAddresses out;
  for (auto [id, port] : peers) out.set(id, loopback(port));
  return out;
}

inline raft::Message heartbeat(NodeId from, NodeId to, Term term) {
  return message(raft::MessageType::heartbeat, from, to, term);
}

/// A hello frame from `from` to `to` in `cluster`, giving `address` (none when empty).
inline std::string hello_frame(NodeId from, NodeId to, std::uint64_t cluster = test_cluster,
                               std::string address = {}) {
  return wire::encode_frame(wire::FrameKind::hello,
                            wire::encode_hello(wire::Hello{
                                cluster, from, to, wire::supported_versions, std::move(address)}));
}

/// A TCP client for sending bytes by hand.
class RawClient {
 public:
  explicit RawClient(std::uint16_t port) : socket_(io_) {
    socket_.connect(loopback(port).endpoint());
  }
  void send(std::string_view bytes) { boost::asio::write(socket_, boost::asio::buffer(bytes)); }
  /// No more bytes from us (the peer reads end of stream).
  void shutdown_send() { socket_.shutdown(boost::asio::ip::tcp::socket::shutdown_send); }
  /// Reads until the peer closes; true if it did, false if it had not after 20 s (a bound that
  /// only keeps a failing test from hanging; poll, since Asio's blocking read ignores
  /// SO_RCVTIMEO).
  bool wait_closed() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    std::array<char, 4096> buf{};
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{socket_.native_handle(), POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      const auto n = ::recv(socket_.native_handle(), buf.data(), buf.size(), 0);
      if (n <= 0) return true;  // end of stream, or reset
    }
    return false;
  }

 private:
  boost::asio::io_context io_;
  boost::asio::ip::tcp::socket socket_;
};

}  // namespace dengine::net::testing
