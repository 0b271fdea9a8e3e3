#pragma once
/// dengine::lmdb::Engine — a StorageEngine (Raft log, hard state, compaction point) in LMDB.
///
/// Layout (codec.hpp): the "log" database maps 8-byte big-endian indexes to data | term | type,
/// so LMDB's byte order is index order; the "meta" database holds the hard state and the
/// compaction point (snapshot meta). Every record carries a CRC32C over its key and value,
/// checked on every read (record.hpp): a damaged entry or meta record is storage_corrupt naming
/// data.mdb and the index or record, never a wrong value. Invariant, checked at open: the log's
/// keys are exactly [snapshot index + 1, last index] with no gap, and the log's tally count is
/// their number (so the last index is the snapshot index plus the tally's count).
///
/// Durability: every call that changes state is one LMDB write transaction.
/// - DiskFirst: each commit is fsynced, so append() is already durable; sync() has nothing left
///   to do.
/// - MemFirst: appends commit without fsync (MDB_NOSYNC); sync() runs mdb_env_sync(force).
///   compact(), reset() and save_hard_state() are durable on return in both modes (MemFirst
///   forces a sync after them: they are rare, and the vote must be durable before it is sent).
/// A process crash never loses a committed transaction (the page cache survives it); only power
/// loss can lose MemFirst commits not yet synced. Damage to the file is handled as Environment
/// describes (checks before the file is mapped, the verification walk, record checksums).
///
/// Threads: calls that change state are serialized by a mutex; entries(), term() and load() run
/// concurrently with them, each in one read transaction (a consistent committed snapshot).

#include <lmdb.h>

#include <atomic>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "dengine/backends/lmdb/codec.hpp"
#include "dengine/backends/lmdb/environment.hpp"
#include "dengine/backends/lmdb/error.hpp"
#include "dengine/backends/lmdb/options.hpp"
#include "dengine/backends/lmdb/record.hpp"
#include "dengine/backends/lmdb/txn.hpp"
#include "dengine/core/config.hpp"
#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/storage/append_check.hpp"
#include "dengine/storage/concepts.hpp"

namespace dengine::lmdb {

/// The Raft log and hard state of one data dir, in LMDB (see the file comment). Move-only (its
/// state is owned by unique_ptr: moves are noexcept, copies do not compile); destroying it
/// closes the engine, and the environment if no KvStore shares it.
class Engine {
 public:
  /// Opens (creating if needed) the engine in `dir`, sharing the dir's LMDB environment with
  /// any KvStore of this process opened there. Fails with io_error when the dir cannot be
  /// created or opened, storage_corrupt for a damaged data.mdb or log, incompatible_version for
  /// a data dir of another format.
  static result<Engine> open(const std::filesystem::path& dir, Options options = {}) {
    DENGINE_TRY(env, Environment::acquire(dir, options));
    Engine engine(std::move(env), options);
    DENGINE_TRY(bounds, engine.check_log());
    engine.state_->first.store(bounds.first);
    engine.state_->last.store(bounds.second);
    return engine;
  }

  // ---- StorageEngine -------------------------------------------------------------------------

  /// StorageEngine::append as concepts.hpp states it (storage::check_append refuses a malformed
  /// batch before anything changes), in one write transaction that first drops the conflicting
  /// suffix: durable on return with DiskFirst; with MemFirst after sync().
  result<void> append(std::span<const Entry> batch) {
    std::lock_guard lock(state_->write_mutex);
    const LogIndex first = state_->first.load();
    const LogIndex last = state_->last.load();
    DENGINE_TRYV(storage::check_append(batch, first, last, [&] { return where(); }));
    const LogIndex from = batch.front().index;
    DENGINE_TRYV(env_->write(options_.mode, [&](detail::Txn& txn) -> result<void> {
      // Drop the conflicting suffix first (each entry checked: its checksum leaves the tally);
      // then every key is below `from` and the batch can use MDB_APPEND (no search).
      for (LogIndex i = from; i <= last; ++i) {
        const detail::IndexKey key(i);
        DENGINE_TRY(found, txn.erase(detail::Db::log, key.view()));
        if (!found) return missing_entry(i);
      }
      for (const Entry& e : batch) {
        const detail::IndexKey key(e.index);
        const detail::EntryTail tail(e);
        DENGINE_TRYV(txn.append(detail::Db::log, key.view(), {e.data, tail.view()}));
      }
      return success();
    }));
    state_->last.store(batch.back().index);
    return success();
  }

