#pragma once
/// dengine::sqlite::Backend — the traits an EmbeddedEngine is instantiated with to run on the
/// SQLite backend (the Backend concept, include/dengine/engine/backend.hpp): its StorageEngine and
/// KvStore types, what they can store, its tuning and how both open from a directory.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string_view>

#include "dengine/backends/sqlite/options.hpp"
#include "dengine/core/config.hpp"
#include "dengine/core/error.hpp"
#include "dengine/storage/backend_traits.hpp"

namespace dengine::sqlite {

// The store classes are only named here (their definitions are in engine.hpp and kv_store.hpp,
// which <dengine/backends/sqlite.hpp> includes): the traits are all an engine's declaration
// needs, so that a translation unit using a precompiled engine does not compile the backend.
class Engine;
class KvStore;

/// The SQLite backend's settings an EmbeddedEngine passes on (EngineConfig::backend_tuning); the
/// defaults are Options' own.
struct Tuning {
  /// How long a statement waits for another connection's lock (Options::busy_timeout).
  std::chrono::milliseconds busy_timeout = Options{}.busy_timeout;
  /// Upper bound on each database file's size, 0 = none (Options::max_db_bytes).
  std::uint64_t max_db_bytes = Options{}.max_db_bytes;
  /// Whether opening a store that does not exist creates it (Options::create_if_missing).
  /// EmbeddedEngine turns it off on a data dir whose marker says it has served, so that a
  /// deleted database file is refused, not replaced by an empty one (data_dir_guard.hpp).
  bool create_if_missing = Options{}.create_if_missing;
};

/// What is particular to the SQLite backend's traits (storage::BackendTraits adds the rest).
struct BackendSpec : storage::PersistentSpec<Engine, KvStore, Tuning> {
  static constexpr std::string_view name = "sqlite";
  /// SQLite bounds a BLOB and a whole row by SQLITE_MAX_LENGTH (1,000,000,000 bytes unless the
  /// library is built otherwise). A KV row holds a key and a value: each gets half.
  static constexpr std::size_t max_key_bytes = 500'000'000;
  static constexpr std::size_t max_value_bytes = 500'000'000;
  /// A log row holds the entry's data beside three integers.
  static constexpr std::size_t max_entry_bytes = 1'000'000'000 - 64;

  /// The options both stores open with.
  static Options storage_options(PersistenceMode mode, const Tuning& t) {
    return {.mode = mode,
            .busy_timeout = t.busy_timeout,
            .max_db_bytes = t.max_db_bytes,
            .create_if_missing = t.create_if_missing};
  }
};

/// Traits of the SQLite backend, for EmbeddedEngine<dengine::sqlite::Backend>.
struct Backend : storage::BackendTraits<BackendSpec> {};

}  // namespace dengine::sqlite
