#pragma once
/// A seeded, portable pseudo-random generator for simulations: xoshiro256** seeded through
/// splitmix64, with our own uniform helpers.
///
/// Why not <random>: std::random_device is not reproducible, and the std distributions are not
/// specified bit-for-bit, so the same seed may give different runs with another standard library.
/// Everything here is plain integer arithmetic (and one exact IEEE conversion in `unit()`), so a
/// seed replays identically on every platform and compiler.

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

namespace dengine::sim {

/// One step of splitmix64: advances `state` and returns a well-mixed 64-bit value.
/// Also a good hash finalizer for combining seeds.
[[nodiscard]] constexpr std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// Mixes two values into one seed (e.g. a run seed and a node id), deterministically.
[[nodiscard]] constexpr std::uint64_t mix_seed(std::uint64_t a, std::uint64_t b) noexcept {
  std::uint64_t s = a ^ (b * 0xd6e8feb86659fd93ULL);
  (void)splitmix64(s);
  return splitmix64(s);
}

/// xoshiro256** (Blackman and Vigna): fast, 256-bit state, passes BigCrush.
/// Invariant: the state is never all zero (splitmix64 seeding guarantees it in practice).
class Rng {
 public:
  /// Seeds the four state words from splitmix64(seed): any seed, including 0, is fine.
  explicit constexpr Rng(std::uint64_t seed) noexcept {
    std::uint64_t sm = seed;
    for (auto& w : s_) w = splitmix64(sm);
  }

  /// The next raw 64-bit value.
  constexpr std::uint64_t next() noexcept {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  /// Uniform in [0, n). n must be positive. Unbiased: rejects the top partial block of values.
  constexpr std::uint64_t below(std::uint64_t n) noexcept {
    assert(n > 0);
    // Values >= limit would make the low residues more likely; (2^64 - n) % n == 2^64 % n.
    const std::uint64_t threshold = (0 - n) % n;
    for (;;) {
      const std::uint64_t x = next();
      if (x >= threshold) return x % n;
    }
  }

  /// Uniform in [lo, hi] (both inclusive). Requires lo <= hi.
  constexpr std::uint64_t between(std::uint64_t lo, std::uint64_t hi) noexcept {
    assert(lo <= hi);
    if (hi - lo == ~std::uint64_t{0}) return next();
    return lo + below(hi - lo + 1);
  }

  /// Uniform in [0, 1) with 53 bits of precision (exact conversion, so portable).
  constexpr double unit() noexcept { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

  /// True with probability p (p <= 0: never, p >= 1: always).
  constexpr bool chance(double p) noexcept {
    if (p <= 0.0) return false;
    if (p >= 1.0) return true;
    return unit() < p;
  }

  /// An independent generator derived from this one (for a sub-component's own stream, so that
  /// adding draws in one component does not shift every other component's randomness).
  constexpr Rng fork() noexcept { return Rng(next() ^ 0x5851f42d4c957f2dULL); }

  /// A uniformly chosen element of a non-empty range.
  template <class T>
  constexpr const T& pick(std::span<const T> items) noexcept {
    assert(!items.empty());
    return items[below(items.size())];
  }

  /// Fisher–Yates shuffle, deterministic given the state.
  template <class T>
  constexpr void shuffle(std::span<T> items) noexcept {
    for (std::size_t i = items.size(); i > 1; --i) {
      std::size_t j = below(i);
      using std::swap;
      swap(items[i - 1], items[j]);
    }
  }

 private:
  static constexpr std::uint64_t rotl(std::uint64_t x, int k) noexcept {
    return (x << k) | (x >> (64 - k));
  }
  std::uint64_t s_[4]{};
};

}  // namespace dengine::sim
