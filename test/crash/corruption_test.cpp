// dengine-corruption-test: random byte flips in a data dir, through EmbeddedEngine (so that the
// backend's own checks, the data dir marker and the engine's recovery all take part).
//
// Per backend: a single node writes known data — puts (values of varied sizes, some
// overwritten), deletes, a lease with keys attached, enough entries for a snapshot and a log tail
// after it — and stops cleanly; that data dir is the pristine copy. Then each trial copies it,
// flips 1 to 8 random bytes of one randomly chosen file of it (any file: log segments or
// databases, KV files, snapshot image, marker, lock files), and in a child process starts an
// engine on it and reads everything back. A trial must end with
//   - a correct recovery: every key, value, the lease and its keys, and the revision as written; or
//   - a clean error: start, wait_ready or a read fails with an error naming the damaged file (or
//     the store directory it is in).
// Anything else fails the test: a wrong answer (a read that differs from what was written), an
// error that names neither, a crash (the child died of a signal or a sanitizer report), a hang.
// Counts per backend are printed; the exit status is non-zero if any trial failed.
//
//   dengine-corruption-test [--backend NAME] [--trials N] [--seed N] [--verbose]

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/core.h>

#include "../backends/built_backends.hpp"
#include "dengine/conformance/temp_dir.hpp"
#include "dengine/engine/embedded_engine.hpp"

namespace {

using namespace dengine;
using engine::EngineConfig;
namespace fs = std::filesystem;

/// What the data dir must hold after a correct recovery.
struct Expected {
  std::map<std::string, std::string> kvs;
  kv::LeaseId lease = 0;
  std::vector<std::string> lease_keys;  // sorted
  kv::Revision revision = 0;
};

// Exit codes of a trial's child. Anything else (a signal, a sanitizer's exit code 1) is a crash.
constexpr int recovered_code = 0;
constexpr int named_error_code = 70;
constexpr int unnamed_error_code = 71;
constexpr int wrong_answer_code = 72;
// What run_child returns for a child it had to kill after waiting too long.
constexpr int hung_code = -2;

/// A config for the node under test: fast timers, a snapshot every 16 KiB of entries, the
/// backend's tuning small where it has any (smaller files, more of them to damage).
template <class B>
EngineConfig corruption_config(const fs::path& dir) {
  EngineConfig c = EngineConfig::single_node(dir);
  c.node.tick_period = std::chrono::milliseconds(2);
  c.node.request_timeout = std::chrono::seconds(10);
  c.node.snapshot_threshold_bytes = 16U << 10;
  c.node.idle_spin = std::chrono::microseconds(0);
#if defined(DENGINE_HAVE_RAWFILE)
  if constexpr (std::is_same_v<B, rawfile::Backend>)
    c.backend_tuning = rawfile::Tuning{.segment_bytes = 64U << 10, .checkpoint_bytes = 8U << 10};
#endif
  return c;
}

/// Writes the known data into a fresh data dir and returns what it must read back.
template <class B>
std::optional<Expected> make_pristine(const fs::path& dir) {
  auto started = EmbeddedEngine<B>::start(corruption_config<B>(dir));
  if (!started) {
    fmt::print(stderr, "pristine start: {}\n", started.error().message());
    return std::nullopt;
  }
  auto& e = *started.value();
  if (auto r = e.wait_ready(std::chrono::seconds(20)); !r) {
    fmt::print(stderr, "pristine wait_ready: {}\n", r.error().message());
    return std::nullopt;
  }
  auto kv = e.client();
  Expected want;
  auto fail = [](std::string_view what, const error& err) {
    fmt::print(stderr, "pristine {}: {}\n", what, err.message());
    return std::nullopt;
  };
  for (int i = 0; i < 240; ++i) {
    const std::string key = fmt::format("key/{:03}", i % 160);
    const std::string value =
        fmt::format("{}:{}", i, std::string(static_cast<std::size_t>(i % 7) * 40, 'v'));
    if (auto r = kv.put(key, value); !r) return fail("put", r.error());
    want.kvs[key] = value;
  }
  for (int i = 0; i < 160; i += 9) {
    const std::string key = fmt::format("key/{:03}", i);
    if (auto r = kv.del(key); !r) return fail("delete", r.error());
    want.kvs.erase(key);
  }
  auto grant = kv.lease_grant(3600);
  if (!grant) return fail("lease grant", grant.error());
  want.lease = grant.value().id;
  for (const char* key : {"lease/a", "lease/b", "lease/c"}) {
    if (auto r = kv.put(key, "held", want.lease); !r) return fail("leased put", r.error());
    want.kvs[key] = "held";
    want.lease_keys.emplace_back(key);
  }
  // A tail after the last snapshot, ending with puts (a dropped last entry changes the data).
  for (int i = 0; i < 20; ++i) {
    const std::string key = fmt::format("tail/{:02}", i);
    if (auto r = kv.put(key, std::string(16, static_cast<char>('a' + i))); !r)
      return fail("tail put", r.error());
    want.kvs[key] = std::string(16, static_cast<char>('a' + i));
  }
  want.revision = e.replica().machine().current_revision();
  if (e.node_metrics().snapshots_taken.value() == 0) {
    fmt::print(stderr, "pristine: no snapshot was taken\n");
    return std::nullopt;
  }
  if (auto r = e.stop(); !r) return fail("stop", r.error());
  return want;
}

/// Reads everything back; the exit code of the trial's child.
template <class B>
int check_dir(const fs::path& dir, const Expected& want, const std::vector<std::string>& names,
              std::string& detail) {
  auto named = [&](const error& e) {
    detail = e.message();
    for (const auto& n : names)
      if (detail.find(n) != std::string::npos) return named_error_code;
    return unnamed_error_code;
  };
  auto started = EmbeddedEngine<B>::start(corruption_config<B>(dir));
  if (!started) return named(started.error());
  auto& e = *started.value();
  if (auto r = e.wait_ready(std::chrono::seconds(20)); !r) return named(r.error());
  auto kv = e.client();
  kv::RangeRequest all;
  all.key = std::string(1, '\0');
  all.range_end = std::string(1, '\0');
  auto got = kv.range(all);
  if (!got) return named(got.error());
  std::map<std::string, std::string> seen;
  for (const auto& x : got.value().kvs) seen[x.key] = x.value;
  if (seen != want.kvs) {
    detail = fmt::format("read {} keys, expected {}", seen.size(), want.kvs.size());
    for (const auto& [k, v] : want.kvs) {
      auto it = seen.find(k);
      if (it == seen.end()) {
        detail += "; missing " + k;
        break;
      }
      if (it->second != v) {
        detail += "; wrong value of " + k;
        break;
      }
    }
    return wrong_answer_code;
  }
  if (got.value().header.revision != want.revision) {
    detail = fmt::format("revision {}, expected {}", got.value().header.revision, want.revision);
    return wrong_answer_code;
  }
  auto ttl = kv.lease_time_to_live(want.lease, true);
  if (!ttl) return named(ttl.error());
  std::vector<std::string> keys = ttl.value().keys;
  std::sort(keys.begin(), keys.end());
  if (ttl.value().ttl <= 0 || keys != want.lease_keys) {
    detail = fmt::format("lease {}: ttl {}, {} keys", want.lease, ttl.value().ttl, keys.size());
    return wrong_answer_code;
  }
  if (auto r = e.stop(); !r) return named(r.error());
  return recovered_code;
}

struct Counts {
  int recovered = 0;
  int named_errors = 0;
  int unnamed_errors = 0;
  int wrong_answers = 0;
  int crashes = 0;
  int hangs = 0;
  [[nodiscard]] int failures() const { return unnamed_errors + wrong_answers + crashes + hangs; }

