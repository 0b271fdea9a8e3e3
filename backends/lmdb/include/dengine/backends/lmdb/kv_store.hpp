#pragma once
/// dengine::lmdb::KvStore — a KvStore in the "kv" database of a data dir's LMDB environment.
///
/// Keys are stored with a one-byte tag in front (codec.hpp), so the empty key is allowed; the
/// applied index lives in the "meta" database and is written in the same transaction as the
/// batch. Every record carries a CRC32C over its key and value, checked whenever it is read
/// (get, every record a scan's cursor passes, the old value a write replaces): a damaged record
/// is storage_corrupt naming data.mdb and the key, never a wrong value. A KvStore opened on the
/// same dir as an Engine shares its environment (one data.mdb); opened on its own dir it owns an
/// environment alone.
///
/// Limits: LMDB caps keys at mdb_env_get_maxkeysize() (511 bytes by default), so user keys are
/// at most one byte less (max_key_size()); a longer key in a write fails with too_large naming
/// the key's size and the limit. Values are bounded by the map (which grows) and the disk.
///
/// Durability: a write is durable on return with DiskFirst; with MemFirst after sync().
/// Threads: writes are serialized; get() and scan() run concurrently with them. A scan visitor
/// may call get()/scan()/applied_index() on the same store but must not write to it. The views
/// passed to a visitor are valid only during that call.

#include <lmdb.h>

#include <atomic>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "dengine/backends/lmdb/codec.hpp"
#include "dengine/backends/lmdb/environment.hpp"
#include "dengine/backends/lmdb/error.hpp"
#include "dengine/backends/lmdb/options.hpp"
#include "dengine/backends/lmdb/record.hpp"
#include "dengine/backends/lmdb/txn.hpp"
#include "dengine/core/config.hpp"
#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/storage/concepts.hpp"
#include "dengine/storage/write_batch.hpp"

namespace dengine::lmdb {

/// An ordered byte map plus applied index, in LMDB (see the file comment). Move-only (its state
/// is owned by unique_ptr: moves are noexcept, copies do not compile); destroying it closes the
/// store, and the environment if no Engine shares it.
class KvStore {
 public:
  /// Opens (creating if needed) the store in `dir`, sharing the dir's environment with an
  /// Engine of this process opened there. Errors as for Engine::open.
  static result<KvStore> open(const std::filesystem::path& dir, Options options = {}) {
    DENGINE_TRY(env, Environment::acquire(dir, options));
    KvStore store(std::move(env), options);
    DENGINE_TRY(applied, store.env_->read([&](detail::Txn& txn) -> result<LogIndex> {
      DENGINE_TRY(payload, txn.get(detail::Db::meta, detail::kv_applied_key));
      if (!payload) return LogIndex{0};
      if (payload->size() != 8)
        return txn.corrupt(detail::Db::meta, detail::kv_applied_key,
                           "malformed payload of " + std::to_string(payload->size()) + " bytes");
      return bytes::get_be64(payload->data());
    }));
    store.state_->applied.store(applied);
    return store;
  }

  // ---- KvStore -------------------------------------------------------------------------------

  /// The value at key, or nullopt.
  [[nodiscard]] result<std::optional<std::string>> get(std::string_view key) const {
    if (key.size() > max_key_size()) return std::optional<std::string>{};  // cannot be stored
    const std::string stored = tagged(key);
    return env_->read([&](detail::Txn& txn) -> result<std::optional<std::string>> {
      DENGINE_TRY(payload, txn.get(detail::Db::kv, stored));
      if (!payload) return std::optional<std::string>{};
      return std::optional<std::string>{std::string(*payload)};
    });
  }

  /// Visits keys in [lo, hi) in ascending byte order (hi empty = to the end) until visit returns
  /// false, all from one consistent snapshot. lo >= hi (hi non-empty) visits nothing.
  [[nodiscard]] result<void> scan(std::string_view lo, std::string_view hi,
                                  const KvVisitor& visit) const {
    if (!hi.empty() && lo >= hi) return success();
    // A bound longer than any storable key is positioned by its storable prefix; keys below lo
    // are then skipped by comparison.
    const std::string start = tagged(lo.substr(0, max_key_size()));
    return env_->read([&](detail::Txn& txn) -> result<void> {
      detail::Cursor cursor;
      DENGINE_TRYV(cursor.open(txn.raw(), env_->layout().kv, "kv"));
      MDB_val k = detail::as_val(start);
      MDB_val v{};
      for (int rc = cursor.get(k, v, MDB_SET_RANGE); rc != MDB_NOTFOUND;
           rc = cursor.get(k, v, MDB_NEXT)) {
        if (rc != 0) return lmdb_failure(rc, "mdb_cursor_get(kv)");
        // Checked before its key is even compared: a damaged key must not end the scan early
        // or make it skip a record.
        DENGINE_TRY(payload, txn.check(detail::Db::kv, k, v));
        const std::string_view stored = detail::as_view(k);
        if (stored.empty() || stored.front() != detail::kv_tag)
          return txn.corrupt(detail::Db::kv, stored, "a key without its tag byte");
        const std::string_view key = stored.substr(1);
        if (key < lo) continue;
        if (!hi.empty() && key >= hi) break;
        if (!visit(key, payload)) break;
      }
      return success();
    });
  }

