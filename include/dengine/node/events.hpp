#pragma once
/// Notifications a Node gives the embedding application: leader changes, membership changes
/// and log lines; and the service that answers leader calls. Callbacks (but the leader service)
/// run on the applier thread (never on the event loop), in the order the changes happened; a
/// callback must not block for long (it delays applying) and must not call Node::stop().

#include <cstdint>
#include <cstdio>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "dengine/core/types.hpp"
#include "dengine/raft/ready.hpp"

namespace dengine::node {

/// This node's view of who leads changed (or its own role did).
struct LeaderChange {
  NodeId leader = no_node;  ///< the leader now known (no_node: none known)
  Term term = 0;
  raft::Role role = raft::Role::follower;  ///< this node's role
};

/// A membership change was applied at `index`.
struct MembershipChange {
  LogIndex index = 0;
  Membership membership;  ///< the configuration after the change
};

/// Receives one human-readable line (no trailing newline) per notable event of a node — today
/// a fatal stop, once, with its cause (the storage's or state machine's error, which names the
/// file). The library has no logger of its own: route the lines to yours.
using log_function = std::function<void(std::string_view line)>;

/// Optional callbacks, given to Node::open.
struct NodeCallbacks {
  std::function<void(const LeaderChange&)> on_leader_change;
  std::function<void(const MembershipChange&)> on_membership_change;
  /// Answers leader calls (Node::call_leader, made on this node or sent by a follower) while
  /// this node leads: the answer bytes, or nullopt when it cannot answer now (the caller asks
  /// again, the next tick or at the next leader). Unlike the callbacks above it runs on the
  /// event loop, so it must be quick, thread-safe, and must not call into the node. Null: every
  /// call is declined (and times out at its caller).
  std::function<std::optional<std::string>(NodeId from, std::string_view request)> leader_service;
  /// Where the node's log lines go; null: one line each on stderr.
  log_function log;
};

/// Sends `line` to callbacks.log, or to stderr (one write, so lines of several nodes do not
/// interleave) when none is set.
inline void emit_log(const NodeCallbacks& callbacks, std::string_view line) {
  if (callbacks.log) {
    callbacks.log(line);
    return;
  }
  std::string out(line);
  out += '\n';
  std::fwrite(out.data(), 1, out.size(), stderr);
}

}  // namespace dengine::node
