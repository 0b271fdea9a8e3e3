#pragma once
/// LocalKvClient's member functions that are not templates (local_kv_client.hpp declares them):
/// the immediate operations and the blocking forms. Header-only use includes this through
/// local_kv_client.hpp; with DENGINE_COMPILED, a library compiled them for the shipped engines
/// (engine/src/), and a translation unit that uses a LocalKvClient of another replica type
/// includes this header itself.

#include <boost/asio/use_future.hpp>

#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "dengine/engine/kv_replica.hpp"
#include "dengine/engine/local_kv_client.hpp"

namespace dengine::engine {

namespace detail {

/// Waits for a blocking call's result, polling for `spin` before sleeping: the answer usually
/// comes within a few microseconds, and a sleeping thread takes tens of microseconds to wake on
/// a VM (the node's threads do the same, NodeConfig::idle_spin).
template <class T>
T settle(std::chrono::nanoseconds spin, std::future<T> f) {
  if (spin.count() > 0) {
    const auto until = std::chrono::steady_clock::now() + spin;
    while (f.wait_for(std::chrono::seconds(0)) != std::future_status::ready &&
           std::chrono::steady_clock::now() < until) {
      std::this_thread::yield();  // let the thread doing the work have this core
    }
  }
  return f.get();
}

/// One blocking client call on `replica`: refused with invalid_argument on a thread of the node
/// (the call would wait for the thread that must answer it), else started by `start` (an async_
/// form given asio::use_future) and waited for.
template <class R, class Start>
auto run_blocking(R& replica, const char* what, Start start) -> decltype(start().get()) {
  if (replica.node().on_own_thread())
    return error(errc::invalid_argument,
                 std::string("kv client ") + what +
                     "() would block a thread of the node (called from a completion handler or "
                     "callback); use the async_ form there");
  return settle(replica.node().config().idle_spin, start());
}

}  // namespace detail

template <class R>
result<std::int64_t> LocalKvClient<R>::lease_keep_alive(kv::LeaseId id) {
  auto here = replica_->keep_alive(id);
  if constexpr (replica_is_deterministic<R>) {
    return here;
  } else {
    if (here || here.error() != errc::not_leader || !replica_->node().config().forward_proposals)
      return here;
    return detail::run_blocking(*replica_, "lease_keep_alive", [&] {
      return async_lease_keep_alive(id, boost::asio::use_future);
    });
  }
}

template <class R>
result<WatchStream> LocalKvClient<R>::watch(const kv::WatchCreateRequest& req,
                                            std::function<void()> notify) {
  auto signal = std::make_shared<WatchStream::Signal>();
  signal->user_notify = std::move(notify);
  auto w = replica_->watch(req, [signal] { signal->notify(); });
  if (!w) return std::move(w).error();
  return WatchStream(std::move(w).value(), replica_->machine().watch_hub(), std::move(signal));
}

template <class R>
result<WatchStream> LocalKvClient<R>::watch_prefix(std::string prefix, kv::Revision start_revision,
                                                   std::function<void()> notify) {
  kv::WatchCreateRequest req;
  set_prefix(req, std::move(prefix));
  req.start_revision = start_revision;
  return watch(req, std::move(notify));
}

template <class R>
result<kv::PutResponse> LocalKvClient<R>::put(
    std::string key, std::string value, kv::LeaseId lease) requires(!replica_is_deterministic<R>) {
  kv::PutRequest req;
  req.key = std::move(key);
  req.value = std::move(value);
  req.lease = lease;
  return put(std::move(req));
}

template <class R>
result<kv::PutResponse> LocalKvClient<R>::put(kv::PutRequest req) requires(
    !replica_is_deterministic<R>) {
  return detail::run_blocking(*replica_, "put",
                              [&] { return async_put(std::move(req), boost::asio::use_future); });
}

template <class R>
result<std::optional<kv::KeyValue>> LocalKvClient<R>::get(
    std::string key, ReadConsistency consistency) requires(!replica_is_deterministic<R>) {
  kv::RangeRequest req;
  req.key = std::move(key);
  DENGINE_TRY(resp, range(std::move(req), consistency));
  if (resp.kvs.empty()) return std::optional<kv::KeyValue>();
  return std::optional<kv::KeyValue>(std::move(resp.kvs.front()));
}

template <class R>
result<std::vector<kv::KeyValue>> LocalKvClient<R>::get_prefix(
    std::string prefix, ReadConsistency consistency) requires(!replica_is_deterministic<R>) {
  kv::RangeRequest req;
  set_prefix(req, std::move(prefix));
  DENGINE_TRY(resp, range(std::move(req), consistency));
  return std::move(resp.kvs);
}

template <class R>
result<kv::RangeResponse> LocalKvClient<R>::range(
    kv::RangeRequest req, ReadConsistency consistency) requires(!replica_is_deterministic<R>) {
  return detail::run_blocking(*replica_, "range", [&] {
    return async_range(std::move(req), consistency, boost::asio::use_future);
  });
}

template <class R>
result<kv::DeleteRangeResponse> LocalKvClient<R>::del(std::string key) requires(
    !replica_is_deterministic<R>) {
  kv::DeleteRangeRequest req;
  req.key = std::move(key);
  return delete_range(std::move(req));
}

template <class R>
result<kv::DeleteRangeResponse> LocalKvClient<R>::delete_prefix(std::string prefix) requires(
    !replica_is_deterministic<R>) {
  kv::DeleteRangeRequest req;
  set_prefix(req, std::move(prefix));
  return delete_range(std::move(req));
}

template <class R>
result<kv::DeleteRangeResponse> LocalKvClient<R>::delete_range(kv::DeleteRangeRequest req) requires(
    !replica_is_deterministic<R>) {
  return detail::run_blocking(*replica_, "delete_range", [&] {
    return async_delete_range(std::move(req), boost::asio::use_future);
  });
}

template <class R>
result<bool> LocalKvClient<R>::compare_and_swap(
    std::string key, std::optional<std::string> expected,
    std::string desired) requires(!replica_is_deterministic<R>) {
  DENGINE_TRY(resp, txn(cas_request(std::move(key), std::move(expected), std::move(desired))));
  return resp.succeeded;
}

template <class R>
result<kv::TxnResponse> LocalKvClient<R>::txn(
    kv::TxnRequest req, ReadConsistency consistency) requires(!replica_is_deterministic<R>) {
  return detail::run_blocking(*replica_, "txn", [&] {
    return async_txn(std::move(req), consistency, boost::asio::use_future);
  });
}

template <class R>
result<kv::CompactionResponse> LocalKvClient<R>::compact(kv::Revision revision) requires(
    !replica_is_deterministic<R>) {
  return detail::run_blocking(*replica_, "compact", [&] {
    return async_compact(kv::CompactionRequest{revision, false}, boost::asio::use_future);
  });
}

template <class R>
result<kv::LeaseGrantResponse> LocalKvClient<R>::lease_grant(
    std::int64_t ttl, kv::LeaseId id) requires(!replica_is_deterministic<R>) {
  return detail::run_blocking(*replica_, "lease_grant", [&] {
    return async_lease_grant(kv::LeaseGrantRequest{ttl, id}, boost::asio::use_future);
  });
}

template <class R>
result<kv::LeaseRevokeResponse> LocalKvClient<R>::lease_revoke(kv::LeaseId id) requires(
    !replica_is_deterministic<R>) {
  return detail::run_blocking(*replica_, "lease_revoke", [&] {
    return async_lease_revoke(kv::LeaseRevokeRequest{id}, boost::asio::use_future);
  });
}

template <class R>
result<kv::LeaseTimeToLiveResponse> LocalKvClient<R>::lease_time_to_live(
    kv::LeaseId id, bool keys, ReadConsistency consistency) requires(!replica_is_deterministic<R>) {
  return detail::run_blocking(*replica_, "lease_time_to_live", [&] {
    return async_lease_time_to_live(kv::LeaseTimeToLiveRequest{id, keys}, consistency,
                                    boost::asio::use_future);
  });
}

template <class R>
result<kv::LeaseLeasesResponse> LocalKvClient<R>::lease_leases(
    ReadConsistency consistency) requires(!replica_is_deterministic<R>) {
  return detail::run_blocking(*replica_, "lease_leases", [&] {
    return async_lease_leases(consistency, boost::asio::use_future);
  });
}

template <class R>
result<TtlPut> LocalKvClient<R>::put_with_ttl(
    std::string key, std::string value, std::int64_t ttl) requires(!replica_is_deterministic<R>) {
  DENGINE_TRY(grant, lease_grant(ttl));
  DENGINE_TRY(put_resp, put(std::move(key), std::move(value), grant.id));
  return TtlPut{grant.id, grant.ttl, std::move(put_resp)};
}

}  // namespace dengine::engine
