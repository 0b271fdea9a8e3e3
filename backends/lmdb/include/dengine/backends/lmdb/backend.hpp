#pragma once
/// dengine::lmdb::Backend — the traits an EmbeddedEngine is instantiated with to run on the
/// LMDB backend (the Backend concept, include/dengine/engine/backend.hpp): its StorageEngine and
/// KvStore types, what they can store, its tuning and how both open from a directory.

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

#include "dengine/backends/lmdb/options.hpp"
#include "dengine/core/config.hpp"
#include "dengine/core/error.hpp"
#include "dengine/storage/backend_traits.hpp"

namespace dengine::lmdb {

// The store classes are only named here (their definitions are in engine.hpp and kv_store.hpp,
// which <dengine/backends/lmdb.hpp> includes): the traits are all an engine's declaration
// needs, so that a translation unit using a precompiled engine does not compile the backend.
class Engine;
class KvStore;

/// The LMDB backend's settings an EmbeddedEngine passes on (EngineConfig::backend_tuning); the
/// defaults are Options' own.
struct Tuning {
  /// Map size an environment starts with (Options::initial_map_size; it doubles when full).
  std::size_t initial_map_size = Options{}.initial_map_size;
  /// Upper bound for map growth (Options::max_map_size): past it writes fail with no_space.
  std::size_t max_map_size = Options{}.max_map_size;
  /// Reader slots in the lock file (Options::max_readers).
  unsigned max_readers = Options{}.max_readers;
  /// Whether opening a store that does not exist creates it (Options::create_if_missing).
  /// EmbeddedEngine turns it off on a data dir whose marker says it has served, so that a
  /// deleted database file is refused, not replaced by an empty one (data_dir_guard.hpp).
  bool create_if_missing = Options{}.create_if_missing;
};

/// What is particular to the LMDB backend's traits (storage::BackendTraits adds the rest).
struct BackendSpec : storage::PersistentSpec<Engine, KvStore, Tuning> {
  static constexpr std::string_view name = "lmdb";
  /// LMDB's key limit (mdb_env_get_maxkeysize: 511 bytes as Debian and the wrap build it) minus
  /// the KvStore's tag byte. check_kv_store refuses a library built with a smaller limit.
  static constexpr std::size_t max_key_bytes = 510;
  /// LMDB stores a value of up to 2^32 - 1 bytes; 64 are left for the framing the backend puts
  /// around a record.
  static constexpr std::size_t max_value_bytes = 0xFFFFFFFFU - 64;
  /// A log entry's value is term and type (9 bytes) plus the data, under the same bound.
  static constexpr std::size_t max_entry_bytes = max_value_bytes - 9;

  /// The options both stores open with (one environment per data dir).
  static Options storage_options(PersistenceMode mode, const Tuning& t) {
    return {.mode = mode,
            .initial_map_size = t.initial_map_size,
            .max_map_size = t.max_map_size,
            .max_readers = t.max_readers,
            .create_if_missing = t.create_if_missing};
  }
  /// incompatible_version if the LMDB library stores shorter keys than max_key_bytes says.
  /// (A template only so that these traits compile with KvStore merely declared.)
  template <class Store = KvStore>
  static result<void> check_kv_store(const Store& store, const std::filesystem::path& dir) {
    if (store.max_key_size() < max_key_bytes)
      return error(errc::incompatible_version,
                   "lmdb kv store " + dir.string() + ": this LMDB library stores keys of at most " +
                       std::to_string(store.max_key_size()) + " bytes, dengine::lmdb::Backend " +
                       "declares " + std::to_string(max_key_bytes) +
                       " (build LMDB with its default MDB_MAXKEYSIZE)");
    return success();
  }
};

/// Traits of the LMDB backend, for EmbeddedEngine<dengine::lmdb::Backend>.
struct Backend : storage::BackendTraits<BackendSpec> {};

}  // namespace dengine::lmdb
