#pragma once
/// dengine::node::Node — the runtime that drives a raft::Core over a StorageEngine, a
/// StateMachine and a Transport, with a client API (docs/node.md).
///
///   client ──propose/read──► event loop (Driver: raft::Core, waiters)
///                              │ messages ───────────────────────────► Transport
///                              │ PersistWork ──► log writer (append, group sync)
///                              │                   └─ PersistReport ─► event loop: on_persisted,
///                              │                                        messages_after_persist
///                              │ ApplyWork ────► applier (apply batches, reads, completions,
///                              │                   │                   snapshots by log size)
///                              ◄───────────────────┘ ApplyReport (applied index, snapshot image)
///
/// The runtime is the last template parameter (a RuntimeTag, runtime.hpp): node::Threaded, the
/// default, runs the roles on three threads (threaded.hpp); sim::Deterministic
/// (sim/deterministic.hpp, for tests) runs them as events on a SimExecutor in virtual
/// time. The roles and everything in this file are shared.
///
/// The snapshot store is a template parameter too (SS, a dengine::SnapshotStore; the
/// parameter after the runtime, so that `Node<S, M, T>` and `Node<S, M, T, sim::Deterministic>`
/// keep their meaning). It defaults to default_snapshot_store_t<S>: MemorySnapshotStore for a
/// storage that keeps everything in memory (memory::Engine: nothing outlives the process
/// anyway), FileSnapshotStore for any other. Name it to pair them otherwise, e.g.
/// `Node<MyLog, M, T, Threaded, MemorySnapshotStore>`, or to plug in a store of your own.
///
/// Threading: every public member may be called from any thread, except that stop() and the
/// blocking helpers must not be called from a completion handler or callback (they would wait
/// on the thread that runs them: they return invalid_argument instead). Completions run on the
/// applier (or the handler's associated executor), never on the event loop.
///
/// Lifetimes: the storage, state machine, snapshot store (and the transport's hub or network)
/// must outlive the Node. Destroying the Node stops it (gracefully).

#include <boost/asio/async_result.hpp>
#include <boost/asio/use_future.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>

#include "dengine/core/error.hpp"
#include "dengine/node/applier.hpp"
#include "dengine/node/clock.hpp"
#include "dengine/node/completion.hpp"
#include "dengine/node/config.hpp"
#include "dengine/node/driver.hpp"
#include "dengine/node/events.hpp"
#include "dengine/node/log_writer.hpp"
#include "dengine/node/metrics.hpp"
#include "dengine/node/recovery.hpp"
#include "dengine/node/runtime.hpp"
#include "dengine/node/snapshot_store.hpp"
#include "dengine/node/status.hpp"
#include "dengine/node/threaded.hpp"
#include "dengine/node/transport.hpp"
#include "dengine/raft/core.hpp"
#include "dengine/storage/concepts.hpp"

namespace dengine::node {

/// The snapshot store a Node over storage S gets when its SS parameter is not named: in memory
/// when the storage is (storage_in_memory, log_writer.hpp), a file otherwise.
template <StorageEngine S>
using default_snapshot_store_t =
    std::conditional_t<storage_in_memory<S>, MemorySnapshotStore, FileSnapshotStore>;

template <StorageEngine S, StateMachine M, Transport T, RuntimeTag R = Threaded,
          dengine::SnapshotStore SS = default_snapshot_store_t<S>>
class Node {
 public:
  using response_type = typename M::response_type;
  using runtime_tag = R;
  using clock_type = typename R::clock_type;
  /// The snapshot store type open() takes.
  using snapshot_store_type = SS;
  /// The class that runs the roles: ThreadedRuntime, or what the tag names.
  using Runtime = typename R::template arrangement<S, SS, M, T>;
  /// No threads of its own (the deterministic runtime): blocking helpers unavailable.
  static constexpr bool deterministic = R::deterministic;

