// KvStateMachine: apply batches, entry types, deterministic failures, atomic batches, storage
// failures, snapshot/restore, restart recovery.

#include "kv_test_support.hpp"

#include <random>

using namespace kvtest;

namespace {

const std::string all(1, '\0');

// A deterministic mixed workload: puts, deletes, txns, leases, revokes, a compaction.
template <class H>
void workload(H& h, int ops, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<LeaseId> leases;
  for (int i = 0; i < ops; ++i) {
    const std::string key = "key" + std::to_string(rng() % 12);
    switch (rng() % 7) {
      case 0: h.del(key); break;
      case 1: {
        TxnRequest t;
        t.compare.push_back(cmp(key, CompareTarget::version, CompareResult::greater, 0));
        const std::string other = "key" + std::to_string(rng() % 12);
        t.success = {op_put(key, "s" + std::to_string(i))};
        if (other != key) t.success.push_back(op_del(other));
        t.failure = {op_put(key, "f" + std::to_string(i))};
        h.txn(t);
        break;
      }
      case 2: leases.push_back(h.grant(30 + static_cast<int>(rng() % 30)).id); break;
      case 3:
        if (!leases.empty()) {
          h.put(key, "leased", leases[rng() % leases.size()]);
          break;
        }
        [[fallthrough]];
      case 4:
        if (!leases.empty() && rng() % 3 == 0) {
          h.template ok<LeaseRevokeResponse>(LeaseRevokeRequest{leases.back()});
          leases.pop_back();
          break;
        }
        [[fallthrough]];
      default: h.put(key, std::string(rng() % 40, 'v') + std::to_string(i)); break;
    }
  }
}

// Every range answer at every readable revision, plus the leases.
template <class H>
std::vector<std::string> fingerprint(H& h) {
  std::vector<std::string> out;
  const Revision cur = h.sm->current_revision();
  out.push_back("rev " + std::to_string(cur) + " compacted " +
                std::to_string(h.sm->compacted_revision()));
  for (Revision rev = std::max<Revision>(1, h.sm->compacted_revision()); rev <= cur; ++rev) {
    std::string s = std::to_string(rev) + ":";
    for (const auto& kv : h.get(all, all, rev).kvs) {
      s += kv.key + "=" + kv.value + "/" + std::to_string(kv.create_revision) + "/" +
           std::to_string(kv.mod_revision) + "/" + std::to_string(kv.version) + "/" +
           std::to_string(kv.lease) + ";";
    }
    out.push_back(s);
  }
  for (const auto& l : h.sm->lease_leases().leases) {
    auto ttl = h.sm->lease_time_to_live({l.id, true});
    std::string s = "lease " + std::to_string(l.id) + " ttl " + std::to_string(ttl.granted_ttl);
    for (const auto& k : ttl.keys) s += " " + k;
    out.push_back(s);
  }
  return out;
}

std::vector<Event> events_of_helper(const std::vector<WatchResponse>& responses) {
  std::vector<Event> out;
  for (const auto& r : responses) out.insert(out.end(), r.events.begin(), r.events.end());
  return out;
}

}  // namespace

TEST_CASE("kv state machine: noop and config-change entries answer empty responses") {
  Harness h;
  auto r = h.run_raw("", EntryType::noop);
  REQUIRE(r);
  CHECK(std::holds_alternative<std::monostate>(r.value()));
  r = h.run_raw("whatever bytes", EntryType::config_change);
  REQUIRE(r);
  CHECK(std::holds_alternative<std::monostate>(r.value()));
  r = h.run_raw("");  // an empty normal entry: etcd-raft's leader no-op
  REQUIRE(r);
  CHECK(std::holds_alternative<std::monostate>(r.value()));
  CHECK(h.sm->applied_index() == 3);
  CHECK(h.sm->current_revision() == 1);
}

