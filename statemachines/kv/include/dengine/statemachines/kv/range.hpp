#pragma once
/// Range reads over an MvccStore with etcd's semantics (etcdserver's applierV3.Range): the
/// revision to read at, count, limit and more, count_only and keys_only, min/max mod/create
/// revision filters and sorting, plus dengine's guarantee that a key whose lease has expired
/// is never returned by a read, even before the lease's revoke is applied.

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>

#include "dengine/core/error.hpp"
#include "dengine/statemachines/kv/errors.hpp"
#include "dengine/statemachines/kv/mvcc_store.hpp"
#include "dengine/statemachines/kv/requests.hpp"

namespace dengine::kv {

/// Orders two kvs by a sort target, ascending.
inline bool sort_less(const KeyValue& a, const KeyValue& b, SortTarget target) {
  switch (target) {
    case SortTarget::key: return a.key < b.key;
    case SortTarget::version: return a.version < b.version;
    case SortTarget::create: return a.create_revision < b.create_revision;
    case SortTarget::mod: return a.mod_revision < b.mod_revision;
    case SortTarget::value: return a.value < b.value;
  }
  return false;
}

/// Answers `req` from `mvcc`. Keys attached to a lease for which `is_expired` is true are left
/// out of kvs and count, when reading the latest revision (a read of the past shows the past).
/// The header revision is the store's read revision, as etcd reports its current revision.
template <KvStore Store>
result<RangeResponse> execute_range(const MvccStore<Store>& mvcc, const RangeRequest& req,
                                    const ExpiredPredicate& is_expired = {}) {
  if (req.key.empty()) return etcd_error(errc::invalid_argument, etcd_text::empty_key);
  DENGINE_TRY(at, mvcc.resolve_read_revision(req.revision));
  const bool filter_expired = static_cast<bool>(is_expired) && at == mvcc.read_revision();

  // etcd fetches everything when it must sort or filter, else limit + 1 to learn `more`.
  const bool sorts = req.sort_order != SortOrder::none || req.sort_target != SortTarget::key;
  const bool filters = req.min_mod_revision != 0 || req.max_mod_revision != 0 ||
                       req.min_create_revision != 0 || req.max_create_revision != 0;
  std::size_t fetch = std::numeric_limits<std::size_t>::max();
  if (!sorts && !filters && req.limit > 0) fetch = static_cast<std::size_t>(req.limit) + 1;
  // Values are needed only if returned or sorted on.
  const bool need_values = !req.keys_only || req.sort_target == SortTarget::value;

  RangeResponse resp;
  resp.header.revision = mvcc.read_revision();
  DENGINE_TRYV(mvcc.scan_visible(
      req.key, req.range_end, at,
      [&](std::string_view key, Revision mod, const keyspace::VersionRecord& rec) {
        if (filter_expired && rec.lease != no_lease && is_expired(rec.lease)) return true;
        ++resp.count;
        if (!req.count_only && resp.kvs.size() < fetch) {
          KeyValue kv{std::string(key), rec.create_revision, mod, rec.version, {}, rec.lease};
          if (need_values) kv.value = std::string(rec.value);
          resp.kvs.push_back(std::move(kv));
        }
        return true;
      }));
  if (req.count_only) return resp;

  auto prune = [&](auto drop) { std::erase_if(resp.kvs, drop); };
  if (req.max_mod_revision != 0)
    prune([&](const KeyValue& kv) { return kv.mod_revision > req.max_mod_revision; });
  if (req.min_mod_revision != 0)
    prune([&](const KeyValue& kv) { return kv.mod_revision < req.min_mod_revision; });
  if (req.max_create_revision != 0)
    prune([&](const KeyValue& kv) { return kv.create_revision > req.max_create_revision; });
  if (req.min_create_revision != 0)
    prune([&](const KeyValue& kv) { return kv.create_revision < req.min_create_revision; });

  SortOrder order = req.sort_order;
  // As etcd: a non-key target without an order sorts ascending (keys are already ascending).
  if (req.sort_target != SortTarget::key && order == SortOrder::none) order = SortOrder::ascend;
  if (order == SortOrder::ascend) {
    std::stable_sort(resp.kvs.begin(), resp.kvs.end(), [&](const KeyValue& a, const KeyValue& b) {
      return sort_less(a, b, req.sort_target);
    });
  } else if (order == SortOrder::descend) {
    std::stable_sort(resp.kvs.begin(), resp.kvs.end(), [&](const KeyValue& a, const KeyValue& b) {
      return sort_less(b, a, req.sort_target);
    });
  }

  if (req.limit > 0 && resp.kvs.size() > static_cast<std::size_t>(req.limit)) {
    resp.kvs.resize(static_cast<std::size_t>(req.limit));
    resp.more = true;
  }
  if (req.keys_only) {
    for (auto& kv : resp.kvs) kv.value.clear();
  }
  return resp;
}

}  // namespace dengine::kv
