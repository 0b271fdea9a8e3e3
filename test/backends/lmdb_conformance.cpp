// The LMDB backend under the shared conformance suite: the engine in both persistence modes and
// with a tiny initial map (so every case also exercises map growth), the KV store alone and
// sharing its environment with an engine open on the same dir, and the KV state machine over it.

#include <doctest/doctest.h>

#include <cstddef>

#include "backend_test_support.hpp"
#include "dengine/backends/lmdb.hpp"
#include "dengine/conformance/kv_store.hpp"
#include "dengine/conformance/state_machine.hpp"
#include "dengine/conformance/storage.hpp"
#include "kv_machine_fixture.hpp"

namespace {

using dengine::PersistenceMode;
using dengine::lmdb::Engine;
using dengine::lmdb::KvStore;
using dengine::lmdb::Options;

Options options(PersistenceMode mode, std::size_t initial_map_size = Options{}.initial_map_size) {
  Options o;
  o.mode = mode;
  o.initial_map_size = initial_map_size;
  return o;
}

template <PersistenceMode Mode, std::size_t InitialMapSize>
struct LmdbLogFixtureT : dengine::test::backend::DirLogFixture<Engine, Options> {
  /// compact() and reset() commit a write transaction that MemFirst does not skip.
  static constexpr bool reset_durable_on_return = true;
  LmdbLogFixtureT() : DirLogFixture("dengine-lmdb-", options(Mode, InitialMapSize)) {}
};

struct LmdbLogFixture : LmdbLogFixtureT<PersistenceMode::disk_first, std::size_t{64} << 20> {};
struct LmdbMemFirstLogFixture : LmdbLogFixtureT<PersistenceMode::mem_first, std::size_t{64} << 20> {
};
/// 64 KiB to start with: the suite's larger cases grow the map many times.
struct LmdbTinyMapLogFixture : LmdbLogFixtureT<PersistenceMode::mem_first, std::size_t{64} << 10> {
};

struct LmdbKvFixture : dengine::test::backend::DirKvFixture<KvStore, Options> {
  LmdbKvFixture() : DirKvFixture("dengine-lmdb-kv-", options(PersistenceMode::disk_first)) {}
};
struct LmdbMemFirstKvFixture : dengine::test::backend::DirKvFixture<KvStore, Options> {
  LmdbMemFirstKvFixture() : DirKvFixture("dengine-lmdb-kv-", options(PersistenceMode::mem_first)) {}
};
/// An engine (64 KiB map) holds the environment open throughout; the store's reopen() then never
/// closes it, and the store's data shares data.mdb with the log.
struct LmdbSharedEnvKvFixture : dengine::test::backend::DirKvFixture<KvStore, Options, Engine> {
  LmdbSharedEnvKvFixture()
      : DirKvFixture("dengine-lmdb-kv-", options(PersistenceMode::mem_first),
                     options(PersistenceMode::disk_first, std::size_t{64} << 10)) {}
};

/// The KV machine over the store alone.
struct LmdbKvMachineFixture : dengine::test::KvMachineFixture<LmdbKvFixture> {};

}  // namespace

DENGINE_STORAGE_CONFORMANCE(LmdbLogFixture);
DENGINE_STORAGE_CONFORMANCE(LmdbMemFirstLogFixture);
DENGINE_STORAGE_CONFORMANCE(LmdbTinyMapLogFixture);
DENGINE_KV_CONFORMANCE(LmdbKvFixture);
DENGINE_KV_CONFORMANCE(LmdbMemFirstKvFixture);
DENGINE_KV_CONFORMANCE(LmdbSharedEnvKvFixture);
DENGINE_STATE_MACHINE_CONFORMANCE(LmdbKvMachineFixture);
