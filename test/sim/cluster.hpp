#pragma once
/// The simulation harness: a cluster of raft::Core nodes, each over its own memory::Engine and
/// KvMachine, on a simulated network, driven by one virtual clock and one seeded generator.
///
/// Each node's Ready is handled exactly per the rules in raft/ready.hpp: send `messages`; persist
/// snapshot, entries and hard state into the Engine; sync after a random delay (a crash before
/// the sync loses what was not synced); on_persisted; only then send `messages_after_persist`;
/// apply committed entries; complete reads. Invariants are checked after every event.
///
/// Member definitions are split by concern: cluster_nodes.hpp (node lifecycle, delivery, Ready
/// handling), cluster_clients.hpp (client operations), cluster_faults.hpp (fault scheduler,
/// membership changes, liveness), cluster_run.hpp (set-up, event loop, the final history check).

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "dengine/backends/memory/engine.hpp"
#include "dengine/core/config.hpp"
#include "dengine/node/lease_clock.hpp"
#include "dengine/raft/core.hpp"
#include "dengine/sim/clock.hpp"
#include "dengine/sim/network.hpp"
#include "dengine/sim/random.hpp"
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

/// Durable work of one Ready that waits for a sync, with the acknowledgements it releases.
struct PersistBatch {
  std::optional<std::pair<LogIndex, Term>> last_entry;
  std::optional<LogIndex> snapshot_index;
  std::optional<HardState> deferred_hard_state;  // only with Injection::ack_before_persist
  std::vector<raft::Message> after;
};

/// A client read waiting at a node for its read index, then for the state machine to reach it.
struct ReadWait {
  std::uint64_t request = 0;  // the read_index request id (unique per attempt)
  std::uint64_t op_id = 0;
  std::uint64_t attempt = 0;
  bool index_known = false;
  LogIndex index = 0;
};

/// One simulated server: its "disk" (Engine + durable snapshot image) survives crashes; its
/// process (Core, state machine, queues) does not.
struct SimNode {
  enum class Status : std::uint8_t { idle, up, down, removed };
  NodeId id = no_node;
  Status status = Status::idle;
  std::uint64_t incarnation = 0;
  memory::Engine engine;
  std::shared_ptr<const Snapshot> durable_image;
  std::shared_ptr<const Snapshot> pending_image;  // installed, durable at the next sync
  std::optional<raft::Core> core;
  KvMachine sm;
  std::deque<PersistBatch> persist_queue;
  bool sync_scheduled = false;
  sim_duration tick_period = sim_ms(10);
  std::uint32_t snapshot_every = 32;
  LogIndex last_snapshot = 0;
  raft::Role last_role = raft::Role::follower;
  NodeId last_leader = no_node;
  LogIndex last_commit = 0;
  std::map<std::uint64_t, std::uint64_t> waiting_writes;  // op id -> attempt that proposed it
  std::vector<ReadWait> reads;

  // ---- time as the node sees it, and its event loop ----
  /// Added to the node's clock by forward clock jumps (its clock never goes back).
  sim_duration clock_offset = 0;
  /// The event loop is frozen until then: messages, ticks, syncs and requests wait.
  sim_time paused_until = 0;
  std::deque<Arrival<raft::Message>> held_messages;  // arrived while paused, in order
  bool tick_held = false;  // a tick came due while paused: it runs (once) at the resume
  bool sync_held = false;  // a sync completed while paused: reported at the resume
  /// The lease anchored to this node's clock (node/lease_clock.hpp), per incarnation.
  std::optional<node::LeaseClock<sim_time, sim_duration>> lease_clock;

  // ---- the harness's own record of promises (lease_checks.hpp), across incarnations ----
  std::uint64_t ticks = 0;  // ticks taken, over every incarnation
  /// Heartbeats delivered, by (leader, round): the tick count at arrival, until acknowledged.
  std::map<std::pair<NodeId, std::uint64_t>, std::uint64_t> heartbeats_in;
  /// The latest acknowledgement of a lease-holding leader's round: whom, and the tick count
  /// when that round arrived. From then on the node may grant nobody else a vote for an
  /// election timeout of its ticks.
  NodeId promised_to = no_node;
  std::uint64_t promised_at_tick = 0;
  /// Vote requests that came as part of a leader transfer: (candidate, term).
  std::set<std::pair<NodeId, Term>> transfer_requests;
};

class Cluster {
 public:
  explicit Cluster(SimOptions options);
  /// Runs the whole scenario: fault phase, heal, liveness, final checks.
  RunResult run();

