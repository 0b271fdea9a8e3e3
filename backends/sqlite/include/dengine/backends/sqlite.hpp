#pragma once
/// The SQLite backend: dengine::sqlite::Engine (a StorageEngine) and dengine::sqlite::KvStore
/// (a KvStore), both in one WAL-mode database file per data dir (dengine.sqlite3), each
/// opener with its own connection; every record carries a CRC32C (sqlite/record.hpp) and
/// dengine::sqlite::verify() checks a whole data dir offline. Header-only over libsqlite3.

#include "dengine/backends/sqlite/backend.hpp"  // IWYU pragma: export
#include "dengine/backends/sqlite/engine.hpp"
#include "dengine/backends/sqlite/kv_store.hpp"
#include "dengine/backends/sqlite/options.hpp"
#include "dengine/backends/sqlite/verify.hpp"
