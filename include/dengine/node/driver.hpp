#pragma once
/// The event-loop role: owns the raft::Core, turns client requests into core inputs, handles
/// every Ready in the order raft/ready.hpp prescribes, and keeps the requests waiting on the
/// core (proposals until their entry commits, linearizable reads until their read index is
/// confirmed). It does no I/O and never blocks: everything it produces goes to three outboxes
/// that the arrangement drains after each call — messages to the transport, PersistWork to the
/// log writer, ApplyWork to the applier — and it learns progress from PersistReport/ApplyReport.
///
/// Handling one Ready (ready.hpp, steps 1-5):
///  1. `messages` → outbox now: a leader replicates while its own disk writes (parallel append).
///  2. snapshot + entries + hard_state → one PersistWork (seq n); its messages_after_persist wait
///     in `awaiting_` behind every earlier write (acknowledgements leave in order).
///  3. on PersistReport(done_seq ≥ n): on_snapshot_persisted / on_persisted(last index, term),
///     then the restore goes to the applier, then messages_after_persist → outbox.
///  4. committed_entries → one ApplyWork::Batch, carrying the proposals waiting on them.
///  5. read_states → ApplyWork::Read (the applier runs them once applied ≥ index).
///  6. leader_calls → the leader service (NodeCallbacks::leader_service) → answered through the
///     core; leader_call_answers complete this node's calls (leader_calls.hpp).
/// Failures found here complete on the applier (ApplyWork::Run), never on the event loop.
///
/// Outcomes (docs/embedded.md, Errors): a proposal refused before its entry left this object
/// (core_.propose failed, the driver had stopped, or it stopped before any Ready carried the
/// entry) fails with a definite error; once a Ready handed the entry to the log writer and the
/// transport it may be committed whatever happens here, so every later failure — storage,
/// stop, timeout, a snapshot covering it — is errc::outcome_unknown with the cause attached.
/// The one definite failure after that point is proposal_dropped: another entry was committed
/// at its index. A waiter whose entry was replaced in this node's log stays until its index
/// commits (the replacement may still lose to it on other nodes), hence the multimap.
///
/// Single-threaded object: only the event loop calls it.

#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "dengine/core/error.hpp"
#include "dengine/core/test_hooks.hpp"
#include "dengine/node/clock.hpp"
#include "dengine/node/config.hpp"
#include "dengine/node/events.hpp"
#include "dengine/node/leader_calls.hpp"
#include "dengine/node/lease_clock.hpp"
#include "dengine/node/metrics.hpp"
#include "dengine/node/status.hpp"
#include "dengine/node/work.hpp"
#include "dengine/raft/core.hpp"
#include "dengine/storage/concepts.hpp"

namespace dengine::node {

template <StateMachine M, Clock C>
class Driver {
 public:
  using time_point = typename C::time_point;
  using Work = ApplyWork<M, time_point>;
  using response_type = typename M::response_type;

  /// `durable` is the hard state the storage holds (what the core was created from).
  /// `config`, `metrics`, `callbacks` and `status` must outlive the driver.
  Driver(raft::Core core, HardState durable, const NodeConfig& config, C clock,
         NodeMetrics& metrics, const NodeCallbacks& callbacks, StatusBoard& status)
      : core_(std::move(core)),
        config_(&config),
        clock_(clock),
        metrics_(&metrics),
        callbacks_(&callbacks),
        status_(&status),
        last_soft_{core_.leader(), core_.role()},
        lease_clock_(config.tick_period, config.raft.effective_lease_ticks(), clock_.now()),
        saved_hard_state_(durable) {
    publish();
  }

  // ---- inputs (each may fill the outboxes; call process_ready() afterwards) ----

  /// A client command: appended if this node leads; elsewhere forwarded to the leader (once one
  /// is known) when config.forward_proposals, else failed (not_leader naming the leader).
  void propose(std::string command, Completion<response_type> done) {
    if (stopped_) return fail(std::move(done), *refusal_);
    if (config_->forward_proposals && core_.role() != raft::Role::leader)
      return forward(std::move(command), std::move(done));
    auto index = core_.propose(std::move(command));
    if (!index) return fail(std::move(done), index.error());
    metrics_->proposals.add();
    add_proposal(index.value(), Waiter{std::move(done)});
  }

  /// A membership change (one at a time; raft/config_change.hpp).
  void change_membership(const raft::ConfigChange& change, Completion<Membership> done) {
    if (stopped_) return fail(std::move(done), *refusal_);
    auto index = core_.propose_config_change(change);
    if (!index) return fail(std::move(done), index.error());
    add_proposal(index.value(), Waiter{std::move(done)});
  }

