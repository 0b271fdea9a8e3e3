#pragma once
/// The raw-file backend: dengine::rawfile::Engine (a StorageEngine on segmented append-only log
/// files, see rawfile/engine.hpp for the format, the recovery rules and the torn-tail definition)
/// and dengine::rawfile::KvStore (an in-memory ordered map checkpointed to a snapshot file, see
/// rawfile/kv_store.hpp for its "checkpoint + log replay" durability model). Needs only POSIX
/// and fmt; CRC32C (dengine/storage/crc32c.hpp) uses SSE4.2 when the CPU has it.
///
///     auto engine = dengine::rawfile::Engine::open("/var/lib/app/raft", {});
///     auto store = dengine::rawfile::KvStore::open("/var/lib/app/kv", {});

#include "dengine/backends/rawfile/backend.hpp"   // IWYU pragma: export
#include "dengine/backends/rawfile/engine.hpp"    // IWYU pragma: export
#include "dengine/backends/rawfile/kv_store.hpp"  // IWYU pragma: export
#include "dengine/backends/rawfile/options.hpp"   // IWYU pragma: export
