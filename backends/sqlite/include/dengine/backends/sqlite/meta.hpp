#pragma once
/// The dengine_meta rows of a format-2 database and MetaRows, the prepared statements that read
/// (verifying the checksum) and write them. Every row exists from the file's creation on, so a
/// missing row is damage:
///
///   format_version     u64 (2)
///   hard_state         u64 term ‖ u64 vote ‖ u64 commit
///   snapshot           u64 index ‖ u64 term ‖ u32 n ‖ n × u64 voter ‖ u32 m ‖ m × u64 learner
///   kv_applied_index   u64
///   rows:raft_log      TableStats of raft_log (u64 rows ‖ u64 digest)
///   rows:kv            TableStats of kv

#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dengine/backends/sqlite/database.hpp"
#include "dengine/backends/sqlite/record.hpp"
#include "dengine/backends/sqlite/statement.hpp"
#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/storage/meta_codec.hpp"

namespace dengine::sqlite::meta {

inline constexpr std::string_view format_row = "format_version";
inline constexpr std::string_view hard_state_row = "hard_state";
inline constexpr std::string_view snapshot_row = "snapshot";
inline constexpr std::string_view applied_row = "kv_applied_index";

/// A u64 row's value.
inline std::string encode_u64(std::uint64_t v) {
  std::string out;
  bytes::put_be64(out, v);
  return out;
}

// The hard state and snapshot rows (the layouts above) are storage/meta_codec.hpp's.
using storage::encode_hard_state;
using storage::encode_snapshot_meta;

/// Decodes a u64 row; false when the size is wrong.
inline bool decode_u64(std::string_view in, std::uint64_t& out) {
  if (in.size() != 8) return false;
  out = bytes::get_be64(in.data());
  return true;
}

/// Decodes the hard state row; false when it is malformed.
inline bool decode_hard_state(std::string_view in, HardState& out) {
  const auto decoded = storage::decode_hard_state(in);
  if (decoded) out = *decoded;
  return decoded.has_value();
}

/// Decodes the snapshot row; false when it is malformed.
inline bool decode_snapshot(std::string_view in, SnapshotMeta& out) {
  auto decoded = storage::decode_snapshot_meta(in);
  if (decoded) out = std::move(*decoded);
  return decoded.has_value();
}

/// Every row a new database starts with, as (name, value).
inline std::vector<std::pair<std::string, std::string>> initial_rows() {
  return {
      {std::string(format_row), encode_u64(static_cast<std::uint64_t>(format_version))},
      {std::string(hard_state_row), encode_hard_state(HardState{})},
      {std::string(snapshot_row), encode_snapshot_meta(SnapshotMeta{})},
      {std::string(applied_row), encode_u64(0)},
      {record::stats_row(log_table), record::TableStats{}.encode()},
      {record::stats_row(kv_table), record::TableStats{}.encode()},
  };
}

/// Checks a row's value against its name's encoding; an empty string when it decodes, else why
/// not. Unknown names are reported too.
inline std::string check_value(std::string_view name, std::string_view value) {
  std::uint64_t u = 0;
  HardState h;
  SnapshotMeta s;
  record::TableStats t;
  bool ok = false;
  if (name == format_row) {
    if (!decode_u64(value, u)) return "is " + std::to_string(value.size()) + " bytes, not 8";
    if (u != static_cast<std::uint64_t>(format_version))
      return "holds format version " + std::to_string(u) + ", not " +
             std::to_string(format_version);
    return {};
  }
  if (name == applied_row)
    ok = decode_u64(value, u);
  else if (name == hard_state_row)
    ok = decode_hard_state(value, h);
  else if (name == snapshot_row)
    ok = decode_snapshot(value, s);
  else if (name == record::stats_row(log_table) || name == record::stats_row(kv_table))
    ok = t.decode(value);
  else
    return "is not a row of dengine's format 2";
  if (!ok) return "is malformed (" + std::to_string(value.size()) + " bytes)";
  return {};
}

}  // namespace dengine::sqlite::meta

namespace dengine::sqlite {

/// Reads and writes the dengine_meta rows of one connection, verifying each row's checksum on
/// every read. Not synchronized: the owner's mutex guards the connection.
class MetaRows {
 public:
  MetaRows() = default;

  /// Prepares the statements on `db` (whose schema has been checked); `db` must stay where it
  /// is while this object is used.
  static result<MetaRows> prepare(const Database& db) {
    MetaRows out;
    out.db_ = &db;
    DENGINE_TRY(get, db.prepare("SELECT value, crc FROM dengine_meta WHERE name = ?1"));
    DENGINE_TRY(
        put,
        db.prepare("INSERT OR REPLACE INTO dengine_meta(name, value, crc) VALUES (?1, ?2, ?3)"));
    out.get_ = std::move(get);
    out.put_ = std::move(put);
    return out;
  }

  /// The value of row `name`, its checksum verified: storage_corrupt when missing or damaged.
  [[nodiscard]] result<std::string> get(std::string_view name) {
    Reset reset(get_);
    get_.bind_blob(1, name);
    const int rc = get_.step();
    if (rc == SQLITE_DONE)
      return record::corrupt(db_->file(), record::meta_row(name) + " is missing");
    if (rc != SQLITE_ROW)
      return db_->failure(rc, "SELECT FROM dengine_meta (" + std::string(name) + ")");
    return verified(*db_, get_, name, 0, 1);
  }

  /// Writes row `name` with its checksum (inside the caller's transaction, or on its own).
  result<void> put(std::string_view name, std::string_view value) {
    Reset reset(put_);
    put_.bind_blob(1, name);
    put_.bind_blob(2, value);
    put_.bind_int64(3, record::crc(meta_table, name, value));
    if (int rc = put_.step(); rc != SQLITE_DONE)
      return db_->failure(rc, "INSERT INTO dengine_meta (" + std::string(name) + ")");
    return success();
  }

  /// The stats row of `table`.
  [[nodiscard]] result<record::TableStats> stats(std::string_view table) {
    const std::string name = record::stats_row(table);
    DENGINE_TRY(value, get(name));
    record::TableStats out;
    if (!out.decode(value)) return malformed(*db_, name, value.size());
    return out;
  }

  /// A value read from columns `value_col` (BLOB) and `crc_col` (INTEGER) of `stmt`'s current
  /// row, which holds row `name`, after checking the column types and the checksum.
  static result<std::string> verified(const Database& db, const Statement& stmt,
                                      std::string_view name, int value_col, int crc_col) {
    if (stmt.column_type(value_col) != SQLITE_BLOB || stmt.column_type(crc_col) != SQLITE_INTEGER)
      return record::corrupt(db.file(), record::meta_row(name) + " has columns of the wrong type");
    const std::string_view value = stmt.column_blob(value_col);
    const std::uint32_t computed = record::crc(meta_table, name, value);
    const std::int64_t stored = stmt.column_int64(crc_col);
    if (stored != static_cast<std::int64_t>(computed))
      return record::crc_mismatch(db.file(), record::meta_row(name), stored, computed);
    return std::string(value);
  }

  /// storage_corrupt for a row whose checksum holds but whose value does not decode.
  static error malformed(const Database& db, std::string_view name, std::size_t size) {
    return record::corrupt(
        db.file(), record::meta_row(name) + " is malformed (" + std::to_string(size) + " bytes)");
  }

 private:
  const Database* db_ = nullptr;
  Statement get_;
  Statement put_;
};

}  // namespace dengine::sqlite
