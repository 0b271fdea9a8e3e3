// The node's parts on their own: metrics, the snapshot stores, config validation, Node::open's
// recovery and its errors, completions, the work queue.

#include <doctest/doctest.h>

#include <stdlib.h>

#include <boost/asio/use_future.hpp>

#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <string_view>

#include "harness.hpp"

namespace dengine::test {
namespace {

/// A fresh directory under the system temp dir, removed at the end of the scope.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "dengine-node-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

std::shared_ptr<const Snapshot> sample_snapshot() {
  Snapshot s;
  s.meta = SnapshotMeta{42, 7, Membership{{1, 2, 3}, {9}}};
  s.data = std::string("image\0bytes", 11);
  return std::make_shared<const Snapshot>(std::move(s));
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void write_file(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
}

using TestNode = ThreadedNode;

TEST_SUITE("integration") {
  TEST_CASE("metrics: histogram buckets and Prometheus text") {
    node::Registry r;
    auto& c = r.counter("c_total", "a counter");
    auto& g = r.gauge("g", "a gauge");
    auto& h = r.histogram("lat_seconds", "a latency");
    c.add(3);
    g.set(5);
    g.add(-7);
    h.record_us(3);
    h.record_us(1500000);
    std::string out;
    r.write_prometheus(out);
    CHECK(out.find("# TYPE c_total counter\nc_total 3\n") != std::string::npos);
    CHECK(out.find("# TYPE g gauge\ng -2\n") != std::string::npos);
    CHECK(out.find("lat_seconds_bucket{le=\"0.000005\"} 1\n") != std::string::npos);
    CHECK(out.find("lat_seconds_bucket{le=\"1.0\"} 1\n") != std::string::npos);
    CHECK(out.find("lat_seconds_bucket{le=\"2.5\"} 2\n") != std::string::npos);
    CHECK(out.find("lat_seconds_bucket{le=\"+Inf\"} 2\n") != std::string::npos);
    CHECK(out.find("lat_seconds_count 2\n") != std::string::npos);
    CHECK(out.find("lat_seconds_sum 1.500003\n") != std::string::npos);
    CHECK(h.quantile_upper_bound_us(0.5) == 5);
    CHECK(h.quantile_upper_bound_us(1.0) == 2500000);
    CHECK(r.find_counter("c_total") == &c);
    CHECK(r.find_gauge("nope") == nullptr);
  }

  TEST_CASE("snapshot store: the file store round-trips and replaces atomically") {
    TempDir dir;
    auto store = node::FileSnapshotStore::open(dir.path() / "snap");
    REQUIRE(store);
    auto empty = store.value().load();
    REQUIRE(empty);
    CHECK(empty.value() == nullptr);

    REQUIRE(store.value().save(sample_snapshot()));
    auto loaded = store.value().load();
    REQUIRE(loaded);
    REQUIRE(loaded.value());
    CHECK(*loaded.value() == *sample_snapshot());

    Snapshot newer = *sample_snapshot();
    newer.meta.index = 50;
    newer.data = "newer";
    REQUIRE(store.value().save(std::make_shared<const Snapshot>(newer)));
    auto again = store.value().load();
    REQUIRE(again);
    CHECK(*again.value() == newer);
    CHECK_FALSE(std::filesystem::exists(dir.path() / "snap" / "snapshot.tmp"));
  }

  TEST_CASE("snapshot store: corrupt and foreign files are refused, naming the file") {
    TempDir dir;
    auto store = node::FileSnapshotStore::open(dir.path());
    REQUIRE(store);
    REQUIRE(store.value().save(sample_snapshot()));
    const auto path = store.value().path();
    const std::string good = read_file(path);

    std::string flipped = good;
    flipped[30] ^= 0x01;
    write_file(path, flipped);
    auto r = store.value().load();
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::storage_corrupt);
    CHECK(r.error().detail.find(path.string()) != std::string::npos);
    CHECK(r.error().detail.find("checksum") != std::string::npos);

    write_file(path, good.substr(0, good.size() - 3));  // torn
    r = store.value().load();
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::storage_corrupt);

    write_file(path, "not a snapshot at all");
    r = store.value().load();
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::storage_corrupt);
    CHECK(r.error().detail.find("bad magic") != std::string::npos);

    std::string future = good;
    future[8] = 3;  // format version 3, which this build does not know
    write_file(path, future);
    r = store.value().load();
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::incompatible_version);

