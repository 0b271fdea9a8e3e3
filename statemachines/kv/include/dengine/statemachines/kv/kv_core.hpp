#pragma once
/// KvCore: the KV operations (etcd's applier) over an MvccStore and a LeaseStore sharing one
/// BufferedStore. Writes land in the buffer; the owner commits it (with the applied index) and
/// then hands the accumulated effects — watch events, lease grants/revokes, compactions — to
/// whoever follows them.
///
/// Error discipline: every error a request can cause (invalid_argument, not_found, compacted,
/// future_revision, too_large) is found before the operation's first write, so such a failure
/// leaves no trace. Any other error comes from the store; then the buffer may hold part of an
/// operation and the owner must discard it and reload (see is_request_error).

#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/statemachines/kv/errors.hpp"
#include "dengine/statemachines/kv/lease_store.hpp"
#include "dengine/statemachines/kv/mvcc_store.hpp"
#include "dengine/statemachines/kv/range.hpp"
#include "dengine/statemachines/kv/requests.hpp"
#include "dengine/statemachines/kv/txn.hpp"
#include "dengine/statemachines/kv/validate.hpp"

namespace dengine::kv {

/// True for the errors a request can cause (answered to the client; the state is unchanged);
/// false for storage failures (the state machine must stop or reload).
inline bool is_request_error(const error& e) {
  return e == errc::invalid_argument || e == errc::not_found || e == errc::compacted ||
         e == errc::future_revision || e == errc::too_large;
}

/// True for a KvStore::write failure that says the write itself is invalid for the store
/// (too_large: a key or value beyond what it holds; invalid_argument: a write it cannot take) —
/// the same for the same entry on every replica with that store, whatever else the batch held —
/// as opposed to a failure of the machine (I/O error, full disk, corruption), which another
/// attempt may not meet. The state machine answers the first kind as the entry's response and
/// stops on the second (state_machine.hpp).
inline bool is_store_refusal(const error& e) {
  return e == errc::too_large || e == errc::invalid_argument;
}

/// A lease change made by apply, for the leader's Lessor.
struct LeaseChange {
  enum class Kind : std::uint8_t { granted, revoked };
  Kind kind = Kind::granted;
  LeaseId id = no_lease;
  std::int64_t ttl = 0;  ///< the granted TTL (granted only)
  friend bool operator==(const LeaseChange&, const LeaseChange&) = default;
};

/// What writes did besides changing the store, in order.
struct Effects {
  std::vector<Event> events{};               ///< every PUT/DELETE, in revision order
  std::vector<LeaseChange> lease_changes{};  ///< grants and revokes
  std::optional<Revision> compacted{};       ///< the latest compaction revision, if any
};

/// The KV operations. Not thread-safe: the owner serializes access (one writer, or readers).
template <KvStore Store>
class KvCore {
 public:
  /// Works over `store`; call load() before use. Not movable (the lease store points at the
  /// MVCC store's buffer).
  explicit KvCore(Store& store) : mvcc_(store), leases_(mvcc_.buffer()) {}
  KvCore(const KvCore&) = delete;
  KvCore& operator=(const KvCore&) = delete;
  KvCore(KvCore&&) = delete;
  KvCore& operator=(KvCore&&) = delete;
  ~KvCore() = default;

  /// (Re)loads revision state and leases from the store, dropping buffered writes and effects.
  result<void> load() {
    effects_ = {};
    DENGINE_TRYV(mvcc_.load());
    return leases_.load();
  }

  [[nodiscard]] const MvccStore<Store>& mvcc() const noexcept { return mvcc_; }
  [[nodiscard]] const LeaseStore<Store>& leases() const noexcept { return leases_; }
  [[nodiscard]] BufferedStore<Store>& buffer() noexcept { return mvcc_.buffer(); }

  /// The effects of the writes since the last call, emptied.
  Effects take_effects() { return std::exchange(effects_, Effects{}); }

  // ---- reads (no write scope) ----------------------------------------------------------------

  /// A range (see execute_range).
  result<RangeResponse> range(const RangeRequest& req,
                              const ExpiredPredicate& is_expired = {}) const {
    return execute_range(mvcc_, req, is_expired);
  }

  /// A txn that only reads, answered without the log (invalid_argument if it writes). Keys of
  /// expired leases count as absent in its compares and ranges.
  result<TxnResponse> read_txn(const TxnRequest& req,
                               const ExpiredPredicate& is_expired = {}) const {
    if (!is_read_only(req)) {
      return error(errc::invalid_argument,
                   "kv: read_txn given a txn that writes; propose it instead");
    }
    DENGINE_TRYV(validate_txn(req, std::nullopt));
    TxnPath path;
    DENGINE_TRYV(compute_txn_path(mvcc_, req, mvcc_.read_revision(), path, is_expired));
    std::size_t next = 0;
    DENGINE_TRYV(check_txn_ops(mvcc_, leases_, req, path, next));
    next = 0;
    DENGINE_TRY(resp, read_only_txn(req, path, next, is_expired));
    set_txn_revision(resp, mvcc_.read_revision());
    return resp;
  }

