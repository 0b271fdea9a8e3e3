// Positive and negative compile-time tests of the concepts in storage/concepts.hpp: the memory
// backend and complete hand-written types satisfy them; the same types with one member missing
// or one signature wrong do not.
//
// Each probe type is a class template over a Flaw: a member whose trailing requires-clause is
// false does not exist for the concept's requires-expression, so one template spells "the good
// type" and every "good type minus one thing" without repeating the other members.

#include <doctest/doctest.h>

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dengine/backends/memory.hpp"
#include "dengine/storage/concepts.hpp"

namespace {

using namespace dengine;

// ---- StorageEngine ---------------------------------------------------------------------------

enum class EngineFlaw {
  none,
  no_append,
  append_takes_vector,  // append(const std::vector<Entry>&): a span does not convert
  no_sync,
  sync_returns_void,
  entries_not_const,       // Raft reads through a const engine
  entries_returns_vector,  // no result<>: errors could not be reported
  term_returns_term,       // result<Term> required
  term_not_const,
  first_index_returns_int,
  no_last_index,
  no_compact,
  no_reset,
  save_hard_state_returns_bool,
  load_returns_hard_state,  // must be result<RecoveredState>
};

template <EngineFlaw F>
struct ProbeEngine {
  result<void> append(std::span<const Entry>) requires(F != EngineFlaw::no_append &&
                                                       F != EngineFlaw::append_takes_vector);
  result<void> append(const std::vector<Entry>&) requires(F == EngineFlaw::append_takes_vector);

  result<void> sync() requires(F != EngineFlaw::no_sync && F != EngineFlaw::sync_returns_void);
  void sync() requires(F == EngineFlaw::sync_returns_void);

  result<std::vector<Entry>> entries(LogIndex, LogIndex, std::size_t) const
      requires(F != EngineFlaw::entries_not_const && F != EngineFlaw::entries_returns_vector);
  result<std::vector<Entry>> entries(LogIndex, LogIndex,
                                     std::size_t) requires(F == EngineFlaw::entries_not_const);
  std::vector<Entry> entries(LogIndex, LogIndex, std::size_t) const
      requires(F == EngineFlaw::entries_returns_vector);

  result<Term> term(LogIndex) const
      requires(F != EngineFlaw::term_returns_term && F != EngineFlaw::term_not_const);
  Term term(LogIndex) const requires(F == EngineFlaw::term_returns_term);
  result<Term> term(LogIndex) requires(F == EngineFlaw::term_not_const);

  LogIndex first_index() const requires(F != EngineFlaw::first_index_returns_int);
  int first_index() const requires(F == EngineFlaw::first_index_returns_int);

  LogIndex last_index() const requires(F != EngineFlaw::no_last_index);

  result<void> compact(const SnapshotMeta&) requires(F != EngineFlaw::no_compact);
  result<void> reset(const SnapshotMeta&) requires(F != EngineFlaw::no_reset);

  result<void> save_hard_state(const HardState&) requires(F !=
                                                          EngineFlaw::save_hard_state_returns_bool);
  bool save_hard_state(const HardState&) requires(F == EngineFlaw::save_hard_state_returns_bool);

