#pragma once
/// The threaded arrangement (production): three threads run the three roles.
///
///   event loop  — a Boost.Asio io_context on its own thread: the Driver (and so the raft::Core),
///                 the tick timer (asio::steady_timer), inbound messages (posted by the
///                 transport), client requests (posted by the Node's API).
///   log writer  — its own std::thread, fed by a WorkQueue; handles everything queued at each
///                 wake-up as one group (one sync: group commit); reports back by posting to
///                 the io_context. When the storage and the snapshot store keep everything in
///                 memory (LogWriter::never_blocks: the in-memory backend) there is no writer
///                 thread: the event loop persists inline, which is a memory copy — cheaper than
///                 two thread hand-offs, and nothing there can block.
///   applier     — its own std::thread, fed by a WorkQueue; applies, completes requests, runs
///                 reads and notifications, takes snapshots; reports back by posting. Requests
///                 that completion handlers issue on it are gathered and posted together after
///                 each chunk of completions (submit()).
///
/// Nothing blocks the event loop: it never syncs, never touches the state machine, never runs a
/// user callback. After every input it schedules one flush (process_ready + drain the outboxes),
/// so inputs that arrive together share one Ready (proposal batching).

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <pthread.h>

#include <atomic>
#include <future>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "dengine/node/applier.hpp"
#include "dengine/node/clock.hpp"
#include "dengine/node/config.hpp"
#include "dengine/node/driver.hpp"
#include "dengine/node/log_writer.hpp"
#include "dengine/node/runtime.hpp"
#include "dengine/node/transport.hpp"
#include "dengine/node/unique_function.hpp"
#include "dengine/node/work_queue.hpp"

namespace dengine::node {

template <StorageEngine S, dengine::SnapshotStore SS, StateMachine M, Transport T, Clock C>
class ThreadedRuntime {
 public:
  using DriverT = Driver<M, C>;
  using WriterT = LogWriter<S, SS, C>;
  using ApplierT = Applier<M, C>;
  using Work = typename DriverT::Work;

  ThreadedRuntime(const NodeConfig& config, C /*clock*/, DriverT driver, WriterT writer,
                  ApplierT applier, T transport)
      : config_(&config),
        driver_(std::move(driver)),
        writer_(std::move(writer)),
        applier_(std::move(applier)),
        transport_(std::move(transport)),
        timer_(io_),
        inline_writer_(writer_.never_blocks()) {}

  ThreadedRuntime(const ThreadedRuntime&) = delete;
  ThreadedRuntime& operator=(const ThreadedRuntime&) = delete;
  ~ThreadedRuntime() { (void)stop(); }

  /// Starts the transport and the three threads. Called once, before any submit().
  result<void> start() {
    DENGINE_TRYV(transport_.start([this](raft::Message m) {
      boost::asio::post(io_, [this, m = std::move(m)]() mutable {
        driver_.step(std::move(m));
        schedule_flush();
      });
    }));
    work_.emplace(io_.get_executor());
    if (!inline_writer_) writer_thread_ = named_thread("dengine-writer", [this] { writer_loop(); });
    applier_thread_ = named_thread("dengine-apply", [this] { applier_loop(); });
    loop_thread_ = named_thread("dengine-loop", [this] {
      loop_id_ = std::this_thread::get_id();
      run_loop();
    });
    boost::asio::post(io_, [this] {
      flush();
      arm_timer();
    });
    started_ = true;
    return success();
  }

  /// Runs `f(driver)` on the event loop, then flushes. Thread-safe. Once stop() began, `f`
  /// may still run (on a stopped driver, which fails the request with `stopped`).
  ///
  /// Called on the applier thread (a completion handler issuing its next request), `f` waits
  /// until the applier has run the completions of the chunk it is in (or finished its group of
  /// work) and then travels to the event loop with every other request issued meanwhile, in
  /// issue order, as one posted handler: one wake-up of the loop and one batch for the core,
  /// instead of a post per request. Measured with 64 clients whose completions issue the next
  /// put: ~1.7x the throughput of posting each (docs/embedded.md, Performance).
  template <class F>
  void submit(F&& f) {
    if (std::this_thread::get_id() == applier_id_.load(std::memory_order_relaxed)) {
      issued_while_applying_.emplace_back(std::forward<F>(f));
      return;
    }
    boost::asio::post(io_, [this, f = std::forward<F>(f)]() mutable {
      f(driver_);
      schedule_flush();
    });
  }

