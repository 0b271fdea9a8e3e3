#pragma once
/// example::FileLog — a StorageEngine written from scratch, as a newcomer would: the Raft log in
/// one append-only file, the hard state in another. It satisfies dengine::StorageEngine (no base
/// class, no registration) and passes the shared conformance suite (conformance_test.cpp).
///
/// Files in the data dir:
///
///     log        records, appended; the first one is always a `base` record
///     hardstate  one `hard_state` record, replaced atomically (temp file, fsync, rename, fsync
///     dir)
///
/// A record is `u32 length | u32 crc32c(payload) | payload`, integers little-endian; the payload
/// starts with a kind byte:
///
///     base       kind 1 | u64 index | u64 term | u32 n | n x u64 voter | u32 m | m x u64 learner
///                | u32 a | a x (u64 member | u32 length | address)
///                (the compaction point, with the membership and its members' addresses: the
///                log's entries start after `index`)
///     entry      kind 2 | u64 index | u64 term | u8 type | data
///     truncate   kind 3 | u64 index (entries at and after `index` are gone: a conflicting suffix
///                is about to be replaced; the file itself is never overwritten)
///     hard_state kind 4 | u64 term | u64 vote | u64 commit
///
/// Durability, per the concept's contract: append() writes to the page cache, sync() is one
/// fdatasync of `log`. compact() and reset() rewrite the whole log into `log.tmp` (base record +
/// the entries kept), fsync it and rename it over `log`, then fsync the directory: durable and
/// atomic on return. save_hard_state() does the same for `hardstate`.
///
/// Recovery on open: records are read in order. At the first record that fails its checksum (or is
/// cut short), the rest of the file is searched for any valid record: if one exists the damage is
/// in the middle of the log, and open fails with `storage_corrupt` naming the file and offset
/// (dropping it would lose synced entries); if none does, it is a torn tail — a write that a crash
/// interrupted before its sync — and the file is cut there.
///
/// Kept simple on purpose: the whole log is also held in memory (fine for a log that the node
/// compacts after each snapshot), compaction rewrites the file, and one thread at a time may use
/// an engine (the Node's log writer is its only user once the node runs). See
/// backends/rawfile for the same ideas made fast (segments, preallocation, an index).

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <dengine/core/error.hpp>
#include <dengine/core/types.hpp>
#include <dengine/storage/concepts.hpp>

namespace example {

using dengine::Entry;
using dengine::errc;
using dengine::error;
using dengine::HardState;
using dengine::LogIndex;
using dengine::result;
using dengine::SnapshotMeta;
using dengine::success;
using dengine::Term;

namespace file_log_detail {

/// CRC32C (Castagnoli), one table lookup per byte: simple rather than fast.
inline std::uint32_t crc32c(std::string_view bytes) {
  static const auto table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t b = 0; b < 256; ++b) {
      std::uint32_t c = b;
      for (int bit = 0; bit < 8; ++bit) c = (c & 1U) != 0 ? (c >> 1) ^ 0x82F63B78U : c >> 1;
      t[b] = c;
    }
    return t;
  }();
  std::uint32_t crc = ~0U;
  for (unsigned char ch : bytes) crc = (crc >> 8) ^ table[(crc ^ ch) & 0xFFU];
  return ~crc;
}

enum class Kind : std::uint8_t { base = 1, entry = 2, truncate = 3, hard_state = 4 };
inline constexpr std::size_t frame_bytes = 8;           ///< length + checksum
inline constexpr std::uint32_t max_payload = 1U << 30;  ///< bounds what a bad length can claim

inline void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFFU));
}
inline void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFFU));
}

/// Reads little-endian integers from a payload, remembering whether it ran out.
struct Reader {
  std::string_view in;
  bool ok = true;
  std::uint64_t get(int bytes) {
    if (in.size() < static_cast<std::size_t>(bytes)) {
      ok = false;
      return 0;
    }
    std::uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(in[i]);
    in.remove_prefix(static_cast<std::size_t>(bytes));
    return v;
  }
};

/// Appends one framed record holding `payload` to `out`.
inline void append_record(std::string& out, std::string_view payload) {
  put_u32(out, static_cast<std::uint32_t>(payload.size()));
  put_u32(out, crc32c(payload));
  out.append(payload);
}

