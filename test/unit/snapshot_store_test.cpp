// The SnapshotStore concept and its models (node/snapshot_store.hpp): both stores keep what
// the concept promises; FileSnapshotStore: a save that fails midway (here: the file-size
// limit, as a full disk would) leaves no snapshot.tmp behind and the previous image intact; a
// snapshot.tmp left by a crash is removed at open; the index accessors; a file of the format
// written before the shared byte codec still reads.

#include <doctest/doctest.h>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <type_traits>

#include "dengine/conformance/temp_dir.hpp"
#include "dengine/node/snapshot_store.hpp"

namespace dengine::test {
namespace {

namespace fs = std::filesystem;

std::shared_ptr<const Snapshot> image(LogIndex index, std::size_t bytes) {
  auto s = std::make_shared<Snapshot>();
  s->meta.index = index;
  s->meta.term = 1;
  s->meta.membership.voters = {1};
  s->data.assign(bytes, 'x');
  return s;
}

/// What the SnapshotStore concept promises, through the concept only.
template <dengine::SnapshotStore S>
void check_snapshot_store(S& store, bool in_memory) {
  CHECK(store.in_memory() == in_memory);
  REQUIRE(store.load());
  CHECK(store.load().value() == nullptr);
  auto none = store.save(nullptr);
  REQUIRE_FALSE(none);
  CHECK(none.error() == errc::invalid_argument);
  for (LogIndex index : {LogIndex{7}, LogIndex{3}}) {  // any image replaces the last, even older
    const auto saved = image(index, 100 + index);
    REQUIRE(store.save(saved));
    auto loaded = store.load();
    REQUIRE(loaded);
    REQUIRE(loaded.value());
    CHECK(*loaded.value() == *saved);
  }
}

struct MissingLoad {
  result<void> save(const std::shared_ptr<const Snapshot>&);
  [[nodiscard]] bool in_memory() const noexcept;
};
struct LoadReturnsValue {
  result<void> save(const std::shared_ptr<const Snapshot>&);
  result<Snapshot> load();
  [[nodiscard]] bool in_memory() const noexcept;
};
static_assert(dengine::SnapshotStore<node::MemorySnapshotStore>);
static_assert(dengine::SnapshotStore<node::FileSnapshotStore>);
static_assert(!dengine::SnapshotStore<MissingLoad>);
static_assert(!dengine::SnapshotStore<LoadReturnsValue>);
static_assert(!dengine::SnapshotStore<int>);
// The concept is the only contract: neither model has a virtual function (no base class on the
// storage path), and both answer in_memory() at compile time.
static_assert(!std::is_polymorphic_v<node::MemorySnapshotStore>);
static_assert(!std::is_polymorphic_v<node::FileSnapshotStore>);
static_assert(node::MemorySnapshotStore::in_memory());
static_assert(!node::FileSnapshotStore::in_memory());

}  // namespace

TEST_CASE("snapshot store: both models keep what the SnapshotStore concept promises") {
  node::MemorySnapshotStore memory;
  check_snapshot_store(memory, true);
  CHECK(memory.save_count() == 2);
  TempDir dir;
  auto file = node::FileSnapshotStore::open(dir.path()).value();
  check_snapshot_store(file, false);
  auto reopened = node::FileSnapshotStore::open(dir.path()).value();
  CHECK(reopened.load().value()->meta.index == 3);
}

TEST_CASE("snapshot store: format 1 (before member addresses) is still read, byte by byte") {
  // Format 1 as FileSnapshotStore wrote it: magic, u32 version, u64 index, u64 term, u32 n +
  // n x u64 voters, u32 m + m x u64 learners, u64 size, data, u32 CRC32C (LE).
  Snapshot s;
  s.meta.index = 0x0102030405060708ULL;
  s.meta.term = 9;
  s.meta.membership.voters = {1, 2};
  s.meta.membership.learners = {3};
  s.data = "abc";
  std::string expected = "DENGSNAP";
  auto le = [&](std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) expected.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  le(1, 4);
  le(s.meta.index, 8);
  le(9, 8);
  le(2, 4);
  le(1, 8);
  le(2, 8);
  le(1, 4);
  le(3, 8);
  le(3, 8);
  expected += "abc";
  le(crc32c::value(std::string_view(expected)), 4);
  auto decoded = node::FileSnapshotStore::decode(expected, "test");
  REQUIRE(decoded);
  CHECK(decoded.value() == s);
  // Every cut of the file is refused, never misread.
  for (std::size_t n = 0; n < expected.size(); ++n)
    CHECK_FALSE(node::FileSnapshotStore::decode(expected.substr(0, n), "test"));
}

TEST_CASE("snapshot store: format 2 carries the members' addresses, byte by byte") {
  Snapshot s;
  s.meta.index = 7;
  s.meta.term = 9;
  s.meta.membership.voters = {1, 2};
  s.meta.membership.addresses = {{2, "h:2"}};
  s.data = "abc";
  std::string expected = "DENGSNAP";
  auto le = [&](std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) expected.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  le(2, 4);  // version
  le(7, 8);
  le(9, 8);
  le(2, 4);
  le(1, 8);
  le(2, 8);
  le(0, 4);  // no learners
  le(1, 4);  // one address: member 2, 3 bytes, "h:2"
  le(2, 8);
  le(3, 4);
  expected += "h:2";
  le(3, 8);
  expected += "abc";
  le(crc32c::value(std::string_view(expected)), 4);
  CHECK(node::FileSnapshotStore::encode(s) == expected);
  auto decoded = node::FileSnapshotStore::decode(expected, "test");
  REQUIRE(decoded);
  CHECK(decoded.value() == s);
  for (std::size_t n = 0; n < expected.size(); ++n)
    CHECK_FALSE(node::FileSnapshotStore::decode(expected.substr(0, n), "test"));
}

TEST_CASE("snapshot store: a save that fails midway leaves no snapshot.tmp and the old image") {
  TempDir dir;
  {
    auto store = node::FileSnapshotStore::open(dir.path()).value();
    REQUIRE(store.save(image(5, 1000)));
    CHECK(store.saved_index() == 5);
  }
  // In a child: files may grow to 64 KiB at most; the next image is 1 MiB, so its write fails
  // with EFBIG after 64 KiB of it reached snapshot.tmp.
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    std::signal(SIGXFSZ, SIG_IGN);  // a write past the limit fails with EFBIG instead of killing
    rlimit limit{64U << 10, 64U << 10};
    if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) std::_Exit(10);
    auto store = node::FileSnapshotStore::open(dir.path());
    if (!store) std::_Exit(11);
    auto saved = store.value().save(image(9, 1U << 20));
    if (saved) std::_Exit(12);
    if (saved.error() != errc::no_space) std::_Exit(13);
    if (saved.error().detail.find("snapshot.tmp") == std::string::npos) std::_Exit(14);
    if (store.value().saved_index() != 0) std::_Exit(15);
    std::_Exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK_FALSE(fs::exists(dir.path() / "snapshot.tmp"));
  auto store = node::FileSnapshotStore::open(dir.path()).value();
  auto loaded = store.load();
  REQUIRE(loaded);
  REQUIRE(loaded.value());
  CHECK(loaded.value()->meta.index == 5);
  CHECK(store.saved_index() == 5);
}

TEST_CASE("snapshot store: open removes a snapshot.tmp a crash left; peek_index reads the header") {
  TempDir dir;
  { std::ofstream(dir.path() / "snapshot.tmp") << std::string(4096, 'p'); }
  auto store = node::FileSnapshotStore::open(dir.path()).value();
  CHECK_FALSE(fs::exists(dir.path() / "snapshot.tmp"));
  CHECK(store.peek_index().value() == 0);
  REQUIRE(store.save(image(42, 10)));
  CHECK(store.peek_index().value() == 42);
  { std::ofstream(store.path(), std::ios::trunc) << "not a snapshot at all"; }
  auto bad = store.peek_index();
  REQUIRE_FALSE(bad);
  CHECK(bad.error() == errc::storage_corrupt);
  CHECK(bad.error().detail.find(store.path().string()) != std::string::npos);
}

}  // namespace dengine::test