  /// Counts a trial whose child ended with `code` (run_child's result); returns how the report
  /// names that outcome.
  std::string add(int code) {
    struct Kind {
      int code;
      int Counts::*count;
      const char* name;
    };
    static constexpr Kind kinds[] = {
        {recovered_code, &Counts::recovered, "recovered"},
        {named_error_code, &Counts::named_errors, "clean error"},
        {unnamed_error_code, &Counts::unnamed_errors, "ERROR NOT NAMING THE FILE"},
        {wrong_answer_code, &Counts::wrong_answers, "WRONG ANSWER"},
        {hung_code, &Counts::hangs, "HANG"},
    };
    for (const Kind& k : kinds) {
      if (k.code == code) {
        ++(this->*k.count);
        return k.name;
      }
    }
    ++crashes;
    return fmt::format("CRASH (status {})", code);
  }
};

/// Every non-empty regular file under `dir`.
std::vector<fs::path> damageable_files(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& f : fs::recursive_directory_iterator(dir))
    if (f.is_regular_file() && f.file_size() > 0) out.push_back(f.path());
  std::sort(out.begin(), out.end());
  return out;
}

/// Flips `n` random bytes of `file` (each XORed with a random non-zero byte); a description.
std::string flip_bytes(const fs::path& file, int n, std::mt19937_64& rng) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  const auto size = fs::file_size(file);
  std::string what;
  for (int k = 0; k < n; ++k) {
    const auto at = static_cast<std::streamoff>(rng() % size);
    const auto mask = static_cast<char>(1 + rng() % 255);
    char c = 0;
    f.seekg(at);
    f.read(&c, 1);
    c = static_cast<char>(c ^ mask);
    f.seekp(at);
    f.write(&c, 1);
    what += fmt::format("{}{}", k == 0 ? "" : ",", at);
  }
  return what;
}

