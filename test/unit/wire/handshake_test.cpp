// wire/handshake.hpp: the hello round-trips in its layout (address included), a malformed one
// names its field, and check_hello refuses a peer of another cluster, a removed member, a
// stranger without a usable address or no common wire version with a clear reason — and
// accepts a stranger that gives its address.

#include "dengine/wire/handshake.hpp"

#include <doctest/doctest.h>

#include <string>

#include "dengine/storage/byte_codec.hpp"
#include "dengine/storage/member_addresses_codec.hpp"
#include "dengine/wire/frame.hpp"

namespace {

using namespace dengine;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

const wire::Hello sample{0xC1C2C3C4C5C6C7C8, 2, 1, wire::VersionRange{1, 3}, "10.0.0.2:2380"};

/// Member 1 of cluster 5 whose members are 1, 2, 3 and learner 7; 4 was removed. Addresses are
/// usable when they contain a colon (the transport parses them for real).
wire::HelloCheck node1(wire::VersionRange ours = wire::supported_versions) {
  const Membership members{{1, 2, 3}, {7}};
  return wire::HelloCheck{5, 1,
                          [members](NodeId id) {
                            if (members.contains(id)) return wire::Standing::member;
                            return id == 4 ? wire::Standing::removed : wire::Standing::unknown;
                          },
                          [](std::string_view address) -> result<void> {
                            if (address.find(':') == std::string_view::npos)
                              return error(errc::invalid_argument,
                                           "no port in \"" + std::string(address) + "\"");
                            return success();
                          },
                          ours};
}

TEST_CASE("wire handshake: the hello round-trips in its layout, address last") {
  const std::string b = wire::encode_hello(sample);
  REQUIRE(b.size() == wire::hello_size + sample.address.size());
  REQUIRE(b.size() == 28 + 13);
  CHECK(bytes::get_le64(b.data()) == sample.cluster_id);
  CHECK(bytes::get_le64(b.data() + 8) == 2);
  CHECK(bytes::get_le64(b.data() + 16) == 1);
  CHECK(b[24] == 1);
  CHECK(b[25] == 3);
  CHECK(bytes::get_le(b.data() + 26, 2) == 13);
  CHECK(b.substr(28) == "10.0.0.2:2380");
  auto back = wire::decode_hello(b);
  REQUIRE(back);
  CHECK(back.value() == sample);

  // No address: a zero length, 28 bytes.
  wire::Hello bare = sample;
  bare.address.clear();
  const std::string e = wire::encode_hello(bare);
  CHECK(e.size() == 28);
  auto bare_back = wire::decode_hello(e);
  REQUIRE(bare_back);
  CHECK(bare_back.value() == bare);

  // The longest address allowed.
  wire::Hello longest = sample;
  longest.address = std::string(storage::max_address_size, 'a');
  auto longest_back = wire::decode_hello(wire::encode_hello(longest));
  REQUIRE(longest_back);
  CHECK(longest_back.value() == longest);
}

TEST_CASE("wire handshake: a truncated, overlong or inverted-range hello is malformed") {
  const std::string b = wire::encode_hello(sample);
  for (std::size_t cut = 0; cut < b.size(); ++cut) {
    auto r = wire::decode_hello(b.substr(0, cut));
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::malformed);
  }
  CHECK(contains(wire::decode_hello(b.substr(0, 27)).error().detail, "address length"));
  auto short_address = wire::decode_hello(b.substr(0, b.size() - 1));
  CHECK(contains(short_address.error().detail, "address at offset 28: needs 13 bytes, 12 left"));
  auto trailing = wire::decode_hello(b + 'x');
  REQUIRE_FALSE(trailing);
  CHECK(contains(trailing.error().detail, "1 unread bytes"));
  std::string inverted = b;
  inverted[24] = 4;  // lowest 4 > highest 3
  auto r = wire::decode_hello(inverted);
  REQUIRE_FALSE(r);
  CHECK(contains(r.error().detail, "lowest version 4 above highest 3"));
}

TEST_CASE("wire handshake: an address over the limit is malformed, even when its bytes are there") {
  wire::Hello h = sample;
  h.address = std::string(storage::max_address_size + 1, 'a');
  auto r = wire::decode_hello(wire::encode_hello(h));
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::malformed);
  CHECK(contains(r.error().detail,
                 "hello: address length at offset 28: 1025 bytes, over the "
                 "limit of 1024"));
}

