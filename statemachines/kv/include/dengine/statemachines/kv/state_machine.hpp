#pragma once
/// KvStateMachine: the etcd v3 data model as a dengine::StateMachine over any dengine::KvStore.
///
/// - apply(): decodes each normal entry (codec.hpp) and runs it (KvCore); noop and
///   config-change entries, and normal entries with no data, answer an empty Response. A whole
///   batch is written through one KvStore write together with its applied index, so it is atomic
///   and a restart neither re-applies nor skips an entry. A request error (or an entry that does
///   not decode) is that entry's response — the same on every replica — and does not stop the node;
///   a storage error fails apply() and leaves the state as it was before the batch.
/// - An entry the store *refuses* (see is_store_refusal: its write is invalid for the store, e.g.
///   a key longer than the store holds — validation before proposing should have caught it, so
///   this means replicas with different limits or a bug) must not stop the node: every restart
///   would replay it and stop again, on every replica alike (a poison pill). Such a refusal is
///   deterministic — the same entry on the same backend is refused the same way whatever else is
///   in the batch — so apply() redoes the batch one entry per store write, and the entry whose own
///   write is refused gets the refusal as its response, writes nothing, and still advances the
///   applied index. Every replica on that backend records the same response for it, whatever
///   its batching. Any other store failure (I/O error, full disk, corruption) depends on the
///   machine, not the entry: it fails apply() and stops the node, and a restart retries it.
/// - After a batch is durable its events go to the WatchHub and its lease grants/revokes to
///   the Lessor, if one is attached.
/// - snapshot()/restore(): the whole KvStore image plus applied index (snapshot_format.hpp).
/// - Restart: open() over a KvStore that holds data recovers revision, compacted revision,
///   leases and applied index from it.
///
/// Threads: apply() and restore() come from one thread (the apply thread). Reads (range,
/// read_txn, lease queries, snapshot) may come from any thread: a shared mutex lets them run
/// together, between batches. The KvStore must allow concurrent const reads.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/statemachines/kv/codec.hpp"
#include "dengine/statemachines/kv/keyspace.hpp"
#include "dengine/statemachines/kv/kv_core.hpp"
#include "dengine/statemachines/kv/lessor.hpp"
#include "dengine/statemachines/kv/options.hpp"
#include "dengine/statemachines/kv/snapshot_format.hpp"
#include "dengine/statemachines/kv/watch_hub.hpp"
#include "dengine/storage/concepts.hpp"
#include "dengine/storage/snapshot_io.hpp"

namespace dengine::kv {

/// The KV state machine.
template <KvStore Store>
class KvStateMachine {
 public:
  /// One result per applied entry: a Response, or the request's error (etcd's text as detail).
  using response_type = result<Response>;

  /// Opens the state machine over `store` (which must outlive it), recovering whatever state
  /// the store holds. A store left mid-restore by a crash is cleared (applied index 0), since
  /// its content cannot be trusted; the runtime then installs the snapshot again.
  static result<std::unique_ptr<KvStateMachine>> open(Store& store, KvOptions options = {}) {
    std::unique_ptr<KvStateMachine> sm(new KvStateMachine(store, options));
    DENGINE_TRY(marker, store.get(keyspace::meta_restoring));
    if (marker) {
      DENGINE_TRYV(store.clear(0));
    }
    DENGINE_TRYV(sm->reload());
    return sm;
  }

  KvStateMachine(const KvStateMachine&) = delete;
  KvStateMachine& operator=(const KvStateMachine&) = delete;
  ~KvStateMachine() = default;

  // ---- StateMachine -------------------------------------------------------------------------

  /// Applies committed entries (indexes applied_index() + 1, + 2, ...); appends one response each.
  result<void> apply(std::span<const Entry> batch, std::vector<response_type>& responses) {
    if (batch.empty()) return success();
    Effects effects;
    Revision revision = 0;
    {
      std::unique_lock lock(mutex_);
      LogIndex expect = applied_.load() + 1;
      for (const Entry& e : batch) {
        if (e.index != expect) {
          return error(errc::invalid_argument, "kv apply: entry index " + std::to_string(e.index) +
                                                   " where " + std::to_string(expect) +
                                                   " was expected");
        }
        ++expect;
      }
      const std::size_t first = responses.size();
      responses.reserve(first + batch.size());
      for (const Entry& e : batch) {
        if (auto r = execute_entry(e, responses); !r)
          return fail_batch(responses, first, r.error());
      }
      auto committed = core_.buffer().commit(batch.back().index);
      if (committed) {
        applied_ = batch.back().index;
        effects = core_.take_effects();
      } else if (is_store_refusal(committed.error())) {
        // Back to the state before the batch (nothing of it was written), then entry by entry.
        responses.erase(responses.begin() + static_cast<std::ptrdiff_t>(first), responses.end());
        DENGINE_TRYV(reload_locked());
        DENGINE_TRYV(apply_one_by_one(batch, responses, effects));
      } else {
        return fail_batch(responses, first, committed.error());
      }
      revision = core_.mvcc().current_revision();
    }
    // Outside the lock: watchers' callbacks may read the state machine.
    if (effects.compacted) hub_.on_compact(*effects.compacted);
    hub_.publish(std::move(effects.events), revision);
    if (Lessor* lessor = lessor_.load(); lessor != nullptr && !effects.lease_changes.empty()) {
      lessor->on_applied(effects.lease_changes);
    }
    return success();
  }

