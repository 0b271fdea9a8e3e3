#pragma once
/// The two small state files of the raw-file log, each replaced atomically (checked_file.hpp):
///
/// - `hardstate` (magic "DENGHARD"): term u64, vote u64, commit u64.
/// - `log.meta`  (magic "DENGMETA"): first_seq u64, last_seq u64, snapshot index u64, snapshot
///   term u64, voter count u32 + voter ids u64..., learner count u32 + learner ids u64...,
///   then the members' addresses (storage/member_addresses_codec.hpp; absent in files written
///   before members had addresses).
///   first_seq is the oldest segment still part of the log (older ones are leftovers of a
///   compaction or reset and are removed on open); last_seq the newest segment whose creation was
///   made durable (a newer one is a leftover of an interrupted roll or reset; a missing one up to
///   it is a lost segment); the snapshot is the compaction point.

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include <fmt/core.h>

#include "dengine/backends/rawfile/checked_file.hpp"
#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/storage/byte_codec.hpp"
#include "dengine/storage/member_addresses_codec.hpp"

namespace dengine::rawfile {

inline constexpr std::string_view hard_state_file = "hardstate";
inline constexpr std::string_view log_meta_file = "log.meta";
inline constexpr std::string_view hard_state_magic = "DENGHARD";
inline constexpr std::string_view log_meta_magic = "DENGMETA";

/// The contents of log.meta.
struct LogMeta {
  std::uint64_t first_seq = 1;
  std::uint64_t last_seq = 1;
  SnapshotMeta snapshot;

  friend bool operator==(const LogMeta&, const LogMeta&) = default;
};

/// The file bytes of a hard state.
inline std::string encode_hard_state(const HardState& hs) {
  std::string payload;
  bytes::put_le64(payload, hs.term);
  bytes::put_le64(payload, hs.vote);
  bytes::put_le64(payload, hs.commit);
  return checked_file::encode(hard_state_magic, payload);
}

/// The hard state in `data` (the contents of `file`).
inline result<HardState> decode_hard_state(std::string_view data,
                                           const std::filesystem::path& file) {
  DENGINE_TRY(payload, checked_file::decode(data, hard_state_magic, file));
  bytes::LeReader r(payload);
  auto term = r.u64();
  auto vote = r.u64();
  auto commit = r.u64();
  if (!term || !vote || !commit || r.remaining() != 0)
    return error(errc::storage_corrupt,
                 fmt::format("{}: hard state payload is {} bytes, expected 24", file.string(),
                             payload.size()));
  return HardState{*term, *vote, *commit};
}

/// The file bytes of a log meta.
inline std::string encode_log_meta(const LogMeta& m) {
  std::string payload;
  bytes::put_le64(payload, m.first_seq);
  bytes::put_le64(payload, m.last_seq);
  bytes::put_le64(payload, m.snapshot.index);
  bytes::put_le64(payload, m.snapshot.term);
  for (const auto* ids : {&m.snapshot.membership.voters, &m.snapshot.membership.learners}) {
    bytes::put_le32(payload, static_cast<std::uint32_t>(ids->size()));
    for (auto id : *ids) bytes::put_le64(payload, id);
  }
  storage::put_member_addresses_le(payload, m.snapshot.membership.addresses);
  return checked_file::encode(log_meta_magic, payload);
}

/// The log meta in `data` (the contents of `file`).
inline result<LogMeta> decode_log_meta(std::string_view data, const std::filesystem::path& file) {
  DENGINE_TRY(payload, checked_file::decode(data, log_meta_magic, file));
  auto malformed = [&](std::string_view why) {
    return error(errc::storage_corrupt,
                 fmt::format("{}: malformed log meta: {}", file.string(), why));
  };
  bytes::LeReader r(payload);
  LogMeta m;
  auto first = r.u64();
  auto last = r.u64();
  auto index = r.u64();
  auto term = r.u64();
  if (!first || !last || !index || !term) return malformed("truncated fixed fields");
  m.first_seq = *first;
  m.last_seq = *last;
  m.snapshot.index = *index;
  m.snapshot.term = *term;
  for (auto* ids : {&m.snapshot.membership.voters, &m.snapshot.membership.learners}) {
    auto count = r.u32();
    if (!count || r.remaining() / 8 < *count) return malformed("truncated membership");
    for (std::uint32_t i = 0; i < *count; ++i) ids->push_back(*r.u64());
  }
  if (r.remaining() != 0) {  // else written before the address section existed
    auto addresses = storage::read_member_addresses_le(r);
    if (!addresses) return malformed("bad member addresses");
    m.snapshot.membership.addresses = std::move(*addresses);
    if (!m.snapshot.membership.addresses_well_formed())
      return malformed("an address for a non-member");
  }
  if (r.remaining() != 0) return malformed("trailing bytes");
  if (m.first_seq == 0 || m.first_seq > m.last_seq)
    return malformed(fmt::format("segment range [{}, {}] is empty", m.first_seq, m.last_seq));
  return m;
}

}  // namespace dengine::rawfile
