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
  /// When the data dir has no database file: true creates a new, empty one; false fails with
  /// storage_corrupt naming the file (for a data dir known to hold a store). Either way an
  /// existing file is never re-created, and a missing file whose -wal or -shm remains is
  /// refused.
  bool create_if_missing = true;
  /// What an open checks beyond the header, the schema, every meta row and the log's shape
  /// (every entry's checksummed header, contiguity, row count and digest), which it always
  /// checks: true adds SQLite's integrity_check and a walk of every record (log entry data and
  /// every KV row: checksums, order, count and digest); false leaves those to the reads, which
  /// verify each record they return, and to verify(). The cost grows with the file (see
  /// docs/backends.md).
  bool verify_on_open = true;
};

}  // namespace dengine::sqlite