  /// Makes every append durable: mdb_env_sync(force) with MemFirst; nothing to do with
  /// DiskFirst (each commit was fsynced).
  result<void> sync() {
    if (options_.mode == PersistenceMode::disk_first) return success();
    return env_->sync();
  }

  /// Entries in [lo, hi): at least one when lo < hi, then as many as fit in max_bytes (measured
  /// with entry_size()). lo > hi → invalid_argument; lo < first_index() → compacted;
  /// hi > last_index() + 1 → unavailable.
  [[nodiscard]] result<std::vector<Entry>> entries(LogIndex lo, LogIndex hi,
                                                   std::size_t max_bytes) const {
    if (lo > hi)
      return error(errc::invalid_argument, where() + ": entries range [" + std::to_string(lo) +
                                               ", " + std::to_string(hi) + ") has lo > hi");
    return env_->read([&](detail::Txn& txn) -> result<std::vector<Entry>> {
      DENGINE_TRY(view, read_view(txn));
      if (lo <= view.snapshot_index)
        return error(errc::compacted, where() + ": entries from index " + std::to_string(lo) +
                                          " below first index " +
                                          std::to_string(view.snapshot_index + 1));
      if (hi > view.last + 1)
        return error(errc::unavailable, where() + ": entries up to index " +
                                            std::to_string(hi - 1) + " past last index " +
                                            std::to_string(view.last));
      std::vector<Entry> out;
      if (lo == hi) return out;
      detail::Cursor cursor;
      DENGINE_TRYV(cursor.open(txn.raw(), env_->layout().log, "log"));
      detail::IndexKey start(lo);
      MDB_val k = start.val();
      MDB_val v{};
      std::size_t total = 0;
      int rc = cursor.get(k, v, MDB_SET_KEY);
      for (LogIndex i = lo; i < hi; ++i) {
        if (rc == MDB_NOTFOUND) return missing_entry(i);
        if (rc != 0) return lmdb_failure(rc, "mdb_cursor_get(log " + std::to_string(i) + ")");
        DENGINE_TRY(payload, txn.check(detail::Db::log, k, v));
        if (detail::decode_index_key(k) != i) return missing_entry(i);
        Entry e;
        if (!detail::decode_entry(i, payload, e)) return malformed_entry(i, payload.size());
        const std::size_t size = entry_size(e);
        // The first entry is always returned, so a caller bounded by bytes still makes progress.
        if (!out.empty() && total + size > max_bytes) break;
        total += size;
        out.push_back(std::move(e));
        if (i + 1 < hi) rc = cursor.get(k, v, MDB_NEXT);
      }
      return out;
    });
  }

  /// Term of the entry at i, for i in [snapshot index, last_index()]; the snapshot index answers
  /// with the snapshot's term. Below → compacted; above → unavailable.
  [[nodiscard]] result<Term> term(LogIndex i) const {
    return env_->read([&](detail::Txn& txn) { return term_in(txn, i); });
  }

  /// Index of the first entry in the log (snapshot index + 1).
  [[nodiscard]] LogIndex first_index() const { return state_->first.load(); }
  /// Index of the last entry in the log (the snapshot index when the log is empty).
  [[nodiscard]] LogIndex last_index() const { return state_->last.load(); }

  /// Drops entries up to meta.index and records meta as the compaction point, atomically and
  /// durably. meta.index < snapshot index → compacted; meta.index > last_index() → unavailable;
  /// meta.term different from term(meta.index) → invalid_argument. Nothing changes on failure.
  result<void> compact(const SnapshotMeta& meta) {
    std::lock_guard lock(state_->write_mutex);
    DENGINE_TRYV(env_->write(options_.mode, [&](detail::Txn& txn) -> result<void> {
      auto t = term_in(txn, meta.index);
      if (!t) {
        auto e = std::move(t).error();
        e.detail += " (compact to index " + std::to_string(meta.index) + ")";
        return e;
      }
      if (t.value() != meta.term)
        return error(errc::invalid_argument,
                     where() + ": compact to index " + std::to_string(meta.index) + " with term " +
                         std::to_string(meta.term) + ", but the entry there has term " +
                         std::to_string(t.value()));
      // The log holds exactly [first, last] (the open-time invariant, kept by every write).
      for (LogIndex i = state_->first.load(); i <= meta.index; ++i) {
        const detail::IndexKey key(i);
        DENGINE_TRY(found, txn.erase(detail::Db::log, key.view()));
        if (!found) return missing_entry(i);
      }
      return put_snapshot(txn, meta);
    }));
    state_->first.store(meta.index + 1);
    return make_durable();
  }

