#pragma once
/// example::Counter — a StateMachine written from scratch: one 64-bit counter. It satisfies
/// dengine::StateMachine (no base class): apply a batch, report the applied index, write and read
/// a snapshot.
///
/// Commands (normal entries) are "add <delta>", e.g. "add 5"; each responds with its log index
/// and the counter's value after it. Other entries (the leader's no-op, membership changes) and
/// commands that do not parse change nothing and respond with the value as it is — every replica
/// answers the same, so apply stays deterministic.
///
/// The counter lives in memory: after a restart it starts from 0 and the node brings it back, from
/// the latest snapshot and the committed log after it (docs/node.md, "Restart").

#include <charconv>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <dengine/core/error.hpp>
#include <dengine/core/types.hpp>
#include <dengine/storage/concepts.hpp>
#include <dengine/storage/snapshot_io.hpp>

namespace example {

/// What applying one entry answered.
struct CounterResponse {
  dengine::LogIndex index = 0;  ///< the entry's log index
  std::int64_t value = 0;       ///< the counter after it
};

/// The command that adds `delta` to the counter.
inline std::string add_command(std::int64_t delta) { return "add " + std::to_string(delta); }

/// A replicated 64-bit counter (see the file comment).
class Counter {
 public:
  using response_type = CounterResponse;

  /// Applies entries in log order, one response each.
  dengine::result<void> apply(std::span<const dengine::Entry> batch,
                              std::vector<CounterResponse>& responses) {
    for (const dengine::Entry& e : batch) {
      if (e.index != applied_ + 1)  // the node hands out each committed entry once, in order
        return dengine::error(
            dengine::errc::invalid_argument,
            "counter: entry " + std::to_string(e.index) + " after " + std::to_string(applied_));
      if (e.type == dengine::EntryType::normal) value_ += parse_add(e.data);
      applied_ = e.index;
      responses.push_back({e.index, value_});
    }
    return dengine::success();
  }

  /// The index of the last applied entry.
  [[nodiscard]] dengine::LogIndex applied_index() const noexcept { return applied_; }

  /// Writes "<applied index> <value>" and returns the applied index.
  dengine::result<dengine::LogIndex> snapshot(dengine::SnapshotSink& sink) const {
    const std::string image = std::to_string(applied_) + " " + std::to_string(value_);
    DENGINE_TRYV(sink.write(std::span<const char>(image.data(), image.size())));
    return applied_;
  }

  /// Replaces the state with a snapshot() image.
  dengine::result<dengine::LogIndex> restore(dengine::SnapshotSource& source) {
    DENGINE_TRY(image, dengine::read_all(source));
    const auto space = image.find(' ');
    dengine::LogIndex applied = 0;
    std::int64_t value = 0;
    const char* end = image.data() + image.size();
    if (space == std::string::npos ||
        std::from_chars(image.data(), image.data() + space, applied).ec != std::errc{} ||
        std::from_chars(image.data() + space + 1, end, value).ec != std::errc{})
      return dengine::error(
          dengine::errc::storage_corrupt,
          "counter snapshot: expected \"<index> <value>\", got \"" + image + "\"");
    applied_ = applied;
    value_ = value;
    return applied_;
  }

  /// The counter's value (read through Node::read, which runs on the applier thread).
  [[nodiscard]] std::int64_t value() const noexcept { return value_; }

 private:
  /// The delta of an "add <delta>" command; 0 for anything else.
  static std::int64_t parse_add(std::string_view command) {
    constexpr std::string_view prefix = "add ";
    std::int64_t delta = 0;
    if (command.substr(0, prefix.size()) != prefix) return 0;
    const char* end = command.data() + command.size();
    auto [ptr, ec] = std::from_chars(command.data() + prefix.size(), end, delta);
    return ec == std::errc{} && ptr == end ? delta : 0;
  }

  dengine::LogIndex applied_ = 0;
  std::int64_t value_ = 0;
};

static_assert(dengine::StateMachine<Counter>);

}  // namespace example
