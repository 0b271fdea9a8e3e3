#pragma once
/// Majority arithmetic over a voter set: the committed index from match indexes, vote tallies.

#include <algorithm>
#include <cstddef>
#include <vector>

#include "dengine/core/types.hpp"

namespace dengine::raft {

/// Votes needed to win among `voters` voters.
[[nodiscard]] constexpr std::size_t majority(std::size_t voters) noexcept { return voters / 2 + 1; }

/// The largest value that a majority of `values` (one per voter) is at or above.
/// `values` is reordered. Precondition: not empty.
template <class T>
[[nodiscard]] T quorum_value(std::vector<T>& values) {
  // The majority-th largest element: sort descending, pick index majority-1.
  auto k = majority(values.size()) - 1;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(k), values.end(),
                   std::greater<>());
  return values[k];
}

enum class VoteResult : unsigned char { pending, won, lost };

/// Tally of granted and rejected votes among `voters`.
[[nodiscard]] constexpr VoteResult tally(std::size_t voters, std::size_t granted,
                                         std::size_t rejected) noexcept {
  if (granted >= majority(voters)) return VoteResult::won;
  if (rejected > voters - majority(voters)) return VoteResult::lost;
  return VoteResult::pending;
}

}  // namespace dengine::raft
