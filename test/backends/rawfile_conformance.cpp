// The raw-file backend under the shared conformance suite, in both persistence modes and with
// small segments (so the suite's larger cases roll over many segment files), plus the KvStore.

#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "conformance.hpp"
#include "dengine/backends/rawfile.hpp"
#include "temp_dir.hpp"

namespace {

/// Collects what the backend logs: a clean close and reopen must never need a repair.
struct LogSink {
  std::vector<std::string> lines;
  dengine::rawfile::log_function function() {
    return [this](std::string_view line) { lines.emplace_back(line); };
  }
  [[nodiscard]] std::string joined() const {
    std::string out;
    for (const auto& line : lines) out += line + "\n";
    return out;
  }
};

template <dengine::PersistenceMode Mode, std::size_t SegmentBytes>
struct RawfileLogFixtureT {
  using engine_type = dengine::rawfile::Engine;
  RawfileLogFixtureT() { open(); }
  ~RawfileLogFixtureT() {
    engine_.reset();
    CHECK_MESSAGE(sink_.lines.empty(), "unexpected recovery log: " << sink_.joined());
  }
  engine_type& engine() { return *engine_; }
  void reopen() {
    engine_.reset();  // close first: the directory is locked while open
    open();
  }

 private:
  void open() {
    dengine::rawfile::Options options;
    options.mode = Mode;
    options.segment_bytes = SegmentBytes;
    options.log = sink_.function();
    engine_.emplace(dengine::rawfile::Engine::open(dir_.path(), options).value());
  }
  dengine::test::TempDir dir_{"dengine-rawfile-"};
  LogSink sink_;
  std::optional<engine_type> engine_;
};

struct RawfileLogFixture : RawfileLogFixtureT<dengine::PersistenceMode::disk_first, 256U << 10> {};
struct RawfileMemFirstLogFixture
    : RawfileLogFixtureT<dengine::PersistenceMode::mem_first, 64U << 10> {};

/// Checkpoints every 4 KiB written (so the larger cases checkpoint mid-way and reopen from a
/// snapshot written by the automatic path) and on close.
struct RawfileKvFixture {
  using store_type = dengine::rawfile::KvStore;
  RawfileKvFixture() { open(); }
  ~RawfileKvFixture() {
    store_.reset();
    CHECK_MESSAGE(sink_.lines.empty(), "unexpected log: " << sink_.joined());
  }
  store_type& store() { return *store_; }
  void reopen() {
    store_.reset();
    open();
  }

 private:
  void open() {
    dengine::rawfile::KvOptions options;
    options.checkpoint_bytes = 4096;
    options.log = sink_.function();
    store_.emplace(dengine::rawfile::KvStore::open(dir_.path(), options).value());
  }
  dengine::test::TempDir dir_{"dengine-rawfile-kv-"};
  LogSink sink_;
  std::optional<store_type> store_;
};

}  // namespace

DENGINE_STORAGE_CONFORMANCE(RawfileLogFixture);
DENGINE_STORAGE_CONFORMANCE(RawfileMemFirstLogFixture);
DENGINE_KV_CONFORMANCE(RawfileKvFixture);
