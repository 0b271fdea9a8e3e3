#pragma once
/// dengine::sqlite::Engine — a StorageEngine (Raft log, hard state, compaction point) in SQLite.
///
/// Schema in schema.hpp: one row per entry in raft_log (idx is the rowid, so the table is
/// ordered by index), single rows for the hard state and the compaction point. Invariant,
/// checked at open: raft_log holds exactly [snapshot index + 1, last index] with no gap.
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
/// loss can lose MemFirst commits not yet synced. SQLite checksums nothing by default: damage
/// to the file structure is reported as storage_corrupt, a flipped bit in entry data is not.

#include <sqlite3.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dengine/backends/sqlite/database.hpp"
#include "dengine/backends/sqlite/options.hpp"
#include "dengine/backends/sqlite/schema.hpp"
#include "dengine/backends/sqlite/statement.hpp"
#include "dengine/core/config.hpp"
#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/storage/concepts.hpp"

namespace dengine::sqlite {

namespace detail {

/// Node ids as 8-byte big-endian values, concatenated (the voters/learners columns).
inline std::string encode_ids(const std::vector<NodeId>& ids) {
  std::string out;
  out.reserve(ids.size() * 8);
  for (NodeId id : ids)
    for (int shift = 56; shift >= 0; shift -= 8)
      out.push_back(static_cast<char>((id >> shift) & 0xff));
  return out;
}

/// Decodes encode_ids(); false when the size is not a multiple of 8.
inline bool decode_ids(std::string_view bytes, std::vector<NodeId>& out) {
  if (bytes.size() % 8 != 0) return false;
  out.clear();
  for (std::size_t pos = 0; pos < bytes.size(); pos += 8) {
    NodeId id = 0;
    for (std::size_t k = 0; k < 8; ++k) id = (id << 8) | static_cast<unsigned char>(bytes[pos + k]);
    out.push_back(id);
  }
  return true;
}

/// Largest index SQLite's signed integers order correctly.
inline constexpr LogIndex max_index =
    static_cast<LogIndex>(std::numeric_limits<std::int64_t>::max());

}  // namespace detail

/// The Raft log and hard state of one data dir, in SQLite (see the file comment).
class Engine {
 public:
  /// Opens (creating if needed) the engine in `dir` (file dengine.sqlite3, shared with a
  /// KvStore opened on the same dir). Fails with io_error when the dir or file cannot be
  /// opened, storage_corrupt for a damaged file or log, incompatible_version for another
  /// schema version, too_busy when another process holds the write lock past the busy timeout.
  static result<Engine> open(const std::filesystem::path& dir, Options options = {}) {
    DENGINE_TRY(writer_db, open_database(dir, options));
    DENGINE_TRY(reader_db, Database::open(dir, options));
    auto impl = std::make_unique<Impl>(options, std::move(writer_db), std::move(reader_db));
    DENGINE_TRYV(impl->prepare());
    Engine engine(std::move(impl));
    DENGINE_TRYV(engine.check_log());
    return engine;
  }

  Engine(Engine&&) noexcept = default;
  Engine& operator=(Engine&&) noexcept = default;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  /// Closes both connections.
  ~Engine() = default;

  // ---- StorageEngine -------------------------------------------------------------------------

