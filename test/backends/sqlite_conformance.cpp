// The SQLite backend under the shared conformance suite: the engine in both persistence modes,
// the KV store alone and sharing its database file with an engine open on the same dir, and the
// KV state machine over it.

#include <doctest/doctest.h>

#include "backend_test_support.hpp"
#include "dengine/backends/sqlite.hpp"
#include "dengine/conformance/kv_store.hpp"
#include "dengine/conformance/state_machine.hpp"
#include "dengine/conformance/storage.hpp"
#include "kv_machine_fixture.hpp"

namespace {

using dengine::PersistenceMode;
using dengine::sqlite::Engine;
using dengine::sqlite::KvStore;
using dengine::sqlite::Options;

Options options(PersistenceMode mode) {
  Options o;
  o.mode = mode;
  return o;
}

template <PersistenceMode Mode>
struct SqliteLogFixtureT : dengine::test::backend::DirLogFixture<Engine, Options> {
  /// compact() and reset() are transactions SQLite commits before they return.
  static constexpr bool reset_durable_on_return = true;
  SqliteLogFixtureT() : DirLogFixture("dengine-sqlite-", options(Mode)) {}
};

struct SqliteLogFixture : SqliteLogFixtureT<PersistenceMode::disk_first> {};
struct SqliteMemFirstLogFixture : SqliteLogFixtureT<PersistenceMode::mem_first> {};

struct SqliteKvFixture : dengine::test::backend::DirKvFixture<KvStore, Options> {
  SqliteKvFixture() : DirKvFixture("dengine-sqlite-kv-", options(PersistenceMode::disk_first)) {}
};
struct SqliteMemFirstKvFixture : dengine::test::backend::DirKvFixture<KvStore, Options> {
  SqliteMemFirstKvFixture()
      : DirKvFixture("dengine-sqlite-kv-", options(PersistenceMode::mem_first)) {}
};
/// With an engine open on the same dir, the store shares dengine.sqlite3 with the log (each
/// with its own connection) and its reopen() leaves the file open in the process.
struct SqliteSharedFileKvFixture : dengine::test::backend::DirKvFixture<KvStore, Options, Engine> {
  SqliteSharedFileKvFixture()
      : DirKvFixture("dengine-sqlite-kv-", options(PersistenceMode::mem_first), Options{}) {}
};

/// The KV machine over the store alone.
struct SqliteKvMachineFixture : dengine::test::KvMachineFixture<SqliteKvFixture> {};

}  // namespace

DENGINE_STORAGE_CONFORMANCE(SqliteLogFixture);
DENGINE_STORAGE_CONFORMANCE(SqliteMemFirstLogFixture);
DENGINE_KV_CONFORMANCE(SqliteKvFixture);
DENGINE_KV_CONFORMANCE(SqliteMemFirstKvFixture);
DENGINE_KV_CONFORMANCE(SqliteSharedFileKvFixture);
DENGINE_STATE_MACHINE_CONFORMANCE(SqliteKvMachineFixture);
