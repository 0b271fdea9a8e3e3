#pragma once
/// A small metrics registry: counters, gauges and latency histograms with fixed buckets, updated
/// by the Node's threads and readable from any thread (every value is a relaxed atomic: a reader
/// sees each value at some recent moment, not a consistent snapshot across values).
/// `write_prometheus()` renders the registry in the Prometheus text exposition format.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

namespace dengine::node {

/// A monotonically increasing count.
class Counter {
 public:
  /// Adds `n` (any thread).
  void add(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  /// The current count (any thread).
  [[nodiscard]] std::uint64_t value() const noexcept {
    return value_.load(std::memory_order_relaxed);
  }

 private:
  std::atomic<std::uint64_t> value_{0};
};

/// A value that goes up and down (a queue length, an index, a flag).
class Gauge {
 public:
  /// Replaces the value (any thread).
  void set(std::int64_t v) noexcept { value_.store(v, std::memory_order_relaxed); }
  /// Adds `d`, which may be negative (any thread).
  void add(std::int64_t d) noexcept { value_.fetch_add(d, std::memory_order_relaxed); }
  /// The current value (any thread).
  [[nodiscard]] std::int64_t value() const noexcept {
    return value_.load(std::memory_order_relaxed);
  }

 private:
  std::atomic<std::int64_t> value_{0};
};

/// A latency histogram with fixed buckets from 1 µs to 10 s (upper bounds in microseconds,
/// roughly 1-2.5-5 per decade) plus +Inf. Recording is two relaxed increments and an add.
class Histogram {
 public:
  /// Upper bounds of the finite buckets, in microseconds.
  static constexpr std::array<std::uint64_t, 22> bounds_us{
      1,    2,     5,     10,    25,     50,     100,    250,     500,     1000,    2500,
      5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};

  /// Records one observation of `d` (any thread).
  template <class Rep, class Period>
  void record(std::chrono::duration<Rep, Period> d) noexcept {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
    record_us(us < 0 ? 0 : static_cast<std::uint64_t>(us));
  }
  /// Records one observation of `us` microseconds (any thread).
  void record_us(std::uint64_t us) noexcept {
    std::size_t i = 0;
    while (i < bounds_us.size() && us > bounds_us[i]) ++i;
    buckets_[i].fetch_add(1, std::memory_order_relaxed);
    count_.fetch_add(1, std::memory_order_relaxed);
    sum_us_.fetch_add(us, std::memory_order_relaxed);
  }
  /// Observations in bucket i (not cumulative); i == bounds_us.size() is the +Inf bucket.
  [[nodiscard]] std::uint64_t bucket(std::size_t i) const noexcept {
    return buckets_[i].load(std::memory_order_relaxed);
  }
  /// Number of observations.
  [[nodiscard]] std::uint64_t count() const noexcept {
    return count_.load(std::memory_order_relaxed);
  }
  /// Sum of observations, in microseconds.
  [[nodiscard]] std::uint64_t sum_us() const noexcept {
    return sum_us_.load(std::memory_order_relaxed);
  }
  /// Upper bound (µs) of the bucket holding the q-quantile (0 < q ≤ 1); an estimate good to one
  /// bucket. 0 with no observations; UINT64_MAX when it falls in the +Inf bucket.
  [[nodiscard]] std::uint64_t quantile_upper_bound_us(double q) const noexcept {
    const std::uint64_t n = count();
    if (n == 0) return 0;
    auto rank = static_cast<std::uint64_t>(q * static_cast<double>(n));
    if (rank == 0) rank = 1;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < bounds_us.size(); ++i) {
      seen += bucket(i);
      if (seen >= rank) return bounds_us[i];
    }
    return UINT64_MAX;
  }

 private:
  std::array<std::atomic<std::uint64_t>, bounds_us.size() + 1> buckets_{};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_us_{0};
};

/// Named metrics. Registration (construction time) is single-threaded; afterwards the metric
/// objects never move (deque storage), so references handed out stay valid for the registry's
/// lifetime and may be updated and read from any thread.
class Registry {
 public:
  /// Registers a counter; `name` should follow Prometheus conventions (snake_case, `_total`).
  Counter& counter(std::string name, std::string help) {
    counters_.emplace_back();
    counters_.back().name = std::move(name);
    counters_.back().help = std::move(help);
    return counters_.back().metric;
  }
  /// Registers a gauge.
  Gauge& gauge(std::string name, std::string help) {
    gauges_.emplace_back();
    gauges_.back().name = std::move(name);
    gauges_.back().help = std::move(help);
    return gauges_.back().metric;
  }
  /// Registers a latency histogram; exported in seconds (`name` should end in `_seconds`).
  Histogram& histogram(std::string name, std::string help) {
    histograms_.emplace_back();
    histograms_.back().name = std::move(name);
    histograms_.back().help = std::move(help);
    return histograms_.back().metric;
  }

  /// The counter named `name`, or nullptr.
  [[nodiscard]] const Counter* find_counter(std::string_view name) const {
    return find(counters_, name);
  }
  /// The gauge named `name`, or nullptr.
  [[nodiscard]] const Gauge* find_gauge(std::string_view name) const { return find(gauges_, name); }
  /// The histogram named `name`, or nullptr.
  [[nodiscard]] const Histogram* find_histogram(std::string_view name) const {
    return find(histograms_, name);
  }

