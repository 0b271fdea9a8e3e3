// FileSnapshotStore (node/snapshot_store.hpp): a save that fails midway (here: the file-size
// limit, as a full disk would) leaves no snapshot.tmp behind and the previous image intact; a
// snapshot.tmp left by a crash is removed at open; the index accessors.

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

#include "../backends/temp_dir.hpp"
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

}  // namespace

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
