#pragma once
/// Election safety: at most one leader per term, ever (Raft, figure 3). Recorded forever, not
/// only the current leaders: two leaders of one term are rarely alive at the same instant.

#include <map>
#include <optional>

#include "common.hpp"

namespace dengine::sim::checks {

class ElectionSafety {
 public:
  template <ObservedNode N>
  [[nodiscard]] std::optional<Violation> check(const N& n) {
    if (n.role() != raft::Role::leader) return std::nullopt;
    auto [it, inserted] = leaders_.emplace(n.term(), n.id());
    if (!inserted && it->second != n.id())
      return violation("election safety", "nodes " + str(it->second) + " and " + str(n.id()) +
                                              " were both leader in term " + str(n.term()));
    return std::nullopt;
  }

  /// The leader recorded for `term`, if any.
  [[nodiscard]] std::optional<NodeId> leader_of(Term term) const {
    auto it = leaders_.find(term);
    if (it == leaders_.end()) return std::nullopt;
    return it->second;
  }

 private:
  std::map<Term, NodeId> leaders_;
};

}  // namespace dengine::sim::checks
