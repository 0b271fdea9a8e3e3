// What only the LMDB backend has: map growth, stale reader slots, the shared environment,
// persistence modes, and clear errors for unusable dirs and damaged files.

#include <doctest/doctest.h>

#include <lmdb.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <fstream>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "backend_test_support.hpp"
#include "dengine/backends/lmdb.hpp"

namespace {

using namespace dengine::test::backend;
using dengine::lmdb::Engine;
using dengine::lmdb::KvStore;
using dengine::lmdb::Options;

Options tiny_map(PersistenceMode mode = PersistenceMode::disk_first) {
  Options o;
  o.mode = mode;
  o.initial_map_size = std::size_t{64} << 10;
  return o;
}

/// Writes `bytes` bytes at `key` in one batch recording applied index `index`, and CHECKs that
/// the value reads back whole (the map must have grown to hold it).
void write_big_value(KvStore& store, const std::string& key, std::size_t bytes, LogIndex index) {
  WriteBatch batch;
  batch.put(key, std::string(bytes, 'v'));
  CONF_REQUIRE_OK(store.write(batch, index));
  CHECK(CONF_VALUE(store.get(key))->size() == bytes);
}

std::vector<Entry> big_entries(LogIndex from, LogIndex to, std::size_t bytes) {
  std::vector<Entry> out;
  for (LogIndex i = from; i <= to; ++i)
    out.push_back(
        Entry{1, i, EntryType::normal, std::string(bytes, static_cast<char>('a' + i % 26))});
  return out;
}

TEST_CASE("lmdb engine: the map grows when large entries fill a tiny one") {
  TempDir dir("dengine-lmdb-grow-");
  const auto log = big_entries(1, 24, 200 << 10);  // ~4.8 MiB through a 64 KiB map
  {
    auto engine = CONF_VALUE(Engine::open(dir.path(), tiny_map()));
    const std::size_t initial = engine.environment().map_size();
    // Single-entry batches and one batch of many: growth must work at either size.
    for (std::size_t k = 0; k < 8; ++k)
      CONF_REQUIRE_OK(engine.append(std::span<const Entry>(&log[k], 1)));
    CONF_REQUIRE_OK(engine.append(std::span<const Entry>(log).subspan(8)));
    CHECK(engine.environment().map_growths() > 0);
    CHECK(engine.environment().map_size() > initial);
    CHECK(engine.last_index() == 24);
    CHECK(CONF_VALUE(engine.entries(1, 25, unbounded)) == log);
  }
  // Reopened with the same tiny option, the environment adopts the larger file's map.
  auto engine = CONF_VALUE(Engine::open(dir.path(), tiny_map()));
  CHECK(CONF_VALUE(engine.entries(1, 25, unbounded)) == log);
  auto store = CONF_VALUE(KvStore::open(dir.path(), tiny_map()));
  write_big_value(store, "big", std::size_t{3} << 20, 1);
}

TEST_CASE("lmdb engine: a write past max_map_size fails with no_space and changes nothing") {
  TempDir dir("dengine-lmdb-full-");
  Options o = tiny_map();
  o.max_map_size = std::size_t{256} << 10;
  auto engine = CONF_VALUE(Engine::open(dir.path(), o));
  append_ok(engine, make_entries(1, 3, 1));
  auto r = engine.append(big_entries(4, 4, 1 << 20));
  CONF_REQUIRE_ERROR(errc::no_space, r);
  CHECK(contains(r.error().detail, "max_map_size"));
  CHECK(contains(r.error().detail, dir.path().string()));
  CHECK(engine.last_index() == 3);
  // The engine stays usable for what fits.
  append_ok(engine, make_entries(4, 6, 1));
  CHECK(CONF_VALUE(engine.entries(1, 7, unbounded)) == make_entries(1, 6, 1));
}

TEST_CASE("lmdb engine: readers on another thread run while the map grows") {
  // Growing the map needs every transaction of the process drained; readers must neither see a
  // torn log nor deadlock the growth. Each batch i is one 64 KiB entry with term i.
  TempDir dir("dengine-lmdb-grow-mt-");
  auto engine = CONF_VALUE(Engine::open(dir.path(), tiny_map()));
  constexpr LogIndex batches = 64;
  std::atomic<bool> done{false};
  std::atomic<bool> writer_ok{true};
  std::thread writer([&] {
    for (LogIndex b = 1; b <= batches; ++b) {
      std::vector<Entry> batch{Entry{b, b, EntryType::normal, std::string(64 << 10, 'w')}};
      if (!engine.append(std::span<const Entry>(batch))) {
        writer_ok = false;
        break;
      }
    }
    done = true;
  });
  bool consistent = true;
  std::size_t reads = 0;
  while (!done) {
    const LogIndex last = engine.last_index();
    if (last == 0) continue;
    auto got = engine.entries(1, last + 1, unbounded);
    if (!got || got.value().size() != last) {
      consistent = false;
      continue;
    }
    for (const Entry& e : got.value())
      if (e.term != e.index || e.data.size() != std::size_t{64} << 10) consistent = false;
    ++reads;
  }
  writer.join();
  CHECK(writer_ok);
  CHECK(consistent);
  CHECK(engine.last_index() == batches);
  CHECK(engine.environment().map_growths() > 0);
  MESSAGE("reads during growth: " << reads);
}

TEST_CASE(
    "lmdb kv store: a write from inside a scan visitor that needs map growth fails, "
    "never deadlocks") {
  TempDir dir("dengine-lmdb-visitor-");
  auto store = CONF_VALUE(KvStore::open(dir.path(), tiny_map()));
  WriteBatch first;
  first.put("a", "1");
  CONF_REQUIRE_OK(store.write(first, 1));
  dengine::result<void> inner = dengine::success();
  CONF_REQUIRE_OK(store.scan("", "", [&](std::string_view, std::string_view) {
    WriteBatch big;
    big.put("b", std::string(1 << 20, 'x'));  // cannot fit in 64 KiB
    inner = store.write(big, 2);
    return false;
  }));
  CONF_REQUIRE_ERROR(errc::too_busy, inner);
  CHECK(contains(inner.error().detail, "scan visitor"));
  CHECK(store.applied_index() == 1);
  // Outside the scan a write of the same size grows the map and succeeds.
  write_big_value(store, "b", std::size_t{1} << 20, 2);
}

TEST_CASE("lmdb: stale reader slots left by dead processes are cleared at open") {
  TempDir dir("dengine-lmdb-stale-");
  { CONF_VALUE(Engine::open(dir.path())); }  // create the environment, then close it
  const std::string path = dir.path().string();
  auto open_raw = [&](MDB_env** env) {
    if (mdb_env_create(env) != 0) return false;
    mdb_env_set_maxdbs(*env, 3);
    return mdb_env_open(*env, path.c_str(), MDB_NOTLS, 0644) == 0;
  };
  // Process A keeps the environment open, so the lock file (and its reader table) is not reset
  // when the next process opens it; process B starts a read transaction and dies inside it.
  int hold[2];
  int ready[2];
  REQUIRE(pipe(hold) == 0);
  REQUIRE(pipe(ready) == 0);
  const pid_t a = fork();
  REQUIRE(a >= 0);
  if (a == 0) {
    close(hold[1]);
    close(ready[0]);
    MDB_env* env = nullptr;
    char c = open_raw(&env) ? 'y' : 'n';
    (void)!write(ready[1], &c, 1);
    (void)!read(hold[0], &c, 1);  // until the parent closes its end
    _exit(0);
  }
  close(hold[0]);
  close(ready[1]);
  char c = 0;
  REQUIRE(read(ready[0], &c, 1) == 1);
  close(ready[0]);
  REQUIRE(c == 'y');
  const pid_t b = fork();
  REQUIRE(b >= 0);
  if (b == 0) {
    MDB_env* env = nullptr;
    MDB_txn* txn = nullptr;
    if (!open_raw(&env) || mdb_txn_begin(env, nullptr, MDB_RDONLY, &txn) != 0) _exit(1);
    _exit(0);  // dies holding its reader slot
  }
  int status = 0;
  REQUIRE(waitpid(b, &status, 0) == b);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);

