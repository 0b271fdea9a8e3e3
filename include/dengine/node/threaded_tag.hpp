#pragma once
/// node::Threaded, the production runtime tag (RuntimeTag, runtime.hpp), apart from the runtime
/// it names (ThreadedRuntime, threaded.hpp): a type that names a node or replica says `Threaded`
/// without compiling the threads, queues and Asio that the runtime is made of.

#include "dengine/core/error.hpp"
#include "dengine/node/clock.hpp"
#include "dengine/node/transport.hpp"
#include "dengine/storage/concepts.hpp"

namespace dengine::node {

/// Declared here, defined in threaded.hpp (same constraints: a redeclaration must match).
template <StorageEngine S, dengine::SnapshotStore SS, StateMachine M, Transport T, Clock C>
class ThreadedRuntime;

/// The production runtime tag (RuntimeTag, runtime.hpp): ThreadedRuntime on SteadyClock. The
/// default of Node.
struct Threaded {
  using clock_type = SteadyClock;
  static constexpr bool deterministic = false;
  template <StorageEngine S, dengine::SnapshotStore SS, StateMachine M, Transport T>
  using arrangement = ThreadedRuntime<S, SS, M, T, SteadyClock>;
  static result<void> check(const SteadyClock& /*clock*/) { return success(); }
};

}  // namespace dengine::node
