#pragma once
/// What every record the LMDB backend stores carries, since LMDB checksums nothing:
///
/// - A CRC32C in the last four bytes of the value (big-endian), computed over the record's
///   database tag, its key's size, its key and the payload before the checksum. A flipped byte
///   in the key or the value, a record moved into another database, or a key and value whose
///   boundary shifted all fail the check. Every read verifies it. (A trailer, not a header: a
///   large payload then starts at the value's first byte, which LMDB places at a fixed offset in
///   its overflow pages, so copying it in and out stays aligned, which a 4-byte header would
///   spoil: glibc's large copies slow down markedly between differently aligned buffers.)
/// - Per database (log, kv and meta), a tally: the record count and an order-independent digest
///   (the sum, modulo 2^64, of a 64-bit mix of each record's checksum). The tallies live in the
///   meta database's "tally" record and change in the same write transaction as the records,
///   so a verification walk notices records a damaged B-tree page dropped, repeated, or replaced
///   by stale copies (LMDB leaves old versions of pages in the file), which per-record checksums
///   alone cannot see.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "dengine/backends/lmdb/codec.hpp"
#include "dengine/storage/crc32c.hpp"
#include "dengine/storage/record_check.hpp"

namespace dengine::lmdb::detail {

/// The three databases of a data dir. The value is the tag byte the record checksum starts
/// with, so a record is only valid in the database it was written to.
enum class Db : unsigned char { log = 'L', meta = 'M', kv = 'K' };

/// The databases, in the order the tally record lists them.
inline constexpr std::array<Db, 3> all_dbs{Db::log, Db::kv, Db::meta};

/// The database's name in LMDB and in error messages.
inline constexpr std::string_view db_name(Db db) noexcept {
  switch (db) {
    case Db::log: return "log";
    case Db::meta: return "meta";
    case Db::kv: return "kv";
  }
  return "?";
}

/// Bytes of the checksum after every stored payload.
inline constexpr std::size_t crc_bytes = 4;

/// A record checksum (storage::KeyedCrc) of a record in `db`: its domain is the tag byte.
class RecordCrc : public storage::KeyedCrc {
 public:
  RecordCrc(Db db, std::string_view key) noexcept : KeyedCrc(tag_crc(db), key) {}

 private:
  static std::uint32_t tag_crc(Db db) noexcept {
    const auto tag = static_cast<unsigned char>(db);
    return crc32c::extend(0, &tag, 1);
  }
};

/// The checksum of a record with `key` and `payload` in `db`.
inline std::uint32_t record_crc(Db db, std::string_view key, std::string_view payload) noexcept {
  RecordCrc crc(db, key);
  crc.add(payload);
  return crc.value();
}

/// Writes `crc` big-endian into the four bytes at out.
inline void store_crc(void* out, std::uint32_t crc) noexcept { bytes::store_be32(out, crc); }

/// The checksum stored in a value (its last four bytes). Precondition: at least four bytes.
inline std::uint32_t stored_crc(const void* value, std::size_t size) noexcept {
  return bytes::get_be32(static_cast<const char*>(value) + size - crc_bytes);
}

/// Record count and checksum digest of one database (see the file comment).
struct Tally {
  std::uint64_t count = 0;
  std::uint64_t digest = 0;

  /// The 64-bit value a record contributes to the digest: a mix of its checksum, so that two
  /// changes rarely cancel out in the sum (a plain sum of 32-bit values would let, say, one
  /// record lost and another's checksum raised by the same amount go unnoticed more easily).
  static std::uint64_t mix(std::uint32_t crc) noexcept {
    return storage::mix64(std::uint64_t{crc} << 32 | crc);
  }
  void add(std::uint32_t crc) noexcept {
    ++count;
    digest += mix(crc);
  }
  void remove(std::uint32_t crc) noexcept {
    --count;
    digest -= mix(crc);
  }
  friend bool operator==(const Tally&, const Tally&) = default;
};

/// The tallies of the three databases. The meta tally covers every meta record but the tally
/// record itself.
struct Tallies {
  Tally log;
  Tally kv;
  Tally meta;

  Tally& of(Db db) noexcept { return db == Db::log ? log : db == Db::kv ? kv : meta; }
  [[nodiscard]] const Tally& of(Db db) const noexcept {
    return db == Db::log ? log : db == Db::kv ? kv : meta;
  }
  friend bool operator==(const Tallies&, const Tallies&) = default;
};

/// Payload size of the tally record: count and digest of log, kv and meta (8 bytes each).
inline constexpr std::size_t tallies_bytes = 48;

inline std::string encode_tallies(const Tallies& t) {
  std::string out;
  out.reserve(tallies_bytes);
  for (Db db : all_dbs) {
    bytes::put_be64(out, t.of(db).count);
    bytes::put_be64(out, t.of(db).digest);
  }
  return out;
}

inline std::optional<Tallies> decode_tallies(std::string_view v) noexcept {
  if (v.size() != tallies_bytes) return std::nullopt;
  Tallies t;
  std::size_t pos = 0;
  for (Db db : all_dbs) {
    t.of(db).count = bytes::get_be64(v.data() + pos);
    t.of(db).digest = bytes::get_be64(v.data() + pos + 8);
    pos += 16;
  }
  return t;
}

using storage::printable;

/// How an error names a record: "database log, index 12", "database kv, key \"a/b\"",
/// "database meta, record \"hard_state\"", or the raw key when it does not have the shape its
/// database gives keys (itself a sign of damage).
inline std::string describe_record(Db db, std::string_view key) {
  std::string out = "database " + std::string(db_name(db)) + ", ";
  switch (db) {
    case Db::log:
      if (key.size() == 8) return out + "index " + std::to_string(bytes::get_be64(key.data()));
      return out + "key " + printable(key) + " (not an 8-byte index)";
    case Db::kv:
      if (!key.empty() && key.front() == kv_tag) return out + "key " + printable(key.substr(1));
      return out + "stored key " + printable(key) + " (without the kv tag byte)";
    case Db::meta: return out + "record " + printable(key);
  }
  return out;
}

}  // namespace dengine::lmdb::detail
