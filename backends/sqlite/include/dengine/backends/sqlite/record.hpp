#pragma once
/// The SQLite backend's record checksums (format version 2). SQLite checksums nothing in the
/// database file, so every row dengine stores carries a CRC32C of its table, key and value,
/// verified whenever the row is read; a mismatch is storage_corrupt naming the file, the table
/// and the key or index, never a wrong value.
///
///   crc = CRC32C(table name ‖ 0x00 ‖ u32 BE key length ‖ key ‖ value)
///
/// The key's length keeps the key/value boundary inside the checksum; the table name keeps a
/// row valid only in its own table. Integers enter the checksum as 8-byte big-endian values of
/// the int64 stored in the column, so any change to a stored column changes the checksum input.
/// The rows of each table:
///   kv            key = the key bytes                value = the value bytes
///   dengine_meta  key = the row's name               value = the value blob
///   raft_log      key = u64 index                    value = u64 term ‖ u64 type ‖ u64 data_crc
/// A log entry's data has its own CRC32C (data_crc), inside the row's checksum: term() checks
/// an entry's row without reading its data, entries() checks both.
///
/// Lost or duplicated rows are invisible to per-row checksums, so each table's row count and
/// an order-independent digest of its row checksums (the sum of mix(crc) modulo 2^64) live in a
/// meta row written in the same transaction as every change to the table (TableStats).

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/storage/byte_codec.hpp"
#include "dengine/storage/crc32c.hpp"
#include "dengine/storage/record_check.hpp"

namespace dengine::sqlite {

/// The on-disk format this build reads and writes: 1 = no record checksums (refused),
/// 2 = a CRC32C on every row, row counts and digests (record.hpp). Stored as SQLite's
/// user_version in the file header and in the checksummed 'format_version' meta row.
inline constexpr std::int64_t format_version = 2;

/// SQLite's application_id of a dengine database file ("dEng").
inline constexpr std::uint32_t application_id = 0x64456E67;

/// The tables, as the schema and error messages name them.
inline constexpr std::string_view meta_table = "dengine_meta";
inline constexpr std::string_view log_table = "raft_log";
inline constexpr std::string_view kv_table = "kv";

namespace record {

/// The checksum of a row of `table` (see the file comment).
inline std::uint32_t crc(std::string_view table, std::string_view key, std::string_view value) {
  const char separator = 0;
  storage::KeyedCrc c(crc32c::extend(crc32c::extend(0, table.data(), table.size()), &separator, 1),
                      key);
  c.add(value);
  return c.value();
}

/// The checksum of a raft_log row from its stored integer columns (no allocation: it runs for
/// every entry read).
inline std::uint32_t log_crc(std::int64_t index, std::int64_t term, std::int64_t type,
                             std::int64_t data_crc) {
  char key[8];
  char value[24];
  bytes::store_be64(key, static_cast<std::uint64_t>(index));
  bytes::store_be64(value, static_cast<std::uint64_t>(term));
  bytes::store_be64(value + 8, static_cast<std::uint64_t>(type));
  bytes::store_be64(value + 16, static_cast<std::uint64_t>(data_crc));
  return crc(log_table, std::string_view(key, sizeof key), std::string_view(value, sizeof value));
}

/// A 64-bit mix of a row checksum (storage::mix64), so that the digest's sum spreads each row
/// over all 64 bits.
inline std::uint64_t mix(std::uint32_t row_crc) { return storage::mix64(row_crc); }

/// A table's row count and the digest of its rows' checksums. Adding and removing commute, so
/// the stats follow any sequence of inserts and deletes; a verification walk recomputes them.
struct TableStats {
  std::uint64_t rows = 0;
  std::uint64_t digest = 0;

  /// A row with checksum `c` was inserted.
  void add(std::uint32_t c) {
    ++rows;
    digest += mix(c);
  }
  /// A row with checksum `c` was deleted.
  void remove(std::uint32_t c) {
    --rows;
    digest -= mix(c);
  }
  /// The meta row's value: u64 rows ‖ u64 digest.
  [[nodiscard]] std::string encode() const {
    std::string out;
    bytes::put_be64(out, rows);
    bytes::put_be64(out, digest);
    return out;
  }
  /// Decodes encode(); false when the size is wrong.
  bool decode(std::string_view in) {
    if (in.size() != 16) return false;
    rows = bytes::get_be64(in.data());
    digest = bytes::get_be64(in.data() + 8);
    return true;
  }
  friend bool operator==(const TableStats&, const TableStats&) = default;
};

/// The meta row holding `table`'s stats.
inline std::string stats_row(std::string_view table) { return "rows:" + std::string(table); }

using storage::printable;

/// Where a row lives, for messages: "table kv, key \"a\"", "table raft_log, index 7".
inline std::string kv_row(std::string_view key) {
  return "table " + std::string(kv_table) + ", key " + printable(key);
}
inline std::string log_row(LogIndex index) {
  return "table " + std::string(log_table) + ", index " + std::to_string(index);
}
inline std::string meta_row(std::string_view name) {
  return "table " + std::string(meta_table) + ", row " + printable(name);
}

/// storage_corrupt naming the backend, the file, and what is wrong.
inline error corrupt(const std::filesystem::path& file, std::string_view what) {
  return error(errc::storage_corrupt, "sqlite: " + file.string() + ": " + std::string(what));
}

/// The error for a row whose stored checksum differs from the one computed over its contents.
inline error crc_mismatch(const std::filesystem::path& file, std::string_view row,
                          std::int64_t stored, std::uint32_t computed) {
  return corrupt(file, std::string(row) + ": checksum mismatch (stored " + std::to_string(stored) +
                           ", computed " + std::to_string(computed) + "): the record is damaged");
}

}  // namespace record
}  // namespace dengine::sqlite
