#pragma once
/// dengine::sqlite::Engine — a StorageEngine (Raft log, hard state, compaction point) in SQLite.
///
/// Schema in schema.hpp, record format in record.hpp: one row per entry in raft_log (idx is the
/// rowid, so the table is ordered by index), the hard state and the compaction point as
/// dengine_meta rows. Every row carries a CRC32C checked on every read (a mismatch is
/// storage_corrupt naming the file and the index or row, never a wrong entry); raft_log's row
/// count and digest are rewritten in the same transaction as every change. Invariant, checked
/// at open: raft_log holds exactly [snapshot index + 1, last index] with no gap.
///
/// Connections: a writer connection for the calls that change state (serialized by a mutex,
/// one transaction per call) and a reader connection for entries()/term()/load(), so that
/// reads never wait behind a writer's fsync (WAL lets them proceed on the last commit).
///
/// Durability:
/// - DiskFirst (`synchronous=FULL`): each commit fsyncs the WAL; append() is durable on
///   return and sync() has nothing left to do.
/// - MemFirst (`synchronous=NORMAL`): commits are not fsynced; sync() fsyncs the WAL file,
///   which holds every commit not yet checkpointed (Database::sync_wal).
/// compact(), reset() and save_hard_state() are durable on return in both modes (MemFirst
/// fsyncs the WAL after them). A process crash never loses a committed transaction; only power
/// loss can lose MemFirst commits not yet synced.

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "dengine/backends/sqlite/database.hpp"
#include "dengine/backends/sqlite/meta.hpp"
#include "dengine/backends/sqlite/options.hpp"
#include "dengine/backends/sqlite/record.hpp"
#include "dengine/backends/sqlite/schema.hpp"
#include "dengine/backends/sqlite/statement.hpp"
#include "dengine/core/config.hpp"
#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/storage/append_check.hpp"
#include "dengine/storage/concepts.hpp"
#include "dengine/storage/crc32c.hpp"

namespace dengine::sqlite {

namespace detail {

/// Largest index SQLite's signed integers order correctly.
inline constexpr LogIndex max_index =
    static_cast<LogIndex>(std::numeric_limits<std::int64_t>::max());

/// Checks the raft_log row at `stmt`'s current position: columns first..first+3 are term, type,
/// data_crc, crc (INTEGERs) and, when `data_col` >= 0, that column is the data (a BLOB).
/// `index` is the row's index. Verifies the row checksum, the data checksum when the data was
/// read, and the entry type.
inline result<void> check_entry(const Database& db, const Statement& stmt, LogIndex index,
                                int first, int data_col) {
  // The row's name is built only for an error: this runs for every entry read.
  bool typed = data_col < 0 || stmt.column_type(data_col) == SQLITE_BLOB;
  for (int c = first; c < first + 4; ++c) typed = typed && stmt.column_type(c) == SQLITE_INTEGER;
  if (!typed)
    return record::corrupt(
        db.file(), record::log_row(index) + ": columns of the wrong type (the record is damaged)");
  const std::int64_t term = stmt.column_int64(first);
  const std::int64_t type = stmt.column_int64(first + 1);
  const std::int64_t data_crc = stmt.column_int64(first + 2);
  const std::int64_t stored = stmt.column_int64(first + 3);
  const std::uint32_t computed =
      record::log_crc(static_cast<std::int64_t>(index), term, type, data_crc);
  if (stored != static_cast<std::int64_t>(computed))
    return record::crc_mismatch(db.file(), record::log_row(index), stored, computed);
  if (data_col >= 0) {
    const std::uint32_t data = crc32c::value(stmt.column_blob(data_col));
    if (data_crc != static_cast<std::int64_t>(data))
      return record::crc_mismatch(db.file(), record::log_row(index) + " data", data_crc, data);
  }
  if (type < 0 || type > static_cast<std::int64_t>(EntryType::config_change))
    return record::corrupt(db.file(),
                           record::log_row(index) + ": unknown entry type " + std::to_string(type));
  return success();
}

/// The compaction point's index and term from the 'snapshot' row's verified value.
inline result<SnapshotMeta> snapshot_point(const Database& db, std::string_view value) {
  SnapshotMeta out;
  if (!meta::decode_snapshot(value, out))
    return MetaRows::malformed(db, meta::snapshot_row, value.size());
  return out;
}

}  // namespace detail

/// The Raft log and hard state of one data dir, in SQLite (see the file comment). Move-only
/// (its state is owned by unique_ptr: moves are noexcept, copies do not compile); destroying it
/// closes both connections.
class Engine {
 public:
  /// Opens the engine in `dir` (file dengine.sqlite3, shared with a KvStore opened on the same
  /// dir), creating it when missing and Options::create_if_missing allows. Fails with io_error
  /// when the dir or file cannot be opened, storage_corrupt for a damaged, truncated or foreign
  /// file or log (naming it; the file is left as it was), incompatible_version for another
  /// format version, too_busy when another process holds the write lock past the busy timeout.
  static result<Engine> open(const std::filesystem::path& dir, Options options = {}) {
    DENGINE_TRY(writer_db, open_database(dir, options));
    DENGINE_TRY(reader_db, Database::open(writer_db.file(), options));
    reader_db.allow_checkpoint_on_close();
    auto impl = std::make_unique<Impl>(options, std::move(writer_db), std::move(reader_db));
    DENGINE_TRYV(impl->prepare());
    Engine engine(std::move(impl));
    DENGINE_TRYV(engine.load_bounds());
    return engine;
  }