  /// A read at `consistency` (config.hpp describes each).
  void read(ReadConsistency consistency, ReadJob<M> job) {
    if (stopped_) return fail_read(std::move(job), *refusal_);
    const time_point deadline = clock_.now() + config_->request_timeout;
#if defined(DENGINE_TEST_HOOKS)
    if ((test_hooks::switches().read_without_confirmation && core_.role() == raft::Role::leader) ||
        test_hooks::switches().stale_reads)
      consistency = ReadConsistency::serializable;  // deliberate bugs (core/test_hooks.hpp)
#endif
    if (consistency == ReadConsistency::serializable)
      return apply_out_.push_back(Work{typename Work::Read{0, deadline, std::move(job)}});
    if (consistency == ReadConsistency::lease) {
      auto index = core_.lease_read();
      if (index && lease_held_now())
        return apply_out_.push_back(
            Work{typename Work::Read{index.value(), deadline, std::move(job)}});
      // Not the leader: a lease read is a leader's. Leader without a lease (by the core's tick
      // count or by the clock): ReadIndex instead.
      if (!index && index.error() == errc::not_leader)
        return fail_read(std::move(job), index.error());
    }
    const std::uint64_t id = next_read_id_++;
    if (auto r = core_.read_index(id); !r) return fail_read(std::move(job), r.error());
    reads_.emplace(id, PendingRead{std::move(job), deadline});
    add_deadline({deadline, Key::read, id, 0});
  }

  /// A leader call (NodeCallbacks::leader_service answers it on the leader): served here if
  /// this node leads, else sent to the leader known, or waiting for one; asked again while
  /// declined; timeout at the request timeout.
  void call_leader(std::string request, Completion<std::string> done) {
    if (stopped_) return fail(std::move(done), *refusal_);
    if (auto size = config_->raft.check_entry_size("leader call", request.size()); !size)
      return fail(std::move(done), size.error());
    metrics_->leader_calls.add();
    send_leader_call(leader_calls_.add(std::move(request), std::move(done),
                                       clock_.now() + config_->request_timeout));
  }

  /// Hands leadership to `target` (completes at once: the change shows in leader notifications).
  void transfer_leadership(NodeId target, Completion<void> done) {
    if (stopped_) return fail(std::move(done), *refusal_);
    if (auto r = core_.transfer_leader(target); !r) return fail(std::move(done), r.error());
    run_on_applier([d = std::move(done)]() mutable { d(success()); });
  }

  /// A message from a peer. A malformed one is dropped (a peer's bug must not stop this node).
  void step(raft::Message m) {
    if (stopped_) return;
    (void)core_.step(std::move(m));
  }

  /// Starts an election now.
  void campaign() {
    if (!stopped_) core_.campaign();
  }

  /// One tick: the core's timers, request deadlines, and expiry of reads waiting at the applier.
  void tick() {
    if (stopped_) return;
    // Read before the core ticks: every round sent during this tick leaves after this time.
    const time_point began = clock_.now();
    core_.tick();
    lease_clock_.on_tick(core_.ticks(), began);
    const time_point now = clock_.now();
    expire(now);
    resend_forwards();
    for (std::uint64_t id : leader_calls_.ids(true)) send_leader_call(id);
    if (reads_at_applier_ > 0) apply_out_.push_back(Work{typename Work::Expire{now}});
  }

  /// The log writer's progress: release what waited on it.
  void on_persisted(const PersistReport& report) {
    if (stopped_) return;
    if (report.failure) return fatal(*report.failure);
    persisted_seq_ = std::max(persisted_seq_, report.done_seq);
    while (!awaiting_.empty() && awaiting_.front().seq <= persisted_seq_) {
      Awaiting a = std::move(awaiting_.front());
      awaiting_.pop_front();
      if (a.snapshot) installed(a.snapshot);
      if (a.last_entry) core_.on_persisted(a.last_entry->first, a.last_entry->second);
      for (raft::Message& m : a.after) messages_out_.push_back(std::move(m));
    }
  }

  /// The applier's progress: flow control, apply lag, and a snapshot to compact the log with.
  void on_applied(ApplyReport report) {
    if (stopped_) return;
    if (report.failure) return fatal(*report.failure);
    apply_inflight_ -= std::min<std::uint64_t>(apply_inflight_, report.batches_done);
    applied_ = std::max(applied_, report.applied);
    reads_at_applier_ = report.waiting_reads;
    status_->publish_applied(applied_);
    metrics_->apply_lag.set(
        static_cast<std::int64_t>(core_.commit_index() - std::min(applied_, core_.commit_index())));
    if (report.snapshot) compact(std::move(*report.snapshot));
  }

