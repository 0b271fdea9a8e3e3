// What a user's translation unit with their own storage engine and state machine under
// node::Node costs to compile (bench/compile-cost/run): examples/custom-storage's FileLog and
// Counter, opened, one proposal, one read, stop.
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "../../examples/custom-storage/counter.hpp"
#include "../../examples/custom-storage/file_log.hpp"
#include "dengine/node/node.hpp"

using CounterNode =
    dengine::node::Node<example::FileLog, example::Counter, dengine::node::LocalTransport>;

int main() {
  const std::filesystem::path dir = "/tmp/dengine-compile-cost-node";
  auto log = example::FileLog::open(dir / "raft");
  auto snapshots = dengine::node::FileSnapshotStore::open(dir / "snapshots");
  if (!log || !snapshots) return 1;
  example::Counter counter;
  dengine::node::LocalHub hub;
  dengine::node::NodeConfig config;
  config.raft.id = 1;
  config.initial_members = {1};
  auto node = CounterNode::open(config, log.value(), counter, snapshots.value(),
                                dengine::node::LocalTransport(hub, 1));
  if (!node || !node.value()->wait_ready(std::chrono::seconds(5))) return 1;
  auto r = node.value()->propose_wait(example::add_command(1));
  std::printf("%d\n", r ? 1 : 0);
  return node.value()->stop() ? 0 : 1;
}
