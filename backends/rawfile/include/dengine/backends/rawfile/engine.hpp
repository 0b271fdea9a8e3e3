#pragma once
/// dengine::rawfile::Engine — a StorageEngine on plain files: a segmented append-only log, an
/// atomically replaced hard-state file and an atomically replaced log-meta file (the compaction
/// point). No library beyond the C++ standard library and POSIX.
///
/// Directory layout (one engine per directory; `log.lock` is flock()ed while it is open):
///
///     log-00000000000000000001.seg ...   segments (format in segment.hpp)
///     log.meta                           first/last segment seq + compaction point
///     (meta_files.hpp) hardstate                          term, vote, commit (meta_files.hpp)
///     log.lock                           lock file
///
/// Writes: append() encodes a truncation record (when the batch replaces a suffix) and one record
/// per entry into a buffer and pwrite()s it at the end of the current segment; when a record does
/// not fit, the segment is *sealed* (fdatasync), a new one is created (preallocated to
/// Options::segment_bytes unless Options::preallocate is off; header
/// written, fsync, directory fsync) and recorded in log.meta before any record goes into it.
/// sync() is one fdatasync of the current segment (DiskFirst) or a hand-over to the background
/// flusher (MemFirst, background_sync.hpp). compact() makes the log durable, records the new
/// compaction point in log.meta and deletes the segments that lie wholly below it. reset() creates
/// a fresh segment starting after the snapshot, records it and the snapshot in log.meta (the
/// switch-over point), then deletes every older segment — except on a log whose only segment
/// holds no record and already starts there (a fresh log's bootstrap), where it records the
/// snapshot alone: a fresh start needs one segment's space, not two. save_hard_state() replaces
/// `hardstate`. Every new file, rename and removal is followed by an fsync of the directory.
///
/// Recovery on open (recovery.hpp has the full rules): every record of every segment is checked.
/// Torn tail vs. corruption:
///   - Only the newest segment can have a torn tail, because every older segment was fdatasynced
///     before its successor was created.
///   - In the newest segment, the first invalid record at offset X (checksum mismatch, a length
///     running past the end of the file, an incomplete frame, or non-zero bytes after a zero
///     frame) starts a torn tail **if no valid record frame starts at any later 8-aligned offset**
///     of the file: the bytes from X on are discarded (logged through Options::log) and the file is
///     zero-filled from X again. If a valid record does follow, open fails with `storage_corrupt`
///     naming the file and X: dropping the damaged record would silently lose the acknowledged
///     records behind it.
///   - Any invalid record in an older segment, a missing segment, a segment that does not start
///     where the previous one ended, a bad header, or a corrupt `hardstate`/`log.meta` is
///     `storage_corrupt` naming the file and the byte offset.
///   Consequence, stated honestly: damage to the very last record(s) of the log with nothing valid
///   after them is indistinguishable from a torn write and is repaired (dropped, with a log line),
///   exactly like an unsynced tail; and final records overwritten with zeros look exactly like the
///   zero-filled unused end of a segment, so they are not even logged. A SIGKILL never causes this
///   (the page cache keeps every completed write); after a power loss the dropped records were, by
///   construction, the newest.
///
/// Persistence modes: DiskFirst — sync() returns after fdatasync. MemFirst — sync() returns at
/// once; a background thread fdatasyncs within Options::mem_first_sync_interval (10 ms default)
/// of the first unflushed sync(), or as soon as Options::mem_first_sync_bytes (4 MiB) wait. A
/// process crash loses nothing in either mode (the data is in the page cache); a power loss may
/// lose up to that window in MemFirst. compact(), reset() and save_hard_state() are durable on
/// return in both modes.
///
/// Errors: ENOSPC/EDQUOT/EFBIG → `no_space`, other system-call failures → `io_error`, each
/// naming the call and the file. After a failed write or fdatasync the engine refuses every
/// further mutation with the same error code (the on-disk state is then only known after a
/// recovery): reopen it. A data directory that is a file is `invalid_argument`; one that cannot be
/// created or written is `io_error` naming the path; one already open elsewhere is `io_error`
/// naming the lock file.
///
/// Threads: one thread at a time may mutate (append, sync, compact, reset, save_hard_state);
/// any number of threads may read (entries, term, first/last_index, load) concurrently with it.
/// fdatasync and file reads run outside the lock that guards the in-memory index.

