#pragma once
/// The integration tests' state machine: named 64-bit counters. Deterministic; its snapshot is a
/// text image. Commands (normal entries): "add <key> <delta>" and "set <key> <value>"; each
/// responds with the entry's index and the key's value afterwards. Other entries (noop, config
/// change, unparsable commands) respond with value 0 and change nothing.

#include <charconv>
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/storage/concepts.hpp"
#include "dengine/storage/snapshot_io.hpp"

namespace dengine::test {

/// What applying one entry answered.
struct CounterResponse {
  LogIndex index = 0;
  std::int64_t value = 0;
  friend bool operator==(const CounterResponse&, const CounterResponse&) = default;
};

/// "add <key> <delta>".
inline std::string add_cmd(std::string_view key, std::int64_t delta) {
  return "add " + std::string(key) + " " + std::to_string(delta);
}
/// "set <key> <value>".
inline std::string set_cmd(std::string_view key, std::int64_t value) {
  return "set " + std::string(key) + " " + std::to_string(value);
}

class CounterMachine {
 public:
  using response_type = CounterResponse;

  result<void> apply(std::span<const Entry> batch, std::vector<CounterResponse>& responses) {
    if (before_apply) before_apply();
    ++apply_calls_;
    for (const Entry& e : batch) {
      if (e.index != applied_ + 1)
        return error(errc::invalid_argument, "counter machine: entry " + std::to_string(e.index) +
                                                 " after " + std::to_string(applied_));
      applied_ = e.index;
      responses.push_back({e.index, e.type == EntryType::normal ? execute(e.data) : 0});
    }
    return success();
  }

  [[nodiscard]] LogIndex applied_index() const noexcept { return applied_; }

  result<LogIndex> snapshot(SnapshotSink& sink) const {
    std::string image = std::to_string(applied_) + "\n";
    for (const auto& [k, v] : values_) image += k + " " + std::to_string(v) + "\n";
    DENGINE_TRYV(sink.write(std::span<const char>(image.data(), image.size())));
    return applied_;
  }

  result<LogIndex> restore(SnapshotSource& source) {
    DENGINE_TRY(text, read_all(source));
    std::map<std::string, std::int64_t> values;
    std::string_view rest = text;
    auto line = [&]() {
      auto nl = rest.find('\n');
      auto l = rest.substr(0, nl);
      rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
      return l;
    };
    LogIndex applied = 0;
    auto head = line();
    if (std::from_chars(head.data(), head.data() + head.size(), applied).ec != std::errc{})
      return error(errc::storage_corrupt, "counter machine snapshot: bad applied index");
    while (!rest.empty()) {
      auto l = line();
      auto sp = l.find(' ');
      std::int64_t v = 0;
      if (sp == std::string_view::npos ||
          std::from_chars(l.data() + sp + 1, l.data() + l.size(), v).ec != std::errc{})
        return error(errc::storage_corrupt, "counter machine snapshot: bad line");
      values.emplace(std::string(l.substr(0, sp)), v);
    }
    values_ = std::move(values);
    applied_ = applied;
    ++restores_;
    return applied_;
  }

  /// The value of `key` (0 if never written).
  [[nodiscard]] std::int64_t get(const std::string& key) const {
    auto it = values_.find(key);
    return it == values_.end() ? 0 : it->second;
  }
  [[nodiscard]] const std::map<std::string, std::int64_t>& values() const noexcept {
    return values_;
  }
  /// Number of apply() calls (batching shows as fewer calls than entries).
  [[nodiscard]] std::uint64_t apply_calls() const noexcept { return apply_calls_; }
  /// Called at the start of every apply() (tests use it to hold the applier).
  std::function<void()> before_apply;

  /// Number of restore() calls.
  [[nodiscard]] std::uint64_t restores() const noexcept { return restores_; }

 private:
  std::int64_t execute(std::string_view cmd) {
    auto sp1 = cmd.find(' ');
    auto sp2 = cmd.find(' ', sp1 == std::string_view::npos ? cmd.size() : sp1 + 1);
    if (sp1 == std::string_view::npos || sp2 == std::string_view::npos) return 0;
    const std::string_view op = cmd.substr(0, sp1);
    const std::string key(cmd.substr(sp1 + 1, sp2 - sp1 - 1));
    std::int64_t arg = 0;
    if (std::from_chars(cmd.data() + sp2 + 1, cmd.data() + cmd.size(), arg).ec != std::errc{})
      return 0;
    if (op == "add") return values_[key] += arg;
    if (op == "set") return values_[key] = arg;
    return 0;
  }

  std::map<std::string, std::int64_t> values_;
  LogIndex applied_ = 0;
  std::uint64_t apply_calls_ = 0;
  std::uint64_t restores_ = 0;
};

static_assert(StateMachine<CounterMachine>);

}  // namespace dengine::test
