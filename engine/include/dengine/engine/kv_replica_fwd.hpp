#pragma once
/// KvReplica declared (defined in kv_replica.hpp), and which runtime a replica type runs on:
/// what a client or an engine's declaration names without compiling the replica.

namespace dengine::engine {

/// One KV replica over storage S, KV store Store, transport T, runtime tag R and snapshot store
/// SS (kv_replica.hpp, where the parameters' concepts are checked and R and SS get defaults).
template <class S, class Store, class T, class R, class SS>
class KvReplica;

/// The runtime tag of replica type `Replica` (a KvReplica), read off its template arguments so
/// that the replica's definition is not needed.
template <class Replica>
struct replica_runtime;
template <class S, class Store, class T, class R, class SS>
struct replica_runtime<KvReplica<S, Store, T, R, SS>> {
  using type = R;
};

/// True when replica type `Replica` runs on a deterministic runtime (no threads: blocking client
/// calls are unavailable).
template <class Replica>
inline constexpr bool replica_is_deterministic = replica_runtime<Replica>::type::deterministic;

}  // namespace dengine::engine
