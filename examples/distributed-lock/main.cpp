// Distributed lock: a lock held through a lease (lease_lock.hpp), safe when its holder dies.
//
// A 3-node cluster runs in this process (three EmbeddedEngines on one LocalHub). Three workers,
// A, B and C, take turns on the lock "locks/counter" to increment a counter stored in the KV
// store itself:
//   - A takes the lock, increments, then "dies": it stops keeping its lease alive and never
//     unlocks;
//   - B and C find the lock held and wait on a watch of the lock key;
//   - once A's TTL has passed, the leader revokes A's lease (replicated like any write), the key
//     is deleted, and one of B and C gets the lock; the other gets it when the first unlocks;
//   - finally a write still carrying A's old fencing token (as from a paused process that woke
//     up) is refused.
// Checked: no two workers are ever inside the critical section at once, every increment counts,
// fencing tokens grow, and all three replicas agree. Exits 0 when all holds; otherwise prints the
// error and exits 1.
//
//   build/examples/distributed-lock

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "../example_main.hpp"
#include "dengine/backends/memory.hpp"
#include "dengine/engine/embedded_engine.hpp"
#include "lease_lock.hpp"

namespace {

using namespace std::chrono_literals;
using namespace example;  // errc, error, result, EngineConfig, ReadConsistency, Clock, kv
using Engine = dengine::EmbeddedEngine<dengine::memory::Backend>;
using Client = Engine::client_type;
using Lock = example::LeaseLock<Client>;
using Log = example::TimedLog;

constexpr std::int64_t lock_ttl_seconds = 1;
constexpr int increments_per_holder = 3;
const std::string lock_key = "locks/counter";
const std::string counter_key = "counter";

/// Prints every change of the lock key as one replica sees it, from a thread of its own, until
/// destroyed (which it must be before its engine).
class Observer {
 public:
  Observer(dengine::engine::WatchStream stream, Log& log, std::string name)
      : stream_(std::move(stream)),
        log_(log),
        name_(std::move(name)),
        thread_([this] { loop(); }) {}
  Observer(const Observer&) = delete;
  Observer& operator=(const Observer&) = delete;
  ~Observer() {
    stop_ = true;
    thread_.join();
  }

 private:
  void loop() {
    while (!stop_) print(stream_.wait(50ms));
    print(stream_.take());  // what arrived since the last wait
  }
  void print(const std::vector<kv::WatchResponse>& responses) {
    for (const kv::WatchResponse& resp : responses) {
      for (const kv::Event& ev : resp.events) {
        if (ev.type == kv::EventType::put)
          log_.say(name_, "[watch] PUT {} = {} (revision {}, lease {:x})", ev.kv.key, ev.kv.value,
                   ev.kv.mod_revision, ev.kv.lease);
        else
          log_.say(name_, "[watch] DELETE {} (revision {})", ev.kv.key, ev.kv.mod_revision);
      }
    }
  }

