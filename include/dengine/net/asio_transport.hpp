#pragma once
/// AsioTransport: the node::Transport over TCP (docs/network.md). It owns one I/O thread with
/// its own io_context (the node's event loop never waits on a socket), a listener for the
/// peers' connections, and per peer two outbound lanes — control and bulk, each its own TCP
/// connection with a bounded queue (connection.hpp, send_queue.hpp). send() only queues and
/// wakes the lane's writer; the I/O thread encodes, batches and writes.
///
/// Lifecycle: open(config) validates and binds the listen address (port() is then known);
/// start(inbound) listens and starts the thread; stop() closes every socket and joins the
/// thread. The object is movable (Node::open takes its transport by value): its state lives
/// behind a pointer that never moves.

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include <pthread.h>

#include <array>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "dengine/core/error.hpp"
#include "dengine/net/config.hpp"
#include "dengine/net/connection.hpp"
#include "dengine/net/context.hpp"
#include "dengine/net/listener.hpp"
#include "dengine/net/metrics.hpp"
#include "dengine/node/transport.hpp"

namespace dengine::net {

class AsioTransport {
 public:
  /// Validates `config` and binds its listen address; nothing is accepted or sent before
  /// start(). Errors: invalid_argument (the config field), io_error (the bind).
  static result<AsioTransport> open(TransportConfig config) {
    DENGINE_TRYV(config.validate());
    DENGINE_TRY(listen, parse_address(config.listen, true));
    auto core = std::make_unique<Core>(std::move(config));
    DENGINE_TRY(listener, detail::Listener::bind(core->ctx, listen));
    core->listener = std::move(listener);
    return AsioTransport(std::move(core));
  }

  AsioTransport(AsioTransport&&) noexcept = default;
  AsioTransport& operator=(AsioTransport&& other) noexcept {
    if (this != &other) {
      stop();
      core_ = std::move(other.core_);
    }
    return *this;
  }
  AsioTransport(const AsioTransport&) = delete;
  AsioTransport& operator=(const AsioTransport&) = delete;
  ~AsioTransport() { stop(); }

  /// Replaces the peer list before start() (a test learns its peers' ports only after opening
  /// every transport). invalid_argument once started.
  result<void> set_peers(PeerAddresses peers) {
    if (core_->started)
      return error(errc::invalid_argument, "transport: set_peers() after start()");
    core_->ctx.config.peers = std::move(peers);
    return success();
  }

  /// Listens, and starts the I/O thread that delivers to `inbound`. Once only.
  result<void> start(node::InboundHandler inbound) {
    if (!core_ || core_->started)
      return error(errc::invalid_argument, "transport: start() called twice");
    Core& c = *core_;
    DENGINE_TRYV(c.listener->listen());
    c.ctx.inbound = std::move(inbound);
    c.ctx.members = c.ctx.config.peers.members();
    std::uint64_t seed = c.ctx.config.jitter_seed;
    if (seed == 0) seed = std::random_device{}();
    for (const auto& [id, address] : c.ctx.config.peers.all()) {
      if (id == c.ctx.config.self) continue;
      auto& lanes = c.peers[id];
      for (Lane lane : {Lane::control, Lane::bulk}) {
        const auto k = static_cast<std::size_t>(lane);
        lanes[k] = std::make_shared<detail::OutboundLane>(
            c.ctx, id, address, lane,
            lane == Lane::control ? c.ctx.config.control_queue : c.ctx.config.bulk_queue,
            seed ^ (id * 0x9E3779B97F4A7C15ULL) ^ k);
      }
    }
    c.work.emplace(c.ctx.io.get_executor());
    c.listener->accept_next();
    std::promise<void> ended;
    c.ended = ended.get_future();
    c.thread = std::thread([&c, ended = std::move(ended)]() mutable {
      c.ctx.io.run();
      ended.set_value();
    });
    (void)::pthread_setname_np(c.thread.native_handle(), "dengine-net");
    c.started = true;
    return success();
  }

  /// Queues `m` on the lane of its type to peer m.to, or drops it (counted): the queue is full,
  /// m.to has no address, or the transport is stopped. Never blocks; any thread.
  void send(raft::Message m) {
    if (!core_ || !core_->started || core_->ctx.stopping.load(std::memory_order_acquire)) return;
    Core& c = *core_;
    auto it = c.peers.find(m.to);
    if (it == c.peers.end()) {
      TransportMetrics::bump(c.ctx.metrics->dropped_unsendable);
      std::lock_guard lock(c.unknown_mutex);
      if (c.unknown.insert(m.to).second)
        c.ctx.log("no address for member " + std::to_string(m.to) +
                  ": its messages are dropped (logged once)");
      return;
    }
    it->second[static_cast<std::size_t>(lane_of(m))]->enqueue(std::move(m));
  }

  /// Closes the listener and every connection, then joins the I/O thread: once it returns no
  /// handler runs and `inbound` is never called again. Idempotent; it does not wait for any
  /// peer (closing a socket cancels whatever waits on it).
  void stop() {
    if (!core_ || core_->stopped) return;
    Core& c = *core_;
    c.stopped = true;
    c.ctx.stopping.store(true, std::memory_order_release);
    if (!c.started) return;
    boost::asio::post(c.ctx.io, [&c] {
      c.listener->close();
      for (auto& [id, lanes] : c.peers)
        for (auto& lane : lanes) lane->close();
    });
    c.work.reset();
    // Every operation was cancelled by the closes, so run() ends at once. Should one ever not
    // (a bug), stop anyway rather than hang the node's shutdown, and say so.
    if (c.ended.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
      c.ctx.log("stop: the I/O thread still had work 5 s after every socket closed; stopping it");
      c.ctx.io.stop();
    }
    c.thread.join();
  }

  /// The port the listener is bound to (the system's choice when the config said 0).
  [[nodiscard]] std::uint16_t port() const { return core_->listener->port(); }
  /// The counters; the pointer stays valid after the transport moved or was destroyed.
  [[nodiscard]] std::shared_ptr<const TransportMetrics> metrics() const {
    return core_->ctx.metrics;
  }
  /// {messages, bytes} queued for `peer` on `lane` now ({0, 0} for an unknown peer or before
  /// start()).
  [[nodiscard]] std::pair<std::size_t, std::size_t> queued(NodeId peer, Lane lane) const {
    auto it = core_->peers.find(peer);
    if (it == core_->peers.end()) return {0, 0};
    return it->second[static_cast<std::size_t>(lane)]->depth();
  }

 private:
  struct Core {
    explicit Core(TransportConfig config) : ctx(std::move(config)) {}
    // Declared first, destroyed last: the listener and lanes hold sockets of its io_context.
    detail::Context ctx;
    std::unique_ptr<detail::Listener> listener;
    /// Fixed at start(): read by send() on the node's thread without a lock.
    std::map<NodeId, std::array<std::shared_ptr<detail::OutboundLane>, 2>> peers;
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work;
    std::thread thread;
    std::future<void> ended;
    /// The ids send() found no address for (each logged once).
    std::mutex unknown_mutex;
    std::set<NodeId> unknown;
    bool started = false;
    bool stopped = false;
  };

  explicit AsioTransport(std::unique_ptr<Core> core) : core_(std::move(core)) {}

  std::unique_ptr<Core> core_;
};

static_assert(node::Transport<AsioTransport>);

}  // namespace dengine::net
