#pragma once
/// The precondition of StorageEngine::append (concepts.hpp), checked the same way by every
/// backend: a non-empty batch of consecutive indexes whose first index lies in
/// [first_index(), last_index() + 1]. A batch that breaks it is invalid_argument and must leave
/// the log unchanged, so a backend calls this before it touches anything.

#include <cstddef>
#include <span>
#include <string>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"

namespace dengine::storage {

/// Checks `batch` against a log holding [first, last] (last = first - 1 when empty). `where()`
/// names the engine in the error ("lmdb engine /data/raft"); it is called only on failure, so
/// the success path builds no string.
template <class Where>
result<void> check_append(std::span<const Entry> batch, LogIndex first, LogIndex last,
                          Where&& where) {
  if (batch.empty())
    return error(errc::invalid_argument, std::string(where()) + ": append of an empty batch");
  const LogIndex from = batch.front().index;
  if (from < first || from > last + 1)
    return error(errc::invalid_argument,
                 std::string(where()) + ": append at index " + std::to_string(from) + " outside [" +
                     std::to_string(first) + ", " + std::to_string(last + 1) +
                     "] (first index, last index + 1)");
  for (std::size_t k = 1; k < batch.size(); ++k) {
    if (batch[k].index != from + k)
      return error(errc::invalid_argument,
                   std::string(where()) + ": append batch not contiguous: entry " +
                       std::to_string(k) + " has index " + std::to_string(batch[k].index) +
                       ", expected " + std::to_string(from + k));
  }
  return success();
}

}  // namespace dengine::storage
