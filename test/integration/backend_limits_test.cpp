// Backend limits through EmbeddedEngine: every key and value a request would store is checked
// against what the backend declares before the request reaches the log (the LMDB poison pill:
// a 492-byte key used to commit, fail at apply and stop the engine at every restart), the exact
// boundaries are accepted on every backend, and a write the store still refuses at apply is
// answered alike on every replica while the cluster keeps serving.

#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "../backends/built_backends.hpp"
#include "dengine/backends/memory.hpp"
#include "dengine/conformance/temp_dir.hpp"
#include "dengine/engine/embedded_engine.hpp"
#include "dengine/engine/embedded_engine_impl.hpp"  // RefusingBackend: not in a compiled library
#include "dengine/engine/kv_replica.hpp"
#include "harness.hpp"

namespace dengine::test {
namespace {

using engine::EngineConfig;
using engine::ReadConsistency;
namespace fs = std::filesystem;

EngineConfig limits_config(const fs::path& dir, NodeId id = 1, std::vector<NodeId> members = {1}) {
  EngineConfig c = EngineConfig::cluster_member(dir, id, std::move(members));
  c.node = test_config(id, c.node.initial_members);
  return c;
}

template <class B>
std::unique_ptr<EmbeddedEngine<B>> started(EngineConfig config, node::LocalHub* hub = nullptr) {
  auto e = EmbeddedEngine<B>::start(std::move(config), hub);
  REQUIRE_MESSAGE(e, (e ? "" : e.error().message()));
  return std::move(e).value();
}

template <class B>
std::unique_ptr<EmbeddedEngine<B>> started_ready(EngineConfig config) {
  auto e = started<B>(std::move(config));
  auto ready = e->wait_ready(std::chrono::seconds(20));
  REQUIRE_MESSAGE(ready, (ready ? "" : ready.error().message()));
  return e;
}

/// A KvStore over the memory backend's that refuses (too_large) every write touching a version
/// record of the user key "poison", although its traits declare no limit: what a member whose
/// store holds less than the leader's limits allow (or a bug) looks like at apply.
class RefusingStore {
 public:
  result<std::optional<std::string>> get(std::string_view key) const { return inner.get(key); }
  result<void> scan(std::string_view lo, std::string_view hi, const KvVisitor& visit) const {
    return inner.scan(lo, hi, visit);
  }
  result<void> write(const WriteBatch& batch, LogIndex index) {
    const std::string prefix = kv::keyspace::version_prefix_of("poison");
    for (const KvWrite& w : batch.writes)
      if (w.key.compare(0, prefix.size(), prefix) == 0)
        return error(errc::too_large, "refusing store: no key 'poison' here");
    return inner.write(batch, index);
  }
  [[nodiscard]] LogIndex applied_index() const { return inner.applied_index(); }
  result<void> clear(LogIndex index) { return inner.clear(index); }

