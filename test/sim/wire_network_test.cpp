// The simulated network carries wire frames (sim/transport.hpp, sim/wire_links.hpp): messages
// arrive as the codec decoded them, damaged frames are refused and never delivered, and a
// refused frame's link reconnects.

#include <doctest/doctest.h>

#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "dengine/raft/message.hpp"
#include "dengine/sim/executor.hpp"
#include "dengine/sim/network.hpp"
#include "dengine/sim/transport.hpp"
#include "dengine/sim/wire_links.hpp"
#include "wire_samples.hpp"

using namespace dengine;
using namespace dengine::sim;
using wire::testing::message_diff;
using wire::testing::random_message;
using wire::testing::sample_messages;

namespace {

/// Two nodes on a SimNetwork: node 2 records what it receives, the tap what it hears of.
struct Wire {
  explicit Wire(NetworkFaults faults, std::uint64_t seed = 1) : net(executor, seed, faults) {
    net.attach(2, [this](raft::Message m) { received.push_back(std::move(m)); });
    NetworkTap tap;
    tap.arrived = [this](const raft::Message& m, std::string_view dropped) {
      if (!dropped.empty()) drops.emplace_back(m.context, std::string(dropped));
    };
    tap.codec_failure = [this](const std::string& what) { failures.push_back(what); };
    net.set_tap(std::move(tap));
  }

  /// Sends `m` from node 1 to node 2.
  void send(raft::Message m) {
    m.from = 1;
    m.to = 2;
    net.deliver(m);
  }

  SimExecutor executor;
  SimNetwork net;
  std::vector<raft::Message> received;
  std::vector<std::pair<std::uint64_t, std::string>> drops;  // context, why
  std::vector<std::string> failures;
};

/// Fixed delay: frames arrive in the order sent.
NetworkFaults in_order() {
  NetworkFaults f;
  f.min_delay = sim_ms(1);
  f.max_delay = sim_ms(1);
  return f;
}

/// One of every message type, then random ones; from 1 to 2, each with its own context.
std::vector<raft::Message> messages_to_send() {
  std::vector<raft::Message> out = sample_messages();
  std::mt19937_64 rng(13);
  for (int i = 0; i < 200; ++i) out.push_back(random_message(rng));
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i].from = 1;
    out[i].to = 2;
    out[i].context = i;
  }
  return out;
}

}  // namespace

TEST_CASE("every message type crosses the simulated network unchanged, as decoded bytes") {
  Wire w(in_order());
  const std::vector<raft::Message> sent = messages_to_send();
  for (const raft::Message& m : sent) w.send(m);
  w.executor.run_until(sim_s(1));
  REQUIRE(w.received.size() == sent.size());
  for (std::size_t i = 0; i < sent.size(); ++i) {
    CAPTURE(i);
    CHECK(message_diff(sent[i], w.received[i]).empty());
    // The node got the decoder's object: a snapshot is a new image built from the bytes.
    if (sent[i].snapshot) CHECK(w.received[i].snapshot.get() != sent[i].snapshot.get());
  }
  CHECK(w.failures.empty());
  CHECK(w.net.stats().frames == sent.size());
  CHECK(w.net.stats().refused == 0);
}

TEST_CASE("a damaged frame is refused and never delivered; its link reconnects") {
  NetworkFaults f = in_order();
  f.corrupt = 1.0;
  Wire w(f);
  const std::vector<raft::Message> sent = messages_to_send();
  for (const raft::Message& m : sent) w.send(m);
  w.executor.run_until(sim_s(1));
  CHECK(w.received.empty());
  CHECK(w.failures.empty());
  CHECK(w.net.net().stats().damaged == sent.size());
  CHECK(w.net.stats().refused == sent.size());
  // Each refusal is traced with the decoder's reason, against the message the sender meant.
  REQUIRE(w.drops.size() == sent.size());
  for (std::size_t i = 0; i < sent.size(); ++i) {
    CHECK(w.drops[i].first == i);
    CHECK(w.drops[i].second.starts_with("damaged in transit, refused: "));
  }

  // The link works again once nothing is damaged: each refusal closed the connection and the
  // next frame opened a new one.
  w.net.net().set_faults(in_order());
  for (const raft::Message& m : sent) w.send(m);
  w.executor.run_until(sim_s(2));
  REQUIRE(w.received.size() == sent.size());
  for (std::size_t i = 0; i < sent.size(); ++i) CHECK(message_diff(sent[i], w.received[i]).empty());
  CHECK(w.failures.empty());
}

