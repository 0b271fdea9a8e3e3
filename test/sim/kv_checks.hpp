#pragma once
/// KvCluster: the checks run after the scenario, on the recorded histories and the replicas'
/// final states. Part of KvCluster (kv_cluster.hpp).
///
///  1. linearizability of each register key's put / CAS / delete / read history, and of each
///     key put under a lease: its put, the reads of it, and its expiry as a delete at an unknown
///     time (linearizability.hpp; an op whose outcome is unknown may or may not have taken
///     effect);
///  1b. every read answered what the history holds at the revision it names (serializable reads
///     at any replica included, which 1 leaves out; one at the leader may hide a key whose
///     lease expired);
///  2. no acknowledged write lost, replicas agree: every replica has the same revision and the
///     same event at every revision (rebuilt from ranges at each revision; replicas whose KV
///     stores hold the same bytes share one rebuild), and every
///     acknowledged put / CAS / delete is the event at the revision its response named;
///  3. watches: each watcher's events come in revision order without duplicates, and are
///     exactly the history's events from its start revision to the last revision it must have
///     seen (its replica's revision at a crash, or the final one); a watcher the hub cancelled
///     says so (and why), and the events before the cancellation are still complete;
///  4. leases: none is left at the end, every lease's keys were deleted once, together (one
///     revoke), and no lease expired before a full TTL without a successful keep-alive at the
///     lessor that decided it (etcd's rule; see check_keep_alives);
///  5. liveness (checked while running, kv_run.hpp): after the heal a write commits, every
///     lease expires and the replicas converge within bounded virtual time.

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kv_cluster.hpp"
#include "linearizability.hpp"

