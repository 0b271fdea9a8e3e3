#pragma once
/// A Node's externally visible status, published by the event loop and the applier into relaxed
/// atomics so that any thread may read it without disturbing them. Each field is current at some
/// recent moment; fields read together may come from slightly different moments.

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/raft/ready.hpp"

namespace dengine::node {

/// A point-in-time copy of the status.
struct NodeStatus {
  NodeId id = no_node;
  raft::Role role = raft::Role::follower;
  NodeId leader = no_node;  ///< no_node when none is known
  Term term = 0;
  LogIndex commit = 0;
  LogIndex applied = 0;
  bool running = false;  ///< false once stopping, stopped or failed
  /// Why the node stopped by itself — the storage or state-machine failure (its detail names
  /// the file) — or null: still running, or stopped by stop(). Set before `running` turns false.
  std::shared_ptr<const error> failure;
};

/// Where the roles publish the status (one writer per field).
class StatusBoard {
 public:
  /// Event loop: the core's volatile state.
  void publish_core(raft::Role role, NodeId leader, Term term, LogIndex commit) noexcept {
    role_.store(static_cast<std::uint8_t>(role), std::memory_order_relaxed);
    leader_.store(leader, std::memory_order_relaxed);
    term_.store(term, std::memory_order_relaxed);
    commit_.store(commit, std::memory_order_relaxed);
  }
  /// Applier (or event loop from its reports): the applied index.
  void publish_applied(LogIndex applied) noexcept {
    applied_.store(applied, std::memory_order_relaxed);
  }
  /// The node's lifecycle. Release: a reader that sees running == false sees a failure
  /// published before it.
  void publish_running(bool running) noexcept {
    running_.store(running, std::memory_order_release);
  }
  /// Event loop: the failure that stopped the node. Only the first one counts (the field is
  /// written once and then only read, so readers copy it without a lock).
  void publish_failure(const error& e) {
    if (failure_claimed_.exchange(true, std::memory_order_relaxed)) return;
    failure_ = std::make_shared<const error>(e);
    failure_published_.store(true, std::memory_order_release);
  }

  /// Event loop: the leader lease as a deadline (nanoseconds on the node's clock, 0 = none)
  /// and the commit index a lease read may be served at until then. The index is stored
  /// before the deadline (release), so a reader that sees a deadline sees its index or a newer
  /// one.
  void publish_lease(std::int64_t deadline_ns, LogIndex index) noexcept {
    lease_index_.store(index, std::memory_order_relaxed);
    lease_deadline_ns_.store(deadline_ns, std::memory_order_release);
  }
  /// {deadline in ns (0 = no lease), read index}: see publish_lease.
  [[nodiscard]] std::pair<std::int64_t, LogIndex> lease() const noexcept {
    const std::int64_t deadline = lease_deadline_ns_.load(std::memory_order_acquire);
    return {deadline, lease_index_.load(std::memory_order_relaxed)};
  }

  /// Event loop: the configuration in effect (the latest in the log, committed or not), with
  /// its version (raft::Core::membership_version); a version already published is skipped.
  void publish_membership(std::uint64_t version, const Membership& m) {
    if (version == membership_version_.load(std::memory_order_relaxed)) return;
    auto copy = std::make_shared<const Membership>(m);
    std::lock_guard lock(membership_mutex_);
    membership_ = std::move(copy);
    membership_version_.store(version, std::memory_order_relaxed);
  }
  /// The configuration last published (empty before the node started).
  [[nodiscard]] Membership membership() const {
    std::lock_guard lock(membership_mutex_);
    return membership_ ? *membership_ : Membership{};
  }

  /// A copy of every field.
  [[nodiscard]] NodeStatus read(NodeId id) const noexcept {
    NodeStatus s;
    s.id = id;
    s.role = static_cast<raft::Role>(role_.load(std::memory_order_relaxed));
    s.leader = leader_.load(std::memory_order_relaxed);
    s.term = term_.load(std::memory_order_relaxed);
    s.commit = commit_.load(std::memory_order_relaxed);
    s.applied = applied_.load(std::memory_order_relaxed);
    s.running = running_.load(std::memory_order_acquire);
    if (failure_published_.load(std::memory_order_acquire)) s.failure = failure_;
    return s;
  }

 private:
  std::atomic<std::uint8_t> role_{0};
  std::atomic<NodeId> leader_{no_node};
  std::atomic<Term> term_{0};
  std::atomic<LogIndex> commit_{0};
  std::atomic<LogIndex> applied_{0};
  std::atomic<bool> running_{false};
  std::atomic<std::int64_t> lease_deadline_ns_{0};
  std::atomic<LogIndex> lease_index_{0};
  std::atomic<bool> failure_claimed_{false};
  std::atomic<bool> failure_published_{false};
  std::shared_ptr<const error> failure_;              // written once, before failure_published_
  std::atomic<std::uint64_t> membership_version_{0};  // written by the event loop only
  mutable std::mutex membership_mutex_;
  std::shared_ptr<const Membership> membership_;  // guarded by membership_mutex_
};

}  // namespace dengine::node
