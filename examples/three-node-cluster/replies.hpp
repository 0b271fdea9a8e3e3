#pragma once
// The one-line answers kv-node prints: errors, status, membership. A test or a person reads them,
// so each is `word key=value ...` with the free text, if any, last.

#include <string>
#include <string_view>
#include <vector>

#include <fmt/core.h>
#include <fmt/format.h>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/node/status.hpp"
#include "dengine/raft/ready.hpp"

namespace kv_node {

/// The name of a dengine error code as it is spelled in dengine::errc (what scripts match on).
inline std::string_view errc_name(dengine::errc e) {
  using dengine::errc;
  switch (e) {
    case errc::ok: return "ok";
    case errc::not_leader: return "not_leader";
    case errc::timeout: return "timeout";
    case errc::stopped: return "stopped";
    case errc::compacted: return "compacted";
    case errc::storage_corrupt: return "storage_corrupt";
    case errc::invalid_argument: return "invalid_argument";
    case errc::too_large: return "too_large";
    case errc::too_busy: return "too_busy";
    case errc::unavailable: return "unavailable";
    case errc::proposal_dropped: return "proposal_dropped";
    case errc::config_change_pending: return "config_change_pending";
    case errc::io_error: return "io_error";
    case errc::no_space: return "no_space";
    case errc::not_found: return "not_found";
    case errc::incompatible_version: return "incompatible_version";
    case errc::future_revision: return "future_revision";
    case errc::outcome_unknown: return "outcome_unknown";
    case errc::malformed: return "malformed";
  }
  return "unknown";
}

/// `err ERRC [leader=N] MESSAGE`: the leader hint only on not_leader (0 = none known).
inline std::string error_line(const dengine::error& e) {
  const std::string name = e.code.category() == dengine::dengine_category()
                               ? std::string(errc_name(static_cast<dengine::errc>(e.code.value())))
                               : fmt::format("{}:{}", e.code.category().name(), e.code.value());
  if (e == dengine::errc::not_leader)
    return fmt::format("err {} leader={} {}", name, e.leader_hint, e.message());
  return fmt::format("err {} {}", name, e.message());
}

/// `status id=N role=R leader=N term=N commit=N applied=N` (leader=0: none known).
inline std::string status_line(const dengine::node::NodeStatus& s) {
  return fmt::format("status id={} role={} leader={} term={} commit={} applied={}", s.id,
                     dengine::raft::to_string(s.role), s.leader, s.term, s.commit, s.applied);
}

/// `members voters=1,2,3 learners=4 addresses=1@127.0.0.1:7001,...` (a list may be empty).
inline std::string members_line(const dengine::Membership& m) {
  std::vector<std::string> addresses;
  for (const auto& [id, address] : m.addresses)
    addresses.push_back(fmt::format("{}@{}", id, address));
  return fmt::format("members voters={} learners={} addresses={}", fmt::join(m.voters, ","),
                     fmt::join(m.learners, ","), fmt::join(addresses, ","));
}

}  // namespace kv_node
