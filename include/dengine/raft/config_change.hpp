#pragma once
/// Single-server membership changes (Raft thesis, section 4.1): the encoding carried in a
/// config_change entry, and the rule that turns one membership into the next.
///
/// Why one-at-a-time rather than joint consensus: any two majorities of configurations that
/// differ by one voter overlap, so a change can take effect as soon as it is appended, with no
/// intermediate joint configuration. The safety conditions the leader enforces (core.hpp):
///  - at most one uncommitted config entry in the log at any time;
///  - the leader has committed an entry of its own term before appending a config entry
///    (the fix from Ongaro's 2015 raft-dev post: otherwise two leaders of adjacent terms could
///    each append a change whose majorities do not overlap).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/raft/ready.hpp"
#include "dengine/storage/member_addresses_codec.hpp"

namespace dengine::raft {

namespace detail {
inline void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
inline bool get_u64(std::string_view& in, std::uint64_t& v) {
  if (in.size() < 8) return false;
  v = 0;
  for (int i = 0; i < 8; ++i) v |= std::uint64_t{static_cast<unsigned char>(in[i])} << (8 * i);
  in.remove_prefix(8);
  return true;
}
}  // namespace detail

/// Format 1 (before members had addresses): [1][kind u8][node u64][context...].
/// Format 2, written since: [2][kind u8][node u64][address length u32][address][context...].
/// Both decode: logs written before addresses existed stay readable. Little-endian.
inline constexpr std::uint8_t config_change_format_v1 = 1;
inline constexpr std::uint8_t config_change_format = 2;
/// Longer addresses are refused when proposed and when decoded (a peer address is host:port).
inline constexpr std::size_t max_member_address_size = storage::max_address_size;

/// Encodes a change in the current format (2).
[[nodiscard]] inline std::string encode_config_change(const ConfigChange& change) {
  std::string out;
  out.reserve(14 + change.address.size() + change.context.size());
  out.push_back(static_cast<char>(config_change_format));
  out.push_back(static_cast<char>(change.kind));
  detail::put_u64(out, change.node);
  const auto n = static_cast<std::uint32_t>(change.address.size());
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out += change.address;
  out += change.context;
  return out;
}

/// Decodes what encode_config_change wrote, in either format; malformed input is
/// invalid_argument, an unknown format incompatible_version.
[[nodiscard]] inline result<ConfigChange> decode_config_change(std::string_view in) {
  if (in.size() < 10) return error(errc::invalid_argument, "config change: truncated");
  const auto format = static_cast<std::uint8_t>(in[0]);
  if (format != config_change_format && format != config_change_format_v1)
    return error(errc::incompatible_version, "config change: unknown format");
  auto kind = static_cast<std::uint8_t>(in[1]);
  if (kind > static_cast<std::uint8_t>(ConfigChange::Kind::remove))
    return error(errc::invalid_argument, "config change: unknown kind");
  in.remove_prefix(2);
  ConfigChange change;
  change.kind = static_cast<ConfigChange::Kind>(kind);
  detail::get_u64(in, change.node);
  if (format == config_change_format) {
    if (in.size() < 4) return error(errc::invalid_argument, "config change: truncated");
    std::uint32_t n = 0;
    for (int i = 0; i < 4; ++i) n |= std::uint32_t{static_cast<unsigned char>(in[i])} << (8 * i);
    in.remove_prefix(4);
    if (n > max_member_address_size || n > in.size())
      return error(errc::invalid_argument, "config change: address length past the end");
    change.address = std::string(in.substr(0, n));
    in.remove_prefix(n);
  }
  change.context = std::string(in);
  return change;
}

/// The membership that results from applying `change` to `current`, or why it is not allowed.
[[nodiscard]] inline result<Membership> apply_config_change(const Membership& current,
                                                            const ConfigChange& change) {
  if (change.node == no_node) return error(errc::invalid_argument, "config change: node id 0");
  if (change.address.size() > max_member_address_size)
    return error(errc::invalid_argument, "config change: address longer than " +
                                             std::to_string(max_member_address_size) + " bytes");
  if (!change.address.empty() && change.kind != ConfigChange::Kind::remove) {
    for (const auto& [id, address] : current.addresses) {
      if (id != change.node && address == change.address)
        return error(errc::invalid_argument, "config change: address " + change.address +
                                                 " is already member " + std::to_string(id) + "'s");
    }
  }
  Membership next = current;
  auto erase = [](std::vector<NodeId>& v, NodeId id) { std::erase(v, id); };
  switch (change.kind) {
    case ConfigChange::Kind::add_learner:
      if (current.is_learner(change.node))
        return error(errc::invalid_argument, "config change: node is already a learner");
      if (current.is_voter(change.node) && current.voters.size() == 1)
        return error(errc::invalid_argument, "config change: cannot demote the last voter");
      erase(next.voters, change.node);
      next.learners.push_back(change.node);
      break;
    case ConfigChange::Kind::add_voter:
      if (current.is_voter(change.node))
        return error(errc::invalid_argument, "config change: node is already a voter");
      erase(next.learners, change.node);
      next.voters.push_back(change.node);
      break;
    case ConfigChange::Kind::remove:
      if (!current.contains(change.node))
        return error(errc::not_found, "config change: node is not a member");
      if (current.is_voter(change.node) && current.voters.size() == 1)
        return error(errc::invalid_argument, "config change: cannot remove the last voter");
      erase(next.voters, change.node);
      erase(next.learners, change.node);
      break;
  }
  // An add with an address records it (a member may move); without one the member keeps its
  // address. normalize() drops a removed member's.
  if (!change.address.empty() && change.kind != ConfigChange::Kind::remove)
    next.addresses[change.node] = change.address;
  next.normalize();
  return next;
}

}  // namespace dengine::raft
