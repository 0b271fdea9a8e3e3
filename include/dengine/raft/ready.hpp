#pragma once
/// What the pure core hands to the runtime after any input: the Ready batch, and the small value
/// types it carries. The ordering rules are written on the fields; a runtime must follow them.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/raft/message.hpp"

namespace dengine::raft {

enum class Role : std::uint8_t { follower, pre_candidate, candidate, leader };

[[nodiscard]] constexpr std::string_view to_string(Role r) noexcept {
  switch (r) {
    case Role::follower: return "follower";
    case Role::pre_candidate: return "pre_candidate";
    case Role::candidate: return "candidate";
    case Role::leader: return "leader";
  }
  return "unknown";
}

/// Volatile state a runtime may want to observe (leader changes); never persisted.
struct SoftState {
  NodeId leader = no_node;
  Role role = Role::follower;
  friend bool operator==(const SoftState&, const SoftState&) = default;
};

/// A confirmed linearizable read: serve request `id` once the state machine applied `index`.
struct ReadState {
  std::uint64_t id = 0;
  LogIndex index = 0;
};

/// A read the core could not confirm (leadership lost, no leader known, too busy).
struct DroppedRead {
  std::uint64_t id = 0;
  error reason;
};

/// The leader's answer to a proposal this follower forwarded (Core::forward_proposal): appended
/// at (index, term), so it is applied here when that entry commits with that term; or refused
/// (`refusal` set: not_leader, too_busy, too_large, proposal_dropped), so it was never appended.
struct ForwardOutcome {
  std::uint64_t id = 0;
  LogIndex index = 0;
  Term term = 0;
  std::optional<error> refusal;
};

/// A follower's leader call (Core::call_leader) for this leader's service to answer
/// (Core::answer_leader_call): a request that needs the leader but not the log, such as a lease
/// keep-alive.
struct LeaderCall {
  NodeId from = no_node;
  std::uint64_t id = 0;
  std::string request;
};

/// The leader's answer to leader call `id` of this follower: `reply` set, or nullopt when the
/// leader could not serve it (it no longer leads, or its service declined for now).
struct LeaderCallAnswer {
  std::uint64_t id = 0;
  NodeId from = no_node;
  std::optional<std::string> reply;
};

/// A single-server membership change (Raft thesis, section 4.1): one node at a time.
struct ConfigChange {
  enum class Kind : std::uint8_t {
    add_learner = 0,  ///< add a non-voting member (or demote a voter to learner)
    add_voter = 1,    ///< add a voting member or promote a learner
    remove = 2,       ///< remove a member (voter or learner)
  };
  Kind kind = Kind::add_learner;
  NodeId node = no_node;
  /// The member's peer address, recorded in Membership::addresses by add_learner and add_voter
  /// (empty: keep the address it has, if any). Raft does not interpret it; no two members may
  /// share one.
  std::string address{};
  /// Opaque to Raft and carried in the log with the change (e.g. why, or who asked).
  std::string context{};

  friend bool operator==(const ConfigChange&, const ConfigChange&) = default;
};

/// Outputs of the core since the previous Ready.
///
/// A runtime handles a Ready in this order:
///  1. Send `messages` now (in parallel with persisting: a leader's appends to followers do not
///     wait for its own disk).
///  2. Persist `snapshot` (StorageEngine::reset + state machine restore) if set, then `entries`
///     (StorageEngine::append: an entry at an existing index replaces the suffix from there),
///     then `hard_state` (StorageEngine::save_hard_state) if set.
///  3. Once 2 is durable (DiskFirst) or in memory (MemFirst) call Core::on_persisted with the
///     last entry's (index, term) and Core::on_snapshot_persisted for a snapshot. `hard_state`
///     is always made durable before step 4, in both modes: a vote must never be forgotten.
///  4. Then send `messages_after_persist` (append and vote responses, a candidate's vote
///     requests): they promise the receiver that this node's state is durable.
///  5. Apply `committed_entries` in order (they are always already persisted locally) and
///     complete `read_states` once the applied index reaches each one's index. `forwards`
///     answer proposals this follower forwarded: wait for the entry at (index, term).
///  6. Answer `leader_calls` (this node leads) with Core::answer_leader_call, and complete
///     the calls `leader_call_answers` answer. Neither waits for anything above.
struct Ready {
  std::optional<SoftState> soft_state;
  std::optional<HardState> hard_state;
  std::vector<Entry> entries;
  std::shared_ptr<const Snapshot> snapshot;
  std::vector<Message> messages;
  std::vector<Message> messages_after_persist;
  std::vector<Entry> committed_entries;
  std::vector<ReadState> read_states;
  std::vector<DroppedRead> dropped_reads;
  std::vector<ForwardOutcome> forwards;
  std::vector<LeaderCall> leader_calls;
  std::vector<LeaderCallAnswer> leader_call_answers;

  [[nodiscard]] bool empty() const noexcept {
    return !soft_state && !hard_state && entries.empty() && !snapshot && messages.empty() &&
           messages_after_persist.empty() && committed_entries.empty() && read_states.empty() &&
           dropped_reads.empty() && forwards.empty() && leader_calls.empty() &&
           leader_call_answers.empty();
  }
};

}  // namespace dengine::raft