namespace dengine::sim::kvsim {

/// Revision -> the events that revision made, sorted by key.
using History = std::map<kv::Revision, std::vector<kv::Event>>;

namespace detail {

inline std::string describe(const kv::Event& e) {
  std::string s = e.type == kv::EventType::put ? "put " : "delete ";
  s += e.kv.key;
  if (e.type == kv::EventType::put)
    s += "=" + e.kv.value + " (create " + std::to_string(e.kv.create_revision) + ", version " +
         std::to_string(e.kv.version) + ", lease " + std::to_string(e.kv.lease) + ")";
  s += " @" + std::to_string(e.kv.mod_revision);
  return s;
}

inline bool by_revision_key(const kv::Event& a, const kv::Event& b) {
  if (a.kv.mod_revision != b.kv.mod_revision) return a.kv.mod_revision < b.kv.mod_revision;
  return a.kv.key < b.kv.key;
}

/// The whole event history of a replica's applied state: the keys at each revision, compared
/// with the previous one (a key whose mod_revision is r was put at r; a key gone at r was
/// deleted at r). Independent of the watch code it checks.
inline result<History> history_of(const Replica::machine_type& m) {
  History out;
  std::map<std::string, kv::KeyValue> prev;
  const kv::Revision last = m.current_revision();
  for (kv::Revision r = 1; r <= last; ++r) {
    kv::RangeRequest req;
    req.key = std::string(1, '\0');
    req.range_end = std::string(1, '\0');
    req.revision = r;
    DENGINE_TRY(resp, m.range(req));
    std::map<std::string, kv::KeyValue> cur;
    for (kv::KeyValue& kv : resp.kvs) cur.emplace(kv.key, std::move(kv));
    std::vector<kv::Event> events;
    for (const auto& [key, kv] : cur)
      if (kv.mod_revision == r) events.push_back(kv::Event{kv::EventType::put, kv, std::nullopt});
    for (const auto& [key, kv] : prev) {
      if (cur.contains(key)) continue;
      kv::Event e;
      e.type = kv::EventType::del;
      e.kv.key = key;
      e.kv.mod_revision = r;
      events.push_back(std::move(e));
    }
    std::sort(events.begin(), events.end(), by_revision_key);
    if (!events.empty()) out.emplace(r, std::move(events));
    prev = std::move(cur);
  }
  return out;
}

}  // namespace detail

/// Every key and value of a replica's KV store (the MVCC keyspace: all revisions, leases, meta).
inline std::vector<std::pair<std::string, std::string>> store_image(const memory::KvStore& store) {
  std::vector<std::pair<std::string, std::string>> out;
  (void)store.scan("", "", [&](std::string_view k, std::string_view v) {
    out.emplace_back(std::string(k), std::string(v));
    return true;
  });
  return out;
}

inline void KvCluster::check_lease_overlap() {
  if (lease_overlap_seen_) return;
  const Member* newest = nullptr;
  Term newest_term = 0;
  for (const auto& m : members_) {
    if (!m->up()) continue;
    const node::NodeStatus s = m->replica->node().status();
    if (s.role == raft::Role::leader && (newest == nullptr || s.term > newest_term)) {
      newest = m.get();
      newest_term = s.term;
    }
  }
  if (newest == nullptr) return;
  for (const auto& m : members_) {
    if (m.get() == newest || !m->up()) continue;
    const node::NodeStatus s = m->replica->node().status();
    if (s.role != raft::Role::leader || s.term >= newest_term) continue;
    if (auto index = m->replica->node().lease_read_index()) {
      lease_overlap_seen_ = true;
      violation("lease overlap",
                "n" + std::to_string(m->id) + " (leader of term " + std::to_string(s.term) +
                    ") would serve a lease read at " + std::to_string(*index) + " while n" +
                    std::to_string(newest->id) + " leads term " + std::to_string(newest_term));
      return;
    }
  }
}

inline void KvCluster::check_all() {
  for (auto& m : members_) {
    if (!m->up()) {
      violation("replicas agree", "n" + std::to_string(m->id) + " is down at the end");
      return;
    }
  }
  // Replicas whose stores hold the same bytes have the same history: rebuild it (a range at
  // each revision) once, and for a replica that differs, to say where.
  std::vector<History> histories(members_.size());
  std::vector<bool> rebuilt(members_.size(), false);
  const auto image = store_image(*members_.front()->store);
  for (std::size_t i = 0; i < members_.size(); ++i) {
    if (i > 0 && store_image(*members_[i]->store) == image) continue;
    auto h = detail::history_of(members_[i]->replica->machine());
    if (!h) {
      violation("replicas agree", "n" + std::to_string(members_[i]->id) +
                                      ": reading the history: " + h.error().message());
      return;
    }
    histories[i] = std::move(h).value();
    rebuilt[i] = true;
  }
  for (std::size_t i = 1; i < members_.size(); ++i)
    if (!rebuilt[i]) histories[i] = histories[0];
  result_.final_revision = members_.front()->replica->machine().current_revision();
  check_replicas_agree(histories);
  check_linearizable();
  check_acknowledged(histories.front());
  check_reads(histories.front());
  check_watches(histories.front());
  check_leases(histories.front());
  check_keep_alives();
}

inline void KvCluster::check_replicas_agree(std::vector<History>& histories) {
  const auto& first = members_.front()->replica->machine();
  for (std::size_t i = 1; i < members_.size(); ++i) {
    const auto& m = members_[i]->replica->machine();
    const std::string who = "n1 and n" + std::to_string(i + 1);
    if (m.current_revision() != first.current_revision()) {
      violation("replicas agree", who + " end at revisions " +
                                      std::to_string(first.current_revision()) + " and " +
                                      std::to_string(m.current_revision()));
      continue;
    }
    if (m.lease_leases().leases != first.lease_leases().leases)
      violation("replicas agree", who + " hold different leases");
    if (histories[i] == histories[0]) continue;
    // The first revision where they differ.
    for (kv::Revision r = 1; r <= first.current_revision(); ++r) {
      auto a = histories[0].find(r);
      auto b = histories[i].find(r);
      const std::vector<kv::Event> none;
      const auto& ea = a == histories[0].end() ? none : a->second;
      const auto& eb = b == histories[i].end() ? none : b->second;
      if (ea == eb) continue;
      std::string d = who + " differ at revision " + std::to_string(r) + ":";
      for (const auto& e : ea) d += "\n      n1: " + detail::describe(e);
      for (const auto& e : eb)
        d += "\n      n" + std::to_string(i + 1) + ": " + detail::describe(e);
      violation("replicas agree", d);
      break;
    }
  }
}

inline void KvCluster::check_linearizable() {
  std::vector<lin::KvOp> history;
  for (const OpRecord& op : ops_) {
    if (op.kind != OpKind::put && op.kind != OpKind::cas && op.kind != OpKind::read &&
        op.kind != OpKind::del && op.kind != OpKind::lease_put)
      continue;
    if (op.outcome == OpRecord::Outcome::failed) continue;
    // A serializable read promises no order (check_reads checks it against its revision).
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
    if (op.outcome == OpRecord::Outcome::ok)
      k.op.output = lin::RegisterOutput{op.kind != OpKind::cas || op.cas_ok, op.read_value};
    history.push_back(std::move(k));
  }
  const lin::KvCheckResult r = lin::check_kv(history, 2'000'000);
  if (r.verdict == lin::Verdict::unknown) result_.lin_unknown = true;
  if (r.verdict != lin::Verdict::not_linearizable) return;
  violation("linearizability", "key " + r.key + ": " + std::to_string(r.key_history.size()) +
                                   " operations, no linearization");
  std::vector<std::size_t> order(r.key_history.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return r.key_history[a].call < r.key_history[b].call;
  });
  result_.details.push_back("history of " + r.key + " (by call time):");
  for (std::size_t i : order) result_.details.push_back("  " + lin::describe(r.key_history[i]));
  result_.details.push_back("longest linearizable prefix:");
  for (std::size_t i : r.key_result.longest_prefix)
    result_.details.push_back("  " + lin::describe(r.key_history[i]));
}

