// Store limits (store_limits.hpp): the user-visible key and value limits derived from what a
// backend can store, checked before proposing; and the apply-time policy for a write the store
// refuses anyway (state_machine.hpp): the entry is answered with the refusal on every replica,
// whatever the batching, and the node goes on.

#include <doctest/doctest.h>

#include <cstddef>
#include <limits>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "kv_test_support.hpp"

namespace kvtest {
namespace {

/// LMDB's store-level limits as dengine::lmdb::Backend declares them (kept literal here so that
/// the unit tests need no LMDB; the engine tests check the real backend at the boundary).
constexpr StoreLimits lmdb_like{"lmdb", 510, 0xFFFFFFFFU - 64};

/// The memory backend's KvStore, except that it refuses, with too_large, any write batch
/// touching a version record of the user key `poison` — as a store with a smaller key limit than
/// the leader's would. Only write() is hidden: the concept binds statically, nothing is virtual.
class RefusingStore : public memory::KvStore {
 public:
  result<void> write(const WriteBatch& batch, LogIndex index) {
    const std::string prefix = keyspace::version_prefix_of(poison);
    for (const KvWrite& w : batch.writes) {
      if (w.key.compare(0, prefix.size(), prefix) == 0) {
        ++refusals;
        return error(errc::too_large, "refusing store: key of " + std::to_string(w.key.size()) +
                                          " bytes; the limit is " + std::to_string(prefix.size()));
      }
    }
    return memory::KvStore::write(batch, index);
  }

