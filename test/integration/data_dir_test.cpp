// The data dir marker through EmbeddedEngine (data_dir_marker.hpp, data_dir_guard.hpp): a data
// dir says which backend, member and cluster it belongs to and how far its data reached; a start
// over another backend's dir, a deleted, emptied, truncated or rolled-back store, or files
// without a marker is refused with the file named — never an empty restart, never a bootstrap
// over data. Also: a first start that fails leaves the data dir empty, and rawfile's segment
// size and preallocation reach the backend through EngineConfig::backend_tuning.

#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "../backends/built_backends.hpp"
#include "dengine/backends/memory.hpp"
#include "dengine/conformance/temp_dir.hpp"
#include "dengine/engine/data_dir_marker.hpp"
#include "dengine/engine/embedded_engine.hpp"
#include "engine_harness.hpp"
#include "harness.hpp"

namespace dengine::test {
namespace {

using engine::DataDirMarker;
using engine::EngineConfig;
namespace fs = std::filesystem;

EngineConfig dir_config(const fs::path& dir, NodeId id = 1) {
  EngineConfig c = EngineConfig::cluster_member(dir, id, {id});
  c.node = test_config(id, {id});
  c.marker_interval = std::chrono::milliseconds(10);
  return c;
}

/// Starts, writes `n` keys prefix0..prefix{n-1}, stops cleanly.
template <class B>
void write_keys(const fs::path& dir, const std::string& prefix, int n) {
  auto e = start_ready<B>(dir_config(dir));
  auto kv = e->client();
  for (int i = 0; i < n; ++i) REQUIRE(kv.put(prefix + std::to_string(i), "v"));
  REQUIRE(e->stop());
}

DataDirMarker marker_of(const fs::path& dir) {
  auto m = DataDirMarker::read(dir);
  REQUIRE_MESSAGE(m, (m ? "" : m.error().message()));
  REQUIRE(m.value().has_value());
  return *m.value();
}

/// Every regular file under `dir`, relative.
std::vector<std::string> files_under(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) out.push_back(fs::relative(e.path(), dir).string());
  std::sort(out.begin(), out.end());
  return out;
}

bool mentions(const error& e, const std::string& text) {
  return e.detail.find(text) != std::string::npos;
}

/// Runs `child` in a forked process and returns its exit status (-1 if it did not exit).
template <class F>
int in_child(F child) {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int code = 99;
    try {
      code = child();
    } catch (...) {
      code = 98;
    }
    std::_Exit(code);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// Every backend that is built; the tests return at once for the memory backend (no data dir).
#define DENGINE_PERSISTENT_BACKENDS memory::Backend DENGINE_TEST_EXTRA_BACKENDS

}  // namespace

TEST_SUITE("data dir") {
  TEST_CASE_TEMPLATE("data dir: a marker names backend and member; its bounds follow the node", B,
                     DENGINE_PERSISTENT_BACKENDS) {
    if constexpr (!B::persistent) return;
    TempDir dir;
    auto e = start_ready<B>(dir_config(dir.path()));
    DataDirMarker m = marker_of(dir.path());
    CHECK(m.backend == B::name);
    CHECK(m.member_id == 1);
    CHECK(m.state == DataDirMarker::State::serving);
    auto kv = e->client();
    for (int i = 0; i < 50; ++i) REQUIRE(kv.put("k" + std::to_string(i), "v"));
    const LogIndex applied = e->status().applied;
    // The timer raises the bounds to the applied index (DiskFirst).
    REQUIRE(eventually([&] { return marker_of(dir.path()).applied_at_least >= applied; }));
    CHECK(marker_of(dir.path()).log_at_least >= applied);
    REQUIRE(e->stop());
    CHECK(marker_of(dir.path()).applied_at_least >= e->status().applied);
    e.reset();

    // Another member's or another cluster's data dir is refused.
    auto other = EmbeddedEngine<B>::start(dir_config(dir.path(), 2));
    REQUIRE_FALSE(other);
    CHECK(other.error() == errc::invalid_argument);
    CHECK(mentions(other.error(), "belongs to member 1"));
    EngineConfig c7 = dir_config(dir.path());
    c7.cluster_id = 7;
    start_ready<B>(c7)->stop().value();  // a marker without a cluster id takes the first one given
    CHECK(marker_of(dir.path()).cluster_id == 7);
    EngineConfig c8 = dir_config(dir.path());
    c8.cluster_id = 8;
    auto wrong_cluster = EmbeddedEngine<B>::start(c8);
    REQUIRE_FALSE(wrong_cluster);
    CHECK(mentions(wrong_cluster.error(), "belongs to cluster 7"));
    CHECK(start_ready<B>(dir_config(dir.path()))->client().get("k49").value().has_value());
  }

  TEST_CASE_TEMPLATE("data dir: a store restored from an older copy is refused, not served", B,
                     DENGINE_PERSISTENT_BACKENDS) {
    if constexpr (!B::persistent) return;
    TempDir dir;
    TempDir backup;
    write_keys<B>(dir.path(), "old", 20);
    for (const char* part : {"raft", "kv", "snap"})
      fs::copy(dir.path() / part, backup.path() / part, fs::copy_options::recursive);
    write_keys<B>(dir.path(), "new", 50);
    for (const char* part : {"raft", "kv", "snap"}) {
      fs::remove_all(dir.path() / part);
      fs::copy(backup.path() / part, dir.path() / part, fs::copy_options::recursive);
    }
    // Acknowledged writes new0..new49 would be gone: refused, naming the raft store and marker.
    auto e = EmbeddedEngine<B>::start(dir_config(dir.path()));
    REQUIRE_FALSE(e);
    CHECK(e.error() == errc::storage_corrupt);
    CHECK(mentions(e.error(), (dir.path() / "raft").string()));
    CHECK(mentions(e.error(), (dir.path() / DataDirMarker::file_name).string()));
  }

  TEST_CASE_TEMPLATE("data dir: an emptied raft store with a marker is refused, never bootstrapped",
                     B, DENGINE_PERSISTENT_BACKENDS) {
    if constexpr (!B::persistent) return;
    TempDir dir;
    write_keys<B>(dir.path(), "k", 10);
    // Truncate every file of the raft store to nothing (what a lost or zeroed file looks like).
    for (const auto& f : fs::directory_iterator(dir.path() / "raft"))
      if (f.is_regular_file()) fs::resize_file(f.path(), 0);
    for (int attempt = 0; attempt < 2; ++attempt) {
      CAPTURE(attempt);
      auto e = EmbeddedEngine<B>::start(dir_config(dir.path()));
      REQUIRE_FALSE(e);  // the second attempt too: nothing was bootstrapped by the first
      CHECK(e.error() == errc::storage_corrupt);
      CHECK(mentions(e.error(), (dir.path() / "raft").string()));
    }
    // No membership was written into it (a bootstrap would make the empty store look valid).
    if (auto raft = B::open_storage(dir.path() / "raft", PersistenceMode::disk_first); raft) {
      auto loaded = raft.value()->load();
      REQUIRE(loaded);
      CHECK(loaded.value().snapshot.membership.voters.empty());
      CHECK(raft.value()->last_index() == 0);
    }
  }

  TEST_CASE_TEMPLATE(
      "data dir: a deleted store directory or snapshot image is refused before "
      "anything is created in its place",
      B, DENGINE_PERSISTENT_BACKENDS) {
    if constexpr (!B::persistent) return;
    TempDir dir;
    write_keys<B>(dir.path(), "k", 10);
    for (const char* part : {"kv", "raft"}) {
      CAPTURE(part);
      TempDir saved;
      fs::rename(dir.path() / part, saved.path() / part);
      auto e = EmbeddedEngine<B>::start(dir_config(dir.path()));
      REQUIRE_FALSE(e);
      CHECK(e.error() == errc::storage_corrupt);
      CHECK(mentions(e.error(), (dir.path() / part).string()));
      CHECK_FALSE(fs::exists(dir.path() / part));  // not re-created
      fs::rename(saved.path() / part, dir.path() / part);
    }
    // A compacted log without its snapshot image.
    EngineConfig c = dir_config(dir.path());
    c.node.snapshot_threshold_bytes = 1024;
    {
      auto e = start_ready<B>(c);
      for (int i = 0; i < 100; ++i) REQUIRE(e->client().put("s" + std::to_string(i), "v"));
      REQUIRE(e->node_metrics().snapshots_taken.value() > 0);
      REQUIRE(e->stop());
    }
    fs::remove(dir.path() / "snap" / "snapshot");
    auto e = EmbeddedEngine<B>::start(c);
    REQUIRE_FALSE(e);
    CHECK(e.error() == errc::storage_corrupt);
    CHECK(mentions(e.error(), (dir.path() / "snap" / "snapshot").string()));
    CHECK(mentions(e.error(), "is missing"));
  }

  TEST_CASE_TEMPLATE(
      "data dir: files without a marker are refused; a failed first start leaves "
      "nothing behind",
      B, DENGINE_PERSISTENT_BACKENDS) {
    if constexpr (!B::persistent) return;
    TempDir dir;
    // A start that fails after the backend created its files (no founding members): the data
    // dir is left as it was found — no preallocated segment, no half-made store.
    EngineConfig no_members = dir_config(dir.path());
    no_members.node.initial_members.clear();
    auto failed = EmbeddedEngine<B>::start(no_members);
    REQUIRE_FALSE(failed);
    CHECK(mentions(failed.error(), "initial_members"));
    CHECK(files_under(dir.path()) == std::vector<std::string>{"LOCK"});
    // Then it starts normally.
    write_keys<B>(dir.path(), "k", 3);
    // Without its marker (a dir from a build before markers, or copied without it): refused.
    fs::remove(dir.path() / DataDirMarker::file_name);
    auto e = EmbeddedEngine<B>::start(dir_config(dir.path()));
    REQUIRE_FALSE(e);
    CHECK(e.error() == errc::invalid_argument);
    CHECK(mentions(e.error(), "no marker"));
    CHECK(mentions(e.error(), (dir.path() / "raft").string()));
  }

  TEST_CASE_TEMPLATE("data dir: a damaged marker is refused, naming it", B,
                     DENGINE_PERSISTENT_BACKENDS) {
    if constexpr (!B::persistent) return;
    TempDir dir;
    write_keys<B>(dir.path(), "k", 3);
    const fs::path file = dir.path() / DataDirMarker::file_name;
    std::string bytes;
    {
      std::ifstream in(file, std::ios::binary);
      bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    bytes[bytes.find("member: 1") + 8] = '3';
    { std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes; }
    auto e = EmbeddedEngine<B>::start(dir_config(dir.path()));
    REQUIRE_FALSE(e);
    CHECK(e.error() == errc::storage_corrupt);
    CHECK(mentions(e.error(), file.string()));
    CHECK(mentions(e.error(), "checksum"));
  }

#ifdef DENGINE_HAVE_RAWFILE
  TEST_CASE("data dir: a rawfile data dir opened with another backend is refused") {
    TempDir dir;
    write_keys<rawfile::Backend>(dir.path(), "k", 5);
#ifdef DENGINE_HAVE_LMDB
    auto l = EmbeddedEngine<lmdb::Backend>::start(dir_config(dir.path()));
    REQUIRE_FALSE(l);
    CHECK(l.error() == errc::invalid_argument);
    CHECK(mentions(l.error(), "'rawfile' backend"));
    CHECK(mentions(l.error(), (dir.path() / DataDirMarker::file_name).string()));
#endif
#ifdef DENGINE_HAVE_SQLITE
    auto s = EmbeddedEngine<sqlite::Backend>::start(dir_config(dir.path()));
    REQUIRE_FALSE(s);
    CHECK(s.error() == errc::invalid_argument);
    CHECK(mentions(s.error(), "'rawfile' backend"));
#endif
    // Nothing of theirs was created in it, and rawfile still opens it.
    CHECK_FALSE(fs::exists(dir.path() / "raft" / "data.mdb"));
    CHECK_FALSE(fs::exists(dir.path() / "raft" / "dengine.sqlite3"));
    CHECK(start_ready<rawfile::Backend>(dir_config(dir.path()))
              ->client()
              .get("k4")
              .value()
              .has_value());
  }

  TEST_CASE("data dir: rawfile's segment size and preallocation come from backend_tuning") {
    auto segments = [](const fs::path& dir) {
      std::vector<std::uintmax_t> sizes;
      for (const auto& f : fs::directory_iterator(dir / "raft"))
        if (f.path().extension() == ".seg") sizes.push_back(fs::file_size(f.path()));
      return sizes;
    };
    TempDir small;
    EngineConfig c = dir_config(small.path());
    c.backend_tuning = rawfile::Tuning{.segment_bytes = 64U << 10};
    auto e = start_ready<rawfile::Backend>(c);
    // A fresh start makes one segment, not two (bootstrap reuses the empty first one).
    CHECK(segments(small.path()) == std::vector<std::uintmax_t>{64U << 10});
    auto kv = e->client();
    for (int i = 0; i < 200; ++i) REQUIRE(kv.put("k" + std::to_string(i), std::string(1000, 'v')));
    CHECK(segments(small.path()).size() > 2);  // 200 KB of entries rolled 64 KiB segments
    REQUIRE(e->stop());

    TempDir lazy;
    EngineConfig l = dir_config(lazy.path());
    l.backend_tuning = rawfile::Tuning{.preallocate = false};
    auto n = start_ready<rawfile::Backend>(l);
    REQUIRE(n->client().put("k", "v"));
    REQUIRE(n->stop());
    n.reset();
    auto sizes = segments(lazy.path());
    REQUIRE(sizes.size() == 1);
    CHECK(sizes[0] < 4096);  // grown to its records, not reserved to 64 MiB
    // And it reopens (recovery reads a segment that ends at its last record).
    CHECK(start_ready<rawfile::Backend>(l)->client().get("k").value()->value == "v");
  }
#endif

#ifdef DENGINE_HAVE_LMDB
  TEST_CASE("data dir: LMDB with both data.mdb files deleted is refused") {
    TempDir dir;
    write_keys<lmdb::Backend>(dir.path(), "k", 30);
    fs::remove(dir.path() / "raft" / "data.mdb");
    fs::remove(dir.path() / "kv" / "data.mdb");
    auto e = EmbeddedEngine<lmdb::Backend>::start(dir_config(dir.path()));
    REQUIRE_FALSE(e);
    CHECK(e.error() == errc::storage_corrupt);
    CHECK(mentions(e.error(), (dir.path() / "raft" / "data.mdb").string()));
    CHECK(mentions(e.error(), "does not exist"));
    // Refused before LMDB could create an empty store in its place, and so on every retry.
    CHECK_FALSE(fs::exists(dir.path() / "raft" / "data.mdb"));
    CHECK_FALSE(fs::exists(dir.path() / "kv" / "data.mdb"));
    auto again = EmbeddedEngine<lmdb::Backend>::start(dir_config(dir.path()));
    REQUIRE_FALSE(again);
    CHECK(again.error() == errc::storage_corrupt);
  }

  TEST_CASE("data dir: LMDB with only the KV store's data.mdb deleted is refused") {
    TempDir dir;
    write_keys<lmdb::Backend>(dir.path(), "k", 30);
    fs::remove(dir.path() / "kv" / "data.mdb");
    auto e = EmbeddedEngine<lmdb::Backend>::start(dir_config(dir.path()));
    REQUIRE_FALSE(e);
    CHECK(e.error() == errc::storage_corrupt);
    CHECK(mentions(e.error(), (dir.path() / "kv" / "data.mdb").string()));
    CHECK_FALSE(fs::exists(dir.path() / "kv" / "data.mdb"));
  }
#endif

#ifdef DENGINE_HAVE_SQLITE
  TEST_CASE("data dir: SQLite with its -wal files deleted after a crash is refused") {
    TempDir dir;
    write_keys<sqlite::Backend>(dir.path(), "first", 50);  // a clean stop checkpoints the WAL
    // A second run that dies without a clean stop: its writes live in the -wal files only.
    const int code = in_child([&]() -> int {
      auto started = EmbeddedEngine<sqlite::Backend>::start(dir_config(dir.path()));
      if (!started) return 1;
      auto& e = *started.value();
      if (!e.wait_ready(std::chrono::seconds(20))) return 2;
      auto kv = e.client();
      for (int i = 0; i < 50; ++i)
        if (!kv.put("second" + std::to_string(i), "v")) return 3;
      const LogIndex applied = e.status().applied;
      // Wait (bounded) for the marker timer to record the applied index, then crash.
      for (int i = 0; i < 20000; ++i) {
        auto m = DataDirMarker::read(dir.path());
        if (m && m.value() && m.value()->applied_at_least >= applied) std::_Exit(0);
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      return 4;
    });
    REQUIRE(code == 0);
    int wal_files = 0;
    for (const char* part : {"raft", "kv"})
      for (const auto& f : fs::directory_iterator(dir.path() / part))
        if (f.path().string().ends_with("-wal") || f.path().string().ends_with("-shm")) {
          fs::remove(f.path());
          ++wal_files;
        }
    CHECK(wal_files >= 2);
    auto e = EmbeddedEngine<sqlite::Backend>::start(dir_config(dir.path()));
    REQUIRE_FALSE(e);
    CHECK(e.error() == errc::storage_corrupt);
    CHECK(mentions(e.error(), (dir.path() / "raft").string()));
    CHECK(mentions(e.error(), "committed entries are missing"));
  }
#endif
}

}  // namespace dengine::test
