#pragma once
/// Linearizability of the KV history, one key at a time: each register key's put / CAS / delete
/// / linearizable or lease read, and each key put under a lease — its put, the reads of it, and
/// its expiry as a delete at an unknown time. An op whose outcome is unknown may or may not have
/// taken effect; an op that definitely failed is left out, and so is a serializable read, which
/// promises no order (kv_reads.hpp checks it against the revision it names).

#include <algorithm>
#include <numeric>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "../kv_records.hpp"
#include "../linearizability.hpp"
#include "common.hpp"

namespace dengine::sim::checks {

/// The verdict, and for a violation the evidence: the key's history by call time and the longest
/// prefix that does linearize.
struct KvLinearizability {
  std::optional<Violation> violation;
  std::vector<std::string> details;
  bool unknown = false;  ///< the search gave up (its budget ran out): neither proven nor refuted
};

namespace detail {

/// `op` as the checker's register operation on op.key.
inline lin::KvOp register_op(const kvsim::OpRecord& op) {
  using kvsim::OpKind;
  lin::KvOp k;
  k.key = op.key;
  k.op.client = op.client;
  k.op.call = op.call;
  k.op.ret = op.ret;
  switch (op.kind) {
    case OpKind::read: k.op.input.kind = lin::RegisterInput::Kind::read; break;
    case OpKind::cas:
      k.op.input.kind = lin::RegisterInput::Kind::cas;
      k.op.input.expected = op.expected.value_or("");
      k.op.input.value = op.value;
      break;
    case OpKind::del: k.op.input.kind = lin::RegisterInput::Kind::write; break;
    default:
      k.op.input.kind = lin::RegisterInput::Kind::write;
      k.op.input.value = op.value;
      break;
  }
  if (op.outcome == kvsim::OpRecord::Outcome::ok)
    k.op.output = lin::RegisterOutput{op.kind != OpKind::cas || op.cas_ok, op.read_value};
  return k;
}

}  // namespace detail

/// `budget`: how many search steps the checker may take on each key.
[[nodiscard]] inline KvLinearizability check_kv_linearizable(std::span<const kvsim::OpRecord> ops,
                                                             std::uint64_t budget = 2'000'000) {
  using kvsim::OpKind;
  std::vector<lin::KvOp> history;
  for (const kvsim::OpRecord& op : ops) {
    if (op.kind != OpKind::put && op.kind != OpKind::cas && op.kind != OpKind::read &&
        op.kind != OpKind::del && op.kind != OpKind::lease_put)
      continue;
    if (op.outcome == kvsim::OpRecord::Outcome::failed) continue;
    if (op.kind == OpKind::read && op.consistency == node::ReadConsistency::serializable) continue;
    if (op.kind == OpKind::lease_put) {
      // A key under a lease is a register too: put once, then deleted once by its lease's
      // revoke, at a time nobody observed — an op of unknown outcome from the put's call on.
      lin::KvOp expiry;
      expiry.key = op.key;
      expiry.op.client = 0;
      expiry.op.call = op.call;
      expiry.op.input.kind = lin::RegisterInput::Kind::write;
      history.push_back(std::move(expiry));
    }
    history.push_back(detail::register_op(op));
  }
  KvLinearizability out;
  const lin::KvCheckResult r = lin::check_kv(history, budget);
  out.unknown = r.verdict == lin::Verdict::unknown;
  if (r.verdict != lin::Verdict::not_linearizable) return out;
  out.violation = violation("linearizability", "key " + r.key + ": " + str(r.key_history.size()) +
                                                   " operations, no linearization");
  std::vector<std::size_t> order(r.key_history.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return r.key_history[a].call < r.key_history[b].call;
  });
  out.details.push_back("history of " + r.key + " (by call time):");
  for (std::size_t i : order) out.details.push_back("  " + lin::describe(r.key_history[i]));
  out.details.push_back("longest linearizable prefix:");
  for (std::size_t i : r.key_result.longest_prefix)
    out.details.push_back("  " + lin::describe(r.key_history[i]));
  return out;
}

}  // namespace dengine::sim::checks
