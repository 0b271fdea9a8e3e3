#pragma once
/// RawConnection: a plain SQLite connection to a dengine database file, as another program
/// would open it, for the SQLite backend's tests (locks held elsewhere, rows changed behind the
/// backend's back). Not installed.

#include <doctest/doctest.h>
#include <sqlite3.h>

#include <filesystem>
#include <string>

namespace dengine::test::backend {

class RawConnection {
 public:
  /// Opens `file` with `flags` (SQLITE_OPEN_CREATE added: a file dengine never wrote).
  explicit RawConnection(const std::filesystem::path& file, int flags = SQLITE_OPEN_READWRITE) {
    REQUIRE(sqlite3_open_v2(file.c_str(), &db_, flags, nullptr) == SQLITE_OK);
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;
  ~RawConnection() { sqlite3_close_v2(db_); }
  /// Runs sql; returns the SQLite result code.
  int exec(const std::string& sql) {
    return sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
  }

 private:
  sqlite3* db_ = nullptr;
};

}  // namespace dengine::test::backend
