// The compiled mode end to end (docs/building.md, "Compiled mode"): this translation unit is
// built with the dengine-embedded-<backend> dependencies, so DENGINE_COMPILED is defined and it
// sees only the engine's declarations; every call below runs code from the libraries. Over every
// shipped backend that is built: the KV operations, a lease, a watch, membership queries, a
// restart of a persistent backend, and what a bad config answers. (test/compiled/meson.build
// also checks that this file's includes stay light: check-compiled-includes.)

#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <chrono>
#include <optional>
#include <string>

#include "dengine/conformance/temp_dir.hpp"
#include "dengine/engine/embedded_engine.hpp"

#ifndef DENGINE_COMPILED
#error "compiled_mode_test.cpp is built in the compiled mode (test/compiled/meson.build)"
#endif

namespace dengine::test {
namespace {

using engine::EngineConfig;
using engine::ReadConsistency;
using namespace std::chrono_literals;

/// A single node with short timing (the leases below expire in a second).
EngineConfig config_in(const std::filesystem::path& dir) {
  EngineConfig c = EngineConfig::single_node(dir);
  c.lessor.min_ttl = std::chrono::seconds(1);
  c.housekeeping_interval = 10ms;
  return c;
}

template <class B>
std::unique_ptr<EmbeddedEngine<B>> start_ready(const EngineConfig& config) {
  auto started = EmbeddedEngine<B>::start(config);
  REQUIRE_MESSAGE(started, started.error().message());
  auto engine = std::move(started).value();
  auto ready = engine->wait_ready(10s);
  REQUIRE_MESSAGE(ready, ready.error().message());
  return engine;
}

}  // namespace

// The backends whose compiled library this program links (compiled.hpp's macros).
#define DENGINE_COMPILED_TEST_BACKENDS memory::Backend DENGINE_COMPILED_TEST_EXTRA

TEST_CASE_TEMPLATE("compiled mode: an engine from the library serves every kind of request", B,
                   DENGINE_COMPILED_TEST_BACKENDS) {
  TempDir dir;
  auto e = start_ready<B>(config_in(dir.path()));
  auto kv = e->client();
  CHECK(e->is_leader());
  CHECK(e->leader_info().is_self);
  CHECK(e->id() == 1);

  auto put = kv.put("app/a", "1");
  REQUIRE(put);
  for (auto c :
       {ReadConsistency::linearizable, ReadConsistency::lease, ReadConsistency::serializable}) {
    auto got = kv.get("app/a", c);
    REQUIRE(got);
    REQUIRE(got.value().has_value());
    CHECK(got.value()->value == "1");
    CHECK(got.value()->create_revision == put.value().header.revision);
  }
  auto swapped = kv.compare_and_swap("app/a", std::string("1"), "2");
  REQUIRE(swapped);
  CHECK(swapped.value());
  auto not_swapped = kv.compare_and_swap("app/a", std::string("1"), "3");
  REQUIRE(not_swapped);
  CHECK_FALSE(not_swapped.value());

  auto watch = kv.watch_prefix("app/", put.value().header.revision);
  REQUIRE(watch);
  auto lease = kv.lease_grant(1);
  REQUIRE(lease);
  REQUIRE(kv.put("app/b", "leased", lease.value().id));
  auto ttl = kv.lease_time_to_live(lease.value().id, true);
  REQUIRE(ttl);
  CHECK(ttl.value().keys.size() == 1);
  REQUIRE(kv.lease_revoke(lease.value().id));
  auto gone = kv.get("app/b");
  REQUIRE(gone);
  CHECK_FALSE(gone.value().has_value());

  // The watch saw the first put, the swap, the leased put and its deletion, in order.
  std::vector<kv::Event> events;
  for (int i = 0; i < 100 && events.size() < 4; ++i) {
    for (auto& response : watch.value().wait(100ms))
      for (auto& event : response.events) events.push_back(event);
  }
  REQUIRE(events.size() == 4);
  CHECK(events[0].kv.value == "1");
  CHECK(events[1].kv.value == "2");
  CHECK(events[2].kv.key == "app/b");
  CHECK(events[3].type == kv::EventType::del);
  watch.value().cancel();

  auto prefix = kv.get_prefix("app/");
  REQUIRE(prefix);
  CHECK(prefix.value().size() == 1);
  auto deleted = kv.delete_prefix("app/");
  REQUIRE(deleted);
  CHECK(deleted.value().deleted == 1);
  CHECK(e->status().applied > 0);
  REQUIRE(e->stop());
  CHECK_FALSE(kv.put("late", "x"));  // a stopped engine refuses, it does not crash
}

TEST_CASE_TEMPLATE("compiled mode: a persistent engine keeps its data across a restart", B,
                   DENGINE_COMPILED_TEST_BACKENDS) {
  if constexpr (B::persistent) {
    TempDir dir;
    {
      auto e = start_ready<B>(config_in(dir.path()));
      REQUIRE(e->client().put("kept", "yes"));
      REQUIRE(e->stop());
    }
    auto e = start_ready<B>(config_in(dir.path()));
    auto got = e->client().get("kept");
    REQUIRE(got);
    REQUIRE(got.value().has_value());
    CHECK(got.value()->value == "yes");
  }
}

TEST_CASE_TEMPLATE("compiled mode: a bad config gets the engine's error", B,
                   DENGINE_COMPILED_TEST_BACKENDS) {
  TempDir dir;
  EngineConfig config = config_in(dir.path());
  config.node.raft.id = 0;
  auto started = EmbeddedEngine<B>::start(config);
  REQUIRE_FALSE(started);
  CHECK(started.error() == errc::invalid_argument);
  CHECK_MESSAGE(started.error().message().find("id must be non-zero") != std::string::npos,
                started.error().message());
}

}  // namespace dengine::test
