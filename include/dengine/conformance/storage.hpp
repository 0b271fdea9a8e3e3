#pragma once
/// The StorageEngine conformance suite: one set of doctest cases every StorageEngine runs (as
/// openraft's storage test suite). Your own engine's tests get these headers through
/// dependency('dengine-conformance') or the installed dengine-conformance.pc
/// (docs/custom-storage.md, examples/custom-storage/conformance_test.cpp); this repository's
/// backends instantiate it from test/backends/<name>_conformance.cpp. At global scope:
///
///     #include "dengine/conformance/storage.hpp"
///     #include "dengine/conformance/temp_dir.hpp"
///
///     struct MyLogFixture {
///       using engine_type = my::Engine;
///       MyLogFixture();          // a fresh, empty engine (e.g. in a TempDir it owns)
///       engine_type& engine();   // the engine as it is now
///       void reopen();           // close, then open again from the same place: a clean
///     };                         // restart (everything synced survives)
///     DENGINE_STORAGE_CONFORMANCE(MyLogFixture);
///
/// Fixture rules (the KvStore and StateMachine suites, kv_store.hpp and state_machine.hpp,
/// follow the same ones):
/// - Each test case constructs its own fixture (and destroys it at the end), so cases never
///   share state. A fixture constructor that cannot create its engine should throw (doctest
///   reports it); the suite itself never throws.
/// - After reopen() the suite calls engine() again and never keeps an earlier reference, so
///   reopen() may destroy the object and construct a new one.
/// - reopen() must not sync by itself: the suite calls sync() where the contract needs it, so a
///   reopen that saved extra data could hide a missing durability step. (Unsynced data that does
///   survive a clean reopen is fine: the suite never asserts it is gone. Crash loss is the
///   business of each backend's own crash tests.)
/// - A fixture may declare `static constexpr bool reset_durable_on_return = true;` when its
///   engine makes reset() durable before it returns (the contract asks only for durability after
///   the next sync()); the suite then checks that too.
/// - Fixture type names must be unique across the whole test binary and each fixture type
///   used with only one of the suites' macros: the macros name the doctest cases after the
///   fixture (TYPE_TO_STRING), and doctest silently merges same-named cases from different files.
///
/// What the suite fixes where concepts.hpp leaves a choice (backends must follow it too):
/// - entries(): the byte bound counts entry_size(e) (core/types.hpp); lo > hi → invalid_argument;
///   the checks run in the order invalid_argument, compacted, unavailable (a range both below
///   first_index() and past last_index() + 1 is `compacted`).
/// - append(): an empty, non-contiguous or out-of-range batch → invalid_argument, log unchanged.
///   The later append wins whatever its terms: a suffix may be replaced by entries of a lower
///   term than the ones it replaces (Raft's figure 8), in memory and after a restart alike.
/// - compact(meta): meta.index below the snapshot index → compacted; past last_index() →
///   unavailable; meta.term not the term at meta.index → invalid_argument; compacting again at
///   the current snapshot index succeeds. compact() is durable on return (no sync needed);
///   reset() is durable after the next sync().
/// - Every error carries a non-empty `detail`.
///
/// Every check in the suite compares exact values; there are no timing assertions.

#include <doctest/doctest.h>

#include "dengine/conformance/storage_cases.hpp"
#include "dengine/conformance/storage_restart.hpp"

/// Runs every StorageEngine conformance case over a log fixture (see the file comment).
/// Use once per fixture, at global scope.
#define DENGINE_STORAGE_CONFORMANCE(Fixture)                                     \
  TYPE_TO_STRING(Fixture);                                                       \
  TEST_CASE_TEMPLATE_INVOKE(dengine_conf_storage_fresh, Fixture);                \
  TEST_CASE_TEMPLATE_INVOKE(dengine_conf_storage_append_read, Fixture);          \
  TEST_CASE_TEMPLATE_INVOKE(dengine_conf_storage_conflict, Fixture);             \
  TEST_CASE_TEMPLATE_INVOKE(dengine_conf_storage_lower_term, Fixture);           \
  TEST_CASE_TEMPLATE_INVOKE(dengine_conf_storage_append_preconditions, Fixture); \
  TEST_CASE_TEMPLATE_INVOKE(dengine_conf_storage_max_bytes, Fixture);            \
  TEST_CASE_TEMPLATE_INVOKE(dengine_conf_storage_errors, Fixture);               \
  TEST_CASE_TEMPLATE_INVOKE(dengine_conf_storage_compact, Fixture);              \
  TEST_CASE_TEMPLATE_INVOKE(dengine_conf_storage_reset, Fixture);                \
  TEST_CASE_TEMPLATE_INVOKE(dengine_conf_storage_hard_state, Fixture);           \
  TEST_CASE_TEMPLATE_INVOKE(dengine_conf_storage_restart, Fixture);              \
  TEST_CASE_TEMPLATE_INVOKE(dengine_conf_storage_compact_restart, Fixture);      \
  TEST_CASE_TEMPLATE_INVOKE(dengine_conf_storage_unsynced_restart, Fixture);     \
  TEST_CASE_TEMPLATE_INVOKE(dengine_conf_storage_large, Fixture);                \
  TEST_CASE_TEMPLATE_INVOKE(dengine_conf_storage_many, Fixture);                 \
  TEST_CASE_TEMPLATE_INVOKE(dengine_conf_storage_types, Fixture);                \
  TEST_CASE_TEMPLATE_INVOKE(dengine_conf_storage_random, Fixture)
