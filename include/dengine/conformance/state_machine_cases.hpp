#pragma once
/// The StateMachine conformance cases and the helpers they share (the log they apply, images,
/// comparisons). Include dengine/conformance/state_machine.hpp, not this file.

#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dengine/conformance/helpers.hpp"
#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/raft/config_change.hpp"
#include "dengine/storage/concepts.hpp"
#include "dengine/storage/snapshot_io.hpp"

namespace dengine::conformance {

template <class F>
using machine_t = typename F::machine_type;
template <class F>
using response_t = typename machine_t<F>::response_type;

/// A fixture that can simulate a power failure (crash_after; see state_machine.hpp).
template <class F>
concept CrashableFixture = requires(F& f, std::size_t writes) {
  f.crash_after(writes);
};

/// The salt of a second history: its entries carry command(i + other_history).
inline constexpr std::uint64_t other_history = 1'000'000;

/// Entry `index` of the log the suite applies (state_machine.hpp says which is which).
template <class F>
Entry machine_entry(LogIndex index, std::uint64_t salt = 0) {
  const Term term = 1 + index / 40;
  if (index % 13 == 1) return Entry{term, index, EntryType::noop, ""};
  if (index % 29 == 0) {
    raft::ConfigChange change;
    change.kind = raft::ConfigChange::Kind::add_learner;
    change.node = 2 + index % 3;
    change.context = "node-" + std::to_string(change.node);
    return Entry{term, index, EntryType::config_change, raft::encode_config_change(change)};
  }
  return Entry{term, index, EntryType::normal, F::command(index + salt)};
}

/// `bytes` for a failure message: printable ASCII as is, anything else as \xNN, cut at `max`.
inline std::string printable(std::string_view bytes, std::size_t max = 120) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (std::size_t k = 0; k < bytes.size() && k < max; ++k) {
    const auto c = static_cast<unsigned char>(bytes[k]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      out += "\\x";
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 0xf]);
    }
  }
  if (bytes.size() > max) out += "...";
  return out;
}

/// Applies entries [from, to] of history `salt` (nothing when from > to) in batches of 1 to
/// `max_batch` entries, their sizes drawn from `seed`. REQUIREs of every batch that apply()
/// succeeds, appends exactly one response per entry and leaves applied_index() at the batch's
/// last index; CHECKs at the end that no response appended before was changed by a later
/// batch. Returns each entry's response as F::describe gives it.
template <class F>
std::vector<std::string> feed(F& f, LogIndex from, LogIndex to, LogIndex max_batch,
                              std::uint64_t seed, std::uint64_t salt = 0) {
  std::mt19937_64 rng(seed);
  std::vector<response_t<F>> responses;
  std::vector<std::string> described;
  for (LogIndex lo = from; lo <= to;) {
    const LogIndex n =
        std::min<LogIndex>(to - lo + 1, std::uniform_int_distribution<LogIndex>(1, max_batch)(rng));
    std::vector<Entry> batch;
    for (LogIndex i = lo; i < lo + n; ++i) batch.push_back(machine_entry<F>(i, salt));
    CAPTURE(lo);
    CAPTURE(n);
    const std::size_t before = responses.size();
    CONF_REQUIRE_OK(f.machine().apply(std::span<const Entry>(batch), responses));
    REQUIRE_MESSAGE(responses.size() == before + n,
                    "apply() must append exactly one response per entry to the vector");
    REQUIRE(f.machine().applied_index() == lo + n - 1);
    for (std::size_t k = before; k < responses.size(); ++k)
      described.push_back(F::describe(responses[k]));
    lo += n;
  }
  std::size_t changed = 0;
  while (changed < responses.size() && F::describe(responses[changed]) == described[changed])
    ++changed;
  CHECK_MESSAGE(changed == responses.size(),
                "the response to entry " << from + changed << " changed after a later apply()");
  return described;
}

/// The snapshot image of `machine`, REQUIREing that snapshot() succeeds and returns
/// applied_index().
template <class M>
std::string image_of(const M& machine) {
  StringSnapshotSink sink;
  const LogIndex at = CONF_VALUE(machine.snapshot(sink));
  REQUIRE_MESSAGE(at == machine.applied_index(), "snapshot() must return applied_index()");
  return std::move(sink.data);
}

