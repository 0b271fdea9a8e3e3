#pragma once
/// The deterministic runtime (sim::Deterministic, a node::RuntimeTag): the same three roles as
/// the threaded one (node/threaded.hpp), the same Driver, LogWriter and Applier and the same
/// batching (node::Pipeline: flushes, the inline writer, writer groups and their syncs, applier
/// chunks and the requests their completions issue), run as events on one SimExecutor in
/// virtual time. Only the scheduling differs:
///
///   event loop  — every input (client request, arriving message, tick, worker report) is an
///                 event; a flush (process_ready + drain) is one more event, scheduled once per
///                 burst of inputs at the same instant, as the threaded event loop does.
///   log writer  — work accumulates; one writer event per group, `sim_sync_latency` after the
///                 first item arrived (group commit); its report is an event-loop event. With
///                 `sim_sync_latency` 0 and storage that never blocks, the event loop persists
///                 inline, as the threaded runtime does with the in-memory backend.
///   applier     — likewise, `sim_apply_latency` after the first item; requests issued by its
///                 completions are gathered and reach the event loop with its report.
///
/// Completions and notifications run inside the applier event, on the thread driving the
/// executor. A node may be frozen for a while (freeze_for: a stopped process, a paused VM):
/// each of its events that comes due meanwhile waits, in order, until the freeze ends. The
/// tick timer runs at the node's clock rate (SimClock::to_virtual). Every event a node schedules
/// checks that the node still exists, so a node may be stopped and destroyed (and a new one opened
/// on the same storage) mid-run.

#include <algorithm>
#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "dengine/node/config.hpp"
#include "dengine/node/pipeline.hpp"
#include "dengine/node/runtime.hpp"
#include "dengine/node/transport.hpp"
#include "dengine/node/unique_function.hpp"
#include "dengine/sim/executor.hpp"

namespace dengine::sim {

template <StorageEngine S, SnapshotStore SS, StateMachine M, node::Transport T,
          DeterministicClock C>
class DeterministicRuntime {
 public:
  using PipelineT = node::Pipeline<S, SS, M, C>;
  using DriverT = typename PipelineT::DriverT;
  using WriterT = typename PipelineT::WriterT;
  using ApplierT = typename PipelineT::ApplierT;
  using Work = typename PipelineT::Work;

  DeterministicRuntime(const node::NodeConfig& config, C clock, DriverT driver, WriterT writer,
                       ApplierT applier, T transport)
      : config_(&config),
        executor_(clock.executor),
        clock_(clock),
        pipe_(std::move(driver), std::move(writer), std::move(applier),
              config.sim_sync_latency.count() == 0),
        transport_(std::move(transport)) {}

  DeterministicRuntime(const DeterministicRuntime&) = delete;
  DeterministicRuntime& operator=(const DeterministicRuntime&) = delete;
  /// stop() reports failures as results: only an allocation failure could escape (terminate).
  ~DeterministicRuntime() { (void)stop(); }  // NOLINT(bugprone-exception-escape)

  /// Attaches to the transport and schedules the first flush and tick.
  result<void> start() {
    DENGINE_TRYV(transport_.start([this](raft::Message m) {
      post([this, m = std::move(m)]() mutable {
        pipe_.driver().step(std::move(m));
        schedule_flush();
      });
    }));
    pipe_.applier().set_after_completions([this] {
      if (pipe_.has_gathered()) post_from_applier(std::nullopt);
    });
    started_ = true;
    post([this] { pipe_.flush(sink_); });
    arm_timer();
    return success();
  }

  /// Runs `f(driver)` as an event-loop event, then flushes. The request is kept here, not in
  /// the executor, so that stop() and halt() can fail every request still on its way in.
  /// Issued by a completion inside the applier's event, it is gathered instead and reaches the
  /// event loop with the applier's report (node::Pipeline::gather).
  template <class F>
  void submit(F&& f) {
    if (in_applier_) {
      pipe_.gather(std::forward<F>(f));
      return;
    }
    inbox_.emplace_back(std::forward<F>(f));
    post([this] {
      if (inbox_.empty()) return;  // stop() took it
      auto next = std::move(inbox_.front());
      inbox_.pop_front();
      next(pipe_.driver());
      schedule_flush();
    });
  }

  /// The node's raft::Core, read-only (Node::core): for checks between events.
  [[nodiscard]] const raft::Core& core() const noexcept { return pipe_.driver().core(); }

  /// Freezes every role of the node for `d` of virtual time, as SIGSTOP or a paused VM would:
  /// events that come due meanwhile (arriving messages, ticks, the disk's and the applier's
  /// reports, requests) run after it, in the order they came due. Its clock keeps running.
  void freeze_for(std::chrono::microseconds d) {
    const sim_time until = executor_->now() + static_cast<sim_duration>(d.count());
    frozen_until_ = std::max(frozen_until_, until);
  }

