#pragma once
// A scripted, synchronous network of raft::Core instances for scenario tests: the test decides
// which messages are delivered, dropped or held, step by step. Persistence is instantaneous and
// kept per node (log, hard state, snapshot) so a node can be restarted from it.

#include <doctest/doctest.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "dengine/raft/core.hpp"

namespace dengine::raft::testing {

struct Stored {
  HardState hard_state;
  SnapshotMeta snapshot;
  std::vector<Entry> entries;
  std::shared_ptr<const Snapshot> snapshot_data;
};

class Cluster {
 public:
  explicit Cluster(const std::vector<NodeId>& voters, std::function<void(RaftConfig&)> tweak = {})
      : tweak_(std::move(tweak)) {
    for (NodeId id : voters) {
      Stored s;
      s.snapshot.membership.voters = voters;
      stored_[id] = s;
      start(id);
    }
  }

  /// (Re)creates a node from its stored state, as after a crash and restart.
  void start(NodeId id) {
    RaftConfig cfg;
    cfg.id = id;
    cfg.random_seed = id * 7919;
    if (tweak_) tweak_(cfg);
    const Stored& s = stored_[id];
    CoreState st{s.hard_state, s.snapshot, s.entries, applied_index(id), s.snapshot_data};
    auto core = Core::create(cfg, st);
    REQUIRE(core.has_value());
    nodes_.erase(id);
    nodes_.emplace(id, std::move(core).value());
  }
  /// Adds a brand-new empty node that knows only `membership` (e.g. a learner being added).
  void add_node(NodeId id, Membership membership) {
    Stored s;
    s.snapshot.membership = std::move(membership);
    stored_[id] = s;
    start(id);
  }

  Core& operator[](NodeId id) { return nodes_.at(id); }
  std::vector<Entry>& applied(NodeId id) { return applied_[id]; }
  std::vector<ReadState>& reads(NodeId id) { return reads_[id]; }
  std::vector<DroppedRead>& dropped(NodeId id) { return dropped_[id]; }
  std::vector<ForwardOutcome>& forwards(NodeId id) { return forwards_[id]; }
  /// Leader calls node `id` received to answer, and answers it received, in order.
  std::vector<LeaderCall>& leader_calls(NodeId id) { return leader_calls_[id]; }
  std::vector<LeaderCallAnswer>& leader_call_answers(NodeId id) { return call_answers_[id]; }
  Stored& stored(NodeId id) { return stored_[id]; }
  LogIndex applied_index(NodeId id) {
    auto& a = applied_[id];
    LogIndex snap = stored_[id].snapshot.index;
    return a.empty() ? snap : std::max(snap, a.back().index);
  }

  /// Handles each node's Ready: persist at once, queue messages, apply committed entries.
  void flush() {
    for (auto& [id, core] : nodes_) {
      while (core.has_ready()) {
        Ready rd = core.ready();
        Stored& s = stored_[id];
        if (rd.snapshot) {
          s.snapshot = rd.snapshot->meta;
          s.snapshot_data = rd.snapshot;
          s.entries.clear();
          applied_[id].clear();
          applied_[id].push_back(
              {rd.snapshot->meta.term, rd.snapshot->meta.index, EntryType::noop, "snapshot"});
          core.on_snapshot_persisted(rd.snapshot->meta.index);
        }
        for (auto& m : rd.messages) queue_.push_back(std::move(m));
        if (!rd.entries.empty()) {
          const LogIndex first = rd.entries.front().index;
          std::erase_if(s.entries, [&](const Entry& e) { return e.index >= first; });
          s.entries.insert(s.entries.end(), rd.entries.begin(), rd.entries.end());
        }
        if (rd.hard_state) s.hard_state = *rd.hard_state;
        if (!rd.entries.empty()) core.on_persisted(rd.entries.back().index, rd.entries.back().term);
        for (auto& m : rd.messages_after_persist) queue_.push_back(std::move(m));
        for (auto& e : rd.committed_entries) applied_[id].push_back(e);
        for (auto& r : rd.read_states) reads_[id].push_back(r);
        for (auto& d : rd.dropped_reads) dropped_[id].push_back(d);
        for (auto& f : rd.forwards) forwards_[id].push_back(f);
        for (auto& lc : rd.leader_calls) leader_calls_[id].push_back(lc);
        for (auto& a : rd.leader_call_answers) call_answers_[id].push_back(a);
      }
    }
  }

  /// Takes the queued messages (after flushing) for the test to inspect or deliver by hand.
  std::vector<Message> take_messages() {
    flush();
    std::vector<Message> out(queue_.begin(), queue_.end());
    queue_.clear();
    return out;
  }

  /// Messages for which `filter` returns true are dropped (until cleared with an empty filter).
  void drop_if(std::function<bool(const Message&)> filter) { drop_filter_ = std::move(filter); }

