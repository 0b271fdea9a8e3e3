// libdengine-powerloss.so: an LD_PRELOAD library that records, for one watched directory, what
// the process has made durable, so that a parent can later throw away everything else — a
// simulated power loss (docs/power-loss.md; the parent side is
// dengine/conformance/power_loss_restore.hpp, the journal format power_loss_format.hpp).
//
// Model, deliberately conservative (what POSIX promises, not what ext4 happens to do):
//   - A regular file's durable contents are its bytes (and size) at the start of its last
//     successful fsync or fdatasync — the two are the same here, since fdatasync also makes the
//     size durable when it changed. A write through a descriptor opened with O_DSYNC or O_SYNC,
//     or a pwritev2 with RWF_DSYNC/RWF_SYNC, makes exactly the bytes it wrote durable when it
//     returns; msync(MS_SYNC) makes the synced range of a MAP_SHARED mapping durable; sync() and
//     syncfs() make everything durable.
//   - A directory's durable entries (creations, renames, removals, hard links, symlinks) are
//     those it had at the start of its last successful fsync/fdatasync. A file whose name was
//     never made durable is gone after the loss, however often its contents were synced.
//   - Nothing else is durable: not close(), not sync_file_range() (it writes pages back but
//     neither flushes the disk's cache nor commits metadata), not MS_ASYNC, not a write that
//     merely reached the page cache. Unsynced writes are all lost — never partly kept.
//
// How: at load (before main) the shim copies the whole watched tree into the journal as the
// starting durable state, then creates `ready`. Each durable operation on a file or directory
// under the watched one captures its contents (or entries) into a temporary journal file before
// the real call and renames it into place after the real call succeeded. Plain writes need no
// interception: a file's bytes are read back from the file itself when it is synced, whichever
// way they got there (write, pwrite, ftruncate, fallocate, a writable mapping).
//
// Files are told apart by (device, inode, birth time): an inode number freed by an unlink and
// reused by a new file is a different file. Only the process the shim started in may make data
// under the directory durable: a forked or exec'd descendant that tries is stopped with a message
// (its durability could not be recorded consistently); descendants may read.
//
// Environment: DENGINE_POWERLOSS_DIR (the watched directory), DENGINE_POWERLOSS_SHADOW (the
// journal directory, empty, outside the watched one). Without both, the shim does nothing.

// The 64-bit-offset aliases (mmap64, pwrite64, ...) are interposed by name below; with
// _FILE_OFFSET_BITS=64 (Meson's default) the headers would rename mmap to mmap64 and so on.
#undef _FILE_OFFSET_BITS

#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "dengine/conformance/power_loss_format.hpp"

