#pragma once
/// Vote once: a node votes for at most one candidate per term, across restarts. Two views:
/// the votes a node records (its hard state; one it had not made durable when its process died
/// is forgotten at the restart, as it was never sent), and the votes it grants on the wire
/// (check_grant: never forgotten — a grant leaves only once the vote is durable).

#include <iterator>
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

  /// A granted vote (not a pre-vote) left `voter` for `candidate` in `term`.
  [[nodiscard]] std::optional<Violation> check_grant(NodeId voter, Term term, NodeId candidate) {
    auto [it, inserted] = granted_.emplace(std::make_pair(voter, term), candidate);
    if (!inserted && it->second != candidate)
      return violation("vote once", "node " + str(voter) + " granted its vote in term " +
                                        str(term) + " to " + str(it->second) + " and then to " +
                                        str(candidate));
    return std::nullopt;
  }

  /// `node` restarted from `durable`: the votes it recorded and had not made durable are gone.
  void on_restart(NodeId node, const HardState& durable) {
    for (auto it = votes_.lower_bound({node, 0}); it != votes_.end() && it->first.first == node;) {
      const Term t = it->first.second;
      const bool kept = t < durable.term || (t == durable.term && durable.vote == it->second);
      it = kept ? std::next(it) : votes_.erase(it);
    }
  }

 private:
  std::map<std::pair<NodeId, Term>, NodeId> votes_;
  std::map<std::pair<NodeId, Term>, NodeId> granted_;
};

}  // namespace dengine::sim::checks
