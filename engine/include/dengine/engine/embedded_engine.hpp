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
/// One node first; grow to three without downtime: start the new engines on the same LocalHub
/// (an in-process cluster) listing the current voters, then add_learner + add_voter each.
/// Threads: every member may be called from any thread, except stop() and the blocking helpers
/// from a completion handler or callback.

#include <sys/file.h>
#include <unistd.h>

#include <fcntl.h>

#include <algorithm>
#include <any>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/engine/backend.hpp"
#include "dengine/engine/config.hpp"
#include "dengine/engine/data_dir_guard.hpp"
#include "dengine/engine/kv_replica.hpp"
#include "dengine/engine/local_kv_client.hpp"
#include "dengine/node/snapshot_store.hpp"
#include "dengine/node/status.hpp"
#include "dengine/node/transport.hpp"
#include "dengine/statemachines/kv/store_limits.hpp"

namespace dengine::engine {

/// Who leads, as this node sees it.
struct LeaderInfo {
  NodeId leader = no_node;  ///< no_node while none is known
  Term term = 0;
  bool is_self = false;  ///< this node leads
};

namespace detail {

/// An exclusive lock on `<dir>/LOCK`, held for the engine's life, so that two engines (in one
/// process or two) never open the same data dir. flock locks go away with the process.
class DirLock {
 public:
  DirLock() = default;
  static result<DirLock> acquire(const std::filesystem::path& dir) {
    const auto path = dir / "LOCK";
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
      return error(errc::io_error,
                   "engine start: cannot open " + path.string() + ": " + std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      ::close(fd);
      if (err == EWOULDBLOCK)
        return error(errc::invalid_argument, "engine start: data dir " + dir.string() +
                                                 " is in use by another engine (" + path.string() +
                                                 " is locked)");
      return error(errc::io_error,
                   "engine start: cannot lock " + path.string() + ": " + std::strerror(err));
    }
    DirLock lock;
    lock.fd_ = fd;
    return lock;
  }
  DirLock(DirLock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  DirLock& operator=(DirLock&& o) noexcept {
    if (this != &o) {
      release();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;
  ~DirLock() { release(); }

 private:
  void release() noexcept {
    if (fd_ >= 0) ::close(fd_);  // closing drops the flock
    fd_ = -1;
  }
  int fd_ = -1;
};

/// A backend's tuning type, or an empty stand-in for a backend without one.
struct NoTuning {};
template <class B>
struct tuning_of {
  using type = NoTuning;
};
template <TunableBackend B>
struct tuning_of<B> {
  using type = typename B::tuning;
};

}  // namespace detail

/// An embedded KV engine over backend B (memory, rawfile, lmdb, sqlite or your own).
template <Backend B>
class EmbeddedEngine {
 public:
  using storage_type = typename B::storage_engine;
  using kv_store_type = typename B::kv_store;
  /// Where snapshot images go, chosen by the backend at compile time: a file in the data dir
  /// (`<data_dir>/snap`) for a persistent backend, memory for the others (their data dir is
  /// unused and nothing of theirs outlives the process).
  using snapshot_store_type =
      std::conditional_t<B::persistent, node::FileSnapshotStore, node::MemorySnapshotStore>;
  using replica_type = KvReplica<storage_type, kv_store_type, node::LocalTransport, node::Threaded,
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
  /// starts the node. A single-voter node elects itself at once. With `hub`, the node joins
  /// that in-process network (an in-process cluster: every member on the same hub, which must
  /// outlive them); without, it gets a network of its own. Errors name the field or the file:
  /// invalid_argument (bad config, data dir in use or not this engine's), io_error,
  /// storage_corrupt (damaged data, or a store behind its data dir's marker), ...
  ///
  /// A persistent backend's data dir carries a marker (data_dir_guard.hpp): another backend's
  /// or member's data dir, one with files but no marker, an emptied store or one behind the
  /// marker are refused before anything is written. A first start that fails leaves the data
  /// dir as empty as it found it (no preallocated segment or half-made store behind).
  static result<std::unique_ptr<EmbeddedEngine>> start(EngineConfig config,
                                                       node::LocalHub* hub = nullptr) {
    DENGINE_TRYV(config.validate());
    DENGINE_TRY(tuning, backend_tuning(config));
    if (config.node.raft.max_entry_bytes > B::max_entry_bytes)
      return error(errc::invalid_argument, "engine config: node.raft.max_entry_bytes is " +
                                               std::to_string(config.node.raft.max_entry_bytes) +
                                               " but the '" + std::string(B::name) +
                                               "' backend stores log entries of at most " +
                                               std::to_string(B::max_entry_bytes) + " bytes");
    kv::StoreLimits& store = config.limits.store;
    store.max_key_bytes = std::min(store.max_key_bytes, B::max_key_bytes);
    store.max_value_bytes = std::min(store.max_value_bytes, B::max_value_bytes);
    if (store.backend.empty()) store.backend = B::name;
    if (!store.usable())
      return error(errc::invalid_argument,
                   "engine config: limits.store is below what the KV state machine needs for its "
                   "own records");
    std::unique_ptr<EmbeddedEngine> e(new EmbeddedEngine());
    if (hub == nullptr) {
      e->own_hub_ = std::make_unique<node::LocalHub>();
      hub = e->own_hub_.get();
    }
    if constexpr (B::persistent) {
      if (config.data_dir.empty())
        return error(errc::invalid_argument, "engine config: data_dir is empty (the backend '" +
                                                 std::string(B::name) + "' keeps its files there)");
      std::error_code ec;
      std::filesystem::create_directories(config.data_dir, ec);
      if (ec)
        return error(errc::io_error, "engine start: cannot create data dir " +
                                         config.data_dir.string() + ": " + ec.message());
      DENGINE_TRY(lock, detail::DirLock::acquire(config.data_dir));
      e->lock_ = std::move(lock);
      DENGINE_TRY(guard, DataDirGuard::open_marker(config.data_dir, B::name, config.node.raft.id,
                                                   config.cluster_id));
      e->guard_ = std::make_unique<DataDirGuard>(std::move(guard));
      if (auto opened = e->open_persistent(std::move(config), *hub, tuning); !opened) {
        if (e->guard_->fresh()) {
          e->close_stores();
          if (auto cleaned = e->guard_->remove_created(); !cleaned)
            opened.error().detail += "; " + cleaned.error().detail;
        }
        return opened.error();
      }
    } else {
      e->snapshots_ = std::make_unique<snapshot_store_type>();
      // Applying is a memory write here, so small apply chunks cost little and pipeline the
      // clients' next requests (node/config.hpp, apply_chunk_entries).
      if (config.node.apply_chunk_entries == 0)
        config.node.apply_chunk_entries = memory_apply_chunk_entries;
      const PersistenceMode mode = config.node.persistence;
      auto storage = open_storage(config.data_dir / "raft", mode, tuning);
      if (!storage) return opening(storage.error(), config.data_dir / "raft");
      e->storage_ = std::move(storage).value();
      auto kv_store = open_kv_store(config.data_dir / "kv", mode, tuning);
      if (!kv_store) return opening(kv_store.error(), config.data_dir / "kv");
      e->store_ = std::move(kv_store).value();
      const NodeId id = config.node.raft.id;
      DENGINE_TRY(replica, replica_type::open(std::move(config), *e->storage_, *e->store_,
                                              *e->snapshots_, node::LocalTransport(*hub, id)));
      e->replica_ = std::move(replica);
    }
    return e;
  }

  EmbeddedEngine(const EmbeddedEngine&) = delete;
  EmbeddedEngine& operator=(const EmbeddedEngine&) = delete;
  /// Stops the engine (gracefully) if it still runs. stop() reports failures as results: only an
  /// allocation failure could escape, and terminating is right then.
  ~EmbeddedEngine() { (void)stop(); }  // NOLINT(bugprone-exception-escape)

  /// Waits until the engine can serve: a leader is known and this node has applied everything
  /// committed so far (on a single node: it elected itself and applied its first entry).
  /// timeout (with what it saw) if that takes longer than `timeout`; stopped if the engine
  /// stopped — after a storage or state-machine failure with that failure as `cause` and its
  /// message (naming the file) in the detail.
  result<void> wait_ready(std::chrono::milliseconds timeout) {
    return replica_->node().wait_ready(timeout);
  }

  /// A client of this engine (a cheap handle; must not outlive the engine).
  [[nodiscard]] client_type client() noexcept { return client_type(*replica_); }

  /// True while this node believes it leads.
  [[nodiscard]] bool is_leader() const noexcept { return replica_->node().is_leader(); }
  /// The leader as this node knows it.
  [[nodiscard]] LeaderInfo leader_info() const noexcept {
    const node::NodeStatus s = replica_->node().status();
    return LeaderInfo{s.leader, s.term, s.leader == s.id && s.role == raft::Role::leader};
  }
  /// Role, leader, term, commit and applied indexes, whether it runs, and the failure that
  /// stopped it if one did (NodeStatus::failure: the storage's error, naming the file).
  [[nodiscard]] node::NodeStatus status() const noexcept { return replica_->node().status(); }
  /// This node's id.
  [[nodiscard]] NodeId id() const noexcept { return replica_->node().id(); }

  // ---- membership (on the leader; one change at a time, docs/membership.md) ----

  /// Adds `node` as a learner (receives the log, does not vote): the first step of adding a
  /// member, so that it catches up before it counts towards quorums.
  result<Membership> add_learner(NodeId node) {
    return change(raft::ConfigChange{raft::ConfigChange::Kind::add_learner, node, {}});
  }
  /// Makes `node` a voter (promotes a learner, or adds a voter directly).
  result<Membership> add_voter(NodeId node) {
    return change(raft::ConfigChange{raft::ConfigChange::Kind::add_voter, node, {}});
  }
  /// Removes `node` (a removed leader steps down once the change commits).
  result<Membership> remove_member(NodeId node) {
    return change(raft::ConfigChange{raft::ConfigChange::Kind::remove, node, {}});
  }
  /// Hands leadership to `target` (returns once the transfer started).
  result<void> transfer_leadership(NodeId target) {
    if (replica_->node().on_own_thread()) return own_thread("transfer_leadership");
    return replica_->node().transfer_leadership(target, boost::asio::use_future).get();
  }

  // ---- observation ----

  /// The metrics registry (Prometheus text via write_prometheus).
  [[nodiscard]] const node::Registry& metrics() const noexcept {
    return replica_->node().metrics();
  }
  /// The node's metrics by field.
  [[nodiscard]] const node::NodeMetrics& node_metrics() const noexcept {
    return replica_->node().node_metrics();
  }
  /// The replica (node, state machine, lessor), for what the client does not cover.
  [[nodiscard]] replica_type& replica() noexcept { return *replica_; }
  /// The storage engine and KV store (e.g. the memory backend's crash() in tests).
  [[nodiscard]] storage_type& storage() noexcept { return *storage_; }
  [[nodiscard]] kv_store_type& kv_store() noexcept { return *store_; }

  /// Graceful stop: new requests fail with stopped; every pending request completes or fails
  /// with stopped; threads are joined; the data dir's marker records how far the node got; the
  /// data dir is released. Never hangs on the network. Idempotent. invalid_argument from a
  /// completion handler or callback.
  result<void> stop() {
    if (!replica_) return success();
    if (replica_->node().on_own_thread()) return own_thread("stop");
    marker_keeper_.stop();
    DENGINE_TRYV(replica_->stop());
    // Best effort, like the timer's: a marker that could not be rewritten keeps lower bounds,
    // which are still true — it only guards less.
    (void)raise_marker();
    return success();
  }

  /// The data dir's marker as last written (persistent backends; nullptr for memory).
  [[nodiscard]] const DataDirGuard* data_dir_guard() const noexcept { return guard_.get(); }

  /// Raises the bounds in the data dir's marker to what the node has made durable now
  /// (data_dir_guard.hpp); runs by itself every EngineConfig::marker_interval and at stop.
  result<void> raise_marker() {
    if (!guard_) return success();
    const LogIndex bound = durable_bound();
    return guard_->raise(bound, bound);
  }

 private:
  EmbeddedEngine() = default;

  using tuning_type = typename detail::tuning_of<B>::type;

  /// The backend's tuning from config.backend_tuning (its defaults when empty); a value of
  /// another type, or any value for a backend without tuning, is invalid_argument.
  static result<tuning_type> backend_tuning(const EngineConfig& config) {
    if (!config.backend_tuning.has_value()) return tuning_type{};
    if constexpr (TunableBackend<B>) {
      if (const auto* t = std::any_cast<typename B::tuning>(&config.backend_tuning)) return *t;
      return error(errc::invalid_argument,
                   "engine config: backend_tuning holds a value of another type than the '" +
                       std::string(B::name) + "' backend's tuning type (" + std::string(B::name) +
                       "::Backend::tuning)");
    } else {
      return error(errc::invalid_argument, "engine config: backend_tuning is set, but the '" +
                                               std::string(B::name) +
                                               "' backend has nothing to tune");
    }
  }

  static auto open_storage(const std::filesystem::path& dir, PersistenceMode mode,
                           const tuning_type& t) {
    if constexpr (TunableBackend<B>)
      return B::open_storage(dir, mode, t);
    else
      return B::open_storage(dir, mode);
  }
  static auto open_kv_store(const std::filesystem::path& dir, PersistenceMode mode,
                            const tuning_type& t) {
    if constexpr (TunableBackend<B>)
      return B::open_kv_store(dir, mode, t);
    else
      return B::open_kv_store(dir, mode);
  }

  // The rest of a persistent start, after the data dir is locked and its marker read: open the
  // stores, check them against the marker, recover and start the node, mark the dir serving,
  // start raising the marker's bounds.
  result<void> open_persistent(EngineConfig config, node::LocalHub& hub, tuning_type t) {
    const std::filesystem::path& dir = config.data_dir;
    // A data dir that has served must find its stores: a backend that can be told so refuses a
    // missing database file instead of creating an empty one in its place.
    if constexpr (requires { t.create_if_missing; }) {
      if (!guard_->fresh()) t.create_if_missing = false;
    }
    const PersistenceMode mode = config.node.persistence;
    DENGINE_TRY(snapshots, node::FileSnapshotStore::open(dir / "snap"));
    snapshots_ = std::make_unique<node::FileSnapshotStore>(std::move(snapshots));
    DENGINE_TRYV(guard_->check_store_dirs({dir / "raft", dir / "kv"}));
    auto storage = open_storage(dir / "raft", mode, t);
    if (!storage) return opening(storage.error(), dir / "raft");
    storage_ = std::move(storage).value();
    auto kv_store = open_kv_store(dir / "kv", mode, t);
    if (!kv_store) return opening(kv_store.error(), dir / "kv");
    store_ = std::move(kv_store).value();
    DENGINE_TRY(image_index, snapshots_->peek_index());
    DENGINE_TRYV(guard_->check_stores(*storage_, *store_, image_index, snapshots_->path(),
                                      dir / "raft", dir / "kv"));
    DENGINE_TRY(recovered, storage_->load());
    disk_first_ = mode == PersistenceMode::disk_first;
    const std::chrono::milliseconds interval = config.marker_interval;
    const NodeId id = config.node.raft.id;
    DENGINE_TRY(replica, replica_type::open(std::move(config), *storage_, *store_, *snapshots_,
                                            node::LocalTransport(hub, id)));
    replica_ = std::move(replica);
    // The durable commit index read before the node started: committed, and (in DiskFirst) in
    // the durable log, which the core never lets the saved commit index run ahead of.
    const LogIndex commit =
        disk_first_ ? std::min(recovered.hard_state.commit, storage_->last_index()) : 0;
    const LogIndex bound = std::max(durable_bound(), image_index);
    if (auto marked = guard_->mark_serving(bound, std::max(bound, commit)); !marked) {
      (void)replica_->stop();
      return marked.error();
    }
    marker_keeper_.start(interval, [this] { (void)raise_marker(); });
    return success();
  }

  // An index the data dir holds durably now (data_dir_guard.hpp): the applied index in
  // DiskFirst, else the last snapshot image's index.
  [[nodiscard]] LogIndex durable_bound() const {
    LogIndex bound = 0;
    if constexpr (B::persistent) {
      if (snapshots_) bound = snapshots_->saved_index();
    }
    if (disk_first_ && replica_) bound = std::max(bound, replica_->node().status().applied);
    return bound;
  }

  // Closes everything a failed start opened, in reverse order (before its files are removed).
  void close_stores() {
    marker_keeper_.stop();
    replica_.reset();
    store_.reset();
    storage_.reset();
    snapshots_.reset();
  }

  static error opening(error e, const std::filesystem::path& where) {
    e.detail =
        "engine start: opening " + where.string() + " (" + std::string(B::name) + "): " + e.detail;
    return e;
  }

  static error own_thread(const char* what) {
    return error(errc::invalid_argument,
                 std::string("engine ") + what + "() called from a completion handler or callback");
  }

  result<Membership> change(raft::ConfigChange c) {
    if (replica_->node().on_own_thread()) return own_thread("membership change");
    return replica_->node().change_membership_wait(std::move(c));
  }

  // Destruction runs bottom-up: the marker keeper stops, then the replica (node threads), before
  // the storage, KV store, snapshot store, marker, hub and lock they use go away.
  detail::DirLock lock_;
  std::unique_ptr<DataDirGuard> guard_;
  std::unique_ptr<node::LocalHub> own_hub_;
  std::unique_ptr<snapshot_store_type> snapshots_;
  bool disk_first_ = false;
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