inline void KvCluster::check_reads(const History& history) {
  // Each key's events, in revision order.
  std::map<std::string, std::vector<const kv::Event*>> by_key;
  for (const auto& [rev, events] : history)
    for (const kv::Event& e : events) by_key[e.kv.key].push_back(&e);
  for (const OpRecord& op : ops_) {
    if (op.kind != OpKind::read || op.outcome != OpRecord::Outcome::ok) continue;
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
      violation("reads", "c" + std::to_string(op.client) + " read " + op.key + " at n" +
                             std::to_string(op.node) + " (" +
                             std::string(node::to_string(op.consistency)) + ") -> \"" +
                             op.read_value + "\" at revision " + std::to_string(op.revision) +
                             ", where the history has " +
                             (at == nullptr ? std::string("nothing") : detail::describe(*at)));
  }
}

inline void KvCluster::check_acknowledged(const History& history) {
  for (const OpRecord& op : ops_) {
    if (op.outcome != OpRecord::Outcome::ok) continue;
    kv::EventType type = kv::EventType::put;
    if (op.kind == OpKind::del && op.deleted > 0) {
      type = kv::EventType::del;
    } else if (!(op.kind == OpKind::put || op.kind == OpKind::lease_put ||
                 (op.kind == OpKind::cas && op.cas_ok))) {
      continue;
    }
    bool found = false;
    if (auto it = history.find(op.revision); it != history.end()) {
      for (const kv::Event& e : it->second)
        found = found || (e.kv.key == op.key && e.type == type &&
                          (type == kv::EventType::del || e.kv.value == op.value));
    }
    if (!found)
      violation("acknowledged write lost",
                "c" + std::to_string(op.client) + " " + to_string(op.kind) + " " + op.key +
                    (type == kv::EventType::put ? "=" + op.value : std::string()) +
                    " was acknowledged at revision " + std::to_string(op.revision) +
                    " but the history has no such event there");
  }
}

