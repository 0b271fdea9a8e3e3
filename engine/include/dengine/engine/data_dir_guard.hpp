#pragma once
/// DataDirGuard: what EmbeddedEngine::start does with a data dir's marker (data_dir_marker.hpp),
/// and how the marker's bounds follow the node afterwards.
///
/// At start, with the data dir locked:
///  1. before any store is opened (open_marker): a marker of another backend, another member or
///     another configured cluster is refused; a data dir with files but no marker (another
///     backend's files without one, or a dir made before markers existed) is refused; a fresh,
///     empty data dir gets a marker in state `creating` before anything else is written to it;
///  2. if the marker says `serving`: a store directory that is gone or empty is refused before
///     anything could create a new store in it (check_store_dirs); after the stores are opened,
///     before the node recovers from them (check_stores), a raft store that is empty (it would be
///     bootstrapped: a new, empty member in place of one that may have acknowledged writes) or
///     whose log ends below the marker's bound, and a KV store plus snapshot image behind the
///     applied bound with the log no longer holding the entries in between, and a snapshot image
///     behind the log's compaction point, are refused with storage_corrupt naming the store and the
///     marker. So bootstrap — the only thing recovery writes over an empty store — never runs on a
///     data dir whose marker vouches for data;
///  3. once the node runs (mark_serving): the marker turns `serving` with the bounds recovery
///     established.
///
/// The bounds are lower bounds of what is *durable* here, raised and never lowered (raise):
///  - DiskFirst: the node's applied index. An entry is applied only after it is committed and
///    durable in this node's log (raft/log.hpp), and a committed entry is never truncated, so the
///    log reaches it after any crash; the KV store, the snapshot image and the log together hold
///    the state up to it. At start also: the commit index saved in the raft store.
///  - either mode: the index of the last snapshot image saved (durable by then, and recovery
///    brings the log and the KV store at least that far from it). In MemFirst this is the only
///    source: there an applied entry may be in no file yet, and a power loss may take it.
/// EmbeddedEngine raises them on a timer (EngineConfig::marker_interval; one small file write
/// per interval, and only when the node advanced), and at a clean stop.

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/engine/data_dir_marker.hpp"
#include "dengine/storage/concepts.hpp"

namespace dengine::engine {

/// The marker of one data dir while an engine holds it (see the file comment).
class DataDirGuard {
 public:
  /// Files a data dir may hold besides what a start creates: the engine's lock file.
  static constexpr std::string_view lock_file_name = "LOCK";

  DataDirGuard() = default;

  /// Step 1: reads the marker of `dir` (locked by the caller) or, for an empty dir, writes a
  /// `creating` one. Refuses another backend's, member's or cluster's data dir, and a data dir
  /// holding files but no marker.
  static result<DataDirGuard> open_marker(const std::filesystem::path& dir,
                                          std::string_view backend, NodeId member,
                                          std::uint64_t cluster_id) {
    DataDirGuard g;
    g.dir_ = dir;
    const std::filesystem::path file = dir / DataDirMarker::file_name;
    if (::unlink((dir / DataDirMarker::temp_file_name).c_str()) != 0 && errno != ENOENT)
      return error(errc::io_error, "engine start: cannot remove " +
                                       (dir / DataDirMarker::temp_file_name).string() + ": " +
                                       std::strerror(errno));
    DENGINE_TRY(found, DataDirMarker::read(dir));
    if (!found) {
      DENGINE_TRY(files, files_in(dir));
      if (!files.empty()) {
        std::string list;
        for (std::size_t k = 0; k < files.size() && k < 3; ++k)
          list += (k == 0 ? "" : ", ") + files[k].string();
        if (files.size() > 3) list += ", ... (" + std::to_string(files.size()) + " files)";
        return error(errc::invalid_argument,
                     "engine start: data dir " + dir.string() + " holds files (" + list +
                         ") but no marker " + file.string() +
                         ": it was not created by this engine's backend '" + std::string(backend) +
                         "' (it may hold another backend's data, or come from a dengine build "
                         "before data dir markers). Refusing to start over it: point data_dir "
                         "at the directory this node used, or at an empty one");
      }
      DataDirMarker m;
      m.backend = std::string(backend);
      m.cluster_id = cluster_id;
      m.member_id = member;
      m.state = DataDirMarker::State::creating;
      DENGINE_TRYV(m.write(dir));
      g.marker_ = std::move(m);
      g.fresh_ = true;
      return g;
    }
    DataDirMarker m = std::move(*found);
    if (m.backend != backend)
      return error(errc::invalid_argument,
                   "engine start: data dir " + dir.string() + " was written by the '" + m.backend +
                       "' backend (marker " + file.string() + "), but this engine runs the '" +
                       std::string(backend) + "' backend: start it with the backend that wrote it");
    if (m.member_id != member)
      return error(errc::invalid_argument, "engine start: data dir " + dir.string() +
                                               " belongs to member " + std::to_string(m.member_id) +
                                               " (marker " + file.string() +
                                               "), but node.raft.id is " + std::to_string(member));
    if (cluster_id != 0 && m.cluster_id != 0 && m.cluster_id != cluster_id)
      return error(errc::invalid_argument,
                   "engine start: data dir " + dir.string() + " belongs to cluster " +
                       std::to_string(m.cluster_id) + " (marker " + file.string() +
                       "), but cluster_id is " + std::to_string(cluster_id));
    if (m.cluster_id == 0) m.cluster_id = cluster_id;  // recorded at the next write
    g.fresh_ = m.state == DataDirMarker::State::creating;
    g.marker_ = std::move(m);
    return g;
  }

