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
/// user callback. What is batched and when the writer syncs is node::Pipeline's (pipeline.hpp),
/// shared with the deterministic runtime; this file only says which thread runs what.

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

#include "dengine/node/clock.hpp"
#include "dengine/node/config.hpp"
#include "dengine/node/pipeline.hpp"
#include "dengine/node/runtime.hpp"
#include "dengine/node/threaded_tag.hpp"
#include "dengine/node/transport.hpp"
#include "dengine/node/unique_function.hpp"
#include "dengine/node/work_queue.hpp"

namespace dengine::node {

template <StorageEngine S, dengine::SnapshotStore SS, StateMachine M, Transport T, Clock C>
class ThreadedRuntime {
 public:
  using PipelineT = Pipeline<S, SS, M, C>;
  using DriverT = typename PipelineT::DriverT;
  using WriterT = typename PipelineT::WriterT;
  using ApplierT = typename PipelineT::ApplierT;
  using Work = typename PipelineT::Work;

  /// The log writer runs inline on the event loop whenever it never blocks (pipeline.hpp).
  ThreadedRuntime(const NodeConfig& config, C /*clock*/, DriverT driver, WriterT writer,
                  ApplierT applier, T transport)
      : config_(&config),
        pipe_(std::move(driver), std::move(writer), std::move(applier), true),
        transport_(std::move(transport)),
        timer_(io_) {}

  ThreadedRuntime(const ThreadedRuntime&) = delete;
  ThreadedRuntime& operator=(const ThreadedRuntime&) = delete;
  /// stop() reports failures as results: only an allocation failure could escape (terminate).
  ~ThreadedRuntime() { (void)stop(); }  // NOLINT(bugprone-exception-escape)

  /// Starts the transport and the three threads. Called once, before any submit().
  result<void> start() {
    DENGINE_TRYV(transport_.start([this](raft::Message m) {
      boost::asio::post(io_, [this, m = std::move(m)]() mutable {
        pipe_.driver().step(std::move(m));
        schedule_flush();
      });
    }));
    work_.emplace(io_.get_executor());
    if (!pipe_.inline_writer())
      writer_thread_ = named_thread("dengine-writer", [this] { writer_loop(); });
    applier_thread_ = named_thread("dengine-apply", [this] { applier_loop(); });
    loop_thread_ = named_thread("dengine-loop", [this] {
      loop_id_ = std::this_thread::get_id();
      run_loop();
    });
    boost::asio::post(io_, [this] {
      pipe_.flush(sink_);
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
      pipe_.gather(std::forward<F>(f));
      return;
    }
    boost::asio::post(io_, [this, f = std::forward<F>(f)]() mutable {
      f(pipe_.driver());
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
      pipe_.driver().shutdown(error(errc::stopped, "the node is stopping"));
      pipe_.drain(sink_);
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
    if (pipe_.inline_writer() && pipe_.writer().sync_pending()) (void)pipe_.writer().sync();
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

  /// The event loop's hand-offs (Pipeline::drain): the transport, and the workers' queues.
  /// After stop() closed a queue, push() refuses and the items are destroyed here: a dropped
  /// Completion fails its request with `stopped` (completion.hpp).
  struct Sink {
    ThreadedRuntime* rt;
    void membership_changed(const Membership& m) { tell_membership(rt->transport_, m); }
    void send(raft::Message m) { rt->transport_.send(std::move(m)); }
    void to_writer(std::vector<PersistWork>& items) {
      if (!rt->writer_q_.push(items)) items.clear();
    }
    void to_applier(std::vector<Work>& items) {
      if (!rt->applier_q_.push(items)) items.clear();
    }
  };

  void schedule_flush() {
    if (pipe_.want_flush()) boost::asio::post(io_, [this] { pipe_.run_scheduled_flush(sink_); });
  }

  void arm_timer() {
    timer_.expires_after(config_->tick_period);
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || pipe_.driver().stopped()) return;
      pipe_.on_tick(sink_);
      arm_timer();
    });
  }

  void writer_loop() {
    writer_id_ = std::this_thread::get_id();
    std::vector<PersistWork> group;
    while (writer_q_.pop_all(group, config_->idle_spin)) {
      post_written(pipe_.write_group(group));
      if (pipe_.sync_due(!writer_q_.empty())) {
        if (auto r = pipe_.writer().sync(); !r) {
          PersistReport failed;
          failed.failure = r.error();
          post_written(std::move(failed));
        }
      }
    }
    if (pipe_.writer().sync_pending()) (void)pipe_.writer().sync();
  }

  void post_written(PersistReport report) {
    boost::asio::post(io_, [this, report = std::move(report)] { pipe_.on_written(report, sink_); });
  }

  void applier_loop() {
    applier_id_ = std::this_thread::get_id();
    pipe_.applier().set_after_completions([this] {
      if (pipe_.has_gathered()) post_from_applier(std::nullopt);
    });
    std::vector<Work> group;
    while (applier_q_.pop_all(group, config_->idle_spin))
      post_from_applier(pipe_.apply_group(group));
    pipe_.applier().fail_waiting(
        error(errc::stopped, "the node stopped before the read's index was applied"));
    // Requests issued by the last completions (stop() is under way): the stopped driver fails
    // them (or, if the loop is gone, dropping them does: completion.hpp).
    if (pipe_.has_gathered()) post_from_applier(std::nullopt);
  }

  /// Applier thread: sends the event loop `report` (if any) and the requests gathered on this
  /// thread since the last call, as one handler.
  void post_from_applier(std::optional<ApplyReport> report) {
    boost::asio::post(io_,
                      [this, report = std::move(report), issued = pipe_.take_gathered()]() mutable {
                        pipe_.on_applied(std::move(report), std::move(issued), sink_);
                      });
  }

  const NodeConfig* config_;
  PipelineT pipe_;
  T transport_;
  Sink sink_{this};

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
  bool started_ = false;
  bool stopped_ = false;
};

static_assert(RuntimeTag<Threaded>);

}  // namespace dengine::node
