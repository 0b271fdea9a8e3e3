#pragma once
/// Leader completeness: an entry known committed in term T is in the log of every leader of
/// every term after T (or in its snapshot). Each leader (node, term) is checked against every
/// committed entry once: leaders never remove entries from their own log while they lead.

#include <cstddef>
#include <map>
#include <optional>

#include "committed_stable.hpp"
#include "common.hpp"

namespace dengine::sim::checks {

class LeaderCompleteness {
 public:
  /// Checks leader `n` against what `committed` recorded so far.
  template <ObservedNode N>
  [[nodiscard]] std::optional<Violation> check(const N& n, const CommittedStable& committed) {
    if (n.role() != raft::Role::leader) return std::nullopt;
    Cursor& cur = cursor_[n.id()];
    if (cur.term != n.term()) cur = {n.term(), 0};
    const auto& order = committed.order();
    for (; cur.next < order.size(); ++cur.next) {
      const LogIndex i = order[cur.next];
      const CommittedStable::Record& rec = committed.at(i);
      if (rec.known_in_term >= n.term()) continue;
      if (i < n.first_index()) continue;  // compacted into the leader's snapshot
      auto t = n.term_at(i);
      if (!t || t.value() != rec.term)
        return violation(
            "leader completeness",
            "entry (index " + str(i) + ", term " + str(rec.term) + ") was committed by term " +
                str(rec.known_in_term) + " but leader " + str(n.id()) + " of term " +
                str(n.term()) +
                (t ? " holds term " + str(t.value()) + " there" : " does not hold it"));
    }
    return std::nullopt;
  }

 private:
  struct Cursor {
    Term term = 0;
    std::size_t next = 0;
  };
  std::map<NodeId, Cursor> cursor_;
};

}  // namespace dengine::sim::checks
