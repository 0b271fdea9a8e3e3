#pragma once
/// dengine::memory::Engine — an in-memory StorageEngine that models what a disk would keep.
///
/// It holds two images of the log: the *live* image (what reads see) and the *durable* image
/// (what a crash leaves). `sync()` copies the live image's changes into the durable one; the
/// test-only `crash()` throws the live image away and restarts from the durable one. This lets the
/// simulator and unit tests lose exactly what a real engine may lose, and nothing more.
///
/// What survives crash(), following the StorageEngine contract in storage/concepts.hpp:
/// - appended entries and the truncations appends cause: only once sync() returned;
/// - reset(meta): only once sync() returned (the runtime syncs after persisting a snapshot);
/// - compact(meta): on return (the contract says "durably and atomically");
/// - save_hard_state(hs): on return.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <mutex>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/storage/append_check.hpp"
#include "dengine/storage/concepts.hpp"

namespace dengine::memory {

/// Operation counts, for tests that check batching (e.g. one sync per group of appends).
struct EngineCounters {
  std::uint64_t appends = 0;           ///< successful append() calls
  std::uint64_t syncs = 0;             ///< successful sync() calls
  std::uint64_t hard_state_saves = 0;  ///< successful save_hard_state() calls
  std::uint64_t compactions = 0;       ///< successful compact() calls
  std::uint64_t resets = 0;            ///< successful reset() calls
  std::uint64_t crashes = 0;           ///< crash() calls
};

/// An in-memory Raft log and hard state with a durable/live split (see the file comment).
/// Thread-safe: every member locks one mutex, so a log writer thread may append while another
/// thread reads entries.
class Engine {
 public:
  /// Every operation is a memory copy that never waits for a disk: with a memory snapshot store
  /// the threaded runtime persists on its event loop instead of a log-writer thread
  /// (node/log_writer.hpp, storage_in_memory).
  static constexpr bool in_memory = true;
  /// A fresh, empty engine: first_index() == 1, last_index() == 0, zero hard state.
  Engine() = default;

  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  /// Moves the whole state (both images, counters); `other` is left empty.
  Engine(Engine&& other) noexcept {
    std::lock_guard lock(other.mutex_);
    move_from(other);
  }
  /// Moves the whole state (both images, counters); `other` is left empty.
  Engine& operator=(Engine&& other) noexcept {
    if (this != &other) {
      std::scoped_lock lock(mutex_, other.mutex_);
      move_from(other);
    }
    return *this;
  }
  ~Engine() = default;

  // ---- StorageEngine -------------------------------------------------------------------------

  /// Appends a non-empty contiguous batch starting in [first_index(), last_index() + 1],
  /// replacing every existing entry at or after its first index. Not durable until sync().
  /// A batch breaking those rules fails with invalid_argument and changes nothing.
  result<void> append(std::span<const Entry> batch) {
    std::lock_guard lock(mutex_);
    DENGINE_TRYV(storage::check_append(batch, live_.first_index(), live_.last_index(),
                                       [] { return "memory engine"; }));
    const LogIndex from = batch.front().index;
    live_.truncate_from(from);
    live_.entries.insert(live_.entries.end(), batch.begin(), batch.end());
    dirty_from_ = std::min(dirty_from_, from);
    ++counters_.appends;
    return success();
  }

  /// Makes every append, truncation and reset since the previous sync durable.
  result<void> sync() {
    std::lock_guard lock(mutex_);
    sync_locked();
    ++counters_.syncs;
    return success();
  }

  /// Entries in [lo, hi): at least one when lo < hi, then as many as fit in max_bytes (measured
  /// with entry_size()). lo > hi → invalid_argument; lo < first_index() → compacted;
  /// hi > last_index() + 1 → unavailable.
  [[nodiscard]] result<std::vector<Entry>> entries(LogIndex lo, LogIndex hi,
                                                   std::size_t max_bytes) const {
    std::lock_guard lock(mutex_);
    if (lo > hi)
      return error(errc::invalid_argument, "memory engine: entries range [" + std::to_string(lo) +
                                               ", " + std::to_string(hi) + ") has lo > hi");
    const LogIndex first = live_.first_index();
    const LogIndex last = live_.last_index();
    if (lo < first)
      return error(errc::compacted, "memory engine: entries from index " + std::to_string(lo) +
                                        " below first index " + std::to_string(first));
    if (hi > last + 1)
      return error(errc::unavailable, "memory engine: entries up to index " +
                                          std::to_string(hi - 1) + " past last index " +
                                          std::to_string(last));
    std::vector<Entry> out;
    std::size_t total = 0;
    for (LogIndex i = lo; i < hi; ++i) {
      const Entry& e = live_.at(i);
      const std::size_t size = entry_size(e);
      // The first entry is always returned, so a caller bounded by bytes still makes progress.
      if (!out.empty() && total + size > max_bytes) break;
      total += size;
      out.push_back(e);
    }
    return out;
  }

