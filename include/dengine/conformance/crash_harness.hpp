#pragma once
/// The crash and power-loss checker for a StorageEngine and KvStore (docs/power-loss.md): one
/// program that is both parent and child. The parent runs itself as a child on a directory
/// (crash_child.hpp), kills it with SIGKILL after a random delay — during open and recovery,
/// mid-append, mid-roll, mid-compaction — and checks what a fresh open of the directory holds
/// against what the child had acknowledged (crash_check.hpp). Then the next child continues
/// from there, recovering by itself.
///
/// Two kinds of failure:
///   - kill -9 (default): the page cache survives, so this tests a process crash only;
///   - power loss (--shim PATH): the child runs under the power-loss shim (tools/powerloss,
///     LD_PRELOAD), and after the kill the parent rebuilds the directory from the shim's journal
///     (power_loss_restore.hpp), keeping only what the child had made durable — what fsync,
///     fdatasync, O_DSYNC writes, msync and directory fsyncs promise. An engine that forgets a
///     sync passes the first kind and fails the second.
/// The parent checks a copy of the directory, so that the next child, not the parent, runs
/// recovery on what the kill or power loss left (recovery itself is crashed and power-cut too).
///
/// A user's program (the subject is described in crash_subject.hpp):
///
///     struct Subject {
///       result<MyEngine> open_engine(const std::filesystem::path& dir, PersistenceMode) const;
///     };
///     int main(int argc, char** argv) { return dengine::crash::checker_main<Subject>(argc, argv);
///     }
///
///     ./my-checker [--shim PATH] [--kills N] [--kv-kills N] [--seed N]
///                  [--min-delay-ms N] [--max-delay-ms N] [--work-dir DIR]
///
/// Exit status 0 when every run checked out, 1 on a failure (reported on stderr with the seed
/// that replays the parent's choices), 2 on bad usage.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "dengine/conformance/crash_check.hpp"
#include "dengine/conformance/crash_child.hpp"
#include "dengine/conformance/crash_subject.hpp"
#include "dengine/conformance/power_loss_format.hpp"
#include "dengine/conformance/power_loss_restore.hpp"
#include "dengine/core/config.hpp"
#include "dengine/core/error.hpp"

extern char** environ;  // NOLINT: POSIX

namespace dengine::crash {

/// How the parent runs.
struct Settings {
  int log_runs = 60;               ///< children killed while running the log workload
  int kv_runs = 30;                ///< ... the KvStore workload (when the subject has one)
  std::uint64_t seed = 0;          ///< the parent's choices (child seeds, delays)
  std::string shim;                ///< power-loss shim to preload; empty: kill -9 only
  int min_delay_ms = 5;            ///< the kill comes this long after the start, at the earliest
  int max_delay_ms = 300;          ///< ... at the latest
  std::filesystem::path work_dir;  ///< where the data dirs go; empty: a fresh temp dir
  std::vector<std::string> subject_args;  ///< passed on to the subject and to every child
};

/// What one child printed, and how it ended.
struct ChildRun {
  std::vector<std::string> lines;
  bool killed = false;  ///< true when our SIGKILL ended it (not an exit of its own)
  int status = 0;
};

namespace detail {

/// This process's environment without the power-loss variables, plus `add`.
inline std::vector<std::string> child_environment(const std::vector<std::string>& add) {
  std::vector<std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string_view var = *e;
    if (var.starts_with("DENGINE_POWERLOSS_")) continue;
    if (!add.empty() && var.starts_with("LD_PRELOAD=")) continue;  // replaced below
    out.emplace_back(var);
  }
  out.insert(out.end(), add.begin(), add.end());
  return out;
}

inline std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

}  // namespace detail