/// A snapshot source that yields its bytes 7 at a time: restore() must not assume that one
/// read() returns what it asked for.
class TrickleSource final : public SnapshotSource {
 public:
  explicit TrickleSource(std::string_view data) : data_(data) {}
  result<std::size_t> read(std::span<char> buffer) override {
    const std::size_t n = std::min({buffer.size(), std::size_t{7}, data_.size()});
    std::copy_n(data_.data(), n, buffer.data());
    data_.remove_prefix(n);
    return n;
  }

 private:
  std::string_view data_;
};

/// Restores f's machine from `image`, REQUIREing success; returns what restore() returned.
template <class F>
LogIndex restore_image(F& f, std::string_view image) {
  TrickleSource source(image);
  return CONF_VALUE(f.machine().restore(source));
}

/// CHECKs that two snapshot images are byte-identical, naming the first difference.
inline void check_same_image(const std::string& got, const std::string& expected,
                             const char* what) {
  const bool same = got == expected;
  std::string where;
  if (!same) {
    const auto at = static_cast<std::size_t>(
        std::mismatch(
            got.begin(),
            got.begin() + static_cast<std::ptrdiff_t>(std::min(got.size(), expected.size())),
            expected.begin())
            .first -
        got.begin());
    where = std::to_string(got.size()) + " bytes against " + std::to_string(expected.size()) +
            ", first difference at byte " + std::to_string(at) + ": \"" +
            printable(std::string_view(got).substr(at, 40)) + "\" against \"" +
            printable(std::string_view(expected).substr(at, 40)) + "\"";
  }
  const std::string message = std::string(what) + ": the snapshot images differ: " + where;
  CHECK_MESSAGE(same, message);
}

/// CHECKs that two machines answered entries first, first + 1, ... alike.
inline void check_same_responses(const std::vector<std::string>& got,
                                 const std::vector<std::string>& expected, LogIndex first) {
  REQUIRE(got.size() == expected.size());
  const auto at = static_cast<std::size_t>(
      std::mismatch(got.begin(), got.end(), expected.begin()).first - got.begin());
  const bool same = at == got.size();
  CHECK_MESSAGE(same, "the response to entry "
                          << first + at << " differs: \"" << (same ? "" : printable(got[at]))
                          << "\" against \"" << (same ? "" : printable(expected[at])) << "\"");
}

/// After a restart of f, whose history was entries [1, most] (or fewer) of history `salt`:
/// CHECKs that f holds a prefix of it — its applied index r is at most `most` and its image is
/// that of a fresh machine fed entries [1, r] — and that both then answer entries r + 1 to
/// most + 10 alike.
template <class F>
void check_holds_prefix(F& f, LogIndex most, std::uint64_t salt = 0) {
  const LogIndex r = f.machine().applied_index();
  CAPTURE(r);
  REQUIRE(r <= most);
  F reference;
  (void)feed(reference, 1, r, 16, 7, salt);
  check_same_image(image_of(f.machine()), image_of(reference.machine()),
                   "after the restart, against a machine fed the entries up to its applied index");
  const auto got = feed(f, r + 1, most + 10, 5, 8, salt);
  const auto expected = feed(reference, r + 1, most + 10, 9, 9, salt);
  check_same_responses(got, expected, r + 1);
  check_same_image(image_of(f.machine()), image_of(reference.machine()),
                   "after the restart and more entries");
}

/// Feeds `f` entries 1 to `to` (batches of at most `max_batch`, cut by `seed`) and returns its
/// image then.
template <class F>
std::string fed_image(F& f, LogIndex to, LogIndex max_batch, std::uint64_t seed) {
  (void)feed(f, 1, to, max_batch, seed);
  return image_of(f.machine());
}

/// Restores `image` (a's state at applied index `at`) into `b`, CHECKs that b then is exactly
/// the image, feeds both the entries at + 1 to `to` (batched differently) and CHECKs that they
/// answer alike and end with the same image. `seed` varies the batching.
template <class F>
void check_restored_continues(F& a, F& b, const std::string& image, LogIndex at, LogIndex to,
                              std::uint64_t seed, const char* whose) {
  CHECK(restore_image(b, image) == at);
  CHECK(b.machine().applied_index() == at);
  check_same_image(image_of(b.machine()), image, whose);
  const auto original = feed(a, at + 1, to, 3, seed);
  const auto restored = feed(b, at + 1, to, 17, seed + 1);
  check_same_responses(restored, original, at + 1);
  check_same_image(image_of(b.machine()), image_of(a.machine()),
                   "the same entries applied on the original and the restored one");
}

}  // namespace dengine::conformance

