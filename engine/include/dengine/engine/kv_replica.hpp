#pragma once
/// KvReplica: one member of a KV cluster — a node::Node running the KV state machine, plus what
/// the KV model needs beside the log: the leader's Lessor (lease expiry, decided by the leader and
/// replicated as revoke entries), watch progress notifications, and request validation before
/// proposing. LocalKvClient is its typed API; EmbeddedEngine opens one over a backend.
///
/// The same class runs with either runtime of the Node (node.hpp, the last template parameter):
/// node::Threaded on threads (housekeeping on a thread of its own), or a deterministic runtime
/// such as sim::Deterministic as events on the simulator's executor (housekeeping as recurring
/// events, scheduled through the tag's post_after), so the simulator drives the whole KV stack
/// deterministically. Nothing here includes the sim/ headers. The snapshot store's type is the
/// last template parameter, with the Node's default (node::default_snapshot_store_t, node.hpp).
///
/// Lease rules (etcd's): only the leader tracks deadlines; when it becomes leader every lease
/// gets its full TTL plus LessorOptions::promote_extend; expired leases are revoked through the
/// log, so every replica deletes the same keys at the same index.
///
/// Reads and expired leases. A linearizable or lease read the leader serves never returns a key
/// whose lease's deadline has passed: when the answer would contain one, the leader proposes
/// that lease's revoke at once, waits for it to apply, and reads again (read()). It does not
/// merely hide the key: if leadership changed before the revoke committed, the new leader would
/// grant the lease a full TTL again (etcd's rule: a lease ends only after a full TTL without
/// keep-alives under one leader) and the key would reappear, which no linearizable history
/// explains. A serializable read on the leader hides such keys instead (it promises no order).
/// A follower does not know deadlines (keep-alives reach only the leader), so a read a follower
/// serves sees the key until the revoke is applied there (normally one housekeeping pass plus a
/// commit), as in etcd.

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/dispatch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "dengine/core/error.hpp"
#include "dengine/core/test_hooks.hpp"
#include "dengine/core/types.hpp"
#include "dengine/engine/config.hpp"
#include "dengine/engine/kv_replica_fwd.hpp"
#include "dengine/engine/lease_calls.hpp"
#include "dengine/node/node.hpp"
#include "dengine/statemachines/kv/codec.hpp"
#include "dengine/statemachines/kv/lessor.hpp"
#include "dengine/statemachines/kv/requests.hpp"
#include "dengine/statemachines/kv/state_machine.hpp"
#include "dengine/statemachines/kv/watch_hub.hpp"
#include "dengine/storage/concepts.hpp"

namespace dengine::engine {

/// Counters of the replica's own work (the node's are in Node::node_metrics()).
struct ReplicaCounters {
  std::atomic<std::uint64_t> lease_revokes_proposed{0};  ///< revokes proposed for expired leases
  std::atomic<std::uint64_t> lease_revokes_applied{0};   ///< of those, applied (lease deleted)
  std::atomic<std::uint64_t> progress_notifications{0};  ///< progress_notify passes
};

/// One KV replica over storage `S`, KV store `Store`, transport `T`, runtime `R` and snapshot
/// store `SS`.
///
/// The parameters' concepts are checked in the class (static_asserts), not in its template head,
/// so that KvReplica can be declared without them (kv_replica_fwd.hpp) and a type naming a
/// replica compiles without the storage's and store's definitions.
template <class S, class Store, class T, class R = node::Threaded,
          class SS = node::default_snapshot_store_t<S>>
class KvReplica {
  static_assert(StorageEngine<S>, "KvReplica: S must be a StorageEngine (storage/concepts.hpp)");
  static_assert(KvStore<Store>, "KvReplica: Store must be a KvStore (storage/concepts.hpp)");
  static_assert(node::Transport<T>, "KvReplica: T must be a Transport (node/transport.hpp)");
  static_assert(node::RuntimeTag<R>, "KvReplica: R must be a RuntimeTag (node/runtime.hpp)");
  static_assert(SnapshotStore<SS>, "KvReplica: SS must be a SnapshotStore (storage/concepts.hpp)");

