// An in-process 3-node cluster in the threaded arrangement (LocalHub): replication, follower
// behaviour, leader failover, restarts (from a snapshot when the log was compacted), stop with
// requests pending, membership changes.

#include <doctest/doctest.h>

#include <boost/asio/use_future.hpp>

#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "harness.hpp"

namespace dengine::test {
namespace {

namespace asio = boost::asio;
using node::ReadConsistency;

/// Nodes 1..n on one LocalHub, each with a Disk that survives its restarts.
class Cluster {
 public:
  explicit Cluster(std::size_t n, std::function<void(node::NodeConfig&)> tweak = {})
      : tweak_(std::move(tweak)) {
    for (NodeId id = 1; id <= n; ++id) {
      founders_.push_back(id);
      members_.push_back(std::make_unique<Member>());
    }
    for (NodeId id = 1; id <= n; ++id) start(id);
  }
  ~Cluster() {
    for (auto& m : members_)
      if (m->node) CHECK(m->node->stop());
  }

  /// Opens node `id` on its disk with a fresh state machine (a restart, if it ran before).
  void start(NodeId id) {
    Member& m = member(id);
    auto cfg = test_config(id, founders_);
    if (tweak_) tweak_(cfg);
    m.sm = std::make_unique<CounterMachine>();
    auto opened =
        ThreadedNode::open(cfg, m.disk.engine, *m.sm, m.disk.snapshots,
                           node::LocalTransport(hub, id), node::SteadyClock{}, m.callbacks);
    REQUIRE_MESSAGE(opened, (opened ? "" : opened.error().message()));
    m.node = std::move(opened).value();
  }
  /// Adds a member slot for a node that joins later (not a founder).
  NodeId add_slot() {
    members_.push_back(std::make_unique<Member>());
    return members_.size();
  }
  /// Gracefully stops node `id` and drops its process state (the disk stays).
  void stop(NodeId id) {
    Member& m = member(id);
    REQUIRE(m.node->stop());
    m.node.reset();
  }

  /// The node that leads: some running node believes it leads and a proposal there succeeds.
  NodeId leader() {
    NodeId found = no_node;
    REQUIRE(eventually([&] {
      for (auto& m : members_) {
        if (!m->node || !m->node->is_leader()) continue;
        if (m->node->propose_wait("probe")) {
          found = m->node->id();
          return true;
        }
      }
      return false;
    }));
    return found;
  }
  /// A running node other than `not_this`.
  NodeId other_than(NodeId not_this) {
    for (auto& m : members_)
      if (m->node && m->node->id() != not_this) return m->node->id();
    FAIL("no other running node");
    return no_node;
  }

  ThreadedNode& node(NodeId id) { return *member(id).node; }
  CounterMachine& sm(NodeId id) { return *member(id).sm; }
  Disk& disk(NodeId id) { return member(id).disk; }
  node::NodeCallbacks& callbacks(NodeId id) { return member(id).callbacks; }

  /// Waits until node `id` applied everything in `expected` (serializable reads).
  bool converges(NodeId id, const std::map<std::string, std::int64_t>& expected) {
    return eventually([&] {
      auto v = node(id).read_wait(ReadConsistency::serializable,
                                  [](const CounterMachine& m) { return m.values(); });
      return v && v.value() == expected;
    });
  }

  node::LocalHub hub;

 private:
  struct Member {
    Disk disk;
    std::unique_ptr<CounterMachine> sm;
    node::NodeCallbacks callbacks;
    std::unique_ptr<ThreadedNode> node;
  };
  Member& member(NodeId id) { return *members_.at(id - 1); }

