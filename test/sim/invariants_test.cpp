// Tests of the invariant checkers on hand-built node states: each invariant accepts a valid
// history and reports a crafted violation.

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "invariants.hpp"

using namespace dengine;
using namespace dengine::sim;
using raft::Role;

namespace {

// A node's observable state, built by hand. The log holds entries [first, first + log.size()).
struct FakeNode {
  NodeId node_id = 1;
  Role node_role = Role::follower;
  Term node_term = 1;
  LogIndex commit = 0;
  LogIndex first = 1;
  Term snapshot_term = 0;  // term at first - 1
  HardState hs;
  std::vector<Entry> log;

  NodeId id() const { return node_id; }
  Role role() const { return node_role; }
  Term term() const { return node_term; }
  LogIndex commit_index() const { return commit; }
  LogIndex first_index() const { return first; }
  LogIndex last_index() const { return first + log.size() - 1; }
  HardState hard_state() const { return hs; }
  result<Term> term_at(LogIndex i) const {
    if (i + 1 == first) return snapshot_term;
    if (i < first) return error(errc::compacted);
    if (i > last_index()) return error(errc::unavailable);
    return log[i - first].term;
  }
  const Entry* entry_at(LogIndex i) const {
    if (i < first || i > last_index()) return nullptr;
    return &log[i - first];
  }

  FakeNode& append(Term t, std::string data = "x") {
    log.push_back(Entry{t, last_index() + 1, EntryType::normal, std::move(data)});
    return *this;
  }
};

static_assert(ObservedNode<FakeNode>);

FakeNode node(NodeId id, std::vector<Term> terms) {
  FakeNode n;
  n.node_id = id;
  for (Term t : terms) n.append(t, "t" + std::to_string(t));
  n.node_term = terms.empty() ? 1 : terms.back();
  return n;
}

}  // namespace

TEST_CASE("election safety: one leader per term, remembered forever") {
  InvariantChecker c;
  FakeNode a = node(1, {1});
  FakeNode b = node(2, {1});
  a.node_role = Role::leader;
  CHECK_FALSE(c.check_election_safety(a));
  a.node_role = Role::follower;  // a steps down; b must still not lead term 1
  CHECK_FALSE(c.check_election_safety(a));
  b.node_role = Role::leader;
  auto v = c.check_election_safety(b);
  REQUIRE(v);
  CHECK(v->invariant == "election safety");
  CHECK(v->detail == "nodes 1 and 2 were both leader in term 1");
  b.node_term = 2;
  CHECK_FALSE(c.check_election_safety(b));
}

TEST_CASE("term monotonic and vote once survive restarts") {
  InvariantChecker c;
  FakeNode a = node(1, {});
  a.node_term = 3;
  a.hs = {3, 2, 0};
  CHECK_FALSE(c.check_term_monotonic(a));
  CHECK_FALSE(c.check_vote_once(a));
  c.on_restart(1);
  a.hs = {3, 3, 0};  // forgot its vote and voted again in term 3
  auto v = c.check_vote_once(a);
  REQUIRE(v);
  CHECK(v->invariant == "vote once");
  a.node_term = 2;
  CHECK(c.check_term_monotonic(a));
}

TEST_CASE("log matching: same (index, term) means same prefix") {
  InvariantChecker c;
  FakeNode a = node(1, {1, 1, 2});
  FakeNode b = node(2, {1, 1, 2, 2});
  CHECK_FALSE(c.check_log_matching(a));
  CHECK_FALSE(c.check_log_matching(b));
  SUBCASE("different content at the same index and term") {
    FakeNode d = node(3, {1});
    d.log[0].data = "other";
    auto v = c.check_log_matching(d);
    REQUIRE(v);
    CHECK(v->invariant == "log matching");
  }
  SUBCASE("same (index, term), different preceding term") {
    FakeNode d = node(3, {1, 3, 2});  // (3, 2) preceded by term 3, elsewhere by term 1
    d.log[1].data = "t1";             // so that (2, 3) alone is new, not a content clash
    auto v = c.check_log_matching(d);
    REQUIRE(v);
    CHECK(v->detail.find("differ at index 2") != std::string::npos);
  }
  SUBCASE("a diverging suffix in a later term is fine") {
    FakeNode d = node(3, {1, 1, 3, 3});
    CHECK_FALSE(c.check_log_matching(d));
  }
  SUBCASE("compacted prefix: checked from the snapshot term") {
    FakeNode d;
    d.node_id = 4;
    d.first = 3;
    d.snapshot_term = 1;
    d.append(2, "t2");
    CHECK_FALSE(c.check_log_matching(d));
    d.snapshot_term = 2;  // claims (3, 2) is preceded by term 2
    CHECK(c.check_log_matching(d));
  }
}