  /// Takes and handles Readies while the writer's and applier's queues have room.
  void process_ready() {
    while (!stopped_ && core_.has_ready() &&
           next_seq_ - 1 - persisted_seq_ < config_->max_inflight_persist &&
           apply_inflight_ < config_->max_inflight_apply) {
      handle(core_.ready());
    }
    publish();
  }

  /// Stops for good (on the applier, every pending request fails): a proposal whose entry was
  /// handed out with outcome_unknown (cause: `reason`), the others and the reads with `reason`
  /// itself; later requests are refused with it. Nothing more is produced except those
  /// completions. `reason` is errc::stopped for a graceful stop (fatal() covers failures).
  void shutdown(const error& reason) { stop(reason, reason); }

  // ---- outboxes, drained by the arrangement after every call ----

  /// Messages to send now, in order.
  std::vector<raft::Message>& messages_out() noexcept { return messages_out_; }
  /// Work for the log writer, in order.
  std::vector<PersistWork>& persist_out() noexcept { return persist_out_; }
  /// Work for the applier, in order.
  std::vector<Work>& apply_out() noexcept { return apply_out_; }

  [[nodiscard]] bool stopped() const noexcept { return stopped_; }
  /// Why the driver stopped: errc::stopped, or the storage/state-machine failure itself.
  [[nodiscard]] const std::optional<error>& stop_reason() const noexcept { return stop_reason_; }
  [[nodiscard]] const raft::Core& core() const noexcept { return core_; }
  /// Requests waiting on the core (proposals and reads), for tests and metrics.
  [[nodiscard]] std::size_t waiting() const noexcept {
    return proposals_.size() + reads_.size() + forwards_.size() + leader_calls_.size();
  }

 private:
  /// A proposal waiting for its entry to commit.
  struct Waiter {
    std::variant<Completion<response_type>, Completion<Membership>> done;
    Term term = 0;
    std::uint64_t id = 0;
    time_point start{};
    /// Forwarded, and appended by the leader: in a log whatever becomes of this node.
    bool forwarded = false;
  };
  struct PendingRead {
    ReadJob<M> job;
    time_point deadline{};
  };
  /// A proposal forwarded to the leader (or waiting for one to be known), until the leader
  /// answers with its entry's (index, term) — then it waits in proposals_ like any other.
  struct Forward {
    std::string command;
    Completion<response_type> done;
    time_point start{};
    time_point deadline{};
    /// Sent and not answered: the leader may have appended it, so it is not sent again.
    /// Unsent (none known yet, or refused) it is sent at the next leader change or tick.
    bool in_flight = false;
    /// Sent at least once: a copy of it may still be in the network (a transport may duplicate).
    bool ever_sent = false;
  };
  enum class Key : std::uint8_t { proposal, read, forward };
  /// Deadlines in admission order: with one request_timeout and a monotonic clock they are
  /// non-decreasing, so expiry pops from the front. `id` tells a stale entry (the request
  /// already completed, or its index was reused) from a live one.
  struct Deadline {
    time_point at;
    Key key;
    std::uint64_t id;
    LogIndex index;
  };
  /// A write whose acknowledgements wait for the log writer.
  struct Awaiting {
    std::uint64_t seq = 0;
    std::optional<std::pair<LogIndex, Term>> last_entry;
    std::shared_ptr<const Snapshot> snapshot;
    std::vector<raft::Message> after;
  };

  void add_proposal(LogIndex index, Waiter w) {
    const time_point now = clock_.now();
    w.term = core_.term();
    w.start = now;
    add_proposal(index, std::move(w), now + config_->request_timeout);
  }
  /// `w.term` and `w.start` set: waits for the entry (index, w.term) until `deadline`.
  void add_proposal(LogIndex index, Waiter w, time_point deadline) {
    // An older waiter at or after `index` had its entry replaced in this node's log, but not
    // necessarily everywhere: a node still holding it may lead next and commit it. It waits for
    // its index to commit (hand_committed tells them apart by term) or for its deadline.
    w.id = next_waiter_id_++;
    const std::uint64_t id = w.id;
    proposals_.emplace(index, std::move(w));
    add_deadline({deadline, Key::proposal, id, index});
  }

  // ---- forwarded proposals ----

  void forward(std::string command, Completion<response_type> done) {
    if (auto size = config_->raft.check_entry_size("entry", command.size()); !size)
      return fail(std::move(done), size.error());
    const time_point now = clock_.now();
    const std::uint64_t id = next_forward_id_++;
    auto [it, fresh] = forwards_.emplace(
        id, Forward{std::move(command), std::move(done), now, now + config_->request_timeout});
    add_deadline({it->second.deadline, Key::forward, id, 0});
    send_forward(it);
  }

