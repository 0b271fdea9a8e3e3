// dengine-check (tools/dengine-check) against real data dirs of every disk backend: a sound dir
// passes; a flipped byte in a stored value, a truncated file, a missing marker, a store behind
// its marker are each reported as damage naming the file (exit 1), with the tool never crashing;
// a dir in use by an engine is refused (exit 2); nothing in the data dir changes.

#include <doctest/doctest.h>

#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <map>
#include <memory>
#include <string>

#include "../backends/built_backends.hpp"
#include "dengine/backends/memory.hpp"
#include "dengine/conformance/temp_dir.hpp"
#include "dengine/engine/data_dir_marker.hpp"
#include "dengine/engine/embedded_engine.hpp"
#include "engine_harness.hpp"
#include "harness.hpp"

#ifndef DENGINE_CHECK_BIN
#error "DENGINE_CHECK_BIN must name the dengine-check program (test/integration/meson.build)"
#endif

namespace dengine::test {
namespace {

using engine::DataDirMarker;
using engine::EngineConfig;
namespace fs = std::filesystem;

struct CheckRun {
  int exit_code = -1;
  std::string output;
};

/// Runs dengine-check on `dir` and returns its exit status and standard output.
CheckRun run_check(const fs::path& dir, const std::string& extra = "") {
  const std::string command =
      std::string(DENGINE_CHECK_BIN) + " " + extra + " '" + dir.string() + "' 2>&1";
  CheckRun run;
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::array<char, 4096> buf{};
  std::size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) run.output.append(buf.data(), n);
  const int status = ::pclose(pipe);
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

bool has(const CheckRun& r, const std::string& text) {
  return r.output.find(text) != std::string::npos;
}

/// Checks that run `r` reported damage (exit status 1) and that its report says each of `texts`;
/// a failure shows the whole report.
void check_damage_reported(const CheckRun& r, std::initializer_list<std::string> texts) {
  INFO(r.output);
  CHECK(r.exit_code == 1);
  for (const std::string& text : texts) CHECK_MESSAGE(has(r, text), "not in the report: " << text);
}

EngineConfig check_config(const fs::path& dir) {
  EngineConfig c = EngineConfig::cluster_member(dir, 1, {1});
  c.node = test_config(1, {1});
  return c;
}

/// A value no other byte sequence in the data dir contains, so that finding it finds the value.
const std::string unique_value = "dengine-check-value-7f3a9c";

/// Starts, writes `n` keys (one of them holding unique_value), stops cleanly.
template <class B>
void fill(const fs::path& dir, int n = 40) {
  auto e = start_ready<B>(check_config(dir));
  auto kv = e->client();
  for (int i = 0; i < n; ++i)
    REQUIRE(kv.put("key" + std::to_string(i), "value" + std::to_string(i)));
  REQUIRE(kv.put("special", unique_value));
  REQUIRE(e->stop());
}

/// A new data dir where an engine on backend B ran: fill<B> with `n` keys.
template <class B>
TempDir filled_dir(int n = 40) {
  TempDir dir;
  fill<B>(dir.path(), n);
  return dir;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const fs::path& p, const std::string& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// Every regular file under `dir` with its bytes (to show the check changed nothing).
std::map<std::string, std::string> contents(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename() != "LOCK")
      out[fs::relative(e.path(), dir).string()] = read_file(e.path());
  return out;
}

/// Flips one byte in every copy of unique_value in every file under `dir`; returns the files
/// changed.
std::vector<fs::path> flip_value(const fs::path& dir) {
  std::vector<fs::path> changed;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::string bytes = read_file(e.path());
    bool any = false;
    for (std::size_t at = bytes.find(unique_value); at != std::string::npos;
         at = bytes.find(unique_value, at + 1)) {
      bytes[at + unique_value.size() / 2] ^= 0x20;
      any = true;
    }
    if (any) {
      write_file(e.path(), bytes);
      changed.push_back(e.path());
    }
  }
  return changed;
}

#define DENGINE_DISK_BACKENDS memory::Backend DENGINE_TEST_EXTRA_BACKENDS

}  // namespace