  dengine::engine::WatchStream stream_;
  Log& log_;
  std::string name_;
  std::atomic<bool> stop_{false};
  std::thread thread_;  // last: starts once everything it uses exists
};

/// What the workers share: the protected counter lives in the KV store; `inside` counts the
/// workers in the critical section, to catch a violation of mutual exclusion.
struct Shared {
  Shared(Client client, Log& l) : kv(client), log(l) {}
  Client kv;
  Log& log;
  std::atomic<int> inside{0};
  std::atomic<int> max_inside{0};
  std::mutex tokens_mutex;
  std::vector<std::pair<std::string, kv::Revision>> tokens;  // in acquisition order
};

/// A txn that puts `key` = `value` only while `lock` is still held by its contender.
kv::TxnRequest fenced_put(const Lock& lock, std::string key, std::string value) {
  kv::TxnRequest txn;
  txn.compare.push_back(lock.holds());
  auto& put = txn.success.emplace_back().request.emplace<kv::PutRequest>();
  put.key = std::move(key);
  put.value = std::move(value);
  return txn;
}

/// The critical section: read the counter, then write it + 1 in a txn that succeeds only while
/// the lock is still ours (fencing). `inside` catches two workers in here at once.
result<void> increment(Shared& s, const std::string& who, const Lock& lock) {
  const int now_inside = ++s.inside;
  int seen = s.max_inside.load();
  while (now_inside > seen && !s.max_inside.compare_exchange_weak(seen, now_inside)) {
  }
  struct Leave {
    std::atomic<int>& inside;
    ~Leave() { --inside; }
  } leave{s.inside};
  if (now_inside != 1)
    return unexpected(who + " entered the critical section while another worker was in it");

  DENGINE_TRY(current, s.kv.get(counter_key));
  const int value = current ? std::stoi(current->value) : 0;
  std::this_thread::sleep_for(50ms);  // widens the window a second holder would slip through
  DENGINE_TRY(written, s.kv.txn(fenced_put(lock, counter_key, std::to_string(value + 1))));
  if (!written.succeeded) return unexpected(who + "'s fenced write was refused while it held");
  s.log.say(who, "counter {} -> {} (guarded by token {})", value, value + 1, lock.token());
  return dengine::success();
}

/// Takes the lock (waiting if needed), increments a few times while keeping the lease alive,
/// then unlocks — or, when `dies`, stops right there: no keep-alive, no unlock.
result<void> worker(Shared& s, const std::string& who, Lock& lock, bool dies) {
  DENGINE_TRY(at_once, lock.try_lock());
  if (!at_once) {
    s.log.say(who, "lock held by {}; waiting on a watch of {}", lock.holder(), lock.key());
    DENGINE_TRYV(lock.lock(10s));
  }
  s.log.say(who, "acquired {} (fencing token {})", lock.key(), lock.token());
  {
    std::lock_guard guard(s.tokens_mutex);
    s.tokens.emplace_back(who, lock.token());
  }
  for (int i = 0; i < increments_per_holder; ++i) {
    DENGINE_TRYV(increment(s, who, lock));
    DENGINE_TRYV(lock.keep_alive());
    std::this_thread::sleep_for(150ms);
  }
  if (dies) {
    s.log.say(who, "dies: no more keep-alives, never unlocks");
    return dengine::success();
  }
  DENGINE_TRYV(lock.unlock());
  s.log.say(who, "released the lock (revoked its lease)");
  return dengine::success();
}

/// Starts three engines on one in-process network and returns them once a leader serves.
result<std::vector<std::unique_ptr<Engine>>> start_cluster(dengine::node::LocalHub& hub) {
  std::vector<std::unique_ptr<Engine>> nodes;
  for (dengine::NodeId id : {1, 2, 3}) {
    // Founding voters {1, 2, 3}. The memory backend keeps nothing on disk: no data dir.
    EngineConfig config = EngineConfig::cluster_member({}, id, {1, 2, 3});
    config.lessor.min_ttl = 1s;  // etcd's minimum is 2 s; shorter, so the example is quick
    DENGINE_TRY(engine, Engine::start(config, &hub));
    nodes.push_back(std::move(engine));
  }
  for (auto& n : nodes) {
    DENGINE_TRYV(n->wait_ready(5s));
  }
  return nodes;
}

result<void> run() {
  Log log(7);
  dengine::node::LocalHub hub;  // declared first: the engines on it are stopped before it goes
  DENGINE_TRY(nodes, start_cluster(hub));
  const auto leader =
      std::find_if(nodes.begin(), nodes.end(), [](auto& n) { return n->is_leader(); });
  if (leader == nodes.end()) return error(errc::unavailable, "no node leads after wait_ready");
  log.say("cluster", "3 nodes up; node {} leads (term {})", (*leader)->id(),
          (*leader)->leader_info().term);

  // Lease keep-alives are the leader's (a follower answers not_leader with a hint; writes and
  // reads a follower would forward), so every worker uses a client of the leader.
  Shared shared((*leader)->client(), log);
  Lock a(shared.kv, lock_key, "A", lock_ttl_seconds);
  Lock b(shared.kv, lock_key, "B", lock_ttl_seconds);
  Lock c(shared.kv, lock_key, "C", lock_ttl_seconds);

  // An observer watches the lock key on a follower (every replica serves watches): each holder's
  // PUT, and each release or expiry as a DELETE, in revision order.
  const auto follower =
      std::find_if(nodes.begin(), nodes.end(), [](auto& n) { return !n->is_leader(); });
  kv::WatchCreateRequest on_lock_key;
  on_lock_key.key = lock_key;
  DENGINE_TRY(stream, (*follower)->client().watch(on_lock_key));
  std::optional<Observer> observer;
  observer.emplace(std::move(stream), log, "node " + std::to_string((*follower)->id()));

  // A first, alone, so that it holds the lock when B and C arrive.
  DENGINE_TRY(took, a.try_lock());
  if (!took) return unexpected("A could not take the free lock");
  std::array<std::optional<result<void>>, 3> results;
  std::thread thread_a([&] { results[0] = worker(shared, "A", a, /*dies=*/true); });
  std::thread thread_b([&] { results[1] = worker(shared, "B", b, false); });
  std::thread thread_c([&] { results[2] = worker(shared, "C", c, false); });
  thread_a.join();
  thread_b.join();
  thread_c.join();
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (!results[i]) return unexpected("worker " + std::to_string(i) + " did not finish");
    if (!*results[i]) return results[i]->error();
  }

