#pragma once
/// The protocol simulation: a cluster of the node that ships — node::Node, its Driver, LogWriter
/// and Applier, over the deterministic runtime (sim::Deterministic) — with the register state
/// machine of kv_machine.hpp, each node over its own memory::Engine, on a sim::SimNetwork. Every
/// role of every node, every client and every fault is an event on one sim::SimExecutor, so a
/// run is a pure function of its options.
///
/// The harness owns no protocol rule: the Ready handling is node/driver.hpp's. It only makes
/// trouble (network faults, partitions, crashes that lose what was not synced, membership
/// changes, leader transfers, frozen event loops, clock drift and forward jumps) and watches:
/// the safety invariants (checks/) and the lease invariants (lease_checks.hpp) after every
/// event, read through Node::core(); every client operation, for the linearizability check at
/// the end; liveness once the faults heal.
///
/// Member definitions are split by concern: cluster_nodes.hpp (node lifecycle, the checks after
/// each event, the network tap), cluster_clients.hpp (client operations), cluster_faults.hpp
/// (fault scheduler, membership changes, liveness), cluster_run.hpp (set-up, the run, the final
/// history check).

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "checks/leader_promise.hpp"
#include "dengine/backends/memory/engine.hpp"
#include "dengine/node/node.hpp"
#include "dengine/node/snapshot_store.hpp"
#include "dengine/sim/deterministic.hpp"
#include "dengine/sim/random.hpp"
#include "dengine/sim/transport.hpp"
#include "invariants.hpp"
#include "kv_machine.hpp"
#include "linearizability.hpp"
#include "options.hpp"
#include "runner.hpp"
#include "trace.hpp"

namespace dengine::sim {

/// The outcome of one run. The first safety or liveness violation stops the run; the history
/// is still checked after a liveness failure, which may add a linearizability one (`details`:
/// where the search got stuck on the offending key).
struct RunResult : RunOutcome {
  std::uint64_t config_changes = 0;
  std::uint64_t snapshots_installed = 0;
  std::uint64_t max_commit = 0;
  std::uint64_t lin_steps = 0;
};

/// The node under test.
using RegisterNode = node::Node<memory::Engine, KvMachine, SimTransport, Deterministic>;

/// One simulated server: its "disk" (the engine and the snapshot image) survives crashes; its
/// process (the Node and its state machine) does not.
struct SimNode {
  enum class Status : std::uint8_t { idle, up, down, removed };
  NodeId id = no_node;
  Status status = Status::idle;
  std::uint64_t incarnation = 0;
  memory::Engine engine;
  node::MemorySnapshotStore snapshots;
  /// The node's clock: drift (its tick period in virtual time) and forward jumps.
  LocalTime local_time;
  std::uint32_t snapshot_every = 32;
  std::unique_ptr<KvMachine> sm;  // volatile: a new one per incarnation
  /// The configuration of its current (or last) incarnation; default before the first.
  node::NodeConfig config;
  /// The process; null unless up. Declared after what it uses: destroyed first.
  std::unique_ptr<RegisterNode> node;

  // ---- what the checks after each event compare against ----
  raft::Role last_role = raft::Role::follower;
  NodeId last_leader = no_node;
  LogIndex last_commit = 0;
  /// The last entry (index, term) when the log's tail was last checked.
  std::pair<LogIndex, Term> checked_tail{0, 0};
  /// Virtual time until which the node's event loop is frozen (for the trace and reports).
  sim_time paused_until = 0;

  // ---- ticks, for the leader-promise check (checks/leader_promise.hpp) ----
  std::uint64_t ticks = 0;       // ticks taken, over every incarnation
  std::uint64_t core_ticks = 0;  // the current incarnation's core had taken this many

  [[nodiscard]] const raft::Core& core() const { return node->core(); }
};

class Cluster {
 public:
  explicit Cluster(SimOptions options);
  /// Runs the whole scenario: fault phase, heal, liveness, final checks.
  RunResult run();

 private:
  /// A client operation and what came of it.
  struct ClientOp {
    enum class Kind : std::uint8_t { write, cas, read_index, lease_read };
    std::uint64_t id = 0;
    std::size_t client = 0;
    Kind kind = Kind::write;
    std::string key;
    std::string value;
    std::string expected;
    sim_time call = 0;
    sim_time ret = 0;
    std::uint64_t attempt = 0;
    bool open = true;
    bool proposed = false;  // handed to a node as a proposal (so it may take effect)
    std::optional<lin::RegisterOutput> output;
  };
  struct Client {
    std::optional<std::uint64_t> current;
    NodeId leader_guess = no_node;
    std::uint64_t seq = 0;
  };

