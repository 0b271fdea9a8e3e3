// Honest outcomes and loud fatal errors (issue 10, items 5 and 6). A write refused before its
// entry left the node fails with a definite error; once the entry may be in a log, every failure
// is outcome_unknown with its cause attached — and such a write can indeed be there after a
// restart. A node that stops on a storage or state-machine failure says so once, in its log
// sink, its status, its metrics and in wait_ready().

#include <doctest/doctest.h>

#include <boost/asio/use_future.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <future>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "dengine/backends/memory.hpp"
#include "dengine/conformance/temp_dir.hpp"
#include "dengine/engine/embedded_engine.hpp"
#include "dengine/engine/embedded_engine_impl.hpp"  // SyncFaultBackend: not in a compiled library
#include "dengine/engine/kv_replica.hpp"
#include "harness.hpp"
#ifdef DENGINE_HAVE_RAWFILE
#include "dengine/backends/rawfile.hpp"
#endif

namespace dengine::test {
namespace {

using namespace std::chrono_literals;
using node::ReadConsistency;

/// What an fdatasync that fails with EIO reports (the tests inject it).
error injected_fsync_error() {
  return error(errc::io_error,
               "log file /data/raft/log-000001: fdatasync: Input/output error (injected)");
}

/// A memory::Engine whose sync() can fail (an fsync returning EIO after the write() went
/// through: the entry is in the "page cache", i.e. still in the engine) or be held at a gate.
struct SyncFaultEngine : ForwardingEngine {
  result<void> sync() {
    if (hold_syncs.load()) gate.wait();
    if (fail_syncs.load()) return injected_fsync_error();
    return inner.sync();
  }

  std::atomic<bool> fail_syncs{false};
  std::atomic<bool> hold_syncs{false};
  Gate gate;
};
static_assert(StorageEngine<SyncFaultEngine>);

/// A CounterMachine whose apply() can fail, as a KV store whose write fails does.
class ApplyFaultMachine {
 public:
  using response_type = CounterResponse;
  result<void> apply(std::span<const Entry> batch, std::vector<CounterResponse>& responses) {
    if (fail.load())
      return error(errc::io_error,
                   "kv store /data/kv/data.mdb: write: Input/output error "
                   "(injected)");
    return inner.apply(batch, responses);
  }
  [[nodiscard]] LogIndex applied_index() const noexcept { return inner.applied_index(); }
  result<LogIndex> snapshot(SnapshotSink& sink) const { return inner.snapshot(sink); }
  result<LogIndex> restore(SnapshotSource& source) { return inner.restore(source); }

  CounterMachine inner;
  std::atomic<bool> fail{false};
};
static_assert(StateMachine<ApplyFaultMachine>);

using SyncFaultNode = node::Node<SyncFaultEngine, CounterMachine, node::LocalTransport,
                                 node::Threaded, node::MemorySnapshotStore>;
using ApplyFaultNode = node::Node<memory::Engine, ApplyFaultMachine, node::LocalTransport>;

/// The lines a node logged (NodeCallbacks::log), from any thread.
struct LogLines {
  std::mutex mutex;
  std::vector<std::string> lines;

