#pragma once
/// The hello: the first frame each side sends on a peer connection, saying who it is, whom it
/// means to reach, and which wire versions it speaks. Its layout is the same in every wire
/// version (FrameLimits reads hello frames at any version), so two nodes that cannot talk can
/// still say why:
///
///   offset  size  field
///        0     8  cluster id, u64 LE
///        8     8  sender member id
///       16     8  receiver member id (whom the sender means to reach)
///       24     1  lowest wire version the sender speaks
///       25     1  highest wire version the sender speaks

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/storage/byte_codec.hpp"
#include "dengine/wire/frame.hpp"
#include "dengine/wire/reader.hpp"

namespace dengine::wire {

/// A hello as sent; decode_hello guarantees versions.min <= versions.max.
struct Hello {
  std::uint64_t cluster_id = 0;
  NodeId from = no_node;
  NodeId to = no_node;
  VersionRange versions = supported_versions;

  friend bool operator==(const Hello&, const Hello&) = default;
};

inline constexpr std::size_t hello_size = 8 + 8 + 8 + 1 + 1;

/// The payload of a hello frame (encode_frame(FrameKind::hello, encode_hello(h))).
[[nodiscard]] inline std::string encode_hello(const Hello& h) {
  std::string out;
  out.reserve(hello_size);
  bytes::put_le64(out, h.cluster_id);
  bytes::put_le64(out, h.from);
  bytes::put_le64(out, h.to);
  out.push_back(static_cast<char>(h.versions.min));
  out.push_back(static_cast<char>(h.versions.max));
  return out;
}

/// The hello in a hello frame's payload; errc::malformed if it is not exactly one hello.
[[nodiscard]] inline result<Hello> decode_hello(std::string_view payload) {
  Reader r(payload, "hello");
  DENGINE_TRY(cluster, r.u64("cluster id"));
  DENGINE_TRY(from, r.u64("sender id"));
  DENGINE_TRY(to, r.u64("receiver id"));
  DENGINE_TRY(min, r.u8("lowest version"));
  DENGINE_TRY(max, r.u8("highest version"));
  if (min > max) {
    return r.fail("versions", "lowest version " + std::to_string(min) + " above highest " +
                                  std::to_string(max));
  }
  DENGINE_TRYV(r.finish());
  return Hello{cluster, from, to, VersionRange{min, max}};
}

/// Whether this node (member `self` of cluster `cluster_id`, speaking `ours`) talks to the peer
/// that sent `h`: the wire version to speak (the highest both sides know), or the refusal to log
/// and answer with before closing the connection:
///   invalid_argument      another cluster, a hello meant for another member, or our own id
///   not_found             the sender is not in `members` (voters and learners)
///   incompatible_version  no common version; the detail gives both ranges
[[nodiscard]] inline result<std::uint8_t> check_hello(const Hello& h, std::uint64_t cluster_id,
                                                      NodeId self, const Membership& members,
                                                      VersionRange ours = supported_versions) {
  const std::string peer = "hello from member " + std::to_string(h.from);
  if (h.cluster_id != cluster_id) {
    return error(errc::invalid_argument, peer + " of cluster " + std::to_string(h.cluster_id) +
                                             ": this node (member " + std::to_string(self) +
                                             ") is in cluster " + std::to_string(cluster_id));
  }
  if (h.to != self) {
    return error(errc::invalid_argument, peer + " is meant for member " + std::to_string(h.to) +
                                             ", this node is member " + std::to_string(self) +
                                             " (the peer has a wrong address for it)");
  }
  if (h.from == self) {
    return error(errc::invalid_argument, peer + ": that is this node's own id");
  }
  if (!members.contains(h.from)) {
    std::string list;
    for (NodeId id : members.all()) list += (list.empty() ? "" : ", ") + std::to_string(id);
    return error(errc::not_found, peer + ": not a member of cluster " + std::to_string(cluster_id) +
                                      " (members: " + list + ")");
  }
  const std::uint8_t low = std::max(h.versions.min, ours.min);
  const std::uint8_t high = std::min(h.versions.max, ours.max);
  if (low > high) {
    return error(errc::incompatible_version, peer + ": no common wire version: the peer speaks " +
                                                 h.versions.to_string() + ", this node speaks " +
                                                 ours.to_string());
  }
  return high;
}

}  // namespace dengine::wire
