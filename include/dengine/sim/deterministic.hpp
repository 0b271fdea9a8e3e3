#pragma once
/// The deterministic runtime (sim::Deterministic, a node::RuntimeTag): the same three roles as
/// the threaded one (node/threaded.hpp), the same Driver, LogWriter and Applier, run as events on
/// one SimExecutor in virtual time. Only the scheduling differs:
///
///   event loop  — every input (client request, arriving message, tick, worker report) is an
///                 event; a flush (process_ready + drain) is one more event, scheduled once per
///                 burst of inputs at the same instant, as the threaded event loop does.
///   log writer  — work accumulates; one writer event per group, `sim_sync_latency` after the
///                 first item arrived (group commit); its report is an event-loop event.
///   applier     — likewise, `sim_apply_latency` after the first item.
///
/// Completions and notifications run inside the applier event, on the thread driving the
/// executor. Every event a node schedules checks that the node still exists, so a node may be
/// stopped and destroyed (and a new one opened on the same storage) mid-run.

#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "dengine/node/applier.hpp"
#include "dengine/node/config.hpp"
#include "dengine/node/driver.hpp"
#include "dengine/node/log_writer.hpp"
#include "dengine/node/runtime.hpp"
#include "dengine/node/transport.hpp"
#include "dengine/node/unique_function.hpp"
#include "dengine/sim/executor.hpp"

namespace dengine::sim {

template <StorageEngine S, SnapshotStore SS, StateMachine M, node::Transport T,
          DeterministicClock C>
class DeterministicRuntime {
 public:
  using DriverT = node::Driver<M, C>;
  using WriterT = node::LogWriter<S, SS, C>;
  using ApplierT = node::Applier<M, C>;
  using Work = typename DriverT::Work;

  DeterministicRuntime(const node::NodeConfig& config, C clock, DriverT driver, WriterT writer,
                       ApplierT applier, T transport)
      : config_(&config),
        executor_(clock.executor),
        driver_(std::move(driver)),
        writer_(std::move(writer)),
        applier_(std::move(applier)),
        transport_(std::move(transport)) {}

  DeterministicRuntime(const DeterministicRuntime&) = delete;
  DeterministicRuntime& operator=(const DeterministicRuntime&) = delete;
  ~DeterministicRuntime() { (void)stop(); }

  /// Attaches to the transport and schedules the first flush and tick.
  result<void> start() {
    DENGINE_TRYV(transport_.start([this](raft::Message m) {
      post([this, m = std::move(m)]() mutable {
        driver_.step(std::move(m));
        schedule_flush();
      });
    }));
    started_ = true;
    post([this] { flush(); });
    arm_timer();
    return success();
  }

  /// Runs `f(driver)` as an event-loop event, then flushes. The request is kept here, not in
  /// the executor, so that stop() and halt() can fail every request still on its way in.
  template <class F>
  void submit(F&& f) {
    inbox_.emplace_back(std::forward<F>(f));
    post([this] {
      if (inbox_.empty()) return;  // stop() took it
      auto next = std::move(inbox_.front());
      inbox_.pop_front();
      next(driver_);
      schedule_flush();
    });
  }

  /// The node's raft::Core, read-only (Node::core): for checks between events.
  [[nodiscard]] const raft::Core& core() const noexcept { return driver_.core(); }

  /// True inside one of this node's events (where stop() is refused: it would re-enter).
  [[nodiscard]] bool on_own_thread() const noexcept { return in_event_; }

  /// A simulated process crash: the node stops at once; what was queued for the log writer is
  /// never written and what was queued for the applier never applied (requests waiting there
  /// fail with stopped). Pending events become no-ops. Pair it with the storage's crash hook
  /// (memory::Engine::crash) to also lose what was not synced.
  result<void> halt() {
    DENGINE_TRY(stopping, begin_stop("halt", "the node crashed"));
    if (!stopping) return success();
    driver_.messages_out().clear();
    driver_.persist_out().clear();
    writer_pending_.clear();
    // Run items are the completions of failed requests: run them (the caller is told "stopped");
    // everything else queued for the applier is lost with the process. A batch's entries are
    // committed: its proposals were not answered, yet they take effect (outcome unknown).
    std::vector<Work> queued = std::move(applier_pending_);
    applier_pending_.clear();
    for (Work& w : driver_.apply_out()) queued.push_back(std::move(w));
    driver_.apply_out().clear();
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
    applier_.fail_waiting(error(errc::stopped, "the node crashed"));
    return success();
  }

