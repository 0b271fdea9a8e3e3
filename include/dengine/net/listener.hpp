#pragma once
/// The inbound side: the acceptor, and one InboundConnection per accepted socket. A connection's
/// first frame must be a hello that the roster admits (roster.hpp, wire::check_hello: this
/// cluster, meant for this member, from a member or from a sender that is neither a member nor
/// removed and gives its address, a common wire version); the answer is this node's own hello,
/// and from then on every frame is a batch of messages from that peer to this node, handed to
/// the node in order, or a chunk of a snapshot stream from that peer, answered with an ack on
/// the same connection and handed to the node as one snapshot message once the stream is whole
/// and checked (snapshot_receiver.hpp; the partial stream outlives a broken connection). Anything
/// else — bad bytes (FrameDecoder, decode_messages), a refused
/// hello, a message naming another sender or receiver — closes that connection with a logged
/// reason and a counter; the transport and its other connections go on. When a member is
/// removed (set_peers(), on_membership()), its open connections close too (close_removed).
///
/// The protocol has no refusal frame (docs/wire.md): a refused peer sees its connection closed
/// before any hello came back, and logs that (connection.hpp); the reason is in this side's log.
///
/// Threads: everything here runs on the transport's I/O thread.

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <cstddef>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "dengine/net/context.hpp"
#include "dengine/net/roster.hpp"
#include "dengine/net/snapshot_receiver.hpp"
#include "dengine/wire/frame.hpp"
#include "dengine/wire/handshake.hpp"
#include "dengine/wire/message_codec.hpp"
#include "dengine/wire/snapshot_stream.hpp"

namespace dengine::net::detail {

class Listener;

class InboundConnection : public std::enable_shared_from_this<InboundConnection> {
 public:
  InboundConnection(Context& ctx, Listener& owner, boost::asio::ip::tcp::socket socket)
      : ctx_(ctx), owner_(owner), socket_(std::move(socket)), decoder_(ctx.config.frame_limits) {
    boost::system::error_code ec;
    const auto remote = socket_.remote_endpoint(ec);
    remote_ = ec ? std::string("an unknown address")
                 : remote.address().to_string() + ":" + std::to_string(remote.port());
  }

  void start() { read_next(); }
  /// Closes the socket; pending handlers then see an error and end. Idempotent.
  inline void close();
  /// The member whose hello was accepted; no_node before that.
  [[nodiscard]] NodeId peer() const noexcept { return peer_; }
  /// Closes the connection because its member was removed: from now on that member cannot
  /// deliver to this node, as if its hello had been refused.
  void close_removed() {
    ctx_.log(name() + ": closing: member " + std::to_string(peer_) + " was removed from the peers");
    close();
  }

 private:
  [[nodiscard]] std::string name() const {
    return "inbound connection from " + remote_ +
           (peer_ == no_node ? std::string() : " (member " + std::to_string(peer_) + ")");
  }

  void read_next() {
    socket_.async_read_some(
        boost::asio::buffer(rbuf_),
        [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
          if (self->closed_) return;
          if (ec) {
            // The peer went away. Inside a frame (the decoder consumed fewer bytes into whole
            // frames than were read) that is a truncated frame, lost with the connection.
            if (self->decoder_.offset() != self->bytes_) {
              self->refuse_bytes("closed inside the frame at stream offset " +
                                 std::to_string(self->decoder_.offset()) + ", " +
                                 std::to_string(self->bytes_ - self->decoder_.offset()) +
                                 " bytes of it received (" + ec.message() + ")");
              return;
            }
            self->close();
            return;
          }
          self->bytes_ += n;
          self->decoder_.feed(std::string_view(self->rbuf_.data(), n));
          if (!self->take_frames()) return;
          self->read_next();
        });
  }

  /// Handles every complete frame; false when the connection was closed for one.
  bool take_frames() {
    for (;;) {
      auto next = decoder_.next();
      if (!next) return refuse_bytes(next.error().message());
      if (!next.value()) return true;
      wire::Frame& f = *next.value();
      if (peer_ == no_node) {
        if (f.kind != wire::FrameKind::hello)
          return refuse_bytes("a " + std::string(wire::to_string(f.kind)) +
                              " frame before the hello");
        if (!accept_hello(f.payload)) return false;
        continue;
      }
      if (f.kind == wire::FrameKind::snapshot_chunk) {
        if (!take_chunk(f.payload)) return false;
        continue;
      }
      if (f.kind != wire::FrameKind::messages)
        return refuse_bytes(f.kind == wire::FrameKind::hello
                                ? std::string("a second hello frame")
                                : "a " + std::string(wire::to_string(f.kind)) +
                                      " frame, which only the accepting side sends");
      auto batch = wire::decode_messages(f.payload);
      if (!batch) return refuse_bytes(batch.error().message());
      for (auto& m : batch.value())
        if (auto wrong = misaddressed(m); !wrong.empty()) return refuse_bytes(wrong);
      for (auto& m : batch.value()) ctx_.deliver(std::move(m));
    }
  }