  /// Appends a non-empty contiguous batch starting in [first_index(), last_index() + 1],
  /// replacing every entry at or after its first index, in one transaction. Durable on return
  /// with DiskFirst; with MemFirst after sync(). A batch breaking those rules fails with
  /// invalid_argument and changes nothing.
  result<void> append(std::span<const Entry> batch) {
    Impl& s = *impl_;
    std::lock_guard lock(s.write_mutex);
    const LogIndex first = s.first.load();
    const LogIndex last = s.last.load();
    if (batch.empty()) return error(errc::invalid_argument, where() + ": append of an empty batch");
    const LogIndex from = batch.front().index;
    if (from < first || from > last + 1)
      return error(errc::invalid_argument, where() + ": append at index " + std::to_string(from) +
                                               " outside [" + std::to_string(first) + ", " +
                                               std::to_string(last + 1) +
                                               "] (first index, last index + 1)");
    for (std::size_t k = 1; k < batch.size(); ++k) {
      if (batch[k].index != from + k)
        return error(errc::invalid_argument, where() + ": append batch not contiguous: entry " +
                                                 std::to_string(k) + " has index " +
                                                 std::to_string(batch[k].index) + ", expected " +
                                                 std::to_string(from + k));
    }
    if (batch.back().index > detail::max_index) return index_too_large(batch.back().index);
    WriteTransaction txn(s.writer);
    DENGINE_TRYV(txn.begin());
    if (from <= last) {
      Reset reset(s.delete_from);
      s.delete_from.bind_u64(1, from);
      if (int rc = s.delete_from.step(); rc != SQLITE_DONE)
        return s.writer.failure(rc, "DELETE FROM raft_log WHERE idx >= " + std::to_string(from));
    }
    for (const Entry& e : batch) {
      Reset reset(s.insert_entry);
      s.insert_entry.bind_u64(1, e.index);
      s.insert_entry.bind_u64(2, e.term);
      s.insert_entry.bind_int64(3, static_cast<std::int64_t>(e.type));
      if (int rc = s.insert_entry.bind_blob(4, e.data); rc != SQLITE_OK)
        return s.writer.failure(rc, "binding the data of entry " + std::to_string(e.index) + " (" +
                                        std::to_string(e.data.size()) + " bytes)");
      if (int rc = s.insert_entry.step(); rc != SQLITE_DONE)
        return s.writer.failure(rc, "INSERT INTO raft_log (index " + std::to_string(e.index) + ")");
    }
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
  /// hi > last_index() + 1 → unavailable.
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
      const std::int64_t type = s.range.column_int64(2);
      if (type < 0 || type > static_cast<std::int64_t>(EntryType::config_change))
        return malformed_entry(i, "unknown entry type " + std::to_string(type));
      Entry e{s.range.column_u64(1), i, static_cast<EntryType>(type),
              std::string(s.range.column_blob(3))};
      const std::size_t size = entry_size(e);
      // The first entry is always returned, so a caller bounded by bytes still makes progress.
      if (!out.empty() && total + size > max_bytes) break;
      total += size;
      out.push_back(std::move(e));
    }
    return out;
  }

