#pragma once
/// dengine::storage::BackendTraits<Spec> — the one template every backend's traits type is made
/// of (the Backend concept, engine/include/dengine/engine/backend.hpp). A backend states what is
/// particular to it in a small `Spec`; the template adds the open functions, which are the same
/// for all: open the store, then hand it over as a unique_ptr.
///
/// `Spec` declares:
/// - `storage_engine`, `kv_store`: the StorageEngine and KvStore types;
/// - `name`, `persistent`, `max_key_bytes`, `max_value_bytes`, `max_entry_bytes` (the Backend
///   concept says what each means);
/// - a backend with settings: `using tuning = T;` (defaults = the backend's) and
///   `storage_options(mode, tuning)`, the options that `storage_engine::open(dir, options)`
///   takes; `kv_options(mode, tuning)`, those of `kv_store::open(dir, options)`, unless they are
///   the same; optionally `check_kv_store(store, dir) -> result<void>`, run on a KvStore just
///   opened. PersistentSpec declares the types and `persistent` of such a backend;
/// - a backend without a `tuning` must not be persistent: its stores open fresh and empty
///   (default-constructed; `dir` and `mode` are unused).

#include <filesystem>
#include <memory>
#include <utility>

#include "dengine/core/config.hpp"
#include "dengine/core/error.hpp"

namespace dengine::storage {

/// Whether a backend spec declares a `tuning` type.
template <class Spec>
concept TunableSpec = requires {
  typename Spec::tuning;
};

/// What the spec of every backend that keeps its data on disk starts with (derive from it):
/// its StorageEngine, its KvStore and its tuning type.
template <class Engine, class Kv, class Tuning>
struct PersistentSpec {
  using storage_engine = Engine;
  using kv_store = Kv;
  using tuning = Tuning;
  /// Data survives the process (and, in DiskFirst, power loss).
  static constexpr bool persistent = true;
};

/// A backend's traits: everything `Spec` declares, plus open_storage and open_kv_store.
template <class Spec>
struct BackendTraits : Spec {
  using storage_engine = typename Spec::storage_engine;
  using kv_store = typename Spec::kv_store;

  static_assert(TunableSpec<Spec> || !Spec::persistent,
                "a persistent backend's spec declares a tuning type and the options to open with");

  /// Opens (or creates) the log in `dir`, syncing per `mode`, with the tuning `t` (by default
  /// the backend's defaults).
  template <class T = Spec>
  requires TunableSpec<T>
  static result<std::unique_ptr<storage_engine>> open_storage(const std::filesystem::path& dir,
                                                              PersistenceMode mode,
                                                              const typename T::tuning& t = {}) {
    DENGINE_TRY(engine, storage_engine::open(dir, Spec::storage_options(mode, t)));
    return std::make_unique<storage_engine>(std::move(engine));
  }
  /// Opens (or creates) the KV store in `dir`, syncing per `mode`, with the tuning `t` (by
  /// default the backend's defaults); then the spec's check_kv_store, when it has one.
  template <class T = Spec>
  requires TunableSpec<T>
  static result<std::unique_ptr<kv_store>> open_kv_store(const std::filesystem::path& dir,
                                                         PersistenceMode mode,
                                                         const typename T::tuning& t = {}) {
    DENGINE_TRY(store, kv_store::open(dir, kv_store_options(mode, t)));
    if constexpr (requires { Spec::check_kv_store(store, dir); })
      DENGINE_TRYV(Spec::check_kv_store(store, dir));
    return std::make_unique<kv_store>(std::move(store));
  }

  /// A backend without tuning: a fresh, empty log (`dir` and `mode` are not used).
  template <class T = Spec>
  requires(!TunableSpec<T>) static result<std::unique_ptr<storage_engine>> open_storage(
      const std::filesystem::path& /*dir*/, PersistenceMode /*mode*/) {
    return std::make_unique<storage_engine>();
  }
  /// A backend without tuning: a fresh, empty KV store (`dir` and `mode` are not used).
  template <class T = Spec>
  requires(!TunableSpec<T>) static result<std::unique_ptr<kv_store>> open_kv_store(
      const std::filesystem::path& /*dir*/, PersistenceMode /*mode*/) {
    return std::make_unique<kv_store>();
  }

  /// The options the KV store opens with: the spec's kv_options, or its storage_options when
  /// it has none.
  template <class T = Spec>
  requires TunableSpec<T>
  static auto kv_store_options(PersistenceMode mode, const typename T::tuning& t) {
    if constexpr (requires { Spec::kv_options(mode, t); })
      return Spec::kv_options(mode, t);
    else
      return Spec::storage_options(mode, t);
  }
};

}  // namespace dengine::storage