TEST_CASE("kv state machine: a malformed entry gets the same error on every replica and applies") {
  Harness a;
  Harness b;
  for (auto* h : {&a, &b}) {
    auto r = h->run_raw("\x01\x63garbage");
    REQUIRE(!r);
    CHECK(r.error() == errc::invalid_argument);
    CHECK(r.error().detail.find("kv apply: entry 1: kv command: unknown command tag") == 0);
    CHECK(h->sm->applied_index() == 1);
    h->put("after", "ok");
    CHECK(h->sm->applied_index() == 2);
  }
  CHECK(a.run_raw("\x01").error().detail == b.run_raw("\x01").error().detail);
  CHECK(a.run_raw("\x01\x02\x05k").error().detail == b.run_raw("\x01\x02\x05k").error().detail);
}

TEST_CASE("kv state machine: a batch applies in order, each entry seeing the ones before") {
  Harness h;
  auto out = h.run_batch({PutRequest{"a", "1"}, PutRequest{"a", "2", 0, true},
                          DeleteRangeRequest{"a", "", true}, LeaseGrantRequest{10, 5},
                          PutRequest{"b", "1", 5}, PutRequest{"c", "1", 999}});
  REQUIRE(out.size() == 6);
  CHECK(std::get<PutResponse>(out[0].value()).header.revision == 2);
  CHECK(std::get<PutResponse>(out[1].value()).prev_kv->value == "1");
  CHECK(std::get<DeleteRangeResponse>(out[2].value()).prev_kvs.at(0).value == "2");
  CHECK(std::get<PutResponse>(out[4].value()).header.revision == 5);
  REQUIRE(!out[5]);
  CHECK(out[5].error() == errc::not_found);
  CHECK(h.sm->applied_index() == 6);
  CHECK(h.store.applied_index() == 6);
  CHECK(h.store.write_count() == 1);  // one KvStore write for the whole batch
}

TEST_CASE("kv state machine: entries must follow the applied index") {
  Harness h;
  h.put("a", "1");
  std::vector<Entry> gap{Entry{1, 5, EntryType::noop, ""}};
  std::vector<result<Response>> out;
  auto r = h.sm->apply(gap, out);
  REQUIRE(!r);
  CHECK(r.error().detail.find("entry index 5 where 2 was expected") != std::string::npos);
  std::vector<Entry> replay{Entry{1, 1, EntryType::noop, ""}};
  CHECK(!h.sm->apply(replay, out));
  CHECK(out.empty());
}

TEST_CASE("kv state machine: a storage failure fails the batch and changes nothing") {
  Harness<FlakyStore> h;
  h.put("a", "1");
  const LeaseId lease = h.grant(30).id;
  auto before = fingerprint(h);
  auto watcher = h.sm->watch_hub().watch({all, all, 0, false, {}, false});
  REQUIRE(watcher);
  watcher.value()->take();
  h.store.fail_writes = true;
  std::vector<Entry> batch{
      Entry{1, h.next_index, EntryType::normal, encode_command(PutRequest{"b", "2", lease})},
      Entry{1, h.next_index + 1, EntryType::normal, encode_command(LeaseRevokeRequest{lease})}};
  std::vector<result<Response>> out;
  auto r = h.sm->apply(batch, out);
  REQUIRE(!r);
  CHECK(r.error() == errc::no_space);
  CHECK(out.empty());
  h.store.fail_writes = false;
  CHECK(fingerprint(h) == before);
  CHECK(h.sm->applied_index() == h.next_index - 1);
  CHECK(watcher.value()->take().empty());  // no event of the failed batch was published
  // The same batch applies once the store works again.
  REQUIRE(h.sm->apply(batch, out));
  h.next_index += 2;
  CHECK(h.get("b").kvs.empty());  // put then revoked
  // A read failure in the middle of a batch is a storage failure too.
  h.store.fail_reads = true;
  std::vector<Entry> next{
      Entry{1, h.next_index, EntryType::normal, encode_command(PutRequest{"c", "1"})}};
  CHECK(!h.sm->apply(next, out));
  h.store.fail_reads = false;
  REQUIRE(h.sm->apply(next, out));
  CHECK(h.get("c").kvs.size() == 1);
}

