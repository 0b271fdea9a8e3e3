// WatchHub: history replay, filters, prev_kv, ranges, slow watchers, compaction, progress,
// ordering without gaps or duplicates (also with a consumer on another thread).

#include "kv_test_support.hpp"

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <thread>

using namespace kvtest;

namespace {

const std::string all(1, '\0');

WatchCreateRequest watch_req(std::string key, std::string range_end = {}, Revision start = 0) {
  WatchCreateRequest w;
  w.key = std::move(key);
  w.range_end = std::move(range_end);
  w.start_revision = start;
  return w;
}

std::vector<Event> events_of(const std::vector<WatchResponse>& responses) {
  std::vector<Event> out;
  for (const auto& r : responses) out.insert(out.end(), r.events.begin(), r.events.end());
  return out;
}

std::shared_ptr<Watcher> must_watch(Harness<>& h, const WatchCreateRequest& req,
                                    std::function<void()> notify = {}) {
  auto w = h.sm->watch_hub().watch(req, std::move(notify));
  REQUIRE(w);
  return w.value();
}

/// Options whose watch history keeps only the latest `events` events.
KvOptions history_of(std::size_t events) {
  KvOptions options;
  options.watch.max_history_events = events;
  return options;
}

}  // namespace

TEST_CASE("kv watch: created first, then live events on a key, a prefix and all keys") {
  Harness h;
  auto key = must_watch(h, watch_req("a"));
  auto prefix = must_watch(h, watch_req("p/", "p0"));
  auto every = must_watch(h, watch_req(all, all));
  for (auto* w : {&key, &prefix, &every}) {
    auto first = (*w)->take();
    REQUIRE(first.size() == 1);
    CHECK(first[0].created);
    CHECK(first[0].header_revision == 1);
  }
  h.put("a", "1");    // 2
  h.put("p/x", "1");  // 3
  h.put("ab", "1");   // 4
  h.del("a");         // 5
  auto ek = events_of(key->take());
  REQUIRE(ek.size() == 2);
  CHECK(ek[0].type == EventType::put);
  CHECK(ek[0].kv == KeyValue{"a", 2, 2, 1, "1", 0});
  CHECK(ek[1].type == EventType::del);
  CHECK(ek[1].kv.key == "a");
  CHECK(ek[1].kv.mod_revision == 5);
  CHECK(!ek[1].prev_kv);  // not requested
  auto ep = events_of(prefix->take());
  REQUIRE(ep.size() == 1);
  CHECK(ep[0].kv.key == "p/x");
  CHECK(events_of(every->take()).size() == 4);
  CHECK(h.sm->watch_hub().watcher_count() == 3);
}

TEST_CASE("kv watch: from a past revision, with prev_kv and filters") {
  Harness h;
  h.put("k", "1");  // 2
  h.put("k", "2");  // 3
  h.del("k");       // 4
  h.put("k", "3");  // 5
  auto req = watch_req("k", {}, 3);
  req.prev_kv = true;
  auto w = must_watch(h, req);
  auto ev = events_of(w->take());
  REQUIRE(ev.size() == 3);
  CHECK(ev[0].kv.mod_revision == 3);
  REQUIRE(ev[0].prev_kv);
  CHECK(ev[0].prev_kv->value == "1");
  CHECK(ev[1].type == EventType::del);
  REQUIRE(ev[1].prev_kv);
  CHECK(ev[1].prev_kv->value == "2");
  CHECK(ev[2].kv.create_revision == 5);
  CHECK(!ev[2].prev_kv);  // the key did not exist before
  // Then live, continuing without a gap or a duplicate.
  h.put("k", "4");  // 6
  ev = events_of(w->take());
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].kv.mod_revision == 6);

  auto no_put = watch_req("k", {}, 2);
  no_put.filters = {WatchFilter::noput};
  auto w2 = must_watch(h, no_put);
  ev = events_of(w2->take());
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].type == EventType::del);
  auto no_del = watch_req("k", {}, 2);
  no_del.filters = {WatchFilter::nodelete};
  auto w3 = must_watch(h, no_del);
  CHECK(events_of(w3->take()).size() == 4);
}

TEST_CASE("kv watch: a future start revision waits for it") {
  Harness h;
  auto w = must_watch(h, watch_req("k", {}, 4));
  h.put("k", "1");  // 2
  h.put("k", "2");  // 3
  CHECK(events_of(w->take()).empty());
  h.put("k", "3");  // 4
  auto ev = events_of(w->take());
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].kv.mod_revision == 4);
}

