// custom-storage: a Raft node over a StorageEngine and a StateMachine of our own —
// example::FileLog (file_log.hpp: the log in an append-only file) and example::Counter
// (counter.hpp: one replicated counter). Neither derives from anything: each satisfies a concept
// of dengine/storage/concepts.hpp, and dengine::node::Node is instantiated over them.
//
// The program runs the node twice on the same data dir. First run: propose five increments and
// read the counter. Second run, a restart: the counter (kept in memory) comes back from the file
// log, then five more increments. docs/custom-storage.md walks through the code.
//
// usage: custom-storage [DATA_DIR]   (default: a fresh directory under $TMPDIR or /tmp, removed
//                                      at the end; a DATA_DIR given is kept)

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>
#include <system_error>

#include <dengine/node/node.hpp>

#include "counter.hpp"
#include "file_log.hpp"

namespace {

using CounterNode =
    dengine::node::Node<example::FileLog, example::Counter, dengine::node::LocalTransport>;

/// The counter as one life of the node found it and left it.
struct Life {
  std::int64_t before = 0;
  std::int64_t after = 0;
};

/// One life of the node: open the storage in `dir`, read the counter, add 1..`increments` to it,
/// read it again, stop.
dengine::result<Life> run_node(const std::filesystem::path& dir, int increments) {
  DENGINE_TRY(log, example::FileLog::open(dir / "raft"));
  DENGINE_TRY(stored, log.load());
  std::printf("  file log: entries [%llu, %llu], term %llu, vote %llu\n",
              static_cast<unsigned long long>(log.first_index()),
              static_cast<unsigned long long>(log.last_index()),
              static_cast<unsigned long long>(stored.hard_state.term),
              static_cast<unsigned long long>(stored.hard_state.vote));
  DENGINE_TRY(snapshots, dengine::node::FileSnapshotStore::open(dir / "snapshots"));
  example::Counter counter;
  dengine::node::LocalHub hub;  // the in-process "network"; a single node sends nothing on it

  dengine::node::NodeConfig config;
  config.raft.id = 1;
  config.initial_members = {1};  // a new single-node cluster (ignored once the log exists)
  // Declared after everything it uses, so it is destroyed (stopped) first.
  DENGINE_TRY(node, CounterNode::open(config, log, counter, snapshots,
                                      dengine::node::LocalTransport(hub, 1)));
  // The only voter campaigns at once; winning takes one persisted vote, then it applies the
  // entry of its new term: from then on proposals here succeed.
  DENGINE_TRYV(node->wait_ready(std::chrono::seconds(10)));

  auto read_counter = [&] {
    return node->read_wait(dengine::node::ReadConsistency::linearizable,
                           [](const example::Counter& c) { return c.value(); });
  };
  DENGINE_TRY(before, read_counter());
  std::printf("  leader of term %llu; counter = %lld\n",
              static_cast<unsigned long long>(node->status().term), static_cast<long long>(before));
  for (int delta = 1; delta <= increments; ++delta) {
    DENGINE_TRY(response, node->propose_wait(example::add_command(delta)));
    std::printf("  add %d -> counter %lld (log index %llu)\n", delta,
                static_cast<long long>(response.value),
                static_cast<unsigned long long>(response.index));
  }
  DENGINE_TRY(after, read_counter());
  std::printf("  linearizable read: counter = %lld\n", static_cast<long long>(after));
  DENGINE_TRYV(node->stop());
  return Life{before, after};
}

}  // namespace

int main(int argc, char** argv) try {
  std::filesystem::path dir;
  const bool temporary = argc < 2;
  if (temporary) {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") +
                          "/dengine-custom-storage-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      std::perror("mkdtemp");
      return 1;
    }
    dir = pattern;
  } else {
    dir = argv[1];
  }
  std::printf("custom storage: a node over example::FileLog and example::Counter in %s\n\n",
              dir.string().c_str());

  std::printf("first run:\n");
  auto first = run_node(dir, 5);
  dengine::result<Life> second = dengine::error(dengine::errc::stopped, "not run");
  if (first) {
    std::printf("\nsecond run (a restart: the counter comes back from the file log):\n");
    second = run_node(dir, 5);
  }
  if (temporary) {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
  for (const auto* life : {&first, &second}) {
    if (!*life) {
      std::fprintf(stderr, "custom-storage: %s\n", life->error().message().c_str());
      return 1;
    }
  }
  // Each run adds 1 + ... + 5 = 15; the restart starts where the first run ended.
  const Life a = first.value();
  const Life b = second.value();
  if (a.after != a.before + 15 || b.before != a.after || b.after != b.before + 15) {
    std::fprintf(stderr,
                 "custom-storage: expected +15, then the same value after the restart, then +15; "
                 "got %lld -> %lld, restart %lld -> %lld\n",
                 static_cast<long long>(a.before), static_cast<long long>(a.after),
                 static_cast<long long>(b.before), static_cast<long long>(b.after));
    return 1;
  }
  std::printf("\nok: %lld after the first run, the same after the restart, %lld at the end\n",
              static_cast<long long>(a.after), static_cast<long long>(b.after));
  return 0;
} catch (const std::exception& e) {  // std::bad_alloc and the like: report, do not abort
  std::fprintf(stderr, "custom-storage: %s\n", e.what());
  return 1;
}
