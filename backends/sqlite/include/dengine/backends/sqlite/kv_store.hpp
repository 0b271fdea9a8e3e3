#pragma once
/// dengine::sqlite::KvStore — a KvStore in the kv table of a data dir's SQLite database.
///
/// Keys and values are BLOBs (`kv` is a WITHOUT ROWID table keyed by the BLOB, which SQLite
/// compares with memcmp: ascending byte order). Every row carries a CRC32C of its key and value
/// (record.hpp), verified by every get() and scan(): a mismatch is storage_corrupt naming the
/// file and the key, never a wrong value. A scan also checks that the rows it is given are in
/// its range and in ascending order. The applied index ('kv_applied_index') and the table's
/// row count and digest ('rows:kv') are dengine_meta rows written in the same transaction as
/// the batch. A KvStore opened on the same dir as an Engine shares its database file (its own
/// connection); opened alone it creates it.
///
/// Durability: a write is durable on return with DiskFirst (`synchronous=FULL`); with MemFirst
/// after sync() (an fsync of the WAL file).
/// Threads: every call locks one recursive mutex (one connection). A scan visitor may call
/// get()/scan()/applied_index() on the same store (a nested scan uses its own statement) but
/// must not write to it. The views passed to a visitor are valid only during that call.

#include <sqlite3.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "dengine/backends/sqlite/database.hpp"
#include "dengine/backends/sqlite/meta.hpp"
#include "dengine/backends/sqlite/options.hpp"
#include "dengine/backends/sqlite/record.hpp"
#include "dengine/backends/sqlite/schema.hpp"
#include "dengine/backends/sqlite/statement.hpp"
#include "dengine/core/config.hpp"
#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/storage/concepts.hpp"
#include "dengine/storage/write_batch.hpp"

namespace dengine::sqlite {

/// An ordered byte map plus applied index, in SQLite (see the file comment).
class KvStore {
 public:
  /// Opens the store in `dir` (file dengine.sqlite3, shared with an Engine opened on the same
  /// dir), creating it when missing and Options::create_if_missing allows. Errors as for
  /// Engine::open.
  static result<KvStore> open(const std::filesystem::path& dir, Options options = {}) {
    DENGINE_TRY(db, open_database(dir, options));
    auto impl = std::make_unique<Impl>(options, std::move(db));
    DENGINE_TRYV(impl->prepare());
    DENGINE_TRY(value, impl->meta.get(meta::applied_row));
    std::uint64_t applied = 0;
    if (!meta::decode_u64(value, applied))
      return MetaRows::malformed(impl->db, meta::applied_row, value.size());
    impl->applied.store(applied);
    return KvStore(std::move(impl));
  }

  KvStore(KvStore&&) noexcept = default;
  KvStore& operator=(KvStore&&) noexcept = default;
  KvStore(const KvStore&) = delete;
  KvStore& operator=(const KvStore&) = delete;
  /// Closes the connection.
  ~KvStore() = default;

  // ---- KvStore -------------------------------------------------------------------------------

  /// The value at key, or nullopt. The row's checksum is verified.
  [[nodiscard]] result<std::optional<std::string>> get(std::string_view key) const {
    Impl& s = *impl_;
    std::lock_guard lock(s.mutex);
    Reset reset(s.get);
    s.get.bind_blob(1, key);
    const int rc = s.get.step();
    if (rc == SQLITE_DONE) return std::optional<std::string>{};
    if (rc != SQLITE_ROW) return s.db.failure(rc, "SELECT FROM kv (get)");
    DENGINE_TRYV(check_row(s.db, s.get, key, 0, 1));
    return std::optional<std::string>{std::string(s.get.column_blob(0))};
  }

