#pragma once
/// Term monotonic: a node's term never decreases, across restarts too (the term is in the
/// durable hard state).

#include <map>
#include <optional>

#include "common.hpp"

namespace dengine::sim::checks {

class TermMonotonic {
 public:
  template <ObservedNode N>
  [[nodiscard]] std::optional<Violation> check(const N& n) {
    Term& last = terms_[n.id()];
    if (n.term() < last)
      return violation("term monotonic", "node " + str(n.id()) + " went from term " + str(last) +
                                             " back to term " + str(n.term()));
    last = n.term();
    return std::nullopt;
  }

 private:
  std::map<NodeId, Term> terms_;
};

}  // namespace dengine::sim::checks
