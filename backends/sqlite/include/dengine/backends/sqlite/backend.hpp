#pragma once
/// dengine::sqlite::Backend — the traits an EmbeddedEngine is instantiated with to run on the
/// SQLite backend (the Backend concept, include/dengine/engine/backend.hpp): its StorageEngine and
/// KvStore types and how both open from a directory.

#include <filesystem>
#include <memory>
#include <string_view>
#include <utility>

#include "dengine/backends/sqlite/engine.hpp"
#include "dengine/backends/sqlite/kv_store.hpp"
#include "dengine/backends/sqlite/options.hpp"
#include "dengine/core/config.hpp"
#include "dengine/core/error.hpp"

namespace dengine::sqlite {

/// Traits of the SQLite backend, for EmbeddedEngine<dengine::sqlite::Backend>.
struct Backend {
  using storage_engine = Engine;
  using kv_store = KvStore;
  static constexpr std::string_view name = "sqlite";
  /// Data survives the process (and, in DiskFirst, power loss).
  static constexpr bool persistent = true;

  /// Opens (or creates) the log database in `dir`, syncing per `mode`.
  static result<std::unique_ptr<Engine>> open_storage(const std::filesystem::path& dir,
                                                      PersistenceMode mode) {
    Options options;
    options.mode = mode;
    DENGINE_TRY(engine, Engine::open(dir, options));
    return std::make_unique<Engine>(std::move(engine));
  }
  /// Opens (or creates) the KV database in `dir`, syncing per `mode`.
  static result<std::unique_ptr<KvStore>> open_kv_store(const std::filesystem::path& dir,
                                                        PersistenceMode mode) {
    Options options;
    options.mode = mode;
    DENGINE_TRY(store, KvStore::open(dir, options));
    return std::make_unique<KvStore>(std::move(store));
  }
};

}  // namespace dengine::sqlite
