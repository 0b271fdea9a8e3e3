// Scenario tests: a follower forwards a proposal to the leader (MessageType::propose), which
// appends it once and answers with the entry's (index, term) or why it refused.
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

}  // namespace dengine::raft::testing
