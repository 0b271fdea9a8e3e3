#pragma once
/// How the KV state machine lays out its state in a KvStore's flat, ordered key space.
///
///   "m" + name                      → meta values (revision, compacted revision, restore marker)
///   "v" + esc(key) + 00 01 + ~main + ~sub  → one version of `key` (a put or a tombstone)
///   "l" + be64(lease id)            → a lease (its ttl)
///   "a" + be64(lease id) + key      → `key` is attached to the lease (empty value)
///
/// esc() escapes each 0x00 byte as 00 FF and the key is terminated by 00 01, so the encoding is
/// order-preserving: user keys sort as they would raw, and esc(k) + 00 01 + anything sorts
/// before esc(k') for every k' > k. ~main and ~sub are big-endian bitwise complements, so a
/// key's versions sort newest first: the first record at or after version_seek(key, R) is the
/// version visible at revision R.

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "dengine/core/error.hpp"
#include "dengine/statemachines/kv/bytes.hpp"
#include "dengine/statemachines/kv/types.hpp"

namespace dengine::kv::keyspace {

inline constexpr char meta_prefix = 'm';
inline constexpr char version_prefix = 'v';
inline constexpr char lease_prefix = 'l';
inline constexpr char attach_prefix = 'a';

/// Meta key: the current store revision (be64).
inline const std::string meta_revision = "m/revision";
/// Meta key: the compacted revision (be64; absent = 0).
inline const std::string meta_compacted = "m/compacted";
/// Meta key: present while a snapshot restore is incomplete (its data must not be trusted).
inline const std::string meta_restoring = "m/restoring";

/// A version record's address: which key, at which (main, sub) revision.
struct VersionKey {
  std::string key;
  Revision main = 0;
  std::uint64_t sub = 0;
};

/// Appends esc(key): each 0x00 becomes 00 FF.
inline void append_escaped(std::string& out, std::string_view key) {
  for (char c : key) {
    out.push_back(c);
    if (c == '\0') out.push_back('\xFF');
  }
}

/// "v" + esc(key): sorts at or before every version of every key >= `key`, and after every
/// version of every key < `key`. Used for range bounds.
inline std::string version_bound(std::string_view key, std::size_t reserve_extra = 0) {
  std::string out;
  // One allocation for `reserve_extra` more bytes, unless the key holds NUL bytes (each is
  // escaped to two).
  out.reserve(1 + key.size() + reserve_extra);
  out.push_back(version_prefix);
  append_escaped(out, key);
  return out;
}

/// The common prefix of every version of `key`.
inline std::string version_prefix_of(std::string_view key, std::size_t reserve_extra = 0) {
  std::string out = version_bound(key, 2 + reserve_extra);
  out.append("\x00\x01", 2);
  return out;
}

/// Sorts after every version of `key` and before anything of a greater key.
inline std::string version_end_of(std::string_view key) {
  std::string out = version_bound(key);
  out.append("\x00\x02", 2);
  return out;
}

/// End of the whole version space.
inline std::string version_space_end() {
  return std::string(1, static_cast<char>(version_prefix + 1));
}

/// The address of version (main, sub) of `key`.
inline std::string version_key(std::string_view key, Revision main, std::uint64_t sub) {
  std::string out = version_prefix_of(key, 16);
  ByteWriter w(out);
  w.fixed64_be(~static_cast<std::uint64_t>(main));
  w.fixed64_be(~sub);
  return out;
}

/// Where to start scanning to find the version of `key` visible at revision `at`: sorts before
/// every version with main <= at and after every version with main > at.
inline std::string version_seek(std::string_view key, Revision at) {
  return version_key(key, at, std::numeric_limits<std::uint64_t>::max());
}

/// Parses a version address; anything malformed is storage_corrupt (it came from the store).
inline result<VersionKey> parse_version_key(std::string_view k) {
  auto corrupt = [&] {
    return error(errc::storage_corrupt,
                 "kv store: malformed version key of " + std::to_string(k.size()) + " bytes");
  };
  if (k.empty() || k[0] != version_prefix) return corrupt();
  VersionKey out;
  std::size_t i = 1;
  for (;;) {
    if (i >= k.size()) return corrupt();
    char c = k[i++];
    if (c != '\0') {
      out.key.push_back(c);
      continue;
    }
    if (i >= k.size()) return corrupt();
    char next = k[i++];
    if (next == '\xFF') {
      out.key.push_back('\0');
    } else if (next == '\x01') {
      break;
    } else {
      return corrupt();
    }
  }
  if (k.size() - i != 16) return corrupt();
  ByteReader r(k.substr(i), "kv store version key");
  auto main = r.fixed64_be("main");
  auto sub = r.fixed64_be("sub");
  if (!main || !sub) return corrupt();
  out.main = static_cast<Revision>(~main.value());
  out.sub = ~sub.value();
  return out;
}

/// One version of a key: a put (the key's fields at that revision) or a tombstone (a delete).
struct VersionRecord {
  bool tombstone = false;
  Revision create_revision = 0;
  std::int64_t version = 0;
  LeaseId lease = no_lease;
  std::string_view value;  ///< points into the decoded buffer
};

/// Encodes a put record: kind 1, create, version, lease, then the value bytes to the end.
inline std::string encode_put_record(Revision create_revision, std::int64_t version, LeaseId lease,
                                     std::string_view value) {
  std::string out;
  out.reserve(value.size() + 31);  // kind byte + three varints of at most 10 bytes
  ByteWriter w(out);
  w.u8(1);
  w.svarint(create_revision);
  w.svarint(version);
  w.svarint(lease);
  w.raw(value);
  return out;
}

/// Encodes a tombstone record: kind 2 alone.
inline std::string encode_tombstone_record() { return std::string(1, '\x02'); }

/// Decodes a version record (storage_corrupt if malformed). The value views `bytes`.
inline result<VersionRecord> decode_version_record(std::string_view bytes) {
  ByteReader r(bytes, "kv store version record");
  auto corrupt = [](const error& e) { return error(errc::storage_corrupt, e.detail); };
  auto kind = r.u8("kind");
  if (!kind) return corrupt(kind.error());
  VersionRecord rec;
  if (kind.value() == 2) {
    rec.tombstone = true;
    if (!r.at_end()) return corrupt(r.fail("trailing bytes after tombstone"));
    return rec;
  }
  if (kind.value() != 1) return corrupt(r.fail("unknown record kind"));
  auto create = r.svarint("create_revision");
  if (!create) return corrupt(create.error());
  auto version = r.svarint("version");
  if (!version) return corrupt(version.error());
  auto lease = r.svarint("lease");
  if (!lease) return corrupt(lease.error());
  rec.create_revision = create.value();
  rec.version = version.value();
  rec.lease = lease.value();
  rec.value = r.rest();
  return rec;
}

/// The KeyValue a put record describes.
inline KeyValue to_key_value(std::string key, Revision mod_revision, const VersionRecord& rec) {
  return KeyValue{std::move(key), rec.create_revision,    mod_revision,
                  rec.version,    std::string(rec.value), rec.lease};
}

/// "l" + be64(id): a lease record.
inline std::string lease_key(LeaseId id) {
  std::string out(1, lease_prefix);
  ByteWriter(out).fixed64_be(static_cast<std::uint64_t>(id));
  return out;
}

/// "a" + be64(id): the prefix of every attachment of lease `id`.
inline std::string attach_prefix_of(LeaseId id) {
  std::string out(1, attach_prefix);
  ByteWriter(out).fixed64_be(static_cast<std::uint64_t>(id));
  return out;
}

/// "a" + be64(id) + key: `key` is attached to lease `id`.
inline std::string attach_key(LeaseId id, std::string_view key) {
  std::string out = attach_prefix_of(id);
  out.append(key);
  return out;
}

/// The lease id of a lease or attachment key (after its prefix byte).
inline result<LeaseId> parse_lease_id(std::string_view k) {
  if (k.size() < 9) {
    return error(errc::storage_corrupt,
                 "kv store: lease key of " + std::to_string(k.size()) + " bytes is too short");
  }
  ByteReader r(k.substr(1, 8), "kv store lease key");
  auto id = r.fixed64_be("id");
  if (!id) return error(errc::storage_corrupt, id.error().detail);
  return static_cast<LeaseId>(id.value());
}

/// A be64 meta value.
inline std::string encode_u64(std::uint64_t v) {
  std::string out;
  ByteWriter(out).fixed64_be(v);
  return out;
}

/// Decodes a be64 meta value named `what` (storage_corrupt if not exactly 8 bytes).
inline result<std::uint64_t> decode_u64(std::string_view bytes, std::string_view what) {
  if (bytes.size() != 8) {
    return error(errc::storage_corrupt, "kv store: meta value " + std::string(what) + " has " +
                                            std::to_string(bytes.size()) + " bytes, expected 8");
  }
  ByteReader r(bytes);
  return r.fixed64_be(what).value();
}

}  // namespace dengine::kv::keyspace
