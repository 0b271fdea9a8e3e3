// Scenario tests: ReadIndex (batched, forwarded, under leader change) and lease reads.
#include "harness.hpp"

namespace dengine::raft::testing {

TEST_CASE("read index: confirmed by a heartbeat quorum at the leader's commit index") {
  // Asked on the leader itself, or on a follower that forwards it to the leader.
  for (NodeId asker : {1, 2}) {
    CAPTURE(asker);
    auto c = led_by(1);
    c.put(1, "x");
    REQUIRE(c[asker].read_index(7).has_value());
    c.settle();
    REQUIRE(c.reads(asker).size() == 1);
    CHECK(c.reads(asker)[0].id == 7);
    CHECK(c.reads(asker)[0].index == c[1].commit_index());
  }
}

TEST_CASE("read index: many reads share one confirmation round") {
  auto c = led_by(1);
  c.tick_all();
  for (std::uint64_t id = 1; id <= 100; ++id) REQUIRE(c[1].read_index(id).has_value());
  auto msgs = c.take_messages();
  CHECK(of_type(msgs, MessageType::heartbeat).size() == 2);  // one round, one heartbeat per peer
  for (auto& m : msgs) c.deliver(m);
  c.settle();
  CHECK(c.reads(1).size() == 100);
}

TEST_CASE("read index: not confirmed without a quorum") {
  auto c = led_by(1);
  c.tick_all();
  c.isolate(1);
  REQUIRE(c[1].read_index(1).has_value());
  c.settle();
  CHECK(c.reads(1).empty());
}

TEST_CASE("read index: a deposed leader drops pending reads; the new leader serves them") {
  auto c = led_by(1);
  c.put(1, "x");
  c.isolate(1);
  REQUIRE(c[1].read_index(1).has_value());
  c.settle();
  c.forget_leader({2, 3});
  c.elect(2);
  REQUIRE(c[2].role() == Role::leader);
  c.heal();
  c.tick_all(2);  // node 1 hears the higher term and steps down
  CHECK(c[1].role() == Role::follower);
  CHECK(c.reads(1).empty());
  REQUIRE(c.dropped(1).size() == 1);
  CHECK(c.dropped(1)[0].reason == errc::not_leader);
  // The same read retried on the new leader is confirmed at an index ≥ the old commit.
  REQUIRE(c[2].read_index(1).has_value());
  c.settle();
  REQUIRE(c.reads(2).size() == 1);
  CHECK(c.reads(2)[0].index >= 2);
}

TEST_CASE("read index: a new leader waits until it commits an entry of its term") {
  auto c = led_by(1);
  c.put(1, "x");
  c.isolate(1);
  c.forget_leader({2, 3});
  // Node 2 wins, but its appends are lost: its no-op does not commit, and its commit index
  // (behind node 1's) may lag what its predecessor committed.
  c.drop_if([](const Message& m) { return m.type == MessageType::append; });
  c.elect(2);
  REQUIRE(c[2].role() == Role::leader);
  const LogIndex noop = c[2].last_index();
  REQUIRE(c[2].commit_index() < noop);
  REQUIRE(c[2].read_index(9).has_value());
  // Heartbeats still reach a quorum: leadership is confirmed, yet the read must wait.
  c.tick_all(3);
  CHECK(c.reads(2).empty());
  c.drop_if({});
  c.tick_all(2);
  REQUIRE(c.reads(2).size() == 1);
  CHECK(c.reads(2)[0].index >= noop);
  CHECK(c.reads(2)[0].index == c[2].commit_index());
}

TEST_CASE("read index: a follower without a known leader refuses at once") {
  Cluster c({1, 2, 3});
  auto r = c[2].read_index(1);
  REQUIRE(r.has_error());
  CHECK(r.error() == errc::not_leader);
}

TEST_CASE("lease: held after a heartbeat quorum, lost after lease_ticks without one") {
  auto c = led_by(1);
  CHECK(c[1].lease_read().has_error());  // no round confirmed yet
  c.tick_all(1);
  auto r = c[1].lease_read();
  REQUIRE(r.has_value());
  CHECK(r.value() == c[1].commit_index());
  CHECK(c[1].lease_ticks_left() > 0);
  CHECK(c[1].lease_ticks_left() <= c[1].config().effective_lease_ticks());
  c.isolate(1);
  const auto lease = c[1].config().effective_lease_ticks();
  c.tick(1, static_cast<int>(lease));
  c.settle();
  auto expired = c[1].lease_read();
  REQUIRE(expired.has_error());
  CHECK(expired.error() == errc::unavailable);
  CHECK(c[1].lease_ticks_left() == 0);
  // The lease always ends before any follower may vote for someone else.
  CHECK(lease < c[1].config().election_ticks);
}

TEST_CASE("lease: refused on followers and during a leader transfer") {
  auto c = led_by(1);
  c.tick_all();
  CHECK(c[2].lease_read().error() == errc::not_leader);
  CHECK(c[2].lease_ticks_left() == 0);
  CHECK(c[1].lease_ticks_left() > 0);
  c.isolate(2);
  REQUIRE(c[1].transfer_leader(2).has_value());
  CHECK(c[1].lease_read().error() == errc::unavailable);
  CHECK(c[1].lease_ticks_left() == 0);
}

TEST_CASE("lease: needs check_quorum (config validation)") {
  RaftConfig cfg;
  cfg.id = 1;
  cfg.check_quorum = false;
  cfg.lease_reads = true;
  auto v = cfg.validate();
  REQUIRE(v.has_error());
  CHECK(v.error().detail.find("check_quorum") != std::string::npos);
  cfg.check_quorum = true;
  cfg.lease_ticks = 10;
  CHECK(cfg.validate().has_error());
}

}  // namespace dengine::raft::testing
