#pragma once
/// State machine safety: no two nodes apply different entries at one index; and each node
/// applies indices in order without gaps (per incarnation; a snapshot restore moves the cursor).

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>

#include "common.hpp"

namespace dengine::sim::checks {

class StateMachineSafety {
 public:
  /// `node` restarted: its apply cursor starts over (on_snapshot_restored sets it).
  void on_restart(NodeId node) { applied_upto_.erase(node); }
  /// `node` installed a snapshot into its state machine: its next applied entry follows `index`.
  void on_snapshot_restored(NodeId node, LogIndex index) { applied_upto_[node] = index; }

  /// `node` applied `e`.
  [[nodiscard]] std::optional<Violation> check_applied(NodeId node, const Entry& e) {
    auto cursor = applied_upto_.find(node);
    if (cursor != applied_upto_.end() && e.index != cursor->second + 1)
      return violation("state machine safety", "node " + str(node) + " applied index " +
                                                   str(e.index) + " right after index " +
                                                   str(cursor->second));
    applied_upto_[node] = e.index;
    const std::uint64_t fp = fingerprint(e);
    auto [it, inserted] = applied_.emplace(e.index, Record{e.term, fp, node});
    if (!inserted && (it->second.term != e.term || it->second.fingerprint != fp))
      return violation("state machine safety",
                       "nodes " + str(it->second.node) + " and " + str(node) +
                           " applied different entries at index " + str(e.index) + " (terms " +
                           str(it->second.term) + " and " + str(e.term) + ")");
    return std::nullopt;
  }

  /// How many distinct indices some node applied.
  [[nodiscard]] std::size_t applied_count() const noexcept { return applied_.size(); }

 private:
  struct Record {
    Term term = 0;
    std::uint64_t fingerprint = 0;
    NodeId node = no_node;
  };
  std::map<NodeId, LogIndex> applied_upto_;
  std::map<LogIndex, Record> applied_;
};

}  // namespace dengine::sim::checks
