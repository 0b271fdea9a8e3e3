#pragma once
/// The little-endian layout of Membership::addresses that the raw-file log meta, the snapshot
/// file and the peer wire share:
///
///   count (4) | (member id (8) | length (4) | address) * count, ids strictly increasing
///
/// The decoder trusts nothing: a count or length past the bytes left, an id out of order, an empty
/// address or one longer than max_address_size is refused. That each id is a member is for the
/// caller to check (Membership::addresses_well_formed) once the whole membership is read.

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "dengine/core/types.hpp"
#include "dengine/storage/byte_codec.hpp"

namespace dengine::storage {

/// Longer addresses are corrupt (the Raft layer refuses them when proposed: config_change.hpp).
inline constexpr std::size_t max_address_size = 1024;

inline void put_member_addresses_le(std::string& out,
                                    const std::map<NodeId, std::string>& addresses) {
  bytes::put_le32(out, static_cast<std::uint32_t>(addresses.size()));
  for (const auto& [id, address] : addresses) {
    bytes::put_le64(out, id);
    bytes::put_le32(out, static_cast<std::uint32_t>(address.size()));
    out += address;
  }
}

/// The section put_member_addresses_le wrote, or nullopt when the bytes break the layout.
[[nodiscard]] inline std::optional<std::map<NodeId, std::string>> read_member_addresses_le(
    bytes::LeReader& r) {
  const auto count = r.u32();
  if (!count || *count > r.remaining() / 12) return std::nullopt;
  std::map<NodeId, std::string> addresses;
  NodeId previous = no_node;
  for (std::uint32_t k = 0; k < *count; ++k) {
    const auto id = r.u64();
    const auto length = r.u32();
    if (!id || !length || *id <= previous || *length == 0 || *length > max_address_size)
      return std::nullopt;
    const auto address = r.bytes(*length);
    if (!address) return std::nullopt;
    addresses.emplace_hint(addresses.end(), *id, std::string(*address));
    previous = *id;
  }
  return addresses;
}

}  // namespace dengine::storage
