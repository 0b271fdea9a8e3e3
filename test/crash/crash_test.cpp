// dengine-crash-test: kill -9 tests of one disk backend. Runs dengine-crash-child on a directory,
// kills it with SIGKILL at a random moment (during open and recovery, mid-append, mid-roll,
// mid-compaction...), reopens the directory itself and checks the recovered state against what the
// child acknowledged (crash_workload.hpp):
//   - the engine opens without error;
//   - the log is contiguous from first to last index, every entry's bytes and type are exactly
//     the ones derived from its index and term (intact, in order, nothing after a gap);
//   - the state equals the acknowledged one, or that plus the one unacknowledged operation, or
//     (for an append) plus a prefix of it — every acknowledged entry, truncation, compaction,
//     reset and hard state is there;
// then the next run continues from the recovered state. The same for the KvStore: its applied
// index is at least the last one reported durable, at most the last one written, and its contents
// are exactly batches 1..applied.
//
// A SIGKILL keeps the page cache, so this tests process crashes; power loss is not simulated.
//
//   dengine-crash-test --backend NAME --child PATH [--kills N] [--kv-kills N] [--seed N]

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <map>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/core.h>

#include "crash_backends.hpp"
#include "crash_workload.hpp"
#include "dengine/conformance/temp_dir.hpp"

