// Leases (replicated state) and the Lessor (leader-side expiry).

#include "kv_test_support.hpp"

#include <chrono>

using namespace kvtest;
using namespace std::chrono_literals;

namespace {
Lessor::time_point at(std::chrono::milliseconds ms) { return Lessor::time_point(ms); }
}  // namespace

TEST_CASE("kv lease: grant with an id, with id 0, duplicates, too large TTL") {
  Harness h;
  auto g = h.grant(30, 42);
  CHECK(g.id == 42);
  CHECK(g.ttl == 30);
  auto dup = h.run(LeaseGrantRequest{30, 42});
  REQUIRE(!dup);
  CHECK(dup.error().detail == "etcdserver: lease already exists");
  CHECK(grpc_status(dup.error()) == grpc_code::failed_precondition);
  auto big = h.run(LeaseGrantRequest{max_lease_ttl + 1, 0});
  REQUIRE(!big);
  CHECK(big.error().detail == "etcdserver: too large lease TTL");
  CHECK(grpc_status(big.error()) == grpc_code::out_of_range);
  auto neg = h.run(LeaseGrantRequest{30, -5});
  REQUIRE(!neg);
  CHECK(neg.error() == errc::invalid_argument);
  // id 0: assigned from the log index, the same on every replica.
  Harness other;
  while (other.next_index < h.next_index)
    CHECK(std::holds_alternative<std::monostate>(other.run_raw("", EntryType::noop).value()));
  const LeaseId a = h.grant(30).id;
  const LeaseId b = other.grant(30).id;
  CHECK(a > 0);
  CHECK(a == b);
  CHECK(h.grant(30).id != a);
  auto list = h.sm->lease_leases();
  CHECK(list.leases.size() == 3);
}

TEST_CASE("kv lease: an assigned id never collides with an existing one") {
  memory::KvStore store;
  KvCore<memory::KvStore> core(store);
  REQUIRE(core.load());
  const LeaseId expected = core.leases().assign_id(7);
  REQUIRE(core.lease_grant({10, expected}, 1));
  auto g = core.lease_grant({10, 0}, 7);
  REQUIRE(g);
  CHECK(g.value().id == expected + 1);
}

TEST_CASE("kv lease: revoke deletes every attached key in one revision") {
  Harness h;
  const LeaseId lease = h.grant(60).id;
  h.put("a", "1", lease);
  h.put("b", "1", lease);
  h.put("c", "1", lease);
  h.put("other", "1");
  h.put("c", "2");  // re-put without the lease: detached
  auto ttl = h.sm->lease_time_to_live({lease, true});
  CHECK(ttl.granted_ttl == 60);
  CHECK(ttl.ttl == 60);
  CHECK(ttl.keys == std::vector<std::string>{"a", "b"});
  const Revision before = h.sm->current_revision();
  auto watcher = h.sm->watch_hub().watch({"a", "z", 0, false, {}, true});
  REQUIRE(watcher);
  auto r = h.ok<LeaseRevokeResponse>(LeaseRevokeRequest{lease});
  CHECK(r.header.revision == before + 1);
  CHECK(h.get("a").kvs.empty());
  CHECK(h.get("b").kvs.empty());
  CHECK(h.get("c").kvs.size() == 1);
  CHECK(h.get("other").kvs.size() == 1);
  CHECK(h.sm->lease_time_to_live({lease, true}).ttl == -1);
  CHECK(h.sm->lease_leases().leases.empty());
  // Two DELETE events, both at the revoke's revision.
  auto responses = watcher.value()->take();
  std::vector<Event> events;
  for (auto& resp : responses) events.insert(events.end(), resp.events.begin(), resp.events.end());
  REQUIRE(events.size() == 2);
  for (const auto& e : events) {
    CHECK(e.type == EventType::del);
    CHECK(e.kv.mod_revision == before + 1);
    REQUIRE(e.prev_kv);
    CHECK(e.prev_kv->lease == lease);
  }
  // Revoking again: not found.
  auto again = h.run(LeaseRevokeRequest{lease});
  REQUIRE(!again);
  CHECK(again.error().detail == "etcdserver: requested lease not found");
  // A lease without keys revokes without a new revision.
  const LeaseId empty = h.grant(5).id;
  CHECK(h.ok<LeaseRevokeResponse>(LeaseRevokeRequest{empty}).header.revision == before + 1);
}

