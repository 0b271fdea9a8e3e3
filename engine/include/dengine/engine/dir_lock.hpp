#pragma once
/// DirLock: an exclusive lock on a data dir, held for an engine's life.

#include <sys/file.h>
#include <unistd.h>

#include <fcntl.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <utility>

#include "dengine/core/error.hpp"

namespace dengine::engine::detail {

/// An exclusive lock on `<dir>/LOCK`, held for the engine's life, so that two engines (in one
/// process or two) never open the same data dir. flock locks go away with the process.
class DirLock {
 public:
  DirLock() = default;
  static result<DirLock> acquire(const std::filesystem::path& dir) {
    const auto path = dir / "LOCK";
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
      return error(errc::io_error,
                   "engine start: cannot open " + path.string() + ": " + std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      ::close(fd);
      if (err == EWOULDBLOCK)
        return error(errc::invalid_argument, "engine start: data dir " + dir.string() +
                                                 " is in use by another engine (" + path.string() +
                                                 " is locked)");
      return error(errc::io_error,
                   "engine start: cannot lock " + path.string() + ": " + std::strerror(err));
    }
    DirLock lock;
    lock.fd_ = fd;
    return lock;
  }
  DirLock(DirLock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  DirLock& operator=(DirLock&& o) noexcept {
    if (this != &o) {
      release();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;
  ~DirLock() { release(); }

 private:
  void release() noexcept {
    if (fd_ >= 0) ::close(fd_);  // closing drops the flock
    fd_ = -1;
  }
  int fd_ = -1;
};

}  // namespace dengine::engine::detail
