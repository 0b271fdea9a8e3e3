#pragma once
/// The StateMachine conformance fixture of the KV machine over a backend's KvStore (test-only,
/// not installed): KvMachineFixture<StoreFixture> runs dengine::kv::KvStateMachine over the
/// store of a KvStore conformance fixture (memory_conformance.cpp's, DirKvFixture's), through a
/// CrashingKvStore that gives the suite its crash_after() hook.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>

#include "dengine/core/error.hpp"
#include "dengine/core/types.hpp"
#include "dengine/statemachines/kv/codec.hpp"
#include "dengine/statemachines/kv/codec_response.hpp"
#include "dengine/statemachines/kv/state_machine.hpp"
#include "dengine/storage/concepts.hpp"
#include "dengine/storage/write_batch.hpp"

namespace dengine::test {

/// A KvStore that forwards to another and can lose power: after crash_after(n) it lets n more
/// writes (write() or clear(), each atomic in the store below) through, then refuses every
/// write with io_error, changing nothing, until attach(). Reads always go through (the process
/// still has its memory until the restart).
template <KvStore Store>
class CrashingKvStore {
 public:
  explicit CrashingKvStore(Store& store) : store_(&store) {}

  /// Forwards to `store` from now on, with the power back on (a restart).
  void attach(Store& store) {
    store_ = &store;
    writes_left_.reset();
  }
  /// Arms the power failure (see the class comment).
  void crash_after(std::size_t writes) { writes_left_ = writes; }

  result<std::optional<std::string>> get(std::string_view key) const { return store_->get(key); }
  result<void> scan(std::string_view lo, std::string_view hi, const KvVisitor& visit) const {
    return store_->scan(lo, hi, visit);
  }
  result<void> write(const WriteBatch& batch, LogIndex applied_index) {
    DENGINE_TRYV(power());
    return store_->write(batch, applied_index);
  }
  [[nodiscard]] LogIndex applied_index() const { return store_->applied_index(); }
  result<void> clear(LogIndex applied_index) {
    DENGINE_TRYV(power());
    return store_->clear(applied_index);
  }

 private:
  result<void> power() {
    if (!writes_left_) return success();
    if (*writes_left_ == 0)
      return error(errc::io_error, "crashing kv store: the power failed before this write");
    --*writes_left_;
    return success();
  }

  Store* store_;
  std::optional<std::size_t> writes_left_;
};

/// The KV machine over StoreFixture's store (see the file comment). A restart closes the
/// machine, reopens the store (StoreFixture::reopen) and opens the machine on it again, which
/// recovers what the store holds. Snapshots come in 100-byte chunks and restore writes 512-byte
/// batches, so that both take many steps (and a crash can fall between a restore's writes).
template <class StoreFixture>
class KvMachineFixture {
 public:
  using store_type = typename StoreFixture::store_type;
  using machine_type = kv::KvStateMachine<CrashingKvStore<store_type>>;

  KvMachineFixture() : crashing_(stores_.store()) { open(); }

  machine_type& machine() { return *machine_; }
  void reopen() {
    machine_.reset();
    stores_.reopen();
    crashing_.attach(stores_.store());
    open();
  }
  void crash_after(std::size_t writes) { crashing_.crash_after(writes); }

  /// A command chosen by n among puts (some with a lease, some asking for the previous value),
  /// deletes of a key or a range, txns, lease grants and revokes, compactions and ranges, over
  /// ten keys and three lease ids: overwrites, deletes of missing keys and requests that fail
  /// (a missing lease, a compaction past the current revision) all happen.
  static std::string command(std::uint64_t n) {
    std::mt19937_64 rng(n);
    auto pick = [&](std::int64_t lo, std::int64_t hi) {
      return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
    };
    const std::string key = "key/" + std::to_string(pick(0, 9));
    const std::string value = "value of " + std::to_string(n);
    kv::Command command;
    switch (pick(0, 9)) {
      case 0:
      case 1:
      case 2: command = kv::PutRequest{key, value, kv::no_lease, pick(0, 1) == 1}; break;
      case 3: command = kv::PutRequest{key, value, pick(1, 3)}; break;
      case 4: command = kv::DeleteRangeRequest{key, "", pick(0, 1) == 1}; break;
      case 5: command = kv::DeleteRangeRequest{key, "key/" + std::to_string(pick(5, 9))}; break;
      case 6: {
        kv::Compare compare;
        compare.target = kv::CompareTarget::version;
        compare.key = key;
        compare.version = pick(0, 2);
        // Named requests copied into their ops: GCC 12 warns (maybe-uninitialized, falsely) on
        // moving a temporary into a RequestOp's variant.
        const kv::PutRequest put{key, value};
        const kv::DeleteRangeRequest del{key};
        const kv::RangeRequest range{"key/", "key0"};
        kv::TxnRequest txn;
        txn.compare.push_back(compare);
        txn.success.push_back(kv::RequestOp{put});
        txn.failure.push_back(kv::RequestOp{del});
        txn.failure.push_back(kv::RequestOp{range});
        command = std::move(txn);
        break;
      }
      case 7: command = kv::LeaseGrantRequest{pick(5, 60), pick(1, 3)}; break;
      case 8: command = kv::LeaseRevokeRequest{pick(1, 3)}; break;
      default:
        if (pick(0, 1) == 0) {
          command = kv::CompactionRequest{pick(1, 60)};
        } else {
          kv::RangeRequest range{"key/", "key0"};
          range.revision = pick(0, 40);
          command = std::move(range);
        }
    }
    return kv::encode_command(command);
  }

  /// The response's encoding (codec_response.hpp): the same bytes exactly when the same
  /// response, error code and text included.
  static std::string describe(const typename machine_type::response_type& response) {
    return kv::encode_response(response);
  }

 private:
  void open() {
    kv::KvOptions options;
    options.snapshot_chunk_bytes = 100;
    options.restore_batch_bytes = 512;
    auto opened = machine_type::open(crashing_, options);
    if (!opened) throw std::runtime_error("open the kv machine: " + opened.error().message());
    machine_ = std::move(opened).value();
  }

  StoreFixture stores_;
  CrashingKvStore<store_type> crashing_;
  std::unique_ptr<machine_type> machine_;
};

}  // namespace dengine::test