  /// Opens a node: recovers from `storage`, `snapshots` and `sm` (recovery.hpp; a fresh storage
  /// starts a new cluster with config.initial_members), then starts the roles. A node that is
  /// the only voter campaigns at once. Errors: invalid config (invalid_argument naming the
  /// field), unreadable or inconsistent data (storage_corrupt and the like, naming what, and
  /// where as `where` tells).
  static result<std::unique_ptr<Node>> open(NodeConfig config, S& storage, M& sm, SS& snapshots,
                                            T transport, clock_type clock = clock_type{},
                                            NodeCallbacks callbacks = {},
                                            const DataLocations& where = {}) {
    DENGINE_TRYV(config.validate());
    DENGINE_TRYV(R::check(clock));
    DENGINE_TRY(rec, recover(config, storage, sm, snapshots, where));
    const LogIndex last_snapshot = rec.state.snapshot.index;
    const HardState durable = rec.state.hard_state;
    const Term applied_term = rec.applied_term;
    const std::size_t applied_bytes = rec.applied_bytes_since_snapshot;
    std::unique_ptr<Node> node(new Node(std::move(config), std::move(callbacks)));
    node->clock_ = clock;
    auto core = raft::Core::create(node->config_.raft, std::move(rec.state));
    if (!core) return detail::open_error(core.error(), "starting the raft core");
    const bool solo =
        core.value().membership().voters == std::vector<NodeId>{node->config_.raft.id};
    Driver<M, clock_type> driver(std::move(core).value(), durable, node->config_, clock,
                                 node->metrics_, node->callbacks_, node->status_);
    if (solo) driver.campaign();  // the only voter: no reason to wait out an election timeout
    const LogIndex applied = sm.applied_index();
    node->runtime_ = std::make_unique<Runtime>(
        node->config_, clock, std::move(driver),
        LogWriter<S, SS, clock_type>(storage, snapshots, node->config_.persistence, clock,
                                     node->metrics_),
        Applier<M, clock_type>(
            sm, clock, node->metrics_, node->callbacks_, node->config_.snapshot_threshold_bytes,
            node->config_.apply_chunk_entries, last_snapshot, applied_term, applied_bytes),
        std::move(transport));
    node->status_.publish_applied(applied);
    node->metrics_.applied_index.set(static_cast<std::int64_t>(applied));
    DENGINE_TRYV(node->runtime_->start());
    node->accepting_ = true;
    node->status_.publish_running(true);
    return node;
  }

  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  /// Stops the node (see stop()). Must not run on one of the node's own threads. stop() reports
  /// failures as results: only an allocation failure could escape, and terminating is right then.
  ~Node() { (void)stop(); }  // NOLINT(bugprone-exception-escape)

  // ---- client API (Asio completion tokens: a callback, asio::use_future, asio::use_awaitable)
  // ----

  /// Proposes `command`; completes with the state machine's response once its entry is applied
  /// here, or fails. On a follower (or while no leader is known) the command is forwarded to the
  /// leader (NodeConfig::forward_proposals; docs/cluster.md, forwarding). Definite failures (the
  /// command is not and will never be applied): not_leader only with forwarding off
  /// (leader_hint names the leader if known), timeout (forwarding: no leader known within the
  /// request timeout, never sent), too_busy (pending proposals at their bound, or
  /// the leader's uncommitted bytes), too_large, proposal_dropped (a leadership transfer was
  /// running, or another entry committed at its index), stopped (the node stopped before the
  /// entry left it; `cause` set when a failure stopped it). outcome_unknown: the entry was
  /// appended and then no answer could be had — `cause` says why: timeout, stopped, the
  /// storage's or state machine's error (no_space, io_error, storage_corrupt, ...), compacted
  /// (covered by a snapshot from the leader). Signature: void(dengine::result<response_type>).
  template <class CompletionToken>
  auto propose(std::string command, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(result<response_type>)>(
        [this](auto handler, std::string cmd) {
          this->template submit_proposal<response_type>(
              std::move(handler), [c = std::move(cmd)](auto& driver, auto done) mutable {
                driver.propose(std::move(c), std::move(done));
              });
        },
        token, std::move(command));
  }

  /// Runs `query(const M&)` at `consistency` (ReadConsistency in config.hpp) on the applier and
  /// completes with its value (or, if the query returns result<X>, with that). Fails: not_leader
  /// (lease on a follower, or linearizable with no leader known), too_busy, timeout, stopped.
  /// Signature: void(dengine::result<V>) where V is the query's value type (read_value_t).
  template <class Query, class CompletionToken>
  auto read(ReadConsistency consistency, Query query, CompletionToken&& token) {
    using V = read_value_t<Query, M>;
    return boost::asio::async_initiate<CompletionToken, void(result<V>)>(
        [this, consistency](auto handler, Query q) {
          std::shared_lock lock(api_mutex_);
          auto ticket = admit(pending_reads_, config_.max_pending_reads, metrics_.pending_reads,
                              metrics_.reads_failed, "reads");
          if (!ticket) return reject<V>(std::move(handler), std::move(ticket).error());
          ReadJob<M> job(std::move(q), Completion<V>(std::move(handler), ticket.value()));
          runtime_->submit([consistency, j = std::move(job)](auto& driver) mutable {
            driver.read(consistency, std::move(j));
          });
        },
        token, std::move(query));
  }

