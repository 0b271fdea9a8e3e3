#pragma once
/// NetworkConfig: the peer network of an EmbeddedEngine whose members run in separate processes
/// (docs/cluster.md). With EngineConfig::network set, the engine's node talks to its peers over
/// TCP (net::AsioTransport); without, over an in-process LocalHub.
///
/// Plain strings and numbers only: this header stays light for compiled-mode users; the engine
/// checks the addresses when it starts (invalid_argument naming the field and the text).

#include <map>
#include <string>

#include "dengine/core/types.hpp"

namespace dengine::engine {

struct NetworkConfig {
  /// Where this node accepts its peers' connections: "a.b.c.d:port" (an IPv4 literal, no name
  /// is resolved).
  std::string listen;
  /// This node's address as its peers reach it — what the configuration records for it. Empty:
  /// `listen` (then it must not be a wildcard like 0.0.0.0).
  std::string advertise;
  /// Who to reach, member id → address:
  ///  - founding a new cluster: every founding member, this node included (its entry must be
  ///    its advertised address). They become the first configuration, addresses included;
  ///  - joining a running cluster: its current voters (this node not among them); the leader
  ///    then adds this node (add_learner with this node's address) and the log tells it the rest.
  /// Once the node runs, its configuration — from the log and snapshots — decides whom it
  /// reaches and where; this map is not read again.
  std::map<NodeId, std::string> members;
  // The transport's bounds (queues per peer, batching, back-off) are net::TransportConfig's
  // defaults (docs/network.md).

  /// The address recorded for this node: `advertise`, or `listen` when that is empty.
  [[nodiscard]] const std::string& advertised() const noexcept {
    return advertise.empty() ? listen : advertise;
  }
};

}  // namespace dengine::engine
