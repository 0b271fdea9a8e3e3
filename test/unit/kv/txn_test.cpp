// Txn semantics: compares on every target with every result, missing keys, atomicity, nested
// txns, reads of own writes, and etcd's request checks.

#include "kv_test_support.hpp"

using namespace kvtest;

namespace {

bool holds(Harness<>& h, Compare c) {
  TxnRequest t;
  t.compare.push_back(std::move(c));
  return h.txn(t).succeeded;
}

}  // namespace

TEST_CASE("kv txn: every compare target and result on an existing key") {
  Harness h;
  const LeaseId lease = h.grant(60, 7).id;
  h.put("k", "m");         // rev 2 (grant did not bump)
  h.put("k", "m", lease);  // rev 3: version 2, create 2, mod 3, lease 7
  using T = CompareTarget;
  using R = CompareResult;
  struct Case {
    T target;
    std::int64_t actual;
  };
  for (Case c : {Case{T::version, 2}, Case{T::create, 2}, Case{T::mod, 3}, Case{T::lease, 7}}) {
    CAPTURE(static_cast<int>(c.target));
    CHECK(holds(h, cmp("k", c.target, R::equal, c.actual)));
    CHECK(!holds(h, cmp("k", c.target, R::equal, c.actual + 1)));
    CHECK(holds(h, cmp("k", c.target, R::greater, c.actual - 1)));
    CHECK(!holds(h, cmp("k", c.target, R::greater, c.actual)));
    CHECK(holds(h, cmp("k", c.target, R::less, c.actual + 1)));
    CHECK(!holds(h, cmp("k", c.target, R::less, c.actual)));
    CHECK(holds(h, cmp("k", c.target, R::not_equal, c.actual + 1)));
    CHECK(!holds(h, cmp("k", c.target, R::not_equal, c.actual)));
  }
  CHECK(holds(h, cmp_value("k", R::equal, "m")));
  CHECK(!holds(h, cmp_value("k", R::equal, "n")));
  CHECK(holds(h, cmp_value("k", R::greater, "l")));
  CHECK(holds(h, cmp_value("k", R::greater, "")));
  CHECK(!holds(h, cmp_value("k", R::greater, "m")));
  CHECK(holds(h, cmp_value("k", R::less, "n")));
  CHECK(holds(h, cmp_value("k", R::less, "ma")));
  CHECK(!holds(h, cmp_value("k", R::less, "m")));
  CHECK(holds(h, cmp_value("k", R::not_equal, "x")));
  CHECK(!holds(h, cmp_value("k", R::not_equal, "m")));
  // Values compare as unsigned bytes.
  h.put("hi", "\xff");
  CHECK(holds(h, cmp_value("hi", R::greater, "\x7f")));
}

TEST_CASE("kv txn: a missing key compares as version/create/mod/lease 0 and fails VALUE") {
  Harness h;
  using T = CompareTarget;
  using R = CompareResult;
  for (T t : {T::version, T::create, T::mod, T::lease}) {
    CHECK(holds(h, cmp("nope", t, R::equal, 0)));
    CHECK(holds(h, cmp("nope", t, R::less, 1)));
    CHECK(!holds(h, cmp("nope", t, R::greater, 0)));
  }
  CHECK(!holds(h, cmp_value("nope", R::equal, "")));
  CHECK(!holds(h, cmp_value("nope", R::not_equal, "x")));
  // A deleted key is missing too.
  h.put("gone", "v");
  h.del("gone");
  CHECK(holds(h, cmp("gone", T::version, R::equal, 0)));
  CHECK(holds(h, cmp("gone", T::create, R::equal, 0)));
}

TEST_CASE("kv txn: a compare over a range must hold for every key in it") {
  Harness h;
  h.put("p/a", "1");
  h.put("p/b", "1");
  Compare c = cmp("p/", CompareTarget::version, CompareResult::equal, 1);
  c.range_end = "p0";
  CHECK(holds(h, c));
  h.put("p/b", "2");
  CHECK(!holds(h, c));
  c.result = CompareResult::greater;
  c.version = 0;
  CHECK(holds(h, c));
  // An empty range compares like a missing key.
  Compare empty = cmp("q/", CompareTarget::create, CompareResult::equal, 0);
  empty.range_end = "q0";
  CHECK(holds(h, empty));
}

