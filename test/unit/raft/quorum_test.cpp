// Unit tests of raft/quorum.hpp: majority sizes, the committed index of a voter set, vote tallies.
// dengine changes membership one server at a time (no joint configurations), so every quorum is
// a majority of one voter set; learners are never among the values or votes counted.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <vector>

#include "dengine/raft/quorum.hpp"

namespace dengine::raft {
namespace {

TEST_CASE("quorum: a majority is more than half") {
  const std::size_t want[] = {1, 1, 2, 2, 3, 3, 4, 4};  // for 0..7 voters
  for (std::size_t n = 0; n < std::size(want); ++n) {
    CAPTURE(n);
    CHECK(majority(n) == want[n]);
    if (n > 0) CHECK(2 * majority(n) > n);
    if (n > 0) CHECK(2 * (majority(n) - 1) <= n);  // and the smallest such number
  }
  static_assert(majority(3) == 2);  // usable at compile time
}

TEST_CASE("quorum: the committed index is what a majority of voters has") {
  struct Row {
    std::vector<LogIndex> matches;
    LogIndex want;
  } const rows[] = {
      {{5}, 5},                   // a single voter commits alone
      {{1, 2}, 1},                // two voters need both
      {{2, 2}, 2},                // ...and then both count
      {{1, 2, 3}, 2},             // odd
      {{3, 1, 2}, 2},             // in any order
      {{0, 0, 7}, 0},             // one fast voter is not enough
      {{1, 2, 3, 4}, 2},          // even: three of four
      {{5, 5, 1, 1}, 1},          // a tie is not a majority
      {{9, 8, 8, 0}, 8},          // the slowest voter is not needed
      {{1, 2, 3, 4, 5}, 3},       // five voters: three
      {{7, 7, 7, 0, 0}, 7},       // a bare majority suffices
      {{4, 4, 0, 0, 0, 0}, 0},    // six voters need four
      {{6, 5, 4, 3, 2, 1, 0}, 3}  // seven voters need four
  };
  for (const auto& row : rows) {
    auto values = row.matches;
    CAPTURE(values.size());
    CHECK(quorum_value(values) == row.want);
  }
}

TEST_CASE("quorum: the committed index over every small voter set") {
  // Every vector of 1..5 values in 0..3: the result is the largest v with a majority ≥ v.
  for (std::size_t n = 1; n <= 5; ++n) {
    std::vector<unsigned> digits(n, 0);
    for (;;) {
      auto values = digits;
      const unsigned v = quorum_value(values);
      const auto at_or_above = [&](unsigned x) {
        return static_cast<std::size_t>(
            std::count_if(digits.begin(), digits.end(), [&](unsigned d) { return d >= x; }));
      };
      CAPTURE(n);
      CHECK(2 * at_or_above(v) > n);
      CHECK(2 * at_or_above(v + 1) <= n);
      // Next vector (base 4 counter).
      std::size_t i = 0;
      while (i < n && ++digits[i] == 4) digits[i++] = 0;
      if (i == n) break;
    }
  }
}

TEST_CASE("quorum: a vote is won, lost or pending") {
  using enum VoteResult;
  struct Row {
    std::size_t voters, granted, rejected;
    VoteResult want;
  } const rows[] = {
      {1, 1, 0, won},     {1, 0, 1, lost},    {1, 0, 0, pending},  // a single voter
      {2, 1, 0, pending}, {2, 2, 0, won},     {2, 1, 1, lost},     // two need both
      {3, 2, 0, won},     {3, 1, 1, pending}, {3, 1, 2, lost},    {3, 0, 2, lost},
      {4, 2, 1, pending}, {4, 2, 2, lost},    {4, 3, 1, won},     {4, 1, 1, pending},
      {5, 3, 2, won},     {5, 2, 2, pending}, {5, 2, 3, lost},    {5, 0, 0, pending},
  };
  for (const auto& row : rows) {
    CAPTURE(row.voters);
    CAPTURE(row.granted);
    CAPTURE(row.rejected);
    CHECK(tally(row.voters, row.granted, row.rejected) == row.want);
  }
}

TEST_CASE("quorum: every tally of up to seven voters") {
  // Won once a majority granted; lost once the voters left could no longer make one.
  for (std::size_t voters = 1; voters <= 7; ++voters) {
    for (std::size_t granted = 0; granted <= voters; ++granted) {
      for (std::size_t rejected = 0; granted + rejected <= voters; ++rejected) {
        CAPTURE(voters);
        CAPTURE(granted);
        CAPTURE(rejected);
        const bool won = 2 * granted > voters;
        const bool lost = 2 * (voters - rejected) <= voters;
        REQUIRE_FALSE((won && lost));
        const auto want = won ? VoteResult::won : lost ? VoteResult::lost : VoteResult::pending;
        CHECK(tally(voters, granted, rejected) == want);
      }
    }
  }
}

}  // namespace
}  // namespace dengine::raft