  {
    auto engine = CONF_VALUE(Engine::open(dir.path()));
    CHECK(engine.environment().stale_readers_cleared() == 1);
    append_ok(engine, make_entries(1, 2, 1));
  }
  close(hold[1]);
  REQUIRE(waitpid(a, &status, 0) == a);
}

TEST_CASE("lmdb: an engine and a kv store on one dir share one environment") {
  TempDir dir("dengine-lmdb-shared-");
  Options mem;
  mem.mode = PersistenceMode::mem_first;
  auto engine = CONF_VALUE(Engine::open(dir.path(), mem));
  auto store = CONF_VALUE(KvStore::open(dir.path()));  // DiskFirst: each handle keeps its mode
  CHECK(engine.mode() == PersistenceMode::mem_first);
  CHECK(store.mode() == PersistenceMode::disk_first);
  CONF_REQUIRE_OK(store.sync());
  CHECK(&engine.environment() == &store.environment());
  append_ok(engine, make_entries(1, 5, 1));
  WriteBatch b;
  b.put("x", "1");
  CONF_REQUIRE_OK(store.write(b, 5));
  CONF_REQUIRE_OK(engine.sync());
  {
    Engine moved(std::move(engine));  // moving keeps the environment open
    CHECK(moved.last_index() == 5);
  }
  // The engine is gone; the store still holds the environment.
  CHECK(CONF_VALUE(store.get("x")) == std::optional<std::string>("1"));
  auto again = CONF_VALUE(Engine::open(dir.path()));
  CHECK(&again.environment() == &store.environment());
  CHECK(again.last_index() == 5);
}

