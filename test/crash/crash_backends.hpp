#pragma once
/// The disk backends the crash and power-loss tests know, selected by name at run time: those of
/// test/backends/built_backends.hpp (compiled in when the build defines DENGINE_HAVE_<NAME>, as
/// test/crash/meson.build does for every entry of `backend_deps`), each opened with its
/// defaults through its traits (dengine::storage::BackendTraits) plus the few settings below.

#include <filesystem>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "dengine/core/config.hpp"
#include "dengine/core/error.hpp"

#include "../backends/built_backends.hpp"

namespace dengine::crash {

/// Segment size the raw-file engine uses here: small, so that a run rolls over segments often
/// and kills land inside rolls too.
inline constexpr std::size_t rawfile_segment_bytes = 256U << 10;

/// The options `B`'s Engine opens with here: the backend's defaults in `mode`, with small
/// raw-file segments and its recovery log silenced (repairs are expected after a kill; the
/// checks judge their outcome).
template <class B>
auto engine_options(PersistenceMode mode) {
  typename B::tuning t;
#if defined(DENGINE_HAVE_RAWFILE)
  if constexpr (std::is_same_v<B, rawfile::Backend>) {
    t.segment_bytes = rawfile_segment_bytes;
    t.log = [](std::string_view) {};
  }
#endif
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

/// The subject of the crash checker (dengine/conformance/crash_subject.hpp): the built disk
/// backend called `backend`, its Engine and KvStore opened with the options above.
struct BackendSubject {
  std::string backend;

  /// The subject for flags `--backend NAME`; an error naming the built backends otherwise.
  static result<BackendSubject> from_flags(const std::vector<std::string>& args) {
    if (args.size() == 2 && args[0] == "--backend" &&
        test::with_disk_backend(args[1], []<class>() {}))
      return BackendSubject{args[1]};
    std::string built;
    for (const auto& name : test::disk_backend_names()) built += " " + name;
    return error(errc::invalid_argument,
                 "need --backend NAME, one of the built disk backends:" + built);
  }

  template <class F>
  result<void> with_engine(const std::filesystem::path& dir, PersistenceMode mode, F&& f) const {
    return with_opened(
        f, [&]<class B>() { return B::storage_engine::open(dir, engine_options<B>(mode)); });
  }

  template <class F>
  result<void> with_kv_store(const std::filesystem::path& dir, PersistenceMode mode, F&& f) const {
    return with_opened(f, [&]<class B>() { return B::kv_store::open(dir, kv_options<B>(mode)); });
  }

 private:
  /// f(what open<B>() opened) for the backend B that `backend` names, or open's error.
  template <class F, class Open>
  result<void> with_opened(F& f, Open open) const {
    result<void> out = success();
    test::with_disk_backend(backend, [&]<class B>() {
      out = [&]() -> result<void> {
        DENGINE_TRY(opened, open.template operator()<B>());
        return f(opened);
      }();
    });
    return out;
  }
};

}  // namespace dengine::crash
