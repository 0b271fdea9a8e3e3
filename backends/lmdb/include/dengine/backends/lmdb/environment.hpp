#pragma once
/// dengine::lmdb::Environment — one LMDB environment per data dir, shared by every Engine and
/// KvStore of this process opened on that dir.
///
/// Why shared: LMDB forbids opening one environment twice in a process (its POSIX locks belong
/// to the process, so closing the second handle would drop the first one's locks). A process-wide
/// registry maps each canonical dir to its open Environment; `acquire()` returns the existing one
/// or opens it, and the last owner closes it. The first opener's map-size and reader options
/// apply; the persistence mode is per handle (each write transaction sets MDB_NOSYNC to match).
///
/// Transactions are short and scoped to one call. Map growth (mdb_env_set_mapsize) requires that
/// no transaction of the process is active, so every transaction passes through a TxnGate that
/// a resize closes and drains first. Callers see a transaction as a detail::Txn (txn.hpp): reads
/// check every record's checksum, writes keep the tallies.
///
/// Opening a data dir, before LMDB maps anything:
/// 1. data.mdb missing or empty: a new store (or, without create_if_missing, an error).
/// 2. Its meta pages are checked (data_file.hpp), then that every page past the end of the file
///    is free (page_walk.hpp): a truncated or structurally impossible file is refused here
///    instead of faulting (SIGBUS) later.
/// 3. With verify_at_open, the whole verification walk runs in a child process (verify.hpp).
/// 4. mdb_env_open; the three databases are opened (created with "format" and "tally" in the
///    store's first transaction, never afterwards: a missing one is damage); the format record
///    is checked, and each database's LMDB entry count against its tally (a record deleted
///    behind the store's back shows here even without the walk).
///
/// What this cannot protect against: damage that appears while the environment is open (another
/// process writing into data.mdb, the file truncated under the map, a disk returning different
/// bytes later). Record checksums still catch a damaged record when it is read, but LMDB reads
/// its own pages through the map without checks, so structural damage can then fault, and a
/// damaged branch key can hide a record from a point read. Without verify_at_open the same holds
/// for damage already in the file at open. Nor is a consistent older state damage: a data.mdb
/// restored from an older copy, or a transaction id flipped to the one value that makes LMDB pick
/// the older meta page, reads back as that older state (the data dir's marker catches a store
/// behind what it acknowledged).

#include <fcntl.h>
#include <lmdb.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

#include "dengine/backends/lmdb/codec.hpp"
#include "dengine/backends/lmdb/data_file.hpp"
#include "dengine/backends/lmdb/error.hpp"
#include "dengine/backends/lmdb/options.hpp"
#include "dengine/backends/lmdb/page_walk.hpp"
#include "dengine/backends/lmdb/record.hpp"
#include "dengine/backends/lmdb/report.hpp"
#include "dengine/backends/lmdb/txn.hpp"
#include "dengine/backends/lmdb/verify.hpp"
#include "dengine/core/config.hpp"
#include "dengine/core/error.hpp"
#include "dengine/storage/sync_dir.hpp"

namespace dengine::lmdb {

namespace detail {

/// Admits transactions, and lets a map resize run when none is active.
/// Invariant: `active_` counts the transactions between enter() and leave(); a resize runs only
/// with active_ == 0 and the mutex held, so no transaction can start during it.
class TxnGate {
 public:
  /// Called before a transaction starts. A thread that already holds a transaction does not
  /// wait for a pending resize (the resize waits for that transaction anyway; waiting here would
  /// deadlock a scan visitor that reads the store).
  void enter() {
    std::unique_lock lock(mutex_);
    if (depth_ == 0) cv_.wait(lock, [&] { return !resizing_; });
    ++active_;
    ++depth_;
  }
  /// Called after the transaction ended (committed or aborted).
  void leave() {
    {
      std::lock_guard lock(mutex_);
      --active_;
      --depth_;
    }
    cv_.notify_all();
  }
  /// Runs fn with no transaction active. Returns false (without running fn) when the calling
  /// thread itself holds a transaction: waiting for it would never end.
  template <class Fn>
  bool exclusive(Fn&& fn) {
    if (depth_ != 0) return false;
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return !resizing_; });
    resizing_ = true;
    cv_.wait(lock, [&] { return active_ == 0; });
    fn();
    resizing_ = false;
    lock.unlock();
    cv_.notify_all();
    return true;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  int active_ = 0;
  bool resizing_ = false;
  // Transactions the current thread holds, across every environment (a conservative count: a
  // thread inside any LMDB transaction of ours neither waits for nor performs a resize).
  static inline thread_local int depth_ = 0;
};

/// An LMDB cursor closed on scope exit (before its transaction ends, as LMDB requires).
class Cursor {
 public:
  Cursor() = default;
  Cursor(const Cursor&) = delete;
  Cursor& operator=(const Cursor&) = delete;
  ~Cursor() {
    if (cursor_ != nullptr) mdb_cursor_close(cursor_);
  }
  /// Opens the cursor on `dbi`; a raw LMDB failure naming `what` on error.
  result<void> open(MDB_txn* txn, MDB_dbi dbi, std::string_view what) {
    if (int rc = mdb_cursor_open(txn, dbi, &cursor_); rc != 0) {
      cursor_ = nullptr;
      return lmdb_failure(rc, "mdb_cursor_open(" + std::string(what) + ")");
    }
    return success();
  }
  /// mdb_cursor_get; returns the LMDB code (0, MDB_NOTFOUND or a failure).
  int get(MDB_val& key, MDB_val& value, MDB_cursor_op op) noexcept {
    return mdb_cursor_get(cursor_, &key, &value, op);
  }
  /// mdb_cursor_del of the current item; returns the LMDB code.
  int del() noexcept { return mdb_cursor_del(cursor_, 0); }

