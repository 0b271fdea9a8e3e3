// Snapshot streams (docs/network.md, Snapshot streams). First the two halves on their own,
// chunk by chunk, with acks lost, connections "broken" and receivers that forgot; then the
// rate limiter; then real transports on 127.0.0.1, with a proxy that cuts the stream or flips a
// byte in the middle: the stream resumes from the last acknowledged offset (the bytes sent
// show it), and the node receives the very message that was sent, once.

#include <doctest/doctest.h>

#include <random>

#include "dengine/net/rate_limiter.hpp"
#include "dengine/net/snapshot_receiver.hpp"
#include "dengine/net/snapshot_sender.hpp"
#include "fault_proxy.hpp"
#include "net_harness.hpp"
#include "wire_samples.hpp"

namespace dengine::net {
namespace {

using namespace testing;

/// A snapshot message from `from` to `to` whose image holds `bytes` bytes of seeded noise.
raft::Message snapshot_message(NodeId from, NodeId to, std::size_t bytes, LogIndex index = 100,
                               Term term = 3) {
  std::mt19937_64 rng(index * 7919 + bytes);
  std::string data(bytes, '\0');
  for (auto& c : data) c = static_cast<char>(rng());
  auto m = message(raft::MessageType::snapshot, from, to, term);
  m.snapshot = std::make_shared<const Snapshot>(
      Snapshot{SnapshotMeta{index, 2, Membership{{1, 2, 3}, {}, {}}}, std::move(data)});
  return m;
}

/// A sender and a receiver joined by a make-believe connection whose chunks and acks a test
/// can lose. Counts the data bytes the sender put on the "wire".
struct Link {
  Link() = default;
  explicit Link(std::size_t chunk_bytes) : sender(chunk_bytes, 3) {}

  SnapshotSender sender{1000, 3};
  SnapshotReceiver receiver{1U << 20U};
  std::uint64_t data_bytes = 0;
  std::vector<std::string> delivered;
  std::vector<std::string> problems;

