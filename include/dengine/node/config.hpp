#pragma once
/// Configuration of a Node: the Raft protocol parameters plus the runtime's own (persistence
/// mode, tick period, request bounds and timeouts, snapshot threshold), with validated defaults.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "dengine/core/config.hpp"
#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/storage/member_addresses_codec.hpp"

namespace dengine::node {

/// How a read is served (docs/node.md).
enum class ReadConsistency : std::uint8_t {
  /// ReadIndex: the leader confirms it still leads with a heartbeat quorum; the read runs once
  /// this node applied up to the leader's commit index at the time of the request. On a
  /// follower the index is fetched from the leader and the read is served locally.
  linearizable,
  /// The leader serves at its commit index while its lease holds (no round trip); falls back to
  /// ReadIndex when the lease is not held. Leader only (not_leader with a hint elsewhere).
  lease,
  /// This node's local state, now: may be stale, never waits for the network.
  serializable,
};

[[nodiscard]] constexpr std::string_view to_string(ReadConsistency c) noexcept {
  switch (c) {
    case ReadConsistency::linearizable: return "linearizable";
    case ReadConsistency::lease: return "lease";
    case ReadConsistency::serializable: return "serializable";
  }
  return "unknown";
}

/// Everything a Node needs besides its storage, state machine and transport.
struct NodeConfig {
  /// The protocol parameters; raft.id is this node's id.
  RaftConfig raft;
  /// When an entry counts towards commitment on this node (docs/persistence.md).
  PersistenceMode persistence = PersistenceMode::disk_first;
  /// The founding voters of a new cluster, this node included. Used only when the storage is
  /// fresh (no hard state, no log, no compaction point); ignored afterwards, since the storage
  /// then knows the membership. A node joining an existing cluster lists the current voters.
  std::vector<NodeId> initial_members;
  /// The founding members' peer addresses (keys among initial_members; members of an in-process
  /// cluster need none). Like initial_members, used only to bootstrap fresh storage: they become
  /// the first configuration's Membership::addresses, and later members bring theirs in the
  /// config change that adds them.
  std::map<NodeId, std::string> initial_addresses;
  /// Length of one Raft tick (raft.election_ticks ticks make an election timeout).
  std::chrono::microseconds tick_period{std::chrono::milliseconds(10)};
  /// A request not completed within this time fails with errc::timeout (outcome unknown).
  std::chrono::microseconds request_timeout{std::chrono::seconds(10)};
  /// A proposal made on a follower (or while no leader is known) is forwarded to the leader
  /// and completes here once its entry is applied here: the caller sees a leader change only as
  /// latency. false: such a proposal fails with not_leader naming the leader (id in
  /// error::leader_hint, peer address in error::leader_address), for applications that route
  /// requests themselves. Membership changes are never forwarded.
  bool forward_proposals = true;
  /// Proposals admitted and not yet completed; past it propose() fails with too_busy.
  std::size_t max_pending_proposals = 8192;
  /// Reads admitted and not yet completed; past it read() fails with too_busy.
  std::size_t max_pending_reads = 8192;
  /// Ready batches handed to the log writer and not yet reported persisted. Past it the event
  /// loop stops taking Readies from the core until the writer catches up (back-pressure).
  std::size_t max_inflight_persist = 256;
  /// Apply batches handed to the applier and not yet reported applied (same back-pressure).
  std::size_t max_inflight_apply = 256;
  /// Committed entries handed to the state machine per apply call; each call's proposals are
  /// completed before the next call. 0 = a whole committed batch per call. Smaller chunks let
  /// the first clients of a large batch go on sooner — and the threaded arrangement sends the
  /// requests that completion handlers issue to the event loop after every chunk, so the loop
  /// proposes them while the rest of the batch applies (a pipeline instead of one convoy of
  /// every client). Each call is one state-machine write: for a KV store whose write is a
  /// durable transaction (LMDB, SQLite in DiskFirst) that is one sync per chunk, so keep 0
  /// there. EmbeddedEngine uses 16 for the in-memory backend when this is 0
  /// (embedded_engine.hpp); a value at least a batch's size, e.g. SIZE_MAX, applies whole
  /// batches there too.
  std::size_t apply_chunk_entries = 0;
  /// Take a snapshot of the state machine once this many bytes of entries (entry_size) were
  /// applied since the last one, then compact the log. 0 disables snapshots.
  std::size_t snapshot_threshold_bytes = 64U << 20;
  /// Threaded arrangement: how long the event loop, log writer and applier poll for new work
  /// before they sleep. Waking a sleeping thread costs tens of microseconds on a VM — several
  /// times a request's own work — and a request crosses four such hand-offs; a short poll after
  /// each busy moment keeps an idle-ish node's latency low. It costs CPU only right after work
  /// (never while idle for longer than this). 0 = always sleep at once.
  std::chrono::microseconds idle_spin{50};
  /// Deterministic arrangement only: the virtual time one log-writer batch (append + sync) takes.
  std::chrono::microseconds sim_sync_latency{200};
  /// Deterministic arrangement only: the virtual time one applier pass takes.
  std::chrono::microseconds sim_apply_latency{20};

  /// invalid_argument naming the offending field (checks raft too), or success.
  [[nodiscard]] result<void> validate() const {
    DENGINE_TRYV(raft.validate());
    auto bad = [](std::string what) {
      return error(errc::invalid_argument, "node config: " + std::move(what));
    };
    if (tick_period <= std::chrono::microseconds::zero())
      return bad("tick_period must be positive");
    if (request_timeout <= std::chrono::microseconds::zero())
      return bad("request_timeout must be positive");
    if (max_pending_proposals == 0) return bad("max_pending_proposals must be positive");
    if (max_pending_reads == 0) return bad("max_pending_reads must be positive");
    if (max_inflight_persist == 0) return bad("max_inflight_persist must be positive");
    if (max_inflight_apply == 0) return bad("max_inflight_apply must be positive");
    if (idle_spin < std::chrono::microseconds::zero() || idle_spin > std::chrono::milliseconds(10))
      return bad("idle_spin must be between 0 and 10 ms");
    if (sim_sync_latency < std::chrono::microseconds::zero() ||
        sim_apply_latency < std::chrono::microseconds::zero())
      return bad("sim latencies must not be negative");
    for (NodeId m : initial_members)
      if (m == no_node) return bad("initial_members contains node id 0");
    std::map<std::string_view, NodeId> owners;
    for (const auto& [id, address] : initial_addresses) {
      if (std::find(initial_members.begin(), initial_members.end(), id) == initial_members.end())
        return bad("initial_addresses names node " + std::to_string(id) +
                   ", which is not in initial_members");
      if (address.empty() || address.size() > storage::max_address_size)
        return bad("initial_addresses: the address of node " + std::to_string(id) + " is " +
                   std::to_string(address.size()) + " bytes (1 to " +
                   std::to_string(storage::max_address_size) + " allowed)");
      if (auto [it, fresh] = owners.emplace(address, id); !fresh)
        return bad("initial_addresses: nodes " + std::to_string(it->second) + " and " +
                   std::to_string(id) + " have the same address " + address);
    }
    return success();
  }
};

}  // namespace dengine::node