TEST_CASE("commit index: within the log, monotonic per incarnation") {
  InvariantChecker c;
  FakeNode a = node(1, {1, 1, 1});
  a.commit = 3;
  CHECK_FALSE(c.check_commit_within_log(a));
  CHECK_FALSE(c.check_commit_monotonic(a));
  a.commit = 2;
  auto v = c.check_commit_monotonic(a);
  REQUIRE(v);
  CHECK(v->invariant == "commit monotonic");
  c.on_restart(1);  // a restart may resume from a lower durable commit index
  a.commit = 1;
  CHECK_FALSE(c.check_commit_monotonic(a));
  a.commit = 4;
  CHECK(c.check_commit_within_log(a));
}

TEST_CASE("committed entries never change") {
  InvariantChecker c;
  FakeNode a = node(1, {1, 1, 2});
  a.commit = 3;
  CHECK_FALSE(c.check_committed_stable(a));
  FakeNode b = node(2, {1, 1, 3});
  b.commit = 2;
  CHECK_FALSE(c.check_committed_stable(b));
  b.commit = 3;
  auto v = c.check_committed_stable(b);
  REQUIRE(v);
  CHECK(v->invariant == "committed entries stable");
  CHECK(c.max_committed() == 3);
}

TEST_CASE("leader completeness: later leaders hold every committed entry") {
  InvariantChecker c;
  FakeNode a = node(1, {1, 1, 2});
  a.node_term = 2;
  a.commit = 3;
  CHECK_FALSE(c.check_committed_stable(a));
  SUBCASE("a leader of the same term need not be checked against its own commits") {
    FakeNode l = node(2, {1, 1});
    l.node_term = 2;
    l.node_role = Role::leader;
    CHECK_FALSE(c.check_leader_completeness(l));
  }
  SUBCASE("a later leader missing a committed entry") {
    FakeNode l = node(2, {1, 1});
    l.node_term = 3;
    l.node_role = Role::leader;
    auto v = c.check_leader_completeness(l);
    REQUIRE(v);
    CHECK(v->invariant == "leader completeness");
  }
  SUBCASE("a later leader with a different entry there") {
    FakeNode l = node(2, {1, 1, 3});
    l.node_term = 4;
    l.node_role = Role::leader;
    CHECK(c.check_leader_completeness(l));
  }
  SUBCASE("a later leader holding it, or having compacted it, is fine") {
    FakeNode l = node(2, {1, 1, 2, 3});
    l.node_term = 3;
    l.node_role = Role::leader;
    CHECK_FALSE(c.check_leader_completeness(l));
    FakeNode s;
    s.node_id = 3;
    s.first = 5;
    s.snapshot_term = 3;
    s.node_term = 5;
    s.node_role = Role::leader;
    CHECK_FALSE(c.check_leader_completeness(s));
  }
  SUBCASE("entries committed after the leader was first checked are checked too") {
    FakeNode l = node(2, {1, 1, 2, 4});
    l.node_term = 4;
    l.node_role = Role::leader;
    CHECK_FALSE(c.check_leader_completeness(l));
    FakeNode f = node(3, {1, 1, 2, 3, 3});
    f.node_term = 3;  // learned in term 3 that index 5 is committed... which leader 2 lacks
    f.commit = 5;
    CHECK_FALSE(c.check_committed_stable(f));
    CHECK(c.check_leader_completeness(l));
  }
}

TEST_CASE("state machine safety: same entry at each index, applied in order") {
  InvariantChecker c;
  Entry e1{1, 1, EntryType::normal, "a"};
  Entry e2{1, 2, EntryType::normal, "b"};
  CHECK_FALSE(c.check_applied(1, e1));
  CHECK_FALSE(c.check_applied(1, e2));
  CHECK_FALSE(c.check_applied(2, e1));
  Entry other{2, 2, EntryType::normal, "c"};
  auto v = c.check_applied(2, other);
  REQUIRE(v);
  CHECK(v->invariant == "state machine safety");
  // Gaps are violations; a snapshot restore moves the cursor.
  Entry e4{1, 4, EntryType::normal, "d"};
  CHECK(c.check_applied(1, e4));
  c.on_snapshot_restored(3, 3);
  CHECK_FALSE(c.check_applied(3, e4));
  c.on_restart(3);
  CHECK_FALSE(c.check_applied(3, e1));  // a restarted node replays from its snapshot
}

TEST_CASE("check_all on a healthy cluster reports nothing") {
  InvariantChecker c;
  FakeNode l = node(1, {1, 1, 2, 2});
  l.node_term = 2;
  l.node_role = Role::leader;
  l.commit = 4;
  l.hs = {2, 1, 4};
  FakeNode f = node(2, {1, 1, 2});
  f.node_term = 2;
  f.commit = 3;
  f.hs = {2, 1, 3};
  for (int step = 0; step < 3; ++step) {
    CHECK_FALSE(c.check_all(l));
    CHECK_FALSE(c.check_all(f));
  }
}
