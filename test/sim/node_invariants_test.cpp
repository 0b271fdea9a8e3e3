// The shipping node — node::Node over sim::Deterministic, so the Driver, LogWriter and Applier
// production runs — under the protocol invariants of test/sim/checks, read through
// Node::core() after every event: message loss, duplication and delay, partitions, process
// crashes and power losses (memory::Engine::crash drops what was not synced).

#include <doctest/doctest.h>

#include <array>
#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "dengine/backends/memory/engine.hpp"
#include "dengine/node/node.hpp"
#include "dengine/sim/deterministic.hpp"
#include "dengine/sim/random.hpp"
#include "dengine/sim/transport.hpp"
#include "invariants.hpp"
#include "kv_machine.hpp"
#include "net_faults.hpp"

namespace {

using namespace dengine;
using namespace dengine::sim;

using RegisterNode = node::Node<memory::Engine, KvMachine, SimTransport, Deterministic>;

struct Member {
  NodeId id = no_node;
  memory::Engine disk;
  node::MemorySnapshotStore snapshots;
  std::unique_ptr<KvMachine> sm;  // volatile: a restart gets a new one
  std::unique_ptr<RegisterNode> node;
};

/// One seeded run of three real nodes; returns the first violation, if any.
class Run {
 public:
  explicit Run(std::uint64_t seed)
      : net_(executor_, seed, NetworkFaults{0.1, 0.05, sim_us(100), sim_ms(15), 0.0, 0, 0.01}),
        rng_(mix_seed(seed, 0x6e6f6465)) {
    for (NodeId id = 1; id <= 3; ++id) members_[id - 1].id = id;
    NetworkTap tap;
    tap.codec_failure = [this](const std::string& what) {
      if (!violation_) violation_ = Violation{"wire codec", what};
    };
    net_.set_tap(std::move(tap));
  }

  std::optional<Violation> go() {
    for (Member& m : members_) open(m);
    executor_.after_each([this] { check(); });
    executor_.post_after(std::chrono::milliseconds(5), [this] { propose(); });
    executor_.post_after(std::chrono::milliseconds(150), [this] { fault(); });
    executor_.run_until(sim_s(6));
    // Heal and settle: everything up, the network whole and lossless.
    faults_on_ = false;
    net_.net().heal();
    net_.net().set_faults(NetworkFaults{});
    for (Member& m : members_)
      if (!m.node) open(m);
    executor_.run_until(sim_s(9));
    for (Member& m : members_)
      if (!violation_ && m.node) violation_ = invariants_.check_all(m.node->core());
    executor_.after_each({});
    return violation_;
  }

  [[nodiscard]] LogIndex committed() const { return invariants_.max_committed(); }
  [[nodiscard]] int crashes() const { return crashes_; }
  [[nodiscard]] std::uint64_t frames_refused() const { return net_.stats().refused; }

 private:
  static node::NodeConfig config_for(NodeId id) {
    node::NodeConfig c;
    c.raft.id = id;
    c.raft.election_ticks = 10;
    c.raft.heartbeat_ticks = 2;
    c.initial_members = {1, 2, 3};
    c.tick_period = std::chrono::milliseconds(10);
    c.request_timeout = std::chrono::seconds(2);
    c.snapshot_threshold_bytes = 4096;  // so that restarts and laggards install snapshots
    return c;
  }

  void open(Member& m) {
    m.sm = std::make_unique<KvMachine>();
    auto opened = RegisterNode::open(config_for(m.id), m.disk, *m.sm, m.snapshots,
                                     SimTransport(net_, m.id), SimClock{&executor_});
    REQUIRE_MESSAGE(opened, "node " << m.id << ": " << opened.error().message());
    m.node = std::move(opened).value();
    invariants_.on_restart(m.id, m.disk.hard_state());
  }

  void check() {
    for (Member& m : members_) {
      if (violation_ || !m.node) continue;
      violation_ = invariants_.check_step(m.node->core());
      // The entries the last event may have changed: the tail of the log.
      const LogIndex last = m.node->core().last_index();
      if (!violation_)
        violation_ = invariants_.check_log_matching(m.node->core(), last > 8 ? last - 8 : 1, last);
    }
  }

  void propose() {
    std::vector<Member*> up;
    for (Member& m : members_)
      if (m.node) up.push_back(&m);
    if (!up.empty()) {
      Member& m = *up[rng_.below(up.size())];
      Command c;
      c.op_id = ++ops_;
      c.key = "k" + std::to_string(rng_.below(3));
      c.value = std::to_string(ops_);
      m.node->propose(encode(c), [](const result<ApplyResult>&) {});
    }
    executor_.post_after(std::chrono::milliseconds(rng_.between(1, 15)), [this] { propose(); });
  }

  void fault() {
    if (!faults_on_) return;
    Member* down = nullptr;
    for (Member& m : members_)
      if (!m.node) down = &m;
    const auto roll = rng_.below(4);
    if (roll == 0) {
      net_.net().heal();
    } else if (roll == 1) {
      (void)split_network(rng_, net_.net(), {1, 2, 3}, true);
    } else if (down == nullptr) {
      // One node at a time goes down: a process crash, or a power loss (unsynced data lost).
      Member& m = members_[rng_.below(members_.size())];
      REQUIRE(m.node->halt());
      m.node.reset();
      if (rng_.chance(0.5)) m.disk.crash();
      ++crashes_;
      executor_.post_after(std::chrono::milliseconds(rng_.between(20, 400)), [this, &m] {
        if (!m.node) open(m);
      });
    }
    executor_.post_after(std::chrono::milliseconds(rng_.between(50, 300)), [this] { fault(); });
  }

  SimExecutor executor_;  // declared first: outlives the network and the nodes
  SimNetwork net_;
  Rng rng_;
  InvariantChecker invariants_;
  std::array<Member, 3> members_;  // declared after the network: nodes stop before it goes
  std::optional<Violation> violation_;
  std::uint64_t ops_ = 0;
  int crashes_ = 0;
  bool faults_on_ = true;
};

}  // namespace

TEST_CASE("the shipping node keeps the protocol invariants under faults, crashes, power loss") {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    CAPTURE(seed);
    Run run(seed);
    const std::optional<Violation> v = run.go();
    CHECK_MESSAGE(!v, (v ? v->invariant + ": " + v->detail : std::string()));
    CHECK(run.committed() > 100);  // it made progress, so the checks saw something
    CHECK(run.crashes() > 0);
    CHECK(run.frames_refused() > 0);  // 1% of the frames were damaged, and refused
  }
}
