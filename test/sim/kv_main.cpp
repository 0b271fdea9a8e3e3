// dengine-sim-kv: the whole KV stack under simulation — engine::KvReplica instances (node,
// KV state machine, lessor, housekeeping) driven through LocalKvClient's asynchronous API,
// deterministically under the simulator's faults — with the histories checked afterwards
// (kv_checks.hpp). See docs/simulation.md, "The KV stack under simulation".
//
//   dengine-sim-kv --seeds N [--first F] [--seed S] [--nodes 3|5] [--seed-file PATH]
//                  [--fault-seconds T] [--membership] [--inject BUG --expect INV[,INV...]]
//                  [--verbose]
//
// Prints, for each failing seed, its violations, the command that replays it and the last
// events; the last line is always `sim-kv: N seeds, V violations`. Exit status: 0 when no
// violation (with --expect: when one of the named checks caught the injected bug; the run
// stops there), 1 otherwise, 2 on a usage error.

#include <charconv>
#include <cstdio>
#include <exception>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kv_run.hpp"

namespace {

using namespace dengine::sim::kvsim;

struct Args {
  std::uint64_t seeds = 0;
  std::uint64_t first = 1;
  std::optional<std::uint64_t> seed;
  std::size_t nodes = 0;
  std::uint64_t fault_seconds = 0;  // 0: the default fault phase
  bool membership = false;          // membership changes during the faults
  std::vector<std::string> seed_files;
  KvInjection inject = KvInjection::none;
  std::vector<std::string> expect;  // checks that must catch the injected bug
  bool verbose = false;
};

[[noreturn]] void usage(const std::string& problem) {
  std::fprintf(stderr,
               "dengine-sim-kv: %s\n"
               "usage: dengine-sim-kv --seeds N [--first F] [--seed S] [--nodes 3|5]\n"
               "                      [--seed-file PATH] [--fault-seconds T] [--membership]\n"
               "                      [--inject BUG --expect INV[,INV...]]\n"
               "                      [--verbose]\n"
               "bugs: stale-reads skip-watch-event early-revoke\n",
               problem.c_str());
  std::exit(2);
}

std::uint64_t parse_number(std::string_view flag, std::string_view text) {
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size())
    usage(std::string(flag) + ": expected a non-negative integer, got \"" + std::string(text) +
          "\"");
  return v;
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    auto value = [&]() -> std::string_view {
      if (i + 1 >= argc) usage(std::string(flag) + " needs a value");
      return argv[++i];
    };
    if (flag == "--seeds") {
      a.seeds = parse_number(flag, value());
    } else if (flag == "--first") {
      a.first = parse_number(flag, value());
    } else if (flag == "--seed") {
      a.seed = parse_number(flag, value());
    } else if (flag == "--nodes") {
      a.nodes = parse_number(flag, value());
      if (a.nodes != 3 && a.nodes != 5) usage("--nodes must be 3 or 5");
    } else if (flag == "--fault-seconds") {
      a.fault_seconds = parse_number(flag, value());
      if (a.fault_seconds == 0 || a.fault_seconds > 3600) usage("--fault-seconds must be 1..3600");
    } else if (flag == "--membership") {
      a.membership = true;
    } else if (flag == "--seed-file") {
      a.seed_files.emplace_back(value());
    } else if (flag == "--inject") {
      const std::string_view name = value();
      bool known = false;
      for (KvInjection i :
           {KvInjection::stale_reads, KvInjection::skip_watch_event, KvInjection::early_revoke}) {
        if (name == to_string(i)) {
          a.inject = i;
          known = true;
        }
      }
      if (!known) usage("unknown bug to inject \"" + std::string(name) + "\"");
    } else if (flag == "--expect") {
      std::string_view list = value();
      while (!list.empty()) {
        const auto comma = list.find(',');
        a.expect.emplace_back(list.substr(0, comma));
        list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
      }
    } else if (flag == "--verbose") {
      a.verbose = true;
    } else {
      usage("unknown argument \"" + std::string(flag) + "\"");
    }
  }
  if (a.seeds == 0 && !a.seed && a.seed_files.empty())
    usage("give --seeds N, --seed S or --seed-file");
  if ((a.inject == KvInjection::none) != a.expect.empty())
    usage("--inject and --expect go together");
  return a;
}

// One seed per line; '#' starts a comment; blank lines are ignored.
std::vector<std::uint64_t> read_seed_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) usage("cannot open seed file " + path);
  std::vector<std::uint64_t> out;
  std::string line;
  for (int lineno = 1; std::getline(in, line); ++lineno) {
    if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    const auto b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos) continue;
    const auto e = line.find_last_not_of(" \t\r");
    out.push_back(parse_number(path + ":" + std::to_string(lineno),
                               std::string_view(line).substr(b, e - b + 1)));
  }
  return out;
}

const char* mode_name(dengine::PersistenceMode m) {
  return m == dengine::PersistenceMode::mem_first ? "mem-first" : "disk-first";
}

}  // namespace

