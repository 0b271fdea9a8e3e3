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
#include <type_traits>
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

/// An ordered byte map plus applied index, in SQLite (see the file comment). Move-only (its
/// state is owned by unique_ptr: moves are noexcept, copies do not compile); destroying it
/// closes the connection.
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

  // ---- KvStore -------------------------------------------------------------------------------

  /// The value at key, or nullopt. The row's checksum is verified; an answer "absent" is given
  /// only after the rows on both sides of where the key would be have been verified too (see
  /// check_neighbour), so a damaged key or b-tree page never reads as a missing key.
  [[nodiscard]] result<std::optional<std::string>> get(std::string_view key) const {
    Impl& s = *impl_;
    std::lock_guard lock(s.mutex);
    Reset reset(s.get);
    s.get.bind_blob(1, key);
    const int rc = s.get.step();
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return s.db.failure(rc, "SELECT FROM kv (get)");
    if (rc == SQLITE_ROW) {
      DENGINE_TRY(found, check_row(s.db, s.get));
      if (found == key) return std::optional<std::string>{std::string(s.get.column_blob(1))};
      if (found < key) return misrouted(s.db, found, "a lookup of key " + record::printable(key));
    }
    // `get` is still active (unless it ran out of rows), so the check reads in its snapshot:
    // one read transaction for both, which in WAL mode is most of a lookup's cost.
    Reset reset_below(s.below);
    DENGINE_TRYV(check_neighbour(key));
    return std::optional<std::string>{};
  }

  /// Visits keys in [lo, hi) in ascending byte order (hi empty = to the end) until visit returns
  /// false, all from one consistent snapshot. lo >= hi (hi non-empty) visits nothing. Every row
  /// handed out is verified, and so are its neighbours outside the range (the row below lo, the
  /// first row at or past hi): a damaged key never makes a row vanish from a scan silently.
  [[nodiscard]] result<void> scan(std::string_view lo, std::string_view hi,
                                  const KvVisitor& visit) const {
    if (!hi.empty() && lo >= hi) return success();
    Impl& s = *impl_;
    std::lock_guard lock(s.mutex);
    // A scan from inside a visitor finds the cached statement in use: give it its own.
    Statement own;
    if (s.scan.busy()) {
      DENGINE_TRY(fresh, s.db.prepare(scan_sql));
      own = std::move(fresh);
    }
    Statement& stmt = own ? own : s.scan;
    Reset reset(stmt);
    // The check leaves `below` active until the scan's first step, so both read in one read
    // transaction (one snapshot; in WAL mode, starting one is most of a short scan's cost).
    Reset reset_below(s.below);
    DENGINE_TRYV(check_neighbour(lo));
    std::string previous;
    stmt.bind_blob(1, lo);
    for (bool first = true;; first = false) {
      const int rc = stmt.step();
      reset_below.now();  // free for a get() or scan() from the visitor
      if (rc == SQLITE_DONE) return success();
      if (rc != SQLITE_ROW) return s.db.failure(rc, "SELECT FROM kv (scan)");
      DENGINE_TRY(key, check_row(s.db, stmt));
      // A damaged interior page can route the seek to the wrong leaf, or the walk out of
      // order: never hand out a row outside the range or out of order.
      if (key < lo || (!first && key <= std::string_view(previous)))
        return misrouted(s.db, key,
                         "a scan of [" + record::printable(lo) + ", " +
                             (hi.empty() ? std::string("end") : record::printable(hi)) + ")");
      // The upper bound is checked here, not in SQL, so that the first row past it is read
      // and verified: a row whose key was damaged into a larger one would end the scan early.
      if (!hi.empty() && key >= hi) return success();
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
      if (w.kind == KvWrite::Kind::put) {
        DENGINE_TRYV(put_row(w.key, w.value, stats));
      } else {
        DENGINE_TRYV(erase_row(w.key, stats));
      }
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
  static constexpr std::string_view scan_sql =
      "SELECT key, value, crc FROM kv WHERE key >= ?1 ORDER BY key";

  /// The checksum of the row the last put replaced, if it replaced one.
  struct Replaced {
    bool seen = false;
    std::uint32_t crc = 0;
  };

  /// The connection and its statements, behind a pointer so that KvStore stays movable (meta
  /// and the put statement's function point into it, which therefore never moves).
  struct Impl {
    Impl(const Options& o, Database d) : options(o), db(std::move(d)) {}

    result<void> prepare() {
      // Not SQLITE_DETERMINISTIC (it has a side effect); SQLITE_DIRECTONLY: only our own
      // statements may call it, never a trigger or view in the file.
      if (int rc = sqlite3_create_function_v2(db.handle(), "dengine_replaced_crc", 2,
                                              SQLITE_UTF8 | SQLITE_DIRECTONLY, &replaced,
                                              &replaced_crc, nullptr, nullptr, nullptr);
          rc != SQLITE_OK)
        return db.failure(rc, "sqlite3_create_function_v2(dengine_replaced_crc)");
      DENGINE_TRY(a, db.prepare("SELECT key, value, crc FROM kv WHERE key >= ?1 ORDER BY key "
                                "LIMIT 1"));
      DENGINE_TRY(b, db.prepare(scan_sql));
      DENGINE_TRY(c, db.prepare("SELECT key, value, crc FROM kv WHERE key < ?1 ORDER BY key "
                                "DESC LIMIT 1"));
      // One b-tree operation per put; on a conflict, replaced_crc() hands the replaced row's
      // checksum to `replaced` (the stats must drop it) and stores the new one.
      DENGINE_TRY(d, db.prepare("INSERT INTO kv(key, value, crc) VALUES (?1, ?2, ?3) ON "
                                "CONFLICT(key) DO UPDATE SET value = excluded.value, crc = "
                                "dengine_replaced_crc(kv.crc, excluded.crc)"));
      DENGINE_TRY(e, db.prepare("DELETE FROM kv WHERE key = ?1 RETURNING crc"));
      DENGINE_TRY(f, db.prepare("DELETE FROM kv"));
      DENGINE_TRY(g, MetaRows::prepare(db));
      get = std::move(a);
      scan = std::move(b);
      below = std::move(c);
      put = std::move(d);
      erase = std::move(e);
      erase_all = std::move(f);
      meta = std::move(g);
      return success();
    }

    Options options;
    // recursive: a scan visitor may read the store it is scanning (the lock is already held).
    std::recursive_mutex mutex;
    Database db;  // declared before its statements: they are finalized first
    Statement get, scan, below, put, erase, erase_all;
    MetaRows meta;
    Replaced replaced;  // what the put statement's replaced_crc() saw
    std::atomic<LogIndex> applied{0};
  };

  explicit KvStore(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}

  /// Verifies the kv row at `stmt`'s current position (columns key, value, crc) and returns its
  /// key (valid until the statement moves).
  static result<std::string_view> check_row(const Database& db, const Statement& stmt) {
    // Types first: reading a column as a blob converts it in place.
    const bool key_typed = stmt.column_type(0) == SQLITE_BLOB;
    if (!key_typed || stmt.column_type(1) != SQLITE_BLOB || stmt.column_type(2) != SQLITE_INTEGER)
      return record::corrupt(db.file(), (key_typed ? record::kv_row(stmt.column_blob(0))
                                                   : std::string("table kv: a row")) +
                                            ": columns of the wrong type (the record is damaged)");
    const std::string_view key = stmt.column_blob(0);
    const std::uint32_t computed = record::crc(kv_table, key, stmt.column_blob(1));
    const std::int64_t stored = stmt.column_int64(2);
    if (stored != static_cast<std::int64_t>(computed))
      return record::crc_mismatch(db.file(), record::kv_row(key), stored, computed);
    return key;
  }

  /// Verifies the row just below `key` (the last one with a smaller key), if any: a b-tree
  /// seek for `key` lands next to where `key` is or would be, so a row whose key was damaged
  /// sits there, and a seek misrouted by a damaged interior page lands where this row is not
  /// below `key`. Called with the mutex held, before an answer "absent" or a scan from `key`;
  /// the caller resets `below` (keeping it active keeps its read transaction open).
  result<void> check_neighbour(std::string_view key) const {
    if (key.empty()) return success();  // nothing sorts below the empty key
    Impl& s = *impl_;
    s.below.bind_blob(1, key);
    const int rc = s.below.step();
    if (rc == SQLITE_DONE) return success();
    if (rc != SQLITE_ROW) return s.db.failure(rc, "SELECT FROM kv (the row below a key)");
    DENGINE_TRY(found, check_row(s.db, s.below));
    if (found >= key) return misrouted(s.db, found, "the row below key " + record::printable(key));
    return success();
  }

  /// storage_corrupt for a row a b-tree seek or walk should not have produced.
  static error misrouted(const Database& db, std::string_view key, const std::string& what) {
    return record::corrupt(db.file(), record::kv_row(key) + " came out of order in " + what +
                                          " (the table's b-tree is damaged)");
  }

  /// Puts one row and accounts for it in `stats`; called inside the write transaction.
  result<void> put_row(std::string_view key, std::string_view value, record::TableStats& stats) {
    Impl& s = *impl_;
    const std::uint32_t crc = record::crc(kv_table, key, value);
    Reset reset(s.put);
    int rc = s.put.bind_blob(1, key);
    if (rc == SQLITE_OK) rc = s.put.bind_blob(2, value);
    if (rc != SQLITE_OK)
      return s.db.failure(rc, "binding a key of " + std::to_string(key.size()) +
                                  " bytes and a value of " + std::to_string(value.size()) +
                                  " bytes");
    s.put.bind_int64(3, crc);
    s.replaced = {};
    if (rc = s.put.step(); rc != SQLITE_DONE) return s.db.failure(rc, "INSERT INTO kv");
    if (s.replaced.seen) stats.remove(s.replaced.crc);
    stats.add(crc);
    return success();
  }

  /// Erases one row, if present, and accounts for it in `stats`; called inside the write
  /// transaction.
  result<void> erase_row(std::string_view key, record::TableStats& stats) {
    Impl& s = *impl_;
    Reset reset(s.erase);
    if (int rc = s.erase.bind_blob(1, key); rc != SQLITE_OK)
      return s.db.failure(rc, "binding a key of " + std::to_string(key.size()) + " bytes");
    for (;;) {  // RETURNING: one row when the key was there
      const int rc = s.erase.step();
      if (rc == SQLITE_DONE) return success();
      if (rc != SQLITE_ROW) return s.db.failure(rc, "DELETE FROM kv");
      stats.remove(static_cast<std::uint32_t>(s.erase.column_int64(0)));
    }
  }

  /// dengine_replaced_crc(old, new): records `old` (the checksum of the row a put replaces) in
  /// the Replaced its user data points at, and returns `new`.
  static void replaced_crc(sqlite3_context* context, int, sqlite3_value** args) {
    auto* replaced = static_cast<Replaced*>(sqlite3_user_data(context));
    replaced->seen = true;
    replaced->crc = static_cast<std::uint32_t>(sqlite3_value_int64(args[0]));
    sqlite3_result_value(context, args[1]);
  }

  std::unique_ptr<Impl> impl_;
};

/// Moves are noexcept (the state sits behind a unique_ptr) and copies do not compile.
static_assert(std::is_nothrow_move_constructible_v<KvStore> &&
              std::is_nothrow_move_assignable_v<KvStore> && !std::is_copy_constructible_v<KvStore>);
static_assert(dengine::KvStore<KvStore>);

}  // namespace dengine::sqlite