/// Runs `program` with `args` and environment `env`, SIGKILLs it after `kill_after`, and returns
/// what it printed on stdout (its stderr is ours).
inline result<ChildRun> run_and_kill(const std::string& program, std::vector<std::string> args,
                                     std::vector<std::string> env,
                                     std::chrono::milliseconds kill_after) {
  args.insert(args.begin(), program);
  auto argv = detail::pointers(args);
  auto envp = detail::pointers(env);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    return error(errc::io_error, std::string("pipe: ") + std::strerror(errno));
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int err = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    return error(errc::io_error, std::string("fork: ") + std::strerror(err));
  }
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);  // dup2 clears O_CLOEXEC on the copy
    ::execve(program.c_str(), argv.data(), envp.data());
    std::_Exit(127);
  }
  ::close(fds[1]);
  using clock = std::chrono::steady_clock;
  std::string output;
  const auto deadline = clock::now() + kill_after;
  bool sent_kill = false;
  char buffer[65536];
  for (bool eof = false; !eof;) {
    int timeout = -1;
    if (!sent_kill) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
      if (left <= 0) {
        ::kill(pid, SIGKILL);
        sent_kill = true;
      } else {
        timeout = static_cast<int>(left);
      }
    }
    pollfd p{fds[0], POLLIN, 0};
    if (::poll(&p, 1, timeout) > 0) {
      const ssize_t n = ::read(fds[0], buffer, sizeof buffer);
      if (n > 0) output.append(buffer, static_cast<std::size_t>(n));
      if (n == 0) eof = true;
    }
  }
  ::close(fds[0]);
  ChildRun run;
  ::waitpid(pid, &run.status, 0);
  run.killed = sent_kill && WIFSIGNALED(run.status) && WTERMSIG(run.status) == SIGKILL;
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);) run.lines.push_back(line);
  return run;
}

/// Counts for the summary.
struct Stats {
  int runs = 0;
  int killed_before_open = 0;
  int shim_not_ready = 0;  ///< power loss before the shim had recorded the start (nothing lost)
  int acknowledged = 0;
  int pending_applied = 0;  ///< the unacknowledged operation had (partly) happened
  int pending_absent = 0;   ///< it had not
  LogIndex longest_log = 0;
};

/// The parent: runs the children and checks after each kill. Keeps the work directory when a
/// check fails, so that the state it saw can be looked at.
template <class Subject>
class Parent {
 public:
  Parent(const Subject& subject, Settings settings, std::string self)
      : subject_(subject),
        settings_(std::move(settings)),
        self_(std::move(self)),
        rng_(settings_.seed) {}

  /// Runs everything; prints the summary on stdout and any failure on stderr.
  bool run() {
    if (auto made = make_work_dir(); !made) return report(made.error().message());
    const auto start = std::chrono::steady_clock::now();
    bool ok = log_runs();
    if (ok && has_kv_store<Subject>) ok = kv_runs();
    const auto seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    const char* what = power_loss() ? "power losses" : "kills";
    // In power-loss mode: how many losses came before the shim had recorded the start.
    auto not_ready = [&](const Stats& stats, const char* before, const char* after) {
      return power_loss()
                 ? detail::cat(before, stats.shim_not_ready, " before the shim was ready", after)
                 : std::string();
    };
    std::printf(
        "log: %d %s (%d before the engine had opened%s), %d operations acknowledged; at the "
        "loss the unacknowledged operation had happened (fully or in part) %d times, not at all "
        "%d times; longest log %llu entries\n",
        log_stats_.runs, what, log_stats_.killed_before_open,
        not_ready(log_stats_, ", ", "").c_str(), log_stats_.acknowledged,
        log_stats_.pending_applied, log_stats_.pending_absent,
        static_cast<unsigned long long>(log_stats_.longest_log));
    if (has_kv_store<Subject>)
      std::printf("kv: %d %s%s, %d durable points acknowledged\n", kv_stats_.runs, what,
                  not_ready(kv_stats_, " (", ")").c_str(), kv_stats_.acknowledged);
    std::printf("%s in %.1f s\n", ok ? "PASS" : "FAIL", seconds);
    std::fflush(stdout);
    if (ok && remove_work_dir_) {
      std::error_code ignored;
      std::filesystem::remove_all(root_, ignored);
    } else if (!ok) {
      std::fprintf(stderr, "the data dirs are kept in %s (check/ is what the failed check saw)\n",
                   root_.c_str());
    }
    return ok;
  }

 private:
  [[nodiscard]] bool power_loss() const { return !settings_.shim.empty(); }

  bool report(const std::string& what) {
    std::fprintf(stderr, "FAIL %s\n", what.c_str());
    return false;
  }

