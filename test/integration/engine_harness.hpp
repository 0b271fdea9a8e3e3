#pragma once
/// Helpers shared by the integration tests of the embedded engine (engine/include/dengine/engine):
/// starting one and waiting until it serves, with the error in the test's output when it does not.

#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <utility>

#include "dengine/engine/config.hpp"
#include "dengine/engine/embedded_engine.hpp"

namespace dengine::test {

/// Starts an EmbeddedEngine<B> with `config` and waits (up to 20 s) until it serves; a failure
/// of either step fails the test case, showing the error.
template <class B>
std::unique_ptr<EmbeddedEngine<B>> start_ready(engine::EngineConfig config) {
  auto started = EmbeddedEngine<B>::start(std::move(config));
  REQUIRE_MESSAGE(started, (started ? "" : started.error().message()));
  auto e = std::move(started).value();
  auto ready = e->wait_ready(std::chrono::seconds(20));
  REQUIRE_MESSAGE(ready, (ready ? "" : ready.error().message()));
  return e;
}

}  // namespace dengine::test
