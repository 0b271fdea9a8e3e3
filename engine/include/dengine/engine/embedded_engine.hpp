#pragma once
/// EmbeddedEngine: dengine inside your process. Opens a backend's storage from a data dir,
/// runs a KvReplica on it and hands out LocalKvClients (docs/embedded.md):
///
///   auto engine = dengine::EmbeddedEngine<dengine::rawfile::Backend>::start(
///       dengine::engine::EngineConfig::single_node("/var/lib/app"));
///   if (!engine) { /* engine.error().message() says what and where */ }
///   engine.value()->wait_ready(std::chrono::seconds(5));
///   auto kv = engine.value()->client();
///   kv.put("greeting", "hello");
///
/// One node first; grow to three without downtime: start the new engines listing the current
/// voters — in other processes with EngineConfig::network (docs/cluster.md), or in this one on
/// the same LocalHub — then add_learner + add_voter each.
/// Threads: every member may be called from any thread, except stop() and the blocking helpers
/// from a completion handler or callback.
///
/// This header declares the class; embedded_engine_impl.hpp defines its members and is included
/// from here unless DENGINE_COMPILED is defined. In that compiled mode (docs/building.md,
/// "Compiled mode") a library holds the engines over the shipped backends
/// (dependency('dengine-embedded-<backend>')), and a translation unit that uses one compiles
/// only these declarations: a few seconds instead of a minute.

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/engine/backend.hpp"
#include "dengine/engine/config.hpp"
#include "dengine/engine/dir_lock.hpp"
#include "dengine/engine/kv_replica_fwd.hpp"
#include "dengine/engine/local_kv_client.hpp"
#include "dengine/engine/periodic_task.hpp"
#include "dengine/net/metrics.hpp"
#include "dengine/node/any_transport.hpp"
#include "dengine/node/fwd.hpp"
#include "dengine/node/metrics.hpp"
#include "dengine/node/status.hpp"
#include "dengine/node/threaded_tag.hpp"
#include "dengine/node/transport.hpp"
#include "dengine/statemachines/kv/store_limits.hpp"

namespace dengine::engine {

/// Who leads, as this node sees it.
struct LeaderInfo {
  NodeId leader = no_node;  ///< no_node while none is known
  Term term = 0;
  bool is_self = false;  ///< this node leads
};

class DataDirGuard;  // data_dir_guard.hpp

namespace detail {

/// A backend's tuning type, or an empty stand-in for a backend without one.
struct NoTuning {};
template <class B>
struct tuning_of {
  using type = NoTuning;
};
template <class B>
requires requires { typename B::tuning; }
struct tuning_of<B> {
  using type = typename B::tuning;
};

}  // namespace detail

/// An embedded KV engine over backend B (memory, rawfile, lmdb, sqlite or your own). The class
/// needs only B's shape (BackendShape); start() checks the whole Backend concept.
template <BackendShape B>
class EmbeddedEngine {
 public:
  using storage_type = typename B::storage_engine;
  using kv_store_type = typename B::kv_store;
  /// Where snapshot images go, chosen by the backend at compile time: a file in the data dir
  /// (`<data_dir>/snap`) for a persistent backend, memory for the others (their data dir is
  /// unused and nothing of theirs outlives the process).
  using snapshot_store_type =
      std::conditional_t<B::persistent, node::FileSnapshotStore, node::MemorySnapshotStore>;
  /// The node's transport is chosen when the engine starts: TCP (net::AsioTransport) with
  /// EngineConfig::network, else a LocalHub.
  using replica_type = KvReplica<storage_type, kv_store_type, node::AnyTransport, node::Threaded,
                                 snapshot_store_type>;
  using client_type = LocalKvClient<replica_type>;

  /// NodeConfig::apply_chunk_entries used for a non-persistent backend when the config leaves
  /// it 0 (measured with dengine-bench-embedded: 16 gave the best 64-client put rate).
  static constexpr std::size_t memory_apply_chunk_entries = 16;

