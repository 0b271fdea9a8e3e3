#pragma once
/// EmbeddedEngine's member functions (embedded_engine.hpp declares the class). Header-only use
/// includes this through embedded_engine.hpp; with DENGINE_COMPILED a library compiled them for
/// the shipped backends (engine/src/), and a translation unit that runs an EmbeddedEngine over
/// a backend of its own includes this header itself.

#include <algorithm>
#include <any>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <utility>

#include "dengine/core/error.hpp"
#include "dengine/engine/data_dir_guard.hpp"
#include "dengine/engine/embedded_engine.hpp"
#include "dengine/engine/kv_replica.hpp"
#include "dengine/engine/local_kv_client_impl.hpp"
#include "dengine/net/asio_transport.hpp"
#include "dengine/node/snapshot_store.hpp"
#include "dengine/node/threaded.hpp"
#include "dengine/raft/config_change.hpp"

namespace dengine::engine {

namespace detail {

/// Backend B's tuning from config.backend_tuning (its defaults when empty); a value of another
/// type, or any value for a backend without tuning, is invalid_argument.
template <class B>
result<typename tuning_of<B>::type> backend_tuning(const EngineConfig& config) {
  using tuning_type = typename tuning_of<B>::type;
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

/// Opens backend B's log in `dir`, with the tuning when B has one.
template <class B>
auto open_storage(const std::filesystem::path& dir, PersistenceMode mode,
                  const typename tuning_of<B>::type& t) {
  if constexpr (TunableBackend<B>)
    return B::open_storage(dir, mode, t);
  else
    return B::open_storage(dir, mode);
}

/// Opens backend B's KV store in `dir`, with the tuning when B has one.
template <class B>
auto open_kv_store(const std::filesystem::path& dir, PersistenceMode mode,
                   const typename tuning_of<B>::type& t) {
  if constexpr (TunableBackend<B>)
    return B::open_kv_store(dir, mode, t);
  else
    return B::open_kv_store(dir, mode);
}

/// `e`, saying that it came from opening `where` with backend B.
template <class B>
error opening(error e, const std::filesystem::path& where) {
  e.detail =
      "engine start: opening " + where.string() + " (" + std::string(B::name) + "): " + e.detail;
  return e;
}

/// The node's transport: TCP to the peers of config.network (its counters into `metrics`), or a
/// port on `hub`.
inline result<node::AnyTransport> open_transport(
    const EngineConfig& config, node::LocalHub& hub,
    std::shared_ptr<const net::TransportMetrics>& metrics) {
  const NodeId id = config.node.raft.id;
  if (!config.network) return node::AnyTransport(node::LocalTransport(hub, id));
  const NetworkConfig& network = *config.network;
  auto bad = [](const std::string& field, const error& e) {
    return error(errc::invalid_argument, "engine config: network." + field + ": " + e.detail);
  };
  if (auto advertised = net::parse_address(network.advertised()); !advertised)
    return bad(network.advertise.empty() ? "listen" : "advertise", advertised.error());
  net::TransportConfig tc;
  tc.self = id;
  tc.cluster_id = config.cluster_id;
  tc.listen = network.listen;
  tc.advertise = network.advertised();  // what the hello tells peers to answer at
  for (const auto& [member, address] : network.members) {
    if (member == id) continue;
    if (auto set = tc.peers.set(member, address); !set)
      return bad("members[" + std::to_string(member) + "]", set.error());
  }
  tc.log = config.callbacks.log;
  auto transport = net::AsioTransport::open(std::move(tc));
  if (!transport) {
    error e = transport.error();
    e.detail = "engine start: peer transport: " + e.detail;
    return e;
  }
  metrics = transport.value().metrics();
  return node::AnyTransport(std::move(transport).value());
}

/// The error of a blocking engine call made on one of the node's threads.
inline error own_thread(const char* what) {
  return error(errc::invalid_argument,
               std::string("engine ") + what + "() called from a completion handler or callback");
}

}  // namespace detail

template <BackendShape B>
EmbeddedEngine<B>::~EmbeddedEngine() {  // NOLINT(bugprone-exception-escape)
  // stop() reports failures as results: only an allocation failure could escape, and
  // terminating is right then.
  (void)stop();
}

template <BackendShape B>
auto EmbeddedEngine<B>::start(EngineConfig config, node::LocalHub* hub)
    -> result<std::unique_ptr<EmbeddedEngine>> {
  static_assert(Backend<B>,
                "EmbeddedEngine<B>: B must be a Backend (engine/backend.hpp): its open functions "
                "and a StorageEngine and KvStore that meet their concepts");
  DENGINE_TRYV(config.validate());
  DENGINE_TRY(tuning, detail::backend_tuning<B>(config));
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
  if (hub != nullptr && config.network)
    return error(errc::invalid_argument,
                 "engine start: both a LocalHub and EngineConfig::network were given: an "
                 "in-process cluster or one over the network, not both");
  std::unique_ptr<EmbeddedEngine> e(new EmbeddedEngine());
  if (hub == nullptr) {
    e->own_hub_ = std::make_unique<node::LocalHub>();
    hub = e->own_hub_.get();
  }
  // Over the network this binds the listen address (a port in use fails here, before any file
  // is touched); peers are refused until the node starts it.
  DENGINE_TRY(transport, detail::open_transport(config, *hub, e->transport_metrics_));
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
    if (auto opened = e->open_persistent(std::move(config), std::move(transport), tuning);
        !opened) {
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
    auto storage = detail::open_storage<B>(config.data_dir / "raft", mode, tuning);
    if (!storage) return detail::opening<B>(storage.error(), config.data_dir / "raft");
    e->storage_ = std::move(storage).value();
    auto kv_store = detail::open_kv_store<B>(config.data_dir / "kv", mode, tuning);
    if (!kv_store) return detail::opening<B>(kv_store.error(), config.data_dir / "kv");
    e->store_ = std::move(kv_store).value();
    DENGINE_TRY(replica, replica_type::open(std::move(config), *e->storage_, *e->store_,
                                            *e->snapshots_, std::move(transport)));
    e->replica_ = std::move(replica);
  }
  return e;
}

template <BackendShape B>
result<void> EmbeddedEngine<B>::wait_ready(std::chrono::milliseconds timeout) {
  return replica_->node().wait_ready(timeout);
}

template <BackendShape B>
auto EmbeddedEngine<B>::client() noexcept -> client_type {
  return client_type(*replica_);
}

template <BackendShape B>
bool EmbeddedEngine<B>::is_leader() const noexcept {
  return replica_->node().is_leader();
}

template <BackendShape B>
LeaderInfo EmbeddedEngine<B>::leader_info() const noexcept {
  const node::NodeStatus s = replica_->node().status();
  return LeaderInfo{s.leader, s.term, s.leader == s.id && s.role == raft::Role::leader};
}

template <BackendShape B>
node::NodeStatus EmbeddedEngine<B>::status() const noexcept {
  return replica_->node().status();
}

template <BackendShape B>
NodeId EmbeddedEngine<B>::id() const noexcept {
  return replica_->node().id();
}

template <BackendShape B>
result<Membership> EmbeddedEngine<B>::add_learner(NodeId node, std::string address) {
  return change(
      raft::ConfigChange{raft::ConfigChange::Kind::add_learner, node, std::move(address)});
}

template <BackendShape B>
result<Membership> EmbeddedEngine<B>::add_voter(NodeId node, std::string address) {
  return change(raft::ConfigChange{raft::ConfigChange::Kind::add_voter, node, std::move(address)});
}

template <BackendShape B>
result<Membership> EmbeddedEngine<B>::remove_member(NodeId node) {
  return change(raft::ConfigChange{raft::ConfigChange::Kind::remove, node, {}});
}

template <BackendShape B>
result<void> EmbeddedEngine<B>::transfer_leadership(NodeId target) {
  if (replica_->node().on_own_thread()) return detail::own_thread("transfer_leadership");
  return replica_->node().transfer_leadership(target, boost::asio::use_future).get();
}

template <BackendShape B>
Membership EmbeddedEngine<B>::members() const {
  return replica_->node().membership();
}

template <BackendShape B>
const node::Registry& EmbeddedEngine<B>::metrics() const noexcept {
  return replica_->node().metrics();
}

template <BackendShape B>
const node::NodeMetrics& EmbeddedEngine<B>::node_metrics() const noexcept {
  return replica_->node().node_metrics();
}

template <BackendShape B>
result<void> EmbeddedEngine<B>::stop() {
  if (!replica_) return success();
  if (replica_->node().on_own_thread()) return detail::own_thread("stop");
  marker_keeper_.stop();
  DENGINE_TRYV(replica_->stop());
  // Best effort, like the timer's: a marker that could not be rewritten keeps lower bounds,
  // which are still true — it only guards less.
  (void)raise_marker();
  return success();
}

template <BackendShape B>
result<void> EmbeddedEngine<B>::raise_marker() {
  if (!guard_) return success();
  const LogIndex bound = durable_bound();
  return guard_->raise(bound, bound);
}

template <BackendShape B>
result<void> EmbeddedEngine<B>::open_persistent(EngineConfig config, node::AnyTransport transport,
                                                tuning_type t) requires(B::persistent) {
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
  auto storage = detail::open_storage<B>(dir / "raft", mode, t);
  if (!storage) return detail::opening<B>(storage.error(), dir / "raft");
  storage_ = std::move(storage).value();
  auto kv_store = detail::open_kv_store<B>(dir / "kv", mode, t);
  if (!kv_store) return detail::opening<B>(kv_store.error(), dir / "kv");
  store_ = std::move(kv_store).value();
  DENGINE_TRY(image_index, snapshots_->peek_index());
  DENGINE_TRYV(guard_->check_stores(*storage_, *store_, image_index, snapshots_->path(),
                                    dir / "raft", dir / "kv"));
  DENGINE_TRY(recovered, storage_->load());
  disk_first_ = mode == PersistenceMode::disk_first;
  const std::chrono::milliseconds interval = config.marker_interval;
  DENGINE_TRY(replica, replica_type::open(std::move(config), *storage_, *store_, *snapshots_,
                                          std::move(transport)));
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

template <BackendShape B>
LogIndex EmbeddedEngine<B>::durable_bound() const {
  LogIndex bound = 0;
  if constexpr (B::persistent) {
    if (snapshots_) bound = snapshots_->saved_index();
  }
  if (disk_first_ && replica_) bound = std::max(bound, replica_->node().status().applied);
  return bound;
}

template <BackendShape B>
void EmbeddedEngine<B>::close_stores() {
  marker_keeper_.stop();
  replica_.reset();
  store_.reset();
  storage_.reset();
  snapshots_.reset();
}

template <BackendShape B>
result<Membership> EmbeddedEngine<B>::change(raft::ConfigChange c) {
  if (replica_->node().on_own_thread()) return detail::own_thread("membership change");
  return replica_->node().change_membership_wait(std::move(c));
}

}  // namespace dengine::engine