  /// Sends every chunk the window allows; each reaches the receiver; its ack comes back unless
  /// `lose_acks`. Returns how many chunks went.
  int round(bool lose_acks = false) {
    std::vector<wire::SnapshotChunk> chunks;
    std::vector<std::string> copies;  // the chunks' data outlive a rewind
    while (auto c = sender.next_chunk()) {
      copies.emplace_back(c->data);
      chunks.push_back(*c);
    }
    for (std::size_t k = 0; k < chunks.size(); ++k) {
      chunks[k].data = copies[k];
      data_bytes += chunks[k].data.size();
      auto out = receiver.on_chunk(1, chunks[k]);
      REQUIRE(out);
      if (out.value().complete) delivered.push_back(*out.value().complete);
      if (!out.value().problem.empty()) problems.push_back(out.value().problem);
      if (!lose_acks) sender.on_ack(out.value().ack);
    }
    return static_cast<int>(chunks.size());
  }
  /// Rounds until the stream ends (bounded: a bug must not hang the test).
  void finish() {
    for (int k = 0; k < 1000 && sender.active(); ++k) round();
    CHECK_FALSE(sender.active());
  }
};

TEST_CASE("snapshot stream: chunks in order make the very message; each byte is sent once") {
  const auto m = snapshot_message(1, 2, 10'000);
  const auto encoded = wire::encode_message(m);
  // The sender streams the encoded head and then the image's own bytes: chunks that lie in the
  // head, straddle it and the image, or lie in the image make the same stream.
  for (std::size_t chunk : {1000, 50, 7}) {
    CAPTURE(chunk);
    Link link(chunk);
    CHECK(link.sender.offer(m) == SnapshotSender::Offer::started);
    CHECK(link.sender.id().total == encoded.size());
    CHECK(link.sender.id().checksum == crc32c::value(encoded));
    link.finish();
    REQUIRE(link.delivered.size() == 1);
    CHECK(link.delivered[0] == encoded);
    CHECK(link.data_bytes == encoded.size());
    auto back = wire::decode_message(link.delivered[0]);
    REQUIRE(back);
    CHECK(wire::testing::message_diff(back.value(), m) == "");
  }
}

TEST_CASE("snapshot stream: a new connection resumes from the last acknowledged offset") {
  Link link;
  const auto m = snapshot_message(1, 2, 20'000);
  link.sender.offer(m);
  // The window: three chunks of 1000 bytes, then nothing until an ack.
  CHECK(link.round() == 3);  // acknowledged
  link.round(true);          // 3 more reach the receiver; their acks are lost with the connection
  CHECK(link.sender.acked() == 3000);
  CHECK(link.sender.next_chunk_size() == 0);
  CHECK(link.receiver.held(1) == 6000);
  // The next connection starts at 3000; the receiver, holding 6000, answers those chunks with
  // 6000 and the stream skips there: the bytes re-sent are the window whose acks were lost.
  CHECK(link.sender.restart() == 3000);
  link.round();
  CHECK(link.sender.acked() == 6000);
  CHECK(link.sender.sent() == 6000);
  link.finish();
  REQUIRE(link.delivered.size() == 1);
  CHECK(link.delivered[0] == wire::encode_message(m));
  CHECK(link.data_bytes == link.sender.id().total + 3000);

  SUBCASE("a receiver that lost what it held rewinds the stream to 0") {
    Link again;
    again.sender.offer(m);
    again.round();
    again.receiver.forget(1);  // e.g. the receiving process restarted
    again.sender.restart();
    again.finish();
    REQUIRE(again.delivered.size() == 1);
    CHECK(again.delivered[0] == wire::encode_message(m));
  }
}

TEST_CASE("snapshot stream: a chunk of a finished stream is answered done; stale rewinds ignored") {
  Link link;
  const auto m = snapshot_message(1, 2, 2'500);
  link.sender.offer(m);
  link.round(true);  // all three chunks arrive; every ack (the done too) is lost
  REQUIRE(link.delivered.size() == 1);
  CHECK(link.sender.active());
  link.sender.restart();
  link.finish();  // answered done at once, not delivered twice
  CHECK(link.delivered.size() == 1);

  // A rewind of an earlier attempt (the answer to a chunk sent before a restart) moves nothing.
  SnapshotSender s(1000, 3);
  s.offer(m);
  (void)s.next_chunk();
  const auto first = *s.next_chunk();
  s.restart();
  wire::SnapshotAck stale{first.id, first.attempt, 0, wire::AckKind::rewind};
  CHECK(s.on_ack(stale) == SnapshotSender::Acked::ignored);
  wire::SnapshotAck current{first.id, first.attempt + 1, 500, wire::AckKind::rewind};
  CHECK(s.on_ack(current) == SnapshotSender::Acked::rewound);
  CHECK(s.sent() == 500);
}

TEST_CASE("snapshot stream: the lane streams the newest image; resends of it are dropped") {
  SnapshotSender s(1000, 3);
  CHECK(s.offer(snapshot_message(1, 2, 5000, 100)) == SnapshotSender::Offer::started);
  (void)s.next_chunk();
  CHECK(s.offer(snapshot_message(1, 2, 5000, 100)) == SnapshotSender::Offer::duplicate);
  CHECK(s.sent() == 1000);  // the stream in progress goes on
  CHECK(s.offer(snapshot_message(1, 2, 5000, 90)) == SnapshotSender::Offer::stale);
  CHECK(s.offer(snapshot_message(1, 2, 5000, 100, 4)) == SnapshotSender::Offer::replaced);
  CHECK(s.id().term == 4);
  CHECK(s.sent() == 0);
  CHECK(s.offer(snapshot_message(1, 2, 5000, 120, 4)) == SnapshotSender::Offer::replaced);
  CHECK(s.id().index == 120);
}

TEST_CASE("snapshot stream: a whole stream with a wrong checksum is discarded, then re-sent") {
  const auto encoded = wire::encode_message(snapshot_message(1, 2, 3000));
  wire::SnapshotStreamId wrong{3, 100, 2, encoded.size(), crc32c::value(encoded) ^ 1U};
  SnapshotReceiver r(1U << 20U);
  auto out = r.on_chunk(1, wire::SnapshotChunk{wrong, 1, 0, encoded});
  REQUIRE(out);
  CHECK_FALSE(out.value().complete);
  CHECK(out.value().ack.kind == wire::AckKind::rewind);
  CHECK(out.value().ack.offset == 0);
  CHECK(out.value().problem.find("CRC32C") != std::string::npos);
  CHECK(r.held(1) == 0);

  // A chunk past a gap is answered with a rewind to the offset held; one that overlaps what is
  // held adds what lies past it.
  wire::SnapshotStreamId right = wrong;
  right.checksum ^= 1U;
  const std::string_view bytes(encoded);
  REQUIRE(r.on_chunk(1, wire::SnapshotChunk{right, 2, 0, bytes.substr(0, 100)}));
  auto gap = r.on_chunk(1, wire::SnapshotChunk{right, 2, 200, bytes.substr(200, 100)});
  REQUIRE(gap);
  CHECK(gap.value().ack.kind == wire::AckKind::rewind);
  CHECK(gap.value().ack.offset == 100);
  CHECK(gap.value().ack.attempt == 2);
  auto overlap = r.on_chunk(1, wire::SnapshotChunk{right, 3, 50, bytes.substr(50, 100)});
  REQUIRE(overlap);
  CHECK(overlap.value().ack.kind == wire::AckKind::progress);
  CHECK(overlap.value().ack.offset == 150);
  CHECK(r.held(1) == 150);
  auto rest = r.on_chunk(1, wire::SnapshotChunk{right, 3, 150, bytes.substr(150)});
  REQUIRE(rest);
  REQUIRE(rest.value().complete);
  CHECK(*rest.value().complete == encoded);
  CHECK(rest.value().ack.kind == wire::AckKind::done);
}

TEST_CASE("snapshot stream: a stream over max_snapshot_bytes is refused as too large") {
  SnapshotReceiver r(1000);
  wire::SnapshotStreamId id{1, 1, 1, 1001, 0};
  auto out = r.on_chunk(7, wire::SnapshotChunk{id, 1, 0, "x"});
  REQUIRE_FALSE(out);
  CHECK(out.error() == errc::too_large);
  CHECK(out.error().detail.find("member 7 of 1001 bytes, over the limit of 1000") !=
        std::string::npos);
}

TEST_CASE("rate limiter: a burst at once, then the average rate; 0 is unlimited") {
  using clock = RateLimiter::clock;
  const auto t0 = clock::now();
  RateLimiter unlimited(0, 100);
  for (int k = 0; k < 10; ++k) CHECK(unlimited.take(1U << 30U, t0) == clock::duration::zero());

  RateLimiter r(1000, 100);  // 1000 bytes/s, bursts of 100
  CHECK(r.take(100, t0) == clock::duration::zero());
  CHECK(r.take(100, t0) == clock::duration::zero());  // into debt by 100
  const auto wait = r.take(100, t0);
  CHECK(wait > std::chrono::milliseconds(99));
  CHECK(wait <= std::chrono::milliseconds(100));
  CHECK(r.take(100, t0 + std::chrono::milliseconds(100)) == clock::duration::zero());
  // Idle for a minute: the bucket holds one burst, not a minute's worth.
  const auto later = t0 + std::chrono::minutes(1);
  CHECK(r.take(100, later) == clock::duration::zero());
  CHECK(r.take(100, later) == clock::duration::zero());
  CHECK(r.take(100, later) > clock::duration::zero());
}

/// Transports 1 and 2 with snapshot chunks of 64 KiB, a window of 4, the given rate; 1 reaches 2
/// at `port_of_2` (a proxy's, or 2's own when 0).
struct SnapshotPair {
  Station a;
  Station b;
  explicit SnapshotPair(std::uint64_t rate, std::uint64_t max_snapshot_a = std::uint64_t{1} << 30U,
                        std::uint64_t max_snapshot_b = std::uint64_t{1} << 30U)
      : a([&](LogSink& log) { return config(1, log, rate, max_snapshot_a); }),
        b([&](LogSink& log) { return config(2, log, rate, max_snapshot_b); }) {}
  static TransportConfig config(NodeId id, LogSink& log, std::uint64_t rate,
                                std::uint64_t max_snapshot) {
    auto c = config_for(id, log);
    c.snapshot_chunk_bytes = 64U << 10U;
    c.snapshot_window_chunks = 4;
    c.snapshot_rate_bytes_per_second = rate;
    c.max_snapshot_bytes = max_snapshot;
    return c;
  }
  void start(std::uint16_t port_of_2 = 0) {
    REQUIRE(a.t.set_peers(list({{2, port_of_2 != 0 ? port_of_2 : b.t.port()}})));
    REQUIRE(b.t.set_peers(list({{1, a.t.port()}})));
    a.start();
    b.start();
  }
  /// The snapshot messages 2 received.
  [[nodiscard]] std::vector<raft::Message> snapshots_at_b() const {
    std::vector<raft::Message> out;
    for (auto& m : b.inbox.messages())
      if (m.type == raft::MessageType::snapshot) out.push_back(m);
    return out;
  }
};

constexpr std::uint64_t chunk = 64U << 10U;
constexpr std::uint64_t window = 4 * chunk;

TEST_CASE("net: a snapshot streams in chunks, arrives whole, and holds up no other message") {
  // 2 MiB/s for a 3 MiB image: the stream takes about 1.5 s, while a heartbeat and an append
  // sent after it take their own connections.
  SnapshotPair p(2U << 20U);
  p.start();
  const auto m = snapshot_message(1, 2, 3U << 20U);
  p.a.t.send(m);
  p.a.t.send(heartbeat(1, 2, 50));
  p.a.t.send(big_append(1, 2, 1000, 7));
  REQUIRE(eventually([&] { return p.snapshots_at_b().size() == 1; }));
  const auto got = p.b.inbox.messages();
  REQUIRE(got.size() == 3);
  CHECK(got.back().type == raft::MessageType::snapshot);  // the other two did not wait for it
  CHECK(wire::testing::message_diff(p.snapshots_at_b()[0], m) == "");

  const std::uint64_t total = wire::encoded_size(m);
  REQUIRE(eventually([&] { return p.a.counters().snapshots_streamed == 1; }));
  const auto ca = p.a.counters();
  CHECK(ca.snapshot_chunks_sent == (total + chunk - 1) / chunk);
  CHECK(ca.snapshot_bytes_sent == total);
  CHECK(ca.snapshot_resumes == 0);
  CHECK(ca.sent == 3);
  CHECK(p.b.counters().snapshots_received == 1);
  CHECK(p.a.log.contains("streaming the snapshot at index 100"));
  CHECK(p.a.log.contains("arrived whole"));
}

TEST_CASE("net: a snapshot stream cut in the middle resumes from its offset, not from 0") {
  SnapshotPair p(0);
  const auto m = snapshot_message(1, 2, 4U << 20U);
  const std::uint64_t total = wire::encoded_size(m);
  const std::uint64_t cut_at = 2'500'000;

  SUBCASE("the connection is cut") {
    FaultProxy proxy(p.b.t.port(), FaultProxy::Fault::cut, cut_at);
    p.start(proxy.port());
    p.a.t.send(m);
    REQUIRE(eventually([&] { return p.snapshots_at_b().size() == 1; }));
    CHECK(proxy.fired());
  }
  SUBCASE("a byte of a chunk is flipped: the receiver refuses it (frame CRC32C) and closes") {
    FaultProxy proxy(p.b.t.port(), FaultProxy::Fault::flip, cut_at);
    p.start(proxy.port());
    p.a.t.send(m);
    REQUIRE(eventually([&] { return p.snapshots_at_b().size() == 1; }));
    CHECK(proxy.fired());
    CHECK(p.b.counters().malformed_frames == 1);
    CHECK_MESSAGE(p.b.log.contains("payload CRC32C"), p.b.log.all());
  }
  CHECK(wire::testing::message_diff(p.snapshots_at_b()[0], m) == "");
  REQUIRE(eventually([&] { return p.a.counters().snapshots_streamed == 1; }));
  const auto ca = p.a.counters();
  CHECK(ca.snapshot_resumes == 1);
  CHECK_MESSAGE(p.a.log.contains("resuming the snapshot at index 100"), p.a.log.all());
  // From 0 again would be over total + cut_at − window; a resume re-sends at most what was sent
  // and not acknowledged when the connection broke: one window.
  // (No lower bound: the part of a write that reached the receiver before its connection broke
  // is acknowledged and never re-sent, but the failed write is not counted.)
  CHECK_MESSAGE(ca.snapshot_bytes_sent <= total + window,
                ca.snapshot_bytes_sent << " bytes sent for a stream of " << total << "\n"
                                       << p.a.log.all() << p.b.log.all());
  CHECK(p.b.counters().snapshots_received == 1);
  // Delivered once, though its chunks crossed twice.
  CHECK(p.snapshots_at_b().size() == 1);
}

TEST_CASE("net: a snapshot over max_snapshot_bytes is not sent (sender) or refused (receiver)") {
  SUBCASE("the sender's limit") {
    SnapshotPair p(0, 100U << 10U);
    p.start();
    p.a.t.send(snapshot_message(1, 2, 200U << 10U, 100));
    const auto small = snapshot_message(1, 2, 10U << 10U, 101);
    p.a.t.send(small);
    REQUIRE(eventually([&] { return p.snapshots_at_b().size() == 1; }));
    CHECK(p.snapshots_at_b()[0].snapshot->meta.index == 101);
    CHECK(p.a.counters().dropped_unsendable == 1);
    CHECK_MESSAGE(p.a.log.contains("over max_snapshot_bytes 102400"), p.a.log.all());
  }
  SUBCASE("the receiver's limit: it closes the connection, naming the limit") {
    SnapshotPair p(0, std::uint64_t{1} << 30U, 100U << 10U);
    p.start();
    p.a.t.send(snapshot_message(1, 2, 200U << 10U, 100));
    REQUIRE(eventually([&] { return p.b.counters().malformed_frames >= 1; }));
    CHECK_MESSAGE(p.b.log.contains("over the limit of 102400 (max_snapshot_bytes)"), p.b.log.all());
    CHECK(p.snapshots_at_b().empty());
    // The transport goes on: other lanes still deliver.
    p.a.t.send(heartbeat(1, 2, 77));
    CHECK(eventually([&] { return p.b.got(77); }));
  }
}

TEST_CASE("net: a bad ack closes the snapshot lane's connection with the reason; it reconnects") {
  // Member 2 played by the test: it answers the hello, then an ack of an unknown kind.
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor acceptor(io, loopback(0).endpoint());
  Station a(1);
  REQUIRE(a.t.set_peers(list({{2, acceptor.local_endpoint().port()}})));
  a.start();
  a.t.send(snapshot_message(1, 2, 1000));
  boost::asio::ip::tcp::socket peer(io);
  acceptor.accept(peer);
  std::string bad_ack =
      wire::encode_ack({wire::SnapshotStreamId{3, 100, 2, 10, 0}, 1, 0, wire::AckKind::done});
  bad_ack.back() = 9;
  boost::asio::write(
      peer, boost::asio::buffer(hello_frame(2, 1) +
                                wire::encode_frame(wire::FrameKind::snapshot_ack, bad_ack)));
  CHECK_MESSAGE(
      eventually([&] {
        return a.log.contains(
            "snapshot lane): bad snapshot ack from the peer: malformed peer input: snapshot ack: "
            "kind at offset 49: unknown ack kind 9");
      }),
      a.log.all());
  // The stream is not lost: the lane connects again to go on with it.
  CHECK(eventually([&] { return a.counters().reconnects >= 1; }));
  a.t.stop();
}

TEST_CASE("net: bad snapshot stream settings are refused at open(), naming the field") {
  LogSink log;
  const std::pair<std::function<void(TransportConfig&)>, const char*> bad[] = {
      {[](TransportConfig& c) { c.snapshot_chunk_bytes = 0; }, "snapshot_chunk_bytes 0"},
      {[](TransportConfig& c) { c.snapshot_chunk_bytes = c.frame_limits.max_payload; },
       "at most frame_limits.max_payload − 48"},
      {[](TransportConfig& c) { c.snapshot_window_chunks = 0; }, "snapshot_window_chunks 0"},
      {[](TransportConfig& c) { c.max_snapshot_bytes = 0; }, "max_snapshot_bytes 0 must be"},
      {[](TransportConfig& c) { c.max_snapshot_bytes = std::uint64_t{1} << 32U; },
       "below 4 GiB (the wire's 32-bit data length)"},
      {[](TransportConfig& c) {
         c.frame_limits.max_payload = 40;  // below a chunk's own header
         c.batch_bytes = 40;
       },
       "snapshot_chunk_bytes 262144 must be above 0"},
      {[](TransportConfig& c) { c.snapshot_queue.max_messages = 0; }, "snapshot queue"},
  };
  for (const auto& entry : bad) {
    // Named variables, not a structured binding: CAPTURE's lambda cannot capture one (clang 14).
    const auto& tweak = entry.first;
    const char* why = entry.second;
    CAPTURE(why);
    auto c = config_for(1, log);
    tweak(c);
    auto t = AsioTransport::open(c);
    REQUIRE_FALSE(t);
    CHECK(t.error() == errc::invalid_argument);
    CHECK(t.error().detail.find(why) != std::string::npos);
  }
}

}  // namespace
}  // namespace dengine::net