  /// A lease's TTLs and keys; a missing lease answers ttl = -1, as etcd does.
  [[nodiscard]] LeaseTimeToLiveResponse lease_time_to_live(
      const LeaseTimeToLiveRequest& req) const {
    LeaseTimeToLiveResponse resp;
    resp.header.revision = mvcc_.current_revision();
    resp.id = req.id;
    const Lease* l = leases_.find(req.id);
    if (l == nullptr) {
      resp.ttl = -1;
      return resp;
    }
    resp.ttl = l->ttl;
    resp.granted_ttl = l->ttl;
    if (req.keys) resp.keys.assign(l->keys.begin(), l->keys.end());
    return resp;
  }

  /// Every lease.
  [[nodiscard]] LeaseLeasesResponse lease_leases() const {
    LeaseLeasesResponse resp;
    resp.header.revision = mvcc_.current_revision();
    for (const auto& [id, l] : leases_.all()) resp.leases.push_back({id});
    return resp;
  }

  // ---- writes --------------------------------------------------------------------------------

  /// Applies one command; `index` is its log index (lease ids are derived from it).
  result<Response> execute(const Command& cmd, LogIndex index) {
    return std::visit(
        [&](const auto& req) -> result<Response> {
          using T = std::decay_t<decltype(req)>;
          if constexpr (std::is_same_v<T, RangeRequest>)
            return wrap(range(req));
          else if constexpr (std::is_same_v<T, PutRequest>)
            return wrap(put(req));
          else if constexpr (std::is_same_v<T, DeleteRangeRequest>)
            return wrap(delete_range(req));
          else if constexpr (std::is_same_v<T, TxnRequest>)
            return wrap(txn(req));
          else if constexpr (std::is_same_v<T, CompactionRequest>)
            return wrap(compact(req));
          else if constexpr (std::is_same_v<T, LeaseGrantRequest>)
            return wrap(lease_grant(req, index));
          else
            return wrap(lease_revoke(req));
        },
        cmd);
  }

  /// Puts a key: one new revision.
  result<PutResponse> put(const PutRequest& req) {
    DENGINE_TRYV(detail::check_put(req));
    return in_write_scope([&] { return do_put(req); });
  }

  /// Deletes a range: one new revision if anything was deleted.
  result<DeleteRangeResponse> delete_range(const DeleteRangeRequest& req) {
    DENGINE_TRYV(detail::check_delete(req));
    return in_write_scope([&] { return do_delete(req); });
  }

  /// Runs a txn atomically: one new revision if it wrote anything.
  result<TxnResponse> txn(const TxnRequest& req) {
    DENGINE_TRYV(validate_txn(req, std::nullopt));
    TxnPath path;
    DENGINE_TRYV(compute_txn_path(mvcc_, req, mvcc_.read_revision(), path));
    std::size_t next = 0;
    DENGINE_TRYV(check_txn_ops(mvcc_, leases_, req, path, next));
    mvcc_.begin_write();
    next = 0;
    auto resp = run_txn(req, path, next);
    const Revision rev = mvcc_.end_write();
    if (resp) set_txn_revision(resp.value(), rev);
    return resp;
  }

  /// Compacts the history below req.revision (which must be above the compacted revision and
  /// at most the current one). Does not change the revision.
  result<CompactionResponse> compact(const CompactionRequest& req) {
    if (req.revision <= mvcc_.compacted_revision())
      return etcd_error(errc::compacted, etcd_text::compacted);
    if (req.revision > mvcc_.current_revision()) {
      return etcd_error(errc::future_revision, etcd_text::future_revision);
    }
    DENGINE_TRYV(mvcc_.compact(req.revision));
    effects_.compacted = req.revision;
    CompactionResponse resp;
    resp.header.revision = mvcc_.current_revision();
    return resp;
  }

  /// Grants a lease (id 0 = derived from `index`). Does not change the revision.
  result<LeaseGrantResponse> lease_grant(const LeaseGrantRequest& req, LogIndex index) {
    DENGINE_TRYV(detail::check_lease_grant(req));
    const LeaseId id = req.id == no_lease ? leases_.assign_id(index) : req.id;
    if (leases_.contains(id)) return etcd_error(errc::invalid_argument, etcd_text::lease_exists);
    leases_.grant(id, req.ttl);
    effects_.lease_changes.push_back({LeaseChange::Kind::granted, id, req.ttl});
    LeaseGrantResponse resp;
    resp.header.revision = mvcc_.current_revision();
    resp.id = id;
    resp.ttl = req.ttl;
    return resp;
  }

  /// Revokes a lease and deletes its keys, all in one new revision (none if it had no keys).
  result<LeaseRevokeResponse> lease_revoke(const LeaseRevokeRequest& req) {
    if (!leases_.contains(req.id)) return etcd_error(errc::not_found, etcd_text::lease_not_found);
    mvcc_.begin_write();
    auto deleted = revoke_keys(req.id);
    const Revision rev = mvcc_.end_write();
    if (!deleted) return deleted.error();
    effects_.lease_changes.push_back({LeaseChange::Kind::revoked, req.id, 0});
    LeaseRevokeResponse resp;
    resp.header.revision = rev;
    return resp;
  }

