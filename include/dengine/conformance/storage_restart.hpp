#pragma once
/// The StorageEngine conformance cases across restarts and at size: what sync() and the durable
/// calls promise, large and many entries, and a seeded random sequence checked against a model.
/// Include dengine/conformance/storage.hpp, not this file.

#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "dengine/conformance/helpers.hpp"
#include "dengine/conformance/storage_cases.hpp"
#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"

TEST_CASE_TEMPLATE_DEFINE("StorageEngine conformance: restart round trip", F,
                          dengine_conf_storage_restart) {
  using namespace dengine;
  using conformance::make_entries;
  F f;
  auto e = [&]() -> typename F::engine_type& { return f.engine(); };
  auto log = make_entries(1, 20, 1);
  for (auto& x : make_entries(21, 30, 2)) log.push_back(x);
  conformance::append_ok(e(), std::vector<Entry>(log.begin(), log.begin() + 20));
  conformance::append_synced(e(), std::vector<Entry>(log.begin() + 20, log.end()));
  const HardState hs{2, 1, 25};
  CONF_REQUIRE_OK(e().save_hard_state(hs));

  f.reopen();
  auto state = CONF_VALUE(e().load());
  CHECK(state.hard_state == hs);
  CHECK(state.snapshot == SnapshotMeta{});
  CHECK(e().first_index() == 1);
  CHECK(e().last_index() == 30);
  CHECK(conformance::read_log(e()) == log);
  CHECK(CONF_VALUE(e().term(30)) == 2);

  // The reopened engine keeps working: append, truncate, sync, restart again.
  conformance::append_synced(e(), make_entries(29, 31, 3));
  f.reopen();
  log.resize(28);
  for (auto& x : make_entries(29, 31, 3)) log.push_back(x);
  CHECK(conformance::read_log(e()) == log);
  CHECK(CONF_VALUE(e().load()).hard_state == hs);
}

TEST_CASE_TEMPLATE_DEFINE("StorageEngine conformance: compaction survives restart", F,
                          dengine_conf_storage_compact_restart) {
  using namespace dengine;
  using conformance::make_entries;
  F f;
  auto e = [&]() -> typename F::engine_type& { return f.engine(); };
  conformance::append_synced(e(), make_entries(1, 20, 1));
  const SnapshotMeta meta{10, 1, conformance::sample_membership()};
  CONF_REQUIRE_OK(e().compact(meta));
  // compact() is durable on return: no sync() before the restart.
  f.reopen();
  CHECK(CONF_VALUE(e().load()).snapshot == meta);
  CHECK(e().first_index() == 11);
  CHECK(e().last_index() == 20);
  CHECK(CONF_VALUE(e().term(10)) == 1);
  CONF_REQUIRE_ERROR(errc::compacted, e().term(9));
  CHECK(conformance::read_log(e()) == make_entries(11, 20, 1));

  // A second compaction, then everything, then appends after the end.
  const SnapshotMeta later{20, 1, Membership{{1, 2}, {}}};
  CONF_REQUIRE_OK(e().compact(later));
  f.reopen();
  CHECK(CONF_VALUE(e().load()).snapshot == later);
  CHECK(e().first_index() == 21);
  CHECK(e().last_index() == 20);
  conformance::append_synced(e(), make_entries(21, 22, 2));
  f.reopen();
  CHECK(conformance::read_log(e()) == make_entries(21, 22, 2));
  CHECK(CONF_VALUE(e().term(20)) == 1);
}

TEST_CASE_TEMPLATE_DEFINE("StorageEngine conformance: compact and reset after unsynced appends", F,
                          dengine_conf_storage_unsynced_restart) {
  // compact() is durable on return even when the entries before it were never synced; reset()
  // is durable after the next sync(), or on return where the fixture says so. Neither may bring
  // back the log it replaced.
  using namespace dengine;
  using conformance::make_entries;
  F f;
  auto e = [&]() -> typename F::engine_type& { return f.engine(); };
  conformance::append_ok(e(), make_entries(1, 10, 1));
  const SnapshotMeta compacted{4, 1, Membership{{1, 2, 3}, {}}};
  CONF_REQUIRE_OK(e().compact(compacted));
  f.reopen();
  CHECK(CONF_VALUE(e().load()).snapshot == compacted);
  CHECK(e().first_index() == 5);
  CHECK(CONF_VALUE(e().term(4)) == 1);

  const SnapshotMeta installed{20, 2, Membership{{1, 2}, {3}}};
  CONF_REQUIRE_OK(e().reset(installed));
  constexpr bool durable_on_return = [] {
    if constexpr (requires { F::reset_durable_on_return; })
      return bool{F::reset_durable_on_return};
    else
      return false;
  }();
  if constexpr (!durable_on_return) CONF_REQUIRE_OK(e().sync());
  f.reopen();
  CHECK(e().first_index() == 21);
  CHECK(e().last_index() == 20);
  CHECK(CONF_VALUE(e().load()).snapshot == installed);
  CHECK(CONF_VALUE(e().term(20)) == 2);
  CONF_REQUIRE_ERROR(errc::compacted, e().term(19));
}

