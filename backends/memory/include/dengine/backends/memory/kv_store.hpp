#pragma once
/// dengine::memory::KvStore — an in-memory KvStore: an ordered byte map plus the applied index.
/// Writes are "durable" on return (the store object outlives a simulated crash, as a disk would).

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/storage/concepts.hpp"
#include "dengine/storage/write_batch.hpp"

namespace dengine::memory {

/// An ordered byte map (keys compare as unsigned bytes, as memcmp does) with the applied index
/// recorded atomically with each write batch. Thread-safe: every member locks one mutex; a
/// scan visitor may call get()/scan()/applied_index() on the same store, but must not write it.
class KvStore {
 public:
  /// A fresh, empty store with applied_index() == 0.
  KvStore() = default;

  KvStore(const KvStore&) = delete;
  KvStore& operator=(const KvStore&) = delete;
  /// Moves the contents; `other` is left empty.
  KvStore(KvStore&& other) noexcept {
    std::lock_guard lock(other.mutex_);
    move_from(other);
  }
  /// Moves the contents; `other` is left empty.
  KvStore& operator=(KvStore&& other) noexcept {
    if (this != &other) {
      std::scoped_lock lock(mutex_, other.mutex_);
      move_from(other);
    }
    return *this;
  }
  ~KvStore() = default;

  // ---- KvStore -------------------------------------------------------------------------------

  /// The value at key, or nullopt.
  [[nodiscard]] result<std::optional<std::string>> get(std::string_view key) const {
    std::lock_guard lock(mutex_);
    auto it = map_.find(key);
    if (it == map_.end()) return std::optional<std::string>{};
    return std::optional<std::string>{it->second};
  }

  /// Visits keys in [lo, hi) in ascending byte order (hi empty = to the end) until visit returns
  /// false. lo >= hi (hi non-empty) visits nothing.
  [[nodiscard]] result<void> scan(std::string_view lo, std::string_view hi,
                                  const KvVisitor& visit) const {
    std::lock_guard lock(mutex_);
    for (auto it = map_.lower_bound(lo); it != map_.end(); ++it) {
      if (!hi.empty() && std::string_view(it->first) >= hi) break;
      if (!visit(it->first, it->second)) break;
    }
    return success();
  }

  /// Applies every write of batch in order (a later write to a key wins) and records
  /// applied_index, as one atomic unit: no reader sees part of the batch.
  result<void> write(const WriteBatch& batch, LogIndex applied_index) {
    return write_batch(batch, applied_index);
  }
  /// The same, moving the keys and values out of batch instead of copying them (the state
  /// machine's commit passes a batch it no longer needs).
  result<void> write(WriteBatch&& batch, LogIndex applied_index) {
    return write_batch(std::move(batch), applied_index);
  }

  /// The index recorded by the last write() or clear() (0 on a fresh store).
  [[nodiscard]] LogIndex applied_index() const {
    std::lock_guard lock(mutex_);
    return applied_index_;
  }

  /// Erases every key and records applied_index (used before restoring a snapshot).
  result<void> clear(LogIndex applied_index) {
    std::lock_guard lock(mutex_);
    map_.clear();
    applied_index_ = applied_index;
    return success();
  }

  // ---- Test hooks ----------------------------------------------------------------------------

  /// Number of keys held.
  [[nodiscard]] std::size_t size() const {
    std::lock_guard lock(mutex_);
    return map_.size();
  }

  /// Number of successful write() calls since construction.
  [[nodiscard]] std::uint64_t write_count() const {
    std::lock_guard lock(mutex_);
    return writes_;
  }

 private:
  // Batch is `const WriteBatch&` (copies) or `WriteBatch&&` (moves).
  template <class Batch>
  result<void> write_batch(Batch&& batch, LogIndex applied_index) {
    std::lock_guard lock(mutex_);
    for (auto& w : batch.writes) {
      if (w.kind == KvWrite::Kind::put) {
        if constexpr (std::is_rvalue_reference_v<Batch&&>)
          map_.insert_or_assign(std::move(w.key), std::move(w.value));
        else
          map_.insert_or_assign(w.key, w.value);
      } else {
        auto it = map_.find(std::string_view(w.key));
        if (it != map_.end()) map_.erase(it);
      }
    }
    applied_index_ = applied_index;
    ++writes_;
    return success();
  }

  void move_from(KvStore& other) noexcept {
    map_ = std::move(other.map_);
    applied_index_ = other.applied_index_;
    writes_ = other.writes_;
    other.map_.clear();
    other.applied_index_ = 0;
    other.writes_ = 0;
  }

  // recursive: a scan visitor may read the store it is scanning (the lock is already held).
  mutable std::recursive_mutex mutex_;
  // std::less<> for string_view lookups; std::string compares chars as unsigned (memcmp order).
  std::map<std::string, std::string, std::less<>> map_;
  LogIndex applied_index_ = 0;
  std::uint64_t writes_ = 0;
};

static_assert(dengine::KvStore<KvStore>);

}  // namespace dengine::memory