  std::string poison = "poison";
  int refusals = 0;
};
static_assert(dengine::KvStore<RefusingStore>);

std::string all_pairs(const memory::KvStore& store) {
  std::string out;
  (void)store.scan("", "", [&](std::string_view k, std::string_view v) {
    out += std::string(k) + "=" + std::string(v) + ";";
    return true;
  });
  return out;
}

/// What a response says, comparable across replicas: its revision or its error.
std::string describe(const result<Response>& r) {
  if (!r) return "error " + std::to_string(r.error().code.value()) + ": " + r.error().detail;
  return std::visit(
      [](const auto& resp) -> std::string {
        using T = std::decay_t<decltype(resp)>;
        if constexpr (std::is_same_v<T, std::monostate>)
          return "none";
        else
          return "revision " + std::to_string(resp.header.revision);
      },
      r.value());
}

}  // namespace

TEST_CASE("kv store limits: the arithmetic matches the key space") {
  CHECK(lmdb_like.max_user_key_bytes() == 491);
  CHECK(lmdb_like.usable());
  // A 491-byte key's version record key is exactly the store's 510 bytes; 492 would be 511.
  const std::string key(491, 'k');
  CHECK(keyspace::version_key(key, 1, 0).size() == 510);
  CHECK(keyspace::version_key(key + "k", 1, 0).size() == 511);
  // NUL bytes are escaped to two bytes each.
  const std::string nuls(245, '\0');
  CHECK(escaped_key_bytes(nuls) == 490);
  CHECK(keyspace::version_key(nuls, 1, 0).size() == 509);
  // Every other key the layer writes is shorter than a version key of the same user key.
  CHECK(keyspace::attach_key(std::numeric_limits<LeaseId>::max(), key).size() < 510);
  CHECK(keyspace::lease_key(1).size() <= longest_internal_key);
  CHECK(keyspace::meta_compacted.size() <= longest_internal_key);
  CHECK(keyspace::meta_revision.size() <= longest_internal_key);
  CHECK(keyspace::meta_restoring.size() <= longest_internal_key);
  // The put record adds at most put_record_overhead bytes, even with the largest varints.
  const auto record = keyspace::encode_put_record(std::numeric_limits<Revision>::min(),
                                                  std::numeric_limits<std::int64_t>::min(),
                                                  std::numeric_limits<LeaseId>::min(), "value");
  CHECK(record.size() == 5 + put_record_overhead);
  // Unlimited by default; a store too small for the layer's own records is not usable.
  CHECK(StoreLimits{}.usable());
  CHECK_FALSE(StoreLimits{"tiny", 19, 1024}.usable());
  CHECK(StoreLimits{"tiny", 20, 1024}.max_user_key_bytes() == 1);
}

TEST_CASE("kv store limits: puts beyond them are refused before proposing, with the numbers") {
  RequestLimits limits;
  limits.store = lmdb_like;
  // The exact boundary.
  CHECK(encode_proposal(PutRequest{.key = std::string(491, 'k'), .value = "v"}, limits));
  auto over = encode_proposal(PutRequest{.key = std::string(492, 'k'), .value = "v"}, limits);
  REQUIRE_FALSE(over);
  CHECK(over.error() == errc::too_large);
  CHECK(over.error().detail.find("492 bytes") != std::string::npos);
  CHECK(over.error().detail.find("at most 491") != std::string::npos);
  CHECK(over.error().detail.find("lmdb") != std::string::npos);
  // 246 NUL bytes count as 492; 245 as 490.
  CHECK(encode_proposal(PutRequest{.key = std::string(245, '\0'), .value = "v"}, limits));
  auto nul = encode_proposal(PutRequest{.key = std::string(246, '\0'), .value = "v"}, limits);
  REQUIRE_FALSE(nul);
  CHECK(nul.error() == errc::too_large);
  CHECK(nul.error().detail.find("246 of them NUL") != std::string::npos);
  // Inside a txn, in either branch and at any depth.
  TxnRequest inner;
  inner.failure.push_back({PutRequest{.key = std::string(492, 'k'), .value = "v"}});
  TxnRequest outer;
  outer.success.push_back({PutRequest{.key = "fine", .value = "v"}});
  outer.success.push_back({box<TxnRequest>(inner)});
  auto txn = encode_proposal(outer, limits);
  REQUIRE_FALSE(txn);
  CHECK(txn.error() == errc::too_large);
  // Values: the store's value limit less the record header.
  RequestLimits small;
  small.store = StoreLimits{"small", 1024, 100};
  CHECK(encode_proposal(PutRequest{.key = "k", .value = std::string(69, 'v')}, small));
  auto big = encode_proposal(PutRequest{.key = "k", .value = std::string(70, 'v')}, small);
  REQUIRE_FALSE(big);
  CHECK(big.error() == errc::too_large);
  CHECK(big.error().detail.find("at most 69") != std::string::npos);
  // ignore_value re-stores a value already held: its own (empty) value is not the one checked.
  CHECK(encode_proposal(PutRequest{.key = "k", .ignore_value = true}, small));
  // Deletes and reads of long keys write nothing new: not refused.
  CHECK(encode_proposal(DeleteRangeRequest{.key = std::string(600, 'k')}, limits));
  CHECK(encode_proposal(RangeRequest{.key = std::string(600, 'k')}, limits));
  // Without store limits (the default) nothing changes.
  CHECK(encode_proposal(PutRequest{.key = std::string(4096, 'k'), .value = "v"}));
}

TEST_CASE(
    "kv apply: an entry the store refuses is answered alike on every replica, and "
    "apply goes on") {
  // The same log on three replicas that batch it differently: whole, one by one, in pairs.
  std::vector<Command> log{
      PutRequest{.key = "a", .value = "1"},
      PutRequest{.key = "b", .value = "2"},
      PutRequest{.key = "poison", .value = "x"},
      PutRequest{.key = "c", .value = "3"},
      DeleteRangeRequest{.key = "a"},
      TxnRequest{.success = {RequestOp{PutRequest{.key = "poison", .value = "y"}},
                             RequestOp{PutRequest{.key = "d", .value = "4"}}}},
      PutRequest{.key = "e", .value = "5"}};
  std::vector<Entry> entries;
  for (std::size_t k = 0; k < log.size(); ++k)
    entries.push_back(Entry{1, k + 1, EntryType::normal, encode_command(log[k])});

  struct Replica {
    RefusingStore store;
    std::unique_ptr<KvStateMachine<RefusingStore>> sm;
    std::vector<result<Response>> responses;
  };
  std::vector<std::unique_ptr<Replica>> replicas;
  for (const std::size_t chunk : {entries.size(), std::size_t{1}, std::size_t{2}}) {
    auto r = std::make_unique<Replica>();
    auto opened = KvStateMachine<RefusingStore>::open(r->store);
    REQUIRE(opened);
    r->sm = std::move(opened).value();
    auto watcher = r->sm->watch_hub()
                       .watch({.key = std::string(1, '\0'), .range_end = std::string(1, '\0')})
                       .value();
    for (std::size_t at = 0; at < entries.size(); at += chunk) {
      const std::size_t n = std::min(chunk, entries.size() - at);
      auto applied = r->sm->apply(std::span<const Entry>(entries).subspan(at, n), r->responses);
      REQUIRE_MESSAGE(applied, (applied ? "" : applied.error().message()));
    }
    CHECK(r->sm->applied_index() == entries.size());
    CHECK(r->store.applied_index() == entries.size());
    CHECK(r->sm->refused_entries() == 2);
    // Watchers saw the writes of every entry but the refused ones.
    std::size_t puts = 0;
    for (const auto& resp : watcher->take())
      for (const auto& ev : resp.events) {
        CHECK(ev.kv.key != "poison");
        ++puts;
      }
    CHECK(puts == 5);  // a, b, c, delete a, e
    replicas.push_back(std::move(r));
  }

  const auto& first = *replicas.front();
  REQUIRE(first.responses.size() == entries.size());
  CHECK(first.responses[0]);
  CHECK(first.responses[1]);
  REQUIRE_FALSE(first.responses[2]);
  CHECK(first.responses[2].error() == errc::too_large);
  CHECK(first.responses[2].error().detail.find("entry 3") != std::string::npos);
  CHECK(first.responses[3]);
  REQUIRE_FALSE(first.responses[5]);  // the txn that puts "poison" changes nothing, "d" included
  CHECK(first.responses[6]);
  // Revisions: a=2, b=3, (refused), c=4, delete=5, (refused), e=6.
  CHECK(describe(first.responses[6]) == "revision 6");
  CHECK_FALSE(first.sm->range({.key = "d"}).value().count);
  CHECK_FALSE(first.sm->range({.key = "poison"}).value().count);

  for (const auto& r : replicas) {
    REQUIRE(r->responses.size() == entries.size());
    for (std::size_t k = 0; k < entries.size(); ++k) {
      CAPTURE(k);
      CHECK(describe(r->responses[k]) == describe(first.responses[k]));
    }
    CHECK(all_pairs(r->store) == all_pairs(first.store));
  }

  // A restart replays nothing and finds the same state (no poison pill).
  auto& last = *replicas.back();
  last.sm.reset();
  auto reopened = KvStateMachine<RefusingStore>::open(last.store);
  REQUIRE(reopened);
  CHECK(reopened.value()->applied_index() == entries.size());
  CHECK(reopened.value()->current_revision() == 6);
}

TEST_CASE("kv apply: a store failure that is not a refusal still fails the batch") {
  Harness<FlakyStore> h;
  h.put("a", "1");
  h.store.fail_writes = true;  // no_space: the machine's problem, not the entry's
  std::vector<Entry> batch{Entry{1, h.next_index, EntryType::normal,
                                 encode_command(PutRequest{.key = "b", .value = "2"})}};
  std::vector<result<Response>> out;
  auto r = h.sm->apply(batch, out);
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::no_space);
  CHECK(out.empty());
  CHECK(h.sm->applied_index() == h.next_index - 1);
  CHECK(h.sm->refused_entries() == 0);
}

}  // namespace kvtest
