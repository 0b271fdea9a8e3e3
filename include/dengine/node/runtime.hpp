#pragma once
/// The runtime of a Node: the arrangement that runs its three roles (event loop, log writer,
/// applier), named by a tag type given as Node's last template parameter. node::Threaded
/// (threaded.hpp) is production's and the default; sim::Deterministic (the sim/ layer, a leaf
/// no production header includes) runs the roles as events in virtual time for simulators.

#include <concepts>

#include "dengine/core/error.hpp"
#include "dengine/node/clock.hpp"

namespace dengine::node {

/// **RuntimeTag** — names how a Node's roles run.
///
/// - `clock_type`: the Clock the node reads (request deadlines, ticks, leases).
/// - `deterministic`: true when nothing runs on a thread of the node's own (blocking helpers are
///   unavailable, Node::halt() simulates a crash).
/// - `arrangement<S, SS, M, T>`: the class that runs the roles over storage S, snapshot store
///   SS (a dengine::SnapshotStore), state machine M and transport T (constructed by Node::open
///   with the config, clock, Driver, LogWriter<S, SS, clock>, Applier and transport;
///   start/submit/stop/on_own_thread).
/// - `check(clock)`: refuses a clock this runtime cannot run on (invalid_argument).
///
/// A deterministic tag also offers `post_after(clock, d, fn)`: run `fn` after `d` on the
/// clock's time, as one more event (how layers above the node schedule recurring work).
template <class R>
concept RuntimeTag = Clock<typename R::clock_type> && requires(const typename R::clock_type& c) {
  { R::deterministic } -> std::convertible_to<bool>;
  { R::check(c) } -> std::same_as<result<void>>;
};

}  // namespace dengine::node