inline void KvCluster::check_watches(const History& history) {
  for (const WatchSegment& seg : segments_) {
    const std::string who = "watch " + std::to_string(seg.watch_id) + " on n" +
                            std::to_string(seg.node) + " (incarnation " +
                            std::to_string(seg.incarnation) + ", from " +
                            std::to_string(seg.start) + ")";
    for (const std::string& p : seg.problems) violation("watch", who + ": " + p);
    if (!seg.created) {
      violation("watch", who + ": never said created");
      continue;
    }
    // Order: revisions never go back; no (revision, key) twice.
    std::set<std::pair<kv::Revision, std::string>> seen;
    kv::Revision last = 0;
    bool ordered = true;
    for (const kv::Event& e : seg.events) {
      if (e.kv.mod_revision < last || e.kv.mod_revision < seg.start ||
          !seen.emplace(e.kv.mod_revision, e.kv.key).second) {
        violation("watch", who + ": out of order or duplicate: " + detail::describe(e) +
                               " after revision " + std::to_string(last));
        ordered = false;
        break;
      }
      last = e.kv.mod_revision;
    }
    if (!ordered) continue;
    if (seg.canceled && seg.cancel_reason.empty() && seg.compact_revision == 0)
      violation("watch", who + ": canceled without saying why");
    if (!seg.canceled && !seg.end) {
      violation("watch", who + ": no end revision (harness)");
      continue;
    }
    // Completeness: exactly the history's events in [start, hi].
    const kv::Revision hi = seg.canceled ? last : *seg.end;
    std::vector<kv::Event> want;
    for (auto it = history.lower_bound(seg.start); it != history.end() && it->first <= hi; ++it)
      want.insert(want.end(), it->second.begin(), it->second.end());
    std::vector<kv::Event> got = seg.events;
    std::stable_sort(got.begin(), got.end(), detail::by_revision_key);
    if (got == want) continue;
    std::size_t i = 0;
    while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
    std::string d =
        who + ", complete through " + std::to_string(hi) + ": event " + std::to_string(i) + " is ";
    d += i < got.size() ? detail::describe(got[i]) : std::string("missing");
    d += ", the history has ";
    d += i < want.size() ? detail::describe(want[i]) : std::string("nothing more");
    violation("watch", d);
  }
}

inline void KvCluster::check_leases(const History& history) {
  for (auto& m : members_) {
    const auto& sm = m->replica->machine();
    const auto leases = sm.lease_leases().leases;
    if (!leases.empty())
      violation("lease expiry", "n" + std::to_string(m->id) + " still holds " +
                                    std::to_string(leases.size()) + " leases (first " +
                                    std::to_string(leases.front().id) + ") at the end");
    kv::RangeRequest req;
    req.key = "lease/";
    req.range_end = engine::prefix_range_end("lease/");
    auto left = sm.range(req);
    if (!left || !left.value().kvs.empty())
      violation("lease expiry", "n" + std::to_string(m->id) + " still holds keys of leases (" +
                                    (left ? left.value().kvs.front().key : left.error().message()) +
                                    ")");
  }
  // Each key of a lease: deleted exactly once, last; all of one lease's keys in one revision.
  std::map<std::string, std::vector<const kv::Event*>> by_key;
  for (const auto& [rev, events] : history)
    for (const kv::Event& e : events)
      if (e.kv.key.starts_with("lease/")) by_key[e.kv.key].push_back(&e);
  for (const auto& [id, l] : leases_) {
    std::set<kv::Revision> deleted_at;
    for (const std::string& key : l.keys) {
      auto it = by_key.find(key);
      if (it == by_key.end()) continue;  // the put never took effect
      std::size_t deletes = 0;
      for (const kv::Event* e : it->second) deletes += e->type == kv::EventType::del ? 1 : 0;
      if (deletes != 1 || it->second.back()->type != kv::EventType::del) {
        violation("lease expiry", "key " + key + " of lease " + std::to_string(id) + ": " +
                                      std::to_string(deletes) + " deletes, last event " +
                                      detail::describe(*it->second.back()));
        continue;
      }
      deleted_at.insert(it->second.back()->kv.mod_revision);
    }
    if (deleted_at.size() > 1)
      violation("lease expiry", "the keys of lease " + std::to_string(id) + " were deleted at " +
                                    std::to_string(deleted_at.size()) +
                                    " different revisions (more than one revoke)");
    if (!deleted_at.empty() && l.plan != LeasePlan::revoke) ++result_.lease_expiries;
  }
}