 private:
  MDB_cursor* cursor_ = nullptr;
};

}  // namespace detail

/// One open LMDB environment (a data dir holding data.mdb and lock.mdb) with the backend's three
/// named databases: "log", "meta" and "kv" (layouts in codec.hpp).
class Environment {
 public:
  /// The Environment open on `dir` in this process, or a newly opened one (creating `dir` and
  /// the databases if needed). Clears stale reader slots left by dead processes.
  static result<std::shared_ptr<Environment>> acquire(const std::filesystem::path& dir,
                                                      const Options& options) {
    if (options.initial_map_size == 0 || options.max_map_size < options.initial_map_size)
      return error(errc::invalid_argument,
                   "lmdb: options for " + dir.string() +
                       ": initial_map_size must be positive and at most max_map_size");
    if (options.max_readers == 0)
      return error(errc::invalid_argument,
                   "lmdb: options for " + dir.string() + ": max_readers must be positive");
    std::error_code ec;
    if (!options.create_if_missing && !std::filesystem::exists(dir / "data.mdb", ec))
      return missing_store(dir / "data.mdb");
    const bool created = std::filesystem::create_directories(dir, ec);
    if (ec)
      return error(errc::io_error,
                   "lmdb: cannot create data dir " + dir.string() + ": " + ec.message());
    if (!std::filesystem::is_directory(dir, ec))
      return error(errc::io_error, "lmdb: data dir " + dir.string() + " is not a directory");
    auto canonical = std::filesystem::canonical(dir, ec);
    if (ec)
      return error(errc::io_error,
                   "lmdb: cannot resolve data dir " + dir.string() + ": " + ec.message());

    if (created) {
      DENGINE_TRYV(sync_dir(canonical.parent_path()));
    }

    Registry& registry = Registry::instance();
    std::unique_lock lock(registry.mutex);
    const std::string key = canonical.string();
    for (;;) {
      auto it = registry.open.find(key);
      if (it == registry.open.end()) break;
      if (auto existing = it->second.lock()) return existing;
      // The last owner is closing it right now; opening a second handle before mdb_env_close
      // returns would be the double open LMDB forbids.
      registry.closed.wait(lock);
    }
    std::shared_ptr<Environment> env(new Environment(std::move(canonical), options));
    DENGINE_TRYV(env->open());
    registry.open[key] = env;
    env->registered_ = true;
    return env;
  }

  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;

  ~Environment() {
    if (env_ == nullptr) return;
    if (!registered_) {  // failed during acquire(), which holds the registry lock
      mdb_env_close(env_);
      return;
    }
    Registry& registry = Registry::instance();
    {
      std::lock_guard lock(registry.mutex);
      mdb_env_close(env_);
      registry.open.erase(dir_.string());
    }
    registry.closed.notify_all();
  }

