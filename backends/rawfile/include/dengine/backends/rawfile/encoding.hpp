#pragma once
/// Little-endian fixed-width integers in byte strings: the only encoding the raw-file formats use,
/// so a data directory moves between machines of either byte order.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dengine::rawfile::encoding {

/// Appends `v` as `n` little-endian bytes.
inline void put_le(std::string& out, std::uint64_t v, int n) {
  for (int i = 0; i < n; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFFU));
}
/// Appends a little-endian u32.
inline void put_u32(std::string& out, std::uint32_t v) { put_le(out, v, 4); }
/// Appends a little-endian u64.
inline void put_u64(std::string& out, std::uint64_t v) { put_le(out, v, 8); }

/// Reads `n` little-endian bytes at `p`.
inline std::uint64_t get_le(const unsigned char* p, int n) noexcept {
  std::uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
/// Reads a little-endian u32 at `p`.
inline std::uint32_t get_u32(const void* p) noexcept {
  return static_cast<std::uint32_t>(get_le(static_cast<const unsigned char*>(p), 4));
}
/// Reads a little-endian u64 at `p`.
inline std::uint64_t get_u64(const void* p) noexcept {
  return get_le(static_cast<const unsigned char*>(p), 8);
}
/// Overwrites 4 bytes at `pos` of `out` with the little-endian `v`.
inline void set_u32(std::string& out, std::size_t pos, std::uint32_t v) {
  for (int i = 0; i < 4; ++i)
    out[pos + static_cast<std::size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xFFU);
}

/// A bounds-checked cursor over bytes: every read reports whether the bytes were there, so a
/// decoder of untrusted (possibly corrupt) data can never read past its input.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}

  /// A u32, or nullopt past the end.
  std::optional<std::uint32_t> u32() {
    if (remaining() < 4) return std::nullopt;
    auto v = get_u32(data_.data() + pos_);
    pos_ += 4;
    return v;
  }
  /// A u64, or nullopt past the end.
  std::optional<std::uint64_t> u64() {
    if (remaining() < 8) return std::nullopt;
    auto v = get_u64(data_.data() + pos_);
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

}  // namespace dengine::rawfile::encoding