  /// The index of the last applied entry (0 on a fresh store).
  [[nodiscard]] LogIndex applied_index() const { return applied_.load(); }

  /// Entries whose write the store refused since open (each answered with the refusal; see the
  /// file comment). Non-zero means a request got past validation that this store cannot hold.
  [[nodiscard]] std::uint64_t refused_entries() const noexcept { return refused_.load(); }

  /// Writes a consistent image of the whole state (at applied_index()) to sink in chunks.
  /// Holds the read lock meanwhile, so apply waits until it is done.
  result<LogIndex> snapshot(SnapshotSink& sink) const {
    std::shared_lock lock(mutex_);
    const LogIndex applied = applied_.load();
    SnapshotWriter writer(sink, options_.snapshot_chunk_bytes);
    DENGINE_TRYV(writer.begin(applied));
    std::optional<error> failure;
    DENGINE_TRYV(store_->scan("", "", [&](std::string_view k, std::string_view v) {
      auto r = writer.record(k, v);
      if (!r) failure = r.error();
      return r.has_value();
    }));
    if (failure) return *failure;
    DENGINE_TRYV(writer.finish());
    return applied;
  }

  /// Replaces the whole state with a snapshot image; returns its applied index. Watches that
  /// had not reached the image's revision are cancelled (WatchHub::reset). If the image is
  /// malformed the store is left empty (applied index 0) and the error names the problem;
  /// a stream whose header is wrong is refused before anything is touched.
  result<LogIndex> restore(SnapshotSource& source) {
    Revision revision = 0;
    Revision compacted = 0;
    LogIndex applied = 0;
    result<void> outcome = success();
    {
      std::unique_lock lock(mutex_);
      SnapshotReader reader(source);
      DENGINE_TRY(image_applied, reader.begin());
      applied = image_applied;
      outcome = restore_records(reader, applied);
      if (!outcome) {
        // Leave a consistent (empty) state behind rather than a partial image.
        (void)store_->clear(0);
      }
      auto loaded = reload_locked();
      if (outcome && !loaded) outcome = loaded;
      revision = core_.mvcc().current_revision();
      compacted = core_.mvcc().compacted_revision();
    }
    hub_.reset(revision, compacted);
    if (!outcome) return outcome.error();
    return applied;
  }

  // ---- reads (any thread) -------------------------------------------------------------------

  /// A range read of the applied state. Pass the leader's Lessor as `is_expired` (e.g.
  /// [&](LeaseId id) { return lessor.is_expired(id, now); }) to hide keys of expired leases.
  result<RangeResponse> range(const RangeRequest& req,
                              const ExpiredPredicate& is_expired = {}) const {
    std::shared_lock lock(mutex_);
    return core_.range(req, is_expired);
  }

  /// A txn that only reads, answered from the applied state without the log.
  result<TxnResponse> read_txn(const TxnRequest& req,
                               const ExpiredPredicate& is_expired = {}) const {
    std::shared_lock lock(mutex_);
    return core_.read_txn(req, is_expired);
  }

  /// A lease's granted TTL and keys (ttl -1 if missing); the leader overrides ttl with
  /// Lessor::remaining_ttl.
  [[nodiscard]] LeaseTimeToLiveResponse lease_time_to_live(
      const LeaseTimeToLiveRequest& req) const {
    std::shared_lock lock(mutex_);
    return core_.lease_time_to_live(req);
  }

  /// Every lease.
  [[nodiscard]] LeaseLeasesResponse lease_leases() const {
    std::shared_lock lock(mutex_);
    return core_.lease_leases();
  }

  /// Every lease's {id, ttl}: what Lessor::promote needs when this node becomes leader.
  [[nodiscard]] std::vector<LeaseInfo> lease_infos() const {
    std::shared_lock lock(mutex_);
    return core_.leases().infos();
  }

  /// The current store revision.
  [[nodiscard]] Revision current_revision() const {
    std::shared_lock lock(mutex_);
    return core_.mvcc().current_revision();
  }

  /// The compacted revision.
  [[nodiscard]] Revision compacted_revision() const {
    std::shared_lock lock(mutex_);
    return core_.mvcc().compacted_revision();
  }

  /// The watch hub this state machine feeds.
  [[nodiscard]] WatchHub& watch_hub() noexcept { return hub_; }

  /// Attaches the Lessor that follows applied grants and revokes (nullptr detaches). The
  /// Lessor must outlive the attachment.
  void set_lessor(Lessor* lessor) noexcept { lessor_.store(lessor); }

