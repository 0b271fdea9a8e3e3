#pragma once
/// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the one checksum dengine uses: every
/// record a backend stores, snapshot files, and the wire codec's frames.
///
/// Two implementations give bit-identical results: a portable slicing-by-8 table walk, and the
/// SSE4.2 `crc32` instruction on x86-64, chosen once at run time (`__builtin_cpu_supports`), so a
/// binary built for generic x86-64 still uses the instruction where the CPU has it. The hardware
/// path is compiled with a per-function target attribute; no global -msse4.2 flag is needed.
///
/// `extend(crc, data)` continues a running checksum, so `extend(extend(0, a), b) == value(a + b)`.

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>

namespace dengine::crc32c {

namespace detail {

inline constexpr std::uint32_t polynomial = 0x82F63B78U;

/// table[k][b]: the CRC of byte b followed by k zero bytes (slicing-by-8).
struct tables {
  std::array<std::array<std::uint32_t, 256>, 8> t{};
  constexpr tables() {
    for (std::uint32_t b = 0; b < 256; ++b) {
      std::uint32_t c = b;
      for (int bit = 0; bit < 8; ++bit) c = (c & 1U) != 0 ? (c >> 1) ^ polynomial : c >> 1;
      t[0][b] = c;
    }
    for (std::size_t k = 1; k < 8; ++k)
      for (std::uint32_t b = 0; b < 256; ++b)
        t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xFFU];
  }
};

inline constexpr tables table{};

/// Bytes of each of the three lanes that update_sse42 checksums side by side.
inline constexpr std::size_t lane_bytes = 256;

/// t[k][b]: the register after lane_bytes zero bytes, starting from b << 8k. The register
/// (without the pre/post inversion) is linear in the bytes and the start value, so the register
/// of A followed by a lane B equals shift(register of A) ^ (register of B started from 0), with
/// shift(x) = the XOR of shift[k][byte k of x] over k = 0..3.
struct lane_shift_tables {
  std::array<std::array<std::uint32_t, 256>, 4> t{};
  constexpr lane_shift_tables() {
    std::array<std::uint32_t, 32> basis{};  // the shift of each single bit
    for (std::size_t bit = 0; bit < 32; ++bit) {
      std::uint32_t r = 1U << bit;
      for (std::size_t n = 0; n < lane_bytes; ++n) r = (r >> 8) ^ table.t[0][r & 0xFFU];
      basis[bit] = r;
    }
    for (std::size_t k = 0; k < 4; ++k)
      for (std::uint32_t b = 0; b < 256; ++b)
        for (std::size_t bit = 0; bit < 8; ++bit)
          if (((b >> bit) & 1U) != 0) t[k][b] ^= basis[8 * k + bit];
  }
};

inline constexpr lane_shift_tables lane_shift{};

/// The register after lane_bytes zero bytes, starting from `reg`.
inline std::uint32_t shift_lane(std::uint32_t reg) noexcept {
  const auto& t = lane_shift.t;
  return t[0][reg & 0xFFU] ^ t[1][(reg >> 8) & 0xFFU] ^ t[2][(reg >> 16) & 0xFFU] ^ t[3][reg >> 24];
}

inline std::uint64_t load_le64(const unsigned char* p) noexcept {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

/// Portable slicing-by-8 over the raw (not pre/post-inverted) register value.
inline std::uint32_t update_portable(std::uint32_t crc, const unsigned char* p,
                                     std::size_t n) noexcept {
  const auto& t = table.t;
  while (n >= 8) {
    std::uint64_t word = load_le64(p) ^ crc;
    crc = t[7][word & 0xFF] ^ t[6][(word >> 8) & 0xFF] ^ t[5][(word >> 16) & 0xFF] ^
          t[4][(word >> 24) & 0xFF] ^ t[3][(word >> 32) & 0xFF] ^ t[2][(word >> 40) & 0xFF] ^
          t[1][(word >> 48) & 0xFF] ^ t[0][word >> 56];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xFFU];
  return crc;
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define DENGINE_CRC32C_HAVE_SSE42 1

/// The SSE4.2 `crc32` instruction: 8 bytes per step, then the tail bytewise. Long inputs go
/// three lanes at a time: one `crc32` has a latency of three cycles but the CPU starts one per
/// cycle, so three independent chains overlap where one chain waits (measured on the 2-core CI
/// machine: 145 -> 81 us per MiB, which the append path of a 4 KiB-entry log pays per batch byte);
/// the lanes are joined with shift_lane.
__attribute__((target("sse4.2"))) inline std::uint32_t update_sse42(std::uint32_t crc,
                                                                    const unsigned char* p,
                                                                    std::size_t n) noexcept {
  std::uint64_t c = crc;
  while (n >= 3 * lane_bytes) {
    std::uint64_t c1 = 0;
    std::uint64_t c2 = 0;
    for (std::size_t k = 0; k < lane_bytes; k += 8) {
      std::uint64_t w0;
      std::uint64_t w1;
      std::uint64_t w2;
      std::memcpy(&w0, p + k, 8);
      std::memcpy(&w1, p + lane_bytes + k, 8);
      std::memcpy(&w2, p + 2 * lane_bytes + k, 8);
      c = __builtin_ia32_crc32di(c, w0);
      c1 = __builtin_ia32_crc32di(c1, w1);
      c2 = __builtin_ia32_crc32di(c2, w2);
    }
    c = shift_lane(shift_lane(static_cast<std::uint32_t>(c)) ^ static_cast<std::uint32_t>(c1)) ^
        static_cast<std::uint32_t>(c2);
    p += 3 * lane_bytes;
    n -= 3 * lane_bytes;
  }
  while (n >= 8) {
    std::uint64_t word;
    std::memcpy(&word, p, 8);
    c = __builtin_ia32_crc32di(c, word);
    p += 8;
    n -= 8;
  }
  auto c32 = static_cast<std::uint32_t>(c);
  while (n-- > 0) c32 = __builtin_ia32_crc32qi(c32, *p++);
  return c32;
}

inline bool cpu_has_sse42() noexcept {
  static const bool has = __builtin_cpu_supports("sse4.2") != 0;
  return has;
}
#endif

}  // namespace detail

/// True when `extend` uses the CPU's crc32 instruction.
[[nodiscard]] inline bool hardware_accelerated() noexcept {
#ifdef DENGINE_CRC32C_HAVE_SSE42
  return detail::cpu_has_sse42();
#else
  return false;
#endif
}

/// Continues the checksum `crc` (the value of the bytes so far; 0 for none) over `n` bytes at
/// `data`.
[[nodiscard]] inline std::uint32_t extend(std::uint32_t crc, const void* data,
                                          std::size_t n) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
  std::uint32_t reg = ~crc;
#ifdef DENGINE_CRC32C_HAVE_SSE42
  if (detail::cpu_has_sse42()) return ~detail::update_sse42(reg, p, n);
#endif
  return ~detail::update_portable(reg, p, n);
}

/// The portable implementation, whatever the CPU (for tests comparing the two paths).
[[nodiscard]] inline std::uint32_t extend_portable(std::uint32_t crc, const void* data,
                                                   std::size_t n) noexcept {
  return ~detail::update_portable(~crc, static_cast<const unsigned char*>(data), n);
}

/// CRC32C of a byte range.
[[nodiscard]] inline std::uint32_t value(std::span<const std::byte> bytes) noexcept {
  return extend(0, bytes.data(), bytes.size());
}

/// CRC32C of a string's bytes.
[[nodiscard]] inline std::uint32_t value(std::string_view bytes) noexcept {
  return extend(0, bytes.data(), bytes.size());
}

}  // namespace dengine::crc32c
