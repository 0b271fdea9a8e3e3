#pragma once
/// The KV layer's node-local settings, in one light header (an engine's configuration names
/// them without compiling the state machine): the watch hub's bounds, the state machine's
/// options, the lessor's timing and the request limits checked before proposing. None of them
/// affects replicated state.

#include <chrono>
#include <cstddef>

#include "dengine/statemachines/kv/store_limits.hpp"

namespace dengine::kv {

/// WatchHub limits.
struct WatchHubOptions {
  std::size_t max_history_events = 10000;
  std::size_t max_history_bytes = 64U << 20;
  /// Per watcher. Keep >= the history limits so that a watch from the oldest revision the
  /// history holds always fits its queue.
  std::size_t max_pending_events = 10000;
  std::size_t max_pending_bytes = 64U << 20;
  std::size_t max_watchers = 100000;
};

/// KvStateMachine options (node-local: they do not affect replicated state).
struct KvOptions {
  WatchHubOptions watch;
  /// Snapshot chunks handed to the sink are about this big.
  std::size_t snapshot_chunk_bytes = 1U << 20;
  /// restore() writes the KvStore in batches of about this many bytes.
  std::size_t restore_batch_bytes = 8U << 20;
};

/// Lessor tuning, with etcd's defaults.
struct LessorOptions {
  /// Shortest lease: grants and refreshes use max(ttl, min_ttl). etcd derives it from the
  /// election timeout (ceil(1.5 * election timeout)), 2 s with its default timing.
  std::chrono::seconds min_ttl{2};
  /// Added to every lease's TTL on promote(), so that leases do not expire just because the
  /// leadership changed hands (etcd passes its election timeout).
  std::chrono::milliseconds promote_extend{1000};
  /// A lease returned by expired() is returned again after this long if its revoke has not been
  /// applied by then (the proposal may have been lost); etcd uses 3 s.
  std::chrono::milliseconds revoke_retry{3000};
};

/// Size limits a server enforces before proposing (etcd's defaults).
struct RequestLimits {
  /// Largest encoded request (etcd's --max-request-bytes default: 1.5 MiB).
  std::size_t max_request_bytes = 1572864;
  /// Most operations in one txn level: compares, success ops or failure ops (etcd's --max-txn-ops).
  std::size_t max_txn_ops = 128;
  /// What the KvStore under the state machine can hold: every key and value a request would
  /// write is checked against it (store_limits.hpp), so a write the store would refuse never
  /// reaches the log. EmbeddedEngine sets it from its backend's traits; default: no limit.
  StoreLimits store{};
};

}  // namespace dengine::kv