  /// Step 2a, before a store is opened (opening one creates it when missing): a data dir that
  /// has served must still have its store directories, each holding something.
  [[nodiscard]] result<void> check_store_dirs(
      std::initializer_list<std::filesystem::path> dirs) const {
    if (marker_.state != DataDirMarker::State::serving) return success();
    for (const auto& d : dirs) {
      std::error_code ec;
      if (!std::filesystem::is_directory(d, ec) || std::filesystem::is_empty(d, ec))
        return error(errc::storage_corrupt,
                     "engine start: the store directory " + d.string() +
                         " is missing or empty, but the marker " +
                         (dir_ / DataDirMarker::file_name).string() +
                         " says this node has served (its log reached index " +
                         std::to_string(marker_.log_at_least) +
                         " at least). Refusing to create an empty store in its place");
    }
    return success();
  }

  /// Step 2b (see the file comment): `storage` and `kv` opened from `raft_dir` and `kv_dir`,
  /// `image_index` the index of the snapshot image `image_file` (0 = none).
  template <StorageEngine S, KvStore K>
  result<void> check_stores(S& storage, const K& kv, LogIndex image_index,
                            const std::filesystem::path& image_file,
                            const std::filesystem::path& raft_dir,
                            const std::filesystem::path& kv_dir) const {
    if (marker_.state != DataDirMarker::State::serving) return success();
    const std::string marker_file = (dir_ / DataDirMarker::file_name).string();
    DENGINE_TRY(recovered, storage.load());
    const bool empty = recovered.hard_state == HardState{} && recovered.snapshot.index == 0 &&
                       storage.last_index() == 0 && recovered.snapshot.membership.voters.empty() &&
                       recovered.snapshot.membership.learners.empty();
    if (empty)
      return error(errc::storage_corrupt,
                   "engine start: the raft store " + raft_dir.string() +
                       " is empty, but the marker " + marker_file +
                       " says this node has served (its log reached index " +
                       std::to_string(marker_.log_at_least) +
                       " at least): the log was deleted, emptied or replaced. Refusing to start "
                       "an empty member in its place (it could lose acknowledged writes and "
                       "vote twice); restore the data dir, or remove the member and add it back "
                       "with an empty data dir");
    // The image is saved before the log is compacted to it, so it always reaches the log's
    // compaction point (recovery refuses the same; here the file is named).
    if (recovered.snapshot.index > image_index)
      return error(errc::storage_corrupt,
                   "engine start: the raft store " + raft_dir.string() +
                       " is compacted through index " + std::to_string(recovered.snapshot.index) +
                       " but the snapshot image " + image_file.string() +
                       (image_index == 0 ? std::string(" is missing")
                                         : " is at index " + std::to_string(image_index)) +
                       ": the entries up to the compaction point are gone. Refusing to start");
    // A snapshot image at index I stands for the log up to I (recovery resets the log to it
    // when an install was interrupted).
    const LogIndex log_reach = std::max(storage.last_index(), image_index);
    if (log_reach < marker_.log_at_least)
      return error(errc::storage_corrupt,
                   "engine start: the raft store " + raft_dir.string() + " ends at index " +
                       std::to_string(storage.last_index()) +
                       (image_index > 0 ? " (snapshot image at " + std::to_string(image_index) + ")"
                                        : std::string()) +
                       ", but the marker " + marker_file + " says its log reached index " +
                       std::to_string(marker_.log_at_least) +
                       " at least: committed entries are missing (files deleted, damaged, or "
                       "restored from an older copy). Refusing to start");
    const LogIndex recoverable = std::max(kv.applied_index(), image_index);
    if (recoverable < marker_.applied_at_least && storage.first_index() > recoverable + 1)
      return error(errc::storage_corrupt,
                   "engine start: the KV store " + kv_dir.string() + " is at applied index " +
                       std::to_string(kv.applied_index()) + " and the snapshot image at " +
                       std::to_string(image_index) + ", but the marker " + marker_file +
                       " says index " + std::to_string(marker_.applied_at_least) +
                       " was applied and the log starts at " +
                       std::to_string(storage.first_index()) +
                       ": the entries in between are gone. Refusing to start");
    return success();
  }

