// The LMDB backend against damaged files: flipped bytes in values, keys and log entries, records
// deleted behind the store's back, truncated files, and random flips anywhere in data.mdb. Every
// case must end in a clean error naming data.mdb (and the key or index where one is known) or in
// reads that all equal what was written: never a wrong answer, never a crash.

#include <doctest/doctest.h>

#include <fcntl.h>
#include <lmdb.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "backend_test_support.hpp"
#include "dengine/backends/lmdb.hpp"

namespace {

using namespace dengine::test::backend;
using dengine::lmdb::Engine;
using dengine::lmdb::KvStore;
using dengine::lmdb::Options;
using dengine::lmdb::VerifyReport;
namespace detail = dengine::lmdb::detail;

/// Everything the known store holds, as the reads must return it.
struct Expected {
  std::vector<Entry> log;  // first_index() .. last_index()
  HardState hard_state;
  SnapshotMeta snapshot;
  std::map<std::string, std::string> kv;
  LogIndex applied = 0;
};

// Markers the targeted flips look for in data.mdb (each written once, in one record).
constexpr std::string_view value_marker = "VALUE-MARKER-7f3a";
constexpr std::string_view key_marker = "key-marker-c41d";
constexpr std::string_view entry_marker = "ENTRY-MARKER-9b2e";
constexpr LogIndex marked_index = 77;

/// Entry data: mostly small, some spilling onto LMDB overflow pages.
std::string entry_data(LogIndex i) {
  if (i == marked_index) return std::string(entry_marker) + std::string(40, 'e');
  const std::size_t size = i % 23 == 0 ? 5000 + i * 7 : 20 + (i * 37) % 300;
  std::string s(size, static_cast<char>('a' + i % 26));
  s.replace(0, std::min(size, std::size_t{8}), std::to_string(i * 1000003));
  return s;
}

/// Writes the known store into `dir` (log, hard state, compaction point, KV with overwrites and
/// deletes, some large values) and returns what it holds.
Expected build_store(const fs::path& dir) {
  Expected x;
  auto engine = CONF_VALUE(Engine::open(dir));
  auto store = CONF_VALUE(KvStore::open(dir));
  std::vector<Entry> all;
  for (LogIndex i = 1; i <= 160; ++i)
    all.push_back(Entry{1 + i / 50, i, i % 31 == 0 ? EntryType::config_change : EntryType::normal,
                        entry_data(i)});
  for (std::size_t k = 0; k < all.size(); k += 16) {
    const std::size_t n = std::min<std::size_t>(16, all.size() - k);
    CONF_REQUIRE_OK(engine.append(std::span<const Entry>(all).subspan(k, n)));
  }
  x.snapshot = SnapshotMeta{40, all[39].term, {{1, 2, 3}, {4}}};
  CONF_REQUIRE_OK(engine.compact(x.snapshot));
  x.log.assign(all.begin() + 40, all.end());
  x.hard_state = HardState{all.back().term, 2, 150};
  CONF_REQUIRE_OK(engine.save_hard_state(x.hard_state));

  LogIndex applied = 0;
  for (int round = 0; round < 4; ++round) {
    WriteBatch b;
    for (int k = 0; k < 90; ++k) {
      const int id = (k * 7 + round * 13) % 240;
      std::string key = "key/" + std::to_string(id);
      if (round == 3 && k % 9 == 0) {
        b.erase(key);
        x.kv.erase(key);
        continue;
      }
      std::string value = "v" + std::to_string(round) + "-" + std::to_string(id) + "-" +
                          std::string(static_cast<std::size_t>((id * 11) % 200), 'x');
      if (id % 47 == 0) value += std::string(6000, static_cast<char>('A' + round));
      b.put(key, value);
      x.kv[key] = value;
    }
    if (round == 1) {
      b.put(std::string(key_marker), "plain value");
      x.kv[std::string(key_marker)] = "plain value";
      b.put("marked-value-key", std::string(value_marker) + "-tail");
      x.kv["marked-value-key"] = std::string(value_marker) + "-tail";
    }
    CONF_REQUIRE_OK(store.write(b, ++applied));
  }
  x.applied = applied;
  return x;
}

/// How a trial over a damaged copy ended.
enum class Outcome { clean_error, correct, wrong };

struct Verdict {
  Outcome outcome = Outcome::correct;
  std::string detail;  // the error, or what was wrong
};

/// A failure is clean when it is storage_corrupt or incompatible_version and names data.mdb.
template <class R>
std::optional<Verdict> judge_error(const R& r, const fs::path& data_file, std::string_view call) {
  if (r) return std::nullopt;
  const auto& e = r.error();
  const bool clean = (e == errc::storage_corrupt || e == errc::incompatible_version) &&
                     contains(e.detail, data_file.string());
  return Verdict{clean ? Outcome::clean_error : Outcome::wrong,
                 std::string(call) + ": " + e.message()};
}

/// Opens the store in `dir` and reads everything back, comparing with `x`.
Verdict read_everything(const fs::path& dir, const Expected& x, const Options& options = {}) {
  const fs::path data_file = fs::canonical(dir) / "data.mdb";
  auto engine = Engine::open(dir, options);
  if (auto v = judge_error(engine, data_file, "Engine::open")) return *v;
  auto wrong = [](std::string what) { return Verdict{Outcome::wrong, std::move(what)}; };
  const LogIndex first = x.snapshot.index + 1;
  const LogIndex last = x.log.back().index;
  if (engine.value().first_index() != first || engine.value().last_index() != last)
    return wrong("log bounds " + std::to_string(engine.value().first_index()) + ".." +
                 std::to_string(engine.value().last_index()));
  auto loaded = engine.value().load();
  if (auto v = judge_error(loaded, data_file, "load")) return *v;
  if (loaded.value().hard_state != x.hard_state) return wrong("hard state differs");
  if (loaded.value().snapshot != x.snapshot) return wrong("snapshot meta differs");
  auto entries = engine.value().entries(first, last + 1, unbounded);
  if (auto v = judge_error(entries, data_file, "entries")) return *v;
  if (entries.value() != x.log) return wrong("log entries differ");
  for (LogIndex i = x.snapshot.index; i <= last; ++i) {
    auto t = engine.value().term(i);
    if (auto v = judge_error(t, data_file, "term")) return *v;
    const auto expected = i == x.snapshot.index ? x.snapshot.term : x.log[i - first].term;
    if (t.value() != expected) return wrong("term at " + std::to_string(i) + " differs");
  }

  auto store = KvStore::open(dir, options);
  if (auto v = judge_error(store, data_file, "KvStore::open")) return *v;
  if (store.value().applied_index() != x.applied) return wrong("applied index differs");
  for (const auto& [key, value] : x.kv) {
    auto got = store.value().get(key);
    if (auto v = judge_error(got, data_file, "get")) return *v;
    if (got.value() != value) return wrong("get(" + key + ") differs");
  }
  for (const char* absent : {"key/500", "nope", ""}) {
    auto got = store.value().get(absent);
    if (auto v = judge_error(got, data_file, "get")) return *v;
    if (got.value().has_value()) return wrong(std::string("absent key ") + absent + " found");
  }
  std::map<std::string, std::string> scanned;
  auto scan = store.value().scan("", "", [&](std::string_view k, std::string_view v) {
    scanned.emplace(std::string(k), std::string(v));
    return true;
  });
  if (auto v = judge_error(scan, data_file, "scan")) return *v;
  if (scanned != x.kv) return wrong("full scan differs");
  std::map<std::string, std::string> ranged;
  auto range = store.value().scan("key/1", "key/3", [&](std::string_view k, std::string_view v) {
    ranged.emplace(std::string(k), std::string(v));
    return true;
  });
  if (auto v = judge_error(range, data_file, "scan range")) return *v;
  std::map<std::string, std::string> expected_range(x.kv.lower_bound("key/1"),
                                                    x.kv.lower_bound("key/3"));
  if (ranged != expected_range) return wrong("range scan differs");
  return Verdict{};
}

/// The pristine store, built once per test binary run and copied into each trial's dir.
struct Pristine {
  TempDir dir{"dengine-lmdb-pristine-"};
  Expected expected;
  std::string bytes;
  Pristine() {
    expected = build_store(dir.path());
    bytes = read_file(dir.path() / "data.mdb");
  }
  static const Pristine& get() {
    static const Pristine pristine;
    return pristine;
  }
};

/// A fresh dir holding `bytes` as its data.mdb (no lock file).
TempDir with_data(std::string_view bytes) {
  TempDir dir("dengine-lmdb-trial-");
  write_file(dir.path() / "data.mdb", bytes);
  return dir;
}

/// XORs one byte of every occurrence of `marker` (at `offset` within it) with `mask`. LMDB
/// leaves stale copies of pages behind, so the marker may appear more than once; damaging all
/// of them makes sure the live record is hit. Returns the number of occurrences.
std::size_t flip_marker(std::string& bytes, std::string_view marker, std::size_t offset,
                        unsigned char mask) {
  std::size_t count = 0;
  for (std::size_t pos = bytes.find(marker); pos != std::string::npos;
       pos = bytes.find(marker, pos + 1)) {
    bytes[pos + offset] = static_cast<char>(static_cast<unsigned char>(bytes[pos + offset]) ^ mask);
    ++count;
  }
  return count;
}

TEST_CASE("lmdb corruption: the pristine store reads back exactly") {
  const Pristine& p = Pristine::get();
  TempDir dir = with_data(p.bytes);
  const Verdict v = read_everything(dir.path(), p.expected);
  CHECK_MESSAGE(v.outcome == Outcome::correct, v.detail);
}

/// Flips `mask` into the byte `offset` bytes into `marker` in a copy of the pristine store: the
/// reads must end in a clean error whose detail names `named`.
void check_flip_is_named(std::string_view marker, std::size_t offset, unsigned char mask,
                         const std::string& named) {
  const Pristine& p = Pristine::get();
  std::string bytes = p.bytes;
  REQUIRE(flip_marker(bytes, marker, offset, mask) > 0);
  TempDir dir = with_data(bytes);
  const Verdict v = read_everything(dir.path(), p.expected);
  CHECK_MESSAGE(v.outcome == Outcome::clean_error, v.detail);
  CHECK_MESSAGE(contains(v.detail, named), v.detail);
}

TEST_CASE("lmdb corruption: a flipped byte in a stored value is storage_corrupt naming the key") {
  check_flip_is_named(value_marker, 3, 0x01, "marked-value-key");
}

TEST_CASE("lmdb corruption: a flipped byte in a stored key is storage_corrupt naming the key") {
  // 'k' ^ 0x02 == 'i': the damaged key reads "iey-marker-c41d".
  check_flip_is_named(key_marker, 0, 0x02, "iey-marker-c41d");
}

TEST_CASE("lmdb corruption: a flipped byte in a log entry is storage_corrupt naming the index") {
  check_flip_is_named(entry_marker, 5, 0x20, "index " + std::to_string(marked_index));
}

TEST_CASE("lmdb corruption: data.mdb truncated by 4 KiB or 64 KiB is a clean error") {
  const Pristine& p = Pristine::get();
  for (std::size_t cut : {std::size_t{4} << 10, std::size_t{64} << 10}) {
    CAPTURE(cut);
    REQUIRE(p.bytes.size() > cut + (std::size_t{16} << 10));
    TempDir dir = with_data(std::string_view(p.bytes).substr(0, p.bytes.size() - cut));
    const Verdict v = read_everything(dir.path(), p.expected);
    CHECK_MESSAGE(v.outcome == Outcome::clean_error, v.detail);
  }
}

TEST_CASE("lmdb corruption: random byte flips anywhere give a clean error or correct reads") {
  const Pristine& p = Pristine::get();
  constexpr int trials = 100;
  std::mt19937_64 rng(0x5eed1017);
  int clean = 0;
  int correct = 0;
  int wrong = 0;
  std::map<std::string, int> caught_by;  // what raised the clean errors
  for (int trial = 0; trial < trials; ++trial) {
    std::string bytes = p.bytes;
    const int flips = 1 + static_cast<int>(rng() % 8);
    std::string where;
    for (int f = 0; f < flips; ++f) {
      const std::size_t pos = rng() % bytes.size();
      const auto mask = static_cast<unsigned char>(1 + rng() % 255);
      bytes[pos] = static_cast<char>(static_cast<unsigned char>(bytes[pos]) ^ mask);
      where += " " + std::to_string(pos);
    }
    TempDir dir = with_data(bytes);
    const Verdict v = read_everything(dir.path(), p.expected);
    switch (v.outcome) {
      case Outcome::clean_error:
        ++clean;
        ++caught_by[contains(v.detail, "verification crashed") ? "a crash of the walk's child"
                    : contains(v.detail, "checksum mismatch")  ? "a record checksum"
                    : contains(v.detail, "meta page")          ? "the meta pages"
                    : contains(v.detail, "tally")              ? "a tally"
                    : contains(v.detail, "page ") || contains(v.detail, "pages") ? "the page walk"
                                                                                 : "another check"];
        break;
      case Outcome::correct: ++correct; break;
      case Outcome::wrong:
        ++wrong;
        FAIL_CHECK("trial " << trial << " (flips at" << where << "): " << v.detail);
        break;
    }
  }
  std::string causes;
  for (const auto& [what, n] : caught_by)
    causes += (causes.empty() ? "" : ", ") + what + " " + std::to_string(n);
  MESSAGE("lmdb random flips: " << trials << " trials, " << clean << " clean errors (" << causes
                                << "), " << correct << " correct recoveries, " << wrong
                                << " wrong answers");
  CHECK(clean + correct == trials);
}

/// The store in `dir` opened with plain LMDB, as another program (or damage) would change it.
class RawStore {
 public:
  explicit RawStore(const fs::path& dir) {
    REQUIRE(mdb_env_create(&env_) == 0);
    mdb_env_set_maxdbs(env_, 3);
    REQUIRE(mdb_env_open(env_, dir.c_str(), 0, 0644) == 0);
    REQUIRE(mdb_txn_begin(env_, nullptr, 0, &txn_) == 0);
  }
  RawStore(const RawStore&) = delete;
  RawStore& operator=(const RawStore&) = delete;
  ~RawStore() {
    if (txn_ != nullptr) mdb_txn_abort(txn_);
    mdb_env_close(env_);
  }
  MDB_dbi dbi(const char* name) {
    MDB_dbi d = 0;
    REQUIRE(mdb_dbi_open(txn_, name, 0, &d) == 0);
    return d;
  }
  void del(const char* db, std::string key) {
    MDB_val k{key.size(), key.data()};
    REQUIRE(mdb_del(txn_, dbi(db), &k, nullptr) == 0);
  }
  void put(const char* db, std::string key, std::string value) {
    MDB_val k{key.size(), key.data()};
    MDB_val v{value.size(), value.data()};
    REQUIRE(mdb_put(txn_, dbi(db), &k, &v, 0) == 0);
  }
  void commit() {
    REQUIRE(mdb_txn_commit(txn_) == 0);
    txn_ = nullptr;
  }

