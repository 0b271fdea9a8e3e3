// Tests of the linearizability checker: histories known to be (non-)linearizable.

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "dengine/sim/random.hpp"
#include "linearizability.hpp"

using namespace dengine::sim;
using namespace dengine::sim::lin;

namespace {

using Kind = RegisterInput::Kind;

RegisterOp write(std::uint64_t client, std::string v, std::uint64_t call, std::uint64_t ret) {
  return {client, {Kind::write, std::move(v), {}}, RegisterOutput{true, {}}, call, ret};
}
RegisterOp read(std::uint64_t client, std::string v, std::uint64_t call, std::uint64_t ret) {
  return {client, {Kind::read, {}, {}}, RegisterOutput{true, std::move(v)}, call, ret};
}
RegisterOp cas(std::uint64_t client, std::string from, std::string to, bool ok, std::uint64_t call,
               std::uint64_t ret) {
  return {client, {Kind::cas, std::move(to), std::move(from)}, RegisterOutput{ok, {}}, call, ret};
}
RegisterOp unknown(const RegisterOp& op) {
  RegisterOp u;
  u.client = op.client;
  u.input = op.input;
  u.call = op.call;
  return u;
}

Verdict verdict(const std::vector<RegisterOp>& h, std::uint64_t budget = 1'000'000) {
  return check<RegisterModel>(std::span<const RegisterOp>(h), budget).verdict;
}

}  // namespace

TEST_CASE("trivially linearizable histories") {
  CHECK(verdict({}) == Verdict::linearizable);
  CHECK(verdict({read(1, "", 0, 1)}) == Verdict::linearizable);
  CHECK(verdict({write(1, "a", 0, 10), read(2, "a", 20, 30)}) == Verdict::linearizable);
  // Concurrent read may see the old or the new value.
  CHECK(verdict({write(1, "a", 0, 10), read(2, "", 5, 15)}) == Verdict::linearizable);
  CHECK(verdict({write(1, "a", 0, 10), read(2, "a", 5, 15)}) == Verdict::linearizable);
  // Operations touching at one instant are concurrent.
  CHECK(verdict({write(1, "a", 0, 10), read(2, "", 10, 15)}) == Verdict::linearizable);
}

TEST_CASE("stale read after a completed write is not linearizable") {
  CHECK(verdict({write(1, "a", 0, 10), read(2, "", 20, 30)}) == Verdict::not_linearizable);
  CHECK(verdict({write(1, "a", 0, 10), write(1, "b", 20, 30), read(2, "a", 40, 50)}) ==
        Verdict::not_linearizable);
  // A read of a value nobody wrote.
  CHECK(verdict({write(1, "a", 0, 10), read(2, "zzz", 5, 15)}) == Verdict::not_linearizable);
}

TEST_CASE("two concurrent writes observed in both orders is not linearizable") {
  std::vector<RegisterOp> h{
      write(1, "a", 0, 100), write(2, "b", 0, 100),
      read(3, "b", 10, 20),  read(3, "a", 30, 40),  // client 3 sees b then a
      read(4, "a", 10, 20),  read(4, "b", 30, 40),  // client 4 sees a then b
  };
  CHECK(verdict(h) == Verdict::not_linearizable);
  // One observer alone is fine.
  h.resize(4);
  CHECK(verdict(h) == Verdict::linearizable);
}

TEST_CASE("lost CAS: two swaps from the same value cannot both succeed") {
  CHECK(verdict({cas(1, "", "x", true, 0, 10), cas(2, "", "y", true, 20, 30)}) ==
        Verdict::not_linearizable);
  CHECK(verdict({cas(1, "", "x", true, 0, 10), cas(2, "", "y", true, 5, 30)}) ==
        Verdict::not_linearizable);
  CHECK(verdict({cas(1, "", "x", true, 0, 10), cas(2, "", "y", false, 5, 30)}) ==
        Verdict::linearizable);
  // A successful swap whose effect is then lost.
  CHECK(verdict({cas(1, "", "x", true, 0, 10), read(2, "", 20, 30)}) == Verdict::not_linearizable);
  // A failed CAS while the value matched.
  CHECK(verdict({write(1, "a", 0, 10), cas(2, "a", "b", false, 20, 30)}) ==
        Verdict::not_linearizable);
  CHECK(verdict({write(1, "a", 0, 10), cas(2, "a", "b", true, 20, 30), read(3, "b", 40, 50)}) ==
        Verdict::linearizable);
}

TEST_CASE("unknown outcomes may take effect or not, but not both") {
  const RegisterOp w = unknown(write(1, "a", 0, 10));
  CHECK(verdict({w}) == Verdict::linearizable);
  CHECK(verdict({w, read(2, "a", 20, 30)}) == Verdict::linearizable);  // took effect
  CHECK(verdict({w, read(2, "", 20, 30)}) == Verdict::linearizable);   // did not (yet)
  CHECK(verdict({w, read(2, "", 20, 30), read(2, "a", 40, 50)}) == Verdict::linearizable);  // late
  CHECK(verdict({w, read(2, "a", 20, 30), read(2, "", 40, 50)}) == Verdict::not_linearizable);
  // It cannot take effect before it was invoked.
  CHECK(verdict({read(2, "a", 0, 5), unknown(write(1, "a", 10, 0))}) == Verdict::not_linearizable);
  // Unknown CAS: its effect depends on the state it is linearized in.
  const RegisterOp c = unknown(cas(1, "a", "b", true, 20, 0));
  CHECK(verdict({write(3, "a", 0, 10), c, read(2, "b", 40, 50)}) == Verdict::linearizable);
  CHECK(verdict({write(3, "z", 0, 10), c, read(2, "b", 40, 50)}) == Verdict::not_linearizable);
}

