#pragma once
/// The KV state machine's errors. Each carries etcd's exact error text as `error::detail`
/// (clients match on it), and `grpc_status` tells a server which gRPC status code etcd uses.

#include <string>
#include <string_view>

#include "dengine/core/error.hpp"

namespace dengine::kv {

/// etcd's error texts, verbatim (etcdserver/api/v3rpc/rpctypes).
namespace etcd_text {
inline constexpr std::string_view compacted =
    "etcdserver: mvcc: required revision has been compacted";
inline constexpr std::string_view future_revision =
    "etcdserver: mvcc: required revision is a future revision";
inline constexpr std::string_view lease_not_found = "etcdserver: requested lease not found";
inline constexpr std::string_view lease_exists = "etcdserver: lease already exists";
inline constexpr std::string_view lease_ttl_too_large = "etcdserver: too large lease TTL";
inline constexpr std::string_view request_too_large = "etcdserver: request is too large";
inline constexpr std::string_view too_many_ops = "etcdserver: too many operations in txn request";
inline constexpr std::string_view empty_key = "etcdserver: key is not provided";
inline constexpr std::string_view duplicate_key = "etcdserver: duplicate key given in txn request";
inline constexpr std::string_view key_not_found = "etcdserver: key not found";
inline constexpr std::string_view value_provided = "etcdserver: value is provided";
inline constexpr std::string_view lease_provided = "etcdserver: lease is provided";
inline constexpr std::string_view watch_canceled = "etcdserver: watch canceled";
inline constexpr std::string_view no_leader = "etcdserver: no leader";
}  // namespace etcd_text

/// An error with etcd's text as its detail.
inline error etcd_error(errc code, std::string_view text) { return error(code, std::string(text)); }

/// gRPC status codes (grpc/status.h numbering) that etcd uses for KV errors.
enum class grpc_code : int {
  ok = 0,
  cancelled = 1,
  unknown = 2,
  invalid_argument = 3,
  deadline_exceeded = 4,
  not_found = 5,
  failed_precondition = 9,
  out_of_range = 11,
  internal = 13,
  unavailable = 14,
  data_loss = 15,
};

/// The gRPC status etcd answers for `e` (by its etcd text first, then by its code), so a server
/// forwards state-machine errors exactly as etcd would.
inline grpc_code grpc_status(const error& e) {
  const std::string_view d = e.detail;
  if (d == etcd_text::lease_exists) return grpc_code::failed_precondition;
  if (d == etcd_text::lease_ttl_too_large) return grpc_code::out_of_range;
  if (d == etcd_text::watch_canceled) return grpc_code::cancelled;
  if (e.code.category() != dengine_category()) return grpc_code::unknown;
  switch (static_cast<errc>(e.code.value())) {
    case errc::ok: return grpc_code::ok;
    case errc::compacted:
    case errc::future_revision: return grpc_code::out_of_range;
    case errc::not_found: return grpc_code::not_found;
    case errc::invalid_argument:
    case errc::too_large: return grpc_code::invalid_argument;
    case errc::not_leader:
    case errc::unavailable:
    case errc::stopped:
    case errc::too_busy:
    case errc::proposal_dropped: return grpc_code::unavailable;
    case errc::timeout: return grpc_code::deadline_exceeded;
    // A write that may or may not have taken effect: as its cause (a timeout, or the node
    // stopping or failing under it).
    case errc::outcome_unknown:
      return e.cause == errc::timeout ? grpc_code::deadline_exceeded : grpc_code::unavailable;
    case errc::storage_corrupt: return grpc_code::data_loss;
    default: return grpc_code::internal;
  }
}

}  // namespace dengine::kv