  /// True inside one of this node's events (where stop() is refused: it would re-enter).
  [[nodiscard]] bool on_own_thread() const noexcept { return in_event_; }

  /// A simulated process crash: the node stops at once; what was queued for the log writer is
  /// never written and what was queued for the applier never applied (requests waiting there
  /// fail with stopped). Pending events become no-ops. Pair it with the storage's crash hook
  /// (memory::Engine::crash) to also lose what was not synced.
  result<void> halt() {
    DENGINE_TRY(stopping, begin_stop("halt", "the node crashed"));
    if (!stopping) return success();
    DriverT& driver = pipe_.driver();
    driver.messages_out().clear();
    driver.persist_out().clear();
    writer_pending_.clear();
    // Run items are the completions of failed requests: run them (the caller is told "stopped");
    // everything else queued for the applier is lost with the process. A batch's entries are
    // committed: its proposals were not answered, yet they take effect (outcome unknown).
    std::vector<Work> queued = std::move(applier_pending_);
    applier_pending_.clear();
    for (Work& w : driver.apply_out()) queued.push_back(std::move(w));
    driver.apply_out().clear();
    const error crashed(errc::stopped, "the node crashed");
    auto committed_then_crashed = [&](LogIndex index) {
      return error::outcome_unknown(
          "entry " + std::to_string(index) + " was committed, then the node crashed", crashed);
    };
    for (Work& w : queued) {
      if (auto* run = std::get_if<typename Work::Run>(&w.item)) {
        run->fn();
      } else if (auto* b = std::get_if<typename Work::Batch>(&w.item)) {
        for (auto& p : b->proposals) p.done(committed_then_crashed(p.index));
        for (auto& cp : b->config_proposals)
          if (cp.done) cp.done(committed_then_crashed(cp.index));
      }
    }
    pipe_.applier().fail_waiting(error(errc::stopped, "the node crashed"));
    fail_gathered();
    return success();
  }

  /// Graceful stop, at once: the driver fails what waits on the core, the writer persists
  /// everything queued, the applier processes everything queued and fails the waiting reads.
  /// Pending events of this node become no-ops. Idempotent.
  result<void> stop() {
    DENGINE_TRY(stopping, begin_stop("stop", "the node is stopping"));
    if (!stopping) return success();
    pipe_.drain(sink_);
    (void)pipe_.write_group(writer_pending_);
    if (pipe_.writer().sync_pending()) (void)pipe_.writer().sync();
    (void)pipe_.apply_group(applier_pending_);
    pipe_.applier().fail_waiting(
        error(errc::stopped, "the node stopped before the read's index was applied"));
    fail_gathered();
    return success();
  }

 private:
  /// The event loop's hand-offs (node::Pipeline::drain): the transport, and the work waiting
  /// for the next writer and applier events (scheduled when the first item arrives).
  struct Sink {
    DeterministicRuntime* rt;
    void membership_changed(const Membership& m) { node::tell_membership(rt->transport_, m); }
    void send(raft::Message m) { rt->transport_.send(std::move(m)); }
    void to_writer(std::vector<node::PersistWork>& items) {
      for (node::PersistWork& w : items) rt->writer_pending_.push_back(std::move(w));
      items.clear();
      if (!rt->writer_scheduled_ && !rt->stopped_) {
        rt->writer_scheduled_ = true;
        rt->post_after(rt->config_->sim_sync_latency, [r = rt] { r->writer_step(); });
      }
    }
    void to_applier(std::vector<Work>& items) {
      for (Work& w : items) rt->applier_pending_.push_back(std::move(w));
      items.clear();
      if (!rt->applier_scheduled_ && !rt->stopped_) {
        rt->applier_scheduled_ = true;
        rt->post_after(rt->config_->sim_apply_latency, [r = rt] { r->applier_step(); });
      }
    }
  };

  /// What halt() and stop() begin with: refused inside one of the node's events (it would
  /// re-enter); else the node's pending events become no-ops, the transport detaches, the driver
  /// stops (`why`) and fails the requests still on their way in. False: nothing to stop.
  result<bool> begin_stop(const char* what, const char* why) {
    if (!started_ || stopped_) return false;
    if (in_event_)
      return error(errc::invalid_argument,
                   std::string("node ") + what +
                       "() called from inside one of the node's own events (a completion "
                       "handler or callback): call it from outside");
    stopped_ = true;
    alive_.reset();
    transport_.stop();
    pipe_.driver().shutdown(error(errc::stopped, why));
    fail_inbox();
    return true;
  }

