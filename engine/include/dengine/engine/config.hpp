#pragma once
/// EngineConfig: everything an EmbeddedEngine (or a KvReplica in a simulation) needs — the
/// node's Raft and runtime settings, the KV state machine's options, the lease timing and the
/// request limits — with validated defaults. One line gives a working single node:
///
///   auto config = dengine::engine::EngineConfig::single_node("/var/lib/app");

#include <any>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/engine/network_config.hpp"
#include "dengine/node/config.hpp"
#include "dengine/node/events.hpp"
#include "dengine/statemachines/kv/options.hpp"

namespace dengine::engine {

/// Configuration of one KV replica (node + KV state machine + lessor).
struct EngineConfig {
  /// Where the backend keeps its files: `<data_dir>/raft` (log and hard state), `<data_dir>/kv`
  /// (KV store), `<data_dir>/snap` (snapshot image). Unused by the in-memory backend.
  std::filesystem::path data_dir;
  /// Raft and runtime settings: node.raft.id is this node's id, node.initial_members the
  /// founding voters of a new cluster (a node joining a running cluster lists its voters).
  node::NodeConfig node;
  /// KV state machine options (watch history and queue bounds, snapshot chunking).
  kv::KvOptions kv;
  /// Lease timing (minimum TTL, extension on leader change, revoke retry).
  kv::LessorOptions lessor;
  /// Request size limits checked before a request is proposed (etcd's defaults).
  /// EmbeddedEngine lowers limits.store to what its backend can store (Backend traits); set it
  /// lower yourself to keep the members of a cluster that run different backends within the
  /// smallest one's limits (docs/kv.md, "Limits").
  kv::RequestLimits limits;
  /// Settings of the backend itself, e.g. `dengine::rawfile::Tuning{.segment_bytes = 8 << 20}`:
  /// empty = the backend's defaults; otherwise it must hold the engine's `B::tuning` type
  /// (EmbeddedEngine::start refuses anything else, and any value for a backend without one).
  std::any backend_tuning;
  /// This cluster's id, recorded in the data dir's marker when the data dir is created and
  /// checked at every later start: a data dir of another cluster is refused. 0 = none
  /// configured (nothing to check; a marker without one takes the first id configured later).
  /// dengine does not derive one: every member would have to derive the same value, and a
  /// member that joins later is told only the current voters, not the founding ones.
  std::uint64_t cluster_id = 0;
  /// How often EmbeddedEngine raises the bounds in the data dir's marker to what the node has
  /// made durable (one small file write per interval, only when the node advanced;
  /// data_dir_guard.hpp). The marker also moves at start and at a clean stop.
  std::chrono::milliseconds marker_interval{std::chrono::seconds(1)};
  /// How often expired leases are looked for (and their revokes proposed) on the leader.
  std::chrono::milliseconds housekeeping_interval{50};
  /// How often watches created with progress_notify get a progress notification when idle
  /// (etcd's default is 10 minutes; shorter here so that embedded users see it).
  std::chrono::milliseconds progress_notify_interval{std::chrono::seconds(10)};
  /// At most this many revokes are proposed per housekeeping pass (the rest wait a pass).
  std::size_t max_revokes_per_pass = 500;
  /// How many times a linearizable or lease read runs while its answers keep meeting keys of
  /// expired leases: each run revokes the leases it met, then the read runs again; after this
  /// many it fails with unavailable (leases kept expiring faster than their revokes committed).
  std::size_t max_read_rounds = 4;
  /// Set: the members run in separate processes and this node reaches its peers over TCP
  /// (network_config.hpp; make one with network_member()). Unset: an in-process cluster (or a
  /// single node) on a LocalHub.
  std::optional<NetworkConfig> network;
  /// Leader and membership change notifications (run on the apply thread, in order; they must
  /// not block for long nor stop the engine), and `log`: where the node's log lines go (a fatal
  /// storage error, once, with the file and cause; stderr when unset). Not `leader_service`:
  /// the replica's own answers lease keep-alives (validate() refuses one set here).
  node::NodeCallbacks callbacks;

  /// A single voting node with id 1 and data under `data_dir`.
  static EngineConfig single_node(std::filesystem::path data_dir) {
    return cluster_member(std::move(data_dir), 1, {1});
  }

