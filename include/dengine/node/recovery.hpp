#pragma once
/// What Node::open does before anything runs: read the storage, the snapshot image and the state
/// machine's applied index, repair what an interrupted compaction or snapshot install left
/// behind, and build the raft::CoreState to start from — so that nothing is applied twice or
/// skipped (docs/node.md, "Restart").
///
/// The rules:
///  - a fresh storage (no hard state, no log, no compaction point) is bootstrapped with the
///    founding membership (NodeConfig::initial_members) as its compaction point at index 0;
///  - the image must reach the storage's compaction point (the log writer saves the image first);
///    an image past it means a compaction or install was interrupted: the storage is compacted
///    (when its log holds the image's last entry) or reset to the image;
///  - a state machine behind the image is restored from it (a memory state machine always is:
///    it starts at 0); one ahead of the log is refused: the log lost entries the state machine
///    had applied (a damaged, truncated, deleted or older log; a state machine from elsewhere;
///    MemFirst after a power loss) — the error names both places and every such cause;
///  - the core starts with applied = the state machine's applied index, so it hands out exactly
///    the committed entries after it.

#include <cstddef>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dengine/core/error.hpp"
#include "dengine/node/config.hpp"
#include "dengine/raft/core.hpp"
#include "dengine/storage/concepts.hpp"
#include "dengine/storage/snapshot_io.hpp"

