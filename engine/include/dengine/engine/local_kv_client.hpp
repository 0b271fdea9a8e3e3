#pragma once
/// LocalKvClient: the in-process KV client of a replica (EmbeddedEngine::client()). Every etcd v3
/// KV, lease and watch operation, in two forms:
///
/// - asynchronous, with Asio completion tokens: a callback, `asio::use_future`, or `co_await`
///   with `asio::use_awaitable`; signature void(dengine::result<Response>);
/// - blocking, for scripts and quick starts (`put`, `get`, ...): threaded arrangement only, and
///   never from a completion handler or callback (they fail with invalid_argument there).
///
/// Reads take a consistency (docs/embedded.md): linearizable (default; ReadIndex), lease (the
/// leader's lease, no round trip) or serializable (this replica's state now, may be stale).
/// Writes and linearizable reads go through the leader: on a follower a write is forwarded to
/// the leader and answered here once applied here, and a linearizable read is confirmed by the
/// leader (ReadIndex) and served here. With NodeConfig::forward_proposals off a follower's
/// writes fail with not_leader instead (error::leader_hint names the leader and
/// error::leader_address its peer address). A follower's lease keep-alive asks the leader's
/// lessor (a leader call: no log entry).
///
/// A failed write either did not and never will take effect (every error but one), or failed
/// with errc::outcome_unknown: its entry may already be in the log, so it may be applied after
/// all; error::cause says why no answer came (timeout, stopped, no_space, io_error, ...).
/// docs/embedded.md, Errors, lists which error is which.
///
/// A client is a cheap handle (one pointer): copy it freely; it must not outlive its replica.
///
/// The member functions that are not templates are defined in local_kv_client_impl.hpp, which
/// this header includes unless DENGINE_COMPILED is defined (the compiled mode, docs/building.md:
/// a library holds them for the shipped engines).

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "dengine/core/error.hpp"
#include "dengine/engine/kv_replica_fwd.hpp"
#include "dengine/engine/watch_stream.hpp"
#include "dengine/node/config.hpp"
#include "dengine/statemachines/kv/requests.hpp"
#include "dengine/statemachines/kv/watch_types.hpp"

namespace dengine::engine {

using node::ReadConsistency;

/// The range end that selects every key starting with `prefix` (etcd's clientv3.GetPrefixRangeEnd):
/// the prefix with its last byte below 0xff incremented (and what follows dropped); "\0" (every
/// key) when the prefix is empty or all 0xff.
[[nodiscard]] inline std::string prefix_range_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last < 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');
}

/// Sets a request's [key, range_end) to every key starting with `prefix` (every key when it is
/// empty: etcd's "\0" .. "\0").
template <class Request>
void set_prefix(Request& req, std::string prefix) {
  req.range_end = prefix_range_end(prefix);
  req.key = prefix.empty() ? std::string(1, '\0') : std::move(prefix);
}

/// What put_with_ttl did: the lease it granted and the put.
struct TtlPut {
  kv::LeaseId lease = kv::no_lease;
  std::int64_t ttl = 0;  ///< the lease's TTL (raised to the minimum TTL if it was lower)
  kv::PutResponse put;
};

/// The in-process client of replica type R (a KvReplica).
template <class R>
class LocalKvClient {
 public:
  using replica_type = R;
  /// True in the simulator's arrangement: only the asynchronous forms are available.
  static constexpr bool deterministic = replica_is_deterministic<R>;
  // The blocking forms below are constrained on replica_is_deterministic<R> (the same value)
  // rather than on `deterministic`: their definitions are out of the class
  // (local_kv_client_impl.hpp), and clang 14 does not find class members named in the
  // requires-clause of an out-of-class definition.

  /// A client of `replica` (which must outlive it).
  explicit LocalKvClient(R& replica) noexcept : replica_(&replica) {}

  // ---- asynchronous forms ----

  /// Sets a key (etcd Put). Signature: void(result<kv::PutResponse>).
  template <class CompletionToken>
  auto async_put(kv::PutRequest req, CompletionToken&& token) {
    return replica_->template propose<kv::PutResponse>(std::move(req),
                                                       std::forward<CompletionToken>(token));
  }

  /// Reads keys (etcd Range). req.serializable = true overrides `consistency`.
  /// Signature: void(result<kv::RangeResponse>).
  template <class CompletionToken>
  auto async_range(kv::RangeRequest req, ReadConsistency consistency, CompletionToken&& token) {
    if (req.serializable) consistency = ReadConsistency::serializable;
    return replica_->read(
        consistency,
        [r = std::move(req)](const auto& m, const kv::ExpiredPredicate& expired) {
          return m.range(r, expired);
        },
        std::forward<CompletionToken>(token));
  }

