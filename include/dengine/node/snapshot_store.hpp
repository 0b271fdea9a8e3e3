#pragma once
/// Where a Node keeps the latest snapshot image (meta + state machine bytes). The StorageEngine
/// keeps only the log and its compaction point; the image that replaces the compacted prefix
/// lives here. The Node saves an image before it compacts the storage or resets it for an
/// installed snapshot, so a crash never leaves a compaction point without an image at or past it.
///
/// The contract is the SnapshotStore concept (dengine::SnapshotStore, storage/concepts.hpp);
/// there is no base class: Node, LogWriter, recover() and engine::KvReplica take the store's
/// type as a template parameter (Node's defaults to default_snapshot_store_t, node.hpp), so a
/// save is a direct call. Two models: MemorySnapshotStore (tests and the simulator: "durable"
/// for as long as the object lives, like memory::Engine) and FileSnapshotStore (one CRC-checked
/// file in a data dir, replaced atomically by write-to-temporary, fsync, rename, fsync of the
/// directory). A user's own store is any type that satisfies the concept.
/// Called from the log writer (save) and from Node::open (load); never concurrently.

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/storage/byte_codec.hpp"
#include "dengine/storage/concepts.hpp"
#include "dengine/storage/crc32c.hpp"
#include "dengine/storage/member_addresses_codec.hpp"
#include "dengine/storage/sync_dir.hpp"

namespace dengine::node {

/// An in-memory SnapshotStore: survives the Node (keep it with the memory::Engine to restart a
/// node in a test), not the process. Thread-safe.
class MemorySnapshotStore {
 public:
  /// Replaces the kept image (invalid_argument for a null snapshot).
  result<void> save(const std::shared_ptr<const Snapshot>& snapshot) {
    if (!snapshot)
      return error(errc::invalid_argument, "memory snapshot store: save of no snapshot");
    std::lock_guard lock(mutex_);
    image_ = snapshot;
    ++saves_;
    return success();
  }
  /// The kept image, or nullptr when none was saved.
  result<std::shared_ptr<const Snapshot>> load() {
    std::lock_guard lock(mutex_);
    return image_;
  }
  /// A save never touches a disk: with an in-memory storage the threaded runtime runs the log
  /// writer's work on the event loop (LogWriter::never_blocks).
  [[nodiscard]] static constexpr bool in_memory() noexcept { return true; }
  /// Number of successful saves (tests).
  [[nodiscard]] std::uint64_t save_count() const {
    std::lock_guard lock(mutex_);
    return saves_;
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const Snapshot> image_;
  std::uint64_t saves_ = 0;
};

/// The latest image in one file, `<dir>/snapshot`:
///   "DENGSNAP" | u32 version=2 | u64 index | u64 term | u32 n | n × u64 voter |
///   u32 m | m × u64 learner | member addresses | u64 size | size bytes of data |
///   u32 CRC-32C of everything before
/// (integers little-endian; the addresses as storage/member_addresses_codec.hpp lays them out).
/// Version 1, written before members had addresses, is the same without the addresses; it is
/// still read.
///
/// A save writes `<dir>/snapshot.tmp` first. A failed save removes it (an image is about as
/// large as the state machine's data: leaving it would keep that much of a full disk taken);
/// one left by a crash is removed when the store is opened.
class FileSnapshotStore {
 public:
  static constexpr std::string_view magic = "DENGSNAP";
  static constexpr std::uint32_t version = 2;
  /// The format before member addresses; read, never written.
  static constexpr std::uint32_t version_1 = 1;
  /// The temporary file a save goes through.
  static constexpr std::string_view temp_file_name = "snapshot.tmp";

  /// A store in `dir`, created if missing (io_error naming it if that fails); removes a
  /// snapshot.tmp left by a save that a crash interrupted.
  static result<FileSnapshotStore> open(const std::filesystem::path& dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec)
      return error(errc::io_error,
                   "snapshot store: create directory " + dir.string() + ": " + ec.message());
    const std::filesystem::path tmp = dir / temp_file_name;
    if (::unlink(tmp.c_str()) != 0 && errno != ENOENT)
      return storage::os_error(errno, "snapshot store: remove " + tmp.string());
    return FileSnapshotStore(dir);
  }

