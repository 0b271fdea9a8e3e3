#pragma once
/// Helpers shared by the integration tests: node types over memory::Engine and CounterMachine,
/// a "disk" that outlives node incarnations, configs with short ticks, and waiting helpers.

#include <chrono>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "counter_machine.hpp"
#include "dengine/backends/memory/engine.hpp"
#include "dengine/node/node.hpp"
#include "dengine/node/sim_transport.hpp"

namespace dengine::test {

/// A node in the threaded arrangement over the in-process hub.
using ThreadedNode = node::Node<memory::Engine, CounterMachine, node::LocalTransport>;
/// A node in the deterministic arrangement over the simulated network.
using SimNode = node::Node<memory::Engine, CounterMachine, node::SimTransport, node::SimClock>;

/// What survives a node's restart: its log, hard state and snapshot image. (The CounterMachine
/// is volatile, like any in-memory state machine: a restarted node gets a fresh one.)
struct Disk {
  memory::Engine engine;
  node::MemorySnapshotStore snapshots;
};

/// A config for node `id` of a cluster of `members`, with short ticks so tests run fast.
inline node::NodeConfig test_config(NodeId id, std::vector<NodeId> members) {
  node::NodeConfig c;
  c.raft.id = id;
  c.raft.election_ticks = 10;
  c.raft.heartbeat_ticks = 2;
  c.initial_members = std::move(members);
  c.tick_period = std::chrono::milliseconds(5);
  c.request_timeout = std::chrono::seconds(5);
  return c;
}

/// Polls `cond` every millisecond for up to `limit` (a generous bound that only stops a hung
/// test; no test asserts how long anything takes). Returns cond().
inline bool eventually(const std::function<bool()>& cond,
                       std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return cond();
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

}  // namespace dengine::test