TEST_CASE("kv state machine: snapshot then restore into a fresh store gives identical reads") {
  KvOptions small_chunks;
  small_chunks.snapshot_chunk_bytes = 256;  // many chunks
  small_chunks.restore_batch_bytes = 512;   // many restore batches
  Harness src(small_chunks);
  workload(src, 400, 1);
  src.ok<CompactionResponse>(CompactionRequest{src.sm->current_revision() / 2});
  workload(src, 100, 2);
  const auto expected = fingerprint(src);

  StringSnapshotSink sink;
  auto snap = src.sm->snapshot(sink);
  REQUIRE(snap);
  CHECK(snap.value() == src.sm->applied_index());

  Harness dst(small_chunks);
  dst.put("stale", "x");  // replaced by the restore
  StringSnapshotSource source(sink.data);
  auto restored = dst.sm->restore(source);
  REQUIRE(restored);
  CHECK(restored.value() == src.sm->applied_index());
  CHECK(dst.sm->applied_index() == src.sm->applied_index());
  CHECK(fingerprint(dst) == expected);
  CHECK(dst.get("stale").kvs.empty());
  // Both continue identically.
  dst.next_index = src.next_index;
  workload(src, 50, 3);
  workload(dst, 50, 3);
  CHECK(fingerprint(dst) == fingerprint(src));
  // And a restarted copy of the restored store too.
  dst.open(small_chunks);
  CHECK(fingerprint(dst) == fingerprint(src));
}

TEST_CASE("kv state machine: restart over the same store recovers everything") {
  Harness h;
  workload(h, 300, 9);
  h.ok<CompactionResponse>(CompactionRequest{h.sm->current_revision() - 20});
  const auto expected = fingerprint(h);
  const LogIndex applied = h.sm->applied_index();
  h.open();  // a new KvStateMachine over the same KvStore
  CHECK(h.sm->applied_index() == applied);
  CHECK(fingerprint(h) == expected);
  // It continues from where it was: revision, lease ids, compaction all recovered.
  const Revision rev = h.sm->current_revision();
  CHECK(h.put("next", "1").header.revision == rev + 1);
  auto compacted = h.run(CompactionRequest{h.sm->compacted_revision()});
  REQUIRE(!compacted);
  CHECK(compacted.error() == errc::compacted);
  auto leases = h.sm->lease_infos();
  if (!leases.empty()) {
    auto dup = h.run(LeaseGrantRequest{10, leases.front().id});
    REQUIRE(!dup);
    CHECK(dup.error().detail == "etcdserver: lease already exists");
  }
}

TEST_CASE("kv state machine: restore rejects damaged snapshots") {
  Harness src;
  workload(src, 80, 4);
  StringSnapshotSink sink;
  REQUIRE(src.sm->snapshot(sink));
  const std::string good = sink.data;

  SUBCASE("bad header: refused before anything changes") {
    Harness dst;
    dst.put("keep", "1");
    std::string bad = good;
    bad[0] = 'X';
    StringSnapshotSource source(bad);
    auto r = dst.sm->restore(source);
    REQUIRE(!r);
    CHECK(r.error() == errc::storage_corrupt);
    CHECK(dst.get("keep").kvs.size() == 1);
    CHECK(dst.sm->applied_index() == 1);
  }
  SUBCASE("every truncation fails and leaves an empty, consistent state") {
    for (std::size_t n = 16; n < good.size(); n += 7) {
      Harness dst;
      dst.put("old", "1");
      StringSnapshotSource source(std::string_view(good).substr(0, n));
      auto r = dst.sm->restore(source);
      REQUIRE(!r);
      CHECK(r.error() == errc::storage_corrupt);
      CHECK(dst.sm->applied_index() == 0);
      CHECK(dst.sm->current_revision() == 1);
      CHECK(dst.get(all, all).kvs.empty());
    }
  }
  SUBCASE("a flipped byte is caught by the checksum or the framing") {
    std::mt19937 rng(5);
    for (int i = 0; i < 50; ++i) {
      std::string bad = good;
      const std::size_t at = 16 + rng() % (bad.size() - 16);
      bad[at] = static_cast<char>(bad[at] ^ (1 + rng() % 255));
      Harness dst;
      StringSnapshotSource source(bad);
      auto r = dst.sm->restore(source);
      CHECK_FALSE(r);
    }
  }
  SUBCASE("trailing bytes") {
    Harness dst;
    std::string bad = good + "x";
    StringSnapshotSource source(bad);
    CHECK(!dst.sm->restore(source));
  }
}

