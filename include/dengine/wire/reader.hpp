#pragma once
/// The cursor the wire decoders read a frame's payload with: bytes::LeReader's bounds checks,
/// with failures as errc::malformed errors that name the field and its offset. A peer's bytes
/// are untrusted, so every count is checked against the bytes left before anything is allocated.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "dengine/core/error.hpp"
#include "dengine/storage/byte_codec.hpp"

namespace dengine::wire {

class Reader {
 public:
  /// Reads `data`, the payload of a `what` ("hello", "message batch"), named in errors.
  Reader(std::string_view data, std::string_view what) : in_(data), what_(what) {}

  [[nodiscard]] result<std::uint8_t> u8(std::string_view field) {
    auto b = in_.bytes(1);
    if (!b) return short_of(field, 1);
    return static_cast<std::uint8_t>((*b)[0]);
  }
  [[nodiscard]] result<std::uint16_t> u16(std::string_view field) {
    auto b = in_.bytes(2);
    if (!b) return short_of(field, 2);
    return static_cast<std::uint16_t>(bytes::get_le(b->data(), 2));
  }
  [[nodiscard]] result<std::uint32_t> u32(std::string_view field) {
    auto v = in_.u32();
    if (!v) return short_of(field, 4);
    return *v;
  }
  [[nodiscard]] result<std::uint64_t> u64(std::string_view field) {
    auto v = in_.u64();
    if (!v) return short_of(field, 8);
    return *v;
  }
  /// `n` bytes.
  [[nodiscard]] result<std::string_view> bytes(std::string_view field, std::size_t n) {
    auto b = in_.bytes(n);
    if (!b) return short_of(field, n);
    return *b;
  }
  /// A u32 length, then that many bytes.
  [[nodiscard]] result<std::string_view> sized_bytes(std::string_view field) {
    DENGINE_TRY(n, u32(field));
    auto b = in_.bytes(n);
    if (!b) return short_of(field, n);
    return *b;
  }
  /// A u32 count of elements of at least `min_element_size` bytes each. A count the bytes left
  /// cannot hold is refused here, so the caller may reserve the count's worth of elements.
  [[nodiscard]] result<std::uint32_t> count(std::string_view field, std::size_t min_element_size) {
    DENGINE_TRY(n, u32(field));
    if (n > in_.remaining() / min_element_size) {
      return fail(field, "count " + std::to_string(n) + " of at least " +
                             std::to_string(min_element_size) + " bytes each, but only " +
                             std::to_string(in_.remaining()) + " bytes follow");
    }
    return n;
  }
  /// Succeeds when every byte was read: a payload with bytes past its end is malformed.
  [[nodiscard]] result<void> finish() const {
    if (in_.remaining() != 0) {
      return error(errc::malformed, std::string(what_) + ": " + std::to_string(in_.remaining()) +
                                        " unread bytes after its end at offset " +
                                        std::to_string(in_.position()));
    }
    return success();
  }

  /// A malformed error naming `field` (read at the current offset) and `why`.
  [[nodiscard]] error fail(std::string_view field, const std::string& why) const {
    return {errc::malformed, std::string(what_) + ": " + std::string(field) + " at offset " +
                                 std::to_string(in_.position()) + ": " + why};
  }

  [[nodiscard]] std::size_t remaining() const noexcept { return in_.remaining(); }

 private:
  [[nodiscard]] error short_of(std::string_view field, std::size_t needed) const {
    return fail(field, "needs " + std::to_string(needed) + " bytes, " +
                           std::to_string(in_.remaining()) + " left");
  }

  bytes::LeReader in_;
  std::string_view what_;
};

}  // namespace dengine::wire
