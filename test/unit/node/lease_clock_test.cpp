// The leader lease on the clock: node::LeaseClock on its own, and node::Driver serving lease
// reads across a stalled event loop (a tick that comes late must not stretch the lease).
#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "../../integration/counter_machine.hpp"
#include "dengine/node/driver.hpp"
#include "dengine/node/lease_clock.hpp"

namespace dengine::test {
namespace {

using namespace std::chrono_literals;

/// A clock the test moves by hand.
struct ManualClock {
  using time_point = std::chrono::steady_clock::time_point;
  using duration = std::chrono::steady_clock::duration;
  std::shared_ptr<time_point> t = std::make_shared<time_point>(time_point{} + 1h);
  [[nodiscard]] time_point now() const noexcept { return *t; }
  void advance(duration d) const { *t += d; }
};

TEST_CASE("lease clock: a deadline runs from when the anchor tick began") {
  using tp = std::chrono::steady_clock::time_point;
  const tp start{};
  node::LeaseClock<tp, std::chrono::microseconds> lc(10ms, 8, start);
  CHECK(lc.deadline(0) == start + 80ms);
  lc.on_tick(1, start + 10ms);
  lc.on_tick(2, start + 5s);  // a late tick: its lease runs from when it actually began
  CHECK(lc.deadline(1) == start + 90ms);
  CHECK(lc.deadline(2) == start + 5s + 80ms);
  for (std::uint64_t t = 3; t <= 20; ++t) lc.on_tick(t, start + 5s + 10ms * (t - 2));
  // Ticks older than the lease are forgotten: a lease anchored there ended by the tick count.
  CHECK_FALSE(lc.deadline(2).has_value());
  CHECK(lc.deadline(20).has_value());
  CHECK(lc.deadline(12).has_value());
  CHECK_FALSE(lc.deadline(11).has_value());
}

/// A Driver for node 1 of {1, 2, 3} whose outboxes the test plays by hand: the log writer is
/// instantaneous and nodes 2 and 3 answer what the test tells them to.
class DriverRig {
 public:
  DriverRig()
      : config_(make_config()),
        registry_(),
        metrics_(registry_),
        driver_(make_core(config_), HardState{}, config_, clock_, metrics_, callbacks_, status_) {}

  node::Driver<CounterMachine, ManualClock>& driver() { return driver_; }
  const node::StatusBoard& status() const { return status_; }
  const ManualClock& clock() const { return clock_; }
  const node::NodeConfig& config() const { return config_; }

  /// Handles what the driver produced: persists everything at once; returns the messages.
  std::vector<raft::Message> pump() {
    driver_.process_ready();
    std::vector<raft::Message> out;
    for (int round = 0; round < 8; ++round) {
      for (raft::Message& m : driver_.messages_out()) out.push_back(std::move(m));
      driver_.messages_out().clear();
      std::uint64_t last = 0;
      for (const node::PersistWork& w : driver_.persist_out())
        if (w.kind == node::PersistWork::Kind::write) last = w.seq;
      driver_.persist_out().clear();
      if (last == 0) break;
      driver_.on_persisted(node::PersistReport{last, std::nullopt});
      driver_.process_ready();
    }
    return out;
  }
  /// Lease reads the driver handed to the applier so far (served locally, without a round).
  std::size_t local_reads() {
    for (auto& w : driver_.apply_out())
      if (std::holds_alternative<typename Work::Read>(w.item)) ++local_reads_;
    driver_.apply_out().clear();
    return local_reads_;
  }
  /// Nodes 2 and 3 answer every message in `msgs` as healthy followers would.
  void answer(const std::vector<raft::Message>& msgs) {
    for (const raft::Message& m : msgs) {
      raft::Message r{.from = m.to, .to = 1, .term = m.term};
      switch (m.type) {
        case raft::MessageType::pre_vote: r.type = raft::MessageType::pre_vote_response; break;
        case raft::MessageType::vote: r.type = raft::MessageType::vote_response; break;
        case raft::MessageType::append:
          r.type = raft::MessageType::append_response;
          r.index = m.index + m.entries.size();
          break;
        case raft::MessageType::heartbeat:
          r.type = raft::MessageType::heartbeat_response;
          r.context = m.context;
          break;
        default: continue;
      }
      driver_.step(r);
    }
  }

 private:
  using Work = node::ApplyWork<CounterMachine, ManualClock::time_point>;
  static node::NodeConfig make_config() {
    node::NodeConfig c;
    c.raft.id = 1;
    c.raft.election_ticks = 10;
    c.raft.heartbeat_ticks = 2;
    c.initial_members = {1, 2, 3};
    c.tick_period = 10ms;
    return c;
  }
  static raft::Core make_core(const node::NodeConfig& c) {
    raft::CoreState st;
    st.snapshot.membership.voters = {1, 2, 3};
    return raft::Core::create(c.raft, st).value();
  }

  ManualClock clock_;
  node::NodeConfig config_;
  node::Registry registry_;
  node::NodeMetrics metrics_;
  node::NodeCallbacks callbacks_;
  node::StatusBoard status_;
  node::Driver<CounterMachine, ManualClock> driver_;
  std::size_t local_reads_ = 0;
};

node::ReadJob<CounterMachine> probe_read() {
  return node::ReadJob<CounterMachine>(
      [](const CounterMachine& m) { return m.get("x"); },
      node::Completion<std::int64_t>([](const result<std::int64_t>&) {}));
}

TEST_CASE("driver: a stalled event loop does not stretch the lease") {
  DriverRig rig;
  auto& d = rig.driver();
  d.campaign();
  // Elect node 1 and commit its no-op, then confirm a heartbeat round: the lease holds.
  for (int i = 0; i < 4; ++i) rig.answer(rig.pump());
  REQUIRE(d.core().role() == raft::Role::leader);
  REQUIRE(d.core().commit_index() >= 1);
  for (std::uint32_t t = 0; t < rig.config().raft.heartbeat_ticks; ++t) {
    rig.clock().advance(10ms);
    d.tick();
  }
  rig.answer(rig.pump());
  rig.pump();
  REQUIRE(d.core().lease_ticks_left() > 0);
  REQUIRE(rig.status().lease().first != 0);
  d.read(node::ReadConsistency::lease, probe_read());
  rig.pump();
  CHECK(rig.local_reads() == 1);
  // The event loop stalls for 10 s (far past the lease); then one tick runs. By its tick count
  // the core still holds a lease; by the clock the followers' promises ended long ago.
  rig.clock().advance(10s);
  d.tick();
  rig.pump();
  CHECK(d.core().lease_ticks_left() > 0);
  CHECK(rig.status().lease().first == 0);
  d.read(node::ReadConsistency::lease, probe_read());
  const auto round = rig.pump();
  CHECK(rig.local_reads() == 1);  // not served from the stale lease: it waits for a round
  // The round's acknowledgements confirm the read and renew the lease, anchored to the tick
  // that sent the round.
  rig.answer(round);
  rig.pump();
  CHECK(rig.local_reads() == 2);
  CHECK(rig.status().lease().first != 0);
  d.read(node::ReadConsistency::lease, probe_read());
  rig.pump();
  CHECK(rig.local_reads() == 3);
}

}  // namespace
}  // namespace dengine::test
