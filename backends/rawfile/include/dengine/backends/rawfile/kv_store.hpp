#pragma once
/// dengine::rawfile::KvStore — an ordered byte map held in memory, checkpointed to one snapshot
/// file.
///
/// Durability model: **the KV state is "snapshot file + Raft log replay"**. write() changes only
/// memory (and applied_index()); checkpoint() writes the whole map and its applied index to
/// `kv.snapshot` atomically (temp file, fsync, rename, fsync dir). After a crash, open() loads the
/// last checkpoint and applied_index() is *its* index: the runtime re-applies the committed log
/// entries after it. Hence two rules for whoever drives this store:
///   1. Never compact the Raft log past durable_index() (checkpoint first, then compact).
///   2. After a restore (clear() + writes of a snapshot's contents), checkpoint() before the
///      log is reset or compacted past the old checkpoint — otherwise a crash would reopen the
///      store at an index the log no longer reaches.
/// Checkpoints happen on checkpoint(), automatically once KvOptions::checkpoint_bytes of keys and
/// values were written since the last one (inside the write() that crosses the threshold), and in
/// the destructor (KvOptions::checkpoint_on_close).
///
/// `kv.snapshot` uses the checked-file envelope (checked_file.hpp, magic "DENGKVSN") around:
/// applied index u64, pair count u64, then per pair key length u32, value length u32, key bytes,
/// value bytes, keys in strictly ascending byte order. Any mismatch is `storage_corrupt` naming the
/// file and the offset. The directory is locked with `kv.lock`, so it may be shared with an Engine.
///
/// Threads: every member locks one recursive mutex; a scan visitor may call get()/scan()/
/// applied_index() on the same store, but must not write to it.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/core.h>

#include "dengine/backends/rawfile/checked_file.hpp"
#include "dengine/backends/rawfile/file_io.hpp"
#include "dengine/backends/rawfile/options.hpp"
#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/storage/byte_codec.hpp"
#include "dengine/storage/concepts.hpp"
#include "dengine/storage/crc32c.hpp"
#include "dengine/storage/write_batch.hpp"

namespace dengine::rawfile {

inline constexpr std::string_view kv_snapshot_file = "kv.snapshot";
inline constexpr std::string_view kv_lock_file = "kv.lock";
inline constexpr std::string_view kv_snapshot_magic = "DENGKVSN";

namespace detail {

/// Buffers writes to a file descriptor and keeps their running CRC32C.
class ChecksummedWriter {
 public:
  ChecksummedWriter(int fd, const std::filesystem::path& file) : fd_(fd), file_(file) {
    buffer_.reserve(capacity);
  }
  /// Appends bytes.
  result<void> write(std::string_view bytes) {
    crc_ = crc32c::extend(crc_, bytes.data(), bytes.size());
    if (buffer_.size() + bytes.size() > capacity) {
      DENGINE_TRYV(flush());
    }
    if (bytes.size() >= capacity) {
      DENGINE_TRYV(io::pwrite_all(fd_, bytes, offset_, file_));
      offset_ += bytes.size();
      return success();
    }
    buffer_.append(bytes);
    return success();
  }
  /// Writes out what is buffered.
  result<void> flush() {
    DENGINE_TRYV(io::pwrite_all(fd_, buffer_, offset_, file_));
    offset_ += buffer_.size();
    buffer_.clear();
    return success();
  }
  /// The CRC32C of every byte written so far.
  [[nodiscard]] std::uint32_t crc() const noexcept { return crc_; }

 private:
  static constexpr std::size_t capacity = 1U << 20;
  int fd_;
  const std::filesystem::path& file_;
  std::string buffer_;
  std::uint64_t offset_ = 0;
  std::uint32_t crc_ = 0;
};

/// Everything an open store holds.
struct KvState {
  KvOptions options;
  io::Directory dir;
  std::map<std::string, std::string, std::less<>> map;
  LogIndex applied = 0;
  LogIndex durable = 0;         ///< applied index of kv.snapshot
  std::size_t dirty_bytes = 0;  ///< key+value bytes written since the last checkpoint
  bool dirty = false;           ///< anything changed since the last checkpoint
  mutable std::recursive_mutex mu;
};

}  // namespace detail

/// An in-memory ordered byte map with checkpoints to a snapshot file (see the file comment).
/// Movable; checkpoints (per KvOptions::checkpoint_on_close) and closes on destruction.
class KvStore {
 public:
  /// Opens the store in `dir` (created if needed), loading `kv.snapshot` if it exists.
  static result<KvStore> open(const std::filesystem::path& dir, KvOptions options = {});

