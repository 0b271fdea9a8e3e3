#pragma once
/// etcd's key-range convention, as one predicate: a request's [key, range_end) selects one key
/// (range_end empty), every key from `key` on (range_end "\0") or a half-open interval.

#include <string_view>

namespace dengine::kv {

/// Whether `k` lies in [key, range_end) per etcd's convention.
inline bool in_key_range(std::string_view k, std::string_view key, std::string_view range_end) {
  if (range_end.empty()) return k == key;
  if (range_end == std::string_view("\0", 1)) return k >= key;
  return k >= key && k < range_end;
}

}  // namespace dengine::kv
