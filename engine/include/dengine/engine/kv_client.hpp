#pragma once
/// The KvClient concept: what application code needs from a KV client, so that it is written
/// once and runs over the in-process LocalKvClient or a remote client alike. It names the
/// blocking forms (the asynchronous ones take completion tokens, which a concept cannot list
/// for every token type; a client provides async_put, async_range, ... beside them).

#include <concepts>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "dengine/core/error.hpp"
#include "dengine/engine/local_kv_client.hpp"
#include "dengine/statemachines/kv/requests.hpp"

namespace dengine::engine {

/// **KvClient** — put/get/delete, compare-and-swap, transactions, leases (grant, revoke,
/// keep-alive, TTL), watch, each read at a chosen consistency; every call returns
/// dengine::result (errors: not_leader with a hint, timeout, stopped, too_busy, the request's
/// own with etcd's texts).
template <class C>
concept KvClient = requires(C& c, std::string s, kv::PutRequest put, kv::RangeRequest range,
                            kv::DeleteRangeRequest del, kv::TxnRequest txn, ReadConsistency rc,
                            kv::LeaseId lease, std::int64_t ttl, kv::Revision rev,
                            kv::WatchCreateRequest watch, std::optional<std::string> expected) {
  { c.put(s, s) } -> std::same_as<result<kv::PutResponse>>;
  { c.put(put) } -> std::same_as<result<kv::PutResponse>>;
  { c.get(s, rc) } -> std::same_as<result<std::optional<kv::KeyValue>>>;
  { c.get_prefix(s, rc) } -> std::same_as<result<std::vector<kv::KeyValue>>>;
  { c.range(range, rc) } -> std::same_as<result<kv::RangeResponse>>;
  { c.del(s) } -> std::same_as<result<kv::DeleteRangeResponse>>;
  { c.delete_range(del) } -> std::same_as<result<kv::DeleteRangeResponse>>;
  { c.compare_and_swap(s, expected, s) } -> std::same_as<result<bool>>;
  { c.txn(txn, rc) } -> std::same_as<result<kv::TxnResponse>>;
  { c.compact(rev) } -> std::same_as<result<kv::CompactionResponse>>;
  { c.lease_grant(ttl) } -> std::same_as<result<kv::LeaseGrantResponse>>;
  { c.lease_revoke(lease) } -> std::same_as<result<kv::LeaseRevokeResponse>>;
  { c.lease_keep_alive(lease) } -> std::same_as<result<std::int64_t>>;
  { c.lease_time_to_live(lease, true, rc) } -> std::same_as<result<kv::LeaseTimeToLiveResponse>>;
  { c.put_with_ttl(s, s, ttl) } -> std::same_as<result<TtlPut>>;
  { c.watch(watch) } -> std::same_as<result<WatchStream>>;
  { c.watch_prefix(s, rev) } -> std::same_as<result<WatchStream>>;
};

}  // namespace dengine::engine
