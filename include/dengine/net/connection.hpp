#pragma once
/// One lane to one peer (send_queue.hpp, Lane): its queue and the TCP connection that drains
/// it. The connection is opened when there is something to send; its first bytes are this
/// node's hello, then batches of queued messages, each written as soon as the previous write
/// completed (pipelined: nothing waits for an answer). It reads only the peer's answering hello
/// and checks it. When the connection fails or breaks it waits a back-off (backoff.hpp) and
/// connects again while messages are queued; messages stay queued (bounded) meanwhile.
///
/// The snapshot lane writes no message frames: it streams its newest snapshot in chunks
/// (snapshot_sender.hpp), paced by the transport's rate limiter and a window of chunks not yet
/// acknowledged, and reads the receiver's acks on the same connection. A broken connection does
/// not lose the stream: the next one goes on from the last acknowledged offset.
///
/// Threads: enqueue() from any thread; everything else on the transport's I/O thread, except
/// construction (the peer table makes lanes on set_peers()'s thread: constructing a socket and a
/// timer touches only the io_context's thread-safe service registry) and destruction (whoever
/// drops the last pointer; by then no handler holds one and the lane is closed). Handlers
/// carry the connection's generation: one from a connection that was closed meanwhile is
/// ignored, so each connection's state is touched only by its own handlers.

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dengine/net/backoff.hpp"
#include "dengine/net/context.hpp"
#include "dengine/net/rate_limiter.hpp"
#include "dengine/net/send_queue.hpp"
#include "dengine/net/snapshot_sender.hpp"
#include "dengine/wire/frame.hpp"
#include "dengine/wire/handshake.hpp"
#include "dengine/wire/message_codec.hpp"
#include "dengine/wire/snapshot_stream.hpp"

namespace dengine::net::detail {

class OutboundLane : public std::enable_shared_from_this<OutboundLane> {
 public:
  OutboundLane(Context& ctx, NodeId peer, PeerAddress address, Lane lane, QueueLimits limits,
               std::uint64_t seed)
      : ctx_(ctx),
        peer_(peer),
        address_(std::move(address)),
        lane_(lane),
        queue_(limits),
        backoff_(ctx.config.backoff, seed),
        socket_(ctx.io),
        timer_(ctx.io),
        rate_timer_(ctx.io) {
    if (lane == Lane::snapshot)
      snapshots_.emplace(ctx.config.snapshot_chunk_bytes, ctx.config.snapshot_window_chunks);
  }

  /// Queues `m` (or drops it when the queue is full, counted) and wakes the writer; true. False
  /// when the lane was retired: `m` is untouched, and the caller looks its peer up again (the
  /// lane left the peer table before it was retired). Any thread; never blocks beyond the
  /// queue's mutex.
  bool enqueue(raft::Message& m) {
    switch (queue_.push(m)) {
      case Pushed::closed: return false;
      case Pushed::full: TransportMetrics::bump(ctx_.metrics->dropped_queue_full); return true;
      case Pushed::queued: break;
    }
    // One wake-up in flight at a time: a wake that finds the queue empty is harmless, and a
    // push after the flag was cleared posts the next one.
    if (!wake_posted_.exchange(true, std::memory_order_acq_rel)) {
      boost::asio::post(ctx_.io, [self = shared_from_this()] {
        self->wake_posted_.store(false, std::memory_order_release);
        self->pump();
      });
    }
    return true;
  }

  /// Closes the connection and the back-off timer for good (stop()). I/O thread.
  void close() {
    closed_ = true;
    timer_.cancel();
    rate_timer_.cancel();
    close_socket();
  }

  /// Closes the lane for good because set_peers() removed its peer or moved it to another
  /// address: close(), and drop what is queued (counted in dropped_peer_removed); a later
  /// enqueue() returns false. I/O thread.
  void retire() {
    close();
    const std::size_t dropped = queue_.close();
    if (dropped == 0) return;
    ctx_.log(name() + ": closed (the peer left the list or moved): " + std::to_string(dropped) +
             " queued messages dropped");
    // Counted after the line, as elsewhere: whoever sees the count sees the line.
    TransportMetrics::bump(ctx_.metrics->dropped_peer_removed, dropped);
  }

  [[nodiscard]] std::pair<std::size_t, std::size_t> depth() const { return queue_.depth(); }

 private:
  enum class State : std::uint8_t { idle, connecting, open, waiting };