  result<RecoveredState> load() requires(F != EngineFlaw::load_returns_hard_state);
  result<HardState> load() requires(F == EngineFlaw::load_returns_hard_state);
};

static_assert(StorageEngine<memory::Engine>);
static_assert(StorageEngine<ProbeEngine<EngineFlaw::none>>);
static_assert(!StorageEngine<ProbeEngine<EngineFlaw::no_append>>);
static_assert(!StorageEngine<ProbeEngine<EngineFlaw::append_takes_vector>>);
static_assert(!StorageEngine<ProbeEngine<EngineFlaw::no_sync>>);
static_assert(!StorageEngine<ProbeEngine<EngineFlaw::sync_returns_void>>);
static_assert(!StorageEngine<ProbeEngine<EngineFlaw::entries_not_const>>);
static_assert(!StorageEngine<ProbeEngine<EngineFlaw::entries_returns_vector>>);
static_assert(!StorageEngine<ProbeEngine<EngineFlaw::term_returns_term>>);
static_assert(!StorageEngine<ProbeEngine<EngineFlaw::term_not_const>>);
static_assert(!StorageEngine<ProbeEngine<EngineFlaw::first_index_returns_int>>);
static_assert(!StorageEngine<ProbeEngine<EngineFlaw::no_last_index>>);
static_assert(!StorageEngine<ProbeEngine<EngineFlaw::no_compact>>);
static_assert(!StorageEngine<ProbeEngine<EngineFlaw::no_reset>>);
static_assert(!StorageEngine<ProbeEngine<EngineFlaw::save_hard_state_returns_bool>>);
static_assert(!StorageEngine<ProbeEngine<EngineFlaw::load_returns_hard_state>>);
// The other concepts' models are not storage engines.
static_assert(!StorageEngine<memory::KvStore>);
static_assert(!StorageEngine<int>);

// ---- StateMachine ----------------------------------------------------------------------------

enum class MachineFlaw {
  none,
  no_response_type,
  apply_returns_void,
  apply_without_responses,  // apply(batch): no way to answer the waiting clients
  applied_index_not_const,
  applied_index_returns_term_result,
  snapshot_to_string,  // snapshot(std::string&) instead of a SnapshotSink
  no_snapshot,
  restore_returns_void_result,  // must report the restored applied index
};

template <MachineFlaw F>
struct ProbeMachineBase {
  using response_type = std::string;
};
template <>
struct ProbeMachineBase<MachineFlaw::no_response_type> {};

template <MachineFlaw F>
struct ProbeMachine : ProbeMachineBase<F> {
  // The response type spelled out: a machine without response_type still needs one here.
  using response = std::string;

  result<void> apply(std::span<const Entry>,
                     std::vector<response>&) requires(F != MachineFlaw::apply_returns_void &&
                                                      F != MachineFlaw::apply_without_responses);
  void apply(std::span<const Entry>,
             std::vector<response>&) requires(F == MachineFlaw::apply_returns_void);
  result<void> apply(std::span<const Entry>) requires(F == MachineFlaw::apply_without_responses);

  LogIndex applied_index() const requires(F != MachineFlaw::applied_index_not_const &&
                                          F != MachineFlaw::applied_index_returns_term_result);
  LogIndex applied_index() requires(F == MachineFlaw::applied_index_not_const);
  result<Term> applied_index() const requires(F == MachineFlaw::applied_index_returns_term_result);

  result<LogIndex> snapshot(SnapshotSink&) const
      requires(F != MachineFlaw::snapshot_to_string && F != MachineFlaw::no_snapshot);
  result<LogIndex> snapshot(std::string&) const requires(F == MachineFlaw::snapshot_to_string);

  result<LogIndex> restore(SnapshotSource&) requires(F != MachineFlaw::restore_returns_void_result);
  result<void> restore(SnapshotSource&) requires(F == MachineFlaw::restore_returns_void_result);
};

static_assert(StateMachine<ProbeMachine<MachineFlaw::none>>);
static_assert(!StateMachine<ProbeMachine<MachineFlaw::no_response_type>>);
static_assert(!StateMachine<ProbeMachine<MachineFlaw::apply_returns_void>>);
static_assert(!StateMachine<ProbeMachine<MachineFlaw::apply_without_responses>>);
static_assert(!StateMachine<ProbeMachine<MachineFlaw::applied_index_not_const>>);
static_assert(!StateMachine<ProbeMachine<MachineFlaw::applied_index_returns_term_result>>);
static_assert(!StateMachine<ProbeMachine<MachineFlaw::snapshot_to_string>>);
static_assert(!StateMachine<ProbeMachine<MachineFlaw::no_snapshot>>);
static_assert(!StateMachine<ProbeMachine<MachineFlaw::restore_returns_void_result>>);
static_assert(!StateMachine<memory::Engine>);
static_assert(!StateMachine<memory::KvStore>);

// ---- KvStore ---------------------------------------------------------------------------------

enum class KvFlaw {
  none,
  get_returns_optional,  // no result<>: an I/O error could not be reported
  get_not_const,
  scan_returns_void,
  no_scan,
  write_without_index,  // the applied index must be recorded with the data
  applied_index_returns_int,
  no_clear,
  clear_without_index,
};

template <KvFlaw F>
struct ProbeKv {
  result<std::optional<std::string>> get(std::string_view) const
      requires(F != KvFlaw::get_returns_optional && F != KvFlaw::get_not_const);
  std::optional<std::string> get(std::string_view) const
      requires(F == KvFlaw::get_returns_optional);
  result<std::optional<std::string>> get(std::string_view) requires(F == KvFlaw::get_not_const);

