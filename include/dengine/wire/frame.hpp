#pragma once
/// The frame layer of the peer protocol (docs/wire.md). Every byte a peer connection carries
/// belongs to a frame: a fixed 12-byte header, then the payload it describes.
///
///   offset  size  field
///        0     2  magic 0xDE 0x4E
///        2     1  wire version
///        3     1  frame kind (FrameKind)
///        4     4  payload length, u32 LE
///        8     4  CRC32C of the payload, u32 LE
///       12     n  payload
///
/// `FrameDecoder` takes the stream as TCP delivers it (split anywhere, several frames per read)
/// and trusts nothing it has not checked: the header is validated as soon as its 12 bytes are
/// there, before one payload byte is kept, so a length past the limit never grows a buffer.

#include <algorithm>
#include <array>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "dengine/core/error.hpp"
#include "dengine/storage/byte_codec.hpp"
#include "dengine/storage/crc32c.hpp"
#include "dengine/storage/record_check.hpp"

namespace dengine::wire {

/// The wire version this build writes (the layout of message frames, message_codec.hpp, and of
/// snapshot streams, snapshot_stream.hpp). Version 2 added the snapshot_chunk and snapshot_ack
/// frames and the leader_call message types; this build does not speak version 1 (no release
/// did).
inline constexpr std::uint8_t wire_version = 2;

/// A closed range of wire versions, [min, max].
struct VersionRange {
  std::uint8_t min = wire_version;
  std::uint8_t max = wire_version;

  [[nodiscard]] constexpr bool contains(std::uint8_t v) const noexcept {
    return min <= v && v <= max;
  }
  /// "1..3", for error messages.
  [[nodiscard]] std::string to_string() const {
    return std::to_string(min) + ".." + std::to_string(max);
  }
  friend constexpr bool operator==(VersionRange, VersionRange) = default;
};

/// The wire versions this build reads and writes.
inline constexpr VersionRange supported_versions{wire_version, wire_version};

/// What a frame's payload is. Any two values differ in two bits, so one flipped bit never turns
/// a frame of one kind into another.
enum class FrameKind : std::uint8_t {
  hello = 1,           ///< the first frame on a connection (handshake.hpp)
  messages = 2,        ///< a batch of raft messages (message_codec.hpp)
  snapshot_chunk = 4,  ///< bytes of a snapshot stream (snapshot_stream.hpp); version 2
  snapshot_ack = 7,    ///< the receiver's answer to chunks (snapshot_stream.hpp); version 2
};

/// True for the kinds above.
[[nodiscard]] constexpr bool known_frame_kind(std::uint8_t k) noexcept {
  return k == static_cast<std::uint8_t>(FrameKind::hello) ||
         k == static_cast<std::uint8_t>(FrameKind::messages) ||
         k == static_cast<std::uint8_t>(FrameKind::snapshot_chunk) ||
         k == static_cast<std::uint8_t>(FrameKind::snapshot_ack);
}

[[nodiscard]] constexpr std::string_view to_string(FrameKind k) noexcept {
  switch (k) {
    case FrameKind::hello: return "hello";
    case FrameKind::messages: return "messages";
    case FrameKind::snapshot_chunk: return "snapshot_chunk";
    case FrameKind::snapshot_ack: return "snapshot_ack";
  }
  return "unknown";
}

/// The first two bytes of every frame: not ASCII, so a text protocol spoken at a peer port (an
/// HTTP request, a telnet line) is refused at its first frame.
inline constexpr std::string_view frame_magic{"\xDE\x4E", 2};
inline constexpr std::size_t frame_header_size = 12;
/// The default for FrameLimits::max_payload.
inline constexpr std::uint32_t default_max_frame_payload = 64U << 20U;

/// One decoded frame. Its payload's checksum has been verified; its content has not.
struct Frame {
  FrameKind kind = FrameKind::messages;
  std::uint8_t version = wire_version;
  std::string payload;
};

/// Appends a frame of `kind` carrying `payload` to `out` (several frames can share one write).
/// Precondition: the payload fits the u32 length (the sender keeps batches under the
/// receiver's FrameLimits::max_payload, far below that).
inline void append_frame(std::string& out, FrameKind kind, std::string_view payload,
                         std::uint8_t version = wire_version) {
  assert(payload.size() <= std::numeric_limits<std::uint32_t>::max());
  out.reserve(out.size() + frame_header_size + payload.size());
  out.append(frame_magic);
  out.push_back(static_cast<char>(version));
  out.push_back(static_cast<char>(kind));
  bytes::put_le32(out, static_cast<std::uint32_t>(payload.size()));
  bytes::put_le32(out, crc32c::value(payload));
  out.append(payload);
}

/// A frame of `kind` carrying `payload`, as append_frame writes it.
[[nodiscard]] inline std::string encode_frame(FrameKind kind, std::string_view payload,
                                              std::uint8_t version = wire_version) {
  std::string out;
  append_frame(out, kind, payload, version);
  return out;
}

/// What a FrameDecoder accepts.
struct FrameLimits {
  /// The largest payload taken; a header announcing more is refused before its payload is read.
  std::uint32_t max_payload = default_max_frame_payload;
  /// The wire versions of message frames taken. Hello frames are read at any version: their
  /// layout never changes (docs/wire.md, Versions), so two versions can always say why they
  /// cannot talk.
  VersionRange versions = supported_versions;
};

/// Splits a byte stream into checked frames. Invariant: at most one header and one payload of
/// at most `max_payload` bytes are buffered, besides the complete frames not yet taken. After an
/// error the decoder stays failed: the stream cannot be re-synchronised, so the connection must
/// be closed.
class FrameDecoder {
 public:
  FrameDecoder() = default;
  explicit FrameDecoder(FrameLimits limits) : limits_(limits) {}

