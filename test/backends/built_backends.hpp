#pragma once
/// The disk backends a test or benchmark program was built with: their headers, for the tests
/// that run a case on every backend (test/integration), and the traits by name, for the programs
/// that pick one at run time (test/crash, bench/storage_bench.cpp). A backend is compiled in when
/// the build defines DENGINE_HAVE_<NAME> (those programs' meson.build files do so for every entry
/// of `backend_deps`); a backend added there and here is known to all of them. Not installed.

#include <string>
#include <string_view>
#include <vector>

#if defined(DENGINE_HAVE_RAWFILE)
#include "dengine/backends/rawfile.hpp"
#endif
#if defined(DENGINE_HAVE_LMDB)
#include "dengine/backends/lmdb.hpp"
#endif
#if defined(DENGINE_HAVE_SQLITE)
#include "dengine/backends/sqlite.hpp"
#endif

namespace dengine::test {

/// Calls `f.template operator()<B>()` with the traits B (rawfile::Backend, lmdb::Backend, ...)
/// of each built disk backend, in that order.
template <class F>
void for_each_disk_backend(F&& f) {
#if defined(DENGINE_HAVE_RAWFILE)
  f.template operator()<rawfile::Backend>();
#endif
#if defined(DENGINE_HAVE_LMDB)
  f.template operator()<lmdb::Backend>();
#endif
#if defined(DENGINE_HAVE_SQLITE)
  f.template operator()<sqlite::Backend>();
#endif
  (void)f;
}

/// Calls `f.template operator()<B>()` for the built disk backend called `name`; false (and no
/// call) when no such backend is built.
template <class F>
bool with_disk_backend(std::string_view name, F&& f) {
  bool found = false;
  for_each_disk_backend([&]<class B>() {
    if (found || B::name != name) return;
    found = true;
    f.template operator()<B>();
  });
  return found;
}

/// The names of the built disk backends.
inline std::vector<std::string> disk_backend_names() {
  std::vector<std::string> out;
  for_each_disk_backend([&]<class B>() { out.emplace_back(B::name); });
  return out;
}

}  // namespace dengine::test
