#pragma once
/// Options of the SQLite backend (dengine::sqlite::Engine and dengine::sqlite::KvStore).

#include <chrono>
#include <cstdint>

#include "dengine/core/config.hpp"

namespace dengine::sqlite {

/// How an SQLite-backed Engine or KvStore opens its data dir.
struct Options {
  /// DiskFirst: `PRAGMA synchronous=FULL` (the WAL is fsynced at every commit, so a commit is
  /// durable on return). MemFirst: `synchronous=NORMAL` (commits are not fsynced; sync()
  /// fsyncs the WAL file). Either way a process crash loses nothing that was committed;
  /// MemFirst may lose unsynced commits on power loss.
  PersistenceMode mode = PersistenceMode::disk_first;
  /// How long a statement waits for a lock held by another connection or process before it
  /// fails with errc::too_busy.
  std::chrono::milliseconds busy_timeout{5000};
  /// Upper bound on the database file size (`PRAGMA max_page_count`); 0 = no bound. A write that
  /// would grow the file past it fails with errc::no_space, as a full disk does.
  std::uint64_t max_db_bytes = 0;
};

}  // namespace dengine::sqlite