/// The payload of the record at `offset` of `file`, or nullopt if no valid record starts there.
inline std::optional<std::string_view> record_at(std::string_view file, std::size_t offset) {
  if (file.size() - offset < frame_bytes) return std::nullopt;
  Reader r{file.substr(offset, frame_bytes)};
  const auto length = r.get(4);
  const auto crc = static_cast<std::uint32_t>(r.get(4));
  if (length == 0 || length > max_payload || length > file.size() - offset - frame_bytes)
    return std::nullopt;
  const auto payload = file.substr(offset + frame_bytes, length);
  if (crc32c(payload) != crc) return std::nullopt;
  return payload;
}

inline std::string encode_base(const SnapshotMeta& meta) {
  std::string p(1, static_cast<char>(Kind::base));
  put_u64(p, meta.index);
  put_u64(p, meta.term);
  for (const auto* ids : {&meta.membership.voters, &meta.membership.learners}) {
    put_u32(p, static_cast<std::uint32_t>(ids->size()));
    for (auto id : *ids) put_u64(p, id);
  }
  put_u32(p, static_cast<std::uint32_t>(meta.membership.addresses.size()));
  for (const auto& [id, address] : meta.membership.addresses) {
    put_u64(p, id);
    put_u32(p, static_cast<std::uint32_t>(address.size()));
    p.append(address);
  }
  return p;
}

inline std::string encode_entry(const Entry& e) {
  std::string p(1, static_cast<char>(Kind::entry));
  put_u64(p, e.index);
  put_u64(p, e.term);
  p.push_back(static_cast<char>(e.type));
  p.append(e.data);
  return p;
}

inline std::string encode_truncate(LogIndex index) {
  std::string p(1, static_cast<char>(Kind::truncate));
  put_u64(p, index);
  return p;
}

inline std::string encode_hard_state(const HardState& hs) {
  std::string p(1, static_cast<char>(Kind::hard_state));
  put_u64(p, hs.term);
  put_u64(p, hs.vote);
  put_u64(p, hs.commit);
  return p;
}

/// An error for a failed system call, naming the call and the file.
inline error sys_error(std::string_view call, const std::filesystem::path& file, int err) {
  const errc code = err == ENOSPC || err == EDQUOT ? errc::no_space : errc::io_error;
  return error(code, std::string(call) + " " + file.string() + ": " + std::strerror(err));
}

/// An owned file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Fd& operator=(Fd&& other) noexcept {
    if (this != &other) {
      if (fd_ >= 0) ::close(fd_);
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  [[nodiscard]] int get() const noexcept { return fd_; }

 private:
  int fd_ = -1;
};

inline result<Fd> open_file(const std::filesystem::path& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
  if (fd < 0) return sys_error("open", path, errno);
  return Fd(fd);
}

inline result<void> write_all(int fd, std::string_view bytes, const std::filesystem::path& path) {
  while (!bytes.empty()) {
    const auto n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_error("write", path, errno);
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return success();
}

inline result<void> fsync_path(const std::filesystem::path& path, int flags) {
  auto fd = open_file(path, flags);
  if (!fd) return fd.error();
  if (::fsync(fd.value().get()) != 0) return sys_error("fsync", path, errno);
  return success();
}

/// Replaces `dir/name` with `bytes`: after a crash the file holds the old bytes or the new ones.
inline result<void> replace_file(const std::filesystem::path& dir, const std::string& name,
                                 std::string_view bytes) {
  const auto tmp = dir / (name + ".tmp");
  auto written = [&]() -> result<void> {
    DENGINE_TRY(fd, open_file(tmp, O_WRONLY | O_CREAT | O_TRUNC));
    DENGINE_TRYV(write_all(fd.get(), bytes, tmp));
    if (::fsync(fd.get()) != 0) return sys_error("fsync", tmp, errno);
    if (::rename(tmp.c_str(), (dir / name).c_str()) != 0) return sys_error("rename", tmp, errno);
    return success();
  }();
  if (!written) {
    ::unlink(tmp.c_str());  // do not leave a partial file holding space on a full disk
    return written;
  }
  return fsync_path(dir, O_RDONLY | O_DIRECTORY);  // the rename itself must survive a crash
}

/// The whole file, or nullopt if it does not exist.
inline result<std::optional<std::string>> read_file(const std::filesystem::path& path) {
  const int raw = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (raw < 0 && errno == ENOENT) return std::optional<std::string>{};
  if (raw < 0) return sys_error("open", path, errno);
  Fd fd(raw);
  std::string out;
  char buffer[64 * 1024];
  for (;;) {
    const auto n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return sys_error("read", path, errno);
    if (n == 0) return std::optional<std::string>{std::move(out)};
    out.append(buffer, static_cast<std::size_t>(n));
  }
}

}  // namespace file_log_detail