#include <algorithm>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "dengine/backends/rawfile/background_sync.hpp"
#include "dengine/backends/rawfile/file_io.hpp"
#include "dengine/backends/rawfile/meta_files.hpp"
#include "dengine/backends/rawfile/options.hpp"
#include "dengine/backends/rawfile/recovery.hpp"
#include "dengine/backends/rawfile/segment.hpp"
#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/storage/append_check.hpp"
#include "dengine/storage/concepts.hpp"

namespace dengine::rawfile {

inline constexpr std::string_view log_lock_file = "log.lock";

namespace detail {

/// Everything an open engine holds. Invariants (under state_mu for readers; the mutating thread
/// holds write_mu): entries[k] is index meta.snapshot.index + 1 + k; segments are
/// [meta.first_seq, meta.last_seq] in order and every entry location points into one of them;
/// every segment but the last is durable up to its end.
struct EngineState {
  Options options;
  io::Directory dir;
  LogMeta meta;  ///< as durable in log.meta
  HardState hard_state;
  std::deque<SegmentFile> segments;
  std::deque<EntryLocation> entries;
  std::uint64_t unsynced_bytes = 0;  ///< written to the current segment since the last sync()
  std::optional<error> failed;       ///< set by a failed write/fdatasync: no more mutations
  std::unique_ptr<BackgroundSyncer> syncer;  ///< MemFirst only
  std::string buffer;                        ///< append's encoding buffer, reused
  std::vector<EntryLocation> staged;         ///< locations of the records in buffer

  mutable std::mutex write_mu;         ///< serializes mutators
  mutable std::shared_mutex state_mu;  ///< guards the in-memory index against concurrent readers

  EngineState() = default;
  EngineState(const EngineState&) = delete;
  EngineState& operator=(const EngineState&) = delete;
  ~EngineState() {
    syncer.reset();  // joins the flusher after its last fdatasync
    // A clean close makes the appended tail durable too (best effort: sync() is the contract).
    if (!failed && unsynced_bytes > 0 && !segments.empty())
      (void)io::datasync(segments.back().fd->get(), segments.back().path);
  }

  [[nodiscard]] LogIndex first() const noexcept { return meta.snapshot.index + 1; }
  [[nodiscard]] LogIndex last() const noexcept { return meta.snapshot.index + entries.size(); }
  [[nodiscard]] const SegmentFile& segment(std::uint64_t seq) const {
    return segments[seq - segments.front().seq];
  }
};

}  // namespace detail

/// A StorageEngine on segmented append-only files (see the file comment for format, recovery,
/// persistence and error rules). Movable; closes its files (after a final fdatasync) on
/// destruction.
class Engine {
 public:
  /// Opens (creating if needed) the log in `dir`, recovering it as the file comment describes.
  static result<Engine> open(const std::filesystem::path& dir, Options options = {});

  Engine(Engine&&) noexcept = default;
  Engine& operator=(Engine&&) noexcept = default;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  ~Engine() = default;

  /// Appends a contiguous batch starting in [first_index(), last_index() + 1], replacing any
  /// conflicting suffix. Written to the page cache; durable after sync().
  result<void> append(std::span<const Entry> batch);
  /// Makes every append, truncation and compaction durable (DiskFirst: fdatasync before return;
  /// MemFirst: handed to the background flusher).
  result<void> sync();
  /// Entries in [lo, hi), at least one when lo < hi, bounded by max_bytes of entry_size().
  [[nodiscard]] result<std::vector<Entry>> entries(LogIndex lo, LogIndex hi,
                                                   std::size_t max_bytes) const;
  /// The term at index i in [snapshot index, last_index()].
  [[nodiscard]] result<Term> term(LogIndex i) const;
  /// The first index still in the log (snapshot index + 1).
  [[nodiscard]] LogIndex first_index() const;
  /// The last index in the log (the snapshot index when the log is empty).
  [[nodiscard]] LogIndex last_index() const;
  /// Drops entries up to meta.index, durably (the log is synced first), and records meta.
  result<void> compact(const SnapshotMeta& meta);
  /// Discards the whole log and restarts it after meta (an installed snapshot); durable on return.
  result<void> reset(const SnapshotMeta& meta);
  /// Replaces the hard state atomically; durable on return.
  result<void> save_hard_state(const HardState& hard_state);
  /// The hard state and compaction point (as recovered at open, updated since).
  [[nodiscard]] result<RecoveredState> load() const;
  /// The data directory.
  [[nodiscard]] const std::filesystem::path& directory() const noexcept { return s_->dir.path; }