  // ---- lifecycle, the checks after each event, the network tap (cluster_nodes.hpp) ----
  SimNode& node(NodeId id) { return *nodes_[id - 1]; }
  /// Runs `fn` as a harness event `after` from now.
  template <class F>
  void schedule(sim_duration after, F&& fn) {
    executor_.post_after(std::chrono::microseconds(after), std::forward<F>(fn));
  }
  /// Runs `fn` `after` from now if `n` is then still in the same incarnation.
  template <class F>
  void schedule_for(SimNode& n, sim_duration after, F&& fn) {
    schedule(after, [this, &n, inc = n.incarnation, fn = std::forward<F>(fn)]() mutable {
      if (!violation_ && n.incarnation == inc) fn();
    });
  }
  [[nodiscard]] node::NodeConfig config_for(const SimNode& n) const;
  void start_node(SimNode& n);
  void crash_node(SimNode& n, const std::string& why);
  void stop_node(SimNode& n);
  void fail(std::string invariant, std::string detail);
  void after_event();
  void check_node(SimNode& n);
  void on_applied(SimNode& n, const Entry& e, const ApplyResult& r);
  /// Brings the harness's tick count for `n` up to its core's.
  void sync_ticks(SimNode& n);
  [[nodiscard]] bool up(NodeId id) const { return nodes_[id - 1]->status == SimNode::Status::up; }
  [[nodiscard]] bool paused(const SimNode& n) const { return n.paused_until > executor_.now(); }
  sim_duration before_send(const raft::Message& m);
  void after_send(const SendReport& report);
  void arrived(const raft::Message& m, std::string_view dropped);

  // ---- leases and promises (lease_checks.hpp) ----
  /// The lease `n` would serve a lease read on right now (what its Driver published).
  [[nodiscard]] bool lease_valid(const SimNode& n) const;
  void note_delivered(SimNode& n, const raft::Message& m);
  void note_sent(SimNode& n, const raft::Message& m);
  void check_lease_overlap();

  // ---- clients (cluster_clients.hpp) ----
  void client_wake(std::size_t c);
  void client_arrive(std::uint64_t op_id, std::uint64_t attempt, NodeId target);
  void client_response(std::uint64_t op_id, std::uint64_t attempt, NodeId from,
                       const result<lin::RegisterOutput>& out);
  void client_timeout(std::uint64_t op_id);
  /// Delivers a node's answer to the client after a network delay.
  void respond(std::uint64_t op_id, std::uint64_t attempt, NodeId from,
               result<lin::RegisterOutput> out);
  void retry(ClientOp& op, NodeId hint);
  void finish(ClientOp& op);
  NodeId pick_target(Client& c);

  // ---- faults, membership, liveness, history (cluster_faults.hpp) ----
  void fault_event();
  void fault_partition();
  void fault_net();
  void heal_partitions();
  void fault_crash();
  void fault_membership();
  void fault_transfer();
  void fault_pause();
  void fault_clock_jump();
  void heal_all();
  void probe_event();
  void reconcile_membership();
  SimNode* current_leader();
  [[nodiscard]] std::string describe_nodes() const;
  void check_history(RunResult& out);
  static std::vector<std::string> explain(const lin::KvCheckResult& res);

  SimOptions opt_;
  Rng rng_;
  Rng fault_rng_;
  Rng client_rng_;
  Rng lease_rng_;  // draws of the lease mix's own (a stream of its own: other mixes unchanged)
  SimExecutor executor_;
  SimNetwork net_;
  std::vector<std::unique_ptr<SimNode>> nodes_;
  Membership founding_;
  InvariantChecker inv_;
  checks::LeaderPromise promises_;
  Trace trace_;
  std::optional<Violation> violation_;
  bool faults_on_ = true;
  bool clients_on_ = true;
  TraceEvent sending_;  // the message before_send saw, completed by after_send

  std::vector<Client> clients_;
  std::vector<ClientOp> ops_;                                         // op id = index + 1
  std::map<std::uint64_t, std::pair<sim_time, bool>> first_applied_;  // op id -> (time, ok)
  std::vector<std::string> keys_{"x", "y", "z"};
  std::map<std::string, std::string> last_seen_;  // key -> a value some client saw there
  sim_duration op_timeout_ = sim_ms(400);
  bool pre_vote_ = true;
  bool check_quorum_ = true;
  /// A tick is this long on a node's own clock (its tick period in virtual time drifts).
  static constexpr sim_duration nominal_tick = sim_ms(10);
  static constexpr const char* probe_key = "~probe";

  sim_time heal_at_ = 0;
  sim_time liveness_deadline_ = 0;
  sim_time end_at_ = sim_never;
  sim_duration liveness_bound_ = sim_s(5);
  std::uint64_t lin_budget_ = 2'000'000;          // search steps per key
  LogIndex probe_index_ = 0;                      // where the first applied probe sits in the log
  std::optional<std::pair<NodeId, Term>> probe_;  // (leader, term) the probe was proposed at
  std::uint64_t probe_seq_ = 0;
  bool liveness_ok_ = false;
  RunResult stats_;
};

}  // namespace dengine::sim

#include "cluster_clients.hpp"
#include "cluster_faults.hpp"
#include "cluster_nodes.hpp"
#include "cluster_run.hpp"
#include "lease_checks.hpp"
