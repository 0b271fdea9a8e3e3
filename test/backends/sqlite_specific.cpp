// What only the SQLite backend has: the schema version check, lock contention (SQLITE_BUSY),
// a size bound (SQLITE_FULL), damaged files, persistence modes, and the reader connection.

#include <doctest/doctest.h>

#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "backend_test_support.hpp"
#include "dengine/backends/sqlite.hpp"
#include "sqlite_raw_connection.hpp"

namespace {

using namespace dengine::test::backend;
using namespace std::chrono_literals;
using dengine::sqlite::Engine;
using dengine::sqlite::KvStore;
using dengine::sqlite::Options;

std::filesystem::path db_file(const TempDir& dir) { return dir.path() / "dengine.sqlite3"; }

/// Creates the database file of `dir` outside the backend (as another program or an older
/// dengine would), running `sql` in it.
void create_raw_file(const TempDir& dir, const std::string& sql) {
  RawConnection raw(db_file(dir), SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  REQUIRE(raw.exec(sql) == SQLITE_OK);
}

/// CHECKs that both stores refuse to open `dir` with `code` (the engine's error naming the file
/// and saying `what`), leaving its file as it was.
void check_refused_unchanged(const TempDir& dir, errc code, std::string_view what) {
  const std::string before = read_file(db_file(dir));
  auto engine = Engine::open(dir.path());
  CONF_REQUIRE_ERROR(code, engine);
  CHECK(contains(engine.error().detail, what));
  CHECK(contains(engine.error().detail, db_file(dir).string()));
  CONF_REQUIRE_ERROR(code, KvStore::open(dir.path()));
  CHECK(read_file(db_file(dir)) == before);
}

TEST_CASE("sqlite: a data dir of another format version fails with incompatible_version") {
  TempDir dir("dengine-sqlite-version-");
  {
    auto engine = CONF_VALUE(Engine::open(dir.path()));
    append_ok(engine, make_entries(1, 3, 1));
  }
  {
    RawConnection raw(db_file(dir));
    REQUIRE(raw.exec("PRAGMA user_version=99") == SQLITE_OK);
  }
  auto r = Engine::open(dir.path());
  CONF_REQUIRE_ERROR(errc::incompatible_version, r);
  CHECK(contains(r.error().detail, "format version 99"));
  CHECK(contains(r.error().detail, db_file(dir).string()));
  CONF_REQUIRE_ERROR(errc::incompatible_version, KvStore::open(dir.path()));
  CONF_REQUIRE_ERROR(errc::incompatible_version, dengine::sqlite::verify(dir.path()));
  {
    // Nothing was changed by the failed opens: restoring the mark makes the dir usable again.
    RawConnection raw(db_file(dir));
    REQUIRE(raw.exec("PRAGMA user_version=2") == SQLITE_OK);
  }
  auto engine = CONF_VALUE(Engine::open(dir.path()));
  CHECK(CONF_VALUE(engine.entries(1, 4, unbounded)) == make_entries(1, 3, 1));
}

TEST_CASE("sqlite: a format-1 data dir (before record checksums) is refused, unchanged") {
  // The schema dengine wrote before format 2, with a log entry, a KV row and its version row.
  TempDir dir("dengine-sqlite-format1-");
  create_raw_file(
      dir,
      "PRAGMA journal_mode=WAL;"
      "CREATE TABLE dengine_meta(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
      "INSERT INTO dengine_meta VALUES ('schema_version', 1), ('kv_applied_index', 3);"
      "CREATE TABLE raft_hard_state(id INTEGER PRIMARY KEY CHECK (id = 0), term INTEGER NOT "
      "NULL, vote INTEGER NOT NULL, commit_index INTEGER NOT NULL);"
      "CREATE TABLE raft_log(idx INTEGER PRIMARY KEY, term INTEGER NOT NULL, type INTEGER NOT "
      "NULL, data BLOB NOT NULL);"
      "INSERT INTO raft_log VALUES (1, 1, 0, x'6869');"
      "CREATE TABLE kv(key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;"
      "INSERT INTO kv VALUES (x'6b', x'76');");
  check_refused_unchanged(dir, errc::incompatible_version, "format version 1");
}

TEST_CASE("sqlite: an SQLite file that is not dengine's is refused with storage_corrupt") {
  TempDir dir("dengine-sqlite-foreign-");
  create_raw_file(dir, "CREATE TABLE t(x); INSERT INTO t VALUES (1);");
  check_refused_unchanged(dir, errc::storage_corrupt, "not a dengine");
}

TEST_CASE("sqlite: a write lock held by another connection fails writes with too_busy") {
  TempDir dir("dengine-sqlite-busy-");
  Options o;
  o.busy_timeout = 20ms;
  auto engine = CONF_VALUE(Engine::open(dir.path(), o));
  auto store = CONF_VALUE(KvStore::open(dir.path(), o));
  append_ok(engine, make_entries(1, 3, 1));

  RawConnection other(db_file(dir));
  REQUIRE(other.exec("BEGIN IMMEDIATE") == SQLITE_OK);  // holds the write lock

  auto r = engine.append(make_entries(4, 5, 1));
  CONF_REQUIRE_ERROR(errc::too_busy, r);
  CHECK(contains(r.error().detail, "locked"));
  CHECK(contains(r.error().detail, db_file(dir).string()));
  CHECK(contains(r.error().detail, "20 ms"));
  CHECK(engine.last_index() == 3);
  CONF_REQUIRE_ERROR(errc::too_busy, engine.save_hard_state(HardState{1, 1, 1}));
  WriteBatch b;
  b.put("k", "v");
  CONF_REQUIRE_ERROR(errc::too_busy, store.write(b, 1));
  CHECK(store.applied_index() == 0);
  // Opening only reads until the checks pass, so another connection's write lock does not
  // stop it.
  CONF_REQUIRE_OK(Engine::open(dir.path(), o));
  // Readers are not blocked by a writer (WAL).
  CHECK(CONF_VALUE(engine.entries(1, 4, unbounded)) == make_entries(1, 3, 1));
  CHECK_FALSE(CONF_VALUE(store.get("k")).has_value());

  REQUIRE(other.exec("ROLLBACK") == SQLITE_OK);
  append_ok(engine, make_entries(4, 5, 1));
  CONF_REQUIRE_OK(store.write(b, 1));
  CHECK(engine.last_index() == 5);
}

TEST_CASE(
    "sqlite: an engine and a kv store writing the same file from two threads both "
    "succeed") {
  // Two connections contend for one write lock; the busy timeout makes each wait its turn.
  TempDir dir("dengine-sqlite-contend-");
  auto engine = CONF_VALUE(Engine::open(dir.path()));
  auto store = CONF_VALUE(KvStore::open(dir.path()));
  constexpr LogIndex n = 100;
  std::atomic<bool> store_ok{true};
  std::thread other([&] {
    for (LogIndex i = 1; i <= n; ++i) {
      WriteBatch b;
      b.put("key" + std::to_string(i), std::to_string(i));
      if (!store.write(b, i)) store_ok = false;
    }
  });
  bool engine_ok = true;
  for (LogIndex i = 1; i <= n; ++i)
    if (!engine.append(make_entries(i, i, 1))) engine_ok = false;
  other.join();
  CHECK(engine_ok);
  CHECK(store_ok);
  CHECK(engine.last_index() == n);
  CHECK(store.applied_index() == n);
}

TEST_CASE("sqlite: a write past max_db_bytes fails with no_space and changes nothing") {
  TempDir dir("dengine-sqlite-full-");
  Options o;
  o.max_db_bytes = 256 << 10;
  auto engine = CONF_VALUE(Engine::open(dir.path(), o));
  append_ok(engine, make_entries(1, 3, 1));
  std::vector<Entry> big{Entry{1, 4, EntryType::normal, std::string(1 << 20, 'b')}};
  auto r = engine.append(std::span<const Entry>(big));
  CONF_REQUIRE_ERROR(errc::no_space, r);
  CHECK(contains(r.error().detail, db_file(dir).string()));
  CHECK(contains(r.error().detail, "max_db_bytes"));
  CHECK(engine.last_index() == 3);
  // What fits still goes in.
  append_ok(engine, make_entries(4, 6, 1));
  CHECK(CONF_VALUE(engine.entries(1, 7, unbounded)) == make_entries(1, 6, 1));

  auto store = CONF_VALUE(KvStore::open(dir.path(), o));
  WriteBatch b;
  b.put("small", "1");
  b.put("big", std::string(1 << 20, 'v'));
  CONF_REQUIRE_ERROR(errc::no_space, store.write(b, 1));
  CHECK(store.applied_index() == 0);
  CHECK_FALSE(CONF_VALUE(store.get("small")).has_value());
}

TEST_CASE("sqlite: a damaged database file fails with storage_corrupt naming it") {
  TempDir dir("dengine-sqlite-corrupt-");
  {
    auto engine = CONF_VALUE(Engine::open(dir.path()));
    append_ok(engine, make_entries(1, 10, 1));
  }  // the last connection to close checkpoints the WAL into the file and removes it
  SUBCASE("the header overwritten") {
    std::fstream f(db_file(dir), std::ios::in | std::ios::out | std::ios::binary);
    REQUIRE(f.good());
    f.write(std::string(100, '\xAB').data(), 100);
    REQUIRE(f.good());
  }
  SUBCASE("a file that never was SQLite") {
    std::filesystem::remove(db_file(dir));
    std::ofstream(db_file(dir)) << std::string(8192, 'z');
  }
  auto r = Engine::open(dir.path());
  CONF_REQUIRE_ERROR(errc::storage_corrupt, r);
  CHECK(contains(r.error().detail, db_file(dir).string()));
  CONF_REQUIRE_ERROR(errc::storage_corrupt, KvStore::open(dir.path()));
}

TEST_CASE("sqlite: a damaged log row is storage_corrupt naming its index") {
  TempDir dir("dengine-sqlite-row-");
  {
    auto engine = CONF_VALUE(Engine::open(dir.path()));
    append_ok(engine, make_entries(1, 10, 1));
  }
  SUBCASE("an entry's header changed: found at open, even without verify_on_open") {
    {
      RawConnection raw(db_file(dir));
      REQUIRE(raw.exec("UPDATE raft_log SET type = 1 WHERE idx = 5") == SQLITE_OK);
    }
    Options light;
    light.verify_on_open = false;
    for (const Options& o : {Options{}, light}) {
      auto r = Engine::open(dir.path(), o);
      CONF_REQUIRE_ERROR(errc::storage_corrupt, r);
      CHECK(contains(r.error().detail, "index 5"));
      CHECK(contains(r.error().detail, "checksum mismatch"));
    }
  }
  SUBCASE("an entry's data changed: found at open, or by the read without verify_on_open") {
    {
      RawConnection raw(db_file(dir));
      REQUIRE(raw.exec("UPDATE raft_log SET data = CAST('i5t9' AS BLOB) WHERE idx = 5") ==
              SQLITE_OK);
    }
    auto r = Engine::open(dir.path());
    CONF_REQUIRE_ERROR(errc::storage_corrupt, r);
    CHECK(contains(r.error().detail, "index 5 data"));
    Options light;
    light.verify_on_open = false;
    auto engine = CONF_VALUE(Engine::open(dir.path(), light));
    auto e = engine.entries(1, 11, unbounded);
    CONF_REQUIRE_ERROR(errc::storage_corrupt, e);
    CHECK(contains(e.error().detail, "index 5 data: checksum mismatch"));
    CHECK(contains(e.error().detail, db_file(dir).string()));
    CHECK(CONF_VALUE(engine.entries(1, 5, unbounded)) == make_entries(1, 4, 1));
    CHECK(CONF_VALUE(engine.term(5)) == 1);  // the header is intact; term() reads no data
  }
  SUBCASE("a gap is found at open") {
    {
      RawConnection raw(db_file(dir));
      REQUIRE(raw.exec("DELETE FROM raft_log WHERE idx = 5") == SQLITE_OK);
    }
    auto r = Engine::open(dir.path());
    CONF_REQUIRE_ERROR(errc::storage_corrupt, r);
    CHECK(contains(r.error().detail, "gap"));
    CHECK(contains(r.error().detail, "holds 9 rows, but 10 were written"));
  }
}

TEST_CASE("sqlite: a data dir that cannot hold the file fails with io_error naming it") {
  TempDir dir("dengine-sqlite-file-");
  check_open_on_a_file_fails<Engine>(dir);
  // /proc refuses new files even to root.
  auto p = KvStore::open("/proc/self");
  CONF_REQUIRE_ERROR(errc::io_error, p);
  CHECK(contains(p.error().detail, "dengine.sqlite3"));
}

TEST_CASE("sqlite: MemFirst sync() is not blocked by a reader holding an old snapshot") {
  // sync() fsyncs the WAL instead of checkpointing, so a long reader elsewhere (another
  // process, or a scan on another thread) cannot make it or the durable calls fail.
  TempDir dir("dengine-sqlite-pinned-");
  Options o;
  o.mode = PersistenceMode::mem_first;
  o.busy_timeout = 20ms;
  auto engine = CONF_VALUE(Engine::open(dir.path(), o));
  auto store = CONF_VALUE(KvStore::open(dir.path(), o));
  CHECK(engine.mode() == PersistenceMode::mem_first);
  CHECK(store.mode() == PersistenceMode::mem_first);
  append_ok(engine, make_entries(1, 2, 1));
  RawConnection reader(db_file(dir));
  REQUIRE(reader.exec("BEGIN; SELECT count(*) FROM raft_log;") == SQLITE_OK);
  append_ok(engine, make_entries(3, 4, 1));
  CONF_REQUIRE_OK(engine.sync());
  CONF_REQUIRE_OK(engine.save_hard_state(HardState{2, 1, 4}));
  CONF_REQUIRE_OK(engine.compact(SnapshotMeta{2, 1, {}}));
  WriteBatch b;
  b.put("k", "v");
  CONF_REQUIRE_OK(store.write(b, 4));
  CONF_REQUIRE_OK(store.sync());
  REQUIRE(reader.exec("COMMIT") == SQLITE_OK);
  CHECK(CONF_VALUE(engine.entries(3, 5, unbounded)) == make_entries(3, 4, 1));
}

TEST_CASE("sqlite engine: a reader thread sees whole batches while another thread appends") {
  TempDir dir("dengine-sqlite-mt-");
  auto engine = CONF_VALUE(Engine::open(dir.path()));
  CHECK(engine.mode() == PersistenceMode::disk_first);  // the default
  check_reads_see_whole_batches(engine, 100, /*sync_each=*/false);
}

TEST_CASE("sqlite kv store: keys are bytes, ordered as memcmp orders them") {
  TempDir dir("dengine-sqlite-bytes-");
  auto store = CONF_VALUE(KvStore::open(dir.path()));
  WriteBatch b;
  b.put(std::string("\xff", 1), "hi");
  b.put(std::string("a\0b", 3), "nul");
  b.put("a", "short");
  b.put("", "empty key");
  CONF_REQUIRE_OK(store.write(b, 1));
  std::vector<std::string> keys;
  CONF_REQUIRE_OK(store.scan("", "", [&](std::string_view k, std::string_view) {
    keys.emplace_back(k);
    return true;
  }));
  CHECK(keys == std::vector<std::string>{"", "a", std::string("a\0b", 3), std::string("\xff", 1)});
  CHECK(CONF_VALUE(store.get(std::string("a\0b", 3))) == std::optional<std::string>("nul"));
}

TEST_CASE("sqlite engine: an index past 2^63 - 1 fails with invalid_argument") {
  TempDir dir("dengine-sqlite-index-");
  auto engine = CONF_VALUE(Engine::open(dir.path()));
  const LogIndex huge = LogIndex{1} << 63;
  auto r = engine.reset(SnapshotMeta{huge, 1, {}});
  CONF_REQUIRE_ERROR(errc::invalid_argument, r);
  CHECK(contains(r.error().detail, "2^63"));
  CHECK(engine.last_index() == 0);
}

TEST_CASE("sqlite: SQLite result codes map to dengine errors naming the file") {
  using dengine::sqlite::make_error;
  const std::filesystem::path file = "/data/node1/dengine.sqlite3";
  struct Case {
    int rc;
    int sys_errno;
    errc code;
  };
  for (Case c :
       {Case{SQLITE_BUSY, 0, errc::too_busy}, Case{SQLITE_LOCKED, 0, errc::too_busy},
        Case{SQLITE_FULL, 0, errc::no_space}, Case{SQLITE_IOERR_WRITE, ENOSPC, errc::no_space},
        Case{SQLITE_IOERR_FSYNC, EIO, errc::io_error},
        Case{SQLITE_CORRUPT, 0, errc::storage_corrupt},
        Case{SQLITE_NOTADB, 0, errc::storage_corrupt}, Case{SQLITE_TOOBIG, 0, errc::too_large},
        Case{SQLITE_CANTOPEN, 0, errc::io_error}, Case{SQLITE_READONLY, 0, errc::io_error}}) {
    CAPTURE(c.rc);
    const dengine::error e = make_error(c.rc, "COMMIT", file, nullptr, 5000ms, c.sys_errno);
    CHECK(e == c.code);
    CHECK(contains(e.detail, "COMMIT"));
    CHECK(contains(e.detail, file.string()));
  }
}

TEST_CASE("sqlite: invalid options fail with invalid_argument") {
  TempDir dir("dengine-sqlite-options-");
  Options o;
  o.busy_timeout = -1ms;
  CONF_REQUIRE_ERROR(errc::invalid_argument, Engine::open(dir.path(), o));
}

}  // namespace
