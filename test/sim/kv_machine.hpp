#pragma once
/// The simulation's state machine: a map of registers driven by committed entries. Each client
/// command carries the id of the client operation that proposed it, so the harness can match an
/// applied entry to the operation it completes, on any node.
///
/// Satisfies the StateMachine concept (storage/concepts.hpp); its snapshot is a plain text image.

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/storage/concepts.hpp"
#include "dengine/storage/snapshot_io.hpp"

namespace dengine::sim {

/// A client command as carried in a normal entry.
struct Command {
  enum class Kind : std::uint8_t { put = 0, cas = 1 };
  /// The client operation this command belongs to (0: the harness's own liveness probe).
  std::uint64_t op_id = 0;
  Kind kind = Kind::put;
  std::string key;
  /// put: the value; cas: the new value.
  std::string value;
  /// cas: the value the key must hold.
  std::string expected;
};

namespace detail {
inline constexpr char sep = '\x1f';  // ASCII unit separator: never in generated keys or values

inline std::vector<std::string_view> split(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= s.size(); ++i) {
    if (i == s.size() || s[i] == sep) {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  return out;
}
}  // namespace detail

/// Encodes a command as the payload of a normal entry.
[[nodiscard]] inline std::string encode(const Command& c) {
  std::string out = std::to_string(c.op_id);
  out += detail::sep;
  out += c.kind == Command::Kind::put ? "put" : "cas";
  for (const std::string* field : {&c.key, &c.value, &c.expected}) {
    out += detail::sep;
    out += *field;
  }
  return out;
}

/// Decodes what encode() wrote; nullopt for anything else (treated as a no-op by the machine).
[[nodiscard]] inline std::optional<Command> decode(std::string_view data) {
  auto f = detail::split(data);
  if (f.size() != 5) return std::nullopt;
  Command c;
  for (char ch : f[0]) {
    if (ch < '0' || ch > '9') return std::nullopt;
    c.op_id = c.op_id * 10 + static_cast<std::uint64_t>(ch - '0');
  }
  if (f[1] == "put") {
    c.kind = Command::Kind::put;
  } else if (f[1] == "cas") {
    c.kind = Command::Kind::cas;
  } else {
    return std::nullopt;
  }
  c.key = f[2];
  c.value = f[3];
  c.expected = f[4];
  return c;
}

/// What applying one entry did (one per entry, as the StateMachine concept requires).
struct ApplyResult {
  /// The client operation completed by this entry (0: none — noop, config change, probe).
  std::uint64_t op_id = 0;
  /// cas: whether it swapped; put: true.
  bool ok = true;
};

/// A map of string registers. Missing keys read as "".
class KvMachine {
 public:
  using response_type = ApplyResult;

  /// Called by apply() with each entry and what it did (a simulator's checks); empty: none.
  std::function<void(const Entry&, const ApplyResult&)> on_apply;
  /// Called by restore() with the applied index of the image it installed; empty: none.
  std::function<void(LogIndex)> on_restore;

  /// Applies committed entries in order. An entry that does not follow applied_index() is a
  /// harness bug (the invariant checker reports the order separately), reported as an error.
  result<void> apply(std::span<const Entry> batch, std::vector<ApplyResult>& responses) {
    for (const Entry& e : batch) {
      if (e.index != applied_ + 1)
        return error(errc::invalid_argument, "kv machine: entry " + std::to_string(e.index) +
                                                 " applied after " + std::to_string(applied_));
      responses.push_back(apply_one(e));
      if (on_apply) on_apply(e, responses.back());
    }
    return success();
  }

  /// Applies one entry (the harness applies entry by entry to interleave checks).
  ApplyResult apply_one(const Entry& e) {
    applied_ = e.index;
    ApplyResult r;
    if (e.type != EntryType::normal) return r;
    auto c = decode(e.data);
    if (!c) return r;
    r.op_id = c->op_id;
    std::string& cur = data_[c->key];
    if (c->kind == Command::Kind::put) {
      cur = c->value;
    } else {
      r.ok = cur == c->expected;
      if (r.ok) cur = c->value;
    }
    return r;
  }

  /// The value of `key` ("" if never written).
  [[nodiscard]] std::string get(const std::string& key) const {
    auto it = data_.find(key);
    return it == data_.end() ? std::string{} : it->second;
  }

  [[nodiscard]] LogIndex applied_index() const noexcept { return applied_; }

  /// Writes "applied\n" then "key\x1fvalue\n" lines.
  result<LogIndex> snapshot(SnapshotSink& sink) const {
    const std::string image = image_text();
    DENGINE_TRYV(sink.write(std::span<const char>(image.data(), image.size())));
    return applied_;
  }

  /// Replaces the state with an image written by snapshot().
  result<LogIndex> restore(SnapshotSource& source) {
    DENGINE_TRY(text, read_all(source));
    std::map<std::string, std::string> data;
    std::string_view rest = text;
    auto line = [&rest]() -> std::optional<std::string_view> {
      auto nl = rest.find('\n');
      if (nl == std::string_view::npos) return std::nullopt;
      auto l = rest.substr(0, nl);
      rest.remove_prefix(nl + 1);
      return l;
    };
    auto head = line();
    if (!head) return error(errc::storage_corrupt, "kv machine snapshot: missing applied index");
    LogIndex applied = 0;
    for (char ch : *head) {
      if (ch < '0' || ch > '9')
        return error(errc::storage_corrupt, "kv machine snapshot: bad applied index");
      applied = applied * 10 + static_cast<LogIndex>(ch - '0');
    }
    while (auto l = line()) {
      auto pos = l->find(detail::sep);
      if (pos == std::string_view::npos)
        return error(errc::storage_corrupt, "kv machine snapshot: bad line");
      data.emplace(std::string(l->substr(0, pos)), std::string(l->substr(pos + 1)));
    }
    if (!rest.empty()) return error(errc::storage_corrupt, "kv machine snapshot: trailing bytes");
    data_ = std::move(data);
    applied_ = applied;
    if (on_restore) on_restore(applied_);
    return applied_;
  }

  /// The snapshot image as a string.
  [[nodiscard]] std::string image_text() const {
    std::string out = std::to_string(applied_) + "\n";
    for (const auto& [k, v] : data_) {
      out += k;
      out += detail::sep;
      out += v;
      out += '\n';
    }
    return out;
  }

 private:
  std::map<std::string, std::string> data_;
  LogIndex applied_ = 0;
};

static_assert(StateMachine<KvMachine>);

}  // namespace dengine::sim