 private:
  explicit Engine(std::unique_ptr<detail::EngineState> s) : s_(std::move(s)) {}

  result<void> usable() const;
  result<void> fail(error e);
  result<void> flush_buffer();
  result<void> roll(LogIndex base);
  result<SegmentFile> create_segment(std::uint64_t seq, LogIndex base);
  result<void> write_meta(const LogMeta& meta);
  void remove_segments_before(std::uint64_t seq);

  std::unique_ptr<detail::EngineState> s_;
};

static_assert(StorageEngine<Engine>);

// ---- open
// ----------------------------------------------------------------------------------------

inline result<Engine> Engine::open(const std::filesystem::path& dir, Options options) {
  if (options.segment_bytes < 4096)
    return error(errc::invalid_argument,
                 fmt::format("rawfile options: segment_bytes must be at least 4096, got {}",
                             options.segment_bytes));
  if (options.mode == PersistenceMode::mem_first && options.mem_first_sync_interval.count() <= 0)
    return error(errc::invalid_argument,
                 "rawfile options: mem_first_sync_interval must be positive");
  auto s = std::make_unique<detail::EngineState>();
  s->options = std::move(options);
  const auto& log = s->options.log;
  DENGINE_TRY(d, io::open_directory(dir, log_lock_file));
  s->dir = std::move(d);

  std::map<std::uint64_t, std::filesystem::path> segment_files;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const auto name = it->path().filename().string();
    if (auto seq = segment::parse_file_name(name)) {
      segment_files.emplace(*seq, it->path());
    } else if (name == std::string(log_meta_file) + ".tmp" ||
               name == std::string(hard_state_file) + ".tmp") {
      detail::emit(log,
                   fmt::format("removing {}: an interrupted atomic replace", it->path().string()));
      DENGINE_TRYV(io::remove_file(it->path()));
    }
  }
  if (ec) return io::sys_error("readdir", dir, ec.value());

  const auto meta_path = dir / log_meta_file;
  const auto hard_state_path = dir / hard_state_file;
  DENGINE_TRY(meta_bytes, io::read_whole_file(meta_path));
  DENGINE_TRY(hard_state_bytes, io::read_whole_file(hard_state_path));

  if (!meta_bytes) {
    // A new log — unless segments with data exist: then log.meta was lost, and starting over
    // would throw the log away.
    for (const auto& [seq, path] : segment_files) {
      DENGINE_TRY(bytes, io::read_whole_file(path));
      if (bytes && !detail::all_zero(std::string_view(*bytes).substr(
                       std::min<std::size_t>(bytes->size(), segment::header_bytes))))
        return error(
            errc::storage_corrupt,
            fmt::format(
                "{} is missing but segment {} holds data: refusing to start a new log over it",
                meta_path.string(), path.string()));
      detail::emit(log,
                   fmt::format("removing {}: an empty segment of an interrupted initialization",
                               path.string()));
      DENGINE_TRYV(io::remove_file(path));
    }
    if (hard_state_bytes) {
      DENGINE_TRY(hs, decode_hard_state(*hard_state_bytes, hard_state_path));
      s->hard_state = hs;
    } else {
      DENGINE_TRYV(
          io::write_file_atomically(s->dir, hard_state_file, encode_hard_state(s->hard_state)));
    }
    Engine engine(std::move(s));
    DENGINE_TRY(first, engine.create_segment(1, 1));
    if (auto written = engine.write_meta(LogMeta{1, 1, {}}); !written) {
      // Do not leave a preallocated segment that no log.meta names on a disk that is likely full
      // (the next open would remove it, but the space is needed now).
      first.fd.reset();
      (void)io::remove_file(first.path);
      (void)engine.s_->dir.sync();
      return written.error();
    }
    engine.s_->meta = LogMeta{1, 1, {}};
    engine.s_->segments.push_back(std::move(first));
    if (engine.s_->options.mode == PersistenceMode::mem_first)
      engine.s_->syncer = std::make_unique<BackgroundSyncer>(
          engine.s_->options.mem_first_sync_interval, engine.s_->options.mem_first_sync_bytes);
    return engine;
  }