TEST_CASE(
    "kv txn: success and failure branches, one revision for all writes, reads see own writes") {
  Harness h;
  h.put("x", "0");  // rev 2
  TxnRequest t;
  t.compare.push_back(cmp("x", CompareTarget::version, CompareResult::equal, 1));
  t.success = {op_put("a", "1"), op_put("b", "2"), op_get("a", "c"), op_del("x")};
  t.failure = {op_put("f", "1")};
  auto resp = h.txn(t);
  CHECK(resp.succeeded);
  CHECK(resp.header.revision == 3);
  REQUIRE(resp.responses.size() == 4);
  // The range saw the txn's own puts.
  const auto& read = std::get<RangeResponse>(resp.responses[2].response);
  REQUIRE(read.kvs.size() == 2);
  CHECK(read.kvs[0] == KeyValue{"a", 3, 3, 1, "1", 0});
  CHECK(read.count == 2);
  CHECK(std::get<DeleteRangeResponse>(resp.responses[3].response).deleted == 1);
  for (const auto& r : resp.responses) {
    std::visit(
        [](const auto& x) {
          if constexpr (!std::is_same_v<std::decay_t<decltype(x)>, box<TxnResponse>>)
            CHECK(x.header.revision == 3);
        },
        r.response);
  }
  CHECK(h.get("a").kvs.at(0).mod_revision == 3);
  CHECK(h.get("b").kvs.at(0).mod_revision == 3);
  CHECK(h.get("x").kvs.empty());
  CHECK(h.get("f").kvs.empty());
  // Now the compare fails: the failure branch runs.
  resp = h.txn(t);
  CHECK(!resp.succeeded);
  CHECK(resp.header.revision == 4);
  CHECK(h.get("f").kvs.at(0).mod_revision == 4);
  // A txn with only reads does not change the revision.
  TxnRequest ro;
  ro.success = {op_get("a")};
  CHECK(h.txn(ro).header.revision == 4);
  CHECK(h.sm->current_revision() == 4);
}

TEST_CASE("kv txn: delete then put of the same key in one txn via a range delete") {
  Harness h;
  h.put("k", "old");  // rev 2
  TxnRequest t;
  // etcd 3.4's overlap check compares range_end "\0" literally, so this pair is accepted.
  t.success = {op_del("a", std::string(1, '\0')), op_put("k", "new")};
  auto resp = h.txn(t);
  CHECK(resp.header.revision == 3);
  auto kv = h.get("k").kvs.at(0);
  CHECK(kv == KeyValue{"k", 3, 3, 1, "new", 0});  // a new life: version 1
  CHECK(h.get("k", {}, 2).kvs.at(0).value == "old");
}

TEST_CASE("kv txn: nested txns take their branch from the state before the txn") {
  Harness h;
  h.put("flag", "on");  // 2
  TxnRequest inner;
  inner.compare.push_back(cmp("a", CompareTarget::version, CompareResult::equal, 0));
  inner.success = {op_put("inner-then", "1")};
  inner.failure = {op_put("inner-else", "1")};
  TxnRequest outer;
  outer.compare.push_back(cmp_value("flag", CompareResult::equal, "on"));
  outer.success = {op_put("a", "1"), op_txn(inner)};
  auto resp = h.txn(outer);
  CHECK(resp.succeeded);
  REQUIRE(resp.responses.size() == 2);
  const auto& nested = *std::get<box<TxnResponse>>(resp.responses[1].response);
  // "a" did not exist before the txn, so the inner compare held although the outer put it.
  CHECK(nested.succeeded);
  CHECK(nested.header.revision == 3);
  CHECK(h.get("inner-then").kvs.size() == 1);
  CHECK(h.get("inner-else").kvs.empty());
  CHECK(h.get("a").kvs.at(0).mod_revision == 3);
}

TEST_CASE("kv txn: a failing op fails the whole txn and writes nothing") {
  Harness h;
  h.put("keep", "v");
  const Revision before = h.sm->current_revision();
  TxnRequest t;
  t.success = {op_put("a", "1"), op_put("b", "2", /*lease=*/999)};
  auto r = h.run(t);
  REQUIRE(!r);
  CHECK(r.error().detail == "etcdserver: requested lease not found");
  CHECK(h.sm->current_revision() == before);
  CHECK(h.get("a").kvs.empty());
  // ignore_value on a missing key, inside a txn.
  PutRequest iv;
  iv.key = "missing";
  iv.ignore_value = true;
  TxnRequest t2;
  t2.success = {op_put("a", "1"), RequestOp{iv}};
  CHECK(error_text(h.run(t2)) == "etcdserver: key not found");
  // A range at a future revision, inside a txn.
  RangeRequest future;
  future.key = "keep";
  future.revision = before + 5;
  TxnRequest t3;
  t3.success = {op_put("a", "1"), RequestOp{future}};
  auto f = h.run(t3);
  REQUIRE(!f);
  CHECK(f.error() == errc::future_revision);
  CHECK(h.get("a").kvs.empty());
  CHECK(h.sm->current_revision() == before);
}

