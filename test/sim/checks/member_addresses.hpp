#pragma once
/// Member addresses: every member of a node's configuration has the peer address it was given
/// (founders in NodeConfig::initial_addresses, later members in the config change that added
/// them). The simulator gives member n the address sim_peer_address(n); an address missing or
/// different means one of the paths a membership travels dropped or damaged it: the config
/// change codec, the log, a snapshot on the wire, a snapshot or compaction point in storage.

#include <optional>
#include <string>

#include "common.hpp"

namespace dengine::sim::checks {

/// The address the simulator gives member `id` (opaque to Raft: nothing dials it).
[[nodiscard]] inline std::string sim_peer_address(NodeId id) {
  return "10.0." + std::to_string(id / 250) + "." + std::to_string(id % 250 + 1) + ":2380";
}

/// The first member of `m` (as node `observer` holds it) without its address, or with another.
[[nodiscard]] inline std::optional<Violation> check_member_addresses(NodeId observer,
                                                                     const Membership& m) {
  for (NodeId id : m.all()) {
    const auto address = m.address_of(id);
    if (address != sim_peer_address(id))
      return violation("member addresses", "node " + str(observer) + " holds member " + str(id) +
                                               " with address \"" + std::string(address) +
                                               "\", expected \"" + sim_peer_address(id) + "\"");
  }
  if (!m.addresses_well_formed())
    return violation("member addresses",
                     "node " + str(observer) + " holds an address for a non-member");
  return std::nullopt;
}

}  // namespace dengine::sim::checks
