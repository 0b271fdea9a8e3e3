#pragma once
/// What the KV simulation records while it runs — client operations and their outcomes, leases,
/// watch segments, leader changes, keep-alives and lease revokes as they reach the logs — and
/// what the KV checks (test/sim/checks/kv_*.hpp) read after the run. Plain data: no replica, no
/// executor, so each check is a function of these records and the replicas' final histories.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dengine/core/types.hpp"
#include "dengine/node/config.hpp"
#include "dengine/sim/clock.hpp"
#include "dengine/statemachines/kv/types.hpp"
#include "dengine/statemachines/kv/watch_hub.hpp"

namespace dengine::sim::kvsim {

/// A lease revoke entry as it reached some node's log (the checks find out which leader's
/// lessor decided it, and by when).
struct RevokeAppend {
  NodeId node = no_node;
  LogIndex index = 0;
  Term term = 0;
  kv::LeaseId lease = kv::no_lease;
  sim_time at = 0;
  /// The appending node believed it led in the entry's term (it proposed the entry).
  bool by_leader = false;
};

/// A leader-change notification as a replica's applier ran it (in order with the lessor's
/// promote/demote, which run just before it).
struct RoleChange {
  sim_time at = 0;
  NodeId node = no_node;
  Term term = 0;
  bool leader = false;
};

/// A successful keep-alive.
struct KeepAlive {
  kv::LeaseId lease = kv::no_lease;
  sim_time at = 0;
  NodeId node = no_node;
  /// The term in which the node's lessor became primary (its last leader notification).
  Term lessor_term = 0;
};

/// What a client asked for.
enum class OpKind : std::uint8_t { put, cas, read, del, lease_grant, lease_put, lease_revoke };

[[nodiscard]] inline const char* to_string(OpKind k) noexcept {
  switch (k) {
    case OpKind::put: return "put";
    case OpKind::cas: return "cas";
    case OpKind::read: return "read";
    case OpKind::del: return "delete";
    case OpKind::lease_grant: return "lease-grant";
    case OpKind::lease_put: return "lease-put";
    case OpKind::lease_revoke: return "lease-revoke";
  }
  return "?";
}

/// One client operation and its outcome.
struct OpRecord {
  enum class Outcome : std::uint8_t {
    pending,
    ok,
    failed,   ///< definitely had no effect
    unknown,  ///< may or may not have taken effect
  };
  std::uint64_t id = 0;
  std::uint64_t client = 0;
  OpKind kind = OpKind::put;
  NodeId node = no_node;
  std::string key;
  std::string value;                    ///< put / cas: the value written
  std::optional<std::string> expected;  ///< cas: the value required (nullopt: key absent)
  kv::LeaseId lease = kv::no_lease;
  std::int64_t ttl = 0;  ///< grant: the TTL asked for, then the TTL granted
  sim_time call = 0;
  sim_time ret = 0;
  Outcome outcome = Outcome::pending;
  std::string read_value;  ///< read: "" when the key is absent
  node::ReadConsistency consistency = node::ReadConsistency::linearizable;  ///< read
  bool cas_ok = false;        ///< cas: whether it swapped
  kv::Revision revision = 0;  ///< the response header's revision
  std::int64_t deleted = 0;   ///< delete: keys deleted
  std::string error;          ///< the error text, when not ok
};

/// What a lease is for, chosen at grant time.
enum class LeasePlan : std::uint8_t {
  lapse,   ///< never kept alive: must expire
  keep,    ///< kept alive until `keep_until`, then left to expire
  revoke,  ///< revoked by the client (never kept alive)
};

/// A lease granted to a client (its grant succeeded), and what the client did with it.
struct LeaseRecord {
  kv::LeaseId id = kv::no_lease;
  std::uint64_t client = 0;
  std::int64_t ttl = 0;  ///< granted TTL, seconds
  LeasePlan plan = LeasePlan::lapse;
  sim_time granted_at = 0;
  sim_time keep_until = 0;        ///< plan keep: keep-alives stop here (or at the heal)
  std::vector<std::string> keys;  ///< keys put with it (acknowledged or unknown)
  bool revoke_sent = false;
  bool gone = false;  ///< a keep-alive answered not_found
};

/// One stretch of one watcher: from its creation to its cancellation, its replica's crash or
/// the end of the run.
struct WatchSegment {
  NodeId node = no_node;
  std::uint64_t incarnation = 0;
  kv::WatchId watch_id = -1;
  kv::Revision requested = 0;  ///< start revision asked for (0: the next one)
  kv::Revision start = 0;      ///< first revision it must deliver (known once created)
  bool created = false;
  bool canceled = false;
  kv::Revision compact_revision = 0;
  std::string cancel_reason;
  /// Not canceled: every event up to here must have been delivered (the replica's revision at
  /// its crash, or the final revision).
  std::optional<kv::Revision> end;
  std::vector<kv::Event> events;
  std::vector<std::string> problems;  ///< protocol problems seen while draining
};

}  // namespace dengine::sim::kvsim
