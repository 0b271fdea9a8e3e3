#pragma once
/// LeaseLock: a distributed lock over any dengine KvClient (etcd's concurrency.Mutex pattern,
/// reduced to one key). The key exists exactly while someone holds the lock, attached to the
/// holder's lease:
///
/// - acquire: grant a lease, then one txn "if create_revision(key) == 0 then put(key, owner,
///   lease) else get(key)": of any number of contenders, exactly one creates the key;
/// - hold: keep the lease alive, more often than its TTL;
/// - release: revoke the lease, which deletes the key in the same revision;
/// - a holder that dies stops keeping its lease alive: the leader revokes the lease once its TTL
///   has passed, the key disappears, and the lock is free again without anyone's help;
/// - wait: a watch on the key from the revision at which it was seen held; its delete wakes
///   the waiters, who try again.
///
/// Fencing: the key's create_revision while this holder owns it (token()) grows with every
/// acquisition. A write made in a txn guarded by holds() succeeds only while this holder still
/// owns the lock, so a holder that was paused past its TTL (and lost the lock without knowing)
/// cannot overwrite the next holder's work.
///
///   LeaseLock lock(engine->client(), "locks/job", "worker-1", 5);
///   if (auto r = lock.lock(std::chrono::seconds(30)); !r) { /* timeout, or an engine error */ }
///   ... lock.keep_alive() every second or so, writes in txns guarded by lock.holds() ...
///   lock.unlock();
///
/// One LeaseLock is one contender; it is not thread-safe (use one per thread).

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <variant>

#include "dengine/core/error.hpp"
#include "dengine/engine/kv_client.hpp"
#include "dengine/statemachines/kv/requests.hpp"
#include "dengine/statemachines/kv/watch_hub.hpp"

namespace example {

/// A lock on one key, held through a lease; C is any dengine KvClient.
template <dengine::engine::KvClient C>
class LeaseLock {
 public:
  /// A contender named `owner` (the key's value while it holds the lock) for the lock `key`;
  /// its lease lasts `ttl_seconds` past the last keep-alive.
  LeaseLock(C client, std::string key, std::string owner, std::int64_t ttl_seconds)
      : client_(std::move(client)),
        key_(std::move(key)),
        owner_(std::move(owner)),
        ttl_(ttl_seconds) {}

  /// One attempt, without waiting: true if this contender holds the lock now. When someone
  /// else holds it, holder() names them.
  dengine::result<bool> try_lock() {
    if (held_) return true;
    DENGINE_TRY(grant, client_.lease_grant(ttl_));
    auto answered = client_.txn(acquire_txn(grant.id), ReadConsistency::linearizable);
    if (!answered || !answered.value().succeeded) {
      // The lease is not (or, after an error, maybe) attached to the key: revoking it frees the
      // key if the put happened after all. Best effort: an unrevoked lease expires by itself.
      (void)client_.lease_revoke(grant.id);
    }
    if (!answered) return std::move(answered).error();
    const dengine::kv::TxnResponse& resp = answered.value();
    if (resp.succeeded) {
      held_ = true;
      lease_ = grant.id;
      token_ = resp.header.revision;  // the txn's put created the key at this revision
      return true;
    }
    // Not ours: remember who holds it and at which revision we saw it (waiting starts there).
    seen_at_ = resp.header.revision;
    holder_.clear();
    const auto& range = std::get<dengine::kv::RangeResponse>(resp.responses.at(0).response);
    if (!range.kvs.empty()) holder_ = range.kvs.front().value;
    return false;
  }

