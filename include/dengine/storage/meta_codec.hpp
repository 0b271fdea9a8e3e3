#pragma once
/// The byte layout the LMDB and SQLite backends store a node's hard state and compaction point
/// in (each wraps it in its own record: checksum, row or key). All integers big-endian:
///
///   hard state     term (8) | vote (8) | commit (8)
///   snapshot meta  index (8) | term (8) | n voters (4) | voters (8 each)
///                  | n learners (4) | learners (8 each)
///                  | n addresses (4) | (member id (8) | length (4) | address) each
///
/// The address section is absent in records written before members had addresses: a record
/// that ends after the learners decodes with no addresses.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "dengine/core/types.hpp"
#include "dengine/storage/byte_codec.hpp"
#include "dengine/storage/member_addresses_codec.hpp"

namespace dengine::storage {

/// `hs` in the layout above.
inline std::string encode_hard_state(const HardState& hs) {
  std::string out;
  bytes::put_be64(out, hs.term);
  bytes::put_be64(out, hs.vote);
  bytes::put_be64(out, hs.commit);
  return out;
}

/// The hard state in `v`; nullopt when `v` is not 24 bytes.
inline std::optional<HardState> decode_hard_state(std::string_view v) noexcept {
  if (v.size() != 24) return std::nullopt;
  return HardState{bytes::get_be64(v.data()), bytes::get_be64(v.data() + 8),
                   bytes::get_be64(v.data() + 16)};
}

/// `meta` in the layout above.
inline std::string encode_snapshot_meta(const SnapshotMeta& meta) {
  std::string out;
  bytes::put_be64(out, meta.index);
  bytes::put_be64(out, meta.term);
  for (const auto* ids : {&meta.membership.voters, &meta.membership.learners}) {
    bytes::put_be32(out, static_cast<std::uint32_t>(ids->size()));
    for (NodeId id : *ids) bytes::put_be64(out, id);
  }
  bytes::put_be32(out, static_cast<std::uint32_t>(meta.membership.addresses.size()));
  for (const auto& [id, address] : meta.membership.addresses) {
    bytes::put_be64(out, id);
    bytes::put_be32(out, static_cast<std::uint32_t>(address.size()));
    out += address;
  }
  return out;
}

/// The snapshot meta in `v`; nullopt when `v` is too short for what it says it holds or has
/// bytes past its end.
inline std::optional<SnapshotMeta> decode_snapshot_meta(std::string_view v) {
  if (v.size() < 16) return std::nullopt;
  SnapshotMeta meta;
  meta.index = bytes::get_be64(v.data());
  meta.term = bytes::get_be64(v.data() + 8);
  std::size_t pos = 16;
  for (auto* ids : {&meta.membership.voters, &meta.membership.learners}) {
    if (v.size() - pos < 4) return std::nullopt;
    const std::uint32_t n = bytes::get_be32(v.data() + pos);
    pos += 4;
    if ((v.size() - pos) / 8 < n) return std::nullopt;
    ids->reserve(n);
    for (std::uint32_t k = 0; k < n; ++k, pos += 8) ids->push_back(bytes::get_be64(v.data() + pos));
  }
  if (pos == v.size()) return meta;  // written before the address section existed
  if (v.size() - pos < 4) return std::nullopt;
  const std::uint32_t n = bytes::get_be32(v.data() + pos);
  pos += 4;
  for (std::uint32_t k = 0; k < n; ++k) {
    if (v.size() - pos < 12) return std::nullopt;
    const NodeId id = bytes::get_be64(v.data() + pos);
    const std::uint32_t length = bytes::get_be32(v.data() + pos + 8);
    pos += 12;
    if (length > max_address_size || v.size() - pos < length) return std::nullopt;
    meta.membership.addresses[id].assign(v.data() + pos, length);
    pos += length;
  }
  if (pos != v.size() || meta.membership.addresses.size() != n ||
      !meta.membership.addresses_well_formed())
    return std::nullopt;
  return meta;
}

}  // namespace dengine::storage