TEST_CASE("every single-bit flip of a frame is refused, header or payload") {
  std::vector<raft::Message> samples = sample_messages();
  // The append's 100 000-byte entry would make 800 000 flips: the other types cover the
  // layout (the snapshot message: a snapshot too).
  std::erase_if(samples,
                [](const raft::Message& m) { return m.type == raft::MessageType::append; });
  LinkDecoders links;
  std::uint64_t flips = 0;
  for (const raft::Message& m : samples) {
    CAPTURE(raft::to_string(m.type));
    const WireFrame frame = encode_wire_frame(m);
    const std::uint64_t bits = 8 * frame.bytes->size();
    for (std::uint64_t bit = 0; bit < bits; ++bit) {
      CAPTURE(bit);
      // A draw past the frame's size wraps onto one of its bits.
      const Arrived a = links.take(1, 2, frame, bit + (bit % 3) * bits);
      ++flips;
      REQUIRE_FALSE(a.message);
      REQUIRE(a.codec_failure.empty());
      REQUIRE_FALSE(a.refused.empty());
      CHECK(links.open() == 0);  // the refusal closed the connection
      // The next intact frame opens a new one and decodes.
      const Arrived ok = links.take(1, 2, frame, std::nullopt);
      REQUIRE(ok.message);
      REQUIRE(ok.codec_failure.empty());
      REQUIRE(message_diff(m, *ok.message).empty());
    }
  }
  CHECK(flips > 10000);
}

TEST_CASE("an intact frame the decoder refuses is a codec failure, not a refusal") {
  LinkDecoders links;
  const Arrived a =
      links.take(1, 2, WireFrame{std::make_shared<const std::string>("GET /")}, std::nullopt);
  CHECK_FALSE(a.message);
  CHECK(a.refused.empty());
  CHECK(a.codec_failure.find("n1 -> n2: an intact frame was refused") != std::string::npos);
  // A frame whose messages count is not one: the simulated transport sends one per frame.
  const std::vector<raft::Message> two = {sample_messages()[2], sample_messages()[3]};
  const WireFrame batch{std::make_shared<const std::string>(
      wire::encode_frame(wire::FrameKind::messages, wire::encode_messages(two)))};
  const Arrived b = links.take(1, 2, batch, std::nullopt);
  CHECK_FALSE(b.message);
  CHECK(b.codec_failure.find("a batch of 2 messages") != std::string::npos);
}

TEST_CASE("one frame per send: a duplicate copy shares its bytes") {
  VirtualClock clock;
  NetworkFaults f;
  f.duplicate = 1.0;
  Network<WireFrame> net(clock, 5, f);
  const WireFrame frame = encode_wire_frame(sample_messages()[2]);
  CHECK(net.send(1, 2, frame).copies == 2);
  std::vector<const std::string*> seen;
  while (net.has_in_flight()) {
    clock.advance_to(net.next_delivery_time());
    while (auto a = net.pop_due()) seen.push_back(a->envelope.message.bytes.get());
  }
  REQUIRE(seen.size() == 2);
  CHECK(seen[0] == frame.bytes.get());
  CHECK(seen[1] == frame.bytes.get());
}

TEST_CASE("the simulated network with damage is a pure function of its seed") {
  // What node 2 receives and what is refused, in order, with the time of each.
  auto run = [](std::uint64_t seed) {
    NetworkFaults f;
    f.drop = 0.1;
    f.duplicate = 0.2;
    f.max_delay = sim_ms(20);
    f.corrupt = 0.2;
    Wire w(f, seed);
    for (const raft::Message& m : messages_to_send()) w.send(m);
    w.executor.run_until(sim_s(1));
    std::vector<std::string> events;
    for (const raft::Message& m : w.received) events.push_back("got " + std::to_string(m.context));
    for (const auto& [context, why] : w.drops)
      events.push_back("lost " + std::to_string(context) + ": " + why);
    CHECK(w.failures.empty());
    return events;
  };
  const auto a = run(7);
  CHECK(a == run(7));
  CHECK(a != run(8));
}