  /// Sends a forward that is not in flight to the leader now known, or proposes it here if
  /// this node leads now. No leader known: it waits (resend_forwards, leader_changed).
  void send_forward(typename std::map<std::uint64_t, Forward>::iterator it) {
    Forward& f = it->second;
    if (core_.role() == raft::Role::leader) {
      Forward taken = std::move(f);
      forwards_.erase(it);
      auto index = core_.propose(std::move(taken.command));
      if (!index) return fail(std::move(taken.done), index.error());
      metrics_->proposals.add();
      add_proposal(index.value(), Waiter{std::move(taken.done), core_.term(), 0, taken.start},
                   taken.deadline);
      return;
    }
    if (core_.role() != raft::Role::follower || core_.leader() == no_node) return;
    if (auto r = core_.forward_proposal(it->first, f.command); !r) {
      if (r.error() == errc::not_leader) return;
      fail(std::move(f.done), r.error());
      forwards_.erase(it);
      return;
    }
    metrics_->proposals_forwarded.add();
    f.in_flight = true;
    f.ever_sent = true;
  }

  /// Forwards not in flight (no leader was known, or the leader refused): try again.
  void resend_forwards() {
    if (forwards_.empty()) return;
    std::vector<std::uint64_t> ids;
    for (const auto& [id, f] : forwards_)
      if (!f.in_flight) ids.push_back(id);
    for (std::uint64_t id : ids)
      if (auto it = forwards_.find(id); it != forwards_.end()) send_forward(it);
  }

  /// The leader's answer to forward `o.id`. An acceptance counts whenever it comes (a copy of
  /// an earlier send may be the one appended); a refusal only answers the send in flight.
  void forward_answered(raft::ForwardOutcome& o) {
    auto it = forwards_.find(o.id);
    if (it == forwards_.end()) return;
    Forward& f = it->second;
    if (o.refusal) {
      if (!f.in_flight) return;
      // Never appended. not_leader and proposal_dropped (a transfer running) pass with the
      // leadership: send it again; too_busy and too_large are the caller's answer.
      f.in_flight = false;
      if (*o.refusal == errc::not_leader || *o.refusal == errc::proposal_dropped) return;
      fail(std::move(f.done), std::move(*o.refusal));
      forwards_.erase(it);
      return;
    }
    Forward taken = std::move(f);
    forwards_.erase(it);
    if (o.index <= handed_commit_) {
      // Reordered in transit: the entry was applied here before the answer arrived, and its
      // result was not kept. (The transport sends both on one lane, in order.)
      return fail(std::move(taken.done),
                  error::outcome_unknown(
                      "forwarded entry " + std::to_string(o.index) + " was appended by the leader",
                      error(errc::timeout, "it was applied here before the leader's answer came")));
    }
    add_proposal(o.index, Waiter{std::move(taken.done), o.term, 0, taken.start, true},
                 taken.deadline);
  }

  // ---- leader calls ----

  /// Serves call `id` here if this node leads, or sends it to the leader known; declined or
  /// no leader known: it waits for the next tick or leader change.
  void send_leader_call(std::uint64_t id) {
    auto* call = leader_calls_.find(id);
    if (call == nullptr) return;
    call->in_flight = false;
    if (core_.role() == raft::Role::leader) {
      call->ever_sent = true;
      auto reply = serve_leader_call(config_->raft.id, call->request);
      if (reply) complete_leader_call(id, std::move(*reply));
      return;
    }
    if (core_.role() != raft::Role::follower || core_.leader() == no_node) return;
    if (core_.call_leader(id, call->request)) {
      call->in_flight = true;
      call->ever_sent = true;
    }
  }

  [[nodiscard]] std::optional<std::string> serve_leader_call(NodeId from,
                                                             std::string_view request) const {
    if (!callbacks_->leader_service) return std::nullopt;
    return callbacks_->leader_service(from, request);
  }

  void complete_leader_call(std::uint64_t id, std::string reply) {
    auto call = leader_calls_.take(id);
    if (!call) return;
    run_on_applier([d = std::move(call->done), r = std::move(reply)]() mutable {
      d(result<std::string>(std::move(r)));
    });
  }

  /// The leader's answer to call `a.id`: its reply, or declined (ask again at the next tick).
  void leader_call_answered(raft::LeaderCallAnswer& a) {
    if (a.reply) return complete_leader_call(a.id, std::move(*a.reply));
    if (auto* call = leader_calls_.find(a.id)) call->in_flight = false;
  }