 private:
  /// Runs `write` (a do_* step) in one write scope; its response carries the revision the scope
  /// ends at.
  template <class Write>
  auto in_write_scope(Write write) -> decltype(write()) {
    mvcc_.begin_write();
    auto resp = write();
    const Revision rev = mvcc_.end_write();
    if (resp) resp.value().header.revision = rev;
    return resp;
  }

  template <class T>
  static result<Response> wrap(result<T> r) {
    if (!r) return std::move(r).error();
    return Response(std::move(r).value());
  }

  // A put inside the open write scope. Request errors are found before the write.
  result<PutResponse> do_put(const PutRequest& req) {
    DENGINE_TRY(prev, mvcc_.get_newest(req.key));
    if ((req.ignore_value || req.ignore_lease) && !prev) {
      return etcd_error(errc::invalid_argument, etcd_text::key_not_found);
    }
    const LeaseId lease = req.ignore_lease ? prev->lease : req.lease;
    if (lease != no_lease && !leases_.contains(lease)) {
      return etcd_error(errc::not_found, etcd_text::lease_not_found);
    }
    const std::string_view value =
        req.ignore_value ? std::string_view(prev->value) : std::string_view(req.value);
    const LeaseId prev_lease = prev ? prev->lease : no_lease;
    PutResponse resp;
    if (req.prev_kv) resp.prev_kv = prev;  // copied only when asked for: the event keeps prev
    Event ev = mvcc_.put(req.key, value, lease, std::move(prev));
    if (prev_lease != no_lease && prev_lease != lease) leases_.detach(prev_lease, req.key);
    if (lease != no_lease) leases_.attach(lease, req.key);
    effects_.events.push_back(std::move(ev));
    return resp;
  }

  // A delete inside the open write scope.
  result<DeleteRangeResponse> do_delete(const DeleteRangeRequest& req) {
    std::vector<KeyValue> doomed;
    DENGINE_TRYV(mvcc_.scan_visible(
        req.key, req.range_end, mvcc_.read_revision(),
        [&](std::string_view key, Revision mod, const keyspace::VersionRecord& rec) {
          doomed.push_back(keyspace::to_key_value(std::string(key), mod, rec));
          return true;
        }));
    DeleteRangeResponse resp;
    for (KeyValue& kv : doomed) {
      effects_.events.push_back(mvcc_.remove(kv));
      if (kv.lease != no_lease) leases_.detach(kv.lease, kv.key);
      ++resp.deleted;
      if (req.prev_kv) resp.prev_kvs.push_back(std::move(kv));
    }
    return resp;
  }

  // Deletes every key of a lease inside the open write scope and forgets the lease.
  result<void> revoke_keys(LeaseId id) {
    for (const std::string& key : leases_.revoke(id)) {
      DENGINE_TRY(prev, mvcc_.get(key, mvcc_.read_revision()));
      if (prev) effects_.events.push_back(mvcc_.remove(*prev));
    }
    return success();
  }

  // The ops of the branch `path` chose, inside the open write scope.
  result<TxnResponse> run_txn(const TxnRequest& req, const TxnPath& path, std::size_t& next) {
    TxnResponse resp;
    resp.succeeded = path.at(next++);
    for (const RequestOp& op : resp.succeeded ? req.success : req.failure) {
      ResponseOp out;
      if (const auto* r = std::get_if<RangeRequest>(&op.request)) {
        DENGINE_TRY(v, execute_range(mvcc_, *r));
        out.response = std::move(v);
      } else if (const auto* p = std::get_if<PutRequest>(&op.request)) {
        DENGINE_TRY(v, do_put(*p));
        out.response = std::move(v);
      } else if (const auto* d = std::get_if<DeleteRangeRequest>(&op.request)) {
        DENGINE_TRY(v, do_delete(*d));
        out.response = std::move(v);
      } else {
        DENGINE_TRY(v, run_txn(*std::get<box<TxnRequest>>(op.request), path, next));
        out.response = box<TxnResponse>(std::move(v));
      }
      resp.responses.push_back(std::move(out));
    }
    return resp;
  }

  // A read-only txn's chosen ranges.
  result<TxnResponse> read_only_txn(const TxnRequest& req, const TxnPath& path, std::size_t& next,
                                    const ExpiredPredicate& is_expired) const {
    TxnResponse resp;
    resp.succeeded = path.at(next++);
    for (const RequestOp& op : resp.succeeded ? req.success : req.failure) {
      ResponseOp out;
      if (const auto* r = std::get_if<RangeRequest>(&op.request)) {
        DENGINE_TRY(v, execute_range(mvcc_, *r, is_expired));
        out.response = std::move(v);
      } else {
        DENGINE_TRY(v,
                    read_only_txn(*std::get<box<TxnRequest>>(op.request), path, next, is_expired));
        out.response = box<TxnResponse>(std::move(v));
      }
      resp.responses.push_back(std::move(out));
    }
    return resp;
  }

  MvccStore<Store> mvcc_;
  LeaseStore<Store> leases_;
  Effects effects_;
};

}  // namespace dengine::kv
