// dengine-power-loss-shim-test: the power-loss shim's model, one scenario at a time. For each,
// the parent writes a starting tree, runs this program as a child under the shim
// (DENGINE_POWERLOSS_SHIM names the library) doing a few file operations, rebuilds the directory
// from the journal (dengine/conformance/power_loss_restore.hpp) and compares it with what a power
// loss must leave: exactly what was made durable, nothing more and nothing less.
//
//   dengine-power-loss-shim-test [doctest flags]          (the child: --scenario NAME --dir DIR)

#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "dengine/conformance/crash_harness.hpp"
#include "dengine/conformance/power_loss_format.hpp"
#include "dengine/conformance/power_loss_restore.hpp"

#include "dengine/conformance/temp_dir.hpp"

namespace {

namespace fs = std::filesystem;
namespace pl = dengine::power_loss;

/// A directory tree: relative path → file contents, "<dir>" for a directory, "-> target" for a
/// symlink.
using Tree = std::map<std::string, std::string>;

// ---- the child's file operations: any failure ends the child with status 3

int check(int rc, const char* what) {
  if (rc < 0) {
    std::fprintf(stderr, "shim test child: %s: %s\n", what, std::strerror(errno));
    std::_Exit(3);
  }
  return rc;
}

int open_file(const fs::path& p, int flags = O_RDWR) {
  return check(::open(p.c_str(), flags | O_CLOEXEC, 0644), p.c_str());
}

/// Writes `data` at `offset` of `p` (created if missing), without any sync.
void put(const fs::path& p, std::string_view data, off_t offset = 0) {
  const int fd = open_file(p, O_RDWR | O_CREAT);
  check(static_cast<int>(::pwrite(fd, data.data(), data.size(), offset)), "pwrite");
  ::close(fd);
}

void fsync_path(const fs::path& p) {
  const int fd = open_file(p, O_RDONLY);
  check(::fsync(fd), "fsync");
  ::close(fd);
}

void fdatasync_path(const fs::path& p) {
  const int fd = open_file(p, O_RDONLY);
  check(::fdatasync(fd), "fdatasync");
  ::close(fd);
}

/// A step of a scenario, run in the child on the watched directory.
using Action = void (*)(const fs::path& dir);

struct Scenario {
  const char* name;
  Tree before;    ///< written by the parent before the child starts (durable: the start)
  Action action;  ///< what the child does
  Tree after;     ///< what the power loss must leave
};

const std::vector<Scenario>& scenarios() {
  static const std::vector<Scenario> all = {
      {"an unsynced write is lost",
       {{"a", "old-a"}},
       [](const fs::path& d) { put(d / "a", "NEW"); },
       {{"a", "old-a"}}},
      {"fdatasync keeps what the file held when it started, not later writes",
       {{"a", "old-a"}},
       [](const fs::path& d) {
         put(d / "a", "NEW");
         fdatasync_path(d / "a");
         put(d / "a", "MORE", 5);
       },
       {{"a", "NEW-a"}}},
      {"an unsynced truncation is lost",
       {{"a", "old-a"}},
       [](const fs::path& d) { check(::truncate((d / "a").c_str(), 0), "truncate"); },
       {{"a", "old-a"}}},
      {"a new file synced without its directory is lost",
       {},
       [](const fs::path& d) {
         put(d / "b", "data");
         fsync_path(d / "b");
       },
       {}},
      {"a directory fsync keeps the name but not unsynced contents",
       {},
       [](const fs::path& d) {
         put(d / "b", "data");
         fsync_path(d);
       },
       {{"b", ""}}},
      {"file and directory synced: both kept",
       {},
       [](const fs::path& d) {
         put(d / "b", "data");
         fsync_path(d / "b");
         fsync_path(d);
       },
       {{"b", "data"}}},
      {"a rename without a directory fsync is lost",
       {{"a", "old-a"}},
       [](const fs::path& d) {
         put(d / "t", "new-a");
         fsync_path(d / "t");
         check(::rename((d / "t").c_str(), (d / "a").c_str()), "rename");
       },
       {{"a", "old-a"}}},
      {"a rename with a directory fsync is kept",
       {{"a", "old-a"}},
       [](const fs::path& d) {
         put(d / "t", "new-a");
         fsync_path(d / "t");
         check(::rename((d / "t").c_str(), (d / "a").c_str()), "rename");
         fsync_path(d);
       },
       {{"a", "new-a"}}},
      {"an unlink without a directory fsync is lost",
       {{"a", "old-a"}},
       [](const fs::path& d) { check(::unlink((d / "a").c_str()), "unlink"); },
       {{"a", "old-a"}}},
      {"an unlink with a directory fsync is kept",
       {{"a", "old-a"}},
       [](const fs::path& d) {
         check(::unlink((d / "a").c_str()), "unlink");
         fsync_path(d);
       },
       {}},
      {"a new file reusing a removed file's inode does not replace its durable bytes",
       {{"a", "old-a"}},
       [](const fs::path& d) {
         struct stat was {};
         check(::stat((d / "a").c_str(), &was), "stat");
         check(::unlink((d / "a").c_str()), "unlink");
         put(d / "c", "new-c");
         fsync_path(d / "c");
         struct stat now {};
         check(::stat((d / "c").c_str(), &now), "stat");
         if (now.st_ino == was.st_ino) (void)!::write(STDOUT_FILENO, "inode reused\n", 13);
       },
       {{"a", "old-a"}}},
      {"an O_DSYNC write is durable on return, a plain write beside it is not",
       {{"a", "old-a"}},
       [](const fs::path& d) {
         put(d / "a", "X", 4);
         const int fd = open_file(d / "a", O_WRONLY | O_DSYNC);
         check(static_cast<int>(::pwrite(fd, "DS", 2, 1)), "pwrite");
         ::close(fd);
       },
       {{"a", "oDS-a"}}},
      {"a pwritev2 with RWF_DSYNC is durable on return",
       {{"a", "old-a"}},
       [](const fs::path& d) {
         const int fd = open_file(d / "a", O_WRONLY);
         char data[] = "RW";
         const iovec iov{data, 2};
         check(static_cast<int>(::pwritev2(fd, &iov, 1, 0, RWF_DSYNC)), "pwritev2");
         ::close(fd);
       },
       {{"a", "RWd-a"}}},
      {"msync(MS_SYNC) keeps the range it synced, MS_ASYNC nothing",
       {{"m", std::string(8192, 'x')}},
       [](const fs::path& d) {
         const int fd = open_file(d / "m");
         void* map = ::mmap(nullptr, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
         if (map == MAP_FAILED) check(-1, "mmap");
         char* bytes = static_cast<char*>(map);
         std::memset(bytes, 'y', 16);
         check(::msync(bytes, 4096, MS_SYNC), "msync");
         std::memset(bytes + 4096, 'z', 16);
         check(::msync(bytes + 4096, 4096, MS_ASYNC), "msync");
         ::munmap(map, 8192);
         ::close(fd);
       },
       {{"m", std::string(16, 'y') + std::string(8192 - 16, 'x')}}},
      {"a subdirectory is lost until its parent is synced",
       {},
       [](const fs::path& d) {
         check(::mkdir((d / "s").c_str(), 0755), "mkdir");
         put(d / "s" / "f", "f");
         fsync_path(d / "s" / "f");
         fsync_path(d / "s");
       },
       {}},
      {"a subdirectory synced with its parent is kept",
       {},
       [](const fs::path& d) {
         check(::mkdir((d / "s").c_str(), 0755), "mkdir");
         put(d / "s" / "f", "f");
         fsync_path(d / "s" / "f");
         fsync_path(d / "s");
         fsync_path(d);
       },
       {{"s", "<dir>"}, {"s/f", "f"}}},
      {"a file published by link and unlink keeps its contents",
       {},
       [](const fs::path& d) {
         put(d / "t", "pub");
         fsync_path(d / "t");
         check(::link((d / "t").c_str(), (d / "f").c_str()), "link");
         check(::unlink((d / "t").c_str()), "unlink");
         fsync_path(d);
       },
       {{"f", "pub"}}},
      {"a symlink is kept with its directory",
       {},
       [](const fs::path& d) {
         check(::symlink("a", (d / "l").c_str()), "symlink");
         fsync_path(d);
       },
       {{"l", "-> a"}}},
      {"sync() makes everything durable",
       {{"a", "old-a"}},
       [](const fs::path& d) {
         put(d / "a", "NEW");
         check(::mkdir((d / "s").c_str(), 0755), "mkdir");
         put(d / "s" / "e", "e");
         ::sync();
         put(d / "a", "later");
       },
       {{"a", "NEW-a"}, {"s", "<dir>"}, {"s/e", "e"}}},
      {"a forked process may not make data durable",
       {{"a", "old-a"}},
       [](const fs::path& d) {
         const pid_t pid = check(::fork(), "fork");
         if (pid == 0) {
           fsync_path(d / "a");
           std::_Exit(0);
         }
         int status = 0;
         ::waitpid(pid, &status, 0);
         // The shim stops the forked process with status 86; pass that on.
         std::_Exit(WIFEXITED(status) ? WEXITSTATUS(status) : 99);
       },
       {{"a", "old-a"}}},
  };
  return all;
}

// ---- the parent

Tree read_tree(const fs::path& root) {
  Tree out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    const auto rel = fs::relative(it->path(), root).generic_string();
    if (it->is_symlink()) {
      out[rel] = "-> " + fs::read_symlink(it->path()).string();
    } else if (it->is_directory()) {
      out[rel] = "<dir>";
    } else {
      std::ifstream in(it->path(), std::ios::binary);
      out[rel] = std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
  }
  return out;
}

void write_tree(const fs::path& root, const Tree& tree) {
  for (const auto& [path, contents] : tree) {
    if (contents == "<dir>") {
      fs::create_directories(root / path);
    } else {
      std::ofstream(root / path, std::ios::binary) << contents;
    }
  }
}

std::string describe(const Tree& tree) {
  std::string out;
  for (const auto& [path, contents] : tree)
    out +=
        "\n  " + path + ": " + (contents.size() > 40 ? contents.substr(0, 40) + "..." : contents);
  return out.empty() ? " (empty)" : out;
}

std::string shim_path() {
  const char* shim = std::getenv("DENGINE_POWERLOSS_SHIM");
  REQUIRE_MESSAGE(shim != nullptr, "set DENGINE_POWERLOSS_SHIM to libdengine-powerloss.so");
  return shim;
}

/// Runs scenario `s` in a child under the shim, rebuilds, and returns the tree and the child.
std::pair<Tree, dengine::crash::ChildRun> run(const Scenario& s) {
  dengine::test::TempDir root("dengine-shim-test-");
  const auto dir = root / "data";
  const auto shadow = root / "shadow";
  fs::create_directories(dir);
  fs::create_directories(shadow);
  write_tree(dir, s.before);
  const auto self = fs::read_symlink("/proc/self/exe").string();
  auto env = dengine::crash::detail::child_environment(
      {"LD_PRELOAD=" + shim_path(), std::string(pl::dir_env) + "=" + dir.string(),
       std::string(pl::shadow_env) + "=" + shadow.string()});
  auto child = dengine::crash::run_and_kill(self, {"--scenario", s.name, "--dir", dir.string()},
                                            env, std::chrono::seconds(60));
  REQUIRE(child);
  auto restored = pl::restore(shadow, dir);
  REQUIRE_MESSAGE(restored, restored.error().message());
  CHECK(restored.value());
  return {read_tree(dir), child.value()};
}

}  // namespace

TEST_CASE("the power-loss shim keeps exactly what was made durable") {
  for (const auto& s : scenarios()) {
    const std::string name = s.name;
    CAPTURE(name);
    const auto outcome = run(s);  // no structured binding: clang 14 cannot capture one
    const Tree& tree = outcome.first;
    const auto& child = outcome.second;
    const bool forked = std::string_view(s.name).find("forked") != std::string_view::npos;
    CHECK_MESSAGE(!child.killed, "the child hung");
    CHECK_MESSAGE(WEXITSTATUS(child.status) == (forked ? 86 : 0),
                  "child exit status " << WEXITSTATUS(child.status));
    CHECK_MESSAGE(tree == s.after,
                  "rebuilt:" << describe(tree) << "\nexpected:" << describe(s.after));
    for (const auto& line : child.lines) MESSAGE(name << ": " << line);
  }
}

TEST_CASE("without the ready marker the directory is left as it is") {
  dengine::test::TempDir root("dengine-shim-test-");
  fs::create_directories(root / "data");
  fs::create_directories(root / "shadow");
  write_tree(root / "data", {{"a", "live"}});
  auto restored = pl::restore(root / "shadow", root / "data");
  REQUIRE(restored);
  CHECK_FALSE(restored.value());
  CHECK(read_tree(root / "data") == Tree{{"a", "live"}});
}

TEST_CASE("journal listings round-trip names with spaces and newlines") {
  const std::vector<pl::Entry> entries = {{'f', 3, 0600, "a name\nwith a newline", ""},
                                          {'d', 4, 0755, "dir", ""},
                                          {'l', 0, 0777, "link", "target with spaces"}};
  std::string text;
  for (const auto& e : entries) text += pl::encode_entry(e);
  const auto decoded = pl::decode_listing(text);
  REQUIRE(decoded);
  CHECK(*decoded == entries);
  CHECK_FALSE(pl::decode_listing("f 1 0644 99 short\n"));
}

int main(int argc, char** argv) {
  std::string scenario;
  std::string dir;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string_view(argv[i]) == "--scenario") scenario = argv[i + 1];
    if (std::string_view(argv[i]) == "--dir") dir = argv[i + 1];
  }
  if (!scenario.empty()) {  // the child: the shim must be active, then run the action
    const char* owner = std::getenv(pl::owner_env);
    if (owner == nullptr || std::to_string(::getpid()) != owner) {
      std::fprintf(stderr, "shim test child: the shim is not loaded\n");
      return 4;
    }
    for (const auto& s : scenarios())
      if (s.name == scenario) s.action(dir);
    return 0;
  }
  doctest::Context context(argc, argv);
  return context.run();
}