  /// Asks the leader's service (NodeCallbacks::leader_service) to answer `request`: for what
  /// needs the leader but not the log, such as a lease keep-alive. Served on this node's event
  /// loop if it leads; on a follower sent to the leader (whatever NodeConfig::forward_proposals
  /// says: the caller chooses to call). Sent again when the leader changes or declines, so the
  /// service may see one call more than once. Counts against max_pending_reads. Fails:
  /// timeout (no answer within the request timeout), too_busy, too_large (beyond
  /// max_entry_bytes), stopped. Signature: void(dengine::result<std::string>).
  template <class CompletionToken>
  auto call_leader(std::string request, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(result<std::string>)>(
        [this](auto handler, std::string req) {
          std::shared_lock lock(api_mutex_);
          auto ticket = admit(pending_reads_, config_.max_pending_reads, metrics_.pending_reads,
                              metrics_.reads_failed, "reads and leader calls");
          if (!ticket) return reject<std::string>(std::move(handler), std::move(ticket).error());
          Completion<std::string> done(std::move(handler), ticket.value());
          runtime_->submit([r = std::move(req), d = std::move(done)](auto& driver) mutable {
            driver.call_leader(std::move(r), std::move(d));
          });
        },
        token, std::move(request));
  }

  /// Proposes a membership change (one server at a time; docs/membership.md); completes with
  /// the membership after it once applied here. Signature: void(dengine::result<Membership>).
  template <class CompletionToken>
  auto change_membership(raft::ConfigChange change, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(result<Membership>)>(
        [this](auto handler, raft::ConfigChange ch) {
          this->template submit_proposal<Membership>(
              std::move(handler), [ch](auto& driver, auto done) mutable {
                driver.change_membership(ch, std::move(done));
              });
        },
        token, std::move(change));
  }

  /// Asks the leader (this node) to hand leadership to `target`; completes once the transfer
  /// started (watch leader changes for its end). Signature: void(dengine::result<void>).
  template <class CompletionToken>
  auto transfer_leadership(NodeId target, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(result<void>)>(
        [this, target](auto handler) {
          this->template submit_proposal<void>(
              std::move(handler), [target](auto& driver, auto done) mutable {
                driver.transfer_leadership(target, std::move(done));
              });
        },
        token);
  }

  /// Starts an election now (tests; bootstrap of a cluster that should not wait a timeout).
  void campaign() {
    std::shared_lock lock(api_mutex_);
    if (accepting_) runtime_->submit([](auto& driver) { driver.campaign(); });
  }

  // ---- blocking helpers (threaded arrangement; never from a completion handler) ----

  /// propose() and wait. Returns within request_timeout (plus a tick) even if nothing answers.
  result<response_type> propose_wait(std::string command) requires(!deterministic) {
    if (runtime_->on_own_thread()) return own_thread_error("propose_wait");
    return propose(std::move(command), boost::asio::use_future).get();
  }

  /// read() and wait.
  template <class Query>
  result<read_value_t<Query, M>> read_wait(ReadConsistency consistency,
                                           Query query) requires(!deterministic) {
    if (runtime_->on_own_thread()) return own_thread_error("read_wait");
    return read(consistency, std::move(query), boost::asio::use_future).get();
  }

  /// change_membership() and wait.
  result<Membership> change_membership_wait(raft::ConfigChange change) requires(!deterministic) {
    if (runtime_->on_own_thread()) return own_thread_error("change_membership_wait");
    return change_membership(std::move(change), boost::asio::use_future).get();
  }

  // ---- lifecycle and observation ----