  /// The image file's path.
  [[nodiscard]] std::filesystem::path path() const { return dir_ / "snapshot"; }

  /// Saves are fsynced file writes: the log writer keeps a thread of its own.
  [[nodiscard]] static constexpr bool in_memory() noexcept { return false; }

  /// Replaces the image file atomically and durably (see the class comment); invalid_argument
  /// for a null snapshot, the OS error naming the file otherwise.
  result<void> save(const std::shared_ptr<const Snapshot>& snapshot) {
    if (!snapshot) return error(errc::invalid_argument, "snapshot store: save of no snapshot");
    const std::filesystem::path tmp = dir_ / temp_file_name;
    auto written = write_temp(encode(*snapshot), tmp);
    if (!written) {
      ::unlink(tmp.c_str());  // never leave a partial image taking the disk's space
      return written;
    }
    // The rename is durable only once the directory entry is.
    DENGINE_TRYV(storage::sync_dir(dir_, "snapshot store"));
    saved_index_->store(snapshot->meta.index);
    return success();
  }

  /// The index of the image saved (durably) or loaded last by this object; 0 before either.
  /// Any thread.
  [[nodiscard]] LogIndex saved_index() const noexcept { return saved_index_->load(); }

  /// The index the image file's header names, without reading (or checking) the rest: for a
  /// quick look before load() verifies the whole file. 0 when there is no image;
  /// storage_corrupt naming the file when its header is not a snapshot header.
  [[nodiscard]] result<LogIndex> peek_index() const {
    const std::filesystem::path p = path();
    const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return LogIndex{0};
      return storage::os_error(errno, "snapshot store: open " + p.string());
    }
    char head[20];
    std::size_t got = 0;
    while (got < sizeof head) {
      const ssize_t n = ::read(fd, head + got, sizeof head - got);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    ::close(fd);
    const std::string_view in(head, got);
    bytes::LeReader r(in, magic.size());
    const auto v = r.u32();
    const auto index = r.u64();
    if (in.substr(0, magic.size()) != magic || !v || (*v != version && *v != version_1) || !index)
      return error(errc::storage_corrupt,
                   "snapshot file " + p.string() + ": not a dengine snapshot header");
    return *index;
  }