  /// Moves things along: connect when idle with something to send, write when open and idle
  /// (and, on the snapshot lane, not waiting for the rate limiter).
  void pump() {
    if (closed_ || ctx_.stopping.load(std::memory_order_acquire)) return;
    if (state_ == State::idle && has_work()) connect();
    if (state_ == State::open && !writing_ && !rate_waiting_) write_next();
  }

  /// Messages queued, or a snapshot stream not yet acknowledged whole.
  [[nodiscard]] bool has_work() const {
    return !queue_.empty() || (snapshots_ && snapshots_->active());
  }

  [[nodiscard]] std::string name() const {
    return "peer " + std::to_string(peer_) + " (" + address_.to_string() + ", " +
           std::string(to_string(lane_)) + " lane)";
  }

  void connect() {
    state_ = State::connecting;
    if (attempted_) TransportMetrics::bump(ctx_.metrics->reconnects);
    attempted_ = true;
    const auto gen = ++generation_;
    socket_ = boost::asio::ip::tcp::socket(ctx_.io);
    hello_seen_ = false;
    decoder_ = wire::FrameDecoder(ctx_.config.frame_limits);
    socket_.async_connect(address_.endpoint(),
                          [self = shared_from_this(), gen](const boost::system::error_code& ec) {
                            if (gen != self->generation_ || self->closed_) return;
                            if (ec) {
                              self->broken("connect failed: " + ec.message());
                              return;
                            }
                            self->on_connected();
                          });
  }

  void on_connected() {
    state_ = State::open;
    boost::system::error_code ignored;
    socket_.set_option(boost::asio::ip::tcp::no_delay(true), ignored);
    // The hello goes first, in the same write as the first batch.
    const wire::Hello hello{ctx_.config.cluster_id, ctx_.config.self, peer_,
                            wire::supported_versions, ctx_.advertised};
    pending_hello_ = wire::encode_frame(wire::FrameKind::hello, wire::encode_hello(hello));
    if (snapshots_ && snapshots_->active()) {
      const std::uint64_t from = snapshots_->restart();
      if (from > 0) {
        ctx_.log(name() + ": resuming the " + snapshots_->id().to_string() + " at offset " +
                 std::to_string(from) + ", the last the receiver acknowledged");
        TransportMetrics::bump(ctx_.metrics->snapshot_resumes);
      }
    }
    read_next(generation_);
    write_next();
  }

  /// Writes the hello (first time) and the next batch or chunks; or nothing when all are empty.
  void write_next() {
    out_.clear();
    out_.swap(pending_hello_);
    batch_.clear();
    if (snapshots_)
      add_chunks();
    else
      add_batch();
    if (out_.empty()) {
      writing_ = false;
      if (!queue_.empty() && !snapshots_) pump();  // the dropped message was not the last one
      return;
    }
    writing_ = true;
    const auto gen = generation_;
    boost::asio::async_write(
        socket_, boost::asio::buffer(out_),
        [self = shared_from_this(), gen](const boost::system::error_code& ec, std::size_t) {
          if (gen != self->generation_ || self->closed_) return;
          self->writing_ = false;
          if (ec) {
            self->broken("write failed: " + ec.message());  // counts the batch as lost
            return;
          }
          auto& metrics = *self->ctx_.metrics;
          TransportMetrics::bump(metrics.sent, self->batch_.size());
          if (!self->batch_.empty()) TransportMetrics::bump(metrics.writes);
          if (self->chunks_in_write_ > 0) {
            TransportMetrics::bump(metrics.snapshot_chunks_sent, self->chunks_in_write_);
            TransportMetrics::bump(metrics.snapshot_bytes_sent, self->chunk_bytes_in_write_);
          }
          self->batch_.clear();
          self->pump();
        });
  }

  /// Adds the next batch of queued messages to out_ as one messages frame.
  void add_batch() {
    const std::size_t max_payload = ctx_.config.frame_limits.max_payload;
    // The batch's payload is its messages plus a 4-byte count: keep it within the frame limit,
    // so only a single message can be over it.
    queue_.take(batch_, std::min<std::size_t>(ctx_.config.batch_bytes,
                                              max_payload > 4 ? max_payload - 4 : 1));
    // A single message over the frame limit cannot be sent to a peer with our limits: drop it
    // (the receiver would close the connection for it) and say so.
    std::size_t payload = 4;
    for (auto& m : batch_) payload += wire::encoded_size(m);
    if (payload > max_payload) {
      TransportMetrics::bump(ctx_.metrics->dropped_unsendable, batch_.size());
      ctx_.log(name() + ": dropped a " + std::string(raft::to_string(batch_.front().type)) +
               " message of " + std::to_string(payload) + " bytes, over the frame limit of " +
               std::to_string(max_payload));
      batch_.clear();
    }
    if (!batch_.empty())
      wire::append_frame(out_, wire::FrameKind::messages, wire::encode_messages(batch_));
  }