namespace {

namespace pl = dengine::power_loss;

/// The next definition of `name` after this library (libc's), looked up once.
template <class Fn>
Fn* next_symbol(const char* name) {
  return reinterpret_cast<Fn*>(::dlsym(RTLD_NEXT, name));
}
#define DENGINE_REAL(name)                                                   \
  ([] {                                                                      \
    static decltype(&::name) const p = next_symbol<decltype(::name)>(#name); \
    return p;                                                                \
  }())

/// Stops the process with a message on stderr: the model cannot go on consistently.
[[noreturn]] void die(const std::string& what) {
  const std::string line =
      "dengine power-loss shim (pid " + std::to_string(::getpid()) + "): " + what + "\n";
  (void)!DENGINE_REAL(write)(STDERR_FILENO, line.data(), line.size());
  ::_exit(86);
}

/// Identity of a file across renames, and different from any later file reusing its inode.
struct Key {
  std::uint64_t dev = 0;
  std::uint64_t ino = 0;
  std::int64_t birth_sec = 0;
  std::uint32_t birth_nsec = 0;
  bool operator<(const Key& o) const {
    return std::tie(dev, ino, birth_sec, birth_nsec) <
           std::tie(o.dev, o.ino, o.birth_sec, o.birth_nsec);
  }
};

constexpr unsigned statx_mask = STATX_TYPE | STATX_MODE | STATX_INO | STATX_NLINK | STATX_BTIME;

Key key_of(const struct statx& sx) {
  return Key{::makedev(sx.stx_dev_major, sx.stx_dev_minor), sx.stx_ino, sx.stx_btime.tv_sec,
             sx.stx_btime.tv_nsec};
}

/// A MAP_SHARED mapping of a watched file, for msync.
struct Mapping {
  std::uintptr_t addr = 0;
  std::size_t length = 0;
  std::uint64_t id = 0;
  std::uint64_t offset = 0;  ///< file offset of addr
  bool readable = false;
};

/// A journal file written under a temporary name, to be renamed into place (commit) once the
/// operation it records has succeeded, or removed (abandon).
struct Pending {
  std::string tmp;
  std::string final;
};

struct Shim {
  bool active = false;      ///< this process records durability (set at the end of init)
  bool descendant = false;  ///< another process records it: syncing here is refused
  pid_t owner = 0;
  std::string dir;     ///< the watched directory, canonical
  std::string shadow;  ///< the journal directory
  std::mutex mu;       ///< guards everything below and the journal files
  std::map<Key, std::uint64_t> ids;
  std::uint64_t next_id = 1;  ///< 0 is the watched directory
  std::vector<Mapping> mappings;
  std::uint64_t next_tmp = 0;
};

/// Never destroyed: wrappers may run during exit, after static destructors.
Shim& shim() {
  static Shim* const s = new Shim;
  return *s;
}

/// True when the caller must record (or refuse) durability: the shim watches a directory.
bool watching() {
  const Shim& s = shim();
  return s.active || s.descendant;
}

/// True in the process whose durability the journal records (not a fork or exec of it).
bool is_owner() {
  const Shim& s = shim();
  return s.active && ::getpid() == s.owner;
}

std::string fd_path(int fd) {
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  char buffer[PATH_MAX + 1];
  const ssize_t n = ::readlink(link.c_str(), buffer, PATH_MAX);
  return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : std::string();
}

bool under_watched(const std::string& path) {
  const std::string& dir = shim().dir;
  return path.size() >= dir.size() && path.compare(0, dir.size(), dir) == 0 &&
         (path.size() == dir.size() || path[dir.size()] == '/');
}

/// Refuses a durable operation under the watched directory from a descendant process.
void refuse_if_watched(int fd) {
  if (under_watched(fd_path(fd)))
    die("a process other than the one the shim started in (pid " + std::to_string(shim().owner) +
        ", or an exec'd one) made data under " + shim().dir +
        " durable: its durability cannot be recorded; let one process write there");
}

bool statx_fd(int fd, struct statx& sx) {
  return ::statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, statx_mask, &sx) == 0;
}

/// The id of the file or directory `sx` (open as `fd`, or -1): known, or new when it lies under
/// the watched directory, or nullopt when it does not (or is an unlinked file no name can reach).
std::optional<std::uint64_t> id_of(const struct statx& sx, int fd) {
  Shim& s = shim();
  const Key key = key_of(sx);
  if (auto it = s.ids.find(key); it != s.ids.end()) return it->second;
  if (fd >= 0 && (sx.stx_nlink == 0 || !under_watched(fd_path(fd)))) return std::nullopt;
  return s.ids[key] = s.next_id++;
}

// ---- journal files

bool write_all(int fd, const char* p, std::size_t n, std::uint64_t offset) {
  while (n > 0) {
    const ssize_t w = DENGINE_REAL(pwrite)(fd, p, n, static_cast<off_t>(offset));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
    offset += static_cast<std::uint64_t>(w);
  }
  return true;
}

/// Copies all of `from` into `to` (both at offset 0).
bool copy_all(int from, int to) {
  loff_t in = 0;
  loff_t out = 0;
  for (;;) {
    const ssize_t n = ::copy_file_range(from, &in, to, &out, std::size_t{1} << 30, 0);
    if (n == 0) return true;
    if (n > 0) continue;
    if (errno == EINTR) continue;
    if (errno != EXDEV && errno != ENOSYS && errno != EINVAL && errno != EOPNOTSUPP) return false;
    break;  // no in-kernel copy between these files: copy by hand from where it stopped
  }
  char buffer[1 << 16];
  for (;;) {
    const ssize_t n = ::pread(from, buffer, sizeof buffer, in);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return true;
    if (!write_all(to, buffer, static_cast<std::size_t>(n), static_cast<std::uint64_t>(out)))
      return false;
    in += n;
    out += n;
  }
}

/// A new temporary journal file, open for writing, that will become `final_name`.
std::pair<Pending, int> new_pending(const std::string& final_name) {
  Shim& s = shim();
  Pending p{s.shadow + "/t" + std::to_string(++s.next_tmp), s.shadow + "/" + final_name};
  const int fd = ::open(p.tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) die("cannot create journal file " + p.tmp + ": " + std::strerror(errno));
  return {p, fd};
}

void close_or_die(int fd, const Pending& p) {
  if (::close(fd) != 0) die("cannot write journal file " + p.tmp + ": " + std::strerror(errno));
}

void commit(const Pending& p) {
  if (::rename(p.tmp.c_str(), p.final.c_str()) != 0)
    die("cannot rename " + p.tmp + " to " + p.final + ": " + std::strerror(errno));
}

void abandon(const Pending& p) { ::unlink(p.tmp.c_str()); }

/// Captures the current contents of open file `fd` (any access mode) as file `id`'s.
Pending capture_file(int fd, std::uint64_t id) {
  const std::string source = "/proc/self/fd/" + std::to_string(fd);
  const int in = ::open(source.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) die("cannot reopen " + fd_path(fd) + " to read it: " + std::strerror(errno));
  auto [pending, out] = new_pending(pl::shadow_name('f', id));
  if (!copy_all(in, out)) die("cannot copy " + fd_path(fd) + ": " + std::strerror(errno));
  ::close(in);
  close_or_die(out, pending);
  return pending;
}

/// The entries of open directory `dirfd` now, in name order (regular files, directories and
/// symlinks; other kinds — fifos, sockets, devices — are not modelled and left out).
std::vector<pl::Entry> list_directory(int dirfd) {
  const int fd = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  DIR* d = fd < 0 ? nullptr : ::fdopendir(fd);
  if (d == nullptr) die("cannot list " + fd_path(dirfd) + ": " + std::strerror(errno));
  std::vector<pl::Entry> out;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    struct statx sx {};
    if (::statx(fd, e->d_name, AT_SYMLINK_NOFOLLOW, statx_mask, &sx) != 0) continue;  // gone
    pl::Entry entry;
    entry.name = name;
    entry.mode = sx.stx_mode & 07777;
    if (S_ISREG(sx.stx_mode)) {
      entry.kind = 'f';
    } else if (S_ISDIR(sx.stx_mode)) {
      entry.kind = 'd';
    } else if (S_ISLNK(sx.stx_mode)) {
      entry.kind = 'l';
      char target[PATH_MAX + 1];
      const ssize_t n = ::readlinkat(fd, e->d_name, target, PATH_MAX);
      if (n < 0) continue;  // gone
      entry.target.assign(target, static_cast<std::size_t>(n));
    } else {
      continue;
    }
    if (entry.kind != 'l') entry.id = *id_of(sx, -1);
    out.push_back(std::move(entry));
  }
  ::closedir(d);
  std::sort(out.begin(), out.end(),
            [](const pl::Entry& a, const pl::Entry& b) { return a.name < b.name; });
  return out;
}

