#pragma once
/// The Backend concept: how an EmbeddedEngine opens its storage from a data dir. A backend
/// module (backends/<name>) provides one traits struct, e.g. dengine::lmdb::Backend, naming its
/// StorageEngine and KvStore types, declaring what they can store and opening both; the user
/// picks it at compile time:
///
///   auto engine = dengine::EmbeddedEngine<dengine::lmdb::Backend>::start(config);
///
/// A user's own storage plugs in the same way (docs/custom-storage.md): no base class, no
/// registration.

#include <concepts>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <string_view>

#include "dengine/core/config.hpp"
#include "dengine/core/error.hpp"
#include "dengine/storage/concepts.hpp"

namespace dengine::engine {

/// **Backend** — a traits type with:
/// - `storage_engine`: a StorageEngine (Raft log + hard state), `kv_store`: a KvStore;
/// - `name`: a short name for logs, errors and the data dir's marker (data_dir_marker.hpp);
/// - `persistent`: whether data survives the process (false for the in-memory backend, whose
///   data dir is unused);
/// - its limits, store level (what the KvStore and the log can hold, in bytes):
///   `max_key_bytes` and `max_value_bytes` of one KvStore record, `max_entry_bytes` of one log
///   entry's data. The KV layer derives the user-visible key and value limits from the first two
///   (statemachines/kv/store_limits.hpp) and refuses a request beyond them before it reaches the
///   log; the engine refuses a config whose raft.max_entry_bytes exceeds the third;
/// - `open_storage(dir, mode)` / `open_kv_store(dir, mode)`: open (creating if missing) the
///   storage in directory `dir`, syncing as the persistence mode says. Each gets a directory of
///   its own; errors name the file and the problem.
///
/// A backend with settings of its own (segment size, map size, ...) also declares
/// `using tuning = T;` (a copyable struct whose defaults are the backend's) and takes it as a
/// third argument of both open functions: see TunableBackend. EngineConfig::backend_tuning
/// carries a T to the backend; a backend with nothing to tune declares no such type and carries
/// no options.
///
/// **BackendShape** is the first part: the types' names, `name`, `persistent` and the limits —
/// what can be checked without the types' definitions.
template <class B>
concept BackendShape = requires {
  typename B::storage_engine;
  typename B::kv_store;
  { B::name } -> std::convertible_to<std::string_view>;
  { B::persistent } -> std::convertible_to<bool>;
  { B::max_key_bytes } -> std::convertible_to<std::size_t>;
  { B::max_value_bytes } -> std::convertible_to<std::size_t>;
  { B::max_entry_bytes } -> std::convertible_to<std::size_t>;
};

/// The whole Backend concept: BackendShape, the open functions, and a StorageEngine and a
/// KvStore that meet their contracts (which takes their definitions: EmbeddedEngine's class
/// needs only BackendShape, so that a translation unit using a precompiled engine does not
/// compile them; EmbeddedEngine::start checks Backend).
template <class B>
concept Backend = BackendShape<B> &&
    requires(const std::filesystem::path& dir, PersistenceMode mode) {
  {
    B::open_storage(dir, mode)
    } -> std::same_as<result<std::unique_ptr<typename B::storage_engine>>>;
  { B::open_kv_store(dir, mode) } -> std::same_as<result<std::unique_ptr<typename B::kv_store>>>;
} && StorageEngine<typename B::storage_engine> && KvStore<typename B::kv_store>;

/// A Backend with a `tuning` type: both open functions also take a `const tuning&` (the
/// two-argument forms open with the defaults).
template <class B>
concept TunableBackend = Backend<B> &&
    requires(const std::filesystem::path& dir, PersistenceMode mode,
             const typename B::tuning& tuning) {
  requires std::copy_constructible<typename B::tuning>;
  {
    B::open_storage(dir, mode, tuning)
    } -> std::same_as<result<std::unique_ptr<typename B::storage_engine>>>;
  {
    B::open_kv_store(dir, mode, tuning)
    } -> std::same_as<result<std::unique_ptr<typename B::kv_store>>>;
};

}  // namespace dengine::engine