namespace dengine::node {

/// Where a node's data lives, as the embedding layer knows it (a directory or a file each;
/// empty: not known), so that errors about it name the place. EmbeddedEngine fills it from its
/// data dir.
struct DataLocations {
  std::string log;            ///< the StorageEngine's files (Raft log, hard state)
  std::string state_machine;  ///< the state machine's files
  std::string snapshots;      ///< the snapshot store's files (the snapshot image)
};

/// The starting point Node::open computed.
struct Recovered {
  raft::CoreState state;
  /// The term of the entry at state.applied (the snapshot's term when applied is its index).
  Term applied_term = 0;
  /// Bytes (entry_size) of the log's entries after the compaction point up to state.applied:
  /// applied since the last snapshot, so they count towards the next one.
  std::size_t applied_bytes_since_snapshot = 0;
};

namespace detail {
inline error open_error(error e, const std::string& what) {
  e.detail = "node open: " + what + (e.detail.empty() ? "" : ": " + e.detail);
  return e;
}
/// " (in PLACE)" or nothing when the place is not known.
inline std::string in(const std::string& place) {
  return place.empty() ? std::string() : " (in " + place + ")";
}
}  // namespace detail

/// The refusal of a state machine that applied entries the log no longer holds: starting would
/// apply the log's next entries on top of a state that already has others at those indexes.
inline error ahead_of_the_log(LogIndex applied, LogIndex last, LogIndex compacted,
                              const DataLocations& where) {
  return error(
      errc::storage_corrupt,
      "node open: the state machine" + detail::in(where.state_machine) + " has applied index " +
          std::to_string(applied) + " but the log" + detail::in(where.log) + " ends at index " +
          std::to_string(last) + " (compacted through " + std::to_string(compacted) +
          "): the log lost entries the state machine had applied. Possible causes: the log's "
          "files were damaged or truncated (a damaged tail is cut off when the log is opened), "
          "deleted, or replaced by an older copy; the state machine's files come from another "
          "data dir or a newer copy; MemFirst, where a power loss or OS crash loses the log's "
          "unsynced tail while the state machine's writes survive; a disk that acknowledged "
          "writes it had not made durable. Restore the log and the state machine from one "
          "consistent copy");
}

/// Reads (and, where an interrupted operation left it inconsistent, repairs) `storage`,
/// `snapshots` and `sm` into the state the core starts from.
template <StorageEngine S, StateMachine M, dengine::SnapshotStore SS>
result<Recovered> recover(const NodeConfig& config, S& storage, M& sm, SS& snapshots,
                          const DataLocations& where = {}) {
  auto loaded = storage.load();
  if (!loaded)
    return detail::open_error(loaded.error(), "loading the storage" + detail::in(where.log));
  RecoveredState rec = std::move(loaded).value();
  const bool fresh = rec.hard_state == HardState{} && rec.snapshot.index == 0 &&
                     storage.last_index() == 0 && rec.snapshot.membership.voters.empty() &&
                     rec.snapshot.membership.learners.empty();
  if (fresh) {
    if (config.initial_members.empty())
      return error(errc::invalid_argument,
                   "node open: the storage is fresh and NodeConfig::initial_members is empty: list "
                   "the founding voters (this node included) to start a new cluster");
    SnapshotMeta boot{0, 0, Membership{config.initial_members, {}, config.initial_addresses}};
    boot.membership.normalize();
    if (auto r = storage.reset(boot); !r)
      return detail::open_error(r.error(), "bootstrapping the storage");
    if (auto r = storage.sync(); !r)
      return detail::open_error(r.error(), "bootstrapping the storage");
    rec.snapshot = boot;
  }

  auto image_r = snapshots.load();
  if (!image_r)
    return detail::open_error(image_r.error(),
                              "loading the snapshot image" + detail::in(where.snapshots));
  std::shared_ptr<const Snapshot> image = std::move(image_r).value();
  const LogIndex image_index = image ? image->meta.index : 0;
  if (rec.snapshot.index > image_index)
    return error(
        errc::storage_corrupt,
        "node open: the log" + detail::in(where.log) + " is compacted through index " +
            std::to_string(rec.snapshot.index) + " but the snapshot image" +
            detail::in(where.snapshots) + " " +
            (image ? "is at index " + std::to_string(image_index) : std::string("is missing")) +
            ": the image was deleted, damaged or replaced by an older copy, or the log belongs "
            "to another data dir");

  SnapshotMeta base = rec.snapshot;
  if (image && image_index > rec.snapshot.index) {
    auto t = storage.term(image_index);
    if (t && t.value() == image->meta.term) {
      if (auto r = storage.compact(image->meta); !r)
        return detail::open_error(r.error(), "completing an interrupted compaction");
    } else {
      if (auto r = storage.reset(image->meta); !r)
        return detail::open_error(r.error(), "completing an interrupted snapshot install");
      if (auto r = storage.sync(); !r)
        return detail::open_error(r.error(), "completing an interrupted snapshot install");
    }
    base = image->meta;
  } else if (image && image_index == rec.snapshot.index && image_index > 0) {
    base = image->meta;
  }

  if (sm.applied_index() < base.index) {
    StringSnapshotSource source(image->data);
    auto restored = sm.restore(source);
    if (!restored)
      return detail::open_error(restored.error(), "restoring the state machine" +
                                                      detail::in(where.state_machine) +
                                                      " from the snapshot image");
    if (restored.value() != base.index)
      return error(errc::storage_corrupt, "node open: the snapshot image restores to index " +
                                              std::to_string(restored.value()) +
                                              ", its meta says " + std::to_string(base.index));
  }
  const LogIndex last = storage.last_index();
  const LogIndex applied = sm.applied_index();
  if (applied > last) return ahead_of_the_log(applied, last, base.index, where);

  Recovered out;
  out.state.hard_state = rec.hard_state;
  out.state.snapshot = base;
  out.state.applied = applied;
  if (base.index > 0) out.state.snapshot_data = image;
  if (last > base.index) {
    auto entries =
        storage.entries(base.index + 1, last + 1, std::numeric_limits<std::size_t>::max());
    if (!entries)
      return detail::open_error(entries.error(), "reading the log" + detail::in(where.log));
    out.state.entries = std::move(entries).value();
  }
  for (const Entry& e : out.state.entries) {
    if (e.index > applied) break;
    out.applied_bytes_since_snapshot += entry_size(e);
  }
  if (applied == base.index) {
    out.applied_term = base.term;
  } else {
    auto t = storage.term(applied);
    if (!t) return detail::open_error(t.error(), "reading the term of the applied entry");
    out.applied_term = t.value();
  }
  return out;
}

}  // namespace dengine::node
