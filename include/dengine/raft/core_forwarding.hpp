#pragma once
/// Forwarded proposals: a follower hands a client's command to the leader, which appends it as
/// if proposed there and answers with the entry's (index, term) or why it refused. The follower
/// then waits for that entry to commit like any proposal of its own (it applies the same log).
/// A proposal is appended at most once per (sender, request id) within the last
/// max_forward_answers acceptances of this core: a duplicated message gets the same answer.
///
/// Leader calls: a follower hands the leader a request that needs the leader but not the log (a
/// lease keep-alive). The core only carries it: the leader's runtime answers it through its
/// service (Ready::leader_calls → answer_leader_call), and the answer comes back to the
/// follower's runtime as a Ready::leader_call_answers entry. Part of Core (core.hpp).

#include <optional>
#include <string>
#include <utility>

#include "dengine/raft/core.hpp"

namespace dengine::raft {

inline result<void> Core::forward_proposal(std::uint64_t request_id, std::string data) {
  if (role_ != Role::follower || leader_ == no_node) return error::not_leader(leader_);
  DENGINE_TRYV(config_.check_entry_size("entry", data.size()));
  Message m{.type = MessageType::propose, .to = leader_, .context = request_id};
  m.entries.push_back(Entry{0, 0, EntryType::normal, std::move(data)});
  send(std::move(m));
  return success();
}

inline void Core::handle_propose(const Message& m) {
  const std::pair<NodeId, std::uint64_t> key{m.from, m.context};
  bool dedup = true;
#if defined(DENGINE_TEST_HOOKS)
  dedup = !test_hooks::switches().forward_without_dedup;  // deliberate bug (core/test_hooks.hpp)
#endif
  if (auto it = forward_answers_.find(key); dedup && it != forward_answers_.end()) {
    Message again = it->second;
    again.term = 0;  // send() stamps the current term
    send(std::move(again));
    return;
  }
  Message reply{.type = MessageType::propose_response, .to = m.from, .context = m.context};
  result<LogIndex> appended = error(errc::invalid_argument, "a propose carries one normal entry");
  if (m.entries.size() == 1 && m.entries.front().type == EntryType::normal)
    appended = propose(m.entries.front().data);
  if (appended) {
    reply.index = appended.value();
    reply.log_term = term_;
  } else {
    reply.reject = true;
    reply.reject_hint = static_cast<LogIndex>(appended.error().code.value());
  }
  if (appended) {
    // Only acceptances: a refused proposal may be sent again under the same id, and must then
    // be considered afresh.
    forward_answers_.emplace(key, reply);
    forward_answer_order_.push_back(key);
    if (forward_answer_order_.size() > max_forward_answers) {
      forward_answers_.erase(forward_answer_order_.front());
      forward_answer_order_.pop_front();
    }
  }
  send(std::move(reply));
}

inline void Core::handle_propose_response(const Message& m) {
  ForwardOutcome outcome;
  outcome.id = m.context;
  if (!m.reject) {
    outcome.index = m.index;
    outcome.term = m.log_term;
    out_.forwards.push_back(std::move(outcome));
    return;
  }
  // The leader's reason, if it is one a refusal can have; anything else reads as not_leader
  // (not appended, worth forwarding again).
  error refusal = error::not_leader(leader_);
  for (const errc known : {errc::too_busy, errc::too_large, errc::proposal_dropped})
    if (m.reject_hint == static_cast<LogIndex>(known))
      refusal = error(known, "refused by the leader, n" + std::to_string(m.from));
  outcome.refusal = std::move(refusal);
  out_.forwards.push_back(std::move(outcome));
}

inline result<void> Core::call_leader(std::uint64_t request_id, std::string request) {
  if (role_ != Role::follower || leader_ == no_node) return error::not_leader(leader_);
  DENGINE_TRYV(config_.check_entry_size("leader call", request.size()));
  Message m{.type = MessageType::leader_call, .to = leader_, .context = request_id};
  m.entries.push_back(Entry{0, 0, EntryType::normal, std::move(request)});
  send(std::move(m));
  return success();
}

inline void Core::handle_leader_call(const Message& m) {
  if (role_ != Role::leader || m.entries.size() != 1 ||
      m.entries.front().type != EntryType::normal) {
    answer_leader_call(m.from, m.context, std::nullopt);
    return;
  }
  out_.leader_calls.push_back(LeaderCall{m.from, m.context, m.entries.front().data});
}

inline void Core::answer_leader_call(NodeId to, std::uint64_t request_id,
                                     std::optional<std::string> reply) {
  Message m{.type = MessageType::leader_call_response, .to = to, .context = request_id};
  if (reply) {
    m.entries.push_back(Entry{0, 0, EntryType::normal, std::move(*reply)});
  } else {
    m.reject = true;
  }
  send(std::move(m));
}

inline void Core::handle_leader_call_response(const Message& m) {
  LeaderCallAnswer answer{m.context, m.from, std::nullopt};
  if (!m.reject && m.entries.size() == 1) answer.reply = m.entries.front().data;
  out_.leader_call_answers.push_back(std::move(answer));
}

}  // namespace dengine::raft