  DENGINE_TRY(meta, decode_log_meta(*meta_bytes, meta_path));
  s->meta = meta;
  if (!hard_state_bytes)
    return error(errc::storage_corrupt,
                 fmt::format("{} is missing ({} exists, and the hard state is written first)",
                             hard_state_path.string(), meta_path.string()));
  DENGINE_TRY(hs, decode_hard_state(*hard_state_bytes, hard_state_path));
  s->hard_state = hs;
  DENGINE_TRY(recovered, recover_log(s->dir, std::move(segment_files), s->meta,
                                     s->options.preallocate ? s->options.segment_bytes : 0, log));
  s->segments = std::move(recovered.segments);
  s->entries = std::move(recovered.entries);
  if (s->options.mode == PersistenceMode::mem_first)
    s->syncer = std::make_unique<BackgroundSyncer>(s->options.mem_first_sync_interval,
                                                   s->options.mem_first_sync_bytes);
  return Engine(std::move(s));
}

// ---- private helpers
// -----------------------------------------------------------------------------

inline result<void> Engine::usable() const {
  if (!s_->failed && s_->syncer) {
    if (auto f = s_->syncer->failure()) s_->failed = std::move(f);
  }
  if (s_->failed)
    return error(s_->failed->code,
                 fmt::format("rawfile log in {} stopped after an earlier failure ({}); reopen it",
                             s_->dir.path.string(), s_->failed->detail));
  return success();
}

inline result<void> Engine::fail(error e) {
  if (!s_->failed) s_->failed = e;
  return e;
}

inline result<void> Engine::write_meta(const LogMeta& meta) {
  return io::write_file_atomically(s_->dir, log_meta_file, encode_log_meta(meta));
}

inline result<SegmentFile> Engine::create_segment(std::uint64_t seq, LogIndex base) {
  SegmentFile seg{seq, base, s_->dir.path / segment::file_name(seq), nullptr,
                  segment::header_bytes};
  // A file of that name can only be an unused leftover of an earlier failed attempt.
  DENGINE_TRYV(io::remove_file(seg.path));
  auto made = [&]() -> result<void> {
    DENGINE_TRY(fd, io::open_file(seg.path, O_RDWR | O_CREAT | O_EXCL));
    seg.fd = std::make_shared<io::Fd>(std::move(fd));
    if (s_->options.preallocate)
      DENGINE_TRYV(io::preallocate(seg.fd->get(), s_->options.segment_bytes, seg.path));
    DENGINE_TRYV(io::pwrite_all(seg.fd->get(), segment::encode_header(seq, base), 0, seg.path));
    DENGINE_TRYV(io::full_sync(seg.fd->get(), seg.path));
    return s_->dir.sync();
  }();
  if (!made) {
    ::unlink(seg.path.c_str());  // free the preallocated space; an unused segment is never needed
    return made.error();
  }
  return seg;
}

inline result<void> Engine::roll(LogIndex base) {
  auto& s = *s_;
  const auto& current = s.segments.back();
  DENGINE_TRYV(io::datasync(current.fd->get(), current.path));  // seal: only the newest may tear
  s.unsynced_bytes = 0;
  DENGINE_TRY(next, create_segment(s.meta.last_seq + 1, base));
  LogMeta meta = s.meta;
  meta.last_seq = next.seq;
  DENGINE_TRYV(write_meta(meta));  // before any record goes into the new segment
  std::unique_lock lock(s.state_mu);
  s.meta = meta;
  s.segments.push_back(std::move(next));
  return success();
}

