#pragma once
/// The log segment file format of the raw-file backend (see engine.hpp for how segments form a
/// log and how recovery reads them).
///
/// A segment is `log-<seq, 20 decimal digits>.seg`, preallocated (zero-filled) to
/// Options::segment_bytes (or, with Options::preallocate off, as long as its records), and holds a
/// header followed by records, each starting at an offset that is a multiple of 8:
///
///     header (40 bytes)
///       0  magic "DENGSEG\0"     8  version u32 (1)   12  header size u32 (40)
///      16  seq u64               24  base index u64 (the log's last index + 1 when the segment
///                                    was created: where its first entry record goes)
///      32  reserved u32 (0)      36  crc32c u32 of bytes [0, 36)
///
///     record frame (12 bytes + payload, then zero padding up to the next multiple of 8)
///       0  crc32c u32 of bytes [4, 12 + length)  — covers length, kind and payload
///       4  length u32 (payload bytes)             8  kind u8    9  reserved, 3 zero bytes
///      12  payload
///
///     kind 1, entry:    index u64, term u64, entry type u8, data (length - 17 bytes)
///     kind 2, truncate: index u64 — entries at and after index are removed (a conflicting
///                       suffix about to be replaced); always followed by entry records
///
/// An all-zero frame is never valid (the CRC32C of 8 zero bytes is not 0), so zeros after the last
/// record mark the end of the written part of a preallocated segment.

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/core.h>

#include "dengine/core/types.hpp"
#include "dengine/storage/byte_codec.hpp"
#include "dengine/storage/crc32c.hpp"

namespace dengine::rawfile::segment {

inline constexpr std::size_t header_bytes = 40;
inline constexpr std::size_t frame_bytes = 12;
inline constexpr std::size_t alignment = 8;
inline constexpr std::uint32_t format_version = 1;
inline constexpr std::string_view magic{"DENGSEG\0", 8};
/// Payload bytes of an entry record before its data.
inline constexpr std::size_t entry_fixed_bytes = 17;
/// Largest payload accepted; also bounds what a corrupt length field can make recovery read.
inline constexpr std::uint32_t max_payload_bytes = 1U << 30;

/// What a record does to the log.
enum class RecordKind : std::uint8_t { entry = 1, truncate = 2 };

/// `n` rounded up to a multiple of 8.
constexpr std::uint64_t align_up(std::uint64_t n) noexcept {
  return (n + alignment - 1) & ~(alignment - 1);
}

/// Bytes a record with `payload` bytes occupies in a segment, padding included.
constexpr std::uint64_t record_bytes(std::uint64_t payload) noexcept {
  return align_up(frame_bytes + payload);
}

/// Bytes the entry record of `e` occupies.
inline std::uint64_t entry_record_bytes(const Entry& e) noexcept {
  return record_bytes(entry_fixed_bytes + e.data.size());
}

/// The file name of segment `seq`.
inline std::string file_name(std::uint64_t seq) { return fmt::format("log-{:020}.seg", seq); }

/// The sequence number in a segment file name, or nullopt for any other name.
inline std::optional<std::uint64_t> parse_file_name(std::string_view name) {
  if (name.size() != 28 || name.substr(0, 4) != "log-" || name.substr(24) != ".seg")
    return std::nullopt;
  std::uint64_t seq = 0;
  auto digits = name.substr(4, 20);
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), seq);
  if (ec != std::errc() || ptr != digits.data() + digits.size()) return std::nullopt;
  return seq;
}

/// A segment header's contents.
struct Header {
  std::uint64_t seq = 0;
  LogIndex base = 0;
};

/// The 40 header bytes of segment `seq` whose first entry would be `base`.
inline std::string encode_header(std::uint64_t seq, LogIndex base) {
  std::string out(magic);
  bytes::put_le32(out, format_version);
  bytes::put_le32(out, static_cast<std::uint32_t>(header_bytes));
  bytes::put_le64(out, seq);
  bytes::put_le64(out, base);
  bytes::put_le32(out, 0);
  bytes::put_le32(out, crc32c::value(std::string_view(out)));
  return out;
}

/// The header at the start of `bytes`, or a reason why it is not one.
struct HeaderCheck {
  std::optional<Header> header;
  std::string problem;  ///< set when header is empty
  bool version_mismatch = false;
};

/// Checks and decodes the header at the start of `bytes`.
inline HeaderCheck decode_header(std::string_view bytes) {
  HeaderCheck out;
  if (bytes.size() < header_bytes) {
    out.problem = fmt::format("file is {} bytes, shorter than the {}-byte segment header",
                              bytes.size(), header_bytes);
    return out;
  }
  if (bytes.substr(0, 8) != magic) {
    out.problem = "bad segment magic";
    return out;
  }
  if (bytes::get_le32(bytes.data() + 36) != crc32c::value(bytes.substr(0, 36))) {
    out.problem = "segment header checksum mismatch";
    return out;
  }
  if (auto v = bytes::get_le32(bytes.data() + 8); v != format_version) {
    out.problem =
        fmt::format("segment format version {}, this build reads version {}", v, format_version);
    out.version_mismatch = true;
    return out;
  }
  if (bytes::get_le32(bytes.data() + 12) != header_bytes) {
    out.problem = "unexpected segment header size";
    return out;
  }
  out.header = Header{bytes::get_le64(bytes.data() + 16), bytes::get_le64(bytes.data() + 24)};
  return out;
}