 public:
  using machine_type = kv::KvStateMachine<Store>;
  using node_type = node::Node<S, machine_type, T, R, SS>;
  using snapshot_store_type = SS;
  using clock_type = typename R::clock_type;
  /// True with a deterministic runtime: no threads, blocking calls unavailable.
  static constexpr bool deterministic = node_type::deterministic;

  /// Opens the KV state machine over `store` and a Node over `storage`, recovering what they
  /// hold, and starts housekeeping. `storage`, `store` and `snapshots` must outlive the replica.
  static result<std::unique_ptr<KvReplica>> open(EngineConfig config, S& storage, Store& store,
                                                 SS& snapshots, T transport,
                                                 clock_type clock = clock_type{}) {
    DENGINE_TRYV(config.validate());
    std::unique_ptr<KvReplica> r(new KvReplica(config, clock));
    auto machine = machine_type::open(store, config.kv);
    if (!machine) return node::detail::open_error(machine.error(), "opening the kv state machine");
    r->machine_ = std::move(machine).value();
    r->machine_->set_lessor(&r->lessor_);

    node::NodeCallbacks callbacks;
    callbacks.on_leader_change =
        [raw = r.get(),
         user = std::move(config.callbacks.on_leader_change)](const node::LeaderChange& change) {
          raw->on_leader_change(change);
          if (user) user(change);
        };
    callbacks.on_membership_change = std::move(config.callbacks.on_membership_change);
    callbacks.log = std::move(config.callbacks.log);
    callbacks.leader_service = [raw = r.get()](NodeId /*from*/, std::string_view request) {
      return raw->serve_leader_call(request);
    };
    // The data dir's layout (EngineConfig::data_dir), for errors that name where data lives.
    node::DataLocations where;
    if (!config.data_dir.empty()) {
      where.log = (config.data_dir / "raft").string();
      where.state_machine = (config.data_dir / "kv").string();
      where.snapshots = (config.data_dir / "snap").string();
    }
    auto opened = node_type::open(std::move(config.node), storage, *r->machine_, snapshots,
                                  std::move(transport), clock, std::move(callbacks), where);
    if (!opened) return opened.error();
    r->node_ = std::move(opened).value();
    r->start_housekeeping();
    return r;
  }

  KvReplica(const KvReplica&) = delete;
  KvReplica& operator=(const KvReplica&) = delete;
  /// Stops the replica (see stop()). stop() reports failures as results: only an allocation
  /// failure could escape, and terminating is right then.
  ~KvReplica() {  // NOLINT(bugprone-exception-escape)
    (void)stop();
    if (machine_) machine_->set_lessor(nullptr);
  }

  // ---- the primitives LocalKvClient builds on ----

  /// Validates `cmd` (etcd's rules and the configured limits), proposes it and completes with
  /// its response of type X once applied here. Signature: void(dengine::result<X>).
  /// Errors: those of Node::propose (definite, or outcome_unknown once the entry may be in the
  /// log), validation before proposing (invalid_argument, too_large: definite), and the
  /// request's own answer from the applied entry (not_found, compacted, ... with etcd's texts:
  /// definite, every replica answered the same).
  template <class X, class CompletionToken>
  auto propose(kv::Command cmd, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(result<X>)>(
        [this](auto handler, kv::Command c) {
          if (auto* grant = std::get_if<kv::LeaseGrantRequest>(&c)) lessor_.prepare_grant(*grant);
          auto data = kv::encode_proposal(c, config_.limits);
          if (!data) return fail_now<X>(std::move(handler), std::move(data).error());
          auto ex = boost::asio::get_associated_executor(handler);
          node_->propose(std::move(data).value(),
                         boost::asio::bind_executor(
                             ex, [h = std::move(handler)](
                                     result<typename machine_type::response_type> r) mutable {
                               std::move(h)(unwrap<X>(std::move(r)));
                             }));
        },
        token, std::move(cmd));
  }