TEST_CASE("kv txn: etcd's request checks") {
  Harness h;
  SUBCASE("duplicate put") {
    TxnRequest t;
    t.success = {op_put("k", "1"), op_put("k", "2")};
    CHECK(error_text(h.run(t)) == "etcdserver: duplicate key given in txn request");
  }
  SUBCASE("put inside a deleted range") {
    TxnRequest t;
    t.success = {op_del("a", "m"), op_put("k", "2")};
    CHECK(error_text(h.run(t)) == "etcdserver: duplicate key given in txn request");
  }
  SUBCASE("put duplicated by a nested txn") {
    TxnRequest inner;
    inner.success = {op_put("k", "1")};
    TxnRequest t;
    t.success = {op_txn(inner), op_put("k", "2")};
    CHECK(error_text(h.run(t)) == "etcdserver: duplicate key given in txn request");
  }
  SUBCASE("the same key in both branches of a nested txn is fine") {
    TxnRequest inner;
    inner.success = {op_put("k", "1")};
    inner.failure = {op_put("k", "2")};
    TxnRequest t;
    t.success = {op_txn(inner)};
    CHECK(h.run(t));
  }
  SUBCASE("the same key in the success and failure branches is fine") {
    TxnRequest t;
    t.success = {op_put("k", "1")};
    t.failure = {op_put("k", "2")};
    CHECK(h.run(t));
  }
  SUBCASE("empty compare key") {
    TxnRequest t;
    t.compare.push_back(cmp("", CompareTarget::version, CompareResult::equal, 0));
    CHECK(error_text(h.run(t)) == "etcdserver: key is not provided");
  }
  SUBCASE("empty op key") {
    TxnRequest t;
    t.success = {op_get("")};
    CHECK(error_text(h.run(t)) == "etcdserver: key is not provided");
  }
  SUBCASE("too many ops, checked before proposing") {
    TxnRequest t;
    for (int i = 0; i < 129; ++i) t.success.push_back(op_put("k" + std::to_string(i), "v"));
    auto enc = encode_proposal(t);
    REQUIRE(!enc);
    CHECK(enc.error().detail == "etcdserver: too many operations in txn request");
    t.success.pop_back();
    CHECK(encode_proposal(t));
    RequestLimits small;
    small.max_txn_ops = 4;
    CHECK(!encode_proposal(t, small));
    // Nested levels get what the outer level leaves.
    TxnRequest inner;
    inner.success = {op_put("x", "1"), op_put("y", "1")};
    TxnRequest outer;
    outer.success = {op_txn(inner), op_put("a", "1"), op_put("b", "1")};
    CHECK(!encode_proposal(outer, small));
    small.max_txn_ops = 5;
    CHECK(encode_proposal(outer, small));
  }
}

TEST_CASE("kv proposal: request size limit") {
  PutRequest p;
  p.key = "k";
  p.value.assign(1572864, 'x');
  auto big = encode_proposal(p);
  REQUIRE(!big);
  CHECK(big.error() == errc::too_large);
  CHECK(big.error().detail == "etcdserver: request is too large");
  CHECK(grpc_status(big.error()) == grpc_code::invalid_argument);
  p.value.resize(1572864 - 16);
  CHECK(encode_proposal(p));
  RequestLimits limits;
  limits.max_request_bytes = 100;
  p.value.assign(200, 'x');
  CHECK(!encode_proposal(p, limits));
}

TEST_CASE("kv read_txn: answered without the log, refuses writes, hides expired keys") {
  Harness h;
  const LeaseId lease = h.grant(10).id;
  h.put("k", "v", lease);
  TxnRequest t;
  t.compare.push_back(cmp("k", CompareTarget::version, CompareResult::greater, 0));
  t.success = {op_get("k")};
  t.failure = {op_get("other")};
  auto r = h.sm->read_txn(t);
  REQUIRE(r);
  CHECK(r.value().succeeded);
  CHECK(std::get<RangeResponse>(r.value().responses[0].response).kvs.size() == 1);
  ExpiredPredicate expired = [&](LeaseId id) { return id == lease; };
  r = h.sm->read_txn(t, expired);
  REQUIRE(r);
  CHECK(!r.value().succeeded);
  TxnRequest w;
  w.success = {op_put("k", "v")};
  CHECK(!h.sm->read_txn(w));
}