  /// Node `id` of a cluster whose founding voters are `members` (`id` among them), or which
  /// joins a running cluster whose voters are `members` (`id` not among them: it starts as a
  /// non-member until the leader adds it).
  static EngineConfig cluster_member(std::filesystem::path data_dir, NodeId id,
                                     std::vector<NodeId> members) {
    EngineConfig c;
    c.data_dir = std::move(data_dir);
    c.node.raft.id = id;
    c.node.initial_members = std::move(members);
    return c;
  }

  /// Node `id` of a cluster whose members run in separate processes, listening for its peers
  /// at `listen` (also its advertised address). `members` maps ids to addresses: founding a new
  /// cluster, every founding member (`id` included); joining a running one, its current voters
  /// (`id` not among them: the leader then adds it with add_learner(id, listen)). Set
  /// `cluster_id` too: every member of the cluster must use the same non-zero id.
  static EngineConfig network_member(std::filesystem::path data_dir, NodeId id,
                                     std::map<NodeId, std::string> members, std::string listen) {
    std::vector<NodeId> ids;
    ids.reserve(members.size());
    for (const auto& [member, address] : members) ids.push_back(member);
    EngineConfig c = cluster_member(std::move(data_dir), id, std::move(ids));
    c.node.initial_addresses = members;
    c.network = NetworkConfig{std::move(listen), {}, std::move(members)};
    return c;
  }

  /// invalid_argument naming the offending field, or success.
  [[nodiscard]] result<void> validate() const {
    DENGINE_TRYV(node.validate());
    auto bad = [](std::string what) {
      return error(errc::invalid_argument, "engine config: " + std::move(what));
    };
    if (node.raft.id == no_node) return bad("node.raft.id must not be 0");
    if (network) DENGINE_TRYV(validate_network(*network));
    if (callbacks.leader_service)
      return bad(
          "callbacks.leader_service must be unset: the KV replica's own answers lease "
          "keep-alives");
    if (housekeeping_interval <= std::chrono::milliseconds::zero())
      return bad("housekeeping_interval must be positive");
    if (progress_notify_interval <= std::chrono::milliseconds::zero())
      return bad("progress_notify_interval must be positive");
    if (max_revokes_per_pass == 0) return bad("max_revokes_per_pass must be positive");
    if (max_read_rounds == 0) return bad("max_read_rounds must be positive");
    if (marker_interval <= std::chrono::milliseconds::zero())
      return bad("marker_interval must be positive");
    if (lessor.min_ttl.count() <= 0) return bad("lessor.min_ttl must be positive");
    if (lessor.revoke_retry <= std::chrono::milliseconds::zero())
      return bad("lessor.revoke_retry must be positive");
    if (lessor.promote_extend < std::chrono::milliseconds::zero())
      return bad("lessor.promote_extend must not be negative");
    if (limits.max_request_bytes == 0) return bad("limits.max_request_bytes must be positive");
    if (limits.max_txn_ops == 0) return bad("limits.max_txn_ops must be positive");
    return success();
  }

 private:
  // What can be checked without parsing addresses (the engine parses them when it starts).
  [[nodiscard]] result<void> validate_network(const NetworkConfig& net) const {
    auto bad = [](std::string what) {
      return error(errc::invalid_argument, "engine config: network." + std::move(what));
    };
    if (net.listen.empty()) return bad("listen is empty (give host:port)");
    if (net.members.empty())
      return bad("members is empty: list the founding members, or the voters to join");
    if (cluster_id == 0)
      return error(errc::invalid_argument,
                   "engine config: cluster_id must be set (non-zero, the same on every member) "
                   "for a cluster over the network: peers of another cluster are refused by it");
    const NodeId self = node.raft.id;
    if (auto it = net.members.find(self); it != net.members.end() && it->second != net.advertised())
      return bad("members gives this node (" + std::to_string(self) + ") the address " +
                 it->second + ", but it advertises " + net.advertised());
    std::vector<NodeId> listed;
    listed.reserve(net.members.size());
    for (const auto& [id, address] : net.members) listed.push_back(id);
    if (listed != node.initial_members || net.members != node.initial_addresses)
      return bad(
          "members must match node.initial_members and node.initial_addresses (use "
          "EngineConfig::network_member)");
    return success();
  }
};

}  // namespace dengine::engine
