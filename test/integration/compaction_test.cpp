// The log is compacted across restarts (issue 10, item 7): the snapshot trigger counts the bytes
// applied since the last snapshot as recovered from disk, not since the process started, so a
// node restarted more often than every snapshot_threshold_bytes of writes still compacts.

#include <doctest/doctest.h>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "../backends/built_backends.hpp"
#include "dengine/backends/memory.hpp"
#include "dengine/conformance/temp_dir.hpp"
#include "dengine/engine/embedded_engine.hpp"
#include "engine_harness.hpp"
#include "harness.hpp"

namespace dengine::test {
namespace {

#define DENGINE_COMPACTION_BACKENDS memory::Backend DENGINE_TEST_EXTRA_BACKENDS

}  // namespace

TEST_SUITE("integration") {
  TEST_CASE_TEMPLATE("compaction: a node restarted between small bursts of writes compacts its log",
                     B, DENGINE_COMPACTION_BACKENDS) {
    if (!B::persistent) return;  // nothing outlives the process in memory
    // Each incarnation writes about a third of the threshold: a trigger that starts from zero
    // at every start never fires; one that counts what the log holds since the last snapshot
    // fires in the third.
    constexpr std::size_t threshold = std::size_t{32} * 1024;
    constexpr int incarnations = 6;
    constexpr int puts_per_incarnation = 80;
    TempDir dir;
    auto config = [&] {
      auto c = engine::EngineConfig::single_node(dir.path());
      c.node = test_config(1, {1});
      c.node.snapshot_threshold_bytes = threshold;
      return c;
    };
    std::map<std::string, std::string> expected;
    std::uint64_t snapshots = 0;
    for (int round = 0; round < incarnations; ++round) {
      CAPTURE(round);
      auto e = start_ready<B>(config());
      auto kv = e->client();
      for (int i = 0; i < puts_per_incarnation; ++i) {
        const std::string key = "k" + std::to_string(i % 10);
        const std::string value =
            std::to_string(round) + ":" + std::to_string(i) + std::string(100, 'v');
        REQUIRE(kv.put(key, value));
        expected[key] = value;
      }
      snapshots += e->node_metrics().snapshots_taken.value();
      REQUIRE(e->stop());
    }
    CHECK(snapshots > 0);

    // Whatever the last incarnation left pending, the next start has the bytes applied since
    // the last snapshot to count from: the log is (or is soon) compacted, and nothing is lost.
    auto e = start_ready<B>(config());
    CHECK(eventually([&] { return e->storage().first_index() > 1; }));
    auto kv = e->client();
    for (const auto& [key, value] : expected) {
      auto got = kv.get(key);
      REQUIRE(got);
      REQUIRE(got.value().has_value());
      CHECK(got.value()->value == value);
    }
    REQUIRE(e->stop());
  }
}

}  // namespace dengine::test
