#pragma once
/// The applier role: applies committed entries to the StateMachine in batches, completes the
/// proposals waiting on them with the state machine's responses, runs reads once the applied
/// index reaches theirs, runs completions and notifications handed to it by the event loop, and
/// takes snapshots by log size at a consistent point (between two items of work).
///
/// Single-threaded object: called from one thread at a time (its own thread in the threaded
/// arrangement, the simulator's thread in the deterministic one). While the Node runs it is the
/// only user of the StateMachine, so a read query sees the state between two batches — never a
/// batch half-applied.
///
/// Invariant: entries reach the state machine in index order with no gap; entries at or below
/// the applied index (after a restore) are skipped, so nothing is applied twice.
///
/// Every entry handed here is committed, so a proposal the applier cannot answer (the state
/// machine failed, or a restore overtook its entry) fails with errc::outcome_unknown: it will
/// be applied by every replica, and by this one after a restart, with whatever result.
///
/// The snapshot trigger counts the bytes applied since the last snapshot, starting from what
/// the log held after it when the node opened (Recovered::applied_bytes_since_snapshot): a
/// node restarted more often than every snapshot_threshold_bytes still compacts its log.

#include <algorithm>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "dengine/core/error.hpp"
#include "dengine/node/clock.hpp"
#include "dengine/node/events.hpp"
#include "dengine/node/metrics.hpp"
#include "dengine/node/unique_function.hpp"
#include "dengine/node/work.hpp"
#include "dengine/storage/concepts.hpp"
#include "dengine/storage/snapshot_io.hpp"

namespace dengine::node {

template <StateMachine M, Clock C>
class Applier {
 public:
  using time_point = typename C::time_point;
  using Work = ApplyWork<M, time_point>;
  using response_type = typename M::response_type;

  /// `applied_term` is the term of the entry at sm.applied_index() (0 for index 0);
  /// `chunk_entries` is NodeConfig::apply_chunk_entries (0 = whole batches);
  /// `applied_bytes` the entry bytes applied since the snapshot at `last_snapshot` (at open).
  Applier(M& sm, C clock, NodeMetrics& metrics, const NodeCallbacks& callbacks,
          std::size_t snapshot_threshold_bytes, std::size_t chunk_entries, LogIndex last_snapshot,
          Term applied_term, std::size_t applied_bytes)
      : chunk_entries_(chunk_entries == 0 ? std::numeric_limits<std::size_t>::max()
                                          : chunk_entries),
        sm_(&sm),
        clock_(clock),
        metrics_(&metrics),
        callbacks_(&callbacks),
        threshold_(snapshot_threshold_bytes),
        bytes_since_snapshot_(applied_bytes),
        applied_term_(applied_term),
        last_snapshot_(last_snapshot) {}

  /// Processes `group` in order, then possibly takes a snapshot. After a state-machine failure
  /// every later item is failed (requests) or dropped (entries) and the failure is reported.
  ApplyReport process(std::vector<Work>& group) {
    ApplyReport report;
    for (Work& w : group) {
      std::visit([&](auto& item) { handle(item, report); }, w.item);
    }
    if (!failure_ && threshold_ > 0 && bytes_since_snapshot_ >= threshold_ &&
        sm_->applied_index() > last_snapshot_)
      report.snapshot = take_snapshot();
    report.applied = sm_->applied_index();
    report.waiting_reads = waiting_.size();
    report.failure = failure_;
    return report;
  }

  /// Fails every read still waiting for its index (the node is stopping).
  void fail_waiting(const error& e) {
    auto waiting = std::move(waiting_);
    waiting_.clear();
    for (auto& [index, w] : waiting) w.job.fail(e);
  }

  /// `f` runs on the applier's thread after the proposals of each applied chunk were
  /// completed (the threaded arrangement sends the requests they issued to the event loop).
  void set_after_completions(unique_function<void()> f) { after_completions_ = std::move(f); }