  /// The data dir (canonical).
  [[nodiscard]] const std::filesystem::path& dir() const noexcept { return dir_; }
  /// The data file (full path), for error messages.
  [[nodiscard]] const std::filesystem::path& data_file() const noexcept { return layout_.file; }
  /// The data file and the handles of the named databases.
  [[nodiscard]] const detail::Layout& layout() const noexcept { return layout_; }
  /// Largest key LMDB accepts (511 bytes with the default build).
  [[nodiscard]] std::size_t max_key_size() const noexcept {
    return static_cast<std::size_t>(mdb_env_get_maxkeysize(env_));
  }
  /// Reader slots of dead processes that mdb_reader_check cleared when this dir was opened.
  [[nodiscard]] std::size_t stale_readers_cleared() const noexcept { return stale_readers_; }
  /// Times the map was grown after a write found it full.
  [[nodiscard]] std::size_t map_growths() const {
    std::lock_guard lock(write_mutex_);
    return growths_;
  }
  /// Current map size in bytes.
  [[nodiscard]] std::size_t map_size() const {
    std::lock_guard lock(write_mutex_);
    MDB_envinfo info{};
    mdb_env_info(env_, &info);
    return info.me_mapsize;
  }

  /// Runs `fn(txn)` (txn a detail::Txn&, fn returning result<T>) in a read-only transaction: a
  /// consistent snapshot of the committed state. Raw LMDB failures from fn are translated to
  /// dengine errors.
  template <class Fn>
  auto read(Fn&& fn) const -> std::invoke_result_t<Fn&, detail::Txn&> {
    MDB_txn* raw = nullptr;
    DENGINE_TRYV(begin_read(raw));
    struct Guard {
      const Environment* env;
      MDB_txn* txn;
      ~Guard() {
        mdb_txn_abort(txn);
        env->gate_.leave();
      }
    } guard{this, raw};
    detail::Txn txn(layout_, raw);  // closes its cursors before the guard aborts
    auto r = fn(txn);
    if (!r) return to_dengine(std::move(r).error(), dir_);
    return r;
  }

  /// Runs `fn(txn)` (txn a detail::Txn&, fn returning result<void>) in one write transaction,
  /// writes the tallies and commits, durably for DiskFirst (fsync on commit) or without fsync for
  /// MemFirst. When the map is full the transaction is aborted, the map doubled and fn run again
  /// from scratch, so fn must only write through txn (side effects elsewhere belong after
  /// write() returns).
  template <class Fn>
  result<void> write(PersistenceMode mode, Fn&& fn) {
    std::lock_guard lock(write_mutex_);
    const int nosync = mode == PersistenceMode::mem_first ? 1 : 0;
    // The flag is environment-wide but only read during commit, which write_mutex_ serializes.
    if (int rc = mdb_env_set_flags(env_, MDB_NOSYNC | MDB_NOMETASYNC, nosync); rc != 0)
      return make_error(rc, "mdb_env_set_flags", dir_);
    for (;;) {
      gate_.enter();
      MDB_txn* txn = nullptr;
      result<void> r = success();
      if (int rc = mdb_txn_begin(env_, nullptr, 0, &txn); rc != 0) {
        r = lmdb_failure(rc, "mdb_txn_begin");
      } else {
        {
          detail::Txn records(layout_, txn);  // closes its cursors before the commit or abort
          r = fn(records);
          if (r) r = records.finish();
        }
        if (r) {
          // On failure mdb_txn_commit frees the transaction too.
          if (int commit_rc = mdb_txn_commit(txn); commit_rc != 0)
            r = lmdb_failure(commit_rc, "mdb_txn_commit");
        } else {
          mdb_txn_abort(txn);
        }
      }
      gate_.leave();
      if (r) return r;
      const error& e = r.error();
      if (e.code == std::error_code(MDB_MAP_FULL, lmdb_category())) {
        DENGINE_TRYV(grow(e.detail));
        continue;
      }
      if (e.code == std::error_code(MDB_MAP_RESIZED, lmdb_category())) {
        DENGINE_TRYV(adopt_map_size());
        continue;
      }
      return to_dengine(std::move(r).error(), dir_);
    }
  }

  /// Flushes every commit to disk (mdb_env_sync with force), including MemFirst ones.
  result<void> sync() {
    std::lock_guard lock(write_mutex_);
    if (int rc = mdb_env_sync(env_, 1); rc != 0) return make_error(rc, "mdb_env_sync", dir_);
    return success();
  }

 private:
  /// fsyncs a directory, so that files created in it (or it, in its parent) survive power loss.
  static result<void> sync_dir(const std::filesystem::path& dir) {
    return storage::sync_dir(dir, "lmdb");
  }

  /// Every Environment open in this process, by canonical dir.
  struct Registry {
    std::mutex mutex;
    std::condition_variable closed;
    std::map<std::string, std::weak_ptr<Environment>> open;
    static Registry& instance() {
      static Registry registry;
      return registry;
    }
  };

