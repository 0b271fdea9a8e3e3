// A single node in the threaded arrangement: propose, apply, read in all three consistencies;
// completion tokens; back-pressure; snapshots and restart; persistence modes; failures.

#include <doctest/doctest.h>

#include <utility>  // before asio/awaitable.hpp, which uses std::exchange without it (Boost 1.74)

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/use_future.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <numeric>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "dengine/conformance/temp_dir.hpp"
#include "harness.hpp"

namespace dengine::test {
namespace {

namespace asio = boost::asio;
using node::ReadConsistency;

std::unique_ptr<ThreadedNode> open_single(Disk& disk, CounterMachine& sm, node::LocalHub& hub,
                                          node::NodeConfig cfg = test_config(1, {1}),
                                          node::NodeCallbacks callbacks = {}) {
  auto opened =
      ThreadedNode::open(std::move(cfg), disk.engine, sm, disk.snapshots,
                         node::LocalTransport(hub, 1), node::SteadyClock{}, std::move(callbacks));
  REQUIRE_MESSAGE(opened, (opened ? "" : opened.error().message()));
  auto n = std::move(opened).value();
  REQUIRE(eventually([&] { return n->is_leader(); }));
  return n;
}

/// A single node's test_config with MemFirst persistence (acknowledged before the sync).
node::NodeConfig mem_first_config() {
  auto cfg = test_config(1, {1});
  cfg.persistence = PersistenceMode::mem_first;
  return cfg;
}

/// Threads of this process named `name` (ThreadedRuntime names its threads).
int threads_named(const std::string& name) {
  int n = 0;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string line;
    if (std::getline(comm, line) && line == name) ++n;
  }
  return n;
}

/// `clients` chains of `per_client` proposals: each completion (on the applier thread) issues
/// its client's next proposal, as a client loop over an asynchronous API does.
struct Chains {
  ThreadedNode* node = nullptr;
  int per_client = 0;
  std::atomic<int> ok{0};
  std::atomic<int> stopped{0};
  std::atomic<int> other{0};
  std::atomic<int> running{0};
  std::mutex mutex;
  std::vector<std::int64_t> values;  // every acknowledged counter value

