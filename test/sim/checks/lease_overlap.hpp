#pragma once
/// Lease overlap: no leader's lease is valid (it would serve a lease read now, by its own clock)
/// while a leader of a higher term exists — frozen leaders included: their clock runs on.

#include <optional>
#include <span>

#include "common.hpp"

namespace dengine::sim::checks {

/// What the check needs of one running node, at one instant.
struct LeaseView {
  NodeId id = no_node;
  Term term = 0;
  bool leader = false;
  /// It would serve a lease read now (the lease its Driver published, before its deadline).
  bool lease_valid = false;
  std::uint64_t lease_ticks_left = 0;
  LogIndex commit = 0;
  bool frozen = false;  // its event loop is frozen (for the report)
};

[[nodiscard]] inline std::optional<Violation> check_lease_overlap(
    std::span<const LeaseView> nodes) {
  const LeaseView* newest = nullptr;
  for (const LeaseView& n : nodes)
    if (n.leader && (newest == nullptr || n.term > newest->term)) newest = &n;
  if (newest == nullptr) return std::nullopt;
  for (const LeaseView& n : nodes) {
    if (&n == newest || !n.leader || n.term >= newest->term || !n.lease_valid) continue;
    return violation("lease overlap",
                     "n" + str(n.id) + " (leader of term " + str(n.term) + ") holds a lease (" +
                         str(n.lease_ticks_left) + " ticks left, commit " + str(n.commit) +
                         ") while n" + str(newest->id) + " leads term " + str(newest->term) +
                         (n.frozen ? "; n" + str(n.id) + "'s event loop is frozen" : ""));
  }
  return std::nullopt;
}

}  // namespace dengine::sim::checks
