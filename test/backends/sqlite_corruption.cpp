// The SQLite backend against damaged files (issue 10): a flipped byte in a stored value, a key or
// a log entry; a row deleted behind the store's back; a truncated database; a database file
// missing beside its WAL; random byte flips anywhere in the file. Every case must end with
// storage_corrupt (or incompatible_version) naming the file -- and the key or index where one is
// at fault -- or with every read equal to what was written: never a wrong answer, never a crash,
// never a re-created or re-initialized file.
//
// These tests use only the Engine/KvStore API and raw SQL on the side, so that they also build
// against the backend before record checksums existed (and fail there).

#include <doctest/doctest.h>

#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "backend_test_support.hpp"
#include "dengine/backends/sqlite.hpp"
#include "sqlite_raw_connection.hpp"

namespace {

using namespace dengine::test::backend;
using dengine::sqlite::Engine;
using dengine::sqlite::KvStore;

fs::path db_file(const fs::path& dir) { return dir / "dengine.sqlite3"; }

/// How often `needle` occurs in `hay`.
std::size_t occurrences(std::string_view hay, std::string_view needle) {
  std::size_t n = 0;
  for (auto pos = hay.find(needle); pos != std::string_view::npos; pos = hay.find(needle, pos + 1))
    ++n;
  return n;
}

/// Flips bits of the byte `offset` bytes into the only occurrence of `marker` in `file`.
void flip_inside(const fs::path& file, std::string_view marker, std::size_t offset) {
  std::string bytes = read_file(file);
  REQUIRE(occurrences(bytes, marker) == 1);
  bytes[bytes.find(marker) + offset] ^= 0x5A;
  write_file(file, bytes);
}

/// Everything a test wrote to a data dir: the log (after compaction), the hard state and
/// compaction point, and the KV map with its applied index.
struct Known {
  std::vector<Entry> log;  // entries [snapshot.index + 1, last]
  HardState hard_state;
  SnapshotMeta snapshot;
  std::map<std::string, std::string> kv;
  LogIndex applied = 0;
};

/// Writes `known` into `dir` through the backend: one file holding a log and a KV map.
void write_known(const fs::path& dir, const Known& known, const std::vector<Entry>& full_log) {
  {
    auto engine = CONF_VALUE(Engine::open(dir));
    CONF_REQUIRE_OK(engine.append(std::span<const Entry>(full_log)));
    if (known.snapshot.index != 0) CONF_REQUIRE_OK(engine.compact(known.snapshot));
    CONF_REQUIRE_OK(engine.save_hard_state(known.hard_state));
  }
  auto store = CONF_VALUE(KvStore::open(dir));
  WriteBatch batch;
  for (const auto& [k, v] : known.kv) batch.put(k, v);
  CONF_REQUIRE_OK(store.write(batch, known.applied));
}

/// A small data set with both log and KV rows: entries 1..10 (entry 7's data and the value of
/// "flip-key" carry markers), KV keys a..e plus "flip-key".
Known small_known(std::vector<Entry>& full_log) {
  Known k;
  for (LogIndex i = 1; i <= 10; ++i) {
    std::string data =
        i == 7 ? "ENTRY-MARKER-7-" + std::string(40, 'e') : "entry-" + std::to_string(i);
    full_log.push_back(Entry{1, i, EntryType::normal, data});
  }
  k.log = full_log;
  k.hard_state = HardState{1, 1, 10};
  for (char c = 'a'; c <= 'e'; ++c) k.kv[std::string(1, c)] = std::string(20, c);
  k.kv["flip-key"] = "VALUE-MARKER-" + std::string(64, 'v');
  k.kv["KEY-MARKER-0001"] = "value-of-the-key-marker";
  k.applied = 10;
  return k;
}

/// A larger data set: entries 1..120 of varied sizes (every tenth spills to overflow pages),
/// compacted to 20 (leaving free pages with stale rows behind), 300 keys of varied sizes.
Known large_known(std::vector<Entry>& full_log) {
  Known k;
  for (LogIndex i = 1; i <= 120; ++i) {
    const std::size_t size = i % 10 == 0 ? 6000 : 40 + (i * 37) % 260;
    std::string data(size, static_cast<char>('a' + i % 26));
    data.replace(0, std::min(size, std::size_t{8}), "e" + std::to_string(i) + "/");
    full_log.push_back(Entry{i <= 60 ? Term{1} : Term{2}, i,
                             i == 61 ? EntryType::config_change : EntryType::normal, data});
  }
  k.snapshot = SnapshotMeta{20, 1, {{1, 2, 3}, {4}}};
  k.log.assign(full_log.begin() + 20, full_log.end());
  k.hard_state = HardState{2, 3, 100};
  for (int i = 0; i < 300; ++i) {
    char key[16];
    std::snprintf(key, sizeof key, "key-%04d", i);
    const std::size_t size = (i % 50 == 0 ? 5000 : 0) + static_cast<std::size_t>(i * 53 % 180);
    k.kv[key] = std::string(size, static_cast<char>('A' + i % 26)) + std::to_string(i);
  }
  k.applied = 100;
  return k;
}

/// How reading a damaged data dir ended.
struct Outcome {
  enum Kind { intact, refused, caught, wrong, bad_error } kind = intact;
  std::string detail;  // the error, or what was wrong
};

/// Classifies an error: storage_corrupt or incompatible_version naming the file is the only
/// acceptable one.
Outcome classify(const dengine::error& e, const fs::path& file, Outcome::Kind kind) {
  const bool right_code = e == errc::storage_corrupt || e == errc::incompatible_version;
  const bool names_file = e.detail.find(file.string()) != std::string::npos;
  return {right_code && names_file ? kind : Outcome::bad_error, e.message()};
}

/// Opens `dir`'s engine and store and reads everything `known` holds, comparing as it goes.
Outcome read_everything(const fs::path& dir, const Known& known) {
  const fs::path file = db_file(dir);
  auto wrong = [](std::string what) { return Outcome{Outcome::wrong, std::move(what)}; };
  {
    auto opened = Engine::open(dir);
    if (!opened) return classify(opened.error(), file, Outcome::refused);
    Engine& engine = opened.value();
    auto state = engine.load();
    if (!state) return classify(state.error(), file, Outcome::caught);
    if (!(state.value().hard_state == known.hard_state)) return wrong("hard state differs");
    if (!(state.value().snapshot == known.snapshot)) return wrong("snapshot meta differs");
    const LogIndex first = known.snapshot.index + 1;
    const LogIndex last = known.snapshot.index + known.log.size();
    if (engine.first_index() != first || engine.last_index() != last)
      return wrong("log bounds [" + std::to_string(engine.first_index()) + ", " +
                   std::to_string(engine.last_index()) + "]");
    auto entries = engine.entries(first, last + 1, unbounded);
    if (!entries) return classify(entries.error(), file, Outcome::caught);
    if (entries.value() != known.log) return wrong("log entries differ");
    for (LogIndex i = known.snapshot.index; i <= last; ++i) {
      auto t = engine.term(i);
      if (!t) return classify(t.error(), file, Outcome::caught);
      const Term expected =
          i == known.snapshot.index ? known.snapshot.term : known.log[i - first].term;
      if (t.value() != expected) return wrong("term at " + std::to_string(i));
    }
  }
  auto opened = KvStore::open(dir);
  if (!opened) return classify(opened.error(), file, Outcome::refused);
  KvStore& store = opened.value();
  if (store.applied_index() != known.applied) return wrong("applied index");
  for (const auto& [k, v] : known.kv) {
    auto got = store.get(k);
    if (!got) return classify(got.error(), file, Outcome::caught);
    if (got.value() != std::optional<std::string>(v)) return wrong("get(" + k + ")");
  }
  for (std::string absent : {"", "0", "key-", "zzz"}) {
    auto got = store.get(absent);
    if (!got) return classify(got.error(), file, Outcome::caught);
    if (got.value().has_value()) return wrong("get(" + absent + ") found a value");
  }
  std::map<std::string, std::string> scanned;
  bool ordered = true;
  auto scan = store.scan("", "", [&](std::string_view k, std::string_view v) {
    if (!scanned.empty() && k <= scanned.rbegin()->first) ordered = false;
    scanned.emplace(k, v);
    return true;
  });
  if (!scan) return classify(scan.error(), file, Outcome::caught);
  if (!ordered || scanned != known.kv) return wrong("full scan differs");
  // A bounded range, which seeks through interior pages.
  std::size_t in_range = 0;
  auto range = store.scan("key-0100", "key-0200", [&](std::string_view k, std::string_view v) {
    auto it = known.kv.find(std::string(k));
    if (it != known.kv.end() && it->second == v) ++in_range;
    return true;
  });
  if (!range) return classify(range.error(), file, Outcome::caught);
  std::size_t expected_in_range = 0;
  for (const auto& [k, v] : known.kv)
    if (k >= "key-0100" && k < "key-0200") ++expected_in_range;
  if (in_range != expected_in_range) return wrong("range scan differs");
  return {};
}

/// CHECKs that the outcome is an acceptable error (at open or on a read) whose text contains
/// each of `needles`.
void check_caught(const Outcome& o, std::initializer_list<std::string> needles) {
  INFO("outcome " << static_cast<int>(o.kind) << ": " << o.detail);
  CHECK((o.kind == Outcome::refused || o.kind == Outcome::caught));
  for (const auto& n : needles) CHECK(o.detail.find(n) != std::string::npos);
}

TEST_CASE("sqlite corruption: a flipped byte in a stored value, key or entry is caught") {
  TempDir dir("dengine-sqlite-flip-");
  std::vector<Entry> full_log;
  const Known known = small_known(full_log);
  write_known(dir.path(), known, full_log);
  REQUIRE(read_everything(dir.path(), known).kind == Outcome::intact);
  const std::string file = db_file(dir.path()).string();

  SUBCASE("inside a value") {
    flip_inside(db_file(dir.path()), "VALUE-MARKER-", 20);
    check_caught(read_everything(dir.path(), known), {file, "flip-key"});
  }
  SUBCASE("inside a key") {
    flip_inside(db_file(dir.path()), "KEY-MARKER-0001", 14);
    check_caught(read_everything(dir.path(), known), {file, "KEY-MARKER-000"});
  }
  SUBCASE("inside a log entry's data") {
    flip_inside(db_file(dir.path()), "ENTRY-MARKER-7-", 20);
    check_caught(read_everything(dir.path(), known), {file, "index 7"});
  }
}

TEST_CASE("sqlite corruption: a row deleted behind the store's back is caught") {
  TempDir dir("dengine-sqlite-lost-");
  std::vector<Entry> full_log;
  const Known known = small_known(full_log);
  write_known(dir.path(), known, full_log);
  const std::string file = db_file(dir.path()).string();
  std::string sql;
  SUBCASE("a KV row") { sql = "DELETE FROM kv WHERE key = CAST('c' AS BLOB)"; }
  SUBCASE("the last log entry") { sql = "DELETE FROM raft_log WHERE idx = 10"; }
  SUBCASE("the first log entry") { sql = "DELETE FROM raft_log WHERE idx = 1"; }
  SUBCASE("a log entry in the middle") { sql = "DELETE FROM raft_log WHERE idx = 5"; }
  SUBCASE("every KV row") { sql = "DELETE FROM kv"; }
  {
    RawConnection raw(db_file(dir.path()));
    REQUIRE(raw.exec(sql) == SQLITE_OK);
  }
  check_caught(read_everything(dir.path(), known), {file});
}

TEST_CASE("sqlite corruption: a truncated raft database is refused, never re-created") {
  TempDir dir("dengine-sqlite-trunc-");
  const fs::path raft = dir.path() / "raft";
  std::vector<Entry> log;
  for (LogIndex i = 1; i <= 200; ++i)
    log.push_back(
        Entry{1, i, EntryType::normal, std::string(1000, static_cast<char>('a' + i % 26))});
  {
    auto engine = CONF_VALUE(Engine::open(raft));
    CONF_REQUIRE_OK(engine.append(std::span<const Entry>(log)));
    CONF_REQUIRE_OK(engine.save_hard_state(HardState{1, 1, 200}));
  }
  const fs::path file = db_file(raft);
  const std::string whole = read_file(file);
  REQUIRE(whole.size() > 16 * 4096);
  std::size_t size = 0;
  SUBCASE("to 0 bytes") { size = 0; }
  SUBCASE("to half") { size = whole.size() / 2; }
  SUBCASE("by one page") { size = whole.size() - 4096; }
  fs::resize_file(file, size);
  const std::string damaged = read_file(file);

  auto engine = Engine::open(raft);
  CONF_REQUIRE_ERROR(errc::storage_corrupt, engine);
  CHECK(engine.error().detail.find(file.string()) != std::string::npos);
  auto store = KvStore::open(raft);
  CONF_REQUIRE_ERROR(errc::storage_corrupt, store);
  // Nothing was written: the damaged file is as it was, for whoever investigates.
  CHECK(read_file(file) == damaged);
}

TEST_CASE("sqlite corruption: a database file missing beside its WAL is refused") {
  TempDir source("dengine-sqlite-walsrc-");
  TempDir dir("dengine-sqlite-walonly-");
  const fs::path wal = dir.path() / "dengine.sqlite3-wal";
  const fs::path shm = dir.path() / "dengine.sqlite3-shm";
  bool copy_wal = true;
  bool copy_shm = true;
  SUBCASE("-wal and -shm") {}
  SUBCASE("-wal alone") { copy_shm = false; }
  SUBCASE("-shm alone") { copy_wal = false; }
  {
    // Copy the companions while the engine is open: its commits live in the WAL, as after a
    // crash; then someone deletes the main file.
    auto engine = CONF_VALUE(Engine::open(source.path()));
    CONF_REQUIRE_OK(engine.append(dengine::conformance::make_entries(1, 50, 1)));
    if (copy_wal) fs::copy_file(source / "dengine.sqlite3-wal", wal);
    if (copy_shm) fs::copy_file(source / "dengine.sqlite3-shm", shm);
  }
  const std::string wal_bytes = copy_wal ? read_file(wal) : std::string();
  if (copy_wal) REQUIRE(!wal_bytes.empty());

  auto engine = Engine::open(dir.path());
  CONF_REQUIRE_ERROR(errc::storage_corrupt, engine);
  CHECK(engine.error().detail.find(db_file(dir.path()).string()) != std::string::npos);
  CONF_REQUIRE_ERROR(errc::storage_corrupt, KvStore::open(dir.path()));
  CHECK_FALSE(fs::exists(db_file(dir.path())));
  if (copy_wal) CHECK(read_file(wal) == wal_bytes);
}

TEST_CASE("sqlite corruption: random byte flips never give a wrong answer or a crash") {
  // 100 trials, each on a fresh copy of one database file holding a compacted log and a KV map:
  // flip 1-8 random bytes anywhere in it, then open and read everything.
  TempDir golden_dir("dengine-sqlite-golden-");
  std::vector<Entry> full_log;
  const Known known = large_known(full_log);
  write_known(golden_dir.path(), known, full_log);
  const std::string golden = read_file(db_file(golden_dir.path()));
  REQUIRE(!fs::exists(golden_dir / "dengine.sqlite3-wal"));  // all of it is in the main file
  {
    const Outcome pristine = read_everything(golden_dir.path(), known);
    INFO(pristine.detail);
    REQUIRE(pristine.kind == Outcome::intact);
  }

  std::mt19937_64 rng(0x5EED'0010);
  std::uniform_int_distribution<std::size_t> flip_count(1, 8);
  std::uniform_int_distribution<std::size_t> position(0, golden.size() - 1);
  std::uniform_int_distribution<int> mask(1, 255);
  constexpr int trials = 100;
  int counts[5] = {};
  for (int trial = 0; trial < trials; ++trial) {
    TempDir dir("dengine-sqlite-flips-");
    std::string bytes = golden;
    std::ostringstream flips;
    const std::size_t n = flip_count(rng);
    for (std::size_t k = 0; k < n; ++k) {
      const std::size_t at = position(rng);
      bytes[at] = static_cast<char>(bytes[at] ^ mask(rng));
      flips << at << ' ';
    }
    write_file(db_file(dir.path()), bytes);
    const Outcome o = read_everything(dir.path(), known);
    ++counts[o.kind];
    INFO("trial " << trial << ", flipped bytes at " << flips.str() << ": " << o.detail);
    CHECK(o.kind != Outcome::wrong);
    CHECK(o.kind != Outcome::bad_error);
  }
  MESSAGE("sqlite random flips over "
          << trials << " trials: " << counts[Outcome::refused] << " refused at open, "
          << counts[Outcome::caught] << " caught on a read, " << counts[Outcome::intact]
          << " read back intact, " << counts[Outcome::wrong] << " wrong answers, "
          << counts[Outcome::bad_error] << " other errors");
}

}  // namespace