  void start(int clients) {
    running = clients;
    for (int c = 0; c < clients; ++c) issue(per_client);
  }
  void issue(int left) {
    node->propose(add_cmd("c", 1), [this, left](result<CounterResponse> r) {
      if (r) {
        ++ok;
        std::lock_guard lock(mutex);
        values.push_back(r.value().value);
      } else if (r.error().code == errc::stopped) {
        ++stopped;
      } else {
        ++other;
      }
      if (r && left > 1) {
        issue(left - 1);
      } else {
        --running;
      }
    });
  }
};

TEST_SUITE("integration") {
  TEST_CASE("single node: completion handlers issuing the next proposal, applied in chunks") {
    Disk disk;
    CounterMachine sm;
    node::LocalHub hub;
    auto cfg = mem_first_config();
    cfg.apply_chunk_entries = 3;  // many chunks per batch: requests go out between chunks
    auto n = open_single(disk, sm, hub, cfg);
    constexpr int clients = 24;
    constexpr int per_client = 40;
    constexpr int total = clients * per_client;
    Chains chains;
    chains.node = n.get();
    chains.per_client = per_client;
    chains.start(clients);
    REQUIRE(eventually([&] { return chains.running.load() == 0; }));
    CHECK(chains.ok.load() == total);
    CHECK(chains.stopped.load() == 0);
    CHECK(chains.other.load() == 0);
    // Every proposal applied exactly once, each answered with its own entry's result.
    std::sort(chains.values.begin(), chains.values.end());
    std::vector<std::int64_t> expect(static_cast<std::size_t>(total));
    std::iota(expect.begin(), expect.end(), 1);
    CHECK(chains.values == expect);
    auto v = n->read_wait(ReadConsistency::linearizable,
                          [](const CounterMachine& m) { return m.get("c"); });
    REQUIRE(v);
    CHECK(v.value() == total);
  }

  TEST_CASE("single node: stop while completion handlers keep issuing proposals") {
    Disk disk;
    CounterMachine sm;
    node::LocalHub hub;
    auto cfg = test_config(1, {1});
    cfg.apply_chunk_entries = 2;
    auto n = open_single(disk, sm, hub, cfg);
    Chains chains;
    chains.node = n.get();
    chains.per_client = 1000000;  // until the stop
    chains.start(16);
    REQUIRE(eventually([&] { return chains.ok.load() >= 200; }));
    REQUIRE(n->stop());
    // Every chain ended: its last request completed with `stopped` (none hangs, none is lost).
    CHECK(chains.running.load() == 0);
    CHECK(chains.stopped.load() == 16);
    CHECK(chains.other.load() == 0);
    CHECK(sm.get("c") == chains.ok.load());  // what was acknowledged is what was applied
  }

  TEST_CASE("single node: the log writer runs on the event loop only when nothing can block") {
    node::LocalHub hub;
    const int writers_before = threads_named("dengine-writer");
    {
      // Memory engine + memory snapshot store: no writer thread.
      Disk disk;
      CounterMachine sm;
      auto n = open_single(disk, sm, hub);
      CHECK(threads_named("dengine-apply") >= 1);
      CHECK(threads_named("dengine-writer") == writers_before);
      REQUIRE(n->propose_wait(add_cmd("w", 1)));
    }
    {
      // A snapshot store on disk: its saves may block, so the writer has its own thread.
      TempDir dir;
      auto snapshots = node::FileSnapshotStore::open(dir.path() / "snap");
      REQUIRE(snapshots);
      memory::Engine engine;
      CounterMachine sm;
      using FileImageNode = node::Node<memory::Engine, CounterMachine, node::LocalTransport,
                                       node::Threaded, node::FileSnapshotStore>;
      auto opened = FileImageNode::open(test_config(1, {1}), engine, sm, snapshots.value(),
                                        node::LocalTransport(hub, 1), node::SteadyClock{});
      REQUIRE(opened);
      auto n = std::move(opened).value();
      REQUIRE(eventually([&] { return n->is_leader(); }));
      CHECK(threads_named("dengine-writer") == writers_before + 1);
      auto r = n->propose_wait(add_cmd("w", 1));
      REQUIRE(r);
      CHECK(r.value().value == 1);
    }
  }

  TEST_CASE("single node: propose, apply and read in every consistency") {
    Disk disk;
    CounterMachine sm;
    node::LocalHub hub;
    auto n = open_single(disk, sm, hub);

    auto r1 = n->propose_wait(add_cmd("x", 5));
    REQUIRE(r1);
    // The vote of the election it won was saved with the first entry of its term, which had
    // to be persisted before anything could commit.
    CHECK(disk.engine.hard_state().term >= 1);
    CHECK(disk.engine.hard_state().vote == 1);
    CHECK(r1.value().value == 5);
    auto r2 = n->propose_wait(add_cmd("x", 2));
    REQUIRE(r2);
    CHECK(r2.value().value == 7);
    CHECK(r2.value().index == r1.value().index + 1);

    for (auto c :
         {ReadConsistency::linearizable, ReadConsistency::lease, ReadConsistency::serializable}) {
      CAPTURE(node::to_string(c));
      auto v = n->read_wait(c, [](const CounterMachine& m) { return m.get("x"); });
      REQUIRE(v);
      CHECK(v.value() == 7);
    }

    const auto& m = n->node_metrics();
    CHECK(m.proposals.value() == 2);
    CHECK(m.entries_applied.value() >= 3);  // the leader's no-op and both commands
    CHECK(m.fsyncs.value() >= 1);
    CHECK(m.fsync_latency.count() == m.fsyncs.value());
    CHECK(m.is_leader.value() == 1);
    CHECK(m.reads.value() == 3);
    CHECK(m.pending_proposals.value() == 0);
    CHECK(m.pending_reads.value() == 0);
    std::string text;
    n->metrics().write_prometheus(text);
    CHECK(text.find("dengine_proposals_total 2\n") != std::string::npos);
    REQUIRE(n->stop());
    CHECK_FALSE(n->status().running);
  }

  TEST_CASE("single node: completion tokens — callback, future, co_await, bound executor") {
    Disk disk;
    CounterMachine sm;
    node::LocalHub hub;
    auto n = open_single(disk, sm, hub);

    // A plain callback runs on the applier thread (not the caller's).
    std::promise<std::pair<result<CounterResponse>, std::thread::id>> p;
    n->propose(add_cmd("a", 1), [&](result<CounterResponse> r) {
      p.set_value({std::move(r), std::this_thread::get_id()});
    });
    auto [r, tid] = p.get_future().get();
    REQUIRE(r);
    CHECK(r.value().value == 1);
    CHECK(tid != std::this_thread::get_id());

    // std::future.
    auto f = n->propose(add_cmd("a", 1), asio::use_future);
    auto rf = f.get();
    REQUIRE(rf);
    CHECK(rf.value().value == 2);

    // A callback bound to the caller's io_context runs there.
    asio::io_context user_io;
    std::thread::id bound_tid;
    std::int64_t bound_value = 0;
    n->read(
        ReadConsistency::linearizable, [](const CounterMachine& m) { return m.get("a"); },
        asio::bind_executor(user_io, [&](result<std::int64_t> v) {
          bound_tid = std::this_thread::get_id();
          bound_value = v ? v.value() : -1;
        }));
    user_io.run();  // returns once the completion ran: the pending request holds work on user_io
    CHECK(bound_tid == std::this_thread::get_id());
    CHECK(bound_value == 2);

#if defined(BOOST_ASIO_HAS_CO_AWAIT)
    // co_await.
    asio::io_context co_io;
    std::int64_t seen = 0;
    asio::co_spawn(
        co_io,
        [&]() -> asio::awaitable<void> {
          auto put = co_await n->propose(add_cmd("a", 40), asio::use_awaitable);
          auto got = co_await n->read(
              ReadConsistency::lease, [](const CounterMachine& m) { return m.get("a"); },
              asio::use_awaitable);
          seen = put && got ? got.value() : -1;
        },
        asio::detached);
    co_io.run();
    CHECK(seen == 42);
#endif
  }

  TEST_CASE("single node: a query returning result<X> completes with its error") {
    Disk disk;
    CounterMachine sm;
    node::LocalHub hub;
    auto n = open_single(disk, sm, hub);
    auto v = n->read_wait(ReadConsistency::serializable,
                          [](const CounterMachine& m) -> result<std::int64_t> {
                            if (m.get("missing") == 0) return error(errc::not_found, "key missing");
                            return m.get("missing");
                          });
    REQUIRE_FALSE(v);
    CHECK(v.error() == errc::not_found);
    CHECK(v.error().detail == "key missing");
  }

  TEST_CASE(
      "single node: back-pressure — too_busy past the pending bounds, everything admitted "
      "completes") {
    Disk disk;
    CounterMachine sm;
    Gate gate;
    sm.before_apply = [&] { gate.wait(); };  // holds the applier: nothing completes meanwhile
    node::LocalHub hub;
    auto cfg = test_config(1, {1});
    cfg.max_pending_proposals = 8;
    cfg.max_pending_reads = 4;
    auto n = open_single(disk, sm, hub, cfg);
    REQUIRE(eventually([&] { return gate.reached(); }));

    std::vector<std::future<result<CounterResponse>>> proposals;
    proposals.reserve(cfg.max_pending_proposals);
    for (std::size_t i = 0; i < cfg.max_pending_proposals; ++i)
      proposals.push_back(n->propose(add_cmd("k", 1), asio::use_future));
    std::vector<std::future<result<std::int64_t>>> reads;
    reads.reserve(cfg.max_pending_reads);
    for (std::size_t i = 0; i < cfg.max_pending_reads; ++i)
      reads.push_back(n->read(
          ReadConsistency::serializable, [](const CounterMachine& m) { return m.get("k"); },
          asio::use_future));

    auto busy = n->propose(add_cmd("k", 1), asio::use_future).get();  // refused at once
    REQUIRE_FALSE(busy);
    CHECK(busy.error() == errc::too_busy);
    CHECK(busy.error().detail.find("pending proposals") != std::string::npos);
    auto busy_read = n->read(
                          ReadConsistency::serializable, [](const CounterMachine&) { return 0; },
                          asio::use_future)
                         .get();
    REQUIRE_FALSE(busy_read);
    CHECK(busy_read.error() == errc::too_busy);
    CHECK(n->node_metrics().rejected_busy.value() == 2);
    CHECK(n->node_metrics().pending_proposals.value() == 8);

    gate.open();
    std::vector<std::int64_t> values;
    for (auto& f : proposals) {
      auto r = f.get();
      REQUIRE(r);
      values.push_back(r.value().value);
    }
    CHECK(values == std::vector<std::int64_t>{1, 2, 3, 4, 5, 6, 7, 8});
    for (auto& f : reads) CHECK(f.get());
    // Slots were released: a new proposal is admitted.
    auto again = n->propose_wait(add_cmd("k", 1));
    REQUIRE(again);
    CHECK(again.value().value == 9);
  }

  TEST_CASE("single node: snapshots by log size, then a restart from snapshot + log tail") {
    Disk disk;
    std::map<std::string, std::int64_t> expected;
    LogIndex last_index = 0;
    {
      CounterMachine sm;
      node::LocalHub hub;
      auto cfg = test_config(1, {1});
      cfg.snapshot_threshold_bytes = 512;
      auto n = open_single(disk, sm, hub, cfg);
      for (int i = 0; i < 60; ++i) {
        const std::string key = "k" + std::to_string(i % 7);
        auto r = n->propose_wait(add_cmd(key, i));
        REQUIRE(r);
        expected[key] += i;
        CHECK(r.value().value == expected[key]);
        last_index = r.value().index;
      }
      REQUIRE(eventually([&] {
        return n->node_metrics().snapshots_taken.value() >= 1 && disk.engine.first_index() > 1;
      }));
      REQUIRE(n->stop());
    }
    CHECK(disk.snapshots.save_count() >= 1);
    auto image = disk.snapshots.load();
    REQUIRE(image);
    REQUIRE(image.value());
    CHECK(image.value()->meta.index == disk.engine.first_index() - 1);
    disk.engine.crash();  // lose whatever was not synced (in DiskFirst: nothing acknowledged)

    CounterMachine sm;
    node::LocalHub hub;
    const Term term_before = disk.engine.hard_state().term;
    auto n = open_single(disk, sm, hub);
    CHECK(sm.restores() == 1);
    CHECK(n->status().term > term_before);  // a restarted node never reuses a term it voted in  //
                                            // from the image at open; the log tail is applied after
    auto values = n->read_wait(ReadConsistency::linearizable,
                               [](const CounterMachine& m) { return m.values(); });
    REQUIRE(values);
    CHECK(values.value() == expected);
    auto r = n->propose_wait(add_cmd("k0", 1));
    REQUIRE(r);
    CHECK(r.value().index > last_index);
    CHECK(r.value().value == expected["k0"] + 1);
  }

  TEST_CASE("single node: MemFirst acknowledges before the sync and syncs in the background") {
    Disk disk;
    CounterMachine sm;
    node::LocalHub hub;
    auto cfg = mem_first_config();
    auto n = open_single(disk, sm, hub, cfg);
    for (int i = 1; i <= 20; ++i) {
      auto r = n->propose_wait(add_cmd("m", 1));
      REQUIRE(r);
      CHECK(r.value().value == i);
    }
    REQUIRE(n->stop());
    CHECK_FALSE(disk.engine.has_unsynced());  // a graceful stop syncs what was appended
    disk.engine.crash();
    CounterMachine sm2;
    auto n2 = open_single(disk, sm2, hub, cfg);
    auto v = n2->read_wait(ReadConsistency::linearizable,
                           [](const CounterMachine& m) { return m.get("m"); });
    REQUIRE(v);
    CHECK(v.value() == 20);
  }

  TEST_CASE("single node: a storage failure fails requests and stops the node") {
    FaultyEngine engine;
    node::MemorySnapshotStore snapshots;
    CounterMachine sm;
    node::LocalHub hub;
    using FaultyNode = node::Node<FaultyEngine, CounterMachine, node::LocalTransport,
                                  node::Threaded, node::MemorySnapshotStore>;
    auto opened =
        FaultyNode::open(test_config(1, {1}), engine, sm, snapshots, node::LocalTransport(hub, 1));
    REQUIRE(opened);
    auto& n = *opened.value();
    REQUIRE(eventually([&] { return n.is_leader(); }));
    REQUIRE(n.propose_wait(add_cmd("x", 1)));

    engine.fail_appends = true;
    auto r = n.propose_wait(add_cmd("x", 1));
    REQUIRE_FALSE(r);
    // The entry was handed to the log writer (and, in a cluster, to the followers): whether it
    // takes effect is unknown; the storage's error is its cause (outcome_test.cpp has more).
    CHECK(r.error() == errc::outcome_unknown);
    CHECK(r.error().cause == errc::no_space);
    CHECK(r.error().detail.find("log writer: appending entries") != std::string::npos);
    CHECK_FALSE(n.status().running);
    REQUIRE(n.status().failure);
    CHECK(n.status().failure->code == errc::no_space);
    auto again = n.propose_wait(add_cmd("x", 1));
    REQUIRE_FALSE(again);
    CHECK(again.error() == errc::stopped);  // refused before the log: definite
    CHECK(again.error().cause == errc::no_space);
    auto ready = n.wait_ready(std::chrono::seconds(1));
    REQUIRE_FALSE(ready);
    CHECK(ready.error() == errc::stopped);
    CHECK(ready.error().cause == errc::no_space);
    CHECK(n.stop());
  }

  TEST_CASE("single node: wait_ready — when a fresh node may propose") {
    Disk disk;
    CounterMachine sm;
    node::LocalHub hub;
    auto opened = ThreadedNode::open(test_config(1, {1}), disk.engine, sm, disk.snapshots,
                                     node::LocalTransport(hub, 1), node::SteadyClock{});
    REQUIRE(opened);
    auto& n = *opened.value();
    // A single voter elects itself at open and applies its first entry.
    REQUIRE(n.wait_ready(std::chrono::seconds(10)));
    const node::NodeStatus s = n.status();
    CHECK(s.leader == 1);
    CHECK(s.applied >= s.commit);
    REQUIRE(n.propose_wait(add_cmd("x", 1)));

    // From a completion handler it would wait on the thread that must make progress.
    std::promise<result<void>> inside;
    n.propose(add_cmd("x", 1), [&](const result<CounterResponse>&) {
      inside.set_value(n.wait_ready(std::chrono::seconds(1)));
    });
    auto in_handler = inside.get_future().get();
    REQUIRE_FALSE(in_handler);
    CHECK(in_handler.error() == errc::invalid_argument);

    REQUIRE(n.stop());
    auto stopped = n.wait_ready(std::chrono::seconds(1));
    REQUIRE_FALSE(stopped);
    CHECK(stopped.error() == errc::stopped);
  }

  TEST_CASE("single node: wait_ready times out without a quorum, saying what it saw") {
    Disk disk;
    CounterMachine sm;
    node::LocalHub hub;
    // One of three voters, the other two never started: no leader can be elected.
    auto cfg = test_config(1, {1, 2, 3});
    cfg.request_timeout = std::chrono::milliseconds(200);
    auto opened = ThreadedNode::open(cfg, disk.engine, sm, disk.snapshots,
                                     node::LocalTransport(hub, 1), node::SteadyClock{});
    REQUIRE(opened);
    auto& n = *opened.value();
    auto r = n.wait_ready(std::chrono::milliseconds(50));
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::timeout);
    CHECK(r.error().detail.find("leader 0") != std::string::npos);
    // Proposing before a leader is known is allowed: it waits to be forwarded to a leader,
    // and none coming within the request timeout, fails definitely (it was never sent).
    auto early = n.propose_wait(add_cmd("x", 1));
    REQUIRE_FALSE(early);
    CHECK(early.error() == errc::timeout);
    CHECK(early.error().detail.find("not appended") != std::string::npos);
    REQUIRE(n.stop());
  }

