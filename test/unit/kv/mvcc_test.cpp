// MVCC semantics against etcd's documented behaviour: revisions, versions, ranges, compaction.

#include <optional>
#include <random>
#include <string>
#include <vector>

#include "kv_test_support.hpp"

using namespace kvtest;

static_assert(dengine::StateMachine<KvStateMachine<memory::KvStore>>);
static_assert(dengine::StateMachine<KvStateMachine<FlakyStore>>);

TEST_CASE("kv mvcc: revision starts at 1 and each mutating op raises it by one") {
  Harness h;
  CHECK(h.sm->current_revision() == 1);
  CHECK(h.get("missing").header.revision == 1);
  CHECK(h.put("a", "1").header.revision == 2);
  CHECK(h.put("b", "1").header.revision == 3);
  CHECK(h.put("a", "2").header.revision == 4);
  // A delete of nothing changes nothing.
  auto none = h.del("zzz");
  CHECK(none.deleted == 0);
  CHECK(none.header.revision == 4);
  // A delete of two keys is one revision.
  auto two = h.del("a", "c");
  CHECK(two.deleted == 2);
  CHECK(two.header.revision == 5);
  CHECK(h.sm->current_revision() == 5);
  // Lease grant does not change the revision.
  CHECK(h.grant(60).header.revision == 5);
  CHECK(h.sm->current_revision() == 5);
}

TEST_CASE("kv mvcc: version, create and mod revisions across delete and re-put") {
  Harness h;
  h.put("k", "v1");            // rev 2
  auto p2 = h.put("k", "v2");  // rev 3
  REQUIRE(p2.prev_kv);
  CHECK(*p2.prev_kv == KeyValue{"k", 2, 2, 1, "v1", 0});
  auto kv = h.get("k").kvs.at(0);
  CHECK(kv == KeyValue{"k", 2, 3, 2, "v2", 0});
  auto d = h.del("k");  // rev 4
  CHECK(d.deleted == 1);
  REQUIRE(d.prev_kvs.size() == 1);
  CHECK(d.prev_kvs[0] == KeyValue{"k", 2, 3, 2, "v2", 0});
  CHECK(h.get("k").kvs.empty());
  CHECK(h.get("k").count == 0);
  auto p3 = h.put("k", "v3");  // rev 5: a new life
  CHECK(!p3.prev_kv);
  CHECK(h.get("k").kvs.at(0) == KeyValue{"k", 5, 5, 1, "v3", 0});
}

TEST_CASE("kv mvcc: reads at past revisions see a consistent view") {
  Harness h;
  h.put("a", "1");  // 2
  h.put("b", "1");  // 3
  h.put("a", "2");  // 4
  h.del("b");       // 5
  h.put("c", "1");  // 6
  CHECK(h.keys("a", std::string(1, '\0'), 1).empty());
  CHECK(h.keys("a", std::string(1, '\0'), 2) == std::vector<std::string>{"a"});
  CHECK(h.keys("a", std::string(1, '\0'), 3) == std::vector<std::string>{"a", "b"});
  CHECK(h.get("a", {}, 3).kvs.at(0).value == "1");
  CHECK(h.get("a", {}, 4).kvs.at(0).value == "2");
  CHECK(h.keys("a", std::string(1, '\0'), 5) == std::vector<std::string>{"a"});
  CHECK(h.keys("a", std::string(1, '\0'), 6) == std::vector<std::string>{"a", "c"});
  // The header names the current revision, not the one read.
  CHECK(h.get("a", {}, 3).header.revision == 6);
}

TEST_CASE("kv mvcc: future and compacted revisions fail with etcd's errors") {
  Harness h;
  h.put("a", "1");
  RangeRequest r;
  r.key = "a";
  r.revision = 3;
  auto future = h.sm->range(r);
  REQUIRE(!future);
  CHECK(future.error() == errc::future_revision);
  CHECK(future.error().detail == "etcdserver: mvcc: required revision is a future revision");
  h.put("a", "2");  // 3
  h.put("a", "3");  // 4
  auto compaction = h.ok<CompactionResponse>(CompactionRequest{3});
  CHECK(compaction.header.revision == 4);  // compaction does not change the revision
  CHECK(h.sm->current_revision() == 4);
  CHECK(h.sm->compacted_revision() == 3);
  r.revision = 2;
  auto compacted = h.sm->range(r);
  REQUIRE(!compacted);
  CHECK(compacted.error() == errc::compacted);
  CHECK(compacted.error().detail == "etcdserver: mvcc: required revision has been compacted");
  // At the compacted revision itself reads still work (etcd: rev < compacted fails).
  r.revision = 3;
  REQUIRE(h.sm->range(r));
  CHECK(h.sm->range(r).value().kvs.at(0).value == "2");
  // Compacting at or below the compacted revision, or in the future, fails.
  auto again = h.run(CompactionRequest{3});
  REQUIRE(!again);
  CHECK(again.error() == errc::compacted);
  auto ahead = h.run(CompactionRequest{99});
  REQUIRE(!ahead);
  CHECK(ahead.error() == errc::future_revision);
}

