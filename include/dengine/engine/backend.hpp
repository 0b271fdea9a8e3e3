#pragma once
/// The Backend concept: how an EmbeddedEngine opens its storage from a data dir. A backend
/// module (backends/<name>) provides one traits struct, e.g. dengine::lmdb::Backend, naming its
/// StorageEngine and KvStore types and opening both; the user picks it at compile time:
///
///   auto engine = dengine::EmbeddedEngine<dengine::lmdb::Backend>::start(config);
///
/// A user's own storage plugs in the same way (docs/custom-storage.md): no base class, no
/// registration.

#include <concepts>
#include <filesystem>
#include <memory>
#include <string_view>

#include "dengine/core/config.hpp"
#include "dengine/core/error.hpp"
#include "dengine/storage/concepts.hpp"

namespace dengine::engine {

/// **Backend** — a traits type with:
/// - `storage_engine`: a StorageEngine (Raft log + hard state), `kv_store`: a KvStore;
/// - `name`: a short name for logs and errors;
/// - `persistent`: whether data survives the process (false for the in-memory backend, whose
///   data dir is unused);
/// - `open_storage(dir, mode)` / `open_kv_store(dir, mode)`: open (creating if missing) the
///   storage in directory `dir`, syncing as the persistence mode says. Each gets a directory of
///   its own; errors name the file and the problem.
template <class B>
concept Backend = requires(const std::filesystem::path& dir, PersistenceMode mode) {
  typename B::storage_engine;
  typename B::kv_store;
  { B::name } -> std::convertible_to<std::string_view>;
  { B::persistent } -> std::convertible_to<bool>;
  {
    B::open_storage(dir, mode)
    } -> std::same_as<result<std::unique_ptr<typename B::storage_engine>>>;
  { B::open_kv_store(dir, mode) } -> std::same_as<result<std::unique_ptr<typename B::kv_store>>>;
}
&&StorageEngine<typename B::storage_engine>&& KvStore<typename B::kv_store>;

}  // namespace dengine::engine
