#pragma once
/// Lessor: decides when leases expire. Leader-side and not replicated, as in etcd: only the
/// leader tracks deadlines (on a monotonic clock the caller passes in) and, when a lease runs
/// out, proposes a LeaseRevokeRequest through the log — the revoke, not the clock, changes the
/// replicated state. Followers' lessors are idle until promote().
///
/// Thread-safety: every member locks one mutex, so the apply thread (on_applied), the server's
/// threads (keep_alive, is_expired, remaining_ttl) and the runtime (promote, demote, expired)
/// may call it concurrently.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <span>
#include <utility>
#include <vector>

#include "dengine/core/error.hpp"
#include "dengine/core/test_hooks.hpp"
#include "dengine/statemachines/kv/errors.hpp"
#include "dengine/statemachines/kv/kv_core.hpp"
#include "dengine/statemachines/kv/lease_store.hpp"
#include "dengine/statemachines/kv/options.hpp"
#include "dengine/statemachines/kv/requests.hpp"

namespace dengine::kv {

/// Leader-side lease expiry.
class Lessor {
 public:
  /// The monotonic time every call is given.
  using time_point = std::chrono::steady_clock::time_point;

  /// An idle (non-primary) lessor.
  explicit Lessor(LessorOptions options = {}) : options_(options) {}

  /// The effective minimum TTL, seconds.
  [[nodiscard]] std::int64_t min_ttl() const { return options_.min_ttl.count(); }

  /// Raises a grant's TTL to the minimum before it is proposed (etcd raises it in the grant),
  /// so the log carries the TTL every replica records.
  void prepare_grant(LeaseGrantRequest& req) const { req.ttl = std::max(req.ttl, min_ttl()); }

  /// Becomes primary (this node just became leader): every lease in `leases` (from
  /// KvStateMachine::lease_infos()) gets a full TTL plus promote_extend from `now`, as etcd
  /// refreshes leases on promotion. Replaces anything tracked before.
  void promote(time_point now, std::span<const LeaseInfo> leases) {
    std::lock_guard lock(mutex_);
    primary_ = true;
    leases_.clear();
    deadlines_.clear();
    pending_.clear();
    now_ = std::max(now_, now);
    for (const LeaseInfo& l : leases) {
      const std::int64_t ttl = effective_ttl(l.ttl);
      arm(l.id, ttl, now + options_.promote_extend + std::chrono::seconds(ttl));
    }
  }

  /// Stops being primary (leadership lost): forgets every deadline.
  void demote() {
    std::lock_guard lock(mutex_);
    primary_ = false;
    leases_.clear();
    deadlines_.clear();
    pending_.clear();
  }

  /// Whether this lessor is primary (decides expiry).
  [[nodiscard]] bool is_primary() const {
    std::lock_guard lock(mutex_);
    return primary_;
  }

  /// Follows the grants and revokes that apply made (KvStateMachine calls it after each
  /// committed batch). A lease granted while primary starts its TTL at the next time this
  /// lessor is told the time: apply has no clock, and starting late errs on the safe side
  /// (a lease never ends before its holder could have seen the grant).
  void on_applied(std::span<const LeaseChange> changes) {
    std::lock_guard lock(mutex_);
    if (!primary_) return;
    for (const LeaseChange& c : changes) {
      if (c.kind == LeaseChange::Kind::granted) {
        forget(c.id);
        leases_[c.id] = Tracked{effective_ttl(c.ttl), std::nullopt, std::nullopt};
        pending_.insert(c.id);
      } else {
        forget(c.id);
      }
    }
  }

  /// Refreshes a lease to its full TTL from `now`; returns that TTL (seconds), for
  /// LeaseKeepAliveResponse. not_leader if not primary; not_found (etcd's text) if the lease
  /// does not exist or has already expired (its revoke is on its way) — etcd's keep-alive then
  /// answers TTL 0.
  result<std::int64_t> keep_alive(LeaseId id, time_point now) {
    std::lock_guard lock(mutex_);
    if (!primary_) return error(errc::not_leader, "kv lessor: keep-alive needs the leader");
    advance(now);
    auto it = leases_.find(id);
    if (it == leases_.end() || expired_locked(it->second, now)) {
      return etcd_error(errc::not_found, etcd_text::lease_not_found);
    }
    const std::int64_t ttl = it->second.ttl;
    arm(id, ttl, now + std::chrono::seconds(ttl));
#if defined(DENGINE_TEST_HOOKS)
    if (test_hooks::switches().early_revoke && ++hook_keep_alives_ % 20 == 0)
      arm(id, ttl, now);  // deliberate bug (core/test_hooks.hpp): expires at once
#endif
    return ttl;
  }

