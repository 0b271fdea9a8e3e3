// What a transport refuses: hellos of another cluster or from a stranger that gives no usable
// address, and bytes that are
// not the protocol (garbage, a truncated frame, an oversized length, a bad CRC, a bad payload,
// a wrong version, a bad snapshot chunk, a whole snapshot stream that holds something else than
// a snapshot from its sender, an ack sent the wrong way). Each closes that connection with a logged
// reason and a counter; the transport goes on serving its peers.

#include <doctest/doctest.h>

#include "dengine/storage/crc32c.hpp"
#include "dengine/wire/snapshot_stream.hpp"
#include "net_harness.hpp"
#include "wire_samples.hpp"

namespace dengine::net {
namespace {

using namespace testing;

/// Member 2, started, accepting member 1 (at a port nobody listens on: it only receives here)
/// and member 1's messages, with a 1 MiB frame limit.
struct Receiver {
  LogSink log;
  Inbox inbox;
  AsioTransport t;

  Receiver() : t(open_transport(make())) { REQUIRE(t.start(inbox.handler())); }
  TransportConfig make() {
    auto c = config_for(2, log);
    c.peers.set(1, loopback(1));
    c.frame_limits.max_payload = 1U << 20U;
    c.batch_bytes = 1U << 20U;
    return c;
  }
  [[nodiscard]] TransportCounters counters() const { return t.metrics()->read(); }
};

/// A transport for member `self` of `cluster` that knows member 2 at `port`.
AsioTransport sender(NodeId self, std::uint64_t cluster, std::uint16_t port, LogSink& log) {
  auto c = config_for(self, log);
  c.cluster_id = cluster;
  c.peers.set(2, loopback(port));
  return open_transport(std::move(c));
}

TEST_CASE("net: a hello of another cluster or from an addressless stranger is refused") {
  Receiver r;
  Inbox unused;

  LogSink other_log;
  auto other_cluster = sender(1, test_cluster + 1, r.t.port(), other_log);
  REQUIRE(other_cluster.start(unused.handler()));
  other_cluster.send(message(raft::MessageType::vote, 1, 2, 11));
  CHECK(eventually([&] { return r.counters().refused_hellos == 1; }));
  CHECK_MESSAGE(r.log.contains("of cluster " + std::to_string(test_cluster + 1)), r.log.all());
  // The refused side sees its connection closed before any hello came back, and says so.
  CHECK(eventually([&] { return other_cluster.metrics()->read().peer_refusals >= 1; }));
  CHECK_MESSAGE(other_log.contains("before answering the hello"), other_log.all());
  other_cluster.stop();

  // A stranger (neither a member nor removed) is answered only at the address its hello gives:
  // without one, or with one that does not parse, it is refused, and says why.
  for (const std::string address : {"", "nowhere:1"}) {
    RawClient raw(r.t.port());
    raw.send(hello_frame(7, 2, test_cluster, address) +
             wire::encode_frame(wire::FrameKind::messages,
                                wire::encode_messages(
                                    std::vector{message(raft::MessageType::pre_vote, 7, 2, 12)})));
    CHECK(raw.wait_closed());
  }
  CHECK(eventually([&] { return r.counters().refused_hellos == 3; }));
  CHECK_MESSAGE(r.log.contains("hello from member 7: not a member of cluster " +
                               std::to_string(test_cluster) +
                               " as this node (member 2) knows it, and its hello gives no address"),
                r.log.all());
  CHECK_MESSAGE(r.log.contains("the address it gives is not usable: peer address \"nowhere:1\""),
                r.log.all());

  // The member that belongs is served; nothing of the refused three got through.
  LogSink member_log;
  auto member = sender(1, test_cluster, r.t.port(), member_log);
  REQUIRE(member.start(unused.handler()));
  member.send(message(raft::MessageType::heartbeat, 1, 2, 13));
  REQUIRE(r.inbox.wait_for(1));
  CHECK(r.inbox.size() == 1);
  CHECK(r.inbox.messages().front().term == 13);
  CHECK(r.counters().received == 1);
  CHECK(r.counters().refused_hellos == 3);
  member.stop();
}

/// A messages frame of `batch`, as a peer writes it.
std::string messages_frame(const std::vector<raft::Message>& batch,
                           std::uint8_t version = wire::wire_version) {
  return wire::encode_frame(wire::FrameKind::messages, wire::encode_messages(batch), version);
}

TEST_CASE("net: bad bytes close that connection with a reason; the transport goes on") {
  Receiver r;
  const auto good = messages_frame({message(raft::MessageType::heartbeat, 1, 2, 5)});
  std::string bad_crc = good;
  bad_crc.back() = static_cast<char>(bad_crc.back() ^ 0x01);
  // A header announcing one byte over the receiver's limit (no payload follows).
  std::string oversized = good.substr(0, wire::frame_header_size);
  std::string length;
  bytes::put_le32(length, (1U << 20U) + 1);
  oversized.replace(4, 4, length);
  auto payload = wire::encode_messages(std::vector{message(raft::MessageType::heartbeat, 1, 2)});
  payload.pop_back();  // a message cut short, in a frame whose CRC is right
  const auto cut_message = wire::encode_frame(wire::FrameKind::messages, payload);
  const auto hello = hello_frame(1, 2);
  // A whole snapshot stream in one chunk, its checksum right, carrying `m`.
  auto stream_of = [](const raft::Message& m) {
    const std::string bytes = wire::encode_message(m);
    const wire::SnapshotStreamId id{m.term, 7, 1, bytes.size(), crc32c::value(bytes)};
    return wire::encode_frame(wire::FrameKind::snapshot_chunk,
                              wire::encode_chunk({id, 1, 0, bytes}));
  };
  auto foreign_snapshot = message(raft::MessageType::snapshot, 3, 2);
  foreign_snapshot.snapshot = wire::testing::sample_snapshot("image");
  const wire::SnapshotStreamId some_stream{1, 7, 1, 100, 0};

  struct Case {
    const char* name;
    std::string bytes;
    bool close_after;  // end our side (for a frame cut short)
    const char* logged;
  };
  const Case cases[] = {
      {"garbage", "GET / HTTP/1.1\r\n\r\n", false, "bad magic"},
      {"messages before the hello", good, false, "messages frame before the hello"},
      {"truncated frame", hello + good.substr(0, good.size() - 3), true,
       "closed inside the frame at stream offset 40"},
      {"oversized length", hello + oversized, false, "over the limit of 1048576"},
      {"bad CRC", hello + bad_crc, false, "payload CRC32C"},
      {"truncated message", hello + cut_message, false, "message batch"},
      {"wrong version", hello + messages_frame({message(raft::MessageType::vote, 1, 2)}, 9), false,
       "the peer writes wire version 9"},
      {"false sender", hello + messages_frame({message(raft::MessageType::vote, 3, 2)}), false,
       "a vote message from 3 to 2 on the connection of member 1"},
      {"second hello", hello + hello, false, "a second hello frame"},
      {"chunk without data",
       hello + wire::encode_frame(wire::FrameKind::snapshot_chunk,
                                  wire::encode_chunk({some_stream, 1, 0, ""})),
       false, "snapshot chunk: data at offset 48: a chunk without data"},
      {"stream of a vote", hello + stream_of(message(raft::MessageType::vote, 1, 2)), false,
       "holds a vote message, not a snapshot"},
      {"stream of another sender's snapshot", hello + stream_of(foreign_snapshot), false,
       "holds a snapshot message from 3 to 2 on the connection of member 1"},
      {"ack sent to the accepting side",
       hello + wire::encode_frame(wire::FrameKind::snapshot_ack,
                                  wire::encode_ack({some_stream, 1, 0, wire::AckKind::done})),
       false, "a snapshot_ack frame, which only the accepting side sends"},
  };
  std::uint64_t closed = 0;
  for (const auto& c : cases) {
    const std::string name = c.name;
    CAPTURE(name);
    RawClient raw(r.t.port());
    raw.send(c.bytes);
    if (c.close_after) raw.shutdown_send();
    CHECK(raw.wait_closed());
    ++closed;
    CHECK(eventually([&] { return r.counters().malformed_frames == closed; }));
    CHECK_MESSAGE(r.log.contains(c.logged), r.log.all());
  }
  CHECK(r.inbox.size() == 0);

  // A well-behaved connection is still served, by the same transport.
  RawClient raw(r.t.port());
  raw.send(hello + good);
  REQUIRE(r.inbox.wait_for(1));
  CHECK(r.inbox.messages().front().term == 5);
}

}  // namespace
}  // namespace dengine::net