/// Runs one trial's check in a child; its outcome and (via a pipe) its detail line.
template <class B>
int run_child(const fs::path& dir, const Expected& want, const std::vector<std::string>& names,
              std::string& detail) {
  int fds[2];
  if (::pipe(fds) != 0) return -1;
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    ::close(fds[0]);
    std::string text;
    int code = unnamed_error_code;
    try {
      code = check_dir<B>(dir, want, names, text);
    } catch (const std::exception& ex) {
      text = std::string("exception: ") + ex.what();
    }
    (void)!::write(fds[1], text.data(), text.size());
    ::close(fds[1]);
    std::_Exit(code);
  }
  ::close(fds[1]);
  // A generous bound against a hung child (no trial is timed otherwise).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  int status = 0;
  bool hung = false;
  char buf[4096];
  for (;;) {
    pollfd p{fds[0], POLLIN, 0};
    if (::poll(&p, 1, 100) > 0) {
      const ssize_t n = ::read(fds[0], buf, sizeof buf);
      if (n > 0) detail.append(buf, static_cast<std::size_t>(n));
    }
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      hung = true;
      break;
    }
  }
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;)
    detail.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  if (hung) return hung_code;
  if (WIFSIGNALED(status)) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

template <class B>
bool run_backend(int trials, std::uint64_t seed, bool verbose) {
  test::TempDir root("dengine-corruption-");
  const fs::path pristine = root.path() / "pristine";
  auto want = make_pristine<B>(pristine);
  if (!want) {
    fmt::print("{}: could not write the pristine data dir\n", B::name);
    return false;
  }
  const auto files = damageable_files(pristine);
  std::mt19937_64 rng(seed);
  Counts counts;
  std::map<std::string, int> failures_by_file;
  for (int t = 0; t < trials; ++t) {
    const fs::path dir = root.path() / fmt::format("trial-{}", t);
    fs::copy(pristine, dir, fs::copy_options::recursive);
    const fs::path& original = files[rng() % files.size()];
    const fs::path rel = fs::relative(original, pristine);
    const fs::path target = dir / rel;
    const int n = 1 + static_cast<int>(rng() % 8);
    const std::string offsets = flip_bytes(target, n, rng);
    // An error names the damage if it names the file, or the store directory it is in.
    const std::vector<std::string> names{target.filename().string(), target.parent_path().string()};
    std::string detail;
    const int code = run_child<B>(dir, *want, names, detail);
    const std::string outcome = counts.add(code);
    const bool failed = code != recovered_code && code != named_error_code;
    if (failed) ++failures_by_file[rel.string()];
    if (verbose || failed)
      fmt::print("{} trial {}: {} byte(s) of {} at {}: {}{}{}\n", B::name, t, n, rel.string(),
                 offsets, outcome, detail.empty() ? "" : ": ", detail);
    std::error_code ignored;
    fs::remove_all(dir, ignored);
  }
  fmt::print(
      "{}: {} trials over {} files (seed {}): {} recovered, {} clean errors naming the file, "
      "{} errors not naming it, {} wrong answers, {} crashes, {} hangs\n",
      B::name, trials, files.size(), seed, counts.recovered, counts.named_errors,
      counts.unnamed_errors, counts.wrong_answers, counts.crashes, counts.hangs);
  for (const auto& [file, count] : failures_by_file)
    fmt::print("{}:   {} failed trial(s) damaging {}\n", B::name, count, file);
  std::fflush(stdout);
  return counts.failures() == 0;
}

int usage() {
  fmt::print(stderr,
             "usage: dengine-corruption-test [--backend rawfile|lmdb|sqlite|all] [--trials N] "
             "[--seed N] [--verbose]\n");
  return 2;
}

int run(int argc, char** argv) {
  std::string backend = "all";
  int trials = 100;
  std::uint64_t seed = 1;
  bool verbose = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--verbose") {
      verbose = true;
    } else if (i + 1 < argc && arg == "--backend") {
      backend = argv[++i];
    } else if (i + 1 < argc && arg == "--trials") {
      trials = std::atoi(argv[++i]);
    } else if (i + 1 < argc && arg == "--seed") {
      seed = std::strtoull(argv[++i], nullptr, 10);
    } else {
      return usage();
    }
  }
  if (trials <= 0) return usage();
  bool ok = true;
  bool ran = false;
  test::for_each_disk_backend([&]<class B>() {
    if (backend != "all" && backend != B::name) return;
    ran = true;
    ok = run_backend<B>(trials, seed, verbose) && ok;
  });
  if (!ran) {
    fmt::print(stderr, "dengine-corruption-test: backend '{}' is not built\n", backend);
    return 2;
  }
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    fmt::print(stderr, "dengine-corruption-test: {}\n", e.what());
    return 1;
  }
}
