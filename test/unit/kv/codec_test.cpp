// The command and response codec: round trips, and robustness against truncated, corrupted
// and random input (always an error, never a crash or an out-of-bounds read).

#include "kv_test_support.hpp"

#include <random>

using namespace kvtest;

namespace {

TxnRequest sample_txn() {
  TxnRequest inner;
  inner.compare.push_back(cmp("n", CompareTarget::lease, CompareResult::not_equal, -3));
  inner.success = {op_del("d", "e")};
  inner.failure = {op_get("g")};
  TxnRequest t;
  t.compare.push_back(cmp("a", CompareTarget::version, CompareResult::equal, 1));
  t.compare.push_back(cmp("b", CompareTarget::create, CompareResult::greater, 2));
  t.compare.push_back(cmp("c", CompareTarget::mod, CompareResult::less, 3));
  Compare v = cmp_value("d", CompareResult::equal, std::string("va\0l", 4));
  v.range_end = "e";
  t.compare.push_back(v);
  t.success = {op_put("k", "v", 9), op_txn(inner)};
  RangeRequest r;
  r.key = "x";
  r.range_end = std::string(1, '\0');
  r.limit = 10;
  r.revision = 5;
  r.sort_order = SortOrder::descend;
  r.sort_target = SortTarget::value;
  r.keys_only = true;
  r.min_create_revision = -1;
  r.max_mod_revision = 1LL << 40;
  t.failure = {RequestOp{r}};
  return t;
}

std::vector<Command> sample_commands() {
  RangeRequest r;
  r.key = "k";
  r.serializable = true;
  r.count_only = true;
  r.min_mod_revision = 3;
  r.max_create_revision = 4;
  PutRequest p{"key", std::string("\0\xff", 2), 77, true, false, true};
  return {r,
          p,
          DeleteRangeRequest{"a", "b", true},
          sample_txn(),
          CompactionRequest{123, true},
          LeaseGrantRequest{60, 0},
          LeaseGrantRequest{-1, (1LL << 62)},
          LeaseRevokeRequest{42}};
}

std::vector<result<Response>> sample_responses() {
  KeyValue kv{"k", 2, 3, 4, "v", 5};
  RangeResponse rr{{9}, {kv, kv}, true, 7};
  TxnResponse inner{{9}, false, {ResponseOp{rr}}};
  TxnResponse t{{9},
                true,
                {ResponseOp{PutResponse{{9}, kv}}, ResponseOp{DeleteRangeResponse{{9}, 1, {kv}}},
                 ResponseOp{box<TxnResponse>(inner)}}};
  return {Response{},
          Response{rr},
          Response{PutResponse{{3}, std::nullopt}},
          Response{DeleteRangeResponse{{4}, 0, {}}},
          Response{t},
          Response{CompactionResponse{{5}}},
          Response{LeaseGrantResponse{{6}, 7, 8, ""}},
          Response{LeaseRevokeResponse{{9}}},
          result<Response>(
              error(errc::compacted, "etcdserver: mvcc: required revision has been compacted"))};
}

}  // namespace

TEST_CASE("kv codec: every command round-trips") {
  for (const Command& c : sample_commands()) {
    const std::string enc = encode_command(c);
    auto dec = decode_command(enc);
    REQUIRE(dec);
    CHECK(dec.value() == c);
  }
}

TEST_CASE("kv codec: every response round-trips, errors included") {
  for (const auto& r : sample_responses()) {
    result<Response> out{Response{}};
    REQUIRE(decode_response(encode_response(r), out));
    REQUIRE(out.has_value() == r.has_value());
    if (r) {
      CHECK(out.value() == r.value());
    } else {
      CHECK(out.error() == errc::compacted);
      CHECK(out.error().detail == r.error().detail);
    }
  }
}

TEST_CASE("kv codec: every truncation of a valid encoding is rejected") {
  for (const Command& c : sample_commands()) {
    const std::string enc = encode_command(c);
    for (std::size_t n = 0; n < enc.size(); ++n) {
      auto dec = decode_command(std::string_view(enc).substr(0, n));
      CHECK_FALSE(dec);
      if (!dec) CHECK(dec.error() == errc::invalid_argument);
    }
    // Trailing garbage too.
    CHECK(!decode_command(enc + "x"));
  }
  for (const auto& r : sample_responses()) {
    const std::string enc = encode_response(r);
    for (std::size_t n = 0; n < enc.size(); ++n) {
      result<Response> out{Response{}};
      CHECK_FALSE(decode_response(std::string_view(enc).substr(0, n), out));
    }
  }
}

