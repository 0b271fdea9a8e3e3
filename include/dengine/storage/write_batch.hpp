#pragma once
/// An ordered list of key writes that a KvStore applies atomically.

#include <string>
#include <vector>

namespace dengine {

/// One write of a batch: put `key` = `value`, or erase `key`.
struct KvWrite {
  enum class Kind : unsigned char { put, erase };
  Kind kind = Kind::put;
  std::string key;
  std::string value;
};

/// Writes applied atomically and in order (a later write to the same key wins).
struct WriteBatch {
  std::vector<KvWrite> writes;

  void put(std::string key, std::string value) {
    writes.push_back({KvWrite::Kind::put, std::move(key), std::move(value)});
  }
  void erase(std::string key) { writes.push_back({KvWrite::Kind::erase, std::move(key), {}}); }
  [[nodiscard]] bool empty() const noexcept { return writes.empty(); }
  void clear() noexcept { writes.clear(); }
};

}  // namespace dengine