  /// Runs `query(const machine_type&, const kv::ExpiredPredicate&)` at `consistency` and
  /// completes with its value (flattened when it returns result<V>). The predicate says whether
  /// a lease has expired by the leader's lessor at the time the query runs.
  ///
  /// A serializable read, and a lease read while the leader's lease holds and everything up to
  /// its read index is applied, run at once on the calling thread (the KV state machine's reads
  /// are thread-safe), completing on the handler's executor; the others go through the node
  /// (ReadIndex, or a lease read waiting for apply) and run on the apply thread.
  ///
  /// Expired leases (see the file comment): a serializable read hides their keys; a linearizable
  /// or lease read whose query met one revokes those leases through the log and runs again, at
  /// most EngineConfig::max_read_rounds times (then unavailable). A revoke that fails fails the
  /// read with its error (not_leader, stopped, too_busy, ...): the read's outcome was never
  /// decided.
  template <class Query, class CompletionToken>
  auto read(node::ReadConsistency consistency, Query query, CompletionToken&& token) {
    using V = typename node::read_value_flatten<
        std::invoke_result_t<Query&, const machine_type&, const kv::ExpiredPredicate&>>::type;
    if (consistency == node::ReadConsistency::serializable) {
      auto hiding = [this, q = std::move(query)](const machine_type& m) mutable {
        const auto now = lessor_now();
        const kv::ExpiredPredicate expired = [this, now](kv::LeaseId id) {
          return lessor_.is_expired(id, now);
        };
        return q(m, expired);
      };
      if (local_read_possible(consistency)) {
        return boost::asio::async_initiate<CompletionToken, void(result<V>)>(
            [this](auto handler, auto h) {
              node::Completion<V>(std::move(handler))(result<V>(h(*machine_)));
            },
            token, std::move(hiding));
      }
      return node_->read(consistency, std::move(hiding), std::forward<CompletionToken>(token));
    }
    return boost::asio::async_initiate<CompletionToken, void(result<V>)>(
        [this, consistency](auto handler, Query q) {
          read_round<V>(consistency, std::make_shared<Query>(std::move(q)),
                        node::Completion<V>(std::move(handler)), 0);
        },
        token, std::move(query));
  }

  /// Refreshes lease `id` to its full TTL here, without waiting; returns the TTL in seconds.
  /// Only the leader's lessor can: not_leader (with the leader's id and address as hint)
  /// elsewhere — async_keep_alive asks the leader instead; not_found (etcd's "requested lease
  /// not found") for a missing or already expired lease.
  result<std::int64_t> keep_alive(kv::LeaseId id) {
    DENGINE_TRY(answer, keep_alive_here(id));
    return answer.ttl;
  }

  /// Refreshes lease `id` to its full TTL at the leader's lessor: here if this node's lessor is
  /// primary, else (NodeConfig::forward_proposals on) by a leader call (lease_calls.hpp), so
  /// that a follower's caller sees a leader change only as latency. Forwarding off: not_leader
  /// naming the leader. Errors: not_found (the lease is gone or expired), timeout (no answer
  /// from a leader within the request timeout: the lease may or may not have been refreshed),
  /// too_busy, stopped. Signature: void(result<KeepAliveAnswer>).
  template <class CompletionToken>
  auto async_keep_alive(kv::LeaseId id, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(result<KeepAliveAnswer>)>(
        [this, id](auto handler) {
          node::Completion<KeepAliveAnswer> done(std::move(handler));
          auto here = keep_alive_here(id);
          if (here || here.error() != errc::not_leader || !node_->config().forward_proposals)
            return done(std::move(here));
#if defined(DENGINE_TEST_HOOKS)
          if (test_hooks::switches().keep_alive_unforwarded && node_->leader() != no_node) {
            const node::NodeStatus s = node_->status();  // deliberate bug (core/test_hooks.hpp)
            return done(KeepAliveAnswer{1, s.leader, s.term});
          }
#endif
          ask_leader(lease_calls::Kind::keep_alive, id, std::move(done));
        },
        token);
  }

