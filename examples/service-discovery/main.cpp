// Service discovery: instances announce themselves under a prefix with a lease; a watcher keeps
// a live list of them.
//
// Each instance of the service "web" puts services/web/<id> = <address> under a lease of its own
// and keeps the lease alive. A watcher lists the prefix once, then watches it from the revision
// after that listing, so it misses no change and sees none twice. On one embedded node:
//   - web-1 and web-2 are up before the watcher starts (its first listing shows them);
//   - web-3 comes up: it appears in the list;
//   - web-2 crashes (stops keeping its lease alive): it leaves the list once its TTL has passed
//     and the leader has revoked the lease;
//   - web-3 shuts down cleanly (revokes its lease): it leaves the list at once;
//   - web-1 shuts down too: the list is empty.
// Checked: the live list matches each step and, at the end, a fresh listing. Exits 0 when all
// holds; otherwise prints the error and exits 1.
//
//   build/examples/service-discovery

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include <fmt/core.h>

#include "../example_main.hpp"
#include "dengine/backends/memory.hpp"
#include "dengine/engine/embedded_engine.hpp"
#include "dengine/engine/kv_client.hpp"

namespace {

using namespace std::chrono_literals;
using namespace example;  // errc, error, result, EngineConfig, ReadConsistency, Clock, kv
using Engine = dengine::EmbeddedEngine<dengine::memory::Backend>;
using Client = Engine::client_type;
using Log = example::TimedLog;

/// Instance id -> address.
using Instances = std::map<std::string, std::string>;

const std::string service_prefix = "services/web/";
constexpr std::int64_t ttl_seconds = 1;
/// Renewals come well within the TTL, so a slow moment does not cost an instance its entry.
constexpr std::chrono::milliseconds renew_every{200};

std::string describe(const Instances& instances) {
  if (instances.empty()) return "(none)";
  std::string out;
  for (const auto& [id, address] : instances) {
    if (!out.empty()) out += ", ";
    out += fmt::format("{} at {}", id, address);
  }
  return out;
}

// ---- the two reusable parts, written against the KvClient concept ----

/// One instance's entry in the registry: `<prefix><id>` = address, attached to a lease, so that
/// it disappears by itself when the instance stops renewing it.
template <dengine::engine::KvClient C>
class Registration {
 public:
  Registration(C client, std::string key, std::string address, std::int64_t ttl_seconds)
      : client_(std::move(client)),
        key_(std::move(key)),
        address_(std::move(address)),
        ttl_(ttl_seconds) {}

  /// Grants a lease and puts the key under it.
  result<void> register_instance() {
    DENGINE_TRY(grant, client_.lease_grant(ttl_));
    kv::PutRequest put;
    put.key = key_;
    put.value = address_;
    put.lease = grant.id;
    auto done = client_.put(put);
    if (!done) {
      (void)client_.lease_revoke(grant.id);  // best effort: unrenewed, it expires anyway
      return std::move(done).error();
    }
    lease_ = grant.id;
    return dengine::success();
  }
  /// Renews the lease (call it more often than the TTL). not_found once it has expired.
  result<void> keep_alive() {
    DENGINE_TRYV(client_.lease_keep_alive(lease_));
    return dengine::success();
  }
  /// Removes the entry now: revoking the lease deletes the key in the same revision.
  result<void> deregister() {
    DENGINE_TRYV(client_.lease_revoke(lease_));
    return dengine::success();
  }

 private:
  C client_;
  std::string key_;
  std::string address_;
  std::int64_t ttl_;
  kv::LeaseId lease_ = kv::no_lease;
};

/// The instances under a prefix, kept current: one listing, then a watch from the revision
/// after it (so every later change arrives exactly once, in order). Not thread-safe.
template <dengine::engine::KvClient C>
class ServiceList {
 public:
  ServiceList(C client, std::string prefix)
      : client_(std::move(client)), prefix_(std::move(prefix)) {}

  /// Lists the prefix and starts watching from the revision after the listing. Also the way
  /// back after the watch was cancelled (e.g. it fell too far behind).
  result<void> start() {
    kv::RangeRequest req;
    req.key = prefix_;
    req.range_end = dengine::engine::prefix_range_end(prefix_);
    // range(), not get_prefix(): the response header carries the revision of the listing.
    DENGINE_TRY(listing, client_.range(req, ReadConsistency::linearizable));
    instances_.clear();
    for (const kv::KeyValue& entry : listing.kvs)
      instances_[entry.key.substr(prefix_.size())] = entry.value;
    DENGINE_TRY(watch, client_.watch_prefix(prefix_, listing.header.revision + 1));
    watch_ = std::move(watch);
    listed_at_ = listing.header.revision;
    return dengine::success();
  }