inline result<void> Engine::flush_buffer() {
  auto& s = *s_;
  if (s.buffer.empty()) return success();
  auto& seg = s.segments.back();
  DENGINE_TRYV(io::pwrite_all(seg.fd->get(), s.buffer, seg.end, seg.path));
  seg.end += s.buffer.size();  // only the mutating thread reads `end`
  s.unsynced_bytes += s.buffer.size();
  s.buffer.clear();
  return success();
}

inline void Engine::remove_segments_before(std::uint64_t seq) {
  auto& s = *s_;
  std::vector<std::filesystem::path> doomed;
  {
    std::unique_lock lock(s.state_mu);
    while (!s.segments.empty() && s.segments.front().seq < seq) {
      doomed.push_back(s.segments.front().path);
      s.segments.pop_front();  // readers still holding its fd finish their read first
    }
  }
  // log.meta no longer names these files; a failure to remove one only leaves a leftover that the
  // next open removes, so it is logged, not returned.
  for (const auto& path : doomed) {
    if (auto removed = io::remove_file(path); !removed)
      detail::emit(s.options.log, fmt::format("could not remove {}: {}", path.string(),
                                              removed.error().message()));
  }
  if (!doomed.empty()) {
    if (auto synced = s.dir.sync(); !synced)
      detail::emit(s.options.log, fmt::format("could not sync {}: {}", s.dir.path.string(),
                                              synced.error().message()));
  }
}

// ---- StorageEngine
// -------------------------------------------------------------------------------

inline result<void> Engine::append(std::span<const Entry> batch) {
  auto& s = *s_;
  std::lock_guard write_lock(s.write_mu);
  DENGINE_TRYV(usable());
  DENGINE_TRYV(storage::check_append(batch, s.first(), s.last(),
                                     [&] { return "rawfile engine " + s.dir.path.string(); }));
  const LogIndex from = batch.front().index;
  for (std::size_t k = 0; k < batch.size(); ++k) {
    if (batch[k].data.size() > segment::max_payload_bytes - segment::entry_fixed_bytes)
      return error(errc::too_large,
                   fmt::format("rawfile append: entry {} has {} bytes, the limit is {}",
                               batch[k].index, batch[k].data.size(),
                               segment::max_payload_bytes - segment::entry_fixed_bytes));
  }

  s.buffer.clear();
  s.staged.clear();
  if (from <= s.last()) segment::append_truncate_record(s.buffer, from);
  auto written = [&]() -> result<void> {
    for (const Entry& e : batch) {
      const auto size = segment::entry_record_bytes(e);
      const auto used = s.segments.back().end + s.buffer.size();
      if (used + size > s.options.segment_bytes && used > segment::header_bytes) {
        DENGINE_TRYV(flush_buffer());
        DENGINE_TRYV(roll(e.index));  // the new segment's first entry is e
      }
      const auto& target = s.segments.back();
      s.staged.push_back({e.term, target.seq, target.end + s.buffer.size(),
                          static_cast<std::uint32_t>(segment::entry_fixed_bytes + e.data.size()),
                          e.type});
      segment::append_entry_record(s.buffer, e);
    }
    return flush_buffer();
  }();
  if (!written) return fail(written.error());
  // Publish the whole batch at once: a reader sees all of it or none of it.
  std::unique_lock lock(s.state_mu);
  s.entries.resize(from - s.first());
  s.entries.insert(s.entries.end(), s.staged.begin(), s.staged.end());
  return success();
}

inline result<void> Engine::sync() {
  auto& s = *s_;
  std::lock_guard write_lock(s.write_mu);
  DENGINE_TRYV(usable());
  if (s.unsynced_bytes == 0) return success();
  const auto& seg = s.segments.back();
  if (s.syncer) {
    s.syncer->submit(seg.fd, seg.path, s.unsynced_bytes);
  } else if (auto synced = io::datasync(seg.fd->get(), seg.path); !synced) {
    return fail(synced.error());
  }
  s.unsynced_bytes = 0;
  return success();
}