  // ---- StorageEngine -------------------------------------------------------------------------

  /// StorageEngine::append in one SQLite transaction (deleting the conflicting rows, inserting
  /// the batch, updating the table's stats); storage::check_append refuses a malformed batch
  /// first. With DiskFirst the commit is durable (synchronous=FULL); with MemFirst after sync().
  result<void> append(std::span<const Entry> batch) {
    Impl& s = *impl_;
    std::lock_guard lock(s.write_mutex);
    const LogIndex first = s.first.load();
    const LogIndex last = s.last.load();
    DENGINE_TRYV(storage::check_append(batch, first, last, [&] { return where(); }));
    const LogIndex from = batch.front().index;
    if (batch.back().index > detail::max_index) return index_too_large(batch.back().index);
    WriteTransaction txn(s.writer);
    DENGINE_TRYV(txn.begin());
    DENGINE_TRY(stats, s.writer_meta.stats(log_table));
    if (from <= last) {
      DENGINE_TRYV(drop_rows(s.crcs_from, s.delete_from, from, stats, "idx >= "));
    }
    for (const Entry& e : batch) {
      const auto type = static_cast<std::int64_t>(e.type);
      const std::uint32_t data_crc = crc32c::value(e.data);
      const std::uint32_t crc = record::log_crc(static_cast<std::int64_t>(e.index),
                                                static_cast<std::int64_t>(e.term), type, data_crc);
      Reset reset(s.insert_entry);
      s.insert_entry.bind_u64(1, e.index);
      s.insert_entry.bind_u64(2, e.term);
      s.insert_entry.bind_int64(3, type);
      s.insert_entry.bind_int64(4, data_crc);
      s.insert_entry.bind_int64(5, crc);
      if (int rc = s.insert_entry.bind_blob(6, e.data); rc != SQLITE_OK)
        return s.writer.failure(rc, "binding the data of entry " + std::to_string(e.index) + " (" +
                                        std::to_string(e.data.size()) + " bytes)");
      if (int rc = s.insert_entry.step(); rc != SQLITE_DONE)
        return s.writer.failure(rc, "INSERT INTO raft_log (index " + std::to_string(e.index) + ")");
      stats.add(crc);
    }
    DENGINE_TRYV(s.writer_meta.put(record::stats_row(log_table), stats.encode()));
    DENGINE_TRYV(txn.commit());
    s.last.store(batch.back().index);
    return success();
  }

  /// Makes every append durable: fsyncs the WAL with MemFirst; nothing to do with DiskFirst
  /// (each commit fsynced the WAL).
  result<void> sync() {
    if (impl_->options.mode == PersistenceMode::disk_first) return success();
    std::lock_guard lock(impl_->write_mutex);
    return impl_->writer.sync_wal();
  }