  KvStore(KvStore&&) noexcept = default;
  KvStore& operator=(KvStore&& other) noexcept {
    if (this != &other) {
      close();
      s_ = std::move(other.s_);
    }
    return *this;
  }
  KvStore(const KvStore&) = delete;
  KvStore& operator=(const KvStore&) = delete;
  ~KvStore() { close(); }

  /// The value at key, or nullopt.
  [[nodiscard]] result<std::optional<std::string>> get(std::string_view key) const;
  /// Visits keys in [lo, hi) in ascending byte order (hi empty = to the end) until visit returns
  /// false.
  [[nodiscard]] result<void> scan(std::string_view lo, std::string_view hi,
                                  const KvVisitor& visit) const;
  /// Applies the batch in memory and records applied_index (not durable: see the file comment);
  /// checkpoints when KvOptions::checkpoint_bytes is crossed, returning that checkpoint's error if
  /// it fails (the batch is applied in memory all the same).
  result<void> write(const WriteBatch& batch, LogIndex applied_index);
  /// The index recorded by the last write() or clear() (after open: the checkpoint's).
  [[nodiscard]] LogIndex applied_index() const;
  /// Erases every key and records applied_index (before a restore).
  result<void> clear(LogIndex applied_index);
  /// Writes the whole map and applied_index() to kv.snapshot, atomically and durably.
  result<void> checkpoint();
  /// The applied index of the last checkpoint: what survives a crash without log replay.
  [[nodiscard]] LogIndex durable_index() const;
  /// Number of keys.
  [[nodiscard]] std::size_t size() const;
  /// The data directory.
  [[nodiscard]] const std::filesystem::path& directory() const noexcept { return s_->dir.path; }

 private:
  explicit KvStore(std::unique_ptr<detail::KvState> s) : s_(std::move(s)) {}
  void close() noexcept;