  /// Step 3: the node runs; the marker turns `serving` with bounds `applied` and `log`.
  result<void> mark_serving(LogIndex applied, LogIndex log) {
    std::lock_guard lock(mutex_);
    DataDirMarker next = marker_;
    next.state = DataDirMarker::State::serving;
    next.applied_at_least = std::max(next.applied_at_least, applied);
    next.log_at_least = std::max(next.log_at_least, log);
    DENGINE_TRYV(next.write(dir_));
    marker_ = std::move(next);
    fresh_ = false;
    return success();
  }

  /// Raises the bounds to `applied` and `log` (each only upwards); writes the marker only when
  /// one of them moved. Any thread.
  result<void> raise(LogIndex applied, LogIndex log) {
    std::lock_guard lock(mutex_);
    if (applied <= marker_.applied_at_least && log <= marker_.log_at_least) return success();
    DataDirMarker next = marker_;
    next.applied_at_least = std::max(next.applied_at_least, applied);
    next.log_at_least = std::max(next.log_at_least, log);
    DENGINE_TRYV(next.write(dir_));
    marker_ = std::move(next);
    ++writes_;
    return success();
  }

  /// True while the data dir has never served (its marker was missing or `creating` at start,
  /// and mark_serving has not run): a start that fails may remove what it created.
  [[nodiscard]] bool fresh() const noexcept { return fresh_; }
  /// A copy of the marker as last written or read.
  [[nodiscard]] DataDirMarker marker() const {
    std::lock_guard lock(mutex_);
    return marker_;
  }
  /// Number of times raise() rewrote the marker.
  [[nodiscard]] std::uint64_t raise_writes() const {
    std::lock_guard lock(mutex_);
    return writes_;
  }
  /// The data dir.
  [[nodiscard]] const std::filesystem::path& dir() const noexcept { return dir_; }

  /// Removes everything a failed first start created in the data dir (every entry but the lock
  /// file), leaving it as empty as it was. Only for a fresh() data dir.
  result<void> remove_created() {
    if (!fresh_) return error(errc::invalid_argument, "engine: the data dir has served");
    std::error_code ec;
    for (std::filesystem::directory_iterator it(dir_, ec), end; !ec && it != end;
         it.increment(ec)) {
      if (it->path().filename() == lock_file_name) continue;
      std::filesystem::remove_all(it->path(), ec);
      if (ec) break;
    }
    if (ec)
      return error(errc::io_error,
                   "engine start: cannot clean up data dir " + dir_.string() + ": " + ec.message());
    return DataDirMarker::sync_dir(dir_);
  }

  DataDirGuard(DataDirGuard&& o) noexcept
      : dir_(std::move(o.dir_)),
        marker_(std::move(o.marker_)),
        fresh_(o.fresh_),
        writes_(o.writes_) {}
  DataDirGuard& operator=(DataDirGuard&& o) noexcept {
    dir_ = std::move(o.dir_);
    marker_ = std::move(o.marker_);
    fresh_ = o.fresh_;
    writes_ = o.writes_;
    return *this;
  }
  DataDirGuard(const DataDirGuard&) = delete;
  DataDirGuard& operator=(const DataDirGuard&) = delete;
  ~DataDirGuard() = default;

 private:
  // Every file under `dir` (recursively; empty directories do not count) other than the lock
  // file and the marker's temporary file, relative to `dir`.
  static result<std::vector<std::filesystem::path>> files_in(const std::filesystem::path& dir) {
    std::vector<std::filesystem::path> out;
    std::error_code ec;
    for (std::filesystem::recursive_directory_iterator it(dir, ec), end; !ec && it != end;
         it.increment(ec)) {
      if (it->is_directory(ec)) continue;
      const auto rel = std::filesystem::relative(it->path(), dir, ec);
      if (rel == lock_file_name) continue;
      out.push_back(it->path());
    }
    if (ec)
      return error(errc::io_error,
                   "engine start: cannot list data dir " + dir.string() + ": " + ec.message());
    std::sort(out.begin(), out.end());
    return out;
  }

  std::filesystem::path dir_;
  mutable std::mutex mutex_;  // marker_ and writes_ (raise runs on the keeper thread)
  DataDirMarker marker_;
  bool fresh_ = false;
  std::uint64_t writes_ = 0;
};

}  // namespace dengine::engine
