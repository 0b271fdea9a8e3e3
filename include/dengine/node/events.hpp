#pragma once
/// Notifications a Node gives the embedding application: leader changes and membership changes.
/// Callbacks run on the applier thread (never on the event loop), in the order the changes
/// happened; a callback must not block for long (it delays applying) and must not call
/// Node::stop().

#include <cstdint>
#include <functional>

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

/// Optional callbacks, given to Node::open.
struct NodeCallbacks {
  std::function<void(const LeaderChange&)> on_leader_change;
  std::function<void(const MembershipChange&)> on_membership_change;
};

}  // namespace dengine::node