  result<void> make_work_dir() {
    std::error_code ec;
    if (!settings_.work_dir.empty()) {
      root_ = settings_.work_dir;
      std::filesystem::create_directories(root_, ec);
      if (ec) return error(errc::io_error, "cannot create " + root_.string() + ": " + ec.message());
      // The runs start from an empty store; an old one would not be the state they expect, and
      // clearing a directory named by mistake is worse than refusing it.
      if (!std::filesystem::is_empty(root_, ec) || ec)
        return error(errc::invalid_argument,
                     "--work-dir " + root_.string() + " must be empty or not exist yet");
    } else {
      const char* base = std::getenv("TMPDIR");
      std::string pattern = (base != nullptr && *base != '\0') ? base : "/tmp";
      pattern += "/dengine-crash-XXXXXX";
      if (::mkdtemp(pattern.data()) == nullptr)
        return error(errc::io_error, "mkdtemp " + pattern + ": " + std::strerror(errno));
      root_ = pattern;
      remove_work_dir_ = true;
    }
    for (const char* sub : {"log", "kv", "shadow"}) {
      std::filesystem::create_directories(root_ / sub, ec);
      if (ec) return error(errc::io_error, "cannot create " + (root_ / sub).string());
    }
    return success();
  }

  /// One run of the child in `mode` on `data`: started, killed (or power-cut), and the
  /// directory rebuilt from the journal in power-loss mode. `context` names the run.
  result<ChildRun> lose_power(const char* mode, const std::filesystem::path& data, int run,
                              PersistenceMode persistence, Stats& stats, std::string& context) {
    const auto delay = std::chrono::milliseconds(
        std::uniform_int_distribution<int>(settings_.min_delay_ms, settings_.max_delay_ms)(rng_));
    const auto seed = std::to_string(rng_());
    const char* persistence_name =
        persistence == PersistenceMode::disk_first ? "disk_first" : "mem_first";
    context = detail::cat(mode, " run ", run, " (child seed ", seed, ", ", persistence_name, ", ",
                          power_loss() ? "power loss" : "killed", " after ", delay.count(), " ms)");
    const auto shadow = root_ / "shadow";
    std::vector<std::string> env;
    if (power_loss()) {
      std::error_code ec;
      std::filesystem::remove_all(shadow, ec);
      std::filesystem::create_directories(shadow, ec);
      if (ec) return error(errc::io_error, "cannot empty " + shadow.string() + ": " + ec.message());
      const char* preload = std::getenv("LD_PRELOAD");
      env = {"LD_PRELOAD=" + settings_.shim +
                 (preload != nullptr && *preload != '\0' ? std::string(":") + preload : ""),
             std::string(power_loss::dir_env) + "=" + data.string(),
             std::string(power_loss::shadow_env) + "=" + shadow.string()};
    }
    auto args = settings_.subject_args;
    args.insert(args.end(), {"--child", mode, "--dir", data.string(), "--child-seed", seed,
                             "--persistence", persistence_name});
    DENGINE_TRY(child, run_and_kill(self_, args, detail::child_environment(env), delay));
    if (!child.killed)
      return error(
          errc::io_error,
          detail::cat("the child ended by itself (",
                      WIFEXITED(child.status) ? "exit status " : "signal ",
                      WIFEXITED(child.status) ? WEXITSTATUS(child.status) : WTERMSIG(child.status),
                      "); its last line: ", child.lines.empty() ? "(none)" : child.lines.back()));
    ++stats.runs;
    if (power_loss()) {
      DENGINE_TRY(restored, power_loss::restore(shadow, data));
      if (!restored) ++stats.shim_not_ready;
    }
    return child;
  }

  /// Copies `data` to check/, where the parent opens it.
  result<std::filesystem::path> copy_for_check(const std::filesystem::path& data) {
    const auto check = root_ / "check";
    std::error_code ec;
    std::filesystem::remove_all(check, ec);
    std::filesystem::copy(
        data, check,
        std::filesystem::copy_options::recursive | std::filesystem::copy_options::copy_symlinks,
        ec);
    if (ec)
      return error(errc::io_error,
                   "cannot copy " + data.string() + " to " + check.string() + ": " + ec.message());
    return check;
  }