TEST_CASE("kv mvcc: compaction keeps reads at and above the compacted revision identical") {
  Harness h;
  const std::string all(1, '\0');
  for (int i = 0; i < 5; ++i) h.put("k" + std::to_string(i % 3), "v" + std::to_string(i));
  h.del("k1");
  h.put("k3", "x");
  h.del("k3");
  h.put("k1", "again");
  const Revision cur = h.sm->current_revision();
  std::vector<RangeResponse> before;
  for (Revision rev = 1; rev <= cur; ++rev) before.push_back(h.get("a", all, rev));
  const std::size_t keys_before = h.store.size();
  const Revision at = 7;
  h.ok<CompactionResponse>(CompactionRequest{at});
  CHECK(h.store.size() < keys_before);  // something was dropped
  for (Revision rev = at; rev <= cur; ++rev) {
    CAPTURE(rev);
    CHECK(h.get("a", all, rev) == before[static_cast<std::size_t>(rev - 1)]);
  }
  // The deleted-before-compaction key k3's tombstone is gone, its history too.
  CHECK(h.keys("k3", {}).empty());
}

TEST_CASE("kv range: single key, range, prefix and range_end \\0") {
  Harness h;
  for (std::string k : {"a", "ab", "abc", "abd", "b", "c"}) h.put(k, "v");
  h.put(std::string("a\0x", 3), "nul");
  const std::string all(1, '\0');
  CHECK(h.keys("ab", {}) == std::vector<std::string>{"ab"});
  CHECK(h.keys("ab", "b") == std::vector<std::string>{"ab", "abc", "abd"});
  // Prefix "ab": range_end = "ac".
  CHECK(h.keys("ab", "ac") == std::vector<std::string>{"ab", "abc", "abd"});
  CHECK(h.keys("abc", all) == std::vector<std::string>{"abc", "abd", "b", "c"});
  CHECK(h.keys(all, all).size() == 7);
  CHECK(h.keys("a", "a\x01") == std::vector<std::string>{"a", std::string("a\0x", 3)});
  // range_end <= key: empty.
  CHECK(h.keys("b", "a").empty());
  CHECK(h.keys("b", "b").empty());
  // Empty key is refused.
  RangeRequest r;
  auto bad = h.sm->range(r);
  REQUIRE(!bad);
  CHECK(bad.error().detail == "etcdserver: key is not provided");
}

TEST_CASE("kv range: limit, more, count, count_only, keys_only") {
  Harness h;
  for (int i = 0; i < 5; ++i) h.put("k" + std::to_string(i), "value" + std::to_string(i));
  RangeRequest r;
  r.key = "k";
  r.range_end = "l";
  r.limit = 2;
  auto resp = h.range(r);
  CHECK(resp.kvs.size() == 2);
  CHECK(resp.more);
  CHECK(resp.count == 5);
  CHECK(resp.kvs[0].key == "k0");
  r.limit = 5;
  resp = h.range(r);
  CHECK(resp.kvs.size() == 5);
  CHECK(!resp.more);
  r.limit = 0;
  r.count_only = true;
  resp = h.range(r);
  CHECK(resp.kvs.empty());
  CHECK(resp.count == 5);
  CHECK(!resp.more);
  r.count_only = false;
  r.keys_only = true;
  resp = h.range(r);
  REQUIRE(resp.kvs.size() == 5);
  for (const auto& kv : resp.kvs) {
    CHECK(kv.value.empty());
    CHECK(kv.version == 1);
  }
}

/// Keys b, a, c, then a again, written at revisions 2..5; `r` ranges over all of them.
///   key  create  mod  version
///   a    3       5    2
///   b    2       2    1
///   c    4       4    1
struct ThreeKeys {
  ThreeKeys() {
    h.put("b", "3");
    h.put("a", "1");
    h.put("c", "2");
    h.put("a", "9");
    r.key = "a";
    r.range_end = "z";
  }
  /// The keys `r` returns, in order, as one string.
  std::string keys() {
    std::string s;
    for (const auto& kv : h.range(r).kvs) s += kv.key;
    return s;
  }
  Harness<> h;
  RangeRequest r;
};

