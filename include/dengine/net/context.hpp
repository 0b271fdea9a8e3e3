#pragma once
/// What the transport's pieces (outbound lanes, the listener, inbound connections) share: the
/// I/O context their handlers run on, the config, the counters, the log, the inbound handler,
/// and the stopping flag. Owned by AsioTransport; every piece holds a reference and runs on
/// the one I/O thread, except where a member says otherwise.

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include "dengine/net/config.hpp"
#include "dengine/net/metrics.hpp"
#include "dengine/net/rate_limiter.hpp"
#include "dengine/node/transport.hpp"

namespace dengine::net::detail {

struct Context {
  explicit Context(TransportConfig c)
      : config(std::move(c)),
        snapshot_rate(config.snapshot_rate_bytes_per_second, config.snapshot_chunk_bytes) {}

  /// Logs one line, prefixed with this member's id (so lines of several nodes in one log tell
  /// apart). Any thread.
  void log(std::string_view line) const {
    std::string out = "transport " + std::to_string(config.self) + ": " + std::string(line);
    if (config.log) {
      config.log(out);
      return;
    }
    out += '\n';
    std::fwrite(out.data(), 1, out.size(), stderr);
  }

  /// Hands `m` to the node unless stop() began. I/O thread only; stop() joins that thread, so
  /// no call outlives stop().
  void deliver(raft::Message m) {
    if (stopping.load(std::memory_order_acquire)) return;
    TransportMetrics::bump(metrics->received);
    inbound(std::move(m));
  }

  boost::asio::io_context io;
  /// Read-only once start() began. config.peers is the list the transport was opened with:
  /// set_peers() and on_membership() change the roster (roster.hpp), not this.
  TransportConfig config;
  /// Paces every snapshot lane's chunks (I/O thread only).
  RateLimiter snapshot_rate;
  /// The address this node's hellos give (config.advertise, else the listen address with the
  /// bound port; empty for a wildcard listen host). Set by open(), read-only after.
  std::string advertised;
  /// Shared so a test keeps reading it after the transport moved into a node.
  std::shared_ptr<TransportMetrics> metrics = std::make_shared<TransportMetrics>();
  /// Set by start() before the I/O thread starts; read only on that thread.
  node::InboundHandler inbound;
  /// Set by stop(): handlers close what they hold instead of going on; send() drops.
  std::atomic<bool> stopping{false};
};

}  // namespace dengine::net::detail
