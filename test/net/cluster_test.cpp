// End to end: a 3-node cluster of real Nodes (memory storage, the counter machine) over
// AsioTransport on 127.0.0.1 elects a leader and commits; when the leader's node and transport
// stop, the other two elect a new leader and commit. And a cluster whose transports know no
// peer but from the configuration: a 4th member added with its address catches up and leads,
// and a follower that was partitioned meanwhile — its configuration does not know member 4 —
// answers it and catches up (docs/network.md, Following the configuration); then its writes are
// forwarded to the leader over TCP, and what only the leader serves is refused with the leader's
// address.

#include <doctest/doctest.h>

#include <boost/asio/use_future.hpp>

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "counter_machine.hpp"
#include "dengine/backends/memory/engine.hpp"
#include "dengine/node/node.hpp"
#include "net_harness.hpp"

namespace dengine::net {
namespace {

using namespace testing;
using test::CounterMachine;
using NetNode = node::Node<memory::Engine, CounterMachine, AsioTransport>;

template <class N>
struct MemberOf {
  memory::Engine engine;
  node::MemorySnapshotStore snapshots;
  CounterMachine sm;
  LogSink log;
  std::shared_ptr<const TransportMetrics> metrics;
  std::unique_ptr<N> node;
};
using Member = MemberOf<NetNode>;

TEST_CASE("net: a 3-node cluster over TCP elects, commits, and fails over") {
  std::array<Member, 3> members;
  std::vector<AsioTransport> transports;
  for (NodeId id = 1; id <= 3; ++id)
    transports.push_back(open_transport(config_for(id, members[id - 1].log)));
  for (NodeId id = 1; id <= 3; ++id) {
    PeerAddresses peers;
    for (NodeId other = 1; other <= 3; ++other)
      if (other != id) peers.set(other, loopback(transports[other - 1].port()));
    REQUIRE(transports[id - 1].set_peers(peers));
  }
  for (NodeId id = 1; id <= 3; ++id) {
    Member& m = members[id - 1];
    node::NodeConfig cfg;
    cfg.raft.id = id;
    cfg.raft.election_ticks = 20;  // 200 ms: generous on a busy machine
    cfg.raft.heartbeat_ticks = 3;
    cfg.initial_members = {1, 2, 3};
    cfg.tick_period = std::chrono::milliseconds(10);
    cfg.request_timeout = std::chrono::seconds(5);
    m.metrics = transports[id - 1].metrics();
    auto opened = NetNode::open(cfg, m.engine, m.sm, m.snapshots, std::move(transports[id - 1]));
    REQUIRE_MESSAGE(opened, (opened ? "" : opened.error().message()));
    m.node = std::move(opened).value();
  }

  // The leader: a running node that leads and commits a proposal.
  auto leader = [&] {
    NodeId found = no_node;
    REQUIRE(eventually([&] {
      for (auto& m : members) {
        if (!m.node || !m.node->is_leader()) continue;
        if (m.node->propose_wait(test::add_cmd("probe", 1))) {
          found = m.node->id();
          return true;
        }
      }
      return false;
    }));
    return found;
  };
  const NodeId first = leader();
  for (int k = 0; k < 20; ++k)
    REQUIRE(members[first - 1].node->propose_wait(test::add_cmd("x", 1)));
  auto values_of = [&](Member& m) {
    auto v = m.node->read_wait(node::ReadConsistency::serializable,
                               [](const CounterMachine& sm) { return sm.values(); });
    return v ? v.value() : std::map<std::string, std::int64_t>{};
  };
  for (auto& m : members)
    CHECK(eventually([&] { return values_of(m).count("x") == 1 && values_of(m).at("x") == 20; }));
  CHECK(members[first - 1].metrics->read().sent > 0);

  // Stop the leader (its node stops its transport): the other two elect a new one.
  REQUIRE(members[first - 1].node->stop());
  members[first - 1].node.reset();
  const NodeId second = leader();
  CHECK(second != first);
  for (int k = 0; k < 20; ++k)
    REQUIRE(members[second - 1].node->propose_wait(test::add_cmd("x", 1)));
  for (auto& m : members) {
    if (!m.node) continue;
    CHECK(eventually([&] { return values_of(m).count("x") == 1 && values_of(m).at("x") == 40; }));
  }
  for (auto& m : members)
    if (m.node) CHECK(m.node->stop());
}

/// Which member is cut off from the others (no_node: none), shared by a cluster's transports.
using Partition = std::shared_ptr<std::atomic<NodeId>>;

/// An AsioTransport that drops what the partition cuts, both ways, before it is queued or
/// delivered — so when the partition heals no message from before lingers in a queue. It
/// follows the configuration as the transport it wraps does.
class CuttableTransport {
 public:
  CuttableTransport(AsioTransport t, Partition cut) : t_(std::move(t)), cut_(std::move(cut)) {}

