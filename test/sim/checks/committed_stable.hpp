#pragma once
/// Committed entries stable: whenever any node considers index i committed, the entry it holds
/// there is the one every other node committed there. Also records each committed entry with
/// the lowest term at which it was known committed (leader_completeness.hpp reads them).

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "common.hpp"

namespace dengine::sim::checks {

class CommittedStable {
 public:
  /// An entry known committed.
  struct Record {
    Term term = 0;
    std::uint64_t fingerprint = 0;
    Term known_in_term = 0;  ///< the lowest term of a node that held it committed
    NodeId node = no_node;
  };

  /// `node` restarted: it may consider fewer entries committed, and re-learns them.
  void on_restart(NodeId node) { seen_.erase(node); }

  template <ObservedNode N>
  [[nodiscard]] std::optional<Violation> check(const N& n) {
    LogIndex& seen = seen_[n.id()];
    const LogIndex commit = n.commit_index();
    for (LogIndex i = std::max(seen + 1, n.first_index()); i <= commit; ++i) {
      const Entry* e = n.entry_at(i);
      if (e == nullptr) continue;
      const std::uint64_t fp = fingerprint(*e);
      auto it = committed_.find(i);
      if (it == committed_.end()) {
        committed_.emplace(i, Record{e->term, fp, n.term(), n.id()});
        order_.push_back(i);
        continue;
      }
      Record& rec = it->second;
      if (rec.term != e->term || rec.fingerprint != fp)
        return violation("committed entries stable",
                         "index " + str(i) + " was committed by node " + str(rec.node) +
                             " with term " + str(rec.term) + " but node " + str(n.id()) +
                             " committed a different entry (term " + str(e->term) + ") there");
      if (n.term() < rec.known_in_term) {
        rec.known_in_term = n.term();
        // An earlier "known committed" term widens the set of leaders that must hold it.
        order_.push_back(i);
      }
    }
    seen = std::max(seen, commit);
    return std::nullopt;
  }

  /// The record of index `i` (which must be known committed).
  [[nodiscard]] const Record& at(LogIndex i) const { return committed_.at(i); }
  /// Indices in the order they became known committed (or known in an earlier term): an index
  /// appears again when its known_in_term drops.
  [[nodiscard]] const std::vector<LogIndex>& order() const noexcept { return order_; }
  /// The highest index known committed anywhere.
  [[nodiscard]] LogIndex max_committed() const {
    return committed_.empty() ? 0 : committed_.rbegin()->first;
  }

 private:
  std::map<NodeId, LogIndex> seen_;
  std::map<LogIndex, Record> committed_;
  std::vector<LogIndex> order_;
};

}  // namespace dengine::sim::checks
