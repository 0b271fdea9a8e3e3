#pragma once
/// MvccStore: etcd's multi-version key space over a KvStore. Every put and delete adds a version
/// record (key, main, sub) — a txn's writes share one main revision with increasing sub
/// revisions — and every version is kept until compaction, so a read at any revision >= the
/// compacted one sees exactly the state the store had then.
///
/// Revision rules (etcd's): a fresh store is at revision 1; a write scope (one put, delete,
/// txn or lease revoke) that changes anything raises the revision by exactly one; one that
/// changes nothing leaves it.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "dengine/core/error.hpp"
#include "dengine/statemachines/kv/buffered_store.hpp"
#include "dengine/statemachines/kv/errors.hpp"
#include "dengine/statemachines/kv/key_range.hpp"
#include "dengine/statemachines/kv/keyspace.hpp"
#include "dengine/statemachines/kv/types.hpp"

namespace dengine::kv {

/// A key range in etcd's convention, as bounds of the encoded version space.
struct VersionRange {
  std::string lo;
  std::string hi;
  bool empty = false;  ///< range_end <= key: nothing can match
};

/// [key, range_end) per etcd: range_end empty = just key; "\0" = every key >= key.
inline VersionRange version_range(std::string_view key, std::string_view range_end) {
  if (range_end.empty())
    return {keyspace::version_prefix_of(key), keyspace::version_end_of(key), false};
  if (range_end == std::string_view("\0", 1))
    return {keyspace::version_bound(key), keyspace::version_space_end(), false};
  if (range_end <= key) return {{}, {}, true};
  return {keyspace::version_bound(key), keyspace::version_bound(range_end), false};
}

/// The versioned key space. Not thread-safe: the owner serializes access.
template <KvStore Store>
class MvccStore {
 public:
  /// Works over `store`; call load() before use.
  explicit MvccStore(Store& store) : buffer_(store) {}

  /// (Re)reads the revision and compacted revision from the store, dropping buffered writes.
  result<void> load() {
    buffer_.discard();
    forget_newest();
    in_write_ = false;
    DENGINE_TRY(rev, buffer_.get(keyspace::meta_revision));
    DENGINE_TRY(compacted, buffer_.get(keyspace::meta_compacted));
    current_ = 1;
    compacted_ = 0;
    if (rev) {
      DENGINE_TRY(v, keyspace::decode_u64(*rev, "revision"));
      current_ = static_cast<Revision>(v);
    }
    if (compacted) {
      DENGINE_TRY(v, keyspace::decode_u64(*compacted, "compacted revision"));
      compacted_ = static_cast<Revision>(v);
    }
    if (current_ < 1 || compacted_ < 0 || compacted_ > current_) {
      return error(errc::storage_corrupt, "kv store: revision " + std::to_string(current_) +
                                              " and compacted revision " +
                                              std::to_string(compacted_) + " are inconsistent");
    }
    return success();
  }

  /// The buffered view every read and write goes through.
  BufferedStore<Store>& buffer() noexcept { return buffer_; }
  const BufferedStore<Store>& buffer() const noexcept { return buffer_; }

  /// The store's current revision (the last completed write scope's).
  [[nodiscard]] Revision current_revision() const noexcept { return current_; }
  /// The compacted revision: reads below it fail with errc::compacted (0 = never compacted).
  [[nodiscard]] Revision compacted_revision() const noexcept { return compacted_; }

  /// The revision a read "now" sees: inside a write scope that already wrote, the scope's own
  /// revision (so a txn reads its own earlier writes), else the current one.
  [[nodiscard]] Revision read_revision() const noexcept {
    return in_write_ && sub_ > 0 ? current_ + 1 : current_;
  }

  /// Resolves a requested read revision (<= 0 = now) or fails like etcd: below the compacted
  /// revision → compacted, above the current one → future_revision.
  [[nodiscard]] result<Revision> resolve_read_revision(Revision requested) const {
    if (requested <= 0) return read_revision();
    if (requested > current_) return etcd_error(errc::future_revision, etcd_text::future_revision);
    if (requested < compacted_) return etcd_error(errc::compacted, etcd_text::compacted);
    return requested;
  }

  /// The version of `key` visible at revision `at`, or nullopt if it did not exist then.
  result<std::optional<KeyValue>> get(std::string_view key, Revision at) const {
    std::optional<KeyValue> out;
    std::optional<error> failure;
    DENGINE_TRYV(buffer_.scan(keyspace::version_seek(key, at), keyspace::version_end_of(key),
                              [&](std::string_view k, std::string_view v) {
                                auto vk = keyspace::parse_version_key(k);
                                auto rec = vk ? keyspace::decode_version_record(v)
                                              : result<keyspace::VersionRecord>(vk.error());
                                if (!rec) {
                                  failure = rec.error();
                                } else if (!rec.value().tombstone) {
                                  out = keyspace::to_key_value(std::string(key), vk.value().main,
                                                               rec.value());
                                }
                                return false;
                              }));
    if (failure) return *failure;
    return out;
  }

