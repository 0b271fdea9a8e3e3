#pragma once
/// Membership: tracking the configuration in effect (the latest config entry in the log, or the
/// snapshot's), reverting it when a config entry is truncated, and proposing changes.
/// Part of Core (core.hpp).

#include <string>
#include <string_view>
#include <utility>

#include "dengine/raft/core.hpp"

namespace dengine::raft {

inline Membership Core::membership_at(LogIndex index) const {
  const Membership* found = &log_.snapshot().membership;
  for (const auto& [at, m] : config_history_) {
    if (at > index) break;
    found = &m;
  }
  return *found;
}

inline std::pair<std::uint64_t, LogIndex> Core::transport_membership_key() const noexcept {
  LogIndex committed_config = 0;
  for (const auto& entry : config_history_) {
    if (entry.first > log_.committed()) break;
    committed_config = entry.first;
  }
  return {membership_version_, committed_config};
}

inline Membership Core::transport_membership() const {
  Membership out = membership_;
  const auto keep_members_of = [&out](const Membership& m) {
    for (NodeId id : m.all()) {
      if (out.contains(id)) continue;
      out.learners.push_back(id);
      out.normalize();  // contains() needs the lists sorted
      if (const std::string_view address = m.address_of(id); !address.empty())
        out.addresses.emplace(id, std::string(address));
    }
  };
  keep_members_of(membership_at(log_.committed()));
  for (const auto& [at, m] : config_history_)
    if (at > log_.committed()) keep_members_of(m);
  return out;
}

inline void Core::rebuild_membership() {
  config_history_.clear();
  note_config_entries_from(log_.first_index());
}

inline void Core::on_log_rewritten_from(LogIndex from) {
  // Entries from `from` on were replaced: forget config entries among them, then re-read.
  std::erase_if(config_history_, [&](const auto& c) { return c.first >= from; });
  note_config_entries_from(from);
}

inline void Core::note_config_entries_from(LogIndex from) {
  for (LogIndex i = std::max(from, log_.first_index()); i <= log_.last_index(); ++i) {
    const Entry* e = log_.at(i);
    if (e->type != EntryType::config_change) continue;
    if (!config_history_.empty() && config_history_.back().first >= i) continue;
    const Membership& base =
        config_history_.empty() ? log_.snapshot().membership : config_history_.back().second;
    auto change = decode_config_change(e->data);
    if (!change) continue;  // never produced by a leader; kept as a no-op for determinism
    auto next = apply_config_change(base, change.value());
    if (!next) continue;  // same: every replica skips it identically
    config_history_.emplace_back(i, std::move(next).value());
  }
  apply_membership(config_history_.empty() ? log_.snapshot().membership
                                           : config_history_.back().second);
}

inline void Core::apply_membership(const Membership& next) {
  if (next != membership_) ++membership_version_;
  membership_ = next;
  if (role_ == Role::leader) {
    std::erase_if(progress_, [&](const auto& p) { return !membership_.contains(p.first); });
    for (NodeId member : membership_.all()) {
      auto [it, added] = progress_.try_emplace(
          member, log_.last_index() + 1, config_.max_inflight_messages, config_.max_inflight_bytes);
      if (added && member == config_.id) it->second.match = log_.persisted();
    }
    // A leader outside the voters keeps leading until the change commits (Raft thesis §4.2.2).
    step_down_on_commit_ = !membership_.is_voter(config_.id);
    if (transferee_ != no_node && !membership_.is_voter(transferee_)) transferee_ = no_node;
    // A removed voter may have been the one a read round waited for.
    confirm_round(read_rounds_.try_confirm(config_.id, membership_.voters));
  } else if (role_ != Role::follower && !membership_.is_voter(config_.id)) {
    become_follower(term_, no_node);
  }
}

inline result<LogIndex> Core::propose_config_change(const ConfigChange& change) {
  if (role_ != Role::leader) return error::not_leader(leader_);
  if (transferee_ != no_node)
    return error(errc::proposal_dropped, "leadership transfer in progress");
  if (!committed_in_term())
    return error(errc::config_change_pending,
                 "the leader has not committed an entry of its term yet");
  if (!config_history_.empty() && config_history_.back().first > log_.committed())
    return error(errc::config_change_pending, "config entry at index " +
                                                  std::to_string(config_history_.back().first) +
                                                  " is not committed yet");
  DENGINE_TRYV(apply_config_change(membership_, change));
  const LogIndex index = log_.last_index() + 1;
  append_local({term_, index, EntryType::config_change, encode_config_change(change)});
  return index;
}

}  // namespace dengine::raft
