#pragma once
/// POSIX file descriptors for the stores and tools that read and write files themselves (the
/// raw-file and LMDB backends, the data dir marker, dengine-check): an owner that closes the
/// descriptor, and a read(2) that retries when a signal interrupts it.

#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <string>
#include <utility>

namespace dengine::storage {

/// An owned file descriptor, closed when the owner goes away or is reset. Movable (the source is
/// left empty), not copyable.
class UniqueFd {
 public:
  UniqueFd() = default;
  /// Takes ownership of `fd` (-1: none).
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    reset(other.release());  // safe on self-move: release() empties before reset() closes
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  /// The raw descriptor (-1 when empty).
  [[nodiscard]] int get() const noexcept { return fd_; }
  /// True when a descriptor is held.
  explicit operator bool() const noexcept { return fd_ >= 0; }
  /// Closes the descriptor held, if any, and holds `fd` instead.
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }
  /// Gives the descriptor up without closing it; the owner is left empty.
  [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }

 private:
  int fd_ = -1;
};

/// One read(2) of up to 4 KiB from `fd`, appended to `out`, retried while a signal interrupts
/// it. Returns the bytes read: 0 at end of file, -1 on an error (errno says which).
inline ssize_t read_append(int fd, std::string& out) {
  char buf[4096];
  ssize_t n = 0;
  do {
    n = ::read(fd, buf, sizeof buf);
  } while (n < 0 && errno == EINTR);
  if (n > 0) out.append(buf, static_cast<std::size_t>(n));
  return n;
}

}  // namespace dengine::storage
