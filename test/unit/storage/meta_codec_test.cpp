// The hard state and snapshot meta layout of include/dengine/storage/meta_codec.hpp.

#include "dengine/storage/meta_codec.hpp"

#include <doctest/doctest.h>

#include <string>

namespace {

using namespace dengine;

TEST_CASE("meta codec: the hard state round-trips in 24 big-endian bytes") {
  const HardState hs{0x0102030405060708, 7, 42};
  const std::string bytes = storage::encode_hard_state(hs);
  REQUIRE(bytes.size() == 24);
  CHECK(bytes.substr(0, 8) == std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
  CHECK(storage::decode_hard_state(bytes) == hs);
  CHECK_FALSE(storage::decode_hard_state(bytes.substr(0, 23)));
  CHECK_FALSE(storage::decode_hard_state(bytes + "x"));
}

TEST_CASE("meta codec: the snapshot meta round-trips; a malformed one is refused") {
  const SnapshotMeta meta{100, 3, Membership{{1, 2, 3}, {9}}};
  const std::string bytes = storage::encode_snapshot_meta(meta);
  CHECK(bytes.size() == 16 + 4 + 3 * 8 + 4 + 8 + 4);  // ... and no addresses
  CHECK(storage::decode_snapshot_meta(bytes) == meta);
  CHECK(storage::decode_snapshot_meta(storage::encode_snapshot_meta(SnapshotMeta{})) ==
        SnapshotMeta{});
  CHECK_FALSE(storage::decode_snapshot_meta(bytes.substr(0, 15)));                // no index/term
  CHECK_FALSE(storage::decode_snapshot_meta(bytes.substr(0, 16)));                // no voter count
  CHECK_FALSE(storage::decode_snapshot_meta(bytes.substr(0, bytes.size() - 5)));  // short learner
  CHECK_FALSE(storage::decode_snapshot_meta(bytes.substr(0, bytes.size() - 1)));  // short count
  CHECK_FALSE(storage::decode_snapshot_meta(bytes + "x"));                        // trailing byte
  std::string too_many = bytes;
  too_many[19] = '\x7f';  // the voter count's low byte: far more voters than bytes
  CHECK_FALSE(storage::decode_snapshot_meta(too_many));
}

TEST_CASE("meta codec: member addresses round-trip; a record without them still decodes") {
  const SnapshotMeta meta{100, 3, Membership{{1, 2}, {9}, {{1, "127.0.0.1:1"}, {9, "h:9"}}}};
  const std::string bytes = storage::encode_snapshot_meta(meta);
  CHECK(storage::decode_snapshot_meta(bytes) == meta);
  // Written before addresses existed: the record ends after the learners.
  const SnapshotMeta old{100, 3, Membership{{1, 2}, {9}}};
  const std::string old_bytes = storage::encode_snapshot_meta(old).substr(0, 16 + 4 + 16 + 4 + 8);
  CHECK(storage::decode_snapshot_meta(old_bytes) == old);
  CHECK_FALSE(storage::decode_snapshot_meta(bytes.substr(0, bytes.size() - 1)));  // short address
  CHECK_FALSE(storage::decode_snapshot_meta(old_bytes + "xy"));  // a torn address count
  // An address for a member that is not one.
  const SnapshotMeta stray{100, 3, Membership{{1}, {}, {{5, "h:5"}}}};
  CHECK_FALSE(storage::decode_snapshot_meta(storage::encode_snapshot_meta(stray)));
}

}  // namespace
