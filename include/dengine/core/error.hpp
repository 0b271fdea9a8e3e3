#pragma once
/// Errors: a `dengine` std::error_category, and `result<T>` (Boost.Outcome) carrying an `error`
/// that adds what a caller needs to act on (the leader to retry at, a human detail).

#include <boost/outcome/std_result.hpp>

#include <optional>
#include <string>
#include <system_error>
#include <utility>

#include "dengine/core/types.hpp"

namespace dengine {

/// Every failure dengine reports. Values are stable (they may be logged or sent on the wire).
enum class errc : int {
  ok = 0,
  not_leader = 1,        ///< this node cannot serve the request; `error::leader_hint` says who can
  timeout = 2,           ///< a read or wait did not complete in time (a write: outcome_unknown)
  stopped = 3,           ///< the node is stopping or stopped
  compacted = 4,         ///< the requested index or revision has been compacted away
  storage_corrupt = 5,   ///< persisted data failed validation (checksum, framing, version)
  invalid_argument = 6,  ///< the request or config is malformed
  too_large = 7,         ///< a request or entry exceeds a configured size limit
  too_busy = 8,          ///< a bounded queue is full; retry later
  unavailable = 9,       ///< the index or entry is not (yet) available
  proposal_dropped =
      10,  ///< the proposal was not appended (e.g. leadership lost, transfer running)
  config_change_pending = 11,  ///< another membership change is not yet committed
  io_error = 12,               ///< an operating-system I/O call failed
  no_space = 13,               ///< the disk or map is full
  not_found = 14,              ///< the key, lease or member does not exist
  incompatible_version = 15,   ///< a data dir or message written by an incompatible version
  future_revision = 16,        ///< a revision beyond the current one was requested
  /// A write may have entered the log, and whether it took effect is unknown: it may be applied
  /// (now or after a restart) or not at all. `error::cause` says why no answer came (timeout,
  /// stopped, no_space, io_error, ...); the detail names the entry and that cause.
  outcome_unknown = 17,
  /// Bytes from a peer do not follow the wire format (docs/wire.md): bad magic, checksum,
  /// layout or value. The connection they came on is closed; nothing was applied from them.
  malformed = 18,
};

/// The std::error_category of `errc`.
class error_category final : public std::error_category {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "dengine"; }
  [[nodiscard]] std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::ok: return "ok";
      case errc::not_leader: return "not the leader";
      case errc::timeout: return "timed out";
      case errc::stopped: return "stopped";
      case errc::compacted: return "compacted";
      case errc::storage_corrupt: return "storage corrupt";
      case errc::invalid_argument: return "invalid argument";
      case errc::too_large: return "too large";
      case errc::too_busy: return "too busy";
      case errc::unavailable: return "unavailable";
      case errc::proposal_dropped: return "proposal dropped";
      case errc::config_change_pending: return "a membership change is already pending";
      case errc::io_error: return "I/O error";
      case errc::no_space: return "no space left";
      case errc::not_found: return "not found";
      case errc::incompatible_version: return "incompatible version";
      case errc::future_revision: return "future revision";
      case errc::outcome_unknown: return "outcome unknown";
      case errc::malformed: return "malformed peer input";
    }
    return "unknown dengine error";
  }
};

inline const std::error_category& dengine_category() noexcept {
  static const error_category category;
  return category;
}

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), dengine_category()};
}

}  // namespace dengine

template <>
struct std::is_error_code_enum<dengine::errc> : std::true_type {};

namespace dengine {

/// An error as the public API returns it: a code, plus the leader to retry at (for not_leader),
/// a human-readable detail naming what and where (file, offset, field, limit), and the
/// underlying cause when the code is a consequence of another failure (outcome_unknown, or
/// stopped after a fatal storage error).
struct error {
  std::error_code code;
  NodeId leader_hint = no_node;
  /// not_leader from a node whose configuration holds the leader's peer address: that address
  /// (empty otherwise, and for in-process clusters, whose members have none).
  std::string leader_address;
  std::string detail;
  /// The code of the failure behind this one (e.g. no_space behind an outcome_unknown); empty
  /// when the code is the whole story. Compare with `e.cause == dengine::errc::no_space`.
  std::error_code cause;

