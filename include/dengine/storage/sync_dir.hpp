#pragma once
/// Making a directory's entries durable: after a file is created, renamed or removed in `dir`,
/// the change survives power loss only once `dir` itself is fsynced. Used by every store that
/// creates or replaces files (the LMDB and SQLite backends, the snapshot store).

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>

#include "dengine/core/error.hpp"

namespace dengine::storage {

/// The error for a failed system call: no_space for a full disk or quota (ENOSPC, EDQUOT,
/// EFBIG), io_error otherwise; the detail is `what` and the system's message.
inline error os_error(int err, const std::string& what) {
  const errc code =
      (err == ENOSPC || err == EDQUOT || err == EFBIG) ? errc::no_space : errc::io_error;
  return error(code, what + ": " + std::strerror(err));
}

/// fsyncs directory `dir`; errors name `who` (the store) and the directory.
inline result<void> sync_dir(const std::filesystem::path& dir, std::string_view who) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return os_error(errno, std::string(who) + ": cannot open dir " + dir.string());
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return os_error(err, std::string(who) + ": fsync of dir " + dir.string());
  return success();
}

}  // namespace dengine::storage