inline result<std::vector<Entry>> Engine::entries(LogIndex lo, LogIndex hi,
                                                  std::size_t max_bytes) const {
  struct Read {
    EntryLocation at;
    std::shared_ptr<io::Fd> fd;
    std::filesystem::path path;
  };
  std::vector<Read> reads;
  {
    const auto& s = *s_;
    std::shared_lock lock(s.state_mu);
    if (lo > hi)
      return error(errc::invalid_argument, fmt::format("rawfile entries: lo {} > hi {}", lo, hi));
    if (lo < s.first())
      return error(
          errc::compacted,
          fmt::format("rawfile entries: index {} is compacted (first index {})", lo, s.first()));
    if (hi > s.last() + 1)
      return error(errc::unavailable,
                   fmt::format("rawfile entries: hi {} is past last index {} + 1", hi, s.last()));
    std::size_t total = 0;
    for (LogIndex i = lo; i < hi; ++i) {
      const auto& at = s.entries[i - s.first()];
      const std::size_t size = at.payload - segment::entry_fixed_bytes + 24;  // == entry_size()
      if (!reads.empty() && total + size > max_bytes) break;
      total += size;
      const auto& seg = s.segment(at.seq);
      reads.push_back({at, seg.fd, seg.path});
    }
  }
  // Records are immutable once written (truncation appends, never overwrites), so reading them
  // after dropping the lock sees exactly the entries the index named.
  std::vector<Entry> out;
  out.reserve(reads.size());
  std::string buffer;
  for (std::size_t k = 0; k < reads.size();) {
    // One pread for a run of adjacent records of one segment.
    std::size_t run_end = k + 1;
    while (run_end < reads.size() && reads[run_end].at.seq == reads[k].at.seq &&
           reads[run_end].at.offset ==
               reads[run_end - 1].at.offset + segment::record_bytes(reads[run_end - 1].at.payload))
      ++run_end;
    const auto start = reads[k].at.offset;
    const auto& last = reads[run_end - 1].at;
    const auto bytes = last.offset + segment::frame_bytes + last.payload - start;
    buffer.resize(bytes);
    DENGINE_TRYV(io::pread_exact(reads[k].fd->get(), buffer.data(), bytes, start, reads[k].path));
    for (; k < run_end; ++k) {
      const auto& at = reads[k].at;
      auto frame = segment::read_frame(buffer, at.offset - start);
      auto record =
          frame.status == segment::FrameStatus::ok && frame.kind == segment::RecordKind::entry
              ? segment::decode_payload(frame.kind, frame.payload)
              : std::nullopt;
      const LogIndex expected = lo + out.size();
      if (!record || record->index != expected || record->term != at.term)
        return error(errc::storage_corrupt,
                     fmt::format("{} at offset {}: entry {} failed validation on read ({})",
                                 reads[k].path.string(), at.offset, expected,
                                 frame.problem.empty() ? "wrong record" : frame.problem));
      out.push_back(Entry{record->term, record->index, record->type, std::string(record->data)});
    }
  }
  return out;
}

inline result<Term> Engine::term(LogIndex i) const {
  const auto& s = *s_;
  std::shared_lock lock(s.state_mu);
  if (i < s.meta.snapshot.index)
    return error(errc::compacted,
                 fmt::format("rawfile term: index {} is compacted (snapshot index {})", i,
                             s.meta.snapshot.index));
  if (i > s.last())
    return error(errc::unavailable,
                 fmt::format("rawfile term: index {} is past last index {}", i, s.last()));
  if (i == s.meta.snapshot.index) return s.meta.snapshot.term;
  return s.entries[i - s.first()].term;
}

inline LogIndex Engine::first_index() const {
  std::shared_lock lock(s_->state_mu);
  return s_->first();
}

inline LogIndex Engine::last_index() const {
  std::shared_lock lock(s_->state_mu);
  return s_->last();
}