  /// Term of the entry at i, for i in [snapshot index, last_index()]; the snapshot index answers
  /// with the snapshot's term. Below → compacted; above → unavailable.
  [[nodiscard]] result<Term> term(LogIndex i) const {
    Impl& s = *impl_;
    std::lock_guard lock(s.read_mutex);
    // One statement: the bounds and the term come from one snapshot.
    Reset reset(s.term_view);
    s.term_view.bind_u64(1, std::min(i, detail::max_index));
    const int rc = s.term_view.step();
    if (rc == SQLITE_DONE) return missing_row("raft_snapshot");
    if (rc != SQLITE_ROW)
      return s.reader.failure(rc, "SELECT term (index " + std::to_string(i) + ")");
    const LogIndex snapshot_index = s.term_view.column_u64(0);
    const LogIndex last =
        s.term_view.column_type(2) == SQLITE_NULL ? snapshot_index : s.term_view.column_u64(2);
    if (i < snapshot_index)
      return error(errc::compacted, where() + ": term at index " + std::to_string(i) +
                                        " below the snapshot index " +
                                        std::to_string(snapshot_index));
    if (i > last)
      return error(errc::unavailable, where() + ": term at index " + std::to_string(i) +
                                          " past last index " + std::to_string(last));
    if (i == snapshot_index) return Term{s.term_view.column_u64(1)};
    if (s.term_view.column_type(3) == SQLITE_NULL) return missing_entry(i);
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
      Reset reset(s.term_at);
      s.term_at.bind_u64(1, meta.index);
      const int rc = s.term_at.step();
      if (rc == SQLITE_DONE) return missing_entry(meta.index);
      if (rc != SQLITE_ROW) return s.writer.failure(rc, "SELECT term FROM raft_log" + what);
      found = s.term_at.column_u64(0);
    }
    if (found != meta.term)
      return error(errc::invalid_argument,
                   where() + ": compact to index " + std::to_string(meta.index) + " with term " +
                       std::to_string(meta.term) + ", but the entry there has term " +
                       std::to_string(found));
    WriteTransaction txn(s.writer);
    DENGINE_TRYV(txn.begin());
    {
      Reset reset(s.delete_upto);
      s.delete_upto.bind_u64(1, meta.index);
      if (int rc = s.delete_upto.step(); rc != SQLITE_DONE)
        return s.writer.failure(rc, "DELETE FROM raft_log" + what);
    }
    DENGINE_TRYV(put_snapshot(meta));
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
    DENGINE_TRYV(put_snapshot(meta));
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
    {
      Reset reset(s.put_hard_state);
      s.put_hard_state.bind_u64(1, hard_state.term);
      s.put_hard_state.bind_u64(2, hard_state.vote);
      s.put_hard_state.bind_u64(3, hard_state.commit);
      if (int rc = s.put_hard_state.step(); rc != SQLITE_DONE)
        return s.writer.failure(rc, "INSERT INTO raft_hard_state");
    }
    return make_durable();
  }

  /// The hard state and compaction point as committed (zero values in a fresh dir).
  [[nodiscard]] result<RecoveredState> load() const {
    Impl& s = *impl_;
    std::lock_guard lock(s.read_mutex);
    ReadTransaction txn(s.reader);
    DENGINE_TRYV(txn.begin());
    RecoveredState out;
    {
      Reset reset(s.get_hard_state);
      const int rc = s.get_hard_state.step();
      if (rc == SQLITE_DONE) return missing_row("raft_hard_state");
      if (rc != SQLITE_ROW) return s.reader.failure(rc, "SELECT FROM raft_hard_state");
      out.hard_state = {s.get_hard_state.column_u64(0), s.get_hard_state.column_u64(1),
                        s.get_hard_state.column_u64(2)};
    }
    Reset reset(s.get_snapshot);
    const int rc = s.get_snapshot.step();
    if (rc == SQLITE_DONE) return missing_row("raft_snapshot");
    if (rc != SQLITE_ROW) return s.reader.failure(rc, "SELECT FROM raft_snapshot");
    out.snapshot.index = s.get_snapshot.column_u64(0);
    out.snapshot.term = s.get_snapshot.column_u64(1);
    if (!detail::decode_ids(s.get_snapshot.column_blob(2), out.snapshot.membership.voters) ||
        !detail::decode_ids(s.get_snapshot.column_blob(3), out.snapshot.membership.learners))
      return error(errc::storage_corrupt, "sqlite: " + s.writer.file().string() +
                                              ": raft_snapshot membership is malformed");
    return out;
  }

  // ---- Introspection -------------------------------------------------------------------------

  /// The persistence mode this engine was opened with.
  [[nodiscard]] PersistenceMode mode() const noexcept { return impl_->options.mode; }
  /// The database file.
  [[nodiscard]] const std::filesystem::path& file() const noexcept { return impl_->writer.file(); }

 private:
  struct View {
    LogIndex snapshot_index = 0;
    LogIndex last = 0;
  };

  /// Both connections, their statements and the cached bounds, behind a pointer so that Engine
  /// stays movable. Invariant: first/last/snapshot_* mirror the committed log; they change only
  /// under write_mutex, after a commit.
  struct Impl {
    Impl(const Options& o, Database w, Database r)
        : options(o), writer(std::move(w)), reader(std::move(r)) {}

    result<void> prepare() {
      DENGINE_TRY(
          a, writer.prepare("INSERT INTO raft_log(idx, term, type, data) VALUES (?1, ?2, ?3, ?4)"));
      DENGINE_TRY(b, writer.prepare("DELETE FROM raft_log WHERE idx >= ?1"));
      DENGINE_TRY(c, writer.prepare("DELETE FROM raft_log WHERE idx <= ?1"));
      DENGINE_TRY(d, writer.prepare("DELETE FROM raft_log"));
      DENGINE_TRY(e, writer.prepare("INSERT OR REPLACE INTO raft_snapshot(id, idx, term, voters, "
                                    "learners) VALUES (0, ?1, ?2, ?3, ?4)"));
      DENGINE_TRY(f, writer.prepare("INSERT OR REPLACE INTO raft_hard_state(id, term, vote, "
                                    "commit_index) VALUES (0, ?1, ?2, ?3)"));
      DENGINE_TRY(g, writer.prepare("SELECT term FROM raft_log WHERE idx = ?1"));
      DENGINE_TRY(h, reader.prepare("SELECT s.idx, (SELECT max(idx) FROM raft_log) FROM "
                                    "raft_snapshot AS s WHERE s.id = 0"));
      DENGINE_TRY(i, reader.prepare(
                         "SELECT s.idx, s.term, (SELECT max(idx) FROM raft_log), (SELECT term FROM "
                         "raft_log WHERE idx = ?1) FROM raft_snapshot AS s WHERE s.id = 0"));
      DENGINE_TRY(j, reader.prepare("SELECT idx, term, type, data FROM raft_log WHERE idx >= ?1 "
                                    "AND idx < ?2 ORDER BY idx"));
      DENGINE_TRY(
          k, reader.prepare("SELECT term, vote, commit_index FROM raft_hard_state WHERE id = 0"));
      DENGINE_TRY(
          l, reader.prepare("SELECT idx, term, voters, learners FROM raft_snapshot WHERE id = 0"));
      DENGINE_TRY(m, reader.prepare("SELECT min(idx), count(*) FROM raft_log"));
      insert_entry = std::move(a);
      delete_from = std::move(b);
      delete_upto = std::move(c);
      delete_all = std::move(d);
      put_snapshot = std::move(e);
      put_hard_state = std::move(f);
      term_at = std::move(g);
      bounds = std::move(h);
      term_view = std::move(i);
      range = std::move(j);
      get_hard_state = std::move(k);
      get_snapshot = std::move(l);
      log_shape = std::move(m);
      return success();
    }

    Options options;
    std::mutex write_mutex;
    Database writer;  // statements below up to term_at belong to it
    Statement insert_entry, delete_from, delete_upto, delete_all, put_snapshot, put_hard_state,
        term_at;
    std::mutex read_mutex;
    Database reader;  // statements below belong to it
    Statement bounds, term_view, range, get_hard_state, get_snapshot, log_shape;
    std::atomic<LogIndex> first{1};
    std::atomic<LogIndex> last{0};
    LogIndex snapshot_index = 0;  // guarded by write_mutex
    Term snapshot_term = 0;       // guarded by write_mutex
  };

  explicit Engine(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}

  [[nodiscard]] std::string where() const {
    return "sqlite engine " + impl_->writer.file().string();
  }

  /// The bounds in the reader's current transaction. Called with read_mutex held.
  result<View> read_view() const {
    Impl& s = *impl_;
    Reset reset(s.bounds);
    const int rc = s.bounds.step();
    if (rc == SQLITE_DONE) return missing_row("raft_snapshot");
    if (rc != SQLITE_ROW) return s.reader.failure(rc, "SELECT log bounds");
    View view;
    view.snapshot_index = s.bounds.column_u64(0);
    view.last =
        s.bounds.column_type(1) == SQLITE_NULL ? view.snapshot_index : s.bounds.column_u64(1);
    return view;
  }

  /// Loads the cached bounds and checks the log invariant (keys exactly [snapshot + 1, last]).
  /// Runs in open(), before the engine is shared with anyone.
  result<void> check_log() {
    DENGINE_TRY(state, load());
    Impl& s = *impl_;
    std::lock_guard lock(s.read_mutex);
    ReadTransaction txn(s.reader);
    DENGINE_TRYV(txn.begin());
    DENGINE_TRY(view, read_view());
    Reset reset(s.log_shape);
    const int rc = s.log_shape.step();
    if (rc != SQLITE_ROW) return s.reader.failure(rc, "SELECT log shape");
    const std::uint64_t count = s.log_shape.column_u64(1);
    if (count != 0) {
      const LogIndex lowest = s.log_shape.column_u64(0);
      if (lowest != view.snapshot_index + 1)
        return error(errc::storage_corrupt,
                     "sqlite: " + s.writer.file().string() + ": the log starts at index " +
                         std::to_string(lowest) + " but the compaction point is " +
                         std::to_string(view.snapshot_index));
      if (view.last < lowest || count != view.last - lowest + 1)
        return error(errc::storage_corrupt, "sqlite: " + s.writer.file().string() +
                                                ": the log holds " + std::to_string(count) +
                                                " entries between index " + std::to_string(lowest) +
                                                " and " + std::to_string(view.last) + " (a gap)");
    }
    s.snapshot_index = state.snapshot.index;
    s.snapshot_term = state.snapshot.term;
    s.first.store(view.snapshot_index + 1);
    s.last.store(view.last);
    return success();
  }

  /// Writes the compaction point row; called inside the writer's transaction.
  result<void> put_snapshot(const SnapshotMeta& meta) {
    Impl& s = *impl_;
    const std::string voters = detail::encode_ids(meta.membership.voters);
    const std::string learners = detail::encode_ids(meta.membership.learners);
    Reset reset(s.put_snapshot);
    s.put_snapshot.bind_u64(1, meta.index);
    s.put_snapshot.bind_u64(2, meta.term);
    s.put_snapshot.bind_blob(3, voters);
    s.put_snapshot.bind_blob(4, learners);
    if (int rc = s.put_snapshot.step(); rc != SQLITE_DONE)
      return s.writer.failure(rc, "INSERT INTO raft_snapshot");
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
    return error(errc::storage_corrupt, "sqlite: " + impl_->writer.file().string() +
                                            ": log entry at index " + std::to_string(i) +
                                            " is missing (a gap in raft_log)");
  }
  [[nodiscard]] error malformed_entry(LogIndex i, const std::string& why) const {
    return error(errc::storage_corrupt, "sqlite: " + impl_->writer.file().string() +
                                            ": log entry at index " + std::to_string(i) +
                                            " is malformed: " + why);
  }
  [[nodiscard]] error missing_row(std::string_view table) const {
    return error(errc::storage_corrupt, "sqlite: " + impl_->writer.file().string() + ": table " +
                                            std::string(table) + " lacks its row");
  }

  std::unique_ptr<Impl> impl_;
};

static_assert(dengine::StorageEngine<Engine>);

}  // namespace dengine::sqlite