TEST_CASE("kv watch: a start revision below the compacted one is cancelled with it") {
  Harness h;
  for (int i = 0; i < 5; ++i) h.put("k", std::to_string(i));  // revs 2..6
  h.ok<CompactionResponse>(CompactionRequest{4});
  auto w = must_watch(h, watch_req("k", {}, 3));
  auto responses = w->take();
  REQUIRE(responses.size() == 2);
  CHECK(responses[0].created);
  CHECK(responses[1].canceled);
  CHECK(responses[1].compact_revision == 4);
  CHECK(w->canceled());
  CHECK(h.sm->watch_hub().watcher_count() == 0);
  // From the compacted revision itself it works.
  auto ok = must_watch(h, watch_req("k", {}, 4));
  CHECK(events_of(ok->take()).size() == 3);
}

TEST_CASE("kv watch: a start revision older than the history is cancelled with the oldest") {
  Harness h(history_of(3));
  for (int i = 0; i < 6; ++i) h.put("k", std::to_string(i));  // revs 2..7
  CHECK(h.sm->watch_hub().history_size() == 3);
  CHECK(h.sm->watch_hub().oldest_revision() == 5);
  auto w = must_watch(h, watch_req("k", {}, 2));
  auto responses = w->take();
  REQUIRE(responses.size() == 2);
  CHECK(responses[1].canceled);
  CHECK(responses[1].compact_revision == 5);
  auto ok = must_watch(h, watch_req("k", {}, 5));
  CHECK(events_of(ok->take()).size() == 3);
}

TEST_CASE("kv watch: history drops whole revisions") {
  Harness h(history_of(3));
  h.put("a", "0");  // 2
  TxnRequest t;
  t.success = {op_put("x", "1"), op_put("y", "1"), op_put("z", "1")};
  h.txn(t);  // 3: three events
  // Four events > 3: revision 2 goes, revision 3 stays whole.
  CHECK(h.sm->watch_hub().history_size() == 3);
  CHECK(h.sm->watch_hub().oldest_revision() == 3);
  h.put("b", "1");  // 4: revision 3 must go entirely
  CHECK(h.sm->watch_hub().history_size() == 1);
  CHECK(h.sm->watch_hub().oldest_revision() == 4);
}

TEST_CASE("kv watch: a slow consumer is cancelled with a reason") {
  KvOptions options;
  options.watch.max_pending_events = 3;
  Harness h(options);
  auto slow = must_watch(h, watch_req("k"));
  auto fast = must_watch(h, watch_req("k"));
  for (int i = 0; i < 5; ++i) {
    h.put("k", std::to_string(i));
    fast->take();
  }
  auto responses = slow->take();
  // created, 3 events, then the cancel: what was queued is still delivered, in order.
  REQUIRE(responses.size() == 5);
  CHECK(events_of(responses).size() == 3);
  CHECK(responses.back().canceled);
  CHECK(responses.back().cancel_reason.find("fell too far behind") != std::string::npos);
  CHECK(responses.back().cancel_reason.find("re-watch from revision 5") != std::string::npos);
  CHECK(slow->canceled());
  CHECK(!fast->canceled());
  CHECK(h.sm->watch_hub().watcher_count() == 1);
  // Nothing more reaches a cancelled watcher.
  h.put("k", "again");
  CHECK(slow->take().empty());
}

TEST_CASE("kv watch: cancel, progress requests and periodic progress") {
  Harness h;
  auto notify_count = std::make_shared<std::atomic<int>>(0);
  auto req = watch_req("k");
  req.progress_notify = true;
  auto w = must_watch(h, req, [notify_count] { ++*notify_count; });
  auto other = must_watch(h, watch_req("j"));
  CHECK(*notify_count == 1);
  w->take();
  other->take();
  h.put("x", "1");  // 2: nothing for either watcher
  CHECK(h.sm->watch_hub().request_progress(w->id()));
  auto p = w->take();
  REQUIRE(p.size() == 1);
  CHECK(p[0].events.empty());
  CHECK(!p[0].created);
  CHECK(!p[0].canceled);
  CHECK(p[0].header_revision == 2);
  // Periodic: only watchers that asked, and only if they saw no events since the last tick.
  h.sm->watch_hub().progress_notify();
  CHECK(w->take().size() == 1);
  CHECK(other->take().empty());
  h.put("k", "1");
  h.sm->watch_hub().progress_notify();
  CHECK(events_of(w->take()).size() == 1);  // the event, no progress
  h.sm->watch_hub().progress_notify();
  CHECK(w->take().size() == 1);
  // Cancel.
  CHECK(h.sm->watch_hub().cancel(w->id()));
  auto c = w->take();
  REQUIRE(c.size() == 1);
  CHECK(c[0].canceled);
  CHECK(!h.sm->watch_hub().cancel(w->id()));
  CHECK(!h.sm->watch_hub().request_progress(w->id()));
  CHECK(h.sm->watch_hub().watch(watch_req("")).error().detail == "etcdserver: key is not provided");
}

