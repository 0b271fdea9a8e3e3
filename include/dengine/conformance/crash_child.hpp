#pragma once
/// The child side of the crash and power-loss checker (crash_harness.hpp): opens the subject's
/// engine (or KvStore) in a directory, reports what it recovered, then runs a seeded workload
/// forever, announcing each operation before it starts and acknowledging it once it is durable
/// (protocol in crash_workload.hpp). It never stops by itself: the parent kills it.

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "dengine/conformance/crash_subject.hpp"
#include "dengine/conformance/crash_workload.hpp"
#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"

namespace dengine::crash {

/// Writes one protocol line to stdout with a single write(2): the pipe delivers it whole or not
/// at all. Exits the process when the parent is gone.
inline void say(const std::string& line) {
  std::string out = line + "\n";
  const char* p = out.data();
  std::size_t n = out.size();
  while (n > 0) {
    ssize_t w = ::write(STDOUT_FILENO, p, n);
    if (w < 0) std::_Exit(3);
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

/// Reports `e` on the protocol and exits with status 2.
[[noreturn]] inline void child_fail(const error& e) {
  say("E " + e.message());
  std::_Exit(2);
}

namespace detail {
inline std::string words(char kind, std::uint64_t a) {
  return std::string(1, kind) + ' ' + std::to_string(a);
}
inline std::string words(char kind, std::uint64_t a, std::uint64_t b) {
  return words(kind, a) + ' ' + std::to_string(b);
}
inline std::string words(char kind, std::uint64_t a, std::uint64_t b, std::uint64_t c) {
  return words(kind, a, b) + ' ' + std::to_string(c);
}
}  // namespace detail

/// The log workload on `engine`: appends (sometimes replacing a suffix with a newer term), hard
/// states, compactions and resets, in proportions 80:8:9:3.
template <class E>
result<void> run_log(E& engine, std::uint64_t seed) {
  DENGINE_TRY(state, engine.load());
  say(detail::words('R', engine.first_index(), engine.last_index()));
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
      for (LogIndex i = from; i <= to; ++i) batch.push_back(make_entry(i, term));
      say(detail::words('A', from, to, term));
      DENGINE_TRYV(engine.append(std::span<const Entry>(batch)));
      DENGINE_TRYV(engine.sync());
    } else if (op < 88) {
      const HardState hs{term, pick(0, 3), pick(0, last)};
      say(detail::words('H', hs.term, hs.vote, hs.commit));
      DENGINE_TRYV(engine.save_hard_state(hs));
    } else if (op < 97) {
      const LogIndex at = pick(first, last);
      DENGINE_TRY(at_term, engine.term(at));
      say(detail::words('C', at, at_term));
      DENGINE_TRYV(engine.compact(SnapshotMeta{at, at_term, workload_membership()}));
    } else {
      const LogIndex at = last + pick(0, 50);
      ++term;
      say(detail::words('Z', at, term));
      DENGINE_TRYV(engine.reset(SnapshotMeta{at, term, workload_membership()}));
      DENGINE_TRYV(engine.sync());
    }
    say(detail::words('S', engine.last_index()));
  }
}

/// The KvStore workload on `store`: batch after batch, made durable now and then (one in ten).
template <class S>
result<void> run_kv(S& store, std::uint64_t seed) {
  say(detail::words('R', store.applied_index()));
  std::mt19937_64 rng(seed);
  for (LogIndex index = store.applied_index() + 1;; ++index) {
    say(detail::words('W', index));
    DENGINE_TRYV(store.write(make_kv_batch(index), index));
    if (std::uniform_int_distribution<int>(0, 9)(rng) == 0) {
      DENGINE_TRYV(make_kv_durable(store));
      say(detail::words('K', index));
    }
  }
}

/// Runs the workload `mode` ("log" or "kv") of `subject` on `dir` until killed; reports a
/// failure on the protocol and exits with status 2.
template <class Subject>
[[noreturn]] void run_child(const Subject& subject, const std::string& mode,
                            const std::filesystem::path& dir, std::uint64_t seed,
                            PersistenceMode persistence) {
  result<void> ran = error(errc::invalid_argument, "unknown child mode '" + mode + "'");
  if (mode == "log") {
    ran =
        with_engine(subject, dir, persistence, [&](auto& engine) { return run_log(engine, seed); });
  } else if (mode == "kv") {
    if constexpr (has_kv_store<Subject>) {
      ran = with_kv_store(subject, dir, persistence,
                          [&](auto& store) { return run_kv(store, seed); });
    }
  }
  child_fail(ran ? error(errc::invalid_argument, "the workload stopped by itself") : ran.error());
}

}  // namespace dengine::crash
