// Scenario tests: log replication, conflicts, commit rules (figure 8), backtracking, batching,
// flow control, persistence ordering.
#include "harness.hpp"

namespace dengine::raft::testing {

TEST_CASE("replication: a proposal commits on a majority and applies everywhere in order") {
  auto c = led_by(1);
  c.put(1, "x");
  c.put(1, "y");
  c.tick_all();
  for (NodeId id : {1, 2, 3}) {
    REQUIRE(c.applied(id).size() == 3);
    CHECK(c.applied(id)[1].data == "x");
    CHECK(c.applied(id)[2].data == "y");
  }
}

TEST_CASE("replication: commits with one follower down, not with two") {
  auto c = led_by(1);
  c.isolate(3);
  auto i = c.put(1, "x");
  CHECK(c[1].commit_index() == i);
  c.isolate(2);
  auto j = c.put(1, "y");
  CHECK(c[1].commit_index() == i);
  CHECK(c[1].last_index() == j);
}

TEST_CASE("proposals on a follower fail with not_leader naming the leader") {
  auto c = led_by(1);
  auto r = c[2].propose("x");
  REQUIRE(r.has_error());
  CHECK(r.error() == errc::not_leader);
  CHECK(r.error().leader_hint == 1);
}

TEST_CASE("a too-large entry is refused with too_large") {
  Cluster c({1}, [](RaftConfig& cfg) { cfg.max_entry_bytes = 100; });
  c.elect(1);
  auto r = c[1].propose(std::string(101, 'x'));
  REQUIRE(r.has_error());
  CHECK(r.error() == errc::too_large);
}

TEST_CASE("uncommitted bytes are bounded: past the bound proposals fail too_busy") {
  Cluster c({1, 2, 3}, [](RaftConfig& cfg) {
    cfg.max_uncommitted_bytes = 1000;
    cfg.max_entry_bytes = 500;
  });
  c.elect(1);
  c.isolate(1);  // nothing commits
  int ok = 0;
  dengine::error last;
  for (int i = 0; i < 20; ++i) {
    auto r = c[1].propose(std::string(200, 'x'));
    if (r)
      ++ok;
    else
      last = r.error();
  }
  CHECK(ok < 20);
  CHECK(last == errc::too_busy);
}

TEST_CASE("log conflict: a new leader truncates a follower's uncommitted entries of an old term") {
  auto c = led_by(1);
  c.put(1, "committed");
  // Node 1 appends entries only it has, then loses leadership.
  c.isolate(1);
  (void)c[1].propose("lost-1");
  (void)c[1].propose("lost-2");
  c.settle();
  c.forget_leader({2, 3});
  c.elect(2);
  REQUIRE(c[2].role() == Role::leader);
  c.put(2, "new");
  c.heal();
  c.tick_all(3);
  // Node 1's log now matches node 2's: the lost entries were replaced.
  for (LogIndex i = 1; i <= c[2].last_index(); ++i) {
    REQUIRE(c[1].entry_at(i) != nullptr);
    CHECK(*c[1].entry_at(i) == *c[2].entry_at(i));
  }
  for (auto& e : c.applied(1)) CHECK(e.data.rfind("lost", 0) != 0);
}

TEST_CASE(
    "commit rule (figure 8): an old-term entry on a majority commits only with a current-term "
    "entry") {
  // Direct check on one core: leader of term 3 whose log holds an uncommitted term-2 entry.
  auto core = lone_core(1, {2, 1, 1}, {entry(1, 1), entry(2, 2)});
  // Restarted at term 2, it keeps its promise to the old leader for an election timeout.
  for (std::uint32_t i = 0; i < core.config().election_ticks; ++i) core.tick();
  core.campaign();
  (void)core.ready();
  // Pre-vote then vote: grant both from node 2.
  (void)core.step({.type = MessageType::pre_vote_response, .from = 2, .to = 1, .term = 3});
  auto rd = core.ready();
  (void)core.step({.type = MessageType::vote_response, .from = 2, .to = 1, .term = 3});
  REQUIRE(core.role() == Role::leader);
  rd = core.ready();
  REQUIRE(!rd.entries.empty());
  core.on_persisted(rd.entries.back().index, rd.entries.back().term);  // no-op at 3 is durable
  // Node 2 acknowledges index 2 only (the term-2 entry): a majority holds it, but no commit.
  (void)core.step(
      {.type = MessageType::append_response, .from = 2, .to = 1, .term = 3, .index = 2});
  CHECK(core.commit_index() == 1);
  // Node 2 acknowledges the no-op at 3: now 2 and 3 commit together.
  (void)core.step(
      {.type = MessageType::append_response, .from = 2, .to = 1, .term = 3, .index = 3});
  CHECK(core.commit_index() == 3);
}

TEST_CASE("fast backtracking: a long divergent follower log is fixed in few round trips") {
  std::vector<Entry> log;  // term 1 up to 10, then term 4 up to 100
  for (LogIndex i = 1; i <= 100; ++i) log.push_back(entry(i <= 10 ? 1 : 4, i));
  auto follower = lone_core(2, {5, 0, 0}, std::move(log));
  // Leader (term 6) has term-1 entries up to 10, then term-5 entries up to 200; it probes at 200.
  (void)follower.step(
      {.type = MessageType::append, .from = 1, .to = 2, .term = 6, .log_term = 5, .index = 200});
  auto rd = follower.ready();
  REQUIRE(rd.messages_after_persist.size() == 1);
  const Message& rej = rd.messages_after_persist[0];
  CHECK(rej.reject);
  // The hint skips the whole term-4 run: the last index whose term ≤ 5 is 100 (term 4), and the
  // leader then searches its own log for term ≤ 4 — landing at 10 — in one round trip.
  CHECK(rej.reject_hint == 100);
  CHECK(rej.log_term == 4);
}

TEST_CASE("batching: proposals between two Ready calls travel in one append per follower") {
  auto c = led_by(1);
  c.tick_all();
  for (int i = 0; i < 64; ++i) REQUIRE(c[1].propose("p" + std::to_string(i)).has_value());
  auto msgs = of_type(c.take_messages(), MessageType::append);
  REQUIRE(msgs.size() == 2);
  CHECK(msgs[0].entries.size() == 64);
}

TEST_CASE("flow control: the in-flight window bounds unacknowledged appends") {
  Cluster c({1, 2}, [](RaftConfig& cfg) {
    cfg.max_inflight_messages = 2;
    cfg.max_append_entries = 1;
  });
  c.elect(1);
  c.tick_all();
  for (int i = 0; i < 10; ++i) REQUIRE(c[1].propose("p").has_value());
  auto msgs = of_type(c.take_messages(), MessageType::append);
  CHECK(msgs.size() == 2);
  const Progress* pr = c[1].progress(2);
  REQUIRE(pr != nullptr);
  CHECK(pr->state == Progress::State::replicate);
  CHECK(pr->paused());
  for (auto& m : msgs) c.deliver(m);
  c.settle();
  CHECK(c[1].commit_index() == c[1].last_index());
}

TEST_CASE("parallel append: a leader sends appends before its own write is durable") {
  auto c = led_by(1);
  c.tick_all();
  REQUIRE(c[1].propose("x").has_value());
  Ready rd = c[1].ready();
  CHECK(rd.entries.size() == 1);
  CHECK(of_type(rd.messages, MessageType::append).size() == 2);
  // Followers acknowledge only after persisting: their responses wait for it.
  for (auto& m : rd.messages) (void)c[m.to].step(m);
  Ready f = c[2].ready();
  CHECK(of_type(f.messages, MessageType::append_response).empty());
  CHECK(of_type(f.messages_after_persist, MessageType::append_response).size() == 1);
}

TEST_CASE("a committed entry is applied only once it is durable locally") {
  auto c = led_by(1);
  c.tick_all();
  REQUIRE(c[1].propose("x").has_value());
  Ready rd = c[1].ready();  // not reported persisted
  for (auto& m : rd.messages) (void)c[m.to].step(m);
  for (NodeId f : {2, 3}) {
    Ready fr = c[f].ready();
    c[f].on_persisted(fr.entries.back().index, fr.entries.back().term);
    for (auto& m : fr.messages_after_persist) (void)c[1].step(m);
  }
  CHECK(c[1].commit_index() == 2);  // committed by the followers' copies
  Ready again = c[1].ready();
  CHECK(again.committed_entries.empty());  // but not applied before the leader's own write
  c[1].on_persisted(2, c[1].term());
  Ready last = c[1].ready();
  REQUIRE(last.committed_entries.size() == 1);
  CHECK(last.committed_entries[0].data == "x");
}

TEST_CASE("restart: hard state commit never exceeds the durable log") {
  auto c = led_by(1);
  c.put(1, "a");
  c.tick_all(2);
  auto& s = c.stored(2);
  CHECK(s.hard_state.commit <= s.entries.back().index);
  c.start(2);
  CHECK(c[2].commit_index() == s.hard_state.commit);
}

}  // namespace dengine::raft::testing