TEST_CASE_TEMPLATE_DEFINE("StateMachine conformance: a fresh machine", F, dengine_conf_sm_fresh) {
  using namespace dengine;
  using conformance::image_of;
  static_assert(StateMachine<conformance::machine_t<F>>);
  F f;
  CHECK(f.machine().applied_index() == 0);
  const std::string empty = image_of(f.machine());

  std::vector<conformance::response_t<F>> responses;
  CONF_REQUIRE_OK(f.machine().apply(std::span<const Entry>(), responses));
  CHECK(responses.empty());
  CHECK(f.machine().applied_index() == 0);
  conformance::check_same_image(image_of(f.machine()), empty, "after an empty batch");

  F other;
  CHECK(conformance::restore_image(other, empty) == 0);
  CHECK(other.machine().applied_index() == 0);
  conformance::check_same_image(image_of(other.machine()), empty,
                                "a fresh machine restored from a fresh machine's image");
  f.reopen();
  CHECK(f.machine().applied_index() == 0);
  conformance::check_same_image(image_of(f.machine()), empty, "a fresh machine after a restart");
}

TEST_CASE_TEMPLATE_DEFINE("StateMachine conformance: exactly one response per entry", F,
                          dengine_conf_sm_responses) {
  // feed() checks the count and the applied index after every batch, and that earlier responses
  // stay as they were: one entry per batch first, then larger batches.
  using namespace dengine;
  F f;
  (void)conformance::feed(f, 1, 30, 1, 1);
  (void)conformance::feed(f, 31, 120, 24, 2);

  // A batch without a single command: each entry still answers and advances the index.
  const Term t = 9;
  const std::vector<Entry> not_commands{
      Entry{t, 121, EntryType::noop, ""},
      Entry{t, 122, EntryType::config_change, conformance::machine_entry<F>(29).data},
      Entry{t, 123, EntryType::noop, ""}};
  std::vector<conformance::response_t<F>> responses;
  CONF_REQUIRE_OK(f.machine().apply(std::span<const Entry>(not_commands), responses));
  CHECK(responses.size() == 3);
  CHECK(f.machine().applied_index() == 123);

  CONF_REQUIRE_OK(f.machine().apply(std::span<const Entry>(), responses));
  CHECK(responses.size() == 3);
  CHECK(f.machine().applied_index() == 123);

  const std::vector<Entry> command{Entry{t, 124, EntryType::normal, F::command(124)}};
  CONF_REQUIRE_OK(f.machine().apply(std::span<const Entry>(command), responses));
  CHECK(responses.size() == 4);
  CHECK(f.machine().applied_index() == 124);
}

TEST_CASE_TEMPLATE_DEFINE("StateMachine conformance: the same log, the same answers and images", F,
                          dengine_conf_sm_determinism) {
  // Replicas cut the committed log into batches of their own (how much each apply round
  // gathers), so only the log may decide the responses and the image, never the batching.
  using namespace dengine;
  using conformance::image_of;
  F a;
  F b;
  LogIndex from = 1;
  for (const LogIndex to : {LogIndex{40}, LogIndex{130}, LogIndex{260}}) {
    CAPTURE(to);
    const auto one_by_one = conformance::feed(a, from, to, 1, 11);
    const auto batched = conformance::feed(b, from, to, 40, 12 + to);
    conformance::check_same_responses(batched, one_by_one, from);
    const std::string image = image_of(a.machine());
    conformance::check_same_image(image_of(b.machine()), image,
                                  "two machines fed the same log, batched differently");
    conformance::check_same_image(image_of(a.machine()), image,
                                  "a second snapshot of the same machine");
    from = to + 1;
  }
}

