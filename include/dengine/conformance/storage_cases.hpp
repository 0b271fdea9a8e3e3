#pragma once
/// The StorageEngine conformance cases on one engine's life (no restart): log shape, append,
/// reads, errors, compaction, reset, hard state. Restart and size cases are in
/// storage_restart.hpp. Include dengine/conformance/storage.hpp, not this file.

#include <doctest/doctest.h>

#include <span>
#include <string>
#include <vector>

#include "dengine/conformance/helpers.hpp"
#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/storage/concepts.hpp"

namespace dengine::conformance {

/// The whole log [first_index(), last_index()], read in byte-bounded chunks as Raft reads it.
template <class E>
std::vector<Entry> read_log(const E& engine, std::size_t chunk_bytes = 1U << 20) {
  std::vector<Entry> out;
  const LogIndex hi = engine.last_index() + 1;
  for (LogIndex lo = engine.first_index(); lo < hi;) {
    auto chunk = CONF_VALUE(engine.entries(lo, hi, chunk_bytes));
    REQUIRE_FALSE(chunk.empty());  // at least one entry whenever lo < hi
    REQUIRE(chunk.front().index == lo);
    lo += chunk.size();
    for (auto& e : chunk) out.push_back(std::move(e));
  }
  return out;
}

/// a followed by b: a log whose terms change inside it.
inline std::vector<Entry> join(std::vector<Entry> a, const std::vector<Entry>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

/// A membership to put in snapshot metas, so that its round trip is checked too: the members'
/// peer addresses (some members have none) must come back as well.
inline Membership sample_membership() {
  return Membership{{1, 2, 3}, {7}, {{1, "127.0.0.1:2380"}, {3, "10.0.0.3:2380"}, {7, "[::1]:7"}}};
}

}  // namespace dengine::conformance

TEST_CASE_TEMPLATE_DEFINE("StorageEngine conformance: a fresh engine is empty", F,
                          dengine_conf_storage_fresh) {
  using namespace dengine;
  F f;
  auto e = [&]() -> typename F::engine_type& { return f.engine(); };
  static_assert(StorageEngine<typename F::engine_type>);

  auto check_empty = [&] {
    CHECK(e().first_index() == 1);
    CHECK(e().last_index() == 0);
    CHECK(CONF_VALUE(e().term(0)) == 0);
    CHECK(CONF_VALUE(e().entries(1, 1, 0)).empty());
    CONF_REQUIRE_ERROR(errc::unavailable, e().term(1));
    CONF_REQUIRE_ERROR(errc::unavailable, e().entries(1, 2, conformance::unbounded));
    auto state = CONF_VALUE(e().load());
    CHECK(state.hard_state == HardState{});
    CHECK(state.snapshot == SnapshotMeta{});
  };
  check_empty();
  CONF_REQUIRE_OK(e().sync());
  f.reopen();
  check_empty();
}

TEST_CASE_TEMPLATE_DEFINE("StorageEngine conformance: append, read back, term", F,
                          dengine_conf_storage_append_read) {
  using namespace dengine;
  using conformance::make_entries;
  F f;
  auto e = [&]() -> typename F::engine_type& { return f.engine(); };

  conformance::append_ok(e(), make_entries(1, 5, 1));
  conformance::append_ok(e(), make_entries(6, 8, 2));  // at last_index() + 1
  CHECK(e().first_index() == 1);
  CHECK(e().last_index() == 8);

  auto expected = make_entries(1, 5, 1);
  for (auto& x : make_entries(6, 8, 2)) expected.push_back(x);
  CHECK(CONF_VALUE(e().entries(1, 9, conformance::unbounded)) == expected);
  CHECK(CONF_VALUE(e().entries(3, 7, conformance::unbounded)) ==
        std::vector<Entry>(expected.begin() + 2, expected.begin() + 6));
  for (LogIndex i = 1; i <= 9; ++i) CHECK(CONF_VALUE(e().entries(i, i, 0)).empty());
  CHECK(CONF_VALUE(e().term(0)) == 0);
  for (LogIndex i = 1; i <= 5; ++i) CHECK(CONF_VALUE(e().term(i)) == 1);
  for (LogIndex i = 6; i <= 8; ++i) CHECK(CONF_VALUE(e().term(i)) == 2);
  CONF_REQUIRE_OK(e().sync());
  CHECK(conformance::read_log(e()) == expected);
}

TEST_CASE_TEMPLATE_DEFINE("StorageEngine conformance: append replaces a conflicting suffix", F,
                          dengine_conf_storage_conflict) {
  using namespace dengine;
  using conformance::make_entries;
  F f;
  auto e = [&]() -> typename F::engine_type& { return f.engine(); };

  conformance::append_synced(e(), make_entries(1, 10, 1));

  SUBCASE("in the middle: the rest of the old suffix is gone") {
    conformance::append_ok(e(), make_entries(5, 6, 2));
    CHECK(e().last_index() == 6);
    auto expected = make_entries(1, 4, 1);
    for (auto& x : make_entries(5, 6, 2)) expected.push_back(x);
    CHECK(conformance::read_log(e()) == expected);
    CONF_REQUIRE_ERROR(errc::unavailable, e().term(7));
    CONF_REQUIRE_ERROR(errc::unavailable, e().entries(5, 8, conformance::unbounded));
    // Growing again past the old end reads the new entries, never the truncated ones.
    conformance::append_ok(e(), make_entries(7, 12, 3));
    for (auto& x : make_entries(7, 12, 3)) expected.push_back(x);
    CHECK(conformance::read_log(e()) == expected);
    CONF_REQUIRE_OK(e().sync());
    f.reopen();
    CHECK(conformance::read_log(e()) == expected);  // the truncation was made durable by sync
  }
  SUBCASE("at the first index: the whole log is replaced") {
    conformance::append_ok(e(), make_entries(1, 1, 3));
    CHECK(e().last_index() == 1);
    CHECK(conformance::read_log(e()) == make_entries(1, 1, 3));
    CONF_REQUIRE_OK(e().sync());
    f.reopen();
    CHECK(e().last_index() == 1);
    CHECK(conformance::read_log(e()) == make_entries(1, 1, 3));
  }
  SUBCASE("at the last index: only the last entry changes") {
    conformance::append_ok(e(), make_entries(10, 11, 2));
    auto expected = make_entries(1, 9, 1);
    for (auto& x : make_entries(10, 11, 2)) expected.push_back(x);
    CHECK(conformance::read_log(e()) == expected);
  }
  SUBCASE("a shorter suffix replaced before the previous one was synced") {
    conformance::append_ok(e(), make_entries(11, 20, 1));
    conformance::append_ok(e(), make_entries(8, 9, 2));
    conformance::append_synced(e(), make_entries(9, 9, 3));
    f.reopen();
    auto expected = make_entries(1, 7, 1);
    expected.push_back(conformance::make_entry(8, 2));
    expected.push_back(conformance::make_entry(9, 3));
    CHECK(conformance::read_log(e()) == expected);
  }
}

TEST_CASE_TEMPLATE_DEFINE("StorageEngine conformance: a suffix replaced by entries of a lower term",
                          F, dengine_conf_storage_lower_term) {
  // Raft's figure 8: entries keep the term they were created in, so a leader of term 5 can
  // replace a follower's suffix of term 4 with entries of term 3 it got from an older leader.
  // The later append wins, whatever the terms: an engine that resolves conflicts by "higher term
  // wins" (say, when it replays its files at open) keeps the wrong suffix.
  using namespace dengine;
  using conformance::join;
  using conformance::make_entries;
  F f;
  auto e = [&]() -> typename F::engine_type& { return f.engine(); };

  SUBCASE("over a synced suffix, with terms rising again inside the batch") {
    conformance::append_synced(e(), join(make_entries(1, 2, 1), make_entries(3, 6, 4)));
    conformance::append_ok(e(), join(make_entries(3, 4, 3), make_entries(5, 5, 5)));
    auto expected = join(make_entries(1, 2, 1), join(make_entries(3, 4, 3), make_entries(5, 5, 5)));
    CHECK(e().last_index() == 5);
    CHECK(conformance::read_log(e()) == expected);
    CHECK(CONF_VALUE(e().term(3)) == 3);
    CONF_REQUIRE_ERROR(errc::unavailable, e().term(6));
    CONF_REQUIRE_OK(e().sync());
    f.reopen();
    CHECK(e().last_index() == 5);
    CHECK(conformance::read_log(e()) == expected);

    // Lower again, after the restart: the term-5 entry gives way to one of term 3.
    conformance::append_synced(e(), make_entries(5, 6, 3));
    expected = join(make_entries(1, 2, 1), make_entries(3, 6, 3));
    CHECK(conformance::read_log(e()) == expected);
    f.reopen();
    CHECK(conformance::read_log(e()) == expected);
    CHECK(CONF_VALUE(e().term(6)) == 3);
  }
  SUBCASE("over an unsynced suffix of a higher term, then one sync") {
    conformance::append_synced(e(), make_entries(1, 4, 1));
    conformance::append_ok(e(), make_entries(5, 8, 5));
    conformance::append_synced(e(), make_entries(5, 6, 3));
    f.reopen();
    CHECK(e().last_index() == 6);
    CHECK(conformance::read_log(e()) == join(make_entries(1, 4, 1), make_entries(5, 6, 3)));
  }
  SUBCASE("at the first index after a compaction") {
    conformance::append_synced(e(), join(make_entries(1, 3, 2), make_entries(4, 6, 6)));
    CONF_REQUIRE_OK(e().compact(SnapshotMeta{3, 2, conformance::sample_membership()}));
    conformance::append_synced(e(), make_entries(4, 4, 2));
    CHECK(conformance::read_log(e()) == make_entries(4, 4, 2));
    f.reopen();
    CHECK(e().first_index() == 4);
    CHECK(e().last_index() == 4);
    CHECK(conformance::read_log(e()) == make_entries(4, 4, 2));
  }
}

TEST_CASE_TEMPLATE_DEFINE("StorageEngine conformance: append rejects a malformed batch", F,
                          dengine_conf_storage_append_preconditions) {
  // The contract makes these preconditions; a backend reports a violation as invalid_argument
  // with a detail, and leaves the log as it was.
  using namespace dengine;
  using conformance::make_entries;
  F f;
  auto e = [&]() -> typename F::engine_type& { return f.engine(); };
  conformance::append_ok(e(), make_entries(1, 10, 1));
  CONF_REQUIRE_OK(e().compact(SnapshotMeta{3, 1, conformance::sample_membership()}));
  const auto before = conformance::read_log(e());

  SUBCASE("empty batch") {
    CONF_REQUIRE_ERROR(errc::invalid_argument, e().append(std::span<const Entry>()));
  }
  SUBCASE("a gap after the last index") {
    auto batch = make_entries(12, 13, 1);
    CONF_REQUIRE_ERROR(errc::invalid_argument, e().append(std::span<const Entry>(batch)));
  }
  SUBCASE("below the first index (compacted)") {
    auto batch = make_entries(3, 5, 2);
    CONF_REQUIRE_ERROR(errc::invalid_argument, e().append(std::span<const Entry>(batch)));
  }
  SUBCASE("indices not contiguous") {
    std::vector<Entry> batch{conformance::make_entry(11, 1), conformance::make_entry(13, 1)};
    CONF_REQUIRE_ERROR(errc::invalid_argument, e().append(std::span<const Entry>(batch)));
  }
  CHECK(e().first_index() == 4);
  CHECK(e().last_index() == 10);
  CHECK(conformance::read_log(e()) == before);
}

TEST_CASE_TEMPLATE_DEFINE("StorageEngine conformance: entries bounded by max_bytes", F,
                          dengine_conf_storage_max_bytes) {
  using namespace dengine;
  F f;
  auto e = [&]() -> typename F::engine_type& { return f.engine(); };
  std::vector<Entry> batch;
  for (LogIndex i = 1; i <= 10; ++i)
    batch.push_back(Entry{1, i, EntryType::normal, std::string(100, 'a')});
  conformance::append_ok(e(), batch);
  const std::size_t one = entry_size(batch[0]);  // every entry has this size

  CHECK(CONF_VALUE(e().entries(1, 11, 0)).size() == 1);  // at least one, whatever the bound
  CHECK(CONF_VALUE(e().entries(1, 11, 1)).size() == 1);
  CHECK(CONF_VALUE(e().entries(1, 11, one)).size() == 1);
  CHECK(CONF_VALUE(e().entries(1, 11, 2 * one - 1)).size() == 1);
  CHECK(CONF_VALUE(e().entries(1, 11, 2 * one)).size() == 2);
  CHECK(CONF_VALUE(e().entries(1, 11, 3 * one + 5)).size() == 3);
  CHECK(CONF_VALUE(e().entries(4, 11, 2 * one)) ==
        std::vector<Entry>(batch.begin() + 3, batch.begin() + 5));
  CHECK(CONF_VALUE(e().entries(1, 11, 100 * one)).size() == 10);
  CHECK(CONF_VALUE(e().entries(1, 4, 100 * one)).size() == 3);  // hi bounds too

  // A single entry larger than the bound still comes back, alone.
  std::vector<Entry> big{Entry{1, 11, EntryType::normal, std::string(10000, 'b')}};
  conformance::append_ok(e(), big);
  CHECK(CONF_VALUE(e().entries(11, 12, 10)) == big);
  CHECK(CONF_VALUE(e().entries(10, 12, one)).size() == 1);
  CHECK(CONF_VALUE(e().entries(10, 12, one + 10000)).size() == 1);
  CHECK(CONF_VALUE(e().entries(10, 12, one + entry_size(big[0]))).size() == 2);
}

TEST_CASE_TEMPLATE_DEFINE("StorageEngine conformance: entries and term errors", F,
                          dengine_conf_storage_errors) {
  using namespace dengine;
  F f;
  auto e = [&]() -> typename F::engine_type& { return f.engine(); };
  conformance::append_ok(e(), conformance::make_entries(1, 10, 1));
  conformance::append_ok(e(), conformance::make_entries(11, 12, 2));

  CONF_REQUIRE_ERROR(errc::unavailable, e().entries(1, 14, conformance::unbounded));
  CONF_REQUIRE_ERROR(errc::unavailable, e().entries(13, 14, 0));
  CONF_REQUIRE_ERROR(errc::unavailable, e().entries(20, 20, 0));
  CONF_REQUIRE_ERROR(errc::unavailable, e().term(13));
  CONF_REQUIRE_ERROR(errc::invalid_argument, e().entries(5, 4, conformance::unbounded));
  CONF_REQUIRE_ERROR(errc::invalid_argument, e().entries(30, 20, 0));  // and past the end
  CHECK(CONF_VALUE(e().entries(13, 13, 0)).empty());                   // hi == last + 1 is allowed

  CONF_REQUIRE_OK(e().compact(SnapshotMeta{5, 1, conformance::sample_membership()}));
  CONF_REQUIRE_ERROR(errc::compacted, e().entries(4, 7, conformance::unbounded));
  CONF_REQUIRE_ERROR(errc::compacted, e().entries(5, 7, conformance::unbounded));
  CONF_REQUIRE_ERROR(errc::compacted, e().entries(1, 2, conformance::unbounded));
  CONF_REQUIRE_ERROR(errc::compacted, e().term(4));
  CONF_REQUIRE_ERROR(errc::compacted, e().term(0));
  // Both compacted and unavailable: the order is invalid_argument, compacted, unavailable.
  CONF_REQUIRE_ERROR(errc::compacted, e().entries(4, 14, conformance::unbounded));
  CONF_REQUIRE_ERROR(errc::compacted, e().entries(1, 100, 0));
  CONF_REQUIRE_ERROR(errc::invalid_argument, e().entries(4, 2, 0));    // and below the start
  CONF_REQUIRE_ERROR(errc::invalid_argument, e().entries(100, 3, 0));  // lo past, hi below
  CHECK(CONF_VALUE(e().term(5)) == 1);  // the compaction point still answers
  CHECK(CONF_VALUE(e().entries(6, 7, 0)) == conformance::make_entries(6, 6, 1));
  CHECK(CONF_VALUE(e().term(12)) == 2);
  CONF_REQUIRE_ERROR(errc::unavailable, e().term(13));
}

TEST_CASE_TEMPLATE_DEFINE("StorageEngine conformance: compact", F, dengine_conf_storage_compact) {
  using namespace dengine;
  using conformance::make_entries;
  F f;
  auto e = [&]() -> typename F::engine_type& { return f.engine(); };
  auto log = make_entries(1, 6, 1);
  for (auto& x : make_entries(7, 10, 2)) log.push_back(x);
  conformance::append_synced(e(), log);

  const SnapshotMeta meta{7, 2, conformance::sample_membership()};
  CONF_REQUIRE_OK(e().compact(meta));
  CHECK(e().first_index() == 8);
  CHECK(e().last_index() == 10);
  CHECK(CONF_VALUE(e().term(7)) == 2);
  CHECK(conformance::read_log(e()) == std::vector<Entry>(log.begin() + 7, log.end()));
  CHECK(CONF_VALUE(e().load()).snapshot == meta);

  SUBCASE("again at the same point: no change") {
    CONF_REQUIRE_OK(e().compact(meta));
    CHECK(e().first_index() == 8);
    CHECK(conformance::read_log(e()) == std::vector<Entry>(log.begin() + 7, log.end()));
  }
  SUBCASE("bad requests fail and change nothing") {
    CONF_REQUIRE_ERROR(errc::compacted, e().compact(SnapshotMeta{6, 1, {}}));
    CONF_REQUIRE_ERROR(errc::unavailable, e().compact(SnapshotMeta{11, 2, {}}));
    CONF_REQUIRE_ERROR(errc::invalid_argument, e().compact(SnapshotMeta{9, 1, {}}));  // wrong term
    CHECK(e().first_index() == 8);
    CHECK(e().last_index() == 10);
    CHECK(CONF_VALUE(e().load()).snapshot == meta);
  }
  SUBCASE("up to the last index: empty log that keeps its end") {
    const SnapshotMeta all{10, 2, Membership{{1}, {}}};
    CONF_REQUIRE_OK(e().compact(all));
    CHECK(e().first_index() == 11);
    CHECK(e().last_index() == 10);
    CHECK(CONF_VALUE(e().term(10)) == 2);
    CHECK(CONF_VALUE(e().entries(11, 11, 0)).empty());
    CONF_REQUIRE_ERROR(errc::compacted, e().entries(10, 11, 0));
    conformance::append_ok(e(), make_entries(11, 12, 3));
    CHECK(conformance::read_log(e()) == make_entries(11, 12, 3));
  }
  SUBCASE("then append replacing the log from its first index") {
    conformance::append_ok(e(), make_entries(8, 9, 4));
    CHECK(e().last_index() == 9);
    CHECK(conformance::read_log(e()) == make_entries(8, 9, 4));
  }
}

TEST_CASE_TEMPLATE_DEFINE("StorageEngine conformance: reset to a snapshot", F,
                          dengine_conf_storage_reset) {
  using namespace dengine;
  using conformance::make_entries;
  F f;
  auto e = [&]() -> typename F::engine_type& { return f.engine(); };
  conformance::append_synced(e(), make_entries(1, 10, 1));

  SUBCASE("ahead of the log") {
    const SnapshotMeta meta{50, 7, conformance::sample_membership()};
    CONF_REQUIRE_OK(e().reset(meta));
    CHECK(e().first_index() == 51);
    CHECK(e().last_index() == 50);
    CHECK(CONF_VALUE(e().term(50)) == 7);
    CONF_REQUIRE_ERROR(errc::compacted, e().term(49));
    CONF_REQUIRE_ERROR(errc::compacted, e().entries(10, 11, 0));
    CONF_REQUIRE_ERROR(errc::unavailable, e().term(51));
    CHECK(CONF_VALUE(e().entries(51, 51, 0)).empty());
    CHECK(CONF_VALUE(e().load()).snapshot == meta);
    conformance::append_ok(e(), make_entries(51, 53, 7));
    CHECK(conformance::read_log(e()) == make_entries(51, 53, 7));
    CONF_REQUIRE_OK(e().sync());
    f.reopen();
    CHECK(CONF_VALUE(e().load()).snapshot == meta);
    CHECK(e().first_index() == 51);
    CHECK(conformance::read_log(e()) == make_entries(51, 53, 7));
  }
  SUBCASE("inside the log: the entries after it are discarded too") {
    const SnapshotMeta meta{5, 3, Membership{{4}, {}}};
    CONF_REQUIRE_OK(e().reset(meta));
    CHECK(e().first_index() == 6);
    CHECK(e().last_index() == 5);
    CHECK(CONF_VALUE(e().term(5)) == 3);
    CONF_REQUIRE_ERROR(errc::unavailable, e().term(6));
    CONF_REQUIRE_OK(e().sync());
    f.reopen();
    CHECK(e().first_index() == 6);
    CHECK(e().last_index() == 5);
    CHECK(CONF_VALUE(e().load()).snapshot == meta);
  }
}

TEST_CASE_TEMPLATE_DEFINE("StorageEngine conformance: hard state round trip", F,
                          dengine_conf_storage_hard_state) {
  using namespace dengine;
  F f;
  auto e = [&]() -> typename F::engine_type& { return f.engine(); };
  const HardState first{3, 2, 0};
  CONF_REQUIRE_OK(e().save_hard_state(first));
  CHECK(CONF_VALUE(e().load()).hard_state == first);
  const HardState second{4, 0, 17};
  CONF_REQUIRE_OK(e().save_hard_state(second));
  CHECK(CONF_VALUE(e().load()).hard_state == second);
  // Durable on return: no sync() between the save and the restart.
  f.reopen();
  CHECK(CONF_VALUE(e().load()).hard_state == second);
  const HardState third{~Term{0}, ~NodeId{0}, ~LogIndex{0}};  // extreme values survive encoding
  CONF_REQUIRE_OK(e().save_hard_state(third));
  f.reopen();
  CHECK(CONF_VALUE(e().load()).hard_state == third);
}