  /// Discards the whole log and restarts it after meta (an installed snapshot): afterwards
  /// first_index() == meta.index + 1 and last_index() == meta.index. Durable on return.
  result<void> reset(const SnapshotMeta& meta) {
    std::lock_guard lock(state_->write_mutex);
    DENGINE_TRYV(env_->write(options_.mode, [&](detail::Txn& txn) -> result<void> {
      DENGINE_TRYV(txn.drop(detail::Db::log));
      return put_snapshot(txn, meta);
    }));
    state_->first.store(meta.index + 1);
    state_->last.store(meta.index);
    return make_durable();
  }

  /// Records the hard state: atomic (one LMDB record) and durable on return in both modes.
  result<void> save_hard_state(const HardState& hard_state) {
    std::lock_guard lock(state_->write_mutex);
    const std::string value = detail::encode_hard_state(hard_state);
    DENGINE_TRYV(env_->write(options_.mode, [&](detail::Txn& txn) -> result<void> {
      return txn.put(detail::Db::meta, detail::hard_state_key, {value});
    }));
    return make_durable();
  }

  /// The hard state and compaction point as committed (zero values in a fresh dir).
  [[nodiscard]] result<RecoveredState> load() const {
    return env_->read([&](detail::Txn& txn) -> result<RecoveredState> {
      RecoveredState out;
      DENGINE_TRY(hs_payload, txn.get(detail::Db::meta, detail::hard_state_key));
      if (hs_payload) {
        auto hs = detail::decode_hard_state(*hs_payload);
        if (!hs) return corrupt_record(detail::hard_state_key, hs_payload->size());
        out.hard_state = *hs;
      }
      DENGINE_TRY(snap_payload, txn.get(detail::Db::meta, detail::snapshot_key));
      if (snap_payload) {
        auto meta = detail::decode_snapshot_meta(*snap_payload);
        if (!meta) return corrupt_record(detail::snapshot_key, snap_payload->size());
        out.snapshot = std::move(*meta);
      }
      return out;
    });
  }

  // ---- Introspection -------------------------------------------------------------------------

  /// The persistence mode this engine was opened with.
  [[nodiscard]] PersistenceMode mode() const noexcept { return options_.mode; }
  /// The (shared) LMDB environment: its dir, map size, growth count and stale readers cleared.
  [[nodiscard]] const Environment& environment() const noexcept { return *env_; }

 private:
  /// What a reader needs to check bounds: the compaction point and the last index.
  struct View {
    LogIndex snapshot_index = 0;
    Term snapshot_term = 0;
    LogIndex last = 0;
  };

  /// Write-side state, behind a pointer so that Engine stays movable.
  struct State {
    std::mutex write_mutex;          // serializes the calls that change the log
    std::atomic<LogIndex> first{1};  // mirrors the committed log, updated after each commit
    std::atomic<LogIndex> last{0};
  };

  Engine(std::shared_ptr<Environment> env, Options options)
      : env_(std::move(env)), options_(options), state_(std::make_unique<State>()) {}

  [[nodiscard]] std::string where() const { return "lmdb engine " + env_->dir().string(); }

  /// The bounds as of txn's snapshot: the compaction point and, from the log's tally, the last
  /// index (reading two small meta records instead of the last entry, whose checksum would
  /// cover all its data).
  result<View> read_view(detail::Txn& txn) const {
    View view;
    DENGINE_TRY(payload, txn.get(detail::Db::meta, detail::snapshot_key));
    if (payload) {
      auto point = detail::decode_snapshot_point(*payload);
      if (!point) return corrupt_record(detail::snapshot_key, payload->size());
      view.snapshot_index = point->first;
      view.snapshot_term = point->second;
    }
    DENGINE_TRY(tallies, txn.tallies());
    view.last = view.snapshot_index + tallies.log.count;
    return view;
  }

  result<Term> term_in(detail::Txn& txn, LogIndex i) const {
    DENGINE_TRY(view, read_view(txn));
    if (i < view.snapshot_index)
      return error(errc::compacted, where() + ": term at index " + std::to_string(i) +
                                        " below the snapshot index " +
                                        std::to_string(view.snapshot_index));
    if (i > view.last)
      return error(errc::unavailable, where() + ": term at index " + std::to_string(i) +
                                          " past last index " + std::to_string(view.last));
    if (i == view.snapshot_index) return view.snapshot_term;
    const detail::IndexKey key(i);
    DENGINE_TRY(payload, txn.get(detail::Db::log, key.view()));
    if (!payload) return missing_entry(i);
    auto t = detail::decode_entry_term(*payload);
    if (!t) return malformed_entry(i, payload->size());
    return *t;
  }

