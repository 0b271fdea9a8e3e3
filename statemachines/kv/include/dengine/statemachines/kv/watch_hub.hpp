#pragma once
/// WatchHub: etcd-style watches fed by the state machine's applied events.
///
/// Guarantees: a watcher receives every event of its key, prefix or range with revision >=
/// its start revision, in revision order (and, within a revision, in the order the txn made
/// them), with no gap and no duplicate — or it is cancelled, and the cancellation says why.
/// A start revision older than what the bounded event history holds, or below the compacted
/// revision, cancels the watch with compact_revision = the oldest revision it could have been
/// served from (re-watch from there after re-reading the state).
///
/// Bounds: the history keeps at most max_history_events / max_history_bytes of the latest
/// events (whole revisions are dropped together); each watcher's undelivered queue is bounded
/// by max_pending_events / max_pending_bytes, and a watcher whose consumer falls further
/// behind is cancelled with a reason (it can re-watch from its next revision while the history
/// still holds it).
///
/// Threads: publish(), on_compact(), reset() and progress_notify() are called by the apply
/// thread (KvStateMachine does it after each committed batch). watch(), cancel() and
/// request_progress() may be called from any thread; Watcher::take() by the consumer of that
/// watcher. A watcher's notify callback runs on whichever thread queued the response (usually
/// the apply thread), with no lock held: it must be quick and must not block (e.g. post to an
/// io_context); it may call take(), cancel() or watch().

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "dengine/core/error.hpp"
#include "dengine/core/test_hooks.hpp"
#include "dengine/statemachines/kv/errors.hpp"
#include "dengine/statemachines/kv/mvcc_store.hpp"
#include "dengine/statemachines/kv/options.hpp"
#include "dengine/statemachines/kv/types.hpp"
#include "dengine/statemachines/kv/watch_types.hpp"
#include "dengine/statemachines/kv/watcher.hpp"

namespace dengine::kv {

/// Approximate memory of an event (key, values, bookkeeping).
inline std::size_t event_bytes(const Event& e) {
  std::size_t n = 64 + e.kv.key.size() + e.kv.value.size();
  if (e.prev_kv) n += e.prev_kv->key.size() + e.prev_kv->value.size() + 48;
  return n;
}

/// Fan-out of applied events to watchers, with a bounded history for watches from the past.
class WatchHub final : public WatchControl {
 public:
  /// A hub for a store at revision `current`, compacted at `compacted`, with empty history.
  explicit WatchHub(Revision current = 1, Revision compacted = 0, WatchHubOptions options = {})
      : options_(options), current_(current), compacted_(compacted), floor_(current + 1) {}

  WatchHub(const WatchHub&) = delete;
  WatchHub& operator=(const WatchHub&) = delete;

  /// Starts a watch. The first queued response is `created`; if the start revision can no
  /// longer be served, a `canceled` response with compact_revision follows at once.
  /// invalid_argument for an empty key; too_busy past max_watchers.
  result<std::shared_ptr<Watcher>> watch(const WatchCreateRequest& req,
                                         std::function<void()> notify = {}) {
    if (req.key.empty()) return etcd_error(errc::invalid_argument, etcd_text::empty_key);
    auto w = std::make_shared<Watcher>();
    w->key_ = req.key;
    w->range_end_ = req.range_end;
    w->prev_kv_ = req.prev_kv;
    w->progress_notify_ = req.progress_notify;
    for (WatchFilter f : req.filters) {
      if (f == WatchFilter::noput) w->no_put_ = true;
      if (f == WatchFilter::nodelete) w->no_delete_ = true;
    }
    w->notify_ = std::move(notify);
    {
      std::lock_guard lock(mutex_);
      if (watchers_.size() >= options_.max_watchers) {
        return error(errc::too_busy, "kv watch: " + std::to_string(options_.max_watchers) +
                                         " watchers already (max_watchers)");
      }
      w->id_ = next_id_++;
      const Revision start = req.start_revision > 0 ? req.start_revision : current_ + 1;
      w->next_revision_ = start;
      enqueue(*w, WatchResponse{current_, w->id_, true, false, 0, {}, {}});
      const Revision oldest = std::max(floor_, compacted_);
      if (start < oldest) {
        enqueue(*w, cancel_response(*w, oldest, std::string(etcd_text::compacted)));
      } else {
        std::vector<Event> replay;
        for (const Event& e : history_) {
          if (e.kv.mod_revision >= start && w->matches(e)) replay.push_back(w->shape(e));
        }
        if (!replay.empty()) {
          w->next_revision_ = replay.back().kv.mod_revision + 1;
          deliver(*w, std::move(replay));
        }
        if (!w->canceled_) register_watcher(w);
      }
    }
    if (w->notify_) w->notify_();
    return w;
  }

