// What a user's translation unit that runs an EmbeddedEngine costs to compile (issue "Writing
// your own storage engine...", item 6; bench/compile-cost/run measures it). The backend is chosen
// with -DCC_BACKEND=<memory|rawfile|lmdb|sqlite> and its header with -include
// dengine/backends/<name>.hpp: open an engine, put, get, stop.
#include <chrono>
#include <cstdio>
#include <string>

#include "dengine/engine/embedded_engine.hpp"

using Engine = dengine::EmbeddedEngine<dengine::CC_BACKEND::Backend>;

int main(int argc, char** argv) {
  dengine::engine::EngineConfig config;
  config.data_dir = argc > 1 ? argv[1] : "/tmp/dengine-compile-cost";
  auto started = Engine::start(config);
  if (!started) return 1;
  Engine& engine = *started.value();
  if (!engine.wait_ready(std::chrono::seconds(5))) return 1;
  auto client = engine.client();
  if (!client.put("k", "v")) return 1;
  auto got = client.get("k");
  std::printf("%s\n", got && got.value() ? got.value()->value.c_str() : "-");
  return engine.stop() ? 0 : 1;
}
