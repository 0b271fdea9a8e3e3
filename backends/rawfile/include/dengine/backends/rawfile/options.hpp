#pragma once
/// Options of the raw-file Engine and KvStore.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>

#include <fmt/core.h>

#include "dengine/core/config.hpp"

namespace dengine::rawfile {

/// Receives one human-readable line per notable recovery or maintenance event (a torn tail
/// truncated, a leftover file removed). Null = print to stderr.
using log_function = std::function<void(std::string_view message)>;

/// Options of rawfile::Engine.
struct Options {
  /// disk_first: sync() returns after fdatasync. mem_first: sync() returns at once and a
  /// background thread fdatasyncs (see mem_first_sync_interval / mem_first_sync_bytes).
  PersistenceMode mode = PersistenceMode::disk_first;
  /// Target size of a log segment file. A single record larger than this gets a segment of its
  /// own (which then grows past it). Minimum 4096. The log needs this much free disk for every
  /// new segment when `preallocate` is on (docs/backends.md, "Disk space").
  std::size_t segment_bytes = std::size_t{64} << 20;
  /// Reserve each new segment's `segment_bytes` on disk when it is created (posix_fallocate):
  /// appends then never allocate, and a full disk shows up when a segment is created rather than
  /// in the middle of an append. Off: segments grow as records are written (less disk up front;
  /// each append that grows the file also makes fdatasync write the file's size).
  bool preallocate = true;
  /// mem_first: the background fdatasync runs at most this long after the first unsynced sync()...
  std::chrono::milliseconds mem_first_sync_interval{10};
  /// ...or as soon as this many bytes are waiting, whichever comes first.
  std::size_t mem_first_sync_bytes = std::size_t{4} << 20;
  /// Where recovery and maintenance events go (null: stderr).
  log_function log;
};

/// Largest key or value the KvStore holds (its snapshot file stores their lengths as u32).
inline constexpr std::size_t max_field_bytes = 0xFFFFFFFFU;

/// Options of rawfile::KvStore.
struct KvOptions {
  /// Write a checkpoint (the whole map to the snapshot file) once this many key+value bytes have
  /// been written since the last one; 0 = only on checkpoint() and on close.
  std::size_t checkpoint_bytes = std::size_t{64} << 20;
  /// Write a checkpoint in the destructor when anything changed since the last one.
  bool checkpoint_on_close = true;
  /// Where notable events go (null: stderr).
  log_function log;
};

namespace detail {
/// Sends `message` to `log`, or to stderr when no callback was set.
inline void emit(const log_function& log, std::string_view message) {
  if (log) {
    log(message);
  } else {
    fmt::print(stderr, "dengine rawfile: {}\n", message);
  }
}
}  // namespace detail

}  // namespace dengine::rawfile