/// Captures `entries` as directory `id`'s.
Pending capture_listing(const std::vector<pl::Entry>& entries, std::uint64_t id) {
  std::string text;
  for (const auto& e : entries) text += pl::encode_entry(e);
  auto [pending, out] = new_pending(pl::shadow_name('d', id));
  if (!write_all(out, text.data(), text.size(), 0))
    die("cannot write journal file " + pending.tmp + ": " + std::strerror(errno));
  close_or_die(out, pending);
  return pending;
}

/// Captures directory `dirfd` (id `id`) and everything below it, as sync() makes it durable.
void capture_tree(int dirfd, std::uint64_t id, std::vector<Pending>& out, int depth) {
  if (depth > 64) die("directory nesting deeper than 64 levels under " + shim().dir);
  const auto entries = list_directory(dirfd);
  out.push_back(capture_listing(entries, id));
  for (const auto& e : entries) {
    if (e.kind == 'l') continue;
    const int fd = ::openat(dirfd, e.name.c_str(),
                            O_RDONLY | O_CLOEXEC | O_NOFOLLOW | (e.kind == 'd' ? O_DIRECTORY : 0));
    if (fd < 0) continue;  // removed meanwhile (another thread): not durable anyway
    if (e.kind == 'd') {
      capture_tree(fd, e.id, out, depth + 1);
    } else {
      out.push_back(capture_file(fd, e.id));
    }
    ::close(fd);
  }
}