  /// Term of the entry at i, for i in [snapshot index, last_index()]; the snapshot index answers
  /// with the snapshot's term. Below → compacted; above → unavailable.
  [[nodiscard]] result<Term> term(LogIndex i) const {
    std::lock_guard lock(mutex_);
    return live_.term(i);
  }

  /// Index of the first entry in the log (snapshot index + 1).
  [[nodiscard]] LogIndex first_index() const {
    std::lock_guard lock(mutex_);
    return live_.first_index();
  }

  /// Index of the last entry in the log (the snapshot index when the log is empty).
  [[nodiscard]] LogIndex last_index() const {
    std::lock_guard lock(mutex_);
    return live_.last_index();
  }

  /// Drops entries up to meta.index and records meta as the compaction point, durably.
  /// meta.index < snapshot index → compacted; meta.index > last_index() → unavailable;
  /// meta.term different from term(meta.index) → invalid_argument. Nothing changes on failure.
  result<void> compact(const SnapshotMeta& meta) {
    std::lock_guard lock(mutex_);
    auto t = live_.term(meta.index);
    if (!t) {
      auto e = std::move(t).error();
      e.detail = "memory engine: compact to index " + std::to_string(meta.index) + ": " + e.detail;
      return e;
    }
    if (t.value() != meta.term)
      return error(errc::invalid_argument,
                   "memory engine: compact to index " + std::to_string(meta.index) + " with term " +
                       std::to_string(meta.term) + ", but the entry there has term " +
                       std::to_string(t.value()));
    // A compaction recorded durably must not sit on a durable image from before an unsynced
    // reset (two different log histories); make the reset durable first.
    if (reset_pending_) sync_locked();
    live_.compact(meta);
    durable_.compact(meta);
    ++counters_.compactions;
    return success();
  }

  /// Discards the whole log and restarts it after meta (an installed snapshot): afterwards
  /// first_index() == meta.index + 1, last_index() == meta.index. Durable after the next sync().
  result<void> reset(const SnapshotMeta& meta) {
    std::lock_guard lock(mutex_);
    live_.entries.clear();
    live_.snapshot = meta;
    reset_pending_ = true;
    dirty_from_ = clean;
    ++counters_.resets;
    return success();
  }

  /// Records the hard state; durable (survives crash()) on return.
  result<void> save_hard_state(const HardState& hard_state) {
    std::lock_guard lock(mutex_);
    hard_state_ = hard_state;
    ++counters_.hard_state_saves;
    return success();
  }

  /// The hard state and the compaction point. Right after construction or crash() this is
  /// exactly what was durable.
  [[nodiscard]] result<RecoveredState> load() {
    std::lock_guard lock(mutex_);
    return RecoveredState{hard_state_, live_.snapshot};
  }

  // ---- Test hooks ----------------------------------------------------------------------------

  /// Simulates a crash and restart: everything not yet durable is lost (appends, truncations and
  /// resets since the last sync); the hard state and compactions are kept.
  void crash() {
    std::lock_guard lock(mutex_);
    live_ = durable_;
    dirty_from_ = clean;
    reset_pending_ = false;
    ++counters_.crashes;
  }

  /// True when crash() would lose something (an append, truncation or reset since the last sync).
  [[nodiscard]] bool has_unsynced() const {
    std::lock_guard lock(mutex_);
    return reset_pending_ || dirty_from_ != clean;
  }

  /// Last index of the durable image: what last_index() would be after crash().
  [[nodiscard]] LogIndex durable_last_index() const {
    std::lock_guard lock(mutex_);
    return durable_.last_index();
  }