  /// Ends a watch at its consumer's request: a final canceled response is queued. Returns
  /// false if the watch does not exist (or has already ended).
  bool cancel(WatchId id, std::string reason = {}) {
    std::shared_ptr<Watcher> w;
    {
      std::lock_guard lock(mutex_);
      auto it = watchers_.find(id);
      if (it == watchers_.end()) return false;
      w = it->second;
      unregister(id);
      enqueue(*w, cancel_response(*w, 0, std::move(reason)));
    }
    if (w->notify_) w->notify_();
    return true;
  }

  // WatchControl, for the consumer's handle (engine/watch_stream.hpp).
  bool cancel_watch(WatchId id) override { return cancel(id); }
  bool request_watch_progress(WatchId id) override { return request_progress(id); }

  /// Queues a progress notification (header revision = the current revision) for one watch,
  /// after every event already queued for it. False if the watch does not exist.
  bool request_progress(WatchId id) {
    std::shared_ptr<Watcher> w;
    {
      std::lock_guard lock(mutex_);
      auto it = watchers_.find(id);
      if (it == watchers_.end()) return false;
      w = it->second;
      enqueue(*w, WatchResponse{current_, id, false, false, 0, {}, {}});
    }
    if (w->notify_) w->notify_();
    return true;
  }

  // ---- apply thread ----------------------------------------------------------------------

  /// Delivers the events of a committed batch (ascending revisions) and records them in the
  /// history; `current` is the store revision after the batch.
  void publish(std::vector<Event>&& events, Revision current) {
    std::vector<std::shared_ptr<Watcher>> to_notify;
    {
      std::lock_guard lock(mutex_);
      current_ = std::max(current_, current);
      deliver_to_watchers(events, to_notify);
      // The watchers got their copies; the history takes the events themselves.
      for (Event& e : events) {
        history_bytes_ += event_bytes(e);
        history_.push_back(std::move(e));
      }
      trim_history();
    }
    for (auto& w : to_notify) {
      if (w->notify_) w->notify_();
    }
  }

  /// Records a compaction: watches starting below `revision` are refused from now on.
  void on_compact(Revision revision) {
    std::lock_guard lock(mutex_);
    compacted_ = std::max(compacted_, revision);
  }

  /// Periodic progress (etcd's progress_notify): each watch created with progress_notify that
  /// received no events since the last call gets a progress notification.
  void progress_notify() {
    std::vector<std::shared_ptr<Watcher>> to_notify;
    {
      std::lock_guard lock(mutex_);
      for (auto& [id, w] : watchers_) {
        if (!w->progress_notify_) continue;
        if (w->events_since_progress_) {
          w->events_since_progress_ = false;
          continue;
        }
        enqueue(*w, WatchResponse{current_, id, false, false, 0, {}, {}});
        to_notify.push_back(w);
      }
    }
    for (auto& w : to_notify) {
      if (w->notify_) w->notify_();
    }
  }

  /// After the state was replaced by a snapshot: the history is gone, so every watch that had
  /// not yet reached `current` is cancelled (compact_revision = current + 1: re-read, then
  /// re-watch from there); the others continue.
  void reset(Revision current, Revision compacted) {
    std::vector<std::shared_ptr<Watcher>> to_notify;
    {
      std::lock_guard lock(mutex_);
      current_ = current;
      compacted_ = compacted;
      history_.clear();
      history_bytes_ = 0;
      floor_ = current + 1;
      std::vector<WatchId> doomed;
      for (auto& [id, w] : watchers_) {
        if (w->next_revision_ > current) continue;
        enqueue(*w, cancel_response(*w, current + 1, "kv state was replaced by a snapshot"));
        doomed.push_back(id);
        to_notify.push_back(w);
      }
      for (WatchId id : doomed) unregister(id);
    }
    for (auto& w : to_notify) {
      if (w->notify_) w->notify_();
    }
  }

  // ---- introspection ---------------------------------------------------------------------

  /// The latest revision published.
  [[nodiscard]] Revision current_revision() const {
    std::lock_guard lock(mutex_);
    return current_;
  }
  /// The oldest start revision a new watch can use.
  [[nodiscard]] Revision oldest_revision() const {
    std::lock_guard lock(mutex_);
    return std::max(floor_, compacted_);
  }
  /// Active watches.
  [[nodiscard]] std::size_t watcher_count() const {
    std::lock_guard lock(mutex_);
    return watchers_.size();
  }
  /// Events held in the history.
  [[nodiscard]] std::size_t history_size() const {
    std::lock_guard lock(mutex_);
    return history_.size();
  }

 private:
  WatchResponse cancel_response(Watcher& w, Revision compact_revision, std::string reason) {
    return WatchResponse{current_, w.id_, false, true, compact_revision, std::move(reason), {}};
  }

