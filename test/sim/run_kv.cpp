// dengine-sim --machine kv: the KV stack under simulation (kv_run.hpp), one seed at a time, for
// the seed loop of main.cpp. See docs/simulation.md, "The KV stack under simulation".

#include <cstdio>
#include <string>

#include "dengine/core/test_hooks.hpp"
#include "kv_run.hpp"
#include "runner.hpp"

namespace dengine::sim {

namespace {

constexpr kvsim::KvInjection kv_bugs[] = {
    kvsim::KvInjection::stale_reads, kvsim::KvInjection::skip_watch_event,
    kvsim::KvInjection::early_revoke, kvsim::KvInjection::forward_without_dedup,
    kvsim::KvInjection::keep_alive_unforwarded};

std::optional<kvsim::KvInjection> parse_kv_injection(const std::string& name) {
  for (kvsim::KvInjection i : kv_bugs)
    if (name == to_string(i)) return i;
  return std::nullopt;
}

const char* mode_name(PersistenceMode m) {
  return m == PersistenceMode::mem_first ? "mem-first" : "disk-first";
}

}  // namespace

std::optional<std::string> kv_check(const Args& a) {
  if (a.nodes && *a.nodes != 3 && *a.nodes != 5) return "--nodes must be 3 or 5 with --machine kv";
  if (a.fault_seconds > 3600) return "--fault-seconds must be 1..3600";
  if (!a.inject.empty() && !parse_kv_injection(a.inject))
    return "unknown bug to inject \"" + a.inject + "\"";
  if (a.inject.empty() != a.expect.empty()) return "--inject and --expect go together";
  if (a.steps || a.mix) return "--steps and --mix need --machine register";
  return std::nullopt;
}

std::string kv_help() {
  std::string s = "bugs";
  for (kvsim::KvInjection i : kv_bugs) s += std::string(" ") + to_string(i);
  return s;
}

SeedReport kv_run(const Args& args, std::uint64_t seed) {
  kvsim::KvSimOptions o = kvsim::options_for_seed(seed, args.nodes.value_or(0));
  o.verbose = args.verbose;
  if (!args.inject.empty()) o.inject = *parse_kv_injection(args.inject);
  if (args.fault_seconds != 0) o.fault_phase = sim_s(args.fault_seconds);
  if (args.membership) o.w_member = 2;
  // The bugs are hooks in the real code (dengine/core/test_hooks.hpp; this program is built
  // with DENGINE_TEST_HOOKS).
  test_hooks::switches() = {
      .stale_reads = o.inject == kvsim::KvInjection::stale_reads,
      .skip_watch_event = o.inject == kvsim::KvInjection::skip_watch_event,
      .early_revoke = o.inject == kvsim::KvInjection::early_revoke,
      .forward_without_dedup = o.inject == kvsim::KvInjection::forward_without_dedup,
      .keep_alive_unforwarded = o.inject == kvsim::KvInjection::keep_alive_unforwarded};
  kvsim::KvRunResult r;
  {
    kvsim::KvCluster cluster(o);
    r = cluster.run();
  }

  SeedReport out;
  char line[768];
  std::snprintf(
      line, sizeof line,
      "(%zu nodes, %s): %llu events, %.3f s virtual, %llu ops ok, %llu unknown, %llu stops, "
      "%llu crashes (%llu power losses), %llu transfers, %llu forwarded, %llu leases (%llu "
      "expired), %llu "
      "keep-alives (%llu at followers), %llu watch events, %llu watch cancels, final revision "
      "%lld, %llu frames "
      "(%llu damaged, %llu refused)%s",
      o.nodes, mode_name(o.persistence), static_cast<unsigned long long>(r.events),
      static_cast<double>(r.end_time) / 1e6, static_cast<unsigned long long>(r.ops_ok),
      static_cast<unsigned long long>(r.ops_unknown), static_cast<unsigned long long>(r.stops),
      static_cast<unsigned long long>(r.crashes), static_cast<unsigned long long>(r.power_losses),
      static_cast<unsigned long long>(r.transfers), static_cast<unsigned long long>(r.forwarded),
      static_cast<unsigned long long>(r.leases), static_cast<unsigned long long>(r.lease_expiries),
      static_cast<unsigned long long>(r.keep_alives),
      static_cast<unsigned long long>(r.keep_alives_forwarded),
      static_cast<unsigned long long>(r.watch_events),
      static_cast<unsigned long long>(r.watch_cancels), static_cast<long long>(r.final_revision),
      static_cast<unsigned long long>(r.frames), static_cast<unsigned long long>(r.frames_damaged),
      static_cast<unsigned long long>(r.frames_refused),
      r.lin_unknown ? " (linearizability: search budget exhausted)" : "");
  out.summary = line;
  out.setup = std::to_string(o.nodes) + " nodes, " + mode_name(o.persistence);
  out.lin_unknown = r.lin_unknown;
  out.frames = r.frames;
  out.frames_damaged = r.frames_damaged;
  out.frames_refused = r.frames_refused;
  out.details = std::move(r.details);
  if (!r.violations.empty()) out.trace = std::move(r.trace);
  out.violations = std::move(r.violations);
  return out;
}

}  // namespace dengine::sim