std::vector<Pending> capture_watched_tree() {
  const int fd = ::open(shim().dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) die("cannot open " + shim().dir + ": " + std::strerror(errno));
  std::vector<Pending> out;
  capture_tree(fd, 0, out, 0);
  ::close(fd);
  return out;
}

/// Bytes that became durable at a file offset (an O_DSYNC write, an msync'ed range).
struct Piece {
  const char* data;
  std::size_t size;
};

/// Captures file `id`'s durable contents with `pieces` written at `offset` on top: the
/// previous durable bytes elsewhere, zeros in any gap past their end.
Pending capture_patch(std::uint64_t id, std::uint64_t offset, const std::vector<Piece>& pieces) {
  auto [pending, out] = new_pending(pl::shadow_name('f', id));
  const int old = ::open(pending.final.c_str(), O_RDONLY | O_CLOEXEC);
  if (old >= 0) {
    if (!copy_all(old, out)) die("cannot copy " + pending.final + ": " + std::strerror(errno));
    ::close(old);
  }
  for (const auto& p : pieces) {
    if (!write_all(out, p.data, p.size, offset))
      die("cannot write journal file " + pending.tmp + ": " + std::strerror(errno));
    offset += p.size;
  }
  close_or_die(out, pending);
  return pending;
}

// ---- what the wrappers do

/// fsync/fdatasync of `fd`: capture, sync, then commit.
int durable_sync(int fd, int (*real)(int)) {
  if (!watching()) return real(fd);
  if (!is_owner()) {
    refuse_if_watched(fd);
    return real(fd);
  }
  Shim& s = shim();
  std::lock_guard lock(s.mu);
  struct statx sx {};
  if (!statx_fd(fd, sx)) return real(fd);
  const bool dir = S_ISDIR(sx.stx_mode);
  if (!dir && !S_ISREG(sx.stx_mode)) return real(fd);
  const auto id = id_of(sx, fd);
  if (!id) return real(fd);
  const Pending p = dir ? capture_listing(list_directory(fd), *id) : capture_file(fd, *id);
  const int rc = real(fd);
  const int err = errno;
  rc == 0 ? commit(p) : abandon(p);
  errno = err;
  return rc;
}