  /// Deletes keys (etcd DeleteRange). Signature: void(result<kv::DeleteRangeResponse>).
  template <class CompletionToken>
  auto async_delete_range(kv::DeleteRangeRequest req, CompletionToken&& token) {
    return replica_->template propose<kv::DeleteRangeResponse>(
        std::move(req), std::forward<CompletionToken>(token));
  }

  /// A transaction (etcd Txn): through the log, or — when it only reads — as a read at
  /// `consistency`. Signature: void(result<kv::TxnResponse>).
  template <class CompletionToken>
  auto async_txn(kv::TxnRequest req, ReadConsistency consistency, CompletionToken&& token) {
    // A txn that only reads (kv::is_read_only) is answered as a read, without the log.
    if (kv::is_read_only(req)) {
      return replica_->read(
          consistency,
          [r = std::move(req)](const auto& m, const kv::ExpiredPredicate& expired) {
            return m.read_txn(r, expired);
          },
          std::forward<CompletionToken>(token));
    }
    return replica_->template propose<kv::TxnResponse>(std::move(req),
                                                       std::forward<CompletionToken>(token));
  }

  /// Drops history below a revision (etcd Compact). Signature:
  /// void(result<kv::CompactionResponse>).
  template <class CompletionToken>
  auto async_compact(kv::CompactionRequest req, CompletionToken&& token) {
    return replica_->template propose<kv::CompactionResponse>(req,
                                                              std::forward<CompletionToken>(token));
  }

  /// Grants a lease (etcd LeaseGrant). Signature: void(result<kv::LeaseGrantResponse>).
  template <class CompletionToken>
  auto async_lease_grant(kv::LeaseGrantRequest req, CompletionToken&& token) {
    return replica_->template propose<kv::LeaseGrantResponse>(req,
                                                              std::forward<CompletionToken>(token));
  }

  /// Revokes a lease and deletes its keys (etcd LeaseRevoke).
  /// Signature: void(result<kv::LeaseRevokeResponse>).
  template <class CompletionToken>
  auto async_lease_revoke(kv::LeaseRevokeRequest req, CompletionToken&& token) {
    return replica_->template propose<kv::LeaseRevokeResponse>(
        req, std::forward<CompletionToken>(token));
  }

  /// A lease's TTLs and keys (etcd LeaseTimeToLive). `ttl` is the seconds left by the leader's
  /// lessor: on a follower it asks the leader for them (a leader call, after the read), except
  /// at serializable consistency, which answers from this replica alone — `ttl` is then the
  /// granted TTL, as a follower knows no deadlines. -1: no such lease (or it expired).
  /// Signature: void(result<kv::LeaseTimeToLiveResponse>).
  template <class CompletionToken>
  auto async_lease_time_to_live(kv::LeaseTimeToLiveRequest req, ReadConsistency consistency,
                                CompletionToken&& token) {
    return replica_->async_lease_time_to_live(req, consistency,
                                              std::forward<CompletionToken>(token));
  }

  /// Every lease (etcd LeaseLeases). Signature: void(result<kv::LeaseLeasesResponse>).
  template <class CompletionToken>
  auto async_lease_leases(ReadConsistency consistency, CompletionToken&& token) {
    return replica_->read(
        consistency,
        [](const auto& m, const kv::ExpiredPredicate& /*expired*/) { return m.lease_leases(); },
        std::forward<CompletionToken>(token));
  }

  /// Refreshes a lease to its full TTL (one etcd LeaseKeepAlive round); completes with the TTL
  /// in seconds. On a follower it asks the leader (a leader call, no log entry), unless
  /// NodeConfig::forward_proposals is off: then not_leader naming the leader. Errors: not_found
  /// once the lease is gone or expired; timeout (no leader answered within the request timeout:
  /// the lease may or may not have been refreshed); too_busy; stopped.
  /// Signature: void(result<std::int64_t>).
  template <class CompletionToken>
  auto async_lease_keep_alive(kv::LeaseId id, CompletionToken&& token) {
    return replica_->async_keep_alive_ttl(id, std::forward<CompletionToken>(token));
  }

  // ---- immediate operations (no log, no waiting) ----

  /// async_lease_keep_alive, answered at once on the leader; on a follower it waits for the
  /// leader's answer (threaded arrangement, not from a completion handler) — with a
  /// deterministic runtime, and with forwarding off, a follower answers not_leader instead.
  result<std::int64_t> lease_keep_alive(kv::LeaseId id);

  /// Starts a watch (etcd Watch create) on this replica's applied state. `notify` (optional)
  /// runs on the apply thread whenever responses were queued; it must be quick. Errors:
  /// invalid_argument (empty key), too_busy (too many watchers).
  result<WatchStream> watch(const kv::WatchCreateRequest& req, std::function<void()> notify = {});

  /// Watches every key under `prefix` from `start_revision` (0 = from the next change).
  result<WatchStream> watch_prefix(std::string prefix, kv::Revision start_revision = 0,
                                   std::function<void()> notify = {});

  // ---- blocking forms (threaded arrangement; not from a completion handler) ----