  Environment(std::filesystem::path dir, const Options& options)
      : dir_(std::move(dir)), max_map_size_(options.max_map_size), options_(options) {
    layout_.file = dir_ / "data.mdb";
  }

  /// The error for a store that should exist but does not (create_if_missing off): a store
  /// its caller knows existed is lost data, as for the SQLite backend.
  static error missing_store(const std::filesystem::path& file) {
    return error(errc::storage_corrupt, "lmdb: " + file.string() +
                                            " does not exist, and create_if_missing is off (the "
                                            "store was expected here: it was deleted or moved?)");
  }

  /// Steps 1-3 of the file comment: what LMDB would trust blindly, checked before it maps the
  /// file. Returns whether the dir holds no store yet.
  result<bool> check_before_open() const {
    const std::filesystem::path& file = layout_.file;
    std::error_code ec;
    const auto size = std::filesystem::file_size(file, ec);
    if (ec || size == 0) {
      if (ec && ec != std::errc::no_such_file_or_directory)
        return error(errc::io_error, "lmdb: cannot read " + file.string() + ": " + ec.message());
      if (!options_.create_if_missing) {
        if (ec) return missing_store(file);
        return error(errc::storage_corrupt, "lmdb: " + file.string() +
                                                " is empty, and create_if_missing is off (the "
                                                "store was expected here)");
      }
      return true;
    }
    DENGINE_TRY(f, detail::file::check_meta_pages(file));
    if (f.uncommitted()) {
      if (!options_.create_if_missing)
        return error(errc::storage_corrupt, "lmdb: " + file.string() +
                                                " holds no store (nothing was ever committed), "
                                                "and create_if_missing is off");
      return true;
    }
    {
      VerifyReport tail;
      tail.file = file;
      detail::file::Fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
      if (fd.get() < 0)
        return error(errc::io_error,
                     "lmdb: cannot open " + file.string() + ": " + std::strerror(errno));
      detail::file::PageWalk(fd.get(), f, tail).check_free_tail();
      if (!tail.ok()) return tail.to_error();
    }
    if (options_.verify_at_open) {
      const VerifyReport report = verify_in_child(dir_);
      if (!report.ok()) return report.to_error();
    }
    return false;
  }

  result<void> open() {
    DENGINE_TRY(fresh, check_before_open());
    if (int rc = mdb_env_create(&env_); rc != 0) {
      env_ = nullptr;
      return make_error(rc, "mdb_env_create", dir_);
    }
    if (int rc = mdb_env_set_maxdbs(env_, 3); rc != 0)
      return make_error(rc, "mdb_env_set_maxdbs", dir_);
    if (int rc = mdb_env_set_mapsize(env_, options_.initial_map_size); rc != 0)
      return make_error(rc, "mdb_env_set_mapsize", dir_);
    if (int rc = mdb_env_set_maxreaders(env_, options_.max_readers); rc != 0)
      return make_error(rc, "mdb_env_set_maxreaders", dir_);
    // MDB_NOTLS: reader slots belong to transactions, not threads, so any thread may read.
    if (int rc = mdb_env_open(env_, dir_.c_str(), MDB_NOTLS, 0644); rc != 0)
      return make_error(rc, "mdb_env_open", dir_);
    int dead = 0;
    if (int rc = mdb_reader_check(env_, &dead); rc != 0)
      return make_error(rc, "mdb_reader_check", dir_);
    stale_readers_ = static_cast<std::size_t>(dead);
    DENGINE_TRYV(sync_dir(dir_));  // data.mdb and lock.mdb may be new
    return write(PersistenceMode::disk_first, [&](detail::Txn& txn) -> result<void> {
      int missing = 0;
      for (detail::Db db : detail::all_dbs) {
        const std::string name(detail::db_name(db));
        MDB_dbi& dbi = db == detail::Db::log  ? layout_.log
                       : db == detail::Db::kv ? layout_.kv
                                              : layout_.meta;
        const int rc = mdb_dbi_open(txn.raw(), name.c_str(), fresh ? MDB_CREATE : 0, &dbi);
        if (rc == MDB_NOTFOUND) {
          ++missing;
          continue;
        }
        if (rc != 0) return lmdb_failure(rc, "mdb_dbi_open(" + name + ")");
      }
      if (missing > 0)
        return error(errc::storage_corrupt, "lmdb: " + layout_.file.string() + ": " +
                                                std::to_string(missing) +
                                                " of its databases log, meta and kv are missing "
                                                "(every store is created with all three)");
      if (fresh) {
        // The store's first transaction: nothing else may be in it yet.
        MDB_stat st{};
        if (int rc = mdb_stat(txn.raw(), layout_.meta, &st); rc != 0)
          return lmdb_failure(rc, "mdb_stat(meta)");
        if (st.ms_entries == 0) {
          txn.start_tallies();
          std::string version;
          bytes::put_be32(version, detail::format_version);
          return txn.put(detail::Db::meta, detail::format_key, {version});
        }
      }
      DENGINE_TRYV(detail::check_format_record(layout_, txn.raw()));
      return check_counts(txn);
    });
  }

