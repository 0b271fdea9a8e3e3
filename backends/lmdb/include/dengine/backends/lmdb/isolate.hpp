#pragma once
/// Running a check of a data file in a child process, so that damage which makes LMDB fault or
/// assert kills the child instead of the caller (verify.hpp's verify_in_child() uses it).
///
/// Fork in a multithreaded process: only the calling thread exists in the child, and any lock
/// another thread held at the fork stays held there, so the child calls nothing that takes a
/// lock of the parent's (no dengine registry, logger or gate; only the walk, LMDB on its own
/// fresh environment, write and _exit). It does allocate (LMDB itself does): glibc's malloc
/// resets its arena locks in the child as part of fork(), and jemalloc registers
/// pthread_atfork handlers that take its locks before the fork and reinitialise them in the
/// child, so allocation there is sound with either. GCC 12's AddressSanitizer runtime does not
/// lock its allocator around fork (it intercepts only vfork), so under ASan a child forked while
/// another thread allocates can block on an allocator lock; the parent's watchdog then kills it
/// after a minute without progress and reports an io_error rather than hanging. The child
/// reports progress on the pipe (a '.' every 1024 pages or 4096 records); the parent reads the
/// pipe to its end before it waits, so a large report cannot block the child. The child resets
/// the handlers of fault signals to the default (a fault must kill it, not run the parent's
/// handler in a damaged process), dies with the thread that forked it (PR_SET_PDEATHSIG) and
/// closes every descriptor it inherited but stdio and its pipe (it must not keep the parent's
/// locks or sockets alive), never returns into the caller's code, and leaves with _exit
/// (no atexit handlers, static destructors or stdio flushes of the parent's state, and no leak
/// check under LeakSanitizer).

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include "dengine/backends/lmdb/codec.hpp"
#include "dengine/backends/lmdb/report.hpp"
#include "dengine/core/error.hpp"
#include "dengine/storage/file_descriptor.hpp"

namespace dengine::lmdb::detail {

/// How long report_from_child() waits for the child without a sign of progress.
inline constexpr int verify_silence_limit_ms = 60'000;

/// The report as bytes for the pipe: "DVR1", code, flags, four counters, problems.
inline std::string serialize(const VerifyReport& r) {
  std::string out = "DVR1";
  bytes::put_be32(out, static_cast<std::uint32_t>(r.code));
  out.push_back(r.initialized ? '\1' : '\0');
  for (std::uint64_t n : {r.log_records, r.kv_records, r.meta_records, r.pages,
                          static_cast<std::uint64_t>(r.problems_omitted)})
    bytes::put_be64(out, n);
  bytes::put_be32(out, static_cast<std::uint32_t>(r.problems.size()));
  for (const auto& p : r.problems) {
    bytes::put_be32(out, static_cast<std::uint32_t>(p.size()));
    out += p;
  }
  return out;
}

inline bool deserialize(std::string_view in, VerifyReport& r) {
  if (in.size() < 4 + 4 + 1 + 5 * 8 + 4 || in.substr(0, 4) != "DVR1") return false;
  std::size_t pos = 4;
  r.code = static_cast<errc>(bytes::get_be32(in.data() + pos));
  pos += 4;
  r.initialized = in[pos++] != '\0';
  std::uint64_t omitted = 0;
  for (std::uint64_t* n : {&r.log_records, &r.kv_records, &r.meta_records, &r.pages, &omitted}) {
    *n = bytes::get_be64(in.data() + pos);
    pos += 8;
  }
  r.problems_omitted = static_cast<std::size_t>(omitted);
  const std::uint32_t count = bytes::get_be32(in.data() + pos);
  pos += 4;
  for (std::uint32_t k = 0; k < count; ++k) {
    if (in.size() - pos < 4) return false;
    const std::uint32_t n = bytes::get_be32(in.data() + pos);
    pos += 4;
    if (in.size() - pos < n) return false;
    r.problems.emplace_back(in.substr(pos, n));
    pos += n;
  }
  return pos == in.size();
}

inline bool write_all(int fd, const char* p, std::size_t n) noexcept {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

/// The child's side of report_from_child(): walks, writes the report to `fd`, exits.
template <class Walk>
[[noreturn]] void child_main(Walk& walk, int fd, pid_t parent) noexcept {
  // The child must not outlive its parent, nor hold what the parent holds: it inherited every
  // descriptor, among them the data dir's flock and any listening socket, and an orphaned child
  // still walking a large store would keep a restarted node from taking them back. So it dies
  // with the thread that forked it, and keeps only stdio and its pipe (moved to descriptor 3).
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(4);  // the parent died before prctl took effect
  if (fd != 3) {
    if (::dup2(fd, 3) < 0) ::_exit(4);
    fd = 3;
  }
  if (::close_range(4, ~0U, 0) != 0) {
    const long max = ::sysconf(_SC_OPEN_MAX);
    for (long k = 4; k < (max > 0 && max < 65536 ? max : 65536); ++k) ::close(static_cast<int>(k));
  }
  // A fault must end this process by its signal, whatever handler the parent installed (a test
  // framework's, a crash reporter's, the sanitizers'): those would run in a process whose
  // memory the fault may have left inconsistent, and could turn the signal into an exit code.
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS, SIGTRAP}) {
    struct sigaction sa {};
    sa.sa_handler = SIG_DFL;
    sigemptyset(&sa.sa_mask);
    ::sigaction(sig, &sa, nullptr);
  }
  sigset_t faults;
  sigemptyset(&faults);
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) sigaddset(&faults, sig);
  ::pthread_sigmask(SIG_UNBLOCK, &faults, nullptr);
  int status = 0;
  try {
    const std::function<void()> tick = [fd] {
      const char dot = '.';
      (void)write_all(fd, &dot, 1);
    };
    const VerifyReport report = walk(tick);
    const std::string bytes = serialize(report);
    if (!write_all(fd, bytes.data(), bytes.size())) status = 2;
  } catch (...) {
    status = 3;  // out of memory in the child: no report, the parent says so
  }
  // _exit: no atexit handlers, static destructors or stdio flushes of the parent's state (they
  // belong to the parent, and would run twice), and no leak check under LeakSanitizer.
  ::_exit(status);
}