  TEST_CASE("single node: errors a caller can cause") {
    Disk disk;
    CounterMachine sm;
    node::LocalHub hub;
    auto cfg = test_config(1, {1});
    cfg.raft.max_entry_bytes = 64;
    auto n = open_single(disk, sm, hub, cfg);

    auto big = n->propose_wait(std::string(100, 'x'));
    REQUIRE_FALSE(big);
    CHECK(big.error() == errc::too_large);

    // stop() and the blocking helpers refuse to run on the node's own threads.
    std::promise<std::pair<result<void>, result<CounterResponse>>> inside;
    n->propose(add_cmd("x", 1), [&](const result<CounterResponse>&) {
      inside.set_value({n->stop(), n->propose_wait(add_cmd("x", 1))});
    });
    auto [stop_inside, wait_inside] = inside.get_future().get();
    REQUIRE_FALSE(stop_inside);
    CHECK(stop_inside.error() == errc::invalid_argument);
    REQUIRE_FALSE(wait_inside);
    CHECK(wait_inside.error() == errc::invalid_argument);

    REQUIRE(n->stop());
    REQUIRE(n->stop());  // idempotent
    auto after = n->propose_wait(add_cmd("x", 1));
    REQUIRE_FALSE(after);
    CHECK(after.error() == errc::stopped);
    auto read_after = n->read_wait(ReadConsistency::serializable,
                                   [](const CounterMachine& m) { return m.get("x"); });
    REQUIRE_FALSE(read_after);
    CHECK(read_after.error() == errc::stopped);
  }