  result<void> scan(std::string_view, std::string_view, const KvVisitor&) const
      requires(F != KvFlaw::scan_returns_void && F != KvFlaw::no_scan);
  void scan(std::string_view, std::string_view, const KvVisitor&) const
      requires(F == KvFlaw::scan_returns_void);

  result<void> write(const WriteBatch&, LogIndex) requires(F != KvFlaw::write_without_index);
  result<void> write(const WriteBatch&) requires(F == KvFlaw::write_without_index);

  LogIndex applied_index() const requires(F != KvFlaw::applied_index_returns_int);
  int applied_index() const requires(F == KvFlaw::applied_index_returns_int);

  result<void> clear(LogIndex) requires(F != KvFlaw::no_clear && F != KvFlaw::clear_without_index);
  result<void> clear() requires(F == KvFlaw::clear_without_index);
};

static_assert(KvStore<memory::KvStore>);
static_assert(KvStore<ProbeKv<KvFlaw::none>>);
static_assert(!KvStore<ProbeKv<KvFlaw::get_returns_optional>>);
static_assert(!KvStore<ProbeKv<KvFlaw::get_not_const>>);
static_assert(!KvStore<ProbeKv<KvFlaw::scan_returns_void>>);
static_assert(!KvStore<ProbeKv<KvFlaw::no_scan>>);
static_assert(!KvStore<ProbeKv<KvFlaw::write_without_index>>);
static_assert(!KvStore<ProbeKv<KvFlaw::applied_index_returns_int>>);
static_assert(!KvStore<ProbeKv<KvFlaw::no_clear>>);
static_assert(!KvStore<ProbeKv<KvFlaw::clear_without_index>>);
static_assert(!KvStore<memory::Engine>);

// ---- A complete state machine, run ----------------------------------------------------------

/// Counts normal entries; shows that a small real type (not only declarations) satisfies
/// StateMachine and that the concept's calls work as documented.
class CountingMachine {
 public:
  using response_type = std::uint64_t;

  result<void> apply(std::span<const Entry> batch, std::vector<response_type>& responses) {
    for (const Entry& e : batch) {
      if (e.type == EntryType::normal) ++count_;
      applied_ = e.index;
      responses.push_back(count_);
    }
    return success();
  }
  [[nodiscard]] LogIndex applied_index() const { return applied_; }
  result<LogIndex> snapshot(SnapshotSink& sink) const {
    const std::string image = std::to_string(applied_) + " " + std::to_string(count_);
    DENGINE_TRYV(sink.write(std::span<const char>(image.data(), image.size())));
    return applied_;
  }
  result<LogIndex> restore(SnapshotSource& source) {
    DENGINE_TRY(image, read_all(source));
    const auto space = image.find(' ');
    if (space == std::string::npos)
      return error(errc::storage_corrupt, "counting machine: snapshot without a separator");
    applied_ = std::stoull(image.substr(0, space));
    count_ = std::stoull(image.substr(space + 1));
    return applied_;
  }

 private:
  LogIndex applied_ = 0;
  std::uint64_t count_ = 0;
};

static_assert(StateMachine<CountingMachine>);

TEST_CASE("concepts: a complete StateMachine applies, snapshots and restores") {
  CountingMachine m;
  const std::vector<Entry> batch{
      {1, 1, EntryType::noop, ""}, {1, 2, EntryType::normal, "a"}, {1, 3, EntryType::normal, "b"}};
  std::vector<CountingMachine::response_type> responses;
  REQUIRE(m.apply(batch, responses));
  CHECK(responses == std::vector<std::uint64_t>{0, 1, 2});  // exactly one per entry
  CHECK(m.applied_index() == 3);

  StringSnapshotSink sink;
  CHECK(m.snapshot(sink).value() == 3);
  CountingMachine restored;
  StringSnapshotSource source(sink.data);
  CHECK(restored.restore(source).value() == 3);
  CHECK(restored.applied_index() == 3);

  StringSnapshotSource corrupt("nonsense");
  auto r = restored.restore(corrupt);
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::storage_corrupt);
}

}  // namespace
