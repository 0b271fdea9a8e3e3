#pragma once
/// Elections: role transitions, pre-vote and vote handling, election and heartbeat timers,
/// check-quorum. Part of Core (core.hpp); member definitions only.

#include "dengine/raft/core.hpp"

namespace dengine::raft {

inline void Core::reset_election_timer() {
  election_elapsed_ = 0;
  // Randomized in [election_ticks, 2 * election_ticks): candidates rarely collide.
  randomized_timeout_ =
      config_.election_ticks + static_cast<std::uint32_t>(next_random() % config_.election_ticks);
}

inline bool Core::promised_leader() const noexcept {
  // Without check-quorum a leader does not step down when it loses its quorum, so stickiness
  // would only delay elections; and there is no lease to protect (lease_reads needs it).
  return config_.check_quorum && role_ != Role::leader &&
         leader_contact_age_ < config_.election_ticks;
}

inline bool Core::refuse_while_promised(const Message& m) {
  const bool transfer = m.type == MessageType::vote && m.context == vote_context_transfer;
  // Granting again to the candidate we voted for in this term promises nothing new.
  if (transfer || vote_ == m.from || !promised_leader()) return false;
  send({.type = m.type == MessageType::vote ? MessageType::vote_response
                                            : MessageType::pre_vote_response,
        .to = m.from,
        .term = term_,
        .reject = true});
  return true;
}

inline void Core::become_follower(Term term, NodeId leader) {
  const bool was_leader = role_ == Role::leader;
  if (term > term_) {
    term_ = term;
    vote_ = no_node;
  }
  role_ = Role::follower;
  if (leader != leader_ && leader != no_node) ++stats_.leader_changes;
  leader_ = leader;
  votes_.clear();
  reset_election_timer();
  if (was_leader) {
    transferee_ = no_node;
    lease_until_ = 0;
    lease_forfeited_ = false;
    uncommitted_bytes_ = 0;
    step_down_on_commit_ = false;
    drop_all_reads(error::not_leader(leader));
  }
}

inline void Core::become_pre_candidate() {
  // Term and vote stay: a pre-vote must not disturb anyone if it fails.
  role_ = Role::pre_candidate;
  leader_ = no_node;
  votes_.clear();
}

inline void Core::become_candidate() {
  ++term_;
  vote_ = config_.id;
  role_ = Role::candidate;
  leader_ = no_node;
  votes_.clear();
  reset_election_timer();
}

inline void Core::become_leader() {
  role_ = Role::leader;
  leader_ = config_.id;
  ++stats_.leader_changes;
  transferee_ = no_node;
  lease_until_ = 0;
  lease_forfeited_ = false;
  uncommitted_bytes_ = 0;
  heartbeat_elapsed_ = 0;
  election_elapsed_ = 0;
  // A leader promises no one (a transfer target takes over right after hearing its leader);
  // once it steps down it may vote at once: its own lease ended with its leadership.
  leader_contact_age_ = config_.election_ticks;
  progress_.clear();
  for (NodeId member : membership_.all()) {
    auto [it, _] = progress_.try_emplace(member, log_.last_index() + 1,
                                         config_.max_inflight_messages, config_.max_inflight_bytes);
    if (member == config_.id) {
      it->second.match = log_.persisted();
      it->second.become_replicate();
      it->second.recent_active = true;
    }
  }
  step_down_on_commit_ = !membership_.is_voter(config_.id);
  // Entries of earlier terms commit only together with one of the current term (Raft §5.4.2).
  append_local({term_, log_.last_index() + 1, EntryType::noop, {}});
}

inline void Core::campaign() {
  if (role_ == Role::leader) return;
  // Campaigning is voting for ourselves: not while we keep a promise to a leader.
  if (promised_leader() && membership_.voters != std::vector<NodeId>{config_.id}) return;
  start_election(config_.pre_vote ? Election::pre_vote : Election::vote);
}

inline void Core::start_election(Election kind) {
  if (!promotable()) return;
  ++stats_.elections_started;
  const bool pre = kind == Election::pre_vote;
  const bool transfer = kind == Election::transfer;
  if (pre) {
    become_pre_candidate();
  } else {
    become_candidate();
  }
  votes_[config_.id] = true;
  if (tally(membership_.voters.size(), 1, 0) == VoteResult::won) {
    // A single-voter cluster wins at once.
    if (pre) {
      start_election(Election::vote);
    } else {
      become_leader();
    }
    return;
  }
  for (NodeId voter : membership_.voters) {
    if (voter == config_.id) continue;
    send({.type = pre ? MessageType::pre_vote : MessageType::vote,
          .to = voter,
          .term = pre ? term_ + 1 : term_,
          .log_term = log_.last_term(),
          .index = log_.last_index(),
          .context = transfer ? vote_context_transfer : 0});
  }
}

inline void Core::handle_vote_request(const Message& m) {
  // A request at our own term reaches here even while we keep a promise (e.g. we learnt the
  // candidate's term from some other message): the promise still holds.
  if (refuse_while_promised(m)) return;
  const bool pre = m.type == MessageType::pre_vote;
  // We may vote for whom we voted for already, for anyone if we voted for nobody and know no
  // leader in this term, and grant any pre-vote for a future term.
  const bool can_vote =
      vote_ == m.from || (vote_ == no_node && leader_ == no_node) || (pre && m.term > term_);
  const MessageType response = pre ? MessageType::pre_vote_response : MessageType::vote_response;
  if (can_vote && log_.is_up_to_date(m.index, m.log_term)) {
    // A granted pre-vote carries the candidate's prospective term so it is not seen as stale.
    send({.type = response, .to = m.from, .term = pre ? m.term : term_, .reject = false});
    if (!pre) {
      election_elapsed_ = 0;
      vote_ = m.from;
    }
  } else {
#if defined(DENGINE_TEST_HOOKS)
    // Injected bug (core/test_hooks.hpp): grant although this term's vote went to another.
    if (test_hooks::switches().vote_twice && !pre && vote_ != no_node && vote_ != m.from) {
      send({.type = response, .to = m.from, .term = term_, .reject = false});
      return;
    }
#endif
    send({.type = response, .to = m.from, .term = term_, .reject = true});
  }
}

inline void Core::handle_vote_response(const Message& m) {
  const bool expected =
      (role_ == Role::pre_candidate && m.type == MessageType::pre_vote_response) ||
      (role_ == Role::candidate && m.type == MessageType::vote_response);
  if (!expected || !membership_.is_voter(m.from)) return;
  votes_.try_emplace(m.from, !m.reject);
  std::size_t granted = 0;
  std::size_t rejected = 0;
  for (NodeId voter : membership_.voters) {
    auto it = votes_.find(voter);
    if (it == votes_.end()) continue;
    (it->second ? granted : rejected) += 1;
  }
  switch (tally(membership_.voters.size(), granted, rejected)) {
    case VoteResult::won:
      if (role_ == Role::pre_candidate) {
        start_election(Election::vote);
      } else {
        become_leader();
      }
      break;
    case VoteResult::lost: become_follower(term_, no_node); break;
    case VoteResult::pending: break;
  }
}

inline void Core::tick_election() {
  ++election_elapsed_;
  if (leader_contact_age_ < config_.election_ticks) ++leader_contact_age_;
  if (promotable() && election_elapsed_ >= randomized_timeout_) {
    election_elapsed_ = 0;
    start_election(config_.pre_vote ? Election::pre_vote : Election::vote);
  }
}

inline void Core::tick_heartbeat() {
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (election_elapsed_ >= config_.election_ticks) {
    election_elapsed_ = 0;
    if (config_.check_quorum) {
      std::size_t active = 0;
      for (NodeId voter : membership_.voters) {
        auto it = progress_.find(voter);
        if (voter == config_.id || (it != progress_.end() && it->second.recent_active)) ++active;
      }
      if (active < majority(membership_.voters.size())) {
        // We cannot reach a quorum: step down so that clients go elsewhere.
        become_follower(term_, no_node);
        return;
      }
      for (auto& [peer, pr] : progress_)
        if (peer != config_.id) pr.recent_active = false;
    }
  }
  if (transferee_ != no_node && ++transfer_elapsed_ >= config_.election_ticks) {
    transferee_ = no_node;  // the target did not take over in time: resume normal service
  }
  for (auto& [peer, pr] : progress_) {
    // A snapshot message may be lost: fall back to probing, which resends it.
    if (pr.state == Progress::State::snapshot &&
        now_ - pr.snapshot_sent_at >= 2ULL * config_.election_ticks)
      pr.become_probe();
  }
  if (heartbeat_elapsed_ >= config_.heartbeat_ticks) {
    heartbeat_elapsed_ = 0;
    send_heartbeats(read_rounds_.start_round(now_));
  }
}

}  // namespace dengine::raft
