#pragma once
/// The messages the Node's three roles exchange (node.hpp has the picture):
///
///   event loop ──PersistWork──► log writer ──PersistReport──► event loop
///   event loop ──ApplyWork────► applier    ──ApplyReport────► event loop
///
/// Each role processes the items it receives in FIFO order; ordering between the two queues is
/// established only through the reports (e.g. a snapshot is restored into the state machine
/// only after the log writer reported it durable).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/node/completion.hpp"
#include "dengine/node/unique_function.hpp"

namespace dengine::node {

/// Durable work for the log writer.
struct PersistWork {
  enum class Kind : std::uint8_t {
    /// A Ready's snapshot (install: save image, reset the log), entries and hard state, in the
    /// order ready.hpp prescribes. Reported by `seq`.
    write,
    /// Save `snapshot` as the image, then compact the log up to its index.
    compact,
  };
  Kind kind = Kind::write;
  /// write: increasing by one per write, starting at 1.
  std::uint64_t seq = 0;
  std::shared_ptr<const Snapshot> snapshot;
  std::vector<Entry> entries;
  std::optional<HardState> hard_state;
};

/// What the log writer did with a group of PersistWork items.
struct PersistReport {
  /// Every write with seq ≤ done_seq is persisted: synced (DiskFirst) or appended (MemFirst),
  /// with its hard state durable and its snapshot image and reset synced in both modes.
  std::uint64_t done_seq = 0;
  /// Set when storage failed: the node cannot continue (nothing after the failure was written).
  std::optional<error> failure;
};

/// A state-machine image taken by the applier at a consistent point (between batches).
struct SnapshotImage {
  LogIndex index = 0;
  Term term = 0;
  std::string data;
};

/// Work for the applier. `M` is the state machine, `TimePoint` the Node's clock's time_point.
template <class M, class TimePoint>
struct ApplyWork {
  using response_type = typename M::response_type;

  /// A proposal whose entry is in the batch, completed with the state machine's response.
  struct Proposal {
    LogIndex index = 0;
    Completion<response_type> done;
    TimePoint start{};
  };
  /// A membership-change proposal whose entry is in the batch, completed with the membership
  /// in effect after it.
  struct ConfigProposal {
    LogIndex index = 0;
    Completion<Membership> done;
  };
  /// Committed entries (contiguous, ascending) and the requests they complete.
  struct Batch {
    std::vector<Entry> entries;
    std::vector<Proposal> proposals;
    std::vector<ConfigProposal> config_proposals;
    /// For each config_change entry: its index and the membership after it (notifications).
    std::vector<std::pair<LogIndex, Membership>> memberships;
  };
  /// Replace the state machine with an installed snapshot (already durable).
  struct Restore {
    std::shared_ptr<const Snapshot> snapshot;
  };
  /// Run `job` once the applied index reaches `index` (0: at once); fail it with timeout after
  /// `deadline`.
  struct Read {
    LogIndex index = 0;
    TimePoint deadline{};
    ReadJob<M> job;
  };
  /// Run `fn` on the applier thread: a failed request's completion or a user notification
  /// (never run on the event loop).
  struct Run {
    unique_function<void()> fn;
  };
  /// Fail the waiting reads whose deadline is before `now` with errc::timeout.
  struct Expire {
    TimePoint now{};
  };

  std::variant<Batch, Restore, Read, Run, Expire> item;
};

/// What the applier did with a group of ApplyWork items.
struct ApplyReport {
  /// Batch items processed (the event loop's flow-control count).
  std::uint64_t batches_done = 0;
  /// The state machine's applied index after the group.
  LogIndex applied = 0;
  /// Reads still waiting for the applied index to reach theirs.
  std::size_t waiting_reads = 0;
  /// A snapshot taken after the group, by log size (NodeConfig::snapshot_threshold_bytes).
  std::optional<SnapshotImage> snapshot;
  /// Set when the state machine failed: the node cannot continue.
  std::optional<error> failure;
};

}  // namespace dengine::node