  /// What the backend's KvStore can hold (its traits), as the KV layer checks requests against.
  [[nodiscard]] static constexpr kv::StoreLimits backend_limits() noexcept {
    return kv::StoreLimits{B::name, B::max_key_bytes, B::max_value_bytes};
  }
  static_assert(backend_limits().usable(),
                "the backend's max_key_bytes / max_value_bytes are below what the KV state "
                "machine needs for its own records (statemachines/kv/store_limits.hpp)");

  /// Starts an engine: opens (creating if missing) the data dir, recovers what it holds, and
  /// starts the node. A single-voter node elects itself at once. With EngineConfig::network, the
  /// node listens for its peers and reaches them over TCP (members in other processes). With
  /// `hub`, the node joins that in-process network (an in-process cluster: every member on the
  /// same hub, which must outlive them); with neither, it gets a network of its own (a single
  /// node, or a cluster of one that grows over a hub later). Errors name the field or the file:
  /// invalid_argument (bad config, data dir in use or not this engine's), io_error,
  /// storage_corrupt (damaged data, or a store behind its data dir's marker), ...
  ///
  /// A persistent backend's data dir carries a marker (data_dir_guard.hpp): another backend's
  /// or member's data dir, one with files but no marker, an emptied store or one behind the
  /// marker are refused before anything is written. A first start that fails leaves the data
  /// dir as empty as it found it (no preallocated segment or half-made store behind).
  static result<std::unique_ptr<EmbeddedEngine>> start(EngineConfig config,
                                                       node::LocalHub* hub = nullptr);

  EmbeddedEngine(const EmbeddedEngine&) = delete;
  EmbeddedEngine& operator=(const EmbeddedEngine&) = delete;
  /// Stops the engine (gracefully) if it still runs.
  ~EmbeddedEngine();  // NOLINT(bugprone-exception-escape): see its definition

  /// Waits until the engine can serve: a leader is known and this node has applied everything
  /// committed so far (on a single node: it elected itself and applied its first entry).
  /// timeout (with what it saw) if that takes longer than `timeout`; stopped if the engine
  /// stopped — after a storage or state-machine failure with that failure as `cause` and its
  /// message (naming the file) in the detail.
  result<void> wait_ready(std::chrono::milliseconds timeout);

  /// A client of this engine (a cheap handle; must not outlive the engine).
  [[nodiscard]] client_type client() noexcept;

  /// True while this node believes it leads.
  [[nodiscard]] bool is_leader() const noexcept;
  /// The leader as this node knows it.
  [[nodiscard]] LeaderInfo leader_info() const noexcept;
  /// Role, leader, term, commit and applied indexes, whether it runs, and the failure that
  /// stopped it if one did (NodeStatus::failure: the storage's error, naming the file).
  [[nodiscard]] node::NodeStatus status() const noexcept;
  /// This node's id.
  [[nodiscard]] NodeId id() const noexcept;

  // ---- membership (on the leader; one change at a time, docs/membership.md) ----

  /// Adds `node` as a learner (receives the log, does not vote): the first step of adding a
  /// member, so that it catches up before it counts towards quorums. `address`: where its peers
  /// reach it ("host:port"); required over the network, where it travels in the log to every
  /// member (empty: none, as in an in-process cluster).
  result<Membership> add_learner(NodeId node, std::string address = {});
  /// Makes `node` a voter (promotes a learner, or adds a voter directly). An empty `address`
  /// keeps the one the learner was added with.
  result<Membership> add_voter(NodeId node, std::string address = {});
  /// Removes `node` (a removed leader steps down once the change commits).
  result<Membership> remove_member(NodeId node);
  /// Hands leadership to `target` (returns once the transfer started).
  result<void> transfer_leadership(NodeId target);
  /// The configuration as this node knows it: voters, learners and their addresses (the latest
  /// in its log, which may not be committed yet). Any node, any thread.
  [[nodiscard]] Membership members() const;

