#pragma once
/// Term monotonic: a node's term never decreases while it runs, and a restart resumes at least
/// at the term it made durable (a term it had adopted but not yet saved may be lost with the
/// process: nothing it promised depended on it).

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

  /// `node` restarted from a durable hard state at `durable_term`.
  void on_restart(NodeId node, Term durable_term) { terms_[node] = durable_term; }

 private:
  std::map<NodeId, Term> terms_;
};

}  // namespace dengine::sim::checks