  /// async_keep_alive completing with the TTL alone (LocalKvClient::async_lease_keep_alive).
  /// Signature: void(result<std::int64_t>).
  template <class CompletionToken>
  auto async_keep_alive_ttl(kv::LeaseId id, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(result<std::int64_t>)>(
        [this, id](auto handler) {
          auto ex = boost::asio::get_associated_executor(handler);
          this->async_keep_alive(
              id, boost::asio::bind_executor(
                      ex, [h = std::move(handler)](result<KeepAliveAnswer> answer) mutable {
                        if (!answer)
                          return std::move(h)(result<std::int64_t>(std::move(answer).error()));
                        std::move(h)(result<std::int64_t>(answer.value().ttl));
                      }));
        },
        token);
  }

  /// A lease's TTLs and keys (etcd LeaseTimeToLive; LocalKvClient::async_lease_time_to_live
  /// says what `ttl` is where). Signature: void(result<kv::LeaseTimeToLiveResponse>).
  template <class CompletionToken>
  auto async_lease_time_to_live(kv::LeaseTimeToLiveRequest req, node::ReadConsistency consistency,
                                CompletionToken&& token) {
    using Response = kv::LeaseTimeToLiveResponse;
    return boost::asio::async_initiate<CompletionToken, void(result<Response>)>(
        [this, consistency](auto handler, kv::LeaseTimeToLiveRequest r) {
          auto ex = boost::asio::get_associated_executor(handler);
          auto query = [this, r](const machine_type& m, const kv::ExpiredPredicate& /*expired*/) {
            Response out = m.lease_time_to_live(r);
            if (out.ttl >= 0) {
              if (auto left = remaining_ttl(out.id)) out.ttl = *left;
            }
            return out;
          };
          // Answered by this node's lessor (it leads), or no lease, or serializable: done.
          // Else the seconds left are the leader's to tell.
          auto then = [this, consistency, ex,
                       h = std::move(handler)](result<Response> got) mutable {
            if (!got || got.value().ttl < 0 || consistency == node::ReadConsistency::serializable ||
                lessor_.is_primary())
              return std::move(h)(std::move(got));
            const kv::LeaseId id = got.value().id;
            async_time_left(
                id, boost::asio::bind_executor(ex, [h = std::move(h), out = std::move(got).value()](
                                                       result<std::int64_t> left) mutable {
                  if (!left) return std::move(h)(result<Response>(std::move(left).error()));
                  out.ttl = left.value();
                  std::move(h)(result<Response>(std::move(out)));
                }));
          };
          read(consistency, std::move(query), boost::asio::bind_executor(ex, std::move(then)));
        },
        token, req);
  }

  /// Seconds left on lease `id` by the leader's lessor (nullopt when not the leader or unknown).
  [[nodiscard]] std::optional<std::int64_t> remaining_ttl(kv::LeaseId id) {
    return lessor_.remaining_ttl(id, lessor_now());
  }

  /// Seconds left on lease `id` by the leader's lessor, -1 when it expired or the lessor does
  /// not know it: here on the leader, else by a leader call (whatever forward_proposals says:
  /// the caller asked for the leader's view). Errors: timeout, too_busy, stopped.
  /// Signature: void(result<std::int64_t>).
  template <class CompletionToken>
  auto async_time_left(kv::LeaseId id, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(result<std::int64_t>)>(
        [this, id](auto handler) {
          auto ex = boost::asio::get_associated_executor(handler);
          node::Completion<KeepAliveAnswer> done(boost::asio::bind_executor(
              ex, [h = std::move(handler)](result<KeepAliveAnswer> a) mutable {
                if (!a) return std::move(h)(result<std::int64_t>(std::move(a).error()));
                std::move(h)(result<std::int64_t>(a.value().ttl));
              }));
          if (auto left = remaining_ttl(id)) return done(KeepAliveAnswer{*left, node_->id(), 0});
          ask_leader(lease_calls::Kind::time_left, id, std::move(done));
        },
        token);
  }

