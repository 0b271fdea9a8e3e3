// The memory backend: the shared conformance suites (the KV machine's over its store too), then
// what only it has (crash simulation, counters, thread safety).

#include <doctest/doctest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "backend_test_support.hpp"
#include "dengine/backends/memory.hpp"
#include "dengine/conformance/kv_store.hpp"
#include "dengine/conformance/state_machine.hpp"
#include "dengine/conformance/storage.hpp"
#include "kv_machine_fixture.hpp"

namespace {

/// A restart of the memory engine is a crash: only the durable image survives, the most that a
/// clean restart of a disk engine may lose.
struct MemoryLogFixture {
  using engine_type = dengine::memory::Engine;
  engine_type& engine() { return engine_; }
  void reopen() { engine_.crash(); }
  engine_type engine_;
};

/// The memory store's writes are durable on return; the object outlives a restart.
struct MemoryKvFixture {
  using store_type = dengine::memory::KvStore;
  store_type& store() { return store_; }
  void reopen() {
    // Move out and back in, so that a restart at least exercises the move path.
    store_type moved(std::move(store_));
    store_ = std::move(moved);
  }
  store_type store_;
};

/// The KV machine over the memory store (whose contents outlive a restart).
struct MemoryKvMachineFixture : dengine::test::KvMachineFixture<MemoryKvFixture> {};

}  // namespace

DENGINE_STORAGE_CONFORMANCE(MemoryLogFixture);
DENGINE_KV_CONFORMANCE(MemoryKvFixture);
DENGINE_STATE_MACHINE_CONFORMANCE(MemoryKvMachineFixture);

