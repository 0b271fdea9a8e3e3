#pragma once
/// Vote once: a node votes for at most one candidate per term, across restarts (the vote is
/// durable before it is sent).

#include <map>
#include <optional>
#include <utility>

#include "common.hpp"

namespace dengine::sim::checks {

class VoteOnce {
 public:
  template <ObservedNode N>
  [[nodiscard]] std::optional<Violation> check(const N& n) {
    const HardState hs = n.hard_state();
    if (hs.vote == no_node) return std::nullopt;
    auto [it, inserted] = votes_.emplace(std::make_pair(n.id(), hs.term), hs.vote);
    if (!inserted && it->second != hs.vote)
      return violation("vote once", "node " + str(n.id()) + " voted for " + str(it->second) +
                                        " and then for " + str(hs.vote) + " in term " +
                                        str(hs.term));
    return std::nullopt;
  }

 private:
  std::map<std::pair<NodeId, Term>, NodeId> votes_;
};

}  // namespace dengine::sim::checks