  /// Appends every metric in the Prometheus text exposition format (version 0.0.4).
  void write_prometheus(std::string& out) const {
    for (const auto& c : counters_) {
      header(out, c.name, c.help, "counter");
      out += c.name + " " + std::to_string(c.metric.value()) + "\n";
    }
    for (const auto& g : gauges_) {
      header(out, g.name, g.help, "gauge");
      out += g.name + " " + std::to_string(g.metric.value()) + "\n";
    }
    for (const auto& h : histograms_) {
      header(out, h.name, h.help, "histogram");
      std::uint64_t cumulative = 0;
      for (std::size_t i = 0; i < Histogram::bounds_us.size(); ++i) {
        cumulative += h.metric.bucket(i);
        out += h.name + "_bucket{le=\"" + seconds(Histogram::bounds_us[i]) + "\"} " +
               std::to_string(cumulative) + "\n";
      }
      cumulative += h.metric.bucket(Histogram::bounds_us.size());
      out += h.name + "_bucket{le=\"+Inf\"} " + std::to_string(cumulative) + "\n";
      out += h.name + "_sum " + seconds(h.metric.sum_us()) + "\n";
      out += h.name + "_count " + std::to_string(h.metric.count()) + "\n";
    }
  }

 private:
  template <class M>
  struct Named {
    std::string name;
    std::string help;
    M metric;
  };

  template <class M>
  static const M* find(const std::deque<Named<M>>& list, std::string_view name) {
    for (const auto& n : list)
      if (n.name == name) return &n.metric;
    return nullptr;
  }
  static void header(std::string& out, const std::string& name, const std::string& help,
                     std::string_view type) {
    out += "# HELP " + name + " " + help + "\n# TYPE " + name + " ";
    out += type;
    out += "\n";
  }
  /// Microseconds as decimal seconds, exactly (no floating point).
  static std::string seconds(std::uint64_t us) {
    std::string frac = std::to_string(us % 1000000);
    frac.insert(0, 6 - frac.size(), '0');
    while (frac.size() > 1 && frac.back() == '0') frac.pop_back();
    return std::to_string(us / 1000000) + "." + frac;
  }

  std::deque<Named<Counter>> counters_;
  std::deque<Named<Gauge>> gauges_;
  std::deque<Named<Histogram>> histograms_;
};

/// The metrics a Node updates, registered in its Registry under these names.
struct NodeMetrics {
  explicit NodeMetrics(Registry& r)
      : proposals(r.counter("dengine_proposals_total", "Proposals accepted by the leader's core")),
        proposals_forwarded(r.counter("dengine_proposals_forwarded_total",
                                      "Proposals a follower sent to the leader")),
        leader_calls(r.counter("dengine_leader_calls_total",
                               "Leader calls made on this node (Node::call_leader: lease "
                               "keep-alives)")),
        proposals_failed(
            r.counter("dengine_proposals_failed_total", "Proposals that completed with an error")),
        reads(r.counter("dengine_reads_total", "Reads served")),
        reads_failed(r.counter("dengine_reads_failed_total", "Reads that completed with an error")),
        rejected_busy(
            r.counter("dengine_requests_rejected_busy_total", "Requests refused with too_busy")),
        entries_committed(r.counter("dengine_entries_committed_total",
                                    "Committed entries handed to the applier")),
        entries_applied(
            r.counter("dengine_entries_applied_total", "Entries applied to the state machine")),
        leader_changes(r.counter("dengine_leader_changes_total",
                                 "Changes of the known leader or of this node's role")),
        fsyncs(r.counter("dengine_fsyncs_total", "Storage sync() calls by the log writer")),
        persist_batches(r.counter("dengine_persist_batches_total",
                                  "Ready batches persisted (several share one sync)")),
        snapshots_taken(
            r.counter("dengine_snapshots_taken_total", "Snapshots taken of the state machine")),
        snapshots_installed(r.counter("dengine_snapshots_installed_total",
                                      "Snapshots received from a leader and installed")),
        snapshots_failed(r.counter("dengine_snapshots_failed_total",
                                   "Snapshots the state machine failed to write")),
        fatal_stops(r.counter("dengine_fatal_stops_total",
                              "Stops forced by a storage or state-machine failure")),
        pending_proposals(
            r.gauge("dengine_pending_proposals", "Proposals admitted and not yet completed")),
        pending_reads(r.gauge("dengine_pending_reads", "Reads admitted and not yet completed")),
        apply_lag(r.gauge("dengine_apply_lag_entries", "Commit index minus applied index")),
        is_leader(r.gauge("dengine_is_leader", "1 while this node is the leader")),
        term(r.gauge("dengine_term", "Current term")),
        commit_index(r.gauge("dengine_commit_index", "Commit index known to this node")),
        applied_index(r.gauge("dengine_applied_index", "Index of the last entry applied")),
        fsync_latency(r.histogram("dengine_fsync_seconds", "Latency of storage sync() calls")),
        propose_latency(
            r.histogram("dengine_propose_seconds", "Latency from proposal to its completion")) {}

  Counter& proposals;
  Counter& proposals_forwarded;
  Counter& leader_calls;
  Counter& proposals_failed;
  Counter& reads;
  Counter& reads_failed;
  Counter& rejected_busy;
  Counter& entries_committed;
  Counter& entries_applied;
  Counter& leader_changes;
  Counter& fsyncs;
  Counter& persist_batches;
  Counter& snapshots_taken;
  Counter& snapshots_installed;
  Counter& snapshots_failed;
  Counter& fatal_stops;
  Gauge& pending_proposals;
  Gauge& pending_reads;
  Gauge& apply_lag;
  Gauge& is_leader;
  Gauge& term;
  Gauge& commit_index;
  Gauge& applied_index;
  Histogram& fsync_latency;
  Histogram& propose_latency;
};

}  // namespace dengine::node
