#pragma once
/// The Raft protocol as a pure state machine (etcd-raft style): inputs are tick(), step(),
/// propose(), read_index(), transfer_leader(), propose_config_change(); the output is a Ready
/// (ready.hpp) that the runtime persists, sends and applies, then reports back through
/// on_persisted(). No I/O, no clock, no threads: time is counted in ticks.
///
/// The protocol: randomized election timeouts; pre-vote and check-quorum; replication with
/// per-follower progress (probe / replicate / snapshot), a bounded in-flight window and fast
/// conflict backtracking; commit only of current-term entries (a no-op is appended on election);
/// snapshots to lagging followers; ReadIndex reads batched into heartbeat rounds and lease reads;
/// leader transfer; single-server membership changes with learners. Handlers are split by
/// concern: core_election.hpp, core_replication.hpp, core_reads.hpp, core_membership.hpp.

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dengine/core/config.hpp"
#include "dengine/core/error.hpp"
#include "dengine/core/test_hooks.hpp"
#include "dengine/core/types.hpp"
#include "dengine/raft/config_change.hpp"
#include "dengine/raft/log.hpp"
#include "dengine/raft/message.hpp"
#include "dengine/raft/progress.hpp"
#include "dengine/raft/quorum.hpp"
#include "dengine/raft/read_rounds.hpp"
#include "dengine/raft/ready.hpp"

namespace dengine::raft {

/// What a node starts from (StorageEngine::load() plus the log and the state machine's applied
/// index). For a brand-new cluster every founding member starts with snapshot = {index 0,
/// term 0, membership = the initial voters} and nothing else.
struct CoreState {
  HardState hard_state;
  SnapshotMeta snapshot;
  /// The log after snapshot.index, contiguous.
  std::vector<Entry> entries;
  /// The state machine's applied index (entries up to it are committed by definition).
  LogIndex applied = 0;
  /// The latest snapshot image, sent to followers that need entries compacted away. Required
  /// when snapshot.index > 0.
  std::shared_ptr<const Snapshot> snapshot_data;
};

/// Counters a runtime may export as metrics.
struct CoreStats {
  std::uint64_t elections_started = 0;
  std::uint64_t leader_changes = 0;
  std::uint64_t snapshots_sent = 0;
  std::uint64_t append_rejections = 0;
};

class Core {
 public:
  /// Validates the config and the state; invalid → invalid_argument naming the problem.
  static result<Core> create(const RaftConfig& config, CoreState state);

  /// One logical clock tick (elections, heartbeats, check-quorum, lease and transfer timeouts).
  void tick();
  /// A message from a peer. Stale or unexpected messages are ignored, not errors; a malformed
  /// message (no sender, wrong recipient) is invalid_argument.
  result<void> step(Message m);
  /// Leader only: appends a normal entry and returns its index. The entry is replicated at the
  /// next ready(): proposals between two ready() calls travel in one append (batching).
  result<LogIndex> propose(std::string data);
  /// Follower only: sends `data` to the leader as forwarded proposal `request_id`; the leader
  /// appends it as if proposed there and answers with its (index, term) or a refusal, which
  /// comes back as a Ready::forwards entry. not_leader when no leader is known (or this node is
  /// not a follower), too_large beyond max_entry_bytes. A lost message is never answered: the
  /// runtime's deadline covers it (the entry may or may not have been appended).
  result<void> forward_proposal(std::uint64_t request_id, std::string data);
  /// Follower only: sends `request` to the leader as leader call `request_id`, for its service
  /// to answer (a request that needs the leader but not the log: a lease keep-alive). The answer
  /// comes back as a Ready::leader_call_answers entry, from whichever leader served it. Calls
  /// carry no deduplication: a leader call must be harmless to serve twice. not_leader when no
  /// leader is known (or this node is not a follower), too_large beyond max_entry_bytes.
  result<void> call_leader(std::uint64_t request_id, std::string request);
  /// Answers leader call `request_id` of node `to` (a Ready::leader_calls entry): `reply`, or
  /// nullopt to tell the follower to ask again (the service cannot answer now).
  void answer_leader_call(NodeId to, std::uint64_t request_id, std::optional<std::string> reply);
  /// Leader only: appends a membership change (one at a time; see config_change.hpp).
  result<LogIndex> propose_config_change(const ConfigChange& change);
  /// Requests a linearizable read; a ReadState{id, index} (or DroppedRead) comes in a later Ready.
  /// On a follower the request is forwarded to the leader.
  result<void> read_index(std::uint64_t request_id);
  /// Leader only, while its lease holds: the index the state machine must reach before a local
  /// read is linearizable.
  [[nodiscard]] result<LogIndex> lease_read() const;
  /// Ticks for which lease_read() will keep succeeding without another confirmed round (0 when
  /// it fails now), counted in this core's ticks.
  [[nodiscard]] std::uint64_t lease_ticks_left() const noexcept;
  /// The tick (ticks() at the time) at which the heartbeat round that confirmed the current
  /// lease was sent; meaningful while lease_ticks_left() > 0. A tick that comes late stretches a
  /// tick count in real time, so a runtime with a clock must anchor the lease to the time this
  /// tick began (node/lease_clock.hpp), not to the ticks still left.
  [[nodiscard]] std::uint64_t lease_anchor_tick() const noexcept {
    return lease_until_ - config_.effective_lease_ticks();
  }
  /// Ticks counted since this core was created.
  [[nodiscard]] std::uint64_t ticks() const noexcept { return now_; }
  /// True while this node keeps its promise to a leader it heard from within the election
  /// timeout: it grants no vote or pre-vote (leader transfer excepted) and does not campaign.
  /// The promise is what makes a leader's lease safe; nothing but time ends it (not a higher
  /// term, not a restart: a restarted node at a term > 0 keeps it for a full timeout).
  [[nodiscard]] bool promised_leader() const noexcept;
  /// Hands leadership to `target`: catch it up, then send it TimeoutNow. Proposals are refused
  /// while the transfer runs (at most an election timeout).
  result<void> transfer_leader(NodeId target);
  /// Starts an election now (bootstrap, tests) — unless this node promised a leader it heard
  /// from within the election timeout not to help elect anyone else (promised_leader(); a
  /// single voter has no one to promise). Use transfer_leader() to move leadership at once.
  void campaign();

