// Unit tests of raft/read_rounds.hpp: heartbeat rounds that confirm leadership for ReadIndex
// reads and the lease: which reads a round covers, how acknowledgements count, what a leader
// change drops.
#include <doctest/doctest.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "dengine/raft/read_rounds.hpp"

namespace dengine::raft {
namespace {

const std::vector<NodeId> three = {1, 2, 3};

std::vector<std::uint64_t> ids(const std::vector<PendingRead>& reads) {
  std::vector<std::uint64_t> out;
  out.reserve(reads.size());
  for (const auto& r : reads) out.push_back(r.id);
  return out;
}

TEST_CASE("read rounds: a read waits for the next round to be sent") {
  ReadRounds rr;
  CHECK_FALSE(rr.needs_round());
  rr.add(1, 1, 10);
  rr.add(2, 3, 10);  // joins the same round
  CHECK(rr.needs_round());
  CHECK(rr.pending_count() == 2);
  CHECK(rr.start_round(100) == 1);
  CHECK_FALSE(rr.needs_round());  // both ride on round 1
  CHECK(rr.latest_round() == 1);
  rr.add(3, 1, 11);
  CHECK(rr.needs_round());  // round 1 left before it arrived
  CHECK(rr.start_round(101) == 2);
  CHECK(rr.start_round(102) == 3);  // rounds are numbered in order, reads or not
}

TEST_CASE("read rounds: a majority's acknowledgement confirms the round and earlier reads") {
  ReadRounds rr;
  rr.add(1, 1, 10);
  rr.start_round(100);
  rr.add(2, 2, 11);
  const auto r2 = rr.start_round(105);
  rr.add(3, 1, 12);                                 // no round sent for it yet
  CHECK(rr.try_confirm(1, three) == std::nullopt);  // the leader alone is no majority
  CHECK(rr.take_confirmed().empty());
  // Node 2 echoes round 2: with the leader that is two of three, confirming rounds 1 and 2.
  const auto tick = rr.ack(2, r2, 1, three);
  REQUIRE(tick.has_value());
  CHECK(*tick == 105);  // the lease counts from when round 2 was sent
  const auto done = rr.take_confirmed();
  CHECK(ids(done) == std::vector<std::uint64_t>{1, 2});  // in arrival order
  CHECK(done[0].from == 1);
  CHECK(done[0].index == 10);
  CHECK(done[1].from == 2);
  CHECK(rr.pending_count() == 1);  // read 3 waits for its own round
  CHECK(rr.take_confirmed().empty());
}

TEST_CASE("read rounds: old and repeated acknowledgements confirm nothing new") {
  ReadRounds rr;
  for (std::uint64_t tick = 1; tick <= 3; ++tick) rr.start_round(tick);
  CHECK(rr.ack(2, 2, 1, three) == 2);
  CHECK(rr.ack(2, 2, 1, three) == std::nullopt);  // the same echo twice
  CHECK(rr.ack(2, 1, 1, three) == std::nullopt);  // an older round, late
  CHECK(rr.ack(3, 1, 1, three) == std::nullopt);  // another voter, but for a covered round
  CHECK(rr.ack(3, 3, 1, three) == 3);
}

TEST_CASE("read rounds: a learner's acknowledgement does not count") {
  // Four voters need three: the leader, node 2 and learner 5 would be three of five members.
  const std::vector<NodeId> four = {1, 2, 3, 4};
  ReadRounds rr;
  rr.add(1, 1, 7);
  rr.start_round(10);
  CHECK(rr.ack(2, 1, 1, four) == std::nullopt);
  CHECK(rr.ack(5, 1, 1, four) == std::nullopt);
  CHECK(rr.take_confirmed().empty());
  CHECK(rr.ack(3, 1, 1, four) == 10);
}

TEST_CASE("read rounds: with five voters the confirmed round is the majority's") {
  const std::vector<NodeId> five = {1, 2, 3, 4, 5};
  ReadRounds rr;
  for (std::uint64_t r = 1; r <= 3; ++r) {
    rr.add(r, 1, r);
    rr.start_round(10 * r);
  }
  CHECK(rr.ack(2, 3, 1, five) == std::nullopt);  // leader + node 2: two of five
  // Node 3 echoes round 1: three voters have seen round 1, only two round 3.
  CHECK(rr.ack(3, 1, 1, five) == 10);
  CHECK(ids(rr.take_confirmed()) == std::vector<std::uint64_t>{1});
  CHECK(rr.ack(4, 3, 1, five) == 30);
  CHECK(ids(rr.take_confirmed()) == std::vector<std::uint64_t>{2, 3});
}

TEST_CASE("read rounds: a single voter confirms its own round") {
  ReadRounds rr;
  rr.add(7, 1, 4);
  rr.start_round(50);
  CHECK(rr.try_confirm(1, {1}) == 50);
  CHECK(rr.try_confirm(1, {1}) == std::nullopt);  // nothing newer
  CHECK(ids(rr.take_confirmed()) == std::vector<std::uint64_t>{7});
  CHECK(rr.try_confirm(1, {}) == std::nullopt);  // no voters: no quorum
}

TEST_CASE("read rounds: a leader that is not a voter does not count itself") {
  // While it is being removed, the leader still leads but its own round is not a vote.
  ReadRounds rr;
  rr.add(1, 1, 5);
  rr.start_round(10);
  CHECK(rr.ack(2, 1, 1, {2, 3, 4}) == std::nullopt);
  CHECK(rr.ack(3, 1, 1, {2, 3, 4}) == 10);
}

TEST_CASE("read rounds: a leader change returns the pending reads and forgets the rounds") {
  ReadRounds rr;
  rr.add(1, 1, 10);
  const auto old = rr.start_round(100);
  rr.add(2, 3, 10);
  const auto dropped = rr.reset();
  CHECK(ids(dropped) == std::vector<std::uint64_t>{1, 2});
  CHECK(rr.pending_count() == 0);
  CHECK_FALSE(rr.needs_round());
  // Leading again: an echo of the old round must not confirm reads of the new term.
  rr.add(3, 1, 20);
  const auto fresh = rr.start_round(200);
  CHECK(fresh > old);  // round ids keep increasing across terms
  CHECK(rr.ack(2, old, 1, three) == std::nullopt);
  CHECK(rr.take_confirmed().empty());
  CHECK(rr.ack(2, fresh, 1, three) == 200);
  CHECK(ids(rr.take_confirmed()) == std::vector<std::uint64_t>{3});
}

}  // namespace
}  // namespace dengine::raft
