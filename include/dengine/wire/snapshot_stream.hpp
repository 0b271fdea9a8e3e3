#pragma once
/// The payloads of the two frames that stream a snapshot (docs/wire.md, Snapshot streams; wire
/// version 2). A snapshot message is sent as its encode_message bytes cut into chunks, one
/// snapshot_chunk frame each (the frame's CRC32C is the chunk's checksum); the receiver answers
/// on the same connection with snapshot_ack frames, and hands the message to its node only once
/// every byte is there and the whole-stream CRC32C matches.
///
///   snapshot_chunk: stream id (36 bytes), attempt u32, offset u64, then the chunk's bytes
///   snapshot_ack:   stream id (36 bytes), attempt u32, offset u64, kind u8
///
///   stream id: term u64, snapshot index u64, snapshot term u64, total bytes u64, CRC32C u32
///
/// The id names one transfer: the image (index, term), the leader term that sent it, and the
/// size and checksum of the bytes, so a receiver never splices chunks of two transfers. The
/// attempt counts the sender's restarts of the stream (a reconnection, a rewind): an ack echoes
/// the attempt of the chunk it answers, and the sender ignores rewinds of an older attempt.

#include <cstdint>
#include <string>
#include <string_view>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/storage/byte_codec.hpp"
#include "dengine/wire/reader.hpp"

namespace dengine::wire {

/// One snapshot transfer. Invariant once decoded: total > 0.
struct SnapshotStreamId {
  Term term = 0;               ///< the sending leader's term (the message's term)
  LogIndex index = 0;          ///< the image's last included index
  Term snapshot_term = 0;      ///< the image's last included term
  std::uint64_t total = 0;     ///< bytes of the encoded message
  std::uint32_t checksum = 0;  ///< CRC32C of all of them
  friend bool operator==(const SnapshotStreamId&, const SnapshotStreamId&) = default;

  [[nodiscard]] std::string to_string() const {
    return "snapshot at index " + std::to_string(index) + " (term " +
           std::to_string(snapshot_term) + ", sent in term " + std::to_string(term) + ", " +
           std::to_string(total) + " bytes)";
  }
};

inline constexpr std::size_t stream_id_size = 8 + 8 + 8 + 8 + 4;
/// Bytes of a chunk payload before its data.
inline constexpr std::size_t chunk_header_size = stream_id_size + 4 + 8;
inline constexpr std::size_t ack_size = stream_id_size + 4 + 8 + 1;

/// Bytes [offset, offset + data.size()) of a stream.
struct SnapshotChunk {
  SnapshotStreamId id;
  std::uint32_t attempt = 0;
  std::uint64_t offset = 0;
  std::string_view data;  ///< into the frame's payload (decode) or the sender's stream (encode)
};

/// What an ack tells the sender.
enum class AckKind : std::uint8_t {
  progress = 1,  ///< every byte before `offset` is held; go on
  rewind = 2,    ///< the chunk did not continue what is held: send from `offset` (attempt + 1)
  done = 3,      ///< the whole stream arrived, checked, and went to the node
};

[[nodiscard]] constexpr std::string_view to_string(AckKind k) noexcept {
  switch (k) {
    case AckKind::progress: return "progress";
    case AckKind::rewind: return "rewind";
    case AckKind::done: return "done";
  }
  return "unknown";
}

struct SnapshotAck {
  SnapshotStreamId id;
  std::uint32_t attempt = 0;
  std::uint64_t offset = 0;
  AckKind kind = AckKind::progress;
  friend bool operator==(const SnapshotAck&, const SnapshotAck&) = default;
};

namespace detail {

inline void put_stream_id(std::string& out, const SnapshotStreamId& id) {
  bytes::put_le64(out, id.term);
  bytes::put_le64(out, id.index);
  bytes::put_le64(out, id.snapshot_term);
  bytes::put_le64(out, id.total);
  bytes::put_le32(out, id.checksum);
}

inline result<SnapshotStreamId> read_stream_id(Reader& r) {
  SnapshotStreamId id;
  DENGINE_TRY(term, r.u64("term"));
  DENGINE_TRY(index, r.u64("snapshot index"));
  DENGINE_TRY(snapshot_term, r.u64("snapshot term"));
  DENGINE_TRY(total, r.u64("total bytes"));
  if (total == 0) return r.fail("total bytes", "a stream of 0 bytes");
  DENGINE_TRY(checksum, r.u32("checksum"));
  id.term = term;
  id.index = index;
  id.snapshot_term = snapshot_term;
  id.total = total;
  id.checksum = checksum;
  return id;
}

}  // namespace detail

/// The payload of a snapshot_chunk frame.
[[nodiscard]] inline std::string encode_chunk(const SnapshotChunk& c) {
  std::string out;
  out.reserve(chunk_header_size + c.data.size());
  detail::put_stream_id(out, c.id);
  bytes::put_le32(out, c.attempt);
  bytes::put_le64(out, c.offset);
  out.append(c.data);
  return out;
}

/// The chunk in `payload` (its data views `payload`). Malformed: short, no data, or data past
/// the stream's total.
[[nodiscard]] inline result<SnapshotChunk> decode_chunk(std::string_view payload) {
  Reader r(payload, "snapshot chunk");
  SnapshotChunk c;
  DENGINE_TRY(id, detail::read_stream_id(r));
  DENGINE_TRY(attempt, r.u32("attempt"));
  DENGINE_TRY(offset, r.u64("offset"));
  c.id = id;
  c.attempt = attempt;
  c.offset = offset;
  const std::size_t n = r.remaining();
  if (n == 0) return r.fail("data", "a chunk without data");
  if (offset > id.total || n > id.total - offset)
    return r.fail("data", std::to_string(n) + " bytes at offset " + std::to_string(offset) +
                              " run past the stream's " + std::to_string(id.total) + " bytes");
  DENGINE_TRY(data, r.bytes("data", n));
  c.data = data;
  return c;
}

/// The payload of a snapshot_ack frame.
[[nodiscard]] inline std::string encode_ack(const SnapshotAck& a) {
  std::string out;
  out.reserve(ack_size);
  detail::put_stream_id(out, a.id);
  bytes::put_le32(out, a.attempt);
  bytes::put_le64(out, a.offset);
  out.push_back(static_cast<char>(a.kind));
  return out;
}

/// The ack in `payload`. Malformed: not exactly ack_size bytes, an offset past the total, an
/// unknown kind.
[[nodiscard]] inline result<SnapshotAck> decode_ack(std::string_view payload) {
  Reader r(payload, "snapshot ack");
  SnapshotAck a;
  DENGINE_TRY(id, detail::read_stream_id(r));
  DENGINE_TRY(attempt, r.u32("attempt"));
  DENGINE_TRY(offset, r.u64("offset"));
  if (offset > id.total)
    return r.fail("offset", std::to_string(offset) + " past the stream's " +
                                std::to_string(id.total) + " bytes");
  DENGINE_TRY(kind, r.u8("kind"));
  if (kind < static_cast<std::uint8_t>(AckKind::progress) ||
      kind > static_cast<std::uint8_t>(AckKind::done))
    return r.fail("kind", "unknown ack kind " + std::to_string(kind));
  DENGINE_TRYV(r.finish());
  a.id = id;
  a.attempt = attempt;
  a.offset = offset;
  a.kind = static_cast<AckKind>(kind);
  return a;
}

}  // namespace dengine::wire
