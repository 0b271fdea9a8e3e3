#pragma once
/// Leadership confirmation rounds, shared by ReadIndex reads and the leader lease.
///
/// Every heartbeat broadcast is a *round* with an increasing id (carried in Message::context).
/// A follower echoing round r acknowledges the sender as its leader at some time after r was
/// sent, which also covers every earlier round. When a majority of voters has acknowledged round
/// r (the leader counts itself), then:
///  - every read registered before r was sent is confirmed (ReadIndex: leadership held at a time
///    after the read arrived, so its read index — the commit index at arrival — is linearizable);
///  - the lease extends to sent_tick(r) + lease_ticks: no other leader can be elected before the
///    voters' election timeouts run out, counted from when they *received* round r, which is
///    after it was sent.
/// Many reads share one round (batching): reads arriving between two Ready calls join the round
/// sent at the next Ready.

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <vector>

#include "dengine/core/types.hpp"
#include "dengine/raft/quorum.hpp"

namespace dengine::raft {

/// A read waiting for its round to be confirmed.
struct PendingRead {
  std::uint64_t id = 0;
  NodeId from = no_node;  ///< the node that asked (the leader itself or a forwarding follower)
  LogIndex index = 0;     ///< the commit index when the read arrived
  std::uint64_t round = 0;
};

class ReadRounds {
 public:
  /// Registers a read; it will be confirmed by the next round sent.
  void add(std::uint64_t id, NodeId from, LogIndex index) {
    pending_.push_back({id, from, index, next_round_});
  }
  [[nodiscard]] bool needs_round() const noexcept {
    return !pending_.empty() && pending_.back().round == next_round_;
  }
  [[nodiscard]] std::size_t pending_count() const noexcept { return pending_.size(); }

  /// Starts a round at `now`; returns its id (to put in the heartbeats' context).
  std::uint64_t start_round(std::uint64_t now) {
    const std::uint64_t r = next_round_++;
    sent_.push_back({r, now});
    return r;
  }
  [[nodiscard]] std::uint64_t latest_round() const noexcept { return next_round_ - 1; }

  /// Records that `voter` acknowledged `round`. If that lets a majority of `voters` (which
  /// includes `self` when it votes) confirm a newer round, returns that round's send tick.
  std::optional<std::uint64_t> ack(NodeId voter, std::uint64_t round, NodeId self,
                                   const std::vector<NodeId>& voters) {
    auto& acked = acked_[voter];
    if (round <= acked) return std::nullopt;
    acked = round;
    return try_confirm(self, voters);
  }

  /// Re-evaluates the confirmed round (e.g. after start_round in a single-voter cluster or a
  /// membership change).
  std::optional<std::uint64_t> try_confirm(NodeId self, const std::vector<NodeId>& voters) {
    if (voters.empty()) return std::nullopt;
    scratch_.clear();
    for (NodeId v : voters) {
      if (v == self) {
        scratch_.push_back(latest_round());
      } else {
        auto it = acked_.find(v);
        scratch_.push_back(it == acked_.end() ? 0 : it->second);
      }
    }
    const std::uint64_t confirmed = quorum_value(scratch_);
    if (confirmed <= confirmed_) return std::nullopt;
    confirmed_ = confirmed;
    std::optional<std::uint64_t> sent_tick;
    while (!sent_.empty() && sent_.front().round <= confirmed) {
      if (sent_.front().round == confirmed) sent_tick = sent_.front().tick;
      sent_.pop_front();
    }
    return sent_tick;
  }

  /// Removes and returns the reads confirmed so far, in arrival order.
  std::vector<PendingRead> take_confirmed() {
    std::vector<PendingRead> out;
    while (!pending_.empty() && pending_.front().round <= confirmed_) {
      out.push_back(pending_.front());
      pending_.pop_front();
    }
    return out;
  }

  /// Leadership ended: returns every pending read (to fail them) and forgets all rounds.
  /// Round ids keep increasing, so acknowledgements of old rounds never confirm new ones.
  std::vector<PendingRead> reset() {
    std::vector<PendingRead> out(pending_.begin(), pending_.end());
    pending_.clear();
    sent_.clear();
    acked_.clear();
    confirmed_ = latest_round();
    return out;
  }

 private:
  struct SentRound {
    std::uint64_t round;
    std::uint64_t tick;
  };
  std::deque<PendingRead> pending_;
  std::deque<SentRound> sent_;
  std::map<NodeId, std::uint64_t> acked_;
  std::vector<std::uint64_t> scratch_;
  std::uint64_t next_round_ = 1;
  std::uint64_t confirmed_ = 0;
};

}  // namespace dengine::raft
