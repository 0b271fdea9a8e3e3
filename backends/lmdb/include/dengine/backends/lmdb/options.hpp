#pragma once
/// Options of the LMDB backend (dengine::lmdb::Engine and dengine::lmdb::KvStore).

#include <cstddef>

#include "dengine/core/config.hpp"

namespace dengine::lmdb {

/// How an LMDB-backed Engine or KvStore opens its data dir.
struct Options {
  /// DiskFirst: every commit is fsynced (durable on return). MemFirst: commits skip the fsync
  /// (MDB_NOSYNC | MDB_NOMETASYNC for this handle's transactions); sync() flushes with
  /// mdb_env_sync(force). Either way a process crash loses nothing that was committed; MemFirst
  /// may lose unsynced commits on power loss.
  PersistenceMode mode = PersistenceMode::disk_first;
  /// Map size the environment starts with. The map doubles whenever a write finds it full
  /// (up to max_map_size), so this only bounds the first reservation of address space. An
  /// existing data file larger than this keeps its own size.
  std::size_t initial_map_size = std::size_t{64} << 20;
  /// Upper bound for map growth; a write that needs more fails with errc::no_space.
  std::size_t max_map_size = sizeof(void*) >= 8 ? std::size_t{1} << 40 : std::size_t{1} << 30;
  /// Reader slots in the lock file (concurrent read transactions across processes).
  unsigned max_readers = 126;
  /// When false, a dir without a data.mdb fails to open with not_found, and one whose data.mdb
  /// is empty or was never committed to with storage_corrupt, instead of getting a new, empty
  /// store (nor is a missing dir created): for a caller that knows the store existed.
  bool create_if_missing = true;
  /// Runs the verification walk (verify.hpp: every page and every record) in a child process
  /// before the environment opens. Without it, only the meta pages, the pages past the end of
  /// the file, the format record and the record counts are checked at open: structural damage
  /// inside the file can then crash the process at the first read through it, and a damaged
  /// branch page can hide records from point reads. Costs a read of the whole file at each open
  /// (docs/backends.md has figures).
  bool verify_at_open = true;
};

}  // namespace dengine::lmdb
