#pragma once
/// The transport's current peers and their outbound lanes (connection.hpp): what send() looks
/// a message's receiver up in, and what the roster (roster.hpp) changes while the transport
/// runs — on set_peers(), on_membership(), or a sender learned from its hello (docs/network.md,
/// Changing the peers, Following the configuration).
///
/// Threads: find() from any thread (send()), under a mutex held only for the lookup and the
/// copy of one shared_ptr. replace() builds the new map outside that mutex and swaps it in
/// under it; its callers serialise it (the roster's mutex). Lanes are made on the caller's
/// thread — eagerly, so a send() after set_peers() returned finds the new peer's lane;
/// a lane opens no connection until something is queued on it. Retiring the lanes that left
/// the map is the caller's job, on the I/O thread, after replace() returned: so a send() that
/// finds a retired lane (enqueue() false) finds the current one, or none, when it looks again.

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "dengine/net/connection.hpp"
#include "dengine/net/context.hpp"
#include "dengine/net/peer_addresses.hpp"

namespace dengine::net::detail {

class PeerTable {
 public:
  /// `seed` seeds the lanes' back-off jitter (each peer and lane its own engine).
  PeerTable(Context& ctx, std::uint64_t seed) : ctx_(ctx), seed_(seed) {}

  /// The lane `lane` to `peer` now; null when `peer` is not listed. Any thread.
  [[nodiscard]] std::shared_ptr<OutboundLane> find(NodeId peer, Lane lane) const {
    std::lock_guard lock(mutex_);
    auto it = peers_.find(peer);
    if (it == peers_.end()) return nullptr;
    return it->second.lanes[static_cast<std::size_t>(lane)];
  }

  /// Makes `list` the peers (an entry for this member is ignored). A peer listed at the address
  /// it had keeps its lanes, connections and queues; a new peer, or one at a new address, gets
  /// new lanes. Returns the lanes that left the table (peer removed or moved), which the caller
  /// must retire() on the I/O thread. Logs each change. Callers serialise replace().
  std::vector<std::shared_ptr<OutboundLane>> replace(const PeerAddresses& list) {
    // Only replace() writes peers_, and its callers are serialised: reading it here without
    // the mutex races with nothing (find() only reads too).
    Map next;
    for (const auto& [id, address] : list.all()) {
      if (id == ctx_.config.self) continue;
      auto old = peers_.find(id);
      if (old != peers_.end() && old->second.address == address) {
        next.emplace(id, old->second);
        continue;
      }
      next.emplace(id, Peer{address, make_lanes(id, address)});
      ctx_.log(old == peers_.end()
                   ? "peers: member " + std::to_string(id) + " added at " + address.to_string()
                   : "peers: member " + std::to_string(id) + " moved from " +
                         old->second.address.to_string() + " to " + address.to_string() +
                         " (its connections reopen)");
    }
    std::vector<std::shared_ptr<OutboundLane>> retired;
    for (const auto& [id, peer] : peers_) {
      auto now = next.find(id);
      if (now != next.end() && now->second.lanes == peer.lanes) continue;
      if (now == next.end())
        ctx_.log("peers: member " + std::to_string(id) + " removed (was at " +
                 peer.address.to_string() + ")");
      retired.insert(retired.end(), peer.lanes.begin(), peer.lanes.end());
    }
    {
      std::lock_guard lock(mutex_);
      peers_.swap(next);
      // A member listed again may be unknown again later: its "no address" line logs again.
      for (const auto& [id, peer] : peers_) unknown_.erase(id);
    }
    return retired;  // `next`, now the old map, is freed outside the mutex
  }

  /// Every lane in the table (stop() closes them). Any thread.
  [[nodiscard]] std::vector<std::shared_ptr<OutboundLane>> lanes() const {
    std::lock_guard lock(mutex_);
    std::vector<std::shared_ptr<OutboundLane>> out;
    for (const auto& [id, peer] : peers_)
      out.insert(out.end(), peer.lanes.begin(), peer.lanes.end());
    return out;
  }

  /// True the first time a send() finds no lane for `peer` since it was last listed (so its
  /// "no address" line is logged once per absence, not once per message). Any thread.
  bool first_unknown(NodeId peer) {
    std::lock_guard lock(mutex_);
    return unknown_.insert(peer).second;
  }

 private:
  using Lanes = std::array<std::shared_ptr<OutboundLane>, lane_count>;
  struct Peer {
    PeerAddress address;
    Lanes lanes;  ///< indexed by Lane; never null
  };
  using Map = std::map<NodeId, Peer>;

  Lanes make_lanes(NodeId id, const PeerAddress& address) {
    Lanes lanes;
    for (Lane lane : {Lane::control, Lane::bulk, Lane::snapshot}) {
      const auto k = static_cast<std::size_t>(lane);
      lanes[k] = std::make_shared<OutboundLane>(ctx_, id, address, lane, limits_of(lane),
                                                seed_ ^ (id * 0x9E3779B97F4A7C15ULL) ^ k);
    }
    return lanes;
  }

  [[nodiscard]] const QueueLimits& limits_of(Lane lane) const {
    switch (lane) {
      case Lane::control: return ctx_.config.control_queue;
      case Lane::bulk: return ctx_.config.bulk_queue;
      case Lane::snapshot: return ctx_.config.snapshot_queue;
    }
    return ctx_.config.bulk_queue;
  }

  Context& ctx_;
  const std::uint64_t seed_;
  mutable std::mutex mutex_;
  /// Written by replace() under mutex_ only.
  Map peers_;
  /// The ids a send() found no lane for since they were last listed.
  std::set<NodeId> unknown_;
};

}  // namespace dengine::net::detail
