// wire/message_codec.hpp: every raft::Message field round-trips, the layout is the documented
// one (docs/wire.md), and malformed payloads are refused without trusting a count.

#include "dengine/wire/message_codec.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "dengine/storage/byte_codec.hpp"
#include "wire_samples.hpp"

namespace {

using namespace dengine;
using wire::testing::message_diff;

/// `m` encoded, decoded and compared field by field; the re-encoding is byte-identical.
void check_round_trip(const raft::Message& m) {
  CAPTURE(to_string(m.type));
  const std::string bytes = wire::encode_message(m);
  CHECK(bytes.size() == wire::encoded_size(m));
  auto back = wire::decode_message(bytes);
  REQUIRE_MESSAGE(back, back.error().message());
  CHECK(message_diff(m, back.value()) == "");
  CHECK(wire::encode_message(back.value()) == bytes);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST_CASE("wire message codec: every message type round-trips with every field set") {
  const auto samples = wire::testing::sample_messages();
  REQUIRE(samples.size() == 16);
  for (const auto& m : samples) check_round_trip(m);
  check_round_trip(raft::Message{});  // every field at its default
}

TEST_CASE("wire message codec: entries of every type with empty, short and large data") {
  raft::Message m;
  m.type = raft::MessageType::append;
  for (EntryType t : {EntryType::normal, EntryType::noop, EntryType::config_change}) {
    for (std::size_t size : {0, 1, 255, 256, 65537, 3 << 20}) {
      std::string data(size, '\0');
      for (std::size_t k = 0; k < size; ++k) data[k] = static_cast<char>(k * 7 + size);
      m.entries.push_back(Entry{m.entries.size() + 1, m.entries.size() + 5, t, data});
    }
  }
  check_round_trip(m);
  auto back = wire::decode_message(wire::encode_message(m));
  REQUIRE(back);
  CHECK(back.value().entries == m.entries);  // Entry has operator==: a second opinion
}

TEST_CASE("wire message codec: a snapshot round-trips when present, stays absent when not") {
  raft::Message m;
  m.type = raft::MessageType::snapshot;
  check_round_trip(m);
  CHECK_FALSE(wire::decode_message(wire::encode_message(m)).value().snapshot);

  m.snapshot = std::make_shared<const Snapshot>();  // present but empty: still present
  check_round_trip(m);
  CHECK(wire::decode_message(wire::encode_message(m)).value().snapshot);

  m.snapshot = wire::testing::sample_snapshot(std::string(1 << 20, 's'));
  check_round_trip(m);
  auto back = wire::decode_message(wire::encode_message(m));
  REQUIRE(back);
  CHECK(*back.value().snapshot == *m.snapshot);
}

TEST_CASE("wire message codec: the layout is the one docs/wire.md tabulates") {
  raft::Message m;
  m.type = raft::MessageType::vote_response;
  m.reject = true;
  m.from = 0x0102030405060708;
  m.context = 0xAA;
  m.entries = {Entry{3, 4, EntryType::config_change, "xy"}};
  m.snapshot =
      std::make_shared<const Snapshot>(Snapshot{SnapshotMeta{9, 8, {{5}, {6}, {{6, "ab"}}}}, "z"});
  const std::string b = wire::encode_message(m);
  const auto* p = b.data();
  CHECK(b[0] == 5);                         // type
  CHECK(b[1] == 3);                         // flags: reject | snapshot
  CHECK(bytes::get_le64(p + 2) == m.from);  // from (little-endian)
  CHECK(b[2] == 0x08);                      // low byte first
  CHECK(bytes::get_le64(p + 58) == 0xAA);   // context, the last u64
  CHECK(bytes::get_le32(p + 66) == 1);      // entry count
  CHECK(bytes::get_le64(p + 70) == 3);      // entry term
  CHECK(bytes::get_le64(p + 78) == 4);      // entry index
  CHECK(b[86] == 2);                        // entry type
  CHECK(bytes::get_le32(p + 87) == 2);      // data length
  CHECK(b.substr(91, 2) == "xy");           // data
  CHECK(bytes::get_le64(p + 93) == 9);      // snapshot index
  CHECK(bytes::get_le64(p + 101) == 8);     // snapshot term
  CHECK(bytes::get_le32(p + 109) == 1);     // voter count
  CHECK(bytes::get_le64(p + 113) == 5);     // voter
  CHECK(bytes::get_le32(p + 121) == 1);     // learner count
  CHECK(bytes::get_le64(p + 125) == 6);     // learner
  CHECK(bytes::get_le32(p + 133) == 1);     // address count
  CHECK(bytes::get_le64(p + 137) == 6);     // the member
  CHECK(bytes::get_le32(p + 145) == 2);     // its address's length
  CHECK(b.substr(149, 2) == "ab");          // the address
  CHECK(bytes::get_le32(p + 151) == 1);     // snapshot data length
  CHECK(b.substr(155) == "z");              // snapshot data, the end
  CHECK(wire::message_layout::fixed_size == 70);
}

TEST_CASE("wire message codec: a batch round-trips; an empty batch too") {
  const auto samples = wire::testing::sample_messages();
  const std::string bytes = wire::encode_messages(samples);
  auto back = wire::decode_messages(bytes);
  REQUIRE_MESSAGE(back, back.error().message());
  REQUIRE(back.value().size() == samples.size());
  for (std::size_t k = 0; k < samples.size(); ++k) {
    CAPTURE(k);
    CHECK(message_diff(samples[k], back.value()[k]) == "");
  }
  CHECK(wire::encode_messages(back.value()) == bytes);

  const std::string empty = wire::encode_messages({});
  CHECK(empty == std::string(4, '\0'));
  auto none = wire::decode_messages(empty);
  REQUIRE(none);
  CHECK(none.value().empty());
}

TEST_CASE("wire message codec: random messages and batches round-trip (seeded property)") {
  std::mt19937_64 rng(20261206);
  for (int round = 0; round < 300; ++round) {
    CAPTURE(round);
    std::vector<raft::Message> batch(rng() % 8);
    for (auto& m : batch) m = wire::testing::random_message(rng);
    const std::string bytes = wire::encode_messages(batch);
    auto back = wire::decode_messages(bytes);
    REQUIRE_MESSAGE(back, back.error().message());
    REQUIRE(back.value().size() == batch.size());
    for (std::size_t k = 0; k < batch.size(); ++k) {
      CAPTURE(k);
      CHECK(message_diff(batch[k], back.value()[k]) == "");
      check_round_trip(batch[k]);
    }
  }
}

TEST_CASE("wire message codec: every truncation and any trailing byte is refused") {
  auto samples = wire::testing::sample_messages();
  samples[0].entries.pop_back();  // the 100 KB entry: the cut points of the rest suffice
  for (const auto& m : samples) {
    CAPTURE(to_string(m.type));
    const std::string bytes = wire::encode_message(m);
    for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
      auto r = wire::decode_message(std::string_view(bytes).substr(0, cut));
      REQUIRE_FALSE(r);
      CHECK(r.error() == errc::malformed);
    }
    auto trailing = wire::decode_message(bytes + '\0');
    REQUIRE_FALSE(trailing);
    CHECK(trailing.error() == errc::malformed);
    CHECK(contains(trailing.error().detail, "1 unread bytes"));
  }
  const std::string batch = wire::encode_messages(samples);
  for (std::size_t cut = 0; cut < batch.size(); ++cut) {
    CHECK_FALSE(wire::decode_messages(std::string_view(batch).substr(0, cut)));
  }
  CHECK_FALSE(wire::decode_messages(batch + 'x'));
}

TEST_CASE("wire message codec: unknown message types, entry types and flags are refused") {
  raft::Message m;
  m.entries = {Entry{1, 1, EntryType::normal, "d"}};
  const std::string good = wire::encode_message(m);
  REQUIRE(wire::decode_message(good));
  for (int type : {16, 17, 0x80, 0xFF}) {
    std::string b = good;
    b[0] = static_cast<char>(type);
    auto r = wire::decode_message(b);
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::malformed);
    CHECK(contains(r.error().detail, "unknown message type " + std::to_string(type)));
  }
  for (int type : {3, 0xFF}) {
    std::string b = good;
    b[70 + 16] = static_cast<char>(type);
    auto r = wire::decode_message(b);
    REQUIRE_FALSE(r);
    CHECK(contains(r.error().detail, "unknown entry type " + std::to_string(type)));
  }
  for (int flags : {4, 0x80}) {
    std::string b = good;
    b[1] = static_cast<char>(flags);
    auto r = wire::decode_message(b);
    REQUIRE_FALSE(r);
    CHECK(contains(r.error().detail, "unknown flag bits"));
  }
  std::string snapshot_flag = good;  // the flag says a snapshot follows, but the bytes end
  snapshot_flag[1] = 2;
  CHECK_FALSE(wire::decode_message(snapshot_flag));
}