  /// Checks the hello (the roster admits or refuses it) and answers an accepted one; false
  /// when the connection was closed for it. Defined after Listener (it asks the roster).
  inline bool accept_hello(const std::string& payload);

  /// Why `m` must not reach the core, or "": the hello named the sender and receiver, and a
  /// message that names others is a confused or lying peer.
  [[nodiscard]] std::string misaddressed(const raft::Message& m) const {
    if (m.from == peer_ && m.to == ctx_.config.self) return {};
    return "a " + std::string(raft::to_string(m.type)) + " message from " + std::to_string(m.from) +
           " to " + std::to_string(m.to) + " on the connection of member " + std::to_string(peer_) +
           " to " + std::to_string(ctx_.config.self);
  }

  /// Takes a chunk of the peer's snapshot stream and answers it; a stream made whole is decoded
  /// and delivered. False when the connection was closed for it. Defined after Listener (the
  /// partial streams are kept there, beyond this connection).
  inline bool take_chunk(const std::string& payload);

  /// Queues `frame` for writing after what is queued (the hello answer, acks).
  void write_frame(const std::string& frame) {
    pending_ += frame;
    if (!writing_) flush();
  }
  void flush() {
    if (pending_.empty() || closed_) {
      writing_ = false;
      return;
    }
    writing_ = true;
    writing_buf_.swap(pending_);
    pending_.clear();
    boost::asio::async_write(
        socket_, boost::asio::buffer(writing_buf_),
        [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
          if (self->closed_) return;
          self->writing_ = false;
          if (!ec) self->flush();  // a failed write shows up as a read error too
        });
  }

  /// Answers `hello`'s sender with our hello, so it knows it reached the member it meant (and
  /// may reset its back-off). The buffer lives in the connection until the write ends.
  void answer(const wire::Hello& hello) {
    peer_ = hello.from;
    TransportMetrics::bump(ctx_.metrics->accepted);
    const wire::Hello ours{ctx_.config.cluster_id, ctx_.config.self, peer_,
                           wire::supported_versions, ctx_.advertised};
    write_frame(wire::encode_frame(wire::FrameKind::hello, wire::encode_hello(ours)));
  }

  /// Closes the connection for bytes that break the protocol, with the reason.
  bool refuse_bytes(const std::string& why) {
    ctx_.log(name() + ": closing: " + why);
    TransportMetrics::bump(ctx_.metrics->malformed_frames);  // after the line, as above
    close();
    return false;
  }

  Context& ctx_;
  Listener& owner_;
  boost::asio::ip::tcp::socket socket_;
  wire::FrameDecoder decoder_;
  std::string remote_;
  NodeId peer_ = no_node;
  bool closed_ = false;
  /// Bytes read so far; decoder_.offset() is the part of them that formed whole frames.
  std::uint64_t bytes_ = 0;
  /// Frames to write (pending_) and being written (writing_buf_): the hello answer, acks.
  std::string pending_;
  std::string writing_buf_;
  bool writing_ = false;
  std::array<char, std::size_t{64} << 10U> rbuf_{};  // 64 KiB per read
};

/// Accepts peer connections on the listen address and keeps the open ones, so stop() can close
/// them. Bound at construction (so the port is known before start), listening from start().
class Listener {
 public:
  /// Binds `address` (invalid_argument or io_error naming it on failure). `roster` admits the
  /// hellos.
  static result<std::unique_ptr<Listener>> bind(Context& ctx, Roster& roster,
                                                const PeerAddress& address) {
    std::unique_ptr<Listener> l(new Listener(ctx, roster));
    boost::system::error_code ec;
    const auto endpoint = address.endpoint();
    l->acceptor_.open(endpoint.protocol(), ec);
    if (!ec) l->acceptor_.set_option(boost::asio::socket_base::reuse_address(true), ec);
    if (!ec) l->acceptor_.bind(endpoint, ec);
    if (ec)
      return error(errc::io_error, "transport: cannot bind the listen address " +
                                       address.to_string() + ": " + ec.message());
    return l;
  }

  /// The bound port (the system's choice for port 0).
  [[nodiscard]] std::uint16_t port() const {
    boost::system::error_code ec;
    return acceptor_.local_endpoint(ec).port();
  }