  /// Starts a watch on this replica's applied state (any replica can serve watches).
  /// `notify` runs (on the apply thread, or in the calling thread for the first responses)
  /// whenever responses were queued; it must be quick and must not call into the replica.
  result<std::shared_ptr<kv::Watcher>> watch(const kv::WatchCreateRequest& req,
                                             std::function<void()> notify = {}) {
    return machine_->watch_hub().watch(req, std::move(notify));
  }

  /// Ends watch `id` (a final canceled response is queued); false if it had already ended.
  bool cancel_watch(kv::WatchId id) { return machine_->watch_hub().cancel(id); }

  /// One housekeeping pass now: on the leader, proposes revokes for expired leases; when due,
  /// sends watch progress notifications. Runs by itself every housekeeping_interval; tests may
  /// call it directly.
  void housekeeping() {
    const auto now = lessor_now();
    if (node_->is_leader()) {
      for (kv::LeaseId id : lessor_.expired(now, config_.max_revokes_per_pass))
        propose_revoke(id, [](const result<void>&) {});
    }
    const auto t = clock_.now();
    if (!(t < next_progress_)) {
      machine_->watch_hub().progress_notify();
      counters_.progress_notifications.fetch_add(1, std::memory_order_relaxed);
      next_progress_ = t + std::chrono::duration_cast<std::chrono::microseconds>(
                               config_.progress_notify_interval);
    }
  }

  /// Graceful stop: housekeeping ends, then the node stops (pending requests complete or fail
  /// with stopped). Idempotent. Not from a completion handler (invalid_argument).
  result<void> stop() {
    if (node_ && node_->on_own_thread())
      return error(errc::invalid_argument,
                   "kv replica stop() called from a completion handler or callback");
    stop_housekeeping();
    if (!node_) return success();
    return node_->stop();
  }

  /// Deterministic arrangement: a simulated crash (Node::halt); housekeeping stops too.
  result<void> halt() requires(deterministic) {
    stop_housekeeping();
    return node_->halt();
  }

  /// The node (status, metrics, membership changes, leader transfer).
  [[nodiscard]] node_type& node() noexcept { return *node_; }
  [[nodiscard]] const node_type& node() const noexcept { return *node_; }
  /// The KV state machine (reads of the local applied state, watch hub).
  [[nodiscard]] machine_type& machine() noexcept { return *machine_; }
  [[nodiscard]] const machine_type& machine() const noexcept { return *machine_; }
  /// The lessor (primary on the leader only).
  [[nodiscard]] kv::Lessor& lessor() noexcept { return lessor_; }
  /// The replica's own counters.
  [[nodiscard]] const ReplicaCounters& counters() const noexcept { return counters_; }
  /// The configuration it runs with.
  [[nodiscard]] const EngineConfig& config() const noexcept { return config_; }

 private:
  KvReplica(const EngineConfig& config, clock_type clock)
      : config_(config), clock_(clock), lessor_(config.lessor) {
    config_.callbacks = {};  // held by the node, not here
  }

  /// A linearizable or lease read's answer, and the leases (expired by the leader's lessor)
  /// whose keys the query met; the answer counts only when there were none.
  template <class V>
  struct CheckedRead {
    result<V> value;
    std::vector<kv::LeaseId> expired;
  };

