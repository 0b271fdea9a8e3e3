#pragma once
/// dengine::rawfile::Backend — the traits an EmbeddedEngine is instantiated with to run on the
/// raw-file backend (the Backend concept, include/dengine/engine/backend.hpp): its StorageEngine
/// and KvStore types and how both open from a directory.

#include <filesystem>
#include <memory>
#include <string_view>
#include <utility>

#include "dengine/backends/rawfile/engine.hpp"
#include "dengine/backends/rawfile/kv_store.hpp"
#include "dengine/backends/rawfile/options.hpp"
#include "dengine/core/config.hpp"
#include "dengine/core/error.hpp"

namespace dengine::rawfile {

/// Traits of the raw-file backend, for EmbeddedEngine<dengine::rawfile::Backend>.
struct Backend {
  using storage_engine = Engine;
  using kv_store = KvStore;
  static constexpr std::string_view name = "rawfile";
  /// Data survives the process (and, in DiskFirst, power loss).
  static constexpr bool persistent = true;

  /// Opens (or creates) the segmented log in `dir`; MemFirst syncs in the background.
  static result<std::unique_ptr<Engine>> open_storage(const std::filesystem::path& dir,
                                                      PersistenceMode mode) {
    Options options;
    options.mode = mode;
    DENGINE_TRY(engine, Engine::open(dir, std::move(options)));
    return std::make_unique<Engine>(std::move(engine));
  }
  /// Opens (or creates) the checkpointed KV map in `dir`. Its durability comes from checkpoints
  /// plus replay of the Raft log, so `mode` does not change it.
  static result<std::unique_ptr<KvStore>> open_kv_store(const std::filesystem::path& dir,
                                                        PersistenceMode /*mode*/) {
    DENGINE_TRY(store, KvStore::open(dir, KvOptions{}));
    return std::make_unique<KvStore>(std::move(store));
  }
};

}  // namespace dengine::rawfile
