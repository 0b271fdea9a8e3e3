#pragma once
/// The in-memory backend: dengine::memory::Engine (a StorageEngine with crash simulation) and
/// dengine::memory::KvStore (a KvStore). For tests, the simulator and single-process examples.

#include "dengine/backends/memory/backend.hpp"  // IWYU pragma: export
#include "dengine/backends/memory/engine.hpp"
#include "dengine/backends/memory/kv_store.hpp"
