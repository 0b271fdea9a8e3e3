#pragma once
/// The contracts users implement: StorageEngine (the Raft log and hard state), StateMachine (what
/// the log drives), KvStore (the ordered byte map under statemachines/kv) and SnapshotStore
/// (where a node keeps its latest snapshot image). Satisfy a concept
/// with any type: no base class, no registration, no virtual call on the hot path.

#include <concepts>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/storage/snapshot_io.hpp"
#include "dengine/storage/write_batch.hpp"

namespace dengine {

/// What a StorageEngine hands back at start: everything the Raft core needs to resume.
struct RecoveredState {
  HardState hard_state;
  /// The compaction point: entries up to snapshot.index are gone from the log (0 = none).
  SnapshotMeta snapshot;
};

/// **StorageEngine** — the durable Raft log and hard state.
///
/// Log shape: entries occupy the contiguous range [first_index(), last_index()]. When the log is
/// empty, last_index() == first_index() - 1 == the snapshot index (0 on a fresh engine).
///
/// - `append(batch)`: batch is non-empty and contiguous, batch.front().index is in
///   [first_index(), last_index() + 1]; any existing entries at or after batch.front().index are
///   replaced (a conflicting suffix is truncated). Not yet durable.
/// - `sync()`: makes every appended entry, truncation and compaction durable. After it returns
///   success, a crash loses none of them. (Group commit: callers append many batches, sync once.)
/// - `entries(lo, hi, max_bytes)`: entries in [lo, hi), at least one if lo < hi, stopping before
/// the
///   total exceeds max_bytes. lo < first_index() → `compacted`; hi > last_index() + 1 →
///   `unavailable`.
/// - `term(i)`: the term at i, for i in [snapshot index, last_index()]; below → `compacted`;
///   above → `unavailable`.
/// - `compact(meta)`: drop entries up to meta.index (which must be ≤ last_index() and have term
///   meta.term) and record meta as the new compaction point, durably and atomically.
/// - `reset(meta)`: discard the whole log and start it after meta (an installed snapshot).
/// - `save_hard_state(hs)`: atomic (never half-written) and durable on return. The vote must be
///   durable before a vote response leaves the node, which this guarantees.
/// - `load()`: what was durable at the last crash or stop. Corrupt data → `storage_corrupt` naming
///   file and offset; never a silent repair that loses synced entries.
template <class S>
concept StorageEngine = requires(S& s, const S& cs, std::span<const Entry> batch, LogIndex index,
                                 std::size_t max_bytes, const HardState& hard_state,
                                 const SnapshotMeta& meta) {
  { s.append(batch) } -> std::same_as<result<void>>;
  { s.sync() } -> std::same_as<result<void>>;
  { cs.entries(index, index, max_bytes) } -> std::same_as<result<std::vector<Entry>>>;
  { cs.term(index) } -> std::same_as<result<Term>>;
  { cs.first_index() } -> std::same_as<LogIndex>;
  { cs.last_index() } -> std::same_as<LogIndex>;
  { s.compact(meta) } -> std::same_as<result<void>>;
  { s.reset(meta) } -> std::same_as<result<void>>;
  { s.save_hard_state(hard_state) } -> std::same_as<result<void>>;
  { s.load() } -> std::same_as<result<RecoveredState>>;
};

/// **StateMachine** — what the committed log drives.
///
/// - `apply(batch, responses)`: applies committed entries in log order (every type: normal,
///   noop, config_change — the latter two usually as no-ops) and appends exactly one response per
///   entry. Must be deterministic: every replica returns the same responses for the same log.
///   The applied index is persisted atomically with the data it produced, so a restart neither
///   re-applies nor skips an entry. A failure (e.g. disk full) stops the node; nothing is applied
///   partially.
/// - `applied_index()`: the index of the last applied entry (0 on a fresh state machine).
/// - `snapshot(sink)`: writes a consistent point-in-time image at applied_index() to sink and
///   returns that index.
/// - `restore(source)`: replaces the whole state with the image; returns its applied index.
template <class M>
concept StateMachine = requires(M& m, const M& cm, std::span<const Entry> batch,
                                std::vector<typename M::response_type>& responses,
                                SnapshotSink& sink, SnapshotSource& source) {
  typename M::response_type;
  { m.apply(batch, responses) } -> std::same_as<result<void>>;
  { cm.applied_index() } -> std::same_as<LogIndex>;
  { cm.snapshot(sink) } -> std::same_as<result<LogIndex>>;
  { m.restore(source) } -> std::same_as<result<LogIndex>>;
};

/// Visitor for KvStore::scan: return false to stop.
using KvVisitor = std::function<bool(std::string_view key, std::string_view value)>;

/// **KvStore** — the ordered byte map under the KV state machine.
///
/// - `get(key)`: the value, or nullopt.
/// - `scan(lo, hi, visit)`: keys in [lo, hi) in ascending byte order (hi empty = to the end),
///   stopping when visit returns false.
/// - `write(batch, applied_index)`: applies every write of batch and records applied_index, as
///   one atomic unit (durable per the backend's persistence mode).
/// - `applied_index()`: the index recorded by the last write (0 on a fresh store).
/// - `clear(applied_index)`: erases every key and records applied_index (before a restore).
///
/// A scan's visitor may call get() and scan() on the store it scans (the KV state machine looks
/// up related keys), but must not write it.
template <class S>
concept KvStore = requires(S& s, const S& cs, std::string_view key, const WriteBatch& batch,
                           LogIndex index, const KvVisitor& visit) {
  { cs.get(key) } -> std::same_as<result<std::optional<std::string>>>;
  { cs.scan(key, key, visit) } -> std::same_as<result<void>>;
  { s.write(batch, index) } -> std::same_as<result<void>>;
  { cs.applied_index() } -> std::same_as<LogIndex>;
  { s.clear(index) } -> std::same_as<result<void>>;
};

/// **SnapshotStore** — where a node keeps the latest snapshot image (meta + state machine bytes);
/// the StorageEngine keeps only the log and its compaction point. Models:
/// node::MemorySnapshotStore and node::FileSnapshotStore (node/snapshot_store.hpp). node::Node,
/// node::LogWriter, node::recover and engine::KvReplica take the store's type as a template
/// parameter: this concept is the whole contract.
///
/// - `save(snapshot)`: replaces the stored image, atomically and durably: once it returns success
///   a crash leaves `snapshot`; a crash during the call leaves the previous image or the new one,
///   never a mix. A null snapshot → `invalid_argument`.
/// - `load()`: the stored image, or nullptr when none was saved. Corrupt data →
///   `storage_corrupt` naming where; an image of an incompatible format → `incompatible_version`.
/// - `in_memory()`: true when save() never touches a disk (the threaded runtime may then run the
///   log writer's work on the event loop). Both models make it `static constexpr`; a store
///   that decides at run time may make it an ordinary const member.
template <class S>
concept SnapshotStore = requires(S& s, const S& cs, const std::shared_ptr<const Snapshot>& image) {
  { s.save(image) } -> std::same_as<result<void>>;
  { s.load() } -> std::same_as<result<std::shared_ptr<const Snapshot>>>;
  { cs.in_memory() } -> std::convertible_to<bool>;
};

}  // namespace dengine