/// After a write of `written` bytes from `iov` to `fd` at `offset` (-1: at the position before
/// the write): records them as durable if the write was synchronous (O_DSYNC, O_SYNC, or
/// `call_flags` RWF_DSYNC/RWF_SYNC).
void after_write(int fd, const struct iovec* iov, int iovcnt, ssize_t written, off_t offset,
                 int call_flags = 0) {
  if (written <= 0 || !watching()) return;
  const int err = errno;
  const int flags = ::fcntl(fd, F_GETFL);
  const bool synchronous =
      (flags >= 0 && (flags & O_DSYNC) != 0) || (call_flags & (RWF_DSYNC | RWF_SYNC)) != 0;
  if (!synchronous) return;
  if (!is_owner()) {
    refuse_if_watched(fd);
    return;
  }
  Shim& s = shim();
  std::lock_guard lock(s.mu);
  struct statx sx {};
  std::optional<std::uint64_t> id;
  if (statx_fd(fd, sx) && S_ISREG(sx.stx_mode)) id = id_of(sx, fd);
  if (id) {
    if (offset < 0) offset = ::lseek(fd, 0, SEEK_CUR) - written;
    std::vector<Piece> pieces;
    auto left = static_cast<std::size_t>(written);
    for (int k = 0; k < iovcnt && left > 0; ++k) {
      const std::size_t n = std::min(left, iov[k].iov_len);
      pieces.push_back({static_cast<const char*>(iov[k].iov_base), n});
      left -= n;
    }
    commit(capture_patch(*id, static_cast<std::uint64_t>(offset), pieces));
  }
  errno = err;
}

void after_write(int fd, const void* buf, ssize_t written, off_t offset) {
  const iovec one{const_cast<void*>(buf), written > 0 ? static_cast<std::size_t>(written) : 0};
  after_write(fd, &one, 1, written, offset);
}

void remember_mapping(void* addr, std::size_t length, int prot, int flags, int fd, off_t offset) {
  if (addr == MAP_FAILED || fd < 0 || (flags & MAP_SHARED) == 0 || !is_owner()) return;
  const int err = errno;
  Shim& s = shim();
  std::lock_guard lock(s.mu);
  struct statx sx {};
  if (statx_fd(fd, sx) && S_ISREG(sx.stx_mode)) {
    if (const auto id = id_of(sx, fd))
      s.mappings.push_back({reinterpret_cast<std::uintptr_t>(addr), length, *id,
                            static_cast<std::uint64_t>(offset), (prot & PROT_READ) != 0});
  }
  errno = err;
}

/// Drops what [addr, addr + length) covered from the remembered mappings (keeping the parts of
/// a mapping outside it).
void forget_mappings(std::uintptr_t addr, std::size_t length) {
  Shim& s = shim();
  std::vector<Mapping> kept;
  for (const auto& m : s.mappings) {
    const std::uintptr_t end = m.addr + m.length;
    if (end <= addr || m.addr >= addr + length) {
      kept.push_back(m);
      continue;
    }
    if (m.addr < addr) kept.push_back({m.addr, addr - m.addr, m.id, m.offset, m.readable});
    if (end > addr + length)
      kept.push_back({addr + length, end - (addr + length), m.id,
                      m.offset + (addr + length - m.addr), m.readable});
  }
  s.mappings = std::move(kept);
}

}  // namespace

// ---- load

