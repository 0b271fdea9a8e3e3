#pragma once
/// The disk backends the crash tests know, selected by name at run time: those of
/// test/backends/built_backends.hpp (compiled in when the build defines DENGINE_HAVE_<NAME>, as
/// test/crash/meson.build does for every entry of `backend_deps`), each opened with its
/// defaults through its traits (dengine::storage::BackendTraits) plus the few settings below.

#include <filesystem>
#include <functional>
#include <string_view>
#include <type_traits>
#include <utility>

#include <fmt/core.h>

#include "dengine/core/config.hpp"
#include "dengine/core/error.hpp"

#include "../backends/built_backends.hpp"

namespace dengine::crash {

/// Segment size the raw-file engine uses here: small, so that a run rolls over segments often
/// and kills land inside rolls too.
inline constexpr std::size_t rawfile_segment_bytes = 256U << 10;

/// Receives the raw-file engine's recovery log lines (torn tails repaired, leftovers removed).
using recovery_log = std::function<void(std::string_view)>;

/// The options `B`'s Engine opens with here: the backend's defaults in `mode`, with small
/// raw-file segments and its recovery log sent to `log`.
template <class B>
auto engine_options(PersistenceMode mode, const recovery_log& log) {
  typename B::tuning t;
#if defined(DENGINE_HAVE_RAWFILE)
  if constexpr (std::is_same_v<B, rawfile::Backend>) {
    t.segment_bytes = rawfile_segment_bytes;
    // Repairs are expected after a kill; the checks judge their outcome.
    t.log = log ? log : recovery_log([](std::string_view) {});
  }
#endif
  (void)log;
  return B::storage_options(mode, t);
}

/// The options `B`'s KvStore opens with here: the backend's defaults in `mode`; the raw-file
/// store quiet and without a checkpoint at close (a kill never closes; a clean close must not
/// hide that).
template <class B>
auto kv_options(PersistenceMode mode) {
  auto o = B::kv_store_options(mode, typename B::tuning{});
#if defined(DENGINE_HAVE_RAWFILE)
  if constexpr (std::is_same_v<B, rawfile::Backend>) {
    o.checkpoint_on_close = false;
    o.log = [](std::string_view) {};
  }
#endif
  return o;
}

inline error unknown_backend(std::string_view backend) {
  return error(
      errc::invalid_argument,
      fmt::format("unknown backend '{}' (not built, or not known to test/crash)", backend));
}

/// Opens `backend`'s Engine on `dir` and calls `f(engine)`; `f` returns result<void>. `log`
/// receives recovery messages where the backend reports them (rawfile).
template <class F>
result<void> with_engine(std::string_view backend, const std::filesystem::path& dir,
                         PersistenceMode mode, F&& f, const recovery_log& log = {}) {
  result<void> out = unknown_backend(backend);
  test::with_disk_backend(backend, [&]<class B>() {
    out = [&]() -> result<void> {
      DENGINE_TRY(engine, B::storage_engine::open(dir, engine_options<B>(mode, log)));
      return f(engine);
    }();
  });
  return out;
}

/// Opens `backend`'s KvStore on `dir` and calls `f(store)`; `f` returns result<void>.
template <class F>
result<void> with_kv_store(std::string_view backend, const std::filesystem::path& dir,
                           PersistenceMode mode, F&& f) {
  result<void> out = unknown_backend(backend);
  test::with_disk_backend(backend, [&]<class B>() {
    out = [&]() -> result<void> {
      DENGINE_TRY(store, B::kv_store::open(dir, kv_options<B>(mode)));
      return f(store);
    }();
  });
  return out;
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