 private:
  MDB_env* env_ = nullptr;
  MDB_txn* txn_ = nullptr;
};

/// A stored record value as dengine writes it: payload, then checksum.
std::string with_crc(detail::Db db, std::string_view key, std::string_view payload) {
  std::string crc(4, '\0');
  detail::store_crc(crc.data(), detail::record_crc(db, key, payload));
  return std::string(payload) + crc;
}

std::string log_key(LogIndex i) {
  const detail::IndexKey key(i);
  return std::string(key.view());
}

Options walk_off() {
  Options o;
  o.verify_at_open = false;
  return o;
}

TEST_CASE("lmdb corruption: a record deleted behind the store's back is caught at open") {
  const Pristine& p = Pristine::get();
  for (bool walk : {true, false}) {
    for (const char* db : {"kv", "log", "meta"}) {
      CAPTURE(walk);
      CAPTURE(db);
      TempDir dir = with_data(p.bytes);
      {
        RawStore raw(dir.path());
        if (std::string_view(db) == "kv") raw.del("kv", "k" + std::string(key_marker));
        if (std::string_view(db) == "log") raw.del("log", log_key(100));
        if (std::string_view(db) == "meta") raw.del("meta", "hard_state");
        raw.commit();
      }
      Options o;
      o.verify_at_open = walk;
      const Verdict v = read_everything(dir.path(), p.expected, o);
      CHECK_MESSAGE(v.outcome == Outcome::clean_error, v.detail);
      CHECK_MESSAGE(contains(v.detail, "database " + std::string(db)), v.detail);
    }
  }
}

TEST_CASE("lmdb corruption: a stale record with a valid checksum fails the tally's digest") {
  // What a damaged branch page pointing at an old copy of a leaf looks like: a record whose own
  // checksum holds, but which is not the one the store last wrote. Count unchanged, digest not.
  const Pristine& p = Pristine::get();
  TempDir dir = with_data(p.bytes);
  const std::string key = "k" + std::string(key_marker);
  {
    RawStore raw(dir.path());
    raw.put("kv", key, with_crc(detail::Db::kv, key, "an older value"));
    raw.commit();
  }
  const Verdict v = read_everything(dir.path(), p.expected);
  CHECK_MESSAGE(v.outcome == Outcome::clean_error, v.detail);
  CHECK_MESSAGE(contains(v.detail, "database kv"), v.detail);
  CHECK_MESSAGE(contains(v.detail, "stale"), v.detail);
}

TEST_CASE("lmdb corruption: a gap in the log is caught by the walk") {
  // Entry 100 moved to index 200 (well formed, checksum right): the count holds, the keys do not.
  const Pristine& p = Pristine::get();
  TempDir dir = with_data(p.bytes);
  {
    RawStore raw(dir.path());
    raw.del("log", log_key(100));
    const std::string payload = "data" + std::string(8, '\0') + std::string(1, '\0');
    raw.put("log", log_key(200), with_crc(detail::Db::log, log_key(200), payload));
    raw.commit();
  }
  const VerifyReport report = dengine::lmdb::verify(dir.path());
  REQUIRE_FALSE(report.ok());
  CHECK(report.code == errc::storage_corrupt);
  const std::string text = report.to_error().detail;
  CHECK_MESSAGE(contains(text, "database log, index 101: expected index 100"), text);
  CHECK_MESSAGE(contains(text, "index 200: expected index 161"), text);
  CHECK_MESSAGE(contains(text, "database log"), text);
}

TEST_CASE("lmdb corruption: with the walk off, reads still check every record they return") {
  const Pristine& p = Pristine::get();
  SUBCASE("a value") {
    std::string bytes = p.bytes;
    REQUIRE(flip_marker(bytes, value_marker, 3, 0x01) > 0);
    TempDir dir = with_data(bytes);
    auto store = CONF_VALUE(KvStore::open(dir.path(), walk_off()));
    auto r = store.get("marked-value-key");
    CONF_REQUIRE_ERROR(errc::storage_corrupt, r);
    CHECK(contains(r.error().detail, "database kv, key \"marked-value-key\": checksum mismatch"));
    CHECK(contains(r.error().detail, (fs::canonical(dir.path()) / "data.mdb").string()));
    // A scan over it fails the same way; a write over it does too (the old value's checksum
    // leaves the tally, so it is checked first), rather than papering over the damage.
    CONF_REQUIRE_ERROR(errc::storage_corrupt,
                       store.scan("", "", [](std::string_view, std::string_view) { return true; }));
    WriteBatch b;
    b.put("marked-value-key", "new");
    CONF_REQUIRE_ERROR(errc::storage_corrupt, store.write(b, p.expected.applied + 1));
    CHECK(store.applied_index() == p.expected.applied);
  }
  SUBCASE("a log entry") {
    std::string bytes = p.bytes;
    REQUIRE(flip_marker(bytes, entry_marker, 5, 0x20) > 0);
    TempDir dir = with_data(bytes);
    auto engine = CONF_VALUE(Engine::open(dir.path(), walk_off()));
    auto r = engine.entries(marked_index - 2, marked_index + 2, unbounded);
    CONF_REQUIRE_ERROR(errc::storage_corrupt, r);
    CHECK(contains(r.error().detail, "database log, index 77: checksum mismatch"));
    CONF_REQUIRE_ERROR(errc::storage_corrupt, engine.term(marked_index));
    CHECK(CONF_VALUE(engine.term(marked_index + 1)) == p.expected.log[marked_index - 40].term);
  }
}

TEST_CASE("lmdb: a sound store whose file ends before its last page opens and verifies") {
  // LMDB never writes a page it freed in the transaction that allocated it; such pages can sit
  // at the end, so a sound data.mdb may be shorter than its meta page's last page. Big values
  // replaced or erased within one batch leave exactly that. Only a truncation that cuts a page
  // in use is damage.
  TempDir dir("dengine-lmdb-short-");
  std::map<std::string, std::string> expected;
  {
    auto store = CONF_VALUE(KvStore::open(dir.path()));
    for (LogIndex round = 1; round <= 6; ++round) {
      WriteBatch b;
      for (int k = 0; k < 50; ++k) {
        const std::string key = "small/" + std::to_string(k + round * 50);
        b.put(key, std::string(100, 'x'));
        expected[key] = std::string(100, 'x');
      }
      b.put("big", std::string(300000 + round * 1000, 'b'));
      b.put("big", std::string(200000, 'c'));
      b.put("big2", std::string(500000, 'd'));
      b.erase("big2");
      expected["big"] = std::string(200000, 'c');
      CONF_REQUIRE_OK(store.write(b, round));
    }
  }
  const auto f = CONF_VALUE(detail::file::check_meta_pages(dir.path() / "data.mdb"));
  REQUIRE_MESSAGE(f.size / f.psize < f.pages(), "the workload no longer leaves a short file");
  const VerifyReport report = dengine::lmdb::verify(dir.path());
  CHECK_MESSAGE(report.ok(), report.to_error().detail);
  for (bool walk : {true, false}) {
    CAPTURE(walk);
    Options o;
    o.verify_at_open = walk;
    auto store = CONF_VALUE(KvStore::open(dir.path(), o));
    for (const auto& [key, value] : expected) CHECK(CONF_VALUE(store.get(key)) == value);
  }
}

TEST_CASE("lmdb: create_if_missing off refuses a missing or empty store") {
  TempDir dir("dengine-lmdb-missing-");
  Options o;
  o.create_if_missing = false;
  SUBCASE("no dir") {
    auto r = Engine::open(dir.path() / "absent", o);
    CONF_REQUIRE_ERROR(errc::storage_corrupt, r);
    CHECK(contains(r.error().detail, (dir.path() / "absent" / "data.mdb").string()));
    CHECK(contains(r.error().detail, "create_if_missing"));
    CHECK_FALSE(fs::exists(dir.path() / "absent"));
  }
  SUBCASE("a dir without data.mdb") {
    auto r = KvStore::open(dir.path(), o);
    CONF_REQUIRE_ERROR(errc::storage_corrupt, r);
    CHECK_FALSE(fs::exists(dir.path() / "data.mdb"));
  }
  SUBCASE("an empty data.mdb") {
    write_file(dir.path() / "data.mdb", "");
    CONF_REQUIRE_ERROR(errc::storage_corrupt, Engine::open(dir.path(), o));
  }
  SUBCASE("a store that exists opens") {
    { CONF_VALUE(Engine::open(dir.path())); }
    auto engine = CONF_VALUE(Engine::open(dir.path(), o));
    CHECK(engine.last_index() == 0);
  }
}

TEST_CASE("lmdb: verify() reports a sound store's counts and every problem of a damaged one") {
  const Pristine& p = Pristine::get();
  {
    const VerifyReport report = dengine::lmdb::verify(p.dir.path());
    CHECK_MESSAGE(report.ok(), report.to_error().detail);
    CHECK(report.initialized);
    CHECK(report.log_records == p.expected.log.size());
    CHECK(report.kv_records == p.expected.kv.size());
    CHECK(report.meta_records == 5);  // format, tally, snapshot, hard_state, kv_applied
    CHECK(report.pages > 0);
    CHECK(report.file == fs::canonical(p.dir.path()) / "data.mdb");
  }
  std::string bytes = p.bytes;
  REQUIRE(flip_marker(bytes, value_marker, 3, 0x01) > 0);
  REQUIRE(flip_marker(bytes, entry_marker, 5, 0x20) > 0);
  TempDir dir = with_data(bytes);
  for (const VerifyReport& report :
       {dengine::lmdb::verify(dir.path()), dengine::lmdb::verify_in_child(dir.path())}) {
    REQUIRE_FALSE(report.ok());
    CHECK(report.code == errc::storage_corrupt);
    const std::string text = report.to_error().detail;
    CHECK_MESSAGE(contains(text, "database kv, key \"marked-value-key\": checksum mismatch"), text);
    CHECK_MESSAGE(contains(text, "database log, index 77: checksum mismatch"), text);
  }
  // A fresh dir LMDB created but nothing was committed to is sound and uninitialized.
  TempDir empty("dengine-lmdb-empty-");
  write_file(empty.path() / "data.mdb", "");
  const VerifyReport none = dengine::lmdb::verify(empty.path());
  CHECK(none.ok());
  CHECK_FALSE(none.initialized);
}

TEST_CASE("lmdb: a verification child that crashes or hangs is a clean report, not a crash") {
  const fs::path file = "/data/node1/data.mdb";
  struct Case {
    const char* name;
    void (*fault)();
    errc code;
    const char* text;
  };
  for (const Case& c : {
           Case{"SIGSEGV", [] { ::raise(SIGSEGV); }, errc::storage_corrupt, "SIGSEGV"},
           Case{"abort", [] { std::abort(); }, errc::storage_corrupt, "SIGABRT"},
           Case{"SIGKILL", [] { ::raise(SIGKILL); }, errc::io_error, "killed from outside"},
           Case{"no report", [] { ::_exit(7); }, errc::storage_corrupt, "exit status 7"},
           Case{"hang", [] { ::pause(); }, errc::io_error, "no progress"},
       }) {
    CAPTURE(c.name);
    const VerifyReport report = detail::report_from_child(
        file,
        [&](const std::function<void()>&) -> VerifyReport {
          c.fault();
          return {};
        },
        500);
    CHECK(report.code == c.code);
    const auto e = report.to_error();
    CHECK(e == c.code);
    CHECK_MESSAGE(contains(e.detail, file.string()), e.detail);
    CHECK_MESSAGE(contains(e.detail, c.text), e.detail);
  }
  // The child keeps none of the parent's descriptors (a data dir's flock, a listening socket):
  // an orphaned child must not hold them while a restarted node wants them back.
  // (Above 3: the child moves its own pipe to descriptor 3.)
  int held[2];
  REQUIRE(::pipe(held) == 0);
  const int high = ::fcntl(held[0], F_DUPFD, 100);
  REQUIRE(high >= 100);
  const VerifyReport fds = detail::report_from_child(file, [&](const std::function<void()>&) {
    VerifyReport r;
    r.kv_records = (::fcntl(high, F_GETFD) == -1 && errno == EBADF) ? 1 : 0;
    return r;
  });
  ::close(high);
  ::close(held[0]);
  ::close(held[1]);
  CHECK(fds.ok());
  CHECK(fds.kv_records == 1);
  // A report the child sends arrives whole, progress dots and all.
  const VerifyReport sent = detail::report_from_child(file, [](const std::function<void()>& tick) {
    VerifyReport r;
    for (int k = 0; k < 10000; ++k) tick();
    r.initialized = true;
    r.kv_records = 12;
    r.add(errc::incompatible_version, std::string(100000, 'x'));
    r.add(errc::storage_corrupt, "second");
    return r;
  });
  CHECK(sent.code == errc::incompatible_version);
  CHECK(sent.initialized);
  CHECK(sent.kv_records == 12);
  REQUIRE(sent.problems.size() == 2);
  CHECK(sent.problems[0] == std::string(100000, 'x'));
  CHECK(sent.problems[1] == "second");
}

}  // namespace