  /// Checks the log invariant (keys exactly [snapshot index + 1, last], where last follows
  /// from the tally) and the meta records; returns (first, last). The environment checked at
  /// open that the log holds as many records as its tally counts; with the lowest and highest
  /// keys where they belong, ordered unique keys leave no room for a gap.
  result<std::pair<LogIndex, LogIndex>> check_log() const {
    DENGINE_TRYV(load());  // checks and decodes the hard state and snapshot meta
    return env_->read([&](detail::Txn& txn) -> result<std::pair<LogIndex, LogIndex>> {
      DENGINE_TRY(view, read_view(txn));
      const LogIndex first = view.snapshot_index + 1;
      detail::Cursor cursor;
      DENGINE_TRYV(cursor.open(txn.raw(), env_->layout().log, "log"));
      MDB_val k{};
      MDB_val v{};
      int rc = cursor.get(k, v, MDB_FIRST);
      if (view.last == view.snapshot_index) {
        if (rc == MDB_NOTFOUND) return std::pair{first, view.last};
        if (rc != 0) return lmdb_failure(rc, "mdb_cursor_get(log, first)");
        return error(errc::storage_corrupt, "lmdb: " + env_->data_file().string() +
                                                ": the log's tally counts no entries, but it "
                                                "holds some");
      }
      for (const auto& [op, want] : {std::pair{MDB_FIRST, first}, std::pair{MDB_LAST, view.last}}) {
        if (rc = cursor.get(k, v, op); rc != 0)
          return rc == MDB_NOTFOUND ? missing_entry(want) : lmdb_failure(rc, "mdb_cursor_get(log)");
        auto index = detail::decode_index_key(k);
        if (!index) return bad_key(k.mv_size);
        if (*index != want)
          return error(errc::storage_corrupt,
                       "lmdb: " + env_->data_file().string() + ": the log " +
                           (op == MDB_FIRST ? "starts" : "ends") + " at index " +
                           std::to_string(*index) + ", but the compaction point " +
                           std::to_string(view.snapshot_index) + " and the log's tally say " +
                           std::to_string(want));
      }
      return std::pair{first, view.last};
    });
  }

  result<void> put_snapshot(detail::Txn& txn, const SnapshotMeta& meta) const {
    const std::string value = detail::encode_snapshot_meta(meta);
    return txn.put(detail::Db::meta, detail::snapshot_key, {value});
  }

  /// After a commit that must be durable on return: MemFirst commits skipped the fsync.
  result<void> make_durable() {
    if (options_.mode == PersistenceMode::disk_first) return success();
    return env_->sync();
  }

  [[nodiscard]] error missing_entry(LogIndex i) const {
    return error(errc::storage_corrupt, "lmdb: " + env_->data_file().string() +
                                            ": log entry at index " + std::to_string(i) +
                                            " is missing (a gap in the log)");
  }
  [[nodiscard]] error malformed_entry(LogIndex i, std::size_t size) const {
    return error(errc::storage_corrupt, "lmdb: " + env_->data_file().string() +
                                            ": log entry at index " + std::to_string(i) +
                                            " is malformed (" + std::to_string(size) + " bytes)");
  }
  [[nodiscard]] error bad_key(std::size_t size) const {
    return error(errc::storage_corrupt, "lmdb: " + env_->data_file().string() + ": log key of " +
                                            std::to_string(size) + " bytes (expected 8)");
  }
  [[nodiscard]] error corrupt_record(std::string_view key, std::size_t size) const {
    return error(errc::storage_corrupt, "lmdb: " + env_->data_file().string() + ": " +
                                            detail::describe_record(detail::Db::meta, key) +
                                            ": malformed payload of " + std::to_string(size) +
                                            " bytes");
  }

  std::shared_ptr<Environment> env_;
  Options options_;
  std::unique_ptr<State> state_;
};

/// Moves are noexcept (the state sits behind a unique_ptr) and copies do not compile.
static_assert(std::is_nothrow_move_constructible_v<Engine> &&
              std::is_nothrow_move_assignable_v<Engine> && !std::is_copy_constructible_v<Engine>);
static_assert(dengine::StorageEngine<Engine>);

}  // namespace dengine::lmdb
