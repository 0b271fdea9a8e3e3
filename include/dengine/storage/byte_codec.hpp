#pragma once
/// Fixed-width integers in byte strings, the one encoding helper every stored format uses.
///
/// Little-endian (`le`): the raw-file backend's records, the snapshot store's file. Big-endian
/// (`be`): LMDB and SQLite keys and records, where memcmp order must be numeric order. Either
/// way the bytes are written one at a time, so a data dir moves between machines of either byte
/// order. The `get_*` functions read without bounds checks (the caller checked the size);
/// `LeReader` is the bounds-checked cursor for untrusted input.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dengine::bytes {

/// Appends the low `n` bytes of `v`, least significant first.
inline void put_le(std::string& out, std::uint64_t v, int n) {
  // One append of a local buffer rather than n push_backs: the wire codec writes every field
  // of every simulated message through here.
  char b[8];
  for (int i = 0; i < n; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xFFU);
  out.append(b, static_cast<std::size_t>(n));
}
/// Appends a little-endian u32.
inline void put_le32(std::string& out, std::uint32_t v) { put_le(out, v, 4); }
/// Appends a little-endian u64.
inline void put_le64(std::string& out, std::uint64_t v) { put_le(out, v, 8); }

/// Reads `n` little-endian bytes at `p`.
inline std::uint64_t get_le(const void* p, int n) noexcept {
  const auto* b = static_cast<const unsigned char*>(p);
  std::uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | b[i];
  return v;
}
/// Reads a little-endian u32 at `p` (at least 4 bytes there).
inline std::uint32_t get_le32(const void* p) noexcept {
  return static_cast<std::uint32_t>(get_le(p, 4));
}
/// Reads a little-endian u64 at `p` (at least 8 bytes there).
inline std::uint64_t get_le64(const void* p) noexcept { return get_le(p, 8); }

/// Overwrites the 4 bytes at `pos` of `out` with the little-endian `v`.
inline void set_le32(std::string& out, std::size_t pos, std::uint32_t v) {
  for (std::size_t i = 0; i < 4; ++i) out[pos + i] = static_cast<char>((v >> (8 * i)) & 0xFFU);
}

/// Writes the low `n` bytes of `v` at `p`, most significant first.
inline void store_be(void* p, std::uint64_t v, int n) noexcept {
  auto* b = static_cast<unsigned char*>(p);
  for (int i = n - 1; i >= 0; --i, v >>= 8) b[i] = static_cast<unsigned char>(v & 0xFFU);
}
/// Writes a big-endian u32 at `p`.
inline void store_be32(void* p, std::uint32_t v) noexcept { store_be(p, v, 4); }
/// Writes a big-endian u64 at `p`.
inline void store_be64(void* p, std::uint64_t v) noexcept { store_be(p, v, 8); }

/// Appends the low `n` bytes of `v`, most significant first.
inline void put_be(std::string& out, std::uint64_t v, int n) {
  for (int shift = 8 * (n - 1); shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((v >> shift) & 0xFFU));
}
/// Appends a big-endian u32.
inline void put_be32(std::string& out, std::uint32_t v) { put_be(out, v, 4); }
/// Appends a big-endian u64.
inline void put_be64(std::string& out, std::uint64_t v) { put_be(out, v, 8); }

/// Reads `n` big-endian bytes at `p`.
inline std::uint64_t get_be(const void* p, int n) noexcept {
  const auto* b = static_cast<const unsigned char*>(p);
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | b[i];
  return v;
}
/// Reads a big-endian u32 at `p` (at least 4 bytes there).
inline std::uint32_t get_be32(const void* p) noexcept {
  return static_cast<std::uint32_t>(get_be(p, 4));
}
/// Reads a big-endian u64 at `p` (at least 8 bytes there).
inline std::uint64_t get_be64(const void* p) noexcept { return get_be(p, 8); }

/// A bounds-checked little-endian cursor over bytes: every read reports whether the bytes were
/// there, so a decoder of untrusted (possibly corrupt) data never reads past its input.
class LeReader {
 public:
  explicit LeReader(std::string_view data, std::size_t pos = 0) : data_(data), pos_(pos) {}

  /// A u32, or nullopt past the end.
  std::optional<std::uint32_t> u32() {
    if (remaining() < 4) return std::nullopt;
    auto v = get_le32(data_.data() + pos_);
    pos_ += 4;
    return v;
  }
  /// A u64, or nullopt past the end.
  std::optional<std::uint64_t> u64() {
    if (remaining() < 8) return std::nullopt;
    auto v = get_le64(data_.data() + pos_);
    pos_ += 8;
    return v;
  }
  /// `n` bytes, or nullopt past the end.
  std::optional<std::string_view> bytes(std::size_t n) {
    if (remaining() < n) return std::nullopt;
    auto v = data_.substr(pos_, n);
    pos_ += n;
    return v;
  }
  /// Bytes not yet read.
  [[nodiscard]] std::size_t remaining() const noexcept { return data_.size() - pos_; }
  /// Bytes read so far (the offset of the next read).
  [[nodiscard]] std::size_t position() const noexcept { return pos_; }

 private:
  std::string_view data_;
  std::size_t pos_ = 0;
};

}  // namespace dengine::bytes
