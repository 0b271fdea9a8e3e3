// dengine-bench-core: entries committed per second by a 3-node cluster of pure raft::Core
// instances passing messages in memory on one thread (no I/O, no persistence cost: every
// Ready is "persisted" at once). Measures the protocol's own cost: proposals, Ready handling,
// append/response processing, commit, and handing committed entries out.
//
// usage: dengine-bench-core [--entries N] [--payload BYTES] [--batch B ...]
// Prints one JSON object per batch size and one human line.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "dengine/raft/core.hpp"

using namespace dengine;
using namespace dengine::raft;

namespace {

struct BenchCluster {
  std::vector<Core> nodes;
  std::vector<Message> in_flight;
  std::vector<Message> next;
  std::uint64_t applied = 0;

  BenchCluster() {
    for (NodeId id = 1; id <= 3; ++id) {
      RaftConfig cfg;
      cfg.id = id;
      cfg.max_inflight_messages = 4096;
      CoreState st;
      st.snapshot.membership.voters = {1, 2, 3};
      nodes.push_back(Core::create(cfg, st).value());
    }
  }
  Core& node(NodeId id) { return nodes[id - 1]; }

  /// Bounds the in-memory log as a runtime does: snapshot (an empty image here) every 64k entries.
  static void maybe_compact(Core& n, const Entry& last_applied) {
    if (last_applied.index - n.log().snapshot().index < 65536) return;
    auto snap = std::make_shared<Snapshot>();
    snap->meta = {last_applied.index, last_applied.term, n.membership_at(last_applied.index)};
    if (!n.compact(std::move(snap))) std::abort();
  }

  /// One pass: every node handles its Ready; then every message produced is delivered.
  void pass() {
    for (auto& n : nodes) {
      if (!n.has_ready()) continue;
      Ready rd = n.ready();
      for (auto& m : rd.messages) next.push_back(std::move(m));
      if (!rd.entries.empty()) n.on_persisted(rd.entries.back().index, rd.entries.back().term);
      for (auto& m : rd.messages_after_persist) next.push_back(std::move(m));
      if (n.id() == 1) applied += rd.committed_entries.size();
      if (!rd.committed_entries.empty()) maybe_compact(n, rd.committed_entries.back());
    }
    in_flight.swap(next);
    next.clear();
    for (auto& m : in_flight) {
      Core& to = node(m.to);  // looked up before `m` is handed over
      (void)to.step(std::move(m));
    }
    in_flight.clear();
  }
};

struct Result {
  std::size_t batch;
  std::uint64_t entries;
  double seconds;
};

Result run(std::size_t batch, std::uint64_t entries, std::size_t payload) {
  BenchCluster c;
  c.node(1).campaign();
  for (int i = 0; i < 20 && c.node(1).role() != Role::leader; ++i) c.pass();
  for (int i = 0; i < 5; ++i) c.pass();
  const std::string value(payload, 'v');
  const std::uint64_t start_applied = c.applied;
  const auto t0 = std::chrono::steady_clock::now();
  std::uint64_t proposed = 0;
  while (proposed < entries) {
    for (std::size_t i = 0; i < batch && proposed < entries; ++i, ++proposed) {
      if (!c.node(1).propose(value)) std::abort();
    }
    c.pass();
  }
  while (c.applied - start_applied < entries) c.pass();
  const auto t1 = std::chrono::steady_clock::now();
  return {batch, entries, std::chrono::duration<double>(t1 - t0).count()};
}

}  // namespace

int main(int argc, char** argv) try {
  std::uint64_t entries = 2'000'000;
  std::size_t payload = 32;
  std::vector<std::size_t> batches;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--entries") && i + 1 < argc) {
      entries = std::strtoull(argv[++i], nullptr, 10);
    } else if (!std::strcmp(argv[i], "--payload") && i + 1 < argc) {
      payload = std::strtoull(argv[++i], nullptr, 10);
    } else if (!std::strcmp(argv[i], "--batch") && i + 1 < argc) {
      batches.push_back(std::strtoull(argv[++i], nullptr, 10));
    } else {
      std::fprintf(stderr, "usage: %s [--entries N] [--payload BYTES] [--batch B]...\n", argv[0]);
      return 2;
    }
  }
  if (batches.empty()) batches = {1, 64};
  if (entries == 0 || payload > (1U << 20)) {
    std::fprintf(stderr, "dengine-bench-core: --entries must be > 0 and --payload at most 1 MiB\n");
    return 2;
  }
  std::string human;
  for (std::size_t b : batches) {
    // Unbatched runs are ~5x slower per entry: scale them so each run takes a similar time.
    const std::uint64_t n = b == 1 ? entries / 4 : entries;
    const Result r = run(b, n, payload);
    const double rate = static_cast<double>(r.entries) / r.seconds;
    fmt::print(
        "{{\"bench\":\"core\",\"nodes\":3,\"batch\":{},\"payload_bytes\":{},\"entries\":{},"
        "\"seconds\":{:.4f},\"entries_per_second\":{:.0f}}}\n",
        b, payload, r.entries, r.seconds, rate);
    human += fmt::format("{}batch {}: {:.0f} entries/s", human.empty() ? "" : ", ", b, rate);
  }
  fmt::print("core (3 pure cores, in-memory messages, one thread, {} B payload): {}\n", payload,
             human);
  return 0;
} catch (const std::exception& e) {  // fmt::format_error, std::bad_alloc: report, do not abort
  std::fprintf(stderr, "dengine-bench-core: %s\n", e.what());
  return 1;
} catch (...) {
  std::fprintf(stderr, "dengine-bench-core: unknown exception\n");
  return 1;
}