  /// Runs `query` against `m`, recording the expired leases it meets.
  template <class V, class Query>
  CheckedRead<V> checked_read(Query& query, const machine_type& m) {
    const auto now = lessor_now();
    std::vector<kv::LeaseId> met;
    const kv::ExpiredPredicate expired = [this, now, &met](kv::LeaseId id) {
      if (!lessor_.is_expired(id, now)) return false;
      if (std::find(met.begin(), met.end(), id) == met.end()) met.push_back(id);
      return true;
    };
    result<V> value(query(m, expired));
    return CheckedRead<V>{std::move(value), std::move(met)};
  }

  /// One round of a linearizable or lease read (see read()): on the calling thread when
  /// possible, else through the node; an answer that met expired leases revokes them and runs
  /// the next round.
  template <class V, class Query>
  void read_round(node::ReadConsistency consistency, std::shared_ptr<Query> query,
                  node::Completion<V> done, std::size_t round) {
    if (local_read_possible(consistency)) {
      CheckedRead<V> r = checked_read<V>(*query, *machine_);
      if (r.expired.empty()) return done(std::move(r.value));
      return revoke_then_read(consistency, std::move(query), std::move(done), round, r.expired);
    }
    node_->read(
        consistency, [this, query](const machine_type& m) { return checked_read<V>(*query, m); },
        [this, consistency, query, round, d = std::move(done)](result<CheckedRead<V>> r) mutable {
          if (!r) return d(std::move(r).error());
          if (r.value().expired.empty()) return d(std::move(r.value().value));
          revoke_then_read(consistency, std::move(query), std::move(d), round, r.value().expired);
        });
  }

  /// Proposes the revoke of expired lease `id` and calls then(result<void>) with the outcome:
  /// success once applied (a revoke that finds the lease already gone — a retry racing the
  /// first — fails with not_found on every replica alike, changes nothing, and counts as done),
  /// else the proposal's error. A failed proposal (refused, dropped by a leader change, timed
  /// out) is offered to the next housekeeping pass; one lost without an answer, after
  /// revoke_retry.
  template <class Then>
  void propose_revoke(kv::LeaseId id, Then then) {
    auto data = kv::encode_proposal(kv::LeaseRevokeRequest{id}, config_.limits);
    if (!data) return then(result<void>(std::move(data).error()));  // cannot happen for a revoke
    counters_.lease_revokes_proposed.fetch_add(1, std::memory_order_relaxed);
    node_->propose(std::move(data).value(),
                   [this, id, t = std::move(then)](result<typename machine_type::response_type> r) {
                     if (!r) {
                       lessor_.revoke_failed(id);
                       return t(result<void>(std::move(r).error()));
                     }
                     if (r.value())
                       counters_.lease_revokes_applied.fetch_add(1, std::memory_order_relaxed);
                     t(success());
                   });
  }

  /// Proposes the revoke of every lease in `leases` (met by read round `round`); once all have
  /// applied, runs round `round + 1`, or fails with unavailable past max_read_rounds; fails the
  /// read with the first proposal error.
  template <class V, class Query>
  void revoke_then_read(node::ReadConsistency consistency, std::shared_ptr<Query> query,
                        node::Completion<V> done, std::size_t round,
                        const std::vector<kv::LeaseId>& leases) {
    struct Pending {
      std::mutex mutex;
      std::size_t left = 0;
      std::optional<error> failure;
      node::Completion<V> done;
    };
    auto pending = std::make_shared<Pending>();
    pending->left = leases.size();
    pending->done = std::move(done);
    for (kv::LeaseId id : leases) {
      propose_revoke(id, [this, id, consistency, query, round, pending](result<void> r) {
        std::unique_lock lock(pending->mutex);
        if (!r && !pending->failure) pending->failure = read_failure(std::move(r).error(), id);
        if (--pending->left != 0) return;
        lock.unlock();  // the last completion: nobody else touches `pending`
        if (pending->failure) return pending->done(std::move(*pending->failure));
        if (round + 1 >= config_.max_read_rounds)
          return pending->done(
              error(errc::unavailable,
                    "read: leases kept expiring while the read revoked them (max_read_rounds = " +
                        std::to_string(config_.max_read_rounds) + ")"));
        read_round<V>(consistency, query, std::move(pending->done), round + 1);
      });
    }
  }

