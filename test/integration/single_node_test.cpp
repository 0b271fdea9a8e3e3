// A single node in the threaded arrangement: propose, apply, read in all three consistencies.

#include <doctest/doctest.h>

#include <future>
#include <string>

#include "harness.hpp"

namespace dengine::test {
namespace {

using node::ReadConsistency;

TEST_SUITE("integration") {
  TEST_CASE("single node: propose, apply and read in every consistency") {
    Disk disk;
    CounterMachine sm;
    node::LocalHub hub;
    auto opened = ThreadedNode::open(test_config(1, {1}), disk.engine, sm, disk.snapshots,
                                     node::LocalTransport(hub, 1));
    REQUIRE(opened);
    auto& n = *opened.value();
    REQUIRE(eventually([&] { return n.is_leader(); }));

    auto r1 = n.propose_wait(add_cmd("x", 5));
    REQUIRE(r1);
    CHECK(r1.value().value == 5);
    auto r2 = n.propose_wait(add_cmd("x", 2));
    REQUIRE(r2);
    CHECK(r2.value().value == 7);
    CHECK(r2.value().index == r1.value().index + 1);

    for (auto c : {ReadConsistency::linearizable, ReadConsistency::lease, ReadConsistency::serializable}) {
      CAPTURE(node::to_string(c));
      auto v = n.read_wait(c, [](const CounterMachine& m) { return m.get("x"); });
      REQUIRE(v);
      CHECK(v.value() == 7);
    }
    REQUIRE(n.stop());
  }
}

}  // namespace
}  // namespace dengine::test
