#pragma once
/// Commit monotonic: within one incarnation a node's commit index never decreases. (A restart
/// may resume from a lower durable commit index; committed entries themselves never change —
/// committed_stable.hpp.)

#include <cstdint>
#include <map>
#include <optional>

#include "common.hpp"

namespace dengine::sim::checks {

class CommitMonotonic {
 public:
  /// `node` restarted: its next commit index may be lower.
  void on_restart(NodeId node) { ++restarts_[node]; }

  template <ObservedNode N>
  [[nodiscard]] std::optional<Violation> check(const N& n) {
    const std::uint64_t incarnation = restarts_[n.id()];
    auto it = last_.find(n.id());
    if (it != last_.end() && it->second.incarnation == incarnation &&
        n.commit_index() < it->second.commit)
      return violation("commit monotonic", "node " + str(n.id()) +
                                               " moved its commit index back from " +
                                               str(it->second.commit) + " to " +
                                               str(n.commit_index()) + " without restarting");
    last_[n.id()] = {incarnation, n.commit_index()};
    return std::nullopt;
  }

 private:
  struct Watermark {
    std::uint64_t incarnation = 0;
    LogIndex commit = 0;
  };
  std::map<NodeId, Watermark> last_;
  std::map<NodeId, std::uint64_t> restarts_;
};

}  // namespace dengine::sim::checks
