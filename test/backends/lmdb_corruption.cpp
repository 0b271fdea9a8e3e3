// The LMDB backend against damaged files: flipped bytes in values, keys and log entries, records
// deleted behind the store's back, truncated files, and random flips anywhere in data.mdb. Every
// case must end in a clean error naming data.mdb (and the key or index where one is known) or in
// reads that all equal what was written: never a wrong answer, never a crash.

#include <doctest/doctest.h>

#include <lmdb.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "conformance_helpers.hpp"
#include "dengine/backends/lmdb.hpp"
#include "temp_dir.hpp"

namespace {

namespace fs = std::filesystem;
using dengine::Entry;
using dengine::EntryType;
using dengine::errc;
using dengine::HardState;
using dengine::LogIndex;
using dengine::SnapshotMeta;
using dengine::WriteBatch;
using dengine::conformance::unbounded;
using dengine::lmdb::Engine;
using dengine::lmdb::KvStore;
using dengine::lmdb::Options;
using dengine::test::TempDir;

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

std::string read_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  REQUIRE(in.good());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const fs::path& file, std::string_view bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

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

TEST_CASE("lmdb corruption: a flipped byte in a stored value is storage_corrupt naming the key") {
  const Pristine& p = Pristine::get();
  std::string bytes = p.bytes;
  REQUIRE(flip_marker(bytes, value_marker, 3, 0x01) > 0);
  TempDir dir = with_data(bytes);
  const Verdict v = read_everything(dir.path(), p.expected);
  CHECK_MESSAGE(v.outcome == Outcome::clean_error, v.detail);
  CHECK_MESSAGE(contains(v.detail, "marked-value-key"), v.detail);
}

TEST_CASE("lmdb corruption: a flipped byte in a stored key is storage_corrupt naming the key") {
  const Pristine& p = Pristine::get();
  std::string bytes = p.bytes;
  // 'k' ^ 0x02 == 'i': the damaged key reads "iey-marker-c41d".
  REQUIRE(flip_marker(bytes, key_marker, 0, 0x02) > 0);
  TempDir dir = with_data(bytes);
  const Verdict v = read_everything(dir.path(), p.expected);
  CHECK_MESSAGE(v.outcome == Outcome::clean_error, v.detail);
  CHECK_MESSAGE(contains(v.detail, "iey-marker-c41d"), v.detail);
}

TEST_CASE("lmdb corruption: a flipped byte in a log entry is storage_corrupt naming the index") {
  const Pristine& p = Pristine::get();
  std::string bytes = p.bytes;
  REQUIRE(flip_marker(bytes, entry_marker, 5, 0x20) > 0);
  TempDir dir = with_data(bytes);
  const Verdict v = read_everything(dir.path(), p.expected);
  CHECK_MESSAGE(v.outcome == Outcome::clean_error, v.detail);
  CHECK_MESSAGE(contains(v.detail, "index " + std::to_string(marked_index)), v.detail);
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

}  // namespace