  /// The hard state last saved (it is always durable).
  [[nodiscard]] HardState hard_state() const {
    std::lock_guard lock(mutex_);
    return hard_state_;
  }

  /// Operation counts since construction.
  [[nodiscard]] EngineCounters counters() const {
    std::lock_guard lock(mutex_);
    return counters_;
  }
  /// Shorthand for counters().syncs.
  [[nodiscard]] std::uint64_t sync_count() const { return counters().syncs; }
  /// Shorthand for counters().appends.
  [[nodiscard]] std::uint64_t append_count() const { return counters().appends; }
  /// Shorthand for counters().hard_state_saves.
  [[nodiscard]] std::uint64_t hard_state_save_count() const { return counters().hard_state_saves; }

 private:
  /// One log image. Invariant: entries[k].index == snapshot.index + 1 + k.
  struct Image {
    SnapshotMeta snapshot;
    std::deque<Entry> entries;

    [[nodiscard]] LogIndex first_index() const noexcept { return snapshot.index + 1; }
    [[nodiscard]] LogIndex last_index() const noexcept { return snapshot.index + entries.size(); }
    /// Precondition: i in [first_index(), last_index()].
    [[nodiscard]] const Entry& at(LogIndex i) const {
      return entries[static_cast<std::size_t>(i - first_index())];
    }
    [[nodiscard]] result<Term> term(LogIndex i) const {
      if (i < snapshot.index)
        return error(errc::compacted, "memory engine: term at index " + std::to_string(i) +
                                          " below the snapshot index " +
                                          std::to_string(snapshot.index));
      if (i > last_index())
        return error(errc::unavailable, "memory engine: term at index " + std::to_string(i) +
                                            " past last index " + std::to_string(last_index()));
      if (i == snapshot.index) return snapshot.term;
      return at(i).term;
    }
    /// Removes every entry at or after `from` (no-op past the end).
    void truncate_from(LogIndex from) {
      if (from <= snapshot.index) {
        entries.clear();
      } else if (from <= last_index()) {
        entries.resize(static_cast<std::size_t>(from - first_index()));
      }
    }
    /// Drops entries up to meta.index and records meta. If the image ends before meta.index,
    /// it becomes empty and starts after meta.index.
    void compact(const SnapshotMeta& meta) {
      if (meta.index < snapshot.index) return;  // an older point than this image already has
      const auto drop = std::min<LogIndex>(entries.size(), meta.index - snapshot.index);
      entries.erase(entries.begin(), entries.begin() + static_cast<std::ptrdiff_t>(drop));
      snapshot = meta;
    }
  };

  static constexpr LogIndex clean = std::numeric_limits<LogIndex>::max();

  void sync_locked() {
    if (reset_pending_) {
      durable_ = live_;
    } else if (dirty_from_ != clean) {
      // Invariant: the live and durable images agree below dirty_from_, and (no reset pending)
      // share the snapshot, so only the suffix from dirty_from_ needs copying.
      const LogIndex from = std::max(dirty_from_, durable_.first_index());
      durable_.truncate_from(from);
      for (LogIndex i = std::max(from, live_.first_index()); i <= live_.last_index(); ++i)
        durable_.entries.push_back(live_.at(i));
    }
    reset_pending_ = false;
    dirty_from_ = clean;
  }

  void move_from(Engine& other) noexcept {
    live_ = std::move(other.live_);
    durable_ = std::move(other.durable_);
    hard_state_ = other.hard_state_;
    dirty_from_ = other.dirty_from_;
    reset_pending_ = other.reset_pending_;
    counters_ = other.counters_;
    other.live_ = Image{};
    other.durable_ = Image{};
    other.hard_state_ = HardState{};
    other.dirty_from_ = clean;
    other.reset_pending_ = false;
    other.counters_ = EngineCounters{};
  }

  mutable std::mutex mutex_;
  Image live_;
  Image durable_;
  HardState hard_state_;         // always durable (save_hard_state is durable on return)
  LogIndex dirty_from_ = clean;  // lowest index appended since the last sync, or `clean`
  bool reset_pending_ = false;   // reset() since the last sync: the durable image is stale
  EngineCounters counters_;
};

static_assert(dengine::StorageEngine<Engine>);

}  // namespace dengine::memory
