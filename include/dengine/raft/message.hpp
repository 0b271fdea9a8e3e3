#pragma once
/// Messages exchanged between Raft peers. One struct for every type (as etcd's raftpb.Message):
/// the fields a type does not use stay at their defaults. The wire codec encodes exactly these.

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "dengine/core/types.hpp"

namespace dengine::raft {

enum class MessageType : std::uint8_t {
  append = 0,              ///< leader → follower: entries after (index, log_term), commit
  append_response = 1,     ///< follower → leader: index = last matching index, or reject + hint
  heartbeat = 2,           ///< leader → follower: commit, context = read round
  heartbeat_response = 3,  ///< follower → leader: context echoed
  vote = 4,           ///< candidate → voter: last log (index, log_term); context=1 → transfer
  vote_response = 5,  ///< reject = false means granted
  pre_vote = 6,       ///< like vote, for term + 1, without changing anyone's state
  pre_vote_response = 7,
  snapshot = 8,              ///< leader → follower: install `snapshot`
  timeout_now = 9,           ///< leader → transfer target: campaign now, skipping pre-vote
  read_index = 10,           ///< follower → leader: confirm leadership; context = request id
  read_index_response = 11,  ///< leader → follower: index = read index; reject when it cannot serve
  propose = 12,  ///< follower → leader: a forwarded proposal (one entry); context = request id
  /// leader → follower: appended at (index, log_term), or reject with the errc in reject_hint
  propose_response = 13,
  /// follower → leader: a leader call (Core::call_leader), entries[0].data = the request;
  /// context = request id
  leader_call = 14,
  /// leader → follower: entries[0].data = the leader service's answer; reject (no entries) when
  /// the leader could not serve it now (not the leader, or its service declined): ask again
  leader_call_response = 15,
};

[[nodiscard]] constexpr std::string_view to_string(MessageType t) noexcept {
  switch (t) {
    case MessageType::append: return "append";
    case MessageType::append_response: return "append_response";
    case MessageType::heartbeat: return "heartbeat";
    case MessageType::heartbeat_response: return "heartbeat_response";
    case MessageType::vote: return "vote";
    case MessageType::vote_response: return "vote_response";
    case MessageType::pre_vote: return "pre_vote";
    case MessageType::pre_vote_response: return "pre_vote_response";
    case MessageType::snapshot: return "snapshot";
    case MessageType::timeout_now: return "timeout_now";
    case MessageType::read_index: return "read_index";
    case MessageType::read_index_response: return "read_index_response";
    case MessageType::propose: return "propose";
    case MessageType::propose_response: return "propose_response";
    case MessageType::leader_call: return "leader_call";
    case MessageType::leader_call_response: return "leader_call_response";
  }
  return "unknown";
}

/// Context value of a vote request sent because of a leader transfer: voters grant it even while
/// they still hear from the current leader.
inline constexpr std::uint64_t vote_context_transfer = 1;

struct Message {
  MessageType type = MessageType::append;
  NodeId from = no_node;
  NodeId to = no_node;
  /// Sender's term (pre_vote: the term the candidate would campaign at).
  Term term = 0;
  /// append: term of the entry at `index`; vote/pre_vote: term of the candidate's last entry;
  /// append_response reject: term of the follower's entry at reject_hint (fast backtracking).
  Term log_term = 0;
  /// append: index preceding `entries`; vote/pre_vote: candidate's last index;
  /// append_response: highest index known to match (success) or the rejected index.
  LogIndex index = 0;
  std::vector<Entry> entries{};
  /// Leader's commit index (append, heartbeat), capped at what the follower is known to have.
  LogIndex commit = 0;
  /// Negative answer (append, vote, pre_vote, read_index responses).
  bool reject = false;
  /// On a rejected append: the follower's suggestion of where to retry (≤ its last index).
  /// On a rejected propose_response: the dengine::errc value of the refusal.
  LogIndex reject_hint = 0;
  /// heartbeat(_response): read round; read_index(_response), propose(_response),
  /// leader_call(_response): request id; vote: transfer flag.
  std::uint64_t context = 0;
  /// snapshot: the image to install (shared: a leader sends one image to several followers).
  std::shared_ptr<const Snapshot> snapshot{};
};

/// Bytes of entry payload a message carries (for the in-flight byte window).
inline std::size_t payload_size(const Message& m) noexcept {
  std::size_t n = 0;
  for (const auto& e : m.entries) n += entry_size(e);
  return n;
}

}  // namespace dengine::raft