TEST_CASE("kv watch: random workload, every watcher sees exactly its events in order") {
  Harness h;
  std::mt19937 rng(7);
  struct Spec {
    WatchCreateRequest req;
    std::shared_ptr<Watcher> w;
    std::vector<Event> got;
  };
  std::vector<Spec> specs;
  specs.push_back({watch_req(all, all), nullptr, {}});
  specs.push_back({watch_req("k3"), nullptr, {}});
  specs.push_back({watch_req("k1", "k5"), nullptr, {}});
  for (auto& s : specs) {
    s.req.prev_kv = true;
    s.w = must_watch(h, s.req);
  }
  std::vector<Event> log;  // every event, from the "all" watcher's point of view
  for (int i = 0; i < 300; ++i) {
    const std::string key = "k" + std::to_string(rng() % 8);
    switch (rng() % 4) {
      case 0: h.del(key); break;
      case 1: {
        TxnRequest t;
        t.success = {op_put(key, "t" + std::to_string(i)), op_put(key + "x", "t")};
        h.txn(t);
        break;
      }
      default: h.put(key, std::to_string(i)); break;
    }
    if (rng() % 3 == 0) {
      for (auto& s : specs) {
        auto ev = events_of(s.w->take());
        s.got.insert(s.got.end(), ev.begin(), ev.end());
      }
    }
  }
  for (auto& s : specs) {
    auto ev = events_of(s.w->take());
    s.got.insert(s.got.end(), ev.begin(), ev.end());
  }
  const auto& everything = specs[0].got;
  // The all-keys watcher's stream rebuilds exactly the final state.
  std::map<std::string, KeyValue> state;
  Revision last = 0;
  for (const Event& e : everything) {
    CHECK(e.kv.mod_revision >= last);
    last = e.kv.mod_revision;
    if (e.type == EventType::put)
      state[e.kv.key] = e.kv;
    else
      state.erase(e.kv.key);
  }
  CHECK(last == h.sm->current_revision());
  auto final_state = h.get(all, all).kvs;
  REQUIRE(final_state.size() == state.size());
  for (const auto& kv : final_state) CHECK(state.at(kv.key) == kv);
  // The narrower watchers got exactly the matching subsequence.
  for (std::size_t i = 1; i < specs.size(); ++i) {
    std::vector<Event> expected;
    for (const Event& e : everything) {
      if (in_key_range(e.kv.key, specs[i].req.key, specs[i].req.range_end)) expected.push_back(e);
    }
    CHECK(specs[i].got == expected);
  }
}

TEST_CASE("kv watch: a consumer on another thread receives every event in order") {
  Harness h;
  std::mutex m;
  std::condition_variable cv;
  bool ready = false;
  auto w = must_watch(h, watch_req(all, all), [&] {
    std::lock_guard lock(m);
    ready = true;
    cv.notify_one();
  });
  const int puts = 2000;
  std::vector<Revision> seen;
  std::thread consumer([&] {
    for (;;) {
      {
        std::unique_lock lock(m);
        cv.wait(lock, [&] { return ready; });
        ready = false;
      }
      for (const auto& resp : w->take()) {
        for (const auto& e : resp.events) seen.push_back(e.kv.mod_revision);
      }
      if (seen.size() == puts) return;
    }
  });
  for (int i = 0; i < puts; ++i) h.put("k" + std::to_string(i % 10), "v");
  consumer.join();
  REQUIRE(seen.size() == puts);
  for (std::size_t i = 0; i < seen.size(); ++i) CHECK(seen[i] == static_cast<Revision>(i + 2));
}
