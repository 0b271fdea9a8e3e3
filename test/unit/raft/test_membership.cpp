// Scenario tests: leader transfer and single-server membership changes with learners.
#include "harness.hpp"

namespace dengine::raft::testing {

TEST_CASE("transfer: the target catches up, gets TimeoutNow and wins the next term") {
  auto c = led_by(1);
  c.tick_all();
  c.transfer(1, 2);
  CHECK(c[2].role() == Role::leader);
  CHECK(c[2].term() == 2);
  CHECK(c[1].role() == Role::follower);
}

TEST_CASE("transfer: a lagging target is caught up first; proposals are refused meanwhile") {
  auto c = led_by(1);
  c.cut(1, 3);
  c.put(1, "a");
  c.put(1, "b");
  REQUIRE(c[1].transfer_leader(3).has_value());
  auto r = c[1].propose("c");
  REQUIRE(r.has_error());
  CHECK(r.error() == errc::proposal_dropped);
  c.heal();
  c.tick_all(2);
  CHECK(c[3].role() == Role::leader);
  CHECK(c[3].last_index() >= 3);
}

TEST_CASE("transfer: aborted after an election timeout if the target does not take over") {
  auto c = led_by(1);
  c.tick_all();
  c.isolate(3);
  REQUIRE(c[1].transfer_leader(3).has_value());
  c.tick_all(10);
  CHECK(c[1].role() == Role::leader);
  CHECK(c[1].transfer_target() == no_node);
  CHECK(c[1].propose("after").has_value());
}

TEST_CASE("transfer: to a non-voter is invalid") {
  auto c = led_by(1, {1, 2});
  CHECK(c[1].transfer_leader(9).error() == errc::invalid_argument);
}

TEST_CASE("membership: add a learner; it receives the log but does not count for commit") {
  auto c = led_by(1);
  c.tick_all();
  c.add_node(4, Membership{{1, 2, 3}, {}});
  REQUIRE(c[1].propose_config_change({ConfigChange::Kind::add_learner, 4, "addr4"}).has_value());
  c.settle();
  c.tick_all(2);
  CHECK(c[1].membership().is_learner(4));
  CHECK(c[4].membership().is_learner(4));
  const LogIndex i = c.put(1, "x");
  c.tick_all();
  CHECK(c.applied_index(4) == i);
  // With two voters down, the learner does not make a quorum.
  c.isolate(2);
  c.isolate(3);
  c.heal();
  c.cut(1, 2);
  c.cut(1, 3);
  const LogIndex j = c.put(1, "y");
  CHECK(c[1].commit_index() < j);
}

TEST_CASE("membership: promote a learner, then it votes and counts") {
  auto c = led_by(1, {1, 2});
  c.tick_all();
  c.add_node(3, Membership{{1, 2}, {}});
  REQUIRE(c[1].propose_config_change({ConfigChange::Kind::add_learner, 3, ""}).has_value());
  c.tick_all(2);
  REQUIRE(c[1].propose_config_change({ConfigChange::Kind::add_voter, 3, ""}).has_value());
  c.tick_all(2);
  CHECK(c[1].membership().voters == std::vector<NodeId>{1, 2, 3});
  CHECK(c[3].membership().is_voter(3));
  c.isolate(2);
  const LogIndex j = c.put(1, "with-3");
  CHECK(c[1].commit_index() == j);  // 1 and 3 are a majority of three
}

TEST_CASE("membership: one change at a time") {
  auto c = led_by(1);
  c.tick_all();
  c.isolate(1);  // the first change cannot commit
  REQUIRE(c[1].propose_config_change({ConfigChange::Kind::add_learner, 4, ""}).has_value());
  auto second = c[1].propose_config_change({ConfigChange::Kind::add_learner, 5, ""});
  REQUIRE(second.has_error());
  CHECK(second.error() == errc::config_change_pending);
}

TEST_CASE("membership: a new leader must commit in its term before a change") {
  Cluster c({1, 2, 3});
  // Elected, but its appends are lost: its no-op is not committed.
  c.drop_if([](const Message& m) { return m.type == MessageType::append; });
  c.elect(1);
  REQUIRE(c[1].role() == Role::leader);
  REQUIRE(c[1].commit_index() < c[1].last_index());
  auto r = c[1].propose_config_change({ConfigChange::Kind::add_learner, 4, ""});
  REQUIRE(r.has_error());
  CHECK(r.error() == errc::config_change_pending);
  // Once the no-op commits, the same change is accepted.
  c.drop_if({});
  c.tick_all(2);
  REQUIRE(c[1].commit_index() == c[1].last_index());
  CHECK(c[1].propose_config_change({ConfigChange::Kind::add_learner, 4, ""}).has_value());
}

TEST_CASE("membership: invalid changes are refused with a reason") {
  auto c = led_by(1);
  c.tick_all();
  CHECK(c[1].propose_config_change({ConfigChange::Kind::add_voter, 2, ""}).error() ==
        errc::invalid_argument);
  CHECK(c[1].propose_config_change({ConfigChange::Kind::remove, 9, ""}).error() == errc::not_found);
  CHECK(c[1].propose_config_change({ConfigChange::Kind::add_voter, 0, ""}).error() ==
        errc::invalid_argument);
}

TEST_CASE("membership: remove a follower; the rest keep committing") {
  auto c = led_by(1);
  c.tick_all();
  REQUIRE(c[1].propose_config_change({ConfigChange::Kind::remove, 3, ""}).has_value());
  c.tick_all(2);
  CHECK(c[1].membership().voters == std::vector<NodeId>{1, 2});
  c.isolate(3);
  const LogIndex i = c.put(1, "x");
  CHECK(c[1].commit_index() == i);
  CHECK(c[1].progress(3) == nullptr);
}

TEST_CASE("membership: a removed member stays the transport's peer until the removal commits") {
  auto c = led_by(1);
  c.tick_all();
  c.isolate(2);
  c.isolate(3);
  const auto before = c[1].transport_membership_key();
  REQUIRE(c[1].propose_config_change({ConfigChange::Kind::remove, 3, ""}).has_value());
  c.settle();
  // In effect for Raft (appended), not yet for the transport: 3 may still be needed to commit.
  CHECK(c[1].membership().all() == std::vector<NodeId>{1, 2});
  CHECK(c[1].transport_membership().all() == std::vector<NodeId>{1, 2, 3});
  const auto appended = c[1].transport_membership_key();
  CHECK(appended != before);
  c.heal();
  c.tick_all(3);
  REQUIRE(c[1].commit_index() == c[1].last_index());
  CHECK(c[1].transport_membership().all() == std::vector<NodeId>{1, 2});
  CHECK(c[1].transport_membership_key() != appended);  // the runtime hands it on again
  CHECK(c[2].transport_membership().all() == std::vector<NodeId>{1, 2});
}

TEST_CASE("membership: a removed leader leads until the change commits, then steps down") {
  auto c = led_by(1);
  c.tick_all();
  REQUIRE(c[1].propose_config_change({ConfigChange::Kind::remove, 1, ""}).has_value());
  c.settle();
  CHECK(c[1].role() == Role::follower);
  CHECK(c[2].membership().voters == std::vector<NodeId>{2, 3});
  // The others elect a new leader; node 1 never campaigns again.
  c.tick_all(40);
  const NodeId l = c.leader();
  CHECK((l == 2 || l == 3));
  CHECK(c[1].role() == Role::follower);
}

TEST_CASE("membership: a truncated config entry reverts the configuration") {
  auto c = led_by(1);
  c.tick_all();
  c.isolate(1);
  REQUIRE(c[1].propose_config_change({ConfigChange::Kind::add_learner, 4, ""}).has_value());
  c.settle();
  CHECK(c[1].membership().is_learner(4));  // effective when appended
  c.forget_leader({2, 3});
  c.elect(2);
  c.put(2, "overwrites");
  c.heal();
  c.tick_all(3);
  CHECK_FALSE(c[1].membership().contains(4));  // the entry was replaced, so was its effect
  CHECK(c[1].membership() == c[2].membership());
}

TEST_CASE("membership: config change encoding round-trips; malformed input is an error") {
  ConfigChange ch{ConfigChange::Kind::add_voter, 42, "10.0.0.1:7000", "why"};
  auto back = decode_config_change(encode_config_change(ch));
  REQUIRE(back.has_value());
  CHECK(back.value() == ch);
  CHECK(decode_config_change("x").error() == errc::invalid_argument);
  std::string bad = encode_config_change(ch);
  bad[1] = 9;
  CHECK(decode_config_change(bad).error() == errc::invalid_argument);
  std::string long_address = encode_config_change(ch);
  long_address[10] = '\x7f';  // the address length's low byte: past the end
  CHECK(decode_config_change(long_address).error() == errc::invalid_argument);
  std::string future = encode_config_change(ch);
  future[0] = 3;
  CHECK(decode_config_change(future).error() == errc::incompatible_version);
}

TEST_CASE("membership: a config change in format 1 (before addresses) still decodes") {
  // [1][kind][node u64 LE][context]: what logs written before member addresses hold.
  const std::string v1 = std::string("\x01\x01", 2) + std::string("\x2a\0\0\0\0\0\0\0", 8) + "ctx";
  auto back = decode_config_change(v1);
  REQUIRE(back.has_value());
  CHECK(back.value() == ConfigChange{ConfigChange::Kind::add_voter, 42, "", "ctx"});
}

TEST_CASE("membership: a change records, keeps and drops member addresses") {
  using K = ConfigChange::Kind;
  Membership m{{1}, {}, {{1, "127.0.0.1:1"}}};
  auto added = apply_config_change(m, {K::add_learner, 2, "127.0.0.1:2"});
  REQUIRE(added.has_value());
  CHECK(added.value().address_of(2) == "127.0.0.1:2");
  // Promoting without an address keeps the one the learner was added with.
  auto promoted = apply_config_change(added.value(), {K::add_voter, 2, ""});
  REQUIRE(promoted.has_value());
  CHECK(promoted.value().address_of(2) == "127.0.0.1:2");
  CHECK(promoted.value().address_of(1) == "127.0.0.1:1");
  // Two members never share an address.
  auto clash = apply_config_change(promoted.value(), {K::add_learner, 3, "127.0.0.1:1"});
  REQUIRE_FALSE(clash.has_value());
  CHECK(clash.error() == errc::invalid_argument);
  CHECK(clash.error().message().find("already member 1") != std::string::npos);
  CHECK_FALSE(apply_config_change(m, {K::add_learner, 3, std::string(2000, 'a')}).has_value());
  // Removal drops the address with the member.
  auto removed = apply_config_change(promoted.value(), {K::remove, 2, ""});
  REQUIRE(removed.has_value());
  CHECK(removed.value().address_of(2).empty());
  CHECK(removed.value().addresses.size() == 1);
}

TEST_CASE("membership: a new member's address reaches every node through the log") {
  auto c = led_by(1);
  c.tick_all();
  c.add_node(4, Membership{{1, 2, 3}, {}});
  REQUIRE(c[1].propose_config_change({ConfigChange::Kind::add_learner, 4, "127.0.0.1:4"}));
  c.tick_all(4);
  for (NodeId id : {1, 2, 3, 4}) CHECK(c[id].membership().address_of(4) == "127.0.0.1:4");
}

}  // namespace dengine::raft::testing
