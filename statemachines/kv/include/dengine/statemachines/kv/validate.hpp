#pragma once
/// Request checks, with etcd's rules and error texts (etcdserver/api/v3rpc/key.go): empty keys,
/// put flags, txn size and the put/delete overlap ("duplicate key") check.
///
/// Two uses: a server validates a request against its configured limits before proposing it
/// (validate_request), and apply re-runs the limit-free structural part (the same on every
/// replica whatever its configuration) so a malformed entry fails deterministically.

#include <algorithm>
#include <cstddef>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "dengine/core/error.hpp"
#include "dengine/statemachines/kv/errors.hpp"
#include "dengine/statemachines/kv/lease_store.hpp"
#include "dengine/statemachines/kv/options.hpp"
#include "dengine/statemachines/kv/requests.hpp"
#include "dengine/statemachines/kv/store_limits.hpp"

namespace dengine::kv {

/// Nesting bound for txns inside txns: the decoder and validation refuse deeper requests so
/// that recursion depth stays bounded whatever the input (etcd's op budget bounds it too).
inline constexpr std::size_t max_txn_depth = 64;

namespace detail {

inline error invalid(std::string_view text) { return etcd_error(errc::invalid_argument, text); }

inline result<void> check_range(const RangeRequest& r) {
  if (r.key.empty()) return invalid(etcd_text::empty_key);
  return success();
}
inline result<void> check_put(const PutRequest& r) {
  if (r.key.empty()) return invalid(etcd_text::empty_key);
  if (r.ignore_value && !r.value.empty()) return invalid(etcd_text::value_provided);
  if (r.ignore_lease && r.lease != no_lease) return invalid(etcd_text::lease_provided);
  return success();
}
inline result<void> check_delete(const DeleteRangeRequest& r) {
  if (r.key.empty()) return invalid(etcd_text::empty_key);
  return success();
}

// etcd's checkTxnRequest: `budget` bounds each level's op count (nested levels get what the
// outer level leaves), nullopt = no bound (apply).
inline result<void> check_txn(const TxnRequest& t, std::optional<std::size_t> budget,
                              std::size_t depth) {
  if (depth > max_txn_depth) {
    return error(errc::invalid_argument,
                 "kv: txn nesting deeper than " + std::to_string(max_txn_depth) + " levels");
  }
  std::size_t opc = std::max({t.compare.size(), t.success.size(), t.failure.size()});
  if (budget && opc > *budget) return invalid(etcd_text::too_many_ops);
  for (const Compare& c : t.compare) {
    if (c.key.empty()) return invalid(etcd_text::empty_key);
  }
  std::optional<std::size_t> nested_budget;
  if (budget) nested_budget = *budget - opc;
  for (const auto* branch : {&t.success, &t.failure}) {
    for (const RequestOp& op : *branch) {
      result<void> r = std::visit(
          [&](const auto& req) -> result<void> {
            using T = std::decay_t<decltype(req)>;
            if constexpr (std::is_same_v<T, RangeRequest>)
              return check_range(req);
            else if constexpr (std::is_same_v<T, PutRequest>)
              return check_put(req);
            else if constexpr (std::is_same_v<T, DeleteRangeRequest>)
              return check_delete(req);
            else
              return check_txn(*req, nested_budget, depth + 1);
          },
          op.request);
      if (!r) return r;
    }
  }
  return success();
}

/// A deleted key or range, for the overlap check. As in etcd 3.4, range_end is compared as a
/// plain string here (so a "\0" range_end deletes nothing as far as this check knows).
struct DeleteInterval {
  std::string key;
  std::string range_end;  ///< empty = the single key
  [[nodiscard]] bool contains(const std::string& k) const {
    if (range_end.empty()) return k == key;
    return key <= k && k < range_end;
  }
};

struct Intervals {
  std::set<std::string> puts;
  std::vector<DeleteInterval> dels;
  [[nodiscard]] bool deleted(const std::string& k) const {
    for (const auto& d : dels) {
      if (d.contains(k)) return true;
    }
    return false;
  }
};

// etcd's checkIntervals: within one branch, a key is put at most once and never inside a range
// the branch deletes (nested txns count; a key put in both branches of one nested txn is fine,
// as only one of them runs).
inline result<Intervals> check_intervals(const std::vector<RequestOp>& ops) {
  Intervals out;
  for (const RequestOp& op : ops) {
    if (const auto* d = std::get_if<DeleteRangeRequest>(&op.request))
      out.dels.push_back({d->key, d->range_end});
  }
  for (const RequestOp& op : ops) {
    const auto* t = std::get_if<box<TxnRequest>>(&op.request);
    if (t == nullptr) continue;
    DENGINE_TRY(then_side, check_intervals((*t)->success));
    DENGINE_TRY(else_side, check_intervals((*t)->failure));
    for (const auto& k : then_side.puts) {
      if (out.puts.contains(k) || out.deleted(k)) return invalid(etcd_text::duplicate_key);
      out.puts.insert(k);
    }
    for (const auto& k : else_side.puts) {
      if (out.puts.contains(k) && !then_side.puts.contains(k))
        return invalid(etcd_text::duplicate_key);
      if (out.deleted(k)) return invalid(etcd_text::duplicate_key);
      out.puts.insert(k);
    }
    out.dels.insert(out.dels.end(), then_side.dels.begin(), then_side.dels.end());
    out.dels.insert(out.dels.end(), else_side.dels.begin(), else_side.dels.end());
  }
  for (const RequestOp& op : ops) {
    const auto* p = std::get_if<PutRequest>(&op.request);
    if (p == nullptr) continue;
    if (out.puts.contains(p->key) || out.deleted(p->key)) return invalid(etcd_text::duplicate_key);
    out.puts.insert(p->key);
  }
  return out;
}

// Every put a command may run (both branches of every txn level) against the store's limits.
inline result<void> check_store_fit(const PutRequest& r, const StoreLimits& limits) {
  // ignore_value re-stores the value already held, which fitted when it was written.
  return check_put_fits(r.key, r.ignore_value ? 0 : r.value.size(), limits);
}
inline result<void> check_store_fit(const TxnRequest& t, const StoreLimits& limits) {
  for (const auto* branch : {&t.success, &t.failure}) {
    for (const RequestOp& op : *branch) {
      if (const auto* p = std::get_if<PutRequest>(&op.request)) {
        DENGINE_TRYV(check_store_fit(*p, limits));
      } else if (const auto* nested = std::get_if<box<TxnRequest>>(&op.request)) {
        DENGINE_TRYV(check_store_fit(**nested, limits));
      }
    }
  }
  return success();
}

inline result<void> check_lease_grant(const LeaseGrantRequest& r) {
  if (r.id < 0) {
    return error(errc::invalid_argument, "kv: lease id " + std::to_string(r.id) + " is negative");
  }
  if (r.ttl > max_lease_ttl) return etcd_error(errc::too_large, etcd_text::lease_ttl_too_large);
  return success();
}

}  // namespace detail

/// Checks a txn like etcd's server does: op counts within `max_ops` per level (nullopt = no
/// bound), non-empty keys, put flags, then no duplicate or overlapping writes per branch.
inline result<void> validate_txn(const TxnRequest& t, std::optional<std::size_t> max_ops) {
  DENGINE_TRYV(detail::check_txn(t, max_ops, 0));
  DENGINE_TRYV(detail::check_intervals(t.success));
  DENGINE_TRYV(detail::check_intervals(t.failure));
  return success();
}

/// Checks a command before it is proposed, against `limits` (the encoded-size limit is
/// checked by encode_proposal, which knows the size): etcd's checks, then every key and value
/// a put in it would write against limits->store (too_large naming the size and the limit).
/// Deletes, revokes and compactions only remove records, and lease records are fixed-size
/// (store_limits.hpp), so puts are the only writes that can exceed a store's limits.
inline result<void> validate_request(const Command& cmd,
                                     const std::optional<RequestLimits>& limits) {
  std::optional<std::size_t> max_ops;
  if (limits) max_ops = limits->max_txn_ops;
  return std::visit(
      [&](const auto& req) -> result<void> {
        using T = std::decay_t<decltype(req)>;
        if constexpr (std::is_same_v<T, RangeRequest>) {
          return detail::check_range(req);
        } else if constexpr (std::is_same_v<T, PutRequest>) {
          DENGINE_TRYV(detail::check_put(req));
          if (limits) return detail::check_store_fit(req, limits->store);
          return success();
        } else if constexpr (std::is_same_v<T, DeleteRangeRequest>) {
          return detail::check_delete(req);
        } else if constexpr (std::is_same_v<T, TxnRequest>) {
          DENGINE_TRYV(validate_txn(req, max_ops));
          if (limits) return detail::check_store_fit(req, limits->store);
          return success();
        } else if constexpr (std::is_same_v<T, LeaseGrantRequest>) {
          return detail::check_lease_grant(req);
        } else {
          return success();
        }
      },
      cmd);
}

}  // namespace dengine::kv