  /// The state machine's applied index.
  [[nodiscard]] LogIndex applied() const { return sm_->applied_index(); }

 private:
  struct Waiting {
    time_point deadline;
    ReadJob<M> job;
  };

  void handle(typename Work::Batch& b, ApplyReport& report) {
    ++report.batches_done;
    if (failure_) return fail_batch(b, *failure_);
    const LogIndex applied = sm_->applied_index();
    // Skip what the state machine already has (a restore overtook these entries).
    auto first = std::find_if(b.entries.begin(), b.entries.end(),
                              [&](const Entry& e) { return e.index > applied; });
    const std::span<const Entry> todo(first, b.entries.end());
    if (!todo.empty() && todo.front().index != applied + 1) {
      failure_ = error(errc::invalid_argument,
                       "applier: entry " + std::to_string(todo.front().index) +
                           " handed with the state machine at " + std::to_string(applied));
      return fail_batch(b, *failure_);
    }
    auto proposal = b.proposals.begin();  // sorted by index, like the entries
    // Proposals below the first entry to apply were covered by an installed snapshot.
    const LogIndex from = todo.empty() ? applied + 1 : todo.front().index;
    for (; proposal != b.proposals.end() && proposal->index < from; ++proposal) covered(*proposal);
    // Apply in chunks, completing each chunk's proposals before the next chunk: their clients'
    // next requests reach the event loop while the rest applies (a pipeline, not a convoy).
    for (std::size_t offset = 0; offset < todo.size(); offset += chunk_entries_) {
      const auto chunk = todo.subspan(offset, std::min(chunk_entries_, todo.size() - offset));
      responses_.clear();
      if (auto r = sm_->apply(chunk, responses_); !r) {
        failure_ = r.error();
        failure_->detail = "state machine apply: " + failure_->detail;
        return fail_batch(b, *failure_, proposal);
      }
      if (responses_.size() != chunk.size() || sm_->applied_index() != chunk.back().index) {
        failure_ =
            error(errc::invalid_argument,
                  "state machine apply: " + std::to_string(responses_.size()) +
                      " responses and applied index " + std::to_string(sm_->applied_index()) +
                      " after applying entries " + std::to_string(chunk.front().index) + ".." +
                      std::to_string(chunk.back().index));
        return fail_batch(b, *failure_, proposal);
      }
      for (const Entry& e : chunk) bytes_since_snapshot_ += entry_size(e);
      applied_term_ = chunk.back().term;
      metrics_->entries_applied.add(chunk.size());
      metrics_->applied_index.set(static_cast<std::int64_t>(sm_->applied_index()));
      const LogIndex lo = chunk.front().index;
      const auto now = clock_.now();
      for (; proposal != b.proposals.end() && proposal->index <= chunk.back().index; ++proposal) {
        metrics_->propose_latency.record(now - proposal->start);
        proposal->done(std::move(responses_[proposal->index - lo]));
      }
      if (after_completions_) after_completions_();
    }
    for (; proposal != b.proposals.end(); ++proposal) covered(*proposal);
    for (auto& [index, membership] : b.memberships) {
      if (index < from) continue;
      for (auto& cp : b.config_proposals)
        if (cp.index == index && cp.done) cp.done(membership);
      if (callbacks_->on_membership_change) callbacks_->on_membership_change({index, membership});
    }
    for (auto& cp : b.config_proposals)
      if (cp.done) cp.done(covered_error(cp.index));
    release_reads();
  }

  static void covered(typename Work::Proposal& p) { p.done(covered_error(p.index)); }

  /// A restore from the leader's snapshot overtook entry `index` here: some entry committed
  /// there, and this node no longer knows which.
  static error covered_error(LogIndex index) {
    return error::outcome_unknown(
        "entry " + std::to_string(index) + " was covered by a snapshot installed from the leader",
        error(errc::compacted, "which entry committed there is no longer known here"));
  }