  void deliver(Message m) {
    if (is_cut(m.from, m.to) || !nodes_.contains(m.to)) return;
    if (drop_filter_ && drop_filter_(m)) return;
    Core& to = nodes_.at(m.to);
    (void)to.step(std::move(m));
  }

  /// Delivers messages until none are left (cut links drop them). Returns messages delivered.
  std::size_t settle(std::size_t limit = 100000) {
    std::size_t n = 0;
    flush();
    while (!queue_.empty() && n < limit) {
      Message m = std::move(queue_.front());
      queue_.pop_front();
      deliver(std::move(m));
      ++n;
      flush();
    }
    return n;
  }

  /// Ticks every node once and settles, `times` times.
  void tick_all(int times = 1) {
    for (int i = 0; i < times; ++i) {
      for (auto& [id, core] : nodes_) core.tick();
      settle();
    }
  }
  void tick(NodeId id, int times = 1) {
    for (int i = 0; i < times; ++i) nodes_.at(id).tick();
  }

  /// Lets `ids` forget their leader: each ticks one election timeout with its output dropped
  /// (as if it heard nothing), so it no longer ignores campaigns (leader stickiness).
  void forget_leader(std::initializer_list<NodeId> ids) {
    flush();
    auto kept = queue_;
    for (NodeId id : ids) tick(id, static_cast<int>(nodes_.at(id).config().election_ticks));
    flush();
    queue_ = kept;
  }

  /// Campaigns on `id` and settles: with a healthy network `id` becomes leader.
  void elect(NodeId id) {
    nodes_.at(id).campaign();
    settle();
  }
  NodeId leader() {
    NodeId found = no_node;
    Term best = 0;
    for (auto& [id, core] : nodes_)
      if (core.role() == Role::leader && core.term() >= best) {
        found = id;
        best = core.term();
      }
    return found;
  }

  void cut(NodeId a, NodeId b) { cut_.insert({a, b}), cut_.insert({b, a}); }
  void cut_one_way(NodeId from, NodeId to) { cut_.insert({from, to}); }
  void isolate(NodeId a) {
    for (auto& [id, _] : nodes_)
      if (id != a) cut(a, id);
  }
  void heal() { cut_.clear(); }
  [[nodiscard]] bool is_cut(NodeId from, NodeId to) const { return cut_.contains({from, to}); }
  void drop_queue() { queue_.clear(); }

  /// Asks the leader `from` to hand leadership to `to`, and settles.
  void transfer(NodeId from, NodeId to) {
    REQUIRE(nodes_.at(from).transfer_leader(to).has_value());
    settle();
  }

  /// Proposes on the leader and settles; returns the index.
  LogIndex put(NodeId leader, std::string data) {
    auto idx = nodes_.at(leader).propose(std::move(data));
    REQUIRE(idx.has_value());
    settle();
    return idx.value();
  }

 private:
  std::function<void(RaftConfig&)> tweak_;
  std::map<NodeId, Core> nodes_;
  std::map<NodeId, Stored> stored_;
  std::map<NodeId, std::vector<Entry>> applied_;
  std::map<NodeId, std::vector<ReadState>> reads_;
  std::map<NodeId, std::vector<DroppedRead>> dropped_;
  std::map<NodeId, std::vector<ForwardOutcome>> forwards_;
  std::map<NodeId, std::vector<LeaderCall>> leader_calls_;
  std::map<NodeId, std::vector<LeaderCallAnswer>> call_answers_;
  std::deque<Message> queue_;
  std::set<std::pair<NodeId, NodeId>> cut_;
  std::function<bool(const Message&)> drop_filter_;
};

/// A healthy cluster of `voters` (by default three) that has elected `leader`.
inline Cluster led_by(NodeId leader, const std::vector<NodeId>& voters = {1, 2, 3}) {
  Cluster c(voters);
  c.elect(leader);
  return c;
}

/// One core started from a recovered state (a restart), with no network around it, for direct
/// checks of one rule message by message. Its cluster is `voters`; `tweak` adjusts its config.
inline Core lone_core(NodeId id, HardState hard_state, std::vector<Entry> entries = {},
                      std::vector<NodeId> voters = {1, 2, 3},
                      const std::function<void(RaftConfig&)>& tweak = {}) {
  RaftConfig cfg;
  cfg.id = id;
  if (tweak) tweak(cfg);
  CoreState st;
  st.snapshot.membership.voters = std::move(voters);
  st.hard_state = hard_state;
  st.entries = std::move(entries);
  auto core = Core::create(cfg, st);
  REQUIRE(core.has_value());
  return std::move(core).value();
}

inline std::vector<Message> of_type(const std::vector<Message>& ms, MessageType t) {
  std::vector<Message> out;
  for (const auto& m : ms)
    if (m.type == t) out.push_back(m);
  return out;
}

inline Entry entry(Term t, LogIndex i, std::string data = {}) {
  return {t, i, EntryType::normal, std::move(data)};
}

}  // namespace dengine::raft::testing
