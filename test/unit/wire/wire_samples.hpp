#pragma once
// Messages for the wire codec's tests, its fuzz target and its seed corpus: one of every type
// with every field away from its default, random ones, and a field-by-field comparison
// (raft::Message has no operator==: its snapshot is a pointer, compared here by content).

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "dengine/raft/message.hpp"

namespace dengine::wire::testing {

/// The name of the first field where `a` and `b` differ, or "" when they are equal.
inline std::string message_diff(const raft::Message& a, const raft::Message& b) {
  if (a.type != b.type) return "type";
  if (a.from != b.from) return "from";
  if (a.to != b.to) return "to";
  if (a.term != b.term) return "term";
  if (a.log_term != b.log_term) return "log_term";
  if (a.index != b.index) return "index";
  if (a.commit != b.commit) return "commit";
  if (a.reject != b.reject) return "reject";
  if (a.reject_hint != b.reject_hint) return "reject_hint";
  if (a.context != b.context) return "context";
  if (a.entries.size() != b.entries.size()) return "entries.size";
  for (std::size_t k = 0; k < a.entries.size(); ++k) {
    const Entry& x = a.entries[k];
    const Entry& y = b.entries[k];
    const std::string at = "entries[" + std::to_string(k) + "].";
    if (x.term != y.term) return at + "term";
    if (x.index != y.index) return at + "index";
    if (x.type != y.type) return at + "type";
    if (x.data != y.data) return at + "data";
  }
  if (!a.snapshot != !b.snapshot) return "snapshot presence";
  if (a.snapshot) {
    const Snapshot& x = *a.snapshot;
    const Snapshot& y = *b.snapshot;
    if (x.meta.index != y.meta.index) return "snapshot.meta.index";
    if (x.meta.term != y.meta.term) return "snapshot.meta.term";
    if (x.meta.membership.voters != y.meta.membership.voters) return "snapshot voters";
    if (x.meta.membership.learners != y.meta.membership.learners) return "snapshot learners";
    if (x.meta.membership.addresses != y.meta.membership.addresses) return "snapshot addresses";
    if (x.data != y.data) return "snapshot.data";
  }
  return "";
}

/// A snapshot with voters, learners, addresses and data, none at a default.
inline std::shared_ptr<const Snapshot> sample_snapshot(std::string data) {
  return std::make_shared<const Snapshot>(
      Snapshot{SnapshotMeta{0x0102030405060708, 0x1112131415161718,
                            Membership{{1, 2, 0x7f00}, {9}, {{2, "127.0.0.1:2380"}, {9, "h:9"}}}},
               std::move(data)});
}

/// One message of each of the 16 types, every field set away from its default (values with
/// distinct bytes, so a swapped or dropped field shows), with entries of every type and of
/// empty, short and large data; the snapshot message carries a snapshot, the others none.
inline std::vector<raft::Message> sample_messages() {
  std::vector<raft::Message> out;
  for (std::uint8_t t = 0; t <= static_cast<std::uint8_t>(raft::MessageType::leader_call_response);
       ++t) {
    raft::Message m;
    m.type = static_cast<raft::MessageType>(t);
    m.from = 0x0101010101010101ULL * (t + 1);
    m.to = 0x2000000000000002ULL + t;
    m.term = 0x3000000000000303ULL + t;
    m.log_term = 0x4000000000040004ULL + t;
    m.index = 0x5000000005000005ULL + t;
    m.commit = 0x6000000600000006ULL + t;
    m.reject = true;
    m.reject_hint = 0x7000070000000007ULL + t;
    m.context = 0x8008000000000008ULL + t;
    m.entries = {Entry{7, 100U + t, EntryType::normal, "put k v"},
                 Entry{7, 101U + t, EntryType::noop, ""},
                 Entry{0xFFFFFFFFFFFFFFFFULL, 102U + t, EntryType::config_change,
                       std::string("\0\x01\xff", 3)}};
    if (m.type == raft::MessageType::append) {
      m.entries.push_back(Entry{8, 103, EntryType::normal, std::string(100000, 'x')});
    }
    if (m.type == raft::MessageType::snapshot) m.snapshot = sample_snapshot("state bytes");
    out.push_back(std::move(m));
  }
  return out;
}

/// A message with random fields (small or full-width values, 0..4 entries with 0..64 bytes of
/// data, a snapshot one time in four), for property tests. Deterministic for a given `rng`.
inline raft::Message random_message(std::mt19937_64& rng) {
  auto pick = [&](std::uint64_t n) {
    return std::uniform_int_distribution<std::uint64_t>(0, n)(rng);
  };
  auto value = [&] { return pick(1) == 0 ? pick(100) : rng(); };
  auto data = [&] {
    std::string s(pick(64), '\0');
    for (auto& c : s) c = static_cast<char>(pick(255));
    return s;
  };
  raft::Message m;
  m.type = static_cast<raft::MessageType>(pick(11));
  m.from = value();
  m.to = value();
  m.term = value();
  m.log_term = value();
  m.index = value();
  m.commit = value();
  m.reject = pick(1) == 1;
  m.reject_hint = value();
  m.context = value();
  for (std::uint64_t k = pick(4); k > 0; --k)
    m.entries.push_back(Entry{value(), value(), static_cast<EntryType>(pick(2)), data()});
  if (pick(3) == 0) {
    auto s = std::make_shared<Snapshot>();
    s->meta.index = value();
    s->meta.term = value();
    // Strictly increasing, alternating between voters and learners: sorted and disjoint.
    NodeId id = 0;
    for (std::uint64_t k = pick(6); k > 0; --k) {
      id += 1 + pick(1000);
      (pick(1) == 0 ? s->meta.membership.voters : s->meta.membership.learners).push_back(id);
    }
    s->data = data();
    m.snapshot = std::move(s);
  }
  return m;
}

}  // namespace dengine::wire::testing
