/// dengine-check DATA_DIR — verifies an EmbeddedEngine data dir offline and reports damage as
/// text (docs/tools.md).
///
/// What it checks, each step in a child process of its own, so that damage which makes a
/// library fault (LMDB faults rather than report) is reported as damage instead of ending the
/// check, and one step's crash does not hide what the others find:
///  1. the marker (dengine.marker): present, checksummed, well formed; it names the backend;
///  2. the backend's own verification of both stores (lmdb::verify: every page and record;
///     sqlite::verify: integrity_check, every row's CRC32C, counts and digests), where it has one;
///  3. every record read back through the backend, as a node would at start: the hard state, every
///     log entry from the compaction point to the end (indexes contiguous, terms never falling),
///     every key of the KV store, the snapshot image (its CRC32C);
///  4. the stores against the marker, as EmbeddedEngine::start checks them (data_dir_guard.hpp):
///     a store missing, emptied or behind the marker's bounds.
///
/// Offline and read-only: the data dir's LOCK is taken for the whole check (an engine using the
/// dir makes the check refuse, and no engine can start meanwhile), and steps 2-4 run on a scratch
/// copy (--scratch, default $TMPDIR), because opening a store may write to it (LMDB's lock file,
/// SQLite's -shm, rawfile's recovery), so the copy needs free space about the size of the data dir.
///
/// Exit status: 0 sound, 1 damage found (each problem on a line naming the file), 2 the check
/// could not run (usage, the data dir in use or unreadable).

#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/engine/data_dir_guard.hpp"
#include "dengine/engine/data_dir_marker.hpp"
#include "dengine/engine/embedded_engine.hpp"
#include "dengine/node/snapshot_store.hpp"
#include "dengine/storage/file_descriptor.hpp"
#ifdef DENGINE_HAVE_RAWFILE
#include "dengine/backends/rawfile.hpp"
#endif
#ifdef DENGINE_HAVE_LMDB
#include "dengine/backends/lmdb.hpp"
#endif
#ifdef DENGINE_HAVE_SQLITE
#include "dengine/backends/sqlite.hpp"
#include "dengine/backends/sqlite/verify.hpp"
#endif

namespace fs = std::filesystem;

namespace {

using namespace dengine;  // dengine's own tool: errc, error, result, LogIndex, Term, ...
using engine::DataDirGuard;
using engine::DataDirMarker;

/// What one step found: problems are damage; `cannot` says the step could not run at all.
struct StepOutcome {
  std::vector<std::string> facts;     // what was found sound, for the report
  std::vector<std::string> notes;     // what the backend said while reading (e.g. a torn tail)
  std::vector<std::string> problems;  // damage, one sentence each naming the file
  std::optional<std::string> cannot;  // the step could not run (not damage)

  void damage(const error& e) { problems.push_back(e.detail); }
  void note(std::string s) { facts.push_back(std::move(s)); }
};

/// Writes all of `text` to `fd` (a pipe), retrying short writes.
void write_all(int fd, std::string_view text) {
  while (!text.empty()) {
    const ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    text.remove_prefix(static_cast<std::size_t>(n));
  }
}

/// Appends what child `pid` writes to `fd` to `text`, until the child closes it; false, after
/// killing the child, when it has not done so within `limit`.
bool read_child_output(int fd, pid_t pid, std::chrono::seconds limit, std::string& text) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      ::kill(pid, SIGKILL);
      return false;
    }
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(std::min<std::int64_t>(left.count(), 1000)));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    if (dengine::storage::read_append(fd, text) <= 0) return true;
  }
}