TEST_CASE_FIXTURE(ThreeKeys, "kv range: sort orders and targets") {
  auto order = [&](SortOrder o, SortTarget t) {
    r.sort_order = o;
    r.sort_target = t;
    return keys();
  };
  CHECK(order(SortOrder::none, SortTarget::key) == "abc");
  CHECK(order(SortOrder::descend, SortTarget::key) == "cba");
  CHECK(order(SortOrder::ascend, SortTarget::value) == "cba");  // "2" < "3" < "9"
  CHECK(order(SortOrder::none, SortTarget::value) == "cba");    // non-key target defaults to ascend
  CHECK(order(SortOrder::descend, SortTarget::mod) == "acb");   // 5, 4, 2
  CHECK(order(SortOrder::ascend, SortTarget::create) == "bac");    // 2, 3, 4
  CHECK(order(SortOrder::descend, SortTarget::version) == "abc");  // a=2 first, ties by key
  // Sorting happens before the limit.
  r.sort_order = SortOrder::descend;
  r.sort_target = SortTarget::key;
  r.limit = 1;
  auto resp = h.range(r);
  REQUIRE(resp.kvs.size() == 1);
  CHECK(resp.kvs[0].key == "c");
  CHECK(resp.more);
  CHECK(resp.count == 3);
}

TEST_CASE_FIXTURE(ThreeKeys, "kv range: min/max mod and create revision filters") {
  // Each bound picks other keys by mod revision than by create revision.
  r.min_mod_revision = 4;
  CHECK(keys() == "ac");
  r.min_mod_revision = 0;
  r.max_mod_revision = 3;
  CHECK(keys() == "b");
  r.max_mod_revision = 0;
  r.min_create_revision = 4;
  CHECK(keys() == "c");
  r.min_create_revision = 0;
  r.max_create_revision = 3;
  CHECK(keys() == "ab");
  // count ignores the filters, as etcd's does.
  CHECK(h.range(r).count == 3);
}

TEST_CASE("kv range: keys of expired leases are filtered before the revoke is applied") {
  Harness h;
  const LeaseId lease = h.grant(10).id;
  h.put("held", "v", lease);
  h.put("free", "v");
  std::set<LeaseId> expired{lease};
  ExpiredPredicate is_expired = [&](LeaseId id) { return expired.contains(id); };
  RangeRequest r;
  r.key = "a";
  r.range_end = "z";
  auto resp = h.range(r, is_expired);
  REQUIRE(resp.kvs.size() == 1);
  CHECK(resp.kvs[0].key == "free");
  CHECK(resp.count == 1);
  // A point read too.
  RangeRequest p;
  p.key = "held";
  CHECK(h.range(p, is_expired).kvs.empty());
  // Without the predicate (a follower, or before expiry) the key is there.
  CHECK(h.range(p).kvs.size() == 1);
  // A read of the past shows the past.
  p.revision = h.sm->current_revision();
  CHECK(h.range(p, is_expired).kvs.empty());
  p.revision = h.sm->current_revision() - 1;
  CHECK(h.range(p, is_expired).kvs.size() == 1);
}

TEST_CASE("kv mvcc: a key with many versions is read correctly at every revision") {
  Harness h;
  // More versions than scan_visible skips linearly, so the seek paths run.
  for (int i = 0; i < 40; ++i) {
    h.put("hot", std::to_string(i));
    if (i % 10 == 0) h.put("z" + std::to_string(i), "x");
  }
  h.put("cold", "c");
  const Revision cur = h.sm->current_revision();
  int expected = -1;
  int seen = 0;
  for (Revision rev = 2; rev <= cur; ++rev) {
    auto resp = h.get("a", "zzzz", rev);
    for (const auto& kv : resp.kvs) {
      if (kv.key == "hot") {
        CHECK(std::stoi(kv.value) >= expected);
        expected = std::stoi(kv.value);
        CHECK(kv.version == expected + 1);
        ++seen;
      }
    }
  }
  CHECK(expected == 39);
  CHECK(seen == static_cast<int>(cur - 1));
  CHECK(h.keys("a", "zzzz") == std::vector<std::string>{"cold", "hot", "z0", "z10", "z20", "z30"});
}

