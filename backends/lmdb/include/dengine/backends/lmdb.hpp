#pragma once
/// The LMDB backend: dengine::lmdb::Engine (a StorageEngine) and dengine::lmdb::KvStore (a
/// KvStore), both over one LMDB environment per data dir (data.mdb + lock.mdb), shared within
/// the process when both are opened on the same dir. Every record carries a CRC32C checked on
/// read; dengine::lmdb::verify() walks a whole data dir. Header-only over liblmdb.

#include "dengine/backends/lmdb/backend.hpp"  // IWYU pragma: export
#include "dengine/backends/lmdb/engine.hpp"
#include "dengine/backends/lmdb/environment.hpp"
#include "dengine/backends/lmdb/kv_store.hpp"
#include "dengine/backends/lmdb/options.hpp"
#include "dengine/backends/lmdb/report.hpp"
#include "dengine/backends/lmdb/verify.hpp"