  /// get(key, read_revision()) for the apply thread (non-const), answered from the index of
  /// newest versions when it has the key — a put's look-up of the version it replaces then
  /// costs a hash probe instead of a seek through every stored version, whose number grows
  /// with the history until compaction. A miss reads the store and fills the index.
  result<std::optional<KeyValue>> get_newest(std::string_view key) {
    if (auto it = newest_.find(key); it != newest_.end()) return it->second;
    DENGINE_TRY(found, get(key, read_revision()));
    remember_newest(key, found ? &*found : nullptr);
    return found;
  }

  /// Calls visit(key, mod_revision, record) for every key of [key, range_end) that is live at
  /// revision `at`, in ascending key order, until visit returns false. The record's value
  /// views store memory valid only during the call. Keys with many versions are skipped with a
  /// fresh seek instead of visiting each version.
  template <class Visit>
  result<void> scan_visible(std::string_view key, std::string_view range_end, Revision at,
                            Visit&& visit) const {
    VersionRange range = version_range(key, range_end);
    if (range.empty) return success();
    // Versions of one key visited before giving up and seeking past them.
    constexpr int max_linear_skips = 8;
    std::string cursor = range.lo;
    std::string current_key;
    bool have_key = false;
    bool resolved = false;
    int skipped = 0;
    std::optional<error> failure;
    for (;;) {
      bool done = false;
      std::optional<std::string> reseek;
      DENGINE_TRYV(buffer_.scan(cursor, range.hi, [&](std::string_view k, std::string_view v) {
        auto vk = keyspace::parse_version_key(k);
        if (!vk) {
          failure = vk.error();
          return false;
        }
        keyspace::VersionKey& ver = vk.value();
        if (!have_key || ver.key != current_key) {
          current_key = std::move(ver.key);
          have_key = true;
          resolved = false;
          skipped = 0;
        }
        if (resolved) {  // an older version of a key already answered
          if (++skipped > max_linear_skips) {
            reseek = keyspace::version_end_of(current_key);
            return false;
          }
          return true;
        }
        if (ver.main > at) {  // newer than the read revision
          if (++skipped > max_linear_skips) {
            reseek = keyspace::version_seek(current_key, at);
            return false;
          }
          return true;
        }
        resolved = true;
        skipped = 0;
        auto rec = keyspace::decode_version_record(v);
        if (!rec) {
          failure = rec.error();
          return false;
        }
        if (rec.value().tombstone) return true;
        if (!visit(std::string_view(current_key), ver.main, rec.value())) {
          done = true;
          return false;
        }
        return true;
      }));
      if (failure) return *failure;
      if (done || !reseek) return success();
      cursor = std::move(*reseek);
    }
  }

  // ---- writes -------------------------------------------------------------------------------

  /// Opens a write scope: its writes get revision (current + 1, 0), (current + 1, 1), ...
  void begin_write() noexcept {
    in_write_ = true;
    sub_ = 0;
  }

  /// Whether the open write scope has written anything.
  [[nodiscard]] bool wrote() const noexcept { return in_write_ && sub_ > 0; }

  /// Writes key = value (attached to `lease`) in the open scope and returns the PUT event.
  /// `prev` must be get(key, read_revision()) (the caller has read it to check the request);
  /// it becomes the event's prev_kv, moved only after `value` (which may view prev's value)
  /// was copied. version and create_revision follow etcd: a key's first put after creation or
  /// a delete has version 1 and create_revision = this revision; later puts keep
  /// create_revision and add 1 to version.
  Event put(std::string_view key, std::string_view value, LeaseId lease,
            std::optional<KeyValue>&& prev) {
    const Revision main = current_ + 1;
    Revision create = main;
    std::int64_t version = 1;
    if (prev) {
      create = prev->create_revision;
      version = prev->version + 1;
    }
    buffer_.put(keyspace::version_key(key, main, sub_++),
                keyspace::encode_put_record(create, version, lease, value));
    Event ev;
    ev.type = EventType::put;
    ev.kv = KeyValue{std::string(key), create, main, version, std::string(value), lease};
    ev.prev_kv = std::move(prev);
    remember_newest(key, &ev.kv);
    return ev;
  }

