#pragma once
/// POSIX file operations for the raw-file backend, each returning a `result` whose error names the
/// system call and the file: ENOSPC/EDQUOT/EFBIG → `no_space`, anything else → `io_error`.
///
/// EFBIG (the file-size limit, RLIMIT_FSIZE or the file system's maximum) counts as `no_space`:
/// for the caller it means the same thing — this file cannot grow — and it is how tests simulate a
/// full disk where mounting a small file system is not possible.

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/core.h>

#include "dengine/core/error.hpp"
#include "dengine/storage/file_descriptor.hpp"

namespace dengine::rawfile::io {

/// The error for a failed system call `call` on `file` with errno `err`.
inline error sys_error(std::string_view call, const std::filesystem::path& file, int err) {
  std::string what =
      fmt::format("{} {}: {} (errno {})", call, file.string(), std::strerror(err), err);
  if (err == ENOSPC || err == EDQUOT || err == EFBIG) return error(errc::no_space, std::move(what));
  return error(errc::io_error, std::move(what));
}

/// An owned file descriptor, closed in the destructor. Movable, not copyable.
using Fd = storage::UniqueFd;

/// open(2) with O_CLOEXEC; `what` names the file in errors.
inline result<Fd> open_file(const std::filesystem::path& file, int flags, mode_t mode = 0644) {
  int fd;
  do {
    fd = ::open(file.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return sys_error("open", file, errno);
  return Fd(fd);
}

/// Writes all of `data` at `offset`, retrying short writes and EINTR.
inline result<void> pwrite_all(int fd, std::string_view data, std::uint64_t offset,
                               const std::filesystem::path& file) {
  while (!data.empty()) {
    ssize_t n = ::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return sys_error("pwrite", file, errno);
    }
    data.remove_prefix(static_cast<std::size_t>(n));
    offset += static_cast<std::uint64_t>(n);
  }
  return success();
}

/// Reads exactly `n` bytes at `offset` into `out`; a short file is `storage_corrupt`.
inline result<void> pread_exact(int fd, char* out, std::size_t n, std::uint64_t offset,
                                const std::filesystem::path& file) {
  std::size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, out + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return sys_error("pread", file, errno);
    }
    if (r == 0)
      return error(
          errc::storage_corrupt,
          fmt::format("{}: file ends at offset {} inside a record expected up to offset {}",
                      file.string(), offset + done, offset + n));
    done += static_cast<std::size_t>(r);
  }
  return success();
}

/// Calls `sync_call` (fsync or fdatasync) on `fd` until no signal interrupts it; errors name
/// the call `name` and `file`.
inline result<void> sync_retrying(int (*sync_call)(int), std::string_view name, int fd,
                                  const std::filesystem::path& file) {
  int rc;
  do {
    rc = sync_call(fd);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) return sys_error(name, file, errno);
  return success();
}

/// fdatasync(2): the file's data and the metadata needed to read it back.
inline result<void> datasync(int fd, const std::filesystem::path& file) {
  return sync_retrying(::fdatasync, "fdatasync", fd, file);
}

/// fsync(2): data and all metadata (used for new files and directories).
inline result<void> full_sync(int fd, const std::filesystem::path& file) {
  return sync_retrying(::fsync, "fsync", fd, file);
}

/// Reserves [0, bytes) of the file so later writes need no allocation (and a full disk shows up
/// here rather than mid-append). Falls back to ftruncate where the file system has no fallocate.
inline result<void> preallocate(int fd, std::uint64_t bytes, const std::filesystem::path& file) {
  int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(bytes));
  if (rc == 0) return success();
  if (rc != EOPNOTSUPP && rc != EINVAL) return sys_error("posix_fallocate", file, rc);
  if (::ftruncate(fd, static_cast<off_t>(bytes)) < 0) return sys_error("ftruncate", file, errno);
  return success();
}

/// Sets the file's size to `bytes` (dropping or zero-extending its end).
inline result<void> truncate_to(int fd, std::uint64_t bytes, const std::filesystem::path& file) {
  if (::ftruncate(fd, static_cast<off_t>(bytes)) < 0) return sys_error("ftruncate", file, errno);
  return success();
}

/// The file's size in bytes.
inline result<std::uint64_t> file_size(int fd, const std::filesystem::path& file) {
  struct stat st {};
  if (::fstat(fd, &st) < 0) return sys_error("fstat", file, errno);
  return static_cast<std::uint64_t>(st.st_size);
}

