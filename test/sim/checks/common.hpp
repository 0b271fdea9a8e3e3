#pragma once
/// What every check of test/sim/checks shares: the violation it reports, what it may observe of
/// a node, and an entry's fingerprint. One invariant per file beside this one; invariants.hpp
/// runs them together (InvariantChecker).

#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/raft/ready.hpp"

namespace dengine::sim {

/// A broken invariant: which one, and the evidence.
struct Violation {
  std::string invariant;
  std::string detail;
};

/// What a check needs to see of a node (raft::Core provides exactly this).
template <class N>
concept ObservedNode = requires(const N& n, LogIndex i) {
  { n.id() } -> std::convertible_to<NodeId>;
  { n.role() } -> std::convertible_to<raft::Role>;
  { n.term() } -> std::convertible_to<Term>;
  { n.commit_index() } -> std::convertible_to<LogIndex>;
  { n.first_index() } -> std::convertible_to<LogIndex>;
  { n.last_index() } -> std::convertible_to<LogIndex>;
  { n.hard_state() } -> std::convertible_to<HardState>;
  { n.term_at(i) } -> std::same_as<result<Term>>;
  { n.entry_at(i) } -> std::same_as<const Entry*>;
};

/// A 64-bit fingerprint of an entry's type and payload (FNV-1a). Comparing fingerprints instead
/// of payloads keeps the history small; a collision could only hide a violation, never invent one.
[[nodiscard]] inline std::uint64_t fingerprint(const Entry& e) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  auto mix = [&h](unsigned char c) { h = (h ^ c) * 0x100000001b3ULL; };
  mix(static_cast<unsigned char>(e.type));
  for (char c : e.data) mix(static_cast<unsigned char>(c));
  return h;
}

namespace checks {

inline std::string str(std::uint64_t v) { return std::to_string(v); }
inline std::optional<Violation> violation(std::string name, std::string detail) {
  return Violation{std::move(name), std::move(detail)};
}

}  // namespace checks
}  // namespace dengine::sim
