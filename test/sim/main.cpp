// dengine-sim: runs seeded simulations of a Raft cluster under faults and checks safety
// invariants after every step, liveness after the faults heal, and client histories for
// linearizability. See docs/simulation.md.
//
//   dengine-sim --seeds N [--first F] [--seed S] [--nodes K] [--steps M] [--mix NAME]
//               [--inject BUG] [--seed-file PATH] [--until-violation] [--expect INV[,INV...]]
//               [--verbose]
//
// The last line is always `sim: N seeds, V violations`. Exit status: 0 when no violation (or,
// with --expect, when one of the named invariants was violated: the run then stops there),
// 1 otherwise, 2 on a usage error.

#include <charconv>
#include <cstdio>
#include <exception>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster.hpp"

namespace {

using namespace dengine::sim;

struct Args {
  std::uint64_t seeds = 0;
  std::uint64_t first = 1;
  std::optional<std::uint64_t> seed;
  std::optional<std::size_t> nodes;
  std::optional<std::uint64_t> steps;
  std::optional<FaultMix> mix;
  Injection inject = Injection::none;
  std::vector<std::string> seed_files;
  bool until_violation = false;
  std::vector<std::string> expect;  // invariants that must be violated (bug-injection tests)
  bool verbose = false;
};

[[noreturn]] void usage(const std::string& problem) {
  std::fprintf(stderr,
               "dengine-sim: %s\n"
               "usage: dengine-sim --seeds N [--first F] [--seed S] [--nodes K] [--steps M]\n"
               "                   [--mix NAME] [--inject BUG] [--seed-file PATH]\n"
               "                   [--until-violation] [--expect INV[,INV...]] [--verbose]\n"
               "mixes:",
               problem.c_str());
  for (const FaultMix& m : fault_mixes()) std::fprintf(stderr, " %s", m.name.c_str());
  for (const FaultMix& m : extra_fault_mixes()) std::fprintf(stderr, " %s", m.name.c_str());
  std::fprintf(stderr,
               "\nbugs: vote-twice read-without-confirmation ack-before-persist commit-uncommitted"
               " no-stickiness tick-lease\n");
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
      if (*a.nodes < 1 || *a.nodes > 7) usage("--nodes must be between 1 and 7");
    } else if (flag == "--steps") {
      a.steps = parse_number(flag, value());
      if (*a.steps == 0) usage("--steps must be positive");
    } else if (flag == "--mix") {
      const std::string_view name = value();
      a.mix = find_mix(name);
      if (!a.mix) usage("unknown fault mix \"" + std::string(name) + "\"");
    } else if (flag == "--inject") {
      const std::string_view name = value();
      auto inj = parse_injection(name);
      if (!inj) usage("unknown bug to inject \"" + std::string(name) + "\"");
      a.inject = *inj;
    } else if (flag == "--seed-file") {
      a.seed_files.emplace_back(value());
    } else if (flag == "--until-violation") {
      a.until_violation = true;
    } else if (flag == "--expect") {
      // Comma-separated invariant names, e.g. "election safety,leader completeness".
      std::string_view list = value();
      while (!list.empty()) {
        const auto comma = list.find(',');
        a.expect.emplace_back(list.substr(0, comma));
        list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
      }
      if (a.expect.empty()) usage("--expect needs at least one invariant name");
    } else if (flag == "--verbose") {
      a.verbose = true;
    } else {
      usage("unknown argument \"" + std::string(flag) + "\"");
    }
  }
  if (a.seeds == 0 && !a.seed && a.seed_files.empty())
    usage("give --seeds N, --seed S or --seed-file");
  return a;
}

// Reads seeds from a file: one per line; '#' starts a comment; blank lines are ignored.
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

