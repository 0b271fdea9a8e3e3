#pragma once
/// dengine: the umbrella header. Include this for the core value types, errors, configuration,
/// the storage concepts and the pure Raft core. Backends and state machines have their own
/// headers (dengine/backends/<name>.hpp, dengine/statemachines/kv/...).

#include "dengine/core/config.hpp"
#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/raft/config_change.hpp"
#include "dengine/raft/core.hpp"
#include "dengine/raft/message.hpp"
#include "dengine/raft/ready.hpp"
#include "dengine/storage/concepts.hpp"
#include "dengine/storage/snapshot_io.hpp"
#include "dengine/storage/write_batch.hpp"