__attribute__((constructor)) static void dengine_powerloss_init() {
  const char* dir = std::getenv(pl::dir_env);
  const char* shadow = std::getenv(pl::shadow_env);
  if (dir == nullptr || shadow == nullptr || *dir == '\0' || *shadow == '\0') return;
  Shim& s = shim();
  char canonical[PATH_MAX];
  if (const char* owner = std::getenv(pl::owner_env); owner != nullptr) {
    // Exec'd by the process that records durability, which set both variables to absolute
    // paths; a descendant that cannot resolve the directory cannot write there either.
    if (::realpath(dir, canonical) == nullptr) return;
    s.dir = canonical;
    s.descendant = true;
    s.owner = static_cast<pid_t>(std::atol(owner));
    return;
  }
  if (::realpath(dir, canonical) == nullptr)
    die(std::string("cannot resolve ") + pl::dir_env + "=" + dir + ": " + std::strerror(errno));
  s.dir = canonical;
  if (::realpath(shadow, canonical) == nullptr)
    die(std::string("cannot resolve ") + pl::shadow_env + "=" + shadow + ": " +
        std::strerror(errno));
  s.shadow = canonical;
  if (under_watched(s.shadow)) die("the journal " + s.shadow + " lies inside " + s.dir);
  struct statx sx {};
  if (::statx(AT_FDCWD, s.dir.c_str(), 0, statx_mask, &sx) != 0 || !S_ISDIR(sx.stx_mode))
    die(s.dir + " is not a directory");
  if ((sx.stx_mask & STATX_BTIME) == 0)
    die("the file system of " + s.dir +
        " does not report birth times (statx STATX_BTIME), which the shim needs to tell a new "
        "file from an old one whose inode number it reuses; use ext4, xfs, btrfs or tmpfs");
  s.ids[key_of(sx)] = 0;
  s.owner = ::getpid();
  std::lock_guard lock(s.mu);
  for (const auto& p : capture_watched_tree()) commit(p);
  auto [ready, fd] = new_pending(std::string(pl::ready_file));
  close_or_die(fd, ready);
  commit(ready);
  ::setenv(pl::dir_env, s.dir.c_str(), 1);  // absolute, for descendants in other directories
  ::setenv(pl::shadow_env, s.shadow.c_str(), 1);
  ::setenv(pl::owner_env, std::to_string(s.owner).c_str(), 1);
  s.active = true;
}

// ---- the interposed functions (C linkage, exported)

// Parameter names follow glibc's declarations (without their underscores).
#define DENGINE_EXPORT extern "C" __attribute__((visibility("default")))

DENGINE_EXPORT int fsync(int fd) { return durable_sync(fd, DENGINE_REAL(fsync)); }
DENGINE_EXPORT int fdatasync(int fildes) { return durable_sync(fildes, DENGINE_REAL(fdatasync)); }

DENGINE_EXPORT void sync(void) {
  if (!is_owner()) return DENGINE_REAL(sync)();
  std::lock_guard lock(shim().mu);
  const auto pending = capture_watched_tree();
  DENGINE_REAL(sync)();
  for (const auto& p : pending) commit(p);
}

DENGINE_EXPORT int syncfs(int fd) {
  if (!is_owner()) return DENGINE_REAL(syncfs)(fd);
  struct stat fs {};
  struct stat watched {};
  if (::fstat(fd, &fs) != 0 || ::stat(shim().dir.c_str(), &watched) != 0 ||
      fs.st_dev != watched.st_dev)
    return DENGINE_REAL(syncfs)(fd);
  std::lock_guard lock(shim().mu);
  const auto pending = capture_watched_tree();
  const int rc = DENGINE_REAL(syncfs)(fd);
  const int err = errno;
  for (const auto& p : pending) rc == 0 ? commit(p) : abandon(p);
  errno = err;
  return rc;
}

DENGINE_EXPORT int msync(void* addr, size_t len, int flags) {
  if ((flags & MS_SYNC) == 0 || !is_owner()) return DENGINE_REAL(msync)(addr, len, flags);
  Shim& s = shim();
  std::lock_guard lock(s.mu);
  const auto from = reinterpret_cast<std::uintptr_t>(addr);
  std::vector<Pending> pending;
  for (const auto& m : s.mappings) {
    const std::uintptr_t lo = std::max(from, m.addr);
    const std::uintptr_t hi = std::min(from + len, m.addr + m.length);
    if (lo >= hi) continue;
    if (!m.readable)
      die("msync(MS_SYNC) of a mapping of a watched file without PROT_READ: not modelled");
    const char* bytes = static_cast<const char*>(addr) + (lo - from);
    pending.push_back(capture_patch(m.id, m.offset + (lo - m.addr), {{bytes, hi - lo}}));
  }
  const int rc = DENGINE_REAL(msync)(addr, len, flags);
  const int err = errno;
  for (const auto& p : pending) rc == 0 ? commit(p) : abandon(p);
  errno = err;
  return rc;
}

