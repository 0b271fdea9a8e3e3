#pragma once
/// dengine::sqlite::verify() — an offline check of a data dir's SQLite database: everything an
/// open checks and everything it may skip, reporting every problem found instead of the first.

#include <filesystem>
#include <string>

#include "dengine/backends/sqlite/database.hpp"
#include "dengine/backends/sqlite/files.hpp"
#include "dengine/backends/sqlite/options.hpp"
#include "dengine/backends/sqlite/record.hpp"
#include "dengine/backends/sqlite/schema.hpp"
#include "dengine/backends/sqlite/walk.hpp"
#include "dengine/core/error.hpp"

namespace dengine::sqlite {

/// Verifies the database in data dir `dir` without changing it: the file's header, its exact
/// schema, SQLite's `PRAGMA integrity_check`, every row's column types and CRC32C (log entry
/// data included), every meta row, each table's row count and digest, the log's contiguity and
/// terms. Success, or an error whose text lists the problems (up to 100), one a line:
/// storage_corrupt for damage, incompatible_version for another format, io_error when the file
/// cannot be read. A missing database file is storage_corrupt (verify never creates one). The
/// connection neither writes nor checkpoints; it may leave empty -wal/-shm files beside the
/// database (SQLite's shared-memory files for WAL mode), which a later open uses.
inline result<void> verify(const std::filesystem::path& dir) {
  const std::filesystem::path file = database_file(dir);
  if (!files::present(file)) {
    DENGINE_TRYV(files::check_no_orphan_companions(file));
    return record::corrupt(file, "does not exist");
  }
  DENGINE_TRY(kind, files::check_header(file));
  const Options options;
  if (kind == FileKind::unmarked) return schema::unmarked(file, options);
  DENGINE_TRY(db, Database::connect(file, options.busy_timeout));
  DENGINE_TRYV(db.exec("PRAGMA query_only=ON"));
  DENGINE_TRYV(schema::check(db));
  Problems problems(100);
  {
    ReadTransaction txn(db);  // one snapshot for every table
    DENGINE_TRYV(txn.begin());
    walk::integrity(db, problems);
    walk::meta(db, problems);
    walk::log(db, problems, true);
    walk::kv(db, problems);
  }
  if (problems.empty()) return success();
  return record::corrupt(file, "verification found " + std::to_string(problems.count()) +
                                   " problem(s):\n  " + problems.joined("\n  "));
}

}  // namespace dengine::sqlite
