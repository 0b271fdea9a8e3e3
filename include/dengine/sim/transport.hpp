#pragma once
/// The deterministic arrangement's transport: a sim::Network of wire frames (seeded loss, delay,
/// reordering, duplication, damage, partitions) delivered by events on a SimExecutor.
/// SimNetwork is the shared medium; SimTransport is one node's port on it. Every message is
/// encoded with the wire codec when sent and decoded at its receiver (wire_links.hpp): a node
/// receives what the bytes say, never the sender's object.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "dengine/core/error.hpp"
#include "dengine/node/transport.hpp"
#include "dengine/raft/message.hpp"
#include "dengine/sim/executor.hpp"
#include "dengine/sim/network.hpp"
#include "dengine/sim/wire_links.hpp"

namespace dengine::sim {

/// What a simulator may watch and shape on a SimNetwork (each member optional): tracing every
/// message, recording promises as they leave and arrive, slowing some kinds down, hearing of
/// codec failures.
struct NetworkTap {
  /// Called with each message about to be sent; returns extra delay for it (0: none).
  std::function<sim_duration(const raft::Message&)> before_send;
  /// The fate of the message last passed to before_send.
  std::function<void(const SendReport&)> after_send;
  /// A copy reached its recipient's port: `dropped` is empty when the node gets the message (as
  /// decoded from the frame), else why it did not (the link was cut while it was in flight,
  /// nobody is attached, the decoder refused the damaged frame); a dropped message is the
  /// sender's frame decoded on its own, for the trace.
  std::function<void(const raft::Message&, std::string_view dropped)> arrived;
  /// The codec got a frame wrong (LinkDecoders::take): a violation. Also counted in stats().
  std::function<void(const std::string&)> codec_failure;
};

/// What the frames did, over a SimNetwork's lifetime (the copies' fates are in net().stats()).
struct WireStats {
  /// Frames encoded: one per message sent, shared by a duplicate copy.
  std::uint64_t frames = 0;
  std::uint64_t bytes = 0;
  /// Damaged frames the receiver's decoder refused (dropped; the link reconnected).
  std::uint64_t refused = 0;
  /// Frames the codec got wrong (see NetworkTap::codec_failure).
  std::uint64_t codec_failures = 0;
  /// Messages a sender dropped because its configuration held no address for the recipient
  /// (only when the network requires addresses: SimNetwork::require_addresses).
  std::uint64_t unaddressed = 0;
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
  [[nodiscard]] Network<WireFrame>& net() noexcept { return net_; }
  /// What the frames did.
  [[nodiscard]] const WireStats& stats() const noexcept { return stats_; }
  /// The first codec failure's description (empty: none), for runs without a tap.
  [[nodiscard]] const std::string& first_codec_failure() const noexcept { return first_failure_; }

  /// Registers `id`'s inbound handler.
  void attach(NodeId id, node::InboundHandler inbound) { nodes_[id] = std::move(inbound); }
  /// Unregisters `id`: messages arriving for it are dropped, and its connections close (a new
  /// process starts new streams).
  void detach(NodeId id) {
    nodes_.erase(id);
    links_.reset(id);
  }

  /// Watches (and shapes) every message from now on.
  void set_tap(NetworkTap tap) { tap_ = std::move(tap); }

  /// From now on a node sends only to members whose address its configuration holds, as a TCP
  /// transport must (SimTransport::on_membership): a path that fails to hand a new member's
  /// address to the transport leaves that member unreachable in the simulation too.
  void require_addresses(bool on) noexcept { addresses_required_ = on; }
  [[nodiscard]] bool addresses_required() const noexcept { return addresses_required_; }
  /// A sender had no address for m.to: counted, and traced as a drop.
  void drop_unaddressed(const raft::Message& m) {
    ++stats_.unaddressed;
    if (tap_.arrived) tap_.arrived(m, "the sender knows no address for the recipient");
  }

  /// Encodes `m` and puts its frame in flight from m.from to m.to. `m` itself goes no further.
  void deliver(const raft::Message& m) {
    const sim_duration extra = tap_.before_send ? tap_.before_send(m) : 0;
    WireFrame frame = encode_wire_frame(m);
    ++stats_.frames;
    stats_.bytes += frame.bytes->size();
    const SendReport report = net_.send(m.from, m.to, std::move(frame), extra);
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
      const Envelope<WireFrame>& env = a->envelope;
      auto it = nodes_.find(env.to);
      if (!a->deliver || it == nodes_.end()) {
        // The bytes never reach a decoder.
        trace_drop(env.message, !a->deliver ? "link cut while in flight" : "recipient down");
        continue;
      }
      Arrived got = links_.take(env.from, env.to, env.message, env.damage);
      if (!got.message) {
        if (!got.codec_failure.empty()) {
          codec_failure(got.codec_failure);
          trace_drop(env.message, "the codec got this frame wrong");
        } else {
          ++stats_.refused;
          if (tap_.arrived) trace_drop(env.message, "damaged in transit, refused: " + got.refused);
        }
        continue;
      }
      if (tap_.arrived) tap_.arrived(*got.message, {});
      it->second(std::move(*got.message));
    }
    schedule_pump();
  }

  void trace_drop(const WireFrame& frame, std::string_view why) {
    if (!tap_.arrived) return;
    auto m = peek_message(frame);
    if (!m) {
      codec_failure("an intact frame does not decode on its own: " + m.error().message());
      return;
    }
    tap_.arrived(m.value(), why);
  }

  void codec_failure(const std::string& what) {
    ++stats_.codec_failures;
    if (first_failure_.empty()) first_failure_ = what;
    if (tap_.codec_failure) tap_.codec_failure(what);
  }

  SimExecutor* executor_;
  Network<WireFrame> net_;
  LinkDecoders links_;
  WireStats stats_;
  std::string first_failure_;
  std::map<NodeId, node::InboundHandler> nodes_;
  std::set<sim_time> pumps_;
  NetworkTap tap_;
  bool addresses_required_ = false;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

/// One node's port on a SimNetwork. It follows the node's configuration
/// (node::MembershipAwareTransport) and, when the network requires addresses, reaches only whom
/// net::AsioTransport could: a member whose address the configuration holds, or a node that
/// reached it first (a TCP peer announces its address in its hello). The second is what lets a
/// node that fell behind answer a leader its configuration does not list yet, and the followers
/// of a leader that removed itself answer it until that removal commits.
class SimTransport : public node::HubPort<SimNetwork> {
 public:
  SimTransport(SimNetwork& net, NodeId self) : HubPort(net, self), net_(&net) {}

  result<void> start(node::InboundHandler inbound) {
    return HubPort::start([this, inbound = std::move(inbound)](raft::Message m) {
      heard_from_.insert(m.from);
      inbound(std::move(m));
    });
  }
  void on_membership(const Membership& m) {
    addressed_.clear();
    for (const auto& [id, address] : m.addresses) addressed_.insert(id);
  }
  void send(raft::Message m) {
    if (net_->addresses_required() && !addressed_.contains(m.to) && !heard_from_.contains(m.to)) {
      net_->drop_unaddressed(m);
      return;
    }
    HubPort::send(std::move(m));
  }

 private:
  SimNetwork* net_;
  std::set<NodeId> addressed_;   // members with an address in the latest configuration
  std::set<NodeId> heard_from_;  // nodes that reached this one (their hello named an address)
};

static_assert(node::MembershipAwareTransport<SimTransport>);

}  // namespace dengine::sim