  /// The error of a proposal whose committed entry at `index` this node could not apply.
  static error not_applied(LogIndex index, const error& failure) {
    return error::outcome_unknown(
        "entry " + std::to_string(index) + " was committed, then applying it here failed", failure);
  }

  void handle(typename Work::Restore& r, ApplyReport& /*report*/) {
    if (failure_ || !r.snapshot) return;
    const SnapshotMeta& meta = r.snapshot->meta;
    if (meta.index <= sm_->applied_index()) return;  // the state machine is already there
    StringSnapshotSource source(r.snapshot->data);
    auto restored = sm_->restore(source);
    if (!restored || restored.value() != meta.index) {
      failure_ =
          restored ? error(errc::storage_corrupt,
                           "snapshot image restores to index " + std::to_string(restored.value()) +
                               ", its meta says " + std::to_string(meta.index))
                   : restored.error();
      return;
    }
    applied_term_ = meta.term;
    last_snapshot_ = meta.index;
    bytes_since_snapshot_ = 0;
    metrics_->snapshots_installed.add();
    metrics_->applied_index.set(static_cast<std::int64_t>(meta.index));
    release_reads();
  }

  void handle(typename Work::Read& r, ApplyReport& /*report*/) {
    if (failure_) return r.job.fail(*failure_);
    if (r.index <= sm_->applied_index()) {
      metrics_->reads.add();
      r.job.run(*sm_);
      return;
    }
    waiting_.emplace(r.index, Waiting{r.deadline, std::move(r.job)});
  }

  void handle(typename Work::Run& r, ApplyReport& /*report*/) { r.fn(); }

  void handle(typename Work::Expire& x, ApplyReport& /*report*/) {
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      if (it->second.deadline <= x.now) {
        it->second.job.fail(error(errc::timeout, "read: the state machine did not reach index " +
                                                     std::to_string(it->first) + " in time"));
        it = waiting_.erase(it);
      } else {
        ++it;
      }
    }
  }

  /// Fails every request of the batch.
  void fail_batch(typename Work::Batch& b, const error& e) {
    fail_batch(b, e, b.proposals.begin());
  }
  /// Fails the batch's requests from `from_proposal` on (the earlier ones were completed).
  void fail_batch(typename Work::Batch& b, const error& e,
                  typename std::vector<typename Work::Proposal>::iterator from_proposal) {
    for (; from_proposal != b.proposals.end(); ++from_proposal)
      from_proposal->done(not_applied(from_proposal->index, e));
    for (auto& cp : b.config_proposals)
      if (cp.done) cp.done(not_applied(cp.index, e));
  }

  void release_reads() {
    const LogIndex applied = sm_->applied_index();
    while (!waiting_.empty() && waiting_.begin()->first <= applied) {
      auto node = waiting_.extract(waiting_.begin());
      metrics_->reads.add();
      node.mapped().job.run(*sm_);
    }
  }

  std::optional<SnapshotImage> take_snapshot() {
    StringSnapshotSink sink;
    auto index = sm_->snapshot(sink);
    // A failed snapshot is not fatal: the log keeps growing, and the next threshold retries.
    bytes_since_snapshot_ = 0;
    if (!index || index.value() != sm_->applied_index()) {
      metrics_->snapshots_failed.add();
      return std::nullopt;
    }
    last_snapshot_ = index.value();
    metrics_->snapshots_taken.add();
    return SnapshotImage{index.value(), applied_term_, std::move(sink.data)};
  }

  std::size_t chunk_entries_;
  unique_function<void()> after_completions_;
  M* sm_;
  C clock_;
  NodeMetrics* metrics_;
  const NodeCallbacks* callbacks_;
  std::size_t threshold_;
  std::size_t bytes_since_snapshot_;
  Term applied_term_;
  LogIndex last_snapshot_;
  std::vector<response_type> responses_;
  std::multimap<LogIndex, Waiting> waiting_;
  std::optional<error> failure_;
};

}  // namespace dengine::node