  bool log_runs() {
    LogModel verified;
    for (int run = 0; run < settings_.log_runs; ++run) {
      // A MemFirst sync() returns before the data is durable: only DiskFirst promises that an
      // acknowledged append survives a power loss.
      const auto persistence =
          run % 2 == 0 || power_loss() ? PersistenceMode::disk_first : PersistenceMode::mem_first;
      std::string context;
      auto checked = [&]() -> result<void> {
        DENGINE_TRY(child, lose_power("log", root_ / "log", run, persistence, log_stats_, context));
        DENGINE_TRY(seen, read_log_run(child.lines, verified));
        if (!seen.opened) ++log_stats_.killed_before_open;
        log_stats_.acknowledged += seen.acknowledgements;
        DENGINE_TRY(check, copy_for_check(root_ / "log"));
        LogModel observed;
        DENGINE_TRYV(with_engine(subject_, check, PersistenceMode::disk_first,
                                 [&](auto& engine) -> result<void> {
                                   DENGINE_TRY(m, observe(engine));
                                   observed = std::move(m);
                                   return success();
                                 }));
        DENGINE_TRY(which, judge_log(observed, seen));
        if (seen.pending) ++(which == 0 ? log_stats_.pending_absent : log_stats_.pending_applied);
        verified = std::move(observed);
        log_stats_.longest_log = std::max<LogIndex>(log_stats_.longest_log, verified.terms.size());
        return success();
      }();
      if (!checked) return report(context + ": " + checked.error().message());
    }
    return true;
  }

  bool kv_runs() {
    if constexpr (has_kv_store<Subject>) {
      LogIndex verified = 0;
      std::map<std::string, std::string> expected;
      for (int run = 0; run < settings_.kv_runs; ++run) {
        const auto persistence =
            run % 2 == 0 ? PersistenceMode::disk_first : PersistenceMode::mem_first;
        std::string context;
        auto checked = [&]() -> result<void> {
          DENGINE_TRY(child, lose_power("kv", root_ / "kv", run, persistence, kv_stats_, context));
          DENGINE_TRY(seen, read_kv_run(child.lines, verified));
          kv_stats_.acknowledged += seen.acknowledgements;
          DENGINE_TRY(check, copy_for_check(root_ / "kv"));
          return with_kv_store(subject_, check, PersistenceMode::disk_first,
                               [&](auto& store) -> result<void> {
                                 DENGINE_TRY(applied, check_kv(store, seen, verified, expected));
                                 verified = applied;
                                 return success();
                               });
        }();
        if (!checked) return report(context + ": " + checked.error().message());
      }
    }
    return true;
  }

  const Subject& subject_;
  Settings settings_;
  std::string self_;
  std::mt19937_64 rng_;
  std::filesystem::path root_;
  bool remove_work_dir_ = false;
  Stats log_stats_;
  Stats kv_stats_;
};

namespace detail {
inline std::optional<long long> number(std::string_view text) {
  if (text.empty()) return std::nullopt;
  char* end = nullptr;
  const std::string s(text);
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (end != s.c_str() + s.size() || v < 0) return std::nullopt;
  return v;
}
}  // namespace detail

