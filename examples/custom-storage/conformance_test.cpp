// The shared conformance suites over the example's two halves — the StorageEngine suite over
// example::FileLog (the same cases every backend of dengine passes), the StateMachine suite over
// example::Counter (the same cases the KV machine passes on every backend) — plus what only they
// have: the log's recovery from a torn tail and its refusal of damage in the middle of the log,
// the counter's refusal of an entry out of order.
//
// Build it against dependency('dengine-conformance') (or the installed dengine-conformance.pc)
// and doctest; see docs/custom-storage.md.

#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cstdint>
#include <fstream>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "counter.hpp"
#include "dengine/conformance/state_machine.hpp"
#include "dengine/conformance/storage.hpp"
#include "dengine/conformance/temp_dir.hpp"
#include "file_log.hpp"

namespace {

/// What the suite needs: a fresh engine per test case, the engine as it is now, and a clean
/// restart from the same directory (dengine/conformance/storage.hpp has the fixture rules).
struct FileLogFixture {
  using engine_type = example::FileLog;
  FileLogFixture() { open(); }
  engine_type& engine() { return *log_; }
  void reopen() {
    log_.reset();  // close, then open again: what a process restart does
    open();
  }

 private:
  void open() { log_.emplace(example::FileLog::open(dir_.path()).value()); }
  dengine::test::TempDir dir_{"file-log-"};
  std::optional<engine_type> log_;
};

/// The StateMachine suite's fixture. The counter lives in memory, so a restart starts it from 0
/// (the node then brings it back from its snapshot and the log): the suite accepts that as the
/// empty prefix of the log. Without storage it has no crash_after().
struct CounterFixture {
  using machine_type = example::Counter;
  machine_type& machine() { return counter_; }
  void reopen() { counter_ = example::Counter{}; }
  /// Adds of -100..100, and now and then a command that does not parse (it changes nothing and
  /// still answers).
  static std::string command(std::uint64_t n) {
    if (n % 9 == 4) return "add nothing";
    return example::add_command(static_cast<std::int64_t>(n * 7919 % 201) - 100);
  }
  static std::string describe(const example::CounterResponse& r) {
    return "index " + std::to_string(r.index) + ", value " + std::to_string(r.value);
  }

 private:
  machine_type counter_;
};

}  // namespace

DENGINE_STORAGE_CONFORMANCE(FileLogFixture);
DENGINE_STATE_MACHINE_CONFORMANCE(CounterFixture);

namespace {

using dengine::conformance::make_entries;
using dengine::conformance::read_log;

/// Appends `n` bytes of `byte` to the log file, as a write cut short by a crash leaves them.
void append_raw(const dengine::test::TempDir& dir, std::size_t n, char byte) {
  std::ofstream out(dir.path() / "log", std::ios::binary | std::ios::app);
  out << std::string(n, byte);
}

TEST_CASE("file log: a torn tail is cut off at open, and appends continue after it") {
  dengine::test::TempDir dir("file-log-torn-");
  {
    auto log = example::FileLog::open(dir.path()).value();
    CONF_REQUIRE_OK(log.append(make_entries(1, 5, 1)));
    CONF_REQUIRE_OK(log.sync());
  }
  append_raw(dir, 13, '\x7f');  // half a record frame
  auto log = example::FileLog::open(dir.path()).value();
  CHECK(read_log(log) == make_entries(1, 5, 1));
  CONF_REQUIRE_OK(log.append(make_entries(6, 7, 1)));
  CONF_REQUIRE_OK(log.sync());
  log = example::FileLog::open(dir.path()).value();  // a second restart
  CHECK(read_log(log) == make_entries(1, 7, 1));
}

TEST_CASE("file log: a damaged record followed by valid ones is storage_corrupt") {
  dengine::test::TempDir dir("file-log-corrupt-");
  {
    auto log = example::FileLog::open(dir.path()).value();
    CONF_REQUIRE_OK(log.append(make_entries(1, 5, 1)));
    CONF_REQUIRE_OK(log.sync());
  }
  {
    // Flip one byte inside the last entry's data: its checksum no longer matches...
    std::fstream file(dir.path() / "log", std::ios::binary | std::ios::in | std::ios::out);
    file.seekp(-1, std::ios::end);
    file.put('#');
  }
  // ...which alone would be a torn tail; with a valid record after it, it is damage.
  {
    std::string record;
    auto payload = std::string(1, '\x03') + std::string(8, '\0');  // truncate record, index 0
    example::file_log_detail::append_record(record, payload);
    std::ofstream out(dir.path() / "log", std::ios::binary | std::ios::app);
    out << record;
  }
  auto reopened = example::FileLog::open(dir.path());
  CONF_REQUIRE_ERROR(dengine::errc::storage_corrupt, reopened);
  CHECK(reopened.error().detail.find("offset") != std::string::npos);
}

TEST_CASE("counter: apply, snapshot and restore") {
  example::Counter counter;
  std::vector<dengine::Entry> batch{{1, 1, dengine::EntryType::noop, ""},
                                    {1, 2, dengine::EntryType::normal, example::add_command(5)},
                                    {1, 3, dengine::EntryType::normal, "nonsense"},
                                    {1, 4, dengine::EntryType::normal, example::add_command(-2)}};
  std::vector<example::CounterResponse> responses;
  CONF_REQUIRE_OK(counter.apply(batch, responses));
  REQUIRE(responses.size() == 4);
  CHECK(responses[1].value == 5);
  CHECK(responses[2].value == 5);  // an unparsable command changes nothing
  CHECK(responses[3].value == 3);
  CHECK(counter.applied_index() == 4);

  dengine::StringSnapshotSink sink;
  CHECK(CONF_VALUE(counter.snapshot(sink)) == 4);
  example::Counter restored;
  dengine::StringSnapshotSource source(sink.data);
  CHECK(CONF_VALUE(restored.restore(source)) == 4);
  CHECK(restored.value() == 3);
  // An entry out of order is refused: the node never hands one out.
  std::vector<dengine::Entry> gap{{1, 6, dengine::EntryType::normal, example::add_command(1)}};
  CONF_REQUIRE_ERROR(dengine::errc::invalid_argument, restored.apply(gap, responses));
}

}  // namespace
