#pragma once
/// The SQLite backend's schema (format version 2, record.hpp), and open_database(): a configured
/// connection to a database file that has been created whole or checked. One database file per
/// data dir holds both the Raft log (Engine) and the KV map (KvStore); each opener gets its own
/// connection.
///
///   dengine_meta(name BLOB PRIMARY KEY, value BLOB, crc) WITHOUT ROWID   meta.hpp's rows
///   raft_log(idx INTEGER PRIMARY KEY, term, type, data_crc, crc, data)     idx orders the log
///   kv(key BLOB PRIMARY KEY, value BLOB, crc) WITHOUT ROWID                 memcmp byte order
///
/// The header carries application_id "dEng" and user_version = the format version.
/// Unsigned 64-bit values (terms, node ids, indexes) are stored as their two's-complement int64;
/// indexes must stay below 2^63 so that SQLite's integer order is index order.
///
/// Nothing destructive runs on an existing file: a missing file is created whole under a
/// temporary name and linked into place (so an existing file is never half-made by dengine);
/// an existing file is checked (files.hpp's header checks, then the exact schema, the meta rows,
/// the log's shape and, with Options::verify_on_open, SQLite's integrity_check and every record)
/// on a connection that does not checkpoint on close, and refused with storage_corrupt or
/// incompatible_version naming it when anything is wrong. Only then does the connection write.

#include <sqlite3.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

#include "dengine/backends/sqlite/database.hpp"
#include "dengine/backends/sqlite/files.hpp"
#include "dengine/backends/sqlite/meta.hpp"
#include "dengine/backends/sqlite/options.hpp"
#include "dengine/backends/sqlite/record.hpp"
#include "dengine/backends/sqlite/walk.hpp"
#include "dengine/core/error.hpp"

