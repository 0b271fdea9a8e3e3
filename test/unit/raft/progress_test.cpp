// Unit tests of raft/progress.hpp: the in-flight window (count and bytes) and a follower's
// replication state (probe, replicate, snapshot), as the leader tracks it.
#include <doctest/doctest.h>

#include <vector>

#include "dengine/raft/progress.hpp"

namespace dengine::raft {
namespace {

using State = Progress::State;

// ---- Inflights ----

TEST_CASE("inflights: full at the message limit; acknowledgements free the oldest") {
  Inflights in(3, 1000);
  CHECK_FALSE(in.full());
  in.add(2, 10);
  in.add(5, 10);
  CHECK_FALSE(in.full());
  in.add(9, 10);
  CHECK(in.full());
  CHECK(in.count() == 3);
  in.free_up_to(1);  // below the first message: nothing acknowledged
  CHECK(in.count() == 3);
  in.free_up_to(6);  // frees 2 and 5 (5 ≤ 6), keeps 9
  CHECK(in.count() == 1);
  CHECK_FALSE(in.full());
  in.free_up_to(9);  // the boundary is inclusive
  CHECK(in.count() == 0);
  in.free_up_to(100);  // freeing an empty window is harmless
  CHECK(in.count() == 0);
}

TEST_CASE("inflights: full at the byte limit, and freed bytes count again") {
  Inflights in(100, 50);
  in.add(1, 20);
  in.add(2, 29);
  CHECK_FALSE(in.full());  // 49 bytes
  in.add(3, 1);
  CHECK(in.full());  // 50 bytes
  in.free_up_to(1);
  CHECK_FALSE(in.full());  // 30 bytes
  in.add(4, 100);          // one message may exceed the limit on its own
  CHECK(in.full());
  in.free_up_to(3);
  CHECK(in.full());  // the large one is still out
  in.free_up_to(4);
  CHECK_FALSE(in.full());
}

TEST_CASE("inflights: free_first_one lets one message through; reset forgets all") {
  Inflights in(2, 1000);
  in.free_first_one();  // empty: nothing to free
  CHECK(in.count() == 0);
  in.add(3, 600);
  in.add(7, 600);
  CHECK(in.full());
  in.free_first_one();
  CHECK(in.count() == 1);
  CHECK_FALSE(in.full());
  in.add(8, 10);
  in.reset();
  CHECK(in.count() == 0);
  CHECK_FALSE(in.full());
  // The byte count was reset too: 999 new bytes alone do not fill the window.
  in.add(9, 999);
  CHECK_FALSE(in.full());
}

TEST_CASE("inflights: a long run of adds and frees keeps count and bytes exact") {
  // etcd-raft's window is a ring buffer that wraps; whatever the storage, the accounting must
  // stay exact over many more messages than the window holds.
  Inflights in(4, 32);  // four messages of 8 bytes fill either limit
  LogIndex last = 0;
  for (int round = 0; round < 1000; ++round) {
    while (!in.full()) in.add(++last, 8);
    REQUIRE(in.count() == 4);
    in.free_up_to(last - 2);  // frees two
    REQUIRE(in.count() == 2);
    REQUIRE_FALSE(in.full());
  }
  in.free_up_to(last);
  CHECK(in.count() == 0);
  for (int i = 0; i < 3; ++i) in.add(++last, 8);
  CHECK_FALSE(in.full());  // 24 of 32 bytes: no byte left behind by the earlier frees
}

// ---- Progress ----

Progress progress(State state, LogIndex match, LogIndex next) {
  Progress p(next, 2, 1000);
  p.match = match;
  if (state == State::replicate) p.become_replicate();
  if (state == State::snapshot) p.become_snapshot(next, 0);
  p.next = next;
  return p;
}

TEST_CASE("progress: which states are paused") {
  Progress p(1, 2, 1000);
  CHECK(p.state == State::probe);
  CHECK_FALSE(p.paused());
  p.probe_sent = true;  // probe: one append at a time
  CHECK(p.paused());
  p.become_replicate();
  CHECK_FALSE(p.paused());  // probe_sent is cleared
  p.inflights.add(1, 10);
  CHECK_FALSE(p.paused());
  p.inflights.add(2, 10);
  CHECK(p.paused());  // replicate: the window is full
  p.become_snapshot(5, 0);
  CHECK(p.paused());  // snapshot: always
  CHECK(p.inflights.count() == 0);
}

TEST_CASE("progress: state transitions set next and clear the window") {
  SUBCASE("probe to replicate: resume right after match") {
    Progress p = progress(State::probe, 4, 9);
    p.probe_sent = true;
    p.inflights.add(8, 10);
    p.become_replicate();
    CHECK(p.state == State::replicate);
    CHECK(p.next == 5);
    CHECK_FALSE(p.probe_sent);
    CHECK(p.inflights.count() == 0);
  }
  SUBCASE("replicate to probe: resume right after match") {
    Progress p = progress(State::replicate, 4, 9);
    p.inflights.add(8, 10);
    p.become_probe();
    CHECK(p.state == State::probe);
    CHECK(p.next == 5);
    CHECK(p.inflights.count() == 0);
  }
  SUBCASE("snapshot to probe: resume after the snapshot when it is ahead of match") {
    Progress p = progress(State::probe, 1, 2);
    p.become_snapshot(10, 42);
    CHECK(p.pending_snapshot == 10);
    CHECK(p.snapshot_sent_at == 42);
    p.become_probe();
    CHECK(p.state == State::probe);
    CHECK(p.next == 11);
    CHECK(p.pending_snapshot == 0);
  }
  SUBCASE("snapshot to probe: resume after match when it passed the snapshot") {
    Progress p = progress(State::probe, 1, 2);
    p.become_snapshot(10, 0);
    p.maybe_update(12);
    p.become_probe();
    CHECK(p.next == 13);
  }
}

TEST_CASE("progress: maybe_update takes news only, and never moves next back") {
  struct Row {
    LogIndex ack;
    bool want_news;
    LogIndex want_match, want_next;
  } const rows[] = {
      {3, false, 5, 8},  // older than match
      {5, false, 5, 8},  // equal to match
      {6, true, 6, 8},   // news below next: next stays
      {7, true, 7, 8},   // up to next - 1
      {9, true, 9, 10},  // past next: next follows
  };
  for (const auto& row : rows) {
    CAPTURE(row.ack);
    Progress p = progress(State::probe, 5, 8);
    p.probe_sent = true;
    CHECK(p.maybe_update(row.ack) == row.want_news);
    CHECK(p.match == row.want_match);
    CHECK(p.next == row.want_next);
    CHECK(p.probe_sent == !row.want_news);  // news resumes a paused probe
  }
}

TEST_CASE("progress: a rejection moves next back, unless it is stale") {
  struct Row {
    const char* name;
    State state;
    LogIndex match, next, rejected, hint;
    bool want_changed;
    LogIndex want_next;
  } const rows[] = {
      // replicate: a rejection at or below match was overtaken by an acknowledgement.
      {"replicate: stale, below match", State::replicate, 5, 10, 4, 4, false, 10},
      {"replicate: stale, at match", State::replicate, 5, 10, 5, 5, false, 10},
      {"replicate: back to match + 1", State::replicate, 5, 10, 9, 9, true, 6},
      // probe: only the answer to the append sent last (at next - 1) counts.
      {"probe: not the last append sent", State::probe, 0, 10, 5, 5, false, 10},
      {"probe: rejected, no hint", State::probe, 0, 10, 9, 9, true, 9},
      {"probe: the hint jumps back", State::probe, 0, 10, 9, 3, true, 4},
      {"probe: a hint past the rejection is ignored", State::probe, 0, 10, 9, 20, true, 9},
      {"probe: never below match + 1", State::probe, 5, 10, 9, 1, true, 6},
      {"probe: never below 1", State::probe, 0, 1, 0, 0, true, 1},
      {"probe: next 0 has no last append", State::probe, 0, 0, 0, 0, false, 0},
  };
  for (const auto& row : rows) {
    CAPTURE(row.name);
    Progress p = progress(row.state, row.match, row.next);
    p.probe_sent = row.state == State::probe;
    CHECK(p.maybe_decrease_to(row.rejected, row.hint) == row.want_changed);
    CHECK(p.next == row.want_next);
    CHECK(p.match == row.match);  // a rejection never moves match
    if (row.state == State::probe) CHECK(p.probe_sent == !row.want_changed);
  }
}

}  // namespace
}  // namespace dengine::raft
