#pragma once
/// The core's in-memory view of the replicated log: the compaction point (snapshot meta) and the
/// entries after it, with three cursors.
///
///   snapshot.index < ... applied_handed ≤ persisted, committed ≤ last_index
///   unstable: entries at or after it have not yet been handed to the runtime for persistence.
///
/// Invariants:
///  - entries are contiguous from first_index() = snapshot.index + 1;
///  - committed never decreases; entries at or below committed are never truncated;
///  - persisted ≤ unstable - 1 (only handed-out entries can be durable);
///  - committed entries are handed to the state machine only once persisted locally.

#include <algorithm>
#include <cstddef>
#include <deque>
#include <vector>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"

namespace dengine::raft {

class RaftLog {
 public:
  RaftLog() = default;

  /// Starts from recovered state: everything given is durable.
  void restore(const SnapshotMeta& snapshot, std::vector<Entry> entries, LogIndex committed,
               LogIndex applied) {
    snapshot_ = snapshot;
    entries_.assign(std::make_move_iterator(entries.begin()),
                    std::make_move_iterator(entries.end()));
    persisted_ = last_index();
    unstable_ = last_index() + 1;
    applied_handed_ = std::max(applied, snapshot.index);
    committed_ = std::min(std::max({committed, applied_handed_, snapshot.index}), last_index());
  }

  [[nodiscard]] LogIndex first_index() const noexcept { return snapshot_.index + 1; }
  [[nodiscard]] LogIndex last_index() const noexcept { return snapshot_.index + entries_.size(); }
  [[nodiscard]] Term last_term() const noexcept {
    return entries_.empty() ? snapshot_.term : entries_.back().term;
  }
  [[nodiscard]] LogIndex committed() const noexcept { return committed_; }
  [[nodiscard]] LogIndex persisted() const noexcept { return persisted_; }
  [[nodiscard]] LogIndex applied_handed() const noexcept { return applied_handed_; }
  [[nodiscard]] const SnapshotMeta& snapshot() const noexcept { return snapshot_; }

  /// The term at `index`: known for [snapshot.index, last_index()].
  [[nodiscard]] result<Term> term(LogIndex index) const {
    if (index == snapshot_.index) return snapshot_.term;
    if (index < snapshot_.index) return error(errc::compacted);
    if (index > last_index()) return error(errc::unavailable);
    return entries_[index - first_index()].term;
  }
  /// The term at `index`, or 0 when unknown (compacted or past the end).
  /// (No error built: the lease checks call it on every tick and are noexcept.)
  [[nodiscard]] Term term_or_zero(LogIndex index) const noexcept {
    if (index == snapshot_.index) return snapshot_.term;
    if (index < snapshot_.index || index > last_index()) return 0;
    return entries_[index - first_index()].term;
  }
  [[nodiscard]] bool match_term(LogIndex index, Term t) const {
    auto actual = term(index);
    return actual && actual.value() == t;
  }
  [[nodiscard]] const Entry* at(LogIndex index) const noexcept {
    if (index < first_index() || index > last_index()) return nullptr;
    return &entries_[index - first_index()];
  }

  /// Raft's "at least as up-to-date" comparison of a candidate's last entry against ours.
  [[nodiscard]] bool is_up_to_date(LogIndex index, Term t) const noexcept {
    return t > last_term() || (t == last_term() && index >= last_index());
  }

  /// The largest index ≤ `index` whose term is ≤ `t` (fast backtracking: entries in between
  /// cannot match a log whose entry at `index` has term `t`).
  [[nodiscard]] LogIndex find_conflict_by_term(LogIndex index, Term t) const {
    index = std::min(index, last_index());
    while (index > snapshot_.index) {
      if (entries_[index - first_index()].term <= t) return index;
      --index;
    }
    return index;
  }

  /// Appends at the end (leader). Precondition: e.index == last_index() + 1.
  void append(Entry e) { entries_.push_back(std::move(e)); }

  /// Follower side: appends `entries` that follow (prev_index, prev_term), which must match.
  /// Returns the first index that was replaced or added (0 if nothing changed), or an error if
  /// the leader asked to overwrite a committed entry (a protocol violation).
  result<LogIndex> append_after(LogIndex prev_index, std::vector<Entry>& entries) {
    std::size_t i = 0;
    // Skip entries we already have (same index and term ⇒ same entry, by log matching).
    while (i < entries.size()) {
      const auto idx = entries[i].index;
      if (idx > last_index()) break;
      if (idx > snapshot_.index && term_or_zero(idx) != entries[i].term) break;
      ++i;
    }
    if (i == entries.size()) return LogIndex{0};
    const LogIndex from = entries[i].index;
    if (from != prev_index + 1 + i)
      return error(errc::invalid_argument, "append: entries are not contiguous");
    if (from <= committed_)
      return error(errc::invalid_argument, "append would overwrite a committed entry");
    truncate_from(from);
    for (; i < entries.size(); ++i) entries_.push_back(std::move(entries[i]));
    return from;
  }

