#pragma once
/// The hello: the first frame each side sends on a peer connection, saying who it is, whom it
/// means to reach, which wire versions it speaks, and where it can be reached. Its layout is the
/// same in every wire version (FrameLimits reads hello frames at any version), so two nodes that
/// cannot talk can still say why:
///
///   offset  size  field
///        0     8  cluster id, u64 LE
///        8     8  sender member id
///       16     8  receiver member id (whom the sender means to reach)
///       24     1  lowest wire version the sender speaks
///       25     1  highest wire version the sender speaks
///       26     2  length of the sender's address, u16 LE, at most storage::max_address_size
///       28     n  the sender's advertised address ("host:port"; empty: it gives none)
///
/// The address lets a node answer a sender its configuration does not list yet — a member added
/// while it was cut off, now the leader (docs/network.md, Following the configuration).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/storage/byte_codec.hpp"
#include "dengine/storage/member_addresses_codec.hpp"
#include "dengine/wire/frame.hpp"
#include "dengine/wire/reader.hpp"

namespace dengine::wire {

/// A hello as sent; decode_hello guarantees versions.min <= versions.max and
/// address.size() <= storage::max_address_size.
struct Hello {
  std::uint64_t cluster_id = 0;
  NodeId from = no_node;
  NodeId to = no_node;
  VersionRange versions = supported_versions;
  /// Where the sender's peers reach it, as its configuration records it; empty: not given.
  std::string address{};

  friend bool operator==(const Hello&, const Hello&) = default;
};

/// The size of a hello without an address; each address byte adds one.
inline constexpr std::size_t hello_size = 8 + 8 + 8 + 1 + 1 + 2;

/// The payload of a hello frame (encode_frame(FrameKind::hello, encode_hello(h))). `h.address`
/// must be at most storage::max_address_size bytes (the transport checks its own at open()).
[[nodiscard]] inline std::string encode_hello(const Hello& h) {
  std::string out;
  out.reserve(hello_size + h.address.size());
  bytes::put_le64(out, h.cluster_id);
  bytes::put_le64(out, h.from);
  bytes::put_le64(out, h.to);
  out.push_back(static_cast<char>(h.versions.min));
  out.push_back(static_cast<char>(h.versions.max));
  bytes::put_le(out, h.address.size(), 2);
  out += h.address;
  return out;
}

/// The hello in a hello frame's payload; errc::malformed, naming the field, if it is not exactly
/// one hello.
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
  DENGINE_TRY(length, r.u16("address length"));
  if (length > storage::max_address_size) {
    return r.fail("address length", std::to_string(length) + " bytes, over the limit of " +
                                        std::to_string(storage::max_address_size));
  }
  DENGINE_TRY(address, r.bytes("address", length));
  DENGINE_TRYV(r.finish());
  return Hello{cluster, from, to, VersionRange{min, max}, std::string(address)};
}

/// How the sender of a hello stands with the node that checks it.
enum class Standing : std::uint8_t {
  member,   ///< in the node's configuration now (voter or learner)
  removed,  ///< removed from it since the node's transport started: refused
  unknown,  ///< neither (e.g. added while the node was cut off): accepted if it gives an address
};

/// What check_hello checks a hello against: this node, and how it sees the sender.
struct HelloCheck {
  std::uint64_t cluster_id = 0;
  NodeId self = no_node;
  /// How the sender stands with this node; null: every sender is a member.
  std::function<Standing(NodeId)> standing{};
  /// Success when an unknown sender's (non-empty) address is one this node can reach, else why
  /// not (the transport parses it); null: any non-empty address will do.
  std::function<result<void>(std::string_view)> usable_address{};
  VersionRange ours = supported_versions;
};

/// An accepted hello: the version to speak, and how the sender stands (member or unknown).
struct Admission {
  std::uint8_t version = wire_version;
  Standing standing = Standing::member;
};

/// Whether this node talks to the peer that sent `h`: the wire version to speak (the highest
/// both sides know) and the sender's standing, or the refusal to log before closing the
/// connection:
///   invalid_argument      another cluster, a hello meant for another member, or our own id
///   not_found             the sender was removed from the configuration, or is not in it and
///                         gives no usable address to answer it at
///   incompatible_version  no common version; the detail gives both ranges
[[nodiscard]] inline result<Admission> check_hello(const Hello& h, const HelloCheck& c) {
  const std::string peer = "hello from member " + std::to_string(h.from);
  if (h.cluster_id != c.cluster_id) {
    return error(errc::invalid_argument, peer + " of cluster " + std::to_string(h.cluster_id) +
                                             ": this node (member " + std::to_string(c.self) +
                                             ") is in cluster " + std::to_string(c.cluster_id));
  }
  if (h.to != c.self) {
    return error(errc::invalid_argument, peer + " is meant for member " + std::to_string(h.to) +
                                             ", this node is member " + std::to_string(c.self) +
                                             " (the peer has a wrong address for it)");
  }
  if (h.from == c.self) {
    return error(errc::invalid_argument, peer + ": that is this node's own id");
  }
  const Standing standing = c.standing ? c.standing(h.from) : Standing::member;
  if (standing == Standing::removed) {
    return error(errc::not_found, peer + ": removed from the configuration of cluster " +
                                      std::to_string(c.cluster_id) + " (this node is member " +
                                      std::to_string(c.self) + ")");
  }
  if (standing == Standing::unknown) {
    const std::string stranger = peer + ": not a member of cluster " +
                                 std::to_string(c.cluster_id) + " as this node (member " +
                                 std::to_string(c.self) + ") knows it, ";
    if (h.address.empty())
      return error(errc::not_found, stranger + "and its hello gives no address to answer it at");
    if (c.usable_address) {
      if (auto usable = c.usable_address(h.address); !usable)
        return error(errc::not_found,
                     stranger + "and the address it gives is not usable: " + usable.error().detail);
    }
  }
  const std::uint8_t low = std::max(h.versions.min, c.ours.min);
  const std::uint8_t high = std::min(h.versions.max, c.ours.max);
  if (low > high) {
    return error(errc::incompatible_version, peer + ": no common wire version: the peer speaks " +
                                                 h.versions.to_string() + ", this node speaks " +
                                                 c.ours.to_string());
  }
  return Admission{high, standing};
}

}  // namespace dengine::wire
