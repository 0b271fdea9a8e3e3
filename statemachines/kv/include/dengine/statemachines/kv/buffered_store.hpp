#pragma once
/// BufferedStore: a KvStore seen through the writes not yet committed to it. The state machine
/// applies a whole batch of log entries into the buffer (each entry reading the writes of the
/// ones before it), then commits the buffer and the applied index in one KvStore write, which
/// makes the batch atomic: a crash leaves either all of it or none of it.

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "dengine/core/error.hpp"
#include "dengine/storage/concepts.hpp"
#include "dengine/storage/write_batch.hpp"

namespace dengine::kv {

/// Pending writes over a KvStore, with reads that merge both (pending writes win).
/// Not thread-safe: one thread (the apply thread) uses it at a time.
template <KvStore Store>
class BufferedStore {
 public:
  /// Reads and later writes `store`, which must outlive this object.
  explicit BufferedStore(Store& store) : store_(&store) {}

  /// The underlying store.
  Store& store() const { return *store_; }

  /// The value of key, pending writes included.
  result<std::optional<std::string>> get(std::string_view key) const {
    if (auto it = pending_.find(key); it != pending_.end()) return it->second;
    return store_->get(key);
  }

  /// Visits [lo, hi) (hi empty = to the end) in ascending order, pending writes included,
  /// until visit returns false. The visitor must not write to this BufferedStore.
  result<void> scan(std::string_view lo, std::string_view hi, const KvVisitor& visit) const {
    auto it = pending_.lower_bound(lo);
    auto in_range = [&](const std::string& k) { return hi.empty() || std::string_view(k) < hi; };
    bool stopped = false;
    // Emits pending puts below `limit` (all of them when limit is nullopt); false = stop.
    auto drain = [&](std::optional<std::string_view> limit) {
      for (; it != pending_.end() && in_range(it->first); ++it) {
        if (limit && std::string_view(it->first) >= *limit) return true;
        if (it->second && !visit(it->first, *it->second)) {
          ++it;
          return false;
        }
      }
      return true;
    };
    DENGINE_TRYV(store_->scan(lo, hi, [&](std::string_view k, std::string_view v) {
      if (!drain(k)) {
        stopped = true;
        return false;
      }
      if (it != pending_.end() && std::string_view(it->first) == k) {
        // Overridden by a pending write: a pending put is visited instead, an erase hides it.
        auto& override_value = it->second;
        ++it;
        if (override_value && !visit(k, *override_value)) {
          stopped = true;
          return false;
        }
        return true;
      }
      if (!visit(k, v)) {
        stopped = true;
        return false;
      }
      return true;
    }));
    if (!stopped) drain(std::nullopt);
    return success();
  }

  /// Buffers key = value.
  void put(std::string key, std::string value) {
    pending_.insert_or_assign(std::move(key), std::move(value));
  }
  /// Buffers the erase of key.
  void erase(std::string key) { pending_.insert_or_assign(std::move(key), std::nullopt); }

  /// Number of buffered writes.
  [[nodiscard]] std::size_t pending_count() const noexcept { return pending_.size(); }

  /// Writes every buffered write and `applied_index` to the store atomically, then empties the
  /// buffer. On failure the buffer is kept empty too: the caller reloads its state from the store.
  result<void> commit(LogIndex applied_index) {
    WriteBatch batch;
    batch.writes.reserve(pending_.size());
    while (!pending_.empty()) {
      auto node = pending_.extract(pending_.begin());  // owns its key: moved, not copied
      if (node.mapped())
        batch.put(std::move(node.key()), std::move(*node.mapped()));
      else
        batch.erase(std::move(node.key()));
    }
    // A store with a `write(WriteBatch&&, LogIndex)` overload takes the strings as they are.
    return store_->write(std::move(batch), applied_index);
  }

  /// Drops every buffered write.
  void discard() noexcept { pending_.clear(); }

 private:
  Store* store_;
  std::map<std::string, std::optional<std::string>, std::less<>> pending_;
};

}  // namespace dengine::kv