 private:
  struct Event {
    enum class Kind : std::uint8_t {
      tick,
      sync,
      restart,
      client_wake,
      client_arrive,
      client_response,
      client_timeout,
      fault,
      heal,
      probe,
      resume,  // a paused node's event loop runs again
    };
    Kind kind = Kind::tick;
    NodeId node = no_node;
    std::uint64_t a = 0;   // incarnation (node events) or op id (client events)
    std::uint64_t b = 0;   // attempt number (client events)
    bool ok = true;        // client_response: the operation succeeded (else: retry)
    bool swapped = false;  // client_response: a CAS swapped
    std::string value{};   // client_response: the value read
    NodeId hint = no_node;
  };

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
    bool proposed = false;  // appended at some leader (so it may take effect)
    std::optional<lin::RegisterOutput> output;
  };
  struct Client {
    std::optional<std::uint64_t> current;
    NodeId leader_guess = no_node;
    std::uint64_t seq = 0;
  };

  // ---- lifecycle and event loop (this file) ----
  SimNode& node(NodeId id) { return *nodes_[id - 1]; }
  void schedule(sim_duration after, Event ev) { events_.push(clock_.now() + after, std::move(ev)); }
  RaftConfig config_for(const SimNode& n) const;
  void start_node(SimNode& n);
  void crash_node(SimNode& n, std::string why);
  void stop_node(SimNode& n);
  void dispatch(Event& ev);
  void deliver(Arrival<raft::Message>& a);
  void touched(SimNode& n);
  void process_ready(SimNode& n);
  void send_message(SimNode& from, raft::Message m);
  void persist_ready(SimNode& n, raft::Ready& rd);
  void on_sync(SimNode& n);
  void apply_entry(SimNode& n, const Entry& e);
  void maybe_snapshot(SimNode& n);
  void fail(std::string invariant, std::string detail);
  void check_node(SimNode& n);
  [[nodiscard]] bool up(NodeId id) const { return nodes_[id - 1]->status == SimNode::Status::up; }
  void tick_node(SimNode& n);
  void resume_node(SimNode& n);
  [[nodiscard]] bool paused(const SimNode& n) const { return n.paused_until > clock_.now(); }
  /// The node's own clock: virtual time at its drift rate (its ticks are nominal_tick apart on
  /// it), plus its forward jumps. Monotonic.
  [[nodiscard]] sim_time local_now(const SimNode& n) const {
    return n.clock_offset + clock_.now() * nominal_tick / n.tick_period;
  }

  // ---- leases and promises (lease_checks.hpp) ----
  /// The lease a leader would serve reads on right now: held by the core, and by the clock
  /// (unless the tick-lease bug is injected).
  [[nodiscard]] bool lease_valid(const SimNode& n) const;
  void note_delivered(SimNode& n, const raft::Message& m);
  void note_sent(SimNode& n, const raft::Message& m);
  void check_lease_overlap();

  // ---- clients (cluster_clients.hpp) ----
  void client_wake(std::size_t c);
  void client_arrive(Event& ev);
  void client_response(Event& ev);
  void client_timeout(Event& ev);
  void respond(NodeId from, std::uint64_t op_id, std::uint64_t attempt,
               std::optional<lin::RegisterOutput> out, NodeId hint);
  void retry(ClientOp& op, NodeId hint);
  void serve_reads(SimNode& n);
  void finish(ClientOp& op);
  NodeId pick_target(Client& c);

  // ---- faults, membership, liveness, history (cluster_faults.hpp) ----
  void fault_event();
  void fault_partition();
  void fault_net();
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
  VirtualClock clock_;
  Network<raft::Message> net_;
  EventQueue<Event> events_;
  std::vector<std::unique_ptr<SimNode>> nodes_;
  Membership founding_;
  InvariantChecker inv_;
  Trace trace_;
  std::optional<Violation> violation_;
  std::uint64_t event_count_ = 0;
  bool faults_on_ = true;
  bool clients_on_ = true;

  std::vector<Client> clients_;
  std::vector<ClientOp> ops_;                                         // op id = index + 1
  std::map<std::uint64_t, std::pair<sim_time, bool>> first_applied_;  // op id -> (time, ok)
  std::uint64_t next_request_ = 1;
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
  std::optional<LogIndex> pending_config_;  // index of the last config change proposed
  RunResult stats_;
};

}  // namespace dengine::sim

#include "cluster_clients.hpp"
#include "cluster_faults.hpp"
#include "cluster_nodes.hpp"
#include "cluster_run.hpp"
#include "lease_checks.hpp"