  /// Graceful stop: new requests fail with stopped; proposals waiting on the core fail with
  /// outcome_unknown (cause stopped: their entries may be in a log and commit later — on a
  /// single node, when it restarts), or stopped if their entry never left the core; entries
  /// already handed to the log writer are persisted and those handed to the applier applied
  /// (their proposals complete with their responses); waiting reads fail with stopped; threads
  /// are joined. Never hangs on the network. Idempotent.
  /// invalid_argument when called from a completion handler or callback of this node.
  result<void> stop() {
    if (!runtime_) return success();
    if (runtime_->on_own_thread()) return own_thread_error("stop");
    std::lock_guard stop_lock(stop_mutex_);
    {
      std::unique_lock lock(api_mutex_);
      accepting_ = false;
    }
    status_.publish_running(false);
    return runtime_->stop();
  }

  /// Deterministic runtime only: a simulated crash (sim::DeterministicRuntime::halt). The node
  /// accepts nothing more; requests fail with stopped. Afterwards crash the storage
  /// (memory::Engine::crash) and open a new Node on it to simulate the restart.
  result<void> halt() requires(deterministic) {
    if (runtime_->on_own_thread()) return own_thread_error("halt");
    {
      std::unique_lock lock(api_mutex_);
      accepting_ = false;
    }
    status_.publish_running(false);
    return runtime_->halt();
  }

  /// Deterministic runtime only, for simulators: freezes every role of the node for `d` of
  /// virtual time, as a stopped process or a paused VM (its clock runs on; what comes due waits
  /// and then runs in order).
  void freeze_for(std::chrono::microseconds d) requires(deterministic) { runtime_->freeze_for(d); }

  /// Deterministic runtime only, for simulators and tests: the node's raft::Core, read-only, so
  /// that checks can observe its state (term, vote, log, commit index) between events. Valid
  /// until the node is destroyed; never call it from inside one of the node's events.
  [[nodiscard]] const raft::Core& core() const noexcept requires(deterministic) {
    return runtime_->core();
  }

  /// The commit index at which a lease read may be served right now, from any thread, without
  /// a trip through the event loop: set while this node leads with a held lease (the event loop
  /// publishes the lease as a clock deadline, raft::Core::lease_ticks_left), nullopt otherwise.
  /// A caller serves the read from the state machine once its applied index reaches it.
  [[nodiscard]] std::optional<LogIndex> lease_read_index() const noexcept {
    const auto [deadline_ns, index] = status_.lease();
    if (deadline_ns == 0) return std::nullopt;
    const auto now_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(clock_.now().time_since_epoch())
            .count();
    if (now_ns >= deadline_ns) return std::nullopt;
    return index;
  }