TEST_CASE("lmdb kv store: a key longer than LMDB allows fails with too_large naming the limit") {
  TempDir dir("dengine-lmdb-key-");
  auto store = CONF_VALUE(KvStore::open(dir.path()));
  CHECK(store.max_key_size() == static_cast<std::size_t>(511 - 1));
  WriteBatch b;
  b.put("ok", "1");
  b.put(std::string(store.max_key_size() + 1, 'k'), "2");
  auto r = store.write(b, 1);
  CONF_REQUIRE_ERROR(errc::too_large, r);
  CHECK(contains(r.error().detail, std::to_string(store.max_key_size())));
  CHECK(store.applied_index() == 0);
  CHECK_FALSE(CONF_VALUE(store.get("ok")).has_value());
  // The longest allowed key works, and a lookup of a longer one is simply absent.
  WriteBatch fits;
  fits.put(std::string(store.max_key_size(), 'k'), "3");
  CONF_REQUIRE_OK(store.write(fits, 2));
  CHECK(CONF_VALUE(store.get(std::string(store.max_key_size(), 'k'))) ==
        std::optional<std::string>("3"));
  CHECK_FALSE(CONF_VALUE(store.get(std::string(store.max_key_size() + 1, 'k'))).has_value());
  // A scan bound past the limit still orders correctly.
  std::size_t seen = 0;
  CONF_REQUIRE_OK(store.scan(std::string(store.max_key_size() + 5, 'a'), "",
                             [&](auto, auto) { return ++seen, true; }));
  CHECK(seen == 1);
}

TEST_CASE("lmdb: a data dir that is a file fails with io_error naming it") {
  TempDir dir("dengine-lmdb-file-");
  const auto path = check_open_on_a_file_fails<Engine>(dir);
  CONF_REQUIRE_ERROR(errc::io_error, KvStore::open(path / "below"));
}

TEST_CASE("lmdb: a dir where no file can be created fails with io_error naming the call") {
  // /proc refuses new files even to root, unlike a chmod'ed dir.
  auto r = Engine::open("/proc/self");
  CONF_REQUIRE_ERROR(errc::io_error, r);
  CHECK(contains(r.error().detail, "mdb_env_open"));
  CHECK(contains(r.error().detail, "/proc/"));
}

TEST_CASE("lmdb: a data dir that is not writable fails with io_error naming the call") {
  if (geteuid() == 0) {
    MESSAGE("skipped: running as root, which may write anywhere");
    return;
  }
  TempDir dir("dengine-lmdb-ro-");
  REQUIRE(chmod(dir.path().c_str(), 0500) == 0);
  auto r = Engine::open(dir.path());
  chmod(dir.path().c_str(), 0700);
  CONF_REQUIRE_ERROR(errc::io_error, r);
  CHECK(contains(r.error().detail, "mdb_env_open"));
  CHECK(contains(r.error().detail, dir.path().string()));
}

TEST_CASE("lmdb: a damaged data.mdb fails with storage_corrupt naming the file") {
  TempDir dir("dengine-lmdb-corrupt-");
  {
    auto engine = CONF_VALUE(Engine::open(dir.path()));
    append_ok(engine, make_entries(1, 10, 1));
  }
  SUBCASE("both meta pages overwritten") {
    scribble(dir.path() / "data.mdb", std::size_t{2} * 4096);
  }
  SUBCASE("a file that never was LMDB") {
    std::filesystem::remove(dir.path() / "data.mdb");
    std::filesystem::remove(dir.path() / "lock.mdb");
    std::ofstream(dir.path() / "data.mdb") << std::string(std::size_t{3} * 4096, 'z');
  }
  auto r = Engine::open(dir.path());
  CONF_REQUIRE_ERROR(errc::storage_corrupt, r);
  CHECK(contains(r.error().detail, (dir.path() / "data.mdb").string()));
  CONF_REQUIRE_ERROR(errc::storage_corrupt, KvStore::open(dir.path()));
}

