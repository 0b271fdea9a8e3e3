#pragma once
/// The lease requests a follower's KvReplica sends the leader as leader calls
/// (node::Node::call_leader; docs/cluster.md, forwarding): today the keep-alive, which only the
/// leader's lessor can serve and which needs no log entry. Their bytes, both ways:
///
///   request: kind (1 byte, 1 = keep-alive), lease id (8, little-endian)
///   answer:  kind (1), errc (1 byte; 0 = success), TTL in seconds (8), the answering node (8),
///            the term its lessor was promoted in (8), then the error's text (the rest; empty
///            on success)
///
/// Both ends are the same build of the engine, so there is no version field: a cluster that
/// mixes builds speaks one wire version (docs/wire.md), and a kind this build does not know is
/// answered with invalid_argument.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/statemachines/kv/types.hpp"
#include "dengine/storage/byte_codec.hpp"

namespace dengine::engine {

/// A keep-alive's answer: the lease's TTL in seconds, and which lessor gave it.
struct KeepAliveAnswer {
  std::int64_t ttl = 0;
  /// The node whose lessor refreshed the lease (the leader).
  NodeId leader = no_node;
  /// The term in which that node's lessor became primary.
  Term lessor_term = 0;
};

namespace lease_calls {

inline constexpr std::uint8_t kind_keep_alive = 1;
inline constexpr std::size_t request_size = 1 + 8;
inline constexpr std::size_t answer_fixed_size = 1 + 1 + 8 + 8 + 8;

[[nodiscard]] inline std::string encode_keep_alive(kv::LeaseId id) {
  std::string out;
  out.push_back(static_cast<char>(kind_keep_alive));
  bytes::put_le64(out, static_cast<std::uint64_t>(id));
  return out;
}

/// The lease id of a keep-alive request; invalid_argument for anything else.
[[nodiscard]] inline result<kv::LeaseId> decode_keep_alive(std::string_view request) {
  if (request.size() != request_size ||
      static_cast<std::uint8_t>(request.front()) != kind_keep_alive)
    return error(
        errc::invalid_argument,
        "lease call: not a keep-alive request (" + std::to_string(request.size()) + " bytes" +
            (request.empty()
                 ? std::string()
                 : ", kind " + std::to_string(static_cast<std::uint8_t>(request.front()))) +
            ")");
  return static_cast<kv::LeaseId>(bytes::get_le64(request.data() + 1));
}

[[nodiscard]] inline std::string encode_answer(const result<KeepAliveAnswer>& r) {
  std::string out;
  out.push_back(static_cast<char>(kind_keep_alive));
  out.push_back(static_cast<char>(r ? 0 : r.error().code.value()));
  const KeepAliveAnswer a = r ? r.value() : KeepAliveAnswer{};
  bytes::put_le64(out, static_cast<std::uint64_t>(a.ttl));
  bytes::put_le64(out, a.leader);
  bytes::put_le64(out, a.lessor_term);
  if (!r) out += r.error().detail;
  return out;
}

/// The answer's result; a malformed answer is errc::malformed (a peer's bug, not the lease's).
[[nodiscard]] inline result<KeepAliveAnswer> decode_answer(std::string_view answer) {
  if (answer.size() < answer_fixed_size ||
      static_cast<std::uint8_t>(answer.front()) != kind_keep_alive)
    return error(errc::malformed, "lease call: a keep-alive answer of " +
                                      std::to_string(answer.size()) + " bytes is not one");
  const auto code = static_cast<std::uint8_t>(answer[1]);
  if (code != 0) {
    if (code > static_cast<std::uint8_t>(errc::malformed))
      return error(errc::malformed,
                   "lease call: a keep-alive answer names unknown error " + std::to_string(code));
    return error(static_cast<errc>(code), std::string(answer.substr(answer_fixed_size)));
  }
  KeepAliveAnswer a;
  a.ttl = static_cast<std::int64_t>(bytes::get_le64(answer.data() + 2));
  a.leader = bytes::get_le64(answer.data() + 10);
  a.lessor_term = bytes::get_le64(answer.data() + 18);
  return a;
}

}  // namespace lease_calls
}  // namespace dengine::engine
