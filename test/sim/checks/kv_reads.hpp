#pragma once
/// Reads at their revision: every successful read answered what the history holds for its key at
/// the revision its response names — serializable reads at any replica included, which the
/// linearizability check leaves out.

#include <span>
#include <string>
#include <vector>

#include "../kv_records.hpp"
#include "kv_history.hpp"

namespace dengine::sim::checks {

[[nodiscard]] inline std::vector<Violation> check_reads(std::span<const kvsim::OpRecord> ops,
                                                        const KvHistory& history) {
  std::vector<Violation> out;
  const auto by_key = events_by_key(history);
  for (const kvsim::OpRecord& op : ops) {
    if (op.kind != kvsim::OpKind::read || op.outcome != kvsim::OpRecord::Outcome::ok) continue;
    const kv::Event* at = nullptr;  // the key's last event at or before the read's revision
    if (auto it = by_key.find(op.key); it != by_key.end())
      for (const kv::Event* e : it->second)
        if (e->kv.mod_revision <= op.revision) at = e;
    const bool present = at != nullptr && at->type == kv::EventType::put;
    // A linearizable or lease read answers a key whose lease expired as present until its
    // revoke (kv_replica.hpp); only a serializable read at the leader may hide such a key.
    const bool hidden_ok = op.consistency == node::ReadConsistency::serializable && present &&
                           at->kv.lease != kv::no_lease;
    const bool ok =
        op.read_value.empty() ? !present || hidden_ok : present && at->kv.value == op.read_value;
    if (!ok)
      out.push_back({"reads", "c" + str(op.client) + " read " + op.key + " at n" + str(op.node) +
                                  " (" + std::string(node::to_string(op.consistency)) + ") -> \"" +
                                  op.read_value + "\" at revision " + std::to_string(op.revision) +
                                  ", where the history has " +
                                  (at == nullptr ? std::string("nothing") : describe_event(*at))});
  }
  return out;
}

}  // namespace dengine::sim::checks