  // Queues a response; a cancel marks the watcher ended. Hub mutex held.
  static void enqueue(Watcher& w, WatchResponse resp) {
    std::lock_guard lock(w.mutex_);
    if (w.canceled_) return;
    if (resp.canceled) w.canceled_ = true;
    w.queue_.push_back(std::move(resp));
  }

  // Queues events, or cancels the watcher if its queue would exceed the bounds. Hub mutex held.
  // Hands each watcher its copies (shaped: filters, prev_kv) of the events it matches, in one
  // batch per watcher; the watchers to notify once the lock is released go to `to_notify`.
  void deliver_to_watchers(const std::vector<Event>& events,
                           std::vector<std::shared_ptr<Watcher>>& to_notify) {
    if (events.empty() || watchers_.empty()) return;
    std::map<WatchId, std::vector<Event>> batches;
    for (const Event& e : events) {
#if defined(DENGINE_TEST_HOOKS)
      if (test_hooks::switches().skip_watch_event && e.kv.mod_revision % 37 == 5)
        continue;  // deliberate bug (core/test_hooks.hpp)
#endif
      for (WatchId id : candidates(e.kv.key)) {
        Watcher& w = *watchers_.at(id);
        if (e.kv.mod_revision < w.next_revision_ || !w.matches(e)) continue;
        batches[id].push_back(w.shape(e));
      }
    }
    for (auto& [id, batch] : batches) {
      auto w = watchers_.at(id);
      w->next_revision_ = batch.back().kv.mod_revision + 1;
      deliver(*w, std::move(batch));
      if (w->canceled_) unregister(id);
      to_notify.push_back(std::move(w));
    }
  }

  void deliver(Watcher& w, std::vector<Event> events) {
    std::size_t bytes = 0;
    for (const Event& e : events) bytes += event_bytes(e);
    std::lock_guard lock(w.mutex_);
    if (w.canceled_) return;
    if (w.pending_events_ + events.size() > options_.max_pending_events ||
        w.pending_bytes_ + bytes > options_.max_pending_bytes) {
      w.canceled_ = true;
      w.queue_.push_back(WatchResponse{
          current_,
          w.id_,
          false,
          true,
          0,
          "kv watch: the consumer fell too far behind (" +
              std::to_string(w.pending_events_ + events.size()) + " events / " +
              std::to_string(w.pending_bytes_ + bytes) + " bytes undelivered; limits " +
              std::to_string(options_.max_pending_events) + " / " +
              std::to_string(options_.max_pending_bytes) + "); re-watch from revision " +
              std::to_string(events.front().kv.mod_revision),
          {}});
      return;
    }
    w.pending_events_ += events.size();
    w.pending_bytes_ += bytes;
    w.events_since_progress_ = true;
    w.queue_.push_back(WatchResponse{current_, w.id_, false, false, 0, {}, std::move(events)});
  }

  void register_watcher(const std::shared_ptr<Watcher>& w) {
    watchers_.emplace(w->id_, w);
    if (w->range_end_.empty())
      exact_[w->key_].insert(w->id_);
    else
      ranged_.insert(w->id_);
  }

  void unregister(WatchId id) {
    auto it = watchers_.find(id);
    if (it == watchers_.end()) return;
    const Watcher& w = *it->second;
    if (w.range_end_.empty()) {
      auto e = exact_.find(w.key_);
      if (e != exact_.end()) {
        e->second.erase(id);
        if (e->second.empty()) exact_.erase(e);
      }
    } else {
      ranged_.erase(id);
    }
    watchers_.erase(it);
  }

  // Watches that may match `key`: the exact ones for it plus every ranged one, ascending ids.
  std::vector<WatchId> candidates(const std::string& key) const {
    std::vector<WatchId> out(ranged_.begin(), ranged_.end());
    if (auto e = exact_.find(key); e != exact_.end())
      out.insert(out.end(), e->second.begin(), e->second.end());
    return out;
  }

  // Drops the oldest revisions (whole) while the history is over its bounds.
  void trim_history() {
    while (!history_.empty() && (history_.size() > options_.max_history_events ||
                                 history_bytes_ > options_.max_history_bytes)) {
      const Revision rev = history_.front().kv.mod_revision;
      while (!history_.empty() && history_.front().kv.mod_revision == rev) {
        history_bytes_ -= event_bytes(history_.front());
        history_.pop_front();
      }
      floor_ = rev + 1;
    }
  }

  WatchHubOptions options_;
  mutable std::mutex mutex_;
  Revision current_;
  Revision compacted_;
  Revision floor_;  ///< every event with revision >= floor_ is in history_
  std::deque<Event> history_;
  std::size_t history_bytes_ = 0;
  WatchId next_id_ = 0;
  std::map<WatchId, std::shared_ptr<Watcher>> watchers_;
  std::map<std::string, std::set<WatchId>, std::less<>> exact_;
  std::set<WatchId> ranged_{};
};

}  // namespace dengine::kv