/// The Raft log and hard state in two files of one directory (see the file comment).
class FileLog {
 public:
  /// Opens the log in `dir` (created if missing), recovering it as the file comment describes.
  static result<FileLog> open(const std::filesystem::path& dir) {
    namespace d = file_log_detail;
    std::error_code ec;
    const bool created = std::filesystem::create_directories(dir, ec);
    if (ec) return error(errc::io_error, "create " + dir.string() + ": " + ec.message());
    if (created) {  // the new directory's own entry must survive a crash too
      auto path = std::filesystem::absolute(dir, ec);
      if (!path.has_filename()) path = path.parent_path();  // "a/b/" names "a/b"
      DENGINE_TRYV(d::fsync_path(path.parent_path(), O_RDONLY | O_DIRECTORY));
    }
    FileLog log(dir);
    // A leftover temporary file is an interrupted replace: the old file is still in place.
    for (const char* name : {"log.tmp", "hardstate.tmp"}) std::filesystem::remove(dir / name, ec);

    DENGINE_TRY(hs_bytes, d::read_file(dir / "hardstate"));
    if (hs_bytes) {
      auto payload = d::record_at(*hs_bytes, 0);
      d::Reader r{payload.value_or("")};
      const bool kind_ok = payload && r.get(1) == static_cast<std::uint8_t>(d::Kind::hard_state);
      log.hard_state_ = HardState{r.get(8), r.get(8), r.get(8)};
      if (!kind_ok || !r.ok)
        return error(errc::storage_corrupt, (dir / "hardstate").string() + ": bad record");
    }

    DENGINE_TRY(bytes, d::read_file(log.log_path()));
    if (!bytes) {
      // A new log: its base record goes in atomically, so `log` never exists half-written.
      std::string fresh;
      d::append_record(fresh, d::encode_base({}));
      DENGINE_TRYV(d::replace_file(dir, "log", fresh));
      bytes = std::move(fresh);
    }
    DENGINE_TRYV(log.replay(*bytes));
    DENGINE_TRY(fd, d::open_file(log.log_path(), O_WRONLY | O_APPEND));
    log.fd_ = std::move(fd);
    return log;
  }

  FileLog(FileLog&&) noexcept = default;
  FileLog& operator=(FileLog&&) noexcept = default;
  FileLog(const FileLog&) = delete;
  FileLog& operator=(const FileLog&) = delete;
  ~FileLog() = default;

  /// Appends a contiguous batch starting in [first_index(), last_index() + 1]; not yet durable.
  result<void> append(std::span<const Entry> batch) {
    namespace d = file_log_detail;
    DENGINE_TRYV(usable());
    if (batch.empty()) return error(errc::invalid_argument, "file log append: empty batch");
    const LogIndex from = batch.front().index;
    if (from < first_index() || from > last_index() + 1)
      return error(errc::invalid_argument, "file log append: batch starts at " +
                                               std::to_string(from) + ", outside [" +
                                               std::to_string(first_index()) + ", " +
                                               std::to_string(last_index() + 1) + "]");
    for (std::size_t k = 0; k < batch.size(); ++k)
      if (batch[k].index != from + k)
        return error(errc::invalid_argument, "file log append: batch not contiguous at entry " +
                                                 std::to_string(batch[k].index));

    std::string bytes;  // one write() for the whole batch
    if (from <= last_index()) d::append_record(bytes, d::encode_truncate(from));
    for (const Entry& e : batch) d::append_record(bytes, d::encode_entry(e));
    if (auto written = d::write_all(fd_.get(), bytes, log_path()); !written) {
      // Part of the batch may be in the file now; records appended after it would look like
      // corruption at the next open. Stop here: reopening repairs it as a torn tail.
      broken_ = written.error();
      return written;
    }
    entries_.resize(from - first_index());
    entries_.insert(entries_.end(), batch.begin(), batch.end());
    return success();
  }

  /// Makes every appended entry and truncation durable: one fdatasync of the log file.
  result<void> sync() {
    DENGINE_TRYV(usable());
    if (::fdatasync(fd_.get()) != 0) {
      // After a failed fdatasync the kernel may have dropped the dirty pages: a retry that
      // succeeded would prove nothing. Refuse from now on.
      broken_ = file_log_detail::sys_error("fdatasync", log_path(), errno);
      return *broken_;
    }
    return success();
  }

