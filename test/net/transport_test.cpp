// AsioTransport between real sockets on 127.0.0.1: every message type both ways, a peer that is
// down (bounded queues, drops counted, reconnect once it is up), the control lane not starved
// by a bulk backlog, and stop() with a peer that never answers.

#include <doctest/doctest.h>

#include <poll.h>

#include <map>

#include "net_harness.hpp"
#include "wire_samples.hpp"

namespace dengine::net {
namespace {

using namespace testing;

/// Transports for members 1 and 2 that know each other's address (not started).
struct Pair {
  LogSink log1;
  LogSink log2;
  AsioTransport a;
  AsioTransport b;

  explicit Pair(const std::function<void(TransportConfig&)>& tweak = {})
      : a(open_with(1, log1, tweak)), b(open_with(2, log2, tweak)) {
    PeerAddresses pa;
    pa.set(2, loopback(b.port()));
    PeerAddresses pb;
    pb.set(1, loopback(a.port()));
    REQUIRE(a.set_peers(pa));
    REQUIRE(b.set_peers(pb));
  }
  static AsioTransport open_with(NodeId id, LogSink& log,
                                 const std::function<void(TransportConfig&)>& tweak) {
    auto c = config_for(id, log);
    if (tweak) tweak(c);
    return open_transport(std::move(c));
  }
};

TEST_CASE("net: two transports exchange every message type both ways, every field intact") {
  Pair p;
  Inbox in1;
  Inbox in2;
  REQUIRE(p.a.start(in1.handler()));
  REQUIRE(p.b.start(in2.handler()));

  auto samples = wire::testing::sample_messages();
  for (auto [from, to, transport] : {std::tuple{1, 2, &p.a}, std::tuple{2, 1, &p.b}}) {
    for (auto m : samples) {
      m.from = from;
      m.to = to;
      transport->send(std::move(m));
    }
  }
  REQUIRE(in1.wait_for(samples.size()));
  REQUIRE(in2.wait_for(samples.size()));
  for (auto [inbox, from, to] : {std::tuple{&in1, 2, 1}, std::tuple{&in2, 1, 2}}) {
    // The two lanes may interleave; each type occurs once, so match by type.
    std::map<raft::MessageType, raft::Message> got;
    for (auto& m : inbox->messages()) CHECK(got.emplace(m.type, m).second);
    CHECK(got.size() == samples.size());
    for (auto want : samples) {
      want.from = from;
      want.to = to;
      CAPTURE(raft::to_string(want.type));
      REQUIRE(got.contains(want.type));
      CHECK(wire::testing::message_diff(got[want.type], want) == "");
    }
  }
  // sent counts a write once it completed, which A may learn after B read the bytes.
  CHECK(eventually([&] { return p.a.metrics()->read().sent == samples.size(); }));
  const auto c1 = p.a.metrics()->read();
  CHECK(c1.received == samples.size());
  CHECK(c1.dropped_queue_full == 0);
  CHECK(p.b.metrics()->read().accepted >= 1);
  p.a.stop();
  p.b.stop();
  p.a.stop();  // idempotent
}

TEST_CASE("net: a peer that is down: bounded queues, drops counted, then a reconnect") {
  Pair p([](TransportConfig& c) {
    c.control_queue = {10, 1U << 20U};
    c.bulk_queue = {100, 1U << 20U};
  });
  Inbox in1;
  Inbox in2;
  REQUIRE(p.a.start(in1.handler()));
  // Member 2 is bound but not listening yet: connections to it are refused, as to a dead node.
  for (int k = 0; k < 50; ++k)
    p.a.send(message(raft::MessageType::heartbeat, 1, 2, static_cast<Term>(k)));
  for (LogIndex i = 1; i <= 10; ++i) p.a.send(big_append(1, 2, 300U << 10U, i));

  auto [count, bytes] = p.a.queued(2, Lane::control);
  CHECK(count == 10);  // the count bound
  auto [bulk_count, bulk_bytes] = p.a.queued(2, Lane::bulk);
  CHECK(bulk_bytes <= (1U << 20U));  // the byte bound: three 300 KiB appends fit, not four
  CHECK(bulk_count == 3);
  CHECK(p.a.metrics()->read().dropped_queue_full == 40 + 7);
  // It keeps trying (with back-off) while messages wait.
  CHECK(eventually([&] { return p.a.metrics()->read().reconnects >= 2; }));
  CHECK(p.log1.contains("connect failed"));

  REQUIRE(p.b.start(in2.handler()));
  REQUIRE(in2.wait_for(13));  // what stayed queued arrives
  // ... batched: all that waited on a lane goes in one write (the three appends fit the 1 MiB
  // write budget), one for the control lane and one for the bulk lane.
  CHECK(eventually([&] { return p.a.metrics()->read().sent == 13; }));
  CHECK(p.a.metrics()->read().writes == 2);
  p.a.send(message(raft::MessageType::heartbeat, 1, 2, 1000));
  REQUIRE(in2.wait_for(14));
  std::size_t appends = 0;
  for (const auto& m : in2.messages()) appends += m.type == raft::MessageType::append ? 1 : 0;
  CHECK(appends == 3);
  CHECK(in2.messages().back().term == 1000);
  CHECK(p.a.queued(2, Lane::control).first == 0);
}

TEST_CASE("net: a message over the frame limit is dropped and logged; the lane goes on") {
  Pair p([](TransportConfig& c) {
    c.frame_limits.max_payload = 1U << 20U;
    c.batch_bytes = 512U << 10U;
  });
  Inbox in1;
  Inbox in2;
  REQUIRE(p.a.start(in1.handler()));
  REQUIRE(p.b.start(in2.handler()));
  p.a.send(big_append(1, 2, 2U << 20U, 1));  // over the limit: B would refuse the frame
  for (LogIndex i = 2; i <= 6; ++i) p.a.send(big_append(1, 2, 300U << 10U, i));  // split
  REQUIRE(in2.wait_for(5));
  for (const auto& m : in2.messages()) CHECK(m.entries.at(0).data.size() == (300U << 10U));
  CHECK(p.a.metrics()->read().dropped_unsendable == 1);
  CHECK(p.b.metrics()->read().malformed_frames == 0);
  CHECK_MESSAGE(p.log1.contains("over the frame limit of 1048576"), p.log1.all());
}

/// Member 2 played by the test: a listening socket whose connections it reads by hand.
class RawPeer {
 public:
  explicit RawPeer(int rcvbuf) : acceptor_(io_) {
    acceptor_.open(boost::asio::ip::tcp::v4());
    // A small receive buffer (inherited by accepted sockets) keeps the unread backlog on the
    // sender's side, where the test wants it.
    acceptor_.set_option(boost::asio::socket_base::receive_buffer_size(rcvbuf));
    acceptor_.bind(loopback(0).endpoint());
    acceptor_.listen();
    acceptor_.non_blocking(true);
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }

  /// Accepts and reads for up to 20 s until `done()`, reading at most `cap` bytes from any one
  /// connection; every message decoded goes to `on_message`.
  template <class Done, class OnMessage>
  void read_until(std::size_t cap, Done done, OnMessage on_message) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      std::vector<pollfd> fds{{acceptor_.native_handle(), POLLIN, 0}};
      for (auto& c : conns_) fds.push_back({c->socket.native_handle(), POLLIN, 0});
      ::poll(fds.data(), fds.size(), 50);
      if ((fds[0].revents & POLLIN) != 0) {
        boost::system::error_code ec;
        boost::asio::ip::tcp::socket s(io_);
        acceptor_.accept(s, ec);
        if (!ec) conns_.push_back(std::make_unique<Conn>(std::move(s)));
      }
      for (std::size_t k = 1; k < fds.size(); ++k) {
        Conn& c = *conns_[k - 1];
        if ((fds[k].revents & POLLIN) == 0 || c.read >= cap) continue;
        std::array<char, 64 * 1024> buf{};
        boost::system::error_code ec;
        const std::size_t n = c.socket.read_some(
            boost::asio::buffer(buf.data(), std::min(buf.size(), cap - c.read)), ec);
        if (ec) continue;
        c.read += n;
        c.decoder.feed(std::string_view(buf.data(), n));
        for (;;) {
          auto f = c.decoder.next();
          REQUIRE(f);
          if (!f.value()) break;
          if (f.value()->kind != wire::FrameKind::messages) continue;  // the hello
          auto batch = wire::decode_messages(f.value()->payload);
          REQUIRE(batch);
          for (auto& m : batch.value()) on_message(m);
        }
      }
    }
  }

