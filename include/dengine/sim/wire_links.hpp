#pragma once
/// The byte side of the simulated network (transport.hpp): a raft::Message is encoded into a
/// wire frame when it is sent, the network carries only the frame's bytes, and the receiver
/// decodes them with the FrameDecoder of the directed link they came over. So every message a
/// simulated node receives went through the wire codec (docs/wire.md), under every fault the
/// simulator injects, and a codec bug shows as a simulation violation.
///
/// One decoder per directed link (from → to), as a peer connection has one per TCP stream: its
/// state between frames — the stream offset, the failed state after a bad frame, the reset that
/// a reconnect is — runs as a real connection's will. A simulated link carries whole frames (the
/// network reorders frames, a TCP stream never reorders bytes), so after each frame an intact
/// link's decoder is back at a frame boundary.
///
/// The simulator knows which copies it damaged, so it can tell the codec's two duties apart:
/// a damaged frame must be refused (expected: counted, dropped, the link reconnects), and an
/// intact frame must decode to exactly the message sent. Anything else is a codec failure.

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/raft/message.hpp"
#include "dengine/wire/frame.hpp"
#include "dengine/wire/message_codec.hpp"

namespace dengine::sim {

/// A frame in flight: what the simulated network carries. Never modified once encoded, so a
/// duplicate copy shares the bytes (damage is applied to a private copy at arrival).
struct WireFrame {
  std::shared_ptr<const std::string> bytes;
};

/// `m` as one messages frame holding a batch of one (encoded once per send).
[[nodiscard]] inline WireFrame encode_wire_frame(const raft::Message& m) {
  const std::string payload = wire::encode_messages(std::span<const raft::Message>(&m, 1));
  return {
      std::make_shared<const std::string>(wire::encode_frame(wire::FrameKind::messages, payload))};
}

/// The one message a checked frame carries, or why it carries something else.
[[nodiscard]] inline result<raft::Message> frame_message(const wire::Frame& f) {
  if (f.kind != wire::FrameKind::messages) {
    return error(errc::malformed,
                 "a " + std::string(wire::to_string(f.kind)) + " frame where messages belong");
  }
  DENGINE_TRY(batch, wire::decode_messages(f.payload));
  if (batch.size() != 1) {
    return error(errc::malformed, "a batch of " + std::to_string(batch.size()) +
                                      " messages, the simulated transport sends one per frame");
  }
  return std::move(batch.front());
}

/// `frame`'s message decoded on its own (no link, no damage): what the sender meant, for traces
/// of frames that never reached a decoder or were refused.
[[nodiscard]] inline result<raft::Message> peek_message(const WireFrame& frame) {
  wire::FrameDecoder d;
  d.feed(*frame.bytes);
  DENGINE_TRY(f, d.next());
  if (!f) return error(errc::malformed, "an incomplete frame");
  return frame_message(*f);
}

/// What became of a frame at its receiver: exactly one member is set.
struct Arrived {
  /// The decoded message, for the node.
  std::optional<raft::Message> message;
  /// Why the decoder refused the frame (it was damaged: expected). The link reconnected.
  std::string refused;
  /// Set when the codec got the frame wrong: an intact frame refused or decoded to something
  /// other than one message, or a damaged frame accepted. A simulation violation; the frame is
  /// not delivered (a node fed garbage may stall a run that has already failed).
  std::string codec_failure;
};

/// The receiving ends of every directed link: one wire::FrameDecoder each, created at a link's
/// first frame and dropped when its connection breaks.
class LinkDecoders {
 public:
  /// Decodes `frame`, arriving over from → to. `damage`, when set, is the network's draw for
  /// a copy damaged in transit: bit `damage mod (8 × size)` of the frame is flipped first.
  Arrived take(NodeId from, NodeId to, const WireFrame& frame,
               std::optional<std::uint64_t> damage) {
    std::string damaged;
    std::string_view bytes = *frame.bytes;
    if (damage) {
      damaged.assign(bytes);
      const std::uint64_t bit = *damage % (8 * damaged.size());
      damaged[bit / 8] = static_cast<char>(damaged[bit / 8] ^ (1U << (bit % 8)));
      bytes = damaged;
    }
    auto link = [&] { return "link n" + std::to_string(from) + " -> n" + std::to_string(to); };
    Arrived out;
    auto broken = [&](std::string why) {
      // A stream cannot be re-synchronised after a bad frame: the connection is closed and the
      // next frame opens a new one (docs/wire.md, Frames).
      links_.erase({from, to});
      if (damage) {
        out.refused = std::move(why);
      } else {
        out.codec_failure = link() + ": an intact frame was refused: " + why;
      }
      return std::move(out);
    };

    Link& l = links_[{from, to}];
    l.decoder.feed(bytes);
    l.fed += bytes.size();
    auto first = l.decoder.next();
    if (!first) return broken(first.error().message());
    std::optional<wire::Frame>& frame_taken = first.value();
    if (!frame_taken) {
      // The header announced more payload than the frame holds (a damaged length): a reader
      // would wait for bytes the sender never wrote, until its read timeout closed the
      // connection. The simulator knows the frame is whole, so it closes the connection now.
      return broken("frame at stream offset " + std::to_string(l.decoder.offset()) +
                    ": still incomplete after all of its " + std::to_string(bytes.size()) +
                    " bytes arrived (its header announces more)");
    }
    if (l.decoder.failed() || l.decoder.offset() != l.fed) {
      // The frame's bytes did not end at a frame boundary (a damaged length that the checksum
      // let through): what follows is garbage to this stream.
      return broken("frame at stream offset " + std::to_string(l.fed - bytes.size()) +
                    ": its bytes do not end where the header says");
    }
    auto m = frame_message(*frame_taken);
    if (!m) {
      links_.erase({from, to});
      out.codec_failure = link() + ": a frame that passed the frame checks (" +
                          (damage ? "damaged in transit" : "intact") +
                          ") does not decode: " + m.error().message();
      return out;
    }
    if (damage) {
      links_.erase({from, to});
      out.codec_failure = link() + ": a frame damaged in transit was accepted and decoded (bit " +
                          std::to_string(*damage % (8 * bytes.size())) + " of " +
                          std::to_string(bytes.size()) + " bytes flipped)";
      return out;
    }
    out.message = std::move(m).value();
    return out;
  }

  /// Closes every connection to or from `node` (its process stopped): the next frame over any
  /// of them opens a new one, at stream offset 0.
  void reset(NodeId node) {
    std::erase_if(links_, [node](const auto& kv) {
      return kv.first.first == node || kv.first.second == node;
    });
  }

  /// Open connections (links with a decoder), for tests.
  [[nodiscard]] std::size_t open() const noexcept { return links_.size(); }

 private:
  struct Link {
    wire::FrameDecoder decoder;
    /// Bytes fed so far: equal to decoder.offset() at every frame boundary.
    std::uint64_t fed = 0;
  };
  std::map<std::pair<NodeId, NodeId>, Link> links_;
};

}  // namespace dengine::sim
