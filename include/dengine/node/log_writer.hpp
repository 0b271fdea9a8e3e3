#pragma once
/// The log writer role: persists what the event loop hands it (PersistWork), in FIFO order, and
/// reports how far it got. One sync() covers a whole group of writes (group commit): while a
/// sync runs, new work queues up and goes into the next group.
///
/// Single-threaded object: the arrangement calls it from one thread at a time (its own thread in
/// the threaded arrangement, the simulator's thread in the deterministic one). It is the only
/// user of the StorageEngine and of the snapshot store's save() while the Node runs. Both are
/// template parameters (S: a StorageEngine, SS: a dengine::SnapshotStore), called directly.
///
/// Persistence modes (docs/persistence.md):
///  - DiskFirst: a group is reported only after its sync() returned.
///  - MemFirst: a group is reported once appended; sync_pending() then syncs in the background
///    (the arrangement calls it when no work is waiting). Snapshot installs are synced before
///    they are reported in both modes, and the hard state is durable on save in both modes.

#include <string>
#include <utility>
#include <vector>

#include "dengine/core/config.hpp"
#include "dengine/core/error.hpp"
#include "dengine/node/clock.hpp"
#include "dengine/node/metrics.hpp"
#include "dengine/node/work.hpp"
#include "dengine/storage/concepts.hpp"

namespace dengine::node {

/// True for a StorageEngine that declares `static constexpr bool in_memory = true`: its
/// operations are memory copies that never wait for a disk (memory::Engine).
template <class S>
inline constexpr bool storage_in_memory = requires {
  requires S::in_memory;
};

template <StorageEngine S, dengine::SnapshotStore SS, Clock C>
class LogWriter {
 public:
  /// Writes to `storage` and `snapshots` (both must outlive the writer).
  LogWriter(S& storage, SS& snapshots, PersistenceMode mode, C clock, NodeMetrics& metrics)
      : storage_(&storage),
        snapshots_(&snapshots),
        mode_(mode),
        clock_(clock),
        metrics_(&metrics) {}

  /// Persists `group` in order and reports. After a storage failure every later call reports
  /// the same failure and writes nothing.
  PersistReport process(std::vector<PersistWork>& group) {
    PersistReport report;
    report.done_seq = done_seq_;
    if (failure_) {
      report.failure = failure_;
      return report;
    }
    bool must_sync = false;
    for (PersistWork& w : group) {
      auto r = w.kind == PersistWork::Kind::write ? write(w, must_sync) : compact(w);
      if (!r) return fail(std::move(r).error(), report);
      if (w.kind == PersistWork::Kind::write) done_seq_ = w.seq;
    }
    if (must_sync || (mode_ == PersistenceMode::disk_first && unsynced_)) {
      if (auto r = sync(); !r) return fail(std::move(r).error(), report);
    }
    metrics_->persist_batches.add(group.size());
    report.done_seq = done_seq_;
    return report;
  }

  /// True when no operation of this writer can block on a disk: the storage and the snapshot
  /// store both keep everything in memory. Its work may then run on the event loop.
  [[nodiscard]] bool never_blocks() const noexcept {
    return storage_in_memory<S> && snapshots_->in_memory();
  }

  /// True when appends are waiting for a sync (MemFirst between groups).
  [[nodiscard]] bool sync_pending() const noexcept { return unsynced_ && !failure_; }

  /// Makes everything appended durable (one storage sync, measured).
  result<void> sync() {
    if (failure_) return *failure_;
    const auto start = clock_.now();
    if (auto r = storage_->sync(); !r) {
      failure_ = context(r.error(), "syncing the log");
      return *failure_;
    }
    metrics_->fsyncs.add();
    metrics_->fsync_latency.record(clock_.now() - start);
    unsynced_ = false;
    return success();
  }

  /// The failure that stopped the writer, if any.
  [[nodiscard]] const std::optional<error>& failure() const noexcept { return failure_; }

 private:
  result<void> write(PersistWork& w, bool& must_sync) {
    if (w.snapshot) {
      const std::string at = " at index " + std::to_string(w.snapshot->meta.index);
      // The image first: a crash between the two leaves an image ahead of the log, which
      // Node::open repairs; the other order could leave a reset log with no image.
      if (auto r = snapshots_->save(w.snapshot); !r)
        return context(r.error(), "saving the snapshot image" + at);
      if (auto r = storage_->reset(w.snapshot->meta); !r)
        return context(r.error(), "resetting the log to the snapshot" + at);
      must_sync = true;  // a reset is durable only after sync (both modes)
      unsynced_ = true;
    }
    if (!w.entries.empty()) {
      if (auto r = storage_->append(w.entries); !r)
        return context(r.error(), "appending entries " + std::to_string(w.entries.front().index) +
                                      ".." + std::to_string(w.entries.back().index));
      unsynced_ = true;
    }
    if (w.hard_state) {
      if (auto r = storage_->save_hard_state(*w.hard_state); !r)
        return context(r.error(),
                       "saving the hard state (term " + std::to_string(w.hard_state->term) + ")");
    }
    return success();
  }

  result<void> compact(PersistWork& w) {
    if (!w.snapshot) return error(errc::invalid_argument, "log writer: compact without a snapshot");
    const std::string at = " at index " + std::to_string(w.snapshot->meta.index);
    if (auto r = snapshots_->save(w.snapshot); !r)
      return context(r.error(), "saving the snapshot image" + at);
    if (auto r = storage_->compact(w.snapshot->meta); !r)
      return context(r.error(), "compacting the log through the snapshot" + at);
    return success();
  }

  /// `e` with "log writer: <what>: " before its detail, so that the fatal error says which
  /// operation failed as well as where (the storage's own detail names the file).
  static error context(error e, const std::string& what) {
    e.detail = "log writer: " + what + (e.detail.empty() ? "" : ": " + e.detail);
    return e;
  }

  PersistReport fail(error e, PersistReport report) {
    failure_ = e;
    report.failure = std::move(e);
    return report;
  }

  S* storage_;
  SS* snapshots_;
  PersistenceMode mode_;
  C clock_;
  NodeMetrics* metrics_;
  std::uint64_t done_seq_ = 0;
  bool unsynced_ = false;
  std::optional<error> failure_;
};

}  // namespace dengine::node