TEST_CASE_TEMPLATE_DEFINE("StorageEngine conformance: large entries", F,
                          dengine_conf_storage_large) {
  using namespace dengine;
  F f;
  auto e = [&]() -> typename F::engine_type& { return f.engine(); };
  const std::size_t size = conformance::large_bytes;
  std::vector<Entry> batch;
  for (LogIndex i = 1; i <= 3; ++i)  // a pattern of its own per entry
    batch.push_back(Entry{i, i, EntryType::normal, conformance::patterned_bytes(size, 131, i * 7)});
  conformance::append_synced(e(), batch);
  CHECK(CONF_VALUE(e().entries(1, 4, 1U << 20)).size() == 1);
  CHECK(CONF_VALUE(e().entries(1, 4, conformance::unbounded)) == batch);
  f.reopen();
  CHECK(e().last_index() == 3);
  for (LogIndex i = 1; i <= 3; ++i) {
    auto one = CONF_VALUE(e().entries(i, i + 1, 0));
    REQUIRE(one.size() == 1);
    CHECK(one.front() == batch[i - 1]);
  }
}

TEST_CASE_TEMPLATE_DEFINE("StorageEngine conformance: many small entries, sync per batch", F,
                          dengine_conf_storage_many) {
  using namespace dengine;
  F f;
  auto e = [&]() -> typename F::engine_type& { return f.engine(); };
  constexpr LogIndex count = conformance::many_count;
  constexpr LogIndex per_batch = conformance::many_per_batch;
  auto make = [](LogIndex i) {
    std::string data(16, '\0');
    for (std::size_t k = 0; k < data.size(); ++k)
      data[k] = static_cast<char>((i >> (k % 8 * 8)) + k);
    return Entry{1 + i / 30000, i, EntryType::normal, std::move(data)};
  };
  for (LogIndex from = 1; from <= count; from += per_batch) {
    std::vector<Entry> batch;
    for (LogIndex i = from; i < from + per_batch; ++i) batch.push_back(make(i));
    conformance::append_synced(e(), batch);
  }
  CHECK(e().last_index() == count);
  f.reopen();
  REQUIRE(e().last_index() == count);
  auto log = conformance::read_log(e(), 64U << 10);
  REQUIRE(log.size() == count);
  bool all_equal = true;  // one CHECK, not 100000
  for (LogIndex i = 1; i <= count; ++i) all_equal = all_equal && log[i - 1] == make(i);
  CHECK(all_equal);
  for (LogIndex i : {LogIndex{1}, LogIndex{29999}, LogIndex{30000}, LogIndex{99999}, count})
    CHECK(CONF_VALUE(e().term(i)) == make(i).term);
}

TEST_CASE_TEMPLATE_DEFINE("StorageEngine conformance: entry types and bytes preserved", F,
                          dengine_conf_storage_types) {
  using namespace dengine;
  F f;
  auto e = [&]() -> typename F::engine_type& { return f.engine(); };
  const std::string binary("\0\xff\x01\n\r\0", 6);
  const std::vector<Entry> batch{
      Entry{1, 1, EntryType::noop, ""},
      Entry{1, 2, EntryType::normal, ""},
      Entry{1, 3, EntryType::config_change, binary},
      Entry{2, 4, EntryType::normal, binary + binary},
      Entry{2, 5, EntryType::noop, ""},
  };
  conformance::append_ok(e(), batch);
  CHECK(CONF_VALUE(e().entries(1, 6, conformance::unbounded)) == batch);
  CONF_REQUIRE_OK(e().sync());
  f.reopen();
  CHECK(CONF_VALUE(e().entries(1, 6, conformance::unbounded)) == batch);
}

namespace dengine::conformance {

/// The reference the random sequence is checked against: the log as the contract defines it.
struct LogModel {
  SnapshotMeta snapshot;
  std::vector<Entry> entries;  // entries[k].index == snapshot.index + 1 + k
  HardState hard_state;

