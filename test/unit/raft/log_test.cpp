// Unit tests of raft/log.hpp: RaftLog's cursors (committed, persisted, unstable, applied), the
// follower's append and conflict rules, term lookup across the compaction point, snapshots.
#include <doctest/doctest.h>

#include <initializer_list>
#include <optional>
#include <vector>

#include "dengine/raft/log.hpp"

namespace dengine::raft {
namespace {

/// Entries snap+1, snap+2, ... with the given terms.
std::vector<Entry> run(LogIndex after, std::initializer_list<Term> terms) {
  std::vector<Entry> out;
  for (Term t : terms) out.push_back({t, ++after, EntryType::normal, {}});
  return out;
}

/// A recovered log: a snapshot at (snap_index, snap_term), then entries of `terms`.
RaftLog recovered(LogIndex snap_index, Term snap_term, std::initializer_list<Term> terms,
                  LogIndex committed = 0, LogIndex applied = 0) {
  RaftLog log;
  log.restore({snap_index, snap_term, {}}, run(snap_index, terms), committed, applied);
  return log;
}

/// Indexes of `entries`, to compare what was handed out.
std::vector<LogIndex> indexes(const std::vector<Entry>& entries) {
  std::vector<LogIndex> out;
  out.reserve(entries.size());
  for (const auto& e : entries) out.push_back(e.index);
  return out;
}

TEST_CASE("raft log: an empty log knows only index 0") {
  RaftLog log;
  CHECK(log.first_index() == 1);
  CHECK(log.last_index() == 0);
  CHECK(log.last_term() == 0);
  CHECK(log.term(0).value() == 0);
  CHECK(log.term(1).error() == errc::unavailable);
  CHECK(log.at(0) == nullptr);
  CHECK(log.at(1) == nullptr);
  CHECK_FALSE(log.has_unstable());
  CHECK_FALSE(log.has_committed_to_apply());
  CHECK(log.is_up_to_date(0, 0));
}

TEST_CASE("raft log: term lookup below, at and past the compaction point") {
  // Snapshot at 5 (term 2), entries 6..8 with terms 2, 3, 3.
  const RaftLog log = recovered(5, 2, {2, 3, 3});
  struct Row {
    LogIndex index;
    std::optional<Term> term;  // nullopt: an error
    errc error;
  };
  const Row rows[] = {
      {0, std::nullopt, errc::compacted},
      {4, std::nullopt, errc::compacted},
      {5, 2, {}},
      {6, 2, {}},
      {8, 3, {}},
      {9, std::nullopt, errc::unavailable},
  };
  for (const Row& row : rows) {
    CAPTURE(row.index);
    const auto t = log.term(row.index);
    if (row.term) {
      REQUIRE(t.has_value());
      CHECK(t.value() == *row.term);
      CHECK(log.term_or_zero(row.index) == *row.term);
      CHECK(log.match_term(row.index, *row.term));
      CHECK_FALSE(log.match_term(row.index, *row.term + 1));
    } else {
      REQUIRE(t.has_error());
      CHECK(t.error() == row.error);
      CHECK(log.term_or_zero(row.index) == 0);
      CHECK_FALSE(log.match_term(row.index, 0));
    }
  }
  CHECK(log.first_index() == 6);
  CHECK(log.last_index() == 8);
  CHECK(log.last_term() == 3);
  CHECK(log.at(5) == nullptr);  // the snapshot's index has a term but no entry
  REQUIRE(log.at(7) != nullptr);
  CHECK(log.at(7)->index == 7);
  CHECK(log.at(9) == nullptr);
}

TEST_CASE("raft log: restore keeps applied ≥ snapshot and committed within the log") {
  struct Row {
    LogIndex committed, applied;
    LogIndex want_committed, want_applied;
  };
  // Snapshot at 3, entries 4..6.
  const Row rows[] = {
      {5, 4, 5, 4},  // as given
      {9, 4, 6, 4},  // a commit index past the log is clamped to its end
      {0, 0, 3, 3},  // nothing below the snapshot: it is committed and applied
      {4, 5, 5, 5},  // applied entries are committed
  };
  for (const Row& row : rows) {
    CAPTURE(row.committed);
    CAPTURE(row.applied);
    const RaftLog log = recovered(3, 1, {1, 2, 2}, row.committed, row.applied);
    CHECK(log.committed() == row.want_committed);
    CHECK(log.applied_handed() == row.want_applied);
    CHECK(log.persisted() == 6);      // what was recovered is durable...
    CHECK_FALSE(log.has_unstable());  // ...and never handed out again
  }
}

TEST_CASE("raft log: a candidate is up to date by last term, then by last index") {
  const RaftLog log = recovered(0, 0, {1, 2, 2});  // last entry (3, term 2)
  struct Row {
    LogIndex index;
    Term term;
    bool want;
  } const rows[] = {
      {3, 2, true}, {4, 2, true}, {2, 2, false}, {1, 3, true}, {9, 1, false}, {0, 0, false},
  };
  for (const auto& row : rows) {
    CAPTURE(row.index);
    CAPTURE(row.term);
    CHECK(log.is_up_to_date(row.index, row.term) == row.want);
  }
}

TEST_CASE("raft log: find_conflict_by_term skips entries of larger terms") {
  // Indexes 1..10 with terms 1 1 1 4 4 5 5 6 6 6.
  const RaftLog log = recovered(0, 0, {1, 1, 1, 4, 4, 5, 5, 6, 6, 6});
  struct Row {
    LogIndex index;
    Term term;
    LogIndex want;
  } const rows[] = {
      {10, 6, 10}, {10, 5, 7}, {10, 4, 5}, {10, 3, 3},  {10, 0, 0},
      {7, 5, 7},   {6, 4, 5},  {4, 2, 3},  {15, 9, 10},  // past the end: from the last entry
  };
  for (const auto& row : rows) {
    CAPTURE(row.index);
    CAPTURE(row.term);
    CHECK(log.find_conflict_by_term(row.index, row.term) == row.want);
  }
  // Never below the compaction point: the snapshot's entries are committed.
  CHECK(recovered(4, 4, {5, 5, 6}).find_conflict_by_term(7, 2) == 4);
}

TEST_CASE("raft log: append_after skips what matches and replaces a conflicting suffix") {
  // Indexes 1..3 with terms 1 2 2, committed up to 1.
  struct Row {
    const char* name;
    LogIndex prev;
    std::vector<Entry> entries;
    LogIndex want_from;  // 0: nothing changed
    std::vector<Term> want_terms;
  };
  const Row rows[] = {
      {"no entries (a heartbeat-like append)", 3, {}, 0, {1, 2, 2}},
      {"all present", 1, run(1, {2, 2}), 0, {1, 2, 2}},
      {"a prefix present", 0, run(0, {1, 2}), 0, {1, 2, 2}},
      {"new entries after the end", 3, run(3, {3, 3}), 4, {1, 2, 2, 3, 3}},
      {"present, then new", 2, run(2, {2, 3}), 4, {1, 2, 2, 3}},
      {"a conflict truncates the rest", 1, run(1, {3}), 2, {1, 3}},
      {"a conflict in the middle of the batch", 1, run(1, {2, 4, 4}), 3, {1, 2, 4, 4}},
  };
  for (const Row& row : rows) {
    CAPTURE(row.name);
    RaftLog log = recovered(0, 0, {1, 2, 2}, 1);
    auto entries = row.entries;
    const auto from = log.append_after(row.prev, entries);
    REQUIRE(from.has_value());
    CHECK(from.value() == row.want_from);
    std::vector<Term> terms;
    for (const auto& e : log.entries()) terms.push_back(e.term);
    CHECK(terms == row.want_terms);
    CHECK(log.has_unstable() == (row.want_from != 0));
  }
}

TEST_CASE("raft log: append_after refuses to overwrite a committed entry or leave a gap") {
  RaftLog log = recovered(0, 0, {1, 2, 2}, 2);
  auto over_committed = run(1, {3});  // index 2 is committed with term 2
  CHECK(log.append_after(1, over_committed).has_error());
  auto gap = run(4, {3});  // index 5 after prev 2: index 3..4 would be missing
  CHECK(log.append_after(2, gap).has_error());
  CHECK(log.last_index() == 3);
  CHECK(log.last_term() == 2);
  // The entry past the commit index may still be replaced.
  auto ok = run(2, {3});
  CHECK(log.append_after(2, ok).value() == 3);
  CHECK(log.last_term() == 3);
}

TEST_CASE("raft log: truncation moves the unstable and persisted cursors back") {
  RaftLog log = recovered(0, 0, {1, 1});
  for (auto& e : run(2, {2, 2, 2})) log.append(e);
  CHECK(indexes(log.take_unstable()) == std::vector<LogIndex>{3, 4, 5});
  CHECK(log.mark_persisted(4, 2));
  log.truncate_from(9);  // past the end: nothing to drop
  CHECK(log.last_index() == 5);
  log.truncate_from(4);
  CHECK(log.last_index() == 3);
  CHECK(log.persisted() == 3);
  CHECK_FALSE(log.has_unstable());
  log.append({3, 4, EntryType::normal, {}});
  CHECK(indexes(log.take_unstable()) == std::vector<LogIndex>{4});  // the new entry only
  // A late report about the truncated entry 4 (term 2) is not about the entry now at 4.
  CHECK_FALSE(log.mark_persisted(4, 2));
  CHECK(log.mark_persisted(4, 3));
}

TEST_CASE("raft log: persistence reports count only for handed-out entries, moving forward") {
  RaftLog log;
  for (auto& e : run(0, {1, 1, 1})) log.append(e);
  CHECK_FALSE(log.mark_persisted(1, 1));  // not handed out yet
  CHECK(log.take_unstable().size() == 3);
  CHECK(log.take_unstable().empty());  // handed out once
  log.append({1, 4, EntryType::normal, {}});
  CHECK_FALSE(log.mark_persisted(4, 1));  // appended after the hand-out
  CHECK(log.mark_persisted(2, 1));
  CHECK_FALSE(log.mark_persisted(2, 1));  // not news
  CHECK_FALSE(log.mark_persisted(1, 1));  // behind
  CHECK(log.persisted() == 2);
}

TEST_CASE("raft log: commit never moves back nor past the end") {
  RaftLog log = recovered(0, 0, {1, 1, 1});
  log.commit_to(2);
  CHECK(log.committed() == 2);
  log.commit_to(1);
  CHECK(log.committed() == 2);
  log.commit_to(7);
  CHECK(log.committed() == 3);
}

TEST_CASE("raft log: committed entries reach the state machine once, only when persisted") {
  RaftLog log;
  for (auto& e : run(0, {1, 1, 1, 1})) log.append(e);
  log.commit_to(3);
  CHECK_FALSE(log.has_committed_to_apply());  // committed elsewhere, not durable here
  (void)log.take_unstable();
  REQUIRE(log.mark_persisted(2, 1));
  CHECK(log.has_committed_to_apply());
  CHECK(indexes(log.take_committed()) == std::vector<LogIndex>{1, 2});
  REQUIRE(log.mark_persisted(4, 1));
  CHECK(indexes(log.take_committed()) == std::vector<LogIndex>{3});  // not 4: uncommitted
  CHECK(log.take_committed().empty());
  CHECK(log.applied_handed() == 3);
  CHECK_FALSE(log.has_committed_to_apply());
}

TEST_CASE("raft log: slice is bounded by count and bytes, and returns at least one entry") {
  RaftLog log;
  for (auto& e : run(0, {1, 1, 1, 1})) log.append(e);  // 24 bytes each (no data)
  struct Row {
    LogIndex lo, hi;
    std::size_t max_bytes, max_count;
    std::vector<LogIndex> want;
  } const rows[] = {
      {1, 5, 1000, 100, {1, 2, 3, 4}},
      {2, 4, 1000, 100, {2, 3}},
      {3, 3, 1000, 100, {}},
      {1, 5, 48, 100, {1, 2}},  // exactly two entries' worth
      {1, 5, 47, 100, {1}},
      {1, 5, 0, 100, {1}},  // one entry even past the byte limit
      {1, 5, 1000, 3, {1, 2, 3}},
  };
  for (const auto& row : rows) {
    CAPTURE(row.lo);
    CAPTURE(row.max_bytes);
    CHECK(indexes(log.slice(row.lo, row.hi, row.max_bytes, row.max_count)) == row.want);
  }
}

TEST_CASE("raft log: compaction drops the prefix and keeps its last term") {
  RaftLog log = recovered(0, 0, {1, 2, 2, 3}, 3, 3);
  log.compact({2, 2, {}});
  CHECK(log.first_index() == 3);
  CHECK(log.last_index() == 4);
  CHECK(log.term(2).value() == 2);
  CHECK(log.term(1).error() == errc::compacted);
  CHECK(log.at(3)->term == 2);
  log.compact({4, 3, {}});  // everything: the log is only its snapshot
  CHECK(log.entries().empty());
  CHECK(log.last_index() == 4);
  CHECK(log.last_term() == 3);
}

TEST_CASE("raft log: an installed snapshot replaces the log; durable once reported") {
  // Committed up to 2; entries 3..4 are uncommitted, from a term that may be diverging.
  RaftLog log = recovered(0, 0, {1, 1, 2, 2}, 2, 1);
  REQUIRE(log.persisted() == 4);
  log.reset_to_snapshot({10, 3, {}});
  CHECK(log.entries().empty());
  CHECK(log.first_index() == 11);
  CHECK(log.committed() == 10);
  CHECK(log.applied_handed() == 10);
  CHECK(log.persisted() == 2);  // only the old committed prefix counts until the reset is durable
  CHECK_FALSE(log.has_committed_to_apply());
  log.mark_snapshot_persisted(9);  // not this snapshot
  CHECK(log.persisted() == 2);
  log.mark_snapshot_persisted(10);
  CHECK(log.persisted() == 10);
  log.append({3, 11, EntryType::normal, {}});
  CHECK(indexes(log.take_unstable()) == std::vector<LogIndex>{11});
}

}  // namespace
}  // namespace dengine::raft
