#pragma once
/// The KvStore conformance suite: the doctest cases every KvStore (the ordered byte map under
/// the KV state machine) runs. Same fixture rules as the StorageEngine suite (storage.hpp),
/// with store_type/store() in place of engine_type/engine(). At global scope:
///
///     #include "dengine/conformance/kv_store.hpp"
///
///     struct MyKvFixture {
///       using store_type = my::KvStore;
///       MyKvFixture();           // a fresh, empty store
///       store_type& store();     // the store as it is now
///       void reopen();           // close and open again from the same place
///     };
///     DENGINE_KV_CONFORMANCE(MyKvFixture);
///
/// What the suite fixes where concepts.hpp leaves a choice: scan with lo >= hi (hi non-empty)
/// visits nothing and succeeds; an empty value is distinct from a missing key; a write of an
/// empty batch still records its applied index; a scan's visitor may call get() and scan() on
/// the same store; a reopen keeps every write (KvStore::write is durable per the backend's
/// persistence mode, and a clean close loses nothing). Every error carries a non-empty detail.
/// Keys used here are 1..300 bytes (LMDB's default key limit is 511) and never empty.

#include <doctest/doctest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dengine/conformance/helpers.hpp"
#include "dengine/core/error.hpp"
#include "dengine/storage/concepts.hpp"
#include "dengine/storage/write_batch.hpp"

namespace dengine::conformance {

using KvPairs = std::vector<std::pair<std::string, std::string>>;

/// Every (key, value) scan(lo, hi) visits, in visiting order.
template <class S>
KvPairs scan_all(const S& store, std::string_view lo, std::string_view hi) {
  KvPairs out;
  CONF_REQUIRE_OK(store.scan(lo, hi, [&](std::string_view k, std::string_view v) {
    out.emplace_back(std::string(k), std::string(v));
    return true;
  }));
  return out;
}

/// Writes one batch, REQUIREing success.
template <class S>
void write_ok(S& store, const WriteBatch& batch, LogIndex applied_index) {
  CONF_REQUIRE_OK(store.write(batch, applied_index));
}

}  // namespace dengine::conformance

TEST_CASE_TEMPLATE_DEFINE("KvStore conformance: a fresh store is empty", F, dengine_conf_kv_fresh) {
  using namespace dengine;
  F f;
  auto s = [&]() -> typename F::store_type& { return f.store(); };
  static_assert(KvStore<typename F::store_type>);
  CHECK(s().applied_index() == 0);
  CHECK(CONF_VALUE(s().get("missing")) == std::nullopt);
  CHECK(conformance::scan_all(s(), "", "").empty());
  f.reopen();
  CHECK(s().applied_index() == 0);
  CHECK(conformance::scan_all(s(), "", "").empty());
}

TEST_CASE_TEMPLATE_DEFINE("KvStore conformance: put, get, erase", F, dengine_conf_kv_put_get) {
  using namespace dengine;
  F f;
  auto s = [&]() -> typename F::store_type& { return f.store(); };
  WriteBatch b;
  b.put("a", "1");
  b.put("b", "");  // an empty value is a value, not a missing key
  b.put("c", std::string("\0x\xff", 3));
  conformance::write_ok(s(), b, 1);
  CHECK(CONF_VALUE(s().get("a")) == std::optional<std::string>("1"));
  CHECK(CONF_VALUE(s().get("b")) == std::optional<std::string>(""));
  CHECK(CONF_VALUE(s().get("c")) == std::optional<std::string>(std::string("\0x\xff", 3)));
  CHECK(CONF_VALUE(s().get("d")) == std::nullopt);
  CHECK(CONF_VALUE(s().get(std::string_view("a\0", 2))) ==
        std::nullopt);  // length matters, not C strings
  CHECK(s().applied_index() == 1);

  WriteBatch b2;
  b2.put("a", "2");  // overwrite
  b2.erase("b");
  b2.erase("never-existed");  // erasing a missing key is not an error
  conformance::write_ok(s(), b2, 2);
  CHECK(CONF_VALUE(s().get("a")) == std::optional<std::string>("2"));
  CHECK(CONF_VALUE(s().get("b")) == std::nullopt);
  CHECK(CONF_VALUE(s().get("never-existed")) == std::nullopt);
  CHECK(s().applied_index() == 2);
  CHECK(conformance::scan_all(s(), "", "") ==
        conformance::KvPairs{{"a", "2"}, {"c", std::string("\0x\xff", 3)}});
}

