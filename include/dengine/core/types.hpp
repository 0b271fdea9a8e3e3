#pragma once
/// Value types shared by every layer: ids, terms, log entries, hard state, membership, snapshots.

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace dengine {

/// A node's id. 0 is never a valid id (it means "nobody", e.g. no vote cast, no leader known).
using NodeId = std::uint64_t;
/// A Raft term. Terms start at 0 on a fresh node and only grow.
using Term = std::uint64_t;
/// A position in the replicated log. Index 0 is the empty-log sentinel; real entries start at 1.
using LogIndex = std::uint64_t;

inline constexpr NodeId no_node = 0;

/// What an entry carries; the state machine sees every type, in log order.
enum class EntryType : std::uint8_t {
  normal = 0,         ///< an application command (opaque bytes)
  noop = 1,           ///< appended by a new leader to commit entries of earlier terms
  config_change = 2,  ///< a membership change (data = encoded ConfigChange)
};

/// One log entry. `data` is opaque to Raft.
struct Entry {
  Term term = 0;
  LogIndex index = 0;
  EntryType type = EntryType::normal;
  std::string data;

  friend bool operator==(const Entry&, const Entry&) = default;
};

/// Approximate memory/wire footprint of an entry, used for the byte bounds of batches and windows.
inline std::size_t entry_size(const Entry& e) noexcept { return e.data.size() + 24; }

/// The state that must be durable before a node answers anything that depends on it.
/// Invariant: `term` never decreases; `vote` is for `term` (reset when term grows).
struct HardState {
  Term term = 0;
  NodeId vote = no_node;
  LogIndex commit = 0;

  friend bool operator==(const HardState&, const HardState&) = default;
};

/// The cluster configuration: who votes, who only receives the log (learners), and where each
/// member's peers reach it. It travels in the replicated log (config_change entries) and in
/// snapshots, so a node learns a new member's address the way it learns the member: from the log,
/// never from a side channel.
/// Invariant: a node is in at most one of the two lists; both are kept sorted; every key of
/// `addresses` is a member.
struct Membership {
  std::vector<NodeId> voters;
  std::vector<NodeId> learners;
  /// The peer address of each member that has one ("127.0.0.1:2380" for the TCP transport). Raft
  /// does not read it; members of an in-process cluster have none.
  std::map<NodeId, std::string> addresses{};

  [[nodiscard]] bool is_voter(NodeId id) const {
    return std::binary_search(voters.begin(), voters.end(), id);
  }
  [[nodiscard]] bool is_learner(NodeId id) const {
    return std::binary_search(learners.begin(), learners.end(), id);
  }
  [[nodiscard]] bool contains(NodeId id) const { return is_voter(id) || is_learner(id); }
  /// Every member, voters first.
  [[nodiscard]] std::vector<NodeId> all() const {
    std::vector<NodeId> out = voters;
    out.insert(out.end(), learners.begin(), learners.end());
    return out;
  }
  /// Member `id`'s address, empty when it has none.
  [[nodiscard]] std::string_view address_of(NodeId id) const {
    auto it = addresses.find(id);
    return it == addresses.end() ? std::string_view{} : std::string_view{it->second};
  }
  /// Whether every key of `addresses` is a member and every address is non-empty (what a
  /// decoder checks before it trusts a stored or received membership).
  [[nodiscard]] bool addresses_well_formed() const {
    return std::all_of(addresses.begin(), addresses.end(),
                       [&](const auto& a) { return contains(a.first) && !a.second.empty(); });
  }
  /// Sorts and de-duplicates the lists and drops the addresses of non-members.
  void normalize() {
    std::sort(voters.begin(), voters.end());
    voters.erase(std::unique(voters.begin(), voters.end()), voters.end());
    std::sort(learners.begin(), learners.end());
    learners.erase(std::unique(learners.begin(), learners.end()), learners.end());
    std::erase_if(addresses, [&](const auto& a) { return !contains(a.first); });
  }

  friend bool operator==(const Membership&, const Membership&) = default;
};

/// Describes the log prefix a snapshot replaces: everything up to and including `index`.
struct SnapshotMeta {
  LogIndex index = 0;
  Term term = 0;
  Membership membership;

  friend bool operator==(const SnapshotMeta&, const SnapshotMeta&) = default;
};

/// A snapshot in flight: its meta plus the state machine's serialized state.
struct Snapshot {
  SnapshotMeta meta;
  std::string data;

  [[nodiscard]] bool empty() const noexcept { return meta.index == 0; }
  friend bool operator==(const Snapshot&, const Snapshot&) = default;
};

}  // namespace dengine
