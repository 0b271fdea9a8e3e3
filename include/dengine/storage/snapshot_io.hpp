#pragma once
/// Chunked snapshot streams: a state machine writes its snapshot to a SnapshotSink and restores
/// from a SnapshotSource. Off the hot path, so a virtual interface keeps users' code simple.

#include <algorithm>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "dengine/core/error.hpp"

namespace dengine {

/// Receives a snapshot in chunks, in order.
class SnapshotSink {
 public:
  virtual ~SnapshotSink() = default;
  /// Appends `chunk`; a failure aborts the snapshot.
  virtual result<void> write(std::span<const char> chunk) = 0;
};

/// Yields a snapshot in chunks, in order.
class SnapshotSource {
 public:
  virtual ~SnapshotSource() = default;
  /// Fills up to `buffer.size()` bytes; returns how many were read, 0 at the end.
  virtual result<std::size_t> read(std::span<char> buffer) = 0;
};

/// A sink that collects the snapshot into a string (tests, small state machines, the simulator).
class StringSnapshotSink final : public SnapshotSink {
 public:
  result<void> write(std::span<const char> chunk) override {
    data.append(chunk.data(), chunk.size());
    return success();
  }
  std::string data;
};

/// A source that reads a snapshot held in a string.
class StringSnapshotSource final : public SnapshotSource {
 public:
  explicit StringSnapshotSource(std::string_view data) : data_(data) {}
  result<std::size_t> read(std::span<char> buffer) override {
    std::size_t n = std::min(buffer.size(), data_.size() - offset_);
    data_.copy(buffer.data(), n, offset_);
    offset_ += n;
    return n;
  }

 private:
  std::string_view data_;
  std::size_t offset_ = 0;
};

/// Reads a whole source into a string.
inline result<std::string> read_all(SnapshotSource& source) {
  std::string out;
  char buffer[64 * 1024];
  for (;;) {
    DENGINE_TRY(n, source.read(std::span<char>(buffer, sizeof buffer)));
    if (n == 0) return out;
    out.append(buffer, n);
  }
}

}  // namespace dengine
