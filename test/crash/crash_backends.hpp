#pragma once
/// The disk backends the crash tests know, selected by name at run time. Each is compiled in when
/// the build defines DENGINE_HAVE_<NAME> (test/crash/meson.build does so for every entry of
/// `backend_deps`); a backend added there must be added here too, or its crash test fails with
/// "unknown backend".

#include <filesystem>
#include <functional>
#include <string_view>
#include <utility>

#include <fmt/core.h>

#include "dengine/core/config.hpp"
#include "dengine/core/error.hpp"

#if defined(DENGINE_HAVE_RAWFILE)
#include "dengine/backends/rawfile.hpp"
#endif
#if defined(DENGINE_HAVE_LMDB)
#include "dengine/backends/lmdb.hpp"
#endif
#if defined(DENGINE_HAVE_SQLITE)
#include "dengine/backends/sqlite.hpp"
#endif

namespace dengine::crash {

/// Segment size the raw-file engine uses here: small, so that a run rolls over segments often
/// and kills land inside rolls too.
inline constexpr std::size_t rawfile_segment_bytes = 256U << 10;

/// Receives the raw-file engine's recovery log lines (torn tails repaired, leftovers removed).
using recovery_log = std::function<void(std::string_view)>;

/// Opens `backend`'s Engine on `dir` and calls `f(engine)`; `f` returns result<void>. `log`
/// receives recovery messages where the backend reports them (rawfile).
template <class F>
result<void> with_engine(std::string_view backend, const std::filesystem::path& dir,
                         PersistenceMode mode, F&& f, const recovery_log& log = {}) {
#if defined(DENGINE_HAVE_RAWFILE)
  if (backend == "rawfile") {
    rawfile::Options o;
    o.mode = mode;
    o.segment_bytes = rawfile_segment_bytes;
    // Repairs are expected after a kill; the checks judge their outcome.
    o.log = log ? log : recovery_log([](std::string_view) {});
    DENGINE_TRY(engine, rawfile::Engine::open(dir, o));
    return f(engine);
  }
#endif
#if defined(DENGINE_HAVE_LMDB)
  if (backend == "lmdb") {
    lmdb::Options o;
    o.mode = mode;
    DENGINE_TRY(engine, lmdb::Engine::open(dir, o));
    return f(engine);
  }
#endif
#if defined(DENGINE_HAVE_SQLITE)
  if (backend == "sqlite") {
    sqlite::Options o;
    o.mode = mode;
    DENGINE_TRY(engine, sqlite::Engine::open(dir, o));
    return f(engine);
  }
#endif
  (void)dir;
  (void)mode;
  (void)f;
  (void)log;
  return error(
      errc::invalid_argument,
      fmt::format("unknown backend '{}' (not built, or not known to test/crash)", backend));
}

/// Opens `backend`'s KvStore on `dir` and calls `f(store)`; `f` returns result<void>.
template <class F>
result<void> with_kv_store(std::string_view backend, const std::filesystem::path& dir,
                           PersistenceMode mode, F&& f) {
#if defined(DENGINE_HAVE_RAWFILE)
  if (backend == "rawfile") {
    rawfile::KvOptions o;
    o.checkpoint_on_close = false;  // a kill never closes; a clean close must not hide that
    o.log = [](std::string_view) {};
    DENGINE_TRY(store, rawfile::KvStore::open(dir, o));
    return f(store);
  }
#endif
#if defined(DENGINE_HAVE_LMDB)
  if (backend == "lmdb") {
    lmdb::Options o;
    o.mode = mode;
    DENGINE_TRY(store, lmdb::KvStore::open(dir, o));
    return f(store);
  }
#endif
#if defined(DENGINE_HAVE_SQLITE)
  if (backend == "sqlite") {
    sqlite::Options o;
    o.mode = mode;
    DENGINE_TRY(store, sqlite::KvStore::open(dir, o));
    return f(store);
  }
#endif
  (void)dir;
  (void)mode;
  (void)f;
  return error(
      errc::invalid_argument,
      fmt::format("unknown backend '{}' (not built, or not known to test/crash)", backend));
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
