// The SQLite backend's record checksums, row counts and digests as seen through verify() and the
// checks at open: the stats follow every kind of write; each kind of damage is named; what
// Options::verify_on_open and Options::create_if_missing change; creation that a crash
// interrupted.

#include <doctest/doctest.h>

#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "backend_test_support.hpp"
#include "dengine/backends/sqlite.hpp"
#include "sqlite_raw_connection.hpp"

namespace {

using namespace dengine::test::backend;
namespace sqlite = dengine::sqlite;  // sqlite::verify, sqlite::Options: whose they are, named
using sqlite::Engine;
using sqlite::KvStore;

fs::path db_file(const TempDir& dir) { return dir.path() / "dengine.sqlite3"; }

/// SQL's hex literal of bytes: x'...'.
std::string hex(std::string_view bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out = "x'";
  for (char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    out += digits[b >> 4];
    out += digits[b & 0xf];
  }
  return out + "'";
}

/// A data dir with log entries 1..10 (compacted to 2) and KV keys a..e.
void write_small(const TempDir& dir) {
  {
    auto engine = CONF_VALUE(Engine::open(dir.path()));
    CONF_REQUIRE_OK(engine.append(make_entries(1, 10, 1)));
    CONF_REQUIRE_OK(engine.compact(SnapshotMeta{2, 1, {{1}, {}}}));
    CONF_REQUIRE_OK(engine.save_hard_state(HardState{1, 1, 10}));
  }
  auto store = CONF_VALUE(KvStore::open(dir.path()));
  WriteBatch b;
  for (char c = 'a'; c <= 'e'; ++c) b.put(std::string(1, c), std::string(10, c));
  CONF_REQUIRE_OK(store.write(b, 10));
}

TEST_CASE("sqlite verify: the row counts and digests follow every kind of write") {
  TempDir dir("dengine-sqlite-stats-");
  std::mt19937_64 rng(42);
  {
    auto engine = CONF_VALUE(Engine::open(dir.path()));
    auto store = CONF_VALUE(KvStore::open(dir.path()));
    LogIndex applied = 0;
    for (int round = 0; round < 40; ++round) {
      // The log: appends, overwritten suffixes, compactions, now and then a reset.
      const LogIndex last = engine.last_index();
      const LogIndex from = last >= engine.first_index() && rng() % 3 == 0
                                ? engine.first_index() + rng() % (last - engine.first_index() + 1)
                                : last + 1;
      CONF_REQUIRE_OK(engine.append(make_entries(from, from + rng() % 5, 1 + round / 10)));
      if (rng() % 4 == 0 && engine.last_index() > engine.first_index()) {
        const LogIndex at =
            engine.first_index() + rng() % (engine.last_index() - engine.first_index());
        CONF_REQUIRE_OK(engine.compact(SnapshotMeta{at, CONF_VALUE(engine.term(at)), {{1}, {}}}));
      }
      if (round == 25) CONF_REQUIRE_OK(engine.reset(SnapshotMeta{100, 3, {{1, 2}, {}}}));
      // The KV map: puts (new keys and overwrites), erases of present and absent keys, a
      // key written twice in one batch, now and then a clear.
      WriteBatch b;
      for (int k = 0; k < 20; ++k) {
        const std::string key = "k" + std::to_string(rng() % 30);
        if (rng() % 3 == 0)
          b.erase(key);
        else
          b.put(key, std::string(rng() % 40, static_cast<char>('a' + rng() % 26)));
      }
      CONF_REQUIRE_OK(store.write(b, ++applied));
      if (round == 30) CONF_REQUIRE_OK(store.clear(++applied));
    }
  }
  const std::string before = read_file(db_file(dir));
  CONF_REQUIRE_OK(sqlite::verify(dir.path()));
  CHECK(read_file(db_file(dir)) == before);  // verify changes nothing
  CONF_REQUIRE_OK(Engine::open(dir.path()));
  CONF_REQUIRE_OK(KvStore::open(dir.path()));
}

TEST_CASE("sqlite verify: each kind of damage is reported, and refused at open") {
  TempDir dir("dengine-sqlite-verify-");
  write_small(dir);
  CONF_REQUIRE_OK(sqlite::verify(dir.path()));
  std::string sql;
  std::string expected;
  using dengine::sqlite::record::crc;
  SUBCASE("a value changed") {
    sql = "UPDATE kv SET value = x'00' WHERE key = x'63'";
    expected = "table kv, key \"c\": checksum mismatch";
  }
  SUBCASE("a KV row deleted") {
    sql = "DELETE FROM kv WHERE key = x'63'";
    expected = "table kv holds 4 rows, but 5 were written";
  }
  SUBCASE("a KV row added, with a valid checksum") {
    sql = "INSERT INTO kv VALUES (x'66', x'76', " + std::to_string(crc("kv", "f", "v")) + ")";
    expected = "table kv holds 6 rows, but 5 were written";
  }
  SUBCASE("an older value back in place, with a valid checksum") {
    sql = "UPDATE kv SET value = x'6f6c64', crc = " + std::to_string(crc("kv", "c", "old")) +
          " WHERE key = x'63'";
    expected = "table kv: the digest of its 5 rows' checksums differs";
  }
  SUBCASE("the last log entry deleted") {
    sql = "DELETE FROM raft_log WHERE idx = 10";
    expected = "table raft_log holds 7 rows, but 8 were written";
  }
  SUBCASE("a meta row deleted") {
    sql = "DELETE FROM dengine_meta WHERE name = " + hex("hard_state");
    expected = "table dengine_meta, row \"hard_state\" is missing";
  }
  SUBCASE("a meta row changed") {
    sql = "UPDATE dengine_meta SET value = " + hex(std::string(8, '\x07')) +
          " WHERE name = " + hex("kv_applied_index");
    expected = "table dengine_meta, row \"kv_applied_index\": checksum mismatch";
  }
  {
    RawConnection raw(db_file(dir));
    REQUIRE(raw.exec(sql) == SQLITE_OK);
  }
  const std::string before = read_file(db_file(dir));
  auto v = sqlite::verify(dir.path());
  CONF_REQUIRE_ERROR(errc::storage_corrupt, v);
  INFO(v.error().detail);
  CHECK(contains(v.error().detail, expected));
  CHECK(contains(v.error().detail, db_file(dir).string()));
  CHECK(read_file(db_file(dir)) == before);
  auto store = KvStore::open(dir.path());
  CONF_REQUIRE_ERROR(errc::storage_corrupt, store);
  CHECK(contains(store.error().detail, expected));
  CONF_REQUIRE_ERROR(errc::storage_corrupt, Engine::open(dir.path()));
  CHECK(read_file(db_file(dir)) == before);
}

TEST_CASE("sqlite: without verify_on_open a damaged KV record is caught by the read") {
  TempDir dir("dengine-sqlite-light-");
  write_small(dir);
  {
    RawConnection raw(db_file(dir));
    REQUIRE(raw.exec("UPDATE kv SET value = x'00' WHERE key = x'63'") == SQLITE_OK);
  }
  CONF_REQUIRE_ERROR(errc::storage_corrupt, KvStore::open(dir.path()));
  sqlite::Options light;
  light.verify_on_open = false;
  auto store = CONF_VALUE(KvStore::open(dir.path(), light));
  CHECK(CONF_VALUE(store.get("b")) == std::optional<std::string>(std::string(10, 'b')));
  auto got = store.get("c");
  CONF_REQUIRE_ERROR(errc::storage_corrupt, got);
  CHECK(contains(got.error().detail, "table kv, key \"c\": checksum mismatch"));
  CHECK(contains(got.error().detail, db_file(dir).string()));
  std::string seen;
  auto scan = store.scan("", "", [&](std::string_view k, std::string_view) {
    seen += k;
    return true;
  });
  CONF_REQUIRE_ERROR(errc::storage_corrupt, scan);
  CHECK(seen == "ab");  // the rows before the damaged one, none after
  // Overwriting the damaged row repairs it, and the stats stay right.
  WriteBatch b;
  b.put("c", "new");
  CONF_REQUIRE_OK(store.write(b, 11));
  CHECK(CONF_VALUE(store.get("c")) == std::optional<std::string>("new"));
  CONF_REQUIRE_OK(sqlite::verify(dir.path()));
}

TEST_CASE("sqlite: without verify_on_open a damaged key is caught by the read that misses it") {
  // A key whose bytes changed no longer answers to its old name. Per-row checksums alone would
  // let get() answer "absent" and a scan skip it; the neighbour checks read the damaged row.
  TempDir dir("dengine-sqlite-keyflip-");
  {
    auto store = CONF_VALUE(KvStore::open(dir.path()));
    WriteBatch b;
    for (const char* k : {"KEY-MARKER-0000", "KEY-MARKER-0001", "KEY-MARKER-0002"}) b.put(k, "v");
    CONF_REQUIRE_OK(store.write(b, 1));
  }
  std::string bytes = read_file(db_file(dir));
  const auto at = bytes.find("KEY-MARKER-0001");
  REQUIRE(at != std::string::npos);
  REQUIRE(bytes.find("KEY-MARKER-0001", at + 1) == std::string::npos);
  // The last byte changes: "...0001" becomes "...000/" (sorts below "...0000") or "...0003"
  // (above "...0002"), its cell staying where it was in the leaf.
  SUBCASE("damaged into a smaller key") { bytes[at + 14] = '/'; }
  SUBCASE("damaged into a larger key") { bytes[at + 14] = '3'; }
  {
    std::ofstream out(db_file(dir), std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  CONF_REQUIRE_ERROR(errc::storage_corrupt, KvStore::open(dir.path()));
  sqlite::Options light;
  light.verify_on_open = false;
  auto store = CONF_VALUE(KvStore::open(dir.path(), light));
  auto got = store.get("KEY-MARKER-0001");
  CONF_REQUIRE_ERROR(errc::storage_corrupt, got);
  CHECK(contains(got.error().detail, "checksum mismatch"));
  CHECK(contains(got.error().detail, db_file(dir).string()));
  auto scan = store.scan("KEY-MARKER-0001", "KEY-MARKER-0002",
                         [](std::string_view, std::string_view) { return true; });
  CONF_REQUIRE_ERROR(errc::storage_corrupt, scan);
}

TEST_CASE("sqlite: create_if_missing=false refuses a missing database, creating nothing") {
  TempDir dir("dengine-sqlite-nocreate-");
  sqlite::Options o;
  o.create_if_missing = false;
  const fs::path missing_dir = dir.path() / "raft";
  auto r = Engine::open(missing_dir, o);
  CONF_REQUIRE_ERROR(errc::storage_corrupt, r);
  CHECK(contains(r.error().detail, (missing_dir / "dengine.sqlite3").string()));
  CHECK(contains(r.error().detail, "create_if_missing"));
  CHECK_FALSE(fs::exists(missing_dir));
  CONF_REQUIRE_ERROR(errc::storage_corrupt, KvStore::open(dir.path(), o));
  CHECK(fs::is_empty(dir.path()));
  CONF_REQUIRE_ERROR(errc::storage_corrupt, sqlite::verify(dir.path()));
  // Once the store exists, the option changes nothing.
  write_small(dir);
  CONF_REQUIRE_OK(Engine::open(dir.path(), o));
  CONF_REQUIRE_OK(KvStore::open(dir.path(), o));
}

TEST_CASE("sqlite: a creation interrupted by a crash leaves no database, and is cleaned up") {
  TempDir dir("dengine-sqlite-creating-");
  // The temporary file of a process that died while creating the database.
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) ::_exit(0);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  const fs::path stale = dir.path() / ("dengine.sqlite3.creating." + std::to_string(child) + ".0");
  std::ofstream(stale) << "half-made";
  // A temporary file of this process (another thread creating) is left alone.
  const fs::path ours =
      dir.path() / ("dengine.sqlite3.creating." + std::to_string(::getpid()) + ".999999");
  std::ofstream(ours) << "in progress";
  CHECK_FALSE(fs::exists(db_file(dir)));
  auto engine = CONF_VALUE(Engine::open(dir.path()));
  CONF_REQUIRE_OK(engine.append(make_entries(1, 3, 1)));
  CHECK_FALSE(fs::exists(stale));
  CHECK(fs::exists(ours));
  CONF_REQUIRE_OK(sqlite::verify(dir.path()));
}

TEST_CASE("sqlite: a damaged separator key in an interior page is found at open") {
  // Per-row checksums cannot see a separator key that routes lookups to the wrong leaf (keys
  // silently missing); SQLite's integrity_check at open can.
  TempDir dir("dengine-sqlite-separator-");
  {
    auto store = CONF_VALUE(KvStore::open(dir.path()));
    WriteBatch b;
    for (int i = 0; i < 5000; ++i) {
      char key[16];
      std::snprintf(key, sizeof key, "key-%06d", i);
      b.put(key, std::string(64, 'v'));
    }
    CONF_REQUIRE_OK(store.write(b, 1));
  }
  std::string bytes = read_file(db_file(dir));
  constexpr std::size_t page = 4096;
  REQUIRE(bytes.size() % page == 0);
  std::size_t flipped = 0;
  for (std::size_t p = 0; p < bytes.size() / page && flipped == 0; ++p) {
    const std::size_t base = p * page;
    if (bytes[base + (p == 0 ? 100 : 0)] != 0x02) continue;  // an interior index b-tree page
    const auto at = bytes.find("key-00", base + 12);
    if (at == std::string::npos || at + 10 >= base + page) continue;
    bytes[at + 6] = '9';  // the separator now sorts after keys it should precede
    flipped = at;
  }
  REQUIRE(flipped != 0);
  {
    std::ofstream out(db_file(dir), std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  auto r = KvStore::open(dir.path());
  CONF_REQUIRE_ERROR(errc::storage_corrupt, r);
  CHECK(contains(r.error().detail, "integrity_check"));
  CHECK(contains(r.error().detail, db_file(dir).string()));
  auto v = sqlite::verify(dir.path());
  CONF_REQUIRE_ERROR(errc::storage_corrupt, v);
  CHECK(contains(v.error().detail, "integrity_check"));
  // Opened without the check, every lookup either finds its key or fails: the seeks that the
  // damaged separator misroutes land next to rows that are not where they should be.
  sqlite::Options light;
  light.verify_on_open = false;
  auto store = CONF_VALUE(KvStore::open(dir.path(), light));
  int found = 0;
  int refused = 0;
  int absent = 0;
  for (int i = 0; i < 5000; ++i) {
    char key[16];
    std::snprintf(key, sizeof key, "key-%06d", i);
    auto got = store.get(key);
    if (!got) {
      CHECK(got.error() == errc::storage_corrupt);
      ++refused;
    } else if (got.value().has_value()) {
      ++found;
    } else {
      ++absent;
    }
  }
  CHECK(absent == 0);
  CHECK(refused > 0);
  MESSAGE("misrouted lookups: " << refused << " refused, " << found << " found");
}

}  // namespace