  TEST_CASE("single node: leader-change notification") {
    Disk disk;
    CounterMachine sm;
    node::LocalHub hub;
    std::mutex mutex;
    std::vector<node::LeaderChange> changes;
    node::NodeCallbacks callbacks;
    callbacks.on_leader_change = [&](const node::LeaderChange& c) {
      std::lock_guard lock(mutex);
      changes.push_back(c);
    };
    auto n = open_single(disk, sm, hub, test_config(1, {1}), callbacks);
    REQUIRE(eventually([&] {
      std::lock_guard lock(mutex);
      return !changes.empty() && changes.back().role == raft::Role::leader;
    }));
    std::lock_guard lock(mutex);
    CHECK(changes.back().leader == 1);
    CHECK(changes.back().term >= 1);
  }

  /// A user's snapshot store: no base class, only the dengine::SnapshotStore concept, and an
  /// in_memory() answered at run time (as a store that picks memory or disk when opened would).
  class OwnImageStore {
   public:
    explicit OwnImageStore(bool keeps_in_memory) : in_memory_(keeps_in_memory) {}
    result<void> save(const std::shared_ptr<const Snapshot>& s) {
      ++saves;
      return kept.save(s);
    }
    result<std::shared_ptr<const Snapshot>> load() {
      ++loads;
      return kept.load();
    }
    [[nodiscard]] bool in_memory() const noexcept { return in_memory_; }