  /// Each database's LMDB entry count must equal its tally's (the meta database also holds the
  /// tally record itself).
  result<void> check_counts(detail::Txn& txn) const {
    DENGINE_TRY(tallies, txn.tallies());
    for (detail::Db db : detail::all_dbs) {
      MDB_stat st{};
      if (int rc = mdb_stat(txn.raw(), layout_.dbi(db), &st); rc != 0)
        return lmdb_failure(rc, "mdb_stat(" + std::string(detail::db_name(db)) + ")");
      const std::uint64_t expected = tallies.of(db).count + (db == detail::Db::meta ? 1 : 0);
      if (st.ms_entries != expected)
        return error(
            errc::storage_corrupt,
            "lmdb: " + layout_.file.string() + ": database " + std::string(detail::db_name(db)) +
                " holds " + std::to_string(st.ms_entries) + " records, but its tally says " +
                std::to_string(expected) + ": records were lost or added behind the store's back");
    }
    return success();
  }

  result<void> begin_read(MDB_txn*& txn) const {
    bool readers_checked = false;
    for (;;) {
      gate_.enter();
      const int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
      if (rc == 0) return success();
      gate_.leave();
      if (rc == MDB_MAP_RESIZED) {
        DENGINE_TRYV(adopt_map_size());
        continue;
      }
      if (rc == MDB_READERS_FULL && !readers_checked) {
        // Slots may be held by dead processes; free them and try once more.
        readers_checked = true;
        int dead = 0;
        mdb_reader_check(env_, &dead);
        continue;
      }
      return make_error(rc, "mdb_txn_begin(read-only)", dir_);
    }
  }

  /// Doubles the map (up to max_map_size). Called with write_mutex_ held and no transaction of
  /// this thread's write open. `call` names the LMDB call that found the map full.
  result<void> grow(const std::string& call) {
    MDB_envinfo info{};
    mdb_env_info(env_, &info);
    const std::size_t size = info.me_mapsize;
    if (size >= max_map_size_)
      return error(errc::no_space, "lmdb: " + call + " in " + dir_.string() +
                                       ": the map is full at " + std::to_string(size) +
                                       " bytes, the configured max_map_size");
    const std::size_t target = size > max_map_size_ / 2 ? max_map_size_ : size * 2;
    int rc = 0;
    const bool ran = gate_.exclusive([&] { rc = mdb_env_set_mapsize(env_, target); });
    if (!ran)
      return error(errc::too_busy,
                   "lmdb: " + call + " in " + dir_.string() +
                       ": the map is full and cannot grow while this thread holds a read "
                       "transaction (a write from inside a scan visitor?)");
    if (rc != 0) return make_error(rc, "mdb_env_set_mapsize(" + std::to_string(target) + ")", dir_);
    ++growths_;
    return success();
  }

  /// Adopts a map size another process set (after MDB_MAP_RESIZED).
  result<void> adopt_map_size() const {
    int rc = 0;
    if (!gate_.exclusive([&] { rc = mdb_env_set_mapsize(env_, 0); }))
      return error(errc::too_busy, "lmdb: " + dir_.string() +
                                       ": another process grew the map; cannot adopt the new size "
                                       "while this thread holds a read transaction");
    if (rc != 0) return make_error(rc, "mdb_env_set_mapsize(0)", dir_);
    return success();
  }

  std::filesystem::path dir_;
  std::size_t max_map_size_;
  Options options_;
  MDB_env* env_ = nullptr;
  detail::Layout layout_;
  std::size_t stale_readers_ = 0;
  bool registered_ = false;
  mutable std::mutex write_mutex_;  // serializes write transactions, flag changes and growth
  std::size_t growths_ = 0;         // guarded by write_mutex_
  mutable detail::TxnGate gate_;
};

}  // namespace dengine::lmdb
