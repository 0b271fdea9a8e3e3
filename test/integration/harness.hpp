#pragma once
/// Helpers shared by the integration tests: node types over memory::Engine and CounterMachine,
/// a "disk" that outlives node incarnations, configs with short ticks, and waiting helpers.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "counter_machine.hpp"
#include "dengine/backends/memory/engine.hpp"
#include "dengine/node/node.hpp"
#include "dengine/sim/deterministic.hpp"
#include "dengine/sim/transport.hpp"

namespace dengine::test {

/// A node in the threaded arrangement over the in-process hub.
using ThreadedNode = node::Node<memory::Engine, CounterMachine, node::LocalTransport>;
/// A node in the deterministic arrangement over the simulated network.
using SimNode = node::Node<memory::Engine, CounterMachine, sim::SimTransport, sim::Deterministic>;

/// What survives a node's restart: its log, hard state and snapshot image. (The CounterMachine
/// is volatile, like any in-memory state machine: a restarted node gets a fresh one.)
struct Disk {
  memory::Engine engine;
  node::MemorySnapshotStore snapshots;
};

/// Holds a thread (the applier, through CounterMachine::before_apply) until opened.
class Gate {
 public:
  void wait() {
    std::unique_lock lock(mutex_);
    ++waiting_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
  }
  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    cv_.notify_all();
  }
  /// True once some thread has waited at the gate.
  [[nodiscard]] bool reached() {
    std::lock_guard lock(mutex_);
    return waiting_ > 0;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = false;
  int waiting_ = 0;
};

/// A StorageEngine that hands every call to a memory::Engine: a test's faulty engine derives from
/// it and hides the calls it breaks (the concept sees the derived class's members).
struct ForwardingEngine {
  result<void> append(std::span<const Entry> batch) { return inner.append(batch); }
  result<void> sync() { return inner.sync(); }
  [[nodiscard]] result<std::vector<Entry>> entries(LogIndex lo, LogIndex hi,
                                                   std::size_t max_bytes) const {
    return inner.entries(lo, hi, max_bytes);
  }
  [[nodiscard]] result<Term> term(LogIndex i) const { return inner.term(i); }
  [[nodiscard]] LogIndex first_index() const { return inner.first_index(); }
  [[nodiscard]] LogIndex last_index() const { return inner.last_index(); }
  result<void> compact(const SnapshotMeta& meta) { return inner.compact(meta); }
  result<void> reset(const SnapshotMeta& meta) { return inner.reset(meta); }
  result<void> save_hard_state(const HardState& hs) { return inner.save_hard_state(hs); }
  result<RecoveredState> load() { return inner.load(); }

  memory::Engine inner;
};
static_assert(StorageEngine<ForwardingEngine>);

/// A memory::Engine whose appends can be made to fail (a full disk), to test how a storage
/// failure stops a node.
struct FaultyEngine : ForwardingEngine {
  result<void> append(std::span<const Entry> batch) {
    if (fail_appends.load()) return error(errc::no_space, "faulty engine: disk full (injected)");
    return inner.append(batch);
  }

  std::atomic<bool> fail_appends{false};
};
static_assert(StorageEngine<FaultyEngine>);

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