TEST_CASE_TEMPLATE_DEFINE("KvStore conformance: scan in byte order", F, dengine_conf_kv_scan) {
  using namespace dengine;
  F f;
  auto s = [&]() -> typename F::store_type& { return f.store(); };
  // Sorted by unsigned bytes: "\0" < "\x01" < "a" < ... < "\x7f" < "\x80" < "\xff".
  const std::vector<std::string> sorted{std::string("\0", 1),
                                        std::string("\0\0", 2),
                                        std::string("\0\xff", 2),
                                        "\x01",
                                        "a",
                                        "a/",
                                        "a/1",
                                        "a/2",
                                        "a/2/x",
                                        "a0",
                                        "b",
                                        "\x7f",
                                        "\x80",
                                        "\xfe\xff",
                                        "\xff",
                                        "\xff\xff"};
  WriteBatch b;
  for (auto it = sorted.rbegin(); it != sorted.rend(); ++it) b.put(*it, "v" + *it);  // reversed
  conformance::write_ok(s(), b, 1);
  auto keys = [](const conformance::KvPairs& pairs) {
    std::vector<std::string> out;
    for (const auto& [k, v] : pairs) {
      CHECK(v == "v" + k);
      out.push_back(k);
    }
    return out;
  };

  SUBCASE("everything, with an empty hi") {
    CHECK(keys(conformance::scan_all(s(), "", "")) == sorted);
  }
  SUBCASE("a prefix range [a/, a0)") {
    CHECK(keys(conformance::scan_all(s(), "a/", "a0")) ==
          std::vector<std::string>{"a/", "a/1", "a/2", "a/2/x"});
  }
  SUBCASE("lo inclusive, hi exclusive, bounds need not exist") {
    CHECK(keys(conformance::scan_all(s(), "a/1", "a/2")) == std::vector<std::string>{"a/1"});
    CHECK(keys(conformance::scan_all(s(), "a/10", "a/2/y")) ==
          std::vector<std::string>{"a/2", "a/2/x"});
  }
  SUBCASE("from a key to the end") {
    CHECK(keys(conformance::scan_all(s(), "\x80", "")) ==
          std::vector<std::string>{"\x80", "\xfe\xff", "\xff", "\xff\xff"});
  }
  SUBCASE("keys with zero bytes") {
    CHECK(keys(conformance::scan_all(s(), std::string("\0", 1), "\x01")) ==
          std::vector<std::string>{std::string("\0", 1), std::string("\0\0", 2),
                                   std::string("\0\xff", 2)});
  }
  SUBCASE("empty ranges visit nothing") {
    CHECK(conformance::scan_all(s(), "a/3", "a0").empty());
    CHECK(conformance::scan_all(s(), "b", "b").empty());
    CHECK(conformance::scan_all(s(), "c", "b").empty());  // lo > hi
    CHECK(conformance::scan_all(s(), "\xff\xff\xff", "").empty());
  }
  SUBCASE("stops when the visitor returns false") {
    std::vector<std::string> seen;
    CONF_REQUIRE_OK(s().scan("a", "", [&](std::string_view k, std::string_view) {
      seen.emplace_back(k);
      return seen.size() < 3;
    }));
    CHECK(seen == std::vector<std::string>{"a", "a/", "a/1"});
  }
}