/// The whole file, or nullopt when it does not exist.
inline result<std::optional<std::string>> read_whole_file(const std::filesystem::path& file) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::optional<std::string>{};
    return sys_error("open", file, errno);
  }
  Fd owned(fd);
  DENGINE_TRY(size, file_size(fd, file));
  std::string data(size, '\0');
  DENGINE_TRYV(pread_exact(fd, data.data(), data.size(), 0, file));
  return std::optional<std::string>(std::move(data));
}

/// Removes `file` (a missing file is not an error).
inline result<void> remove_file(const std::filesystem::path& file) {
  if (::unlink(file.c_str()) < 0 && errno != ENOENT) return sys_error("unlink", file, errno);
  return success();
}

/// A data directory held open for fsync and locked against a second concurrent user.
struct Directory {
  std::filesystem::path path;
  Fd fd;    ///< the directory itself, for fsync after creating, renaming or removing files
  Fd lock;  ///< the lock file, flock(LOCK_EX) held for the object's lifetime

  /// Makes the directory's entries (new, renamed, removed files) durable.
  [[nodiscard]] result<void> sync() const { return full_sync(fd.get(), path); }
};

/// Creates `dir` if missing (with parents), opens it and takes an exclusive lock on
/// `dir/lock_name`. A path that exists but is no directory is `invalid_argument`; a second open of
/// the same directory (in this or another process) is `io_error` naming the lock file.
inline result<Directory> open_directory(const std::filesystem::path& dir,
                                        std::string_view lock_name) {
  std::error_code ec;
  auto status = std::filesystem::status(dir, ec);
  if (!ec && std::filesystem::exists(status) && !std::filesystem::is_directory(status))
    return error(errc::invalid_argument,
                 fmt::format("data directory {} exists but is not a directory", dir.string()));
  if (ec && ec != std::errc::no_such_file_or_directory) return sys_error("stat", dir, ec.value());
  std::filesystem::create_directories(dir, ec);
  if (ec) return sys_error("mkdir", dir, ec.value());
  Directory d;
  d.path = dir;
  DENGINE_TRY(dfd, open_file(dir, O_RDONLY | O_DIRECTORY));
  d.fd = std::move(dfd);
  auto lock_path = dir / std::string(lock_name);
  DENGINE_TRY(lfd, open_file(lock_path, O_RDWR | O_CREAT));
  if (::flock(lfd.get(), LOCK_EX | LOCK_NB) < 0) {
    if (errno == EWOULDBLOCK)
      return error(errc::io_error, fmt::format("data directory {} is in use (lock file {} is held)",
                                               dir.string(), lock_path.string()));
    return sys_error("flock", lock_path, errno);
  }
  d.lock = std::move(lfd);
  return d;
}

/// Replaces `dir/name` atomically with what `write(fd, tmp_path)` writes into a fresh temp file:
/// write `name.tmp`, fsync, rename over `name`, fsync the directory. A crash leaves either the old
/// or the new file, never a mix (a stray `.tmp` may remain; its owner removes it on open).
template <class Writer>
result<void> replace_file_atomically(const Directory& dir, std::string_view name, Writer&& write) {
  auto final_path = dir.path / std::string(name);
  auto tmp_path = dir.path / (std::string(name) + ".tmp");
  auto write_tmp = [&]() -> result<void> {
    DENGINE_TRY(fd, open_file(tmp_path, O_WRONLY | O_CREAT | O_TRUNC));
    DENGINE_TRYV(write(fd.get(), tmp_path));
    return full_sync(fd.get(), tmp_path);
  };
  if (auto written = write_tmp(); !written) {
    ::unlink(tmp_path.c_str());  // do not leave a partial file holding space on a full disk
    return written;
  }
  if (::rename(tmp_path.c_str(), final_path.c_str()) < 0) {
    int err = errno;
    ::unlink(tmp_path.c_str());
    return sys_error("rename", final_path, err);
  }
  return dir.sync();
}

/// Replaces `dir/name` with `data` atomically (see replace_file_atomically).
inline result<void> write_file_atomically(const Directory& dir, std::string_view name,
                                          std::string_view data) {
  return replace_file_atomically(dir, name, [&](int fd, const std::filesystem::path& tmp) {
    return pwrite_all(fd, data, 0, tmp);
  });
}

}  // namespace dengine::rawfile::io