  /// Entries in [lo, hi): at least one when lo < hi, then as many as fit in max_bytes (measured
  /// with entry_size()). lo > hi → invalid_argument; lo < first_index() → compacted;
  /// hi > last_index() + 1 → unavailable. Each entry's checksums are verified.
  [[nodiscard]] result<std::vector<Entry>> entries(LogIndex lo, LogIndex hi,
                                                   std::size_t max_bytes) const {
    if (lo > hi)
      return error(errc::invalid_argument, where() + ": entries range [" + std::to_string(lo) +
                                               ", " + std::to_string(hi) + ") has lo > hi");
    Impl& s = *impl_;
    std::lock_guard lock(s.read_mutex);
    ReadTransaction txn(s.reader);  // the bounds and the rows come from one snapshot
    DENGINE_TRYV(txn.begin());
    DENGINE_TRY(view, read_view());
    if (lo <= view.snapshot_index)
      return error(errc::compacted, where() + ": entries from index " + std::to_string(lo) +
                                        " below first index " +
                                        std::to_string(view.snapshot_index + 1));
    if (hi > view.last + 1)
      return error(errc::unavailable, where() + ": entries up to index " + std::to_string(hi - 1) +
                                          " past last index " + std::to_string(view.last));
    std::vector<Entry> out;
    if (lo == hi) return out;
    Reset reset(s.range);
    s.range.bind_u64(1, lo);
    s.range.bind_u64(2, hi);
    std::size_t total = 0;
    for (LogIndex i = lo; i < hi; ++i) {
      const int rc = s.range.step();
      if (rc == SQLITE_DONE) return missing_entry(i);
      if (rc != SQLITE_ROW) return s.reader.failure(rc, "SELECT FROM raft_log (entries)");
      if (s.range.column_u64(0) != i) return missing_entry(i);
      DENGINE_TRYV(detail::check_entry(s.reader, s.range, i, 1, 5));
      Entry e{s.range.column_u64(1), i, static_cast<EntryType>(s.range.column_int64(2)),
              std::string(s.range.column_blob(5))};
      const std::size_t size = entry_size(e);
      // The first entry is always returned, so a caller bounded by bytes still makes progress.
      if (!out.empty() && total + size > max_bytes) break;
      total += size;
      out.push_back(std::move(e));
    }
    return out;
  }

  /// Term of the entry at i, for i in [snapshot index, last_index()]; the snapshot index answers
  /// with the snapshot's term. Below → compacted; above → unavailable. The entry's row checksum
  /// is verified (its data is not read).
  [[nodiscard]] result<Term> term(LogIndex i) const {
    Impl& s = *impl_;
    std::lock_guard lock(s.read_mutex);
    // One statement: the bounds and the term come from one snapshot.
    Reset reset(s.term_view);
    s.term_view.bind_blob(1, meta::snapshot_row);
    s.term_view.bind_u64(2, std::min(i, detail::max_index));
    const int rc = s.term_view.step();
    if (rc == SQLITE_DONE)
      return record::corrupt(file(), record::meta_row(meta::snapshot_row) + " is missing");
    if (rc != SQLITE_ROW)
      return s.reader.failure(rc, "SELECT term (index " + std::to_string(i) + ")");
    DENGINE_TRY(value, MetaRows::verified(s.reader, s.term_view, meta::snapshot_row, 0, 1));
    DENGINE_TRY(point, detail::snapshot_point(s.reader, value));
    const LogIndex last =
        s.term_view.column_type(2) == SQLITE_NULL ? point.index : s.term_view.column_u64(2);
    if (i < point.index)
      return error(errc::compacted, where() + ": term at index " + std::to_string(i) +
                                        " below the snapshot index " + std::to_string(point.index));
    if (i > last)
      return error(errc::unavailable, where() + ": term at index " + std::to_string(i) +
                                          " past last index " + std::to_string(last));
    if (i == point.index) return point.term;
    if (s.term_view.column_type(3) == SQLITE_NULL) return missing_entry(i);
    DENGINE_TRYV(detail::check_entry(s.reader, s.term_view, i, 3, -1));
    return Term{s.term_view.column_u64(3)};
  }