  /// Deadlines of completed requests stay in the queue until they expire; drop them when they
  /// outnumber the live ones, so the queue stays within twice the pending requests.
  void add_deadline(Deadline d) {
    deadlines_.push_back(d);
    if (deadlines_.size() <= 2 * (proposals_.size() + reads_.size() + forwards_.size()) + 1024)
      return;
    std::erase_if(deadlines_, [&](const Deadline& x) {
      if (x.key == Key::read) return !reads_.contains(x.id);
      if (x.key == Key::forward) return !forwards_.contains(x.id);
      return find_proposal(x.index, x.id) == proposals_.end();
    });
  }

  /// The waiter at `index` with id `id`, or end().
  typename std::multimap<LogIndex, Waiter>::iterator find_proposal(LogIndex index,
                                                                   std::uint64_t id) {
    const auto range = proposals_.equal_range(index);
    for (auto it = range.first; it != range.second; ++it)
      if (it->second.id == id) return it;
    return proposals_.end();
  }

  void handle(raft::Ready rd) {
    if (rd.soft_state) leader_changed(*rd.soft_state);
    // 1. Messages that promise nothing about local state leave now.
    for (raft::Message& m : rd.messages) messages_out_.push_back(std::move(m));
    // 2. Durable work; its acknowledgements wait for it (and for every earlier write).
    std::optional<HardState> hard_state;
    if (rd.hard_state && must_save(*rd.hard_state, rd.snapshot != nullptr)) {
      hard_state = rd.hard_state;
      saved_hard_state_ = *rd.hard_state;
    }
    // From here on the entries may reach a log (ours, or a follower's through rd.messages).
    if (!rd.entries.empty()) handed_index_ = std::max(handed_index_, rd.entries.back().index);
    if (rd.snapshot || !rd.entries.empty() || hard_state) {
      Awaiting a;
      a.seq = next_seq_++;
      if (!rd.entries.empty())
        a.last_entry.emplace(rd.entries.back().index, rd.entries.back().term);
      a.snapshot = rd.snapshot;
      a.after = std::move(rd.messages_after_persist);
      if (acks_before_persist()) {
        for (raft::Message& m : a.after) messages_out_.push_back(std::move(m));
        a.after.clear();
      }
      persist_out_.push_back(PersistWork{PersistWork::Kind::write, a.seq, std::move(rd.snapshot),
                                         std::move(rd.entries), hard_state});
      awaiting_.push_back(std::move(a));
    } else if (!rd.messages_after_persist.empty()) {
      if (awaiting_.empty() || acks_before_persist()) {
        for (raft::Message& m : rd.messages_after_persist) messages_out_.push_back(std::move(m));
      } else {
        auto& after = awaiting_.back().after;
        for (raft::Message& m : rd.messages_after_persist) after.push_back(std::move(m));
      }
    }
    // 4. Committed entries (already durable locally) to the applier, with their waiters.
    if (!rd.committed_entries.empty()) hand_committed(std::move(rd.committed_entries));
    // 5. Confirmed and refused reads.
    for (const raft::ReadState& rs : rd.read_states) {
      auto it = reads_.find(rs.id);
      if (it == reads_.end()) continue;  // timed out meanwhile
      apply_out_.push_back(
          Work{typename Work::Read{rs.index, it->second.deadline, std::move(it->second.job)}});
      reads_.erase(it);
    }
    for (raft::DroppedRead& dr : rd.dropped_reads) {
      auto it = reads_.find(dr.id);
      if (it == reads_.end()) continue;
      fail_read(std::move(it->second.job), dr.reason);
      reads_.erase(it);
    }
    for (raft::ForwardOutcome& o : rd.forwards) forward_answered(o);
    // 6. Leader calls: this node's service answers the followers' (answers leave next Ready).
    for (raft::LeaderCall& c : rd.leader_calls)
      core_.answer_leader_call(c.from, c.id, serve_leader_call(c.from, c.request));
    for (raft::LeaderCallAnswer& a : rd.leader_call_answers) leader_call_answered(a);
  }

  /// The term and vote are saved whenever they change (a vote must never be forgotten). The
  /// commit index is only a hint for restarts (a restarted node relearns it from the leader, or
  /// from its applied index), so a change of it alone is saved at most every
  /// `commit_save_interval` entries: a durable hard-state write per commit would cost a sync.
  [[nodiscard]] bool must_save(const HardState& hs, bool snapshot) const noexcept {
    return hs.term != saved_hard_state_.term || hs.vote != saved_hard_state_.vote || snapshot ||
           hs.commit >= saved_hard_state_.commit + commit_save_interval;
  }

