#pragma once
/// Byte layouts of what the LMDB backend stores. All integers are big-endian, so that LMDB's
/// default key order (memcmp) is numeric order for index keys.
///
/// Every value ends with the record's CRC32C (4 bytes, record.hpp: over the database tag, the
/// key's size, the key and the payload); "payload" below is what comes before it.
///
///   log DB    key = index (8 bytes)  payload = data | term (8) | type (1)
///             (data first: a large entry's data then sits at the start of its overflow pages,
///             where copying it in and out is aligned)
///   meta DB   "format"               payload = format version (4)
///             "hard_state"           payload = term (8) | vote (8) | commit (8)
///             "snapshot"             payload = index (8) | term (8) | n voters (4)
///                                              | voters (8 each) | n learners (4)
///                                              | learners (8 each)
///             "kv_applied"           payload = applied index (8)
///             "tally"                payload = count (8) | digest (8), for log, kv and meta
///                                              (record.hpp; meta's excludes "tally" itself)
///   kv DB     key = 'k' | user key   payload = user value
///             (the tag byte lets the empty key exist: LMDB rejects zero-length keys)
///
/// A store is created with "format" and "tally" in its first transaction; no other meta key
/// exists in a sound store. Format version 1 (before record checksums) stored the same layout
/// without them; it is refused (incompatible_version), never read.

#include <lmdb.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dengine/core/types.hpp"
#include "dengine/storage/byte_codec.hpp"
#include "dengine/storage/meta_codec.hpp"

namespace dengine::lmdb::detail {

/// Version of the layout above; a data dir with another version fails incompatible_version.
inline constexpr std::uint32_t format_version = 2;
/// The last version without record checksums: its format record is the bare 4-byte version.
inline constexpr std::uint32_t unchecked_format_version = 1;

inline constexpr std::string_view format_key = "format";
inline constexpr std::string_view hard_state_key = "hard_state";
inline constexpr std::string_view snapshot_key = "snapshot";
inline constexpr std::string_view kv_applied_key = "kv_applied";
inline constexpr std::string_view tally_key = "tally";
inline constexpr char kv_tag = 'k';

/// Size of the term (8) and type (1) after an entry's data.
inline constexpr std::size_t entry_tail_size = 9;

/// An MDB_val viewing `s` (LMDB never writes through a key or data argument of a put/get).
inline MDB_val as_val(std::string_view s) noexcept {
  return MDB_val{s.size(), const_cast<char*>(s.data())};
}
/// The bytes an MDB_val refers to (valid until the transaction ends).
inline std::string_view as_view(const MDB_val& v) noexcept {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}

/// A log key: the index as 8 big-endian bytes.
class IndexKey {
 public:
  explicit IndexKey(LogIndex index) noexcept { bytes::store_be64(bytes_, index); }
  /// An MDB_val viewing the key; valid while this object lives.
  MDB_val val() noexcept { return MDB_val{sizeof bytes_, bytes_}; }
  /// The key's bytes; valid while this object lives.
  [[nodiscard]] std::string_view view() const noexcept {
    return {reinterpret_cast<const char*>(bytes_), sizeof bytes_};
  }

 private:
  unsigned char bytes_[8] = {};
};

/// The index a log key holds, or nullopt when the key is not 8 bytes (corruption).
inline std::optional<LogIndex> decode_index_key(const MDB_val& key) noexcept {
  if (key.mv_size != 8) return std::nullopt;
  return bytes::get_be64(key.mv_data);
}

/// The term and type that follow an entry's data in its payload.
class EntryTail {
 public:
  explicit EntryTail(const Entry& e) noexcept {
    bytes::store_be64(bytes_, e.term);
    bytes_[8] = static_cast<char>(e.type);
  }
  /// The header's bytes; valid while this object lives.
  [[nodiscard]] std::string_view view() const noexcept { return {bytes_, sizeof bytes_}; }

 private:
  char bytes_[entry_tail_size] = {};
};

/// Whether an entry payload has its term and a known type.
inline bool entry_well_formed(std::string_view payload) noexcept {
  return payload.size() >= entry_tail_size &&
         static_cast<unsigned char>(payload.back()) <=
             static_cast<unsigned char>(EntryType::config_change);
}

/// Decodes the payload stored at `index`; false when it is too short or has an unknown type.
inline bool decode_entry(LogIndex index, std::string_view payload, Entry& out) {
  if (!entry_well_formed(payload)) return false;
  const std::size_t data_size = payload.size() - entry_tail_size;
  out.term = bytes::get_be64(payload.data() + data_size);
  out.index = index;
  out.type = static_cast<EntryType>(static_cast<unsigned char>(payload.back()));
  out.data.assign(payload.substr(0, data_size));
  return true;
}

/// The term of an entry payload; nullopt when it is malformed.
inline std::optional<Term> decode_entry_term(std::string_view payload) noexcept {
  if (!entry_well_formed(payload)) return std::nullopt;
  return bytes::get_be64(payload.data() + payload.size() - entry_tail_size);
}

// The hard state and snapshot meta payloads (the layouts above) are storage/meta_codec.hpp's.
using storage::decode_hard_state;
using storage::decode_snapshot_meta;
using storage::encode_hard_state;
using storage::encode_snapshot_meta;

/// Just the index and term of an encoded snapshot meta (what term() needs); nullopt if short.
inline std::optional<std::pair<LogIndex, Term>> decode_snapshot_point(std::string_view v) noexcept {
  if (v.size() < 16) return std::nullopt;
  return std::pair<LogIndex, Term>{bytes::get_be64(v.data()), bytes::get_be64(v.data() + 8)};
}

}  // namespace dengine::lmdb::detail