  /// Waits until this contender holds the lock, for at most `timeout` (then errc::timeout).
  /// Between attempts it sleeps on a watch of the key until the key is deleted (released, or
  /// its holder's lease expired).
  dengine::result<void> lock(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      DENGINE_TRY(got, try_lock());
      if (got) return dengine::success();
      // From just after the revision at which the key was seen held: a delete that happened
      // since is delivered too (from the watch history), so no wake-up is missed.
      dengine::kv::WatchCreateRequest req;
      req.key = key_;
      req.start_revision = seen_at_ + 1;
      req.filters = {dengine::kv::WatchFilter::noput};
      DENGINE_TRY(watch, client_.watch(req));
      bool deleted = false;
      while (!deleted) {
        const auto now = std::chrono::steady_clock::now();
        if (now >= deadline)
          return dengine::error(dengine::errc::timeout,
                                "lock " + key_ + ": still held by " + holder_ + " after " +
                                    std::to_string(timeout.count()) + " ms");
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
        for (const dengine::kv::WatchResponse& resp : watch.wait(left)) {
          // A cancelled watch (history evicted, consumer too slow) is no answer: try again.
          if (resp.canceled || !resp.events.empty()) deleted = true;
        }
      }
    }
  }

  /// Refreshes the lease. not_found (etcd's "requested lease not found") means the lease
  /// expired: the lock is lost, and held() turns false.
  dengine::result<void> keep_alive() {
    if (!held_)
      return dengine::error(dengine::errc::invalid_argument, "lock " + key_ + ": not held");
    auto ttl = client_.lease_keep_alive(lease_);
    if (!ttl) {
      if (ttl.error().code == dengine::errc::not_found) held_ = false;
      return std::move(ttl).error();
    }
    return dengine::success();
  }

  /// Releases the lock: revokes the lease, which deletes the key in the same revision.
  /// not_found if the lease had expired already (the lock had been lost before).
  dengine::result<void> unlock() {
    if (!held_) return dengine::success();
    held_ = false;
    DENGINE_TRYV(client_.lease_revoke(lease_));
    return dengine::success();
  }

  /// Whether this contender believes it holds the lock (it may have expired since the last
  /// keep-alive: guard writes with holds()).
  [[nodiscard]] bool held() const noexcept { return held_; }
  /// The fencing token: the key's create_revision when this contender acquired it.
  [[nodiscard]] dengine::kv::Revision token() const noexcept { return token_; }
  /// Who held the lock at the last failed attempt.
  [[nodiscard]] const std::string& holder() const noexcept { return holder_; }
  /// The lock's key.
  [[nodiscard]] const std::string& key() const noexcept { return key_; }

  /// A txn compare that holds only while the lock is still ours (the key still has the
  /// create_revision it got when we acquired it): put it in every txn that writes what the
  /// lock protects.
  [[nodiscard]] dengine::kv::Compare holds() const {
    dengine::kv::Compare cmp;
    cmp.key = key_;
    cmp.target = dengine::kv::CompareTarget::create;
    cmp.result = dengine::kv::CompareResult::equal;
    cmp.create_revision = token_;
    return cmp;
  }

 private:
  using ReadConsistency = dengine::engine::ReadConsistency;

  /// "If the key does not exist, create it with our name and lease; else read it."
  [[nodiscard]] dengine::kv::TxnRequest acquire_txn(dengine::kv::LeaseId lease) const {
    dengine::kv::TxnRequest txn;
    dengine::kv::Compare absent;
    absent.key = key_;
    absent.target = dengine::kv::CompareTarget::create;
    absent.result = dengine::kv::CompareResult::equal;
    absent.create_revision = 0;  // a missing key has create_revision 0
    txn.compare.push_back(std::move(absent));
    auto& put = txn.success.emplace_back().request.emplace<dengine::kv::PutRequest>();
    put.key = key_;
    put.value = owner_;
    put.lease = lease;
    auto& get = txn.failure.emplace_back().request.emplace<dengine::kv::RangeRequest>();
    get.key = key_;
    return txn;
  }

  C client_;
  std::string key_;
  std::string owner_;
  std::int64_t ttl_;
  bool held_ = false;
  dengine::kv::LeaseId lease_ = dengine::kv::no_lease;
  dengine::kv::Revision token_ = 0;
  dengine::kv::Revision seen_at_ = 0;
  std::string holder_;
};

}  // namespace example
