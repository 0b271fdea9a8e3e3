// The SQLite backend under the shared conformance suite: the engine in both persistence modes,
// the KV store alone and sharing its database file with an engine open on the same dir.

#include <doctest/doctest.h>

#include <optional>
#include <stdexcept>

#include "conformance.hpp"
#include "dengine/backends/sqlite.hpp"
#include "temp_dir.hpp"

namespace {

/// Opens `T` on `dir` or throws with the backend's message (the suite's fixture rule).
template <class T>
T open_or_throw(const std::filesystem::path& dir, const dengine::sqlite::Options& options) {
  auto r = T::open(dir, options);
  if (!r) throw std::runtime_error("sqlite open failed: " + r.error().message());
  return std::move(r).value();
}

template <dengine::PersistenceMode Mode>
struct SqliteLogFixtureT {
  using engine_type = dengine::sqlite::Engine;
  SqliteLogFixtureT() { open(); }
  engine_type& engine() { return *engine_; }
  void reopen() {
    engine_.reset();
    open();
  }

 private:
  void open() {
    dengine::sqlite::Options options;
    options.mode = Mode;
    engine_.emplace(open_or_throw<engine_type>(dir_.path(), options));
  }
  dengine::test::TempDir dir_{"dengine-sqlite-"};
  std::optional<engine_type> engine_;
};

struct SqliteLogFixture : SqliteLogFixtureT<dengine::PersistenceMode::disk_first> {};
struct SqliteMemFirstLogFixture : SqliteLogFixtureT<dengine::PersistenceMode::mem_first> {};

template <dengine::PersistenceMode Mode, bool SharedWithEngine>
struct SqliteKvFixtureT {
  using store_type = dengine::sqlite::KvStore;
  SqliteKvFixtureT() {
    // With an engine open on the same dir, the store shares dengine.sqlite3 with the log (each
    // with its own connection) and its reopen() leaves the file open in the process.
    if constexpr (SharedWithEngine)
      engine_.emplace(open_or_throw<dengine::sqlite::Engine>(dir_.path(), {}));
    open();
  }
  store_type& store() { return *store_; }
  void reopen() {
    store_.reset();
    open();
  }

 private:
  void open() {
    dengine::sqlite::Options options;
    options.mode = Mode;
    store_.emplace(open_or_throw<store_type>(dir_.path(), options));
  }
  dengine::test::TempDir dir_{"dengine-sqlite-kv-"};
  std::optional<dengine::sqlite::Engine> engine_;
  std::optional<store_type> store_;
};

struct SqliteKvFixture : SqliteKvFixtureT<dengine::PersistenceMode::disk_first, false> {};
struct SqliteMemFirstKvFixture : SqliteKvFixtureT<dengine::PersistenceMode::mem_first, false> {};
struct SqliteSharedFileKvFixture : SqliteKvFixtureT<dengine::PersistenceMode::mem_first, true> {};

}  // namespace

DENGINE_STORAGE_CONFORMANCE(SqliteLogFixture);
DENGINE_STORAGE_CONFORMANCE(SqliteMemFirstLogFixture);
DENGINE_KV_CONFORMANCE(SqliteKvFixture);
DENGINE_KV_CONFORMANCE(SqliteMemFirstKvFixture);
DENGINE_KV_CONFORMANCE(SqliteSharedFileKvFixture);
