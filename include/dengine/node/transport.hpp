#pragma once
/// How a Node exchanges raft::Message with its peers: the Transport concept, HubPort (one node's
/// port on a medium several nodes attach to), and LocalHub / LocalTransport for an in-process
/// cluster on the threaded runtime. (The TCP transport and the wire codec live in net/ and
/// wire/; the simulated medium, sim::SimNetwork, in the sim/ layer.)

#include <concepts>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <utility>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/raft/message.hpp"

namespace dengine::node {

/// Called by a transport for each message that arrives for the node (from any thread).
using InboundHandler = std::function<void(raft::Message)>;

/// **Transport** — moves messages between nodes. Raft tolerates loss, duplication and
/// reordering, so a transport may drop a message it cannot deliver (a full queue, a peer down).
///
/// - `start(inbound)`: from now on, call `inbound` for every message addressed to this node, from
///   any thread; `inbound` must not be called after stop() returned.
/// - `send(m)`: called on the event loop only; must not block (queue or drop).
/// - `stop()`: no more deliveries once it returns; idempotent.
template <class T>
concept Transport = requires(T& t, raft::Message m, InboundHandler inbound) {
  { t.start(std::move(inbound)) } -> std::same_as<result<void>>;
  { t.send(std::move(m)) } -> std::same_as<void>;
  { t.stop() } -> std::same_as<void>;
};

/// A transport that follows the configuration: the node calls `on_membership(m)` on its event
/// loop whenever its configuration changes (members or their addresses), before it sends the
/// messages that follow the change — so a transport that dials peers (net::AsioTransport)
/// learns a new member's address from the log before the leader's first append to it. `m` is
/// raft::Core::transport_membership(): a member whose removal is not committed yet is still in
/// it (as a learner), and it is handed on again when that removal commits. Optional:
/// a transport without it (LocalTransport) is told nothing.
template <class T>
concept MembershipAwareTransport = Transport<T> && requires(T& t, const Membership& m) {
  t.on_membership(m);
};

/// Hands `m` to `t` if it is a MembershipAwareTransport (what the runtimes' drain sinks call).
template <Transport T>
void tell_membership(T& t, const Membership& m) {
  if constexpr (MembershipAwareTransport<T>) t.on_membership(m);
}

/// **Hub** — a medium nodes attach to: `attach(id, inbound)` registers a node's inbound handler,
/// `detach(id)` unregisters it (no call of it once detach returned), `deliver(m)` carries `m`
/// towards m.to (or drops it). `port_name` names its ports in errors.
template <class H>
concept Hub = requires(H& h, NodeId id, InboundHandler inbound, raft::Message m) {
  h.attach(id, std::move(inbound));
  h.detach(id);
  h.deliver(std::move(m));
  { H::port_name } -> std::convertible_to<const char*>;
};

/// One node's port on a Hub: the Transport that attaches at start, sends through the hub, and
/// detaches at stop.
template <Hub H>
class HubPort {
 public:
  /// The port of node `self` on `hub` (which must outlive it).
  HubPort(H& hub, NodeId self) : hub_(&hub), self_(self) {}

  result<void> start(InboundHandler inbound) {
    if (self_ == no_node)
      return error(errc::invalid_argument, std::string(H::port_name) + ": node id 0");
    hub_->attach(self_, std::move(inbound));
    return success();
  }
  void send(raft::Message m) { hub_->deliver(std::move(m)); }
  void stop() { hub_->detach(self_); }

 private:
  H* hub_;
  NodeId self_;
};

/// An in-process "network" between nodes of one process (threaded arrangement): a message is
/// handed to the target's inbound handler (which posts it to the target's event loop), or
/// dropped when the target is not attached or the link is cut. Thread-safe.
class LocalHub {
 public:
  static constexpr const char* port_name = "local transport";

  /// Registers `id`'s inbound handler (replacing any earlier one).
  void attach(NodeId id, InboundHandler inbound) {
    std::unique_lock lock(mutex_);
    nodes_[id] = std::move(inbound);
  }
  /// Unregisters `id`; once it returns the handler is not running and will not be called again.
  void detach(NodeId id) {
    std::unique_lock lock(mutex_);
    nodes_.erase(id);
  }
  /// Delivers `m` to m.to, unless it is detached, isolated, or the link m.from → m.to is cut.
  void deliver(raft::Message m) {
    std::shared_lock lock(mutex_);
    if (isolated_.contains(m.from) || isolated_.contains(m.to) || cut_.contains({m.from, m.to}))
      return;
    auto it = nodes_.find(m.to);
    if (it == nodes_.end()) return;
    // Called under the shared lock so detach() can wait for deliveries in progress; handlers
    // only post to an event loop, so this is short.
    it->second(std::move(m));
  }

  /// Cuts every link to and from `id` (a partitioned node).
  void isolate(NodeId id) {
    std::unique_lock lock(mutex_);
    isolated_.insert(id);
  }
  /// Undoes isolate(id).
  void rejoin(NodeId id) {
    std::unique_lock lock(mutex_);
    isolated_.erase(id);
  }
  /// Cuts the directed link from → to.
  void cut(NodeId from, NodeId to) {
    std::unique_lock lock(mutex_);
    cut_.insert({from, to});
  }
  /// Restores every link.
  void heal() {
    std::unique_lock lock(mutex_);
    isolated_.clear();
    cut_.clear();
  }

 private:
  mutable std::shared_mutex mutex_;
  std::map<NodeId, InboundHandler> nodes_;
  std::set<NodeId> isolated_;
  std::set<std::pair<NodeId, NodeId>> cut_;
};

/// One node's port on a LocalHub.
using LocalTransport = HubPort<LocalHub>;

static_assert(Transport<LocalTransport>);

}  // namespace dengine::node