namespace {

using namespace dengine;
using crash::LogModel;
using crash::Operation;
using clock_type = std::chrono::steady_clock;

struct ChildRun {
  std::vector<std::string> lines;
  bool killed = false;  ///< true when our SIGKILL ended it (not an exit of its own)
  int status = 0;
};

/// Runs the child with `args`, SIGKILLs it after `kill_after`, and returns what it printed.
ChildRun run_child(const std::string& child, const std::vector<std::string>& args,
                   std::chrono::milliseconds kill_after) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    fmt::print(stderr, "pipe: {}\n", std::strerror(errno));
    std::exit(1);
  }
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(child.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    fmt::print(stderr, "fork: {}\n", std::strerror(errno));
    std::exit(1);
  }
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);  // dup2 clears O_CLOEXEC on the copy
    ::execv(child.c_str(), argv.data());
    std::_Exit(127);
  }
  ::close(fds[1]);
  std::string output;
  const auto deadline = clock_type::now() + kill_after;
  bool eof = false;
  bool sent_kill = false;
  char buffer[65536];
  while (!eof) {
    int timeout = -1;
    if (!sent_kill) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now())
              .count();
      if (left <= 0) {
        ::kill(pid, SIGKILL);
        sent_kill = true;
      } else {
        timeout = static_cast<int>(left);
      }
    }
    pollfd p{fds[0], POLLIN, 0};
    if (::poll(&p, 1, timeout) > 0) {
      ssize_t n = ::read(fds[0], buffer, sizeof buffer);
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

std::string describe(const LogModel& m) {
  std::string terms;
  for (std::size_t k = 0; k < m.terms.size(); ++k) {
    if (k == 0 || m.terms[k] != m.terms[k - 1])
      terms += fmt::format(" {}:t{}", m.snapshot_index + 1 + k, m.terms[k]);
  }
  return fmt::format("snapshot ({}, t{}), log [{}, {}] term runs{}, hard state ({}, {}, {})",
                     m.snapshot_index, m.snapshot_term, m.first(), m.last(),
                     terms.empty() ? " none" : terms, m.hard_state.term, m.hard_state.vote,
                     m.hard_state.commit);
}

/// Reads the whole recovered state of an engine, checking every entry's contents on the way.
template <class E>
result<LogModel> observe(E& engine) {
  LogModel m;
  DENGINE_TRY(state, engine.load());
  m.hard_state = state.hard_state;
  m.snapshot_index = state.snapshot.index;
  m.snapshot_term = state.snapshot.term;
  if (state.snapshot.index > 0 && state.snapshot.membership != crash::workload_membership())
    return error(errc::storage_corrupt, "snapshot membership differs from the one written");
  if (engine.first_index() != m.first())
    return error(errc::storage_corrupt, fmt::format("first_index {} != snapshot index {} + 1",
                                                    engine.first_index(), m.snapshot_index));
  DENGINE_TRY(snap_term, engine.term(m.snapshot_index));
  if (snap_term != m.snapshot_term)
    return error(errc::storage_corrupt, fmt::format("term({}) = {}, snapshot term {}",
                                                    m.snapshot_index, snap_term, m.snapshot_term));
  const LogIndex end = engine.last_index() + 1;
  for (LogIndex lo = engine.first_index(); lo < end;) {
    DENGINE_TRY(chunk, engine.entries(lo, end, 1U << 20));
    if (chunk.empty())
      return error(errc::storage_corrupt, fmt::format("entries({}, {}) returned nothing", lo, end));
    for (const auto& e : chunk) {
      if (e.index != lo)
        return error(errc::storage_corrupt, fmt::format("expected index {}, read {}", lo, e.index));
      if (e != crash::make_entry(e.index, e.term))
        return error(errc::storage_corrupt,
                     fmt::format("entry {} (term {}) has wrong contents", e.index, e.term));
      DENGINE_TRY(t, engine.term(e.index));
      if (t != e.term)
        return error(errc::storage_corrupt,
                     fmt::format("term({}) = {}, entry says {}", e.index, t, e.term));
      m.terms.push_back(e.term);
      ++lo;
    }
  }
  return m;
}

bool parse_op(const std::string& line, Operation& op) {
  std::istringstream in(line);
  in >> op.kind;
  if (op.kind == 'A' || op.kind == 'H') return static_cast<bool>(in >> op.a >> op.b >> op.c);
  if (op.kind == 'C' || op.kind == 'Z') return static_cast<bool>(in >> op.a >> op.b);
  return false;
}

struct Stats {
  int kills = 0;
  int killed_before_open = 0;
  int acknowledged = 0;
  int pending_applied = 0;  ///< the unacknowledged operation had (partly) happened
  int pending_absent = 0;   ///< it had not
  int torn_tails = 0;       ///< recoveries that logged a torn tail (rawfile)
  LogIndex longest_log = 0;
};

/// A run of the child that the parent killed, and how a failure names it.
struct KilledRun {
  ChildRun child;
  std::string context;
};

/// Run `run` of the child in `mode` ("log" or "kv") on `dir`, alternating DiskFirst and MemFirst,
/// killed after a random delay; its context names it after `label`. Counts the kill; nullopt,
/// after printing the failure, when the child ended by itself.
std::optional<KilledRun> killed_run(const std::string& backend, const std::string& label,
                                    const std::string& child, const std::filesystem::path& dir,
                                    const char* mode, int run, std::mt19937_64& rng, Stats& stats) {
  const auto persistence = run % 2 == 0 ? "disk_first" : "mem_first";
  const auto delay = std::chrono::milliseconds(std::uniform_int_distribution<int>(5, 300)(rng));
  const auto seed = std::to_string(rng());
  auto out = run_child(child,
                       {"--backend", backend, "--dir", dir.string(), "--mode", mode, "--seed", seed,
                        "--persistence", persistence},
                       delay);
  auto context = fmt::format("{}, run {} (child seed {}, {}, killed after {} ms)", label, run, seed,
                             persistence, delay.count());
  if (!out.killed) {
    fmt::print(stderr, "FAIL {}: the child ended by itself (status {}); its last line: {}\n",
               context, out.status, out.lines.empty() ? "(none)" : out.lines.back());
    return std::nullopt;
  }
  ++stats.kills;
  return KilledRun{std::move(out), std::move(context)};
}

/// The log test: `kills` runs of the child, each killed and checked. Returns false on a failure.
bool log_test(const std::string& backend, const std::string& child, int kills, std::mt19937_64& rng,
              Stats& stats) {
  dengine::test::TempDir dir("dengine-crash-");
  LogModel durable;
  for (int run = 0; run < kills; ++run) {
    const auto killed =
        killed_run(backend, "backend " + backend, child, dir.path(), "log", run, rng, stats);
    if (!killed) return false;
    const ChildRun& out = killed->child;
    const std::string& context = killed->context;
    LogModel model = durable;
    std::optional<Operation> pending;
    bool opened = false;
    for (const auto& line : out.lines) {
      Operation op;
      if (line.rfind("R ", 0) == 0) {
        opened = true;
        std::istringstream in(line.substr(2));
        LogIndex first = 0, last = 0;
        in >> first >> last;
        if (first != durable.first() || last != durable.last()) {
          fmt::print(stderr, "FAIL {}: the child opened [{}, {}], the parent had verified {}\n",
                     context, first, last, describe(durable));
          return false;
        }
      } else if (line.rfind("S ", 0) == 0) {
        if (!pending) {
          fmt::print(stderr, "FAIL {}: protocol: acknowledgement without an operation\n", context);
          return false;
        }
        model = crash::apply(model, *pending);
        pending.reset();
        ++stats.acknowledged;
        if (std::to_string(model.last()) != line.substr(2)) {
          fmt::print(stderr, "FAIL {}: the child reports last index {}, the model {}\n", context,
                     line.substr(2), model.last());
          return false;
        }
      } else if (line.rfind("E ", 0) == 0) {
        fmt::print(stderr, "FAIL {}: the child reported an error: {}\n", context, line.substr(2));
        return false;
      } else if (parse_op(line, op)) {
        if (pending) {
          fmt::print(stderr,
                     "FAIL {}: protocol: a second operation before the first was acknowledged\n",
                     context);
          return false;
        }
        pending = op;
      } else {
        fmt::print(stderr, "FAIL {}: unparsable line from the child: {}\n", context, line);
        return false;
      }
    }
    if (!opened) ++stats.killed_before_open;

    bool torn = false;
    LogModel observed;
    auto checked = crash::with_engine(
        backend, dir.path(), PersistenceMode::disk_first,
        [&](auto& engine) -> result<void> {
          DENGINE_TRY(m, observe(engine));
          observed = std::move(m);
          return success();
        },
        [&](std::string_view message) {
          torn = torn || message.find("torn tail") != std::string_view::npos;
        });
    if (!checked) {
      fmt::print(stderr, "FAIL {}: reopening after the kill: {}\n", context,
                 checked.error().message());
      return false;
    }
    stats.torn_tails += torn ? 1 : 0;
    const auto acceptable = crash::acceptable_states(model, pending);
    bool found = false;
    for (std::size_t k = 0; k < acceptable.size() && !found; ++k) {
      if (acceptable[k] == observed) {
        found = true;
        if (pending) ++(k == 0 ? stats.pending_absent : stats.pending_applied);
      }
    }
    if (!found) {
      fmt::print(stderr,
                 "FAIL {}: recovered state is not one the acknowledged operations allow.\n"
                 "  recovered:    {}\n  acknowledged: {}\n  pending:      {}\n",
                 context, describe(observed), describe(model),
                 pending
                     ? fmt::format("{} {} {} {}", pending->kind, pending->a, pending->b, pending->c)
                     : "none");
      return false;
    }
    durable = observed;
    stats.longest_log = std::max<LogIndex>(stats.longest_log, durable.terms.size());
  }
  return true;
}

/// The KvStore test: `kills` runs, each killed and checked against a model of batches 1..applied.
bool kv_test(const std::string& backend, const std::string& child, int kills, std::mt19937_64& rng,
             Stats& stats) {
  dengine::test::TempDir dir("dengine-crash-kv-");
  LogIndex verified = 0;
  std::map<std::string, std::string> expected;
  for (int run = 0; run < kills; ++run) {
    const auto killed =
        killed_run(backend, "backend " + backend + " kv", child, dir.path(), "kv", run, rng, stats);
    if (!killed) return false;
    const ChildRun& out = killed->child;
    const std::string& context = killed->context;
    LogIndex written = verified;
    LogIndex durable = verified;
    for (const auto& line : out.lines) {
      std::istringstream in(line.substr(std::min<std::size_t>(2, line.size())));
      LogIndex index = 0;
      in >> index;
      if (line[0] == 'R' && index != verified) {
        fmt::print(stderr,
                   "FAIL {}: the child opened at applied index {}, the parent had verified {}\n",
                   context, index, verified);
        return false;
      }
      if (line[0] == 'W') written = index;
      if (line[0] == 'K') {
        durable = index;
        ++stats.acknowledged;
      }
      if (line[0] == 'E') {
        fmt::print(stderr, "FAIL {}: the child reported an error: {}\n", context, line.substr(2));
        return false;
      }
    }
    auto checked = crash::with_kv_store(
        backend, dir.path(), PersistenceMode::disk_first, [&](auto& store) -> result<void> {
          const LogIndex applied = store.applied_index();
          if (applied < durable || applied > written)
            return error(
                errc::storage_corrupt,
                fmt::format(
                    "applied index {} outside [{} (last reported durable), {} (last written)]",
                    applied, durable, written));
          for (LogIndex i = verified + 1; i <= applied; ++i) crash::apply_kv_batch(expected, i);
          std::map<std::string, std::string> actual;
          DENGINE_TRYV(store.scan("", "", [&](std::string_view k, std::string_view v) {
            actual.emplace(std::string(k), std::string(v));
            return true;
          }));
          if (actual != expected)
            return error(errc::storage_corrupt,
                         fmt::format("contents at applied index {} differ from batches 1..{} "
                                     "({} keys, expected {})",
                                     applied, applied, actual.size(), expected.size()));
          verified = applied;
          return success();
        });
    if (!checked) {
      fmt::print(stderr, "FAIL {}: {}\n", context, checked.error().message());
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) try {
  std::string backend;
  std::string child;
  int kills = 60;
  int kv_kills = 30;
  std::uint64_t seed = std::random_device{}();
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string_view flag = argv[i];
    if (flag == "--backend")
      backend = argv[i + 1];
    else if (flag == "--child")
      child = argv[i + 1];
    else if (flag == "--kills")
      kills = std::atoi(argv[i + 1]);
    else if (flag == "--kv-kills")
      kv_kills = std::atoi(argv[i + 1]);
    else if (flag == "--seed")
      seed = std::strtoull(argv[i + 1], nullptr, 10);
  }
  if (backend.empty() || child.empty()) {
    fmt::print(stderr,
               "usage: dengine-crash-test --backend NAME --child PATH [--kills N] [--kv-kills N] "
               "[--seed N]\n");
    return 2;
  }
  fmt::print("crash test of backend {}: seed {} (rerun with --seed {})\n", backend, seed, seed);
  std::fflush(stdout);  // before any failure report on stderr
  std::mt19937_64 rng(seed);
  const auto start = clock_type::now();
  Stats log_stats;
  Stats kv_stats;
  const bool ok = log_test(backend, child, kills, rng, log_stats) &&
                  kv_test(backend, child, kv_kills, rng, kv_stats);
  const auto seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  fmt::print(
      "log: {} kills ({} before the engine had opened), {} operations acknowledged; at the kill "
      "the "
      "unacknowledged operation had happened (fully or in part) {} times, not at all {} times; {} "
      "torn tails "
      "repaired; longest log {} entries\n",
      log_stats.kills, log_stats.killed_before_open, log_stats.acknowledged,
      log_stats.pending_applied, log_stats.pending_absent, log_stats.torn_tails,
      log_stats.longest_log);
  fmt::print("kv: {} kills, {} durable points acknowledged\n", kv_stats.kills,
             kv_stats.acknowledged);
  fmt::print("{} in {:.1f} s\n", ok ? "PASS" : "FAIL", seconds);
  return ok ? 0 : 1;
} catch (const std::exception& e) {  // fmt::format_error, std::bad_alloc: report, do not abort
  std::fprintf(stderr, "dengine-crash-test: exception: %s\n", e.what());
  return 1;
} catch (...) {
  std::fprintf(stderr, "dengine-crash-test: unknown exception\n");
  return 1;
}
