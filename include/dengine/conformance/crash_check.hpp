#pragma once
/// The parent side's judgement in the crash and power-loss checker (crash_harness.hpp): what a
/// killed child's lines say was acknowledged, what the reopened store holds, and whether that is
/// a state the acknowledgements allow (crash_workload.hpp):
///   - the store opens without error;
///   - the log is contiguous from first to last index, every entry's bytes and type are exactly
///     the ones derived from its index and term (intact, in order, nothing after a gap);
///   - the state equals the acknowledged one, or that plus the one unacknowledged operation, or
///     (for an append) plus a prefix of it — every acknowledged entry, truncation, compaction,
///     reset and hard state is there;
///   - a KvStore's applied index is at least the last one reported durable and at most the last
///     one written, and its contents are exactly batches 1..applied.

#include <cstdint>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "dengine/conformance/crash_workload.hpp"
#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"

namespace dengine::crash {

namespace detail {
/// Its arguments streamed into one string.
template <class... A>
std::string cat(const A&... a) {
  std::ostringstream out;
  (out << ... << a);
  return out.str();
}

inline error corrupt(std::string what) { return error(errc::storage_corrupt, std::move(what)); }
}  // namespace detail

/// One line summary of a log model, for failure reports.
inline std::string describe(const LogModel& m) {
  std::string terms;
  for (std::size_t k = 0; k < m.terms.size(); ++k) {
    if (k == 0 || m.terms[k] != m.terms[k - 1])
      terms += detail::cat(' ', m.snapshot_index + 1 + k, ":t", m.terms[k]);
  }
  return detail::cat("snapshot (", m.snapshot_index, ", t", m.snapshot_term, "), log [", m.first(),
                     ", ", m.last(), "] term runs", terms.empty() ? " none" : terms,
                     ", hard state (", m.hard_state.term, ", ", m.hard_state.vote, ", ",
                     m.hard_state.commit, ")");
}

inline std::string describe(const std::optional<Operation>& op) {
  if (!op) return "none";
  return detail::cat(op->kind, ' ', op->a, ' ', op->b, ' ', op->c);
}

/// Reads the whole recovered state of an engine, checking every entry's contents on the way.
template <class E>
result<LogModel> observe(E& engine) {
  using detail::cat;
  LogModel m;
  DENGINE_TRY(state, engine.load());
  m.hard_state = state.hard_state;
  m.snapshot_index = state.snapshot.index;
  m.snapshot_term = state.snapshot.term;
  if (state.snapshot.index > 0 && state.snapshot.membership != workload_membership())
    return detail::corrupt("snapshot membership differs from the one written");
  if (engine.first_index() != m.first())
    return detail::corrupt(
        cat("first_index ", engine.first_index(), " != snapshot index ", m.snapshot_index, " + 1"));
  DENGINE_TRY(snap_term, engine.term(m.snapshot_index));
  if (snap_term != m.snapshot_term)
    return detail::corrupt(
        cat("term(", m.snapshot_index, ") = ", snap_term, ", snapshot term ", m.snapshot_term));
  const LogIndex end = engine.last_index() + 1;
  for (LogIndex lo = engine.first_index(); lo < end;) {
    DENGINE_TRY(chunk, engine.entries(lo, end, 1U << 20));
    if (chunk.empty()) return detail::corrupt(cat("entries(", lo, ", ", end, ") returned nothing"));
    for (const auto& e : chunk) {
      if (e.index != lo) return detail::corrupt(cat("expected index ", lo, ", read ", e.index));
      if (e != make_entry(e.index, e.term))
        return detail::corrupt(cat("entry ", e.index, " (term ", e.term, ") has wrong contents"));
      DENGINE_TRY(t, engine.term(e.index));
      if (t != e.term)
        return detail::corrupt(cat("term(", e.index, ") = ", t, ", entry says ", e.term));
      m.terms.push_back(e.term);
      ++lo;
    }
  }
  return m;
}

/// What the lines of one killed log run say.
struct LogRun {
  LogModel acknowledged;             ///< the verified state plus every acknowledged operation
  std::optional<Operation> pending;  ///< announced, not acknowledged
  bool opened = false;               ///< the child reported its recovered state
  int acknowledgements = 0;
};

/// Replays `lines` on `verified` (the state checked after the previous run): the child must
/// have opened exactly that state, and follow the protocol.
inline result<LogRun> read_log_run(const std::vector<std::string>& lines,
                                   const LogModel& verified) {
  using detail::cat;
  auto protocol = [](std::string what) { return error(errc::invalid_argument, std::move(what)); };
  LogRun run;
  run.acknowledged = verified;
  for (const auto& line : lines) {
    std::istringstream in(line);
    char kind = 0;
    in >> kind;
    Operation op{kind};
    if (kind == 'R') {
      LogIndex first = 0;
      LogIndex last = 0;
      in >> first >> last;
      if (first != verified.first() || last != verified.last())
        return detail::corrupt(cat("the child opened [", first, ", ", last,
                                   "], the parent had verified ", describe(verified)));
      run.opened = true;
    } else if (kind == 'S') {
      if (!run.pending) return protocol("protocol: acknowledgement without an operation");
      run.acknowledged = apply(run.acknowledged, *run.pending);
      run.pending.reset();
      ++run.acknowledgements;
      if (std::to_string(run.acknowledged.last()) != line.substr(2))
        return detail::corrupt(cat("the child reports last index ", line.substr(2), ", the model ",
                                   run.acknowledged.last()));
    } else if (kind == 'E') {
      return error(errc::io_error, "the child reported an error: " + line.substr(2));
    } else if (((kind == 'A' || kind == 'H') && in >> op.a >> op.b >> op.c) ||
               ((kind == 'C' || kind == 'Z') && in >> op.a >> op.b)) {
      if (run.pending)
        return protocol("protocol: a second operation before the first was acknowledged");
      run.pending = op;
    } else {
      return protocol("unparsable line from the child: " + line);
    }
  }
  return run;
}

/// Which acceptable state `observed` is: 0 the acknowledged one (the pending operation had not
/// happened), more when it had (fully or in part); an error naming all three when none.
inline result<std::size_t> judge_log(const LogModel& observed, const LogRun& run) {
  const auto acceptable = acceptable_states(run.acknowledged, run.pending);
  for (std::size_t k = 0; k < acceptable.size(); ++k)
    if (acceptable[k] == observed) return k;
  return detail::corrupt(
      detail::cat("recovered state is not one the acknowledged operations allow.\n  recovered:    ",
                  describe(observed), "\n  acknowledged: ", describe(run.acknowledged),
                  "\n  pending:      ", describe(run.pending)));
}

/// What the lines of one killed KV run say.
struct KvRun {
  LogIndex written = 0;  ///< last batch announced
  LogIndex durable = 0;  ///< last batch acknowledged durable
  int acknowledgements = 0;
};

/// Reads `lines`; the child must have opened at applied index `verified`.
inline result<KvRun> read_kv_run(const std::vector<std::string>& lines, LogIndex verified) {
  KvRun run{verified, verified};
  for (const auto& line : lines) {
    std::istringstream in(line.substr(std::min<std::size_t>(2, line.size())));
    LogIndex index = 0;
    in >> index;
    const char kind = line.empty() ? '\0' : line[0];
    if (kind == 'R' && index != verified)
      return detail::corrupt(detail::cat("the child opened at applied index ", index,
                                         ", the parent had verified ", verified));
    if (kind == 'W') run.written = index;
    if (kind == 'K') {
      run.durable = index;
      ++run.acknowledgements;
    }
    if (kind == 'E') return error(errc::io_error, "the child reported an error: " + line.substr(2));
  }
  return run;
}

/// Checks a reopened KvStore against `run`; `expected` holds batches 1..`verified` and is
/// brought up to the store's applied index, which it returns.
template <class S>
result<LogIndex> check_kv(const S& store, const KvRun& run, LogIndex verified,
                          std::map<std::string, std::string>& expected) {
  using detail::cat;
  const LogIndex applied = store.applied_index();
  if (applied < run.durable || applied > run.written)
    return detail::corrupt(cat("applied index ", applied, " outside [", run.durable,
                               " (last reported durable), ", run.written, " (last written)]"));
  for (LogIndex i = verified + 1; i <= applied; ++i) apply_kv_batch(expected, i);
  std::map<std::string, std::string> actual;
  DENGINE_TRYV(store.scan("", "", [&](std::string_view k, std::string_view v) {
    actual.emplace(std::string(k), std::string(v));
    return true;
  }));
  if (actual != expected)
    return detail::corrupt(cat("contents at applied index ", applied, " differ from batches 1..",
                               applied, " (", actual.size(), " keys, expected ", expected.size(),
                               ")"));
  return applied;
}

}  // namespace dengine::crash