  /// Snapshot lane: hands the queued snapshots to the stream, then adds to out_ the chunks the
  /// window and the rate limiter allow, up to batch_bytes (at least one when any is allowed).
  /// When the limiter says wait, a timer pumps again after that wait.
  void add_chunks() {
    chunks_in_write_ = 0;
    chunk_bytes_in_write_ = 0;
    offer_queued_snapshots();
    if (rate_waiting_) return;
    while (const std::size_t n = snapshots_->next_chunk_size()) {
      if (chunks_in_write_ > 0 && out_.size() + n > ctx_.config.batch_bytes) return;
      const auto wait = ctx_.snapshot_rate.take(n, RateLimiter::clock::now());
      if (wait > RateLimiter::clock::duration::zero()) {
        wait_for_rate(wait);
        return;
      }
      const auto chunk = snapshots_->next_chunk();
      wire::append_frame(out_, wire::FrameKind::snapshot_chunk, wire::encode_chunk(*chunk));
      ++chunks_in_write_;
      chunk_bytes_in_write_ += n;
    }
  }

  /// Moves every queued snapshot into the stream (which keeps the newest; snapshot_sender.hpp)
  /// and logs a stream that starts.
  void offer_queued_snapshots() {
    if (queue_.empty()) return;
    std::vector<raft::Message> queued;
    queue_.take(queued, std::numeric_limits<std::size_t>::max());
    for (auto& m : queued) {
      if (m.type != raft::MessageType::snapshot || !m.snapshot) continue;  // lane_of: never
      const std::size_t size = wire::encoded_size(m);
      if (size > ctx_.config.max_snapshot_bytes) {
        TransportMetrics::bump(ctx_.metrics->dropped_unsendable);
        ctx_.log(name() + ": dropped a snapshot of " + std::to_string(size) +
                 " bytes, over max_snapshot_bytes " +
                 std::to_string(ctx_.config.max_snapshot_bytes));
        continue;
      }
      switch (snapshots_->offer(m)) {
        case SnapshotSender::Offer::started:
          ctx_.log(name() + ": streaming the " + snapshots_->id().to_string());
          break;
        case SnapshotSender::Offer::replaced:
          ctx_.log(name() + ": streaming the " + snapshots_->id().to_string() +
                   " instead of the older one in progress");
          break;
        case SnapshotSender::Offer::duplicate:
        case SnapshotSender::Offer::stale: break;  // the stream in progress serves
      }
    }
  }

