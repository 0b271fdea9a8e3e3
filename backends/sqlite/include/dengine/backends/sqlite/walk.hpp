#pragma once
/// Verification walks over a format-2 database: each reads a whole table in key order and
/// checks what per-row reads cannot — rows lost or duplicated (count and digest against the
/// table's stats row), the log's contiguity from the compaction point and its terms never
/// decreasing, keys strictly ascending — besides every row's column types and checksum. Plus
/// SQLite's own `PRAGMA integrity_check` (page structure, free list, key order in interior
/// pages, which per-row checksums cannot see: a damaged separator key misroutes lookups).
///
/// Used at open (schema.hpp: open_database) and by verify() (verify.hpp). A walk reports what it
/// finds as text lines in a Problems list; it stops at an SQLite error (the rest of the table
/// cannot be trusted to be reachable), reporting that error too.

#include <sqlite3.h>

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dengine/backends/sqlite/database.hpp"
#include "dengine/backends/sqlite/meta.hpp"
#include "dengine/backends/sqlite/record.hpp"
#include "dengine/backends/sqlite/statement.hpp"
#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/storage/crc32c.hpp"

namespace dengine::sqlite {

/// What walks found: text lines (the first `limit` of them kept), and how many in all.
class Problems {
 public:
  explicit Problems(std::size_t limit) : limit_(limit) {}
  /// Records one problem.
  void add(std::string what) {
    if (lines_.size() < limit_) lines_.push_back(std::move(what));
    ++count_;
  }
  [[nodiscard]] bool empty() const noexcept { return count_ == 0; }
  [[nodiscard]] std::size_t count() const noexcept { return count_; }
  [[nodiscard]] const std::vector<std::string>& lines() const noexcept { return lines_; }
  /// The kept lines joined by `separator`, and how many more there were.
  [[nodiscard]] std::string joined(std::string_view separator) const {
    std::string out;
    for (std::size_t k = 0; k < lines_.size(); ++k) {
      if (k > 0) out += separator;
      out += lines_[k];
    }
    if (count_ > lines_.size())
      out += std::string(separator) + "... and " + std::to_string(count_ - lines_.size()) + " more";
    return out;
  }