    node::MemorySnapshotStore kept;
    std::atomic<int> saves{0};
    std::atomic<int> loads{0};

   private:
    bool in_memory_;
  };

  static_assert(std::is_same_v<ThreadedNode::snapshot_store_type, node::MemorySnapshotStore>);
  static_assert(
      std::is_same_v<node::default_snapshot_store_t<FaultyEngine>, node::FileSnapshotStore>);

  TEST_CASE("single node: a snapshot store of the user's own type takes the images and restores") {
    using OwnStoreNode = node::Node<memory::Engine, CounterMachine, node::LocalTransport,
                                    node::Threaded, OwnImageStore>;
    for (const bool keeps_in_memory : {true, false}) {
      CAPTURE(keeps_in_memory);
      memory::Engine engine;
      OwnImageStore images(keeps_in_memory);
      node::LocalHub hub;
      auto cfg = test_config(1, {1});
      cfg.snapshot_threshold_bytes = 256;
      std::int64_t total = 0;
      {
        CounterMachine sm;
        auto n = OwnStoreNode::open(cfg, engine, sm, images, node::LocalTransport(hub, 1)).value();
        REQUIRE(eventually([&] { return n->is_leader(); }));
        for (int i = 1; i <= 40; ++i) {
          REQUIRE(n->propose_wait(add_cmd("s", i)));
          total += i;
        }
        REQUIRE(eventually([&] { return images.saves.load() >= 1; }));
        REQUIRE(n->stop());
      }
      CHECK(images.loads.load() == 1);  // Node::open read it once
      CounterMachine sm;
      auto n = OwnStoreNode::open(cfg, engine, sm, images, node::LocalTransport(hub, 1)).value();
      CHECK(images.loads.load() == 2);
      CHECK(sm.restores() == 1);  // the state came back from this store's image
      auto v = n->read_wait(ReadConsistency::linearizable,
                            [](const CounterMachine& m) { return m.get("s"); });
      REQUIRE(v);
      CHECK(v.value() == total);
    }
  }
}

}  // namespace
}  // namespace dengine::test
