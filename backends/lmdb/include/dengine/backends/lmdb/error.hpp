#pragma once
/// How LMDB return codes become dengine errors. Inside a transaction the backend carries raw
/// LMDB codes in `lmdb_category()` (so the write loop can recognise MDB_MAP_FULL and retry);
/// `to_dengine()` translates them at the API boundary into `errc` values with a detail naming
/// the LMDB call and the data dir.

#include <lmdb.h>

#include <cerrno>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

#include "dengine/core/error.hpp"

namespace dengine::lmdb {

namespace detail {

/// The std::error_category of raw LMDB (and errno) return codes, used only inside the backend.
class lmdb_error_category final : public std::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "lmdb"; }
  [[nodiscard]] std::string message(int rc) const override { return mdb_strerror(rc); }
};

}  // namespace detail

/// The category of raw LMDB return codes (internal; public results use dengine's errc).
inline const std::error_category& lmdb_category() noexcept {
  static const detail::lmdb_error_category category;
  return category;
}

/// The dengine errc an LMDB return code (or errno from it) stands for.
inline errc classify(int rc) noexcept {
  switch (rc) {
    // dengine never opens a database with other flags or treats a record as a database, so
    // MDB_INCOMPATIBLE means a damaged node; a tree deeper than LMDB's cursor stack
    // (MDB_CURSOR_FULL) means a damaged branch page.
    case MDB_INVALID:
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_CURSOR_FULL:
    case MDB_INCOMPATIBLE: return errc::storage_corrupt;
    case MDB_VERSION_MISMATCH: return errc::incompatible_version;
    case MDB_MAP_FULL:
    case ENOSPC:
#ifdef EDQUOT
    case EDQUOT:
#endif
      return errc::no_space;
    case MDB_READERS_FULL:
    case MDB_TLS_FULL:
    case EBUSY:
    case EAGAIN: return errc::too_busy;
    case MDB_TXN_FULL:
    case MDB_BAD_VALSIZE: return errc::too_large;
    default: return errc::io_error;
  }
}

/// A raw LMDB failure: `rc` in lmdb_category(), detail "<call>" (completed by to_dengine()).
inline error lmdb_failure(int rc, std::string_view call) {
  return error(std::error_code(rc, lmdb_category()), std::string(call));
}

/// Translates a raw LMDB failure into a dengine error naming the call, the dir and the cause;
/// errors already in dengine's category pass through unchanged.
inline error to_dengine(error e, const std::filesystem::path& dir) {
  if (e.code.category() != lmdb_category()) return e;
  const int rc = e.code.value();
  std::string detail = "lmdb: " + e.detail + " in " + dir.string() + ": " + mdb_strerror(rc);
  switch (rc) {
    case MDB_INVALID:
      detail += " (" + (dir / "data.mdb").string() +
                " is not an LMDB data file, or both of its meta pages are corrupt)";
      break;
    case MDB_VERSION_MISMATCH:
      detail += " (the lock file or data file was written by an incompatible LMDB version)";
      break;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_CURSOR_FULL:
    case MDB_INCOMPATIBLE: detail += " (" + (dir / "data.mdb").string() + " is damaged)"; break;
    case MDB_PANIC:
      detail +=
          " (the environment of " + (dir / "data.mdb").string() + " failed: reopen the store)";
      break;
    default: break;
  }
  return error(classify(rc), std::move(detail));
}

/// Shorthand: a dengine error for LMDB return code `rc` of `call` on `dir`.
inline error make_error(int rc, std::string_view call, const std::filesystem::path& dir) {
  return to_dengine(lmdb_failure(rc, call), dir);
}

}  // namespace dengine::lmdb
