#pragma once
/// Reads: ReadIndex (batched into heartbeat rounds, forwarded from followers) and lease reads.
/// Part of Core (core.hpp).

#include "dengine/raft/core.hpp"

namespace dengine::raft {

inline bool Core::committed_in_term() const noexcept {
  return log_.term_or_zero(log_.committed()) == term_;
}

inline result<void> Core::read_index(std::uint64_t request_id) {
  if (role_ == Role::leader) {
    if (read_rounds_.pending_count() + reads_awaiting_commit_.size() >= config_.max_pending_reads)
      return error(errc::too_busy, "pending reads exceed max_pending_reads");
    register_read(request_id, config_.id);
    return success();
  }
  if (leader_ == no_node || role_ != Role::follower) return error::not_leader(leader_);
  send({.type = MessageType::read_index, .to = leader_, .context = request_id});
  return success();
}

inline void Core::register_read(std::uint64_t id, NodeId from) {
  // A new leader's commit index may lag entries committed by its predecessor: it is current
  // only once an entry of this term commits (the no-op appended on election).
  if (!committed_in_term()) {
    reads_awaiting_commit_.emplace_back(id, from);
    return;
  }
  read_rounds_.add(id, from, log_.committed());
}

inline void Core::handle_read_index(const Message& m) {
  if (role_ != Role::leader ||
      read_rounds_.pending_count() + reads_awaiting_commit_.size() >= config_.max_pending_reads) {
    send({.type = MessageType::read_index_response,
          .to = m.from,
          .reject = true,
          .context = m.context});
    return;
  }
  register_read(m.context, m.from);
}

inline void Core::handle_read_index_response(const Message& m) {
  if (m.reject) {
    out_.dropped_reads.push_back({m.context, error::not_leader(leader_)});
  } else {
    out_.read_states.push_back({m.context, m.index});
  }
}

inline void Core::confirm_round(std::optional<std::uint64_t> sent_tick) {
  if (!sent_tick) return;
  lease_until_ = std::max(lease_until_, *sent_tick + config_.effective_lease_ticks());
  for (const PendingRead& r : read_rounds_.take_confirmed()) {
    if (r.from == config_.id) {
      out_.read_states.push_back({r.id, r.index});
    } else {
      send({.type = MessageType::read_index_response,
            .to = r.from,
            .index = r.index,
            .context = r.id});
    }
  }
}

inline void Core::drop_all_reads(const error& reason) {
  auto fail = [&](std::uint64_t id, NodeId from) {
    if (from == config_.id) {
      out_.dropped_reads.push_back({id, reason});
    } else {
      send({.type = MessageType::read_index_response, .to = from, .reject = true, .context = id});
    }
  };
  for (const PendingRead& r : read_rounds_.reset()) fail(r.id, r.from);
  for (auto [id, from] : reads_awaiting_commit_) fail(id, from);
  reads_awaiting_commit_.clear();
}

inline result<LogIndex> Core::lease_read() const {
  if (role_ != Role::leader) return error::not_leader(leader_);
  if (!config_.lease_reads)
    return error(errc::invalid_argument, "lease reads are disabled in the config");
  if (transferee_ != no_node || lease_forfeited_)
    return error(errc::unavailable, "leadership transfer in progress: no lease");
  if (!committed_in_term())
    return error(errc::unavailable, "leader has not committed in its term yet");
  if (now_ >= lease_until_) return error(errc::unavailable, "leader lease not held");
  return log_.committed();
}

inline std::uint64_t Core::lease_ticks_left() const noexcept {
  // The same conditions as lease_read(), without building an error.
  if (role_ != Role::leader || !config_.lease_reads || transferee_ != no_node || lease_forfeited_ ||
      !committed_in_term() || now_ >= lease_until_)
    return 0;
  return lease_until_ - now_;
}

}  // namespace dengine::raft