  /// Deletes the live key prev.key in the open scope (prev = its visible kv): writes a
  /// tombstone and returns the DELETE event (kv = key + this revision, prev_kv = prev).
  Event remove(const KeyValue& prev) {
    const Revision main = current_ + 1;
    buffer_.put(keyspace::version_key(prev.key, main, sub_++), keyspace::encode_tombstone_record());
    remember_newest(prev.key, nullptr);
    Event ev;
    ev.type = EventType::del;
    ev.kv.key = prev.key;
    ev.kv.mod_revision = main;
    ev.prev_kv = prev;
    return ev;
  }

  /// Closes the write scope: if it wrote, the revision advances by one (persisted with the
  /// scope's writes). Returns the (possibly new) current revision.
  Revision end_write() {
    if (in_write_ && sub_ > 0) {
      ++current_;
      buffer_.put(keyspace::meta_revision,
                  keyspace::encode_u64(static_cast<std::uint64_t>(current_)));
    }
    in_write_ = false;
    sub_ = 0;
    return current_;
  }

  /// Compacts at `rev` (already validated: compacted < rev <= current): of each key's versions
  /// with main <= rev only the newest is kept, and only if it is a put. Reads at any revision
  /// >= rev are unchanged; reads below it fail from now on. Scans the whole version space.
  result<void> compact(Revision rev) {
    std::vector<std::string> doomed;
    std::string current_key;
    bool have_key = false;
    bool kept = false;
    std::optional<error> failure;
    DENGINE_TRYV(buffer_.scan(std::string(1, keyspace::version_prefix),
                              keyspace::version_space_end(),
                              [&](std::string_view k, std::string_view v) {
                                auto vk = keyspace::parse_version_key(k);
                                if (!vk) {
                                  failure = vk.error();
                                  return false;
                                }
                                if (!have_key || vk.value().key != current_key) {
                                  current_key = std::move(vk.value().key);
                                  have_key = true;
                                  kept = false;
                                }
                                if (vk.value().main > rev)
                                  return true;  // needed by reads above rev
                                if (kept) {
                                  doomed.emplace_back(k);  // shadowed by a newer version <= rev
                                  return true;
                                }
                                kept = true;  // the newest version <= rev: what reads at rev see
                                auto rec = keyspace::decode_version_record(v);
                                if (!rec) {
                                  failure = rec.error();
                                  return false;
                                }
                                if (rec.value().tombstone)
                                  doomed.emplace_back(k);  // reads at >= rev see no key anyway
                                return true;
                              }));
    if (failure) return *failure;
    for (auto& k : doomed) buffer_.erase(std::move(k));
    compacted_ = rev;
    buffer_.put(keyspace::meta_compacted, keyspace::encode_u64(static_cast<std::uint64_t>(rev)));
    return success();
  }

 private:
  /// Bound of the newest-version index, in key and value bytes: past it the index starts over
  /// (it is a cache; what it forgets is read from the store again).
  static constexpr std::size_t newest_index_max_bytes = 64U << 20;

  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };

  // What one index entry costs, roughly: its key twice (map key and KeyValue), its value, and
  // a fixed overhead for the node and the KeyValue's other fields.
  static std::size_t newest_entry_bytes(std::string_view key, const KeyValue* kv) {
    return 2 * key.size() + (kv != nullptr ? kv->value.size() : 0) + 64;
  }

  /// Records `kv` (nullptr: no live version) as key's newest version. Assigns into the
  /// entry already there, so a key's steady stream of puts reuses its strings' memory.
  void remember_newest(std::string_view key, const KeyValue* kv) {
    const std::size_t bytes = newest_entry_bytes(key, kv);
    auto it = newest_.find(key);
    if (it == newest_.end()) {
      if (newest_bytes_ + bytes > newest_index_max_bytes) forget_newest();
      it = newest_.emplace(std::string(key), std::nullopt).first;
    } else {
      newest_bytes_ -= newest_entry_bytes(key, it->second ? &*it->second : nullptr);
    }
    if (kv == nullptr)
      it->second.reset();
    else if (it->second)
      *it->second = *kv;
    else
      it->second.emplace(*kv);
    newest_bytes_ += bytes;
  }

  void forget_newest() noexcept {
    newest_.clear();
    newest_bytes_ = 0;
  }

  BufferedStore<Store> buffer_;
  /// The newest version of keys the apply path wrote or looked up, as get(key,
  /// read_revision()) answers it: updated by put() and remove() (every version write goes
  /// through them), dropped by load() (which every discard of buffered writes, restore and
  /// reload goes through). compact() keeps every key's newest version's meaning (a newest
  /// tombstone it erases still reads as absent). Apply thread only.
  std::unordered_map<std::string, std::optional<KeyValue>, StringHash, std::equal_to<>> newest_;
  std::size_t newest_bytes_ = 0;
  Revision current_ = 1;
  Revision compacted_ = 0;
  bool in_write_ = false;
  std::uint64_t sub_ = 0;
};

}  // namespace dengine::kv