  [[nodiscard]] bool has_ready() const;
  /// Takes every pending output (see ready.hpp for how to handle it).
  Ready ready();
  /// Entries up to `index`, whose term is `t`, are durable (or, in MemFirst, in memory).
  void on_persisted(LogIndex index, Term t);
  /// The snapshot handed out in a Ready is durable and restored into the state machine.
  void on_snapshot_persisted(LogIndex index);
  /// The state machine saved `snapshot` (index ≤ entries handed to it): drop the log prefix and
  /// keep the image for followers that need it.
  result<void> compact(std::shared_ptr<const Snapshot> snapshot);

  [[nodiscard]] NodeId id() const noexcept { return config_.id; }
  [[nodiscard]] Role role() const noexcept { return role_; }
  [[nodiscard]] NodeId leader() const noexcept { return leader_; }
  [[nodiscard]] Term term() const noexcept { return term_; }
  [[nodiscard]] NodeId vote() const noexcept { return vote_; }
  [[nodiscard]] LogIndex commit_index() const noexcept { return log_.committed(); }
  [[nodiscard]] LogIndex first_index() const noexcept { return log_.first_index(); }
  [[nodiscard]] LogIndex last_index() const noexcept { return log_.last_index(); }
  [[nodiscard]] LogIndex persisted_index() const noexcept { return log_.persisted(); }
  [[nodiscard]] HardState hard_state() const noexcept { return {term_, vote_, log_.committed()}; }
  /// The configuration in effect: the latest one in the log (appended, not necessarily committed).
  [[nodiscard]] const Membership& membership() const noexcept { return membership_; }
  /// Grows by one each time membership() changes (members or addresses): a runtime that hands
  /// the configuration on (e.g. the peers' addresses to its transport) compares it with the
  /// version it last handed on. 0 while the configuration is empty.
  [[nodiscard]] std::uint64_t membership_version() const noexcept { return membership_version_; }
  /// Whom a transport must still reach and admit: membership() plus, as learners with their
  /// addresses, the members of the committed configuration and of every later one that it no
  /// longer lists. A removal is in effect once appended, but the member it removes (the leader
  /// itself, when it removes itself) can still be needed to commit it: refusing that member's
  /// connections before then would stall the change (docs/cluster.md, Removing a member).
  [[nodiscard]] Membership transport_membership() const;
  /// Changes whenever transport_membership() may have: with membership_version(), or when the
  /// committed configuration moves on (its config entry's index; 0 for the snapshot's).
  [[nodiscard]] std::pair<std::uint64_t, LogIndex> transport_membership_key() const noexcept;
  /// The configuration in effect at log position `index` (≥ the compaction point).
  [[nodiscard]] Membership membership_at(LogIndex index) const;
  [[nodiscard]] result<Term> term_at(LogIndex index) const { return log_.term(index); }
  [[nodiscard]] const Entry* entry_at(LogIndex index) const noexcept { return log_.at(index); }
  [[nodiscard]] const RaftLog& log() const noexcept { return log_; }
  [[nodiscard]] const RaftConfig& config() const noexcept { return config_; }
  [[nodiscard]] const CoreStats& stats() const noexcept { return stats_; }
  [[nodiscard]] NodeId transfer_target() const noexcept { return transferee_; }
  /// The leader's view of a follower (nullptr if not leader or not a member).
  [[nodiscard]] const Progress* progress(NodeId peer) const {
    auto it = progress_.find(peer);
    return role_ == Role::leader && it != progress_.end() ? &it->second : nullptr;
  }

