#pragma once
/// dengine::memory::Backend — the traits an EmbeddedEngine is instantiated with to run on the
/// in-memory backend (the Backend concept, include/dengine/engine/backend.hpp): its StorageEngine
/// and KvStore types, what they can store and how both open from a directory. Nothing to tune.

#include <cstddef>
#include <filesystem>
#include <limits>
#include <memory>
#include <string_view>

#include "dengine/backends/memory/engine.hpp"
#include "dengine/backends/memory/kv_store.hpp"
#include "dengine/core/config.hpp"
#include "dengine/core/error.hpp"

namespace dengine::memory {

/// Traits of the in-memory backend, for EmbeddedEngine<dengine::memory::Backend>.
struct Backend {
  using storage_engine = Engine;
  using kv_store = KvStore;
  static constexpr std::string_view name = "memory";
  /// Nothing survives the process: the directories are not used.
  static constexpr bool persistent = false;
  /// std::string keys, values and entries: bounded by memory only.
  static constexpr std::size_t max_key_bytes = std::numeric_limits<std::size_t>::max();
  static constexpr std::size_t max_value_bytes = std::numeric_limits<std::size_t>::max();
  static constexpr std::size_t max_entry_bytes = std::numeric_limits<std::size_t>::max();

  /// A fresh, empty in-memory log (`dir` and `mode` are unused).
  static result<std::unique_ptr<Engine>> open_storage(const std::filesystem::path& /*dir*/,
                                                      PersistenceMode /*mode*/) {
    return std::make_unique<Engine>();
  }
  /// A fresh, empty in-memory KV store (`dir` and `mode` are unused).
  static result<std::unique_ptr<KvStore>> open_kv_store(const std::filesystem::path& /*dir*/,
                                                        PersistenceMode /*mode*/) {
    return std::make_unique<KvStore>();
  }
};

}  // namespace dengine::memory