TEST_CASE("kv state machine: a store left mid-restore is cleared on open") {
  memory::KvStore store;
  WriteBatch half;
  half.put(std::string(keyspace::meta_restoring), "");
  half.put("m/revision", keyspace::encode_u64(50));
  REQUIRE(store.write(half, 0));
  auto sm = KvStateMachine<memory::KvStore>::open(store);
  REQUIRE(sm);
  CHECK(sm.value()->applied_index() == 0);
  CHECK(sm.value()->current_revision() == 1);
  CHECK(store.size() == 0);
}

TEST_CASE("kv state machine: corrupt stored data is reported, not trusted") {
  memory::KvStore store;
  WriteBatch bad;
  bad.put("m/revision", "short");
  REQUIRE(store.write(bad, 3));
  auto sm = KvStateMachine<memory::KvStore>::open(store);
  REQUIRE(!sm);
  CHECK(sm.error() == errc::storage_corrupt);
  CHECK(sm.error().detail.find("revision") != std::string::npos);
}

TEST_CASE("kv state machine: restore cancels watchers that had not reached the image") {
  Harness src;
  for (int i = 0; i < 10; ++i) src.put("k", std::to_string(i));
  StringSnapshotSink sink;
  REQUIRE(src.sm->snapshot(sink));
  Harness dst;
  dst.put("k", "x");  // rev 2
  auto w = dst.sm->watch_hub().watch({"k", "", 0, false, {}, false});
  REQUIRE(w);
  w.value()->take();
  StringSnapshotSource source(sink.data);
  REQUIRE(dst.sm->restore(source));
  auto responses = w.value()->take();
  REQUIRE(responses.size() == 1);
  CHECK(responses[0].canceled);
  CHECK(responses[0].compact_revision == src.sm->current_revision() + 1);
  // New watches start from the restored revision.
  auto fresh = dst.sm->watch_hub().watch({"k", "", 0, false, {}, false});
  REQUIRE(fresh);
  dst.next_index = src.next_index;
  dst.put("k", "new");
  auto ev = events_of_helper(fresh.value()->take());
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].kv.mod_revision == src.sm->current_revision() + 1);
}

TEST_CASE("kv docs/kv.md example behaves as documented") {
  memory::KvStore store;
  auto sm = KvStateMachine<memory::KvStore>::open(store).value();
  auto watcher =
      sm->watch_hub().watch({.key = "app/", .range_end = "app0", .prev_kv = true}).value();

  auto data = encode_proposal(PutRequest{.key = "app/config", .value = "v1"}).value();
  std::vector<Entry> committed{
      Entry{.term = 1, .index = 1, .type = EntryType::normal, .data = data}};
  std::vector<result<Response>> responses;
  sm->apply(committed, responses).value();
  auto put = std::get<PutResponse>(responses[0].value());
  CHECK(put.header.revision == 2);

  auto got = sm->range(RangeRequest{.key = "app/", .range_end = "app0"}).value();
  REQUIRE(got.kvs.size() == 1);
  CHECK(got.kvs[0] == KeyValue{"app/config", 2, 2, 1, "v1", 0});
  auto out = watcher->take();
  REQUIRE(out.size() == 2);
  CHECK(out[0].created);
  REQUIRE(out[1].events.size() == 1);
  CHECK(out[1].events[0].kv.mod_revision == 2);
}
