// wire/frame.hpp: frames survive any split of the stream; a truncated, corrupted, oversized,
// wrong-version or foreign frame is never taken for a frame, and the decoder stays failed.

#include "dengine/wire/frame.hpp"

#include <doctest/doctest.h>

#include <bit>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dengine/storage/byte_codec.hpp"
#include "dengine/storage/crc32c.hpp"
#include "dengine/wire/message_codec.hpp"
#include "wire_samples.hpp"

namespace {

using namespace dengine;

/// Every frame the decoder has complete (stops at nullopt or an error; returns the error too).
struct Drained {
  std::vector<wire::Frame> frames;
  std::optional<error> failure;
};

Drained drain(wire::FrameDecoder& d) {
  Drained out;
  for (;;) {
    auto r = d.next();
    if (!r) {
      out.failure = r.error();
      return out;
    }
    if (!r.value()) return out;
    out.frames.push_back(std::move(*r.value()));
  }
}

/// The payload of a messages frame: the sample batch (every message type).
std::string batch_payload() { return wire::encode_messages(wire::testing::sample_messages()); }

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// A frame header with the given fields and a payload of `payload`'s CRC.
std::string header(std::string_view magic, std::uint8_t version, std::uint8_t kind,
                   std::uint32_t length, std::string_view payload = {}) {
  std::string h(magic);
  h.push_back(static_cast<char>(version));
  h.push_back(static_cast<char>(kind));
  bytes::put_le32(h, length);
  bytes::put_le32(h, crc32c::value(payload));
  return h;
}

TEST_CASE("wire frame: the header is the one docs/wire.md tabulates") {
  const std::string f = wire::encode_frame(wire::FrameKind::messages, "abc");
  REQUIRE(f.size() == 12 + 3);
  CHECK(static_cast<unsigned char>(f[0]) == 0xDE);
  CHECK(static_cast<unsigned char>(f[1]) == 0x4E);
  CHECK(f[2] == 2);  // wire version
  CHECK(f[3] == 2);  // kind: messages
  CHECK(bytes::get_le32(f.data() + 4) == 3);
  CHECK(bytes::get_le32(f.data() + 8) == crc32c::value("abc"));
  CHECK(f.substr(12) == "abc");
  CHECK(f == header(wire::frame_magic, 2, 2, 3, "abc") + "abc");
}

TEST_CASE("wire frame: a frame fed whole, byte by byte, or split anywhere decodes the same") {
  const std::string payload = batch_payload();
  const std::string f = wire::encode_frame(wire::FrameKind::messages, payload);

  wire::FrameDecoder whole;
  whole.feed(f);
  auto got = drain(whole);
  REQUIRE_FALSE(got.failure);
  REQUIRE(got.frames.size() == 1);
  CHECK(got.frames[0].kind == wire::FrameKind::messages);
  CHECK(got.frames[0].version == wire::wire_version);
  CHECK(got.frames[0].payload == payload);
  CHECK(whole.offset() == f.size());

  // Byte by byte: at every cut point before the last byte, no frame and no error.
  wire::FrameDecoder bytewise;
  for (char c : f) {
    const auto partial = drain(bytewise);
    REQUIRE(partial.frames.empty());
    REQUIRE_FALSE(partial.failure);
    bytewise.feed(std::string_view(&c, 1));
  }
  got = drain(bytewise);
  REQUIRE(got.frames.size() == 1);
  CHECK(got.frames[0].payload == payload);

  // Two feeds, cut at every byte boundary (a small frame, to keep this quadratic test quick).
  const std::string small = wire::encode_frame(wire::FrameKind::hello, "0123456789");
  for (std::size_t cut = 0; cut <= small.size(); ++cut) {
    CAPTURE(cut);
    wire::FrameDecoder d;
    d.feed(std::string_view(small).substr(0, cut));
    got = drain(d);
    CHECK_FALSE(got.failure);
    CHECK(got.frames.size() == (cut == small.size() ? 1U : 0U));
    d.feed(std::string_view(small).substr(cut));
    got = drain(d);
    REQUIRE_FALSE(got.failure);
    CHECK(got.frames.size() == (cut == small.size() ? 0U : 1U));
    if (!got.frames.empty()) CHECK(got.frames[0].payload == "0123456789");
  }
}

TEST_CASE("wire frame: several frames in one chunk, and one ending in the next chunk") {
  std::string stream;
  wire::append_frame(stream, wire::FrameKind::hello, "first");
  wire::append_frame(stream, wire::FrameKind::messages, "");  // an empty payload is a frame
  wire::append_frame(stream, wire::FrameKind::messages, "third");
  const std::string fourth = wire::encode_frame(wire::FrameKind::messages, "fourth");
  wire::FrameDecoder d;
  d.feed(stream + fourth.substr(0, 14));
  auto got = drain(d);
  REQUIRE_FALSE(got.failure);
  REQUIRE(got.frames.size() == 3);
  CHECK(got.frames[0].kind == wire::FrameKind::hello);
  CHECK(got.frames[0].payload == "first");
  CHECK(got.frames[1].payload.empty());
  CHECK(got.frames[2].payload == "third");
  CHECK(d.offset() == stream.size());
  d.feed(fourth.substr(14));
  got = drain(d);
  REQUIRE(got.frames.size() == 1);
  CHECK(got.frames[0].payload == "fourth");
}

TEST_CASE("wire frame: every truncation of a frame waits for more, never yields a frame") {
  const std::string f = wire::encode_frame(wire::FrameKind::messages, batch_payload());
  // Cut points: every one in the header and the first 300 payload bytes, then every 997th.
  for (std::size_t cut = 0; cut < f.size(); cut += cut < 312 ? 1 : 997) {
    CAPTURE(cut);
    wire::FrameDecoder d;
    d.feed(std::string_view(f).substr(0, cut));
    auto got = drain(d);
    CHECK_FALSE(got.failure);
    CHECK(got.frames.empty());
    CHECK(d.offset() == 0);
  }
}

TEST_CASE("wire frame: every single-bit flip is caught, never decoded as a frame") {
  // A small batch so that each of its bits can be flipped: two messages with entries.
  auto samples = wire::testing::sample_messages();
  const std::vector<raft::Message> batch{samples[1], samples[8]};
  const std::string f = wire::encode_frame(wire::FrameKind::messages, wire::encode_messages(batch));
  const std::string after = wire::encode_frame(wire::FrameKind::messages, "next");
  for (std::size_t bit = 0; bit < 8 * f.size(); ++bit) {
    CAPTURE(bit);
    std::string bad = f;
    bad[bit / 8] = static_cast<char>(bad[bit / 8] ^ (1U << (bit % 8)));
    wire::FrameDecoder d;
    // A valid frame after it: a length made shorter or longer must not resynchronise on it.
    bad += after;
    bad += after;
    d.feed(bad);
    auto got = drain(d);
    CHECK(got.frames.empty());
    // A flip that makes the length longer than what was fed leaves the decoder waiting (the
    // CRC check comes when those bytes arrive); anything else fails now.
    const bool longer_length = bit / 8 >= 4 && bit / 8 < 8 && (bad[bit / 8] & (1 << (bit % 8)));
    if (!longer_length) CHECK(got.failure);
  }
}

TEST_CASE("wire frame: a length over the limit is refused before its payload is read") {
  wire::FrameDecoder d(wire::FrameLimits{.max_payload = 100});
  d.feed(header(wire::frame_magic, 2, 2, 100, std::string(100, 'a')) + std::string(100, 'a'));
  auto got = drain(d);
  REQUIRE_FALSE(got.failure);
  CHECK(got.frames.size() == 1);

  d.feed(header(wire::frame_magic, 2, 2, 101));  // the header alone: no payload byte yet
  got = drain(d);
  REQUIRE(got.failure);
  CHECK(*got.failure == errc::too_large);
  CHECK(contains(got.failure->detail, "payload of 101 bytes, over the limit of 100"));
  CHECK(contains(got.failure->detail, "stream offset 112"));

  wire::FrameDecoder defaults;  // 64 MiB by default; a 4 GiB claim is refused at once
  defaults.feed(header(wire::frame_magic, 2, 2, 0xFFFFFFFF));
  got = drain(defaults);
  REQUIRE(got.failure);
  CHECK(*got.failure == errc::too_large);
  CHECK(contains(got.failure->detail, "limit of 67108864"));
}

TEST_CASE("wire frame: a message frame of another wire version is refused, naming both") {
  for (std::uint8_t version : {0, 1, 3, 255}) {
    CAPTURE(version);
    wire::FrameDecoder d;
    d.feed(wire::encode_frame(wire::FrameKind::messages, "x", version));
    auto got = drain(d);
    REQUIRE(got.failure);
    CHECK(*got.failure == errc::incompatible_version);
    CHECK(contains(got.failure->detail, "the peer writes wire version " + std::to_string(version)));
    CHECK(contains(got.failure->detail, "this node reads wire versions 2..2"));
  }
  // A decoder told to read versions 1..3 takes version 3.
  wire::FrameDecoder wider(wire::FrameLimits{.versions = {1, 3}});
  wider.feed(wire::encode_frame(wire::FrameKind::messages, "x", 3));
  auto got = drain(wider);
  REQUIRE(got.frames.size() == 1);
  CHECK(got.frames[0].version == 3);
  // A hello is read at any version, so that the handshake can say what went wrong.
  wire::FrameDecoder d;
  d.feed(wire::encode_frame(wire::FrameKind::hello, "h", 9));
  got = drain(d);
  REQUIRE(got.frames.size() == 1);
  CHECK(got.frames[0].version == 9);
}

TEST_CASE("wire frame: a foreign protocol or an unknown kind is refused") {
  wire::FrameDecoder http;
  http.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  auto got = drain(http);
  REQUIRE(got.failure);
  CHECK(*got.failure == errc::malformed);
  CHECK(contains(got.failure->detail, "bad magic \"GE\""));

  for (std::uint8_t kind : {0, 3, 5, 6, 0x82, 0xFF}) {
    CAPTURE(kind);
    wire::FrameDecoder d;
    d.feed(header(wire::frame_magic, 1, kind, 0));
    got = drain(d);
    REQUIRE(got.failure);
    CHECK(*got.failure == errc::malformed);
    CHECK(contains(got.failure->detail, "unknown frame kind " + std::to_string(kind)));
  }
}

TEST_CASE("wire frame: any two kinds differ in at least two bits; each has its name") {
  const wire::FrameKind kinds[] = {wire::FrameKind::hello, wire::FrameKind::messages,
                                   wire::FrameKind::snapshot_chunk, wire::FrameKind::snapshot_ack};
  for (auto a : kinds) {
    CHECK(wire::known_frame_kind(static_cast<std::uint8_t>(a)));
    CHECK(wire::to_string(a) != "unknown");
    for (auto b : kinds) {
      if (a == b) continue;
      const auto diff = static_cast<unsigned>(a) ^ static_cast<unsigned>(b);
      CHECK(std::popcount(diff) >= 2);
    }
  }
}

TEST_CASE("wire frame: the frames before a bad one are delivered, then it stays failed") {
  std::string stream = wire::encode_frame(wire::FrameKind::messages, "good");
  std::string bad = wire::encode_frame(wire::FrameKind::messages, "evil");
  bad[12] = 'E';  // payload changed after its checksum was taken
  wire::FrameDecoder d;
  d.feed(stream + bad + wire::encode_frame(wire::FrameKind::messages, "after"));
  CHECK(d.failed());
  auto first = d.next();
  REQUIRE(first);
  REQUIRE(first.value());
  CHECK(first.value()->payload == "good");
  auto second = d.next();
  REQUIRE_FALSE(second);
  CHECK(second.error() == errc::malformed);
  CHECK(contains(second.error().detail, "frame at stream offset 16 (messages, 4 bytes)"));
  CHECK(contains(second.error().detail, "payload CRC32C"));
  // Good bytes fed later change nothing: the stream cannot be trusted past the bad frame.
  d.feed(wire::encode_frame(wire::FrameKind::messages, "later"));
  auto third = d.next();
  REQUIRE_FALSE(third);
  CHECK(third.error().detail == second.error().detail);
}

}  // namespace