namespace detail {
/// Appends a frame (checksum filled in) around the payload the caller writes with `fill`.
template <class Fill>
void append_record(std::string& out, RecordKind kind, std::size_t payload_bytes, Fill&& fill) {
  std::size_t start = out.size();
  bytes::put_le32(out, 0);  // crc, set below
  bytes::put_le32(out, static_cast<std::uint32_t>(payload_bytes));
  out.push_back(static_cast<char>(kind));
  out.append(3, '\0');
  fill(out);
  auto crc = crc32c::value(std::string_view(out).substr(start + 4));
  bytes::set_le32(out, start, crc);
  out.append(align_up(out.size() - start) - (out.size() - start), '\0');
}
}  // namespace detail

/// Appends the record of entry `e` to `out`.
inline void append_entry_record(std::string& out, const Entry& e) {
  detail::append_record(out, RecordKind::entry, entry_fixed_bytes + e.data.size(),
                        [&](std::string& o) {
                          bytes::put_le64(o, e.index);
                          bytes::put_le64(o, e.term);
                          o.push_back(static_cast<char>(e.type));
                          o.append(e.data);
                        });
}

/// Appends a record removing the entries at and after `index` to `out`.
inline void append_truncate_record(std::string& out, LogIndex index) {
  detail::append_record(out, RecordKind::truncate, 8,
                        [&](std::string& o) { bytes::put_le64(o, index); });
}

/// The outcome of reading the record frame at one offset.
enum class FrameStatus {
  ok,    ///< a complete frame whose checksum matches
  zero,  ///< the 12 frame bytes are all zero (or the file ends exactly here): no record
  bad,   ///< something is there but it is not a valid record (see Frame::problem)
};

/// A record frame as found at some offset of a segment.
struct Frame {
  FrameStatus status = FrameStatus::bad;
  RecordKind kind = RecordKind::entry;
  std::string_view payload;
  std::uint64_t total_bytes = 0;  ///< frame + payload + padding, when status == ok
  std::string problem;            ///< why, when status == bad
};

/// Reads the frame at `offset` of `file` (the whole segment's bytes). Never reads out of bounds.
inline Frame read_frame(std::string_view file, std::uint64_t offset) {
  Frame f;
  if (offset >= file.size()) {
    f.status = FrameStatus::zero;
    return f;
  }
  if (file.size() - offset < frame_bytes) {
    bool all_zero = file.substr(offset).find_first_not_of('\0') == std::string_view::npos;
    f.status = all_zero ? FrameStatus::zero : FrameStatus::bad;
    f.problem = "incomplete record frame at end of file";
    return f;
  }
  auto head = file.substr(offset, frame_bytes);
  if (head.find_first_not_of('\0') == std::string_view::npos) {
    f.status = FrameStatus::zero;
    return f;
  }
  auto length = bytes::get_le32(head.data() + 4);
  auto kind = static_cast<std::uint8_t>(head[8]);
  if (length > max_payload_bytes || length > file.size() - offset - frame_bytes) {
    f.problem = fmt::format("record length {} runs past the end of the file", length);
    return f;
  }
  if (bytes::get_le32(head.data()) !=
      crc32c::value(file.substr(offset + 4, frame_bytes - 4 + length))) {
    f.problem = "record checksum mismatch";
    return f;
  }
  if (kind != static_cast<std::uint8_t>(RecordKind::entry) &&
      kind != static_cast<std::uint8_t>(RecordKind::truncate)) {
    f.problem = fmt::format("unknown record kind {}", kind);
    return f;
  }
  f.status = FrameStatus::ok;
  f.kind = static_cast<RecordKind>(kind);
  f.payload = file.substr(offset + frame_bytes, length);
  f.total_bytes = std::min<std::uint64_t>(record_bytes(length), file.size() - offset);
  return f;
}

/// The decoded payload of a valid frame.
struct Record {
  RecordKind kind = RecordKind::entry;
  LogIndex index = 0;
  Term term = 0;
  EntryType type = EntryType::normal;
  std::string_view data;
};

/// Decodes a checksummed payload; nullopt when it is malformed (which, with a matching checksum,
/// means the file was written by something else).
inline std::optional<Record> decode_payload(RecordKind kind, std::string_view payload) {
  Record r;
  r.kind = kind;
  if (kind == RecordKind::truncate) {
    if (payload.size() != 8) return std::nullopt;
    r.index = bytes::get_le64(payload.data());
    return r;
  }
  if (payload.size() < entry_fixed_bytes) return std::nullopt;
  r.index = bytes::get_le64(payload.data());
  r.term = bytes::get_le64(payload.data() + 8);
  auto type = static_cast<std::uint8_t>(payload[16]);
  if (type > static_cast<std::uint8_t>(EntryType::config_change)) return std::nullopt;
  r.type = static_cast<EntryType>(type);
  r.data = payload.substr(entry_fixed_bytes);
  return r;
}

}  // namespace dengine::rawfile::segment