int main(int argc, char** argv) try {
  const Args args = parse(argc, argv);
  std::vector<std::uint64_t> seeds;
  if (args.seed) {
    seeds.push_back(*args.seed);
  } else {
    for (std::uint64_t s = args.first; s < args.first + args.seeds; ++s) seeds.push_back(s);
  }
  for (const std::string& f : args.seed_files)
    for (std::uint64_t s : read_seed_file(f)) seeds.push_back(s);

  std::uint64_t violations = 0;
  std::uint64_t unknown = 0;
  std::map<std::string, std::uint64_t> by_invariant;
  bool expected_found = false;
  std::uint64_t run = 0;
  for (std::uint64_t seed : seeds) {
    KvSimOptions o = options_for_seed(seed, args.nodes);
    o.verbose = args.verbose;
    o.inject = args.inject;
    if (args.fault_seconds != 0) o.fault_phase = dengine::sim::sim_s(args.fault_seconds);
    if (args.membership) o.w_member = 2;
    KvRunResult r;
    {
      KvCluster cluster(o);
      r = cluster.run();
    }
    ++run;
    if (r.lin_unknown) ++unknown;
    if (args.verbose || (seeds.size() == 1 && r.violations.empty()))
      std::printf(
          "seed %llu (%zu nodes, %s): %llu events, %.3f s virtual, %llu ops ok, %llu unknown, "
          "%llu stops, %llu crashes (%llu power losses), %llu transfers, %llu leases (%llu "
          "expired), "
          "%llu keep-alives, %llu watch events, %llu watch cancels, final revision %lld%s\n",
          static_cast<unsigned long long>(seed), o.nodes, mode_name(o.persistence),
          static_cast<unsigned long long>(r.events), static_cast<double>(r.end_time) / 1e6,
          static_cast<unsigned long long>(r.ops_ok), static_cast<unsigned long long>(r.ops_unknown),
          static_cast<unsigned long long>(r.stops), static_cast<unsigned long long>(r.crashes),
          static_cast<unsigned long long>(r.power_losses),
          static_cast<unsigned long long>(r.transfers), static_cast<unsigned long long>(r.leases),
          static_cast<unsigned long long>(r.lease_expiries),
          static_cast<unsigned long long>(r.keep_alives),
          static_cast<unsigned long long>(r.watch_events),
          static_cast<unsigned long long>(r.watch_cancels),
          static_cast<long long>(r.final_revision),
          r.lin_unknown ? " (linearizability: search budget exhausted)" : "");
    for (const auto& v : r.violations) {
      ++violations;
      ++by_invariant[v.invariant];
      for (const std::string& e : args.expect) expected_found = expected_found || e == v.invariant;
      std::printf("VIOLATION seed %llu (%zu nodes, %s): %s: %s\n",
                  static_cast<unsigned long long>(seed), o.nodes, mode_name(o.persistence),
                  v.invariant.c_str(), v.detail.c_str());
    }
    if (!r.violations.empty()) {
      std::string replay = "dengine-sim-kv --seed " + std::to_string(seed);
      if (args.nodes != 0) replay += " --nodes " + std::to_string(args.nodes);
      if (args.fault_seconds != 0)
        replay += " --fault-seconds " + std::to_string(args.fault_seconds);
      if (args.membership) replay += " --membership";
      if (args.inject != KvInjection::none)
        replay += std::string(" --inject ") + to_string(args.inject);
      std::printf("  replay: %s\n", replay.c_str());
      for (const std::string& l : r.details) std::printf("    %s\n", l.c_str());
      std::printf("  last %zu events:\n", r.trace.size());
      for (const std::string& l : r.trace) std::printf("    %s\n", l.c_str());
    }
    if (expected_found) break;
  }
  if (unknown != 0)
    std::printf(
        "sim-kv: %llu seeds with histories the checker could not decide within its budget\n",
        static_cast<unsigned long long>(unknown));
  for (const auto& [name, count] : by_invariant)
    std::printf("sim-kv: %llu violations of %s\n", static_cast<unsigned long long>(count),
                name.c_str());
  if (!args.expect.empty())
    std::printf("sim-kv: injected %s: expected violation %s\n", to_string(args.inject),
                expected_found ? "found" : "NOT found");
  std::printf("sim-kv: %llu seeds, %llu violations\n", static_cast<unsigned long long>(run),
              static_cast<unsigned long long>(violations));
  if (!args.expect.empty()) return expected_found ? 0 : 1;
  return violations > 0 ? 1 : 0;
} catch (const std::exception& e) {  // a bug in the run or the checker: report it, do not abort
  std::fprintf(stderr, "dengine-sim-kv: exception: %s\n", e.what());
  std::printf("sim-kv: exception: %s\n", e.what());
  return 1;
} catch (...) {
  std::fprintf(stderr, "dengine-sim-kv: unknown exception\n");
  return 1;
}
