// End to end: a 3-node cluster of real Nodes (memory storage, the counter machine) over
// AsioTransport on 127.0.0.1 elects a leader and commits; when the leader's node and transport
// stop, the other two elect a new leader and commit.

#include <doctest/doctest.h>

#include <array>
#include <map>
#include <memory>

#include "counter_machine.hpp"
#include "dengine/backends/memory/engine.hpp"
#include "dengine/node/node.hpp"
#include "net_harness.hpp"

namespace dengine::net {
namespace {

using namespace testing;
using test::CounterMachine;
using NetNode = node::Node<memory::Engine, CounterMachine, AsioTransport>;

struct Member {
  memory::Engine engine;
  node::MemorySnapshotStore snapshots;
  CounterMachine sm;
  LogSink log;
  std::shared_ptr<const TransportMetrics> metrics;
  std::unique_ptr<NetNode> node;
};

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

}  // namespace
}  // namespace dengine::net