  std::function<void(node::NodeConfig&)> tweak_;
  std::vector<NodeId> founders_;
  std::vector<std::unique_ptr<Member>> members_;
};

/// Proposes add(key, delta) at `n`, requires success, and records it in `expected`.
void add(ThreadedNode& n, std::map<std::string, std::int64_t>& expected, const std::string& key,
         std::int64_t delta) {
  auto r = n.propose_wait(add_cmd(key, delta));
  REQUIRE_MESSAGE(r, (r ? "" : r.error().message()));
  expected[key] += delta;
  CHECK(r.value().value == expected[key]);
}

/// Checks that a follower refused request `r` with not_leader, naming `leader` as the hint.
template <class T>
void check_refused_for(const result<T>& r, NodeId leader) {
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::not_leader);
  CHECK(r.error().leader_hint == leader);
}

TEST_SUITE("integration") {
  TEST_CASE("cluster: a write on the leader reaches every node") {
    Cluster c(3);
    const NodeId l = c.leader();
    std::map<std::string, std::int64_t> expected;
    for (int i = 0; i < 20; ++i) add(c.node(l), expected, "k" + std::to_string(i % 4), i);
    for (NodeId id = 1; id <= 3; ++id) {
      CAPTURE(id);
      CHECK(c.converges(id, expected));
    }
  }

  TEST_CASE(
      "cluster: a follower forwards proposals to the leader, refuses lease reads with the "
      "leader's hint, serves linearizable reads") {
    Cluster c(3);
    const NodeId l = c.leader();
    const NodeId f = c.other_than(l);
    REQUIRE(eventually([&] { return c.node(f).leader() == l; }));

    // Forwarded: applied once, answered here with the state machine's response.
    auto forwarded = c.node(f).propose_wait(add_cmd("y", 3));
    REQUIRE_MESSAGE(forwarded, (forwarded ? "" : forwarded.error().message()));
    CHECK(forwarded.value().value == 3);
    auto at_leader = c.node(l).read_wait(ReadConsistency::linearizable,
                                         [](const CounterMachine& m) { return m.get("y"); });
    REQUIRE(at_leader);
    CHECK(at_leader.value() == 3);
    CHECK(c.node(f).node_metrics().proposals_forwarded.value() == 1);

    check_refused_for(c.node(f).read_wait(ReadConsistency::lease,
                                          [](const CounterMachine& m) { return m.get("x"); }),
                      l);

    // A write acknowledged by the leader is visible to a linearizable read on any node at once.
    for (int i = 1; i <= 5; ++i) {
      auto w = c.node(l).propose_wait(set_cmd("x", i));
      REQUIRE(w);
      auto v = c.node(f).read_wait(ReadConsistency::linearizable,
                                   [](const CounterMachine& m) { return m.get("x"); });
      REQUIRE_MESSAGE(v, (v ? "" : v.error().message()));
      CHECK(v.value() == i);
    }
  }

  TEST_CASE("cluster: with forward_proposals off a follower refuses writes, naming the leader") {
    Cluster c(3, [](node::NodeConfig& cfg) { cfg.forward_proposals = false; });
    const NodeId l = c.leader();
    const NodeId f = c.other_than(l);
    REQUIRE(eventually([&] { return c.node(f).leader() == l; }));
    check_refused_for(c.node(f).propose_wait(add_cmd("x", 1)), l);
    CHECK(c.node(f).node_metrics().proposals_forwarded.value() == 0);
    auto v = c.node(l).read_wait(ReadConsistency::linearizable,
                                 [](const CounterMachine& m) { return m.get("x"); });
    REQUIRE(v);
    CHECK(v.value() == 0);
  }

  TEST_CASE("cluster: leader failover — a new leader serves, acknowledged writes survive") {
    Cluster c(3);
    const NodeId old_leader = c.leader();
    std::map<std::string, std::int64_t> expected;
    for (int i = 0; i < 10; ++i) add(c.node(old_leader), expected, "a", 1);
    c.stop(old_leader);

    const NodeId l = c.leader();
    CHECK(l != old_leader);
    auto v = c.node(l).read_wait(ReadConsistency::linearizable,
                                 [](const CounterMachine& m) { return m.get("a"); });
    REQUIRE(v);
    CHECK(v.value() == 10);
    add(c.node(l), expected, "a", 5);
    const NodeId f = c.other_than(l);
    REQUIRE(eventually([&] { return c.node(f).leader() == l; }));
    add(c.node(f), expected, "a", 1);  // forwarded to the new leader

    c.start(old_leader);  // rejoins as a follower and catches up
    CHECK(c.converges(old_leader, expected));
  }

  TEST_CASE(
      "cluster: a restarted follower catches up from a snapshot when the log was compacted past "
      "it") {
    Cluster c(3, [](node::NodeConfig& cfg) { cfg.snapshot_threshold_bytes = 512; });
    const NodeId l = c.leader();
    const NodeId f = c.other_than(l);
    std::map<std::string, std::int64_t> expected;
    add(c.node(l), expected, "s", 1);
    REQUIRE(c.converges(f, expected));
    c.stop(f);
    const LogIndex f_last = c.disk(f).engine.last_index();
    for (int i = 0; i < 80; ++i) add(c.node(l), expected, "s" + std::to_string(i % 5), i);
    REQUIRE(eventually([&] { return c.disk(l).engine.first_index() > f_last + 1; }));

    c.start(f);
    CHECK(c.converges(f, expected));
    CHECK(c.node(f).node_metrics().snapshots_installed.value() >= 1);
    // The follower's disk now starts at the installed snapshot, with its image saved.
    auto image = c.disk(f).snapshots.load();
    REQUIRE(image);
    REQUIRE(image.value());
    CHECK(image.value()->meta.index + 1 >= c.disk(f).engine.first_index());
  }

  TEST_CASE("cluster: after every node restarts, the state equals what was acknowledged") {
    std::map<std::string, std::int64_t> expected;
    Cluster c(3, [](node::NodeConfig& cfg) { cfg.snapshot_threshold_bytes = 1024; });
    const NodeId l = c.leader();
    for (int i = 0; i < 40; ++i) add(c.node(l), expected, "r" + std::to_string(i % 3), i + 1);
    for (NodeId id = 1; id <= 3; ++id) {
      c.stop(id);
      c.disk(id)
          .engine.crash();  // drop anything unsynced: acknowledged DiskFirst writes are synced
    }
    for (NodeId id = 1; id <= 3; ++id) c.start(id);
    const NodeId l2 = c.leader();
    auto v = c.node(l2).read_wait(ReadConsistency::linearizable,
                                  [](const CounterMachine& m) { return m.values(); });
    REQUIRE(v);
    CHECK(v.value() == expected);
  }

  TEST_CASE("cluster: stop while requests are pending — each completes, none hangs") {
    Cluster c(3, [](node::NodeConfig& cfg) {
      cfg.raft.election_ticks = 100;  // the isolated leader keeps leading while the test runs
      cfg.request_timeout = std::chrono::seconds(60);
    });
    const NodeId l = c.leader();
    c.hub.isolate(l);  // nothing it proposes can commit, no read can be confirmed
    constexpr int proposal_count = 10;
    constexpr int read_count = 5;
    std::vector<std::future<result<CounterResponse>>> proposals;
    std::vector<std::future<result<std::int64_t>>> reads;
    proposals.reserve(proposal_count);
    reads.reserve(read_count);
    for (int i = 0; i < proposal_count; ++i)
      proposals.push_back(c.node(l).propose(add_cmd("p", 1), asio::use_future));
    for (int i = 0; i < read_count; ++i)
      reads.push_back(c.node(l).read(
          ReadConsistency::linearizable, [](const CounterMachine& m) { return m.get("p"); },
          asio::use_future));
    c.stop(l);
    for (auto& f : proposals) {
      auto r = f.get();  // ready: stop() completed every request before returning
      REQUIRE_FALSE(r);
      // stopped if it never reached the log; once appended (the isolated leader may still lead
      // again with it) its outcome is unknown, and the stop is why no answer came.
      const bool unknown_by_stop =
          r.error() == errc::outcome_unknown && r.error().cause == errc::stopped;
      CHECK((r.error() == errc::stopped || unknown_by_stop));
    }
    for (auto& f : reads) {
      auto r = f.get();
      REQUIRE_FALSE(r);
      // stopped, or not_leader if the leader noticed it lost its quorum before the stop.
      CHECK((r.error() == errc::stopped || r.error() == errc::not_leader));
    }
    c.hub.heal();
  }

  TEST_CASE("cluster: membership change — a learner joins, catches up, becomes a voter") {
    Cluster c(3);
    std::mutex mutex;
    std::vector<node::MembershipChange> seen;
    const NodeId joiner = c.add_slot();
    c.callbacks(joiner).on_membership_change = [&](const node::MembershipChange& ch) {
      std::lock_guard lock(mutex);
      seen.push_back(ch);
    };
    c.start(joiner);  // founders {1,2,3}: it waits for a leader to reach it
    const NodeId l = c.leader();
    std::map<std::string, std::int64_t> expected;
    add(c.node(l), expected, "j", 7);

    auto learner =
        c.node(l).change_membership_wait({raft::ConfigChange::Kind::add_learner, joiner, ""});
    REQUIRE_MESSAGE(learner, (learner ? "" : learner.error().message()));
    CHECK(learner.value().is_learner(joiner));
    CHECK(c.converges(joiner, expected));

    auto voter =
        c.node(l).change_membership_wait({raft::ConfigChange::Kind::add_voter, joiner, ""});
    REQUIRE(voter);
    CHECK(voter.value().is_voter(joiner));
    CHECK(voter.value().voters.size() == 4);
    REQUIRE(eventually([&] {
      std::lock_guard lock(mutex);
      return !seen.empty() && seen.back().membership.is_voter(joiner);
    }));
    add(c.node(l), expected, "j", 1);
    CHECK(c.converges(joiner, expected));
  }
}

}  // namespace
}  // namespace dengine::test