  /// Index of the first entry in the log (snapshot index + 1).
  [[nodiscard]] LogIndex first_index() const { return impl_->first.load(); }
  /// Index of the last entry in the log (the snapshot index when the log is empty).
  [[nodiscard]] LogIndex last_index() const { return impl_->last.load(); }

  /// Drops entries up to meta.index and records meta as the compaction point, atomically and
  /// durably. meta.index < snapshot index → compacted; meta.index > last_index() → unavailable;
  /// meta.term different from term(meta.index) → invalid_argument. Nothing changes on failure.
  result<void> compact(const SnapshotMeta& meta) {
    Impl& s = *impl_;
    std::lock_guard lock(s.write_mutex);
    const std::string what = " (compact to index " + std::to_string(meta.index) + ")";
    if (meta.index < s.snapshot_index)
      return error(errc::compacted, where() + ": index " + std::to_string(meta.index) +
                                        " is below the snapshot index " +
                                        std::to_string(s.snapshot_index) + what);
    if (meta.index > s.last.load())
      return error(errc::unavailable, where() + ": index " + std::to_string(meta.index) +
                                          " is past last index " + std::to_string(s.last.load()) +
                                          what);
    Term found = s.snapshot_term;
    if (meta.index != s.snapshot_index) {
      Reset reset(s.header_at);
      s.header_at.bind_u64(1, meta.index);
      const int rc = s.header_at.step();
      if (rc == SQLITE_DONE) return missing_entry(meta.index);
      if (rc != SQLITE_ROW) return s.writer.failure(rc, "SELECT term FROM raft_log" + what);
      DENGINE_TRYV(detail::check_entry(s.writer, s.header_at, meta.index, 0, -1));
      found = s.header_at.column_u64(0);
    }
    if (found != meta.term)
      return error(errc::invalid_argument,
                   where() + ": compact to index " + std::to_string(meta.index) + " with term " +
                       std::to_string(meta.term) + ", but the entry there has term " +
                       std::to_string(found));
    WriteTransaction txn(s.writer);
    DENGINE_TRYV(txn.begin());
    DENGINE_TRY(stats, s.writer_meta.stats(log_table));
    DENGINE_TRYV(drop_rows(s.crcs_upto, s.delete_upto, meta.index, stats, "idx <= "));
    DENGINE_TRYV(s.writer_meta.put(record::stats_row(log_table), stats.encode()));
    DENGINE_TRYV(s.writer_meta.put(meta::snapshot_row, meta::encode_snapshot_meta(meta)));
    DENGINE_TRYV(txn.commit());
    s.snapshot_index = meta.index;
    s.snapshot_term = meta.term;
    s.first.store(meta.index + 1);
    return make_durable();
  }

  /// Discards the whole log and restarts it after meta (an installed snapshot): afterwards
  /// first_index() == meta.index + 1 and last_index() == meta.index. Durable on return.
  result<void> reset(const SnapshotMeta& meta) {
    Impl& s = *impl_;
    std::lock_guard lock(s.write_mutex);
    if (meta.index > detail::max_index) return index_too_large(meta.index);
    WriteTransaction txn(s.writer);
    DENGINE_TRYV(txn.begin());
    {
      Reset reset(s.delete_all);
      if (int rc = s.delete_all.step(); rc != SQLITE_DONE)
        return s.writer.failure(rc, "DELETE FROM raft_log (reset)");
    }
    DENGINE_TRYV(s.writer_meta.put(record::stats_row(log_table), record::TableStats{}.encode()));
    DENGINE_TRYV(s.writer_meta.put(meta::snapshot_row, meta::encode_snapshot_meta(meta)));
    DENGINE_TRYV(txn.commit());
    s.snapshot_index = meta.index;
    s.snapshot_term = meta.term;
    s.first.store(meta.index + 1);
    s.last.store(meta.index);
    return make_durable();
  }

  /// Records the hard state: atomic (one row, one statement) and durable on return.
  result<void> save_hard_state(const HardState& hard_state) {
    Impl& s = *impl_;
    std::lock_guard lock(s.write_mutex);
    DENGINE_TRYV(s.writer_meta.put(meta::hard_state_row, meta::encode_hard_state(hard_state)));
    return make_durable();
  }

