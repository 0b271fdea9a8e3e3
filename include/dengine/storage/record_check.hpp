#pragma once
/// Pieces of the record checks shared by the backends whose libraries checksum nothing (LMDB,
/// SQLite): every record carries a CRC32C over where it belongs, its key and its value
/// (KeyedCrc), and each table or database keeps a count and an order-independent digest of its
/// records' checksums, each record mixed to 64 bits first (mix64). The exact bytes that go in
/// are each backend's format (its record.hpp); these helpers only compute them.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "dengine/storage/byte_codec.hpp"
#include "dengine/storage/crc32c.hpp"

namespace dengine::storage {

/// A record's CRC32C, built from pieces: the checksum of the record's domain (which table or
/// database it belongs to, so that a record is valid only there), then the key's size as a
/// big-endian u32 (the key/value boundary is inside the checksum), the key, and the payload in
/// any number of pieces (so a header and large data need not be copied together first).
class KeyedCrc {
 public:
  /// Starts after `domain_crc` = crc32c::value(domain bytes) with the size and bytes of `key`.
  KeyedCrc(std::uint32_t domain_crc, std::string_view key) noexcept {
    unsigned char size[4];
    bytes::store_be32(size, static_cast<std::uint32_t>(key.size()));
    crc_ = crc32c::extend(domain_crc, size, sizeof size);
    crc_ = crc32c::extend(crc_, key.data(), key.size());
  }
  /// Continues over the next piece of the payload.
  void add(std::string_view piece) noexcept {
    crc_ = crc32c::extend(crc_, piece.data(), piece.size());
  }
  /// The checksum of everything so far.
  [[nodiscard]] std::uint32_t value() const noexcept { return crc_; }

 private:
  std::uint32_t crc_ = 0;
};

/// The splitmix64 finaliser: spreads a record's checksum over 64 bits before it enters a sum
/// digest, so that two changes rarely cancel out.
inline std::uint64_t mix64(std::uint64_t z) noexcept {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/// `bytes` quoted for an error message: printable ASCII as is, `"` and `\` escaped, anything
/// else as \xNN; longer than `limit` bytes it is cut and its size given.
inline std::string printable(std::string_view bytes, std::size_t limit = 64) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out = "\"";
  for (std::size_t k = 0; k < bytes.size() && k < limit; ++k) {
    const auto c = static_cast<unsigned char>(bytes[k]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xf];
    }
  }
  out += '"';
  if (bytes.size() > limit) out += "... (" + std::to_string(bytes.size()) + " bytes)";
  return out;
}

}  // namespace dengine::storage
