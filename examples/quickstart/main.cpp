// Quick start: dengine inside your process — a single-node EmbeddedEngine and its KV client.
//
// In order: start a node; put and get; a watch on a prefix (its events are printed as they
// arrive); a key with a 1 s TTL kept alive past its TTL, then left to expire; a compare-and-swap;
// reads in the three consistencies; a graceful stop. Runs on the raw-file backend when it is
// built (data in a fresh temporary dir, or in the dir given as the first argument), else in
// memory. Exits 0 when everything happened as docs/embedded.md says; otherwise prints the error
// and exits 1.
//
//   build/examples/quickstart [data-dir]

#include <stdlib.h>  // mkdtemp (POSIX)

#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include <fmt/core.h>

#include "../example_main.hpp"
#include "dengine/backends/memory.hpp"
#include "dengine/engine/embedded_engine.hpp"
#ifdef DENGINE_HAVE_RAWFILE
#include "dengine/backends/rawfile.hpp"
#endif

namespace {

using namespace std::chrono_literals;
using namespace example;  // errc, error, result, EngineConfig, ReadConsistency, Clock, kv
using dengine::engine::WatchStream;
namespace fs = std::filesystem;

// The backend is a compile-time choice (docs/backends.md): raw files when built, else memory.
#ifdef DENGINE_HAVE_RAWFILE
using Backend = dengine::rawfile::Backend;
#else
using Backend = dengine::memory::Backend;
#endif
using Engine = dengine::EmbeddedEngine<Backend>;

/// A fresh directory under the system temp dir, removed (with everything in it) at the end.
class TempDir {
 public:
  static result<TempDir> create() {
    std::string pattern = (fs::temp_directory_path() / "dengine-quickstart-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr)
      return error(errc::io_error, "cannot create a temporary dir from " + pattern);
    TempDir d;
    d.path_ = pattern;
    return d;
  }
  TempDir() = default;
  TempDir(TempDir&& o) noexcept : path_(std::exchange(o.path_, {})) {}
  TempDir& operator=(TempDir&&) = delete;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) fs::remove_all(path_, ec);
  }
  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

/// Prints one watch event (lease ids in hex, as etcdctl shows them).
void print_event(const kv::Event& ev) {
  if (ev.type == kv::EventType::put && ev.kv.lease != kv::no_lease)
    fmt::print("    [watch] PUT    {} = \"{}\" (revision {}, lease {:x})\n", ev.kv.key, ev.kv.value,
               ev.kv.mod_revision, ev.kv.lease);
  else if (ev.type == kv::EventType::put)
    fmt::print("    [watch] PUT    {} = \"{}\" (revision {})\n", ev.kv.key, ev.kv.value,
               ev.kv.mod_revision);
  else
    fmt::print("    [watch] DELETE {} (revision {})\n", ev.kv.key, ev.kv.mod_revision);
}

/// Prints what the watch delivers until an event at `revision` or later (and of `type`, when
/// given) has arrived. A watch delivers every change in revision order, so nothing is skipped.
result<void> print_watch_until(WatchStream& watch, kv::Revision revision,
                               std::optional<kv::EventType> type = std::nullopt) {
  const auto deadline = Clock::now() + 3s;
  for (;;) {
    for (const kv::WatchResponse& resp : watch.wait(100ms)) {
      if (resp.created)
        fmt::print("    [watch] created (id {}, store at revision {})\n", resp.watch_id,
                   resp.header_revision);
      if (resp.canceled) return unexpected("the watch was cancelled: " + resp.cancel_reason);
      bool reached = false;
      for (const kv::Event& ev : resp.events) {
        print_event(ev);
        if (ev.kv.mod_revision >= revision && (!type || ev.type == *type)) reached = true;
      }
      if (reached) return dengine::success();
    }
    if (Clock::now() > deadline)
      return error(errc::timeout, "the watch delivered no event for revision " +
                                      std::to_string(revision) + " within 3 s");
  }
}

result<void> run(const fs::path& data_dir) {
  // 1. Start a node. single_node() is a complete config; the minimum lease TTL is lowered from
  //    etcd's 2 s so that the expiry below happens quickly.
  EngineConfig config = EngineConfig::single_node(data_dir);
  config.lessor.min_ttl = 1s;
  DENGINE_TRY(engine, Engine::start(config));
  DENGINE_TRYV(engine->wait_ready(5s));
  auto kv = engine->client();
  if constexpr (Backend::persistent)
    fmt::print("started node {} on the {} backend, data in {}\n", engine->id(), Backend::name,
               data_dir.string());
  else
    fmt::print("started node {} on the {} backend (nothing is written to disk)\n", engine->id(),
               Backend::name);
  fmt::print("  leader: node {} (term {})\n", engine->leader_info().leader,
             engine->leader_info().term);

  // A data dir given on the command line may hold this example's keys from an earlier run: the
  // raw-file backend kept them. Start from a clean prefix so that the steps below hold.
  DENGINE_TRY(earlier, kv.get_prefix("app/"));
  if (!earlier.empty()) {
    fmt::print("  {} key(s) under app/ survived from an earlier run; deleting them\n",
               earlier.size());
    DENGINE_TRYV(kv.delete_prefix("app/"));
  }

  // 2. A watch on everything under app/, from the next change on.
  DENGINE_TRY(watch, kv.watch_prefix("app/"));
  fmt::print("\nwatching the prefix app/\n");

  // 3. Put and get.
  fmt::print("\nput and get\n");
  DENGINE_TRY(put, kv.put("app/greeting", "hello"));
  fmt::print("  put app/greeting = \"hello\" -> revision {}\n", put.header.revision);
  DENGINE_TRY(got, kv.get("app/greeting"));
  if (!got || got->value != "hello") return unexpected("get app/greeting did not return hello");
  fmt::print("  get app/greeting -> \"{}\" (created at revision {}, version {})\n", got->value,
             got->create_revision, got->version);
  DENGINE_TRYV(print_watch_until(watch, put.header.revision));

  // 4. A key with a TTL: alive while its lease is kept alive, gone once the keep-alives stop.
  fmt::print("\na key with a 1 s TTL\n");
  DENGINE_TRY(session, kv.put_with_ttl("app/session", "alive", 1));
  fmt::print("  put app/session with lease {:x} (TTL {} s) -> revision {}\n", session.lease,
             session.ttl, session.put.header.revision);
  DENGINE_TRYV(print_watch_until(watch, session.put.header.revision));
  const auto put_at = Clock::now();
  for (int i = 0; i < 3; ++i) {  // 3 x 400 ms: longer than the TTL
    std::this_thread::sleep_for(400ms);
    DENGINE_TRY(ttl, kv.lease_keep_alive(session.lease));
    DENGINE_TRY(still, kv.get("app/session"));
    if (!still) return unexpected("app/session vanished although its lease was kept alive");
    fmt::print(
        "  keep-alive: lease refreshed to {} s; app/session still there {} ms after the put\n", ttl,
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - put_at).count());
  }
  fmt::print("  no more keep-alives...\n");
  const auto last_keep_alive = Clock::now();
  for (;;) {
    DENGINE_TRY(left, kv.get("app/session"));
    if (!left) break;
    if (Clock::now() - last_keep_alive > 5s)
      return error(errc::timeout, "app/session did not expire within 5 s of its last keep-alive");
    std::this_thread::sleep_for(20ms);
  }
  fmt::print(
      "  app/session expired {} ms after the last keep-alive (the leader revoked lease {:x})\n",
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - last_keep_alive).count(),
      session.lease);
  DENGINE_TRYV(print_watch_until(watch, session.put.header.revision + 1, kv::EventType::del));

  // 5. Compare-and-swap: create-if-absent, then swap only from the expected value.
  fmt::print("\ncompare-and-swap\n");
  DENGINE_TRY(created, kv.compare_and_swap("app/owner", std::nullopt, "alice"));
  fmt::print("  app/owner: absent -> \"alice\": {}\n", created ? "swapped" : "refused");
  DENGINE_TRY(again, kv.compare_and_swap("app/owner", std::nullopt, "bob"));
  fmt::print("  app/owner: absent -> \"bob\": {}\n", again ? "swapped" : "refused");
  DENGINE_TRY(swapped, kv.compare_and_swap("app/owner", std::string("alice"), "bob"));
  fmt::print("  app/owner: \"alice\" -> \"bob\": {}\n", swapped ? "swapped" : "refused");
  if (!created || again || !swapped) return unexpected("compare-and-swap answered wrongly");
  DENGINE_TRY(owner, kv.get("app/owner"));
  if (!owner || owner->value != "bob") return unexpected("app/owner is not bob after the swap");
  DENGINE_TRYV(print_watch_until(watch, owner->mod_revision));

  // 6. Reads in each consistency (docs/embedded.md says what each one guarantees).
  fmt::print("\nreads\n");
  for (auto c :
       {ReadConsistency::linearizable, ReadConsistency::lease, ReadConsistency::serializable}) {
    DENGINE_TRY(read, kv.get("app/owner", c));
    if (!read || read->value != "bob") return unexpected("a read did not see app/owner = bob");
    fmt::print("  get app/owner ({}) -> \"{}\"\n", dengine::node::to_string(c), read->value);
  }

  // 7. Stop: the watch first (a stream must not outlive its engine), then the engine. After
  //    stop() every request fails with `stopped`.
  fmt::print("\nstop\n");
  watch.cancel();
  DENGINE_TRYV(engine->stop());
  auto late = kv.put("app/late", "x");
  if (late || late.error().code != errc::stopped)
    return unexpected("a put after stop() did not fail with stopped");
  fmt::print("  stopped; a put after stop() fails with: {}\n", late.error().message());
  return dengine::success();
}

}  // namespace

int main(int argc, char** argv) {
  return example::run_example("quickstart", "dengine quick start: one embedded node",
                              [&]() -> result<void> {
                                std::optional<TempDir> temp;
                                fs::path dir;
                                if (argc > 1) {
                                  dir = argv[1];
                                } else {
                                  DENGINE_TRY(made, TempDir::create());
                                  temp.emplace(std::move(made));
                                  dir = temp->path();
                                }
                                // The engine is stopped and destroyed when run() returns.
                                return run(dir);
                              });
}