  /// One event of this node: a no-op once the node is gone; while the node is frozen it waits
  /// (re-posted at the freeze's end, behind the events that came due before it).
  template <class F>
  struct NodeEvent {
    DeterministicRuntime* runtime;
    std::weak_ptr<int> alive;
    F fn;
    void operator()() {
      if (alive.expired()) return;
      SimExecutor* ex = runtime->executor_;
      if (ex->now() < runtime->frozen_until_) {
        const sim_time until = runtime->frozen_until_;
        ex->post_at(until, std::move(*this));
        return;
      }
      runtime->in_event_ = true;
      fn();
      runtime->in_event_ = false;
    }
  };

  /// Schedules `fn` as an event of this node, now.
  template <class F>
  void post(F&& fn) {
    post_after(std::chrono::microseconds(0), std::forward<F>(fn));
  }
  /// Schedules `fn` as an event of this node, `d` from now.
  template <class F>
  void post_after(std::chrono::microseconds d, F&& fn) {
    executor_->post_after(
        d, NodeEvent<std::decay_t<F>>{this, std::weak_ptr<int>(alive_), std::forward<F>(fn)});
  }

  /// Hands the requests still on their way in to the (stopped) driver, which fails them.
  void fail_inbox() {
    while (!inbox_.empty()) {
      auto next = std::move(inbox_.front());
      inbox_.pop_front();
      next(pipe_.driver());
    }
  }
  /// Likewise for the requests gathered from the applier's completions.
  void fail_gathered() {
    for (auto& r : pipe_.take_gathered()) r(pipe_.driver());
  }

  void schedule_flush() {
    if (pipe_.want_flush()) post([this] { pipe_.run_scheduled_flush(sink_); });
  }

  void writer_step() {
    writer_scheduled_ = false;
    post_written(pipe_.write_group(writer_pending_));
    // The group was everything queued: MemFirst syncs now (Pipeline::sync_due).
    if (pipe_.sync_due(!writer_pending_.empty())) {
      if (auto r = pipe_.writer().sync(); !r) {
        node::PersistReport failed;
        failed.failure = r.error();
        post_written(std::move(failed));
      }
    }
  }

  void post_written(node::PersistReport report) {
    post([this, report = std::move(report)] { pipe_.on_written(report, sink_); });
  }

  void applier_step() {
    applier_scheduled_ = false;
    in_applier_ = true;
    node::ApplyReport report = pipe_.apply_group(applier_pending_);
    in_applier_ = false;
    post_from_applier(std::move(report));
  }

  /// The applier's report (if any) and the requests gathered from its completions, as one
  /// event-loop event.
  void post_from_applier(std::optional<node::ApplyReport> report) {
    post([this, report = std::move(report), issued = pipe_.take_gathered()]() mutable {
      pipe_.on_applied(std::move(report), std::move(issued), sink_);
    });
  }

  void arm_timer() {
    post_after(clock_.to_virtual(config_->tick_period), [this] {
      if (pipe_.driver().stopped()) return;
      pipe_.on_tick(sink_);
      arm_timer();
    });
  }

  const node::NodeConfig* config_;
  SimExecutor* executor_;
  C clock_;
  PipelineT pipe_;
  T transport_;
  Sink sink_{this};
  std::deque<node::unique_function<void(DriverT&)>> inbox_;
  std::vector<node::PersistWork> writer_pending_;
  std::vector<Work> applier_pending_;
  bool writer_scheduled_ = false;
  bool applier_scheduled_ = false;
  bool in_event_ = false;
  bool in_applier_ = false;
  bool started_ = false;
  bool stopped_ = false;
  sim_time frozen_until_ = 0;
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

/// The deterministic runtime tag (node::RuntimeTag): DeterministicRuntime on SimClock. A Node
/// (or engine::KvReplica) instantiated with it runs wholly on the clock's SimExecutor.
struct Deterministic {
  using clock_type = SimClock;
  static constexpr bool deterministic = true;
  template <StorageEngine S, SnapshotStore SS, StateMachine M, node::Transport T>
  using arrangement = DeterministicRuntime<S, SS, M, T, SimClock>;
  static result<void> check(const SimClock& clock) {
    if (clock.executor == nullptr)
      return error(errc::invalid_argument, "node open: SimClock without an executor");
    return success();
  }
  /// Runs `fn` after `d` of virtual time on the clock's executor (recurring work of layers
  /// above the node, e.g. engine::KvReplica's housekeeping).
  static void post_after(const SimClock& clock, std::chrono::microseconds d,
                         node::unique_function<void()> fn) {
    clock.executor->post_after(d, std::move(fn));
  }
};

static_assert(node::RuntimeTag<Deterministic>);

}  // namespace dengine::sim
