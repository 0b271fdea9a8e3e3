// dengine-sim: seeded simulations of a dengine cluster — real nodes (node::Node over the
// deterministic runtime) or the KV stack — under faults, with the checks of the machine chosen.
// See docs/simulation.md.
//
//   dengine-sim [--machine register|kv] --seeds N [--first F] [--seed S] [--seed-file PATH]
//               [--nodes K] [--inject BUG] [--expect INV[,INV...]] [--until-violation]
//               [--verbose]
//               register: [--steps M] [--mix NAME]      kv: [--fault-seconds T] [--membership]
//
// The last line is always `sim: N seeds, V violations`. Exit status: 0 when no violation (or,
// with --expect, when one of the named checks caught the injected bug: the run then stops
// there), 1 otherwise, 2 on a usage error.

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "runner.hpp"

namespace {

using namespace dengine::sim;

[[noreturn]] void usage(const std::string& problem) {
  std::fprintf(stderr,
               "dengine-sim: %s\n"
               "usage: dengine-sim [--machine register|kv] --seeds N [--first F] [--seed S]\n"
               "                   [--seed-file PATH] [--nodes K] [--inject BUG]\n"
               "                   [--expect INV[,INV...]] [--until-violation] [--verbose]\n"
               "       register: [--steps M] [--mix NAME]\n"
               "       kv:       [--fault-seconds T] [--membership]\n"
               "register: %s\nkv: %s\n",
               problem.c_str(), register_help().c_str(), kv_help().c_str());
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
    if (flag == "--machine") {
      const std::string_view name = value();
      if (name == "register") {
        a.machine = Machine::register_machine;
      } else if (name == "kv") {
        a.machine = Machine::kv;
      } else {
        usage("unknown machine \"" + std::string(name) + "\" (register or kv)");
      }
    } else if (flag == "--seeds") {
      a.seeds = parse_number(flag, value());
    } else if (flag == "--first") {
      a.first = parse_number(flag, value());
    } else if (flag == "--seed") {
      a.seed = parse_number(flag, value());
    } else if (flag == "--seed-file") {
      a.seed_files.emplace_back(value());
    } else if (flag == "--nodes") {
      a.nodes = parse_number(flag, value());
    } else if (flag == "--inject") {
      a.inject = value();
    } else if (flag == "--expect") {
      // Comma-separated check names, e.g. "election safety,leader completeness".
      std::string_view list = value();
      while (!list.empty()) {
        const auto comma = list.find(',');
        a.expect.emplace_back(list.substr(0, comma));
        list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
      }
      if (a.expect.empty()) usage("--expect needs at least one check name");
    } else if (flag == "--until-violation") {
      a.until_violation = true;
    } else if (flag == "--verbose") {
      a.verbose = true;
    } else if (flag == "--steps") {
      a.steps = parse_number(flag, value());
    } else if (flag == "--mix") {
      a.mix = std::string(value());
    } else if (flag == "--fault-seconds") {
      a.fault_seconds = parse_number(flag, value());
    } else if (flag == "--membership") {
      a.membership = true;
    } else {
      usage("unknown argument \"" + std::string(flag) + "\"");
    }
  }
  if (a.seeds == 0 && !a.seed && a.seed_files.empty())
    usage("give --seeds N, --seed S or --seed-file");
  const auto problem = a.machine == Machine::kv ? kv_check(a) : register_check(a);
  if (problem) usage(*problem);
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

// The command that replays `seed` exactly: the seed and every flag that shaped its run.
std::string replay_command(const Args& a, std::uint64_t seed) {
  std::string s = "dengine-sim";
  if (a.machine == Machine::kv) s += " --machine kv";
  s += " --seed " + std::to_string(seed);
  if (a.nodes) s += " --nodes " + std::to_string(*a.nodes);
  if (a.steps) s += " --steps " + std::to_string(*a.steps);
  if (a.mix) s += " --mix " + *a.mix;
  if (a.fault_seconds != 0) s += " --fault-seconds " + std::to_string(a.fault_seconds);
  if (a.membership) s += " --membership";
  if (!a.inject.empty()) s += " --inject " + a.inject;
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
  std::uint64_t frames = 0;
  std::uint64_t damaged = 0;
  std::uint64_t refused = 0;
  bool expected_found = false;
  std::map<std::string, std::uint64_t> by_invariant;
  for (std::uint64_t seed : seeds) {
    const SeedReport r =
        args.machine == Machine::kv ? kv_run(args, seed) : register_run(args, seed);
    ++run;
    if (r.lin_unknown) ++unknown;
    frames += r.frames;
    damaged += r.frames_damaged;
    refused += r.frames_refused;
    if (args.verbose || (seeds.size() == 1 && r.violations.empty()))
      std::printf("seed %llu %s\n", static_cast<unsigned long long>(seed), r.summary.c_str());
    for (const Violation& v : r.violations) {
      ++violations;
      ++by_invariant[v.invariant];
      for (const std::string& e : args.expect) expected_found = expected_found || e == v.invariant;
      std::printf("VIOLATION seed %llu (%s): %s: %s\n", static_cast<unsigned long long>(seed),
                  r.setup.c_str(), v.invariant.c_str(), v.detail.c_str());
    }
    if (!r.violations.empty()) {
      std::printf("  replay: %s\n", replay_command(args, seed).c_str());
      for (const std::string& l : r.details) std::printf("    %s\n", l.c_str());
      if (!r.trace.empty()) {
        std::printf("  last %zu events:\n", r.trace.size());
        for (const std::string& l : r.trace) std::printf("    %s\n", l.c_str());
      }
    }
    if ((args.until_violation && !r.violations.empty()) || expected_found) break;
  }
  if (unknown != 0)
    std::printf("sim: %llu seeds with histories the checker could not decide within its budget\n",
                static_cast<unsigned long long>(unknown));
  std::printf("sim: %llu wire frames, %llu damaged in transit, %llu refused by the decoder\n",
              static_cast<unsigned long long>(frames), static_cast<unsigned long long>(damaged),
              static_cast<unsigned long long>(refused));
  for (const auto& [name, count] : by_invariant)
    std::printf("sim: %llu violations of %s\n", static_cast<unsigned long long>(count),
                name.c_str());
  if (!args.expect.empty())
    std::printf("sim: injected %s: expected violation %s\n", args.inject.c_str(),
                expected_found ? "found" : "NOT found");
  std::printf("sim: %llu seeds, %llu violations\n", static_cast<unsigned long long>(run),
              static_cast<unsigned long long>(violations));
  if (!args.expect.empty()) return expected_found ? 0 : 1;
  return violations > 0 ? 1 : 0;
} catch (const std::exception& e) {  // a bug in the run or the checker: report it, do not abort
  std::fprintf(stderr, "dengine-sim: exception: %s\n", e.what());
  std::printf("sim: exception: %s\n", e.what());
  return 1;
} catch (...) {
  std::fprintf(stderr, "dengine-sim: unknown exception\n");
  return 1;
}
