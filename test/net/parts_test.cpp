// The transport's parts on their own: address parsing, the back-off, the bounded queue, and
// which lane each message type takes.

#include <doctest/doctest.h>

#include <set>

#include "dengine/net/backoff.hpp"
#include "dengine/net/peer_addresses.hpp"
#include "dengine/net/send_queue.hpp"
#include "wire_samples.hpp"

namespace dengine::net {
namespace {

TEST_CASE("net: parse_address takes IPv4 host:port and names what is wrong") {
  auto a = parse_address("127.0.0.1:2380");
  REQUIRE(a);
  CHECK(a.value() == PeerAddress{"127.0.0.1", 2380});
  CHECK(a.value().to_string() == "127.0.0.1:2380");
  CHECK(parse_address("127.0.0.1:0", true));

  const std::pair<const char*, const char*> bad[] = {
      {"127.0.0.1", "expected host:port"},     {":80", "expected host:port"},
      {"127.0.0.1:", "expected host:port"},    {"localhost:80", "not an IPv4 address"},
      {"127.0.0.1:65536", "not a number"},     {"127.0.0.1:8x", "not a number"},
      {"127.0.0.1:-1", "not a number"},        {"127.0.0.1:0", "port 0"},
      {"300.0.0.1:80", "not an IPv4 address"},
  };
  for (const auto& entry : bad) {
    // Named variables, not a structured binding: CAPTURE's lambda cannot capture one (clang 14).
    const char* text = entry.first;
    const char* why = entry.second;
    CAPTURE(text);
    auto r = parse_address(text);
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::invalid_argument);
    CHECK(r.error().detail.find(why) != std::string::npos);
    CHECK(r.error().detail.find(text) != std::string::npos);
  }

  PeerAddresses peers;
  CHECK(peers.set(3, "127.0.0.1:3"));
  CHECK(peers.set(1, "127.0.0.1:1"));
  CHECK_FALSE(peers.set(0, "127.0.0.1:9"));
  CHECK_FALSE(peers.set(4, "nowhere"));
  CHECK(peers.all().size() == 2);
  CHECK(peers.all().begin()->first == 1);
  REQUIRE(peers.find(3) != nullptr);
  CHECK(peers.find(3)->port == 3);
  CHECK(peers.find(4) == nullptr);
}

TEST_CASE("net: back-off grows to its bound with jitter, resets, and follows its seed") {
  const BackoffConfig cfg{std::chrono::milliseconds(10), std::chrono::milliseconds(200)};
  Backoff b(cfg, 7);
  std::vector<std::int64_t> waits;
  waits.reserve(12);
  for (int k = 0; k < 12; ++k) waits.push_back(b.next().count());
  // The k-th wait is in [d/2, d], d = min(10 * 2^k, 200).
  std::int64_t d = 10;
  for (auto w : waits) {
    CAPTURE(w);
    CHECK(w >= d / 2);
    CHECK(w <= d);
    d = std::min<std::int64_t>(d * 2, 200);
  }
  CHECK(waits.back() >= 100);  // reached the bound's range
  // Jitter: the waits at the bound are not all equal.
  CHECK(std::set<std::int64_t>(waits.begin() + 6, waits.end()).size() > 1);

  b.reset();
  CHECK(b.failures() == 0);
  CHECK(b.next().count() <= 10);

  Backoff same(cfg, 7);
  Backoff other(cfg, 8);
  std::vector<std::int64_t> again;
  std::vector<std::int64_t> different;
  for (int k = 0; k < 12; ++k) {
    again.push_back(same.next().count());
    different.push_back(other.next().count());
  }
  CHECK(again == waits);
  CHECK(different != waits);

  CHECK_FALSE(BackoffConfig{std::chrono::milliseconds(0), std::chrono::milliseconds(5)}.validate());
  CHECK_FALSE(BackoffConfig{std::chrono::milliseconds(9), std::chrono::milliseconds(5)}.validate());
}

TEST_CASE("net: the send queue holds its count and byte bounds and batches by bytes") {
  SendQueue q(QueueLimits{3, 1000});
  auto msg = [](std::size_t data) {
    raft::Message m;
    if (data > 0) m.entries.push_back(Entry{1, 1, EntryType::normal, std::string(data, 'x')});
    return m;
  };
  const std::size_t small = wire::encoded_size(msg(0));  // 70
  for (int k = 0; k < 3; ++k) {
    auto m = msg(0);
    CHECK(q.push(m) == Pushed::queued);
  }
  auto fourth = msg(0);
  CHECK(q.push(fourth) == Pushed::full);  // count bound
  CHECK(q.depth() == std::pair<std::size_t, std::size_t>{3, 3 * small});

  std::vector<raft::Message> out;
  CHECK(q.take(out, 2 * small) == 2 * small);  // the byte budget of a write
  CHECK(out.size() == 2);
  out.clear();
  CHECK(q.take(out, 1) == small);  // at least one, even over the budget
  CHECK(q.empty());

  auto big = msg(1000 - small - 21 + 1);  // one byte over the byte bound
  CHECK(q.push(big) == Pushed::full);
  CHECK(big.entries.size() == 1);  // not moved from
  auto fits = msg(1000 - small - 21);
  CHECK(q.push(fits) == Pushed::queued);
  auto more = msg(0);
  CHECK(q.push(more) == Pushed::full);  // byte bound
  CHECK(q.depth() == std::pair<std::size_t, std::size_t>{1, 1000});
}

TEST_CASE("net: a closed send queue drops what it held and refuses every later push") {
  SendQueue q(QueueLimits{3, 1000});
  for (int k = 0; k < 2; ++k) {
    raft::Message m;
    REQUIRE(q.push(m) == Pushed::queued);
  }
  CHECK(q.close() == 2);
  CHECK(q.depth() == std::pair<std::size_t, std::size_t>{0, 0});
  raft::Message late;
  late.entries.push_back(Entry{1, 1, EntryType::normal, "kept"});
  CHECK(q.push(late) == Pushed::closed);  // even though it would fit
  CHECK(late.entries.size() == 1);        // not moved from: the caller may send it elsewhere
  CHECK(q.close() == 0);
}

TEST_CASE(
    "net: snapshot lane for snapshots, bulk for appends with entries and forwarded proposals, "
    "control for the rest") {
  for (auto m : wire::testing::sample_messages()) {
    CAPTURE(raft::to_string(m.type));
    // A forwarded proposal's answer goes with the appends: ahead of the one carrying its entry.
    const bool bulk = m.type == raft::MessageType::append || m.type == raft::MessageType::propose ||
                      m.type == raft::MessageType::propose_response;
    const Lane want = m.type == raft::MessageType::snapshot ? Lane::snapshot
                      : bulk                                ? Lane::bulk
                                                            : Lane::control;
    CHECK(lane_of(m) == want);
  }
  raft::Message empty_append;  // a probe or commit update: small and urgent
  CHECK(lane_of(empty_append) == Lane::control);
}

}  // namespace
}  // namespace dengine::net