  /// Whether a read at `consistency` can run on the calling thread now (see read()).
  [[nodiscard]] bool local_read_possible(node::ReadConsistency consistency) const noexcept {
    const node::NodeStatus s = node_->status();
    if (!s.running) return false;  // let the node fail it with stopped
    if (consistency == node::ReadConsistency::serializable) return true;
    if (consistency != node::ReadConsistency::lease) return false;
    const auto index = node_->lease_read_index();
    return index && s.applied >= *index;
  }

  /// The lessor's time: the replica's clock read as a steady_clock time point (virtual time
  /// under the simulator; the lessor only compares and adds durations).
  [[nodiscard]] kv::Lessor::time_point lessor_now() const {
    return kv::Lessor::time_point(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        clock_.now().time_since_epoch()));
  }

  /// A keep-alive on this node's lessor, naming the leader on not_leader.
  result<KeepAliveAnswer> keep_alive_here(kv::LeaseId id) {
    auto r = lessor_.keep_alive(id, lessor_now());
    if (r) return KeepAliveAnswer{r.value(), node_->id(), lessor_term_.load()};
    error e = r.error();
    if (e.code == errc::not_leader) {
      e.leader_hint = node_->leader();
      e.leader_address = std::string(node_->membership().address_of(e.leader_hint));
    }
    return e;
  }

  /// Sends lease call (`kind`, `id`) to the leader's lessor; `done` gets its answer.
  void ask_leader(lease_calls::Kind kind, kv::LeaseId id, node::Completion<KeepAliveAnswer> done) {
    node_->call_leader(lease_calls::encode_request({kind, id}),
                       [kind, d = std::move(done)](result<std::string> reply) mutable {
                         if (!reply) return d(std::move(reply).error());
                         d(lease_calls::decode_answer(kind, reply.value()));
                       });
  }

  /// The leader service (node::NodeCallbacks::leader_service), on the node's event loop: a
  /// follower's keep-alive or time-left question. Declined (nullopt: the follower asks again)
  /// while this lessor is not primary — just elected and not yet promoted, or deposed and not
  /// yet demoted.
  std::optional<std::string> serve_leader_call(std::string_view bytes) {
    auto request = lease_calls::decode_request(bytes);
    if (!request)
      return lease_calls::encode_answer(lease_calls::Kind::keep_alive, std::move(request).error());
    const auto [kind, id] = request.value();
    if (kind == lease_calls::Kind::time_left) {
      const std::optional<std::int64_t> left = remaining_ttl(id);  // nullopt: not primary too
      if (!left && !lessor_.is_primary()) return std::nullopt;
      return lease_calls::encode_answer(
          kind, KeepAliveAnswer{left.value_or(-1), node_->id(), lessor_term_.load()});
    }
    auto r = lessor_.keep_alive(id, lessor_now());
    if (!r && r.error() == errc::not_leader) return std::nullopt;
    if (!r) return lease_calls::encode_answer(kind, std::move(r).error());
    return lease_calls::encode_answer(kind,
                                      KeepAliveAnswer{r.value(), node_->id(), lessor_term_.load()});
  }

  /// Leader changes arrive in order on the apply thread: the lessor is primary exactly while
  /// this node leads. Leases granted in entries applied after this point reach it through
  /// on_applied (called by the state machine), so nothing committed is missed.
  void on_leader_change(const node::LeaderChange& change) {
    const bool leading = change.role == raft::Role::leader;
    if (leading && !lessor_.is_primary()) {
      lessor_term_.store(change.term);
      lessor_.promote(lessor_now(), machine_->lease_infos());
    } else if (!leading && lessor_.is_primary()) {
      lessor_.demote();
      lessor_term_.store(0);
    }
  }