TEST_CASE("kv codec: random and mutated bytes never crash the decoder") {
  std::mt19937_64 rng(12345);
  const auto commands = sample_commands();
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string data;
    if (i % 2 == 0) {
      const std::size_t n = rng() % 64;
      data.resize(n);
      for (auto& ch : data) ch = static_cast<char>(rng());
      if (n > 0 && i % 4 == 0) data[0] = static_cast<char>(codec_version);  // get past the version
    } else {
      data = encode_command(commands[rng() % commands.size()]);
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int f = 0; f < flips; ++f) data[rng() % data.size()] = static_cast<char>(rng());
    }
    auto dec = decode_command(data);
    if (dec) {
      ++accepted;
      // Whatever decodes re-encodes to a decodable command equal to itself.
      auto again = decode_command(encode_command(dec.value()));
      REQUIRE(again);
      CHECK(again.value() == dec.value());
    } else {
      CHECK((dec.error() == errc::invalid_argument || dec.error() == errc::incompatible_version));
    }
    result<Response> out{Response{}};
    (void)decode_response(data, out);
  }
  CHECK(accepted < 20000);
}

TEST_CASE("kv codec: hostile counts, lengths and nesting") {
  // A count far beyond the input must not allocate or loop.
  std::string huge_count;
  ByteWriter w(huge_count);
  w.u8(codec_version);
  w.u8(4);               // txn
  w.varint(1ULL << 60);  // compares
  CHECK(decode_command(huge_count).error() == errc::invalid_argument);
  std::string huge_len;
  ByteWriter w2(huge_len);
  w2.u8(codec_version);
  w2.u8(2);
  w2.varint(~0ULL);  // key length
  CHECK(decode_command(huge_len).error() == errc::invalid_argument);
  // Overlong varint.
  std::string overlong(1, static_cast<char>(codec_version));
  overlong += '\x05';
  overlong += std::string(11, '\xff');
  CHECK(!decode_command(overlong));
  // Nesting deeper than max_txn_depth.
  std::string deep;
  ByteWriter w3(deep);
  w3.u8(codec_version);
  w3.u8(4);
  for (std::size_t i = 0; i < max_txn_depth + 5; ++i) {
    w3.varint(0);  // no compares
    w3.varint(1);  // one success op
    w3.u8(4);      // a txn
  }
  auto dec = decode_command(deep);
  REQUIRE(!dec);
  CHECK(dec.error().detail.find("too deep") != std::string::npos);
  // Bad enum and flag values.
  std::string enc = encode_command(DeleteRangeRequest{"a", "", false});
  enc.back() = '\x02';
  CHECK(!decode_command(enc));
  // Unknown version.
  enc = encode_command(LeaseRevokeRequest{1});
  enc[0] = '\x07';
  CHECK(decode_command(enc).error() == errc::incompatible_version);
}

TEST_CASE("kv codec: an unknown txn op tag is rejected by name") {
  for (const std::uint8_t tag : {0, 5}) {  // below the first alternative, past the last
    CAPTURE(static_cast<int>(tag));
    std::string command;
    ByteWriter w(command);
    w.u8(codec_version);
    w.u8(4);      // txn
    w.varint(0);  // no compares
    w.varint(1);  // one success op
    w.u8(tag);
    auto dec = decode_command(command);
    REQUIRE(!dec);
    CHECK(dec.error().detail.find("unknown op tag") != std::string::npos);

    std::string response;
    ByteWriter w2(response);
    w2.u8(codec_version);
    w2.u8(5);       // txn response
    w2.svarint(7);  // header.revision
    w2.boolean(true);
    w2.varint(1);  // one response op
    w2.u8(tag);
    result<Response> out{Response{}};
    auto decoded = decode_response(response, out);
    REQUIRE(!decoded);
    CHECK(decoded.error().detail.find("unknown response op tag") != std::string::npos);
  }
}