 private:
  struct Conn {
    explicit Conn(boost::asio::ip::tcp::socket s) : socket(std::move(s)) {}
    boost::asio::ip::tcp::socket socket;
    wire::FrameDecoder decoder;
    std::size_t read = 0;
  };
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::vector<std::unique_ptr<Conn>> conns_;
};

TEST_CASE("net: a heartbeat is not stuck behind a bulk backlog the peer is slow to read") {
  // The peer reads at most 2 MiB per connection until the heartbeat shows up: the appends
  // (24 MiB) cannot all pass, so a heartbeat queued behind them would never be seen.
  constexpr std::size_t appends = 24;
  RawPeer peer(64 << 10);
  LogSink log;
  auto c = config_for(1, log);
  c.bulk_queue = {1024, 64U << 20U};
  c.peers.set(2, loopback(peer.port()));
  auto a = open_transport(std::move(c));
  Inbox in;
  REQUIRE(a.start(in.handler()));
  for (LogIndex i = 1; i <= appends; ++i) a.send(big_append(1, 2, 1U << 20U, i));
  a.send(message(raft::MessageType::heartbeat, 1, 2, 77));

  std::size_t appends_seen = 0;
  bool heartbeat_seen = false;
  auto on_message = [&](const raft::Message& m) {
    if (m.type == raft::MessageType::append) ++appends_seen;
    if (m.type == raft::MessageType::heartbeat && m.term == 77) heartbeat_seen = true;
  };
  peer.read_until(
      2U << 20U, [&] { return heartbeat_seen; }, on_message);
  CHECK_MESSAGE(heartbeat_seen, "the heartbeat did not overtake the bulk backlog");
  CHECK(appends_seen < appends);
  // Then the backlog drains, whole.
  peer.read_until(
      std::size_t(1) << 40U, [&] { return appends_seen == appends; }, on_message);
  CHECK(appends_seen == appends);
  a.stop();
}

TEST_CASE("net: stop() returns with a peer that never answers") {
  // A listening socket nobody accepts from: the connection completes in the kernel, the hello
  // is never answered, and the writes stall once the buffers fill.
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor silent(io, loopback(0).endpoint());
  LogSink log;
  auto c = config_for(1, log);
  c.peers.set(2, loopback(silent.local_endpoint().port()));
  auto a = open_transport(std::move(c));
  Inbox in;
  REQUIRE(a.start(in.handler()));
  for (LogIndex i = 1; i <= 16; ++i) a.send(big_append(1, 2, 1U << 20U, i));
  a.send(message(raft::MessageType::vote, 1, 2));
  // The writer has taken some of the backlog: a write is outstanding on the dead connection.
  CHECK(eventually([&] { return a.queued(2, Lane::bulk).first < 16; }));
  a.stop();  // returns (the suite's timeout would catch a hang)
  // ... because closing the sockets ended every operation, not by the 5 s safety net.
  CHECK_MESSAGE(!log.contains("still had work"), log.all());
  a.send(message(raft::MessageType::vote, 1, 2));  // after stop: dropped, no crash
  CHECK(in.size() == 0);
}

}  // namespace
}  // namespace dengine::net
