#pragma once
/// What an AsioTransport is told: who it is, where it listens, where its peers are, and the
/// bounds of its queues, writes and reconnects (docs/network.md, Configuration).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <string_view>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/net/backoff.hpp"
#include "dengine/net/peer_addresses.hpp"
#include "dengine/net/send_queue.hpp"
#include "dengine/storage/member_addresses_codec.hpp"
#include "dengine/wire/frame.hpp"
#include "dengine/wire/snapshot_stream.hpp"

namespace dengine::net {

/// Where the transport's log lines go (the same shape as node::NodeCallbacks::log); null: one
/// line each on stderr.
using log_function = std::function<void(std::string_view line)>;

struct TransportConfig {
  /// This member's id; its peers' hellos must name it.
  NodeId self = no_node;
  /// The cluster's id; a hello of another cluster is refused.
  std::uint64_t cluster_id = 0;
  /// Where to accept peer connections; port 0 lets the system choose (AsioTransport::port()).
  std::string listen = "127.0.0.1:0";
  /// Where the peers reach this node, given in its hellos so a peer that does not list it yet
  /// can answer it ("host:port"). Empty: `listen` with the bound port — none at all when the
  /// listen host is a wildcard (0.0.0.0), which peers cannot dial.
  std::string advertise;
  /// The other members and their addresses (entries for `self` are ignored). They are also the
  /// fallback for a member whose configuration gives no address (on_membership()).
  PeerAddresses peers;
  /// Per peer: heartbeats, votes and responses (small, many).
  QueueLimits control_queue{1024, 4U << 20U};
  /// Per peer: appends with entries, forwarded proposals (few, large).
  QueueLimits bulk_queue{1024, 64U << 20U};
  /// Per peer: snapshots waiting for their stream (the lane streams the newest one only).
  QueueLimits snapshot_queue{4, std::size_t{4} << 30U};
  /// Data bytes per snapshot_chunk frame (docs/network.md, Snapshot streams).
  std::size_t snapshot_chunk_bytes = 256U << 10U;
  /// Chunks a snapshot stream sends ahead of the receiver's acknowledgement.
  std::size_t snapshot_window_chunks = 8;
  /// Outgoing snapshot bytes per second, all peers together (net/rate_limiter.hpp); 0:
  /// unlimited. Appends and heartbeats are not limited: they travel on other connections.
  std::uint64_t snapshot_rate_bytes_per_second = std::uint64_t{128} << 20U;
  /// The largest snapshot this node streams or accepts (as an encoded message). A receiver
  /// holds an incoming stream in memory until it is whole, so this bounds that memory per
  /// sender. A larger snapshot is not sent (logged, counted in dropped_unsendable).
  std::uint64_t max_snapshot_bytes = std::uint64_t{1} << 30U;
  /// A write gathers a lane's queued messages up to this many encoded bytes into one frame (a
  /// larger single message goes alone, up to frame_limits.max_payload).
  std::size_t batch_bytes = 1U << 20U;
  /// What inbound frames may be; the same max_payload is assumed of the peers when sending.
  wire::FrameLimits frame_limits{};
  BackoffConfig backoff{};
  /// Seeds the back-off jitter (each peer and lane draws from its own engine seeded from it);
  /// 0: a random seed.
  std::uint64_t jitter_seed = 0;
  log_function log;

  [[nodiscard]] result<void> validate() const {
    if (self == no_node) return error(errc::invalid_argument, "transport: self is member id 0");
    DENGINE_TRYV(parse_address(listen, true));
    if (advertise.size() > storage::max_address_size)
      return error(errc::invalid_argument,
                   "transport: advertise: " + std::to_string(advertise.size()) +
                       " bytes, over the limit of " + std::to_string(storage::max_address_size));
    if (!advertise.empty()) {
      if (auto parsed = parse_address(advertise); !parsed)
        return error(errc::invalid_argument, "transport: advertise: " + parsed.error().detail);
    }
    DENGINE_TRYV(control_queue.validate("control"));
    DENGINE_TRYV(bulk_queue.validate("bulk"));
    DENGINE_TRYV(snapshot_queue.validate("snapshot"));
    if (snapshot_chunk_bytes == 0 ||
        snapshot_chunk_bytes + wire::chunk_header_size > frame_limits.max_payload)
      return error(errc::invalid_argument,
                   "transport: snapshot_chunk_bytes " + std::to_string(snapshot_chunk_bytes) +
                       " must be above 0 and at most frame_limits.max_payload − " +
                       std::to_string(wire::chunk_header_size));
    if (snapshot_window_chunks == 0 || snapshot_window_chunks > 1024)
      return error(errc::invalid_argument, "transport: snapshot_window_chunks " +
                                               std::to_string(snapshot_window_chunks) +
                                               " must be in 1..1024");
    // The message encoding gives a snapshot's data length in 32 bits (docs/wire.md).
    if (max_snapshot_bytes == 0 || max_snapshot_bytes > std::numeric_limits<std::uint32_t>::max())
      return error(errc::invalid_argument,
                   "transport: max_snapshot_bytes " + std::to_string(max_snapshot_bytes) +
                       " must be above 0 and below 4 GiB (the wire's 32-bit data length)");
    DENGINE_TRYV(backoff.validate());
    if (batch_bytes == 0 || batch_bytes > frame_limits.max_payload)
      return error(errc::invalid_argument,
                   "transport: batch_bytes " + std::to_string(batch_bytes) +
                       " must be above 0 and at most frame_limits.max_payload " +
                       std::to_string(frame_limits.max_payload));
    return success();
  }
};

}  // namespace dengine::net