  result<void> start(node::InboundHandler inbound) {
    return t_.start([cut = cut_, inbound = std::move(inbound)](raft::Message m) {
      if (!cuts(*cut, m)) inbound(std::move(m));
    });
  }
  void send(raft::Message m) {
    if (!cuts(*cut_, m)) t_.send(std::move(m));
  }
  void stop() { t_.stop(); }
  void on_membership(const Membership& m) { t_.on_membership(m); }

 private:
  static bool cuts(const std::atomic<NodeId>& cut, const raft::Message& m) {
    const NodeId off = cut.load();
    return off != no_node && (m.from == off || m.to == off);
  }

  AsioTransport t_;
  Partition cut_;
};
static_assert(node::MembershipAwareTransport<CuttableTransport>);

using CutNode = node::Node<memory::Engine, CounterMachine, CuttableTransport>;
using CutMember = MemberOf<CutNode>;

/// 127.0.0.1:port, as a configuration records it.
std::string at(std::uint16_t port) { return loopback(port).to_string(); }

/// Starts member `id` over `t`: a node of the founders {1, 2, 3} at `founders` (when `id` is
/// not among them it starts as a non-member and waits to be added, as a joining node does).
void start_node(CutMember& m, NodeId id, AsioTransport t, const Partition& cut,
                const std::map<NodeId, std::string>& founders) {
  node::NodeConfig cfg;
  cfg.raft.id = id;
  cfg.raft.election_ticks = 20;  // 200 ms: generous on a busy machine
  cfg.raft.heartbeat_ticks = 3;
  cfg.initial_members = {1, 2, 3};
  cfg.initial_addresses = founders;
  cfg.tick_period = std::chrono::milliseconds(10);
  cfg.request_timeout = std::chrono::seconds(5);
  m.metrics = t.metrics();
  auto opened =
      CutNode::open(cfg, m.engine, m.sm, m.snapshots, CuttableTransport(std::move(t), cut));
  REQUIRE_MESSAGE(opened, (opened ? "" : opened.error().message()));
  m.node = std::move(opened).value();
}

/// The value of counter "x" that `m` applied (serializable: its own state), -1 without one.
std::int64_t x_of(CutMember& m) {
  auto v = m.node->read_wait(node::ReadConsistency::serializable, [](const CounterMachine& sm) {
    auto it = sm.values().find("x");
    return it == sm.values().end() ? std::int64_t{-1} : it->second;
  });
  return v ? v.value() : -1;
}

TEST_CASE("net: a member added with its address catches up; a follower that missed it too") {
  std::array<CutMember, 4> members;
  auto member = [&](NodeId id) -> CutMember& { return members.at(id - 1); };
  auto cut = std::make_shared<std::atomic<NodeId>>(no_node);
  // The transports are told no peer: each node's configuration says where the others are.
  std::vector<AsioTransport> transports;
  for (NodeId id = 1; id <= 4; ++id)
    transports.push_back(open_transport(config_for(id, member(id).log)));
  std::map<NodeId, std::string> founders;
  for (NodeId id = 1; id <= 3; ++id) founders[id] = at(transports[id - 1].port());
  const std::string address4 = at(transports[3].port());
  for (NodeId id = 1; id <= 3; ++id)
    start_node(member(id), id, std::move(transports[id - 1]), cut, founders);

  auto propose = [&](NodeId on, int times) {
    for (int k = 0; k < times; ++k) REQUIRE(member(on).node->propose_wait(test::add_cmd("x", 1)));
  };
  NodeId first = no_node;
  REQUIRE(eventually([&] {
    for (NodeId id = 1; id <= 3; ++id) {
      if (!member(id).node->is_leader()) continue;
      if (member(id).node->propose_wait(test::add_cmd("x", 1))) {
        first = id;
        return true;
      }
    }
    return false;
  }));
  propose(first, 9);
  // A follower is cut off; member 4 is added while it is away.
  const NodeId lagging = first == 3 ? 2 : 3;
  REQUIRE(eventually([&] { return x_of(member(lagging)) == 10; }));
  cut->store(lagging);

  start_node(member(4), 4, std::move(transports[3]), cut, founders);  // a non-member: it waits
  auto learner = member(first).node->change_membership_wait(
      {raft::ConfigChange::Kind::add_learner, 4, address4});
  REQUIRE_MESSAGE(learner, (learner ? "" : learner.error().message()));
  CHECK(learner.value().address_of(4) == address4);
  CHECK(eventually([&] { return x_of(member(4)) == 10; }));  // caught up over TCP
  auto voter =
      member(first).node->change_membership_wait({raft::ConfigChange::Kind::add_voter, 4, ""});
  REQUIRE_MESSAGE(voter, (voter ? "" : voter.error().message()));

  // 4 leads (voters 1, 2 and 4 of the four are reachable) and commits.
  REQUIRE(eventually([&] {
    for (auto& m : members)
      if (m.node && m.node->is_leader() && m.node->id() != 4)
        (void)m.node->transfer_leadership(4, boost::asio::use_future).get();
    return eventually([&] { return member(4).node->is_leader(); }, std::chrono::seconds(1));
  }));
  propose(4, 10);

  // The partition heals. The follower's configuration is the old one: it does not know member
  // 4, and has no address for it. 4's hello gives its address, so the follower answers the
  // leader there and catches up.
  CHECK_FALSE(member(lagging).node->membership().contains(4));
  cut->store(no_node);
  CHECK(eventually([&] { return x_of(member(lagging)) == 20; }));
  CHECK(eventually([&] { return member(lagging).node->membership().is_voter(4); }));
  CHECK_MESSAGE(member(lagging).log.contains("peers: member 4 is not in the configuration as "
                                             "this node knows it; it is answered at " +
                                             address4),
                member(lagging).log.all());

  // On that follower a write is forwarded to the leader over TCP (applied once, answered
  // here); a lease read, the leader's alone, is refused naming the leader's id and address.
  const auto forwarded = [&] {
    return member(lagging).node->node_metrics().proposals_forwarded.value();
  };
  const std::uint64_t forwarded_before = forwarded();
  propose(lagging, 1);
  CHECK(forwarded() > forwarded_before);
  CHECK(x_of(member(lagging)) == 21);
  CHECK(eventually([&] { return x_of(member(4)) == 21; }));
  auto lease = member(lagging).node->read_wait(
      node::ReadConsistency::lease, [](const CounterMachine& sm) { return sm.values().size(); });
  REQUIRE_FALSE(lease);
  CHECK(lease.error() == errc::not_leader);
  CHECK(lease.error().leader_hint == 4);
  CHECK(lease.error().leader_address == address4);
  for (auto& m : members)
    if (m.node) CHECK(m.node->stop());
}

}  // namespace
}  // namespace dengine::net
