#pragma once
/// The envelope of the raw-file backend's small whole files (hard state, log meta, KV snapshot):
///
///     offset 0   magic          8 bytes, one per file kind
///            8   version        u32 (1)
///           12   reserved       u32 (0)
///           16   payload bytes  u64
///           24   payload
///     24 + n     crc32c         u32 over bytes [0, 24 + n)
///
/// All integers little-endian. These files are only ever replaced atomically (temp file, fsync,
/// rename, fsync dir), so any mismatch — wrong size, magic or checksum — is corruption, never a
/// torn write, and is reported as `storage_corrupt` naming the file and the offset.

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include <fmt/core.h>

#include "dengine/core/error.hpp"
#include "dengine/storage/byte_codec.hpp"
#include "dengine/storage/crc32c.hpp"

namespace dengine::rawfile::checked_file {

inline constexpr std::size_t header_bytes = 24;
inline constexpr std::uint32_t format_version = 1;

/// Header + payload + checksum for a file of kind `magic` (exactly 8 characters).
inline std::string encode(std::string_view magic, std::string_view payload) {
  std::string out;
  out.reserve(header_bytes + payload.size() + 4);
  out.append(magic.substr(0, 8));
  bytes::put_le32(out, format_version);
  bytes::put_le32(out, 0);
  bytes::put_le64(out, payload.size());
  out.append(payload);
  bytes::put_le32(out, crc32c::value(std::string_view(out)));
  return out;
}

/// The payload of `data` (the contents of `file`), after checking size, magic, version and
/// checksum. The returned view points into `data`.
inline result<std::string_view> decode(std::string_view data, std::string_view magic,
                                       const std::filesystem::path& file) {
  auto corrupt = [&](std::uint64_t offset, std::string_view why) {
    return error(errc::storage_corrupt,
                 fmt::format("{} at offset {}: {}", file.string(), offset, why));
  };
  if (data.size() < header_bytes + 4)
    return corrupt(data.size(), fmt::format("file is {} bytes, shorter than the {}-byte minimum",
                                            data.size(), header_bytes + 4));
  if (data.substr(0, 8) != magic.substr(0, 8))
    return corrupt(0, "bad magic (not this kind of file)");
  auto version = bytes::get_le32(data.data() + 8);
  if (version != format_version)
    return error(errc::incompatible_version,
                 fmt::format("{}: format version {}, this build reads version {}", file.string(),
                             version, format_version));
  auto length = bytes::get_le64(data.data() + 16);
  if (length != data.size() - header_bytes - 4)
    return corrupt(16, fmt::format("header says {} payload bytes, file holds {}", length,
                                   data.size() - header_bytes - 4));
  auto body = data.substr(0, data.size() - 4);
  auto stored = bytes::get_le32(data.data() + body.size());
  if (crc32c::value(body) != stored) return corrupt(body.size(), "checksum mismatch");
  return data.substr(header_bytes, length);
}

}  // namespace dengine::rawfile::checked_file