  /// A revoke's failure as the error of the read that needed it. A read has no outcome to be
  /// unsure of: a revoke whose outcome is unknown fails the read with its cause.
  static error read_failure(error e, kv::LeaseId id) {
    if (e.code != errc::outcome_unknown || !e.cause) return e;
    error out(e.cause, "read: revoking expired lease " + std::to_string(id) +
                           " before answering: " + e.detail);
    out.leader_hint = e.leader_hint;
    out.leader_address = e.leader_address;
    return out;
  }

  template <class X>
  static result<X> unwrap(result<typename machine_type::response_type> r) {
    if (!r) return std::move(r).error();
    typename machine_type::response_type inner = std::move(r).value();
    if (!inner) return std::move(inner).error();
    if (auto* x = std::get_if<X>(&inner.value())) return std::move(*x);
    // The entry was applied: its effect stands, only its answer is lost.
    return error::outcome_unknown(
        "kv replica: the entry was applied",
        error(errc::invalid_argument, "internal: it answered a different request type"));
  }

  // Fails a request before it reached the node, on the handler's associated executor (inline
  // for a handler without one), as the node does for requests it refuses at admission.
  template <class X, class Handler>
  static void fail_now(Handler&& handler, error e) {
    auto ex = boost::asio::get_associated_executor(handler);
    boost::asio::dispatch(ex, [h = std::forward<Handler>(handler), e = std::move(e)]() mutable {
      std::move(h)(result<X>(std::move(e)));
    });
  }

  void start_housekeeping() {
    next_progress_ = clock_.now() + std::chrono::duration_cast<std::chrono::microseconds>(
                                        config_.progress_notify_interval);
    if constexpr (deterministic) {
      schedule_housekeeping();
    } else {
      housekeeper_ = std::thread([this] {
        std::unique_lock lock(housekeeping_mutex_);
        while (!housekeeping_stopped_) {
          housekeeping_cv_.wait_for(lock, config_.housekeeping_interval,
                                    [this] { return housekeeping_stopped_; });
          if (housekeeping_stopped_) break;
          lock.unlock();
          housekeeping();
          lock.lock();
        }
      });
    }
  }

  // Deterministic runtime: one recurring event on the simulator's executor. `alive_` lets
  // an event scheduled before the replica was destroyed find out and do nothing.
  void schedule_housekeeping() requires(deterministic) {
    R::post_after(
        clock_,
        std::chrono::duration_cast<std::chrono::microseconds>(config_.housekeeping_interval),
        [this, alive = std::weak_ptr<int>(alive_)] {
          if (alive.expired() || housekeeping_stopped_) return;
          housekeeping();
          schedule_housekeeping();
        });
  }

  void stop_housekeeping() {
    {
      std::lock_guard lock(housekeeping_mutex_);
      housekeeping_stopped_ = true;
    }
    housekeeping_cv_.notify_all();
    if (housekeeper_.joinable()) housekeeper_.join();
  }

  EngineConfig config_;
  clock_type clock_;
  kv::Lessor lessor_;
  /// The term in which lessor_ was last promoted (0 while not primary), for keep-alive answers.
  std::atomic<Term> lessor_term_{0};
  ReplicaCounters counters_;
  typename clock_type::time_point next_progress_{};  // housekeeping thread/event only
  std::mutex housekeeping_mutex_;
  std::condition_variable housekeeping_cv_;
  bool housekeeping_stopped_ = false;  // guarded by housekeeping_mutex_ (threaded arrangement)
  std::thread housekeeper_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
  std::unique_ptr<machine_type> machine_;
  /// Declared last: destroyed (stopped) first, while the state machine and lessor still exist.
  std::unique_ptr<node_type> node_;
};

}  // namespace dengine::engine