TEST_CASE_TEMPLATE_DEFINE("StateMachine conformance: the applied index is persisted with the data",
                          F, dengine_conf_sm_restart) {
  // A restart must neither re-apply nor skip an entry: whatever survives is the state of a
  // prefix of the log, with that prefix's last index as the applied index (state_machine.hpp).
  using namespace dengine;
  using conformance::image_of;
  SUBCASE("a clean restart keeps a prefix") {
    F f;
    (void)conformance::feed(f, 1, 50, 6, 21);
    f.reopen();
    conformance::check_holds_prefix(f, 50);  // which applies up to 60
    f.reopen();
    conformance::check_holds_prefix(f, 60);
  }
  if constexpr (conformance::CrashableFixture<F>) {
    SUBCASE("a power failure during apply keeps a prefix") {
      // The power fails after 0 writes, then 1, 2, ... until the entries are all applied first.
      for (std::size_t writes = 0;; ++writes) {
        CAPTURE(writes);
        REQUIRE(writes < 10000);
        F f;
        (void)conformance::feed(f, 1, 40, 5, 31);
        f.crash_after(writes);
        bool failed = false;
        std::vector<conformance::response_t<F>> responses;
        for (LogIndex lo = 41; lo <= 80 && !failed; lo += 8) {
          std::vector<Entry> batch;
          for (LogIndex i = lo; i < lo + 8; ++i) batch.push_back(conformance::machine_entry<F>(i));
          failed = !f.machine().apply(std::span<const Entry>(batch), responses);
        }
        f.reopen();
        conformance::check_holds_prefix(f, 80);
        if (!failed) break;
      }
    }
    SUBCASE("a power failure during restore leaves the old state, the image or nothing") {
      F source;
      (void)conformance::feed(source, 1, 60, 8, 41);
      const std::string image = image_of(source.machine());
      F blank;
      const std::string nothing = image_of(blank.machine());
      for (std::size_t writes = 0;; ++writes) {
        CAPTURE(writes);
        REQUIRE(writes < 10000);
        F f;
        (void)conformance::feed(f, 1, 30, 8, 42, conformance::other_history);
        const std::string before = image_of(f.machine());
        f.crash_after(writes);
        conformance::TrickleSource trickle(image);
        const bool restored = f.machine().restore(trickle).has_value();
        f.reopen();
        const std::string now = image_of(f.machine());
        const bool whole = now == before || now == image || now == nothing;
        CHECK_MESSAGE(whole, "after the restart the machine is at applied index "
                                 << f.machine().applied_index()
                                 << " with an image that is neither the state before the "
                                    "restore (30), nor the image (60), nor empty (0)");
        if (restored) break;
      }
    }
  }
}

TEST_CASE_TEMPLATE_DEFINE("StateMachine conformance: snapshot, restore, and apply on", F,
                          dengine_conf_sm_snapshot_restore) {
  namespace conf = dengine::conformance;
  F a;
  const std::string image = conf::fed_image(a, 80, 7, 51);
  F b;
  conf::check_restored_continues(a, b, image, 80, 160, 52,
                                 "a machine restored from an image, against the image");
  b.reopen();
  conf::check_holds_prefix(b, 160);
}

TEST_CASE_TEMPLATE_DEFINE("StateMachine conformance: restore replaces the whole state", F,
                          dengine_conf_sm_restore_replaces) {
  using namespace dengine;
  using conformance::image_of;
  F a;
  const std::string image = conformance::fed_image(a, 60, 6, 61);

  // b first applies `applied` entries of another history, then restores a's image.
  auto check_replaced = [&](LogIndex applied) {
    F b;
    (void)conformance::feed(b, 1, applied, 6, 62, conformance::other_history);
    conformance::check_restored_continues(
        a, b, image, 60, 100, 63, "a machine with a history of its own, restored from an image");
  };
  SUBCASE("over a machine ahead of the image") { check_replaced(90); }
  SUBCASE("over a machine behind it") { check_replaced(20); }
  SUBCASE("over a machine at the same index") { check_replaced(60); }
  SUBCASE("an image of a fresh machine empties it") {
    F fresh;
    const std::string nothing = image_of(fresh.machine());
    F b;
    (void)conformance::feed(b, 1, 40, 6, 65, conformance::other_history);
    CHECK(conformance::restore_image(b, nothing) == 0);
    CHECK(b.machine().applied_index() == 0);
    conformance::check_same_image(image_of(b.machine()), nothing,
                                  "a machine restored from a fresh machine's image");
    conformance::check_same_responses(conformance::feed(b, 1, 30, 4, 66),
                                      conformance::feed(fresh, 1, 30, 4, 67), 1);
  }
}
