#pragma once
/// The KV stack under simulation: 3 or 5 engine::KvReplica instances (node::Node + KV state
/// machine + lessor + housekeeping) in the deterministic arrangement — every role of every
/// replica an event on one sim::SimExecutor, over sim::SimNetwork — driven by clients through
/// engine::LocalKvClient's asynchronous API, under network faults, partitions, replicas going
/// down and coming back (graceful stops, process crashes, power losses) and leader transfers.
/// Everything the checks need is recorded here (kv_records.hpp); after the run kv_checks.hpp
/// feeds it to the checks of checks/kv_*.hpp.
///
/// Member definitions are split by concern: kv_cluster_nodes.hpp (replica lifecycle, faults,
/// watchers), kv_clients.hpp (the client workload), kv_checks.hpp (feeding the checks), kv_run.hpp
/// (the run's phases).

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "dengine/backends/memory/engine.hpp"
#include "dengine/backends/memory/kv_store.hpp"
#include "dengine/engine/kv_replica.hpp"
#include "dengine/engine/local_kv_client.hpp"
#include "dengine/node/snapshot_store.hpp"
#include "dengine/sim/deterministic.hpp"
#include "dengine/sim/random.hpp"
#include "dengine/sim/transport.hpp"
#include "dengine/statemachines/kv/codec.hpp"
#include "invariants.hpp"
#include "kv_options.hpp"
#include "kv_records.hpp"
#include "runner.hpp"
#include "trace.hpp"

namespace dengine::sim::kvsim {

/// A memory::Engine that reports the lease revoke entries appended to it: the only way to see
/// when a leader's lessor decided that a lease expired (housekeeping proposes the revoke).
class RecordingEngine : public memory::Engine {
 public:
  /// Called for each revoke entry appended: (index, term, lease).
  std::function<void(LogIndex, Term, kv::LeaseId)> on_revoke;

  result<void> append(std::span<const Entry> batch) {
    DENGINE_TRYV(memory::Engine::append(batch));
    if (on_revoke) {
      for (const Entry& e : batch) {
        if (e.type != EntryType::normal || e.data.empty()) continue;
        auto cmd = kv::decode_command(e.data);
        if (!cmd) continue;
        if (const auto* rv = std::get_if<kv::LeaseRevokeRequest>(&cmd.value()))
          on_revoke(e.index, e.term, rv->id);
      }
    }
    return success();
  }
};
static_assert(StorageEngine<RecordingEngine>);

/// The replica and client types under test.
using Replica =
    engine::KvReplica<RecordingEngine, memory::KvStore, sim::SimTransport, sim::Deterministic>;
using Client = engine::LocalKvClient<Replica>;
static_assert(Replica::deterministic);

/// One simulated server: its "disk" (log, hard state, snapshot image, and — unless a power
/// loss strikes — its KV store) survives crashes; its process does not.
struct Member {
  NodeId id = no_node;
  RecordingEngine disk;
  std::unique_ptr<memory::KvStore> store = std::make_unique<memory::KvStore>();
  node::MemorySnapshotStore snapshots;
  std::unique_ptr<Replica> replica;  // null while down
  std::uint64_t incarnation = 0;
  /// Declared after the replica: destroyed before it (a stream cancels on its replica's hub).
  std::optional<engine::WatchStream> watch;
  std::size_t segment = 0;  ///< index of the current watch segment in KvCluster::segments_
  /// Its removal from the configuration committed: its process was stopped, and stays down
  /// until it is added back (its disk is kept).
  bool removed = false;
  /// Started for an add-learner proposal that has not reached the configuration yet.
  bool joining = false;
  bool up() const noexcept { return replica != nullptr; }
};

/// What a run found and did.
struct KvRunResult : RunOutcome {
  std::uint64_t stops = 0;
  std::uint64_t power_losses = 0;
  std::uint64_t transfers = 0;
  /// Proposals followers forwarded to a leader (sends, a refused one counted again).
  std::uint64_t forwarded = 0;
  std::uint64_t keep_alives = 0;
  /// Of those, the ones a follower asked the leader's lessor for (leader calls).
  std::uint64_t keep_alives_forwarded = 0;
  std::uint64_t leases = 0;
  std::uint64_t lease_expiries = 0;
  std::uint64_t watch_events = 0;
  std::uint64_t watch_cancels = 0;
  kv::Revision final_revision = 0;
};

/// Nothing more to record from a response (KvCluster::on_done).
struct NoMore {
  template <class Op, class Response>
  void operator()(Op& /*op*/, const Response& /*response*/) const {}
};

/// A client: one operation in flight at a time, against the replica it believes leads.
struct ClientState {
  std::uint64_t id = 0;
  Rng rng{0};
  NodeId guess = no_node;
  std::uint64_t in_flight = 0;  ///< op id, 0 when idle
  std::uint64_t seq = 0;
  std::map<std::string, std::string> last_seen;  ///< per key: the value last read or written
  std::vector<kv::LeaseId> leases;               ///< granted to this client, oldest first
  kv::LeaseId put_next = kv::no_lease;           ///< a lease just granted: put a key with it
};

class KvCluster {
 public:
  explicit KvCluster(const KvSimOptions& options);
  KvCluster(const KvCluster&) = delete;
  KvCluster& operator=(const KvCluster&) = delete;
  /// Stops every replica (an allocation failure while stopping terminates the run).
  ~KvCluster();  // NOLINT(bugprone-exception-escape)