  /// Applies every write of batch in order (a later write to a key wins) and records
  /// applied_index, in one LMDB transaction: all of it or none of it becomes visible (and
  /// durable per the mode). A key longer than max_key_size() fails with too_large before
  /// anything is written.
  result<void> write(const WriteBatch& batch, LogIndex applied_index) {
    for (std::size_t n = 0; n < batch.writes.size(); ++n) {
      const std::size_t size = batch.writes[n].key.size();
      if (size > max_key_size())
        return error(errc::too_large, "lmdb kv store " + env_->dir().string() + ": write " +
                                          std::to_string(n) + " of the batch has a key of " +
                                          std::to_string(size) + " bytes; the limit is " +
                                          std::to_string(max_key_size()));
    }
    std::lock_guard lock(state_->write_mutex);
    std::string stored;
    DENGINE_TRYV(env_->write(options_.mode, [&](detail::Txn& txn) -> result<void> {
      for (const KvWrite& w : batch.writes) {
        stored = tagged(w.key);
        if (w.kind == KvWrite::Kind::put) {
          DENGINE_TRYV(txn.put(detail::Db::kv, stored, {w.value}));
        } else {
          DENGINE_TRY(found, txn.erase(detail::Db::kv, stored));
          (void)found;
        }
      }
      return put_applied(txn, applied_index);
    }));
    state_->applied.store(applied_index);
    return success();
  }

  /// The index recorded by the last write() or clear() (0 on a fresh store).
  [[nodiscard]] LogIndex applied_index() const { return state_->applied.load(); }

  /// Erases every key and records applied_index, in one transaction.
  result<void> clear(LogIndex applied_index) {
    std::lock_guard lock(state_->write_mutex);
    DENGINE_TRYV(env_->write(options_.mode, [&](detail::Txn& txn) -> result<void> {
      DENGINE_TRYV(txn.drop(detail::Db::kv));
      return put_applied(txn, applied_index);
    }));
    state_->applied.store(applied_index);
    return success();
  }

  // ---- Beyond the concept --------------------------------------------------------------------

  /// Makes every write durable: mdb_env_sync(force) with MemFirst; nothing to do with DiskFirst.
  result<void> sync() {
    if (options_.mode == PersistenceMode::disk_first) return success();
    return env_->sync();
  }

  /// Longest key a write accepts (LMDB's key limit minus the tag byte).
  [[nodiscard]] std::size_t max_key_size() const noexcept { return env_->max_key_size() - 1; }
  /// The persistence mode this store was opened with.
  [[nodiscard]] PersistenceMode mode() const noexcept { return options_.mode; }
  /// The (shared) LMDB environment: its dir, map size, growth count and stale readers cleared.
  [[nodiscard]] const Environment& environment() const noexcept { return *env_; }

 private:
  /// Write-side state, behind a pointer so that KvStore stays movable.
  struct State {
    std::mutex write_mutex;
    std::atomic<LogIndex> applied{0};
  };

  KvStore(std::shared_ptr<Environment> env, Options options)
      : env_(std::move(env)), options_(options), state_(std::make_unique<State>()) {}

  static std::string tagged(std::string_view key) {
    std::string out;
    out.reserve(key.size() + 1);
    out.push_back(detail::kv_tag);
    out.append(key);
    return out;
  }

  static result<void> put_applied(detail::Txn& txn, LogIndex applied_index) {
    std::string value;
    bytes::put_be64(value, applied_index);
    return txn.put(detail::Db::meta, detail::kv_applied_key, {value});
  }

  std::shared_ptr<Environment> env_;
  Options options_;
  std::unique_ptr<State> state_;
};

/// Moves are noexcept (the state sits behind a unique_ptr) and copies do not compile.
static_assert(std::is_nothrow_move_constructible_v<KvStore> &&
              std::is_nothrow_move_assignable_v<KvStore> && !std::is_copy_constructible_v<KvStore>);
static_assert(dengine::KvStore<KvStore>);

}  // namespace dengine::lmdb
