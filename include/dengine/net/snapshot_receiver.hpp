#pragma once
/// The receiving half of snapshot streams (docs/network.md, Snapshot streams): per sender, the
/// bytes of the transfer in progress, without I/O. The partial transfer belongs to the sender,
/// not to a connection, so a transfer broken with its connection resumes on the next one from
/// the bytes already held. The node sees a snapshot only once it is whole and its checksum
/// matches; until then the bytes stay here, the temporary place (the node's snapshot store then
/// writes the image to its own temporary file and renames it into place).
///
/// Bounds: one transfer per sender (a new one replaces it), of at most max_bytes.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/storage/crc32c.hpp"
#include "dengine/wire/snapshot_stream.hpp"

namespace dengine::net {

class SnapshotReceiver {
 public:
  explicit SnapshotReceiver(std::uint64_t max_bytes) : max_bytes_(max_bytes) {}

  /// What a chunk led to.
  struct Outcome {
    wire::SnapshotAck ack;                ///< the answer to write back
    std::optional<std::string> complete;  ///< the whole stream, checked: decode and deliver it
    std::string problem;                  ///< why a whole stream was discarded (to log), or ""
  };

  /// Takes chunk `c` from member `from`. A chunk of the transfer held for `from` (same stream
  /// id) that starts at or before its end is kept — the part past the end — and acknowledged
  /// with the offset now held (progress); a chunk at offset 0 of another stream starts that one
  /// (dropping the held bytes); a chunk past a gap, or inside another stream, is answered with
  /// a rewind to the offset held (0 for another stream), with the chunk's attempt. Once the last
  /// byte is there the whole-stream CRC32C is checked: a match completes the stream (ack done, and
  /// a later chunk of it is answered done again: its done may have been lost); a mismatch discards
  /// it and rewinds to 0. too_large (close the connection) for a stream over max_bytes.
  result<Outcome> on_chunk(NodeId from, const wire::SnapshotChunk& c) {
    if (c.id.total > max_bytes_)
      return error(errc::too_large, "snapshot stream from member " + std::to_string(from) + " of " +
                                        std::to_string(c.id.total) + " bytes, over the limit of " +
                                        std::to_string(max_bytes_) + " (max_snapshot_bytes)");
    Transfer& t = transfers_[from];
    Outcome out;
    out.ack = wire::SnapshotAck{c.id, c.attempt, 0, wire::AckKind::rewind};
    if (t.completed && *t.completed == c.id) {
      out.ack.kind = wire::AckKind::done;
      out.ack.offset = c.id.total;
      return out;
    }
    if (!t.current || *t.current != c.id) {
      if (c.offset != 0) return out;  // rewind to 0: nothing of this stream is held
      t.current = c.id;
      t.bytes.clear();
    }
    if (c.offset > t.bytes.size()) {
      out.ack.offset = t.bytes.size();  // a gap: rewind to what is held
      return out;
    }
    // Bytes of the chunk already held (a resend after a reconnection: the sender goes on from
    // its last acknowledged offset, which may lag what arrived) are the same bytes, as the id
    // is the same: keep the rest, and answer with what is held, so the sender skips ahead.
    const std::uint64_t already = t.bytes.size() - c.offset;
    if (already < c.data.size()) t.bytes.append(c.data.substr(already));
    if (t.bytes.size() < c.id.total) {
      out.ack.kind = wire::AckKind::progress;
      out.ack.offset = t.bytes.size();
      return out;
    }
    const std::uint32_t actual = crc32c::value(t.bytes);
    t.current.reset();
    if (actual != c.id.checksum) {
      t.bytes = std::string();
      out.problem = c.id.to_string() + " from member " + std::to_string(from) +
                    ": the whole stream's CRC32C is " + std::to_string(actual) + ", its id says " +
                    std::to_string(c.id.checksum) + "; discarded, the sender starts again from 0";
      return out;  // rewind to 0
    }
    t.completed = c.id;
    out.ack.kind = wire::AckKind::done;
    out.ack.offset = c.id.total;
    out.complete = std::exchange(t.bytes, std::string());
    return out;
  }

  /// Drops what is held for `from` (its stream cannot be used, or it was removed).
  void forget(NodeId from) { transfers_.erase(from); }
  /// Drops what is held for every sender `removed(id)` is true of.
  template <typename Pred>
  void forget_if(Pred removed) {
    std::erase_if(transfers_, [&](const auto& kv) { return removed(kv.first); });
  }

  /// Bytes held for `from`'s transfer in progress (0 when none).
  [[nodiscard]] std::uint64_t held(NodeId from) const {
    auto it = transfers_.find(from);
    return it == transfers_.end() ? 0 : it->second.bytes.size();
  }

 private:
  struct Transfer {
    std::optional<wire::SnapshotStreamId> current;  ///< the stream whose bytes are held
    std::string bytes;
    std::optional<wire::SnapshotStreamId> completed;  ///< the last stream delivered whole
  };
  const std::uint64_t max_bytes_;
  std::map<NodeId, Transfer> transfers_;
};

}  // namespace dengine::net
