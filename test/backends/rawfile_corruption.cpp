// The raw-file backend beyond the conformance suite: CRC32C, recovery from torn tails and
// corruption, the KV snapshot file, error paths (bad directories, full disk).

#include <doctest/doctest.h>

#include <string>

#include "dengine/backends/rawfile/crc32c.hpp"

TEST_CASE("rawfile crc32c: known vectors, both implementations") {
  using namespace dengine;
  CHECK(crc32c::value(std::string_view("123456789")) == 0xE3069283U);
  CHECK(crc32c::value(std::string_view("")) == 0U);
}
