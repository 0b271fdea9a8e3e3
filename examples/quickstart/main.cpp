// Quick start: a 3-node Raft cluster in one process, built from the pure core.
//
// Each node is a dengine::raft::Core over its own StorageEngine (the in-memory backend). This
// program plays the runtime's part by hand — tick, handle each Ready in the documented order
// (persist, send, apply), deliver messages — so you can see every step the protocol takes.
// The embedded runtime (EmbeddedEngine) does exactly this on threads for you.

#include <cstdio>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "dengine/backends/memory.hpp"
#include "dengine/dengine.hpp"

using namespace dengine;
using namespace dengine::raft;

namespace {

/// One node: the protocol core, its durable log, and a tiny state machine (a list of commands).
struct Node {
  Core core;
  memory::Engine storage;
  std::vector<std::string> applied;
};

class Cluster {
 public:
  explicit Cluster(std::vector<NodeId> ids) {
    for (NodeId id : ids) {
      RaftConfig cfg;
      cfg.id = id;
      CoreState state;
      state.snapshot.membership.voters = ids;  // the founding configuration
      nodes_.emplace(id, Node{Core::create(cfg, state).value(), memory::Engine{}, {}});
    }
  }

  Node& node(NodeId id) { return nodes_.at(id); }

  /// Handles every node's Ready in the order ready.hpp prescribes, then delivers messages.
  void run_until_quiet() {
    for (bool busy = true; busy;) {
      busy = false;
      for (auto& [id, n] : nodes_) {
        while (n.core.has_ready()) {
          busy = true;
          Ready rd = n.core.ready();
          if (rd.soft_state && rd.soft_state->role == Role::leader)
            std::printf("  node %lu is now the leader of term %lu\n", id, n.core.term());
          for (auto& m : rd.messages) wire_.push_back(std::move(m));
          if (!rd.entries.empty()) {
            check(n.storage.append(rd.entries));
            check(n.storage.sync());
          }
          if (rd.hard_state) check(n.storage.save_hard_state(*rd.hard_state));
          if (!rd.entries.empty())
            n.core.on_persisted(rd.entries.back().index, rd.entries.back().term);
          for (auto& m : rd.messages_after_persist) wire_.push_back(std::move(m));
          for (const Entry& e : rd.committed_entries) {
            if (e.type == EntryType::normal) n.applied.push_back(e.data);
          }
          for (const ReadState& r : rd.read_states)
            std::printf("  node %lu: read %lu confirmed at index %lu (applied %zu commands)\n", id,
                        r.id, r.index, n.applied.size());
        }
      }
      while (!wire_.empty()) {
        busy = true;
        Message m = std::move(wire_.front());
        wire_.pop_front();
        check(nodes_.at(m.to).core.step(std::move(m)));
      }
    }
  }

  void tick_all(int times) {
    for (int i = 0; i < times; ++i) {
      for (auto& [id, n] : nodes_) n.core.tick();
      run_until_quiet();
    }
  }

  NodeId leader() {
    for (auto& [id, n] : nodes_)
      if (n.core.role() == Role::leader) return id;
    return no_node;
  }

 private:
  static void check(const result<void>& r) {
    if (!r) {
      std::fprintf(stderr, "error: %s\n", r.error().message().c_str());
      std::exit(1);
    }
  }
  std::map<NodeId, Node> nodes_;
  std::deque<Message> wire_;
};

}  // namespace

int main() {
  std::printf("dengine quick start: three Raft nodes in one process\n\n");
  Cluster cluster({1, 2, 3});

  std::printf("1. ticking until an election timeout fires (pre-vote, then vote)...\n");
  int ticks = 0;
  while (cluster.leader() == no_node) {
    cluster.tick_all(1);
    ++ticks;
  }
  const NodeId leader = cluster.leader();
  std::printf("   elected after %d ticks\n\n", ticks);

  std::printf("2. proposing three commands on the leader...\n");
  for (const char* cmd : {"set x=1", "set y=2", "set x=3"}) {
    auto index = cluster.node(leader).core.propose(cmd);
    std::printf("  proposed \"%s\" at log index %lu\n", cmd, index.value());
  }
  cluster.run_until_quiet();
  cluster.tick_all(1);  // a heartbeat carries the new commit index to the followers
  for (NodeId id : {1, 2, 3})
    std::printf("  node %lu applied %zu commands, last: \"%s\"\n", id,
                cluster.node(id).applied.size(), cluster.node(id).applied.back().c_str());

  std::printf("\n3. a linearizable read (ReadIndex) on a follower...\n");
  const NodeId follower = leader == 1 ? 2 : 1;
  if (auto r = cluster.node(follower).core.read_index(42); !r)
    std::printf("  refused: %s\n", r.error().message().c_str());
  cluster.run_until_quiet();

  std::printf("\n4. a proposal on a follower is refused with a leader hint...\n");
  auto refused = cluster.node(follower).core.propose("set z=9");
  std::printf("  error: %s (leader hint: node %lu)\n", refused.error().message().c_str(),
              refused.error().leader_hint);

  std::printf("\n5. transferring leadership to node %lu...\n", follower);
  if (auto r = cluster.node(leader).core.transfer_leader(follower); !r)
    std::printf("  refused: %s\n", r.error().message().c_str());
  cluster.run_until_quiet();
  std::printf("  leader is now node %lu\n", cluster.leader());
  return cluster.leader() == follower ? 0 : 1;
}