inline result<void> Engine::compact(const SnapshotMeta& meta) {
  auto& s = *s_;
  std::lock_guard write_lock(s.write_mu);
  DENGINE_TRYV(usable());
  if (meta.index < s.meta.snapshot.index)
    return error(errc::compacted,
                 fmt::format("rawfile compact: index {} is below the compaction point {}",
                             meta.index, s.meta.snapshot.index));
  if (meta.index > s.last())
    return error(errc::unavailable, fmt::format("rawfile compact: index {} is past last index {}",
                                                meta.index, s.last()));
  DENGINE_TRY(at, term(meta.index));
  if (at != meta.term)
    return error(errc::invalid_argument,
                 fmt::format("rawfile compact: term {} given for index {}, whose term is {}",
                             meta.term, meta.index, at));
  if (meta == s.meta.snapshot) return success();  // same point, same membership: nothing to record

  // Everything up to the compaction point must survive a crash before log.meta says it is there
  // (in MemFirst, bytes handed to the flusher may not have reached the disk yet either).
  if (s.unsynced_bytes > 0 || s.syncer) {
    const auto& seg = s.segments.back();
    if (auto synced = io::datasync(seg.fd->get(), seg.path); !synced) return fail(synced.error());
    s.unsynced_bytes = 0;
  }
  // Keep from the newest segment that starts at or below meta.index + 1: every entry after the
  // compaction point was appended in it or later.
  std::size_t keep = 0;
  for (std::size_t k = 0; k < s.segments.size(); ++k)
    if (s.segments[k].base <= meta.index + 1) keep = k;
  LogMeta next = s.meta;
  next.first_seq = s.segments[keep].seq;
  next.snapshot = meta;
  DENGINE_TRYV(write_meta(next));  // a failure leaves the old log.meta: nothing changed
  {
    std::unique_lock lock(s.state_mu);
    const auto dropped = meta.index - s.meta.snapshot.index;
    s.entries.erase(s.entries.begin(), s.entries.begin() + static_cast<std::ptrdiff_t>(dropped));
    s.meta = next;
  }
  remove_segments_before(next.first_seq);
  return success();
}

inline result<void> Engine::reset(const SnapshotMeta& meta) {
  auto& s = *s_;
  std::lock_guard write_lock(s.write_mu);
  DENGINE_TRYV(usable());
  // A log of one segment that holds no record and already starts where the reset log starts
  // (a fresh log bootstrapped with its first membership at index 0) only needs the new
  // compaction point: no second segment (and no second preallocation) for it.
  if (s.entries.empty() && s.segments.size() == 1 &&
      s.segments.back().end == segment::header_bytes && s.segments.back().base == meta.index + 1) {
    LogMeta next = s.meta;
    next.snapshot = meta;
    if (auto written = write_meta(next); !written) return fail(written.error());
    std::unique_lock lock(s.state_mu);
    s.meta = next;
    return success();
  }
  // The new segment exists (durably) before log.meta switches to it; until then the old log stands.
  auto fresh = create_segment(s.meta.last_seq + 1, meta.index + 1);
  if (!fresh) return fail(fresh.error());
  const LogMeta next{fresh.value().seq, fresh.value().seq, meta};
  if (auto written = write_meta(next); !written) return fail(written.error());
  {
    std::unique_lock lock(s.state_mu);
    s.meta = next;
    s.entries.clear();
    s.segments.push_back(std::move(fresh).value());
    s.unsynced_bytes = 0;
  }
  remove_segments_before(next.first_seq);
  return success();
}

inline result<void> Engine::save_hard_state(const HardState& hard_state) {
  auto& s = *s_;
  std::lock_guard write_lock(s.write_mu);
  // Not blocked by an earlier log failure: the file is independent, and a vote must be storable.
  DENGINE_TRYV(io::write_file_atomically(s.dir, hard_state_file, encode_hard_state(hard_state)));
  std::unique_lock lock(s.state_mu);
  s.hard_state = hard_state;
  return success();
}

inline result<RecoveredState> Engine::load() const {
  std::shared_lock lock(s_->state_mu);
  return RecoveredState{s_->hard_state, s_->meta.snapshot};
}

}  // namespace dengine::rawfile