  /// Entries in [lo, hi): at least one when lo < hi, then up to max_bytes of entry_size().
  [[nodiscard]] result<std::vector<Entry>> entries(LogIndex lo, LogIndex hi,
                                                   std::size_t max_bytes) const {
    if (lo > hi)
      return error(errc::invalid_argument,
                   "file log entries: lo " + std::to_string(lo) + " > hi " + std::to_string(hi));
    if (lo < first_index())
      return error(errc::compacted, "file log entries: " + std::to_string(lo) +
                                        " is compacted (first index " +
                                        std::to_string(first_index()) + ")");
    if (hi > last_index() + 1)
      return error(errc::unavailable, "file log entries: hi " + std::to_string(hi) +
                                          " is past the last index " +
                                          std::to_string(last_index()) + " + 1");
    std::vector<Entry> out;
    std::size_t total = 0;
    for (LogIndex i = lo; i < hi; ++i) {
      const Entry& e = entries_[i - first_index()];
      if (!out.empty() && total + dengine::entry_size(e) > max_bytes) break;
      total += dengine::entry_size(e);
      out.push_back(e);
    }
    return out;
  }

  /// The term at i, for i in [snapshot index, last_index()].
  [[nodiscard]] result<Term> term(LogIndex i) const {
    if (i < snapshot_.index)
      return error(errc::compacted, "file log term: " + std::to_string(i) +
                                        " is below the compaction point " +
                                        std::to_string(snapshot_.index));
    if (i > last_index())
      return error(errc::unavailable, "file log term: " + std::to_string(i) +
                                          " is past the last index " +
                                          std::to_string(last_index()));
    if (i == snapshot_.index) return snapshot_.term;
    return entries_[i - first_index()].term;
  }

  /// The first index in the log (snapshot index + 1).
  [[nodiscard]] LogIndex first_index() const noexcept { return snapshot_.index + 1; }
  /// The last index in the log (the snapshot index when it is empty).
  [[nodiscard]] LogIndex last_index() const noexcept { return snapshot_.index + entries_.size(); }

  /// Drops the entries up to meta.index and records meta; durable and atomic on return.
  result<void> compact(const SnapshotMeta& meta) {
    DENGINE_TRYV(usable());
    if (meta.index < snapshot_.index)
      return error(errc::compacted, "file log compact: " + std::to_string(meta.index) +
                                        " is below the compaction point " +
                                        std::to_string(snapshot_.index));
    if (meta.index > last_index())
      return error(errc::unavailable, "file log compact: " + std::to_string(meta.index) +
                                          " is past the last index " +
                                          std::to_string(last_index()));
    DENGINE_TRY(at, term(meta.index));
    if (at != meta.term)
      return error(errc::invalid_argument, "file log compact: term " + std::to_string(meta.term) +
                                               " given for index " + std::to_string(meta.index) +
                                               ", whose term is " + std::to_string(at));
    std::deque<Entry> kept(
        entries_.begin() + static_cast<std::ptrdiff_t>(meta.index - snapshot_.index),
        entries_.end());
    return rewrite(meta, std::move(kept));
  }

  /// Discards the whole log and restarts it after meta (an installed snapshot); durable on return.
  result<void> reset(const SnapshotMeta& meta) {
    DENGINE_TRYV(usable());
    return rewrite(meta, {});
  }

  /// Replaces the hard state atomically; durable on return.
  result<void> save_hard_state(const HardState& hs) {
    namespace d = file_log_detail;
    std::string bytes;
    d::append_record(bytes, d::encode_hard_state(hs));
    DENGINE_TRYV(d::replace_file(dir_, "hardstate", bytes));
    hard_state_ = hs;
    return success();
  }

  /// The hard state and the compaction point.
  [[nodiscard]] result<dengine::RecoveredState> load() const {
    return dengine::RecoveredState{hard_state_, snapshot_};
  }

 private:
  explicit FileLog(std::filesystem::path dir) : dir_(std::move(dir)) {}

  [[nodiscard]] std::filesystem::path log_path() const { return dir_ / "log"; }

  [[nodiscard]] result<void> usable() const {
    if (broken_)
      return error(broken_->code, "file log stopped after an earlier failure (" + broken_->detail +
                                      "); reopen it");
    return success();
  }

