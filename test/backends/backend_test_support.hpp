#pragma once
/// What the tests of this repository's backends share (test/backends/*.cpp; not installed):
/// the names they use, file helpers for damaging data on purpose, and the conformance fixtures
/// of a store opened from a directory (DirLogFixture, DirKvFixture).

#include <doctest/doctest.h>

#include <atomic>
#include <cstddef>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>

#include "dengine/conformance/helpers.hpp"
#include "dengine/conformance/temp_dir.hpp"
#include "dengine/core/config.hpp"
#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/storage/write_batch.hpp"

namespace dengine::test {

/// Everything here, and the core names, for a test file's `using namespace
/// dengine::test::backend;`.
namespace backend {

namespace fs = std::filesystem;
using dengine::Entry;
using dengine::EntryType;
using dengine::errc;
using dengine::HardState;
using dengine::LogIndex;
using dengine::PersistenceMode;
using dengine::SnapshotMeta;
using dengine::Term;
using dengine::WriteBatch;
using dengine::conformance::append_ok;
using dengine::conformance::make_entries;
using dengine::conformance::unbounded;
using dengine::test::TempDir;

/// Whether `needle` occurs in `haystack` (error details name what and where).
inline bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

/// The whole of `file`, REQUIREing that it can be read.
inline std::string read_file(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  REQUIRE(in.good());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Replaces `file` with `bytes`.
inline void write_file(const std::filesystem::path& file, std::string_view bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

/// Overwrites the first `bytes` bytes of `file` with 0xAB.
inline void scribble(const std::filesystem::path& file, std::size_t bytes) {
  std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(f.good());
  const std::string junk(bytes, '\xAB');
  f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  REQUIRE(f.good());
}

/// Opens an `Engine` whose data dir is a regular file (`dir/not-a-dir`), CHECKing that this
/// fails with io_error naming the path; returns the path.
template <class Engine>
fs::path check_open_on_a_file_fails(const TempDir& dir) {
  auto path = dir.path() / "not-a-dir";
  std::ofstream(path) << "x";
  auto r = Engine::open(path);
  CONF_REQUIRE_ERROR(errc::io_error, r);
  CHECK(contains(r.error().detail, path.string()));
  return path;
}

/// Appends `batches` batches of 10 entries from a writer thread (batch b: indexes 10b-9 to 10b,
/// all with term b; each synced when `sync_each`) while this thread reads the log, and CHECKs
/// that every read saw whole batches. The log writer and the event loop use an engine from two
/// threads: a read must see a batch entirely or not at all.
template <class E>
void check_reads_see_whole_batches(E& engine, LogIndex batches, bool sync_each) {
  std::atomic<bool> done{false};
  std::atomic<bool> writer_ok{true};
  std::thread writer([&] {
    for (LogIndex b = 1; b <= batches; ++b) {
      const auto batch = make_entries((b - 1) * 10 + 1, b * 10, b);
      if (!engine.append(std::span<const Entry>(batch)) || (sync_each && !engine.sync())) {
        writer_ok = false;
        break;
      }
    }
    done = true;
  });
  bool consistent = true;
  while (!done) {
    const LogIndex last = engine.last_index();
    if (last % 10 != 0) consistent = false;
    if (last == 0) continue;
    auto got = engine.entries(1, last + 1, unbounded);
    if (!got || got.value().size() != last) consistent = false;
    auto term = engine.term(last);
    if (!term || term.value() != last / 10) consistent = false;
  }
  writer.join();
  CHECK(writer_ok);
  CHECK(consistent);
  CHECK(engine.last_index() == batches * 10);
}

/// Opens `T` on `dir` or throws with the backend's message (the conformance fixture rule).
template <class T, class Options>
T open_or_throw(const std::filesystem::path& dir, const Options& options) {
  auto r = T::open(dir, options);
  if (!r) throw std::runtime_error("open " + dir.string() + " failed: " + r.error().message());
  return std::move(r).value();
}

/// A `T` opened with `T::open(dir, options)`. reopen() destroys it before it opens it again: the
/// last handle closes the files (and frees a directory lock), as a restart does.
template <class T, class Options>
class Reopenable {
 public:
  Reopenable(std::filesystem::path dir, Options options)
      : dir_(std::move(dir)), options_(std::move(options)) {
    reopen();
  }
  /// The open object (another one after each reopen()).
  T& get() { return *value_; }
  /// Closes, then opens again from the same place with the same options.
  void reopen() {
    value_.reset();
    value_.emplace(open_or_throw<T>(dir_, options_));
  }
  /// Closes (before the fixture checks what closing logged, say).
  void close() { value_.reset(); }

 private:
  std::filesystem::path dir_;
  Options options_;
  std::optional<T> value_;
};

/// A StorageEngine conformance fixture: `Engine` opened with `options` in a TempDir of its own.
/// Derive a named fixture from it (the suite names its cases after the fixture type).
template <class Engine, class Options>
class DirLogFixture {
 public:
  using engine_type = Engine;
  DirLogFixture(const std::string& prefix, Options options)
      : dir_(prefix), log_(dir_.path(), std::move(options)) {}
  engine_type& engine() { return log_.get(); }
  void reopen() { log_.reopen(); }

 protected:
  void close() { log_.close(); }

 private:
  TempDir dir_;
  Reopenable<Engine, Options> log_;
};

/// A KvStore conformance fixture: `Store` opened with `options` in a TempDir of its own. With a
/// `Companion` (a StorageEngine opened first on the same dir with `companion_options`, kept open
/// throughout), the store shares what the backend shares between the two (LMDB's environment,
/// SQLite's database file), and its reopen() leaves those open in the process.
template <class Store, class Options, class Companion = void>
class DirKvFixture {
 public:
  using store_type = Store;
  DirKvFixture(const std::string& prefix, Options options,
               std::optional<Options> companion_options = std::nullopt)
      : dir_(prefix),
        companion_(open_companion(dir_.path(), companion_options)),
        store_(dir_.path(), std::move(options)) {}
  store_type& store() { return store_.get(); }
  void reopen() { store_.reopen(); }

 protected:
  void close() { store_.close(); }

 private:
  struct None {};
  using CompanionSlot =
      std::conditional_t<std::is_void_v<Companion>, None, std::optional<Companion>>;
  static CompanionSlot open_companion(const std::filesystem::path& dir,
                                      const std::optional<Options>& options) {
    if constexpr (std::is_void_v<Companion>) {
      return None{};
    } else {
      if (!options) return std::nullopt;
      return open_or_throw<Companion>(dir, *options);
    }
  }
  TempDir dir_;
  CompanionSlot companion_;
  Reopenable<Store, Options> store_;
};

}  // namespace backend
}  // namespace dengine::test
