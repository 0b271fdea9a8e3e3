#pragma once
/// The payload of a messages frame (frame.hpp): raft::Message, every field, in wire version 1.
/// All integers little-endian and fixed-width, so the encoding of a message is unique and a
/// decoded message re-encodes to the same bytes (docs/wire.md has the tables):
///
///   batch     count (4) | message * count
///   message   type (1) | flags (1) | from, to, term, log_term, index, commit, reject_hint,
///             context (8 each) | entry count (4) | entry * count | [snapshot if flags bit 1]
///   flags     bit 0 reject, bit 1 snapshot present; other bits must be 0
///   entry     term (8) | index (8) | type (1) | data length (4) | data
///   snapshot  index (8) | term (8) | voter count (4) | voters (8 each)
///             | learner count (4) | learners (8 each)
///             | address count (4) | (member id (8) | length (4) | address) each
///             | data length (4) | data
///
/// Decoding refuses (errc::malformed, naming the field and offset): a count or length past the
/// bytes left (checked before allocating), an unknown message or entry type, unknown flag bits,
/// a membership that breaks Membership's invariant (sorted, no duplicates, disjoint, no id 0,
/// addresses only for members, in increasing id order, non-empty and at most
/// storage::max_address_size bytes),
/// and bytes after the end.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/raft/message.hpp"
#include "dengine/storage/byte_codec.hpp"
#include "dengine/storage/member_addresses_codec.hpp"
#include "dengine/wire/reader.hpp"

