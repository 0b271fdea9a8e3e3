#pragma once
/// What the crash and power-loss checker (crash_harness.hpp) needs from the store under test:
/// a *subject*, an object that opens a StorageEngine (and, optionally, a KvStore) on a directory.
/// Each may be given in one of two forms:
///
///     result<MyEngine> open_engine(const std::filesystem::path& dir, PersistenceMode mode) const;
///     template <class F>   // calls f(engine), f returns result<void>
///     result<void> with_engine(const std::filesystem::path& dir, PersistenceMode mode, F&& f)
///     const;
///
/// and likewise `open_kv_store` / `with_kv_store` for a KvStore (without either, the KV workload
/// is not run). The second form is for a subject that picks among several engine types at run
/// time (test/crash picks a shipped backend by name). `mode` is the persistence mode the run asks
/// for; an engine with a single mode ignores it, as long as sync() still makes appends durable.
///
/// Engines are opened and closed many times on one directory, in the child and (on copies of
/// the directory) in the parent: open must recover whatever a kill or power loss left.

#include <filesystem>
#include <utility>

#include "dengine/core/config.hpp"
#include "dengine/core/error.hpp"

namespace dengine::crash {

namespace detail {
/// A visitor type for the requires-expressions below: only its declaration is looked at.
struct probe {
  template <class T>
  result<void> operator()(T&) const;
};
}  // namespace detail

/// True when `Subject` opens a KvStore (open_kv_store or with_kv_store).
template <class Subject>
inline constexpr bool has_kv_store = requires(const Subject& s, const std::filesystem::path& dir,
                                              PersistenceMode mode) {
  s.open_kv_store(dir, mode);
}
|| requires(const Subject& s, const std::filesystem::path& dir, PersistenceMode mode) {
  s.with_kv_store(dir, mode, detail::probe{});
};

namespace detail {
/// f(what `opened` holds), or its error.
template <class T, class F>
result<void> call_with(result<T> opened, F&& f) {
  DENGINE_TRY(value, std::move(opened));
  return std::forward<F>(f)(value);
}
}  // namespace detail

/// Opens `subject`'s engine on `dir` and returns f(engine).
template <class Subject, class F>
result<void> with_engine(const Subject& subject, const std::filesystem::path& dir,
                         PersistenceMode mode, F&& f) {
  if constexpr (requires { subject.open_engine(dir, mode); })
    return detail::call_with(subject.open_engine(dir, mode), std::forward<F>(f));
  else
    return subject.with_engine(dir, mode, std::forward<F>(f));
}

/// Opens `subject`'s KvStore on `dir` and returns f(store).
template <class Subject, class F>
result<void> with_kv_store(const Subject& subject, const std::filesystem::path& dir,
                           PersistenceMode mode, F&& f) {
  if constexpr (requires { subject.open_kv_store(dir, mode); })
    return detail::call_with(subject.open_kv_store(dir, mode), std::forward<F>(f));
  else
    return subject.with_kv_store(dir, mode, std::forward<F>(f));
}

/// Makes every write of `store` durable: a checkpoint where the store has one (rawfile), its
/// sync() where it has that (a no-op with DiskFirst), nothing where writes are durable anyway.
template <class S>
result<void> make_kv_durable(S& store) {
  if constexpr (requires { store.checkpoint(); }) {
    return store.checkpoint();
  } else if constexpr (requires { store.sync(); }) {
    return store.sync();
  } else {
    return success();
  }
}

}  // namespace dengine::crash