 private:
  Core(const RaftConfig& config, CoreState state);

  // election (core_election.hpp)
  void become_follower(Term term, NodeId leader);
  void become_pre_candidate();
  void become_candidate();
  void become_leader();
  enum class Election : std::uint8_t { pre_vote, vote, transfer };
  void start_election(Election kind);
  void handle_vote_request(const Message& m);
  void handle_vote_response(const Message& m);
  void reset_election_timer();
  /// Refuses (and answers) a vote request this node may not grant, before any other rule.
  bool refuse_while_promised(const Message& m);
  [[nodiscard]] bool promotable() const noexcept { return membership_.is_voter(config_.id); }
  [[nodiscard]] std::uint64_t next_random() noexcept;
  void tick_election();
  void tick_heartbeat();

  // replication (core_replication.hpp)
  void handle_append(Message& m);
  void handle_append_response(const Message& m);
  void handle_heartbeat(const Message& m);
  void handle_heartbeat_response(const Message& m);
  void handle_snapshot(const Message& m);
  void handle_timeout_now(const Message& m);
  void append_local(Entry e);
  bool maybe_commit();
  void broadcast_appends();
  bool send_append(NodeId peer, Progress& pr, bool send_if_empty);
  void send_heartbeats(std::uint64_t round);
  void send(Message m);

  // reads (core_reads.hpp)
  void handle_read_index(const Message& m);
  void handle_read_index_response(const Message& m);
  void handle_propose(const Message& m);
  void handle_propose_response(const Message& m);
  void handle_leader_call(const Message& m);
  void handle_leader_call_response(const Message& m);
  void register_read(std::uint64_t id, NodeId from);
  void confirm_round(std::optional<std::uint64_t> sent_tick);
  void release_confirmed_reads();
  void drop_all_reads(const error& reason);
  [[nodiscard]] bool committed_in_term() const noexcept;
  /// The hard state as it may be persisted now: the commit index is capped at the durable log.
  [[nodiscard]] HardState durable_hard_state() const noexcept {
    HardState hs = hard_state();
    hs.commit = std::min(hs.commit, std::max(log_.persisted(), last_hard_state_.commit));
    return hs;
  }

  // membership (core_membership.hpp)
  void rebuild_membership();
  void on_log_rewritten_from(LogIndex from);
  void note_config_entries_from(LogIndex from);
  void apply_membership(const Membership& next);

  RaftConfig config_;
  Term term_ = 0;
  NodeId vote_ = no_node;
  NodeId leader_ = no_node;
  Role role_ = Role::follower;
  RaftLog log_;

  Membership membership_;
  std::uint64_t membership_version_ = 0;
  /// Config entries in the log after the compaction point, in index order.
  std::vector<std::pair<LogIndex, Membership>> config_history_;
  std::map<NodeId, Progress> progress_;
  std::map<NodeId, bool> votes_;

  std::uint64_t now_ = 0;
  std::uint32_t election_elapsed_ = 0;
  std::uint32_t heartbeat_elapsed_ = 0;
  std::uint32_t randomized_timeout_ = 0;
  std::uint64_t rng_state_ = 0;
  /// Ticks since this node last heard from a leader of its term (append, heartbeat, snapshot),
  /// saturating at election_ticks. Kept apart from leader_ and the term on purpose: a higher
  /// term learnt from any other message ends neither the promise nor this count. A node
  /// restarting at a term > 0 may have promised a leader before it stopped, so it starts at 0.
  std::uint32_t leader_contact_age_ = 0;
  /// A term known to be durable (the loaded one, or the term of a persisted entry: the hard
  /// state of a Ready is persisted with or before its entries). A heartbeat acknowledgement
  /// at a newer term waits for persistence, so a restart never forgets a term it promised in.
  Term durable_term_ = 0;

