// Scenario tests: a follower forwards a proposal to the leader (MessageType::propose), which
// appends it once and answers with the entry's (index, term) or why it refused; and leader
// calls (MessageType::leader_call), which the leader's runtime answers without the log.
#include "harness.hpp"

namespace dengine::raft::testing {

TEST_CASE("forwarding: the leader appends a follower's proposal and answers with its place") {
  auto c = led_by(1);
  REQUIRE(c[2].forward_proposal(41, "from-2").has_value());
  c.settle();
  REQUIRE(c.forwards(2).size() == 1);
  const ForwardOutcome& o = c.forwards(2)[0];
  CHECK(o.id == 41);
  CHECK_FALSE(o.refusal.has_value());
  CHECK(o.term == c[1].term());
  // Committed and applied everywhere at that place, with the follower's bytes.
  for (NodeId n : {1, 2, 3}) {
    CAPTURE(n);
    const auto& applied = c.applied(n);
    auto it = std::find_if(applied.begin(), applied.end(),
                           [&](const Entry& e) { return e.index == o.index; });
    REQUIRE(it != applied.end());
    CHECK(it->data == "from-2");
    CHECK(it->term == o.term);
  }
}

TEST_CASE("forwarding: a duplicated propose message appends one entry and is answered twice") {
  auto c = led_by(1);
  REQUIRE(c[2].forward_proposal(7, "once").has_value());
  auto msgs = c.take_messages();
  auto proposes = of_type(msgs, MessageType::propose);
  REQUIRE(proposes.size() == 1);
  c.deliver(proposes[0]);
  c.deliver(proposes[0]);  // the network's duplicate
  c.settle();
  REQUIRE(c.forwards(2).size() == 2);
  CHECK(c.forwards(2)[0].index == c.forwards(2)[1].index);
  CHECK(std::count_if(c.applied(1).begin(), c.applied(1).end(),
                      [](const Entry& e) { return e.data == "once"; }) == 1);
}

TEST_CASE("forwarding: a node that does not lead refuses with not_leader, appending nothing") {
  auto c = led_by(1);
  const LogIndex before = c[3].last_index();
  // Node 2 believes 3 leads (e.g. a stale view); 3 is a follower.
  Message m{.type = MessageType::propose, .from = 2, .to = 3, .term = c[3].term(), .context = 9};
  m.entries.push_back(entry(0, 0, "misdirected"));
  c.deliver(m);
  c.settle();
  CHECK(c[3].last_index() == before);
  REQUIRE(c.forwards(2).size() == 1);
  REQUIRE(c.forwards(2)[0].refusal.has_value());
  CHECK(*c.forwards(2)[0].refusal == errc::not_leader);
}

TEST_CASE("forwarding: a proposal from an older term is refused (sent again to the new leader)") {
  auto c = led_by(1);
  Message m{
      .type = MessageType::propose, .from = 2, .to = 1, .term = c[1].term() - 1, .context = 3};
  m.entries.push_back(entry(0, 0, "stale"));
  const LogIndex before = c[1].last_index();
  c.deliver(m);
  c.settle();
  CHECK(c[1].last_index() == before);
  REQUIRE(c.forwards(2).size() == 1);
  CHECK(*c.forwards(2)[0].refusal == errc::not_leader);
}

TEST_CASE(
    "forwarding: refusals carry the leader's reason; a follower refuses what no leader takes") {
  SUBCASE("too large for max_entry_bytes: refused at the follower itself") {
    auto c = led_by(1);
    CHECK(c[2].forward_proposal(1, std::string(c[2].config().max_entry_bytes + 1, 'x')).error() ==
          errc::too_large);
  }
  SUBCASE("during a leadership transfer: proposal_dropped") {
    auto c = led_by(1);
    c.isolate(3);  // the transfer to 3 cannot finish
    REQUIRE(c[1].transfer_leader(3).has_value());
    REQUIRE(c[2].forward_proposal(5, "x").has_value());
    c.settle();
    REQUIRE(c.forwards(2).size() == 1);
    CHECK(*c.forwards(2)[0].refusal == errc::proposal_dropped);
  }
  SUBCASE("no leader known: not_leader at once") {
    Cluster c({1, 2, 3});
    CHECK(c[2].forward_proposal(1, "x").error() == errc::not_leader);
  }
}

TEST_CASE("leader calls: the leader's runtime answers a follower's call; no entry is appended") {
  auto c = led_by(1);
  const LogIndex before = c[1].last_index();
  REQUIRE(c[2].call_leader(5, "keep-alive 9").has_value());
  c.settle();
  REQUIRE(c.leader_calls(1).size() == 1);
  const LeaderCall call = c.leader_calls(1)[0];
  CHECK(call.from == 2);
  CHECK(call.id == 5);
  CHECK(call.request == "keep-alive 9");
  CHECK(c.leader_call_answers(2).empty());  // nothing until the runtime answers
  c[1].answer_leader_call(call.from, call.id, std::string("ttl 10"));
  c.settle();
  REQUIRE(c.leader_call_answers(2).size() == 1);
  const LeaderCallAnswer& a = c.leader_call_answers(2)[0];
  CHECK(a.id == 5);
  CHECK(a.from == 1);
  REQUIRE(a.reply.has_value());
  CHECK(*a.reply == "ttl 10");
  CHECK(c[1].last_index() == before);
}

TEST_CASE(
    "leader calls: a declined call, a call to a non-leader, and one of an older term are "
    "answered without a reply (ask again)") {
  SUBCASE("the leader's service declines") {
    auto c = led_by(1);
    REQUIRE(c[2].call_leader(6, "x").has_value());
    c.settle();
    REQUIRE(c.leader_calls(1).size() == 1);
    c[1].answer_leader_call(2, 6, std::nullopt);
    c.settle();
    REQUIRE(c.leader_call_answers(2).size() == 1);
    CHECK_FALSE(c.leader_call_answers(2)[0].reply.has_value());
  }
  SUBCASE("sent to a follower") {
    auto c = led_by(1);
    Message m{
        .type = MessageType::leader_call, .from = 2, .to = 3, .term = c[3].term(), .context = 8};
    m.entries.push_back(entry(0, 0, "misdirected"));
    c.deliver(m);
    c.settle();
    CHECK(c.leader_calls(3).empty());
    REQUIRE(c.leader_call_answers(2).size() == 1);
    CHECK(c.leader_call_answers(2)[0].id == 8);
    CHECK_FALSE(c.leader_call_answers(2)[0].reply.has_value());
  }
  SUBCASE("from an older term") {
    auto c = led_by(1);
    Message m{.type = MessageType::leader_call,
              .from = 2,
              .to = 1,
              .term = c[1].term() - 1,
              .context = 4};
    m.entries.push_back(entry(0, 0, "stale"));
    c.deliver(m);
    c.settle();
    CHECK(c.leader_calls(1).empty());
    REQUIRE(c.leader_call_answers(2).size() == 1);
    CHECK_FALSE(c.leader_call_answers(2)[0].reply.has_value());
  }
  SUBCASE("a leader call without its one request is declined, not served") {
    auto c = led_by(1);
    c.deliver(Message{
        .type = MessageType::leader_call, .from = 2, .to = 1, .term = c[1].term(), .context = 2});
    c.settle();
    CHECK(c.leader_calls(1).empty());
    REQUIRE(c.leader_call_answers(2).size() == 1);
    CHECK_FALSE(c.leader_call_answers(2)[0].reply.has_value());
  }
}

TEST_CASE("leader calls: refused at the caller without a leader, or beyond max_entry_bytes") {
  auto c = led_by(1);
  CHECK(c[1].call_leader(1, "x").error() == errc::not_leader);  // the leader serves its own
  CHECK(c[2].call_leader(1, std::string(c[2].config().max_entry_bytes + 1, 'x')).error() ==
        errc::too_large);
  c.isolate(3);
  for (int i = 0; i < 200 && c[3].role() == Role::follower; ++i) c.tick(3);
  REQUIRE(c[3].role() != Role::follower);  // campaigning: no leader to call
  CHECK(c[3].call_leader(1, "x").error() == errc::not_leader);
}

}  // namespace dengine::raft::testing