 private:
  std::size_t limit_;
  std::size_t count_ = 0;
  std::vector<std::string> lines_;
};

namespace walk {

/// An error's detail without the "sqlite: <file>: " every record error starts with (a walk's
/// lines are about one file, named once by whoever reports them).
inline std::string text(const Database& db, const error& e) {
  const std::string prefix = "sqlite: " + db.file().string() + ": ";
  if (e.detail.compare(0, prefix.size(), prefix) == 0) return e.detail.substr(prefix.size());
  return e.detail;
}

/// Records an SQLite error that stopped a walk.
inline void sqlite_failure(const Database& db, Problems& p, int rc, std::string_view what) {
  p.add(db.failure(rc, what).detail);
}

/// Reads row `name` of dengine_meta (verified) into `value`; false after recording a problem.
inline bool meta_value(const Database& db, Problems& p, std::string_view name, std::string& value) {
  auto stmt = db.prepare("SELECT value, crc FROM dengine_meta WHERE name = ?1");
  if (!stmt) {
    p.add(stmt.error().detail);
    return false;
  }
  Statement& s = stmt.value();
  s.bind_blob(1, name);
  const int rc = s.step();
  if (rc == SQLITE_DONE) {
    p.add(record::meta_row(name) + " is missing");
    return false;
  }
  if (rc != SQLITE_ROW) {
    sqlite_failure(db, p, rc, "reading " + record::meta_row(name));
    return false;
  }
  auto v = MetaRows::verified(db, s, name, 0, 1);
  if (!v) {
    p.add(text(db, v.error()));
    return false;
  }
  value = std::move(v).value();
  return true;
}

/// Compares a table's walked stats with its stats row.
inline void compare_stats(const Database& db, Problems& p, std::string_view table,
                          const record::TableStats& walked) {
  std::string value;
  if (!meta_value(db, p, record::stats_row(table), value)) return;
  record::TableStats stored;
  if (!stored.decode(value)) {
    p.add(record::meta_row(record::stats_row(table)) + " is malformed");
    return;
  }
  if (stored.rows != walked.rows)
    p.add("table " + std::string(table) + " holds " + std::to_string(walked.rows) + " rows, but " +
          std::to_string(stored.rows) + " were written (rows lost or added behind dengine's back)");
  else if (stored.digest != walked.digest)
    p.add("table " + std::string(table) + ": the digest of its " + std::to_string(walked.rows) +
          " rows' checksums differs from the one written (rows replaced behind dengine's back, "
          "or old versions of rows resurfaced)");
}

/// Every dengine_meta row: column types, checksum, a known name with a well-formed value; and
/// every row of the format present.
inline void meta(const Database& db, Problems& p) {
  auto stmt = db.prepare("SELECT name, value, crc FROM dengine_meta ORDER BY name");
  if (!stmt) return p.add(stmt.error().detail);
  Statement& s = stmt.value();
  std::set<std::string, std::less<>> seen;
  for (;;) {
    const int rc = s.step();
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return sqlite_failure(db, p, rc, "reading table dengine_meta");
    if (s.column_type(0) != SQLITE_BLOB) {
      p.add("table dengine_meta: a row's name has the wrong type");
      continue;
    }
    const std::string name(s.column_blob(0));
    seen.insert(name);
    auto value = MetaRows::verified(db, s, name, 1, 2);
    if (!value) {
      p.add(text(db, value.error()));
      continue;
    }
    if (auto why = meta::check_value(name, value.value()); !why.empty())
      p.add(record::meta_row(name) + " " + why);
  }
  for (const auto& [name, value] : meta::initial_rows())
    if (!seen.contains(name)) p.add(record::meta_row(name) + " is missing");
}

/// The log: every row's types and checksum (and its data's when `with_data`), indexes exactly
/// [compaction index + 1, last] with no gap, terms never below the compaction point's term and
/// never decreasing, known entry types, and the row count and digest.
inline void log(const Database& db, Problems& p, bool with_data) {
  std::string value;
  SnapshotMeta snapshot;
  bool bounded = meta_value(db, p, meta::snapshot_row, value);
  if (bounded && !meta::decode_snapshot(value, snapshot)) {
    p.add(record::meta_row(meta::snapshot_row) + " is malformed");
    bounded = false;
  }
  auto stmt =
      db.prepare(with_data ? "SELECT idx, term, type, data_crc, crc, data FROM raft_log "
                             "ORDER BY idx"
                           : "SELECT idx, term, type, data_crc, crc FROM raft_log ORDER BY idx");
  if (!stmt) return p.add(stmt.error().detail);
  Statement& s = stmt.value();
  record::TableStats walked;
  LogIndex expected = snapshot.index + 1;
  Term previous_term = snapshot.term;
  for (;;) {
    const int rc = s.step();
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return sqlite_failure(db, p, rc, "reading table raft_log");
    const LogIndex index = s.column_u64(0);
    auto row = [index] { return record::log_row(index); };  // built only for a problem
    bool typed = true;
    for (int c = 1; c <= 4; ++c) typed = typed && s.column_type(c) == SQLITE_INTEGER;
    if (with_data) typed = typed && s.column_type(5) == SQLITE_BLOB;
    if (!typed) {
      p.add(row() + ": columns of the wrong type (the record is damaged)");
      continue;
    }
    const std::int64_t stored = s.column_int64(4);
    walked.add(static_cast<std::uint32_t>(stored));
    if (bounded && index != expected)
      p.add(row() + ": " +
            (index > expected
                 ? "entries " + std::to_string(expected) + " to " + std::to_string(index - 1) +
                       " are missing (a gap in the log)"
                 : "lies at or below the compaction point " + std::to_string(snapshot.index)));
    expected = index + 1;
    const std::uint32_t computed =
        record::log_crc(s.column_int64(0), s.column_int64(1), s.column_int64(2), s.column_int64(3));
    if (stored != static_cast<std::int64_t>(computed)) {
      p.add(text(db, record::crc_mismatch(db.file(), row(), stored, computed)));
      continue;
    }
    if (with_data) {
      const std::uint32_t data_crc = crc32c::value(s.column_blob(5));
      if (s.column_int64(3) != static_cast<std::int64_t>(data_crc)) {
        p.add(text(db,
                   record::crc_mismatch(db.file(), row() + " data", s.column_int64(3), data_crc)));
        continue;
      }
    }
    const std::int64_t type = s.column_int64(2);
    if (type < 0 || type > static_cast<std::int64_t>(EntryType::config_change))
      p.add(row() + ": unknown entry type " + std::to_string(type));
    const Term term = s.column_u64(1);
    if (term < previous_term)
      p.add(row() + ": term " + std::to_string(term) + " is below the term " +
            std::to_string(previous_term) + " before it");
    previous_term = term;
  }
  compare_stats(db, p, log_table, walked);
}

/// The KV map: every row's types and checksum, keys strictly ascending, the row count and
/// digest.
inline void kv(const Database& db, Problems& p) {
  auto stmt = db.prepare("SELECT key, value, crc FROM kv ORDER BY key");
  if (!stmt) return p.add(stmt.error().detail);
  Statement& s = stmt.value();
  record::TableStats walked;
  std::string previous;
  bool first = true;
  for (;;) {
    const int rc = s.step();
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) return sqlite_failure(db, p, rc, "reading table kv");
    // Types first: reading a column as a blob converts it in place.
    const bool key_typed = s.column_type(0) == SQLITE_BLOB;
    const bool typed =
        key_typed && s.column_type(1) == SQLITE_BLOB && s.column_type(2) == SQLITE_INTEGER;
    if (!typed) {
      p.add((key_typed ? record::kv_row(s.column_blob(0)) : std::string("table kv: a row")) +
            ": columns of the wrong type (the record is damaged)");
      continue;
    }
    const std::string_view key = s.column_blob(0);
    const std::int64_t stored = s.column_int64(2);
    walked.add(static_cast<std::uint32_t>(stored));
    if (!first && key <= std::string_view(previous))
      p.add(record::kv_row(key) + " is out of order after key " + record::printable(previous));
    first = false;
    previous.assign(key);
    const std::uint32_t computed = record::crc(kv_table, key, s.column_blob(1));
    if (stored != static_cast<std::int64_t>(computed))
      p.add(text(db, record::crc_mismatch(db.file(), record::kv_row(key), stored, computed)));
  }
  compare_stats(db, p, kv_table, walked);
}

/// SQLite's `PRAGMA integrity_check`: every page's structure, the free list, the order of keys
/// in interior pages.
inline void integrity(const Database& db, Problems& p) {
  auto stmt = db.prepare("PRAGMA integrity_check(100)");
  if (!stmt) return p.add(stmt.error().detail);
  Statement& s = stmt.value();
  for (;;) {
    const int rc = s.step();
    if (rc == SQLITE_DONE) return;
    if (rc != SQLITE_ROW) return sqlite_failure(db, p, rc, "PRAGMA integrity_check");
    const std::string_view line = s.column_blob(0);
    if (line != "ok") p.add("SQLite integrity_check: " + std::string(line));
  }
}

}  // namespace walk
}  // namespace dengine::sqlite
