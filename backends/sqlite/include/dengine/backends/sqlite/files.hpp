#pragma once
/// The SQLite backend's database file as a file, before SQLite touches it: where it lives, its
/// companions, the checks on its raw 100-byte header, and the temporary name it is created
/// under. Nothing here writes to an existing database file.
///
/// SQLite treats an empty file as a new empty database and would happily initialize it; a file
/// cut short is only noticed when a missing page is read. Because dengine creates its file whole
/// (schema.hpp: built under a temporary name, synced, then linked into place), a database file
/// that exists is never half-made by dengine, so these checks refuse, with storage_corrupt
/// naming the file, anything that is not a complete dengine database: empty, shorter than its
/// header says (when no WAL holds newer pages), not a whole number of pages, not SQLite, not
/// dengine's (application_id), not in WAL mode; a missing file whose -wal or -shm remains.

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

#include "dengine/backends/sqlite/database.hpp"
#include "dengine/backends/sqlite/record.hpp"
#include "dengine/core/error.hpp"

namespace dengine::sqlite {

/// What the raw header check found.
enum class FileKind {
  dengine,  ///< a dengine file of this format version
  unmarked  ///< an SQLite file without dengine's application_id: format 1, or not dengine's
};

namespace files {

/// `file` + suffix ("-wal", "-shm", "-journal").
inline std::filesystem::path companion(const std::filesystem::path& file, std::string_view suffix) {
  std::filesystem::path out = file;
  out += std::string(suffix);
  return out;
}

/// Whether `path` exists (any type); errors other than "not there" count as existing, so that
/// a file we cannot stat is never mistaken for a missing one.
inline bool present(const std::filesystem::path& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 || errno != ENOENT;
}

/// The size of `path`, or 0 when it does not exist.
inline std::uint64_t size_or_zero(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<std::uint64_t>(st.st_size);
}

/// Refuses a data dir whose database file is missing while a companion remains: committed data
/// may live in the WAL alone (after a crash, before a checkpoint), and a new database next to it
/// would either lose it or adopt pages of another file.
inline result<void> check_no_orphan_companions(const std::filesystem::path& file) {
  for (std::string_view suffix : {"-wal", "-shm", "-journal"}) {
    const auto other = companion(file, suffix);
    if (present(other))
      return record::corrupt(
          file, "the database file is missing but " + other.filename().string() +
                    " exists beside it (committed data may live only there); refusing to "
                    "create a new database. Restore the database file, or remove the data dir "
                    "if this member's data is to be discarded");
  }
  return success();
}

/// Reads the 100-byte header of `file` and checks it (see the file comment).
inline result<FileKind> check_header(const std::filesystem::path& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return error(errc::io_error,
                 "sqlite: cannot open " + file.string() + " to check it: " + std::strerror(errno));
  struct stat st {};
  unsigned char h[100] = {};
  ssize_t got = -1;
  int err = 0;
  if (::fstat(fd, &st) != 0) {
    err = errno;
  } else if (S_ISREG(st.st_mode) && st.st_size >= 100) {
    got = ::pread(fd, h, sizeof h, 0);
    if (got < 0) err = errno;
  }
  ::close(fd);
  if (err != 0)
    return error(errc::io_error,
                 "sqlite: cannot read " + file.string() + ": " + std::strerror(err));
  if (!S_ISREG(st.st_mode)) return record::corrupt(file, "is not a regular file");
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size == 0)
    return record::corrupt(file,
                           "is empty (0 bytes): truncated or emptied. dengine creates its database "
                           "files whole, so an empty one is damage; nothing was changed");
  if (size < 100 || got != 100)
    return record::corrupt(file, "is " + std::to_string(size) +
                                     " bytes, shorter than SQLite's 100-byte header: truncated");
  static constexpr char magic[] = "SQLite format 3";  // 16 bytes with its NUL
  if (std::memcmp(h, magic, sizeof magic) != 0)
    return record::corrupt(file, "is not an SQLite database (no SQLite header)");
  auto u16 = [&](int at) { return static_cast<std::uint32_t>((h[at] << 8) | h[at + 1]); };
  auto u32 = [&](int at) { return (u16(at) << 16) | u16(at + 2); };
  std::uint32_t page_size = u16(16);
  if (page_size == 1) page_size = 65536;
  if (page_size < 512 || page_size > 65536 || (page_size & (page_size - 1)) != 0)
    return record::corrupt(
        file, "has an invalid page size in its header (" + std::to_string(page_size) + ")");
  if (size % page_size != 0)
    return record::corrupt(file, "is " + std::to_string(size) + " bytes, not a whole number of " +
                                     std::to_string(page_size) +
                                     "-byte pages: truncated or damaged");
  const std::uint32_t app = u32(68);
  const std::uint32_t user_version = u32(60);
  if (app == 0 && user_version == 0) return FileKind::unmarked;
  if (app != application_id)
    return record::corrupt(file, "is an SQLite database but not a dengine one (application_id " +
                                     std::to_string(app) + ", dengine's is " +
                                     std::to_string(application_id) + ")");
  if (user_version != static_cast<std::uint32_t>(format_version))
    return error(errc::incompatible_version,
                 "sqlite: " + file.string() + " has format version " +
                     std::to_string(user_version) + "; this build reads format version " +
                     std::to_string(format_version) +
                     " (the data dir was written by an incompatible dengine version)");
  if (h[18] != 2 || h[19] != 2)
    return record::corrupt(file, "is not in WAL mode (file format bytes " + std::to_string(h[18]) +
                                     "/" + std::to_string(h[19]) +
                                     "), which every dengine database is: its header is damaged");
  // The header's page count is valid when the change counter matches version-valid-for. With
  // no WAL frames to supply newer pages, the file must hold every page the header counts.
  const std::uint64_t pages = u32(28);
  const bool wal_has_frames = size_or_zero(companion(file, "-wal")) > 32;
  if (!wal_has_frames && u32(24) == u32(92) && pages != 0 && size < pages * page_size)
    return record::corrupt(file, "is " + std::to_string(size) + " bytes but its header counts " +
                                     std::to_string(pages) + " pages of " +
                                     std::to_string(page_size) + " bytes (" +
                                     std::to_string(pages * page_size) + "): truncated");
  return FileKind::dengine;
}

/// Prefix of the temporary names a database file is created under: "<name>.creating.".
inline std::string temp_prefix() { return std::string(database_file_name) + ".creating."; }

/// A fresh temporary name in `dir`: "<name>.creating.<pid>.<n>".
inline std::filesystem::path temp_name(const std::filesystem::path& dir) {
  static std::atomic<unsigned> counter{0};
  return dir / (temp_prefix() + std::to_string(::getpid()) + "." + std::to_string(counter++));
}

/// Removes `path` and its companions (best effort: used on a file that never held data).
inline void remove_with_companions(const std::filesystem::path& path) {
  std::error_code ignored;
  for (std::string_view suffix : {"", "-wal", "-shm", "-journal"})
    std::filesystem::remove(companion(path, suffix), ignored);
}

/// Removes temporary files left in `dir` by a creation that a crash interrupted: those whose
/// process is gone (their pid answers ESRCH). They never held acknowledged data.
inline void remove_stale_temps(const std::filesystem::path& dir) {
  std::error_code ec;
  const std::string prefix = temp_prefix();
  for (const auto& item : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = item.path().filename().string();
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string rest = name.substr(prefix.size());
    const auto dot = rest.find('.');
    if (dot == std::string::npos || dot == 0) continue;
    pid_t pid = 0;
    for (char c : rest.substr(0, dot)) {
      if (c < '0' || c > '9') {
        pid = 0;
        break;
      }
      pid = pid * 10 + (c - '0');
    }
    if (pid <= 0 || pid == ::getpid()) continue;
    if (::kill(pid, 0) != 0 && errno == ESRCH) {
      std::error_code ignored;
      std::filesystem::remove(item.path(), ignored);
    }
  }
}

/// fsyncs a file's contents.
inline result<void> sync_file(const std::filesystem::path& file) {
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return error(errc::io_error,
                 "sqlite: cannot open " + file.string() + " to fsync it: " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0)
    return error(errc::io_error, "sqlite: fsync of " + file.string() + ": " + std::strerror(err));
  return success();
}

/// Gives the complete file `temp` the name `file`, unless `file` appeared meanwhile (another
/// opener created it first: that one is kept). Never replaces an existing file.
inline result<void> publish(const std::filesystem::path& temp, const std::filesystem::path& file) {
  if (::link(temp.c_str(), file.c_str()) != 0 && errno != EEXIST)
    return error(errc::io_error, "sqlite: cannot link " + temp.string() + " to " + file.string() +
                                     ": " + std::strerror(errno));
  std::error_code ec;
  std::filesystem::remove(temp, ec);
  if (ec)
    return error(errc::io_error, "sqlite: cannot remove " + temp.string() + " after creating " +
                                     file.string() + ": " + ec.message());
  return sync_dir(file.parent_path());
}

}  // namespace files
}  // namespace dengine::sqlite