  /// The hard state and compaction point as committed (zero values in a fresh dir), their
  /// checksums verified.
  [[nodiscard]] result<RecoveredState> load() const {
    Impl& s = *impl_;
    std::lock_guard lock(s.read_mutex);
    ReadTransaction txn(s.reader);
    DENGINE_TRYV(txn.begin());
    RecoveredState out;
    DENGINE_TRY(hard, s.reader_meta.get(meta::hard_state_row));
    if (!meta::decode_hard_state(hard, out.hard_state))
      return MetaRows::malformed(s.reader, meta::hard_state_row, hard.size());
    DENGINE_TRY(snapshot, s.reader_meta.get(meta::snapshot_row));
    DENGINE_TRY(point, detail::snapshot_point(s.reader, snapshot));
    out.snapshot = std::move(point);
    return out;
  }

  // ---- Introspection -------------------------------------------------------------------------

  /// The persistence mode this engine was opened with.
  [[nodiscard]] PersistenceMode mode() const noexcept { return impl_->options.mode; }
  /// The database file (absolute).
  [[nodiscard]] const std::filesystem::path& file() const noexcept { return impl_->writer.file(); }

 private:
  struct View {
    LogIndex snapshot_index = 0;
    LogIndex last = 0;
  };

  /// Both connections, their statements and the cached bounds, behind a pointer so that Engine
  /// stays movable (MetaRows point at the connections, which therefore never move).
  /// Invariant: first/last/snapshot_* mirror the committed log; they change only under
  /// write_mutex, after a commit.
  struct Impl {
    Impl(const Options& o, Database w, Database r)
        : options(o), writer(std::move(w)), reader(std::move(r)) {}

    result<void> prepare() {
      DENGINE_TRY(a, writer.prepare("INSERT INTO raft_log(idx, term, type, data_crc, crc, data) "
                                    "VALUES (?1, ?2, ?3, ?4, ?5, ?6)"));
      DENGINE_TRY(b, writer.prepare("SELECT crc FROM raft_log WHERE idx >= ?1"));
      DENGINE_TRY(c, writer.prepare("DELETE FROM raft_log WHERE idx >= ?1"));
      DENGINE_TRY(d, writer.prepare("SELECT crc FROM raft_log WHERE idx <= ?1"));
      DENGINE_TRY(e, writer.prepare("DELETE FROM raft_log WHERE idx <= ?1"));
      DENGINE_TRY(f, writer.prepare("DELETE FROM raft_log"));
      DENGINE_TRY(g,
                  writer.prepare("SELECT term, type, data_crc, crc FROM raft_log WHERE idx = ?1"));
      DENGINE_TRY(h, MetaRows::prepare(writer));
      DENGINE_TRY(i, reader.prepare("SELECT m.value, m.crc, (SELECT max(idx) FROM raft_log) FROM "
                                    "dengine_meta AS m WHERE m.name = ?1"));
      DENGINE_TRY(j, reader.prepare(
                         "SELECT m.value, m.crc, (SELECT max(idx) FROM raft_log), l.term, l.type, "
                         "l.data_crc, l.crc FROM dengine_meta AS m LEFT JOIN raft_log AS l ON "
                         "l.idx = ?2 WHERE m.name = ?1"));
      DENGINE_TRY(k, reader.prepare("SELECT idx, term, type, data_crc, crc, data FROM raft_log "
                                    "WHERE idx >= ?1 AND idx < ?2 ORDER BY idx"));
      DENGINE_TRY(l, MetaRows::prepare(reader));
      insert_entry = std::move(a);
      crcs_from = std::move(b);
      delete_from = std::move(c);
      crcs_upto = std::move(d);
      delete_upto = std::move(e);
      delete_all = std::move(f);
      header_at = std::move(g);
      writer_meta = std::move(h);
      bounds = std::move(i);
      term_view = std::move(j);
      range = std::move(k);
      reader_meta = std::move(l);
      return success();
    }