/// Replaces meta record "format" of the store in `dir` with `value`, as another build would.
void put_raw_format(const std::filesystem::path& dir, std::string value) {
  MDB_env* env = nullptr;
  REQUIRE(mdb_env_create(&env) == 0);
  mdb_env_set_maxdbs(env, 3);
  REQUIRE(mdb_env_open(env, dir.c_str(), 0, 0644) == 0);
  MDB_txn* txn = nullptr;
  REQUIRE(mdb_txn_begin(env, nullptr, 0, &txn) == 0);
  MDB_dbi meta = 0;
  REQUIRE(mdb_dbi_open(txn, "meta", 0, &meta) == 0);
  std::string key = "format";
  MDB_val k{key.size(), key.data()};
  MDB_val v{value.size(), value.data()};
  REQUIRE(mdb_put(txn, meta, &k, &v, 0) == 0);
  REQUIRE(mdb_txn_commit(txn) == 0);
  mdb_env_close(env);
}

TEST_CASE("lmdb: a data dir of another format version fails with incompatible_version") {
  TempDir dir("dengine-lmdb-version-");
  { CONF_VALUE(Engine::open(dir.path())); }
  // A future version, with its checksum right (payload = version 3).
  std::string payload = {0, 0, 0, 3};
  std::string crc(4, '\0');
  dengine::lmdb::detail::store_crc(
      crc.data(),
      dengine::lmdb::detail::record_crc(dengine::lmdb::detail::Db::meta, "format", payload));
  put_raw_format(dir.path(), payload + crc);
  for (bool walk : {true, false}) {
    CAPTURE(walk);
    Options o;
    o.verify_at_open = walk;
    auto r = Engine::open(dir.path(), o);
    CONF_REQUIRE_ERROR(errc::incompatible_version, r);
    CHECK(contains(r.error().detail, "format version 3"));
    CHECK(contains(r.error().detail, "data.mdb"));
  }
}

TEST_CASE("lmdb: a store of format version 1 (no record checksums) is refused, not misread") {
  TempDir dir("dengine-lmdb-version1-");
  { CONF_VALUE(Engine::open(dir.path())); }
  put_raw_format(dir.path(), std::string{0, 0, 0, 1});  // version 1 wrote the bare version
  auto r = KvStore::open(dir.path());
  CONF_REQUIRE_ERROR(errc::incompatible_version, r);
  CHECK(contains(r.error().detail, "format version 1"));
  CHECK(contains(r.error().detail, "checksums"));
  CHECK(contains(r.error().detail, (std::filesystem::canonical(dir.path()) / "data.mdb").string()));
}

TEST_CASE("lmdb: LMDB return codes map to dengine errors naming call and dir") {
  using dengine::lmdb::make_error;
  const std::filesystem::path dir = "/data/node1";
  struct Case {
    int rc;
    errc code;
  };
  for (Case c :
       {Case{MDB_VERSION_MISMATCH, errc::incompatible_version},
        Case{MDB_INCOMPATIBLE, errc::storage_corrupt}, Case{MDB_CURSOR_FULL, errc::storage_corrupt},
        Case{MDB_INVALID, errc::storage_corrupt}, Case{MDB_CORRUPTED, errc::storage_corrupt},
        Case{MDB_PAGE_NOTFOUND, errc::storage_corrupt}, Case{MDB_MAP_FULL, errc::no_space},
        Case{ENOSPC, errc::no_space}, Case{MDB_READERS_FULL, errc::too_busy},
        Case{MDB_TXN_FULL, errc::too_large}, Case{EACCES, errc::io_error},
        Case{MDB_PANIC, errc::io_error}}) {
    CAPTURE(c.rc);
    const dengine::error e = make_error(c.rc, "mdb_env_open", dir);
    CHECK(e == c.code);
    CHECK(contains(e.detail, "mdb_env_open"));
    CHECK(contains(e.detail, "/data/node1"));
    CHECK(contains(e.detail, mdb_strerror(c.rc)));
  }
}

TEST_CASE("lmdb: invalid options fail with invalid_argument") {
  TempDir dir("dengine-lmdb-options-");
  Options o;
  o.max_map_size = o.initial_map_size / 2;
  CONF_REQUIRE_ERROR(errc::invalid_argument, Engine::open(dir.path(), o));
  o = Options{};
  o.max_readers = 0;
  CONF_REQUIRE_ERROR(errc::invalid_argument, KvStore::open(dir.path(), o));
}

}  // namespace