  /// The rate limiter asked for `wait` before the next chunk: pump again then.
  void wait_for_rate(RateLimiter::clock::duration wait) {
    rate_waiting_ = true;
    rate_timer_.expires_after(wait);
    rate_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || self->closed_) return;
      self->rate_waiting_ = false;
      self->pump();
    });
  }

  /// Reads the peer's hello, then watches for the close (the peer sends nothing else).
  void read_next(std::uint64_t gen) {
    socket_.async_read_some(
        boost::asio::buffer(rbuf_),
        [self = shared_from_this(), gen](const boost::system::error_code& ec, std::size_t n) {
          if (gen != self->generation_ || self->closed_) return;
          if (ec) {
            self->broken(self->hello_seen_ ? "closed by the peer (" + ec.message() + ")"
                                           : "the peer closed the connection before answering "
                                             "the hello: it refused this node (its log says "
                                             "why) or is stopping (" +
                                                 ec.message() + ")",
                         !self->hello_seen_);
            return;
          }
          self->decoder_.feed(std::string_view(self->rbuf_.data(), n));
          if (auto problem = self->take_frames(); !problem.empty()) {
            self->broken(problem);
            return;
          }
          self->read_next(gen);
          self->pump();  // an ack may have opened the snapshot window
        });
  }

  /// Checks what the peer sent: exactly one hello, from the member we meant to reach, of our
  /// cluster; then, on the snapshot lane, acks of the stream. Returns why the connection must
  /// close, or "".
  std::string take_frames() {
    for (;;) {
      auto next = decoder_.next();
      if (!next) return "bad bytes from the peer: " + next.error().message();
      if (!next.value()) return "";
      const wire::Frame& f = *next.value();
      if (f.kind == wire::FrameKind::snapshot_ack && hello_seen_ && snapshots_) {
        auto ack = wire::decode_ack(f.payload);
        if (!ack) return "bad snapshot ack from the peer: " + ack.error().message();
        take_ack(ack.value());
        continue;
      }
      if (f.kind != wire::FrameKind::hello || hello_seen_)
        return "the peer sent a " + std::string(wire::to_string(f.kind)) +
               " frame; it only answers one hello";
      auto hello = wire::decode_hello(f.payload);
      if (!hello) return "bad hello from the peer: " + hello.error().message();
      if (hello.value().from != peer_)
        return "the address answers as member " + std::to_string(hello.value().from) + ", not " +
               std::to_string(peer_) + " (a wrong address in the peer list?)";
      // The sender is the member dialled (checked above): no standing to look up.
      auto checked = wire::check_hello(hello.value(),
                                       wire::HelloCheck{ctx_.config.cluster_id, ctx_.config.self});
      if (!checked) return "refused the peer's hello: " + checked.error().message();
      hello_seen_ = true;
      // Only an answered hello proves the peer is back: a refusal keeps backing off.
      backoff_.reset();
      failure_logged_ = false;
    }
  }

  void take_ack(const wire::SnapshotAck& ack) {
    const auto id = snapshots_->id();
    switch (snapshots_->on_ack(ack)) {
      case SnapshotSender::Acked::ignored:
      case SnapshotSender::Acked::progress: break;
      case SnapshotSender::Acked::rewound:
        TransportMetrics::bump(ctx_.metrics->snapshot_rewinds);
        break;
      case SnapshotSender::Acked::done:
        ctx_.log(name() + ": the " + id.to_string() + " arrived whole");
        TransportMetrics::bump(ctx_.metrics->snapshots_streamed);
        TransportMetrics::bump(ctx_.metrics->sent);  // a streamed message is sent once whole
        break;
    }
  }

  /// The connection failed or broke: close it, wait a back-off, connect again if messages are
  /// queued by then. Logs the first failure in a row (a peer down for long does not flood).
  void broken(const std::string& why, bool refused_by_peer = false) {
    close_socket();
    if (closed_ || ctx_.stopping.load(std::memory_order_acquire)) return;
    const auto wait = backoff_.next();
    if (!failure_logged_) {
      ctx_.log(name() + ": " + why +
               "; retrying with back-off (further failures in a row are "
               "not logged)");
      failure_logged_ = true;
    }
    // Counted after the line, so whoever sees the count sees the line.
    if (refused_by_peer) TransportMetrics::bump(ctx_.metrics->peer_refusals);
    state_ = State::waiting;
    timer_.expires_after(wait);
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || self->closed_) return;
      self->state_ = State::idle;
      self->pump();
    });
  }

  void close_socket() {
    ++generation_;  // handlers of the closed connection become no-ops
    boost::system::error_code ignored;
    socket_.close(ignored);
    writing_ = false;
    state_ = State::idle;
    if (!batch_.empty()) {
      TransportMetrics::bump(ctx_.metrics->dropped_in_flight, batch_.size());
      batch_.clear();
    }
  }

  Context& ctx_;
  const NodeId peer_;
  const PeerAddress address_;
  const Lane lane_;
  SendQueue queue_;
  std::atomic<bool> wake_posted_{false};

  // I/O thread only.
  Backoff backoff_;
  boost::asio::ip::tcp::socket socket_;
  boost::asio::steady_timer timer_;
  boost::asio::steady_timer rate_timer_;
  State state_ = State::idle;
  std::uint64_t generation_ = 0;
  bool writing_ = false;
  bool closed_ = false;
  bool attempted_ = false;
  bool hello_seen_ = false;
  bool failure_logged_ = false;
  bool rate_waiting_ = false;
  std::string pending_hello_;
  std::string out_;
  std::vector<raft::Message> batch_;
  /// The snapshot lane's stream (only that lane has one), and what the write in flight carries.
  std::optional<SnapshotSender> snapshots_;
  std::size_t chunks_in_write_ = 0;
  std::uint64_t chunk_bytes_in_write_ = 0;
  wire::FrameDecoder decoder_;
  std::array<char, 512> rbuf_{};
};

}  // namespace dengine::net::detail