  /// The image the file holds, checked whole (CRC, sizes); nullptr when there is none;
  /// storage_corrupt naming the file and offset, incompatible_version for another format.
  result<std::shared_ptr<const Snapshot>> load() {
    const std::filesystem::path p = path();
    const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return std::shared_ptr<const Snapshot>{};
      return storage::os_error(errno, "snapshot store: open " + p.string());
    }
    std::string bytes;
    char buf[64 * 1024];
    for (;;) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const int err = errno;
        ::close(fd);
        return storage::os_error(err, "snapshot store: read " + p.string());
      }
      if (n == 0) break;
      bytes.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    DENGINE_TRY(snap, decode(bytes, p.string()));
    saved_index_->store(snap.meta.index);
    return std::shared_ptr<const Snapshot>(std::make_shared<Snapshot>(std::move(snap)));
  }

  /// The file format, without the I/O (exposed for tests).
  [[nodiscard]] static std::string encode(const Snapshot& s) {
    std::string out(magic);
    bytes::put_le32(out, version);
    bytes::put_le64(out, s.meta.index);
    bytes::put_le64(out, s.meta.term);
    for (const auto* ids : {&s.meta.membership.voters, &s.meta.membership.learners}) {
      bytes::put_le32(out, static_cast<std::uint32_t>(ids->size()));
      for (NodeId id : *ids) bytes::put_le64(out, id);
    }
    storage::put_member_addresses_le(out, s.meta.membership.addresses);
    bytes::put_le64(out, s.data.size());
    out += s.data;
    bytes::put_le32(out, crc32c::value(std::string_view(out)));
    return out;
  }

  /// Parses encode()'s output; `where` names the file in errors.
  [[nodiscard]] static result<Snapshot> decode(std::string_view in, const std::string& where) {
    auto corrupt = [&](std::size_t offset, const std::string& what) {
      return error(errc::storage_corrupt,
                   "snapshot file " + where + " at offset " + std::to_string(offset) + ": " + what);
    };
    if (in.size() < magic.size() || in.substr(0, magic.size()) != magic)
      return corrupt(0, "not a dengine snapshot file (bad magic)");
    bytes::LeReader header(in, magic.size());
    const auto v = header.u32();
    if (!v) return corrupt(header.position(), "truncated header");
    if (*v != version && *v != version_1)
      return error(errc::incompatible_version, "snapshot file " + where + ": format version " +
                                                   std::to_string(*v) + ", this build reads " +
                                                   std::to_string(version_1) + " and " +
                                                   std::to_string(version));
    if (header.remaining() < 4) return corrupt(header.position(), "truncated");
    // Check the CRC before trusting any length field.
    const std::string_view body = in.substr(0, in.size() - 4);
    if (bytes::get_le32(in.data() + body.size()) != crc32c::value(body))
      return corrupt(body.size(), "checksum mismatch");
    bytes::LeReader r(body, header.position());
    Snapshot s;
    auto read_ids = [&](std::vector<NodeId>& ids) -> bool {
      const auto n = r.u32();
      if (!n || *n > r.remaining() / 8) return false;
      ids.resize(*n);
      for (auto& id : ids) id = *r.u64();
      return true;
    };
    const auto index = r.u64();
    const auto term = r.u64();
    if (!index || !term) return corrupt(r.position(), "truncated meta");
    s.meta.index = *index;
    s.meta.term = *term;
    if (!read_ids(s.meta.membership.voters)) return corrupt(r.position(), "bad voter list");
    if (!read_ids(s.meta.membership.learners)) return corrupt(r.position(), "bad learner list");
    if (*v == version) {
      auto addresses = storage::read_member_addresses_le(r);
      if (!addresses) return corrupt(r.position(), "bad member addresses");
      s.meta.membership.addresses = std::move(*addresses);
      if (!s.meta.membership.addresses_well_formed())
        return corrupt(r.position(), "an address for a non-member");
    }
    const auto size = r.u64();
    if (!size || *size != r.remaining())
      return corrupt(r.position(), "data size does not match the file size");
    s.data.assign(body.substr(r.position()));
    return s;
  }

 private:
  explicit FileSnapshotStore(std::filesystem::path dir) : dir_(std::move(dir)) {}

  // Writes `bytes` to `tmp`, fsyncs it and renames it over the image.
  result<void> write_temp(const std::string& bytes, const std::filesystem::path& tmp) const {
    const int fd = ::open(tmp.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) return storage::os_error(errno, "snapshot store: create " + tmp.string());
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const int err = errno;
        ::close(fd);
        return storage::os_error(err, "snapshot store: write " + tmp.string());
      }
      done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0) {
      const int err = errno;
      ::close(fd);
      return storage::os_error(err, "snapshot store: fsync " + tmp.string());
    }
    if (::close(fd) != 0) return storage::os_error(errno, "snapshot store: close " + tmp.string());
    if (::rename(tmp.c_str(), path().c_str()) != 0)
      return storage::os_error(errno,
                               "snapshot store: rename " + tmp.string() + " to " + path().string());
    return success();
  }

  std::filesystem::path dir_;
  // Behind a pointer so that the store stays movable.
  std::unique_ptr<std::atomic<LogIndex>> saved_index_ = std::make_unique<std::atomic<LogIndex>>(0);
};

static_assert(dengine::SnapshotStore<MemorySnapshotStore>);
static_assert(dengine::SnapshotStore<FileSnapshotStore>);

}  // namespace dengine::node
