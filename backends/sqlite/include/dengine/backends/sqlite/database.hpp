#pragma once
/// dengine::sqlite::Database — one SQLite connection to a data dir's database file, configured
/// for the backend (WAL, synchronous per persistence mode, busy timeout, size bound), with its
/// transaction statements prepared once, and the mapping of SQLite result codes to dengine
/// errors that name the file and the statement.

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "dengine/backends/sqlite/options.hpp"
#include "dengine/backends/sqlite/statement.hpp"
#include "dengine/core/config.hpp"
#include "dengine/core/error.hpp"
#include "dengine/storage/sync_dir.hpp"

namespace dengine::sqlite {

/// Name of the database file inside a data dir (plus its -wal and -shm companions).
inline constexpr std::string_view database_file_name = "dengine.sqlite3";

/// fsyncs a directory, so that files created in it (or it, in its parent) survive power loss.
inline result<void> sync_dir(const std::filesystem::path& dir) {
  return storage::sync_dir(dir, "sqlite");
}

/// The dengine error for SQLite result code `rc` (extended codes allowed) from `what` on `file`.
/// `message` is sqlite3_errmsg() of the connection (or null); `busy_timeout` is quoted in the
/// too_busy text; `sys_errno` (sqlite3_system_errno) tells a full disk behind an I/O error.
inline error make_error(int rc, std::string_view what, const std::filesystem::path& file,
                        const char* message, std::chrono::milliseconds busy_timeout,
                        int sys_errno = 0) {
  const std::string cause =
      std::string(what) + ": " + (message != nullptr ? message : sqlite3_errstr(rc));
  const std::string name = file.string();
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return error(errc::too_busy, "sqlite: " + name +
                                       " is locked by another connection or process (" + cause +
                                       "); gave up after the busy timeout of " +
                                       std::to_string(busy_timeout.count()) + " ms");
    case SQLITE_FULL:
      return error(errc::no_space, "sqlite: " + name + " is full (" + cause +
                                       "): the disk is out of space or the database reached "
                                       "Options::max_db_bytes");
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return error(errc::storage_corrupt,
                   "sqlite: " + name + " is corrupt or not an SQLite database (" + cause + ")");
    case SQLITE_TOOBIG:
      return error(errc::too_large,
                   "sqlite: " + name + ": a value exceeds SQLite's limit (" + cause + ")");
    case SQLITE_IOERR:
      if (sys_errno == ENOSPC)
        return error(errc::no_space,
                     "sqlite: " + name + ": no space left on device (" + cause + ")");
      return error(errc::io_error, "sqlite: " + name + ": " + cause);
    default: return error(errc::io_error, "sqlite: " + name + ": " + cause);
  }
}