TEST_CASE("the step budget turns a long search into unknown") {
  std::vector<RegisterOp> h{write(1, "a", 0, 100), write(2, "b", 0, 100), read(3, "b", 10, 20),
                            read(3, "a", 30, 40)};
  auto r = check<RegisterModel>(std::span<const RegisterOp>(h), 2);
  CHECK(r.verdict == Verdict::unknown);
  CHECK(r.steps > 2);
}

TEST_CASE("a non-linearizable verdict reports the longest linearizable prefix") {
  std::vector<RegisterOp> h{write(1, "a", 0, 10), read(2, "a", 20, 30), read(2, "", 40, 50)};
  auto r = check<RegisterModel>(std::span<const RegisterOp>(h));
  CHECK(r.verdict == Verdict::not_linearizable);
  CHECK(r.longest_prefix == std::vector<std::size_t>{0, 1});
  CHECK(describe(h[2]) == "c2 read() = \"\" [40, 50]");
  CHECK(describe(unknown(cas(3, "a", "b", true, 1, 2))) ==
        "c3 cas(\"a\"->\"b\") = unknown [1, inf]");
}

namespace {

// A history generated from a sequential execution: each operation takes effect at a distinct
// instant t and its [call, ret] interval contains t, so the history is linearizable by
// construction while operations overlap heavily. Some operations are given unknown outcomes.
std::vector<KvOp> random_history(std::uint64_t seed, std::size_t n, std::size_t keys,
                                 std::size_t clients, double unknown_p) {
  Rng rng(seed);
  std::map<std::string, std::string> state;
  std::vector<std::uint64_t> client_free(clients, 0);  // a client has one operation at a time
  std::vector<KvOp> out;
  std::uint64_t t = 1000;
  for (std::size_t i = 0; i < n; ++i) {
    t += rng.between(1, 20);
    // A client whose previous operation returned before t.
    std::size_t c = rng.below(clients);
    for (std::size_t k = 0; k < clients && client_free[c] >= t; ++k) c = (c + 1) % clients;
    if (client_free[c] >= t) {
      t = client_free[c] + 1;
    }
    const std::uint64_t call =
        std::max(client_free[c] + 1, t - std::min<std::uint64_t>(t, rng.between(0, 100)));
    const std::uint64_t ret = t + rng.between(0, 100);
    client_free[c] = ret;
    std::string key = "k" + std::to_string(rng.below(keys));
    std::string& cur = state[key];
    RegisterOp op;
    op.client = c;
    op.call = call;
    op.ret = ret;
    RegisterOutput& result = op.output.emplace();
    switch (rng.below(3)) {
      case 0:
        op.input = {Kind::read, {}, {}};
        result.value = cur;
        break;
      case 1:
        op.input = {Kind::write, "v" + std::to_string(i), {}};
        cur = op.input.value;
        break;
      default: {
        const bool hit = rng.chance(0.5);
        op.input = {Kind::cas, "v" + std::to_string(i), hit ? cur : "nope"};
        result.ok = hit;
        if (hit) cur = op.input.value;
        break;
      }
    }
    if (op.input.kind != Kind::read && rng.chance(unknown_p)) {
      op.output.reset();  // it did take effect; the client just never learned
      client_free[c] = t;
    }
    out.push_back({key, op});
  }
  return out;
}

}  // namespace

TEST_CASE("a large random linearizable history checks quickly") {
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    auto h = random_history(seed, 3000, 3, 6, 0.05);
    auto r = check_kv(std::span<const KvOp>(h), 200'000);
    INFO("seed " << seed << " steps " << r.steps);
    CHECK(r.verdict == Verdict::linearizable);
  }
}

TEST_CASE("a corrupted read in a large history is caught, per key") {
  // Few unknown outcomes: each pending unknown operation doubles the space a failing search must
  // exhaust (the simulator resolves most of them from the replicated log before checking).
  auto h = random_history(11, 2000, 3, 6, 0.002);
  // Make one late read return a value that was never written.
  for (auto it = h.rbegin(); it != h.rend(); ++it) {
    if (it->op.input.kind == Kind::read && it->op.output) {
      it->op.output->value = "never-written";
      const std::string key = it->key;
      auto r = check_kv(std::span<const KvOp>(h), 1'000'000);
      CHECK(r.verdict == Verdict::not_linearizable);
      CHECK(r.key == key);
      CHECK_FALSE(r.key_history.empty());
      break;
    }
  }
}

TEST_CASE("a failing search over many unknown outcomes stops at the budget") {
  auto h = random_history(12, 2000, 1, 6, 0.1);
  for (auto it = h.rbegin(); it != h.rend(); ++it) {
    if (it->op.input.kind == Kind::read && it->op.output) {
      it->op.output->value = "never-written";
      break;
    }
  }
  auto r = check_kv(std::span<const KvOp>(h), 100'000);
  CHECK(r.verdict != Verdict::linearizable);
  CHECK(r.steps <= 100'001);
}

TEST_CASE("check_kv checks keys independently") {
  std::vector<KvOp> h{
      {"x", write(1, "a", 0, 10)},
      {"y", read(2, "", 20, 30)},  // fine: y was never written
      {"x", read(2, "a", 20, 30)},
  };
  CHECK(check_kv(std::span<const KvOp>(h)).verdict == Verdict::linearizable);
  h.push_back({"y", read(3, "a", 40, 50)});  // y never held "a"
  auto r = check_kv(std::span<const KvOp>(h));
  CHECK(r.verdict == Verdict::not_linearizable);
  CHECK(r.key == "y");
}
