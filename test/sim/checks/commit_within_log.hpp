#pragma once
/// Commit within log: a node never claims to have committed entries it does not hold.

#include <optional>

#include "common.hpp"

namespace dengine::sim::checks {

struct CommitWithinLog {
  template <ObservedNode N>
  [[nodiscard]] std::optional<Violation> check(const N& n) const {
    if (n.commit_index() > n.last_index())
      return violation("commit within log", "node " + str(n.id()) + " has commit index " +
                                                str(n.commit_index()) + " beyond its last index " +
                                                str(n.last_index()));
    return std::nullopt;
  }
};

}  // namespace dengine::sim::checks
