#pragma once
/// The deterministic arrangement's transport: a sim::Network of raft::Message (seeded loss,
/// delay, reordering, duplication, partitions) delivered by events on a SimExecutor.
/// SimNetwork is the shared medium; SimTransport is one node's port on it.

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

  /// Puts `m` in flight from m.from to m.to.
  void deliver(raft::Message m) {
    const NodeId from = m.from;
    const NodeId to = m.to;
    if (net_.send(from, to, std::move(m)).copies > 0) schedule_pump();
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
      if (!a->deliver) continue;
      auto it = nodes_.find(a->envelope.to);
      if (it != nodes_.end()) it->second(std::move(a->envelope.message));
    }
    schedule_pump();
  }

  SimExecutor* executor_;
  Network<raft::Message> net_;
  std::map<NodeId, node::InboundHandler> nodes_;
  std::set<sim_time> pumps_;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

/// One node's port on a SimNetwork.
using SimTransport = node::HubPort<SimNetwork>;

static_assert(node::Transport<SimTransport>);

}  // namespace dengine::sim
