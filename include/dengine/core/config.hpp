#pragma once
/// Configuration of the Raft protocol, with validated defaults. Times are in ticks: the embedding
/// runtime decides how long a tick is (the Node uses a configurable period, the simulator virtual
/// time), which keeps the core free of clocks.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"

namespace dengine {

/// How an entry counts towards commitment on the node that holds it.
enum class PersistenceMode : std::uint8_t {
  disk_first,  ///< counted once fsynced (classic Raft; survives power loss of every node)
  mem_first,   ///< counted once in memory; fsynced in background batches (see docs/persistence.md)
};

/// Protocol parameters of one node. `validate()` rejects anything the protocol cannot run with.
struct RaftConfig {
  /// This node's id; must not be 0.
  NodeId id = no_node;
  /// Ticks without hearing a leader before a follower starts an election. The actual timeout is
  /// randomized in [election_ticks, 2 * election_ticks) so that candidates rarely collide.
  std::uint32_t election_ticks = 10;
  /// Ticks between a leader's heartbeats. Must be well below election_ticks.
  std::uint32_t heartbeat_ticks = 1;
  /// Run a pre-vote round before a real election, so a node that was partitioned away does not
  /// raise the cluster's term and depose a healthy leader when it returns.
  bool pre_vote = true;
  /// A leader that has not heard from a quorum within an election timeout steps down; followers
  /// that heard from a leader within the timeout ignore votes (leader stickiness).
  bool check_quorum = true;
  /// Serve lease reads: allowed only with check_quorum (otherwise a deposed leader could serve
  /// stale reads while it still believes it leads).
  bool lease_reads = true;
  /// Lease length in ticks, counted from the tick in which the heartbeat round that a quorum
  /// acknowledged was *sent* (a runtime with a clock anchors it to the time that tick began).
  /// 0 means max_lease_ticks(), the longest lease that is safe given clock_drift_percent; a
  /// non-zero value must not exceed it. docs/raft.md ("Lease reads") gives the argument.
  std::uint32_t lease_ticks = 0;
  /// The most two nodes' clocks may differ in *rate*, in percent (not in offset: no clocks are
  /// compared). Followers keep their promise for election_ticks - 1 tick periods of their own
  /// clock after hearing a round; a leader's lease must end before that on its clock, whichever
  /// clock runs fast. Quartz clocks drift by well under 0.1 %; the default leaves room for a
  /// virtual machine's clock being slewed or throttled. Must be below 50.
  std::uint32_t clock_drift_percent = 5;
  /// Upper bound on entry bytes in one append message.
  std::size_t max_append_bytes = 1U << 20;
  /// Upper bound on entries in one append message.
  std::size_t max_append_entries = 4096;
  /// Bounded in-flight window per follower: append messages not yet acknowledged...
  std::size_t max_inflight_messages = 256;
  /// ...and their bytes.
  std::size_t max_inflight_bytes = 32U << 20;
  /// Bound on proposed-but-uncommitted entry bytes at the leader; past it proposals fail too_busy.
  std::size_t max_uncommitted_bytes = 64U << 20;
  /// Largest single entry accepted by propose() (and forwarded proposals and leader calls).
  std::size_t max_entry_bytes = 8U << 20;
  /// too_large naming `what` and both sizes when `bytes` exceeds max_entry_bytes.
  [[nodiscard]] result<void> check_entry_size(std::string_view what, std::size_t bytes) const {
    if (bytes <= max_entry_bytes) return success();
    return error(errc::too_large, std::string(what) + " of " + std::to_string(bytes) +
                                      " bytes exceeds max_entry_bytes " +
                                      std::to_string(max_entry_bytes));
  }
  /// Bound on pending ReadIndex requests at the leader; past it read_index fails too_busy.
  std::size_t max_pending_reads = 65536;
  /// Seeds the election-timeout randomization (0 = derive from id), so that a simulation is
  /// fully determined by its seed.
  std::uint64_t random_seed = 0;

  /// The longest safe lease: floor((election_ticks - 1) × (100 - d) / (100 + d)) ticks for a
  /// drift bound of d %. A follower that acknowledged a round refuses votes until election_ticks
  /// of its ticks passed, the first of which may come at once: at least election_ticks - 1
  /// periods of its clock; the leader's clock may be slow and the follower's fast by d % each.
  [[nodiscard]] std::uint32_t max_lease_ticks() const noexcept {
    if (election_ticks < 1 || clock_drift_percent >= 100) return 0;
    return static_cast<std::uint32_t>(std::uint64_t{election_ticks - 1} *
                                      (100 - clock_drift_percent) / (100 + clock_drift_percent));
  }
  [[nodiscard]] std::uint32_t effective_lease_ticks() const noexcept {
    return lease_ticks != 0 ? lease_ticks : max_lease_ticks();
  }

  /// Returns invalid_argument naming the offending field, or success.
  [[nodiscard]] result<void> validate() const {
    auto bad = [](std::string what) { return error(errc::invalid_argument, std::move(what)); };
    if (id == no_node) return bad("raft config: id must be non-zero");
    if (heartbeat_ticks == 0) return bad("raft config: heartbeat_ticks must be at least 1");
    if (election_ticks < 3 || election_ticks <= 2 * heartbeat_ticks)
      return bad(
          "raft config: election_ticks must be at least 3 and more than twice heartbeat_ticks");
    if (lease_reads && !check_quorum) return bad("raft config: lease_reads requires check_quorum");
    if (clock_drift_percent >= 50)
      return bad("raft config: clock_drift_percent must be below 50 (it is " +
                 std::to_string(clock_drift_percent) + ")");
    if (lease_reads && effective_lease_ticks() > max_lease_ticks())
      return bad("raft config: lease_ticks " + std::to_string(lease_ticks) +
                 " exceeds the longest safe lease, " + std::to_string(max_lease_ticks()) +
                 " ticks for election_ticks " + std::to_string(election_ticks) +
                 " and clock_drift_percent " + std::to_string(clock_drift_percent));
    if (lease_reads && effective_lease_ticks() == 0)
      return bad("raft config: no lease fits: election_ticks " + std::to_string(election_ticks) +
                 " with clock_drift_percent " + std::to_string(clock_drift_percent) +
                 " leaves no safe lease tick (raise election_ticks or disable lease_reads)");
    if (max_append_bytes == 0 || max_append_entries == 0)
      return bad("raft config: max_append_bytes and max_append_entries must be positive");
    if (max_inflight_messages == 0 || max_inflight_bytes == 0)
      return bad("raft config: max_inflight_messages and max_inflight_bytes must be positive");
    if (max_entry_bytes == 0 || max_entry_bytes > max_uncommitted_bytes)
      return bad("raft config: max_entry_bytes must be positive and at most max_uncommitted_bytes");
    if (max_pending_reads == 0) return bad("raft config: max_pending_reads must be positive");
    return success();
  }
};

}  // namespace dengine
