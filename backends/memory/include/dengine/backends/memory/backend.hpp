#pragma once
/// dengine::memory::Backend — the traits an EmbeddedEngine is instantiated with to run on the
/// in-memory backend (the Backend concept, include/dengine/engine/backend.hpp): its StorageEngine
/// and KvStore types, what they can store and how both open from a directory. Nothing to tune.

#include <cstddef>
#include <limits>
#include <string_view>

#include "dengine/storage/backend_traits.hpp"

namespace dengine::memory {

// The store classes are only named here (their definitions are in engine.hpp and kv_store.hpp,
// which <dengine/backends/memory.hpp> includes): the traits are all an engine's declaration
// needs, so that a translation unit using a precompiled engine does not compile the backend.
class Engine;
class KvStore;

/// What is particular to the in-memory backend's traits (storage::BackendTraits adds the rest:
/// with no tuning, both stores open fresh and empty, whatever the directory and mode).
struct BackendSpec {
  using storage_engine = Engine;
  using kv_store = KvStore;
  static constexpr std::string_view name = "memory";
  /// Nothing survives the process: the directories are not used.
  static constexpr bool persistent = false;
  /// std::string keys, values and entries: bounded by memory only.
  static constexpr std::size_t max_key_bytes = std::numeric_limits<std::size_t>::max();
  static constexpr std::size_t max_value_bytes = std::numeric_limits<std::size_t>::max();
  static constexpr std::size_t max_entry_bytes = std::numeric_limits<std::size_t>::max();
};

/// Traits of the in-memory backend, for EmbeddedEngine<dengine::memory::Backend>.
struct Backend : storage::BackendTraits<BackendSpec> {};

}  // namespace dengine::memory
