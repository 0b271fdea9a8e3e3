#pragma once
/// The read side of a txn, as etcd's applier does it: evaluate the compares, fix which branch
/// runs at every nesting level before anything is written (the "txn path"), and check the ops
/// of the chosen branches against the state before the txn so that a failing txn writes nothing.

#include <compare>
#include <cstddef>
#include <string>
#include <variant>
#include <vector>

#include "dengine/core/error.hpp"
#include "dengine/statemachines/kv/errors.hpp"
#include "dengine/statemachines/kv/lease_store.hpp"
#include "dengine/statemachines/kv/mvcc_store.hpp"
#include "dengine/statemachines/kv/range.hpp"
#include "dengine/statemachines/kv/requests.hpp"

namespace dengine::kv {

/// Whether kv satisfies the compare (etcd's compareKV). Values compare as unsigned bytes.
inline bool compare_kv(const Compare& c, const KeyValue& kv) {
  std::strong_ordering cmp = std::strong_ordering::equal;
  switch (c.target) {
    case CompareTarget::version: cmp = kv.version <=> c.version; break;
    case CompareTarget::create: cmp = kv.create_revision <=> c.create_revision; break;
    case CompareTarget::mod: cmp = kv.mod_revision <=> c.mod_revision; break;
    case CompareTarget::lease: cmp = kv.lease <=> c.lease; break;
    case CompareTarget::value: {
      int r = kv.value.compare(c.value);  // char_traits<char> compares as unsigned char
      cmp = r < 0 ? std::strong_ordering::less
                  : (r > 0 ? std::strong_ordering::greater : std::strong_ordering::equal);
      break;
    }
  }
  switch (c.result) {
    case CompareResult::equal: return std::is_eq(cmp);
    case CompareResult::greater: return std::is_gt(cmp);
    case CompareResult::less: return std::is_lt(cmp);
    case CompareResult::not_equal: return std::is_neq(cmp);
  }
  return false;
}

/// Evaluates one compare at revision `at` (etcd's applyCompare): every key in the range must
/// satisfy it; with no key, version/create/mod/lease compare as 0 and a VALUE compare fails.
/// Keys of expired leases count as absent when `is_expired` is given (read-only txns only).
template <KvStore Store>
result<bool> evaluate_compare(const MvccStore<Store>& mvcc, const Compare& c, Revision at,
                              const ExpiredPredicate& is_expired = {}) {
  bool any = false;
  bool holds = true;
  DENGINE_TRYV(mvcc.scan_visible(
      c.key, c.range_end, at,
      [&](std::string_view key, Revision mod, const keyspace::VersionRecord& rec) {
        if (is_expired && rec.lease != no_lease && is_expired(rec.lease)) return true;
        any = true;
        KeyValue kv{std::string(key), rec.create_revision, mod, rec.version, {}, rec.lease};
        if (c.target == CompareTarget::value) kv.value = std::string(rec.value);
        if (!compare_kv(c, kv)) {
          holds = false;
          return false;
        }
        return true;
      }));
  if (!any) return c.target != CompareTarget::value && compare_kv(c, KeyValue{});
  return holds;
}

/// Which branch runs at each txn level, in depth-first order of the levels that run: entry 0
/// is the outer txn, then each nested txn of the chosen branch, recursively.
using TxnPath = std::vector<bool>;

/// Evaluates every compare that will matter, all against revision `at` (the state before the
/// txn writes anything, as etcd does).
template <KvStore Store>
result<void> compute_txn_path(const MvccStore<Store>& mvcc, const TxnRequest& txn, Revision at,
                              TxnPath& path, const ExpiredPredicate& is_expired = {}) {
  bool ok = true;
  for (const Compare& c : txn.compare) {
    DENGINE_TRY(holds, evaluate_compare(mvcc, c, at, is_expired));
    if (!holds) {
      ok = false;
      break;
    }
  }
  path.push_back(ok);
  for (const RequestOp& op : ok ? txn.success : txn.failure) {
    if (const auto* nested = std::get_if<box<TxnRequest>>(&op.request)) {
      DENGINE_TRYV(compute_txn_path(mvcc, **nested, at, path, is_expired));
    }
  }
  return success();
}

/// etcd's checkRequests: before the txn writes, every put of the chosen branches must name an
/// existing lease (if any) and, with ignore_value/ignore_lease, an existing key; every range
/// must read a revision that is neither compacted nor in the future. `next` walks `path`.
template <KvStore Store>
result<void> check_txn_ops(const MvccStore<Store>& mvcc, const LeaseStore<Store>& leases,
                           const TxnRequest& txn, const TxnPath& path, std::size_t& next) {
  const bool ok = path.at(next++);
  for (const RequestOp& op : ok ? txn.success : txn.failure) {
    if (const auto* put = std::get_if<PutRequest>(&op.request)) {
      if (put->ignore_value || put->ignore_lease) {
        DENGINE_TRY(prev, mvcc.get(put->key, mvcc.read_revision()));
        if (!prev) return etcd_error(errc::invalid_argument, etcd_text::key_not_found);
      }
      if (put->lease != no_lease && !leases.contains(put->lease)) {
        return etcd_error(errc::not_found, etcd_text::lease_not_found);
      }
    } else if (const auto* range = std::get_if<RangeRequest>(&op.request)) {
      if (range->revision != 0) {
        DENGINE_TRYV(mvcc.resolve_read_revision(range->revision));
      }
    } else if (const auto* nested = std::get_if<box<TxnRequest>>(&op.request)) {
      DENGINE_TRYV(check_txn_ops(mvcc, leases, **nested, path, next));
    }
  }
  return success();
}

/// Sets the header revision of a txn response and of every response inside it.
inline void set_txn_revision(TxnResponse& resp, Revision rev) {
  resp.header.revision = rev;
  for (ResponseOp& op : resp.responses) {
    std::visit(
        [&](auto& r) {
          using T = std::decay_t<decltype(r)>;
          if constexpr (std::is_same_v<T, box<TxnResponse>>)
            set_txn_revision(*r, rev);
          else
            r.header.revision = rev;
        },
        op.response);
  }
}

}  // namespace dengine::kv
