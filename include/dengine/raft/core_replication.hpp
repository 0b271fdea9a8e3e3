#pragma once
/// Log replication: appends and their responses (with fast backtracking), heartbeats, snapshot
/// installation, commitment, and leader transfer's TimeoutNow. Part of Core (core.hpp).

#include "dengine/raft/core.hpp"

namespace dengine::raft {

inline void Core::append_local(Entry e) {
  uncommitted_bytes_ += entry_size(e);
  const bool is_config = e.type == EntryType::config_change;
  const LogIndex index = e.index;
  log_.append(std::move(e));
  if (is_config) note_config_entries_from(index);
  // A single voter commits as soon as its own write is durable (on_persisted).
}

inline bool Core::maybe_commit() {
  std::vector<LogIndex> matches;
  matches.reserve(membership_.voters.size());
  for (NodeId voter : membership_.voters) {
    if (voter == config_.id) {
      matches.push_back(log_.persisted());
    } else {
      auto it = progress_.find(voter);
      matches.push_back(it == progress_.end() ? 0 : it->second.match);
    }
  }
  if (matches.empty()) return false;
  const LogIndex index = quorum_value(matches);
  // Only an entry of the current term is committed by counting replicas (Raft §5.4.2, the
  // figure-8 case); earlier ones commit with it.
  if (index <= log_.committed() || log_.term_or_zero(index) != term_) return false;
  const bool first_in_term = !committed_in_term();
  for (LogIndex i = log_.committed() + 1; i <= index; ++i) {
    const std::size_t size = entry_size(*log_.at(i));
    uncommitted_bytes_ -= std::min(uncommitted_bytes_, size);
  }
  log_.commit_to(index);
  if (first_in_term) {
    auto waiting = std::move(reads_awaiting_commit_);
    reads_awaiting_commit_.clear();
    for (auto [id, from] : waiting) register_read(id, from);
  }
  if (step_down_on_commit_ && (config_history_.empty() || config_history_.back().first <= index)) {
    // Removed (or demoted) leader: it led until the change committed; now it steps down.
    become_follower(term_, no_node);
  }
  return true;
}

inline void Core::broadcast_appends() {
  for (auto& [peer, pr] : progress_) {
    if (peer == config_.id) continue;
    send_append(peer, pr, pr.sent_commit < log_.committed());
  }
}

inline bool Core::send_append(NodeId peer, Progress& pr, bool send_if_empty) {
  if (pr.paused()) return false;
  bool sent = false;
  for (;;) {
    const LogIndex prev = pr.next - 1;
    auto prev_term = log_.term(prev);
    if (!prev_term) {
      // The entries this follower needs were compacted away: send the snapshot instead.
      if (!snapshot_data_) return sent;
      send({.type = MessageType::snapshot, .to = peer, .snapshot = snapshot_data_});
      pr.become_snapshot(snapshot_data_->meta.index, now_);
      ++stats_.snapshots_sent;
      return true;
    }
    std::vector<Entry> entries;
    if (pr.next <= log_.last_index())
      entries = log_.slice(pr.next, log_.last_index() + 1, config_.max_append_bytes,
                           config_.max_append_entries);
    if (entries.empty() && !send_if_empty) return sent;
    Message m{.type = MessageType::append,
              .to = peer,
              .log_term = prev_term.value(),
              .index = prev,
              .entries = std::move(entries),
              .commit = log_.committed()};
    pr.sent_commit = log_.committed();
    const bool has_entries = !m.entries.empty();
    if (has_entries && pr.state == Progress::State::replicate) {
      const LogIndex last = m.entries.back().index;
      pr.inflights.add(last, payload_size(m));
      pr.next = last + 1;
    } else if (pr.state == Progress::State::probe) {
      pr.probe_sent = true;  // one probe at a time until it is answered
    }
    send(std::move(m));
    sent = true;
    // Pipelining: in replicate state keep sending until the window is full or all is sent.
    if (!has_entries || pr.state != Progress::State::replicate || pr.paused() ||
        pr.next > log_.last_index())
      return true;
    send_if_empty = false;
  }
}

inline void Core::send_heartbeats(std::uint64_t round) {
  for (auto& [peer, pr] : progress_) {
    if (peer == config_.id) continue;
    send({.type = MessageType::heartbeat,
          .to = peer,
          // Never tell a follower to commit beyond what it is known to hold.
          .commit = std::min(pr.match, log_.committed()),
          .context = round});
  }
  // With no other voter the round confirms itself.
  confirm_round(read_rounds_.try_confirm(config_.id, membership_.voters));
}

inline void Core::handle_append(Message& m) {
  election_elapsed_ = 0;
  leader_ = m.from;
  leader_contact_age_ = 0;
  if (m.index < log_.committed()) {
    // Everything up to our commit index matches the leader already.
    send({.type = MessageType::append_response, .to = m.from, .index = log_.committed()});
    return;
  }
  if (log_.match_term(m.index, m.log_term)) {
    const LogIndex last_new = m.index + m.entries.size();
    auto changed = log_.append_after(m.index, m.entries);
    if (!changed) return;  // a leader asked to overwrite a committed entry: refuse
    if (changed.value() != 0) on_log_rewritten_from(changed.value());
    log_.commit_to(std::min(m.commit, last_new));
    send({.type = MessageType::append_response, .to = m.from, .index = last_new});
    return;
  }
  // Fast backtracking: tell the leader the last index whose term is ≤ the term it tried, so it
  // skips a whole conflicting term per round trip instead of one entry.
  const LogIndex hint =
      log_.find_conflict_by_term(std::min(m.index, log_.last_index()), m.log_term);
  send({.type = MessageType::append_response,
        .to = m.from,
        .log_term = log_.term_or_zero(hint),
        .index = m.index,
        .reject = true,
        .reject_hint = hint});
}

inline void Core::handle_append_response(const Message& m) {
  auto it = progress_.find(m.from);
  if (it == progress_.end()) return;
  Progress& pr = it->second;
  pr.recent_active = true;
  if (m.reject) {
    ++stats_.append_rejections;
    LogIndex next_probe = m.reject_hint;
    if (m.log_term > 0) next_probe = log_.find_conflict_by_term(m.reject_hint, m.log_term);
    if (pr.maybe_decrease_to(m.index, next_probe)) {
      if (pr.state == Progress::State::replicate) pr.become_probe();
      send_append(m.from, pr, true);
    }
    return;
  }
  if (!pr.maybe_update(m.index)) return;
  switch (pr.state) {
    case Progress::State::probe: pr.become_replicate(); break;
    case Progress::State::snapshot:
      if (pr.match >= pr.pending_snapshot) {
        pr.become_probe();
        pr.become_replicate();
      }
      break;
    case Progress::State::replicate: pr.inflights.free_up_to(m.index); break;
  }
  maybe_commit();
  if (role_ == Role::leader && m.from == transferee_ && pr.match == log_.last_index()) {
    lease_forfeited_ = true;
    send({.type = MessageType::timeout_now, .to = m.from});
  }
}

inline void Core::handle_heartbeat(const Message& m) {
  election_elapsed_ = 0;
  leader_ = m.from;
  leader_contact_age_ = 0;
  log_.commit_to(m.commit);
  send({.type = MessageType::heartbeat_response, .to = m.from, .context = m.context});
}

inline void Core::handle_heartbeat_response(const Message& m) {
  auto it = progress_.find(m.from);
  if (it == progress_.end()) return;
  Progress& pr = it->second;
  pr.recent_active = true;
  pr.probe_sent = false;  // the follower is reachable: probe again
  if (pr.state == Progress::State::replicate && pr.inflights.full()) pr.inflights.free_first_one();
  if (membership_.is_voter(m.from))
    confirm_round(read_rounds_.ack(m.from, m.context, config_.id, membership_.voters));
  // Appends may have been lost while it was unreachable; an empty append at `next` makes it
  // either acknowledge or reject, which resynchronizes the progress.
  if (role_ == Role::leader && pr.match < log_.last_index()) send_append(m.from, pr, true);
}

inline void Core::handle_snapshot(const Message& m) {
  election_elapsed_ = 0;
  leader_ = m.from;
  leader_contact_age_ = 0;
  if (!m.snapshot) return;
  const SnapshotMeta& meta = m.snapshot->meta;
  if (meta.index <= log_.committed()) {
    send({.type = MessageType::append_response, .to = m.from, .index = log_.committed()});
    return;
  }
  if (log_.match_term(meta.index, meta.term)) {
    // We hold the snapshot's last entry: just fast-forward the commit index.
    log_.commit_to(meta.index);
    send({.type = MessageType::append_response, .to = m.from, .index = log_.committed()});
    return;
  }
  log_.reset_to_snapshot(meta);
  pending_snapshot_ = m.snapshot;
  snapshot_data_ = m.snapshot;
  config_history_.clear();
  apply_membership(meta.membership);
  send({.type = MessageType::append_response, .to = m.from, .index = meta.index});
}

inline void Core::handle_timeout_now(const Message& /*m*/) {
  // The leader asked us to take over: campaign at once, skipping pre-vote, and ask voters to
  // grant even though they still hear from the (departing) leader.
  if (promotable()) start_election(Election::transfer);
}

inline result<void> Core::transfer_leader(NodeId target) {
  if (role_ != Role::leader) return error::not_leader(leader_);
  if (target == config_.id) return success();
  if (!membership_.is_voter(target))
    return error(errc::invalid_argument,
                 "transfer target " + std::to_string(target) + " is not a voter");
  if (transferee_ == target) return success();
  transferee_ = target;
  transfer_elapsed_ = 0;
  auto& pr = progress_.at(target);
  if (pr.match == log_.last_index()) {
    lease_forfeited_ = true;
    send({.type = MessageType::timeout_now, .to = target});
  } else {
    send_append(target, pr, true);
  }
  return success();
}

}  // namespace dengine::raft
