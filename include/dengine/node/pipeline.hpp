#pragma once
/// The node's batching and flow control, as one component both runtimes use (threaded.hpp, and
/// sim/deterministic.hpp in virtual time): what the three roles hand each other, how inputs are
/// gathered into batches, and when the log writer syncs. A runtime only decides *where* each
/// part runs (threads and queues, or events on a SimExecutor) — never *what* is batched — so the
/// simulator runs the paths the benchmarks take.
///
///   flush        — one per burst of inputs on the event loop (want_flush() says whether one is
///                  already scheduled): process_ready, then drain the outboxes. Inputs that
///                  arrive together share one Ready (proposal batching).
///   inline writer — when nothing the writer touches can block (LogWriter::never_blocks and the
///                  runtime agrees), drain persists on the event loop itself, a memory copy,
///                  instead of two hand-offs to a writer thread.
///   writer group — everything queued at a wake-up is one group with one sync (group commit);
///                  MemFirst reports the group before syncing and syncs when the queue is idle
///                  or after a run of busy groups (sync_due).
///   applier group — applied in chunks (NodeConfig::apply_chunk_entries); requests that the
///                  completions of a chunk issue are gathered and reach the event loop together
///                  with the applier's report, as one input (gather/take_gathered).
///
/// In-flight limits are the core's (RaftConfig::max_inflight_messages, max_append_entries) and
/// the Node's admission bounds (max_pending_proposals, max_pending_reads). Idle spinning is the
/// runtime's (it is about waking threads: WorkQueue::pop_all, NodeConfig::idle_spin).
///
/// Single-threaded parts: the driver and the flush state belong to the event loop, the writer
/// to the log writer role, the applier and the gathered requests to the applier role.

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "dengine/node/applier.hpp"
#include "dengine/node/clock.hpp"
#include "dengine/node/driver.hpp"
#include "dengine/node/log_writer.hpp"
#include "dengine/node/unique_function.hpp"
#include "dengine/node/work.hpp"
#include "dengine/storage/concepts.hpp"

namespace dengine::node {

/// Where a drain sends what the driver produced: the runtime's side of the hand-offs.
template <class O, class Work>
concept DrainSink = requires(O& o, raft::Message m, std::vector<PersistWork>& p,
                             std::vector<Work>& a, const Membership& ms) {
  o.membership_changed(ms);  // the configuration changed (before the messages that follow it)
  o.send(std::move(m));      // to the transport
  o.to_writer(p);            // to the log writer (take the items, leave the vector empty)
  o.to_applier(a);           // to the applier (likewise)
};

template <StorageEngine S, dengine::SnapshotStore SS, StateMachine M, Clock C>
class Pipeline {
 public:
  using DriverT = Driver<M, C>;
  using WriterT = LogWriter<S, SS, C>;
  using ApplierT = Applier<M, C>;
  using Work = typename DriverT::Work;
  /// A request for the event loop: runs against the driver.
  using Request = unique_function<void(DriverT&)>;

  /// MemFirst: the writer syncs at the latest after this many groups in a row found more work
  /// queued (a busy stream of appends must not stay unsynced for long).
  static constexpr std::uint64_t max_unsynced_groups = 64;

  /// `inline_writer`: the runtime persists on the event loop (only honoured when the writer
  /// never blocks).
  Pipeline(DriverT driver, WriterT writer, ApplierT applier, bool inline_writer)
      : driver_(std::move(driver)),
        writer_(std::move(writer)),
        applier_(std::move(applier)),
        inline_writer_(inline_writer && writer_.never_blocks()) {}

  [[nodiscard]] DriverT& driver() noexcept { return driver_; }
  [[nodiscard]] const DriverT& driver() const noexcept { return driver_; }
  [[nodiscard]] WriterT& writer() noexcept { return writer_; }
  [[nodiscard]] ApplierT& applier() noexcept { return applier_; }
  /// The event loop persists itself (there is no log writer role to hand work to).
  [[nodiscard]] bool inline_writer() const noexcept { return inline_writer_; }

  // ---- event loop ----

  /// Notes that an input needs a flush; true when the caller must schedule one (none is yet).
  [[nodiscard]] bool want_flush() noexcept { return !std::exchange(flush_scheduled_, true); }