  /// Writes `log.tmp` = base(meta) + kept, renames it over `log`, and only then changes the
  /// in-memory state. After a crash the file is the old log or the new one.
  result<void> rewrite(const SnapshotMeta& meta, std::deque<Entry> kept) {
    namespace d = file_log_detail;
    std::string bytes;
    d::append_record(bytes, d::encode_base(meta));
    for (const Entry& e : kept) d::append_record(bytes, d::encode_entry(e));
    auto fd = [&]() -> result<d::Fd> {
      DENGINE_TRYV(d::replace_file(dir_, "log", bytes));
      return d::open_file(log_path(), O_WRONLY | O_APPEND);
    }();
    if (!fd) {
      // Whether the rename happened is unknown here, so neither the file nor fd_ can be trusted.
      broken_ = fd.error();
      return fd.error();
    }
    fd_ = std::move(fd).value();
    snapshot_ = meta;
    entries_ = std::move(kept);
    return success();
  }

  /// Rebuilds the in-memory log from the file's bytes (recovery rules in the file comment).
  result<void> replay(std::string_view file) {
    namespace d = file_log_detail;
    const auto corrupt = [&](std::size_t offset, const std::string& why) {
      return error(errc::storage_corrupt,
                   log_path().string() + " at offset " + std::to_string(offset) + ": " + why);
    };
    std::size_t offset = 0;
    while (offset < file.size()) {
      const auto payload = d::record_at(file, offset);
      if (!payload) {
        for (std::size_t later = offset + 1; later + d::frame_bytes <= file.size(); ++later)
          if (d::record_at(file, later))
            return corrupt(offset, "damaged record followed by valid ones");
        if (offset == 0) return corrupt(0, "no valid base record");
        // A torn tail: cut it off so that new records follow the last valid one.
        DENGINE_TRY(fd, d::open_file(log_path(), O_WRONLY));
        if (::ftruncate(fd.get(), static_cast<off_t>(offset)) != 0 || ::fsync(fd.get()) != 0)
          return d::sys_error("truncate", log_path(), errno);
        break;
      }
      d::Reader r{*payload};
      const auto kind = static_cast<d::Kind>(r.get(1));
      if (offset == 0 && kind != d::Kind::base) return corrupt(0, "the log must start with base");
      if (kind == d::Kind::base) {
        if (offset != 0) return corrupt(offset, "a base record after the start");
        snapshot_.index = r.get(8);
        snapshot_.term = r.get(8);
        for (auto* ids : {&snapshot_.membership.voters, &snapshot_.membership.learners}) {
          const auto n = r.get(4);
          for (std::uint64_t k = 0; k < n && r.ok; ++k) ids->push_back(r.get(8));
        }
        const auto addresses = r.get(4);
        for (std::uint64_t k = 0; k < addresses && r.ok; ++k) {
          const auto id = r.get(8);
          const auto length = r.get(4);
          if (r.in.size() < length) r.ok = false;
          if (!r.ok) break;
          snapshot_.membership.addresses[id] = std::string(r.in.substr(0, length));
          r.in.remove_prefix(length);
        }
        if (!snapshot_.membership.addresses_well_formed())
          return corrupt(offset, "an address for a non-member");
      } else if (kind == d::Kind::entry) {
        Entry e;
        e.index = r.get(8);
        e.term = r.get(8);
        e.type = static_cast<dengine::EntryType>(r.get(1));
        e.data = std::string(r.in);
        if (e.index != last_index() + 1) return corrupt(offset, "entry out of sequence");
        entries_.push_back(std::move(e));
      } else if (kind == d::Kind::truncate) {
        const LogIndex index = r.get(8);
        if (index < first_index() || index > last_index() + 1)
          return corrupt(offset, "truncation outside the log");
        entries_.resize(index - first_index());
      } else {
        return corrupt(offset, "unknown record kind " + std::to_string(static_cast<int>(kind)));
      }
      if (!r.ok) return corrupt(offset, "record too short for its kind");
      offset += d::frame_bytes + payload->size();
    }
    return success();
  }

  std::filesystem::path dir_;
  file_log_detail::Fd fd_;       ///< `log`, opened O_APPEND
  SnapshotMeta snapshot_;        ///< the compaction point (the base record)
  std::deque<Entry> entries_;    ///< entries_[k] has index snapshot_.index + 1 + k
  HardState hard_state_;         ///< as last saved
  std::optional<error> broken_;  ///< set by a failed write or fdatasync: no more changes
};

static_assert(dengine::StorageEngine<FileLog>);

}  // namespace example
