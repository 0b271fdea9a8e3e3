#pragma once
/// The workload of the crash and power-loss checker (crash_harness.hpp, docs/power-loss.md) and
/// how its parent judges the outcome: entry contents and KV batches derived from their index
/// (so the parent recomputes them), the line protocol between child and parent, and the log
/// model the parent replays.
///
/// Protocol (child → parent, one line per event, each one write(2) of < PIPE_BUF bytes, so a kill
/// never leaves half a line):
///   log mode  R <first> <last>          opened (after recovery)
///             A <from> <to> <term>      about to append [from, to] with `term` and sync
///             C <index> <term>          about to compact at index
///             Z <index> <term>          about to reset to a snapshot at index, then sync
///             H <term> <vote> <commit>  about to save the hard state
///             S <last>                  the announced operation returned success (durable)
///   kv mode   R <applied>               opened
///             W <index>                 about to write batch `index`
///             K <index>                 everything up to batch `index` is durable
///   both      E <message>               an error; the child exits with status 2
/// At most one announced operation is unacknowledged when the child dies: the parent accepts the
/// state before it, after it, or (for an append) any prefix of its records.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "dengine/core/types.hpp"
#include "dengine/storage/write_batch.hpp"

namespace dengine::crash {

/// splitmix64: a good 64-bit mix, so contents depend on every bit of (index, term).
inline std::uint64_t mix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ULL;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

/// Entry `index` of term `term`: its size (0..1499 bytes, now and then 20000), type and bytes all
/// follow from the pair.
inline Entry make_entry(LogIndex index, Term term) {
  std::uint64_t h = mix(index * 0x100000001B3ULL ^ mix(term));
  std::size_t size = h % 64 == 0 ? 20000 : (h >> 8) % 1500;
  Entry e{term, index, static_cast<EntryType>((h >> 24) % 3), std::string(size, '\0')};
  std::uint64_t s = h;
  for (std::size_t k = 0; k < size; k += 8) {
    s = mix(s);
    for (std::size_t b = 0; b < 8 && k + b < size; ++b)
      e.data[k + b] = static_cast<char>(s >> (8 * b));
  }
  return e;
}

/// The membership every snapshot meta of the workload carries.
inline Membership workload_membership() { return Membership{{1}, {}}; }

/// KV batch `index`: puts one of 64 keys with a value of index-derived size, and every fifth
/// batch erases another key.
inline WriteBatch make_kv_batch(LogIndex index) {
  WriteBatch b;
  std::uint64_t h = mix(index);
  b.put("key-" + std::to_string(h % 64),
        std::to_string(index) + ":" + std::string((h >> 8) % 700, 'v'));
  if (index % 5 == 0) b.erase("key-" + std::to_string((h >> 20) % 64));
  return b;
}

/// Applies KV batch `index` to a model map.
inline void apply_kv_batch(std::map<std::string, std::string>& map, LogIndex index) {
  for (const auto& w : make_kv_batch(index).writes) {
    if (w.kind == KvWrite::Kind::put) {
      map[w.key] = w.value;
    } else {
      map.erase(w.key);
    }
  }
}

/// The log as the parent knows it: terms of [first, last], the compaction point, the hard state.
struct LogModel {
  LogIndex snapshot_index = 0;
  Term snapshot_term = 0;
  std::vector<Term> terms;  ///< terms[k] is the term of index snapshot_index + 1 + k
  HardState hard_state;

  [[nodiscard]] LogIndex first() const { return snapshot_index + 1; }
  [[nodiscard]] LogIndex last() const { return snapshot_index + terms.size(); }
  friend bool operator==(const LogModel&, const LogModel&) = default;
};

/// One announced operation.
struct Operation {
  char kind = 0;  ///< 'A', 'C', 'Z' or 'H'
  std::uint64_t a = 0, b = 0, c = 0;
};

/// `model` after `op` (an append of [op.a, op.b] with term op.c, and so on).
inline LogModel apply(LogModel model, const Operation& op) {
  switch (op.kind) {
    case 'A':
      model.terms.resize(op.a - model.first());
      for (LogIndex i = op.a; i <= op.b; ++i) model.terms.push_back(op.c);
      break;
    case 'C':
      model.terms.erase(
          model.terms.begin(),
          model.terms.begin() + static_cast<std::ptrdiff_t>(op.a - model.snapshot_index));
      model.snapshot_index = op.a;
      model.snapshot_term = op.b;
      break;
    case 'Z':
      model.terms.clear();
      model.snapshot_index = op.a;
      model.snapshot_term = op.b;
      break;
    case 'H': model.hard_state = HardState{op.a, op.b, op.c}; break;
    default: break;
  }
  return model;
}

/// Every state the engine may legitimately show after a crash with `pending` unacknowledged:
/// before it, after it, and for an append every prefix of its records (the truncation alone,
/// then one more entry at a time).
inline std::vector<LogModel> acceptable_states(const LogModel& durable,
                                               const std::optional<Operation>& pending) {
  std::vector<LogModel> out{durable};
  if (!pending) return out;
  out.push_back(apply(durable, *pending));
  if (pending->kind == 'A') {
    if (pending->a <= durable.last()) {
      LogModel truncated = durable;
      truncated.terms.resize(pending->a - durable.first());
      out.push_back(truncated);
    }
    for (LogIndex to = pending->a; to < pending->b; ++to)
      out.push_back(apply(durable, Operation{'A', pending->a, to, pending->c}));
  }
  return out;
}

}  // namespace dengine::crash