  /// Waits up to `timeout` for changes and applies them; true if the list changed.
  result<bool> update(std::chrono::milliseconds timeout) {
    bool changed = false;
    for (const kv::WatchResponse& resp : watch_.wait(timeout)) {
      if (resp.canceled) {  // the watch ended: list again, watch again
        const Instances before = instances_;
        DENGINE_TRYV(start());
        return instances_ != before;
      }
      for (const kv::Event& ev : resp.events) {
        const std::string id = ev.kv.key.substr(prefix_.size());
        if (ev.type == kv::EventType::put) {
          auto [it, inserted] = instances_.try_emplace(id, ev.kv.value);
          if (!inserted && it->second != ev.kv.value) {
            it->second = ev.kv.value;  // the instance moved to another address
            inserted = true;
          }
          changed = changed || inserted;
        } else {
          changed = instances_.erase(id) > 0 || changed;
        }
      }
    }
    return changed;
  }

  [[nodiscard]] const Instances& instances() const noexcept { return instances_; }
  /// The revision of the last listing.
  [[nodiscard]] kv::Revision listed_at() const noexcept { return listed_at_; }

 private:
  C client_;
  std::string prefix_;
  Instances instances_;
  dengine::engine::WatchStream watch_;
  kv::Revision listed_at_ = 0;
};

// ---- the example's moving parts: a watcher thread, a keep-alive thread ----

/// Runs a ServiceList on a thread of its own, prints the live list whenever it changes, and
/// lets the main thread wait for the list to reach a state. Destroy it before the engine.
class Watcher {
 public:
  Watcher(Client kv, Log& log) : list_(kv, service_prefix), log_(log) {}
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;
  ~Watcher() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }

  /// The first listing (on the caller's thread), then the watch on a thread of its own.
  result<void> start() {
    DENGINE_TRYV(list_.start());
    publish();
    log_.say("watcher", "listed {} at revision {}: {}", service_prefix, list_.listed_at(),
             describe(list_.instances()));
    thread_ = std::thread([this] { loop(); });
    return dengine::success();
  }

  /// Waits until the live list satisfies `pred` (timeout after `limit`, or the watcher's error).
  result<void> wait_until(const std::function<bool(const Instances&)>& pred,
                          const std::string& what, std::chrono::milliseconds limit = 5s) {
    std::unique_lock lock(mutex_);
    if (!cv_.wait_for(lock, limit, [&] { return failure_.has_value() || pred(live_); }))
      return error(errc::timeout, "the live list did not reach \"" + what + "\" within " +
                                      std::to_string(limit.count()) + " ms; it is " +
                                      describe(live_));
    if (failure_) return *failure_;
    return dengine::success();
  }

  /// The live list now.
  Instances live() {
    std::lock_guard lock(mutex_);
    return live_;
  }

 private:
  void loop() {
    while (!stop_) {
      auto changed = list_.update(100ms);
      if (!changed) {
        std::lock_guard lock(mutex_);
        failure_ = changed.error();
        cv_.notify_all();
        return;
      }
      if (changed.value()) {
        log_.say("watcher", "live list: {}", describe(list_.instances()));
        publish();
      }
    }
  }
  void publish() {
    std::lock_guard lock(mutex_);
    live_ = list_.instances();
    cv_.notify_all();
  }

  ServiceList<Client> list_;  // watcher thread only, once started
  Log& log_;
  std::mutex mutex_;
  std::condition_variable cv_;
  Instances live_;                // guarded by mutex_
  std::optional<error> failure_;  // guarded by mutex_
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

/// Renews the leases of the instances that are up, every `period`, on a thread of its own (a
/// real instance would run this loop itself).
class KeepAlives {
 public:
  explicit KeepAlives(std::chrono::milliseconds period)
      : period_(period), thread_([this] { loop(); }) {}
  KeepAlives(const KeepAlives&) = delete;
  KeepAlives& operator=(const KeepAlives&) = delete;
  ~KeepAlives() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  void add(const std::string& id, Registration<Client>* r) {
    std::lock_guard lock(mutex_);
    renewing_[id] = r;
  }
  /// Stops renewing `id` (after this returns, its Registration is the caller's alone again);
  /// returns when its lease was last renewed.
  Clock::time_point remove(const std::string& id) {
    std::lock_guard lock(mutex_);
    renewing_.erase(id);
    return last_renewed_[id];
  }
  /// The first keep-alive that failed, if any.
  std::optional<error> failure() {
    std::lock_guard lock(mutex_);
    return failure_;
  }

 private:
  void loop() {
    std::unique_lock lock(mutex_);
    while (!cv_.wait_for(lock, period_, [this] { return stop_; })) {
      for (auto& [id, r] : renewing_) {
        auto renewed = r->keep_alive();
        if (renewed) last_renewed_[id] = Clock::now();
        if (!renewed && !failure_) {
          failure_ = renewed.error();
          failure_->detail = "keep-alive of " + id + ": " + failure_->detail;
        }
      }
    }
  }

