#pragma once
/// AsioTransport: the node::Transport over TCP (docs/network.md). It owns one I/O thread with
/// its own io_context (the node's event loop never waits on a socket), a listener for the
/// peers' connections, and per peer two outbound lanes — control and bulk, each its own TCP
/// connection with a bounded queue (connection.hpp, send_queue.hpp). send() only queues and
/// wakes the lane's writer; the I/O thread encodes, batches and writes.
///
/// Lifecycle: open(config) validates and binds the listen address (port() is then known);
/// start(inbound) listens and starts the thread; on_membership() (the node, on each
/// configuration change) or set_peers() changes who the peers are, before or after start;
/// stop() closes every socket and joins the thread. The object is movable (Node::open takes its
/// transport by value): its state lives behind a pointer that never moves.

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>

#include "dengine/core/error.hpp"
#include "dengine/net/config.hpp"
#include "dengine/net/connection.hpp"
#include "dengine/net/context.hpp"
#include "dengine/net/listener.hpp"
#include "dengine/net/metrics.hpp"
#include "dengine/net/peer_table.hpp"
#include "dengine/net/roster.hpp"
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
    DENGINE_TRY(listener, detail::Listener::bind(core->ctx, core->roster, listen));
    core->listener = std::move(listener);
    const TransportConfig& c = core->ctx.config;
    if (!c.advertise.empty())
      core->ctx.advertised = c.advertise;
    else if (!listen.endpoint().address().is_unspecified())
      core->ctx.advertised = PeerAddress{listen.host, core->listener->port()}.to_string();
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

  /// Makes `peers` the peer list (an entry for this member is ignored). Before start() it also
  /// replaces the configured addresses, the fallback of on_membership() (a test learns its
  /// peers' ports after opening every transport). After start() the transport follows it
  /// (docs/network.md, Changing the peers): a new peer gets its lanes; a removed one has its
  /// lanes closed, its queued messages dropped (counted in dropped_peer_removed), its later
  /// messages dropped as having no address, and its inbound connections closed (its hellos are
  /// refused from now on); a peer at a new address has its lanes closed (queued messages
  /// dropped, counted) and new ones dial the new address; a peer at the same address keeps its
  /// lanes and connections. Any thread, concurrently with send(); serialised with start(),
  /// on_membership() and stop(). errc::stopped once stop() was called (nothing changes).
  result<void> set_peers(const PeerAddresses& peers) {
    if (!core_) return error(errc::stopped, "transport: set_peers() on a moved-from transport");
    Core& c = *core_;
    std::lock_guard lock(c.lifecycle);
    if (c.stopped) return error(errc::stopped, "transport: set_peers() after stop()");
    retire(c, c.roster.set_list(peers));
    return success();
  }

  /// Follows the node's configuration `m` (node::MembershipAwareTransport; docs/network.md,
  /// Following the configuration): the peers become its members other than this node, each at
  /// its address in `m`, else at the address configured at open() (or by set_peers() before
  /// start), else not listed; an address that does not parse is logged (once per text) and its
  /// member not listed. Then as set_peers() with that list; in addition, an id that is no longer
  /// a member is removed (its hellos are refused even when they give an address) until it is a
  /// member again. The node calls it on its event loop; any thread will do. Nothing after
  /// stop().
  void on_membership(const Membership& m) {
    if (!core_) return;
    Core& c = *core_;
    std::lock_guard lock(c.lifecycle);
    if (c.stopped) return;
    retire(c, c.roster.follow(m));
  }

  /// Listens, and starts the I/O thread that delivers to `inbound`. Once only.
  result<void> start(node::InboundHandler inbound) {
    if (!core_) return error(errc::invalid_argument, "transport: start() on a moved-from one");
    Core& c = *core_;
    std::lock_guard lock(c.lifecycle);
    if (c.started.load(std::memory_order_relaxed))
      return error(errc::invalid_argument, "transport: start() called twice");
    if (c.stopped) return error(errc::stopped, "transport: start() after stop()");
    DENGINE_TRYV(c.listener->listen());
    c.ctx.inbound = std::move(inbound);
    c.roster.start();
    c.work.emplace(c.ctx.io.get_executor());
    c.listener->accept_next();
    std::promise<void> ended;
    c.ended = ended.get_future();
    c.thread = std::thread([&c, ended = std::move(ended)]() mutable {
      c.ctx.io.run();
      ended.set_value();
    });
    (void)::pthread_setname_np(c.thread.native_handle(), "dengine-net");
    c.started.store(true, std::memory_order_release);
    return success();
  }

  /// Queues `m` on the lane of its type to peer m.to, or drops it (counted): the queue is full,
  /// m.to has no address (neither listed now nor learned from its hello), or the transport is
  /// stopped. Never blocks beyond two short mutexes (the peer table's lookup, the queue); any
  /// thread, concurrently with set_peers() and on_membership().
  void send(raft::Message m) {
    if (!core_ || !core_->started.load(std::memory_order_acquire) ||
        core_->ctx.stopping.load(std::memory_order_acquire))
      return;
    Core& c = *core_;
    const Lane lane = lane_of(m);
    // A lane that set_peers() retired after our lookup refuses `m`; the table had already
    // dropped it, so the next lookup finds the peer's new lane, or none. Another round needs
    // another set_peers() in between.
    while (auto target = c.table.find(m.to, lane))
      if (target->enqueue(m)) return;
    TransportMetrics::bump(c.ctx.metrics->dropped_unsendable);
    if (c.table.first_unknown(m.to))
      c.ctx.log("no address for member " + std::to_string(m.to) +
                ": its messages are dropped (logged once until it is listed again)");
  }

  /// Closes the listener and every connection, then joins the I/O thread: once it returns no
  /// handler runs and `inbound` is never called again. Idempotent; it does not wait for any
  /// peer (closing a socket cancels whatever waits on it).
  void stop() {
    if (!core_) return;
    Core& c = *core_;
    {
      std::lock_guard lock(c.lifecycle);
      if (c.stopped) return;
      c.stopped = true;
      c.ctx.stopping.store(true, std::memory_order_release);
      if (!c.started.load(std::memory_order_relaxed)) return;
      // After every change set_peers() posted: lanes it retired are closed by then.
      boost::asio::post(c.ctx.io, [&c] {
        c.listener->close();
        for (auto& lane : c.table.lanes()) lane->close();
      });
    }
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
    auto target = core_->table.find(peer, lane);
    return target ? target->depth() : std::pair<std::size_t, std::size_t>{0, 0};
  }

 private:
  struct Core {
    explicit Core(TransportConfig config)
        : ctx(std::move(config)),
          table(ctx, jitter_seed(ctx.config.jitter_seed)),
          roster(ctx, table) {}
    static std::uint64_t jitter_seed(std::uint64_t configured) {
      return configured != 0 ? configured : std::random_device{}();
    }
    // Declared first, destroyed last: the listener and lanes hold sockets of its io_context.
    detail::Context ctx;
    /// The peers and their lanes: written by the roster (from start() on), read by send().
    detail::PeerTable table;
    /// Who the peers are and whose hellos are accepted (members, removed, learned).
    detail::Roster roster;
    /// Holds a reference to the roster: declared after it, destroyed before it.
    std::unique_ptr<detail::Listener> listener;
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work;
    std::thread thread;
    std::future<void> ended;
    /// Serialises start(), set_peers(), on_membership() and stop() (not send(): it reads
    /// `started` and the table, each safe on its own), and so orders the changes they post.
    std::mutex lifecycle;
    std::atomic<bool> started{false};
    bool stopped = false;  ///< under `lifecycle`
  };

  explicit AsioTransport(std::unique_ptr<Core> core) : core_(std::move(core)) {}

  /// After a roster change, under `lifecycle`: posts to the I/O thread the closing of removed
  /// members' inbound connections and the retiring of `retired` (posted under `lifecycle`, so
  /// the I/O thread applies changes in the order they were made). The table changed first: a
  /// send() that still finds a lane retired here looks again. Nothing before start().
  static void retire(Core& c, detail::Roster::Retired retired) {
    if (!c.started.load(std::memory_order_relaxed)) return;
    boost::asio::post(c.ctx.io, [&c, retired = std::move(retired)]() mutable {
      c.listener->close_removed();
      for (auto& lane : retired) lane->retire();
    });
  }

  std::unique_ptr<Core> core_;
};

static_assert(node::MembershipAwareTransport<AsioTransport>);

}  // namespace dengine::net