/// One configured connection (see the file comment). Movable; closed on destruction. Not
/// internally synchronized: the Engine and KvStore guard each connection with a mutex.
/// It never creates the database file: schema.hpp creates it whole, under a temporary name.
class Database {
 public:
  /// Opens a connection to `file` without configuring it: extended result codes, the busy
  /// timeout, the transaction statements, and no checkpoint when it closes
  /// (SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE), so that a connection that finds the file damaged writes
  /// nothing to it. `flags` are sqlite3_open_v2's (SQLITE_OPEN_CREATE only for a file being created
  /// under a temporary name).
  static result<Database> connect(const std::filesystem::path& file,
                                  std::chrono::milliseconds busy_timeout,
                                  int flags = SQLITE_OPEN_READWRITE) {
    if (busy_timeout.count() < 0 || busy_timeout.count() > INT32_MAX)
      return error(errc::invalid_argument,
                   "sqlite: options for " + file.string() + ": busy_timeout out of range");
    Database db;
    db.file_ = file;
    db.busy_timeout_ = busy_timeout;
    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(file.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
    db.db_.reset(raw);  // owned even on failure (sqlite3_open_v2 may still allocate a handle)
    if (rc != SQLITE_OK) return db.failure(rc, "sqlite3_open_v2");
    sqlite3_extended_result_codes(raw, 1);
    sqlite3_busy_timeout(raw, static_cast<int>(busy_timeout.count()));
    if (int c = sqlite3_db_config(raw, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
        c != SQLITE_OK)
      return db.failure(c, "sqlite3_db_config(SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE)");
    DENGINE_TRY(begin_write, db.prepare("BEGIN IMMEDIATE"));
    DENGINE_TRY(begin_read, db.prepare("BEGIN DEFERRED"));
    DENGINE_TRY(commit, db.prepare("COMMIT"));
    DENGINE_TRY(rollback, db.prepare("ROLLBACK"));
    db.begin_write_ = std::move(begin_write);
    db.begin_read_ = std::move(begin_read);
    db.commit_ = std::move(commit);
    db.rollback_ = std::move(rollback);
    return db;
  }

  /// Opens an existing, already checked dengine database file (schema.hpp checks it first)
  /// and configures the connection for the backend: WAL, synchronous per the mode, the size
  /// bound, b-tree cell checks, the transaction statements. The file is never created here.
  static result<Database> open(const std::filesystem::path& file, const Options& options) {
    DENGINE_TRY(db, connect(file, options.busy_timeout));
    DENGINE_TRYV(db.configure(options));
    return db;
  }

  /// Configures a connection from connect() (see open()).
  result<void> configure(const Options& options) {
    // The file's header says WAL (checked before this runs), so this only confirms it.
    DENGINE_TRY(journal, prepare("PRAGMA journal_mode=WAL"));
    if (int step = journal.step(); step != SQLITE_ROW)
      return failure(step, "PRAGMA journal_mode=WAL");
    const std::string mode(journal.column_blob(0));
    journal.reset();
    if (mode != "wal")
      return error(errc::io_error, "sqlite: " + file_.string() +
                                       ": cannot enable WAL journaling (journal_mode is " + mode +
                                       "); the file system must support shared memory");
    DENGINE_TRYV(exec(options.mode == PersistenceMode::disk_first ? "PRAGMA synchronous=FULL"
                                                                  : "PRAGMA synchronous=NORMAL"));
    // Sanity checks on each b-tree page as it is read: damage fails as SQLITE_CORRUPT early.
    DENGINE_TRYV(exec("PRAGMA cell_size_check=ON"));
    if (options.max_db_bytes != 0) {
      DENGINE_TRY(page_size, query_int("PRAGMA page_size"));
      const std::uint64_t pages =
          std::max<std::uint64_t>(1, options.max_db_bytes / static_cast<std::uint64_t>(page_size));
      DENGINE_TRYV(query_int("PRAGMA max_page_count=" + std::to_string(pages)));
    }
    return success();
  }

  /// Lets the connection checkpoint the WAL into the file when it closes (SQLite's default),
  /// once the file has passed the checks at open: the last connection to close then leaves
  /// one self-contained file.
  void allow_checkpoint_on_close() noexcept {
    sqlite3_db_config(db_.get(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, nullptr);
  }

  /// The database file, for error messages.
  [[nodiscard]] const std::filesystem::path& file() const noexcept { return file_; }
  /// The raw connection.
  [[nodiscard]] sqlite3* handle() const noexcept { return db_.get(); }

  /// The dengine error for `rc` from `what` on this connection (uses its last error message).
  [[nodiscard]] error failure(int rc, std::string_view what) const {
    return make_error(rc, what, file_, db_ ? sqlite3_errmsg(db_.get()) : nullptr, busy_timeout_,
                      db_ ? sqlite3_system_errno(db_.get()) : 0);
  }

  /// Prepares `sql` for reuse (SQLITE_PREPARE_PERSISTENT: it lives as long as the connection).
  result<Statement> prepare(std::string_view sql) const {
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()),
                                      SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) {
      sqlite3_finalize(stmt);
      return failure(rc, "prepare \"" + std::string(sql) + "\"");
    }
    return Statement(stmt);
  }

  /// Runs a statement that returns no rows we need (DDL, pragmas) to completion.
  result<void> exec(std::string_view sql) const {
    DENGINE_TRY(stmt, prepare(sql));
    for (;;) {
      const int rc = stmt.step();
      if (rc == SQLITE_DONE) return success();
      if (rc != SQLITE_ROW) return failure(rc, sql);
    }
  }

  /// Runs a statement returning one integer (a pragma) and returns it.
  result<std::int64_t> query_int(std::string_view sql) const {
    DENGINE_TRY(stmt, prepare(sql));
    const int rc = stmt.step();
    if (rc == SQLITE_ROW) return stmt.column_int64(0);
    if (rc == SQLITE_DONE) return std::int64_t{0};
    return failure(rc, sql);
  }

  /// BEGIN IMMEDIATE: takes the write lock now (waiting up to the busy timeout), so the commit
  /// cannot fail for lock reasons.
  result<void> begin_write() { return run(begin_write_, "BEGIN IMMEDIATE"); }
  /// BEGIN DEFERRED: a read transaction; its snapshot starts at the first read.
  result<void> begin_read() { return run(begin_read_, "BEGIN DEFERRED"); }
  /// COMMIT of the open transaction.
  result<void> commit() { return run(commit_, "COMMIT"); }
  /// ROLLBACK of the open transaction, if any (errors ignored: used on failure paths).
  void rollback() noexcept {
    if (sqlite3_get_autocommit(db_.get()) == 0) {
      rollback_.step();
      rollback_.reset();
    }
  }

  /// Makes every transaction committed so far durable, without a checkpoint: fsyncs the WAL
  /// file (through the connection's own handle, SQLITE_FCNTL_JOURNAL_POINTER). Committed frames
  /// live in the WAL until a complete checkpoint has copied them into the database file and
  /// synced it, so a synced WAL holds every commit. Unlike `wal_checkpoint(FULL)`, readers of
  /// older snapshots cannot block it. Falls back to a full checkpoint when this connection has
  /// no WAL open.
  result<void> sync_wal() {
    sqlite3_file* wal = nullptr;
    if (int rc = sqlite3_file_control(db_.get(), "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal);
        rc != SQLITE_OK)
      return failure(rc, "sqlite3_file_control(SQLITE_FCNTL_JOURNAL_POINTER)");
    if (wal == nullptr || wal->pMethods == nullptr) {
      DENGINE_TRY(busy, query_int("PRAGMA wal_checkpoint(FULL)"));
      if (busy != 0)
        return error(errc::too_busy, "sqlite: " + file_.string() +
                                         ": WAL checkpoint blocked by another connection past the "
                                         "busy timeout of " +
                                         std::to_string(busy_timeout_.count()) + " ms");
    } else if (int rc = wal->pMethods->xSync(wal, SQLITE_SYNC_NORMAL); rc != SQLITE_OK) {
      return failure(rc, "fsync of " + file_.string() + "-wal");
    }
    return success();
  }

 private:
  struct Close {
    // close_v2: safe even if a statement outlived the connection object (it becomes a zombie).
    void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
  };

  Database() = default;

  result<void> run(Statement& stmt, std::string_view what) {
    Reset reset(stmt);
    const int rc = stmt.step();
    if (rc != SQLITE_DONE) return failure(rc, what);
    return success();
  }

  std::unique_ptr<sqlite3, Close> db_;
  std::filesystem::path file_;
  std::chrono::milliseconds busy_timeout_{0};
  Statement begin_write_;
  Statement begin_read_;
  Statement commit_;
  Statement rollback_;
};

/// What a Transaction is for.
enum class TransactionKind {
  read,   ///< BEGIN DEFERRED: several SELECTs see one snapshot; nothing to commit
  write,  ///< BEGIN IMMEDIATE: takes the write lock at begin()
};

/// A transaction on `db`, begun by begin() and rolled back on scope exit unless committed (a
/// read transaction is always ended that way).
template <TransactionKind Kind>
class Transaction {
 public:
  explicit Transaction(Database& db) noexcept : db_(db) {}
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction() {
    if (open_) db_.rollback();
  }
  /// Starts the transaction.
  result<void> begin() {
    DENGINE_TRYV(Kind == TransactionKind::write ? db_.begin_write() : db_.begin_read());
    open_ = true;
    return success();
  }
  /// Commits a write transaction (on failure the destructor rolls back).
  result<void> commit() requires(Kind == TransactionKind::write) {
    DENGINE_TRYV(db_.commit());
    open_ = false;
    return success();
  }

 private:
  Database& db_;
  bool open_ = false;
};

/// A write transaction (BEGIN IMMEDIATE) rolled back on scope exit unless committed.
using WriteTransaction = Transaction<TransactionKind::write>;
/// A read transaction (BEGIN DEFERRED), ended on scope exit: several SELECTs see one snapshot.
using ReadTransaction = Transaction<TransactionKind::read>;

}  // namespace dengine::sqlite