TEST_CASE("wire message codec: huge counts and lengths are refused before allocating") {
  const std::string huge = "\xff\xff\xff\xff";
  raft::Message m;
  m.entries = {Entry{1, 1, EntryType::normal, "data"}};
  m.snapshot = wire::testing::sample_snapshot("img");
  const std::string good = wire::encode_message(m);
  REQUIRE(wire::decode_message(good));
  // Offsets of each count and length in `good` (docs/wire.md); 2^32 - 1 elements claimed.
  const std::size_t entry_count = 66;
  const std::size_t entry_data_length = 70 + 17;
  const std::size_t snapshot = 70 + 21 + 4;
  const std::size_t voter_count = snapshot + 16;
  const std::size_t learner_count = voter_count + 4 + 24;  // three voters
  const std::size_t snapshot_data_length = learner_count + 4 + 8;
  for (std::size_t at :
       {entry_count, entry_data_length, voter_count, learner_count, snapshot_data_length}) {
    CAPTURE(at);
    std::string b = good;
    b.replace(at, 4, huge);
    auto r = wire::decode_message(b);
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::malformed);
    CHECK(contains(r.error().detail, "at offset"));
  }
  // A count one too large for the bytes that follow is refused at the count.
  m.snapshot = nullptr;
  std::string one_more = wire::encode_message(m);
  bytes::set_le32(one_more, entry_count, 2);
  auto r = wire::decode_message(one_more);
  REQUIRE_FALSE(r);
  CHECK(contains(r.error().detail, "entry count at offset 70: count 2"));

  auto batch = wire::decode_messages(huge);
  REQUIRE_FALSE(batch);
  CHECK(contains(batch.error().detail, "count 4294967295"));
}

TEST_CASE("wire message codec: a membership that breaks its invariant is refused") {
  auto with = [](Membership ms) {
    raft::Message m;
    m.type = raft::MessageType::snapshot;
    m.snapshot = std::make_shared<const Snapshot>(Snapshot{SnapshotMeta{1, 1, std::move(ms)}, ""});
    return wire::decode_message(wire::encode_message(m));
  };
  CHECK(with(Membership{{1, 2, 3}, {4, 5}}));
  CHECK(with(Membership{{}, {}}));
  for (const Membership& bad :
       {Membership{{2, 1}, {}}, Membership{{1, 1}, {}}, Membership{{0, 1}, {}},
        Membership{{1}, {3, 2}}, Membership{{1, 2}, {2}},
        // an address for a non-member, an empty one, one too long
        Membership{{1}, {}, {{2, "h:2"}}}, Membership{{1}, {}, {{1, ""}}},
        Membership{{1}, {}, {{1, std::string(storage::max_address_size + 1, 'a')}}}}) {
    auto r = with(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error() == errc::malformed);
    CHECK(contains(r.error().detail, "snapshot"));
  }
}

}  // namespace
