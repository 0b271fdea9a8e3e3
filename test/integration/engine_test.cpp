// EmbeddedEngine and LocalKvClient end to end, in the threaded arrangement, over every backend
// that is built (the list comes from meson: DENGINE_TEST_BACKENDS): KV operations in every read
// consistency, leases and their expiry, watches, restart, stop with requests pending, bad input,
// and growing a single node into a three-node cluster while it serves writes.

#include <doctest/doctest.h>

#include <boost/asio/use_future.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../backends/built_backends.hpp"
#include "dengine/backends/memory.hpp"
#include "dengine/conformance/temp_dir.hpp"
#include "dengine/engine/embedded_engine.hpp"
#include "dengine/engine/kv_client.hpp"
#include "dengine/engine/kv_replica.hpp"
#include "engine_harness.hpp"
#include "harness.hpp"

namespace dengine::test {
namespace {

using engine::EngineConfig;
using engine::ReadConsistency;
namespace fs = std::filesystem;

static_assert(engine::Backend<memory::Backend>);
static_assert(engine::KvClient<engine::EmbeddedEngine<memory::Backend>::client_type>);

/// Fast timing for tests (5 ms ticks) and short leases.
EngineConfig fast_config(const fs::path& dir, NodeId id = 1, std::vector<NodeId> members = {1}) {
  EngineConfig c = EngineConfig::cluster_member(dir, id, std::move(members));
  c.node = test_config(id, c.node.initial_members);
  c.lessor.min_ttl = std::chrono::seconds(1);
  c.lessor.promote_extend = std::chrono::milliseconds(100);
  c.housekeeping_interval = std::chrono::milliseconds(10);
  c.progress_notify_interval = std::chrono::milliseconds(50);
  return c;
}

#define DENGINE_ENGINE_BACKENDS memory::Backend DENGINE_TEST_EXTRA_BACKENDS

}  // namespace

TEST_SUITE("engine") {
  TEST_CASE_TEMPLATE("engine: put, get, delete, txn and compare-and-swap in every consistency", B,
                     DENGINE_ENGINE_BACKENDS) {
    TempDir dir;
    auto e = start_ready<B>(fast_config(dir.path()));
    auto kv = e->client();
    CHECK(e->is_leader());
    CHECK(e->leader_info().is_self);

    auto p1 = kv.put("a", "1");
    REQUIRE(p1);
    auto p2 = kv.put("b", "2");
    REQUIRE(p2);
    CHECK(p2.value().header.revision == p1.value().header.revision + 1);
    for (auto c :
         {ReadConsistency::linearizable, ReadConsistency::lease, ReadConsistency::serializable}) {
      CAPTURE(node::to_string(c));
      auto got = kv.get("a", c);
      REQUIRE(got);
      REQUIRE(got.value().has_value());
      CHECK(got.value()->value == "1");
      CHECK(got.value()->version == 1);
      CHECK(got.value()->create_revision == p1.value().header.revision);
    }
    auto missing = kv.get("nope");
    REQUIRE(missing);
    CHECK_FALSE(missing.value().has_value());

    // prev_kv on overwrite, prefix reads, deletes.
    kv::PutRequest over;
    over.key = "a";
    over.value = "1b";
    over.prev_kv = true;
    auto p3 = kv.put(over);
    REQUIRE(p3);
    REQUIRE(p3.value().prev_kv.has_value());
    CHECK(p3.value().prev_kv->value == "1");
    REQUIRE(kv.put("dir/x", "x"));
    REQUIRE(kv.put("dir/y", "y"));
    auto listed = kv.get_prefix("dir/");
    REQUIRE(listed);
    REQUIRE(listed.value().size() == 2);
    CHECK(listed.value()[0].key == "dir/x");
    CHECK(listed.value()[1].key == "dir/y");
    auto deleted = kv.delete_prefix("dir/");
    REQUIRE(deleted);
    CHECK(deleted.value().deleted == 2);
    auto d1 = kv.del("b");
    REQUIRE(d1);
    CHECK(d1.value().deleted == 1);
    CHECK_FALSE(kv.get("b").value().has_value());

    // Compare-and-swap: create-if-absent, swap on the right value only.
    auto c1 = kv.compare_and_swap("lock", std::nullopt, "me");
    REQUIRE(c1);
    CHECK(c1.value());
    auto c2 = kv.compare_and_swap("lock", std::nullopt, "you");
    REQUIRE(c2);
    CHECK_FALSE(c2.value());
    auto c3 = kv.compare_and_swap("lock", std::string("wrong"), "you");
    REQUIRE(c3);
    CHECK_FALSE(c3.value());
    auto c4 = kv.compare_and_swap("lock", std::string("me"), "you");
    REQUIRE(c4);
    CHECK(c4.value());
    CHECK(kv.get("lock").value()->value == "you");

    // A read-only txn is served as a read; a writing one through the log.
    kv::TxnRequest ro;
    kv::RangeRequest rr;
    rr.key = "lock";
    ro.success.push_back(kv::RequestOp{rr});
    auto t1 = kv.txn(ro, ReadConsistency::serializable);
    REQUIRE(t1);
    CHECK(t1.value().succeeded);
    REQUIRE(t1.value().responses.size() == 1);
    CHECK(std::get<kv::RangeResponse>(t1.value().responses[0].response).kvs.at(0).value == "you");

    // Compaction: reads below the compacted revision fail with compacted.
    const kv::Revision now_rev = kv.put("z", "z").value().header.revision;
    REQUIRE(kv.compact(now_rev));
    kv::RangeRequest old;
    old.key = "a";
    old.revision = p1.value().header.revision;
    auto below = kv.range(old);
    REQUIRE_FALSE(below);
    CHECK(below.error().code == errc::compacted);

    // Asynchronous forms: a callback and a future.
    std::promise<result<kv::PutResponse>> done;
    kv::PutRequest cb_put;
    cb_put.key = "cb";
    cb_put.value = "v";
    kv.async_put(cb_put, [&](result<kv::PutResponse> r) { done.set_value(std::move(r)); });
    REQUIRE(done.get_future().get());
    kv::RangeRequest cb_get;
    cb_get.key = "cb";
    auto fut = kv.async_range(cb_get, ReadConsistency::lease, boost::asio::use_future);
    auto fr = fut.get();
    REQUIRE(fr);
    CHECK(fr.value().kvs.at(0).value == "v");

    CHECK(e->node_metrics().proposals.value() >= 10);
    REQUIRE(e->stop());
  }

  TEST_CASE_TEMPLATE("engine: bad requests get etcd's errors and change nothing", B,
                     DENGINE_ENGINE_BACKENDS) {
    TempDir dir;
    EngineConfig cfg = fast_config(dir.path());
    cfg.limits.max_request_bytes = 1024;
    auto e = start_ready<B>(cfg);
    auto kv = e->client();
    const kv::Revision before = e->replica().machine().current_revision();
    auto empty = kv.put("", "x");
    REQUIRE_FALSE(empty);
    CHECK(empty.error().code == errc::invalid_argument);
    auto big = kv.put("k", std::string(4096, 'x'));
    REQUIRE_FALSE(big);
    CHECK(big.error().code == errc::too_large);
    auto no_lease = kv.put("k", "v", 424242);
    REQUIRE_FALSE(no_lease);
    CHECK(no_lease.error().code == errc::not_found);
    CHECK(e->replica().machine().current_revision() == before);
  }

  TEST_CASE_TEMPLATE("engine: leases expire exactly once and hide their keys", B,
                     DENGINE_ENGINE_BACKENDS) {
    TempDir dir;
    auto e = start_ready<B>(fast_config(dir.path()));
    auto kv = e->client();

    auto short_lived = kv.put_with_ttl("session", "alive", 1);
    REQUIRE(short_lived);
    CHECK(short_lived.value().ttl == 1);
    auto kept = kv.lease_grant(1);
    REQUIRE(kept);
    REQUIRE(kv.put("kept", "yes", kept.value().id));

    auto ttl = kv.lease_time_to_live(kept.value().id, true);
    REQUIRE(ttl);
    CHECK(ttl.value().granted_ttl == 1);
    CHECK(ttl.value().keys == std::vector<std::string>{"kept"});

    // Keep one lease alive while the other runs out.
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(2500);
    while (std::chrono::steady_clock::now() < until) {
      auto ka = kv.lease_keep_alive(kept.value().id);
      REQUIRE(ka);
      CHECK(ka.value() == 1);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    CHECK(eventually([&] { return !kv.get("session").value().has_value(); }));
    CHECK(eventually([&] { return e->replica().counters().lease_revokes_applied.load() == 1; }));
    CHECK(kv.get("kept").value().has_value());
    auto gone = kv.lease_keep_alive(short_lived.value().lease);
    REQUIRE_FALSE(gone);
    CHECK(gone.error().code == errc::not_found);
    auto leases = kv.lease_leases();
    REQUIRE(leases);
    REQUIRE(leases.value().leases.size() == 1);
    CHECK(leases.value().leases[0].id == kept.value().id);

    // Revoke deletes the attached key.
    REQUIRE(kv.lease_revoke(kept.value().id));
    CHECK_FALSE(kv.get("kept").value().has_value());
    CHECK(kv.lease_time_to_live(kept.value().id).value().ttl == -1);
  }

  TEST_CASE(
      "engine: a follower's keep-alives and time-to-live reach the leader's lessor; the lease "
      "lives") {
    node::LocalHub hub;  // declared first: outlives the nodes attached to it
    std::vector<std::unique_ptr<EmbeddedEngine<memory::Backend>>> nodes;
    for (NodeId id = 1; id <= 3; ++id) {
      auto e = EmbeddedEngine<memory::Backend>::start(fast_config("", id, {1, 2, 3}), &hub);
      REQUIRE_MESSAGE(e, (e ? "" : e.error().message()));
      nodes.push_back(std::move(e).value());
    }
    for (auto& n : nodes) REQUIRE(n->wait_ready(std::chrono::seconds(20)));
    std::size_t f = 0;
    while (nodes[f]->is_leader()) ++f;
    auto kv = nodes[f]->client();  // a follower's client: everything goes through the leader

    auto lease = kv.lease_grant(2);
    REQUIRE(lease);
    const kv::LeaseId id = lease.value().id;
    REQUIRE(kv.put("held", "yes", id));
    // Only this follower keeps the lease alive, for longer than its TTL: the leader's lessor
    // must have been refreshed, or housekeeping would have revoked it.
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(3500);
    while (std::chrono::steady_clock::now() < until) {
      auto ka = kv.lease_keep_alive(id);
      REQUIRE_MESSAGE(ka, (ka ? "" : ka.error().message()));
      CHECK(ka.value() == 2);
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    CHECK(kv.get("held").value().has_value());
    CHECK(nodes[f]->replica().node().node_metrics().leader_calls.value() > 10);
    auto async_ka = kv.async_lease_keep_alive(id, boost::asio::use_future).get();
    REQUIRE(async_ka);
    CHECK(async_ka.value() == 2);

    // Time left is the leader's lessor's (less than the 2 s granted once any time passed);
    // a serializable answer is this replica's own: the granted TTL.
    auto left = kv.lease_time_to_live(id, true);
    REQUIRE_MESSAGE(left, (left ? "" : left.error().message()));
    CHECK(left.value().granted_ttl == 2);
    CHECK(left.value().ttl >= 0);
    CHECK(left.value().ttl < 2);
    CHECK(left.value().keys == std::vector<std::string>{"held"});
    auto local = kv.lease_time_to_live(id, false, ReadConsistency::serializable);
    REQUIRE(local);
    CHECK(local.value().ttl == 2);

    // A lease the leader does not know: etcd's error, from the leader.
    auto unknown = kv.lease_keep_alive(id + 1000);
    REQUIRE_FALSE(unknown);
    CHECK(unknown.error().code == errc::not_found);
    CHECK(unknown.error().detail == "etcdserver: requested lease not found");

    // Once nobody keeps it alive it expires, as anywhere.
    CHECK(eventually([&] { return !kv.get("held").value().has_value(); }));
    CHECK(kv.lease_time_to_live(id).value().ttl == -1);
    auto gone = kv.lease_keep_alive(id);
    REQUIRE_FALSE(gone);
    CHECK(gone.error().code == errc::not_found);
  }

  TEST_CASE("engine: lease calls round-trip; bytes that are not one are refused, not guessed") {
    namespace lc = engine::lease_calls;
    for (lc::Kind kind : {lc::Kind::keep_alive, lc::Kind::time_left}) {
      auto req = lc::decode_request(lc::encode_request({kind, 0x0102030405060708}));
      REQUIRE(req);
      CHECK(req.value().kind == kind);
      CHECK(req.value().lease == 0x0102030405060708);
      auto ok = lc::decode_answer(kind, lc::encode_answer(kind, engine::KeepAliveAnswer{7, 3, 9}));
      REQUIRE(ok);
      CHECK(ok.value().ttl == 7);
      CHECK(ok.value().leader == 3);
      CHECK(ok.value().lessor_term == 9);
      auto err =
          lc::decode_answer(kind, lc::encode_answer(kind, error(errc::not_found,
                                                                "etcdserver: requested lease "
                                                                "not found")));
      REQUIRE_FALSE(err);
      CHECK(err.error().code == errc::not_found);
      CHECK(err.error().detail == "etcdserver: requested lease not found");
    }
    for (const std::string& bad :
         {std::string(), std::string(9, '\0'), std::string("\x03") + std::string(8, 'x'),
          std::string("\x01") + std::string(7, 'x')}) {
      auto r = lc::decode_request(bad);
      REQUIRE_FALSE(r);
      CHECK(r.error().code == errc::invalid_argument);
    }
    const std::string answer =
        lc::encode_answer(lc::Kind::keep_alive, engine::KeepAliveAnswer{1, 1, 1});
    CHECK(lc::decode_answer(lc::Kind::time_left, answer).error() == errc::malformed);
    CHECK(lc::decode_answer(lc::Kind::keep_alive, answer.substr(0, 10)).error() == errc::malformed);
    std::string unknown_error = answer;
    unknown_error[1] = static_cast<char>(200);
    CHECK(lc::decode_answer(lc::Kind::keep_alive, unknown_error).error() == errc::malformed);
  }

  TEST_CASE("engine: with forwarding off a follower's keep-alive fails with not_leader") {
    node::LocalHub hub;  // declared first: outlives the nodes attached to it
    std::vector<std::unique_ptr<EmbeddedEngine<memory::Backend>>> nodes;
    for (NodeId id = 1; id <= 3; ++id) {
      EngineConfig cfg = fast_config("", id, {1, 2, 3});
      cfg.node.forward_proposals = false;
      auto e = EmbeddedEngine<memory::Backend>::start(cfg, &hub);
      REQUIRE_MESSAGE(e, (e ? "" : e.error().message()));
      nodes.push_back(std::move(e).value());
    }
    for (auto& n : nodes) REQUIRE(n->wait_ready(std::chrono::seconds(20)));
    std::size_t l = 0;
    while (!nodes[l]->is_leader()) ++l;
    auto lease = nodes[l]->client().lease_grant(5);
    REQUIRE(lease);
    auto& follower = *nodes[(l + 1) % 3];
    auto ka = follower.client().lease_keep_alive(lease.value().id);
    REQUIRE_FALSE(ka);
    CHECK(ka.error().code == errc::not_leader);
    CHECK(ka.error().leader_hint == nodes[l]->replica().node().id());
    CHECK(follower.replica().node().node_metrics().leader_calls.value() == 0);
  }

  TEST_CASE("engine: a read that meets an expired lease revokes it first; serializable hides") {
    TempDir dir;
    EngineConfig config = fast_config(dir.path());
    config.housekeeping_interval = std::chrono::hours(1);  // only reads revoke here
    auto e = start_ready<memory::Backend>(std::move(config));
    auto kv = e->client();
    const auto& counters = e->replica().counters();
    auto a = kv.put_with_ttl("s/a", "1", 1);
    auto b = kv.put_with_ttl("s/b", "2", 1);
    auto c = kv.put_with_ttl("lone", "3", 1);
    REQUIRE(a);
    REQUIRE(b);
    REQUIRE(c);
    REQUIRE(kv.put("s/plain", "4"));
    const kv::Revision written = e->replica().machine().current_revision();
    // Housekeeping would tell the lessor the time; here this starts the leases' clocks.
    CHECK(e->replica().remaining_ttl(a.value().lease) == 1);
    std::this_thread::sleep_for(std::chrono::milliseconds(1300));  // past every deadline

    // Serializable: hidden, nothing proposed, the store unchanged.
    auto hidden = kv.get_prefix("s/", ReadConsistency::serializable);
    REQUIRE(hidden);
    REQUIRE(hidden.value().size() == 1);
    CHECK(hidden.value()[0].key == "s/plain");
    CHECK(counters.lease_revokes_proposed.load() == 0);
    CHECK(e->replica().machine().current_revision() == written);

    // Linearizable: both leases the range met are revoked (one round), then it reads again;
    // its revision is after the revokes, so no later read can see the keys return.
    kv::RangeRequest req;
    req.key = "s/";
    req.range_end = engine::prefix_range_end("s/");
    auto r = kv.range(req);
    REQUIRE(r);
    REQUIRE(r.value().kvs.size() == 1);
    CHECK(r.value().kvs[0].key == "s/plain");
    CHECK(counters.lease_revokes_proposed.load() == 2);
    CHECK(counters.lease_revokes_applied.load() == 2);
    CHECK(r.value().header.revision == written + 2);
    auto left = kv.lease_leases();  // the lease the range did not meet is still there
    REQUIRE(left);
    REQUIRE(left.value().leases.size() == 1);
    CHECK(left.value().leases[0].id == c.value().lease);

    // A lease read on the calling thread does the same.
    auto lone = kv.get("lone", ReadConsistency::lease);
    REQUIRE(lone);
    CHECK_FALSE(lone.value().has_value());
    CHECK(counters.lease_revokes_applied.load() == 3);
    CHECK(e->replica().machine().current_revision() == written + 3);
    CHECK(kv.lease_leases().value().leases.empty());
  }

  TEST_CASE("engine: a read that runs out of rounds fails with unavailable; its revokes stand") {
    TempDir dir;
    EngineConfig config = fast_config(dir.path());
    config.housekeeping_interval = std::chrono::hours(1);  // only reads revoke here
    config.max_read_rounds = 1;  // the first expired lease met is one round too many
    auto e = start_ready<memory::Backend>(std::move(config));
    auto kv = e->client();
    auto a = kv.put_with_ttl("s/a", "1", 1);
    REQUIRE(a);
    const kv::Revision written = e->replica().machine().current_revision();
    CHECK(e->replica().remaining_ttl(a.value().lease) == 1);  // starts the lease's clock
    std::this_thread::sleep_for(std::chrono::milliseconds(1300));

    auto failed = kv.get("s/a");
    REQUIRE_FALSE(failed);
    CHECK(failed.error().code == errc::unavailable);
    CHECK(failed.error().detail.find("max_read_rounds = 1") != std::string::npos);
    // The revoke it proposed was applied before it gave up, so the next read answers at once.
    CHECK(e->replica().counters().lease_revokes_applied.load() == 1);
    CHECK(e->replica().machine().current_revision() == written + 1);
    auto again = kv.get("s/a");
    REQUIRE(again);
    CHECK_FALSE(again.value().has_value());
    CHECK(e->replica().counters().lease_revokes_proposed.load() == 1);
  }

  TEST_CASE("engine: watches see every change once, in order, from a past revision") {
    TempDir dir;
    auto e = start_ready<memory::Backend>(fast_config(dir.path()));
    auto kv = e->client();
    const kv::Revision first = kv.put("w/a", "1").value().header.revision;
    REQUIRE(kv.put("w/b", "2"));
    REQUIRE(kv.put("other", "x"));

    std::atomic<int> notified{0};
    kv::WatchCreateRequest req;
    req.key = "w/";
    req.range_end = engine::prefix_range_end("w/");
    req.start_revision = first;
    req.progress_notify = true;
    auto stream = kv.watch(req, [&] { ++notified; });
    REQUIRE(stream);
    REQUIRE(kv.del("w/a"));
    REQUIRE(kv.put("w/c", "3"));

    std::vector<kv::Event> events;
    bool created = false;
    bool progress = false;
    REQUIRE(eventually([&] {
      for (auto& r : stream.value().wait(std::chrono::milliseconds(50))) {
        if (r.created) created = true;
        if (!r.created && !r.canceled && r.events.empty()) progress = true;
        for (auto& ev : r.events) events.push_back(ev);
      }
      return events.size() >= 4 && progress;
    }));
    CHECK(created);
    CHECK(notified.load() > 0);
    REQUIRE(events.size() == 4);
    CHECK(events[0].kv.key == "w/a");
    CHECK(events[1].kv.key == "w/b");
    CHECK(events[2].type == kv::EventType::del);
    CHECK(events[3].kv.key == "w/c");
    for (std::size_t i = 1; i < events.size(); ++i)
      CHECK(events[i].kv.mod_revision > events[i - 1].kv.mod_revision);

    // A watch from a compacted revision is refused with the compact revision.
    const kv::Revision now_rev = kv.put("w/d", "4").value().header.revision;
    REQUIRE(kv.compact(now_rev));
    auto late = kv.watch_prefix("w/", first);
    REQUIRE(late);
    bool refused = false;
    REQUIRE(eventually([&] {
      for (auto& r : late.value().take())
        if (r.canceled && r.compact_revision >= now_rev) refused = true;
      return refused;
    }));

    // A progress notification on demand comes after everything queued before it.
    (void)stream.value().take();
    REQUIRE(stream.value().request_progress());
    bool on_demand = false;
    REQUIRE(eventually([&] {
      for (auto& r : stream.value().take())
        if (!r.created && !r.canceled && r.events.empty() && r.header_revision >= now_rev)
          on_demand = true;
      return on_demand;
    }));

    stream.value().cancel();
    CHECK(stream.value().canceled());
    CHECK_FALSE(stream.value().request_progress());
  }

  TEST_CASE_TEMPLATE("engine: a restart recovers every acknowledged write and lease", B,
                     DENGINE_ENGINE_BACKENDS) {
    if (!B::persistent) return;  // nothing outlives the process in memory
    TempDir dir;
    kv::Revision revision = 0;
    kv::LeaseId lease = 0;
    {
      auto e = start_ready<B>(fast_config(dir.path()));
      auto kv = e->client();
      for (int i = 0; i < 200; ++i) REQUIRE(kv.put("k" + std::to_string(i), std::to_string(i)));
      REQUIRE(kv.del("k7"));
      auto g = kv.lease_grant(60);
      REQUIRE(g);
      lease = g.value().id;
      REQUIRE(kv.put("leased", "v", lease));
      revision = e->replica().machine().current_revision();
      REQUIRE(e->stop());
    }
    // The data dir is free again after stop: a second start succeeds.
    auto e = start_ready<B>(fast_config(dir.path()));
    auto kv = e->client();
    CHECK(e->replica().machine().current_revision() == revision);
    for (int i : {0, 1, 150, 199})
      CHECK(kv.get("k" + std::to_string(i)).value()->value == std::to_string(i));
    CHECK_FALSE(kv.get("k7").value().has_value());
    CHECK(kv.get("leased").value()->lease == lease);
    // The lease survived and is tracked by the new leader's lessor.
    CHECK(kv.lease_keep_alive(lease));
  }

  TEST_CASE_TEMPLATE("engine: snapshots compact the log; restart and lagging followers use them", B,
                     DENGINE_ENGINE_BACKENDS) {
    node::LocalHub hub;
    TempDir d1;
    TempDir d2;
    TempDir d3;
    std::vector<std::unique_ptr<EmbeddedEngine<B>>> nodes;
    auto config = [](const fs::path& dir, NodeId id) {
      EngineConfig c = fast_config(dir, id, {1, 2, 3});
      c.node.snapshot_threshold_bytes = 4096;  // a snapshot every few dozen puts
      return c;
    };
    int id = 0;
    for (auto* d : {&d1, &d2, &d3}) {
      auto e = EmbeddedEngine<B>::start(config(d->path(), ++id), &hub);
      REQUIRE_MESSAGE(e, (e ? "" : e.error().message()));
      nodes.push_back(std::move(e).value());
    }
    REQUIRE(eventually([&] {
      for (auto& n : nodes)
        if (n->is_leader()) return true;
      return false;
    }));
    auto leader_index = [&]() -> std::size_t {
      for (std::size_t i = 0; i < nodes.size(); ++i)
        if (nodes[i]->is_leader()) return i;
      return nodes.size();
    };
    std::size_t li = leader_index();
    REQUIRE(li < nodes.size());
    const std::size_t lagging = (li + 1) % nodes.size();
    hub.isolate(nodes[lagging]->id());
    auto kv = nodes[li]->client();
    for (int i = 0; i < 300; ++i)
      REQUIRE(
          kv.put("s" + std::to_string(i % 50), std::string(64, static_cast<char>('a' + i % 26))));
    CHECK(nodes[li]->node_metrics().snapshots_taken.value() > 0);
    const kv::Revision revision = nodes[li]->replica().machine().current_revision();
    // The isolated follower comes back behind the leader's compacted log: it gets a snapshot.
    hub.rejoin(nodes[lagging]->id());
    REQUIRE(eventually(
        [&] { return nodes[lagging]->replica().machine().current_revision() == revision; }));
    CHECK(nodes[lagging]->node_metrics().snapshots_installed.value() > 0);
    auto local = nodes[lagging]->client().get("s49", ReadConsistency::serializable);
    REQUIRE(local);
    REQUIRE(local.value().has_value());
    CHECK(local.value()->value == std::string(64, static_cast<char>('a' + 299 % 26)));

    if constexpr (B::persistent) {
      // Every node restarts from its snapshot image plus log tail, with the same state.
      std::vector<fs::path> dirs{d1.path(), d2.path(), d3.path()};
      for (auto& n : nodes) REQUIRE(n->stop());
      nodes.clear();
      for (NodeId n = 1; n <= 3; ++n) {
        auto e = EmbeddedEngine<B>::start(config(dirs[n - 1], n), &hub);
        REQUIRE_MESSAGE(e, (e ? "" : e.error().message()));
        nodes.push_back(std::move(e).value());
      }
      for (auto& n : nodes) {
        REQUIRE(eventually([&] { return n->replica().machine().current_revision() >= revision; }));
        auto got = n->client().get("s0", ReadConsistency::serializable);
        REQUIRE(got);
        REQUIRE(got.value().has_value());
      }
    }
  }

  TEST_CASE_TEMPLATE("engine: a data dir is used by one engine at a time", B,
                     DENGINE_ENGINE_BACKENDS) {
    if (!B::persistent) return;
    TempDir dir;
    auto first = start_ready<B>(fast_config(dir.path()));
    auto second = EmbeddedEngine<B>::start(fast_config(dir.path()));
    REQUIRE_FALSE(second);
    CHECK(second.error().code == errc::invalid_argument);
    CHECK(second.error().detail.find("in use") != std::string::npos);
  }

  TEST_CASE("engine: an invalid config is refused with the field named") {
    EngineConfig cfg = EngineConfig::single_node("");
    cfg.housekeeping_interval = std::chrono::milliseconds(0);
    auto e = EmbeddedEngine<memory::Backend>::start(cfg);
    REQUIRE_FALSE(e);
    CHECK(e.error().code == errc::invalid_argument);
    CHECK(e.error().detail.find("housekeeping_interval") != std::string::npos);
    EngineConfig own_service = EngineConfig::single_node("");
    own_service.callbacks.leader_service = [](NodeId, std::string_view) {
      return std::optional<std::string>();
    };
    auto refused = EmbeddedEngine<memory::Backend>::start(own_service);
    REQUIRE_FALSE(refused);
    CHECK(refused.error().detail.find("leader_service") != std::string::npos);
#ifdef DENGINE_HAVE_RAWFILE
    auto no_dir = EmbeddedEngine<rawfile::Backend>::start(EngineConfig::single_node(""));
    REQUIRE_FALSE(no_dir);
    CHECK(no_dir.error().detail.find("data_dir") != std::string::npos);
#endif
  }

  TEST_CASE("engine: an unusable data dir or config field is named in the error") {
    auto spin = EngineConfig::single_node("");
    spin.node.idle_spin = std::chrono::milliseconds(20);
    auto bad_spin = EmbeddedEngine<memory::Backend>::start(spin);
    REQUIRE_FALSE(bad_spin);
    CHECK(bad_spin.error().code == errc::invalid_argument);
    CHECK(bad_spin.error().detail.find("idle_spin") != std::string::npos);
    auto rounds = EngineConfig::single_node("");
    rounds.max_read_rounds = 0;
    auto bad_rounds = EmbeddedEngine<memory::Backend>::start(rounds);
    REQUIRE_FALSE(bad_rounds);
    CHECK(bad_rounds.error().code == errc::invalid_argument);
    CHECK(bad_rounds.error().detail.find("max_read_rounds") != std::string::npos);
#ifdef DENGINE_HAVE_RAWFILE
    TempDir dir;
    const fs::path file = dir.path() / "not-a-dir";
    { std::ofstream(file) << "x"; }
    auto on_file = EmbeddedEngine<rawfile::Backend>::start(fast_config(file));
    REQUIRE_FALSE(on_file);
    CHECK(on_file.error().code == errc::io_error);
    CHECK(on_file.error().detail.find(file.string()) != std::string::npos);
#endif
  }

  TEST_CASE("engine: blocking calls and stop() refuse to run inside a completion handler") {
    TempDir dir;
    auto e = start_ready<memory::Backend>(fast_config(dir.path()));
    auto kv = e->client();
    struct Inside {
      bool first_ok;
      result<kv::PutResponse> nested_put;
      result<void> nested_stop;
    };
    std::promise<Inside> inside;
    kv::PutRequest req;
    req.key = "k";
    req.value = "v";
    kv.async_put(req, [&](const result<kv::PutResponse>& r) {
      // Both would wait on the thread that runs this handler.
      inside.set_value(Inside{r.has_value(), kv.put("k2", "v2"), e->stop()});
    });
    auto [first_ok, nested_put, nested_stop] = inside.get_future().get();
    REQUIRE(first_ok);
    REQUIRE_FALSE(nested_put);
    CHECK(nested_put.error().code == errc::invalid_argument);
    CHECK(nested_put.error().detail.find("async_") != std::string::npos);
    REQUIRE_FALSE(nested_stop);
    CHECK(nested_stop.error().code == errc::invalid_argument);
    // The engine still serves, and stops from an ordinary thread.
    CHECK(kv.get("k").value().has_value());
    REQUIRE(e->stop());
  }

  TEST_CASE("engine: stop completes or fails every pending request") {
    TempDir dir;
    auto e = start_ready<memory::Backend>(fast_config(dir.path()));
    auto kv = e->client();
    constexpr int n = 2000;
    std::atomic<int> ok{0};
    std::atomic<int> stopped{0};
    std::atomic<int> other{0};
    for (int i = 0; i < n; ++i) {
      kv::PutRequest p;
      p.key = "p" + std::to_string(i);
      p.value = "v";
      kv.async_put(p, [&](result<kv::PutResponse> r) {
        if (r)
          ++ok;
        else if (r.error().code == errc::stopped)
          ++stopped;
        else
          ++other;
      });
    }
    REQUIRE(e->stop());
    CHECK(ok.load() + stopped.load() + other.load() == n);
    CHECK(other.load() == 0);
    auto after = kv.put("late", "x");
    REQUIRE_FALSE(after);
    CHECK(after.error().code == errc::stopped);
  }

  TEST_CASE_TEMPLATE("engine: a single node grows to three without downtime", B,
                     DENGINE_ENGINE_BACKENDS) {
    node::LocalHub hub;
    TempDir d1;
    TempDir d2;
    TempDir d3;
    auto one = EmbeddedEngine<B>::start(fast_config(d1.path(), 1, {1}), &hub);
    REQUIRE(one);
    REQUIRE(one.value()->wait_ready(std::chrono::seconds(20)));
    // Joiners list the current voters ({1}): they start as non-members and wait to be added.
    auto two = EmbeddedEngine<B>::start(fast_config(d2.path(), 2, {1}), &hub);
    auto three = EmbeddedEngine<B>::start(fast_config(d3.path(), 3, {1}), &hub);
    REQUIRE(two);
    REQUIRE(three);
    std::vector<EmbeddedEngine<B>*> engines{one.value().get(), two.value().get(),
                                            three.value().get()};

    // A writer keeps writing the whole time, to whichever node leads. On a starved machine a
    // new voter can miss an election timeout (50 ms here) and the leader steps down and is
    // elected again (make stress once saw 32 refusals in a row): a refusal that means "try
    // again" is retried, as a client does. Every write must succeed in the end, and nothing
    // may fail for another reason.
    std::atomic<bool> writing{true};
    std::atomic<int> written{0};
    std::atomic<int> retried{0};
    std::mutex failures_mutex;
    std::vector<std::string> failures;
    auto retriable = [](const error& e) {
      return e == errc::not_leader || e == errc::too_busy || e == errc::proposal_dropped ||
             e == errc::outcome_unknown;
    };
    // One write of `value`, to the node that leads, until it succeeds (an unknown outcome is
    // settled by writing the same value again); false after 20 s or another failure.
    auto write = [&](const std::string& value) {
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
      while (std::chrono::steady_clock::now() < give_up) {
        for (auto* e : engines) {
          if (!e->is_leader()) continue;
          auto r = e->client().put("count", value);
          if (r) return true;
          if (!retriable(r.error())) {
            std::lock_guard lock(failures_mutex);
            failures.push_back(r.error().message());
            return false;
          }
          ++retried;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      std::lock_guard lock(failures_mutex);
      failures.push_back("no write of " + value + " succeeded within 20 s");
      return false;
    };
    std::thread writer([&] {
      while (writing && write(std::to_string(written.load() + 1))) ++written;
    });

    // Membership changes go to whichever node leads, for the same reason.
    auto on_leader = [&](auto change) {
      return eventually([&] {
        for (auto* e : engines)
          if (e->is_leader()) return static_cast<bool>(change(*e));
        return false;
      });
    };
    for (NodeId id : {NodeId{2}, NodeId{3}}) {
      REQUIRE(on_leader([id](EmbeddedEngine<B>& e) { return e.add_learner(id); }));
      auto& joiner = id == 2 ? two.value() : three.value();
      REQUIRE(
          eventually([&] { return joiner->status().applied + 5 >= one.value()->status().commit; }));
      REQUIRE(on_leader([id](EmbeddedEngine<B>& e) { return e.add_voter(id); }));
    }
    CHECK(eventually([&] { return written.load() > 50; }));
    writing = false;
    writer.join();
    INFO("writes retried after a refusal: " << retried.load());
    for (const std::string& f : failures) CHECK_MESSAGE(false, "a write failed: " << f);
    CHECK(failures.empty());

    // The new members hold the data; with node 1 gone, they elect a leader and serve it.
    const std::string last = std::to_string(written.load());
    REQUIRE(one.value()->stop());
    REQUIRE(eventually([&] { return two.value()->is_leader() || three.value()->is_leader(); }));
    auto& leader = two.value()->is_leader() ? two.value() : three.value();
    auto got = leader->client().get("count");
    REQUIRE(got);
    REQUIRE(got.value().has_value());
    CHECK(got.value()->value == last);
  }
}

}  // namespace dengine::test