  /// Sets `key` = `value` (attached to `lease` unless 0).
  result<kv::PutResponse> put(
      std::string key, std::string value,
      kv::LeaseId lease = kv::no_lease) requires(!replica_is_deterministic<R>);
  /// A PutRequest with every option.
  result<kv::PutResponse> put(kv::PutRequest req) requires(!replica_is_deterministic<R>);

  /// The key's current value and metadata, or nullopt when it does not exist.
  result<std::optional<kv::KeyValue>> get(
      std::string key, ReadConsistency consistency =
                           ReadConsistency::linearizable) requires(!replica_is_deterministic<R>);

  /// Every key under `prefix`, in key order.
  result<std::vector<kv::KeyValue>> get_prefix(
      std::string prefix, ReadConsistency consistency =
                              ReadConsistency::linearizable) requires(!replica_is_deterministic<R>);

  /// A RangeRequest with every option.
  result<kv::RangeResponse> range(
      kv::RangeRequest req,
      ReadConsistency consistency =
          ReadConsistency::linearizable) requires(!replica_is_deterministic<R>);

  /// Deletes `key`; the response's `deleted` is 0 or 1.
  result<kv::DeleteRangeResponse> del(std::string key) requires(!replica_is_deterministic<R>);
  /// Deletes every key under `prefix`.
  result<kv::DeleteRangeResponse> delete_prefix(std::string prefix) requires(
      !replica_is_deterministic<R>);
  /// A DeleteRangeRequest with every option.
  result<kv::DeleteRangeResponse> delete_range(kv::DeleteRangeRequest req) requires(
      !replica_is_deterministic<R>);

  /// Sets `key` to `desired` only if its value is `expected` (nullopt: only if the key does
  /// not exist). True if it was set.
  result<bool> compare_and_swap(std::string key, std::optional<std::string> expected,
                                std::string desired) requires(!replica_is_deterministic<R>);

  /// A TxnRequest (read-only txns are served as reads at `consistency`).
  result<kv::TxnResponse> txn(
      kv::TxnRequest req, ReadConsistency consistency =
                              ReadConsistency::linearizable) requires(!replica_is_deterministic<R>);

  /// Drops every revision below `revision` (reads and watches below it fail with compacted).
  result<kv::CompactionResponse> compact(kv::Revision revision) requires(
      !replica_is_deterministic<R>);

  /// Grants a lease of `ttl` seconds (id 0: chosen by the cluster).
  result<kv::LeaseGrantResponse> lease_grant(
      std::int64_t ttl, kv::LeaseId id = kv::no_lease) requires(!replica_is_deterministic<R>);

  /// Revokes a lease: it and every key attached to it are deleted.
  result<kv::LeaseRevokeResponse> lease_revoke(kv::LeaseId id) requires(
      !replica_is_deterministic<R>);

  /// A lease's TTLs (and keys, if asked); ttl -1 when it does not exist.
  result<kv::LeaseTimeToLiveResponse> lease_time_to_live(
      kv::LeaseId id, bool keys = false,
      ReadConsistency consistency =
          ReadConsistency::linearizable) requires(!replica_is_deterministic<R>);

  /// Every lease.
  result<kv::LeaseLeasesResponse> lease_leases(
      ReadConsistency consistency =
          ReadConsistency::linearizable) requires(!replica_is_deterministic<R>);

  /// Sets `key` = `value` under a new lease of `ttl` seconds: the key disappears when the
  /// lease expires unless the lease is kept alive (lease_keep_alive(result.lease)). Two writes:
  /// when the put fails, the lease granted first stays (and expires after its TTL).
  result<TtlPut> put_with_ttl(std::string key, std::string value,
                              std::int64_t ttl) requires(!replica_is_deterministic<R>);

  /// The txn compare_and_swap runs (for asynchronous use with async_txn).
  [[nodiscard]] static kv::TxnRequest cas_request(std::string key,
                                                  std::optional<std::string> expected,
                                                  std::string desired) {
    kv::TxnRequest txn;
    kv::Compare cmp;
    cmp.key = key;
    if (expected) {
      cmp.target = kv::CompareTarget::value;
      cmp.value = std::move(*expected);
    } else {
      cmp.target = kv::CompareTarget::create;
      cmp.create_revision = 0;
    }
    cmp.result = kv::CompareResult::equal;
    txn.compare.push_back(std::move(cmp));
    auto& put = txn.success.emplace_back().request.template emplace<kv::PutRequest>();
    put.key = std::move(key);
    put.value = std::move(desired);
    return txn;
  }

  /// The replica this client talks to.
  [[nodiscard]] R& replica() const noexcept { return *replica_; }

 private:
  R* replica_;
};

}  // namespace dengine::engine

#ifndef DENGINE_COMPILED
#include "dengine/engine/local_kv_client_impl.hpp"  // IWYU pragma: export
#endif