  /// Runs the whole scenario and the checks.
  KvRunResult run();

 private:
  // ---- kv_cluster_nodes.hpp: replicas, faults, watchers ----
  engine::EngineConfig config_for(const Member& m);
  void open(Member& m);
  /// How a replica goes down.
  enum class Down : std::uint8_t {
    stop,        ///< graceful stop (Node::stop: queued work finishes), state kept
    crash,       ///< process crash (Node::halt): the OS keeps the log and the KV store
    power_loss,  ///< halt, and unsynced log data and the KV store are lost
  };
  void take_down(Member& m, Down how);
  Member& member(NodeId id) { return *members_.at(id - 1); }
  [[nodiscard]] std::size_t down_count() const;
  /// The up replica that leads in the highest term (nullptr if none).
  Member* leader();
  void on_role(NodeId id, const node::LeaderChange& change);
  void fault_event();
  void fault_net();
  void heal_partitions();
  void fault_partition();
  void fault_crash();
  void fault_transfer();
  void fault_membership();
  /// Proposes `change` at the leader (one change at a time); `why` goes to the trace.
  void propose_change(Member& leader, const raft::ConfigChange& change, const char* why);
  /// A replica applied a membership change: the newest one (by index) is the configuration.
  void on_membership(NodeId id, const node::MembershipChange& change);
  /// The operator's reconciliation: stops the processes of members whose removal committed.
  void reconcile();
  /// After the heal: adds back every replica that is not in the configuration.
  void readd_tick();
  [[nodiscard]] bool all_in_config() const;
  void heal();
  void start_watch(Member& m, kv::Revision from);
  /// Takes what the member's watcher queued; if the hub cancelled it and `rewatch`, watches
  /// again from where the cancellation says.
  void drain_watch(Member& m, bool rewatch = true);
  void drain_watches();
  void drain_tick();  ///< drains every watcher, then again after watch_drain_every
  void end_watch(Member& m, kv::Revision end);

  // ---- kv_clients.hpp: the workload ----
  void client_later(ClientState& c, sim_duration after);
  void client_issue(ClientState& c);
  NodeId pick_target(ClientState& c);
  OpRecord& begin_op(ClientState& c, OpKind kind, NodeId node);
  /// Records a failed op: unknown outcome or definitely not applied, by the error; follows a
  /// not_leader hint.
  void fail_op(ClientState& c, OpRecord& op, const error& e);
  void finish_op(ClientState& c, OpRecord& op);
  /// The completion handler of `op`: a late answer (the harness gave up on the op) is ignored;
  /// a failure goes to fail_op; a success records the header's revision, runs
  /// `more(op, response)` and finishes the op.
  template <class Response, class More = NoMore>
  auto on_done(ClientState& c, const OpRecord& op, More more = {});
  void keep_alive_tick(ClientState& c);
  bool live_write(sim_time deadline);

  // ---- kv_checks.hpp: what the checks of checks/kv_*.hpp are fed ----
  /// After every event: no replica may hold a lease (lease_read_index() answers) while it leads
  /// a lower term than another replica that leads.
  void check_lease_overlap();
  /// After the run: every check of checks/kv_*.hpp over the records and the final replicas.
  void check_all();

  void violation(std::string invariant, std::string detail);
  void note(TraceKind kind, NodeId node, std::string text) {
    trace_.note(executor_.now(), kind, node, std::move(text));
  }
  [[nodiscard]] sim_time now() const { return executor_.now(); }

  KvSimOptions opt_;
  sim::SimExecutor executor_;  // declared first: outlives the network and the replicas
  sim::SimNetwork net_;
  Rng fault_rng_;
  Trace trace_;
  KvRunResult result_;
  bool faults_on_ = true;
  bool clients_on_ = true;
  bool stopping_ = false;
  bool lease_overlap_seen_ = false;  // reported once per run
  /// The configuration as of the newest membership change any replica applied.
  Membership config_;
  LogIndex config_index_ = 0;
  bool change_in_flight_ = false;
  sim_time heal_at_ = 0;
  std::vector<RoleChange> roles_;
  std::vector<RevokeAppend> revokes_;
  std::vector<KeepAlive> keep_alives_;
  std::vector<OpRecord> ops_;  ///< ops_[id - 1]
  std::map<kv::LeaseId, LeaseRecord> leases_;
  std::vector<std::string> lease_keys_;  ///< every key put under a lease, in put order
  std::vector<WatchSegment> segments_;
  std::vector<std::unique_ptr<ClientState>> clients_;
  /// Declared last: destroyed first, while everything their completions touch still exists.
  std::vector<std::unique_ptr<Member>> members_;
};

}  // namespace dengine::sim::kvsim