  // A's process was only paused, say, and wakes up: its lease is gone, and a write guarded by
  // its old token is refused — B and C took the lock since, with higher tokens.
  auto keep_alive = a.keep_alive();
  if (keep_alive || keep_alive.error().code != errc::not_found)
    return unexpected("A's keep-alive after its lease expired did not fail with not_found");
  log.say("A", "wakes up; keep-alive says: {}", keep_alive.error().message());
  DENGINE_TRY(refused, shared.kv.txn(fenced_put(a, counter_key, "0")));
  if (refused.succeeded) return unexpected("a write fenced with A's expired token succeeded");
  log.say("A", "write guarded by its old token {}: refused", a.token());

  // The checks.
  if (shared.max_inside.load() != 1)
    return unexpected("two workers were in the critical section at once");
  if (shared.tokens.size() != 3 || shared.tokens[0].first != "A" ||
      !(shared.tokens[0].second < shared.tokens[1].second &&
        shared.tokens[1].second < shared.tokens[2].second))
    return unexpected("the fencing tokens did not grow with each acquisition");
  const std::string expected = std::to_string(3 * increments_per_holder);
  // Every replica applied the same log, A's revoke included (serializable: each node's own
  // state; a follower may lag a moment behind the leader, hence the wait).
  for (auto& n : nodes) {
    const auto deadline = Clock::now() + 5s;
    for (;;) {
      auto client = n->client();
      DENGINE_TRY(counter, client.get(counter_key, ReadConsistency::serializable));
      DENGINE_TRY(holder, client.get(lock_key, ReadConsistency::serializable));
      if (counter && counter->value == expected && !holder) {
        log.say("node " + std::to_string(n->id()), "counter = {}, {} is free", counter->value,
                lock_key);
        break;
      }
      if (Clock::now() > deadline)
        return error(errc::timeout, "node " + std::to_string(n->id()) +
                                        " did not reach counter = " + expected + " within 5 s");
      std::this_thread::sleep_for(10ms);
    }
  }
  observer.reset();  // a watch stream must not outlive its engine
  for (auto& n : nodes) {
    DENGINE_TRYV(n->stop());
  }
  log.say("cluster", "stopped");
  return dengine::success();
}

}  // namespace

int main() {
  return example::run_example(
      "distributed-lock",
      "dengine distributed lock: a lease-held lock on a 3-node in-process cluster",
      [] { return run(); },
      "done: mutual exclusion held, and the dead holder's lock was freed by its lease");
}
