#pragma once
/// LeaseStore: the replicated, deterministic part of leases — which leases exist, their granted
/// TTL and the keys attached to each. Persisted in the KvStore next to the MVCC data (so it is
/// in every snapshot and survives restarts) and mirrored in memory for fast lookups.
/// When a lease expires is NOT decided here: see Lessor (leader-side, not replicated).

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/statemachines/kv/buffered_store.hpp"
#include "dengine/statemachines/kv/bytes.hpp"
#include "dengine/statemachines/kv/keyspace.hpp"
#include "dengine/statemachines/kv/types.hpp"

namespace dengine::kv {

/// etcd's largest lease TTL (MaxLeaseTTL, seconds); a larger grant fails "too large lease TTL".
inline constexpr std::int64_t max_lease_ttl = 9'000'000'000;

/// One lease as the state machine knows it.
struct Lease {
  LeaseId id = no_lease;
  std::int64_t ttl = 0;          ///< the granted TTL in seconds
  std::set<std::string> keys{};  ///< keys currently attached
};

/// What a Lessor needs to know of a lease when its node becomes leader.
struct LeaseInfo {
  LeaseId id = no_lease;
  std::int64_t ttl = 0;
  friend bool operator==(const LeaseInfo&, const LeaseInfo&) = default;
};

/// Leases over a BufferedStore. Not thread-safe: the owner serializes access.
template <KvStore Store>
class LeaseStore {
 public:
  /// Persists through `buffer` (which must outlive this object); call load() before use.
  explicit LeaseStore(BufferedStore<Store>& buffer) : buffer_(&buffer) {}

  /// Rebuilds the in-memory table from the store.
  result<void> load() {
    leases_.clear();
    std::optional<error> failure;
    DENGINE_TRYV(buffer_->scan(std::string(1, keyspace::lease_prefix),
                               std::string(1, static_cast<char>(keyspace::lease_prefix + 1)),
                               [&](std::string_view k, std::string_view v) {
                                 auto id = keyspace::parse_lease_id(k);
                                 ByteReader r(v, "kv store lease record");
                                 auto ttl = r.svarint("ttl");
                                 if (!id || k.size() != 9 || !ttl || !r.at_end()) {
                                   failure = error(errc::storage_corrupt,
                                                   "kv store: malformed lease record");
                                   return false;
                                 }
                                 leases_[id.value()] = Lease{id.value(), ttl.value(), {}};
                                 return true;
                               }));
    if (failure) return *failure;
    DENGINE_TRYV(buffer_->scan(std::string(1, keyspace::attach_prefix),
                               std::string(1, static_cast<char>(keyspace::attach_prefix + 1)),
                               [&](std::string_view k, std::string_view) {
                                 auto id = keyspace::parse_lease_id(k);
                                 auto it = id ? leases_.find(id.value()) : leases_.end();
                                 if (it == leases_.end()) {
                                   failure = error(
                                       errc::storage_corrupt,
                                       "kv store: key attached to a lease that does not exist");
                                   return false;
                                 }
                                 it->second.keys.emplace(k.substr(9));
                                 return true;
                               }));
    if (failure) return *failure;
    return success();
  }

  /// The lease with this id, or nullptr.
  [[nodiscard]] const Lease* find(LeaseId id) const {
    auto it = leases_.find(id);
    return it == leases_.end() ? nullptr : &it->second;
  }
  [[nodiscard]] bool contains(LeaseId id) const { return leases_.contains(id); }
  /// Every lease, by ascending id.
  [[nodiscard]] const std::map<LeaseId, Lease>& all() const noexcept { return leases_; }

  /// The id for a grant that asked for none, a pure function of the state and the log index of
  /// the grant, so every replica picks the same: a 63-bit mix of the index, then the next
  /// free id upwards.
  [[nodiscard]] LeaseId assign_id(LogIndex index) const {
    std::uint64_t z = index + 0x9E3779B97F4A7C15ULL;  // splitmix64
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    z ^= z >> 31;
    auto id = static_cast<LeaseId>(z & 0x7FFF'FFFF'FFFF'FFFFULL);
    while (id == no_lease || leases_.contains(id)) {
      id = id == std::numeric_limits<LeaseId>::max() ? 1 : id + 1;
    }
    return id;
  }

  /// Records a new lease (the caller checked that id is free and positive).
  void grant(LeaseId id, std::int64_t ttl) {
    leases_[id] = Lease{id, ttl, {}};
    std::string v;
    ByteWriter(v).svarint(ttl);
    buffer_->put(keyspace::lease_key(id), std::move(v));
  }

  /// Forgets a lease and its attachments; returns the keys that were attached (ascending), which
  /// the caller deletes. Nothing if the lease does not exist.
  std::vector<std::string> revoke(LeaseId id) {
    auto it = leases_.find(id);
    if (it == leases_.end()) return {};
    std::vector<std::string> keys(it->second.keys.begin(), it->second.keys.end());
    for (const auto& k : keys) buffer_->erase(keyspace::attach_key(id, k));
    buffer_->erase(keyspace::lease_key(id));
    leases_.erase(it);
    return keys;
  }

  /// Attaches key to lease id (no-op for no_lease or an unknown lease).
  void attach(LeaseId id, std::string_view key) {
    auto it = leases_.find(id);
    if (it == leases_.end()) return;
    it->second.keys.emplace(key);
    buffer_->put(keyspace::attach_key(id, key), std::string());
  }

  /// Detaches key from lease id (no-op if it is not attached).
  void detach(LeaseId id, std::string_view key) {
    auto it = leases_.find(id);
    if (it == leases_.end()) return;
    auto k = it->second.keys.find(std::string(key));
    if (k == it->second.keys.end()) return;
    it->second.keys.erase(k);
    buffer_->erase(keyspace::attach_key(id, key));
  }

  /// Every lease as {id, ttl}, by ascending id (what a new leader's Lessor starts from).
  [[nodiscard]] std::vector<LeaseInfo> infos() const {
    std::vector<LeaseInfo> out;
    out.reserve(leases_.size());
    for (const auto& [id, l] : leases_) out.push_back({id, l.ttl});
    return out;
  }

 private:
  BufferedStore<Store>* buffer_;
  std::map<LeaseId, Lease> leases_;
};

}  // namespace dengine::kv
