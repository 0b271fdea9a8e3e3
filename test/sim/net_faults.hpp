#pragma once
/// What both machines' fault schedulers share (cluster_faults.hpp and kv_cluster_nodes.hpp): the
/// weighted choice of the next fault, and the network faults — a random split of the members,
/// applied as a symmetric partition, a one-way cut or an isolated node.

#include <cstddef>
#include <cstdio>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "dengine/core/types.hpp"
#include "dengine/sim/network.hpp"
#include "dengine/sim/random.hpp"

namespace dengine::sim {

/// An index into `weights` drawn with probability proportional to its weight; nullopt (and no
/// draw) when every weight is 0.
[[nodiscard]] inline std::optional<std::size_t> weighted_pick(Rng& rng,
                                                              std::span<const unsigned> weights) {
  unsigned total = 0;
  for (unsigned w : weights) total += w;
  if (total == 0) return std::nullopt;
  auto roll = static_cast<unsigned>(rng.below(total));
  std::size_t pick = 0;
  while (roll >= weights[pick]) roll -= weights[pick++];
  return pick;
}

/// A fault a scheduler may pick, and how often relative to the others.
struct WeightedFault {
  unsigned weight = 0;
  std::function<void()> run;
};

/// Runs one of `faults`, drawn as weighted_pick draws (nothing, and no draw, when every weight
/// is 0).
inline void run_weighted(Rng& rng, std::initializer_list<WeightedFault> faults) {
  std::vector<unsigned> weights;
  for (const WeightedFault& f : faults) weights.push_back(f.weight);
  if (const auto pick = weighted_pick(rng, weights)) std::data(faults)[*pick].run();
}

/// "n1,n3,n4".
[[nodiscard]] inline std::string node_list(const std::vector<NodeId>& ids) {
  std::string s;
  for (NodeId id : ids) s += (s.empty() ? "n" : ",n") + std::to_string(id);
  return s;
}

/// " damage 1.2%" for a damage probability above 0, else "" (traces of network settings).
[[nodiscard]] inline std::string damage_note(double corrupt) {
  if (corrupt <= 0) return {};
  char buf[32];
  std::snprintf(buf, sizeof buf, " damage %.1f%%", corrupt * 100);
  return buf;
}

/// What split_network did, for the trace: the node it names (the isolated one, or no_node) and
/// a description.
struct SplitNote {
  NodeId node = no_node;
  std::string text;
};

/// Splits `ids` at random (shuffled; the first side holds 1 to half of them) and applies one of:
/// a symmetric partition, a one-way cut from one side to the other (`swap_sides`: the direction
/// drawn too), or the isolation of one node. `ids` must hold at least two nodes.
template <class Message>
SplitNote split_network(Rng& rng, Network<Message>& net, std::vector<NodeId> ids, bool swap_sides) {
  rng.shuffle(std::span<NodeId>(ids));
  const std::size_t side = rng.between(1, ids.size() / 2);
  std::vector<NodeId> a(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(side));
  std::vector<NodeId> b(ids.begin() + static_cast<std::ptrdiff_t>(side), ids.end());
  switch (rng.below(3)) {
    case 0:
      net.partition({a, b});
      return {no_node, "partition {" + node_list(a) + "} | {" + node_list(b) + "}"};
    case 1:
      if (swap_sides && rng.chance(0.5)) std::swap(a, b);
      net.partition_one_way(a, b);
      return {no_node, "one-way cut {" + node_list(a) + "} -/-> {" + node_list(b) + "}"};
    default: net.isolate(a.front()); return {a.front(), "isolated"};
  }
}

}  // namespace dengine::sim