    Options options;
    std::mutex write_mutex;
    Database writer;  // the statements below up to writer_meta belong to it
    Statement insert_entry, crcs_from, delete_from, crcs_upto, delete_upto, delete_all, header_at;
    MetaRows writer_meta;
    std::mutex read_mutex;
    Database reader;  // the statements below belong to it
    Statement bounds, term_view, range;
    MetaRows reader_meta;
    std::atomic<LogIndex> first{1};
    std::atomic<LogIndex> last{0};
    LogIndex snapshot_index = 0;  // guarded by write_mutex
    Term snapshot_term = 0;       // guarded by write_mutex
  };

  explicit Engine(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}

  [[nodiscard]] std::string where() const { return "sqlite engine " + file().string(); }

  /// The bounds in the reader's current transaction, the compaction point's checksum verified.
  /// Called with read_mutex held.
  result<View> read_view() const {
    Impl& s = *impl_;
    Reset reset(s.bounds);
    s.bounds.bind_blob(1, meta::snapshot_row);
    const int rc = s.bounds.step();
    if (rc == SQLITE_DONE)
      return record::corrupt(file(), record::meta_row(meta::snapshot_row) + " is missing");
    if (rc != SQLITE_ROW) return s.reader.failure(rc, "SELECT log bounds");
    DENGINE_TRY(value, MetaRows::verified(s.reader, s.bounds, meta::snapshot_row, 0, 1));
    DENGINE_TRY(point, detail::snapshot_point(s.reader, value));
    View view;
    view.snapshot_index = point.index;
    view.last = s.bounds.column_type(2) == SQLITE_NULL ? point.index : s.bounds.column_u64(2);
    return view;
  }

  /// Loads the cached bounds. Runs in open(), after open_database() checked the log's shape
  /// (contiguity, count, digest), before the engine is shared with anyone.
  result<void> load_bounds() {
    DENGINE_TRY(state, load());
    Impl& s = *impl_;
    std::lock_guard lock(s.read_mutex);
    ReadTransaction txn(s.reader);
    DENGINE_TRYV(txn.begin());
    DENGINE_TRY(view, read_view());
    s.snapshot_index = state.snapshot.index;
    s.snapshot_term = state.snapshot.term;
    s.first.store(view.snapshot_index + 1);
    s.last.store(view.last);
    return success();
  }

  /// Deletes the log rows `select` finds (bound to `bound`), removing their checksums from
  /// `stats`; called inside the writer's transaction.
  result<void> drop_rows(Statement& select, Statement& remove, LogIndex bound,
                         record::TableStats& stats, std::string_view condition) {
    Impl& s = *impl_;
    {
      Reset reset(select);
      select.bind_u64(1, bound);
      for (;;) {
        const int rc = select.step();
        if (rc == SQLITE_DONE) break;
        if (rc != SQLITE_ROW)
          return s.writer.failure(rc, "SELECT crc FROM raft_log WHERE " + std::string(condition) +
                                          std::to_string(bound));
        stats.remove(static_cast<std::uint32_t>(select.column_int64(0)));
      }
    }
    Reset reset(remove);
    remove.bind_u64(1, bound);
    if (int rc = remove.step(); rc != SQLITE_DONE)
      return s.writer.failure(
          rc, "DELETE FROM raft_log WHERE " + std::string(condition) + std::to_string(bound));
    return success();
  }

  /// After a commit that must be durable on return: MemFirst commits skipped the fsync.
  /// Called with write_mutex held.
  result<void> make_durable() {
    if (impl_->options.mode == PersistenceMode::disk_first) return success();
    return impl_->writer.sync_wal();
  }

  [[nodiscard]] error index_too_large(LogIndex index) const {
    return error(errc::invalid_argument,
                 where() + ": index " + std::to_string(index) +
                     " exceeds the largest index SQLite orders correctly (2^63 - 1)");
  }
  [[nodiscard]] error missing_entry(LogIndex i) const {
    return record::corrupt(file(),
                           record::log_row(i) + ": the entry is missing (a gap in the log)");
  }

  std::unique_ptr<Impl> impl_;
};

/// Moves are noexcept (the state sits behind a unique_ptr) and copies do not compile.
static_assert(std::is_nothrow_move_constructible_v<Engine> &&
              std::is_nothrow_move_assignable_v<Engine> && !std::is_copy_constructible_v<Engine>);
static_assert(dengine::StorageEngine<Engine>);

}  // namespace dengine::sqlite
