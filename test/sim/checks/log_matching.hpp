#pragma once
/// Log matching: if two logs hold an entry with the same index and term, the logs are identical
/// up to that index. Checked inductively over all nodes and all time: an (index, term) pair
/// always has the same content and is always preceded by the same term, so two logs that agree
/// at (i, t) agree at i - 1, and so on down. A check costs O(entries looked at): a harness checks
/// the entries each step changed and sweeps whole logs now and then.

#include <algorithm>
#include <map>
#include <optional>
#include <utility>

#include "common.hpp"

namespace dengine::sim::checks {

class LogMatching {
 public:
  /// Over the node's whole in-memory log.
  template <ObservedNode N>
  [[nodiscard]] std::optional<Violation> check(const N& n) {
    return check(n, n.first_index(), n.last_index());
  }

  /// Over the node's entries in [lo, hi] (clamped to its in-memory log).
  template <ObservedNode N>
  [[nodiscard]] std::optional<Violation> check(const N& n, LogIndex lo, LogIndex hi) {
    const LogIndex first = std::max(lo, n.first_index());
    const LogIndex last = std::min(hi, n.last_index());
    std::optional<Term> prev;
    if (first > 1) {
      auto t = n.term_at(first - 1);
      if (t) prev = t.value();
    } else {
      prev = Term{0};
    }
    for (LogIndex i = first; i <= last; ++i) {
      const Entry* e = n.entry_at(i);
      if (e == nullptr) {
        prev.reset();
        continue;
      }
      if (e->index != i)
        return violation("log matching", "node " + str(n.id()) + " holds an entry numbered " +
                                             str(e->index) + " at index " + str(i));
      const std::uint64_t fp = fingerprint(*e);
      auto [it, inserted] = log_.emplace(std::make_pair(i, e->term), Record{fp, prev, n.id()});
      Record& rec = it->second;
      if (!inserted) {
        if (rec.fingerprint != fp)
          return violation("log matching", "nodes " + str(rec.node) + " and " + str(n.id()) +
                                               " hold different entries at index " + str(i) +
                                               " with the same term " + str(e->term));
        if (prev && rec.prev_term && *rec.prev_term != *prev)
          return violation("log matching", "nodes " + str(rec.node) + " and " + str(n.id()) +
                                               " agree on (index " + str(i) + ", term " +
                                               str(e->term) + ") but differ at index " +
                                               str(i - 1) + " (terms " + str(*rec.prev_term) +
                                               " and " + str(*prev) + ")");
        if (!rec.prev_term) rec.prev_term = prev;
      }
      prev = e->term;
    }
    return std::nullopt;
  }

 private:
  struct Record {
    std::uint64_t fingerprint = 0;
    std::optional<Term> prev_term;  // unknown when the first holder had compacted index - 1
    NodeId node = no_node;
  };
  std::map<std::pair<LogIndex, Term>, Record> log_;
};

}  // namespace dengine::sim::checks
