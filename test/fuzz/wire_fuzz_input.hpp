#pragma once
// The input format of wire-decode-fuzz, shared by the target and the seed corpus generator.
//
// Byte 0 is a control byte, the rest the body:
//   bits 0-4  the stream is also fed in chunks of (bits + 1) bytes, which must decode exactly
//             as the stream fed at once
//   bit 5     0: the body is the byte stream as a peer sends it (frames);
//             1: the body is a frame payload, framed (with its true CRC) by the target, so that
//             mutations reach the payload decoders instead of dying at the checksum
//   bits 6-7  with bit 5, the payload's frame kind: 00 messages (a batch), 01 hello,
//             10 snapshot_chunk, 11 snapshot_ack (bit 6 is the low bit)

#include <cstdint>
#include <string>
#include <string_view>

#include "dengine/wire/frame.hpp"

namespace dengine::wire::fuzzing {

inline constexpr std::uint8_t chunk_mask = 0x1F;
inline constexpr std::uint8_t payload_mode = 0x20;
inline constexpr std::uint8_t hello_payload = 0x40;
inline constexpr std::uint8_t chunk_payload = 0x80;
inline constexpr std::uint8_t ack_payload = 0xC0;
inline constexpr std::uint8_t kind_mask = 0xC0;

/// The byte stream an input stands for.
inline std::string stream_of(std::uint8_t control, std::string_view body) {
  if ((control & payload_mode) == 0) return std::string(body);
  switch (control & kind_mask) {
    case hello_payload: return encode_frame(FrameKind::hello, body);
    case chunk_payload: return encode_frame(FrameKind::snapshot_chunk, body);
    case ack_payload: return encode_frame(FrameKind::snapshot_ack, body);
    default: return encode_frame(FrameKind::messages, body);
  }
}

}  // namespace dengine::wire::fuzzing