namespace dengine::sqlite {

/// The schema: each table's name and its CREATE statement exactly as SQLite stores it (an open
/// compares sqlite_schema with this, byte for byte).
struct TableSql {
  std::string_view name;
  std::string_view sql;
};
inline constexpr std::array<TableSql, 3> schema_tables{{
    {meta_table,
     "CREATE TABLE dengine_meta(name BLOB PRIMARY KEY, value BLOB NOT NULL, crc INTEGER NOT "
     "NULL) WITHOUT ROWID"},
    {kv_table,
     "CREATE TABLE kv(key BLOB PRIMARY KEY, value BLOB NOT NULL, crc INTEGER NOT NULL) WITHOUT "
     "ROWID"},
    {log_table,
     "CREATE TABLE raft_log(idx INTEGER PRIMARY KEY, term INTEGER NOT NULL, type INTEGER NOT "
     "NULL, data_crc INTEGER NOT NULL, crc INTEGER NOT NULL, data BLOB NOT NULL)"},
}};

namespace schema {

/// Builds a complete, empty format-2 database in `temp` (a new file): WAL mode, header marks,
/// tables, meta rows; then checkpoints and closes it so that the file alone holds everything.
inline result<void> build(const std::filesystem::path& temp, const Options& options) {
  DENGINE_TRY(
      db, Database::connect(temp, options.busy_timeout,
                            SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_EXCLUSIVE));
  DENGINE_TRY(mode, db.prepare("PRAGMA journal_mode=WAL"));
  if (int rc = mode.step(); rc != SQLITE_ROW) return db.failure(rc, "PRAGMA journal_mode=WAL");
  if (mode.column_blob(0) != "wal")
    return error(errc::io_error, "sqlite: " + temp.string() +
                                     ": cannot enable WAL journaling; the file system must "
                                     "support shared memory");
  mode.reset();
  DENGINE_TRYV(db.exec("PRAGMA synchronous=FULL"));
  {
    WriteTransaction txn(db);
    DENGINE_TRYV(txn.begin());
    DENGINE_TRYV(db.exec("PRAGMA application_id=" + std::to_string(application_id)));
    DENGINE_TRYV(db.exec("PRAGMA user_version=" + std::to_string(format_version)));
    for (const TableSql& t : schema_tables) DENGINE_TRYV(db.exec(t.sql));
    DENGINE_TRY(rows, MetaRows::prepare(db));
    for (const auto& [name, value] : meta::initial_rows()) DENGINE_TRYV(rows.put(name, value));
    DENGINE_TRYV(txn.commit());
  }
  DENGINE_TRY(busy, db.query_int("PRAGMA wal_checkpoint(TRUNCATE)"));
  if (busy != 0)
    return error(errc::too_busy,
                 "sqlite: " + temp.string() + ": checkpoint of a new database blocked");
  db.allow_checkpoint_on_close();
  return success();
}

/// Creates `file` whole: builds it under a temporary name in its directory, fsyncs it, links it
/// into place (keeping a file another opener created first) and fsyncs the directory. A crash
/// at any point leaves either no `file` or a complete one.
inline result<void> create(const std::filesystem::path& file, const Options& options) {
  const std::filesystem::path dir = file.parent_path();
  files::remove_stale_temps(dir);
  const std::filesystem::path temp = files::temp_name(dir);
  auto made = build(temp, options);
  if (made) made = files::sync_file(temp);
  if (made) made = files::publish(temp, file);
  if (made) return success();
  files::remove_with_companions(temp);
  return error(made.error().code, "sqlite: cannot create " + file.string() + " (built as " +
                                      temp.filename().string() + "): " + made.error().detail);
}

/// Checks that the tables in sqlite_schema are exactly schema_tables: a damaged schema entry
/// that still parses (a changed column type, name or table) must not go unnoticed.
inline result<void> check(const Database& db) {
  DENGINE_TRY(stmt,
              db.prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY name"));
  std::size_t k = 0;
  for (;;) {
    const int rc = stmt.step();
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return db.failure(rc, "reading sqlite_schema");
    const std::string name(stmt.column_blob(1));
    if (k >= schema_tables.size() || stmt.column_blob(0) != "table" ||
        name != schema_tables[k].name || stmt.column_blob(2) != schema_tables[k].name ||
        stmt.column_blob(3) != schema_tables[k].sql)
      return record::corrupt(db.file(), "its schema differs from dengine's format " +
                                            std::to_string(format_version) + " at entry " +
                                            record::printable(name) + " (the schema is damaged)");
    ++k;
  }
  if (k != schema_tables.size())
    return record::corrupt(db.file(), "its schema lacks table " +
                                          std::string(schema_tables[k].name) +
                                          " (the schema is damaged)");
  return success();
}

/// The error for an SQLite file without dengine's application_id: format 1 (a dengine_meta
/// table with a 'schema_version' row, from before record checksums) is incompatible_version;
/// anything else is not a dengine database. Reads only.
inline error unmarked(const std::filesystem::path& file, const Options& options) {
  auto db = Database::connect(file, options.busy_timeout);
  if (!db) return db.error();
  auto stmt = db.value().prepare("SELECT value FROM dengine_meta WHERE name = 'schema_version'");
  if (stmt && stmt.value().step() == SQLITE_ROW)
    return error(errc::incompatible_version,
                 "sqlite: " + file.string() + " has format version " +
                     std::to_string(stmt.value().column_int64(0)) +
                     " (written by a dengine without record checksums); this build reads format "
                     "version " +
                     std::to_string(format_version) +
                     " and does not convert it: rebuild this member's data dir (for example, "
                     "remove it and add the member back so that it receives a snapshot)");
  return record::corrupt(file,
                         "is an SQLite database but not a dengine one (no dengine marks "
                         "in its header, no dengine schema)");
}

/// Runs the checks of an open (see the file comment) on `db`; storage_corrupt listing the first
/// problems when any.
inline result<void> check_contents(Database& db, const Options& options) {
  Problems problems(10);
  {
    ReadTransaction txn(db);  // one snapshot for every table
    DENGINE_TRYV(txn.begin());
    walk::meta(db, problems);
    walk::log(db, problems, options.verify_on_open);
    if (options.verify_on_open) {
      walk::kv(db, problems);
      walk::integrity(db, problems);
    }
  }
  if (!problems.empty())
    return record::corrupt(db.file(), std::to_string(problems.count()) +
                                          " problem(s) found at open: " + problems.joined("; "));
  return success();
}

}  // namespace schema

/// The data dir's database file (absolute, so that every message names it fully).
inline std::filesystem::path database_file(const std::filesystem::path& dir) {
  return std::filesystem::absolute(dir) / database_file_name;
}

/// Opens the data dir's database: creates it whole when missing (Options::create_if_missing),
/// otherwise checks it (see the file comment) before configuring the connection for writing.
inline result<Database> open_database(const std::filesystem::path& dir, const Options& options) {
  if (options.busy_timeout.count() < 0 || options.busy_timeout.count() > INT32_MAX)
    return error(errc::invalid_argument,
                 "sqlite: options for " + dir.string() + ": busy_timeout out of range");
  const std::filesystem::path file = database_file(dir);
  const std::filesystem::path abs_dir = file.parent_path();
  std::error_code ec;
  if (!files::present(file)) {
    if (std::filesystem::is_directory(abs_dir, ec))
      DENGINE_TRYV(files::check_no_orphan_companions(file));
    if (!options.create_if_missing)
      return record::corrupt(file,
                             "does not exist, and Options::create_if_missing is false (the "
                             "store is expected to exist here)");
    const bool created = std::filesystem::create_directories(abs_dir, ec);
    if (ec)
      return error(errc::io_error,
                   "sqlite: cannot create data dir " + abs_dir.string() + ": " + ec.message());
    if (created) DENGINE_TRYV(sync_dir(abs_dir.parent_path()));
    DENGINE_TRYV(schema::create(file, options));
  }
  if (!std::filesystem::is_directory(abs_dir, ec))
    return error(errc::io_error, "sqlite: data dir " + abs_dir.string() + " is not a directory");
  DENGINE_TRY(kind, files::check_header(file));
  if (kind == FileKind::unmarked) return schema::unmarked(file, options);
  DENGINE_TRY(db, Database::connect(file, options.busy_timeout));
  DENGINE_TRYV(schema::check(db));
  DENGINE_TRYV(db.configure(options));
  DENGINE_TRYV(schema::check_contents(db, options));
  db.allow_checkpoint_on_close();
  return db;
}

}  // namespace dengine::sqlite
