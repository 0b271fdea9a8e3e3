// dengine-sim --machine register (the default): the protocol simulation of cluster.hpp, one
// seed at a time, for the seed loop of main.cpp.

#include <cstdio>
#include <string>

#include "cluster.hpp"
#include "dengine/core/test_hooks.hpp"
#include "runner.hpp"

namespace dengine::sim {

std::optional<std::string> register_check(const Args& a) {
  if (a.nodes && (*a.nodes < 1 || *a.nodes > 7)) return "--nodes must be between 1 and 7";
  if (a.steps && *a.steps == 0) return "--steps must be positive";
  if (a.mix && !find_mix(*a.mix)) return "unknown fault mix \"" + *a.mix + "\"";
  if (!a.inject.empty() && !parse_injection(a.inject))
    return "unknown bug to inject \"" + a.inject + "\"";
  if (a.fault_seconds != 0 || a.membership)
    return "--fault-seconds and --membership need --machine kv";
  return std::nullopt;
}

std::string register_help() {
  std::string s = "mixes";
  for (const FaultMix& m : fault_mixes()) s += " " + m.name;
  for (const FaultMix& m : extra_fault_mixes()) s += " " + m.name;
  s += "; bugs";
  for (Injection i :
       {Injection::vote_twice, Injection::read_without_confirmation, Injection::ack_before_persist,
        Injection::commit_uncommitted, Injection::no_stickiness, Injection::tick_lease})
    s += " " + std::string(to_string(i));
  return s;
}

SeedReport register_run(const Args& args, std::uint64_t seed) {
  SimOptions o = options_for_seed(seed);
  if (args.nodes) o.nodes = *args.nodes;
  if (args.steps) o.steps = *args.steps;
  if (args.mix) o.mix = *find_mix(*args.mix);
  if (!args.inject.empty()) o.inject = *parse_injection(args.inject);
  o.verbose = args.verbose;
  // The bugs live in the real raft::Core and node::Driver (dengine/core/test_hooks.hpp; this
  // program is built with DENGINE_TEST_HOOKS), except no-stickiness: a configuration mistake
  // (check-quorum off on some nodes), made by the harness (cluster_nodes.hpp).
  test_hooks::switches() = {
      .vote_twice = o.inject == Injection::vote_twice,
      .commit_uncommitted = o.inject == Injection::commit_uncommitted,
      .read_without_confirmation = o.inject == Injection::read_without_confirmation,
      .ack_before_persist = o.inject == Injection::ack_before_persist,
      .tick_lease = o.inject == Injection::tick_lease};
  Cluster cluster(o);
  RunResult r = cluster.run();

  SeedReport out;
  char line[512];
  std::snprintf(
      line, sizeof line,
      "(%s, %zu nodes): %llu events, %.3f s virtual, %llu ops checked, %llu unknown, "
      "%llu crashes, %llu config changes, %llu snapshots installed, commit %llu, "
      "%llu frames (%llu damaged, %llu refused)%s",
      o.mix.name.c_str(), o.nodes, static_cast<unsigned long long>(r.events),
      static_cast<double>(r.end_time) / 1e6, static_cast<unsigned long long>(r.ops_ok),
      static_cast<unsigned long long>(r.ops_unknown), static_cast<unsigned long long>(r.crashes),
      static_cast<unsigned long long>(r.config_changes),
      static_cast<unsigned long long>(r.snapshots_installed),
      static_cast<unsigned long long>(r.max_commit), static_cast<unsigned long long>(r.frames),
      static_cast<unsigned long long>(r.frames_damaged),
      static_cast<unsigned long long>(r.frames_refused),
      r.lin_unknown ? " (linearizability: search budget exhausted)" : "");
  out.summary = line;
  out.setup = "mix " + o.mix.name + ", " + std::to_string(o.nodes) + " nodes, inject " +
              std::string(to_string(o.inject));
  out.lin_unknown = r.lin_unknown;
  out.frames = r.frames;
  out.frames_damaged = r.frames_damaged;
  out.frames_refused = r.frames_refused;
  if (!r.details.empty()) {
    out.details.emplace_back("history check:");
    for (std::string& l : r.details) out.details.push_back("  " + std::move(l));
  }
  // A history violation is found after the run: the last events are unrelated to it.
  if (!r.violations.empty() && r.violations.front().invariant != "linearizability")
    out.trace = std::move(r.trace);
  out.violations = std::move(r.violations);
  return out;
}

}  // namespace dengine::sim