std::string replay_command(const SimOptions& o, const Args& a) {
  std::string s = "dengine-sim --seed " + std::to_string(o.seed);
  if (a.nodes) s += " --nodes " + std::to_string(o.nodes);
  if (a.steps) s += " --steps " + std::to_string(o.steps);
  if (a.mix) s += " --mix " + o.mix.name;
  if (o.inject != Injection::none) s += " --inject " + std::string(to_string(o.inject));
  return s;
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

  std::uint64_t run = 0;
  std::uint64_t violations = 0;
  std::uint64_t unknown = 0;
  bool expected_found = false;
  std::map<std::string, std::uint64_t> by_invariant;
  for (std::uint64_t seed : seeds) {
    SimOptions o = options_for_seed(seed);
    if (args.nodes) o.nodes = *args.nodes;
    if (args.steps) o.steps = *args.steps;
    if (args.mix) o.mix = *args.mix;
    o.inject = args.inject;
    o.verbose = args.verbose;
    Cluster cluster(o);
    const RunResult r = cluster.run();
    ++run;
    if (r.lin_unknown) ++unknown;
    if (args.verbose || (seeds.size() == 1 && r.violations.empty()))
      std::printf(
          "seed %llu (%s, %zu nodes): %llu events, %.3f s virtual, %llu ops checked, "
          "%llu unknown, %llu crashes, %llu config changes, %llu snapshots installed, "
          "commit %llu%s\n",
          static_cast<unsigned long long>(seed), o.mix.name.c_str(), o.nodes,
          static_cast<unsigned long long>(r.events), static_cast<double>(r.end_time) / 1e6,
          static_cast<unsigned long long>(r.ops_ok), static_cast<unsigned long long>(r.ops_unknown),
          static_cast<unsigned long long>(r.crashes),
          static_cast<unsigned long long>(r.config_changes),
          static_cast<unsigned long long>(r.snapshots_installed),
          static_cast<unsigned long long>(r.max_commit),
          r.lin_unknown ? " (linearizability: search budget exhausted)" : "");
    for (const Violation& v : r.violations) {
      ++violations;
      ++by_invariant[v.invariant];
      for (const std::string& e : args.expect) expected_found = expected_found || e == v.invariant;
      std::printf("VIOLATION seed %llu (mix %s, %zu nodes, inject %s): %s: %s\n",
                  static_cast<unsigned long long>(seed), o.mix.name.c_str(), o.nodes,
                  std::string(to_string(o.inject)).c_str(), v.invariant.c_str(), v.detail.c_str());
    }
    if (!r.violations.empty()) {
      std::printf("  replay: %s\n", replay_command(o, args).c_str());
      if (!r.history.empty()) {
        std::printf("  history check:\n");
        for (const std::string& l : r.history) std::printf("    %s\n", l.c_str());
      }
      // A history violation is found after the run: the last events are unrelated to it.
      const bool during_run = r.violations.front().invariant != "linearizability";
      if (during_run) {
        std::printf("  last %zu events:\n", r.trace.size());
        for (const std::string& l : r.trace) std::printf("    %s\n", l.c_str());
      }
    }
    if ((args.until_violation && !r.violations.empty()) || expected_found) break;
  }
  if (unknown != 0)
    std::printf("sim: %llu seeds with histories the checker could not decide within its budget\n",
                static_cast<unsigned long long>(unknown));
  for (const auto& [name, count] : by_invariant)
    std::printf("sim: %llu violations of %s\n", static_cast<unsigned long long>(count),
                name.c_str());
  if (!args.expect.empty())
    std::printf("sim: expected violation %s\n", expected_found ? "found" : "NOT found");
  std::printf("sim: %llu seeds, %llu violations\n", static_cast<unsigned long long>(run),
              static_cast<unsigned long long>(violations));
  if (!args.expect.empty()) return expected_found ? 0 : 1;
  return violations > 0 ? 1 : 0;
} catch (const std::exception& e) {  // a bug in the run or the checker: report it, do not abort
  std::fprintf(stderr, "dengine-sim: exception: %s\n", e.what());
  return 1;
} catch (...) {
  std::fprintf(stderr, "dengine-sim: unknown exception\n");
  return 1;
}