  void hand_committed(std::vector<Entry> entries) {
    typename Work::Batch batch;
    const LogIndex lo = entries.front().index;
    const LogIndex hi = entries.back().index;
    handed_commit_ = std::max(handed_commit_, hi);
    for (const Entry& e : entries)
      if (e.type == EntryType::config_change)
        batch.memberships.emplace_back(e.index, core_.membership_at(e.index));
    while (!proposals_.empty() && proposals_.begin()->first <= hi) {
      auto node = proposals_.extract(proposals_.begin());
      const LogIndex index = node.key();
      Waiter& w = node.mapped();
      if (index < lo) {
        fail_waiter(std::move(w), covered_by_snapshot(index));
        continue;
      }
      const Entry& e = entries[index - lo];
      if (e.term != w.term) {
        // Definite: another entry is committed at this index, and a committed entry is final.
        error dropped(errc::proposal_dropped, "entry " + std::to_string(index) + " of term " +
                                                  std::to_string(w.term) +
                                                  " was replaced by one of term " +
                                                  std::to_string(e.term) + ", which committed");
        fail_waiter(std::move(w), std::move(dropped));
        continue;
      }
      if (auto* d = std::get_if<Completion<response_type>>(&w.done)) {
        batch.proposals.push_back({index, std::move(*d), w.start});
      } else {
        batch.config_proposals.push_back(
            {index, std::move(std::get<Completion<Membership>>(w.done))});
      }
    }
    metrics_->entries_committed.add(entries.size());
    batch.entries = std::move(entries);
    ++apply_inflight_;
    apply_out_.push_back(Work{std::move(batch)});
  }

  /// A snapshot from the leader is durable: restore it into the state machine (after every
  /// batch handed before it), and give up on proposals it covers.
  void installed(const std::shared_ptr<const Snapshot>& snapshot) {
    const LogIndex index = snapshot->meta.index;
    handed_commit_ = std::max(handed_commit_, index);
    core_.on_snapshot_persisted(index);
    apply_out_.push_back(Work{typename Work::Restore{snapshot}});
    while (!proposals_.empty() && proposals_.begin()->first <= index) {
      auto node = proposals_.extract(proposals_.begin());
      fail_waiter(std::move(node.mapped()), covered_by_snapshot(node.key()));
    }
  }

  /// A snapshot from the leader covers `index`: some entry committed there, maybe ours.
  static error covered_by_snapshot(LogIndex index) {
    return error::outcome_unknown(
        "entry " + std::to_string(index) + " was covered by a snapshot installed from the leader",
        error(errc::compacted, "which entry committed there is no longer known here"));
  }

  /// The applier took an image at a consistent point: compact the core's log and the storage.
  void compact(SnapshotImage image) {
    if (image.index <= core_.log().snapshot().index) return;  // a newer install overtook it
    auto t = core_.term_at(image.index);
    if (!t || t.value() != image.term) return;
    auto snap = std::make_shared<const Snapshot>(
        Snapshot{SnapshotMeta{image.index, image.term, core_.membership_at(image.index)},
                 std::move(image.data)});
    if (auto r = core_.compact(snap); !r) return;
    persist_out_.push_back(
        PersistWork{PersistWork::Kind::compact, 0, std::move(snap), {}, std::nullopt});
  }

  void leader_changed(const raft::SoftState& soft) {
    if (soft.leader != last_soft_.leader || soft.role != last_soft_.role)
      metrics_->leader_changes.add();
    const bool new_leader = soft.leader != no_node && soft.leader != last_soft_.leader;
    last_soft_ = soft;
    // A read forwarded to the previous leader may never be answered: ask the new one (or
    // register locally, if that is us). A second answer for the same read is ignored.
    if (new_leader) {
      for (const auto& [id, r] : reads_) (void)core_.read_index(id);
      resend_forwards();
      for (std::uint64_t id : leader_calls_.ids(false)) send_leader_call(id);
    }
    metrics_->is_leader.set(soft.role == raft::Role::leader ? 1 : 0);
    if (callbacks_->on_leader_change) {
      LeaderChange ev{soft.leader, core_.term(), soft.role};
      run_on_applier([cb = callbacks_, ev] { cb->on_leader_change(ev); });
    }
  }

