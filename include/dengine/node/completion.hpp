#pragma once
/// How a Node completes a client request: a type-erased, move-only Completion<T> wrapping an Asio
/// completion handler with signature void(dengine::result<T>), and ReadJob<M>, a query waiting
/// to run against the state machine plus its completion.
///
/// Where a completion runs: it is dispatched to the handler's associated executor. A handler
/// with none (a plain callback, asio::use_future) runs on the thread that completes it — the
/// applier (docs/node.md); bind an executor (asio::bind_executor, or co_await with
/// asio::use_awaitable) to have it run elsewhere. The Node's event loop never runs a completion.

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>

#include <atomic>
#include <cstddef>
#include <type_traits>
#include <utility>

#include "dengine/core/error.hpp"
#include "dengine/node/metrics.hpp"
#include "dengine/node/unique_function.hpp"

namespace dengine::node {

/// The admission slot a pending request holds: released (and counted) when it completes, so
/// the bound on pending requests covers every request from admission to completion.
struct Ticket {
  std::atomic<std::size_t>* pending = nullptr;
  Gauge* pending_gauge = nullptr;
  Counter* failures = nullptr;

  void release(bool failed) const noexcept {
    if (pending != nullptr) pending->fetch_sub(1, std::memory_order_acq_rel);
    if (pending_gauge != nullptr) pending_gauge->add(-1);
    if (failed && failures != nullptr) failures->add();
  }
};

/// A pending request's completion, invoked exactly once with the outcome.
/// Invariant: empty after it has been invoked or moved from.
template <class T>
class Completion {
 public:
  Completion() = default;
  /// Wraps an Asio completion handler for void(result<T>). While the Completion is pending it
  /// holds outstanding work on the handler's executor (so a user's io_context.run() waits).
  /// `ticket` is released just before the handler is dispatched.
  /// (The requires clause keeps it from hiding the move constructor; clang-tidy 14 does not
  /// read requires clauses.)
  // NOLINTBEGIN(bugprone-forwarding-reference-overload)
  template <class Handler>
  requires(!std::is_same_v<std::remove_cvref_t<Handler>, Completion>) explicit Completion(
      Handler&& handler, Ticket ticket = {})
      : fn_(wrap(std::forward<Handler>(handler))), ticket_(ticket) {}
  // NOLINTEND(bugprone-forwarding-reference-overload)

  Completion(Completion&&) noexcept = default;
  /// Moves `other` in; a pending request held before fails with stopped.
  Completion& operator=(Completion&& other) noexcept {
    if (this != &other) {
      if (fn_) (*this)(error(errc::stopped, "request dropped"));
      fn_ = std::move(other.fn_);
      ticket_ = other.ticket_;
      other.ticket_ = {};
    }
    return *this;
  }
  Completion(const Completion&) = delete;
  Completion& operator=(const Completion&) = delete;
  /// Safety net: a request dropped without completion (a code path that forgot it, or queues
  /// destroyed at shutdown) fails with stopped rather than leaving its caller waiting forever.
  ~Completion() {
    if (fn_) (*this)(error(errc::stopped, "request dropped"));
  }

  /// Completes with `r`. Precondition: not empty. Afterwards empty.
  void operator()(result<T> r) {
    auto fn = std::move(fn_);
    ticket_.release(!r);
    ticket_ = {};
    fn(std::move(r));
  }
  /// Completes with failure `e`. Spelled out (rather than relying on result<T>'s implicit
  /// conversion) so that T may itself be a result, as a state machine's response often is
  /// (kv::KvStateMachine answers result<Response>): result<result<X>> has no implicit
  /// constructor from an error, since both levels could take it.
  void operator()(error e) { (*this)(result<T>(boost::outcome_v2::failure(std::move(e)))); }
  /// Completes with value `v` (the same reason: explicit, so that T may be a result).
  template <class V>
  requires(!std::is_void_v<T> && std::is_same_v<std::remove_cvref_t<V>, T>) void operator()(V&& v) {
    (*this)(result<T>(boost::outcome_v2::success(std::forward<V>(v))));
  }
  /// True while the request is pending (not yet completed).
  explicit operator bool() const noexcept { return static_cast<bool>(fn_); }

 private:
  template <class Handler>
  static unique_function<void(result<T>)> wrap(Handler&& handler) {
    auto work = boost::asio::make_work_guard(handler);
    return [h = std::forward<Handler>(handler), work = std::move(work)](result<T> r) mutable {
      auto ex = work.get_executor();
      boost::asio::dispatch(
          ex, [h = std::move(h), r = std::move(r)]() mutable { std::move(h)(std::move(r)); });
      work.reset();
    };
  }

  unique_function<void(result<T>)> fn_;
  Ticket ticket_;
};

/// The value a read completes with for a query `Q` over a state machine `M`: the query's return
/// type, or X when the query itself returns result<X> (its error then becomes the read's error).
template <class X>
struct read_value_flatten {
  using type = X;
  static constexpr bool flattened = false;
};
template <class X>
struct read_value_flatten<result<X>> {
  using type = X;
  static constexpr bool flattened = true;
};
/// See read_value_flatten.
template <class Q, class M>
using read_value_t = typename read_value_flatten<std::invoke_result_t<Q&, const M&>>::type;

/// A read query over a const M, with its completion. Run on the applier, between apply batches,
/// so the query sees a consistent state. Invariant: run or failed at most once.
template <class M>
class ReadJob {
 public:
  ReadJob() = default;
  /// Binds `query` (callable as query(const M&)) to its completion.
  template <class Query>
  ReadJob(Query query, Completion<read_value_t<Query, M>> done)
      : fn_([q = std::move(query), d = std::move(done)](const M* sm, error e) mutable {
          using raw = std::invoke_result_t<Query&, const M&>;
          if (sm == nullptr) {
            d(std::move(e));
          } else if constexpr (read_value_flatten<raw>::flattened) {
            d(q(*sm));
          } else {
            d(result<read_value_t<Query, M>>(q(*sm)));
          }
        }) {}

  /// Runs the query against `sm` and completes with its value.
  void run(const M& sm) {
    auto fn = std::move(fn_);
    fn(&sm, error{});
  }
  /// Completes with `e` without running the query.
  void fail(error e) {
    auto fn = std::move(fn_);
    fn(nullptr, std::move(e));
  }
  /// True while pending.
  explicit operator bool() const noexcept { return static_cast<bool>(fn_); }

 private:
  unique_function<void(const M*, error)> fn_;
};

}  // namespace dengine::node
