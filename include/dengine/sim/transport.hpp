#pragma once
/// The deterministic arrangement's transport: a sim::Network of raft::Message (seeded loss,
/// delay, reordering, duplication, partitions) delivered by events on a SimExecutor.
/// SimNetwork is the shared medium; SimTransport is one node's port on it.

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include "dengine/core/error.hpp"
#include "dengine/node/transport.hpp"
#include "dengine/raft/message.hpp"
#include "dengine/sim/executor.hpp"
#include "dengine/sim/network.hpp"

namespace dengine::sim {

/// What a simulator may watch and shape on a SimNetwork (each member optional): tracing every
/// message, recording promises as they leave and arrive, slowing some kinds down.
struct NetworkTap {
  /// Called with each message about to be sent; returns extra delay for it (0: none).
  std::function<sim_duration(const raft::Message&)> before_send;
  /// The fate of the message last passed to before_send.
  std::function<void(const SendReport&)> after_send;
  /// A copy reached its recipient's port: `dropped` is null when the node gets it, else why
  /// it did not (the link was cut while it was in flight, or nobody is attached).
  std::function<void(const raft::Message&, const char* dropped)> arrived;
};

/// Messages between the nodes of one simulated cluster (a node::Hub). Single-threaded (the
/// executor's thread). Must outlive the nodes attached to it; events it scheduled become no-ops
/// once it is gone.
class SimNetwork {
 public:
  static constexpr const char* port_name = "sim transport";

  /// A network on `executor`'s virtual time, with faults drawn from `seed`.
  SimNetwork(SimExecutor& executor, std::uint64_t seed, NetworkFaults faults = {})
      : executor_(&executor), net_(executor.clock(), seed, faults) {}
  SimNetwork(const SimNetwork&) = delete;
  SimNetwork& operator=(const SimNetwork&) = delete;

  /// The underlying network: set faults, partition, isolate, heal; read stats.
  [[nodiscard]] Network<raft::Message>& net() noexcept { return net_; }

  /// Registers `id`'s inbound handler.
  void attach(NodeId id, node::InboundHandler inbound) { nodes_[id] = std::move(inbound); }
  /// Unregisters `id`: messages arriving for it are dropped.
  void detach(NodeId id) { nodes_.erase(id); }

  /// Watches (and shapes) every message from now on.
  void set_tap(NetworkTap tap) { tap_ = std::move(tap); }

  /// Puts `m` in flight from m.from to m.to.
  void deliver(raft::Message m) {
    const NodeId from = m.from;
    const NodeId to = m.to;
    const sim_duration extra = tap_.before_send ? tap_.before_send(m) : 0;
    const SendReport report = net_.send(from, to, std::move(m), extra);
    if (tap_.after_send) tap_.after_send(report);
    if (report.copies > 0) schedule_pump();
  }

 private:
  void schedule_pump() {
    const sim_time t = net_.next_delivery_time();
    if (t == sim_never || pumps_.contains(t)) return;
    pumps_.insert(t);
    executor_->post_at(t, [alive = std::weak_ptr<int>(alive_), this, t] {
      if (alive.expired()) return;
      pumps_.erase(t);
      pump();
    });
  }

  void pump() {
    while (auto a = net_.pop_due()) {
      raft::Message& m = a->envelope.message;
      auto it = nodes_.find(a->envelope.to);
      const char* dropped = !a->deliver          ? "link cut while in flight"
                            : it == nodes_.end() ? "recipient down"
                                                 : nullptr;
      if (tap_.arrived) tap_.arrived(m, dropped);
      if (dropped == nullptr) it->second(std::move(m));
    }
    schedule_pump();
  }

  SimExecutor* executor_;
  Network<raft::Message> net_;
  std::map<NodeId, node::InboundHandler> nodes_;
  std::set<sim_time> pumps_;
  NetworkTap tap_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

/// One node's port on a SimNetwork.
using SimTransport = node::HubPort<SimNetwork>;

static_assert(node::Transport<SimTransport>);

}  // namespace dengine::sim