  void expire(time_point now) {
    for (auto& call : leader_calls_.take_expired(now))
      fail(std::move(call.done),
           error(errc::timeout, call.ever_sent
                                    ? "leader call: no answer from the leader within the "
                                      "request timeout"
                                    : "leader call: no leader known within the request timeout"));
    while (!deadlines_.empty() && deadlines_.front().at <= now) {
      const Deadline d = deadlines_.front();
      deadlines_.pop_front();
      if (d.key == Key::proposal) {
        auto it = find_proposal(d.index, d.id);
        if (it == proposals_.end()) continue;
        // Even an entry no Ready carried yet stays in the core's log and may commit later.
        fail_waiter(std::move(it->second),
                    error::outcome_unknown(
                        "entry " + std::to_string(d.index) + " was appended",
                        error(errc::timeout, "not committed within the request timeout")));
        proposals_.erase(it);
      } else if (d.key == Key::forward) {
        auto it = forwards_.find(d.id);
        if (it == forwards_.end()) continue;
        Forward& f = it->second;
        if (f.ever_sent) {
          fail(std::move(f.done),
               error::outcome_unknown(
                   "forwarded to the leader",
                   error(errc::timeout, "no answer from it within the request timeout")));
        } else {
          // Never sent: no leader was known within the request timeout.
          fail(std::move(f.done), error(errc::timeout,
                                        "no leader known to forward the proposal to within the "
                                        "request timeout; it was not appended"));
        }
        forwards_.erase(it);
      } else {
        auto it = reads_.find(d.id);
        if (it == reads_.end()) continue;
        fail_read(std::move(it->second.job),
                  error(errc::timeout, "read not confirmed within the request timeout"));
        reads_.erase(it);
      }
    }
  }

  /// A storage or state-machine failure: this node cannot continue. Counted, published in the
  /// status, logged once (NodeCallbacks::log, on the applier: a user callback never runs on
  /// the event loop), then a stop with `e` as the cause of every failure it reports.
  void fatal(const error& e) {
    if (stopped_) return;
    metrics_->fatal_stops.add();
    status_->publish_failure(e);
    std::string line =
        "dengine node " + std::to_string(config_->raft.id) +
        ": fatal: the node stopped on a storage or state-machine failure: " + e.message();
    run_on_applier([cb = callbacks_, l = std::move(line)] { emit_log(*cb, l); });
    error refusal(errc::stopped, "the node stopped on a fatal error: " + e.message());
    refusal.cause = e.code;
    stop(e, refusal);
  }

  /// See shutdown(): `reason` is the cause, `refusal` what requests that never reached the log
  /// are told (the same for a graceful stop; errc::stopped naming the cause after a failure).
  void stop(const error& reason, const error& refusal) {
    if (stopped_) return;
    stopped_ = true;
    stop_reason_ = reason;
    refusal_ = refusal;
    status_->publish_lease(0, 0);
    awaiting_.clear();
    messages_out_.clear();
    auto proposals = std::move(proposals_);
    proposals_.clear();
    for (auto& [index, w] : proposals) {
      // An entry of ours no Ready carried is in no log: the request is refused. Any other may
      // be in ours (persisted, or not yet when storage failed) or a follower's; a forwarded
      // one is in the leader's.
      if (index > handed_index_ && !w.forwarded) {
        fail_waiter(std::move(w), refusal);
      } else {
        fail_waiter(std::move(w), error::outcome_unknown("entry " + std::to_string(index) +
                                                             " was appended, then the node stopped",
                                                         reason));
      }
    }
    auto forwards = std::move(forwards_);
    forwards_.clear();
    for (auto& [id, f] : forwards) {
      if (f.ever_sent) {
        fail(std::move(f.done), error::outcome_unknown("forwarded to the leader, then this node "
                                                       "stopped before the answer",
                                                       reason));
      } else {
        fail(std::move(f.done), refusal);
      }
    }
    auto reads = std::move(reads_);
    reads_.clear();
    for (auto& [id, r] : reads) fail_read(std::move(r.job), refusal);
    for (auto& call : leader_calls_.take_all()) fail(std::move(call.done), refusal);
    deadlines_.clear();
    status_->publish_running(false);
  }

  template <class T>
  void fail(Completion<T> done, error e) {
    with_leader_address(e);
    run_on_applier([d = std::move(done), e = std::move(e)]() mutable { d(std::move(e)); });
  }
  void fail_waiter(Waiter w, error e) {
    std::visit([&](auto& d) { fail(std::move(d), std::move(e)); }, w.done);
  }
  void fail_read(ReadJob<M> job, error e) {
    with_leader_address(e);
    run_on_applier([j = std::move(job), e = std::move(e)]() mutable { j.fail(std::move(e)); });
  }
  [[nodiscard]] std::uint64_t first_forward_id() const {
    const auto ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(clock_.now().time_since_epoch())
            .count();
    return static_cast<std::uint64_t>(std::max<std::int64_t>(ns, 0)) + 1;
  }
  /// A not_leader naming a leader also carries its peer address, if the configuration has it.
  void with_leader_address(error& e) const {
    if (e == errc::not_leader && e.leader_hint != no_node && e.leader_address.empty())
      e.leader_address = std::string(core_.membership().address_of(e.leader_hint));
  }
  void run_on_applier(unique_function<void()> fn) {
    // Built in place: moving a temporary Work holding a Run makes GCC 12 under ASan report the
    // variant's (inactive) Batch vectors as maybe-uninitialized, which -Werror turns fatal.
    apply_out_.emplace_back().item.template emplace<typename Work::Run>(
        typename Work::Run{std::move(fn)});
  }