/// A lease may expire only after a full TTL without a successful keep-alive at the lessor that
/// decided it. The decision is the revoke entry the leader's housekeeping proposed (seen when
/// appended, at t ≥ the decision). The lessor that made it was promoted at T_p (its last leader
/// notification of a term ≤ the entry's): it then gave every lease T_p + TTL + promote_extend,
/// and a keep-alive on it at k set k + TTL. So a keep-alive k with k + TTL > t is a violation
/// when it was made (a) on that lessor in that term, (b) anywhere before T_p, or (c) on a
/// leader of a later term than that lessor's (up to the entry's term: a stale lessor decided).
/// Exempt, as in etcd: keep-alives at a deposed leader that did not know it yet (an older term,
/// after T_p), and those at a newer leader after the decision (the revoke was in flight).
inline void KvCluster::check_keep_alives() {
  // Earliest append of each revoke entry, and who proposed it.
  struct Decision {
    kv::LeaseId lease = kv::no_lease;
    sim_time at = 0;
    NodeId proposer = no_node;
  };
  std::map<std::pair<LogIndex, Term>, Decision> decisions;
  for (const RevokeAppend& r : revokes_) {
    auto [it, fresh] = decisions.emplace(std::pair{r.index, r.term}, Decision{r.lease, r.at, 0});
    if (!fresh) it->second.at = std::min(it->second.at, r.at);
    if (r.by_leader) it->second.proposer = r.node;
  }
  for (const auto& [entry, d] : decisions) {
    auto l = leases_.find(d.lease);
    if (l == leases_.end() || l->second.plan != LeasePlan::keep) continue;
    const Term entry_term = entry.second;
    NodeId proposer = d.proposer;
    if (proposer == no_node) {
      for (const RoleChange& rc : roles_)
        if (rc.leader && rc.term == entry_term) proposer = rc.node;
    }
    if (proposer == no_node) continue;  // its leader crashed before anything was recorded
    const RoleChange* promoted = nullptr;
    for (const RoleChange& rc : roles_)
      if (rc.node == proposer && rc.leader && rc.term <= entry_term && rc.at <= d.at)
        promoted = &rc;
    if (promoted == nullptr) {
      violation("lease expiry", "lease " + std::to_string(d.lease) + ": revoke at index " +
                                    std::to_string(entry.first) + " proposed by n" +
                                    std::to_string(proposer) + ", whose lessor was never promoted");
      continue;
    }
    const sim_time ttl = sim_s(static_cast<std::uint64_t>(l->second.ttl));
    for (const KeepAlive& k : keep_alives_) {
      if (k.lease != d.lease || k.at >= d.at) continue;
      const bool same_lessor = k.node == proposer && k.lessor_term == promoted->term;
      const bool before_promotion = k.at < promoted->at;
      const bool newer_leader = k.lessor_term > promoted->term && k.lessor_term <= entry_term;
      if (!(same_lessor || before_promotion || newer_leader) || k.at + ttl <= d.at) continue;
      violation("lease expiry",
                "lease " + std::to_string(d.lease) + " (TTL " + std::to_string(l->second.ttl) +
                    " s) was decided expired by n" + std::to_string(proposer) +
                    " (lessor of term " + std::to_string(promoted->term) + ", promoted at " +
                    std::to_string(promoted->at) + " us) by " + std::to_string(d.at) +
                    " us (revoke at index " + std::to_string(entry.first) + ", term " +
                    std::to_string(entry_term) + "), but a keep-alive at n" +
                    std::to_string(k.node) + " (lessor term " + std::to_string(k.lessor_term) +
                    ") succeeded at " + std::to_string(k.at) + " us");
      break;
    }
  }
}

}  // namespace dengine::sim::kvsim