namespace dengine::wire {

namespace message_layout {
/// type, flags, eight u64 fields, the entry count.
inline constexpr std::size_t fixed_size = 1 + 1 + 8 * 8 + 4;
/// term, index, type, data length.
inline constexpr std::size_t entry_fixed_size = 8 + 8 + 1 + 4;
/// index, term, three counts, data length.
inline constexpr std::size_t snapshot_fixed_size = 8 + 8 + 4 + 4 + 4 + 4;
/// member id, address length.
inline constexpr std::size_t address_fixed_size = 8 + 4;
inline constexpr std::uint8_t flag_reject = 1U << 0U;
inline constexpr std::uint8_t flag_snapshot = 1U << 1U;
inline constexpr std::uint8_t max_message_type =
    static_cast<std::uint8_t>(raft::MessageType::leader_call_response);
inline constexpr std::uint8_t max_entry_type = static_cast<std::uint8_t>(EntryType::config_change);
}  // namespace message_layout

/// The exact size of `m` encoded (for reserving and for batching by bytes).
[[nodiscard]] inline std::size_t encoded_size(const raft::Message& m) noexcept {
  using namespace message_layout;
  std::size_t n = fixed_size;
  for (const auto& e : m.entries) n += entry_fixed_size + e.data.size();
  if (m.snapshot) {
    const auto& ms = m.snapshot->meta.membership;
    n +=
        snapshot_fixed_size + 8 * (ms.voters.size() + ms.learners.size()) + m.snapshot->data.size();
    for (const auto& [id, address] : ms.addresses) n += address_fixed_size + address.size();
  }
  return n;
}

/// Appends `m` to `out` but for its snapshot's data bytes, which come last in its encoding: so
/// head + m.snapshot->data is `m` encoded (what a snapshot stream sends without copying the
/// image, net/snapshot_sender.hpp). The whole of `m` when it carries no snapshot.
/// Precondition: every count and length fits a u32 (a frame's payload length does, so a message
/// that does not could not be sent anyway).
inline void append_message_head(std::string& out, const raft::Message& m) {
  using namespace message_layout;
  out.push_back(static_cast<char>(m.type));
  out.push_back(
      static_cast<char>((m.reject ? flag_reject : 0U) | (m.snapshot ? flag_snapshot : 0U)));
  for (std::uint64_t v :
       {m.from, m.to, m.term, m.log_term, m.index, m.commit, m.reject_hint, m.context}) {
    bytes::put_le64(out, v);
  }
  bytes::put_le32(out, static_cast<std::uint32_t>(m.entries.size()));
  for (const auto& e : m.entries) {
    bytes::put_le64(out, e.term);
    bytes::put_le64(out, e.index);
    out.push_back(static_cast<char>(e.type));
    bytes::put_le32(out, static_cast<std::uint32_t>(e.data.size()));
    out.append(e.data);
  }
  if (!m.snapshot) return;
  const Snapshot& s = *m.snapshot;
  bytes::put_le64(out, s.meta.index);
  bytes::put_le64(out, s.meta.term);
  for (const auto* ids : {&s.meta.membership.voters, &s.meta.membership.learners}) {
    bytes::put_le32(out, static_cast<std::uint32_t>(ids->size()));
    for (NodeId id : *ids) bytes::put_le64(out, id);
  }
  storage::put_member_addresses_le(out, s.meta.membership.addresses);
  bytes::put_le32(out, static_cast<std::uint32_t>(s.data.size()));
}

/// Appends `m` to `out` (precondition as append_message_head).
inline void append_message(std::string& out, const raft::Message& m) {
  append_message_head(out, m);
  if (m.snapshot) out.append(m.snapshot->data);
}

/// `m` alone, as append_message writes it.
[[nodiscard]] inline std::string encode_message(const raft::Message& m) {
  std::string out;
  out.reserve(encoded_size(m));
  append_message(out, m);
  return out;
}

/// A batch payload: the count, then each message.
[[nodiscard]] inline std::string encode_messages(std::span<const raft::Message> batch) {
  std::size_t n = 4;
  for (const auto& m : batch) n += encoded_size(m);
  std::string out;
  out.reserve(n);
  bytes::put_le32(out, static_cast<std::uint32_t>(batch.size()));
  for (const auto& m : batch) append_message(out, m);
  return out;
}

namespace detail {

/// A member list: strictly increasing (so sorted, without duplicates) and without id 0.
inline result<std::vector<NodeId>> read_members(Reader& r, std::string_view field) {
  DENGINE_TRY(n, r.count(field, 8));
  std::vector<NodeId> ids;
  ids.reserve(n);
  for (std::uint32_t k = 0; k < n; ++k) {
    DENGINE_TRY(id, r.u64(field));
    if (id == no_node || (!ids.empty() && id <= ids.back())) {
      return r.fail(field, "member id " + std::to_string(id) +
                               " is 0 or not above the one before (the list must be sorted)");
    }
    ids.push_back(id);
  }
  return ids;
}

/// The members' addresses: ids strictly increasing, each a voter or a learner, each address
/// non-empty and at most storage::max_address_size bytes.
inline result<std::map<NodeId, std::string>> read_addresses(Reader& r,
                                                            const std::vector<NodeId>& voters,
                                                            const std::vector<NodeId>& learners) {
  constexpr std::string_view field = "snapshot addresses";
  DENGINE_TRY(n, r.count(field, message_layout::address_fixed_size));
  std::map<NodeId, std::string> addresses;
  NodeId previous = no_node;
  for (std::uint32_t k = 0; k < n; ++k) {
    DENGINE_TRY(id, r.u64(field));
    if (id <= previous)
      return r.fail(field, "member id " + std::to_string(id) + " is not above the one before");
    if (!std::binary_search(voters.begin(), voters.end(), id) &&
        !std::binary_search(learners.begin(), learners.end(), id))
      return r.fail(field, "member id " + std::to_string(id) + " is not a voter or a learner");
    DENGINE_TRY(address, r.sized_bytes(field));
    if (address.empty() || address.size() > storage::max_address_size)
      return r.fail(field, "address of member " + std::to_string(id) + " is " +
                               std::to_string(address.size()) + " bytes (1 to " +
                               std::to_string(storage::max_address_size) + " allowed)");
    addresses.emplace_hint(addresses.end(), id, std::string(address));
    previous = id;
  }
  return addresses;
}

inline result<std::shared_ptr<const Snapshot>> read_snapshot(Reader& r) {
  auto s = std::make_shared<Snapshot>();
  DENGINE_TRY(index, r.u64("snapshot index"));
  DENGINE_TRY(term, r.u64("snapshot term"));
  DENGINE_TRY(voters, read_members(r, "snapshot voters"));
  DENGINE_TRY(learners, read_members(r, "snapshot learners"));
  for (NodeId id : learners) {
    if (std::binary_search(voters.begin(), voters.end(), id)) {
      return r.fail("snapshot learners", "member " + std::to_string(id) + " is also a voter");
    }
  }
  DENGINE_TRY(addresses, read_addresses(r, voters, learners));
  DENGINE_TRY(data, r.sized_bytes("snapshot data"));
  s->meta = SnapshotMeta{index, term,
                         Membership{std::move(voters), std::move(learners), std::move(addresses)}};
  s->data.assign(data);
  return std::shared_ptr<const Snapshot>(std::move(s));
}

inline result<Entry> read_entry(Reader& r) {
  Entry e;
  DENGINE_TRY(term, r.u64("entry term"));
  DENGINE_TRY(index, r.u64("entry index"));
  DENGINE_TRY(type, r.u8("entry type"));
  if (type > message_layout::max_entry_type) {
    return r.fail("entry type", "unknown entry type " + std::to_string(type));
  }
  DENGINE_TRY(data, r.sized_bytes("entry data"));
  e.term = term;
  e.index = index;
  e.type = static_cast<EntryType>(type);
  e.data.assign(data);
  return e;
}

inline result<raft::Message> read_message(Reader& r) {
  using namespace message_layout;
  raft::Message m;
  DENGINE_TRY(type, r.u8("message type"));
  if (type > max_message_type) {
    return r.fail("message type", "unknown message type " + std::to_string(type));
  }
  m.type = static_cast<raft::MessageType>(type);
  DENGINE_TRY(flags, r.u8("flags"));
  if ((flags & ~(flag_reject | flag_snapshot)) != 0) {
    return r.fail("flags", "unknown flag bits in " + std::to_string(flags));
  }
  m.reject = (flags & flag_reject) != 0;
  // In the order append_message writes them.
  using Field = std::pair<std::uint64_t*, std::string_view>;
  const Field fields[] = {{&m.from, "from"},
                          {&m.to, "to"},
                          {&m.term, "term"},
                          {&m.log_term, "log_term"},
                          {&m.index, "index"},
                          {&m.commit, "commit"},
                          {&m.reject_hint, "reject_hint"},
                          {&m.context, "context"}};
  for (const auto& [field, name] : fields) {
    DENGINE_TRY(v, r.u64(name));
    *field = v;
  }
  DENGINE_TRY(n, r.count("entry count", entry_fixed_size));
  m.entries.reserve(n);
  for (std::uint32_t k = 0; k < n; ++k) {
    DENGINE_TRY(e, read_entry(r));
    m.entries.push_back(std::move(e));
  }
  if ((flags & flag_snapshot) != 0) {
    DENGINE_TRY(s, read_snapshot(r));
    m.snapshot = std::move(s);
  }
  return m;
}

}  // namespace detail

/// The one message in `payload` (as encode_message writes it); malformed input is an error.
[[nodiscard]] inline result<raft::Message> decode_message(std::string_view payload) {
  Reader r(payload, "message");
  DENGINE_TRY(m, detail::read_message(r));
  DENGINE_TRYV(r.finish());
  return m;
}

/// The messages of a batch payload (as encode_messages writes it); malformed input is an error.
[[nodiscard]] inline result<std::vector<raft::Message>> decode_messages(std::string_view payload) {
  Reader r(payload, "message batch");
  DENGINE_TRY(n, r.count("message count", message_layout::fixed_size));
  std::vector<raft::Message> out;
  out.reserve(n);
  for (std::uint32_t k = 0; k < n; ++k) {
    DENGINE_TRY(m, detail::read_message(r));
    out.push_back(std::move(m));
  }
  DENGINE_TRYV(r.finish());
  return out;
}

}  // namespace dengine::wire