  /// Drops entries at or after `index` (never committed ones: the caller checked).
  void truncate_from(LogIndex index) {
    if (index > last_index()) return;
    entries_.resize(index - first_index());
    unstable_ = std::min(unstable_, index);
    persisted_ = std::min(persisted_, index - 1);
  }

  /// Copies entries in [lo, hi) up to max_bytes (at least one if lo < hi).
  /// Precondition: first_index() ≤ lo ≤ hi ≤ last_index() + 1.
  [[nodiscard]] std::vector<Entry> slice(LogIndex lo, LogIndex hi, std::size_t max_bytes,
                                         std::size_t max_count) const {
    std::vector<Entry> out;
    std::size_t bytes = 0;
    for (LogIndex i = lo; i < hi && out.size() < max_count; ++i) {
      const Entry& e = entries_[i - first_index()];
      bytes += entry_size(e);
      if (!out.empty() && bytes > max_bytes) break;
      out.push_back(e);
    }
    return out;
  }

  void commit_to(LogIndex index) {
    if (index > committed_) committed_ = std::min(index, last_index());
  }

  /// Entries not yet handed out for persistence; marks them handed out.
  std::vector<Entry> take_unstable() {
    std::vector<Entry> out;
    if (unstable_ <= last_index()) {
      out.reserve(last_index() - unstable_ + 1);
      for (LogIndex i = unstable_; i <= last_index(); ++i)
        out.push_back(entries_[i - first_index()]);
      unstable_ = last_index() + 1;
    }
    return out;
  }
  [[nodiscard]] bool has_unstable() const noexcept { return unstable_ <= last_index(); }

  /// The runtime made entries up to `index` durable; `t` guards against a report about
  /// entries that were truncated and replaced since they were handed out.
  bool mark_persisted(LogIndex index, Term t) {
    if (index < unstable_ && index > persisted_ && match_term(index, t)) {
      persisted_ = index;
      return true;
    }
    return false;
  }

  /// Committed, locally durable entries not yet handed to the state machine; marks them handed.
  std::vector<Entry> take_committed() {
    std::vector<Entry> out;
    const LogIndex hi = std::min(committed_, persisted_);
    if (hi > applied_handed_) {
      out.reserve(hi - applied_handed_);
      for (LogIndex i = applied_handed_ + 1; i <= hi; ++i)
        out.push_back(entries_[i - first_index()]);
      applied_handed_ = hi;
    }
    return out;
  }
  [[nodiscard]] bool has_committed_to_apply() const noexcept {
    return std::min(committed_, persisted_) > applied_handed_;
  }

  /// Drops the prefix up to meta.index (covered by a snapshot the state machine has taken).
  void compact(const SnapshotMeta& meta) {
    const LogIndex n = meta.index - snapshot_.index;
    entries_.erase(entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(n));
    snapshot_ = meta;
  }

  /// Replaces the whole log with an installed snapshot (not yet persisted).
  void reset_to_snapshot(const SnapshotMeta& meta) {
    // Until the reset is durable, the durable log is still the old one, whose entries past the
    // old commit index may be from a diverging term: only the committed prefix may count as
    // persisted (it caps the durable commit index). on_snapshot_persisted lifts it to meta.index.
    persisted_ = std::min(persisted_, committed_);
    entries_.clear();
    snapshot_ = meta;
    committed_ = meta.index;
    applied_handed_ = meta.index;
    unstable_ = meta.index + 1;
  }
  void mark_snapshot_persisted(LogIndex index) {
    if (index == snapshot_.index) persisted_ = std::max(persisted_, index);
  }

  [[nodiscard]] const std::deque<Entry>& entries() const noexcept { return entries_; }

 private:
  SnapshotMeta snapshot_;
  std::deque<Entry> entries_;
  LogIndex committed_ = 0;
  LogIndex persisted_ = 0;
  LogIndex unstable_ = 1;
  LogIndex applied_handed_ = 0;
};

}  // namespace dengine::raft
