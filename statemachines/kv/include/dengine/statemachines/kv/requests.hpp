#pragma once
/// Requests and responses of the KV state machine. Each mirrors the etcd v3 message of the same
/// name (etcdserverpb, rpc.proto) field by field, with etcd's meanings, so that a server maps
/// one to the other without translation. Response headers carry only the store revision: the
/// cluster id, member id and raft term are the server's to fill in.

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "dengine/statemachines/kv/types.hpp"

namespace dengine::kv {

/// The part of etcd's ResponseHeader the state machine knows: the store revision when the
/// request was served (for a write, the revision it produced, or the current one if it changed
/// nothing).
struct ResponseHeader {
  Revision revision = 0;
  friend bool operator==(const ResponseHeader&, const ResponseHeader&) = default;
};

/// RangeRequest.SortOrder.
enum class SortOrder : std::uint8_t { none = 0, ascend = 1, descend = 2 };
/// RangeRequest.SortTarget.
enum class SortTarget : std::uint8_t { key = 0, version = 1, create = 2, mod = 3, value = 4 };

/// Reads the keys in [key, range_end). Key conventions (etcd's): range_end empty = the single
/// key `key`; range_end "\0" = every key >= key; key "\0" with range_end "\0" = every key;
/// range_end = key with its last byte incremented = the prefix `key`.
struct RangeRequest {
  std::string key{};
  std::string range_end{};
  std::int64_t limit = 0;  ///< at most this many kvs (0 = no limit); `more` says if cut
  Revision revision = 0;   ///< read at this revision (<= 0 = the current one)
  SortOrder sort_order = SortOrder::none;
  SortTarget sort_target = SortTarget::key;
  bool serializable = false;         ///< for the server: serve locally without a ReadIndex
  bool keys_only = false;            ///< return kvs without values
  bool count_only = false;           ///< return only `count`
  Revision min_mod_revision = 0;     ///< drop kvs with a lower mod_revision (0 = no filter)
  Revision max_mod_revision = 0;     ///< drop kvs with a higher mod_revision (0 = no filter)
  Revision min_create_revision = 0;  ///< drop kvs with a lower create_revision (0 = no filter)
  Revision max_create_revision = 0;  ///< drop kvs with a higher create_revision (0 = no filter)
  friend bool operator==(const RangeRequest&, const RangeRequest&) = default;
};

/// The answer to a RangeRequest. `count` is the number of keys in the range at the revision
/// (before limit and the min/max filters, as in etcd); `more` = kvs were cut by limit.
struct RangeResponse {
  ResponseHeader header{};
  std::vector<KeyValue> kvs{};
  bool more = false;
  std::int64_t count = 0;
  friend bool operator==(const RangeResponse&, const RangeResponse&) = default;
};

/// Sets key = value, optionally attached to a lease.
struct PutRequest {
  std::string key{};
  std::string value{};
  LeaseId lease = no_lease;   ///< attach to this lease (must exist); 0 = detach
  bool prev_kv = false;       ///< return the previous kv
  bool ignore_value = false;  ///< keep the current value (the key must exist; value must be empty)
  bool ignore_lease = false;  ///< keep the current lease (the key must exist; lease must be 0)
  friend bool operator==(const PutRequest&, const PutRequest&) = default;
};

/// The answer to a PutRequest.
struct PutResponse {
  ResponseHeader header{};
  std::optional<KeyValue> prev_kv{};
  friend bool operator==(const PutResponse&, const PutResponse&) = default;
};

/// Deletes the keys in [key, range_end) (same conventions as RangeRequest).
struct DeleteRangeRequest {
  std::string key{};
  std::string range_end{};
  bool prev_kv = false;  ///< return the deleted kvs
  friend bool operator==(const DeleteRangeRequest&, const DeleteRangeRequest&) = default;
};

/// The answer to a DeleteRangeRequest.
struct DeleteRangeResponse {
  ResponseHeader header{};
  std::int64_t deleted = 0;
  std::vector<KeyValue> prev_kvs{};
  friend bool operator==(const DeleteRangeResponse&, const DeleteRangeResponse&) = default;
};

/// Compare.CompareResult: how the key's target relates to the operand.
enum class CompareResult : std::uint8_t { equal = 0, greater = 1, less = 2, not_equal = 3 };
/// Compare.CompareTarget: which field of the key is compared.
enum class CompareTarget : std::uint8_t { version = 0, create = 1, mod = 2, value = 3, lease = 4 };

/// One guard of a txn: `target(key) result operand`, for every key in [key, range_end) if
/// range_end is set. As in etcd: a missing key has version = create = mod = lease = 0, and a
/// VALUE compare against a missing key is always false.
struct Compare {
  CompareResult result = CompareResult::equal;
  CompareTarget target = CompareTarget::version;
  std::string key{};
  std::string range_end{};
  // etcd's oneof target_union: only the field selected by `target` is meaningful (and encoded).
  std::int64_t version = 0;
  Revision create_revision = 0;
  Revision mod_revision = 0;
  std::string value{};
  LeaseId lease = no_lease;
  friend bool operator==(const Compare&, const Compare&) = default;
};

struct TxnRequest;
struct TxnResponse;

/// One operation of a txn branch (etcd's RequestOp oneof).
struct RequestOp {
  std::variant<RangeRequest, PutRequest, DeleteRangeRequest, box<TxnRequest>> request;
  friend bool operator==(const RequestOp&, const RequestOp&) = default;
};

/// The answer to one RequestOp (etcd's ResponseOp oneof), same alternative order.
struct ResponseOp {
  std::variant<RangeResponse, PutResponse, DeleteRangeResponse, box<TxnResponse>> response;
  friend bool operator==(const ResponseOp&, const ResponseOp&) = default;
};

/// If every compare holds, runs `success`, else `failure`, atomically: all the writes share one
/// revision, and reads in the txn see the txn's earlier writes.
struct TxnRequest {
  std::vector<Compare> compare{};
  std::vector<RequestOp> success{};
  std::vector<RequestOp> failure{};
  friend bool operator==(const TxnRequest&, const TxnRequest&) = default;
};

/// The answer to a TxnRequest: which branch ran and one response per op of it.
struct TxnResponse {
  ResponseHeader header{};
  bool succeeded = false;
  std::vector<ResponseOp> responses{};
  friend bool operator==(const TxnResponse&, const TxnResponse&) = default;
};

/// Drops the history below `revision` (etcd's CompactionRequest).
struct CompactionRequest {
  Revision revision = 0;
  bool physical = false;  ///< accepted for compatibility: compaction is always done on apply
  friend bool operator==(const CompactionRequest&, const CompactionRequest&) = default;
};

/// The answer to a CompactionRequest.
struct CompactionResponse {
  ResponseHeader header{};
  friend bool operator==(const CompactionResponse&, const CompactionResponse&) = default;
};

/// Grants a lease of `ttl` seconds. id 0 = let the state machine choose (deterministically).
struct LeaseGrantRequest {
  std::int64_t ttl = 0;
  LeaseId id = no_lease;
  friend bool operator==(const LeaseGrantRequest&, const LeaseGrantRequest&) = default;
};

/// The answer to a LeaseGrantRequest: the lease's id and (possibly raised) ttl.
struct LeaseGrantResponse {
  ResponseHeader header{};
  LeaseId id = no_lease;
  std::int64_t ttl = 0;
  std::string error{};  ///< etcd's field; always empty (failures are errors)
  friend bool operator==(const LeaseGrantResponse&, const LeaseGrantResponse&) = default;
};

/// Revokes a lease: deletes it and every key attached to it, in one revision.
struct LeaseRevokeRequest {
  LeaseId id = no_lease;
  friend bool operator==(const LeaseRevokeRequest&, const LeaseRevokeRequest&) = default;
};

/// The answer to a LeaseRevokeRequest.
struct LeaseRevokeResponse {
  ResponseHeader header{};
  friend bool operator==(const LeaseRevokeResponse&, const LeaseRevokeResponse&) = default;
};

/// Asks for a lease's TTLs (and its keys).
struct LeaseTimeToLiveRequest {
  LeaseId id = no_lease;
  bool keys = false;
  friend bool operator==(const LeaseTimeToLiveRequest&, const LeaseTimeToLiveRequest&) = default;
};

/// The answer to a LeaseTimeToLiveRequest. As in etcd, a missing lease answers ttl = -1 (not an
/// error). The state machine reports ttl = granted_ttl; the leader's Lessor knows the remaining
/// time and the server overrides `ttl` with Lessor::remaining_ttl.
struct LeaseTimeToLiveResponse {
  ResponseHeader header{};
  LeaseId id = no_lease;
  std::int64_t ttl = 0;
  std::int64_t granted_ttl = 0;
  std::vector<std::string> keys{};  ///< sorted; filled only if requested
  friend bool operator==(const LeaseTimeToLiveResponse&, const LeaseTimeToLiveResponse&) = default;
};

/// One lease of a LeaseLeasesResponse.
struct LeaseStatus {
  LeaseId id = no_lease;
  friend bool operator==(const LeaseStatus&, const LeaseStatus&) = default;
};

/// Every lease, by ascending id.
struct LeaseLeasesResponse {
  ResponseHeader header{};
  std::vector<LeaseStatus> leases{};
  friend bool operator==(const LeaseLeasesResponse&, const LeaseLeasesResponse&) = default;
};

/// A request that goes through the log. Ranges may too (a read ordered by the log), although
/// servers normally answer them with ReadIndex or lease reads.
using Command = std::variant<RangeRequest, PutRequest, DeleteRangeRequest, TxnRequest,
                             CompactionRequest, LeaseGrantRequest, LeaseRevokeRequest>;

/// What applying one log entry produced: monostate for a noop or config-change entry, else the
/// response of the command's type.
using Response =
    std::variant<std::monostate, RangeResponse, PutResponse, DeleteRangeResponse, TxnResponse,
                 CompactionResponse, LeaseGrantResponse, LeaseRevokeResponse>;

/// Says whether a lease has expired (the leader's Lessor knows; see Lessor::is_expired). An
/// empty function means "no lease has expired".
using ExpiredPredicate = std::function<bool(LeaseId)>;

/// Whether a txn only reads (no put or delete in any branch, at any depth).
inline bool is_read_only(const TxnRequest& txn) {
  for (const auto* branch : {&txn.success, &txn.failure}) {
    for (const RequestOp& op : *branch) {
      if (std::holds_alternative<PutRequest>(op.request) ||
          std::holds_alternative<DeleteRangeRequest>(op.request)) {
        return false;
      }
      if (const auto* nested = std::get_if<box<TxnRequest>>(&op.request)) {
        if (!is_read_only(**nested)) return false;
      }
    }
  }
  return true;
}

}  // namespace dengine::kv
