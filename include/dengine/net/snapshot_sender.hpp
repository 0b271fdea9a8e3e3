#pragma once
/// The sending half of a snapshot stream (docs/network.md, Snapshot streams): the state of one
/// snapshot lane's transfer, without I/O. The lane offers it the snapshot messages it takes from
/// its queue, asks it for the next chunk while the window allows, and tells it the acks its
/// connection reads and when a new connection opens. The wire layout is in
/// wire/snapshot_stream.hpp.
///
/// The stream is the message's encoding, but the image is not copied into it: the sender keeps
/// the encoded head (wire::append_message_head, a few hundred bytes) and a share of the image,
/// whose data bytes follow the head; chunks view one or the other (the one chunk that straddles
/// them is assembled). Only the whole-stream checksum reads the image once, at offer().
///
/// Invariants while active: acked() ≤ sent() ≤ total, and sent() − acked() ≤ the window. A new
/// connection resends from acked(), the receiver's last acknowledged offset, not from 0 (the
/// receiver answers chunks it already holds with the offset it holds, and the stream skips
/// there); a rewind (the receiver lost bytes) moves both back to what the receiver holds.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "dengine/raft/message.hpp"
#include "dengine/storage/crc32c.hpp"
#include "dengine/wire/message_codec.hpp"
#include "dengine/wire/snapshot_stream.hpp"

namespace dengine::net {

class SnapshotSender {
 public:
  /// Chunks of at most `chunk_bytes` (> 0); at most `window_chunks` (> 0) chunks' worth of
  /// bytes sent and not yet acknowledged.
  SnapshotSender(std::size_t chunk_bytes, std::size_t window_chunks)
      : chunk_bytes_(chunk_bytes), window_bytes_(chunk_bytes * window_chunks) {}

  /// What offer() did with a message.
  enum class Offer : std::uint8_t {
    started,    ///< nothing was streaming: this one starts
    replaced,   ///< it replaced a stream of an older image or term (that one is abandoned)
    duplicate,  ///< the same image sent in the same term is streaming: dropped
    stale,      ///< an older image than the one streaming: dropped
  };

  /// Takes snapshot message `m` (type snapshot, with an image). The lane streams the newest
  /// image only: Raft resends a snapshot that was not acknowledged in time, and such a resend
  /// must not restart (or queue behind) the transfer that is still going.
  Offer offer(const raft::Message& m) {
    const auto& meta = m.snapshot->meta;
    Offer result = Offer::started;
    if (active_) {
      if (m.term == id_.term && meta.index == id_.index && meta.term == id_.snapshot_term)
        return Offer::duplicate;
      if (meta.index < id_.index) return Offer::stale;
      result = Offer::replaced;
    }
    head_.clear();
    wire::append_message_head(head_, m);
    image_ = m.snapshot;
    const std::string_view data = image_->data;
    id_ = wire::SnapshotStreamId{m.term, meta.index, meta.term, head_.size() + data.size(),
                                 crc32c::extend(crc32c::value(head_), data.data(), data.size())};
    ++attempt_;
    acked_ = 0;
    sent_ = 0;
    active_ = true;
    return result;
  }

  /// A stream is in progress (offered, not yet acknowledged as done).
  [[nodiscard]] bool active() const noexcept { return active_; }

  /// A new connection opened: the stream goes on from the last acknowledged offset, as a new
  /// attempt (acks of the old connection's chunks no longer rewind it). Returns that offset.
  std::uint64_t restart() {
    if (!active_) return 0;
    ++attempt_;
    sent_ = acked_;
    return acked_;
  }

  /// The size of the chunk next_chunk() would return now; 0 when it would return none.
  [[nodiscard]] std::size_t next_chunk_size() const noexcept {
    if (!active_ || sent_ >= id_.total || sent_ - acked_ >= window_bytes_) return 0;
    return static_cast<std::size_t>(std::min<std::uint64_t>(chunk_bytes_, id_.total - sent_));
  }

  /// The next chunk to write, and the stream advanced past it; nullopt when nothing streams,
  /// every byte was sent, or the window is full (until an ack). The chunk's data views the
  /// stream: encode it before the next call to next_chunk(), offer() or on_ack().
  std::optional<wire::SnapshotChunk> next_chunk() {
    const std::size_t n = next_chunk_size();
    if (n == 0) return std::nullopt;
    wire::SnapshotChunk c{id_, attempt_, sent_, bytes_at(sent_, n)};
    sent_ += n;
    return c;
  }

  /// What on_ack() made of an ack.
  enum class Acked : std::uint8_t {
    ignored,   ///< of another stream, or a rewind of an earlier attempt
    progress,  ///< acked() moved on (or stayed)
    rewound,   ///< the stream goes on from the receiver's offset, as a new attempt
    done,      ///< the receiver has it all: the stream ended
  };

  Acked on_ack(const wire::SnapshotAck& a) {
    if (!active_ || a.id != id_) return Acked::ignored;
    switch (a.kind) {
      case wire::AckKind::progress:
        // Acks of an earlier attempt still tell what the receiver holds.
        acked_ = std::max(acked_, a.offset);
        sent_ = std::max(sent_, acked_);
        return Acked::progress;
      case wire::AckKind::rewind:
        // The receiver answers every chunk of an attempt that does not continue what it holds;
        // only the first of those answers moves the stream.
        if (a.attempt != attempt_) return Acked::ignored;
        ++attempt_;
        acked_ = a.offset;
        sent_ = a.offset;
        return Acked::rewound;
      case wire::AckKind::done:
        active_ = false;
        head_ = std::string();
        image_.reset();
        return Acked::done;
    }
    return Acked::ignored;
  }

  [[nodiscard]] const wire::SnapshotStreamId& id() const noexcept { return id_; }
  [[nodiscard]] std::uint64_t acked() const noexcept { return acked_; }
  [[nodiscard]] std::uint64_t sent() const noexcept { return sent_; }

 private:
  /// Stream bytes [offset, offset + n): a view of the head or of the image's data, or of
  /// straddle_ for the chunk that starts in the head and ends in the data.
  std::string_view bytes_at(std::uint64_t offset, std::size_t n) {
    const std::string_view head = head_;
    const std::string_view data = image_->data;
    if (offset >= head.size()) return data.substr(offset - head.size(), n);
    if (offset + n <= head.size()) return head.substr(offset, n);
    straddle_.assign(head.substr(offset));
    straddle_.append(data.substr(0, n - straddle_.size()));
    return straddle_;
  }

  const std::size_t chunk_bytes_;
  const std::uint64_t window_bytes_;
  /// The stream: head_ then image_->data (the message encoded, wire::append_message_head).
  std::string head_;
  std::shared_ptr<const Snapshot> image_;
  std::string straddle_;
  wire::SnapshotStreamId id_{};
  std::uint32_t attempt_ = 0;
  std::uint64_t acked_ = 0;
  std::uint64_t sent_ = 0;
  bool active_ = false;
};

}  // namespace dengine::net
