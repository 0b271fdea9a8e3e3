#pragma once
/// dengine-sim's command line and the interface between its one seed loop (main.cpp) and the two
/// machines it can run: `register` (run_register.cpp: the protocol simulation, a cluster of
/// register state machines under the protocol invariants) and `kv` (run_kv.cpp: the KV stack,
/// engine::KvReplica and LocalKvClient, under the KV checks). Each machine lives in its own
/// translation unit; main.cpp sees only what is declared here.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dengine/sim/clock.hpp"
#include "invariants.hpp"

namespace dengine::sim {

/// What every run reports, whatever the machine (RunResult in cluster.hpp and
/// kvsim::KvRunResult in kv_cluster.hpp add their own counts).
struct RunOutcome {
  /// What broke, in the order found.
  std::vector<Violation> violations;
  /// The last events before the violation, formatted.
  std::vector<std::string> trace;
  /// More about a violation, e.g. where the linearizability search got stuck on a key.
  std::vector<std::string> details;
  std::uint64_t events = 0;
  sim_time end_time = 0;
  std::uint64_t ops_ok = 0;       ///< client operations with a known outcome
  std::uint64_t ops_unknown = 0;  ///< outcome never learned, and not resolved from the log
  std::uint64_t crashes = 0;
  /// Wire frames sent (one per message), copies damaged in transit, and damaged frames the
  /// receiver's decoder refused (the others were lost before reaching it).
  std::uint64_t frames = 0;
  std::uint64_t frames_damaged = 0;
  std::uint64_t frames_refused = 0;
  /// The linearizability search ran out of budget (neither verdict could be proven).
  bool lin_unknown = false;
};

/// Which state machine the simulated cluster runs.
enum class Machine : std::uint8_t { register_machine, kv };

/// The parsed command line (docs/simulation.md lists every flag).
struct Args {
  Machine machine = Machine::register_machine;
  std::uint64_t seeds = 0;
  std::uint64_t first = 1;
  std::optional<std::uint64_t> seed;
  std::vector<std::string> seed_files;
  std::optional<std::size_t> nodes;
  std::string inject;               ///< a bug name of the machine; empty: none
  std::vector<std::string> expect;  ///< checks that must catch the injected bug
  bool until_violation = false;
  bool verbose = false;
  // register only
  std::optional<std::uint64_t> steps;
  std::optional<std::string> mix;
  // kv only
  std::uint64_t fault_seconds = 0;  ///< 0: the default fault phase
  bool membership = false;
};

/// What one seed's run reports to the seed loop.
struct SeedReport {
  std::vector<Violation> violations;
  /// One line: what the run did (printed with --verbose, or for a lone passing seed).
  std::string summary;
  /// How the run was set up, for a violation's line (e.g. "mix chaos, 3 nodes, inject none").
  std::string setup;
  /// Printed after the replay command of a failing seed (e.g. the offending key's history).
  std::vector<std::string> details;
  /// The last events before the violation (empty when they say nothing about it).
  std::vector<std::string> trace;
  /// The linearizability search ran out of budget (neither verdict could be proven).
  bool lin_unknown = false;
  /// Wire frames sent, damaged in transit, refused by the decoder (RunOutcome's counts).
  std::uint64_t frames = 0;
  std::uint64_t frames_damaged = 0;
  std::uint64_t frames_refused = 0;
};

/// A machine's part of the command line: nullopt if `args` suit it, else the problem.
[[nodiscard]] std::optional<std::string> register_check(const Args& args);
[[nodiscard]] std::optional<std::string> kv_check(const Args& args);
/// Runs one seed.
[[nodiscard]] SeedReport register_run(const Args& args, std::uint64_t seed);
[[nodiscard]] SeedReport kv_run(const Args& args, std::uint64_t seed);
/// The machine's fault mixes and bugs, for the usage text.
[[nodiscard]] std::string register_help();
[[nodiscard]] std::string kv_help();

}  // namespace dengine::sim