  void publish() {
    status_->publish_core(core_.role(), core_.leader(), core_.term(), core_.commit_index());
    status_->publish_membership(core_.membership_version(), core_.membership());
    // The lease as a clock deadline anchored to when the confirming round's tick began
    // (lease_clock.hpp): a stalled event loop can only shorten it. Published before this
    // pass's messages are sent, so a transfer's TimeoutNow never leaves while a deadline for
    // the forfeited lease is still visible.
    const std::optional<time_point> deadline = lease_deadline();
    if (deadline && clock_.now() < *deadline) {
      status_->publish_lease(
          std::chrono::duration_cast<std::chrono::nanoseconds>(deadline->time_since_epoch())
              .count(),
          core_.commit_index());
    } else {
      status_->publish_lease(0, 0);
    }
    metrics_->term.set(static_cast<std::int64_t>(core_.term()));
    metrics_->commit_index.set(static_cast<std::int64_t>(core_.commit_index()));
  }

  /// False, except in the simulator with the ack-before-persist bug on (core/test_hooks.hpp):
  /// then acknowledgements leave before what they promise is durable.
  [[nodiscard]] static bool acks_before_persist() noexcept {
#if defined(DENGINE_TEST_HOOKS)
    return test_hooks::switches().ack_before_persist;
#else
    return false;
#endif
  }

  /// The core's lease as a deadline on this node's clock, or nullopt when it holds none.
  [[nodiscard]] std::optional<time_point> lease_deadline() const {
    if (core_.lease_ticks_left() == 0) return std::nullopt;
#if defined(DENGINE_TEST_HOOKS)
    if (test_hooks::switches().tick_lease)  // deliberate bug (core/test_hooks.hpp)
      return clock_.now() + std::chrono::hours(1);
#endif
    return lease_clock_.deadline(core_.lease_anchor_tick());
  }
  [[nodiscard]] bool lease_held_now() const {
    const std::optional<time_point> deadline = lease_deadline();
    return deadline && clock_.now() < *deadline;
  }

  raft::Core core_;
  const NodeConfig* config_;
  C clock_;
  NodeMetrics* metrics_;
  const NodeCallbacks* callbacks_;
  StatusBoard* status_;
  raft::SoftState last_soft_;
  LeaseClock<time_point, std::chrono::microseconds> lease_clock_;

  /// By index. Several waiters share an index when this node's entry there was replaced and it
  /// proposed again at that index (see the file comment); at most one of them can commit.
  std::multimap<LogIndex, Waiter> proposals_;
  std::map<std::uint64_t, PendingRead> reads_;
  std::map<std::uint64_t, Forward> forwards_;
  std::deque<Deadline> deadlines_;
  PendingLeaderCalls<time_point> leader_calls_;
  std::uint64_t next_waiter_id_ = 1;
  std::uint64_t next_read_id_ = 1;
  /// Forward ids go to the leader, which drops a duplicate by (sender, id): start from this
  /// node's clock so that ids stay unique across its restarts.
  std::uint64_t next_forward_id_ = first_forward_id();

  static constexpr LogIndex commit_save_interval = 4096;
  HardState saved_hard_state_;
  std::deque<Awaiting> awaiting_;
  std::uint64_t next_seq_ = 1;
  std::uint64_t persisted_seq_ = 0;
  std::uint64_t apply_inflight_ = 0;
  std::size_t reads_at_applier_ = 0;
  LogIndex applied_ = 0;

  /// The highest entry index any Ready handed out: entries above it never left this object.
  LogIndex handed_index_ = 0;
  /// The highest index handed to the applier (committed entries, an installed snapshot).
  LogIndex handed_commit_ = 0;

  bool stopped_ = false;
  std::optional<error> stop_reason_;
  std::optional<error> refusal_;

  std::vector<raft::Message> messages_out_;
  std::vector<PersistWork> persist_out_;
  std::vector<Work> apply_out_;
};

}  // namespace dengine::node