TEST_CASE_TEMPLATE_DEFINE("KvStore conformance: a visitor may read the store it scans", F,
                          dengine_conf_kv_nested_scan) {
  // The KV state machine looks up related keys while it scans: get() and a nested scan() from
  // inside a visitor see the store as it is, and neither deadlocks.
  using namespace dengine;
  F f;
  WriteBatch b;
  b.put("a", "1");
  b.put("b", "2");
  conformance::write_ok(f.store(), b, 1);
  auto& store = f.store();
  std::vector<std::string> seen;
  CONF_REQUIRE_OK(store.scan("", "", [&](std::string_view k, std::string_view) {
    auto other = store.get(k == "a" ? "b" : "a");
    std::size_t inner = 0;
    auto nested =
        store.scan("", "", [&](std::string_view, std::string_view) { return ++inner, true; });
    seen.push_back(std::string(k) + "->" + (other ? other.value().value_or("?") : "error") + "/" +
                   std::to_string(nested ? inner : 0));
    return true;
  }));
  CHECK(seen == std::vector<std::string>{"a->2/2", "b->1/2"});
}

TEST_CASE_TEMPLATE_DEFINE("KvStore conformance: a batch is applied in order with its index", F,
                          dengine_conf_kv_batch) {
  using namespace dengine;
  F f;
  auto s = [&]() -> typename F::store_type& { return f.store(); };
  WriteBatch b;
  b.put("k", "1");
  b.put("k", "2");  // the later write to the same key wins
  b.put("gone", "x");
  b.erase("gone");
  b.erase("back");
  b.put("back", "again");
  conformance::write_ok(s(), b, 41);
  CHECK(CONF_VALUE(s().get("k")) == std::optional<std::string>("2"));
  CHECK(CONF_VALUE(s().get("gone")) == std::nullopt);
  CHECK(CONF_VALUE(s().get("back")) == std::optional<std::string>("again"));
  CHECK(s().applied_index() == 41);

  // An empty batch still records its index (an entry that wrote nothing was still applied).
  conformance::write_ok(s(), WriteBatch{}, 42);
  CHECK(s().applied_index() == 42);
  f.reopen();
  CHECK(s().applied_index() == 42);
  CHECK(conformance::scan_all(s(), "", "") == conformance::KvPairs{{"back", "again"}, {"k", "2"}});
}

TEST_CASE_TEMPLATE_DEFINE("KvStore conformance: contents and applied index survive reopen", F,
                          dengine_conf_kv_reopen) {
  using namespace dengine;
  F f;
  auto s = [&]() -> typename F::store_type& { return f.store(); };
  conformance::KvPairs expected;
  for (int round = 1; round <= 5; ++round) {
    WriteBatch b;
    const std::string key = "key" + std::to_string(round);
    b.put(key, std::string(static_cast<std::size_t>(round) * 10, static_cast<char>('a' + round)));
    expected.emplace_back(key, b.writes.back().value);
    conformance::write_ok(s(), b, static_cast<LogIndex>(round) * 100);
  }
  f.reopen();
  CHECK(s().applied_index() == 500);
  CHECK(conformance::scan_all(s(), "", "") == expected);
  WriteBatch b;
  b.erase("key3");
  conformance::write_ok(s(), b, 501);
  f.reopen();
  CHECK(s().applied_index() == 501);
  CHECK(CONF_VALUE(s().get("key3")) == std::nullopt);
  CHECK(conformance::scan_all(s(), "", "").size() == 4);
}

TEST_CASE_TEMPLATE_DEFINE("KvStore conformance: clear", F, dengine_conf_kv_clear) {
  using namespace dengine;
  F f;
  auto s = [&]() -> typename F::store_type& { return f.store(); };
  WriteBatch b;
  for (int i = 0; i < 100; ++i) b.put("k" + std::to_string(i), "v");
  conformance::write_ok(s(), b, 10);
  CONF_REQUIRE_OK(s().clear(77));
  CHECK(s().applied_index() == 77);
  CHECK(conformance::scan_all(s(), "", "").empty());
  CHECK(CONF_VALUE(s().get("k1")) == std::nullopt);
  f.reopen();
  CHECK(s().applied_index() == 77);
  CHECK(conformance::scan_all(s(), "", "").empty());
  // The store is usable after a clear (as a restore writes into it).
  WriteBatch after;
  after.put("k1", "new");
  conformance::write_ok(s(), after, 78);
  CHECK(conformance::scan_all(s(), "", "") == conformance::KvPairs{{"k1", "new"}});
}