  /// Starts listening and accepting. Before this a connection attempt is refused (nothing
  /// listens), as for a node that is down.
  result<void> listen() {
    boost::system::error_code ec;
    acceptor_.listen(boost::asio::socket_base::max_listen_connections, ec);
    if (ec)
      return error(errc::io_error, "transport: cannot listen on port " + std::to_string(port()) +
                                       ": " + ec.message());
    return success();
  }
  /// I/O thread: the accept loop.
  void accept_next() {
    acceptor_.async_accept(
        [this](const boost::system::error_code& ec, boost::asio::ip::tcp::socket socket) {
          if (closed_) return;
          if (ec) {
            ctx_.log("accept failed: " + ec.message());
          } else {
            boost::system::error_code ignored;
            socket.set_option(boost::asio::ip::tcp::no_delay(true), ignored);
            auto c = std::make_shared<InboundConnection>(ctx_, *this, std::move(socket));
            open_.insert(c);
            c->start();
          }
          accept_next();
        });
  }

  /// I/O thread (or after it ended): closes the acceptor and every connection.
  void close() {
    closed_ = true;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    auto open = std::move(open_);
    for (const auto& c : open) c->close();
  }

  /// I/O thread: closes the connections of members the roster removed (a change just before).
  /// A connection still waiting for its hello stays: its hello will be checked against the
  /// current roster.
  void close_removed() {
    std::vector<std::shared_ptr<InboundConnection>> gone;
    for (const auto& c : open_)
      if (c->peer() != no_node && roster_.removed(c->peer())) gone.push_back(c);
    for (const auto& c : gone) c->close_removed();  // erases from open_: not while iterating
    snapshots_.forget_if([this](NodeId id) { return roster_.removed(id); });
  }

  [[nodiscard]] Roster& roster() noexcept { return roster_; }
  /// The snapshot streams in progress, per sender (they outlive a connection).
  [[nodiscard]] SnapshotReceiver& snapshots() noexcept { return snapshots_; }

  /// Called by a connection as it closes.
  void forget(const std::shared_ptr<InboundConnection>& c) { open_.erase(c); }

 private:
  Listener(Context& ctx, Roster& roster)
      : ctx_(ctx), roster_(roster), acceptor_(ctx.io), snapshots_(ctx.config.max_snapshot_bytes) {}

  Context& ctx_;
  Roster& roster_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::set<std::shared_ptr<InboundConnection>> open_;
  SnapshotReceiver snapshots_;
  bool closed_ = false;
};

inline bool InboundConnection::accept_hello(const std::string& payload) {
  auto hello = wire::decode_hello(payload);
  if (!hello) return refuse_bytes(hello.error().message());
  if (auto admitted = owner_.roster().admit(hello.value()); !admitted) {
    // Log, then count: whoever sees the count sees the line.
    ctx_.log(name() + ": refused: " + admitted.error().message());
    TransportMetrics::bump(ctx_.metrics->refused_hellos);
    close();
    return false;
  }
  answer(hello.value());
  return true;
}

inline bool InboundConnection::take_chunk(const std::string& payload) {
  auto chunk = wire::decode_chunk(payload);
  if (!chunk) return refuse_bytes(chunk.error().message());
  SnapshotReceiver& receiver = owner_.snapshots();
  auto outcome = receiver.on_chunk(peer_, chunk.value());
  if (!outcome) return refuse_bytes(outcome.error().message());
  SnapshotReceiver::Outcome& out = outcome.value();
  if (!out.problem.empty()) {
    ctx_.log(name() + ": " + out.problem);
    TransportMetrics::bump(ctx_.metrics->snapshot_refused);
  }
  std::optional<raft::Message> whole;
  if (out.complete) {
    // The bytes are what the sender encoded (the checksum matched): a message that does not
    // decode, or is not a snapshot from this peer to us, is a sender's bug. Forget the stream,
    // so that a resend is taken afresh rather than answered "done".
    auto m = wire::decode_message(*out.complete);
    std::string wrong = !m ? m.error().message() : misaddressed(m.value());
    if (wrong.empty() && (m.value().type != raft::MessageType::snapshot || !m.value().snapshot))
      wrong = "a " + std::string(raft::to_string(m.value().type)) + " message, not a snapshot";
    if (!wrong.empty()) {
      receiver.forget(peer_);
      return refuse_bytes("the " + chunk.value().id.to_string() + " holds " + wrong);
    }
    whole = std::move(m).value();
  }
  write_frame(wire::encode_frame(wire::FrameKind::snapshot_ack, wire::encode_ack(out.ack)));
  if (whole) {
    TransportMetrics::bump(ctx_.metrics->snapshots_received);
    ctx_.deliver(std::move(*whole));
  }
  return true;
}

inline void InboundConnection::close() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ignored;
  socket_.close(ignored);
  owner_.forget(shared_from_this());
}

}  // namespace dengine::net::detail