DENGINE_EXPORT void* mmap(void* addr, size_t len, int prot, int flags, int fd, off_t offset) {
  void* r = DENGINE_REAL(mmap)(addr, len, prot, flags, fd, offset);
  remember_mapping(r, len, prot, flags, fd, offset);
  return r;
}

DENGINE_EXPORT void* mmap64(void* addr, size_t len, int prot, int flags, int fd, off64_t offset) {
  void* r = DENGINE_REAL(mmap64)(addr, len, prot, flags, fd, offset);
  remember_mapping(r, len, prot, flags, fd, offset);
  return r;
}

DENGINE_EXPORT int munmap(void* addr, size_t len) {
  const int rc = DENGINE_REAL(munmap)(addr, len);
  if (rc == 0 && is_owner()) {
    const int err = errno;
    std::lock_guard lock(shim().mu);
    forget_mappings(reinterpret_cast<std::uintptr_t>(addr), len);
    errno = err;
  }
  return rc;
}

DENGINE_EXPORT void* mremap(void* addr, size_t old_len, size_t new_len, int flags, ...) {
  void* fixed = nullptr;
  if ((flags & MREMAP_FIXED) != 0) {
    va_list args;
    va_start(args, flags);
    fixed = va_arg(args, void*);
    va_end(args);
  }
  void* r = DENGINE_REAL(mremap)(addr, old_len, new_len, flags, fixed);
  if (r != MAP_FAILED && is_owner()) {
    const int err = errno;
    std::lock_guard lock(shim().mu);
    for (auto& m : shim().mappings) {
      if (m.addr == reinterpret_cast<std::uintptr_t>(addr)) {
        m.addr = reinterpret_cast<std::uintptr_t>(r);
        m.length = new_len;
      }
    }
    errno = err;
  }
  return r;
}

DENGINE_EXPORT ssize_t write(int fd, const void* buf, size_t n) {
  const ssize_t r = DENGINE_REAL(write)(fd, buf, n);
  after_write(fd, buf, r, -1);
  return r;
}

DENGINE_EXPORT ssize_t pwrite(int fd, const void* buf, size_t n, off_t offset) {
  const ssize_t r = DENGINE_REAL(pwrite)(fd, buf, n, offset);
  after_write(fd, buf, r, offset);
  return r;
}

DENGINE_EXPORT ssize_t pwrite64(int fd, const void* buf, size_t n, off64_t offset) {
  const ssize_t r = DENGINE_REAL(pwrite64)(fd, buf, n, offset);
  after_write(fd, buf, r, offset);
  return r;
}

DENGINE_EXPORT ssize_t writev(int fd, const struct iovec* iovec, int count) {
  const ssize_t r = DENGINE_REAL(writev)(fd, iovec, count);
  after_write(fd, iovec, count, r, -1);
  return r;
}

DENGINE_EXPORT ssize_t pwritev(int fd, const struct iovec* iovec, int count, off_t offset) {
  const ssize_t r = DENGINE_REAL(pwritev)(fd, iovec, count, offset);
  after_write(fd, iovec, count, r, offset);
  return r;
}

DENGINE_EXPORT ssize_t pwritev64(int fd, const struct iovec* iovec, int count, off64_t offset) {
  const ssize_t r = DENGINE_REAL(pwritev64)(fd, iovec, count, offset);
  after_write(fd, iovec, count, r, offset);
  return r;
}

DENGINE_EXPORT ssize_t pwritev2(int fd, const struct iovec* iodev, int count, off_t offset,
                                int flags) {
  const ssize_t r = DENGINE_REAL(pwritev2)(fd, iodev, count, offset, flags);
  after_write(fd, iodev, count, r, offset, flags);
  return r;
}

DENGINE_EXPORT ssize_t pwritev64v2(int fd, const struct iovec* iodev, int count, off64_t offset,
                                   int flags) {
  const ssize_t r = DENGINE_REAL(pwritev64v2)(fd, iodev, count, offset, flags);
  after_write(fd, iodev, count, r, offset, flags);
  return r;
}
