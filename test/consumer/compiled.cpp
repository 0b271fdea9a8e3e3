// The compiled mode from outside the dengine tree (docs/building.md, "Compiled mode"): an
// EmbeddedEngine over the memory backend whose code comes from libdengine-embedded-memory,
// found through dengine-embedded-memory.pc or the subproject's dependency of the same name.
// Exit status 0 when it starts, stores, reads back and stops.

#include <chrono>
#include <cstdio>

#include "dengine/engine/embedded_engine.hpp"

#ifndef DENGINE_COMPILED_MEMORY
#error "dengine-embedded-memory must define DENGINE_COMPILED_MEMORY (and DENGINE_COMPILED)"
#endif

int main() {
  using Engine = dengine::EmbeddedEngine<dengine::memory::Backend>;
  auto started = Engine::start(dengine::engine::EngineConfig::single_node({}));
  if (!started) {
    std::fprintf(stderr, "dengine-consumer-compiled: start: %s\n",
                 started.error().message().c_str());
    return 1;
  }
  Engine& engine = *started.value();
  auto kv = engine.client();
  const bool ok = engine.wait_ready(std::chrono::seconds(10)) && kv.put("k", "v") &&
                  kv.get("k").value().value_or(dengine::kv::KeyValue{}).value == "v";
  if (!engine.stop() || !ok) {
    std::fprintf(stderr, "dengine-consumer-compiled: FAILED: put then get of k\n");
    return 1;
  }
  return 0;
}
