#pragma once
/// The KV state machine (etcd v3 data model) — include this one header. See docs/kv.md.

#include "dengine/statemachines/kv/codec.hpp"
#include "dengine/statemachines/kv/codec_response.hpp"
#include "dengine/statemachines/kv/errors.hpp"
#include "dengine/statemachines/kv/kv_core.hpp"
#include "dengine/statemachines/kv/lessor.hpp"
#include "dengine/statemachines/kv/requests.hpp"
#include "dengine/statemachines/kv/state_machine.hpp"
#include "dengine/statemachines/kv/types.hpp"
#include "dengine/statemachines/kv/watch_hub.hpp"
