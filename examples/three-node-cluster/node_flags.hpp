#pragma once
// kv-node's command line: which member it is, where its data and peers are. Parsed by hand (a
// handful of flags); every mistake is an error naming the flag and the text.

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <system_error>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"

namespace kv_node {

/// What `kv-node` was told to be.
struct NodeFlags {
  dengine::NodeId id = dengine::no_node;
  std::string data_dir;
  std::string listen;  ///< "host:port", also the address this member is known by
  /// Founding a cluster: every founding member (this one included). Joining: the current voters.
  std::map<dengine::NodeId, std::string> members;
  std::uint64_t cluster_id = 0;
  /// NodeConfig::snapshot_threshold_bytes when set (0 = keep the default).
  std::size_t snapshot_bytes = 0;
};

inline constexpr std::string_view usage =
    "usage: kv-node --id N --data-dir DIR --listen HOST:PORT --members 1=HOST:PORT,2=... "
    "--cluster-id N [--snapshot-bytes N]";

namespace detail {

inline dengine::error bad_flag(std::string_view flag, std::string_view text, std::string why) {
  return {dengine::errc::invalid_argument,
          std::string(flag) + " \"" + std::string(text) + "\": " + std::move(why)};
}

template <class Int>
dengine::result<Int> parse_number(std::string_view flag, std::string_view text) {
  Int value{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size())
    return bad_flag(flag, text, "not a non-negative integer");
  return value;
}

// "1=127.0.0.1:7001,2=127.0.0.1:7002": the addresses themselves are checked by the engine.
inline dengine::result<std::map<dengine::NodeId, std::string>> parse_members(
    std::string_view text) {
  std::map<dengine::NodeId, std::string> members;
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    const std::size_t eq = item.find('=');
    if (eq == std::string_view::npos || eq + 1 == item.size())
      return bad_flag("--members", item, "expected ID=HOST:PORT");
    DENGINE_TRY(id, parse_number<dengine::NodeId>("--members", item.substr(0, eq)));
    if (!members.emplace(id, std::string(item.substr(eq + 1))).second)
      return bad_flag("--members", item, "member " + std::to_string(id) + " is listed twice");
  }
  return members;
}

}  // namespace detail

/// Parses argv (without argv[0]); invalid_argument naming the flag on a mistake.
inline dengine::result<NodeFlags> parse_flags(int argc, char** argv) {
  NodeFlags f;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (i + 1 >= argc) return detail::bad_flag(flag, "", "needs a value");
    const std::string_view value = argv[++i];
    if (flag == "--id") {
      DENGINE_TRY(id, detail::parse_number<dengine::NodeId>(flag, value));
      f.id = id;
    } else if (flag == "--data-dir") {
      f.data_dir = value;
    } else if (flag == "--listen") {
      f.listen = value;
    } else if (flag == "--members") {
      DENGINE_TRY(members, detail::parse_members(value));
      f.members = std::move(members);
    } else if (flag == "--cluster-id") {
      DENGINE_TRY(cluster, detail::parse_number<std::uint64_t>(flag, value));
      f.cluster_id = cluster;
    } else if (flag == "--snapshot-bytes") {
      DENGINE_TRY(bytes, detail::parse_number<std::size_t>(flag, value));
      f.snapshot_bytes = bytes;
    } else {
      return detail::bad_flag(flag, value, "unknown flag; " + std::string(usage));
    }
  }
  // The engine checks the values (EngineConfig::validate); here only what it cannot tell apart
  // from a default: a flag that was never given.
  if (f.id == dengine::no_node) return detail::bad_flag("--id", "", "is required");
  if (f.data_dir.empty()) return detail::bad_flag("--data-dir", "", "is required");
  if (f.listen.empty()) return detail::bad_flag("--listen", "", "is required");
  if (f.members.empty()) return detail::bad_flag("--members", "", "is required");
  if (f.cluster_id == 0) return detail::bad_flag("--cluster-id", "", "is required (non-zero)");
  return f;
}

}  // namespace kv_node
