#pragma once
/// Helpers shared by the conformance suites (storage.hpp, kv_store.hpp, state_machine.hpp):
/// entry builders and assertion macros that print the backend's error message when a call fails.

#include <doctest/doctest.h>

#include <cstddef>
#include <limits>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"

// Readable failure output: doctest prints "{?}" for types it cannot stringify.
template <>
struct doctest::StringMaker<dengine::Entry> {
  static String convert(const dengine::Entry& e) {
    return ("{index " + std::to_string(e.index) + ", term " + std::to_string(e.term) + ", type " +
            std::to_string(static_cast<int>(e.type)) + ", " + std::to_string(e.data.size()) +
            " bytes}")
        .c_str();
  }
};
template <>
struct doctest::StringMaker<std::vector<dengine::Entry>> {
  static String convert(const std::vector<dengine::Entry>& v) {
    String out = ("[" + std::to_string(v.size()) + " entries").c_str();
    for (std::size_t k = 0; k < v.size() && k < 6; ++k)
      out += (k == 0 ? ": " : ", ") + StringMaker<dengine::Entry>::convert(v[k]);
    if (v.size() > 6) out += ", ...";
    return out + "]";
  }
};
template <>
struct doctest::StringMaker<dengine::HardState> {
  static String convert(const dengine::HardState& h) {
    return ("{term " + std::to_string(h.term) + ", vote " + std::to_string(h.vote) + ", commit " +
            std::to_string(h.commit) + "}")
        .c_str();
  }
};
template <>
struct doctest::StringMaker<dengine::SnapshotMeta> {
  static String convert(const dengine::SnapshotMeta& m) {
    auto ids = [](const std::vector<dengine::NodeId>& v) {
      std::string s;
      for (auto id : v) s += (s.empty() ? "" : ",") + std::to_string(id);
      return s;
    };
    auto addresses = [](const std::map<dengine::NodeId, std::string>& a) {
      std::string s;
      for (const auto& [id, address] : a)
        s += (s.empty() ? "" : ",") + std::to_string(id) + "=" + address;
      return s;
    };
    return ("{index " + std::to_string(m.index) + ", term " + std::to_string(m.term) +
            ", voters [" + ids(m.membership.voters) + "], learners [" + ids(m.membership.learners) +
            "], addresses [" + addresses(m.membership.addresses) + "]}")
        .c_str();
  }
};

namespace dengine::conformance {

/// No byte bound: entries() returns the whole range.
inline constexpr std::size_t unbounded = std::numeric_limits<std::size_t>::max();

/// A normal entry whose data names its index and term (so a misplaced entry shows in a diff).
inline Entry make_entry(LogIndex index, Term term) {
  return Entry{term, index, EntryType::normal,
               "i" + std::to_string(index) + "t" + std::to_string(term)};
}

/// Entries [from, to] (inclusive), all with `term`.
/// The size of the large entries and values the suites write: larger than any batch or page
/// a backend might assume, smaller than their documented limits.
inline constexpr std::size_t large_bytes = 4U << 20;

/// The scale of the "many" cases: items written, and items per write (one sync each).
inline constexpr std::size_t many_count = 100000;
inline constexpr std::size_t many_per_batch = 1000;

/// `size` bytes whose byte k is (k * mul + add) mod 256: a pattern that differs per position
/// (and per (mul, add)), so that a shifted, truncated or mixed-up chunk shows.
inline std::string patterned_bytes(std::size_t size, std::size_t mul, std::size_t add) {
  std::string out(size, '\0');
  for (std::size_t k = 0; k < size; ++k) out[k] = static_cast<char>((k * mul + add) & 0xff);
  return out;
}

inline std::vector<Entry> make_entries(LogIndex from, LogIndex to, Term term) {
  std::vector<Entry> out;
  for (LogIndex i = from; i <= to; ++i) out.push_back(make_entry(i, term));
  return out;
}

/// Fails the test (fatally) at file:line with the expression and the error's message.
template <class R>
void require_ok(const R& r, const char* expr, const char* file, int line) {
  if (!r) {
    DOCTEST_ADD_FAIL_AT(file, line, (std::string(expr) + " failed: " + r.error().message()));
  }
}

/// The value of r (by value, so it never dangles), failing the test like require_ok otherwise.
template <class R>
auto require_value(R&& r, const char* expr, const char* file, int line) {
  require_ok(r, expr, file, line);
  return std::forward<R>(r).value();
}

/// Fails the test (fatally) unless r failed with `code` and a non-empty detail.
template <class R>
void require_error(const R& r, errc code, const char* expr, const char* file, int line) {
  if (r) {
    DOCTEST_ADD_FAIL_AT(
        file, line,
        (std::string(expr) + " succeeded; expected error " + make_error_code(code).message()));
  } else if (!(r.error() == code)) {
    DOCTEST_ADD_FAIL_AT(file, line,
                        (std::string(expr) + " failed with \"" + r.error().message() +
                         "\"; expected error " + make_error_code(code).message()));
  } else if (r.error().detail.empty()) {
    DOCTEST_ADD_FAIL_AT(
        file, line,
        (std::string(expr) + " failed with the right code but no detail (an error must "
                             "name what and where)"));
  }
}

}  // namespace dengine::conformance

/// REQUIREs that a result-returning expression succeeded, printing its error otherwise.
#define CONF_REQUIRE_OK(...) \
  ::dengine::conformance::require_ok((__VA_ARGS__), #__VA_ARGS__, __FILE__, __LINE__)
/// The value of a result-returning expression, REQUIREing that it succeeded.
#define CONF_VALUE(...) \
  ::dengine::conformance::require_value((__VA_ARGS__), #__VA_ARGS__, __FILE__, __LINE__)
/// REQUIREs that a result-returning expression failed with errc `code` and a detail.
#define CONF_REQUIRE_ERROR(code, ...) \
  ::dengine::conformance::require_error((__VA_ARGS__), (code), #__VA_ARGS__, __FILE__, __LINE__)

namespace dengine::conformance {

/// Appends batch, REQUIREing success.
template <class E>
void append_ok(E& engine, const std::vector<Entry>& batch) {
  CONF_REQUIRE_OK(engine.append(std::span<const Entry>(batch)));
}

/// Appends batch, then syncs: the batch (and every append before it) is durable. REQUIREs
/// success of both.
template <class E>
void append_synced(E& engine, const std::vector<Entry>& batch) {
  append_ok(engine, batch);
  CONF_REQUIRE_OK(engine.sync());
}

}  // namespace dengine::conformance
