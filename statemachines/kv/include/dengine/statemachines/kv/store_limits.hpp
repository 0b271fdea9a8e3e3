#pragma once
/// What a KvStore can hold, and the user-visible key and value limits the KV layer derives from
/// it. The arithmetic lives here and nowhere else.
///
/// A backend declares the largest key and value its KvStore stores (its Backend traits:
/// max_key_bytes, max_value_bytes). The KV state machine does not store user keys and values as
/// they are (keyspace.hpp):
///
///   - every put writes a *version record* whose key is
///         'v' + esc(key) + 00 01 + ~main (8 bytes) + ~sub (8 bytes)
///     where esc() doubles every NUL byte (00 → 00 FF). So a user key of n bytes, z of them NUL,
///     is stored as a key of n + z + 19 bytes;
///   - its value is a record of a kind byte and three zigzag varints (create revision, version,
///     lease: at most 10 bytes each) followed by the user value: at most 31 bytes more;
///   - a key attached to a lease also gets an attachment record 'a' + be64(lease) + key
///     (n + 9 bytes, always shorter than its version key), leases are 'l' + be64(id) (9 bytes)
///     and the meta keys are at most 11 bytes: every other key the KV layer writes is shorter
///     than the version key of a one-byte user key (20 bytes).
///
/// Hence, for a store whose keys hold at most K bytes and values at most V bytes:
///     user key:   n + (number of NUL bytes) <= K - 19   (LMDB: K = 510 → 491 bytes)
///     user value: length <= V - 31
/// A put over these limits is refused with too_large before it is proposed (validate.hpp), so it
/// never reaches the log.

#include <algorithm>
#include <cstddef>
#include <limits>
#include <string>
#include <string_view>

#include "dengine/core/error.hpp"

namespace dengine::kv {

/// Bytes a version record's key adds to the escaped user key: 'v', the 00 01 terminator and the
/// two 8-byte revision halves.
inline constexpr std::size_t version_key_overhead = 1 + 2 + 8 + 8;
/// Most bytes a put record adds to the user value: a kind byte and three varints of <= 10 bytes.
inline constexpr std::size_t put_record_overhead = 1 + 3 * 10;
/// The longest key the KV layer writes other than version records (meta "m/compacted").
inline constexpr std::size_t longest_internal_key = 11;

/// The largest key and value a KvStore can hold (store level), with the backend's name for
/// error texts. The defaults mean "no limit" (the in-memory backend, a simulation).
struct StoreLimits {
  /// Backend name, quoted in errors ("" = unnamed); kept as a view: give it static storage.
  std::string_view backend{};
  /// Longest key the store accepts, in bytes.
  std::size_t max_key_bytes = std::numeric_limits<std::size_t>::max();
  /// Longest value the store accepts, in bytes.
  std::size_t max_value_bytes = std::numeric_limits<std::size_t>::max();

  /// True when keys of every size the KV layer itself needs fit (a one-byte user key's version
  /// record and every internal key): a store below this cannot run the KV state machine.
  [[nodiscard]] constexpr bool usable() const noexcept {
    return max_key_bytes >= std::max(version_key_overhead + 1, longest_internal_key) &&
           max_value_bytes >= put_record_overhead;
  }
  /// Longest user key without NUL bytes (each NUL byte counts twice).
  [[nodiscard]] constexpr std::size_t max_user_key_bytes() const noexcept {
    return max_key_bytes <= version_key_overhead ? 0 : max_key_bytes - version_key_overhead;
  }
  /// Longest user value.
  [[nodiscard]] constexpr std::size_t max_user_value_bytes() const noexcept {
    return max_value_bytes <= put_record_overhead ? 0 : max_value_bytes - put_record_overhead;
  }
};

/// The size `key` counts as against StoreLimits::max_user_key_bytes(): its length plus one per
/// NUL byte (escaped to two bytes in the store).
inline std::size_t escaped_key_bytes(std::string_view key) noexcept {
  return key.size() + static_cast<std::size_t>(std::count(key.begin(), key.end(), '\0'));
}

/// too_large naming the key's size and the real limit when a put of `key` = `value` cannot be
/// stored under `limits`; `value_size` is checked only when the put carries its own value.
inline result<void> check_put_fits(std::string_view key, std::size_t value_size,
                                   const StoreLimits& limits) {
  const std::string backend = limits.backend.empty()
                                  ? std::string("the backend")
                                  : "the " + std::string(limits.backend) + " backend";
  const std::size_t counted = escaped_key_bytes(key);
  if (counted > limits.max_user_key_bytes()) {
    std::string size = std::to_string(key.size()) + " bytes";
    if (counted != key.size())
      size += " (" + std::to_string(counted - key.size()) +
              " of them NUL, which count twice: " + std::to_string(counted) + ")";
    return error(errc::too_large, "kv: key of " + size + " is too large: " + backend +
                                      " stores keys of at most " +
                                      std::to_string(limits.max_user_key_bytes()) +
                                      " bytes (each NUL byte counting twice)");
  }
  if (value_size > limits.max_user_value_bytes())
    return error(errc::too_large, "kv: value of " + std::to_string(value_size) +
                                      " bytes is too large: " + backend +
                                      " stores values of at most " +
                                      std::to_string(limits.max_user_value_bytes()) + " bytes");
  return success();
}

}  // namespace dengine::kv
