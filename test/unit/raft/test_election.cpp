// Scenario tests: elections, pre-vote, check-quorum, vote rules, restart stickiness.
#include "harness.hpp"

namespace dengine::raft::testing {

TEST_CASE("election: a candidate with votes from a majority becomes leader; others follow") {
  auto c = led_by(1);
  CHECK(c[1].role() == Role::leader);
  CHECK(c[1].term() == 1);
  for (NodeId id : {2, 3}) {
    CHECK(c[id].role() == Role::follower);
    CHECK(c[id].leader() == 1);
    CHECK(c[id].term() == 1);
    CHECK(c[id].vote() == 1);
  }
  // The new leader's no-op commits everywhere (commit only of current-term entries).
  c.tick_all();
  for (NodeId id : {1, 2, 3}) {
    REQUIRE(c.applied(id).size() == 1);
    CHECK(c.applied(id)[0].type == EntryType::noop);
    CHECK(c.applied(id)[0].term == 1);
  }
}

TEST_CASE("election: election timeout triggers a campaign, randomized in [T, 2T)") {
  Cluster c({1, 2, 3});
  int ticks = 0;
  while (c.leader() == no_node && ticks < 100) {
    c.tick_all();
    ++ticks;
  }
  CHECK(c.leader() != no_node);
  CHECK(ticks >= 10);
  CHECK(ticks < 40);
}

TEST_CASE("election: the vote request goes out only after the candidate's vote is durable") {
  Cluster c({1, 2, 3}, [](RaftConfig& cfg) { cfg.pre_vote = false; });
  c[1].campaign();
  Ready rd = c[1].ready();
  REQUIRE(rd.hard_state);
  CHECK(rd.hard_state->vote == 1);
  CHECK(of_type(rd.messages, MessageType::vote).empty());
  CHECK(of_type(rd.messages_after_persist, MessageType::vote).size() == 2);
}

TEST_CASE("vote: rejected when the candidate's log is less up to date") {
  auto c = led_by(1);
  c.put(1, "a");
  // Node 3 misses an entry; node 2 has it.
  c.cut(1, 3);
  c.put(1, "b");
  c.heal();
  c.isolate(1);
  // Node 3 campaigns: node 2 has a longer log of the same term and refuses, also in pre-vote.
  // Neither hears the leader any more, so neither is held by its promise to it.
  c.forget_leader({2, 3});
  c[3].campaign();
  c.settle();
  CHECK(c[3].role() != Role::leader);
  c.elect(2);
  CHECK(c[2].role() == Role::leader);
}

TEST_CASE("vote: at most one vote per term, and it is remembered across restart") {
  Cluster c({1, 2, 3}, [](RaftConfig& cfg) {
    cfg.pre_vote = false;
    cfg.check_quorum = false;
    cfg.lease_reads = false;
  });
  c[1].campaign();
  auto req1 = of_type(c.take_messages(), MessageType::vote);
  c[2].campaign();  // node 2 also at term 1, voted for itself
  auto req2 = of_type(c.take_messages(), MessageType::vote);
  // Node 3 receives node 1's request first: grants; then node 2's: same term, must refuse.
  for (auto& m : req1)
    if (m.to == 3) c.deliver(m);
  auto resp1 = of_type(c.take_messages(), MessageType::vote_response);  // persisted, then sent
  c.start(3);  // crash and restart between the two requests
  for (auto& m : req2)
    if (m.to == 3) c.deliver(m);
  auto resp2 = of_type(c.take_messages(), MessageType::vote_response);
  REQUIRE(resp1.size() == 1);
  CHECK(resp1[0].to == 1);
  CHECK_FALSE(resp1[0].reject);
  REQUIRE(resp2.size() == 1);
  CHECK(resp2[0].to == 2);
  CHECK(resp2[0].reject);
}

TEST_CASE("pre-vote: a partitioned node rejoining does not disrupt the leader") {
  auto c = led_by(1);
  c.isolate(3);
  c.tick_all(100);  // node 3 keeps pre-voting; its term must not rise
  CHECK(c[3].term() == 1);
  CHECK(c[3].role() == Role::pre_candidate);
  c.heal();
  c.tick_all(3);
  CHECK(c[1].role() == Role::leader);
  CHECK(c[1].term() == 1);
  CHECK(c[3].leader() == 1);
}

TEST_CASE("without pre-vote, the same rejoining node would raise the term") {
  Cluster c({1, 2, 3}, [](RaftConfig& cfg) { cfg.pre_vote = false; });
  c.elect(1);
  c.isolate(3);
  c.tick_all(100);
  CHECK(c[3].term() > 1);
}

TEST_CASE("check-quorum: a leader that cannot reach a quorum steps down") {
  auto c = led_by(1);
  c.isolate(1);
  c.tick(1, 20);  // at most two election timeouts without responses
  CHECK(c[1].role() == Role::follower);
  CHECK(c[1].leader() == no_node);
}

TEST_CASE(
    "check-quorum: followers that hear a leader ignore a disruptive candidate (leader "
    "stickiness)") {
  Cluster c({1, 2, 3}, [](RaftConfig& cfg) { cfg.pre_vote = false; });
  c.elect(1);
  c.cut(1, 3);
  // Node 3 times out and campaigns at term 2; node 2 still hears node 1 and ignores it.
  c[3].campaign();
  c.settle();
  CHECK(c[2].term() == 1);
  CHECK(c[1].role() == Role::leader);
}

TEST_CASE("restart: a restarted node does not grant votes for one election timeout") {
  auto c = led_by(1);
  c.tick_all(2);
  c.start(2);
  c.isolate(1);
  c.tick(3, 25);
  c[3].campaign();
  c.settle();
  CHECK(c[3].role() != Role::leader);  // node 2 keeps its possible promise to node 1
  c.tick(2, 10);
  c[3].campaign();
  c.settle();
  CHECK(c[3].role() == Role::leader);
}

TEST_CASE("a learner never campaigns") {
  Cluster c({1});
  c.add_node(2, Membership{{1}, {2}});
  c.tick(2, 100);
  CHECK(c[2].role() == Role::follower);
}

TEST_CASE("invalid config and state are rejected with a named reason") {
  RaftConfig cfg;
  CoreState st;
  st.snapshot.membership.voters = {1};
  auto r = Core::create(cfg, st);
  REQUIRE(r.has_error());
  CHECK(r.error() == errc::invalid_argument);
  CHECK(r.error().detail.find("id") != std::string::npos);
  cfg.id = 1;
  cfg.election_ticks = 2;
  CHECK(Core::create(cfg, st).error().detail.find("election_ticks") != std::string::npos);
  cfg.election_ticks = 10;
  st.entries = {entry(1, 5)};
  CHECK(Core::create(cfg, st).error().detail.find("contiguous") != std::string::npos);
}

TEST_CASE("vote: a stale candidate is told the current term and steps down") {
  Cluster c({1, 2, 3}, [](RaftConfig& cfg) { cfg.pre_vote = false; });
  c.elect(1);
  c.tick_all();
  // A vote request from an older term is refused with our term, so the candidate catches up.
  (void)c[2].step(
      {.type = MessageType::vote, .from = 3, .to = 2, .term = 0, .log_term = 0, .index = 0});
  auto resp = of_type(c.take_messages(), MessageType::vote_response);
  REQUIRE(resp.size() == 1);
  CHECK(resp[0].reject);
  CHECK(resp[0].term == c[2].term());
}

}  // namespace dengine::raft::testing
