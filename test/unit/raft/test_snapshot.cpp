// Scenario tests: compaction and snapshot installation.
#include "harness.hpp"

namespace dengine::raft::testing {

namespace {
std::shared_ptr<const Snapshot> snapshot_of(Cluster& c, NodeId id) {
  auto& core = c[id];
  const LogIndex at = c.applied_index(id);
  auto snap = std::make_shared<Snapshot>();
  snap->meta.index = at;
  snap->meta.term = core.term_at(at).value();
  snap->meta.membership = core.membership_at(at);
  snap->data = "state@" + std::to_string(at);
  return snap;
}

/// Proposes `n` entries on the leader, node 1, and lets every reachable node apply them.
void fill(Cluster& c, int n) {
  for (int i = 0; i < n; ++i) c.put(1, "e" + std::to_string(i));
  c.tick_all();
}
}  // namespace

TEST_CASE("compaction: the log prefix is dropped; terms at the compaction point still answer") {
  auto c = led_by(1);
  fill(c, 10);
  auto snap = snapshot_of(c, 1);
  REQUIRE(c[1].compact(snap).has_value());
  CHECK(c[1].first_index() == snap->meta.index + 1);
  CHECK(c[1].term_at(snap->meta.index).value() == snap->meta.term);
  CHECK(c[1].term_at(snap->meta.index - 1).error() == errc::compacted);
}

TEST_CASE("compaction: refused beyond the applied index or with a wrong term") {
  auto c = led_by(1, {1});
  c.put(1, "a");
  auto snap = std::make_shared<Snapshot>();
  snap->meta.index = 99;
  CHECK(c[1].compact(snap).error() == errc::invalid_argument);
  auto wrong = snapshot_of(c, 1);
  auto copy = std::make_shared<Snapshot>(*wrong);
  copy->meta.term = 77;
  CHECK(c[1].compact(copy).error() == errc::invalid_argument);
}

TEST_CASE("snapshot: a follower missing compacted entries receives and installs the snapshot") {
  auto c = led_by(1);
  c.isolate(3);
  fill(c, 20);
  auto snap = snapshot_of(c, 1);
  REQUIRE(c[1].compact(snap).has_value());
  c.heal();
  c.tick_all(3);
  CHECK(c[1].stats().snapshots_sent >= 1);
  CHECK(c.stored(3).snapshot.index == snap->meta.index);
  CHECK(c.stored(3).snapshot_data->data == snap->data);
  CHECK(c[3].first_index() == snap->meta.index + 1);
  CHECK(c[3].commit_index() == c[1].commit_index());
  // It keeps up afterwards through normal appends.
  const LogIndex i = c.put(1, "after");
  c.tick_all();
  CHECK(c.applied_index(3) == i);
}

TEST_CASE("snapshot: a follower that holds the snapshot's last entry only moves its commit") {
  auto c = led_by(1, {1, 2});
  c.put(1, "a");
  c.tick_all();
  const LogIndex last = c[2].last_index();
  auto snap = std::make_shared<Snapshot>();
  snap->meta.index = last;
  snap->meta.term = c[2].term_at(last).value();
  snap->meta.membership = c[2].membership();
  c.drop_queue();
  (void)c[2].step(
      {.type = MessageType::snapshot, .from = 1, .to = 2, .term = c[1].term(), .snapshot = snap});
  Ready rd = c[2].ready();
  CHECK_FALSE(rd.snapshot);
  CHECK(c[2].first_index() == 1);
}

TEST_CASE("snapshot: a lost snapshot message is retried") {
  auto d = led_by(1, {1, 2, 3});
  d.isolate(3);
  for (int i = 0; i < 5; ++i) d.put(1, "e");
  d.tick_all();
  REQUIRE(d[1].compact(snapshot_of(d, 1)).has_value());
  d.heal();
  d.drop_if([](const Message& m) { return m.type == MessageType::snapshot; });  // lost
  d.tick_all(2);
  const auto sent = d[1].stats().snapshots_sent;
  CHECK(sent >= 1);
  CHECK(d.stored(3).snapshot.index == 0);
  d.drop_if({});
  d.tick_all(25);
  CHECK(d[1].stats().snapshots_sent > sent);
  CHECK(d.stored(3).snapshot.index > 0);
}

TEST_CASE("snapshot: a new member joins from a snapshot and learns the membership") {
  auto c = led_by(1);
  fill(c, 5);
  REQUIRE(c[1].compact(snapshot_of(c, 1)).has_value());
  c.add_node(4, Membership{{1, 2, 3}, {}});
  REQUIRE(c[1].propose_config_change({ConfigChange::Kind::add_learner, 4, ""}).has_value());
  c.tick_all(4);
  CHECK(c[4].membership().is_learner(4));
  CHECK(c[4].commit_index() == c[1].commit_index());
  CHECK(c.stored(4).snapshot.index > 0);
}

TEST_CASE("snapshot: a later member learns earlier members' addresses from the snapshot") {
  auto c = led_by(1);
  c.tick_all();
  c.add_node(4, Membership{{1, 2, 3}, {}});
  REQUIRE(c[1].propose_config_change({ConfigChange::Kind::add_learner, 4, "127.0.0.1:4"}));
  c.tick_all(4);
  fill(c, 5);
  auto snap = snapshot_of(c, 1);
  CHECK(snap->meta.membership.address_of(4) == "127.0.0.1:4");
  REQUIRE(c[1].compact(snap).has_value());
  // Node 5's log starts after the entry that added node 4: only the snapshot can tell it.
  c.add_node(5, Membership{{1, 2, 3}, {}});
  REQUIRE(c[1].propose_config_change({ConfigChange::Kind::add_learner, 5, "127.0.0.1:5"}));
  c.tick_all(4);
  REQUIRE(c.stored(5).snapshot.index > 0);
  CHECK(c[5].membership().address_of(4) == "127.0.0.1:4");
  CHECK(c[5].membership().address_of(5) == "127.0.0.1:5");
}

TEST_CASE("restart from snapshot + log tail") {
  auto c = led_by(1);
  fill(c, 5);
  auto snap = snapshot_of(c, 2);
  REQUIRE(c[2].compact(snap).has_value());
  auto& s = c.stored(2);
  s.snapshot = snap->meta;
  s.snapshot_data = snap;
  std::erase_if(s.entries, [&](const Entry& e) { return e.index <= snap->meta.index; });
  c.put(1, "tail");
  c.tick_all();
  c.start(2);
  CHECK(c[2].first_index() == snap->meta.index + 1);
  CHECK(c[2].last_index() == c[1].last_index());
  c.tick_all(3);
  CHECK(c[2].commit_index() == c[1].commit_index());
}

TEST_CASE(
    "snapshot install: the durable commit index never covers the old log before the reset is "
    "durable") {
  // Follower with a committed prefix [1,2] and uncommitted entries 3..4 of an old term.
  auto core = lone_core(2, {3, 0, 2}, {entry(1, 1), entry(1, 2), entry(2, 3), entry(2, 4)});
  auto snap = std::make_shared<Snapshot>();
  snap->meta = {10, 3, core.membership()};
  (void)core.step({.type = MessageType::snapshot, .from = 1, .to = 2, .term = 3, .snapshot = snap});
  Ready rd = core.ready();
  REQUIRE(rd.snapshot);
  // Were this hard state durable and the reset lost in a crash, a commit index of 4 would make
  // the old log's term-2 entries count as committed.
  if (rd.hard_state) CHECK(rd.hard_state->commit <= 2);
  core.on_snapshot_persisted(10);
  Ready after = core.ready();
  REQUIRE(after.hard_state);
  CHECK(after.hard_state->commit == 10);
}

}  // namespace dengine::raft::testing