TEST_SUITE("dengine-check") {
  TEST_CASE_TEMPLATE("dengine-check: a sound data dir passes and is left as it was", B,
                     DENGINE_DISK_BACKENDS) {
    if constexpr (B::persistent) {
      const TempDir dir = filled_dir<B>();
      const auto before = contents(dir.path());
      const CheckRun r = run_check(dir.path());
      MESSAGE(r.output);
      CHECK(r.exit_code == 0);
      CHECK(has(r, "result: sound"));
      CHECK(has(r, "backend " + std::string(B::name)));
      CHECK(has(r, "log: "));
      CHECK(has(r, "kv store: "));
      CHECK(contents(dir.path()) == before);
      // And the engine still starts on it, with the data.
      auto e = EmbeddedEngine<B>::start(check_config(dir.path()));
      REQUIRE(e);
      REQUIRE(e.value()->wait_ready(std::chrono::seconds(20)));
      CHECK(e.value()->client().get("special").value()->value == unique_value);
    }
  }

  TEST_CASE_TEMPLATE("dengine-check: a flipped byte in a stored value is damage naming the file", B,
                     DENGINE_DISK_BACKENDS) {
    if constexpr (B::persistent) {
      const TempDir dir = filled_dir<B>();
      const auto changed = flip_value(dir.path());
      REQUIRE_FALSE(changed.empty());
      const CheckRun r = run_check(dir.path());
      MESSAGE(r.output);
      CHECK(r.exit_code == 1);
      CHECK(has(r, "DAMAGED"));
      CHECK(has(r, "result: damaged"));
      bool names_one = false;
      for (const auto& f : changed) names_one = names_one || has(r, f.string());
      CHECK(names_one);
      CHECK_FALSE(has(r, "crashed"));
    }
  }

  TEST_CASE_TEMPLATE("dengine-check: a truncated store file is damage, never a crash", B,
                     DENGINE_DISK_BACKENDS) {
    if constexpr (B::persistent) {
      const TempDir dir = filled_dir<B>(300);
      // The largest file of the KV store, cut in half.
      fs::path biggest;
      std::uintmax_t size = 0;
      for (const auto& e : fs::recursive_directory_iterator(dir.path() / "kv"))
        if (e.is_regular_file() && e.file_size() > size) {
          size = e.file_size();
          biggest = e.path();
        }
      REQUIRE(size > 0);
      fs::resize_file(biggest, size / 2);
      check_damage_reported(run_check(dir.path()), {"DAMAGED", (dir.path() / "kv").string()});
    }
  }

  TEST_CASE_TEMPLATE("dengine-check: a store behind its marker is reported", B,
                     DENGINE_DISK_BACKENDS) {
    if constexpr (B::persistent) {
      const TempDir dir = filled_dir<B>();
      auto m = DataDirMarker::read(dir.path());
      REQUIRE(m);
      REQUIRE(m.value().has_value());
      DataDirMarker raised = *m.value();
      raised.log_at_least += 1000;  // as if the log had been restored from an older copy
      REQUIRE(raised.write(dir.path()));
      check_damage_reported(run_check(dir.path()), {"committed entries are missing",
                                                    (dir.path() / "dengine.marker").string()});
    }
  }

  TEST_CASE_TEMPLATE("dengine-check: a missing or damaged marker is reported", B,
                     DENGINE_DISK_BACKENDS) {
    if constexpr (B::persistent) {
      const TempDir dir = filled_dir<B>();
      const fs::path marker = dir.path() / "dengine.marker";
      SUBCASE("missing") {
        fs::remove(marker);
        // The backend is found from the files.
        check_damage_reported(run_check(dir.path()),
                              {marker.string() + " is missing", "backend " + std::string(B::name)});
      }
      SUBCASE("damaged") {
        std::string bytes = read_file(marker);
        bytes[bytes.find("member") + 1] ^= 0x01;
        write_file(marker, bytes);
        check_damage_reported(run_check(dir.path(), "--backend " + std::string(B::name)),
                              {marker.string(), "DAMAGED"});
      }
    }
  }

  TEST_CASE_TEMPLATE("dengine-check: a data dir in use by an engine is refused", B,
                     DENGINE_DISK_BACKENDS) {
    if constexpr (B::persistent) {
      TempDir dir;
      auto e = EmbeddedEngine<B>::start(check_config(dir.path()));
      REQUIRE(e);
      const CheckRun r = run_check(dir.path());
      INFO(r.output);
      CHECK(r.exit_code == 2);
      CHECK(has(r, "in use"));
    }
  }

  TEST_CASE("dengine-check: bad usage and a missing dir cannot be checked") {
    TempDir dir;
    CHECK(run_check(dir.path() / "absent").exit_code == 2);
    CHECK(run_check(dir.path(), "--timeout zero").exit_code == 2);
    CHECK(run_check(dir.path(), "--no-such-option").exit_code == 2);
    const CheckRun empty = run_check(dir.path());  // an empty dir: no marker, no stores
    INFO(empty.output);
    CHECK(empty.exit_code == 2);
    CHECK(has(empty, "which backend"));
  }
}

}  // namespace dengine::test