/// Runs `step` in a child process and returns what it found. The child sends its outcome as
/// lines "F <fact>", "P <problem>", "C <cannot>" (newlines inside a line escaped as " | ");
/// a child killed by a signal is a problem naming `what` and the signal; one silent for
/// `limit` is killed and reported as unable to finish.
StepOutcome run_isolated(const std::string& what, std::chrono::seconds limit,
                         const std::function<StepOutcome()>& step) {
  StepOutcome out;
  int fds[2];
  if (::pipe(fds) != 0) {
    out.cannot = "cannot create a pipe: " + std::string(std::strerror(errno));
    return out;
  }
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    out.cannot = "cannot fork: " + std::string(std::strerror(errno));
    ::close(fds[0]);
    ::close(fds[1]);
    return out;
  }
  if (pid == 0) {
    ::close(fds[0]);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    // A fault in a damaged file must kill this child with its signal, not run a handler.
    for (int sig : {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL}) std::signal(sig, SIG_DFL);
    const StepOutcome found = step();
    auto line = [&](char kind, std::string text) {
      std::replace(text.begin(), text.end(), '\n', ' ');
      write_all(fds[1], std::string(1, kind) + " " + text + "\n");
    };
    for (const auto& f : found.facts) line('F', f);
    for (const auto& n : found.notes) line('N', n);
    for (const auto& p : found.problems) line('P', p);
    if (found.cannot) line('C', *found.cannot);
    ::close(fds[1]);
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string text;
  const bool timed_out = !read_child_output(fds[0], pid, limit, text);
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    const std::string_view l(text.data() + pos, end - pos);
    pos = end + 1;
    if (l.size() < 2) continue;
    const std::string body(l.substr(2));
    if (l[0] == 'F') out.facts.push_back(body);
    if (l[0] == 'N') out.notes.push_back(body);
    if (l[0] == 'P') out.problems.push_back(body);
    if (l[0] == 'C') out.cannot = body;
  }
  if (timed_out) {
    out.cannot = what + ": no answer within " + std::to_string(limit.count()) +
                 " s (raise --timeout for a large data dir)";
  } else if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    if (sig == SIGKILL || sig == SIGTERM)
      out.cannot = what + ": the checking process was killed from outside (" +
                   std::string(::strsignal(sig)) + ")";
    else
      out.problems.push_back(what + ": reading it crashed the checking process (" +
                             std::string(::strsignal(sig)) +
                             "): the file is damaged in a way the library cannot report");
  }
  return out;
}

