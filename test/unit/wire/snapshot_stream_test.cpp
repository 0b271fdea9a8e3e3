// wire/snapshot_stream.hpp: the chunk and ack payloads round-trip field by field, and every
// malformed one (short, empty, past its stream's end, unknown kind, trailing bytes) is refused
// with errc::malformed naming the field.

#include "dengine/wire/snapshot_stream.hpp"

#include <doctest/doctest.h>

#include <string>

namespace {

using namespace dengine;

const wire::SnapshotStreamId sample_id{0x0102030405060708, 0x1112131415161718, 0x2122232425262728,
                                       5000, 0xA1B2C3D4};

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

TEST_CASE("wire snapshot stream: a chunk round-trips; its layout is the documented one") {
  const wire::SnapshotChunk c{sample_id, 0x31323334, 4000, "the chunk's bytes"};
  const std::string payload = wire::encode_chunk(c);
  CHECK(payload.size() == wire::chunk_header_size + c.data.size());
  CHECK(wire::chunk_header_size == 48);
  CHECK(bytes::get_le64(payload.data()) == sample_id.term);
  CHECK(bytes::get_le64(payload.data() + 24) == sample_id.total);
  CHECK(bytes::get_le32(payload.data() + 32) == sample_id.checksum);
  CHECK(bytes::get_le32(payload.data() + 36) == c.attempt);
  CHECK(bytes::get_le64(payload.data() + 40) == c.offset);
  auto back = wire::decode_chunk(payload);
  REQUIRE(back);
  CHECK(back.value().id == sample_id);
  CHECK(back.value().attempt == c.attempt);
  CHECK(back.value().offset == c.offset);
  CHECK(back.value().data == c.data);
  // The last byte of the stream is a chunk of its own.
  CHECK(wire::decode_chunk(wire::encode_chunk({sample_id, 1, 4999, "z"})));
}

TEST_CASE("wire snapshot stream: malformed chunks are refused, naming the field") {
  const std::pair<std::string, std::string> bad[] = {
      {wire::encode_chunk({sample_id, 1, 0, "x"}).substr(0, 40), "offset at offset 40"},
      {wire::encode_chunk({sample_id, 1, 0, ""}), "a chunk without data"},
      {wire::encode_chunk({sample_id, 1, 4999, "xy"}), "run past the stream's 5000 bytes"},
      {wire::encode_chunk({sample_id, 1, 6000, "x"}), "run past the stream's 5000 bytes"},
      {wire::encode_chunk({{1, 1, 1, 0, 0}, 1, 0, "x"}), "a stream of 0 bytes"},
  };
  for (const auto& entry : bad) {
    // Named variables, not a structured binding: CAPTURE's lambda cannot capture one (clang 14).
    const std::string& payload = entry.first;
    const std::string& why = entry.second;
    CAPTURE(why);
    auto r = wire::decode_chunk(payload);
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::malformed);
    CHECK(contains(r.error().detail, "snapshot chunk"));
    CHECK(contains(r.error().detail, why));
  }
}

TEST_CASE("wire snapshot stream: an ack round-trips; malformed ones are refused") {
  for (auto kind : {wire::AckKind::progress, wire::AckKind::rewind, wire::AckKind::done}) {
    const wire::SnapshotAck a{sample_id, 9, 4096, kind};
    const std::string payload = wire::encode_ack(a);
    CHECK(payload.size() == wire::ack_size);
    auto back = wire::decode_ack(payload);
    REQUIRE(back);
    CHECK(back.value() == a);
    CHECK(wire::to_string(kind) != "unknown");
  }
  std::string unknown = wire::encode_ack({sample_id, 1, 0, wire::AckKind::done});
  unknown.back() = 9;
  const std::pair<std::string, std::string> bad[] = {
      {wire::encode_ack({sample_id, 1, 0, wire::AckKind::done}).substr(0, 44), "offset"},
      {wire::encode_ack({sample_id, 1, 0, wire::AckKind::done}) + "!", "1 unread bytes"},
      {wire::encode_ack({sample_id, 1, 5001, wire::AckKind::done}), "past the stream's 5000"},
      {unknown, "unknown ack kind 9"},
  };
  for (const auto& entry : bad) {
    const std::string& payload = entry.first;
    const std::string& why = entry.second;
    CAPTURE(why);
    auto r = wire::decode_ack(payload);
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::malformed);
    CHECK(contains(r.error().detail, why));
  }
}

}  // namespace
