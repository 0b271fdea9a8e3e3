#pragma once
/// The StateMachine conformance suite: the doctest cases every StateMachine runs, checking what
/// the concept's contract (storage/concepts.hpp) asks and no compiler can: apply is
/// deterministic and answers once per entry, the applied index is persisted with the data,
/// snapshots are a function of the state, restore replaces it. Your machine's tests get these
/// headers through dependency('dengine-conformance') or the installed dengine-conformance.pc
/// (docs/custom-storage.md); this repository runs it over the KV machine on every backend
/// (test/backends/<name>_conformance.cpp) and over examples/custom-storage's Counter. At global
/// scope:
///
///     #include "dengine/conformance/state_machine.hpp"
///
///     struct MyMachineFixture {
///       using machine_type = my::Machine;
///       MyMachineFixture();           // a fresh machine (applied index 0), e.g. in a TempDir
///       machine_type& machine();      // the machine as it is now
///       void reopen();                // a clean restart: close, then open again from the
///                                     // same place (an in-memory machine starts empty)
///       static std::string command(std::uint64_t n);   // entry data: see below
///       static std::string describe(const machine_type::response_type& r);
///       void crash_after(std::size_t writes);          // optional: see below
///     };
///     DENGINE_STATE_MACHINE_CONFORMANCE(MyMachineFixture);
///
/// - command(n): the data of a normal entry, a valid command of your machine chosen by n; the
///   same n always gives the same bytes. Vary them so that the interesting paths run: writes,
///   overwrites, deletes, requests that fail (a failure answered as a response).
/// - describe(r): a text that determines a response: two responses are the same exactly when
///   their texts are (the suite compares and prints these).
/// - crash_after(writes) (optional; a machine that persists its state should have it): arms a
///   power failure. The machine's storage completes `writes` more writes, each whole (as the
///   storage's own atomic unit: a KvStore write, a file replaced by rename, a transaction);
///   the write after them and every one until reopen() fails and changes nothing, so the call
///   under way fails as on a dead disk. reopen() then restarts from what was written. Without
///   it the suite checks clean restarts only.
/// - The rules of the StorageEngine suite's fixtures hold too (storage.hpp): a fresh fixture per
///   case, machine() called again after reopen(), reopen() adds no durability of its own, unique
///   fixture type names.
///
/// The log the suite applies: entry i has term 1 + i / 40; it is a no-op when i % 13 == 1 (a new
/// leader's, index 1 included), a config change (raft/config_change.hpp's encoding) when
/// i % 29 == 0, and otherwise a normal entry with command(i) — command(i + salt) for a second,
/// different history. Batches are cut at seeded random sizes, differently on each machine.
///
/// What the suite fixes where concepts.hpp leaves a choice:
/// - apply() of an empty batch succeeds and changes nothing; the responses vector is appended
///   to, never cleared.
/// - snapshot() returns applied_index(), does not change the state, and its bytes are a
///   function of the state alone: two machines with the same log, however batched or however
///   they got there (applied or restored), write the same bytes.
/// - restore() reads the source in whatever chunks it yields (the suite's come 7 bytes at a
///   time) and replaces everything: a machine ahead of, behind or at the image ends up exactly
///   the image.
/// - A restart keeps a prefix: after reopen() the applied index r is at most what was applied
///   and the state is exactly what the log's first r entries produce (an in-memory machine has
///   r == 0). After a crash during restore() the machine holds its state before it, the image,
///   or nothing at applied index 0 (the node then installs the snapshot again) — never a mix.

#include <doctest/doctest.h>

#include "dengine/conformance/state_machine_cases.hpp"

/// Runs every StateMachine conformance case over a machine fixture (see the file comment).
/// Use once per fixture, at global scope.
#define DENGINE_STATE_MACHINE_CONFORMANCE(Fixture)                      \
  TYPE_TO_STRING(Fixture);                                              \
  TEST_CASE_TEMPLATE_INVOKE(dengine_conf_sm_fresh, Fixture);            \
  TEST_CASE_TEMPLATE_INVOKE(dengine_conf_sm_responses, Fixture);        \
  TEST_CASE_TEMPLATE_INVOKE(dengine_conf_sm_determinism, Fixture);      \
  TEST_CASE_TEMPLATE_INVOKE(dengine_conf_sm_restart, Fixture);          \
  TEST_CASE_TEMPLATE_INVOKE(dengine_conf_sm_snapshot_restore, Fixture); \
  TEST_CASE_TEMPLATE_INVOKE(dengine_conf_sm_restore_replaces, Fixture)
