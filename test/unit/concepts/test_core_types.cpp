// Runtime tests of core/error.hpp (category, error, result, DENGINE_TRY/TRYV) and
// core/config.hpp (RaftConfig::validate names the offending field).

#include <doctest/doctest.h>

#include <memory>
#include <set>
#include <string>
#include <system_error>

#include "dengine/core/config.hpp"
#include "dengine/core/error.hpp"

namespace {

using namespace dengine;

// ---- error.hpp -------------------------------------------------------------------------------

TEST_CASE("error: the dengine category names every code") {
  CHECK(std::string(dengine_category().name()) == "dengine");
  std::set<std::string> messages;
  for (int v = static_cast<int>(errc::ok); v <= static_cast<int>(errc::malformed); ++v) {
    CAPTURE(v);
    const std::string m = dengine_category().message(v);
    CHECK_FALSE(m.empty());
    CHECK(m != "unknown dengine error");
    messages.insert(m);
  }
  // Distinct messages: a log line tells the codes apart.
  CHECK(messages.size() == static_cast<std::size_t>(errc::malformed) + 1);
  CHECK(dengine_category().message(999) == "unknown dengine error");
  CHECK(dengine_category().message(static_cast<int>(errc::not_leader)) == "not the leader");
}

TEST_CASE("error: errc converts to std::error_code in the dengine category") {
  std::error_code ec = errc::compacted;  // is_error_code_enum
  CHECK(ec.category() == dengine_category());
  CHECK(ec.value() == 4);
  CHECK(ec == make_error_code(errc::compacted));
  CHECK(ec != make_error_code(errc::unavailable));
  CHECK(ec.message() == "compacted");
  CHECK_FALSE(make_error_code(errc::ok));  // value 0 means "no error", as std::error_code has it
}

TEST_CASE("error: code, leader hint and detail") {
  const error plain(errc::timeout);
  CHECK(plain == errc::timeout);
  CHECK_FALSE(plain == errc::stopped);
  CHECK(plain.leader_hint == no_node);
  CHECK(plain.message() == "timed out");

  const error detailed(errc::storage_corrupt, "log.0001 at offset 4096: bad checksum");
  CHECK(detailed.message() == "storage corrupt: log.0001 at offset 4096: bad checksum");

  const error redirect = error::not_leader(3);
  CHECK(redirect == errc::not_leader);
  CHECK(redirect.leader_hint == 3);
  CHECK(error::not_leader(no_node).leader_hint == no_node);

  const error from_system(std::make_error_code(std::errc::no_space_on_device), "wal");
  CHECK(from_system.code == std::errc::no_space_on_device);
  CHECK_FALSE(from_system == errc::no_space);  // a different category is a different code
}

TEST_CASE("error: result::value() on a failure throws system_error carrying the detail") {
  result<int> r = error(errc::too_large, "entry of 9 MiB exceeds max_entry_bytes 8 MiB");
  REQUIRE_FALSE(r);
  try {
    (void)r.value();
    FAIL("value() of a failed result did not throw");
  } catch (const std::system_error& e) {
    CHECK(e.code() == make_error_code(errc::too_large));
    CHECK(std::string(e.what()).find("max_entry_bytes") != std::string::npos);
  }
}

result<int> parse_positive(int x) {
  if (x <= 0) return error(errc::invalid_argument, "x must be positive, got " + std::to_string(x));
  return x;
}

result<int> twice_plus_one(int x) {
  DENGINE_TRY(a, parse_positive(x));
  DENGINE_TRY(b, parse_positive(a * 2));  // two TRYs in one scope need distinct temporaries
  return b + 1;
}

result<void> check_leader(NodeId leader) {
  if (leader != 1) return error::not_leader(leader);
  return success();
}

result<std::string> guarded(NodeId leader, int* reached) {
  DENGINE_TRYV(check_leader(leader));
  *reached += 1;
  return std::string("served");
}

// DENGINE_TRYV as the unbraced body of an if with an else: one statement, so the else stays
// with the outer if (with a two-statement macro this would not compile or would misbind).
result<int> branch(bool check, NodeId leader) {
  int path = 0;
  if (check)
    DENGINE_TRYV(check_leader(leader));
  else
    path = 2;
  return path;
}

result<std::unique_ptr<int>> make_box(int v) {
  if (v < 0) return error(errc::invalid_argument, "negative");
  return std::make_unique<int>(v);
}

result<int> unbox(int v) {
  DENGINE_TRY(box, make_box(v));  // move-only values move through TRY
  return *box;
}

TEST_CASE("error: DENGINE_TRY and DENGINE_TRYV return the first failure unchanged") {
  CHECK(twice_plus_one(3).value() == 7);
  auto failed = twice_plus_one(-2);
  REQUIRE_FALSE(failed);
  CHECK(failed.error() == errc::invalid_argument);
  CHECK(failed.error().detail == "x must be positive, got -2");

  int reached = 0;
  CHECK(guarded(1, &reached).value() == "served");
  CHECK(reached == 1);
  auto redirected = guarded(4, &reached);
  REQUIRE_FALSE(redirected);
  CHECK(redirected.error() == errc::not_leader);
  CHECK(redirected.error().leader_hint == 4);  // the hint survives propagation
  CHECK(reached == 1);                         // nothing after the failing TRYV ran

  CHECK(unbox(5).value() == 5);
  CHECK(unbox(-1).error() == errc::invalid_argument);

  CHECK(branch(true, 1).value() == 0);
  CHECK(branch(true, 3).error() == errc::not_leader);
  CHECK(branch(false, 3).value() == 2);
}

// ---- config.hpp ------------------------------------------------------------------------------

RaftConfig valid_config() {
  RaftConfig c;
  c.id = 1;
  return c;
}

/// REQUIREs validate() to fail with invalid_argument whose detail names `field`.
void check_rejects(const RaftConfig& c, const std::string& field) {
  auto r = c.validate();
  REQUIRE_FALSE(r);
  CHECK(r.error() == errc::invalid_argument);
  INFO("detail: " << r.error().detail);
  CHECK(r.error().detail.find(field) != std::string::npos);
}

TEST_CASE("config: the defaults are valid once id is set") {
  RaftConfig c;
  check_rejects(c, "id");
  c.id = 7;
  CHECK(c.validate());
  // election_ticks 10, drift 5 %: floor(9 × 95 / 105) = 8.
  CHECK(c.max_lease_ticks() == 8);
  CHECK(c.effective_lease_ticks() == 8);
  c.lease_ticks = 5;
  CHECK(c.effective_lease_ticks() == 5);
  CHECK(c.validate());
}

TEST_CASE("config: each invalid combination is rejected by name") {
  RaftConfig c = valid_config();
  SUBCASE("election_ticks not more than twice heartbeat_ticks") {
    c.heartbeat_ticks = 3;
    c.election_ticks = 6;
    check_rejects(c, "election_ticks");
    c.election_ticks = 7;
    CHECK(c.validate());
  }
  SUBCASE("lease_reads without check_quorum") {
    c.check_quorum = false;
    check_rejects(c, "lease_reads");
    c.lease_reads = false;  // without lease reads, check_quorum may be off
    CHECK(c.validate());
  }
  SUBCASE("lease_ticks not shorter than election_ticks") {
    c.lease_ticks = c.election_ticks;
    check_rejects(c, "lease_ticks");
    c.lease_reads = false;  // the lease length only matters with lease reads
    CHECK(c.validate());
  }
  SUBCASE("lease_ticks longer than the drift bound allows") {
    c.election_ticks = 100;
    CHECK(c.max_lease_ticks() == 89);  // floor(99 × 95 / 105): the margin scales with the timeout
    c.lease_ticks = 90;
    check_rejects(c, "lease_ticks");
    c.lease_ticks = 89;
    CHECK(c.validate());
    c.clock_drift_percent = 0;
    CHECK(c.max_lease_ticks() == 99);
    c.lease_ticks = 0;
    CHECK(c.effective_lease_ticks() == 99);
  }
  SUBCASE("an election timeout too short for any safe lease") {
    c.election_ticks = 3;
    c.heartbeat_ticks = 1;
    c.clock_drift_percent = 40;  // floor(2 × 60 / 140) = 0
    check_rejects(c, "lease");
    c.lease_reads = false;
    CHECK(c.validate());
  }
  SUBCASE("max_entry_bytes above max_uncommitted_bytes") {
    c.max_entry_bytes = c.max_uncommitted_bytes + 1;
    check_rejects(c, "max_uncommitted_bytes");
    c.max_entry_bytes = c.max_uncommitted_bytes;
    CHECK(c.validate());
  }
}

TEST_CASE("config: one bad value is rejected by the field's name") {
  struct Row {
    const char* field;
    void (*set)(RaftConfig&);
  } const rows[] = {
      {"heartbeat_ticks", [](RaftConfig& c) { c.heartbeat_ticks = 0; }},
      {"election_ticks", [](RaftConfig& c) { c.election_ticks = 2; }},  // below 3
      {"clock_drift_percent", [](RaftConfig& c) { c.clock_drift_percent = 50; }},
      {"max_append_bytes", [](RaftConfig& c) { c.max_append_bytes = 0; }},
      {"max_append_entries", [](RaftConfig& c) { c.max_append_entries = 0; }},
      {"max_inflight_messages", [](RaftConfig& c) { c.max_inflight_messages = 0; }},
      {"max_inflight_bytes", [](RaftConfig& c) { c.max_inflight_bytes = 0; }},
      {"max_entry_bytes", [](RaftConfig& c) { c.max_entry_bytes = 0; }},
      {"max_pending_reads", [](RaftConfig& c) { c.max_pending_reads = 0; }},
  };
  for (const Row& row : rows) {
    CAPTURE(row.field);
    RaftConfig c = valid_config();
    row.set(c);
    check_rejects(c, row.field);
  }
}

}  // namespace
