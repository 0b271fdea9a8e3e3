#pragma once
/// dengine::sqlite::KvStore — a KvStore in the kv table of a data dir's SQLite database.
///
/// Keys and values are BLOBs (`kv` is a WITHOUT ROWID table keyed by the BLOB, which SQLite
/// compares with memcmp: ascending byte order). The applied index is the 'kv_applied_index' row
/// of dengine_meta, written in the same transaction as the batch. A KvStore opened on the same
/// dir as an Engine shares its database file (its own connection); opened alone it creates it.
///
/// Durability: a write is durable on return with DiskFirst (`synchronous=FULL`); with MemFirst
/// after sync() (an fsync of the WAL file).
/// Threads: every call locks one recursive mutex (one connection). A scan visitor may call
/// get()/scan()/applied_index() on the same store (a nested scan uses its own statement) but
/// must not write to it. The views passed to a visitor are valid only during that call.

#include <sqlite3.h>

#include <atomic>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "dengine/backends/sqlite/database.hpp"
#include "dengine/backends/sqlite/options.hpp"
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
  /// Opens (creating if needed) the store in `dir` (file dengine.sqlite3, shared with an
  /// Engine opened on the same dir). Errors as for Engine::open.
  static result<KvStore> open(const std::filesystem::path& dir, Options options = {}) {
    DENGINE_TRY(db, open_database(dir, options));
    auto impl = std::make_unique<Impl>(options, std::move(db));
    DENGINE_TRYV(impl->prepare());
    Reset reset(impl->get_applied);
    const int rc = impl->get_applied.step();
    if (rc == SQLITE_ROW) {
      impl->applied.store(impl->get_applied.column_u64(0));
    } else if (rc != SQLITE_DONE) {
      return impl->db.failure(rc, "SELECT kv_applied_index");
    }
    return KvStore(std::move(impl));
  }

  KvStore(KvStore&&) noexcept = default;
  KvStore& operator=(KvStore&&) noexcept = default;
  KvStore(const KvStore&) = delete;
  KvStore& operator=(const KvStore&) = delete;
  /// Closes the connection.
  ~KvStore() = default;

  // ---- KvStore -------------------------------------------------------------------------------

  /// The value at key, or nullopt.
  [[nodiscard]] result<std::optional<std::string>> get(std::string_view key) const {
    Impl& s = *impl_;
    std::lock_guard lock(s.mutex);
    Reset reset(s.get);
    s.get.bind_blob(1, key);
    const int rc = s.get.step();
    if (rc == SQLITE_DONE) return std::optional<std::string>{};
    if (rc != SQLITE_ROW) return s.db.failure(rc, "SELECT FROM kv (get)");
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
    for (;;) {
      const int rc = stmt.step();
      if (rc == SQLITE_DONE) return success();
      if (rc != SQLITE_ROW) return s.db.failure(rc, "SELECT FROM kv (scan)");
      if (!visit(stmt.column_blob(0), stmt.column_blob(1))) return success();
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
    for (const KvWrite& w : batch.writes) {
      Statement& stmt = w.kind == KvWrite::Kind::put ? s.put : s.erase;
      Reset reset(stmt);
      int rc = stmt.bind_blob(1, w.key);
      if (rc == SQLITE_OK && w.kind == KvWrite::Kind::put) rc = stmt.bind_blob(2, w.value);
      if (rc != SQLITE_OK)
        return s.db.failure(rc, "binding a key of " + std::to_string(w.key.size()) +
                                    " bytes and a value of " + std::to_string(w.value.size()) +
                                    " bytes");
      if (rc = stmt.step(); rc != SQLITE_DONE)
        return s.db.failure(rc, w.kind == KvWrite::Kind::put ? "INSERT INTO kv" : "DELETE FROM kv");
    }
    DENGINE_TRYV(put_applied(applied_index));
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
    DENGINE_TRYV(put_applied(applied_index));
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
  /// The database file.
  [[nodiscard]] const std::filesystem::path& file() const noexcept { return impl_->db.file(); }

 private:
  static constexpr std::string_view scan_from_sql =
      "SELECT key, value FROM kv WHERE key >= ?1 ORDER BY key";
  static constexpr std::string_view scan_range_sql =
      "SELECT key, value FROM kv WHERE key >= ?1 AND key < ?2 ORDER BY key";

  /// The connection and its statements, behind a pointer so that KvStore stays movable.
  struct Impl {
    Impl(const Options& o, Database d) : options(o), db(std::move(d)) {}

    result<void> prepare() {
      DENGINE_TRY(a, db.prepare("SELECT value FROM kv WHERE key = ?1"));
      DENGINE_TRY(b, db.prepare(scan_from_sql));
      DENGINE_TRY(c, db.prepare(scan_range_sql));
      DENGINE_TRY(d, db.prepare("INSERT OR REPLACE INTO kv(key, value) VALUES (?1, ?2)"));
      DENGINE_TRY(e, db.prepare("DELETE FROM kv WHERE key = ?1"));
      DENGINE_TRY(f, db.prepare("DELETE FROM kv"));
      DENGINE_TRY(
          g,
          db.prepare(
              "INSERT OR REPLACE INTO dengine_meta(name, value) VALUES ('kv_applied_index', ?1)"));
      DENGINE_TRY(h, db.prepare("SELECT value FROM dengine_meta WHERE name = 'kv_applied_index'"));
      get = std::move(a);
      scan_from = std::move(b);
      scan_range = std::move(c);
      put = std::move(d);
      erase = std::move(e);
      erase_all = std::move(f);
      set_applied = std::move(g);
      get_applied = std::move(h);
      return success();
    }

    Options options;
    // recursive: a scan visitor may read the store it is scanning (the lock is already held).
    std::recursive_mutex mutex;
    Database db;  // declared before its statements: they are finalized first
    Statement get, scan_from, scan_range, put, erase, erase_all, set_applied, get_applied;
    std::atomic<LogIndex> applied{0};
  };

  explicit KvStore(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}

  /// Records the applied index; called inside the write transaction.
  result<void> put_applied(LogIndex applied_index) {
    Impl& s = *impl_;
    Reset reset(s.set_applied);
    s.set_applied.bind_u64(1, applied_index);
    if (int rc = s.set_applied.step(); rc != SQLITE_DONE)
      return s.db.failure(rc, "INSERT INTO dengine_meta (kv_applied_index)");
    return success();
  }

  std::unique_ptr<Impl> impl_;
};

static_assert(dengine::KvStore<KvStore>);

}  // namespace dengine::sqlite