  /// True on one of this runtime's threads (where stop() would deadlock).
  [[nodiscard]] bool on_own_thread() const noexcept {
    const auto me = std::this_thread::get_id();
    return me == loop_id_.load() || me == writer_id_.load() || me == applier_id_.load();
  }

  /// Graceful stop: the driver fails every request waiting on the core with `stopped`; the log
  /// writer finishes (and syncs) what it was given; the applier applies what it was given
  /// (completing those proposals with their responses), runs the queued completions and fails
  /// the reads still waiting; then every thread is joined. Idempotent. Must not be called on one
  /// of the runtime's threads (invalid_argument).
  result<void> stop() {
    if (!started_ || stopped_) return success();
    if (on_own_thread())
      return error(errc::invalid_argument,
                   "node stop() called on one of the node's own threads (from a completion "
                   "handler or callback): call it from another thread");
    std::promise<void> shut;
    boost::asio::post(io_, [this, &shut] {
      timer_.cancel();
      transport_.stop();
      driver_.shutdown(error(errc::stopped, "the node is stopping"));
      drain();
      shut.set_value();
    });
    shut.get_future().wait();
    writer_q_.close();
    if (writer_thread_.joinable()) writer_thread_.join();
    applier_q_.close();
    applier_thread_.join();
    work_.reset();
    io_.stop();
    loop_thread_.join();
    // Inline writer: the loop is gone, so nothing else touches the storage now.
    if (inline_writer_ && writer_.sync_pending()) (void)writer_.sync();
    stopped_ = true;
    return success();
  }

 private:
  /// Starts a thread that is named (≤ 15 characters, so that top, perf and gdb tell the roles
  /// apart) before this returns: whoever sees start() return sees the names, however the new
  /// thread is scheduled (a test once counted threads before the writer had named itself).
  template <class F>
  static std::thread named_thread(const char* name, F&& body) {
    std::thread t(std::forward<F>(body));
    (void)::pthread_setname_np(t.native_handle(), name);
    return t;
  }

  /// The event loop: io_.run(), except that when idle_spin is set it polls for that long before
  /// blocking (see WorkQueue::pop_all for why).
  void run_loop() {
    const auto spin = config_->idle_spin;
    if (spin.count() <= 0) {
      io_.run();
      return;
    }
    while (!io_.stopped()) {
      if (io_.poll() > 0) continue;
      const auto until = std::chrono::steady_clock::now() + spin;
      std::size_t ran = 0;
      while (ran == 0 && !io_.stopped() && std::chrono::steady_clock::now() < until)
        if ((ran = io_.poll()) == 0) std::this_thread::yield();
      if (ran == 0 && !io_.stopped()) io_.run_one();
    }
  }

  void schedule_flush() {
    if (flush_scheduled_) return;
    flush_scheduled_ = true;
    boost::asio::post(io_, [this] {
      flush_scheduled_ = false;
      flush();
    });
  }

  /// Event loop: handle Readies, then hand the outboxes to the transport and the workers.
  void flush() {
    driver_.process_ready();
    drain();
  }

  void drain() {
    // Inline writer: persist here, then let the core see it (which may commit entries and make
    // more work: a hard state, the applier's batch), until nothing is left to persist.
    while (inline_writer_ && !driver_.persist_out().empty()) {
      PersistReport report = writer_.process(driver_.persist_out());
      driver_.persist_out().clear();
      // MemFirst: the writer thread would sync in the background; a sync here is a memory
      // copy too.
      if (!report.failure && writer_.sync_pending()) {
        if (auto r = writer_.sync(); !r) report.failure = r.error();
      }
      driver_.on_persisted(report);
      driver_.process_ready();
    }
    for (raft::Message& m : driver_.messages_out()) transport_.send(std::move(m));
    driver_.messages_out().clear();
    // After stop() closed a queue, push() refuses and the items are destroyed here: a dropped
    // Completion fails its request with `stopped` (completion.hpp).
    if (!writer_q_.push(driver_.persist_out())) driver_.persist_out().clear();
    if (!applier_q_.push(driver_.apply_out())) driver_.apply_out().clear();
  }