    auto bad_dir = node::FileSnapshotStore::open(path / "sub");  // a file where a dir should be
    REQUIRE_FALSE(bad_dir);
    CHECK(bad_dir.error() == errc::io_error);
  }

  TEST_CASE("node config: validate names the bad field") {
    auto check_bad = [](const node::NodeConfig& c, const std::string& field) {
      auto r = c.validate();
      REQUIRE_FALSE(r);
      CHECK(r.error() == errc::invalid_argument);
      CHECK_MESSAGE(r.error().detail.find(field) != std::string::npos, r.error().detail);
    };
    node::NodeConfig ok = test_config(1, {1});
    CHECK(ok.validate());
    auto c = ok;
    c.tick_period = std::chrono::microseconds(0);
    check_bad(c, "tick_period");
    c = ok;
    c.request_timeout = std::chrono::microseconds(-1);
    check_bad(c, "request_timeout");
    c = ok;
    c.max_pending_proposals = 0;
    check_bad(c, "max_pending_proposals");
    c = ok;
    c.max_pending_reads = 0;
    check_bad(c, "max_pending_reads");
    c = ok;
    c.max_inflight_persist = 0;
    check_bad(c, "max_inflight_persist");
    c = ok;
    c.initial_members = {1, 0};
    check_bad(c, "initial_members");
    c = ok;
    c.initial_addresses = {{2, "127.0.0.1:2"}};  // not a founding member
    check_bad(c, "initial_addresses names node 2");
    c = ok;
    c.initial_addresses = {{1, ""}};
    check_bad(c, "initial_addresses: the address of node 1");
    c = ok;
    c.initial_members = {1, 2};
    c.initial_addresses = {{1, "127.0.0.1:7"}, {2, "127.0.0.1:7"}};
    check_bad(c, "the same address");
    c = ok;
    c.raft.id = 0;
    check_bad(c, "id");
  }

  TEST_CASE("node open: errors name what is wrong") {
    node::LocalHub hub;
    Disk disk;  // fresh in every SUBCASE (doctest runs the case from the top for each)
    CounterMachine sm;
    // Opening a node over `disk` and `sm` fails with `code`, its detail naming `what`.
    auto check_open_fails = [&](const node::NodeConfig& cfg, errc code, std::string_view what) {
      auto r = TestNode::open(cfg, disk.engine, sm, disk.snapshots, node::LocalTransport(hub, 1));
      REQUIRE_FALSE(r);
      CHECK(r.error() == code);
      CHECK(r.error().detail.find(what) != std::string::npos);
    };
    SUBCASE("fresh storage without initial members") {
      check_open_fails(test_config(1, {}), errc::invalid_argument, "initial_members");
    }
    SUBCASE("invalid config") {
      auto cfg = test_config(1, {1});
      cfg.raft.election_ticks = 2;
      check_open_fails(cfg, errc::invalid_argument, "election_ticks");
    }
    SUBCASE("a compacted log without its snapshot image") {
      REQUIRE(disk.engine.reset(SnapshotMeta{0, 0, Membership{{1}, {}}}));
      REQUIRE(disk.engine.append(
          std::vector<Entry>{{1, 1, EntryType::noop, ""}, {1, 2, EntryType::normal, "x"}}));
      REQUIRE(disk.engine.sync());
      REQUIRE(disk.engine.compact(SnapshotMeta{2, 1, Membership{{1}, {}}}));
      check_open_fails(test_config(1, {1}), errc::storage_corrupt, "compacted through index 2");
    }
    SUBCASE("a state machine ahead of the log") {
      std::vector<CounterResponse> out;
      std::vector<Entry> entries{{1, 1, EntryType::normal, add_cmd("x", 1)}};
      REQUIRE(sm.apply(entries, out));
      check_open_fails(test_config(1, {1}), errc::storage_corrupt, "applied index 1");
    }
    SUBCASE("the founding addresses become the first configuration's") {
      auto cfg = test_config(1, {1});
      cfg.initial_addresses = {{1, "127.0.0.1:2380"}};
      auto n = TestNode::open(cfg, disk.engine, sm, disk.snapshots, node::LocalTransport(hub, 1));
      REQUIRE(n);
      // The change's result is the membership after it: the founder's address from the boot
      // configuration, the learner's from the change.
      auto m = n.value()->change_membership_wait(
          raft::ConfigChange{raft::ConfigChange::Kind::add_learner, 2, "127.0.0.1:2381"});
      REQUIRE(m);
      CHECK(m.value().address_of(1) == "127.0.0.1:2380");
      CHECK(m.value().address_of(2) == "127.0.0.1:2381");
    }
    SUBCASE("a SimClock without an executor") {
      sim::SimExecutor ex;
      sim::SimNetwork net(ex, 1);
      auto r = SimNode::open(test_config(1, {1}), disk.engine, sm, disk.snapshots,
                             sim::SimTransport(net, 1), sim::SimClock{});
      REQUIRE_FALSE(r);
      CHECK(r.error() == errc::invalid_argument);
    }
  }

  TEST_CASE("node open: completes a compaction or a snapshot install interrupted by a crash") {
    // The image is saved before the log is compacted or reset: a crash in between leaves the
    // image ahead of the log's compaction point, which open() repairs.
    auto image_at = [](LogIndex index, Term term, std::int64_t value) {
      CounterMachine m;
      std::vector<CounterResponse> out;
      std::vector<Entry> entries;
      for (LogIndex i = 1; i <= index; ++i)
        entries.push_back(
            {term, i, EntryType::normal, i == index ? set_cmd("v", value) : std::string("noop")});
      REQUIRE(m.apply(entries, out));
      StringSnapshotSink sink;
      REQUIRE(m.snapshot(sink));
      return std::make_shared<const Snapshot>(
          Snapshot{SnapshotMeta{index, term, Membership{{1}, {}}}, sink.data});
    };
    node::LocalHub hub;
    Disk disk;  // fresh in every SUBCASE (doctest runs the case from the top for each)
    CounterMachine sm;
    REQUIRE(disk.engine.reset(SnapshotMeta{0, 0, Membership{{1}, {}}}));
    // Opens a node over `disk` and `sm`, which must succeed: open() repairs what the crash left.
    auto open_node = [&] {
      auto r = TestNode::open(test_config(1, {1}), disk.engine, sm, disk.snapshots,
                              node::LocalTransport(hub, 1));
      REQUIRE(r);
      return std::move(r).value();
    };
    SUBCASE("compaction: the log holds the image's last entry") {
      std::vector<Entry> log;
      for (LogIndex i = 1; i <= 5; ++i)
        log.push_back({1, i, EntryType::normal, i == 3 ? set_cmd("v", 3) : add_cmd("w", 1)});
      REQUIRE(disk.engine.append(log));
      REQUIRE(disk.engine.sync());
      REQUIRE(disk.engine.save_hard_state({1, 1, 5}));
      REQUIRE(disk.snapshots.save(image_at(3, 1, 3)));
      auto n = open_node();
      CHECK(disk.engine.first_index() == 4);  // compacted to the image
      CHECK(sm.restores() == 1);
      auto v = n->read_wait(node::ReadConsistency::linearizable, [](const CounterMachine& m) {
        return std::make_pair(m.get("v"), m.get("w"));
      });
      REQUIRE(v);
      CHECK(v.value() ==
            std::make_pair<std::int64_t, std::int64_t>(3, 2));  // image, then entries 4 and 5
    }
    SUBCASE("install: the log does not hold the image's last entry") {
      REQUIRE(disk.engine.append(std::vector<Entry>{{1, 1, EntryType::normal, add_cmd("w", 1)}}));
      REQUIRE(disk.engine.sync());
      REQUIRE(disk.engine.save_hard_state({2, 1, 1}));
      REQUIRE(disk.snapshots.save(image_at(10, 2, 10)));
      auto n = open_node();
      CHECK(disk.engine.first_index() == 11);  // reset to the image
      auto v = n->read_wait(node::ReadConsistency::linearizable,
                            [](const CounterMachine& m) { return m.get("v"); });
      REQUIRE(v);
      CHECK(v.value() == 10);
    }
  }

  TEST_CASE("completion: a dropped request fails with stopped and releases its slot") {
    std::atomic<std::size_t> pending{1};
    node::Registry reg;
    node::Gauge& gauge = reg.gauge("p", "pending");
    node::Counter& failures = reg.counter("f_total", "failures");
    gauge.set(1);
    std::future<result<int>> f;
    {
      std::promise<result<int>> p;
      f = p.get_future();
      node::Completion<int> c(
          [p = std::move(p)](result<int> r) mutable { p.set_value(std::move(r)); },
          node::Ticket{&pending, &gauge, &failures});
      CHECK(static_cast<bool>(c));
    }  // destroyed without being completed
    auto r = f.get();
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::stopped);
    CHECK(pending.load() == 0);
    CHECK(gauge.value() == 0);
    CHECK(failures.value() == 1);
  }

  TEST_CASE("work queue: a consumer takes everything queued at once; close drains") {
    node::WorkQueue<int> q;
    std::vector<int> in{1, 2, 3};
    REQUIRE(q.push(in));
    CHECK(in.empty());
    std::vector<int> more{4};
    REQUIRE(q.push(more));
    std::vector<int> out;
    REQUIRE(q.pop_all(out));
    CHECK(out == std::vector<int>{1, 2, 3, 4});
    std::vector<int> last{5};
    REQUIRE(q.push(last));
    q.close();
    std::vector<int> late{6};
    CHECK_FALSE(q.push(late));
    CHECK(late == std::vector<int>{6});
    out.clear();
    REQUIRE(q.pop_all(out));
    CHECK(out == std::vector<int>{5});
    out.clear();
    CHECK_FALSE(q.pop_all(out));
  }
}

}  // namespace
}  // namespace dengine::test