  NodeId transferee_ = no_node;
  std::uint32_t transfer_elapsed_ = 0;

  ReadRounds read_rounds_;
  /// Reads that arrived before this leader committed an entry of its term.
  std::vector<std::pair<std::uint64_t, NodeId>> reads_awaiting_commit_;
  std::uint64_t lease_until_ = 0;
  /// Set once TimeoutNow was sent: the target may win without waiting out anyone's election
  /// timeout, so the lease cannot be trusted for the rest of this term.
  bool lease_forfeited_ = false;

  std::size_t uncommitted_bytes_ = 0;
  bool step_down_on_commit_ = false;

  std::shared_ptr<const Snapshot> snapshot_data_;
  std::shared_ptr<const Snapshot> pending_snapshot_;

  Ready out_;
  /// Answers to the latest forwarded proposals by (sender, request id), oldest first out: a
  /// duplicated propose message is answered again instead of appending a second entry.
  std::map<std::pair<NodeId, std::uint64_t>, Message> forward_answers_;
  std::deque<std::pair<NodeId, std::uint64_t>> forward_answer_order_;
  static constexpr std::size_t max_forward_answers = 4096;
  HardState last_hard_state_;
  SoftState last_soft_state_;
  CoreStats stats_;
};

// ---- construction, inputs and Ready ----

inline result<Core> Core::create(const RaftConfig& config, CoreState state) {
  DENGINE_TRYV(config.validate());
  if (state.snapshot.index > 0 && !state.snapshot_data)
    return error(errc::invalid_argument, "core state: snapshot at index > 0 without its image");
  for (std::size_t i = 0; i < state.entries.size(); ++i) {
    if (state.entries[i].index != state.snapshot.index + 1 + i)
      return error(errc::invalid_argument,
                   "core state: log entries are not contiguous after the snapshot");
  }
  if (state.hard_state.vote != no_node && state.hard_state.term == 0)
    return error(errc::invalid_argument, "core state: a vote without a term");
  state.snapshot.membership.normalize();
  if (state.snapshot.membership.voters.empty() && state.entries.empty())
    return error(errc::invalid_argument, "core state: no voters in the initial membership");
  return Core(config, std::move(state));
}

inline Core::Core(const RaftConfig& config, CoreState state) : config_(config) {
  term_ = state.hard_state.term;
  vote_ = state.hard_state.vote;
  rng_state_ = config_.random_seed != 0 ? config_.random_seed : config_.id * 0x9e3779b97f4a7c15ULL;
  snapshot_data_ = std::move(state.snapshot_data);
  const auto committed = state.hard_state.commit;
  log_.restore(state.snapshot, std::move(state.entries), committed, state.applied);
  rebuild_membership();
  last_hard_state_ = hard_state();
  durable_term_ = term_;
  // At term 0 no acknowledgement was ever sent (they wait for their term to be durable), so
  // there is no promise to keep.
  leader_contact_age_ = term_ > 0 ? 0 : config_.election_ticks;
  reset_election_timer();
}

inline void Core::tick() {
  ++now_;
  if (role_ == Role::leader) {
    tick_heartbeat();
  } else {
    tick_election();
  }
}

inline result<void> Core::step(Message m) {
  if (m.from == no_node || m.from == config_.id)
    return error(errc::invalid_argument, "raft message without a valid sender");
  if (m.to != config_.id) return error(errc::invalid_argument, "raft message for another node");

  if (m.term > term_) {
    if (m.type == MessageType::vote || m.type == MessageType::pre_vote) {
      const bool transfer = m.type == MessageType::vote && m.context == vote_context_transfer;
      // Leader stickiness: while we keep a promise to a leader (or lead), ignore campaigns,
      // without even learning their term. This is what makes the lease safe and keeps a
      // rejoining or removed node from disrupting the cluster.
      if (!transfer && (role_ == Role::leader ? config_.check_quorum : promised_leader()))
        return success();
    }
    if (m.type == MessageType::pre_vote ||
        (m.type == MessageType::pre_vote_response && !m.reject)) {
      // A pre-vote changes nobody's term; a granted pre-vote carries the term we would run at.
    } else if (m.type == MessageType::append || m.type == MessageType::heartbeat ||
               m.type == MessageType::snapshot) {
      become_follower(m.term, m.from);
    } else {
      become_follower(m.term, no_node);
    }
  } else if (m.term < term_) {
    if ((config_.check_quorum || config_.pre_vote) &&
        (m.type == MessageType::append || m.type == MessageType::heartbeat)) {
      // A stale leader (e.g. just healed from a partition) learns our term and steps down;
      // without this, a node whose term rose behind a partition could never rejoin.
      send({.type = MessageType::append_response, .to = m.from, .term = term_});
    } else if (m.type == MessageType::propose) {
      // Not appended: the sender may forward it again, to the leader our term names.
      send({.type = MessageType::propose_response,
            .to = m.from,
            .term = term_,
            .reject = true,
            .reject_hint = static_cast<LogIndex>(errc::not_leader),
            .context = m.context});
    } else if (m.type == MessageType::propose_response) {
      // True whatever our term now: the entry was (or was not) appended at (index, log_term).
      handle_propose_response(m);
    } else if (m.type == MessageType::leader_call) {
      answer_leader_call(m.from, m.context, std::nullopt);  // ask the leader our term names
    } else if (m.type == MessageType::leader_call_response) {
      handle_leader_call_response(m);  // served by the leader of its term: still an answer
    } else if (m.type == MessageType::pre_vote || m.type == MessageType::vote) {
      // Tell a stale candidate our term (Raft §5.1), or it may campaign forever at a term no
      // one answers — e.g. when it is not a voter in our configuration, so we never send to it.
      send({.type = m.type == MessageType::vote ? MessageType::vote_response
                                                : MessageType::pre_vote_response,
            .to = m.from,
            .term = term_,
            .reject = true});
    }
    return success();
  }

  switch (m.type) {
    case MessageType::vote:
    case MessageType::pre_vote: handle_vote_request(m); break;
    case MessageType::vote_response:
    case MessageType::pre_vote_response: handle_vote_response(m); break;
    case MessageType::append:
      if (role_ == Role::leader) break;  // same term, two leaders: impossible; ignore
      if (role_ != Role::follower) become_follower(term_, m.from);
      handle_append(m);
      break;
    case MessageType::heartbeat:
      if (role_ == Role::leader) break;
      if (role_ != Role::follower) become_follower(term_, m.from);
      handle_heartbeat(m);
      break;
    case MessageType::snapshot:
      if (role_ == Role::leader) break;
      if (role_ != Role::follower) become_follower(term_, m.from);
      handle_snapshot(m);
      break;
    case MessageType::append_response:
      if (role_ == Role::leader) handle_append_response(m);
      break;
    case MessageType::heartbeat_response:
      if (role_ == Role::leader) handle_heartbeat_response(m);
      break;
    case MessageType::timeout_now:
      if (role_ == Role::follower) handle_timeout_now(m);
      break;
    case MessageType::read_index: handle_read_index(m); break;
    case MessageType::read_index_response: handle_read_index_response(m); break;
    case MessageType::propose: handle_propose(m); break;
    case MessageType::propose_response: handle_propose_response(m); break;
    case MessageType::leader_call: handle_leader_call(m); break;
    case MessageType::leader_call_response: handle_leader_call_response(m); break;
  }
  return success();
}

inline result<LogIndex> Core::propose(std::string data) {
  if (role_ != Role::leader) return error::not_leader(leader_);
  if (transferee_ != no_node)
    return error(errc::proposal_dropped, "leadership transfer in progress");
  DENGINE_TRYV(config_.check_entry_size("entry", data.size()));
  const std::size_t size = data.size() + 24;
  if (uncommitted_bytes_ + size > config_.max_uncommitted_bytes && uncommitted_bytes_ > 0)
    return error(errc::too_busy, "uncommitted entries exceed max_uncommitted_bytes");
  const LogIndex index = log_.last_index() + 1;
  append_local({term_, index, EntryType::normal, std::move(data)});
  return index;
}

inline bool Core::has_ready() const {
  if (!out_.empty() || log_.has_unstable() || log_.has_committed_to_apply() || pending_snapshot_)
    return true;
  if (durable_hard_state() != last_hard_state_) return true;
  if (SoftState{leader_, role_} != last_soft_state_) return true;
  if (role_ == Role::leader) {
    if (read_rounds_.needs_round()) return true;
    for (const auto& [peer, pr] : progress_) {
      if (peer == config_.id || pr.paused()) continue;
      if (pr.next <= log_.last_index() || pr.sent_commit < log_.committed()) return true;
    }
  }
  return false;
}

inline Ready Core::ready() {
  if (role_ == Role::leader) {
    if (read_rounds_.needs_round()) {
      // Reads that arrived since the last Ready share this one round (ReadIndex batching).
      heartbeat_elapsed_ = 0;
      send_heartbeats(read_rounds_.start_round(now_));
    }
    broadcast_appends();
  }
  Ready rd = std::move(out_);
  out_ = Ready{};
  if (SoftState soft{leader_, role_}; soft != last_soft_state_) {
    rd.soft_state = soft;
    last_soft_state_ = soft;
  }
  if (pending_snapshot_) rd.snapshot = std::move(pending_snapshot_);
  rd.entries = log_.take_unstable();
  // The durable commit index never runs ahead of the durable log: a restart must not find a
  // commit index past its last entry.
  if (HardState hs = durable_hard_state(); hs != last_hard_state_) {
    rd.hard_state = hs;
    last_hard_state_ = hs;
  }
  rd.committed_entries = log_.take_committed();
  return rd;
}

inline void Core::on_persisted(LogIndex index, Term t) {
  // Entries of term t reached the log only after the node's term was ≥ t, and a Ready's hard
  // state is persisted with or before its entries: a term ≥ t is durable now.
  durable_term_ = std::max(durable_term_, t);
  if (!log_.mark_persisted(index, t)) return;
  if (role_ == Role::leader) {
    if (auto it = progress_.find(config_.id); it != progress_.end())
      it->second.maybe_update(log_.persisted());
    maybe_commit();
  }
}

inline void Core::on_snapshot_persisted(LogIndex index) { log_.mark_snapshot_persisted(index); }

inline result<void> Core::compact(std::shared_ptr<const Snapshot> snapshot) {
  if (!snapshot) return error(errc::invalid_argument, "compact: no snapshot");
  const auto& meta = snapshot->meta;
  if (meta.index <= log_.snapshot().index) return success();  // older than what we have
  if (meta.index > log_.applied_handed())
    return error(errc::invalid_argument, "compact: snapshot index " + std::to_string(meta.index) +
                                             " is beyond the applied index");
  if (!log_.match_term(meta.index, meta.term))
    return error(errc::invalid_argument, "compact: snapshot term does not match the log");
  log_.compact(meta);
  std::erase_if(config_history_, [&](const auto& c) { return c.first <= meta.index; });
  snapshot_data_ = std::move(snapshot);
  return success();
}

inline std::uint64_t Core::next_random() noexcept {
  // splitmix64: tiny, fast, and identical on every platform (unlike std distributions).
  std::uint64_t z = (rng_state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

inline void Core::send(Message m) {
  m.from = config_.id;
  if (m.term == 0) m.term = term_;
#if defined(DENGINE_TEST_HOOKS)
  // Injected bug (core/test_hooks.hpp): a leader tells each follower that everything it sends
  // it, or the follower holds, is committed.
  if (test_hooks::switches().commit_uncommitted && role_ == Role::leader) {
    if (m.type == MessageType::append) m.commit = std::max(m.commit, m.index + m.entries.size());
    if (m.type == MessageType::heartbeat)
      if (const Progress* pr = progress(m.to)) m.commit = std::max(m.commit, pr->match);
  }
#endif
  switch (m.type) {
    // These promise the receiver something about our durable state (a vote, a matching log),
    // or, for a candidate's requests, ask for votes that count its own not-yet-durable vote.
    case MessageType::append_response:
    case MessageType::vote_response:
    case MessageType::vote: out_.messages_after_persist.push_back(std::move(m)); break;
    // A heartbeat acknowledgement renews the leader's lease, i.e. promises not to vote for
    // anyone else for an election timeout. A restart must not forget that promise: it leaves
    // once the term it carries is durable (a restarted node at a term > 0 keeps its promise).
    case MessageType::heartbeat_response:
      if (m.term > durable_term_) {
        out_.messages_after_persist.push_back(std::move(m));
      } else {
        out_.messages.push_back(std::move(m));
      }
      break;
    default: out_.messages.push_back(std::move(m));
  }
}

}  // namespace dengine::raft

#include "dengine/raft/core_election.hpp"
#include "dengine/raft/core_forwarding.hpp"
#include "dengine/raft/core_membership.hpp"
#include "dengine/raft/core_reads.hpp"
#include "dengine/raft/core_replication.hpp"
