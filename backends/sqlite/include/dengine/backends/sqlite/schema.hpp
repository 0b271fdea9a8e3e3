#pragma once
/// The SQLite backend's schema, and open_database(): a configured connection whose schema has
/// been created or checked. One database file per data dir holds both the Raft log (Engine)
/// and the KV map (KvStore); each opener gets its own connection.
///
///   dengine_meta(name TEXT PRIMARY KEY, value INTEGER)   'schema_version' = 1,
///                                                          'kv_applied_index'
///   raft_hard_state(id = 0, term, vote, commit_index)     one row
///   raft_snapshot(id = 0, idx, term, voters, learners)    one row: the compaction point;
///                                                          voters/learners = 8-byte big-endian ids
///   raft_log(idx INTEGER PRIMARY KEY, term, type, data)   idx orders the log (rowid table)
///   kv(key BLOB PRIMARY KEY, value BLOB) WITHOUT ROWID    BLOBs compare with memcmp: byte order
///
/// Unsigned 64-bit values (terms, node ids, indexes) are stored as their two's-complement
/// int64; indexes must stay below 2^63 so that SQLite's integer order is index order.

#include <cstdint>
#include <filesystem>
#include <string>

#include "dengine/backends/sqlite/database.hpp"
#include "dengine/backends/sqlite/options.hpp"
#include "dengine/core/error.hpp"

namespace dengine::sqlite {

/// Version of the schema above; a database with another version fails incompatible_version.
inline constexpr std::int64_t schema_version = 1;

/// Opens the data dir's database (see Database::open) and creates the schema in a fresh file
/// or checks the version row of an existing one, in one write transaction.
inline result<Database> open_database(const std::filesystem::path& dir, const Options& options) {
  DENGINE_TRY(db, Database::open(dir, options));
  WriteTransaction txn(db);
  DENGINE_TRYV(txn.begin());
  DENGINE_TRYV(
      db.exec("CREATE TABLE IF NOT EXISTS dengine_meta("
              "name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID"));
  {
    DENGINE_TRY(version,
                db.prepare("SELECT value FROM dengine_meta WHERE name = 'schema_version'"));
    const int rc = version.step();
    if (rc == SQLITE_ROW) {
      const std::int64_t found = version.column_int64(0);
      if (version.column_type(0) != SQLITE_INTEGER || found != schema_version)
        return error(errc::incompatible_version,
                     "sqlite: " + db.file().string() + " has schema version " +
                         std::to_string(found) + "; this build reads version " +
                         std::to_string(schema_version) +
                         " (the data dir was written by an incompatible dengine version)");
    } else if (rc != SQLITE_DONE) {
      return db.failure(rc, "reading the schema version");
    } else {
      DENGINE_TRYV(db.exec("INSERT INTO dengine_meta(name, value) VALUES ('schema_version', " +
                           std::to_string(schema_version) + ")"));
    }
  }
  DENGINE_TRYV(db.exec(
      "CREATE TABLE IF NOT EXISTS raft_hard_state("
      "id INTEGER PRIMARY KEY CHECK (id = 0), term INTEGER NOT NULL, vote INTEGER NOT NULL, "
      "commit_index INTEGER NOT NULL)"));
  DENGINE_TRYV(
      db.exec("CREATE TABLE IF NOT EXISTS raft_snapshot("
              "id INTEGER PRIMARY KEY CHECK (id = 0), idx INTEGER NOT NULL, term INTEGER NOT NULL, "
              "voters BLOB NOT NULL, learners BLOB NOT NULL)"));
  DENGINE_TRYV(
      db.exec("CREATE TABLE IF NOT EXISTS raft_log("
              "idx INTEGER PRIMARY KEY, term INTEGER NOT NULL, type INTEGER NOT NULL, data BLOB "
              "NOT NULL)"));
  DENGINE_TRYV(db.exec(
      "CREATE TABLE IF NOT EXISTS kv(key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID"));
  DENGINE_TRYV(db.exec("INSERT OR IGNORE INTO raft_hard_state VALUES (0, 0, 0, 0)"));
  DENGINE_TRYV(db.exec("INSERT OR IGNORE INTO raft_snapshot VALUES (0, 0, 0, x'', x'')"));
  DENGINE_TRYV(txn.commit());
  // The file may be new: make its directory entry durable too.
  DENGINE_TRYV(sync_dir(dir));
  return db;
}

}  // namespace dengine::sqlite
