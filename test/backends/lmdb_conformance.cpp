// The LMDB backend under the shared conformance suite: the engine in both persistence modes and
// with a tiny initial map (so every case also exercises map growth), the KV store alone and
// sharing its environment with an engine open on the same dir.

#include <doctest/doctest.h>

#include <cstddef>
#include <optional>
#include <stdexcept>

#include "conformance.hpp"
#include "dengine/backends/lmdb.hpp"
#include "temp_dir.hpp"

namespace {

/// Opens `T` on `dir` or throws with the backend's message (the suite's fixture rule).
template <class T>
T open_or_throw(const std::filesystem::path& dir, const dengine::lmdb::Options& options) {
  auto r = T::open(dir, options);
  if (!r) throw std::runtime_error("lmdb open failed: " + r.error().message());
  return std::move(r).value();
}

template <dengine::PersistenceMode Mode, std::size_t InitialMapSize>
struct LmdbLogFixtureT {
  using engine_type = dengine::lmdb::Engine;
  LmdbLogFixtureT() { open(); }
  engine_type& engine() { return *engine_; }
  void reopen() {
    engine_.reset();  // the last owner closes the environment
    open();
  }

 private:
  void open() {
    dengine::lmdb::Options options;
    options.mode = Mode;
    options.initial_map_size = InitialMapSize;
    engine_.emplace(open_or_throw<engine_type>(dir_.path(), options));
  }
  dengine::test::TempDir dir_{"dengine-lmdb-"};
  std::optional<engine_type> engine_;
};

struct LmdbLogFixture
    : LmdbLogFixtureT<dengine::PersistenceMode::disk_first, std::size_t{64} << 20> {};
struct LmdbMemFirstLogFixture
    : LmdbLogFixtureT<dengine::PersistenceMode::mem_first, std::size_t{64} << 20> {};
/// 64 KiB to start with: the suite's larger cases grow the map many times.
struct LmdbTinyMapLogFixture
    : LmdbLogFixtureT<dengine::PersistenceMode::mem_first, std::size_t{64} << 10> {};

template <dengine::PersistenceMode Mode, bool SharedWithEngine>
struct LmdbKvFixtureT {
  using store_type = dengine::lmdb::KvStore;
  LmdbKvFixtureT() {
    if constexpr (SharedWithEngine) {
      // An engine holds the environment open throughout; the store's reopen() then never closes
      // it, and the store's data shares data.mdb with the log.
      dengine::lmdb::Options options;
      options.initial_map_size = std::size_t{64} << 10;
      engine_.emplace(open_or_throw<dengine::lmdb::Engine>(dir_.path(), options));
    }
    open();
  }
  store_type& store() { return *store_; }
  void reopen() {
    store_.reset();
    open();
  }

 private:
  void open() {
    dengine::lmdb::Options options;
    options.mode = Mode;
    store_.emplace(open_or_throw<store_type>(dir_.path(), options));
  }
  dengine::test::TempDir dir_{"dengine-lmdb-kv-"};
  std::optional<dengine::lmdb::Engine> engine_;
  std::optional<store_type> store_;
};

struct LmdbKvFixture : LmdbKvFixtureT<dengine::PersistenceMode::disk_first, false> {};
struct LmdbMemFirstKvFixture : LmdbKvFixtureT<dengine::PersistenceMode::mem_first, false> {};
struct LmdbSharedEnvKvFixture : LmdbKvFixtureT<dengine::PersistenceMode::mem_first, true> {};

}  // namespace

DENGINE_STORAGE_CONFORMANCE(LmdbLogFixture);
DENGINE_STORAGE_CONFORMANCE(LmdbMemFirstLogFixture);
DENGINE_STORAGE_CONFORMANCE(LmdbTinyMapLogFixture);
DENGINE_KV_CONFORMANCE(LmdbKvFixture);
DENGINE_KV_CONFORMANCE(LmdbMemFirstKvFixture);
DENGINE_KV_CONFORMANCE(LmdbSharedEnvKvFixture);