  /// Takes the next bytes of the stream. Complete frames queue for next(); the first bad header
  /// or checksum ends decoding (the bytes after it are dropped).
  void feed(std::string_view chunk) {
    while (!error_) {
      if (header_have_ < frame_header_size) {
        const std::size_t n = std::min(chunk.size(), frame_header_size - header_have_);
        if (n == 0) return;
        std::memcpy(header_.data() + header_have_, chunk.data(), n);
        header_have_ += n;
        chunk.remove_prefix(n);
        if (header_have_ < frame_header_size) return;
        if (auto checked = check_header(); !checked) {
          error_ = std::move(checked).error();
          return;
        }
      }
      const std::size_t n = std::min<std::size_t>(chunk.size(), length_ - current_.payload.size());
      current_.payload.append(chunk.substr(0, n));
      chunk.remove_prefix(n);
      if (current_.payload.size() < length_) return;
      finish_frame();
    }
  }

  /// The oldest complete frame not yet taken; nullopt when the stream so far ends inside a
  /// frame; the error once the frames before it have been taken (then on every call).
  [[nodiscard]] result<std::optional<Frame>> next() {
    if (!ready_.empty()) {
      Frame f = std::move(ready_.front());
      ready_.pop_front();
      return std::optional<Frame>(std::move(f));
    }
    if (error_) return *error_;
    return std::optional<Frame>();
  }

  /// True once a bad frame was seen (next() reports it after the good frames before it).
  [[nodiscard]] bool failed() const noexcept { return error_.has_value(); }
  /// Bytes of the stream consumed into whole frames (the offset of the frame being read).
  [[nodiscard]] std::uint64_t offset() const noexcept { return frame_start_; }

 private:
  /// "frame at stream offset N", the where of every error.
  [[nodiscard]] std::string where() const {
    return "frame at stream offset " + std::to_string(frame_start_);
  }

  result<void> check_header() {
    const std::string_view h(header_.data(), header_.size());
    if (h.substr(0, 2) != frame_magic) {
      return error(errc::malformed, where() + ": bad magic " + storage::printable(h.substr(0, 2)) +
                                        " (a dengine peer sends " +
                                        storage::printable(frame_magic) + ")");
    }
    const auto version = static_cast<std::uint8_t>(h[2]);
    const auto kind = static_cast<std::uint8_t>(h[3]);
    if (!known_frame_kind(kind)) {
      return error(errc::malformed, where() + ": unknown frame kind " + std::to_string(kind));
    }
    if (kind != static_cast<std::uint8_t>(FrameKind::hello) &&
        !limits_.versions.contains(version)) {
      return error(errc::incompatible_version,
                   where() + ": the peer writes wire version " + std::to_string(version) +
                       ", this node reads wire versions " + limits_.versions.to_string());
    }
    length_ = bytes::get_le32(h.data() + 4);
    if (length_ > limits_.max_payload) {
      return error(errc::too_large, where() + ": payload of " + std::to_string(length_) +
                                        " bytes, over the limit of " +
                                        std::to_string(limits_.max_payload));
    }
    crc_ = bytes::get_le32(h.data() + 8);
    current_.kind = static_cast<FrameKind>(kind);
    current_.version = version;
    current_.payload.clear();
    return success();
  }

  void finish_frame() {
    const std::uint32_t actual = crc32c::value(current_.payload);
    if (actual != crc_) {
      error_ = error(errc::malformed, where() + " (" + std::string(to_string(current_.kind)) +
                                          ", " + std::to_string(length_) +
                                          " bytes): payload CRC32C " + std::to_string(actual) +
                                          ", the header says " + std::to_string(crc_));
      return;
    }
    ready_.push_back(std::exchange(current_, Frame{}));
    frame_start_ += frame_header_size + length_;
    header_have_ = 0;
  }

  FrameLimits limits_{};
  std::array<char, frame_header_size> header_{};
  std::size_t header_have_ = 0;
  /// From the checked header of the frame being read.
  std::uint32_t length_ = 0;
  std::uint32_t crc_ = 0;
  Frame current_{};
  std::deque<Frame> ready_{};
  std::optional<error> error_{};
  std::uint64_t frame_start_ = 0;
};

}  // namespace dengine::wire