 private:
  KvStateMachine(Store& store, const KvOptions& options)
      : options_(options), store_(&store), core_(store), hub_(1, 0, options_.watch) {}

  result<void> reload() {
    std::unique_lock lock(mutex_);
    DENGINE_TRYV(reload_locked());
    hub_.reset(core_.mvcc().current_revision(), core_.mvcc().compacted_revision());
    return success();
  }

  result<void> reload_locked() {
    applied_ = store_->applied_index();
    return core_.load();
  }

  // Runs entry `e` and appends its response (a request error is a response too); a storage
  // failure is returned instead. Its writes stay in the buffer for the caller to commit.
  result<void> execute_entry(const Entry& e, std::vector<response_type>& responses) {
    // An empty normal entry is a leader's no-op in etcd-raft's convention: no command.
    if (e.type != EntryType::normal || e.data.empty()) {
      responses.emplace_back(Response{});
      return success();
    }
    auto cmd = decode_command(e.data);
    if (!cmd) {
      responses.emplace_back(error(cmd.error().code, "kv apply: entry " + std::to_string(e.index) +
                                                         ": " + cmd.error().detail));
      return success();
    }
    auto r = core_.execute(cmd.value(), e.index);
    if (!r && !is_request_error(r.error())) return r.error();
    responses.push_back(std::move(r));
    return success();
  }

  // The batch again, one store write per entry, after its combined write was refused (the state
  // was reloaded to before the batch). An entry whose own write is refused is dropped (reload),
  // answered with the refusal, and its index recorded by an empty write. A storage failure stops
  // here: the entries before it are applied and durable (applied_ says how far), the caller
  // fails and the node stops.
  result<void> apply_one_by_one(std::span<const Entry> batch, std::vector<response_type>& responses,
                                Effects& effects) {
    const std::size_t first = responses.size();
    for (const Entry& e : batch) {
      if (auto r = execute_entry(e, responses); !r) return fail_batch(responses, first, r.error());
      auto committed = core_.buffer().commit(e.index);
      if (!committed && !is_store_refusal(committed.error()))
        return fail_batch(responses, first, committed.error());
      if (!committed) {
        DENGINE_TRYV(reload_locked());  // drops the entry's buffered writes and effects
        WriteBatch nothing;
        DENGINE_TRYV(store_->write(nothing, e.index));
        refused_.fetch_add(1);
        responses.back() =
            error(committed.error().code, "kv apply: entry " + std::to_string(e.index) +
                                              ": the store refused its write, so it changed "
                                              "nothing (" +
                                              committed.error().detail + ")");
      } else {
        Effects more = core_.take_effects();
        effects.events.insert(effects.events.end(), std::make_move_iterator(more.events.begin()),
                              std::make_move_iterator(more.events.end()));
        effects.lease_changes.insert(effects.lease_changes.end(), more.lease_changes.begin(),
                                     more.lease_changes.end());
        if (more.compacted) effects.compacted = more.compacted;
      }
      applied_ = e.index;
    }
    return success();
  }

  // A storage failure mid-batch: drop the batch's writes and responses, and reload the
  // in-memory state from the store (which still holds the state before the batch).
  error fail_batch(std::vector<response_type>& responses, std::size_t first, error e) {
    responses.erase(responses.begin() + static_cast<std::ptrdiff_t>(first), responses.end());
    auto reloaded = reload_locked();
    if (!reloaded) {
      e.detail += "; reloading the kv state also failed: " + reloaded.error().message();
    }
    return e;
  }

  // Streams the image's records into the (cleared) store in batches: a marker key makes a
  // crash mid-way detectable (open() then clears the store); the last batch removes it and
  // records the applied index.
  result<void> restore_records(SnapshotReader& reader, LogIndex applied) {
    DENGINE_TRYV(store_->clear(0));
    WriteBatch batch;
    batch.put(keyspace::meta_restoring, std::string());
    std::size_t bytes = 0;
    std::string key;
    std::string value;
    for (;;) {
      DENGINE_TRY(more, reader.next(key, value));
      if (!more) break;
      if (key == keyspace::meta_restoring) continue;
      bytes += key.size() + value.size();
      batch.put(std::move(key), std::move(value));
      key.clear();
      value.clear();
      if (bytes >= options_.restore_batch_bytes) {
        DENGINE_TRYV(store_->write(batch, 0));
        batch.clear();
        bytes = 0;
      }
    }
    batch.erase(keyspace::meta_restoring);
    return store_->write(batch, applied);
  }

  KvOptions options_;
  Store* store_;
  mutable std::shared_mutex mutex_;
  KvCore<Store> core_;
  std::atomic<LogIndex> applied_{0};
  std::atomic<std::uint64_t> refused_{0};
  WatchHub hub_;
  std::atomic<Lessor*> lessor_{nullptr};
};

}  // namespace dengine::kv