  /// Visits keys in [lo, hi) in ascending byte order (hi empty = to the end) until visit returns
  /// false, all from one consistent snapshot. lo >= hi (hi non-empty) visits nothing.
  [[nodiscard]] result<void> scan(std::string_view lo, std::string_view hi,
                                  const KvVisitor& visit) const {
    if (!hi.empty() && lo >= hi) return success();
    Impl& s = *impl_;
    std::lock_guard lock(s.mutex);
    Statement& cached = hi.empty() ? s.scan_from : s.scan_range;
    // A scan from inside a visitor finds the cached statement in use: give it its own.
    Statement own;
    if (cached.busy()) {
      DENGINE_TRY(fresh, s.db.prepare(hi.empty() ? scan_from_sql : scan_range_sql));
      own = std::move(fresh);
    }
    Statement& stmt = own ? own : cached;
    Reset reset(stmt);
    stmt.bind_blob(1, lo);
    if (!hi.empty()) stmt.bind_blob(2, hi);
    std::string previous;
    for (bool first = true;; first = false) {
      const int rc = stmt.step();
      if (rc == SQLITE_DONE) return success();
      if (rc != SQLITE_ROW) return s.db.failure(rc, "SELECT FROM kv (scan)");
      if (stmt.column_type(0) != SQLITE_BLOB)
        return record::corrupt(s.db.file(),
                               "table kv: a key is not a blob (the record is damaged)");
      const std::string_view key = stmt.column_blob(0);
      DENGINE_TRYV(check_row(s.db, stmt, key, 1, 2));
      // A damaged interior page can route the seek to the wrong leaf or the walk out of order:
      // never hand out a row outside the range or out of order.
      if (key < lo || (!hi.empty() && key >= hi) || (!first && key <= std::string_view(previous)))
        return record::corrupt(s.db.file(),
                               record::kv_row(key) + " is out of order in a scan of [" +
                                   record::printable(lo) + ", " + record::printable(hi) +
                                   ") (the table's b-tree is damaged)");
      previous.assign(key);
      if (!visit(key, stmt.column_blob(1))) return success();
    }
  }

  /// Applies every write of batch in order (a later write to a key wins) and records
  /// applied_index, in one transaction: all of it or none of it becomes visible (and durable
  /// per the mode).
  result<void> write(const WriteBatch& batch, LogIndex applied_index) {
    Impl& s = *impl_;
    std::lock_guard lock(s.mutex);
    WriteTransaction txn(s.db);
    DENGINE_TRYV(txn.begin());
    DENGINE_TRY(stats, s.meta.stats(kv_table));
    for (const KvWrite& w : batch.writes) {
      // The stats drop the checksum of the row a write replaces or erases.
      DENGINE_TRYV(forget_row(w.kind == KvWrite::Kind::put ? s.old_crc : s.erase, w.key, stats));
      if (w.kind != KvWrite::Kind::put) continue;
      const std::uint32_t crc = record::crc(kv_table, w.key, w.value);
      Reset reset(s.put);
      int rc = s.put.bind_blob(1, w.key);
      if (rc == SQLITE_OK) rc = s.put.bind_blob(2, w.value);
      if (rc != SQLITE_OK)
        return s.db.failure(rc, "binding a key of " + std::to_string(w.key.size()) +
                                    " bytes and a value of " + std::to_string(w.value.size()) +
                                    " bytes");
      s.put.bind_int64(3, crc);
      if (rc = s.put.step(); rc != SQLITE_DONE) return s.db.failure(rc, "INSERT INTO kv");
      stats.add(crc);
    }
    DENGINE_TRYV(s.meta.put(record::stats_row(kv_table), stats.encode()));
    DENGINE_TRYV(s.meta.put(meta::applied_row, meta::encode_u64(applied_index)));
    DENGINE_TRYV(txn.commit());
    s.applied.store(applied_index);
    return success();
  }

  /// The index recorded by the last write() or clear() (0 on a fresh store).
  [[nodiscard]] LogIndex applied_index() const { return impl_->applied.load(); }

  /// Erases every key and records applied_index, in one transaction.
  result<void> clear(LogIndex applied_index) {
    Impl& s = *impl_;
    std::lock_guard lock(s.mutex);
    WriteTransaction txn(s.db);
    DENGINE_TRYV(txn.begin());
    {
      Reset reset(s.erase_all);
      if (int rc = s.erase_all.step(); rc != SQLITE_DONE)
        return s.db.failure(rc, "DELETE FROM kv (clear)");
    }
    DENGINE_TRYV(s.meta.put(record::stats_row(kv_table), record::TableStats{}.encode()));
    DENGINE_TRYV(s.meta.put(meta::applied_row, meta::encode_u64(applied_index)));
    DENGINE_TRYV(txn.commit());
    s.applied.store(applied_index);
    return success();
  }

  // ---- Beyond the concept --------------------------------------------------------------------