  /// Graceful stop, at once: the driver fails what waits on the core, the writer persists
  /// everything queued, the applier processes everything queued and fails the waiting reads.
  /// Pending events of this node become no-ops. Idempotent.
  result<void> stop() {
    DENGINE_TRY(stopping, begin_stop("stop", "the node is stopping"));
    if (!stopping) return success();
    drain();
    (void)writer_.process(writer_pending_);
    writer_pending_.clear();
    if (writer_.sync_pending()) (void)writer_.sync();
    (void)applier_.process(applier_pending_);
    applier_pending_.clear();
    applier_.fail_waiting(
        error(errc::stopped, "the node stopped before the read's index was applied"));
    return success();
  }

 private:
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
    driver_.shutdown(error(errc::stopped, why));
    fail_inbox();
    return true;
  }

  /// Schedules `fn` as an event of this node, now.
  template <class F>
  void post(F&& fn) {
    post_after(std::chrono::microseconds(0), std::forward<F>(fn));
  }
  /// Schedules `fn` as an event of this node, `d` from now.
  template <class F>
  void post_after(std::chrono::microseconds d, F&& fn) {
    executor_->post_after(
        d, [alive = std::weak_ptr<int>(alive_), this, fn = std::forward<F>(fn)]() mutable {
          if (alive.expired()) return;
          in_event_ = true;
          fn();
          in_event_ = false;
        });
  }

  /// Hands the requests still on their way in to the (stopped) driver, which fails them.
  void fail_inbox() {
    while (!inbox_.empty()) {
      auto next = std::move(inbox_.front());
      inbox_.pop_front();
      next(driver_);
    }
  }

  void schedule_flush() {
    if (flush_scheduled_) return;
    flush_scheduled_ = true;
    post([this] {
      flush_scheduled_ = false;
      flush();
    });
  }

  void flush() {
    driver_.process_ready();
    drain();
  }

  void drain() {
    for (raft::Message& m : driver_.messages_out()) transport_.send(std::move(m));
    driver_.messages_out().clear();
    if (!driver_.persist_out().empty()) {
      for (node::PersistWork& w : driver_.persist_out()) writer_pending_.push_back(std::move(w));
      driver_.persist_out().clear();
      if (!writer_scheduled_ && !stopped_) {
        writer_scheduled_ = true;
        post_after(config_->sim_sync_latency, [this] { writer_step(); });
      }
    }
    if (!driver_.apply_out().empty()) {
      for (Work& w : driver_.apply_out()) applier_pending_.push_back(std::move(w));
      driver_.apply_out().clear();
      if (!applier_scheduled_ && !stopped_) {
        applier_scheduled_ = true;
        post_after(config_->sim_apply_latency, [this] { applier_step(); });
      }
    }
  }

  void writer_step() {
    writer_scheduled_ = false;
    std::vector<node::PersistWork> group = std::move(writer_pending_);
    writer_pending_.clear();
    node::PersistReport report = writer_.process(group);
    if (writer_.sync_pending()) {
      if (auto r = writer_.sync(); !r) report.failure = r.error();
    }
    post([this, report] {
      driver_.on_persisted(report);
      flush();
    });
  }

  void applier_step() {
    applier_scheduled_ = false;
    std::vector<Work> group = std::move(applier_pending_);
    applier_pending_.clear();
    node::ApplyReport report = applier_.process(group);
    post([this, report = std::move(report)]() mutable {
      driver_.on_applied(std::move(report));
      flush();
    });
  }

  void arm_timer() {
    post_after(config_->tick_period, [this] {
      if (driver_.stopped()) return;
      driver_.tick();
      flush();
      arm_timer();
    });
  }

  const node::NodeConfig* config_;
  SimExecutor* executor_;
  DriverT driver_;
  WriterT writer_;
  ApplierT applier_;
  T transport_;
  std::deque<node::unique_function<void(DriverT&)>> inbox_;
  std::vector<node::PersistWork> writer_pending_;
  std::vector<Work> applier_pending_;
  bool writer_scheduled_ = false;
  bool applier_scheduled_ = false;
  bool flush_scheduled_ = false;
  bool in_event_ = false;
  bool started_ = false;
  bool stopped_ = false;
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
