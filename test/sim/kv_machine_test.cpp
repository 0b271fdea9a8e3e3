// Tests of the simulation's state machine: commands, apply, snapshot round trip.

#include <doctest/doctest.h>

#include "kv_machine.hpp"

using namespace dengine;
using namespace dengine::sim;

TEST_CASE("commands round-trip through an entry payload") {
  Command c{42, Command::Kind::cas, "x", "new", "old"};
  auto d = decode(encode(c));
  REQUIRE(d);
  CHECK(d->op_id == 42);
  CHECK(d->kind == Command::Kind::cas);
  CHECK(d->key == "x");
  CHECK(d->value == "new");
  CHECK(d->expected == "old");
  CHECK_FALSE(decode("garbage"));
  CHECK_FALSE(decode(""));
}

TEST_CASE("the machine applies puts and CAS in order and snapshots") {
  KvMachine m;
  std::vector<ApplyResult> out;
  std::vector<Entry> batch{
      {1, 1, EntryType::noop, {}},
      {1, 2, EntryType::normal, encode({7, Command::Kind::put, "x", "a", {}})},
      {1, 3, EntryType::normal, encode({8, Command::Kind::cas, "x", "b", "zzz"})},
      {1, 4, EntryType::normal, encode({9, Command::Kind::cas, "x", "c", "a"})},
  };
  REQUIRE(m.apply(batch, out));
  REQUIRE(out.size() == 4);
  CHECK(out[0].op_id == 0);
  CHECK(out[1].op_id == 7);
  CHECK_FALSE(out[2].ok);
  CHECK(out[3].ok);
  CHECK(m.get("x") == "c");
  CHECK(m.get("nope").empty());
  CHECK(m.applied_index() == 4);

  // Out of order is an error, not a silent skip.
  std::vector<Entry> gap{{1, 9, EntryType::noop, {}}};
  CHECK_FALSE(m.apply(gap, out));

  StringSnapshotSink sink;
  REQUIRE(m.snapshot(sink));
  KvMachine r;
  StringSnapshotSource src(sink.data);
  auto idx = r.restore(src);
  REQUIRE(idx);
  CHECK(idx.value() == 4);
  CHECK(r.get("x") == "c");

  StringSnapshotSource bad("12x\n");
  CHECK_FALSE(r.restore(bad));
  CHECK(r.get("x") == "c");  // a failed restore changes nothing
}