namespace {

using namespace dengine::test::backend;
using dengine::conformance::read_log;

TEST_CASE("memory engine: crash loses exactly what was not synced") {
  dengine::memory::Engine e;
  append_ok(e, make_entries(1, 10, 1));
  CHECK(e.has_unsynced());
  CHECK(e.durable_last_index() == 0);
  CONF_REQUIRE_OK(e.sync());
  CHECK_FALSE(e.has_unsynced());
  CHECK(e.durable_last_index() == 10);

  SUBCASE("appends after the sync are lost") {
    append_ok(e, make_entries(11, 15, 1));
    e.crash();
    CHECK(e.last_index() == 10);
    CHECK(read_log(e) == make_entries(1, 10, 1));
  }
  SUBCASE("an unsynced truncation is undone: the old suffix is back") {
    append_ok(e, make_entries(4, 5, 2));
    CHECK(e.last_index() == 5);
    e.crash();
    CHECK(read_log(e) == make_entries(1, 10, 1));
  }
  SUBCASE("an unsynced reset is undone") {
    CONF_REQUIRE_OK(e.reset(SnapshotMeta{100, 5, {}}));
    e.crash();
    CHECK(e.first_index() == 1);
    CHECK(CONF_VALUE(e.load()).snapshot == SnapshotMeta{});
    CHECK(read_log(e) == make_entries(1, 10, 1));
  }
  SUBCASE("the hard state survives without a sync") {
    CONF_REQUIRE_OK(e.save_hard_state(HardState{7, 3, 9}));
    e.crash();
    CHECK(CONF_VALUE(e.load()).hard_state == HardState{7, 3, 9});
  }
  SUBCASE("several truncations and appends, then a sync, then more: the sync point survives") {
    append_ok(e, make_entries(11, 20, 1));
    append_ok(e, make_entries(6, 7, 2));
    append_ok(e, make_entries(8, 12, 3));
    CONF_REQUIRE_OK(e.sync());
    append_ok(e, make_entries(2, 3, 4));
    e.crash();
    auto expected = make_entries(1, 5, 1);
    for (auto& x : make_entries(6, 7, 2)) expected.push_back(x);
    for (auto& x : make_entries(8, 12, 3)) expected.push_back(x);
    CHECK(read_log(e) == expected);
  }
  CHECK_FALSE(e.has_unsynced());
  CHECK(e.counters().crashes == 1);
}

TEST_CASE("memory engine: compaction is durable on return") {
  dengine::memory::Engine e;
  append_ok(e, make_entries(1, 10, 1));
  CONF_REQUIRE_OK(e.sync());

  SUBCASE("within the synced log") {
    append_ok(e, make_entries(11, 12, 1));
    CONF_REQUIRE_OK(e.compact(SnapshotMeta{5, 1, {}}));
    e.crash();
    CHECK(e.first_index() == 6);
    CHECK(e.last_index() == 10);  // the unsynced appends are still lost
    CHECK(CONF_VALUE(e.term(5)) == 1);
  }
  SUBCASE("past the synced end: the log restarts after the compaction point") {
    append_ok(e, make_entries(11, 20, 2));
    CONF_REQUIRE_OK(e.compact(SnapshotMeta{15, 2, {}}));
    e.crash();
    CHECK(e.first_index() == 16);
    CHECK(e.last_index() == 15);
    CHECK(CONF_VALUE(e.term(15)) == 2);
  }
  SUBCASE("after an unsynced reset, which it makes durable first") {
    CONF_REQUIRE_OK(e.reset(SnapshotMeta{50, 3, {}}));
    append_ok(e, make_entries(51, 55, 3));
    CONF_REQUIRE_OK(e.compact(SnapshotMeta{52, 3, {}}));
    e.crash();
    CHECK(e.first_index() == 53);
    CHECK(read_log(e) == make_entries(53, 55, 3));
  }
  SUBCASE("then an unsynced truncation past it is still undone") {
    CONF_REQUIRE_OK(e.compact(SnapshotMeta{3, 1, {}}));
    append_ok(e, make_entries(4, 4, 2));
    e.crash();
    CHECK(read_log(e) == make_entries(4, 10, 1));
  }
}

TEST_CASE("memory engine: counters") {
  dengine::memory::Engine e;
  append_ok(e, make_entries(1, 3, 1));
  append_ok(e, make_entries(4, 6, 1));
  CONF_REQUIRE_OK(e.sync());
  CONF_REQUIRE_OK(e.save_hard_state(HardState{1, 1, 0}));
  CONF_REQUIRE_OK(e.compact(SnapshotMeta{2, 1, {}}));
  CONF_REQUIRE_OK(e.reset(SnapshotMeta{9, 1, {}}));
  CONF_REQUIRE_ERROR(errc::invalid_argument, e.append(std::span<const Entry>()));  // not counted
  CHECK(e.append_count() == 2);
  CHECK(e.sync_count() == 1);
  CHECK(e.hard_state_save_count() == 1);
  CHECK(e.counters().compactions == 1);
  CHECK(e.counters().resets == 1);
  CHECK(e.hard_state() == HardState{1, 1, 0});
}

TEST_CASE("memory engine: moving keeps both images") {
  dengine::memory::Engine a;
  append_ok(a, make_entries(1, 4, 1));
  CONF_REQUIRE_OK(a.sync());
  append_ok(a, make_entries(5, 6, 1));
  dengine::memory::Engine b(std::move(a));
  CHECK(b.last_index() == 6);
  CHECK(b.durable_last_index() == 4);
  dengine::memory::Engine c;
  c = std::move(b);
  c.crash();
  CHECK(read_log(c) == make_entries(1, 4, 1));
}

TEST_CASE("memory engine: a reader thread sees a consistent log while another appends") {
  dengine::memory::Engine e;
  check_reads_see_whole_batches(e, 300, /*sync_each=*/true);
}

TEST_CASE("memory kv store: test hooks and moves") {
  dengine::memory::KvStore s;
  dengine::WriteBatch b;
  b.put("a", "1");
  b.put("b", "2");
  CONF_REQUIRE_OK(s.write(b, 1));
  CHECK(s.size() == 2);
  CHECK(s.write_count() == 1);
  dengine::memory::KvStore moved(std::move(s));
  CHECK(moved.size() == 2);
  CHECK(moved.applied_index() == 1);
}

}  // namespace