 private:
  memory::KvStore inner;
};

/// The memory backend with RefusingStore as its KvStore.
struct RefusingBackend {
  using storage_engine = memory::Engine;
  using kv_store = RefusingStore;
  static constexpr std::string_view name = "refusing";
  static constexpr bool persistent = false;
  static constexpr std::size_t max_key_bytes = memory::Backend::max_key_bytes;
  static constexpr std::size_t max_value_bytes = memory::Backend::max_value_bytes;
  static constexpr std::size_t max_entry_bytes = memory::Backend::max_entry_bytes;
  static result<std::unique_ptr<memory::Engine>> open_storage(const fs::path&, PersistenceMode) {
    return std::make_unique<memory::Engine>();
  }
  static result<std::unique_ptr<RefusingStore>> open_kv_store(const fs::path&, PersistenceMode) {
    return std::make_unique<RefusingStore>();
  }
};
static_assert(engine::Backend<RefusingBackend>);
static_assert(!engine::TunableBackend<RefusingBackend>);

/// A txn op putting `key` = `value` (named, then moved: GCC 12 warns, falsely, about a braced
/// temporary of the op's variant with its boxed txn alternative).
kv::RequestOp put_op(std::string key, std::string value) {
  kv::PutRequest put;
  put.key = std::move(key);
  put.value = std::move(value);
  kv::RequestOp op{std::move(put)};
  return op;
}

#define DENGINE_LIMITS_BACKENDS memory::Backend DENGINE_TEST_EXTRA_BACKENDS

}  // namespace

TEST_SUITE("backend limits") {
#ifdef DENGINE_HAVE_LMDB
  TEST_CASE("limits: LMDB refuses a 492-byte key and 246 NUL bytes before the log, and serves on") {
    static_assert(engine::TunableBackend<lmdb::Backend>);
    CHECK(EmbeddedEngine<lmdb::Backend>::backend_limits().max_user_key_bytes() == 491);
    TempDir dir;
    {
      auto e = started_ready<lmdb::Backend>(limits_config(dir.path()));
      auto kv = e->client();
      REQUIRE(kv.put("before", "1"));
      const LogIndex last = e->status().commit;
      for (const std::string& key : {std::string(492, 'k'), std::string(246, '\0')}) {
        auto put = kv.put(key, "v");
        REQUIRE_FALSE(put);
        CHECK(put.error() == errc::too_large);
        CHECK(put.error().detail.find("at most 491 bytes") != std::string::npos);
        CHECK(put.error().detail.find("lmdb") != std::string::npos);
        // In a txn too.
        kv::TxnRequest txn;
        txn.success.push_back(put_op(key, "v"));
        auto t = kv.txn(txn);
        REQUIRE_FALSE(t);
        CHECK(t.error() == errc::too_large);
      }
      // Nothing reached the log, and the engine still serves.
      CHECK(e->status().commit == last);
      CHECK(e->status().running);
      REQUIRE(kv.put("after", "2"));
      // The exact boundary is accepted: 491 bytes, and 245 NUL bytes (490).
      REQUIRE(kv.put(std::string(491, 'k'), "edge"));
      REQUIRE(kv.put(std::string(245, '\0'), "nul"));
      CHECK(kv.get(std::string(491, 'k')).value()->value == "edge");
      REQUIRE(e->stop());
    }
    // A restart has nothing to replay that fails.
    auto e = started_ready<lmdb::Backend>(limits_config(dir.path()));
    auto kv = e->client();
    CHECK(kv.get("after").value()->value == "2");
    CHECK(kv.get(std::string(245, '\0')).value()->value == "nul");
    REQUIRE(kv.put("again", "3"));
  }
#endif

  TEST_CASE_TEMPLATE("limits: the derived boundary is exact on every backend", B,
                     DENGINE_LIMITS_BACKENDS) {
    TempDir dir;
    EngineConfig c = limits_config(dir.path());
    // Lowered store limits (as for a cluster of mixed backends) go through the same derivation.
    c.limits.store = kv::StoreLimits{"lowered", 64, 256};
    auto e = started_ready<B>(std::move(c));
    auto kv = e->client();
    CHECK(e->replica().config().limits.store.max_user_key_bytes() == 45);
    REQUIRE(kv.put(std::string(45, 'k'), std::string(225, 'v')));
    REQUIRE(kv.put(std::string(22, '\0') + "k", "v"));  // 22 NUL bytes count 44, plus one
    auto key = kv.put(std::string(46, 'k'), "v");
    REQUIRE_FALSE(key);
    CHECK(key.error() == errc::too_large);
    CHECK(key.error().detail.find("at most 45") != std::string::npos);
    auto nul = kv.put(std::string(23, '\0'), "v");
    REQUIRE_FALSE(nul);
    CHECK(nul.error() == errc::too_large);
    auto value = kv.put("k", std::string(226, 'v'));
    REQUIRE_FALSE(value);
    CHECK(value.error() == errc::too_large);
    CHECK(value.error().detail.find("at most 225") != std::string::npos);
    CHECK(e->status().running);
    CHECK(kv.get(std::string(45, 'k')).value()->value == std::string(225, 'v'));

    // The backend's own limits: a key far past LMDB's is fine where the backend stores it.
    if constexpr (B::max_key_bytes > 1'000'000) {
      TempDir other;
      auto big = started_ready<B>(limits_config(other.path()));
      REQUIRE(big->client().put(std::string(100'000, 'k'), "v"));
      CHECK(big->client().get(std::string(100'000, 'k')).value()->value == "v");
    }
  }

  TEST_CASE("limits: backend tuning of the wrong type, or for a backend without any, is refused") {
    EngineConfig c = limits_config("");
    c.backend_tuning = 42;
    auto none = EmbeddedEngine<memory::Backend>::start(c);
    REQUIRE_FALSE(none);
    CHECK(none.error() == errc::invalid_argument);
    CHECK(none.error().detail.find("nothing to tune") != std::string::npos);
#ifdef DENGINE_HAVE_RAWFILE
    TempDir dir;
    EngineConfig r = limits_config(dir.path());
    r.backend_tuning = 42;
    auto wrong = EmbeddedEngine<rawfile::Backend>::start(r);
    REQUIRE_FALSE(wrong);
    CHECK(wrong.error() == errc::invalid_argument);
    CHECK(wrong.error().detail.find("rawfile") != std::string::npos);
    // Nothing was created for a refused config.
    CHECK(fs::is_empty(dir.path()));
#endif
    EngineConfig entry = limits_config("");
    entry.node.raft.max_entry_bytes = 8U << 20;
    CHECK(EmbeddedEngine<memory::Backend>::start(entry));
  }

  TEST_CASE(
      "limits: an entry the store refuses at apply gets the same answer on every replica; "
      "the cluster serves on") {
    node::LocalHub hub;
    std::vector<std::unique_ptr<EmbeddedEngine<RefusingBackend>>> nodes;
    for (NodeId id = 1; id <= 3; ++id)
      nodes.push_back(started<RefusingBackend>(limits_config("", id, {1, 2, 3}), &hub));
    REQUIRE(eventually([&] {
      for (auto& n : nodes)
        if (n->is_leader()) return true;
      return false;
    }));
    EmbeddedEngine<RefusingBackend>* leader = nullptr;
    for (auto& n : nodes)
      if (n->is_leader()) leader = n.get();
    REQUIRE(leader != nullptr);
    auto kv = leader->client();
    REQUIRE(kv.put("a", "1"));
    auto poisoned = kv.put("poison", "x");
    REQUIRE_FALSE(poisoned);
    CHECK(poisoned.error() == errc::too_large);
    CHECK(poisoned.error().detail.find("the store refused its write") != std::string::npos);
    kv::TxnRequest txn;
    txn.success.push_back(put_op("b", "2"));
    txn.success.push_back(put_op("poison", "y"));
    REQUIRE_FALSE(kv.txn(txn));
    auto after = kv.put("c", "3");
    REQUIRE(after);
    const kv::Revision revision = after.value().header.revision;
    CHECK(revision == 3);  // a, c: the refused entries changed nothing
    for (auto& n : nodes) {
      REQUIRE(eventually([&] { return n->replica().machine().current_revision() == revision; }));
      CHECK(n->status().running);
      CHECK(n->replica().machine().refused_entries() == 2);
      auto local = n->client().range(
          kv::RangeRequest{.key = std::string(1, '\0'), .range_end = std::string(1, '\0')},
          ReadConsistency::serializable);
      REQUIRE(local);
      REQUIRE(local.value().kvs.size() == 2);
      CHECK(local.value().kvs[0].key == "a");
      CHECK(local.value().kvs[1].key == "c");
    }
  }
}

}  // namespace dengine::test