  /// Whether the lease's deadline has passed. Always false when not primary (only the leader
  /// knows), and for leases this lessor does not track. Reads use it to find keys of expired
  /// leases before their revoke is applied (engine::KvReplica::read hides or revokes them).
  [[nodiscard]] bool is_expired(LeaseId id, time_point now) {
    std::lock_guard lock(mutex_);
    if (!primary_) return false;
    advance(now);
    auto it = leases_.find(id);
    return it != leases_.end() && expired_locked(it->second, now);
  }

  /// Seconds left before the lease expires (etcd's LeaseTimeToLive TTL: truncated; -1 once
  /// expired), or nullopt if not primary or the lease is unknown.
  [[nodiscard]] std::optional<std::int64_t> remaining_ttl(LeaseId id, time_point now) {
    std::lock_guard lock(mutex_);
    if (!primary_) return std::nullopt;
    advance(now);
    auto it = leases_.find(id);
    if (it == leases_.end()) return std::nullopt;
    if (!it->second.deadline) return it->second.ttl;
    if (*it->second.deadline <= now) return -1;
    return std::chrono::duration_cast<std::chrono::seconds>(*it->second.deadline - now).count();
  }

  /// Leases whose deadline is at or before `now`, earliest first, at most `max` of them: the
  /// leader proposes a LeaseRevokeRequest for each. A returned lease is not returned again
  /// until revoke_retry has passed (then it is, in case the revoke proposal was lost).
  std::vector<LeaseId> expired(time_point now, std::size_t max = 1000) {
    std::lock_guard lock(mutex_);
    std::vector<LeaseId> out;
    if (!primary_) return out;
    advance(now);
    while (out.size() < max && !deadlines_.empty() && deadlines_.begin()->first <= now) {
      const LeaseId id = deadlines_.begin()->second;
      out.push_back(id);
      // Push the retry point out without changing the lease's own deadline: it stays expired.
      auto& t = leases_.at(id);
      deadlines_.erase(deadlines_.begin());
      t.retry_at = now + options_.revoke_retry;
      deadlines_.emplace(*t.retry_at, id);
    }
    return out;
  }

  /// The revoke proposed for `id` failed before it could commit (refused, dropped, timed out):
  /// offer the lease again at the next expired() call instead of after revoke_retry, so that a
  /// lost revoke does not leave an expired lease (whose keys reads wait for, or hide) waiting. A
  /// duplicate revoke is harmless: the second finds the lease gone and changes nothing.
  void revoke_failed(LeaseId id) {
    std::lock_guard lock(mutex_);
    auto it = leases_.find(id);
    if (it == leases_.end() || !it->second.retry_at) return;
    deadlines_.erase({*it->second.retry_at, id});
    it->second.retry_at = now_;
    deadlines_.emplace(now_, id);
  }

  /// Number of leases tracked (0 when not primary).
  [[nodiscard]] std::size_t size() const {
    std::lock_guard lock(mutex_);
    return leases_.size();
  }

 private:
#if defined(DENGINE_TEST_HOOKS)
  std::uint64_t hook_keep_alives_ = 0;  // keep-alives answered (the early-revoke bug's count)
#endif
  struct Tracked {
    std::int64_t ttl = 0;
    std::optional<time_point> deadline;  ///< nullopt = granted, clock not started yet
    std::optional<time_point> retry_at;  ///< when expired() returns it again
  };

  [[nodiscard]] std::int64_t effective_ttl(std::int64_t ttl) const {
    return std::max<std::int64_t>(ttl, min_ttl());
  }

  static bool expired_locked(const Tracked& t, time_point now) {
    return t.deadline && *t.deadline <= now;
  }

  // Starts the clock of leases granted since the last call that knew the time.
  void advance(time_point now) {
    now_ = std::max(now_, now);
    for (LeaseId id : pending_) {
      auto it = leases_.find(id);
      if (it != leases_.end() && !it->second.deadline) {
        const auto deadline = now_ + std::chrono::seconds(it->second.ttl);
        it->second.deadline = deadline;
        deadlines_.emplace(deadline, id);
      }
    }
    pending_.clear();
  }

  // Sets a lease's deadline (and re-indexes it).
  void arm(LeaseId id, std::int64_t ttl, time_point deadline) {
    forget(id);
    leases_[id] = Tracked{ttl, deadline, std::nullopt};
    deadlines_.emplace(deadline, id);
  }

  void forget(LeaseId id) {
    auto it = leases_.find(id);
    if (it == leases_.end()) return;
    const auto& t = it->second;
    if (t.retry_at)
      deadlines_.erase({*t.retry_at, id});
    else if (t.deadline)
      deadlines_.erase({*t.deadline, id});
    pending_.erase(id);
    leases_.erase(it);
  }

  LessorOptions options_;
  mutable std::mutex mutex_;
  bool primary_ = false;
  time_point now_{};
  std::map<LeaseId, Tracked> leases_;
  std::set<std::pair<time_point, LeaseId>> deadlines_;  ///< next expiry check of each armed lease
  std::set<LeaseId> pending_;                           ///< granted, waiting for a time
};

}  // namespace dengine::kv
