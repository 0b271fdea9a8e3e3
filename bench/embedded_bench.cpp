// dengine-bench-embedded: put and get latency (p50/p99/p99.9) and throughput of a single-node
// EmbeddedEngine through LocalKvClient, with 1 client (blocking calls, one at a time) and with
// 64 concurrent clients (asynchronous calls, each client issuing its next request when the
// previous one completes):
//   - MemFirst on the memory backend: puts, and gets at each read consistency;
//   - DiskFirst on the raw-file backend (when built): puts, next to this disk's raw
//     write+fdatasync latency measured in the same run, in the same directory.
//
// usage: dengine-bench-embedded [--seconds S] [--dir D] [--value-bytes B] [--idle-spin-us US]
//                               [--memory-only] [--puts-only]
// Prints one JSON object per measurement, the targets of issue 3 with their verdict, and one
// human line per measurement. Never asserts: the verdicts are for reading.

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/core.h>

#include "bench_support.hpp"
#include "dengine/backends/memory.hpp"
#include "dengine/engine/embedded_engine.hpp"
#ifdef DENGINE_HAVE_RAWFILE
#include "dengine/backends/rawfile.hpp"
#endif

namespace {

using namespace dengine;
using bench::allocator;
using bench::Clock;
using bench::key_of;
using bench::raw_fdatasync;
using bench::run_concurrent;
using bench::run_serial;
using bench::Sample;
using engine::EngineConfig;
using engine::ReadConsistency;
namespace fs = std::filesystem;

struct Options {
  double seconds = 1.5;  // per measurement
  fs::path dir;
  std::size_t value_bytes = 64;
  std::size_t keys = 1000;
  std::optional<std::chrono::microseconds> idle_spin;  // NodeConfig::idle_spin (default: its own)
  bool memory_only = false;                            // skip the DiskFirst runs
  bool puts_only = false;                              // skip the gets (profiling the puts)
};

struct Report {
  std::string backend;
  std::string mode;
  std::string op;
  std::size_t clients = 0;
  Sample sample;
};

void print(Report& r) {
  const double p50 = r.sample.percentile(0.50);
  const double p99 = r.sample.percentile(0.99);
  const double p999 = r.sample.percentile(0.999);
  fmt::print(
      "{{\"bench\":\"embedded\",\"backend\":\"{}\",\"mode\":\"{}\",\"op\":\"{}\",\"clients\":{},"
      "\"ops\":{},\"seconds\":{:.3f},\"ops_per_sec\":{:.0f},\"p50_us\":{:.1f},\"p99_us\":{:.1f},"
      "\"p999_us\":{:.1f},\"errors\":{},\"allocator\":\"{}\"}}\n",
      r.backend, r.mode, r.op, r.clients, r.sample.us.size(), r.sample.wall_seconds,
      r.sample.rate(), p50, p99, p999, r.sample.errors, allocator);
  if (r.sample.errors > 0) fmt::print("  first error: {}\n", r.sample.first_error);
}

template <class B>
std::unique_ptr<EmbeddedEngine<B>> start_engine(const Options& o, const fs::path& dir,
                                                PersistenceMode mode) {
  EngineConfig cfg = EngineConfig::single_node(dir);
  cfg.node.persistence = mode;
  if (o.idle_spin) cfg.node.idle_spin = *o.idle_spin;
  auto e = EmbeddedEngine<B>::start(cfg);
  if (!e) {
    fmt::print(stderr, "dengine-bench-embedded: start: {}\n", e.error().message());
    std::exit(1);
  }
  if (auto ready = e.value()->wait_ready(std::chrono::seconds(10)); !ready) {
    fmt::print(stderr, "dengine-bench-embedded: {}\n", ready.error().message());
    std::exit(1);
  }
  return std::move(e).value();
}

/// Puts with 1 and 64 clients (and, with `gets`, gets at each consistency) on backend B.
template <class B>
std::vector<Report> bench_backend(const Options& o, const fs::path& dir, PersistenceMode mode,
                                  bool gets) {
  std::vector<Report> out;
  const std::string mode_name = mode == PersistenceMode::mem_first ? "mem_first" : "disk_first";
  auto e = start_engine<B>(o, dir, mode);
  auto kv = e->client();
  const std::string value(o.value_bytes, 'v');
  // Fill the key space so that gets find their keys.
  for (std::size_t i = 0; i < o.keys; ++i) {
    if (auto r = kv.put(key_of(i), value); !r) {
      fmt::print(stderr, "dengine-bench-embedded: fill: {}\n", r.error().message());
      std::exit(1);
    }
  }

  auto serial_put = [&](std::size_t i) { return kv.put(key_of(i % o.keys), value); };
  out.push_back({std::string(B::name), mode_name, "put", 1, run_serial(o.seconds, serial_put)});
  auto async_put = bench::async_puts(kv, value, o.keys);
  out.push_back(
      {std::string(B::name), mode_name, "put", 64, run_concurrent(o.seconds, 64, async_put)});

  if (gets) {
    for (auto c :
         {ReadConsistency::linearizable, ReadConsistency::lease, ReadConsistency::serializable}) {
      const std::string op = "get_" + std::string(node::to_string(c));
      auto serial_get = [&](std::size_t i) { return kv.get(key_of(i % o.keys), c); };
      out.push_back({std::string(B::name), mode_name, op, 1, run_serial(o.seconds, serial_get)});
      auto async_get = [&](std::size_t i, auto done) {
        kv::RangeRequest req;
        req.key = key_of(i % o.keys);
        kv.async_range(std::move(req), c,
                       [d = std::move(done)](result<kv::RangeResponse> r) mutable {
                         d(r.has_value(), r ? std::string() : r.error().message());
                       });
      };
      out.push_back(
          {std::string(B::name), mode_name, op, 64, run_concurrent(o.seconds, 64, async_get)});
    }
  }
  if (auto r = e->stop(); !r) fmt::print(stderr, "stop: {}\n", r.error().message());
  return out;
}

Report* find(std::vector<Report>& rs, const std::string& backend, const std::string& op,
             std::size_t clients) {
  for (auto& r : rs)
    if (r.backend == backend && r.op == op && r.clients == clients) return &r;
  return nullptr;
}

void verdict(const std::string& target, double measured, double limit, bool at_most,
             const std::string& unit) {
  bench::verdict("embedded", target, measured, limit, at_most, unit);
}

int run(const Options& o) {
  const fs::path root = o.dir.empty() ? fs::temp_directory_path() /
                                            ("dengine-bench-embedded-" + std::to_string(::getpid()))
                                      : o.dir;
  fs::create_directories(root);
  std::vector<Report> reports;
  auto mem =
      bench_backend<memory::Backend>(o, root / "memory", PersistenceMode::mem_first, !o.puts_only);
  reports.insert(reports.end(), mem.begin(), mem.end());
  Sample raw;
#ifdef DENGINE_HAVE_RAWFILE
  if (!o.memory_only) {
    raw = raw_fdatasync(root, o.seconds, o.value_bytes + 64);
    auto disk =
        bench_backend<rawfile::Backend>(o, root / "rawfile", PersistenceMode::disk_first, false);
    reports.insert(reports.end(), disk.begin(), disk.end());
  }
#endif
  for (auto& r : reports) print(r);
  if (!raw.us.empty()) {
    fmt::print(
        "{{\"bench\":\"embedded\",\"op\":\"raw_write_fdatasync\",\"ops_per_sec\":{:.0f},"
        "\"p50_us\":{:.1f},\"p99_us\":{:.1f}}}\n",
        raw.rate(), raw.percentile(0.5), raw.percentile(0.99));
  }

  // The targets of issue 3, each with its verdict.
  if (auto* r = find(reports, "memory", "put", 1))
    verdict("memfirst put p50, 1 client", r->sample.percentile(0.5), 20, true, "us");
  if (auto* r = find(reports, "memory", "put", 64))
    verdict("memfirst puts/s, 64 clients", r->sample.rate(), 300000, false, "ops/s");
  for (const char* op : {"get_lease", "get_serializable"})
    if (auto* r = find(reports, "memory", op, 1))
      verdict(std::string(op) + " p50, 1 client", r->sample.percentile(0.5), 5, true, "us");
  auto* d1 = find(reports, "rawfile", "put", 1);
  auto* d64 = find(reports, "rawfile", "put", 64);
  if (d1 != nullptr && !raw.us.empty())
    verdict("diskfirst put p50 / raw fdatasync p50, 1 client",
            d1->sample.percentile(0.5) / raw.percentile(0.5), 1.5, true, "ratio");
  if (d1 != nullptr && d64 != nullptr && d1->sample.rate() > 0)
    verdict("diskfirst puts/s 64 clients / 1 client", d64->sample.rate() / d1->sample.rate(), 20,
            false, "ratio");

  // Human lines.
  fmt::print("malloc: {}\n", allocator);
  for (auto& r : reports) {
    fmt::print(
        "{:8} {:10} {:18} clients={:<3} {:>9.0f} ops/s  p50 {:8.1f} us  p99 {:8.1f} us  "
        "p99.9 {:8.1f} us{}\n",
        r.backend, r.mode, r.op, r.clients, r.sample.rate(), r.sample.percentile(0.5),
        r.sample.percentile(0.99), r.sample.percentile(0.999),
        r.sample.errors > 0 ? fmt::format("  ({} errors)", r.sample.errors) : "");
  }
  if (!raw.us.empty())
    fmt::print("raw write+fdatasync ({} B): {:.0f}/s  p50 {:.1f} us  p99 {:.1f} us\n",
               o.value_bytes + 64, raw.rate(), raw.percentile(0.5), raw.percentile(0.99));
  if (o.dir.empty()) fs::remove_all(root);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Options o;
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      auto next = [&]() -> std::string {
        if (i + 1 >= argc) {
          fmt::print(stderr, "dengine-bench-embedded: {} needs a value\n", a);
          std::exit(2);
        }
        return argv[++i];
      };
      if (a == "--seconds") {
        o.seconds = std::stod(next());
      } else if (a == "--dir") {
        o.dir = next();
      } else if (a == "--value-bytes") {
        o.value_bytes = std::stoul(next());
      } else if (a == "--idle-spin-us") {
        o.idle_spin = std::chrono::microseconds(std::stol(next()));
      } else if (a == "--memory-only") {
        o.memory_only = true;
      } else if (a == "--puts-only") {
        o.puts_only = true;
      } else {
        fmt::print(
            stderr,
            "usage: dengine-bench-embedded [--seconds S] [--dir D] [--value-bytes B]\n"
            "                              [--idle-spin-us US] [--memory-only] [--puts-only]\n");
        return 2;
      }
    }
    if (o.seconds <= 0) {
      fmt::print(stderr, "dengine-bench-embedded: --seconds must be positive\n");
      return 2;
    }
    return run(o);
  } catch (const std::exception& e) {
    fmt::print(stderr, "dengine-bench-embedded: {}\n", e.what());
    return 1;
  }
}
