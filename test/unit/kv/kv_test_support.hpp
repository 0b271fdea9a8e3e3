#pragma once
// Helpers shared by the KV state machine tests: a harness that applies commands through real
// log entries, typed accessors for responses, and a KvStore wrapper that injects failures.

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "dengine/backends/memory.hpp"
#include "dengine/statemachines/kv/kv.hpp"

namespace kvtest {

using namespace dengine;
using namespace dengine::kv;

/// A KvStore that forwards to a memory store and can be told to fail writes or reads.
class FlakyStore {
 public:
  result<std::optional<std::string>> get(std::string_view key) const {
    if (fail_reads) return error(errc::io_error, "injected read failure");
    return inner.get(key);
  }
  result<void> scan(std::string_view lo, std::string_view hi, const KvVisitor& visit) const {
    if (fail_reads) return error(errc::io_error, "injected read failure");
    return inner.scan(lo, hi, visit);
  }
  result<void> write(const WriteBatch& batch, LogIndex index) {
    if (fail_writes) return error(errc::no_space, "injected write failure");
    return inner.write(batch, index);
  }
  [[nodiscard]] LogIndex applied_index() const { return inner.applied_index(); }
  result<void> clear(LogIndex index) { return inner.clear(index); }

  memory::KvStore inner;
  bool fail_writes = false;
  bool fail_reads = false;
};
static_assert(dengine::KvStore<FlakyStore>);

/// A state machine over its own store, fed through log entries.
template <class Store = memory::KvStore>
struct Harness {
  explicit Harness(KvOptions options = {}) { open(options); }

  void open(KvOptions options = {}) {
    sm.reset();
    auto r = KvStateMachine<Store>::open(store, options);
    REQUIRE(r);
    sm = std::move(r).value();
    next_index = sm->applied_index() + 1;
  }

  /// Applies one command as one normal entry.
  result<Response> run(const Command& cmd) { return run_raw(encode_command(cmd)); }

  /// Applies raw entry data.
  result<Response> run_raw(std::string data, EntryType type = EntryType::normal) {
    std::vector<Entry> batch{Entry{1, next_index++, type, std::move(data)}};
    std::vector<result<Response>> out;
    auto r = sm->apply(batch, out);
    REQUIRE(r);
    REQUIRE(out.size() == 1);
    return std::move(out.front());
  }

  /// Applies several commands as one batch.
  std::vector<result<Response>> run_batch(const std::vector<Command>& cmds) {
    std::vector<Entry> batch;
    batch.reserve(cmds.size());
    for (const auto& c : cmds)
      batch.push_back(Entry{1, next_index++, EntryType::normal, encode_command(c)});
    std::vector<result<Response>> out;
    auto r = sm->apply(batch, out);
    REQUIRE(r);
    REQUIRE(out.size() == cmds.size());
    return out;
  }

  template <class T>
  T ok(const Command& cmd) {
    auto r = run(cmd);
    if (!r) FAIL("command failed: " << r.error().message());
    REQUIRE(std::holds_alternative<T>(r.value()));
    return std::get<T>(r.value());
  }

  PutResponse put(std::string key, std::string value, LeaseId lease = 0) {
    PutRequest p;
    p.key = std::move(key);
    p.value = std::move(value);
    p.lease = lease;
    p.prev_kv = true;
    return ok<PutResponse>(p);
  }
  DeleteRangeResponse del(std::string key, std::string range_end = {}) {
    return ok<DeleteRangeResponse>(DeleteRangeRequest{std::move(key), std::move(range_end), true});
  }
  TxnResponse txn(const TxnRequest& t) { return ok<TxnResponse>(t); }
  LeaseGrantResponse grant(std::int64_t ttl, LeaseId id = 0) {
    return ok<LeaseGrantResponse>(LeaseGrantRequest{ttl, id});
  }

  RangeResponse get(std::string key, std::string range_end = {}, Revision rev = 0) {
    RangeRequest r;
    r.key = std::move(key);
    r.range_end = std::move(range_end);
    r.revision = rev;
    auto resp = sm->range(r);
    if (!resp) FAIL("range failed: " << resp.error().message());
    return std::move(resp).value();
  }
  RangeResponse range(const RangeRequest& r, const ExpiredPredicate& expired = {}) {
    auto resp = sm->range(r, expired);
    if (!resp) FAIL("range failed: " << resp.error().message());
    return std::move(resp).value();
  }
  std::vector<std::string> keys(std::string key, std::string range_end, Revision rev = 0) {
    std::vector<std::string> out;
    for (const auto& kv : get(std::move(key), std::move(range_end), rev).kvs) out.push_back(kv.key);
    return out;
  }

  Store store;
  std::unique_ptr<KvStateMachine<Store>> sm;
  LogIndex next_index = 1;
};

/// A Compare on `key` with an integer operand on the given target.
inline Compare cmp(std::string key, CompareTarget target, CompareResult result,
                   std::int64_t operand) {
  Compare c;
  c.key = std::move(key);
  c.target = target;
  c.result = result;
  switch (target) {
    case CompareTarget::version: c.version = operand; break;
    case CompareTarget::create: c.create_revision = operand; break;
    case CompareTarget::mod: c.mod_revision = operand; break;
    case CompareTarget::lease: c.lease = operand; break;
    case CompareTarget::value: break;
  }
  return c;
}

/// A VALUE Compare.
inline Compare cmp_value(std::string key, CompareResult result, std::string value) {
  Compare c;
  c.key = std::move(key);
  c.target = CompareTarget::value;
  c.result = result;
  c.value = std::move(value);
  return c;
}

inline RequestOp op_put(std::string key, std::string value, LeaseId lease = 0) {
  PutRequest p;
  p.key = std::move(key);
  p.value = std::move(value);
  p.lease = lease;
  return RequestOp{p};
}
inline RequestOp op_get(std::string key, std::string range_end = {}) {
  RangeRequest r;
  r.key = std::move(key);
  r.range_end = std::move(range_end);
  return RequestOp{r};
}
inline RequestOp op_del(std::string key, std::string range_end = {}) {
  return RequestOp{DeleteRangeRequest{std::move(key), std::move(range_end), true}};
}
inline RequestOp op_txn(TxnRequest t) { return RequestOp{box<TxnRequest>(std::move(t))}; }

/// The detail text of a failed result.
template <class T>
std::string error_text(const result<T>& r) {
  REQUIRE(!r);
  return r.error().detail;
}

}  // namespace kvtest
