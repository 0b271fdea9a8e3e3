// The raw-file backend under the shared conformance suite, in both persistence modes and with
// small segments (so the suite's larger cases roll over many segment files), plus the KvStore
// and the KV state machine over it.

#include <doctest/doctest.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backend_test_support.hpp"
#include "dengine/backends/rawfile.hpp"
#include "dengine/conformance/kv_store.hpp"
#include "dengine/conformance/state_machine.hpp"
#include "dengine/conformance/storage.hpp"
#include "kv_machine_fixture.hpp"

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

using dengine::PersistenceMode;
using dengine::rawfile::Engine;
using dengine::rawfile::KvOptions;
using dengine::rawfile::KvStore;
using dengine::rawfile::Options;

Options log_options(PersistenceMode mode, std::size_t segment_bytes, LogSink& sink) {
  Options o;
  o.mode = mode;
  o.segment_bytes = segment_bytes;
  o.log = sink.function();
  return o;
}

/// The sink is a base, so that it exists before the engine it collects from.
template <PersistenceMode Mode, std::size_t SegmentBytes>
struct RawfileLogFixtureT : LogSink, dengine::test::backend::DirLogFixture<Engine, Options> {
  /// compact() and reset() write, fsync and rename their files before they return.
  static constexpr bool reset_durable_on_return = true;
  RawfileLogFixtureT()
      : DirLogFixture("dengine-rawfile-", log_options(Mode, SegmentBytes, *this)) {}
  ~RawfileLogFixtureT() {
    close();
    CHECK_MESSAGE(lines.empty(), "unexpected recovery log: " << joined());
  }
};

struct RawfileLogFixture : RawfileLogFixtureT<PersistenceMode::disk_first, 256U << 10> {};
struct RawfileMemFirstLogFixture : RawfileLogFixtureT<PersistenceMode::mem_first, 64U << 10> {};

KvOptions kv_options(LogSink& sink) {
  KvOptions o;
  o.checkpoint_bytes = 4096;
  o.log = sink.function();
  return o;
}

/// Checkpoints every 4 KiB written (so the larger cases checkpoint mid-way and reopen from a
/// snapshot written by the automatic path) and on close.
struct RawfileKvFixture : LogSink, dengine::test::backend::DirKvFixture<KvStore, KvOptions> {
  RawfileKvFixture() : DirKvFixture("dengine-rawfile-kv-", kv_options(*this)) {}
  ~RawfileKvFixture() {
    close();
    CHECK_MESSAGE(lines.empty(), "unexpected log: " << joined());
  }
};

/// The KV machine over that store.
struct RawfileKvMachineFixture : dengine::test::KvMachineFixture<RawfileKvFixture> {};

}  // namespace

DENGINE_STORAGE_CONFORMANCE(RawfileLogFixture);
DENGINE_STORAGE_CONFORMANCE(RawfileMemFirstLogFixture);
DENGINE_KV_CONFORMANCE(RawfileKvFixture);
DENGINE_STATE_MACHINE_CONFORMANCE(RawfileKvMachineFixture);