  /// Blocks until the node can serve, at most `timeout`: it knows a leader and has applied
  /// everything committed so far. Then a proposal here succeeds (a follower forwards it; with
  /// forwarding off it fails with not_leader naming the leader), and a read here sees every write
  /// committed before the call. A single voter gets there right after open() (it elects itself at
  /// once and applies its first entry, a few ms); a cluster member once an election is won (about
  /// an election timeout). Calling the API earlier is allowed, not required to wait: proposals wait
  /// for a leader to forward to (or, with forwarding off, fail with not_leader, leader_hint
  /// no_node), and reads wait or fail the same way. Errors: timeout (with the role, term, commit
  /// and applied index seen), stopped (the failure that stopped the node as `cause`, its message in
  /// the detail), invalid_argument from a completion handler or callback (it would wait on the
  /// thread that must make progress). Threaded runtime only: a deterministic node is driven by the
  /// caller's executor.
  [[nodiscard]] result<void> wait_ready(std::chrono::milliseconds timeout) const
      requires(!deterministic) {
    if (on_own_thread())
      return error(errc::invalid_argument,
                   "node wait_ready() called from a completion handler or callback");
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const NodeStatus s = status();
      if (!s.running) {
        if (!s.failure) return error(errc::stopped, "node wait_ready: the node is stopped");
        error e(errc::stopped,
                "node wait_ready: the node stopped on a fatal error: " + s.failure->message());
        e.cause = s.failure->code;
        return e;
      }
      if (s.leader != no_node && s.commit > 0 && s.applied >= s.commit) return success();
      if (std::chrono::steady_clock::now() >= deadline)
        return error(errc::timeout,
                     "node wait_ready: not ready after " + std::to_string(timeout.count()) +
                         " ms (leader " + std::to_string(s.leader) + ", term " +
                         std::to_string(s.term) + ", commit " + std::to_string(s.commit) +
                         ", applied " + std::to_string(s.applied) + ")");
      // Polling the published status: readiness is a one-off wait at start-up, and a 1 ms poll
      // keeps the event loop free of waiter bookkeeping.
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  /// This node's id.
  [[nodiscard]] NodeId id() const noexcept { return config_.raft.id; }
  /// A copy of the status (role, leader, term, commit and applied indexes, running, and the
  /// failure that stopped the node if one did), from any thread.
  [[nodiscard]] NodeStatus status() const noexcept { return status_.read(config_.raft.id); }
  /// The configuration in effect on this node — members and their addresses, the latest in its
  /// log (appended, maybe not yet committed) — from any thread.
  [[nodiscard]] Membership membership() const { return status_.membership(); }
  /// True while this node believes it leads (it may have been deposed without knowing yet).
  [[nodiscard]] bool is_leader() const noexcept { return status().role == raft::Role::leader; }
  /// The leader this node knows of (no_node if none).
  [[nodiscard]] NodeId leader() const noexcept { return status().leader; }
  /// The metrics registry (read from any thread; Registry::write_prometheus exports it).
  [[nodiscard]] const Registry& metrics() const noexcept { return registry_; }
  /// The node's metrics by field.
  [[nodiscard]] const NodeMetrics& node_metrics() const noexcept { return metrics_; }
  /// The configuration the node runs with.
  [[nodiscard]] const NodeConfig& config() const noexcept { return config_; }
  /// True when called on one of the node's own threads (a completion handler or callback):
  /// layers above use it to refuse blocking waits there, as the *_wait helpers do.
  [[nodiscard]] bool on_own_thread() const noexcept {
    return runtime_ && runtime_->on_own_thread();
  }

 private:
  Node(NodeConfig config, NodeCallbacks callbacks)
      : config_(std::move(config)), callbacks_(std::move(callbacks)), metrics_(registry_) {}

  /// Takes an admission slot (caller holds api_mutex_ shared).
  result<Ticket> admit(std::atomic<std::size_t>& pending, std::size_t max, Gauge& gauge,
                       Counter& failures, const char* what) {
    if (!accepting_) return error(errc::stopped, "the node is stopped");
    if (pending.fetch_add(1, std::memory_order_acq_rel) >= max) {
      pending.fetch_sub(1, std::memory_order_acq_rel);
      metrics_.rejected_busy.add();
      return error(errc::too_busy,
                   std::string("pending ") + what + " at their bound of " + std::to_string(max));
    }
    gauge.add(1);
    return Ticket{&pending, &gauge, &failures};
  }

  /// Admits a request that takes a proposal slot (a proposal, a membership change, a transfer)
  /// and hands `then(driver, Completion<V>)` to the runtime, or completes `handler` with the
  /// refusal.
  template <class V, class Handler, class Then>
  void submit_proposal(Handler&& handler, Then then) {
    std::shared_lock lock(api_mutex_);
    auto ticket = admit(pending_proposals_, config_.max_pending_proposals,
                        metrics_.pending_proposals, metrics_.proposals_failed, "proposals");
    if (!ticket) return reject<V>(std::forward<Handler>(handler), std::move(ticket).error());
    Completion<V> done(std::forward<Handler>(handler), ticket.value());
    runtime_->submit([t = std::move(then), d = std::move(done)](auto& driver) mutable {
      t(driver, std::move(d));
    });
  }

  /// Completes a request refused at admission: dispatched to the handler's associated executor,
  /// which for a handler without one means inside the initiating call.
  template <class V, class Handler>
  static void reject(Handler&& handler, error e) {
    Completion<V>(std::forward<Handler>(handler))(std::move(e));
  }

  static error own_thread_error(const char* what) {
    return error(errc::invalid_argument,
                 std::string("node ") + what +
                     "() called on one of the node's own threads (from a "
                     "completion handler or callback): it would wait on itself");
  }

  NodeConfig config_;
  clock_type clock_{};
  NodeCallbacks callbacks_;
  Registry registry_;
  NodeMetrics metrics_;
  StatusBoard status_;
  std::atomic<std::size_t> pending_proposals_{0};
  std::atomic<std::size_t> pending_reads_{0};
  /// Held shared by every request's admission and hand-off to the runtime, exclusively by
  /// stop() to close admission: after stop() took it, no request can reach the runtime.
  std::shared_mutex api_mutex_;
  bool accepting_ = false;  // guarded by api_mutex_
  std::recursive_mutex stop_mutex_;
  /// Declared last: destroyed (stopped) first, while everything it points to still exists.
  std::unique_ptr<Runtime> runtime_;
};

}  // namespace dengine::node