  std::unique_ptr<detail::KvState> s_;
};

static_assert(dengine::KvStore<KvStore>);

/// The map and applied index in the contents `data` of the snapshot file `file`.
inline result<std::pair<LogIndex, std::map<std::string, std::string, std::less<>>>>
decode_kv_snapshot(std::string_view data, const std::filesystem::path& file) {
  DENGINE_TRY(payload, checked_file::decode(data, kv_snapshot_magic, file));
  auto corrupt = [&](std::uint64_t offset, std::string_view why) {
    return error(errc::storage_corrupt, fmt::format("{} at offset {}: {}", file.string(),
                                                    checked_file::header_bytes + offset, why));
  };
  bytes::LeReader r(payload);
  auto applied = r.u64();
  auto count = r.u64();
  if (!applied || !count) return corrupt(0, "truncated snapshot header");
  std::map<std::string, std::string, std::less<>> map;
  for (std::uint64_t i = 0; i < *count; ++i) {
    const auto at = r.position();
    auto klen = r.u32();
    auto vlen = r.u32();
    if (!klen || !vlen)
      return corrupt(at, fmt::format("pair {} of {}: truncated lengths", i, *count));
    auto key = r.bytes(*klen);
    auto value = key ? r.bytes(*vlen) : std::nullopt;
    if (!key || !value)
      return corrupt(at, fmt::format("pair {} of {}: lengths run past the end", i, *count));
    if (!map.empty() && !(map.rbegin()->first < *key))
      return corrupt(at, fmt::format("pair {}: keys out of order", i));
    map.emplace_hint(map.end(), std::string(*key), std::string(*value));
  }
  if (r.remaining() != 0) return corrupt(r.position(), "trailing bytes after the last pair");
  return std::pair{*applied, std::move(map)};
}

inline result<KvStore> KvStore::open(const std::filesystem::path& dir, KvOptions options) {
  auto s = std::make_unique<detail::KvState>();
  s->options = std::move(options);
  DENGINE_TRY(d, io::open_directory(dir, kv_lock_file));
  s->dir = std::move(d);
  const auto tmp = dir / (std::string(kv_snapshot_file) + ".tmp");
  if (std::error_code ec; std::filesystem::exists(tmp, ec)) {
    detail::emit(s->options.log,
                 fmt::format("removing {}: an interrupted checkpoint", tmp.string()));
    DENGINE_TRYV(io::remove_file(tmp));
  }
  const auto path = dir / kv_snapshot_file;
  DENGINE_TRY(bytes, io::read_whole_file(path));
  if (bytes) {
    DENGINE_TRY(decoded, decode_kv_snapshot(*bytes, path));
    s->applied = s->durable = decoded.first;
    s->map = std::move(decoded.second);
  }
  return KvStore(std::move(s));
}

inline void KvStore::close() noexcept {
  if (!s_) return;
  if (s_->options.checkpoint_on_close && s_->dirty) {
    if (auto done = checkpoint(); !done)
      detail::emit(s_->options.log,
                   fmt::format("checkpoint on close failed: {}", done.error().message()));
  }
  s_.reset();
}

inline result<std::optional<std::string>> KvStore::get(std::string_view key) const {
  std::lock_guard lock(s_->mu);
  auto it = s_->map.find(key);
  if (it == s_->map.end()) return std::optional<std::string>{};
  return std::optional<std::string>{it->second};
}

inline result<void> KvStore::scan(std::string_view lo, std::string_view hi,
                                  const KvVisitor& visit) const {
  std::lock_guard lock(s_->mu);
  for (auto it = s_->map.lower_bound(lo); it != s_->map.end(); ++it) {
    if (!hi.empty() && std::string_view(it->first) >= hi) break;
    if (!visit(it->first, it->second)) break;
  }
  return success();
}

inline result<void> KvStore::write(const WriteBatch& batch, LogIndex applied_index) {
  std::lock_guard lock(s_->mu);
  for (const KvWrite& w : batch.writes) {
    if (w.key.size() > max_field_bytes || w.value.size() > max_field_bytes)
      return error(
          errc::too_large,
          fmt::format("rawfile kv write: a key or value of {} bytes exceeds the {}-byte limit",
                      std::max(w.key.size(), w.value.size()), max_field_bytes));
  }
  for (const KvWrite& w : batch.writes) {
    if (w.kind == KvWrite::Kind::put) {
      s_->dirty_bytes += w.key.size() + w.value.size();
      s_->map.insert_or_assign(w.key, w.value);
    } else {
      s_->dirty_bytes += w.key.size();
      if (auto it = s_->map.find(std::string_view(w.key)); it != s_->map.end()) s_->map.erase(it);
    }
  }
  s_->applied = applied_index;
  s_->dirty = true;
  if (s_->options.checkpoint_bytes != 0 && s_->dirty_bytes >= s_->options.checkpoint_bytes)
    return checkpoint();
  return success();
}

inline LogIndex KvStore::applied_index() const {
  std::lock_guard lock(s_->mu);
  return s_->applied;
}

inline result<void> KvStore::clear(LogIndex applied_index) {
  std::lock_guard lock(s_->mu);
  s_->map.clear();
  s_->applied = applied_index;
  s_->dirty = true;
  return success();
}

inline result<void> KvStore::checkpoint() {
  std::lock_guard lock(s_->mu);
  auto& s = *s_;
  std::uint64_t payload = 16;
  for (const auto& [k, v] : s.map) payload += 8 + k.size() + v.size();
  DENGINE_TRYV(io::replace_file_atomically(
      s.dir, kv_snapshot_file, [&](int fd, const std::filesystem::path& file) -> result<void> {
        detail::ChecksummedWriter out(fd, file);
        std::string head(kv_snapshot_magic);
        bytes::put_le32(head, checked_file::format_version);
        bytes::put_le32(head, 0);
        bytes::put_le64(head, payload);
        bytes::put_le64(head, s.applied);
        bytes::put_le64(head, s.map.size());
        DENGINE_TRYV(out.write(head));
        std::string lengths;
        for (const auto& [k, v] : s.map) {
          lengths.clear();
          bytes::put_le32(lengths, static_cast<std::uint32_t>(k.size()));
          bytes::put_le32(lengths, static_cast<std::uint32_t>(v.size()));
          DENGINE_TRYV(out.write(lengths));
          DENGINE_TRYV(out.write(k));
          DENGINE_TRYV(out.write(v));
        }
        std::string tail;
        bytes::put_le32(tail, out.crc());
        DENGINE_TRYV(out.write(tail));
        return out.flush();
      }));
  s.durable = s.applied;
  s.dirty_bytes = 0;
  s.dirty = false;
  return success();
}

inline LogIndex KvStore::durable_index() const {
  std::lock_guard lock(s_->mu);
  return s_->durable;
}

inline std::size_t KvStore::size() const {
  std::lock_guard lock(s_->mu);
  return s_->map.size();
}

}  // namespace dengine::rawfile
