// Scenario tests: the followers' promise not to vote while they hear from a leader, which is
// what a leader's lease stands on. Each scenario below made a leader's lease overlap a newer
// leader before the promise was kept through every message (issue 9).
#include <optional>
#include <vector>

#include "harness.hpp"

namespace dengine::raft::testing {

namespace {

/// Removes and returns the first queued message matching (type, from, to), if any.
std::optional<Message> take(std::vector<Message>& msgs, MessageType type, NodeId from, NodeId to) {
  for (auto it = msgs.begin(); it != msgs.end(); ++it) {
    if (it->type == type && it->from == from && it->to == to) {
      Message m = std::move(*it);
      msgs.erase(it);
      return m;
    }
  }
  return std::nullopt;
}

/// The lease must never be valid while a leader of a later term exists.
void check_no_overlap(Cluster& c, NodeId old_leader, NodeId other) {
  const bool lease = c[old_leader].lease_read().has_value();
  const bool newer = c[other].role() == Role::leader && c[other].term() > c[old_leader].term();
  INFO("old leader n" << old_leader << " lease " << lease << ", n" << other << " "
                      << to_string(c[other].role()) << " term " << c[other].term());
  CHECK_FALSE((lease && newer));
}

}  // namespace

TEST_CASE("promise: a slow pre-vote rejection of a higher term does not end it") {
  // L = 1, F = 2, X = 3.
  auto c = led_by(1);
  c.tick_all();
  c.isolate(1);
  c.forget_leader({2, 3});
  // X pre-votes; F (no longer hearing L) grants; X becomes a candidate at term 2.
  c[3].campaign();
  auto msgs = c.take_messages();
  c.deliver(*take(msgs, MessageType::pre_vote, 3, 2));
  msgs = c.take_messages();
  c.deliver(*take(msgs, MessageType::pre_vote_response, 2, 3));
  REQUIRE(c[3].role() == Role::candidate);
  REQUIRE(c[3].term() == 2);
  msgs = c.take_messages();
  const Message vote_to_f = *take(msgs, MessageType::vote, 3, 2);  // delayed
  // F pre-campaigns; X (candidate at term 2) rejects, and the rejection is slow.
  c[2].campaign();
  msgs = c.take_messages();
  c.deliver(*take(msgs, MessageType::pre_vote, 2, 3));
  msgs = c.take_messages();
  const Message slow_rejection = *take(msgs, MessageType::pre_vote_response, 3, 2);
  REQUIRE(slow_rejection.reject);
  REQUIRE(slow_rejection.term == 2);
  // L reaches F again: F acknowledges L's heartbeat, which renews L's lease (L + F).
  c.heal();
  c.cut(1, 3);
  c.tick(1, static_cast<int>(c[1].config().heartbeat_ticks));
  c.settle();
  REQUIRE(c[2].leader() == 1);
  REQUIRE(c[1].lease_read().has_value());
  // The slow rejection moves F to term 2; X's delayed vote request follows.
  c.deliver(slow_rejection);
  c.deliver(vote_to_f);
  c.settle();
  CHECK(c[2].vote() != 3);
  CHECK(c[3].role() != Role::leader);
  check_no_overlap(c, 1, 3);
}

TEST_CASE("promise: a higher-term reply to an old leader's append does not end it") {
  Cluster c({1, 2, 3}, [](RaftConfig& cfg) { cfg.pre_vote = false; });
  // F = 2 leads term 1; one of its appends to X = 3 is held back.
  c.elect(2);
  c.tick_all();
  REQUIRE(c[2].propose("x").has_value());
  auto msgs = c.take_messages();
  const Message old_append = *take(msgs, MessageType::append, 2, 3);
  for (Message& m : msgs) c.deliver(std::move(m));
  c.settle();
  // Leadership moves to L = 1 (term 2); F follows it.
  c.transfer(2, 1);
  REQUIRE(c[1].role() == Role::leader);
  REQUIRE(c[1].term() == 2);
  c.tick_all();
  // X loses L and campaigns at term 3; F, hearing L, ignores it.
  c.cut(1, 3);
  c.forget_leader({3});
  c[3].campaign();
  c.settle();
  REQUIRE(c[3].term() == 3);
  REQUIRE(c[2].term() == 2);
  // L renews its lease with F's acknowledgement.
  c.tick(1, static_cast<int>(c[1].config().heartbeat_ticks));
  c.settle();
  REQUIRE(c[1].lease_read().has_value());
  // X answers the old append at term 3; F learns term 3 from it.
  c.deliver(old_append);
  c.settle();
  REQUIRE(c[2].term() == 3);
  // X campaigns again (term 4): F must still refuse while its promise to L holds.
  c[3].campaign();
  c.settle();
  CHECK(c[2].vote() != 3);
  CHECK(c[3].role() != Role::leader);
  check_no_overlap(c, 1, 3);
}

TEST_CASE("promise: leader transfer is the one exception") {
  // Node 2 still hears node 1, yet grants node 3's vote: the leader itself asked for it.
  auto t = led_by(1);
  t.tick_all();
  t.transfer(1, 3);
  CHECK(t[3].role() == Role::leader);
  CHECK(t[2].vote() == 3);
}

TEST_CASE("promise: campaign() is refused while it holds; a single voter has no one to promise") {
  auto c = led_by(1);
  c.tick_all();
  CHECK(c[2].promised_leader());
  c[2].campaign();
  CHECK(c[2].role() == Role::follower);
  CHECK(c[2].term() == 1);
  c.forget_leader({2});
  CHECK_FALSE(c[2].promised_leader());
  // A single voter restarting at a term > 0 elects itself at once.
  auto solo = lone_core(1, {3, 1, 0}, {}, {1});
  solo.campaign();
  CHECK(solo.role() == Role::leader);
}

TEST_CASE("promise: a heartbeat acknowledgement waits until its term is durable") {
  // A node at term 0 acknowledges a term-1 leader. If that acknowledgement left before term 1
  // reached disk, a crash would bring it back at term 0, with no memory of its promise.
  auto core = lone_core(2, HardState{});  // a fresh node at term 0
  REQUIRE(core.step({.type = MessageType::heartbeat, .from = 1, .to = 2, .term = 1, .context = 1})
              .has_value());
  Ready rd = core.ready();
  REQUIRE(rd.hard_state);
  CHECK(rd.hard_state->term == 1);
  CHECK(of_type(rd.messages, MessageType::heartbeat_response).empty());
  CHECK(of_type(rd.messages_after_persist, MessageType::heartbeat_response).size() == 1);
  // Once an entry of term 1 is durable, acknowledgements at term 1 leave at once.
  REQUIRE(core.step({.type = MessageType::append,
                     .from = 1,
                     .to = 2,
                     .term = 1,
                     .entries = {{1, 1, EntryType::noop, {}}}})
              .has_value());
  rd = core.ready();
  REQUIRE(rd.entries.size() == 1);
  core.on_persisted(1, 1);
  (void)core.ready();
  REQUIRE(core.step({.type = MessageType::heartbeat,
                     .from = 1,
                     .to = 2,
                     .term = 1,
                     .commit = 1,
                     .context = 2})
              .has_value());
  rd = core.ready();
  CHECK(of_type(rd.messages, MessageType::heartbeat_response).size() == 1);
}

TEST_CASE("promise: a node restarted at a term > 0 keeps it for an election timeout") {
  auto core = lone_core(2, {1, 1, 0}, {}, {1, 2, 3}, [](RaftConfig& cfg) { cfg.pre_vote = false; });
  const Message request{.type = MessageType::vote, .from = 3, .to = 2, .term = 2};
  REQUIRE(core.step(request).has_value());
  CHECK(core.term() == 1);  // ignored: not even its term is taken
  for (std::uint32_t i = 0; i + 1 < core.config().election_ticks; ++i) core.tick();
  REQUIRE(core.step(request).has_value());
  CHECK(core.term() == 1);
  core.tick();
  // The promise is over (the node may even have started an election of its own at term 2).
  REQUIRE(core.step({.type = MessageType::vote, .from = 3, .to = 2, .term = 5}).has_value());
  CHECK(core.term() == 5);
  CHECK(core.vote() == 3);
}

}  // namespace dengine::raft::testing
