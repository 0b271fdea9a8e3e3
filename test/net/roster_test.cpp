// AsioTransport following the configuration (roster.hpp; docs/network.md, Following the
// configuration): on_membership() adds, moves and removes peers as set_peers() does; a member
// without an address keeps its configured one; a sender the configuration does not know yet
// is answered at the address its hello gives (the lagging follower's case); a removed member
// is refused even with an address, until it is a member again; and the hello gives the
// advertised address.

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "net_harness.hpp"

namespace dengine::net {
namespace {

using namespace testing;

std::string at(std::uint16_t port) { return loopback(port).to_string(); }

/// A configuration: `voters`, and the addresses given (member → address text).
Membership config(std::vector<NodeId> voters, std::map<NodeId, std::string> addresses) {
  Membership m{std::move(voters), {}, std::move(addresses)};
  m.normalize();
  return m;
}

TEST_CASE("net: on_membership adds, moves and removes peers as set_peers does") {
  Station a(1);
  Station b(2);
  Station b2(2);  // member 2 again, at another address
  Station c(3);
  for (Station* s : {&b, &b2, &c}) {
    REQUIRE(s->t.set_peers(list({{1, a.t.port()}})));
    s->start();
  }
  a.start();

  // Added: every member but this node, at its address (this node's own entry is ignored).
  a.t.on_membership(
      config({1, 2, 3}, {{1, at(a.t.port())}, {2, at(b.t.port())}, {3, at(c.t.port())}}));
  CHECK(a.log.contains("peers: member 2 added at " + at(b.t.port())));
  a.t.send(heartbeat(1, 2, 1));
  a.t.send(heartbeat(1, 3, 1));
  CHECK(eventually([&] { return b.got(1) && c.got(1); }));
  c.t.send(heartbeat(3, 1, 2));  // 3 is a member: A takes its connection
  REQUIRE(a.inbox.wait_for(1));

  // Moved: the next message goes to the new address.
  a.t.on_membership(config({1, 2, 3}, {{2, at(b2.t.port())}, {3, at(c.t.port())}}));
  CHECK(a.log.contains("peers: member 2 moved from " + at(b.t.port()) + " to " + at(b2.t.port())));
  a.t.send(heartbeat(1, 2, 3));
  CHECK(eventually([&] { return b2.got(3); }));
  CHECK_FALSE(b.got(3));

  // Removed: its connection to A closes, its hellos are refused though they give an address,
  // and what A sends it is dropped.
  a.t.on_membership(config({1, 2}, {{2, at(b2.t.port())}}));
  CHECK(a.log.contains("peers: member 3 removed"));
  CHECK(eventually([&] { return a.log.contains("member 3 was removed from the peers"); }));
  CHECK(eventually([&] {
    c.t.send(heartbeat(3, 1, 4));
    return a.counters().refused_hellos >= 1;
  }));
  CHECK_MESSAGE(a.log.contains("hello from member 3: removed from the configuration of cluster"),
                a.log.all());
  CHECK_FALSE(a.got(4));
  const auto unsendable = a.counters().dropped_unsendable;
  a.t.send(heartbeat(1, 3, 5));
  CHECK(a.counters().dropped_unsendable == unsendable + 1);
  CHECK(a.log.contains("no address for member 3"));

  // Back: a member again, no longer removed: its messages reach A, A's reach it.
  a.t.on_membership(config({1, 2, 3}, {{2, at(b2.t.port())}, {3, at(c.t.port())}}));
  CHECK(eventually([&] {
    c.t.send(heartbeat(3, 1, 6));
    return a.got(6);
  }));
  a.t.send(heartbeat(1, 3, 7));
  CHECK(eventually([&] { return c.got(7); }));

  // ... and no longer removed: a later change leaves its connection to A open. (The change's
  // closing runs on A's I/O thread before A reads what 3 sends after it.)
  const auto accepted = a.counters().accepted;
  const auto closed = a.log.count("member 3 was removed from the peers");
  a.t.on_membership(config({1, 2, 3}, {{2, at(b.t.port())}, {3, at(c.t.port())}}));
  c.t.send(heartbeat(3, 1, 8));
  CHECK(eventually([&] { return a.got(8); }));
  CHECK(a.log.count("member 3 was removed from the peers") == closed);
  CHECK(a.counters().accepted == accepted);
}

TEST_CASE("net: a member without an address in the configuration keeps its configured one") {
  Station b(2);
  Station b2(2);
  Station c(3);
  for (Station* s : {&b, &b2, &c}) {
    REQUIRE(s->t.set_peers(list({{1, 1}})));  // they only receive here
    s->start();
  }
  // A is opened knowing 2 at b (a data dir from before addresses were recorded).
  Station a([&](LogSink& log) {
    auto tc = config_for(1, log);
    tc.peers.set(2, loopback(b.t.port()));
    return tc;
  });
  a.start();

  // 2 has no address in the configuration: its configured one; 3 has one; 5's does not parse
  // (logged once per text, not dialled); 6 has neither (not listed).
  const auto with_bad = config({1, 2, 3, 5, 6}, {{3, at(c.t.port())}, {5, "nowhere"}});
  a.t.on_membership(with_bad);
  a.t.on_membership(with_bad);
  a.t.send(heartbeat(1, 2, 1));
  a.t.send(heartbeat(1, 3, 1));
  CHECK(eventually([&] { return b.got(1) && c.got(1); }));
  CHECK_MESSAGE(a.log.count("membership: member 5's address cannot be used (peer address "
                            "\"nowhere\"") == 1,
                a.log.all());
  for (NodeId unlisted : {5, 6}) {
    a.t.send(heartbeat(1, unlisted, 1));
    CHECK(a.log.contains("no address for member " + std::to_string(unlisted)));
  }
  CHECK(a.counters().dropped_unsendable == 2);

  // Later changes: 2 given an address moves there; 2 without one again falls back to b.
  a.t.on_membership(config({1, 2, 3}, {{2, at(b2.t.port())}, {3, at(c.t.port())}}));
  a.t.send(heartbeat(1, 2, 2));
  CHECK(eventually([&] { return b2.got(2); }));
  a.t.on_membership(config({1, 2, 3}, {{3, at(c.t.port())}}));
  CHECK(a.log.contains("peers: member 2 moved from " + at(b2.t.port()) + " to " + at(b.t.port())));
  a.t.send(heartbeat(1, 2, 3));
  CHECK(eventually([&] { return b.got(3); }));
  CHECK_FALSE(b2.got(3));
}

TEST_CASE("net: a sender the configuration lacks is answered at the address its hello gives") {
  // Member 3 was cut off while member 4 was added; 4 leads now. 3's configuration does not
  // know 4, and 3 has no address for it: 4's hello gives one.
  Station follower(3);
  Station leader(4);
  follower.start();
  follower.t.on_membership(config({1, 2, 3}, {{1, at(1)}, {2, at(2)}}));
  REQUIRE(leader.t.set_peers(list({{3, follower.t.port()}})));
  leader.start();

  leader.t.send(message(raft::MessageType::append, 4, 3, 9));
  REQUIRE(follower.inbox.wait_for(1));
  CHECK(follower.inbox.messages().front().from == 4);
  CHECK(follower.counters().refused_hellos == 0);
  CHECK_MESSAGE(follower.log.contains("peers: member 4 is not in the configuration as this node "
                                      "knows it; it is answered at " +
                                      at(leader.t.port())),
                follower.log.all());

  // The reply reaches 4, on lanes to the learned address.
  follower.t.send(message(raft::MessageType::append_response, 3, 4, 9));
  REQUIRE(leader.inbox.wait_for(1));
  CHECK(leader.inbox.messages().front().type == raft::MessageType::append_response);
  CHECK(follower.counters().dropped_unsendable == 0);

  // Once the configuration lists 4 at that address, the lanes stay: no reconnect.
  follower.t.on_membership(
      config({1, 2, 3, 4}, {{1, at(1)}, {2, at(2)}, {4, at(leader.t.port())}}));
  follower.t.send(message(raft::MessageType::append_response, 3, 4, 10));
  REQUIRE(leader.inbox.wait_for(2));
  CHECK(leader.counters().accepted == 1);
  CHECK(follower.counters().reconnects == 0);

  // Removed: refused from now on, though its hello gives an address; not learned again.
  follower.t.on_membership(config({1, 2, 3}, {{1, at(1)}, {2, at(2)}}));
  CHECK(eventually([&] {
    leader.t.send(message(raft::MessageType::heartbeat, 4, 3, 11));
    return follower.counters().refused_hellos >= 1;
  }));
  CHECK_MESSAGE(follower.log.contains("hello from member 4: removed from the configuration"),
                follower.log.all());
  CHECK_FALSE(follower.got(11));
  const auto unsendable = follower.counters().dropped_unsendable;
  follower.t.send(message(raft::MessageType::heartbeat_response, 3, 4, 11));
  CHECK(follower.counters().dropped_unsendable == unsendable + 1);
}

TEST_CASE("net: the hello gives the advertised address; a wildcard listen gives none") {
  Station receiver(3);  // lists nobody: it answers strangers where their hellos say
  receiver.start();
  Station elsewhere(1);  // where member 1 says it is reached
  elsewhere.start();

  Station sender([&](LogSink& log) {
    auto tc = config_for(1, log);
    tc.advertise = at(elsewhere.t.port());
    tc.peers.set(3, loopback(receiver.t.port()));
    return tc;
  });
  sender.start();
  sender.t.send(heartbeat(1, 3, 1));
  REQUIRE(receiver.inbox.wait_for(1));
  receiver.t.send(heartbeat(3, 1, 2));  // answered at the advertised address
  CHECK(eventually([&] { return elsewhere.got(2); }));
  CHECK_FALSE(sender.got(2));

  // Listening on 0.0.0.0 with no advertise: no address peers could dial, so none is given,
  // and a receiver that does not list the sender refuses it.
  Station wildcard([&](LogSink& log) {
    auto tc = config_for(5, log);
    tc.listen = "0.0.0.0:0";
    tc.peers.set(3, loopback(receiver.t.port()));
    return tc;
  });
  wildcard.start();
  CHECK(eventually([&] {
    wildcard.t.send(heartbeat(5, 3, 3));
    return receiver.counters().refused_hellos >= 1;
  }));
  CHECK_MESSAGE(receiver.log.contains("hello from member 5: not a member of cluster"),
                receiver.log.all());
  CHECK(receiver.log.contains("gives no address to answer it at"));

  // A bad advertise is refused at open(), naming the field.
  LogSink log;
  auto tc = config_for(1, log);
  tc.advertise = "127.0.0.1:0";
  auto bad = AsioTransport::open(tc);
  REQUIRE_FALSE(bad);
  CHECK(bad.error() == errc::invalid_argument);
  CHECK(bad.error().detail.find("transport: advertise: peer address \"127.0.0.1:0\"") !=
        std::string::npos);
}

}  // namespace
}  // namespace dengine::net