  // ---- observation ----

  /// The metrics registry (Prometheus text via write_prometheus).
  [[nodiscard]] const node::Registry& metrics() const noexcept;
  /// The node's metrics by field.
  [[nodiscard]] const node::NodeMetrics& node_metrics() const noexcept;
  /// The peer transport's counters (docs/network.md, Counters: messages, reconnects, refused
  /// connections, snapshot streams); nullopt for a single node or an in-process cluster.
  [[nodiscard]] std::optional<net::TransportCounters> transport_counters() const {
    if (!transport_metrics_) return std::nullopt;
    return transport_metrics_->read();
  }
  /// The replica (node, state machine, lessor), for what the client does not cover (its
  /// members need kv_replica.hpp).
  [[nodiscard]] replica_type& replica() noexcept { return *replica_; }
  /// The storage engine and KV store (e.g. the memory backend's crash() in tests).
  [[nodiscard]] storage_type& storage() noexcept { return *storage_; }
  [[nodiscard]] kv_store_type& kv_store() noexcept { return *store_; }

  /// Graceful stop: new requests fail with stopped; every pending request completes or fails
  /// with stopped; threads are joined; the data dir's marker records how far the node got; the
  /// data dir is released. Never hangs on the network. Idempotent. invalid_argument from a
  /// completion handler or callback.
  result<void> stop();

  /// The data dir's marker as last written (persistent backends; nullptr for memory).
  [[nodiscard]] const DataDirGuard* data_dir_guard() const noexcept { return guard_.get(); }

  /// Raises the bounds in the data dir's marker to what the node has made durable now
  /// (data_dir_guard.hpp); runs by itself every EngineConfig::marker_interval and at stop.
  result<void> raise_marker();

 private:
  EmbeddedEngine() = default;

  using tuning_type = typename detail::tuning_of<B>::type;

  // The rest of a persistent start, after the data dir is locked and its marker read: open the
  // stores, check them against the marker, recover and start the node, mark the dir serving,
  // start raising the marker's bounds.
  // (Only a persistent backend has one: the constraint keeps the explicit instantiation of an
  // in-memory engine from compiling it.)
  result<void> open_persistent(EngineConfig config, node::AnyTransport transport,
                               tuning_type t) requires(B::persistent);

  // An index the data dir holds durably now (data_dir_guard.hpp): the applied index in
  // DiskFirst, else the last snapshot image's index.
  [[nodiscard]] LogIndex durable_bound() const;

  // Closes everything a failed start opened, in reverse order (before its files are removed).
  void close_stores();

  result<Membership> change(raft::ConfigChange c);

  // Destruction runs bottom-up: the marker keeper stops, then the replica (node threads), before
  // the storage, KV store, snapshot store, marker, hub and lock they use go away.
  detail::DirLock lock_;
  std::unique_ptr<DataDirGuard> guard_;
  std::unique_ptr<node::LocalHub> own_hub_;
  std::unique_ptr<snapshot_store_type> snapshots_;
  bool disk_first_ = false;
  /// The TCP transport's counters (shared: they outlive the transport); null on a LocalHub.
  std::shared_ptr<const net::TransportMetrics> transport_metrics_;
  std::unique_ptr<storage_type> storage_;
  std::unique_ptr<kv_store_type> store_;
  std::unique_ptr<replica_type> replica_;
  PeriodicTask marker_keeper_;
};

}  // namespace dengine::engine

namespace dengine {
using engine::EmbeddedEngine;  // NOLINT(misc-unused-using-decls): the public name
using engine::LocalKvClient;   // NOLINT(misc-unused-using-decls): the public name
}  // namespace dengine

#ifdef DENGINE_COMPILED
#include "dengine/engine/compiled.hpp"  // IWYU pragma: export
#else
#include "dengine/engine/embedded_engine_impl.hpp"  // IWYU pragma: export
#endif