  /// Makes every write durable: fsyncs the WAL with MemFirst; nothing to do with DiskFirst.
  result<void> sync() {
    if (impl_->options.mode == PersistenceMode::disk_first) return success();
    std::lock_guard lock(impl_->mutex);
    return impl_->db.sync_wal();
  }

  /// The persistence mode this store was opened with.
  [[nodiscard]] PersistenceMode mode() const noexcept { return impl_->options.mode; }
  /// The database file (absolute).
  [[nodiscard]] const std::filesystem::path& file() const noexcept { return impl_->db.file(); }

 private:
  static constexpr std::string_view scan_from_sql =
      "SELECT key, value, crc FROM kv WHERE key >= ?1 ORDER BY key";
  static constexpr std::string_view scan_range_sql =
      "SELECT key, value, crc FROM kv WHERE key >= ?1 AND key < ?2 ORDER BY key";

  /// The connection and its statements, behind a pointer so that KvStore stays movable (meta
  /// points at db, which therefore never moves).
  struct Impl {
    Impl(const Options& o, Database d) : options(o), db(std::move(d)) {}

    result<void> prepare() {
      DENGINE_TRY(a, db.prepare("SELECT value, crc FROM kv WHERE key = ?1"));
      DENGINE_TRY(b, db.prepare(scan_from_sql));
      DENGINE_TRY(c, db.prepare(scan_range_sql));
      DENGINE_TRY(d, db.prepare("INSERT OR REPLACE INTO kv(key, value, crc) VALUES (?1, ?2, ?3)"));
      DENGINE_TRY(e, db.prepare("DELETE FROM kv WHERE key = ?1 RETURNING crc"));
      DENGINE_TRY(f, db.prepare("DELETE FROM kv"));
      DENGINE_TRY(g, MetaRows::prepare(db));
      DENGINE_TRY(h, db.prepare("SELECT crc FROM kv WHERE key = ?1"));
      get = std::move(a);
      scan_from = std::move(b);
      scan_range = std::move(c);
      put = std::move(d);
      erase = std::move(e);
      erase_all = std::move(f);
      meta = std::move(g);
      old_crc = std::move(h);
      return success();
    }

    Options options;
    // recursive: a scan visitor may read the store it is scanning (the lock is already held).
    std::recursive_mutex mutex;
    Database db;  // declared before its statements: they are finalized first
    Statement get, scan_from, scan_range, put, erase, erase_all, old_crc;
    MetaRows meta;
    std::atomic<LogIndex> applied{0};
  };

  explicit KvStore(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}

  /// Verifies the kv row at `stmt`'s current position: `key` (the key it was looked up or read
  /// by), the value in column `value_col` and the checksum in `crc_col`.
  static result<void> check_row(const Database& db, const Statement& stmt, std::string_view key,
                                int value_col, int crc_col) {
    if (stmt.column_type(value_col) != SQLITE_BLOB || stmt.column_type(crc_col) != SQLITE_INTEGER)
      return record::corrupt(
          db.file(), record::kv_row(key) + ": columns of the wrong type (the record is damaged)");
    const std::uint32_t computed = record::crc(kv_table, key, stmt.column_blob(value_col));
    const std::int64_t stored = stmt.column_int64(crc_col);
    if (stored != static_cast<std::int64_t>(computed))
      return record::crc_mismatch(db.file(), record::kv_row(key), stored, computed);
    return success();
  }

  /// Runs `stmt` (old_crc before a put, erase for an erase) on `key` and removes the checksum
  /// of the row it returns, if any, from `stats`; called inside the write transaction. (A put's
  /// INSERT OR REPLACE does not tell which row it replaced.)
  result<void> forget_row(Statement& stmt, std::string_view key, record::TableStats& stats) {
    Impl& s = *impl_;
    Reset reset(stmt);
    if (int rc = stmt.bind_blob(1, key); rc != SQLITE_OK)
      return s.db.failure(rc, "binding a key of " + std::to_string(key.size()) + " bytes");
    for (;;) {
      const int rc = stmt.step();
      if (rc == SQLITE_DONE) return success();
      if (rc != SQLITE_ROW)
        return s.db.failure(rc, &stmt == &s.erase ? "DELETE FROM kv" : "SELECT crc FROM kv");
      stats.remove(static_cast<std::uint32_t>(stmt.column_int64(0)));
    }
  }

  std::unique_ptr<Impl> impl_;
};

static_assert(dengine::KvStore<KvStore>);

}  // namespace dengine::sqlite
