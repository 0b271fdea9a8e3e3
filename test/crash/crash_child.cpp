// dengine-crash-child: the process the crash test kills. It opens one backend's Engine (or
// KvStore) in a directory, reports what it recovered, then runs a seeded workload forever,
// announcing each operation before it starts and acknowledging it once it is durable (protocol in
// crash_workload.hpp). It never stops by itself: the parent kills it with SIGKILL.
//
//   dengine-crash-child --backend NAME --dir DIR [--mode log|kv] [--seed N]
//                       [--persistence disk_first|mem_first]

#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/core.h>

#include "crash_backends.hpp"
#include "crash_workload.hpp"

namespace {

using namespace dengine;

/// Writes one protocol line with a single write(2): the pipe delivers it whole or not at all.
void say(const std::string& line) {
  std::string out = line + "\n";
  const char* p = out.data();
  std::size_t n = out.size();
  while (n > 0) {
    ssize_t w = ::write(STDOUT_FILENO, p, n);
    if (w < 0) std::_Exit(3);  // the parent is gone
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

[[noreturn]] void fail(const error& e) {
  say("E " + e.message());
  std::_Exit(2);
}

template <class E>
result<void> run_log(E& engine, std::uint64_t seed) {
  DENGINE_TRY(state, engine.load());
  say(fmt::format("R {} {}", engine.first_index(), engine.last_index()));
  std::mt19937_64 rng(seed);
  auto pick = [&](std::uint64_t lo, std::uint64_t hi) {
    return std::uniform_int_distribution<std::uint64_t>(lo, hi)(rng);
  };
  // Terms only grow, as in Raft: start above everything already stored.
  Term term = std::max(state.hard_state.term, state.snapshot.term);
  if (engine.last_index() >= engine.first_index()) {
    DENGINE_TRY(last_term, engine.term(engine.last_index()));
    term = std::max(term, last_term);
  }
  term = std::max<Term>(term, 1);
  for (;;) {
    const LogIndex first = engine.first_index();
    const LogIndex last = engine.last_index();
    const auto op = pick(0, 99);
    if (op < 80 || last < first) {  // append, sometimes replacing a suffix with a newer term
      LogIndex from = last + 1;
      if (op < 12 && last >= first) {
        from = pick(std::max(first, last > 30 ? last - 30 : 1), last);
        ++term;
      }
      const LogIndex to = from + pick(0, 19);
      std::vector<Entry> batch;
      for (LogIndex i = from; i <= to; ++i) batch.push_back(crash::make_entry(i, term));
      say(fmt::format("A {} {} {}", from, to, term));
      DENGINE_TRYV(engine.append(std::span<const Entry>(batch)));
      DENGINE_TRYV(engine.sync());
    } else if (op < 88) {
      const HardState hs{term, pick(0, 3), pick(0, last)};
      say(fmt::format("H {} {} {}", hs.term, hs.vote, hs.commit));
      DENGINE_TRYV(engine.save_hard_state(hs));
    } else if (op < 97) {
      const LogIndex at = pick(first, last);
      DENGINE_TRY(at_term, engine.term(at));
      say(fmt::format("C {} {}", at, at_term));
      DENGINE_TRYV(engine.compact(SnapshotMeta{at, at_term, crash::workload_membership()}));
    } else {
      const LogIndex at = last + pick(0, 50);
      ++term;
      say(fmt::format("Z {} {}", at, term));
      DENGINE_TRYV(engine.reset(SnapshotMeta{at, term, crash::workload_membership()}));
      DENGINE_TRYV(engine.sync());
    }
    say(fmt::format("S {}", engine.last_index()));
  }
}

template <class S>
result<void> run_kv(S& store, std::uint64_t seed) {
  say(fmt::format("R {}", store.applied_index()));
  std::mt19937_64 rng(seed);
  for (LogIndex index = store.applied_index() + 1;; ++index) {
    say(fmt::format("W {}", index));
    DENGINE_TRYV(store.write(crash::make_kv_batch(index), index));
    if (std::uniform_int_distribution<int>(0, 9)(rng) == 0) {
      DENGINE_TRYV(crash::make_kv_durable(store));
      say(fmt::format("K {}", index));
    }
  }
}

}  // namespace

int main(int argc, char** argv) try {
  std::string backend;
  std::string dir;
  std::string mode = "log";
  std::uint64_t seed = 1;
  PersistenceMode persistence = PersistenceMode::disk_first;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string_view flag = argv[i];
    std::string_view value = argv[i + 1];
    if (flag == "--backend")
      backend = value;
    else if (flag == "--dir")
      dir = value;
    else if (flag == "--mode")
      mode = value;
    else if (flag == "--seed")
      seed = std::strtoull(argv[i + 1], nullptr, 10);
    else if (flag == "--persistence")
      persistence = value == "mem_first" ? PersistenceMode::mem_first : PersistenceMode::disk_first;
    else
      fail(error(errc::invalid_argument, fmt::format("unknown flag {}", flag)));
  }
  if (backend.empty() || dir.empty() || (mode != "log" && mode != "kv"))
    fail(error(errc::invalid_argument,
               "usage: dengine-crash-child --backend NAME --dir DIR [--mode log|kv] [--seed N] "
               "[--persistence disk_first|mem_first]"));
  auto ran = mode == "log" ? crash::with_engine(backend, dir, persistence,
                                                [&](auto& engine) { return run_log(engine, seed); })
                           : crash::with_kv_store(backend, dir, persistence,
                                                  [&](auto& store) { return run_kv(store, seed); });
  if (!ran) fail(ran.error());
  return 0;
} catch (const std::exception& e) {  // reported on the protocol, so the parent's test fails
  say(std::string("E exception: ") + e.what());
  std::_Exit(2);
} catch (...) {
  say("E unknown exception");
  std::_Exit(2);
}
