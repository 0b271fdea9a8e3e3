// wire/handshake.hpp: the hello round-trips in its fixed layout, and check_hello refuses a
// peer of another cluster, an unknown member or no common wire version with a clear reason.

#include "dengine/wire/handshake.hpp"

#include <doctest/doctest.h>

#include <string>

#include "dengine/storage/byte_codec.hpp"
#include "dengine/wire/frame.hpp"

namespace {

using namespace dengine;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

const wire::Hello sample{0xC1C2C3C4C5C6C7C8, 2, 1, wire::VersionRange{1, 3}};

TEST_CASE("wire handshake: the hello round-trips in its 26-byte layout") {
  const std::string b = wire::encode_hello(sample);
  REQUIRE(b.size() == wire::hello_size);
  REQUIRE(b.size() == 26);
  CHECK(bytes::get_le64(b.data()) == sample.cluster_id);
  CHECK(bytes::get_le64(b.data() + 8) == 2);
  CHECK(bytes::get_le64(b.data() + 16) == 1);
  CHECK(b[24] == 1);
  CHECK(b[25] == 3);
  auto back = wire::decode_hello(b);
  REQUIRE(back);
  CHECK(back.value() == sample);
}

TEST_CASE("wire handshake: a truncated, overlong or inverted-range hello is malformed") {
  const std::string b = wire::encode_hello(sample);
  for (std::size_t cut = 0; cut < b.size(); ++cut) {
    auto r = wire::decode_hello(b.substr(0, cut));
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::malformed);
  }
  CHECK_FALSE(wire::decode_hello(b + 'x'));
  std::string inverted = b;
  inverted[24] = 4;  // lowest 4 > highest 3
  auto r = wire::decode_hello(inverted);
  REQUIRE_FALSE(r);
  CHECK(contains(r.error().detail, "lowest version 4 above highest 3"));
}

TEST_CASE("wire handshake: check_hello agrees on the highest common version") {
  const Membership members{{1, 2, 3}, {7}};
  auto v = wire::check_hello(sample, sample.cluster_id, 1, members, wire::VersionRange{1, 2});
  REQUIRE(v);
  CHECK(v.value() == 2);
  // This build with itself: version 1.
  auto same = wire::check_hello(wire::Hello{5, 3, 1}, 5, 1, members);
  REQUIRE(same);
  CHECK(same.value() == wire::wire_version);
  // A learner may connect (it receives the log).
  CHECK(wire::check_hello(wire::Hello{5, 7, 1}, 5, 1, members));
}

TEST_CASE("wire handshake: check_hello refuses with the reason, naming both sides") {
  const Membership members{{1, 2, 3}, {7}};
  auto other_cluster = wire::check_hello(wire::Hello{6, 2, 1}, 5, 1, members);
  REQUIRE_FALSE(other_cluster);
  CHECK(other_cluster.error() == errc::invalid_argument);
  CHECK(contains(other_cluster.error().detail, "member 2 of cluster 6"));
  CHECK(contains(other_cluster.error().detail, "is in cluster 5"));

  auto misaddressed = wire::check_hello(wire::Hello{5, 2, 3}, 5, 1, members);
  REQUIRE_FALSE(misaddressed);
  CHECK(misaddressed.error() == errc::invalid_argument);
  CHECK(contains(misaddressed.error().detail, "meant for member 3, this node is member 1"));

  auto self = wire::check_hello(wire::Hello{5, 1, 1}, 5, 1, members);
  REQUIRE_FALSE(self);
  CHECK(contains(self.error().detail, "this node's own id"));

  auto stranger = wire::check_hello(wire::Hello{5, 9, 1}, 5, 1, members);
  REQUIRE_FALSE(stranger);
  CHECK(stranger.error() == errc::not_found);
  CHECK(contains(stranger.error().detail, "member 9: not a member of cluster 5"));
  CHECK(contains(stranger.error().detail, "(members: 1, 2, 3, 7)"));

  for (auto theirs : {wire::VersionRange{2, 3}, wire::VersionRange{0, 0}}) {
    auto r = wire::check_hello(wire::Hello{5, 2, 1, theirs}, 5, 1, members);
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::incompatible_version);
    CHECK(contains(r.error().detail, "the peer speaks " + theirs.to_string()));
    CHECK(contains(r.error().detail, "this node speaks 1..1"));
  }
}

TEST_CASE("wire handshake: a future version's hello frame still reaches check_hello") {
  // A peer that speaks only versions 4..5 writes its hello frame at version 5: the frame and
  // the hello are read, and the refusal names both version ranges.
  wire::FrameDecoder d;
  d.feed(wire::encode_frame(wire::FrameKind::hello,
                            wire::encode_hello(wire::Hello{5, 2, 1, {4, 5}}), 5));
  auto frame = d.next();
  REQUIRE(frame);
  REQUIRE(frame.value());
  auto hello = wire::decode_hello(frame.value()->payload);
  REQUIRE(hello);
  auto r = wire::check_hello(hello.value(), 5, 1, Membership{{1, 2}, {}});
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::incompatible_version);
  CHECK(contains(r.error().detail, "the peer speaks 4..5, this node speaks 1..1"));
}

}  // namespace