TEST_CASE_TEMPLATE_DEFINE("KvStore conformance: large values and long keys", F,
                          dengine_conf_kv_large) {
  using namespace dengine;
  F f;
  auto s = [&]() -> typename F::store_type& { return f.store(); };
  const std::string big1 = conformance::patterned_bytes(conformance::large_bytes, 131, 0);
  const std::string big2 = conformance::patterned_bytes(conformance::large_bytes, 37, 11);
  const std::string long_key(300, 'k');
  WriteBatch b;
  b.put("big1", big1);
  b.put("big2", big2);
  b.put(long_key, "long");
  conformance::write_ok(s(), b, 1);
  CHECK(CONF_VALUE(s().get("big1")) == std::optional<std::string>(big1));
  f.reopen();
  CHECK(CONF_VALUE(s().get("big1")) == std::optional<std::string>(big1));
  CHECK(CONF_VALUE(s().get("big2")) == std::optional<std::string>(big2));
  CHECK(CONF_VALUE(s().get(long_key)) == std::optional<std::string>("long"));
  // Overwriting a large value with a small one leaves nothing of the old one behind.
  WriteBatch shrink;
  shrink.put("big1", "small");
  conformance::write_ok(s(), shrink, 2);
  f.reopen();
  CHECK(CONF_VALUE(s().get("big1")) == std::optional<std::string>("small"));
}

TEST_CASE_TEMPLATE_DEFINE("KvStore conformance: many keys", F, dengine_conf_kv_many) {
  using namespace dengine;
  F f;
  auto s = [&]() -> typename F::store_type& { return f.store(); };
  constexpr int count = static_cast<int>(conformance::many_count);
  constexpr int per_batch = static_cast<int>(conformance::many_per_batch);
  auto key = [](int i) {
    // Big-endian bytes sort numerically, so the expected scan order is i's order.
    std::string k = "n";
    for (int shift = 24; shift >= 0; shift -= 8)
      k.push_back(static_cast<char>((i >> shift) & 0xff));
    return k;
  };
  for (int from = 0; from < count; from += per_batch) {
    WriteBatch b;
    for (int i = from; i < from + per_batch; ++i) b.put(key(i), std::to_string(i));
    conformance::write_ok(s(), b, static_cast<LogIndex>(from / per_batch) + 1);
  }
  f.reopen();
  CHECK(s().applied_index() == count / per_batch);
  int next = 0;
  bool in_order = true;
  CONF_REQUIRE_OK(s().scan("", "", [&](std::string_view k, std::string_view v) {
    in_order = in_order && k == key(next) && v == std::to_string(next);
    ++next;
    return true;
  }));
  CHECK(next == count);
  CHECK(in_order);
  CHECK(CONF_VALUE(s().get(key(54321))) == std::optional<std::string>("54321"));
  CHECK(conformance::scan_all(s(), key(500), key(510)).size() == 10);
}

/// Runs every KvStore conformance case over a store fixture (see the file comment).
/// Use once per fixture, at global scope.
#define DENGINE_KV_CONFORMANCE(Fixture)                            \
  TYPE_TO_STRING(Fixture);                                         \
  TEST_CASE_TEMPLATE_INVOKE(dengine_conf_kv_fresh, Fixture);       \
  TEST_CASE_TEMPLATE_INVOKE(dengine_conf_kv_put_get, Fixture);     \
  TEST_CASE_TEMPLATE_INVOKE(dengine_conf_kv_scan, Fixture);        \
  TEST_CASE_TEMPLATE_INVOKE(dengine_conf_kv_nested_scan, Fixture); \
  TEST_CASE_TEMPLATE_INVOKE(dengine_conf_kv_batch, Fixture);       \
  TEST_CASE_TEMPLATE_INVOKE(dengine_conf_kv_reopen, Fixture);      \
  TEST_CASE_TEMPLATE_INVOKE(dengine_conf_kv_clear, Fixture);       \
  TEST_CASE_TEMPLATE_INVOKE(dengine_conf_kv_large, Fixture);       \
  TEST_CASE_TEMPLATE_INVOKE(dengine_conf_kv_many, Fixture)