inline std::string signal_name(int sig) {
  switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGILL: return "SIGILL";
    case SIGFPE: return "SIGFPE";
    case SIGABRT: return "SIGABRT";
    case SIGKILL: return "SIGKILL";
    case SIGTERM: return "SIGTERM";
    default: return "signal " + std::to_string(sig);
  }
}

/// Runs `walk(tick)` (returning a VerifyReport; tick reports progress) in a child process and
/// returns its report, or a report of how the child failed, naming `file`. The child is killed
/// after `silence_limit_ms` without progress. See verify_in_child().
template <class Walk>
VerifyReport report_from_child(const std::filesystem::path& file, Walk&& walk,
                               int silence_limit_ms = verify_silence_limit_ms) {
  VerifyReport report;
  report.file = file;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    report.add(errc::io_error,
               std::string("pipe for the verification child: ") + std::strerror(errno));
    return report;
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    report.add(errc::io_error,
               std::string("fork of the verification child: ") + std::strerror(err));
    return report;
  }
  if (pid == 0) {
    ::close(fds[0]);
    child_main(walk, fds[1], parent);
  }
  ::close(fds[1]);
  std::string bytes;
  bool silent_too_long = false;
  for (;;) {
    pollfd p{fds[0], POLLIN, 0};
    const int ready = ::poll(&p, 1, silence_limit_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) {
      silent_too_long = true;
      ::kill(pid, SIGKILL);
      break;
    }
    if (storage::read_append(fds[0], bytes) <= 0) break;  // the child closed its end (or died)
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  const std::size_t start = bytes.find_first_not_of('.');
  const std::string_view body =
      start == std::string::npos ? std::string_view{} : std::string_view(bytes).substr(start);
  if (silent_too_long) {
    report.add(errc::io_error, "the verification child made no progress for " +
                                   std::to_string(silence_limit_ms) +
                                   " ms and was killed (blocked after fork?)");
    return report;
  }
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const bool fault = sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE ||
                       sig == SIGABRT || sig == SIGSYS || sig == SIGTRAP;
    report.add(fault ? errc::storage_corrupt : errc::io_error,
               "verification crashed with " + signal_name(sig) +
                   (fault ? " while LMDB read the file: it is damaged in a way LMDB does not "
                            "detect (a B-tree page)"
                          : " (killed from outside; the file was not judged)"));
    return report;
  }
  VerifyReport child;
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (code != 0 || !deserialize(body, child)) {
    // 2: the report could not be written; 3: the child ran out of memory; 4: it could not set
    // itself up. Anything else (a sanitizer's report of a fault, say) happened while reading
    // the file.
    const bool ours = code == 2 || code == 3 || code == 4;
    report.add(
        ours ? errc::io_error : errc::storage_corrupt,
        "verification ended without a report (exit status " + std::to_string(code) +
            (ours ? "): the child could not finish" : "): it failed while reading the file"));
    return report;
  }
  child.file = report.file;
  return child;
}

}  // namespace dengine::lmdb::detail