TEST_CASE("kv put: prev_kv, ignore_value, ignore_lease and their errors") {
  Harness h;
  const LeaseId lease = h.grant(30).id;
  PutRequest p;
  p.key = "k";
  p.value = "v";
  p.ignore_value = true;
  p.value.clear();
  auto missing = h.run(p);
  CHECK(error_text(missing) == "etcdserver: key not found");
  h.put("k", "v", lease);
  auto before = h.sm->current_revision();
  auto r = h.ok<PutResponse>(p);  // ignore_value: keeps "v", drops nothing else
  CHECK(r.header.revision == before + 1);
  auto kv = h.get("k").kvs.at(0);
  CHECK(kv.value == "v");
  CHECK(kv.lease == 0);  // lease not ignored: put without lease detaches
  CHECK(h.sm->lease_time_to_live({lease, true}).keys.empty());
  h.put("k", "w", lease);
  PutRequest keep_lease;
  keep_lease.key = "k";
  keep_lease.value = "x";
  keep_lease.ignore_lease = true;
  h.ok<PutResponse>(keep_lease);
  kv = h.get("k").kvs.at(0);
  CHECK(kv.value == "x");
  CHECK(kv.lease == lease);
  // Validation errors.
  PutRequest both;
  both.key = "k";
  both.value = "x";
  both.ignore_value = true;
  CHECK(error_text(h.run(both)) == "etcdserver: value is provided");
  PutRequest lease_given;
  lease_given.key = "k";
  lease_given.lease = lease;
  lease_given.ignore_lease = true;
  CHECK(error_text(h.run(lease_given)) == "etcdserver: lease is provided");
  PutRequest no_key;
  CHECK(error_text(h.run(no_key)) == "etcdserver: key is not provided");
  auto unknown = h.run(PutRequest{"k", "v", 12345});
  REQUIRE(!unknown);
  CHECK(unknown.error() == errc::not_found);
  CHECK(unknown.error().detail == "etcdserver: requested lease not found");
  CHECK(grpc_status(unknown.error()) == grpc_code::not_found);
  // Failed puts did not change the revision.
  CHECK(h.sm->current_revision() == kv.mod_revision);
}

TEST_CASE("kv mvcc: the newest-version index answers as the store does, through every change") {
  // MvccStore::get_newest (the index a put consults) against get at the read revision (the
  // store), after random puts, deletes, compactions, commits, discarded scopes and a
  // restore-like rewrite of the store behind the index.
  memory::KvStore store;
  MvccStore<memory::KvStore> mvcc(store);
  REQUIRE(mvcc.load());
  std::mt19937_64 rng(7);
  const std::vector<std::string> keys = {"a", "b", "c", std::string("d\0e", 3), "f"};
  LogIndex applied = 0;
  auto check_all = [&] {
    for (const std::string& k : keys) {
      auto from_store = mvcc.get(k, mvcc.read_revision());
      auto from_index = mvcc.get_newest(k);
      REQUIRE(from_store);
      REQUIRE(from_index);
      CHECK(from_index.value() == from_store.value());
    }
  };
  for (int step = 0; step < 3000; ++step) {
    const std::string& k = keys[rng() % keys.size()];
    const auto roll = rng() % 100;
    if (roll < 60) {
      mvcc.begin_write();
      auto prev = mvcc.get_newest(k);
      REQUIRE(prev);
      mvcc.put(k, "v" + std::to_string(step), no_lease, std::move(prev).value());
      mvcc.end_write();
    } else if (roll < 80) {
      auto prev = mvcc.get_newest(k);
      REQUIRE(prev);
      if (prev.value()) {
        mvcc.begin_write();
        mvcc.remove(*prev.value());
        mvcc.end_write();
      }
    } else if (roll < 88) {
      REQUIRE(mvcc.buffer().commit(++applied));
    } else if (roll < 93) {
      // A failed batch: its writes are dropped and the state reloaded from the store.
      REQUIRE(mvcc.load());
    } else if (roll < 97) {
      REQUIRE(mvcc.buffer().commit(++applied));
      if (mvcc.current_revision() > mvcc.compacted_revision())
        REQUIRE(mvcc.compact(mvcc.current_revision()));
    } else {
      // The store replaced behind the index (as a snapshot restore does), then reloaded.
      REQUIRE(mvcc.buffer().commit(++applied));
      memory::KvStore other;
      MvccStore<memory::KvStore> writer(other);
      REQUIRE(writer.load());
      writer.begin_write();
      writer.put(k, "restored", no_lease, std::nullopt);
      writer.end_write();
      REQUIRE(writer.buffer().commit(1));
      REQUIRE(store.clear(0));
      REQUIRE(other.scan("", "", [&](std::string_view key, std::string_view value) {
        WriteBatch b;
        b.put(std::string(key), std::string(value));
        return store.write(b, 1).has_value();
      }));
      applied = 1;
      REQUIRE(mvcc.load());
    }
    check_all();
  }
}
