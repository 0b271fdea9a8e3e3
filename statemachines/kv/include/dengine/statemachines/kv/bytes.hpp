#pragma once
/// Byte-level building blocks of every encoding in the KV state machine: LEB128 varints,
/// zigzag signed ints, length-prefixed strings, big-endian fixed u64 (order-preserving), and a
/// bounds-checked reader that reports malformed input as errc::invalid_argument instead of
/// reading past the end.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "dengine/core/error.hpp"

namespace dengine::kv {

/// Appends encoded values to a string.
class ByteWriter {
 public:
  /// Appends to `out` (kept by reference).
  explicit ByteWriter(std::string& out) : out_(out) {}

  /// One raw byte.
  void u8(std::uint8_t v) { out_.push_back(static_cast<char>(v)); }
  /// LEB128: 7 bits a byte, low first; at most 10 bytes.
  void varint(std::uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7F) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  /// Zigzag then varint, so small negative numbers stay short.
  void svarint(std::int64_t v) {
    varint((static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63));
  }
  /// A bool as one byte 0/1.
  void boolean(bool v) { u8(v ? 1 : 0); }
  /// Length (varint) then the bytes.
  void bytes(std::string_view s) {
    varint(s.size());
    out_.append(s);
  }
  /// Big-endian: byte order equals numeric order.
  void fixed64_be(std::uint64_t v) {
    for (int shift = 56; shift >= 0; shift -= 8)
      out_.push_back(static_cast<char>((v >> shift) & 0xFF));
  }
  /// The bytes as they are (no length).
  void raw(std::string_view s) { out_.append(s); }

 private:
  std::string& out_;
};

/// Reads encoded values from a byte string, checking every bound. Each failure names `what`
/// (the field being read) and the offset.
class ByteReader {
 public:
  /// Reads `in` (which must outlive the reader). `context` prefixes error details.
  explicit ByteReader(std::string_view in, std::string_view context = "kv codec")
      : in_(in), context_(context) {}

  [[nodiscard]] std::size_t offset() const noexcept { return pos_; }
  [[nodiscard]] std::size_t remaining() const noexcept { return in_.size() - pos_; }
  [[nodiscard]] bool at_end() const noexcept { return pos_ == in_.size(); }

  /// An invalid_argument error naming the context, `what` and the current offset.
  [[nodiscard]] error fail(std::string_view what) const {
    return error(errc::invalid_argument, std::string(context_) + ": " + std::string(what) +
                                             " at offset " + std::to_string(pos_));
  }

  result<std::uint8_t> u8(std::string_view what) {
    if (remaining() < 1) return fail(std::string("truncated ") + std::string(what));
    return static_cast<std::uint8_t>(in_[pos_++]);
  }
  result<std::uint64_t> varint(std::string_view what) {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (remaining() < 1) return fail(std::string("truncated ") + std::string(what));
      auto byte = static_cast<std::uint8_t>(in_[pos_++]);
      // The 10th byte may carry only the top bit of a u64.
      if (shift == 63 && byte > 1)
        return fail(std::string("overlong varint in ") + std::string(what));
      v |= static_cast<std::uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) return v;
    }
    return fail(std::string("overlong varint in ") + std::string(what));
  }
  result<std::int64_t> svarint(std::string_view what) {
    DENGINE_TRY(u, varint(what));
    return static_cast<std::int64_t>((u >> 1) ^ (~(u & 1) + 1));
  }
  result<bool> boolean(std::string_view what) {
    DENGINE_TRY(b, u8(what));
    if (b > 1) return fail(std::string("bad bool in ") + std::string(what));
    return b == 1;
  }
  /// A length-prefixed byte string; the length is checked against what is left before any copy.
  result<std::string_view> bytes(std::string_view what) {
    DENGINE_TRY(n, varint(what));
    if (n > remaining()) return fail(std::string("length past the end in ") + std::string(what));
    std::string_view s = in_.substr(pos_, static_cast<std::size_t>(n));
    pos_ += static_cast<std::size_t>(n);
    return s;
  }
  result<std::uint64_t> fixed64_be(std::string_view what) {
    if (remaining() < 8) return fail(std::string("truncated ") + std::string(what));
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<std::uint8_t>(in_[pos_++]);
    return v;
  }
  /// A count of items that each take at least one byte: rejects counts larger than the input
  /// left, so a corrupt count never triggers a huge allocation.
  result<std::size_t> count(std::string_view what) {
    DENGINE_TRY(n, varint(what));
    if (n > remaining()) return fail(std::string("count past the end in ") + std::string(what));
    return static_cast<std::size_t>(n);
  }
  /// The rest of the input.
  std::string_view rest() {
    std::string_view s = in_.substr(pos_);
    pos_ = in_.size();
    return s;
  }
  /// Fails unless every byte was consumed.
  result<void> expect_end(std::string_view what) const {
    if (!at_end()) return fail(std::string("trailing bytes after ") + std::string(what));
    return success();
  }

 private:
  std::string_view in_;
  std::string_view context_;
  std::size_t pos_ = 0;
};

}  // namespace dengine::kv
