// Unit tests of the node's parts: metrics, snapshot store, config validation.

#include <doctest/doctest.h>

#include "harness.hpp"

namespace dengine::test {
namespace {

TEST_SUITE("integration") {
  TEST_CASE("metrics: histogram buckets and Prometheus text") {
    node::Registry r;
    auto& c = r.counter("c_total", "a counter");
    auto& h = r.histogram("lat_seconds", "a latency");
    c.add(3);
    h.record_us(3);
    h.record_us(1500000);
    std::string out;
    r.write_prometheus(out);
    CHECK(out.find("c_total 3\n") != std::string::npos);
    CHECK(out.find("lat_seconds_bucket{le=\"0.000005\"} 1\n") != std::string::npos);
    CHECK(out.find("lat_seconds_bucket{le=\"2.5\"} 2\n") != std::string::npos);
    CHECK(out.find("lat_seconds_count 2\n") != std::string::npos);
    CHECK(out.find("lat_seconds_sum 1.500003\n") != std::string::npos);
  }
}

}  // namespace
}  // namespace dengine::test