/// Copies the data dir (all but its LOCK file) to `to`, keeping the layout.
result<void> copy_data_dir(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::create_directories(to, ec);
  if (ec) return error(errc::io_error, "cannot create " + to.string() + ": " + ec.message());
  for (auto it = fs::recursive_directory_iterator(from, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const fs::path rel = fs::relative(it->path(), from, ec);
    if (ec) break;
    if (rel == DataDirGuard::lock_file_name) continue;
    if (it->is_directory(ec)) {
      fs::create_directories(to / rel, ec);
    } else if (it->is_regular_file(ec)) {
      fs::copy_file(it->path(), to / rel, ec);
    }
    if (ec)
      return error(errc::io_error, "cannot copy " + it->path().string() + " to " +
                                       (to / rel).string() + ": " + ec.message());
  }
  if (ec) return error(errc::io_error, "cannot read " + from.string() + ": " + ec.message());
  return dengine::success();
}

/// The backend whose files `dir` holds, when the marker does not say (none, or unreadable).
std::string backend_from_files(const fs::path& dir) {
  std::error_code ec;
  if (fs::exists(dir / "raft" / "data.mdb", ec) || fs::exists(dir / "kv" / "data.mdb", ec))
    return "lmdb";
  if (fs::exists(dir / "raft" / "dengine.sqlite3", ec) ||
      fs::exists(dir / "kv" / "dengine.sqlite3", ec))
    return "sqlite";
  if (fs::is_directory(dir / "raft", ec) || fs::is_directory(dir / "kv", ec)) return "rawfile";
  return {};
}

/// Step 3 for one backend B, on the scratch copy: every record read back through the backend.
template <class B>
StepOutcome read_back(const fs::path& copy, const std::optional<DataDirMarker>& marker,
                      typename B::tuning tuning) {
  StepOutcome out;
  if constexpr (requires { tuning.create_if_missing; }) tuning.create_if_missing = false;
  // What recovery says it did (a torn tail dropped) is reported as a note.
  if constexpr (requires { tuning.log; })
    tuning.log = [&out](std::string_view line) { out.notes.emplace_back(line); };
  const auto mode = dengine::PersistenceMode::disk_first;
  auto storage = B::open_storage(copy / "raft", mode, tuning);
  if (!storage) {
    out.damage(storage.error());
  } else {
    auto& s = *storage.value();
    auto recovered = s.load();
    if (!recovered) {
      out.damage(recovered.error());
    } else {
      const auto& hs = recovered.value().hard_state;
      LogIndex expect = s.first_index();
      Term last_term = recovered.value().snapshot.term;
      std::uint64_t count = 0;
      bool ok = true;
      while (ok && expect <= s.last_index()) {
        auto batch = s.entries(expect, s.last_index() + 1, std::size_t{4} << 20);
        if (!batch) {
          out.damage(batch.error());
          break;
        }
        for (const auto& e : batch.value()) {
          if (e.index != expect || e.term < last_term) {
            out.problems.push_back("raft store " + (copy / "raft").string() + ": entry " +
                                   std::to_string(expect) + " reads back as index " +
                                   std::to_string(e.index) + " term " + std::to_string(e.term) +
                                   " after term " + std::to_string(last_term));
            ok = false;
            break;
          }
          last_term = e.term;
          ++expect;
          ++count;
        }
      }
      // The log alone against the marker, so that a log cut short (rawfile drops damage to its
      // last records as a torn tail) is reported even when the KV store does not open.
      auto image = dengine::node::FileSnapshotStore::open(copy / "snap");
      LogIndex image_index = 0;
      if (image) {
        if (auto peeked = image.value().peek_index()) image_index = peeked.value();
      }
      if (marker && marker->state == DataDirMarker::State::serving &&
          std::max(s.last_index(), image_index) < marker->log_at_least) {
        out.problems.push_back("raft store " + (copy / "raft").string() + ": the log ends at " +
                               std::to_string(s.last_index()) + ", but the marker " +
                               (copy / DataDirMarker::file_name).string() +
                               " says it reached index " + std::to_string(marker->log_at_least) +
                               ": committed entries are missing");
        ok = false;
      }
      if (ok && out.problems.empty())
        out.note("log: " + std::to_string(count) + " entries readable (" +
                 std::to_string(s.first_index()) + ".." + std::to_string(s.last_index()) +
                 "), compacted through " + std::to_string(recovered.value().snapshot.index) +
                 "; hard state term " + std::to_string(hs.term) + ", vote " +
                 std::to_string(hs.vote) + ", commit " + std::to_string(hs.commit));
    }
  }
  auto kv = B::open_kv_store(copy / "kv", mode, tuning);
  if (!kv) {
    out.damage(kv.error());
  } else {
    std::uint64_t keys = 0;
    std::uint64_t bytes = 0;
    auto scanned = kv.value()->scan("", "", [&](std::string_view k, std::string_view v) {
      ++keys;
      bytes += k.size() + v.size();
      return true;
    });
    if (!scanned)
      out.damage(scanned.error());
    else
      out.note("kv store: " + std::to_string(keys) + " records readable (" + std::to_string(bytes) +
               " bytes), applied index " + std::to_string(kv.value()->applied_index()));
  }
  return out;
}

/// Step 4 for one backend B, on the scratch copy: the stores against the marker, as a start
/// checks them.
template <class B>
StepOutcome against_marker(const fs::path& copy, const DataDirMarker& marker,
                           typename B::tuning tuning) {
  StepOutcome out;
  if constexpr (requires { tuning.create_if_missing; }) tuning.create_if_missing = false;
  if constexpr (requires { tuning.log; }) tuning.log = [](std::string_view) {};
  auto guard = DataDirGuard::open_marker(copy, marker.backend, marker.member_id, marker.cluster_id);
  if (!guard) {
    out.damage(guard.error());
    return out;
  }
  if (auto dirs = guard.value().check_store_dirs({copy / "raft", copy / "kv"}); !dirs) {
    out.damage(dirs.error());
    return out;
  }
  const auto mode = dengine::PersistenceMode::disk_first;
  auto storage = B::open_storage(copy / "raft", mode, tuning);
  auto kv = B::open_kv_store(copy / "kv", mode, tuning);
  auto snapshots = dengine::node::FileSnapshotStore::open(copy / "snap");
  if (!storage || !kv || !snapshots) {
    // Step 3 reports why a store does not open; only say here that this check could not run.
    out.cannot = "the stores could not be opened to compare them with the marker";
    return out;
  }
  auto image = snapshots.value().peek_index();
  if (!image) {
    out.damage(image.error());
    return out;
  }
  if (auto checked =
          guard.value().check_stores(*storage.value(), *kv.value(), image.value(),
                                     snapshots.value().path(), copy / "raft", copy / "kv");
      !checked) {
    out.damage(checked.error());
    return out;
  }
  out.note("the stores reach the marker's bounds (applied >= " +
           std::to_string(marker.applied_at_least) +
           ", log >= " + std::to_string(marker.log_at_least) + ")");
  return out;
}

/// The snapshot image on the scratch copy: absent, or whole with a matching CRC32C.
StepOutcome check_snapshot(const fs::path& copy) {
  StepOutcome out;
  std::error_code ec;
  if (!fs::exists(copy / "snap", ec)) {
    out.note("snapshot: none (no snap directory)");
    return out;
  }
  auto store = dengine::node::FileSnapshotStore::open(copy / "snap");
  if (!store) {
    out.damage(store.error());
    return out;
  }
  auto loaded = store.value().load();
  if (!loaded) {
    out.damage(loaded.error());
  } else if (!loaded.value()) {
    out.note("snapshot: none");
  } else {
    out.note("snapshot: image at index " + std::to_string(loaded.value()->meta.index) + ", " +
             std::to_string(loaded.value()->data.size()) + " bytes, checksum sound");
  }
  return out;
}

/// Step 2 for the backends with a verification walk of their own.
StepOutcome backend_verify(const std::string& backend, const fs::path& copy) {
  StepOutcome out;
  for (const char* part : {"raft", "kv"}) {
    const fs::path dir = copy / part;
#ifdef DENGINE_HAVE_LMDB
    if (backend == "lmdb") {
      const auto report = dengine::lmdb::verify(dir);
      if (report.code == errc::io_error && !report.ok()) {
        out.damage(report.to_error());  // a missing data.mdb is lost data here
      } else if (!report.ok()) {
        for (const auto& p : report.problems)
          out.problems.push_back(report.file.string() + ": " + p);
        if (report.problems_omitted > 0)
          out.problems.push_back(report.file.string() + ": and " +
                                 std::to_string(report.problems_omitted) + " more problems");
      } else {
        out.note(std::string(part) + ": " + report.file.string() + ": " +
                 std::to_string(report.pages) + " pages and " +
                 std::to_string(report.log_records + report.kv_records + report.meta_records) +
                 " records verified");
      }
    }
#endif
#ifdef DENGINE_HAVE_SQLITE
    if (backend == "sqlite") {
      if (auto verified = dengine::sqlite::verify(dir); !verified)
        out.damage(verified.error());
      else
        out.note(std::string(part) + ": " + dengine::sqlite::database_file(dir).string() +
                 ": integrity check, every row's checksum, counts and digests sound");
    }
#endif
    (void)dir;
  }
  return out;
}

template <class B>
void run_backend_steps(const fs::path& copy, const std::optional<DataDirMarker>& marker,
                       std::chrono::seconds limit,
                       std::vector<std::pair<std::string, StepOutcome>>& steps) {
  typename B::tuning tuning{};
  if constexpr (requires { tuning.verify_at_open; }) tuning.verify_at_open = false;
  steps.emplace_back("records", run_isolated("reading every record of " + copy.string(), limit,
                                             [&] { return read_back<B>(copy, marker, tuning); }));
  if (marker && marker->state == DataDirMarker::State::serving)
    steps.emplace_back("marker bounds",
                       run_isolated("comparing the stores with the marker", limit,
                                    [&] { return against_marker<B>(copy, *marker, tuning); }));
}

int usage(const char* argv0, int code) {
  std::fprintf(code == 0 ? stdout : stderr,
               "usage: %s [--scratch DIR] [--timeout SECONDS] [--backend NAME] DATA_DIR\n"
               "Verifies an EmbeddedEngine data dir offline (the engine must not be running).\n"
               "  --scratch DIR      where the scratch copy goes (default: $TMPDIR or /tmp)\n"
               "  --timeout SECONDS  limit for each step (default 600)\n"
               "  --backend NAME     the backend, when the marker cannot say (rawfile, lmdb, "
               "sqlite)\n"
               "Exit status: 0 sound, 1 damage found, 2 the check could not run.\n",
               argv0);
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  fs::path data_dir;
  fs::path scratch_root;
  std::string backend_arg;
  std::chrono::seconds limit{600};
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    if (a == "--help" || a == "-h") return usage(argv[0], 0);
    if (a == "--scratch" || a == "--timeout" || a == "--backend") {
      const char* v = value();
      if (v == nullptr) return usage(argv[0], 2);
      if (a == "--scratch") scratch_root = v;
      if (a == "--backend") backend_arg = v;
      if (a == "--timeout") {
        char* end = nullptr;
        const long s = std::strtol(v, &end, 10);
        if (end == v || *end != '\0' || s <= 0) {
          std::fprintf(stderr, "dengine-check: --timeout wants a positive number of seconds\n");
          return 2;
        }
        limit = std::chrono::seconds(s);
      }
    } else if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "dengine-check: unknown option %s\n", argv[i]);
      return usage(argv[0], 2);
    } else if (data_dir.empty()) {
      data_dir = a;
    } else {
      return usage(argv[0], 2);
    }
  }
  if (data_dir.empty()) return usage(argv[0], 2);
  auto cannot = [&](const std::string& why) {
    std::printf("dengine-check: %s: cannot check: %s\n", data_dir.c_str(), why.c_str());
    return 2;
  };
  std::error_code ec;
  if (!fs::is_directory(data_dir, ec)) return cannot("not a directory");

  // The engine's own lock: no engine may hold the dir while it is checked, nor start meanwhile.
  auto lock = dengine::engine::detail::DirLock::acquire(data_dir);
  if (!lock) return cannot(lock.error().detail);

  std::vector<std::pair<std::string, StepOutcome>> steps;
  std::optional<DataDirMarker> marker;
  {
    StepOutcome m;
    auto read = DataDirMarker::read(data_dir);
    if (!read) {
      m.damage(read.error());
    } else if (!read.value()) {
      m.problems.push_back("marker " + (data_dir / DataDirMarker::file_name).string() +
                           " is missing: this is not an EmbeddedEngine data dir, or it was "
                           "removed (an engine refuses to start without it)");
    } else {
      marker = *read.value();
      m.note("marker: backend " + marker->backend + ", member " +
             std::to_string(marker->member_id) + ", cluster " + std::to_string(marker->cluster_id) +
             ", " + (marker->state == DataDirMarker::State::serving ? "serving" : "creating") +
             ", applied >= " + std::to_string(marker->applied_at_least) +
             ", log >= " + std::to_string(marker->log_at_least));
    }
    steps.emplace_back("marker", std::move(m));
  }
  std::string backend = backend_arg;
  if (backend.empty() && marker) backend = marker->backend;
  if (backend.empty()) backend = backend_from_files(data_dir);
  if (!backend_arg.empty() && marker && marker->backend != backend_arg)
    steps.front().second.problems.push_back(
        "marker " + (data_dir / DataDirMarker::file_name).string() + " names backend '" +
        marker->backend + "', not '" + backend_arg + "'");
  if (backend.empty()) return cannot("no marker and no store files: which backend wrote it?");

  if (scratch_root.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    scratch_root = tmp != nullptr && *tmp != '\0' ? fs::path(tmp) : fs::path("/tmp");
  }
  const fs::path copy =
      scratch_root / ("dengine-check-" + std::to_string(::getpid()) + "-" +
                      std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
  if (auto copied = copy_data_dir(data_dir, copy); !copied) {
    fs::remove_all(copy, ec);
    return cannot(copied.error().detail);
  }

  bool known = false;
  bool verified_damaged = false;
  if (backend == "lmdb" || backend == "sqlite") {
    steps.emplace_back("backend verify",
                       run_isolated("verifying the " + backend + " stores of " + copy.string(),
                                    limit, [&] { return backend_verify(backend, copy); }));
    verified_damaged = !steps.back().second.problems.empty();
  }
  // Reading back through the backend would report the same damage again (an open checks what
  // the walk checked): only the snapshot image is left to look at then.
  const bool read_stores = !verified_damaged;
#ifdef DENGINE_HAVE_RAWFILE
  if (backend == "rawfile") {
    known = true;
    if (read_stores) run_backend_steps<dengine::rawfile::Backend>(copy, marker, limit, steps);
  }
#endif
#ifdef DENGINE_HAVE_LMDB
  if (backend == "lmdb") {
    known = true;
    if (read_stores) run_backend_steps<dengine::lmdb::Backend>(copy, marker, limit, steps);
  }
#endif
#ifdef DENGINE_HAVE_SQLITE
  if (backend == "sqlite") {
    known = true;
    if (read_stores) run_backend_steps<dengine::sqlite::Backend>(copy, marker, limit, steps);
  }
#endif
  if (known)
    steps.emplace_back("snapshot", run_isolated("reading the snapshot image", limit,
                                                [&] { return check_snapshot(copy); }));
  fs::remove_all(copy, ec);
  if (!known) return cannot("this build has no backend '" + backend + "'");

  // The copy's paths are the scratch dir's; the report names the data dir's files.
  const std::string copy_prefix = copy.string();
  auto in_data_dir = [&](std::string s) {
    for (std::size_t at = s.find(copy_prefix); at != std::string::npos;
         at = s.find(copy_prefix, at))
      s.replace(at, copy_prefix.size(), data_dir.string());
    return s;
  };
  std::size_t problems = 0;
  std::optional<std::string> incomplete;
  std::printf("dengine-check: %s (backend %s)\n", data_dir.c_str(), backend.c_str());
  for (const auto& [name, outcome] : steps) {
    for (const auto& f : outcome.facts) std::printf("  ok       %s\n", in_data_dir(f).c_str());
    for (const auto& n : outcome.notes) std::printf("  note     %s\n", in_data_dir(n).c_str());
    for (const auto& p : outcome.problems) std::printf("  DAMAGED  %s\n", in_data_dir(p).c_str());
    if (outcome.cannot) {
      std::printf("  SKIPPED  %s: %s\n", name.c_str(), in_data_dir(*outcome.cannot).c_str());
      if (!incomplete) incomplete = name;
    }
    problems += outcome.problems.size();
  }
  if (problems > 0) {
    std::printf("result: damaged (%zu problem%s)\n", problems, problems == 1 ? "" : "s");
    return 1;
  }
  if (incomplete) {
    std::printf("result: incomplete (step '%s' could not run)\n", incomplete->c_str());
    return 2;
  }
  std::printf("result: sound\n");
  return 0;
}