  std::chrono::milliseconds period_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;                                      // guarded by mutex_
  std::map<std::string, Registration<Client>*> renewing_;  // guarded by mutex_
  std::optional<error> failure_;                           // guarded by mutex_
  std::map<std::string, Clock::time_point> last_renewed_;  // guarded by mutex_
  std::thread thread_;  // last: starts once everything it uses exists
};

result<void> run() {
  Log log(8);
  EngineConfig config = EngineConfig::single_node({});  // the memory backend needs no data dir
  config.lessor.min_ttl = 1s;  // etcd's minimum is 2 s; shorter, so the example is quick
  DENGINE_TRY(engine, Engine::start(config));
  DENGINE_TRYV(engine->wait_ready(5s));
  auto kv = engine->client();
  log.say("engine", "node {} up", engine->id());

  std::map<std::string, Registration<Client>> instances;
  auto bring_up = [&](const std::string& id, const std::string& address) -> result<void> {
    auto [it, inserted] = instances.try_emplace(id, kv, service_prefix + id, address, ttl_seconds);
    if (!inserted) return unexpected(id + " is up already");
    log.say(id, "registers {}{} = {} (lease TTL {} s, renewed every {} ms)", service_prefix, id,
            address, ttl_seconds, renew_every.count());
    return it->second.register_instance();
  };
  auto has = [](const std::string& id) {
    return [id](const Instances& live) { return live.contains(id); };
  };
  auto lacks = [](const std::string& id) {
    return [id](const Instances& live) { return !live.contains(id); };
  };

  KeepAlives keep_alives(renew_every);
  DENGINE_TRYV(bring_up("web-1", "10.0.0.1:8080"));
  keep_alives.add("web-1", &instances.at("web-1"));
  DENGINE_TRYV(bring_up("web-2", "10.0.0.2:8080"));
  keep_alives.add("web-2", &instances.at("web-2"));

  // The watcher starts late: its first listing finds the two instances already up.
  Watcher watcher(kv, log);
  DENGINE_TRYV(watcher.start());
  if (watcher.live().size() != 2) return unexpected("the first listing did not find 2 instances");

  DENGINE_TRYV(bring_up("web-3", "10.0.0.3:8080"));
  keep_alives.add("web-3", &instances.at("web-3"));
  DENGINE_TRYV(watcher.wait_until(has("web-3"), "web-3 listed"));

  // Long enough for a few renewals: every instance stays listed past its 1 s TTL.
  std::this_thread::sleep_for(1200ms);
  if (watcher.live().size() != 3) return unexpected("an instance left although it was renewed");
  log.say("watcher", "all 3 still listed after 1.2 s: their keep-alives renew the leases");

  // web-2 crashes: nobody renews its lease any more.
  const auto last_renewed = keep_alives.remove("web-2");
  log.say("web-2", "crashes (no more keep-alives)");
  DENGINE_TRYV(watcher.wait_until(lacks("web-2"), "web-2 gone"));
  log.say(
      "watcher",
      "web-2 left the list {} ms after its last keep-alive (its TTL is {} s; the leader "
      "revoked its lease)",
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - last_renewed).count(),
      ttl_seconds);

  // web-3 shuts down cleanly: it revokes its lease, and its key goes with it.
  keep_alives.remove("web-3");
  const auto leaving_at = Clock::now();
  log.say("web-3", "shuts down: deregisters (revokes its lease)");
  DENGINE_TRYV(instances.at("web-3").deregister());
  DENGINE_TRYV(watcher.wait_until(lacks("web-3"), "web-3 gone"));
  log.say("watcher", "web-3 left the list {} ms after deregistering",
          std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - leaving_at).count());

  // The live list agrees with a fresh listing.
  DENGINE_TRY(fresh, kv.get_prefix(service_prefix));
  const Instances live = watcher.live();
  Instances listed;
  for (const kv::KeyValue& entry : fresh)
    listed[entry.key.substr(service_prefix.size())] = entry.value;
  if (live != listed || live.size() != 1 || !live.contains("web-1"))
    return unexpected("the live list (" + describe(live) + ") differs from a fresh listing (" +
                      describe(listed) + ")");
  log.say("check", "live list = fresh listing = {}", describe(live));

  keep_alives.remove("web-1");
  log.say("web-1", "shuts down: deregisters (revokes its lease)");
  DENGINE_TRYV(instances.at("web-1").deregister());
  DENGINE_TRYV(watcher.wait_until([](const Instances& l) { return l.empty(); }, "empty"));
  if (auto failed = keep_alives.failure()) return *failed;
  return dengine::success();  // the watcher, then the engine, stop as they go out of scope
}

}  // namespace

int main() {
  return example::run_example(
      "service-discovery",
      "dengine service discovery: leases for liveness, a watch for the live list",
      [] { return run(); });
}
