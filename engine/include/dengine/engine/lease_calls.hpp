#pragma once
/// The lease requests a follower's KvReplica sends the leader as leader calls
/// (node::Node::call_leader; docs/cluster.md, forwarding): what only the leader's lessor can
/// answer and needs no log entry — a keep-alive, and the seconds a lease has left (etcd's
/// LeaseTimeToLive on a follower). Their bytes, both ways:
///
///   request: kind (1 byte: 1 keep-alive, 2 time left), lease id (8, little-endian)
///   answer:  kind (1), errc (1 byte; 0 = success), TTL in seconds (8: the full TTL for a
///            keep-alive, the time left — -1 when expired or unknown — for time left), the
///            answering node (8), the term its lessor was promoted in (8), then the error's
///            text (the rest; empty on success)
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

/// What a lease call asks.
enum class Kind : std::uint8_t { keep_alive = 1, time_left = 2 };
inline constexpr std::size_t request_size = 1 + 8;
inline constexpr std::size_t answer_fixed_size = 1 + 1 + 8 + 8 + 8;

struct Request {
  Kind kind = Kind::keep_alive;
  kv::LeaseId lease = kv::no_lease;
};

[[nodiscard]] inline std::string encode_request(Request r) {
  std::string out;
  out.push_back(static_cast<char>(r.kind));
  bytes::put_le64(out, static_cast<std::uint64_t>(r.lease));
  return out;
}

/// A lease call's request; invalid_argument for bytes that are not one.
[[nodiscard]] inline result<Request> decode_request(std::string_view request) {
  const auto kind = request.empty() ? 0 : static_cast<std::uint8_t>(request.front());
  if (request.size() != request_size || (kind != static_cast<std::uint8_t>(Kind::keep_alive) &&
                                         kind != static_cast<std::uint8_t>(Kind::time_left)))
    return error(errc::invalid_argument, "lease call: not a lease request (" +
                                             std::to_string(request.size()) + " bytes, kind " +
                                             std::to_string(kind) + ")");
  return Request{static_cast<Kind>(kind),
                 static_cast<kv::LeaseId>(bytes::get_le64(request.data() + 1))};
}

[[nodiscard]] inline std::string encode_answer(Kind kind, const result<KeepAliveAnswer>& r) {
  std::string out;
  out.push_back(static_cast<char>(kind));
  out.push_back(static_cast<char>(r ? 0 : r.error().code.value()));
  const KeepAliveAnswer a = r ? r.value() : KeepAliveAnswer{};
  bytes::put_le64(out, static_cast<std::uint64_t>(a.ttl));
  bytes::put_le64(out, a.leader);
  bytes::put_le64(out, a.lessor_term);
  if (!r) out += r.error().detail;
  return out;
}

/// The answer to a `kind` request; a malformed answer is errc::malformed (a peer's bug, not the
/// lease's).
[[nodiscard]] inline result<KeepAliveAnswer> decode_answer(Kind kind, std::string_view answer) {
  if (answer.size() < answer_fixed_size ||
      static_cast<std::uint8_t>(answer.front()) != static_cast<std::uint8_t>(kind))
    return error(errc::malformed, "lease call: an answer of " + std::to_string(answer.size()) +
                                      " bytes is not one to a kind " +
                                      std::to_string(static_cast<int>(kind)) + " request");
  const auto code = static_cast<std::uint8_t>(answer[1]);
  if (code != 0) {
    if (code > static_cast<std::uint8_t>(errc::malformed))
      return error(errc::malformed,
                   "lease call: an answer names unknown error " + std::to_string(code));
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