  error() = default;
  // Implicit on purpose (hence the NOLINTs): `return errc::not_found;` or `return ec;` in a
  // function returning result<T> reads as the plain error return it is.
  error(errc e) : code(make_error_code(e)) {}  // NOLINT(google-explicit-constructor)
  error(std::error_code c) : code(c) {}        // NOLINT(google-explicit-constructor)
  error(errc e, std::string d) : code(make_error_code(e)), detail(std::move(d)) {}
  error(std::error_code c, std::string d) : code(c), detail(std::move(d)) {}

  /// A not_leader error that names the leader (no_node when unknown).
  static error not_leader(NodeId leader) {
    error e(errc::not_leader);
    e.leader_hint = leader;
    return e;
  }

  /// An outcome_unknown error for a write whose entry may be in the log: `what` says what
  /// became of the entry ("entry 12 was appended, then the node stopped"), `why` is the failure
  /// that kept the answer from the caller, kept whole: its code becomes `cause` (its own cause
  /// when it has one) and its message ends the detail. The leader hint is carried over.
  static error outcome_unknown(std::string what, const error& why) {
    error e(errc::outcome_unknown, std::move(what) + ": " + why.message());
    e.cause = why.cause ? why.cause : why.code;
    e.leader_hint = why.leader_hint;
    e.leader_address = why.leader_address;
    return e;
  }

  /// "message: detail", for logs and exceptions.
  [[nodiscard]] std::string message() const {
    return detail.empty() ? code.message() : code.message() + ": " + detail;
  }

  friend bool operator==(const error& a, errc b) { return a.code == make_error_code(b); }
};

/// Lets Boost.Outcome treat `error` like an error code (and throw system_error on misuse).
inline std::error_code make_error_code(const error& e) noexcept { return e.code; }
/// Called by Boost.Outcome when `.value()` is used on a failed result: throws with the detail.
[[noreturn]] inline void outcome_throw_as_system_error_with_payload(const error& e) {
  throw std::system_error(e.code, e.detail);
}

/// The result of every fallible public call. No exceptions cross the public API.
/// Boost.Outcome's std_result (std::error_code based), not its `result` (Boost.System based):
/// the two behave the same for `error`, whose codes are std::error_codes, and std_result.hpp
/// costs every translation unit ~3 s less to compile (it does not include Boost.System and
/// Boost.Exception; measured in docs/building.md, "Compile cost").
template <class T>
using result = boost::outcome_v2::std_result<T, error>;

using boost::outcome_v2::success;

}  // namespace dengine

#define DENGINE_CONCAT_INNER(a, b) a##b
#define DENGINE_CONCAT(a, b) DENGINE_CONCAT_INNER(a, b)
#define DENGINE_TRY_IMPL(tmp, var, ...)         \
  auto tmp = (__VA_ARGS__);                     \
  if (!tmp) return std::move(tmp).as_failure(); \
  auto var = std::move(tmp).value()
/// `DENGINE_TRY(v, expr);` declares `v` = the value of `expr`, or returns its failure.
/// (Our own macro: Boost.Outcome's TRY changed its syntax between Boost versions.)
#define DENGINE_TRY(var, ...) \
  DENGINE_TRY_IMPL(DENGINE_CONCAT(dengine_try_, __COUNTER__), var, __VA_ARGS__)
#define DENGINE_TRYV_IMPL(tmp, ...)               \
  do {                                            \
    auto tmp = (__VA_ARGS__);                     \
    if (!tmp) return std::move(tmp).as_failure(); \
  } while (false)
/// `DENGINE_TRYV(expr);` returns the failure of a result<void>-like `expr`, if any. One
/// statement, so it is safe as the body of an unbraced if/else. (DENGINE_TRY cannot be: it
/// declares its variable in the enclosing scope, so it must stand alone in a block.)
#define DENGINE_TRYV(...) DENGINE_TRYV_IMPL(DENGINE_CONCAT(dengine_tryv_, __COUNTER__), __VA_ARGS__)