/// The checker's main: the parent role by default, the child role with `--child`. Flags it does
/// not know (each with one value) go to `make_subject(args)`, which returns result<Subject>, and
/// to every child.
template <class MakeSubject>
int checker_main(int argc, char** argv, MakeSubject&& make_subject) try {
  Settings settings;
  settings.seed = std::random_device{}();
  std::string child_mode;
  std::filesystem::path child_dir;
  std::uint64_t child_seed = 1;
  PersistenceMode persistence = PersistenceMode::disk_first;
  const char* usage =
      "usage: %s [--shim PATH] [--kills N] [--kv-kills N] [--seed N] [--min-delay-ms N] "
      "[--max-delay-ms N] [--work-dir DIR] [subject flags]\n";
  for (int i = 1; i < argc; i += 2) {
    const std::string_view flag = argv[i];
    if (i + 1 >= argc || !flag.starts_with("--")) {
      std::fprintf(stderr, usage, argv[0]);
      return 2;
    }
    const std::string value = argv[i + 1];
    const auto n = detail::number(value);
    auto needs_number = [&](auto& field) {
      if (!n) return false;
      field = static_cast<std::remove_reference_t<decltype(field)>>(*n);
      return true;
    };
    bool ok = true;
    if (flag == "--kills") {
      ok = needs_number(settings.log_runs);
    } else if (flag == "--kv-kills") {
      ok = needs_number(settings.kv_runs);
    } else if (flag == "--seed") {
      ok = needs_number(settings.seed);
    } else if (flag == "--min-delay-ms") {
      ok = needs_number(settings.min_delay_ms);
    } else if (flag == "--max-delay-ms") {
      ok = needs_number(settings.max_delay_ms);
    } else if (flag == "--shim") {
      settings.shim = std::filesystem::absolute(value).string();
    } else if (flag == "--work-dir") {
      settings.work_dir = std::filesystem::absolute(value);
    } else if (flag == "--child") {
      child_mode = value;
    } else if (flag == "--dir") {
      child_dir = value;
    } else if (flag == "--child-seed") {
      ok = needs_number(child_seed);
    } else if (flag == "--persistence") {
      persistence = value == "mem_first" ? PersistenceMode::mem_first : PersistenceMode::disk_first;
    } else {
      settings.subject_args.insert(settings.subject_args.end(), {std::string(flag), value});
    }
    if (!ok) {
      std::fprintf(stderr, "%s: %s needs a number, got '%s'\n", argv[0], argv[i], argv[i + 1]);
      return 2;
    }
  }
  auto subject = make_subject(std::as_const(settings.subject_args));

  if (!child_mode.empty()) {
    if (!subject) child_fail(subject.error());
    // Asked to run under the shim, the child refuses to run without it: a shim that failed to
    // load (ld.so only warns) would turn the power-loss test into a kill -9 test.
    const char* watched = std::getenv(power_loss::dir_env);
    const char* owner = std::getenv(power_loss::owner_env);
    if (watched != nullptr && (owner == nullptr || std::to_string(::getpid()) != owner))
      child_fail(error(
          errc::invalid_argument,
          "the power-loss shim is not loaded (LD_PRELOAD: " +
              std::string(std::getenv("LD_PRELOAD") ? std::getenv("LD_PRELOAD") : "unset") + ")"));
    run_child(subject.value(), child_mode, child_dir, child_seed, persistence);
  }

  if (!subject) {
    std::fprintf(stderr, "%s\n", subject.error().message().c_str());
    std::fprintf(stderr, usage, argv[0]);
    return 2;
  }
  if (settings.min_delay_ms > settings.max_delay_ms || settings.max_delay_ms <= 0) {
    std::fprintf(stderr, "%s: need 0 <= --min-delay-ms <= --max-delay-ms, and a positive max\n",
                 argv[0]);
    return 2;
  }
  if (!settings.shim.empty() && ::access(settings.shim.c_str(), R_OK) != 0) {
    std::fprintf(stderr, "%s: cannot read the shim %s: %s\n", argv[0], settings.shim.c_str(),
                 std::strerror(errno));
    return 2;
  }
  std::error_code ec;
  const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) {
    std::fprintf(stderr, "%s: cannot find my own program: %s\n", argv[0], ec.message().c_str());
    return 1;
  }
  std::string flags;
  for (const auto& a : settings.subject_args) flags += " " + a;
  std::printf("%s checker%s: seed %llu (rerun with --seed %llu)\n",
              settings.shim.empty() ? "crash (kill -9)" : "power-loss", flags.c_str(),
              static_cast<unsigned long long>(settings.seed),
              static_cast<unsigned long long>(settings.seed));
  std::fflush(stdout);  // before any failure report on stderr
  Parent<typename std::remove_cvref_t<decltype(subject.value())>> parent(
      subject.value(), std::move(settings), self.string());
  return parent.run() ? 0 : 1;
} catch (const std::exception& e) {  // bad_alloc, filesystem_error: report, do not abort
  std::fprintf(stderr, "%s: exception: %s\n", argv[0], e.what());
  return 1;
}

/// checker_main() for a default-constructible subject that takes no flags of its own.
template <class Subject>
int checker_main(int argc, char** argv) {
  return checker_main(argc, argv, [](const std::vector<std::string>& args) -> result<Subject> {
    if (!args.empty()) return error(errc::invalid_argument, "unknown flag " + args.front());
    return Subject{};
  });
}

}  // namespace dengine::crash