  node::NodeCallbacks callbacks() {
    node::NodeCallbacks cb;
    cb.log = [this](std::string_view line) {
      std::lock_guard lock(mutex);
      lines.emplace_back(line);
    };
    return cb;
  }
  std::vector<std::string> get() {
    std::lock_guard lock(mutex);
    return lines;
  }
};

template <class N, class S, class M, class SS>
std::unique_ptr<N> open_leader(S& storage, M& sm, SS& snapshots, node::LocalHub& hub,
                               node::NodeConfig cfg = test_config(1, {1}),
                               node::NodeCallbacks callbacks = {}) {
  auto opened = N::open(std::move(cfg), storage, sm, snapshots, node::LocalTransport(hub, 1),
                        node::SteadyClock{}, std::move(callbacks));
  REQUIRE_MESSAGE(opened, (opened ? "" : opened.error().message()));
  auto n = std::move(opened).value();
  REQUIRE(eventually([&] { return n->is_leader(); }));
  return n;
}

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

/// Checks that `r` failed with outcome_unknown caused by `cause`, the detail saying each of
/// `texts`.
template <class T>
void check_outcome_unknown(const result<T>& r, errc cause,
                           std::initializer_list<std::string_view> texts = {}) {
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::outcome_unknown);
  CHECK(r.error().cause == cause);
  for (std::string_view text : texts)
    CHECK_MESSAGE(contains(r.error().detail, text), "not in the detail: " << text);
}

/// The counter `key` as a node over `storage` restarted now reads it (a process restart: what
/// the storage holds is kept, synced or not).
template <class S>
std::int64_t value_after_restart(S& storage, node::MemorySnapshotStore& snapshots,
                                 const std::string& key) {
  using N = node::Node<S, CounterMachine, node::LocalTransport, node::Threaded,
                       node::MemorySnapshotStore>;
  CounterMachine sm;
  node::LocalHub hub;
  auto n = open_leader<N>(storage, sm, snapshots, hub);
  auto v = n->read_wait(ReadConsistency::linearizable,
                        [key](const CounterMachine& m) { return m.get(key); });
  REQUIRE_MESSAGE(v, (v ? "" : v.error().message()));
  REQUIRE(n->stop());
  return v.value();
}

/// A three-node cluster in the deterministic arrangement (virtual time, simulated network).
/// Members are destroyed in reverse order: the nodes (each stops itself) before their disks,
/// the network and the executor.
struct SimTrio {
  sim::SimExecutor executor;
  sim::SimNetwork net{executor, 11};
  std::array<Disk, 3> disks;
  std::array<std::unique_ptr<CounterMachine>, 3> sms;
  std::array<std::unique_ptr<SimNode>, 3> nodes;

  SimTrio() {
    for (NodeId id = 1; id <= 3; ++id) {
      auto cfg = test_config(id, {1, 2, 3});
      cfg.raft.random_seed = 1000 + id;
      cfg.request_timeout = 500ms;
      sms[id - 1] = std::make_unique<CounterMachine>();
      auto opened = SimNode::open(cfg, disks[id - 1].engine, *sms[id - 1], disks[id - 1].snapshots,
                                  sim::SimTransport(net, id), sim::SimClock{&executor});
      REQUIRE_MESSAGE(opened, (opened ? "" : opened.error().message()));
      nodes[id - 1] = std::move(opened).value();
    }
  }
  SimNode& node(NodeId id) { return *nodes[id - 1]; }
  /// Runs until a leader other than `not_this` is known to it; returns it (no_node if none).
  NodeId leader(NodeId not_this = no_node) {
    NodeId found = no_node;
    executor.run_until(
        [&] {
          for (NodeId id = 1; id <= 3; ++id)
            if (id != not_this && node(id).is_leader()) found = id;
          return found != no_node;
        },
        executor.now() + 5'000'000);
    return found;
  }
  std::int64_t read(NodeId at, const std::string& key) {
    std::optional<result<std::int64_t>> got;
    node(at).read(
        ReadConsistency::linearizable, [key](const CounterMachine& m) { return m.get(key); },
        [&](result<std::int64_t> r) { got = std::move(r); });
    REQUIRE(executor.run_until([&] { return got.has_value(); }, executor.now() + 5'000'000));
    REQUIRE_MESSAGE(*got, got->error().message());
    return got->value();
  }
};

#ifdef DENGINE_HAVE_RAWFILE
/// Every file under `dir`, recursively copied to `to` (replacing what is there).
void copy_dir(const std::filesystem::path& dir, const std::filesystem::path& to) {
  std::filesystem::remove_all(to);
  std::filesystem::copy(dir, to, std::filesystem::copy_options::recursive);
}
#endif

/// A memory backend whose log sync() fails on demand (every engine of the process at once).
struct SyncFaultLog : ForwardingEngine {
  static inline std::atomic<bool> fail{false};

  result<void> sync() {
    if (fail.load()) return injected_fsync_error();
    return inner.sync();
  }
};
/// The memory backend's traits (whatever they declare) with SyncFaultLog as the storage.
struct SyncFaultBackend : memory::Backend {
  using storage_engine = SyncFaultLog;
  static result<std::unique_ptr<SyncFaultLog>> open_storage(const std::filesystem::path& /*dir*/,
                                                            PersistenceMode /*mode*/) {
    return std::make_unique<SyncFaultLog>();
  }
};
static_assert(engine::Backend<SyncFaultBackend>);

}  // namespace

