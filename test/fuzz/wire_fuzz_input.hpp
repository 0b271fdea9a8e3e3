#pragma once
// The input format of wire-decode-fuzz, shared by the target and the seed corpus generator.
//
// Byte 0 is a control byte, the rest the body:
//   bits 0-4  the stream is also fed in chunks of (bits + 1) bytes, which must decode exactly
//             as the stream fed at once
//   bit 5     0: the body is the byte stream as a peer sends it (frames);
//             1: the body is a frame payload, framed (with its true CRC) by the target, so that
//             mutations reach the payload decoders instead of dying at the checksum
//   bit 6     with bit 5: the payload is a hello (1) or a message batch (0)

#include <cstdint>
#include <string>
#include <string_view>

#include "dengine/wire/frame.hpp"

namespace dengine::wire::fuzzing {

inline constexpr std::uint8_t chunk_mask = 0x1F;
inline constexpr std::uint8_t payload_mode = 0x20;
inline constexpr std::uint8_t hello_payload = 0x40;

/// The byte stream an input stands for.
inline std::string stream_of(std::uint8_t control, std::string_view body) {
  if ((control & payload_mode) == 0) return std::string(body);
  return encode_frame((control & hello_payload) != 0 ? FrameKind::hello : FrameKind::messages,
                      body);
}

}  // namespace dengine::wire::fuzzing