TEST_CASE("wire handshake: check_hello agrees on the highest common version") {
  auto v = wire::check_hello(sample, wire::HelloCheck{sample.cluster_id, 1, {}, {}, {1, 2}});
  REQUIRE(v);
  CHECK(v.value().version == 2);
  CHECK(v.value().standing == wire::Standing::member);  // no standing function: a member
  // This build with itself: its one version.
  auto same = wire::check_hello(wire::Hello{5, 3, 1}, node1());
  REQUIRE(same);
  CHECK(same.value().version == wire::wire_version);
  CHECK(same.value().standing == wire::Standing::member);
  // A learner may connect (it receives the log); a member need not give an address.
  CHECK(wire::check_hello(wire::Hello{5, 7, 1}, node1()));
}

TEST_CASE("wire handshake: a stranger that gives a usable address is accepted as unknown") {
  // Member 9 was added while this node was cut off; it may be the leader now.
  auto r =
      wire::check_hello(wire::Hello{5, 9, 1, wire::supported_versions, "10.0.0.9:2380"}, node1());
  REQUIRE(r);
  CHECK(r.value().standing == wire::Standing::unknown);
  // Without a usable_address function any non-empty address will do.
  auto lax = node1();
  lax.usable_address = nullptr;
  auto any = wire::check_hello(wire::Hello{5, 9, 1, wire::supported_versions, "x"}, lax);
  REQUIRE(any);
  CHECK(any.value().standing == wire::Standing::unknown);
}

TEST_CASE("wire handshake: check_hello refuses with the reason, naming both sides") {
  auto other_cluster = wire::check_hello(wire::Hello{6, 2, 1}, node1());
  REQUIRE_FALSE(other_cluster);
  CHECK(other_cluster.error() == errc::invalid_argument);
  CHECK(contains(other_cluster.error().detail, "member 2 of cluster 6"));
  CHECK(contains(other_cluster.error().detail, "is in cluster 5"));

  auto misaddressed = wire::check_hello(wire::Hello{5, 2, 3}, node1());
  REQUIRE_FALSE(misaddressed);
  CHECK(misaddressed.error() == errc::invalid_argument);
  CHECK(contains(misaddressed.error().detail, "meant for member 3, this node is member 1"));

  auto self = wire::check_hello(wire::Hello{5, 1, 1}, node1());
  REQUIRE_FALSE(self);
  CHECK(contains(self.error().detail, "this node's own id"));

  // Removed: refused even though it gives an address.
  auto removed =
      wire::check_hello(wire::Hello{5, 4, 1, wire::supported_versions, "10.0.0.4:2380"}, node1());
  REQUIRE_FALSE(removed);
  CHECK(removed.error() == errc::not_found);
  CHECK(contains(removed.error().detail,
                 "hello from member 4: removed from the configuration of cluster 5"));

  auto addressless = wire::check_hello(wire::Hello{5, 9, 1}, node1());
  REQUIRE_FALSE(addressless);
  CHECK(addressless.error() == errc::not_found);
  CHECK(contains(addressless.error().detail,
                 "hello from member 9: not a member of cluster 5 as this node (member 1) knows "
                 "it, and its hello gives no address to answer it at"));

  auto unusable =
      wire::check_hello(wire::Hello{5, 9, 1, wire::supported_versions, "nowhere"}, node1());
  REQUIRE_FALSE(unusable);
  CHECK(unusable.error() == errc::not_found);
  CHECK(contains(unusable.error().detail,
                 "and the address it gives is not usable: no port in \"nowhere\""));

  // Version 1 (before snapshot streams), or only later ones, or none.
  for (auto theirs :
       {wire::VersionRange{1, 1}, wire::VersionRange{3, 4}, wire::VersionRange{0, 0}}) {
    auto r = wire::check_hello(wire::Hello{5, 2, 1, theirs}, node1());
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::incompatible_version);
    CHECK(contains(r.error().detail, "the peer speaks " + theirs.to_string()));
    CHECK(contains(r.error().detail, "this node speaks 2..2"));
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
  auto r = wire::check_hello(hello.value(), node1());
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::incompatible_version);
  CHECK(contains(r.error().detail, "the peer speaks 4..5, this node speaks 2..2"));
}

}  // namespace