  [[nodiscard]] LogIndex first() const { return snapshot.index + 1; }
  [[nodiscard]] LogIndex last() const { return snapshot.index + entries.size(); }
  [[nodiscard]] Term term(LogIndex i) const {
    return i == snapshot.index ? snapshot.term : entries[i - first()].term;
  }
};

/// REQUIREs that engine and model agree on shape, every entry, every term and load().
template <class E>
void check_against(E& engine, const LogModel& model) {
  REQUIRE(engine.first_index() == model.first());
  REQUIRE(engine.last_index() == model.last());
  CHECK(read_log(engine, 4096) == model.entries);
  for (LogIndex i = model.snapshot.index; i <= model.last(); ++i)
    REQUIRE(CONF_VALUE(engine.term(i)) == model.term(i));
  auto state = CONF_VALUE(engine.load());
  CHECK(state.snapshot == model.snapshot);
  CHECK(state.hard_state == model.hard_state);
}

}  // namespace dengine::conformance

TEST_CASE_TEMPLATE_DEFINE("StorageEngine conformance: random sequence against a model", F,
                          dengine_conf_storage_random) {
  // A fixed seed: the same sequence on every run and every backend. Restarts happen only right
  // after a sync(), where the contract fixes exactly what survives.
  using namespace dengine;
  F f;
  auto e = [&]() -> typename F::engine_type& { return f.engine(); };
  conformance::LogModel model;
  std::mt19937_64 rng(20240601);
  auto pick = [&](std::uint64_t lo, std::uint64_t hi) {  // uniform in [lo, hi]
    return std::uniform_int_distribution<std::uint64_t>(lo, hi)(rng);
  };
  Term term = 1;  // the highest term so far: appends at the end use it
  for (int step = 0; step < 600; ++step) {
    CAPTURE(step);
    const auto op = pick(0, 99);
    if (op < 50) {  // append, usually at the end, sometimes replacing a suffix
      LogIndex from = model.last() + 1;
      Term batch_term = term;
      if (op < 15 && model.last() >= model.first()) {
        from = pick(model.first(), model.last());
        // The replacing entries' term differs from the replaced one's, and is never below the
        // entry before them (terms never fall along a log). Half the time, when there is room,
        // it is lower than the replaced suffix's (Raft's figure 8: a new leader's log holds
        // entries of an old term); otherwise a new leader's own, higher term.
        const Term before = model.term(from - 1);
        const Term replaced = model.term(from);
        if (before < replaced && pick(0, 1) == 0) {
          batch_term = pick(before, replaced - 1);
        } else {
          batch_term = ++term;
        }
      }
      std::vector<Entry> batch;
      for (LogIndex i = from, n = pick(1, 8); i < from + n; ++i)
        batch.push_back(Entry{batch_term, i, static_cast<EntryType>(pick(0, 2)),
                              std::string(pick(0, 40), static_cast<char>(pick(0, 255)))});
      conformance::append_ok(e(), batch);
      model.entries.resize(from - model.first());
      model.entries.insert(model.entries.end(), batch.begin(), batch.end());
    } else if (op < 70) {
      CONF_REQUIRE_OK(e().sync());
    } else if (op < 77) {  // compact somewhere in [snapshot index, last]
      const LogIndex at = pick(model.snapshot.index, model.last());
      const SnapshotMeta meta{at, model.term(at), Membership{{pick(1, 5)}, {}}};
      CONF_REQUIRE_OK(e().compact(meta));
      model.entries.erase(
          model.entries.begin(),
          model.entries.begin() + static_cast<std::ptrdiff_t>(at - model.snapshot.index));
      model.snapshot = meta;
    } else if (op < 79) {  // install a snapshot ahead of (or inside) the log
      ++term;
      const SnapshotMeta meta{model.snapshot.index + pick(0, model.entries.size() + 20), term,
                              Membership{{pick(1, 3), pick(4, 6)}, {pick(7, 9)}}};
      CONF_REQUIRE_OK(e().reset(meta));
      model.entries.clear();
      model.snapshot = meta;
    } else if (op < 85) {
      model.hard_state = HardState{term, pick(0, 5), pick(0, model.last())};
      CONF_REQUIRE_OK(e().save_hard_state(model.hard_state));
    } else if (op < 95) {  // a bounded read somewhere
      const LogIndex lo = pick(model.first(), model.last() + 1);
      const LogIndex hi = pick(lo, model.last() + 1);
      const std::size_t max_bytes = pick(0, 400);
      auto got = CONF_VALUE(e().entries(lo, hi, max_bytes));
      std::vector<Entry> expected;
      std::size_t total = 0;
      for (LogIndex i = lo; i < hi; ++i) {
        const Entry& x = model.entries[i - model.first()];
        if (!expected.empty() && total + entry_size(x) > max_bytes) break;
        total += entry_size(x);
        expected.push_back(x);
      }
      REQUIRE(got == expected);
    } else {  // restart after a sync
      CONF_REQUIRE_OK(e().sync());
      f.reopen();
      conformance::check_against(e(), model);
    }
  }
  CONF_REQUIRE_OK(e().sync());
  conformance::check_against(e(), model);
  f.reopen();
  conformance::check_against(e(), model);
}
