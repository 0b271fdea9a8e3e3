#pragma once
/// dengine::rawfile::Backend — the traits an EmbeddedEngine is instantiated with to run on the
/// raw-file backend (the Backend concept, include/dengine/engine/backend.hpp): its StorageEngine
/// and KvStore types, what they can store, its tuning and how both open from a directory.

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <string_view>

#include "dengine/backends/rawfile/options.hpp"
#include "dengine/backends/rawfile/segment.hpp"
#include "dengine/core/config.hpp"
#include "dengine/core/error.hpp"
#include "dengine/storage/backend_traits.hpp"

namespace dengine::rawfile {

// The store classes are only named here (their definitions are in engine.hpp and kv_store.hpp,
// which <dengine/backends/rawfile.hpp> includes): the traits are all an engine's declaration
// needs, so that a translation unit using a precompiled engine does not compile the backend.
class Engine;
class KvStore;

/// The raw-file backend's settings an EmbeddedEngine passes on (EngineConfig::backend_tuning);
/// the defaults are Options' and KvOptions' own.
struct Tuning {
  /// Target size of a log segment file (Options::segment_bytes; at least 4096).
  std::size_t segment_bytes = Options{}.segment_bytes;
  /// Reserve each new segment's size on disk up front (Options::preallocate).
  bool preallocate = Options{}.preallocate;
  /// MemFirst: the background fdatasync runs at most this long after the first unsynced sync()
  /// (Options::mem_first_sync_interval)...
  std::chrono::milliseconds mem_first_sync_interval = Options{}.mem_first_sync_interval;
  /// ...or once this many bytes wait (Options::mem_first_sync_bytes).
  std::size_t mem_first_sync_bytes = Options{}.mem_first_sync_bytes;
  /// Checkpoint the KV map to kv.snapshot after this many key+value bytes were written since the
  /// last one (KvOptions::checkpoint_bytes; 0 = only at close).
  std::size_t checkpoint_bytes = KvOptions{}.checkpoint_bytes;
  /// Where recovery and maintenance notes of both go (null: stderr).
  log_function log{};
};

/// What is particular to the raw-file backend's traits (storage::BackendTraits adds the rest).
struct BackendSpec : storage::PersistentSpec<Engine, KvStore, Tuning> {
  static constexpr std::string_view name = "rawfile";
  /// kv.snapshot stores key and value lengths as u32; the map itself is in memory.
  static constexpr std::size_t max_key_bytes = max_field_bytes;
  static constexpr std::size_t max_value_bytes = max_field_bytes;
  /// A log record's payload is at most 1 GiB, of which 17 bytes are the entry's index, term and
  /// type (segment.hpp).
  static constexpr std::size_t max_entry_bytes =
      segment::max_payload_bytes - segment::entry_fixed_bytes;

  /// The segmented log's options; MemFirst syncs in the background.
  static Options storage_options(PersistenceMode mode, const Tuning& t) {
    return {.mode = mode,
            .segment_bytes = t.segment_bytes,
            .preallocate = t.preallocate,
            .mem_first_sync_interval = t.mem_first_sync_interval,
            .mem_first_sync_bytes = t.mem_first_sync_bytes,
            .log = t.log};
  }
  /// The checkpointed KV map's options. Its durability comes from checkpoints plus replay of
  /// the Raft log, so `mode` does not change it.
  static KvOptions kv_options(PersistenceMode /*mode*/, const Tuning& t) {
    return {.checkpoint_bytes = t.checkpoint_bytes, .log = t.log};
  }
};

/// Traits of the raw-file backend, for EmbeddedEngine<dengine::rawfile::Backend>.
struct Backend : storage::BackendTraits<BackendSpec> {};

}  // namespace dengine::rawfile