  /// The scheduled flush runs.
  template <DrainSink<Work> O>
  void run_scheduled_flush(O& out) {
    flush_scheduled_ = false;
    flush(out);
  }

  /// Handles Readies, then hands the outboxes on.
  template <DrainSink<Work> O>
  void flush(O& out) {
    driver_.process_ready();
    drain(out);
  }

  /// Hands the outboxes on. Inline writer: persists here first, then lets the core see it
  /// (which may commit entries and make more work: a hard state, the applier's batch), until
  /// nothing is left to persist.
  template <DrainSink<Work> O>
  void drain(O& out) {
    while (inline_writer_ && !driver_.persist_out().empty()) {
      PersistReport report = writer_.process(driver_.persist_out());
      driver_.persist_out().clear();
      // MemFirst: the writer role would sync in the background; here a sync is a memory copy.
      if (!report.failure && writer_.sync_pending()) {
        if (auto r = writer_.sync(); !r) report.failure = r.error();
      }
      driver_.on_persisted(report);
      driver_.process_ready();
    }
    // A change takes effect when appended: the transport learns a new member's address before
    // the messages addressed to it leave. A removed member stays a peer until its removal
    // commits (Core::transport_membership): the leader removing itself needs its followers to
    // take its appends until then.
    if (const raft::Core& core = driver_.core();
        core.transport_membership_key() != handed_transport_key_) {
      handed_transport_key_ = core.transport_membership_key();
      out.membership_changed(core.transport_membership());
    }
    for (raft::Message& m : driver_.messages_out()) out.send(std::move(m));
    driver_.messages_out().clear();
    if (!driver_.persist_out().empty()) out.to_writer(driver_.persist_out());
    if (!driver_.apply_out().empty()) out.to_applier(driver_.apply_out());
  }

  /// The writer's report reached the event loop.
  template <DrainSink<Work> O>
  void on_written(const PersistReport& report, O& out) {
    driver_.on_persisted(report);
    flush(out);
  }

  /// The applier's report (if any) and the requests its completions issued reached the event
  /// loop together: one input, one flush.
  template <DrainSink<Work> O>
  void on_applied(std::optional<ApplyReport> report, std::vector<Request> issued, O& out) {
    if (report) driver_.on_applied(std::move(*report));
    for (Request& r : issued) r(driver_);
    flush(out);
  }

  /// One tick of the node's timer.
  template <DrainSink<Work> O>
  void on_tick(O& out) {
    driver_.tick();
    flush(out);
  }

  // ---- log writer ----

  /// Persists one group (group commit). DiskFirst syncs inside; MemFirst leaves the sync to
  /// sync_due().
  PersistReport write_group(std::vector<PersistWork>& group) {
    PersistReport report = writer_.process(group);
    group.clear();
    return report;
  }

  /// MemFirst: whether to sync now, after a group — when no more work is queued
  /// (`more_queued` false), or after max_unsynced_groups busy groups in a row.
  [[nodiscard]] bool sync_due(bool more_queued) noexcept {
    if (!writer_.sync_pending()) return false;
    if (more_queued && ++groups_unsynced_ < max_unsynced_groups) return false;
    groups_unsynced_ = 0;
    return true;
  }

  // ---- applier ----

  /// Applies one group (in chunks; completions and reads run here).
  ApplyReport apply_group(std::vector<Work>& group) {
    ApplyReport report = applier_.process(group);
    group.clear();
    return report;
  }

  /// A request issued on the applier role (by a completion): kept until take_gathered().
  void gather(Request r) { gathered_.push_back(std::move(r)); }
  [[nodiscard]] bool has_gathered() const noexcept { return !gathered_.empty(); }
  /// The requests gathered since the last call, in issue order.
  [[nodiscard]] std::vector<Request> take_gathered() { return std::exchange(gathered_, {}); }

 private:
  DriverT driver_;
  WriterT writer_;
  ApplierT applier_;
  const bool inline_writer_;
  bool flush_scheduled_ = false;  // event loop
  // Event loop: Core::transport_membership_key() when drain() last handed the membership on.
  std::pair<std::uint64_t, LogIndex> handed_transport_key_{0, 0};
  std::uint64_t groups_unsynced_ = 0;  // log writer
  std::vector<Request> gathered_;      // applier
};

}  // namespace dengine::node