TEST_SUITE("integration") {
  TEST_CASE(
      "outcome: a log sync failing after the append is outcome_unknown; the write is there "
      "after a restart") {
    SyncFaultEngine storage;
    node::MemorySnapshotStore snapshots;
    CounterMachine sm;
    node::LocalHub hub;
    LogLines log;
    auto n = open_leader<SyncFaultNode>(storage, sm, snapshots, hub, test_config(1, {1}),
                                        log.callbacks());
    REQUIRE(n->propose_wait(add_cmd("x", 1)));

    storage.fail_syncs = true;
    check_outcome_unknown(n->propose_wait(add_cmd("x", 10)), errc::io_error,
                          {"was appended", "log writer: syncing the log", "/data/raft/log-000001"});

    // A request after the stop never reached the log: definite, with the cause.
    auto again = n->propose_wait(add_cmd("x", 100));
    REQUIRE_FALSE(again);
    CHECK(again.error() == errc::stopped);
    CHECK(again.error().cause == errc::io_error);
    CHECK(contains(again.error().detail, "/data/raft/log-000001"));
    REQUIRE(n->stop());

    // The write reported unknown did take effect: its entry was in the log.
    storage.fail_syncs = false;
    CHECK(value_after_restart(storage, snapshots, "x") == 11);
  }

  TEST_CASE(
      "outcome: a stop with proposals in flight — handed to the log writer: unknown and "
      "there after a restart; never handed out: stopped, and absent") {
    SyncFaultEngine storage;
    node::MemorySnapshotStore snapshots;
    CounterMachine sm;
    node::LocalHub hub;
    auto cfg = test_config(1, {1});
    cfg.max_inflight_persist = 1;  // while the first write syncs, later entries stay in the core
    auto n = open_leader<SyncFaultNode>(storage, sm, snapshots, hub, cfg);
    REQUIRE(n->propose_wait(add_cmd("y", 1)));

    storage.hold_syncs = true;
    auto first = n->propose(add_cmd("y", 10), boost::asio::use_future);
    REQUIRE(eventually([&] { return storage.gate.reached(); }));  // the writer holds entry 1
    auto second = n->propose(add_cmd("y", 100), boost::asio::use_future);
    // (the second is queued behind the first: the core keeps it until the writer reports)
    std::promise<result<void>> stopped;
    std::thread stopper([&] { stopped.set_value(n->stop()); });
    auto r1 = first.get();
    auto r2 = second.get();
    storage.hold_syncs = false;
    storage.gate.open();
    stopper.join();
    REQUIRE(stopped.get_future().get());

    REQUIRE_FALSE(r1);
    CHECK(r1.error() == errc::outcome_unknown);
    CHECK(r1.error().cause == errc::stopped);
    CHECK(contains(r1.error().message(), "was appended, then the node stopped"));
    REQUIRE_FALSE(r2);
    CHECK(r2.error() == errc::stopped);  // definite: its entry was in no log
    CHECK(!r2.error().cause);

    CHECK(value_after_restart(storage, snapshots, "y") == 11);  // the first, not the second
  }

  TEST_CASE("outcome: requests refused before the log fail with definite errors") {
    Disk disk;
    CounterMachine sm;
    Gate gate;
    std::atomic<bool> hold{false};
    sm.before_apply = [&] {
      if (hold.load()) gate.wait();
    };
    node::LocalHub hub;
    auto cfg = test_config(1, {1});
    cfg.raft.max_entry_bytes = 64;
    cfg.max_pending_proposals = 1;
    auto n = open_leader<ThreadedNode>(disk.engine, sm, disk.snapshots, hub, cfg);

    auto big = n->propose_wait(std::string(100, 'x'));
    REQUIRE_FALSE(big);
    CHECK(big.error() == errc::too_large);
    CHECK(!big.error().cause);

    // The one admission slot is taken while the applier is held: the next proposal is refused.
    hold = true;
    auto held = n->propose(add_cmd("z", 1), boost::asio::use_future);
    REQUIRE(eventually([&] { return gate.reached(); }));
    auto busy = n->propose_wait(add_cmd("z", 2));
    REQUIRE_FALSE(busy);
    CHECK(busy.error() == errc::too_busy);
    hold = false;
    gate.open();
    REQUIRE(held.get());

    REQUIRE(n->stop());
    auto after = n->propose_wait(add_cmd("z", 4));
    REQUIRE_FALSE(after);
    CHECK(after.error() == errc::stopped);
    CHECK(!after.error().cause);
    CHECK(value_after_restart(disk.engine, disk.snapshots, "z") == 1);  // only the accepted one

    // A follower forwards a write to the leader: applied once, answered at the follower.
    SimTrio trio;
    const NodeId l = trio.leader();
    REQUIRE(l != no_node);
    const NodeId f = l % 3 + 1;
    REQUIRE(trio.executor.run_until([&] { return trio.node(f).leader() == l; },
                                    trio.executor.now() + 5'000'000));
    std::optional<result<CounterResponse>> forwarded;
    trio.node(f).propose(add_cmd("w", 1),
                         [&](result<CounterResponse> r) { forwarded = std::move(r); });
    REQUIRE(trio.executor.run_until([&] { return forwarded.has_value(); },
                                    trio.executor.now() + 1'000'000));
    REQUIRE_MESSAGE(*forwarded, (*forwarded ? "" : forwarded->error().message()));
    CHECK(forwarded->value().value == 1);
    CHECK(trio.read(l, "w") == 1);
  }

  TEST_CASE(
      "outcome: a leader cut off after appending answers outcome_unknown; the write "
      "commits under the next leader") {
    SimTrio trio;
    const NodeId old = trio.leader();
    REQUIRE(old != no_node);
    // A first write settles replication (the leader streams appends to both followers).
    std::optional<result<CounterResponse>> warm;
    trio.node(old).propose(add_cmd("warm", 1),
                           [&](result<CounterResponse> r) { warm = std::move(r); });
    REQUIRE(
        trio.executor.run_until([&] { return warm.has_value(); }, trio.executor.now() + 1'000'000));
    REQUIRE(*warm);
    trio.executor.run_for(20ms);
    // Followers hear the leader but it never hears them: they take the entry, it cannot commit.
    std::vector<NodeId> followers;
    for (NodeId id = 1; id <= 3; ++id)
      if (id != old) followers.push_back(id);
    trio.net.net().partition_one_way(followers, {old});
    std::optional<result<CounterResponse>> put;
    trio.node(old).propose(add_cmd("k", 7), [&](result<CounterResponse> r) { put = std::move(r); });
    trio.executor.run_for(5ms);
    REQUIRE_FALSE(put.has_value());
    trio.net.net().isolate(old);  // the followers elect one of themselves, holding the entry

    REQUIRE(
        trio.executor.run_until([&] { return put.has_value(); }, trio.executor.now() + 5'000'000));
    check_outcome_unknown(*put, errc::timeout);

    const NodeId next = trio.leader(old);
    REQUIRE(next != no_node);
    CHECK(trio.read(next, "k") == 7);  // the write reported unknown took effect
    trio.net.net().heal();
    trio.executor.run_for(200ms);
    const NodeId now = trio.leader();
    REQUIRE(now != no_node);
    CHECK(trio.read(now, "k") == 7);
  }

  TEST_CASE(
      "outcome: a state machine failing to apply committed entries → outcome_unknown; the "
      "write is applied after a restart") {
    Disk disk;
    ApplyFaultMachine sm;
    node::LocalHub hub;
    LogLines log;
    auto n = open_leader<ApplyFaultNode>(disk.engine, sm, disk.snapshots, hub, test_config(1, {1}),
                                         log.callbacks());
    REQUIRE(n->propose_wait(add_cmd("a", 1)));
    sm.fail = true;
    check_outcome_unknown(n->propose_wait(add_cmd("a", 5)), errc::io_error,
                          {"was committed, then applying it here failed", "/data/kv/data.mdb"});
    REQUIRE(eventually([&] { return !n->status().running; }));
    REQUIRE(n->status().failure);
    CHECK(contains(n->status().failure->detail, "state machine apply"));
    REQUIRE(eventually([&] { return log.get().size() == 1; }));
    CHECK(contains(log.get()[0], "/data/kv/data.mdb"));
    REQUIRE(n->stop());
    CHECK(value_after_restart(disk.engine, disk.snapshots, "a") == 6);
  }

  TEST_CASE(
      "fatal: a storage failure is logged once with its file, published in the status, "
      "counted, and carried by wait_ready") {
    SyncFaultLog::fail = false;
    LogLines log;
    auto cfg = engine::EngineConfig::single_node("");
    cfg.node = test_config(1, {1});
    cfg.callbacks.log = log.callbacks().log;
    auto started = engine::EmbeddedEngine<SyncFaultBackend>::start(cfg);
    REQUIRE_MESSAGE(started, (started ? "" : started.error().message()));
    auto& e = *started.value();
    REQUIRE(e.wait_ready(20s));
    auto kv = e.client();
    REQUIRE(kv.put("a", "1"));
    CHECK(e.node_metrics().fatal_stops.value() == 0);
    CHECK_FALSE(e.status().failure);

    SyncFaultLog::fail = true;
    check_outcome_unknown(kv.put("a", "2"), errc::io_error);

    const node::NodeStatus s = e.status();
    CHECK_FALSE(s.running);
    REQUIRE(s.failure);
    CHECK(s.failure->code == make_error_code(errc::io_error));
    CHECK(contains(s.failure->detail, "/data/raft/log-000001"));
    CHECK(contains(s.failure->detail, "log writer: syncing the log"));

    auto ready = e.wait_ready(1s);
    REQUIRE_FALSE(ready);
    CHECK(ready.error() == errc::stopped);
    CHECK(ready.error().cause == errc::io_error);
    CHECK(contains(ready.error().detail, "/data/raft/log-000001"));

    CHECK(e.node_metrics().fatal_stops.value() == 1);
    std::string prometheus;
    e.metrics().write_prometheus(prometheus);
    CHECK(contains(prometheus, "dengine_fatal_stops_total 1"));

    // Later requests, reads included, are refused naming the cause, and nothing logs again.
    auto later = kv.put("b", "1");
    REQUIRE_FALSE(later);
    CHECK(later.error() == errc::stopped);
    CHECK(later.error().cause == errc::io_error);
    auto read = kv.get("a");
    REQUIRE_FALSE(read);
    CHECK(read.error() == errc::stopped);
    REQUIRE(e.stop());
    SyncFaultLog::fail = false;
    const auto lines = log.get();
    REQUIRE(lines.size() == 1);
    CHECK(contains(lines[0], "fatal"));
    CHECK(contains(lines[0], "/data/raft/log-000001: fdatasync: Input/output error"));
    CHECK(e.node_metrics().fatal_stops.value() == 1);
  }

#ifdef DENGINE_HAVE_RAWFILE
  TEST_CASE("fatal: a KV store ahead of its log is refused naming both places and every cause") {
    using Backend = rawfile::Backend;
    using Replica =
        engine::KvReplica<Backend::storage_engine, Backend::kv_store, node::LocalTransport>;
    TempDir dir;
    const std::filesystem::path raft = dir.path() / "raft";
    const std::filesystem::path older = dir.path() / "raft-older";
    auto config = [&] {
      auto c = engine::EngineConfig::single_node(dir.path());
      c.node = test_config(1, {1});
      return c;
    };
    {
      auto e = engine::EmbeddedEngine<Backend>::start(config()).value();
      REQUIRE(e->wait_ready(20s));
      REQUIRE(e->client().put("k", "1"));
      REQUIRE(e->stop());
    }
    copy_dir(raft, older);
    {
      auto e = engine::EmbeddedEngine<Backend>::start(config()).value();
      REQUIRE(e->wait_ready(20s));
      for (int i = 0; i < 20; ++i) REQUIRE(e->client().put("k", std::to_string(i)));
      REQUIRE(e->stop());
    }
    copy_dir(older, raft);  // the log replaced by an older copy; the KV store kept its data

    auto storage = Backend::open_storage(raft, PersistenceMode::disk_first);
    REQUIRE(storage);
    auto store = Backend::open_kv_store(dir.path() / "kv", PersistenceMode::disk_first);
    REQUIRE(store);
    auto snapshots = node::FileSnapshotStore::open(dir.path() / "snap");
    REQUIRE(snapshots);
    node::LocalHub hub;
    auto r = Replica::open(config(), *storage.value(), *store.value(), snapshots.value(),
                           node::LocalTransport(hub, 1));
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::storage_corrupt);
    const std::string& d = r.error().detail;
    CAPTURE(d);
    CHECK(contains(d, raft.string()));
    CHECK(contains(d, (dir.path() / "kv").string()));
    CHECK(contains(d, "damaged or truncated"));
    CHECK(contains(d, "older copy"));
    CHECK(contains(d, "another data dir"));
    CHECK(contains(d, "MemFirst"));
  }
#endif
}

}  // namespace dengine::test