  void arm_timer() {
    timer_.expires_after(config_->tick_period);
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || driver_.stopped()) return;
      driver_.tick();
      flush();
      arm_timer();
    });
  }

  void writer_loop() {
    writer_id_ = std::this_thread::get_id();
    std::vector<PersistWork> group;
    std::uint64_t groups_unsynced = 0;
    while (writer_q_.pop_all(group, config_->idle_spin)) {
      PersistReport report = writer_.process(group);
      group.clear();
      boost::asio::post(io_, [this, report] {
        driver_.on_persisted(report);
        flush();
      });
      // MemFirst: sync in the background when idle, or after a run of busy groups.
      if (writer_.sync_pending() && (writer_q_.empty() || ++groups_unsynced >= 64)) {
        groups_unsynced = 0;
        if (auto r = writer_.sync(); !r) post_writer_failure(r.error());
      }
    }
    if (writer_.sync_pending()) (void)writer_.sync();
  }

  void post_writer_failure(error e) {
    PersistReport report;
    report.failure = std::move(e);
    boost::asio::post(io_, [this, report] {
      driver_.on_persisted(report);
      flush();
    });
  }

  void applier_loop() {
    applier_id_ = std::this_thread::get_id();
    applier_.set_after_completions([this] {
      if (!issued_while_applying_.empty()) post_from_applier(std::nullopt);
    });
    std::vector<Work> group;
    while (applier_q_.pop_all(group, config_->idle_spin)) {
      ApplyReport report = applier_.process(group);
      group.clear();
      post_from_applier(std::move(report));
    }
    applier_.fail_waiting(
        error(errc::stopped, "the node stopped before the read's index was applied"));
    // Requests issued by the last completions (stop() is under way): the stopped driver fails
    // them (or, if the loop is gone, dropping them does: completion.hpp).
    if (!issued_while_applying_.empty()) post_from_applier(std::nullopt);
  }

  /// Applier thread: sends the event loop `report` (if any) and the requests issued on this
  /// thread since the last call, as one handler, then a flush.
  void post_from_applier(std::optional<ApplyReport> report) {
    boost::asio::post(io_, [this, report = std::move(report),
                            issued = std::exchange(issued_while_applying_, {})]() mutable {
      if (report) driver_.on_applied(std::move(*report));
      for (auto& f : issued) f(driver_);
      flush();
    });
  }

  const NodeConfig* config_;
  DriverT driver_;
  WriterT writer_;
  ApplierT applier_;
  T transport_;

  boost::asio::io_context io_;
  boost::asio::steady_timer timer_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  WorkQueue<PersistWork> writer_q_;
  WorkQueue<Work> applier_q_;
  std::thread loop_thread_;
  std::thread writer_thread_;
  std::thread applier_thread_;
  std::atomic<std::thread::id> loop_id_{};
  std::atomic<std::thread::id> writer_id_{};
  std::atomic<std::thread::id> applier_id_{};
  /// Requests submitted on the applier thread during its current group (applier thread only).
  std::vector<unique_function<void(DriverT&)>> issued_while_applying_;
  bool flush_scheduled_ = false;  // event loop only
  /// No writer thread: the event loop runs the writer's work (see the file comment).
  const bool inline_writer_;
  bool started_ = false;
  bool stopped_ = false;
};

/// The production runtime tag (RuntimeTag, runtime.hpp): ThreadedRuntime on SteadyClock. The
/// default of Node.
struct Threaded {
  using clock_type = SteadyClock;
  static constexpr bool deterministic = false;
  template <StorageEngine S, dengine::SnapshotStore SS, StateMachine M, Transport T>
  using arrangement = ThreadedRuntime<S, SS, M, T, SteadyClock>;
  static result<void> check(const SteadyClock& /*clock*/) { return success(); }
};

static_assert(RuntimeTag<Threaded>);

}  // namespace dengine::node