TEST_CASE("kv lease: deleting a key detaches it") {
  Harness h;
  const LeaseId lease = h.grant(60).id;
  h.put("a", "1", lease);
  h.del("a");
  CHECK(h.sm->lease_time_to_live({lease, true}).keys.empty());
  const Revision before = h.sm->current_revision();
  h.ok<LeaseRevokeResponse>(LeaseRevokeRequest{lease});
  CHECK(h.sm->current_revision() == before);
}

TEST_CASE("kv lessor: expiry, keep-alive and retries") {
  Lessor lessor(LessorOptions{2s, 1000ms, 3000ms});
  const std::vector<LeaseInfo> none;
  CHECK(!lessor.is_primary());
  CHECK(lessor.expired(at(0ms)).empty());
  CHECK(!lessor.keep_alive(1, at(0ms)));
  CHECK(lessor.keep_alive(1, at(0ms)).error() == errc::not_leader);
  lessor.promote(at(0ms), none);
  CHECK(lessor.is_primary());
  // A grant applied while primary starts counting at the next call that knows the time.
  lessor.on_applied(std::vector<LeaseChange>{{LeaseChange::Kind::granted, 1, 10}});
  CHECK(!lessor.is_expired(1, at(100ms)));  // clock starts at 100 ms → deadline 10.1 s
  CHECK(lessor.remaining_ttl(1, at(100ms)) == 10);
  CHECK(lessor.remaining_ttl(1, at(5100ms)) == 5);
  CHECK(lessor.expired(at(10'000ms)).empty());
  CHECK(!lessor.is_expired(1, at(10'099ms)));
  // Keep-alive at 9 s: full TTL again from there.
  auto ka = lessor.keep_alive(1, at(9000ms));
  REQUIRE(ka);
  CHECK(ka.value() == 10);
  CHECK(lessor.expired(at(18'999ms)).empty());
  CHECK(!lessor.is_expired(1, at(18'999ms)));
  auto gone = lessor.expired(at(19'000ms));
  CHECK(gone == std::vector<LeaseId>{1});
  CHECK(lessor.is_expired(1, at(19'000ms)));
  CHECK(lessor.remaining_ttl(1, at(19'000ms)) == -1);
  // Returned once, then again only after revoke_retry if its revoke did not land...
  CHECK(lessor.expired(at(20'000ms)).empty());
  CHECK(lessor.expired(at(22'000ms)) == std::vector<LeaseId>{1});
  CHECK(lessor.expired(at(22'500ms)).empty());
  // ...or at once when its proposal is known to have failed.
  lessor.revoke_failed(1);
  CHECK(lessor.expired(at(22'600ms)) == std::vector<LeaseId>{1});
  CHECK(lessor.expired(at(22'700ms)).empty());
  lessor.revoke_failed(99);  // unknown: ignored
  // An expired lease cannot be kept alive (its revoke is on the way).
  auto late = lessor.keep_alive(1, at(22'000ms));
  REQUIRE(!late);
  CHECK(late.error() == errc::not_found);
  // The revoke is applied: forgotten.
  lessor.on_applied(std::vector<LeaseChange>{{LeaseChange::Kind::revoked, 1, 0}});
  CHECK(lessor.size() == 0);
  CHECK(lessor.expired(at(60'000ms)).empty());
  CHECK(!lessor.is_expired(1, at(60'000ms)));
}

TEST_CASE("kv lessor: min TTL raising, expiry order and the per-call limit") {
  Lessor lessor(LessorOptions{5s, 0ms, 3000ms});
  LeaseGrantRequest g{1, 0};
  lessor.prepare_grant(g);
  CHECK(g.ttl == 5);
  LeaseGrantRequest long_one{50, 0};
  lessor.prepare_grant(long_one);
  CHECK(long_one.ttl == 50);
  // A lease recorded with a TTL below the minimum still lives the minimum.
  const std::vector<LeaseInfo> leases{{1, 1}, {2, 30}, {3, 10}};
  lessor.promote(at(0ms), leases);
  CHECK(lessor.remaining_ttl(1, at(0ms)) == 5);
  CHECK(lessor.expired(at(4999ms)).empty());
  CHECK(lessor.expired(at(60'000ms), 2) == std::vector<LeaseId>{1, 3});
  CHECK(lessor.expired(at(60'000ms), 2) == std::vector<LeaseId>{2});
}

TEST_CASE("kv lessor: promote refreshes every lease to its full TTL; demote forgets") {
  Harness h;
  Lessor lessor(LessorOptions{1s, 1000ms, 3000ms});
  h.sm->set_lessor(&lessor);
  const LeaseId a = h.grant(10).id;  // not primary yet: not tracked
  CHECK(lessor.size() == 0);
  lessor.promote(at(50'000ms), h.sm->lease_infos());
  CHECK(lessor.size() == 1);
  // Full TTL plus the promote extension, from the promotion.
  CHECK(lessor.remaining_ttl(a, at(50'000ms)) == 11);
  CHECK(lessor.expired(at(60'999ms)).empty());
  CHECK(lessor.expired(at(61'000ms)) == std::vector<LeaseId>{a});
  // Applied grants and revokes reach the attached lessor.
  const LeaseId b = h.grant(20).id;
  CHECK(lessor.size() == 2);
  h.ok<LeaseRevokeResponse>(LeaseRevokeRequest{a});
  CHECK(lessor.size() == 1);
  CHECK(lessor.remaining_ttl(b, at(61'000ms)) == 20);
  // Leadership moves away and back: the new term refreshes again.
  lessor.demote();
  CHECK(!lessor.is_primary());
  CHECK(!lessor.is_expired(b, at(999'000ms)));
  CHECK(lessor.expired(at(999'000ms)).empty());
  lessor.promote(at(999'000ms), h.sm->lease_infos());
  CHECK(lessor.remaining_ttl(b, at(999'000ms)) == 21);
  CHECK(!lessor.is_expired(b, at(999'000ms)));
  h.sm->set_lessor(nullptr);
}

TEST_CASE("kv lease: an expired key is hidden until the leader's revoke removes it") {
  Harness h;
  Lessor lessor(LessorOptions{1s, 0ms, 3000ms});
  h.sm->set_lessor(&lessor);
  lessor.promote(at(0ms), h.sm->lease_infos());
  const LeaseId lease = h.grant(5).id;
  h.put("session", "alive", lease);
  auto now = at(1000ms);
  ExpiredPredicate expired = [&](LeaseId id) { return lessor.is_expired(id, now); };
  RangeRequest r;
  r.key = "session";
  CHECK(h.range(r, expired).kvs.size() == 1);  // clock started at 1 s → deadline 6 s
  now = at(6000ms);
  CHECK(h.range(r, expired).kvs.empty());  // expired, not yet revoked
  CHECK(h.range(r).kvs.size() == 1);       // the replicated state still has it
  // The leader proposes the revoke; once applied the key is gone for everyone.
  for (LeaseId id : lessor.expired(now)) h.ok<LeaseRevokeResponse>(LeaseRevokeRequest{id});
  CHECK(h.range(r).kvs.empty());
  CHECK(lessor.size() == 0);
  h.sm->set_lessor(nullptr);
}
